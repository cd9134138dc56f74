/* Captions from the predicted durations: cues of about a sentence (split at
 * ~84 characters), word times inside them (WebVTT timestamps), positions that
 * already account for trimmed silence and inserted pauses because they come
 * from the joined stream. Written to a temp file and renamed at close. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.h"
#include "kokoro.h"

#define CUE_CHARS 84

struct kokoro_captions {
    FILE *f;
    char *path, *tmp;
    int vtt;
    size_t cues;
};

kokoro_status kokoro_captions_open(const char *path, kokoro_captions **out)
{
    if (!path || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_captions_open: NULL argument");
    *out = NULL;
    const char *dot = strrchr(path, '.');
    int vtt;
    if (dot && !strcasecmp(dot, ".vtt")) vtt = 1;
    else if (dot && !strcasecmp(dot, ".srt")) vtt = 0;
    else return kk_error(KOKORO_ERR_INVALID_ARG, "%s: captions must be a .srt or .vtt file", path);
    kokoro_captions *c = calloc(1, sizeof *c);
    size_t n = strlen(path) + 8;
    if (!c || !(c->path = strdup(path)) || !(c->tmp = malloc(n))) {
        if (c) free(c->path);
        free(c);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    snprintf(c->tmp, n, "%s.tmp", path);
    c->vtt = vtt;
    if (!(c->f = fopen(c->tmp, "w"))) {
        kokoro_status st = kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", c->tmp, strerror(errno));
        free(c->tmp);
        free(c->path);
        free(c);
        return st;
    }
    if (vtt) fputs("WEBVTT\n\n", c->f);
    *out = c;
    return KOKORO_OK;
}

static void stamp(char *buf, size_t size, uint64_t sample, int vtt)
{
    uint64_t ms = (sample * 1000 + KOKORO_SAMPLE_RATE / 2) / KOKORO_SAMPLE_RATE;
    snprintf(buf, size, "%02llu:%02llu:%02llu%c%03llu", (unsigned long long)(ms / 3600000),
             (unsigned long long)(ms / 60000 % 60), (unsigned long long)(ms / 1000 % 60), vtt ? '.' : ',',
             (unsigned long long)(ms % 1000));
}

/* Writes text[a, b) with runs of whitespace folded to one space (none at the
 * cue's start; *space carries a pending one across calls); VTT escapes. */
static void put_text(FILE *f, const char *text, size_t a, size_t b, int vtt, int *space, int *started)
{
    for (size_t i = a; i < b; i++) {
        char ch = text[i];
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
            *space = *started;
            continue;
        }
        if (*space) fputc(' ', f);
        *space = 0;
        *started = 1;
        if (vtt && ch == '<') fputs("&lt;", f);
        else if (vtt && ch == '>') fputs("&gt;", f);
        else if (vtt && ch == '&') fputs("&amp;", f);
        else fputc(ch, f);
    }
}

static int ends_sentence(const char *text, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n') return 1;
    return 0;
}

static kokoro_status cue(kokoro_captions *c, const char *text, const kokoro_word_time *w, size_t n, uint64_t offset)
{
    char t0[32], t1[32];
    stamp(t0, sizeof t0, offset + w[0].start, c->vtt);
    stamp(t1, sizeof t1, offset + w[n - 1].end, c->vtt);
    c->cues++;
    if (!c->vtt) fprintf(c->f, "%zu\n", c->cues);
    fprintf(c->f, "%s --> %s\n", t0, t1);
    /* the cue's text runs to the end of the sentence's punctuation */
    size_t end = w[n - 1].src_end;
    while (text[end] && strchr(".,;:!?\"')]\xe2\x80\x9d", text[end]) && end - w[n - 1].src_end < 4) end++;
    int space = 0, started = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->vtt && i > 0) {
            if (space) fputc(' ', c->f), space = 0;
            stamp(t0, sizeof t0, offset + w[i].start, 1);
            fprintf(c->f, "<%s>", t0);
        }
        size_t b = i + 1 < n ? w[i + 1].src_begin : end;
        put_text(c->f, text, w[i].src_begin, b, c->vtt, &space, &started);
    }
    fputs("\n\n", c->f);
    return ferror(c->f) ? kk_error(KOKORO_ERR_IO, "%s: write error", c->tmp) : KOKORO_OK;
}

kokoro_status kokoro_captions_add(kokoro_captions *c, const char *text, const kokoro_piece *p, uint64_t offset)
{
    if (!c || !text || !p) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_captions_add: NULL argument");
    size_t first = 0;
    for (size_t i = 0; i < p->n_words; i++) {
        const kokoro_word_time *w = p->words;
        int last = i + 1 == p->n_words;
        size_t chars = w[i].src_end - w[first].src_begin;
        int sentence = !last && ends_sentence(text, w[i].src_end, w[i + 1].src_begin);
        if (last || sentence || chars >= CUE_CHARS) {
            kokoro_status st = cue(c, text, w + first, i - first + 1, offset);
            if (st != KOKORO_OK) return st;
            first = i + 1;
        }
    }
    return KOKORO_OK;
}

kokoro_status kokoro_captions_close(kokoro_captions *c)
{
    if (!c) return KOKORO_OK;
    kokoro_status st = KOKORO_OK;
    if (fflush(c->f) != 0 || fsync(fileno(c->f)) != 0) st = kk_error(KOKORO_ERR_IO, "%s: %s", c->tmp, strerror(errno));
    if (fclose(c->f) != 0 && st == KOKORO_OK) st = kk_error(KOKORO_ERR_IO, "%s: %s", c->tmp, strerror(errno));
    if (st == KOKORO_OK && rename(c->tmp, c->path) != 0)
        st = kk_error(KOKORO_ERR_IO, "cannot rename %s to %s: %s", c->tmp, c->path, strerror(errno));
    if (st != KOKORO_OK) unlink(c->tmp);
    free(c->tmp);
    free(c->path);
    free(c);
    return st;
}

void kokoro_captions_abort(kokoro_captions *c)
{
    if (!c) return;
    fclose(c->f);
    unlink(c->tmp);
    free(c->tmp);
    free(c->path);
    free(c);
}
