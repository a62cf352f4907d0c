/* kernels/cuda/swiglu.cu: h = silu(g) * u and its backward, one thread per element (the twins of
 * swiglu.c, same formulas). */
#include "kernels/cuda/internal.cuh"

enum { SWIGLU_THREADS = 256 };

__global__ void swiglu_forward_kernel(float *h, const float *g, const float *u, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float sig = 1.0f / (1.0f + expf(-g[i]));
    h[i] = g[i] * sig * u[i];
}

/* silu'(g) = sig(g) (1 + g (1 - sig(g))) */
__global__ void swiglu_backward_kernel(float *dg, float *du, const float *dh, const float *g, const float *u,
                                       size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float sig = 1.0f / (1.0f + expf(-g[i]));
    float silu = g[i] * sig;
    dg[i] += dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    du[i] += dh[i] * silu;
}

extern "C" void swiglu_forward_cuda(float *h, const float *g, const float *u, size_t n) {
    if (n == 0) return;
    swiglu_forward_kernel<<<lqa_blocks_for(n, SWIGLU_THREADS), SWIGLU_THREADS>>>(h, g, u, n);
    cudaCheckLaunch();
}

extern "C" void swiglu_backward_cuda(float *dg, float *du, const float *dh, const float *g, const float *u,
                                     size_t n) {
    if (n == 0) return;
    swiglu_backward_kernel<<<lqa_blocks_for(n, SWIGLU_THREADS), SWIGLU_THREADS>>>(dg, du, dh, g, u, n);
    cudaCheckLaunch();
}
