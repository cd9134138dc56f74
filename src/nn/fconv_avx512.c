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
    /* then the stages of half h and 2h together (radix 4: each value loaded and stored once for
     * two stages), the same operations on the same values as stage after stage: the same bits */
    int half = 4;
    for (; 2 * half < N; half <<= 2) {
        const int h = half, s1 = N / (2 * h), s2 = N / (4 * h);
        for (int j = 0; j < h; j++) {
            const __m512 w1r = _mm512_set1_ps(twr[j * s1]), w1i = _mm512_set1_ps(inverse ? -twi[j * s1] : twi[j * s1]);
            const __m512 w2r = _mm512_set1_ps(twr[j * s2]), w2i = _mm512_set1_ps(inverse ? -twi[j * s2] : twi[j * s2]);
            const int k3 = (j + h) * s2;
            const __m512 w3r = _mm512_set1_ps(twr[k3]), w3i = _mm512_set1_ps(inverse ? -twi[k3] : twi[k3]);
            for (int i = j; i < N; i += 4 * h) {
                __m512 ar = re[i], ai = im[i], br = re[i + h], bi = im[i + h];
                __m512 cr = re[i + 2 * h], ci = im[i + 2 * h], dr = re[i + 3 * h], di = im[i + 3 * h];
                /* stage h: (a, b) and (c, d), twiddle j */
                __m512 tr = _mm512_fmsub_ps(br, w1r, bi * w1i), ti = _mm512_fmadd_ps(br, w1i, bi * w1r);
                br = ar - tr, bi = ai - ti, ar = ar + tr, ai = ai + ti;
                tr = _mm512_fmsub_ps(dr, w1r, di * w1i), ti = _mm512_fmadd_ps(dr, w1i, di * w1r);
                dr = cr - tr, di = ci - ti, cr = cr + tr, ci = ci + ti;
                /* stage 2h: (a, c) with twiddle j, (b, d) with twiddle j + h */
                tr = _mm512_fmsub_ps(cr, w2r, ci * w2i), ti = _mm512_fmadd_ps(cr, w2i, ci * w2r);
                re[i + 2 * h] = ar - tr, im[i + 2 * h] = ai - ti, re[i] = ar + tr, im[i] = ai + ti;
                tr = _mm512_fmsub_ps(dr, w3r, di * w3i), ti = _mm512_fmadd_ps(dr, w3i, di * w3r);
                re[i + 3 * h] = br - tr, im[i + 3 * h] = bi - ti, re[i + h] = br + tr, im[i + h] = bi + ti;
            }
        }
    }
    if (half < N) { /* an odd number of stages: the last one alone */
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

/* r[i][l] -> r[l][i]: 16 rows of 16 floats transposed in registers (64 shuffles, no gathers) */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++)
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]), t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c)), r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d)), r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            const __m512 a = r[8 * i + j], b = r[8 * i + j + 4];
            t[8 * i + j] = _mm512_shuffle_f32x4(a, b, 0x88), t[8 * i + j + 4] = _mm512_shuffle_f32x4(a, b, 0xdd);
        }
    for (int j = 0; j < 8; j++) r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88), r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
}

/* 16 blocks' first N steps, block l from r0 + l·L (and r1 + l·L for the imaginary parts), into the
 * transform's registers in bit-reversed order: 16 × 16 transposes */
static inline void load_blocks(__m512 *re, __m512 *im, const float *r0, const float *r1, int L, int N, const int *rev)
{
    for (int m0 = 0; m0 < N; m0 += 16) {
        __m512 v[16], w[16];
        for (int l = 0; l < 16; l++)
            v[l] = _mm512_loadu_ps(r0 + (size_t)l * L + m0), w[l] = _mm512_loadu_ps(r1 + (size_t)l * L + m0);
        transpose16(v), transpose16(w);
        for (int i = 0; i < 16; i++) re[rev[m0 + i]] = v[i], im[rev[m0 + i]] = w[i];
    }
}

/* padded steps [q0, q1) of channel ch's AdaIN+Snake row into out: x steps q − pad, zero outside [0, n) */
static void snake_steps(const kk_snake_in *in, int n, int ch, long q0, long q1, float *out)
{
    const long t0 = q0 - in->pad, t1 = q1 - in->pad, a0 = t0 > 0 ? t0 : 0, a = a0 < t1 ? a0 : t1,
               b = t1 < n ? (t1 > a ? t1 : a) : (n > a ? n : a); /* values at [a, b): t0 ≤ a ≤ b ≤ t1 */
    memset(out, 0, (size_t)(a - t0) * sizeof *out);
    if (b > a)
        kk_snake_affine_part_avx512(in->x + (size_t)ch * in->ldx, n, (int)a, (int)b, in->m[ch], in->scale[ch],
                                    in->shift[ch], in->alpha[ch], out + (a - t0));
    memset(out + (b - t0), 0, (size_t)(t1 - b) * sizeof *out);
}

/* group g's 16 blocks from the padded rows d->xp of channels ch and ch + 1 (zero past ldx and in
 * blocks past the last) */
static void load_group(const kk_fconv_ctx *c, int ch, int g, __m512 *re, __m512 *im)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int N = p->N;
    const float *x0 = d->xp + (size_t)ch * d->ldx, *x1 = x0 + d->ldx;
    /* block b's input: steps b·L … b·L + N − 1 of the padded rows; 16 blocks inside the rows as
     * 16 × 16 transposes, others by masked gathers */
    const int b15 = c->b0 + 16 * g + 15;
    if (b15 < p->nb && (size_t)b15 * p->L + N <= d->ldx) {
        const float *r0 = x0 + (size_t)(c->b0 + 16 * g) * p->L;
        load_blocks(re, im, r0, r0 + d->ldx, p->L, N, c->rev);
        return;
    }
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i blk = _mm512_add_epi32(_mm512_set1_epi32(c->b0 + 16 * g), lane);
    const __m512i base = _mm512_mullo_epi32(blk, _mm512_set1_epi32(p->L)), vldx = _mm512_set1_epi32((int)d->ldx);
    const __mmask16 live = _mm512_cmplt_epi32_mask(blk, _mm512_set1_epi32(p->nb));
    for (int m = 0; m < N; m++) {
        const __m512i pos = _mm512_add_epi32(base, _mm512_set1_epi32(m));
        const __mmask16 k = live & _mm512_cmplt_epi32_mask(pos, vldx);
        re[c->rev[m]] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, pos, x0, 4);
        im[c->rev[m]] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, pos, x1, 4);
    }
}

/* channels ch and ch + 1's x steps under padded steps [q0, q1) towards the caches */
static void prefetch_steps(const kk_snake_in *in, int n, int ch, long q0, long q1)
{
    const long a = q0 - in->pad < 0 ? 0 : q0 - in->pad, b = q1 - in->pad > n ? n : q1 - in->pad;
    for (int r = 0; r < 2; r++) {
        const float *x = in->x + (size_t)(ch + r) * in->ldx;
        for (long t = a; t < b; t += 16) __builtin_prefetch(x + t, 0, 3);
    }
}

void kk_fconv_fwd_avx512(const kk_fconv_ctx *c, int pair)
{
    const kk_fconv_plan *p = c->p;
    const int N = p->N, L = p->L, C = p->cin, ch = 2 * pair;
    const size_t ldb = p->ldb;
    __m512 re[KK_FCONV_NMAX], im[KK_FCONV_NMAX];
    /* with c->in: a group's 15·L + N padded steps of the two rows made here, in cache (the next
     * group starts 16·L on: the last N − L steps carried over) */
    float rows[2][16 * KK_FCONV_NMAX] __attribute__((aligned(64)));
    const int W = 15 * L + N;
    for (int g = 0; g < groups(c); g++) {
        if (c->in) {
            const long q = (long)(c->b0 + 16 * g) * L;
            const int keep = g ? N - L : 0;
            for (int r = 0; r < 2; r++) {
                if (keep) memmove(rows[r], rows[r] + 16 * L, (size_t)keep * sizeof(float));
                snake_steps(c->in, p->n, ch + r, q + keep, q + W, rows[r] + keep);
            }
            load_blocks(re, im, rows[0], rows[1], L, N, c->rev);
            /* the next group's new steps (or the next pair's first group) on their way from memory
             * while this one is transformed: rows far apart defeat the hardware prefetcher's start,
             * which left the Snake waiting on its loads */
            if (g + 1 < groups(c)) prefetch_steps(c->in, p->n, ch, q + 16 * L + (N - L), q + 16 * L + W);
            else if (ch + 2 < C) prefetch_steps(c->in, p->n, ch + 2, (long)c->b0 * L, (long)c->b0 * L + W);
        } else
            load_group(c, ch, g, re, im);
        fft16(re, im, N, c->twr, c->twi, 0);
        /* Z = X_ch + i·X_ch+1: X_ch = Z[f] + conj Z[N−f], X_ch+1 = −i·(Z[f] − conj Z[N−f]) (the ½ is in
         * the weights); stored as real and imaginary parts (bins 0 and N/2: real) */
        float *xc = c->X + (size_t)ch * ldb + 16 * g;
        const size_t cl = (size_t)C * ldb;
        for (int f = 0; f <= N / 2; f++) {
            const int fr = (N - f) & (N - 1);
            const __m512 P = re[f], Q = im[f], R = re[fr], S = im[fr];
            const __m512 ar = P + R, ai = Q - S, br = Q + S, bi = R - P;
            float *xf = xc + (size_t)f * c->fs;
            _mm512_store_ps(xf, ar);
            _mm512_store_ps(xf + ldb, br);
            if (f == 0 || f == N / 2) continue;
            _mm512_store_ps(xf + cl, ai);
            _mm512_store_ps(xf + cl + ldb, bi);
        }
    }
}

/* Bin f's three products, a tile of 48 columns at a time: P1 = Re W·Re X, P2 = Im W·Im X,
 * P3 = (Re W + Im W)(Re X + Im X) (Gauss) into Y (then the sum's tile: 4·C·48 floats),
 * then the bin's result over the tile's columns in place of X: Re = P1 − P2, Im = (P3 − P1) − P2
 * (no other tile reads these columns). A: Re W, Im W, their sum (C·C each); bins 0 and N/2 are
 * real (one product). */
static void bin_products(const kk_fconv_ctx *c, int f, const float *A, float *Y)
{
    const kk_fconv_plan *p = c->p;
    const int C = p->cin, nob = C / 8, ncols = groups(c) * 16, real = f == 0 || f == p->N / 2;
    const size_t cc = (size_t)C * C;
    float *xr = c->X + (size_t)f * c->fs, *xi = xr + (size_t)C * p->ldb;
    const float *y1 = Y, *y2 = Y + (size_t)C * 48, *y3 = Y + (size_t)2 * C * 48; /* the products' tiles */
    float *S = Y + (size_t)3 * C * 48;
    for (int t = 0; t < ncols; t += 48) {
        const int w = ncols - t < 48 ? ncols - t : 48; /* a multiple of 16 */
        /* Re X + Im X once into a tile of its own (the kernel would add the two rows for every row
         * block: the same sums, made 16–32 times) */
        if (!real)
            for (int r = 0; r < C; r++)
                for (int i = 0; i < 48; i += 16)
                    _mm512_store_ps(S + r * 48 + i, _mm512_loadu_ps(xr + (size_t)r * p->ldb + t + i) +
                                                        _mm512_loadu_ps(xi + (size_t)r * p->ldb + t + i));
        for (int m = 0; m < (real ? 1 : 3); m++) {
            kk_dconv g = {.xp = m == 0 ? xr + t : m == 1 ? xi + t : S, .ldx = m == 2 ? 48 : p->ldb, .wp = A + m * cc,
                          .cin = C, .cout = C, .K = 1, .dil = 1, .n = w, .y = Y + (size_t)m * C * 48, .ldy = 48};
            kk_dconv_block_avx512(&g, 0, nob, 0, w);
        }
        for (int r = 0; r < C; r++) {
            float *re = xr + (size_t)r * p->ldb + t, *im = xi + (size_t)r * p->ldb + t;
            for (int i = 0; i < w; i += 16) {
                const __m512 p1 = _mm512_loadu_ps(y1 + r * 48 + i);
                if (real) {
                    _mm512_storeu_ps(re + i, p1);
                    continue;
                }
                const __m512 p2 = _mm512_loadu_ps(y2 + r * 48 + i), p3 = _mm512_loadu_ps(y3 + r * 48 + i);
                _mm512_storeu_ps(re + i, p1 - p2);
                _mm512_storeu_ps(im + i, (p3 - p1) - p2);
            }
        }
    }
}

void kk_fconv_bin_avx512(const kk_fconv_ctx *c, int f, float *A, float *Y)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int C = p->cin, K = p->K, N = p->N, nob = C / 8, g = N / 2 - f, two = g != f;
    /* W_f = Σ_j w_j e^{+2πi f·j·dil/N} (a correlation), times 1/(2N): the inverse FFT's 1/N and the
     * pair split's ½. Split into even taps E and odd taps O, W_f = E + O and, as
     * e^{2πi (N/2 − f)·j·dil/N} = (−1)^{j·dil} e^{−2πi f·j·dil/N}, W_{N/2−f} = conj(E − O) for an odd
     * dilation, conj(E + O) for an even one: one pass over the taps makes both bins' weights. */
    float cs[32], sn[32];
    const float scale = 1.0f / (2.0f * N);
    for (int j = 0; j < K; j++) {
        const int k = (int)((long)f * j * p->dil % N);
        cs[j] = c->twr[k] * scale, sn[j] = -c->twi[k] * scale;
    }
    /* two taps per 16-float load (the packing keeps a channel's taps together): the cosines and
     * sines of taps j and j + 1 in the two halves, a lone last tap with the upper half zero */
    __m512 vc[16], vs[16];
    for (int j = 0; j < K; j += 2) {
        const float c1 = j + 1 < K ? cs[j + 1] : 0.0f, s1 = j + 1 < K ? sn[j + 1] : 0.0f;
        vc[j / 2] = _mm512_insertf32x8(_mm512_set1_ps(cs[j]), _mm256_set1_ps(c1), 1);
        vs[j / 2] = _mm512_insertf32x8(_mm512_set1_ps(sn[j]), _mm256_set1_ps(s1), 1);
    }
    /* Re W, Im W and their sum, each packed as kk_dconv_pack packs a 1×1 convolution ([ob][ch][8
     * rows]): bin f's at A, bin N/2 − f's at A + 3·C·C */
    const size_t cc = (size_t)C * C;
    const int K2 = K / 2, odd = p->dil & 1, real = f == 0; /* bins 0 and N/2 */
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int ob = 0; ob < nob; ob++) {
        /* four channels at a time: eight independent sums (one pair would wait on the FMA latency) */
        for (int ch = 0; ch < C; ch += 4) {
            const float *w = d->wp + (size_t)(ob * C + ch) * K * 8; /* kk_dconv_pack: [ob][ch][j][8 rows] */
            __m512 wr[4], wi[4];
            for (int q = 0; q < 4; q++) wr[q] = wi[q] = _mm512_setzero_ps();
            for (int j2 = 0; j2 < K2; j2++)
                for (int q = 0; q < 4; q++) {
                    const __m512 v = _mm512_loadu_ps(w + (size_t)(q * K + 2 * j2) * 8);
                    wr[q] = _mm512_fmadd_ps(v, vc[j2], wr[q]), wi[q] = _mm512_fmadd_ps(v, vs[j2], wi[q]);
                }
            if (K & 1)
                for (int q = 0; q < 4; q++) {
                    const __m512 v = _mm512_maskz_loadu_ps(0x00FF, w + (size_t)(q * K + K - 1) * 8);
                    wr[q] = _mm512_fmadd_ps(v, vc[K2], wr[q]), wi[q] = _mm512_fmadd_ps(v, vs[K2], wi[q]);
                }
            /* channels q and q + 1 as one vector of two 8-row groups: the even taps' sums, the odd */
            float *a = A + ((size_t)ob * C + ch) * 8;
            for (int q = 0; q < 4; q += 2) {
                const __m512 er = _mm512_permutex2var_ps(wr[q], lo, wr[q + 1]), orr = _mm512_permutex2var_ps(wr[q], hi, wr[q + 1]);
                const __m512 ei = _mm512_permutex2var_ps(wi[q], lo, wi[q + 1]), oi = _mm512_permutex2var_ps(wi[q], hi, wi[q + 1]);
                const __m512 r = er + orr, i = ei + oi;
                _mm512_storeu_ps(a + 8 * q, r);
                if (!real) _mm512_storeu_ps(a + cc + 8 * q, i), _mm512_storeu_ps(a + 2 * cc + 8 * q, r + i);
                if (!two) continue;
                __m512 r2 = r, i2 = -i;
                if (odd) r2 = er - orr, i2 = oi - ei;
                float *a2 = a + 3 * cc;
                _mm512_storeu_ps(a2 + 8 * q, r2);
                if (!real) _mm512_storeu_ps(a2 + cc + 8 * q, i2), _mm512_storeu_ps(a2 + 2 * cc + 8 * q, r2 + i2);
            }
        }
    }
    bin_products(c, f, A, Y);
    if (two) bin_products(c, g, A + 3 * cc, Y);
}

void kk_fconv_inv_avx512(const kk_fconv_ctx *c, int pair)
{
    const kk_fconv_plan *p = c->p;
    const kk_dconv *d = c->d;
    const int N = p->N, L = p->L, O = p->cout, o = 2 * pair;
    const size_t ldb = p->ldb;
    __m512 re[KK_FCONV_NMAX], im[KK_FCONV_NMAX];
    __m512d vs[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()}, vq[2] = {vs[0], vs[1]}; /* the rows' statistics */
    for (int g = 0; g < groups(c); g++) {
        /* Y = a + ib for row o, e + ih for row o + 1 (the products' results); Z = Y_o + i·Y_o+1 over all
         * N bins (the upper half conjugate-symmetric) */
        const float *yc = c->X + (size_t)o * ldb + 16 * g;
        const size_t cl = (size_t)O * ldb;
        for (int f = 0; f <= N / 2; f++) {
            const float *yf = yc + (size_t)f * c->fs;
            __m512 a = _mm512_load_ps(yf), e = _mm512_load_ps(yf + ldb), b = _mm512_setzero_ps(), h = b;
            if (f > 0 && f < N / 2) b = _mm512_load_ps(yf + cl), h = _mm512_load_ps(yf + cl + ldb);
            re[c->rev[f]] = a - h, im[c->rev[f]] = b + e;
            if (f > 0 && f < N / 2) re[c->rev[N - f]] = a + h, im[c->rev[N - f]] = e - b;
        }
        fft16(re, im, N, c->twr, c->twi, 1);
        /* transposed in place, 16 steps of 16 blocks at a time, so z[t + l] holds block l's steps t … t + 15;
         * then each block's L steps (fewer at the end) go to its rows in order: consecutive blocks are
         * consecutive steps, so the rows are written (and the residual read) as one stream, not 16 */
        const int lanes = c->nbc - 16 * g < 16 ? c->nbc - 16 * g : 16;
        for (int r = 0; r < 2; r++) {
            __m512 *z = r ? im : re;
            for (int t = 0; t < L; t += 16) transpose16(z + t); /* t + 15 < N: t < L ≤ N, N a multiple of 16 */
            const __m512 bias = _mm512_set1_ps(d->b ? d->b[o + r] : 0.0f);
            float *yr = d->y + (size_t)(o + r) * d->ldy;
            const float *ar = (d->acc_from ? d->acc_from : d->y) + (size_t)(o + r) * d->ldy;
            /* the statistics in double, low and high halves apart (four independent sums) */
            __m512d s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
            for (int l = 0; l < lanes; l++) {
                const long b0 = (long)(c->b0 + 16 * g + l) * L;
                const long len = d->n - b0 < L ? d->n - b0 : L;
                for (long t = 0; t < len; t += 16) {
                    const long cnt = len - t;
                    const __mmask16 k = cnt >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cnt) - 1);
                    __m512 u = z[t + l] + bias;
                    if (d->accumulate) u += _mm512_maskz_loadu_ps(k, ar + b0 + t);
                    if (d->combine) { /* into a running mean of three: y += u, or y = (y + u) / 3 */
                        __m512 m = _mm512_maskz_loadu_ps(k, yr + b0 + t) + u;
                        if (d->combine == 2) m = m / _mm512_set1_ps(3.0f);
                        _mm512_mask_storeu_ps(yr + b0 + t, k, m);
                    } else
                        _mm512_mask_storeu_ps(yr + b0 + t, k, u);
                    if (d->rowstats) { /* lanes past the row's end zero */
                        const __m512 v = _mm512_maskz_mov_ps(k, u);
                        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
                        s0 = _mm512_add_pd(s0, lo), s1 = _mm512_add_pd(s1, hi);
                        q0 = _mm512_fmadd_pd(lo, lo, q0), q1 = _mm512_fmadd_pd(hi, hi, q1);
                    }
                }
            }
            vs[r] = _mm512_add_pd(vs[r], _mm512_add_pd(s0, s1));
            vq[r] = _mm512_add_pd(vq[r], _mm512_add_pd(q0, q1));
        }
    }
    if (d->rowstats) /* this task alone writes rows o and o + 1, chunk after chunk: the same sums on any thread count */
        for (int r = 0; r < 2; r++) {
            d->rowstats[2 * (o + r)] += _mm512_reduce_add_pd(vs[r]);
            d->rowstats[2 * (o + r) + 1] += _mm512_reduce_add_pd(vq[r]);
        }
}

#else

int kk_fconv_compiled(void) { return 0; }
void kk_fconv_fwd_avx512(const kk_fconv_ctx *c, int pair) { (void)c, (void)pair; }
void kk_fconv_bin_avx512(const kk_fconv_ctx *c, int f, float *A, float *Y) { (void)c, (void)f, (void)A, (void)Y; }
void kk_fconv_inv_avx512(const kk_fconv_ctx *c, int pair) { (void)c, (void)pair; }

#endif
