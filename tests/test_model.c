/* Binding weights by name: a table with missing, unexpected or wrongly shaped
 * tensors is refused with every offender named; the DataParallel `module.`
 * prefix of the official checkpoints is accepted; the optional InstanceNorm
 * affine tensors really change the output when present. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "testutil.h"

static void rename_tensor(kk_table *t, const char *from, const char *to)
{
    kk_tensor *x = kk_table_find(t, from);
    assert_non_null(x);
    free(x->name);
    x->name = strdup(to);
}

static void test_binding_errors(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    assert_int_equal(t.count, 688);
    /* missing: drop the name; unexpected: a stray tensor; wrong shape: lie about one */
    rename_tensor(&t, "decoder.generator.conv_post.bias", "decoder.generator.conv_post.bias_typo");
    kk_tensor *x = kk_table_find(&t, "predictor.F0_proj.weight");
    assert_non_null(x);
    x->shape[1] = 128;
    kokoro_model *m = NULL;
    kokoro_status st = kk_model_bind(&t, &m);
    printf("  -> %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_ERR_MODEL);
    assert_null(m);
    const char *e = kokoro_last_error();
    assert_non_null(strstr(e, "missing 'decoder.generator.conv_post.bias'"));
    assert_non_null(strstr(e, "unexpected 'decoder.generator.conv_post.bias_typo'"));
    assert_non_null(strstr(e, "'predictor.F0_proj.weight' has shape 1x128x1 where 1x256x1 is expected"));
    assert_non_null(strstr(e, "3 problem(s)"));
    kk_table_free(&t);
}

static void test_module_prefix_and_optional_norms(void **state)
{
    (void)state;
    /* the official layout: "<component>.module.<key>", and no AdaIN norm.* tensors */
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    size_t dropped = 0;
    for (size_t i = 0; i < t.count; i++) {
        kk_tensor *x = &t.items[i];
        const char *norm = strstr(x->name, ".norm.");
        if (norm && (strcmp(norm, ".norm.weight") == 0 || strcmp(norm, ".norm.bias") == 0)) {
            free(x->name); /* renamed away below: marks the tensor for removal */
            x->name = NULL;
            free(x->data);
            x->data = NULL;
            dropped++;
            continue;
        }
        const char *dot = strchr(x->name, '.');
        char buf[160];
        snprintf(buf, sizeof buf, "%.*s.module.%s", (int)(dot - x->name), x->name, dot + 1);
        free(x->name);
        x->name = strdup(buf);
    }
    size_t w = 0; /* compact */
    for (size_t i = 0; i < t.count; i++)
        if (t.items[i].name) t.items[w++] = t.items[i];
    t.count = w;
    printf("  %zu AdaIN norm tensors removed, %zu tensors with 'module.'\n", dropped, t.count);
    assert_true(dropped > 0);
    kokoro_model *m = NULL;
    kokoro_status st = kk_model_from_table(&t, "module-layout", &m);
    if (st != KOKORO_OK) printf("  -> %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    kk_table_free(&t);

    /* with the affine tensors absent, the output must differ from the test weights' */
    kokoro_model *full;
    assert_int_equal(kokoro_model_load_test_weights(&full), KOKORO_OK);
    const int64_t ids[] = {50, 156, 86, 54, 57, 16, 65};
    float style[KOKORO_STYLE_DIM];
    for (int i = 0; i < KOKORO_STYLE_DIM; i++) style[i] = 0.05f * (float)((i % 7) - 3);
    kokoro_synth_options o = kokoro_synth_options_default();
    o.no_noise = 1;
    kokoro_audio a, b;
    assert_int_equal(kokoro_synthesize(m, ids, 7, style, &o, &a), KOKORO_OK);
    assert_int_equal(kokoro_synthesize(full, ids, 7, style, &o, &b), KOKORO_OK);
    size_t n = a.n_samples < b.n_samples ? a.n_samples : b.n_samples;
    double d = kt_rel_l2(a.samples, b.samples, n);
    printf("  without vs with InstanceNorm affine: rel L2 %.3e\n", d);
    assert_true(a.n_samples != b.n_samples || d > 1e-3);
    kokoro_audio_free(&a);
    kokoro_audio_free(&b);
    kokoro_model_free(m);
    kokoro_model_free(full);
}

/* Durations as the reference: sigmoid, sum over 50, / speed, round half to
 * even, at least 1 — in float32. Logits of ±200 and 0 give sigmoids of
 * exactly 1, 0 and 0.5, so the sums are exact and the ties real. */
static void set_logits(double *row, int ones, int halves, double extra)
{
    for (int k = 0; k < 50; k++) row[k] = k < ones ? 200.0 : k < ones + halves ? 0.0 : -200.0;
    if (extra != 0.0) row[49] = extra;
}

static void test_duration_rounding(void **state)
{
    (void)state;
    /* the rounding step alone */
    const float in[] = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 48.5f, 49.5f, 2.4999998f, 2.5000002f, 0.0f, 0.49999997f, -3.0f, NAN};
    const int64_t want[] = {1, 2, 2, 4, 4, 48, 50, 2, 3, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        if (kk_duration_frames(in[i]) != want[i]) printf("  %.9g -> %lld\n", in[i], (long long)kk_duration_frames(in[i]));
        assert_int_equal(kk_duration_frames(in[i]), want[i]);
    }

    double lg[6 * 50];
    set_logits(lg + 0, 2, 1, 0);          /* 2.5 -> 2 (half to even, not away from zero) */
    set_logits(lg + 50, 3, 1, 0);         /* 3.5 -> 4 */
    set_logits(lg + 100, 0, 1, 0);        /* 0.5 -> 0 -> clamped to 1 */
    set_logits(lg + 150, 0, 0, 0);        /* 0 -> 1 */
    set_logits(lg + 200, 50, 0, 0);       /* 50 */
    set_logits(lg + 250, 0, 5, -20.0);    /* 2.5 + 2.1e-9: the float32 sum is 2.5 -> 2 (in double: 3) */
    float dur[6];
    int64_t n[6];
    assert_int_equal(kk_durations(lg, 6, 1.0f, dur, n), 2 + 4 + 1 + 1 + 50 + 2);
    const float wd[6] = {2.5f, 3.5f, 0.5f, 0.0f, 50.0f, 2.5f};
    const int64_t wn[6] = {2, 4, 1, 1, 50, 2};
    for (int t = 0; t < 6; t++) {
        assert_true(dur[t] == wd[t]);
        assert_int_equal(n[t], wn[t]);
    }
    /* speed divides before rounding, in float32: 3.5 / 1.4f is 2.5000000426 in
     * double (-> 3) but exactly 2.5f in float32 (-> 2); 6 / 0.8f is 7.4999999
     * in double (-> 7) but 7.5f (-> 8). The reference gives 2 and 8. */
    set_logits(lg, 3, 1, 0);
    set_logits(lg + 50, 6, 0, 0);
    assert_int_equal(kk_durations(lg, 1, 1.4f, dur, n), 2);
    assert_true(dur[0] == 2.5f);
    assert_int_equal(kk_durations(lg + 50, 1, 0.8f, dur, n), 8);
    assert_true(dur[0] == 7.5f);
    /* NULL dur is allowed (the engine's call) */
    assert_int_equal(kk_durations(lg, 1, 1.0f, NULL, n), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binding_errors),
        cmocka_unit_test(test_module_prefix_and_optional_norms),
        cmocka_unit_test(test_duration_rounding),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
