/* Audiobook (M4B/M4A) writing: one AAC pass, chapters at exact samples,
 * metadata through libavformat, the cover as an attached picture; checked
 * with ffprobe and by decoding with ffmpeg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "audio_testutil.h"

static const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26, 0x93, 0x09, 0x29, 0x00, 0x00, 0x00, 0x10, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x38, 0x21, 0x27, 0x07, 0x47, 0x0c, 0xc4, 0x71, 0x00, 0xb1, 0x63, 0x10, 0x41,
    0x3b, 0x4b, 0x63, 0x82, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

/* Characters that broke the seed system's hand-written FFMETADATA. */
#define TRICKY_TITLE "Tales = Fables; #1 \\ part \"two\" — Ünïcødé"
#define TRICKY_DESC "Line one; with = signs\nLine two # not a comment\n[CHAPTER]\ntitle=fake"

typedef struct {
    const char *title;
    double seconds;
    double freq;
} chapter_spec;

static const chapter_spec kBook[] = {
    {"Introduction", 0.75, 300.0},
    {"Chapter 1: The = Start; ok", 1.30, 500.0},
    {"Chapter 2 — Ünïcødé #2", 0.91, 700.0},
    {"Epilogue\\end", 0.47, 900.0},
};
#define N_CH (sizeof kBook / sizeof kBook[0])
static const size_t kPause = SR * 2 / 5; /* 400 ms between chapters */

/* Writes the book; starts[i] receives the sample where chapter i starts. */
static void write_book(const char *path, kokoro_audio_format fmt, const kokoro_metadata *md, int no_md, int no_ch,
                       uint64_t *starts, uint64_t *total)
{
    kokoro_writer_options o = kokoro_writer_options_default();
    o.format = fmt;
    o.metadata = md;
    o.no_metadata = no_md;
    o.no_chapters = no_ch;
    kokoro_writer *w = NULL;
    kokoro_status st = kokoro_writer_open(path, &o, &w);
    if (st != KOKORO_OK) fprintf(stderr, "%s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    for (size_t c = 0; c < N_CH; c++) {
        if (c > 0) assert_int_equal(kokoro_writer_write_silence(w, kPause), KOKORO_OK);
        starts[c] = kokoro_writer_position(w);
        assert_int_equal(kokoro_writer_add_chapter(w, kBook[c].title), KOKORO_OK);
        size_t n = (size_t)(kBook[c].seconds * SR);
        float *x = at_sine(n, kBook[c].freq, 0.5);
        /* uneven pieces: the encoder must not care how samples arrive */
        for (size_t a = 0; a < n;) {
            size_t k = 777 + a % 1500;
            if (k > n - a) k = n - a;
            assert_int_equal(kokoro_writer_write(w, x + a, k), KOKORO_OK);
            a += k;
        }
        free(x);
    }
    *total = kokoro_writer_position(w);
    st = kokoro_writer_close(w);
    if (st != KOKORO_OK) fprintf(stderr, "%s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
}

static const cJSON *find_stream(const cJSON *probe, const char *type, int attached)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(probe, "streams"))
    {
        const char *t = at_json_str(s, "codec_type");
        const cJSON *disp = cJSON_GetObjectItem(s, "disposition");
        const cJSON *ap = disp ? cJSON_GetObjectItem(disp, "attached_pic") : NULL;
        int is_ap = ap && cJSON_IsNumber(ap) && ap->valueint == 1;
        if (t && strcmp(t, type) == 0 && is_ap == attached) return s;
    }
    return NULL;
}

static const char *tag(const cJSON *obj, const char *key)
{
    const cJSON *tags = cJSON_GetObjectItem(obj, "tags");
    return tags ? at_json_str(tags, key) : NULL;
}

static void test_m4b_full(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4b");
    snprintf(path, sizeof path, "%s/book.m4b", dir);
    kokoro_metadata md = {0};
    md.title = TRICKY_TITLE;
    md.author = "Ann Author";
    md.album = "The Series; vol=2";
    md.narrator = "af_heart";
    md.date = "2024";
    md.genre = "Fiction";
    md.description = TRICKY_DESC;
    md.language = "en-us";
    md.cover = kPng;
    md.cover_size = sizeof kPng;
    uint64_t starts[N_CH], total;
    write_book(path, KOKORO_AUDIO_M4B, &md, 0, 0, starts, &total);
    assert_int_equal(at_count_entries(dir), 1); /* no temp file left behind */

    cJSON *p = at_ffprobe(path);
    assert_non_null(p);
    const cJSON *a = find_stream(p, "audio", 0);
    assert_non_null(a);
    assert_string_equal(at_json_str(a, "codec_name"), "aac");
    assert_string_equal(at_json_str(a, "sample_rate"), "24000");
    assert_int_equal(cJSON_GetObjectItem(a, "channels")->valueint, 1);
    assert_string_equal(tag(a, "language"), "eng");
    const cJSON *cover = find_stream(p, "video", 1);
    assert_non_null(cover);
    assert_string_equal(at_json_str(cover, "codec_name"), "png");

    const cJSON *fmt = cJSON_GetObjectItem(p, "format");
    assert_string_equal(tag(fmt, "title"), TRICKY_TITLE);
    assert_string_equal(tag(fmt, "artist"), "Ann Author");
    assert_string_equal(tag(fmt, "album_artist"), "Ann Author");
    assert_string_equal(tag(fmt, "album"), "The Series; vol=2");
    assert_string_equal(tag(fmt, "composer"), "af_heart");
    assert_string_equal(tag(fmt, "date"), "2024");
    assert_string_equal(tag(fmt, "genre"), "Fiction");
    assert_string_equal(tag(fmt, "description"), TRICKY_DESC);
    assert_string_equal(tag(fmt, "comment"), TRICKY_DESC);
    assert_string_equal(tag(fmt, "media_type"), "2");

    /* duration = chapters + pauses, to the sample as far as ffprobe's
     * microsecond printing allows */
    double expect_total = (double)total / SR;
    double sum = 0.0;
    for (size_t c = 0; c < N_CH; c++) sum += (double)(size_t)(kBook[c].seconds * SR) / SR;
    sum += (double)(N_CH - 1) * (double)kPause / SR;
    assert_true(fabs(sum - expect_total) < 1e-9);
    double dur = at_json_num_str(fmt, "duration");
    fprintf(stderr, "m4b: duration %.6f s, expected %.6f s\n", dur, expect_total);
    assert_true(fabs(dur - expect_total) <= 0.001);
    double adur = at_json_num_str(a, "duration");
    assert_true(fabs(adur - expect_total) <= 0.001);

    const cJSON *chs = cJSON_GetObjectItem(p, "chapters");
    assert_int_equal(cJSON_GetArraySize(chs), (int)N_CH);
    for (size_t c = 0; c < N_CH; c++) {
        const cJSON *ch = cJSON_GetArrayItem(chs, (int)c);
        double s = at_json_num_str(ch, "start_time"), e = at_json_num_str(ch, "end_time");
        double want_s = (double)starts[c] / SR, want_e = c + 1 < N_CH ? (double)starts[c + 1] / SR : expect_total;
        fprintf(stderr, "chapter %zu: %.6f..%.6f (computed %.6f..%.6f) %s\n", c, s, e, want_s, want_e, tag(ch, "title"));
        assert_true(fabs(s - want_s) <= 0.001);
        assert_true(fabs(e - want_e) <= 0.001);
        assert_string_equal(tag(ch, "title"), kBook[c].title);
    }
    cJSON_Delete(p);

    /* the marks match the audio: each chapter's tone is where its mark is */
    size_t n = 0;
    float *x = at_read_ffmpeg(path, &n);
    assert_non_null(x);
    fprintf(stderr, "m4b: decoded %zu samples, wrote %llu\n", n, (unsigned long long)total);
    assert_true(n + 1 >= total && n <= total + 1024);
    for (size_t c = 0; c < N_CH; c++) {
        size_t s = (size_t)starts[c], len = (size_t)(kBook[c].seconds * SR);
        double f = at_freq(x, s + 1200, s + len - 1200);
        assert_true(fabs(f - kBook[c].freq) < 3.0);
        /* onset: the 2 ms before the mark are the pause (quiet), the 2 ms after are tone */
        if (c > 0) {
            double before = at_rms(x, s - 96, s - 24), after = at_rms(x, s + 24, s + 96);
            fprintf(stderr, "chapter %zu onset: rms before %.4f after %.4f\n", c, before, after);
            assert_true(before < 0.05);
            assert_true(after > 0.2);
        }
    }
    free(x);
    at_rmtree(dir);
}

static void test_m4a_no_chapters_no_metadata(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4a");
    snprintf(path, sizeof path, "%s/book.m4a", dir);
    kokoro_metadata md = {0};
    md.title = "Hidden";
    md.cover = kPng;
    md.cover_size = sizeof kPng;
    uint64_t starts[N_CH], total;
    write_book(path, KOKORO_AUDIO_AUTO, &md, 1, 1, starts, &total);
    cJSON *p = at_ffprobe(path);
    assert_non_null(p);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "chapters")), 0);
    assert_null(find_stream(p, "video", 1));
    assert_null(tag(cJSON_GetObjectItem(p, "format"), "title"));
    assert_non_null(find_stream(p, "audio", 0));
    cJSON_Delete(p);
    at_rmtree(dir);
}

static void test_explicit_chapters_and_jpeg(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4b2");
    snprintf(path, sizeof path, "%s/b.m4b", dir);
    /* a JPEG is recognised by its magic bytes; ffprobe need not decode it */
    unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 'h',  'i', /* a comment segment */
                            0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x20, 0x00, 0x30, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9};
    kokoro_metadata md = {0};
    md.cover = jpeg;
    md.cover_size = sizeof jpeg;
    md.title = "J";
    kokoro_writer_options o = kokoro_writer_options_default();
    o.metadata = &md;
    kokoro_writer *w;
    assert_int_equal(kokoro_writer_open(path, &o, &w), KOKORO_OK);
    assert_int_equal(kokoro_writer_add_chapter_at(w, "A", 0, 12345), KOKORO_OK);
    assert_int_equal(kokoro_writer_add_chapter_at(w, "B", 12345, 30001), KOKORO_OK);
    /* overlapping and empty chapters are refused */
    assert_int_equal(kokoro_writer_add_chapter_at(w, "C", 30000, 40000), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "before the end of chapter 'B'"));
    assert_int_equal(kokoro_writer_add_chapter_at(w, "D", 40000, 40000), KOKORO_ERR_INVALID_ARG);
    float *x = at_sine(30001, 440, 0.3);
    assert_int_equal(kokoro_writer_write(w, x, 30001), KOKORO_OK);
    free(x);
    assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
    cJSON *p = at_ffprobe(path);
    assert_non_null(p);
    const cJSON *chs = cJSON_GetObjectItem(p, "chapters");
    assert_int_equal(cJSON_GetArraySize(chs), 2);
    assert_true(fabs(at_json_num_str(cJSON_GetArrayItem(chs, 1), "start_time") - 12345.0 / SR) <= 0.001);
    assert_true(fabs(at_json_num_str(cJSON_GetArrayItem(chs, 1), "end_time") - 30001.0 / SR) <= 0.001);
    const cJSON *cover = find_stream(p, "video", 1);
    assert_non_null(cover);
    assert_string_equal(at_json_str(cover, "codec_name"), "mjpeg");
    cJSON_Delete(p);

    /* a chapter that ends beyond the audio: close fails and leaves nothing */
    assert_int_equal(kokoro_writer_open(path, &o, &w), KOKORO_OK);
    assert_int_equal(kokoro_writer_add_chapter_at(w, "A", 0, 50000), KOKORO_OK);
    assert_int_equal(kokoro_writer_write_silence(w, 1000), KOKORO_OK);
    assert_int_equal(kokoro_writer_close(w), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "ends at sample 50000 but the audio has 1000"));
    assert_int_equal(at_count_entries(dir), 1); /* the earlier book only */
    at_rmtree(dir);
}

static void test_bad_cover_and_language(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4bbad");
    snprintf(path, sizeof path, "%s/b.m4b", dir);
    const unsigned char gif[] = "GIF89a....";
    kokoro_metadata md = {0};
    md.cover = gif;
    md.cover_size = sizeof gif;
    kokoro_writer_options o = kokoro_writer_options_default();
    o.metadata = &md;
    kokoro_writer *w = NULL;
    assert_int_equal(kokoro_writer_open(path, &o, &w), KOKORO_ERR_FORMAT);
    assert_null(w);
    assert_non_null(strstr(kokoro_last_error(), "neither a JPEG"));
    assert_non_null(strstr(kokoro_last_error(), path));
    md.cover = NULL;
    md.cover_size = 0;
    md.language = "english";
    assert_int_equal(kokoro_writer_open(path, &o, &w), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "'english'"));
    assert_int_equal(at_count_entries(dir), 0);
    /* m4b cannot go to a pipe */
    o.format = KOKORO_AUDIO_M4B;
    md.language = NULL;
    assert_int_equal(kokoro_writer_open("-", &o, &w), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "cannot be streamed"));
    at_rmtree(dir);
}

/* The pipeline's way: chunks through the joiner, chapters placed by it;
 * each chapter's first chunk starts exactly at its mark. */
static void test_joiner_chapters(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4bj");
    snprintf(path, sizeof path, "%s/j.m4b", dir);
    kokoro_writer *w;
    assert_int_equal(kokoro_writer_open(path, NULL, &w), KOKORO_OK);
    kokoro_join_options o = kokoro_join_options_default();
    kokoro_joiner *j;
    assert_int_equal(kokoro_joiner_new(&o, w, &j), KOKORO_OK);
    /* chunks with 100 ms of silence on both sides, as the model leaves them */
    size_t n = SR / 2 + SR / 5;
    float *x = calloc(n, sizeof *x);
    for (size_t i = SR / 10; i < n - SR / 10; i++) x[i] = (float)(0.5 * sin(2 * M_PI * 400.0 * (double)i / SR));
    uint64_t marks[3], first[3], at;
    for (int c = 0; c < 3; c++) {
        char title[32];
        snprintf(title, sizeof title, "Part %d", c + 1);
        assert_int_equal(kokoro_joiner_chapter(j, title, KOKORO_PAUSE_CHAPTER), KOKORO_OK);
        marks[c] = kokoro_writer_position(w);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(kokoro_joiner_push(j, x, n, k == 0 ? KOKORO_PAUSE_PARAGRAPH : KOKORO_PAUSE_SENTENCE, 0,
                                                NULL, &at),
                             KOKORO_OK);
            if (k == 0) first[c] = at;
        }
    }
    /* an empty chapter is refused */
    assert_int_equal(kokoro_joiner_chapter(j, "Empty", KOKORO_PAUSE_CHAPTER), KOKORO_OK);
    assert_int_equal(kokoro_joiner_chapter(j, "Empty 2", KOKORO_PAUSE_CHAPTER), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_joiner_push(j, x, n, KOKORO_PAUSE_NONE, 0, NULL, NULL), KOKORO_OK);
    assert_int_equal(kokoro_joiner_finish(j), KOKORO_OK);
    kokoro_joiner_free(j);
    uint64_t total = kokoro_writer_position(w);
    assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
    free(x);
    assert_int_equal(marks[0], 0);
    for (int c = 0; c < 3; c++) assert_int_equal(first[c], marks[c]);
    /* between chapters: the chapter pause, nothing else */
    size_t kept = n - 2 * (SR / 10) + 2 * (size_t)(SR * o.margin_ms / 1000);
    size_t per_chapter = 3 * kept + 2 * kokoro_join_pause_samples(&o, KOKORO_PAUSE_SENTENCE);
    assert_int_equal(marks[1] - marks[0], per_chapter + kokoro_join_pause_samples(&o, KOKORO_PAUSE_CHAPTER));
    cJSON *p = at_ffprobe(path);
    assert_non_null(p);
    const cJSON *chs = cJSON_GetObjectItem(p, "chapters");
    assert_int_equal(cJSON_GetArraySize(chs), 4);
    for (int c = 0; c < 3; c++)
        assert_true(fabs(at_json_num_str(cJSON_GetArrayItem(chs, c), "start_time") - (double)marks[c] / SR) <= 0.001);
    assert_true(fabs(at_json_num_str(cJSON_GetObjectItem(p, "format"), "duration") - (double)total / SR) <= 0.001);
    cJSON_Delete(p);
    at_rmtree(dir);
}

/* The same input gives the same bytes (a resumed run can be compared with
 * an uninterrupted one). */
static void test_deterministic_output(void **state)
{
    (void)state;
    char dir[256], a[300], b[300];
    at_tmpdir(dir, sizeof dir, "m4bdet");
    kokoro_metadata md = {0};
    md.title = "Same";
    md.author = "Twice";
    md.cover = kPng;
    md.cover_size = sizeof kPng;
    /* not Ogg Opus: libsndfile gives each Ogg stream a random serial number */
    const char *exts[] = {"m4b", "mp3", "flac", "wav"};
    for (int i = 0; i < 4; i++) {
        uint64_t starts[N_CH], total;
        snprintf(a, sizeof a, "%s/a.%s", dir, exts[i]);
        snprintf(b, sizeof b, "%s/b.%s", dir, exts[i]);
        if (i == 0) {
            write_book(a, KOKORO_AUDIO_AUTO, &md, 0, 0, starts, &total);
            write_book(b, KOKORO_AUDIO_AUTO, &md, 0, 0, starts, &total);
        } else {
            for (int r = 0; r < 2; r++) {
                kokoro_writer *w;
                assert_int_equal(kokoro_writer_open(r ? b : a, NULL, &w), KOKORO_OK);
                float *x = at_sine(SR, 330, 0.4);
                assert_int_equal(kokoro_writer_write(w, x, SR), KOKORO_OK);
                free(x);
                assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
            }
        }
        char cmd[700];
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
        if (system(cmd) != 0) fprintf(stderr, "%s: two runs differ\n", exts[i]);
        assert_int_equal(system(cmd), 0);
    }
    at_rmtree(dir);
}

/* A book with 1,000 chapters of odd lengths: every mark still lands on its
 * sample (no drift accumulates). */
static void test_thousand_chapters(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "m4b1k");
    snprintf(path, sizeof path, "%s/k.m4b", dir);
    kokoro_writer *w;
    assert_int_equal(kokoro_writer_open(path, NULL, &w), KOKORO_OK);
    enum { NCH = 1000 };
    uint64_t *starts = malloc(NCH * sizeof *starts);
    float *x = at_sine(4000, 250, 0.3);
    for (int c = 0; c < NCH; c++) {
        char title[32];
        snprintf(title, sizeof title, "Chapter %d", c + 1);
        starts[c] = kokoro_writer_position(w);
        assert_int_equal(kokoro_writer_add_chapter(w, title), KOKORO_OK);
        assert_int_equal(kokoro_writer_write(w, x, 1500 + (size_t)(c * 37) % 2400), KOKORO_OK);
    }
    uint64_t total = kokoro_writer_position(w);
    assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
    free(x);
    cJSON *p = at_ffprobe(path);
    assert_non_null(p);
    const cJSON *chs = cJSON_GetObjectItem(p, "chapters");
    assert_int_equal(cJSON_GetArraySize(chs), NCH);
    double worst = 0.0;
    for (int c = 0; c < NCH; c++) {
        const cJSON *ch = cJSON_GetArrayItem(chs, c);
        double d = fabs(at_json_num_str(ch, "start_time") - (double)starts[c] / SR);
        if (d > worst) worst = d;
        char title[32];
        snprintf(title, sizeof title, "Chapter %d", c + 1);
        assert_string_equal(tag(ch, "title"), title);
    }
    fprintf(stderr, "1000 chapters over %.1f s: worst mark error %.6f s\n", (double)total / SR, worst);
    /* exact to the sample: the movie time scale is the sample rate, so only
     * ffprobe's printing to the microsecond remains */
    assert_true(worst <= 1e-6);
    double end = at_json_num_str(cJSON_GetArrayItem(chs, NCH - 1), "end_time");
    assert_true(fabs(end - (double)total / SR) <= 0.001);
    cJSON_Delete(p);
    free(starts);
    at_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_m4b_full),
        cmocka_unit_test(test_m4a_no_chapters_no_metadata),
        cmocka_unit_test(test_explicit_chapters_and_jpeg),
        cmocka_unit_test(test_bad_cover_and_language),
        cmocka_unit_test(test_joiner_chapters),
        cmocka_unit_test(test_deterministic_output),
        cmocka_unit_test(test_thousand_chapters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
