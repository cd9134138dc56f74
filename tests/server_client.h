/* Helpers for the kokoro-server tests: start the real server binary on a
 * free loopback port, talk HTTP to it with libcurl. Header-only (static
 * inline) because every tests/test_*.c is its own program. */
#ifndef KK_TEST_SERVER_CLIENT_H
#define KK_TEST_SERVER_CLIENT_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct test_server {
    pid_t pid;
    int port;
    char base[64]; /* http://127.0.0.1:PORT */
} test_server;

static inline double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Starts kokoro-server with --test-weights, the repo's test voices, port 0
 * and the given extra arguments (NULL-terminated); waits for its banner. */
static inline int server_start(test_server *s, const char *data_dir, const char *const *extra)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    const char *argv[48];
    int n = 0;
    argv[n++] = KOKORO_SERVER_PATH;
    argv[n++] = "--test-weights";
    argv[n++] = "--voices";
    argv[n++] = KOKORO_TEST_DATA "/voices";
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--data-dir";
    argv[n++] = data_dir;
    for (int i = 0; extra && extra[i] && n < 46; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[512];
    size_t len = 0;
    double t0 = now_mono();
    while (len < sizeof line - 1 && now_mono() - t0 < 120) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) continue;
        ssize_t r = read(fds[0], line + len, 1);
        if (r <= 0) break;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = 0;
    close(fds[0]);
    const char *p = strstr(line, "127.0.0.1:");
    if (!p) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "server did not start: '%s'\n", line);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(p + 10);
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

/* SIGTERM and wait; returns the exit status (0 = clean stop). */
static inline int server_stop(test_server *s)
{
    int st = -1;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static inline void server_kill9(test_server *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

typedef struct http_resp {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char ctype[128];
    double t_first, t_total; /* seconds from the request to the first / last body byte */
    double t0;
} http_resp;

static inline size_t http_write_cb(char *p, size_t sz, size_t n, void *ud)
{
    http_resp *r = ud;
    size_t k = sz * n;
    if (!r->len && k) r->t_first = now_mono() - r->t0;
    char *g = realloc(r->body, r->len + k + 1);
    if (!g) return 0;
    r->body = g;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = 0;
    return k;
}

static inline void http_free(http_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request. headers: NULL-terminated list or NULL. mime: a multipart body or NULL. */
static inline int http_req(const char *method, const char *url, const char *const *headers, const char *body,
                           size_t blen, curl_mime *mime, http_resp *r)
{
    memset(r, 0, sizeof *r);
    r->body = calloc(1, 1);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    struct curl_slist *h = NULL;
    for (int i = 0; headers && headers[i]; i++) h = curl_slist_append(h, headers[i]);
    if (body) h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send "..": the server must refuse it, not curl */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    if (mime) curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    r->t0 = now_mono();
    CURLcode rc = curl_easy_perform(c);
    r->t_total = now_mono() - r->t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) fprintf(stderr, "curl %s %s: %s\n", method, url, curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

static inline long http_get(const test_server *s, const char *path, http_resp *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    if (http_req("GET", url, NULL, NULL, 0, NULL, r) != 0) return -1;
    return r->status;
}

static inline long http_post(const test_server *s, const char *path, const char *json, http_resp *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    if (http_req("POST", url, NULL, json, strlen(json), NULL, r) != 0) return -1;
    return r->status;
}

/* multipart POST: a file under "file" (may be NULL) and name=value fields */
static inline long http_upload(const test_server *s, const char *path, const char *file, const char *const *fields,
                               http_resp *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    CURL *dummy = curl_easy_init();
    curl_mime *m = curl_mime_init(dummy);
    if (file) {
        curl_mimepart *p = curl_mime_addpart(m);
        curl_mime_name(p, "file");
        curl_mime_filedata(p, file);
    }
    for (int i = 0; fields && fields[i]; i += 2) {
        curl_mimepart *p = curl_mime_addpart(m);
        curl_mime_name(p, fields[i]);
        curl_mime_data(p, fields[i + 1], CURL_ZERO_TERMINATED);
    }
    int rc = http_req("POST", url, NULL, NULL, 0, m, r);
    curl_mime_free(m);
    curl_easy_cleanup(dummy);
    return rc ? -1 : r->status;
}

/* A loopback TCP connection to the server (fd), or -1. */
static inline int raw_connect(const test_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* POSTs body with "Transfer-Encoding: chunked" and no Content-Length (what
 * libcurl's helpers cannot promise), in chunks of 16 KiB. Returns the
 * response's status and its raw text in *resp (malloc'd, may be NULL), or -1
 * when the connection failed or was closed before the whole body was sent. */
static inline long http_post_chunked(const test_server *s, const char *path, const char *ctype, const char *body,
                                     size_t len, char **resp)
{
    if (resp) *resp = NULL;
    int fd = raw_connect(s);
    if (fd < 0) return -1;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: close\r\n\r\n",
                     path, ctype);
    int ok = send(fd, head, (size_t)n, MSG_NOSIGNAL) == n;
    for (size_t off = 0; ok && off < len;) {
        size_t k = len - off < 16384 ? len - off : 16384;
        n = snprintf(head, sizeof head, "%zx\r\n", k);
        ok = send(fd, head, (size_t)n, MSG_NOSIGNAL) == n && send(fd, body + off, k, MSG_NOSIGNAL) == (ssize_t)k &&
             send(fd, "\r\n", 2, MSG_NOSIGNAL) == 2;
        off += k;
    }
    ok = ok && send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL) == 5;
    char *buf = NULL;
    size_t got = 0, cap = 0;
    ssize_t k = 1;
    while (ok && k > 0) {
        if (cap - got < 4097) {
            char *g = realloc(buf, cap = cap * 2 + 8192);
            if (!g) break;
            buf = g;
        }
        k = read(fd, buf + got, cap - got - 1);
        if (k > 0) got += (size_t)k;
    }
    close(fd);
    long status = -1;
    if (ok && buf && got > 12) {
        buf[got] = 0;
        if (!strncmp(buf, "HTTP/1.1 ", 9)) status = strtol(buf + 9, NULL, 10);
    }
    if (resp && status > 0) *resp = buf;
    else free(buf);
    return status;
}

static inline int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static inline uint32_t le32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

#endif
