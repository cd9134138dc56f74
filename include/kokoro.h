/*
 * kokoro.h — public API of libkokoro, a native C implementation of the
 * Kokoro-82M text-to-speech model (StyleTTS2 / iSTFTNet).
 *
 * Conventions
 *  - Every function that can fail returns a kokoro_status; on failure
 *    kokoro_last_error() (thread-local) names what was wrong and where.
 *  - A loaded kokoro_model is read-only: any number of threads may call
 *    kokoro_synthesize() on the same model at once. Each call allocates its
 *    own scratch memory; there is no global mutable state.
 *  - Audio is mono float32 at KOKORO_SAMPLE_RATE, not clipped.
 */
#ifndef KOKORO_H
#define KOKORO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KOKORO_VERSION_MAJOR 0
#define KOKORO_VERSION_MINOR 1
#define KOKORO_VERSION_PATCH 0
#define KOKORO_VERSION_STRING "0.1.0"

#define KOKORO_SAMPLE_RATE 24000
#define KOKORO_SAMPLES_PER_FRAME 600   /* one predicted duration unit = 25 ms */
#define KOKORO_STYLE_DIM 256           /* [0,128) decoder style, [128,256) prosody style */
#define KOKORO_MAX_TOKENS 510          /* phoneme ids per call, pads excluded */
#define KOKORO_VOCAB_SIZE 178          /* ids 0..177; 0 is the pad */

#if defined(_WIN32)
#define KOKORO_API __declspec(dllexport)
#elif defined(__GNUC__)
#define KOKORO_API __attribute__((visibility("default")))
#else
#define KOKORO_API
#endif

typedef enum kokoro_status {
    KOKORO_OK = 0,
    KOKORO_ERR_INVALID_ARG = 1,  /* a caller-supplied value is out of range or NULL */
    KOKORO_ERR_IO = 2,           /* a file could not be opened, read or written */
    KOKORO_ERR_FORMAT = 3,       /* a file's contents are malformed or unsupported */
    KOKORO_ERR_NOMEM = 4,        /* an allocation failed */
    KOKORO_ERR_MODEL = 5,        /* weights missing, unexpected or of the wrong shape */
    KOKORO_ERR_CANCELLED = 6,    /* the caller asked to stop */
    KOKORO_ERR_INTERNAL = 7      /* a bug: please report it */
} kokoro_status;

/* The message of the last failure on the calling thread ("" if none). */
KOKORO_API const char *kokoro_last_error(void);
/* A short constant name for a status ("ok", "invalid argument", ...). */
KOKORO_API const char *kokoro_status_string(kokoro_status status);
KOKORO_API const char *kokoro_version(void);

/* Number of threads the numeric kernels (BLAS and the engine's own
 * convolution kernels, which start that many threads per synthesis call for
 * the time they run) may use, process-wide. n <= 0 restores the default
 * (all cores). Call before synthesising. */
KOKORO_API void kokoro_set_num_threads(int n);
KOKORO_API int kokoro_get_num_threads(void);

typedef struct kokoro_model kokoro_model;

/* Builds the model from the deterministic test weights of
 * shared/spec/test-weights.md, generated in memory. The audio such a model
 * produces is noise, not speech: it exists so that the engine can be tested
 * and benchmarked without the 327 MB official checkpoint. */
KOKORO_API kokoro_status kokoro_model_load_test_weights(kokoro_model **out);

/* Loads a model from the official checkpoint (kokoro-v1_0.pth, a PyTorch zip:
 * read without running any code), from a NumPy .npz of the same state dict
 * (keys `bert.embeddings.word_embeddings.weight`…, with or without the
 * `module.` prefix; weight dtypes float32, float16, bfloat16 or float64), or
 * from a file written by kokoro_model_convert (mapped, float32 weights used
 * in place: loading is little more than opening the file).
 * Missing, unexpected or wrongly shaped tensors are listed in the error. */
KOKORO_API kokoro_status kokoro_model_load(const char *path, kokoro_model **out);

/* How weights are stored in a converted file. */
typedef enum kokoro_dtype {
    KOKORO_DTYPE_F32 = 0,  /* float32: mapped and used in place */
    KOKORO_DTYPE_BF16 = 1, /* the decoder in bfloat16 (2/3 of the weights): widened at load */
    KOKORO_DTYPE_AUTO = 2  /* kokoro_synth_options.dtype only: the model file's type (below) */
} kokoro_dtype;

/* Writes our own model file: a versioned header (JSON: tensor table, the
 * config with its vocabulary, voice names), then every tensor 64-byte
 * aligned with weight norm already folded, then the voice packs.
 *  model_path   any file kokoro_model_load reads; NULL for the test weights
 *  voices_path  voices to carry (a file or folder kokoro_voices_load reads),
 *               or NULL; kokoro_voices_load reads them back from the file
 *  out_path     written to out_path.tmp, then renamed
 * The weights are bound once before writing, so a checkpoint the engine
 * cannot use is refused with the same message kokoro_model_load gives. */
KOKORO_API kokoro_status kokoro_model_convert(const char *model_path, const char *voices_path,
                                              const char *out_path, kokoro_dtype dtype);

KOKORO_API void kokoro_model_free(kokoro_model *model);

/* Number of parameters bound (weight norm counted before folding). */
KOKORO_API size_t kokoro_model_num_params(const kokoro_model *model);

typedef struct kokoro_synth_options {
    float speed;       /* > 0 and finite; 1.0 is normal. Durations are divided by it. */
    uint64_t seed;     /* seeds the harmonic source's noise; same seed -> same audio */
    int no_noise;      /* non-zero: zero noise and phase, as the golden reference */
    int dtype;         /* KOKORO_DTYPE_AUTO (default), _F32 or _BF16: see below */
} kokoro_synth_options;

/* dtype: the compute precision. KOKORO_DTYPE_BF16 rounds the inputs and
 * weights of the generator's resblock convolutions (90 % of the work) to
 * bfloat16 and sums in float32 (AVX512-BF16; on AMX tiles where the CPU has
 * them, and there also the decoder's 3-tap convolutions and the two
 * upsamplings), and runs ALBERT and the F0/N branches in float32 instead
 * of double: audio within ~1e-2 relative L2 of float32, about 3.5 times as
 * fast on AMX. Its repacked weights (~140 MB) are made on the first bf16
 * synthesis and kept with the model. KOKORO_DTYPE_AUTO: bf16 for a model
 * loaded from a file converted with KOKORO_DTYPE_BF16 (its weights are
 * bf16 already) on a CPU that computes in it, float32 otherwise.
 * kokoro_dtype_supported: non-zero when this CPU (and build) can compute in
 * that dtype (always for AUTO). */
KOKORO_API int kokoro_dtype_supported(int dtype);

/* speed 1.0, seed 0, noise on, dtype KOKORO_DTYPE_AUTO. */
KOKORO_API kokoro_synth_options kokoro_synth_options_default(void);

typedef struct kokoro_audio {
    float *samples;        /* n_samples mono float32 at 24 kHz */
    size_t n_samples;      /* = KOKORO_SAMPLES_PER_FRAME * sum(durations) */
    int64_t *durations;    /* frames per token, n_durations = n_ids + 2 (the pads included) */
    size_t n_durations;
} kokoro_audio;

/* Synthesises one utterance.
 *  ids    phoneme ids WITHOUT the pads (the engine adds id 0 at both ends);
 *         1..KOKORO_MAX_TOKENS of them, each a symbol of the Kokoro vocabulary.
 *  style  KOKORO_STYLE_DIM floats: one row of a voice pack.
 *  opts   NULL for the defaults.
 * On success *out owns malloc'd buffers; release them with kokoro_audio_free. */
KOKORO_API kokoro_status kokoro_synthesize(const kokoro_model *model,
                                           const int64_t *ids, size_t n_ids,
                                           const float *style,
                                           const kokoro_synth_options *opts,
                                           kokoro_audio *out);

KOKORO_API void kokoro_audio_free(kokoro_audio *audio);

/* ---- config.json: hyper-parameters and the phoneme vocabulary ---- */

typedef struct kokoro_config kokoro_config;

/* Parses a Kokoro config.json and checks that it describes the network this
 * engine implements (Kokoro-82M v1.0): a different hyper-parameter is an
 * error naming the key, the value found and the one expected. */
KOKORO_API kokoro_status kokoro_config_load(const char *path, kokoro_config **out);
KOKORO_API kokoro_status kokoro_config_parse(const char *json, size_t len, const char *what, kokoro_config **out);
/* The published v1.0 config, built in (never NULL; do not free). */
KOKORO_API const kokoro_config *kokoro_config_default(void);
KOKORO_API void kokoro_config_free(kokoro_config *config);
/* The id of one phoneme symbol (a Unicode code point), or -1 when the
 * vocabulary has none. */
KOKORO_API int64_t kokoro_config_token_id(const kokoro_config *config, uint32_t codepoint);
/* Number of symbols in the vocabulary (114 for v1.0). */
KOKORO_API size_t kokoro_config_vocab_size(const kokoro_config *config);

/* ---- voices ---- */

#define KOKORO_VOICE_ROWS 510 /* a voice pack: 510 rows of KOKORO_STYLE_DIM floats */

typedef struct kokoro_voices kokoro_voices;

/* Loads voice packs from a file or a folder. A file may be voices-v1.0.bin
 * (a NumPy .npz with one (510,1,256) float32 array per voice, stored or
 * deflated), an upstream voices/<name>.pt (torch-saved tensor) or a raw
 * <name>.bin (522,240 bytes of little-endian float32); a folder may hold any
 * of these. Names come from the entry or file names. */
KOKORO_API kokoro_status kokoro_voices_load(const char *path, kokoro_voices **out);
KOKORO_API void kokoro_voices_free(kokoro_voices *voices);
KOKORO_API size_t kokoro_voices_count(const kokoro_voices *voices);
/* Names are sorted; NULL when i is out of range. */
KOKORO_API const char *kokoro_voices_name(const kokoro_voices *voices, size_t i);

/* The style vector for one chunk of n_phonemes phonemes (the phoneme string's
 * length in code points), as the upstream pipeline picks it: row
 * n_phonemes − 1 of the pack, clamped to the pack. spec is a voice name or a
 * blend, in either syntax users know:
 *   "af_sarah:60,am_adam:40"   kokoro-tts: weights normalised to sum 1; no
 *                              weights at all means equal parts
 *   "af_sarah(2)+am_adam(1)"   Kokoro-FastAPI: '+' adds, '-' subtracts; the
 *                              weights are divided by the sum of the added ones
 * An unknown name is an error that lists the available voices. */
KOKORO_API kokoro_status kokoro_voices_style(const kokoro_voices *voices, const char *spec, size_t n_phonemes,
                                             float *style);

/* Non-zero when id is a symbol of the Kokoro v1.0 vocabulary (not the pad). */
KOKORO_API int kokoro_vocab_has_id(int64_t id);

/* The configuration the model was loaded with: the config.json found beside
 * the model file, or the built-in one. */
KOKORO_API const kokoro_config *kokoro_model_config(const kokoro_model *model);


/* ---- performance configuration ---- */

/* What the KokoroEngine of the Python kokoro-tts promised, connected here.
 * Every field has a KOKORO_* variable; command-line flags override them. */
typedef struct kokoro_perf_config {
    int use_parallel;         /* KOKORO_USE_PARALLEL: chunks synthesised by several workers */
    int max_workers;          /* KOKORO_MAX_WORKERS: 0 = the cores */
    int threads_per_worker;   /* KOKORO_THREADS: 0 = the cores divided among the workers */
    int use_async_io;         /* KOKORO_ASYNC_IO: encode/write on a thread of its own */
    int io_queue_size;        /* KOKORO_IO_QUEUE_SIZE: chunks queued for the writer (10) */
    int use_memory_streaming; /* KOKORO_MEMORY_STREAMING: one chapter in memory at a time (on);
                                 off: a book's texts are read up front, and in
                                 KOKORO_BOOK_SINGLE mode its audio is held and written
                                 at the end (the baseline streaming is measured against) */
    int gpu_batching;         /* KOKORO_GPU_BATCHING: accepted; this build computes on the CPU */
    int gpu_batch_size;       /* KOKORO_GPU_BATCH_SIZE (4) */
} kokoro_perf_config;

KOKORO_API kokoro_perf_config kokoro_perf_config_default(void);
/* Applies the KOKORO_* variables that are set; an invalid value is an error
 * naming the variable and what it expects (the config is then partly set). */
KOKORO_API kokoro_status kokoro_perf_config_from_env(kokoro_perf_config *config);
/* Sets one field by its variable name ("KOKORO_MAX_WORKERS", "4"). */
KOKORO_API kokoro_status kokoro_perf_config_set(kokoro_perf_config *config, const char *name, const char *value);
/* The worker and thread counts a config means on this machine (1 worker
 * unless use_parallel). A count left at 0 is fitted to the other, and
 * max_workers is a maximum: capped at the cores unless threads_per_worker is
 * given too. So workers × threads never exceeds the cores unless both were
 * given explicitly (or threads_per_worker alone exceeds the cores). */
KOKORO_API void kokoro_perf_config_resolve(const kokoro_perf_config *config, int *workers, int *threads);
/* Online CPU cores. */
KOKORO_API int kokoro_cpu_count(void);
/* ---- audio output: encoders, audiobooks, joins, playback ---- */

typedef enum kokoro_audio_format {
    KOKORO_AUDIO_AUTO = 0, /* from the output file's extension */
    KOKORO_AUDIO_WAV,      /* RIFF WAVE, 16-bit PCM (or float32, see wav_float) */
    KOKORO_AUDIO_FLAC,
    KOKORO_AUDIO_MP3,      /* LAME */
    KOKORO_AUDIO_OPUS,     /* Ogg Opus */
    KOKORO_AUDIO_M4A,      /* AAC in MPEG-4 */
    KOKORO_AUDIO_M4B,      /* AAC in MPEG-4, marked as an audiobook */
    KOKORO_AUDIO_PCM       /* headerless signed 16-bit little-endian */
} kokoro_audio_format;

/* "wav", "flac", "mp3", "opus" (or "ogg"), "m4a", "m4b", "pcm" (or "raw"),
 * any case. An unknown name is an error that lists the known ones. */
KOKORO_API kokoro_status kokoro_audio_format_parse(const char *name, kokoro_audio_format *out);
/* The format a path's extension names, or KOKORO_AUDIO_AUTO when none does. */
KOKORO_API kokoro_audio_format kokoro_audio_format_from_path(const char *path);
/* "wav", "flac", ... ("auto" for KOKORO_AUDIO_AUTO, NULL when out of range). */
KOKORO_API const char *kokoro_audio_format_name(kokoro_audio_format format);
/* Non-zero when the format can be written to a pipe ("-" = stdout). */
KOKORO_API int kokoro_audio_format_can_stream(kokoro_audio_format format);

/* Tags. M4A/M4B take every field (the cover as an attached picture); MP3 an
 * ID3v2 tag with every field and the cover (APIC); WAV (LIST/INFO), FLAC and
 * Ogg Opus (Vorbis comments) title, author, album, date, genre and
 * description; raw PCM none. NULL or "" fields are left out. */
typedef struct kokoro_metadata {
    const char *title;
    const char *author;      /* written as artist and album_artist */
    const char *album;       /* defaults to title when NULL */
    const char *narrator;    /* written as composer */
    const char *date;        /* year or date */
    const char *genre;
    const char *description; /* written as description and comment */
    const char *language;    /* ISO 639-2 ("eng") or 639-1 ("en") code */
    const unsigned char *cover; /* JPEG or PNG bytes (checked by magic), NULL for none */
    size_t cover_size;
} kokoro_metadata;

typedef struct kokoro_writer_options {
    kokoro_audio_format format; /* AUTO: from the extension (stdout needs a format) */
    int wav_float;              /* WAV: 32-bit float samples instead of 16-bit PCM */
    int bitrate_kbps;           /* MP3/Opus/AAC; 0: MP3 VBR quality 4, Opus 32, AAC 64 */
    int no_metadata;            /* no tags and no cover */
    int no_chapters;            /* M4A/M4B: chapters are accepted but not written */
    const kokoro_metadata *metadata; /* used at open only; NULL for none */
} kokoro_writer_options;

/* format AUTO, 16-bit WAV, default bitrates, metadata and chapters on. */
KOKORO_API kokoro_writer_options kokoro_writer_options_default(void);

typedef struct kokoro_writer kokoro_writer;

/* Opens a streaming encoder for mono float audio at KOKORO_SAMPLE_RATE.
 * path "-" writes to stdout (formats that can stream only). A file is
 * written under a temporary name in the same folder (".name.XXXXXX.tmp")
 * and renamed to path by kokoro_writer_close, so a failed or interrupted
 * run never leaves a truncated file at path. Samples are encoded as they
 * arrive: memory does not grow with the length of the audio. */
KOKORO_API kokoro_status kokoro_writer_open(const char *path, const kokoro_writer_options *opts,
                                            kokoro_writer **out);
/* Where kokoro_writer_open_sink sends encoded bytes; non-OK stops the writer. */
typedef kokoro_status (*kokoro_byte_sink)(void *user, const void *data, size_t n);
/* A writer whose encoded bytes go to sink as they are produced (e.g. an HTTP
 * response), for the formats kokoro_audio_format_can_stream accepts; the
 * format must be named (not AUTO). WAV sizes are the streaming 0xFFFFFFFF
 * sentinels; close flushes the encoder's tail into sink. */
KOKORO_API kokoro_status kokoro_writer_open_sink(kokoro_byte_sink sink, void *user,
                                                 const kokoro_writer_options *opts, kokoro_writer **out);
/* Appends n samples (clipped to [-1, 1] for the encoder). */
KOKORO_API kokoro_status kokoro_writer_write(kokoro_writer *w, const float *samples, size_t n);
/* Appends n samples of silence. */
KOKORO_API kokoro_status kokoro_writer_write_silence(kokoro_writer *w, size_t n);
/* Samples written so far. */
KOKORO_API uint64_t kokoro_writer_position(const kokoro_writer *w);
/* M4A/M4B: a chapter starting at the current position; the previous
 * chapter (if any) ends here, the last one at the end of the audio. */
KOKORO_API kokoro_status kokoro_writer_add_chapter(kokoro_writer *w, const char *title);
/* M4A/M4B: a chapter with explicit bounds in samples (start < end; chapters
 * in increasing order, not overlapping; end may lie beyond the current
 * position but must be reached by close). */
KOKORO_API kokoro_status kokoro_writer_add_chapter_at(kokoro_writer *w, const char *title,
                                                      uint64_t start, uint64_t end);
/* Finishes the stream, syncs and renames the file into place, and frees w
 * (also on failure, which removes the temporary file). */
KOKORO_API kokoro_status kokoro_writer_close(kokoro_writer *w);
/* Stops, removes everything written and frees w. NULL is a no-op. */
KOKORO_API void kokoro_writer_abort(kokoro_writer *w);

/* Joining chunk audio: trim the edge silence of each chunk, fade its edges,
 * then write a pause before the next one. */
typedef enum kokoro_pause_kind {
    KOKORO_PAUSE_NONE = 0,   /* straight join (crossfaded) */
    KOKORO_PAUSE_CLAUSE,     /* a chunk boundary inside a sentence */
    KOKORO_PAUSE_SENTENCE,
    KOKORO_PAUSE_PARAGRAPH,
    KOKORO_PAUSE_CHAPTER
} kokoro_pause_kind;

typedef struct kokoro_join_options {
    float threshold_db;  /* silence is below this level (dB, <= 0) */
    int relative;        /* non-zero: threshold_db is relative to the chunk's peak */
    int margin_ms;       /* kept before the first and after the last loud frame */
    int fade_ms;         /* fade-in/out at chunk edges, crossfade length for NONE */
    int pause_ms[5];     /* indexed by kokoro_pause_kind */
} kokoro_join_options;

/* -40 dB relative to the peak, 40 ms margin, 5 ms fades; pauses 0, 150,
 * 350, 700 and 2000 ms. */
KOKORO_API kokoro_join_options kokoro_join_options_default(void);

/* The part of x[0, n) to keep: [*start, *end). All-silent (or empty) input
 * gives *start == *end. *start is the number of samples trimmed at the front
 * (captions shift by it). */
KOKORO_API kokoro_status kokoro_audio_trim(const float *x, size_t n, const kokoro_join_options *opts,
                                           size_t *start, size_t *end);
/* Raised-cosine fade-in over the first fade_in and fade-out over the last
 * fade_out samples of x, in place (each clamped to n/2). */
KOKORO_API void kokoro_audio_fade(float *x, size_t n, size_t fade_in, size_t fade_out);
/* Equal-gain crossfade of n samples: a_tail[i] becomes a mix going from
 * a_tail to b_head (write a without its last n, then a_tail, then b from n). */
KOKORO_API void kokoro_audio_crossfade(float *a_tail, const float *b_head, size_t n);
/* Pause length in samples for a kind (0 for an invalid kind). */
KOKORO_API size_t kokoro_join_pause_samples(const kokoro_join_options *opts, kokoro_pause_kind kind);

/* Streaming joiner for the pipeline: trims each chunk, fades its edges,
 * writes the pause chosen for the boundary before it, and hands the result
 * to a writer. Keeps only the last fade of the previous chunk. */
typedef struct kokoro_joiner kokoro_joiner;
KOKORO_API kokoro_status kokoro_joiner_new(const kokoro_join_options *opts, kokoro_writer *w,
                                           kokoro_joiner **out);
/* Where the joined audio goes: n samples, or n samples of silence when
 * samples is NULL. */
typedef kokoro_status (*kokoro_sample_sink)(void *user, const float *samples, size_t n);
/* A joiner that hands its output to a function instead of a writer. */
KOKORO_API kokoro_status kokoro_joiner_new_sink(const kokoro_join_options *opts, kokoro_sample_sink sink,
                                                void *user, kokoro_joiner **out);
/* Samples handed on so far (the held-back tail not included). */
KOKORO_API uint64_t kokoro_joiner_position(const kokoro_joiner *j);
/* Adds a chunk; before is the boundary between the previous chunk and this
 * one (ignored for the first). *trimmed_front (may be NULL) receives the
 * samples trimmed at the chunk's start, *out_start (may be NULL) the writer
 * position at which the chunk's first kept sample lands. no_trim: keep
 * the chunk as it is (no trim, no fades, no pause). */
KOKORO_API kokoro_status kokoro_joiner_push(kokoro_joiner *j, const float *x, size_t n,
                                            kokoro_pause_kind before, int no_trim,
                                            size_t *trimmed_front, uint64_t *out_start);
/* Starts a chapter (M4A/M4B writers): writes what is held back (faded
 * out), then the pause for `before` (none before the first chunk), then
 * marks a chapter titled title at that sample, so the chapter's first chunk
 * (whose own `before` is then ignored) starts exactly at the mark. */
KOKORO_API kokoro_status kokoro_joiner_chapter(kokoro_joiner *j, const char *title, kokoro_pause_kind before);
/* Writes what is still held back. The writer stays open. */
KOKORO_API kokoro_status kokoro_joiner_finish(kokoro_joiner *j);
KOKORO_API void kokoro_joiner_free(kokoro_joiner *j);

/* Live playback through PortAudio (the default output device). */
typedef struct kokoro_player kokoro_player;
/* buffer_ms: ring size (0: 2000 ms). No device: KOKORO_ERR_IO with a clear
 * message ("no audio output device..."). */
KOKORO_API kokoro_status kokoro_player_open(int buffer_ms, kokoro_player **out);
/* Queues samples after the previous ones (gapless); blocks while the ring is full. */
KOKORO_API kokoro_status kokoro_player_write(kokoro_player *p, const float *x, size_t n);
/* Waits until everything queued has played, then closes and frees p. */
KOKORO_API kokoro_status kokoro_player_close(kokoro_player *p);
/* Stops at once and frees p. NULL is a no-op. */
KOKORO_API void kokoro_player_abort(kokoro_player *p);
/* ---- text front end: normalisation, phonemes (espeak-ng), chunking ---- */

/* Languages, by code: "en-us", "en-gb", "es", "fr-fr", "hi", "it", "pt-br",
 * "ja", "zh". Aliases accepted everywhere a code is: "en" (en-us), "fr",
 * "pt", "cmn", and upstream Kokoro's one-letter codes a b e f h i p j z.
 * Phonemes come from espeak-ng, whose Japanese and Mandarin support is
 * limited (kanji/hanzi are not read the way misaki reads them). */
KOKORO_API size_t kokoro_lang_count(void);
/* The i-th canonical language code, NULL when i is out of range. */
KOKORO_API const char *kokoro_lang_name(size_t i);
/* The canonical code of a code or alias ("fr" -> "fr-fr"), NULL if unknown. */
KOKORO_API const char *kokoro_lang_canonical(const char *lang);
/* Non-zero when lang is a known code or alias. */
KOKORO_API int kokoro_lang_valid(const char *lang);
/* The language of a voice from its first letter, as upstream Kokoro picks
 * it ("af_heart" -> "en-us", "bf_emma" -> "en-gb", "jf_alpha" -> "ja"...);
 * NULL when the letter names no language. */
KOKORO_API const char *kokoro_lang_from_voice(const char *voice);

typedef struct kokoro_frontend_options {
    const char *lang;          /* code or alias; NULL: "en-us" */
    const char *lexicon_path;  /* NULL, or a file of lines "word<TAB>phonemes" ('#' starts a comment) */
    size_t target_tokens;      /* chunk size aimed at; 0: 250 */
    size_t first_tokens;       /* size aimed at for the first chunk (fast first audio); 0: target_tokens */
    size_t max_tokens;         /* hard limit, 1..KOKORO_MAX_TOKENS; 0: KOKORO_MAX_TOKENS */
    int phoneme_input;         /* non-zero: the text already is phonemes (no normalisation, no G2P;
                                  [pause:Ns] markers still work) */
} kokoro_frontend_options;

KOKORO_API kokoro_frontend_options kokoro_frontend_options_default(void);

/* Immutable after creation: any number of threads may use one front end. */
typedef struct kokoro_frontend kokoro_frontend;

KOKORO_API kokoro_status kokoro_frontend_new(const kokoro_frontend_options *opts, kokoro_frontend **out);
KOKORO_API void kokoro_frontend_free(kokoro_frontend *fe);

typedef struct kokoro_word {
    size_t token_begin, token_end; /* the word's ids: chunk->ids[token_begin .. token_end) */
    size_t src_begin, src_end;     /* its bytes in the original input */
} kokoro_word;

typedef struct kokoro_chunk {
    char *text;              /* the normalised text of the chunk (UTF-8) */
    size_t src_begin, src_end; /* byte span of the chunk in the original input */
    char *phonemes;          /* IPA, vocabulary symbols only ("" for a pause) */
    int64_t *ids;            /* token ids, pads excluded; n_ids <= max_tokens; 0 for a pause
                                and for text with nothing to say (only punctuation): skip those */
    size_t n_ids;
    kokoro_word *words;      /* words in order; a word may cover several input words
                                where espeak-ng joined them ("in the" -> "ɪnðə") */
    size_t n_words;
    float pause_s;           /* > 0: a [pause:Ns] marker: silence, no ids */
    int ends_sentence;       /* the chunk ends a sentence ... */
    int ends_paragraph;      /* ... or a paragraph (a blank line), for natural pauses */
} kokoro_chunk;

/* Turns text into chunks ready for kokoro_synthesize():
 *  1. the input must be UTF-8 (else KOKORO_ERR_FORMAT naming the byte offset)
 *     and at most 16 MiB (else KOKORO_ERR_INVALID_ARG: split bigger books by chapter);
 *  2. clean-up for all languages: NFC, quotes, dashes, ellipses, odd spaces,
 *     control characters, markdown markup; English text normalisation
 *     (numbers, money, dates, times, units, abbreviations, URLs...);
 *  3. inline markup: [word](/phonemes/) speaks word as the given phonemes;
 *     [pause:1.5s] (or 300ms) becomes a chunk of silence;
 *  4. phonemes from the lexicon, else espeak-ng, punctuation kept the way
 *     phonemizer's espeak backend keeps it;
 *  5. chunks: whole sentences first, then clauses, then words, a hard split
 *     only inside a single over-long word; nothing is dropped. A
 *     paragraph's last chunk under half the target is evened out with the
 *     one before (same kind of cut or better), so no worker runs alone at
 *     the end of it.
 * Release the array with kokoro_chunks_free. */
KOKORO_API kokoro_status kokoro_frontend_chunks(const kokoro_frontend *fe, const char *text, size_t len,
                                                kokoro_chunk **chunks, size_t *n_chunks);
KOKORO_API void kokoro_chunks_free(kokoro_chunk *chunks, size_t n_chunks);
/* Frees one chunk's members (not the chunk itself) and zeroes it. */
KOKORO_API void kokoro_chunk_clear(kokoro_chunk *chunk);

/* The same chunks one at a time: the text is checked and normalised at once
 * (steps 1-3), then phonemised a paragraph at a time as chunks are asked
 * for, so the first chunk of a book-length text is ready after its first
 * paragraph, not after the whole text. kokoro_frontend_chunks is this run
 * to the end. The text is copied; fe must outlive the chunker. */
typedef struct kokoro_chunker kokoro_chunker;
KOKORO_API kokoro_status kokoro_chunker_new(const kokoro_frontend *fe, const char *text, size_t len,
                                            kokoro_chunker **out);
/* Moves the next chunk into *chunk (the caller frees it with
 * kokoro_chunk_clear) and sets *have to 1, or sets *have to 0 at the end. */
KOKORO_API kokoro_status kokoro_chunker_next(kokoro_chunker *chunker, kokoro_chunk *chunk, int *have);
/* Non-zero once the chunk last returned was the last one. */
KOKORO_API int kokoro_chunker_finished(const kokoro_chunker *chunker);
/* How many chunks the text makes: exact (and *exact set to 1) once the
 * whole text is phonemised; before that, the chunks made so far scaled by
 * the share of the text they cover, always more than those returned. */
KOKORO_API size_t kokoro_chunker_total(const kokoro_chunker *chunker, int *exact);
KOKORO_API void kokoro_chunker_free(kokoro_chunker *chunker);

/* The normalised text alone (steps 1-3), malloc'd, NUL-terminated. */
KOKORO_API kokoro_status kokoro_frontend_normalize(const kokoro_frontend *fe, const char *text, size_t len, char **out);

/* What `kokoro-tts INPUT --print-phonemes` prints: each chunk's phonemes on
 * its own line (pauses are skipped), malloc'd, NUL-terminated. */
KOKORO_API kokoro_status kokoro_frontend_phoneme_lines(const kokoro_frontend *fe, const char *text, size_t len,
                                                       char **out);


/* ---- finding the model files ---- */

/* $XDG_DATA_HOME/kokoro, else ~/.local/share/kokoro: where downloads go. */
KOKORO_API kokoro_status kokoro_data_dir(char *out, size_t size);
/* Resolves the model and the voices: the names given (NULL: not given),
 * then $KOKORO_MODEL / $KOKORO_VOICES, then the working directory, then the
 * data folder, looking for kokoro-v1_0.kokoro or kokoro-v1_0.pth, and for
 * voices-v1.0.bin or a voices/ folder. KOKORO_OK when the model exists; then
 * *voices_out is "" when no voices were found (a converted model file may
 * carry them). searched receives every path tried, one per line. */
KOKORO_API kokoro_status kokoro_find_model_files(const char *model, const char *voices, char *model_out,
                                                 size_t model_size, char *voices_out, size_t voices_size,
                                                 char *searched, size_t searched_size);

/* ---- the engine: text in, audio out ---- */

/* One loaded model with its voices and a performance config: the object the
 * CLI, the server and other programs synthesise through. Read-only once
 * open: any number of threads may call kokoro_engine_speak at once. */
typedef struct kokoro_engine kokoro_engine;

typedef struct kokoro_engine_options {
    const char *model_path;  /* any file kokoro_model_load reads */
    int test_weights;        /* instead of model_path: the deterministic test
                                weights (their audio is noise, for testing) */
    const char *voices_path; /* a file or folder kokoro_voices_load reads; NULL:
                                the voices carried by the model file */
    kokoro_perf_config perf; /* workers, threads, async I/O... */
} kokoro_engine_options;

/* No model, default perf config (the KOKORO_* variables are not read here:
 * call kokoro_perf_config_from_env on .perf to honour them). */
KOKORO_API kokoro_engine_options kokoro_engine_options_default(void);
/* Loads the model and the voices. Sets the numeric kernels' thread count
 * (process-wide) to the config's threads per worker. */
KOKORO_API kokoro_status kokoro_engine_open(const kokoro_engine_options *opts, kokoro_engine **out);
KOKORO_API void kokoro_engine_free(kokoro_engine *engine);
KOKORO_API const kokoro_model *kokoro_engine_model(const kokoro_engine *engine);
KOKORO_API const kokoro_voices *kokoro_engine_voices(const kokoro_engine *engine);
KOKORO_API const kokoro_perf_config *kokoro_engine_perf(const kokoro_engine *engine);
/* The workers and threads per worker the engine runs with. */
KOKORO_API void kokoro_engine_workers(const kokoro_engine *engine, int *workers, int *threads);

typedef struct kokoro_progress {
    const char *what;       /* what is being read (a chapter title), or NULL */
    size_t done, total;     /* chunks finished / in this call: total is an estimate
                               (always > done) until the front end has read the
                               whole text, then exact (total_exact) */
    double audio_seconds;   /* audio produced so far in this call */
    double elapsed_seconds; /* since the call began */
    int total_exact;
} kokoro_progress;

typedef struct kokoro_speak_options {
    const char *voice;        /* a name or a blend ("af_sarah:60,am_adam:40", "a(2)+b(1)") */
    const char *lang;         /* NULL: from the voice's first letter, as upstream */
    float speed;              /* 0.5 .. 2.0 */
    uint64_t seed;            /* chunk k draws its noise from (seed, k): parallel == sequential */
    int no_noise;             /* the deterministic no-noise mode of the golden reference */
    int phoneme_input;        /* the text is phonemes already */
    int no_trim;              /* the model's output as it is: no trimming, fades or pauses */
    const char *lexicon_path; /* word<TAB>phonemes lines, or NULL */
    size_t target_tokens;     /* chunk size aimed at (0: the front end's default, 250) */
    size_t first_tokens;      /* a smaller first chunk for fast first audio (0: same) */
    kokoro_join_options join; /* trimming and the pauses between chunks */
    const char *what;         /* passed through to kokoro_progress.what */
    /* Called on the calling thread after each chunk, may be NULL. */
    void (*progress)(void *user, const kokoro_progress *progress);
    /* Polled from any thread between pieces of work, may be NULL: non-zero
     * stops the call within one chunk with KOKORO_ERR_CANCELLED. */
    int (*cancelled)(void *user);
    void *user;
} kokoro_speak_options;

/* voice NULL (required), speed 1, seed 0, noise on, default joins. */
KOKORO_API kokoro_speak_options kokoro_speak_options_default(void);

/* Where one word of the input is heard, in samples from the call's start. */
typedef struct kokoro_word_time {
    size_t src_begin, src_end; /* the word's bytes in the input text */
    uint64_t start, end;
} kokoro_word_time;

/* The audio of one chunk, joined and ready to write or play: it continues
 * the previous piece exactly (pauses and crossfades included). */
typedef struct kokoro_piece {
    const float *samples;
    size_t n;
    uint64_t position;          /* where samples[0] lies, from the call's start */
    size_t index, count;        /* chunk index, chunks in this call (an estimate,
                                   > index + 1, until count_exact; see kokoro_progress) */
    size_t src_begin, src_end;  /* the chunk's bytes in the input text */
    const char *phonemes;       /* what was spoken ("" for a pause) */
    const kokoro_word_time *words;
    size_t n_words;
    int count_exact;
} kokoro_piece;

/* Receives the pieces strictly in order, one at a time (on the writer thread
 * when async I/O is on, else on the calling thread). Non-OK stops the call. */
typedef kokoro_status (*kokoro_piece_fn)(void *user, const kokoro_piece *piece);

/* Text → chunks (the front end) → synthesis (in parallel when the perf
 * config says so; the output is identical either way) → joins → fn. The
 * front end works a paragraph ahead of synthesis, so the first piece comes
 * after the first paragraph is phonemised, however long the text. The text
 * is checked (UTF-8, size, not empty) before any piece is delivered; a later
 * front-end failure (out of memory) stops the call like a synthesis error. */
KOKORO_API kokoro_status kokoro_engine_speak(kokoro_engine *engine, const char *text, size_t len,
                                             const kokoro_speak_options *opts, kokoro_piece_fn fn, void *user);
/* kokoro_engine_speak into a file (or "-": stdout), written atomically. */
KOKORO_API kokoro_status kokoro_engine_speak_to_file(kokoro_engine *engine, const char *text, size_t len,
                                                     const kokoro_speak_options *opts, const char *path,
                                                     const kokoro_writer_options *wopts);

/* ---- captions ---- */

/* SubRip (.srt) or WebVTT (.vtt, with word timestamps), chosen by the
 * extension; written to path.tmp and renamed at close. */
typedef struct kokoro_captions kokoro_captions;
KOKORO_API kokoro_status kokoro_captions_open(const char *path, kokoro_captions **out);
/* Cues for one piece: about a sentence each, split at ~84 characters.
 * text is the input the piece's spans point into; offset is added to the
 * piece's times (the stream position where its kokoro_engine_speak call began). */
KOKORO_API kokoro_status kokoro_captions_add(kokoro_captions *c, const char *text, const kokoro_piece *piece,
                                             uint64_t offset);
KOKORO_API kokoro_status kokoro_captions_close(kokoro_captions *c);
KOKORO_API void kokoro_captions_abort(kokoro_captions *c);
/* ---- documents: EPUB, PDF, plain text and Markdown, read as chapters ---- */

typedef struct kokoro_document kokoro_document;

typedef enum kokoro_document_type {
    KOKORO_DOC_TEXT = 0,
    KOKORO_DOC_MARKDOWN = 1,
    KOKORO_DOC_EPUB = 2,
    KOKORO_DOC_PDF = 3
} kokoro_document_type;

/* Where a chapter sits in the book, for front/back-matter skipping. */
typedef enum kokoro_matter {
    KOKORO_MATTER_BODY = 0,
    KOKORO_MATTER_FRONT = 1,   /* copyright, title page, dedication, contents… */
    KOKORO_MATTER_BACK = 2     /* about the author, also by, index, colophon… */
} kokoro_matter;

typedef struct kokoro_chapter_info {
    const char *title;         /* UTF-8, never NULL; owned by the document */
    int level;                 /* 1 = top level of the table of contents */
    long word_count;           /* -1 until counted (kokoro_document_count_words) */
    kokoro_matter matter;      /* the library only flags; skipping is the caller's choice */
    const char *matter_reason; /* why (for --debug), e.g. "title has \"copyright\""; "" for body */
    int first_page, last_page; /* PDF: 1-based inclusive page range; 0 otherwise */
} kokoro_chapter_info;

/* Opens a document. The type comes from the magic bytes (zip → EPUB, %PDF →
 * PDF), then the extension (.md/.markdown → Markdown), else UTF-8 text.
 * Opening reads the table of contents, metadata and cover, never all chapter
 * texts: kokoro_document_chapter_text produces one chapter on demand.
 * A document is not thread-safe; open one per thread.
 * Limits (each a clear error): zip entries of at most 64 MiB uncompressed
 * (32 MiB for the cover) and a compression ratio of at most 200:1 above 1 MiB, XML nesting of 256,
 * 20,000 chapters, 20,000 PDF pages, 512 MiB of text. */
KOKORO_API kokoro_status kokoro_document_open(const char *path, kokoro_document **out);
/* Text or Markdown from memory (e.g. stdin); name is used in messages and,
 * by its extension, to pick Markdown. The buffer is copied. */
KOKORO_API kokoro_status kokoro_document_open_text(const char *buf, size_t len, const char *name,
                                                   kokoro_document **out);
KOKORO_API void kokoro_document_free(kokoro_document *doc);
KOKORO_API kokoro_document_type kokoro_document_get_type(const kokoro_document *doc);
KOKORO_API size_t kokoro_document_chapter_count(const kokoro_document *doc);
/* Fills *info for chapter i (0-based); the strings live as long as doc. */
KOKORO_API kokoro_status kokoro_document_chapter_info(const kokoro_document *doc, size_t i,
                                                      kokoro_chapter_info *info);
/* The text of chapter i: malloc'd UTF-8, NUL-terminated, paragraphs separated
 * by a blank line (headings are paragraphs of their own); free() it. */
KOKORO_API kokoro_status kokoro_document_chapter_text(kokoro_document *doc, size_t i, char **text,
                                                      size_t *len);
/* Extracts each chapter once (freeing it again) to fill the word counts. */
KOKORO_API kokoro_status kokoro_document_count_words(kokoro_document *doc);
/* Metadata: key is "title", "creator", "language", "date", "publisher",
 * "description" or "identifier"; a key may have several values (authors).
 * Returns NULL when value i does not exist. */
KOKORO_API size_t kokoro_document_meta_count(const kokoro_document *doc, const char *key);
KOKORO_API const char *kokoro_document_meta(const kokoro_document *doc, const char *key, size_t i);
/* The cover image, owned by doc: an EPUB's declared cover (checked JPEG, PNG
 * or WebP by magic bytes), a PDF's first page rendered as PNG (at most 1200
 * pixels on the long side). *data = NULL and *len = 0 when there is none;
 * *mime "image/jpeg", "image/png" or "image/webp". */
KOKORO_API kokoro_status kokoro_document_cover(const kokoro_document *doc, const unsigned char **data,
                                               size_t *len, const char **mime);
/* Non-fatal problems met while opening (an href escaping the book, a TOC
 * entry pointing nowhere...), one per index; NULL past the end. */
KOKORO_API const char *kokoro_document_warning(const kokoro_document *doc, size_t i);

/* Parses a --select-chapters spec over n chapters: "all", "*", "last", "N",
 * "A-B", "A-last" and comma lists of these, 1-based. mask[0..n) receives 1 for
 * selected chapters, 0 otherwise. Out of range or garbage is an error naming it. */
KOKORO_API kokoro_status kokoro_chapter_selection_parse(const char *spec, size_t n, unsigned char *mask);

/* The --list-chapters listing: one line per chapter, "  N. Title  (W words,
 * ~M:SS)" indented by level, with front/back matter marked, then a total.
 * Duration = words / (150 × speed) minutes. Counts words if not yet done.
 * *out is malloc'd; free() it. */
KOKORO_API kokoro_status kokoro_document_format_listing(kokoro_document *doc, float speed, char **out);

/* ---- books: a document's chapters into audio files ---- */

typedef enum kokoro_book_mode {
    KOKORO_BOOK_SINGLE = 0,  /* one file, the chapters one after another (chapter marks in m4a/m4b) */
    KOKORO_BOOK_CHAPTERS,    /* output is a folder: Chapter_NNN_<title>.<fmt> each + <title>_Complete.<fmt> */
    KOKORO_BOOK_SPLIT,       /* output is a folder: chapter_NNN/chunk_NNN.<fmt> + info.txt */
    KOKORO_BOOK_AUDIOBOOK    /* one .m4b/.m4a: chapter marks, metadata, cover, an intro chapter */
} kokoro_book_mode;

typedef struct kokoro_book_options {
    kokoro_speak_options speak;   /* voice, speed...; progress (what = the chapter's title), cancel */
    kokoro_book_mode mode;
    const char *output;           /* a file (SINGLE, AUDIOBOOK) or a folder (CHAPTERS, SPLIT) */
    kokoro_writer_options writer; /* format (AUTO: from the output name; folders: wav), bitrate... */
    const char *select;           /* --select-chapters ("all" when NULL) */
    int skip_matter;              /* front/back matter: -1 skipped in AUDIOBOOK mode only, 0 kept, 1 skipped
                                     (only from a whole-book selection: chapters named by number are kept) */
    const char *title, *author, *narrator, *year, *genre, *description; /* NULL: from the document */
    const char *cover_path;       /* NULL: the document's cover (JPEG or PNG) */
    int no_intro;                 /* AUDIOBOOK: no spoken introduction chapter */
    const char *intro_text;       /* AUDIOBOOK: what the introduction says (NULL: title, author, narrator) */
    const char *captions_path;    /* .srt / .vtt for the whole book (SINGLE, AUDIOBOOK, CHAPTERS) */
    const char *work_dir;         /* resume folder (NULL: OUTPUT.work, or OUTPUT/.work for a folder) */
    int keep_work;                /* keep the work folder after success */
    const char *input_id;         /* names the input in the work folder's fingerprint (path, size, time) */
    /* Called when a chapter begins (index SIZE_MAX: the introduction); resumed
     * 1: it was finished by an earlier run and is not spoken again; -1: it is
     * front or back matter and skipped (called before any chapter begins). */
    void (*chapter)(void *user, size_t index, size_t count, const char *title, int resumed);
} kokoro_book_options;

KOKORO_API kokoro_book_options kokoro_book_options_default(void);
/* Speaks the selected chapters of doc. CHAPTERS and AUDIOBOOK keep every
 * finished chapter in the work folder: run again after an interruption and
 * finished chapters are not spoken again; the outputs are written only when
 * every chapter is there (AAC encoded once), then the work folder goes. */
KOKORO_API kokoro_status kokoro_engine_render(kokoro_engine *engine, kokoro_document *doc,
                                              const kokoro_book_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* KOKORO_H */
