/* The pickle machine alone, on data.pkl bytes. Every storage it names is a
 * zero-filled buffer of the size it declares (when small), so that tensors,
 * views and strides get exercised past the zip layer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "io/torch.h"

static unsigned char zeros[1 << 16];

static kokoro_status storage(void *ctx, const char *key, kk_dtype dtype, int64_t numel, const unsigned char **data,
                             size_t *size)
{
    (void)ctx;
    uint64_t bytes = (uint64_t)numel * kk_dtype_size(dtype);
    if (numel < 0 || (uint64_t)numel > sizeof zeros || bytes > sizeof zeros)
        return kk_error(KOKORO_ERR_FORMAT, "storage '%s' too large for the fuzzer", key);
    /* key "short" hands back less than declared, to reach the size check */
    *data = zeros;
    *size = strcmp(key, "short") == 0 && bytes ? (size_t)bytes - 1 : (size_t)bytes;
    return KOKORO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kk_table t;
    if (kk_pickle_load(data, size, "fuzz.pkl", storage, NULL, &t) == KOKORO_OK) kk_table_free(&t);
    return 0;
}
