/* libespeak-ng behind one process-wide lock (it keeps global state: the
 * current voice, dictionaries, buffers), with a cache keyed on
 * (language, text) so repeated runs of words cost a hash lookup. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <espeak-ng/speak_lib.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/text.h"

#define CACHE_CAP (1u << 15)          /* slots; cleared when three quarters full ... */
#define CACHE_BYTES ((size_t)32 << 20) /* ... or when keys and values pass 32 MiB */

typedef struct entry {
    char *key;   /* voice '\x1f' text */
    char *value;
    uint64_t hash;
} entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_init; /* 0 not tried, 1 ready, -1 failed */
static char g_voice[32];
static entry *g_cache;
static size_t g_cache_n;
static size_t g_cache_bytes;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static void cache_clear(void)
{
    for (size_t i = 0; i < CACHE_CAP; i++) { free(g_cache[i].key); free(g_cache[i].value); }
    memset(g_cache, 0, CACHE_CAP * sizeof *g_cache);
    g_cache_n = 0;
    g_cache_bytes = 0;
}

static entry *cache_slot(const char *key, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & (CACHE_CAP - 1);
    while (g_cache[i].key) {
        if (g_cache[i].hash == h && !strncmp(g_cache[i].key, key, klen) && g_cache[i].key[klen] == 0) return &g_cache[i];
        i = (i + 1) & (CACHE_CAP - 1);
    }
    return &g_cache[i];
}

/* At exit: espeak-ng's own thread is stopped and its memory and the cache
 * freed, so leak checkers see a clean exit. Skipped when espeak-ng is in use
 * (exit called while a phonemisation runs). */
__attribute__((destructor)) static void espeak_shutdown(void)
{
    if (pthread_mutex_trylock(&g_lock) != 0) return;
    if (g_init == 1) {
        espeak_Terminate();
        cache_clear();
        free(g_cache);
        g_cache = NULL;
        g_voice[0] = 0;
        g_init = 0;
    }
    pthread_mutex_unlock(&g_lock);
}

/* Drops "(en)"-style language switch flags, espeak's own punctuation and
 * every symbol outside the vocabulary; single spaces between words. */
static size_t postprocess(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '(') {
            size_t j = i + 1;
            while (j < n && j - i < 12 && ((s[j] >= 'a' && s[j] <= 'z') || s[j] == '-')) j++;
            if (j < n && s[j] == ')' && j > i + 1) { i = j; continue; }
        }
        char c = s[i];
        if (c == '\n' || c == '\t') c = ' ';
        if (c && strchr(";:,.!?\"()-_'", c)) continue;
        if (c == ' ' && (o == 0 || s[o - 1] == ' ')) continue;
        s[o++] = c;
    }
    while (o && s[o - 1] == ' ') o--;
    s[o] = 0;
    o = kk_vocab_filter(s, o);
    /* the filter may leave doubled or edge spaces behind */
    size_t w = 0;
    for (size_t i = 0; i < o; i++) {
        if (s[i] == ' ' && (w == 0 || s[w - 1] == ' ')) continue;
        s[w++] = s[i];
    }
    while (w && s[w - 1] == ' ') w--;
    s[w] = 0;
    return w;
}

typedef struct range {
    uint32_t lo, hi;
} range;

/* What every voice is given: Latin, punctuation, symbols, digits, emoji. */
static const range common_ranges[] = {
    {0x20, 0x7E}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x1E00, 0x1EFF}, {0x2000, 0x206F}, {0x2070, 0x209F},
    {0x20A0, 0x20CF}, {0x2100, 0x218F}, {0x2190, 0x23FF}, {0x2600, 0x27BF}, {0x2C60, 0x2C7F},
    {0xA720, 0xA7FF}, {0x1F300, 0x1F3FA}, {0x1F400, 0x1F6FF}, {0x1F900, 0x1F9FF},
};
static const range hi_ranges[] = {{0x900, 0x97F}, {0xA8E0, 0xA8FF}};
static const range ja_ranges[] = {{0x3000, 0x30FF}, {0x31F0, 0x31FF}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF},
                                  {0xF900, 0xFAFF}, {0xFF01, 0xFF9F}};
static const range zh_ranges[] = {{0x3000, 0x303F}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xF900, 0xFAFF},
                                  {0xFF01, 0xFF5E}, {0x20000, 0x2FA1F}};

static int in_ranges(uint32_t cp, const range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi) return 1;
    return 0;
}

/* What espeak-ng is given, built from the text in a new buffer.
 *
 * espeak-ng 1.51 reads out of bounds (and can crash) on some characters of
 * scripts foreign to the voice (Devanagari for French, skin-tone emoji for
 * Hindi...). A voice cannot speak those scripts anyway, so each voice is
 * given only its own script and the common ranges; other characters become
 * spaces (the chunk text keeps them).
 *
 * The Hindi and Japanese voices have no default letter group in their rules,
 * and there 1.51 reads a symbol it knows by name inside a word ("=" after a
 * digit, "2°") through a match record it never initialised (TranslateRules
 * in dictionary.c; fixed upstream in 1.52 by commit 53348c51): a stale suffix
 * length or pointer from an earlier word, which ended in a use-after-free in
 * tests/fuzz/fuzz_frontend. So for these voices each symbol is made a word of
 * its own, and the few that take that path even alone are replaced by their
 * name or dropped. Both sets were found with a build of 1.51 instrumented to
 * abort on that path, under the fuzzer. */
typedef struct sym_name {
    uint32_t cp;
    const char *hi, *ja; /* NULL: dropped */
} sym_name;

static const sym_name alone_unsafe[] = {
    {'#', NULL, NULL},
    {'%', "प्रतिशत", "パーセント"},
    {'&', "और", "アンド"},
    {'*', NULL, NULL},
    {'+', "प्लस", "プラス"},
    {'/', NULL, NULL},
    {'=', "बराबर", "イコール"},
    {'@', "एट", "アット"},
    {'\\', NULL, NULL},
    {'~', NULL, NULL},
    {0xAC, NULL, NULL},                            /* ¬ */
    {0xB1, "प्लस माइनस", "プラスマイナス"},       /* ± */
    {0xBC, NULL, NULL},                            /* ¼ */
    {0xBD, NULL, NULL},                            /* ½ */
    {0x207A, NULL, NULL}, {0x207C, NULL, NULL},    /* superscript + = */
    {0x208A, NULL, NULL}, {0x208C, NULL, NULL},    /* subscript + = */
    {0x20A9, NULL, NULL},                          /* ₩ */
    {0x2153, NULL, NULL}, {0x2154, NULL, NULL},    /* ⅓ ⅔ */
    {0x2191, NULL, NULL}, {0x2193, NULL, NULL},    /* ↑ ↓ */
    {0x2212, "माइनस", "マイナス"},                  /* − */
    {0x2234, NULL, NULL}, {0x2235, NULL, NULL},    /* ∴ ∵ */
    {0x2248, NULL, NULL}, {0x2260, NULL, NULL},    /* ≈ ≠ */
};

static int is_symbol(uint32_t cp)
{
    if (cp < 0x80) return ispunct((int)cp) && !strchr(".,!?;:'\"()-", (int)cp);
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_ZS:
        return 0;
    default:
        return 1;
    }
}

static char *espeak_input(const char *voice, const char *s, size_t n)
{
    const range *own = NULL;
    size_t nown = 0;
    int lang = 0; /* 1 Hindi, 2 Japanese: symbols by name */
    if (!strncmp(voice, "hi", 2)) { own = hi_ranges; nown = sizeof hi_ranges / sizeof hi_ranges[0]; lang = 1; }
    else if (!strncmp(voice, "ja", 2)) { own = ja_ranges; nown = sizeof ja_ranges / sizeof ja_ranges[0]; lang = 2; }
    else if (!strncmp(voice, "cmn", 3)) { own = zh_ranges; nown = sizeof zh_ranges / sizeof zh_ranges[0]; }
    /* as long as the text, plus room for the names symbols become (at most
     * 23 bytes for a 1-byte symbol): grown when a text has many of them */
    size_t cap = n + 64, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t i = 0;
    uint32_t prev = 0;
    while (i < n) {
        uint32_t cp, next = 0;
        size_t k = kk_utf8_decode(s + i, n - i, &cp);
        if (!k) { out[o++] = ' '; i++; prev = 0; continue; }
        if (i + k < n && !kk_utf8_decode(s + i + k, n - i - k, &next)) next = 0;
        int apostrophe = cp == '\'' || cp == 0x2019 || cp == 0x2BC;
        if (!in_ranges(cp, common_ranges, sizeof common_ranges / sizeof common_ranges[0]) && !in_ranges(cp, own, nown)) {
            out[o++] = ' ';
        } else if (lang && apostrophe && (in_ranges(prev, own, nown) || in_ranges(next, own, nown))) {
            /* an apostrophe joining the voice's own script to another makes
             * one word espeak-ng spells letter by letter, switching
             * translators per letter: in 1.51 that reads the freed Hindi
             * dictionary ("नमस्ते'ship"). Two words read better anyway. */
            out[o++] = ' ';
        } else if (lang && !in_ranges(cp, own, nown) && is_symbol(cp)) {
            const sym_name *u = NULL;
            for (size_t j = 0; j < sizeof alone_unsafe / sizeof alone_unsafe[0]; j++)
                if (alone_unsafe[j].cp == cp) u = &alone_unsafe[j];
            const char *word = u ? (lang == 1 ? u->hi : u->ja) : NULL;
            size_t l = word ? strlen(word) : u ? 0 : k;
            size_t need = o + l + 2 + (n - i) + 1; /* the name, its spaces and the rest of the text */
            if (need > cap) {
                size_t want = cap * 2 > need ? cap * 2 : need;
                char *grown = realloc(out, want);
                if (!grown) {
                    free(out);
                    return NULL;
                }
                out = grown, cap = want;
            }
            out[o++] = ' ';
            memcpy(out + o, word ? word : s + i, l);
            o += l;
            if (l) out[o++] = ' ';
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
        prev = cp;
        i += k;
    }
    out[o] = 0;
    return out;
}

static kokoro_status run_espeak(const char *voice, const char *text, size_t len, char **out)
{
    if (g_init == 0) {
        g_init = -1;
        if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT) > 0) {
            g_cache = calloc(CACHE_CAP, sizeof *g_cache);
            if (g_cache) g_init = 1;
        }
    }
    if (g_init < 0) return kk_error(KOKORO_ERR_IO, "espeak-ng: could not initialise (is espeak-ng-data installed?)");
    if (strcmp(g_voice, voice)) {
        espeak_VOICE v;
        memset(&v, 0, sizeof v);
        v.languages = voice;
        if (espeak_SetVoiceByProperties(&v) != EE_OK) {
            g_voice[0] = 0;
            return kk_error(KOKORO_ERR_IO, "espeak-ng: no voice for language '%s' (is espeak-ng-data installed?)", voice);
        }
        snprintf(g_voice, sizeof g_voice, "%s", voice);
    }
    char *in = espeak_input(voice, text, len);
    if (!in) return kk_error(KOKORO_ERR_NOMEM, "espeak-ng: out of memory");
    size_t cap = 2 * len + 64, n = 0;
    char *res = malloc(cap);
    if (!res) { free(in); return kk_error(KOKORO_ERR_NOMEM, "espeak-ng: out of memory"); }
    res[0] = 0;
    const void *p = in;
    while (p) {
        const char *ph = espeak_TextToPhonemes(&p, espeakCHARS_UTF8, espeakPHONEMES_IPA);
        if (!ph) break;
        size_t l = strlen(ph);
        if (n + l + 2 > cap) {
            while (n + l + 2 > cap) cap *= 2;
            char *r = realloc(res, cap);
            if (!r) { free(res); free(in); return kk_error(KOKORO_ERR_NOMEM, "espeak-ng: out of memory"); }
            res = r;
        }
        if (n) res[n++] = ' ';
        memcpy(res + n, ph, l);
        n += l;
        res[n] = 0;
    }
    free(in);
    postprocess(res, n);
    *out = res;
    return KOKORO_OK;
}

kokoro_status kk_espeak_phonemize(const char *voice, const char *text, size_t len, char **out)
{
    *out = NULL;
    size_t vl = strlen(voice);
    char *key = malloc(vl + 1 + len + 1);
    if (!key) return kk_error(KOKORO_ERR_NOMEM, "espeak-ng: out of memory");
    memcpy(key, voice, vl);
    key[vl] = '\x1f';
    memcpy(key + vl + 1, text, len);
    size_t klen = vl + 1 + len;
    key[klen] = 0;
    uint64_t h = fnv(key, klen);
    kokoro_status st = KOKORO_OK;
    pthread_mutex_lock(&g_lock);
    entry *e = g_cache ? cache_slot(key, klen, h) : NULL;
    if (e && e->key) {
        *out = strdup(e->value);
        if (!*out) st = kk_error(KOKORO_ERR_NOMEM, "espeak-ng: out of memory");
        free(key);
    } else {
        char *res = NULL;
        st = run_espeak(voice, text, len, &res);
        if (!st) {
            if (g_cache_n + 1 > CACHE_CAP / 4 * 3 || g_cache_bytes > CACHE_BYTES) cache_clear();
            e = cache_slot(key, klen, h);
            e->key = key;
            e->hash = h;
            e->value = strdup(res);
            if (!e->value) { free(e->key); e->key = NULL; }
            else { g_cache_n++; g_cache_bytes += klen + strlen(res) + 2; }
            *out = res;
        } else {
            free(key);
        }
    }
    pthread_mutex_unlock(&g_lock);
    return st;
}

void kk_espeak_cache_clear(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_cache) cache_clear();
    pthread_mutex_unlock(&g_lock);
}
