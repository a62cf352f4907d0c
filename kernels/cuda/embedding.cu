/* kernels/cuda/embedding.cu: token embedding lookup and its backward (the twins of embedding.c).
 *
 * The backward is deterministic and sort-free, without atomics: thread (column c, residue class
 * k) walks ALL tokens in order and adds dx[n][c] into dwte[tokens[n]][c] for the tokens with
 * tokens[n] % CLASSES == k. Every element of dwte belongs to exactly one thread and receives its
 * terms in token order, the same order as the CPU loop, so the result is bitwise the CPU's. The
 * residue classes multiply the parallelism beyond D columns at the cost of each thread reading
 * the (small, cached) token array once. */
#include "kernels/cuda/internal.cuh"

enum { EMB_THREADS = 256, EMB_CLASSES = 32 };

__global__ void embedding_forward_kernel(float *x, const int32_t *tokens, const float *wte, int N, int D) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)N * D) return;
    size_t n = idx / D, c = idx % D;
    x[idx] = wte[(size_t)tokens[n] * D + c];
}

__global__ void embedding_backward_kernel(float *dwte, const float *dx, const int32_t *tokens, int N, int D) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c >= D) return;
    for (int n = 0; n < N; n++) {
        int32_t tok = tokens[n];
        if (tok % EMB_CLASSES != k) continue;
        dwte[(size_t)tok * D + c] += dx[(size_t)n * D + c];
    }
}

extern "C" void embedding_forward_cuda(float *x, const int32_t *tokens, const float *wte, int N, int D) {
    size_t n = (size_t)N * D;
    if (n == 0) return;
    embedding_forward_kernel<<<lqa_blocks_for(n, EMB_THREADS), EMB_THREADS>>>(x, tokens, wte, N, D);
    cudaCheckLaunch();
}

extern "C" void embedding_backward_cuda(float *dwte, const float *dx, const int32_t *tokens, int N, int D) {
    if (N <= 0 || D <= 0) return;
    dim3 grid(lqa_blocks_for((size_t)D, EMB_THREADS), EMB_CLASSES);
    embedding_backward_kernel<<<grid, EMB_THREADS>>>(dwte, dx, tokens, N, D);
    cudaCheckLaunch();
}
