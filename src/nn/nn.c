#include "nn/nn.h"

#include "core/parallel.h"
#include "nn/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One LSTM step: gates z = (W_ih x + b_ih) + (W_hh h + b_hh), grouped as
 * PyTorch does, from g = W_ih x + b_ih, then the cell (nn_real.inc); vec:
 * kk_vmath_ok(), asked once a direction. Defined below the kernels. */
static void lstm_step(const kk_lstm_dir *d, const float *g, int H, float *h, float *c, float *z, int vec);
static void lstm_step_d(const kk_lstm_dir_d *d, const double *g, int H, double *h, double *c, double *z, int vec);

#define R float
#define S(name) name
#define GEMM cblas_sgemm
#define EXP expf
#define TANH tanhf
#define ROW_SPLITS 1
#include "nn/nn_real.inc"
#undef R
#undef S
#undef GEMM
#undef EXP
#undef TANH
#undef ROW_SPLITS

#define R double
#define S(name) name##_d
#define GEMM cblas_dgemm
#define EXP exp
#define TANH tanh
#define ROW_SPLITS 0
#include "nn/nn_real.inc"
#undef R
#undef S
#undef GEMM
#undef EXP
#undef TANH
#undef ROW_SPLITS

static void lstm_step(const kk_lstm_dir *d, const float *g, int H, float *h, float *c, float *z, int vec)
{
    (void)vec;
    memcpy(z, d->b_hh, 4 * (size_t)H * sizeof *z);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * H, H, 1, d->w_hh, H, h, 1, 1, z, 1);
    for (int u = 0; u < 4 * H; u++) z[u] += g[u];
    lstm_cell(z, H, h, c);
}

/* In double with W_hhᵀ in float (kk_lstm_dir_d): the product as z += h[j]·(row j of W_hhᵀ), every
 * gate's sum over j in order; on the AVX-512 path gates and cell in one pass, libmvec's exp and tanh
 * (vmath.h). */
static void lstm_step_d(const kk_lstm_dir_d *d, const double *g, int H, double *h, double *c, double *z, int vec)
{
    if (vec) {
        kk_lstm_step_avx512(d->w_hh_t, d->b_hh, g, H, h, c, z);
        return;
    }
    const size_t G = 4 * (size_t)H;
    memset(z, 0, G * sizeof *z);
    for (int j = 0; j < H; j++) {
        const float *w = d->w_hh_t + (size_t)j * G;
        const double hj = h[j];
        for (size_t u = 0; u < G; u++) z[u] += (double)w[u] * hj;
    }
    for (size_t u = 0; u < G; u++) z[u] = (z[u] + d->b_hh[u]) + g[u];
    lstm_cell_d(z, H, h, c);
}

int kk_conv1d_len(int n, int k, int stride, int pad, int dil)
{
    return (n + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

int kk_conv_transpose1d_len(int n, int k, int stride, int pad, int out_pad)
{
    return (n - 1) * stride - 2 * pad + k + out_pad;
}

typedef struct convt_task {
    const float *x, *W, *b;
    int cin, n, cout, k, stride, pad, nout, step;
    float *z, *y;
} convt_task;

/* Output channels [i·step, …): their rows of Z, then their scatter. */
static void convt_part(void *arg, int i)
{
    const convt_task *c = arg;
    int o0 = i * c->step, o1 = o0 + c->step < c->cout ? o0 + c->step : c->cout, k = c->k, n = c->n;
    float *z = c->z + (size_t)o0 * k * n;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (o1 - o0) * k, n, c->cin, 1.0f, c->W + (size_t)o0 * k,
                c->cout * k, c->x, n, 0.0f, z, n);
    for (int o = o0; o < o1; o++) {
        float *yo = c->y + (size_t)o * c->nout;
        float bo = c->b ? c->b[o] : 0.0f;
        for (int t = 0; t < c->nout; t++) yo[t] = bo;
        for (int j = 0; j < k; j++) {
            const float *zr = c->z + ((size_t)o * k + j) * n;
            for (int s = 0; s < n; s++) {
                int t = s * c->stride - c->pad + j;
                if (t >= 0 && t < c->nout) yo[t] += zr[s];
            }
        }
    }
}

int kk_conv_transpose1d(const float *x, int cin, int n, const float *W, const float *b, int cout,
                        int k, int stride, int pad, int out_pad, float *y, float *z)
{
    int nout = kk_conv_transpose1d_len(n, k, stride, pad, out_pad);
    /* Z[o·k + j, i] = Σ_c W[c, o, j]·x[c, i], then scatter to y[o, i·stride − pad + j];
     * output channels split across the threads (each value computed alike) */
    float *own = z ? NULL : malloc((size_t)cout * k * n * sizeof *z);
    if (!z && !own) return -1;
    if (!z) z = own;
    int nt = kk_threads(), step = kk_gemm_step(cout, 8, (double)k * n * cin, nt);
    convt_task c = {.x = x, .W = W, .b = b, .cin = cin, .n = n, .cout = cout, .k = k, .stride = stride,
                    .pad = pad, .nout = nout, .step = step, .z = z, .y = y};
    kk_parallel_for(nt, (cout + step - 1) / step, convt_part, &c);
    free(own);
    return nout;
}

void kk_layernorm_cols(float *x, int C, int N, const float *g, const float *b, float eps)
{
    double *mean = calloc((size_t)N, sizeof *mean), *var = calloc((size_t)N, sizeof *var);
    if (!mean || !var) { /* tiny buffers; fall back to a transposed pass */
        free(mean);
        free(var);
        for (int t = 0; t < N; t++) {
            double m = 0, s = 0;
            for (int c = 0; c < C; c++) m += x[(size_t)c * N + t];
            m /= C;
            for (int c = 0; c < C; c++) s += (x[(size_t)c * N + t] - m) * (x[(size_t)c * N + t] - m);
            float inv = (float)(1.0 / sqrt(s / C + eps));
            for (int c = 0; c < C; c++) {
                float u = (x[(size_t)c * N + t] - (float)m) * inv;
                x[(size_t)c * N + t] = (g ? u * g[c] : u) + (b ? b[c] : 0.0f);
            }
        }
        return;
    }
    for (int c = 0; c < C; c++)
        for (int t = 0; t < N; t++) mean[t] += x[(size_t)c * N + t];
    for (int t = 0; t < N; t++) mean[t] /= C;
    for (int c = 0; c < C; c++)
        for (int t = 0; t < N; t++) {
            double d = x[(size_t)c * N + t] - mean[t];
            var[t] += d * d;
        }
    for (int t = 0; t < N; t++) var[t] = 1.0 / sqrt(var[t] / C + eps);
    for (int c = 0; c < C; c++) {
        float gc = g ? g[c] : 1.0f, bc = b ? b[c] : 0.0f;
        for (int t = 0; t < N; t++) {
            float *p = &x[(size_t)c * N + t];
            *p = (*p - (float)mean[t]) * (float)var[t] * gc + bc;
        }
    }
    free(mean);
    free(var);
}

void kk_snake(const float *x, int C, int N, const float *alpha, float *y)
{
    for (int c = 0; c < C; c++) {
        float a = alpha[c], ia = 1.0f / a;
        const float *xc = x + (size_t)c * N;
        float *yc = y + (size_t)c * N;
        for (int t = 0; t < N; t++) {
            float s = sinf(a * xc[t]);
            yc[t] = xc[t] + ia * s * s;
        }
    }
}

