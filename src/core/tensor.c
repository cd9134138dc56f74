#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const struct {
    size_t size;
    const char *name;
} dtype_info[KK_DTYPE_COUNT] = {
    [KK_F32] = {4, "float32"}, [KK_F16] = {2, "float16"}, [KK_BF16] = {2, "bfloat16"},
    [KK_F64] = {8, "float64"}, [KK_I64] = {8, "int64"},   [KK_I32] = {4, "int32"},
    [KK_I16] = {2, "int16"},   [KK_I8] = {1, "int8"},     [KK_U8] = {1, "uint8"},
    [KK_BOOL] = {1, "bool"},
};

size_t kk_dtype_size(kk_dtype dt) { return (unsigned)dt < KK_DTYPE_COUNT ? dtype_info[dt].size : 0; }

const char *kk_dtype_name(kk_dtype dt)
{
    return (unsigned)dt < KK_DTYPE_COUNT ? dtype_info[dt].name : "unknown";
}

int64_t kk_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int64_t kk_tensor_numel(const kk_tensor *t) { return kk_shape_numel(t->ndim, t->shape); }

char *kk_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ndim == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    for (int i = 0; i < ndim && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%lld", i ? "x" : "", (long long)shape[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

void kk_table_init(kk_table *t) { memset(t, 0, sizeof *t); }

void kk_table_free(kk_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i].name);
        if (!t->items[i].borrowed) free(t->items[i].data);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}

kk_tensor *kk_table_find(const kk_table *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return &t->items[i];
    return NULL;
}

kokoro_status kk_table_add(kk_table *t, const char *name, kk_dtype dtype, int ndim,
                           const int64_t *shape, void *data)
{
    if ((unsigned)dtype >= KK_DTYPE_COUNT || ndim < 0 || ndim > KK_MAX_DIMS) {
        free(data);
        return kk_error(KOKORO_ERR_INTERNAL, "tensor '%s': bad dtype or rank %d", name, ndim);
    }
    if (kk_table_find(t, name)) {
        free(data);
        return kk_error(KOKORO_ERR_FORMAT, "tensor '%s' appears twice", name);
    }
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        kk_tensor *items = realloc(t->items, cap * sizeof *items);
        if (!items) {
            free(data);
            return kk_error(KOKORO_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        }
        t->items = items;
        t->cap = cap;
    }
    kk_tensor *e = &t->items[t->count];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) {
        free(data);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    }
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = (size_t)kk_shape_numel(ndim, shape) * kk_dtype_size(dtype);
    t->count++;
    return KOKORO_OK;
}

kokoro_status kk_table_add_borrowed(kk_table *t, const char *name, kk_dtype dtype, int ndim, const int64_t *shape,
                                    void *data)
{
    /* added with a NULL buffer (nothing to free on failure), then pointed at the data */
    kokoro_status st = kk_table_add(t, name, dtype, ndim, shape, NULL);
    if (st == KOKORO_OK) {
        t->items[t->count - 1].data = data;
        t->items[t->count - 1].borrowed = 1;
    }
    return st;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

kokoro_status kk_tensor_to_f32(const kk_tensor *t, float *dst)
{
    int64_t n = kk_tensor_numel(t);
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case KK_F32: memcpy(&dst[i], p + 4 * i, 4); break;
        case KK_F16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = half_to_float(h);
        } break;
        case KK_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t b = (uint32_t)h << 16;
            memcpy(&dst[i], &b, 4);
        } break;
        case KK_F64: {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        } break;
        case KK_I64: {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
        } break;
        case KK_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
        } break;
        case KK_I16: {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            dst[i] = (float)v;
        } break;
        case KK_I8: dst[i] = (float)(int8_t)p[i]; break;
        case KK_U8:
        case KK_BOOL: dst[i] = (float)p[i]; break;
        default: return kk_error(KOKORO_ERR_INTERNAL, "tensor '%s': unknown dtype", t->name);
        }
    }
    return KOKORO_OK;
}
