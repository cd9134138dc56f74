/* kokoro_perf_config: defaults and the KOKORO_* environment variables. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.h"
#include "engine/perf.h"
#include "kokoro.h"

int kokoro_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 4096 ? (int)n : 1;
}

kokoro_perf_config kokoro_perf_config_default(void)
{
    kokoro_perf_config c = {0};
    c.use_parallel = 0;
    c.max_workers = 0;        /* the cores */
    c.threads_per_worker = 0; /* the cores divided among the workers */
    c.use_async_io = 0;
    c.io_queue_size = 10;
    c.use_memory_streaming = 1;
    c.gpu_batching = 0;
    c.gpu_batch_size = 4;
    return c;
}

/* true/false spelled the ways people do; anything else is an error naming the variable */
static kokoro_status parse_bool(const char *var, const char *v, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, KOKORO_OK;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(v, no[i]) == 0) return *out = 0, KOKORO_OK;
    return kk_error(KOKORO_ERR_INVALID_ARG, "%s=%s: expected true or false (also 1/0, yes/no, on/off)", var, v);
}

static kokoro_status parse_int(const char *var, const char *v, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s=%s: expected a whole number from %d to %d", var, v, min, max);
    *out = (int)n;
    return KOKORO_OK;
}

kokoro_status kokoro_perf_config_set(kokoro_perf_config *c, const char *name, const char *value)
{
    if (!c || !name || !value) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_perf_config_set: NULL argument");
    if (!strcmp(name, "KOKORO_USE_PARALLEL")) return parse_bool(name, value, &c->use_parallel);
    if (!strcmp(name, "KOKORO_ASYNC_IO")) return parse_bool(name, value, &c->use_async_io);
    if (!strcmp(name, "KOKORO_MEMORY_STREAMING")) return parse_bool(name, value, &c->use_memory_streaming);
    if (!strcmp(name, "KOKORO_GPU_BATCHING")) return parse_bool(name, value, &c->gpu_batching);
    if (!strcmp(name, "KOKORO_MAX_WORKERS"))
        return *value ? parse_int(name, value, 1, 1024, &c->max_workers) : (c->max_workers = 0, KOKORO_OK);
    if (!strcmp(name, "KOKORO_THREADS"))
        return *value ? parse_int(name, value, 1, 1024, &c->threads_per_worker) : (c->threads_per_worker = 0, KOKORO_OK);
    if (!strcmp(name, "KOKORO_IO_QUEUE_SIZE")) return parse_int(name, value, 1, 10000, &c->io_queue_size);
    if (!strcmp(name, "KOKORO_GPU_BATCH_SIZE")) return parse_int(name, value, 1, 1024, &c->gpu_batch_size);
    return kk_error(KOKORO_ERR_INVALID_ARG, "%s: not a performance setting", name);
}

static const char *const env_names[] = {"KOKORO_USE_PARALLEL", "KOKORO_MAX_WORKERS",   "KOKORO_THREADS",
                                        "KOKORO_ASYNC_IO",     "KOKORO_IO_QUEUE_SIZE", "KOKORO_MEMORY_STREAMING",
                                        "KOKORO_GPU_BATCHING", "KOKORO_GPU_BATCH_SIZE"};

kokoro_status kokoro_perf_config_from_env(kokoro_perf_config *c)
{
    if (!c) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_perf_config_from_env: NULL argument");
    for (size_t i = 0; i < sizeof env_names / sizeof *env_names; i++) {
        const char *v = getenv(env_names[i]);
        if (!v) continue;
        kokoro_status st = kokoro_perf_config_set(c, env_names[i], v);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

void kk_perf_resolve(const kokoro_perf_config *c, int cores, int *workers, int *threads)
{
    if (cores < 1) cores = 1;
    int tw = c->threads_per_worker > 0 ? c->threads_per_worker : 0;
    int w = 1;
    if (c->use_parallel) {
        if (c->max_workers > 0) /* a maximum: within the cores unless the threads were given too */
            w = tw || c->max_workers < cores ? c->max_workers : cores;
        else /* the cores, divided by the threads asked for */
            w = tw ? (cores / tw > 0 ? cores / tw : 1) : cores;
    }
    *workers = w;
    *threads = tw ? tw : (cores / w > 0 ? cores / w : 1);
}

void kokoro_perf_config_resolve(const kokoro_perf_config *c, int *workers, int *threads)
{
    kk_perf_resolve(c, kokoro_cpu_count(), workers, threads);
}
