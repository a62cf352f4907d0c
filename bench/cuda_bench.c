/* bench/cuda_bench.c: each CUDA op against its CPU reference, timed in the same run on the same
 * inputs, at the demo model's shapes (hidden 2048, 16 heads of 128, MLP 5504, vocab 32000, LoRA
 * rank 8, one sequence of T tokens). Prints a Markdown table: op, shape, CPU ms, CUDA ms, speedup,
 * CUDA GFLOP/s (useful FLOPs; attention counts only the visible scores: 4*hd per score forward,
 * 10*hd backward, as bench/kernels_bench.c does) and the largest |CUDA - CPU| of the op's output
 * over the output's largest |value|, measured on a first run from identical inputs, so a fast
 * but wrong kernel shows.
 *   lqa-cuda-bench [--T 2048] [--threads N] [--reps 5]
 * Without a device (or built without CUDA) it prints "# skip: <reason>" and exits 0.
 * Timing: host wall clock around one call, the GPU synchronised before and after; best of
 * --reps runs after a warm-up (the CPU side: best of min(reps, 2)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/check.h"
#include "common/rng.h"
#include "kernels/attention.h"
#include "kernels/common.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#ifdef LQA_CUDA
#include "kernels/cuda/device.h"

enum { DIM = 2048, HEADS = 16, HD = 128, FFN = 5504, VOCAB = 32000, RANK = 8, CE_ROWS_MAX = 512, CE_CHUNK = 256 };

static int T = 2048, reps = 5;
static lqa_rng rng;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A host array and its device copy (same values at creation). */
typedef struct {
    float *h, *d;
    size_t n;
} pair;
static pair pair_randn(size_t n, float std) {
    pair p = {lqa_malloc(sizeof(float) * (n ? n : 1)), NULL, n};
    for (size_t i = 0; i < n; i++) p.h[i] = std * lqa_rng_normal(&rng);
    p.d = lqa_cuda_upload(p.h, sizeof(float) * n);
    return p;
}
static void pair_free(pair *p) {
    free(p->h);
    lqa_cuda_free(p->d);
}
/* Largest |device - host| over the largest finite |host|. */
static double rel_diff(const pair *p) {
    float *got = lqa_malloc(sizeof(float) * (p->n ? p->n : 1));
    lqa_cuda_to_host(got, p->d, sizeof(float) * p->n);
    double md = 0, ms = 1e-30;
    for (size_t i = 0; i < p->n; i++) {
        if (!isfinite(p->h[i])) continue;
        double d = fabs((double)got[i] - p->h[i]), s = fabs((double)p->h[i]);
        md = d > md ? d : md;
        ms = s > ms ? s : ms;
    }
    free(got);
    return md / ms;
}

/* One benchmark case: run(ctx, cuda) calls the op once on the CPU (cuda = 0) or the GPU side. */
typedef void (*run_fn)(void *ctx, int cuda);

static double best_ms(run_fn run, void *ctx, int cuda, int n) {
    double best = INFINITY;
    for (int i = 0; i < n; i++) {
        if (cuda) lqa_cuda_sync();
        double t0 = now();
        run(ctx, cuda);
        if (cuda) lqa_cuda_sync();
        double dt = (now() - t0) * 1e3;
        best = dt < best ? dt : best;
    }
    return best;
}

/* First run of both sides from the same inputs -> difference of `out`; then the timings. */
static void bench(const char *op, const char *shape, run_fn run, void *ctx, const pair *out, double gflop) {
    run(ctx, 0);
    run(ctx, 1);
    double diff = rel_diff(out);
    double cpu = best_ms(run, ctx, 0, reps < 2 ? reps : 2);
    run(ctx, 1); /* warm-up */
    double gpu = best_ms(run, ctx, 1, reps);
    char rate[32] = "-";
    if (gflop > 0) snprintf(rate, sizeof rate, "%.0f", gflop / (gpu * 1e-3));
    printf("| %s | %s | %.3f | %.3f | %.1fx | %s | %.1e |\n", op, shape, cpu, gpu, cpu / gpu, rate, diff);
    fflush(stdout);
}

/* ---- cases ---- */

typedef struct {
    pair x, W, y, dy, dx, dW;
    int N, In, Out;
} mm_ctx;
static void mm_fwd(void *c_, int cuda) {
    mm_ctx *c = c_;
    if (cuda) matmul_forward_cuda(c->y.d, c->x.d, c->W.d, c->N, c->In, c->Out, 0);
    else matmul_forward_cpu(c->y.h, c->x.h, c->W.h, c->N, c->In, c->Out, 0);
}
static void mm_bwd(void *c_, int cuda) {
    mm_ctx *c = c_;
    if (cuda) matmul_backward_cuda(c->dx.d, c->dW.d, c->dy.d, c->x.d, c->W.d, c->N, c->In, c->Out);
    else matmul_backward_cpu(c->dx.h, c->dW.h, c->dy.h, c->x.h, c->W.h, c->N, c->In, c->Out);
}
static void case_matmul(void) {
    mm_ctx c = {.N = T, .In = DIM, .Out = DIM};
    c.x = pair_randn((size_t)T * DIM, 1), c.W = pair_randn((size_t)DIM * DIM, 0.02f);
    c.y = pair_randn((size_t)T * DIM, 1), c.dy = pair_randn((size_t)T * DIM, 1);
    c.dx = pair_randn((size_t)T * DIM, 1), c.dW = pair_randn((size_t)DIM * DIM, 1);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d * %dx%d^T", T, DIM, DIM, DIM);
    double f = 2.0 * T * DIM * DIM / 1e9;
    bench("matmul forward (cuBLAS)", shape, mm_fwd, &c, &c.y, f);
    bench("matmul backward dx+dW", shape, mm_bwd, &c, &c.dW, 2 * f);
    pair_free(&c.x), pair_free(&c.W), pair_free(&c.y), pair_free(&c.dy), pair_free(&c.dx), pair_free(&c.dW);
}

typedef struct {
    pair x, A, B, y, t, dy, dx, dA, dB, scratch;
    int N, In, Out, r;
} lora_ctx;
static void lora_fb(void *c_, int cuda) {
    lora_ctx *c = c_;
    if (cuda) {
        lora_forward_cuda(c->y.d, c->t.d, c->x.d, c->A.d, c->B.d, c->N, c->In, c->Out, c->r, 2.0f);
        lora_backward_cuda(c->dx.d, c->dA.d, c->dB.d, c->dy.d, c->x.d, c->t.d, c->A.d, c->B.d, c->N, c->In, c->Out,
                           c->r, 2.0f, c->scratch.d);
    } else {
        lora_forward_cpu(c->y.h, c->t.h, c->x.h, c->A.h, c->B.h, c->N, c->In, c->Out, c->r, 2.0f);
        lora_backward_cpu(c->dx.h, c->dA.h, c->dB.h, c->dy.h, c->x.h, c->t.h, c->A.h, c->B.h, c->N, c->In, c->Out,
                          c->r, 2.0f, c->scratch.h);
    }
}
static void case_lora(void) {
    lora_ctx c = {.N = T, .In = DIM, .Out = DIM, .r = RANK};
    c.x = pair_randn((size_t)T * DIM, 1), c.A = pair_randn((size_t)RANK * DIM, 0.02f);
    c.B = pair_randn((size_t)DIM * RANK, 0.02f), c.y = pair_randn((size_t)T * DIM, 1);
    c.t = pair_randn((size_t)T * RANK, 1), c.dy = pair_randn((size_t)T * DIM, 1);
    c.dx = pair_randn((size_t)T * DIM, 1), c.dA = pair_randn((size_t)RANK * DIM, 1);
    c.dB = pair_randn((size_t)DIM * RANK, 1), c.scratch = pair_randn((size_t)T * RANK, 0);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d %d->%d r=%d", T, DIM, DIM, RANK);
    bench("lora forward+backward", shape, lora_fb, &c, &c.dA, 2.0 * T * RANK * DIM * 2 * 3 / 1e9);
    pair *all[] = {&c.x, &c.A, &c.B, &c.y, &c.t, &c.dy, &c.dx, &c.dA, &c.dB, &c.scratch};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
}

typedef struct {
    pair x, w, y, rstd, dy, dx, dw;
    int N, D;
} rms_ctx;
static void rms_fb(void *c_, int cuda) {
    rms_ctx *c = c_;
    if (cuda) {
        rmsnorm_forward_cuda(c->y.d, c->rstd.d, c->x.d, c->w.d, c->N, c->D, 1e-5f);
        rmsnorm_backward_cuda(c->dx.d, c->dw.d, c->dy.d, c->x.d, c->w.d, c->rstd.d, c->N, c->D);
    } else {
        rmsnorm_forward_cpu(c->y.h, c->rstd.h, c->x.h, c->w.h, c->N, c->D, 1e-5f);
        rmsnorm_backward_cpu(c->dx.h, c->dw.h, c->dy.h, c->x.h, c->w.h, c->rstd.h, c->N, c->D);
    }
}
static void case_rmsnorm(void) {
    rms_ctx c = {.N = T, .D = DIM};
    size_t n = (size_t)T * DIM;
    c.x = pair_randn(n, 1), c.w = pair_randn(DIM, 1), c.y = pair_randn(n, 1), c.rstd = pair_randn(T, 1);
    c.dy = pair_randn(n, 1), c.dx = pair_randn(n, 1), c.dw = pair_randn(DIM, 1);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", T, DIM);
    bench("rmsnorm forward+backward", shape, rms_fb, &c, &c.dx, 0);
    pair *all[] = {&c.x, &c.w, &c.y, &c.rstd, &c.dy, &c.dx, &c.dw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
}

typedef struct {
    pair x, cos_t, sin_t;
} rope_ctx;
/* forward only: forward then backward would undo the rotation and hide a kernel that does nothing */
static void rope_fwd(void *c_, int cuda) {
    rope_ctx *c = c_;
    if (cuda) rope_forward_cuda(c->x.d, c->cos_t.d, c->sin_t.d, 1, T, HEADS, HD);
    else rope_forward_cpu(c->x.h, c->cos_t.h, c->sin_t.h, 1, T, HEADS, HD);
}
static void case_rope(void) {
    rope_ctx c;
    size_t nt = (size_t)T * HD / 2;
    c.x = pair_randn((size_t)T * HEADS * HD, 1), c.cos_t = pair_randn(nt, 0), c.sin_t = pair_randn(nt, 0);
    rope_spec rs = {.theta = 10000.0f, .scale = 4.0f};
    rope_table_cpu(c.cos_t.h, c.sin_t.h, T, HD, 0, &rs);
    lqa_cuda_to_device(c.cos_t.d, c.cos_t.h, sizeof(float) * nt);
    lqa_cuda_to_device(c.sin_t.d, c.sin_t.h, sizeof(float) * nt);
    char shape[64];
    snprintf(shape, sizeof shape, "T=%d H=%d hd=%d", T, HEADS, HD);
    bench("rope forward (in place)", shape, rope_fwd, &c, &c.x, 0);
    pair_free(&c.x), pair_free(&c.cos_t), pair_free(&c.sin_t);
}

typedef struct {
    pair g, u, h, dh, dg, du;
    size_t n;
} swiglu_ctx;
static void swiglu_fb(void *c_, int cuda) {
    swiglu_ctx *c = c_;
    if (cuda) {
        swiglu_forward_cuda(c->h.d, c->g.d, c->u.d, c->n);
        swiglu_backward_cuda(c->dg.d, c->du.d, c->dh.d, c->g.d, c->u.d, c->n);
    } else {
        swiglu_forward_cpu(c->h.h, c->g.h, c->u.h, c->n);
        swiglu_backward_cpu(c->dg.h, c->du.h, c->dh.h, c->g.h, c->u.h, c->n);
    }
}
static void case_swiglu(void) {
    swiglu_ctx c = {.n = (size_t)T * FFN};
    c.g = pair_randn(c.n, 1), c.u = pair_randn(c.n, 1), c.h = pair_randn(c.n, 1), c.dh = pair_randn(c.n, 1);
    c.dg = pair_randn(c.n, 1), c.du = pair_randn(c.n, 1);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", T, FFN);
    bench("swiglu forward+backward", shape, swiglu_fb, &c, &c.dg, 0);
    pair *all[] = {&c.g, &c.u, &c.h, &c.dh, &c.dg, &c.du};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
}

typedef struct {
    pair wte, x, dx, dwte;
    int32_t *tok, *d_tok;
} emb_ctx;
static void emb_fb(void *c_, int cuda) {
    emb_ctx *c = c_;
    if (cuda) {
        embedding_forward_cuda(c->x.d, c->d_tok, c->wte.d, T, DIM);
        embedding_backward_cuda(c->dwte.d, c->dx.d, c->d_tok, T, DIM);
    } else {
        embedding_forward_cpu(c->x.h, c->tok, c->wte.h, T, DIM);
        embedding_backward_cpu(c->dwte.h, c->dx.h, c->tok, T, DIM);
    }
}
static void case_embedding(void) {
    emb_ctx c;
    c.wte = pair_randn((size_t)VOCAB * DIM, 1), c.x = pair_randn((size_t)T * DIM, 1);
    c.dx = pair_randn((size_t)T * DIM, 1), c.dwte = pair_randn((size_t)VOCAB * DIM, 0);
    c.tok = lqa_malloc(sizeof(int32_t) * T);
    for (int i = 0; i < T; i++) c.tok[i] = (int32_t)lqa_rng_below(&rng, VOCAB);
    c.d_tok = lqa_cuda_upload(c.tok, sizeof(int32_t) * T);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d V=%d D=%d", T, VOCAB, DIM);
    bench("embedding forward+backward", shape, emb_fb, &c, &c.dwte, 0);
    pair_free(&c.wte), pair_free(&c.x), pair_free(&c.dx), pair_free(&c.dwte);
    free(c.tok);
    lqa_cuda_free(c.d_tok);
}

typedef struct {
    pair x, W, dx, dW, scratch;
    int32_t *tgt, *d_tgt;
    int N;
} ce_ctx;
static void ce_fb(void *c_, int cuda) {
    ce_ctx *c = c_;
    if (cuda)
        crossentropy_fused_cuda(c->dx.d, c->dW.d, c->x.d, c->W.d, c->d_tgt, c->N, DIM, VOCAB, 1.0f / c->N, CE_CHUNK,
                                c->scratch.d);
    else
        crossentropy_fused_cpu(c->dx.h, c->dW.h, c->x.h, c->W.h, c->tgt, c->N, DIM, VOCAB, 1.0f / c->N, CE_CHUNK,
                               c->scratch.h);
}
static void case_crossentropy(void) {
    ce_ctx c = {.N = T < CE_ROWS_MAX ? T : CE_ROWS_MAX}; /* loss rows: the CPU side is slow at V = 32000 */
    c.x = pair_randn((size_t)c.N * DIM, 1), c.W = pair_randn((size_t)VOCAB * DIM, 0.02f);
    c.dx = pair_randn((size_t)c.N * DIM, 0), c.dW = pair_randn((size_t)VOCAB * DIM, 0);
    c.scratch = pair_randn(crossentropy_scratch_floats(CE_CHUNK, DIM, VOCAB), 0);
    c.tgt = lqa_malloc(sizeof(int32_t) * c.N);
    for (int i = 0; i < c.N; i++) c.tgt[i] = (int32_t)lqa_rng_below(&rng, VOCAB);
    c.d_tgt = lqa_cuda_upload(c.tgt, sizeof(int32_t) * c.N);
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d D=%d V=%d chunk=%d", c.N, DIM, VOCAB, CE_CHUNK);
    bench("crossentropy fused (lm_head+loss+grads)", shape, ce_fb, &c, &c.dx, 2.0 * c.N * DIM * VOCAB * 3 / 1e9);
    pair_free(&c.x), pair_free(&c.W), pair_free(&c.dx), pair_free(&c.dW), pair_free(&c.scratch);
    free(c.tgt);
    lqa_cuda_free(c.d_tgt);
}

typedef struct {
    pair q, k, v, out, lse, dout, dq, dk, dv;
    attn_params p;
    float *scratch;
} attn_ctx;
static void attn_fwd(void *c_, int cuda) {
    attn_ctx *c = c_;
    if (cuda) attention_forward_cuda(c->out.d, c->lse.d, c->q.d, c->k.d, c->v.d, &c->p, NULL);
    else attention_forward_cpu(c->out.h, c->lse.h, c->q.h, c->k.h, c->v.h, &c->p, c->scratch);
}
static void attn_bwd(void *c_, int cuda) {
    attn_ctx *c = c_;
    if (cuda)
        attention_backward_cuda(c->dq.d, c->dk.d, c->dv.d, c->dout.d, c->out.d, c->lse.d, c->q.d, c->k.d, c->v.d,
                                &c->p, NULL);
    else
        attention_backward_cpu(c->dq.h, c->dk.h, c->dv.h, c->dout.h, c->out.h, c->lse.h, c->q.h, c->k.h, c->v.h,
                               &c->p, c->scratch);
}
/* Visible (query, key) pairs summed over heads: the useful work. */
static double visible_scores(const attn_params *p) {
    double n = 0;
    for (int h = 0; h < p->H; h++)
        for (int i = 0; i < p->Tq; i++)
            for (int j = 0; j <= i; j++) n += attention_visible(p, 0, h, i, j);
    return n;
}
static void case_attention(int group) {
    attn_ctx c = {.p = {.B = 1, .Tq = T, .Tk = T, .H = HEADS, .KV = HEADS, .hd = HD, .group = group}};
    size_t n = (size_t)T * HEADS * HD, nl = (size_t)HEADS * T;
    c.q = pair_randn(n, 1), c.k = pair_randn(n, 1), c.v = pair_randn(n, 1), c.out = pair_randn(n, 0);
    c.lse = pair_randn(nl, 0), c.dout = pair_randn(n, 1), c.dq = pair_randn(n, 0), c.dk = pair_randn(n, 0);
    c.dv = pair_randn(n, 0);
    c.scratch = lqa_malloc(sizeof(float) * attention_scratch_floats(&c.p, kernels_get_threads()));
    double vis = visible_scores(&c.p);
    char shape[96];
    snprintf(shape, sizeof shape, "T=%d H=%d hd=%d %s", T, HEADS, HD, group ? "S2 group T/4" : "full causal");
    bench("attention forward", shape, attn_fwd, &c, &c.out, 4.0 * HD * vis / 1e9);
    /* the backward from the same forward results on both sides */
    lqa_cuda_to_device(c.out.d, c.out.h, sizeof(float) * n);
    lqa_cuda_to_device(c.lse.d, c.lse.h, sizeof(float) * nl);
    bench("attention backward", shape, attn_bwd, &c, &c.dk, 10.0 * HD * vis / 1e9);
    pair *all[] = {&c.q, &c.k, &c.v, &c.out, &c.lse, &c.dout, &c.dq, &c.dk, &c.dv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pair_free(all[i]);
    free(c.scratch);
}
#endif /* LQA_CUDA */

int main(int argc, char **argv) {
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            puts("usage: lqa-cuda-bench [--T 2048] [--threads N] [--reps 5]");
            return 0;
        }
        if (!v) lqa_fatal("%s: missing value", a);
#ifdef LQA_CUDA
        if (!strcmp(a, "--T")) T = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else
#endif
        if (!strcmp(a, "--threads")) threads = atoi(v);
        else lqa_fatal("unknown option %s (expected --T, --threads, --reps)", a);
        i++;
    }
#ifndef LQA_CUDA
    (void)threads;
    puts("# skip: built without CUDA");
    return 0;
#else
    char why[256] = "", desc[256] = "";
    if (!lqa_cuda_has_gpu(why, sizeof why)) {
        printf("# skip: no CUDA device (%s)\n", why);
        return 0;
    }
    lqaCheck(T >= 8 && T % 8 == 0 && reps >= 1, "--T must be a positive multiple of 8, --reps >= 1");
    kernels_set_threads(threads);
    lqa_rng_seed(&rng, 1);
    lqa_cuda_describe(desc, sizeof desc);
    printf("# GPU: %s; CPU reference: %d threads\n", desc, kernels_get_threads());
    printf("| op | shape | CPU ms | CUDA ms | speedup | CUDA GFLOP/s | max rel. diff |\n");
    printf("|---|---|---:|---:|---:|---:|---:|\n");
    case_matmul();
    case_lora();
    case_rmsnorm();
    case_rope();
    case_swiglu();
    case_embedding();
    case_crossentropy();
    case_attention(0);
    case_attention(T / 4);
    return 0;
#endif
}
