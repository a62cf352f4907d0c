/* kernels/crossentropy.c: next-token cross-entropy and the chunked fused lm_head + loss. */
#include "kernels/crossentropy.h"

#include <math.h>
#include <string.h>

#include "kernels/fastmath.h"
#include "kernels/matmul.h"

LQA_SIMD_CLONES static float row_logsumexp(const float *z, int V) {
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int i = 1; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < V; i++) s += lqa_expf(z[i] - mx);
    return mx + logf(s);
}

void crossentropy_forward_cpu(float *losses, const float *logits, const int32_t *targets, int N, int V) {
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * V))
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        losses[n] = targets[n] < 0 ? 0.0f : row_logsumexp(z, V) - z[targets[n]];
    }
}

/* z <- grad_scale * (softmax(z) - onehot(target)), lse = logsumexp(z) */
LQA_SIMD_CLONES static void row_backward_lse(float *z, int32_t target, int V, float grad_scale, float lse) {
    if (target < 0) {
        memset(z, 0, sizeof(float) * V);
        return;
    }
#pragma omp simd
    for (int i = 0; i < V; i++) z[i] = grad_scale * lqa_expf(z[i] - lse);
    z[target] -= grad_scale;
}

static void row_backward(float *z, int32_t target, int V, float grad_scale) {
    row_backward_lse(z, target, V, grad_scale, target < 0 ? 0.0f : row_logsumexp(z, V));
}

void crossentropy_backward_cpu(float *logits, const int32_t *targets, int N, int V, float grad_scale) {
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)N * V))
    for (int n = 0; n < N; n++) row_backward(logits + (size_t)n * V, targets[n], V, grad_scale);
}

size_t crossentropy_scratch_floats(int chunk, int D, int V) {
    /* logits chunk x V, gathered x chunk x D, gathered dx chunk x D, losses, lse, row index: chunk */
    return (size_t)chunk * V + 2 * (size_t)chunk * D + 3 * (size_t)chunk;
}

/* Gathers up to `chunk` target rows starting at *cursor: their indices into idx and their x rows
 * into xg. Returns how many. */
static int gather_targets(int32_t *idx, float *xg, const float *x, const int32_t *targets, int N, int D,
                          int chunk, int *cursor) {
    int c = 0;
    while (*cursor < N && c < chunk) {
        int n = (*cursor)++;
        if (targets[n] < 0) continue;
        idx[c] = n;
        memcpy(xg + (size_t)c * D, x + (size_t)n * D, sizeof(float) * D);
        c++;
    }
    return c;
}

/* One chunk of c gathered target rows (idx, xg filled): logits, losses added to *loss_sum in
 * row order, then the backward GEMMs and the scatter of dx. */
static void fused_chunk(float *dx, float *dW, const float *W, const int32_t *targets, int c, int D, int V,
                        float grad_scale, float *scratch, int chunk, double *loss_sum) {
    float *logits = scratch;
    float *xg = logits + (size_t)chunk * V;
    float *dxg = xg + (size_t)chunk * D;
    float *losses = dxg + (size_t)chunk * D, *lse = losses + chunk;
    int32_t *idx = (int32_t *)(lse + chunk);
    matmul_forward_cpu(logits, xg, W, c, D, V, 0);
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)c * V))
    for (int i = 0; i < c; i++) {
        const float *z = logits + (size_t)i * V;
        lse[i] = row_logsumexp(z, V);
        losses[i] = lse[i] - z[targets[idx[i]]];
    }
    for (int i = 0; i < c; i++) *loss_sum += losses[i]; /* fixed order: deterministic */
    if (!dx && !dW) return;
#pragma omp parallel for schedule(static) if (LQA_PAR((size_t)c * V))
    for (int i = 0; i < c; i++) row_backward_lse(logits + (size_t)i * V, targets[idx[i]], V, grad_scale, lse[i]);
    if (dW) matmul_backward_cpu(NULL, dW, logits, xg, W, c, D, V);
    if (dx) {
        memset(dxg, 0, sizeof(float) * (size_t)c * D);
        matmul_backward_cpu(dxg, NULL, logits, xg, W, c, D, V);
        for (int i = 0; i < c; i++) {
            float *dst = dx + (size_t)idx[i] * D;
            const float *src = dxg + (size_t)i * D;
            for (int j = 0; j < D; j++) dst[j] += src[j];
        }
    }
}

/* The scratch areas fused_chunk reads its gathered rows from. */
static float *scratch_xg(float *scratch, int chunk, int V) { return scratch + (size_t)chunk * V; }
static int32_t *scratch_idx(float *scratch, int chunk, int D, int V) {
    return (int32_t *)(scratch + (size_t)chunk * V + 2 * (size_t)chunk * D + 2 * (size_t)chunk);
}

double crossentropy_fused_cpu(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                              int N, int D, int V, float grad_scale, int chunk, float *scratch) {
    float *xg = scratch_xg(scratch, chunk, V);
    int32_t *idx = scratch_idx(scratch, chunk, D, V);
    double total = 0.0;
    int cursor = 0;
    for (;;) {
        int c = gather_targets(idx, xg, x, targets, N, D, chunk, &cursor);
        if (c == 0) break;
        fused_chunk(dx, dW, W, targets, c, D, V, grad_scale, scratch, chunk, &total);
    }
    return total;
}

void crossentropy_fused_rows_cpu(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                                 const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                 float *scratch, double *loss_sum) {
    float *xg = scratch_xg(scratch, chunk, V);
    int32_t *idx = scratch_idx(scratch, chunk, D, V);
    for (int start = 0; start < n_rows; start += chunk) {
        int c = n_rows - start < chunk ? n_rows - start : chunk;
        for (int i = 0; i < c; i++) {
            idx[i] = rows[start + i];
            memcpy(xg + (size_t)i * D, x + (size_t)idx[i] * D, sizeof(float) * D);
        }
        fused_chunk(dx, dW, W, targets, c, D, V, grad_scale, scratch, chunk, loss_sum);
    }
}

void crossentropy_mean_add_cpu(double *acc, const double *loss_sum, long count) {
    if (count > 0) *acc += (double)(float)(*loss_sum / (double)count);
}
