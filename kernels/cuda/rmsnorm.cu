/* kernels/cuda/rmsnorm.cu: RMSNorm forward/backward (HF LLaMA: w * x / sqrt(mean(x^2) + eps)),
 * the twins of rmsnorm.c. Rows are independent: one block per row with block reductions. The
 * weight gradient is one thread per column summing the rows in order, so it is deterministic
 * (no atomics) and needs no scratch. */
#include "kernels/cuda/internal.cuh"

enum { RMS_THREADS = 256 };

__global__ void rmsnorm_forward_kernel(float *y, float *rstd, const float *x, const float *w, int D, float eps) {
    size_t n = blockIdx.x;
    const float *xr = x + n * D;
    float *yr = y + n * D;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    ss = lqa_block_sum(ss);
    float r = 1.0f / sqrtf(ss / D + eps);
    if (threadIdx.x == 0) rstd[n] = r;
    for (int i = threadIdx.x; i < D; i += blockDim.x) yr[i] = w[i] * (xr[i] * r);
}

/* dx_j += r w_j dy_j - r^3 x_j / D * sum_i(dy_i w_i x_i) */
__global__ void rmsnorm_backward_dx_kernel(float *dx, const float *dy, const float *x, const float *w,
                                           const float *rstd, int D) {
    size_t n = blockIdx.x;
    const float *xr = x + n * D, *dyr = dy + n * D;
    float *dxr = dx + n * D;
    float r = rstd[n], dot = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) dot += dyr[i] * w[i] * xr[i];
    dot = lqa_block_sum(dot);
    float c = r * r * r * dot / D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) dxr[i] += r * w[i] * dyr[i] - c * xr[i];
}

/* dw_i += sum_n dy[n,i] x[n,i] r[n], rows in order (coalesced across the threads of a block). */
__global__ void rmsnorm_backward_dw_kernel(float *dw, const float *dy, const float *x, const float *rstd, int N,
                                           int D) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= D) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dy[(size_t)n * D + i] * x[(size_t)n * D + i] * rstd[n];
    dw[i] += acc;
}

extern "C" void rmsnorm_forward_cuda(float *y, float *rstd, const float *x, const float *w, int N, int D,
                                     float eps) {
    if (N <= 0) return;
    rmsnorm_forward_kernel<<<N, RMS_THREADS>>>(y, rstd, x, w, D, eps);
    cudaCheckLaunch();
}

extern "C" void rmsnorm_backward_cuda(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                      const float *rstd, int N, int D) {
    if (N <= 0) return;
    rmsnorm_backward_dx_kernel<<<N, RMS_THREADS>>>(dx, dy, x, w, rstd, D);
    cudaCheckLaunch();
    if (!dw) return;
    rmsnorm_backward_dw_kernel<<<lqa_blocks_for((size_t)D, RMS_THREADS), RMS_THREADS>>>(dw, dy, x, rstd, N, D);
    cudaCheckLaunch();
}
