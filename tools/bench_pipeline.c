/* kokoro-bench --text FILE | --book FILE: the seed's pipeline benchmark.
 *
 * A sequential baseline (1 worker) for every thread count in use, then each
 * workers × threads configuration. Every configuration runs in a fresh child
 * (this program again, with the hidden --one-config W,T) so that its peak
 * RSS is its own and no warm cache or thread pool carries over. A child
 * prints one "RESULT ..." line on stdout; the parent prints the table and
 * writes the JSON. The audio of each configuration is hashed (FNV-1a 64 over
 * the float samples' bytes) and compared with the sequential run at the same
 * threads per worker: OpenBLAS's sums may depend on its thread count, so
 * only equal thread counts are expected to agree bit for bit. */
#define _GNU_SOURCE /* getline, strdup */
#include "bench_pipeline.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kokoro.h"

#define BP_MAX_LIST 16
#define BP_MAX_CONFIGS (2 * BP_MAX_LIST * BP_MAX_LIST)
#define BP_MAX_TEXT (512u << 20) /* the document readers' own limit */

typedef struct bp_args {
    const char *text_path, *book_path, *model_path, *voices_path, *voice, *json_path, *out_path;
    int test_weights, async_io, oversubscribe, no_noise, first_only;
    long chars, chunk_tokens, first_tokens;
    uint64_t seed;
    int workers[BP_MAX_LIST], n_workers;
    int threads[BP_MAX_LIST], n_threads;
    int one, one_w, one_t; /* hidden: run one configuration and print its RESULT line */
} bp_args;

typedef struct bp_result {
    int workers, threads, oversubscribed;
    double load_s, wall_s, first_s, audio_s;
    uint64_t samples, hash, pieces, chapters, chars;
    long peak_rss_kib;
    int base; /* index of the sequential run at the same threads */
} bp_result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int kk_bench_pipeline_wanted(int argc, char **argv)
{
    static const char *const flags[] = {"--text", "--book", "--one-config"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) {
            size_t n = strlen(flags[k]);
            if (!strncmp(argv[i], flags[k], n) && (argv[i][n] == 0 || argv[i][n] == '=')) return 1;
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kokoro-bench (--text FILE | --book FILE) [--test-weights | --model FILE]\n"
            "                    [--voices PATH] [--voice V] [--workers LIST] [--threads LIST]\n"
            "                    [--oversubscribe] [--async-io] [--chars N] [--chunk-tokens N]\n"
            "                    [--first-chunk-tokens N] [--seed N] [--no-noise] [--first-audio-only]\n"
            "                    [--out FILE] [--json OUT]\n"
            "\n"
            "  --text FILE         one text, spoken in a single call\n"
            "  --book FILE         a txt/Markdown/EPUB/PDF book, chapter after chapter\n"
            "  --test-weights      the deterministic test weights (default when no --model;\n"
            "                      they carry no voices: give --voices)\n"
            "  --model FILE        weights from a file (its voices unless --voices)\n"
            "  --voice V           a voice or blend (default: the first voice)\n"
            "  --workers LIST      worker counts, e.g. 1,2 (default 1,2,...,cores)\n"
            "  --threads LIST      threads per worker, e.g. 1,2 (default: cores / workers);\n"
            "                      workers x threads above the cores is skipped unless\n"
            "  --oversubscribe     is given\n"
            "  --async-io          pieces are delivered on the engine's writer thread\n"
            "  --chars N           only the first N characters of the input\n"
            "  --chunk-tokens N    chunk size aimed at (default: the front end's)\n"
            "  --first-chunk-tokens N  a smaller first chunk, for fast first audio\n"
            "  --first-audio-only  each configuration stops at its first piece: the first-audio\n"
            "                      latency of a long input without speaking all of it (wall,\n"
            "                      audio and RTF then cover that piece only)\n"
            "  --out FILE          each configuration also writes its audio there\n"
            "  --json OUT          all numbers as JSON\n"
            "\n"
            "Each configuration runs in a child process of its own. The audio of each is\n"
            "compared byte for byte with the 1-worker run at the same threads per worker;\n"
            "the exit status is 1 when one differs.\n");
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "kokoro-bench: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* "1,2,4" → {1,2,4}; each in [1, 1024], no duplicates. */
static int parse_list(const char *opt, const char *s, int *out, int *n)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > 1024 || (*end && *end != ',')) {
            fprintf(stderr, "kokoro-bench: %s expects a comma-separated list of integers in [1, 1024], got '%s'\n",
                    opt, s);
            return -1;
        }
        for (int i = 0; i < *n; i++)
            if (out[i] == v) {
                fprintf(stderr, "kokoro-bench: %s lists %ld twice in '%s'\n", opt, v, s);
                return -1;
            }
        if (*n == BP_MAX_LIST) {
            fprintf(stderr, "kokoro-bench: %s lists more than %d values\n", opt, BP_MAX_LIST);
            return -1;
        }
        out[(*n)++] = (int)v;
        if (!*end) return 0;
        p = end + 1;
    }
}

enum {
    O_TEXT = 256, O_BOOK, O_MODEL, O_TESTW, O_VOICES, O_VOICE, O_WORKERS, O_THREADS, O_OVER, O_ASYNC, O_CHARS,
    O_CHUNK, O_FIRST, O_SEED, O_NONOISE, O_OUT, O_JSON, O_ONE, O_FONLY, O_HELP
};

static int parse_args(int argc, char **argv, bp_args *a)
{
    static const struct option opts[] = {
        {"text", required_argument, 0, O_TEXT},
        {"book", required_argument, 0, O_BOOK},
        {"model", required_argument, 0, O_MODEL},
        {"test-weights", no_argument, 0, O_TESTW},
        {"voices", required_argument, 0, O_VOICES},
        {"voice", required_argument, 0, O_VOICE},
        {"workers", required_argument, 0, O_WORKERS},
        {"threads", required_argument, 0, O_THREADS},
        {"oversubscribe", no_argument, 0, O_OVER},
        {"async-io", no_argument, 0, O_ASYNC},
        {"chars", required_argument, 0, O_CHARS},
        {"chunk-tokens", required_argument, 0, O_CHUNK},
        {"first-chunk-tokens", required_argument, 0, O_FIRST},
        {"seed", required_argument, 0, O_SEED},
        {"no-noise", no_argument, 0, O_NONOISE},
        {"out", required_argument, 0, O_OUT},
        {"json", required_argument, 0, O_JSON},
        {"one-config", required_argument, 0, O_ONE},
        {"first-audio-only", no_argument, 0, O_FONLY},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    memset(a, 0, sizeof *a);
    optind = 1;
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_TEXT: a->text_path = optarg; break;
        case O_BOOK: a->book_path = optarg; break;
        case O_MODEL: a->model_path = optarg; break;
        case O_TESTW: a->test_weights = 1; break;
        case O_VOICES: a->voices_path = optarg; break;
        case O_VOICE: a->voice = optarg; break;
        case O_WORKERS:
            if (parse_list("--workers", optarg, a->workers, &a->n_workers)) return 2;
            break;
        case O_THREADS:
            if (parse_list("--threads", optarg, a->threads, &a->n_threads)) return 2;
            break;
        case O_OVER: a->oversubscribe = 1; break;
        case O_ASYNC: a->async_io = 1; break;
        case O_CHARS:
            if (parse_long("--chars", optarg, 1, LONG_MAX, &a->chars)) return 2;
            break;
        case O_CHUNK:
            if (parse_long("--chunk-tokens", optarg, 1, 510, &a->chunk_tokens)) return 2;
            break;
        case O_FIRST:
            if (parse_long("--first-chunk-tokens", optarg, 1, 510, &a->first_tokens)) return 2;
            break;
        case O_SEED:
            if (parse_long("--seed", optarg, 0, LONG_MAX, &v)) return 2;
            a->seed = (uint64_t)v;
            break;
        case O_NONOISE: a->no_noise = 1; break;
        case O_OUT: a->out_path = optarg; break;
        case O_JSON: a->json_path = optarg; break;
        case O_FONLY: a->first_only = 1; break;
        case O_ONE: {
            char end;
            if (sscanf(optarg, "%d,%d%c", &a->one_w, &a->one_t, &end) != 2 || a->one_w < 1 || a->one_t < 1) {
                fprintf(stderr, "kokoro-bench: --one-config expects WORKERS,THREADS, got '%s'\n", optarg);
                return 2;
            }
            a->one = 1;
            break;
        }
        case 'h':
        case O_HELP: usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kokoro-bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!a->text_path == !a->book_path) {
        fprintf(stderr, "kokoro-bench: give exactly one of --text FILE and --book FILE\n");
        return 2;
    }
    if (a->test_weights && a->model_path) {
        fprintf(stderr, "kokoro-bench: give --test-weights or --model FILE, not both\n");
        return 2;
    }
    if (!a->model_path) a->test_weights = 1;
    if (a->test_weights && !a->voices_path) {
        fprintf(stderr, "kokoro-bench: the test weights carry no voices: give --voices PATH "
                        "(e.g. tests/data/voices)\n");
        return 2;
    }
    return 0;
}

/* ---- the child: one configuration ---- */

typedef struct bp_sink {
    double t0, first;
    uint64_t hash, samples, pieces;
    kokoro_writer *w;
    int first_only;
    atomic_int got_first; /* read by the engine's cancel poll, from any thread */
} bp_sink;

static int stop_after_first(void *user)
{
    bp_sink *s = user;
    return s->first_only && atomic_load(&s->got_first);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static kokoro_status on_piece(void *user, const kokoro_piece *p)
{
    bp_sink *s = user;
    if (s->first < 0) s->first = now() - s->t0;
    s->hash = fnv1a(s->hash, p->samples, p->n * sizeof *p->samples);
    s->samples += p->n;
    s->pieces++;
    atomic_store(&s->got_first, 1);
    return s->w ? kokoro_writer_write(s->w, p->samples, p->n) : KOKORO_OK;
}

/* The byte length of the first max_chars code points of s[0..len), cut back
 * to a space when one lies in the second half so no word is split. */
static size_t cap_chars(const char *s, size_t len, uint64_t max_chars)
{
    uint64_t cp = 0;
    size_t i = 0;
    for (; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (cp == max_chars) break;
            cp++;
        }
    }
    if (i == len) return len;
    for (size_t j = i; j > i / 2; j--)
        if (isspace((unsigned char)s[j - 1])) return j - 1;
    return i;
}

static uint64_t count_chars(const char *s, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static int read_text(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kokoro-bench: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            if (cap >= BP_MAX_TEXT) {
                fprintf(stderr, "kokoro-bench: %s: longer than %u MiB of text\n", path, BP_MAX_TEXT >> 20);
                goto fail;
            }
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                fprintf(stderr, "kokoro-bench: %s: out of memory\n", path);
                goto fail;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "kokoro-bench: cannot read %s: %s\n", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
fail:
    fclose(f);
    free(buf);
    return -1;
}

/* VmHWM from /proc/self/status, else ru_maxrss (both KiB on Linux). */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    long kib = -1;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) {
                kib = strtol(line + 6, NULL, 10);
                break;
            }
        fclose(f);
    }
    if (kib < 0) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) kib = ru.ru_maxrss;
    }
    return kib;
}

static int speak_one(kokoro_engine *e, const char *text, size_t len, const kokoro_speak_options *so, bp_sink *sink,
                     const char *what)
{
    kokoro_status st = kokoro_engine_speak(e, text, len, so, on_piece, sink);
    if (st == KOKORO_ERR_CANCELLED && stop_after_first(sink)) return 0; /* --first-audio-only */
    if (st != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s: %s\n", what, kokoro_last_error());
        return -1;
    }
    return 0;
}

static int run_one(const bp_args *a)
{
    kokoro_engine_options eo = kokoro_engine_options_default();
    if (kokoro_perf_config_from_env(&eo.perf) != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
        return 1;
    }
    eo.perf.use_parallel = a->one_w > 1;
    eo.perf.max_workers = a->one_w;
    eo.perf.threads_per_worker = a->one_t;
    eo.perf.use_async_io = a->async_io;
    eo.perf.use_memory_streaming = 1;
    eo.test_weights = a->test_weights;
    eo.model_path = a->model_path;
    eo.voices_path = a->voices_path;
    double t0 = now();
    kokoro_engine *e;
    if (kokoro_engine_open(&eo, &e) != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
        return 1;
    }
    double load = now() - t0;
    int w, t;
    kokoro_engine_workers(e, &w, &t);
    if (w != a->one_w || t != a->one_t) { /* the engine must run what the table says */
        fprintf(stderr, "kokoro-bench: asked for %d workers x %d threads, the engine runs %d x %d\n", a->one_w,
                a->one_t, w, t);
        kokoro_engine_free(e);
        return 1;
    }
    const kokoro_voices *vs = kokoro_engine_voices(e);
    const char *voice = a->voice ? a->voice : (vs && kokoro_voices_count(vs) ? kokoro_voices_name(vs, 0) : NULL);
    if (!voice) {
        fprintf(stderr, "kokoro-bench: no voices are loaded: give --voices PATH\n");
        kokoro_engine_free(e);
        return 1;
    }
    kokoro_speak_options so = kokoro_speak_options_default();
    so.voice = voice;
    so.seed = a->seed;
    so.no_noise = a->no_noise;
    so.target_tokens = (size_t)a->chunk_tokens;
    so.first_tokens = (size_t)a->first_tokens;

    bp_sink sink = {.first = -1, .hash = 14695981039346656037ull, .first_only = a->first_only};
    so.cancelled = stop_after_first;
    so.user = &sink;
    kokoro_writer_options wo = kokoro_writer_options_default();
    if (a->out_path && kokoro_writer_open(a->out_path, &wo, &sink.w) != KOKORO_OK) {
        fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
        kokoro_engine_free(e);
        return 1;
    }
    uint64_t budget = a->chars > 0 ? (uint64_t)a->chars : UINT64_MAX, used = 0, chapters = 0;
    int rc = 0;
    sink.t0 = now(); /* synthesis starts: reading the input counts, loading the model does not */
    if (a->text_path) {
        char *text;
        size_t len;
        if (read_text(a->text_path, &text, &len)) {
            rc = 1;
        } else {
            len = cap_chars(text, len, budget);
            used = count_chars(text, len);
            chapters = 1;
            if (speak_one(e, text, len, &so, &sink, a->text_path)) rc = 1;
            free(text);
        }
    } else {
        kokoro_document *doc;
        if (kokoro_document_open(a->book_path, &doc) != KOKORO_OK) {
            fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
            rc = 1;
        } else {
            /* memory streaming: one chapter's text and audio at a time */
            size_t nch = kokoro_document_chapter_count(doc);
            for (size_t i = 0; i < nch && used < budget && rc == 0 && !stop_after_first(&sink); i++) {
                char *text, what[64];
                size_t len;
                if (kokoro_document_chapter_text(doc, i, &text, &len) != KOKORO_OK) {
                    fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
                    rc = 1;
                    break;
                }
                len = cap_chars(text, len, budget - used);
                if (!blank(text, len)) {
                    used += count_chars(text, len);
                    chapters++;
                    snprintf(what, sizeof what, "chapter %zu", i + 1);
                    so.what = what;
                    if (speak_one(e, text, len, &so, &sink, what)) rc = 1;
                }
                free(text);
            }
            kokoro_document_free(doc);
            if (rc == 0 && chapters == 0) {
                fprintf(stderr, "kokoro-bench: %s: no chapter has any text\n", a->book_path);
                rc = 1;
            }
        }
    }
    double wall = now() - sink.t0;
    if (sink.w) {
        if (rc == 0 && kokoro_writer_close(sink.w) != KOKORO_OK) {
            fprintf(stderr, "kokoro-bench: %s\n", kokoro_last_error());
            rc = 1;
        } else if (rc != 0) {
            kokoro_writer_abort(sink.w);
        }
    }
    kokoro_engine_free(e);
    if (rc == 0)
        printf("RESULT %d %d %.6f %.6f %.6f %" PRIu64 " %016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %ld\n", w, t,
               load, wall, sink.first, sink.samples, sink.hash, sink.pieces, chapters, used, peak_rss_kib());
    return rc;
}

/* ---- the parent: configurations, children, table, JSON ---- */

static int run_child(int argc, char **argv, int w, int t, bp_result *r)
{
    char spec[32];
    snprintf(spec, sizeof spec, "%d,%d", w, t);
    char **cargv = calloc((size_t)argc + 3, sizeof *cargv);
    int fd[2];
    if (!cargv || pipe(fd) != 0) {
        fprintf(stderr, "kokoro-bench: cannot start a child: %s\n", strerror(errno));
        free(cargv);
        return -1;
    }
    for (int i = 0; i < argc; i++) cargv[i] = argv[i];
    cargv[argc] = "--one-config";
    cargv[argc + 1] = spec;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "kokoro-bench: fork: %s\n", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        free(cargv);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv("/proc/self/exe", cargv);
        fprintf(stderr, "kokoro-bench: cannot run /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    free(cargv);
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char *line = NULL;
    size_t cap = 0;
    int got = 0;
    if (f) {
        while (getline(&line, &cap, f) > 0) {
            char hash[32];
            if (!got && sscanf(line, "RESULT %d %d %lf %lf %lf %" SCNu64 " %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %ld",
                               &r->workers, &r->threads, &r->load_s, &r->wall_s, &r->first_s, &r->samples, hash,
                               &r->pieces, &r->chapters, &r->chars, &r->peak_rss_kib) == 11) {
                r->hash = strtoull(hash, NULL, 16);
                got = 1;
            }
        }
        fclose(f);
    } else {
        close(fd[0]);
    }
    free(line);
    int status = 0;
    pid_t wp;
    while ((wp = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (wp != pid) {
        fprintf(stderr, "kokoro-bench: waiting for configuration %d x %d: %s\n", w, t, strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !got) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "kokoro-bench: configuration %d x %d: the child died of signal %d\n", w, t,
                    WTERMSIG(status));
        else
            fprintf(stderr, "kokoro-bench: configuration %d x %d failed (exit status %d)\n", w, t,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    r->audio_s = (double)r->samples / KOKORO_SAMPLE_RATE;
    return 0;
}

static int write_file_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        fprintf(stderr, "kokoro-bench: %s: path too long\n", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f) { /* all three run, whatever the earlier ones said */
        int flushed = fflush(f) == 0, synced = fsync(fileno(f)) == 0, closed = fclose(f) == 0;
        ok = ok && flushed && synced && closed;
    }
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "kokoro-bench: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static double speedup(const bp_result *r, const bp_result *base)
{
    return r->wall_s > 0 ? base->wall_s / r->wall_s : 0;
}

static int write_json(const bp_args *a, int cores, const bp_result *res, int n, double best_seq, int all_same)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "input", a->text_path ? a->text_path : a->book_path);
    cJSON_AddStringToObject(root, "kind", a->text_path ? "text" : "book");
    cJSON_AddStringToObject(root, "model", a->test_weights ? "test weights" : a->model_path);
    cJSON_AddStringToObject(root, "version", kokoro_version());
    cJSON_AddNumberToObject(root, "cores", cores);
    cJSON_AddBoolToObject(root, "async_io", a->async_io);
    cJSON_AddBoolToObject(root, "first_audio_only", a->first_only);
    cJSON_AddNumberToObject(root, "chars", (double)res[0].chars);
    cJSON_AddNumberToObject(root, "chapters", (double)res[0].chapters);
    cJSON_AddNumberToObject(root, "chunk_tokens", (double)a->chunk_tokens);
    cJSON_AddNumberToObject(root, "first_chunk_tokens", (double)a->first_tokens);
    cJSON_AddNumberToObject(root, "seed", (double)a->seed);
    cJSON *arr = cJSON_AddArrayToObject(root, "configs");
    for (int i = 0; i < n; i++) {
        const bp_result *r = &res[i], *b = &res[r->base];
        cJSON *c = cJSON_CreateObject();
        char hash[17], base[32];
        snprintf(hash, sizeof hash, "%016" PRIx64, r->hash);
        snprintf(base, sizeof base, "%dx%d", b->workers, b->threads);
        cJSON_AddNumberToObject(c, "workers", r->workers);
        cJSON_AddNumberToObject(c, "threads", r->threads);
        cJSON_AddBoolToObject(c, "oversubscribed", r->workers * r->threads > cores);
        cJSON_AddNumberToObject(c, "load_seconds", r->load_s);
        cJSON_AddNumberToObject(c, "wall_seconds", r->wall_s);
        cJSON_AddNumberToObject(c, "audio_seconds", r->audio_s);
        cJSON_AddNumberToObject(c, "rtf", r->audio_s > 0 ? r->wall_s / r->audio_s : 0);
        cJSON_AddNumberToObject(c, "speedup", speedup(r, b));
        cJSON_AddNumberToObject(c, "efficiency", speedup(r, b) / r->workers);
        cJSON_AddNumberToObject(c, "speedup_vs_best_sequential", r->wall_s > 0 ? best_seq / r->wall_s : 0);
        cJSON_AddNumberToObject(c, "first_audio_seconds", r->first_s);
        cJSON_AddNumberToObject(c, "peak_rss_kib", (double)r->peak_rss_kib);
        cJSON_AddNumberToObject(c, "samples", (double)r->samples);
        cJSON_AddNumberToObject(c, "pieces", (double)r->pieces);
        cJSON_AddStringToObject(c, "hash", hash);
        cJSON_AddStringToObject(c, "baseline", base);
        cJSON_AddBoolToObject(c, "identical", r->hash == b->hash && r->samples == b->samples);
        cJSON_AddItemToArray(arr, c);
    }
    cJSON_AddBoolToObject(root, "all_identical", all_same);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "kokoro-bench: out of memory writing JSON\n");
        return -1;
    }
    int rc = write_file_atomic(a->json_path, text);
    free(text);
    return rc;
}

static int add_config(int (*cfg)[2], int *n, int w, int t)
{
    for (int i = 0; i < *n; i++)
        if (cfg[i][0] == w && cfg[i][1] == t) return 0;
    cfg[*n][0] = w;
    cfg[*n][1] = t;
    (*n)++;
    return 1;
}

int kk_bench_pipeline_main(int argc, char **argv)
{
    bp_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc) return prc < 0 ? 0 : prc;
    if (a.one) return run_one(&a);

    int cores = kokoro_cpu_count();
    if (cores < 1) cores = 1;
    if (!a.n_workers) { /* 1, 2, ..., the cores */
        for (int w = 1; w <= cores && w <= BP_MAX_LIST; w++) a.workers[a.n_workers++] = w;
    }
    /* the wanted configurations, then a sequential baseline for each thread count first */
    int want[BP_MAX_CONFIGS][2], nwant = 0;
    for (int i = 0; i < a.n_workers; i++) {
        int w = a.workers[i];
        if (!a.n_threads) {
            add_config(want, &nwant, w, cores / w > 0 ? cores / w : 1);
            continue;
        }
        for (int j = 0; j < a.n_threads; j++) {
            int t = a.threads[j];
            if (w * t > cores && !a.oversubscribe) {
                printf("skipping %d workers x %d threads: more than the %d cores (--oversubscribe runs it)\n", w, t,
                       cores);
                continue;
            }
            add_config(want, &nwant, w, t);
        }
    }
    if (!nwant) {
        fprintf(stderr, "kokoro-bench: no configuration left to run\n");
        return 2;
    }
    int cfg[BP_MAX_CONFIGS][2], n = 0;
    for (int i = 0; i < nwant; i++) add_config(cfg, &n, 1, want[i][1]);
    for (int i = 0; i < nwant; i++) add_config(cfg, &n, want[i][0], want[i][1]);

    bp_result *res = calloc((size_t)n, sizeof *res);
    if (!res) {
        fprintf(stderr, "kokoro-bench: out of memory\n");
        return 1;
    }
    printf("kokoro-bench %s: %s %s, %s, %d cores, %d configurations%s, each in a child process\n", kokoro_version(),
           a.text_path ? "text" : "book", a.text_path ? a.text_path : a.book_path,
           a.test_weights ? "test weights" : a.model_path, cores, n, a.async_io ? ", async I/O" : "");
    if (a.first_only) printf("first audio only: each configuration stops at its first piece\n");
    for (int i = 0; i < n; i++) {
        if (run_child(argc, argv, cfg[i][0], cfg[i][1], &res[i])) {
            free(res);
            return 1;
        }
        printf("  %d x %d: %.3f s for %.2f s of audio\n", cfg[i][0], cfg[i][1], res[i].wall_s, res[i].audio_s);
        fflush(stdout);
    }
    double best_seq = 0;
    for (int i = 0; i < n; i++) {
        res[i].base = i;
        for (int j = 0; j < n; j++)
            if (res[j].workers == 1 && res[j].threads == res[i].threads) res[i].base = j;
        if (res[i].workers == 1 && (best_seq == 0 || res[i].wall_s < best_seq)) best_seq = res[i].wall_s;
    }
    int all_same = 1;
    printf("\n%zu characters, %" PRIu64 " chapter%s\n", (size_t)res[0].chars, res[0].chapters,
           res[0].chapters == 1 ? "" : "s");
    printf("workers threads   wall s  audio s    RTF  speed-up  effic.  vs best seq  first audio s  peak RSS MiB  audio\n");
    for (int i = 0; i < n; i++) {
        const bp_result *r = &res[i], *b = &res[r->base];
        int same = r->hash == b->hash && r->samples == b->samples;
        all_same &= same;
        char cmp[48];
        if (r->base == i) snprintf(cmp, sizeof cmp, "baseline %016" PRIx64, r->hash);
        else snprintf(cmp, sizeof cmp, "%s vs %dx%d", same ? "identical" : "DIFFERENT", b->workers, b->threads);
        printf("%7d %7d %8.3f %8.2f %6.3f %9.2f %7.2f %12.2f %14.3f %13.1f  %s\n", r->workers, r->threads, r->wall_s,
               r->audio_s, r->audio_s > 0 ? r->wall_s / r->audio_s : 0, speedup(r, b), speedup(r, b) / r->workers,
               r->wall_s > 0 ? best_seq / r->wall_s : 0, r->first_s, r->peak_rss_kib / 1024.0, cmp);
    }
    printf("RTF = wall / audio; speed-up and audio are against the 1-worker run with the same threads.\n");
    int rc = all_same ? 0 : 1;
    if (!all_same) fprintf(stderr, "kokoro-bench: a configuration's audio DIFFERS from its sequential baseline\n");
    if (a.json_path && write_json(&a, cores, res, n, best_seq, all_same)) rc = 1;
    free(res);
    return rc;
}
