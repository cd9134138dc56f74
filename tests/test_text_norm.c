/* Text normalisation: case tables for the Unicode clean-up (all languages)
 * and the English rules, and invalid UTF-8 named by byte offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kokoro.h"

typedef struct kase {
    const char *in, *want;
} kase;

static kokoro_frontend *fe_new(const char *lang)
{
    kokoro_frontend_options o = kokoro_frontend_options_default();
    o.lang = lang;
    kokoro_frontend *fe = NULL;
    assert_int_equal(kokoro_frontend_new(&o, &fe), KOKORO_OK);
    return fe;
}

static void run_table(const char *lang, const kase *k, size_t n)
{
    kokoro_frontend *fe = fe_new(lang);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char *out = NULL;
        assert_int_equal(kokoro_frontend_normalize(fe, k[i].in, strlen(k[i].in), &out), KOKORO_OK);
        if (strcmp(out, k[i].want)) {
            printf("[%s] %s\n   got  '%s'\n   want '%s'\n", lang, k[i].in, out, k[i].want);
            bad++;
        }
        free(out);
    }
    kokoro_frontend_free(fe);
    assert_int_equal(bad, 0);
}

static const kase english[] = {
    /* cardinals, thousands separators, decimals, negatives */
    {"It has 3,497 pages.", "It has three thousand four hundred ninety-seven pages."},
    {"1,000,000 stars", "one million stars"},
    {"pi is 3.14", "pi is three point one four"},
    {"It was -5 outside", "It was minus five outside"},
    {"0", "zero"},
    {"007", "zero zero seven"},
    {"101 dalmatians", "one hundred one dalmatians"},
    {"12345678901234567890", "one two three four five six seven eight nine zero one two three four five six seven eight nine zero"},
    /* ordinals */
    {"the 21st century", "the twenty-first century"},
    {"2nd, 3rd and 4th", "second, third and fourth"},
    {"the 12th man", "the twelfth man"},
    {"the 100th time", "the one hundredth time"},
    /* ranges */
    {"1990\xE2\x80\x93" "1995", "nineteen ninety to nineteen ninety-five"},
    {"pages 10-20", "pages ten to twenty"},
    {"call 555-123-4567", "call five five five, one two three, four five six seven"},
    /* years and decades */
    {"In 1984 we", "In nineteen eighty-four we"},
    {"in 2005", "in two thousand five"},
    {"in 2024", "in twenty twenty-four"},
    {"in 1900", "in nineteen hundred"},
    {"in 1905", "in nineteen oh five"},
    {"the 1980s", "the nineteen eighties"},
    {"the 2000s", "the two thousands"},
    {"the 80s", "the eighties"},
    {"the '90s", "the nineties"},
    /* fractions */
    {"1/2 cup", "one half cup"},
    {"3/4 of it", "three quarters of it"},
    {"5/8 inch", "five eighths inch"},
    {"2/3", "two thirds"},
    {"1/3", "one third"},
    {"3/2", "three halves"},
    /* times */
    {"at 10:30", "at ten thirty"},
    {"at 7:05 am", "at seven oh five A M"},
    {"at 10:00", "at ten o'clock"},
    {"at 7 pm", "at seven P M"},
    {"at 14:45", "at fourteen forty-five"},
    /* dates */
    {"on May 17, 2024", "on May seventeenth, twenty twenty-four"},
    {"on 2024-05-17", "on May seventeenth, twenty twenty-four"},
    {"on 7/4/1776", "on July fourth, seventeen seventy-six"},
    /* currency */
    {"$1.5 million", "one point five million dollars"},
    {"\xE2\x82\xAC" "20", "twenty euros"},
    {"\xC2\xA3" "3.50", "three pounds and fifty pence"},
    {"$1", "one dollar"},
    {"$0.99", "ninety-nine cents"},
    {"$5.01", "five dollars and one cent"},
    {"$2 billion", "two billion dollars"},
    /* percentages and units */
    {"25% off", "twenty-five percent off"},
    {"5 km away", "five kilometers away"},
    {"1 kg", "one kilogram"},
    {"3.5 GB", "three point five gigabytes"},
    {"100 mph", "one hundred miles per hour"},
    {"20\xC2\xB0" "C", "twenty degrees Celsius"},
    {"90\xC2\xB0", "ninety degrees"},
    /* abbreviations, titles, initials */
    {"Dr. Smith and Mr. Jones", "Doctor Smith and Mister Jones"},
    {"Mrs. Brown", "Missus Brown"},
    {"St. Paul lives on Main St.", "Saint Paul lives on Main Street."},
    {"apples, pears, etc. Then", "apples, pears, et cetera. Then"},
    {"fruit, e.g. apples", "fruit, for example apples"},
    {"i.e. this", "that is this"},
    {"No. 5", "number five"},
    {"#1 hit", "number one hit"},
    {"J. R. R. Tolkien", "J R R Tolkien"},
    {"cats vs. dogs", "cats versus dogs"},
    /* roman numerals in titles */
    {"Chapter IV", "Chapter four"},
    {"CHAPTER XII. The Sea", "CHAPTER twelve. The Sea"},
    {"Part II", "Part two"},
    {"XIV.\nIt began", "fourteen.\nIt began"},
    {"I think", "I think"},
    {"so did I. Then we left", "so did I. Then we left"},
    /* URLs and e-mails */
    {"see https://www.example.com/docs.", "see w w w dot example dot com slash docs."},
    {"see example.com", "see example.com"},
    {"mail john.doe@example.org today", "mail john dot doe at example dot org today"},
    /* symbols */
    {"salt & pepper", "salt and pepper"},
    {"2 + 2 = 4", "two plus two equals four"},
    /* words stay words */
    {"Hello, world!", "Hello, world!"},
    {"B2B", "B2B"},
};

static void test_english(void **state)
{
    (void)state;
    run_table("en-us", english, sizeof english / sizeof english[0]);
}

static const kase cleanup[] = {
    {"\xE2\x80\x9CQuoted\xE2\x80\x9D and \xE2\x80\x98single\xE2\x80\x99", "\"Quoted\" and 'single'"},
    {"don\xE2\x80\x99t", "don't"},
    {"wait...", "wait\xE2\x80\xA6"},
    {"wait\xE2\x80\xA6", "wait\xE2\x80\xA6"},
    {"a--b", "a\xE2\x80\x94" "b"},
    {"a\xC2\xA0" "b\xE2\x80\x83" "c", "a b c"},
    {"zero\xE2\x80\x8Bwidth\xEF\xBB\xBF", "zerowidth"},
    {"soft\xC2\xADhyphen", "softhyphen"},
    {"tab\there", "tab here"},
    {"bell\x07" "del\x7F", "belldel"},
    {"cr\r\nlf\rx", "cr\nlf\nx"},
    {"e\xCC\x81t\xC3\xA9", "\xC3\xA9t\xC3\xA9"},               /* NFC: e + U+0301 -> é */
    {"# Heading\n\nText", "Heading\n\nText"},
    {"## Sub heading", "Sub heading"},
    {"- item one\n* item two\n+ item three", "item one\nitem two\nitem three"},
    {"\xE2\x80\xA2 bullet", "bullet"},
    {"> quoted line", "quoted line"},
    {"**bold** and *it* and __u__ and `code` ~~gone~~", "bold and it and u and code gone"},
    {"snake_case stays", "snake_case stays"},
    {"a [link](http://x.org) here", "a link here"},
    {"an ![image](pic.png)", "an image"},
    {"one\n\n---\n\ntwo", "one\n\n\n\ntwo"},
    {"private\xEE\x80\x80use", "privateuse"},
    {"rtl\xE2\x80\x8Fmark", "rtlmark"},
};

static void test_cleanup_all_languages(void **state)
{
    (void)state;
    const char *langs[] = {"en-us", "fr-fr", "es", "ja"};
    for (size_t l = 0; l < 4; l++) run_table(langs[l], cleanup, sizeof cleanup / sizeof cleanup[0]);
}

static void test_other_languages_keep_numbers(void **state)
{
    (void)state;
    /* espeak-ng reads numbers in its own language: no English words */
    static const kase fr[] = {{"Il a 3 chats et 1984", "Il a 3 chats et 1984"}, {"M. Dupont", "M. Dupont"}};
    run_table("fr-fr", fr, 2);
}

static void expect_utf8_error(const char *bytes, size_t n, const char *offset_text)
{
    kokoro_frontend *fe = fe_new("en-us");
    char *out = (char *)1;
    assert_int_equal(kokoro_frontend_normalize(fe, bytes, n, &out), KOKORO_ERR_FORMAT);
    assert_null(out);
    const char *msg = kokoro_last_error();
    if (!strstr(msg, offset_text)) printf("message: %s\n", msg);
    assert_non_null(strstr(msg, offset_text));
    kokoro_chunk *c = (kokoro_chunk *)1;
    size_t nc = 7;
    assert_int_equal(kokoro_frontend_chunks(fe, bytes, n, &c, &nc), KOKORO_ERR_FORMAT);
    assert_null(c);
    assert_int_equal(nc, 0);
    kokoro_frontend_free(fe);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    expect_utf8_error("abc\xFF" "def", 7, "byte offset 3");
    expect_utf8_error("ok \xC3", 4, "byte offset 3");                    /* truncated */
    expect_utf8_error("\xC0\xAF", 2, "byte offset 0");                   /* overlong */
    expect_utf8_error("xy\xED\xA0\x80", 5, "byte offset 2");             /* surrogate */
    expect_utf8_error("\xE2\x82\xAC\xF4\x90\x80\x80", 7, "byte offset 3"); /* > U+10FFFF */
    expect_utf8_error("a\x80", 2, "byte offset 1");                      /* lone continuation */
}

static void test_empty_and_args(void **state)
{
    (void)state;
    kokoro_frontend *fe = fe_new("en-us");
    char *out = NULL;
    assert_int_equal(kokoro_frontend_normalize(fe, "", 0, &out), KOKORO_OK);
    assert_string_equal(out, "");
    free(out);
    kokoro_chunk *c;
    size_t n;
    assert_int_equal(kokoro_frontend_chunks(fe, "", 0, &c, &n), KOKORO_OK);
    assert_int_equal(n, 0);
    kokoro_chunks_free(c, n);
    assert_int_equal(kokoro_frontend_chunks(NULL, "x", 1, &c, &n), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_frontend_chunks(fe, NULL, 3, &c, &n), KOKORO_ERR_INVALID_ARG);
    /* enormous input is refused before a byte of it is read */
    static const char small[] = "x";
    assert_int_equal(kokoro_frontend_chunks(fe, small, ((size_t)16 << 20) + 1, &c, &n), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "at most"));
    kokoro_frontend_free(fe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_english),
        cmocka_unit_test(test_cleanup_all_languages),
        cmocka_unit_test(test_other_languages_keep_numbers),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_empty_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
