/* kernels/matmul.c: y = x W^T and its backward GEMMs on OpenBLAS. */
#include "kernels/matmul.h"

#include <cblas.h>

void matmul_forward_cpu(float *y, const float *x, const float *W, int N, int In, int Out, int accumulate) {
    /* y[N,O] = x[N,I] * W[O,I]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Out, In, 1.0f, x, In, W, In, accumulate ? 1.0f : 0.0f, y, Out);
}

void matmul_backward_cpu(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int In,
                         int Out) {
    /* dx[N,I] += dy[N,O] * W[O,I] */
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, In, Out, 1.0f, dy, Out, W, In, 1.0f, dx, In);
    /* dW[O,I] += dy[N,O]^T * x[N,I] */
    if (dW) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Out, In, N, 1.0f, dy, Out, x, In, 1.0f, dW, In);
}
