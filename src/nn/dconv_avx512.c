/* The direct convolution for the avx512 path (see dconv_kern.inc; the
 * compiler flags for this file are set in CMakeLists.txt). */
#define SFX avx512
#define VL 16
#define MR 8
#define NR 3
#if defined(__x86_64__)
#include <immintrin.h>
#define SPLAT _mm512_set1_ps
#define ALL_LANES(c) (_mm512_movepi32_mask((__m512i)(c)) == 0xFFFF)
#endif
#include "nn/dconv_kern.inc"
