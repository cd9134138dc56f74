/* kokoro-bench --text/--book end to end, through the binary, on the test
 * weights: every configuration's numbers are in the JSON, sane, and its audio
 * is identical to the sequential run's; bad input is a clear error. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/kokoro-bench-test-XXXXXX";

static const char *in_dir(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(in_dir(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char err_text[16384];

/* Runs kokoro-bench with the given arguments; stderr lands in err_text. */
static int bench(const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > out.log 2> err.log", dir, KOKORO_BENCH_PATH, args);
    int st = system(cmd);
    err_text[0] = 0;
    FILE *f = fopen(in_dir("err.log"), "r");
    if (f) {
        size_t n = fread(err_text, 1, sizeof err_text - 1, f);
        err_text[n] = 0;
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static cJSON *read_json(const char *name)
{
    FILE *f = fopen(in_dir(name), "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    assert_true(isfinite(v->valuedouble));
    return v->valuedouble;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char text[] = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.\n";

/* 1 and 2 workers at one thread each: both identical, numbers sane. */
static void test_workers_identical(void **state)
{
    (void)state;
    write_file("t.txt", text, strlen(text));
    assert_int_equal(bench("--text t.txt --test-weights --voices '%s/voices' --workers 1,2 --threads 1 "
                           "--chars 16 --chunk-tokens 8 --json r.json",
                           KOKORO_TEST_DATA),
                     0);
    cJSON *j = read_json("r.json");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "all_identical")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "kind")->valuestring, "text");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring, "test weights");
    double chars = num(j, "chars");
    assert_true(chars >= 8 && chars <= 16); /* cut back to a word boundary */
    assert_true(num(j, "cores") >= 1);
    const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(j, "configs");
    assert_int_equal(cJSON_GetArraySize(cfgs), 2);
    const char *hash0 = NULL;
    double samples0 = 0;
    for (int i = 0; i < 2; i++) {
        const cJSON *c = cJSON_GetArrayItem(cfgs, i);
        assert_int_equal((int)num(c, "workers"), i + 1); /* the sequential baseline comes first */
        assert_int_equal((int)num(c, "threads"), 1);
        double wall = num(c, "wall_seconds"), audio = num(c, "audio_seconds"), samples = num(c, "samples");
        assert_true(wall > 0 && wall < 3600);
        assert_true(samples > 24000 / 2); /* a few words are more than half a second */
        assert_true(fabs(audio - samples / 24000.0) < 1e-9);
        assert_true(fabs(num(c, "rtf") - wall / audio) < 1e-6 * num(c, "rtf"));
        double first = num(c, "first_audio_seconds");
        assert_true(first > 0 && first <= wall);
        double sp = num(c, "speedup");
        assert_true(sp > 0);
        assert_true(fabs(num(c, "efficiency") - sp / (i + 1)) < 1e-9);
        assert_true(num(c, "speedup_vs_best_sequential") > 0);
        assert_true(num(c, "peak_rss_kib") > 10 * 1024); /* the model alone is far more */
        assert_true(num(c, "load_seconds") > 0);
        assert_true(num(c, "pieces") >= 2); /* 8-token chunks: the text is split */
        assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "oversubscribed")));
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "identical")));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "baseline")->valuestring, "1x1");
        const char *hash = cJSON_GetObjectItemCaseSensitive(c, "hash")->valuestring;
        assert_int_equal(strlen(hash), 16);
        if (i == 0) {
            hash0 = hash;
            samples0 = samples;
            assert_true(fabs(sp - 1) < 1e-12); /* the baseline against itself */
        } else {
            assert_string_equal(hash, hash0);
            assert_true(samples == samples0);
        }
    }
    /* async I/O (pieces delivered on the engine's writer thread) changes nothing either */
    char first_hash[17];
    snprintf(first_hash, sizeof first_hash, "%s", hash0);
    cJSON_Delete(j);
    assert_int_equal(bench("--text t.txt --test-weights --voices '%s/voices' --workers 2 --threads 1 --async-io "
                           "--chars 16 --chunk-tokens 8 --json a.json",
                           KOKORO_TEST_DATA),
                     0);
    j = read_json("a.json");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "async_io")));
    cfgs = cJSON_GetObjectItemCaseSensitive(j, "configs");
    assert_int_equal(cJSON_GetArraySize(cfgs), 2);
    for (int i = 0; i < 2; i++)
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cfgs, i), "hash")->valuestring,
                            first_hash);
    cJSON_Delete(j);
    /* the table says so too */
    FILE *f = fopen(in_dir("out.log"), "r");
    assert_non_null(f);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    assert_non_null(strstr(out, "identical vs 1x1"));
    assert_null(strstr(out, "DIFFERENT"));
}

/* --first-audio-only on a long text (2,000 paragraphs): each configuration
 * stops at its first piece, which is the same in all of them. */
static void test_first_audio_only(void **state)
{
    (void)state;
    const char *para = "It was a bright cold day in April.\n\n";
    size_t pl = strlen(para), n = 2000;
    char *t = malloc(pl * n + 1);
    for (size_t i = 0; i < n; i++) memcpy(t + i * pl, para, pl);
    write_file("long.txt", t, pl * n);
    free(t);
    assert_int_equal(bench("--text long.txt --test-weights --voices '%s/voices' --workers 1,2 --threads 1 "
                           "--first-audio-only --json f.json",
                           KOKORO_TEST_DATA),
                     0);
    cJSON *j = read_json("f.json");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "first_audio_only")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "all_identical")));
    assert_true(num(j, "chars") > 60000);
    const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(j, "configs");
    assert_int_equal(cJSON_GetArraySize(cfgs), 2);
    for (int i = 0; i < 2; i++) {
        const cJSON *c = cJSON_GetArrayItem(cfgs, i);
        assert_int_equal((int)num(c, "pieces"), 1);
        double first = num(c, "first_audio_seconds"), audio = num(c, "audio_seconds");
        assert_true(first > 0 && first <= num(c, "wall_seconds"));
        assert_true(audio > 0.5 && audio < 30); /* one sentence, not 2,000 */
    }
    cJSON_Delete(j);
}

/* A workers x threads above the cores is skipped unless asked for. */
static void test_oversubscription_skipped(void **state)
{
    (void)state;
    write_file("t.txt", text, strlen(text));
    /* 1024 workers x 1024 threads exceeds any machine: nothing is left to run */
    assert_int_equal(bench("--text t.txt --voices '%s/voices' --workers 1024 --threads 1024", KOKORO_TEST_DATA), 2);
    assert_non_null(strstr(err_text, "no configuration left"));
}

/* Bad input: a clear message, a non-zero status, no JSON left behind. */
static void test_bad_input(void **state)
{
    (void)state;
    const char *v = KOKORO_TEST_DATA "/voices";
    write_file("t.txt", text, strlen(text));
    assert_int_equal(bench("--text t.txt --test-weights"), 2);
    assert_non_null(strstr(err_text, "--voices"));
    assert_int_equal(bench("--text t.txt --book t.txt --voices '%s'", v), 2);
    assert_non_null(strstr(err_text, "exactly one of --text"));
    assert_int_equal(bench("--text t.txt --voices '%s' --workers 0", v), 2);
    assert_non_null(strstr(err_text, "--workers"));
    assert_int_equal(bench("--text t.txt --voices '%s' --workers 1,1", v), 2);
    assert_non_null(strstr(err_text, "twice"));
    assert_int_equal(bench("--text t.txt --voices '%s' --threads 2x", v), 2);
    assert_int_equal(bench("--text t.txt --voices '%s' --chars -3", v), 2);
    assert_int_equal(bench("--text t.txt --voices '%s' --model m.bin --test-weights", v), 2);

    unlink(in_dir("bad.json"));
    assert_int_equal(bench("--text missing.txt --voices '%s' --workers 1 --threads 1 --json bad.json", v), 1);
    assert_non_null(strstr(err_text, "missing.txt"));
    assert_int_equal(access(in_dir("bad.json"), F_OK), -1);

    write_file("bad.txt", "caf\xc3 \xff\xfe ok.\n", 12); /* invalid UTF-8 */
    assert_int_equal(bench("--text bad.txt --voices '%s' --workers 1 --threads 1 --json bad.json", v), 1);
    assert_true(strlen(err_text) > 0);
    assert_int_equal(access(in_dir("bad.json"), F_OK), -1);

    write_file("empty.md", "\n\n   \n", 6); /* a book without a word */
    assert_int_equal(bench("--book empty.md --voices '%s' --workers 1 --threads 1 --json bad.json", v), 1);
    assert_int_equal(access(in_dir("bad.json"), F_OK), -1);

    assert_int_equal(bench("--text t.txt --voices '%s' --voice nobody --workers 1 --threads 1", v), 1);
    assert_non_null(strstr(err_text, "nobody"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_oversubscription_skipped),
        cmocka_unit_test(test_workers_identical),
        cmocka_unit_test(test_first_audio_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
