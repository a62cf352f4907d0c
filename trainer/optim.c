/* optim.c: AdamW over groups, global-norm clipping, warm-up + constant/cosine schedule; the
 * element-wise work goes through the backend (kernels/adamw.h). */
#include "trainer/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

void lqa_optim_init_on(lqa_optim *o, const lqa_adamw_cfg *cfg, const lqa_backend *be) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->be = be;
}

void lqa_optim_init(lqa_optim *o, const lqa_adamw_cfg *cfg) {
    lqa_optim_init_on(o, cfg, lqa_backend_cpu());
}

void lqa_optim_add(lqa_optim *o, const char *name, float *param, const float *grad, size_t n, int decay) {
    o->groups = lqa_realloc(o->groups, sizeof(lqa_optim_group) * (size_t)(o->n_groups + 1));
    lqa_optim_group *g = &o->groups[o->n_groups++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->param = param;
    g->grad = grad;
    g->n = n;
    g->decay = decay;
    g->m = o->be->alloc(n * sizeof(float));
    g->v = o->be->alloc(n * sizeof(float));
    o->be->zero(g->m, n * sizeof(float));
    o->be->zero(g->v, n * sizeof(float));
    if (o->be->host_memory) g->h_param = param, g->h_m = g->m, g->h_v = g->v;
}

void lqa_optim_free(lqa_optim *o) {
    for (int i = 0; i < o->n_groups; i++) {
        lqa_optim_group *g = &o->groups[i];
        o->be->free(g->m);
        o->be->free(g->v);
        if (!o->be->host_memory) {
            free(g->h_param);
            free(g->h_m);
            free(g->h_v);
        }
    }
    free(o->groups);
    memset(o, 0, sizeof *o);
}

size_t lqa_optim_numel(const lqa_optim *o) {
    size_t n = 0;
    for (int i = 0; i < o->n_groups; i++) n += o->groups[i].n;
    return n;
}

void lqa_optim_zero_grads(lqa_optim *o) {
    for (int i = 0; i < o->n_groups; i++) o->be->zero((float *)o->groups[i].grad, o->groups[i].n * sizeof(float));
}

void lqa_optim_grad_sumsq(const lqa_optim *o, double *acc) {
    for (int i = 0; i < o->n_groups; i++) o->be->sumsq_add(acc, o->groups[i].grad, o->groups[i].n);
}

double lqa_optim_grad_norm(const lqa_optim *o) {
    double total = 0, *acc = o->be->host_memory ? &total : o->be->alloc(sizeof(double));
    o->be->zero(acc, sizeof(double));
    lqa_optim_grad_sumsq(o, acc);
    if (acc != &total) {
        o->be->to_host(&total, acc, sizeof total);
        o->be->free(acc);
    }
    return sqrt(total);
}

void lqa_optim_to_host(lqa_optim *o) {
    if (o->be->host_memory) return;
    for (int i = 0; i < o->n_groups; i++) {
        lqa_optim_group *g = &o->groups[i];
        size_t bytes = g->n * sizeof(float);
        if (!g->h_param) {
            g->h_param = lqa_malloc(bytes);
            g->h_m = lqa_malloc(bytes);
            g->h_v = lqa_malloc(bytes);
        }
        o->be->to_host(g->h_param, g->param, bytes);
        o->be->to_host(g->h_m, g->m, bytes);
        o->be->to_host(g->h_v, g->v, bytes);
    }
}

void lqa_optim_to_device(lqa_optim *o) {
    if (o->be->host_memory) return;
    for (int i = 0; i < o->n_groups; i++) {
        lqa_optim_group *g = &o->groups[i];
        size_t bytes = g->n * sizeof(float);
        if (!g->h_param) continue;
        o->be->to_device(g->param, g->h_param, bytes);
        o->be->to_device(g->m, g->h_m, bytes);
        o->be->to_device(g->v, g->h_v, bytes);
    }
}

float lqa_clip_scale(double norm, float max_norm) {
    if (max_norm <= 0 || !(norm > max_norm)) return 1.0f;
    /* torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6) */
    return (float)(max_norm / (norm + 1e-6));
}

void lqa_optim_step(lqa_optim *o, float lr, float grad_scale) {
    o->t++;
    const lqa_adamw_cfg *c = &o->cfg;
    double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
    adamw_args a = {c->beta1, c->beta2, c->eps, (float)(lr / bc1), (float)(1.0 / sqrt(bc2)), 1.0f, grad_scale};
    for (int i = 0; i < o->n_groups; i++) {
        lqa_optim_group *g = &o->groups[i];
        a.decay = g->decay ? 1.0f - lr * c->weight_decay : 1.0f;
        o->be->adamw_update(g->param, g->m, g->v, g->grad, g->n, &a);
    }
}

float lqa_lr_at(long t, long total, float lr, long warmup, lqa_schedule s) {
    if (t < warmup) return lr * (float)(t + 1) / (float)warmup;
    if (s == LQA_SCHED_CONSTANT || total <= warmup) return lr;
    double progress = (double)(t - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return (float)(lr * 0.5 * (1.0 + cos(M_PI * progress)));
}
