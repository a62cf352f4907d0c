/* kernels/cuda/emu/include/cuda_bf16.h: the emulator's __nv_bfloat16 (see ../emu.h): 16 bits
 * (sign, 8 exponent bits, 7 mantissa bits, fp32's top half), converted from float with
 * round-to-nearest-even as the hardware's cvt.rn.bf16.f32 (NaN stays a quiet NaN), widened to
 * float exactly. Only the calls kernels/cuda uses. */
#ifndef LQA_CUDA_EMU_BF16_H
#define LQA_CUDA_EMU_BF16_H

#include <stdint.h>
#include <string.h>

#include "kernels/cuda/emu/emu.h"

struct __nv_bfloat16 {
    uint16_t __x;
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) { /* NaN: keep the sign, make it quiet */
        h.__x = (uint16_t)((u >> 16) | 0x0040u);
        return h;
    }
    u += 0x7fffu + ((u >> 16) & 1u); /* ties to the even 16-bit result; overflow rounds to inf */
    h.__x = (uint16_t)(u >> 16);
    return h;
}
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.__x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
