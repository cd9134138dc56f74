/* kokoro-tts --split-output DIR --merge-chunks: joins each chapter's chunk
 * files into one file per chapter (the seed's merge, done with libsndfile
 * and our writer: atomic, any output format). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kokoro.h"

static int is_chapter_dir(const char *name, unsigned *num)
{
    char tail;
    return sscanf(name, "chapter_%u%c", num, &tail) == 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void title_of(const char *chapter_dir, char *title, size_t size)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/info.txt", chapter_dir);
    FILE *f = fopen(p, "r");
    title[0] = 0;
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Title: ", 7)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(title, size, "%s", line + 7);
        }
    if (f) fclose(f);
}

static void safe_name(const char *t, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; t[i] && j + 1 < size && j < 80; i++) {
        char c = t[i];
        out[j++] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ? c : '_';
    }
    out[j] = 0;
}

static int merge_one(const char *dir, const char *name, unsigned num, const kokoro_writer_options *wo, int quiet,
                     int (*stop)(void))
{
    char cdir[PATH_MAX], title[1100], safe[128], out[PATH_MAX + 300];
    snprintf(cdir, sizeof cdir, "%s/%s", dir, name);
    title_of(cdir, title, sizeof title);
    safe_name(title[0] ? title : name, safe, sizeof safe);
    const char *ext = kokoro_audio_format_name(wo->format);
    snprintf(out, sizeof out, "%s/Chapter_%03u_%s.%s", dir, num, safe, ext);
    DIR *d = opendir(cdir);
    if (!d) {
        fprintf(stderr, "kokoro-tts: %s: %s\n", cdir, strerror(errno));
        return 1;
    }
    char **chunks = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned k;
        char tail[16];
        if (sscanf(de->d_name, "chunk_%u.%15s", &k, tail) == 2 && !strcmp(tail, ext)) {
            char **c = realloc(chunks, (n + 1) * sizeof *c);
            if (!c) break;
            chunks = c;
            chunks[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(chunks, n, sizeof *chunks, cmp_str);
    int rc = 0;
    kokoro_writer *w = NULL;
    if (n == 0) {
        fprintf(stderr, "kokoro-tts: %s has no chunk_*.%s files\n", cdir, ext);
        rc = 1;
    } else if (kokoro_writer_open(out, wo, &w) != KOKORO_OK) {
        fprintf(stderr, "kokoro-tts: %s\n", kokoro_last_error());
        rc = 1;
    }
    float buf[8192];
    for (size_t i = 0; i < n && rc == 0; i++) {
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", cdir, chunks[i]);
        SF_INFO info = {0};
        SNDFILE *sf = sf_open(p, SFM_READ, &info);
        if (!sf || info.channels != 1 || info.samplerate != KOKORO_SAMPLE_RATE) {
            fprintf(stderr, "kokoro-tts: %s: cannot read it as 24 kHz mono audio%s%s\n", p, sf ? "" : ": ",
                    sf ? "" : sf_strerror(NULL));
            if (sf) sf_close(sf);
            rc = 1;
            break;
        }
        sf_count_t k;
        while (rc == 0 && (k = sf_readf_float(sf, buf, 8192)) > 0)
            if (stop && stop()) {
                rc = 1;
            } else if (kokoro_writer_write(w, buf, (size_t)k) != KOKORO_OK) {
                fprintf(stderr, "kokoro-tts: %s\n", kokoro_last_error());
                rc = 1;
            }
        sf_close(sf);
    }
    if (w && rc == 0 && kokoro_writer_close(w) != KOKORO_OK) {
        fprintf(stderr, "kokoro-tts: %s\n", kokoro_last_error());
        rc = 1;
    } else if (w && rc != 0) {
        kokoro_writer_abort(w);
    }
    if (rc == 0 && !quiet) fprintf(stderr, "kokoro-tts: merged %zu chunks into %s\n", n, out);
    for (size_t i = 0; i < n; i++) free(chunks[i]);
    free(chunks);
    return rc;
}

int kk_cli_merge_chunks(const char *dir, const kokoro_writer_options *wo, int quiet, int (*stop)(void))
{
    if (wo->format == KOKORO_AUDIO_M4A || wo->format == KOKORO_AUDIO_M4B || wo->format == KOKORO_AUDIO_PCM) {
        fprintf(stderr, "kokoro-tts: --merge-chunks reads wav, flac, mp3 or opus chunks, not %s\n",
                kokoro_audio_format_name(wo->format));
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "kokoro-tts: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    unsigned num;
    while ((de = readdir(d)))
        if (is_chapter_dir(de->d_name, &num)) {
            char **c = realloc(names, (n + 1) * sizeof *c);
            if (!c) break;
            names = c;
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int rc = n ? 0 : 1;
    if (!n) fprintf(stderr, "kokoro-tts: %s has no chapter_NNN folders (made by --split-output)\n", dir);
    for (size_t i = 0; i < n && rc == 0; i++) {
        is_chapter_dir(names[i], &num);
        rc = merge_one(dir, names[i], num, wo, quiet, stop);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}
