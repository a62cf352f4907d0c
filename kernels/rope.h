/* kernels/rope.h: rotary position embedding as HF LLaMA (rotate_half convention: dimension i of
 * a head pairs with i + hd/2), with rope_theta and linear scaling (positions divided by scale).
 *
 * The angle table for positions pos0 .. pos0+T-1 is built once (rope_table_cpu) and applied to
 * rows laid out [B, T, n_heads, hd] (the q_proj / k_proj outputs). pos0 lets KV-cache inference
 * rotate the last Tq queries of a longer sequence at their true positions.
 *   cos, sin: [T, hd/2]; angle(t, i) = ((pos0 + t) / scale) * theta^(-2i/hd)
 */
#ifndef LQA_KERNELS_ROPE_H
#define LQA_KERNELS_ROPE_H

#include "kernels/common.h"

void rope_table_cpu(float *cos_t, float *sin_t, int T, int hd, int pos0, float theta, float scale);
/* In place: x <- x cos + rotate_half(x) sin. */
void rope_forward_cpu(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
/* In place on the gradient: dx <- the transpose rotation of dy (rotation by the negative angle). */
void rope_backward_cpu(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);

#ifdef LQA_CUDA
void rope_table_cuda(float *cos_t, float *sin_t, int T, int hd, int pos0, float theta, float scale);
void rope_forward_cuda(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
void rope_backward_cuda(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
#endif

#endif
