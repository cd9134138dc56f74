/* kokoro-server HTTP API: every endpoint and every error case, streaming,
 * captions, the API key, body limits, static files and path traversal,
 * against the real server binary (test weights, the repo's test voices). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "audio_testutil.h"
#include "server_client.h"

#define HELLO "Hello world."

static test_server srv, keyed;
static char tmpdir[256], webdir[300];

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kk-server-api-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    /* a web folder of our own, with a symlink that points out of it */
    snprintf(webdir, sizeof webdir, "%s/web", tmpdir);
    mkdir(webdir, 0755);
    char p[400];
    snprintf(p, sizeof p, "%s/index.html", webdir);
    write_text(p, "<!doctype html><title>kokoro test</title>");
    snprintf(p, sizeof p, "%s/leak", webdir);
    if (symlink("/etc/passwd", p) != 0) return -1;
    char d1[300], d2[300];
    snprintf(d1, sizeof d1, "%s/data", tmpdir);
    snprintf(d2, sizeof d2, "%s/data-keyed", tmpdir);
    const char *a1[] = {"--web-dir", webdir, "--max-input", "200", "--max-body", "4096", "--workers", "1",
                        "--max-queue", "1", NULL};
    const char *a2[] = {"--api-key", "s3cret", "--job-workers", "0", NULL};
    if (server_start(&srv, d1, a1) != 0) return -1;
    if (server_start(&keyed, d2, a2) != 0) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int a = server_stop(&srv), b = server_stop(&keyed);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return -1;
    curl_global_cleanup();
    return a == 0 && b == 0 ? 0 : -1; /* a clean stop on SIGTERM (and, under ASan, no leaks) */
}

static cJSON *body_json(const http_resp *r)
{
    cJSON *o = cJSON_Parse(r->body);
    assert_non_null(o);
    return o;
}

/* The message of an error response, checked to have Kokoro-FastAPI's shape. */
static void expect_error(const http_resp *r, long code, const char *needle)
{
    if (r->status != code) fprintf(stderr, "expected %ld, got %ld: %s\n", code, r->status, r->body);
    assert_int_equal(r->status, code);
    assert_non_null(strstr(r->ctype, "application/json"));
    cJSON *o = body_json(r), *d = cJSON_GetObjectItem(o, "detail");
    assert_non_null(d);
    cJSON *m = cJSON_GetObjectItem(d, "message");
    assert_true(cJSON_IsString(m));
    if (needle && !strstr(m->valuestring, needle)) fprintf(stderr, "'%s' lacks '%s'\n", m->valuestring, needle);
    if (needle) assert_non_null(strstr(m->valuestring, needle));
    cJSON_Delete(o);
}

static void test_health_models_voices(void **state)
{
    (void)state;
    http_resp r;
    assert_int_equal(http_get(&srv, "/health", &r), 200);
    cJSON *o = body_json(&r);
    assert_string_equal(cJSON_GetObjectItem(o, "status")->valuestring, "healthy");
    cJSON_Delete(o);
    http_free(&r);

    assert_int_equal(http_get(&srv, "/v1/models", &r), 200);
    o = body_json(&r);
    assert_string_equal(cJSON_GetObjectItem(o, "object")->valuestring, "list");
    cJSON *data = cJSON_GetObjectItem(o, "data");
    assert_int_equal(cJSON_GetArraySize(data), 4);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 0), "id")->valuestring, "kokoro");
    cJSON_Delete(o);
    http_free(&r);
    assert_int_equal(http_get(&srv, "/v1/models/tts-1", &r), 200);
    o = body_json(&r);
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring, "tts-1");
    cJSON_Delete(o);
    http_free(&r);
    http_get(&srv, "/v1/models/whisper-1", &r);
    expect_error(&r, 404, "whisper-1");
    http_free(&r);

    assert_int_equal(http_get(&srv, "/v1/audio/voices", &r), 200);
    o = body_json(&r);
    cJSON *v = cJSON_GetObjectItem(o, "voices");
    assert_int_equal(cJSON_GetArraySize(v), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(v, 0), "id")->valuestring, "af_heart");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(v, 1), "name")->valuestring, "am_adam");
    cJSON_Delete(o);
    http_free(&r);
    assert_int_equal(http_get(&srv, "/v1/audio/voices?legacy=true", &r), 200);
    o = body_json(&r);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "voices"), 1)->valuestring, "am_adam");
    cJSON_Delete(o);
    http_free(&r);

    assert_int_equal(http_get(&srv, "/v1/languages", &r), 200);
    o = body_json(&r);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(o, "languages")) >= 9);
    cJSON_Delete(o);
    http_free(&r);

    http_get(&srv, "/v1/nothing", &r);
    expect_error(&r, 404, NULL);
    http_free(&r);
    http_get(&srv, "/v1/audio/speech", &r);
    expect_error(&r, 405, NULL);
    http_free(&r);
}

static void test_speech_wav_and_pcm_agree(void **state)
{
    (void)state;
    http_resp w, p;
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"model\":\"tts-1\",\"input\":\"" HELLO "\",\"voice\":\"af_heart\","
                               "\"response_format\":\"wav\",\"stream\":false}",
                               &w),
                     200);
    assert_string_equal(w.ctype, "audio/wav");
    assert_true(w.len > 44 + 2 * 600);
    assert_memory_equal(w.body, "RIFF", 4);
    assert_memory_equal(w.body + 8, "WAVEfmt ", 8);
    assert_int_equal(le32(w.body + 24), 24000);
    assert_int_equal(le32(w.body + 40), w.len - 44); /* sizes filled in when not streamed */
    assert_int_equal(le32(w.body + 4), w.len - 8);
    /* the same request as streamed raw PCM: the same samples (seeded noise) */
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"speed\":1.0}", &p),
                     200);
    assert_string_equal(p.ctype, "audio/pcm");
    assert_int_equal(p.len, w.len - 44);
    assert_memory_equal(p.body, w.body + 44, p.len);
    http_free(&p);
    /* a faster speed gives shorter audio; an OpenAI alias maps to a Kokoro voice when present */
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"speed\":2.0}", &p),
                     200);
    assert_true(p.len < w.len - 44);
    http_free(&p);
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"voice\":\"alloy\"}", &p),
                     200); /* alloy -> am_adam */
    http_free(&p);
    http_free(&w);
}

static void test_speech_blend(void **state)
{
    (void)state;
    http_resp a, b, m;
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"voice\":\"af_heart\"}", &a),
                     200);
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"voice\":\"am_adam\"}", &b),
                     200);
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\","
                               "\"voice\":\"af_heart(2)+am_adam(1)\"}",
                               &m),
                     200);
    assert_true(m.len > 0);
    assert_true(m.len != a.len || memcmp(m.body, a.body, m.len));
    assert_true(m.len != b.len || memcmp(m.body, b.body, m.len));
    http_free(&a);
    http_free(&b);
    http_free(&m);
}

static void test_streaming_first_bytes_early(void **state)
{
    (void)state;
    http_resp r;
    /* a short sentence, then a long one: streaming makes the short one a
     * small first chunk whose bytes leave well before the long one is done
     * (kept short enough that ASan synthesises the second chunk inside the
     * server's 120 s idle-connection timeout) */
    assert_int_equal(http_post(&srv, "/v1/audio/speech",
                               "{\"input\":\"Hi there. The quick brown fox jumps over the lazy dog, "
                               "and then it runs away.\",\"response_format\":\"wav\"}",
                               &r),
                     200);
    assert_memory_equal(r.body, "RIFF", 4);
    assert_int_equal(le32(r.body + 40), 0xFFFFFFFFu); /* streamed: size unknown up front */
    fprintf(stderr, "streaming: first bytes after %.3f s, all after %.3f s\n", r.t_first, r.t_total);
    assert_true(r.t_first < 0.7 * r.t_total);
    http_free(&r);
}

static void test_speech_errors(void **state)
{
    (void)state;
    http_resp r;
    http_post(&srv, "/v1/audio/speech", "{\"input\": ", &r);
    expect_error(&r, 400, "JSON object");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "[1,2]", &r);
    expect_error(&r, 400, "JSON object");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"voice\":\"af_heart\"}", &r);
    expect_error(&r, 400, "input");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"voice\":\"nobody\",\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "available voices: af_heart, am_adam");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"voice\":\"af_heart(2)+\",\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "voice blend");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"speed\":0.3,\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "0.5 to 2.0");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"speed\":4.0,\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "0.5 to 2.0");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"speed\":\"fast\"}", &r);
    expect_error(&r, 400, "speed a number");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"model\":\"whisper-1\"}", &r);
    expect_error(&r, 400, "whisper-1");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"response_format\":\"ogg\"}", &r);
    expect_error(&r, 400, "ogg");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"lang_code\":\"q\",\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "lang_code");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"   \",\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "nothing to speak");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"Hi\",\"voice\":\"af_heart\",\"lang_code\":\"xx\"}", &r);
    expect_error(&r, 400, "lang_code");
    http_free(&r);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"h\xff\xfe\",\"response_format\":\"wav\"}", &r);
    expect_error(&r, 400, "invalid UTF-8");
    http_free(&r);
    char big[400];
    memset(big, 'a', sizeof big);
    memcpy(big, "{\"input\":\"", 10);
    memcpy(big + sizeof big - 3, "\"}", 3);
    http_post(&srv, "/v1/audio/speech", big, &r);
    expect_error(&r, 400, "the limit is 200");
    http_free(&r);
    /* a body over --max-body: refused from its Content-Length, never read */
    char *huge = malloc(10000);
    memset(huge, ' ', 9999);
    huge[0] = '{';
    huge[9998] = '}';
    huge[9999] = 0;
    http_post(&srv, "/v1/audio/speech", huge, &r);
    expect_error(&r, 413, "limit is 4096");
    http_free(&r);
    /* the same without a Content-Length (chunked): counted while it arrives */
    char url[200];
    snprintf(url, sizeof url, "%s/v1/audio/speech", srv.base);
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    http_req("POST", url, chunked, huge, strlen(huge), NULL, &r);
    expect_error(&r, 413, "larger than 4096");
    http_free(&r);
    free(huge);
    /* a chunked body that goes on and on: read and dropped up to 1 MiB past the
     * limit, then the connection is closed rather than drained forever */
    size_t endless = (size_t)64 << 20;
    char *junk = malloc(endless);
    memset(junk, ' ', endless);
    junk[0] = '{';
    assert_int_equal(http_post_chunked(&srv, "/v1/audio/speech", "application/json", junk, endless, NULL), -1);
    free(junk);
    assert_int_equal(http_get(&srv, "/health", &r), 200); /* and the server is fine */
    http_free(&r);
}

static void test_captioned(void **state)
{
    (void)state;
    http_resp r;
    assert_int_equal(http_post(&srv, "/dev/captioned_speech",
                               "{\"input\":\"Hello world. This is it.\",\"response_format\":\"wav\",\"stream\":false}",
                               &r),
                     200);
    cJSON *o = body_json(&r);
    cJSON *audio = cJSON_GetObjectItem(o, "audio"), *ts = cJSON_GetObjectItem(o, "timestamps");
    assert_true(cJSON_IsString(audio));
    assert_string_equal(cJSON_GetObjectItem(o, "audio_format")->valuestring, "wav");
    assert_int_equal(strncmp(audio->valuestring, "UklGR", 5), 0); /* base64 of "RIFF" */
    size_t b64 = strlen(audio->valuestring);
    double seconds = (double)(b64 / 4 * 3 - 44) / 2 / 24000;
    /* the words of the input text, in order, with times inside the audio */
    const char *words[] = {"Hello", "world", "This", "is", "it"};
    assert_int_equal(cJSON_GetArraySize(ts), 5);
    double prev_end = 0;
    for (int i = 0; i < 5; i++) {
        cJSON *w = cJSON_GetArrayItem(ts, i);
        const char *word = cJSON_GetObjectItem(w, "word")->valuestring;
        if (strncmp(word, words[i], strlen(words[i]))) fprintf(stderr, "word %d: '%s'\n", i, word);
        assert_int_equal(strncmp(word, words[i], strlen(words[i])), 0);
        double s = cJSON_GetObjectItem(w, "start_time")->valuedouble, e = cJSON_GetObjectItem(w, "end_time")->valuedouble;
        assert_true(s >= prev_end - 1e-9);
        assert_true(e > s);
        assert_true(e <= seconds + 0.01);
        prev_end = e;
    }
    cJSON_Delete(o);
    http_free(&r);
    /* streamed: JSON lines as chunks finish; together every word once */
    assert_int_equal(http_post(&srv, "/dev/captioned_speech",
                               "{\"input\":\"Hello world. This is it.\",\"response_format\":\"pcm\"}", &r),
                     200);
    assert_string_equal(r.ctype, "application/x-ndjson");
    int lines = 0, n_words = 0;
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *l = cJSON_Parse(line);
        assert_non_null(l);
        n_words += cJSON_GetArraySize(cJSON_GetObjectItem(l, "timestamps"));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(l, "audio")));
        cJSON_Delete(l);
        lines++;
    }
    assert_true(lines >= 1);
    assert_int_equal(n_words, 5);
    http_free(&r);
}

/* Every response format decodes (ffprobe) as 24 kHz mono of the right codec,
 * streamed or not; mp3 is the default. */
static void test_speech_formats(void **state)
{
    (void)state;
    static const struct { const char *fmt, *codec, *ctype; } F[] = {
        {"mp3", "mp3", "audio/mpeg"}, {"opus", "opus", "audio/opus"}, {"aac", "aac", "audio/mp4"},
        {"flac", "flac", "audio/flac"}, {"wav", "pcm_s16le", "audio/wav"}, {NULL, "mp3", "audio/mpeg"},
    };
    char path[400], body[300];
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            http_resp r;
            if (F[i].fmt)
                snprintf(body, sizeof body, "{\"input\":\"" HELLO "\",\"response_format\":\"%s\",\"stream\":%s}",
                         F[i].fmt, stream ? "true" : "false");
            else
                snprintf(body, sizeof body, "{\"input\":\"" HELLO "\",\"stream\":%s}", stream ? "true" : "false");
            assert_int_equal(http_post(&srv, "/v1/audio/speech", body, &r), 200);
            assert_string_equal(r.ctype, F[i].ctype);
            snprintf(path, sizeof path, "%s/speech%zu_%d.bin", tmpdir, i, stream);
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(r.body, 1, r.len, f), r.len);
            fclose(f);
            http_free(&r);
            cJSON *j = at_ffprobe(path);
            assert_non_null(j);
            cJSON *st = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "streams"), 0);
            assert_non_null(st);
            assert_non_null(at_json_str(st, "codec_name"));
            if (strcmp(at_json_str(st, "codec_name"), F[i].codec))
                fprintf(stderr, "%s: codec %s\n", F[i].fmt ? F[i].fmt : "default", at_json_str(st, "codec_name"));
            assert_string_equal(at_json_str(st, "codec_name"), F[i].codec);
            /* Opus always decodes at 48 kHz (the stream records 24 kHz as its input rate) */
            assert_int_equal((int)at_json_num_str(st, "sample_rate"), strcmp(F[i].codec, "opus") ? 24000 : 48000);
            assert_int_equal(cJSON_GetObjectItem(st, "channels")->valueint, 1);
            size_t n = 0;
            float *x = at_read_ffmpeg(path, &n);
            assert_non_null(x);
            assert_true(n > 24000 / 5); /* "Hello world." is more than 0.2 s */
            assert_true(at_rms(x, 0, n) > 1e-4);
            free(x);
            cJSON_Delete(j);
            unlink(path);
        }
    }
}

static void test_api_key(void **state)
{
    (void)state;
    http_resp r;
    char url[1100];
    assert_int_equal(http_get(&keyed, "/health", &r), 200); /* health stays public */
    http_free(&r);
    http_get(&keyed, "/v1/audio/voices", &r);
    expect_error(&r, 401, "Bearer");
    http_free(&r);
    snprintf(url, sizeof url, "%s/v1/audio/voices", keyed.base);
    const char *wrong[] = {"Authorization: Bearer s3cre", NULL}, *right[] = {"Authorization: Bearer s3cret", NULL};
    http_req("GET", url, wrong, NULL, 0, NULL, &r);
    expect_error(&r, 401, NULL);
    http_free(&r);
    assert_int_equal(http_req("GET", url, right, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_free(&r);
    snprintf(url, sizeof url, "%s/v1/audio/speech", keyed.base);
    const char *body = "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\"}";
    http_req("POST", url, NULL, body, strlen(body), NULL, &r);
    expect_error(&r, 401, NULL);
    http_free(&r);
    http_req("POST", url, right, body, strlen(body), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.len > 0);
    http_free(&r);

    /* the file and job routes need it too; with it an upload and a job go through */
    char book[400];
    snprintf(book, sizeof book, "%s/keyed.md", tmpdir);
    write_text(book, "# One\n\nHello there.\n");
    snprintf(url, sizeof url, "%s/v1/files", keyed.base);
    for (int k = 0; k < 2; k++) {
        CURL *dummy = curl_easy_init();
        curl_mime *m = curl_mime_init(dummy);
        curl_mimepart *part = curl_mime_addpart(m);
        curl_mime_name(part, "file");
        curl_mime_filedata(part, book);
        http_req("POST", url, k ? right : wrong, NULL, 0, m, &r);
        curl_mime_free(m);
        curl_easy_cleanup(dummy);
        if (!k) {
            expect_error(&r, 401, NULL);
            http_free(&r);
        }
    }
    assert_int_equal(r.status, 201);
    cJSON *o = body_json(&r);
    char fid[64];
    snprintf(fid, sizeof fid, "%s", cJSON_GetObjectItem(o, "id")->valuestring);
    cJSON_Delete(o);
    http_free(&r);
    /* a chunked multipart upload without the key: 401, not read into a file */
    const char *mp = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nHi.\r\n--B--\r\n";
    char *resp = NULL;
    assert_int_equal(http_post_chunked(&keyed, "/v1/files", "multipart/form-data; boundary=B", mp, strlen(mp), &resp), 401);
    free(resp);
    char job_body[200], paths[6][160];
    snprintf(job_body, sizeof job_body, "{\"file_id\":\"%s\"}", fid);
    snprintf(url, sizeof url, "%s/v1/jobs", keyed.base);
    http_req("POST", url, NULL, job_body, strlen(job_body), NULL, &r);
    expect_error(&r, 401, NULL);
    http_free(&r);
    http_req("POST", url, right, job_body, strlen(job_body), NULL, &r);
    assert_int_equal(r.status, 201);
    o = body_json(&r);
    const char *jid = cJSON_GetObjectItem(o, "id")->valuestring;
    snprintf(paths[0], sizeof paths[0], "/v1/jobs");
    snprintf(paths[1], sizeof paths[1], "/v1/jobs/%s", jid);
    snprintf(paths[2], sizeof paths[2], "/v1/jobs/%s/download", jid);
    snprintf(paths[3], sizeof paths[3], "/v1/files/%s/chapters", fid);
    snprintf(paths[4], sizeof paths[4], "/v1/files/%s/cover", fid);
    snprintf(paths[5], sizeof paths[5], "/v1/jobs/%s/cancel", jid);
    cJSON_Delete(o);
    http_free(&r);
    for (int i = 0; i < 6; i++) {
        const char *method = i == 5 ? "POST" : "GET";
        snprintf(url, sizeof url, "%s%s", keyed.base, paths[i]);
        http_req(method, url, NULL, NULL, 0, NULL, &r);
        if (r.status != 401) fprintf(stderr, "%s %s without the key: %ld\n", method, paths[i], r.status);
        expect_error(&r, 401, "Bearer");
        http_free(&r);
        http_req(method, url, wrong, NULL, 0, NULL, &r);
        expect_error(&r, 401, NULL);
        http_free(&r);
    }
    /* with the key: the same routes answer (no job worker here: the job stays queued) */
    const long want[6] = {200, 200, 409, 200, 404, 200};
    for (int i = 0; i < 6; i++) {
        snprintf(url, sizeof url, "%s%s", keyed.base, paths[i]);
        http_req(i == 5 ? "POST" : "GET", url, right, NULL, 0, NULL, &r);
        if (r.status != want[i]) fprintf(stderr, "%s with the key: %ld %s\n", paths[i], r.status, r.body);
        assert_int_equal(r.status, want[i]);
        http_free(&r);
    }
}

static void test_static_and_traversal(void **state)
{
    (void)state;
    http_resp r;
    assert_int_equal(http_get(&srv, "/", &r), 200);
    assert_non_null(strstr(r.body, "kokoro test"));
    assert_non_null(strstr(r.ctype, "text/html"));
    http_free(&r);
    assert_int_equal(http_get(&srv, "/index.html", &r), 200);
    http_free(&r);
    const char *bad[] = {"/../data/queue.db", "/%2e%2e/data/queue.db", "/%2E%2E%2Fdata%2Fqueue.db",
                         "/..%2fdata/queue.db", "//etc/passwd", "/%2fetc%2fpasswd", "/./index.html/..",
                         "/leak", "/missing.html", "/web/../index.html", "/.hidden"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long code = http_get(&srv, bad[i], &r);
        if (code != 404 && code != 400) fprintf(stderr, "%s -> %ld\n", bad[i], code);
        assert_true(code == 404 || code == 400);
        assert_null(strstr(r.body, "root:")); /* never a byte of /etc/passwd */
        assert_null(strstr(r.body, "SQLite"));
        http_free(&r);
    }
    char url[200];
    snprintf(url, sizeof url, "%s/index.html", srv.base);
    http_req("DELETE", url, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    http_free(&r);
}

/* Sends a streaming speech request on a raw socket and returns the socket. */
static int raw_speech_on(int fd, const char *input)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char body[512], req[1024];
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"response_format\":\"pcm\"}", input);
    int n = snprintf(req, sizeof req,
                     "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

static int raw_speech(const char *input)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    return raw_speech_on(fd, input);
}

/* The send queue of a loopback TCP socket (local port -> remote port) from
 * /proc/net/tcp: the bytes written that the peer has not acknowledged, or -1. */
static long tcp_send_queue(int local, int remote)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f) return -1;
    char line[512];
    long q = -1;
    while (q < 0 && fgets(line, sizeof line, f)) {
        unsigned lp, rp;
        unsigned long tx, rx;
        if (sscanf(line, " %*d: %*8[0-9A-Fa-f]:%x %*8[0-9A-Fa-f]:%x %*x %lx:%lx", &lp, &rp, &tx, &rx) == 4 &&
            (int)lp == local && (int)rp == remote)
            q = (long)tx;
    }
    fclose(f);
    return q;
}

/* A client that asks for a stream and never reads must not hold up others:
 * with a single worker, later requests still finish, while the kernel can
 * hold only a small part of the unread response (a tiny receive buffer and
 * segment size keep the loopback buffers small; they are measured). */
static void test_slow_client_does_not_block(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int rcvbuf = 2048, mss = 536;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss), 0);
    raw_speech_on(fd, HELLO " " HELLO " " HELLO " " HELLO);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    int my_port = ntohs(me.sin_port);
    sleep_s(0.5); /* let the worker take it: the queue holds one more */
    /* never read fd; others go on (not streamed: a streamed answer that waits for
     * the worker longer than the server's 120 s idle timeout would be cut, as
     * on a loaded machine under ASan) */
    for (int i = 0; i < 2; i++) {
        http_resp r;
        double t0 = now_mono();
        for (;;) { /* 503 only while the first still waits for the worker (a loaded machine) */
            http_post(&srv, "/v1/audio/speech",
                      "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\",\"stream\":false}", &r);
            if (r.status != 503 || now_mono() - t0 > 300) break;
            http_free(&r);
            sleep_s(0.5);
        }
        assert_int_equal(r.status, 200);
        assert_true(r.len > 0);
        http_free(&r);
        assert_int_equal(http_get(&srv, "/health", &r), 200);
        http_free(&r);
    }
    /* one worker takes requests in order: it had synthesised all of the first
     * response before it did these. What the kernel holds of it: */
    long server_q = tcp_send_queue(srv.port, my_port);
    int client_q = 0;
    assert_int_equal(ioctl(fd, FIONREAD, &client_q), 0);
    assert_true(server_q >= 0);
    size_t total = 0;
    char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) total += (size_t)k;
    close(fd);
    fprintf(stderr, "slow client: response %zu bytes; in the kernel meanwhile %ld (server) + %d (client)\n", total,
            server_q, client_q);
    /* the rest waited in the server's memory (beyond MHD's own buffers: a 32 KiB
     * block and its write buffer), so a worker that wrote to the socket itself
     * would have been stuck */
    assert_true(total > (size_t)server_q + (size_t)client_q + 128 * 1024);
}

/* Without --host the server listens on 127.0.0.1 only: the listening socket's
 * address, and a refused connection on this host's other addresses (which do
 * take connections: a socket of our own on 0.0.0.0 gets one). */
static void test_default_bind_loopback(void **state)
{
    (void)state;
    FILE *f = fopen("/proc/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    int listening = 0;
    while (fgets(line, sizeof line, f)) {
        char addr[16];
        unsigned port, st;
        if (sscanf(line, " %*d: %8[0-9A-Fa-f]:%x %*8[0-9A-Fa-f]:%*x %x", addr, &port, &st) == 3 &&
            (int)port == srv.port && st == 0x0A) {
            assert_string_equal(addr, "0100007F"); /* 127.0.0.1, little-endian */
            listening++;
        }
    }
    fclose(f);
    assert_int_equal(listening, 1);

    struct ifaddrs *ifs;
    assert_int_equal(getifaddrs(&ifs), 0);
    int tried = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        struct sockaddr_in a = *(struct sockaddr_in *)i->ifa_addr;
        if ((ntohl(a.sin_addr.s_addr) >> 24) == 127) continue;
        /* control: the address takes connections to a port bound to every address */
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        socklen_t al = sizeof any;
        assert_int_equal(bind(l, (struct sockaddr *)&any, sizeof any), 0);
        assert_int_equal(listen(l, 1), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *)&any, &al), 0);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = any.sin_port;
        assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
        close(c);
        close(l);
        /* the server's port on the same address: refused */
        c = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = htons((uint16_t)srv.port);
        char ip[32];
        inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
        int rc = connect(c, (struct sockaddr *)&a, sizeof a), err = errno;
        if (rc == 0) fprintf(stderr, "the server accepted a connection on %s\n", ip);
        assert_int_equal(rc, -1);
        assert_int_equal(err, ECONNREFUSED);
        close(c);
        tried++;
    }
    freeifaddrs(ifs);
    fprintf(stderr, "default bind: 127.0.0.1 only; refused on %d other address(es)\n", tried);
}

/* One worker, --max-queue 1: a third request while one runs and one waits is 503. */
static void test_queue_full(void **state)
{
    (void)state;
    http_resp r;
    /* a synchronous request first: once it is answered the worker is idle
     * (503 while the previous test's abandoned request still runs) */
    double t0 = now_mono();
    for (;;) {
        http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\"}", &r);
        long code = r.status;
        http_free(&r);
        if (code == 200) break;
        assert_int_equal(code, 503);
        assert_true(now_mono() - t0 < 300);
        sleep_s(0.5);
    }
    /* the first as long as --max-input allows (~12 s of speech: seconds of
     * synthesis even on a fast CPU), so it still runs when the third comes */
#define HELLO5 HELLO " " HELLO " " HELLO " " HELLO " " HELLO
    int a = raw_speech(HELLO5 " " HELLO5 " " HELLO5);
#undef HELLO5
    sleep_s(0.3); /* the worker has taken the first */
    int b = raw_speech(HELLO);
    sleep_s(0.3);
    http_post(&srv, "/v1/audio/speech", "{\"input\":\"" HELLO "\",\"response_format\":\"pcm\"}", &r);
    expect_error(&r, 503, "waiting");
    http_free(&r);
    /* the two accepted ones still complete */
    for (int i = 0; i < 2; i++) {
        int fd = i ? b : a;
        char buf[4096];
        size_t total = 0;
        ssize_t k;
        char head[16] = {0};
        while ((k = read(fd, buf, sizeof buf)) > 0) {
            if (!total) memcpy(head, buf, k < 15 ? (size_t)k : 15);
            total += (size_t)k;
        }
        assert_int_equal(strncmp(head, "HTTP/1.1 200", 12), 0);
        assert_true(total > 1000);
        close(fd);
    }
}

/* Runs the server binary with a command line that must be refused at once;
 * returns its exit status and its stderr in err. */
static int run_refused(const char *cmdline, char *err, size_t cap)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s 2>&1 >/dev/null", tmpdir, cmdline);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(err, 1, cap - 1, p);
    err[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Model discovery and the KOKORO_* performance variables, as in kokoro-tts. */
static void test_model_options(void **state)
{
    (void)state;
    char err[4096];
    /* no model anywhere (an empty data folder, no $KOKORO_MODEL): the paths searched are listed */
    assert_int_equal(run_refused("env -u KOKORO_MODEL XDG_DATA_HOME=/nonexistent-kk " KOKORO_SERVER_PATH " --port 0",
                                 err, sizeof err), 2);
    assert_non_null(strstr(err, "no model found"));
    assert_non_null(strstr(err, "kokoro-v1_0"));
    assert_int_equal(run_refused("KOKORO_MODEL=/nonexistent-kk/m.kokoro " KOKORO_SERVER_PATH " --port 0", err,
                                 sizeof err), 2);
    assert_non_null(strstr(err, "/nonexistent-kk/m.kokoro"));
    /* a bad performance variable is named */
    assert_int_equal(run_refused("KOKORO_THREADS=abc " KOKORO_SERVER_PATH " --test-weights --voices "
                                 KOKORO_TEST_DATA "/voices --port 0", err, sizeof err), 2);
    assert_non_null(strstr(err, "KOKORO_THREADS"));
    assert_int_equal(run_refused(KOKORO_SERVER_PATH " --test-weights --voices " KOKORO_TEST_DATA
                                 "/voices --chunk-tokens 0", err, sizeof err), 2);
    assert_non_null(strstr(err, "--chunk-tokens"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_models_voices),
        cmocka_unit_test(test_speech_wav_and_pcm_agree),
        cmocka_unit_test(test_speech_blend),
        cmocka_unit_test(test_streaming_first_bytes_early),
        cmocka_unit_test(test_speech_errors),
        cmocka_unit_test(test_captioned),
        cmocka_unit_test(test_speech_formats),
        cmocka_unit_test(test_model_options),
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_static_and_traversal),
        cmocka_unit_test(test_slow_client_does_not_block),
        cmocka_unit_test(test_default_bind_loopback),
        cmocka_unit_test(test_queue_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
