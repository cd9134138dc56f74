/* Loading a model from a file of named tensors: the official PyTorch
 * checkpoint (kokoro-v1_0.pth), a NumPy .npz of the same state dict, or our
 * own mmap-able file (src/io/kfile.c) — and converting any of them to the latter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/kfile.h"
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

kokoro_status kk_table_canonical(kk_table *table, const char *path)
{
    for (size_t i = 0; i < table->count; i++) canonical_name(table->items[i].name);
    for (size_t i = 0; i < table->count; i++)
        for (size_t j = i + 1; j < table->count; j++)
            if (strcmp(table->items[i].name, table->items[j].name) == 0)
                return kk_error(KOKORO_ERR_MODEL, "%s: tensor '%s' appears twice (under two spellings)", path,
                                table->items[i].name);
    return KOKORO_OK;
}

kokoro_status kk_table_fold_weight_norm(kk_table *table)
{
    kokoro_status st = KOKORO_OK;
    for (size_t i = 0; i < table->count && st == KOKORO_OK; i++) {
        kk_tensor *g = &table->items[i];
        size_t len = strlen(g->name);
        if (len < 9 || strcmp(g->name + len - 9, ".weight_g") != 0) continue;
        char vname[256], wname[256];
        snprintf(vname, sizeof vname, "%.*s.weight_v", (int)(len - 9), g->name);
        snprintf(wname, sizeof wname, "%.*s.weight", (int)(len - 9), g->name);
        kk_tensor *v = kk_table_find(table, vname);
        if (!v || v->ndim < 1 || g->ndim < 1 || g->shape[0] != v->shape[0] || kk_tensor_numel(g) != g->shape[0])
            continue; /* left for the binder to report */
        int64_t d0 = v->shape[0], n = kk_tensor_numel(v);
        float *gf = malloc((size_t)d0 * sizeof *gf), *vf = malloc((size_t)n * sizeof *vf);
        float *wf = malloc((size_t)n * sizeof *wf);
        if (!gf || !vf || !wf) {
            free(gf), free(vf), free(wf);
            return kk_error(KOKORO_ERR_NOMEM, "out of memory folding '%s'", wname);
        }
        kk_tensor_to_f32(g, gf);
        kk_tensor_to_f32(v, vf);
        kk_fold_weight_norm(gf, vf, (int)d0, (size_t)(n / d0), wf);
        free(gf), free(vf);
        int64_t shape[KK_MAX_DIMS];
        int ndim = v->ndim;
        memcpy(shape, v->shape, sizeof shape);
        /* drop g and v (v first: indexes shift), then add the folded weight */
        size_t vi = (size_t)(v - table->items), gi = i;
        size_t first = vi > gi ? vi : gi, second = vi > gi ? gi : vi;
        kk_tensor *items = table->items;
        if (!items[first].borrowed) free(items[first].data);
        free(items[first].name);
        memmove(&items[first], &items[first + 1], (table->count - first - 1) * sizeof *items);
        table->count--;
        if (!items[second].borrowed) free(items[second].data);
        free(items[second].name);
        memmove(&items[second], &items[second + 1], (table->count - second - 1) * sizeof *items);
        table->count--;
        st = kk_table_add(table, wname, KK_F32, ndim, shape, wf);
        i = second - 1; /* unsigned wrap is fine: the loop's i++ resumes at the first removed slot */
    }
    return st;
}

kokoro_status kk_model_from_table(kk_table *table, const char *path, kokoro_model **out)
{
    kokoro_status st = kk_table_canonical(table, path);
    if (st != KOKORO_OK) return st;
    st = kk_model_bind(table, out);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    return st;
}

/* Reads a state dict (torch zip or npz) into a table with canonical names. */
static kokoro_status read_state_dict(const char *path, kk_table *table)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open the model file: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got < 4 || memcmp(magic, "PK\x03\x04", 4) != 0)
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: not a Kokoro model file (expected a PyTorch checkpoint such as kokoro-v1_0.pth, a "
                        ".npz state dict, or a file written by kokoro-convert)",
                        path);
    kokoro_status st = kk_torch_probe(path) ? kk_torch_read(path, table) : kk_npz_read(path, table);
    if (st != KOKORO_OK) return st;
    if ((st = kk_table_canonical(table, path)) != KOKORO_OK) kk_table_free(table);
    return st;
}

/* The path of the config.json beside a model file. */
static void beside_config(const char *path, char *cfg, size_t size)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    snprintf(cfg, size, "%.*s/config.json", dirlen, slash ? path : ".");
}

/* Our own file: tensors used in place from the mapping, the config from its header. */
static kokoro_status load_kfile(const char *path, kokoro_model **out)
{
    kk_kfile *kf;
    kokoro_status st = kk_kfile_open(path, &kf);
    if (st != KOKORO_OK) return st;
    kk_table table;
    if ((st = kk_kfile_tensors(kf, &table)) != KOKORO_OK) {
        kk_kfile_close(kf);
        return st;
    }
    kokoro_config *config = NULL;
    char *json = kk_kfile_config_json(kf);
    st = json ? kokoro_config_parse(json, strlen(json), path, &config)
              : kk_error(KOKORO_ERR_FORMAT, "%s: the header carries no config", path);
    free(json);
    if (st == KOKORO_OK && (st = kk_model_bind(&table, out)) != KOKORO_OK) kk_error_prefix("%s", path);
    kk_table_free(&table);
    if (st != KOKORO_OK) {
        kokoro_config_free(config);
        kk_kfile_close(kf);
        return st;
    }
    (*out)->config = config;
    (*out)->file_bf16 = kk_kfile_is_bf16(kf);
    kk_kfile_take_map(kf, &(*out)->map, &(*out)->map_size);
    kk_kfile_close(kf);
    return KOKORO_OK;
}

kokoro_status kokoro_model_load(const char *path, kokoro_model **out)
{
    if (!out || !path) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_load: NULL argument");
    *out = NULL;
    if (kk_kfile_probe(path)) return load_kfile(path, out);
    kk_table table;
    kokoro_status st = read_state_dict(path, &table);
    if (st != KOKORO_OK) return st;
    st = kk_model_bind(&table, out);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    kk_table_free(&table);
    if (st != KOKORO_OK) return st;
    /* a config.json beside the model (as in the HF repository) must describe this network */
    char cfg[4096];
    beside_config(path, cfg, sizeof cfg);
    if (access(cfg, F_OK) == 0 && (st = kokoro_config_load(cfg, &(*out)->config)) != KOKORO_OK) {
        kokoro_model_free(*out);
        *out = NULL;
    }
    return st;
}

/* Binds the table without taking its buffers (every tensor lent for the
 * check), so a conversion refuses a checkpoint the engine could not use. */
static kokoro_status check_binds(kk_table *table, const char *path)
{
    unsigned char *was = malloc(table->count + 1);
    if (!was) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < table->count; i++) was[i] = (unsigned char)table->items[i].borrowed, table->items[i].borrowed = 1;
    kokoro_model *m = NULL;
    kokoro_status st = kk_model_bind(table, &m);
    if (st != KOKORO_OK) kk_error_prefix("%s", path);
    kokoro_model_free(m);
    for (size_t i = 0; i < table->count; i++) table->items[i].borrowed = was[i];
    free(was);
    return st;
}

static char *read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

kokoro_status kokoro_model_convert(const char *model_path, const char *voices_path, const char *out_path,
                                   kokoro_dtype dtype)
{
    if (!out_path) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_convert: no output path");
    if (dtype != KOKORO_DTYPE_F32 && dtype != KOKORO_DTYPE_BF16)
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_model_convert: unknown dtype %d", (int)dtype);
    const char *what = model_path ? model_path : "test weights";
    kk_table table;
    kk_kfile *src = NULL;
    kokoro_status st;
    char *config_json = NULL;
    if (!model_path) {
        st = kk_test_weights_table(&table);
    } else if (kk_kfile_probe(model_path)) { /* re-typing one of our own files */
        if ((st = kk_kfile_open(model_path, &src)) == KOKORO_OK && (st = kk_kfile_tensors(src, &table)) == KOKORO_OK)
            config_json = kk_kfile_config_json(src);
    } else {
        st = read_state_dict(model_path, &table);
    }
    if (st != KOKORO_OK) {
        kk_kfile_close(src);
        return st;
    }
    if ((st = kk_table_fold_weight_norm(&table)) == KOKORO_OK) st = check_binds(&table, what);

    if (st == KOKORO_OK && !config_json) {
        char cfg[4096];
        kokoro_config *c = NULL;
        if (model_path) beside_config(model_path, cfg, sizeof cfg);
        if (model_path && access(cfg, F_OK) == 0) { /* checked, then embedded as written */
            if ((st = kokoro_config_load(cfg, &c)) == KOKORO_OK && !(config_json = read_text(cfg, 1 << 20)))
                st = kk_error(KOKORO_ERR_IO, "%s: cannot read", cfg);
            kokoro_config_free(c);
        } else {
            size_t len;
            const char *def = kk_config_default_json(&len);
            if (!(config_json = malloc(len + 1))) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
            else memcpy(config_json, def, len), config_json[len] = 0;
        }
    }
    kokoro_voices *voices = NULL;
    if (st == KOKORO_OK && voices_path) st = kokoro_voices_load(voices_path, &voices);
    if (st == KOKORO_OK) st = kk_kfile_write(out_path, &table, config_json, voices, dtype == KOKORO_DTYPE_BF16);
    kokoro_voices_free(voices);
    free(config_json);
    kk_table_free(&table);
    kk_kfile_close(src);
    return st;
}
