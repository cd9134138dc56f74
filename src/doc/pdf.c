/* PDF with poppler-glib: the outline (nested) gives chapters, else "Chapter N"
 * lines, else fixed page groups. Repeated headers/footers and page numbers
 * are dropped and hyphenated line breaks joined. */
#include "doc/doc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairo.h>
#include <poppler.h>

#include "core/error.h"

#define PAGE_GROUP 20

struct kk_pdf {
    PopplerDocument *pd;
    int n_pages;
    char *header, *footer; /* normalised repeated first / last line, or NULL */
};

typedef struct page_lines {
    char *buf;
    char **line;
    float *size;    /* largest font size on each line, when asked for */
    size_t n;
    size_t max_len;
} page_lines;

/* Poppler reports every syntax error it recovers from (G_LOG_LEVEL_INFO on
 * the "Poppler" domain, formatted before anyone can ignore it) and never gives
 * up: a damaged content stream can produce millions of them a page, seconds
 * each time the page is read. Counting them per thread (poppler-glib runs on
 * the caller's thread) lets us stop after the first such page instead of
 * reading it once per pass. The first few still reach GLib's default handler,
 * so G_MESSAGES_DEBUG=Poppler shows them. */
static _Thread_local unsigned long poppler_errors;

static void poppler_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    if (++poppler_errors <= 20) g_log_default_handler(domain, level, msg, data);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void log_init(void) { g_log_set_handler("Poppler", G_LOG_LEVEL_INFO, poppler_log, NULL); }

/* Lower case, digits as '#', white space collapsed: "Page 12 of 30" → "page ## of ##". */
static char *normalise(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) {
            if (o && out[o - 1] != ' ') out[o++] = ' ';
        } else {
            out[o++] = isdigit(c) ? '#' : (char)tolower(c);
        }
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = '\0';
    return out;
}

/* raw may be NULL; when given, Roman numerals count only in lower case
 * ("iv" is a front-matter page number, "IV" a section heading). */
static int is_page_number(const char *norm, const char *raw)
{
    const char *p = norm;
    if (strncmp(p, "page ", 5) == 0) p += 5;
    while (*p == '-' || *p == ' ' || *p == '[' || *p == '(') p++;
    const char *d = p;
    while (*p == '#') p++;
    if (p == d) {
        while (*p && strchr("ivxlcdm", *p)) p++;
        if (p == d || p - d > 6) return 0;
        for (const char *r = raw; r && *r; r++)
            if (*r >= 'A' && *r <= 'Z') return 0;
    }
    if (strncmp(p, " of ", 4) == 0) {
        p += 4;
        while (*p == '#') p++;
    }
    while (*p == '-' || *p == ' ' || *p == ']' || *p == ')') p++;
    return *p == '\0';
}

static void lines_free(page_lines *pl)
{
    free(pl->buf);
    free(pl->line);
    free(pl->size);
    memset(pl, 0, sizeof *pl);
}

/* The page's lines, trimmed, empty ones kept as ""; with clean set the
 * header, footer and page-number lines are dropped. */
static kokoro_status get_lines_sized(kokoro_document *doc, int page, int clean, int sizes, page_lines *pl);

static kokoro_status get_lines(kokoro_document *doc, int page, int clean, page_lines *pl)
{
    return get_lines_sized(doc, page, clean, 0, pl);
}

/* Font size per line from poppler's attribute runs, which index the page
 * text by character (code point). */
static int line_sizes(PopplerPage *pg, const char *t, size_t len, size_t n_lines, float **out)
{
    float *size = calloc(n_lines ? n_lines : 1, sizeof *size);
    size_t n_chars = 0;
    for (size_t i = 0; i < len; i++) n_chars += ((unsigned char)t[i] & 0xC0) != 0x80;
    size_t *line_of = malloc((n_chars ? n_chars : 1) * sizeof *line_of);
    if (!size || !line_of) {
        free(size);
        free(line_of);
        return 0;
    }
    size_t ci = 0, li = 0;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)t[i] & 0xC0) == 0x80) continue;
        line_of[ci++] = li;
        if (t[i] == '\n' && li + 1 < n_lines) li++;
    }
    GList *attrs = poppler_page_get_text_attributes(pg);
    for (GList *a = attrs; a; a = a->next) {
        const PopplerTextAttributes *ta = a->data;
        for (gint c = ta->start_index < 0 ? 0 : ta->start_index; c <= ta->end_index && (size_t)c < n_chars; c++)
            if ((float)ta->font_size > size[line_of[c]]) size[line_of[c]] = (float)ta->font_size;
    }
    poppler_page_free_text_attributes(attrs);
    free(line_of);
    *out = size;
    return 1;
}

static kokoro_status get_lines_sized(kokoro_document *doc, int page, int clean, int sizes, page_lines *pl)
{
    kk_pdf *pdf = doc->pdf;
    memset(pl, 0, sizeof *pl);
    PopplerPage *pg = poppler_document_get_page(pdf->pd, page);
    if (!pg) return kk_error(KOKORO_ERR_FORMAT, "%s: page %d cannot be read", doc->name, page + 1);
    poppler_errors = 0;
    char *t = poppler_page_get_text(pg);
    if (poppler_errors > KK_DOC_MAX_PDF_ERRORS) {
        g_object_unref(pg);
        g_free(t);
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: page %d: poppler recovered from %lu syntax errors (limit %d); the PDF is damaged "
                        "(repair it, e.g. with qpdf or by printing it to a new PDF)",
                        doc->name, page + 1, poppler_errors, KK_DOC_MAX_PDF_ERRORS);
    }
    size_t len = t ? strlen(t) : 0;
    if (sizes) {
        size_t n_lines = 1;
        for (size_t i = 0; i < len; i++) n_lines += t[i] == '\n';
        if (!line_sizes(pg, t ? t : "", len, n_lines, &pl->size)) {
            g_object_unref(pg);
            g_free(t);
            return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        }
    }
    g_object_unref(pg);
    pl->buf = malloc(len + 1);
    if (!pl->buf) {
        g_free(t);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    if (len) memcpy(pl->buf, t, len);
    pl->buf[len] = '\0';
    g_free(t);
    if (kk_doc_utf8_invalid(pl->buf, len) != (size_t)-1) { /* poppler promises UTF-8; do not trust blindly */
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)pl->buf[i] >= 0x80) pl->buf[i] = '?';
    }
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += pl->buf[i] == '\n';
    pl->line = malloc(cap * sizeof *pl->line);
    if (!pl->line) {
        lines_free(pl);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    char *p = pl->buf;
    for (;;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        char *s = p;
        while (isspace((unsigned char)*s)) s++;
        size_t l = strlen(s);
        while (l && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
        pl->line[pl->n++] = s;
        if (l > pl->max_len) pl->max_len = l;
        if (!nl) break;
        p = nl + 1;
    }
    if (!clean) return KOKORO_OK;
    for (int end = 0; end < 2; end++) {
        const char *pattern = end ? pdf->footer : pdf->header;
        for (int k = 0; k < 2; k++) {
            size_t i = 0;
            if (end) {
                while (pl->n && !*pl->line[pl->n - 1]) pl->n--;
                if (!pl->n) break;
                i = pl->n - 1;
            } else {
                while (i < pl->n && !*pl->line[i]) i++;
                if (i == pl->n) break;
            }
            char *norm = normalise(pl->line[i]);
            if (!norm) break;
            int drop = is_page_number(norm, pl->line[i]) || (pattern && strcmp(norm, pattern) == 0);
            free(norm);
            if (!drop) break;
            if (!end) {
                memmove(pl->line + i, pl->line + i + 1, (pl->n - i - 1) * sizeof *pl->line);
                if (pl->size) memmove(pl->size + i, pl->size + i + 1, (pl->n - i - 1) * sizeof *pl->size);
            }
            pl->n--;
        }
    }
    /* leading blank lines go too, so a heading at the top of a page is line 0 */
    size_t lead = 0;
    while (lead < pl->n && !*pl->line[lead]) lead++;
    if (lead) {
        memmove(pl->line, pl->line + lead, (pl->n - lead) * sizeof *pl->line);
        if (pl->size) memmove(pl->size, pl->size + lead, (pl->n - lead) * sizeof *pl->size);
        pl->n -= lead;
    }
    return KOKORO_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The most frequent string if it occurs on at least half the pages (and 3). */
static char *repeated(char **v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    int best = 0, bi = -1;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && strcmp(v[j], v[i]) == 0) j++;
        if (j - i > best && *v[i]) best = j - i, bi = i;
        i = j;
    }
    if (bi < 0 || best < 3 || 2 * best < n) return NULL;
    return kk_strndup(v[bi], strlen(v[bi]));
}

/* One pass over every page: text layer present, header and footer patterns,
 * and (body != NULL) the body font size: the size most characters use. */
static kokoro_status scan_pages(kokoro_document *doc, float *body)
{
    size_t hist[201] = {0}; /* half points up to 100 pt, weighted by characters */
    kk_pdf *pdf = doc->pdf;
    int n = pdf->n_pages;
    char **first = calloc((size_t)n, sizeof *first), **last = calloc((size_t)n, sizeof *last);
    size_t visible = 0;
    kokoro_status st = KOKORO_OK;
    if (!first || !last) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        goto done;
    }
    for (int p = 0; p < n; p++) {
        page_lines pl;
        st = get_lines_sized(doc, p, 0, body != NULL, &pl);
        if (st != KOKORO_OK) goto done;
        for (size_t i = 0; body && i < pl.n; i++) {
            int bin = (int)(pl.size[i] * 2.0f + 0.5f);
            if (bin > 0 && bin <= 200) hist[bin] += strlen(pl.line[i]);
        }
        size_t a = 0, b = pl.n;
        while (a < b && !*pl.line[a]) a++;
        while (b > a && !*pl.line[b - 1]) b--;
        for (size_t i = a; i < b; i++) visible += strlen(pl.line[i]);
        first[p] = normalise(a < b ? pl.line[a] : "");
        last[p] = normalise(a < b ? pl.line[b - 1] : "");
        lines_free(&pl);
        if (!first[p] || !last[p]) {
            st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            goto done;
        }
    }
    if (visible == 0) {
        st = kk_error(KOKORO_ERR_FORMAT,
                      "%s: no text layer: its %d page%s hold only images (scanned?); run OCR on it first", doc->name,
                      n, n == 1 ? "" : "s");
        goto done;
    }
    if (body) {
        int mode = 0;
        for (int bin = 1; bin <= 200; bin++)
            if (hist[bin] > hist[mode]) mode = bin;
        *body = (float)mode / 2.0f;
    }
    pdf->header = repeated(first, n);
    pdf->footer = repeated(last, n);
    if (pdf->header && is_page_number(pdf->header, NULL)) free(pdf->header), pdf->header = NULL;
    if (pdf->footer && is_page_number(pdf->footer, NULL)) free(pdf->footer), pdf->footer = NULL;
done:
    for (int p = 0; first && last && p < n; p++) {
        free(first[p]);
        free(last[p]);
    }
    free(first);
    free(last);
    return st;
}

/* ---- outline ---- */

typedef struct outline_entry {
    char *title;
    int level, page;
} outline_entry;

typedef struct outline {
    outline_entry *e;
    size_t n, cap;
} outline;

static int outline_walk(kokoro_document *doc, PopplerIndexIter *it, int level, outline *o)
{
    if (level > 64) return 1;
    do {
        PopplerAction *a = poppler_index_iter_get_action(it);
        if (a && a->type == POPPLER_ACTION_GOTO_DEST && a->goto_dest.title) {
            PopplerDest *d = a->goto_dest.dest;
            int page = -1;
            if (d && d->type == POPPLER_DEST_NAMED && d->named_dest) {
                PopplerDest *nd = poppler_document_find_dest(doc->pdf->pd, d->named_dest);
                if (nd) {
                    page = nd->page_num;
                    poppler_dest_free(nd);
                }
            } else if (d) {
                page = d->page_num;
            }
            if (page < 1 || page > doc->pdf->n_pages) {
                kk_doc_warn(doc, "outline entry \"%s\" points to no page of the document; ignored", a->goto_dest.title);
            } else if (o->n < KK_DOC_MAX_CHAPTERS) {
                if (o->n == o->cap) {
                    size_t cap = o->cap ? o->cap * 2 : 32;
                    outline_entry *p = realloc(o->e, cap * sizeof *p);
                    if (!p) {
                        poppler_action_free(a);
                        return 0;
                    }
                    o->e = p;
                    o->cap = cap;
                }
                char *t = kk_strndup(a->goto_dest.title, strlen(a->goto_dest.title));
                if (!t) {
                    poppler_action_free(a);
                    return 0;
                }
                o->e[o->n++] = (outline_entry){t, level, page - 1};
            }
        }
        if (a) poppler_action_free(a);
        PopplerIndexIter *ch = poppler_index_iter_get_child(it);
        if (ch) {
            int ok = outline_walk(doc, ch, level + 1, o);
            poppler_index_iter_free(ch);
            if (!ok) return 0;
        }
    } while (poppler_index_iter_next(it));
    return 1;
}

static char *squash(const char *s)
{
    char *n = normalise(s);
    if (!n) return NULL;
    /* compare words only: drop everything but letters, digits and non-ASCII */
    size_t o = 0;
    for (size_t i = 0; n[i]; i++)
        if (isalnum((unsigned char)n[i]) || n[i] == '#' || (unsigned char)n[i] >= 0x80) n[o++] = n[i];
    n[o] = '\0';
    return n;
}

/* The line of page where a heading titled t starts, from line `from`; -1 if none. */
static long find_title_line(const page_lines *pl, const char *t, size_t from)
{
    char *want = squash(t);
    if (!want || !*want) {
        free(want);
        return -1;
    }
    size_t wl = strlen(want);
    long found = -1;
    for (size_t i = from; i < pl->n && found < 0; i++) {
        char *have = squash(pl->line[i]);
        if (!have) break;
        size_t hl = strlen(have);
        /* "2.1 Foo" ends with "foo"; a long title may wrap: the line is its start */
        if (hl && ((hl >= wl && strcmp(have + hl - wl, want) == 0) || (hl >= 8 && hl < wl && strncmp(want, have, hl) == 0)))
            found = (long)i;
        free(have);
    }
    free(want);
    return found;
}

static int is_section_number(const char *l)
{
    size_t n = strlen(l);
    if (n == 0 || n > 12) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)l[i]) && l[i] != '.') return 0;
    return 1;
}

static kokoro_status chapters_from_outline(kokoro_document *doc, outline *o)
{
    int cached = -1;
    page_lines pl = {0};
    int prev_page = -1;
    long prev_line = -1;
    for (size_t i = 0; i < o->n; i++) {
        outline_entry *e = &o->e[i];
        if (e->page != cached) {
            lines_free(&pl);
            kokoro_status st = get_lines(doc, e->page, 1, &pl);
            if (st != KOKORO_OK) return st;
            cached = e->page;
        }
        size_t from = e->page == prev_page ? (size_t)(prev_line + 1) : 0;
        long line = find_title_line(&pl, e->title, from);
        kk_doc_chapter *c;
        kokoro_status st = kk_doc_add_chapter(doc, e->title, strlen(e->title), e->level, &c);
        if (st != KOKORO_OK) {
            lines_free(&pl);
            return st;
        }
        c->pdf_heading = line >= 0;
        if (line > (long)from && is_section_number(pl.line[line - 1])) {
            line--; /* "2" on the line above "Bar": the heading's number */
            c->pdf_heading = 2;
        }
        if (line < 0) line = e->page == prev_page ? prev_line : 0;
        if (line < 0) line = 0;
        c->spine_start = e->page;
        c->off = (size_t)line;
        prev_page = e->page;
        prev_line = line;
    }
    lines_free(&pl);
    for (size_t i = 0; i < doc->n_ch; i++) {
        kk_doc_chapter *c = &doc->ch[i], *n = i + 1 < doc->n_ch ? &doc->ch[i + 1] : NULL;
        if (!n) {
            c->spine_end = doc->pdf->n_pages; /* to the end */
            c->n = 0;
        } else if (n->spine_start > c->spine_start || (n->spine_start == c->spine_start && n->off >= c->off)) {
            c->spine_end = n->spine_start;
            c->n = n->off;
        } else { /* out of order: its first page only */
            c->spine_end = c->spine_start + 1;
            c->n = 0;
        }
        c->first_page = c->spine_start + 1;
        c->last_page = c->n > 0 ? c->spine_end + 1 : c->spine_end;
        if (c->last_page < c->first_page) c->last_page = c->first_page;
    }
    return KOKORO_OK;
}

/* ---- without an outline ---- */

static const char *title_or_name(kokoro_document *doc)
{
    const char *t = kokoro_document_meta(doc, "title", 0);
    if (t) return t;
    const char *b = strrchr(doc->name, '/');
    return b ? b + 1 : doc->name;
}

static kokoro_status add_span(kokoro_document *doc, const char *title, int sp, size_t sl, int heading)
{
    kk_doc_chapter *c;
    kokoro_status st = kk_doc_add_chapter(doc, title, strlen(title), 1, &c);
    if (st != KOKORO_OK) return st;
    c->spine_start = sp;
    c->off = sl;
    c->pdf_heading = heading;
    return KOKORO_OK;
}

static void close_spans(kokoro_document *doc)
{
    for (size_t i = 0; i < doc->n_ch; i++) {
        kk_doc_chapter *c = &doc->ch[i], *n = i + 1 < doc->n_ch ? &doc->ch[i + 1] : NULL;
        c->spine_end = n ? n->spine_start : doc->pdf->n_pages;
        c->n = n ? n->off : 0;
        c->first_page = c->spine_start + 1;
        c->last_page = c->n > 0 ? c->spine_end + 1 : c->spine_end;
        if (c->last_page < c->first_page) c->last_page = c->first_page;
    }
}

static int ends_sentence(const char *s)
{
    size_t l = strlen(s);
    return l == 0 || strchr(".!?:\"')", s[l - 1]) != NULL || (unsigned char)s[l - 1] >= 0x80;
}

/* Heading candidates of one kind, found in the single pass over the pages. */
typedef struct heading {
    char *title;
    int page, lines;
    size_t line;
} heading;

typedef struct heading_list {
    heading *h;
    size_t n, cap;
    int text_before; /* non-empty lines before the first heading */
    int overflow;    /* too many to be headings */
} heading_list;

static int heading_add(heading_list *l, const char *title, int page, size_t line)
{
    if (l->overflow) return 1;
    if (l->n >= KK_DOC_MAX_CHAPTERS) {
        l->overflow = 1;
        return 1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        heading *p = realloc(l->h, cap * sizeof *p);
        if (!p) return 0;
        l->h = p;
        l->cap = cap;
    }
    char *t = kk_strndup(title, strlen(title));
    if (!t) return 0;
    l->h[l->n++] = (heading){t, page, 1, line};
    return 1;
}

/* Appends one more line to the last heading's title. */
static int heading_extend(heading_list *l, const char *more)
{
    heading *h = &l->h[l->n - 1];
    size_t a = strlen(h->title), b = strlen(more);
    char *t = realloc(h->title, a + b + 2);
    if (!t) return 0;
    t[a] = ' ';
    memcpy(t + a + 1, more, b + 1);
    h->title = t;
    h->lines++;
    return 1;
}

static void headings_free(heading_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->h[i].title);
    free(l->h);
}

static kokoro_status chapters_from_headings(kokoro_document *doc, const heading_list *l)
{
    if (l->text_before) {
        kokoro_status st = add_span(doc, title_or_name(doc), 0, 0, 0);
        if (st != KOKORO_OK) return st;
    }
    for (size_t i = 0; i < l->n; i++) {
        kokoro_status st = add_span(doc, l->h[i].title, l->h[i].page, l->h[i].line, l->h[i].lines);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

/* Without an outline, in one pass over the pages: "Chapter N" lines, and
 * headings by size (short lines set at least 1.3 times the body size, the
 * size most characters use; adjacent ones make one title). Chapter lines
 * win; size headings count when there are two or more; else page groups. */
static kokoro_status chapters_by_heuristic(kokoro_document *doc, float body)
{
    int n = doc->pdf->n_pages;
    heading_list ch = {0}, big = {0};
    kokoro_status st = KOKORO_OK;
    int big_page = -1;
    size_t big_next = 0; /* the line right after the last size heading */
    for (int p = 0; p < n && st == KOKORO_OK; p++) {
        page_lines pl;
        st = get_lines_sized(doc, p, 1, body > 0, &pl);
        if (st != KOKORO_OK) break;
        const char *prev = "";
        for (size_t i = 0; i < pl.n; i++) {
            const char *l = pl.line[i];
            size_t len = strlen(l);
            if (!*l) continue;
            if (len <= 60 && ends_sentence(prev) && kk_doc_is_chapter_line(l, len)) {
                if (!heading_add(&ch, l, p, i)) st = KOKORO_ERR_NOMEM;
            } else if (ch.n == 0) {
                ch.text_before = 1;
            }
            int letters = 0;
            for (const char *c = l; *c; c++) letters += isalpha((unsigned char)*c) || (unsigned char)*c >= 0x80;
            if (body > 0 && len <= 80 && letters > 0 && pl.size[i] >= body * 1.3f) {
                int ok = big.n && !big.overflow && big_page == p && big_next == i ? heading_extend(&big, l)
                                                                                 : heading_add(&big, l, p, i);
                if (!ok) st = KOKORO_ERR_NOMEM;
                big_page = p;
                big_next = i + 1;
            } else if (big.n == 0) {
                big.text_before = 1;
            }
            prev = l;
        }
        lines_free(&pl);
    }
    if (st == KOKORO_ERR_NOMEM) st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    if (st == KOKORO_OK && ch.n > 0 && !ch.overflow) st = chapters_from_headings(doc, &ch);
    else if (st == KOKORO_OK && big.n >= 2 && !big.overflow) st = chapters_from_headings(doc, &big);
    else if (st == KOKORO_OK && n <= PAGE_GROUP) st = add_span(doc, title_or_name(doc), 0, 0, 0);
    int groups = st == KOKORO_OK && doc->n_ch == 0 && n > PAGE_GROUP;
    for (int p = 0; groups && st == KOKORO_OK && p < n; p += PAGE_GROUP) {
        char t[64];
        int e = p + PAGE_GROUP < n ? p + PAGE_GROUP : n;
        snprintf(t, sizeof t, "Pages %d\xE2\x80\x93%d", p + 1, e);
        st = add_span(doc, t, p, 0, 0);
    }
    headings_free(&ch);
    headings_free(&big);
    if (st == KOKORO_OK) close_spans(doc);
    return st;
}

/* ---- text ---- */

kokoro_status kk_pdf_chapter(kokoro_document *doc, size_t i, kk_textbuf *tb)
{
    const kk_doc_chapter *c = &doc->ch[i];
    int hyphen = 0, heading = c->pdf_heading;
    for (int p = c->spine_start; p <= c->spine_end && p < doc->pdf->n_pages; p++) {
        if (p == c->spine_end && c->n == 0) break;
        page_lines pl;
        kokoro_status st = get_lines(doc, p, 1, &pl);
        if (st != KOKORO_OK) return st;
        size_t from = p == c->spine_start ? c->off : 0;
        size_t to = p == c->spine_end ? c->n : pl.n;
        if (to > pl.n) to = pl.n;
        for (size_t k = from; k < to; k++) {
            const char *l = pl.line[k];
            size_t len = strlen(l);
            if (!len) {
                kk_tb_para(tb);
                hyphen = 0;
                continue;
            }
            if (hyphen && islower((unsigned char)l[0]) && tb->len && tb->p[tb->len - 1] == '-') {
                tb->len--; /* "extra-\nordinary" → "extraordinary" */
                tb->pending = 0;
            }
            kk_tb_text(tb, l, len);
            hyphen = len > 1 && l[len - 1] == '-' && isalpha((unsigned char)l[len - 2]);
            if (heading > 0) {
                if (--heading == 0) kk_tb_para(tb); /* the heading is a paragraph of its own */
                else if (tb->pending < 1) tb->pending = 1;
            } else if (len * 10 < pl.max_len * 7 && ends_sentence(l)) {
                kk_tb_para(tb); /* a short line ending a sentence ends its paragraph */
            } else if (!hyphen && tb->pending < 1) {
                tb->pending = 1;
            }
        }
        lines_free(&pl);
    }
    return KOKORO_OK;
}

/* ---- cover: the first page as a PNG ---- */

typedef struct png_buf {
    unsigned char *p;
    size_t len, cap;
} png_buf;

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int n)
{
    png_buf *b = closure;
    if (b->len + n > KK_DOC_MAX_COVER) return CAIRO_STATUS_WRITE_ERROR;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) return CAIRO_STATUS_NO_MEMORY;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* Rendered at most 1200 pixels on the long side, on white; a failure only
 * means no cover. */
static void render_cover(kokoro_document *doc)
{
    PopplerPage *pg = poppler_document_get_page(doc->pdf->pd, 0);
    if (!pg) return;
    double w = 0, h = 0;
    poppler_page_get_size(pg, &w, &h);
    if (!(w > 1 && h > 1 && w < 15000 && h < 15000)) {
        g_object_unref(pg);
        return;
    }
    double scale = 1200.0 / (w > h ? w : h);
    if (scale > 2.0) scale = 2.0;
    int pw = (int)(w * scale + 0.5), ph = (int)(h * scale + 0.5);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw > 0 ? pw : 1, ph > 0 ? ph : 1);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    poppler_page_render(pg, cr);
    cairo_destroy(cr);
    g_object_unref(pg);
    png_buf b = {0};
    if (cairo_surface_status(surf) == CAIRO_STATUS_SUCCESS &&
        cairo_surface_write_to_png_stream(surf, png_write, &b) == CAIRO_STATUS_SUCCESS &&
        kk_doc_image_mime(b.p, b.len)) {
        doc->cover = b.p;
        doc->cover_len = b.len;
        doc->cover_mime = "image/png";
    } else {
        free(b.p);
        kk_doc_warn(doc, "the first page could not be rendered as a cover");
    }
    cairo_surface_destroy(surf);
}

/* ---- open ---- */

static void add_meta_owned(kokoro_document *doc, const char *key, gchar *v)
{
    if (v && kk_doc_utf8_invalid(v, strlen(v)) == (size_t)-1) kk_doc_add_meta(doc, key, v);
    g_free(v);
}

kokoro_status kk_pdf_open(kokoro_document *doc, const char *path)
{
    kk_pdf *pdf = calloc(1, sizeof *pdf);
    if (!pdf) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    doc->pdf = pdf;
    GError *err = NULL;
    gchar *abs = g_canonicalize_filename(path, NULL);
    gchar *uri = abs ? g_filename_to_uri(abs, NULL, &err) : NULL;
    g_free(abs);
    if (!uri) {
        kokoro_status st = kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, err ? err->message : "no such file");
        if (err) g_error_free(err);
        return st;
    }
    pthread_once(&log_once, log_init);
    pdf->pd = poppler_document_new_from_file(uri, NULL, &err); /* poppler reads it as needed */
    g_free(uri);
    if (!pdf->pd) {
        kokoro_status st;
        if (err && g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
            st = kk_error(KOKORO_ERR_FORMAT, "%s: the PDF is encrypted (password protected); decrypt it first", path);
        else
            st = kk_error(KOKORO_ERR_FORMAT, "%s: not a readable PDF: %s", path, err ? err->message : "unknown error");
        if (err) g_error_free(err);
        return st;
    }
    pdf->n_pages = poppler_document_get_n_pages(pdf->pd);
    if (pdf->n_pages <= 0) return kk_error(KOKORO_ERR_FORMAT, "%s: the PDF has no pages", path);
    if (pdf->n_pages > KK_DOC_MAX_PAGES)
        return kk_error(KOKORO_ERR_FORMAT, "%s: %d pages, over the %d page limit", path, pdf->n_pages,
                        KK_DOC_MAX_PAGES);

    add_meta_owned(doc, "title", poppler_document_get_title(pdf->pd));
    add_meta_owned(doc, "creator", poppler_document_get_author(pdf->pd));
    add_meta_owned(doc, "description", poppler_document_get_subject(pdf->pd));
    time_t t = poppler_document_get_creation_date(pdf->pd);
    if (t > 0) {
        struct tm tm;
        char d[32];
        if (gmtime_r(&t, &tm) && strftime(d, sizeof d, "%Y-%m-%d", &tm)) kk_doc_add_meta(doc, "date", d);
    }

    kokoro_status st = KOKORO_OK;
    outline o = {0};
    PopplerIndexIter *it = poppler_index_iter_new(pdf->pd);
    if (it) {
        int ok = outline_walk(doc, it, 1, &o);
        poppler_index_iter_free(it);
        if (!ok) st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory reading the outline", path);
    }
    float body = 0;
    if (st == KOKORO_OK) st = scan_pages(doc, o.n ? NULL : &body);
    if (st == KOKORO_OK) st = o.n ? chapters_from_outline(doc, &o) : chapters_by_heuristic(doc, body);
    for (size_t i = 0; i < o.n; i++) free(o.e[i].title);
    free(o.e);
    if (st == KOKORO_OK) render_cover(doc);
    return st;
}

void kk_pdf_free(kk_pdf *pdf)
{
    if (!pdf) return;
    if (pdf->pd) g_object_unref(pdf->pd);
    free(pdf->header);
    free(pdf->footer);
    free(pdf);
}
