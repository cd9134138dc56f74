/* Frame-rate stages: the decoder front (§3.8) and the iSTFTNet generator with
 * its harmonic source, STFT and iSTFT (§3.9). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parallel.h"
#include "model/blocks.h"
#include "nn/dconv.h"
#include "nn/vmath.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

kokoro_status kk_decoder_asr_res(const kokoro_model *m, const float *asr, int L, float *ar)
{
    return kk_conv_apply(&m->asr_res, asr, L, 1, 0, 1, ar) < 0 ? KK_NOMEM("asr_res") : KOKORO_OK;
}

kokoro_status kk_decoder_encode(const kokoro_model *m, const float *asr, const float *F0, const float *N, int L,
                                const float *s, float *x, float *F0d, float *Nd, int bf16)
{
    const int H = KK_HIDDEN;
    if (kk_conv_apply(&m->F0_conv, F0, 2 * L, 2, 1, 1, F0d) < 0 || kk_conv_apply(&m->N_conv, N, 2 * L, 2, 1, 1, Nd) < 0)
        return KK_NOMEM("decoder");
    float *in = malloc((size_t)(H + 2) * L * sizeof *in);
    if (!in) return KK_NOMEM("decoder");
    memcpy(in, asr, (size_t)H * L * sizeof *in);
    memcpy(in + (size_t)H * L, F0d, (size_t)L * sizeof *in);
    memcpy(in + (size_t)(H + 1) * L, Nd, (size_t)L * sizeof *in);
    kokoro_status st = kk_resblk_forward_dt(&m->encode, in, L, s, x, bf16, m->memo);
    free(in);
    return st;
}

kokoro_status kk_decoder_decode(const kokoro_model *m, int i, const float *x, const float *ar, const float *F0d,
                                const float *Nd, int L, const float *s, float *out, int bf16)
{
    /* input is always [x(1024), asr_res(64), F0d(1), Nd(1)] */
    const size_t C = 1024;
    float *in = malloc((C + 66) * L * sizeof *in);
    if (!in) return KK_NOMEM("decoder");
    memcpy(in, x, C * L * sizeof *in);
    memcpy(in + C * L, ar, 64 * (size_t)L * sizeof *in);
    memcpy(in + (C + 64) * L, F0d, (size_t)L * sizeof *in);
    memcpy(in + (C + 65) * L, Nd, (size_t)L * sizeof *in);
    kokoro_status st = kk_resblk_forward_dt(&m->decode[i], in, L, s, out, bf16, m->memo);
    free(in);
    return st;
}

kokoro_status kk_decoder_front(const kokoro_model *m, const float *asr, const float *F0, const float *N, int L,
                               const float *s, float *out, int bf16)
{
    kk_arena a = {0};
    float *x = kk_arena_floats(&a, 1024 * (size_t)L), *y = kk_arena_floats(&a, 1024 * (size_t)L);
    float *F0d = kk_arena_floats(&a, (size_t)L), *Nd = kk_arena_floats(&a, (size_t)L);
    float *ar = kk_arena_floats(&a, 64 * (size_t)L);
    kokoro_status st = a.failed ? KK_NOMEM("decoder") : KOKORO_OK;
    if (st == KOKORO_OK) st = kk_decoder_encode(m, asr, F0, N, L, s, x, F0d, Nd, bf16);
    if (st == KOKORO_OK) st = kk_decoder_asr_res(m, asr, L, ar);
    for (int i = 0; i < 3 && st == KOKORO_OK; i++) {
        st = kk_decoder_decode(m, i, x, ar, F0d, Nd, L, s, y, bf16);
        float *t = x;
        x = y;
        y = t;
    }
    if (st == KOKORO_OK) st = kk_decoder_decode(m, 3, x, ar, F0d, Nd, L, s, out, bf16);
    kk_arena_free(&a);
    return st;
}

/* ---- harmonic source (hn-NSF), closed form of spec §3.9.1 ---- */

/* Counter-based normal deviates: the value for index i depends only on
 * (seed, i), so chunks and threads can never change the stream. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t seed, uint64_t i)
{
    uint64_t a = mix64(seed + (2 * i + 1) * 0x9E3779B97F4A7C15ull);
    uint64_t b = mix64(seed + (2 * i + 2) * 0x9E3779B97F4A7C15ull);
    double u1 = ((double)(a >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
    double u2 = (double)(b >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* Samples are independent once the phases are accumulated (the noise is
 * indexed by sample), so threads take equal ranges of them. */
typedef struct source_task {
    const float *F0, *w;
    float b;
    const double *C;
    int M, parts;
    int64_t n;
    const kk_noise *noise;
    float *src;
} source_task;

#define SOURCE_BLOCK 64 /* samples whose harmonics' phases go through the sine together */

static void source_part(void *arg, int part)
{
    const source_task *k = arg;
    const int H = KK_HARMONICS, UP = 300, M = k->M, vec = kk_vmath_ok();
    const double *C = k->C;
    double sn[SOURCE_BLOCK * KK_HARMONICS];
    int64_t i0 = k->n * part / k->parts, i1 = k->n * (part + 1) / k->parts;
    for (int64_t b0 = i0; b0 < i1; b0 += SOURCE_BLOCK) {
        const int nb = i1 - b0 < SOURCE_BLOCK ? (int)(i1 - b0) : SOURCE_BLOCK;
        for (int q = 0; q < nb; q++) {
            /* linear ×300 up-sampling of the phase, align_corners=False */
            const int64_t i = b0 + q;
            double pos = ((double)i + 0.5) / UP - 0.5;
            if (pos < 0) pos = 0;
            int64_t j0 = (int64_t)pos;
            if (j0 > M - 1) j0 = M - 1;
            int64_t j1 = j0 + 1 < M ? j0 + 1 : M - 1;
            double lam = pos - (double)j0;
            for (int h = 0; h < H; h++)
                sn[q * H + h] = 2.0 * M_PI * UP * ((1.0 - lam) * C[j0 * H + h] + lam * C[j1 * H + h]);
        }
        if (vec) kk_sin_avx512(sn, (size_t)nb * H); /* eight at a time through libmvec */
        else
            for (int q = 0; q < nb * H; q++) sn[q] = sin(sn[q]);
        for (int q = 0; q < nb; q++) {
            const int64_t i = b0 + q;
            float f0u = k->F0[i / UP];
            int voiced = f0u > 10.0f;
            float sigma = voiced ? 0.003f : 0.1f / 3.0f;
            double sum = k->b;
            for (int h = 0; h < H; h++) {
                float e = voiced ? 0.1f * (float)sn[q * H + h] : 0.0f;
                if (k->noise && k->noise->enabled) e += sigma * gauss(k->noise->seed, (uint64_t)i * H + (uint64_t)h);
                sum += (double)k->w[h] * e;
            }
            k->src[i] = tanhf((float)sum);
        }
    }
}

kokoro_status kk_gen_source(const kokoro_model *m, const float *F0, int M, const kk_noise *noise, float *src)
{
    const int H = KK_HARMONICS, UP = 300;
    double *C = malloc((size_t)M * H * sizeof *C);
    if (!C) return KK_NOMEM("harmonic source");
    /* r_h[j] = frac(h·F0[j]/24000) in float32 as the reference; the phase is
     * accumulated and interpolated in double (the reference's float32 phase
     * rounding is noise we do not imitate: see spec §3.9.1) */
    double acc[KK_HARMONICS] = {0};
    for (int j = 0; j < M; j++)
        for (int h = 0; h < H; h++) {
            float fn = F0[j] * (float)(h + 1);
            float rv = fn / 24000.0f;
            rv = rv - floorf(rv);
            acc[h] += rv;
            C[(size_t)j * H + h] = acc[h];
        }
    int nt = kk_threads();
    source_task k = {.F0 = F0, .w = m->src_lin.w, .b = m->src_lin.b[0], .C = C, .M = M, .parts = nt,
                     .n = (int64_t)UP * M, .noise = noise, .src = src};
    kk_parallel_for(nt, nt, source_part, &k);
    free(C);
    return KOKORO_OK;
}

/* ---- STFT / iSTFT: n_fft 20, hop 5, periodic Hann, centred ---- */

typedef struct dft20 {
    double win[KK_NFFT], cs[KK_NFFT], sn[KK_NFFT];
} dft20;

static void dft20_init(dft20 *d)
{
    for (int i = 0; i < KK_NFFT; i++) {
        d->win[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / KK_NFFT);
        d->cs[i] = cos(2.0 * M_PI * i / KK_NFFT);
        d->sn[i] = sin(2.0 * M_PI * i / KK_NFFT);
    }
    /* exact quarter-turn twiddles, so bins 0 and 10 have an exactly zero imaginary part */
    d->cs[5] = d->cs[15] = 0.0;
    d->sn[0] = d->sn[10] = 0.0;
    d->sn[5] = 1.0;
    d->sn[15] = -1.0;
    d->cs[10] = -1.0;
}

typedef struct stft_task {
    dft20 d;
    const float *x;
    float *har;
    int n, F, parts;
} stft_task;

#define STFT_BLOCK 64 /* frames whose magnitudes and phases are taken together */

static void stft_part(void *arg, int part)
{
    const stft_task *k = arg;
    const dft20 *d = &k->d;
    const int n = k->n, F = k->F, pad = KK_NFFT / 2, vec = kk_vmath_ok();
    double re[KK_NBINS][STFT_BLOCK], im[KK_NBINS][STFT_BLOCK];
    const int f0 = F * part / k->parts, f1 = F * (part + 1) / k->parts;
    for (int b0 = f0; b0 < f1; b0 += STFT_BLOCK) {
        const int nf = f1 - b0 < STFT_BLOCK ? f1 - b0 : STFT_BLOCK;
        for (int q = 0; q < nf; q++) {
            const int t = b0 + q;
            double fr[KK_NFFT];
            for (int j = 0; j < KK_NFFT; j++) {
                int p = KK_HOP * t + j - pad; /* reflect padding, edge not repeated */
                if (p < 0) p = -p;
                if (p >= n) p = 2 * (n - 1) - p;
                fr[j] = d->win[j] * k->x[p];
            }
            for (int b = 0; b < KK_NBINS; b++) {
                double r = 0, i = 0;
                for (int j = 0; j < KK_NFFT; j++) {
                    int qq = (b * j) % KK_NFFT;
                    r += fr[j] * d->cs[qq];
                    i -= fr[j] * d->sn[qq];
                }
                re[b][q] = r, im[b][q] = i;
            }
        }
        for (int b = 0; b < KK_NBINS; b++) {
            float *mag = k->har + (size_t)b * F + b0, *ph = k->har + (size_t)(KK_NBINS + b) * F + b0;
            if (vec) kk_polar_avx512(re[b], im[b], (size_t)nf, mag, ph); /* eight at a time through libmvec */
            else
                for (int q = 0; q < nf; q++) {
                    mag[q] = (float)sqrt(re[b][q] * re[b][q] + im[b][q] * im[b][q]);
                    ph[q] = (float)atan2(im[b][q], re[b][q]);
                }
        }
    }
}

int kk_gen_stft(const float *x, int n, float *har)
{
    int nt = kk_threads();
    stft_task k = {.x = x, .har = har, .n = n, .F = n / KK_HOP + 1, .parts = nt};
    dft20_init(&k.d);
    kk_parallel_for(nt, nt, stft_part, &k);
    return k.F;
}

/* The iSTFT by ranges of frames on the threads. A range's output samples
 * are those its frames start (HOP each); each sums, in ascending frame order
 * from zero, every frame that covers it, the window envelope likewise, so a
 * range recomputes the NFFT/HOP - 1 frames before its first and the sums do
 * not depend on the thread count or the block size. */
typedef struct istft_task {
    dft20 d;
    const float *spec;
    float *audio;
    int F, parts;
} istft_task;

#define ISTFT_BLOCK 256 /* frames per block: the block's sums stay on the stack */

#define ISTFT_SPAN (ISTFT_BLOCK + KK_NFFT / KK_HOP) /* frames a block computes */

/* re, im [KK_NBINS][ISTFT_SPAN] of frames t0 … t0 + n − 1: e^mag·(cos, sin)(sin phase), eight frames at
 * a time through libmvec where the AVX-512 path runs */
static void istft_polar(const istft_task *k, int t0, int n, double *re, double *im)
{
    const size_t F = (size_t)k->F;
    const int vec = kk_vmath_ok();
    for (int b = 0; b < KK_NBINS; b++) {
        const float *m = k->spec + b * F + t0, *p = k->spec + (KK_NBINS + b) * F + t0;
        double *rb = re + b * ISTFT_SPAN, *ib = im + b * ISTFT_SPAN;
        if (vec) {
            kk_istft_polar_avx512(m, p, (size_t)n, rb, ib);
            continue;
        }
        for (int i = 0; i < n; i++) {
            const double mag = exp((double)m[i]), ph = sin((double)p[i]);
            rb[i] = mag * cos(ph);
            ib[i] = mag * sin(ph);
        }
    }
}

/* frame i of the block's polar values: the windowed inverse DFT */
static void istft_frame(const istft_task *k, const double *pre, const double *pim, int i, double fr[KK_NFFT])
{
    const dft20 *d = &k->d;
    double re[KK_NBINS], im[KK_NBINS];
    for (int b = 0; b < KK_NBINS; b++) re[b] = pre[b * ISTFT_SPAN + i], im[b] = pim[b * ISTFT_SPAN + i];
    for (int j = 0; j < KK_NFFT; j++) {
        double v = re[0] + ((j & 1) ? -re[10] : re[10]);
        for (int b = 1; b < KK_NBINS - 1; b++) {
            int q = (b * j) % KK_NFFT;
            v += 2.0 * (re[b] * d->cs[q] - im[b] * d->sn[q]);
        }
        v /= KK_NFFT;
        fr[j] = d->win[j] * v;
    }
}

static void istft_part(void *arg, int part)
{
    const istft_task *k = arg;
    const int F = k->F, pad = KK_NFFT / 2, n = KK_HOP * (F - 1), back = (KK_NFFT + KK_HOP - 1) / KK_HOP - 1;
    const int t0 = (int)((long)F * part / k->parts), t1 = (int)((long)F * (part + 1) / k->parts);
    for (int b0 = t0; b0 < t1; b0 += ISTFT_BLOCK) {
        const int b1 = b0 + ISTFT_BLOCK < t1 ? b0 + ISTFT_BLOCK : t1;
        /* padded-signal samples [m0, m1): those of frames b0..b1-1; the last frame's block also takes
         * the tail the following frames would have started (up to pad + n) */
        const int m0 = KK_HOP * b0, m1 = b1 == F ? pad + n : KK_HOP * b1;
        double y[ISTFT_BLOCK * KK_HOP + KK_NFFT] = {0}, env[ISTFT_BLOCK * KK_HOP + KK_NFFT] = {0};
        double pre[KK_NBINS * ISTFT_SPAN], pim[KK_NBINS * ISTFT_SPAN];
        const int tb = b0 - back > 0 ? b0 - back : 0;
        istft_polar(k, tb, b1 - tb, pre, pim);
        for (int t = tb; t < b1; t++) {
            double fr[KK_NFFT];
            istft_frame(k, pre, pim, t - tb, fr);
            for (int j = 0; j < KK_NFFT; j++) {
                int m = KK_HOP * t + j;
                if (m < m0 || m >= m1) continue;
                y[m - m0] += fr[j];
                env[m - m0] += k->d.win[j] * k->d.win[j];
            }
        }
        for (int m = m0 > pad ? m0 : pad; m < m1 && m < pad + n; m++)
            k->audio[m - pad] = (float)(y[m - m0] / env[m - m0]);
    }
}

kokoro_status kk_istft(const float *spec, int F, float *audio)
{
    if (F < 2) return KOKORO_OK; /* no samples */
    int nt = kk_threads();
    istft_task k = {.spec = spec, .audio = audio, .F = F, .parts = nt};
    dft20_init(&k.d);
    kk_parallel_for(nt, nt, istft_part, &k);
    return KOKORO_OK;
}

kokoro_status kk_gen_noise_branch(const kokoro_model *m, int i, const float *har, int F, const float *s, float *out,
                                  int *nout)
{
    return kk_gen_noise_branch_dt(m, i, har, F, s, out, nout, 0, NULL);
}

static int noise_len(const kokoro_model *m, int i, int F)
{
    return kk_conv1d_len(F, m->noise_convs[i].k, i == 0 ? 6 : 1, i == 0 ? 3 : 0, 1);
}

static size_t noise_ws(const kokoro_model *m, int i, int F)
{
    int no = noise_len(m, i, F);
    return (size_t)m->noise_convs[i].cout * no + kk_resblock1_ws_floats(&m->noise_res[i], no);
}

static size_t res_ws(const kokoro_model *m, int stage, int n)
{
    size_t w = 0;
    for (int j = 0; j < 3; j++) {
        size_t k = kk_resblock1_ws_floats(&m->res[3 * stage + j], n);
        w = k > w ? k : w;
    }
    return (size_t)m->res[3 * stage].C * n + w; /* also kk_resblock1_mean_ws_floats */
}

kokoro_status kk_gen_noise_branch_dt(const kokoro_model *m, int i, const float *har, int F, const float *s,
                                     float *out, int *nout, int bf16, float *ws)
{
    const kk_conv *c = &m->noise_convs[i];
    int stride = i == 0 ? 6 : 1, pad = i == 0 ? 3 : 0;
    int no = noise_len(m, i, F);
    float *own = ws ? NULL : malloc(noise_ws(m, i, F) * sizeof *own);
    if (!ws && !own) return KK_NOMEM("generator");
    float *tmp = ws ? ws : own;
    kokoro_status st = KOKORO_OK;
    if (kk_conv_apply(c, har, F, stride, pad, 1, tmp) < 0) st = KK_NOMEM("generator");
    if (st == KOKORO_OK)
        st = kk_resblock1_forward_ws(&m->noise_res[i], tmp, no, s, out, tmp + (size_t)c->cout * no, bf16, m->memo);
    free(own);
    *nout = no;
    return st;
}

/* ---- the upsamplings in bf16 on AMX tiles, as convolutions in polyphase form ----
 * With k = 2·stride (both ups), output step t = q·s + r − pad takes taps r and
 * r + s only: y[o, t] = b[o] + Σ_c W[c, o, r + s]·x[c, q − 1] + W[c, o, r]·x[c, q].
 * So the s phases are one 2-tap convolution with s·cout output rows (row
 * r·cout + o) over the input padded by one zero step, whose rows are then
 * interleaved into y. */
static int ups_stride(int i) { return i == 0 ? 10 : 6; }

static int ups_amx_fits(const kk_conv *c, int s) { return c->k == 2 * s && s <= 16 && kk_amx_fits(s * c->cout); }

typedef struct convt_pack_arg {
    const kk_conv *c;
    int s;
    int amx;    /* packed for the AMX kernel, else for the float32 kernel of isa */
    kk_isa isa;
} convt_pack_arg;

static int convt_pack(void *dst, const void *arg)
{
    const convt_pack_arg *a = arg;
    const kk_conv *c = a->c;
    const int s = a->s, rows = s * c->cout;
    float *w = malloc((size_t)rows * c->cin * 2 * sizeof *w);
    if (!w) return -1;
    for (int r = 0; r < s; r++)
        for (int o = 0; o < c->cout; o++)
            for (int ci = 0; ci < c->cin; ci++) {
                const float *src = c->w + ((size_t)ci * c->cout + o) * c->k; /* W[cin][cout][k] */
                float *dw = w + (((size_t)r * c->cout + o) * c->cin + ci) * 2;
                dw[0] = src[r + s]; /* tap 0 reads x[q - 1] */
                dw[1] = src[r];
            }
    if (a->amx) kk_dconv_pack_amx(w, rows, c->cin, 2, dst);
    else kk_dconv_pack(a->isa, w, rows, c->cin, 2, dst);
    free(w);
    return 0;
}

typedef struct ups_mix_job {
    const float *z, *b;
    float *y;
    int s, pad, cout, nq, nout;
} ups_mix_job;

/* y[o, t] = z[(r·cout + o), q] + b[o] for t = q·s + r − pad */
static void ups_mix(void *arg, size_t o0, size_t o1)
{
    const ups_mix_job *j = arg;
    for (size_t o = o0; o < o1; o++) {
        float *y = j->y + o * j->nout;
        const float bo = j->b ? j->b[o] : 0.0f;
        const float *zr[16];
        for (int r = 0; r < j->s; r++) zr[r] = j->z + ((size_t)r * j->cout + o) * j->nq;
        for (int q = 0; q < j->nq; q++) {
            const int t0 = q * j->s - j->pad;
            if (t0 >= 0 && t0 + j->s <= j->nout) {
                for (int r = 0; r < j->s; r++) y[t0 + r] = zr[r][q] + bo;
                continue;
            }
            for (int r = 0; r < j->s; r++) /* the first and last steps */
                if (t0 + r >= 0 && t0 + r < j->nout) y[t0 + r] = zr[r][q] + bo;
        }
    }
}

static size_t ups_amx_ws_floats(const kk_conv *c, int s, int n)
{
    const size_t ldx = kk_dconv_ldx(n + 1, 2, 1);
    return (size_t)kk_amx_pairs(c->cin) * ldx + kk_amx_rows_tmp_floats(c->cin, ldx) + (size_t)s * c->cout * (n + 1) + 32;
}

static kokoro_status ups_amx(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws)
{
    const kk_conv *c = &m->ups[i];
    const int s = ups_stride(i), pad = s / 2, nth = kk_threads(), np = kk_amx_pairs(c->cin);
    const convt_pack_arg pa = {.c = c, .s = s, .amx = 1};
    const void *wp = kk_memo_get(m->memo, c->w, KK_MEMO_CONVT_AMX, kk_amx_pack_words(s * c->cout, c->cin, 2) * 4,
                                 convt_pack, &pa);
    if (!wp) return KK_NOMEM("upsampling weights (bf16)");
    const size_t ldx = kk_dconv_ldx(n + 1, 2, 1);
    uint32_t *xb = (uint32_t *)ws;
    float *tmp = (float *)(xb + (size_t)np * ldx);
    float *z = (float *)(((uintptr_t)(tmp + kk_amx_rows_tmp_floats(c->cin, ldx)) + 63) & ~(uintptr_t)63);
    kk_amx_pair_rows(x, c->cin, n, 1, 0.1f, xb, ldx, tmp, nth); /* leaky ReLU, one zero step first */
    kk_dconv d = {.xp = (const float *)xb, .ldx = ldx, .wp = wp, .cin = c->cin, .cout = s * c->cout, .K = 2,
                  .dil = 1, .n = n + 1, .y = z, .ldy = (size_t)n + 1};
    kk_dconv_run_amx(&d, nth);
    const int no = kk_conv_transpose1d_len(n, c->k, s, pad, 0);
    ups_mix_job mj = {.z = z, .b = c->b, .y = out, .s = s, .pad = pad, .cout = c->cout, .nq = n + 1, .nout = no};
    kk_parallel_range(nth, (size_t)c->cout, 8, ups_mix, &mj);
    *nout = no;
    return KOKORO_OK;
}

/* float32: the same polyphase convolution on the direct kernel (weights packed once per model and
 * kernel path, kept with it: 12 MB for the two upsamplings) */
static size_t ups_f32_ws_floats(const kk_conv *c, int s, int n)
{
    return (size_t)c->cin * kk_dconv_ldx(n + 1, 2, 1) + (size_t)s * c->cout * (n + 1) + 16;
}

static kokoro_status ups_f32(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws)
{
    const kk_conv *c = &m->ups[i];
    const int s = ups_stride(i), pad = s / 2, nth = kk_threads();
    const kk_isa isa = kk_isa_active();
    const convt_pack_arg pa = {.c = c, .s = s, .isa = isa};
    const void *wp = kk_memo_get(m->memo, c->w, KK_MEMO_CONVT_F32 + (int)isa,
                                 kk_dconv_pack_floats(isa, s * c->cout, c->cin, 2) * sizeof(float), convt_pack, &pa);
    if (!wp) return KK_NOMEM("upsampling weights");
    const size_t ldx = kk_dconv_ldx(n + 1, 2, 1);
    float *xp = ws, *z = (float *)(((uintptr_t)(xp + (size_t)c->cin * ldx) + 63) & ~(uintptr_t)63);
    kk_dconv_rows(x, c->cin, n, 1, 0.1f, xp, ldx, nth); /* leaky ReLU, one zero step first */
    kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .cin = c->cin, .cout = s * c->cout, .K = 2, .dil = 1, .n = n + 1,
                  .y = z, .ldy = (size_t)n + 1};
    kk_dconv_run(isa, &d, nth);
    const int no = kk_conv_transpose1d_len(n, c->k, s, pad, 0);
    ups_mix_job mj = {.z = z, .b = c->b, .y = out, .s = s, .pad = pad, .cout = c->cout, .nq = n + 1, .nout = no};
    kk_parallel_range(nth, (size_t)c->cout, 8, ups_mix, &mj);
    *nout = no;
    return KOKORO_OK;
}

size_t kk_gen_ups_ws_floats(const kokoro_model *m, int i, int n)
{
    const kk_conv *c = &m->ups[i];
    size_t f32 = (size_t)c->cin * n + (size_t)c->cout * c->k * n; /* the activated input, the ConvT products */
    size_t poly = ups_f32_ws_floats(c, ups_stride(i), n), amx = ups_amx_ws_floats(c, ups_stride(i), n);
    f32 = f32 > poly ? f32 : poly;
    return f32 > amx ? f32 : amx;
}

kokoro_status kk_gen_ups_dt(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws,
                            int bf16)
{
    const kk_conv *c = &m->ups[i];
    int stride = ups_stride(i), pad = stride / 2;
    float *own = ws ? NULL : malloc(kk_gen_ups_ws_floats(m, i, n) * sizeof *own);
    if (!ws && !own) return KK_NOMEM("generator");
    float *t = ws ? ws : own;
    if (bf16 && ups_amx_fits(c, stride)) {
        kokoro_status st = ups_amx(m, i, x, n, out, nout, t);
        free(own);
        return st;
    }
    if (c->k == 2 * stride && stride <= 16) {
        kokoro_status st = ups_f32(m, i, x, n, out, nout, t);
        free(own);
        return st;
    }
    memcpy(t, x, (size_t)c->cin * n * sizeof *t);
    kk_leaky_relu(t, (size_t)c->cin * n, 0.1f);
    int no = kk_conv_transpose1d(t, c->cin, n, c->w, c->b, c->cout, c->k, stride, pad, 0, out, t + (size_t)c->cin * n);
    free(own);
    if (no < 0) return KK_NOMEM("generator");
    *nout = no;
    return KOKORO_OK;
}

kokoro_status kk_gen_ups(const kokoro_model *m, int i, const float *x, int n, float *out, int *nout, float *ws)
{
    return kk_gen_ups_dt(m, i, x, n, out, nout, ws, 0);
}

kokoro_status kk_gen_resblocks(const kokoro_model *m, int stage, const float *x, int n, const float *s, float *out)
{
    return kk_gen_resblocks_dt(m, stage, x, n, s, out, 0, NULL);
}

/* out = (t0 + t1 + t2) / 3 over the three resblocks' outputs, in that order:
 * out holds t0 already; this adds t1 (j 1) or t2 and divides (j 2) where the
 * resblock could not (kk_resblock1_mean_ws) */
typedef struct mean3_job {
    float *out;
    const float *t;
    int j;
} mean3_job;

static void mean3_part(void *arg, size_t i0, size_t i1)
{
    const mean3_job *mj = arg;
    float *out = mj->out;
    const float *t = mj->t;
    if (mj->j == 1)
        for (size_t i = i0; i < i1; i++) out[i] += t[i];
    else
        for (size_t i = i0; i < i1; i++) out[i] = (out[i] + t[i]) / 3.0f;
}

kokoro_status kk_gen_resblocks_dt(const kokoro_model *m, int stage, const float *x, int n, const float *s, float *out,
                                  int bf16, float *ws)
{
    const kk_resblock1 *r = &m->res[3 * stage];
    size_t total = (size_t)r->C * n;
    float *own = ws ? NULL : malloc(res_ws(m, stage, n) * sizeof *own);
    if (!ws && !own) return KK_NOMEM("generator");
    float *t = ws ? ws : own;
    kokoro_status st = KOKORO_OK;
    for (int j = 0; j < 3 && st == KOKORO_OK; j++) {
        const float *rest;
        st = kk_resblock1_mean_ws(&r[j], x, n, s, out, j, t, bf16, m->memo, &rest);
        mean3_job mj = {.out = out, .t = rest, .j = j};
        if (st == KOKORO_OK && rest) kk_parallel_range(kk_threads(), total, 1 << 16, mean3_part, &mj);
    }
    free(own);
    return st;
}

size_t kk_gen_post_ws_floats(const kokoro_model *m, int n)
{
    const kk_conv *c = &m->conv_post; /* padded rows, packed weights (avx512 packs the most) */
    return (size_t)c->cin * kk_dconv_ldx(n, c->k, 1) + kk_dconv_pack_floats(KK_ISA_AVX512, c->cout, c->cin, c->k);
}

kokoro_status kk_gen_post(const kokoro_model *m, const float *x, int n, float *out, float *ws)
{
    /* direct convolution on the zero-padded, leaky-ReLU'd rows (im2col of
     * this layer would take 28 bytes per input value) */
    const kk_conv *c = &m->conv_post;
    const kk_isa isa = kk_isa_active();
    const int pad = (c->k - 1) / 2;
    const size_t ldx = kk_dconv_ldx(n, c->k, 1);
    float *own = ws ? NULL : malloc(kk_gen_post_ws_floats(m, n) * sizeof *own);
    if (!ws && !own) return KK_NOMEM("generator");
    float *xp = ws ? ws : own, *wp = xp + (size_t)c->cin * ldx;
    kk_dconv_rows(x, c->cin, n, pad, 0.01f, xp, ldx, kk_threads()); /* leaky ReLU (slope 0.01) */
    kk_dconv_pack(isa, c->w, c->cout, c->cin, c->k, wp);
    kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = c->b, .cin = c->cin, .cout = c->cout, .K = c->k, .dil = 1,
                  .n = n, .y = out, .ldy = (size_t)n};
    kk_dconv_run(isa, &d, kk_threads());
    free(own);
    return KOKORO_OK;
}

/* A stage's input: the upsampled rows w plus the noise branch xs, into u
 * (u may be w); stage 1's upsampling is one step short and gets a one-step
 * reflection pad on the left (ReflectionPad1d((1, 0))). */
typedef struct stage_add_job {
    float *u;
    const float *w, *xs;
    int n, reflect;
} stage_add_job;

static void stage_add(void *arg, size_t c0, size_t c1)
{
    const stage_add_job *sj = arg;
    const int n = sj->n;
    for (size_t c = c0; c < c1; c++) {
        float *ur = sj->u + c * n;
        const float *xr = sj->xs + c * n;
        if (sj->reflect) {
            const float *wr = sj->w + c * (n - 1);
            ur[0] = wr[1] + xr[0];
            for (int t = 1; t < n; t++) ur[t] = wr[t - 1] + xr[t];
        } else {
            const float *wr = sj->w + c * n;
            for (int t = 0; t < n; t++) ur[t] = wr[t] + xr[t];
        }
    }
}

kokoro_status kk_generator(const kokoro_model *m, const float *x, const float *F0, int M, const float *s,
                           const kk_noise *noise, float *audio)
{
    const int L2 = M, nsrc = 300 * M, F = nsrc / KK_HOP + 1;
    const int n0 = 10 * L2, n1 = 6 * n0 + 1;
    /* All scratch in one buffer from the model's pool (core/scratch.h): its
     * pages are faulted in by the first call only. ws serves the noise
     * branches, upsamplings, resblock stages and conv_post in turn. */
    size_t wsn = noise_ws(m, 0, F), k;
    if ((k = noise_ws(m, 1, F)) > wsn) wsn = k;
    if ((k = res_ws(m, 0, n0)) > wsn) wsn = k;
    if ((k = res_ws(m, 1, n1)) > wsn) wsn = k;
    if ((k = kk_gen_ups_ws_floats(m, 0, L2)) > wsn) wsn = k;
    if ((k = kk_gen_ups_ws_floats(m, 1, n0)) > wsn) wsn = k;
    if ((k = kk_gen_post_ws_floats(m, n1)) > wsn) wsn = k;
    const size_t nsrc_a = ((size_t)nsrc + 15) & ~(size_t)15, nhar = (22 * (size_t)F + 15) & ~(size_t)15;
    const size_t nrow = (256 * (size_t)n1 + 15) & ~(size_t)15, nw = (128 * (size_t)n1 + 15) & ~(size_t)15;
    float *buf = kk_scratch_take(m->scratch, (nsrc_a + nhar + 3 * nrow + nw + wsn) * sizeof *buf);
    kokoro_status st = buf ? KOKORO_OK : KK_NOMEM("generator");
    float *src = buf, *har = src + nsrc_a, *xs = har + nhar, *u = xs + nrow, *v = u + nrow, *w = v + nrow;
    float *ws = w + nw;
#define POISON_WS kk_scratch_poison(ws, wsn * sizeof *ws) /* each stage writes before it reads */
    kk_profile *prof = noise ? noise->prof : NULL;
    const int bf16 = noise ? noise->bf16 : 0;
    double tp = prof ? kk_prof_now() : 0, tc = prof ? kk_prof_cpu() : 0;
#define MARK(stage, mc)                                                                                        \
    if (prof) {                                                                                                    \
        double now_ = kk_prof_now(), cpu_ = kk_prof_cpu();                                                         \
        prof->sec[stage] += now_ - tp;                                                                             \
        prof->cpu[stage] += cpu_ - tc;                                                                             \
        tc = cpu_;                                                                                                 \
        prof->macs[stage] += (mc);                                                                               \
        tp = now_;                                                                                                 \
    }
#define CMACS(c, n) ((double)(c).cout * (c).cin * (c).k * (n))
#define R1MACS(r, n) (6.0 * (r).C * (r).C * (r).K * (n))
    int no;
    if (st == KOKORO_OK) st = kk_gen_source(m, F0, M, noise, src);
    if (st == KOKORO_OK) kk_gen_stft(src, nsrc, har);
    MARK(KK_PROF_SOURCE, 0)
    /* stage 0 (800 Hz) */
    if (st == KOKORO_OK) {
        POISON_WS;
        st = kk_gen_noise_branch_dt(m, 0, har, F, s, xs, &no, bf16, ws);
    }
    MARK(KK_PROF_NOISE, CMACS(m->noise_convs[0], n0) + R1MACS(m->noise_res[0], n0))
    if (st == KOKORO_OK) {
        POISON_WS;
        st = kk_gen_ups_dt(m, 0, x, L2, u, &no, ws, bf16);
    }
    MARK(KK_PROF_UPS, (double)m->ups[0].cin * m->ups[0].cout * m->ups[0].k * L2)
    if (st == KOKORO_OK) {
        stage_add_job sj = {.u = u, .w = u, .xs = xs, .n = n0, .reflect = 0};
        kk_parallel_range(kk_threads(), 256, 8, stage_add, &sj);
        POISON_WS;
        st = kk_gen_resblocks_dt(m, 0, u, n0, s, v, bf16, ws);
    }
    MARK(KK_PROF_RES0, R1MACS(m->res[0], n0) + R1MACS(m->res[1], n0) + R1MACS(m->res[2], n0))
    /* stage 1 (4.8 kHz): ups.1 output gets a one-sample reflection pad on the left */
    if (st == KOKORO_OK) {
        POISON_WS;
        st = kk_gen_noise_branch_dt(m, 1, har, F, s, xs, &no, bf16, ws);
    }
    MARK(KK_PROF_NOISE, CMACS(m->noise_convs[1], n1) + R1MACS(m->noise_res[1], n1))
    if (st == KOKORO_OK) {
        POISON_WS;
        st = kk_gen_ups_dt(m, 1, v, n0, w, &no, ws, bf16);
    }
    MARK(KK_PROF_UPS, (double)m->ups[1].cin * m->ups[1].cout * m->ups[1].k * n0)
    if (st == KOKORO_OK) {
        stage_add_job sj = {.u = u, .w = w, .xs = xs, .n = n1, .reflect = 1};
        kk_parallel_range(kk_threads(), 128, 8, stage_add, &sj);
        POISON_WS;
        st = kk_gen_resblocks_dt(m, 1, u, n1, s, v, bf16, ws);
    }
    MARK(KK_PROF_RES1, R1MACS(m->res[3], n1) + R1MACS(m->res[4], n1) + R1MACS(m->res[5], n1))
    if (st == KOKORO_OK) {
        POISON_WS;
        st = kk_gen_post(m, v, n1, xs, ws);
    }
    if (st == KOKORO_OK) st = kk_istft(xs, n1, audio);
    MARK(KK_PROF_POST, CMACS(m->conv_post, n1))
#undef MARK
#undef CMACS
#undef R1MACS
#undef POISON_WS
    kk_scratch_give(m->scratch, buf);
    return st;
}
