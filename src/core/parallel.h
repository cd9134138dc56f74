/* A minimal fork-join helper for the numeric kernels. Threads live only for
 * one call, so concurrent synthesis calls never share a queue or a pool. */
#ifndef KK_PARALLEL_H
#define KK_PARALLEL_H

/* Threads the kernels may use (kokoro_set_num_threads, at least 1). */
int kk_threads(void);

/* Runs fn(arg, i) for every i in [0, n) on up to nthreads threads (the
 * calling thread included); tasks are handed out in order, one at a time.
 * Falls back to the calling thread alone when threads cannot be started.
 * Called from inside a task, it runs every task on that thread. */
void kk_parallel_for(int nthreads, int n, void (*fn)(void *arg, int i), void *arg);

#endif
