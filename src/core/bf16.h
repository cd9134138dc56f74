/* float32 -> bfloat16 bits, rounded to nearest even as vcvtneps2bf16 (a NaN
 * stays a NaN): the one rounding the model file, the bf16 kernels' packing
 * and their scalar tails share. */
#ifndef KK_BF16_H
#define KK_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t kk_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#endif
