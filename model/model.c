/* model/model.c: the LLaMA model of model.h, the one model core of lqa-sft and lqa-eval: tensor
 * tables (the only place the layout is computed), random init, LoRA, one forward + backward on
 * a token batch, and the KV-cache forward of inference, all built from the ops in kernels/ and
 * called through a backend table (kernels/backend.h: CPU or CUDA, chosen at run time; the
 * parameters, gradients and workspace are that backend's memory).
 *
 * Per layer (x is the residual stream, N = B*T rows):
 *   xn1 = rmsnorm(x) ; q,k,v = xn1 W^T (+LoRA) ; rope(q,k) ; att = attention(q,k,v) ;
 *   x2 = x + att Wo^T ; xn2 = rmsnorm(x2) ; h = silu(xn2 Wg^T) * (xn2 Wu^T) ; x' = x2 + h Wd^T
 * then xf = rmsnorm(x_L) and the chunked lm_head + cross-entropy. Inference runs the same layer
 * with k and v written into the cache and attention's Tq < Tk form over it.
 *
 * Memory: every buffer of a step is carved out of ONE allocation, the workspace, planned once per
 * run for the largest batch (lqa_workspace_new) and re-carved per batch by the same planner, so
 * the estimate (lqa_workspace_bytes) is exact and linear in T, and no step allocates. With
 * checkpointing the layer inputs and attention outputs are kept and one layer's other
 * activations are recomputed in the backward; without it every layer's activations are kept.
 *
 * This file: the parameter layout, random init, LoRA and its merge, gradient layouts, option
 * checks, and moving the parameters between backends. workspace.c: the step's memory plan and
 * workspace; step.c: the forward and backward. What the three share is in step_mem.h.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/matmul.h"
#include "model/step_mem.h"

const int lqa_lora_layer_tensor[N_LORA_TARGETS] = {T_Q, T_K, T_V, T_O, T_GATE, T_UP, T_DOWN};
static const char *const LORA_NAME[N_LORA_TARGETS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                      "mlp.down_proj"};

/* ---- tensor tables ------------------------------------------------------------------------- */

static void push_tensor(lqa_tensor_info *t, int *n, size_t *off, const char *name, int64_t rows, int64_t cols) {
    lqa_tensor_info *ti = &t[(*n)++];
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->ndim = cols > 0 ? 2 : 1;
    ti->shape[0] = rows;
    ti->shape[1] = cols > 0 ? cols : 0;
    ti->numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    ti->offset = *off;
    ti->lp_offset = LQA_NOT_LORA_PLUS; /* lqa_model_shape sets lora+'s */
    *off += ti->numel;
}

void lqa_layer_tensor_shape(const lqa_config *c, int k, int64_t *out, int64_t *in) {
    int64_t D = c->dim, hd = c->dim / c->n_heads, Hq = (int64_t)c->n_heads * hd, Hkv = (int64_t)c->n_kv_heads * hd,
            F = c->hidden_dim;
    static const int is_norm[N_LAYER_TENSORS] = {1, 0, 0, 0, 0, 1, 0, 0, 0};
    int64_t outs[N_LAYER_TENSORS] = {D, Hq, Hkv, Hkv, D, D, F, F, D};
    int64_t ins[N_LAYER_TENSORS] = {0, D, D, D, Hq, 0, D, D, F};
    *out = outs[k];
    *in = is_norm[k] ? 0 : ins[k];
}

static const char *const LAYER_NAME[N_LAYER_TENSORS] = {
    "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

void lqa_model_shape(lqa_model *m, const lqa_config *cfg) {
    lqaCheck(cfg->n_heads > 0 && cfg->n_kv_heads > 0 && cfg->n_heads % cfg->n_kv_heads == 0,
             "model config: n_kv_heads=%d must divide n_heads=%d", cfg->n_kv_heads, cfg->n_heads);
    lqaCheck(cfg->dim % cfg->n_heads == 0 && (cfg->dim / cfg->n_heads) % 2 == 0,
             "model config: hidden_size=%d must be n_heads=%d times an even head dim", cfg->dim, cfg->n_heads);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    int L = cfg->n_layers, n = 0;
    m->tensors = lqa_calloc((size_t)L * N_LAYER_TENSORS + 3, sizeof(lqa_tensor_info));
    size_t off = 0;
    char name[128];
    push_tensor(m->tensors, &n, &off, "model.embed_tokens.weight", cfg->vocab_size, cfg->dim);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < N_LAYER_TENSORS; k++) {
            int64_t out, in;
            lqa_layer_tensor_shape(cfg, k, &out, &in);
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, LAYER_NAME[k]);
            push_tensor(m->tensors, &n, &off, name, out, in);
        }
    push_tensor(m->tensors, &n, &off, "model.norm.weight", cfg->dim, 0);
    if (!cfg->tie_embeddings) push_tensor(m->tensors, &n, &off, "lm_head.weight", cfg->vocab_size, cfg->dim);
    m->n_tensors = n;
    m->n_params = off;
    /* lora+ trains the embedding and the norms (the 1-d tensors): adapter.c's
     * lqa_is_lora_plus_tensor names the same set; a tied lm_head is the embedding */
    size_t lp = 0, b16 = 0;
    for (int t = 0; t < n; t++) {
        lqa_tensor_info *ti = &m->tensors[t];
        ti->lp_offset = (t == 0 || ti->ndim == 1) ? lp : LQA_NOT_LORA_PLUS;
        ti->b16_offset = ti->lp_offset == LQA_NOT_LORA_PLUS ? b16 : LQA_NOT_BF16; /* the bf16 layout */
        if (ti->lp_offset != LQA_NOT_LORA_PLUS) lp += ti->numel;
        else b16 += ti->numel;
    }
    m->n_lora_plus = lp;
    m->n_params16 = b16;
}

void lqa_model_alloc(lqa_model *m, const lqa_config *cfg) {
    lqa_model_shape(m, cfg);
    m->params = lqa_malloc(sizeof(float) * m->n_params);
}

/* Seeds a stream per (tensor, chunk) so init is the same whatever the thread count. */
static void fill_normal(float *x, size_t n, float std, uint64_t seed, uint64_t tensor) {
    enum { CHUNK = 1 << 16 };
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        lqa_rng r;
        lqa_rng_seed(&r, seed ^ (tensor << 32 | c) * 0x9E3779B97F4A7C15ull);
        size_t e = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        for (size_t i = c * CHUNK; i < e; i++) x[i] = std * lqa_rng_normal(&r);
    }
}

void lqa_model_init_random(lqa_model *m, uint64_t seed) {
    lqaCheck(lqa_model_backend(m)->host_memory && m->params, "init: the model is in %s memory%s",
             lqa_model_backend(m)->name, m->params ? "" : ", in the bf16 layout");
    for (int t = 0; t < m->n_tensors; t++) {
        lqa_tensor_info *ti = &m->tensors[t];
        float *x = m->params + ti->offset;
        if (ti->ndim == 1) /* RMSNorm weights */
            for (size_t i = 0; i < ti->numel; i++) x[i] = 1.0f;
        else
            fill_normal(x, ti->numel, 0.02f, seed, (uint64_t)t);
    }
}

/* Norms 1; every matrix cut from one tile of normal(0, 0.02) values, starting at a place of its
 * own and wrapping around. On a device the tile is uploaded once and the rest are device copies.
 * In the bf16 layout (lqa_model_alloc_bf16) the bf16 tensors are cut from the tile rounded once,
 * so they equal the fp32 init rounded to bf16. */
void lqa_model_init_tiled(lqa_model *m, uint64_t seed) {
    enum { TILE_MAX = 1 << 24 }; /* 64 MB */
    const lqa_backend *be = lqa_model_backend(m);
    size_t tile_n = 0, norm_n = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        size_t *most = m->tensors[t].ndim == 1 ? &norm_n : &tile_n;
        if (m->tensors[t].numel > *most) *most = m->tensors[t].numel;
    }
    if (tile_n > TILE_MAX) tile_n = TILE_MAX;
    float *host = lqa_malloc(sizeof(float) * (tile_n > norm_n ? tile_n : norm_n));
    fill_normal(host, tile_n, 0.02f, seed, 0);
    float *tile = be->alloc(sizeof(float) * tile_n);
    be->to_device(tile, host, sizeof(float) * tile_n);
    char *tile16 = NULL;
    if (!m->params) {
        lqaCheck(m->params16 && m->be16 == be, "init: the model has no parameters on %s", be->name);
        tile16 = be->alloc(2 * tile_n);
        be->to_bf16(tile16, tile, tile_n);
    }
    for (size_t i = 0; i < norm_n; i++) host[i] = 1.0f;
    for (int t = 0; t < m->n_tensors; t++) {
        const lqa_tensor_info *ti = &m->tensors[t];
        float *x = lqa_model_base_f32(m, t);
        if (ti->ndim == 1) {
            be->to_device(x, host, sizeof(float) * ti->numel);
            continue;
        }
        /* fp32 (x) or bf16 (y) destination, 4 or 2 bytes an element */
        char *dst = x ? (char *)x : (char *)m->params16 + 2 * ti->b16_offset, *src = x ? (char *)tile : tile16;
        size_t esize = x ? sizeof(float) : 2;
        size_t start = (size_t)((uint64_t)(t + 1) * 0x9E3779B97F4A7C15ull % tile_n);
        for (size_t done = 0, k; done < ti->numel; done += k, start = 0) {
            k = ti->numel - done < tile_n - start ? ti->numel - done : tile_n - start;
            be->copy(dst + esize * done, src + esize * start, esize * k);
        }
    }
    be->free(tile16);
    be->free(tile);
    free(host);
}

void lqa_model_alloc_on(lqa_model *m, const lqa_backend *be) {
    lqaCheck(!m->params, "lqa_model_alloc_on: the model has parameters already");
    lqa_model_to_backend(m, be); /* LoRA, if any; params is NULL */
    m->params = be->alloc(sizeof(float) * m->n_params);
}

void lqa_model_shape_lora(lqa_model *m, int targets, int rank, float alpha) {
    lqaCheck(rank > 0 && targets > 0 && targets < (1 << N_LORA_TARGETS), "LoRA: rank %d, targets 0x%x", rank,
             targets);
    lqaCheck(lqa_model_backend(m)->host_memory, "LoRA is added on the host, before the model moves to a device");
    free(m->lora);
    free(m->lora_tensors);
    m->lora = NULL;
    int L = m->cfg.n_layers, n = 0;
    m->lora_targets = targets;
    m->lora_rank = rank;
    m->lora_alpha = alpha;
    m->lora_tensors = lqa_calloc((size_t)L * N_LORA_TARGETS * 2, sizeof(lqa_tensor_info));
    size_t off = 0;
    char name[128];
    for (int l = 0; l < L; l++)
        for (int i = 0; i < N_LORA_TARGETS; i++) {
            if (!(targets & (1 << i))) continue;
            int64_t out, in;
            lqa_layer_tensor_shape(&m->cfg, lqa_lora_layer_tensor[i], &out, &in);
            const char *fmt = "base_model.model.model.layers.%d.%s.lora_%c.weight";
            snprintf(name, sizeof name, fmt, l, LORA_NAME[i], 'A');
            push_tensor(m->lora_tensors, &n, &off, name, rank, in);
            snprintf(name, sizeof name, fmt, l, LORA_NAME[i], 'B');
            push_tensor(m->lora_tensors, &n, &off, name, out, rank);
        }
    m->n_lora_tensors = n;
    m->n_lora = off;
}

void lqa_model_add_lora(lqa_model *m, int targets, int rank, float alpha, uint64_t seed) {
    lqa_model_shape_lora(m, targets, rank, alpha);
    int n = m->n_lora_tensors;
    size_t off = m->n_lora;
    m->lora = lqa_calloc(off, sizeof(float)); /* B = 0 */
    /* PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)) */
    for (int t = 0; t < n; t += 2) {
        lqa_tensor_info *A = &m->lora_tensors[t];
        float bound = 1.0f / sqrtf((float)A->shape[1]);
        lqa_rng r;
        lqa_rng_seed(&r, seed ^ ((uint64_t)t + 1) * 0xD1B54A32D192ED03ull);
        float *a = m->lora + A->offset;
        for (size_t i = 0; i < A->numel; i++) a[i] = (float)((2.0 * lqa_rng_uniform(&r) - 1.0) * bound);
    }
}

void lqa_model_free(lqa_model *m) {
    const lqa_backend *be = lqa_model_backend(m);
    if (m->be16) m->be16->free(m->params16);
    be->free(m->params);
    be->free(m->params_lp);
    free(m->tensors);
    be->free(m->lora);
    free(m->lora_tensors);
    memset(m, 0, sizeof *m);
}

float *lqa_model_tensor(lqa_model *m, const char *name, const lqa_tensor_info **info) {
    lqaCheck(lqa_model_backend(m)->host_memory, "lqa_model_tensor: the model is in %s memory; bring it to the host",
             lqa_model_backend(m)->name);
    for (int t = 0; t < m->n_tensors; t++)
        if (strcmp(m->tensors[t].name, name) == 0) {
            float *p = lqa_model_base_f32(m, t);
            if (p && info) *info = &m->tensors[t];
            return p;
        }
    for (int t = 0; t < m->n_lora_tensors; t++)
        if (strcmp(m->lora_tensors[t].name, name) == 0) {
            if (info) *info = &m->lora_tensors[t];
            return m->lora + m->lora_tensors[t].offset;
        }
    return NULL;
}

int lqa_lora_index(const lqa_model *m, int l, int i) {
    if (!m->n_lora || !(m->lora_targets & (1 << i))) return -1;
    int per_layer = 0, before = 0;
    for (int j = 0; j < N_LORA_TARGETS; j++)
        if (m->lora_targets & (1 << j)) {
            if (j < i) before++;
            per_layer++;
        }
    return 2 * (l * per_layer + before);
}

void lqa_model_merge_lora(lqa_model *m) {
    if (!m->lora) return;
    lqaCheck(lqa_model_backend(m)->host_memory, "merge: the model is in %s memory; bring it to the host",
             lqa_model_backend(m)->name);
    lqaCheck(m->params, "merge: the model is in the bf16 layout; merging needs its fp32 weights");
    float scale = m->lora_alpha / m->lora_rank;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < N_LORA_TARGETS; i++) {
            int t = lqa_lora_index(m, l, i);
            if (t < 0) continue;
            const lqa_tensor_info *A = &m->lora_tensors[t], *B = &m->lora_tensors[t + 1];
            int out = (int)B->shape[0], in = (int)A->shape[1], r = m->lora_rank;
            /* W[out,in] += scale * B[out,r] A[r,in] */
            gemm_cpu(0, 0, out, in, r, scale, m->lora + B->offset, r, m->lora + A->offset, in, 1.0f,
                     layer_w(m, l, lqa_lora_layer_tensor[i]), in);
        }
    free(m->lora);
    free(m->lora_tensors);
    m->lora = NULL;
    m->lora_tensors = NULL;
    m->n_lora = 0;
    m->n_lora_tensors = 0;
    m->lora_targets = 0;
}

size_t lqa_grads_params_floats(const lqa_model *m, lqa_train_set train) {
    return train == LQA_TRAIN_LORA ? 0 : train == LQA_TRAIN_LORA_PLUS ? m->n_lora_plus : m->n_params;
}

float *lqa_grad_at(float *d_params, int compact, const lqa_model *m, size_t t) {
    if (!d_params) return NULL;
    if (!compact) return d_params + m->tensors[t].offset;
    return m->tensors[t].lp_offset == LQA_NOT_LORA_PLUS ? NULL : d_params + m->tensors[t].lp_offset;
}

float *lqa_grads_tensor(const lqa_grads *g, const lqa_model *m, int t) {
    return g ? lqa_grad_at(g->d_params, g->compact, m, (size_t)t) : NULL;
}

/* ---- options ------------------------------------------------------------------------------- */

int lqa_s2_group(int T, float ratio) {
    double g = (double)T * ratio;
    long gi = lround(g);
    if (gi <= 0 || fabs(g - gi) > 1e-6 || gi % 2 != 0 || T % gi != 0) return -1;
    return (int)gi;
}

int lqa_model_check_opts(const lqa_model *m, int T, const lqa_step_opts *o, lqa_err *err) {
    if (T < 2) return lqa_err_set(err, "ctx %d: a training sequence needs at least 2 tokens", T);
    if (o->attn == LQA_ATTN_S2) {
        if (!(o->group_ratio > 0 && o->group_ratio <= 1))
            return lqa_err_set(err, "group ratio %g: expected a value in (0, 1], e.g. 0.25", o->group_ratio);
        if (lqa_s2_group(T, o->group_ratio) < 0) {
            int lo = T - 1, hi = T + 1;
            while (lo > 1 && lqa_s2_group(lo, o->group_ratio) < 0) lo--;
            while (hi < 4 * T + 64 && lqa_s2_group(hi, o->group_ratio) < 0) hi++;
            char near[96] = "";
            if (lo > 1) snprintf(near, sizeof near, "%d or ", lo);
            return lqa_err_set(err,
                               "ctx %d with S2-Attn group ratio %g gives group size %g: S2-Attn needs ctx * ratio to "
                               "be an even integer that divides ctx; ctx values that work nearby: %s%d",
                               T, o->group_ratio, T * (double)o->group_ratio, near, hi);
        }
    }
    return 0;
}

/* ---- where the parameters live -------------------------------------------------------------- */

const lqa_backend *lqa_model_backend(const lqa_model *m) {
    return m->be ? m->be : lqa_backend_cpu();
}

/* n floats at p (in from's memory) moved into to's memory; from's copy is freed. */
static float *move_floats(float *p, size_t n, const lqa_backend *from, const lqa_backend *to) {
    if (!p || from == to) return p;
    size_t bytes = sizeof(float) * n;
    float *q = to->alloc(bytes);
    if (to->host_memory) {
        from->to_host(q, p, bytes);
    } else if (from->host_memory) {
        to->to_device(q, p, bytes);
    } else { /* device to another device: through the host */
        float *h = lqa_malloc(bytes);
        from->to_host(h, p, bytes);
        to->to_device(q, h, bytes);
        free(h);
    }
    from->free(p);
    return q;
}

float *lqa_model_base_f32(const lqa_model *m, int t) {
    const lqa_tensor_info *ti = &m->tensors[t];
    if (m->params) return m->params + ti->offset;
    if (m->params_lp && ti->lp_offset != LQA_NOT_LORA_PLUS) return m->params_lp + ti->lp_offset;
    return NULL;
}

void lqa_model_to_backend(lqa_model *m, const lqa_backend *be) {
    const lqa_backend *from = lqa_model_backend(m);
    if (from == be) return;
    m->params = move_floats(m->params, m->n_params, from, be);
    m->params_lp = move_floats(m->params_lp, m->n_lora_plus, from, be);
    m->lora = move_floats(m->lora, m->n_lora, from, be);
    m->be = be;
}

int lqa_model_bf16_check(const lqa_backend *be, const lqa_config *cfg, lqa_train_set train, lqa_err *err) {
    if (!be->linear_bf16_forward || !be->linear_bf16_backward || !be->lora_bf16_forward || !be->lora_bf16_backward ||
        !be->to_bf16 || !be->from_bf16 || !be->attention_bf16_forward || !be->attention_bf16_backward ||
        !be->attention_bf16_cached_forward || !be->crossentropy_bf16_rows)
        return lqa_err_set(err, "--dtype bf16: the %s backend has no bf16 kernels; use --device cuda", be->name);
    int hd = cfg->dim / cfg->n_heads;
    if (hd % 16 != 0 || hd > 128)
        return lqa_err_set(err, "--dtype bf16: head dim %d; the bf16 attention takes multiples of 16 up to 128 "
                                "(--dtype fp32 runs any model)", hd);
    if (train == LQA_TRAIN_FULL)
        return lqa_err_set(err, "--dtype bf16 with --train full: not yet (the bf16 weights would need refreshing "
                                "after every optimizer step); use lora+ or lora, or --dtype fp32");
    return 0;
}

void lqa_model_alloc_bf16(lqa_model *m, const lqa_config *cfg, const lqa_backend *be) {
    lqa_model_shape(m, cfg);
    m->params_lp = lqa_calloc(m->n_lora_plus, sizeof(float));
    m->be16 = be;
    m->params16 = be->alloc(2 * m->n_params16);
}

int lqa_model_use_bf16(lqa_model *m, lqa_train_set train, lqa_err *err) {
    const lqa_backend *be = lqa_model_backend(m);
    if (lqa_model_bf16_check(be, &m->cfg, train, err)) return -1;
    if (!m->params) {
        lqaCheck(m->be16 == be, "--dtype bf16: the model's bf16 weights are in %s memory, the model in %s",
                 m->be16 ? m->be16->name : "no", be->name);
        return 0;
    }
    /* tensor by tensor, so the fp32 buffer is the only full copy and it goes at the end */
    m->be16 = be;
    m->params16 = be->alloc(2 * m->n_params16);
    m->params_lp = be->alloc(sizeof(float) * m->n_lora_plus);
    for (int t = 0; t < m->n_tensors; t++) {
        const lqa_tensor_info *ti = &m->tensors[t];
        const float *src = m->params + ti->offset;
        if (ti->lp_offset != LQA_NOT_LORA_PLUS)
            be->copy(m->params_lp + ti->lp_offset, src, sizeof(float) * ti->numel);
        else
            be->to_bf16((char *)m->params16 + 2 * ti->b16_offset, src, ti->numel);
    }
    be->free(m->params);
    m->params = NULL;
    return 0;
}
