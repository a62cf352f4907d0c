/* kernels/swiglu.h: the gated activation of the LLaMA MLP, h = silu(g) * u, elementwise over n
 * (g = x W_gate^T, u = x W_up^T; the MLP is down(h)). silu(g) = g * sigmoid(g).
 */
#ifndef LQA_KERNELS_SWIGLU_H
#define LQA_KERNELS_SWIGLU_H

#include "kernels/common.h"

void swiglu_forward_cpu(float *h, const float *g, const float *u, size_t n);
/* dg += dh * u * silu'(g); du += dh * silu(g). */
void swiglu_backward_cpu(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);

#ifdef LQA_CUDA
void swiglu_forward_cuda(float *h, const float *g, const float *u, size_t n);
void swiglu_backward_cuda(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
#endif

#endif
