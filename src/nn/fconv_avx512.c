/* The FFT convolution's kernels (fconv.h) for AVX-512: 16 blocks per
 * vector, one block in each lane, so the FFTs need no shuffles and a bin's
 * values of 16 blocks go to the spectra as one store. Built with AVX-512
 * flags (CMakeLists.txt); only called where the CPU has them. */
#include "nn/fconv.h"

#include <string.h>

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>

int kk_fconv_compiled(void) { return 1; }

/* In-place radix-2 FFT of N points (input in bit-reversed order) on 16
 * lanes: e^{∓2πi jk/N}, the inverse unscaled. */
static void fft16(__m512 *re, __m512 *im, int N, const float *twr, const float *twi, int inverse)
{
    /* the first two stages: twiddles 1 and ∓i */
    for (int i = 0; i < N; i += 4) {
        __m512 ar = re[i], ai = im[i], br = re[i + 1], bi = im[i + 1];
        __m512 cr = re[i + 2], ci = im[i + 2], dr = re[i + 3], di = im[i + 3];
        __m512 s0r = ar + br, s0i = ai + bi, d0r = ar - br, d0i = ai - bi;
        __m512 s1r = cr + dr, s1i = ci + di, d1r = cr - dr, d1i = ci - di;
        /* d1 · (∓i): forward (−i): (x + iy)(−i) = y − ix */
        __m512 tr = inverse ? -d1i : d1i, ti = inverse ? d1r : -d1r;
        re[i] = s0r + s1r, im[i] = s0i + s1i, re[i + 2] = s0r - s1r, im[i + 2] = s0i - s1i;
        re[i + 1] = d0r + tr, im[i + 1] = d0i + ti, re[i + 3] = d0r - tr, im[i + 3] = d0i - ti;
    }
    for (int half = 4; half < N; half <<= 1) {
        const int step = N / (2 * half);
        for (int j = 0; j < half; j++) {
            const __m512 wr = _mm512_set1_ps(twr[j * step]), wi = _mm512_set1_ps(inverse ? -twi[j * step] : twi[j * step]);
            for (int i = j; i < N; i += 2 * half) {
                __m512 br = re[i + half], bi = im[i + half];
                __m512 tr = _mm512_fmsub_ps(br, wr, bi * wi), ti = _mm512_fmadd_ps(br, wi, bi * wr);
                __m512 ar = re[i], ai = im[i];
                re[i + half] = ar - tr, im[i + half] = ai - ti, re[i] = ar + tr, im[i] = ai + ti;
            }
        }
    }
}

static inline int groups(const kk_fconv_ctx *c) { return (c->nbc + 15) / 16; }

void kk_fconv_fwd_avx512(const kk_fconv_ctx *c, int pair)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int N = p->N, C = p->cin, ch = 2 * pair;
    const size_t ldb = p->ldb;
    const float *x0 = d->xp + (size_t)ch * d->ldx, *x1 = x0 + d->ldx;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vldx = _mm512_set1_epi32((int)d->ldx), vnb = _mm512_set1_epi32(p->nb);
    __m512 re[128], im[128];
    for (int g = 0; g < groups(c); g++) {
        const __m512i blk = _mm512_add_epi32(_mm512_set1_epi32(c->b0 + 16 * g), lane);
        const __m512i base = _mm512_mullo_epi32(blk, _mm512_set1_epi32(p->L));
        const __mmask16 live = _mm512_cmplt_epi32_mask(blk, vnb);
        /* block b's input: steps b·L … b·L + N − 1 of the padded rows (zero past ldx) */
        for (int m = 0; m < N; m++) {
            const __m512i pos = _mm512_add_epi32(base, _mm512_set1_epi32(m));
            const __mmask16 k = live & _mm512_cmplt_epi32_mask(pos, vldx);
            re[c->rev[m]] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, pos, x0, 4);
            im[c->rev[m]] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, pos, x1, 4);
        }
        fft16(re, im, N, c->twr, c->twi, 0);
        /* Z = X_ch + i·X_ch+1: X_ch = Z[f] + conj Z[N−f], X_ch+1 = −i·(Z[f] − conj Z[N−f]) (the ½ is in the weights) */
        float *xc = c->X + (size_t)ch * ldb + 16 * g;
        for (int f = 0; f <= N / 2; f++) {
            const int fr = (N - f) & (N - 1);
            const __m512 P = re[f], Q = im[f], R = re[fr], S = im[fr];
            float *xf = xc + (size_t)f * c->fs;
            _mm512_store_ps(xf, P + R);
            _mm512_store_ps(xf + (size_t)C * ldb, Q - S);
            _mm512_store_ps(xf + ldb, Q + S);
            _mm512_store_ps(xf + (size_t)(C + 1) * ldb, R - P);
        }
    }
}

void kk_fconv_bin_avx512(const kk_fconv_ctx *c, int f, float *A, float *Y)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int C = p->cin, O = p->cout, K = p->K, N = p->N, nob = O / 8, ncols = groups(c) * 16;
    /* W_f = Σ_j w_j e^{+2πi f·j·dil/N} (a correlation), times 1/(2N): the inverse FFT's 1/N and the
     * pair split's ½ */
    float cs[32], sn[32];
    const float scale = 1.0f / (2.0f * N);
    for (int j = 0; j < K; j++) {
        const int k = (int)((long)f * j * p->dil % N);
        cs[j] = c->twr[k] * scale, sn[j] = -c->twi[k] * scale;
    }
    const size_t rowblk = (size_t)2 * C * 8; /* floats of one 8-row block of the product's packed weights */
    for (int ob = 0; ob < nob; ob++) {
        float *top = A + (size_t)ob * rowblk, *bot = A + (size_t)(nob + ob) * rowblk;
        for (int ch = 0; ch < C; ch++) {
            const float *w = d->wp + (size_t)(ob * C + ch) * K * 8; /* kk_dconv_pack: [ob][ch][j][8 rows] */
            __m256 wr = _mm256_setzero_ps(), wi = _mm256_setzero_ps();
            for (int j = 0; j < K; j++) {
                const __m256 v = _mm256_loadu_ps(w + 8 * j);
                wr = _mm256_fmadd_ps(v, _mm256_set1_ps(cs[j]), wr);
                wi = _mm256_fmadd_ps(v, _mm256_set1_ps(sn[j]), wi);
            }
            _mm256_storeu_ps(top + 8 * ch, wr);
            _mm256_storeu_ps(top + 8 * (C + ch), -wi);
            _mm256_storeu_ps(bot + 8 * ch, wi);
            _mm256_storeu_ps(bot + 8 * (C + ch), wr);
        }
    }
    float *xf = c->X + (size_t)f * c->fs;
    kk_dconv g = {.xp = xf, .ldx = p->ldb, .wp = A, .cin = 2 * C, .cout = 2 * O, .K = 1, .dil = 1, .n = ncols, .y = Y,
                  .ldy = p->ldb};
    kk_dconv_block_avx512(&g, 0, 2 * nob, 0, ncols);
    for (int r = 0; r < 2 * O; r++) memcpy(xf + (size_t)r * p->ldb, Y + (size_t)r * p->ldb, (size_t)ncols * sizeof *Y);
}

void kk_fconv_inv_avx512(const kk_fconv_ctx *c, int pair)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int N = p->N, L = p->L, O = p->cout, o = 2 * pair;
    const size_t ldb = p->ldb;
    const __m512i stride = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    __m512 re[128], im[128];
    float tmp[2][128 * 16] __attribute__((aligned(64)));
    for (int g = 0; g < groups(c); g++) {
        /* Z = Y_o + i·Y_o+1 over all N bins (the upper half conjugate-symmetric) */
        const float *yc = c->X + (size_t)o * ldb + 16 * g;
        for (int f = 0; f <= N / 2; f++) {
            const float *yf = yc + (size_t)f * c->fs;
            const __m512 a = _mm512_load_ps(yf), b = _mm512_load_ps(yf + (size_t)O * ldb);
            const __m512 e = _mm512_load_ps(yf + ldb), h = _mm512_load_ps(yf + (size_t)(O + 1) * ldb);
            re[c->rev[f]] = a - h, im[c->rev[f]] = b + e;
            if (f > 0 && f < N / 2) re[c->rev[N - f]] = a + h, im[c->rev[N - f]] = e - b;
        }
        fft16(re, im, N, c->twr, c->twi, 1);
        for (int t = 0; t < L; t++) _mm512_store_ps(tmp[0] + 16 * t, re[t]), _mm512_store_ps(tmp[1] + 16 * t, im[t]);
        /* each lane's block: L steps (fewer at the end) to its rows */
        for (int l = 0; l < 16 && 16 * g + l < c->nbc; l++) {
            const long t0 = (long)(c->b0 + 16 * g + l) * L;
            const int cnt = d->n - t0 < L ? (int)(d->n - t0) : L;
            for (int r = 0; r < 2; r++) {
                float *y = d->y + (size_t)(o + r) * d->ldy + t0;
                const __m512 bias = _mm512_set1_ps(d->b ? d->b[o + r] : 0.0f);
                for (int t = 0; t < cnt; t += 16) {
                    const __mmask16 k = cnt - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cnt - t)) - 1);
                    __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, stride, tmp[r] + 16 * t + l, 4) + bias;
                    if (d->accumulate) v += _mm512_maskz_loadu_ps(k, y + t);
                    _mm512_mask_storeu_ps(y + t, k, v);
                }
            }
        }
    }
}

#else

int kk_fconv_compiled(void) { return 0; }
void kk_fconv_fwd_avx512(const kk_fconv_ctx *c, int pair) { (void)c, (void)pair; }
void kk_fconv_bin_avx512(const kk_fconv_ctx *c, int f, float *A, float *Y) { (void)c, (void)f, (void)A, (void)Y; }
void kk_fconv_inv_avx512(const kk_fconv_ctx *c, int pair) { (void)c, (void)pair; }

#endif
