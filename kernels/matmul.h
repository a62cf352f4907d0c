/* kernels/matmul.h: the linear layer y = x W^T (no bias, as LLaMA) and its two backward GEMMs,
 * all OpenBLAS cblas_sgemm on the CPU, split across the OpenMP threads by gemm_cpu.
 *   x [N, In], W [Out, In], y [N, Out]
 */
#ifndef LQA_KERNELS_MATMUL_H
#define LQA_KERNELS_MATMUL_H

#include "kernels/common.h"

/* General GEMM, C = alpha op(A) op(B) + beta C, row-major, op = transpose when trans != 0
 * (cblas_sgemm's meaning of M, N, K, lda, ldb, ldc). Splits the M rows of C across the OpenMP
 * threads, each calling single-threaded OpenBLAS: the process has ONE thread pool (OpenMP), so
 * OpenBLAS threads never compete with OpenMP threads for the cores. Every element of C is
 * computed by one thread, so the result does not depend on the split. */
void gemm_cpu(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

/* y = x W^T when accumulate == 0, y += x W^T when accumulate != 0. */
void matmul_forward_cpu(float *y, const float *x, const float *W, int N, int In, int Out, int accumulate);
/* dx += dy W (skipped when dx == NULL); dW += dy^T x (skipped when dW == NULL). */
void matmul_backward_cpu(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int In,
                         int Out);

#ifdef LQA_CUDA
void matmul_forward_cuda(float *y, const float *x, const float *W, int N, int In, int Out, int accumulate);
void matmul_backward_cuda(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int In,
                          int Out);
#endif

#endif
