#include "torchwrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

void kt_pk_put(kt_pk *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
void kt_pk_op(kt_pk *b, unsigned char c) { kt_pk_put(b, &c, 1); }
void kt_pk_str(kt_pk *b, const char *s)
{
    uint32_t l = (uint32_t)strlen(s);
    kt_pk_op(b, 'X');
    kt_pk_put(b, &l, 4);
    kt_pk_put(b, s, l);
}
void kt_pk_global(kt_pk *b, const char *mod, const char *name)
{
    kt_pk_op(b, 'c');
    kt_pk_put(b, mod, strlen(mod));
    kt_pk_op(b, '\n');
    kt_pk_put(b, name, strlen(name));
    kt_pk_op(b, '\n');
}
void kt_pk_int(kt_pk *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        kt_pk_op(b, 'K');
        kt_pk_op(b, (unsigned char)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        int32_t x = (int32_t)v;
        kt_pk_op(b, 'J');
        kt_pk_put(b, &x, 4);
    } else {
        kt_pk_op(b, 0x8a);
        kt_pk_op(b, 8);
        kt_pk_put(b, &v, 8);
    }
}

static const char *storage_class(kk_dtype dt)
{
    switch (dt) {
    case KK_F32: return "FloatStorage";
    case KK_F16: return "HalfStorage";
    case KK_BF16: return "BFloat16Storage";
    case KK_F64: return "DoubleStorage";
    case KK_I64: return "LongStorage";
    case KK_I32: return "IntStorage";
    case KK_I16: return "ShortStorage";
    case KK_I8: return "CharStorage";
    case KK_BOOL: return "BoolStorage";
    default: return "ByteStorage";
    }
}

/* The key a tensor is saved under: "weight_g"/"weight_v" optionally in the
 * torch.nn.utils.parametrizations spelling. */
static void key_name(char *out, size_t size, const char *prefix, const char *name, int parametrizations)
{
    snprintf(out, size, "%s%s", prefix, name);
    static const char *const from[2] = {".weight_g", ".weight_v"};
    static const char *const to[2] = {".parametrizations.weight.original0", ".parametrizations.weight.original1"};
    size_t len = strlen(out);
    for (int i = 0; i < 2 && parametrizations; i++)
        if (len > 9 && strcmp(out + len - 9, from[i]) == 0 && len - 9 + strlen(to[i]) < size)
            strcpy(out + len - 9, to[i]);
}

static void tensor(kt_pk *b, const kk_tensor *t, int key)
{
    char k[32];
    snprintf(k, sizeof k, "%d", key);
    kt_pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    kt_pk_op(b, '(');
    kt_pk_op(b, '(');
    kt_pk_str(b, "storage");
    kt_pk_global(b, "torch", storage_class(t->dtype));
    kt_pk_str(b, k);
    kt_pk_str(b, "cpu");
    kt_pk_int(b, kk_tensor_numel(t));
    kt_pk_op(b, 't');
    kt_pk_op(b, 'Q');
    kt_pk_int(b, 0);
    kt_pk_op(b, '(');
    for (int d = 0; d < t->ndim; d++) kt_pk_int(b, t->shape[d]);
    kt_pk_op(b, 't');
    kt_pk_op(b, '(');
    int64_t stride = 1, strides[KK_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        strides[d] = stride;
        stride *= t->shape[d];
    }
    for (int d = 0; d < t->ndim; d++) kt_pk_int(b, strides[d]);
    kt_pk_op(b, 't');
    kt_pk_op(b, 0x89);
    kt_pk_global(b, "collections", "OrderedDict");
    kt_pk_op(b, ')');
    kt_pk_op(b, 'R');
    kt_pk_op(b, 't');
    kt_pk_op(b, 'R');
}

int kt_write_pth_opts(const char *path, const kk_table *table, const kt_pth_opts *o)
{
    static const char *comps[5] = {"bert", "bert_encoder", "predictor", "text_encoder", "decoder"};
    kt_pk b = {0};
    kt_pk_op(&b, 0x80);
    kt_pk_op(&b, 2);
    int key = 0;
    int *keys = calloc(table->count + 1, sizeof *keys);
    char k[200];
    if (o->layout == KT_SINGLE) {
        tensor(&b, &table->items[0], 0);
        keys[0] = 0;
    } else if (o->layout == KT_FLAT) {
        kt_pk_global(&b, "collections", "OrderedDict");
        kt_pk_op(&b, ')');
        kt_pk_op(&b, 'R');
        kt_pk_op(&b, '(');
        for (size_t i = 0; i < table->count; i++) {
            key_name(k, sizeof k, "", table->items[i].name, o->parametrizations);
            kt_pk_str(&b, k);
            keys[i] = key;
            tensor(&b, &table->items[i], key++);
        }
        kt_pk_op(&b, 'u');
    } else {
        kt_pk_op(&b, '}');
        kt_pk_op(&b, '(');
        for (int c = 0; c < 5; c++) {
            size_t cl = strlen(comps[c]);
            kt_pk_str(&b, comps[c]);
            kt_pk_global(&b, "collections", "OrderedDict");
            kt_pk_op(&b, ')');
            kt_pk_op(&b, 'R');
            kt_pk_op(&b, '(');
            for (size_t i = 0; i < table->count; i++) {
                const char *nm = table->items[i].name;
                if (strncmp(nm, comps[c], cl) != 0 || nm[cl] != '.') continue;
                key_name(k, sizeof k, "module.", nm + cl + 1, o->parametrizations);
                kt_pk_str(&b, k);
                keys[i] = key;
                tensor(&b, &table->items[i], key++);
            }
            kt_pk_op(&b, 'u');
        }
        kt_pk_op(&b, 'u');
    }
    kt_pk_op(&b, '.');
    int err;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!z) return -1;
    zip_source_t *s = zip_source_buffer(z, b.p, b.n, 0);
    zip_file_add(z, "archive/data.pkl", s, 0);
    if (o->byteorder) zip_file_add(z, "archive/byteorder", zip_source_buffer(z, o->byteorder, strlen(o->byteorder), 0), 0);
    size_t count = o->layout == KT_SINGLE ? 1 : table->count;
    for (size_t i = 0; i < count; i++) {
        const kk_tensor *t = &table->items[i];
        char name[64];
        snprintf(name, sizeof name, "archive/data/%d", keys[i]);
        zip_source_t *d;
        size_t es = kk_dtype_size(t->dtype);
        if (o->big_endian && es > 1) { /* as a big-endian host writes it: each element's bytes reversed */
            unsigned char *sw = malloc(t->nbytes ? t->nbytes : 1);
            const unsigned char *src = t->data;
            for (size_t e = 0; e + es <= t->nbytes; e += es)
                for (size_t j = 0; j < es; j++) sw[e + j] = src[e + es - 1 - j];
            d = zip_source_buffer(z, sw, t->nbytes, 1); /* libzip frees it */
        } else {
            d = zip_source_buffer(z, t->data, t->nbytes, 0);
        }
        zip_int64_t idx = zip_file_add(z, name, d, 0);
        zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    const char *version = o->version ? o->version : "3\n";
    zip_file_add(z, "archive/version", zip_source_buffer(z, version, strlen(version), 0), 0);
    int rc = zip_close(z);
    free(b.p);
    free(keys);
    return rc;
}

int kt_write_pth(const char *path, const kk_table *table, int components)
{
    kt_pth_opts o = {.layout = components ? KT_OFFICIAL : KT_SINGLE};
    return kt_write_pth_opts(path, table, &o);
}
