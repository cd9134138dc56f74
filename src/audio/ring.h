/* Single-producer single-consumer ring of float samples. The consumer (the
 * PortAudio callback) never blocks or locks; the producer waits, by short
 * sleeps, while the ring is full. */
#ifndef KK_RING_H
#define KK_RING_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct kk_ring {
    float *buf;
    size_t cap;                 /* a power of two */
    atomic_size_t head;         /* total samples written (producer) */
    atomic_size_t tail;         /* total samples read (consumer) */
    atomic_int closed;          /* consumer gone: the producer stops waiting */
} kk_ring;

/* capacity is rounded up to a power of two; 0 on success, -1 out of memory */
int kk_ring_init(kk_ring *r, size_t capacity);
void kk_ring_free(kk_ring *r);
size_t kk_ring_used(const kk_ring *r);
/* Copies up to n samples in without blocking; returns how many. */
size_t kk_ring_write_some(kk_ring *r, const float *x, size_t n);
/* Copies all n in, sleeping while full; returns n, or fewer if closed. */
size_t kk_ring_write(kk_ring *r, const float *x, size_t n);
/* Copies up to n samples out (never blocks); returns how many. */
size_t kk_ring_read(kk_ring *r, float *out, size_t n);
void kk_ring_close(kk_ring *r);

#endif
