/* Building blocks shared by the model's stages (internal). */
#ifndef KK_BLOCKS_H
#define KK_BLOCKS_H

#include "core/arena.h"
#include "model/model.h"

#define KK_NOMEM(what) kk_error(KOKORO_ERR_NOMEM, "out of memory in %s", what)

/* gb[2C] = fc(style) */
void kk_style_fc(const kk_adain_p *a, const float *s, float *gb);
/* Conv1d with the layer's own sizes; returns n_out or -1 on allocation failure. */
int kk_conv_apply(const kk_conv *c, const float *x, int n, int stride, int pad, int dil, float *y);
/* AdaIN1d(x; style) into y (may alias x). */
kokoro_status kk_adain_apply(const kk_adain_p *a, const float *x, int n, const float *s, float *y);
/* AdainResBlk1d: x[din, n] -> y[dout, n or 2n] */
kokoro_status kk_resblk_forward(const kk_resblk *b, const float *x, int n, const float *s, float *y);
/* bf16 non-zero: its 3-tap convolutions in bfloat16 on AMX tiles where the CPU has them */
kokoro_status kk_resblk_forward_dt(const kk_resblk *b, const float *x, int n, const float *s, float *y, int bf16,
                                   kk_memo *memo);
/* the same four in double precision */
void kk_style_fc_d(const kk_adain_p_d *a, const double *s, double *gb);
int kk_conv_apply_d(const kk_conv_d *c, const double *x, int n, int stride, int pad, int dil, double *y);
kokoro_status kk_adain_apply_d(const kk_adain_p_d *a, const double *x, int n, const double *s, double *y);
kokoro_status kk_resblk_forward_d(const kk_resblk_d *b, const double *x, int n, const double *s, double *y);
/* AdaINResBlock1: x[C, n] -> y[C, n] */
kokoro_status kk_resblock1_forward(const kk_resblock1 *r, const float *x, int n, const float *s, float *y);
/* The same with caller-owned scratch of kk_resblock1_ws_floats(r, n) floats
 * (no allocation: the generator reuses one buffer for all its resblocks);
 * bf16 non-zero: the convolutions in bfloat16 (AVX512-BF16 only); memo (may
 * be NULL): where the AMX tiles' packed weights are kept between calls. */
size_t kk_resblock1_ws_floats(const kk_resblock1 *r, int n);
kokoro_status kk_resblock1_forward_ws(const kk_resblock1 *r, const float *x, int n, const float *s, float *y,
                                      float *ws, int bf16, kk_memo *memo);
/* Whether the bf16 resblock runs on AMX tiles here. */
int kk_resblock1_amx(const kk_resblock1 *r, int bf16);
/* The generator's mean of three resblocks, one at a time: the k-th's result
 * goes into out (k 0: out = it, 1: out += it, 2: out = (out + it) / 3) with
 * no pass of its own on AMX tiles, for k 0, and where the block's last
 * convolution runs on the FFT (float32, nn/fconv.h); *rest is then NULL, and
 * otherwise points at the result (C·n floats in ws) for the caller to add.
 * ws: kk_resblock1_mean_ws_floats(r, n). */
size_t kk_resblock1_mean_ws_floats(const kk_resblock1 *r, int n);
kokoro_status kk_resblock1_mean_ws(const kk_resblock1 *r, const float *x, int n, const float *s, float *out, int k,
                                   float *ws, int bf16, kk_memo *memo, const float **rest);

#endif
