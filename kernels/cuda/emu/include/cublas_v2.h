/* kernels/cuda/emu/include/cublas_v2.h: cublasSgemm (column-major, as cuBLAS defines it) on the
 * host, so the row-major mapping of kernels/cuda/device.cu is checked (see ../emu.h). */
#ifndef LQA_CUDA_EMU_CUBLAS_H
#define LQA_CUDA_EMU_CUBLAS_H

#include "cuda_runtime.h"

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef struct emu_cublas *cublasHandle_t;

const char *cublasGetStatusName(cublasStatus_t s);
const char *cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);

#endif
