/* Elementwise functions through glibc's libmvec (its AVX-512 routines,
 * ≤ 4 ulp), eight doubles or sixteen floats at a time, used where the CPU runs
 * the AVX-512 kernel path: ALBERT's GELU and softmax, the harmonic source's
 * sines, the STFT's phases (atan2), the iSTFT's magnitude and phase (exp, sin, cos), the LSTMs' gates (exp, tanh), which otherwise
 * cost millions of scalar libm calls a synthesis. Every element goes through
 * the vector routine (a tail is padded), so no value depends on where a
 * thread's range starts. */
#ifndef KK_VMATH_H
#define KK_VMATH_H

#include <stddef.h>

/* non-zero where these run: compiled with libmvec and the active kernel path is AVX-512 */
int kk_vmath_ok(void);
int kk_vmath_compiled(void);
/* x[i] = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) */
void kk_gelu_tanh_avx512(double *x, size_t n);
/* x[i] = e^(x[i] − s) (softmax rows) */
void kk_exp_shift_avx512(double *x, size_t n, double s);
/* float32 forms of the two for the bfloat16 mode's float ALBERT (sixteen lanes, libmvec's expf):
 * GELU as x/(1 + e^(−2√(2/π)(x + 0.044715x³))) (= ½x(1 + tanh u)), and e^(x[i] − s) */
void kk_gelu_f_avx512(float *x, size_t n);
void kk_exp_shift_f_avx512(float *x, size_t n, float s);
/* x[i] = sin x[i] (the harmonic source's phases) */
void kk_sin_avx512(double *x, size_t n);
/* mag[i] = |re[i] + i·im[i]|, ph[i] = atan2(im[i], re[i]) (the STFT's) */
void kk_polar_avx512(const double *re, const double *im, size_t n, float *mag, float *ph);
/* re[i] = e^m[i]·cos(sin p[i]), im[i] = e^m[i]·sin(sin p[i]) */
void kk_istft_polar_avx512(const float *m, const float *p, size_t n, double *re, double *im);

/* One LSTM step in double (nn.c's lstm_step_d): z[u] = (Σ_j wt[j·4H + u]·h[j] + b[u]) + g[u] over the
 * 4H gates, then c = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c) */
void kk_lstm_step_avx512(const float *wt, const double *b, const double *g, int H, double *h, double *c, double *z);

#endif
