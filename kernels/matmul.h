/* kernels/matmul.h: the linear layer y = x W^T (no bias, as LLaMA) and its two backward GEMMs,
 * all OpenBLAS cblas_sgemm on the CPU.
 *   x [N, In], W [Out, In], y [N, Out]
 */
#ifndef LQA_KERNELS_MATMUL_H
#define LQA_KERNELS_MATMUL_H

#include "kernels/common.h"

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
