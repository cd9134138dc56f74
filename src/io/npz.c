/* NumPy .npy / .npz: the container of voices-v1.0.bin, of the golden data and
 * of kokoro-bench's cases. The zip layer is libzip; the .npy header (a Python
 * dict literal) is parsed here, strictly, and every size it declares is
 * checked against the bytes actually present before anything is allocated. */
#include "io/npz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "core/error.h"

#define NPZ_MAX_MEMBER ((zip_uint64_t)4 << 30) /* 4 GiB uncompressed per array */
#define NPZ_MAX_RATIO 1000                     /* deflate ratio above which a member is a bomb */
#define NPZ_MAX_FILE ((size_t)4 << 30)         /* the whole file is read into memory */

/* ---- .npy header ---- */

typedef struct npy_header {
    char descr[16];
    int fortran;
    int ndim;
    int64_t shape[KK_MAX_DIMS];
} npy_header;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Parses "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 16), }". */
static kokoro_status parse_header(const char *h, size_t len, const char *what, npy_header *out)
{
    const char *p = h, *end = h + len;
    int have = 0;
    memset(out, 0, sizeof *out);
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header is not a dict", what);
    for (;;) {
        p = skip_ws(p, end);
        if (p < end && *p == '}') break;
        if (p >= end || (*p != '\'' && *p != '"'))
            return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: key expected at offset %td", what, p - h);
        char q = *p++;
        const char *k = p;
        while (p < end && *p != q) p++;
        if (p >= end) return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: unterminated key", what);
        size_t klen = (size_t)(p - k);
        p = skip_ws(p + 1, end);
        if (p >= end || *p++ != ':') return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: ':' expected", what);
        p = skip_ws(p, end);
        if (klen == 5 && memcmp(k, "descr", 5) == 0) {
            if (p >= end || (*p != '\'' && *p != '"'))
                return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: descr must be a string", what);
            char dq = *p++;
            const char *d = p;
            while (p < end && *p != dq) p++;
            if (p >= end || (size_t)(p - d) >= sizeof out->descr)
                return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: unsupported descr", what);
            memcpy(out->descr, d, (size_t)(p - d));
            p++;
            have |= 1;
        } else if (klen == 13 && memcmp(k, "fortran_order", 13) == 0) {
            if (end - p >= 4 && memcmp(p, "True", 4) == 0) {
                out->fortran = 1;
                p += 4;
            } else if (end - p >= 5 && memcmp(p, "False", 5) == 0) {
                p += 5;
            } else {
                return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: fortran_order must be True or False", what);
            }
            have |= 2;
        } else if (klen == 5 && memcmp(k, "shape", 5) == 0) {
            if (p >= end || *p++ != '(') return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: shape tuple expected", what);
            for (;;) {
                p = skip_ws(p, end);
                if (p < end && *p == ')') {
                    p++;
                    break;
                }
                if (p >= end || *p < '0' || *p > '9')
                    return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: bad shape at offset %td", what, p - h);
                int64_t v = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (v > (INT64_MAX - 9) / 10)
                        return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: dimension too large", what);
                    v = v * 10 + (*p++ - '0');
                }
                if (out->ndim == KK_MAX_DIMS)
                    return kk_error(KOKORO_ERR_FORMAT, "%s: more than %d dimensions", what, KK_MAX_DIMS);
                out->shape[out->ndim++] = v;
                p = skip_ws(p, end);
                if (p < end && *p == ',') p++;
            }
            have |= 4;
        } else {
            return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header: unknown key '%.*s'", what, (int)klen, k);
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') p++;
    }
    if (have != 7) return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", what);
    return KOKORO_OK;
}

static int map_descr(const char *d, kk_dtype *dt, int *swap)
{
    static const struct {
        const char *code;
        kk_dtype dt;
    } codes[] = {{"f4", KK_F32}, {"f8", KK_F64}, {"f2", KK_F16}, {"i8", KK_I64}, {"i4", KK_I32},
                 {"i2", KK_I16}, {"i1", KK_I8},  {"u1", KK_U8},  {"b1", KK_BOOL}};
    if (strlen(d) != 3) return 0;
    char order = d[0];
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        if (strcmp(d + 1, codes[i].code) != 0) continue;
        size_t sz = kk_dtype_size(codes[i].dt);
        if (order != '<' && order != '>' && order != '|' && order != '=') return 0;
        if (order == '|' && sz != 1) return 0;
        *dt = codes[i].dt;
        *swap = order == '>' && sz > 1;
        return 1;
    }
    return 0;
}

static void byteswap(unsigned char *p, size_t n, size_t sz)
{
    for (size_t i = 0; i < n; i++, p += sz)
        for (size_t a = 0, b = sz - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Fortran (column-major) order to C order, any rank. */
static void fortran_to_c(const unsigned char *src, unsigned char *dst, int ndim, const int64_t *shape, size_t sz,
                         size_t n)
{
    int64_t idx[KK_MAX_DIMS] = {0};
    for (size_t c = 0; c < n; c++) { /* idx walks C order; compute the Fortran offset */
        size_t f = 0, stride = 1;
        for (int d = 0; d < ndim; d++) {
            f += (size_t)idx[d] * stride;
            stride *= (size_t)shape[d];
        }
        memcpy(dst + c * sz, src + f * sz, sz);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

kokoro_status kk_npy_parse(const void *data, size_t size, const char *what, kk_tensor *out)
{
    const unsigned char *b = data;
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return kk_error(KOKORO_ERR_FORMAT, "%s: not a .npy array (bad magic)", what);
    size_t hlen, hstart;
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (size < 12) return kk_error(KOKORO_ERR_FORMAT, "%s: truncated .npy header", what);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return kk_error(KOKORO_ERR_FORMAT, "%s: unsupported .npy version %u.%u", what, b[6], b[7]);
    }
    if (hlen > size - hstart)
        return kk_error(KOKORO_ERR_FORMAT, "%s: .npy header of %zu bytes runs past the end (%zu bytes)", what, hlen,
                        size);
    npy_header h;
    kokoro_status st = parse_header((const char *)b + hstart, hlen, what, &h);
    if (st != KOKORO_OK) return st;
    kk_dtype dt;
    int swap;
    if (!map_descr(h.descr, &dt, &swap))
        return kk_error(KOKORO_ERR_FORMAT, "%s: unsupported dtype '%s' (numeric arrays only)", what, h.descr);
    size_t sz = kk_dtype_size(dt), n = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.shape[i] != 0 && n > SIZE_MAX / sz / (size_t)h.shape[i])
            return kk_error(KOKORO_ERR_FORMAT, "%s: shape overflows the address space", what);
        n *= (size_t)h.shape[i];
    }
    size_t have = size - hstart - hlen;
    if (n * sz != have)
        return kk_error(KOKORO_ERR_FORMAT, "%s: %zu bytes of data where the header declares %zu (%zu × %zu bytes)",
                        what, have, n * sz, n, sz);
    size_t bytes = n * sz;
    unsigned char *copy = malloc(bytes ? bytes : 1);
    if (!copy) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory for %zu bytes", what, n * sz);
    const unsigned char *src = b + hstart + hlen;
    if (h.fortran && h.ndim > 1)
        fortran_to_c(src, copy, h.ndim, h.shape, sz, n);
    else
        memcpy(copy, src, n * sz);
    if (swap) byteswap(copy, n, sz);
    out->name = NULL; /* the caller names it */
    out->dtype = dt;
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->data = copy;
    out->nbytes = n * sz;
    return KOKORO_OK;
}

/* ---- .npz ---- */

static kokoro_status read_member(zip_t *z, zip_uint64_t i, size_t archive_size, const char *path, kk_table *table)
{
    zip_stat_t zs;
    if (zip_stat_index(z, i, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_NAME) || !(zs.valid & ZIP_STAT_SIZE))
        return kk_error(KOKORO_ERR_FORMAT, "%s: member %llu: %s", path, (unsigned long long)i,
                        zip_error_strerror(zip_get_error(z)));
    const char *name = zs.name;
    size_t nl = strlen(name);
    if (nl < 5 || strcmp(name + nl - 4, ".npy") != 0)
        return kk_error(KOKORO_ERR_FORMAT, "%s: member '%s' is not a .npy array", path, name);
    if (zs.size > NPZ_MAX_MEMBER)
        return kk_error(KOKORO_ERR_FORMAT, "%s: member '%s' declares %llu bytes, more than the 4 GiB allowed", path,
                        name, (unsigned long long)zs.size);
    /* the ratio to the compressed size (to the whole archive when unknown);
     * no method makes something from zero bytes, whatever a header claims */
    zip_uint64_t comp = (zs.valid & ZIP_STAT_COMP_SIZE) ? zs.comp_size : archive_size;
    if (zs.size > 0 && (comp == 0 || zs.size / comp > NPZ_MAX_RATIO))
        return kk_error(KOKORO_ERR_FORMAT, "%s: member '%s' declares %llu bytes from %llu compressed (a zip bomb?)",
                        path, name, (unsigned long long)zs.size,
                        (unsigned long long)((zs.valid & ZIP_STAT_COMP_SIZE) ? zs.comp_size : 0));
    unsigned char *buf = malloc(zs.size ? zs.size : 1);
    if (!buf) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory reading '%s'", path, name);
    zip_file_t *f = zip_fopen_index(z, i, 0);
    zip_int64_t got = f ? zip_fread(f, buf, zs.size) : -1;
    /* one more read must find the end: a member longer than declared is malformed too */
    unsigned char extra;
    zip_int64_t more = (f && got >= 0) ? zip_fread(f, &extra, 1) : 0;
    if (!f || got < 0 || (zip_uint64_t)got != zs.size || more != 0) {
        kokoro_status st = kk_error(KOKORO_ERR_FORMAT, "%s: member '%s' is truncated or corrupt (%s)", path, name,
                                    f ? zip_error_strerror(zip_file_get_error(f)) : zip_error_strerror(zip_get_error(z)));
        if (f) zip_fclose(f);
        free(buf);
        return st;
    }
    zip_fclose(f);
    char what[PATH_MAX + 256];
    snprintf(what, sizeof what, "%s: member '%s'", path, name);
    kk_tensor t;
    kokoro_status st = kk_npy_parse(buf, zs.size, what, &t);
    free(buf);
    if (st != KOKORO_OK) return st;
    char key[256];
    if (nl - 4 >= sizeof key) {
        free(t.data);
        return kk_error(KOKORO_ERR_FORMAT, "%s: member name '%s' is too long", path, name);
    }
    memcpy(key, name, nl - 4);
    key[nl - 4] = '\0';
    st = kk_table_add(table, key, t.dtype, t.ndim, t.shape, t.data);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    return st;
}

kokoro_status kk_zip_open_buffer(const void *data, size_t size, const char *what, const char *not_a, zip_t **out)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    kokoro_status st = KOKORO_OK;
    if (!z) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: %s: %s", what, not_a, zip_error_strerror(&ze));
        if (src) zip_source_free(src);
    }
    zip_error_fini(&ze);
    *out = z;
    return st;
}

kokoro_status kk_npz_read_mem(const void *data, size_t size, const char *path, kk_table *table)
{
    kk_table_init(table);
    zip_t *z;
    kokoro_status open_st = kk_zip_open_buffer(data, size, path, "not a readable .npz (zip) file", &z);
    if (open_st != KOKORO_OK) return open_st;
    kokoro_status st = KOKORO_OK;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n && st == KOKORO_OK; i++) st = read_member(z, (zip_uint64_t)i, size, path, table);
    zip_discard(z); /* also frees the source */
    if (st == KOKORO_OK && table->count == 0) st = kk_error(KOKORO_ERR_FORMAT, "%s: the .npz holds no array", path);
    if (st != KOKORO_OK) kk_table_free(table);
    return st;
}

kokoro_status kk_npz_read(const char *path, kk_table *table)
{
    kk_table_init(table);
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t size = 0;
    kokoro_status st = KOKORO_OK;
    if (fseek(f, 0, SEEK_END) != 0 || ftell(f) < 0) {
        st = kk_error(KOKORO_ERR_IO, "%s: cannot determine the size: %s", path, strerror(errno));
    } else {
        size = (size_t)ftell(f);
        rewind(f);
        buf = size <= NPZ_MAX_FILE ? malloc(size ? size : 1) : NULL;
        if (size > NPZ_MAX_FILE)
            st = kk_error(KOKORO_ERR_FORMAT, "%s: %zu bytes, more than the 4 GiB an .npz may have here", path, size);
        else if (!buf)
            st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
        else if (fread(buf, 1, size, f) != size)
            st = kk_error(KOKORO_ERR_IO, "%s: read error: %s", path, strerror(errno));
    }
    fclose(f);
    if (st == KOKORO_OK) st = kk_npz_read_mem(buf, size, path, table);
    free(buf);
    return st;
}

/* numpy's own header: dict, then spaces, then '\n', total a multiple of 64 */
static size_t write_npy_header(const kk_tensor *t, char *out, size_t cap)
{
    static const char *descr[KK_DTYPE_COUNT] = {[KK_F32] = "<f4", [KK_F16] = "<f2", [KK_F64] = "<f8",
                                                [KK_I64] = "<i8", [KK_I32] = "<i4", [KK_I16] = "<i2",
                                                [KK_I8] = "|i1",  [KK_U8] = "|u1",  [KK_BOOL] = "|b1"};
    char shape[256];
    size_t used = 0;
    shape[0] = '\0';
    for (int i = 0; i < t->ndim; i++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s", (long long)t->shape[i],
                                 i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1) shape[used - 1] = '\0'; /* (1, 16) but (5,) */
    char dict[400];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      descr[t->dtype], shape);
    size_t total = 10 + (size_t)dl + 1;
    size_t padded = (total + 63) / 64 * 64;
    if (padded > cap) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t hl = padded - 10;
    out[8] = (char)(hl & 0xff);
    out[9] = (char)(hl >> 8);
    memcpy(out + 10, dict, (size_t)dl);
    memset(out + 10 + dl, ' ', padded - total);
    out[padded - 1] = '\n';
    return padded;
}

kokoro_status kk_npz_write(const char *path, const kk_table *table)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: path too long", path);
    int zerr;
    zip_t *z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!z) return kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    kokoro_status st = KOKORO_OK;
    void **bufs = calloc(table->count + 1, sizeof *bufs);
    if (!bufs) st = kk_error(KOKORO_ERR_NOMEM, "out of memory writing %s", path);
    for (size_t i = 0; i < table->count && st == KOKORO_OK; i++) {
        const kk_tensor *t = &table->items[i];
        if (t->dtype == KK_BF16 || !t->data) {
            st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: tensor '%s' cannot be written as .npy", path, t->name);
            break;
        }
        char hdr[512];
        size_t hl = write_npy_header(t, hdr, sizeof hdr);
        size_t n = hl + t->nbytes;
        unsigned char *b = malloc(n);
        if (!hl || !b) {
            free(b);
            st = kk_error(KOKORO_ERR_NOMEM, "%s: cannot encode '%s'", path, t->name);
            break;
        }
        memcpy(b, hdr, hl);
        memcpy(b + hl, t->data, t->nbytes);
        bufs[i] = b; /* libzip reads the buffers at zip_close */
        char name[300];
        snprintf(name, sizeof name, "%s.npy", t->name);
        zip_source_t *s = zip_source_buffer(z, b, n, 0);
        zip_int64_t idx = s ? zip_file_add(z, name, s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (s) zip_source_free(s);
            st = kk_error(KOKORO_ERR_IO, "%s: cannot add '%s': %s", path, name, zip_strerror(z));
        } else if (zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0) {
            st = kk_error(KOKORO_ERR_IO, "%s: %s", path, zip_strerror(z));
        }
    }
    if (st == KOKORO_OK) {
        if (zip_close(z) != 0) {
            st = kk_error(KOKORO_ERR_IO, "%s: cannot write: %s", tmp, zip_strerror(z));
            zip_discard(z);
        }
    } else {
        zip_discard(z);
    }
    for (size_t i = 0; bufs && i < table->count; i++) free(bufs[i]);
    free(bufs);
    if (st == KOKORO_OK) { /* durable before it becomes visible */
        int fd = open(tmp, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) st = kk_error(KOKORO_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (st == KOKORO_OK && rename(tmp, path) != 0)
        st = kk_error(KOKORO_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != KOKORO_OK) unlink(tmp);
    return st;
}
