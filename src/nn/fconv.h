/* Conv1d through the FFT (overlap-save) for the generator's resblocks in
 * float32: the output in blocks of L = N − (K−1)·dil steps, each block's
 * input (N steps) through a real FFT of size N, one complex matrix product
 * per frequency bin over all blocks, then the inverse FFT. The spectra of two
 * channels share one complex FFT (one the real part, one the imaginary). A
 * bin's product is three real ones (Gauss: Re W·Re X, Im W·Im X and
 * (Re W + Im W)(Re X + Im X); bins 0 and N/2 are real: one), each run on the
 * direct kernel as a 1×1 convolution over the blocks, the weights made per
 * bin from the taps (no spectrum of the weights is kept; bins f and N/2 − f
 * from one pass over them, as even- and odd-tap sums): (1.5·N − 1)/L
 * real multiply-adds per output step and channel pair against K for the
 * direct kernel. Round-off is that of a float32 FFT of size ≤ 256 (~1e-6 of
 * the rms output). */
#ifndef KK_FCONV_H
#define KK_FCONV_H

#include <stddef.h>

#include "nn/dconv.h"

#define KK_FCONV_NMAX 256 /* the largest FFT size */

typedef struct kk_fconv_plan {
    int N;      /* FFT size: 32, 64, 128 or 256 */
    int L;      /* output steps per block: N − (K−1)·dil */
    int F;      /* frequency bins: N/2 + 1 */
    int nb;     /* blocks: ceil(n / L) */
    int bc;     /* blocks per chunk (a multiple of 16): the spectra held at once */
    size_t ldb; /* row stride of the spectra (floats) */
    int cin, cout, K, dil, n;
} kk_fconv_plan;

/* Non-zero when the FFT path runs here (AVX-512 kernels compiled, the CPU
 * has them, KOKORO_FFTCONV is not 0) for this shape (cin = cout, a multiple
 * of 16) and costs less than the direct kernel by the model below; *p is
 * then its plan. */
int kk_fconv_choose(kk_isa isa, int cin, int cout, int K, int dil, int n, kk_fconv_plan *p);
/* Blocks per chunk for C channels at FFT size N (the library's choice). */
int kk_fconv_chunk(int C, int N);
/* The plan for a given FFT size and chunk (tests); 0 when N cannot hold the kernel's span. */
int kk_fconv_plan_n(int cin, int cout, int K, int dil, int n, int N, int bc, kk_fconv_plan *p);
/* Workspace of kk_fconv_run (floats, 64-byte alignment included). */
size_t kk_fconv_ws_floats(const kk_fconv_plan *p, int nthreads);
/* d as for kk_dconv_run: xp the zero-padded rows (positions ≥ ldx read as
 * zero), wp packed by kk_dconv_pack(KK_ISA_AVX512, …) for the K taps, y =
 * (or += when accumulating) conv + b; as on the AMX kernel, accumulating sums
 * may start from acc_from instead of y, and rowstats (when not NULL) gets
 * each output row's sum and sum of squares added (rowstats[2o], [2o + 1]);
 * combine 1: y += the result, 2: y = (y + the result) / 3 (rowstats, if
 * asked, sum the result). in (may be NULL): the input rows are AdaIN+Snake
 * of in->x (in->pad zero steps before them, zeros after), made as the
 * transforms read them, a group of blocks at a time, instead of read from
 * d->xp (no pass through memory of their own); the same values as
 * kk_snake_affine's rows. The same bytes on any thread count. */
void kk_fconv_run(const kk_fconv_plan *p, const kk_dconv *d, const kk_snake_in *in, float *ws, int nthreads);
int kk_fconv_compiled(void);

/* the kernels (fconv_avx512.c), one call per task */
typedef struct kk_fconv_ctx {
    const kk_fconv_plan *p;
    const kk_dconv *d;
    float *X;           /* spectra: bin f, row r at X[f·fs + r·ldb]: rows 0..c−1 the real parts, c..2c−1 the
                         * imaginary (the products' results overwrite them in place) */
    size_t fs;          /* floats per bin */
    int b0, nbc;        /* the chunk: blocks b0 … b0 + nbc − 1 */
    const float *twr, *twi; /* e^{−2πik/N}, k < N */
    const int *rev;     /* bit reversal of log2 N bits */
    const kk_snake_in *in; /* NULL: the input rows from d->xp */
} kk_fconv_ctx;
void kk_fconv_fwd_avx512(const kk_fconv_ctx *c, int pair);
/* bins f and N/2 − f (f ≤ N/4; one bin when they coincide): their weights
 * into A (6·C·C floats), their products through Y (4·C·48 floats) */
void kk_fconv_bin_avx512(const kk_fconv_ctx *c, int f, float *A, float *Y);
void kk_fconv_inv_avx512(const kk_fconv_ctx *c, int pair);

#endif
