#include "model/blocks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "nn/dconv.h"
#include "nn/fconv.h"

typedef struct amx_pack_arg {
    const float *W;
    int cout, cin, K;
} amx_pack_arg;

static int amx_pack(void *dst, const void *arg)
{
    const amx_pack_arg *a = arg;
    kk_dconv_pack_amx(a->W, a->cout, a->cin, a->K, dst);
    return 0;
}

/* a convolution's AMX weights: kept in memo (made on first use), else packed into wp now */
static const uint16_t *amx_weights(const float *W, int cout, int cin, int K, kk_memo *memo, uint16_t *wp)
{
    const amx_pack_arg a = {.W = W, .cout = cout, .cin = cin, .K = K};
    const void *kept =
        memo ? kk_memo_get(memo, W, KK_MEMO_AMX, kk_amx_pack_words(cout, cin, K) * 4, amx_pack, &a) : NULL;
    if (kept || !wp) return kept;
    kk_dconv_pack_amx(W, cout, cin, K, wp); /* no memo, or no memory for it */
    return wp;
}

/* bf16 on AMX tiles: the input as bf16 channel pairs (zero past cin, up to a whole 32-channel chunk) */
static int conv_direct_amx(const kk_conv *c, const float *x, int n, int pad, int dil, float *y, size_t ldx,
                           kk_memo *memo)
{
    const int np = kk_amx_pairs(c->cin), nth = kk_threads();
    uint32_t *xb = malloc((size_t)np * ldx * sizeof *xb);
    uint16_t *own = memo ? NULL : malloc(kk_amx_pack_words(c->cout, c->cin, c->k) * sizeof(uint32_t));
    float *r = malloc(kk_amx_rows_tmp_floats(c->cin, ldx) * sizeof *r);
    const uint16_t *wp = xb && r && (memo || own) ? amx_weights(c->w, c->cout, c->cin, c->k, memo, own) : NULL;
    if (!wp) {
        free(xb), free(own), free(r);
        return -1;
    }
    kk_amx_pair_rows(x, c->cin, n, pad, 1.0f, xb, ldx, r, nth);
    kk_dconv d = {.xp = (const float *)xb, .ldx = ldx, .wp = (const float *)wp, .b = c->b, .cin = c->cin,
                  .cout = c->cout, .K = c->k, .dil = dil, .n = n, .y = y, .ldy = (size_t)n};
    kk_dconv_run_amx(&d, nth);
    free(xb), free(own), free(r);
    return n;
}

/* float32 with many input channels (the decoder's 514–1090) over long rows: a GEMM per tap
 * (kk_conv1d_taps), on OpenBLAS, whose blocking of the input channels keeps its
 * panels in cache where the direct kernel streams all of them per tile. On the AVX-512 Xeon here
 * a whole call with its preparation ran 1.00–1.13× the direct kernel's speed at 640 and 1280
 * steps, but 0.85–0.99× at 80–320 (kokoro-bench --conv --decoder --seconds 2, 4, 8, 16): from
 * 512 steps. */
static int gemm_conv(int cin, int n)
{
    const char *e = getenv("KOKORO_TAPGEMM"); /* 0: the direct kernel (kokoro-bench --conv --decoder compares) */
    return cin >= 512 && n >= 512 && !(e && strcmp(e, "0") == 0);
}

/* Conv1d (stride 1, output as long as the input) by the direct kernel:
 * the rows zero-padded, the weights packed per call (or by a GEMM per tap,
 * gemm_conv); bf16: on AMX tiles where the CPU has them (float32
 * otherwise). */
static int kk_conv_direct(const kk_conv *c, const float *x, int n, int pad, int dil, float *y, int bf16,
                          kk_memo *memo)
{
    const kk_isa isa = kk_isa_active();
    const size_t ldx = kk_dconv_ldx(n, c->k, dil);
    if (bf16 && kk_amx_fits(c->cout)) return conv_direct_amx(c, x, n, pad, dil, y, ldx, memo);
    if (!bf16 && gemm_conv(c->cin, n)) return kk_conv1d_taps(x, c->cin, n, c->w, c->b, c->cout, c->k, pad, dil, y);
    float *xp = malloc((size_t)c->cin * ldx * sizeof *xp);
    float *wp = malloc(kk_dconv_pack_floats(isa, c->cout, c->cin, c->k) * sizeof *wp);
    if (!xp || !wp) {
        free(xp);
        free(wp);
        return -1;
    }
    kk_dconv_rows(x, c->cin, n, pad, 1.0f, xp, ldx, kk_threads());
    kk_dconv_pack(isa, c->w, c->cout, c->cin, c->k, wp);
    kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = c->b, .cin = c->cin, .cout = c->cout, .K = c->k, .dil = dil,
                  .n = n, .y = y, .ldy = (size_t)n};
    kk_dconv_run(isa, &d, kk_threads());
    free(xp);
    free(wp);
    return n;
}

#define R float
#define S(name) name
#define KK_REAL_IS_FLOAT
#include "model/blocks_real.inc"
#undef KK_REAL_IS_FLOAT
#undef R
#undef S

#define R double
#define S(name) name##_d
#include "model/blocks_real.inc"
#undef R
#undef S

/* AdaIN (statistics summed in double per block, as kk_adain) fused with Snake, written into
 * the zero-padded input rows of the direct convolution. */
typedef struct prep_ctx {
    const float *x, *gb, *nw, *nb, *alpha;
    int C, n, pad;
    float *xp;
    size_t ldx;
    kk_isa isa;
    uint32_t *xb; /* bf16 path: the rows as bf16 channel pairs (tasks hold whole pairs) */
    const double *mean, *var; /* the rows' statistics when known (else summed here) */
} prep_ctx;

/* AdaIN of channel ch folded with its statistics into Snake's affine input
 * (x − m)·scale + shift; gb = [γ; β] from the style, nw/nb the norm's affine */
static void adain_fold(const float *gb, const float *nw, const float *nb, int C, int ch, double mean, double var,
                       float *m, float *scale, float *shift)
{
    const double inv = 1.0 / sqrt(var + 1e-5), w = nw ? nw[ch] : 1.0, bb = nb ? nb[ch] : 0.0;
    const double g1 = 1.0 + gb[ch], beta = gb[C + ch];
    *m = (float)mean, *scale = (float)(g1 * w * inv), *shift = (float)(g1 * bb + beta);
}

/* channel ch's padded input row */
static void prep_row(const prep_ctx *c, int ch, float *row)
{
    const float *xc = c->x + (size_t)ch * c->n;
    double mean, var;
    float m, scale, shift;
    if (c->mean) mean = c->mean[ch], var = c->var[ch];
    else kk_row_stats(c->isa, xc, c->n, &mean, &var);
    adain_fold(c->gb, c->nw, c->nb, c->C, ch, mean, var, &m, &scale, &shift);
    memset(row, 0, (size_t)c->pad * sizeof *row);
    kk_snake_affine(c->isa, xc, c->n, m, scale, shift, c->alpha[ch], row + c->pad);
    memset(row + c->pad + c->n, 0, (c->ldx - c->pad - c->n) * sizeof *row);
}

static void prep_rows(void *p, int task)
{
    const prep_ctx *c = p;
    const int ch0 = task * 16, ch1 = ch0 + 16 < c->C ? ch0 + 16 : c->C;
    if (!c->xb) {
        for (int ch = ch0; ch < ch1; ch++) prep_row(c, ch, c->xp + (size_t)ch * c->ldx);
        return;
    }
    /* bf16: a pair at a time through the task's first two float rows, which stay in cache
     * (only the pair rows go out to memory) */
    float *r0 = c->xp + (size_t)ch0 * c->ldx, *r1 = r0 + c->ldx;
    for (int ch = ch0; ch < ch1; ch += 2) {
        prep_row(c, ch, r0);
        if (ch + 1 < ch1) prep_row(c, ch + 1, r1);
        kk_bf16_pair_row(r0, ch + 1 < ch1 ? r1 : NULL, c->ldx, c->xb + (size_t)(ch / 2) * c->ldx);
    }
}

/* fp: the FFT plan (NULL: the direct kernel on d->xp; bf16: vdpbf16ps, the AMX resblocks take
 * resblock1_amx); in: the FFT's input made as it reads it (d->xp unused) */
static void conv(kk_isa isa, const float *W, const kk_dconv *d, float *wp, int nth, int bf16,
                 const kk_fconv_plan *fp, const kk_snake_in *in, float *fws)
{
    if (bf16) {
        kk_dconv_pack_bf16(W, d->cout, d->cin, d->K, (uint32_t *)wp);
        kk_dconv_run_bf16(d, nth);
        return;
    }
    kk_dconv_pack(isa, W, d->cout, d->cin, d->K, wp);
    if (fp) kk_fconv_run(fp, d, in, fws, nth);
    else kk_dconv_run(isa, d, nth); /* (the direct kernel reads neither acc_from nor rowstats) */
}

/* floats of the FFT convolutions' workspace: the most any convolution of the block needs */
static size_t fft_floats(const kk_resblock1 *r, int n)
{
    static const int dil[3] = {1, 3, 5};
    size_t most = 0;
    for (int j = 0; j < 3; j++) {
        kk_fconv_plan p;
        if (!kk_fconv_choose(kk_isa_active(), r->C, r->C, r->K, dil[j], n, &p)) continue;
        const size_t k = kk_fconv_ws_floats(&p, kk_threads());
        most = k > most ? k : most;
    }
    return most;
}

typedef struct copy_job {
    float *dst;
    const float *src;
} copy_job;

static void copy_part(void *arg, size_t i0, size_t i1)
{
    const copy_job *cj = arg;
    memcpy(cj->dst + i0, cj->src + i0, (i1 - i0) * sizeof *cj->dst);
}

/* floats of the AMX path's own buffers (inside the padded rows' room, or past it): a slot per thread,
 * the task statistics and the per-channel mean and variance (doubles: two floats each), the
 * AdaIN+Snake parameters, and room to align the doubles */
static size_t amx_room_floats(const kk_resblock1 *r, int n)
{
    const size_t C = (size_t)r->C;
    return (size_t)kk_threads() * kk_amx_slot_words(r->C, r->K, 5) + 2 * (2 * C * kk_amx_tasks(n) + 2 * C) + 3 * C + 16;
}

/* the workspace's first region: the padded rows, or the AMX path's buffers */
static size_t room_floats(const kk_resblock1 *r, int n)
{
    const size_t rows = (size_t)r->C * kk_dconv_ldx(n, r->K, 5), amx = amx_room_floats(r, n);
    return rows > amx ? rows : amx;
}

/* The workspace: the first region (room_floats), u, gb, packed weights, bf16 pair rows, the FFT
 * convolutions' room; then, for kk_resblock1_mean_ws, y. */
typedef struct resblock1_ws {
    float *room, *u, *gb, *wp, *pairs, *fft, *stats, *y;
} resblock1_ws;

/* the float32 path's row statistics: the FFT's sums (2C doubles), mean and variance (C each), aligned;
 * then the FFT input's AdaIN+Snake parameters (3C floats) */
#define STATS_FLOATS(C) (11 * (size_t)(C) + 16)

static resblock1_ws ws_layout(const kk_resblock1 *r, int n, float *ws)
{
    const size_t C = (size_t)r->C;
    resblock1_ws w = {.room = ws};
    w.u = w.room + room_floats(r, n);
    w.gb = w.u + C * n;
    w.wp = w.gb + 2 * C;
    w.pairs = w.wp + kk_dconv_pack_floats(KK_ISA_AVX512, r->C, r->C, r->K);
    w.fft = w.pairs + (C + 1) / 2 * kk_dconv_ldx(n, r->K, 5);
    w.stats = w.fft + fft_floats(r, n);
    w.y = w.stats + STATS_FLOATS(C);
    return w;
}

size_t kk_resblock1_ws_floats(const kk_resblock1 *r, int n)
{
    const size_t C = (size_t)r->C;
    /* ws_layout's regions up to y (the widest row block packs the most weights; bf16 pairs take
     * fewer words) */
    return room_floats(r, n) + C * n + 2 * C + kk_dconv_pack_floats(KK_ISA_AVX512, r->C, r->C, r->K) +
           (C + 1) / 2 * kk_dconv_ldx(n, r->K, 5) + fft_floats(r, n) + STATS_FLOATS(C);
}

typedef struct stats_job {
    const float *x;
    int n;
    kk_isa isa;
    double *mean, *var;
} stats_job;

static void stats_rows(void *p, int task)
{
    const stats_job *j = p;
    for (int c = task * 8; c < task * 8 + 8; c++) kk_row_stats(j->isa, j->x + (size_t)c * j->n, j->n, &j->mean[c], &j->var[c]);
}

/* every channel's adain_fold */
static void adain_params(const kk_adain_p *a, const float *gb, const double *mean, const double *var, int C, float *m,
                         float *scale, float *shift)
{
    for (int ch = 0; ch < C; ch++) adain_fold(gb, a->nw, a->nb, C, ch, mean[ch], var[ch], &m[ch], &scale[ch], &shift[ch]);
}

/* A convolution's input from c->x: through the FFT (fft), only in's parameters, into pm (m, scale,
 * shift: 3·C floats; the statistics summed into mean and var where not known; the transforms make
 * the rows); else the padded rows (or bf16 pairs) */
static void conv_input(prep_ctx *c, int fft, kk_snake_in *in, double *mean, double *var, float *pm, int nth)
{
    const int C = c->C;
    if (!fft) {
        kk_parallel_for(nth, (C + 15) / 16, prep_rows, c);
        return;
    }
    if (!c->mean) {
        stats_job sj = {.x = c->x, .n = c->n, .isa = c->isa, .mean = mean, .var = var};
        kk_parallel_for(nth, C / 8, stats_rows, &sj);
    }
    for (int ch = 0; ch < C; ch++)
        adain_fold(c->gb, c->nw, c->nb, C, ch, mean[ch], var[ch], &pm[ch], &pm[C + ch], &pm[2 * C + ch]);
    *in = (kk_snake_in){.x = c->x, .ldx = (size_t)c->n, .m = pm, .scale = pm + C, .shift = pm + 2 * C,
                        .alpha = c->alpha, .pad = c->pad};
}

/* The bf16 resblock on AMX tiles: AdaIN+Snake made inside each convolution's time tasks, and the
 * statistics the next AdaIN needs summed as the convolution stores its output (the input's first). */
/* x is read, y written (they may be the same rows); out non-NULL: the
 * result goes into out instead (mean3 = 0: out = it, 1: out += it, 2: out =
 * (out + it) / 3: the generator's mean of three resblocks) and y is scratch. */
static void resblock1_amx(const kk_resblock1 *r, const float *x, int n, const float *s, float *y, float *out,
                          int mean3, float *room, float *u, float *gb, uint16_t *wp, kk_memo *memo, kk_isa isa,
                          int nth)
{
    static const int dil[3] = {1, 3, 5};
    const int C = r->C, K = r->K;
    const size_t ntask = (size_t)kk_amx_tasks(n);
    uint32_t *slots = (uint32_t *)room;
    double *st = (double *)(((uintptr_t)(slots + (size_t)nth * kk_amx_slot_words(C, K, 5)) + 63) & ~(uintptr_t)63);
    double *mean = st + 2 * (size_t)C * ntask, *var = mean + C;
    float *m = (float *)(var + C), *scale = m + C, *shift = scale + C;
    stats_job sj = {.x = x, .n = n, .isa = isa, .mean = mean, .var = var};
    kk_parallel_for(nth, C / 8, stats_rows, &sj);
    kk_snake_in in = {.ldx = (size_t)n, .m = m, .scale = scale, .shift = shift};
    kk_dconv d = {.cin = C, .cout = C, .K = K, .n = n, .ldy = (size_t)n};
    for (int j = 0; j < 3; j++) {
        const float *cur = j ? y : x; /* the block's running value: x, then y */
        /* u = conv1(snake1(adain1(cur))), with u's statistics */
        kk_style_fc(&r->a1[j], s, gb);
        adain_params(&r->a1[j], gb, mean, var, C, m, scale, shift);
        in.x = cur, in.alpha = r->alpha1[j], in.pad = dil[j] * (K - 1) / 2;
        d.wp = (const float *)amx_weights(r->c1[j].w, C, C, K, memo, wp);
        d.b = r->c1[j].b, d.dil = dil[j], d.y = u, d.accumulate = 0, d.acc_from = NULL, d.combine = 0;
        kk_dconv_run_amx_snake(isa, &d, &in, slots, st, nth);
        kk_amx_stats_finish(st, n, C, mean, var);
        /* y = cur + conv2(snake2(adain2(u))), with y's statistics for the next j (no copy of x:
         * the first sum starts from x's rows; the last may go straight into out) */
        kk_style_fc(&r->a2[j], s, gb);
        adain_params(&r->a2[j], gb, mean, var, C, m, scale, shift);
        in.x = u, in.alpha = r->alpha2[j], in.pad = (K - 1) / 2;
        d.wp = (const float *)amx_weights(r->c2[j].w, C, C, K, memo, wp);
        d.b = r->c2[j].b, d.dil = 1, d.y = y, d.accumulate = 1, d.acc_from = cur != y ? cur : NULL;
        if (j == 2 && out) d.y = out, d.acc_from = y, d.combine = mean3;
        kk_dconv_run_amx_snake(isa, &d, &in, slots, j < 2 ? st : NULL, nth);
        if (j < 2) kk_amx_stats_finish(st, n, C, mean, var);
    }
}

size_t kk_resblock1_mean_ws_floats(const kk_resblock1 *r, int n) { return kk_resblock1_ws_floats(r, n) + (size_t)r->C * n; }

int kk_resblock1_amx(const kk_resblock1 *r, int bf16)
{
    return bf16 && kk_bf16_supported() && kk_amx_fits(r->C) && r->C % 32 == 0;
}

/* float32 and the vdpbf16ps kernel; out (may be NULL): the k-th result into the mean of three (as
 * kk_resblock1_mean_ws) where the last convolution goes through the FFT (*fused then 1; else y is
 * the result, as without out) */
static kokoro_status resblock1_forward(const kk_resblock1 *r, const float *x, int n, const float *s, float *y,
                                       float *out, int k, int *fused, float *ws, int bf16, kk_memo *memo)
{
    const int C = r->C, K = r->K, nth = kk_threads();
    static const int dil[3] = {1, 3, 5};
    const kk_isa isa = kk_isa_active();
    const size_t ldx = kk_dconv_ldx(n, K, 5), total = (size_t)C * n;
    const resblock1_ws w = ws_layout(r, n, ws);
    float *xp = w.room, *u = w.u, *gb = w.gb, *wp = w.wp;
    uint32_t *xb = bf16 ? (uint32_t *)w.pairs : NULL;
    if (bf16 && !kk_bf16_supported())
        return kk_error(KOKORO_ERR_INVALID_ARG, "bfloat16 compute needs a CPU with AVX512-BF16, which this one lacks");
    kk_scratch_poison(ws, kk_resblock1_ws_floats(r, n) * sizeof *ws); /* sanitizer builds: stale reads show */
    if (kk_resblock1_amx(r, bf16)) {
        resblock1_amx(r, x, n, s, y, NULL, 0, xp, u, gb, (uint16_t *)wp, memo, isa, nth);
        return KOKORO_OK;
    }
    /* float32: where a convolution goes through the FFT, its output's statistics come with it
     * (no pass of their own before the next AdaIN) and the first residual sum starts from x
     * (no copy of x) */
    double *st = (double *)(((uintptr_t)w.stats + 63) & ~(uintptr_t)63), *mean = st + 2 * C, *var = mean + C;
    int known = 0; /* mean and var hold the statistics of the rows the next AdaIN reads */
    prep_ctx pc = {.C = C, .n = n, .xp = xp, .ldx = ldx, .isa = isa, .gb = gb, .xb = xb};
    kk_dconv d = {.xp = bf16 ? (const float *)xb : xp, .ldx = ldx, .wp = wp, .cin = C, .cout = C, .K = K, .n = n,
                  .ldy = (size_t)n};
    kk_fconv_plan fp, fp2;
    const int fft2 = !bf16 && kk_fconv_choose(isa, C, C, K, 1, n, &fp2); /* conv2 (dilation 1) on the FFT */
    /* the FFT's AdaIN+Snake parameters: m, scale, shift per channel past the statistics */
    float *pm = (float *)(var + C);
    kk_snake_in in;
    if (y != x && !fft2) {
        copy_job cj = {.dst = y, .src = x};
        kk_parallel_range(nth, total, 1 << 16, copy_part, &cj);
    }
    for (int j = 0; j < 3; j++) {
        const float *cur = j == 0 && fft2 ? x : y;
        /* u = conv1(snake1(adain1(cur))) */
        kk_style_fc(&r->a1[j], s, gb);
        pc.x = cur, pc.nw = r->a1[j].nw, pc.nb = r->a1[j].nb, pc.alpha = r->alpha1[j];
        pc.mean = known ? mean : NULL, pc.var = known ? var : NULL;
        pc.pad = dil[j] * (K - 1) / 2;
        memset(st, 0, 2 * (size_t)C * sizeof *st);
        d.b = r->c1[j].b, d.dil = dil[j], d.y = u, d.accumulate = 0, d.acc_from = NULL, d.rowstats = bf16 ? NULL : st;
        int fft = !bf16 && kk_fconv_choose(isa, C, C, K, dil[j], n, &fp);
        conv_input(&pc, fft, &in, mean, var, pm, nth);
        conv(isa, r->c1[j].w, &d, wp, nth, bf16, fft ? &fp : NULL, &in, w.fft);
        if ((known = fft)) kk_sums_finish(st, 1, n, C, mean, var);
        /* y = cur + conv2(snake2(adain2(u))) */
        kk_style_fc(&r->a2[j], s, gb);
        pc.x = u, pc.nw = r->a2[j].nw, pc.nb = r->a2[j].nb, pc.alpha = r->alpha2[j];
        pc.mean = known ? mean : NULL, pc.var = known ? var : NULL;
        pc.pad = (K - 1) / 2;
        conv_input(&pc, fft2, &in, mean, var, pm, nth);
        memset(st, 0, 2 * (size_t)C * sizeof *st);
        d.b = r->c2[j].b, d.dil = 1, d.y = y, d.accumulate = 1, d.acc_from = cur != y ? cur : NULL;
        if (j == 2) d.rowstats = NULL; /* the block's result: no AdaIN of this block reads its statistics */
        if (j == 2 && out && fft2) /* the result straight into the mean of three (no pass of its own) */
            d.y = out, d.acc_from = cur, d.combine = k, *fused = 1;
        conv(isa, r->c2[j].w, &d, wp, nth, bf16, fft2 ? &fp2 : NULL, &in, w.fft);
        if ((known = fft2) && j < 2) kk_sums_finish(st, 1, n, C, mean, var);
    }
    return KOKORO_OK;
}

kokoro_status kk_resblock1_forward_ws(const kk_resblock1 *r, const float *x, int n, const float *s, float *y,
                                      float *ws, int bf16, kk_memo *memo)
{
    return resblock1_forward(r, x, n, s, y, NULL, 0, NULL, ws, bf16, memo);
}

kokoro_status kk_resblock1_mean_ws(const kk_resblock1 *r, const float *x, int n, const float *s, float *out, int k,
                                   float *ws, int bf16, kk_memo *memo, const float **rest)
{
    const resblock1_ws w = ws_layout(r, n, ws);
    *rest = NULL;
    if (kk_resblock1_amx(r, bf16)) {
        kk_scratch_poison(ws, kk_resblock1_ws_floats(r, n) * sizeof *ws);
        resblock1_amx(r, x, n, s, w.y, out, k, w.room, w.u, w.gb, (uint16_t *)w.wp, memo, kk_isa_active(),
                      kk_threads());
        return KOKORO_OK;
    }
    if (k == 0) /* the first result is the mean's start: out is its y */
        return resblock1_forward(r, x, n, s, out, NULL, 0, NULL, ws, bf16, memo);
    int fused = 0;
    kokoro_status st = resblock1_forward(r, x, n, s, w.y, out, k, &fused, ws, bf16, memo);
    if (!fused) *rest = w.y;
    return st;
}

kokoro_status kk_resblock1_forward(const kk_resblock1 *r, const float *x, int n, const float *s, float *y)
{
    float *ws = malloc(kk_resblock1_ws_floats(r, n) * sizeof *ws);
    if (!ws) return KK_NOMEM("AdaINResBlock1");
    kokoro_status st = kk_resblock1_forward_ws(r, x, n, s, y, ws, 0, NULL);
    free(ws);
    return st;
}
