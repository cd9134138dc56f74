/* Kokoro-82M: the network's parameters (bound by name from a kk_table) and
 * one forward function per stage, each a transcription of the reference
 * module (shared/spec/kokoro-model.md §3). Weights are read-only after load;
 * every forward call works in its own scratch memory. */
#ifndef KK_MODEL_H
#define KK_MODEL_H

#include <stdint.h>

#include "core/memo.h"
#include "core/scratch.h"
#include "core/tensor.h"
#include "kokoro.h"
#include "nn/nn.h"

#define KK_STYLE_HALF 128
#define KK_HIDDEN 512
#define KK_BERT_DIM 768
#define KK_BERT_EMB 128
#define KK_BERT_FFN 2048
#define KK_BERT_HEADS 12
#define KK_BERT_LAYERS 12
#define KK_LSTM_H 256
#define KK_MAX_DUR 50
#define KK_NFFT 20
#define KK_HOP 5
#define KK_NBINS 11
#define KK_HARMONICS 9
/* One call synthesises at most this many 25 ms frames (500 s): bounds memory. */
#define KK_MAX_FRAMES 20000

typedef struct kk_lin { const float *w, *b; int out, in; } kk_lin;
typedef struct kk_conv { const float *w, *b; int cout, cin, k; } kk_conv; /* folded weight */
typedef struct kk_lstm { kk_lstm_dir f, r; int in; } kk_lstm;
/* AdaIN1d / AdaLayerNorm: fc maps the 128-d style to [gamma; beta]; norm
 * affine (InstanceNorm1d(affine=True)) only when the checkpoint has it. */
typedef struct kk_adain_p { kk_lin fc; const float *nw, *nb; int C; } kk_adain_p;

typedef struct kk_resblk { /* AdainResBlk1d */
    int din, dout, upsample;
    kk_adain_p norm1, norm2;
    kk_conv conv1, conv2, conv1x1; /* conv1x1.w NULL when din == dout */
    const float *pool_w, *pool_b;  /* depthwise ×2 up-sampler when upsample */
} kk_resblk;

/* The same in double precision, for the token-rate and prosody stages. */
typedef struct kk_lin_d { const double *w, *b; int out, in; } kk_lin_d;
typedef struct kk_conv_d { const double *w, *b; int cout, cin, k; } kk_conv_d;
typedef struct kk_lstm_d { kk_lstm_dir_d f, r; int in; } kk_lstm_d;
typedef struct kk_adain_p_d { kk_lin_d fc; const double *nw, *nb; int C; } kk_adain_p_d;
typedef struct kk_resblk_d {
    int din, dout, upsample;
    kk_adain_p_d norm1, norm2;
    kk_conv_d conv1, conv2, conv1x1;
    const double *pool_w, *pool_b;
} kk_resblk_d;

typedef struct kk_resblock1 { /* AdaINResBlock1 (HiFi-GAN style, Snake) */
    int C, K;
    kk_conv c1[3], c2[3];
    kk_adain_p a1[3], a2[3];
    const float *alpha1[3], *alpha2[3];
} kk_resblock1;

/* Why double precision up to F0: the harmonic source integrates F0 into the
 * phase of 9 sinusoids, so rounding noise in the predicted F0 becomes a phase
 * drift that grows with the utterance. Computed in float32 the prosody path
 * alone moves the audio ~1e-2 (relative L2) away from the float64 result on a
 * 4-second utterance; in double it costs ~5 % of the run time and stays within
 * 1e-3 of it (tests/test_golden.c measures the distance to the reference). */
typedef struct kk_prosody {
    /* bert (ALBERT, one shared layer applied 12 times) */
    const double *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
    kk_lin_d map_in, q, k, v, dense, ffn, ffn_out;
    const double *att_ln_w, *att_ln_b, *full_ln_w, *full_ln_b;
    kk_lin_d bert_enc;
    /* predictor */
    kk_lstm_d dur_lstm[3];
    kk_adain_p_d dur_aln[3];
    kk_lstm_d lstm, shared;
    kk_lin_d dur_proj;
    kk_resblk_d F0[3], N[3];
    kk_conv_d F0_proj, N_proj;
} kk_prosody;

/* ALBERT and bert_encoder in float32, for the bfloat16 mode (see
 * kk_bert_encoded_f32): converted from kk_prosody on first use. */
/* ALBERT's arrays (name, length) and linears, listed once for the
 * conversions between precisions (params.c, prosody.c) */
#define KK_BERT_ARRAYS(X)                                                                                    \
    X(word_emb, KOKORO_VOCAB_SIZE * KK_BERT_EMB) X(pos_emb, 512 * KK_BERT_EMB) X(type_emb, 2 * KK_BERT_EMB)       \
    X(emb_ln_w, KK_BERT_EMB) X(emb_ln_b, KK_BERT_EMB) X(att_ln_w, KK_BERT_DIM) X(att_ln_b, KK_BERT_DIM)           \
    X(full_ln_w, KK_BERT_DIM) X(full_ln_b, KK_BERT_DIM)
#define KK_BERT_LINEARS(X) X(map_in) X(q) X(k) X(v) X(dense) X(ffn) X(ffn_out) X(bert_enc)

/* kk_memo variants (the key: the weights they are made from) */
enum { KK_MEMO_BERT32 = 1, KK_MEMO_AMX = 2, KK_MEMO_CONVT_AMX = 3, KK_MEMO_F0N32 = 4,
       KK_MEMO_CONVT_F32 = 5 /* + the kk_isa its packing is for */ };

typedef struct kk_bert32 {
    const float *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
    kk_lin map_in, q, k, v, dense, ffn, ffn_out;
    const float *att_ln_w, *att_ln_b, *full_ln_w, *full_ln_b;
    kk_lin bert_enc;
} kk_bert32;

struct kokoro_model {
    kk_prosody p;
    /* text encoder */
    const float *te_emb;
    kk_conv te_cnn[3];
    const float *te_gamma[3], *te_beta[3];
    kk_lstm te_lstm;
    /* decoder */
    kk_conv F0_conv, N_conv, asr_res;
    kk_resblk encode, decode[4];
    /* generator */
    kk_lin src_lin;
    kk_conv noise_convs[2], ups[2], conv_post;
    kk_resblock1 noise_res[2], res[6];

    /* the config it was loaded with (owned unless it is the built-in one) */
    kokoro_config *config;
    /* our own model file, mapped: float32 weights are used in place */
    void *map;
    size_t map_size;
    /* owned buffers (float or double) backing every pointer above */
    void **blocks;
    size_t nblocks, capblocks;
    size_t nparams;
    /* big per-call buffers kept between calls (core/scratch.h) */
    kk_scratch *scratch;
    /* weights converted or repacked for the bf16 mode, made when a synthesis first needs them */
    kk_memo *memo;
    /* loaded from a file converted with bf16 weights: KOKORO_DTYPE_AUTO computes in bf16 */
    int file_bf16;
};

int kk_config_has_id(const kokoro_config *c, int64_t id);
/* The published config.json text built into the library. */
const char *kk_config_default_json(size_t *len);

/* ---- parameters ---- */

enum { KK_PARAM_OPTIONAL = 1, KK_PARAM_UNUSED = 2 };

typedef struct kk_param_spec {
    char name[112];
    int ndim;
    int64_t shape[3];
    int flags;
} kk_param_spec;

/* Every parameter tensor of Kokoro-82M as the upstream state dicts name it,
 * prefixed by the component (`bert.`, `decoder.`…), without `module.`.
 * *out is malloc'd. */
kokoro_status kk_model_param_specs(kk_param_spec **out, size_t *count);

/* Binds a model to a table of named tensors. Takes float32 buffers out of the
 * table where possible (their entries' data becomes NULL). Missing,
 * unexpected or wrongly shaped tensors are all listed by name in the error. */
kokoro_status kk_model_bind(kk_table *table, kokoro_model **out);

/* Normalises names (drops `module.`) and binds; errors are prefixed with path. */
kokoro_status kk_model_from_table(kk_table *table, const char *path, kokoro_model **out);
/* The canonical spelling of every name (see load.c), in place. */
kokoro_status kk_table_canonical(kk_table *table, const char *path);
/* W = g · V / ‖V‖ per first-dim slice: g[d0], V[d0, per] -> out[d0, per] (float32). */
void kk_fold_weight_norm(const float *g, const float *v, int d0, size_t per, float *out);
/* Replaces every X.weight_g / X.weight_v pair by the folded X.weight. */
kokoro_status kk_table_fold_weight_norm(kk_table *table);

/* The deterministic test weights of shared/spec/test-weights.md. */
kokoro_status kk_test_weights_table(kk_table *table);
/* center/scale rule of the spec for one tensor (exposed for tests). */
void kk_test_weights_rule(const char *name, int ndim, const int64_t *shape, double *center,
                          double *scale);
void kk_test_weights_fill(const char *name, double center, double scale, float *dst, int64_t n);

/* ---- forward stages (B = 1; T tokens incl. pads; L frames) ---- */

/* Per-call options for the stochastic parts. */
/* Per-stage wall time and multiply-accumulates, filled when a caller asks
 * (kokoro-bench --profile); the stages add to it, so runs can be summed. */
enum {
    KK_PROF_BERT, KK_PROF_DURATION, KK_PROF_PROSODY, KK_PROF_TEXTENC, KK_PROF_DECODER, KK_PROF_SOURCE,
    KK_PROF_NOISE, KK_PROF_UPS, KK_PROF_RES0, KK_PROF_RES1, KK_PROF_POST, KK_PROF_COUNT
};
typedef struct kk_profile {
    double sec[KK_PROF_COUNT], cpu[KK_PROF_COUNT], macs[KK_PROF_COUNT];
} kk_profile;
extern const char *const kk_prof_names[KK_PROF_COUNT];
double kk_prof_now(void);
double kk_prof_cpu(void); /* CPU seconds of the whole process (all threads) */

typedef struct kk_noise {
    int enabled;
    uint64_t seed;
    kk_profile *prof; /* NULL: no timing */
    int bf16;         /* the generator's resblock convolutions in bfloat16 */
} kk_noise;

kokoro_status kk_bert(const kokoro_model *m, const int64_t *ids, int T, double *out /*[T,768]*/);
kokoro_status kk_bert_encoder(const kokoro_model *m, const double *bert, int T, double *out /*[T,512]*/);
/* Both in float32 (the bfloat16 mode: ~2x faster than double; the durations
 * round the same but at near ties, the F0 path stays in double), d_en[T,512]. */
kokoro_status kk_bert_encoded_f32(const kokoro_model *m, const int64_t *ids, int T, double *d_en);
/* DurationEncoder: d_en[T,512] -> d[T,640] */
kokoro_status kk_duration_encoder(const kokoro_model *m, const double *d_en, int T, const double *s_pros,
                                  double *d);
kokoro_status kk_predictor_lstm(const kokoro_model *m, const double *d, int T, double *out /*[T,512]*/);
kokoro_status kk_duration_proj(const kokoro_model *m, const double *x, int T, double *logits /*[T,50]*/);
/* logits -> float durations and rounded frame counts, in float32 as the
 * reference (sigmoid, sum over 50, / speed, round half to even, at least 1);
 * returns L */
int64_t kk_durations(const double *logits, int T, float speed, float *dur, int64_t *n);
/* One duration to frames: round half to even, clamped to at least 1. */
int64_t kk_duration_frames(float d);
/* en[L,640] = d rows repeated; t_en[512,T] -> asr[512,L] */
void kk_align_rows(const double *d, int T, int C, const int64_t *n, double *out);
void kk_align_cols(const float *x, int C, int T, const int64_t *n, int64_t L, float *out);
kokoro_status kk_predictor_shared(const kokoro_model *m, const double *en, int L, double *out /*[L,512]*/);
/* shared[L,512] -> F0[2L], N[2L] */
kokoro_status kk_predictor_f0n(const kokoro_model *m, const double *shared, int L, const double *s_pros,
                               double *F0, double *N);
/* The same in float32 (the bfloat16 mode; weights converted on first use) */
kokoro_status kk_predictor_f0n_f32(const kokoro_model *m, const double *shared, int L, const double *s_pros,
                                   float *F0, float *N);
kokoro_status kk_text_encoder(const kokoro_model *m, const int64_t *ids, int T, float *out /*[512,T]*/);

/* Decoder front. asr[512,L], F0/N[2L] -> encode out [1024,L] etc. bf16 non-zero: the
 * 3-tap convolutions in bfloat16 on AMX tiles where the CPU has them. */
kokoro_status kk_decoder_encode(const kokoro_model *m, const float *asr, const float *F0, const float *N,
                                int L, const float *s_dec, float *x /*[1024,L]*/, float *F0d, float *Nd, int bf16);
kokoro_status kk_decoder_asr_res(const kokoro_model *m, const float *asr, int L, float *ar /*[64,L]*/);
/* decode.i: x[din,L] (1024) -> out; i = 3 doubles the length */
kokoro_status kk_decoder_decode(const kokoro_model *m, int i, const float *x, const float *ar,
                                const float *F0d, const float *Nd, int L, const float *s_dec, float *out,
                                int bf16);
kokoro_status kk_decoder_front(const kokoro_model *m, const float *asr, const float *F0, const float *N,
                               int L, const float *s_dec, float *out /*[512,2L]*/, int bf16);

/* Generator pieces. M = 2L F0 frames; source has 300·M samples. */
kokoro_status kk_gen_source(const kokoro_model *m, const float *F0, int M, const kk_noise *noise,
                            float *har_source /*[300M]*/);
/* STFT of the source: har[22, n/5+1] = [|X|; angle X] */
int kk_gen_stft(const float *src, int n, float *har);
/* noise_convs.i + noise_res.i on har[22,F] */
kokoro_status kk_gen_noise_branch(const kokoro_model *m, int i, const float *har, int F, const float *s_dec,
                                  float *out, int *nout);
/* lrelu 0.1 then ups.i; ws: kk_gen_ups_ws_floats(m, i, n) floats of scratch (NULL: allocated here) */
kokoro_status kk_gen_ups(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws);
size_t kk_gen_ups_ws_floats(const kokoro_model *m, int i, int n);
/* the same, bf16 non-zero: in bfloat16 on AMX tiles where the CPU has them (polyphase, weights repacked once) */
kokoro_status kk_gen_ups_dt(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws,
                            int bf16);
/* mean of resblocks[3i..3i+2] on x[C,n] */
kokoro_status kk_gen_resblocks(const kokoro_model *m, int stage, const float *x, int n, const float *s_dec,
                               float *out);
/* the same two with the convolutions in bfloat16 when bf16 is non-zero, and
 * scratch ws from the caller (NULL: allocated here; kk_generator sizes it) */
kokoro_status kk_gen_noise_branch_dt(const kokoro_model *m, int i, const float *har, int F, const float *s_dec,
                                     float *out, int *nout, int bf16, float *ws);
kokoro_status kk_gen_resblocks_dt(const kokoro_model *m, int stage, const float *x, int n, const float *s_dec,
                                  float *out, int bf16, float *ws);
/* lrelu 0.01 then conv_post: x[128,n] -> [22,n]; ws: kk_gen_post_ws_floats(m, n) floats (NULL: allocated here) */
kokoro_status kk_gen_post(const kokoro_model *m, const float *x, int n, float *out, float *ws);
size_t kk_gen_post_ws_floats(const kokoro_model *m, int n);
/* conv_post output [22,F] -> audio[5(F-1)] */
kokoro_status kk_istft(const float *spec, int F, float *audio);
kokoro_status kk_generator(const kokoro_model *m, const float *x /*[512,M]*/, const float *F0, int M,
                           const float *s_dec, const kk_noise *noise, float *audio /*[300M]*/);

/* The whole pipeline from padded ids. durations (T) and audio are malloc'd. */
/* kokoro_synthesize with an optional per-stage profile (kokoro-bench). */
kokoro_status kk_synthesize_profiled(const kokoro_model *model, const int64_t *ids, size_t n_ids, const float *style,
                                     const kokoro_synth_options *opts, kokoro_audio *out, kk_profile *prof);
kokoro_status kk_forward(const kokoro_model *m, const int64_t *ids, int T, const float *style, float speed,
                         const kk_noise *noise, float **audio, int64_t *n_samples, int64_t **durations);

#endif
