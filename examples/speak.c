/* The engine API: text in, audio out, the way kokoro-tts uses it.
 *   cc speak.c $(pkg-config --cflags --libs kokoro) -o speak
 *   ./speak MODEL|--test-weights VOICES "Some text." OUT.wav
 * Pieces arrive in order while synthesis goes on (here they are only
 * counted); a second call writes the same text to a file. */
#include <kokoro.h>
#include <stdio.h>
#include <string.h>

typedef struct tally {
    size_t pieces;
    unsigned long long samples, words;
} tally;

static kokoro_status on_piece(void *user, const kokoro_piece *p)
{
    tally *t = user;
    t->pieces++;
    t->samples += p->n;
    t->words += p->n_words;
    /* the count is an estimate ("~") while the front end is still reading ahead */
    printf("piece %zu/%s%zu: %zu samples at %.2f s, \"%s\"\n", p->index + 1, p->count_exact ? "" : "~", p->count, p->n,
           (double)p->position / KOKORO_SAMPLE_RATE, p->phonemes);
    return KOKORO_OK;
}

static void on_progress(void *user, const kokoro_progress *p)
{
    (void)user;
    fprintf(stderr, "  %zu/%zu chunks, %.1f s of audio\n", p->done, p->total, p->audio_seconds);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: speak MODEL|--test-weights VOICES TEXT OUT.wav\n");
        return 2;
    }
    kokoro_engine_options eo = kokoro_engine_options_default();
    if (strcmp(argv[1], "--test-weights") == 0) eo.test_weights = 1; /* noise, for testing */
    else eo.model_path = argv[1];
    eo.voices_path = argv[2];
    if (kokoro_perf_config_from_env(&eo.perf) != KOKORO_OK) { /* KOKORO_USE_PARALLEL and friends */
        fprintf(stderr, "speak: %s\n", kokoro_last_error());
        return 2;
    }
    kokoro_engine *engine;
    if (kokoro_engine_open(&eo, &engine) != KOKORO_OK) {
        fprintf(stderr, "speak: %s\n", kokoro_last_error());
        return 1;
    }
    kokoro_speak_options so = kokoro_speak_options_default();
    so.voice = kokoro_voices_name(kokoro_engine_voices(engine), 0);
    so.target_tokens = 40; /* small chunks, to show several pieces */
    so.progress = on_progress;
    tally t = {0};
    kokoro_status st = kokoro_engine_speak(engine, argv[3], strlen(argv[3]), &so, on_piece, &t);
    if (st == KOKORO_OK) st = kokoro_engine_speak_to_file(engine, argv[3], strlen(argv[3]), &so, argv[4], NULL);
    if (st != KOKORO_OK) {
        fprintf(stderr, "speak: %s\n", kokoro_last_error());
        kokoro_engine_free(engine);
        return 1;
    }
    printf("%zu pieces, %llu samples, %llu timed words; wrote %s\n", t.pieces, t.samples, t.words, argv[4]);
    kokoro_engine_free(engine);
    return 0;
}
