/* Token-rate and prosody stages in double precision (see kk_prosody in
 * model.h for why): ALBERT, bert_encoder, the duration path, alignment and
 * the F0/N branches (spec §3.2–3.6). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parallel.h"
#include "model/blocks.h"
#include "nn/vmath.h"

static double gelu_new(double x)
{
    const double k = 0.7978845608028654; /* √(2/π) */
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

/* The same in float as x·σ(2u) (= ½x(1 + tanh u)): one expf, no tanhf. */
static float gelu_new_f(float x)
{
    const float k = 0.7978845608028654f;
    return x / (1.0f + expf(-2.0f * k * (x + 0.044715f * x * x * x)));
}

/* The F0 and N branches in float32 (kk_predictor_f0n_f32) */
typedef struct f0n32 {
    kk_resblk F0[3], N[3];
    kk_conv F0_proj, N_proj;
} f0n32;

#define R double
#define S(name) name##_d
#define BW kk_prosody
#define FW kk_prosody
#define GEMM cblas_dgemm
#define EXP exp
#define GELU gelu_new
#define VEC_OK kk_vmath_ok()
#define GELU_VEC kk_gelu_tanh_avx512
#define EXP_SHIFT kk_exp_shift_avx512
#define ARENA kk_arena_doubles
#include "model/prosody_real.inc" /* undefines its parameters */

#define R float
#define S(name) name
#define BW kk_bert32
#define FW f0n32
#define GEMM cblas_sgemm
#define EXP expf
#define GELU gelu_new_f
#define VEC_OK kk_vmath_ok()
#define GELU_VEC kk_gelu_f_avx512
#define EXP_SHIFT kk_exp_shift_f_avx512
#define ARENA kk_arena_floats
#include "model/prosody_real.inc" /* undefines its parameters */

kokoro_status kk_bert(const kokoro_model *m, const int64_t *ids, int T, double *out)
{
    return bert_run_d(&m->p, ids, T, out);
}

/* ---- float32 copies of double weights for the bfloat16 mode, made on first use ---- */

/* Where the copies go: d NULL counts the floats only (the memo's size). */
typedef struct f32_cursor {
    float *d;
    size_t n;
} f32_cursor;

/* the double weights came from float32 ones: converting back is exact */
static const float *to_f32(f32_cursor *c, const double *src, size_t n)
{
    if (!src) return NULL;
    float *d = c->d ? c->d + c->n : NULL;
    if (d)
        for (size_t i = 0; i < n; i++) d[i] = (float)src[i];
    c->n += n;
    return d;
}

static kk_lin lin_f32(f32_cursor *c, kk_lin_d l)
{
    kk_lin r = {.out = l.out, .in = l.in};
    r.w = to_f32(c, l.w, (size_t)l.out * l.in);
    r.b = to_f32(c, l.b, (size_t)l.out);
    return r;
}

static kk_conv conv_f32(f32_cursor *c, kk_conv_d v)
{
    kk_conv r = {.cout = v.cout, .cin = v.cin, .k = v.k};
    r.w = to_f32(c, v.w, (size_t)v.cout * v.cin * v.k);
    r.b = to_f32(c, v.b, (size_t)v.cout);
    return r;
}

static kk_adain_p adain_f32(f32_cursor *c, kk_adain_p_d a)
{
    kk_adain_p r = {.fc = lin_f32(c, a.fc), .C = a.C};
    r.nw = to_f32(c, a.nw, (size_t)a.C);
    r.nb = to_f32(c, a.nb, (size_t)a.C);
    return r;
}

static kk_resblk resblk_f32(f32_cursor *c, const kk_resblk_d *b)
{
    kk_resblk r = {.din = b->din, .dout = b->dout, .upsample = b->upsample};
    r.norm1 = adain_f32(c, b->norm1);
    r.norm2 = adain_f32(c, b->norm2);
    r.conv1 = conv_f32(c, b->conv1);
    r.conv2 = conv_f32(c, b->conv2);
    r.conv1x1 = conv_f32(c, b->conv1x1);
    r.pool_w = to_f32(c, b->pool_w, (size_t)b->din * 3);
    r.pool_b = to_f32(c, b->pool_b, (size_t)b->din);
    return r;
}

static void bert32_fill(const kk_prosody *p, kk_bert32 *w, f32_cursor *c)
{
#define ARR(name, len) w->name = to_f32(c, p->name, (size_t)(len));
#define LIN(name) w->name = lin_f32(c, p->name);
    KK_BERT_ARRAYS(ARR)
    KK_BERT_LINEARS(LIN)
#undef ARR
#undef LIN
}


static void f0n32_fill(const kk_prosody *p, f0n32 *w, f32_cursor *c)
{
    for (int i = 0; i < 3; i++) {
        w->F0[i] = resblk_f32(c, &p->F0[i]);
        w->N[i] = resblk_f32(c, &p->N[i]);
    }
    w->F0_proj = conv_f32(c, p->F0_proj);
    w->N_proj = conv_f32(c, p->N_proj);
}

/* the struct in the first 4 KB of the memo, the arrays after */
#define F32_HEAD 4096
_Static_assert(sizeof(kk_bert32) <= F32_HEAD && sizeof(f0n32) <= F32_HEAD, "room for the structs");

static int bert32_make(void *dst, const void *arg)
{
    f32_cursor c = {.d = (float *)((char *)dst + F32_HEAD)};
    bert32_fill(arg, dst, &c);
    return 0;
}

static int f0n32_make(void *dst, const void *arg)
{
    f32_cursor c = {.d = (float *)((char *)dst + F32_HEAD)};
    f0n32_fill(arg, dst, &c);
    return 0;
}

static const kk_bert32 *bert32(const kokoro_model *m)
{
    kk_bert32 w;
    f32_cursor c = {0};
    bert32_fill(&m->p, &w, &c);
    return kk_memo_get(m->memo, &m->p, KK_MEMO_BERT32, F32_HEAD + c.n * sizeof(float), bert32_make, &m->p);
}

static const f0n32 *f0n32_get(const kokoro_model *m)
{
    f0n32 w;
    f32_cursor c = {0};
    f0n32_fill(&m->p, &w, &c);
    return kk_memo_get(m->memo, &m->p, KK_MEMO_F0N32, F32_HEAD + c.n * sizeof(float), f0n32_make, &m->p);
}

kokoro_status kk_bert_encoded_f32(const kokoro_model *m, const int64_t *ids, int T, double *d_en)
{
    const kk_bert32 *w = bert32(m);
    float *h = malloc((size_t)T * (KK_BERT_DIM + KK_HIDDEN) * sizeof *h);
    if (!w || !h) {
        free(h);
        return KK_NOMEM("ALBERT (float32 weights)");
    }
    float *e = h + (size_t)T * KK_BERT_DIM;
    kokoro_status st = bert_run(w, ids, T, h);
    if (st == KOKORO_OK) {
        kk_linear(h, T, KK_BERT_DIM, w->bert_enc.w, w->bert_enc.b, KK_HIDDEN, e);
        for (size_t i = 0; i < (size_t)T * KK_HIDDEN; i++) d_en[i] = e[i];
    }
    free(h);
    return st;
}

kokoro_status kk_bert_encoder(const kokoro_model *m, const double *bert, int T, double *out)
{
    kk_linear_d(bert, T, KK_BERT_DIM, m->p.bert_enc.w, m->p.bert_enc.b, KK_HIDDEN, out);
    return KOKORO_OK;
}

static kokoro_status lstm_run(const kk_lstm_d *l, const double *x, int T, double *y)
{
    if (kk_lstm_bi_d(x, T, l->in, &l->f, &l->r, KK_LSTM_H, y) < 0) return KK_NOMEM("LSTM");
    return KOKORO_OK;
}

/* rows of x[T, 640]: [512 values of src row t; s_pros] */
static void concat_style(double *x, const double *src, int T, const double *s)
{
    const int H = KK_HIDDEN, W = KK_HIDDEN + KK_STYLE_HALF;
    for (int t = 0; t < T; t++) {
        memcpy(x + (size_t)t * W, src + (size_t)t * H, H * sizeof *x);
        memcpy(x + (size_t)t * W + H, s, KK_STYLE_HALF * sizeof *x);
    }
}

kokoro_status kk_duration_encoder(const kokoro_model *m, const double *d_en, int T, const double *s, double *d)
{
    const int H = KK_HIDDEN;
    kk_arena ar = {0};
    double *y = kk_arena_doubles(&ar, (size_t)(T * H)), *gb = kk_arena_doubles(&ar, (size_t)(2 * H));
    kokoro_status st = KOKORO_OK;
    if (ar.failed) {
        kk_arena_free(&ar);
        return KK_NOMEM("duration encoder");
    }
    concat_style(d, d_en, T, s);
    for (int i = 0; i < 3 && st == KOKORO_OK; i++) {
        if ((st = lstm_run(&m->p.dur_lstm[i], d, T, y)) != KOKORO_OK) break;
        /* AdaLayerNorm: (1 + γ)·LN(x) + β over channels, no affine */
        kk_style_fc_d(&m->p.dur_aln[i], s, gb);
        kk_layernorm_rows_d(y, T, H, NULL, NULL, 1e-5);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < H; c++) y[(size_t)t * H + c] = (1.0 + gb[c]) * y[(size_t)t * H + c] + gb[H + c];
        concat_style(d, y, T, s);
    }
    kk_arena_free(&ar);
    return st;
}

kokoro_status kk_predictor_lstm(const kokoro_model *m, const double *d, int T, double *out)
{
    return lstm_run(&m->p.lstm, d, T, out);
}

kokoro_status kk_duration_proj(const kokoro_model *m, const double *x, int T, double *logits)
{
    kk_linear_d(x, T, KK_HIDDEN, m->p.dur_proj.w, m->p.dur_proj.b, KK_MAX_DUR, logits);
    return KOKORO_OK;
}

int64_t kk_duration_frames(float d)
{
    /* torch.round is half-to-even: nearbyintf in the default rounding mode (not roundf) */
    float r = nearbyintf(d);
    if (!(r >= 1.0f)) return 1;                     /* also NaN */
    return r < 0x1p40f ? (int64_t)r : (int64_t)1 << 40; /* no overflow in the cast or in L */
}

/* The reference does this step in float32, and at a .5 tie that decides a
 * frame: e.g. a sum of 3.5 at speed 1.4f is 2.5000000426 in double (→ 3) but
 * exactly 2.5f in float32 (→ 2). So the logits' sigmoids are float32 values
 * and the quotient is a float32 division, as in torch. The float32 sum is
 * the correctly rounded one (summed exactly in double, then rounded): torch's
 * vectorised reduction order is unspecified, this is its best estimate. */
int64_t kk_durations(const double *logits, int T, float speed, float *dur, int64_t *n)
{
    int64_t L = 0;
    for (int t = 0; t < T; t++) {
        double sum = 0.0;
        for (int k = 0; k < KK_MAX_DUR; k++)
            sum += (float)(1.0 / (1.0 + exp(-logits[(size_t)t * KK_MAX_DUR + k])));
        float s = (float)sum;
        float dd = s / speed;
        if (dur) dur[t] = dd;
        n[t] = kk_duration_frames(dd);
        L += n[t];
    }
    return L;
}

void kk_align_rows(const double *d, int T, int C, const int64_t *n, double *out)
{
    size_t f = 0;
    for (int t = 0; t < T; t++)
        for (int64_t r = 0; r < n[t]; r++, f++) memcpy(out + f * C, d + (size_t)t * C, (size_t)C * sizeof *out);
}

kokoro_status kk_predictor_shared(const kokoro_model *m, const double *en, int L, double *out)
{
    return lstm_run(&m->p.shared, en, L, out);
}

/* ---- the F0 and N branches in float32 (the bfloat16 mode) ---- */

kokoro_status kk_predictor_f0n_f32(const kokoro_model *m, const double *shared, int L, const double *s, float *F0,
                                   float *N)
{
    const f0n32 *w = f0n32_get(m);
    float *x = malloc((size_t)KK_HIDDEN * L * sizeof *x), sf[KK_STYLE_HALF];
    if (!w || !x) {
        free(x);
        return KK_NOMEM("F0/N (float32 weights)");
    }
    for (int t = 0; t < L; t++) /* [L, 512] double -> [512, L] float */
        for (int c = 0; c < KK_HIDDEN; c++) x[(size_t)c * L + t] = (float)shared[(size_t)t * KK_HIDDEN + c];
    for (int i = 0; i < KK_STYLE_HALF; i++) sf[i] = (float)s[i];
    kokoro_status st = f0n_both(w, x, L, sf, F0, N);
    free(x);
    return st;
}

/* The F0 and N branches share only their input: with threads they run side by side. */
kokoro_status kk_predictor_f0n(const kokoro_model *m, const double *shared, int L, const double *s, double *F0,
                               double *N)
{
    double *x = malloc((size_t)KK_HIDDEN * L * sizeof *x);
    if (!x) return KK_NOMEM("F0/N");
    kk_transpose_d(shared, L, KK_HIDDEN, x);
    kokoro_status st = f0n_both_d(&m->p, x, L, s, F0, N);
    free(x);
    return st;
}
