/* config.json: cJSON, then the hyper-parameter and vocabulary checks. */
#include <stddef.h>
#include <stdint.h>

#include "kokoro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kokoro_config *c;
    if (kokoro_config_parse((const char *)data, size, "fuzz.json", &c) == KOKORO_OK) {
        /* the vocabulary it built must answer lookups */
        for (uint32_t cp = 0; cp < 0x300; cp++) (void)kokoro_config_token_id(c, cp);
        (void)kokoro_config_vocab_size(c);
        kokoro_config_free(c);
    }
    return 0;
}
