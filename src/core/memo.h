/* Buffers derived from read-only data (weights repacked for a kernel,
 * converted to another precision), made once, on first use, and kept until
 * the memo is freed. Made on first use because most serve one mode (bfloat16
 * compute: 142 MB), so a model pays only for the modes it runs (float32: the
 * upsamplings' polyphase weights, 12 MB).
 * Thread-safe: concurrent callers of the same entry wait for the first. */
#ifndef KK_MEMO_H
#define KK_MEMO_H

#include <stddef.h>

typedef struct kk_memo kk_memo;

kk_memo *kk_memo_new(void);
void kk_memo_free(kk_memo *memo);

/* The buffer kept for (key, variant); when there is none yet, `bytes`
 * 64-byte-aligned bytes are filled by fill(dst, arg) (non-zero: failed).
 * NULL when memory is short or fill failed (nothing is kept then). */
const void *kk_memo_get(kk_memo *memo, const void *key, int variant, size_t bytes,
                        int (*fill)(void *dst, const void *arg), const void *arg);

/* Bytes held. */
size_t kk_memo_bytes(kk_memo *memo);

#endif
