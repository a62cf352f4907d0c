/* test_cuda_crossentropy.c: the CUDA cross-entropy against the CPU reference on fresh random
 * logits and targets (some rows without a target): per-row losses, the in-place dlogits, and the
 * fused chunked lm_head + loss (returned loss sum, dx, dW; with dx or dW NULL; forward only),
 * with chunk sizes that do and do not divide the number of target rows. */
#include "tests/test_cuda_util.h"

#include "kernels/crossentropy.h"

#ifdef LQA_CUDA
/* Random targets in [0, V), about a quarter of the rows set to -1 (no target). */
static int32_t *random_targets(int N, int V) {
    int32_t *t = lqa_malloc(sizeof(int32_t) * (size_t)N);
    for (int n = 0; n < N; n++)
        t[n] = lqa_rng_uniform(&cuda_rng) < 0.25 ? -1 : (int32_t)lqa_rng_below(&cuda_rng, (uint64_t)V);
    return t;
}

static void rows_case(void) {
    int N = rand_between(1, 60), V = rand_between(2, 3000);
    float grad_scale = 0.1f + (float)lqa_rng_uniform(&cuda_rng);
    size_t nz = (size_t)N * V;
    float *logits = host_randn(nz, 3), *losses = host_randn(N, 1);
    int32_t *targets = random_targets(N, V), *d_targets = dev_upload_i32(targets, N);
    float *d_logits = dev_upload(logits, nz), *d_losses = dev_upload(losses, N);
    crossentropy_forward_cpu(losses, logits, targets, N, V);
    crossentropy_forward_cuda(d_losses, d_logits, d_targets, N, V);
    expect_dev_close("crossentropy losses", d_losses, losses, N, 1e-5, 1e-5);
    expect_dev_close("crossentropy forward leaves logits alone", d_logits, logits, nz, 0, 0);
    crossentropy_backward_cpu(logits, targets, N, V, grad_scale);
    crossentropy_backward_cuda(d_logits, d_targets, N, V, grad_scale);
    expect_dev_close("crossentropy dlogits", d_logits, logits, nz, 1e-6, 1e-4);
    lqa_cuda_free(d_targets), lqa_cuda_free(d_logits), lqa_cuda_free(d_losses);
    free(logits), free(losses), free(targets);
}

static void fused_case(int with_dx, int with_dW) {
    int N = rand_between(1, 120), D = rand_between(1, 96), V = rand_between(2, 900);
    int chunk = rand_between(1, N + 3);
    float grad_scale = 0.05f + (float)lqa_rng_uniform(&cuda_rng);
    size_t nx = (size_t)N * D, nw = (size_t)V * D, ns = crossentropy_scratch_floats(chunk, D, V);
    float *x = host_randn(nx, 1), *W = host_randn(nw, 0.3f), *dx = host_randn(nx, 1), *dW = host_randn(nw, 1);
    float *scratch = lqa_malloc(sizeof(float) * ns), *d_scratch = lqa_cuda_alloc(sizeof(float) * ns);
    int32_t *targets = random_targets(N, V), *d_targets = dev_upload_i32(targets, N);
    float *d_x = dev_upload(x, nx), *d_W = dev_upload(W, nw), *d_dx = dev_upload(dx, nx), *d_dW = dev_upload(dW, nw);

    double want = crossentropy_fused_cpu(with_dx ? dx : NULL, with_dW ? dW : NULL, x, W, targets, N, D, V,
                                         grad_scale, chunk, scratch);
    double got = crossentropy_fused_cuda(with_dx ? d_dx : NULL, with_dW ? d_dW : NULL, d_x, d_W, d_targets, N, D, V,
                                         grad_scale, chunk, d_scratch);
    int ntargets = 0;
    for (int n = 0; n < N; n++) ntargets += targets[n] >= 0;
    assert_true(want > 0 || ntargets == 0);
    if (fabs(got - want) > 1e-5 * fabs(want) + 1e-5)
        fail_msg("fused loss sum: cuda %.9g, cpu %.9g (N=%d D=%d V=%d chunk=%d)", got, want, N, D, V, chunk);
    expect_dev_rel("fused dx", d_dx, dx, nx, 1e-4);
    expect_dev_rel("fused dW", d_dW, dW, nw, 1e-4);

    lqa_cuda_free(d_scratch), lqa_cuda_free(d_targets), lqa_cuda_free(d_x), lqa_cuda_free(d_W), lqa_cuda_free(d_dx);
    lqa_cuda_free(d_dW);
    free(x), free(W), free(dx), free(dW), free(scratch), free(targets);
}
#endif

static void test_rows_forward_backward(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) rows_case());
}

static void test_fused(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) fused_case(1, 1));
}

static void test_fused_partial_outputs(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(fused_case(1, 0); fused_case(0, 1); fused_case(0, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_forward_backward),
        cmocka_unit_test(test_fused),
        cmocka_unit_test(test_fused_partial_outputs),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
