/* Internal access to loaded voice packs (the public API is in kokoro.h). */
#ifndef KK_VOICES_H
#define KK_VOICES_H

#include "kokoro.h"

/* [KOKORO_VOICE_ROWS x KOKORO_STYLE_DIM] float32 of voice i, NULL when out of range. */
const float *kk_voices_pack(const kokoro_voices *voices, size_t i);
/* Takes ownership of pack (malloc'd, 510 x 256 floats). */
kokoro_status kk_voices_add(kokoro_voices *voices, const char *name, const char *source, float *pack);

#endif
