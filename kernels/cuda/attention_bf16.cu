/* kernels/cuda/attention_bf16.cu: flash attention on tensor cores (WMMA, bf16 16x16x16 tiles with
 * fp32 accumulators), forward and backward, with the masks of kernels/attention.h. Contract in
 * kernels/attention_bf16.h; the fp32 twin is attention.cu, whose mask helpers it shares.
 *
 * Work layout. A block is 4 warps; a block tile is 64 rows (16 per warp: one WMMA row tile), and
 * the other side is walked in tiles of 64 staged in shared memory. Every matrix product is WMMA
 * (bf16 in, fp32 accumulate); the per-element work (mask, exp, the online-softmax statistics) is
 * done on the fp32 scores in shared memory by lane pairs: lanes 2r and 2r+1 own row r of their
 * warp's 16 and half of its columns each, so a row reduction is one shuffle. WMMA fragments hide
 * which element a lane holds, so running accumulators (O, dQ, dK, dV) live in shared memory as
 * fp32, loaded into fragments, updated, stored back per tile (each warp touches only its rows).
 *  - forward: block = 64 queries of one (batch, head); per key tile S = Q K^T, mask and online
 *    softmax (m, l in registers of the lane pair), P rounded to bf16, O = O * corr + P V. Writes
 *    out (bf16, O / l) and lse (fp32) only: memory linear in T.
 *  - backward dQ: block = 64 queries; per key tile S = Q K^T, dP = dO V^T, P = exp(S - lse),
 *    dS = P (dP - D) with D_i = dO_i . O_i, dQ += scale dS K.
 *  - backward dK/dV: block = 64 keys of one (batch, kv head); walks the query tiles of every query
 *    head that reads the kv head (GQA): S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += scale dS^T Q.
 *    Two kernels, so every gradient element has one owner: deterministic, no atomics.
 *  - Tile skipping: a block's key range (query range for dK/dV) is cut to what causality and the
 *    S2 groups allow (attention_mask.cuh), so tiles those masks empty are never visited; a tile
 *    every pair of which is visible (tile_full) skips the per-element mask.
 * Shared memory: about 110 KiB (forward), 144 KiB (dQ), 187 KiB (dK/dV) at head dim 128; the
 * kernels opt in above 48 KiB. Rows of bf16 tiles are padded by 8 elements and fp32 tiles by 4
 * (16 bytes: WMMA's ldm rule), which also staggers the banks. */
#include <cuda_bf16.h>
#include <mma.h>

#include "kernels/cuda/attention_mask.cuh"
#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/attention_bf16.h"
}

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

enum { FA_WARPS = 4, FA_BR = 16 * FA_WARPS, FA_BC = 64 };

/* A warp barrier with memory ordering among its lanes (the emulator's is a warp shuffle). */
#ifdef LQA_CUDA_EMU_H
#define warp_sync() (void)emu_shfl_float(0.0f, 0)
#else
#define warp_sync() __syncwarp()
#endif

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b_row;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_b_col;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

/* Leading dimensions (elements) of the shared tiles. */
__host__ __device__ __forceinline__ int ld_bf(int cols) { return cols + 8; }
__host__ __device__ __forceinline__ int ld_f(int cols) { return cols + 4; }

/* Carves shared memory: hands out 32-byte aligned regions (WMMA's pointer rule). */
struct carver {
    char *at;
    __device__ carver(void *base) : at((char *)(((uintptr_t)base + 31) & ~(uintptr_t)31)) {}
    template <typename T>
    __device__ T *take(size_t n) {
        T *p = (T *)at;
        at += (n * sizeof(T) + 31) & ~(size_t)31;
        return p;
    }
};
static size_t bf_tile_bytes(int rows, int cols) { return ((size_t)rows * ld_bf(cols) * 2 + 31) & ~(size_t)31; }
static size_t f_tile_bytes(int rows, int cols) { return ((size_t)rows * ld_f(cols) * 4 + 31) & ~(size_t)31; }

/* Rows [r0, r0 + 64) of one head of a [.., T, n_heads, hd] bf16 tensor (base offset to batch
 * and head, rows `stride` apart) into tile (ld ld_bf(hd)); rows past T become 0. Whole block. */
__device__ __forceinline__ void stage(bf16 *tile, const bf16 *base, size_t stride, int r0, int T, int hd) {
    int ld = ld_bf(hd);
    for (int e = threadIdx.x; e < 64 * hd; e += blockDim.x) {
        int r = e / hd, d = e % hd;
        tile[r * ld + d] = r0 + r < T ? base[(size_t)(r0 + r) * stride + d] : __float2bfloat16_rn(0.0f);
    }
}

/* C[16 x 64] (this warp's rows of an fp32 tile, ld ldc) = A[16 x K] B^T where B is 64 x K row-major
 * (read as col-major K x 64): A Q-like rows, B K-like rows, both bf16 with ld ld_bf(K). */
__device__ __forceinline__ void warp_abt(float *C, int ldc, const bf16 *A, const bf16 *B, int K) {
    int lda = ld_bf(K);
    for (int n = 0; n < 4; n++) {
        frag_c c;
        wmma::fill_fragment(c, 0.0f);
        for (int kk = 0; kk < K; kk += 16) {
            frag_a a;
            frag_b_col b;
            wmma::load_matrix_sync(a, A + kk, lda);
            wmma::load_matrix_sync(b, B + (size_t)n * 16 * lda + kk, lda);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(C + n * 16, c, ldc, wmma::mem_row_major);
    }
}

/* Acc[16 x N] (fp32, ld ld_f(N)) += A[16 x 64] (bf16, ld ld_bf(64)) B[64 x N] (bf16 row-major,
 * ld ld_bf(N)). */
__device__ __forceinline__ void warp_acc_ab(float *Acc, const bf16 *A, const bf16 *B, int N) {
    int ldc = ld_f(N), ldb = ld_bf(N), lda = ld_bf(64);
    for (int n = 0; n < N; n += 16) {
        frag_c c;
        wmma::load_matrix_sync(c, Acc + n, ldc, wmma::mem_row_major);
        for (int kk = 0; kk < 64; kk += 16) {
            frag_a a;
            frag_b_row b;
            wmma::load_matrix_sync(a, A + kk, lda);
            wmma::load_matrix_sync(b, B + (size_t)kk * ldb + n, ldb);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(Acc + n, c, ldc, wmma::mem_row_major);
    }
}

__device__ __forceinline__ void zero_floats(float *a, int n) {
    for (int e = threadIdx.x; e < n; e += blockDim.x) a[e] = 0.0f;
}

/* Whether every (query, key) pair of a 64 x 64 tile is visible, so the per-element mask can be
 * skipped: keys [j0, j0 + 64) all inside Tk and at or before the first query position, all in
 * the S2 group of the last query position, and no segment ids. Block-uniform. (Query rows past
 * Tq are still masked by the caller.) */
__device__ __forceinline__ bool tile_full(const attn_dev &p, int h, int pos_first, int pos_last, int j0) {
    if (p.seg || j0 + 63 >= p.Tk || j0 + 63 > pos_first) return false;
    return p.group == 0 || s2_index(p, h, j0) == s2_index(p, h, pos_last);
}

/* ---- forward ---- */

__global__ void attn_bf16_forward_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                                         attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, ldh = ld_bf(hd), ldp = ld_bf(FA_BC), lds = ld_f(FA_BC), ldo = ld_f(hd);
    carver cv(smem);
    bf16 *Qs = cv.take<bf16>((size_t)FA_BR * ldh), *Ks = cv.take<bf16>((size_t)FA_BC * ldh);
    bf16 *Vs = cv.take<bf16>((size_t)FA_BC * ldh), *Ps = cv.take<bf16>((size_t)FA_BR * ldp);
    float *Ss = cv.take<float>((size_t)FA_BR * lds), *Os = cv.take<float>((size_t)FA_BR * ldo);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, half = lane & 1, row = 16 * warp + lane / 2;
    int b = blockIdx.y / p.H, h = blockIdx.y % p.H, kvh = h / (p.H / p.KV);
    int i0 = blockIdx.x * FA_BR, i = i0 + row;
    bool row_ok = i < p.Tq;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    const bf16 *kb = k + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    const bf16 *vb = v + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    stage(Qs, query_head(q, p, b, h), qstride, i0, p.Tq, hd);
    for (int e = threadIdx.x; e < FA_BR * ldo; e += blockDim.x) Os[e] = 0.0f;
    int off = p.Tk - p.Tq, last_i = min(i0 + FA_BR, p.Tq) - 1, j_lo, j_hi;
    key_range(p, h, off + i0, off + last_i, &j_lo, &j_hi);

    float m = -INFINITY, l = 0.0f; /* this row's running max and sum (both lanes of the pair) */
    float *srow = Ss + row * lds + half * 32, *orow = Os + row * ldo;
    bf16 *prow = Ps + row * ldp + half * 32;
    for (int j0 = (j_lo / FA_BC) * FA_BC; j0 <= j_hi; j0 += FA_BC) {
        __syncthreads(); /* the previous tiles are no longer read (and Qs, Os are written) */
        stage(Ks, kb, kstride, j0, p.Tk, hd);
        stage(Vs, vb, kstride, j0, p.Tk, hd);
        __syncthreads();
        warp_abt(Ss + 16 * warp * lds, lds, Qs + 16 * warp * ldh, Ks, hd);
        warp_sync();
        bool full = tile_full(p, h, off + i0, off + last_i, j0);
        float tmax = -INFINITY;
        for (int c = 0; c < 32; c++) {
            int j = j0 + half * 32 + c;
            float s = row_ok && (full || (j < p.Tk && visible(p, b, h, i, j))) ? p.scale * srow[c] : -INFINITY;
            srow[c] = s;
            tmax = fmaxf(tmax, s);
        }
        float new_m = fmaxf(m, fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1)));
        float corr = new_m == -INFINITY ? 1.0f : expf(m - new_m); /* 0 while m is -inf */
        float psum = 0.0f;
        for (int c = 0; c < 32; c++) {
            float pc = srow[c] == -INFINITY ? 0.0f : expf(srow[c] - new_m);
            prow[c] = __float2bfloat16_rn(pc);
            psum += pc;
        }
        l = l * corr + psum + __shfl_xor_sync(0xffffffffu, psum, 1);
        m = new_m;
        for (int d = half * (hd / 2); d < (half + 1) * (hd / 2); d++) orow[d] *= corr;
        warp_sync();
        warp_acc_ab(Os + 16 * warp * ldo, Ps + 16 * warp * ldp, Vs, hd);
    }
    __syncthreads(); /* the epilogue reads rows other lanes stored (or zeroed) */
    if (!row_ok) return;
    bf16 *o = out + ((size_t)b * p.Tq + i) * qstride + (size_t)h * hd;
    float inv = l > 0.0f ? 1.0f / l : 0.0f; /* l == 0: padding query or nothing visible: out 0 */
    for (int d = half * (hd / 2); d < (half + 1) * (hd / 2); d++) o[d] = __float2bfloat16_rn(orow[d] * inv);
    if (half == 0) lse[((size_t)b * p.H + h) * p.Tq + i] = l > 0.0f ? m + logf(l) : INFINITY;
}

/* D_i = dO_i . O_i in fp32 over half the head dim; the pair's two halves summed by the caller. */
__device__ __forceinline__ float half_dot(const bf16 *a, const bf16 *b, int hd, int half) {
    float s = 0.0f;
    for (int d = half * (hd / 2); d < (half + 1) * (hd / 2); d++) s += __bfloat162float(a[d]) * __bfloat162float(b[d]);
    return s;
}

/* ---- backward: dQ ---- */

__global__ void attn_bf16_dq_kernel(float *dq, const bf16 *dout, const bf16 *out, const float *lse, const bf16 *q,
                                    const bf16 *k, const bf16 *v, attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, ldh = ld_bf(hd), ldp = ld_bf(FA_BC), lds = ld_f(FA_BC), ldo = ld_f(hd);
    carver cv(smem);
    bf16 *Qs = cv.take<bf16>((size_t)FA_BR * ldh), *dOs = cv.take<bf16>((size_t)FA_BR * ldh);
    bf16 *Ks = cv.take<bf16>((size_t)FA_BC * ldh), *Vs = cv.take<bf16>((size_t)FA_BC * ldh);
    bf16 *dSs = cv.take<bf16>((size_t)FA_BR * ldp);
    float *Ss = cv.take<float>((size_t)FA_BR * lds), *dPs = cv.take<float>((size_t)FA_BR * lds);
    float *dQs = cv.take<float>((size_t)FA_BR * ldo);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, half = lane & 1, row = 16 * warp + lane / 2;
    int b = blockIdx.y / p.H, h = blockIdx.y % p.H, kvh = h / (p.H / p.KV);
    int i0 = blockIdx.x * FA_BR, i = i0 + row;
    bool row_ok = i < p.Tq;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    size_t qoff = ((size_t)b * p.Tq + i) * qstride + (size_t)h * hd;
    const bf16 *kb = k + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    const bf16 *vb = v + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    stage(Qs, query_head(q, p, b, h), qstride, i0, p.Tq, hd);
    stage(dOs, query_head(dout, p, b, h), qstride, i0, p.Tq, hd);
    for (int e = threadIdx.x; e < FA_BR * ldo; e += blockDim.x) dQs[e] = 0.0f;
    float Di = row_ok ? half_dot(dout + qoff, out + qoff, hd, half) : 0.0f;
    Di += __shfl_xor_sync(0xffffffffu, Di, 1);
    float lse_i = row_ok ? lse[((size_t)b * p.H + h) * p.Tq + i] : INFINITY;
    int off = p.Tk - p.Tq, last_i = min(i0 + FA_BR, p.Tq) - 1, j_lo, j_hi;
    key_range(p, h, off + i0, off + last_i, &j_lo, &j_hi);

    float *srow = Ss + row * lds + half * 32, *dprow = dPs + row * lds + half * 32;
    bf16 *dsrow = dSs + row * ldp + half * 32;
    for (int j0 = (j_lo / FA_BC) * FA_BC; j0 <= j_hi; j0 += FA_BC) {
        __syncthreads();
        stage(Ks, kb, kstride, j0, p.Tk, hd);
        stage(Vs, vb, kstride, j0, p.Tk, hd);
        __syncthreads();
        warp_abt(Ss + 16 * warp * lds, lds, Qs + 16 * warp * ldh, Ks, hd);
        warp_abt(dPs + 16 * warp * lds, lds, dOs + 16 * warp * ldh, Vs, hd);
        warp_sync();
        bool full = tile_full(p, h, off + i0, off + last_i, j0);
        for (int c = 0; c < 32; c++) {
            int j = j0 + half * 32 + c;
            float ds = 0.0f;
            if (row_ok && (full || (j < p.Tk && visible(p, b, h, i, j)))) {
                float P = expf(p.scale * srow[c] - lse_i); /* 0 for a padding query (lse = +inf) */
                ds = P * (dprow[c] - Di);
            }
            dsrow[c] = __float2bfloat16_rn(p.scale * ds);
        }
        warp_sync();
        warp_acc_ab(dQs + 16 * warp * ldo, dSs + 16 * warp * ldp, Ks, hd);
    }
    __syncthreads(); /* the epilogue reads rows other lanes stored (or zeroed) */
    if (!row_ok) return;
    const float *dqrow = dQs + row * ldo;
    for (int d = half * (hd / 2); d < (half + 1) * (hd / 2); d++) dq[qoff + d] += dqrow[d];
}

/* ---- backward: dK, dV ---- */

__global__ void attn_bf16_dkv_kernel(float *dk, float *dv, const bf16 *dout, const bf16 *out, const float *lse,
                                     const bf16 *q, const bf16 *k, const bf16 *v, attn_dev p) {
    extern __shared__ float smem[];
    int hd = p.hd, ldh = ld_bf(hd), ldp = ld_bf(FA_BR), lds = ld_f(FA_BR), ldo = ld_f(hd);
    carver cv(smem);
    bf16 *Ks = cv.take<bf16>((size_t)FA_BC * ldh), *Vs = cv.take<bf16>((size_t)FA_BC * ldh);
    bf16 *Qs = cv.take<bf16>((size_t)FA_BR * ldh), *dOs = cv.take<bf16>((size_t)FA_BR * ldh);
    bf16 *Pt = cv.take<bf16>((size_t)FA_BC * ldp), *dSt = cv.take<bf16>((size_t)FA_BC * ldp);
    float *St = cv.take<float>((size_t)FA_BC * lds), *dPt = cv.take<float>((size_t)FA_BC * lds);
    float *dKs = cv.take<float>((size_t)FA_BC * ldo), *dVs = cv.take<float>((size_t)FA_BC * ldo);
    float *lse_s = cv.take<float>(FA_BR), *D_s = cv.take<float>(FA_BR);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, half = lane & 1, row = 16 * warp + lane / 2;
    int b = blockIdx.y / p.KV, kvh = blockIdx.y % p.KV, R = p.H / p.KV;
    int j_first = blockIdx.x * FA_BC, j = j_first + row, j_last = min(j_first + FA_BC, p.Tk) - 1;
    bool key_ok = j < p.Tk;
    size_t qstride = (size_t)p.H * hd, kstride = (size_t)p.KV * hd;
    const bf16 *kb = k + (size_t)b * p.Tk * kstride + (size_t)kvh * hd;
    stage(Ks, kb, kstride, j_first, p.Tk, hd);
    stage(Vs, v + (size_t)b * p.Tk * kstride + (size_t)kvh * hd, kstride, j_first, p.Tk, hd);
    for (int e = threadIdx.x; e < FA_BC * ldo; e += blockDim.x) dKs[e] = dVs[e] = 0.0f;
    int off = p.Tk - p.Tq;

    float *strow = St + row * lds + half * 32, *dptrow = dPt + row * lds + half * 32;
    bf16 *ptrow = Pt + row * ldp + half * 32, *dstrow = dSt + row * ldp + half * 32;
    for (int h = kvh * R; h < (kvh + 1) * R; h++) {
        int i_lo, i_hi;
        query_range(p, h, j_first, j_last, &i_lo, &i_hi);
        const bf16 *qh = query_head(q, p, b, h);
        const bf16 *doh = query_head(dout, p, b, h);
        const bf16 *oh = query_head(out, p, b, h);
        const float *lseh = lse + ((size_t)b * p.H + h) * p.Tq;
        for (int i0 = (i_lo / FA_BR) * FA_BR; i0 <= i_hi; i0 += FA_BR) {
            __syncthreads(); /* the previous query tile is no longer read (and Ks, Vs, dKs, dVs are written) */
            stage(Qs, qh, qstride, i0, p.Tq, hd);
            stage(dOs, doh, qstride, i0, p.Tq, hd);
            if (threadIdx.x < FA_BR) { /* lse and D_i of the tile's queries */
                int ir = i0 + threadIdx.x;
                float s = 0.0f;
                if (ir < p.Tq) s = half_dot(doh + (size_t)ir * qstride, oh + (size_t)ir * qstride, hd, 0) +
                                   half_dot(doh + (size_t)ir * qstride, oh + (size_t)ir * qstride, hd, 1);
                D_s[threadIdx.x] = s;
                lse_s[threadIdx.x] = ir < p.Tq ? lseh[ir] : INFINITY;
            }
            __syncthreads();
            warp_abt(St + 16 * warp * lds, lds, Ks + 16 * warp * ldh, Qs, hd);
            warp_abt(dPt + 16 * warp * lds, lds, Vs + 16 * warp * ldh, dOs, hd);
            warp_sync();
            bool full = tile_full(p, h, off + i0, off + min(i0 + FA_BR, p.Tq) - 1, j_first);
            for (int c = 0; c < 32; c++) {
                int ic = half * 32 + c, i = i0 + ic;
                float P = 0.0f, ds = 0.0f;
                if (key_ok && i < p.Tq && (full || visible(p, b, h, i, j))) {
                    P = expf(p.scale * strow[c] - lse_s[ic]);
                    ds = P * (dptrow[c] - D_s[ic]);
                }
                ptrow[c] = __float2bfloat16_rn(P);
                dstrow[c] = __float2bfloat16_rn(p.scale * ds);
            }
            warp_sync();
            warp_acc_ab(dVs + 16 * warp * ldo, Pt + 16 * warp * ldp, dOs, hd);
            warp_acc_ab(dKs + 16 * warp * ldo, dSt + 16 * warp * ldp, Qs, hd);
        }
    }
    __syncthreads(); /* the epilogue reads rows other lanes stored (or zeroed) */
    if (!key_ok) return;
    size_t koff = ((size_t)b * p.Tk + j) * kstride + (size_t)kvh * hd;
    const float *dkrow = dKs + row * ldo, *dvrow = dVs + row * ldo;
    for (int d = half * (hd / 2); d < (half + 1) * (hd / 2); d++) {
        dk[koff + d] += dkrow[d];
        dv[koff + d] += dvrow[d];
    }
}

/* ---- host side ---- */

static attn_dev to_dev(const attn_params *p) {
    char msg[256];
    if (attention_bf16_check(p, msg, sizeof msg) != 0) lqa_fatal("attention (cuda bf16): %s", msg);
    attn_dev d = {p->B, p->Tq, p->Tk, p->H, p->KV, p->hd, p->group, p->segment_ids, 1.0f / sqrtf((float)p->hd)};
    return d;
}

/* Dynamic shared memory above the default 48 KiB needs an opt-in per kernel. */
template <typename K>
static void allow_shared(K kernel, size_t bytes) {
    if (bytes > 48 * 1024) cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

extern "C" void attention_forward_bf16_cuda(lqa_bf16 *out, float *lse, const lqa_bf16 *q, const lqa_bf16 *k,
                                            const lqa_bf16 *v, const attn_params *p) {
    attn_dev d = to_dev(p);
    size_t smem = 32 + 3 * bf_tile_bytes(64, d.hd) + bf_tile_bytes(FA_BR, FA_BC) + f_tile_bytes(FA_BR, FA_BC) +
                  f_tile_bytes(FA_BR, d.hd);
    allow_shared(attn_bf16_forward_kernel, smem);
    dim3 grid((d.Tq + FA_BR - 1) / FA_BR, d.B * d.H);
    attn_bf16_forward_kernel<<<grid, FA_WARPS * 32, smem>>>((bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k,
                                                            (const bf16 *)v, d);
    cudaCheckLaunch();
}

extern "C" void attention_backward_bf16_cuda(float *dq, float *dk, float *dv, const lqa_bf16 *dout,
                                             const lqa_bf16 *out, const float *lse, const lqa_bf16 *q,
                                             const lqa_bf16 *k, const lqa_bf16 *v, const attn_params *p) {
    attn_dev d = to_dev(p);
    const bf16 *dO = (const bf16 *)dout, *O = (const bf16 *)out, *Q = (const bf16 *)q, *K = (const bf16 *)k,
               *V = (const bf16 *)v;
    size_t smem_q = 32 + 4 * bf_tile_bytes(64, d.hd) + bf_tile_bytes(FA_BR, FA_BC) + 2 * f_tile_bytes(FA_BR, FA_BC) +
                    f_tile_bytes(FA_BR, d.hd);
    allow_shared(attn_bf16_dq_kernel, smem_q);
    dim3 grid_q((d.Tq + FA_BR - 1) / FA_BR, d.B * d.H);
    attn_bf16_dq_kernel<<<grid_q, FA_WARPS * 32, smem_q>>>(dq, dO, O, lse, Q, K, V, d);
    cudaCheckLaunch();
    size_t smem_kv = 32 + 4 * bf_tile_bytes(64, d.hd) + 2 * bf_tile_bytes(FA_BC, FA_BR) +
                     2 * f_tile_bytes(FA_BC, FA_BR) + 2 * f_tile_bytes(FA_BC, d.hd) + 2 * 256;
    allow_shared(attn_bf16_dkv_kernel, smem_kv);
    dim3 grid_kv((d.Tk + FA_BC - 1) / FA_BC, d.B * d.KV);
    attn_bf16_dkv_kernel<<<grid_kv, FA_WARPS * 32, smem_kv>>>(dk, dv, dO, O, lse, Q, K, V, d);
    cudaCheckLaunch();
}
