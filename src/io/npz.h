/* NumPy .npy / .npz reading and writing (npz = zip of .npy members, stored or
 * deflated), used for voice packs (voices-v1.0.bin), golden test data and
 * kokoro-bench's case files. */
#ifndef KK_NPZ_H
#define KK_NPZ_H

#include <stddef.h>

#include "core/tensor.h"

/* Reads every member of an .npz file into table; tensor names are the member
 * names without the ".npy" suffix. Data is converted to C order and native
 * little-endian. Sizes declared in headers are checked against the file
 * before any allocation. On failure the table is left empty and the error
 * names the file, the member and what was wrong. */
kokoro_status kk_npz_read(const char *path, kk_table *table);
/* Same, from a buffer holding the whole zip (path only used in messages). */
kokoro_status kk_npz_read_mem(const void *data, size_t size, const char *path, kk_table *table);

/* Opens a zip held in memory (read-only, consistency-checked); the source
 * belongs to *out (zip_discard frees both). On failure the error reads
 * "<what>: <not_a>: <libzip's reason>". */
struct zip;
kokoro_status kk_zip_open_buffer(const void *data, size_t size, const char *what, const char *not_a,
                                 struct zip **out);

/* Parses one .npy image (the bytes of a member or a .npy file). */
kokoro_status kk_npy_parse(const void *data, size_t size, const char *what, kk_tensor *out);

/* Writes the table as an uncompressed .npz numpy can load (np.load). The file
 * appears atomically: written to "<path>.tmp", flushed, then renamed. */
kokoro_status kk_npz_write(const char *path, const kk_table *table);

#endif
