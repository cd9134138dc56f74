/* kokoro-bench --conv: the generator's direct convolution alone, on the
 * resblock shapes of S seconds of audio, at 1 thread and at N, interleaved
 * in one run so the host's drift hits both alike. It separates the kernel's
 * own thread scaling from the rest of the generator's. */
#include "bench_conv.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kokoro.h"
#include "core/bf16.h"
#include "nn/dconv.h"
#include "nn/fconv.h"
#include "core/parallel.h"
#include "model/blocks.h"

int kk_bench_conv_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--conv")) return 1;
    return 0;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct shape {
    int C, K, dil, rate; /* channels, taps, dilation, frames per second of audio */
} shape;

/* The kernel under test: float32 on the active path, or bfloat16 (AMX tiles
 * where the CPU and the OS allow them, else vdpbf16ps). */
typedef struct kernel {
    kk_isa isa;
    int bf16, amx;
} kernel;

static const char *kernel_name(const kernel *k)
{
    return !k->bf16 ? kk_isa_name(k->isa) : k->amx ? "bf16 on AMX tiles" : "bf16 (vdpbf16ps)";
}

/* rows of the padded input (bf16: pair rows, whole 32-channel chunks on AMX) */
static int input_rows(const kernel *k, int cin) { return !k->bf16 ? cin : k->amx ? kk_amx_pairs(cin) : (cin + 1) / 2; }

static size_t weight_floats(const kernel *k, int cout, int cin, int K)
{
    if (!k->bf16) return kk_dconv_pack_floats(k->isa, cout, cin, K);
    return k->amx ? kk_amx_pack_words(cout, cin, K) : kk_dconv_pack_bf16_words(cout, cin, K);
}

static void pack(const kernel *k, const float *W, int cout, int cin, int K, float *wp)
{
    if (!k->bf16) kk_dconv_pack(k->isa, W, cout, cin, K, wp);
    else if (k->amx) kk_dconv_pack_amx(W, cout, cin, K, (uint16_t *)wp);
    else kk_dconv_pack_bf16(W, cout, cin, K, (uint32_t *)wp);
}

/* a value of input row r at step t (bf16: the pair of channels 2r, 2r+1) */
static float input_value(const kernel *k, int r, int t)
{
    if (!k->bf16) return (float)((r * 31 + t) % 17) - 8.0f;
    uint32_t lo = kk_bf16((float)((2 * r * 31 + t) % 17) - 8.0f),
             hi = kk_bf16((float)(((2 * r + 1) * 31 + t) % 17) - 8.0f);
    uint32_t w = lo | hi << 16;
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static void run(const kernel *k, const kk_dconv *d, int threads)
{
    if (!k->bf16) kk_dconv_run(k->isa, d, threads);
    else if (k->amx) kk_dconv_run_amx(d, threads);
    else kk_dconv_run_bf16(d, threads);
}

/* one run: its wall and CPU seconds */
static void time_conv(const kernel *k, const kk_dconv *d, int threads, double *w, double *c)
{
    *w = wall(), *c = cpu();
    run(k, d, threads);
    *w = wall() - *w, *c = cpu() - *c;
}

/* n zeroed floats on a cache line, as the model's buffers are (rows of a
 * multiple of 16 floats then start on one too) */
static float *floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

/* GFLOPS of one thread on a block whose data stay in cache: cin input
 * channels, 64 output rows, 192 steps, run again and again (fastest of 3
 * runs of ~20 ms): the kernel's own ceiling, apart from memory. */
static double in_cache_gflops(const kernel *k, int cin, int K, int dil)
{
    const int cout = 64, n = 192, rows = input_rows(k, cin);
    const size_t ldx = kk_dconv_ldx(n, K, dil);
    float *xp = floats((size_t)rows * ldx), *y = floats((size_t)cout * n);
    float *wp = floats(weight_floats(k, cout, cin, K));
    double best = 0;
    if (xp && y && wp) {
        for (int r = 0; r < rows; r++)
            for (size_t t = 0; t < ldx; t++) xp[r * ldx + t] = input_value(k, r, (int)t);
        kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .cin = cin, .cout = cout, .K = K, .dil = dil, .n = n,
                      .y = y, .ldy = (size_t)n};
        const double flop = 2.0 * cin * cout * K * n;
        const int reps = (int)((k->bf16 ? 4e10 : 4e9) / flop) + 1; /* ~20 ms at 200 GFLOPS (bf16: 2 TFLOPS) */
        run(k, &d, 1);
        for (int r = 0; r < 3; r++) {
            double t = wall();
            for (int i = 0; i < reps; i++) run(k, &d, 1);
            t = wall() - t;
            if (t > 0 && flop * reps / t * 1e-9 > best) best = flop * reps / t * 1e-9;
        }
    }
    free(xp), free(y), free(wp);
    return best;
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "kokoro-bench: %s expects a number from %g to %g, got '%s'\n", opt, lo, hi, s);
        return 1;
    }
    *out = v;
    return 0;
}

/* --fft: the float32 convolution of each of the generator's 18 shapes (256 channels at 800
 * steps a second, 128 at 4800; K 3, 7, 11; dilation 1, 3, 5) by the direct kernel and through
 * the FFT at each size, 1 and nt threads, fastest of reps; "*" marks what kk_fconv_choose picks
 * (the data its cost model was fitted to). */
static int fft_table(double seconds, int nt, int reps)
{
    if (!kk_fconv_compiled() || !kk_isa_supported(KK_ISA_AVX512)) {
        fprintf(stderr, "kokoro-bench: --fft needs the AVX-512 kernels (this CPU or build has none)\n");
        return 1;
    }
    printf("kokoro-bench --conv --fft: ms per convolution (1 thread / %d), shapes of %.2f s of audio, fastest of %d;\n"
           "  * = the plan the library chooses (direct where no FFT size is marked)\n",
           nt, seconds, reps);
    printf("  %-22s %15s %15s %15s %15s %15s\n", "shape", "direct", "FFT N 32", "FFT N 64", "FFT N 128", "FFT N 256");
    static const int Cs[2] = {256, 128}, rates[2] = {800, 4800}, Ks[3] = {3, 7, 11}, dils[3] = {1, 3, 5};
    for (int a = 0; a < 2; a++)
        for (int kk = 0; kk < 3; kk++)
            for (int di = 0; di < 3; di++) {
                const int C = Cs[a], K = Ks[kk], dil = dils[di], n = (int)(seconds * rates[a] + 0.5) > 0 ? (int)(seconds * rates[a] + 0.5) : 1;
                const size_t ldx = kk_dconv_ldx(n, K, dil);
                float *xp = floats((size_t)C * ldx), *y = floats((size_t)C * n), *W = malloc((size_t)C * C * K * sizeof *W);
                float *wp = floats(kk_dconv_pack_floats(KK_ISA_AVX512, C, C, K)), *ws = NULL;
                kk_fconv_plan plans[4], chosen;
                int have[4];
                size_t wsn = 0;
                for (int i = 0; i < 4; i++) {
                    have[i] = kk_fconv_plan_n(C, C, K, dil, n, 32 << i, kk_fconv_chunk(C, 32 << i), &plans[i]);
                    if (have[i] && kk_fconv_ws_floats(&plans[i], nt) > wsn) wsn = kk_fconv_ws_floats(&plans[i], nt);
                }
                const int pick = kk_fconv_choose(KK_ISA_AVX512, C, C, K, dil, n, &chosen) ? chosen.N : 0;
                if (wsn) ws = floats(wsn);
                if (!xp || !y || !W || !wp || (wsn && !ws)) {
                    fprintf(stderr, "kokoro-bench: out of memory for %d channels × %d steps\n", C, n);
                    free(xp), free(y), free(W), free(wp), free(ws);
                    return 1;
                }
                unsigned s = 1;
                for (size_t q = 0; q < (size_t)C * C * K; q++) W[q] = (float)((s = s * 1664525u + 1013904223u) >> 9) * 0x1p-23f - 1.0f;
                for (int r = 0; r < C; r++)
                    for (int t = 0; t < n; t++) xp[(size_t)r * ldx + t + dil * (K - 1) / 2] = (float)((r * 31 + t) % 17) - 8.0f;
                kk_dconv_pack(KK_ISA_AVX512, W, C, C, K, wp);
                kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .cin = C, .cout = C, .K = K, .dil = dil, .n = n, .y = y,
                              .ldy = (size_t)n};
                double best[5][2];
                for (int m = 0; m < 5; m++)
                    for (int th = 0; th < 2; th++) {
                        best[m][th] = 1e30;
                        if (m > 0 && !have[m - 1]) continue;
                        for (int r = 0; r <= reps; r++) { /* the first run warms pages and caches */
                            const int threads = th ? nt : 1;
                            double w = wall();
                            if (m == 0) kk_dconv_run(KK_ISA_AVX512, &d, threads);
                            else kk_fconv_run(&plans[m - 1], &d, NULL, ws, threads);
                            w = wall() - w;
                            if (r > 0 && w < best[m][th]) best[m][th] = w;
                        }
                    }
                char name[48], cell[5][32];
                snprintf(name, sizeof name, "%d ch K %2d dil %d", C, K, dil);
                for (int m = 0; m < 5; m++) {
                    if (best[m][0] >= 1e30) snprintf(cell[m], sizeof cell[m], "-");
                    else
                        snprintf(cell[m], sizeof cell[m], "%s%.1f / %.1f", (m == 0 ? !pick : pick == 16 << m) ? "*" : "",
                                 best[m][0] * 1e3, best[m][1] * 1e3);
                }
                printf("  %-22s %15s %15s %15s %15s %15s\n", name, cell[0], cell[1], cell[2], cell[3], cell[4]);
                free(xp), free(y), free(W), free(wp), free(ws);
            }
    return 0;
}

/* --decoder: the decoder's float32 K 3 convolutions (its AdainResBlk1d convs at 40 and 80
 * frames a second of audio) through kk_conv_apply as the model calls it, per-call buffers and
 * preparation included: the direct kernel (KOKORO_TAPGEMM=0) against the library's choice (a GEMM
 * per tap on OpenBLAS for ≥ 512 input channels and ≥ 512 steps); fastest of reps, 1 and nt threads. */
static int decoder_table(double seconds, int nt, int reps)
{
    static const int shapes[][3] = {{514, 1024, 40}, {1024, 1024, 40}, {1090, 1024, 40}, {1090, 512, 80}, {512, 512, 80}};
    const kk_isa isa = kk_isa_active();
    char *env = getenv("KOKORO_TAPGEMM") ? strdup(getenv("KOKORO_TAPGEMM")) : NULL;
    printf("kokoro-bench --conv --decoder: the decoder's K 3 convolutions, %.2f s of audio, ms per call (1 thread / %d),\n"
           "fastest of %d; direct kernel (path %s) against the library's choice (a GEMM per tap on OpenBLAS\n"
           "from 512 steps, else the direct kernel too)\n",
           seconds, nt, reps, kk_isa_name(isa));
    printf("  %-30s %17s %17s %10s\n", "shape", "direct", "library", "speed-up");
    const int saved = kk_threads();
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int cin = shapes[i][0], cout = shapes[i][1], K = 3;
        const int n = (int)(seconds * shapes[i][2] + 0.5) > 64 ? (int)(seconds * shapes[i][2] + 0.5) : 64;
        float *x = floats((size_t)cin * n), *y = floats((size_t)cout * n);
        float *W = floats((size_t)cout * cin * K), *b = floats((size_t)cout);
        if (!x || !y || !W || !b) {
            fprintf(stderr, "kokoro-bench: out of memory for %d channels × %d steps\n", cin, n);
            free(x), free(y), free(W), free(b);
            return 1;
        }
        unsigned s = 1;
        for (size_t q = 0; q < (size_t)cout * cin * K; q++) W[q] = (float)((s = s * 1664525u + 1013904223u) >> 9) * 0x1p-23f - 1.0f;
        for (int o = 0; o < cout; o++) b[o] = 0.01f * o;
        for (size_t q = 0; q < (size_t)cin * n; q++) x[q] = (float)(q % 17) - 8.0f;
        const kk_conv c = {.w = W, .b = b, .cout = cout, .cin = cin, .k = K};
        double best[2][2];
        for (int th = 0; th < 2; th++) {
            const int threads = th ? nt : 1;
            kokoro_set_num_threads(threads);
            best[0][th] = best[1][th] = 1e30;
            for (int r = 0; r <= reps; r++) /* interleaved; the first run warms pages and caches */
                for (int m = 0; m < 2; m++) {
                    setenv("KOKORO_TAPGEMM", m ? "1" : "0", 1);
                    double w = wall();
                    const int got = kk_conv_apply(&c, x, n, 1, 1, 1, y);
                    if (got != n) {
                        fprintf(stderr, "kokoro-bench: out of memory for the convolution\n");
                        kokoro_set_num_threads(saved);
                        free(x), free(y), free(W), free(b);
                        return 1;
                    }
                    w = wall() - w;
                    if (r > 0 && w < best[m][th]) best[m][th] = w;
                }
        }
        char name[64], cell[2][32];
        snprintf(name, sizeof name, "%4d -> %4d ch, %5d steps", cin, cout, n);
        for (int m = 0; m < 2; m++) snprintf(cell[m], sizeof cell[m], "%.1f / %.1f", best[m][0] * 1e3, best[m][1] * 1e3);
        printf("  %-30s %17s %17s %4.2f / %4.2f\n", name, cell[0], cell[1], best[0][0] / best[1][0], best[0][1] / best[1][1]);
        free(x), free(y), free(W), free(b);
    }
    kokoro_set_num_threads(saved);
    if (env) setenv("KOKORO_TAPGEMM", env, 1);
    else unsetenv("KOKORO_TAPGEMM");
    free(env);
    return 0;
}

int kk_bench_conv_main(int argc, char **argv)
{
    double seconds = 16, threads = kokoro_cpu_count(), repeat = 3;
    int bf16 = 0, fft = 0, decoder = 0;
    static const struct option opts[] = {
        {"conv", no_argument, 0, 'c'},           {"fft", no_argument, 0, 'f'}, {"seconds", required_argument, 0, 's'},
        {"decoder", no_argument, 0, 'D'},
        {"threads", required_argument, 0, 't'}, {"repeat", required_argument, 0, 'r'},
        {"dtype", required_argument, 0, 'd'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': break;
        case 'f': fft = 1; break;
        case 'D': decoder = 1; break;
        case 's':
            if (parse_num("--seconds", optarg, 0.01, 600, &seconds)) return 2;
            break;
        case 't':
            if (parse_num("--threads", optarg, 1, 256, &threads)) return 2;
            break;
        case 'r':
            if (parse_num("--repeat", optarg, 1, 1000, &repeat)) return 2;
            break;
        case 'd':
            if (!strcmp(optarg, "f32") || !strcmp(optarg, "fp32")) bf16 = 0;
            else if (!strcmp(optarg, "bf16")) bf16 = 1;
            else {
                fprintf(stderr, "kokoro-bench: --dtype expects f32 or bf16, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            printf("usage: kokoro-bench --conv [--fft | --decoder] [--seconds S] [--threads N] [--repeat R] [--dtype f32|bf16]\n"
                   "  times the direct convolution alone on the generator's resblock shapes for S\n"
                   "  seconds of audio (default 16), at 1 thread and at N (default: all cores),\n"
                   "  fastest of R runs each (default 3), interleaved; --dtype bf16: the bfloat16\n"
                   "  kernel (AMX tiles where the CPU has them, else vdpbf16ps); --fft: float32,\n"
                   "  each of the 18 shapes (every dilation) direct and through the FFT at each size,\n"
                   "  marking the library's choice; --decoder: float32, the decoder's K 3 convolutions,\n"
                   "  the direct kernel against the library's per-tap GEMMs\n");
            return 0;
        default: return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kokoro-bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    const int nt = (int)threads, reps = (int)repeat;
    if (fft && decoder) {
        fprintf(stderr, "kokoro-bench: --fft and --decoder are separate tables (one at a time)\n");
        return 2;
    }
    if (decoder) return bf16 ? (fprintf(stderr, "kokoro-bench: --decoder times float32 (no --dtype bf16)\n"), 2)
                             : decoder_table(seconds, nt, reps);
    if (fft) return bf16 ? (fprintf(stderr, "kokoro-bench: --fft times float32 (no --dtype bf16)\n"), 2)
                         : fft_table(seconds, nt, reps);
    kernel k = {.isa = kk_isa_active(), .bf16 = bf16};
    if (bf16 && !kk_bf16_supported()) {
        fprintf(stderr, "kokoro-bench: --dtype bf16 needs a CPU with AVX512-BF16 (this one has none)\n");
        return 1;
    }
    k.amx = bf16 && kk_amx_supported();
    /* 256 channels at 800 frames per second of audio, 128 at 4800; K 3, 7, 11 (dilation 1 here:
     * the cost does not depend on it) */
    static const shape shapes[] = {{256, 3, 1, 800}, {256, 7, 1, 800},  {256, 11, 1, 800},
                                   {128, 3, 1, 4800}, {128, 7, 1, 4800}, {128, 11, 1, 4800}};
    printf("kokoro-bench --conv: the direct convolution alone, kernel path %s, shapes of %.2f s of audio,\n"
           "fastest of %d runs, 1 and %d thread%s interleaved\n",
           kernel_name(&k), seconds, reps, nt, nt == 1 ? "" : "s");
    const double peak = kk_fma_peak(k.isa, bf16);
    printf("  multiply-add peak measured now: %.1f GFLOPS per thread; in cache: 64 rows x 192 steps repeated\n",
           peak);
    printf("  %-26s %12s %12s %14s %9s %16s\n", "shape", "1 thr GF/s", "N thr GF/s", "N thr GF/cpu-s", "scaling",
           "in cache (%peak)");
    double sum1 = 0, sumn = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *sh = &shapes[i];
        const int C = sh->C, K = sh->K, n = (int)(seconds * sh->rate + 0.5) > 0 ? (int)(seconds * sh->rate + 0.5) : 1;
        const size_t ldx = kk_dconv_ldx(n, K, sh->dil);
        const int rows = input_rows(&k, C);
        float *xp = floats((size_t)rows * ldx), *y = floats((size_t)C * n);
        float *W = malloc((size_t)C * C * K * sizeof *W), *b = malloc((size_t)C * sizeof *b);
        float *wp = floats(weight_floats(&k, C, C, K));
        if (!xp || !y || !W || !b || !wp) {
            fprintf(stderr, "kokoro-bench: out of memory for %d channels × %d steps\n", C, n);
            free(xp), free(y), free(W), free(b), free(wp);
            return 1;
        }
        unsigned s = 1;
        for (size_t q = 0; q < (size_t)C * C * K; q++) W[q] = (float)((s = s * 1664525u + 1013904223u) >> 9) * 0x1p-23f - 1.0f;
        for (int c = 0; c < C; c++) b[c] = 0.01f * c;
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < n; t++) xp[(size_t)r * ldx + t + sh->dil * (K - 1) / 2] = input_value(&k, r, t);
        pack(&k, W, C, C, K, wp);
        kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = b, .cin = C, .cout = C, .K = K, .dil = sh->dil,
                      .n = n, .y = y, .ldy = (size_t)n};
        run(&k, &d, nt); /* warm-up: pages and caches */
        double w1 = 1e30, wn = 1e30, cn = 0;
        for (int r = 0; r < reps; r++) { /* interleaved, fastest of each */
            double w, c;
            time_conv(&k, &d, 1, &w, &c);
            if (w < w1) w1 = w;
            time_conv(&k, &d, nt, &w, &c);
            if (w < wn) wn = w, cn = c;
        }
        const double flop = 2.0 * C * C * K * (double)n;
        char name[64];
        snprintf(name, sizeof name, "%d ch, K %d, %d steps", C, K, n);
        const double hot = in_cache_gflops(&k, C, K, sh->dil);
        printf("  %-26s %12.1f %12.1f %14.1f %8.2fx %9.1f (%2.0f%%)\n", name, flop / w1 * 1e-9, flop / wn * 1e-9,
               cn > 0 ? flop / cn * 1e-9 : 0.0, w1 / wn, hot, peak > 0 ? 100 * hot / peak : 0.0);
        sum1 += w1, sumn += wn;
        free(xp), free(y), free(W), free(b), free(wp);
    }
    printf("  all shapes: %d thread%s %.2fx the speed of 1\n", nt, nt == 1 ? "" : "s", sum1 / sumn);
    return 0;
}
