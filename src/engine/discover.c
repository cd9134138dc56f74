/* Finding the model and the voices: what the user named, then KOKORO_MODEL /
 * KOKORO_VOICES, then the working directory, then $XDG_DATA_HOME/kokoro. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "kokoro.h"

/* Preferred first: our converted file loads fastest. */
static const char *const model_names[] = {"kokoro-v1_0.kokoro", "kokoro-v1_0.pth"};
static const char *const voices_names[] = {"voices-v1.0.bin", "voices"};

kokoro_status kokoro_data_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg == '/') n = snprintf(out, size, "%s/kokoro", xdg);
    else if (home && *home) n = snprintf(out, size, "%s/.local/share/kokoro", home);
    else return kk_error(KOKORO_ERR_INVALID_ARG, "neither XDG_DATA_HOME nor HOME is set: no data folder");
    if (n < 0 || (size_t)n >= size) return kk_error(KOKORO_ERR_INVALID_ARG, "data folder path too long");
    return KOKORO_OK;
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Appends "  <path>\n" to the searched list. */
static void note(char *searched, size_t size, const char *path)
{
    if (!searched) return;
    size_t len = strlen(searched);
    if (len < size) snprintf(searched + len, size - len, "  %s\n", path);
}

static int find_one(const char *given, const char *env, const char *const *names, size_t nnames, const char *data,
                    char *out, size_t size, char *searched, size_t ssize)
{
    const char *v = getenv(env);
    if (given) {
        snprintf(out, size, "%s", given);
        note(searched, ssize, given);
        return exists(given);
    }
    if (v && *v) {
        snprintf(out, size, "%s", v);
        note(searched, ssize, v);
        return exists(v);
    }
    char cand[4096];
    for (int where = 0; where < 2; where++) {
        if (where == 1 && !data) break;
        for (size_t i = 0; i < nnames; i++) {
            snprintf(cand, sizeof cand, "%s%s%s", where ? data : "", where ? "/" : "", names[i]);
            note(searched, ssize, cand);
            if (exists(cand)) {
                snprintf(out, size, "%s", cand);
                return 1;
            }
        }
    }
    return 0;
}

kokoro_status kokoro_find_model_files(const char *model, const char *voices, char *model_out, size_t model_size,
                                      char *voices_out, size_t voices_size, char *searched, size_t searched_size)
{
    if (!model_out || !voices_out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_find_model_files: NULL argument");
    if (searched && searched_size) searched[0] = 0;
    char data[4096];
    const char *d = kokoro_data_dir(data, sizeof data) == KOKORO_OK ? data : NULL;
    kk_error_clear();
    int have_model = find_one(model, "KOKORO_MODEL", model_names, 2, d, model_out, model_size, searched, searched_size);
    if (!have_model && !model && !getenv("KOKORO_MODEL")) snprintf(model_out, model_size, "kokoro-v1_0.pth");
    int have_voices =
        find_one(voices, "KOKORO_VOICES", voices_names, 2, d, voices_out, voices_size, searched, searched_size);
    if (!have_voices && !voices && !getenv("KOKORO_VOICES")) voices_out[0] = 0; /* maybe carried by the model */
    if (!have_model) return kk_error(KOKORO_ERR_IO, "model file %s not found", model_out);
    if (!have_voices && voices_out[0]) return kk_error(KOKORO_ERR_IO, "voices %s not found", voices_out);
    return KOKORO_OK;
}
