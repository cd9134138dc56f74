/* The text front end: languages, lexicon, units (words with their phonemes
 * and the punctuation after them) and the chunker. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/text.h"

/* ---- languages ---- */

typedef struct lang_info {
    const char *code, *espeak;
    char letter;
    int english;
} lang_info;

static const lang_info kk_langs[] = {
    {"en-us", "en-us", 'a', 1}, {"en-gb", "en-gb", 'b', 1}, {"es", "es", 'e', 0},
    {"fr-fr", "fr-fr", 'f', 0}, {"hi", "hi", 'h', 0}, {"it", "it", 'i', 0},
    {"pt-br", "pt-br", 'p', 0}, {"ja", "ja", 'j', 0}, {"zh", "cmn-latn-pinyin", 'z', 0},
};
#define N_LANGS (sizeof kk_langs / sizeof kk_langs[0])

static const struct { const char *alias, *code; } kk_lang_alias[] = {
    {"en", "en-us"}, {"en_us", "en-us"}, {"en_gb", "en-gb"}, {"fr", "fr-fr"}, {"fr_fr", "fr-fr"},
    {"pt", "pt-br"}, {"pt_br", "pt-br"}, {"cmn", "zh"}, {"zh-cn", "zh"}, {"es-es", "es"}, {"it-it", "it"},
    {"hi-in", "hi"}, {"ja-jp", "ja"},
};

size_t kokoro_lang_count(void) { return N_LANGS; }
const char *kokoro_lang_name(size_t i) { return i < N_LANGS ? kk_langs[i].code : NULL; }

static const lang_info *lang_find(const char *lang)
{
    if (!lang) return NULL;
    char low[16];
    size_t n = strlen(lang);
    if (n == 0 || n >= sizeof low) return NULL;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)lang[i]);
    for (size_t i = 0; i < N_LANGS; i++) {
        if (!strcmp(low, kk_langs[i].code)) return &kk_langs[i];
        if (n == 1 && low[0] == kk_langs[i].letter) return &kk_langs[i];
    }
    for (size_t a = 0; a < sizeof kk_lang_alias / sizeof kk_lang_alias[0]; a++)
        if (!strcmp(low, kk_lang_alias[a].alias)) return lang_find(kk_lang_alias[a].code);
    return NULL;
}

const char *kokoro_lang_canonical(const char *lang)
{
    const lang_info *l = lang_find(lang);
    return l ? l->code : NULL;
}

int kokoro_lang_valid(const char *lang) { return lang_find(lang) != NULL; }

const char *kokoro_lang_from_voice(const char *voice)
{
    if (!voice || !voice[0]) return NULL;
    char c = (char)tolower((unsigned char)voice[0]);
    for (size_t i = 0; i < N_LANGS; i++)
        if (kk_langs[i].letter == c) return kk_langs[i].code;
    return NULL;
}

/* ---- the front end and its lexicon ---- */

typedef struct lex_entry {
    char *key;   /* lower-cased (ASCII) word */
    char *word;  /* as written */
    char *ph;
} lex_entry;

struct kokoro_frontend {
    const lang_info *lang;
    size_t target, first, max;
    int phoneme_input;
    lex_entry *lex;
    size_t nlex;
};

kokoro_frontend_options kokoro_frontend_options_default(void)
{
    kokoro_frontend_options o;
    memset(&o, 0, sizeof o);
    o.lang = "en-us";
    o.target_tokens = 250;
    o.max_tokens = KOKORO_MAX_TOKENS;
    return o;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = 0;
    return d;
}

static int lex_cmp(const void *a, const void *b)
{
    const lex_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->word, y->word);
}

static void lex_free(lex_entry *lex, size_t n)
{
    for (size_t i = 0; i < n; i++) { free(lex[i].key); free(lex[i].word); free(lex[i].ph); }
    free(lex);
}

static kokoro_status lex_load(const char *path, lex_entry **out, size_t *nout)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open the lexicon", path);
    size_t cap = 0, len = 0;
    char *buf = NULL;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > ((size_t)64 << 20)) { free(buf); fclose(f); return kk_error(KOKORO_ERR_FORMAT, "%s: lexicon larger than 64 MiB", path); }
            char *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); }
            buf = b;
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return kk_error(KOKORO_ERR_IO, "%s: read error", path); }
    kokoro_status st = kk_utf8_validate(buf ? buf : "", len, path);
    lex_entry *lex = NULL;
    size_t n = 0, lcap = 0, line = 0, i = 0;
    const kokoro_config *cfg = kokoro_config_default();
    while (!st && i < len) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        line++;
        size_t le = e;
        if (le > i && buf[le - 1] == '\r') le--;
        size_t b = i;
        i = e + 1;
        if (le == b || buf[b] == '#') continue;
        size_t tab = b;
        while (tab < le && buf[tab] != '\t') tab++;
        if (tab == le || tab == b) { st = kk_error(KOKORO_ERR_FORMAT, "%s: line %zu: expected word<TAB>phonemes", path, line); break; }
        size_t pb = tab + 1, pe = le;
        while (pb < pe && buf[pb] == ' ') pb++;
        while (pe > pb && buf[pe - 1] == ' ') pe--;
        if (pb == pe) { st = kk_error(KOKORO_ERR_FORMAT, "%s: line %zu: no phonemes after the tab", path, line); break; }
        for (size_t q = pb; q < pe && !st;) {
            uint32_t cp;
            size_t k = kk_utf8_decode(buf + q, pe - q, &cp);
            if (kokoro_config_token_id(cfg, cp) <= 0)
                st = kk_error(KOKORO_ERR_FORMAT, "%s: line %zu, byte %zu: phoneme U+%04X is not a Kokoro vocabulary symbol",
                              path, line, q - b + 1, (unsigned)cp);
            q += k;
        }
        if (st) break;
        if (n == lcap) {
            lcap = lcap ? lcap * 2 : 64;
            lex_entry *v = realloc(lex, lcap * sizeof *v);
            if (!v) { st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); break; }
            lex = v;
        }
        lex_entry en = {lower_dup(buf + b, tab - b), strndup(buf + b, tab - b), strndup(buf + pb, pe - pb)};
        lex[n++] = en;
        if (!en.key || !en.word || !en.ph) st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    }
    free(buf);
    if (st) { lex_free(lex, n); return st; }
    if (n) qsort(lex, n, sizeof *lex, lex_cmp);
    *out = lex;
    *nout = n;
    return KOKORO_OK;
}

/* The lexicon's phonemes for a word: an exact entry first, then any case. */
static const char *lex_find(const kokoro_frontend *fe, const char *w, size_t n)
{
    if (!fe->nlex || n > 255) return NULL;
    char low[256];
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)w[i]);
    low[n] = 0;
    size_t lo = 0, hi = fe->nlex;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(fe->lex[mid].key, low) < 0) lo = mid + 1;
        else hi = mid;
    }
    const char *any = NULL;
    for (size_t i = lo; i < fe->nlex && !strcmp(fe->lex[i].key, low); i++) {
        if (strlen(fe->lex[i].word) == n && !memcmp(fe->lex[i].word, w, n)) return fe->lex[i].ph;
        if (!any) any = fe->lex[i].ph;
    }
    return any;
}

kokoro_status kokoro_frontend_new(const kokoro_frontend_options *opts, kokoro_frontend **out)
{
    if (!out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_frontend_new: out is NULL");
    *out = NULL;
    kokoro_frontend_options o = opts ? *opts : kokoro_frontend_options_default();
    const lang_info *l = lang_find(o.lang ? o.lang : "en-us");
    if (!l) {
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "unknown language '%s': expected one of en-us, en-gb, es, fr-fr, hi, it, pt-br, ja, zh "
                        "(or a, b, e, f, h, i, p, j, z)", o.lang);
    }
    size_t max = o.max_tokens ? o.max_tokens : KOKORO_MAX_TOKENS;
    if (max > KOKORO_MAX_TOKENS)
        return kk_error(KOKORO_ERR_INVALID_ARG, "max_tokens %zu: expected 1..%d", o.max_tokens, KOKORO_MAX_TOKENS);
    size_t target = o.target_tokens ? o.target_tokens : 250;
    if (target > max) target = max;
    size_t first = o.first_tokens ? o.first_tokens : target;
    if (first > max) first = max;
    kokoro_frontend *fe = calloc(1, sizeof *fe);
    if (!fe) return kk_error(KOKORO_ERR_NOMEM, "kokoro_frontend_new: out of memory");
    fe->lang = l;
    fe->target = target;
    fe->first = first;
    fe->max = max;
    fe->phoneme_input = o.phoneme_input != 0;
    if (o.lexicon_path) {
        kokoro_status st = lex_load(o.lexicon_path, &fe->lex, &fe->nlex);
        if (st) { free(fe); return st; }
    }
    *out = fe;
    return KOKORO_OK;
}

void kokoro_frontend_free(kokoro_frontend *fe)
{
    if (!fe) return;
    lex_free(fe->lex, fe->nlex);
    free(fe);
}

/* ---- normalisation ---- */

/* Each input byte costs ~50 bytes of bookkeeping (spans per byte, twice). */
#define KK_MAX_TEXT ((size_t)16 << 20)

static kokoro_status normalize(const kokoro_frontend *fe, const char *text, size_t len, kk_mstr *out, kk_markups *mk)
{
    if (!text && len) return kk_error(KOKORO_ERR_INVALID_ARG, "text is NULL");
    if (len > KK_MAX_TEXT)
        return kk_error(KOKORO_ERR_INVALID_ARG, "text is %zu bytes: at most %zu at once (split it, e.g. by chapter)", len,
                        (size_t)KK_MAX_TEXT);
    kokoro_status st = kk_utf8_validate(text ? text : "", len, "text");
    if (st) return st;
    kk_mstr clean = {0};
    st = kk_text_clean(text ? text : "", len, fe->phoneme_input ? 1 : 2, &clean, mk);
    if (!st && fe->lang->english && !fe->phoneme_input) {
        st = kk_en_normalize(&clean, out);
        kk_mstr_free(&clean);
    } else {
        *out = clean;
    }
    return st;
}

kokoro_status kokoro_frontend_normalize(const kokoro_frontend *fe, const char *text, size_t len, char **out)
{
    if (!fe || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_frontend_normalize: NULL argument");
    *out = NULL;
    kk_mstr m = {0};
    kk_markups mk = {0};
    kokoro_status st = normalize(fe, text, len, &m, &mk);
    kk_markups_free(&mk);
    if (st) { kk_mstr_free(&m); return st; }
    size_t o = 0;
    for (size_t i = 0; i < m.len; i++)
        if (m.s[i] != '\x01') m.s[o++] = m.s[i];
    m.s[o] = 0;
    *out = m.s;
    m.s = NULL;
    kk_mstr_free(&m);
    return KOKORO_OK;
}

/* ---- units: one word (or a group espeak-ng joined) with its phonemes and
 * the punctuation after it ---- */

enum { BRK_NONE = 0, BRK_WORD, BRK_CLAUSE, BRK_SENT, BRK_PARA };

typedef struct unit {
    size_t wb, we;   /* the words, in the normalised text */
    size_t nb;       /* start of the unit's text (the end is the next unit's nb) */
    char *ph;        /* phonemes, marks and a trailing space */
    size_t ntok;     /* code points of ph without its trailing space */
    size_t core;     /* code points of the word phonemes before the marks (from lead) */
    size_t lead;     /* code points of leading marks */
    int brk;
} unit;

typedef struct units {
    unit *v;
    size_t n, cap;
} units;

static void units_free(units *u)
{
    for (size_t i = 0; i < u->n; i++) free(u->v[i].ph);
    free(u->v);
    memset(u, 0, sizeof *u);
}

static kokoro_status units_push(units *u, unit x)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        unit *v = realloc(u->v, cap * sizeof *v);
        if (!v) { free(x.ph); return kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); }
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = x;
    return KOKORO_OK;
}

/* Punctuation marks that cut phonemizer segments, and what they become in
 * the phoneme string ("" = no symbol). */
static const char *mark_symbol(uint32_t cp)
{
    switch (cp) {
    case ';': return ";";
    case ':': return ":";
    case ',': return ",";
    case '.': return ".";
    case '!': return "!";
    case '?': return "?";
    case '"': return "\"";
    case '(': return "(";
    case ')': return ")";
    case 0xA1: return "\xC2\xA1";
    case 0xBF: return "\xC2\xBF";
    case 0xAB: return "\xC2\xAB";
    case 0xBB: return "\xC2\xBB";
    case 0x2014: case 0x2013: return "\xE2\x80\x94";
    case 0x2026: return "\xE2\x80\xA6";
    case 0x201C: return "\xE2\x80\x9C";
    case 0x201D: return "\xE2\x80\x9D";
    case 0x3002: case 0xFF0E: case 0x0964: case 0x0965: case 0x06D4: return ".";
    case 0xFF0C: case 0x3001: case 0x060C: return ",";
    case 0xFF01: return "!";
    case 0xFF1F: case 0x061F: return "?";
    case 0xFF1B: case 0x061B: return ";";
    case 0xFF1A: return ":";
    case 0x300C: case 0x300E: case 0x3010: case 0x300A: return "\xE2\x80\x9C";
    case 0x300D: case 0x300F: case 0x3011: case 0x300B: return "\xE2\x80\x9D";
    case 0xFF08: return "(";
    case 0xFF09: return ")";
    default: return NULL;
    }
}

static int is_sentence_mark(uint32_t cp)
{
    return cp == '.' || cp == '!' || cp == '?' || cp == 0x2026 || cp == 0x3002 || cp == 0xFF0E || cp == 0xFF01 ||
           cp == 0xFF1F || cp == 0x0964 || cp == 0x0965 || cp == 0x06D4 || cp == 0x061F;
}

static int is_space_b(char c) { return c == ' ' || c == '\n'; }

/* Abbreviations whose period does not end a sentence (any language). */
static int abbrev_word(const char *w, size_t n)
{
    static const char *const ab[] = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e",
                                     "no", "fig", "approx", "sra", "srta", "dra", "mme", "mlle", "av", "gen",
                                     "capt", "lt", "col", "sgt", "rev", "mt", "vol", "pp", "cf", "ca", "sig",
                                     "ing", "dott", "sig.ra", "p.ex", "ex", "env", "cap", "pág", "núm"};
    if (n == 1) return w[0] >= 'A' && w[0] <= 'Z' && w[0] != 'I'; /* an initial, not "I." */
    if (n > 8) return 0;
    char low[16];
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)w[i]);
    low[n] = 0;
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++)
        if (!strcmp(low, ab[i])) return 1;
    return 0;
}

static int lower_at(const kk_mstr *m, size_t i, size_t pe)
{
    uint32_t cp;
    if (!kk_utf8_decode(m->s + i, pe - i, &cp)) return 0;
    return utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_LL;
}

typedef struct word {
    size_t b, e;        /* the word in the normalised text */
    size_t mb, me;      /* the punctuation run after it (may be empty) */
    int brk;
    int32_t item;       /* inline override index, or -1 */
    const char *lex;    /* lexicon phonemes, or NULL */
} word;

typedef struct words {
    word *v;
    size_t n, cap;
} words;

static kokoro_status words_push(words *w, word x)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        word *v = realloc(w->v, cap * sizeof *v);
        if (!v) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n++] = x;
    return KOKORO_OK;
}

/* Is the mark at s[i] (length k) inside a word, as in 3.14, 10:30 or e.g? */
static int mark_inside_word(const kk_mstr *m, size_t pb, size_t pe, size_t i, size_t k, uint32_t cp)
{
    if (cp != '.' && cp != ',' && cp != ':' && cp != 0x2013) return 0;
    if (i == pb || i + k >= pe) return 0;
    uint32_t a, b;
    size_t q = i - 1;
    while (q > pb && ((unsigned char)m->s[q] & 0xC0) == 0x80) q--;
    if (!kk_utf8_decode(m->s + q, i - q, &a) || !kk_utf8_decode(m->s + i + k, pe - i - k, &b)) return 0;
    if (cp == 0x2013) return 0;
    int aw = (a >= '0' && a <= '9') || ((a | 0x20) >= 'a' && (a | 0x20) <= 'z') || a >= 0x80;
    int bw = (b >= '0' && b <= '9') || ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') || b >= 0x80;
    return aw && bw && !mark_symbol(a) && !mark_symbol(b);
}

static size_t cps(const char *s, size_t n) { return kk_utf8_count(s, n); }

#define KK_MAX_WORD 64   /* code points; longer runs are cut ... */
#define KK_WORD_PIECE 40 /* ... into pieces this long */
#define KK_SHORT_LINE 50 /* bytes: a shorter line's break is a clause break */

/* Splits the piece [pb, pe) into words and punctuation runs. *lead_end is
 * the end of the punctuation before the first word. */
static kokoro_status split_words(const kokoro_frontend *fe, const kk_mstr *m, size_t pb, size_t pe, words *out,
                                 size_t *lead_end)
{
    size_t i = pb;
    *lead_end = pb;
    kokoro_status st = KOKORO_OK;
    int have = 0;
    while (i < pe && !st) {
        /* a punctuation and space run */
        size_t rb = i;
        int sent = 0, any = 0, nl = 0, para = 0, hard_nl = 0;
        while (i < pe) {
            if (m->item[i] >= 0) break;
            if (is_space_b(m->s[i])) {
                if (m->s[i] == '\n') {
                    nl++;
                    if (nl >= 2) para = 1;
                    /* a line break ends a clause after a short line (a heading,
                     * a list item, verse) but not inside hard-wrapped prose */
                    size_t q = i;
                    while (q > pb && m->s[q - 1] != '\n') q--;
                    if (i - q < KK_SHORT_LINE) hard_nl = 1;
                }
                i++;
                continue;
            }
            uint32_t cp;
            size_t k = kk_utf8_decode(m->s + i, pe - i, &cp);
            if (!k) return kk_error(KOKORO_ERR_INTERNAL, "text: bad UTF-8 in the normalised text");
            if (!mark_symbol(cp) || mark_inside_word(m, pb, pe, i, k, cp)) break;
            any = 1;
            sent |= is_sentence_mark(cp);
            i += k;
            nl = m->s[i - 1] == '\n' ? nl : 0;
        }
        if (have) {
            word *w = &out->v[out->n - 1];
            w->mb = rb;
            w->me = i;
            /* a lone period after an abbreviation or an initial is no sentence end */
            /* ... nor is one followed by a lower-case word ("U.S. forces", "approx. five") */
            int lone_period = sent && m->s[rb] == '.' && (rb + 1 == i || is_space_b(m->s[rb + 1])) && i < pe;
            if (lone_period && w->item < 0 && (abbrev_word(m->s + w->b, w->e - w->b) || lower_at(m, i, pe)))
                sent = 0, any = 0;
            w->brk = para ? BRK_PARA : sent ? BRK_SENT : (any || (hard_nl && i < pe)) ? BRK_CLAUSE : BRK_WORD;
            if (para && !any) w->brk = BRK_PARA;
        } else {
            *lead_end = i;
        }
        if (i >= pe) break;
        /* a word: up to space or an (outside-word) mark; override words whole */
        size_t wb = i;
        int32_t item = m->item[i];
        if (item >= 0) {
            while (i < pe && m->item[i] == item) i++;
        } else {
            while (i < pe && !is_space_b(m->s[i]) && m->item[i] < 0) {
                uint32_t cp;
                size_t k = kk_utf8_decode(m->s + i, pe - i, &cp);
                if (!k) return kk_error(KOKORO_ERR_INTERNAL, "text: bad UTF-8 in the normalised text");
                if (mark_symbol(cp) && !mark_inside_word(m, pb, pe, i, k, cp)) break;
                i += k;
            }
        }
        word w = {wb, i, i, i, BRK_WORD, item, NULL};
        if (item < 0 && !fe->phoneme_input) w.lex = lex_find(fe, m->s + wb, i - wb);
        if (item < 0 && !w.lex && !fe->phoneme_input && cps(m->s + wb, i - wb) > KK_MAX_WORD) {
            /* espeak-ng silently truncates very long words: cut them into
             * pieces it reads whole (the hard split of a single long run) */
            size_t q = wb;
            while (!st && q < i) {
                size_t e = q, c = 0;
                while (e < i && c < KK_WORD_PIECE) { e++; while (e < i && ((unsigned char)m->s[e] & 0xC0) == 0x80) e++; c++; }
                word p = {q, e, e, e, BRK_WORD, -1, NULL};
                st = words_push(out, p);
                q = e;
            }
        } else {
            st = words_push(out, w);
        }
        have = 1;
    }
    return st;
}


/* Appends the phoneme form of a punctuation run (spaces become one space). */
static void run_symbols(const kk_mstr *m, size_t b, size_t e, char *dst, size_t *dn)
{
    size_t i = b;
    while (i < e) {
        if (is_space_b(m->s[i])) {
            if (*dn && dst[*dn - 1] != ' ') dst[(*dn)++] = ' ';
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = kk_utf8_decode(m->s + i, e - i, &cp);
        if (!k) { i++; continue; }
        const char *sym = mark_symbol(cp);
        if (sym && kk_utf8_decode(sym, strlen(sym), &cp) && kk_vocab_id(cp) > 0) {
            size_t l = strlen(sym);
            memcpy(dst + *dn, sym, l);
            *dn += l;
        }
        i += k;
    }
    dst[*dn] = 0;
}

/* Builds the unit for words [a, b) whose word phonemes are ph (len pl). */
static kokoro_status make_unit(const kk_mstr *m, const words *ws, size_t a, size_t b, const char *ph, size_t pl,
                               size_t lead_b, size_t lead_e, units *out)
{
    const word *last = &ws->v[b - 1];
    size_t leadn = lead_e - lead_b;
    size_t runn = last->me - last->mb;
    /* symbols are at most as long as their UTF-8 text (3 bytes each) */
    char *s = malloc(leadn * 3 + pl + runn * 3 + 8);
    if (!s) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
    size_t n = 0;
    run_symbols(m, lead_b, lead_e, s, &n);
    while (n && s[n - 1] == ' ') n--;
    size_t lead = cps(s, n);
    memcpy(s + n, ph, pl);
    n += pl;
    size_t core = cps(s, n) - lead;
    size_t before = n;
    run_symbols(m, last->mb, last->me, s, &n);
    /* as phonemizer restores marks: the run as written (spaces become one
     * space); a plain word gap is one space */
    /* no space inside a word cut in pieces */
    int glued = last->me == last->mb && last->me < m->len && !is_space_b(m->s[last->me]) && m->s[last->me] != '\x01';
    if (n == before && !glued) s[n++] = ' ';
    s[n] = 0;
    unit u;
    u.wb = ws->v[a].b;
    u.we = last->e;
    u.nb = a == 0 ? lead_b : ws->v[a].b;
    u.ph = s;
    u.ntok = cps(s, n && s[n - 1] == ' ' ? n - 1 : n);
    u.core = core;
    u.lead = lead;
    u.brk = last->brk;
    return units_push(out, u);
}

/* Phonemes of a run of plain text (no marks): espeak-ng, or the text itself
 * filtered to the vocabulary when the input already is phonemes. */
static kokoro_status run_phonemes(const kokoro_frontend *fe, const char *t, size_t n, char **out)
{
    if (!fe->phoneme_input) return kk_espeak_phonemize(fe->lang->espeak, t, n, out);
    char *s = malloc(n + 1);
    if (!s) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
    memcpy(s, t, n);
    s[n] = 0;
    kk_vocab_filter(s, n);
    *out = s;
    return KOKORO_OK;
}

/* Splits a phoneme string with more than max code points into units: the
 * first keeps the text, the others follow it with an empty span. Used only
 * for overrides and lexicon entries longer than a whole chunk. */
static kokoro_status split_phonemes_unit(unit u, size_t max, units *out)
{
    const char *s = u.ph;
    size_t n = strlen(s), i = 0;
    kokoro_status st = KOKORO_OK;
    int first = 1;
    while (i < n && !st) {
        size_t j = i, c = 0;
        while (j < n && c < max) { j++; while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80) j++; c++; }
        unit p = u;
        p.ph = malloc(j - i + 2);
        if (!p.ph) { st = kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); break; }
        memcpy(p.ph, s + i, j - i);
        p.ph[j - i] = ' ';
        p.ph[j - i + 1] = 0;
        p.ntok = c;
        p.lead = first ? u.lead : 0;
        p.core = first ? (c > u.lead ? c - u.lead : 0) : c;
        if (!first) { p.nb = u.we; p.wb = u.we; }
        p.brk = j >= n ? u.brk : BRK_WORD;
        st = units_push(out, p);
        first = 0;
        i = j;
        while (i < n && s[i] == ' ') i++;
    }
    free(u.ph);
    return st;
}

typedef struct build {
    const kokoro_frontend *fe;
    const kk_mstr *m;
    const kk_markups *mk;
    size_t lead_b, lead_e;   /* punctuation before the first word */
} build;

static kokoro_status push_checked(build *bd, units *out, size_t before)
{
    /* over-long override/lexicon units are cut at the phoneme level */
    for (size_t k = before; k < out->n; k++)
        if (out->v[k].ntok > bd->fe->max) {
            unit u = out->v[k];
            units rest = {0};
            for (size_t q = k + 1; q < out->n; q++) { kokoro_status st = units_push(&rest, out->v[q]); if (st) return st; }
            out->n = k;
            kokoro_status st = split_phonemes_unit(u, bd->fe->max, out);
            for (size_t q = 0; q < rest.n && !st; q++) st = units_push(out, rest.v[q]);
            free(rest.v);
            if (st) return st;
        }
    return KOKORO_OK;
}

static kokoro_status phon_words(build *bd, const words *ws, size_t a, size_t b, units *out);

/* Phonemes the user gave for a word: an inline override or the lexicon. */
static const char *known_phonemes(const build *bd, const word *w)
{
    if (w->item >= 0) return bd->mk->v[w->item].phonemes;
    return w->lex;
}

static kokoro_status known_unit(build *bd, const words *ws, size_t k, units *out)
{
    const char *ph = known_phonemes(bd, &ws->v[k]);
    size_t before = out->n;
    int first = k == 0;
    kokoro_status st = make_unit(bd->m, ws, k, k + 1, ph, strlen(ph), first ? bd->lead_b : 0, first ? bd->lead_e : 0, out);
    return st ? st : push_checked(bd, out, before);
}

/* One word too long for a chunk: its text is halved (at a code point) until
 * each piece's phonemes fit. */
static kokoro_status hard_split(build *bd, const word *w, size_t a_is_first, units *out)
{
    const kk_mstr *m = bd->m;
    size_t len = w->e - w->b;
    if (len <= 4 || cps(m->s + w->b, len) <= 1) {
        /* one code point: only the phoneme level is left */
        char *ph = NULL;
        kokoro_status st = run_phonemes(bd->fe, m->s + w->b, len, &ph);
        if (st) return st;
        words one = {(word *)w, 1, 1};
        size_t before = out->n;
        st = make_unit(m, &one, 0, 1, ph, strlen(ph), a_is_first ? bd->lead_b : 0, a_is_first ? bd->lead_e : 0, out);
        free(ph);
        if (!st && !a_is_first) out->v[out->n - 1].nb = w->b;
        return st ? st : push_checked(bd, out, before);
    }
    size_t mid = w->b + len / 2;
    while (mid > w->b && ((unsigned char)m->s[mid] & 0xC0) == 0x80) mid--;
    word pieces[2] = {*w, *w};
    pieces[0].e = mid;
    pieces[0].mb = pieces[0].me = mid;
    pieces[0].brk = BRK_WORD;
    pieces[1].b = mid;
    kokoro_status st = KOKORO_OK;
    for (int k = 0; k < 2 && !st; k++) {
        words one = {&pieces[k], 1, 1};
        size_t before = out->n;
        build sub = *bd;
        if (!(a_is_first && k == 0)) sub.lead_b = sub.lead_e = 0;
        st = phon_words(&sub, &one, 0, 1, out);
        if (!st && !(a_is_first && k == 0) && out->n > before) out->v[before].nb = pieces[k].b;
    }
    return st;
}

/* Aligns N input words to M output words of espeak-ng when their counts
 * differ (it joins "in the" into "ɪnðə", splits "1984"): a dynamic program
 * over steps of a input words to b output words (one side 1, the other 1..4),
 * costing the squared gap between the output length and the length the
 * input letters predict, plus a little for every join or split. A band
 * around the diagonal keeps it linear. Sets asg[k] to the first output word
 * of input word k's step; returns 0 when no path exists. */
#define ALIGN_BAND 12
static int align_dp(const build *bd, const words *ws, size_t a, size_t N, const char *ph, const size_t *ob,
                    const size_t *oe, size_t M, size_t *asg)
{
    static const struct { unsigned char a, b; } steps[] = {{1, 1}, {2, 1}, {3, 1}, {4, 1}, {1, 2}, {1, 3}, {1, 4}};
    const size_t W = 2 * ALIGN_BAND + 1;
    double *pi = malloc((N + 1) * sizeof *pi), *po = malloc((M + 1) * sizeof *po);
    double *cost = malloc((N + 1) * W * sizeof *cost);
    unsigned char *from = malloc((N + 1) * W);
    int ok = 0;
    if (!pi || !po || !cost || !from) goto done;
    pi[0] = po[0] = 0;
    for (size_t k = 0; k < N; k++) pi[k + 1] = pi[k] + (double)cps(bd->m->s + ws->v[a + k].b, ws->v[a + k].e - ws->v[a + k].b);
    for (size_t q = 0; q < M; q++) po[q + 1] = po[q] + (double)cps(ph + ob[q], oe[q] - ob[q]);
    double r = pi[N] > 0 ? po[M] / pi[N] : 1;
    /* cell (k, q) lives at column q - centre(k) + band */
#define CENTRE(k) ((long)((double)(k) * (double)M / (double)N + 0.5))
    for (size_t i = 0; i < (N + 1) * W; i++) { cost[i] = 1e300; from[i] = 255; }
    cost[0 * W + (size_t)(0 - CENTRE(0) + ALIGN_BAND)] = 0;
    for (size_t k = 0; k < N; k++) {
        long c0 = CENTRE(k);
        for (size_t col = 0; col < W; col++) {
            double here = cost[k * W + col];
            if (here >= 1e299) continue;
            long q = c0 + (long)col - ALIGN_BAND;
            for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
                size_t k2 = k + steps[s].a;
                long q2 = q + steps[s].b;
                if (k2 > N || q2 > (long)M) continue;
                long col2 = q2 - CENTRE(k2) + ALIGN_BAND;
                if (col2 < 0 || col2 >= (long)W) continue;
                double want = (pi[k2] - pi[k]) * r, got = po[q2] - po[q];
                double c = here + (got - want) * (got - want) + 4.0 * (steps[s].a + steps[s].b - 2);
                if (c < cost[k2 * W + (size_t)col2]) { cost[k2 * W + (size_t)col2] = c; from[k2 * W + (size_t)col2] = (unsigned char)s; }
            }
        }
    }
    long endcol = (long)M - CENTRE(N) + ALIGN_BAND;
    if (endcol < 0 || endcol >= (long)W || from[N * W + (size_t)endcol] == 255) goto done;
    /* walk back */
    size_t k = N;
    long q = (long)M;
    while (k > 0) {
        long col = q - CENTRE(k) + ALIGN_BAND;
        unsigned char s = from[k * W + (size_t)col];
        if (s == 255) goto done;
        size_t k0 = k - steps[s].a;
        long q0 = q - steps[s].b;
        for (size_t i = k0; i < k; i++) asg[i] = (size_t)q0;
        k = k0;
        q = q0;
    }
    ok = q == 0;
#undef CENTRE
done:
    free(pi); free(po); free(cost); free(from);
    return ok;
}

/* Phonemizes the plain words [a, b) as one espeak-ng run and aligns its
 * words back to them. */
static kokoro_status phon_words(build *bd, const words *ws, size_t a, size_t b, units *out)
{
    const kk_mstr *m = bd->m;
    size_t tl = 0;
    for (size_t k = a; k < b; k++) tl += ws->v[k].e - ws->v[k].b + 1;
    char *t = malloc(tl + 1);
    if (!t) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
    size_t n = 0;
    for (size_t k = a; k < b; k++) {
        if (n) t[n++] = ' ';
        memcpy(t + n, m->s + ws->v[k].b, ws->v[k].e - ws->v[k].b);
        n += ws->v[k].e - ws->v[k].b;
    }
    t[n] = 0;
    char *ph = NULL;
    kokoro_status st = run_phonemes(bd->fe, t, n, &ph);
    free(t);
    if (st) return st;
    /* output words */
    size_t M = 0, pl = strlen(ph);
    for (size_t i = 0; i < pl; i++) if (ph[i] != ' ' && (i == 0 || ph[i - 1] == ' ')) M++;
    size_t N = b - a;
    size_t *ob = calloc(M + 1, sizeof *ob), *oe = calloc(M + 1, sizeof *oe), *asg = calloc(N + 1, sizeof *asg);
    if (!ob || !oe || !asg) { free(ob); free(oe); free(asg); free(ph); return kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); }
    size_t j = 0;
    for (size_t i = 0; i < pl; i++) {
        if (ph[i] != ' ' && (i == 0 || ph[i - 1] == ' ')) ob[j] = i;
        if (ph[i] != ' ' && (i + 1 == pl || ph[i + 1] == ' ')) oe[j++] = i + 1;
    }
    if (M == N || M == 0) {
        for (size_t k = 0; k < N; k++) asg[k] = M ? k : 0;
    } else if (!align_dp(bd, ws, a, N, ph, ob, oe, M, asg)) {
        /* proportional alignment: an input word goes to the output word
         * under its middle (espeak-ng joins "in the" and splits "1984") */
        double tin = 0, tout = 0;
        for (size_t k = a; k < b; k++) tin += (double)cps(m->s + ws->v[k].b, ws->v[k].e - ws->v[k].b);
        for (size_t q = 0; q < M; q++) tout += (double)cps(ph + ob[q], oe[q] - ob[q]);
        double acc = 0, oacc = 0;
        size_t q = 0;
        for (size_t k = 0; k < N; k++) {
            double c = (double)cps(m->s + ws->v[a + k].b, ws->v[a + k].e - ws->v[a + k].b);
            double mid = (acc + c / 2) / (tin > 0 ? tin : 1);
            acc += c;
            while (q + 1 < M && (oacc + (double)cps(ph + ob[q], oe[q] - ob[q])) / (tout > 0 ? tout : 1) < mid) {
                oacc += (double)cps(ph + ob[q], oe[q] - ob[q]);
                q++;
            }
            asg[k] = q;
        }
    }
    /* a word with given phonemes must be a group of its own; espeak-ng saw
     * it in context, but if it joined it to a neighbour, redo without it */
    for (size_t k = 0; k < N; k++) {
        if (!known_phonemes(bd, &ws->v[a + k])) continue;
        int alone = (k == 0 || asg[k - 1] != asg[k]) && (k + 1 == N || asg[k + 1] != asg[k]);
        if (alone && M) continue;
        free(ob); free(oe); free(asg); free(ph);
        st = k ? phon_words(bd, ws, a, a + k, out) : KOKORO_OK;
        if (!st) st = known_unit(bd, ws, a + k, out);
        if (!st && a + k + 1 < b) st = phon_words(bd, ws, a + k + 1, b, out);
        return st;
    }
    /* groups of input words with the same output word */
    size_t before = out->n;
    int too_long = 0;
    for (size_t k = 0; k < N && !st;) {
        size_t e = k;
        while (e < N && asg[e] == asg[k]) e++;
        size_t o0 = k == 0 ? 0 : asg[k], o1 = e < N ? asg[e] : M;
        const char *p = M ? ph + ob[o0] : "";
        size_t plen = M && o1 > o0 ? oe[o1 - 1] - ob[o0] : 0;
        if (M == 0) o1 = 0;
        int first = a + k == 0;
        const char *given = e == k + 1 ? known_phonemes(bd, &ws->v[a + k]) : NULL;
        if (given) { p = given; plen = strlen(given); }
        st = make_unit(m, ws, a + k, a + e, p, plen, first ? bd->lead_b : 0, first ? bd->lead_e : 0, out);
        if (!st && !given && out->v[out->n - 1].ntok > bd->fe->max) too_long = 1;
        k = e;
    }
    free(ob); free(oe); free(asg); free(ph);
    if (!st && !too_long) return push_checked(bd, out, before);
    if (st) return st;
    /* something is longer than a chunk: redo in halves, or cut the word */
    for (size_t k = before; k < out->n; k++) free(out->v[k].ph);
    out->n = before;
    if (N > 1) {
        size_t mid = a + N / 2;
        st = phon_words(bd, ws, a, mid, out);
        if (!st) st = phon_words(bd, ws, mid, b, out);
        return st;
    }
    return hard_split(bd, &ws->v[a], a == 0, out);
}

/* The units of words [i, j) of a piece split into ws: one espeak-ng run per
 * phonemizer segment (words up to a mark or a clause-ending line break). */
static kokoro_status build_units(build *bd, const words *ws, size_t i, size_t j, units *out)
{
    kokoro_status st = KOKORO_OK;
    const kk_mstr *m = bd->m;
    while (!st && i < j) {
        size_t e = i;
        while (e < j) {
            int cut = ws->v[e].brk >= BRK_CLAUSE;
            for (size_t q = ws->v[e].mb; q < ws->v[e].me && !cut; q++)
                if (!is_space_b(m->s[q])) cut = 1;
            e++;
            if (cut) break;
        }
        st = phon_words(bd, ws, i, e, out);
        i = e;
    }
    return st;
}

/* ---- chunks ---- */

typedef struct chunks {
    kokoro_chunk *v;
    size_t n, cap;
} chunks;

static kokoro_status chunks_push(chunks *c, kokoro_chunk x)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        kokoro_chunk *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            free(x.text); free(x.phonemes); free(x.ids); free(x.words);
            return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = x;
    return KOKORO_OK;
}

static void span_of(const kk_mstr *m, size_t b, size_t e, size_t *sb, size_t *se)
{
    size_t lo = (size_t)-1, hi = 0;
    for (size_t i = b; i < e; i++) {
        if (m->beg[i] < lo) lo = m->beg[i];
        if (m->end[i] > hi) hi = m->end[i];
    }
    if (lo == (size_t)-1) { lo = b < m->len ? m->beg[b] : (m->len ? m->end[m->len - 1] : 0); hi = lo; }
    *sb = lo;
    *se = hi;
}

/* One chunk from units [a, b); its text runs to text_end. */
static kokoro_status emit_chunk(const kk_mstr *m, const units *u, size_t a, size_t b, size_t text_end, chunks *out)
{
    kokoro_chunk c;
    memset(&c, 0, sizeof c);
    size_t tb = u->v[a].nb;
    c.text = strndup(m->s + tb, text_end - tb);
    span_of(m, tb, text_end, &c.src_begin, &c.src_end);
    size_t pl = 0;
    for (size_t k = a; k < b; k++) pl += strlen(u->v[k].ph);
    c.phonemes = malloc(pl + 1);
    c.ids = malloc((pl + 1) * sizeof *c.ids);
    c.words = malloc((b - a) * sizeof *c.words);
    if (!c.text || !c.phonemes || !c.ids || !c.words) {
        free(c.text); free(c.phonemes); free(c.ids); free(c.words);
        return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
    }
    size_t n = 0, tok = 0;
    for (size_t k = a; k < b; k++) {
        const unit *x = &u->v[k];
        size_t l = strlen(x->ph);
        memcpy(c.phonemes + n, x->ph, l);
        n += l;
        if (x->we > x->wb || x->core) {
            kokoro_word w;
            w.token_begin = tok + x->lead;
            w.token_end = w.token_begin + x->core;
            span_of(m, x->wb, x->we, &w.src_begin, &w.src_end);
            c.words[c.n_words++] = w;
        }
        tok += cps(x->ph, l);
    }
    while (n && c.phonemes[n - 1] == ' ') n--;
    c.phonemes[n] = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = kk_utf8_decode(c.phonemes + i, n - i, &cp);
        if (!k) { k = 1; cp = 0; }
        int64_t id = kk_vocab_id(cp);
        if (id > 0) c.ids[c.n_ids++] = id;
        i += k;
    }
    /* word token ranges end inside the chunk's trimmed ids */
    for (size_t w = 0; w < c.n_words; w++) {
        if (c.words[w].token_end > c.n_ids) c.words[w].token_end = c.n_ids;
        if (c.words[w].token_begin > c.words[w].token_end) c.words[w].token_begin = c.words[w].token_end;
    }
    c.ends_sentence = u->v[b - 1].brk >= BRK_SENT;
    c.ends_paragraph = u->v[b - 1].brk >= BRK_PARA;
    return chunks_push(out, c);
}

static int cut_rank(int brk) { return brk >= BRK_SENT ? 2 : brk >= BRK_CLAUSE ? 1 : 0; }

void kokoro_chunk_clear(kokoro_chunk *c)
{
    if (!c) return;
    free(c->text); free(c->phonemes); free(c->ids); free(c->words);
    memset(c, 0, sizeof *c);
}

/* Evens out the last two chunks of a paragraph, units [pa, pe] and (pe, end],
 * when the last is under half the target: greedy packing leaves a short tail,
 * and with parallel workers the worker that draws a long chunk then runs
 * alone at the end. Only sentence and clause cuts move: the new cut is of
 * the same kind or better (a sentence end stays a sentence end) and only
 * lowers the larger of the two,
 * so neither grows past what greedy packing allowed. Returns the unit the
 * first chunk now ends at (pe when nothing is better). */
static size_t balance_cut(const kokoro_frontend *fe, const units *u, size_t pa, size_t pe, size_t end)
{
    size_t left = 0, total = 0;
    for (size_t k = pa; k <= end; k++) total += u->v[k].ntok + (k > pa ? 1 : 0);
    for (size_t k = pa; k <= pe; k++) left += u->v[k].ntok + (k > pa ? 1 : 0);
    size_t right = total - left - 1;
    if (2 * right >= fe->target) return pe;
    size_t best = pe, best_max = left > right ? left : right, l = 0;
    int rank = cut_rank(u->v[pe].brk);
    if (rank == 0) return pe; /* a sentence too long for a chunk: cut where greedy cuts it, as before */
    for (size_t c = pa; c < end; c++) {
        l += u->v[c].ntok + (c > pa ? 1 : 0);
        size_t r = total - l - 1, m = l > r ? l : r;
        if (cut_rank(u->v[c].brk) >= rank && m < best_max && m <= fe->target && m <= fe->max) best = c, best_max = m;
    }
    return best;
}

/* Packs the units of one piece: the last sentence end that fits the budget,
 * else the last clause end, else the last word; a paragraph end always cuts;
 * then a short last chunk of a paragraph is evened out with the one before. */
static kokoro_status pack(const kokoro_frontend *fe, const kk_mstr *m, const units *u, size_t piece_end, int *first,
                          chunks *out)
{
    size_t i = 0;
    kokoro_status st = KOKORO_OK;
    int have_prev = 0; /* the chunk just emitted, units [pa, pe], was packed to the target and may shrink */
    size_t pa = 0, pe = 0;
    while (i < u->n && !st) {
        size_t budget = *first ? fe->first : fe->target;
        int to_target = budget == fe->target; /* a smaller first chunk is left as it is */
        size_t sum = 0, k = i;
        long sent = -1, clause = -1, word = -1;
        for (; k < u->n; k++) {
            size_t t = u->v[k].ntok + (k > i ? 1 : 0); /* the space between */
            if (k > i && (sum + t > budget || sum + t > fe->max)) break;
            sum += t;
            if (u->v[k].brk >= BRK_SENT) sent = (long)k;
            if (u->v[k].brk >= BRK_CLAUSE) clause = (long)k;
            word = (long)k;
            if (u->v[k].brk >= BRK_PARA) break;
        }
        size_t end;
        if (k >= u->n || (k < u->n && u->v[k].brk >= BRK_PARA && (long)k == word)) end = (size_t)word;
        else if (sent >= 0) end = (size_t)sent;
        else if (clause >= 0) end = (size_t)clause;
        else end = (size_t)word;
        size_t text_end = end + 1 < u->n ? u->v[end + 1].nb : piece_end;
        int last_of_para = end + 1 == u->n || u->v[end].brk >= BRK_PARA;
        size_t cut = pe;
        if (have_prev && to_target && last_of_para && pe + 1 == i)
            cut = balance_cut(fe, u, pa, pe, end);
        if (have_prev && cut != pe) { /* re-emit the previous chunk shorter, then this one */
            kokoro_chunk_clear(&out->v[--out->n]);
            st = emit_chunk(m, u, pa, cut + 1, u->v[cut + 1].nb, out);
            i = cut + 1;
        }
        if (!st) st = emit_chunk(m, u, i, end + 1, text_end, out);
        if (!st && out->v[out->n - 1].n_ids) *first = 0;
        have_prev = to_target && !last_of_para;
        pa = i;
        pe = end;
        i = end + 1;
    }
    return st;
}

void kokoro_chunks_free(kokoro_chunk *c, size_t n)
{
    if (!c) return;
    for (size_t i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].phonemes);
        free(c[i].ids);
        free(c[i].words);
    }
    free(c);
}

/* ---- the chunker: the text normalised at once, then phonemised and packed
 * a paragraph at a time. A paragraph end always cuts a chunk and no
 * phonemizer segment crosses one, so this gives exactly the chunks of
 * phonemising the whole text first. ---- */

struct kokoro_chunker {
    const kokoro_frontend *fe;
    kk_mstr m;
    kk_markups mk;
    size_t pb, pe;    /* the current piece (text between pause markers) */
    int in_piece;     /* ws holds the words of [pb, pe) */
    words ws;
    build bd;
    size_t wi;        /* the next word to phonemise */
    size_t units;     /* units the piece has made so far */
    int first;        /* the next chunk with sound is the first: use the short budget */
    int read;         /* the whole text is in q */
    chunks q;         /* chunks made, not yet returned: [qh, q.n) */
    size_t qh, returned;
    kokoro_status st; /* sticky */
};

static kokoro_status push_plain(chunks *q, const char *text, size_t n, size_t src_b, size_t src_e, float pause_s)
{
    kokoro_chunk c;
    memset(&c, 0, sizeof c);
    c.text = strndup(text, n);
    c.phonemes = strdup("");
    c.src_begin = src_b;
    c.src_end = src_e;
    c.pause_s = pause_s;
    if (!c.text || !c.phonemes) { free(c.text); free(c.phonemes); return kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); }
    return chunks_push(q, c);
}

/* One step: starts a piece, packs one paragraph, or ends a piece. */
static kokoro_status chunker_step(kokoro_chunker *ch)
{
    kk_mstr *m = &ch->m;
    if (!ch->in_piece) {
        ch->pe = ch->pb;
        while (ch->pe < m->len && m->s[ch->pe] != '\x01') ch->pe++;
        ch->ws.n = 0;
        size_t lead_end = ch->pb;
        kokoro_status st = split_words(ch->fe, m, ch->pb, ch->pe, &ch->ws, &lead_end);
        if (st) return st;
        ch->bd = (build){ch->fe, m, &ch->mk, ch->pb, lead_end};
        ch->in_piece = 1;
        ch->wi = 0;
        ch->units = 0;
        return KOKORO_OK;
    }
    if (ch->wi < ch->ws.n) {
        size_t j = ch->wi;
        while (j < ch->ws.n && ch->ws.v[j].brk < BRK_PARA) j++;
        if (j < ch->ws.n) j++; /* the paragraph's last word */
        units u = {0};
        kokoro_status st = build_units(&ch->bd, &ch->ws, ch->wi, j, &u);
        /* the paragraph's text runs to the next one's first word */
        size_t text_end = j < ch->ws.n ? ch->ws.v[j].b : ch->pe;
        if (!st && u.n) st = pack(ch->fe, m, &u, text_end, &ch->first, &ch->q);
        ch->units += u.n;
        units_free(&u);
        ch->wi = j;
        return st;
    }
    kokoro_status st = KOKORO_OK;
    if (ch->units == 0 && ch->pe > ch->pb) {
        /* only spaces or punctuation: kept as a silent chunk so no text is lost */
        size_t sb, se;
        span_of(m, ch->pb, ch->pe, &sb, &se);
        st = push_plain(&ch->q, m->s + ch->pb, ch->pe - ch->pb, sb, se, 0);
    }
    ch->in_piece = 0;
    if (st || ch->pe >= m->len) {
        ch->read = 1;
        if (!st && ch->q.n) { /* the text's end is a paragraph end */
            kokoro_chunk *last = &ch->q.v[ch->q.n - 1];
            last->ends_sentence = last->ends_paragraph = last->n_ids > 0;
        }
        return st;
    }
    /* a pause marker */
    st = push_plain(&ch->q, "", 0, m->beg[ch->pe], m->end[ch->pe], ch->mk.v[m->item[ch->pe]].pause_s);
    ch->pb = ch->pe + 1;
    return st;
}

kokoro_status kokoro_chunker_new(const kokoro_frontend *fe, const char *text, size_t len, kokoro_chunker **out)
{
    if (!fe || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_chunker_new: NULL argument");
    *out = NULL;
    kokoro_chunker *ch = calloc(1, sizeof *ch);
    if (!ch) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory");
    ch->fe = fe;
    ch->first = 1;
    kokoro_status st = normalize(fe, text, len, &ch->m, &ch->mk);
    if (st) {
        kokoro_chunker_free(ch);
        return st;
    }
    *out = ch;
    return KOKORO_OK;
}

kokoro_status kokoro_chunker_next(kokoro_chunker *ch, kokoro_chunk *chunk, int *have)
{
    if (!ch || !chunk || !have) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_chunker_next: NULL argument");
    *have = 0;
    memset(chunk, 0, sizeof *chunk);
    if (ch->st) return kk_error(ch->st, "text: the chunker stopped at an earlier error");
    /* keep one chunk ahead: the last one is only known once the text ends */
    if (ch->qh == ch->q.n) ch->qh = ch->q.n = 0;
    while (!ch->read && ch->q.n - ch->qh < 2) {
        kokoro_status st = chunker_step(ch);
        if (st) return ch->st = st;
    }
    if (ch->qh == ch->q.n) return KOKORO_OK;
    *chunk = ch->q.v[ch->qh++];
    ch->returned++;
    *have = 1;
    return KOKORO_OK;
}

int kokoro_chunker_finished(const kokoro_chunker *ch) { return ch && ch->read && ch->qh == ch->q.n; }

size_t kokoro_chunker_total(const kokoro_chunker *ch, int *exact)
{
    if (exact) *exact = 0;
    if (!ch) return 0;
    size_t known = ch->returned + (ch->q.n - ch->qh);
    if (ch->read) {
        if (exact) *exact = 1;
        return known;
    }
    size_t at = !ch->in_piece ? ch->pb : ch->wi < ch->ws.n ? ch->ws.v[ch->wi].b : ch->pe;
    size_t left = ch->m.len > at ? ch->m.len - at : 0;
    /* bytes per chunk so far, pulled towards a prior of about a byte per
     * token (4 chunks' worth) so that a short title first does not make
     * the estimate explode */
    double per = ((double)at + 4.0 * (double)ch->fe->target) / ((double)known + 4.0);
    double rest = (double)left / per;
    /* known > returned here: one chunk is always held back until the end */
    size_t r = left == 0 ? 0 : rest < 1 ? 1 : rest > 1e12 ? (size_t)1e12 : (size_t)(rest + 0.5);
    return known + r;
}

void kokoro_chunker_free(kokoro_chunker *ch)
{
    if (!ch) return;
    for (size_t i = ch->qh; i < ch->q.n; i++) kokoro_chunk_clear(&ch->q.v[i]);
    free(ch->q.v);
    free(ch->ws.v);
    kk_mstr_free(&ch->m);
    kk_markups_free(&ch->mk);
    free(ch);
}

kokoro_status kokoro_frontend_chunks(const kokoro_frontend *fe, const char *text, size_t len, kokoro_chunk **out,
                                     size_t *n_out)
{
    if (!fe || !out || !n_out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_frontend_chunks: NULL argument");
    *out = NULL;
    *n_out = 0;
    kokoro_chunker *ch;
    kokoro_status st = kokoro_chunker_new(fe, text, len, &ch);
    if (st) return st;
    chunks cs = {0};
    for (;;) {
        kokoro_chunk c;
        int have;
        if ((st = kokoro_chunker_next(ch, &c, &have)) != KOKORO_OK || !have) break;
        if ((st = chunks_push(&cs, c)) != KOKORO_OK) break;
    }
    kokoro_chunker_free(ch);
    if (st) { kokoro_chunks_free(cs.v, cs.n); return st; }
    *out = cs.v;
    *n_out = cs.n;
    return KOKORO_OK;
}

kokoro_status kokoro_frontend_phoneme_lines(const kokoro_frontend *fe, const char *text, size_t len, char **out)
{
    if (!out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_frontend_phoneme_lines: out is NULL");
    *out = NULL;
    kokoro_chunk *c;
    size_t n;
    kokoro_status st = kokoro_frontend_chunks(fe, text, len, &c, &n);
    if (st) return st;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += strlen(c[i].phonemes) + 1;
    char *s = malloc(total);
    if (!s) { kokoro_chunks_free(c, n); return kk_error(KOKORO_ERR_NOMEM, "text: out of memory"); }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].n_ids) continue;
        size_t l = strlen(c[i].phonemes);
        memcpy(s + o, c[i].phonemes, l);
        o += l;
        s[o++] = '\n';
    }
    s[o] = 0;
    kokoro_chunks_free(c, n);
    *out = s;
    return KOKORO_OK;
}
