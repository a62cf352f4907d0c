/* kernels/cuda/attention.cu: tiled causal attention with an online softmax (FlashAttention-2's
 * algorithm) on the GPU, forward and backward, with the masks of kernels/attention.h: causal,
 * segment ids, S2-Attn shifted groups, GQA, Tq < Tk for KV-cache queries. The twins of
 * attention.c. Correctness first: simple fp32 kernels, no tensor cores.
 *
 * Arguments are device pointers, including p->segment_ids (a device array [B, Tk] or NULL);
 * the struct p itself is read on the host. p->tile_q / p->tile_k are CPU tile sizes and are
 * ignored here; scratch is not used (may be NULL). Head dims up to 256.
 *
 * Work layout (one warp per row, lanes split the head dim for the accumulators):
 *  - forward:  block = 8 query rows of one (batch, head), one warp each; key/value tiles of 32
 *    rows are staged in shared memory; lane c scores key c of the tile, then every lane updates
 *    its slice of the output accumulator with the 32 probabilities (shuffled from their lanes).
 *    Only out and the row log-sum-exp are stored.
 *  - backward, two kernels so that every gradient element has one owner (deterministic, no
 *    atomics): dQ with the forward's layout (a warp owns a query row and walks the key tiles);
 *    dK/dV with a warp per key row, walking 32-row query tiles of each query head that reads its
 *    kv head (GQA), lane r scoring query r. P is recomputed from lse; D_i = dO_i . O_i.
 *  - The key (query) range of a block is cut to what causality and the S2 groups allow, so the
 *    tiles the mask empties are never visited; rows hidden by segment ids skip their arithmetic.
 */
#include <stdio.h>

#include "kernels/cuda/attention_mask.cuh"
#include "kernels/cuda/internal.cuh"

enum { AT_WARPS = 8, AT_BK = 32, AT_MAXD = 8, AT_MAX_HD = 32 * AT_MAXD };

/* Stages rows [j0, j0 + AT_BK) of a [.., T, n_heads, hd] tensor's head (base already offset to
 * batch and head) into tile with row stride ld; rows past T become 0. Whole block. */
__device__ __forceinline__ void stage_rows(float *tile, int ld, const float *base, size_t stride, int j0, int T,
                                           int hd) {
    for (int e = threadIdx.x; e < AT_BK * hd; e += blockDim.x) {
        int c = e / hd, d = e % hd, j = j0 + c;
        tile[c * ld + d] = j < T ? base[(size_t)j * stride + d] : 0.0f;
    }
}

__device__ __forceinline__ float dot_shared(const float *a, const float *b, int hd) {
    float s = 0.0f;
    for (int d = 0; d < hd; d++) s += a[d] * b[d];
    return s;
}

/* ---- forward ---- */

__global__ void attn_forward_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
                                    attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, hdp = hd + 1; /* K rows padded: lanes read different rows at the same d */
    float *qs = smem, *Ks = qs + AT_WARPS * hd, *Vs = Ks + AT_BK * hdp;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.y / p.H, h = blockIdx.y % p.H, kvh = h / (p.H / p.KV);
    int i0 = blockIdx.x * AT_WARPS, i = i0 + warp;
    bool row_ok = i < p.Tq;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    float *qrow = qs + warp * hd;
    for (int d = lane; d < hd; d += 32) qrow[d] = row_ok ? q[((size_t)b * p.Tq + i) * qstride + (size_t)h * hd + d] : 0.0f;
    const float *kb = k + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    const float *vb = v + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    int off = p.Tk - p.Tq, last_i = min(i0 + AT_WARPS, p.Tq) - 1, j_lo, j_hi;
    key_range(p, h, off + i0, off + last_i, &j_lo, &j_hi);

    float m = -INFINITY, l = 0.0f, acc[AT_MAXD];
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) acc[mm] = 0.0f;
    for (int j0 = (j_lo / AT_BK) * AT_BK; j0 <= j_hi; j0 += AT_BK) {
        __syncthreads(); /* the previous tile is no longer read (and qs is written) */
        stage_rows(Ks, hdp, kb, kstride, j0, p.Tk, hd);
        stage_rows(Vs, hd, vb, kstride, j0, p.Tk, hd);
        __syncthreads();
        int j = j0 + lane;
        float s = -INFINITY;
        if (row_ok && j < p.Tk && visible(p, b, h, i, j)) s = p.scale * dot_shared(qrow, Ks + lane * hdp, hd);
        float new_m = fmaxf(m, lqa_warp_max(s));
        if (new_m == -INFINITY) continue; /* nothing visible yet in this row (warp-uniform) */
        float pj = s == -INFINITY ? 0.0f : expf(s - new_m);
        float corr = expf(m - new_m); /* 0 while m is still -inf */
        l = l * corr + lqa_warp_sum(pj);
#pragma unroll
        for (int mm = 0; mm < AT_MAXD; mm++) acc[mm] *= corr;
        for (int c = 0; c < AT_BK; c++) {
            float pc = __shfl_sync(0xffffffffu, pj, c);
            if (pc == 0.0f) continue;
#pragma unroll
            for (int mm = 0; mm < AT_MAXD; mm++) {
                int d = lane + 32 * mm;
                if (d < hd) acc[mm] += pc * Vs[c * hd + d];
            }
        }
        m = new_m;
    }
    if (!row_ok) return;
    float *orow = out + ((size_t)b * p.Tq + i) * qstride + (size_t)h * hd;
    float *lrow = lse + ((size_t)b * p.H + h) * p.Tq + i;
    if (l == 0.0f) { /* padding query or nothing visible: no output, P = 0 in backward */
        for (int d = lane; d < hd; d += 32) orow[d] = 0.0f;
        if (lane == 0) *lrow = INFINITY;
        return;
    }
    float inv = 1.0f / l;
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) {
        int d = lane + 32 * mm;
        if (d < hd) orow[d] = acc[mm] * inv;
    }
    if (lane == 0) *lrow = m + logf(l);
}

/* ---- backward: dQ ---- */

__global__ void attn_backward_dq_kernel(float *dq, const float *dout, const float *out, const float *lse,
                                        const float *q, const float *k, const float *v, attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, hdp = hd + 1;
    float *qs = smem, *dos = qs + AT_WARPS * hd, *Ks = dos + AT_WARPS * hd, *Vs = Ks + AT_BK * hdp;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.y / p.H, h = blockIdx.y % p.H, kvh = h / (p.H / p.KV);
    int i0 = blockIdx.x * AT_WARPS, i = i0 + warp;
    bool row_ok = i < p.Tq;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    size_t qoff = ((size_t)b * p.Tq + i) * qstride + (size_t)h * hd;
    float *qrow = qs + warp * hd, *dorow = dos + warp * hd;
    float dsum = 0.0f; /* D_i = dO_i . O_i */
    for (int d = lane; d < hd; d += 32) {
        qrow[d] = row_ok ? q[qoff + d] : 0.0f;
        dorow[d] = row_ok ? dout[qoff + d] : 0.0f;
        if (row_ok) dsum += dout[qoff + d] * out[qoff + d];
    }
    float Di = lqa_warp_sum(dsum);
    float lse_i = row_ok ? lse[((size_t)b * p.H + h) * p.Tq + i] : INFINITY;
    const float *kb = k + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    const float *vb = v + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    int off = p.Tk - p.Tq, last_i = min(i0 + AT_WARPS, p.Tq) - 1, j_lo, j_hi;
    key_range(p, h, off + i0, off + last_i, &j_lo, &j_hi);

    float acc[AT_MAXD];
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) acc[mm] = 0.0f;
    for (int j0 = (j_lo / AT_BK) * AT_BK; j0 <= j_hi; j0 += AT_BK) {
        __syncthreads();
        stage_rows(Ks, hdp, kb, kstride, j0, p.Tk, hd);
        stage_rows(Vs, hdp, vb, kstride, j0, p.Tk, hd);
        __syncthreads();
        int j = j0 + lane;
        float ds = 0.0f;
        if (row_ok && j < p.Tk && visible(p, b, h, i, j)) {
            float P = expf(p.scale * dot_shared(qrow, Ks + lane * hdp, hd) - lse_i);
            if (P != 0.0f) ds = P * (dot_shared(dorow, Vs + lane * hdp, hd) - Di);
        }
        for (int c = 0; c < AT_BK; c++) {
            float dsc = __shfl_sync(0xffffffffu, ds, c);
            if (dsc == 0.0f) continue;
            float w = p.scale * dsc;
#pragma unroll
            for (int mm = 0; mm < AT_MAXD; mm++) {
                int d = lane + 32 * mm;
                if (d < hd) acc[mm] += w * Ks[c * hdp + d];
            }
        }
    }
    if (!row_ok) return;
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) {
        int d = lane + 32 * mm;
        if (d < hd) dq[qoff + d] += acc[mm];
    }
}

/* ---- backward: dK, dV ---- */

__global__ void attn_backward_dkv_kernel(float *dk, float *dv, const float *dout, const float *out,
                                         const float *lse, const float *q, const float *k, const float *v,
                                         attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, hdp = hd + 1;
    float *Qs = smem, *dOs = Qs + 32 * hdp, *lse_s = dOs + 32 * hdp, *D_s = lse_s + 32;
    float *ks = D_s + 32, *vs = ks + AT_WARPS * hd;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.y / p.KV, kvh = blockIdx.y % p.KV, R = p.H / p.KV;
    int j_first = blockIdx.x * AT_WARPS, j = j_first + warp, j_last = min(j_first + AT_WARPS, p.Tk) - 1;
    bool key_ok = j < p.Tk;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    size_t koff = ((size_t)b * p.Tk + j) * kstride + (size_t)kvh * hd;
    float *krow = ks + warp * hd, *vrow = vs + warp * hd;
    for (int d = lane; d < hd; d += 32) {
        krow[d] = key_ok ? k[koff + d] : 0.0f;
        vrow[d] = key_ok ? v[koff + d] : 0.0f;
    }
    float dk_acc[AT_MAXD], dv_acc[AT_MAXD];
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) dk_acc[mm] = dv_acc[mm] = 0.0f;

    for (int h = kvh * R; h < (kvh + 1) * R; h++) {
        int i_lo, i_hi;
        query_range(p, h, j_first, j_last, &i_lo, &i_hi);
        const float *qh = query_head(q, p, b, h);
        const float *doh = query_head(dout, p, b, h);
        const float *oh = query_head(out, p, b, h);
        const float *lseh = lse + ((size_t)b * p.H + h) * p.Tq;
        for (int i0 = (i_lo / 32) * 32; i0 <= i_hi; i0 += 32) {
            __syncthreads(); /* the previous query tile is no longer read (and ks/vs are written) */
            stage_rows(Qs, hdp, qh, qstride, i0, p.Tq, hd);
            stage_rows(dOs, hdp, doh, qstride, i0, p.Tq, hd);
            for (int r = warp; r < 32; r += AT_WARPS) { /* lse and D_i = dO_i . O_i of the tile's rows */
                int ir = i0 + r;
                float s = 0.0f;
                if (ir < p.Tq)
                    for (int d = lane; d < hd; d += 32) s += doh[(size_t)ir * qstride + d] * oh[(size_t)ir * qstride + d];
                s = lqa_warp_sum(s);
                if (lane == 0) {
                    D_s[r] = s;
                    lse_s[r] = ir < p.Tq ? lseh[ir] : INFINITY;
                }
            }
            __syncthreads();
            int i = i0 + lane;
            float P = 0.0f, ds = 0.0f;
            if (key_ok && i < p.Tq && visible(p, b, h, i, j)) {
                P = expf(p.scale * dot_shared(Qs + lane * hdp, krow, hd) - lse_s[lane]);
                if (P != 0.0f) ds = P * (dot_shared(dOs + lane * hdp, vrow, hd) - D_s[lane]);
            }
            for (int r = 0; r < 32; r++) {
                float pr = __shfl_sync(0xffffffffu, P, r), dsr = __shfl_sync(0xffffffffu, ds, r);
                if (pr == 0.0f && dsr == 0.0f) continue;
                float w = p.scale * dsr;
#pragma unroll
                for (int mm = 0; mm < AT_MAXD; mm++) {
                    int d = lane + 32 * mm;
                    if (d < hd) {
                        dv_acc[mm] += pr * dOs[r * hdp + d];
                        dk_acc[mm] += w * Qs[r * hdp + d];
                    }
                }
            }
        }
    }
    if (!key_ok) return;
#pragma unroll
    for (int mm = 0; mm < AT_MAXD; mm++) {
        int d = lane + 32 * mm;
        if (d < hd) {
            dk[koff + d] += dk_acc[mm];
            dv[koff + d] += dv_acc[mm];
        }
    }
}

/* ---- host side ---- */

static attn_dev to_dev(const attn_params *p) {
    char msg[256];
    if (attention_check(p, msg, sizeof msg) != 0) lqa_fatal("attention (cuda): %s", msg);
    if (p->hd > AT_MAX_HD) lqa_fatal("attention (cuda): head dim %d exceeds the %d this kernel supports", p->hd, AT_MAX_HD);
    attn_dev d = {p->B, p->Tq, p->Tk, p->H, p->KV, p->hd, p->group, p->segment_ids, 1.0f / sqrtf((float)p->hd)};
    return d;
}

/* Dynamic shared memory above the default 48 KiB needs an opt-in per kernel (hd > ~160). */
template <typename K>
static void allow_shared(K kernel, size_t bytes) {
    if (bytes > 48 * 1024) cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

extern "C" void attention_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                       const attn_params *p, float *scratch) {
    (void)scratch;
    attn_dev d = to_dev(p);
    size_t smem = sizeof(float) * ((size_t)AT_WARPS * d.hd + (size_t)AT_BK * (d.hd + 1) + (size_t)AT_BK * d.hd);
    allow_shared(attn_forward_kernel, smem);
    dim3 grid((d.Tq + AT_WARPS - 1) / AT_WARPS, d.B * d.H);
    attn_forward_kernel<<<grid, AT_WARPS * 32, smem>>>(out, lse, q, k, v, d);
    cudaCheckLaunch();
}

extern "C" void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                        const float *lse, const float *q, const float *k, const float *v,
                                        const attn_params *p, float *scratch) {
    (void)scratch;
    attn_dev d = to_dev(p);
    size_t smem_q = sizeof(float) * (2 * (size_t)AT_WARPS * d.hd + 2 * (size_t)AT_BK * (d.hd + 1));
    allow_shared(attn_backward_dq_kernel, smem_q);
    dim3 grid_q((d.Tq + AT_WARPS - 1) / AT_WARPS, d.B * d.H);
    attn_backward_dq_kernel<<<grid_q, AT_WARPS * 32, smem_q>>>(dq, dout, out, lse, q, k, v, d);
    cudaCheckLaunch();
    size_t smem_kv = sizeof(float) * (2 * 32 * (size_t)(d.hd + 1) + 64 + 2 * (size_t)AT_WARPS * d.hd);
    allow_shared(attn_backward_dkv_kernel, smem_kv);
    dim3 grid_kv((d.Tk + AT_WARPS - 1) / AT_WARPS, d.B * d.KV);
    attn_backward_dkv_kernel<<<grid_kv, AT_WARPS * 32, smem_kv>>>(dk, dv, dout, out, lse, q, k, v, d);
    cudaCheckLaunch();
}
