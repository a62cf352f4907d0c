/* kernels/matmul.c: y = x W^T and its backward GEMMs, on OpenBLAS split across OpenMP threads. */
#include "kernels/matmul.h"

#include <cblas.h>
#include <omp.h>

#include "kernels/common.h"

void gemm_cpu(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : kernels_get_threads(); /* also makes OpenBLAS single-threaded */
    double work = (double)M * N * K;
    if (nt > 1 && M < 2 * 16 && work >= 4e6 && N >= 64 * nt) {
        /* few rows (decoding, LoRA's rank-r GEMMs): column blocks of C instead, a multiple of 64
         * columns each; still one thread per element, so the split does not change a result */
        int cols = ((N + nt - 1) / nt + 63) / 64 * 64, nblocks = (N + cols - 1) / cols;
#pragma omp parallel for schedule(static) num_threads(nblocks)
        for (int blk = 0; blk < nblocks; blk++) {
            int n0 = blk * cols, n = N - n0 < cols ? N - n0 : cols;
            /* column n0 of op(B): column n0 of B, or row n0 of B when transposed */
            const float *b = transB ? B + (size_t)n0 * ldb : B + n0;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb, beta, C + n0, ldc);
        }
        return;
    }
    if (nt <= 1 || M < 2 * 16 || work < 4e6) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* row blocks of C, a multiple of 16 rows each (the micro-kernel's height) */
    int rows = (M + nt - 1) / nt;
    rows = (rows + 15) / 16 * 16;
    int nblocks = (M + rows - 1) / rows;
#pragma omp parallel for schedule(static) num_threads(nblocks)
    for (int blk = 0; blk < nblocks; blk++) {
        int m0 = blk * rows, m = M - m0 < rows ? M - m0 : rows;
        /* row m0 of op(A): row m0 of A, or column m0 of A when transposed */
        const float *a = transA ? A + m0 : A + (size_t)m0 * lda;
        cblas_sgemm(CblasRowMajor, ta, tb, m, N, K, alpha, a, lda, B, ldb, beta, C + (size_t)m0 * ldc, ldc);
    }
}

void matmul_forward_cpu(float *y, const float *x, const float *W, int N, int In, int Out, int accumulate) {
    /* y[N,Out] = x[N,In] * W[Out,In]^T */
    gemm_cpu(0, 1, N, Out, In, 1.0f, x, In, W, In, accumulate ? 1.0f : 0.0f, y, Out);
}

void matmul_backward_cpu(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int In,
                         int Out) {
    /* dx[N,In] += dy[N,Out] * W[Out,In] */
    if (dx) gemm_cpu(0, 0, N, In, Out, 1.0f, dy, Out, W, In, 1.0f, dx, In);
    /* dW[Out,In] += dy[N,Out]^T * x[N,In] */
    if (dW) gemm_cpu(1, 0, Out, In, N, 1.0f, dy, Out, x, In, 1.0f, dW, In);
}
