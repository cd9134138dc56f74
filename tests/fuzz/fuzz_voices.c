/* The voice loader as users reach it: a file, whatever its format (raw .bin,
 * torch .pt, npz); it picks the reader from the content. The input goes to a
 * private temporary file, rewritten for every run. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kokoro.h"

static char path[64];

static void cleanup(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/kokoro-fuzz-voice-%ld.bin", (long)getpid());
        atexit(cleanup);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    kokoro_voices *v;
    if (kokoro_voices_load(path, &v) == KOKORO_OK) {
        float style[KOKORO_STYLE_DIM];
        const char *name = kokoro_voices_name(v, 0);
        if (name) (void)kokoro_voices_style(v, name, 1000, style);
        kokoro_voices_free(v);
    }
    return 0;
}
