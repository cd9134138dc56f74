/* Helpers shared by the tests: comparison metrics and golden-data access. */
#ifndef KK_TESTUTIL_H
#define KK_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ||a - b||_2 / ||b||_2 in double. */
double kt_rel_l2(const float *a, const float *b, size_t n);
/* max |a - b| */
double kt_max_abs(const float *a, const float *b, size_t n);
/* Pearson correlation of the magnitude spectrograms (n_fft 512, hop 128,
 * Hann) of two equally long signals. */
double kt_spectral_corr(const float *a, const float *b, size_t n);

/* The golden reference (tests/data/kokoro-golden.npz), loaded once per process. */
const kk_table *kt_golden(void);
/* A golden float32 tensor by name; fails the test when missing. */
const kk_tensor *kt_golden_get(const char *name);

#endif
