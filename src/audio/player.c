/* Live playback through PortAudio's callback API: the producer queues
 * chunks into a ring, the callback drains it, so consecutive chunks play
 * without gaps as long as synthesis keeps ahead. */
#include "audio/ring.h"
#include "core/error.h"
#include "kokoro.h"

#include <alsa/asoundlib.h>
#include <jack/jack.h>
#include <portaudio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kokoro_player {
    PaStream *stream;
    kk_ring ring;
};

static int callback(const void *in, void *outp, unsigned long frames, const PaStreamCallbackTimeInfo *ti,
                    PaStreamCallbackFlags flags, void *user)
{
    (void)in, (void)ti, (void)flags;
    kokoro_player *p = user;
    float *out = outp;
    size_t got = kk_ring_read(&p->ring, out, frames);
    /* the producer is late (or done): silence rather than stale samples */
    if (got < frames) memset(out + got, 0, (frames - got) * sizeof *out);
    return paContinue;
}

/* PortAudio probes ALSA and JACK, which print every failed probe (no card,
 * no JACK server: the normal case on servers and CI) straight to stderr and
 * drown our one clear message. Both libraries offer a process-wide handler
 * for this; it is set once. KOKORO_AUDIO_DEBUG=1 keeps their messages. */
static void alsa_quiet(const char *file, int line, const char *func, int err, const char *fmt, ...)
{
    (void)file, (void)line, (void)func, (void)err, (void)fmt;
}
static void jack_quiet(const char *msg) { (void)msg; }
static void quiet_backends(void)
{
    const char *dbg = getenv("KOKORO_AUDIO_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0) return;
    snd_lib_error_set_handler(alsa_quiet);
    jack_set_error_function(jack_quiet);
    jack_set_info_function(jack_quiet);
}

static kokoro_status pa_fail(PaError e, const char *what)
{
    return kk_error(KOKORO_ERR_IO, "audio playback: %s: %s", what, Pa_GetErrorText(e));
}

kokoro_status kokoro_player_open(int buffer_ms, kokoro_player **out)
{
    if (!out) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_player_open: NULL argument");
    *out = NULL;
    if (buffer_ms < 0 || buffer_ms > 600000)
        return kk_error(KOKORO_ERR_INVALID_ARG, "audio playback: buffer of %d ms out of range (0..600000)", buffer_ms);
    if (buffer_ms == 0) buffer_ms = 2000;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, quiet_backends);
    PaError e = Pa_Initialize();
    if (e != paNoError) return pa_fail(e, "cannot start PortAudio");
    PaDeviceIndex dev = Pa_GetDefaultOutputDevice();
    if (dev == paNoDevice) {
        Pa_Terminate();
        return kk_error(KOKORO_ERR_IO,
                        "audio playback: no audio output device found (PortAudio sees %d device(s), none for output); "
                        "write to a file instead", Pa_GetDeviceCount() < 0 ? 0 : (int)Pa_GetDeviceCount());
    }
    kokoro_player *p = calloc(1, sizeof *p);
    if (!p || kk_ring_init(&p->ring, (size_t)buffer_ms * KOKORO_SAMPLE_RATE / 1000) != 0) {
        free(p);
        Pa_Terminate();
        return kk_error(KOKORO_ERR_NOMEM, "audio playback: out of memory");
    }
    PaStreamParameters sp;
    memset(&sp, 0, sizeof sp);
    sp.device = dev;
    sp.channelCount = 1;
    sp.sampleFormat = paFloat32;
    const PaDeviceInfo *info = Pa_GetDeviceInfo(dev);
    sp.suggestedLatency = info ? info->defaultHighOutputLatency : 0.1;
    e = Pa_OpenStream(&p->stream, NULL, &sp, KOKORO_SAMPLE_RATE, paFramesPerBufferUnspecified, paClipOff, callback, p);
    if (e == paNoError) e = Pa_StartStream(p->stream);
    if (e != paNoError) {
        kokoro_status st = pa_fail(e, info && info->name ? info->name : "cannot open the output device");
        if (p->stream) Pa_CloseStream(p->stream);
        kk_ring_free(&p->ring);
        free(p);
        Pa_Terminate();
        return st;
    }
    *out = p;
    return KOKORO_OK;
}

kokoro_status kokoro_player_write(kokoro_player *p, const float *x, size_t n)
{
    if (!p || (!x && n)) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_player_write: NULL argument");
    if (kk_ring_write(&p->ring, x, n) != n) return kk_error(KOKORO_ERR_IO, "audio playback: the stream stopped");
    return KOKORO_OK;
}

static void player_free(kokoro_player *p)
{
    kk_ring_close(&p->ring);
    Pa_CloseStream(p->stream);
    kk_ring_free(&p->ring);
    free(p);
    Pa_Terminate();
}

kokoro_status kokoro_player_close(kokoro_player *p)
{
    if (!p) return kk_error(KOKORO_ERR_INVALID_ARG, "kokoro_player_close: NULL player");
    /* wait for the ring to drain, then for the device's own buffer */
    while (kk_ring_used(&p->ring) > 0 && Pa_IsStreamActive(p->stream) == 1) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    PaError e = Pa_StopStream(p->stream); /* plays out what the device holds */
    player_free(p);
    return e == paNoError ? KOKORO_OK : pa_fail(e, "stopping the stream");
}

void kokoro_player_abort(kokoro_player *p)
{
    if (!p) return;
    Pa_AbortStream(p->stream);
    player_free(p);
}
