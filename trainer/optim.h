/* optim.h: AdamW (decoupled weight decay, as torch.optim.AdamW), clipping by global gradient
 * norm, and the learning-rate schedule (linear warm-up, then constant or cosine to zero).
 * The optimizer works on groups: one per trainable tensor, each a span of a parameter buffer and
 * the matching span of its gradient buffer, with its own moment buffers, so frozen tensors cost
 * no optimizer memory (LoRA on a 7B model keeps moments only for the adapter and norms).
 * Parameters, gradients and moments live in the optimizer's backend memory (the model's); the
 * update and the gradient norm run there (kernels/adamw.h). Host copies exist only for files. */
#ifndef LQA_OPTIM_H
#define LQA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

typedef struct lqa_adamw_cfg {
    float beta1, beta2, eps;
    float weight_decay;     /* applied to groups with decay set (not to norms, as HF Trainer does) */
} lqa_adamw_cfg;

typedef struct lqa_optim_group {
    char name[128];         /* the tensor's name (checkpoints store moments under it) */
    float *param;
    const float *grad;
    size_t n;
    int decay;
    float *m, *v;           /* first and second moments (n floats each, owned, backend memory) */
    float *h_param, *h_m, *h_v; /* host copies for checkpoints (lqa_optim_to_host); on the CPU
                                   backend the buffers themselves */
} lqa_optim_group;

typedef struct lqa_optim {
    lqa_adamw_cfg cfg;
    const lqa_backend *be;
    lqa_optim_group *groups;
    int n_groups;
    long t;                 /* optimizer steps taken (bias correction) */
} lqa_optim;

/* On the CPU backend, or on be (whose memory the groups' param and grad are in). */
void lqa_optim_init(lqa_optim *o, const lqa_adamw_cfg *cfg);
void lqa_optim_init_on(lqa_optim *o, const lqa_adamw_cfg *cfg, const lqa_backend *be);
/* Adds a group; moments start at zero. */
void lqa_optim_add(lqa_optim *o, const char *name, float *param, const float *grad, size_t n, int decay);
void lqa_optim_free(lqa_optim *o);
size_t lqa_optim_numel(const lqa_optim *o);

/* Zeroes every group's gradient. */
void lqa_optim_zero_grads(lqa_optim *o);
/* L2 norm of every group's gradient together (accumulated in double, deterministic order). */
double lqa_optim_grad_norm(const lqa_optim *o);
/* The same sum of squares, ADDED to *acc (one double in backend memory) without waiting: the
 * trainer reads it with the step's loss in one copy. sqrt(*acc) is lqa_optim_grad_norm. */
void lqa_optim_grad_sumsq(const lqa_optim *o, double *acc);
/* Host copies of every group's param, m and v: to_host fills g->h_param, h_m, h_v (allocated
 * on first use); to_device writes them back (after a checkpoint was read into them). No-ops on
 * the CPU backend, where they are the buffers themselves. */
void lqa_optim_to_host(lqa_optim *o);
void lqa_optim_to_device(lqa_optim *o);
/* One AdamW step with learning rate lr; gradients are multiplied by grad_scale first (for
 * clipping and averaging over micro-batches) without modifying the gradient buffers. */
void lqa_optim_step(lqa_optim *o, float lr, float grad_scale);
/* The scale that clips a gradient of norm `norm` to max_norm (1 when max_norm <= 0 or under). */
float lqa_clip_scale(double norm, float max_norm);

typedef enum { LQA_SCHED_CONSTANT = 0, LQA_SCHED_COSINE = 1 } lqa_schedule;
/* Learning rate for 0-based step t of `total`: lr * (t+1)/warmup during warm-up, then lr
 * (constant) or a cosine from lr down to 0 at step total. */
float lqa_lr_at(long t, long total, float lr, long warmup, lqa_schedule s);

#endif
