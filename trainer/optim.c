/* optim.c: AdamW over groups, global-norm clipping, warm-up + constant/cosine schedule. */
#include "trainer/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

void lqa_optim_init(lqa_optim *o, const lqa_adamw_cfg *cfg) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
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
    g->m = lqa_calloc(n, sizeof(float));
    g->v = lqa_calloc(n, sizeof(float));
}

void lqa_optim_free(lqa_optim *o) {
    for (int i = 0; i < o->n_groups; i++) {
        free(o->groups[i].m);
        free(o->groups[i].v);
    }
    free(o->groups);
    memset(o, 0, sizeof *o);
}

size_t lqa_optim_numel(const lqa_optim *o) {
    size_t n = 0;
    for (int i = 0; i < o->n_groups; i++) n += o->groups[i].n;
    return n;
}

double lqa_optim_grad_norm(const lqa_optim *o) {
    double total = 0;
    for (int i = 0; i < o->n_groups; i++) {
        const float *g = o->groups[i].grad;
        double s = 0;
        for (size_t k = 0; k < o->groups[i].n; k++) s += (double)g[k] * g[k];
        total += s;
    }
    return sqrt(total);
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
    float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (int i = 0; i < o->n_groups; i++) {
        lqa_optim_group *g = &o->groups[i];
        float decay = g->decay ? 1.0f - lr * c->weight_decay : 1.0f;
        float *p = g->param, *m = g->m, *v = g->v;
        const float *gr = g->grad;
        long n = (long)g->n;
        /* element-wise, so the result does not depend on the thread count */
#pragma omp parallel for schedule(static) if (n > 65536)
        for (long k = 0; k < n; k++) {
            float gk = gr[k] * grad_scale;
            m[k] = c->beta1 * m[k] + (1.0f - c->beta1) * gk;
            v[k] = c->beta2 * v[k] + (1.0f - c->beta2) * gk * gk;
            p[k] = p[k] * decay - step * m[k] / (sqrtf(v[k]) * inv_sqrt_bc2 + c->eps);
        }
    }
}

float lqa_lr_at(long t, long total, float lr, long warmup, lqa_schedule s) {
    if (t < warmup) return lr * (float)(t + 1) / (float)warmup;
    if (s == LQA_SCHED_CONSTANT || total <= warmup) return lr;
    double progress = (double)(t - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return (float)(lr * 0.5 * (1.0 + cos(M_PI * progress)));
}
