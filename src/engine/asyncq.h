/* Async I/O: a bounded queue feeding one writer thread, so encoding and
 * writing overlap synthesis. A full queue blocks the pusher (back-pressure:
 * memory stays bounded); the writer's first error is returned to the pusher. */
#ifndef KK_ASYNCQ_H
#define KK_ASYNCQ_H

#include <stddef.h>

#include "kokoro.h"

typedef struct kk_asyncq kk_asyncq;

typedef kokoro_status (*kk_asyncq_fn)(void *ctx, void *item); /* takes the item */
typedef void (*kk_asyncq_drop)(void *ctx, void *item);         /* releases an unwritten item */

kokoro_status kk_asyncq_start(size_t capacity, kk_asyncq_fn fn, kk_asyncq_drop drop, void *ctx, kk_asyncq **out);
/* Queues item (ownership passes). Blocks while the queue is full. After the
 * writer failed, drops item and returns the writer's error. */
kokoro_status kk_asyncq_push(kk_asyncq *q, void *item);
/* Waits until every queued item is written, stops the thread, frees q. */
kokoro_status kk_asyncq_finish(kk_asyncq *q);
/* Drops what is queued, stops the thread, frees q. */
void kk_asyncq_abort(kk_asyncq *q);
/* Most items that were ever waiting at once (for tests and reports). */
size_t kk_asyncq_high_water(kk_asyncq *q);

#endif
