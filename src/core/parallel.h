/* A minimal fork-join helper for the numeric kernels. Threads live at most
 * for one synthesis (its kk_pool) or one call, so concurrent synthesis calls
 * never share a queue or a pool. */
#ifndef KK_PARALLEL_H
#define KK_PARALLEL_H

#include <stddef.h>

/* Threads the kernels may use (kokoro_set_num_threads, at least 1); 1 inside
 * a kk_parallel_for task. */
int kk_threads(void);

/* Runs fn(arg, i) for every i in [0, n) on up to nthreads threads (the
 * calling thread included); tasks are handed out in order, one at a time.
 * Falls back to the calling thread alone when threads cannot be started.
 * Called from inside a task, it runs every task on that thread. */
void kk_parallel_for(int nthreads, int n, void (*fn)(void *arg, int i), void *arg);
/* Runs fn(arg, slot, i) for every i in [0, n): [0, n) cut into nthreads
 * contiguous ranges, range `slot` begun by the same thread on every call
 * while a pool serves the caller (the caller slot 0, pool worker w slot
 * w + 1), each range in order; a thread done with its own takes what is left
 * of the others'. For passes over time where one call's output is the next
 * one's input: each thread keeps working on the steps it made, which are in
 * its caches (on the 2-vCPU machine here, data made on the other core was
 * measured ~15 % slower to use). The slot also names a thread's buffers: no
 * two threads run with the same slot at once. */
void kk_parallel_ranges(int nthreads, int n, void (*fn)(void *arg, int slot, int i), void *arg);
/* Workers kept for one call's many kk_parallel_for calls: kk_pool_begin starts
 * nthreads − 1 threads that then serve the calling thread's kk_parallel_for
 * (waking in microseconds, where a thread started per call took ~50 µs a
 * call, ~1000 calls a synthesis) until kk_pool_end. Each synthesis has its
 * own (concurrent calls share nothing); NULL, and the per-call threads kept,
 * where a pool would not help (one thread, inside a task, a pool already
 * serving this thread) or threads cannot be started. The same results either
 * way: only who runs which task changes. */
typedef struct kk_pool kk_pool;
kk_pool *kk_pool_begin(int nthreads);
void kk_pool_end(kk_pool *pool); /* NULL: nothing */

/* Runs fn(arg, i0, i1) over [0, n) in ranges of `grain` (the last may be
 * shorter) on up to nthreads threads: for elementwise passes over large
 * buffers, where one thread cannot use the memory bandwidth of two. */
void kk_parallel_range(int nthreads, size_t n, size_t grain, void (*fn)(void *arg, size_t i0, size_t i1), void *arg);

/* Rows per part when a GEMM of `rows` output rows, `macs_per_row`
 * multiply-adds each, is split across `nthreads` threads, parts a multiple of
 * `align` rows; `rows` when it should not be split. Every part, the last
 * included, keeps at least 2^21 multiply-adds: OpenBLAS (0.3.21, Skylake-X
 * kernels) sends products of up to 100^3 to "small matrix" kernels that sum
 * in another order, and parts above that size go through the same kernel as
 * the whole, so splitting does not change a bit. */
int kk_gemm_step(int rows, int align, double macs_per_row, int nthreads);

#endif
