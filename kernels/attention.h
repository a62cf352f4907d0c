/* kernels/attention.h: causal multi-head attention with GQA, computed tile by tile with an online
 * softmax (FlashAttention-2's algorithm), forward and backward. Only the output and the row
 * log-sum-exp are stored: no Tq x Tk score matrix ever exists, memory is linear in T.
 *
 * Layout (row-major, as the projections produce it):
 *   q, out [B, Tq, H, hd]      k, v [B, Tk, KV, hd]      lse [B, H, Tq]
 * Query i is at position p = Tk - Tq + i of the key sequence (Tq == Tk in training; Tq < Tk for
 * KV-cache inference, where the queries are the last Tq positions). Head h reads kv head
 * h / (H / KV) (KV divides H). Scores are scaled by 1/sqrt(hd).
 *
 * Query at position p sees key j iff all of:
 *   - causal: j <= p;
 *   - segments (segment_ids != NULL, [B, Tk]): seg[j] == seg[p] and seg[p] >= 0 (packed records
 *     never attend across each other; a query with seg < 0 is padding: output 0, lse = +inf);
 *   - S2-Attn (group > 0, needs Tq == Tk, T % group == 0, group even): with G = group,
 *       heads h <  H/2: group index p / G            -> groups [0,G), [G,2G), ...
 *       heads h >= H/2: group index (p + G/2) / G    -> [0,G/2), [G/2,3G/2), ..., [T-G/2,T)
 *     and j must have the same group index as p. Causal inside each group: nothing sees the future.
 * Tiles that these rules empty are skipped entirely (no work), which is where S2's saving is.
 * RoPE is applied by the caller, with global positions, before this call.
 */
#ifndef LQA_KERNELS_ATTENTION_H
#define LQA_KERNELS_ATTENTION_H

#include "kernels/common.h"

typedef struct attn_params {
    int B, Tq, Tk;      /* batch, query length, key length (Tq <= Tk) */
    int H, KV, hd;      /* query heads, key/value heads, head dim */
    int group;          /* S2-Attn group size G; 0 = plain causal attention */
    const int32_t *segment_ids; /* [B, Tk] or NULL */
    int tile_q, tile_k; /* tile sizes; 0 = defaults (64) */
} attn_params;

/* 0 when p is valid, else -1 with a message in msg (msgsz bytes) naming what is wrong. */
int attention_check(const attn_params *p, char *msg, size_t msgsz);
/* Scratch the CPU forward / backward need, in floats, for `threads` threads. */
size_t attention_scratch_floats(const attn_params *p, int threads);

void attention_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v,
                           const attn_params *p, float *scratch);
/* dq += , dk += , dv += (accumulate). out and lse are the forward's. */
void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                            const float *q, const float *k, const float *v, const attn_params *p, float *scratch);

/* Blocks of tile_q x tile_k the tiled kernels compute for p (after skipping the empty ones),
 * summed over batch and heads; *total (if not NULL) gets the count without any skipping. For
 * tests and benchmarks: S2-Attn's saving is visited / total. */
size_t attention_count_tiles(const attn_params *p, size_t *total);

/* The naive reference (tests only): builds each score row explicitly under the same mask
 * (O(Tk) scratch per row, single thread). Same arguments as the tiled versions. */
void attention_forward_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                           const attn_params *p);
/* The mask rule above for one (batch, head, query index, key index); used by tests and ref. */
int attention_visible(const attn_params *p, int b, int h, int i, int j);

#ifdef LQA_CUDA
void attention_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                            const attn_params *p, float *scratch);
void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                             const float *lse, const float *q, const float *k, const float *v,
                             const attn_params *p, float *scratch);
#endif

#endif
