/* The public document API, shared helpers, front/back-matter rules,
 * chapter selection and the chapter listing. */
#include "doc/doc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

char *kk_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- text buffer ---- */

static int tb_reserve(kk_textbuf *tb, size_t extra)
{
    if (tb->failed) return 0;
    if (tb->len + extra + 1 > KK_DOC_MAX_TEXT) {
        tb->failed = 2;
        return 0;
    }
    if (tb->len + extra + 1 <= tb->cap) return 1;
    size_t cap = tb->cap ? tb->cap : 4096;
    while (cap < tb->len + extra + 1) cap *= 2;
    char *p = realloc(tb->p, cap);
    if (!p) {
        tb->failed = 1;
        return 0;
    }
    tb->p = p;
    tb->cap = cap;
    return 1;
}

void kk_tb_raw(kk_textbuf *tb, const char *s, size_t n)
{
    if (!tb_reserve(tb, n)) return;
    memcpy(tb->p + tb->len, s, n);
    tb->len += n;
}

static void tb_flush_pending(kk_textbuf *tb)
{
    if (tb->len > 0) {
        if (tb->pending == 1) kk_tb_raw(tb, " ", 1);
        else if (tb->pending == 2) kk_tb_raw(tb, "\n", 1);
        else if (tb->pending == 3) kk_tb_raw(tb, "\n\n", 2);
    }
    tb->pending = 0;
}

void kk_tb_text(kk_textbuf *tb, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        size_t wlen = 1;
        if (!ws && c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) { /* no-break space */
            ws = 1;
            wlen = 2;
        }
        if (ws) {
            if (tb->pending < 1) tb->pending = 1;
            i += wlen;
            continue;
        }
        size_t j = i;
        while (j < n) {
            unsigned char d = (unsigned char)s[j];
            if (d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '\f' || d == '\v') break;
            if (d == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0) break;
            j++;
        }
        tb_flush_pending(tb);
        kk_tb_raw(tb, s + i, j - i);
        i = j;
    }
}

void kk_tb_para(kk_textbuf *tb) { tb->pending = 3; }

void kk_tb_line(kk_textbuf *tb)
{
    if (tb->pending < 2) tb->pending = 2;
}

kokoro_status kk_tb_take(kk_textbuf *tb, const char *what, char **text, size_t *len)
{
    if (tb->failed == 2) {
        kk_tb_free(tb);
        return kk_error(KOKORO_ERR_FORMAT, "%s: text longer than %zu MiB", what, KK_DOC_MAX_TEXT >> 20);
    }
    if (!tb_reserve(tb, 0)) {
        kk_tb_free(tb);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory building the text", what);
    }
    tb->p[tb->len] = '\0';
    *text = tb->p;
    if (len) *len = tb->len;
    memset(tb, 0, sizeof *tb);
    return KOKORO_OK;
}

void kk_tb_free(kk_textbuf *tb)
{
    free(tb->p);
    memset(tb, 0, sizeof *tb);
}

/* ---- small helpers ---- */

const char *kk_doc_image_mime(const unsigned char *p, size_t n)
{
    if (n > 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    if (n > 8 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return "image/jpeg";
    if (n > 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "image/webp";
    return NULL;
}

size_t kk_doc_utf8_invalid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k + 1;
    }
    return (size_t)-1;
}

char *kk_doc_utf8_repair(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(3 * n + 1); /* every bad byte may become U+FFFD */
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        size_t bad = kk_doc_utf8_invalid(s + i, n - i);
        size_t good = bad == (size_t)-1 ? n - i : bad;
        memcpy(out + o, s + i, good);
        o += good;
        i += good;
        if (i < n) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

char *kk_doc_clean_title(const char *s, size_t n)
{
    kk_textbuf tb = {0};
    kk_tb_text(&tb, s, n);
    char *out;
    if (kk_tb_take(&tb, "title", &out, NULL) != KOKORO_OK) return NULL;
    for (size_t i = 0; out[i]; i++)  /* zero-width spaces read as spaces in titles */
        if ((unsigned char)out[i] == 0xE2 && (unsigned char)out[i + 1] == 0x80 &&
            (unsigned char)out[i + 2] == 0x8B) {
            out[i] = ' ';
            memmove(out + i + 1, out + i + 3, strlen(out + i + 3) + 1);
        }
    return out;
}

static int is_cjk(unsigned cp)
{
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) ||
           (cp >= 0xF900 && cp <= 0xFAFF);
}

/* Words are runs between white space; scripts written without spaces count
 * one word per two characters (about their reading pace relative to English). */
long kk_doc_count_words(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    long words = 0, cjk = 0;
    int in_word = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + k > n) k = n - i;
        unsigned cp = c;
        if (k == 3) cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            in_word = 0;
        } else if (k == 3 && is_cjk(cp)) {
            cjk++;
            in_word = 0;
        } else if (!in_word) {
            words++;
            in_word = 1;
        }
        i += k;
    }
    return words + (cjk + 1) / 2;
}

/* ---- document object ---- */

kokoro_document *kk_doc_new(kokoro_document_type type, const char *name)
{
    kokoro_document *doc = calloc(1, sizeof *doc);
    if (!doc) return NULL;
    doc->type = type;
    doc->name = kk_strndup(name, strlen(name));
    if (!doc->name) {
        free(doc);
        return NULL;
    }
    return doc;
}

kokoro_status kk_doc_add_chapter(kokoro_document *doc, const char *title, size_t title_len, int level,
                                 kk_doc_chapter **out)
{
    *out = NULL;
    if (doc->n_ch >= KK_DOC_MAX_CHAPTERS)
        return kk_error(KOKORO_ERR_FORMAT, "%s: more than %d chapters", doc->name, KK_DOC_MAX_CHAPTERS);
    if (doc->n_ch == doc->cap_ch) {
        size_t cap = doc->cap_ch ? doc->cap_ch * 2 : 16;
        kk_doc_chapter *p = realloc(doc->ch, cap * sizeof *p);
        if (!p) goto nomem;
        doc->ch = p;
        doc->cap_ch = cap;
    }
    kk_doc_chapter *c = &doc->ch[doc->n_ch];
    memset(c, 0, sizeof *c);
    c->title = kk_doc_clean_title(title, title_len);
    if (c->title && !c->title[0]) { /* a TOC entry that is only an image, an empty outline entry */
        char t[32];
        snprintf(t, sizeof t, "Chapter %zu", doc->n_ch + 1);
        free(c->title);
        c->title = kk_strndup(t, strlen(t));
    }
    c->reason = kk_strndup("", 0);
    if (!c->title || !c->reason) {
        free(c->title);
        free(c->reason);
        goto nomem;
    }
    c->level = level < 1 ? 1 : level;
    c->words = -1;
    c->spine_start = c->spine_end = -1;
    doc->n_ch++;
    *out = c;
    return KOKORO_OK;
nomem:
    return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
}

kokoro_status kk_doc_add_meta(kokoro_document *doc, const char *key, const char *value)
{
    if (doc->n_meta == doc->cap_meta) {
        size_t cap = doc->cap_meta ? doc->cap_meta * 2 : 8;
        char **k = realloc(doc->meta_key, cap * sizeof *k);
        if (!k) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        doc->meta_key = k;
        char **v = realloc(doc->meta_val, cap * sizeof *v);
        if (!v) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        doc->meta_val = v;
        doc->cap_meta = cap;
    }
    char *k = kk_strndup(key, strlen(key));
    char *v = kk_doc_clean_title(value, strlen(value));
    if (!k || !v) {
        free(k);
        free(v);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    if (!*v) { /* empty values carry nothing */
        free(k);
        free(v);
        return KOKORO_OK;
    }
    doc->meta_key[doc->n_meta] = k;
    doc->meta_val[doc->n_meta] = v;
    doc->n_meta++;
    return KOKORO_OK;
}

void kk_doc_warn(kokoro_document *doc, const char *fmt, ...)
{
    if (doc->n_warn >= 1000) return; /* a hostile book cannot flood memory with warnings */
    if (doc->n_warn == doc->cap_warn) {
        size_t cap = doc->cap_warn ? doc->cap_warn * 2 : 8;
        char **w = realloc(doc->warn, cap * sizeof *w);
        if (!w) return;
        doc->warn = w;
        doc->cap_warn = cap;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = kk_strndup(buf, strlen(buf));
    if (s) doc->warn[doc->n_warn++] = s;
}

/* ---- front and back matter by title ---- */

typedef struct matter_rule {
    const char *phrase;  /* lower case, words separated by one space */
    int whole_title;     /* 1: the title must be exactly this phrase */
    kokoro_matter matter;
} matter_rule;

static const matter_rule MATTER_RULES[] = {
    {"copyright", 0, KOKORO_MATTER_FRONT},
    {"title page", 0, KOKORO_MATTER_FRONT},
    {"half title", 0, KOKORO_MATTER_FRONT},
    {"dedication", 0, KOKORO_MATTER_FRONT},
    {"table of contents", 0, KOKORO_MATTER_FRONT},
    {"acknowledgements", 0, KOKORO_MATTER_FRONT},
    {"acknowledgments", 0, KOKORO_MATTER_FRONT},
    {"acknowledgement", 0, KOKORO_MATTER_FRONT},
    {"acknowledgment", 0, KOKORO_MATTER_FRONT},
    {"epigraph", 0, KOKORO_MATTER_FRONT},
    {"legal notice", 0, KOKORO_MATTER_FRONT},
    {"contents", 1, KOKORO_MATTER_FRONT},
    {"toc", 1, KOKORO_MATTER_FRONT},
    {"cover", 1, KOKORO_MATTER_FRONT},
    {"front cover", 1, KOKORO_MATTER_FRONT},
    {"imprint", 1, KOKORO_MATTER_FRONT},
    {"about the author", 0, KOKORO_MATTER_BACK},
    {"about the authors", 0, KOKORO_MATTER_BACK},
    {"also by", 0, KOKORO_MATTER_BACK},
    {"other books by", 0, KOKORO_MATTER_BACK},
    {"colophon", 0, KOKORO_MATTER_BACK},
    {"index", 1, KOKORO_MATTER_BACK},
    {"back cover", 1, KOKORO_MATTER_BACK},
};

/* " word word " in lower case: ASCII letters and digits and every non-ASCII
 * byte are word characters; apostrophes vanish (author's → authors). */
static char *normalise_words(const char *t)
{
    size_t n = strlen(t);
    char *out = malloc(n + 3);
    if (!out) return NULL;
    size_t o = 0;
    out[o++] = ' ';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\'') continue;
        if (c == 0xE2 && i + 2 < n && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0x99) {
            i += 2; /* ’ */
            continue;
        }
        if (isalnum(c) || c >= 0x80) out[o++] = (char)tolower(c);
        else if (out[o - 1] != ' ') out[o++] = ' ';
    }
    if (out[o - 1] != ' ') out[o++] = ' ';
    out[o] = '\0';
    return out;
}

void kk_doc_classify_titles(kokoro_document *doc)
{
    for (size_t i = 0; i < doc->n_ch; i++) {
        kk_doc_chapter *c = &doc->ch[i];
        if (c->matter != KOKORO_MATTER_BODY) continue;
        char *w = normalise_words(c->title);
        if (!w) continue;
        for (size_t r = 0; r < sizeof MATTER_RULES / sizeof MATTER_RULES[0]; r++) {
            const matter_rule *m = &MATTER_RULES[r];
            char pat[64];
            snprintf(pat, sizeof pat, " %s ", m->phrase);
            int hit = m->whole_title ? strcmp(w, pat) == 0 : strstr(w, pat) != NULL;
            if (!hit) continue;
            char reason[128];
            snprintf(reason, sizeof reason, "title %s \"%s\"", m->whole_title ? "is" : "has", m->phrase);
            char *s = kk_strndup(reason, strlen(reason));
            if (!s) break;
            free(c->reason);
            c->reason = s;
            c->matter = m->matter;
            break;
        }
        free(w);
    }
}

/* ---- public API ---- */

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    if (n < e) return 0;
    for (size_t i = 0; i < e; i++)
        if (tolower((unsigned char)path[n - e + i]) != ext[i]) return 0;
    return 1;
}

static int is_markdown_name(const char *name)
{
    return name && (has_ext(name, ".md") || has_ext(name, ".markdown"));
}

kokoro_status kokoro_document_open_text(const char *buf, size_t len, const char *name, kokoro_document **out)
{
    if (!out || (!buf && len)) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_open_text: NULL argument");
    *out = NULL;
    if (!name) name = "<text>";
    if (len > KK_DOC_MAX_TEXT)
        return kk_error(KOKORO_ERR_FORMAT, "%s: text of %zu bytes is over the %zu MiB limit", name, len,
                        KK_DOC_MAX_TEXT >> 20);
    kokoro_document *doc = kk_doc_new(is_markdown_name(name) ? KOKORO_DOC_MARKDOWN : KOKORO_DOC_TEXT, name);
    char *copy = malloc(len + 1);
    if (!doc || !copy) {
        free(copy);
        kokoro_document_free(doc);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
    }
    if (len) memcpy(copy, buf, len);
    copy[len] = '\0';
    kokoro_status st = kk_text_open(doc, copy, len);
    if (st != KOKORO_OK) {
        kokoro_document_free(doc);
        return st;
    }
    kk_doc_classify_titles(doc);
    *out = doc;
    return KOKORO_OK;
}

static kokoro_status read_whole(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) {
        fclose(f);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > KK_DOC_MAX_TEXT) {
                free(p);
                fclose(f);
                return kk_error(KOKORO_ERR_FORMAT, "%s: text file over the %zu MiB limit", path,
                                KK_DOC_MAX_TEXT >> 20);
            }
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                fclose(f);
                return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
            }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(p);
        return kk_error(KOKORO_ERR_IO, "%s: read error", path);
    }
    if (n > KK_DOC_MAX_TEXT) {
        free(p);
        return kk_error(KOKORO_ERR_FORMAT, "%s: text file over the %zu MiB limit", path, KK_DOC_MAX_TEXT >> 20);
    }
    *buf = p;
    *len = n;
    return KOKORO_OK;
}

kokoro_status kokoro_document_open(const char *path, kokoro_document **out)
{
    if (!path || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_open: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return kk_error(KOKORO_ERR_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    kokoro_document_type type;
    if (got >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) type = KOKORO_DOC_EPUB;
    else if (got >= 5 && memcmp(magic, "%PDF-", 5) == 0) type = KOKORO_DOC_PDF;
    else if (has_ext(path, ".epub")) type = KOKORO_DOC_EPUB;  /* let the zip reader say what is wrong */
    else if (has_ext(path, ".pdf")) type = KOKORO_DOC_PDF;
    else type = is_markdown_name(path) ? KOKORO_DOC_MARKDOWN : KOKORO_DOC_TEXT;

    kokoro_status st;
    if (type == KOKORO_DOC_TEXT || type == KOKORO_DOC_MARKDOWN) {
        char *buf = NULL;
        size_t len = 0;
        st = read_whole(path, &buf, &len);
        if (st != KOKORO_OK) return st;
        kokoro_document *doc = kk_doc_new(type, path);
        if (!doc) {
            free(buf);
            return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
        }
        st = kk_text_open(doc, buf, len);
        if (st != KOKORO_OK) {
            kokoro_document_free(doc);
            return st;
        }
        kk_doc_classify_titles(doc);
        *out = doc;
        return KOKORO_OK;
    }
    kokoro_document *doc = kk_doc_new(type, path);
    if (!doc) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    st = type == KOKORO_DOC_EPUB ? kk_epub_open(doc, path) : kk_pdf_open(doc, path);
    if (st != KOKORO_OK) {
        kokoro_document_free(doc);
        return st;
    }
    kk_doc_classify_titles(doc);
    *out = doc;
    return KOKORO_OK;
}

void kokoro_document_free(kokoro_document *doc)
{
    if (!doc) return;
    for (size_t i = 0; i < doc->n_ch; i++) {
        kk_doc_chapter *c = &doc->ch[i];
        free(c->title);
        free(c->reason);
        free(c->start_id);
        free(c->end_id);
        free(c->href);
    }
    free(doc->ch);
    for (size_t i = 0; i < doc->n_meta; i++) {
        free(doc->meta_key[i]);
        free(doc->meta_val[i]);
    }
    free(doc->meta_key);
    free(doc->meta_val);
    for (size_t i = 0; i < doc->n_warn; i++) free(doc->warn[i]);
    free(doc->warn);
    free(doc->cover);
    free(doc->buf);
    kk_epub_free(doc->epub);
    kk_pdf_free(doc->pdf);
    free(doc->name);
    free(doc);
}

kokoro_document_type kokoro_document_get_type(const kokoro_document *doc)
{
    return doc ? doc->type : KOKORO_DOC_TEXT;
}

size_t kokoro_document_chapter_count(const kokoro_document *doc) { return doc ? doc->n_ch : 0; }

kokoro_status kokoro_document_chapter_info(const kokoro_document *doc, size_t i, kokoro_chapter_info *info)
{
    if (!doc || !info) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_chapter_info: NULL argument");
    if (i >= doc->n_ch)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: chapter %zu does not exist (the document has %zu)", doc->name,
                        i + 1, doc->n_ch);
    const kk_doc_chapter *c = &doc->ch[i];
    info->title = c->title;
    info->level = c->level;
    info->word_count = c->words;
    info->matter = c->matter;
    info->matter_reason = c->reason;
    info->first_page = c->first_page;
    info->last_page = c->last_page;
    return KOKORO_OK;
}

kokoro_status kokoro_document_chapter_text(kokoro_document *doc, size_t i, char **text, size_t *len)
{
    if (!doc || !text) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_chapter_text: NULL argument");
    *text = NULL;
    if (len) *len = 0;
    if (i >= doc->n_ch)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: chapter %zu does not exist (the document has %zu)", doc->name,
                        i + 1, doc->n_ch);
    kk_textbuf tb = {0};
    kokoro_status st;
    switch (doc->type) {
    case KOKORO_DOC_EPUB: st = kk_epub_chapter(doc, i, &tb); break;
    case KOKORO_DOC_PDF: st = kk_pdf_chapter(doc, i, &tb); break;
    default: st = kk_text_chapter(doc, i, &tb); break;
    }
    if (st != KOKORO_OK) {
        kk_tb_free(&tb);
        return st;
    }
    char what[64];
    snprintf(what, sizeof what, "chapter %zu", i + 1);
    size_t n;
    st = kk_tb_take(&tb, what, text, &n);
    if (st != KOKORO_OK) return st;
    if (kk_doc_utf8_invalid(*text, n) != (size_t)-1) {
        /* a parser let bytes through that are not UTF-8: the text promised is UTF-8 */
        char *clean = kk_doc_utf8_repair(*text, n, &n);
        free(*text);
        *text = clean;
        if (!clean) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    if (len) *len = n;
    doc->ch[i].words = kk_doc_count_words(*text, n);
    return KOKORO_OK;
}

kokoro_status kokoro_document_count_words(kokoro_document *doc)
{
    if (!doc) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_count_words: NULL document");
    for (size_t i = 0; i < doc->n_ch; i++) {
        if (doc->ch[i].words >= 0) continue;
        char *t;
        kokoro_status st = kokoro_document_chapter_text(doc, i, &t, NULL);
        if (st != KOKORO_OK) return st;
        free(t);
    }
    return KOKORO_OK;
}

size_t kokoro_document_meta_count(const kokoro_document *doc, const char *key)
{
    if (!doc || !key) return 0;
    size_t n = 0;
    for (size_t i = 0; i < doc->n_meta; i++) n += strcmp(doc->meta_key[i], key) == 0;
    return n;
}

const char *kokoro_document_meta(const kokoro_document *doc, const char *key, size_t idx)
{
    if (!doc || !key) return NULL;
    for (size_t i = 0; i < doc->n_meta; i++)
        if (strcmp(doc->meta_key[i], key) == 0 && idx-- == 0) return doc->meta_val[i];
    return NULL;
}

kokoro_status kokoro_document_cover(const kokoro_document *doc, const unsigned char **data, size_t *len,
                                    const char **mime)
{
    if (!doc || !data || !len) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_cover: NULL argument");
    *data = doc->cover;
    *len = doc->cover_len;
    if (mime) *mime = doc->cover_mime;
    return KOKORO_OK;
}

const char *kokoro_document_warning(const kokoro_document *doc, size_t i)
{
    return doc && i < doc->n_warn ? doc->warn[i] : NULL;
}

/* ---- --select-chapters ---- */

static int parse_index(const char *s, size_t n, size_t total, size_t *out)
{
    if (n == 4 && strncmp(s, "last", 4) == 0) {
        *out = total;
        return 1;
    }
    if (n == 0 || n > 9) return 0;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return 0;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

kokoro_status kokoro_chapter_selection_parse(const char *spec, size_t n, unsigned char *mask)
{
    if (!spec || (!mask && n)) return kk_error(KOKORO_ERR_INVALID_ARG, "chapter selection: NULL argument");
    if (n == 0) return kk_error(KOKORO_ERR_INVALID_ARG, "chapter selection \"%s\": the document has no chapters", spec);
    memset(mask, 0, n);
    const char *p = spec;
    int any = 0;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        while (len && isspace((unsigned char)*s)) s++, len--;
        while (len && isspace((unsigned char)s[len - 1])) len--;
        if (len == 0)
            return kk_error(KOKORO_ERR_INVALID_ARG, "chapter selection \"%s\": empty item at offset %zu", spec,
                            (size_t)(s - spec));
        size_t a, b;
        if ((len == 3 && strncmp(s, "all", 3) == 0) || (len == 1 && *s == '*')) {
            a = 1;
            b = n;
        } else {
            const char *dash = memchr(s, '-', len);
            if (dash) {
                size_t l1 = (size_t)(dash - s), l2 = len - l1 - 1;
                while (l1 && isspace((unsigned char)s[l1 - 1])) l1--;
                const char *s2 = dash + 1;
                while (l2 && isspace((unsigned char)*s2)) s2++, l2--;
                if (!parse_index(s, l1, n, &a) || !parse_index(s2, l2, n, &b))
                    return kk_error(KOKORO_ERR_INVALID_ARG,
                                    "chapter selection \"%s\": \"%.*s\" is not a range A-B of chapter numbers", spec,
                                    (int)len, s);
            } else if (parse_index(s, len, n, &a)) {
                b = a;
            } else {
                return kk_error(KOKORO_ERR_INVALID_ARG,
                                "chapter selection \"%s\": \"%.*s\" is not a chapter number, a range A-B, "
                                "\"last\" or \"all\"",
                                spec, (int)len, s);
            }
            if (a < 1 || b < 1 || a > n || b > n)
                return kk_error(KOKORO_ERR_INVALID_ARG,
                                "chapter selection \"%s\": \"%.*s\" is out of range (chapters are 1 to %zu)", spec,
                                (int)len, s, n);
            if (a > b)
                return kk_error(KOKORO_ERR_INVALID_ARG, "chapter selection \"%s\": range \"%.*s\" runs backwards",
                                spec, (int)len, s);
        }
        for (size_t i = a; i <= b; i++) mask[i - 1] = 1;
        any = 1;
        if (!e) break;
        p = e + 1;
    }
    return any ? KOKORO_OK : kk_error(KOKORO_ERR_INVALID_ARG, "chapter selection \"%s\": nothing selected", spec);
}

/* ---- --list-chapters ---- */

static void fmt_duration(char *buf, size_t n, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

kokoro_status kokoro_document_format_listing(kokoro_document *doc, float speed, char **out)
{
    if (!doc || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_format_listing: NULL argument");
    *out = NULL;
    if (!(speed > 0.0f) || speed > 100.0f)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_document_format_listing: speed %g is not in (0, 100]",
                        (double)speed);
    kokoro_status st = kokoro_document_count_words(doc);
    if (st != KOKORO_OK) return st;
    kk_textbuf tb = {0};
    long total = 0;
    char line[1024], dur[32];
    for (size_t i = 0; i < doc->n_ch; i++) {
        const kk_doc_chapter *c = &doc->ch[i];
        total += c->words;
        fmt_duration(dur, sizeof dur, (double)c->words / (150.0 * speed) * 60.0);
        int indent = 2 * (c->level > 8 ? 8 : c->level);
        int m = snprintf(line, sizeof line, "%*s%zu. %s  (%ld words, ~%s)%s%s%s\n", indent, "", i + 1, c->title,
                         c->words, dur,
                         c->matter == KOKORO_MATTER_FRONT ? "  [front matter: "
                         : c->matter == KOKORO_MATTER_BACK ? "  [back matter: "
                                                           : "",
                         c->matter ? c->reason : "", c->matter ? "]" : "");
        if (m < 0) m = 0;
        if ((size_t)m >= sizeof line) { /* an enormous title: keep the line whole anyway */
            m = sizeof line - 1;
            line[m - 1] = '\n';
        }
        kk_tb_raw(&tb, line, (size_t)m);
    }
    fmt_duration(dur, sizeof dur, (double)total / (150.0 * speed) * 60.0);
    int m = snprintf(line, sizeof line, "%zu chapters, %ld words, ~%s at speed %g\n", doc->n_ch, total, dur,
                     (double)speed);
    kk_tb_raw(&tb, line, (size_t)m);
    return kk_tb_take(&tb, doc->name, out, NULL);
}
