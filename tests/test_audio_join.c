/* Joining chunk audio: trimming keeps quiet consonants, fades and
 * crossfades never click, the joiner's positions are exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "audio_testutil.h"

static uint32_t rng_state = 12345;
static float noise(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((double)(rng_state >> 8) / (double)(1u << 24) * 2.0 - 1.0);
}

#define MS(x) ((size_t)(x) * SR / 1000)

/* 300 ms silence with -70 dB hiss, a 30 ms breath at about -50 dB, a 60 ms
 * fricative at about -30 dB, a 300 ms vowel at 0.6, an 80 ms decay, 250 ms of
 * hiss. Returns the marks. */
typedef struct {
    size_t breath, fricative, vowel, decay_end, n;
} speechlike;

static float *make_speechlike(speechlike *m)
{
    m->breath = MS(300);
    m->fricative = m->breath + MS(30);
    m->vowel = m->fricative + MS(60);
    size_t vowel_end = m->vowel + MS(300);
    m->decay_end = vowel_end + MS(80);
    m->n = m->decay_end + MS(250);
    float *x = malloc(m->n * sizeof *x);
    for (size_t i = 0; i < m->n; i++) {
        double t = (double)i / SR, v = 0.0003 * noise();
        if (i >= m->breath && i < m->fricative) v += 0.003 * noise();
        if (i >= m->fricative && i < m->vowel) v += 0.03 * noise();
        if (i >= m->vowel && i < m->decay_end) {
            double env = i < vowel_end ? 1.0 : exp(-(double)(i - vowel_end) / (double)MS(15));
            double h = 0.0;
            for (int k = 1; k <= 6; k++) h += sin(2 * M_PI * 150.0 * k * t) / k;
            v += 0.6 / 1.5 * h * env;
        }
        x[i] = (float)v;
    }
    return x;
}

static void test_trim_keeps_consonants(void **state)
{
    (void)state;
    speechlike m;
    float *x = make_speechlike(&m);
    kokoro_join_options o = kokoro_join_options_default();
    size_t s, e;
    assert_int_equal(kokoro_audio_trim(x, m.n, &o, &s, &e), KOKORO_OK);
    fprintf(stderr, "trim: keep %zu..%zu of %zu (breath %zu, fricative %zu, vowel %zu, decay end %zu)\n", s, e, m.n,
            m.breath, m.fricative, m.vowel, m.decay_end);
    /* the fricative is well above -40 dB and is kept with the margin before it,
     * which also covers the quieter breath */
    assert_true(s <= m.breath);
    assert_true(s >= m.fricative - MS(o.margin_ms) - MS(5));
    /* the decay's audible part is kept, most of the trailing hiss is not */
    assert_true(e >= m.decay_end - MS(30));
    assert_true(e < m.n - MS(150));
    /* a stricter threshold (-25 dB) misses the fricative (about -32 dB) but
     * the margin still keeps its last 40 ms */
    o.threshold_db = -25.0f;
    assert_int_equal(kokoro_audio_trim(x, m.n, &o, &s, &e), KOKORO_OK);
    assert_true(s >= m.vowel - MS(o.margin_ms) - MS(5) && s <= m.vowel - MS(o.margin_ms));
    /* without a margin the breath is gone */
    o = kokoro_join_options_default();
    o.margin_ms = 0;
    assert_int_equal(kokoro_audio_trim(x, m.n, &o, &s, &e), KOKORO_OK);
    assert_true(s >= m.fricative - MS(5) && s <= m.fricative);
    free(x);
}

static void test_trim_edges(void **state)
{
    (void)state;
    size_t s = 7, e = 7;
    kokoro_join_options o = kokoro_join_options_default();
    assert_int_equal(kokoro_audio_trim(NULL, 0, &o, &s, &e), KOKORO_OK);
    assert_true(s == 0 && e == 0);
    float z[1000] = {0};
    assert_int_equal(kokoro_audio_trim(z, 1000, NULL, &s, &e), KOKORO_OK);
    assert_int_equal(s, e);
    /* absolute threshold: a quiet but clean tone is all below -20 dBFS */
    float *x = at_sine(SR / 2, 200, 0.01);
    o.relative = 0;
    o.threshold_db = -20.0f;
    assert_int_equal(kokoro_audio_trim(x, SR / 2, &o, &s, &e), KOKORO_OK);
    assert_int_equal(s, e);
    o.threshold_db = -60.0f;
    assert_int_equal(kokoro_audio_trim(x, SR / 2, &o, &s, &e), KOKORO_OK);
    assert_true(s == 0 && e == SR / 2);
    /* a tone that fills the chunk is never cut */
    o = kokoro_join_options_default();
    assert_int_equal(kokoro_audio_trim(x, SR / 2, &o, &s, &e), KOKORO_OK);
    assert_true(s == 0 && e == SR / 2);
    /* NaN does not count as loud */
    x[100] = NAN;
    assert_int_equal(kokoro_audio_trim(x, SR / 2, &o, &s, &e), KOKORO_OK);
    assert_true(s == 0 && e == SR / 2);
    free(x);
    o.threshold_db = 3.0f;
    assert_int_equal(kokoro_audio_trim(z, 1000, &o, &s, &e), KOKORO_ERR_INVALID_ARG);
    assert_non_null(strstr(kokoro_last_error(), "threshold"));
    o = kokoro_join_options_default();
    o.pause_ms[2] = -1;
    assert_int_equal(kokoro_audio_trim(z, 1000, &o, &s, &e), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_audio_trim(z, 1000, NULL, NULL, &e), KOKORO_ERR_INVALID_ARG);
}

static void test_fade_and_crossfade(void **state)
{
    (void)state;
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = 1.0f;
    kokoro_audio_fade(x, 1000, 100, 200);
    assert_true(x[0] < 0.001f && x[999] < 0.001f);
    assert_true(x[500] == 1.0f && x[100] == 1.0f && x[799] == 1.0f);
    for (int i = 1; i < 100; i++) assert_true(x[i] > x[i - 1]);
    for (int i = 801; i < 1000; i++) assert_true(x[i] < x[i - 1]);
    /* fades longer than the buffer are clamped to half of it each */
    float y[10];
    for (int i = 0; i < 10; i++) y[i] = 1.0f;
    kokoro_audio_fade(y, 10, 100, 100);
    assert_true(y[0] < 0.1f && y[9] < 0.1f && y[4] > 0.8f);
    kokoro_audio_fade(NULL, 10, 1, 1);
    float a[64], b[64];
    for (int i = 0; i < 64; i++) a[i] = 1.0f, b[i] = -1.0f;
    kokoro_audio_crossfade(a, b, 64);
    assert_true(a[0] > 0.99f && a[63] < -0.99f);
    for (int i = 1; i < 64; i++) assert_true(a[i] < a[i - 1]);
    kokoro_join_options o = kokoro_join_options_default();
    assert_int_equal(kokoro_join_pause_samples(&o, KOKORO_PAUSE_SENTENCE), MS(350));
    assert_int_equal(kokoro_join_pause_samples(&o, (kokoro_pause_kind)9), 0);
}

static double max_jump(const float *x, size_t a, size_t b)
{
    double m = 0.0;
    for (size_t i = a + 1; i < b; i++) {
        double d = fabs((double)x[i] - x[i - 1]);
        if (d > m) m = d;
    }
    return m;
}

/* Two kinds of chunk. padded: 100 ms of near-silence, a tone with 10 ms
 * attack and release, 120 ms of near-silence (trimming cuts in the quiet).
 * Not padded: a tone that fills the chunk and starts and stops abruptly
 * mid-wave (nothing to trim: only the fades prevent the click). */
static float *make_chunk(size_t body, double freq, double phase, int padded, size_t *n)
{
    size_t pre = padded ? MS(100) : 0, post = padded ? MS(120) : 0, ramp = padded ? MS(10) : 0;
    *n = pre + body + post;
    float *x = calloc(*n, sizeof *x);
    for (size_t i = 0; i < body; i++) {
        double env = 1.0;
        if (i < ramp) env = 0.5 - 0.5 * cos(M_PI * (double)i / (double)ramp);
        if (body - 1 - i < ramp) env = 0.5 - 0.5 * cos(M_PI * (double)(body - 1 - i) / (double)ramp);
        x[pre + i] = (float)(0.7 * env * sin(2 * M_PI * freq * (double)i / SR + phase));
    }
    if (padded)
        for (size_t i = 0; i < *n; i++) x[i] += 0.0002f * noise();
    return x;
}

static void test_joiner_no_clicks_exact_positions(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "join");
    snprintf(path, sizeof path, "%s/joined.wav", dir);
    kokoro_writer_options wo = kokoro_writer_options_default();
    wo.wav_float = 1;
    kokoro_writer *w;
    assert_int_equal(kokoro_writer_open(path, &wo, &w), KOKORO_OK);
    kokoro_join_options o = kokoro_join_options_default();
    kokoro_joiner *j;
    assert_int_equal(kokoro_joiner_new(&o, w, &j), KOKORO_OK);
    const double freqs[] = {180, 260, 220, 310, 150};
    const double phases[] = {1.0, 2.5, 0.3, 4.0, 5.5};
    const kokoro_pause_kind kinds[] = {KOKORO_PAUSE_NONE, KOKORO_PAUSE_SENTENCE, KOKORO_PAUSE_NONE,
                                       KOKORO_PAUSE_PARAGRAPH, KOKORO_PAUSE_CLAUSE};
    float *chunks[5];
    size_t lens[5], front[5];
    uint64_t starts[5];
    double own = 0.0;
    for (int c = 0; c < 5; c++) {
        int padded = c % 2 == 0;
        chunks[c] = make_chunk(MS(400) + (size_t)c * 997, freqs[c], phases[c], padded, &lens[c]);
        double jmp = padded ? max_jump(chunks[c], MS(100), lens[c] - MS(120)) : max_jump(chunks[c], 0, lens[c]);
        if (jmp > own) own = jmp;
        assert_int_equal(kokoro_joiner_push(j, chunks[c], lens[c], kinds[c], 0, &front[c], &starts[c]), KOKORO_OK);
    }
    assert_int_equal(kokoro_joiner_finish(j), KOKORO_OK);
    kokoro_joiner_free(j);
    uint64_t total = kokoro_writer_position(w);
    assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
    size_t n = 0;
    float *y = at_read_sndfile(path, &n, NULL, NULL);
    assert_non_null(y);
    assert_int_equal(n, total);

    double joined = max_jump(y, 0, n);
    fprintf(stderr, "join: own max step %.4f, joined max step %.4f\n", own, joined);
    assert_true(joined <= own * 1.25);
    /* the chunks themselves start and stop mid-wave (a click if butted
     * together): the fades are what removes it, so this test can fail */
    double raw = 0.0;
    for (int c = 1; c < 5; c += 2) raw = fmax(raw, fmax(fabs(chunks[c][0]), fabs(chunks[c][lens[c] - 1])));
    assert_true(raw > own * 3.0);

    /* every chunk lands where the joiner says; samples past the fade are exact */
    size_t fade = MS(o.fade_ms), sum_kept = 0, sum_pause = 0, overlaps = 0;
    for (int c = 0; c < 5; c++) {
        size_t s, e;
        kokoro_audio_trim(chunks[c], lens[c], &o, &s, &e);
        assert_int_equal(front[c], s);
        if (c % 2 == 0) assert_true(s > MS(20) && s <= MS(100)); /* the margin before the tone */
        else assert_true(s == 0 && e == lens[c]);
        sum_kept += e - s;
        if (c > 0) {
            if (kinds[c] == KOKORO_PAUSE_NONE) overlaps += fade;
            else sum_pause += kokoro_join_pause_samples(&o, kinds[c]);
        }
        for (size_t k = fade; k < e - s - fade; k += 97) assert_true(y[starts[c] + k] == chunks[c][s + k]);
        /* a pause is silence */
        if (c > 0 && kinds[c] != KOKORO_PAUSE_NONE)
            assert_true(at_rms(y, starts[c] - kokoro_join_pause_samples(&o, kinds[c]), starts[c]) == 0.0);
    }
    assert_int_equal(total, sum_kept + sum_pause - overlaps);
    free(y);
    for (int c = 0; c < 5; c++) free(chunks[c]);
    at_rmtree(dir);
}

static void test_joiner_no_trim_and_silence(void **state)
{
    (void)state;
    char dir[256], path[300];
    at_tmpdir(dir, sizeof dir, "join2");
    snprintf(path, sizeof path, "%s/raw.wav", dir);
    kokoro_writer_options wo = kokoro_writer_options_default();
    wo.wav_float = 1;
    kokoro_writer *w;
    assert_int_equal(kokoro_writer_open(path, &wo, &w), KOKORO_OK);
    kokoro_joiner *j;
    assert_int_equal(kokoro_joiner_new(NULL, w, &j), KOKORO_OK);
    size_t n1, n2;
    float *a = make_chunk(MS(200), 200, 0.5, 1, &n1), *b = make_chunk(MS(300), 300, 1.5, 0, &n2);
    size_t fr = 99;
    uint64_t at = 99;
    /* no_trim: the model's output as it is, no pause */
    assert_int_equal(kokoro_joiner_push(j, a, n1, KOKORO_PAUSE_PARAGRAPH, 1, &fr, &at), KOKORO_OK);
    assert_true(fr == 0 && at == 0);
    assert_int_equal(kokoro_joiner_push(j, b, n2, KOKORO_PAUSE_PARAGRAPH, 1, &fr, &at), KOKORO_OK);
    assert_true(fr == 0 && at == n1);
    /* an all-silent chunk adds nothing */
    float z[500] = {0};
    assert_int_equal(kokoro_joiner_push(j, z, 500, KOKORO_PAUSE_SENTENCE, 0, &fr, NULL), KOKORO_OK);
    assert_int_equal(kokoro_joiner_push(j, NULL, 5, KOKORO_PAUSE_SENTENCE, 0, NULL, NULL), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_joiner_push(j, z, 5, (kokoro_pause_kind)17, 0, NULL, NULL), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_joiner_finish(j), KOKORO_OK);
    kokoro_joiner_free(j);
    assert_int_equal(kokoro_writer_close(w), KOKORO_OK);
    size_t n = 0;
    float *y = at_read_sndfile(path, &n, NULL, NULL);
    assert_int_equal(n, n1 + n2);
    assert_memory_equal(y, a, n1 * sizeof *a);
    assert_memory_equal(y + n1, b, n2 * sizeof *b);
    free(y);
    free(a);
    free(b);
    at_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_keeps_consonants),
        cmocka_unit_test(test_trim_edges),
        cmocka_unit_test(test_fade_and_crossfade),
        cmocka_unit_test(test_joiner_no_clicks_exact_positions),
        cmocka_unit_test(test_joiner_no_trim_and_silence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
