/* UTF-8 helpers, mapped strings and the vocabulary filter of the front end. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "text/text.h"

size_t kk_utf8_decode(const char *str, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

size_t kk_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18)); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

kokoro_status kk_utf8_validate(const char *s, size_t n, const char *what)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        size_t k = kk_utf8_decode(s + i, n - i, &cp);
        if (!k)
            return kk_error(KOKORO_ERR_FORMAT, "%s: invalid UTF-8 at byte offset %zu (byte 0x%02X): expected a well-formed UTF-8 sequence",
                            what, i, (unsigned)(unsigned char)s[i]);
        i += k;
    }
    return KOKORO_OK;
}

size_t kk_utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

void kk_mstr_free(kk_mstr *m)
{
    free(m->s); free(m->beg); free(m->end); free(m->item);
    memset(m, 0, sizeof *m);
}

static kokoro_status mstr_reserve(kk_mstr *m, size_t extra)
{
    if (m->len + extra + 1 <= m->cap) return KOKORO_OK;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < m->len + extra + 1) cap *= 2;
    char *s = realloc(m->s, cap);
    if (s) m->s = s;
    size_t *b = realloc(m->beg, cap * sizeof *b);
    if (b) m->beg = b;
    size_t *e = realloc(m->end, cap * sizeof *e);
    if (e) m->end = e;
    int32_t *it = realloc(m->item, cap * sizeof *it);
    if (it) m->item = it;
    if (!s || !b || !e || !it) return kk_error(KOKORO_ERR_NOMEM, "text: out of memory (%zu bytes)", cap);
    m->cap = cap;
    return KOKORO_OK;
}

kokoro_status kk_mstr_put(kk_mstr *m, const char *b, size_t n, size_t beg, size_t end, int32_t item)
{
    kokoro_status st = mstr_reserve(m, n);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        m->s[m->len] = b[i];
        m->beg[m->len] = beg;
        m->end[m->len] = end;
        m->item[m->len] = item;
        m->len++;
    }
    m->s[m->len] = 0;
    return KOKORO_OK;
}

kokoro_status kk_mstr_copy(kk_mstr *m, const kk_mstr *src, size_t from, size_t to)
{
    size_t n = to - from;
    kokoro_status st = mstr_reserve(m, n);
    if (st) return st;
    memcpy(m->s + m->len, src->s + from, n);
    memcpy(m->beg + m->len, src->beg + from, n * sizeof(size_t));
    memcpy(m->end + m->len, src->end + from, n * sizeof(size_t));
    memcpy(m->item + m->len, src->item + from, n * sizeof(int32_t));
    m->len += n;
    m->s[m->len] = 0;
    return KOKORO_OK;
}

void kk_markups_free(kk_markups *mk)
{
    for (size_t i = 0; i < mk->n; i++) free(mk->v[i].phonemes);
    free(mk->v);
    memset(mk, 0, sizeof *mk);
}

/* Vocabulary ids by code point, built once: the config's lookup is a scan. */
#define VOCAB_TABLE 0xAC00
static int16_t g_vocab[VOCAB_TABLE];
static pthread_once_t g_vocab_once = PTHREAD_ONCE_INIT;

static void vocab_build(void)
{
    const kokoro_config *cfg = kokoro_config_default();
    for (uint32_t cp = 0; cp < VOCAB_TABLE; cp++) {
        int64_t id = kokoro_config_token_id(cfg, cp);
        g_vocab[cp] = (int16_t)(id > 0 ? id : -1);
    }
}

int64_t kk_vocab_id(uint32_t cp)
{
    pthread_once(&g_vocab_once, vocab_build);
    if (cp < VOCAB_TABLE) return g_vocab[cp];
    return kokoro_config_token_id(kokoro_config_default(), cp);
}

size_t kk_vocab_filter(char *s, size_t n)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = kk_utf8_decode(s + i, n - i, &cp);
        if (!k) { i++; continue; }
        if (kk_vocab_id(cp) > 0) {
            memmove(s + o, s + i, k);
            o += k;
        } else if (cp >= 0x80) {
            /* "ä" is not a symbol but its base letter is: keep what the
             * canonical decomposition has in the vocabulary (never longer) */
            utf8proc_int32_t d[8];
            int last = 0;
            utf8proc_ssize_t nd = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 8, UTF8PROC_DECOMPOSE, &last);
            char tmp[32];
            size_t tl = 0;
            for (utf8proc_ssize_t q = 0; q > -1 && q < nd && nd <= 8; q++)
                if (kk_vocab_id((uint32_t)d[q]) > 0) tl += kk_utf8_encode((uint32_t)d[q], tmp + tl);
            if (tl <= k) {
                i += k;
                memcpy(s + o, tmp, tl);
                o += tl;
                continue;
            }
        }
        i += k;
    }
    s[o] = 0;
    return o;
}
