/* Helpers for the audio tests (header-only: each test is one program). */
#ifndef KK_AUDIO_TESTUTIL_H
#define KK_AUDIO_TESTUTIL_H

#include <cJSON.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kokoro.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define SR KOKORO_SAMPLE_RATE

static inline float *at_sine(size_t n, double freq, double amp)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2.0 * M_PI * freq * (double)i / SR));
    return x;
}

/* frequency from the rising zero crossings of x[a, b) */
static inline double at_freq(const float *x, size_t a, size_t b)
{
    long first = -1, last = -1, count = 0;
    for (size_t i = a + 1; i < b; i++)
        if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
            if (first < 0) first = (long)i;
            last = (long)i;
            count++;
        }
    if (count < 2) return 0.0;
    return (double)(count - 1) * SR / (double)(last - first);
}

static inline double at_rms(const float *x, size_t a, size_t b)
{
    double s = 0.0;
    for (size_t i = a; i < b; i++) s += (double)x[i] * x[i];
    return b > a ? sqrt(s / (double)(b - a)) : 0.0;
}

/* Reads a whole file with libsndfile (mono expected); NULL on failure. */
static inline float *at_read_sndfile(const char *path, size_t *n, int *rate, int *format)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf) {
        fprintf(stderr, "sf_open(%s): %s\n", path, sf_strerror(NULL));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    float *x = malloc(cap * sizeof *x * (size_t)info.channels);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            x = realloc(x, cap * sizeof *x * (size_t)info.channels);
        }
        sf_count_t k = sf_readf_float(sf, x + len * (size_t)info.channels, 4096);
        if (k <= 0) break;
        len += (size_t)k;
    }
    if (rate) *rate = info.samplerate;
    if (format) *format = info.format;
    if (info.channels != 1) {
        fprintf(stderr, "%s: %d channels\n", path, info.channels);
        free(x);
        x = NULL;
    }
    sf_close(sf);
    *n = len;
    return x;
}

/* Decodes any file with the ffmpeg program to mono float at 24 kHz. */
static inline float *at_read_ffmpeg(const char *path, size_t *n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f f32le -ac 1 -ar %d -", path, SR);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0;
    float *x = malloc(cap * sizeof *x);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            x = realloc(x, cap * sizeof *x);
        }
        size_t k = fread(x + len, sizeof *x, 4096, p);
        if (k == 0) break;
        len += k;
    }
    if (pclose(p) != 0) {
        free(x);
        return NULL;
    }
    *n = len;
    return x;
}

/* ffprobe's JSON view of a file (chapters, format, streams). */
static inline cJSON *at_ffprobe(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffprobe -v error -show_chapters -show_format -show_streams -of json '%s'", path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int rc = pclose(p);
    cJSON *j = rc == 0 ? cJSON_Parse(buf) : NULL;
    if (!j) fprintf(stderr, "ffprobe %s failed (rc %d): %s\n", path, rc, buf);
    free(buf);
    return j;
}

static inline const char *at_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double at_json_num_str(const cJSON *o, const char *key)
{
    const char *s = at_json_str(o, key);
    return s ? atof(s) : -1.0;
}

static inline int at_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fresh empty folder under the build tree's temp area. */
static inline void at_tmpdir(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/kokoro-audio-%s-XXXXXX", tag);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

/* Number of entries in a folder besides . and .. */
static inline int at_count_entries(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static inline void at_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

#endif
