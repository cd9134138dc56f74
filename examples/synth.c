/* The smallest libkokoro program: synthesise a few phoneme ids with the
 * deterministic test weights and report what came back.
 *   cc synth.c $(pkg-config --cflags --libs kokoro) -o synth */
#include <kokoro.h>
#include <stdio.h>

int main(void)
{
    kokoro_model *model;
    if (kokoro_model_load_test_weights(&model) != KOKORO_OK) {
        fprintf(stderr, "synth: %s\n", kokoro_last_error());
        return 1;
    }
    const int64_t ids[] = {50, 156, 86, 54, 57}; /* h ˈ ɛ l o: phoneme ids without the pads */
    float style[KOKORO_STYLE_DIM] = {0};        /* normally one row of a voice pack */
    kokoro_synth_options opts = kokoro_synth_options_default();
    opts.no_noise = 1;
    kokoro_audio audio;
    kokoro_status st = kokoro_synthesize(model, ids, sizeof ids / sizeof *ids, style, &opts, &audio);
    if (st != KOKORO_OK) {
        fprintf(stderr, "synth: %s\n", kokoro_last_error());
        kokoro_model_free(model);
        return 1;
    }
    printf("libkokoro %s: %zu samples (%.2f s at %d Hz) for %zu tokens\n", kokoro_version(), audio.n_samples,
           (double)audio.n_samples / KOKORO_SAMPLE_RATE, KOKORO_SAMPLE_RATE, audio.n_durations);
    kokoro_audio_free(&audio);
    kokoro_model_free(model);
    return 0;
}
