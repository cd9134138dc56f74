/* Plain text and Markdown: "#" headings or "Chapter N" lines make chapters. */
#include "doc/doc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

static const char *const NUMBER_WORDS[] = {
    "one",    "two",     "three",  "four",    "five",    "six",      "seven",    "eight",    "nine",
    "ten",    "eleven",  "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty", "thirty", "forty",  "fifty",   "sixty",    "seventy",  "eighty",   "ninety",
    "hundred", "first",  "second", "third",   "fourth",  "fifth",    "sixth",    "seventh",  "eighth",
    "ninth",  "tenth",   "last",   "final",
};

/* "Chapter 12", "CHAPTER IV", "Chapter One: The Start": the word chapter,
 * then a number (digits, Roman, or an English number word), then nothing
 * or punctuation. */
int kk_doc_is_chapter_line(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n < 9 || n > 100 || strncasecmp(s, "chapter", 7) != 0) return 0;
    size_t i = 7;
    if (s[i] != ' ' && s[i] != '\t') return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t j = i;
    if (j < n && isdigit((unsigned char)s[j])) {
        while (j < n && isdigit((unsigned char)s[j])) j++;
    } else {
        while (j < n && strchr("IVXLCDMivxlcdm", s[j])) j++;
        if (j == i || (j < n && isalpha((unsigned char)s[j]))) {
            j = i;
            while (j < n && isalpha((unsigned char)s[j])) j++;
            int found = 0;
            for (size_t w = 0; w < sizeof NUMBER_WORDS / sizeof NUMBER_WORDS[0]; w++)
                if (strlen(NUMBER_WORDS[w]) == j - i && strncasecmp(s + i, NUMBER_WORDS[w], j - i) == 0) found = 1;
            if (!found) return 0;
        }
    }
    return j == n || !isalnum((unsigned char)s[j]);
}

/* Level of an ATX heading "## Title" (1..6) or 0. */
static int md_heading(const char *s, size_t n, size_t *title_off)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    size_t h = 0;
    while (i + h < n && s[i + h] == '#') h++;
    if (h < 1 || h > 6) return 0;
    size_t t = i + h;
    if (t < n && s[t] != ' ' && s[t] != '\t') return 0;
    while (t < n && (s[t] == ' ' || s[t] == '\t')) t++;
    if (t == n) return 0;
    *title_off = t;
    return (int)h;
}

static int is_fence(const char *s, size_t n)
{
    while (n && *s == ' ') s++, n--;
    return n >= 3 && (strncmp(s, "```", 3) == 0 || strncmp(s, "~~~", 3) == 0);
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static void md_inline(kk_textbuf *tb, const char *s, size_t n);

static kokoro_status add_range(kokoro_document *doc, const char *title, size_t tlen, int level, size_t off, size_t end)
{
    kk_doc_chapter *c;
    kokoro_status st;
    if (doc->type == KOKORO_DOC_MARKDOWN) { /* "## *Emphasis* and [links](x)" → the words */
        kk_textbuf tb = {0};
        char *plain;
        md_inline(&tb, title, tlen);
        st = kk_tb_take(&tb, doc->name, &plain, NULL);
        if (st != KOKORO_OK) return st;
        st = kk_doc_add_chapter(doc, plain, strlen(plain), level, &c);
        free(plain);
    } else {
        st = kk_doc_add_chapter(doc, title, tlen, level, &c);
    }
    if (st != KOKORO_OK) return st;
    c->off = off;
    c->n = end - off;
    return KOKORO_OK;
}

/* Headings found by the rule in use: kind 1 Markdown, 2 chapter lines. */
static kokoro_status split(kokoro_document *doc, int kind)
{
    const char *b = doc->buf;
    size_t n = doc->buf_len, pos = 0, cur = 0, cur_title = 0, cur_tlen = 0;
    int cur_level = 0, have = 0, fence = 0, prev_blank = 1;
    while (pos < n) {
        const char *nl = memchr(b + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - b) : n;
        const char *line = b + pos;
        size_t len = end - pos, toff = 0;
        int level = 0;
        if (kind == 1 && is_fence(line, len)) fence = !fence;
        else if (kind == 1 && !fence) level = md_heading(line, len, &toff);
        else if (kind == 2 && prev_blank && kk_doc_is_chapter_line(line, len)) level = 1;
        if (level) {
            if (have) {
                kokoro_status st = add_range(doc, b + cur_title, cur_tlen, cur_level, cur, pos);
                if (st != KOKORO_OK) return st;
            } else if (!blank(b, pos)) {
                /* text before the first heading is a chapter of its own */
                const char *name = base_name(doc->name);
                kokoro_status st = add_range(doc, name, strlen(name), 1, 0, pos);
                if (st != KOKORO_OK) return st;
            }
            have = 1;
            cur = pos;
            cur_title = pos + toff;
            cur_tlen = len - toff;
            while (cur_tlen && (b[cur_title + cur_tlen - 1] == '#' || b[cur_title + cur_tlen - 1] == ' '))
                cur_tlen--;
            cur_level = level;
        }
        prev_blank = blank(line, len);
        pos = end + 1;
    }
    if (have) return add_range(doc, b + cur_title, cur_tlen, cur_level, cur, n);
    return KOKORO_OK;
}

static size_t count_headings(kokoro_document *doc, int kind)
{
    const char *b = doc->buf;
    size_t n = doc->buf_len, pos = 0, count = 0;
    int fence = 0, prev_blank = 1;
    while (pos < n) {
        const char *nl = memchr(b + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - b) : n, toff;
        const char *line = b + pos;
        size_t len = end - pos;
        if (kind == 1 && is_fence(line, len)) fence = !fence;
        else if (kind == 1 && !fence) count += md_heading(line, len, &toff) > 0;
        else if (kind == 2 && prev_blank) count += kk_doc_is_chapter_line(line, len);
        prev_blank = blank(line, len);
        pos = end + 1;
    }
    return count;
}

kokoro_status kk_text_open(kokoro_document *doc, char *buf, size_t len)
{
    doc->buf = buf;
    doc->buf_len = len;
    size_t skip = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) skip = 3;
    size_t bad = kk_doc_utf8_invalid(buf + skip, len - skip);
    if (bad != (size_t)-1)
        return kk_error(KOKORO_ERR_FORMAT, "%s: invalid UTF-8 at byte offset %zu (byte 0x%02X); convert the file to UTF-8",
                        doc->name, bad + skip, (unsigned char)buf[bad + skip]);
    if (memchr(buf, '\0', len))
        return kk_error(KOKORO_ERR_FORMAT, "%s: NUL byte at offset %zu: this is not a text file", doc->name,
                        (size_t)((char *)memchr(buf, '\0', len) - buf));
    /* Drop the BOM and turn CRLF / lone CR into LF, in place. */
    size_t o = 0;
    for (size_t i = skip; i < len; i++) {
        if (buf[i] == '\r') {
            buf[o++] = '\n';
            if (i + 1 < len && buf[i + 1] == '\n') i++;
        } else {
            buf[o++] = buf[i];
        }
    }
    buf[o] = '\0';
    doc->buf_len = o;

    int kind = 0;
    if (doc->type == KOKORO_DOC_MARKDOWN) kind = count_headings(doc, 1) ? 1 : count_headings(doc, 2) ? 2 : 0;
    else kind = count_headings(doc, 2) ? 2 : count_headings(doc, 1) ? 1 : 0;
    if (kind == 1) doc->type = KOKORO_DOC_MARKDOWN;
    kokoro_status st;
    if (kind) {
        st = split(doc, kind);
    } else {
        const char *name = base_name(doc->name);
        st = add_range(doc, name, strlen(name), 1, 0, doc->buf_len);
    }
    return st;
}

/* Markdown inline syntax that should not be read aloud: emphasis marks,
 * code ticks, and [text](url) links (the text stays). Pause markers and
 * phoneme overrides are kept for the front end. */
static void md_inline(kk_textbuf *tb, const char *s, size_t n)
{
    size_t i = 0, run = 0;
    char tmp[512];
    while (i < n) {
        char c = s[i];
        if (c == '*' || c == '`' || (c == '_' && (i + 1 < n && s[i + 1] == '_'))) {
            i += c == '_' ? 2 : 1;
            continue;
        }
        if (c == ']' && i + 1 < n && s[i + 1] == '(') {
            const char *close = memchr(s + i, ')', n - i);
            if (close) {
                i = (size_t)(close - s) + 1;
                continue;
            }
        }
        if (c == '[') { /* the front end's own markup passes through: [pause:1s], [word](/phonemes/) */
            const char *rb = memchr(s + i, ']', n - i);
            size_t keep = 0;
            if (rb && (size_t)(rb - s) - i > 7 && !strncmp(s + i + 1, "pause:", 6)) {
                keep = (size_t)(rb - s) + 1 - i;
            } else if (rb && (size_t)(rb - s) + 2 < n && rb[1] == '(' && rb[2] == '/') {
                const char *rp = memchr(rb, ')', n - (size_t)(rb - s));
                if (rp && rp[-1] == '/' && rp - rb > 3) keep = (size_t)(rp - s) + 1 - i;
            }
            if (keep) {
                if (run) kk_tb_text(tb, tmp, run), run = 0;
                kk_tb_text(tb, s + i, keep);
                i += keep;
                continue;
            }
        }
        if (c == '[' || c == '!') {
            if (c == '!' && i + 1 < n && s[i + 1] == '[') {
                i++;
                continue;
            }
            if (c == '[') {
                i++;
                continue;
            }
        }
        tmp[run++] = c;
        i++;
        if (run == sizeof tmp) {
            kk_tb_text(tb, tmp, run);
            run = 0;
        }
    }
    if (run) kk_tb_text(tb, tmp, run);
}

kokoro_status kk_text_chapter(kokoro_document *doc, size_t idx, kk_textbuf *tb)
{
    const kk_doc_chapter *c = &doc->ch[idx];
    const char *b = doc->buf + c->off;
    size_t n = c->n, pos = 0;
    int md = doc->type == KOKORO_DOC_MARKDOWN, fence = 0;
    while (pos < n) {
        const char *nl = memchr(b + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - b) : n;
        const char *line = b + pos;
        size_t len = end - pos, toff;
        pos = end + 1;
        if (blank(line, len)) {
            kk_tb_para(tb);
            continue;
        }
        if (md && is_fence(line, len)) {
            fence = !fence;
            kk_tb_para(tb);
            continue;
        }
        if (md && !fence) {
            int h = md_heading(line, len, &toff);
            if (h) {
                size_t tl = len - toff;
                while (tl && (line[toff + tl - 1] == '#' || line[toff + tl - 1] == ' ')) tl--;
                kk_tb_para(tb);
                md_inline(tb, line + toff, tl);
                kk_tb_para(tb);
                continue;
            }
            size_t i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '>')) i++;
            if (i + 1 < len && (line[i] == '-' || line[i] == '*' || line[i] == '+') && line[i + 1] == ' ') {
                kk_tb_line(tb); /* list items on lines of their own */
                i += 2;
            }
            md_inline(tb, line + i, len - i);
            if (tb->pending < 1) tb->pending = 1; /* wrapped lines join with a space */
            continue;
        }
        if (!md && pos - len - 1 == 0 && kk_doc_is_chapter_line(line, len)) {
            kk_tb_text(tb, line, len);
            kk_tb_para(tb);
            continue;
        }
        kk_tb_text(tb, line, len);
        if (tb->pending < 1) tb->pending = 1;
    }
    return KOKORO_OK;
}
