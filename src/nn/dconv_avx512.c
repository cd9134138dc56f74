/* The direct convolution for the avx512 path (see dconv_kern.inc; the
 * compiler flags for this file are set in CMakeLists.txt). */
#define SFX avx512
#define VL 16
#define MR 8
#define NR 3
#include "nn/dconv_kern.inc"
