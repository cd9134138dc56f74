/* WAV (file), FLAC and Ogg Opus through libsndfile, over virtual I/O on our
 * own descriptor so the temp-file and stdout logic stays in writer.c. */
#include "audio/audio.h"
#include "core/error.h"

#include <errno.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    kk_encoder base;
    kk_out *out;
    SNDFILE *sf;
    int io_failed;
} sf_enc;

static sf_count_t v_len(void *user)
{
    sf_enc *e = user;
    struct stat st;
    if (e->out->seekable && fstat(e->out->fd, &st) == 0) return st.st_size;
    return e->out->pos;
}

static sf_count_t v_seek(sf_count_t off, int whence, void *user)
{
    sf_enc *e = user;
    if (!e->out->seekable) {
        /* a pipe: only "where am I" can be answered */
        if ((whence == SEEK_CUR && off == 0) || (whence == SEEK_SET && off == e->out->pos)) return e->out->pos;
        return -1;
    }
    off_t r = lseek(e->out->fd, (off_t)off, whence);
    if (r >= 0) e->out->pos = r;
    return r;
}

static sf_count_t v_read(void *ptr, sf_count_t n, void *user)
{
    sf_enc *e = user;
    if (!e->out->seekable) return 0;
    ssize_t r = read(e->out->fd, ptr, (size_t)n);
    if (r > 0) e->out->pos += r;
    return r < 0 ? 0 : r;
}

static sf_count_t v_write(const void *ptr, sf_count_t n, void *user)
{
    sf_enc *e = user;
    if (kk_out_write(e->out, ptr, (size_t)n) != KOKORO_OK) {
        e->io_failed = 1;
        return 0;
    }
    return n;
}

static sf_count_t v_tell(void *user)
{
    sf_enc *e = user;
    return e->out->pos;
}

static kokoro_status sf_write(kk_encoder *base, const float *x, size_t n)
{
    sf_enc *e = (sf_enc *)base;
    sf_count_t w = sf_writef_float(e->sf, x, (sf_count_t)n);
    if (w != (sf_count_t)n) {
        if (e->io_failed) return KOKORO_ERR_IO; /* kk_out_write set the message */
        return kk_error(KOKORO_ERR_IO, "%s: encoder failed: %s", e->out->name, sf_strerror(e->sf));
    }
    return KOKORO_OK;
}

static kokoro_status sf_finish(kk_encoder *base, const kk_chapter *ch, size_t n_ch, uint64_t total)
{
    (void)ch, (void)n_ch, (void)total;
    sf_enc *e = (sf_enc *)base;
    int r = sf_close(e->sf);
    e->sf = NULL;
    if (e->io_failed) return KOKORO_ERR_IO;
    if (r != 0) return kk_error(KOKORO_ERR_IO, "%s: finishing the file failed: %s", e->out->name, sf_error_number(r));
    return KOKORO_OK;
}

static void sf_destroy(kk_encoder *base)
{
    sf_enc *e = (sf_enc *)base;
    if (e->sf) sf_close(e->sf);
    free(e);
}

static const kk_encoder_vt sf_vt = {sf_write, sf_finish, sf_destroy};

kokoro_status kk_enc_sndfile_open(const kk_encoder_args *a, kk_encoder **out)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = KOKORO_SAMPLE_RATE;
    info.channels = 1;
    switch (a->format) {
    case KOKORO_AUDIO_WAV: info.format = SF_FORMAT_WAV | (a->opts->wav_float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16); break;
    case KOKORO_AUDIO_FLAC: info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16; break;
    case KOKORO_AUDIO_OPUS: info.format = SF_FORMAT_OGG | SF_FORMAT_OPUS; break;
    default: return kk_error(KOKORO_ERR_INTERNAL, "%s: libsndfile asked for format %d", a->out->name, (int)a->format);
    }
    sf_enc *e = calloc(1, sizeof *e);
    if (!e) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", a->out->name);
    e->base.vt = &sf_vt;
    e->out = a->out;
    SF_VIRTUAL_IO vio = {v_len, v_seek, v_read, v_write, v_tell};
    e->sf = sf_open_virtual(&vio, SFM_WRITE, &info, e);
    if (!e->sf) {
        kokoro_status st = kk_error(KOKORO_ERR_IO, "%s: cannot start the %s encoder: %s", a->out->name,
                                    kokoro_audio_format_name(a->format), sf_strerror(NULL));
        free(e);
        return st;
    }
    /* float -> int conversion clips instead of wrapping (input is clipped
     * already; this guards the rounding at exactly +1.0) */
    sf_command(e->sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
    const kokoro_metadata *m = a->opts->no_metadata ? NULL : a->opts->metadata;
    if (m) {
        /* WAV: LIST/INFO chunk; FLAC and Ogg Opus: Vorbis comments. libsndfile
         * has no composer or language field; the cover needs MPEG-4 or MP3. */
        const struct { int id; const char *v; } tags[] = {
            {SF_STR_TITLE, m->title},   {SF_STR_ARTIST, m->author},
            {SF_STR_ALBUM, m->album && *m->album ? m->album : m->title},
            {SF_STR_DATE, m->date},     {SF_STR_GENRE, m->genre},
            {SF_STR_COMMENT, m->description},
        };
        for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
            if (tags[i].v && *tags[i].v && sf_set_string(e->sf, tags[i].id, tags[i].v) != 0) {
                kokoro_status st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: cannot store the tag \"%s\": %s",
                                            a->out->name, tags[i].v, sf_strerror(e->sf));
                sf_close(e->sf);
                free(e);
                return st;
            }
    }
    if (a->format == KOKORO_AUDIO_OPUS) {
        /* SFC_SET_BITRATE_MODE / COMPRESSION_LEVEL map to the Opus bitrate;
         * libsndfile 1.2 takes a 0..1 level: 0 = highest bitrate. */
        int kbps = a->opts->bitrate_kbps ? a->opts->bitrate_kbps : 32;
        /* libsndfile maps level l to bitrate = 6000 + (1-l) * (256000 - 6000) per channel (ogg_opus.c) */
        double level = 1.0 - ((double)kbps * 1000.0 - 6000.0) / 250000.0;
        if (level < 0.0) level = 0.0;
        if (level > 1.0) level = 1.0;
        sf_command(e->sf, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level);
    }
    *out = &e->base;
    return KOKORO_OK;
}
