/* test_cuda_crossentropy_bf16.c: the fused, chunked lm_head + cross-entropy with bf16 x and W
 * (kernels/crossentropy_bf16.h) against crossentropy_fused_cpu (fp32, itself checked by finite
 * differences in test_kernels.c) on the same bf16 inputs widened: the loss sum, dx and dW, with
 * chunks that do and do not divide the target rows, rows without a target, and the NULL
 * variants (forward only; dx or dW only); and the model's rows form on fp32 x. */
#include "tests/test_cuda_bf16_util.h"

#include "kernels/crossentropy.h"
#include "kernels/crossentropy_bf16.h"

/* Tolerances (u = 2^-8). Loss: the logits are exact products summed in fp32 on both sides (only
 * the order differs, ~D 2^-24 of sum|x w|), the softmax is fp32: LOSS_REL = 1e-4 of the sum.
 * dx, dW: the device rounds dlogits to bf16 before the two GEMMs (u relative per term), the
 * products are exact and summed in fp32: GRAD_K u of the largest gradient (the part the call
 * added), the same argument as the attention gradients; GRAD_RTOL covers the one fp32 addition
 * onto the random start. */
#define LOSS_REL 1e-4
#define GRAD_K 3.0
#define GRAD_RTOL 1e-6

#ifdef LQA_CUDA
static void expect_grad(const char *what, const float *dev, const float *want, const float *start, size_t n) {
    float *added = host_copy(want, n);
    for (size_t i = 0; i < n; i++) added[i] -= start[i];
    double scale = max_abs(added, n);
    free(added);
    expect_dev_close(what, dev, want, n, GRAD_K * LQA_BF16_U * scale + 1e-9, GRAD_RTOL);
}

static void fused_case(int with_dx, int with_dW) {
    int N = rand_between(1, CUDA_TEST_MAX(120)), D = rand_between(1, CUDA_TEST_MAX(200));
    int V = rand_between(2, CUDA_TEST_MAX(700)), chunk = rand_between(1, N + 3);
    float grad_scale = 1.0f / (float)N;
    size_t nx = (size_t)N * D, nw = (size_t)V * D;
    float *x, *W;
    lqa_bf16 *x16 = host_randn_bf16(nx, 1, &x), *W16 = host_randn_bf16(nw, 0.2f, &W);
    int32_t *targets = lqa_malloc(sizeof(int32_t) * (size_t)N);
    for (int n = 0; n < N; n++) targets[n] = lqa_rng_uniform(&cuda_rng) < 0.2 ? -1 : rand_between(0, V - 1);
    float *dx = host_randn(nx, 1), *dW = host_randn(nw, 1), *dx0 = host_copy(dx, nx), *dW0 = host_copy(dW, nw);
    float *d_dx = dev_upload(dx, nx), *d_dW = dev_upload(dW, nw);
    lqa_bf16 *d_x = dev_upload_bf16(x16, nx), *d_W = dev_upload_bf16(W16, nw);
    int32_t *d_t = dev_upload_i32(targets, (size_t)N);
    float *scratch = lqa_malloc(sizeof(float) * crossentropy_scratch_floats(chunk, D, V));
    void *d_scratch = lqa_cuda_alloc(crossentropy_bf16_scratch_bytes(chunk, D, V));

    double want = crossentropy_fused_cpu(with_dx ? dx : NULL, with_dW ? dW : NULL, x, W, targets, N, D, V,
                                         grad_scale, chunk, scratch);
    double got = crossentropy_fused_bf16_cuda(with_dx ? d_dx : NULL, with_dW ? d_dW : NULL, d_x, d_W, d_t, N, D, V,
                                              grad_scale, chunk, d_scratch);
    print_message("# N=%d D=%d V=%d chunk=%d dx=%d dW=%d: loss sum cuda %.9g cpu %.9g\n", N, D, V, chunk, with_dx,
                  with_dW, got, want);
    if (fabs(got - want) > LOSS_REL * fabs(want) + 1e-6) fail_msg("loss sum: cuda %.9g, cpu %.9g", got, want);
    expect_grad("crossentropy bf16 dx", d_dx, dx, dx0, nx);
    expect_grad("crossentropy bf16 dW", d_dW, dW, dW0, nw);

    lqa_cuda_free(d_dx), lqa_cuda_free(d_dW), lqa_cuda_free(d_x), lqa_cuda_free(d_W), lqa_cuda_free(d_t);
    lqa_cuda_free(d_scratch);
    free(x16), free(W16), free(x), free(W), free(targets), free(dx), free(dW), free(dx0), free(dW0), free(scratch);
}

/* The model's rows form (crossentropy_fused_rows_bf16_cuda, the step's bf16 head): fp32 x whose
 * target rows it rounds to bf16 itself, a listed row set, losses added to a device double. The
 * reference is crossentropy_fused_rows_cpu on x and W rounded to bf16 and widened, so the same
 * tolerances hold; the frozen head has no dW. */
static void rows_case(int with_dx) {
    int N = rand_between(1, CUDA_TEST_MAX(120)), D = rand_between(1, CUDA_TEST_MAX(200));
    int V = rand_between(2, CUDA_TEST_MAX(700)), chunk = rand_between(1, N + 3);
    float grad_scale = 1.0f / (float)N;
    size_t nx = (size_t)N * D, nw = (size_t)V * D;
    float *x = host_randn(nx, 1), *xr = host_copy(x, nx), *W;
    lqa_bf16_round_floats(xr, nx);
    lqa_bf16 *W16 = host_randn_bf16(nw, 0.2f, &W);
    int32_t *targets = lqa_malloc(sizeof(int32_t) * (size_t)N), *rows = lqa_malloc(sizeof(int32_t) * (size_t)N);
    int n_rows = 0;
    for (int n = 0; n < N; n++) {
        targets[n] = lqa_rng_uniform(&cuda_rng) < 0.2 ? -1 : rand_between(0, V - 1);
        if (targets[n] >= 0) rows[n_rows++] = n;
    }
    float *dx = host_randn(nx, 1), *dx0 = host_copy(dx, nx);
    float *d_dx = dev_upload(dx, nx), *d_x = dev_upload(x, nx);
    lqa_bf16 *d_W = dev_upload_bf16(W16, nw);
    int32_t *d_t = dev_upload_i32(targets, (size_t)N), *d_rows = dev_upload_i32(rows, (size_t)N);
    float *scratch = lqa_malloc(sizeof(float) * crossentropy_scratch_floats(chunk, D, V));
    void *d_scratch = lqa_cuda_alloc(crossentropy_bf16_scratch_bytes(chunk, D, V));
    double start = rand_between(1, 9), want = start, got = 0;
    double *d_sum = lqa_cuda_upload(&start, sizeof start);
    crossentropy_fused_rows_cpu(with_dx ? dx : NULL, NULL, xr, W, targets, rows, n_rows, D, V, grad_scale, chunk,
                                scratch, &want);
    crossentropy_fused_rows_bf16_cuda(with_dx ? d_dx : NULL, d_x, d_W, d_t, d_rows, n_rows, D, V, grad_scale, chunk,
                                      d_scratch, d_sum);
    lqa_cuda_to_host(&got, d_sum, sizeof got);
    print_message("# rows N=%d D=%d V=%d chunk=%d dx=%d: loss sum cuda %.9g cpu %.9g\n", N, D, V, chunk, with_dx,
                  got, want);
    if (fabs(got - want) > LOSS_REL * fabs(want - start) + 1e-6) fail_msg("loss sum: cuda %.9g, cpu %.9g", got, want);
    expect_grad("crossentropy bf16 rows dx", d_dx, dx, dx0, nx);

    lqa_cuda_free(d_dx), lqa_cuda_free(d_x), lqa_cuda_free(d_W), lqa_cuda_free(d_t), lqa_cuda_free(d_rows);
    lqa_cuda_free(d_scratch), lqa_cuda_free(d_sum);
    free(x), free(xr), free(W16), free(W), free(targets), free(rows), free(dx), free(dx0), free(scratch);
}
#endif

static void test_rows(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(rows_case(1); rows_case(1); rows_case(0));
}

static void test_fused(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 3; rep++) fused_case(1, 1));
}

static void test_fused_null_variants(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(fused_case(0, 0); fused_case(1, 0); fused_case(0, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused),
        cmocka_unit_test(test_fused_null_variants),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
