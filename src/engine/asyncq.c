#include "engine/asyncq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"

struct kk_asyncq {
    kk_asyncq_fn fn;
    kk_asyncq_drop drop;
    void *ctx;
    void **items;
    size_t cap, head, count, high;
    int closing, aborting;
    kokoro_status st;
    char msg[1024];
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    pthread_t th;
};

static void *writer(void *arg)
{
    kk_asyncq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->count == 0 && !q->closing) pthread_cond_wait(&q->not_empty, &q->mu);
        if (q->count == 0) break;
        void *item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_cond_broadcast(&q->not_full);
        int skip = q->st != KOKORO_OK || q->aborting;
        pthread_mutex_unlock(&q->mu);
        kokoro_status st = KOKORO_OK;
        if (skip) q->drop(q->ctx, item);
        else st = q->fn(q->ctx, item);
        pthread_mutex_lock(&q->mu);
        if (st != KOKORO_OK && q->st == KOKORO_OK) {
            q->st = st;
            snprintf(q->msg, sizeof q->msg, "%s", kokoro_last_error());
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

kokoro_status kk_asyncq_start(size_t capacity, kk_asyncq_fn fn, kk_asyncq_drop drop, void *ctx, kk_asyncq **out)
{
    *out = NULL;
    if (capacity == 0) capacity = 1;
    kk_asyncq *q = calloc(1, sizeof *q);
    if (!q || !(q->items = calloc(capacity, sizeof *q->items))) {
        free(q);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    q->fn = fn, q->drop = drop, q->ctx = ctx, q->cap = capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    if (pthread_create(&q->th, NULL, writer, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->not_empty);
        pthread_cond_destroy(&q->not_full);
        free(q->items);
        free(q);
        return kk_error(KOKORO_ERR_INTERNAL, "cannot start the writer thread");
    }
    *out = q;
    return KOKORO_OK;
}

kokoro_status kk_asyncq_push(kk_asyncq *q, void *item)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap && q->st == KOKORO_OK) pthread_cond_wait(&q->not_full, &q->mu);
    if (q->st != KOKORO_OK) {
        kokoro_status st = kk_error(q->st, "%s", q->msg);
        pthread_mutex_unlock(&q->mu);
        q->drop(q->ctx, item);
        return st;
    }
    q->items[(q->head + q->count) % q->cap] = item;
    q->count++;
    if (q->count > q->high) q->high = q->count;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return KOKORO_OK;
}

static kokoro_status stop(kk_asyncq *q, int abort)
{
    pthread_mutex_lock(&q->mu);
    q->closing = 1;
    q->aborting = abort;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    kokoro_status st = q->st;
    if (st != KOKORO_OK && !abort) kk_error(st, "%s", q->msg);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->items);
    free(q);
    return st;
}

kokoro_status kk_asyncq_finish(kk_asyncq *q) { return q ? stop(q, 0) : KOKORO_OK; }

void kk_asyncq_abort(kk_asyncq *q)
{
    if (q) stop(q, 1);
}

size_t kk_asyncq_high_water(kk_asyncq *q)
{
    if (!q) return 0;
    pthread_mutex_lock(&q->mu);
    size_t h = q->high;
    pthread_mutex_unlock(&q->mu);
    return h;
}
