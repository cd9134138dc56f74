/* The streaming writer: format choice, temp file + fsync + rename, sample
 * clipping, chapter bookkeeping; the encoders live in enc_*.c. */
#include "audio/audio.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct kokoro_writer {
    kk_out out;
    kk_encoder *enc;
    kokoro_audio_format format;
    char *path;        /* final path (NULL for stdout) */
    char *tmp;         /* temp path (NULL for stdout) */
    uint64_t pos;      /* samples written */
    kk_chapter *ch;
    size_t n_ch, cap_ch;
    int failed;        /* an encoder error happened: close will not publish */
};

static const struct { const char *name; kokoro_audio_format f; } kNames[] = {
    {"wav", KOKORO_AUDIO_WAV},   {"flac", KOKORO_AUDIO_FLAC}, {"mp3", KOKORO_AUDIO_MP3},
    {"opus", KOKORO_AUDIO_OPUS}, {"ogg", KOKORO_AUDIO_OPUS},  {"m4a", KOKORO_AUDIO_M4A},
    {"m4b", KOKORO_AUDIO_M4B},   {"pcm", KOKORO_AUDIO_PCM},   {"raw", KOKORO_AUDIO_PCM},
};

kokoro_status kokoro_audio_format_parse(const char *name, kokoro_audio_format *out)
{
    if (!name || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "audio format: NULL argument");
    for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; i++)
        if (strcasecmp(name, kNames[i].name) == 0) {
            *out = kNames[i].f;
            return KOKORO_OK;
        }
    return kk_error(KOKORO_ERR_INVALID_ARG,
                    "unknown audio format '%s' (expected wav, flac, mp3, opus, m4a, m4b or pcm)", name);
}

kokoro_audio_format kokoro_audio_format_from_path(const char *path)
{
    if (!path) return KOKORO_AUDIO_AUTO;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    kokoro_audio_format f;
    if (!dot || !dot[1]) return KOKORO_AUDIO_AUTO;
    if (kokoro_audio_format_parse(dot + 1, &f) != KOKORO_OK) {
        kk_error_clear();
        return KOKORO_AUDIO_AUTO;
    }
    return f;
}

const char *kokoro_audio_format_name(kokoro_audio_format f)
{
    switch (f) {
    case KOKORO_AUDIO_AUTO: return "auto";
    case KOKORO_AUDIO_WAV: return "wav";
    case KOKORO_AUDIO_FLAC: return "flac";
    case KOKORO_AUDIO_MP3: return "mp3";
    case KOKORO_AUDIO_OPUS: return "opus";
    case KOKORO_AUDIO_M4A: return "m4a";
    case KOKORO_AUDIO_M4B: return "m4b";
    case KOKORO_AUDIO_PCM: return "pcm";
    }
    return NULL;
}

int kokoro_audio_format_can_stream(kokoro_audio_format f)
{
    /* FLAC's STREAMINFO and MPEG-4's index are written after the audio. */
    return f == KOKORO_AUDIO_WAV || f == KOKORO_AUDIO_MP3 || f == KOKORO_AUDIO_OPUS || f == KOKORO_AUDIO_PCM;
}

kokoro_writer_options kokoro_writer_options_default(void)
{
    kokoro_writer_options o;
    memset(&o, 0, sizeof o);
    return o;
}

kokoro_status kk_out_write(kk_out *o, const void *data, size_t n)
{
    const unsigned char *p = data;
    if (o->sink) {
        kk_error_clear(); /* so a sink that sets no message gets one below */
        kokoro_status st = n ? o->sink(o->sink_user, data, n) : KOKORO_OK;
        if (st == KOKORO_OK) o->pos += (int64_t)n;
        else if (!kokoro_last_error()[0])
            kk_error(st, "%s: the receiver refused %zu bytes at byte %lld", o->name, n, (long long)o->pos);
        return st;
    }
    while (n > 0) {
        ssize_t k = write(o->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return kk_error(KOKORO_ERR_IO, "%s: write failed at byte %lld: %s", o->name, (long long)o->pos,
                            strerror(errno));
        }
        p += k;
        n -= (size_t)k;
        o->pos += k;
    }
    return KOKORO_OK;
}

/* Creates ".name.XXXXXX.tmp" beside path with O_EXCL (mkstemps is not POSIX;
 * open() also honours the umask, so the final file gets normal permissions). */
static kokoro_status make_temp(const char *path, char **tmp_out, int *fd_out)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dirlen;
    if (!*base) return kk_error(KOKORO_ERR_INVALID_ARG, "%s: output path names a folder, not a file", path);
    size_t len = strlen(path) + 16;
    char *tmp = malloc(len);
    if (!tmp) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    static const char digits[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec * 6364136223846793005ull ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)tmp;
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        for (int i = 0; i < 6; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            suffix[i] = digits[(seed >> 33) % (sizeof digits - 1)];
        }
        suffix[6] = '\0';
        snprintf(tmp, len, "%.*s.%s.%s.tmp", (int)dirlen, path, base, suffix);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            *fd_out = fd;
            return KOKORO_OK;
        }
        if (errno != EEXIST) {
            int e = errno;
            kk_error(KOKORO_ERR_IO, "%s: cannot create the output file (a temp file beside it: %s): %s", path,
                     tmp, strerror(e));
            free(tmp);
            return KOKORO_ERR_IO;
        }
    }
    free(tmp);
    return kk_error(KOKORO_ERR_IO, "%s: cannot create a unique temp file beside it", path);
}

static void writer_free(kokoro_writer *w)
{
    if (!w) return;
    if (w->enc) w->enc->vt->destroy(w->enc);
    if (w->out.fd >= 0 && w->tmp) close(w->out.fd);
    for (size_t i = 0; i < w->n_ch; i++) free(w->ch[i].title);
    free(w->ch);
    free(w->path);
    free(w->tmp);
    free(w);
}

static kokoro_status writer_open(const char *path, kokoro_byte_sink sink, void *user,
                                 const kokoro_writer_options *opts, kokoro_writer **out);

kokoro_status kokoro_writer_open(const char *path, const kokoro_writer_options *opts, kokoro_writer **out)
{
    return writer_open(path, NULL, NULL, opts, out);
}

kokoro_status kokoro_writer_open_sink(kokoro_byte_sink sink, void *user, const kokoro_writer_options *opts,
                                      kokoro_writer **out)
{
    if (!sink) {
        if (out) *out = NULL;
        return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_open_sink: NULL sink");
    }
    /* the sink takes stdout's road: same streaming encoders, same checks */
    return writer_open("-", sink, user, opts, out);
}

static kokoro_status writer_open(const char *path, kokoro_byte_sink sink, void *user,
                                 const kokoro_writer_options *opts, kokoro_writer **out)
{
    if (!path || !out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_open: NULL argument");
    *out = NULL;
    kokoro_writer_options def = kokoro_writer_options_default();
    if (!opts) opts = &def;
    int to_stdout = strcmp(path, "-") == 0;
    kokoro_audio_format f = opts->format;
    if ((int)f < 0 || f > KOKORO_AUDIO_PCM)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: invalid audio format %d", path, (int)f);
    if (f == KOKORO_AUDIO_AUTO) {
        if (to_stdout)
            return kk_error(KOKORO_ERR_INVALID_ARG, "%s: name an audio format (no file extension to go by)", sink ? "sink" : "stdout");
        f = kokoro_audio_format_from_path(path);
        if (f == KOKORO_AUDIO_AUTO)
            return kk_error(KOKORO_ERR_INVALID_ARG,
                            "%s: cannot tell the audio format from the extension "
                            "(expected .wav, .flac, .mp3, .opus, .ogg, .m4a, .m4b or .pcm)", path);
    }
    if (to_stdout && !kokoro_audio_format_can_stream(f))
        return kk_error(KOKORO_ERR_INVALID_ARG,
                        "%s: %s cannot be streamed (its header or index is written after the audio); "
                        "write it to a file, or stream wav, mp3, opus or pcm", sink ? "sink" : "stdout",
                        kokoro_audio_format_name(f));
    if (opts->bitrate_kbps < 0 || opts->bitrate_kbps > 512)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: bitrate %d kbit/s out of range (0 = default, up to 512)", path,
                        opts->bitrate_kbps);

    kokoro_writer *w = calloc(1, sizeof *w);
    if (!w) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    w->format = f;
    w->out.fd = -1;
    kokoro_status st;
    if (sink) {
        w->out.sink = sink;
        w->out.sink_user = user;
        w->out.name = "sink";
    } else if (to_stdout) {
        w->out.fd = STDOUT_FILENO;
        w->out.name = "stdout";
        w->out.seekable = 0; /* even a redirected file: we never rewrite what a reader may have taken */
    } else {
        w->path = strdup(path);
        if (!w->path) {
            writer_free(w);
            return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
        }
        st = make_temp(path, &w->tmp, &w->out.fd);
        if (st != KOKORO_OK) {
            writer_free(w);
            return st;
        }
        w->out.name = w->path;
        w->out.seekable = 1;
    }
    kk_encoder_args a = {&w->out, f, opts};
    switch (f) {
    case KOKORO_AUDIO_WAV:
        st = to_stdout ? kk_enc_pcm_open(&a, &w->enc) : kk_enc_sndfile_open(&a, &w->enc);
        break;
    case KOKORO_AUDIO_FLAC:
    case KOKORO_AUDIO_OPUS: st = kk_enc_sndfile_open(&a, &w->enc); break;
    case KOKORO_AUDIO_MP3: st = kk_enc_lame_open(&a, &w->enc); break;
    case KOKORO_AUDIO_M4A:
    case KOKORO_AUDIO_M4B: st = kk_enc_av_open(&a, &w->enc); break;
    case KOKORO_AUDIO_PCM: st = kk_enc_pcm_open(&a, &w->enc); break;
    default: st = kk_error(KOKORO_ERR_INTERNAL, "%s: no encoder for format %d", path, (int)f);
    }
    if (st != KOKORO_OK) {
        kokoro_writer_abort(w);
        return st;
    }
    *out = w;
    return KOKORO_OK;
}

static kokoro_status encode(kokoro_writer *w, const float *x, size_t n)
{
    if (!w) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_write: NULL writer");
    if (w->failed) return kk_error(KOKORO_ERR_INVALID_ARG, "%s: the writer failed earlier; abort it", w->out.name);
    float buf[4096];
    while (n > 0) {
        size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++) {
            float v = x ? x[i] : 0.0f;
            /* NaN becomes silence rather than noise at full scale */
            buf[i] = v != v ? 0.0f : v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
        }
        kokoro_status st = w->enc->vt->write(w->enc, buf, k);
        if (st != KOKORO_OK) {
            w->failed = 1;
            return st;
        }
        w->pos += k;
        n -= k;
        if (x) x += k;
    }
    return KOKORO_OK;
}

kokoro_status kokoro_writer_write(kokoro_writer *w, const float *samples, size_t n)
{
    if (n > 0 && !samples) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_write: NULL samples");
    return encode(w, samples, n);
}

kokoro_status kokoro_writer_write_silence(kokoro_writer *w, size_t n) { return encode(w, NULL, n); }

uint64_t kokoro_writer_position(const kokoro_writer *w) { return w ? w->pos : 0; }

static kokoro_status push_chapter(kokoro_writer *w, const char *title, uint64_t start, uint64_t end)
{
    if (!w || !title) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_add_chapter: NULL argument");
    if (w->format != KOKORO_AUDIO_M4A && w->format != KOKORO_AUDIO_M4B)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: chapters need m4a or m4b output, not %s", w->out.name,
                        kokoro_audio_format_name(w->format));
    if (w->n_ch > 0) {
        kk_chapter *prev = &w->ch[w->n_ch - 1];
        uint64_t prev_end = prev->end ? prev->end : start;
        if (start < prev_end || start <= prev->start)
            return kk_error(KOKORO_ERR_INVALID_ARG,
                            "%s: chapter '%s' starts at sample %llu, before the end of chapter '%s' "
                            "(%llu..%llu); chapters must be in order and not empty",
                            w->out.name, title, (unsigned long long)start, prev->title,
                            (unsigned long long)prev->start, (unsigned long long)prev_end);
        if (!prev->end) prev->end = start;
    }
    if (w->n_ch == w->cap_ch) {
        size_t cap = w->cap_ch ? 2 * w->cap_ch : 16;
        kk_chapter *p = realloc(w->ch, cap * sizeof *p);
        if (!p) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", w->out.name);
        w->ch = p;
        w->cap_ch = cap;
    }
    char *t = strdup(title);
    if (!t) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", w->out.name);
    w->ch[w->n_ch++] = (kk_chapter){t, start, end};
    return KOKORO_OK;
}

kokoro_status kokoro_writer_add_chapter(kokoro_writer *w, const char *title)
{
    return push_chapter(w, title, w ? w->pos : 0, 0);
}

kokoro_status kokoro_writer_add_chapter_at(kokoro_writer *w, const char *title, uint64_t start, uint64_t end)
{
    if (end <= start)
        return kk_error(KOKORO_ERR_INVALID_ARG, "%s: chapter '%s': end %llu is not after start %llu",
                        w ? w->out.name : "writer", title ? title : "(null)", (unsigned long long)end,
                        (unsigned long long)start);
    return push_chapter(w, title, start, end);
}

static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on folders */
        close(fd);
    }
}

kokoro_status kokoro_writer_close(kokoro_writer *w)
{
    if (!w) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_writer_close: NULL writer");
    kokoro_status st = KOKORO_OK;
    if (w->failed) st = kk_error(KOKORO_ERR_IO, "%s: not written: an earlier write failed", w->out.name);
    if (st == KOKORO_OK && w->n_ch > 0) {
        kk_chapter *last = &w->ch[w->n_ch - 1];
        if (!last->end) last->end = w->pos;
        if (last->end <= last->start)
            st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: the last chapter '%s' is empty (starts at the end, sample %llu)",
                          w->out.name, last->title, (unsigned long long)last->start);
        for (size_t i = 0; st == KOKORO_OK && i < w->n_ch; i++)
            if (w->ch[i].end > w->pos)
                st = kk_error(KOKORO_ERR_INVALID_ARG, "%s: chapter '%s' ends at sample %llu but the audio has %llu",
                              w->out.name, w->ch[i].title, (unsigned long long)w->ch[i].end,
                              (unsigned long long)w->pos);
    }
    if (st == KOKORO_OK) st = w->enc->vt->finish(w->enc, w->ch, w->n_ch, w->pos);
    w->enc->vt->destroy(w->enc);
    w->enc = NULL;
    if (w->tmp) {
        if (st == KOKORO_OK && fsync(w->out.fd) != 0)
            st = kk_error(KOKORO_ERR_IO, "%s: cannot sync to disk: %s", w->path, strerror(errno));
        if (close(w->out.fd) != 0 && st == KOKORO_OK)
            st = kk_error(KOKORO_ERR_IO, "%s: cannot close: %s", w->path, strerror(errno));
        w->out.fd = -1;
        if (st == KOKORO_OK && rename(w->tmp, w->path) != 0)
            st = kk_error(KOKORO_ERR_IO, "%s: cannot rename %s into place: %s", w->path, w->tmp, strerror(errno));
        if (st != KOKORO_OK) unlink(w->tmp);
        else sync_dir(w->path);
    }
    writer_free(w);
    return st;
}

void kokoro_writer_abort(kokoro_writer *w)
{
    if (!w) return;
    if (w->enc) w->enc->vt->destroy(w->enc);
    w->enc = NULL;
    if (w->tmp) {
        if (w->out.fd >= 0) close(w->out.fd);
        w->out.fd = -1;
        unlink(w->tmp);
    }
    writer_free(w);
}
