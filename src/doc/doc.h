/* Documents read as chapters: shared internals of src/doc/. */
#ifndef KK_DOC_H
#define KK_DOC_H

#include <stddef.h>

#include "kokoro.h"

#define KK_DOC_MAX_CHAPTERS 20000
#define KK_DOC_MAX_PAGES 20000
#define KK_DOC_MAX_TEXT ((size_t)512 << 20)
#define KK_DOC_MAX_MARKUP ((size_t)64 << 20)   /* one XHTML/OPF/NCX zip entry, uncompressed */
#define KK_DOC_MAX_RATIO 200                   /* above 1 MiB uncompressed */
#define KK_DOC_MAX_DEPTH 256                   /* XML/HTML element nesting */
#define KK_DOC_MAX_COVER ((size_t)32 << 20)
#define KK_DOC_MAX_PDF_ERRORS 50000           /* poppler syntax errors on one page */

/* A growing UTF-8 buffer that turns markup text into paragraphs: runs of
 * white space become one space, kk_tb_para() asks for a blank line before the
 * next text, kk_tb_line() for a line break. */
typedef struct kk_textbuf {
    char *p;
    size_t len, cap;
    int pending;    /* 0 none, 1 space, 2 newline, 3 paragraph */
    int failed;     /* allocation failed or KK_DOC_MAX_TEXT reached */
} kk_textbuf;

void kk_tb_text(kk_textbuf *tb, const char *s, size_t n);
void kk_tb_raw(kk_textbuf *tb, const char *s, size_t n);
void kk_tb_para(kk_textbuf *tb);
void kk_tb_line(kk_textbuf *tb);
/* Hands the text over (NUL-terminated) and resets tb; NOMEM on failure. */
kokoro_status kk_tb_take(kk_textbuf *tb, const char *what, char **text, size_t *len);
void kk_tb_free(kk_textbuf *tb);

typedef struct kk_doc_chapter {
    char *title;
    int level;
    long words;
    kokoro_matter matter;
    char *reason;
    int first_page, last_page;
    /* EPUB: from spine item spine_start at anchor start_id (NULL: its top)
     * up to spine item spine_end, stopping at end_id (NULL: its end). */
    int spine_start, spine_end;
    char *start_id, *end_id;
    char *href;    /* resolved entry name of the start */
    int pdf_heading; /* PDF: the chapter starts at its located title line */
    /* Text: a byte range of the document buffer. PDF: start line (off) on
     * page spine_start, end line (n, exclusive) on page spine_end. */
    size_t off, n;
} kk_doc_chapter;

typedef struct kk_epub kk_epub;
typedef struct kk_pdf kk_pdf;

struct kokoro_document {
    kokoro_document_type type;
    char *name;
    kk_doc_chapter *ch;
    size_t n_ch, cap_ch;
    char **meta_key, **meta_val;
    size_t n_meta, cap_meta;
    unsigned char *cover;
    size_t cover_len;
    const char *cover_mime;
    char **warn;
    size_t n_warn, cap_warn;
    char *buf;          /* text documents: the whole (validated) text */
    size_t buf_len;
    kk_epub *epub;
    kk_pdf *pdf;
};

kokoro_document *kk_doc_new(kokoro_document_type type, const char *name);
/* Appends a chapter (title copied) and points *out at it; NOMEM, or FORMAT
 * past KK_DOC_MAX_CHAPTERS (error set). */
kokoro_status kk_doc_add_chapter(kokoro_document *doc, const char *title, size_t title_len, int level,
                                 kk_doc_chapter **out);
kokoro_status kk_doc_add_meta(kokoro_document *doc, const char *key, const char *value);
void kk_doc_warn(kokoro_document *doc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Flags front/back matter by whole words of the title (when not already
 * flagged from landmarks). */
void kk_doc_classify_titles(kokoro_document *doc);
/* "image/jpeg", "image/png", "image/webp" or NULL by magic bytes. */
const char *kk_doc_image_mime(const unsigned char *p, size_t n);
/* Offset of the first invalid UTF-8 byte, or (size_t)-1 when all is valid. */
size_t kk_doc_utf8_invalid(const char *s, size_t n);
/* A copy with every invalid byte replaced by U+FFFD. */
char *kk_doc_utf8_repair(const char *s, size_t n, size_t *out_len);
char *kk_strndup(const char *s, size_t n);
/* Collapses white space and trims; returns a new string. */
char *kk_doc_clean_title(const char *s, size_t n);
long kk_doc_count_words(const char *s, size_t n);
/* "Chapter 12", "CHAPTER IV", "Chapter One: ..." as a whole line. */
int kk_doc_is_chapter_line(const char *s, size_t n);

/* Format back ends. */
kokoro_status kk_text_open(kokoro_document *doc, char *buf, size_t len);
kokoro_status kk_text_chapter(kokoro_document *doc, size_t i, kk_textbuf *tb);
kokoro_status kk_epub_open(kokoro_document *doc, const char *path);
kokoro_status kk_epub_chapter(kokoro_document *doc, size_t i, kk_textbuf *tb);
void kk_epub_free(kk_epub *e);
kokoro_status kk_pdf_open(kokoro_document *doc, const char *path);
kokoro_status kk_pdf_chapter(kokoro_document *doc, size_t i, kk_textbuf *tb);
void kk_pdf_free(kk_pdf *p);

#endif
