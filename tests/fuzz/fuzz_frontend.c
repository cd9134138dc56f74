/* The text front end on arbitrary bytes: UTF-8 checks, clean-up, English
 * normalisation, [pause:..] and [word](/phonemes/) markup, espeak-ng G2P and
 * chunking. The first byte picks the language (low bits), and whether the
 * text is normalised only, chunked, or taken as phonemes. One front end per
 * language and mode is kept for the whole run (espeak-ng is slow to switch). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kokoro.h"

static const char *const langs[] = {"en-us", "en-gb", "es", "fr-fr", "hi", "it", "pt-br", "ja", "zh"};
#define N_LANGS (sizeof langs / sizeof langs[0])
static kokoro_frontend *fes[N_LANGS][2];

/* espeak-ng is slow: bounded inputs keep the runs fast (the 16 MiB limit
 * itself is tested in tests/test_limits.c). */
#define MAX_INPUT 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_INPUT) return 0;
    size_t li = (data[0] & 0x0F) % N_LANGS;
    int mode = (data[0] >> 4) % 3; /* 0 normalise, 1 chunks, 2 phoneme input chunks */
    int ph = mode == 2;
    if (!fes[li][ph]) {
        kokoro_frontend_options o = kokoro_frontend_options_default();
        o.lang = langs[li];
        o.phoneme_input = ph;
        o.target_tokens = 60; /* small chunks: the splitting paths run often */
        if (kokoro_frontend_new(&o, &fes[li][ph]) != KOKORO_OK) abort();
    }
    const kokoro_frontend *fe = fes[li][ph];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (mode == 0) {
        char *out = NULL;
        if (kokoro_frontend_normalize(fe, text, len, &out) == KOKORO_OK) free(out);
        else if (!kokoro_last_error()[0]) abort();
        return 0;
    }
    kokoro_chunk *ch = NULL;
    size_t n = 0;
    if (kokoro_frontend_chunks(fe, text, len, &ch, &n) == KOKORO_OK) {
        for (size_t i = 0; i < n; i++) {
            const kokoro_chunk *c = &ch[i];
            if (c->n_ids > KOKORO_MAX_TOKENS || c->src_begin > c->src_end || c->src_end > len) abort();
            for (size_t w = 0; w < c->n_words; w++) {
                const kokoro_word *wd = &c->words[w];
                if (wd->token_begin > wd->token_end || wd->token_end > c->n_ids || wd->src_begin > wd->src_end ||
                    wd->src_end > len)
                    abort();
            }
        }
        kokoro_chunks_free(ch, n);
    } else if (!kokoro_last_error()[0]) {
        abort();
    }
    return 0;
}
