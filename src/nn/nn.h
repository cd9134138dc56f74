/* Numeric kernels: no model knowledge here. Layouts are row-major; the
 * convolution path is channel-first [C, N]; the token path is [T, C].
 * Functions with the suffix _d are the same kernels in double precision
 * (nn_real.inc holds the one definition of both). */
#ifndef KK_NN_H
#define KK_NN_H

#include <stddef.h>

/* y[T,out] = x[T,in] · W[out,in]ᵀ + b  (b may be NULL) */
void kk_linear(const float *x, int T, int in, const float *W, const float *b, int out, float *y);

/* PyTorch Conv1d on x[cin, n]: W[cout, cin, k], zero padding, returns n_out.
 * y must hold cout × n_out floats. */
int kk_conv1d_len(int n, int k, int stride, int pad, int dil);
int kk_conv1d(const float *x, int cin, int n, const float *W, const float *b, int cout, int k,
              int stride, int pad, int dil, float *y);
/* The same at stride 1 as a GEMM per tap on x shifted by the tap, each on the output steps whose
 * input lies inside x (no im2col; the weights regrouped per tap on each call). kk_conv1d takes it
 * where the output is at least as long as cout; callers may choose it for their own shapes. */
int kk_conv1d_taps(const float *x, int cin, int n, const float *W, const float *b, int cout, int k, int pad, int dil,
                   float *y);

/* PyTorch ConvTranspose1d (groups 1) on x[cin, n]: W[cin, cout, k]. z: scratch of
 * cout·k·n floats (NULL: allocated here). */
int kk_conv_transpose1d_len(int n, int k, int stride, int pad, int out_pad);
int kk_conv_transpose1d(const float *x, int cin, int n, const float *W, const float *b, int cout,
                        int k, int stride, int pad, int out_pad, float *y, float *z);

/* Depthwise ConvTranspose1d(C, C, k 3, stride 2, pad 1, output_pad 1, groups C):
 * x[c, n] -> y[c, 2n]; W[c, 1, 3]. */
void kk_upsample_dw3(const float *x, int c, int n, const float *W, const float *b, float *y);

/* Bidirectional single-layer LSTM (PyTorch gate order i, f, g, o), zero
 * initial state: x[T, in] -> y[T, 2H], forward half first. */
typedef struct kk_lstm_dir {
    const float *w_ih; /* [4H, in] */
    const float *w_hh; /* [4H, H] */
    const float *b_ih; /* [4H] */
    const float *b_hh; /* [4H] */
} kk_lstm_dir;
typedef struct kk_lstm_dir_d {
    const double *w_ih;
    const float *w_hh_t; /* [H, 4H]: W_hhᵀ, kept in float (its values are float32) */
    const double *b_ih, *b_hh;
} kk_lstm_dir_d;
int kk_lstm_bi(const float *x, int T, int in, const kk_lstm_dir *fwd, const kk_lstm_dir *rev,
               int H, float *y);

/* Normalises each row of x[rows, C] over C: (x-μ)/√(σ²+eps)·g + b (g, b may be NULL). */
void kk_layernorm_rows(float *x, int rows, int C, const float *g, const float *b, float eps);
/* Same over the channel axis of x[C, N] (each column). */
void kk_layernorm_cols(float *x, int C, int N, const float *g, const float *b, float eps);

/* AdaIN: InstanceNorm over time per channel of x[C, N] (biased variance, eps
 * 1e-5), optional affine (nw, nb may be NULL), then (1 + gamma)·x + beta where
 * gb = [gamma(C); beta(C)] = fc(style). In place allowed (y == x). */
void kk_adain(const float *x, int C, int N, const float *gb, const float *nw, const float *nb,
              float *y);

void kk_leaky_relu(float *x, size_t n, float slope);
/* y = leaky ReLU of x[n] (y may be x), as a vector select: GCC's -O2 keeps the scalar loop's sign
 * branch, mispredicted half the time (conv_post's rows took longer than its convolution) */
void kk_leaky_row(const float *x, size_t n, float slope, float *y);
/* x + 1/α·sin²(αx) per channel of x[C, N], alpha[C] */
void kk_snake(const float *x, int C, int N, const float *alpha, float *y);

/* y[cols, rows] = x[rows, cols]ᵀ */
void kk_transpose(const float *x, int rows, int cols, float *y);

/* double-precision versions (same contracts) */
void kk_linear_d(const double *x, int T, int in, const double *W, const double *b, int out, double *y);
int kk_conv1d_d(const double *x, int cin, int n, const double *W, const double *b, int cout, int k, int stride,
                int pad, int dil, double *y);
int kk_conv1d_taps_d(const double *x, int cin, int n, const double *W, const double *b, int cout, int k, int pad,
                     int dil, double *y);
void kk_upsample_dw3_d(const double *x, int c, int n, const double *W, const double *b, double *y);
int kk_lstm_bi_d(const double *x, int T, int in, const kk_lstm_dir_d *fwd, const kk_lstm_dir_d *rev, int H,
                 double *y);
void kk_layernorm_rows_d(double *x, int rows, int C, const double *g, const double *b, double eps);
void kk_adain_d(const double *x, int C, int N, const double *gb, const double *nw, const double *nb, double *y);
void kk_leaky_relu_d(double *x, size_t n, double slope);
void kk_leaky_row_d(const double *x, size_t n, double slope, double *y);
void kk_transpose_d(const double *x, int rows, int cols, double *y);

#endif
