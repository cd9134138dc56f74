#include "core/parallel.h"

#include <pthread.h>
#include <stdatomic.h>

#include "kokoro.h"

/* Set while a thread runs tasks: a kernel called from a task (an LSTM
 * direction's products, an F0/N branch's convolutions) runs on that thread
 * rather than starting threads of its own. */
static _Thread_local int in_task;

int kk_threads(void)
{
    if (in_task) return 1;
    int n = kokoro_get_num_threads();
    return n < 1 ? 1 : n;
}

typedef struct pf_job {
    void (*fn)(void *, int);
    void *arg;
    int n;
    atomic_int next;
} pf_job;

static void *pf_worker(void *p)
{
    pf_job *j = p;
    int outer = in_task;
    in_task = 1;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) j->fn(j->arg, i);
    in_task = outer;
    return NULL;
}

int kk_gemm_step(int rows, int align, double macs_per_row, int nthreads)
{
    const double least = (double)(1 << 21);
    if (rows < 1) return 1;
    for (int nt = nthreads; nt > 1; nt--) {
        int step = ((rows + nt - 1) / nt + align - 1) / align * align;
        if (step >= rows) continue;
        int last = rows - (rows - 1) / step * step;
        if ((double)last * macs_per_row >= least) return step;
    }
    return rows;
}

#define KK_MAX_THREADS 64

void kk_parallel_for(int nthreads, int n, void (*fn)(void *arg, int i), void *arg)
{
    if (in_task) nthreads = 1;
    if (nthreads > n) nthreads = n;
    if (nthreads > KK_MAX_THREADS) nthreads = KK_MAX_THREADS;
    pf_job job = {.fn = fn, .arg = arg, .n = n};
    atomic_init(&job.next, 0);
    pthread_t tid[KK_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tid[started], NULL, pf_worker, &job) != 0) break; /* fewer threads, same result */
        started++;
    }
    pf_worker(&job);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
}

typedef struct pr_job {
    void (*fn)(void *, size_t, size_t);
    void *arg;
    size_t n, grain;
} pr_job;

static void pr_task(void *p, int i)
{
    const pr_job *j = p;
    size_t i0 = (size_t)i * j->grain, i1 = i0 + j->grain < j->n ? i0 + j->grain : j->n;
    j->fn(j->arg, i0, i1);
}

void kk_parallel_range(int nthreads, size_t n, size_t grain, void (*fn)(void *arg, size_t i0, size_t i1), void *arg)
{
    if (n == 0) return;
    if (grain < 1) grain = 1;
    const size_t most = (size_t)1 << 30; /* kk_parallel_for counts tasks in an int */
    if ((n + grain - 1) / grain > most) grain = (n + most - 1) / most;
    size_t tasks = (n + grain - 1) / grain;
    pr_job job = {.fn = fn, .arg = arg, .n = n, .grain = grain};
    kk_parallel_for(nthreads, (int)tasks, pr_task, &job);
}
