/* kernels/rope.h: rotary position embedding as HF LLaMA (rotate_half convention: dimension i of
 * a head pairs with i + hd/2), with rope_theta, LLaMA-3.x frequency-dependent scaling
 * (rope_type "llama3") and linear scaling / position interpolation (positions divided by scale)
 * composed on top of it.
 *
 * rope_inv_freq is the one place the per-frequency inverse frequencies are computed (the CPU
 * table, the CUDA table and eval's incremental decoder all use it):
 *   inv_freq(i) = theta^(-2i/hd), i < hd/2, then, with llama3 (transformers'
 *   _compute_llama3_parameters): wavelen = 2 pi / inv_freq; lo = original_max_pos / low_freq_factor,
 *   hi = original_max_pos / high_freq_factor; wavelen > lo: inv_freq / factor; wavelen < hi:
 *   unchanged; between: (1 - s) inv_freq / factor + s inv_freq with
 *   s = (original_max_pos / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor).
 *
 * The angle table for positions pos0 .. pos0+T-1 is built once (rope_table_cpu) and applied to
 * rows laid out [B, T, n_heads, hd] (the q_proj / k_proj outputs). pos0 lets KV-cache inference
 * rotate the last Tq queries of a longer sequence at their true positions.
 *   cos, sin: [T, hd/2]; angle(t, i) = ((pos0 + t) / scale) * inv_freq(i)
 */
#ifndef LQA_KERNELS_ROPE_H
#define LQA_KERNELS_ROPE_H

#include "kernels/common.h"

/* The CUDA table keeps inv_freq in constant memory: head dims up to this. */
#define ROPE_MAX_HEAD_DIM 1024

typedef struct rope_spec {
    float theta;              /* rope_theta */
    float scale;              /* linear factor / position interpolation; 1 = none */
    int llama3;               /* 1: LLaMA-3.x frequency-dependent scaling with the four below */
    float factor;             /* llama3 "factor" (8 for LLaMA-3.1) */
    float low_freq_factor;    /* llama3 (1) */
    float high_freq_factor;   /* llama3 (4), > low_freq_factor */
    int original_max_pos;     /* llama3 original_max_position_embeddings (8192) */
} rope_spec;

/* inv_freq[0 .. hd/2-1] for r (without the linear scale, which divides positions). */
void rope_inv_freq(double *inv_freq, int hd, const rope_spec *r);

void rope_table_cpu(float *cos_t, float *sin_t, int T, int hd, int pos0, const rope_spec *r);
/* In place: x <- x cos + rotate_half(x) sin. */
void rope_forward_cpu(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
/* In place on the gradient: dx <- the transpose rotation of dy (rotation by the negative angle). */
void rope_backward_cpu(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);

#ifdef LQA_CUDA
/* Same table as rope_table_cpu (inv_freq from rope_inv_freq on the host; hd <= ROPE_MAX_HEAD_DIM). */
void rope_table_cuda(float *cos_t, float *sin_t, int T, int hd, int pos0, const rope_spec *r);
void rope_forward_cuda(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
void rope_backward_cuda(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
#endif

#endif
