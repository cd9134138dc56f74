/* Voice packs: every format the Kokoro ecosystem publishes, loaded into one
 * sorted list of name → [510 × 256] float32, and the style vector of a chunk
 * for a voice or a blend of voices. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/npz.h"
#include "io/kfile.h"
#include "io/torch.h"
#include "io/voices.h"
#include "kokoro.h"

#define PACK_FLOATS ((size_t)KOKORO_VOICE_ROWS * KOKORO_STYLE_DIM)
#define PACK_BYTES (PACK_FLOATS * sizeof(float))
#define MAX_VOICES 4096

typedef struct voice {
    char *name;
    char *source; /* the file it came from, for messages */
    float *pack;
} voice;

struct kokoro_voices {
    voice *v;
    size_t n, cap;
};

void kokoro_voices_free(kokoro_voices *vs)
{
    if (!vs) return;
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].source);
        free(vs->v[i].pack);
    }
    free(vs->v);
    free(vs);
}

size_t kokoro_voices_count(const kokoro_voices *vs) { return vs ? vs->n : 0; }

const char *kokoro_voices_name(const kokoro_voices *vs, size_t i) { return vs && i < vs->n ? vs->v[i].name : NULL; }

static const voice *find(const kokoro_voices *vs, const char *name, size_t len)
{
    for (size_t i = 0; i < vs->n; i++)
        if (strlen(vs->v[i].name) == len && strncmp(vs->v[i].name, name, len) == 0) return &vs->v[i];
    return NULL;
}

/* Takes ownership of pack. */
static kokoro_status add_voice(kokoro_voices *vs, const char *name, const char *source, float *pack)
{
    const voice *dup = find(vs, name, strlen(name));
    if (dup) {
        kokoro_status st = kk_error(KOKORO_ERR_FORMAT, "voice '%s' appears twice (%s and %s)", name, dup->source,
                                    source);
        free(pack);
        return st;
    }
    if (!*name) {
        free(pack);
        return kk_error(KOKORO_ERR_FORMAT, "%s: a voice with an empty name", source);
    }
    if (vs->n == MAX_VOICES) {
        free(pack);
        return kk_error(KOKORO_ERR_FORMAT, "%s: more than %d voices", source, MAX_VOICES);
    }
    for (size_t i = 0; i < PACK_FLOATS; i++)
        if (!isfinite(pack[i])) {
            free(pack);
            return kk_error(KOKORO_ERR_FORMAT, "%s: voice '%s' holds a value that is not finite (row %zu)", source,
                            name, i / KOKORO_STYLE_DIM);
        }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? 2 * vs->cap : 16;
        voice *nv = realloc(vs->v, cap * sizeof *nv);
        if (!nv) {
            free(pack);
            return kk_error(KOKORO_ERR_NOMEM, "out of memory loading voices");
        }
        vs->v = nv;
        vs->cap = cap;
    }
    voice *v = &vs->v[vs->n];
    v->name = strdup(name);
    v->source = strdup(source);
    v->pack = pack;
    if (!v->name || !v->source) {
        free(v->name);
        free(v->source);
        free(pack);
        return kk_error(KOKORO_ERR_NOMEM, "out of memory loading voices");
    }
    vs->n++;
    return KOKORO_OK;
}

const float *kk_voices_pack(const kokoro_voices *vs, size_t i) { return vs && i < vs->n ? vs->v[i].pack : NULL; }

kokoro_status kk_voices_add(kokoro_voices *vs, const char *name, const char *source, float *pack)
{
    return add_voice(vs, name, source, pack);
}

/* A tensor of shape (510, 1, 256) or (510, 256), any float dtype. */
static kokoro_status pack_from_tensor(const kk_tensor *t, const char *what, float **out)
{
    int ok = (t->ndim == 3 && t->shape[0] == KOKORO_VOICE_ROWS && t->shape[1] == 1 &&
              t->shape[2] == KOKORO_STYLE_DIM) ||
             (t->ndim == 2 && t->shape[0] == KOKORO_VOICE_ROWS && t->shape[1] == KOKORO_STYLE_DIM);
    char sh[64];
    if (!ok)
        return kk_error(KOKORO_ERR_FORMAT, "%s: shape %s where a voice pack is 510x1x256", what,
                        kk_shape_str(t->ndim, t->shape, sh, sizeof sh));
    if (t->dtype != KK_F32 && t->dtype != KK_F16 && t->dtype != KK_BF16 && t->dtype != KK_F64)
        return kk_error(KOKORO_ERR_FORMAT, "%s: dtype %s where a voice pack is float32", what, kk_dtype_name(t->dtype));
    float *p = malloc(PACK_BYTES);
    if (!p) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", what);
    kokoro_status st = kk_tensor_to_f32(t, p);
    if (st != KOKORO_OK) {
        free(p);
        return st;
    }
    *out = p;
    return KOKORO_OK;
}

/* "dir/af_heart.pt" -> "af_heart" */
static void stem(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static kokoro_status load_file(kokoro_voices *vs, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    long size = (fseek(f, 0, SEEK_END) == 0) ? ftell(f) : -1;
    kokoro_status st = KOKORO_OK;
    char name[256];
    stem(path, name, sizeof name);
    if (kk_kfile_probe(path)) { /* our own model file, with the voices it carries */
        fclose(f);
        kk_kfile *kf;
        if ((st = kk_kfile_open(path, &kf)) != KOKORO_OK) return st;
        size_t nv = kk_kfile_voice_count(kf);
        if (nv == 0) st = kk_error(KOKORO_ERR_FORMAT, "%s: this model file carries no voices", path);
        for (size_t i = 0; i < nv && st == KOKORO_OK; i++) {
            const char *vname;
            const float *src;
            float *pack = malloc(PACK_BYTES);
            if (!pack) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
            if (st == KOKORO_OK && (st = kk_kfile_voice(kf, i, &vname, &src)) == KOKORO_OK) {
                memcpy(pack, src, PACK_BYTES);
                st = add_voice(vs, vname, path, pack);
                pack = NULL;
            }
            free(pack);
        }
        kk_kfile_close(kf);
        return st;
    }
    if (got == 4 && memcmp(magic, "PK\x03\x04", 4) == 0) {
        fclose(f);
        kk_table t;
        if (kk_torch_probe(path)) { /* voices/<name>.pt: one tensor */
            if ((st = kk_torch_read(path, &t)) != KOKORO_OK) return st;
            float *pack = NULL;
            if (t.count != 1) st = kk_error(KOKORO_ERR_FORMAT, "%s: %zu tensors where a voice .pt holds one", path, t.count);
            if (st == KOKORO_OK) st = pack_from_tensor(&t.items[0], path, &pack);
            if (st == KOKORO_OK) st = add_voice(vs, name, path, pack);
        } else { /* voices-v1.0.bin: an npz, one member per voice */
            if ((st = kk_npz_read(path, &t)) != KOKORO_OK) return st;
            for (size_t i = 0; i < t.count && st == KOKORO_OK; i++) {
                char what[600];
                snprintf(what, sizeof what, "%s: entry '%s'", path, t.items[i].name);
                float *pack = NULL;
                st = pack_from_tensor(&t.items[i], what, &pack);
                if (st == KOKORO_OK) st = add_voice(vs, t.items[i].name, path, pack);
            }
        }
        kk_table_free(&t);
        return st;
    }
    /* raw little-endian float32, exactly one pack */
    if (size != (long)PACK_BYTES) {
        fclose(f);
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: %ld bytes; a raw voice pack is %zu bytes (510x256 float32), or give a .pt or .npz", path,
                        size, PACK_BYTES);
    }
    float *pack = malloc(PACK_BYTES);
    if (!pack || fseek(f, 0, SEEK_SET) != 0 || fread(pack, 1, PACK_BYTES, f) != PACK_BYTES) {
        fclose(f);
        free(pack);
        return kk_error(KOKORO_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    return add_voice(vs, name, path, pack);
}

static int is_voice_file(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot && (!strcmp(dot, ".pt") || !strcmp(dot, ".bin") || !strcmp(dot, ".npz"));
    /* (a folder of our own model files is not a voice folder: .kokoro files are given by name) */
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const voice *)a)->name, ((const voice *)b)->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

kokoro_status kokoro_voices_load(const char *path, kokoro_voices **out)
{
    if (!path || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_voices_load: NULL argument");
    *out = NULL;
    kokoro_voices *vs = calloc(1, sizeof *vs);
    if (!vs) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    struct stat sb;
    kokoro_status st = KOKORO_OK;
    if (stat(path, &sb) != 0) {
        st = kk_error(KOKORO_ERR_IO, "%s: cannot open the voices: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            st = kk_error(KOKORO_ERR_IO, "%s: cannot read the folder: %s", path, strerror(errno));
        } else { /* files in name order, so that a duplicate is reported the same way every time */
            char **files = NULL;
            size_t nf = 0;
            struct dirent *e;
            while ((e = readdir(d)) != NULL && st == KOKORO_OK) {
                if (!is_voice_file(e->d_name)) continue;
                char **nfiles = realloc(files, (nf + 1) * sizeof *files);
                size_t len = strlen(path) + strlen(e->d_name) + 2;
                char *full = malloc(len);
                if (!nfiles || !full) {
                    free(full);
                    if (nfiles) files = nfiles;
                    st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
                    break;
                }
                files = nfiles;
                snprintf(full, len, "%s/%s", path, e->d_name);
                files[nf++] = full;
            }
            closedir(d);
            if (files) qsort(files, nf, sizeof *files, cmp_str);
            for (size_t i = 0; i < nf && st == KOKORO_OK; i++) st = load_file(vs, files[i]);
            for (size_t i = 0; i < nf; i++) free(files[i]);
            free(files);
            if (st == KOKORO_OK && vs->n == 0)
                st = kk_error(KOKORO_ERR_FORMAT, "%s: no voice files (.pt, .bin, .npz) in the folder", path);
        }
    } else {
        st = load_file(vs, path);
    }
    if (st != KOKORO_OK) {
        kokoro_voices_free(vs);
        return st;
    }
    qsort(vs->v, vs->n, sizeof *vs->v, cmp_names);
    *out = vs;
    return KOKORO_OK;
}

/* ---- blends ---- */

#define MAX_PARTS 64

typedef struct part {
    const voice *v;
    double w;
} part;

static kokoro_status unknown_voice(const kokoro_voices *vs, const char *name, size_t len)
{
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < vs->n && used + 40 < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", vs->v[i].name);
    if (used + 40 >= sizeof list) snprintf(list + used, sizeof list - used, ", …");
    return kk_error(KOKORO_ERR_INVALID_ARG, "unknown voice '%.*s'; available voices: %s", (int)len, name, list);
}

static int name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

static kokoro_status parse_weight(const char **p, const char *end_chars, const char *spec, double *w)
{
    char *e;
    errno = 0;
    *w = strtod(*p, &e);
    if (e == *p || errno || !isfinite(*w) || *w <= 0 || (*e && !strchr(end_chars, *e)))
        return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': bad weight at '%s' (a positive number)", spec, *p);
    *p = e;
    return KOKORO_OK;
}

/* Parses spec into parts with signed, normalised weights. */
static kokoro_status parse_blend(const kokoro_voices *vs, const char *spec, part *parts, size_t *nparts)
{
    size_t n = 0;
    int fastapi = strpbrk(spec, ",:") == NULL, with_weights = 0, without = 0; /* "a:60,b:40" or "a(2)+b" */
    const char *p = spec;
    double sign = 1;
    while (*p) {
        while (*p == ' ') p++;
        const char *name = p;
        while (name_char(*p)) p++;
        size_t len = (size_t)(p - name);
        if (!len) return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': a voice name expected at '%s'", spec, p);
        if (n == MAX_PARTS) return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': more than %d voices", spec, MAX_PARTS);
        const voice *v = find(vs, name, len);
        if (!v) return unknown_voice(vs, name, len);
        double w = 1;
        kokoro_status st = KOKORO_OK;
        if (fastapi && *p == '(') {
            p++;
            if ((st = parse_weight(&p, ")", spec, &w)) != KOKORO_OK) return st;
            if (*p++ != ')') return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': ')' expected", spec);
            with_weights = 1;
        } else if (!fastapi && *p == ':') {
            p++;
            if ((st = parse_weight(&p, ", ", spec, &w)) != KOKORO_OK) return st;
            with_weights = 1;
        } else {
            without = 1;
        }
        parts[n].v = v;
        parts[n].w = sign * w;
        n++;
        while (*p == ' ') p++;
        if (!*p) break;
        if (fastapi && (*p == '+' || *p == '-')) {
            sign = *p == '-' ? -1 : 1;
            p++;
        } else if (!fastapi && *p == ',') {
            p++;
        } else {
            return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': unexpected '%c'", spec, *p);
        }
        if (!*p) return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s' ends with an operator", spec);
    }
    if (n == 0) return kk_error(KOKORO_ERR_INVALID_ARG, "empty voice name");
    if (!fastapi && with_weights && without)
        return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s': give a weight to every voice or to none", spec);
    double pos = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].w > 0) pos += parts[i].w;
    if (pos <= 0) return kk_error(KOKORO_ERR_INVALID_ARG, "voice blend '%s' adds no voice", spec);
    for (size_t i = 0; i < n; i++) parts[i].w /= pos;
    *nparts = n;
    return KOKORO_OK;
}

kokoro_status kokoro_voices_style(const kokoro_voices *vs, const char *spec, size_t n_phonemes, float *style)
{
    if (!vs || !spec || !style) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_voices_style: NULL argument");
    part parts[MAX_PARTS];
    size_t n = 0;
    kokoro_status st = parse_blend(vs, spec, parts, &n);
    if (st != KOKORO_OK) return st;
    /* the upstream pipeline's row: len(phonemes) - 1, clamped to the pack */
    size_t row = n_phonemes > 0 ? n_phonemes - 1 : 0;
    if (row >= KOKORO_VOICE_ROWS) row = KOKORO_VOICE_ROWS - 1;
    for (int c = 0; c < KOKORO_STYLE_DIM; c++) {
        double acc = 0;
        for (size_t i = 0; i < n; i++) acc += parts[i].w * parts[i].v->pack[row * KOKORO_STYLE_DIM + c];
        style[c] = (float)acc;
    }
    return KOKORO_OK;
}
