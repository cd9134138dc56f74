/* The direct convolution and the fused AdaIN+Snake pass on every kernel
 * path this CPU runs (generic, AVX2, AVX-512), against plain double
 * references; then the golden generator stages and a whole golden case with
 * each path forced through KOKORO_ISA, as the runtime dispatch does. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/parallel.h"
#include "core/sanitize.h"
#include "model/blocks.h"
#include "model/model.h"
#include "nn/dconv.h"
#include "nn/fconv.h"
#include "nn/nn.h"
#include "nn/vmath.h"
#include "testutil.h"

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* y = conv(x) (+ y0) with zero padding, in double */
static void ref_conv(const float *x, int cin, int n, const float *W, const float *b, int cout, int K, int dil,
                     const float *y0, double *y)
{
    int pad = dil * (K - 1) / 2;
    for (int o = 0; o < cout; o++)
        for (int t = 0; t < n; t++) {
            double acc = b ? b[o] : 0;
            for (int c = 0; c < cin; c++)
                for (int j = 0; j < K; j++) {
                    int p = t + j * dil - pad;
                    if (p >= 0 && p < n) acc += (double)W[((size_t)o * cin + c) * K + j] * x[(size_t)c * n + p];
                }
            y[(size_t)o * n + t] = acc + (y0 ? y0[(size_t)o * n + t] : 0);
        }
}

static void check_conv(kk_isa isa, int cin, int cout, int K, int dil, int n, int with_bias, int accumulate,
                       int threads)
{
    unsigned s = (unsigned)(cin * 7919 + cout * 31 + K * 7 + n);
    int pad = dil * (K - 1) / 2;
    size_t ldx = kk_dconv_ldx(n, K, dil);
    float *x = malloc((size_t)cin * n * sizeof *x), *W = malloc((size_t)cout * cin * K * sizeof *W);
    float *b = malloc((size_t)cout * sizeof *b), *y = malloc((size_t)cout * n * sizeof *y);
    float *y0 = malloc((size_t)cout * n * sizeof *y0), *xp = calloc((size_t)cin * ldx, sizeof *xp);
    float *wp = malloc(kk_dconv_pack_floats(isa, cout, cin, K) * sizeof *wp);
    double *ref = malloc((size_t)cout * n * sizeof *ref);
    assert_true(x && W && b && y && y0 && xp && wp && ref);
    for (size_t i = 0; i < (size_t)cin * n; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)cout * cin * K; i++) W[i] = frand(&s);
    for (int i = 0; i < cout; i++) b[i] = frand(&s);
    for (size_t i = 0; i < (size_t)cout * n; i++) y[i] = y0[i] = frand(&s);
    for (int c = 0; c < cin; c++) memcpy(xp + (size_t)c * ldx + pad, x + (size_t)c * n, (size_t)n * sizeof *x);
    kk_dconv_pack(isa, W, cout, cin, K, wp);
    kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = with_bias ? b : NULL, .cin = cin, .cout = cout, .K = K,
                  .dil = dil, .n = n, .y = y, .ldy = (size_t)n, .accumulate = accumulate};
    kk_dconv_run(isa, &d, threads);
    ref_conv(x, cin, n, W, with_bias ? b : NULL, cout, K, dil, accumulate ? y0 : NULL, ref);
    double worst = 0;
    for (size_t i = 0; i < (size_t)cout * n; i++) {
        double e = fabs(y[i] - ref[i]) / (1 + fabs(ref[i]));
        worst = e > worst ? e : worst;
    }
    if (worst > 2e-6)
        printf("  %s cin %d cout %d K %d dil %d n %d: max rel err %.2e\n", kk_isa_name(isa), cin, cout, K, dil, n,
               worst);
    assert_true(worst <= 2e-6);
    free(x), free(W), free(b), free(y), free(y0), free(xp), free(wp), free(ref);
}

static void test_dconv_matches_reference(void **state)
{
    (void)state;
    int ran = 0;
    for (int i = 0; i < KK_ISA_COUNT; i++) {
        kk_isa isa = (kk_isa)i;
        if (!kk_isa_supported(isa)) continue;
        ran++;
        /* odd channel counts (partial row blocks), lengths shorter than one
         * register tile and not a multiple of it, every dilation, both modes */
        check_conv(isa, 5, 7, 3, 1, 1, 1, 0, 1);
        check_conv(isa, 5, 7, 3, 2, 13, 0, 1, 2);
        check_conv(isa, 16, 16, 11, 5, 101, 1, 1, 3);
        check_conv(isa, 9, 24, 7, 3, 250, 1, 0, 2);
        check_conv(isa, 32, 8, 1, 1, 97, 1, 1, 1);
        check_conv(isa, 3, 130, 5, 1, 1000, 1, 0, 4);
        /* tasks of grown row-block groups, the last one partial (avx512: 16 + 9 blocks) */
        check_conv(isa, 4, 200, 3, 1, 5000, 1, 1, 8);
        printf("  dconv %-8s matches the double reference\n", kk_isa_name(isa));
    }
    assert_true(ran >= 1);
    assert_true(kk_isa_supported(KK_ISA_GENERIC));
}

/* The FFT convolution (nn/fconv.h) against the double reference: FFT sizes 32–128,
 * one partial block, blocks reaching past the padded rows' end, several chunks with a
 * partial last group of 16, both modes; the same bytes (output and row statistics) on 1
 * and 3 threads, the second run accumulating from acc_from into rows of NaN; the row
 * statistics against sums of the output; the input made from AdaIN+Snake parameters as the
 * transforms read it, bit for bit the rows made first. */
static double check_fconv(int C, int K, int dil, int n, int N, int bc, int with_bias, int accumulate)
{
    unsigned s = (unsigned)(C * 7919 + K * 31 + dil * 7 + n + N);
    const int pad = dil * (K - 1) / 2;
    const size_t ldx = kk_dconv_ldx(n, K, dil), cn = (size_t)C * n;
    kk_fconv_plan p;
    assert_true(kk_fconv_plan_n(C, C, K, dil, n, N, bc, &p));
    float *x = malloc(cn * sizeof *x), *W = malloc((size_t)C * C * K * sizeof *W), *b = malloc(C * sizeof *b);
    float *y0 = malloc(cn * sizeof *y0), *y1 = malloc(cn * sizeof *y1), *y3 = malloc(cn * sizeof *y3);
    float *xp = calloc((size_t)C * ldx, sizeof *xp), *wp = malloc(kk_dconv_pack_floats(KK_ISA_AVX512, C, C, K) * 4);
    float *ws = malloc(kk_fconv_ws_floats(&p, 3) * sizeof *ws);
    double *ref = malloc(cn * sizeof *ref);
    assert_true(x && W && b && y0 && y1 && y3 && xp && wp && ws && ref);
    for (size_t i = 0; i < cn; i++) x[i] = frand(&s);
    for (size_t i = 0; i < (size_t)C * C * K; i++) W[i] = frand(&s);
    for (int i = 0; i < C; i++) b[i] = frand(&s);
    for (size_t i = 0; i < cn; i++) y0[i] = y1[i] = y3[i] = frand(&s);
    for (int c = 0; c < C; c++) memcpy(xp + (size_t)c * ldx + pad, x + (size_t)c * n, (size_t)n * sizeof *x);
    kk_dconv_pack(KK_ISA_AVX512, W, C, C, K, wp);
    kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = with_bias ? b : NULL, .cin = C, .cout = C, .K = K,
                  .dil = dil, .n = n, .y = y1, .ldy = (size_t)n, .accumulate = accumulate};
    for (size_t i = 0; i < kk_fconv_ws_floats(&p, 3); i++) ws[i] = NAN; /* stale values must not leak in */
    double *st1 = calloc(2 * (size_t)C, sizeof *st1), *st3 = calloc(2 * (size_t)C, sizeof *st3);
    assert_true(st1 && st3);
    d.rowstats = st1;
    kk_fconv_run(&p, &d, NULL, ws, 1);
    /* 3 threads; accumulating from acc_from (a copy of y's start) into rows that hold NaN */
    float *from = malloc(cn * sizeof *from);
    assert_true(from);
    memcpy(from, y3, cn * sizeof *from);
    for (size_t i = 0; i < cn; i++) y3[i] = NAN;
    d.y = y3, d.acc_from = accumulate ? from : NULL, d.rowstats = st3;
    kk_fconv_run(&p, &d, NULL, ws, 3);
    assert_memory_equal(y1, y3, cn * sizeof *y1);
    assert_memory_equal(st1, st3, 2 * (size_t)C * sizeof *st1);
    for (int o = 0; o < C; o++) { /* each row's sum and sum of squares */
        double sum = 0, sq = 0;
        for (int t = 0; t < n; t++) sum += y1[(size_t)o * n + t], sq += (double)y1[(size_t)o * n + t] * y1[(size_t)o * n + t];
        assert_true(fabs(st1[2 * o] - sum) <= 1e-9 * (1 + sq) && fabs(st1[2 * o + 1] - sq) <= 1e-9 * (1 + sq));
    }
    /* into a running mean (the generator's mean of three resblocks): out + the result, then
     * (out + the result) / 3, each bit for bit what the plain result gives; statistics of the result */
    float *out = malloc(cn * sizeof *out), *start = malloc(cn * sizeof *start);
    assert_true(out && start);
    for (size_t i = 0; i < cn; i++) start[i] = frand(&s);
    for (int mode = 1; mode <= 2; mode++) {
        memcpy(out, start, cn * sizeof *out);
        memset(st3, 0, 2 * (size_t)C * sizeof *st3);
        d.y = out, d.acc_from = accumulate ? from : NULL, d.rowstats = st3, d.combine = mode;
        kk_fconv_run(&p, &d, NULL, ws, 2);
        for (size_t i = 0; i < cn; i++) {
            float e = start[i] + y1[i];
            if (mode == 2) e = e / 3.0f;
            assert_memory_equal(&out[i], &e, sizeof e);
        }
        assert_memory_equal(st1, st3, 2 * (size_t)C * sizeof *st1);
    }
    d.combine = 0;
    /* the input made by the transforms from AdaIN+Snake parameters (d->xp not read): the bytes of the
     * same rows made first (kk_snake_affine after pad zeros), on 1 and 3 threads */
    float *m = malloc(4 * (size_t)C * sizeof *m), *xs = calloc((size_t)C * ldx, sizeof *xs);
    assert_true(m && xs);
    for (int c = 0; c < C; c++) {
        m[c] = 0.1f * frand(&s), m[C + c] = 1.0f + 0.5f * frand(&s), m[2 * C + c] = 0.2f * frand(&s);
        m[3 * C + c] = 0.6f + 0.3f * frand(&s);
        kk_snake_affine(KK_ISA_AVX512, x + (size_t)c * n, n, m[c], m[C + c], m[2 * C + c], m[3 * C + c],
                        xs + (size_t)c * ldx + pad);
    }
    kk_snake_in in = {.x = x, .ldx = (size_t)n, .m = m, .scale = m + C, .shift = m + 2 * C, .alpha = m + 3 * C,
                      .pad = pad};
    memcpy(out, start, cn * sizeof *out), memcpy(y3, start, cn * sizeof *y3);
    memset(st1, 0, 2 * (size_t)C * sizeof *st1);
    d.xp = xs, d.y = out, d.acc_from = NULL, d.rowstats = st1;
    kk_fconv_run(&p, &d, NULL, ws, 1);
    for (int th = 1; th <= 3; th += 2) {
        memcpy(y3, start, cn * sizeof *y3);
        memset(st3, 0, 2 * (size_t)C * sizeof *st3);
        d.xp = NULL, d.y = y3, d.rowstats = st3;
        kk_fconv_run(&p, &d, &in, ws, th);
        assert_memory_equal(out, y3, cn * sizeof *y3);
        assert_memory_equal(st1, st3, 2 * (size_t)C * sizeof *st1);
    }
    d.xp = xp;
    free(m), free(xs);
    free(st1), free(st3), free(from), free(out), free(start);
    ref_conv(x, C, n, W, with_bias ? b : NULL, C, K, dil, accumulate ? y0 : NULL, ref);
    /* the FFT spreads each output's round-off over the block: the error against the rms output */
    double worst = 0, ss = 0;
    for (size_t i = 0; i < cn; i++) {
        double e = fabs(y1[i] - ref[i]);
        worst = e > worst ? e : worst;
        ss += ref[i] * ref[i];
    }
    worst /= sqrt(ss / cn);
    printf("  fconv C %3d K %2d dil %d n %5d N %3d (L %3d, %3d blocks, chunks of %3d): max |err| / rms %.2e\n", C, K,
           dil, n, N, p.L, p.nb, p.bc, worst);
    free(x), free(W), free(b), free(y0), free(y1), free(y3), free(xp), free(wp), free(ws), free(ref);
    return worst;
}

static void test_fconv_matches_reference(void **state)
{
    (void)state;
    if (!kk_fconv_compiled() || !kk_isa_supported(KK_ISA_AVX512)) {
        printf("  fconv: no AVX-512 here (the direct kernel serves every convolution)\n");
        return;
    }
    static const int cases[][8] = {
        /* C, K, dil, n, N, chunk, bias, accumulate */
        {16, 3, 1, 1, 32, 192, 1, 0},     /* one block, one step */
        {16, 11, 5, 333, 64, 192, 0, 1},  /* L 14 */
        {32, 7, 3, 5000, 64, 16, 1, 1},   /* many chunks of one group */
        {32, 11, 1, 2000, 128, 48, 1, 0}, /* blocks past the padded rows' end (L 118 > their 48-step tail) */
        {16, 3, 5, 130, 128, 192, 1, 1},
        {48, 7, 5, 4321, 128, 96, 0, 0},
        {128, 11, 5, 2500, 128, 192, 1, 1}, /* the generator's shape */
        /* even dilations: bin N/2 − f's weights are conj(E + O), not conj(E − O) (even/odd taps) */
        {32, 7, 2, 3000, 64, 96, 1, 0},
        {16, 4, 4, 777, 32, 48, 0, 1}, /* an even tap count: no lone last tap */
        {64, 11, 5, 3001, 256, 48, 1, 1}, /* the largest size (L 206) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int *c = cases[i];
        assert_true(check_fconv(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]) <= 1e-5);
    }
    /* the choice: the generator's long convolutions, not short ones, not with the variable at 0 */
    kk_fconv_plan p;
    assert_true(kk_fconv_choose(KK_ISA_AVX512, 128, 128, 11, 5, 77160, &p));
    assert_int_equal(p.N, 256);
    assert_true(kk_fconv_choose(KK_ISA_AVX512, 128, 128, 11, 3, 77160, &p));
    assert_int_equal(p.N, 128);
    assert_true(kk_fconv_choose(KK_ISA_AVX512, 256, 256, 7, 1, 12860, &p));
    assert_true(kk_fconv_choose(KK_ISA_AVX512, 128, 128, 3, 5, 77160, &p)); /* the direct kernel's input pass counted */
    assert_int_equal(p.N, 64);
    assert_false(kk_fconv_choose(KK_ISA_AVX512, 128, 128, 3, 1, 20, &p));
    assert_false(kk_fconv_choose(KK_ISA_AVX2, 128, 128, 11, 5, 77160, &p));
    assert_false(kk_fconv_choose(KK_ISA_AVX512, 100, 100, 11, 5, 77160, &p));
    setenv("KOKORO_FFTCONV", "0", 1);
    assert_false(kk_fconv_choose(KK_ISA_AVX512, 128, 128, 11, 5, 77160, &p));
    unsetenv("KOKORO_FFTCONV");
    assert_false(kk_fconv_plan_n(16, 16, 11, 5, 100, 32, 192, &p)); /* span 50 does not fit 32 points */
    assert_false(kk_fconv_plan_n(16, 16, 3, 1, 100, 512, 192, &p));  /* past the largest size */
    assert_false(kk_fconv_plan_n(16, 16, 33, 1, 1000, 256, 192, &p)); /* more taps than the bins' tables hold */
}

/* The float32 convolutions with many input channels over long rows (the decoder's): a GEMM per
 * tap over the shifted padded rows (blocks.c). Against the double reference on shapes of that
 * path (dilations 1–3, output rows not a multiple of 16, with and without bias) and two short
 * ones beside it (the direct kernel), the same bytes on 1, 2 and 3 threads (the output rows split
 * across them). */
static void test_tap_gemm_conv(void **state)
{
    (void)state;
    static const int cases[][5] = {/* cin, cout, K, dil, n (≥ 512: that path; 333 and 64: the direct kernel) */
                                   {512, 40, 3, 1, 512},   {600, 100, 3, 3, 777}, {514, 1024, 3, 1, 640},
                                   {1090, 24, 5, 1, 1001}, {512, 64, 7, 2, 1500}, {512, 40, 3, 1, 333},
                                   {600, 100, 3, 3, 64}};
    const int saved = kk_threads();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int cin = cases[i][0], cout = cases[i][1], K = cases[i][2], dil = cases[i][3], n = cases[i][4];
        const int pad = dil * (K - 1) / 2, with_bias = i % 2 == 0;
        unsigned s = (unsigned)(cin * 31 + cout * 7 + n);
        float *x = malloc((size_t)cin * n * sizeof *x), *W = malloc((size_t)cout * cin * K * sizeof *W);
        float *b = malloc((size_t)cout * sizeof *b), *y1 = malloc((size_t)cout * n * sizeof *y1);
        float *y = malloc((size_t)cout * n * sizeof *y);
        double *ref = malloc((size_t)cout * n * sizeof *ref);
        assert_true(x && W && b && y1 && y && ref);
        for (size_t k = 0; k < (size_t)cin * n; k++) x[k] = frand(&s);
        for (size_t k = 0; k < (size_t)cout * cin * K; k++) W[k] = frand(&s) / sqrtf((float)(cin * K));
        for (int k = 0; k < cout; k++) b[k] = frand(&s);
        const kk_conv c = {.w = W, .b = with_bias ? b : NULL, .cout = cout, .cin = cin, .k = K};
        for (int nt = 1; nt <= 3; nt++) {
            kokoro_set_num_threads(nt);
            for (size_t k = 0; k < (size_t)cout * n; k++) y[k] = NAN;
            assert_int_equal(kk_conv_apply(&c, x, n, 1, pad, dil, nt == 1 ? y1 : y), n);
            if (nt > 1) assert_memory_equal(y1, y, (size_t)cout * n * sizeof *y);
        }
        ref_conv(x, cin, n, W, with_bias ? b : NULL, cout, K, dil, NULL, ref);
        double worst = 0, ss = 0;
        for (size_t k = 0; k < (size_t)cout * n; k++) {
            const double e = fabs(y1[k] - ref[k]);
            worst = e > worst ? e : worst, ss += ref[k] * ref[k];
        }
        worst /= sqrt(ss / ((double)cout * n));
        printf("  conv cin %4d cout %4d K %d dil %d n %4d (%s): max |err| / rms %.2e\n", cin, cout, K, dil, n,
               n >= 512 ? "GEMM per tap" : "direct kernel", worst);
        assert_true(worst <= 1e-5);
        free(x), free(W), free(b), free(y1), free(y), free(ref);
    }
    kokoro_set_num_threads(saved);
}

/* kk_conv1d and kk_conv1d_d at stride 1: a GEMM per tap over x shifted by the tap, each on the
 * output steps whose input lies inside x (outputs at least as many as the output channels).
 * Against a double reference: padding as the model's ("same"), none (shorter output), more than
 * the span (longer output, taps wholly outside x for some steps), dilations 1–3, with and
 * without bias; the same bytes on 1–3 threads; im2col beside them (a row shorter than the span
 * and the output channels, stride 2). */
static void test_conv1d_taps(void **state)
{
    (void)state;
    static const int cases[][7] = {/* cin, cout, k, pad, dil, n, stride */
                                   {512, 64, 3, 1, 1, 700, 1}, {40, 24, 5, 0, 1, 300, 1},  {16, 8, 3, 6, 3, 50, 1},
                                   {8, 16, 7, 3, 1, 4, 1},      {300, 256, 3, 2, 2, 900, 1}, {24, 40, 12, 3, 1, 400, 2}};
    const int saved = kk_threads();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int cin = cases[i][0], cout = cases[i][1], K = cases[i][2], pad = cases[i][3], dil = cases[i][4];
        const int n = cases[i][5], stride = cases[i][6], nout = kk_conv1d_len(n, K, stride, pad, dil);
        const int with_bias = i % 2 == 0;
        assert_true(nout > 0);
        unsigned s = (unsigned)(cin * 13 + cout * 5 + K + n);
        float *x = malloc((size_t)cin * n * sizeof *x), *W = malloc((size_t)cout * cin * K * sizeof *W);
        float *b = malloc((size_t)cout * sizeof *b), *y1 = malloc((size_t)cout * nout * sizeof *y1);
        float *y = malloc((size_t)cout * nout * sizeof *y);
        double *xd = malloc((size_t)cin * n * sizeof *xd), *Wd = malloc((size_t)cout * cin * K * sizeof *Wd);
        double *bd = malloc((size_t)cout * sizeof *bd), *yd1 = malloc((size_t)cout * nout * sizeof *yd1);
        double *yd = malloc((size_t)cout * nout * sizeof *yd), *ref = malloc((size_t)cout * nout * sizeof *ref);
        assert_true(x && W && b && y1 && y && xd && Wd && bd && yd1 && yd && ref);
        for (size_t q = 0; q < (size_t)cin * n; q++) xd[q] = x[q] = frand(&s);
        for (size_t q = 0; q < (size_t)cout * cin * K; q++) Wd[q] = W[q] = frand(&s) / sqrtf((float)(cin * K));
        for (int q = 0; q < cout; q++) bd[q] = b[q] = frand(&s);
        for (int o = 0; o < cout; o++)
            for (int t = 0; t < nout; t++) {
                double acc = with_bias ? b[o] : 0;
                for (int c = 0; c < cin; c++)
                    for (int j = 0; j < K; j++) {
                        const int p = t * stride + j * dil - pad;
                        if (p >= 0 && p < n) acc += (double)W[((size_t)o * cin + c) * K + j] * x[(size_t)c * n + p];
                    }
                ref[(size_t)o * nout + t] = acc;
            }
        for (int nt = 1; nt <= 3; nt++) {
            kokoro_set_num_threads(nt);
            for (size_t q = 0; q < (size_t)cout * nout; q++) y[q] = NAN, yd[q] = NAN;
            assert_int_equal(kk_conv1d(x, cin, n, W, with_bias ? b : NULL, cout, K, stride, pad, dil, nt == 1 ? y1 : y),
                             nout);
            assert_int_equal(kk_conv1d_d(xd, cin, n, Wd, with_bias ? bd : NULL, cout, K, stride, pad, dil,
                                         nt == 1 ? yd1 : yd),
                             nout);
            if (nt > 1) {
                assert_memory_equal(y1, y, (size_t)cout * nout * sizeof *y);
                assert_memory_equal(yd1, yd, (size_t)cout * nout * sizeof *yd);
            }
        }
        double ef = 0, ed = 0, ss = 0;
        for (size_t q = 0; q < (size_t)cout * nout; q++) {
            ef = fmax(ef, fabs(y1[q] - ref[q])), ed = fmax(ed, fabs(yd1[q] - ref[q]));
            ss += ref[q] * ref[q];
        }
        const double rms = sqrt(ss / ((double)cout * nout));
        printf("  conv1d cin %3d cout %3d K %2d pad %d dil %d n %3d stride %d: max |err| / rms float %.2e, double %.2e\n",
               cin, cout, K, pad, dil, n, stride, ef / rms, ed / rms);
        assert_true(ef / rms <= 1e-5 && ed / rms <= 1e-12);
        free(x), free(W), free(b), free(y1), free(y), free(xd), free(Wd), free(bd), free(yd1), free(yd), free(ref);
    }
    kokoro_set_num_threads(saved);
}

#ifdef KK_ASAN
/* One convolution in a child process whose input (short_x) or output
 * (short_y) buffer ends exactly where the kernel's reach ends, or one float
 * before; returns the child's exit status, its stderr in err. */
static int conv_in_child(kk_isa isa, int short_x, int short_y, char *err, size_t errsz)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        if (isa == KK_ISA_COUNT) { /* the AMX kernel: bf16 pair rows in, 32-row blocks */
            const int cin = 64, cout = 32, K = 7, dil = 3, n = 96;
            size_t ldx = kk_dconv_ldx(n, K, dil), reach = (size_t)n + (size_t)(K - 1) * dil;
            size_t nx = (size_t)(cin / 2 - 1) * ldx + reach - (short_x ? 1 : 0);
            size_t ny = (size_t)cout * n - (short_y ? 1 : 0);
            uint32_t *xb = calloc(nx, sizeof *xb);
            uint32_t *wp = calloc(kk_amx_pack_words(cout, cin, K), sizeof *wp);
            float *y = calloc(ny, sizeof *y);
            if (!xb || !y || !wp) _exit(3);
            kk_dconv d = {.xp = (const float *)xb, .ldx = ldx, .wp = (const float *)wp, .cin = cin, .cout = cout,
                          .K = K, .dil = dil, .n = n, .y = y, .ldy = (size_t)n};
            kk_dconv_run_amx(&d, 1);
            free(xb), free(y), free(wp);
            _exit(0);
        }
        const int cin = 9, cout = 11, K = 7, dil = 3, n = 96; /* n: whole tiles on every path */
        size_t ldx = kk_dconv_ldx(n, K, dil), reach = (size_t)n + (size_t)(K - 1) * dil;
        size_t nx = (size_t)(cin - 1) * ldx + reach - (short_x ? 1 : 0), ny = (size_t)cout * n - (short_y ? 1 : 0);
        float *xp = calloc(nx, sizeof *xp), *y = calloc(ny, sizeof *y);
        float *wp = calloc(kk_dconv_pack_floats(isa, cout, cin, K), sizeof *wp);
        if (!xp || !y || !wp) _exit(3);
        kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .cin = cin, .cout = cout, .K = K, .dil = dil, .n = n,
                      .y = y, .ldy = (size_t)n};
        kk_dconv_run(isa, &d, 1);
        free(xp), free(y), free(wp);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t k;
    char chunk[4096];
    while ((k = read(fd[0], chunk, sizeof chunk)) > 0) { /* to the end, keeping what fits */
        size_t take = (size_t)k < errsz - 1 - got ? (size_t)k : errsz - 1 - got;
        memcpy(err + got, chunk, take);
        got += take;
    }
    err[got] = 0;
    close(fd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

#endif

/* Under ASan the convolution's tile runs uninstrumented and its caller
 * checks the ranges (core/sanitize.h): an input or output one float too
 * short must still be reported, an exact one must not be. */
static void test_asan_sees_dconv_overflow(void **state)
{
    (void)state;
#ifndef KK_ASAN
    printf("  not an AddressSanitizer build\n");
    skip();
#else
    static char err[65536];
    for (int i = 0; i <= KK_ISA_COUNT; i++) { /* KK_ISA_COUNT: the AMX kernel */
        kk_isa isa = (kk_isa)i;
        if (i < KK_ISA_COUNT ? !kk_isa_supported(isa) : !kk_amx_supported()) continue;
        int st = conv_in_child(isa, 0, 0, err, sizeof err);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) printf("%s\n", err);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        for (int which = 0; which < 2; which++) {
            st = conv_in_child(isa, which == 0, which == 1, err, sizeof err);
            assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            assert_non_null(strstr(err, "heap-buffer-overflow"));
            assert_non_null(strstr(err, "asan_check_block"));
        }
        printf("  dconv %-8s under ASan: a one-float overrun of its input or output is reported\n",
               i < KK_ISA_COUNT ? kk_isa_name(isa) : "amx");
    }
#endif
}

static void test_snake_matches_libm(void **state)
{
    (void)state;
    enum { N = 4099 };
    static float x[N], out[N];
    unsigned s = 7;
    for (int i = 0; i < N; i++) x[i] = 40.0f * frand(&s);
    /* beyond the polynomial's range reduction: the libm fallback */
    x[5] = 3e5f, x[17] = -1e7f, x[100] = 40000.0f, x[N - 1] = 1e30f;
    const float m = 0.25f, scale = 1.7f, shift = -0.3f, a = 0.8f;
    for (int i = 0; i < KK_ISA_COUNT; i++) {
        kk_isa isa = (kk_isa)i;
        if (!kk_isa_supported(isa)) continue;
        kk_snake_affine(isa, x, N, m, scale, shift, a, out);
        double worst = 0;
        for (int t = 0; t < N; t++) {
            double v = ((double)x[t] - m) * scale + shift, sn = sin((double)((float)v * a));
            double ref = (float)v + sn * sn / a;
            double e = fabs(out[t] - ref) / (1 + fabs(ref));
            worst = e > worst ? e : worst;
        }
        printf("  snake %-8s max rel err %.2e (tol 1e-6)\n", kk_isa_name(isa), worst);
        assert_true(worst <= 1e-6);
        /* a row made in parts (as the FFT convolution's transforms make it): the whole row's bits,
         * parts shorter than a vector, across the vectors' end (N − N % VL) and in the scalar tail,
         * lanes of the libm fallback included */
        static const int parts[][2] = {{0, N},   {0, 1},     {3, 9},     {5, 6},     {1, 100},       {17, 50},
                                       {4090, 4099}, {4095, 4099}, {4080, 4097}, {4083, 4090}, {4098, 4099}, {2000, 4099},
                                       {0, 16},  {16, 33},   {4000, 4096}};
        static float part[N];
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            const int t0 = parts[k][0], t1 = parts[k][1];
            memset(part, 0xff, sizeof part);
            kk_snake_affine_part(isa, x, N, t0, t1, m, scale, shift, a, part);
            assert_memory_equal(part, out + t0, (size_t)(t1 - t0) * sizeof *part);
            assert_int_equal(((uint32_t *)part)[t1 - t0 < N ? t1 - t0 : 0] == 0xffffffffu, t1 - t0 < N);
        }
    }
}

static void test_isa_override(void **state)
{
    (void)state;
    kk_isa best = kk_isa_active();
    setenv("KOKORO_ISA", "generic", 1);
    assert_int_equal(kk_isa_active(), KK_ISA_GENERIC);
    setenv("KOKORO_ISA", "no-such-path", 1); /* unknown: the best path */
    assert_int_equal(kk_isa_active(), best);
    unsetenv("KOKORO_ISA");
    assert_int_equal(kk_isa_active(), best);
    assert_string_equal(kk_isa_name(KK_ISA_AVX512), "avx512");
}

/* bf16 pairs: exact bits for representable values, round to nearest even */
static void test_bf16_pairs(void **state)
{
    (void)state;
    if (!kk_bf16_supported()) {
        printf("  AVX512-BF16 not available here: bf16 kernels not run\n");
        assert_false(kokoro_dtype_supported(KOKORO_DTYPE_BF16));
        return;
    }
    assert_true(kokoro_dtype_supported(KOKORO_DTYPE_BF16));
    float x0[19], x1[19];
    uint32_t out[19];
    for (int i = 0; i < 19; i++) x0[i] = 1.0f, x1[i] = -2.0f;
    /* 1 + 2^-8 lies halfway between bf16 1 and 1 + 2^-7: ties to even (1);
     * 1 + 3·2^-8 lies halfway up from an odd mantissa: rounds up */
    x0[3] = 1.0f + 1.0f / 256, x0[18] = 1.0f + 3.0f / 256, x1[18] = 0.0f;
    kk_bf16_pair_row(x0, x1, 19, out);
    assert_int_equal(out[0], 0xC0003F80u);
    assert_int_equal(out[3], 0xC0003F80u);
    assert_int_equal(out[18], 0x00003F82u);
    kk_bf16_pair_row(x0, NULL, 19, out);
    assert_int_equal(out[5], 0x00003F80u);
}

/* the bf16 convolution against the double reference: bf16 rounding of
 * inputs and weights (2^-9 relative each) bounds the error */
static void test_bf16_conv(void **state)
{
    (void)state;
    if (!kk_bf16_supported()) return;
    static const int shapes[][4] = {{5, 7, 3, 1}, {16, 16, 11, 5}, {9, 24, 7, 3}, {130, 9, 3, 1}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int cin = shapes[k][0], cout = shapes[k][1], K = shapes[k][2], dil = shapes[k][3], n = 37 + 50 * (int)k;
        unsigned s = 99 + (unsigned)k;
        int pad = dil * (K - 1) / 2;
        size_t ldx = kk_dconv_ldx(n, K, dil);
        float *x = malloc((size_t)cin * n * sizeof *x), *W = malloc((size_t)cout * cin * K * sizeof *W);
        float *b = malloc((size_t)cout * sizeof *b), *y = malloc((size_t)cout * n * sizeof *y);
        float *xp = calloc((size_t)(cin + 1) * ldx, sizeof *xp);
        uint32_t *xb = calloc((size_t)(cin + 1) / 2 * ldx, sizeof *xb);
        uint32_t *wp = malloc(kk_dconv_pack_bf16_words(cout, cin, K) * sizeof *wp);
        double *ref = malloc((size_t)cout * n * sizeof *ref);
        assert_true(x && W && b && y && xp && xb && wp && ref);
        for (size_t i = 0; i < (size_t)cin * n; i++) x[i] = frand(&s);
        for (size_t i = 0; i < (size_t)cout * cin * K; i++) W[i] = frand(&s);
        for (int i = 0; i < cout; i++) b[i] = frand(&s);
        for (int c = 0; c < cin; c++) memcpy(xp + (size_t)c * ldx + pad, x + (size_t)c * n, (size_t)n * sizeof *x);
        for (int c = 0; c < cin; c += 2)
            kk_bf16_pair_row(xp + (size_t)c * ldx, c + 1 < cin ? xp + (size_t)(c + 1) * ldx : NULL, ldx,
                             xb + (size_t)(c / 2) * ldx);
        kk_dconv_pack_bf16(W, cout, cin, K, wp);
        kk_dconv d = {.xp = (const float *)xb, .ldx = ldx, .wp = (const float *)wp, .b = b, .cin = cin,
                      .cout = cout, .K = K, .dil = dil, .n = n, .y = y, .ldy = (size_t)n};
        kk_dconv_run_bf16(&d, 2);
        ref_conv(x, cin, n, W, b, cout, K, dil, NULL, ref);
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)cout * n; i++) num += (y[i] - ref[i]) * (y[i] - ref[i]), den += ref[i] * ref[i];
        double e = sqrt(num / den);
        printf("  bf16 conv cin %3d cout %2d K %2d dil %d n %3d: rel L2 %.2e (tol 1e-2)\n", cin, cout, K, dil, n, e);
        assert_true(e <= 1e-2 && e > 1e-5); /* really rounded, yet close */
        free(x), free(W), free(b), free(y), free(xp), free(xb), free(wp), free(ref);
    }
}

static kokoro_model *model;

static int setup(void **state)
{
    (void)state;
    if (kokoro_model_load_test_weights(&model) != KOKORO_OK) return -1;
    kt_golden();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kokoro_model_free(model);
    unsetenv("KOKORO_ISA");
    return 0;
}

static const float *G(const char *name) { return kt_golden_get(name)->data; }

/* the golden stage-1 generator (resblocks at 4.8 kHz + conv_post) and the
 * whole short case, on each path */
static void test_golden_every_path(void **state)
{
    (void)state;
    const kk_tensor *cp = kt_golden_get("short.decoder.generator.conv_post");
    const int F = (int)cp->shape[cp->ndim - 1];
    const float *u1 = G("short.decoder.generator.ups.1"), *r1 = G("short.decoder.generator.noise_res.1");
    const float *style = G("short.style");
    float *a = malloc(128 * (size_t)F * sizeof *a), *b = malloc(128 * (size_t)F * sizeof *b);
    assert_true(a && b);
    const kk_tensor *ids = kt_golden_get("short.input_ids");
    const kk_tensor *ref = kt_golden_get("short.audio");
    for (int i = 0; i < KK_ISA_COUNT; i++) {
        kk_isa isa = (kk_isa)i;
        if (!kk_isa_supported(isa)) continue;
        setenv("KOKORO_ISA", kk_isa_name(isa), 1);
        assert_int_equal(kk_isa_active(), isa);
        for (int c = 0; c < 128; c++)
            for (int t = 0; t < F; t++)
                a[(size_t)c * F + t] = u1[(size_t)c * (F - 1) + (t == 0 ? 1 : t - 1)] + r1[(size_t)c * F + t];
        assert_int_equal(kk_gen_resblocks(model, 1, a, F, style, b), KOKORO_OK);
        assert_int_equal(kk_gen_post(model, b, F, a, NULL), KOKORO_OK);
        double e = kt_rel_l2(a, cp->data, 22 * (size_t)F);
        kokoro_synth_options o = kokoro_synth_options_default();
        o.speed = G("short.speed")[0];
        o.no_noise = 1;
        kokoro_audio out;
        assert_int_equal(kokoro_synthesize(model, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2, style,
                                           &o, &out),
                         KOKORO_OK);
        assert_int_equal(out.n_samples, (size_t)ref->shape[0]);
        double ea = kt_rel_l2(out.samples, ref->data, out.n_samples);
        double corr = kt_spectral_corr(out.samples, ref->data, out.n_samples);
        printf("  %-8s conv_post rel L2 %.3e (tol 1e-4); short case rel L2 %.3e (tol 1e-2), spectral corr %.7f\n",
               kk_isa_name(isa), e, ea, corr);
        assert_true(e <= 1e-4);
        assert_true(ea <= 1e-2 && corr >= 0.9999);
        kokoro_audio_free(&out);
    }
    unsetenv("KOKORO_ISA");
    free(a), free(b);
}

/* GEMM splits: aligned parts, none (the last included) at or under OpenBLAS's
 * small-matrix size, and a split whenever the work allows one */
static void test_gemm_step(void **state)
{
    (void)state;
    const double least = (double)(1 << 21);
    int split = 0;
    for (int rows = 0; rows <= 1100; rows += rows < 80 ? 1 : 37)
        for (int align = 1; align <= 16; align *= 2)
            for (int nt = 1; nt <= 9; nt++)
                for (double per = 1e3; per <= 1e7; per *= 7.3) {
                    int step = kk_gemm_step(rows, align, per, nt);
                    assert_true(step >= 1);
                    if (step >= rows) continue; /* not split */
                    split++;
                    assert_int_equal(step % align, 0);
                    int parts = (rows + step - 1) / step, last = rows - (parts - 1) * step;
                    assert_true(parts >= 2 && parts <= nt);
                    assert_true((double)last * per >= least && (double)step * per >= least);
                }
    assert_true(split > 1000);
    /* ALBERT's FFN at 150 tokens on 2 threads: two halves */
    assert_int_equal(kk_gemm_step(3072, 16, 150.0 * 768, 2), 1536);
    assert_int_equal(kk_gemm_step(3072, 16, 150.0 * 768, 1), 3072);
    assert_int_equal(kk_gemm_step(3072, 16, 1.0 * 768, 2), 3072); /* one token: 2.4 M, one part */
}

/* The double LSTM (recurrent weights transposed, in float) against a plain
 * double one on every path: H 24 leaves the AVX-512 step a tail of gates past
 * its 128-gate blocks, H 256 is the model's */
static void ref_lstm_dir(const double *x, int T, int in, int H, const float *wih, const float *whh, const float *bih,
                         const float *bhh, int reverse, double *y)
{
    double *h = calloc((size_t)H, sizeof *h), *c = calloc((size_t)H, sizeof *c), *z = malloc(4 * (size_t)H * sizeof *z);
    assert_non_null(h), assert_non_null(c), assert_non_null(z);
    for (int s = 0; s < T; s++) {
        const int t = reverse ? T - 1 - s : s;
        for (int u = 0; u < 4 * H; u++) {
            double a = bih[u], r = bhh[u];
            for (int k = 0; k < in; k++) a += (double)wih[(size_t)u * in + k] * x[(size_t)t * in + k];
            for (int j = 0; j < H; j++) r += (double)whh[(size_t)u * H + j] * h[j];
            z[u] = a + r;
        }
        for (int u = 0; u < H; u++) {
            double ig = 1 / (1 + exp(-z[u])), fg = 1 / (1 + exp(-z[H + u])), gg = tanh(z[2 * H + u]);
            double og = 1 / (1 + exp(-z[3 * H + u]));
            c[u] = fg * c[u] + ig * gg, h[u] = og * tanh(c[u]);
        }
        for (int u = 0; u < H; u++) y[(size_t)t * 2 * H + (reverse ? H : 0) + u] = h[u];
    }
    free(h), free(c), free(z);
}

static void test_lstm_d_matches_reference(void **state)
{
    (void)state;
    const int T = 11, in = 40, Hs[2] = {24, 256}, saved = kokoro_get_num_threads();
    for (int hi = 0; hi < 2; hi++) {
        const int H = Hs[hi], G = 4 * H;
        unsigned seed = 99u + (unsigned)H;
        float *wf[2][4];
        double *wd[2][4];
        float *wt[2];
        kk_lstm_dir_d dir[2];
        const size_t len[4] = {(size_t)G * in, (size_t)G * H, (size_t)G, (size_t)G};
        for (int r = 0; r < 2; r++) {
            for (int k = 0; k < 4; k++) {
                wf[r][k] = malloc(len[k] * sizeof(float)), wd[r][k] = malloc(len[k] * sizeof(double));
                assert_non_null(wf[r][k]), assert_non_null(wd[r][k]);
                for (size_t i = 0; i < len[k]; i++) wd[r][k][i] = wf[r][k][i] = frand(&seed) * 0.3f;
            }
            wt[r] = malloc(len[1] * sizeof(float));
            assert_non_null(wt[r]);
            for (int u = 0; u < G; u++)
                for (int j = 0; j < H; j++) wt[r][(size_t)j * G + u] = wf[r][1][(size_t)u * H + j];
            dir[r] = (kk_lstm_dir_d){.w_ih = wd[r][0], .w_hh_t = wt[r], .b_ih = wd[r][2], .b_hh = wd[r][3]};
        }
        double *x = malloc((size_t)T * in * sizeof *x), *ref = malloc((size_t)T * 2 * H * sizeof *ref);
        double *y = malloc((size_t)T * 2 * H * sizeof *y);
        assert_non_null(x), assert_non_null(ref), assert_non_null(y);
        for (int i = 0; i < T * in; i++) x[i] = 2.0 * frand(&seed);
        for (int r = 0; r < 2; r++) ref_lstm_dir(x, T, in, H, wf[r][0], wf[r][1], wf[r][2], wf[r][3], r, ref);
        for (int p = 0; p < KK_ISA_COUNT; p++) {
            if (!kk_isa_supported((kk_isa)p)) continue;
            setenv("KOKORO_ISA", kk_isa_name((kk_isa)p), 1);
            for (int nt = 1; nt <= 2; nt++) {
                kokoro_set_num_threads(nt);
                memset(y, 0xff, (size_t)T * 2 * H * sizeof *y); /* NaN: every output must be written */
                assert_int_equal(kk_lstm_bi_d(x, T, in, &dir[0], &dir[1], H, y), 0);
                double worst = 0;
                for (int i = 0; i < T * 2 * H; i++) {
                    const double d = fabs(y[i] - ref[i]);
                    worst = d > worst || d != d ? d : worst;
                }
                if (!(worst < 1e-12)) fail_msg("LSTM H %d path %s threads %d: max |d| %g", H, kk_isa_name((kk_isa)p), nt, worst);
            }
        }
        unsetenv("KOKORO_ISA");
        kokoro_set_num_threads(saved);
        for (int r = 0; r < 2; r++) {
            for (int k = 0; k < 4; k++) free(wf[r][k]), free(wd[r][k]);
            free(wt[r]);
        }
        free(x), free(ref), free(y);
    }
}

/* libmvec's routines (vmath.h) against libm, odd lengths (the masked tails) and far-out inputs
 * included: GELU and the softmax exponential in double and in float, the sine, the polar form */
static void test_vmath_matches_libm(void **state)
{
    (void)state;
    if (!kk_vmath_compiled() || !kk_isa_supported(KK_ISA_AVX512)) skip();
    unsigned seed = 7;
    const size_t n = 1037;
    double *d = malloc(n * sizeof *d), *d0 = malloc(n * sizeof *d0);
    float *f = malloc(n * sizeof *f), *f0 = malloc(n * sizeof *f0);
    assert_true(d && d0 && f && f0);
    for (size_t i = 0; i < n; i++) d0[i] = f0[i] = i < 6 ? (float)(i % 2 ? -1 : 1) * (i < 2 ? 0.0f : i < 4 ? 40.0f : 90.0f)
                                                       : 8.0f * frand(&seed);
    for (size_t len = 1; len <= n; len = len * 3 + 1) {
        memcpy(d, d0, n * sizeof *d), memcpy(f, f0, n * sizeof *f);
        kk_gelu_tanh_avx512(d, len), kk_gelu_f_avx512(f, len);
        for (size_t i = 0; i < n; i++) {
            const double x = d0[i], want = i < len ? 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) : x;
            assert_true(fabs(d[i] - want) <= 1e-14 * (1 + fabs(want)));
            assert_true(fabsf(f[i] - (float)want) <= 2e-6f * (1 + fabsf((float)want)));
        }
        memcpy(d, d0, n * sizeof *d), memcpy(f, f0, n * sizeof *f);
        kk_exp_shift_avx512(d, len, 3.0), kk_exp_shift_f_avx512(f, len, 3.0f);
        for (size_t i = 0; i < n; i++) {
            const double want = i < len ? exp(d0[i] - 3.0) : d0[i];
            assert_true(fabs(d[i] - want) <= 1e-14 * fabs(want));
            assert_true(fabsf(f[i] - (float)want) <= 2e-6f * fabsf((float)want));
        }
        /* the harmonic source's sine (phases up to thousands of radians) and the STFT's polar form */
        for (size_t i = 0; i < n; i++) d[i] = d0[i] * 400.0;
        kk_sin_avx512(d, len);
        for (size_t i = 0; i < n; i++) assert_true(fabs(d[i] - (i < len ? sin(d0[i] * 400.0) : d0[i] * 400.0)) <= 1e-14 * (i < len ? 1 : 400 * (1 + fabs(d0[i]))));
        for (size_t i = 0; i < n; i++) f[i] = -1.0f;
        float *ph = malloc(n * sizeof *ph);
        assert_non_null(ph);
        kk_polar_avx512(d0, d0 + 1, len < n ? len : n - 1, f, ph);
        for (size_t i = 0; i + 1 < n; i++) {
            if (i >= len) {
                assert_true(f[i] == -1.0f);
                continue;
            }
            const double re = d0[i], im = d0[i + 1];
            assert_true(fabsf(f[i] - (float)sqrt(re * re + im * im)) <= 1e-6f * (1 + f[i]));
            assert_true(fabsf(ph[i] - (float)atan2(im, re)) <= 1e-6f);
        }
        free(ph);
    }
    free(d), free(d0), free(f), free(f0);
}

/* kk_parallel_range: every index in exactly one range, ranges of the grain
 * (the last shorter), at any thread count */
static void count_range(void *arg, size_t i0, size_t i1)
{
    unsigned char *hits = arg;
    assert_true(i0 < i1);
    for (size_t i = i0; i < i1; i++) __atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

static void test_parallel_range(void **state)
{
    (void)state;
    static unsigned char hits[5000];
    for (size_t n = 0; n <= 5000; n += n < 40 ? 1 : 997)
        for (size_t grain = 1; grain <= 4096; grain = grain * 3 + 1)
            for (int nt = 1; nt <= 4; nt++) {
                memset(hits, 0, sizeof hits);
                kk_parallel_range(nt, n, grain, count_range, hits);
                for (size_t i = 0; i < sizeof hits; i++) assert_int_equal(hits[i], i < n ? 1 : 0);
            }
}

/* The vectorised leaky ReLUs give the scalar select's bytes (negative zero, NaN, infinities, every
 * length around the vector width, unaligned starts) in float and double. */
static void test_leaky_relu(void **state)
{
    (void)state;
    float x[64], y[64], want[64];
    double xd[64];
    unsigned s = 99;
    for (int i = 0; i < 64; i++) x[i] = 4.0f * frand(&s);
    x[3] = -0.0f, x[5] = NAN, x[8] = INFINITY, x[9] = -INFINITY, x[12] = 0.0f, x[17] = -1e-42f; /* a denormal */
    for (int off = 0; off < 3; off++)
        for (int n = 0; n + off <= 40; n++) {
            for (int i = 0; i < n; i++) want[i] = x[off + i] < 0 ? x[off + i] * 0.2f : x[off + i];
            memset(y, 0x5a, sizeof y);
            kk_leaky_row(x + off, n, 0.2f, y);
            assert_memory_equal(y, want, (size_t)n * sizeof *y);
            assert_int_equal(((unsigned char *)y)[n * sizeof *y], 0x5a); /* nothing past n */
            memcpy(y, x + off, (size_t)n * sizeof *y);
            kk_leaky_relu(y, (size_t)n, 0.2f);
            assert_memory_equal(y, want, (size_t)n * sizeof *y);
            for (int i = 0; i < n; i++) xd[i] = (double)x[off + i] * 1.5;
            double wd[64];
            for (int i = 0; i < n; i++) wd[i] = xd[i] < 0 ? xd[i] * 0.01 : xd[i];
            kk_leaky_relu_d(xd, (size_t)n, 0.01);
            assert_memory_equal(xd, wd, (size_t)n * sizeof *xd);
        }
}

/* The pool (kk_pool_begin): every task of thousands of back-to-back calls runs once (the workers
 * spinning between them), after a pause long enough for the workers to fall asleep too, with fewer
 * threads asked than the pool has, and nested calls inside tasks; a second pool on the same thread,
 * or one thread, gives NULL. */
typedef struct pool_job {
    unsigned char *hits;
    int nested;
} pool_job;

static void pool_count(void *arg, int i)
{
    pool_job *j = arg;
    __atomic_add_fetch(&j->hits[i], 1, __ATOMIC_RELAXED);
    if (j->nested) { /* inside a task: runs here, on this thread */
        assert_int_equal(kk_threads(), 1);
        pool_job inner = {.hits = j->hits + 4000 + 8 * i};
        kk_parallel_for(4, 8, pool_count, &inner);
    }
}

static void test_pool(void **state)
{
    (void)state;
    static unsigned char hits[5000];
    assert_null(kk_pool_begin(1));
    kk_pool *p = kk_pool_begin(3);
    assert_non_null(p);
    assert_null(kk_pool_begin(3));
    for (int round = 0; round < 3000; round++) {
        const int n = round % 37, nt = 1 + round % 4;
        memset(hits, 0, sizeof hits);
        pool_job j = {.hits = hits, .nested = round % 5 == 0 && n <= 400};
        if (round % 1000 == 999) { /* past the spin: the workers asleep */
            struct timespec ts = {0, 3000000};
            nanosleep(&ts, NULL);
        }
        kk_parallel_for(nt, n, pool_count, &j);
        for (int i = 0; i < 4000; i++) assert_int_equal(hits[i], i < n ? 1 : 0);
        for (int i = 4000; i < 5000; i++) assert_int_equal(hits[i], j.nested && i < 4000 + 8 * n ? 1 : 0);
    }
    kk_pool_end(p);
    kk_pool_end(NULL);
    p = kk_pool_begin(2); /* a new one after the end */
    assert_non_null(p);
    memset(hits, 0, sizeof hits);
    pool_job j = {.hits = hits};
    kk_parallel_for(2, 3000, pool_count, &j);
    for (int i = 0; i < 4000; i++) assert_int_equal(hits[i], i < 3000 ? 1 : 0);
    kk_pool_end(p);
}

/* kk_parallel_ranges: every step once, each slot on one thread at a time (the slot's counter
 * entered and left around every step), with and without a pool (of fewer workers than some calls
 * ask for), fewer steps than threads, none. */
typedef struct ranges_check {
    unsigned char *hits;
    int busy[8];   /* threads inside each slot now */
    int clash;     /* a slot entered twice at once */
} ranges_check;

static void ranges_count(void *arg, int slot, int i)
{
    ranges_check *r = arg;
    if (__atomic_add_fetch(&r->busy[slot], 1, __ATOMIC_SEQ_CST) != 1) __atomic_store_n(&r->clash, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&r->hits[i], 1, __ATOMIC_RELAXED);
    for (volatile int k = 0; k < 200; k++) {
    }
    __atomic_sub_fetch(&r->busy[slot], 1, __ATOMIC_SEQ_CST);
}

static void test_parallel_ranges(void **state)
{
    (void)state;
    static unsigned char hits[3000];
    for (int pooled = 0; pooled < 2; pooled++) {
        kk_pool *p = pooled ? kk_pool_begin(4) : NULL;
        assert_true(!pooled || p);
        for (int n = 0; n <= 3000; n += n < 10 ? 1 : 331)
            for (int nt = 1; nt <= 5; nt++) {
                ranges_check r = {.hits = hits};
                memset(hits, 0, sizeof hits);
                kk_parallel_ranges(nt, n, ranges_count, &r);
                assert_int_equal(r.clash, 0);
                for (int i = 0; i < 3000; i++) assert_int_equal(hits[i], i < n ? 1 : 0);
            }
        kk_pool_end(p);
    }
}

/* The iSTFT splits frames into ranges and blocks, each recomputing the
 * frames before it: the same bytes at any thread count, on a spectrum long
 * enough for several blocks per range and uneven ranges. */
static void test_istft_threads(void **state)
{
    (void)state;
    const int F = 3001;
    unsigned s = 12345;
    float *spec = malloc((size_t)2 * KK_NBINS * F * sizeof *spec);
    float *one = malloc((size_t)KK_HOP * (F - 1) * sizeof *one), *many = malloc((size_t)KK_HOP * (F - 1) * sizeof *many);
    assert_true(spec && one && many);
    for (size_t i = 0; i < (size_t)2 * KK_NBINS * F; i++) spec[i] = 2.0f * frand(&s);
    int saved = kokoro_get_num_threads();
    kokoro_set_num_threads(1);
    assert_int_equal(kk_istft(spec, F, one), KOKORO_OK);
    double energy = 0;
    for (int i = 0; i < KK_HOP * (F - 1); i++) {
        assert_true(isfinite(one[i]));
        energy += (double)one[i] * one[i];
    }
    assert_true(energy > 0);
    for (int th = 2; th <= 5; th++) {
        kokoro_set_num_threads(th);
        memset(many, 0xff, (size_t)KK_HOP * (F - 1) * sizeof *many); /* NaN: a sample not written shows */
        assert_int_equal(kk_istft(spec, F, many), KOKORO_OK);
        assert_memory_equal(many, one, (size_t)KK_HOP * (F - 1) * sizeof *one);
    }
    kokoro_set_num_threads(saved);
    free(spec), free(one), free(many);
}

/* a golden case's token ids (with the pad tokens), style vector and speed */
static const kk_tensor *golden_case(const char *name, const float **style, float *speed)
{
    char k[64];
    snprintf(k, sizeof k, "%s.style", name);
    *style = G(k);
    snprintf(k, sizeof k, "%s.speed", name);
    *speed = G(k)[0];
    snprintf(k, sizeof k, "%s.input_ids", name);
    return kt_golden_get(k);
}

/* Threads split the convolutions, ALBERT's products and heads, the LSTMs'
 * two directions, the F0/N branches and the ConvTranspose, but every value is
 * computed the same way: the audio is the same bytes at 1, 2 and 3 threads
 * (3 makes the splits uneven). Two of the golden cases: under ASan each
 * synthesis takes seconds. */
static void test_threads_same_audio(void **state)
{
    (void)state;
    static const char *cases[] = {"short", "fast"};
    int saved = kokoro_get_num_threads();
    for (int c = 0; c < 2; c++) {
        const float *style;
        kokoro_synth_options o = kokoro_synth_options_default();
        const kk_tensor *ids = golden_case(cases[c], &style, &o.speed);
        o.no_noise = c == 0; /* the second with the harmonic source's noise (seeded) */
        o.seed = 7;
        kokoro_audio one, many;
        kokoro_set_num_threads(1);
        assert_int_equal(kokoro_synthesize(model, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2, style,
                                           &o, &one),
                         KOKORO_OK);
        for (int th = 2; th <= 3; th++) {
            kokoro_set_num_threads(th);
            assert_int_equal(kokoro_synthesize(model, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2,
                                               style, &o, &many),
                             KOKORO_OK);
            printf("  %-5s %d threads: %zu samples, %s\n", cases[c], th, many.n_samples,
                   many.n_samples == one.n_samples &&
                           memcmp(many.samples, one.samples, one.n_samples * sizeof *one.samples) == 0
                       ? "identical to 1 thread"
                       : "DIFFERENT");
            assert_int_equal(many.n_samples, one.n_samples);
            assert_memory_equal(many.samples, one.samples, one.n_samples * sizeof *one.samples);
            kokoro_audio_free(&many);
        }
        kokoro_audio_free(&one);
    }
    kokoro_set_num_threads(saved);
}

/* The bf16 mode gives the same bytes at 1, 2 and 3 threads, and two
 * concurrent first calls on a fresh model (both making the memo's weights,
 * one waiting for the other) give the bytes of a lone call. */
typedef struct bf16_call {
    const kokoro_model *m;
    const int64_t *ids;
    size_t n;
    const float *style;
    kokoro_synth_options o;
    kokoro_audio out;
    kokoro_status st;
} bf16_call;

static void *bf16_call_run(void *p)
{
    bf16_call *c = p;
    c->st = kokoro_synthesize(c->m, c->ids, c->n, c->style, &c->o, &c->out);
    return NULL;
}

static void test_bf16_threads_and_concurrency(void **state)
{
    (void)state;
    if (!kk_bf16_supported()) {
        printf("  AVX512-BF16 not available here: not run\n");
        return;
    }
    const float *style;
    kokoro_synth_options o = kokoro_synth_options_default();
    const kk_tensor *ids = golden_case("short", &style, &o.speed);
    o.no_noise = 1;
    o.dtype = KOKORO_DTYPE_BF16;
    const int64_t *p = (const int64_t *)ids->data + 1;
    const size_t n = (size_t)ids->shape[1] - 2;
    int saved = kokoro_get_num_threads();
    kokoro_audio one, many;
    kokoro_set_num_threads(1);
    assert_int_equal(kokoro_synthesize(model, p, n, style, &o, &one), KOKORO_OK);
    for (int th = 2; th <= 3; th++) {
        kokoro_set_num_threads(th);
        assert_int_equal(kokoro_synthesize(model, p, n, style, &o, &many), KOKORO_OK);
        assert_int_equal(many.n_samples, one.n_samples);
        assert_memory_equal(many.samples, one.samples, one.n_samples * sizeof *one.samples);
        kokoro_audio_free(&many);
    }
    printf("  bf16 short: the same %zu samples at 1, 2 and 3 threads\n", one.n_samples);
    kokoro_set_num_threads(2);
    kokoro_model *fresh = NULL;
    assert_int_equal(kokoro_model_load_test_weights(&fresh), KOKORO_OK);
    bf16_call calls[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        calls[i] = (bf16_call){.m = fresh, .ids = p, .n = n, .style = style, .o = o};
        assert_int_equal(pthread_create(&tid[i], NULL, bf16_call_run, &calls[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(calls[i].st, KOKORO_OK);
        assert_int_equal(calls[i].out.n_samples, one.n_samples);
        assert_memory_equal(calls[i].out.samples, one.samples, one.n_samples * sizeof *one.samples);
        kokoro_audio_free(&calls[i].out);
    }
    printf("  bf16 short: two concurrent first calls on a fresh model, the same bytes (memo %.1f MB)\n",
           kk_memo_bytes(fresh->memo) / 1048576.0);
    assert_true(kk_memo_bytes(fresh->memo) > 0);
    kokoro_model_free(fresh);
    kokoro_audio_free(&one);
    kokoro_set_num_threads(saved);
}

/* The scratch pool: the smallest idle buffer that fits is reused, a bigger
 * request replaces the largest idle one, at most KK_SCRATCH_SLOTS stay idle. */
static void test_scratch_pool(void **state)
{
    (void)state;
    kk_scratch *pool = kk_scratch_new();
    assert_non_null(pool);
    char *a = kk_scratch_take(pool, 1000), *b = kk_scratch_take(pool, 5000);
    assert_true(a && b && ((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0);
    memset(a, 1, 1000), memset(b, 2, 5000);
    kk_scratch_give(pool, a);
    kk_scratch_give(pool, b);
    assert_int_equal(kk_scratch_idle_bytes(pool), 1024 + 5056);
    assert_ptr_equal(kk_scratch_take(pool, 900), a); /* the smallest that fits */
    assert_int_equal(kk_scratch_idle_bytes(pool), 5056);
    char *c = kk_scratch_take(pool, 9000); /* none fits: b goes, a new one comes */
    assert_non_null(c);
    memset(c, 3, 9000);
    assert_int_equal(kk_scratch_idle_bytes(pool), 0);
    kk_scratch_give(pool, a);
    kk_scratch_give(pool, c);
    assert_int_equal(kk_scratch_idle_bytes(pool), 1024 + 9024);
    kk_scratch_free(pool); /* frees the idle ones */
    assert_non_null(pool = kk_scratch_new());
    char *many[KK_SCRATCH_SLOTS + 2];
    for (int i = 0; i < KK_SCRATCH_SLOTS + 2; i++) assert_non_null(many[i] = kk_scratch_take(pool, 64));
    for (int i = 0; i < KK_SCRATCH_SLOTS + 2; i++) kk_scratch_give(pool, many[i]);
    assert_int_equal(kk_scratch_idle_bytes(pool), KK_SCRATCH_SLOTS * 64); /* the rest were freed */
    kk_scratch_give(pool, NULL);
    kk_scratch_free(pool);
    char *p = kk_scratch_take(NULL, 100); /* no pool: a plain allocation */
    assert_non_null(p);
    kk_scratch_give(NULL, p);
}

/* A model reuses its generator scratch: a second synthesis leaves the pool
 * as it was, and a case spoken after a longer one (stale contents in the
 * buffer) is the same bytes as on a fresh model. */
static void test_scratch_reuse_same_audio(void **state)
{
    (void)state;
    kokoro_model *fresh = NULL;
    assert_int_equal(kokoro_model_load_test_weights(&fresh), KOKORO_OK);
    assert_int_equal(kk_scratch_idle_bytes(fresh->scratch), 0);
    kokoro_audio first, other, again;
    const float *style, *style2;
    kokoro_synth_options o = kokoro_synth_options_default(), o2 = o;
    o.no_noise = o2.no_noise = 1;
    const kk_tensor *ids = golden_case("short", &style, &o.speed), *ids2 = golden_case("slow", &style2, &o2.speed);
    assert_int_equal(kokoro_synthesize(fresh, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2, style, &o,
                                       &first),
                     KOKORO_OK);
    size_t idle = kk_scratch_idle_bytes(fresh->scratch);
    assert_true(idle > 0);
    assert_int_equal(kokoro_synthesize(fresh, (const int64_t *)ids2->data + 1, (size_t)ids2->shape[1] - 2, style2,
                                       &o2, &other),
                     KOKORO_OK);
    assert_true(other.n_samples > first.n_samples);
    assert_int_equal(kokoro_synthesize(fresh, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2, style, &o,
                                       &again),
                     KOKORO_OK);
    size_t idle2 = kk_scratch_idle_bytes(fresh->scratch);
    printf("  scratch kept: %zu MB after the first call, %zu MB after a longer one and the first again\n",
           idle >> 20, idle2 >> 20);
    assert_true(idle2 >= idle && idle2 < 3 * idle + (64u << 20));
    assert_int_equal(again.n_samples, first.n_samples);
    assert_memory_equal(again.samples, first.samples, first.n_samples * sizeof *first.samples);
    kokoro_audio_free(&first), kokoro_audio_free(&other), kokoro_audio_free(&again);
    kokoro_model_free(fresh);
}

/* bf16 audio against the float32 path on the three golden cases */
static void test_bf16_quality(void **state)
{
    (void)state;
    static const char *cases[] = {"short", "fast", "slow"};
    kokoro_synth_options o = kokoro_synth_options_default();
    kokoro_audio out;
    o.dtype = 7;
    assert_int_equal(kokoro_synthesize(model, (const int64_t[]){50}, 1, G("short.style"), &o, &out),
                     KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "dtype"));
    if (!kk_bf16_supported()) {
        o.dtype = KOKORO_DTYPE_BF16;
        assert_int_equal(kokoro_synthesize(model, (const int64_t[]){50}, 1, G("short.style"), &o, &out),
                         KOKORO_ERR_INVALID_ARG);
        printf("  AVX512-BF16 not available here: bf16 quality not measured\n");
        return;
    }
    /* both bf16 kernels where the CPU has AMX: its tiles (default), then vdpbf16ps */
    const int amx = kk_amx_supported();
    for (int k = 0; k < (amx ? 2 : 1); k++) {
        if (k) setenv("KOKORO_AMX", "0", 1);
        for (int c = 0; c < 3; c++) {
            const float *style;
            o = kokoro_synth_options_default();
            const kk_tensor *ids = golden_case(cases[c], &style, &o.speed);
            o.no_noise = 1;
            kokoro_audio f32, bf;
            const int64_t *p = (const int64_t *)ids->data + 1;
            size_t n = (size_t)ids->shape[1] - 2;
            assert_int_equal(kokoro_synthesize(model, p, n, style, &o, &f32), KOKORO_OK);
            o.dtype = KOKORO_DTYPE_BF16;
            assert_int_equal(kokoro_synthesize(model, p, n, style, &o, &bf), KOKORO_OK);
            assert_int_equal(bf.n_samples, f32.n_samples);
            double e = kt_rel_l2(bf.samples, f32.samples, f32.n_samples);
            double corr = kt_spectral_corr(bf.samples, f32.samples, f32.n_samples);
            printf("  bf16 (%s) vs f32 %-6s rel L2 %.3e (tol 5e-2)  spectral corr %.7f (min 0.999)\n",
                   amx && !k ? "AMX" : "vdpbf16ps", cases[c], e, corr);
            assert_true(e <= 5e-2 && corr >= 0.999);
            assert_true(e > 0); /* the bf16 path really ran */
            kokoro_audio_free(&f32);
            kokoro_audio_free(&bf);
        }
    }
    unsetenv("KOKORO_AMX");
    /* a very short input, where the AMX path's slot buffers outgrow the padded rows they share room with */
    for (int len = 1; len <= 3; len += 2) {
        static const int64_t ids[3] = {50, 83, 156};
        kokoro_audio f32, bf;
        o = kokoro_synth_options_default();
        o.no_noise = 1;
        assert_int_equal(kokoro_synthesize(model, ids, (size_t)len, G("short.style"), &o, &f32), KOKORO_OK);
        o.dtype = KOKORO_DTYPE_BF16;
        assert_int_equal(kokoro_synthesize(model, ids, (size_t)len, G("short.style"), &o, &bf), KOKORO_OK);
        assert_int_equal(bf.n_samples, f32.n_samples);
        double e = kt_rel_l2(bf.samples, f32.samples, f32.n_samples);
        printf("  bf16 vs f32 %d token%s (%lld samples) rel L2 %.3e (tol 5e-2)\n", len, len > 1 ? "s" : "",
               (long long)f32.n_samples, e);
        assert_true(e <= 5e-2);
        kokoro_audio_free(&f32);
        kokoro_audio_free(&bf);
    }
}

/* The AMX kernel against the double reference on inputs and weights rounded
 * to bf16 (so only the float32 sums differ), with and without bias and
 * accumulation, several row blocks and partial time blocks, 1–3 threads; and
 * KOKORO_AMX=0 turns it off. */
static double bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static void test_amx_conv(void **state)
{
    (void)state;
    if (!kk_amx_supported()) {
        printf("  AMX not available here: the AMX kernel not run\n");
        return;
    }
    assert_true(kk_amx_fits(64) && !kk_amx_fits(48));
    setenv("KOKORO_AMX", "0", 1);
    assert_false(kk_amx_supported());
    assert_false(kk_amx_fits(64));
    unsetenv("KOKORO_AMX");
    static const int shapes[][7] = {
        /* cin, cout, K, dil, n, bias, accumulate; cin 66 and 1090: zero-padded to whole 32-channel chunks;
         * n over 512: several time tasks, whole blocks stored from the tiles in each mode, a partial one last */
        {32, 32, 3, 1, 1, 1, 0},   {64, 96, 11, 5, 237, 0, 1}, {128, 64, 7, 3, 61, 1, 1},
        {96, 32, 3, 1, 500, 1, 0}, {66, 64, 3, 1, 150, 1, 0},  {1090, 32, 3, 1, 70, 1, 0},
        {64, 64, 3, 1, 1100, 0, 1}, {32, 64, 7, 3, 1057, 1, 1}, {64, 32, 5, 1, 1040, 0, 0}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int cin = shapes[k][0], cout = shapes[k][1], K = shapes[k][2], dil = shapes[k][3], n = shapes[k][4];
        const int pad = dil * (K - 1) / 2;
        unsigned s = 7 + (unsigned)k;
        size_t ldx = kk_dconv_ldx(n, K, dil);
        float *x = malloc((size_t)cin * n * sizeof *x), *W = malloc((size_t)cout * cin * K * sizeof *W);
        float *b = malloc((size_t)cout * sizeof *b), *y = malloc((size_t)cout * n * sizeof *y);
        const int np = kk_amx_pairs(cin);
        float *y0 = malloc((size_t)cout * n * sizeof *y0), *xp = calloc((size_t)2 * np * ldx, sizeof *xp);
        uint32_t *xb = calloc((size_t)np * ldx, sizeof *xb);
        uint32_t *wp = malloc(kk_amx_pack_words(cout, cin, K) * sizeof *wp);
        double *ref = malloc((size_t)cout * n * sizeof *ref);
        float *xr = malloc((size_t)cin * n * sizeof *xr), *Wr = malloc((size_t)cout * cin * K * sizeof *Wr);
        float *one = malloc((size_t)cout * n * sizeof *one);
        assert_true(x && W && b && y && y0 && xp && xb && wp && ref && xr && Wr && one);
        for (size_t i = 0; i < (size_t)cin * n; i++) xr[i] = (float)bf16_round(x[i] = frand(&s));
        for (size_t i = 0; i < (size_t)cout * cin * K; i++) Wr[i] = (float)bf16_round(W[i] = frand(&s));
        for (int i = 0; i < cout; i++) b[i] = frand(&s);
        for (size_t i = 0; i < (size_t)cout * n; i++) y0[i] = frand(&s);
        for (int c = 0; c < cin; c++) memcpy(xp + (size_t)c * ldx + pad, x + (size_t)c * n, (size_t)n * sizeof *x);
        for (int p = 0; p < np; p++) /* rows past cin stay zero */
            kk_bf16_pair_row(xp + (size_t)2 * p * ldx, xp + (size_t)(2 * p + 1) * ldx, ldx, xb + (size_t)p * ldx);
        kk_dconv_pack_amx(W, cout, cin, K, (uint16_t *)wp);
        ref_conv(xr, cin, n, Wr, shapes[k][5] ? b : NULL, cout, K, dil, shapes[k][6] ? y0 : NULL, ref);
        for (int th = 1; th <= 3; th++) {
            memcpy(y, y0, (size_t)cout * n * sizeof *y);
            kk_dconv d = {.xp = (const float *)xb, .ldx = ldx, .wp = (const float *)wp, .b = shapes[k][5] ? b : NULL,
                          .cin = cin, .cout = cout, .K = K, .dil = dil, .n = n, .y = y, .ldy = (size_t)n,
                          .accumulate = shapes[k][6]};
            kk_dconv_run_amx(&d, th);
            double worst = 0;
            for (size_t i = 0; i < (size_t)cout * n; i++) {
                double e = fabs(y[i] - ref[i]) / (1 + fabs(ref[i]));
                worst = e > worst ? e : worst;
            }
            if (th == 1)
                printf("  AMX conv cin %3d cout %2d K %2d dil %d n %3d: max rel err %.2e (tol 1e-5)\n", cin, cout, K,
                       dil, n, worst);
            assert_true(worst <= 1e-5);
            if (th == 1)
                memcpy(one, y, (size_t)cout * n * sizeof *y);
            else
                assert_memory_equal(y, one, (size_t)cout * n * sizeof *y); /* the same bytes at any thread count */
        }
        free(x), free(W), free(b), free(y), free(y0), free(xp), free(xb), free(wp), free(ref), free(xr), free(Wr);
        free(one);
    }
}

/* The AMX kernel's fused-resblock modes, through kk_dconv_run_amx_snake (AdaIN +
 * Snake made per task, statistics summed per task): the sum starting from
 * another buffer (acc_from), the result combined into y (y += it; y = (y +
 * it) / 3), and each task's row statistics, against a double reference on
 * the same bf16-rounded input; several tasks and a partial block (n 1100). */
static void test_amx_fused_modes(void **state)
{
    (void)state;
    if (!kk_amx_supported()) {
        printf("  AMX not available here: the fused modes not run\n");
        return;
    }
    const int C = 64, K = 7, dil = 3, n = 1100, pad = dil * (K - 1) / 2, nth = 2;
    unsigned s = 99;
    float *x = malloc((size_t)C * n * sizeof *x), *W = malloc((size_t)C * C * K * sizeof *W), *b = malloc(C * sizeof *b);
    float *from = malloc((size_t)C * n * sizeof *from), *y0 = malloc((size_t)C * n * sizeof *y0);
    float *y = malloc((size_t)C * n * sizeof *y), *xr = malloc((size_t)C * n * sizeof *xr);
    float *Wr = malloc((size_t)C * C * K * sizeof *Wr), *m = malloc(4 * C * sizeof *m);
    double *ref = malloc((size_t)C * n * sizeof *ref), *st = malloc((size_t)2 * C * kk_amx_tasks(n) * sizeof *st);
    double *mean = malloc(2 * C * sizeof *mean), *var = mean + C;
    uint32_t *wp = malloc(kk_amx_pack_words(C, C, K) * sizeof *wp);
    uint32_t *slots = malloc((size_t)nth * kk_amx_slot_words(C, K, dil) * sizeof *slots);
    float *row = malloc((size_t)(n + 16) * sizeof *row);
    assert_true(x && W && b && from && y0 && y && xr && Wr && m && ref && st && mean && wp && slots && row);
    float *scale = m + C, *shift = scale + C, *alpha = shift + C;
    for (size_t i = 0; i < (size_t)C * n; i++) x[i] = frand(&s), from[i] = frand(&s), y0[i] = frand(&s);
    for (size_t i = 0; i < (size_t)C * C * K; i++) Wr[i] = (float)bf16_round(W[i] = frand(&s));
    for (int c = 0; c < C; c++)
        b[c] = frand(&s), m[c] = 0.1f * frand(&s), scale[c] = 1 + 0.2f * frand(&s), shift[c] = 0.1f * frand(&s),
        alpha[c] = 1 + 0.5f * frand(&s);
    /* the reference's input: the Snake rows as the kernel rounds them (bf16 pairs) */
    for (int c = 0; c < C; c++) {
        kk_snake_affine(kk_isa_active(), x + (size_t)c * n, n, m[c], scale[c], shift[c], alpha[c], row);
        for (int t = 0; t < n; t++) xr[(size_t)c * n + t] = (float)bf16_round(row[t]);
    }
    kk_dconv_pack_amx(W, C, C, K, (uint16_t *)wp);
    kk_snake_in in = {.x = x, .ldx = (size_t)n, .m = m, .scale = scale, .shift = shift, .alpha = alpha, .pad = pad};
    for (int mode = 0; mode < 3; mode++) { /* 0: y = from + conv + b; 1: y += that; 2: y = (y + that) / 3 */
        memcpy(y, y0, (size_t)C * n * sizeof *y);
        kk_dconv d = {.wp = (const float *)wp, .b = b, .cin = C, .cout = C, .K = K, .dil = dil, .n = n, .y = y,
                      .ldy = (size_t)n, .accumulate = 1, .acc_from = from, .combine = mode};
        kk_dconv_run_amx_snake(kk_isa_active(), &d, &in, slots, st, nth);
        kk_amx_stats_finish(st, n, C, mean, var);
        ref_conv(xr, C, n, Wr, b, C, K, dil, from, ref);
        double worst = 0, worst_stat = 0;
        for (int o = 0; o < C; o++) {
            double sm = 0, sq = 0;
            for (int t = 0; t < n; t++) sm += ref[(size_t)o * n + t], sq += ref[(size_t)o * n + t] * ref[(size_t)o * n + t];
            const double rm = sm / n, rv = sq / n - rm * rm; /* the result's statistics */
            const double es = fabs(mean[o] - rm) + fabs(var[o] - rv) / (1 + rv);
            worst_stat = es > worst_stat ? es : worst_stat;
            for (int t = 0; t < n; t++) {
                const size_t i = (size_t)o * n + t;
                const double want = mode == 0 ? ref[i] : mode == 1 ? y0[i] + ref[i] : (y0[i] + ref[i]) / 3;
                const double e = fabs(y[i] - want) / (1 + fabs(want));
                worst = e > worst ? e : worst;
            }
        }
        printf("  AMX fused mode %d: max rel err %.2e (tol 1e-5), statistics %.2e (tol 1e-5)\n", mode, worst,
               worst_stat);
        assert_true(worst <= 1e-5 && worst_stat <= 1e-5);
    }
    free(x), free(W), free(b), free(from), free(y0), free(y), free(xr), free(Wr), free(m), free(ref), free(st);
    free(mean), free(wp), free(slots), free(row);
}

/* The bf16 upsamplings on AMX (polyphase 2-tap convolutions, rows then
 * interleaved) against the float32 ConvTranspose1d, on the model's ups
 * weights: lengths equal, rel L2 within bf16 rounding, edges included
 * (n of 1 and 2: every output step is a first or last one). */
/* The float32 upsamplings (polyphase 2-tap convolutions on the direct kernel) against the
 * ConvTranspose1d they replace, on every kernel path this CPU runs */
static void test_ups_f32(void **state)
{
    (void)state;
    static const int lens[][2] = {{0, 1}, {0, 2}, {0, 37}, {1, 5}, {1, 1001}};
    for (int p = 0; p < KK_ISA_COUNT; p++) {
        if (!kk_isa_supported((kk_isa)p)) continue;
        setenv("KOKORO_ISA", kk_isa_name((kk_isa)p), 1);
        double worst = 0;
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            const int i = lens[k][0], n = lens[k][1], stride = i == 0 ? 10 : 6;
            const kk_conv *c = &model->ups[i];
            unsigned s = 23 + (unsigned)k;
            const size_t ny = (size_t)c->cout * (12 * n + 12);
            float *x = malloc((size_t)c->cin * n * sizeof *x), *t = malloc((size_t)c->cin * n * sizeof *t);
            float *ws = malloc(kk_gen_ups_ws_floats(model, i, n) * sizeof *ws);
            float *col = malloc((size_t)c->cout * c->k * n * sizeof *col);
            float *ya = malloc(ny * sizeof *ya), *yr = malloc(ny * sizeof *yr);
            assert_true(x && t && ws && col && ya && yr);
            for (size_t q = 0; q < (size_t)c->cin * n; q++) x[q] = frand(&s), t[q] = x[q] > 0 ? x[q] : 0.1f * x[q];
            int na = 0;
            assert_int_equal(kk_gen_ups_dt(model, i, x, n, ya, &na, ws, 0), KOKORO_OK);
            const int nr = kk_conv_transpose1d(t, c->cin, n, c->w, c->b, c->cout, c->k, stride, stride / 2, 0, yr, col);
            assert_int_equal(na, nr);
            const double e = kt_rel_l2(ya, yr, (size_t)c->cout * na);
            worst = e > worst ? e : worst;
            assert_true(e <= 2e-6);
            free(x), free(t), free(ws), free(col), free(ya), free(yr);
        }
        printf("  ups %-8s polyphase vs ConvTranspose1d: worst rel L2 %.2e (tol 2e-6)\n", kk_isa_name((kk_isa)p), worst);
    }
    unsetenv("KOKORO_ISA");
}

static void test_ups_amx(void **state)
{
    (void)state;
    if (!kk_amx_supported()) {
        printf("  AMX not available here: the bf16 upsamplings not run\n");
        return;
    }
    static const int lens[][2] = {{0, 1}, {0, 2}, {0, 37}, {1, 5}, {1, 1001}};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        const int i = lens[k][0], n = lens[k][1];
        const kk_conv *c = &model->ups[i];
        unsigned s = 11 + (unsigned)k;
        float *x = malloc((size_t)c->cin * n * sizeof *x);
        float *ws = malloc(kk_gen_ups_ws_floats(model, i, n) * sizeof *ws);
        float *ya = malloc((size_t)c->cout * (12 * n + 12) * sizeof *ya), *yb = malloc((size_t)c->cout * (12 * n + 12) * sizeof *yb);
        assert_true(x && ws && ya && yb);
        for (size_t q = 0; q < (size_t)c->cin * n; q++) x[q] = frand(&s);
        int na = 0, nb = 0;
        assert_int_equal(kk_gen_ups_dt(model, i, x, n, ya, &na, ws, 0), KOKORO_OK);
        assert_int_equal(kk_gen_ups_dt(model, i, x, n, yb, &nb, ws, 1), KOKORO_OK);
        assert_int_equal(na, nb);
        double e = kt_rel_l2(yb, ya, (size_t)c->cout * na);
        printf("  ups.%d n %4d: %d steps, bf16 on AMX vs f32 rel L2 %.2e (tol 1e-2)\n", i, n, na, e);
        assert_true(e > 0 && e <= 1e-2);
        free(x), free(ws), free(ya), free(yb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dconv_matches_reference),
        cmocka_unit_test(test_fconv_matches_reference),
        cmocka_unit_test(test_tap_gemm_conv),
        cmocka_unit_test(test_conv1d_taps),
        cmocka_unit_test(test_asan_sees_dconv_overflow),
        cmocka_unit_test(test_snake_matches_libm),
        cmocka_unit_test(test_isa_override),
        cmocka_unit_test(test_golden_every_path),
        cmocka_unit_test(test_threads_same_audio),
        cmocka_unit_test(test_scratch_pool),
        cmocka_unit_test(test_amx_conv),
        cmocka_unit_test(test_ups_amx),
        cmocka_unit_test(test_ups_f32),
        cmocka_unit_test(test_amx_fused_modes),
        cmocka_unit_test(test_bf16_threads_and_concurrency),
        cmocka_unit_test(test_scratch_reuse_same_audio),
        cmocka_unit_test(test_gemm_step),
        cmocka_unit_test(test_lstm_d_matches_reference),
        cmocka_unit_test(test_vmath_matches_libm),
        cmocka_unit_test(test_parallel_range),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_parallel_ranges),
        cmocka_unit_test(test_istft_threads),
        cmocka_unit_test(test_bf16_pairs),
        cmocka_unit_test(test_bf16_conv),
        cmocka_unit_test(test_bf16_quality),
    };
    return cmocka_run_group_tests_name("kernels", tests, setup, teardown);
}
