/* Joining chunk audio: edge-silence trimming, fades, pauses, crossfades,
 * and the streaming joiner that feeds a writer. */
#include "core/error.h"
#include "kokoro.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* The level is measured on 5 ms frames (RMS), so a lone click does not count
 * as speech and a quiet consonant's energy does. */
#define TRIM_FRAME (KOKORO_SAMPLE_RATE / 200)

kokoro_join_options kokoro_join_options_default(void)
{
    kokoro_join_options o;
    o.threshold_db = -40.0f;
    o.relative = 1;
    o.margin_ms = 40;
    o.fade_ms = 5;
    o.pause_ms[KOKORO_PAUSE_NONE] = 0;
    o.pause_ms[KOKORO_PAUSE_CLAUSE] = 150;
    o.pause_ms[KOKORO_PAUSE_SENTENCE] = 350;
    o.pause_ms[KOKORO_PAUSE_PARAGRAPH] = 700;
    o.pause_ms[KOKORO_PAUSE_CHAPTER] = 2000;
    return o;
}

static kokoro_status check_opts(const kokoro_join_options *o)
{
    if (!(o->threshold_db <= 0.0f) || o->threshold_db < -200.0f)
        return kk_error(KOKORO_ERR_INVALID_ARG, "join options: threshold %g dB out of range (-200..0)", (double)o->threshold_db);
    if (o->margin_ms < 0 || o->margin_ms > 10000 || o->fade_ms < 0 || o->fade_ms > 1000)
        return kk_error(KOKORO_ERR_INVALID_ARG, "join options: margin %d ms (0..10000) or fade %d ms (0..1000) out of range",
                        o->margin_ms, o->fade_ms);
    for (int i = 0; i < 5; i++)
        if (o->pause_ms[i] < 0 || o->pause_ms[i] > 600000)
            return kk_error(KOKORO_ERR_INVALID_ARG, "join options: pause %d is %d ms (0..600000)", i, o->pause_ms[i]);
    return KOKORO_OK;
}

static size_t ms_to_samples(int ms) { return (size_t)ms * KOKORO_SAMPLE_RATE / 1000; }

size_t kokoro_join_pause_samples(const kokoro_join_options *o, kokoro_pause_kind kind)
{
    if (!o || (int)kind < 0 || kind > KOKORO_PAUSE_CHAPTER || o->pause_ms[kind] < 0) return 0;
    return ms_to_samples(o->pause_ms[kind]);
}

static double frame_rms(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = isfinite(x[i]) ? x[i] : 0.0;
        s += v * v;
    }
    return n ? sqrt(s / (double)n) : 0.0;
}

kokoro_status kokoro_audio_trim(const float *x, size_t n, const kokoro_join_options *opts, size_t *start, size_t *end)
{
    if ((!x && n) || !start || !end) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_audio_trim: NULL argument");
    kokoro_join_options def = kokoro_join_options_default();
    if (!opts) opts = &def;
    kokoro_status st = check_opts(opts);
    if (st != KOKORO_OK) return st;
    *start = *end = 0;
    if (n == 0) return KOKORO_OK;
    double thr = pow(10.0, opts->threshold_db / 20.0);
    if (opts->relative) {
        double peak = 0.0;
        for (size_t i = 0; i < n; i++) {
            double a = fabs((double)x[i]);
            if (isfinite(a) && a > peak) peak = a;
        }
        if (peak == 0.0) return KOKORO_OK;
        thr *= peak;
    }
    size_t nf = (n + TRIM_FRAME - 1) / TRIM_FRAME, first = nf, last = 0;
    for (size_t f = 0; f < nf; f++) {
        size_t a = f * TRIM_FRAME, len = n - a < TRIM_FRAME ? n - a : TRIM_FRAME;
        if (frame_rms(x + a, len) > thr) {
            if (first == nf) first = f;
            last = f;
        }
    }
    if (first == nf) return KOKORO_OK; /* nothing above the threshold: all silence */
    size_t margin = ms_to_samples(opts->margin_ms);
    size_t s = first * TRIM_FRAME, e = (last + 1) * TRIM_FRAME;
    if (e > n) e = n;
    *start = s > margin ? s - margin : 0;
    *end = n - e > margin ? e + margin : n;
    return KOKORO_OK;
}

/* raised cosine from 0 (i = 0) to 1 (i = len) */
static float ramp(size_t i, size_t len) { return (float)(0.5 - 0.5 * cos(M_PI * ((double)i + 0.5) / (double)len)); }

void kokoro_audio_fade(float *x, size_t n, size_t fade_in, size_t fade_out)
{
    if (!x) return;
    if (fade_in > n / 2) fade_in = n / 2;
    if (fade_out > n / 2) fade_out = n / 2;
    for (size_t i = 0; i < fade_in; i++) x[i] *= ramp(i, fade_in);
    for (size_t i = 0; i < fade_out; i++) x[n - 1 - i] *= ramp(i, fade_out);
}

void kokoro_audio_crossfade(float *a_tail, const float *b_head, size_t n)
{
    if (!a_tail || !b_head) return;
    for (size_t i = 0; i < n; i++) {
        float w = ramp(i, n);
        a_tail[i] = a_tail[i] * (1.0f - w) + b_head[i] * w;
    }
}

struct kokoro_joiner {
    kokoro_join_options o;
    kokoro_sample_sink sink; /* samples, or NULL for n samples of silence */
    void *user;
    uint64_t pos;            /* samples handed to the sink */
    float *tail;       /* the previous chunk's last samples, not yet written */
    size_t n_tail, cap_tail;
    int tail_raw;      /* the tail came from a no_trim chunk: written as is */
    int started;
    int at_mark;       /* a chapter mark was just placed: no pause, no crossfade */
    kokoro_writer *w;  /* the writer behind the sink, if it is one (for chapter marks) */
};

kokoro_status kokoro_joiner_new_sink(const kokoro_join_options *opts, kokoro_sample_sink sink, void *user,
                                     kokoro_joiner **out)
{
    if (!sink || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_new: NULL argument");
    kokoro_join_options def = kokoro_join_options_default();
    if (!opts) opts = &def;
    kokoro_status st = check_opts(opts);
    if (st != KOKORO_OK) return st;
    kokoro_joiner *j = calloc(1, sizeof *j);
    if (!j) return kk_error(KOKORO_ERR_NOMEM, "joiner: out of memory");
    j->o = *opts;
    j->sink = sink;
    j->user = user;
    j->cap_tail = ms_to_samples(j->o.fade_ms) + 1;
    j->tail = malloc(j->cap_tail * sizeof *j->tail);
    if (!j->tail) {
        free(j);
        return kk_error(KOKORO_ERR_NOMEM, "joiner: out of memory");
    }
    *out = j;
    return KOKORO_OK;
}

static kokoro_status writer_sink(void *user, const float *x, size_t n)
{
    return x ? kokoro_writer_write(user, x, n) : kokoro_writer_write_silence(user, n);
}

kokoro_status kokoro_joiner_new(const kokoro_join_options *opts, kokoro_writer *w, kokoro_joiner **out)
{
    if (!w) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_new: NULL writer");
    kokoro_status st = kokoro_joiner_new_sink(opts, writer_sink, w, out);
    if (st == KOKORO_OK) (*out)->w = w;
    return st;
}

static kokoro_status emit(kokoro_joiner *j, const float *x, size_t n)
{
    if (n == 0) return KOKORO_OK;
    j->pos += n;
    return j->sink(j->user, x, n);
}

uint64_t kokoro_joiner_position(const kokoro_joiner *j) { return j ? j->pos : 0; }

static kokoro_status flush_tail(kokoro_joiner *j)
{
    if (!j->tail_raw) /* the whole held tail is the fade-out */
        for (size_t i = 0; i < j->n_tail; i++) j->tail[j->n_tail - 1 - i] *= ramp(i, j->n_tail);
    kokoro_status st = emit(j, j->tail, j->n_tail);
    j->n_tail = 0;
    return st;
}

kokoro_status kokoro_joiner_push(kokoro_joiner *j, const float *x, size_t n, kokoro_pause_kind before, int no_trim,
                                 size_t *trimmed_front, uint64_t *out_start)
{
    if (!j || (!x && n)) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_push: NULL argument");
    if ((int)before < 0 || before > KOKORO_PAUSE_CHAPTER)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_push: invalid pause kind %d", (int)before);
    size_t s = 0, e = n;
    kokoro_status st;
    if (!no_trim && (st = kokoro_audio_trim(x, n, &j->o, &s, &e)) != KOKORO_OK) return st;
    if (trimmed_front) *trimmed_front = s;
    size_t len = e - s;
    if (no_trim) {
        j->at_mark = 0;
        if (j->n_tail && (st = flush_tail(j)) != KOKORO_OK) return st;
        if (out_start) *out_start = j->pos;
        j->started = 1;
        return emit(j, x, n);
    }
    if (len == 0) { /* a silent chunk adds nothing, not even its pause */
        if (out_start) *out_start = j->pos + j->n_tail;
        return KOKORO_OK;
    }
    size_t fade = ms_to_samples(j->o.fade_ms);
    if (fade > len / 2) fade = len / 2;
    /* the chunk's head: faded in, or crossfaded with the held tail */
    float head[1024];
    size_t pos = 0; /* samples of the chunk already consumed */
    size_t pause = j->started && !j->at_mark ? kokoro_join_pause_samples(&j->o, before) : 0;
    j->at_mark = 0;
    if (j->started && pause == 0 && j->n_tail > 0 && !j->tail_raw) {
        size_t k = j->n_tail < fade ? j->n_tail : fade;
        /* write the part of the tail that does not overlap, then the mix */
        size_t lead = j->n_tail - k;
        if ((st = emit(j, j->tail, lead)) != KOKORO_OK) return st;
        if (out_start) *out_start = j->pos;
        kokoro_audio_crossfade(j->tail + lead, x + s, k);
        if ((st = emit(j, j->tail + lead, k)) != KOKORO_OK) return st;
        j->n_tail = 0;
        pos = k;
    } else {
        if (j->n_tail && (st = flush_tail(j)) != KOKORO_OK) return st;
        if ((st = emit(j, NULL, pause)) != KOKORO_OK) return st;
        if (out_start) *out_start = j->pos;
        /* fade-in in pieces through a small buffer: x is const */
        while (pos < fade) {
            size_t k = fade - pos < sizeof head / sizeof head[0] ? fade - pos : sizeof head / sizeof head[0];
            for (size_t i = 0; i < k; i++) head[i] = x[s + pos + i] * ramp(pos + i, fade);
            if ((st = emit(j, head, k)) != KOKORO_OK) return st;
            pos += k;
        }
    }
    /* the body, then hold the last `fade` samples back for the next join */
    size_t hold = len - pos < fade ? len - pos : fade;
    if ((st = emit(j, x + s + pos, len - pos - hold)) != KOKORO_OK) return st;
    memcpy(j->tail, x + s + len - hold, hold * sizeof *x);
    j->n_tail = hold;
    j->tail_raw = 0;
    j->started = 1;
    return KOKORO_OK;
}

kokoro_status kokoro_joiner_chapter(kokoro_joiner *j, const char *title, kokoro_pause_kind before)
{
    if (!j || !title) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_chapter: NULL argument");
    if ((int)before < 0 || before > KOKORO_PAUSE_CHAPTER)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_chapter: invalid pause kind %d", (int)before);
    if (!j->w) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_chapter: chapter marks need a joiner on a writer");
    kokoro_status st;
    if (j->n_tail && (st = flush_tail(j)) != KOKORO_OK) return st;
    if (j->started && !j->at_mark && (st = emit(j, NULL, kokoro_join_pause_samples(&j->o, before))) != KOKORO_OK)
        return st;
    if ((st = kokoro_writer_add_chapter(j->w, title)) != KOKORO_OK) return st;
    j->at_mark = 1;
    return KOKORO_OK;
}

kokoro_status kokoro_joiner_finish(kokoro_joiner *j)
{
    if (!j) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_joiner_finish: NULL joiner");
    return j->n_tail ? flush_tail(j) : KOKORO_OK;
}

void kokoro_joiner_free(kokoro_joiner *j)
{
    if (!j) return;
    free(j->tail);
    free(j);
}
