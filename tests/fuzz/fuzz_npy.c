/* One .npy image: magic, header dict, shape and dtype against the data. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kk_tensor t;
    if (kk_npy_parse(data, size, "fuzz.npy", &t) == KOKORO_OK) free(t.data);
    return 0;
}
