/* trainer/model.c: the LLaMA model of model.h: tensor tables, random init, LoRA, and one
 * forward + backward on a token batch built from the ops in kernels/.
 *
 * Per layer (x is the residual stream, N = B*T rows):
 *   xn1 = rmsnorm(x) ; q,k,v = xn1 W^T (+LoRA) ; rope(q,k) ; att = attention(q,k,v) ;
 *   x2 = x + att Wo^T ; xn2 = rmsnorm(x2) ; h = silu(xn2 Wg^T) * (xn2 Wu^T) ; x' = x2 + h Wd^T
 * then xf = rmsnorm(x_L) and the chunked lm_head + cross-entropy.
 *
 * Memory: every buffer of a step is carved out of ONE allocation whose size lqa_model_step_bytes
 * computes with the same planner, so the estimate is exact and linear in T. With
 * checkpointing the layer inputs and attention outputs are kept and one layer's other
 * activations are recomputed in the backward; without it every layer's activations are kept.
 */
#include "trainer/model.h"

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

void lqa_model_alloc(lqa_model *m, const lqa_config *cfg) {
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
    m->params = lqa_malloc(sizeof(float) * off);
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
    for (int t = 0; t < m->n_tensors; t++) {
        lqa_tensor_info *ti = &m->tensors[t];
        float *x = m->params + ti->offset;
        if (ti->ndim == 1) /* RMSNorm weights */
            for (size_t i = 0; i < ti->numel; i++) x[i] = 1.0f;
        else
            fill_normal(x, ti->numel, 0.02f, seed, (uint64_t)t);
    }
}

void lqa_model_add_lora(lqa_model *m, int targets, int rank, float alpha, uint64_t seed) {
    lqaCheck(rank > 0 && targets > 0 && targets < (1 << N_LORA_TARGETS), "LoRA: rank %d, targets 0x%x", rank,
             targets);
    free(m->lora);
    free(m->lora_tensors);
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
    free(m->params);
    free(m->tensors);
    free(m->lora);
    free(m->lora_tensors);
    memset(m, 0, sizeof *m);
}

float *lqa_model_tensor(lqa_model *m, const char *name, const lqa_tensor_info **info) {
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
    if (!m->lora || !(m->lora_targets & (1 << i))) return -1;
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

/* ---- the step's memory plan ----------------------------------------------------------------- */

typedef struct layer_acts {
    float *rstd1, *xn1, *q, *k, *v, *att, *lse, *x2, *rstd2, *xn2, *g, *u, *h;
    float *lora_t[N_LORA_TARGETS]; /* x A^T of each LoRA target, [N, r] */
} layer_acts;

typedef struct step_mem {
    float *xs;          /* layer inputs, (L+1) x [N, D]; xs[L] is the final residual */
    /* checkpointing with backward: each layer's attention output and lse, L x [N, H*hd] and
     * L x [N, H] (selective recomputation: the backward recomputes the projections, not the
     * attention, which is most of a layer's forward at long ctx; memory stays linear) */
    float *att_saved, *lse_saved;
    layer_acts *acts;   /* L sets (no checkpointing) or 1 set reused */
    int n_acts;
    float *xf, *rstdf;  /* final norm output, [N, D], [N] */
    /* backward scratch, shared by all layers */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dg, *du, *dh, *dxf, *lora_scratch;
    float *cos_t, *sin_t, *attn_scratch, *ce_scratch;
    int32_t *targets;
    int ce_chunk;
} step_mem;

typedef struct arena {
    char *base;
    size_t used;
} arena;

/* Bump allocation; with base == NULL only counts (the planner runs twice: size, then carve). */
static void *take(arena *a, size_t bytes) {
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) & ~(size_t)63;
    return p;
}
#define TAKE_F(a, n) ((float *)take((a), sizeof(float) * (size_t)(n)))

static int ce_chunk_rows(int N, int V) {
    int c = (1 << 22) / (V > 0 ? V : 1); /* about 16 MiB of logits at a time */
    if (c < 16) c = 16;
    if (c > 1024) c = 1024;
    return c < N ? c : N;
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
        la->lora_t[i] = (m->lora && (m->lora_targets & (1 << i))) ? TAKE_F(a, N * m->lora_rank) : NULL;
}

static attn_params attn_of(const lqa_model *m, int B, int T, const lqa_step_opts *o, const int32_t *seg) {
    attn_params p = {.B = B, .Tq = T, .Tk = T, .H = m->cfg.n_heads, .KV = m->cfg.n_kv_heads,
                     .hd = m->cfg.dim / m->cfg.n_heads, .segment_ids = seg};
    if (o && o->attn == LQA_ATTN_S2) p.group = s2_group(T, o->group_ratio);
    return p;
}

/* Carves (or, with a->base NULL, sizes) every buffer of a step. backward: whether gradients
 * are computed (then without checkpointing all L layers keep their activations). */
static void plan_step(arena *a, step_mem *s, const lqa_model *m, int B, int T, const lqa_step_opts *o,
                      int backward) {
    const lqa_config *c = &m->cfg;
    size_t N = (size_t)B * T, D = c->dim, hd = c->dim / c->n_heads, Hq = c->n_heads * hd,
           Hkv = c->n_kv_heads * hd, F = c->hidden_dim;
    int L = c->n_layers, threads = omp_get_max_threads();
    memset(s, 0, sizeof *s);
    s->xs = TAKE_F(a, (L + 1) * N * D);
    s->n_acts = (backward && !(o && o->checkpointing)) ? L : 1;
    int saved_attention = backward && s->n_acts == 1; /* (pointers are NULL while sizing) */
    if (saved_attention) {
        s->att_saved = TAKE_F(a, (size_t)L * N * Hq);
        s->lse_saved = TAKE_F(a, (size_t)L * N * c->n_heads);
    }
    s->acts = take(a, sizeof(layer_acts) * s->n_acts);
    for (int l = 0; l < s->n_acts; l++) {
        layer_acts tmp;
        plan_acts(a, &tmp, m, N, !saved_attention);
        if (s->acts) s->acts[l] = tmp;
    }
    s->xf = TAKE_F(a, N * D);
    s->rstdf = TAKE_F(a, N);
    s->cos_t = TAKE_F(a, (size_t)T * hd / 2);
    s->sin_t = TAKE_F(a, (size_t)T * hd / 2);
    attn_params ap = attn_of(m, B, T, o, NULL);
    s->attn_scratch = TAKE_F(a, attention_scratch_floats(&ap, threads));
    s->ce_chunk = ce_chunk_rows((int)N, c->vocab_size);
    s->ce_scratch = TAKE_F(a, crossentropy_scratch_floats(s->ce_chunk, c->dim, c->vocab_size));
    s->targets = take(a, sizeof(int32_t) * N);
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
    s->lora_scratch = m->lora ? TAKE_F(a, N * m->lora_rank) : NULL;
}

size_t lqa_model_step_bytes(const lqa_model *m, int B, int T, const lqa_step_opts *o) {
    arena a = {0};
    step_mem s;
    plan_step(&a, &s, m, B, T, o, 1);
    return a.used;
}

/* ---- forward / backward of one layer ------------------------------------------------------- */

/* What a step computes gradients for. */
typedef struct grad_sel {
    float *d_params, *d_lora; /* NULL: not computed */
    int base_linears;         /* full: gradients of every linear weight */
    int norms_embed;          /* lora+ / full: norms and embedding */
} grad_sel;

/* A linear layer of layer l (tensor k) with its LoRA branch when k is a target. */
typedef struct linear {
    const float *W, *A, *B;
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
    if (gs && gs->d_params && gs->base_linears) lin.dW = gs->d_params + off;
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

static void linear_forward(const linear *lin, const lqa_model *m, float *y, const float *x, int N) {
    matmul_forward_cpu(y, x, lin->W, N, lin->in, lin->out, 0);
    if (lin->A)
        lora_forward_cpu(y, lin->t, x, lin->A, lin->B, N, lin->in, lin->out, m->lora_rank,
                         m->lora_alpha / m->lora_rank);
}

/* dx += dy W_eff; weight gradients where selected. */
static void linear_backward(const linear *lin, const lqa_model *m, float *dx, const float *dy, const float *x,
                            int N, float *scratch) {
    matmul_backward_cpu(dx, lin->dW, dy, x, lin->W, N, lin->in, lin->out);
    if (lin->A)
        lora_backward_cpu(dx, lin->dA, lin->dB, dy, x, lin->t, lin->A, lin->B, N, lin->in, lin->out, m->lora_rank,
                          m->lora_alpha / m->lora_rank, scratch);
}

typedef struct step_ctx {
    const lqa_model *m;
    int B, T, N;
    attn_params ap;
    step_mem *s;
    grad_sel gs;
} step_ctx;

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
    const lqa_config *cfg = &m->cfg;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads, F = cfg->hidden_dim;
    rmsnorm_forward_cpu(la->xn1, la->rstd1, x, layer_w(m, l, T_LN1), N, D, cfg->rms_eps);
    linear q = linear_of(m, l, T_Q, la, NULL), k = linear_of(m, l, T_K, la, NULL), v = linear_of(m, l, T_V, la, NULL);
    linear_forward(&q, m, la->q, la->xn1, N);
    linear_forward(&k, m, la->k, la->xn1, N);
    linear_forward(&v, m, la->v, la->xn1, N);
    rope_forward_cpu(la->q, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_heads, hd);
    rope_forward_cpu(la->k, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_kv_heads, hd);
    if (!recompute) attention_forward_cpu(la->att, la->lse, la->q, la->k, la->v, &c->ap, c->s->attn_scratch);
    linear o = linear_of(m, l, T_O, la, NULL);
    memcpy(la->x2, x, sizeof(float) * (size_t)N * D);
    matmul_forward_cpu(la->x2, la->att, o.W, N, o.in, o.out, 1); /* x2 = x + att Wo^T */
    if (o.A) lora_forward_cpu(la->x2, o.t, la->att, o.A, o.B, N, o.in, o.out, m->lora_rank, m->lora_alpha / m->lora_rank);
    rmsnorm_forward_cpu(la->xn2, la->rstd2, la->x2, layer_w(m, l, T_LN2), N, D, cfg->rms_eps);
    linear g = linear_of(m, l, T_GATE, la, NULL), u = linear_of(m, l, T_UP, la, NULL);
    linear_forward(&g, m, la->g, la->xn2, N);
    linear_forward(&u, m, la->u, la->xn2, N);
    swiglu_forward_cpu(la->h, la->g, la->u, (size_t)N * F);
    linear d = linear_of(m, l, T_DOWN, la, NULL);
    memcpy(xout, la->x2, sizeof(float) * (size_t)N * D);
    matmul_forward_cpu(xout, la->h, d.W, N, d.in, d.out, 1); /* x' = x2 + h Wd^T */
    if (d.A) lora_forward_cpu(xout, d.t, la->h, d.A, d.B, N, d.in, d.out, m->lora_rank, m->lora_alpha / m->lora_rank);
}

static void zero(float *x, size_t n) { memset(x, 0, sizeof(float) * n); }

/* On entry s->dx holds dL/d(layer output); on exit dL/d(layer input). */
static void layer_backward(const step_ctx *c, int l, const layer_acts *la, const float *x) {
    const lqa_model *m = c->m;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c->s;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads, F = cfg->hidden_dim;
    size_t Hq = (size_t)cfg->n_heads * hd, Hkv = (size_t)cfg->n_kv_heads * hd;
    const grad_sel *gs = &c->gs;
    float *dnorm1 = NULL, *dnorm2 = NULL;
    if (gs->d_params && gs->norms_embed) {
        dnorm1 = gs->d_params + m->tensors[layer_tensor_index(l, T_LN1)].offset;
        dnorm2 = gs->d_params + m->tensors[layer_tensor_index(l, T_LN2)].offset;
    }
    /* MLP */
    linear d = linear_of(m, l, T_DOWN, la, gs), g = linear_of(m, l, T_GATE, la, gs), u = linear_of(m, l, T_UP, la, gs);
    zero(s->dh, (size_t)N * F);
    linear_backward(&d, m, s->dh, s->dx, la->h, N, s->lora_scratch);
    zero(s->dg, (size_t)N * F);
    zero(s->du, (size_t)N * F);
    swiglu_backward_cpu(s->dg, s->du, s->dh, la->g, la->u, (size_t)N * F);
    zero(s->dxn, (size_t)N * D);
    linear_backward(&g, m, s->dxn, s->dg, la->xn2, N, s->lora_scratch);
    linear_backward(&u, m, s->dxn, s->du, la->xn2, N, s->lora_scratch);
    rmsnorm_backward_cpu(s->dx, dnorm2, s->dxn, la->x2, layer_w(m, l, T_LN2), la->rstd2, N, D);
    /* attention */
    linear o = linear_of(m, l, T_O, la, gs);
    zero(s->datt, (size_t)N * Hq);
    linear_backward(&o, m, s->datt, s->dx, la->att, N, s->lora_scratch);
    zero(s->dq, (size_t)N * Hq);
    zero(s->dk, (size_t)N * Hkv);
    zero(s->dv, (size_t)N * Hkv);
    attention_backward_cpu(s->dq, s->dk, s->dv, s->datt, la->att, la->lse, la->q, la->k, la->v, &c->ap,
                           s->attn_scratch);
    rope_backward_cpu(s->dq, s->cos_t, s->sin_t, c->B, c->T, cfg->n_heads, hd);
    rope_backward_cpu(s->dk, s->cos_t, s->sin_t, c->B, c->T, cfg->n_kv_heads, hd);
    linear q = linear_of(m, l, T_Q, la, gs), k = linear_of(m, l, T_K, la, gs), v = linear_of(m, l, T_V, la, gs);
    zero(s->dxn, (size_t)N * D);
    linear_backward(&q, m, s->dxn, s->dq, la->xn1, N, s->lora_scratch);
    linear_backward(&k, m, s->dxn, s->dk, la->xn1, N, s->lora_scratch);
    linear_backward(&v, m, s->dxn, s->dv, la->xn1, N, s->lora_scratch);
    rmsnorm_backward_cpu(s->dx, dnorm1, s->dxn, x, layer_w(m, l, T_LN1), la->rstd1, N, D);
}

/* ---- the step -------------------------------------------------------------------------------- */

/* targets[b*T+t] = the token row t predicts (token t+1 when loss_mask[t+1] = 1), else -1; a
 * target across a segment boundary or on padding does not count. Returns the target count. */
static long build_targets(int32_t *targets, const lqa_batch *b) {
    long count = 0;
    for (int bi = 0; bi < b->B; bi++)
        for (int t = 0; t < b->T; t++) {
            size_t n = (size_t)bi * b->T + t;
            int ok = t + 1 < b->T && b->loss_mask && b->loss_mask[n + 1];
            if (ok && b->segment_ids) ok = b->segment_ids[n] >= 0 && b->segment_ids[n + 1] == b->segment_ids[n];
            targets[n] = ok ? b->tokens[n + 1] : -1;
            count += ok;
        }
    return count;
}

/* Runs the forward through every layer and the final norm; keeps what the backward needs. */
static void forward_all(step_ctx *c, const lqa_batch *b, int keep_all) {
    const lqa_model *m = c->m;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c->s;
    size_t ND = (size_t)c->N * cfg->dim;
    for (int n = 0; n < c->N; n++)
        lqaCheck(b->tokens[n] >= 0 && b->tokens[n] < cfg->vocab_size, "token %d at %d outside vocab [0, %d)",
                 b->tokens[n], n, cfg->vocab_size);
    rope_spec rs = lqa_config_rope(cfg);
    rope_table_cpu(s->cos_t, s->sin_t, c->T, cfg->dim / cfg->n_heads, 0, &rs);
    embedding_forward_cpu(s->xs, b->tokens, m->params, c->N, cfg->dim);
    for (int l = 0; l < cfg->n_layers; l++) {
        layer_acts *la = &s->acts[keep_all ? l : 0];
        use_saved_attention(c, l, la);
        layer_forward(c, l, la, s->xs + l * ND, s->xs + (l + 1) * ND, 0);
    }
    rmsnorm_forward_cpu(s->xf, s->rstdf, s->xs + cfg->n_layers * ND, m->params + m->tensors[final_norm_index(m)].offset,
                        c->N, cfg->dim, cfg->rms_eps);
}

static void set_threads(const lqa_step_opts *o) {
    int want = o && o->threads > 0 ? o->threads : 0;
    if (want != kernels_get_threads() || want == 0) kernels_set_threads(want);
}

static void init_ctx(step_ctx *c, const lqa_model *m, const lqa_batch *b, const lqa_step_opts *o, step_mem *s) {
    lqa_err err;
    if (o && lqa_model_check_opts(m, b->T, o, &err) != 0) lqa_fatal("%s", err.msg);
    c->m = m;
    c->B = b->B;
    c->T = b->T;
    c->N = b->B * b->T;
    c->ap = attn_of(m, b->B, b->T, o, b->segment_ids);
    c->s = s;
}

float lqa_model_step(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o, lqa_grads *g) {
    set_threads(o);
    step_ctx c = {0};
    step_mem s;
    arena a = {0};
    int backward = g != NULL;
    plan_step(&a, &s, m, b->B, b->T, o, backward);
    a.base = lqa_malloc(a.used);
    size_t bytes = a.used;
    a.used = 0;
    plan_step(&a, &s, m, b->B, b->T, o, backward);
    lqaCheck(a.used == bytes, "step memory plan changed between sizing and carving");
    init_ctx(&c, m, b, o, &s);
    const lqa_config *cfg = &m->cfg;
    long count = build_targets(s.targets, b);
    int keep_all = s.n_acts > 1;
    forward_all(&c, b, keep_all);
    if (count == 0) {
        free(a.base);
        return 0.0f;
    }
    if (backward) {
        c.gs.d_params = g->d_params;
        c.gs.d_lora = m->lora ? g->d_lora : NULL;
        c.gs.base_linears = o->train == LQA_TRAIN_FULL;
        c.gs.norms_embed = o->train != LQA_TRAIN_LORA;
    }
    size_t lm_off = lm_head_offset(m);
    int lm_trained = c.gs.d_params && (o->train == LQA_TRAIN_FULL || (cfg->tie_embeddings && c.gs.norms_embed));
    float *dW_lm = lm_trained ? c.gs.d_params + lm_off : NULL;
    if (backward) zero(s.dxf, (size_t)c.N * cfg->dim);
    double sum = crossentropy_fused_cpu(backward ? s.dxf : NULL, dW_lm, s.xf, m->params + lm_off, s.targets, c.N,
                                        cfg->dim, cfg->vocab_size, 1.0f / count, s.ce_chunk, s.ce_scratch);
    if (backward) {
        size_t ND = (size_t)c.N * cfg->dim, fn = m->tensors[final_norm_index(m)].offset;
        float *dnorm = c.gs.d_params && c.gs.norms_embed ? c.gs.d_params + fn : NULL;
        zero(s.dx, ND);
        rmsnorm_backward_cpu(s.dx, dnorm, s.dxf, s.xs + cfg->n_layers * ND, m->params + fn, s.rstdf, c.N, cfg->dim);
        for (int l = cfg->n_layers - 1; l >= 0; l--) {
            layer_acts *la = &s.acts[keep_all ? l : 0];
            if (!keep_all) { /* recompute the checkpointed layer */
                use_saved_attention(&c, l, la);
                layer_forward(&c, l, la, s.xs + l * ND, s.xs + (l + 1) * ND, s.att_saved != NULL);
            }
            layer_backward(&c, l, la, s.xs + l * ND);
        }
        if (c.gs.d_params && c.gs.norms_embed) embedding_backward_cpu(c.gs.d_params, s.dx, b->tokens, c.N, cfg->dim);
    }
    free(a.base);
    return (float)(sum / count);
}

float *lqa_model_logits(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o) {
    set_threads(o);
    step_ctx c = {0};
    step_mem s;
    arena a = {0};
    plan_step(&a, &s, m, b->B, b->T, o, 0);
    a.base = lqa_malloc(a.used);
    a.used = 0;
    plan_step(&a, &s, m, b->B, b->T, o, 0);
    init_ctx(&c, m, b, o, &s);
    forward_all(&c, b, 0);
    size_t NV = (size_t)c.N * m->cfg.vocab_size;
    float *logits = lqa_malloc(sizeof(float) * NV);
    matmul_forward_cpu(logits, s.xf, m->params + lm_head_offset(m), c.N, m->cfg.dim, m->cfg.vocab_size, 0);
    free(a.base);
    return logits;
}
