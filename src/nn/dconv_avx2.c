/* The direct convolution for the avx2 path (see dconv_kern.inc; the
 * compiler flags for this file are set in CMakeLists.txt). */
#define SFX avx2
#define VL 8
#define MR 4
#define NR 3
#include "nn/dconv_kern.inc"
