/* MP3 through LAME: mono 24 kHz (MPEG-2 layer III). Default VBR quality 4
 * (about 48-64 kbit/s for speech at 24 kHz); a bitrate option gives CBR.
 * On a seekable file the Xing/LAME tag (length and encoder delay, so
 * decoders play it gaplessly with the right duration) is rewritten at the
 * start after the last frame. */
#include "audio/audio.h"
#include "core/error.h"

#include <lame/lame.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    kk_encoder base;
    kk_out *out;
    lame_global_flags *gf;
    unsigned char *mp3;
    size_t mp3_cap;
    int64_t frames_at; /* byte offset of the first MP3 frame (after the ID3v2 tag) */
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
            if (lseek(e->out->fd, e->frames_at, SEEK_SET) != e->frames_at)
                return kk_error(KOKORO_ERR_IO, "%s: cannot seek back to write the LAME tag", e->out->name);
            e->out->pos = e->frames_at;
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

/* UTF-8 to NUL-terminated UTF-16 with a byte-order mark, as LAME's ID3v2
 * text functions want it. NULL for invalid UTF-8 or no memory. */
static unsigned short *utf16(const char *in)
{
    size_t n = strlen(in);
    unsigned short *out = malloc((2 * n + 2) * sizeof *out), *o = out;
    if (!out) return NULL;
    *o++ = 0xFEFF;
    const unsigned char *p = (const unsigned char *)in;
    while (*p) {
        uint32_t c;
        int extra;
        if (p[0] < 0x80) c = p[0], extra = 0;
        else if ((p[0] & 0xE0) == 0xC0) c = p[0] & 0x1F, extra = 1;
        else if ((p[0] & 0xF0) == 0xE0) c = p[0] & 0x0F, extra = 2;
        else if ((p[0] & 0xF8) == 0xF0) c = p[0] & 0x07, extra = 3;
        else goto bad;
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xC0) != 0x80) goto bad;
            c = c << 6 | (p[i] & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (c < min[extra] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) goto bad;
        p += extra + 1;
        if (c >= 0x10000) {
            c -= 0x10000;
            *o++ = (unsigned short)(0xD800 | c >> 10);
            *o++ = (unsigned short)(0xDC00 | (c & 0x3FF));
        } else *o++ = (unsigned short)c;
    }
    *o = 0;
    return out;
bad:
    free(out);
    return NULL;
}

static kokoro_status id3_text(lame_enc *e, const char *frame, const char *field, const char *value)
{
    if (!value || !*value) return KOKORO_OK;
    unsigned short *u = utf16(value);
    if (!u) return kk_error(KOKORO_ERR_INVALID_ARG, "%s: the %s is not valid UTF-8", e->out->name, field);
    int r;
    if (strcmp(frame, "COMM") == 0) {
        unsigned short empty[2] = {0xFEFF, 0};
        r = id3tag_set_comment_utf16(e->gf, "eng", empty, u);
    } else r = id3tag_set_textinfo_utf16(e->gf, frame, u);
    free(u);
    if (r != 0) return kk_error(KOKORO_ERR_INVALID_ARG, "%s: LAME refused the %s for the ID3 tag", e->out->name, field);
    return KOKORO_OK;
}

/* ID3v2 tag (UTF-16 text, so any title survives) and the cover as APIC. */
static kokoro_status set_id3(lame_enc *e, const kokoro_metadata *m)
{
    id3tag_init(e->gf);
    id3tag_v2_only(e->gf);
    kokoro_status st = KOKORO_OK;
    if (!st) st = id3_text(e, "TIT2", "title", m->title);
    if (!st) st = id3_text(e, "TPE1", "author", m->author);
    if (!st) st = id3_text(e, "TPE2", "author", m->author);
    if (!st) st = id3_text(e, "TALB", "album", m->album && *m->album ? m->album : m->title);
    if (!st) st = id3_text(e, "TCOM", "narrator", m->narrator);
    if (!st) st = id3_text(e, "TYER", "date", m->date);
    if (!st) st = id3_text(e, "TCON", "genre", m->genre);
    if (!st) st = id3_text(e, "COMM", "description", m->description);
    if (!st) st = id3_text(e, "TLAN", "language", m->language);
    if (!st && m->cover && m->cover_size &&
        id3tag_set_albumart(e->gf, (const char *)m->cover, m->cover_size) != 0)
        st = kk_error(KOKORO_ERR_FORMAT, "%s: the cover (%zu bytes) is neither a JPEG, PNG nor GIF image",
                      e->out->name, m->cover_size);
    return st;
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
    const kokoro_metadata *m = a->opts->no_metadata ? NULL : a->opts->metadata;
    if (m) {
        kokoro_status st = set_id3(e, m);
        if (st != KOKORO_OK) {
            lame_destroy(&e->base);
            return st;
        }
        /* we write the ID3v2 tag ourselves, so we know where the frames start */
        lame_set_write_id3tag_automatic(e->gf, 0);
    }
    if (lame_init_params(e->gf) < 0) {
        lame_destroy(&e->base);
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: LAME rejected the settings (bitrate %d kbit/s at 24 kHz mono)",
                        a->out->name, a->opts->bitrate_kbps);
    }
    if (m) {
        size_t need = lame_get_id3v2_tag(e->gf, NULL, 0);
        unsigned char *tag = need ? malloc(need) : NULL;
        kokoro_status st = KOKORO_OK;
        if (need && !tag) st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", a->out->name);
        else if (need && lame_get_id3v2_tag(e->gf, tag, need) != need)
            st = kk_error(KOKORO_ERR_INTERNAL, "%s: LAME could not build the ID3v2 tag", a->out->name);
        else if (need) st = kk_out_write(e->out, tag, need);
        free(tag);
        if (st != KOKORO_OK) {
            lame_destroy(&e->base);
            return st;
        }
        e->frames_at = e->out->pos;
    }
    *out = &e->base;
    return KOKORO_OK;
}
