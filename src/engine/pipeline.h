/* An ordered parallel pipeline: tasks are produced one at a time, worked on by
 * N threads in any order, and consumed strictly in production order on the
 * caller's thread. At most `window` tasks are between production and
 * consumption, so memory stays bounded (back-pressure) whatever the input's
 * length. With one worker nothing is started: produce → work → consume run
 * inline, which is the sequential reference the parallel runs must equal. */
#ifndef KK_PIPELINE_H
#define KK_PIPELINE_H

#include <stddef.h>

#include "kokoro.h"

typedef struct kk_pipeline_ops {
    /* Called serially, in index order (on a worker, while the others work:
     * it may be slow). Sets *task and returns KOKORO_OK, or returns
     * KOKORO_OK with *task NULL at the end of the input, or an error. */
    kokoro_status (*produce)(void *ctx, size_t index, void **task);
    /* Called on any worker thread, concurrently for different tasks. */
    kokoro_status (*work)(void *ctx, size_t index, void *task);
    /* Called on the caller's thread, in index order, once per task that was
     * worked without error; owns the task afterwards (must release it). */
    kokoro_status (*consume)(void *ctx, size_t index, void *task);
    /* Releases a task that will not be consumed (error or cancellation). */
    void (*discard)(void *ctx, void *task);
    /* Optional; polled from any thread: non-zero stops the run. */
    int (*stopped)(void *ctx);
} kk_pipeline_ops;

/* Runs until the producer ends, an error, or ops->stopped says so (then
 * KOKORO_ERR_CANCELLED; tasks in flight are finished or discarded, never
 * consumed out of order). The error of the lowest-indexed failing task wins
 * and its message is carried over to the calling thread. */
kokoro_status kk_pipeline_run(const kk_pipeline_ops *ops, void *ctx, int workers, size_t window);

#endif
