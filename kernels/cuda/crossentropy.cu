/* kernels/cuda/crossentropy.cu: next-token cross-entropy and the chunked fused lm_head + loss
 * (the twins of crossentropy.c). Rows are independent: one block per row, block reductions for
 * the max and the sum of exponentials.
 *
 * The fused version follows the CPU one chunk for chunk: the list of target rows (given by the
 * model in device memory; built on the host from one copy of targets in the standalone form),
 * then gather -> cuBLAS logits -> per-row loss and
 * in-place dlogits -> cuBLAS dW and dx -> scatter-add of dx (rows of a chunk are distinct, so no
 * two threads add into the same element). Each chunk's losses are added in row order, in double,
 * into a device sum by one thread (the CPU's order), so the model's step never waits for its
 * loss; crossentropy_fused_cuda (tests) reads the sum back once at the end. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/internal.cuh"

enum { CE_THREADS = 256 };

/* logsumexp of one row of V, computed by the whole block (every thread gets it). */
__device__ float row_logsumexp_block(const float *z, int V) {
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, z[i]);
    mx = lqa_block_max(mx);
    float s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(z[i] - mx);
    s = lqa_block_sum(s);
    return mx + logf(s);
}

/* Row n of logits (row stride V): losses[n] = lse - z[target] (0 when not a target); with
 * grad_scale != 0, the row becomes grad_scale * (softmax - onehot) in place (0 when not a target).
 * targets_of_row maps the row to its target: targets[idx ? idx[n] : n]. */
__global__ void ce_rows_kernel(float *losses, float *logits, const int32_t *targets, const int32_t *idx, int V,
                               int backward, float grad_scale) {
    size_t n = blockIdx.x;
    float *z = logits + n * V;
    int32_t target = targets[idx ? idx[n] : (int32_t)n];
    if (target < 0) {
        if (losses && threadIdx.x == 0) losses[n] = 0.0f;
        if (backward)
            for (int i = threadIdx.x; i < V; i += blockDim.x) z[i] = 0.0f;
        return;
    }
    float lse = row_logsumexp_block(z, V);
    float zt = z[target];
    __syncthreads(); /* every thread has read z[target] before anyone overwrites it */
    if (losses && threadIdx.x == 0) losses[n] = lse - zt;
    if (!backward) return;
    for (int i = threadIdx.x; i < V; i += blockDim.x) z[i] = grad_scale * expf(z[i] - lse);
    __syncthreads();
    if (threadIdx.x == 0) z[target] -= grad_scale;
}

/* xg[i] = x[idx[i]] for the c rows of a chunk. */
__global__ void ce_gather_kernel(float *xg, const float *x, const int32_t *idx, int c, int D) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)c * D) return;
    size_t i = e / D, j = e % D;
    xg[e] = x[(size_t)idx[i] * D + j];
}

extern "C" void crossentropy_forward_cuda(float *losses, const float *logits, const int32_t *targets, int N,
                                          int V) {
    if (N <= 0) return;
    /* forward only: the kernel does not write logits when backward == 0 */
    ce_rows_kernel<<<N, CE_THREADS>>>(losses, (float *)logits, targets, NULL, V, 0, 0.0f);
    cudaCheckLaunch();
}

extern "C" void crossentropy_backward_cuda(float *logits, const int32_t *targets, int N, int V, float grad_scale) {
    if (N <= 0) return;
    ce_rows_kernel<<<N, CE_THREADS>>>(NULL, logits, targets, NULL, V, 1, grad_scale);
    cudaCheckLaunch();
}

/* *loss_sum += losses[0..c) in order, on one thread: the CPU's summation order, no atomics. */
__global__ void ce_sum_kernel(double *loss_sum, const float *losses, int c) {
    double s = *loss_sum;
    for (int i = 0; i < c; i++) s += losses[i];
    *loss_sum = s;
}

__global__ void ce_mean_add_kernel(double *acc, const double *loss_sum, long count) {
    *acc += (double)(float)(*loss_sum / (double)count);
}

extern "C" void crossentropy_mean_add_cuda(double *acc, const double *loss_sum, long count) {
    if (count <= 0) return;
    ce_mean_add_kernel<<<1, 1>>>(acc, loss_sum, count);
    cudaCheckLaunch();
}

extern "C" void crossentropy_fused_rows_cuda(float *dx, float *dW, const float *x, const float *W,
                                             const int32_t *targets, const int32_t *rows, int n_rows, int D, int V,
                                             float grad_scale, int chunk, float *scratch, double *loss_sum) {
    /* the scratch layout of crossentropy_scratch_floats, as on the CPU (the row indices are
     * read straight from rows) */
    float *logits = scratch;
    float *xg = logits + (size_t)chunk * V;
    float *dxg = xg + (size_t)chunk * D;
    float *losses = dxg + (size_t)chunk * D;
    int backward = dx != NULL || dW != NULL;
    for (int start = 0; start < n_rows; start += chunk) {
        int c = n_rows - start < chunk ? n_rows - start : chunk;
        size_t cd = (size_t)c * D;
        const int32_t *idx = rows + start;
        ce_gather_kernel<<<lqa_blocks_for(cd, CE_THREADS), CE_THREADS>>>(xg, x, idx, c, D);
        cudaCheckLaunch();
        matmul_forward_cuda(logits, xg, W, c, D, V, 0);
        ce_rows_kernel<<<c, CE_THREADS>>>(losses, logits, targets, idx, V, backward, grad_scale);
        cudaCheckLaunch();
        ce_sum_kernel<<<1, 1>>>(loss_sum, losses, c);
        cudaCheckLaunch();
        if (!backward) continue;
        if (dW) matmul_backward_cuda(NULL, dW, logits, xg, W, c, D, V);
        if (dx) {
            lqa_cuda_zero(dxg, sizeof(float) * cd);
            matmul_backward_cuda(dxg, NULL, logits, xg, W, c, D, V);
            lqa_rows_scatter_add_kernel<<<lqa_blocks_for(cd, CE_THREADS), CE_THREADS>>>(dx, dxg, idx, c, D);
            cudaCheckLaunch();
        }
    }
}

/* The standalone form (tests, benchmarks): lists the target rows on the host from one copy of
 * targets, then runs the rows form with a temporary device list and sum, and waits for the sum. */
extern "C" double crossentropy_fused_cuda(float *dx, float *dW, const float *x, const float *W,
                                          const int32_t *targets, int N, int D, int V, float grad_scale, int chunk,
                                          float *scratch) {
    if (N <= 0) return 0.0;
    int32_t *host = (int32_t *)lqa_malloc(sizeof(int32_t) * (size_t)N);
    lqa_cuda_to_host(host, targets, sizeof(int32_t) * (size_t)N);
    int c = 0;
    for (int n = 0; n < N; n++)
        if (host[n] >= 0) host[c++] = n;
    int32_t *rows = (int32_t *)lqa_cuda_upload(host, sizeof(int32_t) * (size_t)(c > 0 ? c : 1));
    double *sum = (double *)lqa_cuda_alloc(sizeof(double)), total = 0.0;
    lqa_cuda_zero(sum, sizeof(double));
    crossentropy_fused_rows_cuda(dx, dW, x, W, targets, rows, c, D, V, grad_scale, chunk, scratch, sum);
    lqa_cuda_to_host(&total, sum, sizeof(double));
    lqa_cuda_free(rows);
    lqa_cuda_free(sum);
    free(host);
    return total;
}
