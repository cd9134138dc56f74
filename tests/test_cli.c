/* kokoro-tts end to end, through the binary, on the test weights (converted
 * once into a model file carrying the test voices, so each run loads in
 * milliseconds): every format reads back with the expected length, pipes,
 * --no-trim equals the engine, --seed, --help, model discovery, --download,
 * captions, Ctrl-C, and a clear message with a non-zero exit for each bad
 * input. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
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

#include "audio_testutil.h"
#include "kokoro.h"
#include "model/model.h"
#include "torchwrite.h"

static char dir[] = "/tmp/kokoro-cli-test-XXXXXX";
static char model[600];

static const char *in_dir(const char *name)
{
    static char buf[8][700];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    snprintf(model, sizeof model, "%s/test.kokoro", dir);
    if (kokoro_model_convert(NULL, KOKORO_TEST_DATA "/voices", model, KOKORO_DTYPE_F32) != KOKORO_OK) {
        printf("  %s\n", kokoro_last_error());
        return -1;
    }
    /* none of the user's settings may leak into the tests */
    const char *vars[] = {"KOKORO_MODEL", "KOKORO_VOICES", "KOKORO_USE_PARALLEL", "KOKORO_MAX_WORKERS",
                          "KOKORO_THREADS", "KOKORO_ASYNC_IO", "KOKORO_IO_QUEUE_SIZE", "KOKORO_MEMORY_STREAMING",
                          "KOKORO_GPU_BATCHING", "KOKORO_GPU_BATCH_SIZE", "KOKORO_DOWNLOAD_BASE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    setenv("XDG_DATA_HOME", in_dir("xdg"), 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char out_text[65536];

/* Runs a shell command line in the test folder; stdout+stderr into out_text. */
static int run_in_dir(const char *line, const char *shown)
{
    char cmd[8192];
    /* in braces, so a redirection in line applies to its command */
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } > '%s/out.log' 2>&1", dir, line, dir);
    int st = system(cmd);
    out_text[0] = 0;
    FILE *f = fopen(in_dir("out.log"), "r");
    if (f) {
        size_t n = fread(out_text, 1, sizeof out_text - 1, f);
        out_text[n] = 0;
        fclose(f);
    }
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    printf("  $ %.170s%s -> %d\n", shown, strlen(shown) > 170 ? "…" : "", rc);
    if (rc != 0) printf("    %.300s\n", out_text);
    return rc;
}

/* Runs kokoro-tts with args (a shell fragment). */
static int tts(const char *fmt, ...)
{
    char args[4096], line[4600], shown[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "'%s' %s", KOKORO_TTS_PATH, args);
    snprintf(shown, sizeof shown, "kokoro-tts %s", args);
    return run_in_dir(line, shown);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

/* No stray temporary files in the test folder. */
static void no_temp_files(void)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp$' > '%s/tmpcount' 2>/dev/null", dir, dir);
    (void)system(cmd);
    FILE *f = fopen(in_dir("tmpcount"), "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        fclose(f);
    }
    assert_int_equal(n, 0);
}

#define PH "həlˈoʊ wˈɜːld."

static void test_formats(void **state)
{
    (void)state;
    write_file(in_dir("ph.txt"), PH);
    /* the reference: float WAV, exact samples */
    assert_int_equal(tts("ph.txt ref.wav --model test.kokoro --voice af_heart --phonemes --sample-format f32 -q"), 0);
    size_t nref = 0;
    int rate;
    float *ref = at_read_sndfile(in_dir("ref.wav"), &nref, &rate, NULL);
    assert_non_null(ref);
    assert_int_equal(rate, 24000);
    assert_true(nref > 12000);
    const char *fmts[] = {"wav", "flac", "mp3", "opus", "m4a", "m4b", "pcm"};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        char name[32];
        snprintf(name, sizeof name, "out.%s", fmts[i]);
        assert_int_equal(tts("ph.txt %s --model test.kokoro --voice af_heart --phonemes -q", name), 0);
        size_t n = 0;
        float *x;
        if (!strcmp(fmts[i], "pcm")) {
            struct stat sb;
            assert_int_equal(stat(in_dir(name), &sb), 0);
            n = (size_t)sb.st_size / 2;
            x = malloc(1);
        } else if (!strcmp(fmts[i], "m4a") || !strcmp(fmts[i], "m4b") || !strcmp(fmts[i], "mp3")) {
            x = at_read_ffmpeg(in_dir(name), &n);
        } else {
            x = at_read_sndfile(in_dir(name), &n, NULL, NULL);
        }
        assert_non_null(x);
        double diff = fabs((double)n - (double)nref) / 24000.0;
        printf("    %-5s %zu samples (reference %zu): %.1f ms apart\n", fmts[i], n, nref, diff * 1000);
        assert_true(diff <= 0.05); /* one codec frame and its delay at most */
        free(x);
    }
    /* --format picks the format of an extension-less name; a mismatch is an error */
    assert_int_equal(tts("ph.txt noext --format flac --model test.kokoro --voice af_heart --phonemes -q"), 0);
    assert_true(exists(in_dir("noext")));
    assert_int_equal(tts("ph.txt out.mp3 --format wav --model test.kokoro --voice af_heart --phonemes -q"), 2);
    assert_non_null(strstr(out_text, "--format says wav"));
    /* default output name: INPUT with the format's extension */
    assert_int_equal(tts("ph.txt --model test.kokoro --voice af_heart --phonemes -q --format flac"), 0);
    assert_true(exists(in_dir("ph.flac")));
    free(ref);
    no_temp_files();
}

static void test_pipes(void **state)
{
    (void)state;
    assert_int_equal(tts("- - --format wav --model test.kokoro --voice am_adam --phonemes -q < ph.txt > piped.wav"), 0);
    assert_int_equal(tts("ph.txt direct.wav --model test.kokoro --voice am_adam --phonemes -q"), 0);
    size_t a = 0, b = 0;
    /* a streamed WAV header cannot know the length (0xFFFFFFFF sizes, as ffmpeg writes them) */
    float *x = at_read_ffmpeg(in_dir("piped.wav"), &a), *y = at_read_sndfile(in_dir("direct.wav"), &b, NULL, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(a, b);
    for (size_t i = 0; i < a; i++) assert_true(fabsf(x[i] - y[i]) < 1e-4f);
    free(x);
    free(y);
    /* raw PCM is the default on stdout */
    assert_int_equal(tts("ph.txt - --model test.kokoro --voice am_adam --phonemes -q > raw.pcm"), 0);
    struct stat sb;
    assert_int_equal(stat(in_dir("raw.pcm"), &sb), 0);
    assert_int_equal((size_t)sb.st_size, 2 * a);
    /* stdin without an OUTPUT: a usage error */
    assert_int_equal(tts("- --model test.kokoro --voice am_adam -q < ph.txt"), 2);
    assert_non_null(strstr(out_text, "name the OUTPUT"));
}

/* kokoro-tts --phonemes --no-trim --no-noise equals kokoro_synthesize on the same tokens */
static void test_no_trim_equals_engine(void **state)
{
    (void)state;
    assert_int_equal(tts("ph.txt raw.wav --model test.kokoro --voice af_heart --phonemes --no-trim --no-noise "
                         "--sample-format f32 -q"),
                     0);
    size_t n = 0;
    float *x = at_read_sndfile(in_dir("raw.wav"), &n, NULL, NULL);
    assert_non_null(x);
    kokoro_model *m;
    kokoro_voices *v;
    assert_int_equal(kokoro_model_load_test_weights(&m), KOKORO_OK);
    assert_int_equal(kokoro_voices_load(KOKORO_TEST_DATA "/voices", &v), KOKORO_OK);
    const char *ph = PH;
    int64_t ids[64];
    size_t nid = 0;
    for (size_t i = 0; ph[i];) {
        uint32_t cp;
        unsigned char c = (unsigned char)ph[i];
        size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        cp = len == 1 ? c : len == 2 ? (uint32_t)(c & 0x1f) : len == 3 ? (uint32_t)(c & 0x0f) : (uint32_t)(c & 7);
        for (size_t k = 1; k < len; k++) cp = (cp << 6) | ((unsigned char)ph[i + k] & 0x3f);
        i += len;
        ids[nid++] = kokoro_config_token_id(kokoro_config_default(), cp);
        assert_true(ids[nid - 1] > 0);
    }
    float style[KOKORO_STYLE_DIM];
    assert_int_equal(kokoro_voices_style(v, "af_heart", nid, style), KOKORO_OK);
    kokoro_synth_options o = kokoro_synth_options_default();
    o.no_noise = 1;
    kokoro_audio a;
    assert_int_equal(kokoro_synthesize(m, ids, nid, style, &o, &a), KOKORO_OK);
    assert_int_equal(n, a.n_samples);
    assert_memory_equal(x, a.samples, n * sizeof *x);
    printf("    %zu samples, equal to kokoro_synthesize on the same %zu tokens\n", n, nid);
    kokoro_audio_free(&a);
    kokoro_voices_free(v);
    kokoro_model_free(m);
    free(x);
}

static int files_equal(const char *a, const char *b)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static void test_seed_and_parallel(void **state)
{
    (void)state;
    write_file(in_dir("two.txt"), "The first sentence is here. And a second one follows it. Then a third, short.");
    const char *base = "--model test.kokoro --voice af_heart -q --chunk-tokens 24";
    assert_int_equal(tts("two.txt s1.wav %s --seed 7", base), 0);
    assert_int_equal(tts("two.txt s2.wav %s --seed 7", base), 0);
    assert_int_equal(tts("two.txt s3.wav %s --seed 8", base), 0);
    assert_true(files_equal(in_dir("s1.wav"), in_dir("s2.wav")));
    assert_false(files_equal(in_dir("s1.wav"), in_dir("s3.wav")));
    /* parallel workers, async writes and any thread count give the same bytes */
    assert_int_equal(tts("two.txt p.wav %s --seed 7 --parallel --max-workers 2 --async-io", base), 0);
    assert_true(files_equal(in_dir("s1.wav"), in_dir("p.wav")));
    assert_int_equal(tts("two.txt t1.wav %s --seed 7 --threads 1", base), 0);
    assert_true(files_equal(in_dir("s1.wav"), in_dir("t1.wav")));
    assert_int_equal(tts("two.txt p3.wav %s --seed 7 --parallel --max-workers 3 --threads 2", base), 0);
    assert_true(files_equal(in_dir("s1.wav"), in_dir("p3.wav")));
    /* an invalid variable names itself */
    setenv("KOKORO_MAX_WORKERS", "lots", 1);
    assert_int_equal(tts("two.txt x.wav %s", base), 2);
    assert_non_null(strstr(out_text, "KOKORO_MAX_WORKERS=lots"));
    setenv("KOKORO_MAX_WORKERS", "2", 1);
    setenv("KOKORO_USE_PARALLEL", "true", 1);
    assert_int_equal(tts("two.txt env.wav %s --seed 7 --debug", base), 0);
    assert_non_null(strstr(out_text, "2 worker(s)"));
    assert_true(files_equal(in_dir("s1.wav"), in_dir("env.wav")));
    unsetenv("KOKORO_MAX_WORKERS");
    unsetenv("KOKORO_USE_PARALLEL");
}

/* Memory streaming on/off x async I/O on/off x sequential/2 workers: the same
 * bytes through kokoro-tts on a book of two chapters (streaming off holds the
 * book's audio and writes it at the end). Each run's --debug line shows the
 * configuration it really ran with. */
static void test_perf_modes_identical(void **state)
{
    (void)state;
    write_file(in_dir("modes.md"), "# One\n\nGo on. Stop.\n\n# Two\n\nCome here.\n");
    const char *base = "modes.md --model test.kokoro --voice af_heart --seed 7 --threads 1 --chunk-tokens 8 --debug";
    int n = 0;
    for (int streaming = 1; streaming >= 0; streaming--)
        for (int async = 0; async <= 1; async++)
            for (int par = 0; par <= 1; par++) {
                char out[32], want[160];
                snprintf(out, sizeof out, "m%d%d%d.wav", streaming, async, par);
                setenv("KOKORO_MEMORY_STREAMING", streaming ? "1" : "0", 1);
                assert_int_equal(tts("%s %s%s%s", base, out, async ? " --async-io" : "",
                                     par ? " --parallel --max-workers 2" : ""), 0);
                snprintf(want, sizeof want, "%d worker(s) x 1 thread(s), async I/O %s, memory streaming %s",
                         par ? 2 : 1, async ? "on" : "off", streaming ? "on" : "off");
                if (!strstr(out_text, want)) printf("    expected \"%s\" in:\n%.600s\n", want, out_text);
                assert_non_null(strstr(out_text, want));
                if (n++) assert_true(files_equal(in_dir("m100.wav"), in_dir(out)));
            }
    unsetenv("KOKORO_MEMORY_STREAMING");
    /* a different seed differs, so the comparisons above can fail */
    assert_int_equal(tts("modes.md m-seed.wav --model test.kokoro --voice af_heart --seed 8 --threads 1 "
                         "--chunk-tokens 8 -q"), 0);
    assert_false(files_equal(in_dir("m100.wav"), in_dir("m-seed.wav")));
}

/* Flags win over KOKORO_* variables; an invalid variable stays an error even
 * when a flag overrides it (documented in --help). */
static void test_flags_override_env(void **state)
{
    (void)state;
    write_file(in_dir("hi.txt"), "Hi.");
    const char *base = "hi.txt env-o.wav --model test.kokoro --voice af_heart --debug";
    setenv("KOKORO_USE_PARALLEL", "1", 1);
    setenv("KOKORO_MAX_WORKERS", "1", 1);
    setenv("KOKORO_THREADS", "2", 1);
    setenv("KOKORO_ASYNC_IO", "0", 1);
    setenv("KOKORO_MEMORY_STREAMING", "0", 1);
    /* the variables alone are read... */
    assert_int_equal(tts("%s", base), 0);
    assert_non_null(strstr(out_text, "1 worker(s) x 2 thread(s), async I/O off, memory streaming off"));
    /* ...and every flag overrides its variable */
    assert_int_equal(tts("%s --max-workers 2 --threads 1 --async-io --memory-streaming", base), 0);
    assert_non_null(strstr(out_text, "2 worker(s) x 1 thread(s), async I/O on, memory streaming on"));
    setenv("KOKORO_MAX_WORKERS", "lots", 1);
    assert_int_equal(tts("%s --max-workers 2", base), 2);
    assert_non_null(strstr(out_text, "KOKORO_MAX_WORKERS=lots"));
    const char *vars[] = {"KOKORO_USE_PARALLEL", "KOKORO_MAX_WORKERS", "KOKORO_THREADS", "KOKORO_ASYNC_IO",
                          "KOKORO_MEMORY_STREAMING"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

/* GPU batching asked for by variable or flag: said to run on the CPU, and it does. */
static void test_gpu_note(void **state)
{
    (void)state;
    write_file(in_dir("gpu.txt"), "Hi.");
    const char *note = "no GPU backend: running on the CPU";
    assert_int_equal(tts("gpu.txt --print-phonemes"), 0);
    assert_null(strstr(out_text, note));
    assert_int_equal(tts("gpu.txt --print-phonemes --gpu"), 0);
    assert_non_null(strstr(out_text, note));
    setenv("KOKORO_GPU_BATCHING", "1", 1);
    setenv("KOKORO_GPU_BATCH_SIZE", "8", 1);
    assert_int_equal(tts("gpu.txt gpu.wav --model test.kokoro --voice af_heart"), 0);
    assert_non_null(strstr(out_text, note));
    assert_true(exists(in_dir("gpu.wav")));
    setenv("KOKORO_GPU_BATCHING", "perhaps", 1);
    assert_int_equal(tts("gpu.txt --print-phonemes"), 2);
    assert_non_null(strstr(out_text, "KOKORO_GPU_BATCHING=perhaps"));
    unsetenv("KOKORO_GPU_BATCHING");
    unsetenv("KOKORO_GPU_BATCH_SIZE");
}

static void test_help(void **state)
{
    (void)state;
    assert_int_equal(tts("--help"), 0);
    const char *must[] = {"--voice",  "--speed",        "--lang",           "--format",       "--model",
                          "--voices", "--help-voices",  "--help-languages", "--debug",        "--quiet",
                          "--seed",   "--version",      "--stream",         "--phonemes",     "--no-trim",
                          "--no-noise", "--test-weights", "--download",     "--print-phonemes", "--parallel",
                          "--max-workers", "--threads", "--async-io", "--memory-streaming", "--captions",
                          "--convert", "--lexicon", "--sample-format"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
        if (!strstr(out_text, must[i])) printf("    missing %s\n", must[i]);
        assert_non_null(strstr(out_text, must[i]));
    }
    assert_int_equal(tts("--version"), 0);
    assert_non_null(strstr(out_text, kokoro_version()));
    assert_int_equal(tts("--help-languages"), 0);
    assert_non_null(strstr(out_text, "pt-br"));
    assert_int_equal(tts("--help-voices --voices '%s/voices'", KOKORO_TEST_DATA), 0);
    assert_non_null(strstr(out_text, "1. af_heart"));
    assert_non_null(strstr(out_text, "2. am_adam"));
    assert_int_equal(tts("--spead 1.2 ph.txt"), 2);
    assert_non_null(strstr(out_text, "Did you mean --speed"));
    assert_int_equal(tts("ph.txt --voise af_heart"), 2);
    assert_non_null(strstr(out_text, "--voice"));
    /* options before and after the positionals */
    assert_int_equal(tts("--model test.kokoro -q ph.txt order.wav --phonemes --voice af_heart"), 0);
    assert_true(exists(in_dir("order.wav")));
    write_file(in_dir("ph2.txt"), "Hello world. How are you today?");
    assert_int_equal(tts("ph2.txt --print-phonemes"), 0);
    assert_non_null(strstr(out_text, "həlˈoʊ"));
    assert_int_equal(tts("- --print-phonemes --lang fr < ph2.txt"), 0);
    /* an EPUB or a PDF: the selected chapters' text, not the file's bytes */
    assert_int_equal(tts("'%s/corpus/epub/moby-dick.epub' --print-phonemes --select-chapters 3 --voice af_heart",
                         KOKORO_TEST_DATA), 0);
    assert_non_null(strstr(out_text, "ˌɛɾɪmˈɑːlədʒi")); /* "ETYMOLOGY." */
    assert_null(strstr(out_text, "UTF-8"));
    assert_int_equal(tts("'%s/corpus/pdf/pdflatex-4-pages.pdf' --print-phonemes --voice af_heart", KOKORO_TEST_DATA), 0);
    assert_non_null(strstr(out_text, "həlˈoʊ"));
    assert_int_equal(tts("'%s/corpus/epub/moby-dick.epub' --print-phonemes --select-chapters 999 --voice af_heart",
                         KOKORO_TEST_DATA), 1);
    assert_non_null(strstr(out_text, "out of range"));
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *m = "--model test.kokoro -q";
    assert_int_equal(tts("ph2.txt o.wav %s --voice zz_nobody", m), 1);
    assert_non_null(strstr(out_text, "zz_nobody"));
    assert_non_null(strstr(out_text, "af_heart")); /* the available voices are listed */
    assert_int_equal(tts("ph2.txt o.wav %s --speed 3", m), 2);
    assert_non_null(strstr(out_text, "0.5 to 2.0"));
    assert_int_equal(tts("ph2.txt o.wav %s --speed abc", m), 2);
    assert_non_null(strstr(out_text, "must be a number"));
    assert_int_equal(tts("ph2.txt o.wav %s --lang xx", m), 2);
    assert_non_null(strstr(out_text, "unknown language 'xx'"));
    assert_int_equal(tts("ph2.txt o.wav %s --format ogg2", m), 2);
    assert_non_null(strstr(out_text, "unknown audio format 'ogg2'"));
    assert_int_equal(tts("ph2.txt o.xyz %s", m), 2);
    assert_non_null(strstr(out_text, "cannot tell the format"));
    assert_int_equal(tts("ph2.txt o.wav --model missing.pth --voice af_heart -q"), 1);
    assert_non_null(strstr(out_text, "missing.pth"));
    assert_non_null(strstr(out_text, "--download"));
    /* no model anywhere: the message says where it looked and how to get it */
    assert_int_equal(tts("ph2.txt o.wav --voice af_heart"), 1);
    assert_non_null(strstr(out_text, "kokoro-v1_0.pth"));
    assert_non_null(strstr(out_text, "looked in"));
    assert_non_null(strstr(out_text, "xdg/kokoro"));
    /* a truncated model file */
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "head -c 1000000 '%s' > '%s'", model, in_dir("cut.kokoro"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tts("ph2.txt o.wav --model cut.kokoro --voices '%s/voices' -q --voice af_heart", KOKORO_TEST_DATA), 1);
    assert_non_null(strstr(out_text, "cut.kokoro"));
    assert_int_equal(tts("nonexistent.txt o.wav %s", m), 1);
    assert_non_null(strstr(out_text, "nonexistent.txt"));
    assert_int_equal(tts("ph2.txt /nonexistent-dir/o.wav %s --voice af_heart", m), 1);
    assert_non_null(strstr(out_text, "/nonexistent-dir/"));
    write_file(in_dir("empty.txt"), "  \n\n ");
    assert_int_equal(tts("empty.txt o.wav %s", m), 1);
    assert_non_null(strstr(out_text, "empty"));
    write_file(in_dir("bad.txt"), "Good text then \xff\xfe bad bytes.");
    assert_int_equal(tts("bad.txt o.wav %s --voice af_heart", m), 1);
    assert_non_null(strstr(out_text, "offset 15"));
    assert_false(exists(in_dir("o.wav")));
    assert_int_equal(tts("ph2.txt o.wav %s --voice af_heart --max-workers 0", m), 2);
    assert_int_equal(tts("ph2.txt o.wav %s --voice af_heart --seed -4", m), 2);
    assert_int_equal(tts("ph2.txt o.wav %s --voice af_heart --stream", m), 2); /* --stream takes no OUTPUT */
    /* no sound card here: a clear message, no crash */
    int rc = tts("ph2.txt %s --voice af_heart --stream", m);
    if (rc != 0) assert_non_null(strstr(out_text, "audio"));
    no_temp_files();
}

/* Starts kokoro-tts with args in the test folder, its standard input from
 * stdin_fd (or the test's own when -1); returns its pid. */
static pid_t start_tts(const char *args, int stdin_fd)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' %s > started.log 2>&1", dir, KOKORO_TTS_PATH, args);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0) _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits for pid; returns its exit status, or -signal when a signal killed it. */
static int wait_status(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) {
        printf("    killed by signal %d\n", WTERMSIG(st));
        return -WTERMSIG(st);
    }
    printf("    exit %d\n", WEXITSTATUS(st));
    return WEXITSTATUS(st);
}

/* Ctrl-C: exit 130, no output, no temporary file; a second Ctrl-C during the
 * cleanup changes nothing (the handler stays installed). */
static void test_interrupt(void **state)
{
    (void)state;
    FILE *f = fopen(in_dir("long.txt"), "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++) fprintf(f, "This is sentence number %d of a long text that takes a while. ", i);
    fclose(f);
    char ls[800];
    snprintf(ls, sizeof ls, "ls -a '%s' | grep -q 'long.*tmp'", dir);
    for (int twice = 0; twice < 2; twice++) {
        pid_t pid = start_tts("long.txt long.wav --model test.kokoro --voice af_heart -q", -1);
        sleep_ms(1500);
        /* that it is still running and writing proves the interruption below is mid-synthesis */
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
        assert_int_equal(kill(pid, SIGINT), 0);
        /* more Ctrl-C while it winds down: with a one-shot handler the
         * second one killed the process and left .long.wav.XXXXXX.tmp */
        for (int k = 0; twice && k < 5; k++) {
            sleep_ms(3);
            kill(pid, SIGINT);
        }
        printf("    %s SIGINT:", twice ? "six" : "one");
        assert_int_equal(wait_status(pid), 130);
        assert_false(exists(in_dir("long.wav")));
        assert_int_not_equal(system(ls), 0);
    }
    no_temp_files();
}

/* Ctrl-C while kokoro-tts waits on a pipe that never closes: exit 130, not
 * a read error (with signal() the read failed with EINTR: "cannot read"). */
static void test_interrupt_stdin(void **state)
{
    (void)state;
    const char *modes[] = {"- blocked.wav --model test.kokoro --voice af_heart", "- --print-phonemes",
                           "/dev/stdin blocked.wav --model test.kokoro --voice af_heart"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = start_tts(modes[i], p[0]);
        close(p[0]);
        assert_int_equal(write(p[1], "Some text ", 10), 10); /* a partial line: it keeps reading */
        sleep_ms(1000);
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still waiting for the rest */
        assert_int_equal(kill(pid, SIGINT), 0);
        printf("    %s:", modes[i]);
        int rc = wait_status(pid);
        close(p[1]);
        assert_int_equal(rc, 130);
        FILE *f = fopen(in_dir("started.log"), "r");
        assert_non_null(f);
        size_t n = fread(out_text, 1, sizeof out_text - 1, f);
        out_text[n] = 0;
        fclose(f);
        assert_string_equal(out_text, "\nkokoro-tts: interrupted\n");
        assert_false(exists(in_dir("blocked.wav")));
    }
    no_temp_files();
}

/* --quiet: without it a run reports what it did on stderr (the progress bar
 * on a terminal, a summary otherwise); with it, nothing at all. */
static void test_quiet(void **state)
{
    (void)state;
    write_file(in_dir("q.txt"), "Hello there. This is a short test of the quiet flag.");
    /* stderr is a file here: no bar, but the default voice and the summary */
    assert_int_equal(tts("q.txt q1.wav --model test.kokoro --chunk-tokens 12"), 0);
    assert_non_null(strstr(out_text, "no --voice given: using af_heart"));
    assert_non_null(strstr(out_text, "created q1.wav"));
    assert_null(strstr(out_text, "RTF"));
    assert_int_equal(tts("q.txt q2.wav --model test.kokoro --chunk-tokens 12 --quiet"), 0);
    assert_string_equal(out_text, "");
    assert_int_equal(tts("q.txt q3.wav --model test.kokoro --chunk-tokens 12 -q"), 0);
    assert_string_equal(out_text, "");
    assert_true(files_equal(in_dir("q1.wav"), in_dir("q2.wav")));
    /* on a terminal (script(1) from util-linux gives it a pseudo-terminal): the bar */
    assert_int_equal(access("/usr/bin/script", X_OK), 0);
    for (int q = 0; q < 2; q++) {
        char line[1200];
        snprintf(line, sizeof line, "script -qec \"'%s' q.txt q4.wav --model test.kokoro --chunk-tokens 12 "
                 "--voice af_heart%s\" /dev/null < /dev/null", KOKORO_TTS_PATH, q ? " --quiet" : "");
        assert_int_equal(run_in_dir(line, line), 0);
        printf("    on a terminal%s: %.200s\n", q ? " with --quiet" : "", out_text);
        if (q) {
            assert_null(strstr(out_text, "RTF"));
            assert_null(strstr(out_text, "created"));
        } else {
            assert_non_null(strstr(out_text, "chunks"));
            assert_non_null(strstr(out_text, "RTF"));
            assert_non_null(strstr(out_text, "ETA"));
            assert_non_null(strstr(out_text, "created q4.wav"));
        }
    }
}

/* --test-weights: no model file; the same audio as the converted test
 * weights; without voices a message says what to give. */
static void test_test_weights(void **state)
{
    (void)state;
    write_file(in_dir("ph.txt"), PH);
    assert_int_equal(tts("ph.txt tw1.wav --model test.kokoro --voice af_heart --phonemes -q"), 0);
    assert_int_equal(tts("ph.txt tw2.wav --test-weights --voices '%s/voices' --voice af_heart --phonemes -q",
                         KOKORO_TEST_DATA),
                     0);
    assert_true(files_equal(in_dir("tw1.wav"), in_dir("tw2.wav")));
    size_t n = 0;
    float *x = at_read_sndfile(in_dir("tw2.wav"), &n, NULL, NULL);
    assert_non_null(x);
    assert_true(n > 12000);
    free(x);
    assert_int_equal(tts("ph.txt tw3.wav --test-weights --voice af_heart --phonemes -q"), 1);
    assert_non_null(strstr(out_text, "--test-weights still needs voices"));
    assert_false(exists(in_dir("tw3.wav")));
}

/* INPUT as /dev/stdin is standard input; a directory or a special file that
 * fails to read is an error naming it; --lexicon changes the phonemes. */
static void test_inputs_and_lexicon(void **state)
{
    (void)state;
    write_file(in_dir("ph.txt"), PH);
    const char *m = "--model test.kokoro --voice am_adam --phonemes -q";
    assert_int_equal(tts("- dash.wav %s < ph.txt", m), 0);
    assert_int_equal(tts("/dev/stdin devstdin.wav %s < ph.txt", m), 0);
    assert_true(files_equal(in_dir("dash.wav"), in_dir("devstdin.wav")));
    /* the same samples as from the file (the tags differ: the title is the input's name) */
    assert_int_equal(tts("ph.txt file.wav %s", m), 0);
    size_t a = 0, b = 0;
    float *x = at_read_sndfile(in_dir("file.wav"), &a, NULL, NULL), *y = at_read_sndfile(in_dir("devstdin.wav"), &b, NULL, NULL);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a * sizeof *x);
    free(x);
    free(y);
    write_file(in_dir("hw.txt"), "Hello world. Kokoro speaks.");
    assert_int_equal(tts("/dev/stdin --print-phonemes < hw.txt"), 0);
    assert_string_equal(out_text, "həlˈoʊ wˈɜːld. kəkˈoːɹoʊ spˈiːks.\n");
    /* unreadable inputs (root reads any file, whatever its mode) */
    mkdir(in_dir("adir"), 0755);
    assert_int_equal(tts("adir o.wav --model test.kokoro --voice af_heart -q"), 1);
    assert_non_null(strstr(out_text, "cannot read adir"));
    assert_non_null(strstr(out_text, "Is a directory"));
    assert_int_equal(tts("/proc/self/mem o.wav --model test.kokoro --voice af_heart -q"), 1);
    assert_non_null(strstr(out_text, "cannot read /proc/self/mem"));
    assert_false(exists(in_dir("o.wav")));
    /* --lexicon: the user's pronunciations win over espeak-ng's */
    write_file(in_dir("lex.tsv"), "# mine\nkokoro\tkˈOkOɹO\nHello\thˈɛlO\n");
    assert_int_equal(tts("hw.txt --print-phonemes --lexicon lex.tsv"), 0);
    assert_string_equal(out_text, "hˈɛlO wˈɜːld. kˈOkOɹO spˈiːks.\n");
    write_file(in_dir("badlex.tsv"), "kokoro\tkˈOkOɹO\nno tab here\n");
    assert_int_equal(tts("hw.txt --print-phonemes --lexicon badlex.tsv"), 1);
    assert_non_null(strstr(out_text, "line 2"));
    assert_int_equal(tts("hw.txt lex.wav --model test.kokoro --voice af_heart -q --lexicon missing.tsv"), 1);
    assert_non_null(strstr(out_text, "missing.tsv"));
    assert_false(exists(in_dir("lex.wav")));
}

static void test_discovery_download_convert(void **state)
{
    (void)state;
    /* KOKORO_MODEL, then the working directory */
    setenv("KOKORO_MODEL", model, 1);
    assert_int_equal(tts("ph.txt d1.wav --voice af_heart --phonemes -q"), 0);
    unsetenv("KOKORO_MODEL");
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/kokoro-v1_0.kokoro'", model, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tts("ph.txt d2.wav --voice af_heart --phonemes -q"), 0);
    assert_true(files_equal(in_dir("d1.wav"), in_dir("d2.wav")));
    unlink(in_dir("kokoro-v1_0.kokoro"));

    /* --download from a file:// folder into $XDG_DATA_HOME/kokoro, resuming a part file */
    char src[700];
    snprintf(src, sizeof src, "%s", in_dir("mirror"));
    mkdir(src, 0755);
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    char pth[800];
    snprintf(pth, sizeof pth, "%s/kokoro-v1_0.pth", src);
    assert_int_equal(kt_write_pth(pth, &t, 1), 0);
    kk_table_free(&t);
    snprintf(cmd, sizeof cmd, "cp '%s/voices-test.npz' '%s/voices-v1.0.bin' && mkdir -p '%s/xdg/kokoro' && "
             "head -c 5000000 '%s' > '%s/xdg/kokoro/kokoro-v1_0.pth.part'",
             KOKORO_TEST_DATA, src, dir, pth, dir);
    assert_int_equal(system(cmd), 0);
    char base[800];
    snprintf(base, sizeof base, "file://%s", src);
    setenv("KOKORO_DOWNLOAD_BASE", base, 1);
    assert_int_equal(tts("--download"), 0);
    assert_non_null(strstr(out_text, "resuming"));
    assert_true(files_equal(pth, in_dir("xdg/kokoro/kokoro-v1_0.pth")));
    assert_false(exists(in_dir("xdg/kokoro/kokoro-v1_0.pth.part")));
    assert_int_equal(tts("--download"), 0);
    assert_non_null(strstr(out_text, "already there"));
    /* a corrupt download is refused and removed */
    unlink(in_dir("xdg/kokoro/voices-v1.0.bin"));
    snprintf(cmd, sizeof cmd, "head -c 3000 '%s/voices-test.npz' > '%s/voices-v1.0.bin'", KOKORO_TEST_DATA, src);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tts("--download"), 1);
    assert_non_null(strstr(out_text, "does not load"));
    assert_false(exists(in_dir("xdg/kokoro/voices-v1.0.bin")));
    unsetenv("KOKORO_DOWNLOAD_BASE");
    /* the data folder is searched: with voices there the run works without --model */
    snprintf(cmd, sizeof cmd, "cp '%s/voices-test.npz' '%s/xdg/kokoro/voices-v1.0.bin'", KOKORO_TEST_DATA, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(tts("ph.txt d3.wav --voice af_heart --phonemes -q --no-noise"), 0);
    /* --convert from the discovered files, then --model with it */
    assert_int_equal(tts("--convert conv.kokoro --dtype bf16"), 0);
    assert_int_equal(tts("ph.txt d4.wav --model conv.kokoro --voice af_heart --phonemes -q --no-noise"), 0);
    assert_int_equal(tts("--help-voices --model conv.kokoro"), 0);
    assert_non_null(strstr(out_text, "af_sarah"));
}

static void test_captions(void **state)
{
    (void)state;
    write_file(in_dir("cap.txt"), "The quick brown fox jumps. It lands softly on the grass!\n\nA new paragraph starts here.");
    assert_int_equal(tts("cap.txt cap.wav --model test.kokoro --voice af_heart -q --captions cap.srt --chunk-tokens 30"), 0);
    assert_int_equal(tts("cap.txt cap2.wav --model test.kokoro --voice af_heart -q --captions cap.vtt --chunk-tokens 30"), 0);
    size_t n = 0;
    float *x = at_read_sndfile(in_dir("cap.wav"), &n, NULL, NULL);
    assert_non_null(x);
    free(x);
    FILE *f = fopen(in_dir("cap.srt"), "r");
    assert_non_null(f);
    char line[512];
    int cues = 0;
    double last_end = -1, prev_start = -1;
    int saw_fox = 0, saw_paragraph = 0;
    while (fgets(line, sizeof line, f)) {
        int h0, m0, s0, ms0, h1, m1, s1, ms1;
        if (sscanf(line, "%d:%d:%d,%d --> %d:%d:%d,%d", &h0, &m0, &s0, &ms0, &h1, &m1, &s1, &ms1) == 8) {
            double a = h0 * 3600 + m0 * 60 + s0 + ms0 / 1000.0, b = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000.0;
            assert_true(a >= prev_start);
            assert_true(b >= a);
            prev_start = a;
            last_end = b;
            cues++;
        }
        if (strstr(line, "quick brown fox")) saw_fox = 1;
        if (strstr(line, "A new paragraph starts")) saw_paragraph = 1;
    }
    fclose(f);
    printf("    %d cues, the last ends at %.3f s of %.3f s\n", cues, last_end, (double)n / 24000);
    assert_true(cues >= 3);
    assert_true(saw_fox && saw_paragraph);
    assert_true(last_end <= (double)n / 24000 + 0.001);
    assert_true(last_end >= (double)n / 24000 - 0.5);
    f = fopen(in_dir("cap.vtt"), "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "WEBVTT\n");
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),     cmocka_unit_test(test_pipes),
        cmocka_unit_test(test_no_trim_equals_engine), cmocka_unit_test(test_seed_and_parallel),
        cmocka_unit_test(test_help),        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_interrupt),   cmocka_unit_test(test_interrupt_stdin),
        cmocka_unit_test(test_quiet),       cmocka_unit_test(test_test_weights),
        cmocka_unit_test(test_inputs_and_lexicon), cmocka_unit_test(test_discovery_download_convert),
        cmocka_unit_test(test_captions),
        cmocka_unit_test(test_perf_modes_identical), cmocka_unit_test(test_flags_override_env),
        cmocka_unit_test(test_gpu_note),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
