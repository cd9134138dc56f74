/* English text normalisation: numbers, money, dates, times, units,
 * abbreviations, initials, roman chapter numbers, URLs and e-mails become
 * words that espeak-ng reads well. Rules are driven by en_tables.inc; each
 * rewritten token maps to the source span of the token it replaces. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/text.h"

#include "en_tables.inc"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct sb {
    char *p;
    size_t n, cap;
    int oom;
} sb;

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sb *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_sp(sb *b) { if (b->n && b->p[b->n - 1] != ' ') sb_add(b, " ", 1); }

static int isdig(char c) { return c >= '0' && c <= '9'; }
static int isalpha_a(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int isalnum_a(char c) { return isdig(c) || isalpha_a(c); }

/* ---- numbers in words ---- */

static void cardinal_below_1000(unsigned v, sb *b)
{
    if (v >= 100) {
        sb_sp(b); sb_str(b, kk_en_ones[v / 100]); sb_str(b, " hundred");
        v %= 100;
        if (!v) return;
    }
    sb_sp(b);
    if (v < 20) { sb_str(b, kk_en_ones[v]); return; }
    sb_str(b, kk_en_tens[v / 10]);
    if (v % 10) { sb_str(b, "-"); sb_str(b, kk_en_ones[v % 10]); }
}

static void cardinal(uint64_t n, sb *b)
{
    if (n == 0) { sb_sp(b); sb_str(b, "zero"); return; }
    unsigned groups[7];
    int ng = 0;
    while (n) { groups[ng++] = (unsigned)(n % 1000); n /= 1000; }
    for (int g = ng - 1; g >= 0; g--) {
        if (!groups[g]) continue;
        cardinal_below_1000(groups[g], b);
        if (g) { sb_sp(b); sb_str(b, kk_en_scales[g]); }
    }
}

void kk_en_cardinal(uint64_t n, char *out, size_t cap)
{
    sb b = {0};
    cardinal(n, &b);
    snprintf(out, cap, "%s", b.p ? b.p : "");
    free(b.p);
}

/* Turns the last word of the words from `from` into an ordinal. */
static void ordinalize(sb *b, size_t from)
{
    if (b->oom || b->n <= from) return;
    size_t s = b->n;
    while (s > from && b->p[s - 1] != ' ' && b->p[s - 1] != '-') s--;
    char last[32];
    snprintf(last, sizeof last, "%s", b->p + s);
    b->n = s;
    b->p[s] = 0;
    for (size_t i = 0; i < NELEM(kk_en_ordinals); i++)
        if (!strcmp(last, kk_en_ordinals[i].card)) { sb_str(b, kk_en_ordinals[i].ord); return; }
    size_t l = strlen(last);
    if (l && last[l - 1] == 'y') { last[l - 1] = 0; sb_str(b, last); sb_str(b, "ieth"); return; }
    sb_str(b, last);
    sb_str(b, "th");
}

/* Plural of the last word: "eighty" -> "eighties", "hundred" -> "hundreds". */
static void pluralize(sb *b)
{
    if (b->oom || !b->n) return;
    if (b->p[b->n - 1] == 'y') { b->n--; sb_str(b, "ies"); }
    else if (b->p[b->n - 1] == 'x') sb_str(b, "es");
    else sb_str(b, "s");
}

static void digits(const char *d, size_t n, sb *b)
{
    for (size_t i = 0; i < n; i++) {
        sb_sp(b);
        sb_str(b, d[i] == '0' ? "zero" : kk_en_ones[d[i] - '0']);
    }
}

static void year(unsigned y, sb *b)
{
    if (y >= 2000 && y <= 2009) { cardinal(y, b); return; }
    unsigned hi = y / 100, lo = y % 100;
    cardinal(hi, b);
    if (lo == 0) { sb_str(b, " hundred"); return; }
    if (lo < 10) { sb_str(b, " oh"); }
    cardinal(lo, b);
}

/* ---- number tokens ---- */

typedef struct num {
    char ip[32];      /* integer digits, commas removed ("" when too long) */
    size_t ipn;
    size_t int_b, int_e; /* raw integer digits span (for very long numbers) */
    size_t frac_b, frac_e;
    int commas;
    size_t end;
} num;

/* Parses digits[,ddd]*[.d+] at s[i]. */
static int parse_num(const char *s, size_t n, size_t i, num *x)
{
    memset(x, 0, sizeof *x);
    size_t j = i;
    while (j < n && isdig(s[j])) j++;
    if (j == i) return 0;
    size_t first = j - i;
    x->int_b = i;
    if (first <= 3) {
        /* thousands groups: exactly three digits after each comma */
        while (j + 3 < n && s[j] == ',' && isdig(s[j + 1]) && isdig(s[j + 2]) && isdig(s[j + 3]) &&
               (j + 4 >= n || !isdig(s[j + 4]))) {
            j += 4;
            x->commas = 1;
        }
    }
    x->int_e = j;
    for (size_t k = i; k < j; k++)
        if (isdig(s[k])) {
            if (x->ipn < sizeof x->ip - 1) x->ip[x->ipn] = s[k];
            x->ipn++;
        }
    if (x->ipn < sizeof x->ip) x->ip[x->ipn] = 0;
    else x->ip[sizeof x->ip - 1] = 0;
    if (j + 1 < n && s[j] == '.' && isdig(s[j + 1])) {
        x->frac_b = j + 1;
        j++;
        while (j < n && isdig(s[j])) j++;
        x->frac_e = j;
    }
    x->end = j;
    return 1;
}

static int num_small(const num *x) { return x->ipn <= 15; }
static uint64_t num_int(const num *x) { return strtoull(x->ip, NULL, 10); }
static int num_leading_zero(const num *x) { return x->ipn > 1 && x->ip[0] == '0' && !x->commas; }

/* The plain reading: cardinal, "point" and digits, long runs digit by digit. */
static void read_num(const char *s, const num *x, sb *b)
{
    if (!num_small(x) || num_leading_zero(x)) {
        for (size_t k = x->int_b; k < x->int_e; k++)
            if (isdig(s[k])) digits(s + k, 1, b);
    } else {
        cardinal(num_int(x), b);
    }
    if (x->frac_e > x->frac_b) {
        sb_str(b, " point");
        digits(s + x->frac_b, x->frac_e - x->frac_b, b);
    }
}

static int ci_ncmp(const char *a, const char *b, size_t l)
{
    for (size_t i = 0; i < l; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 1;
    return 0;
}

static int word_at(const char *s, size_t n, size_t i, const char *w)
{
    size_t l = strlen(w);
    if (n - i < l || ci_ncmp(s + i, w, l)) return 0;
    return i + l >= n || !isalnum_a(s[i + l]);
}

/* Unit token after a number (optionally one space); returns its table index
 * and sets *end, or -1. */
static int unit_at(const char *s, size_t n, size_t i, size_t *end)
{
    size_t j = i;
    if (j < n && s[j] == ' ') j++;
    int best = -1;
    size_t bl = 0;
    for (size_t u = 0; u < NELEM(kk_en_units); u++) {
        size_t l = strlen(kk_en_units[u].tok);
        if (n - j < l || strncmp(s + j, kk_en_units[u].tok, l)) continue;
        if (j + l < n && (isalnum_a(s[j + l]) || (unsigned char)s[j + l] >= 0x80)) continue;
        if (j + l < n && s[j + l] == '/' ) continue;
        if (l > bl) { best = (int)u; bl = l; }
    }
    /* a bare degree sign must touch the number */
    if (best >= 0 && !strcmp(kk_en_units[best].tok, "\xC2\xB0") && j != i) best = -1;
    if (best >= 0) *end = j + bl;
    return best;
}

static int ampm_at(const char *s, size_t n, size_t i, size_t *end, const char **say)
{
    size_t j = i;
    if (j < n && s[j] == ' ') j++;
    static const struct { const char *t, *say; } forms[] = {
        {"a.m.", "A M"}, {"p.m.", "P M"}, {"A.M.", "A M"}, {"P.M.", "P M"},
        {"am", "A M"}, {"pm", "P M"}, {"AM", "A M"}, {"PM", "P M"}};
    for (size_t f = 0; f < NELEM(forms); f++) {
        size_t l = strlen(forms[f].t);
        if (n - j < l || strncmp(s + j, forms[f].t, l)) continue;
        if (j + l < n && isalnum_a(s[j + l])) continue;
        /* "a.m." keeps its sentence-final period when a capital follows */
        *end = j + l;
        *say = forms[f].say;
        return 1;
    }
    return 0;
}

static int roman_value(const char *s, size_t n, size_t *len)
{
    static const char *const syms = "IVXLCDM";
    static const int vals[] = {1, 5, 10, 50, 100, 500, 1000};
    size_t j = 0;
    int total = 0, prev = 0;
    while (j < n && strchr(syms, s[j]) && s[j]) j++;
    if (j == 0 || j > 12 || (j < n && isalnum_a(s[j]))) return 0;
    for (size_t k = j; k-- > 0;) {
        int v = vals[strchr(syms, s[k]) - syms];
        if (v < prev) total -= v;
        else { total += v; prev = v; }
    }
    /* reject non-canonical forms by re-encoding */
    static const struct { int v; const char *r; } enc[] = {
        {1000, "M"}, {900, "CM"}, {500, "D"}, {400, "CD"}, {100, "C"}, {90, "XC"},
        {50, "L"}, {40, "XL"}, {10, "X"}, {9, "IX"}, {5, "V"}, {4, "IV"}, {1, "I"}};
    char buf[32] = "";
    int t = total;
    size_t bl = 0;
    for (size_t e = 0; e < NELEM(enc) && t > 0; e++)
        while (t >= enc[e].v && bl + 3 < sizeof buf) { bl += (size_t)snprintf(buf + bl, sizeof buf - bl, "%s", enc[e].r); t -= enc[e].v; }
    if (bl != j || strncmp(buf, s, j) || total <= 0 || total > 3999) return 0;
    *len = j;
    return total;
}

typedef struct ctx {
    const kk_mstr *in;
    kk_mstr *out;
    kokoro_status st;
} ctx;

/* Emits words for the input bytes [from, to). */
static void emit(ctx *c, sb *w, size_t from, size_t to)
{
    if (c->st) return;
    if (w->oom) { c->st = kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); return; }
    const char *p = w->p ? w->p : "";
    size_t l = w->n;
    while (l && p[0] == ' ') { p++; l--; }
    size_t b = c->in->beg[from], e = c->in->end[to - 1];
    /* keep tokens apart from what touches them */
    if (c->out->len && l && isalnum_a(c->out->s[c->out->len - 1])) c->st = kk_mstr_put(c->out, " ", 1, b, b, -1);
    if (!c->st) c->st = kk_mstr_put(c->out, p, l, b, e, -1);
    if (!c->st && to < c->in->len && isalnum_a(c->in->s[to]) && l) c->st = kk_mstr_put(c->out, " ", 1, e, e, -1);
    w->n = 0;
    if (w->p) w->p[0] = 0;
}

static int token_start(const kk_mstr *in, size_t i)
{
    if (i == 0) return 1;
    char p = in->s[i - 1];
    return !isalnum_a(p) && p != '.' && p != '\'';
}

static int sentence_follows(const char *s, size_t n, size_t j)
{
    if (j >= n) return 1;
    if (s[j] == '\n') return 1;
    if (s[j] != ' ') return 0;
    while (j < n && s[j] == ' ') j++;
    return j >= n || s[j] == '\n' || (s[j] >= 'A' && s[j] <= 'Z') || s[j] == '"';
}

/* Tries the number rules at i (a digit). Returns the end or 0. */
static size_t number_rule(ctx *c, size_t i, sb *w, int minus)
{
    const char *s = c->in->s;
    size_t n = c->in->len;
    num x;
    /* ISO date 2024-05-17 */
    if (i + 10 <= n && isdig(s[i]) && isdig(s[i + 1]) && isdig(s[i + 2]) && isdig(s[i + 3]) && s[i + 4] == '-' &&
        isdig(s[i + 5]) && isdig(s[i + 6]) && s[i + 7] == '-' && isdig(s[i + 8]) && isdig(s[i + 9]) &&
        (i + 10 == n || !isdig(s[i + 10]))) {
        int y = atoi(s + i), m = (s[i + 5] - '0') * 10 + s[i + 6] - '0', d = (s[i + 8] - '0') * 10 + s[i + 9] - '0';
        if (m >= 1 && m <= 12 && d >= 1 && d <= 31) {
            sb_str(w, kk_en_months[m - 1]);
            size_t from = w->n;
            cardinal((uint64_t)d, w);
            ordinalize(w, from);
            sb_str(w, ",");
            year((unsigned)y, w);
            return i + 10;
        }
    }
    /* US date 5/17/2024 */
    {
        size_t j = i, a = 0, bb = 0;
        while (j < n && isdig(s[j]) && j - i < 3) j++;
        a = j - i;
        if (a >= 1 && a <= 2 && j < n && s[j] == '/') {
            size_t k = j + 1;
            while (k < n && isdig(s[k]) && k - j - 1 < 3) k++;
            bb = k - j - 1;
            if (bb >= 1 && bb <= 2 && k + 5 <= n && s[k] == '/' && isdig(s[k + 1]) &&
                isdig(s[k + 2]) && isdig(s[k + 3]) && isdig(s[k + 4]) && (k + 5 == n || !isdig(s[k + 5]))) {
                int m = atoi(s + i), d = atoi(s + j + 1), y = atoi(s + k + 1);
                if (m >= 1 && m <= 12 && d >= 1 && d <= 31) {
                    sb_str(w, kk_en_months[m - 1]);
                    size_t from = w->n;
                    cardinal((uint64_t)d, w);
                    ordinalize(w, from);
                    sb_str(w, ",");
                    year((unsigned)y, w);
                    return k + 5;
                }
            }
        }
    }
    if (!parse_num(s, n, i, &x)) return 0;
    size_t j = x.end;
    int is_int = x.frac_e == x.frac_b;
    if (minus) sb_str(w, "minus");
    /* simple fractions: 1/2, 3/4, 5/8 */
    if (is_int && !x.commas && x.ipn <= 3 && j + 1 < n && s[j] == '/' && isdig(s[j + 1])) {
        size_t k = j + 1;
        while (k < n && isdig(s[k])) k++;
        unsigned num = (unsigned)num_int(&x), den = (unsigned)atoi(s + j + 1);
        if (k - j - 1 <= 2 && den >= 2 && den <= 16 && (k >= n || (s[k] != '/' && !isalnum_a(s[k])))) {
            cardinal(num, w);
            size_t from = w->n;
            if (den == 2) sb_str(w, " half");
            else if (den == 4) sb_str(w, " quarter");
            else { cardinal(den, w); ordinalize(w, from); }
            if (num != 1) {
                if (den == 2) { w->n -= 1; w->p[w->n] = 0; sb_str(w, "ves"); }
                else pluralize(w);
            }
            return k;
        }
    }
    /* time 10:30 (+ am/pm) */
    if (is_int && !x.commas && x.ipn <= 2 && j + 3 <= n && s[j] == ':' && isdig(s[j + 1]) &&
        isdig(s[j + 2]) && (j + 3 == n || !isdig(s[j + 3]))) {
        unsigned h = (unsigned)num_int(&x), m = (unsigned)((s[j + 1] - '0') * 10 + s[j + 2] - '0');
        if (h <= 24 && m < 60) {
            size_t e = j + 3, e2;
            const char *say;
            int ap = ampm_at(s, n, e, &e2, &say);
            cardinal(h, w);
            if (m == 0 && !ap) sb_str(w, " o'clock");
            else if (m > 0 && m < 10) { sb_str(w, " oh"); cardinal(m, w); }
            else if (m) cardinal(m, w);
            if (ap) {
                sb_sp(w); sb_str(w, say);
                if (s[e2 - 1] == '.' && sentence_follows(s, n, e2)) sb_str(w, ".");
                e = e2;
            }
            return e;
        }
    }
    /* ordinal 21st */
    if (is_int && num_small(&x) && j + 2 <= n) {
        static const char *const suf[] = {"st", "nd", "rd", "th", "ST", "ND", "RD", "TH"};
        for (size_t k = 0; k < NELEM(suf); k++)
            if (!strncmp(s + j, suf[k], 2) && (j + 2 == n || !isalnum_a(s[j + 2]))) {
                size_t from = w->n;
                cardinal(num_int(&x), w);
                ordinalize(w, from);
                return j + 2;
            }
    }
    /* decades 1980s, 80s */
    if (is_int && !x.commas && (x.ipn == 4 || x.ipn == 2) && x.ip[x.ipn - 1] == '0' && j < n && s[j] == 's' &&
        (j + 1 == n || !isalnum_a(s[j + 1]))) {
        unsigned v = (unsigned)num_int(&x);
        if (x.ipn == 4) year(v, w);
        else cardinal(v, w);
        pluralize(w);
        return j + 1;
    }
    /* percent */
    if (j < n && s[j] == '%') {
        read_num(s, &x, w);
        sb_str(w, " percent");
        return j + 1;
    }
    /* ranges 1990-1995, 10–20 (an en dash or a hyphen between numbers) */
    size_t dash = 0;
    if (j < n && s[j] == '-') dash = 1;
    else if (j + 3 <= n && !strncmp(s + j, "\xE2\x80\x93", 3)) dash = 3;
    if (dash && is_int && j + dash < n && isdig(s[j + dash])) {
        num y;
        parse_num(s, n, j + dash, &y);
        if (y.end < n && (s[y.end] == '-' || isdig(s[y.end]))) {
            /* 555-123-4567: a code, read digit by digit in groups */
            size_t e = i;
            while (e < n && (isdig(s[e]) || s[e] == '-')) {
                if (s[e] == '-') sb_str(w, ",");
                else digits(s + e, 1, w);
                e++;
            }
            return e;
        }
        if (!x.commas && x.ipn == 4 && num_int(&x) >= 1100 && num_int(&x) <= 2099) year((unsigned)num_int(&x), w);
        else read_num(s, &x, w);
        sb_str(w, " to");
        return j + dash; /* the second number is its own token */
    }
    /* 7 pm */
    {
        size_t e2;
        const char *say;
        if (is_int && x.ipn <= 2 && num_int(&x) >= 1 && num_int(&x) <= 12 && ampm_at(s, n, j, &e2, &say)) {
            cardinal(num_int(&x), w);
            sb_sp(w); sb_str(w, say);
            if (s[e2 - 1] == '.' && sentence_follows(s, n, e2)) sb_str(w, ".");
            return e2;
        }
    }
    /* units */
    {
        size_t e2;
        int u = unit_at(s, n, j, &e2);
        if (u >= 0) {
            read_num(s, &x, w);
            sb_sp(w);
            int one = is_int && x.ipn == 1 && x.ip[0] == '1';
            sb_str(w, one ? kk_en_units[u].one : kk_en_units[u].many);
            return e2;
        }
    }
    /* years */
    if (is_int && !x.commas && !minus && x.ipn == 4 && num_int(&x) >= 1100 && num_int(&x) <= 2099 &&
        (j >= n || !isalpha_a(s[j]))) {
        year((unsigned)num_int(&x), w);
        return j;
    }
    read_num(s, &x, w);
    return j;
}

static size_t currency_rule(ctx *c, size_t i, sb *w)
{
    const char *s = c->in->s;
    size_t n = c->in->len;
    for (size_t k = 0; k < NELEM(kk_en_currency); k++) {
        size_t l = strlen(kk_en_currency[k].sym);
        if (n - i <= l || strncmp(s + i, kk_en_currency[k].sym, l) || !isdig(s[i + l])) continue;
        num x;
        parse_num(s, n, i + l, &x);
        size_t j = x.end;
        /* magnitude word: $1.5 million */
        for (size_t m = 0; m < NELEM(kk_en_magnitudes); m++)
            if (j < n && s[j] == ' ' && word_at(s, n, j + 1, kk_en_magnitudes[m])) {
                read_num(s, &x, w);
                sb_sp(w); sb_str(w, kk_en_magnitudes[m]);
                sb_sp(w); sb_str(w, kk_en_currency[k].many);
                return j + 1 + strlen(kk_en_magnitudes[m]);
            }
        int one = x.ipn == 1 && x.ip[0] == '1';
        size_t fl = x.frac_e - x.frac_b;
        if (fl == 2 && num_small(&x)) {
            uint64_t units = num_int(&x);
            unsigned sub = (unsigned)((s[x.frac_b] - '0') * 10 + s[x.frac_b + 1] - '0');
            if (units || !sub) {
                cardinal(units, w);
                sb_sp(w); sb_str(w, one ? kk_en_currency[k].one : kk_en_currency[k].many);
            }
            if (sub) {
                if (units) sb_str(w, " and");
                cardinal(sub, w);
                sb_sp(w); sb_str(w, sub == 1 ? kk_en_currency[k].sub_one : kk_en_currency[k].sub_many);
            }
            return j;
        }
        read_num(s, &x, w);
        sb_sp(w);
        sb_str(w, one && !fl ? kk_en_currency[k].one : kk_en_currency[k].many);
        return j;
    }
    return 0;
}

static int url_char(char c) { return isalnum_a(c) || strchr("./-_:?=&#@~%+", c) != NULL; }

static void say_url_part(const char *s, size_t b, size_t e, sb *w)
{
    for (size_t k = b; k < e; k++) {
        size_t u;
        for (u = 0; u < NELEM(kk_en_url_chars); u++)
            if (kk_en_url_chars[u].c == s[k]) break;
        if (u < NELEM(kk_en_url_chars)) {
            sb_sp(w); sb_str(w, kk_en_url_chars[u].word); sb_str(w, " ");
        } else {
            sb_add(w, s + k, 1);
        }
    }
}

static size_t url_rule(ctx *c, size_t i, sb *w)
{
    const char *s = c->in->s;
    size_t n = c->in->len;
    size_t b = i;
    if (n - i > 8 && !ci_ncmp(s + i, "https://", 8)) b = i + 8;
    else if (n - i > 7 && !ci_ncmp(s + i, "http://", 7)) b = i + 7;
    else if (!(n - i > 4 && !ci_ncmp(s + i, "www.", 4))) b = 0;
    size_t e;
    if (b) {
        e = b;
        while (e < n && url_char(s[e])) e++;
        while (e > b && strchr(".,:;?!/", s[e - 1])) e--;  /* sentence punctuation, trailing slash */
        if (e <= b) return 0;
        if (!ci_ncmp(s + b, "www.", 4)) { sb_str(w, "w w w dot "); b += 4; }
        say_url_part(s, b, e, w);
        size_t end = e;
        while (end < n && s[end] == '/' ) end++;
        return end;
    }
    /* e-mail: local@domain.tld */
    e = i;
    while (e < n && (isalnum_a(s[e]) || strchr("._%+-", s[e]))) e++;
    if (e == i || e >= n || s[e] != '@') return 0;
    size_t d = e + 1, de = d;
    int dots = 0;
    while (de < n && (isalnum_a(s[de]) || s[de] == '-' || (s[de] == '.' && de + 1 < n && isalnum_a(s[de + 1])))) {
        dots += s[de] == '.';
        de++;
    }
    if (!dots || de == d) return 0;
    say_url_part(s, i, e, w);
    sb_sp(w); sb_str(w, "at ");
    say_url_part(s, d, de, w);
    return de;
}

static size_t word_rule(ctx *c, size_t i, sb *w)
{
    const char *s = c->in->s;
    size_t n = c->in->len;
    size_t j = i;
    while (j < n && isalpha_a(s[j])) j++;
    /* abbreviations (with their periods, e.g. "e.g."): only where a period follows */
    for (size_t a = 0; j < n && s[j] == '.' && a < NELEM(kk_en_abbrevs); a++) {
        size_t l = strlen(kk_en_abbrevs[a].abbr);
        if (n - i < l || strncmp(s + i, kk_en_abbrevs[a].abbr, l)) continue;
        if (i + l < n && isalnum_a(s[i + l])) continue;
        const char *word = kk_en_abbrevs[a].word;
        int ends = kk_en_abbrevs[a].ends;
        if (!strcmp(kk_en_abbrevs[a].abbr, "St.")) continue;
        sb_str(w, word);
        if (ends && sentence_follows(s, n, i + l)) sb_str(w, ".");
        return i + l;
    }
    if (j - i == 2 && !strncmp(s + i, "St", 2) && j < n && s[j] == '.') {
        /* Saint before a name, Street after one */
        size_t k = j + 1;
        while (k < n && s[k] == ' ') k++;
        int saint = k < n && k > j + 1 && s[k] >= 'A' && s[k] <= 'Z';
        sb_str(w, saint ? "Saint" : "Street");
        if (!saint && sentence_follows(s, n, j + 1)) sb_str(w, ".");
        return j + 1;
    }
    if (j - i == 2 && !strncmp(s + i, "No", 2) && j + 1 < n && s[j] == '.' &&
        (isdig(s[j + 1]) || (s[j + 1] == ' ' && j + 2 < n && isdig(s[j + 2])))) {
        sb_str(w, "number");
        return j + 1;
    }
    /* initials: "J. R. R. Tolkien" loses the periods that would end a sentence */
    if (j - i == 1 && s[i] >= 'A' && s[i] <= 'Z' && s[i] != 'I' && j + 2 < n && s[j] == '.' && s[j + 1] == ' ' && s[j + 2] >= 'A' &&
        s[j + 2] <= 'Z') {
        sb_add(w, s + i, 1);
        return j + 1;
    }
    /* roman numerals after chapter words */
    int roman_next = j + 1 < n && s[j] == ' ' && strchr("IVXLCDM", s[j + 1]) && s[j + 1];
    for (size_t k = 0; roman_next && k < NELEM(kk_en_roman_keys); k++) {
        size_t l = strlen(kk_en_roman_keys[k]);
        if (j - i != l || strncmp(s + i, kk_en_roman_keys[k], l) || j + 1 >= n || s[j] != ' ') continue;
        size_t rl;
        int v = roman_value(s + j + 1, n - j - 1, &rl);
        if (v > 0) {
            sb_add(w, s + i, l);
            cardinal((uint64_t)v, w);
            return j + 1 + rl;
        }
    }
    /* month + day: "May 17" -> "May seventeenth" */
    int digit_next = j + 1 < n && s[j] == ' ' && isdig(s[j + 1]);
    for (size_t m = 0; digit_next && m < 12; m++) {
        size_t l = strlen(kk_en_months[m]);
        if (j - i != l || strncmp(s + i, kk_en_months[m], l) || j + 1 >= n || s[j] != ' ' || !isdig(s[j + 1])) continue;
        size_t k = j + 1;
        while (k < n && isdig(s[k])) k++;
        if (k - j - 1 > 2) break;
        int d = atoi(s + j + 1);
        if (d < 1 || d > 31) break;
        if (k + 2 <= n && (!strncmp(s + k, "st", 2) || !strncmp(s + k, "nd", 2) || !strncmp(s + k, "rd", 2) ||
                           !strncmp(s + k, "th", 2)))
            k += 2;
        if (k < n && (isalnum_a(s[k]) || s[k] == ':')) break;
        sb_add(w, s + i, l);
        size_t from = w->n;
        cardinal((uint64_t)d, w);
        ordinalize(w, from);
        return k;
    }
    /* a line that is only a roman numeral (a chapter heading) */
    if ((i == 0 || s[i - 1] == '\n')) {
        size_t rl;
        int v = roman_value(s + i, n - i, &rl);
        size_t k = i + rl;
        if (v > 1 && k < n && s[k] == '.') k++;
        if (v > 1 && (k >= n || s[k] == '\n')) {
            cardinal((uint64_t)v, w);
            if (s[k - 1] == '.') sb_str(w, ".");
            return k;
        }
    }
    return 0;
}

kokoro_status kk_en_normalize(const kk_mstr *in, kk_mstr *out)
{
    ctx c = {in, out, KOKORO_OK};
    sb w = {0};
    const char *s = in->s;
    size_t n = in->len;
    size_t i = 0;
    c.st = kk_mstr_put(out, "", 0, 0, 0, -1);
    while (i < n && !c.st) {
        if (in->item[i] >= 0) { c.st = kk_mstr_copy(out, in, i, i + 1); i++; continue; }
        size_t e = 0;
        unsigned char ch = (unsigned char)s[i];
        if (token_start(in, i)) {
            if (isalpha_a((char)ch)) {
                e = url_rule(&c, i, &w);
                if (!e) e = word_rule(&c, i, &w);
            } else if (isdig((char)ch)) {
                e = url_rule(&c, i, &w);
                if (!e) e = number_rule(&c, i, &w, 0);
            } else if ((ch == '-') && i + 1 < n && isdig(s[i + 1]) && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '(' || s[i - 1] == '\n')) {
                e = number_rule(&c, i + 1, &w, 1);
            } else if (ch == '\'' && i + 3 < n && isdig(s[i + 1]) && isdig(s[i + 2]) && s[i + 2] == '0' && s[i + 3] == 's' &&
                       (i + 4 == n || !isalnum_a(s[i + 4]))) {
                /* '90s */
                cardinal((uint64_t)((s[i + 1] - '0') * 10), &w);
                pluralize(&w);
                e = i + 4;
            } else if (ch == '#' && i + 1 < n && isdig(s[i + 1])) {
                sb_str(&w, "number");
                e = number_rule(&c, i + 1, &w, 0);
            } else if (ch >= 0x80 || ch == '$') {
                e = currency_rule(&c, i, &w);
            }
            if (e) { emit(&c, &w, i, e); i = e; continue; }
        }
        /* lone symbols */
        const char *say = NULL;
        if (ch == '&') say = "and";
        else if (ch == '+' && i + 1 < n && s[i + 1] == ' ' && i > 0 && s[i - 1] == ' ') say = "plus";
        else if (ch == '=' && i + 1 < n && s[i + 1] == ' ' && i > 0 && s[i - 1] == ' ') say = "equals";
        else if (ch == '@') say = "at";
        else if (ch == '%') say = "percent";
        if (say) {
            sb_str(&w, say);
            if (c.out->len && c.out->s[c.out->len - 1] != ' ') c.st = kk_mstr_put(out, " ", 1, in->beg[i], in->beg[i], -1);
            emit(&c, &w, i, i + 1);
            if (!c.st && i + 1 < n && s[i + 1] != ' ') c.st = kk_mstr_put(out, " ", 1, in->end[i], in->end[i], -1);
            i++;
            continue;
        }
        /* copy one word or character unchanged */
        size_t j = i + 1;
        if (isalnum_a((char)ch)) while (j < n && isalnum_a(s[j]) && in->item[j] < 0) j++;
        else while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80) j++;
        c.st = kk_mstr_copy(out, in, i, j);
        i = j;
    }
    free(w.p);
    return c.st;
}
