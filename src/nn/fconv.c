/* The FFT convolution's plan and threads (fconv.h); the arithmetic is in
 * fconv_avx512.c. Each chunk of blocks runs three passes: the forward FFTs
 * (a task per input channel pair), the products (a task per thread, taking
 * bins in turn), the inverse FFTs (a task per output channel pair). */
#include "nn/fconv.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"

/* blocks per chunk, a multiple of the product's 48-column tile: the spectra of a chunk
 * (F·3C rows of it) kept near one size whatever N, measured on the generator's shapes (a
 * 2-core Xeon with 2 MiB of L2 a core): 96 blocks at N 128 for 128 channels (192 spilled
 * further), 192 for 256, whose per-bin weights cost more to make (they stream all the taps);
 * smaller N, proportionally more blocks (fewer passes, and their few bins split evenly), N 256
 * half as many */
int kk_fconv_chunk(int C, int N) { return (C >= 256 ? 192 : 96) * 128 / N; }

int kk_fconv_plan_n(int cin, int cout, int K, int dil, int n, int N, int bc, kk_fconv_plan *p)
{
    const int span = (K - 1) * dil;
    /* (K ≤ 32: the per-bin weights' tables of taps) */
    if (N < 32 || N > KK_FCONV_NMAX || K > 32 || (N & (N - 1)) || N - span < 8 || n < 1 || cin != cout || cin % 16 ||
        bc < 16 || bc % 16)
        return 0;
    memset(p, 0, sizeof *p);
    p->N = N, p->L = N - span, p->F = N / 2 + 1, p->nb = (n + p->L - 1) / p->L;
    const int nb16 = (p->nb + 15) / 16 * 16;
    p->bc = bc < nb16 ? bc : nb16;
    /* the product's tiles read 48 columns past the last */
    p->ldb = kk_dconv_ldx(p->bc, 1, 1);
    p->cin = cin, p->cout = cout, p->K = K, p->dil = dil, p->n = n;
    return 1;
}

/* A plan's time in units of the direct kernel's time per tap (whose cost is K): a
 * model fitted to the generator's 18 convolution shapes timed on the AVX-512 Xeon here
 * (each FFT size forced, 1 and 2 threads, two runs averaged, the chunks of
 * kk_fconv_chunk). The products (three real ones per complex bin, whole 48-column tiles)
 * run at 1/1.5, 1/1.6, 1/1.45 and 1/1.6 of the direct kernel's speed per multiply-add at
 * N 32, 64, 128 and 256 for 128 channels, 1/1.35, 1/1.35, 1/1.15 and 1/1.1 for 256 (whose
 * direct kernel waits more on its input rows); the transforms and the spectra's trips
 * through memory cost 0.19 (N 32), 0.17 (64), 0.73 (128) or 0.9 (256) taps per output step
 * of a whole block; the per-bin weights K/2 multiply-adds per bin, channel pair and chunk
 * (bins f and N/2 − f are made together). `kokoro-bench --conv --fft` prints those timings
 * with the choice marked (those timings read padded rows on both paths): the choice was the
 * fastest on every shape in the last run but near ties (within 5 %). The direct kernel also
 * needs its input rows made in a pass of their own (AdaIN+Snake out to memory and back),
 * which the resblocks' FFT convolutions make as they read them: 0.5 taps added to its cost
 * (128 channels K 3 dilation 5 then through N 64: that stage 2.5 % faster in paired runs).
 * The choice must not depend on the thread count (the bytes would). */
static double plan_cost(const kk_fconv_plan *p)
{
    double cols = 0, chunks = 0;
    for (int b0 = 0; b0 < p->nb; b0 += p->bc, chunks++) {
        const int nbc = p->nb - b0 < p->bc ? p->nb - b0 : p->bc;
        cols += (nbc + 47) / 48 * 48;
    }
    const int i = p->N == 32 ? 0 : p->N == 64 ? 1 : p->N == 128 ? 2 : 3;
    static const double slow128[4] = {1.5, 1.6, 1.45, 1.6}, slow256[4] = {1.35, 1.35, 1.15, 1.1},
                        trans[4] = {0.19, 0.17, 0.73, 0.9};
    const double slow = p->cin >= 256 ? slow256[i] : slow128[i];
    const double products = (p->F - 1.5) * 3.0 * cols / p->n, weights = 0.5 * chunks * p->F * p->K / p->n;
    return slow * products + weights + trans[i] * (double)(p->nb + 15) / 16 * 16 * p->L / p->n;
}

int kk_fconv_choose(kk_isa isa, int cin, int cout, int K, int dil, int n, kk_fconv_plan *p)
{
    if (isa != KK_ISA_AVX512 || !kk_fconv_compiled() || !kk_isa_supported(KK_ISA_AVX512)) return 0;
    const char *e = getenv("KOKORO_FFTCONV");
    if (e && strcmp(e, "0") == 0) return 0;
    double best = 0.97 * K + 0.5; /* the direct kernel's cost and its input pass; a near tie keeps it */
    int found = 0;
    for (int N = 32; N <= KK_FCONV_NMAX; N *= 2) {
        kk_fconv_plan q;
        if (!kk_fconv_plan_n(cin, cout, K, dil, n, N, kk_fconv_chunk(cin, N), &q)) continue;
        const double c = plan_cost(&q);
        if (c < best) best = c, *p = q, found = 1;
    }
    return found;
}

/* the spectra (per bin: real parts, imaginary parts), then per thread the weight matrices of two
 * bins (f and N/2 − f, three each), the three products over a tile of 48 columns and the tile's
 * Re X + Im X */
static size_t spectra_floats(const kk_fconv_plan *p) { return (size_t)p->F * 2 * p->cin * p->ldb; }
static size_t thread_floats(const kk_fconv_plan *p)
{
    return ((size_t)6 * p->cout * p->cin + (size_t)4 * p->cout * 48 + 15) / 16 * 16;
}

size_t kk_fconv_ws_floats(const kk_fconv_plan *p, int nthreads)
{
    return 16 + (spectra_floats(p) + 15) / 16 * 16 + (size_t)(nthreads > 0 ? nthreads : 1) * thread_floats(p);
}

typedef struct bins_job {
    const kk_fconv_ctx *c;
    float *thr; /* the threads' buffers */
    atomic_int next;
} bins_job;

static void fwd_task(void *arg, int pair) { kk_fconv_fwd_avx512(arg, pair); }
static void inv_task(void *arg, int pair) { kk_fconv_inv_avx512(arg, pair); }

static void bins_task(void *arg, int t)
{
    bins_job *j = arg;
    const kk_fconv_plan *p = j->c->p;
    float *A = j->thr + (size_t)t * thread_floats(p), *Y = A + (size_t)6 * p->cout * p->cin;
    for (int f; (f = atomic_fetch_add(&j->next, 1)) <= p->N / 4;) kk_fconv_bin_avx512(j->c, f, A, Y);
}

void kk_fconv_run(const kk_fconv_plan *p, const kk_dconv *d, const kk_snake_in *in, float *ws, int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    float twr[KK_FCONV_NMAX], twi[KK_FCONV_NMAX];
    int rev[KK_FCONV_NMAX], bits = 0;
    while ((1 << bits) < p->N) bits++;
    for (int k = 0; k < p->N; k++) {
        /* exact at the quarter turns, so bins 0 and N/2 stay real */
        const int q = (4 * k) % p->N == 0 ? 4 * k / p->N : -1;
        const double a = -2.0 * 3.14159265358979323846 * k / p->N;
        twr[k] = q < 0 ? (float)cos(a) : (float)(q == 0 ? 1 : q == 2 ? -1 : 0);
        twi[k] = q < 0 ? (float)sin(a) : (float)(q == 1 ? -1 : q == 3 ? 1 : 0);
        int r = 0;
        for (int b = 0; b < bits; b++) r |= ((k >> b) & 1) << (bits - 1 - b);
        rev[k] = r;
    }
    float *X = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    kk_fconv_ctx c = {.p = p, .d = d, .X = X, .fs = (size_t)2 * p->cin * p->ldb, .twr = twr, .twi = twi, .rev = rev,
                    .in = in};
    float *thr = X + (spectra_floats(p) + 15) / 16 * 16;
    for (int b0 = 0; b0 < p->nb; b0 += p->bc) {
        c.b0 = b0, c.nbc = p->nb - b0 < p->bc ? p->nb - b0 : p->bc;
        kk_parallel_for(nthreads, p->cin / 2, fwd_task, &c);
        bins_job j = {.c = &c, .thr = thr};
        atomic_init(&j.next, 0);
        kk_parallel_for(nthreads, nthreads, bins_task, &j);
        kk_parallel_for(nthreads, p->cout / 2, inv_task, &c);
    }
}
