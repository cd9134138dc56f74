/* NumPy .npy / .npz: reading real files, round trips, Fortran order,
 * big-endian data, deflated members, and malformed input refused with a
 * message (never a crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include <cmocka.h>

#include "io/npz.h"
#include "testutil.h"

static char dir[] = "/tmp/kokoro-npz-test-XXXXXX";

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

/* A .npy image: header dict `dict` (padded to 64 bytes) followed by `n` data bytes. */
static unsigned char *make_npy(const char *dict, const void *data, size_t n, size_t *size)
{
    size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64;
    unsigned char *b = calloc(total + n + 1, 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)((total - 10) & 0xff);
    b[9] = (unsigned char)((total - 10) >> 8);
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', total - 10 - dl - 1);
    b[total - 1] = '\n';
    memcpy(b + total, data, n);
    *size = total + n;
    return b;
}

/* Writes a zip holding `count` members. */
static void make_zip(const char *path, const char **names, unsigned char **datas, const size_t *sizes, int count,
                     int deflate)
{
    int err;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(z);
    for (int i = 0; i < count; i++) {
        zip_source_t *s = zip_source_buffer(z, datas[i], sizes[i], 0);
        zip_int64_t idx = zip_file_add(z, names[i], s, 0);
        assert_true(idx >= 0);
        zip_set_file_compression(z, (zip_uint64_t)idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 9);
    }
    assert_int_equal(zip_close(z), 0);
}

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void test_golden_file(void **state)
{
    (void)state;
    kk_table t;
    assert_int_equal(kk_npz_read(KOKORO_TEST_DATA "/kokoro-golden.npz", &t), KOKORO_OK);
    assert_int_equal(t.count, 41);
    const kk_tensor *ids = kk_table_find(&t, "short.input_ids");
    assert_non_null(ids);
    assert_int_equal(ids->dtype, KK_I64);
    assert_int_equal(ids->ndim, 2);
    assert_int_equal(ids->shape[0], 1);
    assert_int_equal(ids->shape[1], 16);
    static const int64_t want[16] = {0, 55, 22, 64, 118, 9, 12, 157, 86, 15, 60, 102, 10, 81, 39, 0};
    assert_memory_equal(ids->data, want, sizeof want);
    const kk_tensor *sp = kk_table_find(&t, "fast.speed");
    assert_non_null(sp);
    assert_int_equal(sp->dtype, KK_F32);
    assert_float_equal(((float *)sp->data)[0], 1.4f, 1e-6);

    /* har_spec is stored in Fortran order: check our C-order view against raw bytes */
    const kk_tensor *hs = kk_table_find(&t, "short.har_spec");
    assert_null(hs);
    hs = kk_table_find(&t, "short.decoder.generator.har_spec");
    assert_non_null(hs);
    assert_int_equal(hs->ndim, 3);
    assert_int_equal(hs->shape[1], 11);
    assert_int_equal(hs->shape[2], 5761);
    int err;
    zip_t *z = zip_open(KOKORO_TEST_DATA "/kokoro-golden.npz", ZIP_RDONLY, &err);
    assert_non_null(z);
    zip_stat_t zs;
    assert_int_equal(zip_stat(z, "short.decoder.generator.har_spec.npy", 0, &zs), 0);
    unsigned char *raw = malloc(zs.size);
    zip_file_t *f = zip_fopen(z, "short.decoder.generator.har_spec.npy", 0);
    assert_int_equal(zip_fread(f, raw, zs.size), (zip_int64_t)zs.size);
    zip_fclose(f);
    zip_close(z);
    size_t hl = (size_t)raw[8] | (size_t)raw[9] << 8;
    assert_non_null(strstr((char *)raw + 10, "'fortran_order': True"));
    const float *fdata = (const float *)(raw + 10 + hl), *c = hs->data;
    const int probes[][2] = {{0, 0}, {0, 1}, {1, 0}, {10, 5760}, {3, 1234}, {7, 99}};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        int k = probes[i][0], t2 = probes[i][1];
        /* shape (1, 11, 5761): Fortran offset k + 11·t, C offset k·5761 + t */
        float fv;
        memcpy(&fv, &fdata[k + 11 * t2], 4);
        assert_memory_equal(&c[k * 5761 + t2], &fv, 4);
    }
    free(raw);
    kk_table_free(&t);
}

static void test_round_trip(void **state)
{
    (void)state;
    kk_table t;
    kk_table_init(&t);
    float *a = malloc(6 * sizeof *a);
    for (int i = 0; i < 6; i++) a[i] = (float)i * 0.5f - 1.0f;
    int64_t *b = malloc(3 * sizeof *b);
    b[0] = -5, b[1] = 0, b[2] = 1LL << 40;
    double *s = malloc(sizeof *s);
    *s = 3.25;
    assert_int_equal(kk_table_add(&t, "a.weight", KK_F32, 2, (int64_t[]){2, 3}, a), KOKORO_OK);
    assert_int_equal(kk_table_add(&t, "b", KK_I64, 1, (int64_t[]){3}, b), KOKORO_OK);
    assert_int_equal(kk_table_add(&t, "scalar", KK_F64, 0, NULL, s), KOKORO_OK);
    assert_int_equal(kk_table_add(&t, "empty", KK_F32, 1, (int64_t[]){0}, malloc(1)), KOKORO_OK);
    char *p = path_in("rt.npz");
    assert_int_equal(kk_npz_write(p, &t), KOKORO_OK);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_not_equal(access(tmp, F_OK), 0);
    kk_table r;
    assert_int_equal(kk_npz_read(p, &r), KOKORO_OK);
    assert_int_equal(r.count, 4);
    for (size_t i = 0; i < t.count; i++) {
        const kk_tensor *x = &t.items[i], *y = kk_table_find(&r, x->name);
        assert_non_null(y);
        assert_int_equal(y->dtype, x->dtype);
        assert_int_equal(y->ndim, x->ndim);
        for (int d = 0; d < x->ndim; d++) assert_int_equal(y->shape[d], x->shape[d]);
        assert_int_equal(y->nbytes, x->nbytes);
        if (x->nbytes) assert_memory_equal(y->data, x->data, x->nbytes);
    }
    kk_table_free(&r);
    kk_table_free(&t);
}

static void test_deflate_fortran_bigendian(void **state)
{
    (void)state;
    /* a 2x3x2 float array written in Fortran order, C value = 100a + 10b + c */
    float fort[12];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) fort[a + 2 * b + 6 * c] = (float)(100 * a + 10 * b + c);
    size_t n1, n2;
    unsigned char *m1 = make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 2), }", fort,
                                 sizeof fort, &n1);
    /* big-endian int32 1, 2, 3 */
    unsigned char be[12] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
    unsigned char *m2 = make_npy("{'shape': (3,), 'fortran_order': False, 'descr': '>i4'}", be, sizeof be, &n2);
    const char *names[2] = {"f.npy", "be.npy"};
    unsigned char *datas[2] = {m1, m2};
    size_t sizes[2] = {n1, n2};
    for (int deflate = 0; deflate < 2; deflate++) {
        char *p = path_in(deflate ? "deflated.npz" : "stored.npz");
        make_zip(p, names, datas, sizes, 2, deflate);
        kk_table t;
        assert_int_equal(kk_npz_read(p, &t), KOKORO_OK);
        const kk_tensor *f = kk_table_find(&t, "f");
        assert_non_null(f);
        const float *v = f->data;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 2; c++) assert_float_equal(v[(a * 3 + b) * 2 + c], 100 * a + 10 * b + c, 0);
        const kk_tensor *i = kk_table_find(&t, "be");
        assert_non_null(i);
        assert_int_equal(i->dtype, KK_I32);
        const int32_t *iv = i->data;
        assert_int_equal(iv[0], 1);
        assert_int_equal(iv[2], 3);
        kk_table_free(&t);
    }
    free(m1);
    free(m2);
}

/* Writes one member and expects kk_npz_read to fail with `needle` in the message. */
static void expect_bad_member(const char *member, const char *dict, size_t data_bytes, size_t cut, const char *needle)
{
    unsigned char zeros[64] = {0};
    size_t n;
    unsigned char *m = make_npy(dict, zeros, data_bytes, &n);
    if (cut) n -= cut;
    const char *names[1] = {member};
    unsigned char *datas[1] = {m};
    char *p = path_in("bad.npz");
    make_zip(p, names, datas, &n, 1, 0);
    kk_table t;
    kokoro_status st = kk_npz_read(p, &t);
    printf("  -> %s\n", kokoro_last_error());
    assert_int_not_equal(st, KOKORO_OK);
    assert_non_null(strstr(kokoro_last_error(), needle));
    assert_int_equal(t.count, 0);
    free(m);
}

static void test_malformed(void **state)
{
    (void)state;
    kk_table t;
    /* not a zip, an empty file, a missing file */
    char *p = path_in("text.npz");
    FILE *f = fopen(p, "w");
    fputs("hello, not a zip", f);
    fclose(f);
    assert_int_equal(kk_npz_read(p, &t), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "text.npz"));
    p = path_in("empty.npz");
    fclose(fopen(p, "w"));
    assert_int_equal(kk_npz_read(p, &t), KOKORO_ERR_FORMAT);
    assert_int_equal(kk_npz_read(path_in("missing.npz"), &t), KOKORO_ERR_IO);
    assert_non_null(strstr(kokoro_last_error(), "missing.npz"));

    /* a truncated copy of the golden file */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "head -c 3000000 '%s/kokoro-golden.npz' > '%s'", KOKORO_TEST_DATA, path_in("cut.npz"));
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(kk_npz_read(path_in("cut.npz"), &t), KOKORO_OK);
    printf("  -> %s\n", kokoro_last_error());

    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
    expect_bad_member("x.npy", ok, 8, 0, "8 bytes of data where the header declares 16");
    expect_bad_member("x.npy", ok, 24, 0, "24 bytes of data");
    expect_bad_member("x.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", 32, 0, "'|O'");
    expect_bad_member("x.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0, 0,
                      "overflow");
    expect_bad_member("x.npy", "{'descr': '<f4', 'fortran_order': False }", 0, 0, "lacks");
    expect_bad_member("x.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (), }", 4, 0, "fortran_order");
    expect_bad_member("x.npy", "[1, 2]", 0, 0, "not a dict");
    expect_bad_member("x.txt", ok, 16, 0, "not a .npy");
    /* header length pointing past the end */
    expect_bad_member("x.npy", ok, 0, 60, "runs past the end");

    /* bad magic */
    unsigned char junk[32] = "NOTNUMPY-------------------";
    size_t jn = sizeof junk;
    const char *names[1] = {"j.npy"};
    unsigned char *datas[1] = {junk};
    make_zip(path_in("magic.npz"), names, datas, &jn, 1, 0);
    assert_int_equal(kk_npz_read(path_in("magic.npz"), &t), KOKORO_ERR_FORMAT);
    assert_non_null(strstr(kokoro_last_error(), "bad magic"));
}

static void test_write_errors(void **state)
{
    (void)state;
    kk_table t;
    kk_table_init(&t);
    assert_int_equal(kk_table_add(&t, "a", KK_F32, 1, (int64_t[]){1}, calloc(1, 4)), KOKORO_OK);
    assert_int_equal(kk_npz_write("/nonexistent-dir/x.npz", &t), KOKORO_ERR_IO);
    assert_non_null(strstr(kokoro_last_error(), "/nonexistent-dir/x.npz"));
    assert_int_equal(access("/nonexistent-dir/x.npz.tmp", F_OK) == 0, 0);
    kk_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_file),  cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_deflate_fortran_bigendian), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests_name("npz", tests, setup, teardown);
}
