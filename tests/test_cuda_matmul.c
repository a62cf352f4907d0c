/* test_cuda_matmul.c: the cuBLAS ops against their CPU references on fresh random inputs:
 * matmul forward (plain and accumulating) and backward (dx, dW, either NULL), and the LoRA
 * branch forward (y and the saved t) and backward (dx, dA, dB, with dx or dB NULL). Shapes are
 * random and rectangular so a swapped transpose or leading dimension cannot pass. Gradients
 * start from random values because the backward ops accumulate. */
#include "tests/test_cuda_util.h"

#include "kernels/lora.h"
#include "kernels/matmul.h"

/* fp32 GEMMs with different summation orders (cuBLAS vs OpenBLAS) differ by about
 * sqrt(K) * 6e-8 of the result's scale for these K (< 300); a transpose or stride mistake is
 * off by the whole scale. */
#define GEMM_REL 1e-4

#ifdef LQA_CUDA
static void matmul_case(int accumulate, int with_dx, int with_dW) {
    int N = rand_between(1, 200), In = rand_between(1, 300), Out = rand_between(1, 250);
    size_t nx = (size_t)N * In, nw = (size_t)Out * In, ny = (size_t)N * Out;
    float *x = host_randn(nx, 1), *W = host_randn(nw, 1), *y = host_randn(ny, 1), *dy = host_randn(ny, 1);
    float *dx = host_randn(nx, 1), *dW = host_randn(nw, 1);
    float *d_x = dev_upload(x, nx), *d_W = dev_upload(W, nw), *d_y = dev_upload(y, ny), *d_dy = dev_upload(dy, ny);
    float *d_dx = dev_upload(dx, nx), *d_dW = dev_upload(dW, nw);

    matmul_forward_cpu(y, x, W, N, In, Out, accumulate);
    matmul_forward_cuda(d_y, d_x, d_W, N, In, Out, accumulate);
    expect_dev_rel(accumulate ? "matmul y += x W^T" : "matmul y = x W^T", d_y, y, ny, GEMM_REL);

    matmul_backward_cpu(with_dx ? dx : NULL, with_dW ? dW : NULL, dy, x, W, N, In, Out);
    matmul_backward_cuda(with_dx ? d_dx : NULL, with_dW ? d_dW : NULL, d_dy, d_x, d_W, N, In, Out);
    expect_dev_rel("matmul dx", d_dx, dx, nx, GEMM_REL);
    expect_dev_rel("matmul dW", d_dW, dW, nw, GEMM_REL);

    lqa_cuda_free(d_x), lqa_cuda_free(d_W), lqa_cuda_free(d_y), lqa_cuda_free(d_dy), lqa_cuda_free(d_dx),
        lqa_cuda_free(d_dW);
    free(x), free(W), free(y), free(dy), free(dx), free(dW);
}

static void lora_case(int with_dx, int with_dB) {
    int N = rand_between(1, 150), In = rand_between(1, 200), Out = rand_between(1, 180), r = rand_between(1, 16);
    float scale = 0.25f + 4.0f * (float)lqa_rng_uniform(&cuda_rng);
    size_t nx = (size_t)N * In, ny = (size_t)N * Out, na = (size_t)r * In, nb = (size_t)Out * r, nt = (size_t)N * r;
    float *x = host_randn(nx, 1), *A = host_randn(na, 0.5f), *B = host_randn(nb, 0.5f);
    float *y = host_randn(ny, 1), *t = host_randn(nt, 1), *dy = host_randn(ny, 1);
    float *dx = host_randn(nx, 1), *dA = host_randn(na, 1), *dB = host_randn(nb, 1);
    float *d_x = dev_upload(x, nx), *d_A = dev_upload(A, na), *d_B = dev_upload(B, nb), *d_y = dev_upload(y, ny);
    float *d_t = dev_upload(t, nt), *d_dy = dev_upload(dy, ny), *d_dx = dev_upload(dx, nx);
    float *d_dA = dev_upload(dA, na), *d_dB = dev_upload(dB, nb);
    float *scratch = lqa_malloc(sizeof(float) * nt), *d_scratch = lqa_cuda_alloc(sizeof(float) * nt);

    lora_forward_cpu(y, t, x, A, B, N, In, Out, r, scale);
    lora_forward_cuda(d_y, d_t, d_x, d_A, d_B, N, In, Out, r, scale);
    expect_dev_rel("lora t = x A^T", d_t, t, nt, GEMM_REL);
    expect_dev_rel("lora y += scale t B^T", d_y, y, ny, GEMM_REL);

    lora_backward_cpu(with_dx ? dx : NULL, dA, with_dB ? dB : NULL, dy, x, t, A, B, N, In, Out, r, scale, scratch);
    lora_backward_cuda(with_dx ? d_dx : NULL, d_dA, with_dB ? d_dB : NULL, d_dy, d_x, d_t, d_A, d_B, N, In, Out, r,
                       scale, d_scratch);
    expect_dev_rel("lora dB", d_dB, dB, nb, GEMM_REL);
    expect_dev_rel("lora dA", d_dA, dA, na, GEMM_REL);
    expect_dev_rel("lora dx", d_dx, dx, nx, GEMM_REL);

    lqa_cuda_free(d_x), lqa_cuda_free(d_A), lqa_cuda_free(d_B), lqa_cuda_free(d_y), lqa_cuda_free(d_t);
    lqa_cuda_free(d_dy), lqa_cuda_free(d_dx), lqa_cuda_free(d_dA), lqa_cuda_free(d_dB), lqa_cuda_free(d_scratch);
    free(x), free(A), free(B), free(y), free(t), free(dy), free(dx), free(dA), free(dB), free(scratch);
}
#endif

static void test_matmul_forward_backward(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) matmul_case(rep & 1, 1, 1));
}

static void test_matmul_backward_null_outputs(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(matmul_case(0, 1, 0); matmul_case(1, 0, 1));
}

static void test_lora_forward_backward(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) lora_case(1, 1));
}

static void test_lora_backward_null_outputs(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(lora_case(0, 1); lora_case(1, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_forward_backward),
        cmocka_unit_test(test_matmul_backward_null_outputs),
        cmocka_unit_test(test_lora_forward_backward),
        cmocka_unit_test(test_lora_backward_null_outputs),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
