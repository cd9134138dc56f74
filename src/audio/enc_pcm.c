/* Raw s16le PCM, and WAV to a pipe: libsndfile refuses to write WAV to a
 * pipe (it must seek back to fill in the sizes), so for stdout we write the
 * 44-byte header ourselves with the "unknown length" sizes 0xFFFFFFFF that
 * streaming readers (ffmpeg, sox, libsndfile) accept. */
#include "audio/audio.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    kk_encoder base;
    kk_out *out;
    int f32;
} pcm_enc;

static void put_le(unsigned char *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static kokoro_status pcm_write(kk_encoder *e, const float *x, size_t n)
{
    pcm_enc *p = (pcm_enc *)e;
    unsigned char buf[4096 * 4];
    while (n > 0) {
        size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++) {
            if (p->f32) {
                uint32_t u;
                memcpy(&u, &x[i], 4);
                put_le(buf + 4 * i, u, 4);
            } else {
                long v = lrintf(x[i] * 32767.0f);
                put_le(buf + 2 * i, (uint32_t)(uint16_t)(int16_t)v, 2);
            }
        }
        kokoro_status st = kk_out_write(p->out, buf, k * (p->f32 ? 4 : 2));
        if (st != KOKORO_OK) return st;
        x += k;
        n -= k;
    }
    return KOKORO_OK;
}

static kokoro_status pcm_finish(kk_encoder *e, const kk_chapter *ch, size_t n_ch, uint64_t total)
{
    (void)e, (void)ch, (void)n_ch, (void)total;
    return KOKORO_OK;
}

static void pcm_destroy(kk_encoder *e) { free(e); }

static const kk_encoder_vt pcm_vt = {pcm_write, pcm_finish, pcm_destroy};

kokoro_status kk_enc_pcm_open(const kk_encoder_args *a, kk_encoder **out)
{
    pcm_enc *p = calloc(1, sizeof *p);
    if (!p) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", a->out->name);
    p->base.vt = &pcm_vt;
    p->out = a->out;
    p->f32 = a->format == KOKORO_AUDIO_WAV && a->opts->wav_float;
    if (a->format == KOKORO_AUDIO_WAV) {
        unsigned bits = p->f32 ? 32 : 16, block = bits / 8;
        unsigned char h[44];
        memcpy(h, "RIFF", 4);
        put_le(h + 4, 0xFFFFFFFFu, 4);
        memcpy(h + 8, "WAVEfmt ", 8);
        put_le(h + 16, 16, 4);
        put_le(h + 20, p->f32 ? 3 : 1, 2); /* WAVE_FORMAT_IEEE_FLOAT or PCM */
        put_le(h + 22, 1, 2);
        put_le(h + 24, KOKORO_SAMPLE_RATE, 4);
        put_le(h + 28, KOKORO_SAMPLE_RATE * block, 4);
        put_le(h + 32, block, 2);
        put_le(h + 34, bits, 2);
        memcpy(h + 36, "data", 4);
        put_le(h + 40, 0xFFFFFFFFu, 4);
        kokoro_status st = kk_out_write(p->out, h, sizeof h);
        if (st != KOKORO_OK) {
            free(p);
            return st;
        }
    }
    *out = &p->base;
    return KOKORO_OK;
}
