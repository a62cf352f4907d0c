/* kernels/adamw.c: AdamW and the sum of squares on the CPU (see adamw.h). */
#include "kernels/adamw.h"

#include <math.h>

void adamw_update_cpu(float *p, float *m, float *v, const float *g, size_t n, const adamw_args *a) {
    long len = (long)n;
    /* element-wise, so the result does not depend on the thread count */
#pragma omp parallel for schedule(static) if (len > 65536)
    for (long k = 0; k < len; k++) {
        float gk = g[k] * a->grad_scale;
        m[k] = a->beta1 * m[k] + (1.0f - a->beta1) * gk;
        v[k] = a->beta2 * v[k] + (1.0f - a->beta2) * gk * gk;
        p[k] = p[k] * a->decay - a->step * m[k] / (sqrtf(v[k]) * a->inv_sqrt_bc2 + a->eps);
    }
}

void sumsq_add_cpu(double *acc, const float *x, size_t n) {
    double s = 0;
    for (size_t k = 0; k < n; k++) s += (double)x[k] * x[k];
    *acc += s;
}
