/* vmath.h's routines, built with AVX-512 flags (CMakeLists.txt) and linked
 * with libmvec where the C library has it; only called where the CPU runs
 * AVX-512 (kk_vmath_ok). */
#include "nn/vmath.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(KK_HAVE_MVEC)
#include <immintrin.h>

/* libmvec's AVX-512 entry points (the x86-64 vector function ABI names) */
__m512d _ZGVeN8v_tanh(__m512d x);
__m512d _ZGVeN8v_exp(__m512d x);
__m512d _ZGVeN8v_sin(__m512d x);
__m512d _ZGVeN8v_cos(__m512d x);
__m512 _ZGVeN16v_expf(__m512 x);
__m512d _ZGVeN8vv_atan2(__m512d y, __m512d x);

int kk_vmath_compiled(void) { return 1; }

static inline __mmask8 tail(size_t left) { return left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1); }

void kk_gelu_tanh_avx512(double *x, size_t n)
{
    const __m512d k = _mm512_set1_pd(0.7978845608028654), c = _mm512_set1_pd(0.044715);
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 m = tail(n - i);
        const __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        const __m512d t = _ZGVeN8v_tanh(_mm512_mul_pd(k, _mm512_add_pd(v, _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(c, v), v), v))));
        _mm512_mask_storeu_pd(x + i, m, _mm512_mul_pd(_mm512_mul_pd(half, v), _mm512_add_pd(one, t)));
    }
}

void kk_exp_shift_avx512(double *x, size_t n, double s)
{
    const __m512d vs = _mm512_set1_pd(s);
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 m = tail(n - i);
        _mm512_mask_storeu_pd(x + i, m, _ZGVeN8v_exp(_mm512_sub_pd(_mm512_maskz_loadu_pd(m, x + i), vs)));
    }
}

static inline __mmask16 tail16(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

void kk_gelu_f_avx512(float *x, size_t n)
{
    const __m512 k = _mm512_set1_ps(-2.0f * 0.7978845608028654f), c = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 u = _mm512_mul_ps(k, _mm512_add_ps(v, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(c, v), v), v)));
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(v, _mm512_add_ps(one, _ZGVeN16v_expf(u))));
    }
}

void kk_exp_shift_f_avx512(float *x, size_t n, float s)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _ZGVeN16v_expf(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
    }
}

void kk_sin_avx512(double *x, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 m = tail(n - i);
        _mm512_mask_storeu_pd(x + i, m, _ZGVeN8v_sin(_mm512_maskz_loadu_pd(m, x + i)));
    }
}

void kk_polar_avx512(const double *re, const double *im, size_t n, float *mag, float *ph)
{
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 m = tail(n - i);
        const __m512d r = _mm512_maskz_loadu_pd(m, re + i), q = _mm512_maskz_loadu_pd(m, im + i);
        const __m512d a = _mm512_sqrt_pd(_mm512_fmadd_pd(q, q, _mm512_mul_pd(r, r)));
        _mm256_mask_storeu_ps(mag + i, m, _mm512_cvtpd_ps(a));
        _mm256_mask_storeu_ps(ph + i, m, _mm512_cvtpd_ps(_ZGVeN8vv_atan2(q, r)));
    }
}

void kk_istft_polar_avx512(const float *m, const float *p, size_t n, double *re, double *im)
{
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 k = tail(n - i);
        const __m512d mag = _ZGVeN8v_exp(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, m + i)));
        const __m512d ph = _ZGVeN8v_sin(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, p + i)));
        _mm512_mask_storeu_pd(re + i, k, _mm512_mul_pd(mag, _ZGVeN8v_cos(ph)));
        _mm512_mask_storeu_pd(im + i, k, _mm512_mul_pd(mag, _ZGVeN8v_sin(ph)));
    }
}

void kk_lstm_step_avx512(const float *wt, const double *b, const double *g, int H, double *h, double *c, double *z)
{
    const int G = 4 * H;
    /* 128 gates at a time, each j adding h[j] times 128 floats of row j (16 sums in flight: the float
     * to double conversions, not the latency, set the pace) */
    int u0 = 0;
    for (; u0 + 128 <= G; u0 += 128) {
        __m512d acc[16];
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_pd();
        for (int j = 0; j < H; j++) {
            const __m512d hj = _mm512_set1_pd(h[j]);
            const float *w = wt + (size_t)j * G + u0;
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(w + 8 * q)), hj, acc[q]);
        }
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) {
            const int u = u0 + 8 * q;
            _mm512_storeu_pd(z + u, _mm512_add_pd(_mm512_add_pd(acc[q], _mm512_loadu_pd(b + u)), _mm512_loadu_pd(g + u)));
        }
    }
    for (; u0 < G; u0 += 8) {
        const __mmask8 m = tail((size_t)(G - u0));
        __m512d acc = _mm512_setzero_pd();
        for (int j = 0; j < H; j++)
            acc = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, wt + (size_t)j * G + u0)), _mm512_set1_pd(h[j]), acc);
        const __m512d s = _mm512_add_pd(_mm512_add_pd(acc, _mm512_maskz_loadu_pd(m, b + u0)), _mm512_maskz_loadu_pd(m, g + u0));
        _mm512_mask_storeu_pd(z + u0, m, s);
    }
    const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
    for (int u = 0; u < H; u += 8) {
        const __mmask8 m = tail((size_t)(H - u));
        const __m512d zi = _mm512_maskz_loadu_pd(m, z + u), zf = _mm512_maskz_loadu_pd(m, z + H + u);
        const __m512d zg = _mm512_maskz_loadu_pd(m, z + 2 * H + u), zo = _mm512_maskz_loadu_pd(m, z + 3 * H + u);
        const __m512d ig = _mm512_div_pd(one, _mm512_add_pd(one, _ZGVeN8v_exp(_mm512_sub_pd(zero, zi))));
        const __m512d fg = _mm512_div_pd(one, _mm512_add_pd(one, _ZGVeN8v_exp(_mm512_sub_pd(zero, zf))));
        const __m512d og = _mm512_div_pd(one, _mm512_add_pd(one, _ZGVeN8v_exp(_mm512_sub_pd(zero, zo))));
        const __m512d gg = _ZGVeN8v_tanh(zg);
        const __m512d cn = _mm512_add_pd(_mm512_mul_pd(fg, _mm512_maskz_loadu_pd(m, c + u)), _mm512_mul_pd(ig, gg));
        _mm512_mask_storeu_pd(c + u, m, cn);
        _mm512_mask_storeu_pd(h + u, m, _mm512_mul_pd(og, _ZGVeN8v_tanh(cn)));
    }
}

#else

int kk_vmath_compiled(void) { return 0; }
void kk_lstm_step_avx512(const float *wt, const double *b, const double *g, int H, double *h, double *c, double *z)
{
    (void)wt, (void)b, (void)g, (void)H, (void)h, (void)c, (void)z;
}
void kk_gelu_tanh_avx512(double *x, size_t n) { (void)x, (void)n; }
void kk_exp_shift_avx512(double *x, size_t n, double s) { (void)x, (void)n, (void)s; }
void kk_gelu_f_avx512(float *x, size_t n) { (void)x, (void)n; }
void kk_sin_avx512(double *x, size_t n) { (void)x, (void)n; }
void kk_polar_avx512(const double *re, const double *im, size_t n, float *mag, float *ph)
{
    (void)re, (void)im, (void)n, (void)mag, (void)ph;
}
void kk_exp_shift_f_avx512(float *x, size_t n, float s) { (void)x, (void)n, (void)s; }
void kk_istft_polar_avx512(const float *m, const float *p, size_t n, double *re, double *im)
{
    (void)m, (void)p, (void)n, (void)re, (void)im;
}

#endif
