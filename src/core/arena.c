#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

void *kk_arena_alloc(kk_arena *a, size_t bytes)
{
    if (a->failed) return NULL;
    if (a->count == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 32;
        void **p = realloc(a->ptrs, cap * sizeof *p);
        if (!p) {
            a->failed = 1;
            return NULL;
        }
        a->ptrs = p;
        a->cap = cap;
    }
    size_t size = (bytes + 63) & ~(size_t)63;
    void *m = aligned_alloc(64, size ? size : 64);
    if (!m) {
        a->failed = 1;
        return NULL;
    }
    memset(m, 0, size ? size : 64);
    a->ptrs[a->count++] = m;
    return m;
}

float *kk_arena_floats(kk_arena *a, size_t n) { return kk_arena_alloc(a, n * sizeof(float)); }

void kk_arena_free(kk_arena *a)
{
    for (size_t i = 0; i < a->count; i++) free(a->ptrs[i]);
    free(a->ptrs);
    memset(a, 0, sizeof *a);
}

double *kk_arena_doubles(kk_arena *a, size_t n) { return kk_arena_alloc(a, n * sizeof(double)); }
