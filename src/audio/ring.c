#include "audio/ring.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int kk_ring_init(kk_ring *r, size_t capacity)
{
    size_t cap = 1024;
    while (cap < capacity) cap *= 2;
    r->buf = malloc(cap * sizeof *r->buf);
    if (!r->buf) return -1;
    r->cap = cap;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->closed, 0);
    return 0;
}

void kk_ring_free(kk_ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

size_t kk_ring_used(const kk_ring *r)
{
    return atomic_load_explicit(&((kk_ring *)r)->head, memory_order_acquire) -
           atomic_load_explicit(&((kk_ring *)r)->tail, memory_order_acquire);
}

size_t kk_ring_write_some(kk_ring *r, const float *x, size_t n)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t room = r->cap - (head - tail);
    if (n > room) n = room;
    size_t at = head & (r->cap - 1), first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->buf + at, x, first * sizeof *x);
    memcpy(r->buf, x + first, (n - first) * sizeof *x);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

size_t kk_ring_write(kk_ring *r, const float *x, size_t n)
{
    size_t done = 0;
    while (done < n) {
        if (atomic_load_explicit(&r->closed, memory_order_acquire)) break;
        size_t k = kk_ring_write_some(r, x + done, n - done);
        done += k;
        if (k == 0) {
            struct timespec ts = {0, 2 * 1000 * 1000}; /* 2 ms: well under any ring length */
            nanosleep(&ts, NULL);
        }
    }
    return done;
}

size_t kk_ring_read(kk_ring *r, float *out, size_t n)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t avail = head - tail;
    if (n > avail) n = avail;
    size_t at = tail & (r->cap - 1), first = r->cap - at < n ? r->cap - at : n;
    memcpy(out, r->buf + at, first * sizeof *out);
    memcpy(out + first, r->buf, (n - first) * sizeof *out);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}

void kk_ring_close(kk_ring *r) { atomic_store_explicit(&r->closed, 1, memory_order_release); }
