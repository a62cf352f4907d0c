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
 */
#include "model/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/attention.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

enum { N_LAYER_TENSORS = 9, N_LORA_TARGETS = 7 };
/* Per-layer tensor order in params (model.h). */
enum { T_LN1, T_Q, T_K, T_V, T_O, T_LN2, T_GATE, T_UP, T_DOWN };
/* LoRA target i (q,k,v,o,gate,up,down) is the layer tensor LORA_TENSOR[i]. */
static const int LORA_TENSOR[N_LORA_TARGETS] = {T_Q, T_K, T_V, T_O, T_GATE, T_UP, T_DOWN};
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

/* [out, in] of layer tensor k (norms: [D, 0]). */
static void layer_tensor_shape(const lqa_config *c, int k, int64_t *out, int64_t *in) {
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
            layer_tensor_shape(cfg, k, &out, &in);
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, LAYER_NAME[k]);
            push_tensor(m->tensors, &n, &off, name, out, in);
        }
    push_tensor(m->tensors, &n, &off, "model.norm.weight", cfg->dim, 0);
    if (!cfg->tie_embeddings) push_tensor(m->tensors, &n, &off, "lm_head.weight", cfg->vocab_size, cfg->dim);
    m->n_tensors = n;
    m->n_params = off;
    /* lora+ trains the embedding and the norms (the 1-d tensors): adapter.c's
     * lqa_is_lora_plus_tensor names the same set; a tied lm_head is the embedding */
    size_t lp = 0;
    for (int t = 0; t < n; t++) {
        lqa_tensor_info *ti = &m->tensors[t];
        ti->lp_offset = (t == 0 || ti->ndim == 1) ? lp : LQA_NOT_LORA_PLUS;
        if (ti->lp_offset != LQA_NOT_LORA_PLUS) lp += ti->numel;
    }
    m->n_lora_plus = lp;
}

void lqa_model_alloc(lqa_model *m, const lqa_config *cfg) {
    lqa_model_shape(m, cfg);
    m->params = lqa_malloc(sizeof(float) * m->n_params);
}

static size_t layer_tensor_index(int l, int k) { return 1 + (size_t)l * N_LAYER_TENSORS + k; }
static float *layer_w(const lqa_model *m, int l, int k) {
    return m->params + m->tensors[layer_tensor_index(l, k)].offset;
}
static size_t final_norm_index(const lqa_model *m) { return 1 + (size_t)m->cfg.n_layers * N_LAYER_TENSORS; }
/* lm_head: its own tensor, or the embedding when tied. */
static size_t lm_head_offset(const lqa_model *m) {
    return m->cfg.tie_embeddings ? 0 : m->tensors[final_norm_index(m) + 1].offset;
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
    lqaCheck(lqa_model_backend(m)->host_memory, "init: the model is in %s memory", lqa_model_backend(m)->name);
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
 * own and wrapping around. On a device the tile is uploaded once and the rest are device copies. */
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
    for (size_t i = 0; i < norm_n; i++) host[i] = 1.0f;
    for (int t = 0; t < m->n_tensors; t++) {
        const lqa_tensor_info *ti = &m->tensors[t];
        float *x = m->params + ti->offset;
        if (ti->ndim == 1) {
            be->to_device(x, host, sizeof(float) * ti->numel);
            continue;
        }
        size_t start = (size_t)((uint64_t)(t + 1) * 0x9E3779B97F4A7C15ull % tile_n);
        for (size_t done = 0, k; done < ti->numel; done += k, start = 0) {
            k = ti->numel - done < tile_n - start ? ti->numel - done : tile_n - start;
            be->copy(x + done, tile + start, sizeof(float) * k);
        }
    }
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
            layer_tensor_shape(&m->cfg, LORA_TENSOR[i], &out, &in);
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
    be->free(m->params16);
    be->free(m->params);
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
            if (info) *info = &m->tensors[t];
            return m->params + m->tensors[t].offset;
        }
    for (int t = 0; t < m->n_lora_tensors; t++)
        if (strcmp(m->lora_tensors[t].name, name) == 0) {
            if (info) *info = &m->lora_tensors[t];
            return m->lora + m->lora_tensors[t].offset;
        }
    return NULL;
}

/* Index into lora_tensors of layer l target i's A (B follows), or -1 when not a target. */
static int lora_index(const lqa_model *m, int l, int i) {
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
    float scale = m->lora_alpha / m->lora_rank;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < N_LORA_TARGETS; i++) {
            int t = lora_index(m, l, i);
            if (t < 0) continue;
            const lqa_tensor_info *A = &m->lora_tensors[t], *B = &m->lora_tensors[t + 1];
            int out = (int)B->shape[0], in = (int)A->shape[1], r = m->lora_rank;
            /* W[out,in] += scale * B[out,r] A[r,in] */
            gemm_cpu(0, 0, out, in, r, scale, m->lora + B->offset, r, m->lora + A->offset, in, 1.0f,
                     layer_w(m, l, LORA_TENSOR[i]), in);
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

/* The gradient of base tensor t in a d_params buffer of either layout (NULL when it has none). */
static float *grad_at(float *d_params, int compact, const lqa_model *m, size_t t) {
    if (!d_params) return NULL;
    if (!compact) return d_params + m->tensors[t].offset;
    return m->tensors[t].lp_offset == LQA_NOT_LORA_PLUS ? NULL : d_params + m->tensors[t].lp_offset;
}

float *lqa_grads_tensor(const lqa_grads *g, const lqa_model *m, int t) {
    return g ? grad_at(g->d_params, g->compact, m, (size_t)t) : NULL;
}

/* ---- options ------------------------------------------------------------------------------- */

/* The S2 group size for T, or -1 when T * ratio is not an even integer dividing T. */
static int s2_group(int T, float ratio) {
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
        if (s2_group(T, o->group_ratio) < 0) {
            int lo = T - 1, hi = T + 1;
            while (lo > 1 && s2_group(lo, o->group_ratio) < 0) lo--;
            while (hi < 4 * T + 64 && s2_group(hi, o->group_ratio) < 0) hi++;
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

void lqa_model_to_backend(lqa_model *m, const lqa_backend *be) {
    const lqa_backend *from = lqa_model_backend(m);
    if (from == be) return;
    from->free(m->params16); /* files and the host work on fp32 */
    m->params16 = NULL;
    m->params = move_floats(m->params, m->n_params, from, be);
    m->lora = move_floats(m->lora, m->n_lora, from, be);
    m->be = be;
}

int lqa_model_use_bf16(lqa_model *m, lqa_train_set train, lqa_err *err) {
    const lqa_backend *be = lqa_model_backend(m);
    if (!be->linear_bf16_forward || !be->to_bf16 || !be->attention_bf16_forward)
        return lqa_err_set(err, "--dtype bf16: the %s backend has no bf16 kernels; use --device cuda", be->name);
    int hd = m->cfg.dim / m->cfg.n_heads;
    if (hd % 16 != 0 || hd > 128)
        return lqa_err_set(err, "--dtype bf16: head dim %d; the bf16 attention takes multiples of 16 up to 128", hd);
    if (train == LQA_TRAIN_FULL)
        return lqa_err_set(err, "--dtype bf16 with --train full: not yet (the bf16 weights would need refreshing "
                                "after every optimizer step); use lora+ or lora, or --dtype fp32");
    be->free(m->params16);
    m->params16 = be->alloc(2 * m->n_params);
    be->to_bf16(m->params16, m->params, m->n_params);
    return 0;
}

/* ---- the step's memory plan ----------------------------------------------------------------- */

typedef struct layer_acts {
    float *rstd1, *xn1, *q, *k, *v, *att, *lse, *x2, *rstd2, *xn2, *g, *u, *h;
    float *lora_t[N_LORA_TARGETS]; /* x A^T of each LoRA target, [N, r] */
} layer_acts;

/* Every buffer of a step, carved out of the workspace's one allocation (backend memory). */
typedef struct step_mem {
    float *cos_t, *sin_t;  /* RoPE table [T, hd/2] each; first, so re-carving keeps it */
    int32_t *tokens, *seg, *targets, *rows; /* the batch, uploaded per micro-batch, [N] each */
    double *loss_sum;      /* the batch's summed loss */
    float *xs;          /* layer inputs, (L+1) x [N, D]; xs[L] is the final residual */
    /* checkpointing with backward: each layer's attention output and lse, L x [N, H*hd] and
     * L x [N, H] (selective recomputation: the backward recomputes the projections, not the
     * attention, which is most of a layer's forward at long ctx; memory stays linear) */
    float *att_saved, *lse_saved;
    layer_acts *acts;   /* (host array) L sets (no checkpointing) or 1 set reused */
    int n_acts;
    float *xf, *rstdf;  /* final norm output, [N, D], [N] */
    /* backward scratch, shared by all layers */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dg, *du, *dh, *dxf, *lora_scratch;
    void *x16;             /* bf16 weights: an activation rounded to bf16, N * max(D, H*hd, F) */
    void *attn16;          /* bf16 attention: q, k, v, out, dout rounded to bf16 */
    float *attn_scratch, *ce_scratch;
    int ce_chunk;
} step_mem;

typedef struct arena {
    char *base;
    size_t used;
    size_t saved; /* of used: the per-layer checkpoints (layer inputs, saved attention) */
} arena;

/* Bump allocation, 256-byte aligned (what cuBLAS and coalesced loads like); with base == NULL
 * only counts (the planner runs twice: size, then carve). */
static void *take(arena *a, size_t bytes) {
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 255) & ~(size_t)255;
    return p;
}
#define TAKE_F(a, n) ((float *)take((a), sizeof(float) * (size_t)(n)))
#define TAKE_I(a, n) ((int32_t *)take((a), sizeof(int32_t) * (size_t)(n)))

static int ce_chunk_rows(int N, int V) {
    int c = (1 << 22) / (V > 0 ? V : 1); /* about 16 MiB of logits at a time */
    if (c < 16) c = 16;
    if (c > 1024) c = 1024;
    return c < N ? c : N;
}

static int has_lora(const lqa_model *m) {
    return m->n_lora > 0 && m->lora_rank > 0;
}

/* own_attention = 0: att and lse point into the per-layer saved slots instead. */
static void plan_acts(arena *a, layer_acts *la, const lqa_model *m, size_t N, int own_attention) {
    const lqa_config *c = &m->cfg;
    size_t D = c->dim, hd = c->dim / c->n_heads, Hq = c->n_heads * hd, Hkv = c->n_kv_heads * hd, F = c->hidden_dim;
    la->rstd1 = TAKE_F(a, N);
    la->xn1 = TAKE_F(a, N * D);
    la->q = TAKE_F(a, N * Hq);
    la->k = TAKE_F(a, N * Hkv);
    la->v = TAKE_F(a, N * Hkv);
    la->att = own_attention ? TAKE_F(a, N * Hq) : NULL;
    la->lse = own_attention ? TAKE_F(a, N * c->n_heads) : NULL;
    la->x2 = TAKE_F(a, N * D);
    la->rstd2 = TAKE_F(a, N);
    la->xn2 = TAKE_F(a, N * D);
    la->g = TAKE_F(a, N * F);
    la->u = TAKE_F(a, N * F);
    la->h = TAKE_F(a, N * F);
    for (int i = 0; i < N_LORA_TARGETS; i++)
        la->lora_t[i] = (has_lora(m) && (m->lora_targets & (1 << i))) ? TAKE_F(a, N * m->lora_rank) : NULL;
}

static attn_params attn_of(const lqa_model *m, int B, int T, const lqa_step_opts *o, const int32_t *seg) {
    attn_params p = {.B = B, .Tq = T, .Tk = T, .H = m->cfg.n_heads, .KV = m->cfg.n_kv_heads,
                     .hd = m->cfg.dim / m->cfg.n_heads, .segment_ids = seg};
    if (o && o->attn == LQA_ATTN_S2) p.group = s2_group(T, o->group_ratio);
    return p;
}

/* Carves (or, with a->base NULL, sizes) every buffer of a step on backend be. acts: host array
 * of at least L entries (may be NULL while sizing). backward: whether gradients are computed
 * (then without checkpointing all L layers keep their activations). */
static void plan_step(arena *a, step_mem *s, layer_acts *acts, const lqa_model *m, const lqa_backend *be, int B,
                      int T, const lqa_step_opts *o, int backward) {
    const lqa_config *c = &m->cfg;
    size_t N = (size_t)B * T, D = c->dim, hd = c->dim / c->n_heads, Hq = c->n_heads * hd,
           Hkv = c->n_kv_heads * hd, F = c->hidden_dim;
    int L = c->n_layers;
    memset(s, 0, sizeof *s);
    s->cos_t = TAKE_F(a, (size_t)T * hd / 2);
    s->sin_t = TAKE_F(a, (size_t)T * hd / 2);
    s->tokens = TAKE_I(a, N);
    s->seg = TAKE_I(a, N);
    s->targets = TAKE_I(a, N);
    s->rows = TAKE_I(a, N);
    s->loss_sum = take(a, sizeof(double));
    size_t before = a->used;
    s->xs = TAKE_F(a, (L + 1) * N * D);
    s->n_acts = (backward && !(o && o->checkpointing)) ? L : 1;
    int saved_attention = backward && s->n_acts == 1; /* (pointers are NULL while sizing) */
    if (saved_attention) {
        s->att_saved = TAKE_F(a, (size_t)L * N * Hq);
        s->lse_saved = TAKE_F(a, (size_t)L * N * c->n_heads);
    }
    a->saved += a->used - before;
    s->acts = acts;
    for (int l = 0; l < s->n_acts; l++) {
        layer_acts tmp;
        plan_acts(a, &tmp, m, N, !saved_attention);
        if (acts) acts[l] = tmp;
    }
    s->xf = TAKE_F(a, N * D);
    s->rstdf = TAKE_F(a, N);
    attn_params ap = attn_of(m, B, T, o, NULL);
    s->attn_scratch = TAKE_F(a, be->attention_scratch_floats(&ap));
    s->ce_chunk = ce_chunk_rows((int)N, c->vocab_size);
    s->ce_scratch = TAKE_F(a, crossentropy_scratch_floats(s->ce_chunk, c->dim, c->vocab_size));
    if (m->params16) {
        size_t widest = D > Hq ? D : Hq;
        s->x16 = take(a, 2 * N * (widest > F ? widest : F));
        if (be->attention_bf16_scratch_bytes) s->attn16 = take(a, be->attention_bf16_scratch_bytes(&ap));
    }
    if (!backward) return;
    s->dx = TAKE_F(a, N * D);
    s->dxn = TAKE_F(a, N * D);
    s->dxf = TAKE_F(a, N * D);
    s->dq = TAKE_F(a, N * Hq);
    s->datt = TAKE_F(a, N * Hq);
    s->dk = TAKE_F(a, N * Hkv);
    s->dv = TAKE_F(a, N * Hkv);
    s->dg = TAKE_F(a, N * F);
    s->du = TAKE_F(a, N * F);
    s->dh = TAKE_F(a, N * F);
    s->lora_scratch = has_lora(m) ? TAKE_F(a, N * m->lora_rank) : NULL;
}

/* Bytes of a step's plan; *saved (may be NULL): of them, the per-layer checkpoints. */
static size_t plan_bytes(const lqa_model *m, const lqa_backend *be, int B, int T, const lqa_step_opts *o,
                         int backward, size_t *saved) {
    arena a = {0};
    step_mem s;
    plan_step(&a, &s, NULL, m, be, B, T, o, backward);
    if (saved) *saved = a.saved;
    return a.used;
}

size_t lqa_model_step_bytes(const lqa_model *m, int B, int T, const lqa_step_opts *o) {
    return plan_bytes(m, lqa_backend_cpu(), B, T, o, 1, NULL);
}

/* ---- the persistent workspace --------------------------------------------------------------- */

struct lqa_workspace {
    const lqa_backend *be;
    int B, T, backward;
    size_t bytes;         /* capacity of base */
    char *base;           /* backend memory, carved by plan_step for each batch */
    layer_acts *acts;     /* host, L entries */
    step_mem s;           /* the current carving */
    int32_t *targets_h, *rows_h; /* host staging of the batch, [B*T] each */
    float *rope_h;        /* host staging of the RoPE table, cos then sin */
    int rope_T, rope_pos0; /* the table cos_t/sin_t hold: positions pos0.. pos0+T-1 (T 0: none yet) */
    rope_spec rope;        /* the RoPE settings it was built with */
    double *loss_acc;     /* backend: lqa_model_step's accumulator */
};

size_t lqa_workspace_bytes_split(const lqa_model *m, const lqa_backend *be, int B, int T, const lqa_step_opts *o,
                                 int backward, size_t *checkpoints) {
    size_t saved = 0, bytes = plan_bytes(m, be, B, T, o, backward, &saved);
    if (o && o->attn == LQA_ATTN_S2) { /* a run may end with full attention (--full-attn-last) */
        lqa_step_opts full = *o;
        full.attn = LQA_ATTN_FULL;
        size_t fsaved = 0, fb = plan_bytes(m, be, B, T, &full, backward, &fsaved);
        if (fb > bytes) bytes = fb, saved = fsaved;
    }
    if (checkpoints) *checkpoints = saved;
    return bytes + 256; /* loss_acc */
}

size_t lqa_workspace_bytes(const lqa_model *m, const lqa_backend *be, int B, int T, const lqa_step_opts *o,
                           int backward) {
    return lqa_workspace_bytes_split(m, be, B, T, o, backward, NULL);
}

static void set_threads(const lqa_step_opts *o) {
    int want = o && o->threads > 0 ? o->threads : 0;
    if (want != kernels_get_threads() || want == 0) kernels_set_threads(want);
}

lqa_workspace *lqa_workspace_new(const lqa_model *m, int B, int T, const lqa_step_opts *o, int backward) {
    set_threads(o);
    lqa_workspace *ws = lqa_calloc(1, sizeof *ws);
    ws->be = lqa_model_backend(m);
    ws->B = B;
    ws->T = T;
    ws->backward = backward;
    ws->bytes = lqa_workspace_bytes(m, ws->be, B, T, o, backward);
    ws->base = ws->be->alloc(ws->bytes);
    ws->loss_acc = (double *)(ws->base + ws->bytes - 256);
    ws->acts = lqa_calloc((size_t)(m->cfg.n_layers > 0 ? m->cfg.n_layers : 1), sizeof(layer_acts));
    size_t N = (size_t)B * T;
    ws->targets_h = lqa_malloc(sizeof(int32_t) * N);
    ws->rows_h = lqa_malloc(sizeof(int32_t) * N);
    ws->rope_h = lqa_malloc(sizeof(float) * (size_t)T * (m->cfg.dim / m->cfg.n_heads));
    return ws;
}

void lqa_workspace_free(lqa_workspace *ws) {
    if (!ws) return;
    ws->be->free(ws->base);
    free(ws->acts);
    free(ws->targets_h);
    free(ws->rows_h);
    free(ws->rope_h);
    free(ws);
}

/* Carves the workspace for a B x T batch with o (at most the planned size). */
static step_mem *carve(lqa_workspace *ws, const lqa_model *m, int B, int T, const lqa_step_opts *o, int backward) {
    lqaCheck((size_t)B * T <= (size_t)ws->B * ws->T && T <= ws->T && (!backward || ws->backward),
             "a %d x %d batch%s does not fit a workspace planned for %d x %d%s", B, T, backward ? " with gradients" : "",
             ws->B, ws->T, ws->backward ? " with gradients" : "");
    arena a = {ws->base, 0, 0};
    plan_step(&a, &ws->s, ws->acts, m, ws->be, B, T, o, backward);
    lqaCheck(a.used + 256 <= ws->bytes, "step memory plan (%zu bytes) exceeds its workspace (%zu)", a.used, ws->bytes);
    return &ws->s;
}

/* The RoPE table of positions 0..T-1 in s->cos_t / s->sin_t: computed on the host (angles in
 * double) and uploaded when T or the model's RoPE settings change, so once per run. */
static void rope_table(lqa_workspace *ws, const lqa_config *cfg, int T, int pos0) {
    rope_spec rs = lqa_config_rope(cfg); /* 7 four-byte fields: no padding, so memcmp compares values */
    if (ws->rope_T == T && ws->rope_pos0 == pos0 && !memcmp(&ws->rope, &rs, sizeof rs)) return;
    size_t half = (size_t)T * (cfg->dim / cfg->n_heads) / 2;
    rope_table_cpu(ws->rope_h, ws->rope_h + half, T, cfg->dim / cfg->n_heads, pos0, &rs);
    ws->be->to_device(ws->s.cos_t, ws->rope_h, sizeof(float) * half);
    ws->be->to_device(ws->s.sin_t, ws->rope_h + half, sizeof(float) * half);
    ws->rope_T = T;
    ws->rope_pos0 = pos0;
    ws->rope = rs;
}

/* ---- forward / backward of one layer ------------------------------------------------------- */

/* What a step computes gradients for. */
typedef struct grad_sel {
    float *d_params, *d_lora; /* NULL: not computed */
    int compact;              /* d_params in lora+'s compact layout (lqa_grads.compact) */
    int base_linears;         /* full: gradients of every linear weight */
    int norms_embed;          /* lora+ / full: norms and embedding */
} grad_sel;

/* A linear layer of layer l (tensor k) with its LoRA branch when k is a target. */
typedef struct linear {
    const float *W, *A, *B;
    const void *W16;  /* bf16 copy of W (frozen, --dtype bf16), or NULL */
    float *dW, *dA, *dB;
    int in, out;
    float *t; /* saved x A^T */
} linear;

static linear linear_of(const lqa_model *m, int l, int k, const layer_acts *la, const grad_sel *gs) {
    linear lin = {0};
    int64_t out, in;
    layer_tensor_shape(&m->cfg, k, &out, &in);
    lin.in = (int)in;
    lin.out = (int)out;
    size_t off = m->tensors[layer_tensor_index(l, k)].offset;
    lin.W = m->params + off;
    if (gs && gs->base_linears) lin.dW = grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, k));
    if (m->params16 && !(gs && gs->base_linears)) lin.W16 = (const char *)m->params16 + 2 * off;
    for (int i = 0; i < N_LORA_TARGETS; i++) {
        if (LORA_TENSOR[i] != k) continue;
        int t = lora_index(m, l, i);
        if (t < 0) break;
        size_t ao = m->lora_tensors[t].offset, bo = m->lora_tensors[t + 1].offset;
        lin.A = m->lora + ao;
        lin.B = m->lora + bo;
        lin.t = la->lora_t[i];
        if (gs && gs->d_lora) lin.dA = gs->d_lora + ao, lin.dB = gs->d_lora + bo;
    }
    return lin;
}

typedef struct step_ctx {
    const lqa_model *m;
    const lqa_backend *be;
    int B, T, N;
    attn_params ap;
    step_mem *s;
    grad_sel gs;
    lqa_kv *kv;        /* inference: keys and values go to the cache at kv_pos0, attention reads it */
    int kv_pos0;
    const float *att_k, *att_v; /* what attention reads (the cache's layer); NULL: la->k, la->v */
} step_ctx;

/* y = x W^T (+ the LoRA branch); accumulate: y += instead. */
static void linear_forward(const step_ctx *c, const linear *lin, float *y, const float *x, int accumulate) {
    const lqa_model *m = c->m;
    if (lin->W16)
        c->be->linear_bf16_forward(y, x, lin->W16, c->N, lin->in, lin->out, accumulate, c->s->x16);
    else
        c->be->matmul_forward(y, x, lin->W, c->N, lin->in, lin->out, accumulate);
    if (lin->A)
        c->be->lora_forward(y, lin->t, x, lin->A, lin->B, c->N, lin->in, lin->out, m->lora_rank,
                            m->lora_alpha / m->lora_rank);
}

/* dx += dy W_eff; weight gradients where selected. */
static void linear_backward(const step_ctx *c, const linear *lin, float *dx, const float *dy, const float *x) {
    const lqa_model *m = c->m;
    if (lin->W16)
        c->be->linear_bf16_backward(dx, dy, lin->W16, c->N, lin->in, lin->out, c->s->x16);
    else
        c->be->matmul_backward(dx, lin->dW, dy, x, lin->W, c->N, lin->in, lin->out);
    if (lin->A)
        c->be->lora_backward(dx, lin->dA, lin->dB, dy, x, lin->t, lin->A, lin->B, c->N, lin->in, lin->out,
                             m->lora_rank, m->lora_alpha / m->lora_rank, c->s->lora_scratch);
}

/* Points the shared activations' attention output at layer l's saved slot (checkpointing). */
static void use_saved_attention(const step_ctx *c, int l, layer_acts *la) {
    if (!c->s->att_saved) return;
    size_t N = (size_t)c->N, Hq = (size_t)c->m->cfg.n_heads * (c->m->cfg.dim / c->m->cfg.n_heads);
    la->att = c->s->att_saved + (size_t)l * N * Hq;
    la->lse = c->s->lse_saved + (size_t)l * N * c->m->cfg.n_heads;
}

/* recompute: the backward's rerun of a checkpointed layer; the attention output is the saved
 * one (bitwise what the first forward computed), so attention_forward is skipped. */
static void layer_forward(const step_ctx *c, int l, layer_acts *la, const float *x, float *xout, int recompute) {
    const lqa_model *m = c->m;
    const lqa_backend *be = c->be;
    const lqa_config *cfg = &m->cfg;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads, F = cfg->hidden_dim;
    be->rmsnorm_forward(la->xn1, la->rstd1, x, layer_w(m, l, T_LN1), N, D, cfg->rms_eps);
    linear q = linear_of(m, l, T_Q, la, NULL), k = linear_of(m, l, T_K, la, NULL), v = linear_of(m, l, T_V, la, NULL);
    linear_forward(c, &q, la->q, la->xn1, 0);
    linear_forward(c, &k, la->k, la->xn1, 0);
    linear_forward(c, &v, la->v, la->xn1, 0);
    be->rope_forward(la->q, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_heads, hd);
    be->rope_forward(la->k, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_kv_heads, hd);
    if (!recompute && m->params16)
        be->attention_bf16_forward(la->att, la->lse, la->q, c->att_k ? c->att_k : la->k, c->att_v ? c->att_v : la->v,
                                   &c->ap, c->s->attn16);
    else if (!recompute)
        be->attention_forward(la->att, la->lse, la->q, c->att_k ? c->att_k : la->k, c->att_v ? c->att_v : la->v,
                              &c->ap, c->s->attn_scratch);
    linear o = linear_of(m, l, T_O, la, NULL);
    be->copy(la->x2, x, sizeof(float) * (size_t)N * D);
    linear_forward(c, &o, la->x2, la->att, 1); /* x2 = x + att Wo^T */
    be->rmsnorm_forward(la->xn2, la->rstd2, la->x2, layer_w(m, l, T_LN2), N, D, cfg->rms_eps);
    linear g = linear_of(m, l, T_GATE, la, NULL), u = linear_of(m, l, T_UP, la, NULL);
    linear_forward(c, &g, la->g, la->xn2, 0);
    linear_forward(c, &u, la->u, la->xn2, 0);
    be->swiglu_forward(la->h, la->g, la->u, (size_t)N * F);
    linear d = linear_of(m, l, T_DOWN, la, NULL);
    be->copy(xout, la->x2, sizeof(float) * (size_t)N * D);
    linear_forward(c, &d, xout, la->h, 1); /* x' = x2 + h Wd^T */
}

/* On entry s->dx holds dL/d(layer output); on exit dL/d(layer input). */
static void layer_backward(const step_ctx *c, int l, const layer_acts *la, const float *x) {
    const lqa_model *m = c->m;
    const lqa_backend *be = c->be;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c->s;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads, F = cfg->hidden_dim;
    size_t Hq = (size_t)cfg->n_heads * hd, Hkv = (size_t)cfg->n_kv_heads * hd, f = sizeof(float);
    const grad_sel *gs = &c->gs;
    float *dnorm1 = NULL, *dnorm2 = NULL;
    if (gs->norms_embed) {
        dnorm1 = grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, T_LN1));
        dnorm2 = grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, T_LN2));
    }
    /* MLP */
    linear d = linear_of(m, l, T_DOWN, la, gs), g = linear_of(m, l, T_GATE, la, gs), u = linear_of(m, l, T_UP, la, gs);
    be->zero(s->dh, f * N * F);
    linear_backward(c, &d, s->dh, s->dx, la->h);
    be->zero(s->dg, f * N * F);
    be->zero(s->du, f * N * F);
    be->swiglu_backward(s->dg, s->du, s->dh, la->g, la->u, (size_t)N * F);
    be->zero(s->dxn, f * N * D);
    linear_backward(c, &g, s->dxn, s->dg, la->xn2);
    linear_backward(c, &u, s->dxn, s->du, la->xn2);
    be->rmsnorm_backward(s->dx, dnorm2, s->dxn, la->x2, layer_w(m, l, T_LN2), la->rstd2, N, D);
    /* attention */
    linear o = linear_of(m, l, T_O, la, gs);
    be->zero(s->datt, f * N * Hq);
    linear_backward(c, &o, s->datt, s->dx, la->att);
    be->zero(s->dq, f * N * Hq);
    be->zero(s->dk, f * N * Hkv);
    be->zero(s->dv, f * N * Hkv);
    if (m->params16)
        be->attention_bf16_backward(s->dq, s->dk, s->dv, s->datt, la->att, la->lse, la->q, la->k, la->v, &c->ap,
                                    s->attn16);
    else
        be->attention_backward(s->dq, s->dk, s->dv, s->datt, la->att, la->lse, la->q, la->k, la->v, &c->ap,
                               s->attn_scratch);
    be->rope_backward(s->dq, s->cos_t, s->sin_t, c->B, c->T, cfg->n_heads, hd);
    be->rope_backward(s->dk, s->cos_t, s->sin_t, c->B, c->T, cfg->n_kv_heads, hd);
    linear q = linear_of(m, l, T_Q, la, gs), k = linear_of(m, l, T_K, la, gs), v = linear_of(m, l, T_V, la, gs);
    be->zero(s->dxn, f * N * D);
    linear_backward(c, &q, s->dxn, s->dq, la->xn1);
    linear_backward(c, &k, s->dxn, s->dk, la->xn1);
    linear_backward(c, &v, s->dxn, s->dv, la->xn1);
    be->rmsnorm_backward(s->dx, dnorm1, s->dxn, x, layer_w(m, l, T_LN1), la->rstd1, N, D);
}

/* ---- the step -------------------------------------------------------------------------------- */

/* Checks the batch's tokens, builds its targets on the host (targets[b*T+t] = the token row t
 * predicts, token t+1 when loss_mask[t+1] = 1, else -1; a target across a segment boundary or
 * on padding does not count) and the list of target rows, and uploads tokens, segment ids,
 * targets and rows. Returns the target count. */
static long stage_batch(lqa_workspace *ws, const lqa_model *m, const lqa_batch *b) {
    size_t N = (size_t)b->B * b->T;
    for (size_t n = 0; n < N; n++)
        lqaCheck(b->tokens[n] >= 0 && b->tokens[n] < m->cfg.vocab_size, "token %d at %zu outside vocab [0, %d)",
                 b->tokens[n], n, m->cfg.vocab_size);
    long count = 0;
    for (int bi = 0; bi < b->B; bi++)
        for (int t = 0; t < b->T; t++) {
            size_t n = (size_t)bi * b->T + t;
            int ok = t + 1 < b->T && b->loss_mask && b->loss_mask[n + 1];
            if (ok && b->segment_ids) ok = b->segment_ids[n] >= 0 && b->segment_ids[n + 1] == b->segment_ids[n];
            ws->targets_h[n] = ok ? b->tokens[n + 1] : -1;
            if (ok) ws->rows_h[count++] = (int32_t)n;
        }
    const lqa_backend *be = ws->be;
    step_mem *s = &ws->s;
    be->to_device(s->tokens, b->tokens, sizeof(int32_t) * N);
    if (b->segment_ids) be->to_device(s->seg, b->segment_ids, sizeof(int32_t) * N);
    be->to_device(s->targets, ws->targets_h, sizeof(int32_t) * N);
    be->to_device(s->rows, ws->rows_h, sizeof(int32_t) * (size_t)count);
    return count;
}

/* Inference: layer l's new keys and values are written straight into the cache rows pos0..
 * (their projections and RoPE land there), and attention reads the cache from position 0. */
struct lqa_kv {
    lqa_workspace *ws;  /* forward workspace for up to `chunk` tokens (B = 1) */
    int max_len, chunk;
    float *k, *v;       /* backend: [L][max_len][KV*hd] each */
    float *logits;      /* backend: [chunk, V] */
};

static void kv_layer(step_ctx *c, int l, layer_acts *la) {
    const lqa_config *cfg = &c->m->cfg;
    size_t kvd = (size_t)cfg->n_kv_heads * (cfg->dim / cfg->n_heads), layer = (size_t)c->kv->max_len * kvd;
    c->att_k = c->kv->k + l * layer;
    c->att_v = c->kv->v + l * layer;
    la->k = c->kv->k + l * layer + (size_t)c->kv_pos0 * kvd;
    la->v = c->kv->v + l * layer + (size_t)c->kv_pos0 * kvd;
}

/* Runs the forward through every layer and the final norm; keeps what the backward needs. */
static void forward_all(step_ctx *c, int keep_all) {
    const lqa_model *m = c->m;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c->s;
    size_t ND = (size_t)c->N * cfg->dim;
    c->be->embedding_forward(s->xs, s->tokens, m->params, c->N, cfg->dim);
    for (int l = 0; l < cfg->n_layers; l++) {
        layer_acts *la = &s->acts[keep_all ? l : 0];
        use_saved_attention(c, l, la);
        if (c->kv) kv_layer(c, l, la);
        layer_forward(c, l, la, s->xs + l * ND, s->xs + (l + 1) * ND, 0);
    }
    c->be->rmsnorm_forward(s->xf, s->rstdf, s->xs + cfg->n_layers * ND,
                           m->params + m->tensors[final_norm_index(m)].offset, c->N, cfg->dim, cfg->rms_eps);
}

/* Carves ws for the batch, stages it and fills the step context; returns the target count. */
static long begin_step(step_ctx *c, lqa_workspace *ws, const lqa_model *m, const lqa_batch *b,
                       const lqa_step_opts *o, int backward) {
    lqa_err err;
    if (o && lqa_model_check_opts(m, b->T, o, &err) != 0) lqa_fatal("%s", err.msg);
    lqaCheck(ws->be == lqa_model_backend(m), "workspace on %s, model on %s", ws->be->name, lqa_model_backend(m)->name);
    set_threads(o);
    memset(c, 0, sizeof *c);
    c->m = m;
    c->be = ws->be;
    c->B = b->B;
    c->T = b->T;
    c->N = b->B * b->T;
    c->s = carve(ws, m, b->B, b->T, o, backward);
    rope_table(ws, &m->cfg, b->T, 0);
    long count = stage_batch(ws, m, b);
    c->ap = attn_of(m, b->B, b->T, o, b->segment_ids ? c->s->seg : NULL);
    return count;
}

void lqa_model_step_ws(lqa_model *m, lqa_workspace *ws, const lqa_batch *b, const lqa_step_opts *o, lqa_grads *g,
                       double *loss_acc) {
    step_ctx c;
    int backward = g != NULL;
    long count = begin_step(&c, ws, m, b, o, backward);
    const lqa_backend *be = c.be;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c.s;
    int keep_all = s->n_acts > 1;
    forward_all(&c, keep_all);
    if (count == 0) return;
    if (backward) {
        c.gs.d_params = g->d_params;
        c.gs.compact = g->compact;
        c.gs.d_lora = m->lora ? g->d_lora : NULL;
        c.gs.base_linears = o->train == LQA_TRAIN_FULL;
        c.gs.norms_embed = o->train != LQA_TRAIN_LORA;
    }
    size_t lm_off = lm_head_offset(m), ND = (size_t)c.N * cfg->dim;
    int lm_trained = c.gs.d_params && (o->train == LQA_TRAIN_FULL || (cfg->tie_embeddings && c.gs.norms_embed));
    size_t lm_index = cfg->tie_embeddings ? 0 : final_norm_index(m) + 1;
    float *dW_lm = lm_trained ? grad_at(c.gs.d_params, c.gs.compact, m, lm_index) : NULL;
    if (backward) be->zero(s->dxf, sizeof(float) * ND);
    be->zero(s->loss_sum, sizeof(double));
    be->crossentropy_fused_rows(backward ? s->dxf : NULL, dW_lm, s->xf, m->params + lm_off, s->targets, s->rows,
                                (int)count, cfg->dim, cfg->vocab_size, 1.0f / count, s->ce_chunk, s->ce_scratch,
                                s->loss_sum);
    if (loss_acc) be->crossentropy_mean_add(loss_acc, s->loss_sum, count);
    if (!backward) return;
    size_t fn = m->tensors[final_norm_index(m)].offset;
    float *dnorm = c.gs.norms_embed ? grad_at(c.gs.d_params, c.gs.compact, m, final_norm_index(m)) : NULL;
    be->zero(s->dx, sizeof(float) * ND);
    be->rmsnorm_backward(s->dx, dnorm, s->dxf, s->xs + cfg->n_layers * ND, m->params + fn, s->rstdf, c.N, cfg->dim);
    for (int l = cfg->n_layers - 1; l >= 0; l--) {
        layer_acts *la = &s->acts[keep_all ? l : 0];
        if (!keep_all) { /* recompute the checkpointed layer */
            use_saved_attention(&c, l, la);
            layer_forward(&c, l, la, s->xs + l * ND, s->xs + (l + 1) * ND, s->att_saved != NULL);
        }
        layer_backward(&c, l, la, s->xs + l * ND);
    }
    float *dwte = c.gs.norms_embed ? grad_at(c.gs.d_params, c.gs.compact, m, 0) : NULL;
    if (dwte) be->embedding_backward(dwte, s->dx, s->tokens, c.N, cfg->dim);
}

float lqa_model_step(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o, lqa_grads *g) {
    lqa_workspace *ws = lqa_workspace_new(m, b->B, b->T, o, g != NULL);
    ws->be->zero(ws->loss_acc, sizeof(double));
    lqa_model_step_ws(m, ws, b, o, g, ws->loss_acc);
    double loss;
    ws->be->to_host(&loss, ws->loss_acc, sizeof loss);
    lqa_workspace_free(ws);
    return (float)loss;
}

float *lqa_model_logits(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o) {
    lqa_workspace *ws = lqa_workspace_new(m, b->B, b->T, o, 0);
    step_ctx c;
    begin_step(&c, ws, m, b, o, 0);
    forward_all(&c, 0);
    size_t NV = (size_t)c.N * m->cfg.vocab_size;
    float *logits = lqa_malloc(sizeof(float) * NV);
    float *dev = ws->be->host_memory ? logits : ws->be->alloc(sizeof(float) * NV);
    ws->be->matmul_forward(dev, c.s->xf, m->params + lm_head_offset(m), c.N, m->cfg.dim, m->cfg.vocab_size, 0);
    if (dev != logits) {
        ws->be->to_host(logits, dev, sizeof(float) * NV);
        ws->be->free(dev);
    }
    lqa_workspace_free(ws);
    return logits;
}

/* ---- inference with a KV cache -------------------------------------------------------------- */

lqa_kv *lqa_kv_new(const lqa_model *m, int max_len, int chunk, int threads) {
    const lqa_config *cfg = &m->cfg;
    lqa_kv *kv = lqa_calloc(1, sizeof *kv);
    kv->max_len = max_len;
    kv->chunk = chunk < max_len ? chunk : max_len;
    lqa_step_opts o = {.attn = LQA_ATTN_FULL, .threads = threads};
    kv->ws = lqa_workspace_new(m, 1, kv->chunk, &o, 0);
    const lqa_backend *be = kv->ws->be;
    size_t cache = (size_t)cfg->n_layers * max_len * cfg->n_kv_heads * (cfg->dim / cfg->n_heads);
    kv->k = be->alloc(sizeof(float) * cache);
    kv->v = be->alloc(sizeof(float) * cache);
    kv->logits = be->alloc(sizeof(float) * (size_t)kv->chunk * cfg->vocab_size);
    return kv;
}

void lqa_kv_free(lqa_kv *kv) {
    if (!kv) return;
    const lqa_backend *be = kv->ws->be;
    be->free(kv->k);
    be->free(kv->v);
    be->free(kv->logits);
    lqa_workspace_free(kv->ws);
    free(kv);
}

int lqa_kv_chunk(const lqa_kv *kv) {
    return kv->chunk;
}

void lqa_model_forward_kv(lqa_model *m, lqa_kv *kv, const int32_t *tokens, int n, int pos0, int threads,
                          float *logits, int logits_from, const int32_t *targets, double *nll) {
    const lqa_config *cfg = &m->cfg;
    lqaCheck(n >= 1 && n <= kv->chunk && pos0 >= 0 && pos0 + n <= kv->max_len,
             "KV forward of %d tokens at %d: the cache holds %d positions, chunks of %d", n, pos0, kv->max_len,
             kv->chunk);
    lqa_workspace *ws = kv->ws;
    lqa_step_opts o = {.attn = LQA_ATTN_FULL, .threads = threads};
    set_threads(&o);
    step_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.be = ws->be;
    c.B = 1;
    c.T = n;
    c.N = n;
    c.s = carve(ws, m, 1, n, &o, 0);
    c.kv = kv;
    c.kv_pos0 = pos0;
    c.ap = (attn_params){.B = 1, .Tq = n, .Tk = pos0 + n, .H = cfg->n_heads, .KV = cfg->n_kv_heads,
                         .hd = cfg->dim / cfg->n_heads};
    rope_table(ws, cfg, n, pos0);
    for (int i = 0; i < n; i++)
        lqaCheck(tokens[i] >= 0 && tokens[i] < cfg->vocab_size, "token %d at %d outside vocab [0, %d)", tokens[i], i,
                 cfg->vocab_size);
    ws->be->to_device(c.s->tokens, tokens, sizeof(int32_t) * (size_t)n);
    forward_all(&c, 0);
    const float *W = m->params + lm_head_offset(m);
    if (logits && logits_from < n) {
        int rows = n - logits_from;
        size_t bytes = sizeof(float) * (size_t)rows * cfg->vocab_size;
        ws->be->matmul_forward(kv->logits, c.s->xf + (size_t)logits_from * cfg->dim, W, rows, cfg->dim,
                               cfg->vocab_size, 0);
        ws->be->to_host(logits, kv->logits, bytes);
    }
    if (targets) { /* the NLL through the training loss's own fused op, forward only */
        long count = 0;
        for (int i = 0; i < n; i++) {
            ws->targets_h[i] = targets[i];
            if (targets[i] >= 0) ws->rows_h[count++] = i;
        }
        double sum = 0;
        if (count > 0) {
            ws->be->to_device(c.s->targets, ws->targets_h, sizeof(int32_t) * (size_t)n);
            ws->be->to_device(c.s->rows, ws->rows_h, sizeof(int32_t) * (size_t)count);
            ws->be->zero(c.s->loss_sum, sizeof(double));
            ws->be->crossentropy_fused_rows(NULL, NULL, c.s->xf, W, c.s->targets, c.s->rows, (int)count, cfg->dim,
                                            cfg->vocab_size, 0.0f, c.s->ce_chunk, c.s->ce_scratch, c.s->loss_sum);
            ws->be->to_host(&sum, c.s->loss_sum, sizeof sum);
        }
        *nll += sum;
    }
}
