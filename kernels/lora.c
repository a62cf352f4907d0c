/* kernels/lora.c: the LoRA branch y += scale (x A^T) B^T and its backward, as GEMMs. */
#include "kernels/lora.h"

#include "kernels/matmul.h"

void lora_forward_cpu(float *y, float *t, const float *x, const float *A, const float *B, int N, int In, int Out,
                      int r, float scale) {
    matmul_forward_cpu(t, x, A, N, In, r, 0);
    /* y[N,O] += scale * t[N,r] B[O,r]^T */
    gemm_cpu(0, 1, N, Out, r, scale, t, r, B, r, 1.0f, y, Out);
}

void lora_backward_cpu(float *dx, float *dA, float *dB, const float *dy, const float *x, const float *t,
                       const float *A, const float *B, int N, int In, int Out, int r, float scale, float *scratch) {
    /* dB[O,r] += scale * dy^T t */
    if (dB) gemm_cpu(1, 0, Out, r, N, scale, dy, Out, t, r, 1.0f, dB, r);
    /* dt[N,r] = scale * dy[N,O] B[O,r] */
    float *dt = scratch;
    gemm_cpu(0, 0, N, r, Out, scale, dy, Out, B, r, 0.0f, dt, r);
    /* dA[r,I] += dt^T x; dx += dt A */
    matmul_backward_cpu(dx, dA, dt, x, A, N, In, r);
}
