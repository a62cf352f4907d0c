/* kernels/bf16.h: bfloat16 on the host, the CPU reference side of the bf16 CUDA path
 * (kernels/matmul_bf16.h, kernels/attention_bf16.h, docs/CUDA.md "bf16 on tensor cores").
 *
 * bf16 is fp32's top 16 bits: sign, 8 exponent bits, 7 stored mantissa bits (8 significant).
 * Its unit roundoff (half an ulp, relative) is u = 2^-8 = 0.0039; a product of two bf16 values
 * is exact in fp32, which is why tensor cores can multiply bf16 and accumulate in fp32. The
 * conversion here rounds to nearest, ties to even, exactly as the GPU's cvt.rn.bf16.f32 and the
 * emulator's __float2bfloat16_rn: a value rounded here is bitwise the device's.
 *
 * lqa_bf16 is the storage type in C (device arrays of __nv_bfloat16 are passed as lqa_bf16 *).
 */
#ifndef LQA_KERNELS_BF16_H
#define LQA_KERNELS_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t lqa_bf16;

/* Element types of the bf16 path's outputs. */
typedef enum lqa_dtype { LQA_F32 = 0, LQA_BF16 = 1 } lqa_dtype;

#define LQA_BF16_U (1.0 / 256.0) /* unit roundoff of bf16: 2^-8 */

static inline lqa_bf16 lqa_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (lqa_bf16)((u >> 16) | 0x0040u); /* NaN stays quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even; overflow goes to inf */
    return (lqa_bf16)(u >> 16);
}
static inline float lqa_bf16_to_float(lqa_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
/* f rounded to the nearest bf16 value, as a float. */
static inline float lqa_bf16_round(float f) { return lqa_bf16_to_float(lqa_bf16_from_float(f)); }

void lqa_bf16_from_floats(lqa_bf16 *dst, const float *src, size_t n);
void lqa_bf16_to_floats(float *dst, const lqa_bf16 *src, size_t n);
/* x[i] = lqa_bf16_round(x[i]) */
void lqa_bf16_round_floats(float *x, size_t n);

/* The CPU reference of the bf16 GEMM: C = alpha op(A) op(B) + beta C with bf16 A and B, fp32
 * accumulation (gemm_cpu on the widened inputs: every product is exact, as on tensor cores),
 * row-major with cblas_sgemm's M, N, K, lda, ldb, ldc. C is fp32 (c_type LQA_F32) or bf16
 * (LQA_BF16: read, and the result rounded to nearest even). Allocates its widened copies. */
void gemm_bf16_ref(int transA, int transB, int M, int N, int K, float alpha, const lqa_bf16 *A, int lda,
                   const lqa_bf16 *B, int ldb, float beta, void *C, lqa_dtype c_type, int ldc);

#ifdef LQA_CUDA
/* Device conversions (kernels/cuda/matmul_bf16.cu), device pointers, same rounding as above. */
void bf16_from_f32_cuda(lqa_bf16 *dst, const float *src, size_t n);
void bf16_to_f32_cuda(float *dst, const lqa_bf16 *src, size_t n);
#endif

#endif
