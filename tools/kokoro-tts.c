/*
 * kokoro-tts — text to speech with Kokoro-82M, flag-compatible with the
 * Python kokoro-tts. Everything here is parsing, checking and reporting;
 * the work is done by the engine API of libkokoro (include/kokoro.h).
 *
 * Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kokoro.h"
#include "cli.h"

#define MAX_INPUT_BYTES ((size_t)256 << 20) /* a book is a few MB; more is a mistake */

/* ---- options: one table for the parser, --help and the suggestions ---- */

enum {
    O_HELP = 'h',
    O_VOICE = 256, O_SPEED, O_LANG, O_FORMAT, O_MODEL, O_VOICES, O_HELP_VOICES, O_HELP_LANGUAGES, O_DEBUG, O_QUIET,
    O_SEED, O_VERSION, O_STREAM, O_PHONEMES, O_NO_TRIM, O_NO_NOISE, O_TEST_WEIGHTS, O_DOWNLOAD, O_PRINT_PHONEMES,
    O_SAMPLE_FORMAT, O_BITRATE, O_LEXICON, O_PAUSE_SENTENCE, O_PAUSE_PARAGRAPH, O_PAUSE_CLAUSE, O_CHUNK_TOKENS,
    O_FIRST_CHUNK_TOKENS, O_CONVERT, O_DTYPE, O_GPU, O_PARALLEL, O_MAX_WORKERS, O_THREADS, O_ASYNC_IO,
    O_MEMORY_STREAMING, O_CAPTIONS, O_AUDIOBOOK, O_CHAPTERS, O_SPLIT_OUTPUT, O_MERGE_CHUNKS, O_SELECT_CHAPTERS,
    O_LIST_CHAPTERS, O_KEEP_FRONT_MATTER, O_SKIP_FRONT_MATTER, O_NO_INTRO, O_INTRO_TEXT, O_COVER, O_TITLE, O_AUTHOR,
    O_NARRATOR, O_YEAR, O_GENRE, O_DESCRIPTION, O_NO_CHAPTERS, O_NO_METADATA, O_KEEP_TEMP, O_TEMP_DIR, O_CHAPTER_PAUSE,
};

typedef struct opt_doc {
    struct option o;
    const char *arg, *help;
} opt_doc;

static const opt_doc opts[] = {
    {{"voice", required_argument, 0, O_VOICE}, "V", "voice or blend: af_sarah, af_sarah:60,am_adam:40, a(2)+b(1)"},
    {{"speed", required_argument, 0, O_SPEED}, "S", "speaking speed, 0.5 to 2.0 (default 1.0)"},
    {{"lang", required_argument, 0, O_LANG}, "L", "language (default: from the voice's first letter)"},
    {{"format", required_argument, 0, O_FORMAT}, "F", "wav, mp3, flac, opus, m4a, m4b or pcm (default: from OUTPUT)"},
    {{"model", required_argument, 0, O_MODEL}, "FILE", "kokoro-v1_0.pth, a .npz, or a file from --convert"},
    {{"voices", required_argument, 0, O_VOICES}, "PATH", "voices-v1.0.bin, a .pt/.bin pack, or a folder of them"},
    {{"phonemes", no_argument, 0, O_PHONEMES}, NULL, "the input is phonemes, not text"},
    {{"print-phonemes", no_argument, 0, O_PRINT_PHONEMES}, NULL, "print each chunk's phonemes, one per line, and exit"},
    {{"lexicon", required_argument, 0, O_LEXICON}, "FILE", "your pronunciations: lines of word<TAB>phonemes"},
    {{"stream", no_argument, 0, O_STREAM}, NULL, "play through the sound card while synthesising"},
    {{"seed", required_argument, 0, O_SEED}, "N", "seed of the voice noise: same seed, same audio (default 0)"},
    {{"no-noise", no_argument, 0, O_NO_NOISE}, NULL, "no noise at all (the reference's deterministic mode)"},
    {{"no-trim", no_argument, 0, O_NO_TRIM}, NULL, "the model's output as it is: no trimming, no pauses"},
    {{"pause-sentence", required_argument, 0, O_PAUSE_SENTENCE}, "MS", "pause after a sentence (default 350)"},
    {{"pause-paragraph", required_argument, 0, O_PAUSE_PARAGRAPH}, "MS", "pause after a paragraph (default 700)"},
    {{"pause-clause", required_argument, 0, O_PAUSE_CLAUSE}, "MS", "pause where a sentence is split (default 150)"},
    {{"chunk-tokens", required_argument, 0, O_CHUNK_TOKENS}, "N", "phonemes per chunk aimed at (default 250, max 510)"},
    {{"first-chunk-tokens", required_argument, 0, O_FIRST_CHUNK_TOKENS}, "N", "a smaller first chunk: faster first audio"},
    {{"sample-format", required_argument, 0, O_SAMPLE_FORMAT}, "s16|f32", "WAV samples (default s16)"},
    {{"bitrate", required_argument, 0, O_BITRATE}, "KBPS", "MP3/Opus/AAC bitrate (default: per format)"},
    {{"captions", required_argument, 0, O_CAPTIONS}, "FILE", "write captions (.srt or .vtt) timed from the durations"},
    {{"audiobook", required_argument, 0, O_AUDIOBOOK}, "OUT", "an .m4b/.m4a audiobook: chapters, metadata, cover, intro"},
    {{"chapters", required_argument, 0, O_CHAPTERS}, "DIR", "one file per chapter, plus the whole book"},
    {{"split-output", required_argument, 0, O_SPLIT_OUTPUT}, "DIR", "one file per chunk, a folder per chapter"},
    {{"merge-chunks", no_argument, 0, O_MERGE_CHUNKS}, NULL, "with --split-output: join each chapter's chunks"},
    {{"select-chapters", required_argument, 0, O_SELECT_CHAPTERS}, "SEL", "all, last, 3, 2-5, 1,4,7-last (default all)"},
    {{"list-chapters", no_argument, 0, O_LIST_CHAPTERS}, NULL, "list the chapters with words and durations, then exit"},
    {{"keep-front-matter", no_argument, 0, O_KEEP_FRONT_MATTER}, NULL, "audiobooks: keep copyright, contents..."},
    {{"skip-front-matter", no_argument, 0, O_SKIP_FRONT_MATTER}, NULL, "skip front and back matter in any mode"},
    {{"chapter-pause", required_argument, 0, O_CHAPTER_PAUSE}, "MS", "silence between chapters (default 2000)"},
    {{"no-intro", no_argument, 0, O_NO_INTRO}, NULL, "audiobooks: no spoken introduction"},
    {{"intro-text", required_argument, 0, O_INTRO_TEXT}, "TEXT", "audiobooks: what the introduction says"},
    {{"cover", required_argument, 0, O_COVER}, "IMAGE", "cover picture (JPEG or PNG; default: the book's)"},
    {{"title", required_argument, 0, O_TITLE}, "TEXT", "metadata: title (default: the book's)"},
    {{"author", required_argument, 0, O_AUTHOR}, "TEXT", "metadata: author"},
    {{"narrator", required_argument, 0, O_NARRATOR}, "TEXT", "metadata: narrator"},
    {{"year", required_argument, 0, O_YEAR}, "YEAR", "metadata: year"},
    {{"genre", required_argument, 0, O_GENRE}, "TEXT", "metadata: genre (default Audiobook)"},
    {{"description", required_argument, 0, O_DESCRIPTION}, "TEXT", "metadata: description"},
    {{"no-chapters", no_argument, 0, O_NO_CHAPTERS}, NULL, "no chapter marks in m4a/m4b files"},
    {{"no-metadata", no_argument, 0, O_NO_METADATA}, NULL, "no tags and no cover"},
    {{"temp-dir", required_argument, 0, O_TEMP_DIR}, "DIR", "work folder for resuming (default OUTPUT.work)"},
    {{"keep-temp", no_argument, 0, O_KEEP_TEMP}, NULL, "keep the work folder after success"},
    {{"parallel", no_argument, 0, O_PARALLEL}, NULL, "synthesise chunks on several workers (same audio)"},
    {{"max-workers", required_argument, 0, O_MAX_WORKERS}, "N", "workers with --parallel (default: the cores)"},
    {{"threads", required_argument, 0, O_THREADS}, "N", "threads per worker (default: cores / workers)"},
    {{"async-io", no_argument, 0, O_ASYNC_IO}, NULL, "encode and write on a thread of its own"},
    {{"memory-streaming", no_argument, 0, O_MEMORY_STREAMING}, NULL, "one chapter in memory at a time (default)"},
    {{"gpu", no_argument, 0, O_GPU}, NULL, "accepted for compatibility: this build runs on the CPU"},
    {{"test-weights", no_argument, 0, O_TEST_WEIGHTS}, NULL, "deterministic test weights: noise, for testing only"},
    {{"download", no_argument, 0, O_DOWNLOAD}, NULL, "fetch the official model and voices into the data folder"},
    {{"convert", required_argument, 0, O_CONVERT}, "OUT", "write the model (+ voices) as one fast-loading file"},
    {{"dtype", required_argument, 0, O_DTYPE}, "f32|bf16", "weights in the --convert file (default f32)"},
    {{"help-voices", no_argument, 0, O_HELP_VOICES}, NULL, "list the voices and exit"},
    {{"help-languages", no_argument, 0, O_HELP_LANGUAGES}, NULL, "list the languages and exit"},
    {{"debug", no_argument, 0, O_DEBUG}, NULL, "print what happens to each chunk"},
    {{"quiet", no_argument, 0, O_QUIET}, NULL, "no progress, no summary (also -q)"},
    {{"version", no_argument, 0, O_VERSION}, NULL, "print the version and exit"},
    {{"help", no_argument, 0, O_HELP}, NULL, "this text (also -h)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void usage(FILE *f)
{
    fprintf(f, "Usage: kokoro-tts INPUT [OUTPUT] [options]\n\n"
               "  INPUT   a text or Markdown file, an EPUB, a PDF, or - for standard input\n"
               "  OUTPUT  an audio file (its extension picks the format; default INPUT with the\n"
               "          format's extension), or - for audio on standard output\n\n"
               "Options:\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].o.name, opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-26s %s\n", left, opts[i].help);
    }
    fprintf(f, "\nEnvironment: KOKORO_MODEL, KOKORO_VOICES, KOKORO_USE_PARALLEL, KOKORO_MAX_WORKERS,\n"
               "KOKORO_THREADS, KOKORO_ASYNC_IO, KOKORO_IO_QUEUE_SIZE, KOKORO_MEMORY_STREAMING,\n"
               "KOKORO_GPU_BATCHING, KOKORO_GPU_BATCH_SIZE (flags win over variables; an invalid\n"
               "variable is an error even when a flag overrides it: the environment is fixed, not hidden).\n\n"
               "Examples:\n"
               "  kokoro-tts story.txt story.mp3 --voice af_sarah --speed 1.1\n"
               "  echo 'Hello there.' | kokoro-tts - --stream --voice am_adam\n"
               "  kokoro-tts notes.txt - --format pcm | aplay -f S16_LE -r 24000 -c 1\n");
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
    if (la > 63 || lb > 63) return 99;
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

static void suggest(const char *arg)
{
    const char *name = arg;
    while (*name == '-') name++;
    char bare[64];
    snprintf(bare, sizeof bare, "%.*s", (int)strcspn(name, "="), name);
    fprintf(stderr, "kokoro-tts: unknown option '%s'", arg);
    size_t best = 99;
    for (size_t i = 0; i < NOPTS; i++) {
        size_t d = edit_distance(bare, opts[i].o.name);
        if (strncmp(opts[i].o.name, bare, strlen(bare)) == 0 && *bare) d = 1;
        if (d < best) best = d;
    }
    int shown = 0;
    size_t limit = strlen(bare) <= 4 ? 1 : 3;
    for (size_t i = 0; i < NOPTS && best <= limit; i++) {
        size_t d = edit_distance(bare, opts[i].o.name);
        if (strncmp(opts[i].o.name, bare, strlen(bare)) == 0 && *bare) d = 1;
        if (d == best && shown < 3) fprintf(stderr, "%s --%s", shown++ ? " or" : ". Did you mean", opts[i].o.name);
    }
    fprintf(stderr, "%s\nRun 'kokoro-tts --help' for the options.\n", shown ? "?" : "");
}

/* ---- small helpers ---- */

static int quiet, debug;

static void die_usage(const char *fmt, ...) KK_CLI_PRINTF(1, 2) __attribute__((noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kokoro-tts: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static int fail(const char *what)
{
    fprintf(stderr, "kokoro-tts: %s%s%s\n", what ? what : "", what ? ": " : "", kokoro_last_error());
    return 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) return 0;
    *out = v;
    return 1;
}

/* ---- interruption: Ctrl-C finishes nothing and leaves no file ---- */

static volatile sig_atomic_t interrupted;
/* Until the first output file is opened there is nothing to clean up, and a
 * blocked read of standard input or a long --print-phonemes could otherwise
 * not be interrupted: the handler leaves at once. Afterwards it only raises
 * the flag, the engine stops at its next check and removes its temp files. */
static volatile sig_atomic_t exit_at_once = 1, quiet_signal;

static void on_signal(int sig)
{
    interrupted = sig;
    if (exit_at_once) {
        static const char msg[] = "\nkokoro-tts: interrupted\n";
        if (!quiet_signal) (void)!write(2, msg, sizeof msg - 1);
        _exit(sig == SIGTERM ? 143 : 130);
    }
}

/* sigaction, not signal(): under -std=c11 -D_POSIX_C_SOURCE glibc's signal()
 * has System V semantics (the handler is reset after one signal, so a second
 * Ctrl-C killed us mid-cleanup and left the temp file; and no SA_RESTART).
 * The handler stays installed; SA_RESTART keeps the encoders' and writer's
 * system calls from failing with EINTR while the engine winds down. */
static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int stop_requested(void) { return interrupted != 0; }

static int is_cancelled(void *user)
{
    (void)user;
    return interrupted != 0;
}

static int exit_interrupted(void)
{
    if (!quiet) fprintf(stderr, "\nkokoro-tts: interrupted, nothing was written\n");
    return interrupted == SIGTERM ? 143 : 130;
}

/* ---- progress on a terminal ---- */

typedef struct run_state {
    int show_bar, debug_matter;
    double t0;
    double audio_s, chapter_audio_s; /* audio made: before this chapter, in it so far */
    kokoro_player *player;
    kokoro_document *doc;
} run_state;

static void progress(void *user, const kokoro_progress *p)
{
    run_state *rs = user;
    rs->chapter_audio_s = p->audio_seconds;
    if (p->done == p->total) rs->audio_s += p->audio_seconds, rs->chapter_audio_s = 0;
    if (!rs->show_bar) return;
    double elapsed = now() - rs->t0, made = rs->audio_s + rs->chapter_audio_s;
    double rtf = made > 0 ? elapsed / made : 0;
    double eta = p->done ? p->elapsed_seconds / (double)p->done * (double)(p->total - p->done) : 0;
    int width = 24, fill = p->total ? (int)((double)width * (double)p->done / (double)p->total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    /* "~": the front end is still reading ahead, the count is its estimate */
    fprintf(stderr, "\r[%s] %zu/%s%zu chunks  %.1f s audio  RTF %.2f  ETA %s%d:%02d ", bar, p->done,
            p->total_exact ? "" : "~", p->total, made, rtf, p->total_exact ? "" : "~", (int)eta / 60, (int)eta % 60);
    if (p->done == p->total) fprintf(stderr, "\n");
    fflush(stderr);
}

static void on_chapter(void *user, size_t i, size_t n, const char *title, int resumed)
{
    run_state *rs = user;
    if (resumed < 0) { /* skipped front/back matter: shown with --debug */
        kokoro_chapter_info ci;
        if (rs->debug_matter && kokoro_document_chapter_info(rs->doc, i, &ci) == KOKORO_OK)
            fprintf(stderr, "kokoro-tts: chapter %zu/%zu '%s' skipped: %s matter (%s); --keep-front-matter keeps it\n",
                    i + 1, n, title, ci.matter == KOKORO_MATTER_FRONT ? "front" : "back", ci.matter_reason);
        return;
    }
    if (rs->debug_matter && i != SIZE_MAX) {
        kokoro_chapter_info ci;
        if (kokoro_document_chapter_info(rs->doc, i, &ci) == KOKORO_OK)
            fprintf(stderr, "kokoro-tts: chapter %zu/%zu '%s' kept: %s%s%s\n", i + 1, n, title,
                    ci.matter == KOKORO_MATTER_BODY ? "body" : ci.matter == KOKORO_MATTER_FRONT ? "front matter" : "back matter",
                    *ci.matter_reason ? ", " : "", ci.matter_reason);
    }
    if (quiet) return;
    if (i == SIZE_MAX) fprintf(stderr, "Introduction%s\n", resumed ? ": done in an earlier run" : "");
    else fprintf(stderr, "Chapter %zu/%zu: %s%s\n", i + 1, n, title, resumed ? " (done in an earlier run)" : "");
}

static kokoro_status on_piece(void *user, const kokoro_piece *piece)
{
    run_state *rs = user;
    if (debug)
        fprintf(stderr, "kokoro-tts: chunk %zu/%s%zu, bytes %zu-%zu, %zu samples at %.3f s: %s\n", piece->index + 1,
                piece->count_exact ? "" : "~", piece->count, piece->src_begin, piece->src_end, piece->n,
                (double)piece->position / KOKORO_SAMPLE_RATE, piece->phonemes);
    return rs->player ? kokoro_player_write(rs->player, piece->samples, piece->n) : KOKORO_OK;
}

/* ---- input ---- */

static int is_stdin(const char *p) { return !strcmp(p, "-") || !strcmp(p, "/dev/stdin") || !strcmp(p, "CONIN$"); }

static char *read_input(const char *path, size_t *len)
{
    FILE *f = is_stdin(path) ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kokoro-tts: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_INPUT_BYTES) {
                fprintf(stderr, "kokoro-tts: %s: larger than %zu MiB; split the text into parts\n", path,
                        MAX_INPUT_BYTES >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "kokoro-tts: cannot read %s: %s\n", path, strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- the program ---- */

typedef struct cli {
    const char *input, *output, *voice, *lang, *format, *model, *voices, *lexicon, *convert, *dtype, *captions;
    const char *sample_format;
    double speed;
    long seed, bitrate, pause_sentence, pause_paragraph, pause_clause, chunk_tokens, first_tokens;
    int stream, phonemes, no_trim, no_noise, test_weights, download, print_phonemes, help_voices, help_languages;
    int gpu;
    const char *audiobook, *chapters, *split_output, *select, *intro_text, *cover, *title, *author, *narrator, *year;
    const char *genre, *description, *temp_dir;
    int merge_chunks, list_chapters, keep_front_matter, skip_front_matter, no_intro, no_chapters, no_metadata;
    int keep_temp;
    long chapter_pause;
    kokoro_perf_config perf;
} cli;

static void print_missing_model(const char *model, const char *voices, const char *searched)
{
    char data[4096];
    if (kokoro_data_dir(data, sizeof data) != KOKORO_OK) snprintf(data, sizeof data, "~/.local/share/kokoro");
    fprintf(stderr,
            "kokoro-tts: the Kokoro model files were not found.\n"
            "  needed: %s%s%s\n"
            "  looked in:\n%s"
            "Get them with:\n"
            "  kokoro-tts --download          (into %s)\n"
            "or name them with --model FILE --voices PATH (or KOKORO_MODEL / KOKORO_VOICES).\n"
            "To try the program without them: --test-weights (noise, not speech).\n",
            model, voices && *voices ? " and " : "", voices ? voices : "", searched, data);
}

static int open_engine(const cli *c, kokoro_engine **e, int need_model)
{
    kokoro_engine_options eo = kokoro_engine_options_default();
    eo.perf = c->perf;
    char model[4096], voices[4096], searched[8192];
    if (c->test_weights) {
        eo.test_weights = 1;
        if (!c->voices) {
            if (kokoro_find_model_files(NULL, NULL, model, sizeof model, voices, sizeof voices, searched,
                                        sizeof searched) != KOKORO_OK &&
                !voices[0]) {
                fprintf(stderr, "kokoro-tts: --test-weights still needs voices: give --voices PATH\n");
                return 1;
            }
            eo.voices_path = voices[0] ? voices : NULL;
        } else {
            eo.voices_path = c->voices;
        }
    } else {
        kokoro_status st = kokoro_find_model_files(c->model, c->voices, model, sizeof model, voices, sizeof voices,
                                                   searched, sizeof searched);
        if (st != KOKORO_OK) {
            if (!need_model && voices[0] && access(voices, F_OK) == 0) {
                eo.voices_path = voices;
            } else {
                print_missing_model(model, voices[0] && access(voices, F_OK) != 0 ? voices : "", searched);
                return 1;
            }
        }
        eo.model_path = model;
        eo.voices_path = voices[0] ? voices : NULL;
    }
    double t0 = now();
    if (kokoro_engine_open(&eo, e) != KOKORO_OK) return fail(NULL);
    if (debug) {
        int w, t;
        kokoro_engine_workers(*e, &w, &t);
        const kokoro_perf_config *p = kokoro_engine_perf(*e);
        fprintf(stderr,
                "kokoro-tts: %s and %s loaded in %.2f s; %d worker(s) x %d thread(s), async I/O %s, memory "
                "streaming %s\n",
                eo.test_weights ? "test weights" : eo.model_path, eo.voices_path ? eo.voices_path : "the model's voices",
                now() - t0, w, t, p->use_async_io ? "on" : "off", p->use_memory_streaming ? "on" : "off");
    }
    if (!kokoro_engine_voices(*e) || kokoro_voices_count(kokoro_engine_voices(*e)) == 0) {
        fprintf(stderr, "kokoro-tts: no voices: give --voices PATH (voices-v1.0.bin or a folder of packs)\n");
        kokoro_engine_free(*e);
        *e = NULL;
        return 1;
    }
    return 0;
}

static const char *default_voice(const kokoro_voices *v)
{
    static const char *pref[] = {"af_sarah", "af_heart"};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < kokoro_voices_count(v); i++)
            if (!strcmp(kokoro_voices_name(v, i), pref[p])) return pref[p];
    return kokoro_voices_name(v, 0);
}

static int list_voices(const cli *c)
{
    kokoro_voices *v = NULL;
    char model[4096], voices[4096], searched[8192];
    kokoro_status st;
    if (c->voices) {
        st = kokoro_voices_load(c->voices, &v);
    } else {
        st = kokoro_find_model_files(c->model, NULL, model, sizeof model, voices, sizeof voices, searched,
                                     sizeof searched);
        if (voices[0]) st = kokoro_voices_load(voices, &v);
        else if (st == KOKORO_OK) st = kokoro_voices_load(model, &v);
        else {
            print_missing_model(model, "voices-v1.0.bin", searched);
            return 1;
        }
    }
    if (st != KOKORO_OK) return fail("cannot load the voices");
    printf("Supported voices:\n");
    for (size_t i = 0; i < kokoro_voices_count(v); i++) {
        const char *name = kokoro_voices_name(v, i), *lang = kokoro_lang_from_voice(name);
        printf("    %zu. %-14s %s\n", i + 1, name, lang ? lang : "");
    }
    kokoro_voices_free(v);
    return 0;
}

static int list_languages(void)
{
    printf("Supported languages:\n");
    for (size_t i = 0; i < kokoro_lang_count(); i++) printf("    %s\n", kokoro_lang_name(i));
    printf("(by default the language follows the voice's first letter: a en-us, b en-gb, e es, f fr-fr,\n"
           " h hi, i it, p pt-br, j ja, z zh)\n");
    return 0;
}

/* Output path and format, checked before any work. */
static int resolve_output(cli *c, char *path, size_t size, kokoro_writer_options *wo)
{
    kokoro_audio_format named = KOKORO_AUDIO_AUTO;
    if (c->format && kokoro_audio_format_parse(c->format, &named) != KOKORO_OK) die_usage("%s", kokoro_last_error());
    if (c->output && !strcmp(c->output, "-")) {
        wo->format = named != KOKORO_AUDIO_AUTO ? named : KOKORO_AUDIO_PCM;
        snprintf(path, size, "-");
        if (!kokoro_audio_format_can_stream(wo->format))
            die_usage("%s cannot be written to standard output (use wav, mp3, opus or pcm)",
                      kokoro_audio_format_name(wo->format));
        return 0;
    }
    if (c->output) {
        kokoro_audio_format ext = kokoro_audio_format_from_path(c->output);
        if (named != KOKORO_AUDIO_AUTO && ext != KOKORO_AUDIO_AUTO && ext != named)
            die_usage("the output %s has a .%s extension but --format says %s", c->output,
                      kokoro_audio_format_name(ext), kokoro_audio_format_name(named));
        if (named == KOKORO_AUDIO_AUTO && ext == KOKORO_AUDIO_AUTO)
            die_usage("cannot tell the format of %s: give it an extension (.wav, .mp3, .flac, .opus, .m4a, .m4b, "
                      ".pcm) or --format",
                      c->output);
        wo->format = named != KOKORO_AUDIO_AUTO ? named : ext;
        snprintf(path, size, "%s", c->output);
        return 0;
    }
    if (is_stdin(c->input))
        die_usage("reading standard input: name the OUTPUT file (or - for standard output, or --stream)");
    wo->format = named != KOKORO_AUDIO_AUTO ? named : KOKORO_AUDIO_WAV;
    const char *slash = strrchr(c->input, '/'), *dot = strrchr(slash ? slash + 1 : c->input, '.');
    int stem = dot ? (int)(dot - c->input) : (int)strlen(c->input);
    snprintf(path, size, "%.*s.%s", stem, c->input, kokoro_audio_format_name(wo->format));
    return 0;
}

static int run_convert(const cli *c)
{
    char model[4096], voices[4096], searched[8192];
    kokoro_dtype dt = KOKORO_DTYPE_F32;
    if (c->dtype && !strcmp(c->dtype, "bf16")) dt = KOKORO_DTYPE_BF16;
    else if (c->dtype && strcmp(c->dtype, "f32")) die_usage("--dtype must be f32 or bf16, not '%s'", c->dtype);
    const char *m = NULL, *v = c->voices;
    if (!c->test_weights) {
        if (kokoro_find_model_files(c->model, c->voices, model, sizeof model, voices, sizeof voices, searched,
                                    sizeof searched) != KOKORO_OK) {
            print_missing_model(model, voices, searched);
            return 1;
        }
        m = model;
        v = voices[0] ? voices : NULL;
    }
    double t0 = now();
    exit_at_once = 0; /* the writer's temp file must go: Ctrl-C is honoured when it returns */
    kokoro_status st = kokoro_model_convert(m, v, c->convert, dt);
    if (interrupted) {
        if (st == KOKORO_OK) unlink(c->convert);
        return exit_interrupted();
    }
    if (st != KOKORO_OK) return fail("--convert");
    if (!quiet)
        fprintf(stderr, "kokoro-tts: wrote %s (%s%s) in %.1f s; use it with --model %s\n", c->convert,
                dt == KOKORO_DTYPE_BF16 ? "bfloat16" : "float32", v ? ", with the voices" : "", now() - t0,
                c->convert);
    return 0;
}

int main(int argc, char **argv)
{
    cli c = {.speed = 1.0, .pause_sentence = -1, .pause_paragraph = -1, .pause_clause = -1, .chapter_pause = -1};
    c.perf = kokoro_perf_config_default();
    /* variables first, flags override them; an invalid variable fails even
     * where a flag would override it, so a broken environment shows at once */
    if (kokoro_perf_config_from_env(&c.perf) != KOKORO_OK) {
        fprintf(stderr, "kokoro-tts: %s\n", kokoro_last_error());
        return 2;
    }
    struct option longopts[NOPTS + 1];
    for (size_t i = 0; i < NOPTS; i++) longopts[i] = opts[i].o;
    memset(&longopts[NOPTS], 0, sizeof longopts[NOPTS]);
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
        long n;
        switch (ch) {
        case O_HELP: usage(stdout); return 0;
        case O_VERSION: printf("kokoro-tts (kokoro-c) %s\n", kokoro_version()); return 0;
        case O_VOICE: c.voice = optarg; break;
        case O_SPEED:
            if (!parse_double(optarg, &c.speed)) die_usage("--speed must be a number from 0.5 to 2.0, not '%s'", optarg);
            if (c.speed < 0.5 || c.speed > 2.0) die_usage("--speed %s is out of range: use 0.5 to 2.0", optarg);
            break;
        case O_LANG: c.lang = optarg; break;
        case O_FORMAT: c.format = optarg; break;
        case O_MODEL: c.model = optarg; break;
        case O_VOICES: c.voices = optarg; break;
        case O_PHONEMES: c.phonemes = 1; break;
        case O_PRINT_PHONEMES: c.print_phonemes = 1; break;
        case O_LEXICON: c.lexicon = optarg; break;
        case O_STREAM: c.stream = 1; break;
        case O_SEED:
            if (!parse_long(optarg, 0, LONG_MAX, &n))
                die_usage("--seed must be a whole number >= 0, not '%s'", optarg);
            c.seed = n;
            break;
        case O_NO_NOISE: c.no_noise = 1; break;
        case O_NO_TRIM: c.no_trim = 1; break;
        case O_PAUSE_SENTENCE:
        case O_PAUSE_PARAGRAPH:
        case O_PAUSE_CLAUSE:
            if (!parse_long(optarg, 0, 600000, &n)) die_usage("--%s must be milliseconds from 0 to 600000, not '%s'",
                                                               ch == O_PAUSE_SENTENCE ? "pause-sentence"
                                                               : ch == O_PAUSE_PARAGRAPH ? "pause-paragraph"
                                                                                         : "pause-clause",
                                                               optarg);
            *(ch == O_PAUSE_SENTENCE ? &c.pause_sentence : ch == O_PAUSE_PARAGRAPH ? &c.pause_paragraph : &c.pause_clause) = n;
            break;
        case O_CHUNK_TOKENS:
        case O_FIRST_CHUNK_TOKENS:
            if (!parse_long(optarg, 8, KOKORO_MAX_TOKENS, &n))
                die_usage("--%s must be from 8 to %d, not '%s'", ch == O_CHUNK_TOKENS ? "chunk-tokens" : "first-chunk-tokens",
                          KOKORO_MAX_TOKENS, optarg);
            *(ch == O_CHUNK_TOKENS ? &c.chunk_tokens : &c.first_tokens) = n;
            break;
        case O_SAMPLE_FORMAT:
            if (strcmp(optarg, "s16") && strcmp(optarg, "f32")) die_usage("--sample-format must be s16 or f32, not '%s'", optarg);
            c.sample_format = optarg;
            break;
        case O_BITRATE:
            if (!parse_long(optarg, 6, 512, &n)) die_usage("--bitrate must be kbit/s from 6 to 512, not '%s'", optarg);
            c.bitrate = n;
            break;
        case O_CAPTIONS: c.captions = optarg; break;
        case O_AUDIOBOOK: c.audiobook = optarg; break;
        case O_CHAPTERS: c.chapters = optarg; break;
        case O_SPLIT_OUTPUT: c.split_output = optarg; break;
        case O_MERGE_CHUNKS: c.merge_chunks = 1; break;
        case O_SELECT_CHAPTERS: c.select = optarg; break;
        case O_LIST_CHAPTERS: c.list_chapters = 1; break;
        case O_KEEP_FRONT_MATTER: c.keep_front_matter = 1; break;
        case O_SKIP_FRONT_MATTER: c.skip_front_matter = 1; break;
        case O_NO_INTRO: c.no_intro = 1; break;
        case O_INTRO_TEXT: c.intro_text = optarg; break;
        case O_COVER: c.cover = optarg; break;
        case O_TITLE: c.title = optarg; break;
        case O_AUTHOR: c.author = optarg; break;
        case O_NARRATOR: c.narrator = optarg; break;
        case O_YEAR: c.year = optarg; break;
        case O_GENRE: c.genre = optarg; break;
        case O_DESCRIPTION: c.description = optarg; break;
        case O_NO_CHAPTERS: c.no_chapters = 1; break;
        case O_NO_METADATA: c.no_metadata = 1; break;
        case O_KEEP_TEMP: c.keep_temp = 1; break;
        case O_TEMP_DIR: c.temp_dir = optarg; break;
        case O_CHAPTER_PAUSE:
            if (!parse_long(optarg, 0, 600000, &n)) die_usage("--chapter-pause must be milliseconds from 0 to 600000, not '%s'", optarg);
            c.chapter_pause = n;
            break;
        case O_PARALLEL: c.perf.use_parallel = 1; break;
        case O_MAX_WORKERS:
            if (!parse_long(optarg, 1, 1024, &n)) die_usage("--max-workers must be a whole number >= 1, not '%s'", optarg);
            c.perf.max_workers = (int)n;
            break;
        case O_THREADS:
            if (!parse_long(optarg, 1, 1024, &n)) die_usage("--threads must be a whole number >= 1, not '%s'", optarg);
            c.perf.threads_per_worker = (int)n;
            break;
        case O_ASYNC_IO: c.perf.use_async_io = 1; break;
        case O_MEMORY_STREAMING: c.perf.use_memory_streaming = 1; break;
        case O_GPU: c.gpu = 1; break;
        case O_TEST_WEIGHTS: c.test_weights = 1; break;
        case O_DOWNLOAD: c.download = 1; break;
        case O_CONVERT: c.convert = optarg; break;
        case O_DTYPE: c.dtype = optarg; break;
        case O_HELP_VOICES: c.help_voices = 1; break;
        case O_HELP_LANGUAGES: c.help_languages = 1; break;
        case O_DEBUG: debug = 1; break;
        case O_QUIET:
        case 'q': quiet = 1; break;
        case ':': die_usage("%s needs a value", argv[optind - 1]);
        default: suggest(argv[optind - 1]); return 2;
        }
    }
    if (c.help_languages) return list_languages();
    if (c.help_voices) return list_voices(&c);
    if (c.lang && !kokoro_lang_valid(c.lang)) {
        fprintf(stderr, "kokoro-tts: unknown language '%s'; the languages are:", c.lang);
        for (size_t i = 0; i < kokoro_lang_count(); i++) fprintf(stderr, " %s", kokoro_lang_name(i));
        fprintf(stderr, "\n");
        return 2;
    }
    if (c.gpu || c.perf.gpu_batching)
        fprintf(stderr, "kokoro-tts: this build has no GPU backend: running on the CPU\n");
    quiet_signal = quiet;
    catch_signals();
    if (c.download) return kk_cli_download(quiet); /* an interrupted download resumes from its .part file */
    if (c.convert) return run_convert(&c);

    int npos = argc - optind;
    if (npos < 1) {
        fprintf(stderr, "kokoro-tts: no INPUT given\n\n");
        usage(stderr);
        return 2;
    }
    if (npos > 2) die_usage("too many arguments: '%s' (expected INPUT [OUTPUT])", argv[optind + 2]);
    c.input = argv[optind];
    c.output = npos == 2 ? argv[optind + 1] : NULL;
    if (c.stream && c.output) die_usage("--stream plays the audio: give no OUTPUT with it");

    int modes = !!c.audiobook + !!c.chapters + !!c.split_output + !!c.stream + !!c.output;
    if (modes > 1)
        die_usage("give one destination: OUTPUT, --stream, --audiobook, --chapters or --split-output");
    if (c.keep_front_matter && c.skip_front_matter) die_usage("--keep-front-matter and --skip-front-matter contradict");
    if (c.merge_chunks && !c.split_output) die_usage("--merge-chunks needs --split-output DIR");

    size_t len = 0;
    char *text = read_input(c.input, &len);
    if (!text) return 1;
    size_t blank = 0;
    while (blank < len && strchr(" \t\r\n\f\v", text[blank])) blank++;
    if (blank == len) {
        fprintf(stderr, "kokoro-tts: %s is empty: there is nothing to say\n", is_stdin(c.input) ? "the input" : c.input);
        free(text);
        return 1;
    }

    if (c.print_phonemes) {
        kokoro_frontend_options fo = kokoro_frontend_options_default();
        fo.lang = c.lang ? c.lang : (c.voice ? kokoro_lang_from_voice(c.voice) : NULL);
        fo.lexicon_path = c.lexicon;
        fo.phoneme_input = c.phonemes;
        fo.target_tokens = (size_t)c.chunk_tokens;
        fo.first_tokens = (size_t)c.first_tokens;
        kokoro_frontend *fe = NULL;
        char *lines = NULL;
        int rc = 0;
        /* an EPUB or a PDF: the selected chapters' text, one after another */
        int book = !is_stdin(c.input) && ((len >= 4 && !memcmp(text, "PK\x03\x04", 4)) ||
                                          (len >= 5 && !memcmp(text, "%PDF-", 5)));
        kokoro_document *doc = NULL;
        unsigned char *mask = NULL;
        size_t nch = 0;
        if (kokoro_frontend_new(&fo, &fe) != KOKORO_OK) {
            rc = fail(NULL);
        } else if (!book) {
            if (kokoro_frontend_phoneme_lines(fe, text, len, &lines) != KOKORO_OK) rc = fail(c.input);
            else fputs(lines, stdout);
        } else if (kokoro_document_open(c.input, &doc) != KOKORO_OK) {
            rc = fail(NULL);
        } else if (!(mask = calloc((nch = kokoro_document_chapter_count(doc)) + 1, 1))) {
            rc = fail(NULL);
        } else if (kokoro_chapter_selection_parse(c.select ? c.select : "all", nch, mask) != KOKORO_OK) {
            rc = fail(NULL);
        } else {
            for (size_t i = 0; i < nch && rc == 0; i++) {
                char *ct = NULL;
                size_t cl = 0;
                if (!mask[i]) continue;
                if (kokoro_document_chapter_text(doc, i, &ct, &cl) != KOKORO_OK) rc = fail(c.input);
                else if (cl && kokoro_frontend_phoneme_lines(fe, ct, cl, &lines) != KOKORO_OK) rc = fail(c.input);
                else if (cl) fputs(lines, stdout);
                free(lines);
                lines = NULL;
                free(ct);
            }
        }
        if (fe) kokoro_frontend_free(fe);
        kokoro_document_free(doc);
        free(mask);
        free(lines);
        free(text);
        return rc;
    }

    /* the input as a document: chapters from headings, or an EPUB's / PDF's table of contents */
    kokoro_document *doc = NULL;
    kokoro_status st = is_stdin(c.input) ? kokoro_document_open_text(text, len, "stdin", &doc)
                                         : kokoro_document_open(c.input, &doc);
    free(text);
    text = NULL;
    if (st != KOKORO_OK) return fail(NULL);
    for (size_t i = 0; debug && kokoro_document_warning(doc, i); i++)
        fprintf(stderr, "kokoro-tts: %s: %s\n", c.input, kokoro_document_warning(doc, i));
    if (c.list_chapters) {
        char *listing = NULL;
        int rc = kokoro_document_format_listing(doc, (float)c.speed, &listing) == KOKORO_OK ? 0 : fail(c.input);
        if (listing) fputs(listing, stdout);
        free(listing);
        kokoro_document_free(doc);
        return rc;
    }

    char out_path[4096] = "";
    kokoro_writer_options wo = kokoro_writer_options_default();
    kokoro_book_mode mode = KOKORO_BOOK_SINGLE;
    if (c.audiobook) {
        mode = KOKORO_BOOK_AUDIOBOOK;
        kokoro_audio_format f = kokoro_audio_format_from_path(c.audiobook);
        if (f != KOKORO_AUDIO_M4B && f != KOKORO_AUDIO_M4A)
            die_usage("--audiobook writes an .m4b or .m4a file, not '%s'", c.audiobook);
        wo.format = f;
        snprintf(out_path, sizeof out_path, "%s", c.audiobook);
    } else if (c.chapters || c.split_output) {
        mode = c.chapters ? KOKORO_BOOK_CHAPTERS : KOKORO_BOOK_SPLIT;
        if (c.format && kokoro_audio_format_parse(c.format, &wo.format) != KOKORO_OK) die_usage("%s", kokoro_last_error());
        if (wo.format == KOKORO_AUDIO_AUTO) wo.format = KOKORO_AUDIO_WAV;
        snprintf(out_path, sizeof out_path, "%s", c.chapters ? c.chapters : c.split_output);
    } else if (!c.stream) {
        resolve_output(&c, out_path, sizeof out_path, &wo);
    }
    wo.wav_float = c.sample_format && !strcmp(c.sample_format, "f32");
    wo.bitrate_kbps = (int)c.bitrate;
    wo.no_chapters = c.no_chapters;
    wo.no_metadata = c.no_metadata;
    if (c.merge_chunks) {
        exit_at_once = 0; /* the writer removes its temp file when the merge stops */
        int rc = kk_cli_merge_chunks(c.split_output, &wo, quiet, stop_requested);
        kokoro_document_free(doc);
        return rc && interrupted ? exit_interrupted() : rc;
    }

    kokoro_engine *e = NULL;
    if (open_engine(&c, &e, 1) != 0) {
        kokoro_document_free(doc);
        return 1;
    }
    const kokoro_voices *voices = kokoro_engine_voices(e);
    kokoro_book_options bo = kokoro_book_options_default();
    kokoro_speak_options *so = &bo.speak;
    so->voice = c.voice ? c.voice : default_voice(voices);
    if (!c.voice && !quiet) fprintf(stderr, "kokoro-tts: no --voice given: using %s\n", so->voice);
    so->lang = c.lang;
    so->speed = (float)c.speed;
    so->seed = (uint64_t)c.seed;
    so->no_noise = c.no_noise;
    so->phoneme_input = c.phonemes;
    so->no_trim = c.no_trim;
    so->lexicon_path = c.lexicon;
    so->target_tokens = (size_t)c.chunk_tokens;
    so->first_tokens = (size_t)c.first_tokens;
    /* playing: a small first chunk, so the first sound comes sooner. Files are
     * renamed into place only when complete: there it would only add a chunk */
    if (c.stream && !c.first_tokens) so->first_tokens = 64;
    if (c.pause_sentence >= 0) so->join.pause_ms[KOKORO_PAUSE_SENTENCE] = (int)c.pause_sentence;
    if (c.pause_paragraph >= 0) so->join.pause_ms[KOKORO_PAUSE_PARAGRAPH] = (int)c.pause_paragraph;
    if (c.pause_clause >= 0) so->join.pause_ms[KOKORO_PAUSE_CLAUSE] = (int)c.pause_clause;
    if (c.chapter_pause >= 0) so->join.pause_ms[KOKORO_PAUSE_CHAPTER] = (int)c.chapter_pause;
    run_state rs = {.show_bar = !quiet && isatty(2), .t0 = now()};
    so->progress = progress;
    so->cancelled = is_cancelled;
    so->user = &rs;
    bo.mode = mode;
    bo.writer = wo;
    bo.select = c.select;
    bo.skip_matter = c.keep_front_matter ? 0 : c.skip_front_matter ? 1 : -1;
    bo.title = c.title, bo.author = c.author, bo.narrator = c.narrator, bo.year = c.year;
    char stem[1024];
    if (!c.title && !kokoro_document_meta(doc, "title", 0)) { /* an untitled text: its file name */
        const char *base = is_stdin(c.input) ? "stdin" : strrchr(c.input, '/') ? strrchr(c.input, '/') + 1 : c.input;
        const char *dot = strrchr(base, '.');
        snprintf(stem, sizeof stem, "%.*s", dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
        bo.title = stem;
    }
    bo.genre = c.genre, bo.description = c.description, bo.cover_path = c.cover;
    bo.no_intro = c.no_intro;
    bo.intro_text = c.intro_text;
    bo.captions_path = c.captions;
    bo.work_dir = c.temp_dir;
    bo.keep_work = c.keep_temp;
    bo.chapter = on_chapter;
    char input_id[4200];
    struct stat sb;
    if (!is_stdin(c.input) && stat(c.input, &sb) == 0)
        snprintf(input_id, sizeof input_id, "%s %lld %lld", c.input, (long long)sb.st_size, (long long)sb.st_mtime);
    else
        snprintf(input_id, sizeof input_id, "stdin");
    bo.input_id = input_id;
    rs.doc = doc;
    rs.debug_matter = debug;

    exit_at_once = 0; /* from here on, files are being written: the engine cleans up */
    if (c.stream) {
        st = kokoro_player_open(0, &rs.player);
        for (size_t i = 0; st == KOKORO_OK && i < kokoro_document_chapter_count(doc); i++) {
            char *t;
            size_t tl;
            if ((st = kokoro_document_chapter_text(doc, i, &t, &tl)) != KOKORO_OK) break;
            st = kokoro_engine_speak(e, t, tl, so, on_piece, &rs);
            free(t);
        }
        if (st == KOKORO_OK) st = kokoro_player_close(rs.player), rs.player = NULL;
        kokoro_player_abort(rs.player);
    } else {
        bo.output = out_path;
        st = kokoro_engine_render(e, doc, &bo);
    }
    int rc = 0;
    if (st != KOKORO_OK) {
        rc = st == KOKORO_ERR_CANCELLED || interrupted ? exit_interrupted() : fail(NULL);
    } else if (!quiet && !c.stream && strcmp(out_path, "-") != 0) {
        double wall = now() - rs.t0;
        fprintf(stderr, "kokoro-tts: created %s: %.1f s of audio in %.1f s (real-time factor %.2f)\n", out_path,
                rs.audio_s, wall, rs.audio_s > 0 ? wall / rs.audio_s : 0);
    }
    kokoro_engine_free(e);
    kokoro_document_free(doc);
    return rc;
}
