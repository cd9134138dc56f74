/* Internal interface between the writer front (temp file, rename, chapters)
 * and the encoder back ends. Every back end writes through kk_out. */
#ifndef KK_AUDIO_H
#define KK_AUDIO_H

#include <stdint.h>
#include <stdio.h>

#include "kokoro.h"

/* Where encoded bytes go: a temp file (seekable) or stdout (maybe a pipe). */
typedef struct kk_out {
    int fd;
    int seekable;       /* lseek works: headers can be fixed up */
    const char *name;   /* for messages: the final path or "stdout" */
    int64_t pos;        /* bytes written so far (stdout: tell without lseek) */
    kokoro_byte_sink sink; /* non-NULL: bytes go here instead of fd (never seekable) */
    void *sink_user;
} kk_out;

kokoro_status kk_out_write(kk_out *o, const void *data, size_t n);

typedef struct kk_chapter {
    char *title;
    uint64_t start, end; /* samples; end 0 = open until the next or the end */
} kk_chapter;

typedef struct kk_encoder kk_encoder;
typedef struct kk_encoder_vt {
    /* samples are already clipped to [-1, 1] */
    kokoro_status (*write)(kk_encoder *e, const float *x, size_t n);
    /* flushes the encoder and writes trailers; chapters are final here */
    kokoro_status (*finish)(kk_encoder *e, const kk_chapter *ch, size_t n_ch, uint64_t total);
    void (*destroy)(kk_encoder *e);
} kk_encoder_vt;

struct kk_encoder {
    const kk_encoder_vt *vt;
};

typedef struct kk_encoder_args {
    kk_out *out;
    kokoro_audio_format format;
    const kokoro_writer_options *opts;
} kk_encoder_args;

kokoro_status kk_enc_sndfile_open(const kk_encoder_args *a, kk_encoder **out);
kokoro_status kk_enc_lame_open(const kk_encoder_args *a, kk_encoder **out);
kokoro_status kk_enc_av_open(const kk_encoder_args *a, kk_encoder **out);
kokoro_status kk_enc_pcm_open(const kk_encoder_args *a, kk_encoder **out);

#endif
