/* kokoro-bench end to end: the golden cases through the program, its OUT.npz
 * and --json read back, and malformed inputs refused with a message. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/npz.h"
#include "testutil.h"

static char dir[] = "/tmp/kokoro-bench-test-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs a shell command, returns its exit status; its output goes to `log`. */
static int run(const char *args, const char *log)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/%s' 2>&1", KOKORO_BENCH_PATH, args, dir, log);
    int st = system(cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) printf("  | %s", line);
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int log_contains(const char *log, const char *needle)
{
    char path[512], buf[8192] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, log);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* A usage error: exit status 2 and a message naming `needle` (the option or what was wrong). */
static void usage_error(const char *args, const char *log, const char *needle)
{
    assert_int_equal(run(args, log), 2);
    assert_true(log_contains(log, needle));
}

static void test_golden_cases(void **state)
{
    (void)state;
    char args[1024];
    snprintf(args, sizeof args,
             "--cases '%s/kokoro-golden.npz' --out '%s/out.npz' --test-weights --no-noise --threads 2 "
             "--json '%s/bench.json'",
             KOKORO_TEST_DATA, dir, dir);
    assert_int_equal(run(args, "golden.log"), 0);
    assert_true(log_contains("golden.log", "RTF"));

    kk_table out;
    char path[512];
    snprintf(path, sizeof path, "%s/out.npz", dir);
    assert_int_equal(kk_npz_read(path, &out), KOKORO_OK);
    assert_int_equal(out.count, 6);
    const char *cases[3] = {"short", "fast", "slow"};
    for (int i = 0; i < 3; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s.pred_dur", cases[i]);
        const kk_tensor *pd = kk_table_find(&out, k), *gpd = kt_golden_get(k);
        assert_non_null(pd);
        assert_int_equal(pd->dtype, KK_I64);
        assert_int_equal(pd->ndim, 1);
        assert_int_equal(pd->shape[0], gpd->shape[0]);
        assert_memory_equal(pd->data, gpd->data, gpd->nbytes);
        snprintf(k, sizeof k, "%s.audio", cases[i]);
        const kk_tensor *au = kk_table_find(&out, k), *gau = kt_golden_get(k);
        assert_non_null(au);
        assert_int_equal(au->dtype, KK_F32);
        assert_int_equal(au->shape[0], gau->shape[0]);
        size_t n = (size_t)au->shape[0];
        double e = kt_rel_l2(au->data, gau->data, n), c = kt_spectral_corr(au->data, gau->data, n);
        printf("  OUT.npz %-6s rel L2 %.3e (tol 1e-2), spectral corr %.7f (min 0.9999)\n", cases[i], e, c);
        assert_true(e <= 1e-2);
        assert_true(c >= 0.9999);
    }
    kk_table_free(&out);

    snprintf(path, sizeof path, "%s/bench.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "threads")->valueint, 2);
    const cJSON *arr = cJSON_GetObjectItem(j, "cases");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    const cJSON *c0 = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItem(c0, "name")->valuestring, "short");
    assert_int_equal(cJSON_GetObjectItem(c0, "samples")->valuedouble, 28800);
    assert_true(cJSON_GetObjectItem(c0, "seconds")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(c0, "rtf")->valuedouble > 0);
    cJSON_Delete(j);
}

static void test_repeat(void **state)
{
    (void)state;
    /* a cases file with only the short case, timed twice after a warm-up */
    kk_table in;
    kk_table_init(&in);
    const char *keys[3] = {"short.input_ids", "short.style", "short.speed"};
    for (int i = 0; i < 3; i++) {
        const kk_tensor *t = kt_golden_get(keys[i]);
        void *d = malloc(t->nbytes);
        memcpy(d, t->data, t->nbytes);
        assert_int_equal(kk_table_add(&in, keys[i], t->dtype, t->ndim, t->shape, d), KOKORO_OK);
    }
    char path[512], args[1024];
    snprintf(path, sizeof path, "%s/one.npz", dir);
    assert_int_equal(kk_npz_write(path, &in), KOKORO_OK);
    kk_table_free(&in);
    snprintf(args, sizeof args, "--cases '%s' --out '%s/one-out.npz' --test-weights --repeat 2 --seed 5", path, dir);
    assert_int_equal(run(args, "repeat.log"), 0);
    assert_true(log_contains("repeat.log", "short"));
}

/* The golden short case with one array replaced by (dtype, shape, data), as
 * dir/<file>; the others copied. Takes data. */
static void write_case(const char *file, const char *key, kk_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    kk_table in;
    kk_table_init(&in);
    const char *keys[3] = {"short.input_ids", "short.style", "short.speed"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(keys[i], key) == 0) {
            assert_int_equal(kk_table_add(&in, key, dtype, ndim, shape, data), KOKORO_OK);
            continue;
        }
        const kk_tensor *t = kt_golden_get(keys[i]);
        void *d = malloc(t->nbytes);
        memcpy(d, t->data, t->nbytes);
        assert_int_equal(kk_table_add(&in, keys[i], t->dtype, t->ndim, t->shape, d), KOKORO_OK);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(kk_npz_write(path, &in), KOKORO_OK);
    kk_table_free(&in);
}

/* kokoro-bench on dir/<file> must fail (not crash) with `needle` in its output. */
static void expect_case_refused(const char *file, const char *needle)
{
    char args[1024], log[64];
    snprintf(args, sizeof args, "--cases '%s/%s' --out '%s/x.npz' --test-weights", dir, file, dir);
    snprintf(log, sizeof log, "%s.log", file);
    assert_int_equal(run(args, log), 1);
    if (!log_contains(log, needle)) printf("  expected: %s\n", needle);
    assert_true(log_contains(log, needle));
}

/* --conv: the direct convolution alone on the resblock shapes, 1 thread
 * against N; --fft and --decoder tables; bad values refused with the option named */
static void test_conv(void **state)
{
    (void)state;
    assert_int_equal(run("--conv --seconds 0.05 --repeat 1 --threads 2", "conv.log"), 0);
    assert_true(log_contains("conv.log", "256 ch, K 11, 40 steps"));
    assert_true(log_contains("conv.log", "128 ch, K 3, 240 steps"));
    assert_true(log_contains("conv.log", "all shapes: 2 threads"));
    assert_true(log_contains("conv.log", "in cache (%peak)"));
    assert_true(log_contains("conv.log", "multiply-add peak measured now"));
    usage_error("--conv --seconds 0", "conv-bad.log", "--seconds");
    usage_error("--conv --threads many", "conv-bad2.log", "--threads");
    /* --fft: every shape direct and through the FFT at each size, the library's choice marked */
    const int rc = run("--conv --fft --seconds 1 --repeat 1 --threads 2", "conv-fft.log");
#if defined(__x86_64__) && defined(__GNUC__)
    const int avx512 = __builtin_cpu_supports("avx512f");
#else
    const int avx512 = 0;
#endif
    if (avx512) {
        assert_int_equal(rc, 0);
        assert_true(log_contains("conv-fft.log", "FFT N 128"));
        assert_true(log_contains("conv-fft.log", "128 ch K 11 dil 5"));
        assert_true(log_contains("conv-fft.log", "*")); /* some plan chosen */
    } else {
        assert_int_equal(rc, 1);
        assert_true(log_contains("conv-fft.log", "AVX-512"));
    }
    usage_error("--conv --fft --dtype bf16", "conv-fft-bad.log", "float32");
    /* --decoder: the decoder's shapes through kk_conv_apply, direct against a GEMM per tap (any CPU) */
    assert_int_equal(run("--conv --decoder --seconds 2 --repeat 1 --threads 2", "conv-dec.log"), 0);
    assert_true(log_contains("conv-dec.log", "1090 -> 1024 ch,    80 steps"));
    assert_true(log_contains("conv-dec.log", " 512 ->  512 ch,   160 steps"));
    assert_true(log_contains("conv-dec.log", "speed-up"));
    usage_error("--conv --decoder --fft", "conv-dec-bad.log", "one at a time");
    usage_error("--conv --decoder --dtype bf16", "conv-dec-bad2.log", "float32");
}

static void test_bad_invocations(void **state)
{
    (void)state;
    char args[1024], path[512];
    /* a file that is not an npz */
    snprintf(path, sizeof path, "%s/garbage.npz", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a zip file", f);
    fclose(f);
    snprintf(args, sizeof args, "--cases '%s' --out '%s/x.npz' --test-weights", path, dir);
    assert_int_not_equal(run(args, "bad1.log"), 0);
    assert_true(log_contains("bad1.log", "garbage.npz"));

    /* a truncated copy of the golden file */
    snprintf(args, sizeof args, "head -c 100000 '%s/kokoro-golden.npz' > '%s/trunc.npz'", KOKORO_TEST_DATA, dir);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "--cases '%s/trunc.npz' --out '%s/x.npz' --test-weights", dir, dir);
    assert_int_not_equal(run(args, "bad2.log"), 0);
    assert_true(log_contains("bad2.log", "trunc.npz"));

    /* a case without its style */
    kk_table in;
    kk_table_init(&in);
    const kk_tensor *t = kt_golden_get("short.input_ids");
    void *d = malloc(t->nbytes);
    memcpy(d, t->data, t->nbytes);
    assert_int_equal(kk_table_add(&in, "short.input_ids", t->dtype, t->ndim, t->shape, d), KOKORO_OK);
    snprintf(path, sizeof path, "%s/nostyle.npz", dir);
    assert_int_equal(kk_npz_write(path, &in), KOKORO_OK);
    kk_table_free(&in);
    snprintf(args, sizeof args, "--cases '%s' --out '%s/x.npz' --test-weights", path, dir);
    assert_int_not_equal(run(args, "bad3.log"), 0);
    assert_true(log_contains("bad3.log", "short.style"));

    /* input_ids as float32, a style of 255 values, ids without their pads */
    const kk_tensor *gi = kt_golden_get("short.input_ids");
    int64_t T = gi->shape[1];
    float *fids = malloc((size_t)T * sizeof *fids);
    for (int64_t i = 0; i < T; i++) fids[i] = (float)((const int64_t *)gi->data)[i];
    write_case("f32ids.npz", "short.input_ids", KK_F32, 2, (int64_t[]){1, T}, fids);
    snprintf(args, sizeof args, "'short.input_ids' is float32 1x%lld; expected int64 of shape (1, T)", (long long)T);
    expect_case_refused("f32ids.npz", args);
    write_case("style255.npz", "short.style", KK_F32, 2, (int64_t[]){1, 255}, calloc(255, sizeof(float)));
    expect_case_refused("style255.npz", "'short.style' is float32 1x255; expected float32 of shape (1, 256)");
    int64_t *nopad = malloc((size_t)(T - 2) * sizeof *nopad);
    memcpy(nopad, (const int64_t *)gi->data + 1, (size_t)(T - 2) * sizeof *nopad);
    write_case("nopad.npz", "short.input_ids", KK_I64, 2, (int64_t[]){1, T - 2}, nopad); /* takes nopad */
    snprintf(args, sizeof args,
             "'short.input_ids' must hold at least one phoneme id between the pad id 0 at both ends (it has %lld "
             "ids, from %lld to %lld)",
             (long long)(T - 2), (long long)((const int64_t *)gi->data)[1], (long long)((const int64_t *)gi->data)[T - 2]);
    expect_case_refused("nopad.npz", args);
    /* the speed as float64 */
    write_case("speed64.npz", "short.speed", KK_F64, 1, (int64_t[]){1}, memcpy(malloc(8), &(double){1.0}, 8));
    expect_case_refused("speed64.npz", "'short.speed' is float64 1; expected float32 of shape (1,)");

    /* usage errors */
    usage_error("--cases a.npz", "bad4.log", "--out");
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s/x.npz' --test-weights --threads 0",
             KOKORO_TEST_DATA, dir);
    usage_error(args, "bad5.log", "--threads");
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s/x.npz'", KOKORO_TEST_DATA, dir);
    assert_int_equal(run(args, "bad6.log"), 2);
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s/x.npz' --model '%s/garbage.npz'",
             KOKORO_TEST_DATA, dir, dir);
    assert_int_not_equal(run(args, "bad7.log"), 0);
    assert_true(log_contains("bad7.log", "garbage.npz"));

    /* nothing half-written was left behind */
    snprintf(path, sizeof path, "%s/x.npz", dir);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* --tokens N (long synthetic input), --profile (per-stage table), --dtype */
static void test_profile_long(void **state)
{
    (void)state;
    char args[1024], path[512];
    snprintf(args, sizeof args, "--tokens 20 --profile --out '%s/long.npz' --test-weights --no-noise --threads 2",
             dir);
    assert_int_equal(run(args, "long.log"), 0);
    assert_true(log_contains("long.log", "long "));
    assert_true(log_contains("long.log", "gen: resblocks 128ch"));
    assert_true(log_contains("long.log", "all stages"));
    assert_true(log_contains("long.log", "GF/cpu-s"));
    kk_table t;
    snprintf(path, sizeof path, "%s/long.npz", dir);
    assert_int_equal(kk_npz_read(path, &t), KOKORO_OK);
    const kk_tensor *a = kk_table_find(&t, "long.audio"), *d = kk_table_find(&t, "long.pred_dur");
    assert_non_null(a);
    assert_non_null(d);
    assert_int_equal(d->shape[0], 22);
    assert_true(a->shape[0] > 0);
    kk_table_free(&t);

    snprintf(args, sizeof args, "--tokens 0 --out '%s/x.npz' --test-weights", dir);
    usage_error(args, "badtok.log", "--tokens");
    snprintf(args, sizeof args, "--tokens 511 --out '%s/x.npz' --test-weights", dir);
    assert_int_equal(run(args, "badtok2.log"), 2);
    snprintf(args, sizeof args, "--tokens 5 --dtype bf17 --out '%s/x.npz' --test-weights", dir);
    usage_error(args, "baddt.log", "--dtype");
    snprintf(args, sizeof args, "--tokens 5 --dtype bf16 --out '%s/bf.npz' --test-weights", dir);
    if (kokoro_dtype_supported(KOKORO_DTYPE_BF16)) {
        assert_int_equal(run(args, "bf16.log"), 0);
        assert_true(log_contains("bf16.log", "dtype bf16"));
    } else {
        assert_int_not_equal(run(args, "bf16.log"), 0);
        assert_true(log_contains("bf16.log", "AVX512-BF16"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_repeat),
        cmocka_unit_test(test_bad_invocations),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_profile_long),
    };
    return cmocka_run_group_tests_name("bench", tests, setup, teardown);
}
