/* Binding weights by name: a table with missing, unexpected or wrongly shaped
 * tensors is refused with every offender named; the DataParallel `module.`
 * prefix of the official checkpoints is accepted; the optional InstanceNorm
 * affine tensors really change the output when present. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binding_errors),
        cmocka_unit_test(test_module_prefix_and_optional_norms),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
