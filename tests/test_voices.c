/* Voice packs in every published format give the same numbers; the style row
 * is len(phonemes) - 1 clamped; blends in both syntaxes; bad files and
 * unknown names refused with a message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kokoro.h"
#include "io/npz.h"
#include "testutil.h"

#define D KOKORO_TEST_DATA
static char dir[] = "/tmp/kokoro-voices-test-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static kokoro_voices *load(const char *path)
{
    kokoro_voices *v = NULL;
    kokoro_status st = kokoro_voices_load(path, &v);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    return v;
}

static void row(const kokoro_voices *v, const char *spec, size_t n, float *out)
{
    kokoro_status st = kokoro_voices_style(v, spec, n, out);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
}

static void test_formats_agree(void **state)
{
    (void)state;
    kokoro_voices *npz = load(D "/voices-test.npz"), *defl = load(D "/voices-test-deflate.npz");
    kokoro_voices *folder = load(D "/voices");
    assert_int_equal(kokoro_voices_count(npz), 8);
    assert_int_equal(kokoro_voices_count(defl), 3);
    assert_int_equal(kokoro_voices_count(folder), 2);
    assert_string_equal(kokoro_voices_name(npz, 0), "af_heart");
    assert_string_equal(kokoro_voices_name(npz, 7), "zf_xiaoxiao");
    assert_null(kokoro_voices_name(npz, 8));
    /* both upstream .pt packs of the fixtures against their npz entries, the
     * raw .bin files and the folder: a female and a male voice, so a mix-up
     * between packs shows too */
    const char *names[2] = {"af_heart", "am_adam"};
    const size_t lens[] = {1, 2, 50, 509, 510, 511, 100000};
    float first[2][256];
    for (int v = 0; v < 2; v++) {
        char pt_path[512], raw_path[512];
        snprintf(pt_path, sizeof pt_path, "%s/%s.pt", D, names[v]);
        snprintf(raw_path, sizeof raw_path, "%s/voices/%s.bin", D, names[v]);
        kokoro_voices *pt = load(pt_path), *raw = load(raw_path);
        assert_int_equal(kokoro_voices_count(pt), 1);
        assert_string_equal(kokoro_voices_name(pt, 0), names[v]);
        assert_string_equal(kokoro_voices_name(raw, 0), names[v]);
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
            float a[256], b[256], c[256], d[256], e[256];
            row(npz, names[v], lens[i], a);
            row(defl, names[v], lens[i], b);
            row(pt, names[v], lens[i], c);
            row(raw, names[v], lens[i], d);
            row(folder, names[v], lens[i], e);
            assert_memory_equal(a, b, sizeof a);
            assert_memory_equal(a, c, sizeof a);
            assert_memory_equal(a, d, sizeof a);
            assert_memory_equal(a, e, sizeof a);
            if (i == 2) memcpy(first[v], a, sizeof a);
        }
        kokoro_voices_free(pt), kokoro_voices_free(raw);
    }
    assert_memory_not_equal(first[0], first[1], sizeof first[0]);
    /* the row is len - 1 (the upstream pipeline), clamped: read the raw file directly */
    FILE *f = fopen(D "/voices/am_adam.bin", "rb");
    float *pack = malloc(510 * 256 * 4);
    assert_int_equal(fread(pack, 4, 510 * 256, f), 510 * 256);
    fclose(f);
    float s[256];
    row(npz, "am_adam", 100, s);
    assert_memory_equal(s, pack + 99 * 256, sizeof s);
    row(npz, "am_adam", 0, s);
    assert_memory_equal(s, pack, sizeof s);
    row(npz, "am_adam", 600, s);
    assert_memory_equal(s, pack + 509 * 256, sizeof s);
    free(pack);
    kokoro_voices_free(npz), kokoro_voices_free(defl), kokoro_voices_free(folder);
}

static void test_blends(void **state)
{
    (void)state;
    kokoro_voices *v = load(D "/voices-test.npz");
    float a[256], b[256], c[256], m[256];
    row(v, "af_sarah", 40, a);
    row(v, "am_adam", 40, b);
    row(v, "bf_emma", 40, c);
    /* kokoro-tts syntax, normalised */
    row(v, "af_sarah:60,am_adam:40", 40, m);
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], 0.6f * a[i] + 0.4f * b[i], 1e-6);
    row(v, "af_sarah:3,am_adam:2", 40, m);
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], 0.6f * a[i] + 0.4f * b[i], 1e-6);
    row(v, "af_sarah,am_adam,bf_emma", 40, m); /* no weights: equal parts, any number of voices */
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], (a[i] + b[i] + c[i]) / 3, 1e-6);
    /* Kokoro-FastAPI syntax */
    row(v, "af_sarah(2)+am_adam(1)", 40, m);
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], (2 * a[i] + b[i]) / 3, 1e-6);
    row(v, "af_sarah+am_adam", 40, m);
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], (a[i] + b[i]) / 2, 1e-6);
    row(v, "af_sarah+am_adam-bf_emma", 40, m);
    for (int i = 0; i < 256; i++) assert_float_equal(m[i], (a[i] + b[i] - c[i]) / 2, 1e-6);

    const char *bad[] = {"af_nobody", "af_sarah:60,am_nobody:40", "af_sarah:-1,am_adam:2", "af_sarah:60,am_adam",
                         "af_sarah+", "af_sarah(0)+am_adam", "-af_sarah", "", "af_sarah;am_adam", "af_sarah(x)"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kokoro_status st = kokoro_voices_style(v, bad[i], 40, m);
        printf("  '%s' -> %s\n", bad[i], kokoro_last_error());
        assert_int_equal(st, KOKORO_ERR_INVALID_ARG);
    }
    kokoro_voices_style(v, "af_nobody", 40, m);
    assert_non_null(strstr(kokoro_last_error(), "available voices: af_heart, af_sarah, am_adam"));
    kokoro_voices_free(v);
}

static void test_bad_files(void **state)
{
    (void)state;
    kokoro_voices *v;
    char path[600];
    /* a raw pack of the wrong size */
    snprintf(path, sizeof path, "%s/short.bin", dir);
    FILE *f = fopen(path, "wb");
    float zeros[100] = {0};
    fwrite(zeros, 4, 100, f);
    fclose(f);
    assert_int_equal(kokoro_voices_load(path, &v), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "400 bytes; a raw voice pack is 522240 bytes"));
    /* an npz entry of the wrong shape, and one of the wrong dtype */
    kk_table t;
    kk_table_init(&t);
    assert_int_equal(kk_table_add(&t, "af_x", KK_F32, 3, (int64_t[]){509, 1, 256}, calloc(509 * 256, 4)), KOKORO_OK);
    snprintf(path, sizeof path, "%s/shape.npz", dir);
    assert_int_equal(kk_npz_write(path, &t), KOKORO_OK);
    kk_table_free(&t);
    assert_int_equal(kokoro_voices_load(path, &v), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "entry 'af_x': shape 509x1x256"));
    kk_table_init(&t);
    assert_int_equal(kk_table_add(&t, "af_y", KK_I64, 3, (int64_t[]){510, 1, 256}, calloc(510 * 256, 8)), KOKORO_OK);
    snprintf(path, sizeof path, "%s/dtype.npz", dir);
    assert_int_equal(kk_npz_write(path, &t), KOKORO_OK);
    kk_table_free(&t);
    assert_int_equal(kokoro_voices_load(path, &v), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "dtype int64"));
    /* missing path, empty folder, duplicate names across files */
    assert_int_equal(kokoro_voices_load("/nonexistent/voices.bin", &v), KOKORO_ERR_IO);
    snprintf(path, sizeof path, "%s/empty", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mkdir -p '%s/dup' && cp '%s/af_heart.pt' '%s/voices/af_heart.bin' '%s/dup/'",
             path, dir, D, D, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(kokoro_voices_load(path, &v), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "no voice files"));
    snprintf(path, sizeof path, "%s/dup", dir);
    assert_int_equal(kokoro_voices_load(path, &v), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "voice 'af_heart' appears twice"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_blends),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("voices", tests, setup, teardown);
}
