/* kernels/cuda/matmul.cu: y = x W^T and its backward GEMMs on cuBLAS (the twins of matmul.c,
 * call for call: the same row-major GEMMs through lqa_gemm_rm). */
#include "kernels/cuda/internal.cuh"

extern "C" void matmul_forward_cuda(float *y, const float *x, const float *W, int N, int In, int Out,
                                    int accumulate) {
    /* y[N,O] = x[N,I] W[O,I]^T */
    lqa_gemm_rm(0, 1, N, Out, In, 1.0f, x, In, W, In, accumulate ? 1.0f : 0.0f, y, Out);
}

extern "C" void matmul_backward_cuda(float *dx, float *dW, const float *dy, const float *x, const float *W, int N,
                                     int In, int Out) {
    /* dx[N,I] += dy[N,O] W[O,I] */
    if (dx) lqa_gemm_rm(0, 0, N, In, Out, 1.0f, dy, Out, W, In, 1.0f, dx, In);
    /* dW[O,I] += dy[N,O]^T x[N,I] */
    if (dW) lqa_gemm_rm(1, 0, Out, In, N, 1.0f, dy, Out, x, In, 1.0f, dW, In);
}
