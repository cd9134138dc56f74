/* The narrow interface between kokoro-server and the speech engine.
 *
 * The server (HTTP API, job queue) only ever talks to this interface;
 * backend.c implements it on kokoro_engine (text front end, voices, the
 * streaming audio writer, the document readers). */
#ifndef KK_SERVER_BACKEND_H
#define KK_SERVER_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kokoro.h"

typedef struct kk_backend kk_backend;

typedef struct kk_backend_config {
    const char *model_path;  /* NULL with test_weights */
    int test_weights;        /* deterministic test weights instead of a model file */
    const char *voices_path; /* file or folder of voice packs; NULL: the model's own */
    const kokoro_perf_config *perf; /* workers, threads... (NULL: defaults) */
    const char *tmp_dir;     /* where flac/aac responses are encoded (NULL: $TMPDIR or /tmp) */
    size_t chunk_tokens;     /* books: phonemes per chunk aimed at (0: the front end's 250) */
} kk_backend_config;

kokoro_status kk_backend_open(const kk_backend_config *cfg, kk_backend **out);
void kk_backend_close(kk_backend *be);

size_t kk_backend_voice_count(const kk_backend *be);
const char *kk_backend_voice_name(const kk_backend *be, size_t i);

typedef struct kk_backend_lang {
    const char *code; /* Kokoro-FastAPI's lang_code: "a", "b", ... */
    const char *name;
} kk_backend_lang;
/* The languages a request may name; *n receives the count. */
const kk_backend_lang *kk_backend_languages(const kk_backend *be, size_t *n);

typedef struct kk_synth_request {
    const char *input;  /* UTF-8 */
    const char *voice;  /* a name or a blend ("a(2)+b(1)", "a:60,b:40") */
    float speed;        /* 0.5 .. 2.0 */
    const char *lang;   /* a code of kk_backend_languages, or NULL: from the voice */
    const char *format; /* wav, pcm, mp3, opus, aac, flac */
    int phonemes;       /* input is phonemes, not text */
    int stream;         /* a small first chunk, for fast first bytes */
} kk_synth_request;

typedef struct kk_word_time {
    const char *word; /* valid during the callback only */
    double start, end; /* seconds from the start of the whole audio */
} kk_word_time;

/* Called once per synthesised chunk with its encoded bytes (the first call
 * includes the container header) and the words that chunk spoke (flac and
 * aac, which cannot stream: words as they come, all bytes at the end). Return
 * non-zero to stop (the synthesis then ends with KOKORO_ERR_CANCELLED). */
typedef int (*kk_chunk_fn)(void *ud, const uint8_t *bytes, size_t len, const kk_word_time *words,
                           size_t n_words);

/* Checks a request without synthesising (voice, format, language, input):
 * an error here is the caller's fault (HTTP 4xx). KOKORO_ERR_FORMAT means the
 * response format is valid but this backend cannot produce it (HTTP 501). */
kokoro_status kk_backend_check(const kk_backend *be, const kk_synth_request *req);

/* Synthesises chunk by chunk; *cancel (may be NULL) is polled between chunks. */
kokoro_status kk_backend_synthesize(const kk_backend *be, const kk_synth_request *req, kk_chunk_fn fn, void *ud,
                                    const atomic_int *cancel);

/* ---- books ---- */

typedef struct kk_chapter_info {
    char title[128];
    size_t words;
} kk_chapter_info;

typedef struct kk_doc_meta {
    char title[256], author[256]; /* "" when the document has none */
    int has_cover;
} kk_doc_meta;

/* The chapters of an uploaded document (*out is malloc'd) and, when meta is
 * not NULL, its title, author and whether it has a cover (for the UI). */
kokoro_status kk_backend_chapters(const kk_backend *be, const char *path, kk_chapter_info **out, size_t *n,
                                  kk_doc_meta *meta);

/* The document's own cover (an EPUB's declared image, a PDF's first page):
 * a malloc'd copy in *data and its type ("image/jpeg", "image/png",
 * "image/webp") in *mime; *data = NULL when it has none. An error when the
 * document cannot be read. */
kokoro_status kk_backend_cover(const kk_backend *be, const char *path, uint8_t **data, size_t *len,
                               const char **mime);

typedef struct kk_book_request {
    const char *input_path;
    const char *voice;
    float speed;
    const char *lang;
    const int *chapters; /* indices to speak, in order; NULL = all */
    size_t n_chapters;
    const char *title, *author; /* metadata (NULL: from the document) */
    const char *cover_path;     /* JPEG or PNG (NULL: the document's cover) */
    const char *work_dir;       /* where finished chunks are kept between runs */
    const char *output_path;    /* written to a temp file and renamed at the end */
} kk_book_request;

/* Called after chunk `done - 1` is durably stored. Returning non-zero stops
 * the run (KOKORO_ERR_CANCELLED); the finished chunks stay in work_dir. */
typedef int (*kk_book_progress_fn)(void *ud, size_t done, size_t total, int chapter, const char *chapter_title,
                                   double chunk_seconds);

/* Number of chunks a book request will take (for progress before a run). */
kokoro_status kk_backend_book_plan(const kk_backend *be, const kk_book_request *req, size_t *n_chunks);

/* Runs a book from chunk `resume_from` (the number of chunks already finished
 * in work_dir) to the end and then writes output_path. */
kokoro_status kk_backend_book_run(const kk_backend *be, const kk_book_request *req, size_t resume_from,
                                  kk_book_progress_fn fn, void *ud, const atomic_int *cancel);

/* The output extension of book jobs ("m4b"). */
const char *kk_backend_book_ext(const kk_backend *be);

#endif
