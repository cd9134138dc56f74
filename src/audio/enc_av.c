/* M4A / M4B: AAC-LC (libavcodec's native encoder) muxed by libavformat in
 * one pass. Chapters, tags and the cover go through libavformat's own API,
 * so no hand-built FFMETADATA text and no escaping bugs. The muxer writes an
 * edit list that hides the encoder's 1024 priming samples, so sample s of
 * our input is presented at time s/24000: chapter marks use that directly. */
#include "audio/audio.h"
#include "core/error.h"

#include <errno.h>
#include <pthread.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    kk_encoder base;
    kk_out *out;
    AVFormatContext *oc;
    AVIOContext *pb;
    AVCodecContext *cc;
    AVStream *st;
    int cover_index;      /* -1 when no cover */
    AVFrame *frame;
    AVPacket *pkt;
    int fill;             /* samples in frame */
    int64_t next_pts;
    int header_written;
    int no_chapters;
} av_enc;

static const char *av_err(int err, char *buf, size_t n)
{
    av_strerror(err, buf, n);
    return buf;
}

static int io_write(void *opaque, uint8_t *buf, int size)
{
    av_enc *e = opaque;
    if (kk_out_write(e->out, buf, (size_t)size) != KOKORO_OK) return AVERROR(EIO);
    return size;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    av_enc *e = opaque;
    if (whence & AVSEEK_SIZE) {
        struct stat s;
        return fstat(e->out->fd, &s) == 0 ? (int64_t)s.st_size : AVERROR(errno);
    }
    whence &= ~AVSEEK_FORCE;
    off_t r = lseek(e->out->fd, (off_t)off, whence);
    if (r < 0) return AVERROR(errno);
    e->out->pos = r;
    return r;
}

/* Sends one frame (NULL flushes) and writes every packet that comes out. */
static kokoro_status encode_frame(av_enc *e, AVFrame *f)
{
    char eb[128];
    int r = avcodec_send_frame(e->cc, f);
    if (r < 0) return kk_error(KOKORO_ERR_INTERNAL, "%s: AAC encoder refused a frame: %s", e->out->name, av_err(r, eb, sizeof eb));
    for (;;) {
        r = avcodec_receive_packet(e->cc, e->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return KOKORO_OK;
        if (r < 0) return kk_error(KOKORO_ERR_INTERNAL, "%s: AAC encoding failed: %s", e->out->name, av_err(r, eb, sizeof eb));
        av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
        e->pkt->stream_index = e->st->index;
        /* one audio stream (the cover is not interleaved): no reordering needed */
        r = av_write_frame(e->oc, e->pkt);
        av_packet_unref(e->pkt);
        if (r < 0) {
            if (r == AVERROR(EIO)) return KOKORO_ERR_IO; /* kk_out_write set the message */
            return kk_error(KOKORO_ERR_IO, "%s: writing AAC data failed: %s", e->out->name, av_err(r, eb, sizeof eb));
        }
    }
}

static kokoro_status send_fill(av_enc *e)
{
    e->frame->nb_samples = e->fill;
    e->frame->pts = e->next_pts;
    e->next_pts += e->fill;
    e->fill = 0;
    kokoro_status st = encode_frame(e, e->frame);
    if (st != KOKORO_OK) return st;
    if (av_frame_make_writable(e->frame) < 0) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
    e->frame->nb_samples = e->cc->frame_size;
    return KOKORO_OK;
}

static kokoro_status av_write(kk_encoder *base, const float *x, size_t n)
{
    av_enc *e = (av_enc *)base;
    while (n > 0) {
        size_t room = (size_t)(e->cc->frame_size - e->fill);
        size_t k = n < room ? n : room;
        memcpy((float *)e->frame->data[0] + e->fill, x, k * sizeof *x);
        e->fill += (int)k;
        x += k;
        n -= k;
        if (e->fill == e->cc->frame_size) {
            kokoro_status st = send_fill(e);
            if (st != KOKORO_OK) return st;
        }
    }
    return KOKORO_OK;
}

static kokoro_status add_chapters(av_enc *e, const kk_chapter *ch, size_t n)
{
    if (n == 0 || e->no_chapters) return KOKORO_OK;
    AVChapter **arr = av_realloc_array(NULL, n, sizeof *arr);
    if (!arr) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
    e->oc->chapters = arr;
    for (size_t i = 0; i < n; i++) {
        AVChapter *c = av_mallocz(sizeof *c);
        if (!c) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
        arr[i] = c;
        e->oc->nb_chapters = (unsigned)(i + 1);
        c->id = (int64_t)i + 1;
        c->time_base = (AVRational){1, KOKORO_SAMPLE_RATE};
        c->start = (int64_t)ch[i].start;
        c->end = (int64_t)ch[i].end;
        if (av_dict_set(&c->metadata, "title", ch[i].title, 0) < 0)
            return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
    }
    return KOKORO_OK;
}

static kokoro_status av_finish(kk_encoder *base, const kk_chapter *ch, size_t n_ch, uint64_t total)
{
    (void)total;
    av_enc *e = (av_enc *)base;
    char eb[128];
    kokoro_status st = KOKORO_OK;
    if (e->fill > 0) st = send_fill(e);
    if (st == KOKORO_OK) st = encode_frame(e, NULL);
    /* the MPEG-4 muxer builds its chapter track at the trailer, so chapters
     * known only now (the last one's end) are honoured */
    if (st == KOKORO_OK) st = add_chapters(e, ch, n_ch);
    if (st != KOKORO_OK) return st;
    int r = av_write_trailer(e->oc);
    e->header_written = 0;
    if (r < 0) {
        if (r == AVERROR(EIO)) return KOKORO_ERR_IO;
        return kk_error(KOKORO_ERR_IO, "%s: finishing the MPEG-4 file failed: %s", e->out->name, av_err(r, eb, sizeof eb));
    }
    avio_flush(e->pb);
    if (e->pb->error < 0) return kk_error(KOKORO_ERR_IO, "%s: write failed", e->out->name);
    return KOKORO_OK;
}

static void av_destroy(kk_encoder *base)
{
    av_enc *e = (av_enc *)base;
    if (e->oc) {
        if (e->header_written) av_write_trailer(e->oc); /* frees muxer state */
        avformat_free_context(e->oc);
    }
    if (e->pb) {
        av_freep(&e->pb->buffer);
        avio_context_free(&e->pb);
    }
    avcodec_free_context(&e->cc);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    free(e);
}

static const kk_encoder_vt av_vt = {av_write, av_finish, av_destroy};

/* ISO 639-2 code for the MPEG-4 language field (mdhd) from a 639-1/2 code or
 * a tag like "en-us". */
static int language_code(const char *in, char out[4])
{
    static const char *map[][2] = {{"en", "eng"}, {"es", "spa"}, {"fr", "fra"}, {"hi", "hin"}, {"it", "ita"},
                                   {"ja", "jpn"}, {"ko", "kor"}, {"pt", "por"}, {"zh", "zho"}, {"de", "deu"},
                                   {"nl", "nld"}, {"ru", "rus"}, {"pl", "pol"}, {"sv", "swe"}, {"fi", "fin"}};
    size_t len = strcspn(in, "-_");
    if (len == 3) {
        for (int i = 0; i < 3; i++) {
            char c = in[i];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c < 'a' || c > 'z') return -1;
            out[i] = c;
        }
        out[3] = '\0';
        return 0;
    }
    if (len != 2) return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncasecmp(in, map[i][0], 2) == 0) {
            memcpy(out, map[i][1], 4);
            return 0;
        }
    return -1;
}

static kokoro_status set_tag(av_enc *e, AVDictionary **d, const char *key, const char *value)
{
    if (!value || !*value) return KOKORO_OK;
    if (av_dict_set(d, key, value, 0) < 0) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
    return KOKORO_OK;
}

static kokoro_status set_metadata(av_enc *e, const kokoro_metadata *m, int m4b)
{
    AVDictionary **d = &e->oc->metadata;
    kokoro_status st = KOKORO_OK;
    if (st == KOKORO_OK) st = set_tag(e, d, "title", m->title);
    if (st == KOKORO_OK) st = set_tag(e, d, "artist", m->author);
    if (st == KOKORO_OK) st = set_tag(e, d, "album_artist", m->author);
    if (st == KOKORO_OK) st = set_tag(e, d, "album", m->album && *m->album ? m->album : m->title);
    if (st == KOKORO_OK) st = set_tag(e, d, "composer", m->narrator);
    if (st == KOKORO_OK) st = set_tag(e, d, "date", m->date);
    if (st == KOKORO_OK) st = set_tag(e, d, "genre", m->genre);
    if (st == KOKORO_OK) st = set_tag(e, d, "description", m->description);
    if (st == KOKORO_OK) st = set_tag(e, d, "comment", m->description);
    /* iTunes media kind 2 = audiobook: players file an .m4b under books */
    if (st == KOKORO_OK && m4b) st = set_tag(e, d, "media_type", "2");
    if (st == KOKORO_OK && m->language && *m->language) {
        char code[4];
        if (language_code(m->language, code) != 0)
            return kk_error(KOKORO_ERR_INVALID_ARG, "%s: language '%s' is not an ISO 639 code (like \"en\" or \"eng\")",
                            e->out->name, m->language);
        st = set_tag(e, &e->st->metadata, "language", code);
    }
    return st;
}

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | be16(p + 2); }

/* Width and height from a JPEG's frame header (SOFn), walking the marker
 * segments; 0 when there is none. */
static int jpeg_size(const unsigned char *p, size_t n, int *w, int *h)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xFF) return 0;
        unsigned m = p[i + 1];
        if (m == 0xFF) { i++; continue; } /* fill byte */
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
        if (m == 0xD9 || m == 0xDA) return 0; /* end or scan before any frame header */
        unsigned len = be16(p + i + 2);
        if (len < 2 || i + 2 + len > n) return 0;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (len < 7) return 0;
            *h = (int)be16(p + i + 5);
            *w = (int)be16(p + i + 7);
            return *w > 0 && *h > 0;
        }
        i += 2 + len;
    }
    return 0;
}

static kokoro_status add_cover(av_enc *e, const kokoro_metadata *m)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    enum AVCodecID id;
    if (m->cover_size >= 3 && m->cover[0] == 0xFF && m->cover[1] == 0xD8 && m->cover[2] == 0xFF) id = AV_CODEC_ID_MJPEG;
    else if (m->cover_size >= 8 && memcmp(m->cover, png, 8) == 0) id = AV_CODEC_ID_PNG;
    else
        return kk_error(KOKORO_ERR_FORMAT, "%s: the cover (%zu bytes) is neither a JPEG (FF D8 FF) nor a PNG image",
                        e->out->name, m->cover_size);
    int width = 0, height = 0;
    if (id == AV_CODEC_ID_PNG) {
        /* the IHDR chunk comes first: length 13, "IHDR", width, height */
        if (m->cover_size < 24 || memcmp(m->cover + 12, "IHDR", 4) != 0)
            return kk_error(KOKORO_ERR_FORMAT, "%s: the PNG cover is truncated: no IHDR chunk at byte 12", e->out->name);
        width = (int)(be32(m->cover + 16) & 0x7FFFFFFF);
        height = (int)(be32(m->cover + 20) & 0x7FFFFFFF);
    } else if (!jpeg_size(m->cover, m->cover_size, &width, &height))
        return kk_error(KOKORO_ERR_FORMAT, "%s: the JPEG cover (%zu bytes) has no readable frame header (SOF)",
                        e->out->name, m->cover_size);
    if (width <= 0 || height <= 0)
        return kk_error(KOKORO_ERR_FORMAT, "%s: the cover has an empty size %dx%d", e->out->name, width, height);
    if (m->cover_size > 64u * 1024 * 1024)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: the cover is %zu bytes; at most 64 MiB", e->out->name, m->cover_size);
    AVStream *vs = avformat_new_stream(e->oc, NULL);
    if (!vs) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", e->out->name);
    vs->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
    vs->codecpar->codec_id = id;
    vs->codecpar->width = width;
    vs->codecpar->height = height;
    vs->disposition = AV_DISPOSITION_ATTACHED_PIC;
    vs->time_base = (AVRational){1, 90000};
    e->cover_index = vs->index;
    return KOKORO_OK;
}

/* libav* log to stderr at "info" level by default (the AAC encoder prints
 * its average quantiser on every close); our failures carry their own
 * messages, so only libav errors are let through. Process-wide, set once. */
static void quiet_libav(void) { av_log_set_level(AV_LOG_ERROR); }

kokoro_status kk_enc_av_open(const kk_encoder_args *a, kk_encoder **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, quiet_libav);
    char eb[128];
    const char *name = a->out->name;
    av_enc *e = calloc(1, sizeof *e);
    if (!e) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
    e->base.vt = &av_vt;
    e->out = a->out;
    e->cover_index = -1;
    e->no_chapters = a->opts->no_chapters;
    kokoro_status st = KOKORO_OK;
    int r;
    const kokoro_metadata *m = a->opts->no_metadata ? NULL : a->opts->metadata;

    const AVOutputFormat *fmt = av_guess_format("ipod", NULL, NULL);
    if (!fmt) fmt = av_guess_format("mp4", NULL, NULL);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!fmt || !codec) {
        st = kk_error(KOKORO_ERR_INTERNAL, "%s: this libavformat/libavcodec has no %s", name, fmt ? "AAC encoder" : "MPEG-4 muxer");
        goto fail;
    }
    if ((r = avformat_alloc_output_context2(&e->oc, fmt, NULL, NULL)) < 0) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: cannot set up the muxer: %s", name, av_err(r, eb, sizeof eb));
        goto fail;
    }
    unsigned char *iobuf = av_malloc(65536);
    if (!iobuf || !(e->pb = avio_alloc_context(iobuf, 65536, 1, e, NULL, io_write, io_seek))) {
        av_free(iobuf);
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    e->pb->seekable = AVIO_SEEKABLE_NORMAL;
    e->oc->pb = e->pb;
    e->oc->url = av_strdup(name); /* only for the muxer's messages */
    e->oc->flags |= AVFMT_FLAG_CUSTOM_IO;

    e->cc = avcodec_alloc_context3(codec);
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->cc || !e->frame || !e->pkt) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    e->cc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    e->cc->sample_rate = KOKORO_SAMPLE_RATE;
    av_channel_layout_default(&e->cc->ch_layout, 1);
    e->cc->bit_rate = (int64_t)(a->opts->bitrate_kbps ? a->opts->bitrate_kbps : 64) * 1000;
    e->cc->time_base = (AVRational){1, KOKORO_SAMPLE_RATE};
    if (e->oc->oformat->flags & AVFMT_GLOBALHEADER) e->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((r = avcodec_open2(e->cc, codec, NULL)) < 0) {
        st = kk_error(KOKORO_ERR_INTERNAL, "%s: cannot open the AAC encoder: %s", name, av_err(r, eb, sizeof eb));
        goto fail;
    }
    e->st = avformat_new_stream(e->oc, NULL);
    if (!e->st || avcodec_parameters_from_context(e->st->codecpar, e->cc) < 0) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    e->st->time_base = e->cc->time_base;
    if (m) {
        if ((st = set_metadata(e, m, a->format == KOKORO_AUDIO_M4B)) != KOKORO_OK) goto fail;
        if (m->cover && m->cover_size && (st = add_cover(e, m)) != KOKORO_OK) goto fail;
    }
    /* The chapter track is timed in the movie time scale (1/1000 s by
     * default): in our sample rate's scale the marks are exact. */
    AVDictionary *mux_opts = NULL;
    if (av_dict_set(&mux_opts, "movie_timescale", "24000", 0) < 0) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    r = avformat_write_header(e->oc, &mux_opts);
    av_dict_free(&mux_opts);
    if (r < 0) {
        st = r == AVERROR(EIO) ? KOKORO_ERR_IO
                               : kk_error(KOKORO_ERR_INTERNAL, "%s: cannot start the MPEG-4 file: %s", name, av_err(r, eb, sizeof eb));
        goto fail;
    }
    e->header_written = 1;
    if (e->cover_index >= 0) {
        if (av_new_packet(e->pkt, (int)m->cover_size) < 0) {
            st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        memcpy(e->pkt->data, m->cover, m->cover_size);
        e->pkt->stream_index = e->cover_index;
        e->pkt->flags |= AV_PKT_FLAG_KEY;
        r = av_write_frame(e->oc, e->pkt);
        av_packet_unref(e->pkt);
        if (r < 0) {
            st = kk_error(KOKORO_ERR_INTERNAL, "%s: cannot attach the cover: %s", name, av_err(r, eb, sizeof eb));
            goto fail;
        }
    }
    e->frame->format = AV_SAMPLE_FMT_FLTP;
    e->frame->sample_rate = KOKORO_SAMPLE_RATE;
    e->frame->nb_samples = e->cc->frame_size;
    if (av_channel_layout_copy(&e->frame->ch_layout, &e->cc->ch_layout) < 0 || av_frame_get_buffer(e->frame, 0) < 0) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    *out = &e->base;
    return KOKORO_OK;
fail:
    av_destroy(&e->base);
    return st;
}
