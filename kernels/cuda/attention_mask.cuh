/* kernels/cuda/attention_mask.cuh: the mask of kernels/attention.h on the device, shared by the
 * fp32 (attention.cu) and bf16 (attention_bf16.cu) attention kernels: the shapes by value, S2
 * group bounds, the per-pair visibility rule (attention_visible's) and the key range a run of
 * query positions can see (where tile skipping comes from). */
#ifndef LQA_KERNELS_CUDA_ATTENTION_MASK_CUH
#define LQA_KERNELS_CUDA_ATTENTION_MASK_CUH

#include "kernels/cuda/internal.cuh"

/* The shapes and the mask, by value for the kernels. */
typedef struct attn_dev {
    int B, Tq, Tk, H, KV, hd, group;
    const int32_t *seg; /* device [B, Tk] or NULL */
    float scale;
} attn_dev;

/* ---- the mask (attention_visible's rules, on the device) ---- */

__device__ __forceinline__ int s2_index(const attn_dev &p, int h, int pos) {
    return h < p.H / 2 ? pos / p.group : (pos + p.group / 2) / p.group;
}
/* First position of the S2 group holding pos for head h. */
__device__ __forceinline__ int s2_start(const attn_dev &p, int h, int pos) {
    int g = s2_index(p, h, pos);
    if (h < p.H / 2) return g * p.group;
    return g == 0 ? 0 : g * p.group - p.group / 2;
}
/* One past the last position of that group (capped at Tk: the last shifted group is half). */
__device__ __forceinline__ int s2_end(const attn_dev &p, int h, int pos) {
    int g = s2_index(p, h, pos);
    int e = h < p.H / 2 ? (g + 1) * p.group : g * p.group + p.group / 2;
    return e < p.Tk ? e : p.Tk;
}
/* Query i (position Tk - Tq + i) of head h in batch b sees key j; i < Tq, j < Tk. */
__device__ __forceinline__ bool visible(const attn_dev &p, int b, int h, int i, int j) {
    int pos = p.Tk - p.Tq + i;
    if (j > pos) return false;
    if (p.group > 0 && s2_index(p, h, pos) != s2_index(p, h, j)) return false;
    if (p.seg) {
        const int32_t *seg = p.seg + (size_t)b * p.Tk;
        if (seg[pos] < 0 || seg[j] != seg[pos]) return false;
    }
    return true;
}

/* Keys [*j_lo, *j_hi] (inclusive) that query positions [pos_first, pos_last] of head h can see. */
__device__ __forceinline__ void key_range(const attn_dev &p, int h, int pos_first, int pos_last, int *j_lo,
                                          int *j_hi) {
    *j_lo = p.group > 0 ? s2_start(p, h, pos_first) : 0;
    *j_hi = pos_last;
}

/* Queries [*i_lo, *i_hi] (indices into q, inclusive) of head h that can see some key of
 * [j_first, j_last]: causal from j_first on; with S2, up to the end of the last key's group. */
__device__ __forceinline__ void query_range(const attn_dev &p, int h, int j_first, int j_last, int *i_lo,
                                            int *i_hi) {
    int off = p.Tk - p.Tq, pos_hi = p.group > 0 ? s2_end(p, h, j_last) - 1 : p.Tk - 1;
    *i_lo = max(0, j_first - off);
    *i_hi = min(p.Tq - 1, pos_hi - off);
}

/* Row 0 of query head h of batch b in a [B, Tq, H * hd] tensor (q, out, dout; rows qstride =
 * H * hd apart). */
template <typename T>
__device__ __forceinline__ T *query_head(T *x, const attn_dev &p, int b, int h) {
    return x + (size_t)b * p.Tq * p.H * p.hd + (size_t)h * p.hd;
}

#endif
