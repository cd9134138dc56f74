/* The torch checkpoint reader end to end: zip container, data.pkl, storages. */
#include <stddef.h>
#include <stdint.h>

#include "io/torch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kk_table t;
    if (kk_torch_read_mem(data, size, "fuzz.pth", &t) == KOKORO_OK) kk_table_free(&t);
    return 0;
}
