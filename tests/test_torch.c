/* PyTorch checkpoints: the layout fixture read bit-exactly, a voice .pt, a
 * full-size official-layout .pth of the test weights giving the same audio
 * as the weights themselves (through the library and through kokoro-bench),
 * and malformed files refused with a message naming the problem. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/npz.h"
#include "io/torch.h"
#include "model/model.h"
#include "testutil.h"
#include "torchwrite.h"

#include <zip.h>

static char dir[] = "/tmp/kokoro-torch-test-XXXXXX";

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

static const char *in_dir(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void test_layout_fixture(void **state)
{
    (void)state;
    kk_table got, want;
    assert_int_equal(kk_torch_read(KOKORO_TEST_DATA "/layout-fixture.pth", &got), KOKORO_OK);
    assert_int_equal(kk_npz_read(KOKORO_TEST_DATA "/layout-fixture-expected.npz", &want), KOKORO_OK);
    assert_int_equal(got.count, want.count);
    for (size_t i = 0; i < want.count; i++) {
        const kk_tensor *w = &want.items[i], *g = kk_table_find(&got, w->name);
        if (!g) printf("  missing %s\n", w->name);
        assert_non_null(g);
        assert_int_equal(g->dtype, w->dtype);
        assert_int_equal(g->ndim, w->ndim);
        for (int d = 0; d < w->ndim; d++) assert_int_equal(g->shape[d], w->shape[d]);
        assert_int_equal(g->nbytes, w->nbytes);
        assert_memory_equal(g->data, w->data, w->nbytes);
    }
    printf("  %zu tensors bit-equal (views, offsets, transposes, float16, int64, 0-d)\n", want.count);
    kk_table_free(&got);
    kk_table_free(&want);
}

static void test_voice_pt(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_torch_read(KOKORO_TEST_DATA "/af_heart.pt", &t), KOKORO_OK);
    assert_int_equal(t.count, 1);
    const kk_tensor *v = &t.items[0];
    assert_string_equal(v->name, "");
    assert_int_equal(v->ndim, 3);
    assert_int_equal(v->shape[0], 510);
    assert_int_equal(v->shape[2], 256);
    FILE *f = fopen(KOKORO_TEST_DATA "/voices/af_heart.bin", "rb");
    assert_non_null(f);
    float *raw = malloc(510 * 256 * 4);
    assert_int_equal(fread(raw, 4, 510 * 256, f), 510 * 256);
    fclose(f);
    assert_memory_equal(v->data, raw, 510 * 256 * 4);
    free(raw);
    kk_table_free(&t);
}

static int run_bench(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s", KOKORO_BENCH_PATH, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The checkpoint at pth loads, has the test weights' parameter count and
 * synthesises the golden "short" case bit-equal to them; returns that count. */
static size_t assert_pth_equals_test_weights(const char *pth)
{
    kokoro_model *from_file, *direct;
    kokoro_status st = kokoro_model_load(pth, &from_file);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    assert_int_equal(kokoro_model_load_test_weights(&direct), KOKORO_OK);
    size_t n_params = kokoro_model_num_params(from_file);
    assert_int_equal(n_params, kokoro_model_num_params(direct));
    const kk_tensor *ids = kt_golden_get("short.input_ids");
    const float *style = kt_golden_get("short.style")->data;
    kokoro_synth_options o = kokoro_synth_options_default();
    o.no_noise = 1;
    kokoro_audio a, b;
    assert_int_equal(kokoro_synthesize(from_file, (const int64_t *)ids->data + 1, 14, style, &o, &a), KOKORO_OK);
    assert_int_equal(kokoro_synthesize(direct, (const int64_t *)ids->data + 1, 14, style, &o, &b), KOKORO_OK);
    assert_int_equal(a.n_samples, b.n_samples);
    assert_memory_equal(a.samples, b.samples, a.n_samples * sizeof(float));
    kokoro_audio_free(&a);
    kokoro_audio_free(&b);
    kokoro_model_free(from_file);
    kokoro_model_free(direct);
    return n_params;
}

static void test_full_size_pth(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    char pth[512];
    snprintf(pth, sizeof pth, "%s", in_dir("kokoro-test.pth"));
    assert_int_equal(kt_write_pth(pth, &t, 1), 0);
    kk_table_free(&t);

    printf("  full-size .pth (%zu parameters): audio identical to the in-memory test weights\n",
           assert_pth_equals_test_weights(pth));

    /* and through kokoro-bench: --model FILE.pth == --test-weights, bit for bit */
    char args[1024];
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s' --model '%s' --no-noise", KOKORO_TEST_DATA,
             in_dir("pth-out.npz"), pth);
    assert_int_equal(run_bench(args), 0);
    snprintf(args, sizeof args, "--cases '%s/kokoro-golden.npz' --out '%s' --test-weights --no-noise", KOKORO_TEST_DATA,
             in_dir("tw-out.npz"));
    assert_int_equal(run_bench(args), 0);
    kk_table x, y;
    assert_int_equal(kk_npz_read(in_dir("pth-out.npz"), &x), KOKORO_OK);
    assert_int_equal(kk_npz_read(in_dir("tw-out.npz"), &y), KOKORO_OK);
    assert_int_equal(x.count, 6);
    for (size_t i = 0; i < x.count; i++) {
        const kk_tensor *p = kk_table_find(&y, x.items[i].name);
        assert_non_null(p);
        assert_int_equal(p->nbytes, x.items[i].nbytes);
        assert_memory_equal(p->data, x.items[i].data, p->nbytes);
    }
    kk_table_free(&x);
    kk_table_free(&y);

    /* a config.json beside the checkpoint must describe this network */
    FILE *cf = fopen(in_dir("config.json"), "w");
    fputs("{\"hidden_dim\": 256}", cf);
    fclose(cf);
    kokoro_model *bad = NULL;
    assert_int_equal(kokoro_model_load(pth, &bad), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "config.json"));
    assert_null(bad);
    snprintf(args, sizeof args, "cp '%s/kokoro-config.json' '%s'", KOKORO_TEST_DATA, in_dir("config.json"));
    assert_int_equal(system(args), 0);
    assert_int_equal(kokoro_model_load(pth, &bad), KOKORO_OK);
    assert_int_equal(kokoro_config_vocab_size(kokoro_model_config(bad)), 114);
    kokoro_model_free(bad);
    unlink(pth);
}

/* Every storage dtype a state dict may hold, with values that show a wrong
 * byte order or a wrong conversion: read back with its dtype, bit-equal, and
 * converted to float32 exactly. */
typedef struct dtype_case {
    const char *name;
    kk_dtype dtype;
    int64_t n;
    const void *bits;
    float want[4];
} dtype_case;

static const uint16_t bf16_bits[4] = {0x3fc0, 0xc010, 0x4049, 0xff80}; /* 1.5, -2.25, 3.140625, -inf */
static const uint16_t f16_bits[4] = {0x3c00, 0xc000, 0x3555, 0x0001};   /* 1, -2, 0.333251953125, 2^-24 */
static const int32_t i32_vals[4] = {-7, 65536, INT32_MAX, INT32_MIN};
static const uint8_t u8_vals[4] = {0, 1, 128, 255};
static const uint8_t bool_vals[4] = {1, 0, 0, 1};
static const int64_t i64_vals[2] = {-1, (int64_t)1 << 40};
static const float f32_vals[3] = {1.5f, -0.1f, 1e30f};
static const dtype_case dtype_cases[] = {
    {"w.bf16", KK_BF16, 4, bf16_bits, {1.5f, -2.25f, 3.140625f, -INFINITY}},
    {"w.f16", KK_F16, 4, f16_bits, {1.0f, -2.0f, 0.333251953125f, 5.9604644775390625e-8f}},
    {"w.i32", KK_I32, 4, i32_vals, {-7.0f, 65536.0f, 2147483648.0f, -2147483648.0f}},
    {"w.u8", KK_U8, 4, u8_vals, {0.0f, 1.0f, 128.0f, 255.0f}},
    {"w.bool", KK_BOOL, 4, bool_vals, {1.0f, 0.0f, 0.0f, 1.0f}},
    {"w.i64", KK_I64, 2, i64_vals, {-1.0f, 1099511627776.0f}},
    {"w.f32", KK_F32, 3, f32_vals, {1.5f, -0.1f, 1e30f}},
};
#define N_DTYPE_CASES (sizeof dtype_cases / sizeof *dtype_cases)

static void dtype_table(kk_table *t)
{
    kk_table_init(t);
    for (size_t i = 0; i < N_DTYPE_CASES; i++) {
        const dtype_case *c = &dtype_cases[i];
        size_t nb = (size_t)c->n * kk_dtype_size(c->dtype);
        void *d = malloc(nb);
        memcpy(d, c->bits, nb);
        /* bool as 2x2: a storage read with its shape, not only as a flat run */
        int64_t shape[2] = {c->dtype == KK_BOOL ? 2 : c->n, 2};
        assert_int_equal(kk_table_add(t, c->name, c->dtype, c->dtype == KK_BOOL ? 2 : 1, shape, d), KOKORO_OK);
    }
}

static void expect_dtype_table(const char *path)
{
    kk_table got;
    kokoro_status st = kk_torch_read(path, &got);
    if (st != KOKORO_OK) printf("  %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_OK);
    assert_int_equal(got.count, N_DTYPE_CASES);
    for (size_t i = 0; i < N_DTYPE_CASES; i++) {
        const dtype_case *c = &dtype_cases[i];
        const kk_tensor *g = kk_table_find(&got, c->name);
        assert_non_null(g);
        assert_int_equal(g->dtype, c->dtype);
        assert_int_equal(kk_tensor_numel(g), c->n);
        assert_memory_equal(g->data, c->bits, (size_t)c->n * kk_dtype_size(c->dtype));
        float f[4];
        assert_int_equal(kk_tensor_to_f32(g, f), KOKORO_OK);
        assert_memory_equal(f, c->want, (size_t)c->n * sizeof *f);
    }
    kk_table_free(&got);
}

static void test_dtypes_and_byteorder(void **state)
{
    (void)state;
    kk_table t;
    dtype_table(&t);
    /* no byteorder record (torch < 1.12: little-endian), "little", and "big"
     * with every element's bytes reversed, as a big-endian host saves */
    kt_pth_opts o = {.layout = KT_FLAT};
    assert_int_equal(kt_write_pth_opts(in_dir("dt-none.pth"), &t, &o), 0);
    expect_dtype_table(in_dir("dt-none.pth"));
    o.byteorder = "little";
    assert_int_equal(kt_write_pth_opts(in_dir("dt-little.pth"), &t, &o), 0);
    expect_dtype_table(in_dir("dt-little.pth"));
    o.byteorder = "big";
    o.big_endian = 1;
    assert_int_equal(kt_write_pth_opts(in_dir("dt-big.pth"), &t, &o), 0);
    expect_dtype_table(in_dir("dt-big.pth"));
    printf("  bfloat16, float16, int32, uint8, bool, int64, float32: dtype kept, values exact, "
           "little- and big-endian\n");

    /* newer writers keep the version in .data/version */
    o = (kt_pth_opts){.layout = KT_FLAT, .version = ""};
    assert_int_equal(kt_write_pth_opts(in_dir("dt-v6.pth"), &t, &o), 0);
    int err;
    zip_t *z = zip_open(in_dir("dt-v6.pth"), 0, &err);
    assert_non_null(z);
    zip_int64_t idx = zip_name_locate(z, "archive/version", 0);
    assert_true(idx >= 0);
    assert_int_equal(zip_delete(z, (zip_uint64_t)idx), 0);
    assert_true(zip_file_add(z, "archive/.data/version", zip_source_buffer(z, "6\n", 2, 0), 0) >= 0);
    assert_int_equal(zip_close(z), 0);
    expect_dtype_table(in_dir("dt-v6.pth"));

    /* a byteorder other than the two torch writes, and a version that is no number */
    kk_table bad;
    o = (kt_pth_opts){.layout = KT_FLAT, .byteorder = "middle"};
    assert_int_equal(kt_write_pth_opts(in_dir("dt-middle.pth"), &t, &o), 0);
    assert_int_equal(kk_torch_read(in_dir("dt-middle.pth"), &bad), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "dt-middle.pth: record 'archive/byteorder' is 'middle'; expected "
                                                "'little' or 'big'"));
    assert_int_equal(bad.count, 0);
    o = (kt_pth_opts){.layout = KT_FLAT, .version = "three\n"};
    assert_int_equal(kt_write_pth_opts(in_dir("dt-version.pth"), &t, &o), 0);
    assert_int_equal(kk_torch_read(in_dir("dt-version.pth"), &bad), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "dt-version.pth: record 'archive/version' is 'three'; expected a "
                                                "format version number"));
    kk_table_free(&t);
}

/* A voice pack saved on a big-endian host reads as the little-endian one. */
static void test_big_endian_voice(void **state)
{
    (void)state;
    kk_table le, be;
    assert_int_equal(kk_torch_read(KOKORO_TEST_DATA "/am_adam.pt", &le), KOKORO_OK);
    kt_pth_opts o = {.layout = KT_SINGLE, .byteorder = "big", .big_endian = 1};
    assert_int_equal(kt_write_pth_opts(in_dir("am_adam.pt"), &le, &o), 0);
    kokoro_voices *v = NULL;
    assert_int_equal(kokoro_voices_load(in_dir("am_adam.pt"), &v), KOKORO_OK);
    float a[256];
    assert_int_equal(kokoro_voices_style(v, "am_adam", 100, a), KOKORO_OK);
    assert_memory_equal(a, (const float *)le.items[0].data + 99 * 256, sizeof a);
    kokoro_voices_free(v);
    /* the same bytes claimed little-endian are another pack: the record is what decides */
    o.byteorder = "little";
    assert_int_equal(kt_write_pth_opts(in_dir("am_adam_wrong.pt"), &le, &o), 0);
    assert_int_equal(kk_torch_read(in_dir("am_adam_wrong.pt"), &be), KOKORO_OK);
    assert_memory_not_equal(be.items[0].data, le.items[0].data, le.items[0].nbytes);
    kk_table_free(&be);
    kk_table_free(&le);
}

/* The newer weight-norm spelling (torch.nn.utils.parametrizations) and the
 * position_ids buffer some transformers versions save with the bert dict:
 * the checkpoint binds and gives the audio of the weight_g/weight_v one. */
static void test_full_size_parametrizations(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_test_weights_table(&t), KOKORO_OK);
    int64_t *pos = malloc(512 * sizeof *pos);
    for (int i = 0; i < 512; i++) pos[i] = i;
    assert_int_equal(kk_table_add(&t, "bert.embeddings.position_ids", KK_I64, 2, (int64_t[]){1, 512}, pos),
                     KOKORO_OK);
    size_t n_wn = 0;
    for (size_t i = 0; i < t.count; i++) n_wn += strstr(t.items[i].name, ".weight_g") != NULL;
    char pth[512];
    snprintf(pth, sizeof pth, "%s", in_dir("kokoro-param.pth"));
    kt_pth_opts o = {.layout = KT_OFFICIAL, .parametrizations = 1, .byteorder = "little"};
    assert_int_equal(kt_write_pth_opts(pth, &t, &o), 0);
    kk_table_free(&t);

    /* the file really is in the other spelling */
    int err;
    zip_t *z = zip_open(pth, ZIP_RDONLY, &err);
    assert_non_null(z);
    zip_stat_t zs;
    assert_int_equal(zip_stat(z, "archive/data.pkl", 0, &zs), 0);
    char *pkl = malloc(zs.size + 1);
    zip_file_t *zf = zip_fopen(z, "archive/data.pkl", 0);
    assert_int_equal(zip_fread(zf, pkl, zs.size), (zip_int64_t)zs.size);
    zip_fclose(zf);
    zip_discard(z);
    size_t n_orig0 = 0, n_g = 0, n_pos = 0;
    for (size_t i = 0; i + 40 < zs.size; i++) {
        n_orig0 += memcmp(pkl + i, ".parametrizations.weight.original0", 34) == 0;
        n_g += memcmp(pkl + i, ".weight_g", 9) == 0;
        n_pos += memcmp(pkl + i, "module.embeddings.position_ids", 30) == 0;
    }
    free(pkl);
    assert_true(n_wn > 0);
    assert_int_equal(n_orig0, n_wn);
    assert_int_equal(n_g, 0);
    assert_int_equal(n_pos, 1);

    assert_pth_equals_test_weights(pth);
    printf("  %zu weight-norm pairs as parametrizations.weight.original0/1, plus position_ids: audio identical\n",
           n_wn);
    unlink(pth);
}

/* ---- malformed input ---- */

typedef struct mem_storage {
    const unsigned char *data;
    size_t size;
} mem_storage;

static kokoro_status mem_fn(void *ctx, const char *key, kk_dtype dtype, int64_t numel, const unsigned char **data,
                            size_t *size)
{
    (void)key, (void)dtype, (void)numel;
    mem_storage *m = ctx;
    *data = m->data;
    *size = m->size;
    return KOKORO_OK;
}

/* rebuild_tensor_v2 of a float storage of `numel` elements, offset, shape, stride (2-d) */
static void tensor_pickle(kt_pk *b, int64_t numel, int64_t offset, int64_t r, int64_t c, int64_t sr, int64_t sc)
{
    kt_pk_op(b, 0x80), kt_pk_op(b, 2);
    kt_pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    kt_pk_op(b, '('), kt_pk_op(b, '(');
    kt_pk_str(b, "storage"), kt_pk_global(b, "torch", "FloatStorage"), kt_pk_str(b, "0"), kt_pk_str(b, "cpu");
    kt_pk_int(b, numel);
    kt_pk_op(b, 't'), kt_pk_op(b, 'Q');
    kt_pk_int(b, offset);
    kt_pk_int(b, r), kt_pk_int(b, c), kt_pk_op(b, 0x86);
    kt_pk_int(b, sr), kt_pk_int(b, sc), kt_pk_op(b, 0x86);
    kt_pk_op(b, 0x89), kt_pk_op(b, '}'), kt_pk_op(b, 't'), kt_pk_op(b, 'R'), kt_pk_op(b, '.');
}

static void expect_pickle_error(kt_pk *b, size_t storage_bytes, const char *needle)
{
    float store[64] = {0};
    mem_storage m = {(const unsigned char *)store, storage_bytes};
    kk_table t;
    kokoro_status st = kk_pickle_load(b->p, b->n, "test.pkl", mem_fn, &m, &t);
    printf("  -> %s\n", kokoro_last_error());
    assert_int_not_equal(st, KOKORO_OK);
    assert_non_null(strstr(kokoro_last_error(), needle));
    assert_int_equal(t.count, 0);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void test_malformed_pickles(void **state)
{
    (void)state;
    kt_pk b = {0};
    /* the well-formed one loads */
    tensor_pickle(&b, 6, 0, 2, 3, 3, 1);
    float store[6] = {1, 2, 3, 4, 5, 6};
    mem_storage m = {(const unsigned char *)store, sizeof store};
    kk_table t;
    assert_int_equal(kk_pickle_load(b.p, b.n, "ok.pkl", mem_fn, &m, &t), KOKORO_OK);
    assert_int_equal(t.count, 1);
    kk_table_free(&t);
    free(b.p);
    memset(&b, 0, sizeof b);

    /* a disallowed global, named with its offset */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_global(&b, "os", "system");
    kt_pk_str(&b, "echo hacked"), kt_pk_op(&b, 0x85), kt_pk_op(&b, 'R'), kt_pk_op(&b, '.');
    expect_pickle_error(&b, 0, "pickle byte 2: global 'os.system' is not allowed");
    /* an unknown opcode */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_op(&b, 'I'), kt_pk_put(&b, "42\n", 3), kt_pk_op(&b, '.');
    expect_pickle_error(&b, 0, "pickle byte 2: unsupported opcode 0x49");
    /* a storage smaller than it declares */
    tensor_pickle(&b, 6, 0, 2, 3, 3, 1);
    expect_pickle_error(&b, 16, "declares 6 elements but holds 16 bytes");
    /* strides pointing outside the storage */
    tensor_pickle(&b, 6, 0, 3, 3, 3, 1);
    expect_pickle_error(&b, 24, "reach element 8 of storage '0', which has 6");
    tensor_pickle(&b, 6, 4, 2, 2, 1, 1);
    expect_pickle_error(&b, 24, "reach element 6");
    /* a storage class may not be called */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_global(&b, "torch", "FloatStorage"), kt_pk_op(&b, ')');
    kt_pk_op(&b, 'R'), kt_pk_op(&b, '.');
    expect_pickle_error(&b, 0, "call of 'torch.FloatStorage' refused");
    /* truncated: no STOP */
    tensor_pickle(&b, 6, 0, 2, 3, 3, 1);
    b.n -= 3;
    expect_pickle_error(&b, 24, "ends before STOP");
    /* a string longer than the pickle */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_op(&b, 'X'), kt_pk_put(&b, "\xff\xff\x00\x00", 4), kt_pk_op(&b, '.');
    expect_pickle_error(&b, 0, "runs past the end");
    /* GET of an empty memo slot */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_op(&b, 'h'), kt_pk_op(&b, 7), kt_pk_op(&b, '.');
    expect_pickle_error(&b, 0, "empty memo slot");
}

static void test_malformed_files(void **state)
{
    (void)state;
    kk_table t;
    /* wrong magic */
    FILE *f = fopen(in_dir("junk.pth"), "w");
    fputs("definitely not a zip", f);
    fclose(f);
    assert_int_equal(kk_torch_read(in_dir("junk.pth"), &t), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "junk.pth"));
    kokoro_model *m;
    assert_int_equal(kokoro_model_load(in_dir("junk.pth"), &m), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "not a Kokoro model file"));
    /* truncated zip */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -c 40000 '%s/layout-fixture.pth' > '%s'", KOKORO_TEST_DATA, in_dir("cut.pth"));
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(kk_torch_read(in_dir("cut.pth"), &t), KOKORO_OK);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "cut.pth"));

    /* a 1 GB storage declared in a small file */
    kk_table one;
    kk_table_init(&one);
    assert_int_equal(kk_table_add(&one, "x", KK_F32, 1, (int64_t[]){4}, calloc(4, 4)), KOKORO_OK);
    assert_int_equal(kt_write_pth(in_dir("small.pt"), &one, 0), 0);
    kk_table_free(&one);
    /* rewrite its pickle to declare 268435456 floats (1 GiB) */
    kt_pk b = {0};
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2);
    kt_pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    kt_pk_op(&b, '('), kt_pk_op(&b, '(');
    kt_pk_str(&b, "storage"), kt_pk_global(&b, "torch", "FloatStorage"), kt_pk_str(&b, "0"), kt_pk_str(&b, "cpu");
    kt_pk_int(&b, 268435456);
    kt_pk_op(&b, 't'), kt_pk_op(&b, 'Q'), kt_pk_int(&b, 0), kt_pk_int(&b, 268435456), kt_pk_op(&b, 0x85);
    kt_pk_int(&b, 1), kt_pk_op(&b, 0x85), kt_pk_op(&b, 0x89), kt_pk_op(&b, '}'), kt_pk_op(&b, 't');
    kt_pk_op(&b, 'R'), kt_pk_op(&b, '.');
    int err;
    zip_t *z = zip_open(in_dir("small.pt"), 0, &err);
    assert_non_null(z);
    zip_int64_t idx = zip_name_locate(z, "archive/data.pkl", 0);
    assert_true(idx >= 0);
    assert_int_equal(zip_file_replace(z, (zip_uint64_t)idx, zip_source_buffer(z, b.p, b.n, 0), 0), 0);
    assert_int_equal(zip_close(z), 0);
    free(b.p);
    assert_int_equal(kk_torch_read(in_dir("small.pt"), &t), KOKORO_ERR_FORMAT);
    printf("  -> %s\n", kokoro_last_error());
    assert_non_null(strstr(kokoro_last_error(), "holds 16 bytes, 1073741824 declared"));

    /* a zip without data.pkl is not a checkpoint */
    z = zip_open(in_dir("nopkl.pth"), ZIP_CREATE | ZIP_TRUNCATE, &err);
    zip_file_add(z, "archive/version", zip_source_buffer(z, "3\n", 2, 0), 0);
    zip_close(z);
    assert_int_equal(kk_torch_read(in_dir("nopkl.pth"), &t), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "data.pkl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_fixture),    cmocka_unit_test(test_voice_pt),
        cmocka_unit_test(test_malformed_pickles), cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_full_size_pth),     cmocka_unit_test(test_dtypes_and_byteorder),
        cmocka_unit_test(test_big_endian_voice),  cmocka_unit_test(test_full_size_parametrizations),
    };
    return cmocka_run_group_tests_name("torch", tests, setup, teardown);
}
