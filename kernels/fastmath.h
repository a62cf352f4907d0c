/* kernels/fastmath.h: a vectorisable expf for the hot loops (softmax tiles, cross-entropy, SiLU).
 * libm's expf is a scalar call (glibc's vector versions need -ffast-math); this one is plain
 * arithmetic, so `#pragma omp simd` loops turn it into SIMD code. Cephes' single-precision
 * polynomial with Cody-Waite range reduction: relative error about 2e-7 (within 2 ulp).
 * Inputs below -87.3 (including -inf, the attention mask) give exactly 0; NaN gives NaN (NaN
 * weights must show up as a NaN loss, and NaN must never reach the integer exponent: the clamp
 * below sends it to a finite value first, so the conversion and the shift stay defined). */
#ifndef LQA_KERNELS_FASTMATH_H
#define LQA_KERNELS_FASTMATH_H

#include <math.h>
#include <stdint.h>

/* Hot loops are also compiled for AVX2+FMA and picked at load time (GCC target_clones, ifunc)
 * on x86-64; the default build stays at the project's -march. The same source and the same
 * operation order, but FMA contracts a*b+c, so results may differ from the default clone in
 * the last bit: deterministic on a given machine, not across CPUs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && !defined(LQA_NO_SIMD_CLONES)
#define LQA_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LQA_SIMD_CLONES
#endif

static inline float lqa_expf(float x) {
    float xc = x > 88.0f ? 88.0f : (x >= -87.0f ? x : -87.0f); /* NaN fails both tests: -87 */
    float n = floorf(xc * 1.44269504088896341f + 0.5f);
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        uint32_t i;
        float f;
    } scale = {.i = (uint32_t)((int32_t)n + 127) << 23}; /* n + 127 is in 1..254 */
    float y = p * scale.f;
    return x < -87.3f ? 0.0f : (x == x ? y : x);
}

#endif
