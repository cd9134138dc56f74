/* The direct convolution for the avx2 path (see dconv_kern.inc; the
 * compiler flags for this file are set in CMakeLists.txt). */
#define SFX avx2
#define VL 8
#define MR 4
#define NR 3
#if defined(__x86_64__)
#include <immintrin.h>
#define SPLAT _mm256_set1_ps
#define ALL_LANES(c) (_mm256_movemask_ps((__m256)(c)) == 0xFF)
#endif
#include "nn/dconv_kern.inc"
