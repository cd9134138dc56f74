/* Memory streaming, through the path people use: kokoro-tts on a Markdown
 * book (kokoro_engine_render, one output file). With streaming on, a book's
 * chapters are read, spoken and written one after another, so the peak RSS of
 * a book 5x longer stays within 10 % of the shorter one's; with it off, the
 * whole book's audio is held until the end, and the 5x book's peak grows by
 * about the audio it holds. Each run is a child process of its own; its peak
 * RSS (VmHWM) comes from wait4's rusage.
 *
 * The test weights take about a second of CPU per second of speech, so most
 * of each chapter's two minutes of audio is [pause:30s] silence: it goes
 * through the same pieces, joiner and writer as speech, and costs no
 * synthesis. Each chapter holds ~11 MB of float audio, so what streaming
 * saves is well above the run-to-run noise of the ~500 MB the model takes.
 *
 * Under AddressSanitizer RSS measures the sanitizer's shadow memory and
 * quarantine rather than the program's, so that build checks the output of
 * the 5x book both ways but does not compare the peaks. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* A Markdown book of n equal chapters: a sentence and two minutes of pauses. */
static void write_book(const char *name, int n)
{
    FILE *f = fopen(in_dir(name), "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "# Chapter %d\n\nGo on. [pause:30s] [pause:30s] [pause:30s] [pause:30s]\n\n", i + 1);
    assert_int_equal(fclose(f), 0);
}

typedef struct run_result {
    double peak_mib; /* the child's VmHWM */
    long samples;    /* in the WAV it wrote */
} run_result;

/* kokoro-tts BOOK OUT.wav with KOKORO_MEMORY_STREAMING=streaming, in a child. */
static run_result run_tts(const char *book, const char *wav, int streaming)
{
    char in[700], out[700], voices[700];
    snprintf(in, sizeof in, "%s", in_dir(book));
    snprintf(out, sizeof out, "%s", in_dir(wav));
    snprintf(voices, sizeof voices, "%s/voices", KOKORO_TEST_DATA);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("KOKORO_MEMORY_STREAMING", streaming ? "1" : "0", 1);
        unsetenv("KOKORO_USE_PARALLEL");
        unsetenv("KOKORO_ASYNC_IO");
        execl(KOKORO_TTS_PATH, KOKORO_TTS_PATH, in, out, "--test-weights", "--voices", voices, "--voice",
              "af_heart", "--threads", "1", "-q", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    struct stat sb;
    assert_int_equal(stat(out, &sb), 0);
    run_result r = {(double)ru.ru_maxrss / 1024, (long)(sb.st_size - 44) / 2}; /* 16-bit PCM after the header */
    return r;
}

static int same_file(const char *a, const char *b)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", in_dir(a), in_dir(b));
    return system(cmd) == 0;
}

static void test_peak_rss_flat(void **state)
{
    (void)state;
    write_book("short.md", 1);
    write_book("long.md", 5);
    run_result on5 = run_tts("long.md", "on5.wav", 1);
    run_result off5 = run_tts("long.md", "off5.wav", 0);
    /* holding the audio changes nothing in what is written */
    assert_true(same_file("on5.wav", "off5.wav"));
    assert_true(on5.samples > 5L * 120 * 24000);
    if (KT_SANITIZED) {
        print_message("sanitizer build: peaks not compared (%.1f / %.1f MiB)\n", on5.peak_mib, off5.peak_mib);
        return;
    }
    run_result on1 = run_tts("short.md", "on1.wav", 1);
    run_result off1 = run_tts("short.md", "off1.wav", 0);
    assert_true(same_file("on1.wav", "off1.wav"));
    /* 5x the chapters is 5x the audio (plus the pauses between chapters) */
    assert_true(on5.samples > 5 * on1.samples && on5.samples < 5 * on1.samples + 4 * 24000 * 5);
    /* the float audio 4 more chapters make: what a book held in memory grows by */
    double extra_mib = (double)(on5.samples - on1.samples) * sizeof(float) / (1024 * 1024);
    print_message("peak RSS, streaming on: 1 chapter %.1f MiB, 5 chapters %.1f MiB (%+.1f %%); "
                  "off: %.1f / %.1f MiB; 4 chapters of float audio: %.1f MiB\n",
                  on1.peak_mib, on5.peak_mib, 100 * (on5.peak_mib / on1.peak_mib - 1), off1.peak_mib, off5.peak_mib,
                  extra_mib);
    assert_true(extra_mib > 40);
    assert_true(on1.peak_mib > 100);
    /* streaming on: flat, within the 10 % and well below what holding the audio costs */
    assert_true(on5.peak_mib <= 1.10 * on1.peak_mib);
    assert_true(on5.peak_mib - on1.peak_mib < 0.25 * extra_mib);
    /* streaming off: the longer book's peak grows by about the audio it holds */
    assert_true(off5.peak_mib - off1.peak_mib > 0.75 * extra_mib);
    assert_true(off5.peak_mib - on5.peak_mib > 0.75 * extra_mib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_rss_flat),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
