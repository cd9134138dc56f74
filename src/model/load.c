/* Loading a model from a file of named tensors. For now: a NumPy .npz of the
 * state dict (keys as in test-weights.tsv, with or without `module.`); the
 * official PyTorch checkpoint reader plugs in here next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/npz.h"
#include "model/model.h"

/* Drops the DataParallel prefix: "module.x" -> "x", "bert.module.x" -> "bert.x". */
static void strip_module(char *name)
{
    if (strncmp(name, "module.", 7) == 0) memmove(name, name + 7, strlen(name + 7) + 1);
    char *dot = strchr(name, '.');
    if (dot && strncmp(dot, ".module.", 8) == 0) memmove(dot + 1, dot + 8, strlen(dot + 8) + 1);
}

kokoro_status kk_model_from_table(kk_table *table, const char *path, kokoro_model **out)
{
    for (size_t i = 0; i < table->count; i++) strip_module(table->items[i].name);
    for (size_t i = 0; i < table->count; i++)
        for (size_t j = i + 1; j < table->count; j++)
            if (strcmp(table->items[i].name, table->items[j].name) == 0)
                return kk_error(KOKORO_ERR_MODEL, "%s: tensor '%s' appears twice (with and without 'module.')",
                                path, table->items[i].name);
    kokoro_status st = kk_model_bind(table, out);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    return st;
}

kokoro_status kokoro_model_load(const char *path, kokoro_model **out)
{
    if (!out || !path) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_load: NULL argument");
    *out = NULL;
    kk_table table;
    kokoro_status st = kk_npz_read(path, &table);
    if (st != KOKORO_OK) return st;
    st = kk_model_from_table(&table, path, out);
    kk_table_free(&table);
    return st;
}
