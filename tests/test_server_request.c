/* The server's request bodies parsed without a connection
 * (src/server/request.c): what the speech and job endpoints accept, and the
 * message for each thing a client can get wrong. The same functions are the
 * entry points of tests/fuzz/fuzz_server.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "server/request.h"

static char err[512];

static int speech(const char *body, kk_speech_fields *f)
{
    err[0] = 0;
    return kk_request_speech(body, body ? strlen(body) : 0, 20, f, err, sizeof err);
}

static void expect_speech_error(const char *body, const char *needle)
{
    kk_speech_fields f;
    int code = speech(body, &f);
    printf("  %s -> %d %s\n", body ? body : "(null)", code, err);
    assert_int_equal(code, 400);
    assert_non_null(strstr(err, needle));
    assert_null(f.input); /* nothing left to free */
}

static void test_speech_valid(void **state)
{
    (void)state;
    kk_speech_fields f;
    assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"h\xc9\x99l\",\"voice\":\"alloy\",\"response_format\":\"wav\","
                            "\"speed\":1.5,\"stream\":false,\"lang_code\":\"b\"}", &f), 0);
    assert_string_equal(f.input, "h\xc9\x99l");
    assert_string_equal(f.voice, "am_adam"); /* OpenAI alias */
    assert_string_equal(f.format, "wav");
    assert_string_equal(f.lang, "b");
    assert_true(f.speed == 1.5f);
    assert_int_equal(f.stream, 0);
    kk_speech_fields_free(&f);
    /* defaults */
    assert_int_equal(speech("{\"input\":\"x\",\"lang_code\":\"\",\"voice\":null}", &f), 0);
    assert_string_equal(f.voice, "af_heart");
    assert_string_equal(f.format, "mp3");
    assert_null(f.lang);
    assert_true(f.speed == 1.0f);
    assert_int_equal(f.stream, 1);
    kk_speech_fields_free(&f);
    /* exactly the limit of 20 code points (2-byte ones) */
    assert_int_equal(speech("{\"input\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &f), 0);
    kk_speech_fields_free(&f);
}

static void test_speech_errors(void **state)
{
    (void)state;
    expect_speech_error(NULL, "JSON object expected");
    expect_speech_error("", "JSON object expected");
    expect_speech_error("[1,2]", "JSON object expected");
    expect_speech_error("{\"input\":\"x\"", "JSON object expected"); /* truncated */
    expect_speech_error("{\"model\":5,\"input\":\"x\"}", "model: a string expected");
    expect_speech_error("{\"model\":\"whisper\",\"input\":\"x\"}", "model 'whisper'");
    expect_speech_error("{\"model\":\"kokoro\"}", "input: a string is required");
    expect_speech_error("{\"input\":[\"x\"]}", "input: a string is required");
    expect_speech_error("{\"input\":\"123456789012345678901\"}", "21 characters, the limit is 20");
    expect_speech_error("{\"input\":\"x\",\"voice\":7}", "speed a number");
    expect_speech_error("{\"input\":\"x\",\"speed\":\"fast\"}", "speed a number");
    expect_speech_error("{\"input\":\"x\",\"stream\":1}", "stream a boolean");
    expect_speech_error("{\"input\":\"x\",\"speed\":0.49}", "speed 0.49");
    expect_speech_error("{\"input\":\"x\",\"speed\":1e308}", "0.5 to 2.0");
    /* the declared length bounds the parse (bodies are not NUL-terminated) */
    kk_speech_fields f;
    static const char body[] = "{\"input\":\"x\"}{\"input\":7}";
    assert_int_equal(kk_request_speech(body, 13, 20, &f, err, sizeof err), 0);
    assert_string_equal(f.input, "x");
    kk_speech_fields_free(&f);
    assert_int_equal(kk_request_speech(body, 12, 20, &f, err, sizeof err), 400);
}

static int job(const char *json, kk_job_fields *jf)
{
    cJSON *o = cJSON_Parse(json);
    err[0] = 0;
    int code = kk_request_job(o, jf, err, sizeof err);
    printf("  %s -> %d %s\n", json, code, err);
    cJSON_Delete(o);
    return code;
}

static void test_job(void **state)
{
    (void)state;
    static kk_job_fields jf;
    cJSON *o = cJSON_Parse("{\"file_id\":\"abc\",\"voice\":\"nova\",\"speed\":2,\"chapters\":[0,3,1000000],"
                           "\"title\":\"T\",\"author\":\"A\",\"cover_file_id\":\"c\",\"lang_code\":\"e\"}");
    assert_int_equal(kk_request_job(o, &jf, err, sizeof err), 0);
    assert_string_equal(jf.file_id, "abc");
    assert_string_equal(jf.voice, "bf_isabella");
    assert_string_equal(jf.title, "T");
    assert_string_equal(jf.author, "A");
    assert_string_equal(jf.cover, "c");
    assert_string_equal(jf.lang, "e");
    assert_true(jf.speed == 2.0f);
    assert_int_equal(jf.nsel, 3);
    assert_int_equal(jf.sel[2], 1000000);
    cJSON_Delete(o);
    assert_int_equal(job("{\"file_id\":\"abc\",\"chapters\":null}", &jf), 0);
    assert_int_equal(jf.nsel, 0);

    assert_int_equal(job("[]", &jf), 400);
    assert_non_null(strstr(err, "JSON object expected"));
    assert_int_equal(job("{\"voice\":\"x\"}", &jf), 400);
    assert_non_null(strstr(err, "file_id (string) is required"));
    assert_int_equal(job("{\"file_id\":\"a\",\"chapters\":\"1,2\"}", &jf), 400);
    assert_int_equal(job("{\"file_id\":\"a\",\"speed\":3}", &jf), 400);
    assert_non_null(strstr(err, "speed 3"));
    assert_int_equal(job("{\"file_id\":\"a\",\"chapters\":[]}", &jf), 400);
    assert_non_null(strstr(err, "empty selection"));
    static const char *const bad_chapters[] = {"[1.5]", "[-1]", "[1000001]", "[1e300]", "[\"1\"]", "[null]"};
    for (size_t i = 0; i < sizeof bad_chapters / sizeof *bad_chapters; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"file_id\":\"a\",\"chapters\":%s}", bad_chapters[i]);
        assert_int_equal(job(body, &jf), 400);
        assert_non_null(strstr(err, "chapter indices (integers >= 0) expected"));
    }
    /* more indices than the selection holds: refused, never written past it */
    size_t cap = 16 + 2 * (KK_REQUEST_MAX_CHAPTERS + 1) + 64;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"file_id\":\"a\",\"chapters\":[");
    for (int i = 0; i <= KK_REQUEST_MAX_CHAPTERS; i++) n += (size_t)snprintf(big + n, cap - n, "%s0", i ? "," : "");
    snprintf(big + n, cap - n, "]}");
    o = cJSON_Parse(big);
    assert_non_null(o);
    assert_int_equal(kk_request_job(o, &jf, err, sizeof err), 400);
    assert_int_equal(jf.nsel, KK_REQUEST_MAX_CHAPTERS);
    cJSON_Delete(o);
    free(big);
}

static void test_job_form(void **state)
{
    (void)state;
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "speed", "1.25");
    cJSON_AddStringToObject(fields, "chapters", "2, 4,7");
    cJSON_AddStringToObject(fields, "title", "Book");
    cJSON_AddStringToObject(fields, "file_id", "forged"); /* the upload's own id wins */
    cJSON *o = kk_request_job_form(fields, "0123", err, sizeof err);
    assert_non_null(o);
    static kk_job_fields jf;
    assert_int_equal(kk_request_job(o, &jf, err, sizeof err), 0);
    assert_string_equal(jf.file_id, "0123");
    assert_true(jf.speed == 1.25f);
    assert_int_equal(jf.nsel, 3);
    assert_int_equal(jf.sel[1], 4);
    assert_string_equal(jf.title, "Book");
    cJSON_Delete(o);
    cJSON_Delete(fields);

    static const char *const bad[][3] = {{"speed", "fast", "speed: a number expected"},
                                         {"speed", "1.5x", "speed: a number expected"},
                                         {"chapters", "1,x", "comma-separated indices"},
                                         {"chapters", "-3", "comma-separated indices"},
                                         {"chapters", "99999999999", "comma-separated indices"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, bad[i][0], bad[i][1]);
        err[0] = 0;
        assert_null(kk_request_job_form(fields, "0123", err, sizeof err));
        printf("  %s=%s -> %s\n", bad[i][0], bad[i][1], err);
        assert_non_null(strstr(err, bad[i][2]));
        cJSON_Delete(fields);
    }
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "chapters", "all");
    o = kk_request_job_form(fields, "0123", err, sizeof err);
    assert_non_null(o);
    assert_int_equal(kk_request_job(o, &jf, err, sizeof err), 0);
    assert_int_equal(jf.nsel, 0);
    cJSON_Delete(o);
    cJSON_Delete(fields);
}

static void test_safe_name(void **state)
{
    (void)state;
    static const char *const cases[][2] = {{"../../etc/passwd", "passwd"},
                                           {"..\\..\\boot.ini", "boot.ini"},
                                           {"dir/..", "upload"},
                                           {"...hidden", "hidden"},
                                           {"", "upload"},
                                           {NULL, "upload"},
                                           {"a b?c*.epub", "a_b_c_.epub"},
                                           {"caf\xc3\xa9.txt", "caf__.txt"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[128];
        kk_request_safe_name(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    char longname[400], out[128];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    kk_request_safe_name(longname, out, sizeof out);
    assert_int_equal(strlen(out), 100);
    char tiny[4];
    kk_request_safe_name("abcdef", tiny, sizeof tiny);
    assert_string_equal(tiny, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_speech_valid), cmocka_unit_test(test_speech_errors), cmocka_unit_test(test_job),
        cmocka_unit_test(test_job_form),     cmocka_unit_test(test_safe_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
