/* kernels/bf16.c: host bf16 conversions and the CPU reference of the bf16 GEMM (kernels/bf16.h). */
#include "kernels/bf16.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/check.h"
#include "kernels/attention_bf16.h"
#include "kernels/crossentropy_bf16.h"
#include "kernels/matmul.h"

void lqa_bf16_from_floats(lqa_bf16 *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lqa_bf16_from_float(src[i]);
}

void lqa_bf16_to_floats(float *dst, const lqa_bf16 *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = lqa_bf16_to_float(src[i]);
}

void lqa_bf16_round_floats(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = lqa_bf16_round(x[i]);
}

/* A stored matrix of `rows` rows with leading dimension ld, widened to fp32 (same layout). */
static float *widen(const lqa_bf16 *a, int rows, int ld) {
    size_t n = (size_t)rows * (size_t)ld;
    float *w = lqa_malloc(sizeof(float) * (n ? n : 1));
    lqa_bf16_to_floats(w, a, n);
    return w;
}

void gemm_bf16_ref(int transA, int transB, int M, int N, int K, float alpha, const lqa_bf16 *A, int lda,
                   const lqa_bf16 *B, int ldb, float beta, void *C, lqa_dtype c_type, int ldc) {
    if (M <= 0 || N <= 0) return;
    float *a = widen(A, transA ? K : M, lda), *b = widen(B, transB ? N : K, ldb);
    if (c_type == LQA_F32) {
        gemm_cpu(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc);
    } else {
        lqa_bf16 *c16 = C;
        float *c = widen(c16, M, ldc);
        gemm_cpu(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) c16[(size_t)i * ldc + j] = lqa_bf16_from_float(c[(size_t)i * ldc + j]);
        free(c);
    }
    free(a);
    free(b);
}

int attention_bf16_check(const attn_params *p, char *msg, size_t msgsz) {
    if (attention_check(p, msg, msgsz) != 0) return -1;
    if (p->hd % 16 != 0 || p->hd > ATTN_BF16_MAX_HD) {
        snprintf(msg, msgsz, "head dim %d: the bf16 tensor-core attention takes multiples of 16 up to %d", p->hd,
                 ATTN_BF16_MAX_HD);
        return -1;
    }
    return 0;
}

size_t crossentropy_bf16_scratch_bytes(int chunk, int D, int V) {
    /* fp32 logits, bf16 dlogits, bf16 gathered x, fp32 gathered dx, fp32 losses, row and target
     * indices; each area rounded up to 256 bytes so every one stays aligned for cuBLASLt */
    size_t c = (size_t)chunk, sizes[] = {c * V * 4, c * V * 2, c * D * 2, c * D * 4, c * 4, c * 4, c * 4}, total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 255) & ~(size_t)255;
    return total;
}
