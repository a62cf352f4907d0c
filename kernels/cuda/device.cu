/* kernels/cuda/device.cu: the device-memory API of device.h, the shared cuBLAS handle and the
 * row-major GEMM wrapper that matmul, lora and the fused cross-entropy are built on. */
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/internal.cuh"

extern "C" int lqa_cuda_device_count(char *why, size_t whysz) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why && whysz) snprintf(why, whysz, "cudaGetDeviceCount: %s", cudaGetErrorString(err));
        (void)cudaGetLastError(); /* clear the sticky error so later checks do not see it */
        return 0;
    }
    if (n == 0 && why && whysz) snprintf(why, whysz, "cudaGetDeviceCount: 0 devices");
    return n;
}

extern "C" int lqa_cuda_has_gpu(char *why, size_t whysz) { return lqa_cuda_device_count(why, whysz) > 0; }

extern "C" void lqa_cuda_describe(char *buf, size_t bufsz) {
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    snprintf(buf, bufsz, "%s, sm_%d%d, %d SMs, %.1f GiB", prop.name, prop.major, prop.minor,
             prop.multiProcessorCount, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

extern "C" void *lqa_cuda_alloc(size_t bytes) {
    if (bytes == 0) return NULL;
    void *p = NULL;
    cudaCheck(cudaMalloc(&p, bytes));
    return p;
}

extern "C" void lqa_cuda_free(void *dev) {
    if (dev) cudaCheck(cudaFree(dev));
}

extern "C" void lqa_cuda_to_device(void *dev, const void *host, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
}

extern "C" void *lqa_cuda_upload(const void *host, size_t bytes) {
    void *p = lqa_cuda_alloc(bytes);
    lqa_cuda_to_device(p, host, bytes);
    return p;
}

extern "C" void lqa_cuda_to_host(void *host, const void *dev, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

extern "C" void lqa_cuda_copy(void *dev_dst, const void *dev_src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dev_dst, dev_src, bytes, cudaMemcpyDeviceToDevice));
}

extern "C" void lqa_cuda_zero(void *dev, size_t bytes) {
    if (bytes) cudaCheck(cudaMemset(dev, 0, bytes));
}

extern "C" void lqa_cuda_sync(void) {
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaGetLastError());
}

/* ---- cuBLAS ---- */

static cublasHandle_t cublas_handle = NULL;

cublasHandle_t lqa_cublas_handle(void) {
    /* Created once; the trainer is single-threaded on the host side, so no lock is needed. */
    if (!cublas_handle) cublasCheck(cublasCreate(&cublas_handle));
    return cublas_handle;
}

void lqa_gemm_rm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    /* Row-major C[M,N] is column-major C^T[N,M]; C^T = op(B)^T op(A)^T, where a row-major
     * operand read column-major is already its transpose: pass B first, A second, same flags. */
    cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasSgemm(lqa_cublas_handle(), tb, ta, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}
