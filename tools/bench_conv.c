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
#include "nn/dconv.h"

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

/* one run: its wall and CPU seconds */
static void time_conv(kk_isa isa, const kk_dconv *d, int threads, double *w, double *c)
{
    *w = wall(), *c = cpu();
    kk_dconv_run(isa, d, threads);
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
static double in_cache_gflops(kk_isa isa, int cin, int K, int dil)
{
    const int cout = 64, n = 192;
    const size_t ldx = kk_dconv_ldx(n, K, dil);
    float *xp = floats((size_t)cin * ldx), *y = floats((size_t)cout * n);
    float *wp = floats(kk_dconv_pack_floats(isa, cout, cin, K));
    double best = 0;
    if (xp && y && wp) {
        for (size_t i = 0; i < (size_t)cin * ldx; i++) xp[i] = (float)(i % 17) - 8.0f;
        kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .cin = cin, .cout = cout, .K = K, .dil = dil, .n = n,
                      .y = y, .ldy = (size_t)n};
        const double flop = 2.0 * cin * cout * K * n;
        const int reps = (int)(4e9 / flop) + 1; /* ~20 ms at 200 GFLOPS */
        kk_dconv_run(isa, &d, 1);
        for (int r = 0; r < 3; r++) {
            double t = wall();
            for (int i = 0; i < reps; i++) kk_dconv_run(isa, &d, 1);
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

int kk_bench_conv_main(int argc, char **argv)
{
    double seconds = 16, threads = kokoro_cpu_count(), repeat = 3;
    static const struct option opts[] = {
        {"conv", no_argument, 0, 'c'},           {"seconds", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"repeat", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': break;
        case 's':
            if (parse_num("--seconds", optarg, 0.01, 600, &seconds)) return 2;
            break;
        case 't':
            if (parse_num("--threads", optarg, 1, 256, &threads)) return 2;
            break;
        case 'r':
            if (parse_num("--repeat", optarg, 1, 1000, &repeat)) return 2;
            break;
        case 'h':
            printf("usage: kokoro-bench --conv [--seconds S] [--threads N] [--repeat R]\n"
                   "  times the direct convolution alone on the generator's resblock shapes for S\n"
                   "  seconds of audio (default 16), at 1 thread and at N (default: all cores),\n"
                   "  fastest of R runs each (default 3), interleaved\n");
            return 0;
        default: return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kokoro-bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    const int nt = (int)threads, reps = (int)repeat;
    const kk_isa isa = kk_isa_active();
    /* 256 channels at 800 frames per second of audio, 128 at 4800; K 3, 7, 11 (dilation 1 here:
     * the cost does not depend on it) */
    static const shape shapes[] = {{256, 3, 1, 800}, {256, 7, 1, 800},  {256, 11, 1, 800},
                                   {128, 3, 1, 4800}, {128, 7, 1, 4800}, {128, 11, 1, 4800}};
    printf("kokoro-bench --conv: the direct convolution alone, kernel path %s, shapes of %.2f s of audio,\n"
           "fastest of %d runs, 1 and %d thread%s interleaved\n",
           kk_isa_name(isa), seconds, reps, nt, nt == 1 ? "" : "s");
    const double peak = kk_fma_peak(isa, 0);
    printf("  multiply-add peak measured now: %.1f GFLOPS per thread; in cache: 64 rows x 192 steps repeated\n",
           peak);
    printf("  %-26s %12s %12s %14s %9s %16s\n", "shape", "1 thr GF/s", "N thr GF/s", "N thr GF/cpu-s", "scaling",
           "in cache (%peak)");
    double sum1 = 0, sumn = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *sh = &shapes[i];
        const int C = sh->C, K = sh->K, n = (int)(seconds * sh->rate + 0.5) > 0 ? (int)(seconds * sh->rate + 0.5) : 1;
        const size_t ldx = kk_dconv_ldx(n, K, sh->dil);
        float *xp = floats((size_t)C * ldx), *y = floats((size_t)C * n);
        float *W = malloc((size_t)C * C * K * sizeof *W), *b = malloc((size_t)C * sizeof *b);
        float *wp = floats(kk_dconv_pack_floats(isa, C, C, K));
        if (!xp || !y || !W || !b || !wp) {
            fprintf(stderr, "kokoro-bench: out of memory for %d channels × %d steps\n", C, n);
            free(xp), free(y), free(W), free(b), free(wp);
            return 1;
        }
        unsigned s = 1;
        for (size_t k = 0; k < (size_t)C * C * K; k++) W[k] = (float)((s = s * 1664525u + 1013904223u) >> 9) * 0x1p-23f - 1.0f;
        for (int c = 0; c < C; c++) {
            b[c] = 0.01f * c;
            for (int t = 0; t < n; t++) xp[(size_t)c * ldx + t + sh->dil * (K - 1) / 2] = (float)((c * 31 + t) % 17) - 8.0f;
        }
        kk_dconv_pack(isa, W, C, C, K, wp);
        kk_dconv d = {.xp = xp, .ldx = ldx, .wp = wp, .b = b, .cin = C, .cout = C, .K = K, .dil = sh->dil,
                      .n = n, .y = y, .ldy = (size_t)n};
        kk_dconv_run(isa, &d, nt); /* warm-up: pages and caches */
        double w1 = 1e30, wn = 1e30, cn = 0;
        for (int r = 0; r < reps; r++) { /* interleaved, fastest of each */
            double w, c;
            time_conv(isa, &d, 1, &w, &c);
            if (w < w1) w1 = w;
            time_conv(isa, &d, nt, &w, &c);
            if (w < wn) wn = w, cn = c;
        }
        const double flop = 2.0 * C * C * K * (double)n;
        char name[64];
        snprintf(name, sizeof name, "%d ch, K %d, %d steps", C, K, n);
        const double hot = in_cache_gflops(isa, C, K, sh->dil);
        printf("  %-26s %12.1f %12.1f %14.1f %8.2fx %9.1f (%2.0f%%)\n", name, flop / w1 * 1e-9, flop / wn * 1e-9,
               cn > 0 ? flop / cn * 1e-9 : 0.0, w1 / wn, hot, peak > 0 ? 100 * hot / peak : 0.0);
        sum1 += w1, sumn += wn;
        free(xp), free(y), free(W), free(b), free(wp);
    }
    printf("  all shapes: %d thread%s %.2fx the speed of 1\n", nt, nt == 1 ? "" : "s", sum1 / sumn);
    return 0;
}
