/* The public API (include/kokoro.h): argument checks and model lifetime. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "nn/dconv.h"

int kokoro_vocab_has_id(int64_t id) { return kk_config_has_id(kokoro_config_default(), id); }

const kokoro_config *kokoro_model_config(const kokoro_model *m)
{
    return m && m->config ? m->config : kokoro_config_default();
}

/* Our kernels' thread count. OpenBLAS (ALBERT, the LSTMs, small GEMMs) always
 * runs on one thread: its results depend on its thread count, and the audio
 * must not (a parallel run equals the sequential one, byte for byte). */
static atomic_int kk_nthreads;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single(void) { openblas_set_num_threads(1); }

void kokoro_set_num_threads(int n)
{
    pthread_once(&blas_once, blas_single);
    atomic_store(&kk_nthreads, n > 0 ? n : kokoro_cpu_count());
}

int kokoro_get_num_threads(void)
{
    pthread_once(&blas_once, blas_single);
    int n = atomic_load(&kk_nthreads);
    return n > 0 ? n : kokoro_cpu_count();
}

kokoro_status kokoro_model_load_test_weights(kokoro_model **out)
{
    if (!out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_load_test_weights: out is NULL");
    *out = NULL;
    kk_table table;
    kokoro_status st = kk_test_weights_table(&table);
    if (st != KOKORO_OK) return st;
    st = kk_model_bind(&table, out);
    kk_table_free(&table);
    if (st != KOKORO_OK) kk_error_prefix("test weights");
    return st;
}

int kokoro_dtype_supported(int dtype)
{
    return dtype == KOKORO_DTYPE_F32 || dtype == KOKORO_DTYPE_AUTO ||
           (dtype == KOKORO_DTYPE_BF16 && kk_bf16_supported());
}

kokoro_synth_options kokoro_synth_options_default(void)
{
    kokoro_synth_options o = {.speed = 1.0f, .seed = 0, .no_noise = 0, .dtype = KOKORO_DTYPE_AUTO};
    return o;
}

#define KK_SPEED_MIN 0.1f
#define KK_SPEED_MAX 10.0f

kokoro_status kokoro_synthesize(const kokoro_model *model, const int64_t *ids, size_t n_ids, const float *style,
                                const kokoro_synth_options *opts, kokoro_audio *out)
{
    return kk_synthesize_profiled(model, ids, n_ids, style, opts, out, NULL);
}

kokoro_status kk_synthesize_profiled(const kokoro_model *model, const int64_t *ids, size_t n_ids, const float *style,
                                     const kokoro_synth_options *opts, kokoro_audio *out, kk_profile *prof)
{
    pthread_once(&blas_once, blas_single); /* before any BLAS call of this synthesis */
    if (!out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: out is NULL");
    memset(out, 0, sizeof *out);
    if (!model) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: model is NULL");
    if (!style) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: style is NULL (256 floats expected)");
    if (n_ids == 0) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: the token list is empty");
    if (!ids) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: ids is NULL");
    if (n_ids > KOKORO_MAX_TOKENS)
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "kokoro_synthesize: %zu tokens, more than the %d the model takes between its pads", n_ids,
                        KOKORO_MAX_TOKENS);
    for (size_t i = 0; i < n_ids; i++)
        if (!kk_config_has_id(kokoro_model_config(model), ids[i]))
            return kk_error(KOKORO_ERR_INVALID_ARG,
                            "kokoro_synthesize: token %zu is id %lld, which is not in the vocabulary (ids 1..177 "
                            "with gaps; 0 is the pad the engine adds itself)",
                            i, (long long)ids[i]);
    for (int i = 0; i < KOKORO_STYLE_DIM; i++)
        if (!isfinite(style[i]))
            return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: style[%d] is not a finite number", i);
    kokoro_synth_options o = opts ? *opts : kokoro_synth_options_default();
    if (!isfinite(o.speed) || o.speed < KK_SPEED_MIN || o.speed > KK_SPEED_MAX)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: speed %g is outside [%g, %g]", (double)o.speed,
                        (double)KK_SPEED_MIN, (double)KK_SPEED_MAX);

    if (o.dtype != KOKORO_DTYPE_F32 && o.dtype != KOKORO_DTYPE_BF16 && o.dtype != KOKORO_DTYPE_AUTO)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_synthesize: dtype %d is none of KOKORO_DTYPE_F32 (0), "
                        "KOKORO_DTYPE_BF16 (1) and KOKORO_DTYPE_AUTO (2)", o.dtype);
    if (o.dtype == KOKORO_DTYPE_AUTO)
        o.dtype = model->file_bf16 && kk_bf16_supported() ? KOKORO_DTYPE_BF16 : KOKORO_DTYPE_F32;
    if (!kokoro_dtype_supported(o.dtype))
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "kokoro_synthesize: bfloat16 compute needs a CPU with AVX512-BF16, which this one lacks");
    int T = (int)n_ids + 2;
    int64_t *padded = malloc((size_t)T * sizeof *padded);
    if (!padded) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    padded[0] = padded[T - 1] = 0;
    memcpy(padded + 1, ids, n_ids * sizeof *ids);
    kk_noise noise = {.enabled = !o.no_noise, .seed = o.seed, .prof = prof, .bf16 = o.dtype == KOKORO_DTYPE_BF16};
    float *audio;
    int64_t n, *dur;
    kokoro_status st = kk_forward(model, padded, T, style, o.speed, &noise, &audio, &n, &dur);
    free(padded);
    if (st != KOKORO_OK) return st;
    out->samples = audio;
    out->n_samples = (size_t)n;
    out->durations = dur;
    out->n_durations = (size_t)T;
    return KOKORO_OK;
}

void kokoro_audio_free(kokoro_audio *a)
{
    if (!a) return;
    free(a->samples);
    free(a->durations);
    memset(a, 0, sizeof *a);
}
