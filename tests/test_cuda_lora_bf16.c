/* test_cuda_lora_bf16.c: the CUDA backend's lora_bf16_forward / lora_bf16_backward (kernels/backend.h:
 * LoRA's products on cuBLASLt in bf16 from fp32 masters A and B, fp32 sums and outputs) against
 * the fp32 CPU reference (lora_forward_cpu / lora_backward_cpu, kernels/lora.h) on fp32 inputs,
 * called as model/step.c calls them: the frozen linear first (linear_bf16_forward/backward), the
 * LoRA then reusing the bf16 activation it left in x16, and the backward rounding x into the very
 * buffer that holds dy. Shapes are random and odd in every dimension (N, In, Out, r), so never a
 * multiple of a tile; a swapped transpose or operand, a lost scale or an overwritten accumulator
 * is off by the whole value. */
#include "tests/test_cuda_bf16_util.h"

#include "kernels/backend.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16.h"

/* Tolerance, per element, from bf16's unit roundoff u = 2^-8 (LQA_BF16_U). The device rounds x
 * (dy), A, B to bf16 and t = x A^T (dt = scale dy B) once more; products of bf16 values are exact
 * in fp32 and the sums are fp32. So t is off by at most 3u S (S = |x| |A|^T: the roundings of x,
 * A and t), and y's LoRA term, scale t B^T, by 4u scale S |B|^T; likewise dB by 4u scale |dy|^T S,
 * dt by 3u and dA, dx by 4u of the same products of absolute values; the frozen linear (W exact
 * in bf16 here) by u |x| |W|^T (u |dy| |W|). First order: 4.1u covers the u^2 terms. The fp32
 * sums of both sides add K 2^-24 each for K < 400 terms: 5e-5. abs below is the reference run
 * on absolute values (plus the accumulators' starting |values|), so the bound is
 * BOUND_REL * abs, element by element. */
#define BOUND_REL (4.1 * LQA_BF16_U + 5e-5)

/* |got - want| <= BOUND_REL * abs at every element; fails naming the worst. */
static void expect_within(const char *what, const float *got, const float *want, const float *abs_ref, size_t n) {
    size_t worst = 0;
    double excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) - BOUND_REL * abs_ref[i];
        if (isnan(got[i]) || e > excess) worst = i, excess = isnan(got[i]) ? INFINITY : e;
    }
    if (excess > 0)
        fail_msg("%s: element %zu of %zu: cuda %.9g, cpu %.9g (allowed %.3g)", what, worst, n, got[worst], want[worst],
                 BOUND_REL * abs_ref[worst]);
}

static float *host_abs(const float *a, size_t n) {
    float *b = lqa_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) b[i] = fabsf(a[i]);
    return b;
}

static int rand_odd(int hi) { return 2 * rand_between(0, (hi - 1) / 2) + 1; }

#ifdef LQA_CUDA
static void expect_dev_within(const char *what, const float *dev, const float *want, const float *abs_ref, size_t n) {
    float *got = dev_download(dev, n);
    expect_within(what, got, want, abs_ref, n);
    free(got);
}

/* One linear with its LoRA branch, forward then backward. grads: dA and dB computed (0: the
 * LoRA is frozen, only dx flows through it). */
static void lora_case(const lqa_backend *be, int grads) {
    int N = rand_odd(CUDA_TEST_MAX(300)), In = rand_odd(CUDA_TEST_MAX(400)), Out = rand_odd(CUDA_TEST_MAX(400));
    int r = rand_odd(15);
    float scale = 32.0f / (float)r; /* alpha 32: never 1, so a lost scale shows */
    size_t nx = (size_t)N * In, nw = (size_t)Out * In, na = (size_t)r * In, nb = (size_t)Out * r, ny = (size_t)N * Out,
           nt = (size_t)N * r, io = (size_t)(In > Out ? In : Out);
    float *x = host_randn(nx, 1), *A = host_randn(na, 1.0f / sqrtf((float)In)), *B = host_randn(nb, 0.1f);
    float *y = host_randn(ny, 1), *dy = host_randn(ny, 1), *dx = host_randn(nx, 1), *dA = host_randn(na, 1);
    float *dB = host_randn(nb, 1), *W;
    lqa_bf16 *W16 = host_randn_bf16(nw, 0.05f, &W); /* W exact in bf16, as the model's frozen copy */
    float *d_x = dev_upload(x, nx), *d_A = dev_upload(A, na), *d_B = dev_upload(B, nb), *d_y = dev_upload(y, ny);
    float *d_dy = dev_upload(dy, ny), *d_dx = dev_upload(dx, nx), *d_dA = dev_upload(dA, na), *d_dB = dev_upload(dB, nb);
    lqa_bf16 *d_W16 = dev_upload_bf16(W16, nw);
    void *d_x16 = be->alloc(2 * (size_t)N * io), *d_t16 = be->alloc(sizeof(float) * nt); /* t's fp32-sized slot */
    void *d_scratch = be->alloc(lora_bf16_scratch_bytes((size_t)N, (size_t)In, (size_t)Out, (size_t)r));

    /* forward: y = x W^T + scale (x A^T) B^T */
    float *t = lqa_malloc(sizeof(float) * nt), *yabs = host_abs(y, ny), *tabs = lqa_malloc(sizeof(float) * nt);
    float *xa = host_abs(x, nx), *Aa = host_abs(A, na), *Ba = host_abs(B, nb), *Wa = host_abs(W, nw);
    matmul_forward_cpu(y, x, W, N, In, Out, 1);
    lora_forward_cpu(y, t, x, A, B, N, In, Out, r, scale);
    matmul_forward_cpu(yabs, xa, Wa, N, In, Out, 1);
    lora_forward_cpu(yabs, tabs, xa, Aa, Ba, N, In, Out, r, scale);
    be->linear_bf16_forward(d_y, d_x, d_W16, N, In, Out, 1, d_x16);
    be->lora_bf16_forward(d_y, d_t16, d_x16, d_A, d_B, N, In, Out, r, scale, d_scratch);
    char what[128];
    snprintf(what, sizeof what, "y += x W^T + s (x A^T) B^T, N=%d In=%d Out=%d r=%d", N, In, Out, r);
    expect_dev_within(what, d_y, y, yabs, ny);

    /* backward from the device's own t16 (the step's): dx += dy W + (s dy B) A; dA, dB */
    float *dxa = host_abs(dx, nx), *dAa = host_abs(dA, na), *dBa = host_abs(dB, nb), *dya = host_abs(dy, ny);
    float *scratch = lqa_malloc(sizeof(float) * nt);
    matmul_backward_cpu(dx, NULL, dy, x, W, N, In, Out);
    lora_backward_cpu(dx, grads ? dA : NULL, grads ? dB : NULL, dy, x, t, A, B, N, In, Out, r, scale, scratch);
    matmul_backward_cpu(dxa, NULL, dya, xa, Wa, N, In, Out);
    lora_backward_cpu(dxa, dAa, dBa, dya, xa, tabs, Aa, Ba, N, In, Out, r, scale, scratch);
    be->linear_bf16_backward(d_dx, d_dy, d_W16, N, In, Out, d_x16);
    be->lora_bf16_backward(d_dx, grads ? d_dA : NULL, grads ? d_dB : NULL, d_x16, d_x, d_x16, d_t16, d_A, d_B, N, In,
                           Out, r, scale, d_scratch);
    snprintf(what, sizeof what, "dx += dy W + s (dy B) A, N=%d In=%d Out=%d r=%d%s", N, In, Out, r,
             grads ? "" : " (LoRA frozen)");
    expect_dev_within(what, d_dx, dx, dxa, nx);
    snprintf(what, sizeof what, "dA += (s dy B)^T x, N=%d In=%d Out=%d r=%d", N, In, Out, r);
    expect_dev_within(what, d_dA, dA, dAa, na); /* untouched when frozen: dA is its start */
    snprintf(what, sizeof what, "dB += s dy^T (x A^T), N=%d In=%d Out=%d r=%d", N, In, Out, r);
    expect_dev_within(what, d_dB, dB, dBa, nb);

    be->free(d_x), be->free(d_A), be->free(d_B), be->free(d_y), be->free(d_dy), be->free(d_dx), be->free(d_dA);
    be->free(d_dB), be->free(d_W16), be->free(d_x16), be->free(d_t16), be->free(d_scratch);
    free(x), free(A), free(B), free(y), free(dy), free(dx), free(dA), free(dB), free(W), free(W16), free(t);
    free(yabs), free(tabs), free(xa), free(Aa), free(Ba), free(Wa), free(dxa), free(dAa), free(dBa), free(dya);
    free(scratch);
}

#endif

/* The entries are the CUDA table's (and the CPU's are NULL: the model never calls them there). */
static void test_table(void **state) {
    assert_null(lqa_backend_cpu()->lora_bf16_forward);
    assert_null(lqa_backend_cpu()->lora_bf16_backward);
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(const lqa_backend *be = cuda_test_backend(); assert_non_null(be->lora_bf16_forward);
              assert_non_null(be->lora_bf16_backward));
}

static void test_forward_backward(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(const lqa_backend *be = cuda_test_backend(); for (int i = 0; i < 3; i++) lora_case(be, 1); lora_case(be, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_forward_backward),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
