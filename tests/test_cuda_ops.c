/* test_cuda_ops.c: the row-wise and elementwise CUDA ops against their CPU references on fresh
 * random inputs: RMSNorm (y, rstd; dx, dw, dw NULL), RoPE (the angle table for random theta,
 * scale and pos0; the rotation forward and backward), SwiGLU (h; dg, du) and the embedding
 * (lookup; the deterministic scatter-add backward, bitwise equal to the CPU's with repeated
 * tokens). Gradients start from random values because the backward ops accumulate. */
#include "tests/test_cuda_util.h"

#include "kernels/embedding.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

/* Elementwise results differ only by the last bits of expf/sqrtf/sincos. */
#define ELEM_ATOL 1e-5
#define ELEM_RTOL 1e-5

#ifdef LQA_CUDA
static void rmsnorm_case(int with_dw) {
    int N = rand_between(1, 70), D = rand_between(1, 1100);
    float eps = lqa_rng_uniform(&cuda_rng) < 0.5 ? 1e-5f : 1e-6f;
    size_t nx = (size_t)N * D;
    float *x = host_randn(nx, 2), *w = host_randn(D, 1), *y = host_randn(nx, 1), *rstd = host_randn(N, 1);
    float *dy = host_randn(nx, 1), *dx = host_randn(nx, 1), *dw = host_randn(D, 1);
    float *d_x = dev_upload(x, nx), *d_w = dev_upload(w, D), *d_y = dev_upload(y, nx), *d_rstd = dev_upload(rstd, N);
    float *d_dy = dev_upload(dy, nx), *d_dx = dev_upload(dx, nx), *d_dw = dev_upload(dw, D);

    rmsnorm_forward_cpu(y, rstd, x, w, N, D, eps);
    rmsnorm_forward_cuda(d_y, d_rstd, d_x, d_w, N, D, eps);
    expect_dev_close("rmsnorm rstd", d_rstd, rstd, N, ELEM_ATOL, ELEM_RTOL);
    expect_dev_close("rmsnorm y", d_y, y, nx, ELEM_ATOL, ELEM_RTOL);

    /* the backward reads the CPU's rstd on both sides, so it is checked on its own */
    lqa_cuda_to_device(d_rstd, rstd, sizeof(float) * N);
    rmsnorm_backward_cpu(dx, with_dw ? dw : NULL, dy, x, w, rstd, N, D);
    rmsnorm_backward_cuda(d_dx, with_dw ? d_dw : NULL, d_dy, d_x, d_w, d_rstd, N, D);
    expect_dev_close("rmsnorm dx", d_dx, dx, nx, 1e-4, 1e-4);
    expect_dev_rel("rmsnorm dw", d_dw, dw, D, 1e-4);

    lqa_cuda_free(d_x), lqa_cuda_free(d_w), lqa_cuda_free(d_y), lqa_cuda_free(d_rstd), lqa_cuda_free(d_dy);
    lqa_cuda_free(d_dx), lqa_cuda_free(d_dw);
    free(x), free(w), free(y), free(rstd), free(dy), free(dx), free(dw);
}

static void rope_case(void) {
    int B = rand_between(1, 3), T = rand_between(1, 90), H = rand_between(1, 6), hd = 2 * rand_between(1, 64);
    int pos0 = lqa_rng_uniform(&cuda_rng) < 0.5 ? 0 : rand_between(1, 5000);
    float theta = lqa_rng_uniform(&cuda_rng) < 0.5 ? 10000.0f : 500000.0f;
    float scale = 1.0f + (float)rand_between(0, 7) * 0.5f;
    size_t nt = (size_t)T * (hd / 2), nx = (size_t)B * T * H * hd;
    float *cos_t = lqa_malloc(sizeof(float) * nt), *sin_t = lqa_malloc(sizeof(float) * nt);
    float *d_cos = lqa_cuda_alloc(sizeof(float) * nt), *d_sin = lqa_cuda_alloc(sizeof(float) * nt);
    /* half the cases with LLaMA-3 scaling, so the table's inverse frequencies cover its three bands */
    rope_spec rs = {.theta = theta, .scale = scale};
    if (lqa_rng_uniform(&cuda_rng) < 0.5)
        rs = (rope_spec){theta, scale, 1, 2.0f + (float)rand_between(0, 30), 1.0f, 4.0f, rand_between(16, 8192)};
    rope_table_cpu(cos_t, sin_t, T, hd, pos0, &rs);
    rope_table_cuda(d_cos, d_sin, T, hd, pos0, &rs);
    /* both compute the angle in double and round once: any difference is a last-bit one */
    expect_dev_close("rope cos table", d_cos, cos_t, nt, 1e-6, 0);
    expect_dev_close("rope sin table", d_sin, sin_t, nt, 1e-6, 0);

    /* the rotations use the CPU's table on both sides */
    lqa_cuda_to_device(d_cos, cos_t, sizeof(float) * nt);
    lqa_cuda_to_device(d_sin, sin_t, sizeof(float) * nt);
    float *x = host_randn(nx, 1), *d_x = dev_upload(x, nx);
    rope_forward_cpu(x, cos_t, sin_t, B, T, H, hd);
    rope_forward_cuda(d_x, d_cos, d_sin, B, T, H, hd);
    expect_dev_close("rope forward", d_x, x, nx, ELEM_ATOL, ELEM_RTOL);
    float *dx = host_randn(nx, 1), *d_dx = dev_upload(dx, nx);
    rope_backward_cpu(dx, cos_t, sin_t, B, T, H, hd);
    rope_backward_cuda(d_dx, d_cos, d_sin, B, T, H, hd);
    expect_dev_close("rope backward", d_dx, dx, nx, ELEM_ATOL, ELEM_RTOL);

    lqa_cuda_free(d_cos), lqa_cuda_free(d_sin), lqa_cuda_free(d_x), lqa_cuda_free(d_dx);
    free(cos_t), free(sin_t), free(x), free(dx);
}

static void swiglu_case(void) {
    size_t n = (size_t)rand_between(1, 5000);
    float *g = host_randn(n, 3), *u = host_randn(n, 1), *h = host_randn(n, 1), *dh = host_randn(n, 1);
    float *dg = host_randn(n, 1), *du = host_randn(n, 1);
    float *d_g = dev_upload(g, n), *d_u = dev_upload(u, n), *d_h = dev_upload(h, n), *d_dh = dev_upload(dh, n);
    float *d_dg = dev_upload(dg, n), *d_du = dev_upload(du, n);
    swiglu_forward_cpu(h, g, u, n);
    swiglu_forward_cuda(d_h, d_g, d_u, n);
    expect_dev_close("swiglu h", d_h, h, n, ELEM_ATOL, ELEM_RTOL);
    swiglu_backward_cpu(dg, du, dh, g, u, n);
    swiglu_backward_cuda(d_dg, d_du, d_dh, d_g, d_u, n);
    expect_dev_close("swiglu dg", d_dg, dg, n, ELEM_ATOL, ELEM_RTOL);
    expect_dev_close("swiglu du", d_du, du, n, ELEM_ATOL, ELEM_RTOL);
    lqa_cuda_free(d_g), lqa_cuda_free(d_u), lqa_cuda_free(d_h), lqa_cuda_free(d_dh), lqa_cuda_free(d_dg);
    lqa_cuda_free(d_du);
    free(g), free(u), free(h), free(dh), free(dg), free(du);
}

static void embedding_case(void) {
    /* a small vocabulary so tokens repeat (the scatter-add must sum them) */
    int V = rand_between(2, 80), N = rand_between(1, 300), D = rand_between(1, 700);
    size_t nw = (size_t)V * D, nx = (size_t)N * D;
    int32_t *tokens = lqa_malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) tokens[n] = (int32_t)lqa_rng_below(&cuda_rng, (uint64_t)V);
    float *wte = host_randn(nw, 1), *x = host_randn(nx, 1), *dx = host_randn(nx, 1), *dwte = host_randn(nw, 1);
    int32_t *d_tokens = dev_upload_i32(tokens, N);
    float *d_wte = dev_upload(wte, nw), *d_x = dev_upload(x, nx), *d_dx = dev_upload(dx, nx);
    float *d_dwte = dev_upload(dwte, nw);
    embedding_forward_cpu(x, tokens, wte, N, D);
    embedding_forward_cuda(d_x, d_tokens, d_wte, N, D);
    float *got = dev_download(d_x, nx);
    expect_equal_bits("embedding lookup", got, x, nx);
    free(got);
    embedding_backward_cpu(dwte, dx, tokens, N, D);
    embedding_backward_cuda(d_dwte, d_dx, d_tokens, N, D);
    got = dev_download(d_dwte, nw);
    expect_equal_bits("embedding backward (same summation order as the CPU)", got, dwte, nw);
    free(got);
    lqa_cuda_free(d_tokens), lqa_cuda_free(d_wte), lqa_cuda_free(d_x), lqa_cuda_free(d_dx), lqa_cuda_free(d_dwte);
    free(tokens), free(wte), free(x), free(dx), free(dwte);
}
#endif

static void test_rmsnorm(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 3; rep++) rmsnorm_case(1); rmsnorm_case(0));
}

static void test_rope(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) rope_case());
}

static void test_swiglu(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 3; rep++) swiglu_case());
}

static void test_embedding(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 3; rep++) embedding_case());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_embedding),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
