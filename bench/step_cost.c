/* step_cost.c: what `lqa-sft bench` reports beside its timings: the FLOPs of one training step
 * (a model of what the step executes), peak RSS, and OpenBLAS sgemm's own GFLOP/s as the
 * machine's reference. Measurement code, linked into lqa-sft for its bench command only (the
 * Makefile); nothing of the product calls it. See step_cost.h. */
#include "bench/step_cost.h"

#include <stdlib.h>
#include <sys/resource.h>

#include <cblas.h>

#include "common/check.h"
#include "common/progress.h"
#include "kernels/common.h"

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

double lqa_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Best-of-3 GFLOP/s of C[M,N] = A[M,K] B[N,K]^T by OpenBLAS itself on the training threads (the
 * kernels keep OpenBLAS single-threaded and split GEMMs over OpenMP, so the reference gets its
 * own thread count for the measurement and is put back afterwards). */
double lqa_sgemm_gflops(int M, int N, int K) {
    openblas_set_num_threads(kernels_get_threads());
    float *a = lqa_malloc(sizeof(float) * (size_t)M * K), *b = lqa_malloc(sizeof(float) * (size_t)K * N),
          *c = lqa_malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t = lqa_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        t = lqa_now() - t;
        if (rep > 0 && t < best) best = t;
    }
    openblas_set_num_threads(1);
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best / 1e9;
}
