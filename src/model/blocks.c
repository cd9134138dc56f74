#include "model/blocks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define R float
#define S(name) name
#include "model/blocks_real.inc"
#undef R
#undef S

#define R double
#define S(name) name##_d
#include "model/blocks_real.inc"
#undef R
#undef S

kokoro_status kk_resblock1_forward(const kk_resblock1 *r, const float *x, int n, const float *s, float *y)
{
    const int C = r->C, K = r->K;
    static const int dil[3] = {1, 3, 5};
    size_t total = (size_t)C * n;
    kk_arena ar = {0};
    float *t = kk_arena_floats(&ar, total), *u = kk_arena_floats(&ar, total);
    kokoro_status st = KOKORO_OK;
    if (ar.failed) {
        st = KK_NOMEM("AdaINResBlock1");
        goto out;
    }
    if (y != x) memcpy(y, x, total * sizeof *y);
    for (int j = 0; j < 3; j++) {
        if ((st = kk_adain_apply(&r->a1[j], y, n, s, t)) != KOKORO_OK) goto out;
        kk_snake(t, C, n, r->alpha1[j], t);
        if (kk_conv_apply(&r->c1[j], t, n, 1, (K * dil[j] - dil[j]) / 2, dil[j], u) < 0) goto nomem;
        if ((st = kk_adain_apply(&r->a2[j], u, n, s, u)) != KOKORO_OK) goto out;
        kk_snake(u, C, n, r->alpha2[j], u);
        if (kk_conv_apply(&r->c2[j], u, n, 1, (K - 1) / 2, 1, t) < 0) goto nomem;
        for (size_t i = 0; i < total; i++) y[i] += t[i];
    }
    goto out;
nomem:
    st = KK_NOMEM("AdaINResBlock1");
out:
    kk_arena_free(&ar);
    return st;
}
