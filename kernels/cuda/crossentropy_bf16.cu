/* kernels/cuda/crossentropy_bf16.cu: the fused, chunked lm_head + cross-entropy with bf16 x and W
 * (contract in kernels/crossentropy_bf16.h). Follows crossentropy_fused_cuda chunk for chunk
 * (target rows listed on the host from one copy of targets, each chunk's losses summed on the
 * host in double in row order) on the bf16 GEMMs of matmul_bf16.cu and the fp32 row kernels of
 * crossentropy.cu. */
#include <stdlib.h>

#include <cuda_bf16.h>

#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/crossentropy.h"
#include "kernels/crossentropy_bf16.h"
#include "kernels/matmul_bf16.h"
}

enum { CEB_THREADS = 256 };

/* xg[i] = x[idx[i]] for the c rows of a chunk (bf16 rows of D). */
__global__ void ceb_gather_kernel(__nv_bfloat16 *xg, const __nv_bfloat16 *x, const int32_t *idx, int c, int D) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)c * D) return;
    size_t i = e / D, j = e % D;
    xg[e] = x[(size_t)idx[i] * D + j];
}

/* Carves the scratch as crossentropy_bf16_scratch_bytes sizes it (256-byte aligned areas). */
static char *take(char **at, size_t bytes) {
    char *p = *at;
    *at += (bytes + 255) & ~(size_t)255;
    return p;
}

extern "C" double crossentropy_fused_bf16_cuda(float *dx, float *dW, const lqa_bf16 *x, const lqa_bf16 *W,
                                               const int32_t *targets, int N, int D, int V, float grad_scale,
                                               int chunk, void *scratch) {
    if (N <= 0) return 0.0;
    size_t ch = (size_t)chunk;
    char *at = (char *)scratch;
    float *logits = (float *)take(&at, ch * V * 4);
    lqa_bf16 *dlogits = (lqa_bf16 *)take(&at, ch * V * 2);
    lqa_bf16 *xg = (lqa_bf16 *)take(&at, ch * D * 2);
    float *dxg = (float *)take(&at, ch * D * 4);
    float *losses = (float *)take(&at, ch * 4);
    int32_t *idx = (int32_t *)take(&at, ch * 4), *tg = (int32_t *)take(&at, ch * 4);

    int32_t *host_t = (int32_t *)lqa_malloc(sizeof(int32_t) * (size_t)N);
    int32_t *rows = (int32_t *)lqa_malloc(sizeof(int32_t) * (size_t)N);
    int32_t *chunk_t = (int32_t *)lqa_malloc(sizeof(int32_t) * ch);
    float *host_losses = (float *)lqa_malloc(sizeof(float) * ch);
    lqa_cuda_to_host(host_t, targets, sizeof(int32_t) * (size_t)N);
    int ntargets = 0;
    for (int n = 0; n < N; n++)
        if (host_t[n] >= 0) rows[ntargets++] = n;
    int backward = dx != NULL || dW != NULL;
    double total = 0.0;
    for (int start = 0; start < ntargets; start += chunk) {
        int c = ntargets - start < chunk ? ntargets - start : chunk;
        size_t cd = (size_t)c * D;
        for (int i = 0; i < c; i++) chunk_t[i] = host_t[rows[start + i]];
        lqa_cuda_to_device(idx, rows + start, sizeof(int32_t) * (size_t)c);
        lqa_cuda_to_device(tg, chunk_t, sizeof(int32_t) * (size_t)c);
        ceb_gather_kernel<<<lqa_blocks_for(cd, CEB_THREADS), CEB_THREADS>>>((__nv_bfloat16 *)xg,
                                                                            (const __nv_bfloat16 *)x, idx, c, D);
        cudaCheckLaunch();
        crossentropy_logits_bf16_cuda(logits, xg, W, c, D, V);
        crossentropy_forward_cuda(losses, logits, tg, c, V);
        lqa_cuda_to_host(host_losses, losses, sizeof(float) * (size_t)c);
        for (int i = 0; i < c; i++) total += host_losses[i]; /* fixed order: deterministic */
        if (!backward) continue;
        crossentropy_backward_cuda(logits, tg, c, V, grad_scale); /* in place: dlogits, fp32 */
        bf16_from_f32_cuda(dlogits, logits, (size_t)c * V);
        if (dW) matmul_bf16_backward_cuda(NULL, dW, dlogits, xg, W, c, D, V);
        if (dx) {
            lqa_cuda_zero(dxg, sizeof(float) * cd);
            matmul_bf16_backward_cuda(dxg, NULL, dlogits, xg, W, c, D, V);
            lqa_rows_scatter_add_kernel<<<lqa_blocks_for(cd, CEB_THREADS), CEB_THREADS>>>(dx, dxg, idx, c, D);
            cudaCheckLaunch();
        }
    }
    free(host_t), free(rows), free(chunk_t), free(host_losses);
    return total;
}

/* For the c target rows idx[0..c) of fp32 x: xg[i] = bf16(x[idx[i]]), tg[i] = targets[idx[i]]. */
__global__ void ceb_gather_rows_kernel(__nv_bfloat16 *xg, int32_t *tg, const float *x, const int32_t *targets,
                                       const int32_t *idx, int c, int D) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)c * D) return;
    size_t i = e / D, j = e % D;
    xg[e] = __float2bfloat16_rn(x[(size_t)idx[i] * D + j]);
    if (j == 0) tg[i] = targets[idx[i]];
}

/* *loss_sum += losses[0..c) in order, on one thread (the fp32 path's order, no atomics). */
__global__ void ceb_sum_kernel(double *loss_sum, const float *losses, int c) {
    double s = *loss_sum;
    for (int i = 0; i < c; i++) s += losses[i];
    *loss_sum = s;
}

extern "C" void crossentropy_fused_rows_bf16_cuda(float *dx, const float *x, const void *W16,
                                                  const int32_t *targets, const int32_t *rows, int n_rows, int D,
                                                  int V, float grad_scale, int chunk, void *scratch,
                                                  double *loss_sum) {
    size_t ch = (size_t)chunk;
    char *at = (char *)scratch; /* crossentropy_bf16_scratch_bytes' areas; the row indices are rows */
    float *logits = (float *)take(&at, ch * V * 4);
    lqa_bf16 *dlogits = (lqa_bf16 *)take(&at, ch * V * 2);
    lqa_bf16 *xg = (lqa_bf16 *)take(&at, ch * D * 2);
    float *dxg = (float *)take(&at, ch * D * 4);
    float *losses = (float *)take(&at, ch * 4);
    take(&at, ch * 4);
    int32_t *tg = (int32_t *)take(&at, ch * 4);
    const lqa_bf16 *W = (const lqa_bf16 *)W16;
    for (int start = 0; start < n_rows; start += chunk) {
        int c = n_rows - start < chunk ? n_rows - start : chunk;
        size_t cd = (size_t)c * D;
        const int32_t *idx = rows + start;
        ceb_gather_rows_kernel<<<lqa_blocks_for(cd, CEB_THREADS), CEB_THREADS>>>((__nv_bfloat16 *)xg, tg, x,
                                                                                 targets, idx, c, D);
        cudaCheckLaunch();
        crossentropy_logits_bf16_cuda(logits, xg, W, c, D, V);
        crossentropy_forward_cuda(losses, logits, tg, c, V);
        ceb_sum_kernel<<<1, 1>>>(loss_sum, losses, c);
        cudaCheckLaunch();
        if (!dx) continue;
        crossentropy_backward_cuda(logits, tg, c, V, grad_scale); /* in place: dlogits, fp32 */
        bf16_from_f32_cuda(dlogits, logits, (size_t)c * V);
        lqa_cuda_zero(dxg, sizeof(float) * cd);
        matmul_bf16_backward_cuda(dxg, NULL, dlogits, xg, W, c, D, V);
        lqa_rows_scatter_add_kernel<<<lqa_blocks_for(cd, CEB_THREADS), CEB_THREADS>>>(dx, dxg, idx, c, D);
        cudaCheckLaunch();
    }
}
