/* Internal pieces of the text front end (src/text/). */
#ifndef KK_TEXT_H
#define KK_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "kokoro.h"

/* ---- UTF-8 ---- */

/* Decodes one code point at s[0..n); returns its length (1..4) or 0 when the
 * bytes there are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF,
 * truncated). */
size_t kk_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes room); returns the length. */
size_t kk_utf8_encode(uint32_t cp, char *out);
/* KOKORO_OK, or KOKORO_ERR_FORMAT naming the byte offset of the first bad
 * sequence. what names the input in the message. */
kokoro_status kk_utf8_validate(const char *s, size_t n, const char *what);

/* ---- mapped strings: text whose every byte remembers the span of the
 * original input it came from, so chunks can point back into it ---- */

typedef struct kk_mstr {
    char *s;         /* NUL-terminated */
    size_t len, cap;
    size_t *beg;     /* per byte: original span [beg, end) */
    size_t *end;
    int32_t *item;   /* per byte: -1, or the index of an inline override/pause */
} kk_mstr;

void kk_mstr_free(kk_mstr *m);
/* Appends n bytes that all stand for the original span [beg, end). */
kokoro_status kk_mstr_put(kk_mstr *m, const char *b, size_t n, size_t beg, size_t end, int32_t item);
/* Appends bytes of src [from, to) keeping their own mapping. */
kokoro_status kk_mstr_copy(kk_mstr *m, const kk_mstr *src, size_t from, size_t to);

/* ---- clean-up (all languages) ---- */

typedef struct kk_markup {
    int is_pause;       /* 1: [pause:Ns]; 0: [word](/phonemes/) */
    float pause_s;
    char *phonemes;     /* override phonemes (vocabulary symbols only) */
} kk_markup;

typedef struct kk_markups {
    kk_markup *v;
    size_t n, cap;
} kk_markups;

void kk_markups_free(kk_markups *mk);

/* Unicode clean-up of valid UTF-8 input: NFC, quotes, dashes, ellipses,
 * spaces, control and format characters, markdown. Inline overrides
 * [word](/phonemes/) keep the word with item = its markup index; a
 * [pause:1.5s] marker becomes the byte 0x01 with its markup index.
 * parse_markup: 2 all markup and markdown, 1 pause markers only (phoneme
 * input), 0 none. */
kokoro_status kk_text_clean(const char *text, size_t len, int parse_markup, kk_mstr *out, kk_markups *mk);

/* ---- English normalisation ---- */

/* Rewrites numbers, currency, dates, times, units, abbreviations, roman
 * chapter numbers, URLs and e-mails into words. */
kokoro_status kk_en_normalize(const kk_mstr *in, kk_mstr *out);

/* Cardinal number in English words into out (cap bytes). */
void kk_en_cardinal(uint64_t n, char *out, size_t cap);

/* ---- espeak-ng (one process-wide lock and cache) ---- */

/* Phonemizes one run of words without punctuation marks: IPA with stress,
 * language-switch flags removed, words separated by one space, only symbols
 * of the Kokoro vocabulary. *out is malloc'd. voice is an espeak language
 * code ("en-us", "fr-fr", "cmn"...). */
kokoro_status kk_espeak_phonemize(const char *voice, const char *text, size_t len, char **out);

/* Empties the (language, text) cache, so that the next calls run espeak-ng
 * itself: for tests of espeak-ng's output and of concurrent use. */
void kk_espeak_cache_clear(void);

/* The id of a vocabulary symbol of the built-in config, or -1 (fast). */
int64_t kk_vocab_id(uint32_t cp);
/* Keeps only vocabulary symbols of s (in place); returns the new length. */
size_t kk_vocab_filter(char *s, size_t n);
/* Number of code points in valid UTF-8. */
size_t kk_utf8_count(const char *s, size_t n);

#endif
