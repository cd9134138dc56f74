/* The bfloat16 direct convolution on AMX tiles (Sapphire Rapids and later):
 * for each tap j, y[o, t] += Σ_c W[o, c, j]·x[c, t + j·dil] is a product of
 * a weight tile (16 output rows × 32 channels, bf16) and an input tile
 * (16 channel pairs × 16 steps: the bf16 pair rows of kk_bf16_pair_row, as
 * they are), summed in float32 by TDPBF16PS. A register block is 32 rows × 32
 * steps: four accumulator tiles, two weight tiles, two input tiles. Products
 * and sums as the AVX512-BF16 path (bf16 inputs, float32 sums; AMX flushes
 * bf16 denormals), in another order. Built with -mamx-tile -mamx-bf16 (see
 * CMakeLists.txt); only called where kk_amx_supported() says so. */
#define _GNU_SOURCE /* syscall */
#include "nn/dconv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/sanitize.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__)
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

/* Linux hands out the tile state only to a process that asks for it. */
static void amx_init(void)
{
    if (!__builtin_cpu_supports("avx512f")) return;
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    const int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1; /* CPUID.7.0:EDX AMX-TILE, AMX-BF16 */
    if (!tile || !bf16) return;
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int kk_amx_supported(void)
{
    const char *e = getenv("KOKORO_AMX");
    if (e && !strcmp(e, "0")) return 0;
    pthread_once(&amx_once, amx_init);
    return amx_ok;
}

int kk_amx_fits(int cout) { return cout % 32 == 0 && kk_amx_supported(); }

/* wp[ob32][chunk][j][half][r][c]: for output rows ob32·32 + half·16 + r and
 * channels chunk·32 + c, tap j: each weight tile 1 KB, contiguous; channels
 * past cin (up to a whole chunk) zero. */
void kk_dconv_pack_amx(const float *W, int cout, int cin, int K, uint16_t *wp)
{
    const int nch = (cin + 31) / 32;
    for (int ob = 0; ob < cout / 32; ob++)
        for (int ch = 0; ch < nch; ch++)
            for (int j = 0; j < K; j++)
                for (int h = 0; h < 2; h++)
                    for (int r = 0; r < 16; r++)
                        for (int c = 0; c < 32; c++) {
                            const int ci = ch * 32 + c;
                            *wp++ = ci < cin ? kk_bf16(W[((size_t)(ob * 32 + h * 16 + r) * cin + ci) * K + j]) : 0;
                        }
}

/* Eight tiles of 16 rows × 64 bytes. (GCC 12's _tile_loadconfig tells the
 * compiler it reads 8 bytes, which lets it drop the other stores; and its
 * _tile_loadd reads no memory as far as the compiler knows: hence the asm
 * operand of the whole struct, and the barrier before tiles load.) */
static void load_config(void)
{
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
    __asm__ volatile("" ::: "memory");
}

/* Tile loads and stores are invisible to AddressSanitizer: under it, every
 * range a block reads or writes is checked first (core/sanitize.h). */
static void asan_check_block(const kk_dconv *d, int ob0, int ob1, int t0, int t1)
{
#ifdef KK_ASAN
    if (ob0 >= ob1 || t0 >= t1) return;
    const int tiles = (t1 - t0 + 31) / 32, end = t0 + tiles * 32 < d->n ? t0 + tiles * 32 : d->n;
    const int nch = (d->cin + 31) / 32;
    const size_t wblock = (size_t)32 * nch * 32 * d->K; /* bf16 weights of a 32-row block */
    kk_asan_check((const uint16_t *)d->wp + (size_t)ob0 * wblock, (size_t)(ob1 - ob0) * wblock * sizeof(uint16_t));
    const size_t reach = (size_t)tiles * 32 + (size_t)(d->K - 1) * d->dil;
    for (int p = 0; p < nch * 16; p++)
        kk_asan_check((const uint32_t *)d->xp + (size_t)p * d->ldx + t0, reach * sizeof(uint32_t));
    if (d->b) kk_asan_check(d->b + (size_t)ob0 * 32, (size_t)(ob1 - ob0) * 32 * sizeof(float));
    for (int o = ob0 * 32; o < ob1 * 32; o++) {
        kk_asan_check(d->y + (size_t)o * d->ldy + t0, (size_t)(end - t0) * sizeof(float));
        if (d->acc_from) kk_asan_check(d->acc_from + (size_t)o * d->ldy + t0, (size_t)(end - t0) * sizeof(float));
    }
#else
    (void)d, (void)ob0, (void)ob1, (void)t0, (void)t1;
#endif
}

/* Row blocks of 32 output rows (ob0..ob1), steps t0..t1 in blocks of 32.
 * The accumulator tiles start from the bias (tiles of it, built once a
 * block) or, accumulating, from y itself, and whole blocks are stored
 * straight to y; only a last partial block goes through a buffer. */
/* Row statistics of a stored block (columns t..t+nt of the 32 rows from
 * y0): sums and squares per lane, summed in float over a task's blocks. */
__attribute__((target("avx512f"))) static void stats_block(const float *y0, size_t ldy, int t, int nt, __m512 *vs,
                                                            __m512 *vq)
{
    const __mmask16 m0 = nt >= 16 ? 0xFFFF : (__mmask16)((1u << nt) - 1),
                    m1 = nt >= 32 ? 0xFFFF : nt > 16 ? (__mmask16)((1u << (nt - 16)) - 1) : 0;
    for (int r = 0; r < 32; r++) {
        const float *yr = y0 + (size_t)r * ldy + t;
        const __m512 a = _mm512_maskz_loadu_ps(m0, yr), b = _mm512_maskz_loadu_ps(m1, yr + 16);
        vs[r] = _mm512_add_ps(vs[r], _mm512_add_ps(a, b));
        vq[r] = _mm512_fmadd_ps(a, a, _mm512_fmadd_ps(b, b, vq[r]));
    }
}

__attribute__((target("avx512f"))) static void stats_add(const __m512 *vs, const __m512 *vq, double *rowstats)
{
    for (int r = 0; r < 32; r++) {
        const __m512d s = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(vs[r])),
                                        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(vs[r]), 1))));
        const __m512d q = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(vq[r])),
                                        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(vq[r]), 1))));
        rowstats[2 * r] += _mm512_reduce_add_pd(s);
        rowstats[2 * r + 1] += _mm512_reduce_add_pd(q);
    }
}

__attribute__((target("avx512f"))) void kk_dconv_block_amx(const kk_dconv *d, int ob0, int ob1, int t0, int t1)
{
    asan_check_block(d, ob0, ob1, t0, t1);
    const uint32_t *xb = (const uint32_t *)d->xp;
    const uint16_t *wp = (const uint16_t *)d->wp;
    const int nch = (d->cin + 31) / 32, K = d->K, dil = d->dil;
    const size_t ldb = d->ldx * sizeof(uint32_t), ldy = d->ldy * sizeof(float);
    float acc[4][256] __attribute__((aligned(64)));
    float bias[2][256] __attribute__((aligned(64)));
    __m512 vs[32], vq[32];
    load_config();
    for (int ob = ob0; ob < ob1; ob++) {
        for (int r = 0; r < 32; r++) vs[r] = vq[r] = _mm512_setzero_ps();
        const uint16_t *wo = wp + (size_t)ob * nch * K * 1024;
        for (int h = 0; h < 2; h++)
            for (int r = 0; r < 16; r++)
                for (int i = 0; i < 16; i++) bias[h][r * 16 + i] = d->b ? d->b[ob * 32 + h * 16 + r] : 0.0f;
        float *y0 = d->y + (size_t)ob * 32 * d->ldy, *y1 = y0 + 16 * d->ldy;
        const float *a0 = (d->acc_from ? d->acc_from : d->y) + (size_t)ob * 32 * d->ldy, *a1 = a0 + 16 * d->ldy;
        for (int t = t0; t < t1; t += 32) {
            const int whole = d->n - t >= 32;
            if (t + 64 <= d->n) /* the next block's output rows, to read (accumulating) or to own */
                for (int r = 0; r < 32; r++) {
                    const float *yn = y0 + (size_t)r * d->ldy + t + 32;
                    __builtin_prefetch(yn, 1, 3);
                    __builtin_prefetch(yn + 16, 1, 3);
                    if (d->acc_from) {
                        __builtin_prefetch(a0 + (size_t)r * d->ldy + t + 32, 0, 3);
                        __builtin_prefetch(a0 + (size_t)r * d->ldy + t + 48, 0, 3);
                    }
                }
            if (whole && d->accumulate) {
                _tile_loadd(0, a0 + t, ldy);
                _tile_loadd(1, a0 + t + 16, ldy);
                _tile_loadd(2, a1 + t, ldy);
                _tile_loadd(3, a1 + t + 16, ldy);
            } else {
                _tile_loadd(0, bias[0], 64);
                _tile_loadd(1, bias[0], 64);
                _tile_loadd(2, bias[1], 64);
                _tile_loadd(3, bias[1], 64);
            }
            const uint16_t *w = wo;
            for (int ch = 0; ch < nch; ch++) {
                const uint32_t *xc = xb + (size_t)ch * 16 * d->ldx + t;
                for (int j = 0; j < K; j++, w += 1024) {
                    _tile_loadd(4, w, 64);
                    _tile_loadd(5, w + 512, 64);
                    _tile_loadd(6, xc + j * dil, ldb);
                    _tile_loadd(7, xc + j * dil + 16, ldb);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
            if (whole && !d->combine && !(d->accumulate && d->b)) {
                _tile_stored(0, y0 + t, ldy);
                _tile_stored(1, y0 + t + 16, ldy);
                _tile_stored(2, y1 + t, ldy);
                _tile_stored(3, y1 + t + 16, ldy);
                if (d->rowstats) stats_block(y0, d->ldy, t, 32, vs, vq);
                continue;
            }
            _tile_stored(0, acc[0], 64);
            _tile_stored(1, acc[1], 64);
            _tile_stored(2, acc[2], 64);
            _tile_stored(3, acc[3], 64);
            if (whole) { /* accumulating with a bias (tiles began from acc_from), or combining */
                const __m512 third = _mm512_set1_ps(3.0f);
                for (int q = 0; q < 32; q++) {
                    const int h = q / 16, r = q % 16;
                    float *yr = y0 + (size_t)q * d->ldy + t;
                    const __m512 bb = _mm512_set1_ps(d->accumulate ? bias[h][r * 16] : 0.0f);
                    __m512 v0 = _mm512_add_ps(_mm512_load_ps(&acc[2 * h][r * 16]), bb),
                           v1 = _mm512_add_ps(_mm512_load_ps(&acc[2 * h + 1][r * 16]), bb);
                    if (d->rowstats) { /* the result's statistics, not the combined row's */
                        vs[q] = _mm512_add_ps(vs[q], _mm512_add_ps(v0, v1));
                        vq[q] = _mm512_fmadd_ps(v0, v0, _mm512_fmadd_ps(v1, v1, vq[q]));
                    }
                    if (d->combine) {
                        v0 = _mm512_add_ps(_mm512_loadu_ps(yr), v0);
                        v1 = _mm512_add_ps(_mm512_loadu_ps(yr + 16), v1);
                        if (d->combine == 2) v0 = _mm512_div_ps(v0, third), v1 = _mm512_div_ps(v1, third);
                    }
                    _mm512_storeu_ps(yr, v0);
                    _mm512_storeu_ps(yr + 16, v1);
                }
                continue;
            }
            const int nt = d->n - t;
            float res[32] __attribute__((aligned(64)));
            for (int h = 0; h < 2; h++)
                for (int r = 0; r < 16; r++) {
                    const size_t ro = (size_t)(h * 16 + r) * d->ldy + t;
                    float *yr = y0 + ro;
                    const float *ar = a0 + ro;
                    /* whole accumulating blocks began from acc_from, the bias to add; the others
                     * began from the bias, acc_from to add */
                    const float bb = whole && d->accumulate ? bias[h][r * 16] : 0.0f;
                    for (int i = 0; i < nt; i++) {
                        float v = acc[2 * h + i / 16][r * 16 + i % 16] + bb;
                        if (!whole && d->accumulate) v = ar[i] + v;
                        res[i] = v;
                    }
                    if (d->combine == 1)
                        for (int i = 0; i < nt; i++) yr[i] += res[i];
                    else if (d->combine == 2)
                        for (int i = 0; i < nt; i++) yr[i] = (yr[i] + res[i]) / 3.0f;
                    else
                        for (int i = 0; i < nt; i++) yr[i] = res[i];
                    if (d->rowstats) { /* the result's statistics, not the combined row's */
                        const __mmask16 m0 = nt >= 16 ? 0xFFFF : (__mmask16)((1u << nt) - 1),
                                        m1 = nt >= 32 ? 0xFFFF : nt > 16 ? (__mmask16)((1u << (nt - 16)) - 1) : 0;
                        const __m512 x0 = _mm512_maskz_loadu_ps(m0, res), x1 = _mm512_maskz_loadu_ps(m1, res + 16);
                        const int q = h * 16 + r;
                        vs[q] = _mm512_add_ps(vs[q], _mm512_add_ps(x0, x1));
                        vq[q] = _mm512_fmadd_ps(x0, x0, _mm512_fmadd_ps(x1, x1, vq[q]));
                    }
                }
        }
        if (d->rowstats) stats_add(vs, vq, d->rowstats + (size_t)ob * 64);
    }
    _tile_release();
}

/* The TDPBF16PS peak of one thread: FLOPs of a loop over four independent
 * accumulator tiles (the caller times it). */
double kk_amx_loop(long iters)
{
    static uint16_t a[512] __attribute__((aligned(64)));
    for (int i = 0; i < 512; i++) a[i] = 0x3F80; /* 1.0 */
    load_config();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a, 64);
    _tile_loadd(6, a, 64);
    _tile_loadd(7, a, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_release();
    return 4.0 * 16 * 16 * 32 * 2 * (double)iters;
}

#else /* not built for AMX: never called (kk_amx_supported() is 0) */

int kk_amx_supported(void) { return 0; }
int kk_amx_fits(int cout)
{
    (void)cout;
    return 0;
}
void kk_dconv_pack_amx(const float *W, int cout, int cin, int K, uint16_t *wp)
{
    (void)W, (void)cout, (void)cin, (void)K, (void)wp;
}
void kk_dconv_block_amx(const kk_dconv *d, int ob0, int ob1, int t0, int t1)
{
    (void)d, (void)ob0, (void)ob1, (void)t0, (void)t1;
}
double kk_amx_loop(long iters)
{
    (void)iters;
    return 0;
}

#endif
