/* kernels/cuda/linear_bf16.cu: the model's frozen linears on bf16 weights (kernels/matmul_bf16.h,
 * the backend's linear_bf16_* members): fp32 activations rounded to bf16 once, then the
 * cuBLASLt bf16 GEMMs of matmul_bf16.cu with fp32 outputs. */
#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/matmul_bf16.h"
}

extern "C" void to_bf16_cuda(void *dst, const float *src, size_t n) {
    bf16_from_f32_cuda((lqa_bf16 *)dst, src, n);
}

extern "C" void linear_bf16_forward_cuda(float *y, const float *x, const void *W16, int N, int In, int Out,
                                         int accumulate, void *scratch) {
    lqa_bf16 *x16 = (lqa_bf16 *)scratch;
    bf16_from_f32_cuda(x16, x, (size_t)N * In);
    matmul_bf16_forward_cuda(y, LQA_F32, x16, (const lqa_bf16 *)W16, N, In, Out, accumulate);
}

extern "C" void linear_bf16_backward_cuda(float *dx, const float *dy, const void *W16, int N, int In, int Out,
                                          void *scratch) {
    lqa_bf16 *dy16 = (lqa_bf16 *)scratch;
    bf16_from_f32_cuda(dy16, dy, (size_t)N * Out);
    matmul_bf16_backward_cuda(dx, NULL, dy16, NULL, (const lqa_bf16 *)W16, N, In, Out);
}
