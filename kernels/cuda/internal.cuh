/* kernels/cuda/internal.cuh: what the .cu files of kernels/cuda share and no C file sees: the
 * op contract headers kernels/<op>.h with C linkage (they have no extern "C" guards of their own), the
 * cuBLAS handle, a row-major GEMM in cblas_sgemm's terms, block reductions and launch sizes. */
#ifndef LQA_KERNELS_CUDA_INTERNAL_CUH
#define LQA_KERNELS_CUDA_INTERNAL_CUH

/* The _cuda declarations in kernels/<op>.h sit under LQA_CUDA, which the Makefile passes to the
 * C compiler only; nvcc sees them through this define. */
#ifndef LQA_CUDA
#define LQA_CUDA 1
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device.h"

extern "C" {
#include "kernels/attention.h"
#include "kernels/common.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
}

/* The process-wide cuBLAS handle (created on first use, default stream, default math mode:
 * true FP32, no TF32, so results track the CPU reference). */
cublasHandle_t lqa_cublas_handle(void);

/* C[M,N] = alpha op(A) op(B) + beta C with row-major matrices and leading dimensions, exactly
 * as cblas_sgemm(CblasRowMajor, ...): trans_a / trans_b nonzero means transposed. Implemented
 * by asking column-major cuBLAS for C^T = op(B)^T op(A)^T (same memory, operands swapped). */
void lqa_gemm_rm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

/* Allocates sumsq_add_cuda's block partials (the backend calls it when it opens). */
void lqa_cuda_sumsq_prepare(void);

/* Grid size for n independent items at `threads` per block. */
static inline unsigned lqa_blocks_for(size_t n, int threads) {
    return (unsigned)((n + (size_t)threads - 1) / (size_t)threads);
}

/* ---- reductions (blockDim.x a multiple of 32, at most 1024) ---- */

/* The two reductions' operators. */
struct lqa_op_sum {
    __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct lqa_op_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <class Op> __device__ __forceinline__ float lqa_warp_reduce(float v, Op op) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* op over the block (identity: op's neutral value, for the lanes past the last warp), returned
 * to every thread. Uses 33 floats of shared memory per Op; safe to call repeatedly (it
 * synchronises before reusing its buffer). */
template <class Op> __device__ __forceinline__ float lqa_block_reduce(float v, float identity, Op op) {
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = lqa_warp_reduce(v, op);
    __syncthreads(); /* a previous call may still be reading part/total */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float s = lane < nwarps ? part[lane] : identity;
        s = lqa_warp_reduce(s, op);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

__device__ __forceinline__ float lqa_warp_sum(float v) { return lqa_warp_reduce(v, lqa_op_sum()); }
__device__ __forceinline__ float lqa_warp_max(float v) { return lqa_warp_reduce(v, lqa_op_max()); }
__device__ __forceinline__ float lqa_block_sum(float v) { return lqa_block_reduce(v, 0.0f, lqa_op_sum()); }
__device__ __forceinline__ float lqa_block_max(float v) { return lqa_block_reduce(v, -INFINITY, lqa_op_max()); }

/* dx[idx[i]] += dxg[i] for the c rows of a chunk (the chunked cross-entropy's dx, fp32 and
 * bf16 paths alike); the rows idx[0..c) are distinct, so no two threads add into one element. */
[[maybe_unused]] static __global__ void lqa_rows_scatter_add_kernel(float *dx, const float *dxg, const int32_t *idx, int c, int D) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)c * D) return;
    size_t i = e / D, j = e % D;
    dx[(size_t)idx[i] * D + j] += dxg[e];
}

#endif
