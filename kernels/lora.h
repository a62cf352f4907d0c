/* kernels/lora.h: the LoRA branch of a linear layer, y += scale * (x A^T) B^T, and its backward.
 *   x [N, In], A [r, In], B [Out, r], t [N, r] (x A^T, saved by the forward for the backward),
 *   scale = alpha / r. Built on matmul.h.
 */
#ifndef LQA_KERNELS_LORA_H
#define LQA_KERNELS_LORA_H

#include "kernels/common.h"

/* t = x A^T; y += scale * t B^T. */
void lora_forward_cpu(float *y, float *t, const float *x, const float *A, const float *B, int N, int In, int Out,
                      int r, float scale);
/* dB += scale * dy^T t; dA += (scale dy B)^T x; dx += (scale dy B) A (dx may be NULL).
 * scratch: N * r floats. */
void lora_backward_cpu(float *dx, float *dA, float *dB, const float *dy, const float *x, const float *t,
                       const float *A, const float *B, int N, int In, int Out, int r, float scale, float *scratch);

#ifdef LQA_CUDA
void lora_forward_cuda(float *y, float *t, const float *x, const float *A, const float *B, int N, int In, int Out,
                       int r, float scale);
void lora_backward_cuda(float *dx, float *dA, float *dB, const float *dy, const float *x, const float *t,
                        const float *A, const float *B, int N, int In, int Out, int r, float scale, float *scratch);
#endif

#endif
