/* kernels/rmsnorm.h: RMSNorm as HF LLaMA: y = w * x / sqrt(mean(x^2) + eps), per row of D.
 *   x, y [N, D], w [D], rstd [N] (1/sqrt(mean(x^2)+eps), saved by the forward).
 */
#ifndef LQA_KERNELS_RMSNORM_H
#define LQA_KERNELS_RMSNORM_H

#include "kernels/common.h"

void rmsnorm_forward_cpu(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
/* dx += d/dx, dw += d/dw (dw may be NULL: the norm weight is frozen). */
void rmsnorm_backward_cpu(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, int N, int D);

#ifdef LQA_CUDA
void rmsnorm_forward_cuda(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
void rmsnorm_backward_cuda(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const float *rstd, int N, int D);
#endif

#endif
