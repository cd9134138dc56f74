/* INTERIM BACKEND — to be replaced by the engine pipeline.
 *
 * Until the text front end, the document readers and the audio encoders
 * land, this backend reads every input as Kokoro phonemes (each code point
 * one symbol of the vocabulary, kokoro_config_token_id), splits it into
 * chunks at sentence punctuation, and writes 16-bit WAV or raw PCM itself.
 * Books are plain UTF-8 text files; "# Title" lines start chapters. Everything
 * the server does is built against backend.h, not against this file. */
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

#define CHUNK_MAX_CP 200          /* phonemes per chunk: well under KOKORO_MAX_TOKENS */
#define BOOK_MAX_BYTES (64u << 20) /* a text book larger than this is refused */

struct kk_backend {
    kokoro_model *model;
    kokoro_voices *voices;
    const kokoro_config *config;
};

static const kk_backend_lang LANGS[] = {
    {"a", "American English"}, {"b", "British English"}, {"e", "Spanish"},
    {"f", "French"},           {"h", "Hindi"},           {"i", "Italian"},
    {"j", "Japanese"},         {"p", "Brazilian Portuguese"}, {"z", "Mandarin Chinese"},
};

kokoro_status kk_backend_open(const kk_backend_config *cfg, kk_backend **out)
{
    if (!cfg || !out || !cfg->voices_path || (!cfg->test_weights && !cfg->model_path))
        return kk_error(KOKORO_ERR_INVALID_ARG, "backend: a model (or test weights) and voices are required");
    kk_backend *be = calloc(1, sizeof *be);
    if (!be) return kk_error(KOKORO_ERR_NOMEM, "backend: out of memory");
    kokoro_status st = cfg->test_weights ? kokoro_model_load_test_weights(&be->model)
                                         : kokoro_model_load(cfg->model_path, &be->model);
    if (st == KOKORO_OK) st = kokoro_voices_load(cfg->voices_path, &be->voices);
    if (st == KOKORO_OK && kokoro_voices_count(be->voices) == 0)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: no voice packs found", cfg->voices_path);
    if (st != KOKORO_OK) {
        kk_backend_close(be);
        return st;
    }
    be->config = kokoro_model_config(be->model);
    *out = be;
    return KOKORO_OK;
}

void kk_backend_close(kk_backend *be)
{
    if (!be) return;
    kokoro_model_free(be->model);
    kokoro_voices_free(be->voices);
    free(be);
}

size_t kk_backend_voice_count(const kk_backend *be) { return kokoro_voices_count(be->voices); }
const char *kk_backend_voice_name(const kk_backend *be, size_t i) { return kokoro_voices_name(be->voices, i); }

const kk_backend_lang *kk_backend_languages(const kk_backend *be, size_t *n)
{
    (void)be;
    *n = sizeof LANGS / sizeof LANGS[0];
    return LANGS;
}

const char *kk_backend_book_ext(const kk_backend *be)
{
    (void)be;
    return "wav";
}

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
    if (left == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; }
    else return 0;
    if (left < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* One chunk of phoneme ids plus the byte range of its source text. */
typedef struct chunk {
    int64_t *ids;
    size_t n;
    char *text; /* the chunk's phonemes as UTF-8, for word captions */
} chunk;

static void chunks_free(chunk *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].ids);
        free(c[i].text);
    }
    free(c);
}

static int is_break(uint32_t cp) { return cp == '.' || cp == '!' || cp == '?' || cp == ';' || cp == 0x2026; }
static int is_space(uint32_t cp) { return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r'; }

/* Splits phoneme text into chunks: after sentence punctuation, or at the last
 * space before CHUNK_MAX_CP symbols. Whitespace runs become one space. */
static kokoro_status make_chunks(const kk_backend *be, const char *what, const char *s, size_t len, chunk **out,
                                 size_t *n_out)
{
    chunk *cs = NULL;
    size_t n = 0, cap = 0;
    int64_t ids[CHUNK_MAX_CP];
    char text[CHUNK_MAX_CP * 4 + 1];
    size_t nid = 0, ntext = 0, last_space = 0, text_at_space = 0;
    size_t off = 0;
    kokoro_status st = KOKORO_OK;
    for (;;) {
        uint32_t cp = 0;
        size_t k = 0;
        int end = off >= len;
        if (!end) {
            k = utf8_next((const unsigned char *)s + off, len - off, &cp);
            if (k == 0) {
                st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: byte offset %zu: invalid UTF-8", what, off);
                goto fail;
            }
            if (is_space(cp)) cp = ' ';
            if (cp == ' ' && (nid == 0 || ids[nid - 1] == kokoro_config_token_id(be->config, ' '))) {
                off += k;
                continue;
            }
            int64_t id = kokoro_config_token_id(be->config, cp);
            if (id < 0) {
                st = kk_error(KOKORO_ERR_INVALID_ARG,
                              "%s: byte offset %zu: U+%04X is not a Kokoro phoneme (this build reads input as "
                              "phonemes until the text front end lands)",
                              what, off, (unsigned)cp);
                goto fail;
            }
            if (nid == CHUNK_MAX_CP) { /* full: cut at the last space, carry the rest */
                size_t cut = last_space ? last_space : nid, tcut = last_space ? text_at_space : ntext;
                chunk c = {0};
                c.ids = malloc(cut * sizeof *c.ids);
                c.text = malloc(tcut + 1);
                if (!c.ids || !c.text) {
                    free(c.ids); free(c.text);
                    st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", what);
                    goto fail;
                }
                memcpy(c.ids, ids, cut * sizeof *ids);
                memcpy(c.text, text, tcut);
                c.text[tcut] = 0;
                c.n = cut;
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    chunk *g = realloc(cs, cap * sizeof *cs);
                    if (!g) { free(c.ids); free(c.text); st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", what); goto fail; }
                    cs = g;
                }
                cs[n++] = c;
                memmove(ids, ids + cut, (nid - cut) * sizeof *ids);
                memmove(text, text + tcut, ntext - tcut);
                nid -= cut;
                ntext -= tcut;
                last_space = 0;
            }
            if (cp == ' ') { last_space = nid; text_at_space = ntext; }
            ids[nid++] = id;
            memcpy(text + ntext, s + off, cp == ' ' ? 1 : k);
            if (cp == ' ') text[ntext] = ' ';
            ntext += cp == ' ' ? 1 : k;
            off += k;
        }
        if (end || is_break(cp)) {
            /* drop a trailing space; an all-space chunk is nothing */
            while (nid && ids[nid - 1] == kokoro_config_token_id(be->config, ' ')) { nid--; ntext--; }
            if (nid) {
                chunk c = {0};
                c.ids = malloc(nid * sizeof *c.ids);
                c.text = malloc(ntext + 1);
                if (!c.ids || !c.text) { free(c.ids); free(c.text); st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", what); goto fail; }
                memcpy(c.ids, ids, nid * sizeof *ids);
                memcpy(c.text, text, ntext);
                c.text[ntext] = 0;
                c.n = nid;
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    chunk *g = realloc(cs, cap * sizeof *cs);
                    if (!g) { free(c.ids); free(c.text); st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", what); goto fail; }
                    cs = g;
                }
                cs[n++] = c;
            }
            nid = ntext = last_space = 0;
            if (end) break;
        }
    }
    *out = cs;
    *n_out = n;
    return KOKORO_OK;
fail:
    chunks_free(cs, n);
    return st;
}

static int format_supported(const char *f) { return !strcmp(f, "wav") || !strcmp(f, "pcm"); }
static int format_known(const char *f)
{
    static const char *const all[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(f, all[i])) return 1;
    return 0;
}

static int lang_known(const char *l)
{
    for (size_t i = 0; i < sizeof LANGS / sizeof LANGS[0]; i++)
        if (!strcmp(l, LANGS[i].code)) return 1;
    return 0;
}

kokoro_status kk_backend_check(const kk_backend *be, const kk_synth_request *req)
{
    if (!req->input || !req->voice || !req->format)
        return kk_error(KOKORO_ERR_INVALID_ARG, "input, voice and response_format are required");
    if (!format_known(req->format))
        return kk_error(KOKORO_ERR_INVALID_ARG, "response_format '%s': expected mp3, opus, aac, flac, wav or pcm",
                        req->format);
    if (!(req->speed >= 0.5f && req->speed <= 2.0f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "speed %g: expected 0.5 to 2.0", (double)req->speed);
    if (req->lang && !lang_known(req->lang))
        return kk_error(KOKORO_ERR_INVALID_ARG, "lang_code '%s': expected one of a, b, e, f, h, i, j, p, z",
                        req->lang);
    float style[KOKORO_STYLE_DIM];
    kokoro_status st = kokoro_voices_style(be->voices, req->voice, 1, style);
    if (st != KOKORO_OK) return st;
    chunk *cs;
    size_t n;
    st = make_chunks(be, "input", req->input, strlen(req->input), &cs, &n);
    if (st != KOKORO_OK) return st;
    chunks_free(cs, n);
    if (n == 0) return kk_error(KOKORO_ERR_INVALID_ARG, "input: nothing to speak");
    if (!format_supported(req->format))
        return kk_error(KOKORO_ERR_FORMAT,
                        "response_format '%s' is not available in this build yet (the interim backend writes wav "
                        "and pcm)",
                        req->format);
    return KOKORO_OK;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* A 16-bit mono 24 kHz WAV header for data_bytes (0xFFFFFFFF: unknown). */
static void wav_header(uint8_t h[44], uint32_t data_bytes)
{
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, data_bytes == 0xFFFFFFFFu ? 0xFFFFFFFFu : 36 + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    h[20] = 1; h[21] = 0;  /* PCM */
    h[22] = 1; h[23] = 0;  /* mono */
    put_le32(h + 24, KOKORO_SAMPLE_RATE);
    put_le32(h + 28, KOKORO_SAMPLE_RATE * 2);
    h[32] = 2; h[33] = 0;
    h[34] = 16; h[35] = 0;
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_bytes);
}

static void to_s16le(const float *x, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] * 32767.0f;
        int s = v >= 32767.0f ? 32767 : v <= -32768.0f ? -32768 : (int)(v + (v >= 0 ? 0.5f : -0.5f));
        out[2 * i] = (uint8_t)(s & 0xFF);
        out[2 * i + 1] = (uint8_t)((s >> 8) & 0xFF);
    }
}

/* Synthesises one chunk with the style row its length picks. */
static kokoro_status synth_chunk(const kk_backend *be, const chunk *c, const char *voice, float speed,
                                 kokoro_audio *audio)
{
    float style[KOKORO_STYLE_DIM];
    kokoro_status st = kokoro_voices_style(be->voices, voice, c->n, style);
    if (st != KOKORO_OK) return st;
    kokoro_synth_options o = kokoro_synth_options_default();
    o.speed = speed;
    o.seed = 0; /* same input, same audio: resumed books match uninterrupted ones */
    return kokoro_synthesize(be->model, c->ids, c->n, style, &o, audio);
}

/* Word times of one chunk from its per-token durations (pads included). */
static kokoro_status chunk_words(const kk_backend *be, const chunk *c, const kokoro_audio *a, double t0,
                                 kk_word_time **out, size_t *n_out, char **buf_out)
{
    size_t len = strlen(c->text);
    char *buf = malloc(len + 1);
    kk_word_time *w = malloc((c->n + 1) * sizeof *w);
    if (!buf || !w) {
        free(buf); free(w);
        return kk_error(KOKORO_ERR_NOMEM, "captions: out of memory");
    }
    memcpy(buf, c->text, len + 1);
    const double frame = (double)KOKORO_SAMPLES_PER_FRAME / KOKORO_SAMPLE_RATE;
    double t = t0 + (double)a->durations[0] * frame; /* the leading pad */
    size_t nw = 0, tok = 0, off = 0;
    int64_t space = kokoro_config_token_id(be->config, ' ');
    while (tok < c->n) {
        if (c->ids[tok] == space) {
            t += (double)a->durations[tok + 1] * frame;
            tok++;
            off++;
            continue;
        }
        w[nw].word = buf + off;
        w[nw].start = t;
        while (tok < c->n && c->ids[tok] != space) {
            uint32_t cp;
            off += utf8_next((const unsigned char *)buf + off, len - off, &cp);
            t += (double)a->durations[tok + 1] * frame;
            tok++;
        }
        w[nw].end = t;
        if (off < len) buf[off] = 0; /* ends the word; the space it overwrites is skipped above */
        nw++;
    }
    *out = w;
    *n_out = nw;
    *buf_out = buf;
    return KOKORO_OK;
}

kokoro_status kk_backend_synthesize(const kk_backend *be, const kk_synth_request *req, kk_chunk_fn fn, void *ud,
                                    const atomic_int *cancel)
{
    kokoro_status st = kk_backend_check(be, req);
    if (st != KOKORO_OK) return st;
    chunk *cs;
    size_t n;
    st = make_chunks(be, "input", req->input, strlen(req->input), &cs, &n);
    if (st != KOKORO_OK) return st;
    int wav = !strcmp(req->format, "wav");
    double t = 0;
    for (size_t i = 0; i < n && st == KOKORO_OK; i++) {
        if (cancel && atomic_load(cancel)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "synthesis cancelled after %zu of %zu chunks", i, n);
            break;
        }
        kokoro_audio a = {0};
        st = synth_chunk(be, &cs[i], req->voice, req->speed, &a);
        if (st != KOKORO_OK) break;
        size_t hdr = (wav && i == 0) ? 44 : 0;
        uint8_t *bytes = malloc(hdr + a.n_samples * 2 + 1);
        kk_word_time *words = NULL;
        size_t nw = 0;
        char *wbuf = NULL;
        if (!bytes) st = kk_error(KOKORO_ERR_NOMEM, "synthesis: out of memory");
        if (st == KOKORO_OK) st = chunk_words(be, &cs[i], &a, t, &words, &nw, &wbuf);
        if (st == KOKORO_OK) {
            /* a streamed wav cannot know its size: the 0xFFFFFFFF sentinel players accept */
            if (hdr) wav_header(bytes, req->stream ? 0xFFFFFFFFu : 0);
            to_s16le(a.samples, a.n_samples, bytes + hdr);
            t += (double)a.n_samples / KOKORO_SAMPLE_RATE;
            if (fn(ud, bytes, hdr + a.n_samples * 2, words, nw))
                st = kk_error(KOKORO_ERR_CANCELLED, "synthesis stopped by the receiver after chunk %zu", i + 1);
        }
        free(bytes);
        free(words);
        free(wbuf);
        kokoro_audio_free(&a);
    }
    chunks_free(cs, n);
    return st;
}

/* ---- books ---- */

static kokoro_status read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            if (cap > BOOK_MAX_BYTES + 65536u) {
                free(buf);
                fclose(f);
                return kk_error(KOKORO_ERR_FORMAT, "%s: larger than %u bytes", path, BOOK_MAX_BYTES);
            }
            char *g = realloc(buf, cap + 1);
            if (!g) { free(buf); fclose(f); return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); }
            buf = g;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return kk_error(KOKORO_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return KOKORO_OK;
}

typedef struct book_chapter {
    char title[128];
    size_t start, end; /* byte range of the body */
} book_chapter;

static int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcasecmp(path + n - e, ext);
}

/* Splits a text book into chapters at "# Title" lines. */
static kokoro_status book_parse(const char *path, char **text, book_chapter **chs, size_t *n_out)
{
    if (has_ext(path, ".epub") || has_ext(path, ".pdf"))
        return kk_error(KOKORO_ERR_FORMAT, "%s: EPUB and PDF need the document reader, not in this build yet; "
                        "upload a .txt file", path);
    size_t len = 0;
    kokoro_status st = read_file(path, text, &len);
    if (st != KOKORO_OK) return st;
    if (memchr(*text, 0, len)) {
        free(*text);
        return kk_error(KOKORO_ERR_FORMAT, "%s: contains NUL bytes: not a text file", path);
    }
    for (size_t off = 0; off < len;) {
        uint32_t cp;
        size_t k = utf8_next((const unsigned char *)*text + off, len - off, &cp);
        if (!k) {
            free(*text);
            return kk_error(KOKORO_ERR_FORMAT, "%s: byte offset %zu: invalid UTF-8", path, off);
        }
        off += k;
    }
    book_chapter *c = NULL;
    size_t n = 0;
    const char *s = *text;
    for (size_t off = 0; off <= len;) {
        const char *nl = memchr(s + off, '\n', len - off);
        size_t eol = nl ? (size_t)(nl - s) : len;
        if (s[off] == '#' && off < len) {
            book_chapter *g = realloc(c, (n + 1) * sizeof *c);
            if (!g) { free(c); free(*text); return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); }
            c = g;
            size_t t = off;
            while (t < eol && (s[t] == '#' || s[t] == ' ')) t++;
            size_t tl = eol - t < sizeof c[n].title - 1 ? eol - t : sizeof c[n].title - 1;
            while (tl && ((unsigned char)s[t + tl] & 0xC0) == 0x80) tl--; /* never cut a code point */
            memcpy(c[n].title, s + t, tl);
            c[n].title[tl] = 0;
            c[n].start = eol < len ? eol + 1 : len;
            if (n) c[n - 1].end = off;
            n++;
        } else if (n == 0 && off < len) {
            c = malloc(sizeof *c);
            if (!c) { free(*text); return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path); }
            snprintf(c[0].title, sizeof c[0].title, "Chapter 1");
            c[0].start = 0;
            n = 1;
            continue; /* look at this line again as body */
        }
        off = eol + 1;
    }
    if (n) c[n - 1].end = len;
    *chs = c;
    *n_out = n;
    return KOKORO_OK;
}

static size_t count_words(const char *s, size_t len)
{
    size_t w = 0;
    int in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!sp && !in) w++;
        in = !sp;
    }
    return w;
}

kokoro_status kk_backend_chapters(const kk_backend *be, const char *path, kk_chapter_info **out, size_t *n)
{
    (void)be;
    char *text;
    book_chapter *c;
    size_t nc;
    kokoro_status st = book_parse(path, &text, &c, &nc);
    if (st != KOKORO_OK) return st;
    kk_chapter_info *info = calloc(nc ? nc : 1, sizeof *info);
    if (!info) { free(text); free(c); return kk_error(KOKORO_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < nc; i++) {
        memcpy(info[i].title, c[i].title, sizeof info[i].title);
        info[i].words = count_words(text + c[i].start, c[i].end - c[i].start);
    }
    free(text);
    free(c);
    *out = info;
    *n = nc;
    return KOKORO_OK;
}

/* Every chunk of the selected chapters, in order, with its chapter index. */
static kokoro_status book_chunks(const kk_backend *be, const kk_book_request *req, chunk **out, int **chap_of,
                                 size_t *n_out, book_chapter **chs_out)
{
    char *text;
    book_chapter *chs;
    size_t nc;
    kokoro_status st = book_parse(req->input_path, &text, &chs, &nc);
    if (st != KOKORO_OK) return st;
    size_t nsel = req->chapters ? req->n_chapters : nc;
    chunk *all = NULL;
    int *cof = NULL;
    size_t n = 0;
    for (size_t k = 0; k < nsel && st == KOKORO_OK; k++) {
        int ci = req->chapters ? req->chapters[k] : (int)k;
        if (ci < 0 || (size_t)ci >= nc) {
            st = kk_error(KOKORO_ERR_INVALID_ARG, "chapter %d: the book has chapters 0 to %zu", ci, nc ? nc - 1 : 0);
            break;
        }
        char what[200];
        snprintf(what, sizeof what, "%s: chapter %d", req->input_path, ci);
        chunk *cs;
        size_t m;
        st = make_chunks(be, what, text + chs[ci].start, chs[ci].end - chs[ci].start, &cs, &m);
        if (st != KOKORO_OK) break;
        chunk *g = realloc(all, (n + m + 1) * sizeof *all);
        int *h = realloc(cof, (n + m + 1) * sizeof *cof);
        if (g) all = g;
        if (h) cof = h;
        if (!g || !h) { chunks_free(cs, m); st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); break; }
        memcpy(all + n, cs, m * sizeof *cs);
        for (size_t j = 0; j < m; j++) cof[n + j] = ci;
        n += m;
        free(cs);
    }
    free(text);
    if (st == KOKORO_OK && n == 0) st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: nothing to speak", req->input_path);
    if (st != KOKORO_OK) {
        chunks_free(all, n);
        free(cof);
        free(chs);
        return st;
    }
    *out = all;
    *chap_of = cof;
    *n_out = n;
    if (chs_out) *chs_out = chs;
    else free(chs);
    return KOKORO_OK;
}

kokoro_status kk_backend_book_plan(const kk_backend *be, const kk_book_request *req, size_t *n_chunks)
{
    chunk *cs;
    int *cof;
    size_t n;
    float style[KOKORO_STYLE_DIM];
    kokoro_status st = kokoro_voices_style(be->voices, req->voice, 1, style);
    if (st != KOKORO_OK) return st;
    if (!(req->speed >= 0.5f && req->speed <= 2.0f))
        return kk_error(KOKORO_ERR_INVALID_ARG, "speed %g: expected 0.5 to 2.0", (double)req->speed);
    st = book_chunks(be, req, &cs, &cof, &n, NULL);
    if (st != KOKORO_OK) return st;
    chunks_free(cs, n);
    free(cof);
    *n_chunks = n;
    return KOKORO_OK;
}

/* Writes data to path durably: temp file, fsync, rename. */
static kokoro_status write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
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

static void part_path(char *buf, size_t cap, const char *dir, size_t i)
{
    snprintf(buf, cap, "%s/chunk_%06zu.pcm", dir, i);
}

/* Concatenates the stored chunks into output_path (temp + rename). */
static kokoro_status book_assemble(const kk_book_request *req, size_t n)
{
    char tmp[4200], part[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", req->output_path) >= (int)sizeof tmp)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: path too long", req->output_path);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        part_path(part, sizeof part, req->work_dir, i);
        if (stat(part, &sb) != 0) return kk_error(KOKORO_ERR_IO, "%s: missing finished chunk", part);
        total += (uint64_t)sb.st_size;
    }
    if (total > 0xFFFFFFFFu - 36) return kk_error(KOKORO_ERR_FORMAT, "%s: audio too long for WAV", req->output_path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    uint8_t h[44];
    wav_header(h, (uint32_t)total);
    int ok = fwrite(h, 1, 44, f) == 44;
    char buf[65536];
    for (size_t i = 0; i < n && ok; i++) {
        part_path(part, sizeof part, req->work_dir, i);
        FILE *p = fopen(part, "rb");
        if (!p) { ok = 0; break; }
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, p)) > 0)
            if (fwrite(buf, 1, r, f) != r) { ok = 0; break; }
        fclose(p);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, req->output_path) != 0) {
        unlink(tmp);
        return kk_error(KOKORO_ERR_IO, "%s: cannot write the book: %s", req->output_path, strerror(errno));
    }
    return KOKORO_OK;
}

kokoro_status kk_backend_book_run(const kk_backend *be, const kk_book_request *req, size_t resume_from,
                                  kk_book_progress_fn fn, void *ud, const atomic_int *cancel)
{
    chunk *cs;
    int *cof;
    size_t n;
    book_chapter *chs;
    kokoro_status st = book_chunks(be, req, &cs, &cof, &n, &chs);
    if (st != KOKORO_OK) return st;
    if (mkdir(req->work_dir, 0755) != 0 && errno != EEXIST) {
        st = kk_error(KOKORO_ERR_IO, "%s: cannot create: %s", req->work_dir, strerror(errno));
        goto done;
    }
    if (resume_from > n) resume_from = n;
    for (size_t i = resume_from; i < n; i++) {
        if (cancel && atomic_load(cancel)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "book cancelled after %zu of %zu chunks", i, n);
            goto done;
        }
        kokoro_audio a = {0};
        st = synth_chunk(be, &cs[i], req->voice, req->speed, &a);
        if (st != KOKORO_OK) {
            kk_error_prefix("%s: chunk %zu", req->input_path, i);
            goto done;
        }
        uint8_t *pcm = malloc(a.n_samples * 2 + 1);
        if (!pcm) { kokoro_audio_free(&a); st = kk_error(KOKORO_ERR_NOMEM, "out of memory"); goto done; }
        to_s16le(a.samples, a.n_samples, pcm);
        char part[4200];
        part_path(part, sizeof part, req->work_dir, i);
        st = write_atomic(part, pcm, a.n_samples * 2);
        double secs = (double)a.n_samples / KOKORO_SAMPLE_RATE;
        free(pcm);
        kokoro_audio_free(&a);
        if (st != KOKORO_OK) goto done;
        if (fn && fn(ud, i + 1, n, cof[i], chs[cof[i]].title, secs)) {
            st = kk_error(KOKORO_ERR_CANCELLED, "book stopped after %zu of %zu chunks", i + 1, n);
            goto done;
        }
    }
    st = book_assemble(req, n);
    if (st == KOKORO_OK) { /* the book is safe: its chunks are no longer needed */
        char part[4200];
        for (size_t i = 0; i < n; i++) {
            part_path(part, sizeof part, req->work_dir, i);
            unlink(part);
        }
        rmdir(req->work_dir);
    }
done:
    chunks_free(cs, n);
    free(cof);
    free(chs);
    return st;
}
