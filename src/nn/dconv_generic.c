/* The direct convolution for the generic path (see dconv_kern.inc; the
 * compiler flags for this file are set in CMakeLists.txt). */
#define SFX generic
#define VL 4
#define MR 4
#define NR 3
#include "nn/dconv_kern.inc"
