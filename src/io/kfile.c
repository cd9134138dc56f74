#include "io/kfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bf16.h"
#include "core/error.h"
#include "io/voices.h"

#define ALIGN 64
#define PREFIX 24 /* magic(8) version(4) reserved(4) header length(8) */

struct kk_kfile {
    const char *path;
    unsigned char *map;
    size_t size;
    cJSON *header;
    int map_taken;
};

int kk_kfile_probe(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[8] = {0};
    size_t n = fread(m, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(m, KK_KFILE_MAGIC, 8) == 0;
}

/* What bfloat16 applies to: the decoder's matrices and kernels (two thirds
 * of the weights, all of the generator's arithmetic). ALBERT, the text encoder
 * and the prosody predictor stay float32: the durations are rounded sums of
 * their outputs, and a bfloat16 predictor moves them by whole frames. */
static int narrowed(const kk_tensor *t, int bf16)
{
    return bf16 && t->dtype == KK_F32 && t->ndim >= 2 && strncmp(t->name, "decoder.", 8) == 0;
}

static kokoro_status write_all(int fd, const void *p, size_t n, const char *path)
{
    const unsigned char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return kk_error(KOKORO_ERR_IO, "%s: write error: %s", path, strerror(errno));
        c += w;
        n -= (size_t)w;
    }
    return KOKORO_OK;
}

kokoro_status kk_kfile_write(const char *path, const kk_table *table, const char *config_json,
                             const kokoro_voices *voices, int bf16)
{
    cJSON *h = cJSON_CreateObject(), *cfg = cJSON_Parse(config_json);
    if (!h || !cfg) {
        cJSON_Delete(h);
        cJSON_Delete(cfg);
        return kk_error(KOKORO_ERR_FORMAT, "%s: the config to embed is not valid JSON", path);
    }
    cJSON_AddStringToObject(h, "format", "kokoro-c model");
    cJSON_AddNumberToObject(h, "version", KK_KFILE_VERSION);
    cJSON_AddStringToObject(h, "dtype", bf16 ? "bfloat16" : "float32");
    cJSON_AddItemToObject(h, "config", cfg);
    cJSON *ts = cJSON_AddArrayToObject(h, "tensors"), *vs = cJSON_AddArrayToObject(h, "voices");
    /* offsets are relative to the data region, which starts at the first 64-byte boundary after the header */
    size_t off = 0;
    for (size_t i = 0; i < table->count; i++) {
        const kk_tensor *t = &table->items[i];
        kk_dtype dt = narrowed(t, bf16) ? KK_BF16 : t->dtype;
        size_t nbytes = (size_t)kk_tensor_numel(t) * kk_dtype_size(dt);
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "dtype", kk_dtype_name(dt));
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddNumberToObject(e, "offset", (double)off);
        cJSON_AddNumberToObject(e, "nbytes", (double)nbytes);
        cJSON_AddItemToArray(ts, e);
        off += (nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    size_t nv = kokoro_voices_count(voices), pack_bytes = (size_t)KOKORO_VOICE_ROWS * KOKORO_STYLE_DIM * 4;
    for (size_t i = 0; i < nv; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", kokoro_voices_name(voices, i));
        cJSON_AddNumberToObject(e, "offset", (double)off);
        cJSON_AddItemToArray(vs, e);
        off += pack_bytes;
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!text) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    size_t hlen = strlen(text), data_start = (PREFIX + hlen + ALIGN - 1) / ALIGN * ALIGN;

    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(text);
        return kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    unsigned char prefix[PREFIX] = {0}, zeros[ALIGN] = {0};
    memcpy(prefix, KK_KFILE_MAGIC, 8);
    uint32_t ver = KK_KFILE_VERSION;
    uint64_t hl = hlen;
    memcpy(prefix + 8, &ver, 4);
    memcpy(prefix + 16, &hl, 8);
    kokoro_status st = write_all(fd, prefix, PREFIX, tmp);
    if (st == KOKORO_OK) st = write_all(fd, text, hlen, tmp);
    if (st == KOKORO_OK) st = write_all(fd, zeros, data_start - PREFIX - hlen, tmp);
    free(text);
    for (size_t i = 0; i < table->count && st == KOKORO_OK; i++) {
        const kk_tensor *t = &table->items[i];
        size_t n = (size_t)kk_tensor_numel(t), nbytes;
        if (narrowed(t, bf16)) {
            uint16_t *b = malloc(n * 2 + 1);
            if (!b) {
                st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
                break;
            }
            for (size_t k = 0; k < n; k++) b[k] = kk_bf16(((const float *)t->data)[k]);
            nbytes = n * 2;
            st = write_all(fd, b, nbytes, tmp);
            free(b);
        } else {
            nbytes = t->nbytes;
            st = write_all(fd, t->data, nbytes, tmp);
        }
        size_t pad = (ALIGN - nbytes % ALIGN) % ALIGN;
        if (st == KOKORO_OK) st = write_all(fd, zeros, pad, tmp);
    }
    for (size_t i = 0; i < nv && st == KOKORO_OK; i++) st = write_all(fd, kk_voices_pack(voices, i), pack_bytes, tmp);
    if (st == KOKORO_OK && fsync(fd) != 0) st = kk_error(KOKORO_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == KOKORO_OK) st = kk_error(KOKORO_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (st == KOKORO_OK && rename(tmp, path) != 0)
        st = kk_error(KOKORO_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != KOKORO_OK) unlink(tmp);
    return st;
}

kokoro_status kk_kfile_open(const char *path, kk_kfile **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < PREFIX) {
        close(fd);
        return kk_error(KOKORO_ERR_FORMAT, "%s: too short for a kokoro-c model file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return kk_error(KOKORO_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    kk_kfile *kf = calloc(1, sizeof *kf);
    if (!kf) {
        munmap(map, size);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    kf->path = path;
    kf->map = map;
    kf->size = size;
    uint32_t ver;
    uint64_t hl;
    memcpy(&ver, kf->map + 8, 4);
    memcpy(&hl, kf->map + 16, 8);
    kokoro_status st = KOKORO_OK;
    if (memcmp(kf->map, KK_KFILE_MAGIC, 8) != 0)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: not a kokoro-c model file (bad magic)", path);
    else if (ver != KK_KFILE_VERSION)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: format version %u; this build reads version %d (convert it again)", path,
                      ver, KK_KFILE_VERSION);
    else if (hl > size - PREFIX)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: header of %llu bytes runs past the end of the file", path,
                      (unsigned long long)hl);
    else if (!(kf->header = cJSON_ParseWithLength((const char *)kf->map + PREFIX, (size_t)hl)))
        st = kk_error(KOKORO_ERR_FORMAT, "%s: the header is not valid JSON", path);
    if (st != KOKORO_OK) {
        kk_kfile_close(kf);
        return st;
    }
    *out = kf;
    return KOKORO_OK;
}

static size_t data_start(const kk_kfile *kf)
{
    uint64_t hl;
    memcpy(&hl, kf->map + 16, 8);
    return (PREFIX + (size_t)hl + ALIGN - 1) / ALIGN * ALIGN;
}

/* offset/size of a blob inside the file, checked */
static kokoro_status blob(const kk_kfile *kf, const cJSON *e, size_t nbytes, const char *what, const unsigned char **p)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "offset");
    if (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble != (double)(uint64_t)o->valuedouble)
        return kk_error(KOKORO_ERR_FORMAT, "%s: %s: bad offset", kf->path, what);
    size_t start = data_start(kf), off = (size_t)o->valuedouble;
    if (off % ALIGN) return kk_error(KOKORO_ERR_FORMAT, "%s: %s: offset %zu is not 64-byte aligned", kf->path, what, off);
    if (start > kf->size || off > kf->size - start || nbytes > kf->size - start - off)
        return kk_error(KOKORO_ERR_FORMAT, "%s: %s: %zu bytes at offset %zu lie outside the file (%zu bytes)",
                        kf->path, what, nbytes, off, kf->size);
    *p = kf->map + start + off;
    return KOKORO_OK;
}

kokoro_status kk_kfile_tensors(kk_kfile *kf, kk_table *table)
{
    kk_table_init(table);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(kf->header, "tensors"), *e;
    if (!cJSON_IsArray(ts)) return kk_error(KOKORO_ERR_FORMAT, "%s: header has no tensor list", kf->path);
    kokoro_status st = KOKORO_OK;
    cJSON_ArrayForEach(e, ts)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"), *nb = cJSON_GetObjectItemCaseSensitive(e, "nbytes");
        if (!cJSON_IsString(nm) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsNumber(nb) ||
            cJSON_GetArraySize(sh) > KK_MAX_DIMS) {
            st = kk_error(KOKORO_ERR_FORMAT, "%s: malformed tensor entry in the header", kf->path);
            break;
        }
        kk_dtype dtype = KK_DTYPE_COUNT;
        for (int d = 0; d < KK_DTYPE_COUNT; d++)
            if (strcmp(kk_dtype_name((kk_dtype)d), dt->valuestring) == 0) dtype = (kk_dtype)d;
        int64_t shape[KK_MAX_DIMS];
        int ndim = 0;
        const cJSON *x;
        size_t n = 1;
        cJSON_ArrayForEach(x, sh)
        {
            if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 1e9) {
                n = SIZE_MAX;
                break;
            }
            shape[ndim++] = (int64_t)x->valuedouble;
            n *= (size_t)x->valuedouble;
        }
        if (dtype == KK_DTYPE_COUNT || n == SIZE_MAX || n * kk_dtype_size(dtype) != (size_t)nb->valuedouble) {
            st = kk_error(KOKORO_ERR_FORMAT, "%s: tensor '%s': dtype, shape and size disagree", kf->path, nm->valuestring);
            break;
        }
        const unsigned char *p;
        if ((st = blob(kf, e, n * kk_dtype_size(dtype), nm->valuestring, &p)) != KOKORO_OK) break;
        if (dtype == KK_BF16) { /* widened: the kernels compute in float32 */
            float *f = malloc(n * sizeof *f + 1);
            if (!f) {
                st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
                break;
            }
            kk_tensor tmp = {.dtype = KK_BF16, .ndim = ndim, .data = (void *)p};
            memcpy(tmp.shape, shape, sizeof shape);
            kk_tensor_to_f32(&tmp, f);
            st = kk_table_add(table, nm->valuestring, KK_F32, ndim, shape, f);
        } else {
            st = kk_table_add_borrowed(table, nm->valuestring, dtype, ndim, shape, (void *)p);
        }
        if (st != KOKORO_OK) break;
    }
    if (st != KOKORO_OK) kk_table_free(table);
    return st;
}

int kk_kfile_is_bf16(const kk_kfile *kf)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(kf->header, "dtype");
    return cJSON_IsString(d) && strcmp(d->valuestring, "bfloat16") == 0;
}

char *kk_kfile_config_json(const kk_kfile *kf)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(kf->header, "config");
    return c ? cJSON_PrintUnformatted(c) : NULL;
}

size_t kk_kfile_voice_count(const kk_kfile *kf)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(kf->header, "voices");
    return cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
}

kokoro_status kk_kfile_voice(const kk_kfile *kf, size_t i, const char **name, const float **pack)
{
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(kf->header, "voices"), (int)i);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(v, "name");
    if (!cJSON_IsString(nm)) return kk_error(KOKORO_ERR_FORMAT, "%s: malformed voice entry %zu", kf->path, i);
    const unsigned char *p;
    kokoro_status st = blob(kf, v, (size_t)KOKORO_VOICE_ROWS * KOKORO_STYLE_DIM * 4, nm->valuestring, &p);
    if (st != KOKORO_OK) return st;
    *name = nm->valuestring;
    *pack = (const float *)p;
    return KOKORO_OK;
}

void kk_kfile_take_map(kk_kfile *kf, void **map, size_t *size)
{
    *map = kf->map;
    *size = kf->size;
    kf->map_taken = 1;
}

void kk_kfile_close(kk_kfile *kf)
{
    if (!kf) return;
    cJSON_Delete(kf->header);
    if (!kf->map_taken) munmap(kf->map, kf->size);
    free(kf);
}
