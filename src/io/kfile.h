/* Our own model file: one mmap-able file with a versioned header (JSON), the
 * config, optionally the voices, and every tensor 64-byte aligned in float32
 * or bfloat16, weight norm already folded. float32 weights are used in place
 * from the mapping: loading is opening a file. */
#ifndef KK_KFILE_H
#define KK_KFILE_H

#include "core/tensor.h"
#include "kokoro.h"

#define KK_KFILE_MAGIC "KOKOROC\0"
#define KK_KFILE_VERSION 1

typedef struct kk_kfile kk_kfile;

int kk_kfile_probe(const char *path);
/* Writes table (canonical names, weight norm folded), the config text and the
 * voices (may be NULL); the decoder's float32 matrices are stored as bfloat16 when bf16. */
kokoro_status kk_kfile_write(const char *path, const kk_table *table, const char *config_json,
                             const kokoro_voices *voices, int bf16);
kokoro_status kk_kfile_open(const char *path, kk_kfile **out);
/* Tensors as a table: float32 ones borrowed from the mapping, bfloat16 ones
 * widened into owned float32. */
kokoro_status kk_kfile_tensors(kk_kfile *kf, kk_table *table);
/* Non-zero for a file written with bf16 (the header's "dtype"). */
int kk_kfile_is_bf16(const kk_kfile *kf);
/* The config as JSON text (malloc'd). */
char *kk_kfile_config_json(const kk_kfile *kf);
size_t kk_kfile_voice_count(const kk_kfile *kf);
/* name and [510 x 256] float32 pack of voice i (pointers into the mapping) */
kokoro_status kk_kfile_voice(const kk_kfile *kf, size_t i, const char **name, const float **pack);
/* Hands the mapping over (the model keeps it); kk_kfile_close then leaves it mapped. */
void kk_kfile_take_map(kk_kfile *kf, void **map, size_t *size);
void kk_kfile_close(kk_kfile *kf);

#endif
