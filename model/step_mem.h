/* model/step_mem.h: private to model/ (not for other folders): what the three files of the model
 * core share. model.c owns the parameter layout (tensor order and shapes, LoRA's tensors),
 * workspace.c the step's memory plan and the workspace carved from it, step.c the forward and
 * backward that run in that memory.
 *
 * The per-layer tensor order in params is model.h's; LoRA target i (q,k,v,o,gate,up,down)
 * adapts layer tensor lqa_lora_layer_tensor[i]. */
#ifndef LQA_MODEL_STEP_MEM_H
#define LQA_MODEL_STEP_MEM_H

#include "kernels/attention.h"
#include "model/model.h"

enum { N_LAYER_TENSORS = 9, N_LORA_TARGETS = 7 };
enum { T_LN1, T_Q, T_K, T_V, T_O, T_LN2, T_GATE, T_UP, T_DOWN };
extern const int lqa_lora_layer_tensor[N_LORA_TARGETS];

/* ---- the parameter layout (model.c) ---- */

/* [out, in] of layer tensor k (norms: [D, 0]). */
void lqa_layer_tensor_shape(const lqa_config *c, int k, int64_t *out, int64_t *in);
/* Index into lora_tensors of layer l target i's A (B follows), or -1 when not a target. */
int lqa_lora_index(const lqa_model *m, int l, int i);
/* The gradient of base tensor t in a d_params buffer of either layout (NULL when it has none). */
float *lqa_grad_at(float *d_params, int compact, const lqa_model *m, size_t t);
/* The S2 group size for T, or -1 when T * ratio is not an even integer dividing T. */
int lqa_s2_group(int T, float ratio);

static inline size_t layer_tensor_index(int l, int k) { return 1 + (size_t)l * N_LAYER_TENSORS + k; }
/* fp32 weights of layer l's tensor k (NULL when held in bf16 only: the bf16 layout's linears). */
static inline float *layer_w(const lqa_model *m, int l, int k) {
    return lqa_model_base_f32(m, (int)layer_tensor_index(l, k));
}
/* Base tensor t in bf16 (params16), or NULL when the model holds it in fp32. */
static inline const void *base_w16(const lqa_model *m, size_t t) {
    size_t o = m->tensors[t].b16_offset;
    return m->params16 && o != LQA_NOT_BF16 ? (const char *)m->params16 + 2 * o : NULL;
}
static inline size_t final_norm_index(const lqa_model *m) { return 1 + (size_t)m->cfg.n_layers * N_LAYER_TENSORS; }
/* lm_head: its own tensor, or the embedding when tied. */
static inline size_t lm_head_index(const lqa_model *m) {
    return m->cfg.tie_embeddings ? 0 : final_norm_index(m) + 1;
}

static inline int has_lora(const lqa_model *m) {
    return m->n_lora > 0 && m->lora_rank > 0;
}

/* ---- the step's memory (workspace.c) ---- */

typedef struct layer_acts {
    float *rstd1, *xn1, *q, *k, *v, *att, *lse, *x2, *rstd2, *xn2;
    float *g, *u, *h; /* [mlp_rows, F]: the MLP's current row chunk */
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
    /* bf16 runs (m->params16): the layer inputs in bf16, xs NULL then, and no saved attention:
     * the backward's recompute reruns the layer's attention too (one more attention forward per
     * layer for 26 GB less at 7B, 100k), as Hugging Face's gradient checkpointing does. The
     * forward rounds each layer's output into xs16 and every layer (and the recompute) reads
     * that bf16 value widened into x_in, so both see the same input. */
    void *xs16;         /* (L+1) x [N, D] bf16 */
    float *x_in, *x_out; /* [N, D]: a layer's input widened; its output before rounding (with
                            backward x_out is dxn, dead between layers' backwards) */
    layer_acts *acts;   /* (host array) L sets (no checkpointing) or 1 set reused */
    int n_acts;
    int mlp_rows;       /* rows per MLP pass: N, or with bf16 a chunk (g, u, h, dg, du, dh hold that many) */
    float *xf, *rstdf;  /* final norm output, [N, D], [N] */
    /* backward scratch, shared by all layers */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dg, *du, *dh, *dxf, *lora_scratch;
    void *x16;             /* bf16 weights: an activation rounded to bf16, max(N * max(D, H*hd), mlp_rows * F) */
    void *attn16;          /* bf16 attention: q, k, v, out, dout rounded to bf16 */
    void *lora16;          /* bf16 LoRA: A, B rounded per call (+ dt [N, r] with backward) */
    float *attn_scratch, *ce_scratch;
    int ce_chunk;
} step_mem;

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

/* The attention shape of a B x T step with o (S2 groups when o asks) and segment ids seg. */
attn_params lqa_step_attn(const lqa_model *m, int B, int T, const lqa_step_opts *o, const int32_t *seg);
/* Sets the kernels' thread count from o (0: all). */
void lqa_step_threads(const lqa_step_opts *o);
/* Carves the workspace for a B x T batch with o (at most the planned size). */
step_mem *lqa_workspace_carve(lqa_workspace *ws, const lqa_model *m, int B, int T, const lqa_step_opts *o,
                              int backward);
/* The RoPE table of positions pos0..pos0+T-1 in ws->s.cos_t / sin_t: computed on the host (angles
 * in double) and uploaded when T, pos0 or the model's RoPE settings change, so once per run. */
void lqa_workspace_rope(lqa_workspace *ws, const lqa_config *cfg, int T, int pos0);

#endif
