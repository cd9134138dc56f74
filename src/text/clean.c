/* Unicode clean-up for every language: markup, markdown, typography, control
 * characters, then NFC per grapheme cluster (composition never crosses a
 * cluster boundary, so each cluster keeps its own source span). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/text.h"

static int is_alnum_cp(uint32_t cp)
{
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

static kokoro_status add_markup(kk_markups *mk, kk_markup m, int32_t *index)
{
    if (mk->n == mk->cap) {
        size_t cap = mk->cap ? mk->cap * 2 : 8;
        kk_markup *v = realloc(mk->v, cap * sizeof *v);
        if (!v) { free(m.phonemes); return kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); }
        mk->v = v;
        mk->cap = cap;
    }
    if (mk->n >= INT32_MAX) { free(m.phonemes); return kk_error(KOKORO_ERR_INVALID_ARG, "text: too many markers"); }
    *index = (int32_t)mk->n;
    mk->v[mk->n++] = m;
    return KOKORO_OK;
}

/* [pause:1.5s] / [pause:300ms] at t[i]; returns the length or 0. */
static size_t match_pause(const char *t, size_t n, size_t i, float *sec)
{
    static const char head[] = "[pause:";
    if (n - i < sizeof head - 1 || strncmp(t + i, head, sizeof head - 1) != 0) return 0;
    size_t j = i + sizeof head - 1;
    size_t d0 = j;
    double v = 0, scale = 1;
    int seen_dot = 0;
    while (j < n && ((t[j] >= '0' && t[j] <= '9') || (t[j] == '.' && !seen_dot))) {
        if (t[j] == '.') seen_dot = 1;
        else if (seen_dot) { scale /= 10; v += (t[j] - '0') * scale; }
        else v = v * 10 + (t[j] - '0');
        j++;
        if (j - d0 > 12) return 0;
    }
    if (j == d0) return 0;
    if (n - j >= 3 && strncmp(t + j, "ms]", 3) == 0) { v /= 1000; j += 3; }
    else if (n - j >= 2 && strncmp(t + j, "s]", 2) == 0) j += 2;
    else if (n - j >= 1 && t[j] == ']') j += 1;
    else return 0;
    if (v > 3600) v = 3600;  /* an hour of silence is surely a typo; cap it */
    *sec = (float)v;
    return j - i;
}

/* [text](target) on one line at t[i]: sets the text and target ranges. */
static int match_link(const char *t, size_t n, size_t i, size_t *tb, size_t *te, size_t *ub, size_t *ue)
{
    if (t[i] != '[') return 0;
    size_t j = i + 1;
    while (j < n && t[j] != ']' && t[j] != '[' && t[j] != '\n') j++;
    if (j >= n || t[j] != ']' || j == i + 1) return 0;
    if (j + 1 >= n || t[j + 1] != '(') return 0;
    size_t k = j + 2;
    while (k < n && t[k] != ')' && t[k] != '\n') k++;
    if (k >= n || t[k] != ')') return 0;
    *tb = i + 1; *te = j; *ub = j + 2; *ue = k;
    return 1;
}

static int line_is_rule(const char *t, size_t n, size_t i)
{
    char c = 0;
    size_t count = 0;
    for (; i < n && t[i] != '\n'; i++) {
        if (t[i] == ' ' || t[i] == '\t') continue;
        if (t[i] != '-' && t[i] != '*' && t[i] != '_' && t[i] != '=') return 0;
        if (c && t[i] != c) return 0;
        c = t[i];
        count++;
    }
    return count >= 3;
}

/* Typographic mapping of one code point: returns the replacement (UTF-8,
 * "" to drop) or NULL to keep it. */
static const char *map_cp(uint32_t cp)
{
    switch (cp) {
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: case 0x02BC: return "'";
    case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0x2033: return "\"";
    case 0x2010: case 0x2011: case 0x2212: return "-";
    case 0x2012: case 0x2013: return "\xE2\x80\x93";           /* en dash: ranges */
    case 0x2014: case 0x2015: return "\xE2\x80\x94";           /* em dash */
    case 0x00A0: case 0x202F: case 0x205F: case 0x3000: case '\t': return " ";
    case 0x2028: case 0x0B: case 0x0C: case 0x85: return "\n";
    case 0x2029: return "\n\n";
    case 0x00AD: case 0xFEFF: case 0xFFFD: return "";
    default: break;
    }
    if (cp >= 0x2000 && cp <= 0x200A) return " ";
    if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
        (cp >= 0x2066 && cp <= 0x206F))
        return "";
    if (cp < 0x20 && cp != '\n') return "";
    if (cp >= 0x7F && cp <= 0x9F) return "";
    if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000 || (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
        return "";
    return NULL;
}

/* First pass: markup, markdown, typography. */
static kokoro_status pass1(const char *t, size_t n, int parse_markup, kk_mstr *out, kk_markups *mk)
{
    kokoro_status st = KOKORO_OK;
    int line_start = 1;
    size_t link_close = (size_t)-1, link_resume = 0;
    size_t i = 0;
    while (i < n && st == KOKORO_OK) {
        if (i == link_close) { i = link_resume; link_close = (size_t)-1; continue; }
        if (line_start && parse_markup > 1) {
            size_t j = i;
            while (j < n && (t[j] == ' ' || t[j] == '\t')) j++;
            if (line_is_rule(t, n, j)) {
                while (j < n && t[j] != '\n') j++;
                i = j;
                line_start = 0;
                continue;
            }
            size_t k = j;
            while (k < n && k - j < 6 && t[k] == '#') k++;
            if (k > j && k < n && t[k] == ' ') j = k + 1;
            else {
                k = j;
                while (k < n && t[k] == '>') k++;
                if (k > j && k < n && t[k] == ' ') j = k + 1;
                else if (j + 1 < n && (t[j] == '-' || t[j] == '*' || t[j] == '+') && t[j + 1] == ' ') j += 2;
                else {
                    uint32_t cp;
                    size_t l = kk_utf8_decode(t + j, n - j, &cp);
                    if (l && (cp == 0x2022 || cp == 0x2023 || cp == 0x25E6 || cp == 0x25AA || cp == 0x00B7 ||
                              cp == 0x25CF || cp == 0x2043) && j + l < n && t[j + l] == ' ')
                        j += l + 1;
                }
            }
            /* leading spaces and markers are dropped; spans stay exact */
            if (j > i) { i = j; line_start = 0; continue; }
        }
        line_start = 0;
        char c = t[i];
        if (c == '\n') { st = kk_mstr_put(out, "\n", 1, i, i + 1, -1); i++; line_start = 1; continue; }
        if (c == '\r') {
            size_t e = (i + 1 < n && t[i + 1] == '\n') ? i + 2 : i + 1;
            st = kk_mstr_put(out, "\n", 1, i, e, -1);
            i = e;
            line_start = 1;
            continue;
        }
        if (parse_markup) {
            float sec;
            size_t l;
            size_t tb, te, ub, ue;
            if (c == '[' && (l = match_pause(t, n, i, &sec)) > 0) {
                kk_markup m = {1, sec, NULL};
                int32_t idx;
                st = add_markup(mk, m, &idx);
                if (!st) st = kk_mstr_put(out, "\x01", 1, i, i + l, idx);
                i += l;
                continue;
            }
            if (parse_markup < 2) goto plain;
            int img = (c == '!' && i + 1 < n && t[i + 1] == '[');
            if ((c == '[' || img) && match_link(t, n, i + (size_t)img, &tb, &te, &ub, &ue)) {
                if (!img && ue - ub >= 2 && t[ub] == '/' && t[ue - 1] == '/') {
                    /* misaki inline override: the word is spoken as given */
                    kk_markup m = {0, 0, NULL};
                    m.phonemes = malloc(ue - ub);
                    if (!m.phonemes) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
                    memcpy(m.phonemes, t + ub + 1, ue - ub - 2);
                    m.phonemes[ue - ub - 2] = 0;
                    size_t plen = ue - ub - 2, q = 0;
                    const kokoro_config *cfg = kokoro_config_default();
                    while (q < plen) {
                        uint32_t cp;
                        size_t k = kk_utf8_decode(m.phonemes + q, plen - q, &cp);
                        if (kokoro_config_token_id(cfg, cp) <= 0) {
                            free(m.phonemes);
                            return kk_error(KOKORO_ERR_FORMAT,
                                            "text: byte offset %zu: override phoneme U+%04X is not a Kokoro vocabulary symbol",
                                            ub + 1 + q, (unsigned)cp);
                        }
                        q += k;
                    }
                    if (plen == 0) {
                        free(m.phonemes);
                        return kk_error(KOKORO_ERR_FORMAT, "text: byte offset %zu: empty override phonemes", ub);
                    }
                    int32_t idx;
                    st = add_markup(mk, m, &idx);
                    for (size_t q2 = tb; q2 < te && !st; q2++) {
                        char b = t[q2];
                        if (b == '\t' || b == '\r') b = ' ';
                        st = kk_mstr_put(out, &b, 1, q2, q2 + 1, idx);
                    }
                    i = ue + 1;
                    continue;
                }
                /* a markdown link or image: only its text is read */
                link_close = te;
                link_resume = ue + 1;
                i = tb;
                continue;
            }
            if ((c == '*' || c == '_' || c == '~') && i + 1 < n && t[i + 1] == c) { i += 2; continue; }
            if (c == '`' || c == '*') { i++; continue; }
            if (c == '_') {
                uint32_t pc = 0, nc = 0;
                if (out->len) pc = (unsigned char)out->s[out->len - 1];
                if (i + 1 < n) nc = (unsigned char)t[i + 1];
                int pw = pc && (pc >= 0x80 || is_alnum_cp(pc)), nw = nc && (nc >= 0x80 || is_alnum_cp(nc));
                if (!(pw && nw)) { i++; continue; }
            }
        }
    plain:
        if (c == '.' && i + 2 < n && t[i + 1] == '.' && t[i + 2] == '.') {
            size_t j = i;
            while (j < n && t[j] == '.') j++;
            st = kk_mstr_put(out, "\xE2\x80\xA6", 3, i, j, -1);
            i = j;
            continue;
        }
        if (c == '-' && i + 1 < n && t[i + 1] == '-') {
            size_t j = i;
            while (j < n && t[j] == '-') j++;
            st = kk_mstr_put(out, "\xE2\x80\x94", 3, i, j, -1);
            i = j;
            continue;
        }
        uint32_t cp;
        size_t l = kk_utf8_decode(t + i, n - i, &cp);
        if (!l) return kk_error(KOKORO_ERR_INTERNAL, "text: byte offset %zu: unvalidated UTF-8", i);
        const char *rep = map_cp(cp);
        if (rep) {
            if (*rep) st = kk_mstr_put(out, rep, strlen(rep), i, i + l, -1);
            if (*rep == '\n') line_start = 1;
        } else {
            st = kk_mstr_put(out, t + i, l, i, i + l, -1);
        }
        i += l;
    }
    return st;
}

/* Second pass: NFC, one grapheme cluster at a time. */
static kokoro_status nfc_pass(const kk_mstr *in, kk_mstr *out)
{
    kokoro_status st = KOKORO_OK;
    size_t i = 0;
    while (i < in->len && st == KOKORO_OK) {
        uint32_t cp;
        size_t l = kk_utf8_decode(in->s + i, in->len - i, &cp);
        if (!l) return kk_error(KOKORO_ERR_INTERNAL, "text: bad UTF-8 after clean-up");
        if (cp < 0x80 && (i + 1 >= in->len || (unsigned char)in->s[i + 1] < 0x80)) {
            st = kk_mstr_copy(out, in, i, i + 1);  /* ASCII fast path */
            i++;
            continue;
        }
        /* the cluster [i, j) */
        utf8proc_int32_t state = 0;
        size_t j = i + l;
        uint32_t prev = cp;
        int all_ascii = cp < 0x80;
        while (j < in->len) {
            uint32_t nx;
            size_t k = kk_utf8_decode(in->s + j, in->len - j, &nx);
            if (!k) return kk_error(KOKORO_ERR_INTERNAL, "text: bad UTF-8 after clean-up");
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)nx, &state)) break;
            if (nx >= 0x80) all_ascii = 0;
            prev = nx;
            j += k;
        }
        int same_item = 1;
        for (size_t q = i + 1; q < j; q++) same_item &= in->item[q] == in->item[i];
        if (all_ascii || !same_item || in->s[i] == '\x01') { st = kk_mstr_copy(out, in, i, j); i = j; continue; }
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in->s + i, (utf8proc_ssize_t)(j - i), &dst,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) { st = kk_mstr_copy(out, in, i, j); i = j; continue; }
        size_t b = in->beg[i], e = in->end[i];
        for (size_t q = i; q < j; q++) { if (in->beg[q] < b) b = in->beg[q]; if (in->end[q] > e) e = in->end[q]; }
        st = kk_mstr_put(out, (const char *)dst, (size_t)r, b, e, in->item[i]);
        free(dst);
        i = j;
    }
    return st;
}

kokoro_status kk_text_clean(const char *text, size_t len, int parse_markup, kk_mstr *out, kk_markups *mk)
{
    kk_mstr tmp = {0};
    kokoro_status st = pass1(text, len, parse_markup, &tmp, mk);
    if (!st) st = kk_mstr_put(out, "", 0, 0, 0, -1);
    if (!st) st = nfc_pass(&tmp, out);
    kk_mstr_free(&tmp);
    return st;
}
