/* kernels/cuda/emu/emu.h: a CPU emulator of the small part of CUDA that kernels/cuda uses, so
 * the kernels' logic (indexing, masks, barriers, warp shuffles, shared memory, the cuBLAS
 * row-major mapping) can be checked on a machine without a GPU (mk/cuda.mk: `make cuda-emu`, `make cuda-emu-check`).
 * It is a development check, not a backend: slow, single host thread, and blind to what only
 * real hardware shows (timing, races between warps that the barrier order happens to hide,
 * float results of the GPU's own libm). The real check is scripts/gpu_check.sh on a GPU.
 *
 * Model: blocks run one after another; the threads of a block run as coroutines (a minimal
 * x86-64 context switch, see emu.cc) switched only at __syncthreads (block barrier) and warp
 * shuffles (warp barrier), so every thread sees the others' writes exactly at the synchronisation points. A barrier nobody can
 * complete (divergent __syncthreads or shuffle) aborts with a message. Device memory is host
 * memory (malloc), so ASan checks kernel accesses out of bounds; dynamic shared memory is a
 * malloc of exactly the launch's size. The build (mk/cuda.mk) rewrites the .cu sources'
 * launch syntax (k<<<g, b, s>>>(args) -> emu_launcher(k, g, b, s)(args)) and dynamic shared
 * declaration (which must read `extern __shared__ float smem[];`: the build checks it) before
 * compiling them as C++ with this header forced in. */
#ifndef LQA_CUDA_EMU_H
#define LQA_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <functional>

using std::max;
using std::min;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __constant__ static /* host memory the emulated kernels read; cudaMemcpyToSymbol fills it */
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct emu_uint3 {
    unsigned x, y, z;
};
extern emu_uint3 emu_threadIdx, emu_blockIdx;
extern dim3 emu_blockDim, emu_gridDim;
extern void *emu_dyn_smem;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim

void emu_syncthreads(void);
float emu_shfl_float(float v, int src_lane);
static inline void __syncthreads(void) { emu_syncthreads(); }
static inline float __shfl_sync(unsigned mask, float v, int src) {
    (void)mask;
    return emu_shfl_float(v, src & 31);
}
static inline float __shfl_xor_sync(unsigned mask, float v, int o) {
    (void)mask;
    return emu_shfl_float(v, (int)(emu_threadIdx.x & 31) ^ o);
}

/* Runs body once per thread of every block of grid x block, with smem bytes of dynamic shared memory. */
void emu_run(dim3 grid, dim3 block, size_t smem, const std::function<void(void)> &body);

template <typename... P>
struct emu_launch_t {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    void operator()(P... args) const { /* typed here, so NULL becomes the kernel's pointer type */
        void (*k)(P...) = kernel;
        emu_run(grid, block, smem, [=]() { k(args...); });
    }
};
template <typename... P>
emu_launch_t<P...> emu_launcher(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem = 0) {
    return emu_launch_t<P...>{kernel, grid, block, smem};
}

#endif
