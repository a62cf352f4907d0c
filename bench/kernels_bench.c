/* bench/kernels_bench.c: speed of the CPU ops against OpenBLAS sgemm on this machine.
 *   lqa-kernels-bench [--threads N] [--T 2048] [--reps 3] [--vocab 8000] [--tile-q 64 --tile-k 64]
 * Prints one JSON line per measurement: the bytes a step allocates per ctx; attention forward
 * and backward GFLOP/s (useful FLOPs: the causal / S2 visible part, 4*hd per visible score
 * forward, 10*hd backward) for full causal and S2-Attn; and the whole model step (demo shape,
 * LoRA+, checkpointing) tokens/s and GFLOP/s. Each timed line carries the rate of a 1024^3
 * sgemm (OpenBLAS through gemm_cpu, same threads) timed in alternation with it, so ratios
 * compare like with like. Times are the best of --reps runs (the machine may be shared: the
 * minimum is the least disturbed). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/check.h"
#include "common/rng.h"
#include "kernels/attention.h"
#include "kernels/common.h"
#include "kernels/matmul.h"
#include "model/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randn(lqa_rng *r, size_t n, float std) {
    float *x = lqa_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = std * lqa_rng_normal(r);
    return x;
}

/* A square sgemm (the reference rate), on the same threads as the ops. */
typedef struct sgemm_ref {
    int n;
    float *a, *b, *c;
    double best; /* seconds */
} sgemm_ref;

static void sgemm_init(sgemm_ref *s, int n) {
    lqa_rng r;
    lqa_rng_seed(&r, 1);
    s->n = n;
    s->a = randn(&r, (size_t)n * n, 1), s->b = randn(&r, (size_t)n * n, 1), s->c = randn(&r, (size_t)n * n, 1);
    s->best = 1e30;
}
static void sgemm_once(sgemm_ref *s) {
    double t0 = now();
    gemm_cpu(0, 1, s->n, s->n, s->n, 1, s->a, s->n, s->b, s->n, 0, s->c, s->n);
    s->best = fmin(s->best, now() - t0);
}
static double sgemm_gflops(const sgemm_ref *s) { return 2.0 * s->n * s->n * (double)s->n / s->best / 1e9; }
static void sgemm_free(sgemm_ref *s) { free(s->a), free(s->b), free(s->c); }

/* Visible scores of p (exact count through the mask rule would be O(T^2): use the formula). */
static double visible_scores(const attn_params *p) {
    double T = p->Tk;
    if (!p->group) return p->B * p->H * T * (T + 1) / 2;
    double G = p->group, plain = (T / G) * G * (G + 1) / 2, half = G / 2;
    double shifted = 2 * half * (half + 1) / 2 + (T / G - 1) * G * (G + 1) / 2;
    return p->B * (p->H / 2 * plain + (p->H - p->H / 2) * shifted);
}

static int tile_q = 0, tile_k = 0;

static void bench_attention(int T, int group, int reps, int threads) {
    attn_params p = {.B = 1, .Tq = T, .Tk = T, .H = 8, .KV = 8, .hd = 32, .group = group, .tile_q = tile_q, .tile_k = tile_k};
    lqa_rng r;
    lqa_rng_seed(&r, 2);
    size_t n = (size_t)T * p.H * p.hd;
    float *q = randn(&r, n, 1), *k = randn(&r, n, 1), *v = randn(&r, n, 1), *dout = randn(&r, n, 1);
    float *out = lqa_calloc(n, 4), *lse = lqa_calloc((size_t)T * p.H, 4), *dq = lqa_calloc(n, 4),
          *dk = lqa_calloc(n, 4), *dv = lqa_calloc(n, 4);
    float *scratch = lqa_malloc(sizeof(float) * attention_scratch_floats(&p, omp_get_max_threads()));
    attention_forward_cpu(out, lse, q, k, v, &p, scratch);
    double tf = 1e30, tb = 1e30;
    sgemm_ref ref;
    sgemm_init(&ref, 1024);
    for (int i = 0; i < reps; i++) {
        sgemm_once(&ref);
        double t0 = now();
        attention_forward_cpu(out, lse, q, k, v, &p, scratch);
        tf = fmin(tf, now() - t0);
        t0 = now();
        attention_backward_cpu(dq, dk, dv, dout, out, lse, q, k, v, &p, scratch);
        tb = fmin(tb, now() - t0);
    }
    double vis = visible_scores(&p);
    size_t total, tiles = attention_count_tiles(&p, &total);
    printf("{\"bench\":\"attention\",\"tile\":\"%dx%d\",\"T\":%d,\"H\":%d,\"hd\":%d,\"group\":%d,\"threads\":%d,\"fwd_s\":%.4f,"
           "\"bwd_s\":%.4f,\"fwd_gflops\":%.2f,\"bwd_gflops\":%.2f,\"sgemm_gflops\":%.2f,\"tiles\":%zu,\"tiles_total\":%zu}\n",
           tile_q ? tile_q : 64, tile_k ? tile_k : 64, T, p.H, p.hd, group, threads, tf, tb, 4.0 * p.hd * vis / tf / 1e9, 10.0 * p.hd * vis / tb / 1e9,
           sgemm_gflops(&ref), tiles, total);
    sgemm_free(&ref);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv), free(scratch);
}

/* Forward+backward FLOPs of one step: 6 * (linear params touched per token) * tokens plus the
 * attention's visible scores (4 hd forward + 10 hd backward each, per layer). */
static double step_flops(const lqa_model *m, int T, const attn_params *ap) {
    const lqa_config *c = &m->cfg;
    double D = c->dim, hd = D / c->n_heads, F = c->hidden_dim, V = c->vocab_size;
    double lin = D * (c->n_heads * hd) * 2 + D * (c->n_kv_heads * hd) * 2 + 3 * D * F;
    double per_token = 6 * (c->n_layers * lin + V * D);
    return per_token * T + c->n_layers * 14.0 * hd * visible_scores(ap);
}

static void bench_step(int T, lqa_attn_mode attn, int reps, int threads, int V) {
    lqa_config c = {.vocab_size = V, .dim = 256, .n_layers = 4, .n_heads = 8, .n_kv_heads = 8, .hidden_dim = 688,
                    .max_pos = 2048, .rope_theta = 10000, .rope_scale = 1, .rms_eps = 1e-5f};
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_init_random(&m, 3);
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O, 8, 16, 4);
    lqa_rng r;
    lqa_rng_seed(&r, 5);
    int32_t *tok = lqa_malloc(sizeof(int32_t) * T);
    uint8_t *mask = lqa_malloc(T);
    for (int t = 0; t < T; t++) tok[t] = (int32_t)lqa_rng_below(&r, V), mask[t] = t > 0;
    lqa_batch b = {.B = 1, .T = T, .tokens = tok, .loss_mask = mask};
    lqa_step_opts o = {.attn = attn, .group_ratio = 0.25f, .train = LQA_TRAIN_LORA_PLUS, .checkpointing = 1,
                       .threads = threads};
    lqa_grads g = {lqa_calloc(m.n_params, 4), lqa_calloc(m.n_lora, 4), 0};
    lqa_model_step(&m, &b, &o, &g);
    float loss = 0;
    double dt = 1e30;
    sgemm_ref ref;
    sgemm_init(&ref, 1024);
    for (int i = 0; i < reps; i++) {
        sgemm_once(&ref);
        double t0 = now();
        loss = lqa_model_step(&m, &b, &o, &g);
        dt = fmin(dt, now() - t0);
    }
    attn_params ap = {.B = 1, .Tq = T, .Tk = T, .H = 8, .KV = 8, .hd = 32,
                      .group = attn == LQA_ATTN_S2 ? T / 4 : 0};
    double fl = step_flops(&m, T, &ap); /* useful FLOPs: the checkpointing recompute is not counted */
    printf("{\"bench\":\"step\",\"T\":%d,\"attn\":\"%s\",\"V\":%d,\"threads\":%d,\"step_s\":%.4f,\"tokens_per_s\":%.1f,"
           "\"gflops\":%.2f,\"sgemm_gflops\":%.2f,\"of_sgemm\":%.3f,\"loss\":%.4f,\"step_bytes\":%zu}\n",
           T, attn == LQA_ATTN_S2 ? "s2" : "full", V, threads, dt, T / dt, fl / dt / 1e9, sgemm_gflops(&ref),
           fl / dt / 1e9 / sgemm_gflops(&ref), loss,
           lqa_model_step_bytes(&m, 1, T, &o));
    sgemm_free(&ref);
    free(tok), free(mask), free(g.d_params), free(g.d_lora);
    lqa_model_free(&m);
}

/* The bytes one step allocates (demo shape, LoRA+ on q,k,v,o, B = 1), per ctx and mode. */
static void bench_step_memory(int V) {
    lqa_config c = {.vocab_size = V, .dim = 256, .n_layers = 4, .n_heads = 8, .n_kv_heads = 8, .hidden_dim = 688,
                    .max_pos = 2048, .rope_theta = 10000, .rope_scale = 1, .rms_eps = 1e-5f};
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O, 8, 16, 4);
    for (int mode = 0; mode < 4; mode++)
        for (int T = 2048; T <= 16384; T *= 2) {
            lqa_step_opts o = {.attn = mode & 1 ? LQA_ATTN_S2 : LQA_ATTN_FULL, .group_ratio = 0.25f,
                               .train = LQA_TRAIN_LORA_PLUS, .checkpointing = mode >> 1};
            printf("{\"bench\":\"step_bytes\",\"T\":%d,\"attn\":\"%s\",\"checkpointing\":%d,\"V\":%d,\"bytes\":%zu}\n", T,
                   mode & 1 ? "s2" : "full", mode >> 1, V, lqa_model_step_bytes(&m, 1, T, &o));
        }
    lqa_model_free(&m);
}

int main(int argc, char **argv) {
    int threads = 0, T = 2048, reps = 3, V = 8000, no_step = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--vocab")) V = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tile-q")) tile_q = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tile-k")) tile_k = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--no-step")) no_step = atoi(argv[i + 1]);
        else lqa_fatal("unknown option %s", argv[i]);
    }
    kernels_set_threads(threads);
    threads = kernels_get_threads();
    bench_step_memory(V);
    bench_attention(T, 0, reps, threads);
    bench_attention(T, T / 4, reps, threads);
    if (no_step) return 0;
    bench_step(T, LQA_ATTN_FULL, reps, threads, V);
    bench_step(T, LQA_ATTN_S2, reps, threads, V);
    return 0;
}
