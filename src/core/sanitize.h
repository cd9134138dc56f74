/* Address checks hoisted out of hot loops.
 *
 * Under AddressSanitizer every vector load of the direct convolution's
 * register tile is checked, which makes synthesis ~7x slower and the
 * sanitized end-to-end tests the longest part of the test suite. A kernel
 * marked KK_NO_ASAN runs uninstrumented, and its caller instead checks, with
 * kk_asan_check, each whole range the kernel reads or writes: one check per
 * row instead of one per load, and an access outside a live allocation is
 * still reported, with the caller's stack. Without ASan both are no-ops. */
#ifndef KK_SANITIZE_H
#define KK_SANITIZE_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define KK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KK_ASAN 1
#endif
#endif

#ifdef KK_ASAN
#include <sanitizer/asan_interface.h>
#define KK_NO_ASAN __attribute__((no_sanitize("address", "undefined")))
/* Reports through ASan's own error path: an instrumented read of the first
 * poisoned byte (heap-buffer-overflow, use-after-free, ... with both stacks). */
static inline void kk_asan_check(const void *p, size_t bytes)
{
    if (bytes == 0) return;
    const volatile char *bad = __asan_region_is_poisoned((void *)p, bytes);
    if (bad) (void)*bad;
}
#else
#define KK_NO_ASAN
static inline void kk_asan_check(const void *p, size_t bytes)
{
    (void)p;
    (void)bytes;
}
#endif

#endif
