/* config.json (cJSON): the hyper-parameters are checked against the network
 * this engine implements, the vocabulary maps phoneme symbols to ids. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kokoro.h"

#include "model/config_default.inc"

#define MAX_ID 177

struct kokoro_config {
    size_t nvocab;
    uint32_t cp[MAX_ID + 1];  /* symbol of each id (0: none) */
    unsigned char has[MAX_ID + 1];
};

/* The values Kokoro-82M v1.0 has; anything else is another network. */
static const struct {
    const char *path; /* "a.b" for nested */
    double value;
} expected[] = {
    {"n_token", 178},
    {"hidden_dim", 512},
    {"style_dim", 128},
    {"n_layer", 3},
    {"max_dur", 50},
    {"text_encoder_kernel_size", 5},
    {"plbert.hidden_size", 768},
    {"plbert.num_attention_heads", 12},
    {"plbert.intermediate_size", 2048},
    {"plbert.max_position_embeddings", 512},
    {"plbert.num_hidden_layers", 12},
    {"istftnet.upsample_initial_channel", 512},
    {"istftnet.gen_istft_n_fft", 20},
    {"istftnet.gen_istft_hop_size", 5},
};

static const struct {
    const char *path;
    int n;
    int values[3];
} expected_arrays[] = {
    {"istftnet.upsample_rates", 2, {10, 6}},
    {"istftnet.upsample_kernel_sizes", 2, {20, 12}},
    {"istftnet.resblock_kernel_sizes", 3, {3, 7, 11}},
};

static const cJSON *lookup(const cJSON *root, const char *path)
{
    char key[64];
    const char *dot = strchr(path, '.');
    if (!dot) return cJSON_GetObjectItemCaseSensitive(root, path);
    snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
    return lookup(cJSON_GetObjectItemCaseSensitive(root, key), dot + 1);
}

/* one code point from UTF-8; returns its length or 0 */
static int utf8_one(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!u[0]) return 0; /* an empty key: nothing to read past its terminator */
    int n = u[0] < 0x80 ? 1 : (u[0] >> 5) == 6 ? 2 : (u[0] >> 4) == 14 ? 3 : (u[0] >> 3) == 30 ? 4 : 0;
    if (!n) return 0;
    uint32_t c = n == 1 ? u[0] : u[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (u[i] & 0x3f);
    }
    *cp = c;
    return n;
}

kokoro_status kokoro_config_parse(const char *json, size_t len, const char *what, kokoro_config **out)
{
    if (!json || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_config_parse: NULL argument");
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        return kk_error(KOKORO_ERR_FORMAT, "%s: not valid JSON (at byte %td)", what, at ? at - json : (ptrdiff_t)0);
    }
    kokoro_status st = KOKORO_OK;
    for (size_t i = 0; i < sizeof expected / sizeof *expected && st == KOKORO_OK; i++) {
        const cJSON *v = lookup(root, expected[i].path);
        if (!cJSON_IsNumber(v))
            st = kk_error(KOKORO_ERR_FORMAT, "%s: '%s' is missing or not a number", what, expected[i].path);
        else if (v->valuedouble != expected[i].value)
            st = kk_error(KOKORO_ERR_MODEL, "%s: '%s' is %g, but this engine implements Kokoro-82M v1.0 (%g)", what,
                          expected[i].path, v->valuedouble, expected[i].value);
    }
    for (size_t i = 0; i < sizeof expected_arrays / sizeof *expected_arrays && st == KOKORO_OK; i++) {
        const cJSON *a = lookup(root, expected_arrays[i].path);
        int ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == expected_arrays[i].n;
        for (int k = 0; ok && k < expected_arrays[i].n; k++) {
            const cJSON *e = cJSON_GetArrayItem(a, k);
            ok = cJSON_IsNumber(e) && e->valuedouble == expected_arrays[i].values[k];
        }
        if (!ok)
            st = kk_error(KOKORO_ERR_MODEL, "%s: '%s' differs from Kokoro-82M v1.0's", what, expected_arrays[i].path);
    }
    kokoro_config *c = st == KOKORO_OK ? calloc(1, sizeof *c) : NULL;
    if (st == KOKORO_OK && !c) st = kk_error(KOKORO_ERR_NOMEM, "out of memory");
    const cJSON *vocab = lookup(root, "vocab");
    if (st == KOKORO_OK && !cJSON_IsObject(vocab)) st = kk_error(KOKORO_ERR_FORMAT, "%s: no 'vocab' object", what);
    const cJSON *e;
    if (st == KOKORO_OK) cJSON_ArrayForEach(e, vocab)
        {
            uint32_t cp;
            int n = utf8_one(e->string, &cp);
            if (!n || e->string[n] != '\0') {
                st = kk_error(KOKORO_ERR_FORMAT, "%s: vocab key '%s' is not one Unicode character", what, e->string);
                break;
            }
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > MAX_ID ||
                e->valuedouble != (int)e->valuedouble) {
                st = kk_error(KOKORO_ERR_FORMAT, "%s: vocab id of '%s' is not an integer in 1..%d", what, e->string,
                              MAX_ID);
                break;
            }
            int id = (int)e->valuedouble;
            if (c->has[id]) {
                st = kk_error(KOKORO_ERR_FORMAT, "%s: vocab id %d is given to two symbols", what, id);
                break;
            }
            for (int k = 1; k <= MAX_ID; k++)
                if (c->has[k] && c->cp[k] == cp) st = kk_error(KOKORO_ERR_FORMAT, "%s: vocab key '%s' appears twice", what, e->string);
            if (st != KOKORO_OK) break;
            c->has[id] = 1;
            c->cp[id] = cp;
            c->nvocab++;
        }
    if (st == KOKORO_OK && c->nvocab == 0) st = kk_error(KOKORO_ERR_FORMAT, "%s: empty vocab", what);
    cJSON_Delete(root);
    if (st != KOKORO_OK) {
        free(c);
        return st;
    }
    *out = c;
    return KOKORO_OK;
}

kokoro_status kokoro_config_load(const char *path, kokoro_config **out)
{
    if (!path || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_config_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return kk_error(KOKORO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    int too_big = buf && n == (1 << 20);
    fclose(f);
    if (!buf) return kk_error(KOKORO_ERR_NOMEM, "out of memory");
    kokoro_status st = too_big ? kk_error(KOKORO_ERR_FORMAT, "%s: larger than 1 MiB: not a config.json", path)
                               : kokoro_config_parse(buf, n, path, out);
    free(buf);
    return st;
}

const char *kk_config_default_json(size_t *len)
{
    *len = sizeof kk_default_config_json - 1;
    return kk_default_config_json;
}

static kokoro_config *default_config;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void make_default(void)
{
    /* the built-in text is valid by construction (tests/test_config.c checks it) */
    if (kokoro_config_parse(kk_default_config_json, sizeof kk_default_config_json - 1, "built-in config",
                            &default_config) != KOKORO_OK)
        default_config = NULL;
}

const kokoro_config *kokoro_config_default(void)
{
    pthread_once(&default_once, make_default);
    return default_config;
}

void kokoro_config_free(kokoro_config *c)
{
    if (c && c != default_config) free(c);
}

int64_t kokoro_config_token_id(const kokoro_config *c, uint32_t cp)
{
    if (!c) return -1;
    for (int id = 1; id <= MAX_ID; id++)
        if (c->has[id] && c->cp[id] == cp) return id;
    return -1;
}

size_t kokoro_config_vocab_size(const kokoro_config *c) { return c ? c->nvocab : 0; }

int kk_config_has_id(const kokoro_config *c, int64_t id) { return c && id >= 1 && id <= MAX_ID && c->has[id]; }
