/* Front-end throughput: characters per second through normalise + phonemize
 * + chunk on Moby-Dick chapters 1-5 (66 kB), with a cold and a warm cache.
 * Prints one "text-bench:" line for the lead to compare with synthesis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kokoro.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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
    double t0 = now();
    kokoro_chunk *c;
    size_t n;
    assert_int_equal(kokoro_frontend_chunks(fe, text, len, &c, &n), KOKORO_OK);
    double cold = now() - t0;
    size_t ids = 0, max = 0;
    for (size_t i = 0; i < n; i++) { ids += c[i].n_ids; if (c[i].n_ids > max) max = c[i].n_ids; }
    kokoro_chunks_free(c, n);
    t0 = now();
    assert_int_equal(kokoro_frontend_chunks(fe, text, len, &c, &n), KOKORO_OK);
    double warm = now() - t0;
    kokoro_chunks_free(c, n);
    /* synthesis speaks about 15 phonemes a second of audio */
    double audio_s = (double)ids / 15.0;
    printf("text-bench: %zu chars -> %zu chunks, %zu phonemes (largest chunk %zu); cold %.0f chars/s (%.2f s), "
           "warm %.0f chars/s; %.0f s of speech produced %.0fx faster than real time (cold)\n",
           chars, n, ids, max, chars / cold, cold, chars / warm, audio_s, audio_s / cold);
    assert_true(max <= 250);
    assert_true(n > 20);
    /* the front end must never be the bottleneck: far faster than real time */
    assert_true(audio_s / cold > 20.0);
    kokoro_frontend_free(fe);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_moby_dick)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
