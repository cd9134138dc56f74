/* The whole network, token ids to audio (spec §3.1–3.9, KModel.forward_with_tokens). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parallel.h"
#include "model/blocks.h"

#include <time.h>

const char *const kk_prof_names[KK_PROF_COUNT] = {
    "ALBERT + bert_encoder", "duration (encoder, LSTM, proj)", "prosody (shared LSTM, F0, N)", "text encoder",
    "decoder (encode, decode x4)", "gen: harmonic source + STFT", "gen: noise convs + resblocks", "gen: ups x2 (ConvT)",
    "gen: resblocks 256ch @800Hz", "gen: resblocks 128ch @4.8kHz", "gen: conv_post + iSTFT",
};

double kk_prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* multiply-accumulates of the stages, from the layer shapes */
#define CONV_MACS(c, n) ((double)(c).cout * (c).cin * (c).k * (n))
#define RESBLK_MACS(b, n)                                                                                    \
    (CONV_MACS((b).conv1, (b).upsample ? 2.0 * (n) : (n)) + CONV_MACS((b).conv2, (b).upsample ? 2.0 * (n) : (n)) + \
     ((b).conv1x1.w ? CONV_MACS((b).conv1x1, (b).upsample ? 2.0 * (n) : (n)) : 0))
static double lstm_macs(int in, int H, double T) { return 2.0 * T * 4 * H * (double)(in + H); }

double kk_prof_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void prof_mark(kk_profile *p, int stage, double *t, double *c, double macs)
{
    if (!p) return;
    double now = kk_prof_now(), cpu = kk_prof_cpu();
    p->sec[stage] += now - *t;
    p->cpu[stage] += cpu - *c;
    p->macs[stage] += macs;
    *t = now;
    *c = cpu;
}


kokoro_status kk_forward(const kokoro_model *m, const int64_t *ids, int T, const float *style, float speed,
                         const kk_noise *noise, float **audio_out, int64_t *n_samples, int64_t **durations_out)
{
    const float *s_dec = style, *s_pros = style + KK_STYLE_HALF;
    const int H = KK_HIDDEN, W = KK_HIDDEN + KK_STYLE_HALF;
    *audio_out = NULL;
    *durations_out = NULL;
    *n_samples = 0;

    kk_pool *pool = kk_pool_begin(kk_threads()); /* this call's workers, woken per kernel */
    kk_arena a = {0};
    double *bert = kk_arena_doubles(&a, (size_t)(T * KK_BERT_DIM)), *d_en = kk_arena_doubles(&a, (size_t)(T * H)), *d = kk_arena_doubles(&a, (size_t)(T * W)), *x = kk_arena_doubles(&a, (size_t)(T * H));
    double *logits = kk_arena_doubles(&a, (size_t)(T * KK_MAX_DUR)), *sp = kk_arena_doubles(&a, (size_t)(KK_STYLE_HALF));
    float *t_en = kk_arena_floats(&a, (size_t)H * T);
    int64_t *dur = malloc((size_t)T * sizeof *dur);
    kokoro_status st = (a.failed || !dur) ? KK_NOMEM("synthesis") : KOKORO_OK;
    if (st == KOKORO_OK)
        for (int i = 0; i < KK_STYLE_HALF; i++) sp[i] = s_pros[i];

    /* durations (double precision up to F0 and N: see kk_prosody; in the bfloat16 mode float32,
     * ALBERT and the F0/N branches: the golden distances barely move, tests/test_golden.c) */
    const int bf16 = noise ? noise->bf16 : 0;
    kk_profile *prof = noise ? noise->prof : NULL;
    double tp = prof ? kk_prof_now() : 0, tc = prof ? kk_prof_cpu() : 0;
    if (st == KOKORO_OK && bf16) st = kk_bert_encoded_f32(m, ids, T, d_en);
    else if (st == KOKORO_OK) {
        st = kk_bert(m, ids, T, bert);
        if (st == KOKORO_OK) st = kk_bert_encoder(m, bert, T, d_en);
    }
    {
        const double D = KK_BERT_DIM;
        prof_mark(prof, KK_PROF_BERT, &tp, &tc,
                  T * (KK_BERT_EMB * D + KK_BERT_LAYERS * (4 * D * D + 2 * D * KK_BERT_FFN + 2.0 * T * D) + D * H));
    }
    if (st == KOKORO_OK) st = kk_duration_encoder(m, d_en, T, sp, d);
    if (st == KOKORO_OK) st = kk_predictor_lstm(m, d, T, x);
    if (st == KOKORO_OK) st = kk_duration_proj(m, x, T, logits);
    prof_mark(prof, KK_PROF_DURATION, &tp, &tc, 4 * lstm_macs(W, KK_LSTM_H, T) + (double)T * H * KK_MAX_DUR);
    int64_t L = 0;
    if (st == KOKORO_OK) {
        L = kk_durations(logits, T, speed, NULL, dur);
        if (L > KK_MAX_FRAMES)
            st = kk_error(KOKORO_ERR_INVALID_ARG,
                          "the predicted durations add up to %lld frames (%.0f s of audio), more than the %d "
                          "(%d s) one call may synthesise: split the text or raise the speed",
                          (long long)L, L * 0.025, KK_MAX_FRAMES, KK_MAX_FRAMES / 40);
    }
    /* prosody and text features at frame rate */
    double *en = NULL, *shared = NULL, *F0d = NULL, *Nd = NULL;
    float *F0 = NULL, *N = NULL, *asr = NULL, *dec = NULL, *audio = NULL;
    if (st == KOKORO_OK) {
        en = kk_arena_doubles(&a, (size_t)(L * W));
        shared = kk_arena_doubles(&a, (size_t)(L * H));
        F0d = kk_arena_doubles(&a, (size_t)(2 * L));
        Nd = kk_arena_doubles(&a, (size_t)(2 * L));
        F0 = kk_arena_floats(&a, 2 * (size_t)L);
        N = kk_arena_floats(&a, 2 * (size_t)L);
        asr = kk_arena_floats(&a, (size_t)H * L);
        dec = kk_arena_floats(&a, (size_t)H * 2 * L);
        audio = malloc((size_t)L * KOKORO_SAMPLES_PER_FRAME * sizeof *audio);
        if (a.failed || !audio) st = KK_NOMEM("synthesis");
    }
    if (st == KOKORO_OK) {
        kk_align_rows(d, T, W, dur, en);
        st = kk_predictor_shared(m, en, (int)L, shared);
    }
    if (st == KOKORO_OK && bf16) st = kk_predictor_f0n_f32(m, shared, (int)L, sp, F0, N);
    else if (st == KOKORO_OK) st = kk_predictor_f0n(m, shared, (int)L, sp, F0d, Nd);
    if (prof) {
        double macs = lstm_macs(W, KK_LSTM_H, (double)L);
        for (int i = 0; i < 3; i++) macs += RESBLK_MACS(m->p.F0[i], i ? 2.0 * L : (double)L) * 2;
        prof_mark(prof, KK_PROF_PROSODY, &tp, &tc, macs);
    }
    if (st == KOKORO_OK && !bf16) /* the curves enter the float32 decoder as the reference's float32 tensors */
        for (int64_t i = 0; i < 2 * L; i++) {
            F0[i] = (float)F0d[i];
            N[i] = (float)Nd[i];
        }
    if (st == KOKORO_OK) st = kk_text_encoder(m, ids, T, t_en);
    prof_mark(prof, KK_PROF_TEXTENC, &tp, &tc, 3 * CONV_MACS(m->te_cnn[0], T) + lstm_macs(H, H / 2, T));
    if (st == KOKORO_OK) {
        kk_align_cols(t_en, H, T, dur, L, asr);
        st = kk_decoder_front(m, asr, F0, N, (int)L, s_dec, dec, bf16);
    }
    if (prof) {
        double macs = RESBLK_MACS(m->encode, (double)L) + CONV_MACS(m->asr_res, (double)L);
        for (int i = 0; i < 4; i++) macs += RESBLK_MACS(m->decode[i], (double)L);
        prof_mark(prof, KK_PROF_DECODER, &tp, &tc, macs);
    }
    if (st == KOKORO_OK) st = kk_generator(m, dec, F0, 2 * (int)L, s_dec, noise, audio);
    kk_arena_free(&a);
    kk_pool_end(pool);
    if (st != KOKORO_OK) {
        free(audio);
        free(dur);
        return st;
    }
    *audio_out = audio;
    *n_samples = L * KOKORO_SAMPLES_PER_FRAME;
    *durations_out = dur;
    return KOKORO_OK;
}
