/* The direct convolution in bfloat16 (AVX512-BF16): inputs and weights
 * rounded to bf16, products summed in float32 by vdpbf16ps, which adds two
 * products per lane. The reduction pairs adjacent input channels: a 32-bit
 * lane of the packed input holds (x[2p][t], x[2p+1][t]), one of the packed
 * weights (W[o][2p][j], W[o][2p+1][j]). Built with -mavx512bf16 (see
 * CMakeLists.txt); only called where the CPU has it. */
#include "nn/dconv.h"

#include <stdint.h>
#include <string.h>

#include "core/bf16.h"

#if defined(__x86_64__) && defined(__AVX512BF16__)
#include <immintrin.h>

#define MR 8
#define NR 3

void kk_dconv_pack_bf16(const float *W, int cout, int cin, int K, uint32_t *wp)
{
    const int nob = (cout + MR - 1) / MR, ncp = (cin + 1) / 2;
    for (int ob = 0; ob < nob; ob++)
        for (int cp = 0; cp < ncp; cp++)
            for (int j = 0; j < K; j++)
                for (int r = 0; r < MR; r++) {
                    int o = ob * MR + r, c = 2 * cp;
                    float lo = o < cout ? W[((size_t)o * cin + c) * K + j] : 0.0f;
                    float hi = o < cout && c + 1 < cin ? W[((size_t)o * cin + c + 1) * K + j] : 0.0f;
                    *wp++ = kk_bf16(lo) | (uint32_t)kk_bf16(hi) << 16;
                }
}

void kk_bf16_pair_row(const float *x0, const float *x1, size_t n, uint32_t *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x0 + i)));
        __m512i hi = x1 ? _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x1 + i)))
                        : _mm512_setzero_si512();
        _mm512_storeu_si512(out + i, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
    for (; i < n; i++) out[i] = kk_bf16(x0[i]) | (x1 ? (uint32_t)kk_bf16(x1[i]) << 16 : 0);
}

static void tile(const kk_dconv *d, int ob, int t)
{
    const int K = d->K, dil = d->dil, ncp = (d->cin + 1) / 2;
    const uint32_t *xb = (const uint32_t *)d->xp;
    const uint32_t *w = (const uint32_t *)d->wp + (size_t)ob * MR * ncp * K;
    __m512 acc[MR][NR];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NR; v++) acc[r][v] = _mm512_setzero_ps();
    for (int cp = 0; cp < ncp; cp++) {
        const uint32_t *xc = xb + (size_t)cp * d->ldx + t;
        for (int q = 0; q < NR * 16 + (K - 1) * dil; q += 16) __builtin_prefetch(xc + d->ldx + q);
        for (int j = 0; j < K; j++, w += MR) {
            __m512bh a[NR];
            for (int v = 0; v < NR; v++) a[v] = (__m512bh)_mm512_loadu_si512(xc + j * dil + v * 16);
            for (int r = 0; r < MR; r++) {
                __m512bh wr = (__m512bh)_mm512_set1_epi32((int)w[r]);
                for (int v = 0; v < NR; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a[v], wr);
            }
        }
    }
    int o0 = ob * MR, nt = d->n - t < NR * 16 ? d->n - t : NR * 16;
    for (int r = 0; r < MR && o0 + r < d->cout; r++) {
        float *yr = d->y + (size_t)(o0 + r) * d->ldy + t;
        __m512 bias = _mm512_set1_ps(d->b ? d->b[o0 + r] : 0.0f);
        float tmp[NR * 16];
        for (int v = 0; v < NR; v++) _mm512_storeu_ps(tmp + v * 16, _mm512_add_ps(acc[r][v], bias));
        for (int i = 0; i < nt; i++) yr[i] = d->accumulate ? yr[i] + tmp[i] : tmp[i];
    }
}

void kk_dconv_block_bf16(const kk_dconv *d, int ob0, int ob1, int t0, int t1)
{
    for (int ob = ob0; ob < ob1; ob++)
        for (int t = t0; t < t1; t += NR * 16) tile(d, ob, t);
}

int kk_bf16_compiled(void) { return 1; }

double kk_fma_loop_bf16(long iters)
{
    __m512 acc[MR][NR];
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F803F80), b = (__m512bh)_mm512_set1_epi32(0x33D633D6);
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NR; v++) acc[r][v] = _mm512_set1_ps((float)(r * NR + v));
    for (long i = 0; i < iters; i++) {
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NR; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b);
    }
    float sink = 0;
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NR; v++) sink += acc[r][v][0];
    return 4.0 * 16 * MR * NR * (double)iters + (sink == 12345.678f ? 1 : 0);
}

#else /* not built for AVX512-BF16: never called (kk_bf16_supported() is 0) */

void kk_dconv_pack_bf16(const float *W, int cout, int cin, int K, uint32_t *wp)
{
    (void)W, (void)cout, (void)cin, (void)K, (void)wp;
}
void kk_bf16_pair_row(const float *x0, const float *x1, size_t n, uint32_t *out)
{
    (void)x0, (void)x1, (void)n, (void)out;
}
void kk_dconv_block_bf16(const kk_dconv *d, int ob0, int ob1, int t0, int t1)
{
    (void)d, (void)ob0, (void)ob1, (void)t0, (void)t1;
}
int kk_bf16_compiled(void) { return 0; }
double kk_fma_loop_bf16(long iters)
{
    (void)iters;
    return 0;
}

#endif
