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

#else

int kk_vmath_compiled(void) { return 0; }
void kk_gelu_tanh_avx512(double *x, size_t n) { (void)x, (void)n; }
void kk_exp_shift_avx512(double *x, size_t n, double s) { (void)x, (void)n, (void)s; }
void kk_istft_polar_avx512(const float *m, const float *p, size_t n, double *re, double *im)
{
    (void)m, (void)p, (void)n, (void)re, (void)im;
}

#endif
