/* The public API: argument checks, determinism of the noise, and one model
 * serving several threads at once. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kokoro.h"
#include "testutil.h"

static kokoro_model *model;
static float style[KOKORO_STYLE_DIM];
static const int64_t ids[] = {50, 156, 86, 54, 57, 16, 65, 156, 87, 54, 46};

static int setup(void **state)
{
    (void)state;
    if (kokoro_model_load_test_weights(&model) != KOKORO_OK) return -1;
    for (int i = 0; i < KOKORO_STYLE_DIM; i++) style[i] = 0.1f * sinf(0.37f * (float)i);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kokoro_model_free(model);
    return 0;
}

/* Expects failure with a message containing `needle`. */
static void expect_error(kokoro_status st, kokoro_status want, const char *needle)
{
    printf("  -> %s: %s\n", kokoro_status_string(st), kokoro_last_error());
    assert_int_equal(st, want);
    assert_non_null(strstr(kokoro_last_error(), needle));
}

static void test_bad_input(void **state)
{
    (void)state;
    kokoro_audio out;
    kokoro_synth_options o = kokoro_synth_options_default();
    expect_error(kokoro_synthesize(model, ids, 0, style, &o, &out), KOKORO_ERR_INVALID_ARG, "empty");
    assert_null(out.samples);

    int64_t *many = malloc(511 * sizeof *many);
    assert_non_null(many);
    for (int i = 0; i < 511; i++) many[i] = 16;
    expect_error(kokoro_synthesize(model, many, 511, style, &o, &out), KOKORO_ERR_INVALID_ARG, "511 tokens");
    free(many);

    int64_t bad[] = {50, 178, 46};
    expect_error(kokoro_synthesize(model, bad, 3, style, &o, &out), KOKORO_ERR_INVALID_ARG, "token 1 is id 178");
    int64_t gap[] = {50, 7};
    expect_error(kokoro_synthesize(model, gap, 2, style, &o, &out), KOKORO_ERR_INVALID_ARG, "id 7");
    int64_t neg[] = {-3};
    expect_error(kokoro_synthesize(model, neg, 1, style, &o, &out), KOKORO_ERR_INVALID_ARG, "id -3");
    int64_t pad[] = {0, 50, 0};
    expect_error(kokoro_synthesize(model, pad, 3, style, &o, &out), KOKORO_ERR_INVALID_ARG, "pad");

    const float speeds[] = {0.0f, -1.0f, NAN, INFINITY, 0.01f, 100.0f};
    for (size_t i = 0; i < sizeof speeds / sizeof *speeds; i++) {
        o.speed = speeds[i];
        expect_error(kokoro_synthesize(model, ids, 3, style, &o, &out), KOKORO_ERR_INVALID_ARG, "speed");
    }
    o = kokoro_synth_options_default();
    expect_error(kokoro_synthesize(model, ids, 3, NULL, &o, &out), KOKORO_ERR_INVALID_ARG, "style is NULL");
    float nanstyle[KOKORO_STYLE_DIM];
    memcpy(nanstyle, style, sizeof nanstyle);
    nanstyle[200] = NAN;
    expect_error(kokoro_synthesize(model, ids, 3, nanstyle, &o, &out), KOKORO_ERR_INVALID_ARG, "style[200]");
    expect_error(kokoro_synthesize(NULL, ids, 3, style, &o, &out), KOKORO_ERR_INVALID_ARG, "model is NULL");
    expect_error(kokoro_synthesize(model, NULL, 3, style, &o, &out), KOKORO_ERR_INVALID_ARG, "ids is NULL");
    expect_error(kokoro_synthesize(model, ids, 3, style, &o, NULL), KOKORO_ERR_INVALID_ARG, "out is NULL");
    expect_error(kokoro_model_load("/nonexistent/kokoro.npz", &(kokoro_model *){NULL}), KOKORO_ERR_IO,
                 "/nonexistent/kokoro.npz: cannot open");
}

static void synth(uint64_t seed, int no_noise, float speed, kokoro_audio *out)
{
    kokoro_synth_options o = kokoro_synth_options_default();
    o.seed = seed;
    o.no_noise = no_noise;
    o.speed = speed;
    kokoro_status st = kokoro_synthesize(model, ids, sizeof ids / sizeof *ids, style, &o, out);
    if (st != KOKORO_OK) fprintf(stderr, "%s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
}

static void test_noise_determinism(void **state)
{
    (void)state;
    kokoro_audio a, b, c, q;
    synth(42, 0, 1.0f, &a);
    synth(42, 0, 1.0f, &b);
    synth(43, 0, 1.0f, &c);
    synth(42, 1, 1.0f, &q);
    assert_int_equal(a.n_samples, b.n_samples);
    assert_int_equal(a.n_samples, c.n_samples);
    assert_int_equal(a.n_durations, sizeof ids / sizeof *ids + 2);
    assert_int_equal(a.durations[0] >= 1, 1);
    size_t frames = 0;
    for (size_t i = 0; i < a.n_durations; i++) frames += (size_t)a.durations[i];
    assert_int_equal(a.n_samples, frames * KOKORO_SAMPLES_PER_FRAME);
    assert_memory_equal(a.samples, b.samples, a.n_samples * sizeof(float)); /* same seed, same audio */
    double dseed = kt_rel_l2(a.samples, c.samples, a.n_samples);
    double dnoise = kt_rel_l2(a.samples, q.samples, a.n_samples);
    printf("  seed 42 vs 43: rel L2 %.3e; noise on vs off: %.3e\n", dseed, dnoise);
    assert_true(dseed > 1e-6);
    assert_true(dnoise > 1e-6);
    for (size_t i = 0; i < a.n_samples; i++) assert_true(isfinite(a.samples[i]));
    kokoro_audio_free(&a), kokoro_audio_free(&b), kokoro_audio_free(&c), kokoro_audio_free(&q);
}

static void test_speed_scales_durations(void **state)
{
    (void)state;
    kokoro_audio slow, fast;
    synth(1, 1, 0.5f, &slow);
    synth(1, 1, 2.0f, &fast);
    printf("  speed 0.5: %zu samples, speed 2.0: %zu samples\n", slow.n_samples, fast.n_samples);
    assert_true(slow.n_samples > 3 * fast.n_samples);
    kokoro_audio_free(&slow), kokoro_audio_free(&fast);
}

typedef struct job {
    const char *name;
    kokoro_audio out;
    kokoro_status st;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    char k[64];
    snprintf(k, sizeof k, "%s.input_ids", j->name);
    const kk_tensor *t = kt_golden_get(k);
    snprintf(k, sizeof k, "%s.style", j->name);
    const float *s = kt_golden_get(k)->data;
    snprintf(k, sizeof k, "%s.speed", j->name);
    kokoro_synth_options o = kokoro_synth_options_default();
    o.speed = ((const float *)kt_golden_get(k)->data)[0];
    o.seed = 7; /* noise on: the per-call RNG must not depend on the thread */
    j->st = kokoro_synthesize(model, (const int64_t *)t->data + 1, (size_t)t->shape[1] - 2, s, &o, &j->out);
    return NULL;
}

static void test_threads_match_sequential(void **state)
{
    (void)state;
    const char *names[3] = {"short", "fast", "slow"};
    job seq[3] = {{0}}, par[3] = {{0}};
    kt_golden(); /* load before the threads start */
    for (int i = 0; i < 3; i++) {
        seq[i].name = par[i].name = names[i];
        run_job(&seq[i]);
        assert_int_equal(seq[i].st, KOKORO_OK);
    }
    pthread_t th[3];
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, run_job, &par[i]), 0);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(par[i].st, KOKORO_OK);
        assert_int_equal(par[i].out.n_samples, seq[i].out.n_samples);
        assert_memory_equal(par[i].out.samples, seq[i].out.samples, seq[i].out.n_samples * sizeof(float));
        assert_memory_equal(par[i].out.durations, seq[i].out.durations, seq[i].out.n_durations * sizeof(int64_t));
        printf("  %s: %zu samples, identical when run concurrently\n", names[i], par[i].out.n_samples);
        kokoro_audio_free(&seq[i].out);
        kokoro_audio_free(&par[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_noise_determinism),
        cmocka_unit_test(test_speed_scales_durations),
        cmocka_unit_test(test_threads_match_sequential),
    };
    return cmocka_run_group_tests_name("api", tests, setup, teardown);
}
