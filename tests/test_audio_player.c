/* Playback: the ring buffer between producer and PortAudio callback (order,
 * wrap-around, blocking when full, close), and a clear error when there is
 * no output device (as on CI machines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "audio/ring.h"
#include "audio_testutil.h"

static void test_ring_basics(void **state)
{
    (void)state;
    kk_ring r;
    assert_int_equal(kk_ring_init(&r, 1500), 0);
    assert_int_equal(r.cap, 2048); /* rounded up to a power of two */
    float in[3000], out[3000];
    for (int i = 0; i < 3000; i++) in[i] = (float)i;
    /* fills to capacity, not beyond */
    assert_int_equal(kk_ring_write_some(&r, in, 3000), 2048);
    assert_int_equal(kk_ring_used(&r), 2048);
    assert_int_equal(kk_ring_write_some(&r, in, 10), 0);
    assert_int_equal(kk_ring_read(&r, out, 1000), 1000);
    for (int i = 0; i < 1000; i++) assert_true(out[i] == (float)i);
    /* wraps around the end of the buffer */
    assert_int_equal(kk_ring_write_some(&r, in + 2048, 952), 952);
    assert_int_equal(kk_ring_read(&r, out, 3000), 2000);
    for (int i = 0; i < 2000; i++) assert_true(out[i] == (float)(1000 + i));
    assert_int_equal(kk_ring_used(&r), 0);
    assert_int_equal(kk_ring_read(&r, out, 10), 0);
    kk_ring_free(&r);
}

typedef struct {
    kk_ring *r;
    size_t total;
    int ok;
    size_t max_used;
} consumer_arg;

/* Reads like an audio callback: fixed periods at a steady pace. */
static void *consumer(void *p)
{
    consumer_arg *a = p;
    float buf[256];
    size_t next = 0;
    a->ok = 1;
    while (next < a->total) {
        size_t used = kk_ring_used(a->r);
        if (used > a->max_used) a->max_used = used;
        size_t k = kk_ring_read(a->r, buf, 1 + next % 256);
        for (size_t i = 0; i < k; i++)
            if (buf[i] != (float)((next + i) % 100000)) a->ok = 0;
        next += k;
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_ring_producer_blocks_and_keeps_order(void **state)
{
    (void)state;
    kk_ring r;
    assert_int_equal(kk_ring_init(&r, 1024), 0);
    consumer_arg a = {&r, 200000, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, consumer, &a), 0);
    float chunk[5000];
    size_t sent = 0;
    while (sent < a.total) {
        size_t k = a.total - sent < 5000 ? a.total - sent : 5000;
        for (size_t i = 0; i < k; i++) chunk[i] = (float)((sent + i) % 100000);
        /* chunks much larger than the ring: the producer has to wait */
        assert_int_equal(kk_ring_write(&r, chunk, k), k);
        sent += k;
    }
    pthread_join(t, NULL);
    assert_true(a.ok);
    assert_true(a.max_used <= 1024);
    kk_ring_free(&r);
}

static void *closer(void *p)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kk_ring_close(p);
    return NULL;
}

static void test_ring_close_unblocks(void **state)
{
    (void)state;
    kk_ring r;
    assert_int_equal(kk_ring_init(&r, 1024), 0);
    float x[4096] = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, closer, &r), 0);
    /* nobody reads: the write stops when the ring is closed, with what fit */
    assert_int_equal(kk_ring_write(&r, x, 4096), 1024);
    pthread_join(t, NULL);
    kk_ring_free(&r);
}

static void test_player_without_device(void **state)
{
    (void)state;
    kokoro_player *p = NULL;
    assert_int_equal(kokoro_player_open(-5, &p), KOKORO_ERR_INVALID_ARG);
    assert_int_equal(kokoro_player_open(0, NULL), KOKORO_ERR_INVALID_ARG);
    /* whatever ALSA/JACK think of the missing card stays off stderr */
    fflush(stderr);
    char errpath[] = "/tmp/kokoro-player-stderr-XXXXXX";
    int efd = mkstemp(errpath), saved = dup(2);
    assert_true(efd >= 0 && saved >= 0);
    dup2(efd, 2);
    kokoro_status st = kokoro_player_open(200, &p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t noise = lseek(efd, 0, SEEK_END);
    close(efd);
    unlink(errpath);
    if (st == KOKORO_OK) {
        /* a machine with a sound card: play 50 ms of silence gaplessly */
        float z[1200] = {0};
        assert_int_equal(kokoro_player_write(p, z, 1200), KOKORO_OK);
        assert_int_equal(kokoro_player_close(p), KOKORO_OK);
        return;
    }
    fprintf(stderr, "player: %s\n", kokoro_last_error());
    assert_int_equal(st, KOKORO_ERR_IO);
    assert_null(p);
    assert_non_null(strstr(kokoro_last_error(), "audio playback: "));
    assert_int_equal(noise, 0);
    /* twice in a row: PortAudio is set up and torn down cleanly */
    assert_int_equal(kokoro_player_open(200, &p), KOKORO_ERR_IO);
    kokoro_player_abort(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_basics),
        cmocka_unit_test(test_ring_producer_blocks_and_keeps_order),
        cmocka_unit_test(test_ring_close_unblocks),
        cmocka_unit_test(test_player_without_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
