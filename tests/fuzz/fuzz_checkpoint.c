/* The checkpoint reader past the zip layer: the input becomes data.pkl of a
 * well-formed archive that also holds storages "0".."3" of assorted sizes,
 * so mutations reach the storage lookup, the size checks and the views
 * (the plain torch target mostly trips over zip CRCs). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zip.h>

#include "io/torch.h"

static unsigned char storage[4096];

static unsigned char *build_zip(const uint8_t *pkl, size_t n, size_t *out_size)
{
    static const size_t sizes[] = {16, 24, 4096, 0};
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) abort();
    zip_source_keep(src);
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!z) abort();
    if (zip_file_add(z, "archive/data.pkl", zip_source_buffer(z, pkl, n, 0), 0) < 0) abort();
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "archive/data/%d", i);
        zip_int64_t idx = zip_file_add(z, name, zip_source_buffer(z, storage, sizes[i], 0), 0);
        if (idx < 0 || zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0) abort();
    }
    if (zip_file_add(z, "archive/version", zip_source_buffer(z, "3\n", 2, 0), 0) < 0) abort();
    if (zip_close(z) != 0) abort();
    unsigned char *buf = NULL;
    zip_stat_t st;
    if (zip_source_stat(src, &st) != 0 || zip_source_open(src) != 0) abort();
    buf = malloc(st.size ? st.size : 1);
    if (!buf || zip_source_read(src, buf, st.size) != (zip_int64_t)st.size) abort();
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);
    *out_size = st.size;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!storage[1])
        for (size_t i = 0; i < sizeof storage; i++) storage[i] = (unsigned char)(i * 7 + 1);
    size_t n;
    unsigned char *img = build_zip(data, size, &n);
    kk_table t;
    if (kk_torch_read_mem(img, n, "fuzz.pth", &t) == KOKORO_OK) kk_table_free(&t);
    free(img);
    return 0;
}
