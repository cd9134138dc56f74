/* Thread-local last-error message shared by every module. */
#ifndef KK_ERROR_H
#define KK_ERROR_H

#include "kokoro.h"

#if defined(__GNUC__)
#define KK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KK_PRINTF(a, b)
#endif

/* Sets the calling thread's last-error message and returns status, so a
 * failure reads: return kk_error(KOKORO_ERR_FORMAT, "%s: offset %zu: ...", ...); */
kokoro_status kk_error(kokoro_status status, const char *fmt, ...) KK_PRINTF(2, 3);
/* Prefixes the current message with "<context>: " (for callers adding where). */
void kk_error_prefix(const char *fmt, ...) KK_PRINTF(1, 2);
void kk_error_clear(void);

#endif
