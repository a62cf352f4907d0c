/* kernels/embedding.c: token embedding lookup and its deterministic scatter-add backward. */
#include "kernels/embedding.h"

#include <string.h>

void embedding_forward_cpu(float *x, const int32_t *tokens, const float *wte, int N, int D) {
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * D))
    for (int n = 0; n < N; n++) memcpy(x + (size_t)n * D, wte + (size_t)tokens[n] * D, sizeof(float) * D);
}

/* Parallel over column blocks, tokens in order: each dwte element is summed in the same order
 * whatever the thread count, and no two threads write the same element. */
void embedding_backward_cpu(float *dwte, const float *dx, const int32_t *tokens, int N, int D) {
    enum { COLS = 64 };
    int nblocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * D))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * COLS, c1 = c0 + COLS < D ? c0 + COLS : D;
        for (int n = 0; n < N; n++) {
            float *dst = dwte + (size_t)tokens[n] * D;
            const float *src = dx + (size_t)n * D;
            for (int i = c0; i < c1; i++) dst[i] += src[i];
        }
    }
}
