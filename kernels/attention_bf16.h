/* kernels/attention_bf16.h: flash attention on tensor cores with bf16 q, k, v, out and dout,
 * fp32 accumulation, fp32 softmax statistics (lse) and fp32 gradients
 * (kernels/cuda/attention_bf16.cu; docs/CUDA.md "bf16 on tensor cores").
 *
 * Same layout, mask and attn_params as kernels/attention.h (causal, segment ids, S2-Attn shifted
 * groups with empty tiles never visited, GQA, Tq < Tk for KV-cache queries); p->segment_ids is a
 * device array, the struct is read on the host, tile sizes are the kernel's own (tile_q/tile_k
 * ignored), no scratch. Head dims: multiples of 16 up to 128 (the WMMA tile is 16 wide).
 *   q, out, dout [B, Tq, H, hd] bf16    k, v [B, Tk, KV, hd] bf16    lse [B, H, Tq] fp32
 *   dq [B, Tq, H, hd], dk, dv [B, Tk, KV, hd] fp32, ACCUMULATED (+=) as every _backward.
 * The backward is deterministic: every gradient element has one owner, no atomics.
 */
#ifndef LQA_KERNELS_ATTENTION_BF16_H
#define LQA_KERNELS_ATTENTION_BF16_H

#include "kernels/attention.h"
#include "kernels/bf16.h"

#define ATTN_BF16_MAX_HD 128

/* 0 when the bf16 kernels take p (attention_check plus the head-dim rule), else -1 with a
 * message naming what is wrong. */
int attention_bf16_check(const attn_params *p, char *msg, size_t msgsz);

#ifdef LQA_CUDA
void attention_forward_bf16_cuda(lqa_bf16 *out, float *lse, const lqa_bf16 *q, const lqa_bf16 *k, const lqa_bf16 *v,
                                 const attn_params *p);
void attention_backward_bf16_cuda(float *dq, float *dk, float *dv, const lqa_bf16 *dout, const lqa_bf16 *out,
                                  const float *lse, const lqa_bf16 *q, const lqa_bf16 *k, const lqa_bf16 *v,
                                  const attn_params *p);
#endif

#endif
