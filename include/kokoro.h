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
    int dtype;         /* KOKORO_DTYPE_F32 (default) or KOKORO_DTYPE_BF16 */
} kokoro_synth_options;

/* Compute precision of the generator's resblock convolutions (90 % of the
 * work). BF16 rounds their inputs and weights to bfloat16 and sums in
 * float32 (AVX512-BF16 only): about twice as fast, audio within ~1e-2
 * relative L2 of float32. */
enum { KOKORO_DTYPE_F32 = 0, KOKORO_DTYPE_BF16 = 1 };
/* Non-zero when this CPU (and build) can compute in that dtype. */
KOKORO_API int kokoro_dtype_supported(int dtype);

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

#ifdef __cplusplus
}
#endif
#endif /* KOKORO_H */
