/* optim.h: AdamW (decoupled weight decay, as torch.optim.AdamW), clipping by global gradient
 * norm, and the learning-rate schedule (linear warm-up, then constant or cosine to zero).
 * The optimizer works on groups: one per trainable tensor, each a span of a parameter buffer and
 * the matching span of its gradient buffer, with its own moment buffers, so frozen tensors cost
 * no optimizer memory (LoRA on a 7B model keeps moments only for the adapter and norms). */
#ifndef LQA_OPTIM_H
#define LQA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

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
    float *m, *v;           /* first and second moments (n floats each, owned) */
} lqa_optim_group;

typedef struct lqa_optim {
    lqa_adamw_cfg cfg;
    lqa_optim_group *groups;
    int n_groups;
    long t;                 /* optimizer steps taken (bias correction) */
} lqa_optim;

void lqa_optim_init(lqa_optim *o, const lqa_adamw_cfg *cfg);
/* Adds a group; moments start at zero. */
void lqa_optim_add(lqa_optim *o, const char *name, float *param, const float *grad, size_t n, int decay);
void lqa_optim_free(lqa_optim *o);
size_t lqa_optim_numel(const lqa_optim *o);

/* L2 norm of every group's gradient together (accumulated in double, deterministic order). */
double lqa_optim_grad_norm(const lqa_optim *o);
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
