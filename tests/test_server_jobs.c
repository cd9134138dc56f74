/* kokoro-server job queue: uploads, chapters, submit, progress, ETA, cancel
 * within one chunk, resume from the last finished chunk, kill -9 and restart
 * (the job continues by itself and its audio equals an uninterrupted run),
 * two servers on one queue, and every error answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "audio_testutil.h"
#include "server_client.h"

/* two Markdown chapters; the servers cut books into chunks of about 10
 * phonemes (--chunk-tokens 10), so this short book has several */
static const char BOOK[] = "# One\n\nHello there.\n\nIt is me.\n\n# Two\n\nThis is a test.\n\nThe end.\n";
static long total;    /* its chunks */

static test_server srv;
static char tmpdir[256], book[300], data1[300], data2[300];
static char *ref;     /* the uninterrupted run's download */
static size_t ref_len;

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kk-server-jobs-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(book, sizeof book, "%s/my book.md", tmpdir);
    snprintf(data1, sizeof data1, "%s/data1", tmpdir);
    snprintf(data2, sizeof data2, "%s/data2", tmpdir);
    if (write_text(book, BOOK) != 0) return -1;
    const char *a[] = {"--lease", "2", "--max-upload", "200000", "--max-body", "8192", "--chunk-tokens", "10", NULL};
    return server_start(&srv, data1, a);
}

static int teardown(void **state)
{
    (void)state;
    int rc = server_stop(&srv);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return -1;
    free(ref);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static cJSON *get_json(const test_server *s, const char *path, long want)
{
    http_resp r;
    long code = http_get(s, path, &r);
    if (code != want) fprintf(stderr, "GET %s: %ld %s\n", path, code, r.body);
    assert_int_equal(code, want);
    cJSON *o = cJSON_Parse(r.body);
    assert_non_null(o);
    http_free(&r);
    return o;
}

static long num(cJSON *o, const char *k) { return (long)cJSON_GetObjectItem(o, k)->valuedouble; }
static const char *str(cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valuestring; }

/* Uploads the book; returns its id (static buffer). */
static const char *upload(const test_server *s)
{
    static char id[64];
    http_resp r;
    assert_int_equal(http_upload(s, "/v1/files", book, NULL, &r), 201);
    cJSON *o = cJSON_Parse(r.body);
    snprintf(id, sizeof id, "%s", str(o, "id"));
    assert_string_equal(str(o, "filename"), "my_book.md");
    cJSON *ch = cJSON_GetObjectItem(o, "chapters");
    assert_int_equal(cJSON_GetArraySize(ch), 2);
    assert_string_equal(str(cJSON_GetArrayItem(ch, 0), "title"), "One");
    assert_int_equal(num(cJSON_GetArrayItem(ch, 0), "words"), 6); /* the heading is read too */
    assert_string_equal(str(cJSON_GetArrayItem(ch, 1), "title"), "Two");
    assert_int_equal(num(cJSON_GetArrayItem(ch, 1), "words"), 7);
    cJSON_Delete(o);
    http_free(&r);
    return id;
}

static void submit(const test_server *s, const char *json, char id[64])
{
    http_resp r;
    long code = http_post(s, "/v1/jobs", json, &r);
    if (code != 201) fprintf(stderr, "POST /v1/jobs: %ld %s\n", code, r.body);
    assert_int_equal(code, 201);
    cJSON *o = cJSON_Parse(r.body);
    snprintf(id, 64, "%s", str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);
}

/* Polls a job until cond(job) holds; returns the job (caller frees). */
static cJSON *wait_job(const test_server *s, const char *id, const char *state, long min_done, double timeout)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    double t0 = now_mono();
    for (;;) {
        cJSON *o = get_json(s, path, 200);
        int ok = state ? !strcmp(str(o, "state"), state) : num(o, "done_chunks") >= min_done;
        if (ok) return o;
        if (!strcmp(str(o, "state"), "failed")) {
            fprintf(stderr, "job failed: %s\n", str(o, "error"));
            fail();
        }
        cJSON_Delete(o);
        if (now_mono() - t0 > timeout) {
            fprintf(stderr, "timeout waiting for job %s\n", id);
            fail();
        }
        sleep_s(0.02);
    }
}

static void download(const test_server *s, const char *id, long want, http_resp *r)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/download", id);
    assert_int_equal(http_get(s, path, r), want);
    if (want == 200) assert_string_equal(r->ctype, "audio/mp4"); /* an m4b is MPEG-4 audio */
}

/* A downloaded audiobook: AAC in MPEG-4 with its chapters and tags. */
static void check_m4b(const http_resp *r, const char *title, const char *artist, int chapters, const char *first)
{
    char path[400];
    snprintf(path, sizeof path, "%s/download.m4b", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(r->body, 1, r->len, f), r->len);
    fclose(f);
    cJSON *j = at_ffprobe(path);
    assert_non_null(j);
    cJSON *st = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "streams"), 0);
    assert_string_equal(at_json_str(st, "codec_name"), "aac");
    cJSON *fmt = cJSON_GetObjectItem(j, "format");
    assert_non_null(strstr(at_json_str(fmt, "format_name"), "mp4"));
    assert_true(at_json_num_str(fmt, "duration") > 0.5);
    cJSON *ch = cJSON_GetObjectItem(j, "chapters");
    assert_int_equal(cJSON_GetArraySize(ch), chapters);
    cJSON *tags = cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "tags");
    assert_string_equal(at_json_str(tags, "title"), first);
    tags = cJSON_GetObjectItem(fmt, "tags");
    if (title) assert_string_equal(at_json_str(tags, "title"), title);
    if (artist) assert_string_equal(at_json_str(tags, "artist"), artist);
    cJSON_Delete(j);
    size_t n = 0;
    float *x = at_read_ffmpeg(path, &n);
    assert_non_null(x);
    assert_true(at_rms(x, 0, n) > 1e-4);
    free(x);
    unlink(path);
}

static int log_count(cJSON *job, const char *needle)
{
    int n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(job, "log")) if (strstr(str(e, "message"), needle)) n++;
    return n;
}

static void test_job_to_the_end(void **state)
{
    (void)state;
    const char *fid = upload(&srv);
    char json[512], id[64];
    snprintf(json, sizeof json, "{\"file_id\":\"%s\",\"voice\":\"am_adam\",\"title\":\"Same Title\",\"author\":\"A\"}", fid);
    submit(&srv, json, id);
    cJSON *j = wait_job(&srv, id, "completed", 0, 600);
    total = num(j, "total_chunks");
    fprintf(stderr, "the book has %ld chunks\n", total);
    assert_true(total >= 6);
    assert_int_equal(num(j, "done_chunks"), total);
    assert_int_equal(num(j, "percent"), 100);
    assert_int_equal(num(j, "current_chapter"), 1);
    assert_string_equal(str(j, "current_chapter_title"), "Two");
    assert_string_equal(str(j, "output_name"), "Same_Title.m4b");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "eta_seconds")));
    assert_true(cJSON_GetObjectItem(j, "audio_seconds")->valuedouble > 0);
    assert_int_equal(log_count(j, "Completed"), 1);
    assert_int_equal(log_count(j, "Started"), 1);
    cJSON_Delete(j);
    char work[512];
    struct stat sb;
    snprintf(work, sizeof work, "%s/work/%s", data1, id);
    assert_int_not_equal(stat(work, &sb), 0); /* finished chunks removed once the book is written */
    http_resp r;
    download(&srv, id, 200, &r);
    check_m4b(&r, "Same Title", "A", 2, "One");
    char *titled = r.body;
    size_t titled_len = r.len;
    r.body = NULL;
    http_free(&r);

    /* the same title again: its own file, the first one untouched */
    char id2[64];
    submit(&srv, json, id2);
    j = wait_job(&srv, id2, "completed", 0, 600);
    assert_string_equal(str(j, "output_name"), "Same_Title.m4b");
    cJSON_Delete(j);
    download(&srv, id2, 200, &r);
    assert_int_equal(r.len, titled_len);
    assert_memory_equal(r.body, titled, titled_len); /* same input, same audio */
    http_free(&r);
    download(&srv, id, 200, &r);
    assert_int_equal(r.len, titled_len);
    http_free(&r);
    free(titled);

    /* the reference for the interrupted runs below: no metadata given */
    snprintf(json, sizeof json, "{\"file_id\":\"%s\",\"voice\":\"am_adam\"}", fid);
    submit(&srv, json, id2);
    cJSON_Delete(wait_job(&srv, id2, "completed", 0, 600));
    download(&srv, id2, 200, &r);
    check_m4b(&r, NULL, NULL, 2, "One");
    ref = r.body;
    ref_len = r.len;
    r.body = NULL;
    http_free(&r);

    /* chapter selection: only the second chapter */
    snprintf(json, sizeof json, "{\"file_id\":\"%s\",\"voice\":\"am_adam\",\"chapters\":[1]}", fid);
    submit(&srv, json, id2);
    j = wait_job(&srv, id2, "completed", 0, 600);
    assert_true(num(j, "total_chunks") < total);
    assert_true(num(j, "total_chunks") >= 2);
    assert_string_equal(str(j, "output_name"), "my_book.m4b");
    cJSON_Delete(j);
    download(&srv, id2, 200, &r);
    assert_true(r.len < ref_len);
    check_m4b(&r, NULL, NULL, 1, "Two");
    http_free(&r);

    /* listed, newest first */
    j = get_json(&srv, "/v1/jobs", 200);
    cJSON *jobs = cJSON_GetObjectItem(j, "jobs");
    assert_true(cJSON_GetArraySize(jobs) >= 3);
    assert_string_equal(str(cJSON_GetArrayItem(jobs, 0), "id"), id2);
    cJSON_Delete(j);
}

static void test_job_multipart_cancel_resume(void **state)
{
    (void)state;
    assert_non_null(ref);
    const char *fields[] = {"voice", "am_adam", "speed", "1.0", "chapters", "0,1", NULL};
    http_resp r;
    assert_int_equal(http_upload(&srv, "/v1/jobs", book, fields, &r), 201);
    cJSON *o = cJSON_Parse(r.body);
    char id[64];
    snprintf(id, sizeof id, "%s", str(o, "id"));
    assert_int_equal(num(o, "total_chunks"), total);
    cJSON_Delete(o);
    http_free(&r);

    double t0 = now_mono();
    cJSON *j = wait_job(&srv, id, NULL, 1, 600);
    double chunk_s = now_mono() - t0; /* an upper bound of one chunk's time */
    assert_string_equal(str(j, "state"), "running");
    assert_true(num(j, "done_chunks") < total);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "eta_seconds"))); /* known after the first chunk */
    assert_true(cJSON_GetObjectItem(j, "percent")->valuedouble > 0);
    cJSON_Delete(j);

    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    assert_int_equal(http_post(&srv, path, "", &r), 200);
    o = cJSON_Parse(r.body);
    assert_string_equal(str(o, "state"), "cancelled");
    long at_cancel = num(o, "done_chunks");
    cJSON_Delete(o);
    http_free(&r);
    /* give it the time of three more chunks: at most the one in flight may land */
    sleep_s(3 * chunk_s);
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    j = get_json(&srv, path, 200);
    assert_string_equal(str(j, "state"), "cancelled");
    long after = num(j, "done_chunks");
    fprintf(stderr, "cancel: %ld chunks done at cancel, %ld after %.2f s\n", at_cancel, after, 3 * chunk_s);
    assert_true(after <= at_cancel + 1);
    assert_true(after < total);
    assert_int_equal(log_count(j, "Cancelled by user"), 1);
    cJSON_Delete(j);
    char part[512];
    struct stat sb;
    snprintf(part, sizeof part, "%s/work/%s/chunk_000000.f32", data1, id);
    assert_int_equal(stat(part, &sb), 0); /* the finished chunks wait for the resume */

    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    http_post(&srv, path, "", &r);
    assert_int_equal(r.status, 409);
    http_free(&r);
    download(&srv, id, 409, &r);
    http_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/resume", id);
    assert_int_equal(http_post(&srv, path, "", &r), 200);
    http_free(&r);
    j = wait_job(&srv, id, "completed", 0, 600);
    assert_int_equal(log_count(j, "Resumed"), 1);
    /* the second run started where the first stopped, not from zero */
    char at[64];
    snprintf(at, sizeof at, "at chunk %ld of %ld", after, total);
    assert_int_equal(log_count(j, at), 1);
    cJSON_Delete(j);
    download(&srv, id, 200, &r);
    assert_int_equal(r.len, ref_len);
    assert_memory_equal(r.body, ref, ref_len);
    http_free(&r);
    http_post(&srv, path, "", &r); /* resume a completed job */
    assert_int_equal(r.status, 409);
    http_free(&r);
}

static void test_job_kill9_and_restart(void **state)
{
    (void)state;
    assert_non_null(ref);
    test_server a, b, c;
    const char *args[] = {"--lease", "2", "--chunk-tokens", "10", NULL};
    assert_int_equal(server_start(&a, data2, args), 0);
    const char *fid = upload(&a);
    char json[256], id[64];
    snprintf(json, sizeof json, "{\"file_id\":\"%s\",\"voice\":\"am_adam\"}", fid);
    submit(&a, json, id);
    cJSON *j = wait_job(&a, id, NULL, 2, 600);
    long before = num(j, "done_chunks");
    cJSON_Delete(j);
    assert_true(before < total);
    server_kill9(&a);

    /* a new server on the same queue picks the job up by itself once the lease runs out */
    assert_int_equal(server_start(&b, data2, args), 0);
    j = wait_job(&b, id, "completed", 0, 600);
    assert_int_equal(log_count(j, "Reclaimed (lease expired)"), 1);
    cJSON *e;
    long resumed_at = -1;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "log")) {
        const char *m = strstr(str(e, "message"), "Reclaimed");
        if (m) resumed_at = strtol(strstr(m, "at chunk ") + 9, NULL, 10);
    }
    fprintf(stderr, "kill -9 after %ld chunks; the restart continued at chunk %ld\n", before, resumed_at);
    assert_true(resumed_at >= before); /* at most the chunk in flight was lost */
    cJSON_Delete(j);
    http_resp r;
    download(&b, id, 200, &r);
    assert_int_equal(r.len, ref_len);
    assert_memory_equal(r.body, ref, ref_len); /* identical to the uninterrupted run */
    http_free(&r);

    /* a second server on the same queue file: every job runs exactly once */
    assert_int_equal(server_start(&c, data2, args), 0);
    char ids[3][64];
    for (int i = 0; i < 3; i++) submit(i % 2 ? &c : &b, json, ids[i]);
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "/v1/jobs/%s", ids[i]);
        cJSON_Delete(wait_job(i % 2 ? &b : &c, ids[i], "completed", 0, 600));
        j = get_json(&b, path, 200);
        assert_int_equal(log_count(j, "Started") + log_count(j, "Reclaimed"), 1);
        cJSON_Delete(j);
        download(&c, ids[i], 200, &r);
        assert_int_equal(r.len, ref_len);
        assert_memory_equal(r.body, ref, ref_len);
        http_free(&r);
    }
    assert_int_equal(server_stop(&c), 0);

    /* SIGTERM mid-job: a clean exit that hands the job back to the queue at once */
    submit(&b, json, id);
    cJSON_Delete(wait_job(&b, id, NULL, 1, 600));
    assert_int_equal(server_stop(&b), 0);
    assert_int_equal(server_start(&c, data2, args), 0);
    j = wait_job(&c, id, "completed", 0, 600);
    assert_int_equal(log_count(j, "Released: server stopping"), 1);
    assert_int_equal(log_count(j, "Reclaimed"), 0); /* queued again, not left to its lease */
    cJSON_Delete(j);
    download(&c, id, 200, &r);
    assert_int_equal(r.len, ref_len);
    assert_memory_equal(r.body, ref, ref_len);
    http_free(&r);
    assert_int_equal(server_stop(&c), 0);
}

static void test_job_errors(void **state)
{
    (void)state;
    http_resp r;
    char json[512], path[160];
    const char *fid = upload(&srv);
    char fidc[64];
    snprintf(fidc, sizeof fidc, "%s", fid);

    snprintf(path, sizeof path, "/v1/files/%s/chapters", fidc);
    cJSON *o = get_json(&srv, path, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "chapters")), 2);
    cJSON_Delete(o);
    http_get(&srv, "/v1/files/0123456789abcdef0123456789abcdef/chapters", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_get(&srv, "/v1/files/..%2f..%2fqueue.db/chapters", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);

    /* too large an upload, an upload without a file */
    char big[300];
    snprintf(big, sizeof big, "%s/big.txt", tmpdir);
    FILE *f = fopen(big, "wb");
    for (int i = 0; i < 210000; i++) fputc('a', f);
    fclose(f);
    assert_int_equal(http_upload(&srv, "/v1/files", big, NULL, &r), 413);
    http_free(&r);
    const char *only_fields[] = {"voice", "af_heart", NULL};
    assert_int_equal(http_upload(&srv, "/v1/files", NULL, only_fields, &r), 400);
    http_free(&r);

    /* a broken document: stored, but no chapters, no job */
    char epub[300];
    snprintf(epub, sizeof epub, "%s/book.epub", tmpdir);
    write_text(epub, "PK\x03\x04 not really");
    assert_int_equal(http_upload(&srv, "/v1/files", epub, NULL, &r), 201);
    o = cJSON_Parse(r.body);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "chapters")));
    assert_non_null(strstr(str(o, "chapters_error"), "EPUB"));
    snprintf(json, sizeof json, "{\"file_id\":\"%s\"}", str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);
    assert_int_equal(http_post(&srv, "/v1/jobs", json, &r), 415);
    http_free(&r);

    /* a text file with invalid UTF-8 */
    char badtxt[300];
    snprintf(badtxt, sizeof badtxt, "%s/bad.txt", tmpdir);
    write_text(badtxt, "hə.\n\xc3\x28\n");
    assert_int_equal(http_upload(&srv, "/v1/files", badtxt, NULL, &r), 201);
    o = cJSON_Parse(r.body);
    assert_non_null(strstr(str(o, "chapters_error"), "invalid UTF-8"));
    snprintf(json, sizeof json, "{\"file_id\":\"%s\"}", str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);
    assert_int_equal(http_post(&srv, "/v1/jobs", json, &r), 415);
    http_free(&r);

    const struct { const char *body; long code; } cases[] = {
        {"not json", 400},
        {"{\"voice\":\"af_heart\"}", 400},
        {"{\"file_id\":\"0123456789abcdef0123456789abcdef\"}", 404},
        {"{\"file_id\":\"../../queue.db\"}", 404},
        {NULL, 0},
    };
    for (int i = 0; cases[i].body; i++) {
        http_post(&srv, "/v1/jobs", cases[i].body, &r);
        assert_int_equal(r.status, cases[i].code);
        http_free(&r);
    }
    const struct { const char *extra; long code; } opts[] = {
        {"\"speed\":3", 400},        {"\"speed\":\"x\"", 400},     {"\"voice\":\"nobody\"", 400},
        {"\"chapters\":[7]", 400},   {"\"chapters\":[-1]", 400},   {"\"chapters\":[]", 400},
        {"\"chapters\":\"1\"", 400}, {"\"cover_file_id\":\"0123456789abcdef0123456789abcdef\"", 404},
        {NULL, 0},
    };
    for (int i = 0; opts[i].extra; i++) {
        snprintf(json, sizeof json, "{\"file_id\":\"%s\",%s}", fidc, opts[i].extra);
        http_post(&srv, "/v1/jobs", json, &r);
        if (r.status != opts[i].code) fprintf(stderr, "%s -> %ld %s\n", json, r.status, r.body);
        assert_int_equal(r.status, opts[i].code);
        http_free(&r);
    }
    http_get(&srv, "/v1/jobs/0123456789abcdef0123456789abcdef", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_get(&srv, "/v1/jobs/nope", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_post(&srv, "/v1/jobs/0123456789abcdef0123456789abcdef/cancel", "", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_post(&srv, "/v1/jobs/0123456789abcdef0123456789abcdef/resume", "", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_get(&srv, "/v1/jobs/0123456789abcdef0123456789abcdef/download", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
}

/* An EPUB from the corpus: its chapter list with word counts, then one short
 * chapter at speed 2 into an m4b with the book's metadata and a chapter mark. */
static void test_job_epub(void **state)
{
    (void)state;
    http_resp r;
    assert_int_equal(http_upload(&srv, "/v1/files", KOKORO_TEST_DATA "/corpus/epub/wasteland.epub", NULL, &r), 201);
    cJSON *o = cJSON_Parse(r.body);
    assert_non_null(o);
    cJSON *ch = cJSON_GetObjectItem(o, "chapters");
    if (!cJSON_IsArray(ch)) fprintf(stderr, "upload: %s\n", r.body);
    assert_int_equal(cJSON_GetArraySize(ch), 6);
    assert_string_equal(str(cJSON_GetArrayItem(ch, 3), "title"), "IV. DEATH BY WATER");
    assert_int_equal(num(cJSON_GetArrayItem(ch, 3), "words"), 74);
    assert_string_equal(str(o, "title"), "The Waste Land"); /* prefills the UI's metadata */
    char json[256], id[64];
    snprintf(json, sizeof json, "{\"file_id\":\"%s\",\"voice\":\"af_heart\",\"speed\":2,\"chapters\":[3]}",
             str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);
    submit(&srv, json, id);
    cJSON *j = wait_job(&srv, id, "completed", 0, 900);
    assert_string_equal(str(j, "output_name"), "wasteland.m4b");
    assert_string_equal(str(j, "current_chapter_title"), "IV. DEATH BY WATER");
    /* 74 words at speed 2: several seconds of audio */
    assert_true(cJSON_GetObjectItem(j, "audio_seconds")->valuedouble > 5);
    cJSON_Delete(j);
    download(&srv, id, 200, &r);
    check_m4b(&r, "The Waste Land", NULL, 1, "IV. DEATH BY WATER");
    http_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_errors),
        cmocka_unit_test(test_job_to_the_end),
        cmocka_unit_test(test_job_epub),
        cmocka_unit_test(test_job_multipart_cancel_resume),
        cmocka_unit_test(test_job_kill9_and_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
