/* EPUB reading: the corpus books (TOC chapters in order with their titles,
 * metadata, cover by magic bytes) and books made here with libzip to pin
 * down slicing, skipping, EPUB 2 NCX/guide, fallbacks and hostile input. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include <cmocka.h>

#include "kokoro.h"

#define CORPUS KOKORO_TEST_DATA "/corpus/epub"

static char dir[] = "/tmp/kokoro-epub-test-XXXXXX";

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

/* ---- helpers ---- */

typedef struct entry {
    const char *name;
    const char *data;
    size_t len; /* 0: strlen(data) */
} entry;

static const char *path_for(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_zip(const char *path, const entry *e, size_t n)
{
    int err = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(za);
    for (size_t i = 0; i < n; i++) {
        size_t len = e[i].len ? e[i].len : strlen(e[i].data);
        zip_source_t *src = zip_source_buffer(za, e[i].data, len, 0);
        assert_non_null(src);
        zip_int64_t idx = zip_file_add(za, e[i].name, src, ZIP_FL_ENC_UTF_8);
        assert_true(idx >= 0);
        zip_set_file_compression(za, (zip_uint64_t)idx, i == 0 ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 9);
    }
    assert_int_equal(zip_close(za), 0);
}

#define CONTAINER                                                                                              \
    "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">" \
    "<rootfiles><rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>"        \
    "</rootfiles></container>"

#define XHTML(body)                                                                                          \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><html xmlns=\"http://www.w3.org/1999/xhtml\" "                \
    "xmlns:epub=\"http://www.idpf.org/2007/ops\"><head><title>t</title></head><body>" body "</body></html>"

/* A book with the standard mimetype and container, plus the given entries. */
static const char *book(const char *name, const entry *extra, size_t n)
{
    entry e[16] = {{"mimetype", "application/epub+zip", 0}, {"META-INF/container.xml", CONTAINER, 0}};
    assert_true(n <= 14);
    for (size_t i = 0; i < n; i++) e[2 + i] = extra[i];
    const char *p = path_for(name);
    write_zip(p, e, n + 2);
    return p;
}

static kokoro_document *open_ok(const char *path)
{
    kokoro_document *d = NULL;
    kokoro_status st = kokoro_document_open(path, &d);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    for (size_t i = 0; kokoro_document_warning(d, i); i++) printf("  warning: %s\n", kokoro_document_warning(d, i));
    return d;
}

static void open_fails(const char *path, const char *needle)
{
    kokoro_document *d = (kokoro_document *)1;
    kokoro_status st = kokoro_document_open(path, &d);
    printf("  %s\n", kokoro_last_error());
    assert_int_not_equal(st, KOKORO_OK);
    assert_null(d);
    assert_non_null(strstr(kokoro_last_error(), needle));
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

static int has_warning(kokoro_document *d, const char *needle)
{
    for (size_t i = 0; kokoro_document_warning(d, i); i++)
        if (strstr(kokoro_document_warning(d, i), needle)) return 1;
    return 0;
}

/* ---- the corpus (tests/data/corpus/MANIFEST.md) ---- */

typedef struct corpus_book {
    const char *file;
    size_t n_entries, n_top;
    const char *top[6]; /* the first top-level titles, in order */
    const char *title, *creator0, *creator1, *language;
    const char *cover_mime; /* NULL: none */
} corpus_book;

static const corpus_book BOOKS[] = {
    {"accessible_epub_3.epub", 47, 5,
     {"Preface", "1. Introduction", "2. Building a Better EPUB: Fundamental Accessibility",
      "3. It\xE2\x80\x99s Alive: Rich Content Accessibility", "4. Conclusion"},
     "Accessible EPUB 3", "Matt Garrish", NULL, "en", "image/jpeg"},
    {"childrens-literature.epub", 31, 1, {"SECTION IV FAIRY STORIES\xE2\x80\x94MODERN FANTASTIC TALES"},
     "Children's Literature", "Charles Madison Curry", "Erle Elsworth Clippinger", "en", "image/png"},
    {"haruko-jpeg.epub", 2, 2,
     {"\xE3\x83\x8F\xE3\x83\xAB\xE3\x82\xB3\xE3\x81\x95\xE3\x82\x93\xE3\x81\xAE\xE5\xBD\xBC\xE6\xB0\x8F/Haruko San No "
      "Kareshi",
      "\xE3\x81\x93\xE3\x81\xAE\xE6\x96\x87\xE6\x9B\xB8\xE3\x81\xAB\xE3\x81\xA4\xE3\x81\x84\xE3\x81\xA6/About this "
      "document"},
     "\xE3\x83\x8F\xE3\x83\xAB\xE3\x82\xB3\xE3\x81\x95\xE3\x82\x93\xE3\x81\xAE\xE5\xBD\xBC\xE6\xB0\x8F", NULL, NULL,
     "ja-jp", NULL},
    {"hefty-water.epub", 4, 1, {"Hefty Water"}, "Hefty Water", NULL, NULL, "en", NULL},
    /* no cover declared in the OPF: found through the landmarks' cover page */
    {"kusamakura-japanese-vertical-writing.epub", 14, 14,
     {"\xE4\xB8\x80", "\xE4\xBA\x8C", "\xE4\xB8\x89", "\xE5\x9B\x9B", "\xE4\xBA\x94", "\xE5\x85\xAD"},
     "\xE8\x8D\x89\xE6\x9E\x95", "\xE5\xA4\x8F\xE7\x9B\xAE \xE6\xBC\xB1\xE7\x9F\xB3", NULL, "ja-jp", "image/png"},
    {"moby-dick.epub", 141, 141,
     {"Moby-Dick", "Original Transcriber\xE2\x80\x99s Notes:", "ETYMOLOGY.",
      "EXTRACTS (Supplied by a Sub-Sub-Librarian).", "Chapter 1. Loomings.", "Chapter 2. The Carpet-Bag."},
     "Moby-Dick", "Herman Melville", NULL, "en-US", "image/jpeg"},
    {"sous-le-vent.epub", 1, 1, {"Commencer la lecture"}, "Sous le vent", "Jean-Bernard Pouy", "Joe G. Pinelli", "fr",
     "image/jpeg"},
    {"wasteland.epub", 6, 6,
     {"I. THE BURIAL OF THE DEAD", "II. A GAME OF CHESS", "III. THE FIRE SERMON", "IV. DEATH BY WATER",
      "V. WHAT THE THUNDER SAID", "NOTES ON \"THE WASTE LAND\""},
     "The Waste Land", "T.S. Eliot", NULL, "en-US", "image/jpeg"},
};

static void test_corpus_books(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof BOOKS / sizeof BOOKS[0]; b++) {
        const corpus_book *cb = &BOOKS[b];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, cb->file);
        printf("  %s\n", cb->file);
        kokoro_document *d = open_ok(path);
        assert_int_equal(kokoro_document_get_type(d), KOKORO_DOC_EPUB);
        assert_int_equal(kokoro_document_chapter_count(d), cb->n_entries);
        size_t top = 0;
        for (size_t i = 0; i < cb->n_entries; i++) {
            kokoro_chapter_info info = info_of(d, i);
            assert_int_equal(info.word_count, -1); /* opening extracted no chapter text */
            if (info.level != 1) continue;
            if (top < 6 && cb->top[top]) assert_string_equal(info.title, cb->top[top]);
            top++;
        }
        assert_int_equal(top, cb->n_top);
        assert_string_equal(kokoro_document_meta(d, "title", 0), cb->title);
        if (cb->creator0) assert_string_equal(kokoro_document_meta(d, "creator", 0), cb->creator0);
        else assert_null(kokoro_document_meta(d, "creator", 0));
        if (cb->creator1) assert_string_equal(kokoro_document_meta(d, "creator", 1), cb->creator1);
        else assert_null(kokoro_document_meta(d, "creator", cb->creator0 ? 1 : 0));
        assert_string_equal(kokoro_document_meta(d, "language", 0), cb->language);
        const unsigned char *cover;
        size_t cover_len;
        const char *mime;
        assert_int_equal(kokoro_document_cover(d, &cover, &cover_len, &mime), KOKORO_OK);
        if (cb->cover_mime) {
            assert_non_null(cover);
            assert_true(cover_len > 1000);
            assert_string_equal(mime, cb->cover_mime);
            if (strcmp(mime, "image/jpeg") == 0) assert_memory_equal(cover, "\xFF\xD8\xFF", 3);
            else assert_memory_equal(cover, "\x89PNG\r\n\x1a\n", 8);
        } else {
            assert_null(cover);
            assert_int_equal(cover_len, 0);
        }
        kokoro_document_free(d);
    }
}

static void test_corpus_text(void **state)
{
    (void)state;
    kokoro_document *d = open_ok(CORPUS "/moby-dick.epub");
    assert_string_equal(kokoro_document_meta(d, "publisher", 0), "Harper & Brothers, Publishers");
    char *t = text_of(d, 4); /* Chapter 1. Loomings. */
    assert_true(strncmp(t, "Chapter 1. Loomings.\n\nCall me Ishmael.", 38) == 0);
    assert_null(strstr(t, "The Carpet-Bag"));
    assert_null(strstr(t, "\n\n\n"));
    free(t);
    t = text_of(d, 5);
    assert_true(strncmp(t, "Chapter 2. The Carpet-Bag.\n\nI stuffed a shirt", 45) == 0);
    free(t);
    kokoro_chapter_info last = info_of(d, 140);
    assert_string_equal(last.title, "Copyright Page");
    assert_int_equal(last.matter, KOKORO_MATTER_FRONT);
    assert_string_equal(last.matter_reason, "landmark type \"copyright-page\"");
    assert_int_equal(info_of(d, 4).matter, KOKORO_MATTER_BODY);
    kokoro_document_free(d);

    d = open_ok(CORPUS "/wasteland.epub");
    t = text_of(d, 0);
    assert_true(strncmp(t, "I. THE BURIAL OF THE DEAD\n\nApril is the cruellest month, breeding\n\n", 67) == 0);
    /* printed line numbers (<span class="lnum">10</span>) are not read */
    assert_non_null(strstr(t, "into the Hofgarten,\n\n"));
    assert_null(strstr(t, "Hofgarten,10"));
    assert_null(strstr(t, "A GAME OF CHESS"));
    free(t);
    kokoro_document_free(d);

    /* a manga: the spine holds JPEGs whose fallback is one XHTML with the whole text, read once */
    d = open_ok(CORPUS "/haruko-jpeg.epub");
    t = text_of(d, 0);
    assert_true(strncmp(t, "\xE3\x83\x8F\xE3\x83\xAB\xE3\x82\xB3", 9) == 0);
    assert_non_null(strstr(t, "\xE3\x81\xA1\xE3\x82\x87\xE3\x81\xA3\xE3\x81\xA8\xE3\x81\x97\xE3\x81\x9F")); /* ちょっとした */
    assert_null(strstr(t, "JFIF"));
    free(t);
    t = text_of(d, 1);
    assert_string_equal(t, ""); /* its fallback is the same document, already read */
    free(t);
    kokoro_document_free(d);

    d = open_ok(CORPUS "/accessible_epub_3.epub");
    kokoro_chapter_info ack = info_of(d, 5);
    assert_string_equal(ack.title, "Acknowledgments");
    assert_int_equal(ack.matter, KOKORO_MATTER_FRONT);
    assert_int_equal(ack.level, 2);
    t = text_of(d, 1); /* Conventions Used in This Book: sliced between two anchors of one file */
    assert_true(strncmp(t, "Conventions Used in This Book\n\n", 31) == 0);
    assert_null(strstr(t, "Using Code Examples"));
    free(t);
    assert_int_equal(kokoro_document_count_words(d), KOKORO_OK);
    assert_true(info_of(d, 1).word_count > 50);
    kokoro_document_free(d);
}

/* ---- books made here ---- */

#define PNG_BYTES "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x02\0\0\0"

static void test_epub3_slicing_and_skipping(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
        "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Test  Book</dc:title>"
        "<dc:creator>Ann Author</dc:creator><dc:creator>Bob Writer</dc:creator><dc:language>en</dc:language>"
        "<dc:date>2020-01-02</dc:date><dc:publisher>P &amp; Q</dc:publisher><dc:description>&lt;p&gt;About &lt;i&gt;it&lt;/i&gt;.&lt;/p&gt;</dc:description>"
        "<dc:identifier>urn:isbn:123</dc:identifier><meta name=\"cover\" content=\"cov\"/></metadata>"
        "<manifest><item id=\"nav\" href=\"nav.xhtml\" properties=\"nav\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"c1\" href=\"text/chap%20one.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"c2\" href=\"text/two.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"c3\" href=\"text/three.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"cov\" href=\"img/c.png\" media-type=\"image/png\"/></manifest>"
        "<spine><itemref idref=\"c1\"/><itemref idref=\"c2\"/><itemref idref=\"c3\"/></spine></package>";
    const char *nav = XHTML("<nav epub:type=\"toc\"><ol>"
                            "<li><a href=\"text/chap%20one.xhtml#a\">One</a></li>"
                            "<li><a href=\"text/chap%20one.xhtml#b\">Two</a><ol>"
                            "<li><a href=\"text/three.xhtml\">Two point one</a></li></ol></li>"
                            "<li><a href=\"../../etc/passwd\">Escape</a></li>"
                            "<li><a href=\"text/missing.xhtml\">Missing</a></li>"
                            "<li><a href=\"http://example.org/x.xhtml\">Web</a></li>"
                            "</ol></nav>"
                            "<nav epub:type=\"landmarks\"><ol><li><a epub:type=\"cover\" href=\"text/chap%20one.xhtml\">"
                            "Cover</a></li></ol></nav>");
    const char *c1 = XHTML("<p>Before the first anchor.</p>"
                           "<h1 id=\"a\">One</h1><p>Text one<a epub:type=\"noteref\" href=\"#n1\">1</a>"
                           "<sup>2</sup>.</p><span epub:type=\"pagebreak\" id=\"p5\" title=\"5\">5</span>"
                           "<script>alert('no')</script><style>p{}</style>"
                           "<p>Line<br/>break and&#160;space, <b>bold</b> <i>it</i>alic.</p>"
                           "<aside epub:type=\"footnote\" id=\"n1\">A footnote.</aside>"
                           "<div><h2 id=\"b\">Two</h2></div><p>Text two.</p>");
    const char *c2 = XHTML("<p>Second file,<ruby>\xE6\xBC\xA2<rt>kan</rt></ruby> still two.</p>");
    const char *c3 = XHTML("<h2>Two point one</h2><p>Three.</p>");
    entry e[] = {{"OEBPS/content.opf", opf, 0},     {"OEBPS/nav.xhtml", nav, 0},
                 {"OEBPS/text/chap one.xhtml", c1, 0}, {"OEBPS/text/two.xhtml", c2, 0},
                 {"OEBPS/text/three.xhtml", c3, 0},  {"OEBPS/img/c.png", PNG_BYTES, sizeof PNG_BYTES - 1}};
    kokoro_document *d = open_ok(book("slice.epub", e, 6));
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "One");
    assert_string_equal(info_of(d, 1).title, "Two");
    assert_string_equal(info_of(d, 2).title, "Two point one");
    assert_int_equal(info_of(d, 2).level, 2);
    /* escaping, missing and external hrefs are refused with a warning naming them */
    assert_true(has_warning(d, "escapes the book"));
    assert_true(has_warning(d, "text/missing.xhtml"));
    assert_true(has_warning(d, "outside the book"));
    char *t = text_of(d, 0);
    assert_string_equal(t, "One\n\nText one.\n\nLine\nbreak and space, bold italic.");
    free(t);
    t = text_of(d, 1); /* to the end of its file, then the next spine document up to "Two point one" */
    assert_string_equal(t, "Two\n\nText two.\n\nSecond file,\xE6\xBC\xA2 still two.");
    free(t);
    t = text_of(d, 2);
    assert_string_equal(t, "Two point one\n\nThree.");
    free(t);
    assert_string_equal(kokoro_document_meta(d, "title", 0), "Test Book");
    assert_int_equal(kokoro_document_meta_count(d, "creator"), 2);
    assert_string_equal(kokoro_document_meta(d, "creator", 1), "Bob Writer");
    assert_string_equal(kokoro_document_meta(d, "date", 0), "2020-01-02");
    assert_string_equal(kokoro_document_meta(d, "publisher", 0), "P & Q");
    assert_string_equal(kokoro_document_meta(d, "description", 0), "About it.");
    assert_string_equal(kokoro_document_meta(d, "identifier", 0), "urn:isbn:123");
    assert_null(kokoro_document_meta(d, "identifier", 1));
    const unsigned char *cover;
    size_t len;
    const char *mime;
    assert_int_equal(kokoro_document_cover(d, &cover, &len, &mime), KOKORO_OK);
    assert_int_equal(len, sizeof PNG_BYTES - 1);
    assert_string_equal(mime, "image/png");
    /* the landmark names chap one.xhtml as the cover page; chapter One starts there at #a, so it
     * is not the cover page itself and stays body matter */
    assert_int_equal(info_of(d, 0).matter, KOKORO_MATTER_BODY);
    kokoro_document_free(d);
}

/* TOC entries may point at page-break anchors, whose own text ("12") is never read. */
static void test_anchors_on_page_breaks(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
        "<manifest><item id=\"nav\" href=\"nav.xhtml\" properties=\"nav\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"f\" href=\"f.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"f\"/></spine></package>";
    const char *nav = XHTML("<nav epub:type=\"toc\"><ol><li><a href=\"f.xhtml\">Intro</a></li>"
                            "<li><a href=\"f.xhtml#pg1\">P1</a></li><li><a href=\"f.xhtml#pg2\">P2</a></li>"
                            "</ol></nav>");
    const char *f = XHTML("<p>Intro.</p><p><span epub:type=\"pagebreak\" id=\"pg1\">11</span>Page one "
                          "text.</p><div role=\"doc-pagebreak\" id=\"pg2\">12</div><p>Page two text.</p>");
    entry e[] = {{"OEBPS/content.opf", opf, 0}, {"OEBPS/nav.xhtml", nav, 0}, {"OEBPS/f.xhtml", f, 0}};
    kokoro_document *d = open_ok(book("pages.epub", e, 3));
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    const char *want[] = {"Intro.", "Page one text.", "Page two text."};
    for (size_t i = 0; i < 3; i++) {
        char *t = text_of(d, i);
        assert_string_equal(t, want[i]);
        free(t);
    }
    kokoro_document_free(d);
}

static void test_epub2_ncx_guide_cover_page(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"2.0\">"
        "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Two</dc:title></metadata>"
        "<manifest><item id=\"ncx\" href=\"toc.ncx\" media-type=\"application/x-dtbncx+xml\"/>"
        "<item id=\"cover\" href=\"cover.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"copy\" href=\"copy.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"ch\" href=\"ch.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"img\" href=\"images/c.jpg\" media-type=\"image/jpeg\"/></manifest>"
        "<spine toc=\"ncx\"><itemref idref=\"cover\"/><itemref idref=\"copy\"/><itemref idref=\"ch\"/></spine>"
        "<guide><reference type=\"cover\" href=\"cover.xhtml\"/><reference type=\"copyright-page\" "
        "href=\"copy.xhtml\"/></guide></package>";
    const char *ncx = "<?xml version=\"1.0\"?><ncx xmlns=\"http://www.daisy.org/z3986/2005/ncx/\"><navMap>"
                      "<navPoint id=\"a\"><navLabel><text>Legal</text></navLabel><content src=\"copy.xhtml\"/></navPoint>"
                      "<navPoint id=\"b\"><navLabel><text>Part I</text></navLabel><content src=\"ch.xhtml\"/>"
                      "<navPoint id=\"c\"><navLabel><text>Chapter 1</text></navLabel><content src=\"ch.xhtml#c1\"/>"
                      "</navPoint></navPoint></navMap></ncx>";
    static const char jpeg[] = "\xFF\xD8\xFF\xE0\0\x10JFIF\0\1\1\0\0\1\0\1\0\0";
    entry e[] = {{"OEBPS/content.opf", opf, 0},
                 {"OEBPS/toc.ncx", ncx, 0},
                 {"OEBPS/cover.xhtml", XHTML("<div><img src=\"images/c.jpg\" alt=\"cover\"/></div>"), 0},
                 {"OEBPS/copy.xhtml", XHTML("<p>All rights reserved.</p>"), 0},
                 {"OEBPS/ch.xhtml", XHTML("<h1>Part I</h1><h2 id=\"c1\">Chapter 1</h2><p>Body.</p>"), 0},
                 {"OEBPS/images/c.jpg", jpeg, sizeof jpeg - 1}};
    kokoro_document *d = open_ok(book("epub2.epub", e, 6));
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "Legal");
    assert_int_equal(info_of(d, 0).matter, KOKORO_MATTER_FRONT);
    assert_string_equal(info_of(d, 0).matter_reason, "guide type \"copyright-page\"");
    assert_int_equal(info_of(d, 1).level, 1);
    assert_int_equal(info_of(d, 2).level, 2);
    char *t = text_of(d, 1);
    assert_string_equal(t, "Part I");
    free(t);
    t = text_of(d, 2);
    assert_string_equal(t, "Chapter 1\n\nBody.");
    free(t);
    const unsigned char *cover;
    size_t len;
    const char *mime;
    assert_int_equal(kokoro_document_cover(d, &cover, &len, &mime), KOKORO_OK);
    assert_string_equal(mime, "image/jpeg");
    assert_int_equal(len, sizeof jpeg - 1);
    kokoro_document_free(d);
}

static void test_spine_fallback_and_svg_cover(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
        "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>No TOC</dc:title></metadata>"
        "<manifest><item id=\"a\" href=\"A.XHTML\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"b\" href=\"b.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"c\" href=\"c.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"svg\" href=\"c.svg\" properties=\"cover-image\" media-type=\"image/svg+xml\"/></manifest>"
        "<spine><itemref idref=\"b\"/><itemref idref=\"a\"/><itemref idref=\"c\"/><itemref idref=\"zz\"/></spine>"
        "</package>";
    entry e[] = {{"OEBPS/content.opf", opf, 0},
                 {"OEBPS/a.xhtml", XHTML("<div><h2>Second</h2><p>A text.</p></div>"), 0},
                 {"OEBPS/b.xhtml", XHTML("<h1>First</h1><p>B text.</p>"), 0},
                 {"OEBPS/c.xhtml", "<html><head><title>Third title</title></head><body><p>C</p></body></html>", 0},
                 {"OEBPS/c.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 0}};
    kokoro_document *d = open_ok(book("spine.epub", e, 5));
    /* spine order, not file-name order; A.XHTML finds a.xhtml */
    assert_int_equal(kokoro_document_chapter_count(d), 3);
    assert_string_equal(info_of(d, 0).title, "First");
    assert_string_equal(info_of(d, 1).title, "Second");
    assert_string_equal(info_of(d, 2).title, "Third title");
    assert_true(has_warning(d, "no usable table of contents"));
    assert_true(has_warning(d, "\"zz\" is not in the manifest"));
    assert_true(has_warning(d, "is not a JPEG, PNG or WebP"));
    const unsigned char *cover;
    size_t len;
    assert_int_equal(kokoro_document_cover(d, &cover, &len, NULL), KOKORO_OK);
    assert_null(cover);
    char *t = text_of(d, 1);
    assert_string_equal(t, "Second\n\nA text.");
    free(t);
    kokoro_document_free(d);
}

static void test_tag_soup(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
        "<manifest><item id=\"a\" href=\"a.html\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"a\"/></spine></package>";
    /* not XML: unclosed <p>, HTML entities, upper-case tags */
    const char *soup = "<html><body><P>First &mdash; para<p>Second&nbsp;para<br>next<SCRIPT>x()</SCRIPT></body>";
    entry e[] = {{"OEBPS/content.opf", opf, 0}, {"OEBPS/a.html", soup, 0}};
    kokoro_document *d = open_ok(book("soup.epub", e, 2));
    char *t = text_of(d, 0);
    assert_string_equal(t, "First \xE2\x80\x94 para\n\nSecond para\nnext");
    free(t);
    kokoro_document_free(d);

    /* bytes that are not UTF-8 never reach the caller: the text stays valid UTF-8 */
    const char *bad = "<html><body><p>ab\xff\xfe cd \xC3\x28 ef</p></body></html>";
    entry e2[] = {{"OEBPS/content.opf", opf, 0}, {"OEBPS/a.html", bad, 0}};
    d = open_ok(book("badutf8.epub", e2, 2));
    size_t len;
    assert_int_equal(kokoro_document_chapter_text(d, 0, &t, &len), KOKORO_OK);
    printf("  [%s]\n", t);
    kokoro_document *check = NULL;
    assert_int_equal(kokoro_document_open_text(t, len, "check.txt", &check), KOKORO_OK); /* validates UTF-8 */
    kokoro_document_free(check);
    assert_non_null(strstr(t, "ab"));
    assert_non_null(strstr(t, "ef"));
    free(t);
    kokoro_document_free(d);

    /* an image in the spine with no fallback: no text, and a warning */
    const char *opf2 =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
        "<manifest><item id=\"i\" href=\"p.png\" media-type=\"image/png\"/>"
        "<item id=\"a\" href=\"a.html\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"i\"/><itemref idref=\"a\"/></spine></package>";
    entry e3[] = {{"OEBPS/content.opf", opf2, 0}, {"OEBPS/a.html", soup, 0},
                  {"OEBPS/p.png", PNG_BYTES, sizeof PNG_BYTES - 1}};
    d = open_ok(book("image-spine.epub", e3, 3));
    assert_int_equal(kokoro_document_chapter_count(d), 1);
    assert_true(has_warning(d, "has no text and no text fallback"));
    kokoro_document_free(d);
}

static void hostile(int soup_deep)
{
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
        "<manifest><item id=\"a\" href=\"a.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"bomb\" href=\"bomb.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"lol\" href=\"lol.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"deep\" href=\"deep.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"a\"/><itemref idref=\"bomb\"/><itemref idref=\"lol\"/><itemref idref=\"deep\"/>"
        "</spine></package>";
    /* 8 MiB of spaces deflate to a few KiB: over the ratio limit */
    size_t bomb_len = (size_t)8 << 20;
    char *bomb = malloc(bomb_len);
    assert_non_null(bomb);
    memset(bomb, ' ', bomb_len);
    memcpy(bomb, "<html>", 6);
    const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE html [<!ENTITY a \"aaaaaaaaaa\">"
                      "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
                      "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">"
                      "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">"
                      "<!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\"><!ENTITY i \"&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;\">"
                      "]><html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>&i;&i;&i;&i;&i;&i;&i;&i;</p></body></html>";
    size_t depth = soup_deep ? 60000 : 3000, deep_len = depth * 11 + 64;
    char *deep = malloc(deep_len);
    assert_non_null(deep);
    /* tag soup (not XML) 60000 deep is refused with the same depth error, no crash */
    size_t o = (size_t)sprintf(deep, "<html><body>%s", soup_deep ? "<p class=x>soup</p>" : "");
    for (size_t i = 0; i < depth; i++) o += (size_t)sprintf(deep + o, "<div>");
    o += (size_t)sprintf(deep + o, "x");
    for (size_t i = 0; i < depth && o + 7 < deep_len; i++) o += (size_t)sprintf(deep + o, "</div>");
    entry e[] = {{"OEBPS/content.opf", opf, 0},
                 {"OEBPS/a.xhtml", XHTML("<p>Fine.</p>"), 0},
                 {"OEBPS/bomb.xhtml", bomb, bomb_len},
                 {"OEBPS/lol.xhtml", lol, 0},
                 {"OEBPS/deep.xhtml", deep, o}};
    const char *path = book(soup_deep ? "hostile2.epub" : "hostile.epub", e, 5);
    free(bomb);
    free(deep);
    kokoro_document *d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_count(d), 4);
    char *t = text_of(d, 0);
    assert_string_equal(t, "Fine.");
    free(t);
    clock_t c0 = clock();
    t = (char *)1;
    assert_int_equal(kokoro_document_chapter_text(d, 1, &t, NULL), KOKORO_ERR_FORMAT);
    assert_null(t);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "zip bomb"));
    assert_non_null(strstr(kokoro_last_error(), "bomb.xhtml"));
    /* billion laughs: refused or read unexpanded, quickly, never 10^9 bytes */
    size_t len = 0;
    kokoro_status st = kokoro_document_chapter_text(d, 2, &t, &len);
    printf("  billion laughs: %s\n", st == KOKORO_OK ? "read without expansion" : kokoro_last_error());
    if (st == KOKORO_OK) {
        assert_true(len < 1000);
        free(t);
    } else {
        assert_int_equal(st, KOKORO_ERR_FORMAT);
        assert_non_null(strstr(kokoro_last_error(), "lol.xhtml"));
    }
    assert_int_equal(kokoro_document_chapter_text(d, 3, &t, NULL), KOKORO_ERR_FORMAT);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "deep.xhtml"));
    assert_non_null(strstr(kokoro_last_error(), "depth"));
    assert_true((double)(clock() - c0) / CLOCKS_PER_SEC < 10.0);
    /* the book stays usable after the errors */
    t = text_of(d, 0);
    assert_string_equal(t, "Fine.");
    free(t);
    assert_int_equal(kokoro_document_count_words(d), KOKORO_ERR_FORMAT);
    kokoro_document_free(d);
}

static void test_hostile_books(void **state)
{
    (void)state;
    hostile(0);
    hostile(1);
}

/* Sets the uncompressed size recorded for entry name, in its local header and
 * its central directory record, to size (a zip that lies about itself). */
static void patch_size(const char *path, const char *name, unsigned size)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    assert_true(n < sizeof buf);
    size_t nl = strlen(name);
    int patched = 0;
    for (size_t i = 0; i + 46 + nl <= n; i++) {
        size_t off = 0, name_at = 0;
        if (memcmp(buf + i, "PK\3\4", 4) == 0) off = 22, name_at = 30;
        else if (memcmp(buf + i, "PK\1\2", 4) == 0) off = 24, name_at = 46;
        else continue;
        if (memcmp(buf + i + name_at, name, nl) != 0) continue;
        for (int b = 0; b < 4; b++) buf[i + off + (size_t)b] = (unsigned char)(size >> (8 * b));
        patched++;
    }
    assert_int_equal(patched, 2);
    rewind(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static void test_entry_size_limit(void **state)
{
    (void)state;
    const char *opf =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\"><metadata/>"
        "<manifest><item id=\"a\" href=\"a.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"big\" href=\"big.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"a\"/><itemref idref=\"big\"/></spine></package>";
    entry e[] = {{"OEBPS/content.opf", opf, 0},
                 {"OEBPS/a.xhtml", XHTML("<p>Fine.</p>"), 0},
                 {"OEBPS/big.xhtml", XHTML("<p>Claims to be 3 GiB.</p>"), 0}};
    const char *path = book("lying.epub", e, 3);
    patch_size(path, "OEBPS/big.xhtml", 3000000000u);
    kokoro_document *d = open_ok(path);
    char *t = NULL;
    assert_int_equal(kokoro_document_chapter_text(d, 1, &t, NULL), KOKORO_ERR_FORMAT);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "over the 64 MiB limit"));
    assert_null(t);
    t = text_of(d, 0);
    assert_string_equal(t, "Fine.");
    free(t);
    kokoro_document_free(d);

    /* a size that is small but wrong: the entry reads short and is refused, not trusted */
    path = book("short.epub", e, 3);
    patch_size(path, "OEBPS/big.xhtml", 100000u);
    d = open_ok(path);
    assert_int_equal(kokoro_document_chapter_text(d, 1, &t, NULL), KOKORO_ERR_FORMAT);
    printf("  %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "big.xhtml"));
    kokoro_document_free(d);
}

/* Documents share no state: threads reading books at once get what one thread gets. */
typedef struct thread_job {
    const char *path;
    size_t chapter;
    char *text;
    int ok;
} thread_job;

static void *read_chapter(void *arg)
{
    thread_job *j = arg;
    for (int r = 0; r < 5; r++) {
        kokoro_document *d = NULL;
        if (kokoro_document_open(j->path, &d) != KOKORO_OK) return NULL;
        char *t = NULL;
        if (kokoro_document_chapter_text(d, j->chapter, &t, NULL) == KOKORO_OK) {
            if (!j->text) j->text = t;
            else {
                j->ok = strcmp(j->text, t) == 0;
                free(t);
            }
        }
        kokoro_document_free(d);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    thread_job jobs[4] = {{CORPUS "/wasteland.epub", 2, NULL, 0},
                          {CORPUS "/moby-dick.epub", 6, NULL, 0},
                          {KOKORO_TEST_DATA "/corpus/pdf/pdflatex-outline.pdf", 3, NULL, 0},
                          {CORPUS "/wasteland.epub", 2, NULL, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, read_chapter, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_non_null(jobs[i].text);
        assert_true(jobs[i].ok);
        kokoro_document *d = open_ok(jobs[i].path);
        char *t = text_of(d, jobs[i].chapter);
        assert_string_equal(t, jobs[i].text);
        free(t);
        kokoro_document_free(d);
        free(jobs[i].text);
    }
}

static void test_broken_containers(void **state)
{
    (void)state;
    /* not a zip at all, but named .epub */
    FILE *f = fopen(path_for("text.epub"), "wb");
    assert_non_null(f);
    fputs("this is not a zip archive", f);
    fclose(f);
    open_fails(path_for("text.epub"), "not a readable EPUB");
    /* an empty file */
    f = fopen(path_for("empty.epub"), "wb");
    assert_non_null(f);
    fclose(f);
    open_fails(path_for("empty.epub"), "empty.epub");

    /* missing container.xml */
    entry e1[] = {{"mimetype", "application/epub+zip", 0}, {"OEBPS/content.opf", "<package/>", 0}};
    write_zip(path_for("nocontainer.epub"), e1, 2);
    open_fails(path_for("nocontainer.epub"), "META-INF/container.xml is missing");

    /* container pointing at an OPF that is not there */
    open_fails(book("noopf.epub", NULL, 0), "no entry \"OEBPS/content.opf\"");

    /* rootfile escaping the book */
    entry e2[] = {{"mimetype", "application/epub+zip", 0},
                  {"META-INF/container.xml",
                   "<container xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles>"
                   "<rootfile full-path=\"../../x.opf\"/></rootfiles></container>",
                   0}};
    write_zip(path_for("escape.epub"), e2, 2);
    open_fails(path_for("escape.epub"), "no usable rootfile");

    /* malformed OPF; OPF whose spine names nothing readable; wrong root */
    entry e3[] = {{"OEBPS/content.opf", "<package><metadata>", 0}};
    open_fails(book("badopf.epub", e3, 1), "not well-formed XML");
    entry e4[] = {{"OEBPS/content.opf",
                   "<package xmlns=\"http://www.idpf.org/2007/opf\"><manifest><item id=\"a\" href=\"../../a.xhtml\" "
                   "media-type=\"application/xhtml+xml\"/><item id=\"b\" href=\"gone.xhtml\" "
                   "media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"a\"/>"
                   "<itemref idref=\"b\"/></spine></package>",
                   0}};
    open_fails(book("emptyspine.epub", e4, 1), "the spine lists no readable document");
    entry e5[] = {{"OEBPS/content.opf", "<notapackage/>", 0}};
    open_fails(book("wrongroot.epub", e5, 1), "expected <package>");

    /* DRM: encryption.xml naming a content document; an obfuscated font alone is fine */
    const char *opf =
        "<package xmlns=\"http://www.idpf.org/2007/opf\"><manifest><item id=\"a\" href=\"a.xhtml\" "
        "media-type=\"application/xhtml+xml\"/><item id=\"f\" href=\"f.otf\" media-type=\"font/otf\"/>"
        "</manifest><spine><itemref idref=\"a\"/></spine></package>";
#define ENC(uri)                                                                                            \
    "<encryption xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\" "                                 \
    "xmlns:enc=\"http://www.w3.org/2001/04/xmlenc#\"><enc:EncryptedData><enc:CipherData>"                     \
    "<enc:CipherReference URI=\"" uri "\"/></enc:CipherData></enc:EncryptedData></encryption>"
    entry e6[] = {{"OEBPS/content.opf", opf, 0}, {"OEBPS/a.xhtml", "\x8a\x17\x99 ciphertext", 0},
                  {"META-INF/encryption.xml", ENC("OEBPS/a.xhtml"), 0}};
    open_fails(book("drm.epub", e6, 3), "encrypted (DRM)");
    entry e7[] = {{"OEBPS/content.opf", opf, 0}, {"OEBPS/a.xhtml", XHTML("<p>Free.</p>"), 0},
                  {"META-INF/encryption.xml", ENC("OEBPS/f.otf"), 0}};
    kokoro_document *d = open_ok(book("font.epub", e7, 3));
    char *t = text_of(d, 0);
    assert_string_equal(t, "Free.");
    free(t);
    kokoro_document_free(d);

    /* a good book truncated in the middle: the central directory is gone */
    f = fopen(CORPUS "/wasteland.epub", "rb");
    assert_non_null(f);
    static char buf[50000];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, sizeof buf);
    f = fopen(path_for("truncated.epub"), "wb");
    assert_non_null(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    open_fails(path_for("truncated.epub"), "truncated.epub");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_books),          cmocka_unit_test(test_corpus_text),
        cmocka_unit_test(test_epub3_slicing_and_skipping), cmocka_unit_test(test_epub2_ncx_guide_cover_page),
        cmocka_unit_test(test_spine_fallback_and_svg_cover), cmocka_unit_test(test_tag_soup),
        cmocka_unit_test(test_hostile_books),         cmocka_unit_test(test_broken_containers),
        cmocka_unit_test(test_entry_size_limit),      cmocka_unit_test(test_threads),
        cmocka_unit_test(test_anchors_on_page_breaks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
