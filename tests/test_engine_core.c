/* The engine's plumbing: the ordered parallel pipeline (order, bounded
 * window, errors, cancellation), the async writer queue (order,
 * back-pressure, errors) and the performance config (KOKORO_* variables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>

#include <cmocka.h>

#include "core/error.h"
#include "engine/asyncq.h"
#include "engine/perf.h"
#include "engine/pipeline.h"
#include "kokoro.h"

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

typedef struct job {
    size_t index;
    uint64_t value;
} job;

typedef struct pctx {
    size_t n;             /* tasks to produce */
    size_t fail_at;       /* work fails on this index (SIZE_MAX: never) */
    size_t produce_fail;  /* produce fails on this index */
    atomic_int cancel;
    size_t cancel_after;  /* consumer sets cancel after this many */
    pthread_mutex_t mu;
    size_t live, max_live; /* produced and not yet consumed/discarded */
    size_t consumed;
    uint64_t out[512];
    int order_ok;
} pctx;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static kokoro_status produce(void *c, size_t index, void **task)
{
    pctx *p = c;
    *task = NULL;
    if (index == p->produce_fail) return kk_error(KOKORO_ERR_FORMAT, "chapter %zu is unreadable", index);
    if (index >= p->n) return KOKORO_OK;
    job *j = calloc(1, sizeof *j);
    j->index = index;
    pthread_mutex_lock(&p->mu);
    if (++p->live > p->max_live) p->max_live = p->live;
    pthread_mutex_unlock(&p->mu);
    *task = j;
    return KOKORO_OK;
}

static kokoro_status work(void *c, size_t index, void *task)
{
    pctx *p = c;
    job *j = task;
    nap_us((long)(mix(index) % 3000)); /* finish out of order */
    if (index == p->fail_at) return kk_error(KOKORO_ERR_INVALID_ARG, "chunk %zu has a bad token", index);
    uint64_t v = index;
    for (int i = 0; i < 1000; i++) v = mix(v);
    j->value = v;
    return KOKORO_OK;
}

static void release(pctx *p, job *j)
{
    pthread_mutex_lock(&p->mu);
    p->live--;
    pthread_mutex_unlock(&p->mu);
    free(j);
}

static kokoro_status consume(void *c, size_t index, void *task)
{
    pctx *p = c;
    job *j = task;
    if (j->index != index || index != p->consumed) p->order_ok = 0;
    p->out[p->consumed++] = j->value;
    release(p, j);
    if (p->cancel_after && p->consumed == p->cancel_after) atomic_store(&p->cancel, 1);
    return KOKORO_OK;
}

static void discard(void *c, void *task) { release(c, task); }

static int stopped(void *c) { return atomic_load(&((pctx *)c)->cancel); }

static const kk_pipeline_ops ops = {produce, work, consume, discard, stopped};

static void init(pctx *p, size_t n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->fail_at = p->produce_fail = SIZE_MAX;
    p->order_ok = 1;
    pthread_mutex_init(&p->mu, NULL);
}

static void test_pipeline_order_and_window(void **state)
{
    (void)state;
    pctx seq;
    init(&seq, 200);
    assert_int_equal(kk_pipeline_run(&ops, &seq, 1, 4), KOKORO_OK);
    assert_int_equal(seq.consumed, 200);
    assert_int_equal(seq.max_live, 1);
    const int workers[] = {2, 3, 8};
    for (size_t k = 0; k < 3; k++) {
        pctx par;
        init(&par, 200);
        size_t window = (size_t)workers[k] + 2;
        assert_int_equal(kk_pipeline_run(&ops, &par, workers[k], window), KOKORO_OK);
        assert_true(par.order_ok);
        assert_int_equal(par.consumed, 200);
        assert_memory_equal(par.out, seq.out, sizeof seq.out);
        assert_true(par.max_live <= window);
        assert_int_equal(par.live, 0);
        printf("  %d workers, window %zu: 200 tasks in order, at most %zu in flight\n", workers[k], window,
               par.max_live);
    }
    pctx empty;
    init(&empty, 0);
    assert_int_equal(kk_pipeline_run(&ops, &empty, 2, 4), KOKORO_OK);
    assert_int_equal(empty.consumed, 0);
}

static void test_pipeline_errors(void **state)
{
    (void)state;
    for (int w = 1; w <= 4; w += 3) {
        pctx p;
        init(&p, 100);
        p.fail_at = 37;
        assert_int_equal(kk_pipeline_run(&ops, &p, w, 6), KOKORO_ERR_INVALID_ARG);
        assert_string_equal(kokoro_last_error(), "chunk 37 has a bad token");
        assert_int_equal(p.consumed, 37); /* everything before the failure, nothing after */
        assert_true(p.order_ok);
        assert_int_equal(p.live, 0);

        init(&p, 100);
        p.produce_fail = 12;
        assert_int_equal(kk_pipeline_run(&ops, &p, w, 6), KOKORO_ERR_FORMAT);
        assert_string_equal(kokoro_last_error(), "chapter 12 is unreadable");
        assert_int_equal(p.consumed, 12);
        assert_int_equal(p.live, 0);
    }
}

static void test_pipeline_cancel(void **state)
{
    (void)state;
    for (int w = 1; w <= 3; w += 2) {
        pctx p;
        init(&p, 300);
        p.cancel_after = 20;
        assert_int_equal(kk_pipeline_run(&ops, &p, w, 5), KOKORO_ERR_CANCELLED);
        assert_int_equal(p.consumed, 20);
        assert_int_equal(p.live, 0);
    }
}

/* ---- async queue ---- */

typedef struct qctx {
    int written[64];
    int n;
    int fail_at;
    int dropped;
    long delay_us;
} qctx;

static kokoro_status q_write(void *c, void *item)
{
    qctx *q = c;
    int v = *(int *)item;
    free(item);
    nap_us(q->delay_us);
    if (v == q->fail_at) return kk_error(KOKORO_ERR_IO, "disk full writing item %d", v);
    q->written[q->n++] = v;
    return KOKORO_OK;
}

static void q_drop(void *c, void *item)
{
    ((qctx *)c)->dropped++;
    free(item);
}

static int *boxed(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

static void test_asyncq(void **state)
{
    (void)state;
    qctx c = {.fail_at = -1, .delay_us = 2000};
    kk_asyncq *q;
    assert_int_equal(kk_asyncq_start(3, q_write, q_drop, &c, &q), KOKORO_OK);
    for (int i = 0; i < 40; i++) assert_int_equal(kk_asyncq_push(q, boxed(i)), KOKORO_OK);
    size_t high = kk_asyncq_high_water(q);
    assert_int_equal(kk_asyncq_finish(q), KOKORO_OK);
    assert_int_equal(c.n, 40);
    for (int i = 0; i < 40; i++) assert_int_equal(c.written[i], i);
    assert_true(high <= 3 && high >= 1); /* the slow writer filled the queue: back-pressure held it at 3 */
    printf("  40 items through a queue of 3: in order, high water %zu\n", high);

    qctx e = {.fail_at = 5};
    assert_int_equal(kk_asyncq_start(2, q_write, q_drop, &e, &q), KOKORO_OK);
    kokoro_status st = KOKORO_OK;
    int pushed = 0;
    for (int i = 0; i < 40 && st == KOKORO_OK; i++, pushed++) {
        st = kk_asyncq_push(q, boxed(i));
        nap_us(500);
    }
    kokoro_status fin = kk_asyncq_finish(q);
    assert_int_equal(fin, KOKORO_ERR_IO);
    assert_string_equal(kokoro_last_error(), "disk full writing item 5");
    assert_int_equal(e.n, 5);
    assert_int_equal(e.n + 1 + e.dropped, pushed); /* every item was written, failed or dropped */

    qctx a = {.fail_at = -1, .delay_us = 3000};
    assert_int_equal(kk_asyncq_start(8, q_write, q_drop, &a, &q), KOKORO_OK);
    for (int i = 0; i < 8; i++) assert_int_equal(kk_asyncq_push(q, boxed(i)), KOKORO_OK);
    kk_asyncq_abort(q);
    assert_int_equal(a.n + a.dropped, 8);
    assert_true(a.dropped > 0);
}

/* ---- the engine API: progress and cancellation ---- */

typedef struct speak_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t caller;
    size_t pieces, progress_calls, last_done, total, at_cancel;
    double last_audio, t_start, t_piece, max_gap; /* max_gap: the longest wait for a piece (a chunk's synthesis) */
    double t_cancel; /* when the other thread cancelled; after the call, how long it went on */
    int cancel_after; /* pieces before the other thread cancels; 0: never */
    atomic_int cancelled;
    int total_exact;
    int bad;  /* a progress report out of order or off the calling thread */
    int over; /* the call returned */
} speak_ctx;

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static kokoro_status on_piece(void *user, const kokoro_piece *p)
{
    speak_ctx *c = user;
    pthread_mutex_lock(&c->mu);
    double t = secs();
    double gap = t - (c->pieces ? c->t_piece : c->t_start);
    if (gap > c->max_gap) c->max_gap = gap;
    c->t_piece = t;
    if (p->index != c->pieces) c->bad = 1;
    c->pieces++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return KOKORO_OK;
}

static void on_progress(void *user, const kokoro_progress *p)
{
    speak_ctx *c = user;
    pthread_mutex_lock(&c->mu);
    if (!pthread_equal(pthread_self(), c->caller)) c->bad = 1;
    /* total: an estimate above done until the front end has read the text, then exact and fixed */
    if (p->done != c->last_done + 1 || p->done > p->total || (c->total_exact && p->total != c->total)) c->bad = 1;
    if (!p->total_exact && p->done >= p->total) c->bad = 1;
    if (c->total_exact && !p->total_exact) c->bad = 1;
    c->total_exact = p->total_exact;
    if (p->audio_seconds < c->last_audio || p->done != c->pieces) c->bad = 1;
    c->last_done = p->done;
    c->total = p->total;
    c->last_audio = p->audio_seconds;
    c->progress_calls++;
    pthread_mutex_unlock(&c->mu);
}

static int is_cancelled(void *user) { return atomic_load(&((speak_ctx *)user)->cancelled); }

/* Another thread: waits for cancel_after pieces, then cancels. */
static void *canceller(void *arg)
{
    speak_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    while (c->pieces < (size_t)c->cancel_after && !c->over) pthread_cond_wait(&c->cv, &c->mu);
    if (!c->over) {
        c->at_cancel = c->pieces;
        c->t_cancel = secs();
        atomic_store(&c->cancelled, 1);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* The test weights and voices on workers workers of one thread each. */
static kokoro_engine *open_engine(int workers)
{
    kokoro_engine_options eo = kokoro_engine_options_default();
    eo.test_weights = 1;
    eo.voices_path = KOKORO_TEST_DATA "/voices";
    eo.perf.use_parallel = workers > 1;
    eo.perf.max_workers = workers;
    eo.perf.threads_per_worker = 1;
    kokoro_engine *e = NULL;
    assert_int_equal(kokoro_engine_open(&eo, &e), KOKORO_OK);
    return e;
}

static kokoro_status speak_once(int workers, int cancel_after, speak_ctx *c)
{
    kokoro_engine *e = open_engine(workers);
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->caller = pthread_self();
    c->cancel_after = cancel_after;
    kokoro_speak_options o = kokoro_speak_options_default();
    o.voice = "af_heart";
    o.target_tokens = 8; /* a chunk a sentence */
    o.progress = on_progress;
    o.cancelled = is_cancelled;
    o.user = c;
    const char *text = "Go on. Come here. Stay there. Go on. Come here. Stay there. Go on. Come here.";
    pthread_t th;
    c->t_start = secs();
    if (cancel_after) assert_int_equal(pthread_create(&th, NULL, canceller, c), 0);
    kokoro_status st = kokoro_engine_speak(e, text, strlen(text), &o, on_piece, c);
    double t_end = secs();
    if (cancel_after) {
        pthread_mutex_lock(&c->mu);
        c->over = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(th, NULL);
        printf("  %d worker(s): cancelled after %zu pieces, %zu delivered, %.2f s after the cancel "
               "(longest chunk %.2f s)\n", workers, c->at_cancel, c->pieces, t_end - c->t_cancel, c->max_gap);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    kokoro_engine_free(e);
    c->t_cancel = t_end - c->t_cancel; /* now: how long the call went on after the cancel */
    return st;
}

static void test_engine_progress(void **state)
{
    (void)state;
    speak_ctx c;
    assert_int_equal(speak_once(1, 0, &c), KOKORO_OK);
    assert_false(c.bad);
    assert_true(c.total >= 6); /* a chunk per sentence */
    assert_int_equal(c.progress_calls, c.total);
    assert_int_equal(c.last_done, c.total);
    assert_true(c.total_exact);
    assert_int_equal(c.pieces, c.total);
    assert_true(c.last_audio > 0);
}

static void test_engine_cancel(void **state)
{
    (void)state;
    for (int workers = 1; workers <= 2; workers++) {
        speak_ctx c;
        kokoro_status st = speak_once(workers, 2, &c);
        assert_int_equal(st, KOKORO_ERR_CANCELLED);
        assert_non_null(strstr(kokoro_last_error(), "cancel"));
        assert_false(c.bad);
        assert_true(c.at_cancel >= 2);
        /* within one chunk: at most the piece being delivered when the flag was set */
        assert_true(c.pieces <= c.at_cancel + 1);
        assert_true(c.pieces < c.total);
        assert_true(c.t_cancel < 2 * c.max_gap + 2.0);
    }
}

/* The front end runs a paragraph ahead of synthesis: the first piece of a
 * long text arrives while most of the text is not yet phonemised (the
 * chunk count is still an estimate then), with 1 and 2 workers. */
typedef struct lazy_ctx {
    atomic_int pieces;
    int first_exact;
    size_t first_total;
} lazy_ctx;

static kokoro_status lazy_piece(void *user, const kokoro_piece *p)
{
    lazy_ctx *c = user;
    if (atomic_fetch_add(&c->pieces, 1) == 0) c->first_exact = p->count_exact, c->first_total = p->count;
    return KOKORO_OK;
}

static int lazy_stop(void *user) { return atomic_load(&((lazy_ctx *)user)->pieces) > 0; }

static void test_engine_front_end_streams(void **state)
{
    (void)state;
    const char *para = "Go on, then.\n\n";
    size_t n = 400, pl = strlen(para);
    char *text = malloc(n * pl + 1);
    for (size_t i = 0; i < n; i++) memcpy(text + i * pl, para, pl);
    text[n * pl] = 0;
    for (int workers = 1; workers <= 2; workers++) {
        kokoro_engine *e = open_engine(workers);
        kokoro_speak_options o = kokoro_speak_options_default();
        o.voice = "af_heart";
        o.cancelled = lazy_stop;
        lazy_ctx c = {0};
        o.user = &c;
        assert_int_equal(kokoro_engine_speak(e, text, strlen(text), &o, lazy_piece, &c), KOKORO_ERR_CANCELLED);
        printf("  %d worker(s): first piece with the chunk count %s (%zu of %zu paragraphs)\n", workers,
               c.first_exact ? "exact" : "estimated", c.first_total, n);
        assert_int_equal(atomic_load(&c.pieces), 1);
        assert_false(c.first_exact);
        assert_true(c.first_total >= 2);
        kokoro_engine_free(e);
    }
    free(text);
}

/* ---- performance config ---- */

static void test_perf_config(void **state)
{
    (void)state;
    kokoro_perf_config c = kokoro_perf_config_default();
    assert_int_equal(c.use_parallel, 0);
    assert_int_equal(c.io_queue_size, 10);
    int w, t;
    kokoro_perf_config_resolve(&c, &w, &t);
    assert_int_equal(w, 1);
    assert_int_equal(t, kokoro_cpu_count());

    setenv("KOKORO_USE_PARALLEL", "true", 1);
    setenv("KOKORO_MAX_WORKERS", "2", 1);
    setenv("KOKORO_ASYNC_IO", "1", 1);
    setenv("KOKORO_IO_QUEUE_SIZE", "8", 1);
    setenv("KOKORO_MEMORY_STREAMING", "off", 1);
    setenv("KOKORO_GPU_BATCHING", "yes", 1);
    setenv("KOKORO_GPU_BATCH_SIZE", "16", 1);
    assert_int_equal(kokoro_perf_config_from_env(&c), KOKORO_OK);
    assert_int_equal(c.use_parallel, 1);
    assert_int_equal(c.max_workers, 2);
    assert_int_equal(c.use_async_io, 1);
    assert_int_equal(c.io_queue_size, 8);
    assert_int_equal(c.use_memory_streaming, 0);
    assert_int_equal(c.gpu_batching, 1);
    assert_int_equal(c.gpu_batch_size, 16);
    kokoro_perf_config_resolve(&c, &w, &t);
    assert_int_equal(w, kokoro_cpu_count() < 2 ? kokoro_cpu_count() : 2);
    assert_true(w * t <= kokoro_cpu_count());

    setenv("KOKORO_MAX_WORKERS", "many", 1);
    assert_int_equal(kokoro_perf_config_from_env(&c), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "KOKORO_MAX_WORKERS=many"));
    setenv("KOKORO_MAX_WORKERS", "0", 1);
    assert_int_equal(kokoro_perf_config_from_env(&c), KOKORO_ERR_INVALID_ARG);
    unsetenv("KOKORO_MAX_WORKERS");
    setenv("KOKORO_ASYNC_IO", "maybe", 1);
    assert_int_equal(kokoro_perf_config_from_env(&c), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "KOKORO_ASYNC_IO=maybe: expected true or false"));
    assert_int_equal(kokoro_perf_config_set(&c, "KOKORO_NOPE", "1"), KOKORO_ERR_INVALID_ARG);
    const char *vars[] = {"KOKORO_USE_PARALLEL", "KOKORO_ASYNC_IO", "KOKORO_IO_QUEUE_SIZE", "KOKORO_MEMORY_STREAMING",
                          "KOKORO_GPU_BATCHING", "KOKORO_GPU_BATCH_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

/* Workers × threads within the cores unless both were given (or the threads
 * alone exceed the cores), on machines of 1 to 16 cores. */
static void test_perf_resolve(void **state)
{
    (void)state;
    for (int cores = 1; cores <= 16; cores++)
        for (int par = 0; par <= 1; par++)
            for (int mw = 0; mw <= 20; mw++)
                for (int th = 0; th <= 20; th++) {
                    kokoro_perf_config c = kokoro_perf_config_default();
                    c.use_parallel = par, c.max_workers = mw, c.threads_per_worker = th;
                    int w, t;
                    kk_perf_resolve(&c, cores, &w, &t);
                    assert_true(w >= 1 && t >= 1);
                    if (!par) assert_int_equal(w, 1);
                    if (par && mw) assert_true(w <= mw);
                    if (th) assert_int_equal(t, th);
                    if (par && mw && th) assert_int_equal(w, mw); /* both given: as given */
                    else if (th <= cores && w * t > cores) {
                        printf("cores %d, parallel %d, max_workers %d, threads %d -> %d x %d\n", cores, par, mw, th, w, t);
                        fail();
                    }
                }
    /* the case the audit found: --max-workers 3 alone on 2 cores */
    kokoro_perf_config c = kokoro_perf_config_default();
    c.use_parallel = 1, c.max_workers = 3;
    int w, t;
    kk_perf_resolve(&c, 2, &w, &t);
    assert_int_equal(w, 2);
    assert_int_equal(t, 1);
    c.threads_per_worker = 1; /* both given: oversubscribing is the user's choice */
    kk_perf_resolve(&c, 2, &w, &t);
    assert_int_equal(w, 3);
    c.max_workers = 0, c.threads_per_worker = 2; /* threads given: the workers fit them */
    kk_perf_resolve(&c, 4, &w, &t);
    assert_int_equal(w, 2);
    assert_int_equal(t, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_order_and_window),
        cmocka_unit_test(test_pipeline_errors),
        cmocka_unit_test(test_pipeline_cancel),
        cmocka_unit_test(test_asyncq),
        cmocka_unit_test(test_perf_config),
        cmocka_unit_test(test_perf_resolve),
        cmocka_unit_test(test_engine_progress),
        cmocka_unit_test(test_engine_cancel),
        cmocka_unit_test(test_engine_front_end_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
