#include "nn/dconv.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "core/parallel.h"
#include "nn/nn.h"
#include "nn/vmath.h"

typedef struct isa_info {
    const char *name;
    int mr, tile; /* output rows and time steps of one register tile */
    void (*block)(const kk_dconv *, int, int, int, int);
    void (*snake)(const float *, int, float, float, float, float, float *);
    void (*snake_part)(const float *, int, int, int, float, float, float, float, float *);
    void (*stats)(const float *, int, double *, double *);
    double (*fma)(long);
} isa_info;

static const isa_info isas[KK_ISA_COUNT] = {
    {"generic", 4, 12, kk_dconv_block_generic, kk_snake_affine_generic, kk_snake_affine_part_generic,
     kk_row_stats_generic, kk_fma_loop_generic},
    {"avx2", 4, 24, kk_dconv_block_avx2, kk_snake_affine_avx2, kk_snake_affine_part_avx2,
     kk_row_stats_avx2, kk_fma_loop_avx2},
    {"avx512", 8, 48, kk_dconv_block_avx512, kk_snake_affine_avx512, kk_snake_affine_part_avx512,
     kk_row_stats_avx512, kk_fma_loop_avx512},
};

const char *kk_isa_name(kk_isa isa) { return isa >= 0 && isa < KK_ISA_COUNT ? isas[isa].name : "?"; }

int kk_isa_supported(kk_isa isa)
{
    switch (isa) {
    case KK_ISA_GENERIC: return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    case KK_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KK_ISA_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

/* here, not in vmath_avx512.c: that file is built for AVX-512 CPUs only */
int kk_vmath_ok(void) { return kk_vmath_compiled() && kk_isa_active() == KK_ISA_AVX512; }

kk_isa kk_isa_active(void)
{
    const char *e = getenv("KOKORO_ISA");
    if (e && *e)
        for (int i = 0; i < KK_ISA_COUNT; i++)
            if (strcmp(e, isas[i].name) == 0 && kk_isa_supported((kk_isa)i)) return (kk_isa)i;
    for (int i = KK_ISA_COUNT - 1; i > 0; i--)
        if (kk_isa_supported((kk_isa)i)) return (kk_isa)i;
    return KK_ISA_GENERIC;
}

size_t kk_dconv_ldx(int n, int K, int dil)
{
    /* the last tile reads up to 48 steps past n plus the kernel's reach; a
     * multiple of 16 keeps rows 64-byte aligned */
    size_t w = (size_t)n + 48 + (size_t)(K - 1) * dil;
    return (w + 15) & ~(size_t)15;
}

size_t kk_dconv_pack_floats(kk_isa isa, int cout, int cin, int K)
{
    int mr = isas[isa].mr;
    return (size_t)((cout + mr - 1) / mr) * mr * cin * K;
}

typedef struct rows_job {
    const float *x;
    float *xp;
    int n, pad;
    float slope;
    size_t ldx;
} rows_job;

static void rows_part(void *arg, size_t c0, size_t c1)
{
    const rows_job *j = arg;
    const float slope = j->slope;
    for (size_t ch = c0; ch < c1; ch++) {
        float *row = j->xp + ch * j->ldx;
        const float *xr = j->x + ch * (size_t)j->n;
        memset(row, 0, (size_t)j->pad * sizeof *row);
        if (slope == 1.0f) memcpy(row + j->pad, xr, (size_t)j->n * sizeof *row);
        else
            kk_leaky_row(xr, (size_t)j->n, slope, row + j->pad);
        memset(row + j->pad + j->n, 0, (j->ldx - (size_t)j->pad - (size_t)j->n) * sizeof *row);
    }
}

void kk_dconv_rows(const float *x, int cin, int n, int pad, float slope, float *xp, size_t ldx, int nthreads)
{
    rows_job j = {.x = x, .xp = xp, .n = n, .pad = pad, .slope = slope, .ldx = ldx};
    kk_parallel_range((size_t)cin * n >= (1u << 17) ? nthreads : 1, (size_t)cin, 8, rows_part, &j);
}

typedef struct pack_job {
    const float *W;
    float *wp;
    int cout, mr;
    size_t ck;
} pack_job;

static void pack_part(void *arg, size_t ob0, size_t ob1)
{
    const pack_job *j = arg;
    float *wp = j->wp + ob0 * j->mr * j->ck;
    for (size_t ob = ob0; ob < ob1; ob++)
        for (size_t q = 0; q < j->ck; q++)
            for (int r = 0; r < j->mr; r++) {
                const size_t o = ob * j->mr + (size_t)r;
                *wp++ = o < (size_t)j->cout ? j->W[o * j->ck + q] : 0.0f;
            }
}

void kk_dconv_pack(kk_isa isa, const float *W, int cout, int cin, int K, float *wp)
{
    /* wp[ob][c][j][r] = W[ob·MR + r][c][j]; rows past cout are zero. The decoder's weights (up to
     * 13 MB a convolution) are packed on every call: on all threads when that big. */
    const int mr = isas[isa].mr, nob = (cout + mr - 1) / mr;
    pack_job j = {.W = W, .wp = wp, .cout = cout, .mr = mr, .ck = (size_t)cin * K};
    const size_t floats = (size_t)nob * mr * j.ck;
    kk_parallel_range(floats >= (1u << 20) ? kk_threads() : 1, (size_t)nob, 8, pack_part, &j);
}

typedef struct run_ctx {
    const kk_dconv *d;
    void (*block)(const kk_dconv *, int, int, int, int);
    int obs_per_task, nob, steps_per_task, ntime;
} run_ctx;

static void run_task(void *p, int i)
{
    const run_ctx *c = p;
    int og = i / c->ntime, tg = i % c->ntime;
    int ob0 = og * c->obs_per_task, ob1 = ob0 + c->obs_per_task < c->nob ? ob0 + c->obs_per_task : c->nob;
    int t0 = tg * c->steps_per_task, t1 = t0 + c->steps_per_task < c->d->n ? t0 + c->steps_per_task : c->d->n;
    c->block(c->d, ob0, ob1, t0, t1);
}

/* Bytes of packed weights one task's row blocks may hold: half the L2 cache
 * (1 MiB assumed where the C library cannot tell), kept 256 KiB–1 MiB. */
static size_t weight_budget(void)
{
    long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    size_t b = l2 > 0 ? (size_t)l2 / 2 : (size_t)512 << 10;
    return b < (256u << 10) ? 256u << 10 : b > (1u << 20) ? 1u << 20 : b;
}

/* A task: a group of row blocks × 4 register tiles of time. The weights of
 * a row block are reused from cache across the time tiles, and the input
 * rows of the time range across the row blocks, so the input comes from
 * memory once per group. Groups grow from 64 rows while their weights fit
 * the budget (all 128 channels of the 4.8 kHz resblocks at K 3, 7, 11) and
 * there remain four tasks a thread. wbytes: packed weights of one row block. */
static void run_blocks(void (*block)(const kk_dconv *, int, int, int, int), int mr, int steps, size_t wbytes,
                       const kk_dconv *d, int nthreads)
{
    if (d->n <= 0) return;
    run_ctx c = {.d = d, .block = block, .nob = (d->cout + mr - 1) / mr};
    c.steps_per_task = steps;
    c.ntime = (d->n + c.steps_per_task - 1) / c.steps_per_task;
    c.obs_per_task = 64 / mr;
    if (c.obs_per_task > c.nob) c.obs_per_task = c.nob;
    const size_t budget = weight_budget();
    while (c.obs_per_task < c.nob && (size_t)(2 * c.obs_per_task) * wbytes <= budget &&
           (long)c.ntime * ((c.nob + 2 * c.obs_per_task - 1) / (2 * c.obs_per_task)) >= 4L * nthreads)
        c.obs_per_task *= 2;
    if (c.obs_per_task > c.nob) c.obs_per_task = c.nob;
    int ntask = c.ntime * ((c.nob + c.obs_per_task - 1) / c.obs_per_task);
    kk_parallel_for(nthreads, ntask, run_task, &c);
}

void kk_dconv_run(kk_isa isa, const kk_dconv *d, int nthreads)
{
    const int mr = isas[isa].mr;
    run_blocks(isas[isa].block, mr, 4 * isas[isa].tile, (size_t)mr * d->cin * d->K * sizeof(float), d, nthreads);
}

int kk_bf16_supported(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return kk_bf16_compiled() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

size_t kk_dconv_pack_bf16_words(int cout, int cin, int K) { return (size_t)((cout + 7) / 8) * 8 * ((cin + 1) / 2) * K; }

void kk_dconv_run_amx(const kk_dconv *d, int nthreads)
{
    /* 512-step tasks: each of the task's rows is read in runs the hardware prefetcher follows (192
     * steps measured 10-30 % slower on the 4.8 kHz shapes) */
    run_blocks(kk_dconv_block_amx, 32, kk_amx_task_steps, kk_amx_pack_words(32, d->cin, d->K) * sizeof(uint32_t), d, nthreads);
}

/* ---- the AMX kernel's input from channel rows ---- */

typedef struct pair_rows_job {
    const float *x;
    uint32_t *xb;
    float *tmp; /* two rows a task */
    int n, cin, pad;
    float slope;
    size_t ldx;
} pair_rows_job;

#define PAIRS_PER_TASK 8

static void pair_rows(void *arg, size_t p0, size_t p1)
{
    const pair_rows_job *j = arg;
    float *r = j->tmp + p0 / PAIRS_PER_TASK * 2 * j->ldx;
    for (size_t p = p0; p < p1; p++) {
        for (int h = 0; h < 2; h++) {
            float *row = r + h * j->ldx;
            const size_t ch = 2 * p + (size_t)h;
            memset(row, 0, j->ldx * sizeof *row);
            if (ch >= (size_t)j->cin) continue;
            const float *xr = j->x + ch * j->n;
            kk_leaky_row(xr, (size_t)j->n, j->slope, row + j->pad);
        }
        kk_bf16_pair_row(r, r + j->ldx, j->ldx, j->xb + p * j->ldx);
    }
}

size_t kk_amx_rows_tmp_floats(int cin, size_t ldx)
{
    return 2 * ldx * (((size_t)kk_amx_pairs(cin) + PAIRS_PER_TASK - 1) / PAIRS_PER_TASK);
}

void kk_amx_pair_rows(const float *x, int cin, int n, int pad, float slope, uint32_t *xb, size_t ldx, float *tmp,
                      int nthreads)
{
    pair_rows_job j = {.x = x, .xb = xb, .tmp = tmp, .n = n, .cin = cin, .pad = pad, .slope = slope, .ldx = ldx};
    kk_parallel_range(nthreads, (size_t)kk_amx_pairs(cin), PAIRS_PER_TASK, pair_rows, &j);
}

/* ---- AdaIN + Snake made per time task, into the AMX kernel ---- */

static size_t slot_ld(int K, int dil) { return ((size_t)kk_amx_task_steps + (size_t)(K - 1) * dil + 15) & ~(size_t)15; }

/* the pair rows, then two float rows the Snake output passes through */
size_t kk_amx_slot_words(int cin, int K, int dil) { return ((size_t)kk_amx_pairs(cin) + 2) * slot_ld(K, dil); }

typedef struct snake_ctx {
    const kk_dconv *d;
    const kk_snake_in *in;
    uint32_t *slots;
    double *stats;
    kk_isa isa;
    int ntask;
} snake_ctx;

/* One input channel's padded row over the task: steps q of the slot are x
 * steps t0 − pad + q; zero outside [0, n) (the convolution's padding). */
static void snake_segment(const snake_ctx *c, int ch, int t0, size_t ld, float *row)
{
    const kk_snake_in *in = c->in;
    const int n = c->d->n, g0 = t0 - in->pad;
    if (ch >= c->d->cin) {
        memset(row, 0, ld * sizeof *row);
        return;
    }
    const int lo = g0 < 0 ? -g0 : 0;
    const long hi_l = (long)n - g0 < (long)ld ? (long)n - g0 : (long)ld; /* q < hi: inside x */
    const int hi = hi_l > lo ? (int)hi_l : lo;
    memset(row, 0, (size_t)lo * sizeof *row);
    if (hi > lo)
        kk_snake_affine(c->isa, in->x + (size_t)ch * in->ldx + g0 + lo, hi - lo, in->m[ch], in->scale[ch],
                        in->shift[ch], in->alpha[ch], row + lo);
    memset(row + hi, 0, (ld - (size_t)hi) * sizeof *row);
}

static void snake_task(const snake_ctx *c, int slot, int i)
{
    const kk_dconv *d = c->d;
    const size_t ld = slot_ld(d->K, d->dil);
    const int t0 = i * kk_amx_task_steps, len = d->n - t0 < kk_amx_task_steps ? d->n - t0 : kk_amx_task_steps;
    uint32_t *xl = c->slots + (size_t)slot * kk_amx_slot_words(d->cin, d->K, d->dil);
    const int np = kk_amx_pairs(d->cin);
    float *r0 = (float *)(xl + (size_t)np * ld), *r1 = r0 + ld;
    for (int p = 0; p < np; p++) {
        /* the next pair's input from memory while this one is made (rows far apart in memory defeat the
         * hardware prefetcher's start; without this most of the Snake's time was the wait for its loads) */
        for (int ch = 2 * p + 2; ch < 2 * p + 4 && ch < d->cin; ch++) {
            const long g0 = (long)t0 - c->in->pad, lo = g0 < 0 ? 0 : g0;
            const long hi = g0 + (long)ld < d->n ? g0 + (long)ld : d->n;
            const float *xr = c->in->x + (size_t)ch * c->in->ldx;
            for (long q = lo; q < hi; q += 16) __builtin_prefetch(xr + q, 0, 3);
        }
        snake_segment(c, 2 * p, t0, ld, r0);
        snake_segment(c, 2 * p + 1, t0, ld, r1);
        kk_bf16_pair_row(r0, r1, ld, xl + (size_t)p * ld);
    }
    kk_dconv dl = *d;
    dl.xp = (const float *)xl;
    dl.ldx = ld;
    dl.y = d->y + t0;
    dl.acc_from = d->acc_from ? d->acc_from + t0 : NULL;
    dl.n = d->n - t0;
    dl.rowstats = NULL;
    if (c->stats) {
        dl.rowstats = c->stats + (size_t)i * 2 * d->cout;
        memset(dl.rowstats, 0, (size_t)2 * d->cout * sizeof *dl.rowstats);
    }
    kk_dconv_block_amx(&dl, 0, d->cout / 32, 0, len);
}

static void snake_range_task(void *p, int slot, int i) { snake_task(p, slot, i); }

void kk_dconv_run_amx_snake(kk_isa isa, const kk_dconv *d, const kk_snake_in *in, uint32_t *slots, double *stats,
                            int nthreads)
{
    if (d->n <= 0) return;
    snake_ctx c = {.d = d, .in = in, .slots = slots, .stats = stats, .isa = isa, .ntask = kk_amx_tasks(d->n)};
    /* each thread the same time range on every convolution: the rows it reads are the ones it wrote */
    kk_parallel_ranges(nthreads, c.ntask, snake_range_task, &c);
}

void kk_amx_stats_finish(const double *stats, int n, int C, double *mean, double *var)
{
    kk_sums_finish(stats, kk_amx_tasks(n), n, C, mean, var);
}

void kk_sums_finish(const double *stats, int ntask, int n, int C, double *mean, double *var)
{
    for (int o = 0; o < C; o++) {
        double s = 0, q = 0;
        for (int i = 0; i < ntask; i++) /* in task order: the same sums at any thread count */
            s += stats[(size_t)i * 2 * C + 2 * o], q += stats[(size_t)i * 2 * C + 2 * o + 1];
        const double m = s / n, v = q / n - m * m;
        mean[o] = m;
        var[o] = v > 0 ? v : 0;
    }
}

void kk_dconv_run_bf16(const kk_dconv *d, int nthreads)
{
    run_blocks(kk_dconv_block_bf16, 8, 4 * 48, kk_dconv_pack_bf16_words(8, d->cin, d->K) * sizeof(uint32_t), d, nthreads);
}

void kk_snake_affine(kk_isa isa, const float *x, int n, float m, float scale, float shift, float a, float *out)
{
    isas[isa].snake(x, n, m, scale, shift, a, out);
}

void kk_snake_affine_part(kk_isa isa, const float *x, int n, int t0, int t1, float m, float scale, float shift,
                          float a, float *out)
{
    isas[isa].snake_part(x, n, t0, t1, m, scale, shift, a, out);
}

void kk_row_stats(kk_isa isa, const float *x, int n, double *mean, double *var) { isas[isa].stats(x, n, mean, var); }

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double kk_fma_peak(kk_isa isa, int bf16)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = thread_cpu();
        double flops = bf16 && kk_amx_supported() ? kk_amx_loop(20000)
                       : bf16                     ? kk_fma_loop_bf16(200000)
                                                  : isas[isa].fma(200000);
        t = thread_cpu() - t;
        if (t > 0 && flops / t > best) best = flops / t;
    }
    return best * 1e-9;
}
