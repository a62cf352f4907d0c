/* kernels/rmsnorm.c: RMSNorm forward/backward (HF LLaMA: w * x / sqrt(mean(x^2) + eps)). */
#include "kernels/rmsnorm.h"

#include <math.h>

void rmsnorm_forward_cpu(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps) {
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * D))
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        float ss = 0.0f;
        for (int i = 0; i < D; i++) ss += xr[i] * xr[i];
        float r = 1.0f / sqrtf(ss / D + eps);
        rstd[n] = r;
        for (int i = 0; i < D; i++) yr[i] = w[i] * (xr[i] * r);
    }
}

/* y_i = w_i x_i r, r = (mean(x^2)+eps)^-1/2, dr/dx_j = -r^3 x_j / D:
 * dx_j = r w_j dy_j - r^3 x_j / D * sum_i(dy_i w_i x_i). */
void rmsnorm_backward_cpu(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, int N, int D) {
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * D))
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
        float *dxr = dx + (size_t)n * D;
        float r = rstd[n], dot = 0.0f;
        for (int i = 0; i < D; i++) dot += dyr[i] * w[i] * xr[i];
        float c = r * r * r * dot / D;
        for (int i = 0; i < D; i++) dxr[i] += r * w[i] * dyr[i] - c * xr[i];
    }
    if (!dw) return;
    /* dw_i = sum_n dy[n,i] x[n,i] r[n]: parallel over column blocks, rows summed in order, so
     * the result is the same whatever the thread count. */
    enum { COLS = 16 };
    int nblocks = (D + COLS - 1) / COLS;
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * D))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * COLS, c1 = c0 + COLS < D ? c0 + COLS : D;
        float acc[COLS] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
            float r = rstd[n];
            for (int i = c0; i < c1; i++) acc[i - c0] += dyr[i] * xr[i] * r;
        }
        for (int i = c0; i < c1; i++) dw[i] += acc[i - c0];
    }
}
