/* kernels/cuda/cuda_check.h: cudaCheck / cublasCheck, the CUDA members of the common/check.h
 * macro family. Like mallocCheck and friends they are for calls that must not fail: on failure
 * they print file:line, the call's error name and string, and exit(1) through lqa_fatal_at.
 * Only CUDA sources (.cu) include this header.
 *   cudaCheck(cudaMalloc(&p, n));
 *   cublasCheck(cublasSgemm(...));
 *   cudaCheckLaunch();   after a <<<...>>> launch (launch errors are reported lazily otherwise)
 */
#ifndef LQA_KERNELS_CUDA_CHECK_H
#define LQA_KERNELS_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "common/check.h"
#ifdef __cplusplus
}
#endif

static inline void lqa_cuda_check_at(cudaError_t err, const char *file, int line) {
    if (err != cudaSuccess)
        lqa_fatal_at(file, line, "CUDA error %d (%s): %s", (int)err, cudaGetErrorName(err), cudaGetErrorString(err));
}

static inline void lqa_cublas_check_at(cublasStatus_t st, const char *file, int line) {
    if (st != CUBLAS_STATUS_SUCCESS)
        lqa_fatal_at(file, line, "cuBLAS error %d (%s): %s", (int)st, cublasGetStatusName(st),
                     cublasGetStatusString(st));
}

#define cudaCheck(call) lqa_cuda_check_at((call), __FILE__, __LINE__)
#define cublasCheck(call) lqa_cublas_check_at((call), __FILE__, __LINE__)
#define cudaCheckLaunch() lqa_cuda_check_at(cudaGetLastError(), __FILE__, __LINE__)

#endif
