/* Named tensors and the table name -> tensor that every weight source
 * (test weights, .pth, .npz, our own file) produces and the model binds to. */
#ifndef KK_TENSOR_H
#define KK_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "kokoro.h"

#define KK_MAX_DIMS 8

typedef enum kk_dtype {
    KK_F32 = 0,
    KK_F16,
    KK_BF16,
    KK_F64,
    KK_I64,
    KK_I32,
    KK_I16,
    KK_I8,
    KK_U8,
    KK_BOOL,
    KK_DTYPE_COUNT
} kk_dtype;

typedef struct kk_tensor {
    char *name;                  /* owned */
    kk_dtype dtype;
    int ndim;                    /* 0 for a scalar */
    int64_t shape[KK_MAX_DIMS];
    void *data;                  /* C order, native (little) endian; owned unless borrowed */
    size_t nbytes;
    int borrowed;                /* data lives in memory someone else keeps (an mmap'd file) */
} kk_tensor;

typedef struct kk_table {
    kk_tensor *items;
    size_t count, cap;
} kk_table;

size_t kk_dtype_size(kk_dtype dt);
const char *kk_dtype_name(kk_dtype dt);
int64_t kk_shape_numel(int ndim, const int64_t *shape);
int64_t kk_tensor_numel(const kk_tensor *t);
/* "512x1x3" style, for messages; writes into buf and returns it. */
char *kk_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

void kk_table_init(kk_table *t);
void kk_table_free(kk_table *t);
/* Adds a tensor; takes ownership of data (freed with free()) even on failure.
 * A duplicate name is an error. */
kokoro_status kk_table_add(kk_table *t, const char *name, kk_dtype dtype, int ndim,
                           const int64_t *shape, void *data);
kk_tensor *kk_table_find(const kk_table *t, const char *name);
/* Adds a tensor whose data stays owned by the caller (must outlive the table's users). */
kokoro_status kk_table_add_borrowed(kk_table *t, const char *name, kk_dtype dtype, int ndim, const int64_t *shape,
                                    void *data);

/* Converts any float/int tensor's values to float32 into dst (numel floats). */
kokoro_status kk_tensor_to_f32(const kk_tensor *t, float *dst);

#endif
