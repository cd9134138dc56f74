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
#include <dirent.h>
#include <zip.h>

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

/* Runs a shell command; 0 when it exited 0. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

/* The attached picture of an ffprobe result (a video stream marked
 * attached_pic), or NULL. */
static cJSON *attached_pic(cJSON *probe)
{
    cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(probe, "streams")) {
        cJSON *d = cJSON_GetObjectItem(st, "disposition");
        const char *type = at_json_str(st, "codec_type");
        if (type && !strcmp(type, "video") && cJSON_GetObjectItem(d, "attached_pic") &&
            cJSON_GetObjectItem(d, "attached_pic")->valueint == 1)
            return st;
    }
    return NULL;
}

/* A downloaded audiobook: AAC in MPEG-4 with its chapters and tags; cover:
 * NULL to skip, "" for none, else the attached picture's bytes (cover_len). */
static void check_m4b_cover(const http_resp *r, const char *title, const char *artist, int chapters,
                            const char *first, const char *cover_codec, const char *cover, size_t cover_len)
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
    cJSON *pic = attached_pic(j);
    if (cover_codec && !*cover_codec) assert_null(pic);
    if (cover_codec && *cover_codec) {
        assert_non_null(pic);
        assert_string_equal(at_json_str(pic, "codec_name"), cover_codec);
        /* the very bytes uploaded, not a re-encoding */
        char img[400];
        snprintf(img, sizeof img, "%s/attached.img", tmpdir);
        assert_int_equal(sh("ffmpeg -v error -y -i '%s' -map 0:v -c copy -f image2 '%s'", path, img), 0);
        size_t n = 0;
        char *b = read_all(img, &n);
        assert_non_null(b);
        assert_int_equal(n, cover_len);
        assert_memory_equal(b, cover, n);
        free(b);
        unlink(img);
    }
    cJSON_Delete(j);
    size_t n = 0;
    float *x = at_read_ffmpeg(path, &n);
    assert_non_null(x);
    assert_true(at_rms(x, 0, n) > 1e-4);
    free(x);
    unlink(path);
}

static void check_m4b(const http_resp *r, const char *title, const char *artist, int chapters, const char *first)
{
    check_m4b_cover(r, title, artist, chapters, first, NULL, NULL, 0);
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
    check_m4b_cover(&r, "Same Title", "A", 2, "One", "", NULL, 0); /* Markdown has no cover */
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

    /* an action the jobs do not have */
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/explode", id2);
    http_post(&srv, path, "", &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no such route"));
    http_free(&r);
    http_get(&srv, path, &r);
    assert_int_equal(r.status, 404);
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

/* Entries of the server's uploads folder. */
static int count_uploads(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/uploads", data1);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* One multipart body: a file part of file_len bytes (none when file_len is
 * 0), n_fields fields of field_len bytes each, and epilogue_len bytes after
 * the closing boundary. */
static char *multipart_body(size_t file_len, int n_fields, size_t field_len, size_t epilogue_len, size_t *len)
{
    size_t cap = file_len + (size_t)n_fields * (field_len + 200) + epilogue_len + 400, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    if (file_len) {
        n += (size_t)sprintf(b + n, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
                                    "Content-Type: text/plain\r\n\r\n");
        memset(b + n, 'a', file_len);
        n += file_len;
        n += (size_t)sprintf(b + n, "\r\n");
    }
    for (int i = 0; i < n_fields; i++) {
        n += (size_t)sprintf(b + n, "--XyZ\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n", i);
        memset(b + n, 'v', field_len);
        n += field_len;
        n += (size_t)sprintf(b + n, "\r\n");
    }
    n += (size_t)sprintf(b + n, "--XyZ--\r\n");
    memset(b + n, 'e', epilogue_len);
    n += epilogue_len;
    *len = n;
    return b;
}

/* Multipart uploads without a Content-Length (chunked): the file part is held
 * to --max-upload (200000 here), the other fields to 32 of 64 KiB together,
 * the whole body to --max-upload + 64 KiB, each a 413 with nothing kept. */
static void test_upload_limits_chunked(void **state)
{
    (void)state;
    static const struct { const char *path; size_t file; int fields; size_t field_len, epilogue; long code; const char *msg; } C[] = {
        {"/v1/files", 1000, 2, 10, 0, 201, NULL}, /* the same way, within the limits: accepted */
        {"/v1/files", 210000, 0, 0, 0, 413, "upload larger than 200000"},
        {"/v1/jobs", 210000, 1, 10, 0, 413, "upload larger than 200000"},
        {"/v1/files", 1000, 40, 10, 0, 413, "more than 32 form fields"},
        {"/v1/jobs", 1000, 3, 30000, 0, 413, "form fields larger than 65536"},
        {"/v1/files", 0, 1, 70000, 0, 413, "form fields larger than 65536"},
        {"/v1/files", 1000, 1, 10, 300000, 413, "request body larger than 265536"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        int before = count_uploads();
        size_t len;
        char *body = multipart_body(C[i].file, C[i].fields, C[i].field_len, C[i].epilogue, &len), *resp = NULL;
        long code = http_post_chunked(&srv, C[i].path, "multipart/form-data; boundary=XyZ", body, len, &resp);
        if (code != C[i].code) fprintf(stderr, "case %zu: %ld %s\n", i, code, resp ? resp : "");
        assert_int_equal(code, C[i].code);
        if (C[i].msg) assert_non_null(strstr(resp, C[i].msg));
        assert_int_equal(count_uploads(), before + (C[i].code == 201));
        free(resp);
        free(body);
    }
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

    /* the document's own cover: a Markdown book has none */
    snprintf(path, sizeof path, "/v1/files/%s/cover", fidc);
    http_get(&srv, path, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no cover"));
    http_free(&r);
    http_get(&srv, "/v1/files/0123456789abcdef0123456789abcdef/cover", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    http_get(&srv, "/v1/files/..%2f..%2fqueue.db/cover", &r);
    assert_int_equal(r.status, 404);
    http_free(&r);
    snprintf(path, sizeof path, "/v1/files/%s/other", fidc);
    http_get(&srv, path, &r);
    assert_int_equal(r.status, 404);
    http_free(&r);

    /* uploads are POSTs */
    http_get(&srv, "/v1/files", &r);
    assert_int_equal(r.status, 405);
    http_free(&r);

    /* two files in one upload: refused, and neither is kept */
    int before = count_uploads();
    CURL *dummy = curl_easy_init();
    curl_mime *m = curl_mime_init(dummy);
    for (int i = 0; i < 2; i++) {
        curl_mimepart *part = curl_mime_addpart(m);
        curl_mime_name(part, "file");
        curl_mime_filedata(part, book);
    }
    char url[200];
    snprintf(url, sizeof url, "%s/v1/files", srv.base);
    http_req("POST", url, NULL, NULL, 0, m, &r);
    curl_mime_free(m);
    curl_easy_cleanup(dummy);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "one file per upload"));
    http_free(&r);
    assert_int_equal(count_uploads(), before);

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
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "has_cover")));
    char fid[64], path[160];
    snprintf(fid, sizeof fid, "%s", str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);

    /* the book's own cover, for the UI's preview: the image in the EPUB, as it is */
    snprintf(path, sizeof path, "/v1/files/%s/cover", fid);
    assert_int_equal(http_get(&srv, path, &r), 200);
    assert_string_equal(r.ctype, "image/jpeg");
    int zerr = 0;
    zip_t *z = zip_open(KOKORO_TEST_DATA "/corpus/epub/wasteland.epub", ZIP_RDONLY, &zerr);
    assert_non_null(z);
    zip_stat_t zs;
    assert_int_equal(zip_stat(z, "EPUB/wasteland-cover.jpg", 0, &zs), 0);
    char *jpg = malloc(zs.size);
    zip_file_t *zf = zip_fopen(z, "EPUB/wasteland-cover.jpg", 0);
    assert_non_null(zf);
    assert_int_equal(zip_fread(zf, jpg, zs.size), (zip_int64_t)zs.size);
    zip_fclose(zf);
    zip_close(z);
    assert_int_equal(r.len, zs.size);
    assert_memory_equal(r.body, jpg, zs.size);
    free(jpg);
    http_free(&r);

    /* a cover of our own (PNG, where the book's is JPEG) replaces it in the m4b */
    char png[300];
    snprintf(png, sizeof png, "%s/cover.png", tmpdir);
    assert_int_equal(sh("ffmpeg -v error -y -f lavfi -i color=c=red:s=24x16 -frames:v 1 '%s'", png), 0);
    size_t png_len = 0;
    char *png_bytes = read_all(png, &png_len);
    assert_non_null(png_bytes);
    assert_int_equal(http_upload(&srv, "/v1/files", png, NULL, &r), 201);
    o = cJSON_Parse(r.body);
    char cover_id[64];
    snprintf(cover_id, sizeof cover_id, "%s", str(o, "id"));
    cJSON_Delete(o);
    http_free(&r);

    char json[300], id[64];
    snprintf(json, sizeof json,
             "{\"file_id\":\"%s\",\"voice\":\"af_heart\",\"speed\":2,\"chapters\":[3],\"cover_file_id\":\"%s\"}",
             fid, cover_id);
    submit(&srv, json, id);
    cJSON *j = wait_job(&srv, id, "completed", 0, 900);
    assert_string_equal(str(j, "output_name"), "wasteland.m4b");
    assert_string_equal(str(j, "current_chapter_title"), "IV. DEATH BY WATER");
    /* 74 words at speed 2: several seconds of audio */
    assert_true(cJSON_GetObjectItem(j, "audio_seconds")->valuedouble > 5);
    cJSON_Delete(j);
    download(&srv, id, 200, &r);
    check_m4b_cover(&r, "The Waste Land", NULL, 1, "IV. DEATH BY WATER", "png", png_bytes, png_len);
    http_free(&r);
    free(png_bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_errors),
        cmocka_unit_test(test_upload_limits_chunked),
        cmocka_unit_test(test_job_to_the_end),
        cmocka_unit_test(test_job_epub),
        cmocka_unit_test(test_job_multipart_cancel_resume),
        cmocka_unit_test(test_job_kill9_and_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
