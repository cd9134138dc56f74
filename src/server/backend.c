/* The server's backend on the engine (kokoro_engine_*): text through the
 * front end, voices and blends through the engine, every response format
 * through the streaming audio writer, documents through kokoro_document_*.
 *
 * Books are spoken chunk by chunk so that a job's progress is durable per
 * chunk: the front end cuts the selected chapters into chunks (the plan);
 * chunk k is synthesised from its phonemes with seed k (so a resumed run
 * makes the same audio as an uninterrupted one) and stored as raw float
 * samples in the work folder; when every chunk is there, the chunks are
 * joined (trim, fades, pauses) into the output with chapter marks,
 * metadata and cover. */
#include "server/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define COVER_MAX_BYTES (16u << 20) /* an uploaded cover larger than this is refused */

struct kk_backend {
    kokoro_engine *engine;
    char tmp_dir[1024]; /* where non-streamable responses are encoded */
    size_t chunk_tokens;
};

static const kk_backend_lang LANGS[] = {
    {"a", "American English"}, {"b", "British English"}, {"e", "Spanish"},
    {"f", "French"},           {"h", "Hindi"},           {"i", "Italian"},
    {"j", "Japanese"},         {"p", "Brazilian Portuguese"}, {"z", "Mandarin Chinese"},
};

kokoro_status kk_backend_open(const kk_backend_config *cfg, kk_backend **out)
{
    if (!cfg || !out || (!cfg->test_weights && !cfg->model_path))
        return kk_error(KOKORO_ERR_INVALID_ARG, "backend: a model (or test weights) is required");
    kk_backend *be = calloc(1, sizeof *be);
    if (!be) return kk_error(KOKORO_ERR_NOMEM, "backend: out of memory");
    const char *t = getenv("TMPDIR");
    snprintf(be->tmp_dir, sizeof be->tmp_dir, "%s", cfg->tmp_dir ? cfg->tmp_dir : t && *t ? t : "/tmp");
    kokoro_engine_options eo = kokoro_engine_options_default();
    eo.model_path = cfg->test_weights ? NULL : cfg->model_path;
    eo.test_weights = cfg->test_weights;
    eo.voices_path = cfg->voices_path && *cfg->voices_path ? cfg->voices_path : NULL;
    if (cfg->perf) eo.perf = *cfg->perf;
    be->chunk_tokens = cfg->chunk_tokens;
    kokoro_status st = kokoro_engine_open(&eo, &be->engine);
    if (st == KOKORO_OK && kokoro_voices_count(kokoro_engine_voices(be->engine)) == 0)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: no voice packs found", eo.voices_path ? eo.voices_path : "the model");
    if (st != KOKORO_OK) {
        kk_backend_close(be);
        return st;
    }
    *out = be;
    return KOKORO_OK;
}

void kk_backend_close(kk_backend *be)
{
    if (!be) return;
    kokoro_engine_free(be->engine);
    free(be);
}

size_t kk_backend_voice_count(const kk_backend *be) { return kokoro_voices_count(kokoro_engine_voices(be->engine)); }
const char *kk_backend_voice_name(const kk_backend *be, size_t i)
{
    return kokoro_voices_name(kokoro_engine_voices(be->engine), i);
}

const kk_backend_lang *kk_backend_languages(const kk_backend *be, size_t *n)
{
    (void)be;
    *n = sizeof LANGS / sizeof LANGS[0];
    return LANGS;
}

const char *kk_backend_book_ext(const kk_backend *be)
{
    (void)be;
    return "m4b";
}

/* The writer format of an API response_format (aac is AAC in MPEG-4). */
static int api_format(const char *f, kokoro_audio_format *out)
{
    static const struct { const char *name; kokoro_audio_format f; } all[] = {
        {"mp3", KOKORO_AUDIO_MP3}, {"opus", KOKORO_AUDIO_OPUS}, {"aac", KOKORO_AUDIO_M4A},
        {"flac", KOKORO_AUDIO_FLAC}, {"wav", KOKORO_AUDIO_WAV}, {"pcm", KOKORO_AUDIO_PCM},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(f, all[i].name)) {
            *out = all[i].f;
            return 1;
        }
    return 0;
}

/* The first invalid byte of s, or -1 when s is valid UTF-8. */
static long utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t v;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; }
        else return (long)i;
        if (len - i < n) return (long)i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            v = (v << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
            return (long)i;
        i += n;
    }
    return -1;
}

static kokoro_status check_voice(const kk_backend *be, const char *voice)
{
    float style[KOKORO_STYLE_DIM];
    return kokoro_voices_style(kokoro_engine_voices(be->engine), voice, 1, style);
}

kokoro_status kk_backend_check(const kk_backend *be, const kk_synth_request *req)
{
    if (!req->input || !req->voice || !req->format)
        return kk_error(KOKORO_ERR_INVALID_ARG, "input, voice and response_format are required");
    kokoro_audio_format f;
    if (!api_format(req->format, &f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "response_format '%s': expected mp3, opus, aac, flac, wav or pcm",
                        req->format);
    if (!(req->speed >= 0.5f && req->speed <= 2.0f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "speed %g: expected 0.5 to 2.0", (double)req->speed);
    if (req->lang && !kokoro_lang_valid(req->lang))
        return kk_error(KOKORO_ERR_INVALID_ARG, "lang_code '%s': expected one of a, b, e, f, h, i, j, p, z",
                        req->lang);
    kokoro_status st = check_voice(be, req->voice);
    if (st != KOKORO_OK) return st;
    if (!req->lang && !kokoro_lang_from_voice(req->voice))
        return kk_error(KOKORO_ERR_INVALID_ARG, "voice '%s': its first letter names no language; give lang_code",
                        req->voice);
    size_t len = strlen(req->input);
    long bad = utf8_invalid_at((const unsigned char *)req->input, len);
    if (bad >= 0) return kk_error(KOKORO_ERR_INVALID_ARG, "input: byte offset %ld: invalid UTF-8", bad);
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", req->input[i])) i++;
    if (i == len) return kk_error(KOKORO_ERR_INVALID_ARG, "input: nothing to speak");
    return KOKORO_OK;
}

/* ---- speech ---- */

typedef struct speak_ctx {
    const kk_synth_request *req;
    kk_chunk_fn fn;
    void *ud;
    const atomic_int *cancel;
    kokoro_writer *w;
    int streaming;          /* bytes leave after each piece; else one call at the end */
    uint8_t *buf;           /* encoded bytes not yet handed on */
    size_t len, cap;
    kk_word_time *words;    /* words not yet handed on (non-streaming: all of them) */
    size_t n_words, cap_words;
    char *word_text;        /* the words' NUL-terminated texts, in one block */
    size_t wt_len, wt_cap;
    int stopped;            /* the receiver said stop */
} speak_ctx;

static int speak_cancelled(void *user)
{
    speak_ctx *c = user;
    return c->stopped || (c->cancel && atomic_load(c->cancel));
}

static kokoro_status to_buf(void *user, const void *data, size_t n)
{
    speak_ctx *c = user;
    if (c->cap - c->len < n) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap - c->len < n) cap *= 2;
        uint8_t *g = realloc(c->buf, cap);
        if (!g) return kk_error(KOKORO_ERR_NOMEM, "speech: out of memory for %zu encoded bytes", cap);
        c->buf = g;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return KOKORO_OK;
}

/* Hands on the bytes and words gathered so far. */
static kokoro_status flush(speak_ctx *c)
{
    if (!c->len && !c->n_words) return KOKORO_OK;
    /* the word pointers are offsets into word_text until now (it may move while growing) */
    for (size_t i = 0; i < c->n_words; i++) c->words[i].word = c->word_text + (size_t)(uintptr_t)c->words[i].word;
    int stop = c->fn(c->ud, c->buf, c->len, c->words, c->n_words);
    c->len = c->n_words = c->wt_len = 0;
    if (stop) {
        c->stopped = 1;
        return kk_error(KOKORO_ERR_CANCELLED, "synthesis stopped by the receiver");
    }
    return KOKORO_OK;
}

static kokoro_status add_word(speak_ctx *c, const char *text, size_t len, double start, double end)
{
    if (c->n_words == c->cap_words) {
        size_t cap = c->cap_words ? 2 * c->cap_words : 64;
        kk_word_time *g = realloc(c->words, cap * sizeof *g);
        if (!g) return kk_error(KOKORO_ERR_NOMEM, "captions: out of memory");
        c->words = g;
        c->cap_words = cap;
    }
    if (c->wt_cap - c->wt_len < len + 1) {
        size_t cap = c->wt_cap ? c->wt_cap : 1024;
        while (cap - c->wt_len < len + 1) cap *= 2;
        char *g = realloc(c->word_text, cap);
        if (!g) return kk_error(KOKORO_ERR_NOMEM, "captions: out of memory");
        c->word_text = g;
        c->wt_cap = cap;
    }
    memcpy(c->word_text + c->wt_len, text, len);
    c->word_text[c->wt_len + len] = 0;
    c->words[c->n_words++] = (kk_word_time){(const char *)(uintptr_t)c->wt_len, start, end};
    c->wt_len += len + 1;
    return KOKORO_OK;
}

static kokoro_status on_piece(void *user, const kokoro_piece *p)
{
    speak_ctx *c = user;
    kokoro_status st = kokoro_writer_write(c->w, p->samples, p->n);
    const char *in = c->req->input;
    size_t in_len = strlen(in);
    for (size_t i = 0; st == KOKORO_OK && i < p->n_words; i++) {
        const kokoro_word_time *wt = &p->words[i];
        size_t b = wt->src_begin < in_len ? wt->src_begin : in_len;
        size_t e = wt->src_end < in_len ? wt->src_end : in_len;
        if (e < b) e = b;
        st = add_word(c, in + b, e - b, (double)wt->start / KOKORO_SAMPLE_RATE, (double)wt->end / KOKORO_SAMPLE_RATE);
    }
    if (st == KOKORO_OK && c->streaming) st = flush(c);
    return st;
}

/* A unique path for a response that must be encoded to a file first. */
static void temp_path(const kk_backend *be, const char *ext, char *out, size_t cap)
{
    static atomic_uint counter;
    unsigned k = atomic_fetch_add(&counter, 1);
    snprintf(out, cap, "%s/kokoro-server-%ld-%u.%s", be->tmp_dir, (long)getpid(), k, ext);
}

static kokoro_status read_whole(const char *path, size_t limit, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > limit) {
        fclose(f);
        return kk_error(KOKORO_ERR_FORMAT, "%s: not a regular file of at most %zu bytes", path, limit);
    }
    uint8_t *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) { fclose(f); return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); }
    size_t n = fread(buf, 1, (size_t)sb.st_size, f);
    int err = ferror(f);
    fclose(f);
    if (err || n != (size_t)sb.st_size) {
        free(buf);
        return kk_error(KOKORO_ERR_IO, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return KOKORO_OK;
}

kokoro_status kk_backend_synthesize(const kk_backend *be, const kk_synth_request *req, kk_chunk_fn fn, void *ud,
                                    const atomic_int *cancel)
{
    kokoro_status st = kk_backend_check(be, req);
    if (st != KOKORO_OK) return st;
    kokoro_audio_format f = KOKORO_AUDIO_AUTO;
    api_format(req->format, &f);
    speak_ctx c = {.req = req, .fn = fn, .ud = ud, .cancel = cancel};
    c.streaming = kokoro_audio_format_can_stream(f);
    kokoro_writer_options wo = kokoro_writer_options_default();
    wo.format = f;
    char tmp[1200] = "";
    if (c.streaming) {
        st = kokoro_writer_open_sink(to_buf, &c, &wo, &c.w);
    } else {
        /* FLAC and MPEG-4 write their index after the audio: encode to a
         * file, then hand on the whole file (its words came as they were made) */
        temp_path(be, req->format, tmp, sizeof tmp);
        st = kokoro_writer_open(tmp, &wo, &c.w);
    }
    if (st != KOKORO_OK) return st;
    kokoro_speak_options so = kokoro_speak_options_default();
    so.voice = req->voice;
    so.lang = req->lang;
    so.speed = req->speed;
    so.seed = 0; /* the same request gives the same audio */
    so.phoneme_input = req->phonemes;
    if (req->stream) so.first_tokens = 50; /* a short first chunk: first audio fast */
    so.cancelled = speak_cancelled;
    so.user = &c;
    st = kokoro_engine_speak(be->engine, req->input, strlen(req->input), &so, on_piece, &c);
    if (st == KOKORO_OK) {
        st = kokoro_writer_close(c.w);
        c.w = NULL;
    }
    if (st == KOKORO_OK && !c.streaming) {
        uint8_t *file = NULL;
        size_t n = 0;
        st = read_whole(tmp, (size_t)1 << 31, &file, &n);
        if (st == KOKORO_OK) st = to_buf(&c, file, n);
        free(file);
    }
    if (st == KOKORO_OK) st = flush(&c);
    kokoro_writer_abort(c.w);
    if (tmp[0]) unlink(tmp);
    free(c.buf);
    free(c.words);
    free(c.word_text);
    return st;
}

/* ---- books ---- */

static void copy_title(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n > cap - 1) {
        n = cap - 1;
        while (n && ((unsigned char)src[n] & 0xC0) == 0x80) n--; /* never cut a code point */
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

kokoro_status kk_backend_chapters(const kk_backend *be, const char *path, kk_chapter_info **out, size_t *n,
                                  kk_doc_meta *meta)
{
    (void)be;
    kokoro_document *doc;
    kokoro_status st = kokoro_document_open(path, &doc);
    if (st != KOKORO_OK) return st;
    st = kokoro_document_count_words(doc);
    size_t nc = kokoro_document_chapter_count(doc);
    kk_chapter_info *info = st == KOKORO_OK ? calloc(nc ? nc : 1, sizeof *info) : NULL;
    if (st == KOKORO_OK && !info) st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; st == KOKORO_OK && i < nc; i++) {
        kokoro_chapter_info ci;
        st = kokoro_document_chapter_info(doc, i, &ci);
        if (st != KOKORO_OK) break;
        copy_title(info[i].title, sizeof info[i].title, ci.title);
        info[i].words = ci.word_count > 0 ? (size_t)ci.word_count : 0;
    }
    if (st == KOKORO_OK && meta) {
        const char *t = kokoro_document_meta(doc, "title", 0), *au = kokoro_document_meta(doc, "creator", 0);
        copy_title(meta->title, sizeof meta->title, t ? t : "");
        copy_title(meta->author, sizeof meta->author, au ? au : "");
        const unsigned char *cv = NULL;
        size_t cl = 0;
        const char *mime = NULL;
        meta->has_cover = kokoro_document_cover(doc, &cv, &cl, &mime) == KOKORO_OK && cv && cl > 0;
        kk_error_clear();
    }
    kokoro_document_free(doc);
    if (st != KOKORO_OK) {
        free(info);
        return st;
    }
    *out = info;
    *n = nc;
    return KOKORO_OK;
}

kokoro_status kk_backend_cover(const kk_backend *be, const char *path, uint8_t **data, size_t *len,
                               const char **mime)
{
    (void)be;
    *data = NULL;
    *len = 0;
    *mime = NULL;
    kokoro_document *doc;
    kokoro_status st = kokoro_document_open(path, &doc);
    if (st != KOKORO_OK) return st;
    const unsigned char *cv = NULL;
    size_t cl = 0;
    const char *m = NULL;
    st = kokoro_document_cover(doc, &cv, &cl, &m);
    if (st == KOKORO_OK && cv && cl > 0 && m) {
        /* doc owns the bytes: copy them out before it is freed */
        *data = malloc(cl);
        if (!*data) {
            st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
        } else {
            memcpy(*data, cv, cl);
            *len = cl;
            /* the document's mime strings point into doc as well: map to static ones */
            *mime = !strcmp(m, "image/png") ? "image/png" : !strcmp(m, "image/webp") ? "image/webp" : "image/jpeg";
        }
    }
    kokoro_document_free(doc);
    return st;
}

/* One unit of a book's plan: a chunk to speak, or a pause to keep. */
typedef struct book_unit {
    char *phonemes;        /* NULL for a pause */
    float pause_s;
    kokoro_pause_kind before; /* the boundary with the unit before it */
    int chapter;            /* index in the document */
    int chapter_start;      /* first unit of its chapter */
} book_unit;

typedef struct book_plan {
    book_unit *u;
    size_t n;
    char **titles; /* per document chapter */
    size_t n_titles;
} book_plan;

static void plan_free(book_plan *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->u[i].phonemes);
    free(p->u);
    for (size_t i = 0; i < p->n_titles; i++) free(p->titles[i]);
    free(p->titles);
    memset(p, 0, sizeof *p);
}

static const char *book_lang(const kk_book_request *req)
{
    return req->lang && *req->lang ? req->lang : kokoro_lang_from_voice(req->voice);
}

/* Reads the selected chapters and cuts them into chunks with the front end. */
static kokoro_status make_plan(const kk_backend *be, const kk_book_request *req, kokoro_document *doc,
                               book_plan *p)
{
    memset(p, 0, sizeof *p);
    const char *lang = book_lang(req);
    if (!lang) return kk_error(KOKORO_ERR_INVALID_ARG, "voice '%s': its first letter names no language; give lang_code", req->voice);
    if (!kokoro_lang_valid(lang)) return kk_error(KOKORO_ERR_INVALID_ARG, "lang_code '%s': unknown language", lang);
    kokoro_frontend_options fo = kokoro_frontend_options_default();
    fo.lang = lang;
    fo.target_tokens = be->chunk_tokens;
    kokoro_frontend *fe;
    kokoro_status st = kokoro_frontend_new(&fo, &fe);
    if (st != KOKORO_OK) return st;
    size_t nc = kokoro_document_chapter_count(doc);
    p->titles = calloc(nc ? nc : 1, sizeof *p->titles);
    if (!p->titles) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
    else p->n_titles = nc;
    for (size_t i = 0; st == KOKORO_OK && i < nc; i++) {
        kokoro_chapter_info ci;
        st = kokoro_document_chapter_info(doc, i, &ci);
        if (st == KOKORO_OK && !(p->titles[i] = strdup(ci.title))) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
    }
    size_t nsel = req->chapters ? req->n_chapters : nc, cap = 0;
    for (size_t k = 0; st == KOKORO_OK && k < nsel; k++) {
        int ci = req->chapters ? req->chapters[k] : (int)k;
        if (ci < 0 || (size_t)ci >= nc) {
            st = kk_error(KOKORO_ERR_INVALID_ARG, "chapter %d: the book has chapters 0 to %zu", ci, nc ? nc - 1 : 0);
            break;
        }
        char *text = NULL;
        size_t len = 0;
        st = kokoro_document_chapter_text(doc, (size_t)ci, &text, &len);
        kokoro_chunk *ch = NULL;
        size_t m = 0;
        if (st == KOKORO_OK) st = kokoro_frontend_chunks(fe, text, len, &ch, &m);
        free(text);
        if (st != KOKORO_OK) {
            kk_error_prefix("%s: chapter %d", req->input_path, ci);
            break;
        }
        int first = 1;
        kokoro_pause_kind before = KOKORO_PAUSE_CLAUSE;
        for (size_t j = 0; st == KOKORO_OK && j < m; j++) {
            if (ch[j].n_ids == 0 && !(ch[j].pause_s > 0)) continue; /* nothing to say */
            if (p->n == cap) {
                cap = cap ? 2 * cap : 64;
                book_unit *g = realloc(p->u, cap * sizeof *g);
                if (!g) { st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); break; }
                p->u = g;
            }
            book_unit *u = &p->u[p->n];
            memset(u, 0, sizeof *u);
            u->chapter = ci;
            u->chapter_start = first;
            u->before = before;
            if (ch[j].n_ids) {
                u->phonemes = strdup(ch[j].phonemes);
                if (!u->phonemes) { st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); break; }
            } else {
                u->pause_s = ch[j].pause_s;
            }
            p->n++;
            first = 0;
            before = ch[j].ends_paragraph ? KOKORO_PAUSE_PARAGRAPH
                     : ch[j].ends_sentence ? KOKORO_PAUSE_SENTENCE : KOKORO_PAUSE_CLAUSE;
        }
        kokoro_chunks_free(ch, m);
    }
    kokoro_frontend_free(fe);
    if (st == KOKORO_OK && p->n == 0) st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: nothing to speak in the selected chapters", req->input_path);
    if (st != KOKORO_OK) plan_free(p);
    return st;
}

static kokoro_status check_book(const kk_backend *be, const kk_book_request *req)
{
    kokoro_status st = check_voice(be, req->voice);
    if (st != KOKORO_OK) return st;
    if (!(req->speed >= 0.5f && req->speed <= 2.0f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "speed %g: expected 0.5 to 2.0", (double)req->speed);
    if (req->lang && *req->lang && !kokoro_lang_valid(req->lang))
        return kk_error(KOKORO_ERR_INVALID_ARG, "lang_code '%s': expected one of a, b, e, f, h, i, j, p, z", req->lang);
    return KOKORO_OK;
}

kokoro_status kk_backend_book_plan(const kk_backend *be, const kk_book_request *req, size_t *n_chunks)
{
    kokoro_status st = check_book(be, req);
    if (st != KOKORO_OK) return st;
    kokoro_document *doc;
    st = kokoro_document_open(req->input_path, &doc);
    if (st != KOKORO_OK) return st;
    book_plan p;
    st = make_plan(be, req, doc, &p);
    kokoro_document_free(doc);
    if (st != KOKORO_OK) return st;
    *n_chunks = p.n;
    plan_free(&p);
    return KOKORO_OK;
}

static void part_path(char *buf, size_t cap, const char *dir, size_t i)
{
    snprintf(buf, cap, "%s/chunk_%06zu.f32", dir, i);
}

/* Writes data to path durably: temp file, fsync, rename. */
static kokoro_status write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            close(fd);
            unlink(tmp);
            return kk_error(KOKORO_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return kk_error(KOKORO_ERR_IO, "%s: cannot flush: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return kk_error(KOKORO_ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
    }
    return KOKORO_OK;
}

typedef struct samples_buf {
    float *x;
    size_t n, cap;
} samples_buf;

static kokoro_status collect(void *user, const kokoro_piece *p)
{
    samples_buf *b = user;
    if (b->cap - b->n < p->n) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap - b->n < p->n) cap *= 2;
        float *g = realloc(b->x, cap * sizeof *g);
        if (!g) return kk_error(KOKORO_ERR_NOMEM, "book: out of memory");
        b->x = g;
        b->cap = cap;
    }
    memcpy(b->x + b->n, p->samples, p->n * sizeof *p->samples);
    b->n += p->n;
    return KOKORO_OK;
}

typedef struct cancel_ref {
    const atomic_int *cancel;
} cancel_ref;

static int book_cancelled(void *user)
{
    const cancel_ref *c = user;
    return c->cancel && atomic_load(c->cancel);
}

/* Joins the stored chunks into output_path with chapters, metadata, cover. */
static kokoro_status book_assemble(const kk_backend *be, const kk_book_request *req, kokoro_document *doc,
                                   const book_plan *p)
{
    (void)be;
    uint8_t *cover_file = NULL;
    const unsigned char *cover = NULL;
    size_t cover_len = 0;
    kokoro_status st = KOKORO_OK;
    if (req->cover_path) {
        st = read_whole(req->cover_path, COVER_MAX_BYTES, &cover_file, &cover_len);
        if (st != KOKORO_OK) return st;
        cover = cover_file;
    } else {
        const char *mime = NULL;
        if (kokoro_document_cover(doc, &cover, &cover_len, &mime) != KOKORO_OK || !mime ||
            !strcmp(mime, "image/webp")) { /* the MPEG-4 writer takes JPEG and PNG */
            kk_error_clear();
            cover = NULL;
            cover_len = 0;
        }
    }
    kokoro_metadata md = {0};
    md.title = req->title && *req->title ? req->title : kokoro_document_meta(doc, "title", 0);
    md.author = req->author && *req->author ? req->author : kokoro_document_meta(doc, "creator", 0);
    md.genre = "Audiobook";
    md.cover = cover;
    md.cover_size = cover_len;
    kokoro_writer_options wo = kokoro_writer_options_default();
    wo.metadata = &md;
    kokoro_writer *w = NULL;
    st = kokoro_writer_open(req->output_path, &wo, &w);
    kokoro_join_options jo = kokoro_join_options_default();
    kokoro_joiner *j = NULL;
    if (st == KOKORO_OK) st = kokoro_joiner_new(&jo, w, &j);
    int can_chapter = kokoro_audio_format_from_path(req->output_path) == KOKORO_AUDIO_M4B ||
                      kokoro_audio_format_from_path(req->output_path) == KOKORO_AUDIO_M4A;
    char part[4200];
    for (size_t i = 0; st == KOKORO_OK && i < p->n; i++) {
        const book_unit *u = &p->u[i];
        if (u->chapter_start && can_chapter)
            st = kokoro_joiner_chapter(j, p->titles[u->chapter], i ? KOKORO_PAUSE_CHAPTER : KOKORO_PAUSE_NONE);
        if (st != KOKORO_OK) break;
        kokoro_pause_kind before = u->chapter_start && i ? KOKORO_PAUSE_CHAPTER : u->before;
        if (!u->phonemes) {
            size_t n = (size_t)(u->pause_s * KOKORO_SAMPLE_RATE);
            float *z = calloc(n ? n : 1, sizeof *z);
            if (!z) { st = kk_error(KOKORO_ERR_NOMEM, "book: out of memory"); break; }
            st = kokoro_joiner_push(j, z, n, before, 1, NULL, NULL);
            free(z);
            continue;
        }
        part_path(part, sizeof part, req->work_dir, i);
        uint8_t *raw = NULL;
        size_t len = 0;
        st = read_whole(part, (size_t)1 << 30, &raw, &len);
        if (st != KOKORO_OK) {
            kk_error_prefix("finished chunk %zu is missing", i);
            break;
        }
        if (len % sizeof(float)) {
            free(raw);
            st = kk_error(KOKORO_ERR_FORMAT, "%s: truncated (%zu bytes, not whole samples)", part, len);
            break;
        }
        st = kokoro_joiner_push(j, (const float *)(const void *)raw, len / sizeof(float), before, 0, NULL, NULL);
        free(raw);
    }
    if (st == KOKORO_OK) st = kokoro_joiner_finish(j);
    kokoro_joiner_free(j);
    if (st == KOKORO_OK) {
        st = kokoro_writer_close(w);
    } else {
        kokoro_writer_abort(w);
    }
    free(cover_file);
    return st;
}

kokoro_status kk_backend_book_run(const kk_backend *be, const kk_book_request *req, size_t resume_from,
                                  kk_book_progress_fn fn, void *ud, const atomic_int *cancel)
{
    kokoro_status st = check_book(be, req);
    if (st != KOKORO_OK) return st;
    kokoro_document *doc;
    st = kokoro_document_open(req->input_path, &doc);
    if (st != KOKORO_OK) return st;
    book_plan p;
    st = make_plan(be, req, doc, &p);
    if (st != KOKORO_OK) {
        kokoro_document_free(doc);
        return st;
    }
    if (mkdir(req->work_dir, 0755) != 0 && errno != EEXIST) {
        st = kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", req->work_dir, strerror(errno));
        goto done;
    }
    if (resume_from > p.n) resume_from = p.n;
    cancel_ref cr = {cancel};
    char part[4200];
    for (size_t i = resume_from; i < p.n; i++) {
        if (book_cancelled(&cr)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "book cancelled after %zu of %zu chunks", i, p.n);
            goto done;
        }
        const book_unit *u = &p.u[i];
        double secs = u->pause_s;
        if (u->phonemes) {
            samples_buf b = {0};
            kokoro_speak_options so = kokoro_speak_options_default();
            so.voice = req->voice;
            so.lang = book_lang(req);
            so.speed = req->speed;
            so.seed = i; /* chunk i always draws the same noise: resumed == uninterrupted */
            so.phoneme_input = 1;
            so.no_trim = 1;                   /* trimmed and joined once, at assembly */
            so.target_tokens = KOKORO_MAX_TOKENS; /* the planned chunk stays one chunk */
            so.cancelled = book_cancelled;
            so.user = &cr;
            st = kokoro_engine_speak(be->engine, u->phonemes, strlen(u->phonemes), &so, collect, &b);
            if (st == KOKORO_OK) {
                part_path(part, sizeof part, req->work_dir, i);
                st = write_atomic(part, b.x ? (const void *)b.x : (const void *)"", b.n * sizeof(float));
            }
            secs = (double)b.n / KOKORO_SAMPLE_RATE;
            free(b.x);
            if (st != KOKORO_OK) {
                if (st != KOKORO_ERR_CANCELLED) kk_error_prefix("%s: chunk %zu", req->input_path, i);
                goto done;
            }
        }
        if (fn && fn(ud, i + 1, p.n, u->chapter, p.titles[u->chapter], secs)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "book stopped after %zu of %zu chunks", i + 1, p.n);
            goto done;
        }
    }
    st = book_assemble(be, req, doc, &p);
    if (st == KOKORO_OK) { /* the book is safe: its chunks are no longer needed */
        for (size_t i = 0; i < p.n; i++) {
            part_path(part, sizeof part, req->work_dir, i);
            unlink(part);
        }
        rmdir(req->work_dir);
    }
done:
    plan_free(&p);
    kokoro_document_free(doc);
    return st;
}
