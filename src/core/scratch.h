/* Large per-call buffers kept between calls. A synthesis of 16 s of audio
 * works through ~400 MB of generator scratch; freshly mapped pages cost the
 * kernel a fault and a clear each (about a tenth of the generator's time on
 * one thread, and the faults serialise threads), so each call takes its
 * scratch from its model's pool and gives it back. Concurrent calls get
 * buffers of their own; a pool keeps at most KK_SCRATCH_SLOTS idle ones. */
#ifndef KK_SCRATCH_H
#define KK_SCRATCH_H

#include <stddef.h>

#define KK_SCRATCH_SLOTS 4

typedef struct kk_scratch kk_scratch;

kk_scratch *kk_scratch_new(void);
void kk_scratch_free(kk_scratch *pool);
/* At least bytes, 64-byte aligned; the contents are undefined (NaN-filled
 * in sanitizer builds, so a read before a write shows in the results).
 * NULL when memory is short. pool NULL: a plain allocation. */
void *kk_scratch_take(kk_scratch *pool, size_t bytes);
/* Returns p (from kk_scratch_take on the same pool, or NULL) to the pool. */
void kk_scratch_give(kk_scratch *pool, void *p);
/* Sanitizer builds: fills p with NaN (a stage that reads what an earlier
 * user of shared scratch left shows in its results); otherwise nothing. */
void kk_scratch_poison(void *p, size_t bytes);
/* Bytes held idle by the pool. */
size_t kk_scratch_idle_bytes(kk_scratch *pool);

#endif
