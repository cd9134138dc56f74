/* config.json: the built-in published config, the file read with cJSON, and
 * configs of another network or malformed ones refused by key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kokoro.h"
#include "testutil.h"

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *b = calloc(1, 1 << 16);
    *n = fread(b, 1, (1 << 16) - 1, f);
    fclose(f);
    return b;
}

static void test_default_and_file(void **state)
{
    (void)state;
    const kokoro_config *d = kokoro_config_default();
    assert_non_null(d);
    assert_int_equal(kokoro_config_vocab_size(d), 114);
    assert_int_equal(kokoro_config_token_id(d, ';'), 1);
    assert_int_equal(kokoro_config_token_id(d, ' '), 16);
    assert_int_equal(kokoro_config_token_id(d, 0x0279), 123); /* ɹ */
    assert_int_equal(kokoro_config_token_id(d, 0x1D7B), 177); /* ᵻ */
    assert_int_equal(kokoro_config_token_id(d, 0x0261), 92);  /* ɡ, the IPA g */
    assert_int_equal(kokoro_config_token_id(d, 'g'), -1);     /* ASCII g is not in the vocab */
    assert_int_equal(kokoro_config_token_id(d, 0x2014), 9);   /* — */
    kokoro_config *f;
    assert_int_equal(kokoro_config_load(KOKORO_TEST_DATA "/kokoro-config.json", &f), KOKORO_OK);
    for (uint32_t cp = 0; cp < 0x2200; cp++) assert_int_equal(kokoro_config_token_id(f, cp), kokoro_config_token_id(d, cp));
    assert_int_equal(kokoro_config_token_id(f, 0x1D7B), 177);
    kokoro_config_free(f);
    assert_true(kokoro_vocab_has_id(177) && !kokoro_vocab_has_id(7) && !kokoro_vocab_has_id(0));
}

/* the published file with one substring replaced must fail with `needle` */
static void expect_bad(const char *from, const char *to, kokoro_status want, const char *needle)
{
    size_t n;
    char *text = read_all(KOKORO_TEST_DATA "/kokoro-config.json", &n);
    char *at = strstr(text, from);
    assert_non_null(at);
    char *out = calloc(1, n + strlen(to) + 1);
    memcpy(out, text, (size_t)(at - text));
    strcat(out, to);
    strcat(out, at + strlen(from));
    kokoro_config *c = NULL;
    kokoro_status st = kokoro_config_parse(out, strlen(out), "config.json", &c);
    printf("  -> %s\n", kokoro_last_error());
    assert_int_equal(st, want);
    assert_null(c);
    assert_non_null(strstr(kokoro_last_error(), needle));
    free(text);
    free(out);
}

static void test_bad_configs(void **state)
{
    (void)state;
    expect_bad("\"hidden_dim\": 512", "\"hidden_dim\": 256", KOKORO_ERR_MODEL, "'hidden_dim' is 256");
    expect_bad("\"num_hidden_layers\": 12", "\"num_hidden_layers\": 6", KOKORO_ERR_MODEL, "plbert.num_hidden_layers");
    expect_bad("\"upsample_rates\": [10, 6]", "\"upsample_rates\": [8, 8]", KOKORO_ERR_MODEL, "upsample_rates");
    expect_bad("\"n_token\": 178,", "", KOKORO_ERR_FORMAT, "'n_token' is missing");
    expect_bad("\"vocab\"", "\"vocabulary\"", KOKORO_ERR_FORMAT, "no 'vocab'");
    expect_bad("\";\": 1", "\";;\": 1", KOKORO_ERR_FORMAT, "';;' is not one Unicode character");
    expect_bad("\";\": 1", "\";\": 0", KOKORO_ERR_FORMAT, "not an integer in 1..177");
    expect_bad("\";\": 1", "\";\": 2", KOKORO_ERR_FORMAT, "vocab id 2 is given to two symbols");
    expect_bad("\"n_token\": 178,", "\"n_token\": 178,,", KOKORO_ERR_FORMAT, "not valid JSON");
    kokoro_config *c;
    assert_int_equal(kokoro_config_load("/nonexistent/config.json", &c), KOKORO_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_and_file),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
