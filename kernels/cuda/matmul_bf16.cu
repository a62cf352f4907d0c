/* kernels/cuda/matmul_bf16.cu: the bf16 GEMMs of kernels/matmul_bf16.h on cuBLASLt (bf16 A and
 * B, CUBLAS_COMPUTE_32F, fp32 or bf16 C/D), and the bf16 <-> fp32 conversion kernels of
 * kernels/bf16.h. One cuBLASLt handle and one 32 MiB workspace per process, created on first use;
 * the default stream; algo NULL lets cuBLASLt pick its kernel by its own heuristic. */
#include <cublasLt.h>
#include <cuda_bf16.h>

#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/bf16.h"
#include "kernels/matmul_bf16.h"
}

/* ---- conversions ---- */

__global__ void bf16_from_f32_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}
__global__ void bf16_to_f32_kernel(float *dst, const __nv_bfloat16 *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __bfloat162float(src[i]);
}

extern "C" void bf16_from_f32_cuda(lqa_bf16 *dst, const float *src, size_t n) {
    if (n == 0) return;
    bf16_from_f32_kernel<<<lqa_blocks_for(n, 256), 256>>>((__nv_bfloat16 *)dst, src, n);
    cudaCheckLaunch();
}
extern "C" void bf16_to_f32_cuda(float *dst, const lqa_bf16 *src, size_t n) {
    if (n == 0) return;
    bf16_to_f32_kernel<<<lqa_blocks_for(n, 256), 256>>>(dst, (const __nv_bfloat16 *)src, n);
    cudaCheckLaunch();
}

/* ---- cuBLASLt ---- */

enum { LT_WORKSPACE = 32 << 20 };
static cublasLtHandle_t lt_handle = NULL;
static void *lt_workspace = NULL;

static cublasLtHandle_t lt(void) {
    if (!lt_handle) { /* single-threaded host side, as device.cu's cuBLAS handle */
        cublasCheck(cublasLtCreate(&lt_handle));
        lt_workspace = lqa_cuda_alloc(LT_WORKSPACE);
    }
    return lt_handle;
}

/* A column-major layout of a row-major matrix with `rows` rows of `cols` (ld apart): cuBLASLt
 * sees its transpose, cols x rows with leading dimension ld. */
static cublasLtMatrixLayout_t rm_layout(cudaDataType_t type, int rows, int cols, int ld) {
    cublasLtMatrixLayout_t l;
    cublasCheck(cublasLtMatrixLayoutCreate(&l, type, (uint64_t)cols, (uint64_t)rows, (int64_t)ld));
    return l;
}

extern "C" void gemm_bf16_cuda(int transA, int transB, int M, int N, int K, float alpha, const lqa_bf16 *A,
                               int lda, const lqa_bf16 *B, int ldb, float beta, void *C, lqa_dtype c_type,
                               int ldc) {
    if (M <= 0 || N <= 0) return;
    /* Row-major C[M,N] is column-major C^T[N,M] = op(B)^T op(A)^T: B goes first, A second, with
     * the same transpose flags (as lqa_gemm_rm does for cublasSgemm). */
    cudaDataType_t ct = c_type == LQA_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    int32_t op_first = transB ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second));
    cublasLtMatrixLayout_t lb = rm_layout(CUDA_R_16BF, transB ? N : K, transB ? K : N, ldb);
    cublasLtMatrixLayout_t la = rm_layout(CUDA_R_16BF, transA ? K : M, transA ? M : K, lda);
    cublasLtMatrixLayout_t lc = rm_layout(ct, M, N, ldc);
    cublasLtHandle_t handle = lt(); /* before lt_workspace is read: it allocates it */
    cublasCheck(cublasLtMatmul(handle, desc, &alpha, B, lb, A, la, &beta, C, lc, C, lc, NULL, lt_workspace,
                               LT_WORKSPACE, 0));
    cublasCheck(cublasLtMatrixLayoutDestroy(lc));
    cublasCheck(cublasLtMatrixLayoutDestroy(la));
    cublasCheck(cublasLtMatrixLayoutDestroy(lb));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
}

extern "C" void matmul_bf16_forward_cuda(void *y, lqa_dtype y_type, const lqa_bf16 *x, const lqa_bf16 *W, int N,
                                         int In, int Out, int accumulate) {
    gemm_bf16_cuda(0, 1, N, Out, In, 1.0f, x, In, W, In, accumulate ? 1.0f : 0.0f, y, y_type, Out);
}

extern "C" void matmul_bf16_backward_cuda(float *dx, float *dW, const lqa_bf16 *dy, const lqa_bf16 *x,
                                          const lqa_bf16 *W, int N, int In, int Out) {
    if (dx) gemm_bf16_cuda(0, 0, N, In, Out, 1.0f, dy, Out, W, In, 1.0f, dx, LQA_F32, In);
    if (dW) gemm_bf16_cuda(1, 0, Out, In, N, 1.0f, dy, Out, x, In, 1.0f, dW, LQA_F32, In);
}

extern "C" void lora_bf16_forward_cuda(void *y, lqa_dtype y_type, lqa_bf16 *t, const lqa_bf16 *x,
                                       const lqa_bf16 *A, const lqa_bf16 *B, int N, int In, int Out, int r,
                                       float scale) {
    gemm_bf16_cuda(0, 1, N, r, In, 1.0f, x, In, A, In, 0.0f, t, LQA_BF16, r);
    gemm_bf16_cuda(0, 1, N, Out, r, scale, t, r, B, r, 1.0f, y, y_type, Out);
}

extern "C" void lora_bf16_backward_cuda(float *dx, float *dA, float *dB, const lqa_bf16 *dy, const lqa_bf16 *x,
                                        const lqa_bf16 *t, const lqa_bf16 *A, const lqa_bf16 *B, int N, int In,
                                        int Out, int r, float scale, lqa_bf16 *scratch) {
    lora_bf16_dt_cuda(dB, scratch, dy, t, B, N, Out, r, scale);
    matmul_bf16_backward_cuda(dx, dA, scratch, x, A, N, In, r);
}

/* The scale rides in alpha and the sums land in place (beta 1 into dB; dt rounded to bf16 in the
 * epilogue), so neither output takes a pass of its own. */
extern "C" void lora_bf16_dt_cuda(float *dB, lqa_bf16 *dt, const lqa_bf16 *dy, const lqa_bf16 *t, const lqa_bf16 *B,
                                  int N, int Out, int r, float scale) {
    if (dB) gemm_bf16_cuda(1, 0, Out, r, N, scale, dy, Out, t, r, 1.0f, dB, LQA_F32, r);
    gemm_bf16_cuda(0, 0, N, r, Out, scale, dy, Out, B, r, 0.0f, dt, LQA_BF16, r);
}

extern "C" void crossentropy_logits_bf16_cuda(float *logits, const lqa_bf16 *x, const lqa_bf16 *W, int rows, int D,
                                              int V) {
    matmul_bf16_forward_cuda(logits, LQA_F32, x, W, rows, D, V, 0);
}
