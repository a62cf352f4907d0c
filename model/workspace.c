/* model/workspace.c: the memory of a model step (model.h). Every buffer of a step is carved out of
 * ONE allocation, the workspace, planned once per run for the largest batch (lqa_workspace_new)
 * and re-carved per batch by the same planner (plan_step), so the estimate (lqa_workspace_bytes)
 * is exact and linear in T, and no step allocates. The planner runs twice: with a NULL base it
 * only counts, then it carves. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/crossentropy.h"
#include "kernels/crossentropy_bf16.h"
#include "kernels/matmul_bf16.h"
#include "model/step_mem.h"

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

/* own_attention = 0: att and lse point into the per-layer saved slots instead. */
static void plan_acts(arena *a, layer_acts *la, const lqa_model *m, size_t N, size_t mlp_rows, int own_attention) {
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
    la->g = TAKE_F(a, mlp_rows * F);
    la->u = TAKE_F(a, mlp_rows * F);
    la->h = TAKE_F(a, mlp_rows * F);
    for (int i = 0; i < N_LORA_TARGETS; i++)
        la->lora_t[i] = (has_lora(m) && (m->lora_targets & (1 << i))) ? TAKE_F(a, N * m->lora_rank) : NULL;
}

attn_params lqa_step_attn(const lqa_model *m, int B, int T, const lqa_step_opts *o, const int32_t *seg) {
    attn_params p = {.B = B, .Tq = T, .Tk = T, .H = m->cfg.n_heads, .KV = m->cfg.n_kv_heads,
                     .hd = m->cfg.dim / m->cfg.n_heads, .segment_ids = seg};
    if (o && o->attn == LQA_ATTN_S2) p.group = lqa_s2_group(T, o->group_ratio);
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
    int bf16 = m->params16 != NULL; /* checkpoints in bf16, no saved attention (step_mem.h) */
    if (bf16) s->xs16 = take(a, 2 * (L + 1) * N * D);
    else s->xs = TAKE_F(a, (L + 1) * N * D);
    s->n_acts = (backward && !(o && o->checkpointing)) ? L : 1;
    int saved_attention = backward && s->n_acts == 1 && !bf16; /* (pointers are NULL while sizing) */
    if (saved_attention) {
        s->att_saved = TAKE_F(a, (size_t)L * N * Hq);
        s->lse_saved = TAKE_F(a, (size_t)L * N * c->n_heads);
    }
    a->saved += a->used - before;
    s->acts = acts;
    size_t rows = bf16 ? (size_t)(o && o->mlp_rows > 0 ? o->mlp_rows : LQA_MLP_ROWS) : N;
    s->mlp_rows = (int)(rows < N ? rows : N);
    float *xn1_shared = NULL; /* the one set's xn1, when the layers share one set */
    for (int l = 0; l < s->n_acts; l++) {
        layer_acts tmp;
        plan_acts(a, &tmp, m, N, (size_t)s->mlp_rows, !saved_attention);
        if (acts) acts[l] = tmp;
        xn1_shared = tmp.xn1;
    }
    if (bf16) s->x_in = TAKE_F(a, N * D);
    if (bf16 && !backward) s->x_out = TAKE_F(a, N * D);
    /* bf16: the final norm's output lives in the shared set's xn1 (free after the last layer's
     * forward; the head reads it before any recompute), and dxf below in dq (free until the
     * first layer's backward): 2 x N x D x 4 B less, 3.3 GB at 7B 100k */
    int share = bf16 && s->n_acts == 1;
    s->xf = share ? xn1_shared : TAKE_F(a, N * D);
    s->rstdf = TAKE_F(a, N);
    attn_params ap = lqa_step_attn(m, B, T, o, NULL);
    s->attn_scratch = TAKE_F(a, be->attention_scratch_floats(&ap));
    s->ce_chunk = ce_chunk_rows((int)N, c->vocab_size);
    size_t ce_bytes = sizeof(float) * crossentropy_scratch_floats(s->ce_chunk, c->dim, c->vocab_size);
    if (m->params16) { /* a bf16 head's loss (step.c head_loss) carves the same scratch its own way */
        size_t b16 = crossentropy_bf16_scratch_bytes(s->ce_chunk, c->dim, c->vocab_size);
        ce_bytes = b16 > ce_bytes ? b16 : ce_bytes;
    }
    s->ce_scratch = take(a, ce_bytes);
    if (m->params16) {
        size_t widest = D > Hq ? D : Hq;
        size_t x16 = N * widest > (size_t)s->mlp_rows * F ? N * widest : (size_t)s->mlp_rows * F;
        s->x16 = take(a, 2 * x16);
        if (be->attention_bf16_scratch_bytes) s->attn16 = take(a, be->attention_bf16_scratch_bytes(&ap));
        size_t io = widest > F ? widest : F; /* bounds every linear's In and Out */
        if (has_lora(m)) s->lora16 = take(a, lora_bf16_scratch_bytes(backward ? N : 0, io, io, m->lora_rank));
    }
    if (!backward) return;
    s->dx = TAKE_F(a, N * D);
    s->dxn = TAKE_F(a, N * D);
    if (bf16) s->x_out = s->dxn; /* free in the forward and in a recompute (the backward zeroes it) */
    s->dq = TAKE_F(a, N * Hq);
    s->dxf = bf16 ? s->dq : TAKE_F(a, N * D); /* Hq = D: heads x head dim is the model dim */
    s->datt = TAKE_F(a, N * Hq);
    s->dk = TAKE_F(a, N * Hkv);
    s->dv = TAKE_F(a, N * Hkv);
    s->dg = TAKE_F(a, (size_t)s->mlp_rows * F);
    s->du = TAKE_F(a, (size_t)s->mlp_rows * F);
    s->dh = TAKE_F(a, (size_t)s->mlp_rows * F);
    s->lora_scratch = has_lora(m) && !m->params16 ? TAKE_F(a, N * m->lora_rank) : NULL; /* bf16: in lora16 */
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

void lqa_step_threads(const lqa_step_opts *o) {
    int want = o && o->threads > 0 ? o->threads : 0;
    if (want != kernels_get_threads() || want == 0) kernels_set_threads(want);
}

lqa_workspace *lqa_workspace_new(const lqa_model *m, int B, int T, const lqa_step_opts *o, int backward) {
    lqa_step_threads(o);
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

step_mem *lqa_workspace_carve(lqa_workspace *ws, const lqa_model *m, int B, int T, const lqa_step_opts *o, int backward) {
    lqaCheck((size_t)B * T <= (size_t)ws->B * ws->T && T <= ws->T && (!backward || ws->backward),
             "a %d x %d batch%s does not fit a workspace planned for %d x %d%s", B, T, backward ? " with gradients" : "",
             ws->B, ws->T, ws->backward ? " with gradients" : "");
    arena a = {ws->base, 0, 0};
    plan_step(&a, &ws->s, ws->acts, m, ws->be, B, T, o, backward);
    lqaCheck(a.used + 256 <= ws->bytes, "step memory plan (%zu bytes) exceeds its workspace (%zu)", a.used, ws->bytes);
    return &ws->s;
}

void lqa_workspace_rope(lqa_workspace *ws, const lqa_config *cfg, int T, int pos0) {
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
