/* kernels/cuda/adamw.cu: AdamW and the sum of squares on the GPU (the twins of adamw.c).
 * AdamW is one thread per element (the CPU's formula). The sum of squares is deterministic
 * without atomics: a fixed grid for a given n, each thread a strided partial sum in double,
 * a block tree reduction in shared memory, then one thread adds the block partials in order. */
#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/adamw.h"
}

enum { ADAMW_THREADS = 256, SUMSQ_THREADS = 256, SUMSQ_MAX_BLOCKS = 256 };

__global__ void adamw_kernel(float *p, float *m, float *v, const float *g, size_t n, adamw_args a) {
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    float gk = g[k] * a.grad_scale;
    float mk = a.beta1 * m[k] + (1.0f - a.beta1) * gk;
    float vk = a.beta2 * v[k] + (1.0f - a.beta2) * gk * gk;
    m[k] = mk;
    v[k] = vk;
    p[k] = p[k] * a.decay - a.step * mk / (sqrtf(vk) * a.inv_sqrt_bc2 + a.eps);
}

extern "C" void adamw_update_cuda(float *p, float *m, float *v, const float *g, size_t n, const adamw_args *a) {
    if (n == 0) return;
    adamw_kernel<<<lqa_blocks_for(n, ADAMW_THREADS), ADAMW_THREADS>>>(p, m, v, g, n, *a);
    cudaCheckLaunch();
}

__global__ void sumsq_partial_kernel(double *partial, const float *x, size_t n) {
    __shared__ double part[SUMSQ_THREADS];
    double s = 0;
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
        s += (double)x[k] * x[k];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = SUMSQ_THREADS / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = part[0];
}

__global__ void sumsq_finish_kernel(double *acc, const double *partial, int nblocks) {
    double s = 0;
    for (int b = 0; b < nblocks; b++) s += partial[b];
    *acc += s;
}

/* The block partials: SUMSQ_MAX_BLOCKS doubles, allocated once when the backend opens
 * (lqa_cuda_sumsq_prepare), so no step allocates. */
static double *sumsq_scratch;
void lqa_cuda_sumsq_prepare(void) {
    if (!sumsq_scratch) sumsq_scratch = (double *)lqa_cuda_alloc(sizeof(double) * SUMSQ_MAX_BLOCKS);
}

extern "C" void sumsq_add_cuda(double *acc, const float *x, size_t n) {
    if (n == 0) return;
    size_t want = lqa_blocks_for(n, SUMSQ_THREADS * 8); /* at least 8 elements per thread */
    int nblocks = want < SUMSQ_MAX_BLOCKS ? (int)want : SUMSQ_MAX_BLOCKS;
    lqa_cuda_sumsq_prepare();
    double *partial = sumsq_scratch;
    sumsq_partial_kernel<<<nblocks, SUMSQ_THREADS>>>(partial, x, n);
    cudaCheckLaunch();
    sumsq_finish_kernel<<<1, 1>>>(acc, partial, nblocks);
    cudaCheckLaunch();
}
