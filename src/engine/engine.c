/* The engine: text → front end chunks → synthesis on N workers → joins →
 * pieces in order. The front end runs as the pipeline's producer, a
 * paragraph at a time, so synthesis starts after the first paragraph, not
 * after the whole text. Each chunk draws its noise from (seed, chunk index),
 * never from the thread that ran it, so a parallel run equals the sequential
 * one sample for sample. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "engine/asyncq.h"
#include "engine/pipeline.h"
#include "kokoro.h"

struct kokoro_engine {
    kokoro_model *model;
    kokoro_voices *voices;
    kokoro_perf_config perf;
    int workers, threads;
};

kokoro_engine_options kokoro_engine_options_default(void)
{
    kokoro_engine_options o;
    memset(&o, 0, sizeof o);
    o.perf = kokoro_perf_config_default();
    return o;
}

kokoro_status kokoro_engine_open(const kokoro_engine_options *opts, kokoro_engine **out)
{
    if (!opts || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_engine_open: NULL argument");
    *out = NULL;
    if (!opts->test_weights && !opts->model_path)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_engine_open: no model file given (and test weights not asked for)");
    const kokoro_perf_config *p = &opts->perf;
    if (p->max_workers < 0 || p->threads_per_worker < 0 || p->io_queue_size < 1 || p->gpu_batch_size < 1)
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "performance config: max_workers %d, threads %d, io_queue_size %d, gpu_batch_size %d "
                        "(workers and threads >= 0, queue and batch >= 1)",
                        p->max_workers, p->threads_per_worker, p->io_queue_size, p->gpu_batch_size);
    kokoro_engine *e = calloc(1, sizeof *e);
    if (!e) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    e->perf = *p;
    kokoro_perf_config_resolve(p, &e->workers, &e->threads);
    kokoro_status st = opts->test_weights ? kokoro_model_load_test_weights(&e->model)
                                          : kokoro_model_load(opts->model_path, &e->model);
    if (st == KOKORO_OK) {
        if (opts->voices_path) {
            st = kokoro_voices_load(opts->voices_path, &e->voices);
        } else if (opts->model_path && kokoro_voices_load(opts->model_path, &e->voices) != KOKORO_OK) {
            e->voices = NULL; /* a model without voices: speaking then says so */
            kk_error_clear();
        }
    }
    if (st != KOKORO_OK) {
        kokoro_engine_free(e);
        return st;
    }
    kokoro_set_num_threads(e->threads);
    *out = e;
    return KOKORO_OK;
}

void kokoro_engine_free(kokoro_engine *e)
{
    if (!e) return;
    kokoro_model_free(e->model);
    kokoro_voices_free(e->voices);
    free(e);
}

const kokoro_model *kokoro_engine_model(const kokoro_engine *e) { return e ? e->model : NULL; }
const kokoro_voices *kokoro_engine_voices(const kokoro_engine *e) { return e ? e->voices : NULL; }

const kokoro_perf_config *kokoro_engine_perf(const kokoro_engine *e) { return e ? &e->perf : NULL; }

void kokoro_engine_workers(const kokoro_engine *e, int *workers, int *threads)
{
    if (workers) *workers = e ? e->workers : 0;
    if (threads) *threads = e ? e->threads : 0;
}

kokoro_speak_options kokoro_speak_options_default(void)
{
    kokoro_speak_options o;
    memset(&o, 0, sizeof o);
    o.speed = 1.0f;
    o.join = kokoro_join_options_default();
    return o;
}

/* ---- one call ---- */

typedef struct task {
    kokoro_chunk chunk;
    int last;            /* no chunk follows */
    size_t total;        /* the chunk count as known when this one was made */
    int exact;
    kokoro_audio audio; /* empty for a pause */
    float style[KOKORO_STYLE_DIM];
} task;

typedef struct item { /* a piece queued for the writer thread, owning its buffers */
    kokoro_piece piece;
    float *samples;
    kokoro_word_time *words;
    char *phonemes;
} item;

typedef struct speak_run {
    kokoro_engine *e;
    const kokoro_speak_options *o;
    kokoro_chunker *chunker; /* used by the producer only */
    kokoro_chunk first;      /* chunk 0, read before the run to reject an empty text */
    int have_first;
    kokoro_pause_kind next_pause; /* before the next chunk, from the one consumed last */
    kokoro_piece_fn fn;
    void *user;
    kokoro_joiner *joiner;
    float *buf; /* what the joiner emitted for the current chunk */
    size_t nbuf, capbuf;
    uint64_t emitted; /* samples handed to fn */
    kk_asyncq *q;
    double t0;
} speak_run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t chunk_seed(uint64_t seed, size_t k)
{
    uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(k + 1));
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Called serially, in index order: the front end makes the next chunk. */
static kokoro_status produce(void *ctx, size_t index, void **out)
{
    speak_run *r = ctx;
    *out = NULL;
    kokoro_chunk c;
    int have = 0;
    kokoro_status st = KOKORO_OK;
    if (index == 0 && r->have_first) {
        c = r->first, have = 1;
        r->have_first = 0;
    } else {
        st = kokoro_chunker_next(r->chunker, &c, &have);
    }
    if (st != KOKORO_OK || !have) return st;
    task *t = calloc(1, sizeof *t);
    if (!t) {
        kokoro_chunk_clear(&c);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    t->chunk = c;
    t->last = kokoro_chunker_finished(r->chunker);
    t->total = kokoro_chunker_total(r->chunker, &t->exact);
    *out = t;
    return KOKORO_OK;
}

static kokoro_status work(void *ctx, size_t index, void *p)
{
    speak_run *r = ctx;
    task *t = p;
    const kokoro_chunk *c = &t->chunk;
    if (c->pause_s > 0 || c->n_ids == 0) return KOKORO_OK;
    kokoro_status st = kokoro_voices_style(r->e->voices, r->o->voice, c->n_ids, t->style);
    if (st != KOKORO_OK) return st;
    kokoro_synth_options so = kokoro_synth_options_default();
    so.speed = r->o->speed;
    so.seed = chunk_seed(r->o->seed, index);
    so.no_noise = r->o->no_noise;
    st = kokoro_synthesize(r->e->model, c->ids, c->n_ids, t->style, &so, &t->audio);
    if (st != KOKORO_OK) kk_error_prefix("chunk %zu (bytes %zu-%zu of the input)", index + 1, c->src_begin, c->src_end);
    return st;
}

static void discard(void *ctx, void *p)
{
    (void)ctx;
    task *t = p;
    kokoro_audio_free(&t->audio);
    kokoro_chunk_clear(&t->chunk);
    free(t);
}

static int stopped(void *ctx)
{
    speak_run *r = ctx;
    return r->o->cancelled && r->o->cancelled(r->o->user);
}

/* The joiner's sink: collects the current chunk's output. */
static kokoro_status collect(void *ctx, const float *x, size_t n)
{
    speak_run *r = ctx;
    if (r->nbuf + n > r->capbuf) {
        size_t cap = r->capbuf ? r->capbuf : 65536;
        while (cap < r->nbuf + n) cap *= 2;
        float *b = realloc(r->buf, cap * sizeof *b);
        if (!b) return kk_error(KOKORO_ERR_NOMEM, "out of memory joining audio");
        r->buf = b;
        r->capbuf = cap;
    }
    if (x) memcpy(r->buf + r->nbuf, x, n * sizeof *x);
    else memset(r->buf + r->nbuf, 0, n * sizeof *r->buf);
    r->nbuf += n;
    return KOKORO_OK;
}

/* The pause after chunk c, before the next one. */
static kokoro_pause_kind pause_after(const kokoro_chunk *c)
{
    if (c->pause_s > 0) return KOKORO_PAUSE_NONE; /* the marker was the pause */
    if (c->ends_paragraph) return KOKORO_PAUSE_PARAGRAPH;
    if (c->ends_sentence) return KOKORO_PAUSE_SENTENCE;
    return KOKORO_PAUSE_CLAUSE;
}

static kokoro_status q_write(void *ctx, void *p)
{
    speak_run *r = ctx;
    item *it = p;
    kokoro_status st = r->fn(r->user, &it->piece);
    free(it->samples);
    free(it->words);
    free(it->phonemes);
    free(it);
    return st;
}

static void q_drop(void *ctx, void *p)
{
    (void)ctx;
    item *it = p;
    free(it->samples);
    free(it->words);
    free(it->phonemes);
    free(it);
}

static kokoro_status consume(void *ctx, size_t k, void *p)
{
    speak_run *r = ctx;
    task *t = p;
    kokoro_chunk *c = &t->chunk;
    r->nbuf = 0;
    size_t trimmed = 0;
    uint64_t start = 0;
    kokoro_status st;
    if (c->pause_s > 0) { /* [pause:Ns]: exact silence, written as it is */
        size_t n = (size_t)((double)c->pause_s * KOKORO_SAMPLE_RATE + 0.5);
        float *z = calloc(n ? n : 1, sizeof *z);
        st = z ? kokoro_joiner_push(r->joiner, z, n, KOKORO_PAUSE_NONE, 1, NULL, &start)
               : kk_error(KOKORO_ERR_NOMEM, "out of memory");
        free(z);
    } else {
        st = kokoro_joiner_push(r->joiner, t->audio.samples, t->audio.n_samples, k ? r->next_pause : KOKORO_PAUSE_NONE,
                                r->o->no_trim, &trimmed, &start);
    }
    r->next_pause = pause_after(c);
    if (st == KOKORO_OK && t->last) st = kokoro_joiner_finish(r->joiner);

    /* word times from the predicted durations: token i lasts durations[i + 1]
     * frames (durations[0] is the leading pad) */
    kokoro_word_time *words = NULL;
    size_t nw = 0;
    if (st == KOKORO_OK && c->n_words && t->audio.durations) {
        words = calloc(c->n_words, sizeof *words);
        if (!words) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
        uint64_t kept_end = start + (t->audio.n_samples > trimmed ? t->audio.n_samples - trimmed : 0);
        for (size_t w = 0; words && w < c->n_words; w++) {
            const kokoro_word *src = &c->words[w];
            uint64_t f0 = 0, f1 = 0;
            for (size_t i = 0; i <= src->token_end && i < t->audio.n_durations; i++) {
                if (i <= src->token_begin) f0 += (uint64_t)t->audio.durations[i];
                f1 += (uint64_t)t->audio.durations[i];
            }
            uint64_t s0 = f0 * KOKORO_SAMPLES_PER_FRAME, s1 = f1 * KOKORO_SAMPLES_PER_FRAME;
            uint64_t a = start + (s0 > trimmed ? s0 - trimmed : 0), b = start + (s1 > trimmed ? s1 - trimmed : 0);
            if (a > kept_end) a = kept_end;
            if (b > kept_end) b = kept_end;
            words[nw].src_begin = src->src_begin;
            words[nw].src_end = src->src_end;
            words[nw].start = a;
            words[nw].end = b < a ? a : b;
            nw++;
        }
    }
    kokoro_audio_free(&t->audio);
    size_t total = t->total > k + 1 || t->last ? t->total : k + 2;
    int exact = t->exact;
    char *phonemes = c->phonemes;
    c->phonemes = NULL;
    size_t src_begin = c->src_begin, src_end = c->src_end;
    kokoro_chunk_clear(c);
    free(t);
    if (st != KOKORO_OK) {
        free(words);
        free(phonemes);
        return st;
    }
    kokoro_piece piece = {.samples = r->buf,
                          .n = r->nbuf,
                          .position = r->emitted,
                          .index = k,
                          .count = total,
                          .count_exact = exact,
                          .src_begin = src_begin,
                          .src_end = src_end,
                          .phonemes = phonemes ? phonemes : "",
                          .words = words,
                          .n_words = nw};
    r->emitted += r->nbuf;
    if (r->q) {
        item *it = calloc(1, sizeof *it);
        float *copy = it ? malloc((r->nbuf ? r->nbuf : 1) * sizeof *copy) : NULL;
        if (!it || !copy) {
            free(it);
            free(copy);
            free(words);
            free(phonemes);
            return kk_error(KOKORO_ERR_NOMEM, "out of memory queueing audio");
        }
        memcpy(copy, r->buf, r->nbuf * sizeof *copy);
        it->samples = copy;
        it->words = words;
        it->phonemes = phonemes;
        it->piece = piece;
        it->piece.samples = copy;
        st = kk_asyncq_push(r->q, it);
    } else {
        st = r->fn(r->user, &piece);
        free(words);
        free(phonemes);
    }
    if (st == KOKORO_OK && r->o->progress) {
        kokoro_progress pr = {.what = r->o->what,
                              .done = k + 1,
                              .total = total,
                              .total_exact = exact,
                              .audio_seconds = (double)r->emitted / KOKORO_SAMPLE_RATE,
                              .elapsed_seconds = now() - r->t0};
        r->o->progress(r->o->user, &pr);
    }
    return st;
}

static kokoro_status check_speak(const kokoro_engine *e, const char *text, size_t len, const kokoro_speak_options *o)
{
    if (!e || !o || (!text && len)) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_engine_speak: NULL argument");
    if (!e->voices) return kk_error(KOKORO_ERR_INVALID_ARG, "no voices are loaded (give a voices file or folder)");
    if (!o->voice || !*o->voice) return kk_error(KOKORO_ERR_INVALID_ARG, "no voice given");
    if (!(o->speed >= 0.5f && o->speed <= 2.0f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "speed %g is out of range: expected 0.5 to 2.0", (double)o->speed);
    float probe[KOKORO_STYLE_DIM]; /* an unknown voice fails before any work, listing the voices */
    return kokoro_voices_style(e->voices, o->voice, 1, probe);
}

kokoro_status kokoro_engine_speak(kokoro_engine *e, const char *text, size_t len, const kokoro_speak_options *o,
                                  kokoro_piece_fn fn, void *user)
{
    if (!fn) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_engine_speak: no piece function");
    kokoro_status st = check_speak(e, text, len, o);
    if (st != KOKORO_OK) return st;
    const char *lang = o->lang ? o->lang : kokoro_lang_from_voice(o->voice);
    if (!lang)
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "cannot tell the language from the voice '%s' (its first letter names none): give one", o->voice);
    kokoro_frontend_options fo = kokoro_frontend_options_default();
    fo.lang = lang;
    fo.lexicon_path = o->lexicon_path;
    fo.target_tokens = o->target_tokens;
    fo.first_tokens = o->first_tokens;
    fo.phoneme_input = o->phoneme_input;
    kokoro_frontend *fe = NULL;
    speak_run r = {.e = e, .o = o, .fn = fn, .user = user, .t0 = now()};
    if ((st = kokoro_frontend_new(&fo, &fe)) != KOKORO_OK) return st;
    st = kokoro_chunker_new(fe, text ? text : "", len, &r.chunker);
    if (st == KOKORO_OK) st = kokoro_chunker_next(r.chunker, &r.first, &r.have_first);
    if (st == KOKORO_OK && !r.have_first)
        st = kk_error(KOKORO_ERR_INVALID_ARG, "nothing to say: the text is empty (or only markup and spaces)");
    if (st == KOKORO_OK) st = kokoro_joiner_new_sink(&o->join, collect, &r, &r.joiner);
    if (st == KOKORO_OK && e->perf.use_async_io) st = kk_asyncq_start((size_t)e->perf.io_queue_size, q_write, q_drop, &r, &r.q);
    if (st == KOKORO_OK) {
        static const kk_pipeline_ops ops = {produce, work, consume, discard, stopped};
        /* the window bounds the audio held in memory: the workers' chunks plus a few ready ones */
        st = kk_pipeline_run(&ops, &r, e->workers, (size_t)e->workers + 2);
        if (r.q) {
            if (st == KOKORO_OK) st = kk_asyncq_finish(r.q);
            else kk_asyncq_abort(r.q);
        }
    }
    kokoro_joiner_free(r.joiner);
    free(r.buf);
    if (r.have_first) kokoro_chunk_clear(&r.first);
    kokoro_chunker_free(r.chunker);
    kokoro_frontend_free(fe);
    return st;
}

static kokoro_status to_writer(void *user, const kokoro_piece *p)
{
    return kokoro_writer_write(user, p->samples, p->n);
}

kokoro_status kokoro_engine_speak_to_file(kokoro_engine *e, const char *text, size_t len,
                                          const kokoro_speak_options *o, const char *path,
                                          const kokoro_writer_options *wopts)
{
    kokoro_status st = check_speak(e, text, len, o);
    if (st != KOKORO_OK) return st;
    kokoro_writer *w;
    if ((st = kokoro_writer_open(path, wopts, &w)) != KOKORO_OK) return st;
    st = kokoro_engine_speak(e, text, len, o, to_writer, w);
    if (st != KOKORO_OK) {
        kokoro_writer_abort(w);
        return st;
    }
    return kokoro_writer_close(w);
}
