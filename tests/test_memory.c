/* Memory streaming: a book is read, synthesised and written one chapter at a
 * time, so the peak RSS of a book 5x longer stays within 10 % of the shorter
 * one's. Each book runs in a child process of its own (kokoro-bench --book,
 * one configuration, the audio written to a WAV file), whose VmHWM is
 * reported in the JSON. Under AddressSanitizer RSS measures the sanitizer's
 * shadow memory and quarantine rather than the program's, so that build runs
 * both books and checks the output but does not compare the peaks. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define KT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KT_SANITIZED 1
#endif
#endif
#ifndef KT_SANITIZED
#define KT_SANITIZED 0
#endif

static char dir[] = "/tmp/kokoro-memory-test-XXXXXX";

static const char *in_dir(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
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

/* A Markdown book of n chapters, each the same few words. */
static void write_book(const char *name, int n)
{
    static const char *const words[] = {"One", "Two", "Three", "Four", "Five",
                                        "Six", "Seven", "Eight", "Nine", "Ten"};
    FILE *f = fopen(in_dir(name), "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++) fprintf(f, "# %s\n\nGo on.\n\n", words[i % 10]);
    assert_int_equal(fclose(f), 0);
}

typedef struct run_result {
    double peak_kib, audio_s, chapters;
} run_result;

static run_result run_book(const char *book, const char *json, const char *wav)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && KOKORO_MEMORY_STREAMING=1 '%s' --book %s --test-weights --voices '%s/voices' "
             "--workers 1 --threads 1 --chunk-tokens 8 --out %s --json %s > /dev/null",
             dir, KOKORO_BENCH_PATH, book, KOKORO_TEST_DATA, wav, json);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(in_dir(json), "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "configs"), 0);
    assert_non_null(c);
    run_result r = {cJSON_GetObjectItemCaseSensitive(c, "peak_rss_kib")->valuedouble,
                    cJSON_GetObjectItemCaseSensitive(c, "audio_seconds")->valuedouble,
                    cJSON_GetObjectItemCaseSensitive(j, "chapters")->valuedouble};
    cJSON_Delete(j);
    /* the WAV holds every sample the JSON counts (16-bit PCM after a 44-byte header) */
    struct stat sb;
    assert_int_equal(stat(in_dir(wav), &sb), 0);
    double wav_s = (double)(sb.st_size - 44) / 2 / 24000;
    assert_true(wav_s > r.audio_s - 0.01 && wav_s < r.audio_s + 0.01);
    return r;
}

static void test_peak_rss_flat(void **state)
{
    (void)state;
    write_book("short.md", 1);
    write_book("long.md", 5);
    run_result s = run_book("short.md", "short.json", "short.wav");
    run_result l = run_book("long.md", "long.json", "long.wav");
    assert_true(s.chapters == 1);
    assert_true(l.chapters == 5);
    /* 5x the chapters is about 5x the audio */
    assert_true(l.audio_s > 3.5 * s.audio_s && l.audio_s < 7 * s.audio_s);
    assert_true(s.peak_kib > 1024 && l.peak_kib > 1024);
    print_message("peak RSS: 1 chapter %.1f MiB (%.1f s audio), 5 chapters %.1f MiB (%.1f s audio)%s\n",
                  s.peak_kib / 1024, s.audio_s, l.peak_kib / 1024, l.audio_s,
                  KT_SANITIZED ? " (sanitizer build: not compared)" : "");
    if (!KT_SANITIZED) assert_true(l.peak_kib <= 1.10 * s.peak_kib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_rss_flat),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
