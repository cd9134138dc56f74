/* kokoro-server: OpenAI-compatible speech API, audiobook job queue, web UI. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kokoro.h"
#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kokoro-server [--host H] [--port P] [--data-dir DIR] [--workers N] [--job-workers N]\n"
            "                     [--model FILE | --test-weights] [--voices PATH] [--api-key KEY] [--web-dir DIR]\n"
            "                     [--threads N] [--max-body BYTES] [--max-upload BYTES] [--max-input CHARS]\n"
            "                     [--max-queue N] [--lease SECONDS] [--chunk-tokens N]\n"
            "environment: KOKORO_HOST KOKORO_PORT KOKORO_DATA_DIR KOKORO_WORKERS KOKORO_MODEL KOKORO_VOICES\n"
            "             KOKORO_API_KEY KOKORO_WEB_DIR (options win), and kokoro-tts's KOKORO_* performance\n"
            "             variables (KOKORO_USE_PARALLEL, KOKORO_MAX_WORKERS, KOKORO_THREADS...)\n"
            "model: --model, else $KOKORO_MODEL, the working folder, then the data folder, as kokoro-tts finds it\n"
            "defaults: 127.0.0.1:8880, data dir ./kokoro-data, 2 workers, 1 job worker, 1 BLAS thread per worker\n");
}

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "kokoro-server: %s '%s': an integer from %ld to %ld expected\n", opt, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int dir_exists(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int main(int argc, char **argv)
{
    kk_server_config cfg = kk_server_config_default();
    const char *e;
    long v, threads = 1;
    int threads_given = 0;
    if ((e = getenv("KOKORO_HOST")) && *e) cfg.host = e;
    if ((e = getenv("KOKORO_PORT")) && *e) {
        if (parse_long("KOKORO_PORT", e, 0, 65535, &v)) return 2;
        cfg.port = (int)v;
    }
    if ((e = getenv("KOKORO_DATA_DIR")) && *e) cfg.data_dir = e;
    if ((e = getenv("KOKORO_WORKERS")) && *e) {
        if (parse_long("KOKORO_WORKERS", e, 1, 256, &v)) return 2;
        cfg.workers = (int)v;
    }
    if ((e = getenv("KOKORO_MODEL")) && *e) cfg.backend.model_path = e;
    if ((e = getenv("KOKORO_VOICES")) && *e) cfg.backend.voices_path = e;
    if ((e = getenv("KOKORO_API_KEY")) && *e) cfg.api_key = e;
    const char *web = getenv("KOKORO_WEB_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--test-weights")) { cfg.backend.test_weights = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "kokoro-server: %s: unknown option or missing value\n", a); usage(stderr); return 2; }
        const char *val = argv[++i];
        if (!strcmp(a, "--host")) cfg.host = val;
        else if (!strcmp(a, "--port")) { if (parse_long(a, val, 0, 65535, &v)) return 2; cfg.port = (int)v; }
        else if (!strcmp(a, "--data-dir")) cfg.data_dir = val;
        else if (!strcmp(a, "--workers")) { if (parse_long(a, val, 1, 256, &v)) return 2; cfg.workers = (int)v; }
        else if (!strcmp(a, "--job-workers")) { if (parse_long(a, val, 0, 64, &v)) return 2; cfg.job_workers = (int)v; }
        else if (!strcmp(a, "--threads")) { if (parse_long(a, val, 0, 1024, &v)) return 2; threads = v; threads_given = 1; }
        else if (!strcmp(a, "--model")) cfg.backend.model_path = val;
        else if (!strcmp(a, "--voices")) cfg.backend.voices_path = val;
        else if (!strcmp(a, "--api-key")) cfg.api_key = val;
        else if (!strcmp(a, "--web-dir")) web = val;
        else if (!strcmp(a, "--max-body")) { if (parse_long(a, val, 1, 1L << 30, &v)) return 2; cfg.max_body = (size_t)v; }
        else if (!strcmp(a, "--max-upload")) { if (parse_long(a, val, 1, 1L << 34, &v)) return 2; cfg.max_upload = (size_t)v; }
        else if (!strcmp(a, "--max-input")) { if (parse_long(a, val, 1, 10000000, &v)) return 2; cfg.max_input = (size_t)v; }
        else if (!strcmp(a, "--max-queue")) { if (parse_long(a, val, 1, 100000, &v)) return 2; cfg.max_queue = (int)v; }
        else if (!strcmp(a, "--chunk-tokens")) { if (parse_long(a, val, 1, KOKORO_MAX_TOKENS, &v)) return 2; cfg.backend.chunk_tokens = (size_t)v; }
        else if (!strcmp(a, "--lease")) { if (parse_long(a, val, 1, 86400, &v)) return 2; cfg.lease_s = (double)v; }
        else { fprintf(stderr, "kokoro-server: %s: unknown option\n", a); usage(stderr); return 2; }
    }
    /* the same model discovery as kokoro-tts: named files, $KOKORO_MODEL/VOICES, ./, the data folder */
    static char model[4096], voices[4096], searched[8192];
    kokoro_status fst = kokoro_find_model_files(cfg.backend.test_weights ? NULL : cfg.backend.model_path,
                                                cfg.backend.voices_path, model, sizeof model, voices, sizeof voices,
                                                searched, sizeof searched);
    if (!cfg.backend.test_weights) {
        if (fst != KOKORO_OK) {
            fprintf(stderr, "kokoro-server: no model found (give --model FILE, or --test-weights); searched:\n%s\n",
                    searched);
            return 2;
        }
        cfg.backend.model_path = model;
    }
    if (!cfg.backend.voices_path) cfg.backend.voices_path = voices[0] ? voices : NULL;
    if (cfg.backend.test_weights && !cfg.backend.voices_path) {
        fprintf(stderr, "kokoro-server: --test-weights still needs voices: give --voices PATH\n");
        return 2;
    }
    kokoro_perf_config perf = kokoro_perf_config_default();
    if (kokoro_perf_config_from_env(&perf) != KOKORO_OK) {
        fprintf(stderr, "kokoro-server: %s\n", kokoro_last_error());
        return 2;
    }
    if (perf.gpu_batching) fprintf(stderr, "kokoro-server: this build has no GPU backend: running on the CPU\n");
    /* each speech worker is one synthesis: by default one thread each (KOKORO_THREADS or --threads to change) */
    const char *kt = getenv("KOKORO_THREADS");
    if (threads_given || !(kt && *kt)) perf.threads_per_worker = (int)threads;
    cfg.backend.perf = &perf;
    if (!web) {
#ifdef KOKORO_INSTALLED_WEB_DIR
        if (dir_exists(KOKORO_INSTALLED_WEB_DIR)) web = KOKORO_INSTALLED_WEB_DIR;
#endif
#ifdef KOKORO_SOURCE_WEB_DIR
        if (!web && dir_exists(KOKORO_SOURCE_WEB_DIR)) web = KOKORO_SOURCE_WEB_DIR;
#endif
    } else if (!dir_exists(web)) {
        fprintf(stderr, "kokoro-server: --web-dir %s: not a folder\n", web);
        return 2;
    }
    cfg.web_dir = web;

    /* signals go to sigwait below, not to the server's threads */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    kk_server *s;
    if (kk_server_start(&cfg, &s) != KOKORO_OK) {
        fprintf(stderr, "kokoro-server: %s\n", kokoro_last_error());
        return 1;
    }
    printf("kokoro-server listening on http://%s:%d/ (data %s, web %s)\n", cfg.host, kk_server_port(s), cfg.data_dir,
           web ? web : "none");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "kokoro-server: stopping (signal %d)\n", sig);
    kk_server_stop(s);
    return 0;
}
