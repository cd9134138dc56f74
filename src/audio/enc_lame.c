/* MP3 through LAME: mono 24 kHz (MPEG-2 layer III). Default VBR quality 4
 * (about 48-64 kbit/s for speech at 24 kHz); a bitrate option gives CBR.
 * On a seekable file the Xing/LAME tag (length and encoder delay, so
 * decoders play it gaplessly with the right duration) is rewritten at the
 * start after the last frame. */
#include "audio/audio.h"
#include "core/error.h"

#include <lame/lame.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    kk_encoder base;
    kk_out *out;
    lame_global_flags *gf;
    unsigned char *mp3;
    size_t mp3_cap;
} lame_enc;

static kokoro_status lame_write(kk_encoder *base, const float *x, size_t n)
{
    lame_enc *e = (lame_enc *)base;
    while (n > 0) {
        size_t k = n < 4096 ? n : 4096;
        int r = lame_encode_buffer_ieee_float(e->gf, x, x, (int)k, e->mp3, (int)e->mp3_cap);
        if (r < 0) return kk_error(KOKORO_ERR_INTERNAL, "%s: LAME encoding failed (code %d)", e->out->name, r);
        kokoro_status st = kk_out_write(e->out, e->mp3, (size_t)r);
        if (st != KOKORO_OK) return st;
        x += k;
        n -= k;
    }
    return KOKORO_OK;
}

static kokoro_status lame_finish(kk_encoder *base, const kk_chapter *ch, size_t n_ch, uint64_t total)
{
    (void)ch, (void)n_ch, (void)total;
    lame_enc *e = (lame_enc *)base;
    int r = lame_encode_flush(e->gf, e->mp3, (int)e->mp3_cap);
    if (r < 0) return kk_error(KOKORO_ERR_INTERNAL, "%s: LAME flush failed (code %d)", e->out->name, r);
    kokoro_status st = kk_out_write(e->out, e->mp3, (size_t)r);
    if (st != KOKORO_OK) return st;
    if (e->out->seekable) {
        size_t n = lame_get_lametag_frame(e->gf, e->mp3, e->mp3_cap);
        if (n > 0 && n <= e->mp3_cap) {
            int64_t end = e->out->pos;
            if (lseek(e->out->fd, 0, SEEK_SET) != 0)
                return kk_error(KOKORO_ERR_IO, "%s: cannot seek back to write the LAME tag", e->out->name);
            e->out->pos = 0;
            st = kk_out_write(e->out, e->mp3, n);
            if (st != KOKORO_OK) return st;
            if (lseek(e->out->fd, end, SEEK_SET) != end)
                return kk_error(KOKORO_ERR_IO, "%s: cannot seek to the end after the LAME tag", e->out->name);
            e->out->pos = end;
        }
    }
    return KOKORO_OK;
}

static void lame_destroy(kk_encoder *base)
{
    lame_enc *e = (lame_enc *)base;
    if (e->gf) lame_close(e->gf);
    free(e->mp3);
    free(e);
}

static const kk_encoder_vt lame_vt = {lame_write, lame_finish, lame_destroy};

kokoro_status kk_enc_lame_open(const kk_encoder_args *a, kk_encoder **out)
{
    lame_enc *e = calloc(1, sizeof *e);
    if (!e) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", a->out->name);
    e->base.vt = &lame_vt;
    e->out = a->out;
    /* LAME's documented worst case: 1.25 * samples + 7200 */
    e->mp3_cap = 4096 * 5 / 4 + 7200;
    e->mp3 = malloc(e->mp3_cap);
    e->gf = lame_init();
    if (!e->mp3 || !e->gf) {
        lame_destroy(&e->base);
        return kk_error(KOKORO_ERR_NOMEM, "%s: cannot start LAME: out of memory", a->out->name);
    }
    lame_set_in_samplerate(e->gf, KOKORO_SAMPLE_RATE);
    lame_set_out_samplerate(e->gf, KOKORO_SAMPLE_RATE);
    lame_set_num_channels(e->gf, 1);
    lame_set_mode(e->gf, MONO);
    lame_set_quality(e->gf, 2); /* algorithm quality: good, and still far faster than real time */
    if (a->opts->bitrate_kbps > 0) {
        lame_set_VBR(e->gf, vbr_off);
        lame_set_brate(e->gf, a->opts->bitrate_kbps);
    } else {
        lame_set_VBR(e->gf, vbr_default);
        lame_set_VBR_quality(e->gf, 4.0f);
    }
    /* the tag frame is only correct when we can seek back to write it */
    lame_set_bWriteVbrTag(e->gf, e->out->seekable);
    if (lame_init_params(e->gf) < 0) {
        lame_destroy(&e->base);
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: LAME rejected the settings (bitrate %d kbit/s at 24 kHz mono)",
                        a->out->name, a->opts->bitrate_kbps);
    }
    *out = &e->base;
    return KOKORO_OK;
}
