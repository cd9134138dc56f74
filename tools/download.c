/* kokoro-tts --download: the official files into the data folder, with
 * libcurl. A partial download is kept as NAME.part and resumed; a file is
 * renamed into place only after it loads. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kokoro.h"

typedef struct source {
    const char *name, *url;
    int is_model;
} source;

static const source sources[] = {
    {"kokoro-v1_0.pth", "https://huggingface.co/hexgrad/Kokoro-82M/resolve/main/kokoro-v1_0.pth", 1},
    {"voices-v1.0.bin", "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0/voices-v1.0.bin",
     0},
};

typedef struct xfer {
    const char *name;
    curl_off_t resumed;
    int bar;
} xfer;

static int on_progress(void *p, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    (void)ut, (void)un;
    xfer *x = p;
    if (!x->bar) return 0;
    double have = (double)(now + x->resumed) / 1e6, all = (double)(total + x->resumed) / 1e6;
    if (total > 0) {
        int fill = (int)(30.0 * have / all);
        char bar[31];
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r  %-16s [%s] %6.1f / %.1f MB", x->name, bar, have, all);
    } else {
        fprintf(stderr, "\r  %-16s %6.1f MB", x->name, have);
    }
    return 0;
}

static int mkdirs(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int loads(const char *path, int is_model)
{
    if (is_model) {
        kokoro_model *m;
        if (kokoro_model_load(path, &m) != KOKORO_OK) return 0;
        kokoro_model_free(m);
    } else {
        kokoro_voices *v;
        if (kokoro_voices_load(path, &v) != KOKORO_OK) return 0;
        kokoro_voices_free(v);
    }
    return 1;
}

static int fetch(const source *s, const char *dir, int quiet)
{
    char dest[4200], part[4300], url[4200];
    snprintf(dest, sizeof dest, "%s/%s", dir, s->name);
    snprintf(part, sizeof part, "%s.part", dest);
    const char *base = getenv("KOKORO_DOWNLOAD_BASE");
    if (base && *base) snprintf(url, sizeof url, "%s/%s", base, s->name);
    else snprintf(url, sizeof url, "%s", s->url);
    if (access(dest, F_OK) == 0 && loads(dest, s->is_model)) {
        if (!quiet) fprintf(stderr, "  %-16s already there: %s\n", s->name, dest);
        return 0;
    }
    struct stat sb;
    curl_off_t have = stat(part, &sb) == 0 ? (curl_off_t)sb.st_size : 0;
    FILE *f = fopen(part, "ab");
    if (!f) {
        fprintf(stderr, "kokoro-tts: cannot write %s: %s\n", part, strerror(errno));
        return 1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(f);
        fprintf(stderr, "kokoro-tts: cannot start libcurl\n");
        return 1;
    }
    xfer x = {s->name, have, !quiet && isatty(2)};
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, have);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* a stalled connection fails instead of hanging */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    if (!quiet) fprintf(stderr, "  %-16s from %s%s\n", s->name, url, have ? " (resuming)" : "");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    int ok = fclose(f) == 0;
    if (x.bar) fprintf(stderr, "\n");
    /* 416: the range starts at the end: the part file is already complete */
    if (rc != CURLE_OK && !(have > 0 && code == 416)) {
        fprintf(stderr, "kokoro-tts: downloading %s failed: %s%s\n  (the part kept in %s resumes next time)\n", url,
                err[0] ? err : curl_easy_strerror(rc), "", part);
        return 1;
    }
    if (!ok || !loads(part, s->is_model)) {
        fprintf(stderr, "kokoro-tts: %s does not load (%s); removed it, run --download again\n", part,
                kokoro_last_error());
        unlink(part);
        return 1;
    }
    if (rename(part, dest) != 0) {
        fprintf(stderr, "kokoro-tts: cannot rename %s to %s: %s\n", part, dest, strerror(errno));
        return 1;
    }
    if (!quiet) fprintf(stderr, "  %-16s verified: %s\n", s->name, dest);
    return 0;
}

int kk_cli_download(int quiet)
{
    char dir[4096];
    if (kokoro_data_dir(dir, sizeof dir) != KOKORO_OK) {
        fprintf(stderr, "kokoro-tts: %s\n", kokoro_last_error());
        return 1;
    }
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "kokoro-tts: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "kokoro-tts: cannot start libcurl\n");
        return 1;
    }
    if (!quiet) fprintf(stderr, "kokoro-tts: downloading the Kokoro v1.0 files into %s\n", dir);
    int rc = 0;
    for (size_t i = 0; i < sizeof sources / sizeof *sources && rc == 0; i++) rc = fetch(&sources[i], dir, quiet);
    curl_global_cleanup();
    if (rc == 0 && !quiet) fprintf(stderr, "kokoro-tts: done; kokoro-tts finds the files there by itself\n");
    return rc;
}
