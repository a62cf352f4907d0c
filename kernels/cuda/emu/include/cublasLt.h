/* kernels/cuda/emu/include/cublasLt.h: the emulator's cuBLASLt (see ../emu.h), header only: the
 * calls kernels/cuda/matmul_bf16.cu makes (handle, matmul descriptor with TRANSA/TRANSB, matrix
 * layouts, cublasLtMatmul) with the library's argument checks: compute type CUBLAS_COMPUTE_32F
 * with fp32 scale, A and B both bf16 (C/D bf16 or fp32) or all fp32, op(A) m x k, op(B) k x n,
 * C and D m x n of one type, every leading dimension at least the stored rows, C == D or
 * disjoint, no NULL matrix of a non-empty product. A refused call returns
 * CUBLAS_STATUS_INVALID_VALUE (the real library says NOT_SUPPORTED for some), so cublasCheck
 * stops the program. The product is summed in fp32, in k order; D is rounded to its type (bf16:
 * round-to-nearest-even). algo NULL (the library's own heuristic) and any workspace are taken;
 * the stream argument is ignored (everything runs in order). */
#ifndef LQA_CUDA_EMU_CUBLASLT_H
#define LQA_CUDA_EMU_CUBLASLT_H

#include <stdint.h>

#include "cublas_v2.h"
#include "cuda_bf16.h"

typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
typedef cudaDataType_t cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4 } cublasLtMatmulDescAttributes_t;

struct emu_lt_handle {
    int magic;
};
struct emu_lt_desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    cublasOperation_t ta, tb;
};
struct emu_lt_layout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
typedef emu_lt_handle *cublasLtHandle_t;
typedef emu_lt_desc *cublasLtMatmulDesc_t;
typedef emu_lt_layout *cublasLtMatrixLayout_t;
typedef struct emu_lt_algo cublasLtMatmulAlgo_t;

enum { EMU_LT_MAGIC = 0x4c74 };

static inline cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = new emu_lt_handle{EMU_LT_MAGIC};
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    if (!h || h->magic != EMU_LT_MAGIC) return CUBLAS_STATUS_INVALID_VALUE;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
                                                      cudaDataType_t scale) {
    if (compute != CUBLAS_COMPUTE_32F || scale != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    *d = new emu_lt_desc{compute, scale, CUBLAS_OP_N, CUBLAS_OP_N};
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                                            const void *buf, size_t size) {
    if (!d || !buf || size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    int32_t op;
    memcpy(&op, buf, sizeof op);
    if (op != CUBLAS_OP_N && op != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
    if (a == CUBLASLT_MATMUL_DESC_TRANSA) d->ta = (cublasOperation_t)op;
    else if (a == CUBLASLT_MATMUL_DESC_TRANSB) d->tb = (cublasOperation_t)op;
    else return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t type, uint64_t rows,
                                                        uint64_t cols, int64_t ld) {
    if (type != CUDA_R_32F && type != CUDA_R_16BF) return CUBLAS_STATUS_INVALID_VALUE;
    if (ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE; /* column-major: ld >= rows */
    *l = new emu_lt_layout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

static inline float emu_lt_get(const void *m, cudaDataType_t t, size_t i) {
    return t == CUDA_R_32F ? ((const float *)m)[i] : __bfloat162float(((const __nv_bfloat16 *)m)[i]);
}

/* Column-major D = alpha op(A) op(B) + beta C. */
static inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha,
                                            const void *A, cublasLtMatrixLayout_t la, const void *B,
                                            cublasLtMatrixLayout_t lb, const void *beta, const void *C,
                                            cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                                            const cublasLtMatmulAlgo_t *algo, void *workspace, size_t ws_bytes,
                                            void *stream) {
    (void)algo, (void)stream;
    if (!h || h->magic != EMU_LT_MAGIC || !d || !la || !lb || !lc || !ld || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (ws_bytes && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
    if (la->type != lb->type || lc->type != ld->type) return CUBLAS_STATUS_INVALID_VALUE;
    if (la->type == CUDA_R_32F && lc->type != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
    bool ta = d->ta == CUBLAS_OP_T, tb = d->tb == CUBLAS_OP_T;
    uint64_t m = ta ? la->cols : la->rows, k = ta ? la->rows : la->cols;
    uint64_t kb = tb ? lb->cols : lb->rows, n = tb ? lb->rows : lb->cols;
    if (k != kb || lc->rows != m || lc->cols != n || ld->rows != m || ld->cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    if (C == D && lc->ld != ld->ld) return CUBLAS_STATUS_INVALID_VALUE; /* in place: one layout */
    if (C && C != D) { /* a separate C must not overlap D */
        size_t es = lc->type == CUDA_R_32F ? 4 : 2;
        const char *c0 = (const char *)C, *d0 = (const char *)D;
        if (c0 < d0 + (size_t)ld->ld * n * es && d0 < c0 + (size_t)lc->ld * n * es) return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    float al = *(const float *)alpha, be = *(const float *)beta;
    if ((k && (!A || !B)) || !D || (be != 0.0f && !C)) return CUBLAS_STATUS_INVALID_VALUE;
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            float s = 0.0f;
            for (uint64_t l = 0; l < k; l++) {
                float a = emu_lt_get(A, la->type, ta ? l + i * la->ld : i + l * la->ld);
                float b = emu_lt_get(B, lb->type, tb ? j + l * lb->ld : l + j * lb->ld);
                s += a * b;
            }
            float r = al * s + (be == 0.0f ? 0.0f : be * emu_lt_get(C, lc->type, i + j * lc->ld));
            size_t o = i + j * ld->ld;
            if (ld->type == CUDA_R_32F) ((float *)D)[o] = r;
            else ((__nv_bfloat16 *)D)[o] = __float2bfloat16_rn(r);
        }
    return CUBLAS_STATUS_SUCCESS;
}

#endif
