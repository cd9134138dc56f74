/* PDF reading: the corpus (outline chapters, no-outline documents, the
 * image-only and encrypted files) and PDFs drawn here with cairo to pin down
 * "Chapter N" headings, header/footer/page-number removal, hyphen joining,
 * nested outlines and page groups; malformed files give clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <cairo.h>
#include <cmocka.h>

#include "kokoro.h"

#define CORPUS KOKORO_TEST_DATA "/corpus/pdf"

static char dir[] = "/tmp/kokoro-pdf-test-XXXXXX";

/* fontconfig (used by cairo to draw the test PDFs, not by the library) keeps
 * its configuration for the life of the process; LeakSanitizer reads this. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_for(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static kokoro_document *open_ok(const char *path)
{
    kokoro_document *d = NULL;
    kokoro_status st = kokoro_document_open(path, &d);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    assert_int_equal(kokoro_document_get_type(d), KOKORO_DOC_PDF);
    return d;
}

static void open_fails(const char *path, const char *needle)
{
    kokoro_document *d = (kokoro_document *)1;
    kokoro_status st = kokoro_document_open(path, &d);
    printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_ERR_FORMAT);
    assert_null(d);
    assert_non_null(strstr(kokoro_last_error(), needle));
    assert_non_null(strstr(kokoro_last_error(), path));
}

static char *text_of(kokoro_document *d, size_t i)
{
    char *t = NULL;
    kokoro_status st = kokoro_document_chapter_text(d, i, &t, NULL);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    return t;
}

static kokoro_chapter_info info_of(kokoro_document *d, size_t i)
{
    kokoro_chapter_info info;
    assert_int_equal(kokoro_document_chapter_info(d, i, &info), KOKORO_OK);
    return info;
}

/* ---- corpus ---- */

static void test_corpus_outline(void **state)
{
    (void)state;
    kokoro_document *d = open_ok(CORPUS "/pdflatex-outline.pdf");
    assert_int_equal(kokoro_document_chapter_count(d), 9);
    const char *names[] = {"Foo", "Bar", "Baz"};
    /* Foo, Bar, Baz, Foo on page 2; Bar, Baz, Foo on 3; Bar, Baz on 4 */
    const int first[] = {2, 2, 2, 2, 3, 3, 3, 4, 4};
    for (size_t i = 0; i < 9; i++) {
        kokoro_chapter_info info = info_of(d, i);
        assert_string_equal(info.title, names[i % 3]);
        assert_int_equal(info.level, 1);
        assert_int_equal(info.first_page, first[i]);
        assert_true(info.last_page >= info.first_page && info.last_page <= 4);
    }
    /* the first page, rendered, is the cover */
    const unsigned char *cover;
    size_t cover_len;
    const char *mime;
    assert_int_equal(kokoro_document_cover(d, &cover, &cover_len, &mime), KOKORO_OK);
    assert_string_equal(mime, "image/png");
    assert_true(cover_len > 1000);
    assert_memory_equal(cover, "\x89PNG\r\n\x1a\n", 8);
    char *t = text_of(d, 1);
    /* the section number and title make one heading paragraph; the next section is not in it */
    assert_true(strncmp(t, "2 Bar\n\nHello, here is some text without a meaning.", 50) == 0);
    assert_null(strstr(t, "Baz"));
    size_t n = strlen(t);
    assert_true(n > 500 && n < 1000);
    free(t);
    t = text_of(d, 8);
    assert_true(strncmp(t, "9 Baz\n\n", 7) == 0);
    /* the page number 4 at the bottom is gone ("5" is the sample's own text) */
    assert_true(strlen(t) > 20);
    assert_string_equal(t + strlen(t) - 21, "match the language. 5");
    free(t);
    kokoro_document_free(d);
}

static void test_corpus_no_outline(void **state)
{
    (void)state;
    kokoro_document *d = open_ok(CORPUS "/pdflatex-4-pages.pdf");
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    kokoro_chapter_info info = info_of(d, 0);
    assert_string_equal(info.title, "pdflatex-4-pages.pdf");
    assert_int_equal(info.first_page, 1);
    assert_int_equal(info.last_page, 4);
    assert_int_equal(kokoro_document_count_words(d), KOKORO_OK);
    info = info_of(d, 0);
    /* MANIFEST.md: 2603 words with the page numbers, which we drop */
    assert_true(info.word_count > 2550 && info.word_count <= 2603);
    kokoro_document_free(d);

    /* no outline, no "Chapter" lines: the larger type of the title and "Abstract" makes headings */
    d = open_ok(CORPUS "/multicolumn.pdf");
    assert_int_equal(kokoro_document_chapter_count(d), 2);
    assert_string_equal(info_of(d, 0).title, "Two-Column Document with Lorem Ipsum");
    assert_string_equal(info_of(d, 1).title, "Abstract");
    assert_int_equal(kokoro_document_count_words(d), KOKORO_OK);
    long words = info_of(d, 0).word_count + info_of(d, 1).word_count;
    assert_true(words > 1000 && words <= 1041);
    kokoro_document_free(d);
}

static void test_corpus_refused(void **state)
{
    (void)state;
    open_fails(CORPUS "/imagemagick-images.pdf", "no text layer");
    open_fails(CORPUS "/libreoffice-writer-password.pdf", "encrypted");
}

/* ---- PDFs drawn here ---- */

static void lines(cairo_t *cr, const char *const *l, double y)
{
    for (size_t i = 0; l[i]; i++, y += 16) {
        cairo_move_to(cr, 72, y);
        cairo_show_text(cr, l[i]);
    }
}

static void header_footer(cairo_t *cr, int page)
{
    char num[16];
    snprintf(num, sizeof num, "%d", page);
    cairo_move_to(cr, 72, 40);
    cairo_show_text(cr, "The Running Header Of The Book");
    cairo_move_to(cr, 290, 760);
    cairo_show_text(cr, num);
}

static void test_chapter_headings_headers_hyphens(void **state)
{
    (void)state;
    const char *path = path_for("chapters.pdf");
    cairo_surface_t *s = cairo_pdf_surface_create(path, 612, 792);
    cairo_t *cr = cairo_create(s);
    cairo_select_font_face(cr, "sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    const char *p1[] = {"A title page line.", NULL};
    const char *p2[] = {"Chapter 1",
                        "It was an extra-",
                        "ordinary day in the town and everyone in it knew that this was so.",
                        "Nobody could say why it was like that on that morning in the town.",
                        "The end.",
                        NULL};
    const char *p3[] = {"The story goes on here and on and on, over more lines than one page",
                        "holds, and a reader follows it to the very end of the second page.", NULL};
    const char *p4[] = {"CHAPTER II. The Return", "They came back home at last.", NULL};
    const char *const *pages[] = {p1, p2, p3, p4};
    for (int p = 0; p < 4; p++) {
        header_footer(cr, p + 1);
        lines(cr, pages[p], 100);
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);

    kokoro_document *d = open_ok(path);
    char *list;
    assert_int_equal(kokoro_document_format_listing(d, 1.0f, &list), KOKORO_OK);
    printf("%s", list);
    free(list);
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "chapters.pdf"); /* the text before the first heading */
    assert_string_equal(info_of(d, 1).title, "Chapter 1");
    assert_string_equal(info_of(d, 2).title, "CHAPTER II. The Return");
    assert_int_equal(info_of(d, 1).first_page, 2);
    assert_int_equal(info_of(d, 1).last_page, 3);
    assert_int_equal(info_of(d, 2).first_page, 4);
    char *t = text_of(d, 1);
    printf("  [%s]\n", t);
    assert_true(strncmp(t, "Chapter 1\n\nIt was an extraordinary day in the town", 49) == 0);
    assert_null(strstr(t, "Running Header"));
    assert_null(strstr(t, "\n3"));
    assert_non_null(strstr(t, "The end.\n\nThe story goes on"));
    assert_non_null(strstr(t, "second page."));
    free(t);
    t = text_of(d, 2);
    assert_string_equal(t, "CHAPTER II. The Return\n\nThey came back home at last.");
    free(t);
    t = text_of(d, 0);
    assert_string_equal(t, "A title page line.");
    free(t);
    kokoro_document_free(d);
}

static void test_nested_outline_and_groups(void **state)
{
    (void)state;
    const char *path = path_for("outline.pdf");
    cairo_surface_t *s = cairo_pdf_surface_create(path, 612, 792);
    cairo_t *cr = cairo_create(s);
    cairo_set_font_size(cr, 12);
    const char *body[][3] = {{"Part A", "Words of part A.", NULL},
                             {"Section A1", "Words of section A1.", NULL},
                             {"Part B", "Words of part B.", NULL}};
    for (int p = 0; p < 3; p++) {
        lines(cr, body[p], 100);
        cairo_show_page(cr);
    }
    int a = cairo_pdf_surface_add_outline(s, CAIRO_PDF_OUTLINE_ROOT, "Part A", "page=1", CAIRO_PDF_OUTLINE_FLAG_OPEN);
    cairo_pdf_surface_add_outline(s, a, "Section A1", "page=2", 0);
    cairo_pdf_surface_add_outline(s, CAIRO_PDF_OUTLINE_ROOT, "Part B", "page=3", 0);
    cairo_pdf_surface_add_outline(s, CAIRO_PDF_OUTLINE_ROOT, "Nowhere", "page=99", 0);
    cairo_destroy(cr);
    cairo_surface_destroy(s);

    kokoro_document *d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "Part A");
    assert_int_equal(info_of(d, 0).level, 1);
    assert_string_equal(info_of(d, 1).title, "Section A1");
    assert_int_equal(info_of(d, 1).level, 2);
    assert_string_equal(info_of(d, 2).title, "Part B");
    assert_int_equal(info_of(d, 1).first_page, 2);
    assert_int_equal(info_of(d, 1).last_page, 2);
    char *t = text_of(d, 1);
    assert_string_equal(t, "Section A1\n\nWords of section A1.");
    free(t);
    kokoro_document_free(d);

    /* 45 pages, no outline, no headings: groups of 20 pages */
    path = path_for("groups.pdf");
    s = cairo_pdf_surface_create(path, 612, 792);
    cr = cairo_create(s);
    cairo_set_font_size(cr, 12);
    for (int p = 0; p < 45; p++) {
        char line[64];
        snprintf(line, sizeof line, "Text of sheet %c%c.", 'a' + p / 26, 'a' + p % 26);
        const char *l[] = {line, NULL};
        lines(cr, l, 100);
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "Pages 1\xE2\x80\x93" "20");
    assert_string_equal(info_of(d, 2).title, "Pages 41\xE2\x80\x93" "45");
    assert_int_equal(info_of(d, 2).first_page, 41);
    assert_int_equal(info_of(d, 2).last_page, 45);
    t = text_of(d, 2);
    assert_true(strncmp(t, "Text of sheet bo. Text of sheet bp.", 35) == 0);
    free(t);
    kokoro_document_free(d);
}

static void test_font_size_headings(void **state)
{
    (void)state;
    const char *path = path_for("fontsize.pdf");
    cairo_surface_t *s = cairo_pdf_surface_create(path, 612, 792);
    cairo_t *cr = cairo_create(s);
    cairo_set_font_size(cr, 12);
    const char *opening[] = {"Some opening words before any heading.", NULL};
    lines(cr, opening, 100);
    cairo_set_font_size(cr, 24);
    cairo_move_to(cr, 72, 200);
    cairo_show_text(cr, "The Beginning");
    cairo_set_font_size(cr, 12);
    const char *b1[] = {"It starts in a small way, with a few lines", "of ordinary body text set at twelve points.",
                        NULL};
    lines(cr, b1, 240);
    cairo_show_page(cr);
    cairo_set_font_size(cr, 24);
    cairo_move_to(cr, 72, 100);
    cairo_show_text(cr, "A Second");
    cairo_move_to(cr, 72, 130);
    cairo_show_text(cr, "Part");
    cairo_set_font_size(cr, 12);
    const char *b2[] = {"And then it goes on in a second part of the text.", NULL};
    lines(cr, b2, 170);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(s);

    kokoro_document *d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "fontsize.pdf");
    assert_string_equal(info_of(d, 1).title, "The Beginning");
    assert_string_equal(info_of(d, 2).title, "A Second Part"); /* two heading lines, one title */
    char *t = text_of(d, 1);
    assert_string_equal(t, "The Beginning\n\nIt starts in a small way, with a few lines of ordinary body text set at "
                           "twelve points.");
    free(t);
    t = text_of(d, 2);
    assert_string_equal(t, "A Second Part\n\nAnd then it goes on in a second part of the text.");
    free(t);
    kokoro_document_free(d);
}

static void test_roman_page_numbers(void **state)
{
    (void)state;
    const char *path = path_for("roman.pdf");
    cairo_surface_t *s = cairo_pdf_surface_create(path, 612, 792);
    cairo_t *cr = cairo_create(s);
    cairo_set_font_size(cr, 12);
    const char *p1[] = {"ii", "Body one.", NULL};
    const char *p2[] = {"IV", "Body two.", NULL};
    lines(cr, p1, 100);
    cairo_show_page(cr);
    lines(cr, p2, 100);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    kokoro_document *d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    char *t = text_of(d, 0);
    /* "ii" is a front-matter page number; "IV" in capitals is a heading and stays */
    assert_string_equal(t, "Body one. IV Body two.");
    free(t);
    kokoro_document_free(d);
}

static void test_malformed(void **state)
{
    (void)state;
    FILE *f = fopen(path_for("garbage.pdf"), "wb");
    assert_non_null(f);
    fputs("%PDF-1.4\nthis is not a PDF body at all\n", f);
    fclose(f);
    open_fails(path_for("garbage.pdf"), "not a readable PDF");

    /* the outline PDF cut in half: an error or a readable remainder, never a crash */
    f = fopen(CORPUS "/pdflatex-outline.pdf", "rb");
    assert_non_null(f);
    static char buf[24000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(path_for("half.pdf"), "wb");
    assert_non_null(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    kokoro_document *d = NULL;
    kokoro_status st = kokoro_document_open(path_for("half.pdf"), &d);
    printf("  half a PDF: %s\n", st == KOKORO_OK ? "opened" : kokoro_last_error());
    if (st == KOKORO_OK) {
        assert_true(kokoro_document_count_words(d) == KOKORO_OK || kokoro_last_error()[0]);
        kokoro_document_free(d);
    } else {
        assert_non_null(strstr(kokoro_last_error(), "half.pdf"));
    }
}

/* A mutated PDF (found by fuzz_pdf) whose first page makes poppler recover
 * from 680,593 syntax errors, formatting each one: 0.5 s a pass in Release,
 * and the reader used to read each page several times (12 s, 80 s under ASan).
 * Now the first such page ends it, with a message naming the page. */
static void test_error_storm(void **state)
{
    (void)state;
    const char *path = KOKORO_TEST_DATA "/../fuzz/regress/pdf/poppler-error-storm.pdf";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    open_fails(path, "page 1: poppler recovered from");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("  refused in %.2f s\n", s);
    assert_non_null(strstr(kokoro_last_error(), "the PDF is damaged"));
    assert_true(s < 40); /* one pass over one page, even under ASan on a loaded machine */
}

static void test_page_limit(void **state)
{
    (void)state;
    const char *path = path_for("pages.pdf");
    cairo_surface_t *s = cairo_pdf_surface_create(path, 72, 72);
    cairo_t *cr = cairo_create(s);
    for (int p = 0; p < 20001; p++) cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    open_fails(path, "over the 20000 page limit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_outline),
        cmocka_unit_test(test_corpus_no_outline),
        cmocka_unit_test(test_corpus_refused),
        cmocka_unit_test(test_chapter_headings_headers_hyphens),
        cmocka_unit_test(test_nested_outline_and_groups),
        cmocka_unit_test(test_font_size_headings),
        cmocka_unit_test(test_roman_page_numbers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_error_storm),
        cmocka_unit_test(test_page_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
