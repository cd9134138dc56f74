#include "core/parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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
    atomic_int seats; /* pool workers that may still join (nthreads − 1 at the start) */
    int by_slot;      /* pool: the task a thread runs is its own slot (the caller 0, worker w w + 1) */
} pf_job;

/* fn(arg, i) as a task: kernels it calls stay on this thread */
static void as_task(void (*fn)(void *, int), void *arg, int i)
{
    const int outer = in_task;
    in_task = 1;
    fn(arg, i);
    in_task = outer;
}

static void take_tasks(void *arg, int unused)
{
    pf_job *j = arg;
    (void)unused;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) j->fn(j->arg, i);
}

static void run_tasks(pf_job *j) { as_task(take_tasks, j, 0); }

static void *pf_worker(void *p)
{
    run_tasks(p);
    return NULL;
}

/* ---- the pool: workers wait for a new job generation, spinning ~50 µs (the gaps between one
 * call's kernels are mostly shorter), then asleep on a condition variable ---- */

#define KK_MAX_THREADS 64
#define SPIN_NS 50000

typedef struct worker_arg {
    kk_pool *p;
    int w; /* worker w serves slot w + 1 of kk_parallel_ranges */
} worker_arg;

struct kk_pool {
    pthread_t tid[KK_MAX_THREADS];
    worker_arg args[KK_MAX_THREADS];
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pf_job *job;             /* the current job (published by gen) */
    atomic_uint gen;         /* bumped per job, and once more to quit */
    atomic_uint busy;        /* workers still inside the current job */
    atomic_int sleepers;     /* workers asleep or about to be: only then does a job need a signal */
    atomic_int main_asleep;  /* the caller asleep on done */
    int quit;
};

static _Thread_local kk_pool *cur_pool;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* spins up to SPIN_NS until (*a == v) == equal; returns whether it came to that */
static int spin_until(atomic_uint *a, unsigned v, int equal)
{
    const long long end = now_ns() + SPIN_NS;
    for (int k = 0;; k++) {
        if ((atomic_load(a) == v) == equal) return 1;
        cpu_relax();
        if ((k & 63) == 63 && now_ns() > end) return 0;
    }
}

static void *pool_worker(void *arg)
{
    kk_pool *p = ((worker_arg *)arg)->p;
    const int w = ((worker_arg *)arg)->w;
    unsigned seen = 0;
    for (;;) {
        if (!spin_until(&p->gen, seen, 0)) {
            /* the sleeper count goes up before gen is checked again, and the caller bumps gen before
             * it reads the count (both sequentially consistent): either the caller signals, or this
             * thread sees the new gen */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->work, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load(&p->gen);
        if (p->quit) return NULL;
        pf_job *j = p->job;
        if (j->by_slot) {
            if (w + 1 < j->n) as_task(j->fn, j->arg, w + 1);
        } else if (atomic_fetch_sub(&j->seats, 1) > 0)
            run_tasks(j);
        if (atomic_fetch_sub(&p->busy, 1) == 1 && atomic_load(&p->main_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void pool_post(kk_pool *p, pf_job *j, int quit)
{
    p->job = j;
    p->quit = quit;
    atomic_store(&p->busy, (unsigned)p->nworkers);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
}

static void pool_wait(kk_pool *p)
{
    if (spin_until(&p->busy, 0, 1)) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->main_asleep, 1);
    while (atomic_load(&p->busy) != 0) pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->main_asleep, 0);
    pthread_mutex_unlock(&p->mu);
}

kk_pool *kk_pool_begin(int nthreads)
{
    if (in_task || cur_pool || nthreads < 2) return NULL;
    if (nthreads > KK_MAX_THREADS) nthreads = KK_MAX_THREADS;
    kk_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int t = 1; t < nthreads; t++) {
        p->args[p->nworkers] = (worker_arg){.p = p, .w = p->nworkers};
        if (pthread_create(&p->tid[p->nworkers], NULL, pool_worker, &p->args[p->nworkers]) != 0) break;
        p->nworkers++;
    }
    if (p->nworkers == 0) {
        kk_pool_end(p);
        return NULL;
    }
    cur_pool = p;
    return p;
}

void kk_pool_end(kk_pool *p)
{
    if (!p) return;
    if (p->nworkers) {
        pool_post(p, NULL, 1);
        for (int t = 0; t < p->nworkers; t++) pthread_join(p->tid[t], NULL);
    }
    if (cur_pool == p) cur_pool = NULL;
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
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

void kk_parallel_for(int nthreads, int n, void (*fn)(void *arg, int i), void *arg)
{
    if (in_task) nthreads = 1;
    if (nthreads > n) nthreads = n;
    if (nthreads > KK_MAX_THREADS) nthreads = KK_MAX_THREADS;
    pf_job job = {.fn = fn, .arg = arg, .n = n};
    atomic_init(&job.next, 0);
    atomic_init(&job.seats, nthreads - 1);
    kk_pool *pool = cur_pool;
    if (pool && nthreads > 1) {
        pool_post(pool, &job, 0);
        run_tasks(&job);
        pool_wait(pool); /* no worker touches job after this */
        return;
    }
    pthread_t tid[KK_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&tid[started], NULL, pf_worker, &job) != 0) break; /* fewer threads, same result */
        started++;
    }
    run_tasks(&job);
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

typedef struct ranges_job {
    void (*fn)(void *, int, int);
    void *arg;
    int nslots;
    atomic_int *next; /* per slot: its range's next step */
    const int *end;   /* per slot: its range's end */
} ranges_job;

static void ranges_slot(void *arg, int slot)
{
    ranges_job *j = arg;
    for (int k = 0; k < j->nslots; k++) { /* its own range, then the others' leftovers */
        const int v = (slot + k) % j->nslots;
        for (int i; (i = atomic_fetch_add(&j->next[v], 1)) < j->end[v];) j->fn(j->arg, slot, i);
    }
}

void kk_parallel_ranges(int nthreads, int n, void (*fn)(void *arg, int slot, int i), void *arg)
{
    if (in_task) nthreads = 1;
    if (nthreads > n) nthreads = n;
    if (nthreads > KK_MAX_THREADS) nthreads = KK_MAX_THREADS;
    if (nthreads <= 1) {
        for (int i = 0; i < n; i++) fn(arg, 0, i);
        return;
    }
    atomic_int next[KK_MAX_THREADS];
    int end[KK_MAX_THREADS];
    for (int s = 0; s < nthreads; s++) {
        atomic_init(&next[s], (int)((long)n * s / nthreads));
        end[s] = (int)((long)n * (s + 1) / nthreads);
    }
    ranges_job rj = {.fn = fn, .arg = arg, .nslots = nthreads, .next = next, .end = end};
    kk_pool *pool = cur_pool;
    if (pool && nthreads - 1 <= pool->nworkers) {
        /* each thread its own slot: the caller 0 here, the workers theirs */
        pf_job job = {.fn = ranges_slot, .arg = &rj, .n = nthreads, .by_slot = 1};
        atomic_init(&job.next, 0);
        atomic_init(&job.seats, 0);
        pool_post(pool, &job, 0);
        as_task(ranges_slot, &rj, 0);
        pool_wait(pool);
        return;
    }
    kk_parallel_for(nthreads, nthreads, ranges_slot, &rj);
}
