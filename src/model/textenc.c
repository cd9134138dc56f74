/* The text encoder (spec §3.7): embedding, three Conv1d + LayerNorm +
 * LeakyReLU, a BiLSTM; and the token-to-frame alignment of its output. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/blocks.h"

void kk_align_cols(const float *x, int C, int T, const int64_t *n, int64_t L, float *out)
{
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * T;
        float *oc = out + (size_t)c * L;
        size_t f = 0;
        for (int t = 0; t < T; t++)
            for (int64_t r = 0; r < n[t]; r++) oc[f++] = xc[t];
    }
}

kokoro_status kk_text_encoder(const kokoro_model *m, const int64_t *ids, int T, float *out)
{
    const int H = KK_HIDDEN;
    kk_arena ar = {0};
    float *e = kk_arena_floats(&ar, (size_t)T * H), *x = kk_arena_floats(&ar, (size_t)H * T);
    float *y = kk_arena_floats(&ar, (size_t)H * T);
    kokoro_status st = KOKORO_OK;
    if (ar.failed) {
        kk_arena_free(&ar);
        return KK_NOMEM("text encoder");
    }
    for (int t = 0; t < T; t++) memcpy(e + (size_t)t * H, m->te_emb + ids[t] * H, H * sizeof *e);
    kk_transpose(e, T, H, x);
    for (int i = 0; i < 3; i++) {
        if (kk_conv_apply(&m->te_cnn[i], x, T, 1, 2, 1, y) < 0) {
            st = KK_NOMEM("text encoder");
            break;
        }
        kk_layernorm_cols(y, H, T, m->te_gamma[i], m->te_beta[i], 1e-5f);
        kk_leaky_relu(y, (size_t)H * T, 0.2f);
        float *tmp = x;
        x = y;
        y = tmp;
    }
    if (st == KOKORO_OK) {
        kk_transpose(x, H, T, e);
        if (kk_lstm_bi(e, T, H, &m->te_lstm.f, &m->te_lstm.r, KK_LSTM_H, y) < 0)
            st = KK_NOMEM("text encoder");
        else
            kk_transpose(y, T, H, out);
    }
    kk_arena_free(&ar);
    return st;
}
