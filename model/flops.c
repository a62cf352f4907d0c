/* flops.c: the FLOP counts of a training step (see flops.h). */
#include "model/flops.h"

/* Visible (query, key) pairs of one causal segment of length s. */
static double causal_pairs(double s) {
    return s * (s + 1) / 2;
}

/* Score pairs a head computes for a length-T sequence: full causal, or S2's segments. */
static double attn_pairs(int T, const lqa_step_opts *so, int shifted) {
    if (so->attn != LQA_ATTN_S2) return causal_pairs(T);
    double G = (double)T * so->group_ratio, n = (double)T / G;
    return shifted ? (n - 1) * causal_pairs(G) + 2 * causal_pairs(G / 2) : n * causal_pairs(G);
}

/* FLOPs one training step executes: forward, per-layer recompute with checkpointing, backward
 * (input gradients always, weight gradients for trained linears; FlashAttention-2's backward is
 * 5 score-sized matmuls against the forward's 2). LoRA branches included, elementwise ops not. */
lqa_step_flops lqa_count_step_flops(const lqa_model *m, int B, int T, const lqa_step_opts *so) {
    const lqa_config *c = &m->cfg;
    double N = (double)B * T, D = c->dim, hd = (double)c->dim / c->n_heads, Hq = c->n_heads * hd,
           Hkv = c->n_kv_heads * hd, F = c->hidden_dim, V = c->vocab_size;
    double layer_w = D * Hq + 2 * D * Hkv + Hq * D + 3 * D * F;
    double lora_w = (double)m->n_lora / c->n_layers; /* the adapter's weights per layer (model.h layout) */
    double pairs = (double)c->n_heads / 2 * (attn_pairs(T, so, 0) + attn_pairs(T, so, 1));
    double attn_fwd = 4 * hd * pairs * B;
    double layer_fwd = 2 * N * (layer_w + lora_w) + attn_fwd;
    double head_fwd = 2 * N * V * D;
    int full = so->train == LQA_TRAIN_FULL;
    double layer_bwd = 2 * N * layer_w * (full ? 2 : 1) + 2 * N * lora_w * 2 + 2.5 * attn_fwd;
    double head_bwd = 2 * N * V * D * (full || c->tie_embeddings ? 2 : 1);
    double L = c->n_layers;
    lqa_step_flops f;
    f.total = L * layer_fwd * (so->checkpointing ? 2 : 1) + head_fwd + L * layer_bwd + head_bwd;
    f.attention = L * attn_fwd * ((so->checkpointing ? 2 : 1) + 2.5);
    return f;
}

/* The MFU convention: forward 2 FLOPs per weight per token, backward 4; attention's QK^T and PV
 * are 2 x 2 (H hd) FLOPs per visible key forward, 3x that with the backward, over T_seen / 2
 * visible keys on average (causal). The embedding is a lookup; LoRA (< 0.1 %) is left out. */
double lqa_model_flops_per_token(const lqa_config *c, int T, const lqa_step_opts *so) {
    double D = c->dim, hd = (double)c->dim / c->n_heads, Hq = c->n_heads * hd, Hkv = c->n_kv_heads * hd,
           F = c->hidden_dim, V = c->vocab_size, L = c->n_layers;
    double linear = L * (D * Hq + 2 * D * Hkv + Hq * D + 3 * D * F) + V * D;
    double seen = so->attn == LQA_ATTN_S2 ? (double)T * so->group_ratio : (double)T;
    return 6 * linear + 6 * L * Hq * seen;
}
