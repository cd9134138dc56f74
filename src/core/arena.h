/* Per-call scratch memory: every buffer a forward pass allocates is
 * released at once, on success and on every error path alike. */
#ifndef KK_ARENA_H
#define KK_ARENA_H

#include <stddef.h>

typedef struct kk_arena {
    void **ptrs;
    size_t count, cap;
    int failed; /* an allocation failed: later ones return NULL too */
} kk_arena;

/* Zero-initialised, 64-byte aligned; NULL (and a->failed set) on failure. */
float *kk_arena_floats(kk_arena *a, size_t n);
double *kk_arena_doubles(kk_arena *a, size_t n);
void *kk_arena_alloc(kk_arena *a, size_t bytes);
void kk_arena_free(kk_arena *a);

#endif
