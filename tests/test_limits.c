/* Limits on hostile files, each refused with a clear message before anything
 * large is allocated: zip bombs in checkpoints and .npz, enormous shapes in
 * small files, pickles nested or memoised beyond the machine's limits, views
 * that would expand a tiny storage, and the regressions the fuzzers found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zip.h>

#include "core/error.h"
#include "io/npz.h"
#include "io/torch.h"
#include "kokoro.h"
#include "torchwrite.h"

static char dir[] = "/tmp/kokoro-limits-test-XXXXXX";

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

static void expect_error(kokoro_status st, const char *needle)
{
    printf("  -> %s\n", kokoro_last_error());
    assert_int_not_equal(st, KOKORO_OK);
    assert_non_null(strstr(kokoro_last_error(), needle));
}

/* A zip of the given members; deflated ones at the best ratio zlib has. */
static void write_zip(const char *path, const char **names, const void **datas, const size_t *sizes,
                      const int *deflate, int n)
{
    int err;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(z);
    for (int i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, datas[i], sizes[i], 0);
        assert_non_null(s);
        zip_int64_t idx = zip_file_add(z, names[i], s, 0);
        assert_true(idx >= 0);
        assert_int_equal(zip_set_file_compression(z, (zip_uint64_t)idx, deflate[i] ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                                  deflate[i] ? 9 : 0),
                         0);
    }
    assert_int_equal(zip_close(z), 0);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*size);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

/* torch.save's pickle of one float32 tensor: storage "0" of numel elements,
 * viewed with the given offset, shape and stride (ndim <= 2). */
static void tensor_pickle(kt_pk *b, int64_t numel, int64_t offset, int ndim, const int64_t *shape,
                          const int64_t *stride)
{
    kt_pk_op(b, 0x80), kt_pk_op(b, 2);
    kt_pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    kt_pk_op(b, '('), kt_pk_op(b, '(');
    kt_pk_str(b, "storage"), kt_pk_global(b, "torch", "FloatStorage"), kt_pk_str(b, "0"), kt_pk_str(b, "cpu");
    kt_pk_int(b, numel);
    kt_pk_op(b, 't'), kt_pk_op(b, 'Q'), kt_pk_int(b, offset);
    kt_pk_op(b, '(');
    for (int i = 0; i < ndim; i++) kt_pk_int(b, shape[i]);
    kt_pk_op(b, 't'), kt_pk_op(b, '(');
    for (int i = 0; i < ndim; i++) kt_pk_int(b, stride[i]);
    kt_pk_op(b, 't'), kt_pk_op(b, 0x89), kt_pk_op(b, '}'), kt_pk_op(b, 't');
    kt_pk_op(b, 'R'), kt_pk_op(b, '.');
}

typedef struct mem_storage {
    const unsigned char *data;
    size_t size;
} mem_storage;

static kokoro_status mem_fn(void *ctx, const char *key, kk_dtype dtype, int64_t numel, const unsigned char **data,
                            size_t *size)
{
    (void)key, (void)dtype, (void)numel;
    const mem_storage *m = ctx;
    *data = m->data;
    *size = m->size;
    return KOKORO_OK;
}

static kokoro_status load_pickle(kt_pk *b, size_t storage_bytes)
{
    static const float store[16];
    mem_storage m = {(const unsigned char *)store, storage_bytes};
    kk_table t;
    kokoro_status st = kk_pickle_load(b->p, b->n, "test.pkl", mem_fn, &m, &t);
    if (st == KOKORO_OK) kk_table_free(&t);
    free(b->p);
    memset(b, 0, sizeof *b);
    return st;
}

#define BOMB_BYTES ((size_t)32 << 20) /* 32 MiB of zeros deflate to ~32 KiB: over 1000-fold */

static void test_torch_zip_bomb(void **state)
{
    (void)state;
    unsigned char *zeros = calloc(1, BOMB_BYTES);
    assert_non_null(zeros);
    kt_pk b = {0};
    int64_t numel = (int64_t)(BOMB_BYTES / 4), one = 1;
    tensor_pickle(&b, numel, 0, 1, &numel, &one);
    const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/version"};
    const void *datas[] = {b.p, zeros, "3\n"};
    size_t sizes[] = {b.n, BOMB_BYTES, 2};
    int deflate[] = {0, 1, 0};
    write_zip(in_dir("bomb.pth"), names, datas, sizes, deflate, 3);
    kk_table t;
    expect_error(kk_torch_read(in_dir("bomb.pth"), &t), "zip bomb");
    assert_non_null(strstr(kokoro_last_error(), "archive/data/0"));
    assert_int_equal(t.count, 0);
    /* the same from memory */
    size_t size;
    unsigned char *img = read_all(in_dir("bomb.pth"), &size);
    assert_true(size < BOMB_BYTES / 500);
    expect_error(kk_torch_read_mem(img, size, "bomb-in-memory.pth", &t), "zip bomb");
    free(img);

    /* stored, it is a genuine (if large) checkpoint and loads */
    deflate[1] = 0;
    write_zip(in_dir("big.pth"), names, datas, sizes, deflate, 3);
    assert_int_equal(kk_torch_read(in_dir("big.pth"), &t), KOKORO_OK);
    assert_int_equal(t.count, 1);
    assert_int_equal(t.items[0].shape[0], numel);
    kk_table_free(&t);

    /* a data.pkl that is itself a bomb: padding after STOP */
    size_t pn = BOMB_BYTES;
    unsigned char *pk = calloc(1, pn);
    assert_non_null(pk);
    memcpy(pk, b.p, b.n);
    datas[0] = pk, sizes[0] = pn, deflate[0] = 1;
    write_zip(in_dir("pkl-bomb.pth"), names, datas, sizes, deflate, 3);
    expect_error(kk_torch_read(in_dir("pkl-bomb.pth"), &t), "data.pkl declares");
    free(pk);
    free(b.p);
    free(zeros);

    /* headers claiming 3 GiB for a storage of 16 (stored) or 0 (deflated) bytes */
    static const char *const liars[] = {"stored-size-lie.pth", "zero-compressed-3gib.pth"};
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/../fuzz/corpus/torch/%s", KOKORO_TEST_DATA, liars[i]);
        expect_error(kk_torch_read(path, &t), "declares 3221225472 bytes");
        assert_non_null(strstr(kokoro_last_error(), "a zip bomb?"));
    }
}

static void test_torch_declared_sizes(void **state)
{
    (void)state;
    /* a storage whose byte count overflows 64 bits: refused, not wrapped to a small number */
    kt_pk b = {0};
    int64_t shape = 4, one = 1;
    tensor_pickle(&b, INT64_C(4611686018427387904), 0, 1, &shape, &one);
    float data[4] = {1, 2, 3, 4};
    const char *names[] = {"archive/data.pkl", "archive/data/0"};
    const void *datas[] = {b.p, data};
    size_t sizes[] = {b.n, sizeof data};
    int deflate[] = {0, 0};
    write_zip(in_dir("wrap.pth"), names, datas, sizes, deflate, 2);
    kk_table t;
    expect_error(kk_torch_read(in_dir("wrap.pth"), &t), "holds 16 bytes, 4611686018427387904 elements declared");
    free(b.p);
    memset(&b, 0, sizeof b);
    /* 1 GiB declared for a 16-byte storage */
    tensor_pickle(&b, 268435456, 0, 1, &shape, &one);
    datas[0] = b.p, sizes[0] = b.n;
    write_zip(in_dir("1g.pth"), names, datas, sizes, deflate, 2);
    expect_error(kk_torch_read(in_dir("1g.pth"), &t), "holds 16 bytes, 1073741824 declared");
    free(b.p);
}

static void test_views(void **state)
{
    (void)state;
    kt_pk b = {0};
    /* stride 0 is a legal broadcast; within bounds it loads */
    int64_t shape[2] = {4, 4}, stride[2] = {0, 1};
    tensor_pickle(&b, 4, 0, 2, shape, stride);
    assert_int_equal(load_pickle(&b, 16), KOKORO_OK);
    /* an empty view loads, whatever its offset: nothing is read */
    int64_t none = 0, unit = 1;
    tensor_pickle(&b, 4, (INT64_C(1) << 61) + 12345, 1, &none, &unit);
    assert_int_equal(load_pickle(&b, 16), KOKORO_OK);
    /* a one-element storage viewed as 2^40 elements would need 4 TiB */
    int64_t huge = INT64_C(1) << 40, zero = 0;
    tensor_pickle(&b, 1, 0, 1, &huge, &zero);
    expect_error(load_pickle(&b, 4), "a view larger than 64 MiB beyond its storage");
    /* 2^62 elements of 4 bytes: the byte count itself overflows */
    huge = INT64_C(1) << 62;
    tensor_pickle(&b, 1, 0, 1, &huge, &zero);
    expect_error(load_pickle(&b, 4), "elements from a storage of 4 bytes");
}

static void test_pickle_machine_limits(void **state)
{
    (void)state;
    kt_pk b = {0};
    /* marks without end */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2);
    for (int i = 0; i < 300000; i++) kt_pk_op(&b, '(');
    kt_pk_op(&b, '.');
    expect_error(load_pickle(&b, 0), "too many MARKs");
    /* a stack of 300000 empty lists */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2);
    for (int i = 0; i < 300000; i++) kt_pk_op(&b, ']');
    kt_pk_op(&b, '.');
    expect_error(load_pickle(&b, 0), "stack deeper than the limit");
    /* a memo slot far out */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_op(&b, 'N'), kt_pk_op(&b, 'r');
    kt_pk_put(&b, "\xff\xff\xff\x7f", 4), kt_pk_op(&b, '.');
    expect_error(load_pickle(&b, 0), "memo index beyond the limit");
    /* dicts nested 1000 deep (each one the value of the one before) */
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2);
    for (int i = 0; i < 1000; i++) kt_pk_op(&b, '}'), kt_pk_str(&b, "k");
    kt_pk_op(&b, '}');
    for (int i = 0; i < 1000; i++) kt_pk_op(&b, 's');
    kt_pk_op(&b, '.');
    expect_error(load_pickle(&b, 0), "nested too deeply");
}

/* Many distinct keys in one dict: key lookups are linear, so the machine
 * stops after a bounded amount of work, long before the end of the pickle. */
static void test_pickle_big_dict(void **state)
{
    (void)state;
    kt_pk b = {0};
    kt_pk_op(&b, 0x80), kt_pk_op(&b, 2), kt_pk_op(&b, '}');
    char key[16];
    for (int i = 0; i < 200000; i++) { /* SETITEM one by one: the stack stays small */
        snprintf(key, sizeof key, "k%d", i);
        kt_pk_str(&b, key), kt_pk_op(&b, 'N'), kt_pk_op(&b, 's');
    }
    kt_pk_op(&b, '.');
    size_t total = b.n;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_error(load_pickle(&b, 0), "dicts too large: more than 2^26 key comparisons");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    const char *at = strstr(kokoro_last_error(), "pickle byte ");
    assert_non_null(at);
    size_t where = strtoul(at + 12, NULL, 10);
    printf("  refused at byte %zu of %zu after %.3f s\n", where, total, s);
    /* about 11600 keys: sqrt(2 * 2^26) */
    assert_true(where > total / 40 && where < total / 5);
}

/* An .npy member: header for shape, then payload bytes. */
static size_t npy_image(unsigned char *out, size_t cap, const char *shape, size_t payload)
{
    char dict[160];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t total = (10 + (size_t)dl + 1 + 63) / 64 * 64;
    assert_true(total + payload <= cap);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)((total - 10) & 0xff), out[9] = (unsigned char)((total - 10) >> 8);
    memcpy(out + 10, dict, (size_t)dl);
    memset(out + 10 + dl, ' ', total - 10 - (size_t)dl - 1);
    out[total - 1] = '\n';
    memset(out + total, 0, payload);
    return total + payload;
}

static void test_npy_huge_shape(void **state)
{
    (void)state;
    unsigned char img[512];
    /* 1e9 x 256 floats (1 TB) declared in a 144-byte array: refused from the header */
    size_t n = npy_image(img, sizeof img, "(1000000000, 256)", 16);
    kk_tensor t;
    expect_error(kk_npy_parse(img, n, "huge.npy", &t), "16 bytes of data where the header declares 1024000000000");
    /* the same as an .npz member */
    const char *names[] = {"huge.npy"};
    const void *datas[] = {img};
    size_t sizes[] = {n};
    int deflate[] = {0};
    write_zip(in_dir("huge.npz"), names, datas, sizes, deflate, 1);
    kk_table tab;
    expect_error(kk_npz_read(in_dir("huge.npz"), &tab), "huge.npz: member 'huge.npy'");
    assert_int_equal(tab.count, 0);
    /* shapes whose product overflows */
    n = npy_image(img, sizeof img, "(4294967296, 4294967296, 4)", 0);
    expect_error(kk_npy_parse(img, n, "wrap.npy", &t), "overflows");
}

static void test_npz_zip_bomb(void **state)
{
    (void)state;
    unsigned char *img = calloc(1, BOMB_BYTES + 128);
    assert_non_null(img);
    char shape[32];
    snprintf(shape, sizeof shape, "(%zu,)", BOMB_BYTES / 4);
    size_t n = npy_image(img, BOMB_BYTES + 128, shape, BOMB_BYTES);
    const char *names[] = {"bomb.npy"};
    const void *datas[] = {img};
    size_t sizes[] = {n};
    int deflate[] = {1};
    write_zip(in_dir("bomb.npz"), names, datas, sizes, deflate, 1);
    kk_table t;
    expect_error(kk_npz_read(in_dir("bomb.npz"), &t), "(a zip bomb?)");
    /* and through the voice loader, which reads voices-v1.0.bin as an npz */
    kokoro_voices *v;
    expect_error(kokoro_voices_load(in_dir("bomb.npz"), &v), "zip bomb");
    free(img);

    /* a header claiming 3 GiB from zero compressed bytes, in a 100-byte file */
    char path[1024];
    snprintf(path, sizeof path, "%s/../fuzz/regress/npz/zero-compressed-3gib.npz", KOKORO_TEST_DATA);
    expect_error(kk_npz_read(path, &t), "declares 3221225472 bytes from 0 compressed (a zip bomb?)");

    /* a 5 GiB (sparse) file is refused from its size, before reading it into memory */
    FILE *f = fopen(in_dir("huge-file.npz"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("PK\x03\x04", 1, 4, f), 4);
    assert_int_equal(ftruncate(fileno(f), (off_t)5 << 30), 0);
    fclose(f);
    expect_error(kk_npz_read(in_dir("huge-file.npz"), &t), "more than the 4 GiB an .npz may have");
    expect_error(kokoro_voices_load(in_dir("huge-file.npz"), &v), "more than the 4 GiB");
    unlink(in_dir("huge-file.npz"));
}

/* config.json vocab keys: exactly one code point, never empty (an empty key
 * used to be read one byte past its terminator). */
static void test_config_vocab_keys(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/kokoro-config.json", KOKORO_TEST_DATA);
    size_t n;
    unsigned char *json = read_all(path, &n);
    char *text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, json, n);
    text[n] = '\0';
    free(json);
    kokoro_config *c;
    assert_int_equal(kokoro_config_parse(text, n, "ok.json", &c), KOKORO_OK);
    kokoro_config_free(c);
    /* rename the vocab's first key ("x": or "\u...": after "vocab": {) to "" */
    char *v = strstr(text, "\"vocab\"");
    assert_non_null(v);
    char *q1 = strchr(strchr(v, '{'), '"'), *q2 = strstr(q1 + 1, "\":");
    assert_non_null(q1), assert_non_null(q2);
    memmove(q1 + 1, q2, strlen(q2) + 1);
    expect_error(kokoro_config_parse(text, strlen(text), "empty-key.json", &c), "vocab key '' is not one Unicode character");
    assert_null(c);
    free(text);
}

/* The limits refuse no genuine file: the fixtures load, from a path and from
 * memory, identically. */
static void test_genuine_files_load(void **state)
{
    (void)state;
    static const char *const files[] = {"layout-fixture.pth", "af_heart.pt"};
    for (size_t k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", KOKORO_TEST_DATA, files[k]);
        kk_table a, b;
        assert_int_equal(kk_torch_read(path, &a), KOKORO_OK);
        size_t n;
        unsigned char *img = read_all(path, &n);
        assert_int_equal(kk_torch_read_mem(img, n, files[k], &b), KOKORO_OK);
        free(img);
        assert_true(a.count > 0);
        assert_int_equal(a.count, b.count);
        for (size_t i = 0; i < a.count; i++) {
            assert_string_equal(a.items[i].name, b.items[i].name);
            assert_int_equal(a.items[i].nbytes, b.items[i].nbytes);
            assert_memory_equal(a.items[i].data, b.items[i].data, a.items[i].nbytes);
        }
        printf("  %s: %zu tensors\n", files[k], a.count);
        kk_table_free(&a);
        kk_table_free(&b);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/layout-fixture-expected.npz", KOKORO_TEST_DATA);
    kk_table t;
    assert_int_equal(kk_npz_read(path, &t), KOKORO_OK);
    assert_true(t.count > 0);
    kk_table_free(&t);
}

/* ---- a 100 MB single-line text through kokoro-tts ---- */

/* Runs kokoro-tts with argv (no shell), output to log; its exit code, and
 * its wall time and peak memory. */
static int run_tts(char *const argv[], const char *log, double *secs, long *maxrss_kb)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(KOKORO_TTS_PATH, argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* the largest of the waited-for children: this is the only big one */
    assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    *maxrss_kb = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void test_huge_single_line_text(void **state)
{
    (void)state;
    const size_t size = (size_t)100 << 20;
    /* words and sentences, but not one line break: nothing to split a chapter on */
    static const char unit[] = "The quick brown fox jumps over the lazy dog. ";
    FILE *f = fopen(in_dir("huge.txt"), "wb");
    assert_non_null(f);
    for (size_t n = 0; n < size; n += sizeof unit - 1) assert_int_equal(fwrite(unit, 1, sizeof unit - 1, f), sizeof unit - 1);
    assert_int_equal(fclose(f), 0);
    /* the phonemes alone, then a synthesis on the test weights */
    char txt[512], wav[512];
    snprintf(txt, sizeof txt, "%s", in_dir("huge.txt")); /* in_dir's buffers rotate */
    snprintf(wav, sizeof wav, "%s", in_dir("huge.wav"));
    char *print_argv[] = {"kokoro-tts", txt, "--print-phonemes", NULL};
    char *synth_argv[] = {"kokoro-tts", txt, wav, "--test-weights",
                          "--voices", KOKORO_TEST_DATA "/voices", NULL};
    char *const *argvs[] = {print_argv, synth_argv};
    for (int k = 0; k < 2; k++) {
        double secs;
        long rss_kb;
        int rc = run_tts(argvs[k], in_dir("huge.log"), &secs, &rss_kb);
        char log[4096];
        FILE *lf = fopen(in_dir("huge.log"), "r");
        assert_non_null(lf);
        log[fread(log, 1, sizeof log - 1, lf)] = 0;
        fclose(lf);
        printf("  kokoro-tts huge.txt %s -> %d in %.1f s, peak %ld MiB: %.300s\n", k ? "huge.wav --test-weights" :
               "--print-phonemes", rc, secs, rss_kb >> 10, log);
        /* refused with a message naming the limit, not killed, nothing written */
        assert_int_equal(rc, 1);
        assert_non_null(strstr(log, "at most 16777216"));
        assert_int_equal(access(wav, F_OK), -1);
        /* bounded: seconds, and a small multiple of the input (the test
         * weights on top for the synthesis; ASan's shadow on top of that) */
        assert_true(secs < 120.0);
        assert_true(rss_kb < (k ? 2048L : 1024L) * 1024); /* measured 134 / 640 MiB, ASan 302 / 939 */
    }
    unlink(txt);
}

/* ---- the fuzzers' crash inputs, replayed through the same entry points ---- */

static kokoro_status zero_storage(void *ctx, const char *key, kk_dtype dtype, int64_t numel,
                                  const unsigned char **data, size_t *size)
{
    (void)ctx, (void)key;
    static const unsigned char zeros[1 << 16];
    uint64_t bytes = (uint64_t)numel * kk_dtype_size(dtype);
    if (numel < 0 || (uint64_t)numel > sizeof zeros || bytes > sizeof zeros)
        return kk_error(KOKORO_ERR_FORMAT, "storage '%s' too large to replay", key);
    *data = zeros;
    *size = (size_t)bytes;
    return KOKORO_OK;
}

static kokoro_status replay(const char *target, const unsigned char *d, size_t n)
{
    kk_table t;
    kokoro_status st = KOKORO_ERR_INVALID_ARG;
    if (strcmp(target, "pickle") == 0) {
        if ((st = kk_pickle_load(d, n, "regress.pkl", zero_storage, NULL, &t)) == KOKORO_OK) kk_table_free(&t);
    } else if (strcmp(target, "torch") == 0) {
        if ((st = kk_torch_read_mem(d, n, "regress.pth", &t)) == KOKORO_OK) kk_table_free(&t);
    } else if (strcmp(target, "npz") == 0) {
        if ((st = kk_npz_read_mem(d, n, "regress.npz", &t)) == KOKORO_OK) kk_table_free(&t);
    } else if (strcmp(target, "npy") == 0) {
        kk_tensor x;
        if ((st = kk_npy_parse(d, n, "regress.npy", &x)) == KOKORO_OK) free(x.data);
    } else if (strcmp(target, "config") == 0) {
        kokoro_config *c;
        if ((st = kokoro_config_parse((const char *)d, n, "regress.json", &c)) == KOKORO_OK) kokoro_config_free(c);
    } else if (strcmp(target, "voices") == 0) {
        FILE *f = fopen(in_dir("regress.bin"), "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(d, 1, n, f), n);
        fclose(f);
        kokoro_voices *v;
        if ((st = kokoro_voices_load(in_dir("regress.bin"), &v)) == KOKORO_OK) kokoro_voices_free(v);
    } else {
        fail_msg("tests/fuzz/regress/%s: no replay for this target here", target);
    }
    return st;
}

static void test_fuzz_regressions(void **state)
{
    (void)state;
    static const char *const targets[] = {"pickle", "torch", "npz", "npy", "config", "voices"};
    int replayed = 0;
    for (size_t k = 0; k < sizeof targets / sizeof *targets; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/../fuzz/regress/%s", KOKORO_TEST_DATA, targets[k]);
        DIR *d = opendir(path);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char file[1400];
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            size_t n;
            unsigned char *data = read_all(file, &n);
            kokoro_status st = replay(targets[k], data, n);
            /* each one was a crash; now it must be a clean answer with a message */
            printf("  %s/%s: %s\n", targets[k], e->d_name, st == KOKORO_OK ? "loads" : kokoro_last_error());
            if (st != KOKORO_OK) assert_true(strlen(kokoro_last_error()) > 0);
            free(data);
            replayed++;
        }
        closedir(d);
    }
    assert_true(replayed >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_zip_bomb),     cmocka_unit_test(test_torch_declared_sizes),
        cmocka_unit_test(test_views),              cmocka_unit_test(test_pickle_machine_limits),
        cmocka_unit_test(test_pickle_big_dict),    cmocka_unit_test(test_npy_huge_shape),
        cmocka_unit_test(test_npz_zip_bomb),       cmocka_unit_test(test_genuine_files_load),
        cmocka_unit_test(test_config_vocab_keys),  cmocka_unit_test(test_fuzz_regressions),
        cmocka_unit_test(test_huge_single_line_text),
    };
    return cmocka_run_group_tests_name("limits", tests, setup, teardown);
}
