/* test_kernels.c: every CPU op in kernels/ against finite differences (central, on fresh random
 * inputs), the chunked cross-entropy against the plain one, and the determinism of the ops.
 * Attention has its own file (test_kernels_attention.c).
 *
 * Method: each op's output y is reduced to a scalar loss L = sum(y * R) (R random, fixed), the
 * analytic gradient comes from the op's backward with dy = R, and selected coordinates are
 * compared with (L(x+e) - L(x-e)) / 2e, L summed in double. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "tests/test_fd_util.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

/* ---- matmul ---- */
typedef struct {
    float *x, *W, *y, *R;
    int N, In, Out;
} mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward_cpu(c->y, c->x, c->W, c->N, c->In, c->Out, 0);
    return fd_dot(c->y, c->R, (size_t)c->N * c->Out);
}
static void test_matmul_grad(void **state) {
    mm_ctx c = {.N = 3 + (int)lqa_rng_below(&rng, 6), .In = 4 + (int)lqa_rng_below(&rng, 9),
                .Out = 2 + (int)lqa_rng_below(&rng, 7)};
    c.x = fd_randn(&rng, (size_t)c.N * c.In, 1);
    c.W = fd_randn(&rng, (size_t)c.Out * c.In, 1);
    c.y = fd_randn(&rng, (size_t)c.N * c.Out, 1);
    c.R = fd_randn(&rng, (size_t)c.N * c.Out, 1);
    float *dx = fd_randn(&rng, (size_t)c.N * c.In, 1), *dW = fd_randn(&rng, (size_t)c.Out * c.In, 1);
    /* backward accumulates: start from random values and subtract them after */
    float *dx0 = fd_copy(dx, (size_t)c.N * c.In), *dW0 = fd_copy(dW, (size_t)c.Out * c.In);
    matmul_backward_cpu(dx, dW, c.R, c.x, c.W, c.N, c.In, c.Out);
    fd_sub(dx, dx0, (size_t)c.N * c.In);
    fd_sub(dW, dW0, (size_t)c.Out * c.In);
    fd_check("matmul dx", c.x, dx, (size_t)c.N * c.In, mm_loss, &c, &rng, 24);
    fd_check("matmul dW", c.W, dW, (size_t)c.Out * c.In, mm_loss, &c, &rng, 24);
    /* accumulate flag of the forward */
    mm_loss(&c); /* y = x W^T at the unperturbed point */
    float *y1 = fd_copy(c.y, (size_t)c.N * c.Out), *yacc = fd_copy(c.R, (size_t)c.N * c.Out);
    matmul_forward_cpu(yacc, c.x, c.W, c.N, c.In, c.Out, 1);
    for (int i = 0; i < c.N * c.Out; i++) assert_float_equal(yacc[i], c.R[i] + y1[i], 1e-4);
    fd_free_all(c.x, c.W, c.y, c.R, dx, dW, dx0, dW0, y1, yacc, NULL);
}

/* gemm_cpu's split of M x N x K (every transpose combination, strided leading dimensions)
 * against a double-precision reference, on 2 threads and on 1. */
static void check_gemm_split(int M, int N, int K) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            float *A = fd_randn(&rng, (size_t)(ta ? K : M) * lda, 1), *B = fd_randn(&rng, (size_t)(tb ? N : K) * ldb, 1);
            float *C1 = fd_randn(&rng, (size_t)M * ldc, 1), *C2 = fd_copy(C1, (size_t)M * ldc),
                  *C0 = fd_copy(C1, (size_t)M * ldc);
            float alpha = 0.5f + (float)lqa_rng_uniform(&rng), beta = (float)lqa_rng_below(&rng, 2);
            kernels_set_threads(2);
            gemm_cpu(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
            kernels_set_threads(1);
            gemm_cpu(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
            kernels_set_threads(0);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double ref = 0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                        ref += a * b;
                    }
                    ref = alpha * ref + beta * C0[(size_t)i * ldc + j];
                    assert_float_equal(C1[(size_t)i * ldc + j], ref, 1e-3 * (1 + fabs(ref)));
                    assert_float_equal(C2[(size_t)i * ldc + j], ref, 1e-3 * (1 + fabs(ref)));
                }
            /* the padding columns between rows are untouched */
            for (int i = 0; i < M; i++)
                for (int j = N; j < ldc; j++) assert_true(C1[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
            fd_free_all(A, B, C1, C2, C0, NULL);
        }
}

/* The row split (large enough to split, odd sizes) and the column split of few-row GEMMs
 * (decoding: M = 1; LoRA's rank-r products), M * N * K above the split threshold. */
static void test_gemm_split_matches_reference(void **state) {
    check_gemm_split(100 + (int)lqa_rng_below(&rng, 60), 150 + (int)lqa_rng_below(&rng, 40),
                     270 + (int)lqa_rng_below(&rng, 30));
    int M = 1 + (int)lqa_rng_below(&rng, 4), N = 300 + (int)lqa_rng_below(&rng, 200);
    check_gemm_split(M, N, (int)(4.1e6 / ((double)M * N)) + 1 + (int)lqa_rng_below(&rng, 50));
}

/* ---- LoRA ---- */
typedef struct {
    float *x, *A, *B, *W, *y, *t, *R;
    int N, In, Out, r;
    float scale;
} lora_ctx;
static double lora_loss(void *p) {
    lora_ctx *c = p;
    matmul_forward_cpu(c->y, c->x, c->W, c->N, c->In, c->Out, 0);
    lora_forward_cpu(c->y, c->t, c->x, c->A, c->B, c->N, c->In, c->Out, c->r, c->scale);
    return fd_dot(c->y, c->R, (size_t)c->N * c->Out);
}
static void test_lora_grad(void **state) {
    lora_ctx c = {.N = 3 + (int)lqa_rng_below(&rng, 5), .In = 5 + (int)lqa_rng_below(&rng, 6),
                  .Out = 4 + (int)lqa_rng_below(&rng, 6), .r = 1 + (int)lqa_rng_below(&rng, 4)};
    c.scale = 0.5f + (float)lqa_rng_uniform(&rng) * 3;
    size_t nx = (size_t)c.N * c.In, nA = (size_t)c.r * c.In, nB = (size_t)c.Out * c.r, ny = (size_t)c.N * c.Out;
    c.x = fd_randn(&rng, nx, 1);
    c.A = fd_randn(&rng, nA, 1);
    c.B = fd_randn(&rng, nB, 1); /* B != 0 so every path carries gradient */
    c.W = fd_randn(&rng, (size_t)c.Out * c.In, 1);
    c.y = fd_randn(&rng, ny, 1);
    c.t = fd_randn(&rng, (size_t)c.N * c.r, 1);
    c.R = fd_randn(&rng, ny, 1);
    float *scratch = fd_randn(&rng, (size_t)c.N * c.r, 1);
    float *dx = fd_zeros(nx), *dA = fd_zeros(nA), *dB = fd_zeros(nB);
    lora_loss(&c);
    matmul_backward_cpu(dx, NULL, c.R, c.x, c.W, c.N, c.In, c.Out);
    lora_backward_cpu(dx, dA, dB, c.R, c.x, c.t, c.A, c.B, c.N, c.In, c.Out, c.r, c.scale, scratch);
    fd_check("lora dx", c.x, dx, nx, lora_loss, &c, &rng, 20);
    fd_check("lora dA", c.A, dA, nA, lora_loss, &c, &rng, 20);
    fd_check("lora dB", c.B, dB, nB, lora_loss, &c, &rng, 20);
    fd_free_all(c.x, c.A, c.B, c.W, c.y, c.t, c.R, scratch, dx, dA, dB, NULL);
}

/* ---- RMSNorm ---- */
typedef struct {
    float *x, *w, *y, *rstd, *R;
    int N, D;
    float eps;
} rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    rmsnorm_forward_cpu(c->y, c->rstd, c->x, c->w, c->N, c->D, c->eps);
    return fd_dot(c->y, c->R, (size_t)c->N * c->D);
}
static void test_rmsnorm_grad(void **state) {
    rms_ctx c = {.N = 2 + (int)lqa_rng_below(&rng, 6), .D = 3 + (int)lqa_rng_below(&rng, 40), .eps = 1e-5f};
    size_t n = (size_t)c.N * c.D;
    c.x = fd_randn(&rng, n, 1);
    c.w = fd_randn(&rng, c.D, 1);
    c.y = fd_zeros(n);
    c.rstd = fd_zeros(c.N);
    c.R = fd_randn(&rng, n, 1);
    rms_loss(&c);
    /* forward against its definition */
    for (int r = 0; r < c.N; r++) {
        double ss = 0;
        for (int i = 0; i < c.D; i++) ss += (double)c.x[r * c.D + i] * c.x[r * c.D + i];
        double inv = 1.0 / sqrt(ss / c.D + c.eps);
        for (int i = 0; i < c.D; i++)
            assert_float_equal(c.y[r * c.D + i], c.w[i] * c.x[r * c.D + i] * inv, 1e-5 * (1 + fabs(c.y[r * c.D + i])));
    }
    float *dx = fd_zeros(n), *dw = fd_zeros(c.D);
    rmsnorm_backward_cpu(dx, dw, c.R, c.x, c.w, c.rstd, c.N, c.D);
    fd_check("rmsnorm dx", c.x, dx, n, rms_loss, &c, &rng, 24);
    fd_check("rmsnorm dw", c.w, dw, c.D, rms_loss, &c, &rng, 24);
    fd_free_all(c.x, c.w, c.y, c.rstd, c.R, dx, dw, NULL);
}

/* ---- RoPE ---- */
typedef struct {
    float *x, *y, *cs, *sn, *R;
    int B, T, H, hd;
} rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->H * c->hd;
    memcpy(c->y, c->x, sizeof(float) * n);
    rope_forward_cpu(c->y, c->cs, c->sn, c->B, c->T, c->H, c->hd);
    return fd_dot(c->y, c->R, n);
}
static void test_rope_grad_and_hf_convention(void **state) {
    rope_ctx c = {.B = 1 + (int)lqa_rng_below(&rng, 2), .T = 3 + (int)lqa_rng_below(&rng, 8),
                  .H = 1 + (int)lqa_rng_below(&rng, 3), .hd = 2 * (1 + (int)lqa_rng_below(&rng, 5))};
    int pos0 = (int)lqa_rng_below(&rng, 100);
    float theta = 10000.0f, scale = 1.0f + (float)lqa_rng_below(&rng, 4);
    size_t n = (size_t)c.B * c.T * c.H * c.hd, nt = (size_t)c.T * c.hd / 2;
    c.x = fd_randn(&rng, n, 1);
    c.y = fd_zeros(n);
    c.cs = fd_zeros(nt);
    c.sn = fd_zeros(nt);
    c.R = fd_randn(&rng, n, 1);
    rope_spec rs = {.theta = theta, .scale = scale};
    rope_table_cpu(c.cs, c.sn, c.T, c.hd, pos0, &rs);
    rope_loss(&c);
    /* HF: q*cos + rotate_half(q)*sin, cos = cos(pos/scale * theta^(-2i/hd)) repeated twice */
    int half = c.hd / 2;
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++)
            for (int h = 0; h < c.H; h++)
                for (int d = 0; d < c.hd; d++) {
                    size_t row = (((size_t)b * c.T + t) * c.H + h) * c.hd;
                    int i = d % half;
                    double a = (pos0 + t) / (double)scale * pow(theta, -2.0 * i / c.hd);
                    double rot = d < half ? -c.x[row + d + half] : c.x[row + d - half];
                    double want = c.x[row + d] * cos(a) + rot * sin(a);
                    assert_float_equal(c.y[row + d], want, 1e-4);
                }
    float *dx = fd_copy(c.R, n);
    rope_backward_cpu(dx, c.cs, c.sn, c.B, c.T, c.H, c.hd);
    fd_check("rope dx", c.x, dx, n, rope_loss, &c, &rng, 24);
    fd_free_all(c.x, c.y, c.cs, c.sn, c.R, dx, NULL);
}

/* ---- SwiGLU ---- */
typedef struct {
    float *g, *u, *h, *R;
    size_t n;
} swiglu_ctx;
static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    swiglu_forward_cpu(c->h, c->g, c->u, c->n);
    return fd_dot(c->h, c->R, c->n);
}
static void test_swiglu_grad(void **state) {
    swiglu_ctx c = {.n = 5 + lqa_rng_below(&rng, 60)};
    c.g = fd_randn(&rng, c.n, 2);
    c.u = fd_randn(&rng, c.n, 1);
    c.h = fd_zeros(c.n);
    c.R = fd_randn(&rng, c.n, 1);
    swiglu_loss(&c);
    for (size_t i = 0; i < c.n; i++)
        assert_float_equal(c.h[i], c.g[i] / (1 + exp(-c.g[i])) * c.u[i], 1e-5 * (1 + fabs(c.h[i])));
    float *dg = fd_zeros(c.n), *du = fd_zeros(c.n);
    swiglu_backward_cpu(dg, du, c.R, c.g, c.u, c.n);
    fd_check("swiglu dg", c.g, dg, c.n, swiglu_loss, &c, &rng, 24);
    fd_check("swiglu du", c.u, du, c.n, swiglu_loss, &c, &rng, 24);
    fd_free_all(c.g, c.u, c.h, c.R, dg, du, NULL);
}

/* ---- embedding ---- */
typedef struct {
    float *wte, *x, *R;
    int32_t *tok;
    int N, V, D;
} emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    embedding_forward_cpu(c->x, c->tok, c->wte, c->N, c->D);
    return fd_dot(c->x, c->R, (size_t)c->N * c->D);
}
static void test_embedding_grad(void **state) {
    emb_ctx c = {.N = 4 + (int)lqa_rng_below(&rng, 20), .V = 3 + (int)lqa_rng_below(&rng, 5),
                 .D = 2 + (int)lqa_rng_below(&rng, 70)};
    c.wte = fd_randn(&rng, (size_t)c.V * c.D, 1);
    c.x = fd_zeros((size_t)c.N * c.D);
    c.R = fd_randn(&rng, (size_t)c.N * c.D, 1);
    c.tok = malloc(sizeof(int32_t) * c.N);
    for (int i = 0; i < c.N; i++) c.tok[i] = (int32_t)lqa_rng_below(&rng, c.V); /* repeats likely */
    emb_loss(&c);
    for (int i = 0; i < c.N; i++) assert_memory_equal(c.x + (size_t)i * c.D, c.wte + (size_t)c.tok[i] * c.D, c.D * 4);
    float *dw = fd_zeros((size_t)c.V * c.D);
    embedding_backward_cpu(dw, c.R, c.tok, c.N, c.D);
    fd_check("embedding dwte", c.wte, dw, (size_t)c.V * c.D, emb_loss, &c, &rng, 32);
    free(c.tok);
    fd_free_all(c.wte, c.x, c.R, dw, NULL);
}

/* ---- cross-entropy ---- */
typedef struct {
    float *x, *W, *logits, *losses;
    int32_t *tg;
    int N, D, V;
} ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    matmul_forward_cpu(c->logits, c->x, c->W, c->N, c->D, c->V, 0);
    crossentropy_forward_cpu(c->losses, c->logits, c->tg, c->N, c->V);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->losses[i];
    return s;
}
static void test_crossentropy_grad_and_fused_chunks(void **state) {
    ce_ctx c = {.N = 5 + (int)lqa_rng_below(&rng, 20), .D = 3 + (int)lqa_rng_below(&rng, 12),
                .V = 5 + (int)lqa_rng_below(&rng, 40)};
    c.x = fd_randn(&rng, (size_t)c.N * c.D, 1);
    c.W = fd_randn(&rng, (size_t)c.V * c.D, 1);
    c.logits = fd_zeros((size_t)c.N * c.V);
    c.losses = fd_zeros(c.N);
    c.tg = malloc(sizeof(int32_t) * c.N);
    int ntarget = 0;
    for (int i = 0; i < c.N; i++) {
        c.tg[i] = lqa_rng_below(&rng, 3) == 0 ? -1 : (int32_t)lqa_rng_below(&rng, c.V);
        ntarget += c.tg[i] >= 0;
    }
    double L = ce_loss(&c);
    /* the plain loss against its definition, in double */
    for (int i = 0; i < c.N; i++) {
        if (c.tg[i] < 0) {
            assert_true(c.losses[i] == 0.0f);
            continue;
        }
        double s = 0;
        for (int v = 0; v < c.V; v++) s += exp(c.logits[i * c.V + v]);
        assert_float_equal(c.losses[i], log(s) - c.logits[i * c.V + c.tg[i]], 1e-4);
    }
    /* dlogits vs finite differences of the logits themselves */
    float *dlog = fd_copy(c.logits, (size_t)c.N * c.V);
    crossentropy_backward_cpu(dlog, c.tg, c.N, c.V, 1.0f);
    float *dx = fd_zeros((size_t)c.N * c.D), *dW = fd_zeros((size_t)c.V * c.D);
    matmul_backward_cpu(dx, dW, dlog, c.x, c.W, c.N, c.D, c.V);
    fd_check("crossentropy dx", c.x, dx, (size_t)c.N * c.D, ce_loss, &c, &rng, 24);
    fd_check("crossentropy dW", c.W, dW, (size_t)c.V * c.D, ce_loss, &c, &rng, 24);
    /* fused, with a random chunk size: same loss and gradients (scaled) */
    int chunk = 1 + (int)lqa_rng_below(&rng, 7);
    float gs = 1.0f / (ntarget > 0 ? ntarget : 1);
    float *scratch = fd_zeros(crossentropy_scratch_floats(chunk, c.D, c.V));
    float *fdx = fd_zeros((size_t)c.N * c.D), *fdW = fd_zeros((size_t)c.V * c.D);
    double sum = crossentropy_fused_cpu(fdx, fdW, c.x, c.W, c.tg, c.N, c.D, c.V, gs, chunk, scratch);
    assert_float_equal(sum, L, 1e-4 * (1 + fabs(L)));
    for (int i = 0; i < c.N * c.D; i++) assert_float_equal(fdx[i], gs * dx[i], 1e-5);
    for (int i = 0; i < c.V * c.D; i++) assert_float_equal(fdW[i], gs * dW[i], 1e-5);
    free(c.tg);
    fd_free_all(c.x, c.W, c.logits, c.losses, dlog, dx, dW, scratch, fdx, fdW, NULL);
}

/* ---- determinism: bitwise the same twice ---- */
static void test_ops_bitwise_deterministic(void **state) {
    int N = 64 + (int)lqa_rng_below(&rng, 64), D = 96, V = 50, chunk = 17;
    float *x = fd_randn(&rng, (size_t)N * D, 1), *W = fd_randn(&rng, (size_t)V * D, 1), *w = fd_randn(&rng, D, 1);
    int32_t *tg = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) tg[i] = (int32_t)lqa_rng_below(&rng, V);
    float *scratch = fd_zeros(crossentropy_scratch_floats(chunk, D, V));
    float *out[2][3];
    double sums[2];
    for (int run = 0; run < 2; run++) {
        out[run][0] = fd_zeros((size_t)N * D);
        out[run][1] = fd_zeros((size_t)V * D);
        out[run][2] = fd_zeros(D);
        sums[run] = crossentropy_fused_cpu(out[run][0], out[run][1], x, W, tg, N, D, V, 0.01f, chunk, scratch);
        float *rstd = fd_zeros(N), *y = fd_zeros((size_t)N * D);
        rmsnorm_forward_cpu(y, rstd, x, w, N, D, 1e-6f);
        rmsnorm_backward_cpu(out[run][0], out[run][2], y, x, w, rstd, N, D);
        fd_free_all(rstd, y, NULL);
    }
    assert_true(sums[0] == sums[1]);
    assert_memory_equal(out[0][0], out[1][0], sizeof(float) * N * D);
    assert_memory_equal(out[0][1], out[1][1], sizeof(float) * V * D);
    assert_memory_equal(out[0][2], out[1][2], sizeof(float) * D);
    free(tg);
    fd_free_all(x, W, w, scratch, out[0][0], out[0][1], out[0][2], out[1][0], out[1][1], out[1][2], NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_matmul_grad, setup),
        cmocka_unit_test_setup(test_gemm_split_matches_reference, setup),
        cmocka_unit_test_setup(test_lora_grad, setup),
        cmocka_unit_test_setup(test_rmsnorm_grad, setup),
        cmocka_unit_test_setup(test_rope_grad_and_hf_convention, setup),
        cmocka_unit_test_setup(test_swiglu_grad, setup),
        cmocka_unit_test_setup(test_embedding_grad, setup),
        cmocka_unit_test_setup(test_crossentropy_grad_and_fused_chunks, setup),
        cmocka_unit_test_setup(test_ops_bitwise_deterministic, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
