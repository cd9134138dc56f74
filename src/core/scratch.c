#include "core/scratch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/sanitize.h"

/* Each buffer starts with a header of one cache line holding its usable
 * size, so kk_scratch_give needs only the pointer. */
#define HDR 64

struct kk_scratch {
    pthread_mutex_t lock;
    void *idle[KK_SCRATCH_SLOTS]; /* headers of idle buffers */
    int nidle;
};

static size_t cap_of(void *hdr) { return *(size_t *)hdr; }

kk_scratch *kk_scratch_new(void)
{
    kk_scratch *pool = calloc(1, sizeof *pool);
    if (pool && pthread_mutex_init(&pool->lock, NULL) != 0) {
        free(pool);
        return NULL;
    }
    return pool;
}

void kk_scratch_free(kk_scratch *pool)
{
    if (!pool) return;
    for (int i = 0; i < pool->nidle; i++) free(pool->idle[i]);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

void *kk_scratch_take(kk_scratch *pool, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    void *hdr = NULL, *drop = NULL;
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        /* the smallest idle buffer that fits; failing that, the largest
         * idle one is released (a bigger one replaces it) */
        int best = -1, largest = -1;
        for (int i = 0; i < pool->nidle; i++) {
            size_t c = cap_of(pool->idle[i]);
            if (c >= bytes && (best < 0 || c < cap_of(pool->idle[best]))) best = i;
            if (largest < 0 || c > cap_of(pool->idle[largest])) largest = i;
        }
        int pick = best >= 0 ? best : largest;
        if (pick >= 0) {
            if (best >= 0)
                hdr = pool->idle[pick];
            else
                drop = pool->idle[pick];
            pool->idle[pick] = pool->idle[--pool->nidle];
        }
        pthread_mutex_unlock(&pool->lock);
    }
    free(drop);
    if (!hdr) {
        if (bytes > (size_t)-1 - HDR) return NULL;
        hdr = aligned_alloc(64, HDR + bytes);
        if (!hdr) return NULL;
        *(size_t *)hdr = bytes;
    }
    kk_scratch_poison((char *)hdr + HDR, cap_of(hdr));
    return (char *)hdr + HDR;
}

void kk_scratch_give(kk_scratch *pool, void *p)
{
    if (!p) return;
    void *hdr = (char *)p - HDR;
    if (pool) {
        pthread_mutex_lock(&pool->lock);
        if (pool->nidle < KK_SCRATCH_SLOTS) {
            pool->idle[pool->nidle++] = hdr;
            hdr = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    free(hdr);
}

void kk_scratch_poison(void *p, size_t bytes)
{
#ifdef KK_ASAN
    memset(p, 0xff, bytes); /* 0xffffffff: a NaN */
#else
    (void)p, (void)bytes;
#endif
}

size_t kk_scratch_idle_bytes(kk_scratch *pool)
{
    size_t n = 0;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->nidle; i++) n += cap_of(pool->idle[i]);
    pthread_mutex_unlock(&pool->lock);
    return n;
}
