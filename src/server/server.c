#define _XOPEN_SOURCE 700 /* realpath, gethostname */
/* kokoro-server (see server.h). Routes:
 *   GET  /health, /v1/models[/{id}], /v1/audio/voices, /v1/languages
 *   POST /v1/audio/speech, /dev/captioned_speech
 *   POST /v1/files (multipart), GET /v1/files/{id}/chapters, GET /v1/files/{id}/cover
 *   POST /v1/jobs (JSON with file_id, or multipart with the file), GET /v1/jobs,
 *   GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel, POST /v1/jobs/{id}/resume,
 *   GET /v1/jobs/{id}/download
 *   GET  anything else: a static file of web_dir */
#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "server/jobs.h"
#include "server/request.h"

/* ---- synthesis tasks: a request's output, filled by a worker, drained by its connection ---- */

typedef struct task {
    kk_synth_request req;
    char *input, *voice, *lang, *format;
    int captioned; /* captions: stream -> NDJSON lines, else audio + one timestamp array */
    pthread_mutex_t m;
    pthread_cond_t c;
    uint8_t *buf; /* unbounded, so a slow reader never holds a worker */
    size_t len, cap, pos;
    cJSON *words; /* captioned, not streamed */
    int done, refs;
    kokoro_status status;
    char err[1024];
    atomic_int cancel;
    struct task *next;
} task;

struct kk_server {
    kk_server_config cfg;
    char *data_dir, *web_dir, *web_real, *api_key;
    kk_backend *be;
    kk_jobs *jobs;
    struct MHD_Daemon *mhd;
    int port;
    char owner[128];
    /* speech queue */
    pthread_mutex_t qm;
    pthread_cond_t qc;
    task *head, *tail;
    int queued;
    int stopping;
    pthread_t *workers;
    int n_workers;
    /* book jobs */
    atomic_int stop_jobs;
    /* the jobs this process runs now, so a cancel stops the chunk in flight */
    pthread_mutex_t rm;
    struct running_job {
        char id[64]; /* "" when the slot is free */
        atomic_int cancel;
    } running[64];
    pthread_t *job_threads;
    int n_job_threads;
    pthread_t heartbeat;
    int heartbeat_started;
    pthread_mutex_t sm;
    pthread_cond_t sc;
};

static void task_unref(task *t)
{
    pthread_mutex_lock(&t->m);
    int left = --t->refs;
    pthread_mutex_unlock(&t->m);
    if (left) return;
    free(t->input); free(t->voice); free(t->lang); free(t->format);
    free(t->buf);
    cJSON_Delete(t->words);
    pthread_mutex_destroy(&t->m);
    pthread_cond_destroy(&t->c);
    free(t);
}

static int task_append(task *t, const void *p, size_t n)
{
    if (t->cap - t->len < n) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap - t->len < n) cap *= 2;
        uint8_t *g = realloc(t->buf, cap);
        if (!g) return -1;
        t->buf = g;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
    return 0;
}

static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static cJSON *words_json(const kk_word_time *w, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "word", w[i].word);
        cJSON_AddNumberToObject(o, "start_time", w[i].start);
        cJSON_AddNumberToObject(o, "end_time", w[i].end);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static int on_chunk(void *ud, const uint8_t *bytes, size_t len, const kk_word_time *w, size_t nw)
{
    task *t = ud;
    int rc = 0;
    pthread_mutex_lock(&t->m);
    if (t->captioned && t->req.stream) {
        /* one JSON line per chunk: {"audio": base64, "audio_format", "timestamps": [...]} */
        cJSON *o = cJSON_CreateObject();
        char *b = base64(bytes, len), *line = NULL;
        if (o && b) {
            cJSON_AddStringToObject(o, "audio", b);
            cJSON_AddStringToObject(o, "audio_format", t->req.format);
            cJSON_AddItemToObject(o, "timestamps", words_json(w, nw));
            line = cJSON_PrintUnformatted(o);
        }
        if (!line || task_append(t, line, strlen(line)) || task_append(t, "\n", 1)) rc = 1;
        free(line);
        free(b);
        cJSON_Delete(o);
    } else {
        if (task_append(t, bytes, len)) rc = 1;
        if (t->captioned && !rc) {
            cJSON *a = words_json(w, nw), *e;
            if (!a) rc = 1;
            while (a && (e = cJSON_DetachItemFromArray(a, 0)) != NULL) cJSON_AddItemToArray(t->words, e);
            cJSON_Delete(a);
        }
    }
    pthread_cond_broadcast(&t->c);
    pthread_mutex_unlock(&t->m);
    return rc || atomic_load(&t->cancel);
}

static void *speech_worker(void *arg)
{
    kk_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qm);
        while (!s->head && !s->stopping) pthread_cond_wait(&s->qc, &s->qm);
        if (!s->head) {
            pthread_mutex_unlock(&s->qm);
            return NULL;
        }
        task *t = s->head;
        s->head = t->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        pthread_mutex_unlock(&s->qm);
        kokoro_status st = atomic_load(&t->cancel)
                               ? kk_error(KOKORO_ERR_CANCELLED, "the client went away before synthesis started")
                               : kk_backend_synthesize(s->be, &t->req, on_chunk, t, &t->cancel);
        pthread_mutex_lock(&t->m);
        t->status = st;
        if (st != KOKORO_OK) snprintf(t->err, sizeof t->err, "%s", kokoro_last_error());
        t->done = 1;
        pthread_cond_broadcast(&t->c);
        pthread_mutex_unlock(&t->m);
        task_unref(t);
    }
}

/* Queues a task (refs: the worker's and the caller's). 0, or -1 when full. */
static int submit(kk_server *s, task *t)
{
    pthread_mutex_lock(&s->qm);
    if (s->queued >= s->cfg.max_queue || s->stopping) {
        pthread_mutex_unlock(&s->qm);
        return -1;
    }
    t->refs = 2;
    if (s->tail) s->tail->next = t;
    else s->head = t;
    s->tail = t;
    s->queued++;
    pthread_cond_signal(&s->qc);
    pthread_mutex_unlock(&s->qm);
    return 0;
}

/* ---- responses ---- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned code, const char *type, void *data, size_t len,
                                int take)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, data, take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (take) free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, cJSON *o)
{
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!txt) return send_buf(c, 500, "application/json", (void *)"{}", 2, 0);
    return send_buf(c, code, "application/json", txt, strlen(txt), 1);
}

/* Kokoro-FastAPI's error shape: {"detail": {"error", "message", "type"}} */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *error, const char *fmt, ...)
    KK_PRINTF(4, 5);
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *error, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "detail");
    cJSON_AddStringToObject(d, "error", error);
    cJSON_AddStringToObject(d, "message", msg);
    cJSON_AddStringToObject(d, "type", code >= 500 ? "server_error" : "invalid_request_error");
    return send_json(c, code, o);
}

static unsigned status_http(kokoro_status st)
{
    switch (st) {
    case KOKORO_ERR_INVALID_ARG: return 400;
    case KOKORO_ERR_FORMAT: return 501;
    case KOKORO_ERR_NOMEM: return 503;
    default: return 500;
    }
}

/* ---- per-request state ---- */

/* Multipart text fields (voice, speed, chapters, title...): a job needs
 * eight, so a few dozen small ones are plenty. */
#define MAX_FIELDS 32
#define MAX_FIELD_BYTES 65536 /* all fields together */

typedef struct req {
    char *body;
    size_t len, cap;
    size_t seen, limit; /* raw body bytes so far; the most a request of its kind may send */
    int too_large, early;
    char why[160];      /* what was too large, for the 413 */
    int n_fields;
    size_t field_bytes;
    struct MHD_PostProcessor *pp;
    cJSON *fields;         /* multipart text fields */
    char upload_id[33];
    char *upload_dir, *upload_tmp, *upload_name;
    FILE *upload_f;
    size_t upload_bytes;
    int upload_error;
    kk_server *s;
} req;

static void random_id(char out[33])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    ssize_t r = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0) close(fd);
    if (r != (ssize_t)sizeof b) { /* never expected; still unique enough within a process */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long v = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^ (unsigned long long)getpid();
        for (int i = 0; i < 16; i++) b[i] = (unsigned char)(v >> ((i % 8) * 8)) ^ (unsigned char)i;
    }
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int is_id(const char *p, size_t n)
{
    if (n != 32) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* Removes what an upload that did not complete left on disk. */
static void upload_discard(req *r)
{
    if (r->upload_f) fclose(r->upload_f);
    r->upload_f = NULL;
    if (r->upload_tmp) unlink(r->upload_tmp); /* left only when the upload did not complete */
    if (r->upload_dir && (r->upload_error || r->upload_tmp)) rmdir(r->upload_dir);
    free(r->upload_tmp);
    r->upload_tmp = NULL;
    free(r->upload_dir);
    r->upload_dir = NULL;
}

static void req_free(req *r)
{
    if (!r) return;
    if (r->pp) MHD_destroy_post_processor(r->pp);
    upload_discard(r);
    free(r->upload_dir); free(r->upload_tmp); free(r->upload_name);
    free(r->body);
    cJSON_Delete(r->fields);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)c; (void)toe;
    req_free(*con_cls);
    *con_cls = NULL;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void set_too_large(req *r, const char *fmt, ...) KK_PRINTF(2, 3);
static void set_too_large(req *r, const char *fmt, ...)
{
    if (r->too_large) return; /* the first limit crossed is the one reported */
    r->too_large = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data,
                                 uint64_t off, size_t size)
{
    (void)kind; (void)content_type; (void)transfer_encoding;
    req *r = cls;
    if (filename && !strcmp(key, "file")) {
        if (r->upload_error) return MHD_YES;
        /* a part's offsets run 0, n1, n1+n2...: offset 0 after bytes of a file is a second file */
        if (r->upload_f && off != r->upload_bytes) { r->upload_error = 2; return MHD_YES; }
        if (!r->upload_f) {
            if (r->upload_dir) { r->upload_error = 2; return MHD_YES; } /* one file per request */
            char name[128], *updir = path_join(r->s->data_dir, "uploads");
            kk_request_safe_name(filename, name, sizeof name);
            random_id(r->upload_id);
            r->upload_dir = updir ? path_join(updir, r->upload_id) : NULL;
            free(updir);
            r->upload_name = strdup(name);
            if (!r->upload_dir || !r->upload_name || mkdir(r->upload_dir, 0755) != 0) {
                r->upload_error = 1;
                return MHD_YES;
            }
            r->upload_tmp = path_join(r->upload_dir, ".partial");
            r->upload_f = r->upload_tmp ? fopen(r->upload_tmp, "wb") : NULL;
            if (!r->upload_f) { r->upload_error = 1; return MHD_YES; }
        }
        r->upload_bytes += size;
        if (r->upload_bytes > r->s->cfg.max_upload) {
            set_too_large(r, "upload larger than %zu bytes", r->s->cfg.max_upload);
            r->upload_error = 1;
            return MHD_YES;
        }
        if (size && fwrite(data, 1, size, r->upload_f) != size) r->upload_error = 1;
        return MHD_YES;
    }
    /* a text field, possibly in pieces */
    if (!r->fields) r->fields = cJSON_CreateObject();
    cJSON *prev = cJSON_GetObjectItemCaseSensitive(r->fields, key);
    size_t plen = (prev && off) ? strlen(prev->valuestring) : 0;
    /* without a Content-Length nothing else bounds them: cap their number and size */
    if (!off && ++r->n_fields > MAX_FIELDS) {
        set_too_large(r, "more than %d form fields", MAX_FIELDS);
        return MHD_YES;
    }
    r->field_bytes += size;
    if (r->field_bytes > MAX_FIELD_BYTES) {
        set_too_large(r, "form fields larger than %d bytes together", MAX_FIELD_BYTES);
        return MHD_YES;
    }
    char *v = malloc(plen + size + 1);
    if (!v) return MHD_NO;
    if (plen) memcpy(v, prev->valuestring, plen);
    memcpy(v + plen, data, size);
    v[plen + size] = 0;
    if (prev) cJSON_DeleteItemFromObjectCaseSensitive(r->fields, key);
    cJSON_AddStringToObject(r->fields, key, v);
    free(v);
    return MHD_YES;
}

/* Finishes an upload: the partial file becomes uploads/<id>/<name>. */
static int upload_commit(req *r)
{
    if (!r->upload_f || r->upload_error) return -1;
    int ok = fflush(r->upload_f) == 0 && fsync(fileno(r->upload_f)) == 0;
    ok = (fclose(r->upload_f) == 0) && ok;
    r->upload_f = NULL;
    char *final = path_join(r->upload_dir, r->upload_name);
    if (!ok || !final || rename(r->upload_tmp, final) != 0) {
        free(final);
        r->upload_error = 1;
        return -1;
    }
    free(final);
    free(r->upload_tmp);
    r->upload_tmp = NULL;
    return 0;
}

/* The stored file of an upload id (malloc'd path and name), or NULL. */
static char *upload_path(kk_server *s, const char *id, char **name)
{
    if (!is_id(id, strlen(id))) return NULL;
    char sub[64];
    snprintf(sub, sizeof sub, "uploads/%s", id);
    char *dir = path_join(s->data_dir, sub), *found = NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        found = path_join(dir, e->d_name);
        if (name) *name = strdup(e->d_name);
        break;
    }
    if (d) closedir(d);
    free(dir);
    return found;
}

/* ---- auth ---- */

static int auth_ok(kk_server *s, struct MHD_Connection *c)
{
    if (!s->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)h[i] ^ (unsigned char)s->api_key[i % (b ? b : 1)];
    return diff == 0; /* compares every byte: no timing hint about the key */
}

/* ---- speech ---- */

static const char *const MODELS[] = {"kokoro", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    task *t = cls;
    pthread_mutex_lock(&t->m);
    while (t->pos == t->len && !t->done) pthread_cond_wait(&t->c, &t->m);
    ssize_t n;
    if (t->pos < t->len) {
        size_t k = t->len - t->pos < max ? t->len - t->pos : max;
        memcpy(buf, t->buf + t->pos, k);
        t->pos += k;
        if (t->pos == t->len) t->pos = t->len = 0; /* sent everything: reuse the buffer */
        n = (ssize_t)k;
    } else {
        n = t->status == KOKORO_OK ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&t->m);
    return n;
}

static void stream_free(void *cls)
{
    task *t = cls;
    atomic_store(&t->cancel, 1); /* a client that leaves stops its synthesis at the next chunk */
    task_unref(t);
}

static const char *mime_of_format(const char *f)
{
    if (!strcmp(f, "wav")) return "audio/wav";
    if (!strcmp(f, "pcm")) return "audio/pcm";
    if (!strcmp(f, "mp3")) return "audio/mpeg";
    if (!strcmp(f, "opus")) return "audio/opus";
    if (!strcmp(f, "flac")) return "audio/flac";
    return "audio/mp4"; /* aac: AAC in MPEG-4 (.m4a) */
}

static void wav_fix_sizes(uint8_t *b, size_t n)
{
    if (n < 44 || memcmp(b, "RIFF", 4)) return;
    uint32_t data = (uint32_t)(n - 44), riff = (uint32_t)(n - 8);
    for (int i = 0; i < 4; i++) {
        b[4 + i] = (uint8_t)(riff >> (8 * i));
        b[40 + i] = (uint8_t)(data >> (8 * i));
    }
}

static const char *json_str(cJSON *o, const char *k, const char *def, int *bad)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsString(v)) { *bad = 1; return def; }
    return v->valuestring;
}

static enum MHD_Result handle_speech(kk_server *s, struct MHD_Connection *c, req *r, int captioned)
{
    kk_speech_fields f;
    char err[512];
    int code = kk_request_speech(r->body, r->len, s->cfg.max_input, &f, err, sizeof err);
    if (code) return send_error(c, code, code == 400 ? "validation_error" : "server_error", "%s", err);
    task *t = calloc(1, sizeof *t);
    if (!t) { kk_speech_fields_free(&f); return send_error(c, 503, "server_error", "out of memory"); }
    pthread_mutex_init(&t->m, NULL);
    pthread_cond_init(&t->c, NULL);
    t->refs = 1;
    t->input = f.input;
    t->voice = f.voice;
    t->format = f.format;
    t->lang = f.lang;
    t->req.input = t->input;
    t->req.voice = t->voice;
    t->req.format = t->format;
    t->req.lang = t->lang;
    t->req.speed = f.speed;
    t->req.stream = f.stream;
    t->captioned = captioned;
    if (captioned) t->words = cJSON_CreateArray();
    if (captioned && !t->words) {
        task_unref(t);
        return send_error(c, 503, "server_error", "out of memory");
    }
    /* everything a client can get wrong is answered before any audio is sent */
    kokoro_status st = kk_backend_check(s->be, &t->req);
    if (st != KOKORO_OK) {
        unsigned code = status_http(st);
        enum MHD_Result ret = send_error(c, code, code == 501 ? "unsupported_format" : "validation_error", "%s",
                                         kokoro_last_error());
        task_unref(t);
        return ret;
    }
    if (submit(s, t) != 0) {
        task_unref(t);
        return send_error(c, 503, "server_busy", "%d requests are waiting for synthesis already; try again",
                          s->cfg.max_queue);
    }
    if (t->req.stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, t,
                                                                      stream_free);
        if (!resp) { stream_free(t); return MHD_NO; }
        MHD_add_response_header(resp, "Content-Type", captioned ? "application/x-ndjson" : mime_of_format(t->req.format));
        if (!captioned) {
            char cd[64];
            snprintf(cd, sizeof cd, "attachment; filename=\"speech.%s\"", t->req.format);
            MHD_add_response_header(resp, "Content-Disposition", cd);
        }
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    pthread_mutex_lock(&t->m);
    while (!t->done) pthread_cond_wait(&t->c, &t->m);
    pthread_mutex_unlock(&t->m);
    enum MHD_Result ret;
    if (t->status != KOKORO_OK) {
        ret = send_error(c, status_http(t->status) == 400 ? 400 : 500, "processing_error", "%s", t->err);
    } else if (!strcmp(t->req.format, "wav")) {
        wav_fix_sizes(t->buf, t->len);
    }
    if (t->status == KOKORO_OK && captioned) {
        cJSON *res = cJSON_CreateObject();
        char *b = base64(t->buf ? t->buf : (uint8_t *)"", t->len);
        if (res && b) {
            cJSON_AddStringToObject(res, "audio", b);
            cJSON_AddStringToObject(res, "audio_format", t->req.format);
            cJSON_AddItemToObject(res, "timestamps", t->words);
            t->words = NULL;
        }
        free(b);
        ret = send_json(c, 200, res);
    } else if (t->status == KOKORO_OK) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(t->len, t->buf, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            t->buf = NULL;
            MHD_add_response_header(resp, "Content-Type", mime_of_format(t->req.format));
            char cd[64];
            snprintf(cd, sizeof cd, "attachment; filename=\"speech.%s\"", t->req.format);
            MHD_add_response_header(resp, "Content-Disposition", cd);
            ret = MHD_queue_response(c, 200, resp);
            MHD_destroy_response(resp);
        } else {
            ret = MHD_NO;
        }
    }
    task_unref(t);
    return ret;
}

/* ---- files and jobs ---- */

static cJSON *chapters_json(kk_server *s, const char *path, char *err, size_t errcap, kk_doc_meta *meta)
{
    kk_chapter_info *ch;
    size_t n;
    if (kk_backend_chapters(s->be, path, &ch, &n, meta) != KOKORO_OK) {
        snprintf(err, errcap, "%s", kokoro_last_error());
        return NULL;
    }
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddNumberToObject(o, "index", (double)i);
        cJSON_AddStringToObject(o, "title", ch[i].title);
        cJSON_AddNumberToObject(o, "words", (double)ch[i].words);
        cJSON_AddItemToArray(a, o);
    }
    free(ch);
    return a;
}

static enum MHD_Result upload_failed(struct MHD_Connection *c, req *r)
{
    int had_dir = r->upload_dir != NULL;
    upload_discard(r); /* before the answer: a client that got it finds nothing left */
    if (r->too_large) return send_error(c, 413, "too_large", "%s", r->why);
    if (r->upload_error == 2) return send_error(c, 400, "validation_error", "one file per upload");
    if (!had_dir) return send_error(c, 400, "validation_error", "multipart field 'file' with a file expected");
    return send_error(c, 500, "server_error", "the upload could not be stored");
}

static enum MHD_Result handle_upload(kk_server *s, struct MHD_Connection *c, req *r)
{
    if (r->too_large || r->upload_error || !r->upload_f || upload_commit(r) != 0) return upload_failed(c, r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->upload_id);
    cJSON_AddStringToObject(o, "filename", r->upload_name);
    cJSON_AddNumberToObject(o, "size", (double)r->upload_bytes);
    char *path = upload_path(s, r->upload_id, NULL), err[1024] = "";
    kk_doc_meta meta;
    cJSON *ch = path ? chapters_json(s, path, err, sizeof err, &meta) : NULL;
    free(path);
    if (ch) {
        /* what the document says about itself prefills the job's metadata */
        cJSON_AddItemToObject(o, "chapters", ch);
        cJSON_AddStringToObject(o, "title", meta.title);
        cJSON_AddStringToObject(o, "author", meta.author);
        cJSON_AddBoolToObject(o, "has_cover", meta.has_cover);
    }
    else {
        cJSON_AddNullToObject(o, "chapters");
        cJSON_AddStringToObject(o, "chapters_error", err);
    }
    return send_json(c, 201, o);
}

static enum MHD_Result create_job(kk_server *s, struct MHD_Connection *c, cJSON *o)
{
    kk_job_fields jf;
    char err[512];
    int code = kk_request_job(o, &jf, err, sizeof err);
    if (code) return send_error(c, code, "validation_error", "%s", err);
    const char *file_id = jf.file_id, *voice = jf.voice, *lang = jf.lang, *title = jf.title, *author = jf.author,
               *cover = jf.cover;
    float speed = jf.speed;
    int *sel = jf.sel;
    size_t nsel = jf.nsel;
    char *in_name = NULL, *in_path = upload_path(s, file_id, &in_name);
    if (!in_path) return send_error(c, 404, "not_found", "file_id '%.64s': no such upload", file_id);
    char *cover_path = NULL;
    if (cover) {
        cover_path = upload_path(s, cover, NULL);
        if (!cover_path) { free(in_path); free(in_name); return send_error(c, 404, "not_found", "cover_file_id: no such upload"); }
    }
    char id[33];
    random_id(id);
    char name[160], base[128];
    kk_request_safe_name(title && *title ? title : in_name, base, sizeof base);
    char *dot = strrchr(base, '.');
    if (dot && !(title && *title)) *dot = 0;
    snprintf(name, sizeof name, "%s.%s", base[0] ? base : "book", kk_backend_book_ext(s->be));
    char sub[200];
    snprintf(sub, sizeof sub, "outputs/%s", id);
    char *outdir = path_join(s->data_dir, sub);
    snprintf(sub, sizeof sub, "work/%s", id);
    char *work = path_join(s->data_dir, sub);
    /* each job owns its own output folder: same-named books never overwrite each other */
    char *outpath = outdir ? path_join(outdir, name) : NULL;
    kk_book_request br = {.input_path = in_path, .voice = voice, .speed = speed, .lang = lang,
                          .chapters = nsel ? sel : NULL, .n_chapters = nsel, .title = title, .author = author,
                          .cover_path = cover_path, .work_dir = work, .output_path = outpath};
    size_t total = 0;
    enum MHD_Result ret;
    kokoro_status st = (outdir && work && outpath) ? kk_backend_book_plan(s->be, &br, &total)
                                                    : kk_error(KOKORO_ERR_NOMEM, "out of memory");
    if (st != KOKORO_OK) {
        ret = send_error(c, status_http(st) == 501 ? 415 : status_http(st), "validation_error", "%s",
                         kokoro_last_error());
        goto out;
    }
    if (mkdir(outdir, 0755) != 0) {
        ret = send_error(c, 500, "server_error", "%s: cannot create: %s", outdir, strerror(errno));
        goto out;
    }
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddStringToObject(opts, "voice", voice);
    cJSON_AddNumberToObject(opts, "speed", speed);
    if (lang) cJSON_AddStringToObject(opts, "lang_code", lang);
    if (nsel) cJSON_AddItemToObject(opts, "chapters", cJSON_CreateIntArray(sel, (int)nsel));
    if (title) cJSON_AddStringToObject(opts, "title", title);
    if (author) cJSON_AddStringToObject(opts, "author", author);
    if (cover) cJSON_AddStringToObject(opts, "cover_file_id", cover);
    cJSON_AddStringToObject(opts, "file_id", file_id);
    char *opts_txt = cJSON_PrintUnformatted(opts);
    cJSON_Delete(opts);
    kk_job_new j = {.id = id, .input_path = in_path, .input_name = in_name, .options_json = opts_txt ? opts_txt : "{}",
                    .output_path = outpath, .output_name = name, .work_dir = work, .total_chunks = (long)total};
    st = kk_jobs_create(s->jobs, &j);
    free(opts_txt);
    if (st != KOKORO_OK) {
        ret = send_error(c, 500, "server_error", "%s", kokoro_last_error());
        goto out;
    }
    pthread_cond_broadcast(&s->sc); /* wake an idle job worker */
    ret = send_json(c, 201, kk_jobs_get_json(s->jobs, id, 0));
out:
    free(in_path); free(in_name); free(outdir); free(work); free(outpath); free(cover_path);
    return ret;
}

static enum MHD_Result handle_job_post(kk_server *s, struct MHD_Connection *c, req *r, int multipart)
{
    if (multipart) {
        if (r->too_large || r->upload_error || !r->upload_f || upload_commit(r) != 0) return upload_failed(c, r);
        /* form fields are strings: turn them into the JSON request */
        char err[512];
        cJSON *o = kk_request_job_form(r->fields, r->upload_id, err, sizeof err);
        if (!o) return send_error(c, strcmp(err, "out of memory") ? 400 : 503, "validation_error", "%s", err);
        enum MHD_Result ret = create_job(s, c, o);
        cJSON_Delete(o);
        return ret;
    }
    cJSON *o = cJSON_ParseWithLength(r->body ? r->body : "", r->len);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return send_error(c, 400, "validation_error", "request body: a JSON object expected");
    }
    enum MHD_Result ret = create_job(s, c, o);
    cJSON_Delete(o);
    return ret;
}

static const char *mime_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    if (!strcmp(dot, ".png")) return "image/png";
    if (!strcmp(dot, ".ico")) return "image/x-icon";
    if (!strcmp(dot, ".json")) return "application/json";
    if (!strcmp(dot, ".m4b") || !strcmp(dot, ".m4a")) return "audio/mp4"; /* book jobs' outputs */
    return "application/octet-stream";
}

static enum MHD_Result send_file(struct MHD_Connection *c, const char *path, const char *type, const char *download)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) close(fd);
        return send_error(c, 404, "not_found", "no such file");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!r) { close(fd); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", type);
    if (download) {
        char cd[300];
        snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", download);
        MHD_add_response_header(r, "Content-Disposition", cd);
    }
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle_jobs(kk_server *s, struct MHD_Connection *c, const char *method, const char *rest)
{
    /* rest: "" | "<id>" | "<id>/cancel" | "<id>/resume" | "<id>/download" */
    if (!*rest) {
        if (strcmp(method, "GET")) return send_error(c, 405, "method_not_allowed", "GET or POST /v1/jobs");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "jobs", kk_jobs_list_json(s->jobs));
        return send_json(c, 200, o);
    }
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!is_id(rest, idlen)) return send_error(c, 404, "not_found", "no such job");
    char id[33];
    memcpy(id, rest, 32);
    id[32] = 0;
    const char *action = slash ? slash + 1 : "";
    if (!*action) {
        if (strcmp(method, "GET")) return send_error(c, 405, "method_not_allowed", "GET /v1/jobs/{id}");
        cJSON *o = kk_jobs_get_json(s->jobs, id, 1);
        return o ? send_json(c, 200, o) : send_error(c, 404, "not_found", "no such job");
    }
    if (!strcmp(action, "cancel") || !strcmp(action, "resume")) {
        if (strcmp(method, "POST")) return send_error(c, 405, "method_not_allowed", "POST /v1/jobs/{id}/%s", action);
        int cancel = !strcmp(action, "cancel");
        int r = cancel ? kk_jobs_cancel(s->jobs, id) : kk_jobs_resume(s->jobs, id);
        if (cancel && r == 0) { /* running here: stop its chunk now rather than at its end */
            pthread_mutex_lock(&s->rm);
            for (size_t i = 0; i < sizeof s->running / sizeof s->running[0]; i++)
                if (!strcmp(s->running[i].id, id)) atomic_store(&s->running[i].cancel, 1);
            pthread_mutex_unlock(&s->rm);
        }
        if (r == 1) return send_error(c, 404, "not_found", "no such job");
        if (r == 2)
            return send_error(c, 409, "conflict", cancel ? "only a queued or running job can be cancelled"
                                                         : "only a cancelled or failed job can be resumed");
        if (!cancel) pthread_cond_broadcast(&s->sc);
        return send_json(c, 200, kk_jobs_get_json(s->jobs, id, 0));
    }
    if (!strcmp(action, "download")) {
        if (strcmp(method, "GET")) return send_error(c, 405, "method_not_allowed", "GET /v1/jobs/{id}/download");
        char *path = NULL, *name = NULL, *state = NULL;
        if (kk_jobs_output(s->jobs, id, &path, &name, &state) != KOKORO_OK)
            return send_error(c, 404, "not_found", "no such job");
        enum MHD_Result ret = strcmp(state, "completed")
                                  ? send_error(c, 409, "conflict", "job is %s, not completed", state)
                                  : send_file(c, path, mime_of(path), name);
        free(path); free(name); free(state);
        return ret;
    }
    return send_error(c, 404, "not_found", "no such route");
}

/* The document's own cover, for the UI's preview (takes path). */
static enum MHD_Result send_cover(kk_server *s, struct MHD_Connection *c, char *path)
{
    uint8_t *img = NULL;
    size_t len = 0;
    const char *mime = NULL;
    kokoro_status st = kk_backend_cover(s->be, path, &img, &len, &mime);
    free(path);
    if (st != KOKORO_OK || !img) {
        free(img);
        return send_error(c, 404, "not_found", "%s", st != KOKORO_OK ? kokoro_last_error() : "the document has no cover");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, img, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(img); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", mime);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- static files ---- */

static enum MHD_Result handle_static(kk_server *s, struct MHD_Connection *c, const char *url)
{
    if (!s->web_real) return send_error(c, 404, "not_found", "no such route");
    if (!strcmp(url, "/")) url = "/index.html";
    /* MHD has already percent-decoded the path, so "%2e%2e" arrives as "..":
     * refuse any dot segment, backslash or doubled slash, then check the
     * resolved path is still inside web_dir (symlinks included). */
    if (url[0] != '/' || strstr(url, "//") || strchr(url, '\\') || strlen(url) > 1024)
        return send_error(c, 404, "not_found", "no such file");
    for (const char *p = url; *p; p++) {
        if (*p == '/' && p[1] == '.') return send_error(c, 404, "not_found", "no such file");
        if ((unsigned char)*p < 0x20) return send_error(c, 404, "not_found", "no such file");
    }
    char *full = path_join(s->web_real, url + 1), real[PATH_MAX];
    if (!full) return MHD_NO;
    char *rp = realpath(full, real);
    free(full);
    size_t wl = strlen(s->web_real);
    if (!rp || strncmp(real, s->web_real, wl) || real[wl] != '/')
        return send_error(c, 404, "not_found", "no such file");
    return send_file(c, real, mime_of(real), NULL);
}

/* ---- dispatch ---- */

static int is_multipart(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    return ct && !strncasecmp(ct, "multipart/form-data", 19);
}

static enum MHD_Result route(kk_server *s, struct MHD_Connection *c, const char *url, const char *method, req *r)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/health")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "healthy");
        return send_json(c, 200, o);
    }
    int api = !strncmp(url, "/v1/", 4) || !strncmp(url, "/dev/", 5);
    if (!api) {
        if (!get) return send_error(c, 405, "method_not_allowed", "%s %s", method, url);
        return handle_static(s, c, url);
    }
    if (!auth_ok(s, c)) {
        cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "detail");
        cJSON_AddStringToObject(d, "error", "unauthorized");
        cJSON_AddStringToObject(d, "message", "a valid 'Authorization: Bearer <key>' header is required");
        cJSON_AddStringToObject(d, "type", "invalid_request_error");
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
        enum MHD_Result ret = MHD_queue_response(c, 401, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r->too_large) {
        upload_discard(r);
        return send_error(c, 413, "too_large", "%s", r->why);
    }
    if (!strcmp(url, "/v1/audio/speech") || !strcmp(url, "/dev/captioned_speech")) {
        if (!post) return send_error(c, 405, "method_not_allowed", "POST %s", url);
        return handle_speech(s, c, r, url[1] == 'd');
    }
    if (!strcmp(url, "/v1/audio/voices")) {
        if (!get) return send_error(c, 405, "method_not_allowed", "GET %s", url);
        const char *legacy = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "legacy");
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "voices");
        for (size_t i = 0; i < kk_backend_voice_count(s->be); i++) {
            const char *n = kk_backend_voice_name(s->be, i);
            if (legacy && !strcmp(legacy, "true")) {
                cJSON_AddItemToArray(a, cJSON_CreateString(n));
                continue;
            }
            cJSON *v = cJSON_CreateObject();
            cJSON_AddStringToObject(v, "id", n);
            cJSON_AddStringToObject(v, "name", n);
            cJSON_AddItemToArray(a, v);
        }
        return send_json(c, 200, o);
    }
    if (!strcmp(url, "/v1/languages")) {
        size_t n;
        const kk_backend_lang *l = kk_backend_languages(s->be, &n);
        cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "languages");
        for (size_t i = 0; i < n; i++) {
            cJSON *v = cJSON_CreateObject();
            cJSON_AddStringToObject(v, "code", l[i].code);
            cJSON_AddStringToObject(v, "name", l[i].name);
            cJSON_AddItemToArray(a, v);
        }
        return send_json(c, 200, o);
    }
    if (!strncmp(url, "/v1/models", 10) && (url[10] == 0 || url[10] == '/')) {
        if (!get) return send_error(c, 405, "method_not_allowed", "GET %s", url);
        const char *want = url[10] ? url + 11 : NULL;
        cJSON *list = cJSON_CreateArray();
        for (size_t i = 0; i < N_MODELS; i++) {
            if (want && strcmp(want, MODELS[i])) continue;
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "id", MODELS[i]);
            cJSON_AddStringToObject(m, "object", "model");
            cJSON_AddNumberToObject(m, "created", 1735689600);
            cJSON_AddStringToObject(m, "owned_by", "kokoro");
            if (want) { cJSON_Delete(list); return send_json(c, 200, m); }
            cJSON_AddItemToArray(list, m);
        }
        if (want) { cJSON_Delete(list); return send_error(c, 404, "not_found", "model '%.100s' not found", want); }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "list");
        cJSON_AddItemToObject(o, "data", list);
        return send_json(c, 200, o);
    }
    if (!strcmp(url, "/v1/files")) {
        if (!post || !is_multipart(c)) return send_error(c, 405, "method_not_allowed", "POST multipart/form-data to /v1/files");
        return handle_upload(s, c, r);
    }
    if (!strncmp(url, "/v1/files/", 10)) {
        const char *id = url + 10, *sl = strchr(id, '/');
        if (!get || !sl || (strcmp(sl, "/chapters") && strcmp(sl, "/cover")) || !is_id(id, (size_t)(sl - id)))
            return send_error(c, 404, "not_found", "GET /v1/files/{id}/chapters or /v1/files/{id}/cover");
        char idb[33], err[1024] = "";
        memcpy(idb, id, 32);
        idb[32] = 0;
        char *path = upload_path(s, idb, NULL);
        if (!path) return send_error(c, 404, "not_found", "no such upload");
        if (!strcmp(sl, "/cover")) return send_cover(s, c, path);
        cJSON *ch = chapters_json(s, path, err, sizeof err, NULL);
        free(path);
        if (!ch) return send_error(c, 415, "unsupported_document", "%s", err);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "chapters", ch);
        return send_json(c, 200, o);
    }
    if (!strcmp(url, "/v1/jobs") && post) return handle_job_post(s, c, r, is_multipart(c));
    if (!strcmp(url, "/v1/jobs")) return handle_jobs(s, c, method, "");
    if (!strncmp(url, "/v1/jobs/", 9)) return handle_jobs(s, c, method, url + 9);
    return send_error(c, 404, "not_found", "no such route: %s %.200s", method, url);
}

#define DRAIN_MAX ((size_t)1 << 20)

static int wants_upload(const char *url, const char *method)
{
    return !strcmp(method, "POST") && (!strcmp(url, "/v1/files") || !strcmp(url, "/v1/jobs"));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    kk_server *s = cls;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        *con_cls = r;
        int multipart = wants_upload(url, method) && is_multipart(c);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        /* a multipart body: the file, the fields and the parts' headers */
        size_t limit = multipart ? s->cfg.max_upload + MAX_FIELD_BYTES : s->cfg.max_body;
        r->limit = limit;
        if (cl && strtoull(cl, NULL, 10) > limit) {
            /* answer before reading a byte of an oversized body; MHD then closes */
            r->early = 1;
            return send_error(c, 413, "too_large", "request body of %s bytes; the limit is %zu", cl, limit);
        }
        if (multipart && auth_ok(s, c)) {
            r->pp = MHD_create_post_processor(c, 64 * 1024, post_iter, r);
            if (!r->pp) return send_error(c, 400, "validation_error", "malformed multipart/form-data request");
        }
        if (!r->pp) r->limit = s->cfg.max_body; /* kept in memory: a 401's body too */
        return MHD_YES;
    }
    if (r->early) { *upload_data_size = 0; return MHD_YES; }
    if (*upload_data_size) {
        /* A chunked body has no Content-Length to refuse up front: count it as it
         * arrives. Past the limit it is read and dropped, so the client still gets
         * its 413 (MHD answers only after the whole body); a client that goes on
         * sending 1 MiB beyond that is cut off instead of holding the thread. */
        r->seen += *upload_data_size;
        if (r->seen > r->limit) {
            set_too_large(r, "request body larger than %zu bytes", r->limit);
            if (r->seen - r->limit > DRAIN_MAX) return MHD_NO;
        }
        if (r->pp) {
            if (!r->too_large && MHD_post_process(r->pp, upload_data, *upload_data_size) != MHD_YES)
                r->upload_error = 1;
        } else if (!r->too_large) {
            if (r->cap - r->len < *upload_data_size + 1) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap - r->len < *upload_data_size + 1) cap *= 2;
                char *g = realloc(r->body, cap);
                if (!g) return MHD_NO;
                r->body = g;
                r->cap = cap;
            }
            memcpy(r->body + r->len, upload_data, *upload_data_size);
            r->len += *upload_data_size;
            r->body[r->len] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return route(s, c, url, method, r);
}

/* ---- book job workers ---- */

typedef struct job_run {
    kk_server *s;
    const char *id;
    struct timespec last;
} job_run;

static double elapsed(struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d = (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) * 1e-9;
    *since = now;
    return d;
}

static int on_book_progress(void *ud, size_t done, size_t total, int chapter, const char *title, double secs)
{
    job_run *jr = ud;
    int ours = 0;
    if (kk_jobs_progress(jr->s->jobs, jr->id, jr->s->owner, (long)done, (long)total, chapter, title,
                         elapsed(&jr->last), secs, &ours) != KOKORO_OK)
        return 1;
    return !ours; /* cancelled, or no longer ours: stop at this chunk boundary */
}

static void run_job(kk_server *s, kk_job_claimed *j)
{
    cJSON *o = cJSON_Parse(j->options_json);
    int bad = 0;
    const char *voice = json_str(o, "voice", "af_heart", &bad);
    const char *lang = json_str(o, "lang_code", NULL, &bad);
    cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "speed"), *chs = cJSON_GetObjectItemCaseSensitive(o, "chapters");
    int sel[4096];
    size_t nsel = 0;
    cJSON *e;
    if (cJSON_IsArray(chs)) cJSON_ArrayForEach(e, chs) if (nsel < 4096) sel[nsel++] = e->valueint;
    kk_book_request br = {.input_path = j->input_path, .voice = voice, .speed = cJSON_IsNumber(sp) ? (float)sp->valuedouble : 1.0f,
                          .lang = lang, .chapters = nsel ? sel : NULL, .n_chapters = nsel,
                          .title = json_str(o, "title", NULL, &bad), .author = json_str(o, "author", NULL, &bad),
                          .work_dir = j->work_dir, .output_path = j->output_path};
    const char *cover = json_str(o, "cover_file_id", NULL, &bad);
    char *cover_path = cover ? upload_path(s, cover, NULL) : NULL;
    br.cover_path = cover_path;
    job_run jr = {.s = s, .id = j->id};
    clock_gettime(CLOCK_MONOTONIC, &jr.last);
    /* a slot whose flag a user's cancel or the server's stop raises (job_workers <= 64) */
    struct running_job *slot = NULL;
    pthread_mutex_lock(&s->rm);
    for (size_t i = 0; !slot && i < sizeof s->running / sizeof s->running[0]; i++)
        if (!s->running[i].id[0]) slot = &s->running[i];
    if (slot) {
        snprintf(slot->id, sizeof slot->id, "%s", j->id);
        atomic_store(&slot->cancel, atomic_load(&s->stop_jobs));
    }
    pthread_mutex_unlock(&s->rm);
    kokoro_status st = kk_backend_book_run(s->be, &br, (size_t)j->done_chunks, on_book_progress, &jr,
                                           slot ? &slot->cancel : &s->stop_jobs);
    if (slot) {
        pthread_mutex_lock(&s->rm);
        slot->id[0] = 0;
        pthread_mutex_unlock(&s->rm);
    }
    if (st == KOKORO_OK) {
        kk_jobs_finish(s->jobs, j->id, s->owner, "completed", NULL);
    } else if (st == KOKORO_ERR_CANCELLED) {
        /* cancelled by a user: the state says so already; stopping: hand the job back */
        if (atomic_load(&s->stop_jobs)) kk_jobs_finish(s->jobs, j->id, s->owner, "queued", NULL);
    } else {
        kk_jobs_finish(s->jobs, j->id, s->owner, "failed", kokoro_last_error());
    }
    free(cover_path);
    cJSON_Delete(o);
}

static void wait_s(kk_server *s, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)((secs - (long)secs) * 1e9);
    ts.tv_sec += (time_t)secs + ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&s->sm);
    if (!atomic_load(&s->stop_jobs)) pthread_cond_timedwait(&s->sc, &s->sm, &ts);
    pthread_mutex_unlock(&s->sm);
}

static void *job_worker(void *arg)
{
    kk_server *s = arg;
    while (!atomic_load(&s->stop_jobs)) {
        kk_job_claimed j;
        int found = 0;
        if (kk_jobs_claim(s->jobs, s->owner, s->cfg.lease_s, &j, &found) != KOKORO_OK) {
            fprintf(stderr, "kokoro-server: %s\n", kokoro_last_error());
            wait_s(s, 1.0);
            continue;
        }
        if (!found) {
            /* other processes may queue jobs too: poll, but wake at once for our own */
            wait_s(s, s->cfg.lease_s < 2 ? s->cfg.lease_s / 2 : 1.0);
            continue;
        }
        run_job(s, &j);
        kk_job_claimed_free(&j);
    }
    return NULL;
}

static void *heartbeat_thread(void *arg)
{
    kk_server *s = arg;
    while (!atomic_load(&s->stop_jobs)) {
        if (kk_jobs_heartbeat(s->jobs, s->owner, s->cfg.lease_s) != KOKORO_OK)
            fprintf(stderr, "kokoro-server: heartbeat: %s\n", kokoro_last_error());
        wait_s(s, s->cfg.lease_s / 3);
    }
    return NULL;
}

/* ---- lifecycle ---- */

kk_server_config kk_server_config_default(void)
{
    kk_server_config c = {0};
    c.host = "127.0.0.1";
    c.port = 8880; /* Kokoro-FastAPI's port: clients configured for it work unchanged */
    c.data_dir = "kokoro-data";
    c.workers = 2;
    c.job_workers = 1;
    c.max_body = 1u << 20;
    c.max_upload = 100u << 20;
    c.max_input = 20000;
    c.max_queue = 64;
    c.lease_s = 30;
    return c;
}

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

kokoro_status kk_server_start(const kk_server_config *cfg, kk_server **out)
{
    if (cfg->workers < 1 || cfg->workers > 256 || cfg->job_workers < 0 || cfg->job_workers > 64 || cfg->lease_s <= 0)
        return kk_error(KOKORO_ERR_INVALID_ARG, "workers 1..256, job workers 0..64 and a positive lease expected");
    kk_server *s = calloc(1, sizeof *s);
    if (!s) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    pthread_mutex_init(&s->qm, NULL);
    pthread_cond_init(&s->qc, NULL);
    pthread_mutex_init(&s->sm, NULL);
    pthread_mutex_init(&s->rm, NULL);
    pthread_cond_init(&s->sc, NULL);
    kokoro_status st = KOKORO_OK;
    s->data_dir = strdup(cfg->data_dir);
    s->api_key = cfg->api_key && *cfg->api_key ? strdup(cfg->api_key) : NULL;
    if (!s->data_dir) { st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); goto fail; }
    const char *subs[] = {"", "/uploads", "/work", "/outputs"};
    for (size_t i = 0; i < 4; i++) {
        char *d = malloc(strlen(s->data_dir) + 16);
        if (!d) { st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); goto fail; }
        sprintf(d, "%s%s", s->data_dir, subs[i]);
        int rc = mkdir_p(d);
        free(d);
        if (rc != 0) { st = kk_error(KOKORO_ERR_IO, "%s: cannot create the data folder: %s", s->data_dir, strerror(errno)); goto fail; }
    }
    if (cfg->web_dir) {
        char real[PATH_MAX];
        if (!realpath(cfg->web_dir, real)) { st = kk_error(KOKORO_ERR_IO, "%s: web folder: %s", cfg->web_dir, strerror(errno)); goto fail; }
        s->web_real = strdup(real);
    }
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    char rid[33];
    random_id(rid);
    snprintf(s->owner, sizeof s->owner, "%.40s:%d:%.8s", host, (int)getpid(), rid);
    kk_backend_config bc = cfg->backend;
    char *tmpdir = path_join(s->data_dir, "work"); /* flac/aac responses are encoded here */
    if (!bc.tmp_dir) bc.tmp_dir = tmpdir;
    st = kk_backend_open(&bc, &s->be);
    free(tmpdir);
    if (st != KOKORO_OK) goto fail;
    char *qpath = path_join(s->data_dir, "queue.db");
    st = qpath ? kk_jobs_open(qpath, &s->jobs) : kk_error(KOKORO_ERR_NOMEM, "out of memory");
    free(qpath);
    if (st != KOKORO_OK) goto fail;

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        st = kk_error(KOKORO_ERR_INVALID_ARG, "--host '%s': an IPv4 address expected (127.0.0.1, 0.0.0.0)", cfg->host);
        goto fail;
    }
    s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
    s->job_threads = calloc((size_t)cfg->job_workers + 1, sizeof *s->job_threads);
    if (!s->workers || !s->job_threads) { st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&s->workers[i], NULL, speech_worker, s) != 0) { st = kk_error(KOKORO_ERR_INTERNAL, "cannot start a worker thread"); goto fail; }
        s->n_workers++;
    }
    s->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                              NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
    if (!s->mhd) {
        st = kk_error(KOKORO_ERR_IO, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    for (int i = 0; i < cfg->job_workers; i++) {
        if (pthread_create(&s->job_threads[i], NULL, job_worker, s) != 0) { st = kk_error(KOKORO_ERR_INTERNAL, "cannot start a job thread"); goto fail; }
        s->n_job_threads++;
    }
    if (cfg->job_workers > 0) {
        if (pthread_create(&s->heartbeat, NULL, heartbeat_thread, s) != 0) { st = kk_error(KOKORO_ERR_INTERNAL, "cannot start the heartbeat"); goto fail; }
        s->heartbeat_started = 1;
    }
    *out = s;
    return KOKORO_OK;
fail:
    kk_server_stop(s);
    return st;
}

int kk_server_port(const kk_server *s) { return s->port; }

void kk_server_stop(kk_server *s)
{
    if (!s) return;
    /* jobs first: a running job stops at its next chunk and goes back to the queue */
    pthread_mutex_lock(&s->sm);
    atomic_store(&s->stop_jobs, 1);
    pthread_cond_broadcast(&s->sc);
    pthread_mutex_unlock(&s->sm);
    pthread_mutex_lock(&s->rm);
    for (size_t i = 0; i < sizeof s->running / sizeof s->running[0]; i++) atomic_store(&s->running[i].cancel, 1);
    pthread_mutex_unlock(&s->rm);
    for (int i = 0; i < s->n_job_threads; i++) pthread_join(s->job_threads[i], NULL);
    if (s->heartbeat_started) pthread_join(s->heartbeat, NULL);
    /* then the speech queue: cancel what waits, let what runs end at a chunk */
    pthread_mutex_lock(&s->qm);
    s->stopping = 1;
    for (task *t = s->head; t; t = t->next) atomic_store(&t->cancel, 1);
    pthread_cond_broadcast(&s->qc);
    pthread_mutex_unlock(&s->qm);
    if (s->mhd) MHD_stop_daemon(s->mhd);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    kk_jobs_close(s->jobs);
    kk_backend_close(s->be);
    free(s->workers);
    free(s->job_threads);
    free(s->data_dir);
    free(s->web_real);
    free(s->api_key);
    pthread_mutex_destroy(&s->qm);
    pthread_cond_destroy(&s->qc);
    pthread_mutex_destroy(&s->sm);
    pthread_mutex_destroy(&s->rm);
    pthread_cond_destroy(&s->sc);
    free(s);
}
