/* kernels/cuda/emu/include/cuda_runtime.h: the CUDA runtime calls kernels/cuda uses, on the host
 * (see ../emu.h). */
#ifndef LQA_CUDA_EMU_RUNTIME_H
#define LQA_CUDA_EMU_RUNTIME_H

#include "kernels/cuda/emu/emu.h"

typedef enum cudaError { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidValue = 1 } cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
};

const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemset(void *p, int value, size_t n);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
/* __constant__ is host memory under the emulator: a bounds-checked copy into the symbol */
template <typename T, size_t N>
cudaError_t cudaMemcpyToSymbol(T (&symbol)[N], const void *src, size_t n, size_t offset = 0) {
    if (offset + n > sizeof(T) * N) return cudaErrorInvalidValue;
    memcpy((char *)symbol + offset, src, n);
    return cudaSuccess;
}
cudaError_t emu_set_max_dynamic_smem(size_t bytes);
template <typename K>
cudaError_t cudaFuncSetAttribute(K kernel, cudaFuncAttribute attr, int value) {
    (void)kernel, (void)attr;
    return emu_set_max_dynamic_smem((size_t)value);
}

#endif
