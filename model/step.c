/* model/step.c: one forward + backward of the model on a token batch (lqa_model_step_ws), the
 * logits, and the KV-cache forward of inference, in the memory workspace.c carves; the layer
 * math is in the header comment of model.c. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "model/step_mem.h"

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
    lqa_layer_tensor_shape(&m->cfg, k, &out, &in);
    lin.in = (int)in;
    lin.out = (int)out;
    lin.W = layer_w(m, l, k);
    if (gs && gs->base_linears) lin.dW = lqa_grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, k));
    if (!(gs && gs->base_linears)) lin.W16 = base_w16(m, layer_tensor_index(l, k));
    for (int i = 0; i < N_LORA_TARGETS; i++) {
        if (lqa_lora_layer_tensor[i] != k) continue;
        int t = lqa_lora_index(m, l, i);
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
    void *att_k16, *att_v16;    /* a bf16 cache's layer: la->k, la->v are rounded into it at kv_pos0 */
} step_ctx;

/* lin on rows r0.. of the batch: its saved x A^T from row r0 (the MLP's row chunks). */
static linear linear_from_row(linear lin, int r0, int rank) {
    if (lin.t) lin.t += (size_t)r0 * rank;
    return lin;
}

/* y = x W^T (+ the LoRA branch) over n rows; accumulate: y += instead. */
static void linear_forward(const step_ctx *c, const linear *lin, float *y, const float *x, int n, int accumulate) {
    const lqa_model *m = c->m;
    if (lin->W16)
        c->be->linear_bf16_forward(y, x, lin->W16, n, lin->in, lin->out, accumulate, c->s->x16);
    else
        c->be->matmul_forward(y, x, lin->W, n, lin->in, lin->out, accumulate);
    if (!lin->A) return;
    float scale = m->lora_alpha / m->lora_rank;
    if (lin->W16) /* x16 holds x in bf16 from the line above; t is saved bf16 (in its fp32-sized slot) */
        c->be->lora_bf16_forward(y, lin->t, c->s->x16, lin->A, lin->B, n, lin->in, lin->out, m->lora_rank, scale,
                                 c->s->lora16);
    else
        c->be->lora_forward(y, lin->t, x, lin->A, lin->B, n, lin->in, lin->out, m->lora_rank, scale);
}

/* dx += dy W_eff over n rows; weight gradients (added) where selected. */
static void linear_backward(const step_ctx *c, const linear *lin, float *dx, const float *dy, const float *x, int n) {
    const lqa_model *m = c->m;
    if (lin->W16)
        c->be->linear_bf16_backward(dx, dy, lin->W16, n, lin->in, lin->out, c->s->x16);
    else
        c->be->matmul_backward(dx, lin->dW, dy, x, lin->W, n, lin->in, lin->out);
    if (!lin->A) return;
    float scale = m->lora_alpha / m->lora_rank;
    if (lin->W16) /* x16 holds dy in bf16 from the line above; the LoRA backward then rounds x into it */
        c->be->lora_bf16_backward(dx, lin->dA, lin->dB, c->s->x16, x, c->s->x16, lin->t, lin->A, lin->B, n, lin->in,
                                  lin->out, m->lora_rank, scale, c->s->lora16);
    else
        c->be->lora_backward(dx, lin->dA, lin->dB, dy, x, lin->t, lin->A, lin->B, n, lin->in, lin->out,
                             m->lora_rank, scale, c->s->lora_scratch);
}

/* ---- the per-layer checkpoints (step_mem.h): fp32, or bf16 in bf16 runs ---- */

static size_t att_floats(const step_ctx *c) {
    return (size_t)c->N * c->m->cfg.n_heads * (c->m->cfg.dim / c->m->cfg.n_heads);
}

/* Points the shared activations' attention output and lse at layer l's saved slots (fp32
 * checkpointing with backward; bf16 runs save none and recompute the attention). */
static void use_saved_attention(const step_ctx *c, int l, layer_acts *la) {
    if (!c->s->att_saved) return;
    la->att = c->s->att_saved + (size_t)l * att_floats(c);
    la->lse = c->s->lse_saved + (size_t)l * c->N * c->m->cfg.n_heads;
}

/* Layer l's input (l = L: the final residual) as fp32: the checkpoint itself, or in bf16 runs the
 * bf16 checkpoint widened into x_in (the forward and the recompute read the same values). */
static const float *layer_input(const step_ctx *c, int l) {
    size_t ND = (size_t)c->N * c->m->cfg.dim;
    if (!c->s->xs16) return c->s->xs + l * ND;
    c->be->from_bf16(c->s->x_in, (const char *)c->s->xs16 + 2 * l * ND, ND);
    return c->s->x_in;
}
/* Where layer l writes its output (l = -1: the embedding), and keep_output stores it as the next
 * layer's checkpoint (bf16 runs: rounded to nearest even into xs16). */
static float *layer_output(const step_ctx *c, int l) {
    return c->s->xs16 ? c->s->x_out : c->s->xs + (l + 1) * (size_t)c->N * c->m->cfg.dim;
}
static void keep_output(const step_ctx *c, int l) {
    size_t ND = (size_t)c->N * c->m->cfg.dim;
    if (c->s->xs16) c->be->to_bf16((char *)c->s->xs16 + 2 * (l + 1) * ND, c->s->x_out, ND);
}

/* ---- the MLP, over row chunks of s->mlp_rows (one chunk: the whole batch) ---- */

static int mlp_chunked(const step_ctx *c) {
    return c->s->mlp_rows < c->N;
}

/* la->g, la->u, la->h of rows r0..r0+n-1 (the gate and up projections of xn2, and their SwiGLU). */
static void mlp_hidden_rows(const step_ctx *c, int l, const layer_acts *la, int r0, int n) {
    const lqa_model *m = c->m;
    linear g = linear_from_row(linear_of(m, l, T_GATE, la, NULL), r0, m->lora_rank);
    linear u = linear_from_row(linear_of(m, l, T_UP, la, NULL), r0, m->lora_rank);
    const float *xn2 = la->xn2 + (size_t)r0 * m->cfg.dim;
    linear_forward(c, &g, la->g, xn2, n, 0);
    linear_forward(c, &u, la->u, xn2, n, 0);
    c->be->swiglu_forward(la->h, la->g, la->u, (size_t)n * m->cfg.hidden_dim);
}

/* xout = x2 + h Wd^T, chunk by chunk. */
static void mlp_forward(const step_ctx *c, int l, const layer_acts *la, float *xout) {
    const lqa_model *m = c->m;
    int D = m->cfg.dim;
    c->be->copy(xout, la->x2, sizeof(float) * (size_t)c->N * D);
    for (int r0 = 0; r0 < c->N; r0 += c->s->mlp_rows) {
        int n = c->N - r0 < c->s->mlp_rows ? c->N - r0 : c->s->mlp_rows;
        mlp_hidden_rows(c, l, la, r0, n);
        linear d = linear_from_row(linear_of(m, l, T_DOWN, la, NULL), r0, m->lora_rank);
        linear_forward(c, &d, xout + (size_t)r0 * D, la->h, n, 1);
    }
}

/* s->dxn = dL/d(xn2) from s->dx = dL/d(layer output), chunk by chunk. Chunked, each chunk's g,
 * u and h are recomputed first (the buffers hold one chunk), and with LoRA on down_proj its
 * saved h A^T too: the down projection runs into the chunk's rows of dxn, zeroed after. */
static void mlp_backward(const step_ctx *c, int l, const layer_acts *la) {
    const lqa_model *m = c->m;
    const lqa_backend *be = c->be;
    step_mem *s = c->s;
    int D = m->cfg.dim, F = m->cfg.hidden_dim;
    size_t f = sizeof(float);
    be->zero(s->dxn, f * c->N * D);
    for (int r0 = 0; r0 < c->N; r0 += s->mlp_rows) {
        int n = c->N - r0 < s->mlp_rows ? c->N - r0 : s->mlp_rows;
        linear d = linear_from_row(linear_of(m, l, T_DOWN, la, &c->gs), r0, m->lora_rank);
        linear g = linear_from_row(linear_of(m, l, T_GATE, la, &c->gs), r0, m->lora_rank);
        linear u = linear_from_row(linear_of(m, l, T_UP, la, &c->gs), r0, m->lora_rank);
        float *dxn = s->dxn + (size_t)r0 * D;
        const float *xn2 = la->xn2 + (size_t)r0 * D;
        if (mlp_chunked(c)) {
            mlp_hidden_rows(c, l, la, r0, n);
            if (d.A) {
                linear_forward(c, &d, dxn, la->h, n, 0);
                be->zero(dxn, f * n * D);
            }
        }
        be->zero(s->dh, f * n * F);
        linear_backward(c, &d, s->dh, s->dx + (size_t)r0 * D, la->h, n);
        be->zero(s->dg, f * n * F);
        be->zero(s->du, f * n * F);
        be->swiglu_backward(s->dg, s->du, s->dh, la->g, la->u, (size_t)n * F);
        linear_backward(c, &g, dxn, s->dg, xn2, n);
        linear_backward(c, &u, dxn, s->du, xn2, n);
    }
}

/* ---- forward / backward of one layer ---- */

/* The layer's attention over its own keys or the KV cache's: fp32 kernels, or bf16 ones (a bf16
 * cache gets this chunk's keys and values rounded into its rows first). */
static void attention_forward(const step_ctx *c, layer_acts *la) {
    const lqa_backend *be = c->be;
    if (c->att_k16) {
        size_t kvd = (size_t)c->m->cfg.n_kv_heads * (c->m->cfg.dim / c->m->cfg.n_heads), at = 2 * c->kv_pos0 * kvd;
        be->to_bf16((char *)c->att_k16 + at, la->k, (size_t)c->N * kvd);
        be->to_bf16((char *)c->att_v16 + at, la->v, (size_t)c->N * kvd);
        be->attention_bf16_cached_forward(la->att, la->lse, la->q, c->att_k16, c->att_v16, &c->ap, c->s->attn16);
    } else if (c->m->params16) {
        be->attention_bf16_forward(la->att, la->lse, la->q, c->att_k ? c->att_k : la->k, c->att_v ? c->att_v : la->v,
                                   &c->ap, c->s->attn16);
    } else {
        be->attention_forward(la->att, la->lse, la->q, c->att_k ? c->att_k : la->k, c->att_v ? c->att_v : la->v,
                              &c->ap, c->s->attn_scratch);
    }
}

/* recompute: the backward's rerun of a checkpointed layer. It reruns what the backward reads:
 * the attention unless its output was saved (fp32 checkpointing: bitwise what the first
 * forward computed), and the MLP only when it runs in one chunk (a chunked backward recomputes
 * each chunk itself); xout is then not written. */
static void layer_forward(const step_ctx *c, int l, layer_acts *la, const float *x, float *xout, int recompute) {
    const lqa_model *m = c->m;
    const lqa_backend *be = c->be;
    const lqa_config *cfg = &m->cfg;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads;
    be->rmsnorm_forward(la->xn1, la->rstd1, x, layer_w(m, l, T_LN1), N, D, cfg->rms_eps);
    linear q = linear_of(m, l, T_Q, la, NULL), k = linear_of(m, l, T_K, la, NULL), v = linear_of(m, l, T_V, la, NULL);
    linear_forward(c, &q, la->q, la->xn1, N, 0);
    linear_forward(c, &k, la->k, la->xn1, N, 0);
    linear_forward(c, &v, la->v, la->xn1, N, 0);
    be->rope_forward(la->q, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_heads, hd);
    be->rope_forward(la->k, c->s->cos_t, c->s->sin_t, c->B, c->T, cfg->n_kv_heads, hd);
    if (!(recompute && c->s->att_saved)) attention_forward(c, la);
    linear o = linear_of(m, l, T_O, la, NULL);
    be->copy(la->x2, x, sizeof(float) * (size_t)N * D);
    linear_forward(c, &o, la->x2, la->att, N, 1); /* x2 = x + att Wo^T */
    be->rmsnorm_forward(la->xn2, la->rstd2, la->x2, layer_w(m, l, T_LN2), N, D, cfg->rms_eps);
    if (!(recompute && mlp_chunked(c))) mlp_forward(c, l, la, xout);
}

/* On entry s->dx holds dL/d(layer output); on exit dL/d(layer input). */
static void layer_backward(const step_ctx *c, int l, const layer_acts *la, const float *x) {
    const lqa_model *m = c->m;
    const lqa_backend *be = c->be;
    const lqa_config *cfg = &m->cfg;
    step_mem *s = c->s;
    int N = c->N, D = cfg->dim, hd = cfg->dim / cfg->n_heads;
    size_t Hq = (size_t)cfg->n_heads * hd, Hkv = (size_t)cfg->n_kv_heads * hd, f = sizeof(float);
    const grad_sel *gs = &c->gs;
    float *dnorm1 = NULL, *dnorm2 = NULL;
    if (gs->norms_embed) {
        dnorm1 = lqa_grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, T_LN1));
        dnorm2 = lqa_grad_at(gs->d_params, gs->compact, m, layer_tensor_index(l, T_LN2));
    }
    mlp_backward(c, l, la);
    be->rmsnorm_backward(s->dx, dnorm2, s->dxn, la->x2, layer_w(m, l, T_LN2), la->rstd2, N, D);
    /* attention */
    linear o = linear_of(m, l, T_O, la, gs);
    be->zero(s->datt, f * N * Hq);
    linear_backward(c, &o, s->datt, s->dx, la->att, N);
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
    linear_backward(c, &q, s->dxn, s->dq, la->xn1, N);
    linear_backward(c, &k, s->dxn, s->dk, la->xn1, N);
    linear_backward(c, &v, s->dxn, s->dv, la->xn1, N);
    be->rmsnorm_backward(s->dx, dnorm1, s->dxn, x, layer_w(m, l, T_LN1), la->rstd1, N, D);
}

/* ---- the lm_head ---------------------------------------------------------------------------- */

/* The chunked lm_head + cross-entropy of the target rows (crossentropy_fused_rows' contract):
 * a frozen bf16 head (the bf16 layout, untied) on tensor cores, else the fp32 one (fp32 models, a
 * tied head: the fp32 embedding, trained by lora+). */
static void head_loss(const step_ctx *c, float *dx, float *dW, const float *xf, const int32_t *targets,
                      const int32_t *rows, long count, float grad_scale) {
    const lqa_model *m = c->m;
    const lqa_config *cfg = &m->cfg;
    const void *W16 = base_w16(m, lm_head_index(m));
    step_mem *s = c->s;
    if (W16 && !dW)
        c->be->crossentropy_bf16_rows(dx, xf, W16, targets, rows, (int)count, cfg->dim, cfg->vocab_size, grad_scale,
                                      s->ce_chunk, s->ce_scratch, s->loss_sum);
    else
        c->be->crossentropy_fused_rows(dx, dW, xf, lqa_model_base_f32(m, (int)lm_head_index(m)), targets, rows,
                                       (int)count, cfg->dim, cfg->vocab_size, grad_scale, s->ce_chunk, s->ce_scratch,
                                       s->loss_sum);
}

/* logits [rows, V] = x W_head^T (fp32 out; a bf16 head reads x rounded to bf16, as the loss does). */
static void head_logits(const step_ctx *c, float *logits, const float *x, int rows) {
    const lqa_model *m = c->m;
    const void *W16 = base_w16(m, lm_head_index(m));
    if (W16)
        c->be->linear_bf16_forward(logits, x, W16, rows, m->cfg.dim, m->cfg.vocab_size, 0, c->s->x16);
    else
        c->be->matmul_forward(logits, x, lqa_model_base_f32(m, (int)lm_head_index(m)), rows, m->cfg.dim,
                              m->cfg.vocab_size, 0);
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

/* Inference: layer l's new keys and values go to the cache rows pos0.. and attention reads the
 * cache from position 0. An fp32 cache takes them straight (their projections and RoPE land
 * there); a bf16 one (the bf16 layout: half the memory, 52 GB at 7B 100k instead of 105) gets
 * them rounded to bf16 from the workspace, the rounding the bf16 attention applies anyway. */
struct lqa_kv {
    lqa_workspace *ws;  /* forward workspace for up to `chunk` tokens (B = 1) */
    int max_len, chunk;
    float *k, *v;       /* backend: [L][max_len][KV*hd] each (fp32 models) */
    void *k16, *v16;    /* the same in bf16 (bf16 layout); k and v NULL then */
    float *logits;      /* backend: [chunk, V] */
};

static void kv_layer(step_ctx *c, int l, layer_acts *la) {
    const lqa_config *cfg = &c->m->cfg;
    size_t kvd = (size_t)cfg->n_kv_heads * (cfg->dim / cfg->n_heads), layer = (size_t)c->kv->max_len * kvd;
    if (c->kv->k16) {
        c->att_k16 = (char *)c->kv->k16 + 2 * l * layer;
        c->att_v16 = (char *)c->kv->v16 + 2 * l * layer;
        return;
    }
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
    lqaCheck(!m->params16 || m->be16 == c->be, "the model's bf16 weights are in %s memory, its step runs on %s",
             m->be16 ? m->be16->name : "no", c->be->name);
    c->be->embedding_forward(layer_output(c, -1), s->tokens, lqa_model_base_f32(m, 0), c->N, cfg->dim);
    keep_output(c, -1);
    for (int l = 0; l < cfg->n_layers; l++) {
        layer_acts *la = &s->acts[keep_all ? l : 0];
        use_saved_attention(c, l, la);
        if (c->kv) kv_layer(c, l, la);
        layer_forward(c, l, la, layer_input(c, l), layer_output(c, l), 0);
        keep_output(c, l);
    }
    c->be->rmsnorm_forward(s->xf, s->rstdf, layer_input(c, cfg->n_layers),
                           lqa_model_base_f32(m, (int)final_norm_index(m)), c->N, cfg->dim, cfg->rms_eps);
}

/* Carves ws for the batch, stages it and fills the step context; returns the target count. */
static long begin_step(step_ctx *c, lqa_workspace *ws, const lqa_model *m, const lqa_batch *b,
                       const lqa_step_opts *o, int backward) {
    lqa_err err;
    if (o && lqa_model_check_opts(m, b->T, o, &err) != 0) lqa_fatal("%s", err.msg);
    lqaCheck(ws->be == lqa_model_backend(m), "workspace on %s, model on %s", ws->be->name, lqa_model_backend(m)->name);
    lqa_step_threads(o);
    memset(c, 0, sizeof *c);
    c->m = m;
    c->be = ws->be;
    c->B = b->B;
    c->T = b->T;
    c->N = b->B * b->T;
    c->s = lqa_workspace_carve(ws, m, b->B, b->T, o, backward);
    lqa_workspace_rope(ws, &m->cfg, b->T, 0);
    long count = stage_batch(ws, m, b);
    c->ap = lqa_step_attn(m, b->B, b->T, o, b->segment_ids ? c->s->seg : NULL);
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
    size_t ND = (size_t)c.N * cfg->dim;
    int lm_trained = c.gs.d_params && (o->train == LQA_TRAIN_FULL || (cfg->tie_embeddings && c.gs.norms_embed));
    size_t lm_index = lm_head_index(m);
    float *dW_lm = lm_trained ? lqa_grad_at(c.gs.d_params, c.gs.compact, m, lm_index) : NULL;
    if (backward) be->zero(s->dxf, sizeof(float) * ND);
    be->zero(s->loss_sum, sizeof(double));
    head_loss(&c, backward ? s->dxf : NULL, dW_lm, s->xf, s->targets, s->rows, count, 1.0f / count);
    if (loss_acc) be->crossentropy_mean_add(loss_acc, s->loss_sum, count);
    if (!backward) return;
    float *dnorm = c.gs.norms_embed ? lqa_grad_at(c.gs.d_params, c.gs.compact, m, final_norm_index(m)) : NULL;
    be->zero(s->dx, sizeof(float) * ND);
    const float *wf = lqa_model_base_f32(m, (int)final_norm_index(m));
    be->rmsnorm_backward(s->dx, dnorm, s->dxf, layer_input(&c, cfg->n_layers), wf, s->rstdf, c.N, cfg->dim);
    for (int l = cfg->n_layers - 1; l >= 0; l--) {
        layer_acts *la = &s->acts[keep_all ? l : 0];
        const float *x = layer_input(&c, l);
        if (!keep_all) { /* recompute the checkpointed layer (its output, where written, is not used) */
            use_saved_attention(&c, l, la);
            layer_forward(&c, l, la, x, layer_output(&c, l), 1);
        }
        layer_backward(&c, l, la, x);
    }
    float *dwte = c.gs.norms_embed ? lqa_grad_at(c.gs.d_params, c.gs.compact, m, 0) : NULL;
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
    head_logits(&c, dev, c.s->xf, c.N);
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
    if (m->params16) {
        kv->k16 = be->alloc(2 * cache);
        kv->v16 = be->alloc(2 * cache);
    } else {
        kv->k = be->alloc(sizeof(float) * cache);
        kv->v = be->alloc(sizeof(float) * cache);
    }
    kv->logits = be->alloc(sizeof(float) * (size_t)kv->chunk * cfg->vocab_size);
    return kv;
}

void lqa_kv_free(lqa_kv *kv) {
    if (!kv) return;
    const lqa_backend *be = kv->ws->be;
    be->free(kv->k);
    be->free(kv->v);
    be->free(kv->k16);
    be->free(kv->v16);
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
    lqa_step_threads(&o);
    step_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.be = ws->be;
    c.B = 1;
    c.T = n;
    c.N = n;
    c.s = lqa_workspace_carve(ws, m, 1, n, &o, 0);
    lqaCheck(!m->params16 == !kv->k16, "KV cache made before lqa_model_use_bf16 (or the reverse)");
    c.kv = kv;
    c.kv_pos0 = pos0;
    c.ap = (attn_params){.B = 1, .Tq = n, .Tk = pos0 + n, .H = cfg->n_heads, .KV = cfg->n_kv_heads,
                         .hd = cfg->dim / cfg->n_heads};
    lqa_workspace_rope(ws, cfg, n, pos0);
    for (int i = 0; i < n; i++)
        lqaCheck(tokens[i] >= 0 && tokens[i] < cfg->vocab_size, "token %d at %d outside vocab [0, %d)", tokens[i], i,
                 cfg->vocab_size);
    ws->be->to_device(c.s->tokens, tokens, sizeof(int32_t) * (size_t)n);
    forward_all(&c, 0);
    if (logits && logits_from < n) {
        int rows = n - logits_from;
        size_t bytes = sizeof(float) * (size_t)rows * cfg->vocab_size;
        head_logits(&c, kv->logits, c.s->xf + (size_t)logits_from * cfg->dim, rows);
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
            head_loss(&c, NULL, NULL, c.s->xf, c.s->targets, c.s->rows, count, 0.0f);
            ws->be->to_host(&sum, c.s->loss_sum, sizeof sum);
        }
        *nll += sum;
    }
}
