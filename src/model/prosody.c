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

static double gelu_new(double x)
{
    const double k = 0.7978845608028654; /* √(2/π) */
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}


/* Attention heads and the GELU rows are split across the threads (the
 * products through kk_linear_d already are); each value is computed the same
 * way whatever the thread count. */
typedef struct bert_task {
    int T, nt;
    const double *q, *k, *v;
    double *ctx, *sc, *f;
} bert_task;

static void bert_heads(void *arg, int part)
{
    const bert_task *b = arg;
    const int D = KK_BERT_DIM, NH = KK_BERT_HEADS, HD = D / NH, T = b->T;
    double *sc = b->sc + (size_t)part * T * T;
    for (int hd = part * NH / b->nt; hd < (part + 1) * NH / b->nt; hd++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HD, 1.0 / 8.0, b->q + hd * HD, D, b->k + hd * HD,
                    D, 0.0, sc, T);
        for (int i = 0; i < T; i++) { /* softmax over the keys; no mask (batch of one) */
            double *row = sc + (size_t)i * T, mx = row[0], sum = 0.0;
            for (int j = 1; j < T; j++) mx = row[j] > mx ? row[j] : mx;
            for (int j = 0; j < T; j++) sum += row[j] = exp(row[j] - mx);
            for (int j = 0; j < T; j++) row[j] /= sum;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, T, 1.0, sc, T, b->v + hd * HD, D, 0.0,
                    b->ctx + hd * HD, D);
    }
}

static void bert_gelu(void *arg, int part)
{
    const bert_task *b = arg;
    size_t n = (size_t)b->T * KK_BERT_FFN, i0 = n * (size_t)part / (size_t)b->nt,
           i1 = n * (size_t)(part + 1) / (size_t)b->nt;
    for (size_t i = i0; i < i1; i++) b->f[i] = gelu_new(b->f[i]);
}

kokoro_status kk_bert(const kokoro_model *m, const int64_t *ids, int T, double *out)
{
    const kk_prosody *p = &m->p;
    const int D = KK_BERT_DIM, E = KK_BERT_EMB;
    int nt = kk_threads();
    if (nt > KK_BERT_HEADS) nt = KK_BERT_HEADS;
    kk_arena ar = {0};
    double *e = kk_arena_doubles(&ar, (size_t)(T * E)), *q = kk_arena_doubles(&ar, (size_t)(T * D)), *k = kk_arena_doubles(&ar, (size_t)(T * D)), *v = kk_arena_doubles(&ar, (size_t)(T * D));
    double *ctx = kk_arena_doubles(&ar, (size_t)(T * D)), *a = kk_arena_doubles(&ar, (size_t)(T * D)), *sc = kk_arena_doubles(&ar, (size_t)nt * T * T), *f = kk_arena_doubles(&ar, (size_t)(T * KK_BERT_FFN));
    if (ar.failed) {
        kk_arena_free(&ar);
        return KK_NOMEM("ALBERT");
    }
    bert_task bt = {.T = T, .nt = nt, .q = q, .k = k, .v = v, .ctx = ctx, .sc = sc, .f = f};
    for (int t = 0; t < T; t++)
        for (int c = 0; c < E; c++)
            e[(size_t)t * E + c] = p->word_emb[ids[t] * E + c] + p->pos_emb[(size_t)t * E + c] + p->type_emb[c];
    kk_layernorm_rows_d(e, T, E, p->emb_ln_w, p->emb_ln_b, 1e-12);
    double *h = out;
    kk_linear_d(e, T, E, p->map_in.w, p->map_in.b, D, h);
    for (int layer = 0; layer < KK_BERT_LAYERS; layer++) { /* one shared layer, 12 times */
        kk_linear_d(h, T, D, p->q.w, p->q.b, D, q);
        kk_linear_d(h, T, D, p->k.w, p->k.b, D, k);
        kk_linear_d(h, T, D, p->v.w, p->v.b, D, v);
        kk_parallel_for(nt, nt, bert_heads, &bt);
        kk_linear_d(ctx, T, D, p->dense.w, p->dense.b, D, a);
        for (size_t i = 0; i < (size_t)T * D; i++) a[i] += h[i];
        kk_layernorm_rows_d(a, T, D, p->att_ln_w, p->att_ln_b, 1e-12);
        kk_linear_d(a, T, D, p->ffn.w, p->ffn.b, KK_BERT_FFN, f);
        kk_parallel_for(nt, nt, bert_gelu, &bt);
        kk_linear_d(f, T, KK_BERT_FFN, p->ffn_out.w, p->ffn_out.b, D, h);
        for (size_t i = 0; i < (size_t)T * D; i++) h[i] += a[i];
        kk_layernorm_rows_d(h, T, D, p->full_ln_w, p->full_ln_b, 1e-12);
    }
    kk_arena_free(&ar);
    return KOKORO_OK;
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

static kokoro_status f0n_branch(const kk_resblk_d *blk, const kk_conv_d *proj, const double *x, int L,
                                const double *s, double *out)
{
    kk_arena ar = {0};
    double *a = kk_arena_doubles(&ar, (size_t)(KK_HIDDEN * L)), *b = kk_arena_doubles(&ar, (size_t)(KK_HIDDEN * L)), *c = kk_arena_doubles(&ar, (size_t)(KK_HIDDEN * L));
    kokoro_status st = ar.failed ? KK_NOMEM("F0/N branch") : KOKORO_OK;
    if (st == KOKORO_OK) st = kk_resblk_forward_d(&blk[0], x, L, s, a);
    if (st == KOKORO_OK) st = kk_resblk_forward_d(&blk[1], a, L, s, b); /* ×2 in time, 256 channels */
    if (st == KOKORO_OK) st = kk_resblk_forward_d(&blk[2], b, 2 * L, s, c);
    if (st == KOKORO_OK && kk_conv_apply_d(proj, c, 2 * L, 1, 0, 1, out) < 0) st = KK_NOMEM("F0/N projection");
    kk_arena_free(&ar);
    return st;
}

typedef struct f0n_task {
    const kokoro_model *m;
    const double *x, *s;
    int L;
    double *out[2];
    kokoro_status st[2];
    char msg[2][256];
} f0n_task;

static void f0n_run(void *arg, int i)
{
    f0n_task *k = arg;
    const kk_prosody *p = &k->m->p;
    k->st[i] = f0n_branch(i ? p->N : p->F0, i ? &p->N_proj : &p->F0_proj, k->x, k->L, k->s, k->out[i]);
    if (k->st[i] != KOKORO_OK) snprintf(k->msg[i], sizeof k->msg[i], "%s", kokoro_last_error());
}

/* The F0 and N branches share only their input: with threads they run side by side. */
kokoro_status kk_predictor_f0n(const kokoro_model *m, const double *shared, int L, const double *s, double *F0,
                               double *N)
{
    double *x = malloc((size_t)KK_HIDDEN * L * sizeof *x);
    if (!x) return KK_NOMEM("F0/N");
    kk_transpose_d(shared, L, KK_HIDDEN, x);
    f0n_task k = {.m = m, .x = x, .s = s, .L = L, .out = {F0, N}};
    kk_parallel_for(kk_threads(), 2, f0n_run, &k);
    free(x);
    for (int i = 0; i < 2; i++) /* the message was set on the thread that ran the branch */
        if (k.st[i] != KOKORO_OK) return kk_error(k.st[i], "%s", k.msg[i]);
    return KOKORO_OK;
}
