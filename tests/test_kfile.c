/* Our own model file: written by kokoro_model_convert / kokoro-convert from
 * the test weights or a full-size official-layout .pth, it loads by mapping,
 * gives the same audio (float32: bit for bit; bfloat16: within the bf16
 * tolerance), carries the voices, and malformed files are refused with a
 * message that names what is wrong. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/npz.h"
#include "kokoro.h"
#include "model/model.h"
#include "testutil.h"
#include "torchwrite.h"

static char dir[] = "/tmp/kokoro-kfile-test-XXXXXX";
static char f32_path[600], bf16_path[600];

static const char *in_dir(const char *name)
{
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    snprintf(f32_path, sizeof f32_path, "%s/test.kokoro", dir);
    snprintf(bf16_path, sizeof bf16_path, "%s/test-bf16.kokoro", dir);
    if (kokoro_model_convert(NULL, KOKORO_TEST_DATA "/voices", f32_path, KOKORO_DTYPE_F32) != KOKORO_OK ||
        kokoro_model_convert(NULL, NULL, bf16_path, KOKORO_DTYPE_BF16) != KOKORO_OK) {
        printf("  %s\n", kokoro_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The golden "short" case through a model, in a compute dtype. */
static void synth_short_dt(const kokoro_model *m, int dtype, kokoro_audio *a)
{
    const kk_tensor *ids = kt_golden_get("short.input_ids");
    const float *style = kt_golden_get("short.style")->data;
    kokoro_synth_options o = kokoro_synth_options_default();
    o.no_noise = 1;
    o.dtype = dtype;
    assert_int_equal(kokoro_synthesize(m, (const int64_t *)ids->data + 1, (size_t)ids->shape[1] - 2, style, &o, a),
                     KOKORO_OK);
}

/* ... with the default options (dtype KOKORO_DTYPE_AUTO) */
static void synth_short(const kokoro_model *m, kokoro_audio *a) { synth_short_dt(m, KOKORO_DTYPE_AUTO, a); }

static int same_audio(const kokoro_audio *a, const kokoro_audio *b)
{
    return a->n_samples == b->n_samples && memcmp(a->samples, b->samples, a->n_samples * sizeof *a->samples) == 0;
}

static kokoro_model *load_ok(const char *path)
{
    kokoro_model *m = NULL;
    kokoro_status st = kokoro_model_load(path, &m);
    if (st != KOKORO_OK) printf("  %s: %s\n", path, kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    return m;
}

static void test_f32_identical(void **state)
{
    (void)state;
    double t0 = now();
    kokoro_model *mapped = load_ok(f32_path);
    double t_load = now() - t0;
    kokoro_model *direct;
    assert_int_equal(kokoro_model_load_test_weights(&direct), KOKORO_OK);
    assert_int_equal(kokoro_model_num_params(mapped), kokoro_model_num_params(direct));
    kokoro_audio a, b;
    synth_short(mapped, &a);
    synth_short(direct, &b);
    assert_int_equal(a.n_samples, b.n_samples);
    assert_memory_equal(a.durations, b.durations, a.n_durations * sizeof *a.durations);
    assert_memory_equal(a.samples, b.samples, a.n_samples * sizeof(float));
    struct stat sb;
    assert_int_equal(stat(f32_path, &sb), 0);
    printf("  float32 file (%.0f MB) loads in %.3f s; audio bit-identical to the in-memory test weights\n",
           (double)sb.st_size / 1e6, t_load);
    kokoro_audio_free(&a);
    kokoro_audio_free(&b);
    kokoro_model_free(mapped);
    kokoro_model_free(direct);
}

static void test_bf16_close(void **state)
{
    (void)state;
    double t0 = now();
    kokoro_model *m16 = load_ok(bf16_path);
    double t_load = now() - t0;
    kokoro_model *m32 = load_ok(f32_path);
    kokoro_audio a, b;
    synth_short(m16, &a);
    synth_short(m32, &b);
    assert_int_equal(a.n_samples, b.n_samples);
    double rel = kt_rel_l2(a.samples, b.samples, a.n_samples), corr = kt_spectral_corr(a.samples, b.samples, a.n_samples);
    struct stat s16, s32;
    assert_int_equal(stat(bf16_path, &s16), 0);
    assert_int_equal(stat(f32_path, &s32), 0);
    printf("  bfloat16 file: %.0f MB (float32 %.0f MB), loads in %.3f s; audio vs float32: rel L2 %.2e, spectral "
           "corr %.6f\n",
           (double)s16.st_size / 1e6, (double)s32.st_size / 1e6, t_load, rel, corr);
    assert_memory_equal(a.durations, b.durations, a.n_durations * sizeof *a.durations);
    assert_true(s16.st_size < s32.st_size * 7 / 10);
    assert_true(rel <= 5e-2);
    assert_true(corr >= 0.999);
    /* the default dtype follows the file: bf16 compute for the bf16 file where the CPU has it,
     * float32 for the float32 file */
    kokoro_audio c, d;
    synth_short_dt(m32, KOKORO_DTYPE_F32, &c);
    assert_true(same_audio(&b, &c));
    kokoro_audio_free(&c);
    synth_short_dt(m16, KOKORO_DTYPE_F32, &c);
    if (kokoro_dtype_supported(KOKORO_DTYPE_BF16)) {
        synth_short_dt(m16, KOKORO_DTYPE_BF16, &d);
        assert_true(same_audio(&a, &d));
        assert_false(same_audio(&a, &c));
        printf("  bfloat16 file, default options: computed in bf16 (as KOKORO_DTYPE_BF16, not float32)\n");
        kokoro_audio_free(&d);
    } else {
        assert_true(same_audio(&a, &c));
        printf("  bfloat16 file, default options: computed in float32 (this CPU has no bf16 compute)\n");
    }
    kokoro_audio_free(&c);
    kokoro_audio_free(&a);
    kokoro_audio_free(&b);
    kokoro_model_free(m16);
    kokoro_model_free(m32);
}

static void test_voices_carried(void **state)
{
    (void)state;
    kokoro_voices *from_file, *from_dir;
    assert_int_equal(kokoro_voices_load(f32_path, &from_file), KOKORO_OK);
    assert_int_equal(kokoro_voices_load(KOKORO_TEST_DATA "/voices", &from_dir), KOKORO_OK);
    assert_int_equal(kokoro_voices_count(from_file), kokoro_voices_count(from_dir));
    assert_true(kokoro_voices_count(from_file) > 0);
    for (size_t i = 0; i < kokoro_voices_count(from_dir); i++) {
        const char *name = kokoro_voices_name(from_dir, i);
        assert_string_equal(kokoro_voices_name(from_file, i), name);
        float a[KOKORO_STYLE_DIM], b[KOKORO_STYLE_DIM];
        for (size_t n = 1; n <= KOKORO_VOICE_ROWS; n += 101) {
            assert_int_equal(kokoro_voices_style(from_file, name, n, a), KOKORO_OK);
            assert_int_equal(kokoro_voices_style(from_dir, name, n, b), KOKORO_OK);
            assert_memory_equal(a, b, sizeof a);
        }
    }
    kokoro_voices_free(from_file);
    kokoro_voices_free(from_dir);
    /* a model file without voices is no voice file */
    kokoro_voices *none = NULL;
    assert_int_not_equal(kokoro_voices_load(bf16_path, &none), KOKORO_OK);
    assert_non_null(strstr(kokoro_last_error(), "carries no voices"));
}

static int run(const char *prog, const char *args, const char *log)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", prog, args, in_dir(log));
    int st = system(cmd);
    char buf[4096] = {0};
    FILE *f = fopen(in_dir(log), "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        printf("  | %s", buf);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int log_has(const char *log, const char *needle)
{
    char buf[8192] = {0};
    FILE *f = fopen(in_dir(log), "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* The official layout .pth of the test weights → kokoro-convert → kokoro-bench:
 * the same audio as --test-weights, and the load times of both files. */
static void test_from_pth_through_tools(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    char pth[600], conv[600];
    snprintf(pth, sizeof pth, "%s", in_dir("kokoro-test.pth"));
    snprintf(conv, sizeof conv, "%s", in_dir("from-pth.kokoro"));
    assert_int_equal(kt_write_pth(pth, &t, 1), 0);
    kk_table_free(&t);

    char args[2048];
    snprintf(args, sizeof args, "'%s' '%s' --verify", pth, conv);
    assert_int_equal(run(KOKORO_CONVERT_PATH, args, "convert.log"), 0);
    assert_true(log_has("convert.log", "loads in"));

    double t0 = now();
    kokoro_model *m = load_ok(pth);
    double t_pth = now() - t0;
    kokoro_model_free(m);
    t0 = now();
    m = load_ok(conv);
    double t_k = now() - t0;
    kokoro_model_free(m);
    printf("  load time of the full model: .pth %.3f s, converted file %.3f s\n", t_pth, t_k);

    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s' --model '%s' --no-noise", KOKORO_TEST_DATA,
             in_dir("k-out.npz"), conv);
    assert_int_equal(run(KOKORO_BENCH_PATH, args, "bench-k.log"), 0);
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s' --test-weights --no-noise",
             KOKORO_TEST_DATA, in_dir("tw-out.npz"));
    assert_int_equal(run(KOKORO_BENCH_PATH, args, "bench-tw.log"), 0);
    kk_table a, b;
    assert_int_equal(kk_npz_read(in_dir("k-out.npz"), &a), KOKORO_OK);
    assert_int_equal(kk_npz_read(in_dir("tw-out.npz"), &b), KOKORO_OK);
    assert_int_equal(a.count, b.count);
    for (size_t i = 0; i < a.count; i++) {
        const kk_tensor *y = kk_table_find(&b, a.items[i].name);
        assert_non_null(y);
        assert_int_equal(a.items[i].nbytes, y->nbytes);
        assert_memory_equal(a.items[i].data, y->data, y->nbytes);
    }
    kk_table_free(&a);
    kk_table_free(&b);
}

static void test_tool_errors(void **state)
{
    (void)state;
    char args[1024];
    snprintf(args, sizeof args, "--test-weights '%s' --dtype f16", in_dir("x.kokoro"));
    assert_int_equal(run(KOKORO_CONVERT_PATH, args, "e1.log"), 2);
    assert_true(log_has("e1.log", "--dtype must be f32 or bf16"));
    snprintf(args, sizeof args, "'%s/no-such.pth' '%s'", dir, in_dir("x.kokoro"));
    assert_int_equal(run(KOKORO_CONVERT_PATH, args, "e2.log"), 1);
    assert_true(log_has("e2.log", "no-such.pth"));
    snprintf(args, sizeof args, "--test-weights '%s/no-such-dir/x.kokoro'", dir);
    assert_int_equal(run(KOKORO_CONVERT_PATH, args, "e3.log"), 1);
    assert_true(log_has("e3.log", "no-such-dir"));
    /* a checkpoint the engine cannot bind is refused before anything is written */
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    kk_tensor *x = kk_table_find(&t, "decoder.generator.conv_post.bias");
    assert_non_null(x);
    free(x->name);
    x->name = strdup("decoder.generator.conv_post.bias_renamed");
    assert_int_equal(kt_write_pth(in_dir("broken.pth"), &t, 1), 0);
    kk_table_free(&t);
    assert_int_not_equal(kokoro_model_convert(in_dir("broken.pth"), NULL, in_dir("broken.kokoro"), KOKORO_DTYPE_F32),
                         KOKORO_OK);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "missing 'decoder.generator.conv_post.bias'"));
    assert_int_not_equal(access(in_dir("broken.kokoro"), F_OK), 0);
    assert_int_not_equal(access(in_dir("broken.kokoro.tmp"), F_OK), 0);
    assert_int_equal(kokoro_model_convert(NULL, NULL, in_dir("y.kokoro"), (kokoro_dtype)7), KOKORO_ERR_INVALID_ARG);
}

/* ---- malformed files ---- */

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void expect_refused(const char *name, const void *p, size_t n, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s", in_dir(name));
    spit(path, p, n);
    kokoro_model *m = NULL;
    kokoro_status st = kokoro_model_load(path, &m);
    printf("  %-22s -> %s\n", name, kokoro_last_error());
    assert_int_not_equal(st, KOKORO_OK);
    assert_null(m);
    assert_non_null(strstr(kokoro_last_error(), needle));
    unlink(path);
}

/* Replaces the first occurrence of `from` in the header with `to` (same length). */
static void patch_header(unsigned char *p, size_t n, const char *from, const char *to)
{
    size_t lf = strlen(from);
    assert_int_equal(lf, strlen(to));
    uint64_t hl;
    memcpy(&hl, p + 16, 8);
    for (size_t i = 24; i + lf <= 24 + hl && i + lf <= n; i++)
        if (memcmp(p + i, from, lf) == 0) {
            memcpy(p + i, to, lf);
            return;
        }
    fail_msg("'%s' not in the header", from);
}

static void test_malformed(void **state)
{
    (void)state;
    size_t n;
    unsigned char *orig = slurp(bf16_path, &n), *p = malloc(n);
    assert_non_null(p);

    expect_refused("truncated-prefix", orig, 12, "too short");
    expect_refused("truncated-data", orig, n / 2, "outside the file");
    memcpy(p, orig, n);
    p[3] ^= 0x20;
    expect_refused("bad-magic", p, n, "not a Kokoro model file");
    memcpy(p, orig, n);
    p[8] = 99;
    expect_refused("future-version", p, n, "format version 99");
    memcpy(p, orig, n);
    memset(p + 16, 0x7f, 8);
    expect_refused("header-too-long", p, n, "runs past the end");
    memcpy(p, orig, n);
    p[24] = '!';
    expect_refused("header-not-json", p, n, "not valid JSON");
    memcpy(p, orig, n);
    patch_header(p, n, "\"shape\":[178,128]", "\"shape\":[178,129]");
    expect_refused("shape-vs-size", p, n, "dtype, shape and size disagree");
    memcpy(p, orig, n);
    patch_header(p, n, "\"dtype\":\"bfloat16\",\"shape\"", "\"dtype\":\"bfloat17\",\"shape\"");
    expect_refused("unknown-dtype", p, n, "dtype, shape and size disagree");
    memcpy(p, orig, n);
    patch_header(p, n, "\"offset\":0,", "\"offset\":9,");
    expect_refused("misaligned-offset", p, n, "not 64-byte aligned");
    memcpy(p, orig, n);
    patch_header(p, n, "\"config\":", "\"cfg_x\": ");
    expect_refused("no-config", p, n, "no config");
    memcpy(p, orig, n);
    patch_header(p, n, "\"name\":\"bert.", "\"name\":\"bart.");
    expect_refused("renamed-tensor", p, n, "unexpected 'bart.");
    free(p);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_identical),       cmocka_unit_test(test_bf16_close),
        cmocka_unit_test(test_voices_carried),      cmocka_unit_test(test_from_pth_through_tools),
        cmocka_unit_test(test_tool_errors),         cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
