/* The parameter walk: one description of Kokoro-82M's tensors, run either to
 * list them (names and shapes, for the test weights and for messages) or to
 * bind a model to a table. Weight norm is folded here, once. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"
#include "model/model.h"

enum { WALK_DECLARE, WALK_BIND };

typedef struct walk {
    int mode;
    kk_param_spec *specs; /* DECLARE */
    size_t nspecs, capspecs;
    kk_table *table; /* BIND */
    unsigned char *used;
    kokoro_model *m;
    kokoro_status st; /* first hard failure (memory) */
    char problems[2048]; /* missing / wrongly shaped, listed by name */
    size_t nproblems;
} walk;

static void problem(walk *w, const char *fmt, ...) KK_PRINTF(2, 3);
static void problem(walk *w, const char *fmt, ...)
{
    size_t len = strlen(w->problems);
    w->nproblems++;
    if (len + 8 >= sizeof w->problems) return;
    if (w->nproblems > 1) len += (size_t)snprintf(w->problems + len, sizeof w->problems - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->problems + len, sizeof w->problems - len, fmt, ap);
    va_end(ap);
}

static void *own(walk *w, void *buf)
{
    kokoro_model *m = w->m;
    if (!buf) return NULL;
    if (m->nblocks == m->capblocks) {
        size_t cap = m->capblocks ? 2 * m->capblocks : 256;
        void **b = realloc(m->blocks, cap * sizeof *b);
        if (!b) {
            free(buf);
            w->st = KOKORO_ERR_NOMEM;
            return NULL;
        }
        m->blocks = b;
        m->capblocks = cap;
    }
    m->blocks[m->nblocks++] = buf;
    return buf;
}

/* One tensor. Returns its float32 data when binding (NULL when declaring,
 * when an optional tensor is absent, or on a problem). */
static const float *param(walk *w, int flags, int ndim, const int64_t *shape, const char *fmt, ...)
    KK_PRINTF(5, 6);
static const float *param(walk *w, int flags, int ndim, const int64_t *shape, const char *fmt, ...)
{
    char name[112];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (w->st != KOKORO_OK) return NULL;
    if (w->mode == WALK_DECLARE) {
        if (w->nspecs == w->capspecs) {
            size_t cap = w->capspecs ? 2 * w->capspecs : 1024;
            kk_param_spec *s = realloc(w->specs, cap * sizeof *s);
            if (!s) {
                w->st = KOKORO_ERR_NOMEM;
                return NULL;
            }
            w->specs = s;
            w->capspecs = cap;
        }
        kk_param_spec *s = &w->specs[w->nspecs++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
        s->ndim = ndim;
        for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
        s->flags = flags;
        return NULL;
    }
    kk_tensor *t = kk_table_find(w->table, name);
    if (!t) {
        if (!(flags & (KK_PARAM_OPTIONAL | KK_PARAM_UNUSED))) problem(w, "missing '%s'", name);
        return NULL;
    }
    w->used[t - w->table->items] = 1;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[64], b[64];
        problem(w, "'%s' has shape %s where %s is expected", name, kk_shape_str(t->ndim, t->shape, a, sizeof a),
                kk_shape_str(ndim, shape, b, sizeof b));
        return NULL;
    }
    if (flags & KK_PARAM_UNUSED) return NULL;
    if (!t->data) {
        problem(w, "'%s' has no data", name);
        return NULL;
    }
    float *data;
    if (t->dtype == KK_F32 && t->borrowed) { /* mapped from our own file: used in place */
        w->m->nparams += (size_t)kk_tensor_numel(t);
        return t->data;
    }
    if (t->dtype == KK_F32) { /* take the buffer instead of copying 300 MB */
        data = t->data;
        t->data = NULL;
    } else {
        data = malloc((size_t)kk_tensor_numel(t) * sizeof *data + 1);
        if (!data) {
            w->st = KOKORO_ERR_NOMEM;
            return NULL;
        }
        kokoro_status st = kk_tensor_to_f32(t, data);
        if (st != KOKORO_OK) {
            free(data);
            w->st = st;
            return NULL;
        }
    }
    w->m->nparams += (size_t)kk_tensor_numel(t);
    return own(w, data);
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define P(w, flags, name_fmt, shape_list, ...) \
    param(w, flags, NARGS shape_list, SHAPE shape_list, name_fmt, __VA_ARGS__)

static kk_lin linear(walk *w, const char *prefix, int out, int in, int has_bias)
{
    kk_lin l = {0};
    l.out = out;
    l.in = in;
    l.w = P(w, 0, "%s.weight", (out, in), prefix);
    if (has_bias) l.b = P(w, 0, "%s.bias", (out), prefix);
    return l;
}

/* Weight-normed conv: W = g · V / ‖V‖ over all dims but the first. For a
 * ConvTranspose1d the first dim is the input channel (d0 = cin). */
void kk_fold_weight_norm(const float *g, const float *v, int d0, size_t per, float *out)
{
    for (int o = 0; o < d0; o++) {
        double ss = 0;
        for (size_t i = 0; i < per; i++) ss += (double)v[o * per + i] * v[o * per + i];
        float scale = (float)(g[o] / sqrt(ss));
        for (size_t i = 0; i < per; i++) out[o * per + i] = v[o * per + i] * scale;
    }
}

/* Frees an owned buffer that is no longer needed (weight norm's g and v once folded). */
static void release(walk *w, const float *p)
{
    kokoro_model *m = w->m;
    for (size_t i = m->nblocks; p && i-- > 0;)
        if (m->blocks[i] == p) {
            free(m->blocks[i]);
            m->blocks[i] = m->blocks[--m->nblocks];
            return;
        }
}

static kk_conv wn_conv(walk *w, const char *prefix, int d0, int d1, int k, int has_bias, int transposed)
{
    kk_conv c = {0};
    c.cout = transposed ? d1 : d0;
    c.cin = transposed ? d0 : d1;
    c.k = k;
    char folded[128];
    snprintf(folded, sizeof folded, "%s.weight", prefix);
    if (w->mode == WALK_BIND && kk_table_find(w->table, folded)) { /* folded already (our own file) */
        c.w = P(w, 0, "%s.weight", (d0, d1, k), prefix);
        w->m->nparams += (size_t)d0; /* g, so the count is the checkpoint's */
        if (has_bias) c.b = P(w, 0, "%s.bias", (transposed ? d1 : d0), prefix);
        return c;
    }
    const float *g = P(w, 0, "%s.weight_g", (d0, 1, 1), prefix);
    const float *v = P(w, 0, "%s.weight_v", (d0, d1, k), prefix);
    if (has_bias) c.b = P(w, 0, "%s.bias", (transposed ? d1 : d0), prefix);
    if (g && v) {
        size_t per = (size_t)d1 * k;
        float *f = own(w, malloc((size_t)d0 * per * sizeof *f));
        if (f) kk_fold_weight_norm(g, v, d0, per, f);
        c.w = f;
        release(w, g);
        release(w, v);
    }
    return c;
}

static kk_conv plain_conv(walk *w, const char *prefix, int cout, int cin, int k)
{
    kk_conv c = {0};
    c.cout = cout;
    c.cin = cin;
    c.k = k;
    c.w = P(w, 0, "%s.weight", (cout, cin, k), prefix);
    c.b = P(w, 0, "%s.bias", (cout), prefix);
    return c;
}

static kk_lstm lstm(walk *w, const char *prefix, int in)
{
    const int H = KK_LSTM_H;
    kk_lstm l = {0};
    l.in = in;
    kk_lstm_dir *d[2] = {&l.f, &l.r};
    const char *sfx[2] = {"", "_reverse"};
    for (int r = 0; r < 2; r++) {
        d[r]->w_ih = P(w, 0, "%s.weight_ih_l0%s", (4 * H, in), prefix, sfx[r]);
        d[r]->w_hh = P(w, 0, "%s.weight_hh_l0%s", (4 * H, H), prefix, sfx[r]);
        d[r]->b_ih = P(w, 0, "%s.bias_ih_l0%s", (4 * H), prefix, sfx[r]);
        d[r]->b_hh = P(w, 0, "%s.bias_hh_l0%s", (4 * H), prefix, sfx[r]);
    }
    return l;
}

static kk_adain_p adain(walk *w, const char *prefix, int C, int has_norm)
{
    char n[112];
    kk_adain_p a = {0};
    a.C = C;
    snprintf(n, sizeof n, "%s.fc", prefix);
    a.fc = linear(w, n, 2 * C, KK_STYLE_HALF, 1);
    if (has_norm) { /* InstanceNorm1d(affine=True): absent from the official checkpoint */
        a.nw = P(w, KK_PARAM_OPTIONAL, "%s.norm.weight", (C), prefix);
        a.nb = P(w, KK_PARAM_OPTIONAL, "%s.norm.bias", (C), prefix);
    }
    return a;
}

static kk_resblk adain_resblk(walk *w, const char *prefix, int din, int dout, int upsample)
{
    char n[112];
    kk_resblk b = {0};
    b.din = din;
    b.dout = dout;
    b.upsample = upsample;
    snprintf(n, sizeof n, "%s.conv1", prefix);
    b.conv1 = wn_conv(w, n, dout, din, 3, 1, 0);
    snprintf(n, sizeof n, "%s.conv2", prefix);
    b.conv2 = wn_conv(w, n, dout, dout, 3, 1, 0);
    snprintf(n, sizeof n, "%s.norm1", prefix);
    b.norm1 = adain(w, n, din, 1);
    snprintf(n, sizeof n, "%s.norm2", prefix);
    b.norm2 = adain(w, n, dout, 1);
    if (din != dout) {
        snprintf(n, sizeof n, "%s.conv1x1", prefix);
        b.conv1x1 = wn_conv(w, n, dout, din, 1, 0, 0);
    }
    if (upsample) {
        snprintf(n, sizeof n, "%s.pool", prefix);
        kk_conv p = wn_conv(w, n, din, 1, 3, 1, 0);
        b.pool_w = p.w;
        b.pool_b = p.b;
    }
    return b;
}

static kk_resblock1 resblock1(walk *w, const char *prefix, int C, int K)
{
    char n[112];
    kk_resblock1 r = {0};
    r.C = C;
    r.K = K;
    for (int j = 0; j < 3; j++) {
        snprintf(n, sizeof n, "%s.convs1.%d", prefix, j);
        r.c1[j] = wn_conv(w, n, C, C, K, 1, 0);
        snprintf(n, sizeof n, "%s.convs2.%d", prefix, j);
        r.c2[j] = wn_conv(w, n, C, C, K, 1, 0);
        snprintf(n, sizeof n, "%s.adain1.%d", prefix, j);
        r.a1[j] = adain(w, n, C, 1);
        snprintf(n, sizeof n, "%s.adain2.%d", prefix, j);
        r.a2[j] = adain(w, n, C, 1);
        r.alpha1[j] = P(w, 0, "%s.alpha1.%d", (1, C, 1), prefix, j);
        r.alpha2[j] = P(w, 0, "%s.alpha2.%d", (1, C, 1), prefix, j);
    }
    return r;
}

/* The bert and predictor weights as bound (float), before promote() turns
 * them into the model's double-precision kk_prosody. */
typedef struct prosody_f {
    const float *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
    kk_lin map_in, q, k, v, dense, ffn, ffn_out;
    const float *att_ln_w, *att_ln_b, *full_ln_w, *full_ln_b;
    kk_lin bert_enc;
    kk_lstm dur_lstm[3];
    kk_adain_p dur_aln[3];
    kk_lstm lstm, shared;
    kk_lin dur_proj;
    kk_resblk F0[3], N[3];
    kk_conv F0_proj, N_proj;
} prosody_f;

static void walk_model(walk *w, kokoro_model *m, prosody_f *pf)
{
    char n[112];
    const int H = KK_HIDDEN, S = KK_STYLE_HALF, D = KK_BERT_DIM;
    const char *L0 = "bert.encoder.albert_layer_groups.0.albert_layers.0";

    /* bert */
    pf->word_emb = P(w, 0, "%s", (KOKORO_VOCAB_SIZE, KK_BERT_EMB), "bert.embeddings.word_embeddings.weight");
    pf->pos_emb = P(w, 0, "%s", (512, KK_BERT_EMB), "bert.embeddings.position_embeddings.weight");
    pf->type_emb = P(w, 0, "%s", (2, KK_BERT_EMB), "bert.embeddings.token_type_embeddings.weight");
    pf->emb_ln_w = P(w, 0, "%s", (KK_BERT_EMB), "bert.embeddings.LayerNorm.weight");
    pf->emb_ln_b = P(w, 0, "%s", (KK_BERT_EMB), "bert.embeddings.LayerNorm.bias");
    pf->map_in = linear(w, "bert.encoder.embedding_hidden_mapping_in", D, KK_BERT_EMB, 1);
    pf->full_ln_w = P(w, 0, "%s.full_layer_layer_norm.weight", (D), L0);
    pf->full_ln_b = P(w, 0, "%s.full_layer_layer_norm.bias", (D), L0);
    snprintf(n, sizeof n, "%s.attention.query", L0);
    pf->q = linear(w, n, D, D, 1);
    snprintf(n, sizeof n, "%s.attention.key", L0);
    pf->k = linear(w, n, D, D, 1);
    snprintf(n, sizeof n, "%s.attention.value", L0);
    pf->v = linear(w, n, D, D, 1);
    snprintf(n, sizeof n, "%s.attention.dense", L0);
    pf->dense = linear(w, n, D, D, 1);
    pf->att_ln_w = P(w, 0, "%s.attention.LayerNorm.weight", (D), L0);
    pf->att_ln_b = P(w, 0, "%s.attention.LayerNorm.bias", (D), L0);
    snprintf(n, sizeof n, "%s.ffn", L0);
    pf->ffn = linear(w, n, KK_BERT_FFN, D, 1);
    snprintf(n, sizeof n, "%s.ffn_output", L0);
    pf->ffn_out = linear(w, n, D, KK_BERT_FFN, 1);
    P(w, KK_PARAM_UNUSED, "%s", (D, D), "bert.pooler.weight");
    P(w, KK_PARAM_UNUSED, "%s", (D), "bert.pooler.bias");
    pf->bert_enc = linear(w, "bert_encoder", H, D, 1);

    /* predictor */
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "predictor.text_encoder.lstms.%d", 2 * i);
        pf->dur_lstm[i] = lstm(w, n, H + S);
        snprintf(n, sizeof n, "predictor.text_encoder.lstms.%d", 2 * i + 1);
        pf->dur_aln[i] = adain(w, n, H, 0);
    }
    pf->lstm = lstm(w, "predictor.lstm", H + S);
    pf->dur_proj = linear(w, "predictor.duration_proj.linear_layer", KK_MAX_DUR, H, 1);
    pf->shared = lstm(w, "predictor.shared", H + S);
    const char *br[2] = {"F0", "N"};
    kk_resblk *blk[2] = {pf->F0, pf->N};
    for (int b = 0; b < 2; b++) {
        snprintf(n, sizeof n, "predictor.%s.0", br[b]);
        blk[b][0] = adain_resblk(w, n, H, H, 0);
        snprintf(n, sizeof n, "predictor.%s.1", br[b]);
        blk[b][1] = adain_resblk(w, n, H, H / 2, 1);
        snprintf(n, sizeof n, "predictor.%s.2", br[b]);
        blk[b][2] = adain_resblk(w, n, H / 2, H / 2, 0);
    }
    pf->F0_proj = plain_conv(w, "predictor.F0_proj", 1, H / 2, 1);
    pf->N_proj = plain_conv(w, "predictor.N_proj", 1, H / 2, 1);

    /* text encoder */
    m->te_emb = P(w, 0, "%s", (KOKORO_VOCAB_SIZE, H), "text_encoder.embedding.weight");
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "text_encoder.cnn.%d.0", i);
        m->te_cnn[i] = wn_conv(w, n, H, H, 5, 1, 0);
        m->te_gamma[i] = P(w, 0, "text_encoder.cnn.%d.1.gamma", (H), i);
        m->te_beta[i] = P(w, 0, "text_encoder.cnn.%d.1.beta", (H), i);
    }
    m->te_lstm = lstm(w, "text_encoder.lstm", H);

    /* decoder front */
    m->encode = adain_resblk(w, "decoder.encode", H + 2, 1024, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "decoder.decode.%d", i);
        m->decode[i] = adain_resblk(w, n, 1024 + 2 + 64, i == 3 ? H : 1024, i == 3);
    }
    m->F0_conv = wn_conv(w, "decoder.F0_conv", 1, 1, 3, 1, 0);
    m->N_conv = wn_conv(w, "decoder.N_conv", 1, 1, 3, 1, 0);
    m->asr_res = wn_conv(w, "decoder.asr_res.0", 64, H, 1, 1, 0);

    /* generator */
    m->src_lin = linear(w, "decoder.generator.m_source.l_linear", 1, KK_HARMONICS, 1);
    m->noise_convs[0] = plain_conv(w, "decoder.generator.noise_convs.0", 256, 2 * KK_NBINS, 12);
    m->noise_convs[1] = plain_conv(w, "decoder.generator.noise_convs.1", 128, 2 * KK_NBINS, 1);
    m->noise_res[0] = resblock1(w, "decoder.generator.noise_res.0", 256, 7);
    m->noise_res[1] = resblock1(w, "decoder.generator.noise_res.1", 128, 11);
    m->ups[0] = wn_conv(w, "decoder.generator.ups.0", 512, 256, 20, 1, 1);
    m->ups[1] = wn_conv(w, "decoder.generator.ups.1", 256, 128, 12, 1, 1);
    static const int ks[3] = {3, 7, 11};
    for (int i = 0; i < 6; i++) {
        snprintf(n, sizeof n, "decoder.generator.resblocks.%d", i);
        m->res[i] = resblock1(w, n, i < 3 ? 256 : 128, ks[i % 3]);
    }
    m->conv_post = wn_conv(w, "decoder.generator.conv_post", 22, 128, 7, 1, 0);
}

/* ---- promotion of the prosody weights to double ---- */

/* d, made from the float tensor src, takes src's place among the model's blocks (the float copy is
 * no longer needed) or joins them (the float data was borrowed: a mapped file) */
static void *replace(walk *w, const float *src, void *d)
{
    kokoro_model *m = w->m;
    for (size_t i = m->nblocks; i-- > 0;)
        if (m->blocks[i] == src) {
            free(m->blocks[i]);
            m->blocks[i] = d;
            return d;
        }
    return own(w, d);
}

static const double *dbl(walk *w, const float *src, size_t n)
{
    if (!src || w->st != KOKORO_OK) return NULL;
    double *d = malloc(n * sizeof *d);
    if (!d) {
        w->st = KOKORO_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) d[i] = src[i];
    return replace(w, src, d);
}

/* The recurrent weights stay float (the values are float32: nothing to gain
 * in double) but transposed, [cols, rows]: one LSTM step then streams 1 MB a
 * direction from cache instead of 2 MB (kk_lstm_dir_d). */
static const float *transposed(walk *w, const float *src, size_t rows, size_t cols)
{
    if (!src || w->st != KOKORO_OK) return NULL;
    float *d = malloc(rows * cols * sizeof *d);
    if (!d) {
        w->st = KOKORO_ERR_NOMEM;
        return NULL;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) d[c * rows + r] = src[r * cols + c];
    return replace(w, src, d);
}

static kk_lin_d lin_d(walk *w, kk_lin l)
{
    return (kk_lin_d){dbl(w, l.w, (size_t)l.out * l.in), dbl(w, l.b, (size_t)l.out), l.out, l.in};
}

static kk_conv_d conv_d(walk *w, kk_conv c)
{
    return (kk_conv_d){dbl(w, c.w, (size_t)c.cout * c.cin * c.k), dbl(w, c.b, (size_t)c.cout), c.cout, c.cin, c.k};
}

static kk_lstm_d lstm_d(walk *w, kk_lstm l)
{
    const size_t G = 4 * KK_LSTM_H;
    kk_lstm_d r = {.in = l.in};
    r.f = (kk_lstm_dir_d){dbl(w, l.f.w_ih, G * l.in), transposed(w, l.f.w_hh, G, KK_LSTM_H), dbl(w, l.f.b_ih, G),
                          dbl(w, l.f.b_hh, G)};
    r.r = (kk_lstm_dir_d){dbl(w, l.r.w_ih, G * l.in), transposed(w, l.r.w_hh, G, KK_LSTM_H), dbl(w, l.r.b_ih, G),
                          dbl(w, l.r.b_hh, G)};
    return r;
}

static kk_adain_p_d adain_d(walk *w, kk_adain_p a)
{
    return (kk_adain_p_d){lin_d(w, a.fc), dbl(w, a.nw, (size_t)a.C), dbl(w, a.nb, (size_t)a.C), a.C};
}

static kk_resblk_d resblk_d(walk *w, kk_resblk b)
{
    kk_resblk_d r = {.din = b.din, .dout = b.dout, .upsample = b.upsample};
    r.norm1 = adain_d(w, b.norm1);
    r.norm2 = adain_d(w, b.norm2);
    r.conv1 = conv_d(w, b.conv1);
    r.conv2 = conv_d(w, b.conv2);
    r.conv1x1 = conv_d(w, b.conv1x1);
    r.pool_w = dbl(w, b.pool_w, (size_t)b.din * 3);
    r.pool_b = dbl(w, b.pool_b, (size_t)b.din);
    return r;
}

static void promote(walk *w, kk_prosody *p, const prosody_f *f)
{
#define ARR(name, len) p->name = dbl(w, f->name, (size_t)(len));
#define LIN(name) p->name = lin_d(w, f->name);
    KK_BERT_ARRAYS(ARR)
    KK_BERT_LINEARS(LIN)
#undef ARR
#undef LIN
    for (int i = 0; i < 3; i++) {
        p->dur_lstm[i] = lstm_d(w, f->dur_lstm[i]);
        p->dur_aln[i] = adain_d(w, f->dur_aln[i]);
        p->F0[i] = resblk_d(w, f->F0[i]);
        p->N[i] = resblk_d(w, f->N[i]);
    }
    p->lstm = lstm_d(w, f->lstm);
    p->shared = lstm_d(w, f->shared);
    p->dur_proj = lin_d(w, f->dur_proj);
    p->F0_proj = conv_d(w, f->F0_proj);
    p->N_proj = conv_d(w, f->N_proj);
}

kokoro_status kk_model_param_specs(kk_param_spec **out, size_t *count)
{
    walk w = {0};
    kokoro_model dummy = {0};
    prosody_f pf = {0};
    w.mode = WALK_DECLARE;
    w.m = &dummy;
    walk_model(&w, &dummy, &pf);
    if (w.st != KOKORO_OK) {
        free(w.specs);
        return kk_error(w.st, "out of memory listing the model's parameters");
    }
    *out = w.specs;
    *count = w.nspecs;
    return KOKORO_OK;
}

static int ignorable(const char *name)
{
    /* integer buffers some transformers versions save with the bert dict */
    const char *p = strstr(name, "position_ids");
    return p && strcmp(p, "position_ids") == 0;
}

void kokoro_model_free(kokoro_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nblocks; i++) free(m->blocks[i]);
    free(m->blocks);
    kokoro_config_free(m->config);
    if (m->map) munmap(m->map, m->map_size);
    kk_scratch_free(m->scratch);
    kk_memo_free(m->memo);
    free(m);
}

kokoro_status kk_model_bind(kk_table *table, kokoro_model **out)
{
    *out = NULL;
    kokoro_model *m = calloc(1, sizeof *m);
    walk w = {0};
    w.mode = WALK_BIND;
    w.table = table;
    w.m = m;
    w.used = calloc(table->count + 1, 1);
    if (m) m->scratch = kk_scratch_new(), m->memo = kk_memo_new();
    if (!m || !w.used || !m->scratch || !m->memo) {
        if (m) kk_scratch_free(m->scratch), kk_memo_free(m->memo);
        free(m);
        free(w.used);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory binding the model");
    }
    prosody_f pf = {0};
    walk_model(&w, m, &pf);
    if (w.st == KOKORO_OK && !w.nproblems) promote(&w, &m->p, &pf);
    if (w.st != KOKORO_OK) {
        free(w.used);
        kokoro_model_free(m);
        return kk_error(w.st, "out of memory binding the model's weights");
    }
    for (size_t i = 0; i < table->count; i++)
        if (!w.used[i] && !ignorable(table->items[i].name))
            problem(&w, "unexpected '%s'", table->items[i].name);
    free(w.used);
    if (w.nproblems) {
        kokoro_status st = kk_error(KOKORO_ERR_MODEL, "%zu problem(s) binding the weights: %s%s", w.nproblems,
                                    w.problems, strlen(w.problems) + 8 >= sizeof w.problems ? " …" : "");
        kokoro_model_free(m);
        return st;
    }
    *out = m;
    return KOKORO_OK;
}

size_t kokoro_model_num_params(const kokoro_model *m) { return m ? m->nparams : 0; }
