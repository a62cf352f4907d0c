/* kernels/swiglu.c: h = silu(g) * u and its backward, elementwise. */
#include "kernels/swiglu.h"

#include <math.h>

#include "kernels/fastmath.h"

enum { CHUNK = 4096 }; /* elements per work item: the loops below vectorise within a chunk */

LQA_SIMD_CLONES static void swiglu_forward_chunk(float *h, const float *g, const float *u, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + lqa_expf(-g[i]));
        h[i] = g[i] * sig * u[i];
    }
}

/* silu'(g) = sig(g) (1 + g (1 - sig(g))) */
LQA_SIMD_CLONES static void swiglu_backward_chunk(float *dg, float *du, const float *dh, const float *g,
                                                  const float *u, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + lqa_expf(-g[i]));
        float silu = g[i] * sig;
        dg[i] += dh[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] += dh[i] * silu;
    }
}

void swiglu_forward_cpu(float *h, const float *g, const float *u, size_t n) {
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (LQA_PAR(n))
    for (size_t c = 0; c < nchunks; c++) {
        size_t a = c * CHUNK, len = n - a < CHUNK ? n - a : CHUNK;
        swiglu_forward_chunk(h + a, g + a, u + a, len);
    }
}

void swiglu_backward_cpu(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (LQA_PAR(n))
    for (size_t c = 0; c < nchunks; c++) {
        size_t a = c * CHUNK, len = n - a < CHUNK ? n - a : CHUNK;
        swiglu_backward_chunk(dg + a, du + a, dh + a, g + a, u + a, len);
    }
}
