/* Parsing and validation of the server's request bodies, apart from any
 * connection so that the fuzz targets (tests/fuzz/fuzz_server.c) and tests
 * reach them directly. Each returns 0, or the HTTP status to answer (400 for
 * what the client got wrong, 503 when memory ran out) with the message in err. */
#ifndef KK_SERVER_REQUEST_H
#define KK_SERVER_REQUEST_H
#include <cjson/cJSON.h>
#include <stddef.h>

/* POST /v1/audio/speech (and /dev/captioned_speech). */
typedef struct kk_speech_fields {
    char *input, *voice, *format, *lang; /* malloc'd; lang NULL when absent or empty */
    float speed;                         /* 0.5..2, 1 when absent */
    int stream;                          /* 1 when absent (Kokoro-FastAPI streams by default) */
} kk_speech_fields;
int kk_request_speech(const char *body, size_t len, size_t max_input, kk_speech_fields *out, char *err, size_t cap);
void kk_speech_fields_free(kk_speech_fields *f);

#define KK_REQUEST_MAX_CHAPTERS 4096
/* POST /v1/jobs: the strings point into the request object o. */
typedef struct kk_job_fields {
    const char *file_id, *voice, *lang, *title, *author, *cover;
    float speed;
    int sel[KK_REQUEST_MAX_CHAPTERS];
    size_t nsel; /* 0: every chapter */
} kk_job_fields;
int kk_request_job(const cJSON *o, kk_job_fields *out, char *err, size_t cap);
/* The multipart form of POST /v1/jobs (fields: an object of strings) as the
 * JSON request kk_request_job reads; NULL with the message in err. */
cJSON *kk_request_job_form(const cJSON *fields, const char *file_id, char *err, size_t cap);

/* A file name safe on any file system (no '/', '\\' or leading '.'); never empty. */
void kk_request_safe_name(const char *in, char *out, size_t cap);
#endif
