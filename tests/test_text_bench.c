/* Front-end throughput: characters per second through normalise + phonemize
 * + chunk on Moby-Dick chapters 1-5 (66 kB), with a cold and a warm cache,
 * compared with synthesis measured here on the same thread count (one): the
 * front end must be at least 20x faster than synthesis, so it is never the
 * bottleneck. Prints one "text-bench:" line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kokoro.h"
#include "text/text.h"

/* Speech at speed 1.0 runs at about 15 phonemes a second: the audio a
 * chunk's phonemes become. (The test weights' random durations say nothing
 * about real speech, so their audio is used only for synthesis speed.) */
#define PHONEMES_PER_AUDIO_SECOND 15.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds of audio per second of wall time of kokoro_synthesize on the test
 * weights (the real model's shapes, so the real cost per second of audio),
 * one thread, on the first phonemes of a chunk (a few seconds of audio). */
static double synthesis_speed(const kokoro_chunk *c, size_t n)
{
    const size_t nid = 32;
    size_t k = 0;
    while (k < n && c[k].n_ids < nid) k++;
    assert_true(k < n);
    kokoro_model *m;
    kokoro_voices *v;
    assert_int_equal(kokoro_model_load_test_weights(&m), KOKORO_OK);
    assert_int_equal(kokoro_voices_load(KOKORO_TEST_DATA "/voices", &v), KOKORO_OK);
    float style[KOKORO_STYLE_DIM];
    assert_int_equal(kokoro_voices_style(v, "af_heart", nid, style), KOKORO_OK);
    kokoro_synth_options o = kokoro_synth_options_default();
    int threads = kokoro_get_num_threads();
    kokoro_set_num_threads(1);
    kokoro_audio a;
    double t0 = now();
    assert_int_equal(kokoro_synthesize(m, c[k].ids, nid, style, &o, &a), KOKORO_OK);
    double t = now() - t0, audio = (double)a.n_samples / KOKORO_SAMPLE_RATE;
    printf("text-bench: synthesis of %zu phonemes: %.2f s of audio in %.2f s\n", nid, audio, t);
    kokoro_audio_free(&a);
    kokoro_set_num_threads(threads);
    kokoro_voices_free(v);
    kokoro_model_free(m);
    return audio / t;
}

static void test_moby_dick(void **state)
{
    (void)state;
    FILE *f = fopen(KOKORO_TEST_DATA "/moby-dick-chapters-1-5.txt", "rb");
    assert_non_null(f);
    char *text = malloc(1 << 17);
    size_t len = fread(text, 1, (1 << 17) - 1, f);
    fclose(f);
    assert_true(len > 60000);
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    kokoro_frontend *fe;
    assert_int_equal(kokoro_frontend_new(NULL, &fe), KOKORO_OK);
    kokoro_chunk *c = NULL;
    size_t n = 0;
    /* cold: espeak-ng runs for every word (best of two, the cache emptied before each) */
    double cold = 1e30;
    for (int r = 0; r < 2; r++) {
        if (c) kokoro_chunks_free(c, n);
        kk_espeak_cache_clear();
        double t0 = now();
        assert_int_equal(kokoro_frontend_chunks(fe, text, len, &c, &n), KOKORO_OK);
        double t = now() - t0;
        if (t < cold) cold = t;
    }
    size_t ids = 0, max = 0;
    for (size_t i = 0; i < n; i++) { ids += c[i].n_ids; if (c[i].n_ids > max) max = c[i].n_ids; }
    kokoro_chunk *w;
    size_t wn;
    double t0 = now();
    assert_int_equal(kokoro_frontend_chunks(fe, text, len, &w, &wn), KOKORO_OK);
    double warm = now() - t0;
    kokoro_chunks_free(w, wn);
    double synth = synthesis_speed(c, n);
    kokoro_chunks_free(c, n);
    double audio_s = (double)ids / PHONEMES_PER_AUDIO_SECOND, audio_per_s = audio_s / cold;
    printf("text-bench: %zu chars -> %zu chunks, %zu phonemes (largest chunk %zu), ~%.0f s of speech; cold %.2f s, "
           "warm %.0f chars/s; synthesis %.2f s of audio per s (1 thread)\n",
           chars, n, ids, max, audio_s, cold, chars / warm, synth);
    printf("text-bench: %.0f chars/s, %.0f s of audio per s, %.0f x synthesis\n", chars / cold, audio_per_s,
           audio_per_s / synth);
    assert_true(max <= 250);
    assert_true(n > 20);
    assert_true(synth > 0);
    /* the front end must never be the bottleneck: 20x synthesis or more */
    assert_true(audio_per_s / synth >= 20.0);
    kokoro_frontend_free(fe);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_moby_dick)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
