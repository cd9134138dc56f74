/* Books: a document's chapters through the engine, into one file, a file per
 * chapter, a file per chunk, or an M4B audiobook.
 *
 * Chapters are read, spoken and written one after another (memory
 * streaming): one chapter's text and the audio in flight are all that sit in
 * memory (off: every chapter's text is read up front, and a single output
 * file's audio is held until the end, the baseline streaming is measured
 * against). For audiobooks and per-chapter output every finished chapter's
 * joined audio is kept in a work folder (raw samples + word times + a done
 * marker), so an interrupted run resumes where it stopped; the final files
 * are written only from complete chapters, and the AAC is encoded once. Each
 * chapter draws its noise from (seed, chapter index), so a resumed book is
 * the same, sample for sample, as one made in a single run. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "kokoro.h"

#define WORK_VERSION 2 /* 2: the intro's words are kept beside it (0000.txt), not in the settings */

kokoro_book_options kokoro_book_options_default(void)
{
    kokoro_book_options o;
    memset(&o, 0, sizeof o);
    o.speak = kokoro_speak_options_default();
    o.writer = kokoro_writer_options_default();
    o.skip_matter = -1;
    return o;
}

typedef struct book {
    kokoro_engine *e;
    kokoro_document *doc;
    const kokoro_book_options *o;
    size_t n;            /* chapters in the document */
    unsigned char *take; /* chapters to speak */
    char **texts;        /* with memory streaming off: every chapter read up front */
    char work[PATH_MAX];
    int use_work;
    kokoro_captions *captions;
    uint64_t caption_offset;
    /* metadata */
    char *title, *author, *narrator, *intro;
    unsigned char *cover;
    size_t cover_size;
    char lang2[3];
} book;

static uint64_t chapter_seed(uint64_t seed, size_t i)
{
    uint64_t x = seed + 0x632be59bd9b4e019ull * (uint64_t)(i + 1);
    x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[PATH_MAX + 300];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* "Chapter 3: The Road" -> "Chapter_3__The_Road", cut to 80 bytes on a character boundary */
static void safe_name(const char *title, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; title[i] && j + 1 < size && j < 80; i++) {
        unsigned char ch = (unsigned char)title[i];
        if (ch >= 0x80) { /* keep UTF-8 letters, whole sequences only */
            size_t len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
            if (j + len + 1 >= size || j + len > 80) break;
            for (size_t k = 0; k < len && title[i + k]; k++) out[j++] = title[i + k];
            i += len - 1;
        } else {
            out[j++] = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ? (char)ch : '_';
        }
    }
    out[j] = 0;
    if (!j) snprintf(out, size, "untitled");
}

/* ---- metadata ---- */

static char *joined_meta(const kokoro_document *doc, const char *key)
{
    size_t n = kokoro_document_meta_count(doc, key), len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(kokoro_document_meta(doc, key, i)) + 2;
    if (!n) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    s[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(s, n == 2 ? " & " : ", ");
        strcat(s, kokoro_document_meta(doc, key, i));
    }
    return s;
}

static kokoro_status read_file(const char *path, unsigned char **data, size_t *len, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 0 || (size_t)size > max) {
        fclose(f);
        return kk_error(KOKORO_ERR_FORMAT, "%s: %ld bytes; at most %zu", path, size, max);
    }
    *data = malloc((size_t)size + 1);
    size_t got = *data ? fread(*data, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!*data || got != (size_t)size) {
        free(*data);
        *data = NULL;
        return kk_error(KOKORO_ERR_IO, "%s: cannot read", path);
    }
    *len = got;
    return KOKORO_OK;
}

static kokoro_status gather_metadata(book *b, kokoro_metadata *m)
{
    const kokoro_book_options *o = b->o;
    memset(m, 0, sizeof *m);
    b->title = o->title ? strdup(o->title) : joined_meta(b->doc, "title");
    if (!b->title || !*b->title) { /* no title in the book: the output's name ("book.m4b" -> "book") */
        free(b->title);
        const char *base = strrchr(o->output, '/') ? strrchr(o->output, '/') + 1 : o->output;
        const char *dot = strrchr(base, '.');
        b->title = strndup(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
    }
    b->author = o->author ? strdup(o->author) : joined_meta(b->doc, "creator");
    size_t nlen = strlen(o->speak.voice) + 32;
    b->narrator = o->narrator ? strdup(o->narrator) : malloc(nlen);
    if (!o->narrator && b->narrator) snprintf(b->narrator, nlen, "Kokoro (%s)", o->speak.voice);
    m->title = b->title;
    m->author = b->author;
    m->narrator = b->narrator;
    m->date = o->year ? o->year : kokoro_document_meta(b->doc, "date", 0);
    m->genre = o->genre ? o->genre : "Audiobook";
    m->description = o->description ? o->description : kokoro_document_meta(b->doc, "description", 0);
    const char *lang = kokoro_document_meta(b->doc, "language", 0);
    if (lang && strlen(lang) >= 2 && (lang[2] == 0 || lang[2] == '-' || lang[2] == '_')) { /* "en-US" -> "en" */
        b->lang2[0] = (char)(lang[0] | 0x20), b->lang2[1] = (char)(lang[1] | 0x20), b->lang2[2] = 0;
        m->language = b->lang2;
    }
    kokoro_status st = KOKORO_OK;
    if (o->cover_path) {
        st = read_file(o->cover_path, &b->cover, &b->cover_size, 32u << 20);
        m->cover = b->cover;
        m->cover_size = b->cover_size;
    } else {
        const unsigned char *data;
        size_t len;
        const char *mime;
        if (kokoro_document_cover(b->doc, &data, &len, &mime) == KOKORO_OK && data &&
            (!strcmp(mime, "image/jpeg") || !strcmp(mime, "image/png"))) { /* MPEG-4 covers are JPEG or PNG */
            m->cover = data;
            m->cover_size = len;
        }
        kk_error_clear();
    }
    return st;
}

static char *intro_text(const book *b)
{
    if (b->o->intro_text) return strdup(b->o->intro_text);
    const char *title = b->title && *b->title ? b->title : "This audiobook";
    const char *author = b->author && *b->author ? b->author : NULL;
    /* the narrator as tagged; the default tag "Kokoro (voice)" is spoken without the voice's code name */
    const char *narrator = b->o->narrator && *b->o->narrator ? b->o->narrator : "Kokoro";
    /* sized from the parts: a book's title or author list can be any length */
    size_t size = strlen(title) + (author ? strlen(author) : 0) + strlen(narrator) + 64;
    char *s = malloc(size);
    if (!s) return NULL;
    if (author) snprintf(s, size, "%s. Written by %s. Narrated by %s.", title, author, narrator);
    else snprintf(s, size, "%s. Narrated by %s.", title, narrator);
    return s;
}

/* ---- one chapter into the work folder ---- */

typedef struct chapter_sink {
    FILE *pcm;
    FILE *words;
    int f32;
    uint64_t samples;
    kokoro_writer *w;      /* SPLIT: per-chunk files go here instead */
    const char *split_dir;
    const book *b;
    kokoro_status (*extra)(void *user, const kokoro_piece *p);
    void *extra_user;
} chapter_sink;

static kokoro_status write_samples(FILE *f, const float *x, size_t n, int f32, const char *what)
{
    if (f32) {
        if (fwrite(x, sizeof *x, n, f) != n) return kk_error(KOKORO_ERR_IO, "%s: write error: %s", what, strerror(errno));
        return KOKORO_OK;
    }
    int16_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < k; j++) {
            float v = x[i + j];
            v = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v != v ? 0.0f : v;
            buf[j] = (int16_t)(v * 32767.0f + (v >= 0 ? 0.5f : -0.5f));
        }
        if (fwrite(buf, sizeof *buf, k, f) != k) return kk_error(KOKORO_ERR_IO, "%s: write error: %s", what, strerror(errno));
        i += k;
    }
    return KOKORO_OK;
}

static kokoro_status to_work(void *user, const kokoro_piece *p)
{
    chapter_sink *s = user;
    kokoro_status st = write_samples(s->pcm, p->samples, p->n, s->f32, "work file");
    for (size_t i = 0; st == KOKORO_OK && i < p->n_words; i++)
        if (fwrite(&p->words[i], sizeof p->words[i], 1, s->words) != 1)
            st = kk_error(KOKORO_ERR_IO, "work file: write error: %s", strerror(errno));
    s->samples += p->n;
    return st;
}

static void work_path(const book *b, size_t i, const char *ext, char *out, size_t size)
{
    snprintf(out, size, "%s/%04zu.%s", b->work, i + 1, ext);
}

static int chapter_done(const book *b, size_t i, uint64_t *samples)
{
    char p[PATH_MAX + 32];
    work_path(b, i, "done", p, sizeof p);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    unsigned long long n = 0;
    int ok = fscanf(f, "%llu", &n) == 1;
    fclose(f);
    struct stat sb;
    work_path(b, i, "pcm", p, sizeof p);
    size_t per = b->o->writer.wav_float ? 4 : 2;
    if (!ok || stat(p, &sb) != 0 || (uint64_t)sb.st_size != n * per) return 0;
    *samples = n;
    return 1;
}

static kokoro_status chapter_text(book *b, size_t i, char **text, size_t *len)
{
    if (b->texts) { /* read up front */
        *text = strdup(b->texts[i]);
        *len = strlen(b->texts[i]);
        return *text ? KOKORO_OK : kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    return kokoro_document_chapter_text(b->doc, i, text, len);
}

static void report(const book *b, size_t i, const char *title, int resumed)
{
    if (b->o->chapter) b->o->chapter(b->o->speak.user, i, b->n, title, resumed);
}

/* The intro's words depend on the title, author and narrator (or
 * --intro-text): they are kept in work/0000.txt, and an intro made from
 * other words is spoken again while the chapters are kept. */
static kokoro_status write_intro_words(const book *b, const char *text, size_t len)
{
    char p[PATH_MAX + 32], tmp[PATH_MAX + 40];
    work_path(b, SIZE_MAX, "txt", p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0 || rename(tmp, p) != 0)
        return kk_error(KOKORO_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
    return KOKORO_OK;
}

static int intro_current(const book *b)
{
    char p[PATH_MAX + 32];
    work_path(b, SIZE_MAX, "txt", p, sizeof p);
    size_t len = strlen(b->intro);
    char *have = malloc(len + 2);
    FILE *f = have ? fopen(p, "rb") : NULL;
    size_t n = f ? fread(have, 1, len + 1, f) : 0; /* one byte more: a longer file differs */
    int same = f && n == len && memcmp(have, b->intro, len) == 0;
    if (f) fclose(f);
    free(have);
    return same;
}

/* Speaks one chapter (or the intro: i == SIZE_MAX) into work/NNNN.{pcm,words,done}. */
static kokoro_status speak_to_work(book *b, size_t i, const char *text, size_t len, const char *title)
{
    char pcm[PATH_MAX + 32], words[PATH_MAX + 32], done[PATH_MAX + 32], tmp[PATH_MAX + 40];
    work_path(b, i, "pcm", pcm, sizeof pcm); /* the intro, i = SIZE_MAX, is 0000 */
    work_path(b, i, "words", words, sizeof words);
    work_path(b, i, "done", done, sizeof done);
    unlink(done); /* a stale mark never vouches for the files rewritten below */
    chapter_sink s = {.f32 = b->o->writer.wav_float, .b = b};
    s.pcm = fopen(pcm, "wb");
    s.words = fopen(words, "wb");
    if (!s.pcm || !s.words) {
        if (s.pcm) fclose(s.pcm);
        if (s.words) fclose(s.words);
        return kk_error(KOKORO_ERR_IO, "%s: cannot write the work files: %s", b->work, strerror(errno));
    }
    kokoro_speak_options so = b->o->speak;
    so.seed = chapter_seed(b->o->speak.seed, i == SIZE_MAX ? 0 : i + 1);
    so.what = title;
    kokoro_status st = kokoro_engine_speak(b->e, text, len, &so, to_work, &s);
    if (fclose(s.pcm) != 0 && st == KOKORO_OK) st = kk_error(KOKORO_ERR_IO, "%s: %s", pcm, strerror(errno));
    if (fclose(s.words) != 0 && st == KOKORO_OK) st = kk_error(KOKORO_ERR_IO, "%s: %s", words, strerror(errno));
    if (st == KOKORO_OK && i == SIZE_MAX) st = write_intro_words(b, text, len);
    if (st == KOKORO_OK) {
        snprintf(tmp, sizeof tmp, "%s.tmp", done);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%llu\n", (unsigned long long)s.samples) < 0 || fclose(f) != 0 || rename(tmp, done) != 0)
            st = kk_error(KOKORO_ERR_IO, "%s: cannot mark the chapter done: %s", done, strerror(errno));
    }
    if (st != KOKORO_OK) kk_error_prefix("%s", title);
    return st;
}

/* Streams work/NNNN.pcm into w, with captions at offset `at`. */
static kokoro_status copy_work(book *b, size_t k, kokoro_writer *w, uint64_t at, const char *text)
{
    char p[PATH_MAX + 32];
    work_path(b, k, "pcm", p, sizeof p);
    FILE *f = fopen(p, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: %s", p, strerror(errno));
    int f32 = b->o->writer.wav_float;
    float x[8192];
    int16_t s16[8192];
    kokoro_status st = KOKORO_OK;
    for (;;) {
        size_t n = f32 ? fread(x, sizeof *x, 8192, f) : fread(s16, sizeof *s16, 8192, f);
        if (!f32)
            for (size_t j = 0; j < n; j++) x[j] = (float)s16[j] / 32767.0f;
        if (n == 0) break;
        if ((st = kokoro_writer_write(w, x, n)) != KOKORO_OK) break;
    }
    if (st == KOKORO_OK && ferror(f)) st = kk_error(KOKORO_ERR_IO, "%s: read error", p);
    fclose(f);
    if (st != KOKORO_OK || !b->captions || !text) return st;
    /* captions from the stored word times */
    work_path(b, k, "words", p, sizeof p);
    f = fopen(p, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: %s", p, strerror(errno));
    kokoro_word_time wt[256];
    size_t n;
    while (st == KOKORO_OK && (n = fread(wt, sizeof *wt, 256, f)) > 0) {
        size_t tl = strlen(text);
        for (size_t j = 0; j < n; j++) /* a stale words file never reads outside the text */
            if (wt[j].src_end > tl || wt[j].src_begin > wt[j].src_end) n = j;
        kokoro_piece piece = {.words = wt, .n_words = n};
        st = kokoro_captions_add(b->captions, text, &piece, at);
    }
    fclose(f);
    return st;
}

/* ---- settings fingerprint: a work folder is reused only for the same book and voice ---- */

static kokoro_status check_settings(book *b, const char *input_id)
{
    const kokoro_speak_options *s = &b->o->speak;
    char want[16384];
    snprintf(want, sizeof want,
             "kokoro-c work folder %d\ninput %s\nvoice %s\nlang %s\nspeed %.4f\nseed %llu\nnoise %d\ntrim %d\n"
             "tokens %zu %zu\npauses %d %d %d %d %d\nsamples %s\nphonemes %d\nlexicon %s\n",
             WORK_VERSION, input_id, s->voice, s->lang ? s->lang : "", (double)s->speed, (unsigned long long)s->seed,
             s->no_noise, s->no_trim, s->target_tokens, s->first_tokens, s->join.pause_ms[0], s->join.pause_ms[1],
             s->join.pause_ms[2], s->join.pause_ms[3], s->join.pause_ms[4], b->o->writer.wav_float ? "f32" : "s16",
             s->phoneme_input, s->lexicon_path ? s->lexicon_path : "");
    char path[PATH_MAX + 32], have[16384] = "";
    snprintf(path, sizeof path, "%s/settings", b->work);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(have, 1, sizeof have - 1, f);
        have[n] = 0;
        fclose(f);
        if (strcmp(have, want) == 0) return KOKORO_OK;
        rm_rf(b->work); /* another book or other settings: start again */
    }
    if (mkdir_p(b->work) != 0)
        return kk_error(KOKORO_ERR_IO, "%s: cannot create the work folder: %s", b->work, strerror(errno));
    f = fopen(path, "w");
    if (!f || fputs(want, f) < 0 || fclose(f) != 0)
        return kk_error(KOKORO_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return KOKORO_OK;
}

/* ---- the modes ---- */

static kokoro_status chapter_pause(kokoro_writer *w, const book *b)
{
    return kokoro_writer_write_silence(w, kokoro_join_pause_samples(&b->o->speak.join, KOKORO_PAUSE_CHAPTER));
}

static int wants_marks(const kokoro_writer_options *wo, const char *path)
{
    kokoro_audio_format f = wo->format != KOKORO_AUDIO_AUTO ? wo->format : kokoro_audio_format_from_path(path);
    return (f == KOKORO_AUDIO_M4A || f == KOKORO_AUDIO_M4B) && !wo->no_chapters;
}

/* Assembles the whole book from the work folder into path (chapter marks when
 * the format has them). */
static kokoro_status assemble(book *b, const char *path, const kokoro_metadata *meta)
{
    kokoro_writer_options wo = b->o->writer;
    wo.metadata = meta;
    kokoro_writer *w;
    kokoro_status st = kokoro_writer_open(path, &wo, &w);
    if (st != KOKORO_OK) return st;
    int marks = wants_marks(&wo, path);
    if (st == KOKORO_OK && b->o->captions_path) st = kokoro_captions_open(b->o->captions_path, &b->captions);
    int first = 1;
    if (st == KOKORO_OK && b->intro) {
        if (marks) st = kokoro_writer_add_chapter(w, "Introduction");
        if (st == KOKORO_OK) st = copy_work(b, (size_t)-1, w, kokoro_writer_position(w), b->intro);
        first = 0;
    }
    for (size_t i = 0; i < b->n && st == KOKORO_OK; i++) {
        if (!b->take[i]) continue;
        if (!first && (st = chapter_pause(w, b)) != KOKORO_OK) break;
        first = 0;
        kokoro_chapter_info ci;
        if ((st = kokoro_document_chapter_info(b->doc, i, &ci)) != KOKORO_OK) break;
        if (marks && (st = kokoro_writer_add_chapter(w, ci.title)) != KOKORO_OK) break;
        char *text = NULL;
        size_t len;
        if (b->captions && (st = chapter_text(b, i, &text, &len)) != KOKORO_OK) break;
        st = copy_work(b, i, w, kokoro_writer_position(w), text);
        free(text);
    }
    if (st == KOKORO_OK && b->captions) st = kokoro_captions_close(b->captions), b->captions = NULL;
    if (st != KOKORO_OK) {
        kokoro_captions_abort(b->captions);
        b->captions = NULL;
        kokoro_writer_abort(w);
        return st;
    }
    return kokoro_writer_close(w);
}

/* One file per chapter, from the work folder (skipped when it exists). */
static kokoro_status chapter_file(book *b, size_t i, const kokoro_metadata *meta, const char *ext)
{
    kokoro_chapter_info ci;
    kokoro_status st = kokoro_document_chapter_info(b->doc, i, &ci);
    if (st != KOKORO_OK) return st;
    char safe[256], path[PATH_MAX + 300];
    safe_name(ci.title, safe, sizeof safe);
    snprintf(path, sizeof path, "%s/Chapter_%03zu_%s.%s", b->o->output, i + 1, safe, ext);
    if (access(path, F_OK) == 0) return KOKORO_OK;
    kokoro_metadata m = *meta;
    m.title = ci.title;
    m.album = b->title;
    kokoro_writer_options wo = b->o->writer;
    wo.metadata = &m;
    kokoro_writer *w;
    if ((st = kokoro_writer_open(path, &wo, &w)) != KOKORO_OK) return st;
    if ((st = copy_work(b, i, w, 0, NULL)) != KOKORO_OK) {
        kokoro_writer_abort(w);
        return st;
    }
    return kokoro_writer_close(w);
}

typedef struct split_sink {
    const book *b;
    char dir[PATH_MAX];
    const char *ext;
} split_sink;

static kokoro_status to_chunk_file(void *user, const kokoro_piece *p)
{
    split_sink *s = user;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/chunk_%03zu.%s", s->dir, p->index + 1, s->ext);
    kokoro_writer *w;
    kokoro_status st = kokoro_writer_open(path, &s->b->o->writer, &w);
    if (st != KOKORO_OK) return st;
    if ((st = kokoro_writer_write(w, p->samples, p->n)) != KOKORO_OK) {
        kokoro_writer_abort(w);
        return st;
    }
    return kokoro_writer_close(w);
}

static kokoro_status render_split(book *b, const char *ext)
{
    kokoro_status st = KOKORO_OK;
    for (size_t i = 0; i < b->n && st == KOKORO_OK; i++) {
        if (!b->take[i]) continue;
        kokoro_chapter_info ci;
        if ((st = kokoro_document_chapter_info(b->doc, i, &ci)) != KOKORO_OK) break;
        split_sink s = {.b = b, .ext = ext};
        snprintf(s.dir, sizeof s.dir, "%s/chapter_%03zu", b->o->output, i + 1);
        char info[PATH_MAX + 32];
        snprintf(info, sizeof info, "%s/info.txt", s.dir);
        FILE *f = fopen(info, "r");
        char line[64] = "";
        if (f) {
            while (fgets(line, sizeof line, f))
                if (!strncmp(line, "complete", 8)) break;
            fclose(f);
        }
        if (!strncmp(line, "complete", 8)) { /* resumed: this chapter is finished */
            report(b, i, ci.title, 1);
            continue;
        }
        report(b, i, ci.title, 0);
        if (mkdir_p(s.dir) != 0) {
            st = kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", s.dir, strerror(errno));
            break;
        }
        char *text;
        size_t len;
        if ((st = chapter_text(b, i, &text, &len)) != KOKORO_OK) break;
        kokoro_speak_options so = b->o->speak;
        so.seed = chapter_seed(b->o->speak.seed, i + 1);
        so.what = ci.title;
        st = kokoro_engine_speak(b->e, text, len, &so, to_chunk_file, &s);
        free(text);
        if (st == KOKORO_OK) { /* written last: marks the chapter finished */
            char tmp[PATH_MAX + 40];
            snprintf(tmp, sizeof tmp, "%s.tmp", info);
            f = fopen(tmp, "w");
            if (!f || fprintf(f, "Title: %s\ncomplete\n", ci.title) < 0 || fclose(f) != 0 || rename(tmp, info) != 0)
                st = kk_error(KOKORO_ERR_IO, "%s: %s", info, strerror(errno));
        }
    }
    return st;
}

/* With memory streaming off, SINGLE holds the whole book's audio and writes
 * it after the last chapter, as the Python kokoro-tts did without streaming:
 * the baseline that streaming's flat memory is measured against. The bytes
 * written are the same either way. */
typedef struct held_mark {
    uint64_t at;
    char *title;
} held_mark;

typedef struct held {
    float *x;
    size_t n, cap;
    held_mark *marks;
    size_t n_marks, cap_marks;
} held;

static kokoro_status held_append(held *h, const float *x, size_t n)
{
    if (n > SIZE_MAX / sizeof *h->x - h->n) return kk_error(KOKORO_ERR_NOMEM, "the book's audio is too long to hold in memory");
    if (h->n + n > h->cap) {
        size_t cap = h->cap ? h->cap : 1 << 20;
        while (cap < h->n + n) cap = cap > SIZE_MAX / (2 * sizeof *h->x) ? h->n + n : 2 * cap;
        float *p = realloc(h->x, cap * sizeof *p);
        if (!p)
            return kk_error(KOKORO_ERR_NOMEM, "out of memory holding %zu samples of audio (memory streaming is off)",
                            h->n + n);
        h->x = p;
        h->cap = cap;
    }
    if (x) memcpy(h->x + h->n, x, n * sizeof *x);
    else memset(h->x + h->n, 0, n * sizeof *h->x);
    h->n += n;
    return KOKORO_OK;
}

static kokoro_status held_mark_add(held *h, const char *title)
{
    if (h->n_marks == h->cap_marks) {
        size_t cap = h->cap_marks ? 2 * h->cap_marks : 16;
        held_mark *p = realloc(h->marks, cap * sizeof *p);
        if (!p) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
        h->marks = p;
        h->cap_marks = cap;
    }
    if (!(h->marks[h->n_marks].title = strdup(title))) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    h->marks[h->n_marks++].at = h->n;
    return KOKORO_OK;
}

/* Writes the held audio with its chapter marks where they were taken. */
static kokoro_status held_flush(const held *h, kokoro_writer *w)
{
    kokoro_status st = KOKORO_OK;
    size_t pos = 0;
    for (size_t i = 0; i < h->n_marks && st == KOKORO_OK; i++) {
        st = kokoro_writer_write(w, h->x + pos, (size_t)h->marks[i].at - pos);
        pos = (size_t)h->marks[i].at;
        if (st == KOKORO_OK) st = kokoro_writer_add_chapter(w, h->marks[i].title);
    }
    return st == KOKORO_OK ? kokoro_writer_write(w, h->x + pos, h->n - pos) : st;
}

static void held_free(held *h)
{
    for (size_t i = 0; i < h->n_marks; i++) free(h->marks[i].title);
    free(h->marks);
    free(h->x);
}

/* SINGLE: straight into one writer (or the held audio), no work folder. */
typedef struct single_sink {
    kokoro_writer *w;
    held *h;
    book *b;
    const char *text;
    uint64_t offset;
} single_sink;

static kokoro_status to_single(void *user, const kokoro_piece *p)
{
    single_sink *s = user;
    kokoro_status st = s->h ? held_append(s->h, p->samples, p->n) : kokoro_writer_write(s->w, p->samples, p->n);
    if (st == KOKORO_OK && s->b->captions) st = kokoro_captions_add(s->b->captions, s->text, p, s->offset);
    return st;
}

static kokoro_status render_single(book *b, const kokoro_metadata *meta)
{
    kokoro_writer_options wo = b->o->writer;
    wo.metadata = meta;
    kokoro_writer *w;
    kokoro_status st = kokoro_writer_open(b->o->output, &wo, &w);
    if (st != KOKORO_OK) return st;
    int marks = wants_marks(&wo, b->o->output), first = 1;
    held hold = {0}, *h = kokoro_engine_perf(b->e)->use_memory_streaming ? NULL : &hold;
    if (b->o->captions_path) st = kokoro_captions_open(b->o->captions_path, &b->captions);
    for (size_t i = 0; i < b->n && st == KOKORO_OK; i++) {
        if (!b->take[i]) continue;
        kokoro_chapter_info ci;
        if ((st = kokoro_document_chapter_info(b->doc, i, &ci)) != KOKORO_OK) break;
        report(b, i, ci.title, 0);
        size_t pause = kokoro_join_pause_samples(&b->o->speak.join, KOKORO_PAUSE_CHAPTER);
        if (!first && (st = h ? held_append(h, NULL, pause) : chapter_pause(w, b)) != KOKORO_OK) break;
        first = 0;
        if (marks && (st = h ? held_mark_add(h, ci.title) : kokoro_writer_add_chapter(w, ci.title)) != KOKORO_OK) break;
        char *text;
        size_t len;
        if ((st = chapter_text(b, i, &text, &len)) != KOKORO_OK) break;
        single_sink s = {.w = w, .h = h, .b = b, .text = text, .offset = h ? h->n : kokoro_writer_position(w)};
        kokoro_speak_options so = b->o->speak;
        so.seed = chapter_seed(b->o->speak.seed, i + 1);
        so.what = ci.title;
        st = kokoro_engine_speak(b->e, text, len, &so, to_single, &s);
        free(text);
    }
    if (st == KOKORO_OK && h) st = held_flush(h, w);
    held_free(&hold);
    if (st == KOKORO_OK && b->captions) st = kokoro_captions_close(b->captions), b->captions = NULL;
    if (st != KOKORO_OK) {
        kokoro_captions_abort(b->captions);
        b->captions = NULL;
        kokoro_writer_abort(w);
        return st;
    }
    return kokoro_writer_close(w);
}

/* AUDIOBOOK and CHAPTERS: every chapter into the work folder, then the files. */
static kokoro_status render_with_work(book *b, const kokoro_metadata *meta, const char *ext)
{
    kokoro_status st = KOKORO_OK;
    const kokoro_book_options *o = b->o;
    if (b->intro) {
        uint64_t n;
        int done = chapter_done(b, (size_t)-1, &n) && intro_current(b);
        report(b, SIZE_MAX, "Introduction", done);
        if (!done) st = speak_to_work(b, SIZE_MAX, b->intro, strlen(b->intro), "Introduction");
    }
    for (size_t i = 0; i < b->n && st == KOKORO_OK; i++) {
        if (!b->take[i]) continue;
        kokoro_chapter_info ci;
        if ((st = kokoro_document_chapter_info(b->doc, i, &ci)) != KOKORO_OK) break;
        uint64_t n;
        if (chapter_done(b, i, &n)) {
            report(b, i, ci.title, 1);
        } else {
            report(b, i, ci.title, 0);
            char *text;
            size_t len;
            if ((st = chapter_text(b, i, &text, &len)) != KOKORO_OK) break;
            st = speak_to_work(b, i, text, len, ci.title);
            free(text);
        }
        if (st == KOKORO_OK && o->mode == KOKORO_BOOK_CHAPTERS) st = chapter_file(b, i, meta, ext);
    }
    if (st != KOKORO_OK) return st;
    if (o->mode == KOKORO_BOOK_AUDIOBOOK) return assemble(b, o->output, meta);
    /* CHAPTERS: the whole book beside the chapter files */
    char safe[256], path[PATH_MAX + 300];
    safe_name(b->title && *b->title ? b->title : "book", safe, sizeof safe);
    snprintf(path, sizeof path, "%s/%s_Complete.%s", o->output, safe, ext);
    return assemble(b, path, meta);
}

static kokoro_status select_chapters(book *b)
{
    const kokoro_book_options *o = b->o;
    b->take = calloc(b->n + 1, 1);
    if (!b->take) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    kokoro_status st = kokoro_chapter_selection_parse(o->select ? o->select : "all", b->n, b->take);
    if (st != KOKORO_OK) return st;
    int skip = o->skip_matter < 0 ? o->mode == KOKORO_BOOK_AUDIOBOOK : o->skip_matter;
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) {
        kokoro_chapter_info ci;
        if ((st = kokoro_document_chapter_info(b->doc, i, &ci)) != KOKORO_OK) return st;
        /* matter is skipped only from a whole-book selection: chapters asked for by number are kept */
        if (b->take[i] && skip && ci.matter != KOKORO_MATTER_BODY &&
            (!o->select || !strcmp(o->select, "all") || !strcmp(o->select, "*"))) {
            b->take[i] = 0;
            report(b, i, ci.title, -1);
        }
        kept += b->take[i];
    }
    if (!kept)
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "no chapter is left to speak (all are front or back matter, or none was selected)");
    return KOKORO_OK;
}

kokoro_status kokoro_engine_render(kokoro_engine *e, kokoro_document *doc, const kokoro_book_options *o)
{
    if (!e || !doc || !o || !o->output) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_engine_render: NULL argument");
    if (!o->speak.voice) return kk_error(KOKORO_ERR_INVALID_ARG, "no voice given");
    book b = {.e = e, .doc = doc, .o = o, .n = kokoro_document_chapter_count(doc)};
    kokoro_status st = select_chapters(&b);
    kokoro_metadata meta;
    if (st == KOKORO_OK) st = gather_metadata(&b, &meta);
    /* what the output files are called */
    kokoro_audio_format fmt = o->writer.format;
    if (fmt == KOKORO_AUDIO_AUTO && (o->mode == KOKORO_BOOK_SINGLE || o->mode == KOKORO_BOOK_AUDIOBOOK))
        fmt = kokoro_audio_format_from_path(o->output);
    if (fmt == KOKORO_AUDIO_AUTO) fmt = o->mode == KOKORO_BOOK_AUDIOBOOK ? KOKORO_AUDIO_M4B : KOKORO_AUDIO_WAV;
    const char *ext = kokoro_audio_format_name(fmt);
    if (st == KOKORO_OK && o->mode == KOKORO_BOOK_AUDIOBOOK && fmt != KOKORO_AUDIO_M4B && fmt != KOKORO_AUDIO_M4A)
        st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: an audiobook is an .m4b or .m4a file, not %s", o->output, ext);
    kokoro_book_options local = *o;
    local.writer.format = fmt;
    b.o = &local;
    if (st == KOKORO_OK && o->mode == KOKORO_BOOK_AUDIOBOOK && !o->no_intro && !(b.intro = intro_text(&b)))
        st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
    /* memory streaming off: every chapter's text read before any synthesis */
    if (st == KOKORO_OK && !kokoro_engine_perf(e)->use_memory_streaming) {
        b.texts = calloc(b.n + 1, sizeof *b.texts);
        if (!b.texts) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < b.n && st == KOKORO_OK; i++) {
            size_t len;
            if (b.take[i]) st = kokoro_document_chapter_text(doc, i, &b.texts[i], &len);
        }
    }
    if (st == KOKORO_OK && (o->mode == KOKORO_BOOK_CHAPTERS || o->mode == KOKORO_BOOK_SPLIT) && mkdir_p(o->output) != 0)
        st = kk_error(KOKORO_ERR_IO, "%s: cannot create the output folder: %s", o->output, strerror(errno));
    if (st == KOKORO_OK) {
        switch (o->mode) {
        case KOKORO_BOOK_SINGLE: st = render_single(&b, &meta); break;
        case KOKORO_BOOK_SPLIT: st = render_split(&b, ext); break;
        case KOKORO_BOOK_CHAPTERS:
        case KOKORO_BOOK_AUDIOBOOK: {
            if (o->work_dir) snprintf(b.work, sizeof b.work, "%s", o->work_dir);
            else snprintf(b.work, sizeof b.work, "%s%s", o->output, o->mode == KOKORO_BOOK_CHAPTERS ? "/.work" : ".work");
            char id[PATH_MAX + 64];
            snprintf(id, sizeof id, "%s (%zu chapters) %s", o->input_id ? o->input_id : "", b.n, o->select ? o->select : "all");
            st = check_settings(&b, id);
            if (st == KOKORO_OK) st = render_with_work(&b, &meta, ext);
            if (st == KOKORO_OK && !o->keep_work) rm_rf(b.work);
            break;
        }
        default: st = kk_error(KOKORO_ERR_INVALID_ARG, "unknown book mode %d", (int)o->mode);
        }
    }
    if (b.texts)
        for (size_t i = 0; i < b.n; i++) free(b.texts[i]);
    free(b.texts);
    free(b.take);
    free(b.title);
    free(b.author);
    free(b.narrator);
    free(b.intro);
    free(b.cover);
    return st;
}
