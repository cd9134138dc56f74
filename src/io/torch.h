/* PyTorch zip checkpoints (torch.save since 1.6): kokoro-v1_0.pth and the
 * voices/<name>.pt packs. A small pickle machine runs exactly the opcodes
 * torch writes for tensors and state dicts, calls only an allow-list of
 * globals, and never executes anything else. */
#ifndef KK_TORCH_H
#define KK_TORCH_H

#include <stddef.h>

#include "core/tensor.h"

/* Reads every tensor of a checkpoint into table. Nested dicts are flattened
 * with '.' ("bert" → {"module.x": t} gives "bert.module.x"); a file holding a
 * single tensor gives one entry named "". Tensors come out contiguous in C
 * order with their stored dtype, in this host's byte order (a "byteorder"
 * record of "big" swaps them). Errors name the file and, for the pickle,
 * the opcode or global and its byte offset. */
kokoro_status kk_torch_read(const char *path, kk_table *table);

/* Same, from a buffer holding the whole zip (what names it in messages). */
kokoro_status kk_torch_read_mem(const void *data, size_t size, const char *what, kk_table *table);

/* Non-zero when path is a zip with an "<archive>/data.pkl" entry. */
int kk_torch_probe(const char *path);

/* The pickle machine alone, on data.pkl's bytes; storages are fetched through
 * the callback (key → bytes, for numel elements of dtype). Exposed for tests. */
typedef kokoro_status (*kk_storage_fn)(void *ctx, const char *key, kk_dtype dtype, int64_t numel,
                                       const unsigned char **data, size_t *size);
kokoro_status kk_pickle_load(const unsigned char *pkl, size_t size, const char *what, kk_storage_fn storage,
                             void *ctx, kk_table *table);

#endif
