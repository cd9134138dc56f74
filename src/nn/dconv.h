/* Direct (im2col-free) Conv1d for the generator's resblocks, written once
 * with vector extensions and compiled per instruction set (dconv_kern.inc),
 * chosen at run time. Output channels are register-blocked by kk_dconv_mr()
 * rows and time by a few vectors; weights are repacked so the inner loop
 * reads one contiguous stream. */
#ifndef KK_DCONV_H
#define KK_DCONV_H

#include <stddef.h>

typedef enum kk_isa { KK_ISA_GENERIC = 0, KK_ISA_AVX2 = 1, KK_ISA_AVX512 = 2, KK_ISA_COUNT } kk_isa;

/* The path in use: the best this CPU runs, or the one the environment
 * variable KOKORO_ISA (generic | avx2 | avx512) forces when the CPU runs it. */
kk_isa kk_isa_active(void);
int kk_isa_supported(kk_isa isa);
const char *kk_isa_name(kk_isa isa);

typedef struct kk_dconv {
    const float *xp; /* zero-padded input: xp[c·ldx + t + j·dil] = x[c, t + j·dil − pad] */
    size_t ldx;      /* ≥ kk_dconv_ldx(n, K, dil) */
    const float *wp; /* weights packed by kk_dconv_pack for the same isa */
    const float *b;  /* bias [cout] or NULL */
    int cin, cout, K, dil, n;
    float *y; /* y[o·ldy + t], t < n */
    size_t ldy;
    int accumulate; /* non-zero: y += conv(x) + b */
    /* AMX kernel only, NULL or rowstats[2o], rowstats[2o + 1]: each output row's sum
     * and sum of squares over the block's steps are added there */
    double *rowstats;
    /* AMX kernel only: accumulating, the sum starts from acc_from (rows ldy apart) instead
     * of y (NULL: y); combine 1: y += the result, 2: y = (y + the result) / 3 (rowstats
     * then sum the result) */
    const float *acc_from;
    int combine;
} kk_dconv;

/* Row stride a padded input needs (room for the halo and the last tile). */
size_t kk_dconv_ldx(int n, int K, int dil);
size_t kk_dconv_pack_floats(kk_isa isa, int cout, int cin, int K);
void kk_dconv_pack(kk_isa isa, const float *W, int cout, int cin, int K, float *wp);
/* The direct kernel's input from channel rows x[cin, n]: each row pad zero steps, the values
 * through a leaky ReLU of the given slope (1: as they are), zeros to ldx; on up to nthreads. */
void kk_dconv_rows(const float *x, int cin, int n, int pad, float slope, float *xp, size_t ldx, int nthreads);
/* Runs the convolution on up to nthreads threads. */
void kk_dconv_run(kk_isa isa, const kk_dconv *d, int nthreads);

/* out[t] = v + sin²(a·v)/a with v = (x[t] − m)·scale + shift: AdaIN then Snake. */
void kk_snake_affine(kk_isa isa, const float *x, int n, float m, float scale, float shift, float a, float *out);
/* out[t − t0] for t0 ≤ t < t1 ≤ n: the values kk_snake_affine(x, n, …) gives at t, bit for bit
 * (a row made in parts, as the FFT convolution's transforms read it) */
void kk_snake_affine_part(kk_isa isa, const float *x, int n, int t0, int t1, float m, float scale, float shift,
                          float a, float *out);

/* The bfloat16 path (AVX512-BF16, dconv_bf16.c): the input of
 * kk_dconv_run_bf16 is d->xp viewed as uint32 words, each holding the bf16
 * pair of channels (2p, 2p+1) at one step (kk_bf16_pair_row), ldx words per
 * pair row; weights packed by kk_dconv_pack_bf16. */
#include <stdint.h>
int kk_bf16_supported(void);
size_t kk_dconv_pack_bf16_words(int cout, int cin, int K);
void kk_dconv_pack_bf16(const float *W, int cout, int cin, int K, uint32_t *wp);
/* out[i] = bf16(x0[i]) | bf16(x1[i]) << 16 (x1 NULL: zero), round to nearest even */
void kk_bf16_pair_row(const float *x0, const float *x1, size_t n, uint32_t *out);
void kk_dconv_run_bf16(const kk_dconv *d, int nthreads);
void kk_dconv_block_bf16(const kk_dconv *d, int ob0, int ob1, int t0, int t1);
int kk_bf16_compiled(void);

/* The bfloat16 path on AMX tiles (dconv_amx.c): the same pair-row input,
 * through kk_amx_pairs(cin) pair rows (those past cin zero), weights packed
 * by kk_dconv_pack_amx (kk_amx_pack_words(cout, cin, K) words: for cin a
 * multiple of 32 it fits the buffer of kk_dconv_pack_bf16_words). Used
 * where the CPU and the OS allow it (KOKORO_AMX=0 turns it off) and the
 * output is whole 32-row blocks (kk_amx_fits); otherwise the vdpbf16ps
 * kernel. */
#define kk_amx_pairs(cin) ((((cin) + 31) / 32) * 16)
#define kk_amx_pack_words(cout, cin, K) ((size_t)(cout) * kk_amx_pairs(cin) * (K))
int kk_amx_supported(void);
int kk_amx_fits(int cout);
void kk_dconv_pack_amx(const float *W, int cout, int cin, int K, uint16_t *wp);
void kk_dconv_run_amx(const kk_dconv *d, int nthreads);
void kk_dconv_block_amx(const kk_dconv *d, int ob0, int ob1, int t0, int t1);
double kk_amx_loop(long iters);

/* The AMX kernel's input from channel rows x[cin, n]: kk_amx_pairs(cin)
 * bf16 pair rows of ldx words, pad zero steps first, each value through a
 * leaky ReLU of the given slope (1: as it is), zero past n and past cin;
 * tmp: kk_amx_rows_tmp_floats(cin, ldx) floats. */
size_t kk_amx_rows_tmp_floats(int cin, size_t ldx);
void kk_amx_pair_rows(const float *x, int cin, int n, int pad, float slope, uint32_t *xb, size_t ldx, float *tmp,
                      int nthreads);

/* The AMX convolution with its input made as it goes: AdaIN then Snake on
 * the float rows, rounded to bf16 pairs in a slot buffer of the thread for
 * each time task of kk_amx_task_steps steps, so neither the Snake output nor
 * the pair rows go through memory; optionally each output row's statistics
 * (for the next AdaIN) summed per task. d->xp and d->ldx are not used. */
typedef struct kk_snake_in {
    const float *x; /* x[c·ldx + t], t < n: the unpadded input rows */
    size_t ldx;
    /* per input channel: out = v + sin²(αv)/α with v = (x − m)·scale + shift */
    const float *m, *scale, *shift, *alpha;
    int pad; /* the convolution's zero padding before t = 0 */
} kk_snake_in;
#define kk_amx_task_steps 512
#define kk_amx_tasks(n) (((n) + kk_amx_task_steps - 1) / kk_amx_task_steps)
/* words of one thread's slot buffer */
size_t kk_amx_slot_words(int cin, int K, int dil);
/* slots: nthreads slot buffers; stats NULL or 2·cout·kk_amx_tasks(n) doubles */
void kk_dconv_run_amx_snake(kk_isa isa, const kk_dconv *d, const kk_snake_in *in, uint32_t *slots, double *stats,
                            int nthreads);
/* the tasks' sums -> mean and biased variance of each of the C rows */
void kk_amx_stats_finish(const double *stats, int n, int C, double *mean, double *var);
/* the same for ntask sets of sums (2·C doubles each, summed in set order) of rows of n steps */
void kk_sums_finish(const double *stats, int ntask, int n, int C, double *mean, double *var);

/* mean and biased variance of a row (n ≥ 1) */
void kk_row_stats(kk_isa isa, const float *x, int n, double *mean, double *var);

/* Multiply-add peak of one thread on this path (bf16: the vdpbf16ps peak),
 * GFLOPS per CPU second, from a ~0.1 s register-only loop: the reference
 * for "percent of peak" that a busy or shared machine cannot distort much. */
double kk_fma_peak(kk_isa isa, int bf16);
double kk_fma_loop_bf16(long iters);

/* the per-isa entry points (dconv_kern.inc) */
#define KK_DCONV_DECL(sfx)                                                                                  \
    void kk_dconv_block_##sfx(const kk_dconv *d, int ob0, int ob1, int t0, int t1);                         \
    void kk_snake_affine_##sfx(const float *x, int n, float m, float scale, float shift, float a, float *out);   \
    void kk_snake_affine_part_##sfx(const float *x, int n, int t0, int t1, float m, float scale, float shift,      \
                                    float a, float *out);                                                          \
    void kk_row_stats_##sfx(const float *x, int n, double *mean, double *var);                                    \
    double kk_fma_loop_##sfx(long iters);
KK_DCONV_DECL(generic)
KK_DCONV_DECL(avx2)
KK_DCONV_DECL(avx512)

#endif
