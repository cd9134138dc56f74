/* kokoro-bench: synthesises cases from an .npz file and measures the speed.
 *
 *   kokoro-bench --cases IN.npz --out OUT.npz [--test-weights | --model FILE]
 *                [--no-noise] [--seed N] [--threads N] [--repeat N] [--json FILE]
 *                [--tokens N] [--profile] [--peak GFLOPS] [--dtype f32|bf16]
 *
 * A case <name> is given by <name>.input_ids (1,T) int64 with the 0 pad at
 * both ends, <name>.style (1,256) float32 and <name>.speed (1,) float32. For
 * each, OUT.npz receives <name>.pred_dur (T,) int64 and <name>.audio (N,)
 * float32. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_conv.h"
#include "bench_pipeline.h"
#include "core/error.h"
#include "io/npz.h"
#include "kokoro.h"
#include "model/model.h"
#include "nn/dconv.h"

typedef struct bench_case {
    char name[128];
    const int64_t *ids; /* with pads */
    size_t T;
    float style[KOKORO_STYLE_DIM];
    float speed;
    size_t samples;
    double seconds, rtf;
    kk_profile prof; /* of the fastest run */
} bench_case;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kokoro-bench --cases IN.npz --out OUT.npz [--test-weights | --model FILE]\n"
            "                    [--no-noise] [--seed N] [--threads N] [--repeat N] [--json FILE]\n"
            "                    [--tokens N] [--profile] [--peak GFLOPS] [--dtype f32|bf16]\n"
            "\n"
            "  --cases IN.npz    cases: <name>.input_ids (1,T) int64 incl. the 0 pads,\n"
            "                    <name>.style (1,256) float32, <name>.speed (1,) float32\n"
            "  --out OUT.npz     writes <name>.pred_dur (T,) int64 and <name>.audio (N,) float32\n"
            "  --test-weights    the deterministic test weights (noise, not speech)\n"
            "  --model FILE      weights from a file (.pth checkpoint, .npz state dict or a converted file)\n"
            "  --no-noise        zero noise in the harmonic source (the golden reference's mode)\n"
            "  --seed N          seed of the harmonic source's noise (default 0)\n"
            "  --threads N       threads for the numeric kernels (default: all cores)\n"
            "  --repeat N        time each case N times after a warm-up and keep the fastest\n"
            "  --json FILE       also write {\"cases\":[{name,samples,seconds,rtf}],\"threads\"}\n"
            "  --tokens N        add a case 'long': N random valid ids (fixed seed), the first case's\n"
            "                    style (or a fixed one), speed 1 (--cases becomes optional)\n"
            "  --profile         per-stage time, GMAC, GFLOPS and percent of peak (summed over cases)\n"
            "  --peak GFLOPS     peak for the percentages (default: this CPU's multiply-add peak,\n"
            "                    measured at start-up on one thread, times the threads)\n"
            "  --dtype f32|bf16  compute precision (bf16: AVX512-BF16 CPUs, the convolutions in\n"
            "                    bfloat16 (on AMX tiles where the CPU has them), ALBERT and F0/N\n"
            "                    in float32; default f32)\n"
            "  The environment variable KOKORO_ISA=generic|avx2|avx512 forces a kernel path.\n"
            "\n"
            "       kokoro-bench --conv [--fft | --decoder] [--seconds S] [--threads N] [--repeat R]\n"
            "  the direct convolution alone on the generator's resblock shapes, 1 thread against N;\n"
            "  --fft: each shape through the FFT too; --decoder: the decoder's convolutions, direct\n"
            "  against a GEMM per tap (kokoro-bench --conv --help)\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "kokoro-bench: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "kokoro-bench: %s expects a non-negative integer, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Finds the cases in the table and checks their shapes and types. */
static int collect_cases(const kk_table *t, const char *path, bench_case **out, size_t *count)
{
    bench_case *cases = NULL;
    size_t n = 0;
    static const char sfx[] = ".input_ids";
    for (size_t i = 0; i < t->count; i++) {
        const kk_tensor *ids = &t->items[i];
        size_t len = strlen(ids->name);
        if (len <= strlen(sfx) || strcmp(ids->name + len - strlen(sfx), sfx) != 0) continue;
        bench_case *c = realloc(cases, (n + 1) * sizeof *c);
        if (!c) goto nomem;
        cases = c;
        c = &cases[n];
        memset(c, 0, sizeof *c);
        size_t nl = len - strlen(sfx);
        if (nl >= sizeof c->name) {
            fprintf(stderr, "kokoro-bench: %s: case name '%s' is too long\n", path, ids->name);
            goto fail;
        }
        memcpy(c->name, ids->name, nl);
        if (ids->dtype != KK_I64 || !((ids->ndim == 2 && ids->shape[0] == 1) || ids->ndim == 1)) {
            char sh[64];
            fprintf(stderr, "kokoro-bench: %s: '%s' is %s %s; expected int64 of shape (1, T)\n", path, ids->name,
                    kk_dtype_name(ids->dtype), kk_shape_str(ids->ndim, ids->shape, sh, sizeof sh));
            goto fail;
        }
        c->ids = ids->data;
        c->T = (size_t)ids->shape[ids->ndim - 1];
        if (c->T < 3 || c->ids[0] != 0 || c->ids[c->T - 1] != 0) {
            fprintf(stderr,
                    "kokoro-bench: %s: '%s' must hold at least one phoneme id between the pad id 0 at both ends "
                    "(it has %zu ids",
                    path, ids->name, c->T);
            if (c->T) fprintf(stderr, ", from %lld to %lld", (long long)c->ids[0], (long long)c->ids[c->T - 1]);
            fprintf(stderr, ")\n");
            goto fail;
        }
        char key[160];
        snprintf(key, sizeof key, "%s.style", c->name);
        const kk_tensor *st = kk_table_find(t, key);
        if (!st) {
            fprintf(stderr, "kokoro-bench: %s: case '%s' needs '%s', float32 of shape (1, 256)\n", path, c->name,
                    key);
            goto fail;
        }
        if (kk_tensor_numel(st) != KOKORO_STYLE_DIM || st->ndim < 1 || st->shape[st->ndim - 1] != KOKORO_STYLE_DIM ||
            st->dtype != KK_F32) {
            char sh[64];
            fprintf(stderr, "kokoro-bench: %s: '%s' is %s %s; expected float32 of shape (1, 256)\n", path, key,
                    kk_dtype_name(st->dtype), kk_shape_str(st->ndim, st->shape, sh, sizeof sh));
            goto fail;
        }
        memcpy(c->style, st->data, sizeof c->style);
        snprintf(key, sizeof key, "%s.speed", c->name);
        const kk_tensor *sp = kk_table_find(t, key);
        if (!sp) {
            fprintf(stderr, "kokoro-bench: %s: case '%s' needs '%s', float32 of shape (1,)\n", path, c->name, key);
            goto fail;
        }
        if (kk_tensor_numel(sp) != 1 || sp->dtype != KK_F32) {
            char sh[64];
            fprintf(stderr, "kokoro-bench: %s: '%s' is %s %s; expected float32 of shape (1,)\n", path, key,
                    kk_dtype_name(sp->dtype), kk_shape_str(sp->ndim, sp->shape, sh, sizeof sh));
            goto fail;
        }
        memcpy(&c->speed, sp->data, sizeof c->speed);
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "kokoro-bench: %s: no case found (no '<name>.input_ids' array)\n", path);
        goto fail;
    }
    *out = cases;
    *count = n;
    return 0;
nomem:
    fprintf(stderr, "kokoro-bench: out of memory\n");
fail:
    free(cases);
    return -1;
}

static int write_json(const char *path, const bench_case *cases, size_t n, int threads)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "cases");
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", cases[i].name);
        cJSON_AddNumberToObject(c, "samples", (double)cases[i].samples);
        cJSON_AddNumberToObject(c, "seconds", cases[i].seconds);
        cJSON_AddNumberToObject(c, "rtf", cases[i].rtf);
        cJSON_AddItemToArray(arr, c);
    }
    cJSON_AddNumberToObject(root, "threads", threads);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return -1;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f) { /* all three run, whatever the earlier ones said */
        int flushed = fflush(f) == 0, synced = fsync(fileno(f)) == 0, closed = fclose(f) == 0;
        ok = ok && flushed && synced && closed;
    }
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "kokoro-bench: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* A long synthetic input: n random ids of the vocabulary (fixed xorshift
 * seed), so speed can be measured on more than the short golden cases. */
static int add_long_case(bench_case **cases, size_t *n, long ntok, int64_t **ids_out)
{
    bench_case *c = realloc(*cases, (*n + 1) * sizeof *c);
    int64_t *ids = malloc((size_t)(ntok + 2) * sizeof *ids);
    if (!c || !ids) {
        if (c) *cases = c;
        free(ids);
        return -1;
    }
    *cases = c;
    c = &c[*n];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "long");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    ids[0] = ids[ntok + 1] = 0;
    for (long i = 1; i <= ntok; i++) {
        int64_t id;
        do {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            id = (int64_t)(x % 178);
        } while (!kokoro_vocab_has_id(id));
        ids[i] = id;
    }
    if (*n > 0)
        memcpy(c->style, (*cases)[0].style, sizeof c->style);
    else
        for (int i = 0; i < KOKORO_STYLE_DIM; i++) c->style[i] = 0.1f * (float)sin(0.37 * i + 1.0);
    c->ids = ids;
    c->T = (size_t)ntok + 2;
    c->speed = 1.0f;
    *ids_out = ids;
    (*n)++;
    return 0;
}

static void print_profile(const bench_case *cases, size_t n, int threads, double peak, int bf16,
                          const kokoro_model *model)
{
    kk_profile p = {0};
    double audio = 0, wall = 0;
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < KK_PROF_COUNT; s++) {
            p.sec[s] += cases[i].prof.sec[s];
            p.macs[s] += cases[i].prof.macs[s];
            p.cpu[s] += cases[i].prof.cpu[s];
        }
        audio += (double)cases[i].samples / KOKORO_SAMPLE_RATE;
        wall += cases[i].seconds;
    }
    double tsec = 0, tmac = 0, tcpu = 0;
    for (int s = 0; s < KK_PROF_COUNT; s++) tsec += p.sec[s], tmac += p.macs[s], tcpu += p.cpu[s];
    double mpeak = kk_fma_peak(kk_isa_active(), bf16);
    if (!(peak > 0)) peak = mpeak * threads; /* no --peak: this machine's own */
    printf("profile: %.2f s of audio, %d thread%s, kernel path %s%s, peak %.0f GFLOPS (%%peak);\n"
           "  multiply-add peak measured now: %.1f GFLOPS per CPU second of one thread (%%meas compares "
           "GF/cpu-s with it)\n",
           audio, threads, threads == 1 ? "" : "s", kk_isa_name(kk_isa_active()),
           bf16 ? (kk_amx_supported() ? " + bf16 on AMX tiles (resblocks, decoder, ups), ALBERT and F0/N in float32"
                                      : " + bf16 resblocks (vdpbf16ps), ALBERT and F0/N in float32")
                : "",
           peak, mpeak);
    /* GFLOPS per wall second against the peak of all threads; GF/cpu-s per
     * CPU second (all threads), which a busy machine disturbs far less */
    printf("  %-32s %9s %6s %7s %9s %8s %7s %9s %8s %7s\n", "stage", "ms", "time%", "RTF", "GMAC", "GFLOPS", "%peak",
           "cpu ms", "GF/cpu-s", "%meas");
    for (int s = 0; s <= KK_PROF_COUNT; s++) {
        int all = s == KK_PROF_COUNT;
        double sec = all ? tsec : p.sec[s], cpu = all ? tcpu : p.cpu[s], mac = all ? tmac : p.macs[s];
        double gf = sec > 0 ? 2e-9 * mac / sec : 0, gfc = cpu > 0 ? 2e-9 * mac / cpu : 0;
        printf("  %-32s %9.1f %5.1f%% %7.4f %9.3f %8.1f %6.1f%% %9.1f %8.1f %6.1f%%\n",
               all ? "all stages" : kk_prof_names[s], 1e3 * sec, tsec > 0 ? 100 * sec / tsec : 0,
               audio > 0 ? sec / audio : 0, 1e-9 * mac, gf, 100 * gf / peak, 1e3 * cpu, gfc,
               mpeak > 0 ? 100 * gfc / mpeak : 0);
    }
    printf("  %-32s %9.1f        %7.4f   (%.2f GMAC per second of audio)\n", "wall (incl. API checks)", 1e3 * wall,
           audio > 0 ? wall / audio : 0, audio > 0 ? 1e-9 * tmac / audio : 0);
    printf("  weights repacked or converted (made by the first call, kept with the model; bf16 and the float32\n"
           "  upsamplings): %.1f MB\n",
           kk_memo_bytes(model->memo) / 1048576.0);
}

int main(int argc, char **argv)
{
    if (kk_bench_pipeline_wanted(argc, argv)) return kk_bench_pipeline_main(argc, argv);
    if (kk_bench_conv_wanted(argc, argv)) return kk_bench_conv_main(argc, argv);
    const char *cases_path = NULL, *out_path = NULL, *model_path = NULL, *json_path = NULL;
    int test_weights = 0, no_noise = 0, profile = 0, dtype = KOKORO_DTYPE_F32;
    long threads = 0, repeat = 1, ntokens = 0;
    double peak = 0;
    int64_t *long_ids = NULL;
    uint64_t seed = 0;
    static const struct option opts[] = {
        {"cases", required_argument, 0, 'c'},  {"out", required_argument, 0, 'o'},
        {"model", required_argument, 0, 'm'},  {"test-weights", no_argument, 0, 'w'},
        {"no-noise", no_argument, 0, 'n'},     {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"repeat", required_argument, 0, 'r'},
        {"json", required_argument, 0, 'j'},   {"help", no_argument, 0, 'h'},
        {"tokens", required_argument, 0, 'T'}, {"profile", no_argument, 0, 'p'},
        {"peak", required_argument, 0, 'P'},   {"dtype", required_argument, 0, 'd'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cases_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'm': model_path = optarg; break;
        case 'w': test_weights = 1; break;
        case 'n': no_noise = 1; break;
        case 's':
            if (parse_u64("--seed", optarg, &seed)) return 2;
            break;
        case 't':
            if (parse_long("--threads", optarg, 1, 1024, &threads)) return 2;
            break;
        case 'r':
            if (parse_long("--repeat", optarg, 1, 1000000, &repeat)) return 2;
            break;
        case 'j': json_path = optarg; break;
        case 'T':
            if (parse_long("--tokens", optarg, 1, KOKORO_MAX_TOKENS, &ntokens)) return 2;
            break;
        case 'p': profile = 1; break;
        case 'd':
            if (strcmp(optarg, "f32") == 0 || strcmp(optarg, "fp32") == 0) dtype = KOKORO_DTYPE_F32;
            else if (strcmp(optarg, "bf16") == 0) dtype = KOKORO_DTYPE_BF16;
            else {
                fprintf(stderr, "kokoro-bench: --dtype expects f32 or bf16, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'P': {
            char *end;
            peak = strtod(optarg, &end);
            if (end == optarg || *end || !(peak > 0) || peak > 1e7) {
                fprintf(stderr, "kokoro-bench: --peak expects GFLOPS > 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kokoro-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if ((!cases_path && !ntokens) || !out_path) {
        fprintf(stderr, "kokoro-bench: --cases and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (test_weights == !!model_path) {
        fprintf(stderr, "kokoro-bench: give exactly one of --test-weights and --model FILE\n");
        return 2;
    }

    kk_table table;
    kk_table_init(&table);
    if (cases_path && kk_npz_read(cases_path, &table) != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
        return 1;
    }
    bench_case *cases = NULL;
    size_t ncases = 0;
    if (cases_path && collect_cases(&table, cases_path, &cases, &ncases)) {
        kk_table_free(&table);
        return 1;
    }
    if (ntokens && add_long_case(&cases, &ncases, ntokens, &long_ids)) {
        fprintf(stderr, "kokoro-bench: out of memory\n");
        free(cases);
        kk_table_free(&table);
        return 1;
    }

    kokoro_set_num_threads((int)threads);
    int nthreads = kokoro_get_num_threads();
    double t0 = now();
    kokoro_model *model = NULL;
    kokoro_status st = test_weights ? kokoro_model_load_test_weights(&model) : kokoro_model_load(model_path, &model);
    if (st != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
        free(cases);
        free(long_ids);
        kk_table_free(&table);
        return 1;
    }
    printf("kokoro-bench %s: %s loaded in %.2f s, %zu cases, %d thread%s, noise %s, dtype %s, kernels %s\n",
           kokoro_version(), test_weights ? "test weights" : model_path, now() - t0, ncases, nthreads,
           nthreads == 1 ? "" : "s", no_noise ? "off" : "on", dtype == KOKORO_DTYPE_BF16 ? "bf16" : "f32",
           kk_isa_name(kk_isa_active()));

    kk_table outt;
    kk_table_init(&outt);
    int rc = 0;
    double total_audio = 0, total_wall = 0;
    for (size_t i = 0; i < ncases && rc == 0; i++) {
        bench_case *c = &cases[i];
        kokoro_synth_options o = kokoro_synth_options_default();
        o.speed = c->speed;
        o.seed = seed;
        o.no_noise = no_noise;
        o.dtype = dtype;
        kokoro_audio audio = {0};
        double best = 0;
        for (long r = 0; r < (repeat > 1 ? repeat + 1 : 1); r++) { /* run 0 is the warm-up when repeating */
            kokoro_audio_free(&audio);
            kk_profile prof = {0};
            double s = now();
            st = kk_synthesize_profiled(model, c->ids + 1, c->T - 2, c->style, &o, &audio, profile ? &prof : NULL);
            double wall = now() - s;
            if (st != KOKORO_OK) break;
            if ((repeat == 1 || r > 0) && (best == 0 || wall < best)) {
                best = wall;
                c->prof = prof;
            }
        }
        if (st != KOKORO_OK) {
            fprintf(stderr, "kokoro-bench: case '%s': %s\n", c->name, kokoro_last_error());
            rc = 1;
            break;
        }
        c->samples = audio.n_samples;
        c->seconds = best;
        double secs = (double)audio.n_samples / KOKORO_SAMPLE_RATE;
        c->rtf = secs > 0 ? best / secs : 0;
        total_audio += secs;
        total_wall += best;
        printf("  %-16s %4zu tokens %8zu samples (%6.2f s audio)  wall %8.4f s  RTF %.4f\n", c->name, c->T,
               c->samples, secs, best, c->rtf);
        char key[160];
        int64_t shape[1] = {(int64_t)audio.n_durations};
        snprintf(key, sizeof key, "%s.pred_dur", c->name);
        st = kk_table_add(&outt, key, KK_I64, 1, shape, audio.durations);
        shape[0] = (int64_t)audio.n_samples;
        snprintf(key, sizeof key, "%s.audio", c->name);
        if (st == KOKORO_OK) st = kk_table_add(&outt, key, KK_F32, 1, shape, audio.samples);
        else free(audio.samples);
        if (st != KOKORO_OK) {
            fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("  %-16s %34s (%6.2f s audio)  wall %8.4f s  RTF %.4f\n", "total", "", total_audio, total_wall,
               total_audio > 0 ? total_wall / total_audio : 0);
        if (profile)
            print_profile(cases, ncases, nthreads, peak, dtype == KOKORO_DTYPE_BF16, model);
        if (kk_npz_write(out_path, &outt) != KOKORO_OK) {
            fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
            rc = 1;
        }
    }
    if (rc == 0 && json_path && write_json(json_path, cases, ncases, nthreads)) rc = 1;
    kk_table_free(&outt);
    kokoro_model_free(model);
    free(cases);
    free(long_ids);
    kk_table_free(&table);
    return rc;
}
