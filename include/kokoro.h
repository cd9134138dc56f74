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

/* Number of threads the numeric kernels (BLAS) may use, process-wide.
 * n <= 0 restores the default (all cores). Call before synthesising. */
KOKORO_API void kokoro_set_num_threads(int n);
KOKORO_API int kokoro_get_num_threads(void);

typedef struct kokoro_model kokoro_model;

/* Builds the model from the deterministic test weights of
 * shared/spec/test-weights.md, generated in memory. The audio such a model
 * produces is noise, not speech: it exists so that the engine can be tested
 * and benchmarked without the 327 MB official checkpoint. */
KOKORO_API kokoro_status kokoro_model_load_test_weights(kokoro_model **out);

/* Loads a model from the official checkpoint (kokoro-v1_0.pth, a PyTorch zip:
 * read without running any code) or from a NumPy .npz of the same state dict
 * (keys `bert.embeddings.word_embeddings.weight`…, with or without the
 * `module.` prefix). Weight dtypes float32, float16, bfloat16 or float64.
 * Missing, unexpected or wrongly shaped tensors are listed in the error. */
KOKORO_API kokoro_status kokoro_model_load(const char *path, kokoro_model **out);

KOKORO_API void kokoro_model_free(kokoro_model *model);

/* Number of parameters bound (weight norm counted before folding). */
KOKORO_API size_t kokoro_model_num_params(const kokoro_model *model);

typedef struct kokoro_synth_options {
    float speed;       /* > 0 and finite; 1.0 is normal. Durations are divided by it. */
    uint64_t seed;     /* seeds the harmonic source's noise; same seed -> same audio */
    int no_noise;      /* non-zero: zero noise and phase, as the golden reference */
} kokoro_synth_options;

/* speed 1.0, seed 0, noise on. */
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

#ifdef __cplusplus
}
#endif
#endif /* KOKORO_H */
