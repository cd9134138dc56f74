/* Books through kokoro-tts on the test weights: an M4B audiobook checked with
 * ffprobe (AAC, chapters at the computed samples, tags, cover), per-chapter
 * files and per-chunk folders, an EPUB from the corpus, resuming after a kill
 * (nothing finished is spoken again; the result equals an uninterrupted run),
 * and captions that stay with the audio to the end of a one-hour book. */
#include <cairo.h>
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

static char dir[] = "/tmp/kokoro-book-test-XXXXXX";

static const char *in_dir(const char *name)
{
    static char buf[8][700];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *BOOK = "# The Start\n\nIt was a bright cold day. The clocks were striking.\n\n"
                          "# The Middle\n\nNothing happened for a while. Then something did.\n\n"
                          "# The End\n\nAnd that was all.\n";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    char model[700];
    snprintf(model, sizeof model, "%s/test.kokoro", dir);
    if (kokoro_model_convert(NULL, KOKORO_TEST_DATA "/voices", model, KOKORO_DTYPE_F32) != KOKORO_OK) return -1;
    write_file(in_dir("book.md"), BOOK);
    /* a cover drawn with cairo */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 64, 96);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 0.2, 0.4, 0.8);
    cairo_paint(cr);
    cairo_destroy(cr);
    int rc = cairo_surface_write_to_png(s, in_dir("cover.png")) == CAIRO_STATUS_SUCCESS ? 0 : -1;
    cairo_surface_destroy(s);
    unsetenv("KOKORO_USE_PARALLEL");
    unsetenv("KOKORO_MAX_WORKERS");
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char out_text[65536];

static int tts(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s/out.log' 2>&1", dir, KOKORO_TTS_PATH, args, dir);
    int st = system(cmd);
    out_text[0] = 0;
    FILE *f = fopen(in_dir("out.log"), "r");
    if (f) {
        size_t n = fread(out_text, 1, sizeof out_text - 1, f);
        out_text[n] = 0;
        fclose(f);
    }
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    printf("  $ kokoro-tts %.200s -> %d\n", args, rc);
    if (rc != 0) printf("    %.600s\n", out_text);
    return rc;
}

static uint64_t done_samples(const char *work, int k)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%04d.done", work, k);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    unsigned long long n = 0;
    assert_int_equal(fscanf(f, "%llu", &n), 1);
    fclose(f);
    return n;
}

static const char *tag(const cJSON *o, const char *key)
{
    const char *v = at_json_str(cJSON_GetObjectItemCaseSensitive(o, "tags"), key);
    if (!v) printf("    no tag '%s'\n", key);
    return v ? v : "(missing)";
}

static void test_audiobook(void **state)
{
    (void)state;
    assert_int_equal(tts("book.md --audiobook book.m4b --model test.kokoro --voice af_heart -q --keep-temp "
                         "--cover cover.png --author 'Ann Writer' --narrator 'Kokoro Test' --year 2024 "
                         "--description 'A test; with = signs # and \\ slashes' --chapter-pause 1500"),
                     0);
    const char *work = in_dir("book.m4b.work");
    /* chapters: intro (0000) then 0001..0003, 1.5 s between them */
    uint64_t start[4], at = 0, pause = 36000;
    for (int k = 0; k < 4; k++) {
        start[k] = at;
        at += done_samples(work, k) + (k < 3 ? pause : 0);
    }
    cJSON *j = at_ffprobe(in_dir("book.m4b"));
    assert_non_null(j);
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(j, "streams"), *st;
    int audio = 0, pic = 0;
    cJSON_ArrayForEach(st, streams)
    {
        const char *type = at_json_str(st, "codec_type");
        if (type && !strcmp(type, "audio")) {
            assert_string_equal(at_json_str(st, "codec_name"), "aac");
            audio++;
        }
        const cJSON *disp = cJSON_GetObjectItemCaseSensitive(st, "disposition");
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(disp, "attached_pic");
        if (type && !strcmp(type, "video") && cJSON_IsNumber(ap) && ap->valueint == 1) pic++;
    }
    assert_int_equal(audio, 1);
    assert_int_equal(pic, 1);
    const cJSON *chapters = cJSON_GetObjectItemCaseSensitive(j, "chapters"), *ch;
    assert_int_equal(cJSON_GetArraySize(chapters), 4);
    const char *titles[] = {"Introduction", "The Start", "The Middle", "The End"};
    int k = 0;
    double worst = 0;
    cJSON_ArrayForEach(ch, chapters)
    {
        assert_string_equal(tag(ch, "title"), titles[k]);
        double t = at_json_num_str(ch, "start_time"), want = (double)start[k] / 24000.0;
        if (fabs(t - want) > worst) worst = fabs(t - want);
        assert_true(fabs(t - want) <= 0.001);
        k++;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    double dur = at_json_num_str(fmt, "duration"), want = (double)at / 24000.0;
    printf("    4 chapters, worst start error %.6f s; duration %.3f s, chapters + pauses %.3f s\n", worst, dur, want);
    assert_true(fabs(dur - want) < 0.05);
    assert_string_equal(tag(fmt, "title"), "book"); /* a Markdown file has no title: its name */
    assert_string_equal(tag(fmt, "artist"), "Ann Writer");
    assert_string_equal(tag(fmt, "album_artist"), "Ann Writer");
    assert_string_equal(tag(fmt, "composer"), "Kokoro Test");
    assert_string_equal(tag(fmt, "date"), "2024");
    assert_string_equal(tag(fmt, "genre"), "Audiobook");
    assert_non_null(strstr(tag(fmt, "description"), "with = signs # and \\ slashes"));
    cJSON_Delete(j);
    /* the work folder is kept only when asked */
    assert_int_equal(tts("book.md --audiobook book2.m4b --model test.kokoro --voice af_heart -q --no-intro"), 0);
    assert_int_not_equal(access(in_dir("book2.m4b.work"), F_OK), 0);
    j = at_ffprobe(in_dir("book2.m4b"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "chapters")), 3);
    cJSON_Delete(j);
    /* bad requests */
    assert_int_equal(tts("book.md --audiobook book.mp3 --model test.kokoro -q"), 2);
    assert_int_equal(tts("book.md out.wav --audiobook b.m4b --model test.kokoro -q"), 2);
    assert_int_equal(tts("book.md --audiobook b.m4b --model test.kokoro --voice af_heart -q --select-chapters 9"), 1);
    assert_non_null(strstr(out_text, "9"));
    assert_int_equal(tts("book.md --audiobook b.m4b --model test.kokoro --voice af_heart -q --cover book.md"), 1);
    assert_non_null(strstr(out_text, "cover"));
    assert_int_not_equal(access(in_dir("b.m4b"), F_OK), 0);
}

static void test_chapters_and_split(void **state)
{
    (void)state;
    assert_int_equal(tts("book.md --chapters chap --model test.kokoro --voice af_heart -q --chapter-pause 1000"), 0);
    size_t n1 = 0, n2 = 0, n3 = 0, nall = 0;
    float *x = at_read_sndfile(in_dir("chap/Chapter_001_The_Start.wav"), &n1, NULL, NULL);
    free(x);
    x = at_read_sndfile(in_dir("chap/Chapter_002_The_Middle.wav"), &n2, NULL, NULL);
    free(x);
    x = at_read_sndfile(in_dir("chap/Chapter_003_The_End.wav"), &n3, NULL, NULL);
    free(x);
    x = at_read_sndfile(in_dir("chap/book_Complete.wav"), &nall, NULL, NULL);
    free(x);
    printf("    chapters %zu + %zu + %zu + 2 pauses = %zu samples in the whole book\n", n1, n2, n3, nall);
    assert_true(n1 > 0 && n2 > 0 && n3 > 0);
    assert_int_equal(nall, n1 + n2 + n3 + 2 * 24000);
    assert_int_not_equal(access(in_dir("chap/.work"), F_OK), 0);

    assert_int_equal(tts("book.md --split-output split --model test.kokoro --voice af_heart -q --chunk-tokens 20"), 0);
    assert_int_equal(access(in_dir("split/chapter_001/chunk_001.wav"), F_OK), 0);
    assert_int_equal(access(in_dir("split/chapter_001/chunk_002.wav"), F_OK), 0);
    assert_int_equal(access(in_dir("split/chapter_003/info.txt"), F_OK), 0);
    /* run again: every chapter is complete, nothing is spoken */
    assert_int_equal(tts("book.md --split-output split --model test.kokoro --voice af_heart --chunk-tokens 20"), 0);
    assert_non_null(strstr(out_text, "done in an earlier run"));
    assert_int_equal(tts("book.md --split-output split --merge-chunks"), 0);
    assert_int_equal(access(in_dir("split/Chapter_001_The_Start.wav"), F_OK), 0);
    assert_int_equal(tts("book.md --merge-chunks"), 2);
}

/* The corpus EPUB: its metadata and cover reach the audiobook. */
static void test_epub(void **state)
{
    (void)state;
    assert_int_equal(tts("'%s/corpus/epub/wasteland.epub' --list-chapters", KOKORO_TEST_DATA), 0);
    assert_non_null(strstr(out_text, "IV. DEATH BY WATER"));
    assert_int_equal(tts("'%s/corpus/epub/wasteland.epub' --audiobook waste.m4b --model test.kokoro --voice af_heart "
                         "-q --select-chapters 4 --no-intro --speed 2",
                         KOKORO_TEST_DATA),
                     0);
    cJSON *j = at_ffprobe(in_dir("waste.m4b"));
    assert_non_null(j);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    assert_string_equal(tag(fmt, "title"), "The Waste Land");
    assert_string_equal(tag(fmt, "artist"), "T.S. Eliot");
    const cJSON *chapters = cJSON_GetObjectItemCaseSensitive(j, "chapters");
    assert_int_equal(cJSON_GetArraySize(chapters), 1);
    assert_string_equal(tag(cJSON_GetArrayItem(chapters, 0), "title"), "IV. DEATH BY WATER");
    int pic = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(j, "streams"))
    {
        const char *type = at_json_str(st, "codec_type");
        if (type && !strcmp(type, "video")) pic++;
    }
    assert_int_equal(pic, 1); /* the book's JPEG cover */
    cJSON_Delete(j);
    assert_int_equal(tts("'%s/corpus/pdf/imagemagick-images.pdf' x.wav --model test.kokoro -q", KOKORO_TEST_DATA), 1);
    assert_non_null(strstr(out_text, "text"));
}

static int files_equal(const char *a, const char *b)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* Kill the run once a chapter is finished, run again: the finished chapters
 * are not spoken again and the book equals an uninterrupted run's. */
static void test_resume(void **state)
{
    (void)state;
    const char *args = "book.md --audiobook %s --model test.kokoro --voice af_heart -q --seed 3";
    assert_int_equal(tts(args, "whole.m4b"), 0);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' book.md --audiobook cut.m4b --model test.kokoro --voice af_heart -q --seed 3",
             dir, KOKORO_TTS_PATH);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* wait for the first chapter after the intro to be done, then kill -9 */
    const char *mark = in_dir("cut.m4b.work/0001.done");
    for (int i = 0; i < 6000 && access(mark, F_OK) != 0; i++) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(access(mark, F_OK), 0);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_int_not_equal(access(in_dir("cut.m4b"), F_OK), 0); /* nothing published */
    assert_int_equal(tts("book.md --audiobook cut.m4b --model test.kokoro --voice af_heart --seed 3"), 0);
    assert_non_null(strstr(out_text, "The Start (done in an earlier run)"));
    assert_non_null(strstr(out_text, "Introduction: done in an earlier run"));
    assert_true(files_equal(in_dir("whole.m4b"), in_dir("cut.m4b")));
    printf("    resumed book identical to the uninterrupted one\n");
    /* other settings: the work folder is not reused */
    assert_int_equal(tts("book.md --audiobook cut.m4b --model test.kokoro --voice af_heart -q --seed 4 --keep-temp"), 0);
    assert_false(files_equal(in_dir("whole.m4b"), in_dir("cut.m4b")));
}

/* A one-hour book (long pauses between short sentences): the last caption
 * is where its speech is heard, within 50 ms. */
static void test_captions_hour(void **state)
{
    (void)state;
#ifdef KOKORO_SANITIZED
    skip(); /* an hour of audio to encode and decode: the Release run covers it */
#endif
    FILE *f = fopen(in_dir("hour.md"), "w");
    assert_non_null(f);
    for (int c = 1; c <= 6; c++) {
        fprintf(f, "# Part %d\n\n", c);
        for (int k = 1; k <= 2; k++) fprintf(f, "Tick %d. [pause:300s]\n\n", k);
        fprintf(f, "Tock.\n\n");
    }
    fclose(f);
    assert_int_equal(tts("hour.md --audiobook hour.m4b --model test.kokoro --voice af_heart -q --no-intro "
                         "--captions hour.srt"),
                     0);
    /* the last cue */
    f = fopen(in_dir("hour.srt"), "r");
    assert_non_null(f);
    char line[512];
    double first = -1, last = -1;
    while (fgets(line, sizeof line, f)) {
        int h, m, s, ms;
        if (sscanf(line, "%d:%d:%d,%d -->", &h, &m, &s, &ms) == 4) {
            last = h * 3600 + m * 60 + s + ms / 1000.0;
            if (first < 0) first = last;
        }
    }
    fclose(f);
    /* the audio: decoded with ffmpeg, the onsets after long silences */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f f32le -ac 1 -ar 24000 -", in_dir("hour.m4b"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    float buf[24000];
    size_t pos = 0, quiet_run = 0, k;
    double first_onset = -1, last_onset = -1;
    while ((k = fread(buf, sizeof *buf, 24000, p)) > 0) {
        for (size_t i = 0; i < k; i++, pos++) {
            if (fabsf(buf[i]) > 1e-3f) {
                if (quiet_run > 24000 * 10 || first_onset < 0) { /* speech after 10 s of silence */
                    last_onset = (double)pos / 24000.0;
                    if (first_onset < 0) first_onset = last_onset;
                }
                quiet_run = 0;
            } else {
                quiet_run++;
            }
        }
    }
    pclose(p);
    double hours = (double)pos / 24000.0 / 3600.0;
    printf("    %.3f h of audio; first caption %.3f s / speech %.3f s; last caption %.3f s / speech %.3f s\n", hours,
           first, first_onset, last, last_onset);
    assert_true(hours >= 1.0);
    assert_true(last_onset > 3000);
    /* a cue starts at its first word, after the chunk's leading pad frame; the
     * onset is where the chunk's kept audio begins: the same gap at the start
     * and at the end of the hour, to 50 ms */
    assert_true(fabs((last - last_onset) - (first - first_onset)) <= 0.05);
    assert_true(fabs(last - last_onset) <= 0.25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audiobook), cmocka_unit_test(test_chapters_and_split), cmocka_unit_test(test_epub),
        cmocka_unit_test(test_resume),    cmocka_unit_test(test_captions_hour),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
