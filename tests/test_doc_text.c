/* Plain text and Markdown chapters, UTF-8 checks, the --select-chapters
 * grammar, the --list-chapters listing and the front/back-matter title rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kokoro.h"

#define CORPUS KOKORO_TEST_DATA "/corpus"

static kokoro_document *open_text(const char *s, const char *name)
{
    kokoro_document *d = NULL;
    kokoro_status st = kokoro_document_open_text(s, strlen(s), name, &d);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    return d;
}

static char *chapter(kokoro_document *d, size_t i)
{
    char *t = NULL;
    size_t len = 0;
    kokoro_status st = kokoro_document_chapter_text(d, i, &t, &len);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    assert_int_equal(strlen(t), len);
    return t;
}

static const char *title(kokoro_document *d, size_t i)
{
    kokoro_chapter_info info;
    assert_int_equal(kokoro_document_chapter_info(d, i, &info), KOKORO_OK);
    return info.title;
}

static void test_moby_dick_chapters(void **state)
{
    (void)state;
    kokoro_document *d = NULL;
    assert_int_equal(kokoro_document_open(CORPUS "/txt/moby-dick-chapters-1-5.txt", &d), KOKORO_OK);
    assert_int_equal(kokoro_document_get_type(d), KOKORO_DOC_TEXT);
    assert_int_equal(kokoro_document_chapter_count(d), 5);
    const char *want[] = {"Chapter 1. Loomings.", "Chapter 2. The Carpet-Bag.", "Chapter 3. The Spouter-Inn.",
                          "Chapter 4. The Counterpane.", "Chapter 5. Breakfast."};
    for (size_t i = 0; i < 5; i++) assert_string_equal(title(d, i), want[i]);
    kokoro_chapter_info info;
    assert_int_equal(kokoro_document_chapter_info(d, 0, &info), KOKORO_OK);
    assert_int_equal(info.word_count, -1); /* nothing extracted yet */
    char *t = chapter(d, 0);
    /* the heading is its own paragraph, then the text; the next chapter is not in it */
    assert_true(strncmp(t, "Chapter 1. Loomings.\n\nCall me Ishmael.", 38) == 0);
    assert_null(strstr(t, "Carpet-Bag"));
    assert_null(strstr(t, "\n\n\n"));
    free(t);
    assert_int_equal(kokoro_document_chapter_info(d, 0, &info), KOKORO_OK);
    assert_true(info.word_count > 2000 && info.word_count < 2400);
    t = chapter(d, 4);
    assert_true(strncmp(t, "Chapter 5. Breakfast.", 21) == 0);
    free(t);
    kokoro_document_free(d);
}

static void test_japanese_single_chapter(void **state)
{
    (void)state;
    kokoro_document *d = NULL;
    assert_int_equal(kokoro_document_open(CORPUS "/txt/kusamakura-ichi-ja.txt", &d), KOKORO_OK);
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    assert_string_equal(title(d, 0), "kusamakura-ichi-ja.txt");
    char *t = chapter(d, 0);
    assert_non_null(strstr(t, "山路を登りながら、こう考えた。"));
    free(t);
    assert_int_equal(kokoro_document_count_words(d), KOKORO_OK);
    kokoro_chapter_info info;
    assert_int_equal(kokoro_document_chapter_info(d, 0, &info), KOKORO_OK);
    assert_true(info.word_count > 1000); /* CJK text has no spaces but still counts */
    kokoro_document_free(d);
}

static void test_markdown(void **state)
{
    (void)state;
    const char *md = "Intro line.\n\n# Part One\n\nSome *emphasis* and a [link](http://x.org/a).\n\n"
                     "## Section A\n\n- item one\n- item two\n\n```\n# not a heading\n```\n\n# Part Two ##\n\nEnd.\n";
    kokoro_document *d = open_text(md, "book.md");
    assert_int_equal(kokoro_document_get_type(d), KOKORO_DOC_MARKDOWN);
    assert_int_equal(kokoro_document_chapter_count(d), 4);
    assert_string_equal(title(d, 0), "book.md"); /* the text before the first heading */
    assert_string_equal(title(d, 1), "Part One");
    assert_string_equal(title(d, 2), "Section A");
    assert_string_equal(title(d, 3), "Part Two");
    kokoro_chapter_info info;
    assert_int_equal(kokoro_document_chapter_info(d, 2, &info), KOKORO_OK);
    assert_int_equal(info.level, 2);
    char *t = chapter(d, 1);
    assert_string_equal(t, "Part One\n\nSome emphasis and a link.");
    free(t);
    t = chapter(d, 2);
    assert_string_equal(t, "Section A\n\nitem one\nitem two\n\n# not a heading");
    free(t);
    kokoro_document_free(d);
}

static void test_chapter_lines_crlf_bom(void **state)
{
    (void)state;
    const char *txt = "\xEF\xBB\xBF"
                      "CHAPTER I\r\n\r\nIt was a dark\r\nand stormy night.\r\n\r\nCHAPTER II. The Day\r\n\r\nMorning.\r\n"
                      "Chapter 3 was mentioned here, not a heading.\r\n";
    kokoro_document *d = open_text(txt, "-");
    assert_int_equal(kokoro_document_chapter_count(d), 2);
    assert_string_equal(title(d, 0), "CHAPTER I");
    assert_string_equal(title(d, 1), "CHAPTER II. The Day");
    char *t = chapter(d, 0);
    /* BOM gone, CRLF gone, wrapped lines joined into one paragraph */
    assert_string_equal(t, "CHAPTER I\n\nIt was a dark and stormy night.");
    free(t);
    kokoro_document_free(d);

    /* a heading with no words gets a numbered title */
    d = open_text("# One\n\ntext\n\n#   \n\n# ** **\n\nmore\n", "t.md");
    assert_int_equal(kokoro_document_chapter_count(d), 2);
    assert_string_equal(title(d, 1), "Chapter 2");
    kokoro_document_free(d);

    d = open_text("Just one paragraph\nof text.", "notes.txt");
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    t = chapter(d, 0);
    assert_string_equal(t, "Just one paragraph of text.");
    free(t);
    kokoro_document_free(d);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    kokoro_document *d = NULL;
    const char bad[] = "Fine text\n\xC3\x28 broken";
    assert_int_equal(kokoro_document_open_text(bad, sizeof bad - 1, "bad.txt", &d), KOKORO_ERR_FORMAT);
    assert_null(d);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "bad.txt"));
    assert_non_null(strstr(kokoro_last_error(), "byte offset 10"));
    /* overlong encoding, surrogate, truncated sequence at the end */
    const char *cases[] = {"\xC0\xAF", "a\xED\xA0\x80", "abc\xE2\x82"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(kokoro_document_open_text(cases[i], strlen(cases[i]), "x", &d), KOKORO_ERR_FORMAT);
    const char nul[] = "a\0b";
    assert_int_equal(kokoro_document_open_text(nul, 3, "nul.txt", &d), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "NUL"));
    /* empty text: one empty chapter, no crash */
    d = open_text("", "empty.txt");
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    char *t = chapter(d, 0);
    assert_string_equal(t, "");
    free(t);
    assert_int_equal(kokoro_document_chapter_text(d, 1, &t, NULL), KOKORO_ERR_INVALID_ARG);
    kokoro_document_free(d);
    assert_int_equal(kokoro_document_open(KOKORO_TEST_DATA, &d), KOKORO_ERR_IO);
    assert_non_null(strstr(kokoro_last_error(), "not a regular file"));
    assert_int_equal(kokoro_document_open("/nonexistent/book.txt", &d), KOKORO_ERR_IO);
    assert_non_null(strstr(kokoro_last_error(), "/nonexistent/book.txt"));
}

static void check_sel(const char *spec, size_t n, const char *want)
{
    unsigned char mask[32];
    kokoro_status st = kokoro_chapter_selection_parse(spec, n, mask);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    char got[33];
    for (size_t i = 0; i < n; i++) got[i] = mask[i] ? '1' : '0';
    got[n] = '\0';
    assert_string_equal(got, want);
}

static void check_sel_error(const char *spec, size_t n, const char *needle)
{
    unsigned char mask[32];
    assert_int_equal(kokoro_chapter_selection_parse(spec, n, mask), KOKORO_ERR_INVALID_ARG);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), needle));
}

static void test_selection(void **state)
{
    (void)state;
    check_sel("all", 5, "11111");
    check_sel("*", 3, "111");
    check_sel("last", 5, "00001");
    check_sel("2", 5, "01000");
    check_sel("2-4", 5, "01110");
    check_sel("1, 3,5", 5, "10101");
    check_sel("4-last", 6, "000111");
    check_sel("1-2,2-3", 4, "1110");
    check_sel(" 3 - 4 ", 5, "00110");
    check_sel_error("0", 5, "out of range");
    check_sel_error("6", 5, "out of range");
    check_sel_error("2-9", 5, "out of range");
    check_sel_error("4-2", 5, "backwards");
    check_sel_error("abc", 5, "\"abc\"");
    check_sel_error("1,,2", 5, "empty item");
    check_sel_error("", 5, "empty item");
    check_sel_error("-3", 5, "range");
    check_sel_error("1.5", 5, "\"1.5\"");
    check_sel_error("99999999999999", 5, "not a chapter number");
    check_sel_error("1", 0, "no chapters");
}

static void test_matter_rules(void **state)
{
    (void)state;
    const char *md = "# Cover\n\nx\n\n# Discovery\n\nx\n\n# Copyright Page\n\nx\n\n# The Cover Story\n\nx\n\n"
                     "# About the Author\n\nx\n\n# Stockholm\n\nx\n\n# Contents\n\nx\n\n# Acknowledgments\n\nx\n\n"
                     "# Index\n\nx\n\n# Indexing Whales\n\nx\n\n# Author's Note\n\nx\n\n# Also by Jane Doe\n\nx\n";
    /* text documents are not classified on open; classification comes with books.
     * Exercise the rules through an EPUB-free path: the listing shows them. */
    kokoro_document *d = open_text(md, "m.md");
    assert_int_equal(kokoro_document_chapter_count(d), 12);
    kokoro_chapter_info info;
    const kokoro_matter want[] = {KOKORO_MATTER_FRONT, KOKORO_MATTER_BODY,  KOKORO_MATTER_FRONT,
                                  KOKORO_MATTER_BODY,  KOKORO_MATTER_BACK,  KOKORO_MATTER_BODY,
                                  KOKORO_MATTER_FRONT, KOKORO_MATTER_FRONT, KOKORO_MATTER_BACK,
                                  KOKORO_MATTER_BODY,  KOKORO_MATTER_BODY,  KOKORO_MATTER_BACK};
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(kokoro_document_chapter_info(d, i, &info), KOKORO_OK);
        if (info.matter != want[i]) printf("  %s: %d (%s)\n", info.title, info.matter, info.matter_reason);
        assert_int_equal(info.matter, want[i]);
        assert_true(want[i] == KOKORO_MATTER_BODY ? info.matter_reason[0] == '\0' : info.matter_reason[0] != '\0');
    }
    assert_int_equal(kokoro_document_chapter_info(d, 2, &info), KOKORO_OK);
    assert_string_equal(info.matter_reason, "title has \"copyright\"");
    kokoro_document_free(d);
}

static void test_listing(void **state)
{
    (void)state;
    const char *md = "# One\n\nalpha beta gamma\n\n## One A\n\n"
                     "w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w\n\n# Copyright\n\nc\n";
    kokoro_document *d = open_text(md, "l.md");
    char *list = NULL;
    assert_int_equal(kokoro_document_format_listing(d, 1.0f, &list), KOKORO_OK);
    printf("%s", list);
    /* word counts include the heading words */
    assert_non_null(strstr(list, "  1. One  (4 words, ~0:02)\n"));
    assert_non_null(strstr(list, "    2. One A  (32 words, ~0:13)\n"));
    assert_non_null(strstr(list, "  3. Copyright  (2 words, ~0:01)  [front matter: title has \"copyright\"]\n"));
    assert_non_null(strstr(list, "3 chapters, 38 words, ~0:15 at speed 1\n"));
    free(list);
    assert_int_equal(kokoro_document_format_listing(d, 2.0f, &list), KOKORO_OK);
    assert_non_null(strstr(list, "3 chapters, 38 words, ~0:08 at speed 2\n"));
    free(list);
    assert_int_equal(kokoro_document_format_listing(d, 0.0f, &list), KOKORO_ERR_INVALID_ARG);
    kokoro_document_free(d);
}

static void test_chapter_limit(void **state)
{
    (void)state;
    /* 20,001 headings: over the chapter limit, a clear error */
    size_t n = 20001, cap = n * 8 + 1, o = 0;
    char *md = malloc(cap);
    assert_non_null(md);
    for (size_t i = 0; i < n; i++) o += (size_t)snprintf(md + o, cap - o, "# h\nx\n");
    kokoro_document *d = NULL;
    assert_int_equal(kokoro_document_open_text(md, o, "many.md", &d), KOKORO_ERR_FORMAT);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "more than 20000 chapters"));
    assert_null(d);
    /* 2,000 chapters are fine and each is produced on its own */
    assert_int_equal(kokoro_document_open_text(md, 2000 * 6, "many.md", &d), KOKORO_OK);
    assert_int_equal(kokoro_document_chapter_count(d), 2000);
    char *t = chapter(d, 1999);
    assert_string_equal(t, "h\n\nx");
    free(t);
    kokoro_document_free(d);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moby_dick_chapters), cmocka_unit_test(test_japanese_single_chapter),
        cmocka_unit_test(test_markdown),           cmocka_unit_test(test_chapter_lines_crlf_bom),
        cmocka_unit_test(test_invalid_utf8),       cmocka_unit_test(test_selection),
        cmocka_unit_test(test_matter_rules),       cmocka_unit_test(test_listing),
        cmocka_unit_test(test_chapter_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
