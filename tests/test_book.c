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

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static int file_has(const char *path, const char *needle)
{
    char *s = slurp(path);
    int found = strstr(s, needle) != NULL;
    printf("    %s %s \"%s\"\n", strrchr(path, '/') + 1, found ? "has" : "has no", needle);
    free(s);
    return found;
}

/* A file's identity and last write: a work file that is reused, not made
 * again, keeps its inode and its modification time to the nanosecond. */
typedef struct file_id {
    ino_t ino;
    struct timespec mtime;
    off_t size;
} file_id;

static file_id file_id_of(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) printf("    no %s\n", path);
    assert_int_equal(stat(path, &sb), 0);
    return (file_id){sb.st_ino, sb.st_mtim, sb.st_size};
}

static int same_file_id(file_id a, file_id b)
{
    return a.ino == b.ino && a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec && a.size == b.size;
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

static void assert_chapters(const cJSON *j, const char *const *titles, int n)
{
    const cJSON *chapters = cJSON_GetObjectItemCaseSensitive(j, "chapters"), *ch;
    int k = 0;
    cJSON_ArrayForEach(ch, chapters)
    {
        printf("    chapter %d: %s\n", k + 1, tag(ch, "title"));
        if (k < n) assert_string_equal(tag(ch, "title"), titles[k]);
        k++;
    }
    assert_int_equal(k, n);
}

static void test_audiobook(void **state)
{
    (void)state;
    assert_int_equal(tts("book.md --audiobook book.m4b --model test.kokoro --voice af_heart -q --keep-temp "
                         "--cover cover.png --author 'Ann Writer' --narrator 'Kokoro Test' --year 2024 "
                         "--description 'A test; with = signs # and \\ slashes' --chapter-pause 1500 --captions book.srt"),
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
    size_t decoded = 0;
    float *pcm = at_read_ffmpeg(in_dir("book.m4b"), &decoded);
    assert_non_null(pcm);
    free(pcm);
    printf("    4 chapters, worst start error %.6f s; duration %.6f s (%zu samples decoded), chapters + pauses %.6f s\n",
           worst, dur, decoded, want);
    /* the container's duration is the chapters and pauses, to the millisecond; ffmpeg decodes the
     * priming away but keeps the padding of the last 1024-sample AAC frame */
    assert_true(fabs(dur - want) <= 0.001);
    assert_true(decoded >= at && decoded < at + 1024);
    /* the introduction names the narrator given (and the author) */
    assert_true(file_has(in_dir("book.srt"), "Written by Ann Writer."));
    assert_true(file_has(in_dir("book.srt"), "Narrated by Kokoro Test."));
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

/* The spoken introduction: the narrator given; a new narrator makes the
 * intro again (its words are kept beside it in the work folder) but not the
 * chapters; --intro-text replaces it. Its words are visible in the captions. */
static void test_intro(void **state)
{
    (void)state;
    const char *args = "book.md --audiobook intro.m4b --model test.kokoro --voice af_heart -q --select-chapters 3 "
                       "--keep-temp --captions intro.srt --author 'Ann Writer' %s";
    assert_int_equal(tts(args, "--narrator 'Jane Reader'"), 0);
    assert_true(file_has(in_dir("intro.srt"), "Narrated by Jane Reader."));
    assert_false(file_has(in_dir("intro.srt"), "Kokoro"));
    file_id jane = file_id_of(in_dir("intro.m4b.work/0000.pcm")), chapter = file_id_of(in_dir("intro.m4b.work/0003.pcm"));
    assert_int_equal(tts(args, "--narrator 'Bob Voice'"), 0);
    assert_true(file_has(in_dir("intro.srt"), "Narrated by Bob Voice."));
    /* the intro is spoken again with the new words; the chapter is kept */
    assert_false(same_file_id(jane, file_id_of(in_dir("intro.m4b.work/0000.pcm"))));
    assert_true(same_file_id(chapter, file_id_of(in_dir("intro.m4b.work/0003.pcm"))));
    assert_true(file_has(in_dir("intro.m4b.work/0000.txt"), "Narrated by Bob Voice."));
    assert_int_equal(tts(args, "--narrator 'Bob Voice' --intro-text 'Welcome to a short test.'"), 0);
    char *srt = slurp(in_dir("intro.srt"));
    printf("    captions: %.120s\n", srt);
    assert_non_null(strstr(srt, "\nWelcome to a short test.\n"));
    assert_null(strstr(srt, "Narrated"));
    free(srt);
    cJSON *j = at_ffprobe(in_dir("intro.m4b"));
    assert_non_null(j);
    const char *titles[] = {"Introduction", "The End"};
    assert_chapters(j, titles, 2);
    assert_string_equal(tag(cJSON_GetObjectItemCaseSensitive(j, "format"), "composer"), "Bob Voice");
    cJSON_Delete(j);
}

/* Front and back matter: skipped by default in an audiobook, each decision
 * and its reason printed with --debug, kept with --keep-front-matter; then
 * --title, --genre, --no-chapters and --no-metadata on the same work folder. */
static void test_matter(void **state)
{
    (void)state;
    write_file(in_dir("matter.md"), "# Copyright\n\nCopyright 2024 Ann Writer.\n\n"
                                    "# Contents\n\nOne. Two.\n\n"
                                    "# Chapter One\n\nIt began.\n\n"
                                    "# Chapter Two\n\nIt ended.\n\n"
                                    "# About the Author\n\nAnn writes.\n");
    const char *base = "matter.md --audiobook matter.m4b --model test.kokoro --voice af_heart -q --no-intro --keep-temp";
    assert_int_equal(tts("%s --debug", base), 0);
    assert_non_null(strstr(out_text, "chapter 1/5 'Copyright' skipped: front matter (title has \"copyright\")"));
    assert_non_null(strstr(out_text, "chapter 2/5 'Contents' skipped: front matter (title is \"contents\")"));
    assert_non_null(strstr(out_text, "chapter 3/5 'Chapter One' kept: body"));
    assert_non_null(strstr(out_text, "chapter 4/5 'Chapter Two' kept: body"));
    assert_non_null(strstr(out_text, "chapter 5/5 'About the Author' skipped: back matter (title has \"about the author\")"));
    cJSON *j = at_ffprobe(in_dir("matter.m4b"));
    assert_non_null(j);
    const char *body[] = {"Chapter One", "Chapter Two"};
    assert_chapters(j, body, 2);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    assert_string_equal(tag(fmt, "title"), "matter");
    assert_string_equal(tag(fmt, "genre"), "Audiobook");
    cJSON_Delete(j);

    assert_int_equal(tts("%s --debug --keep-front-matter --title 'Kept Matter' --genre Mystery", base), 0);
    assert_non_null(strstr(out_text, "chapter 1/5 'Copyright' kept: front matter, title has \"copyright\""));
    assert_non_null(strstr(out_text, "chapter 5/5 'About the Author' kept: back matter, title has \"about the author\""));
    assert_null(strstr(out_text, "skipped"));
    j = at_ffprobe(in_dir("matter.m4b"));
    assert_non_null(j);
    const char *all[] = {"Copyright", "Contents", "Chapter One", "Chapter Two", "About the Author"};
    assert_chapters(j, all, 5);
    fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    assert_string_equal(tag(fmt, "title"), "Kept Matter");
    assert_string_equal(tag(fmt, "album"), "Kept Matter");
    assert_string_equal(tag(fmt, "genre"), "Mystery");
    cJSON_Delete(j);
    /* no marks, no tags, no cover: the same audio, from the same work folder */
    file_id one = file_id_of(in_dir("matter.m4b.work/0003.pcm"));
    assert_int_equal(tts("%s --keep-front-matter --title 'Kept Matter' --cover cover.png --no-chapters --no-metadata", base), 0);
    assert_true(same_file_id(one, file_id_of(in_dir("matter.m4b.work/0003.pcm"))));
    j = at_ffprobe(in_dir("matter.m4b"));
    assert_non_null(j);
    assert_chapters(j, NULL, 0);
    fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(fmt, "tags");
    const char *none[] = {"title", "album", "artist", "composer", "genre", "date", "media_type"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) assert_null(at_json_str(tags, none[i]));
    int streams = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(j, "streams")) streams++;
    assert_int_equal(streams, 1); /* no attached picture */
    cJSON_Delete(j);
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
                         "-q --select-chapters 4 --speed 2 --captions waste.srt",
                         KOKORO_TEST_DATA),
                     0);
    cJSON *j = at_ffprobe(in_dir("waste.m4b"));
    assert_non_null(j);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    assert_string_equal(tag(fmt, "title"), "The Waste Land");
    assert_string_equal(tag(fmt, "artist"), "T.S. Eliot");
    assert_string_equal(tag(fmt, "album"), "The Waste Land");
    assert_string_equal(tag(fmt, "composer"), "Kokoro (af_heart)");
    const char *titles[] = {"Introduction", "IV. DEATH BY WATER"};
    assert_chapters(j, titles, 2);
    int pic = 0, audio = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(j, "streams"))
    {
        const char *type = at_json_str(st, "codec_type");
        if (type && !strcmp(type, "video")) pic++;
        if (type && !strcmp(type, "audio")) {
            audio++;
            assert_string_equal(tag(st, "language"), "eng"); /* dc:language en-US */
        }
    }
    assert_int_equal(audio, 1);
    assert_int_equal(pic, 1); /* the book's JPEG cover */
    /* the default introduction: title, author, and Kokoro as the narrator */
    assert_true(file_has(in_dir("waste.srt"), "The Waste Land."));
    assert_true(file_has(in_dir("waste.srt"), "Narrated by Kokoro."));
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

/* Starts kokoro-tts with args, waits until every path in marks (NULL-ended)
 * exists, and kills it with SIGKILL: no handler runs, like a power cut. */
static void run_and_kill(const char *args, ...)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' %s", dir, KOKORO_TTS_PATH, args);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    va_list ap;
    va_start(ap, args);
    for (const char *mark; (mark = va_arg(ap, const char *));) {
        for (int i = 0; i < 30000 && access(mark, F_OK) != 0; i++) { /* at most 10 minutes */
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
        if (access(mark, F_OK) != 0) printf("    %s never appeared\n", mark);
        assert_int_equal(access(mark, F_OK), 0);
    }
    va_end(ap);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); /* killed midway, not finished */
}

/* The identities of the work files of every chapter marked done in work
 * (k = 0 the intro .. n); returns how many chapters were done. */
static int done_ids(const char *work, int n, file_id ids[][3], int done[])
{
    static const char *ext[] = {"pcm", "words", "done"};
    int count = 0;
    for (int k = 0; k <= n; k++) {
        char p[800];
        snprintf(p, sizeof p, "%s/%04d.done", work, k);
        done[k] = access(p, F_OK) == 0;
        for (int e = 0; done[k] && e < 3; e++) {
            snprintf(p, sizeof p, "%s/%04d.%s", work, k, ext[e]);
            ids[k][e] = file_id_of(p);
        }
        count += done[k];
    }
    return count;
}

static void assert_done_untouched(const char *work, int n, file_id ids[][3], const int done[])
{
    static const char *ext[] = {"pcm", "words", "done"};
    for (int k = 0; k <= n; k++)
        for (int e = 0; done[k] && e < 3; e++) {
            char p[800];
            snprintf(p, sizeof p, "%s/%04d.%s", work, k, ext[e]);
            if (!same_file_id(ids[k][e], file_id_of(p))) printf("    %s was written again\n", p);
            assert_true(same_file_id(ids[k][e], file_id_of(p)));
        }
}

/* Kill the run once a chapter is finished, run again: the finished chapters
 * are not spoken again (their work files are untouched) and the book equals
 * an uninterrupted run's. The work folder is in --temp-dir. */
static void test_resume(void **state)
{
    (void)state;
    const char *args = "book.md --audiobook %s --model test.kokoro --voice af_heart -q --seed 3";
    assert_int_equal(tts(args, "whole.m4b"), 0);
    const char *work = in_dir("tmp/deep/work");
    /* the intro and the first chapter done, then kill -9 */
    run_and_kill("book.md --audiobook cut.m4b --model test.kokoro --voice af_heart -q --seed 3 --temp-dir tmp/deep/work",
                 in_dir("tmp/deep/work/0001.done"), (const char *)NULL);
    assert_int_not_equal(access(in_dir("cut.m4b"), F_OK), 0);       /* nothing published */
    assert_int_not_equal(access(in_dir("cut.m4b.work"), F_OK), 0);  /* the work is in --temp-dir */
    file_id ids[4][3];
    int done[4];
    int n = done_ids(work, 3, ids, done);
    printf("    killed with %d of 4 parts done\n", n);
    assert_true(done[0] && done[1] && n < 4);
    assert_int_equal(tts("book.md --audiobook cut.m4b --model test.kokoro --voice af_heart --seed 3 "
                         "--temp-dir tmp/deep/work --keep-temp"),
                     0);
    assert_non_null(strstr(out_text, "The Start (done in an earlier run)"));
    assert_non_null(strstr(out_text, "Introduction: done in an earlier run"));
    assert_done_untouched(work, 3, ids, done);
    assert_int_not_equal(access(in_dir("cut.m4b.work"), F_OK), 0);
    assert_true(files_equal(in_dir("whole.m4b"), in_dir("cut.m4b")));
    printf("    resumed book identical to the uninterrupted one\n");
    /* other settings: the work folder is not reused */
    assert_int_equal(tts("book.md --audiobook cut.m4b --model test.kokoro --voice af_heart -q --seed 4 "
                         "--temp-dir tmp/deep/work --keep-temp"),
                     0);
    assert_false(files_equal(in_dir("whole.m4b"), in_dir("cut.m4b")));
    assert_false(same_file_id(ids[1][0], file_id_of(in_dir("tmp/deep/work/0001.pcm"))));
}

/* The sorted names in a folder but its work folder, joined by newlines. */
static void listing(const char *path, char *out, size_t size)
{
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -vx .work | sort", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    pclose(p);
}

/* The same for --chapters DIR: the chapter files and the whole book after
 * a resumed run are byte for byte those of an uninterrupted run, and no
 * stray file is left. */
static void test_resume_chapters(void **state)
{
    (void)state;
    const char *args = "book.md --chapters %s --model test.kokoro --voice af_heart -q --seed 5 %s";
    assert_int_equal(tts(args, "chwhole", ""), 0);
    /* killed once the first chapter's file is out (no writer is open then) */
    run_and_kill("book.md --chapters chcut --model test.kokoro --voice af_heart -q --seed 5",
                 in_dir("chcut/.work/0001.done"), in_dir("chcut/Chapter_001_The_Start.wav"), (const char *)NULL);
    assert_int_not_equal(access(in_dir("chcut/book_Complete.wav"), F_OK), 0);
    file_id ids[4][3];
    int done[4];
    int n = done_ids(in_dir("chcut/.work"), 3, ids, done);
    printf("    killed with %d of 3 chapters done\n", n);
    assert_true(done[1] && n < 3);
    file_id first = file_id_of(in_dir("chcut/Chapter_001_The_Start.wav"));
    assert_int_equal(tts(args, "chcut", "--keep-temp"), 0);
    assert_done_untouched(in_dir("chcut/.work"), 3, ids, done);
    assert_true(same_file_id(first, file_id_of(in_dir("chcut/Chapter_001_The_Start.wav"))));
    char a[4096], b[4096];
    listing(in_dir("chwhole"), a, sizeof a);
    listing(in_dir("chcut"), b, sizeof b);
    printf("    files:\n%s", a);
    assert_string_equal(a, b);
    const char *files[] = {"Chapter_001_The_Start.wav", "Chapter_002_The_Middle.wav", "Chapter_003_The_End.wav",
                           "book_Complete.wav"};
    for (int k = 0; k < 4; k++) {
        char pa[64], pb[64];
        snprintf(pa, sizeof pa, "chwhole/%s", files[k]);
        snprintf(pb, sizeof pb, "chcut/%s", files[k]);
        assert_true(files_equal(in_dir(pa), in_dir(pb)));
    }
    printf("    resumed chapters identical to the uninterrupted ones\n");
}

/* The first word's start inside a chunk spoken alone: the leading pad
 * token's predicted frames (minus any trimmed silence). The test weights make
 * noise there, where real weights are near silent, so the audible onset of a
 * chunk comes this much before its first word. */
static kokoro_status first_word(void *user, const kokoro_piece *p)
{
    int64_t *at = user;
    if (*at < 0 && p->n_words) *at = (int64_t)p->words[0].start;
    return KOKORO_OK;
}

#define HOUR_PARTS 4
#define HOUR_LINES 9
#define HOUR_CHECKED 8

typedef struct hour_cue {
    double start;     /* from the captions */
    char text[128];
    double pad;       /* first word's offset in its chunk */
    float win[36000]; /* decoded audio from start - 1 s to start + 0.5 s */
    size_t got;
} hour_cue;

/* A book of a little over an hour: 4 parts of 9 short sentences (36
 * sentences in ~28 chunks, about 190 s of sound on the test weights, ~5% of
 * the hour: synthesising a whole hour of speech on them takes over half an
 * hour of CPU), separated by [pause:Ns] silences of 150-151 s, sentence
 * pauses, chapter pauses and trims. At the end of the hour, each of the last
 * 8 cues starts where its sound is heard (the onset of energy after a
 * silence, plus the chunk's leading pad), within 50 ms. */
static void test_captions_hour(void **state)
{
    (void)state;
#ifdef KOKORO_SANITIZED
    skip(); /* an hour of audio to encode and decode: the Release run covers it */
#endif
    static const char *adj[] = {"bright", "cold", "quiet", "green", "distant", "heavy", "narrow"};
    static const char *noun[] = {"river", "window", "road", "garden", "station", "harbour", "forest", "lamp"};
    FILE *f = fopen(in_dir("hour.md"), "w");
    assert_non_null(f);
    double pauses = 0;
    for (int c = 1, n = 0; c <= HOUR_PARTS; c++) {
        fprintf(f, "# Part %d\n\n", c);
        for (int k = 1; k <= HOUR_LINES; k++, n++) {
            fprintf(f, "The %s %s stood at line %d.", adj[n % 7], noun[n % 8], k);
            if (k == HOUR_LINES) fputs("\n\n", f);
            else if (c < HOUR_PARTS && k % 3 == 1) fputs(" ", f); /* the next sentence follows a sentence pause */
            else {
                double s = 150.0 + 0.137 * (n % 8); /* not whole frames: the pauses' rounding adds up */
                fprintf(f, " [pause:%.3fs]\n\n", s);
                pauses += s;
            }
        }
    }
    fclose(f);
    printf("    %.1f s of [pause] markers\n", pauses);
    assert_int_equal(tts("hour.md --audiobook hour.m4b --model test.kokoro --voice af_heart -q --no-intro "
                         "--captions hour.srt"),
                     0);
    /* every cue; the last HOUR_CHECKED are checked */
    f = fopen(in_dir("hour.srt"), "r");
    assert_non_null(f);
    static hour_cue cues[HOUR_CHECKED];
    char line[512];
    int ncues = 0, pending = 0;
    while (fgets(line, sizeof line, f)) {
        int h, m, sec, ms;
        if (sscanf(line, "%d:%d:%d,%d -->", &h, &m, &sec, &ms) == 4) {
            hour_cue *q = &cues[ncues % HOUR_CHECKED];
            memset(q, 0, sizeof *q);
            q->start = h * 3600 + m * 60 + sec + ms / 1000.0;
            ncues++;
            pending = 1;
        } else if (pending) {
            line[strcspn(line, "\n")] = 0;
            snprintf(cues[(ncues - 1) % HOUR_CHECKED].text, sizeof cues[0].text, "%.127s", line);
            pending = 0;
        }
    }
    fclose(f);
    printf("    %d cues\n", ncues);
    assert_true(ncues >= HOUR_PARTS * HOUR_LINES);
    hour_cue *last[HOUR_CHECKED];
    for (int k = 0; k < HOUR_CHECKED; k++) last[k] = &cues[(ncues + k) % HOUR_CHECKED];
    /* each checked sentence alone through the engine: its pad */
    kokoro_engine_options eo = kokoro_engine_options_default();
    char model[700];
    snprintf(model, sizeof model, "%s/test.kokoro", dir);
    eo.model_path = model;
    kokoro_engine *e;
    assert_int_equal(kokoro_engine_open(&eo, &e), KOKORO_OK);
    for (int k = 0; k < HOUR_CHECKED; k++) {
        kokoro_speak_options so = kokoro_speak_options_default();
        so.voice = "af_heart";
        int64_t at = -1;
        assert_int_equal(kokoro_engine_speak(e, last[k]->text, strlen(last[k]->text), &so, first_word, &at), KOKORO_OK);
        assert_true(at >= 0);
        last[k]->pad = (double)at / 24000.0;
    }
    kokoro_engine_free(e);
    /* the audio, decoded with ffmpeg: windows around the checked cues, and how much of it is sound */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f f32le -ac 1 -ar 24000 -", in_dir("hour.m4b"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static float buf[24000];
    size_t pos = 0, loud = 0, k;
    while ((k = fread(buf, sizeof *buf, 24000, p)) > 0)
        for (size_t i = 0; i < k; i++, pos++) {
            loud += fabsf(buf[i]) > 0.02f;
            for (int c = 0; c < HOUR_CHECKED; c++) {
                int64_t w0 = (int64_t)llround((last[c]->start - 1.0) * 24000.0);
                if ((int64_t)pos >= w0 && (int64_t)pos < w0 + 36000) last[c]->win[last[c]->got++] = buf[i];
            }
        }
    assert_int_equal(pclose(p), 0);
    double hours = (double)pos / 24000.0 / 3600.0, speech = (double)loud / 24000.0;
    printf("    %.3f h of audio, %.1f s of it sound (%.1f%%)\n", hours, speech, 100.0 * speech / ((double)pos / 24000.0));
    assert_true(hours >= 1.0);
    assert_true(speech >= 100.0);
    double worst = 0;
    for (int c = 0; c < HOUR_CHECKED; c++) {
        hour_cue *q = last[c];
        assert_int_equal(q->got, 36000);
        /* the cue follows a silence: the half second before the window's middle second is quiet */
        float before = 0;
        for (size_t i = 0; i < 12000; i++) before = fabsf(q->win[i]) > before ? fabsf(q->win[i]) : before;
        size_t onset = 12000;
        while (onset < 36000 && fabsf(q->win[onset]) <= 0.1f) onset++;
        assert_true(before < 0.02f);
        assert_true(onset < 36000);
        double heard = q->start - 1.0 + (double)onset / 24000.0 + q->pad, err = q->start - heard;
        printf("    cue %.3f s \"%s\": sound from %.3f s, first word %.3f s in: %+.1f ms\n", q->start, q->text,
               heard - q->pad, q->pad, 1000.0 * err);
        if (fabs(err) > worst) worst = fabs(err);
        assert_true(fabs(err) <= 0.05);
    }
    printf("    worst caption error at the end of the hour: %.1f ms\n", 1000.0 * worst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audiobook), cmocka_unit_test(test_intro), cmocka_unit_test(test_matter),
        cmocka_unit_test(test_chapters_and_split), cmocka_unit_test(test_epub),
        cmocka_unit_test(test_resume),    cmocka_unit_test(test_resume_chapters), cmocka_unit_test(test_captions_hour),
    };
    if (getenv("KOKORO_TEST_FILTER")) cmocka_set_test_filter(getenv("KOKORO_TEST_FILTER")); /* e.g. "*hour*" */
    return cmocka_run_group_tests(tests, setup, teardown);
}
