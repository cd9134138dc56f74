#include "engine/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

enum { EMPTY, WORKING, DONE, FAILED };

typedef struct slot {
    void *task;
    int state;
} slot;

typedef struct run {
    const kk_pipeline_ops *ops;
    void *ctx;
    size_t window;
    pthread_mutex_t mu;
    pthread_cond_t more;  /* a window slot freed, or stop */
    pthread_cond_t ready; /* a task finished, or the input ended */
    slot *ring;
    size_t produced, consumed;
    int producing; /* a worker is in produce (outside the lock) */
    int ended, stop;
    /* the failure with the lowest index so far */
    int failed;
    size_t fail_index;
    kokoro_status fail_st;
    char fail_msg[1024];
} run;

static int cancelled(const run *r) { return r->ops->stopped && r->ops->stopped(r->ctx); }

/* Caller holds the lock. Keeps the failure of the lowest index. */
static void record_failure(run *r, size_t index, kokoro_status st, const char *msg)
{
    if (r->failed && r->fail_index <= index) return;
    r->failed = 1;
    r->fail_index = index;
    r->fail_st = st;
    snprintf(r->fail_msg, sizeof r->fail_msg, "%s", msg);
}

static void *worker(void *arg)
{
    run *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->stop || r->ended || r->failed || cancelled(r)) break;
        if (r->producing || r->produced >= r->consumed + r->window) {
            pthread_cond_wait(&r->more, &r->mu);
            continue;
        }
        /* production is serial, in index order, but outside the lock (it
         * runs the front end): the others go on working and consuming */
        size_t idx = r->produced;
        void *task = NULL;
        r->producing = 1;
        pthread_mutex_unlock(&r->mu);
        kokoro_status st = r->ops->produce(r->ctx, idx, &task);
        char pmsg[1024] = "";
        if (st != KOKORO_OK) snprintf(pmsg, sizeof pmsg, "%s", kokoro_last_error());
        pthread_mutex_lock(&r->mu);
        r->producing = 0;
        pthread_cond_broadcast(&r->more);
        if (task && (r->stop || r->failed)) { /* the run ended meanwhile */
            r->ops->discard(r->ctx, task);
            break;
        }
        if (st != KOKORO_OK) {
            record_failure(r, idx, st, pmsg);
            r->ended = 1;
            pthread_cond_broadcast(&r->ready);
            break;
        }
        if (!task) {
            r->ended = 1;
            pthread_cond_broadcast(&r->ready);
            break;
        }
        slot *s = &r->ring[idx % r->window];
        s->task = task;
        s->state = WORKING;
        r->produced++;
        pthread_mutex_unlock(&r->mu);
        st = r->ops->work(r->ctx, idx, task);
        char msg[1024] = "";
        if (st != KOKORO_OK) snprintf(msg, sizeof msg, "%s", kokoro_last_error());
        pthread_mutex_lock(&r->mu);
        s->state = st == KOKORO_OK ? DONE : FAILED;
        if (st != KOKORO_OK) record_failure(r, idx, st, msg);
        pthread_cond_broadcast(&r->ready);
    }
    pthread_cond_broadcast(&r->more);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static kokoro_status run_sequential(const kk_pipeline_ops *ops, void *ctx)
{
    for (size_t i = 0;; i++) {
        if (ops->stopped && ops->stopped(ctx)) return kk_error(KOKORO_ERR_CANCELLED, "cancelled");
        void *task = NULL;
        kokoro_status st = ops->produce(ctx, i, &task);
        if (st != KOKORO_OK || !task) return st;
        if ((st = ops->work(ctx, i, task)) != KOKORO_OK) {
            ops->discard(ctx, task);
            return st;
        }
        if ((st = ops->consume(ctx, i, task)) != KOKORO_OK) return st;
    }
}

kokoro_status kk_pipeline_run(const kk_pipeline_ops *ops, void *ctx, int workers, size_t window)
{
    if (workers <= 1) return run_sequential(ops, ctx);
    if (window < (size_t)workers) window = (size_t)workers;
    run r = {.ops = ops, .ctx = ctx, .window = window};
    r.ring = calloc(window, sizeof *r.ring);
    pthread_t *th = calloc((size_t)workers, sizeof *th);
    if (!r.ring || !th) {
        free(r.ring);
        free(th);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory starting %d workers", workers);
    }
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.more, NULL);
    pthread_cond_init(&r.ready, NULL);
    int started = 0;
    kokoro_status st = KOKORO_OK;
    for (; started < workers; started++)
        if (pthread_create(&th[started], NULL, worker, &r) != 0) break;
    if (started == 0) st = kk_error(KOKORO_ERR_INTERNAL, "cannot start worker threads: %s", strerror(errno));

    pthread_mutex_lock(&r.mu);
    while (st == KOKORO_OK) {
        slot *s = &r.ring[r.consumed % window];
        if (r.failed && r.fail_index <= r.consumed) break;
        if (cancelled(&r)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "cancelled");
            break;
        }
        if (r.consumed < r.produced && s->state == DONE) {
            void *task = s->task;
            s->task = NULL;
            s->state = EMPTY;
            size_t idx = r.consumed;
            pthread_mutex_unlock(&r.mu);
            st = ops->consume(ctx, idx, task);
            pthread_mutex_lock(&r.mu);
            r.consumed++;
            pthread_cond_broadcast(&r.more);
            continue;
        }
        if (r.ended && r.consumed == r.produced) break;
        /* wake up now and then to notice a cancellation */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&r.ready, &r.mu, &ts);
    }
    r.stop = 1;
    pthread_cond_broadcast(&r.more);
    pthread_mutex_unlock(&r.mu);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (size_t i = 0; i < window; i++)
        if (r.ring[i].task) ops->discard(ctx, r.ring[i].task);
    if (st == KOKORO_OK && r.failed) st = kk_error(r.fail_st, "%s", r.fail_msg);
    pthread_cond_destroy(&r.more);
    pthread_cond_destroy(&r.ready);
    pthread_mutex_destroy(&r.mu);
    free(r.ring);
    free(th);
    return st;
}
