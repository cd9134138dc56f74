#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KK_ERROR_MAX 1024

static _Thread_local char tl_message[KK_ERROR_MAX];

kokoro_status kk_error(kokoro_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    va_end(ap);
    return status;
}

void kk_error_prefix(const char *fmt, ...)
{
    char old[KK_ERROR_MAX];
    memcpy(old, tl_message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 2 >= sizeof tl_message) return;
    size_t rest = sizeof tl_message - (size_t)n;
    memcpy(tl_message + n, ": ", 2);
    size_t len = strlen(old);
    if (len > rest - 3) len = rest - 3;
    memcpy(tl_message + n + 2, old, len);
    tl_message[n + 2 + len] = '\0';
}

void kk_error_clear(void) { tl_message[0] = '\0'; }

const char *kokoro_last_error(void) { return tl_message; }

const char *kokoro_status_string(kokoro_status status)
{
    switch (status) {
    case KOKORO_OK: return "ok";
    case KOKORO_ERR_INVALID_ARG: return "invalid argument";
    case KOKORO_ERR_IO: return "I/O error";
    case KOKORO_ERR_FORMAT: return "malformed file";
    case KOKORO_ERR_NOMEM: return "out of memory";
    case KOKORO_ERR_MODEL: return "model error";
    case KOKORO_ERR_CANCELLED: return "cancelled";
    case KOKORO_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *kokoro_version(void) { return KOKORO_VERSION_STRING; }
