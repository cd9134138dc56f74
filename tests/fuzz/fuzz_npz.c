/* The .npz reader: zip container and every .npy member. */
#include <stddef.h>
#include <stdint.h>

#include "io/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kk_table t;
    if (kk_npz_read_mem(data, size, "fuzz.npz", &t) == KOKORO_OK) kk_table_free(&t);
    return 0;
}
