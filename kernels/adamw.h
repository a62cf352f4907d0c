/* kernels/adamw.h: the optimizer's element-wise ops, so AdamW and the global gradient norm run
 * where the parameters live (CPU here, kernels/cuda/adamw.cu on the GPU):
 *   adamw_update   one AdamW step over n elements (torch.optim.AdamW's formula, decoupled decay)
 *   sumsq_add      *acc += sum of x[i]^2, in double (the global gradient norm, group by group)
 * Every element has one owner and the sums have a fixed order: deterministic. */
#ifndef LQA_KERNELS_ADAMW_H
#define LQA_KERNELS_ADAMW_H

#include "kernels/common.h"

/* The step's scalars, computed once on the host (bias corrections in double). */
typedef struct adamw_args {
    float beta1, beta2, eps;
    float step;          /* lr / (1 - beta1^t) */
    float inv_sqrt_bc2;  /* 1 / sqrt(1 - beta2^t) */
    float decay;         /* 1 - lr * weight_decay, or 1 for groups without decay */
    float grad_scale;    /* applied to g on the fly (averaging, clipping); g is not modified */
} adamw_args;

/* m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2; p = p decay - step m / (sqrt(v) inv_sqrt_bc2 + eps),
 * with g' = g * grad_scale. */
void adamw_update_cpu(float *p, float *m, float *v, const float *g, size_t n, const adamw_args *a);
/* *acc += sum_i (double)x[i]^2; the group's sum starts at 0 and is added to *acc once. */
void sumsq_add_cpu(double *acc, const float *x, size_t n);

#ifdef LQA_CUDA
void adamw_update_cuda(float *p, float *m, float *v, const float *g, size_t n, const adamw_args *a);
void sumsq_add_cuda(double *acc, const float *x, size_t n);
#endif

#endif
