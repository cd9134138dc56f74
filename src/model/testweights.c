/* Deterministic test weights (shared/spec/test-weights.md): every tensor's
 * values regenerated from its name, so tests need no weight file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

static const char *last_segment(const char *name, int back)
{
    /* back = 0: last segment, 1: second to last */
    const char *end = name + strlen(name);
    const char *p = end;
    for (int i = 0; i <= back; i++) {
        if (i) end = p - 1;
        p = end;
        while (p > name && p[-1] != '.') p--;
        if (p == name && i < back) return "";
    }
    return p;
}

static int seg_starts(const char *seg, const char *prefix) { return strncmp(seg, prefix, strlen(prefix)) == 0; }

static int ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

void kk_test_weights_rule(const char *name, int ndim, const int64_t *shape, double *center, double *scale)
{
    static const struct {
        const char *name;
        double center, scale;
    } special[] = {
        {"predictor.duration_proj.linear_layer.weight", 0, 3.0},
        {"predictor.duration_proj.linear_layer.bias", -12, 1.0},
        {"predictor.F0_proj.bias", 60, 10},
        {"predictor.F0_proj.weight", 0, 8.0},
        {"decoder.generator.conv_post.weight_g", 0.3, 0.05},
    };
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        if (strcmp(name, special[i].name) == 0) {
            *center = special[i].center;
            *scale = special[i].scale;
            return;
        }
    const char *last = last_segment(name, 0), *prev = last_segment(name, 1);
    if (seg_starts(last, "alpha") || seg_starts(prev, "alpha")) {
        *center = 1, *scale = 0.2;
    } else if (ends_with(name, "weight_g")) {
        *center = 1, *scale = 0.2;
    } else if (ends_with(name, "weight_v")) {
        *center = 0, *scale = 1;
    } else if (strcmp(last, "gamma") == 0 || (ndim == 1 && strcmp(last, "weight") == 0)) {
        *center = 1, *scale = 0.1;
    } else if (strcmp(last, "beta") == 0 || strstr(last, "bias")) {
        *center = 0, *scale = 0.1;
    } else if (seg_starts(last, "weight_hh")) {
        *center = 0, *scale = 1.0 / sqrt((double)shape[1]);
    } else {
        int64_t numel = kk_shape_numel(ndim, shape);
        *center = 0, *scale = 1.0 / sqrt((double)(numel / shape[0]));
    }
}

void kk_test_weights_fill(const char *name, double center, double scale, float *dst, int64_t n)
{
    uint64_t seed = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        seed ^= *p;
        seed *= 0x100000001B3ull;
    }
    const float c = (float)center, s = (float)scale;
    for (int64_t i = 1; i <= n; i++) {
        uint64_t z = seed + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z = z ^ (z >> 31);
        double u = (double)(z >> 40) / 16777216.0;
        float v = (float)(2.0 * u - 1.0);
        volatile float prod = s * v; /* two roundings, as the spec: no fused multiply-add */
        dst[i - 1] = c + prod;
    }
}

kokoro_status kk_test_weights_table(kk_table *table)
{
    kk_param_spec *specs;
    size_t count;
    kokoro_status st = kk_model_param_specs(&specs, &count);
    if (st != KOKORO_OK) return st;
    kk_table_init(table);
    for (size_t i = 0; i < count && st == KOKORO_OK; i++) {
        const kk_param_spec *p = &specs[i];
        int64_t n = kk_shape_numel(p->ndim, p->shape);
        float *data = malloc((size_t)n * sizeof *data);
        if (!data) {
            st = kk_error(KOKORO_ERR_NOMEM, "out of memory generating test weight '%s'", p->name);
            break;
        }
        double center, scale;
        kk_test_weights_rule(p->name, p->ndim, p->shape, &center, &scale);
        kk_test_weights_fill(p->name, center, scale, data, n);
        /* the harmonic source's 11 phase channels are made blind (see the spec) */
        if (strcmp(p->name, "decoder.generator.noise_convs.0.weight") == 0 ||
            strcmp(p->name, "decoder.generator.noise_convs.1.weight") == 0) {
            int64_t cout = p->shape[0], cin = p->shape[1], k = p->shape[2];
            for (int64_t o = 0; o < cout; o++)
                memset(data + (o * cin + 11) * k, 0, (size_t)((cin - 11) * k) * sizeof *data);
        }
        st = kk_table_add(table, p->name, KK_F32, p->ndim, p->shape, data);
    }
    free(specs);
    if (st != KOKORO_OK) kk_table_free(table);
    return st;
}
