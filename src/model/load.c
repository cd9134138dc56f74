/* Loading a model from a file of named tensors: the official PyTorch
 * checkpoint (kokoro-v1_0.pth) or a NumPy .npz of the same state dict. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/npz.h"
#include "io/torch.h"
#include "model/model.h"

/* Canonical names: drops the DataParallel prefix ("module.x" -> "x",
 * "bert.module.x" -> "bert.x") and maps the newer weight-norm spelling
 * "parametrizations.weight.original0/1" to "weight_g"/"weight_v". */
static void canonical_name(char *name)
{
    if (strncmp(name, "module.", 7) == 0) memmove(name, name + 7, strlen(name + 7) + 1);
    char *dot = strchr(name, '.');
    if (dot && strncmp(dot, ".module.", 8) == 0) memmove(dot + 1, dot + 8, strlen(dot + 8) + 1);
    static const struct {
        const char *from, *to;
    } wn[] = {{".parametrizations.weight.original0", ".weight_g"}, {".parametrizations.weight.original1", ".weight_v"}};
    size_t len = strlen(name);
    for (size_t i = 0; i < 2; i++) {
        size_t fl = strlen(wn[i].from);
        if (len > fl && strcmp(name + len - fl, wn[i].from) == 0) strcpy(name + len - fl, wn[i].to);
    }
}

kokoro_status kk_model_from_table(kk_table *table, const char *path, kokoro_model **out)
{
    for (size_t i = 0; i < table->count; i++) canonical_name(table->items[i].name);
    for (size_t i = 0; i < table->count; i++)
        for (size_t j = i + 1; j < table->count; j++)
            if (strcmp(table->items[i].name, table->items[j].name) == 0)
                return kk_error(KOKORO_ERR_MODEL, "%s: tensor '%s' appears twice (under two spellings)",
                                path, table->items[i].name);
    kokoro_status st = kk_model_bind(table, out);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    return st;
}

kokoro_status kokoro_model_load(const char *path, kokoro_model **out)
{
    if (!out || !path) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open the model file: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got < 4 || memcmp(magic, "PK\x03\x04", 4) != 0)
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: not a Kokoro model file (expected a PyTorch checkpoint such as kokoro-v1_0.pth, or a "
                        ".npz state dict)",
                        path);
    kk_table table;
    kokoro_status st = kk_torch_probe(path) ? kk_torch_read(path, &table) : kk_npz_read(path, &table);
    if (st != KOKORO_OK) return st;
    st = kk_model_from_table(&table, path, out);
    kk_table_free(&table);
    if (st != KOKORO_OK) return st;
    /* a config.json beside the model (as in the HF repository) must describe this network */
    char cfg[4096];
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    snprintf(cfg, sizeof cfg, "%.*s/config.json", dirlen, slash ? path : ".");
    if (access(cfg, F_OK) == 0 && (st = kokoro_config_load(cfg, &(*out)->config)) != KOKORO_OK) {
        kokoro_model_free(*out);
        *out = NULL;
    }
    return st;
}
