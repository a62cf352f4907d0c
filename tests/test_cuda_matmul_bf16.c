/* test_cuda_matmul_bf16.c: the bf16 GEMMs of kernels/matmul_bf16.h (cuBLASLt, bf16 inputs, fp32
 * accumulation) and the device bf16 conversions against the CPU: gemm_bf16_ref on the same bf16
 * inputs for every transpose pair and both output types (with leading dimensions larger than the
 * rows, alpha and beta), matmul forward / backward, LoRA's two thin products forward and backward,
 * and the cross-entropy's logits. Shapes are random and not multiples of any tile (8 or 16), so a
 * swapped operand, transpose or leading dimension is off by the whole scale. */
#include "tests/test_cuda_bf16_util.h"

#include "kernels/matmul_bf16.h"

#include <float.h>

/* Tolerances. Both sides multiply the same bf16 values: every product is exact in fp32, so an
 * fp32 result differs only by the order of the fp32 sum, K * 2^-24 * sum|a b| at worst, below
 * 2e-5 of the result's scale for these K (< 400): F32_REL = 1e-4 of the largest |value|. A bf16
 * result is that sum rounded once to nearest even; two sums a few fp32 ulps apart can round to
 * neighbouring bf16 values, one bf16 ulp = 2u = 2^-7 relative: BF16_RTOL. */
#define F32_REL 1e-4
#define BF16_RTOL (2 * LQA_BF16_U)

#ifdef LQA_CUDA
static void *dev_zeros_like_bytes(size_t bytes) {
    void *d = lqa_cuda_alloc(bytes);
    lqa_cuda_zero(d, bytes);
    return d;
}

/* Downloads an output of type t and compares with want (same type, host). */
static void expect_out(const char *what, const void *dev, const void *want, lqa_dtype t, size_t n) {
    if (t == LQA_F32) {
        expect_dev_rel(what, dev, want, n, F32_REL);
        return;
    }
    float *got = dev_download_bf16(dev, n), *w = lqa_malloc(sizeof(float) * (n ? n : 1));
    lqa_bf16_to_floats(w, want, n);
    expect_close(what, got, w, n, F32_REL * max_abs(w, n), BF16_RTOL);
    free(got), free(w);
}

/* A random C of type t, n elements: host copy and device copy. */
static void *random_out(lqa_dtype t, size_t n, void **dev) {
    if (t == LQA_F32) {
        float *c = host_randn(n, 1);
        *dev = dev_upload(c, n);
        return c;
    }
    lqa_bf16 *c = host_randn_bf16(n, 1, NULL);
    *dev = dev_upload_bf16(c, n);
    return c;
}

static void gemm_case(int ta, int tb, lqa_dtype ct) {
    int M = rand_between(1, CUDA_TEST_MAX(200)), N = rand_between(1, CUDA_TEST_MAX(200));
    int K = rand_between(1, CUDA_TEST_MAX(300));
    int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    int lda = a_cols + rand_between(0, 5), ldb = b_cols + rand_between(0, 5), ldc = N + rand_between(0, 5);
    float alpha = 0.5f + (float)lqa_rng_uniform(&cuda_rng), beta = lqa_rng_uniform(&cuda_rng) < 0.5 ? 0.0f : -0.75f;
    size_t na = (size_t)a_rows * lda, nb = (size_t)b_rows * ldb, nc = (size_t)M * ldc;
    lqa_bf16 *A = host_randn_bf16(na, 1, NULL), *B = host_randn_bf16(nb, 1, NULL);
    lqa_bf16 *d_A = dev_upload_bf16(A, na), *d_B = dev_upload_bf16(B, nb);
    void *d_C, *C = random_out(ct, nc, &d_C);
    gemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ct, ldc);
    gemm_bf16_cuda(ta, tb, M, N, K, alpha, d_A, lda, d_B, ldb, beta, d_C, ct, ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm_bf16 %s%s M=%d N=%d K=%d beta=%g -> %s", ta ? "T" : "N", tb ? "T" : "N", M, N,
             K, beta, ct == LQA_F32 ? "fp32" : "bf16");
    expect_out(what, d_C, C, ct, nc);
    lqa_cuda_free(d_A), lqa_cuda_free(d_B), lqa_cuda_free(d_C);
    free(A), free(B), free(C);
}

static void matmul_case(lqa_dtype yt, int accumulate, int with_dx, int with_dW) {
    int N = rand_between(1, CUDA_TEST_MAX(200)), In = rand_between(1, CUDA_TEST_MAX(300));
    int Out = rand_between(1, CUDA_TEST_MAX(250));
    size_t nx = (size_t)N * In, nw = (size_t)Out * In, ny = (size_t)N * Out;
    lqa_bf16 *x = host_randn_bf16(nx, 1, NULL), *W = host_randn_bf16(nw, 1, NULL), *dy = host_randn_bf16(ny, 1, NULL);
    lqa_bf16 *d_x = dev_upload_bf16(x, nx), *d_W = dev_upload_bf16(W, nw), *d_dy = dev_upload_bf16(dy, ny);
    void *d_y, *y = random_out(yt, ny, &d_y);
    float *dx = host_randn(nx, 1), *dW = host_randn(nw, 1), *d_dx = dev_upload(dx, nx), *d_dW = dev_upload(dW, nw);

    gemm_bf16_ref(0, 1, N, Out, In, 1.0f, x, In, W, In, accumulate ? 1.0f : 0.0f, y, yt, Out);
    matmul_bf16_forward_cuda(d_y, yt, d_x, d_W, N, In, Out, accumulate);
    expect_out(accumulate ? "matmul_bf16 y += x W^T" : "matmul_bf16 y = x W^T", d_y, y, yt, ny);

    if (with_dx) gemm_bf16_ref(0, 0, N, In, Out, 1.0f, dy, Out, W, In, 1.0f, dx, LQA_F32, In);
    if (with_dW) gemm_bf16_ref(1, 0, Out, In, N, 1.0f, dy, Out, x, In, 1.0f, dW, LQA_F32, In);
    matmul_bf16_backward_cuda(with_dx ? d_dx : NULL, with_dW ? d_dW : NULL, d_dy, d_x, d_W, N, In, Out);
    expect_dev_rel("matmul_bf16 dx", d_dx, dx, nx, F32_REL);
    expect_dev_rel("matmul_bf16 dW", d_dW, dW, nw, F32_REL);

    lqa_cuda_free(d_x), lqa_cuda_free(d_W), lqa_cuda_free(d_dy), lqa_cuda_free(d_y), lqa_cuda_free(d_dx),
        lqa_cuda_free(d_dW);
    free(x), free(W), free(dy), free(y), free(dx), free(dW);
}

/* LoRA. The device rounds t = x A^T and dt = scale dy B to bf16 (they feed the next product);
 * the reference rounds at the same two points (gemm_bf16_ref with a bf16 output). Where the two
 * fp32 sums straddle a rounding boundary, t (or dt) differ by one bf16 ulp, 2^-7 of that element,
 * which moves one term of each y, dA, dx sum by 2^-7 of its size: LORA_REL = 2^-7 of the largest
 * value bounds it (and the fp32 part, 1e-4, fits under it). */
#define LORA_REL (2 * LQA_BF16_U)

static void lora_case(lqa_dtype yt, int with_dx, int with_dB) {
    int N = rand_between(1, CUDA_TEST_MAX(150)), In = rand_between(1, CUDA_TEST_MAX(200));
    int Out = rand_between(1, CUDA_TEST_MAX(180)), r = rand_between(1, 16);
    float scale = 2.0f / (float)r;
    size_t nx = (size_t)N * In, na = (size_t)r * In, nb = (size_t)Out * r, ny = (size_t)N * Out, nt = (size_t)N * r;
    lqa_bf16 *x = host_randn_bf16(nx, 1, NULL), *A = host_randn_bf16(na, 0.1f, NULL), *B = host_randn_bf16(nb, 0.1f, NULL);
    lqa_bf16 *dy = host_randn_bf16(ny, 1, NULL);
    lqa_bf16 *d_x = dev_upload_bf16(x, nx), *d_A = dev_upload_bf16(A, na), *d_B = dev_upload_bf16(B, nb);
    lqa_bf16 *d_dy = dev_upload_bf16(dy, ny), *d_t = dev_zeros_like_bytes(sizeof(lqa_bf16) * nt);
    lqa_bf16 *d_scratch = dev_zeros_like_bytes(sizeof(lqa_bf16) * nt);
    void *d_y, *y = random_out(yt, ny, &d_y);
    float *dx = host_randn(nx, 1), *dA = host_randn(na, 1), *dB = host_randn(nb, 1);
    float *d_dx = dev_upload(dx, nx), *d_dA = dev_upload(dA, na), *d_dB = dev_upload(dB, nb);
    lqa_bf16 *t = lqa_malloc(sizeof(lqa_bf16) * nt), *dt = lqa_malloc(sizeof(lqa_bf16) * nt);

    gemm_bf16_ref(0, 1, N, r, In, 1.0f, x, In, A, In, 0.0f, t, LQA_BF16, r);
    gemm_bf16_ref(0, 1, N, Out, r, scale, t, r, B, r, 1.0f, y, yt, Out);
    lora_bf16_forward_cuda(d_y, yt, d_t, d_x, d_A, d_B, N, In, Out, r, scale);
    expect_out("lora_bf16 t", d_t, t, LQA_BF16, nt);
    if (yt == LQA_F32) expect_dev_rel("lora_bf16 y", d_y, y, ny, LORA_REL);
    else expect_out("lora_bf16 y (bf16)", d_y, y, yt, ny);

    /* the backward from the reference's t on both sides, so it is checked on its own */
    lqa_cuda_to_device(d_t, t, sizeof(lqa_bf16) * nt);
    if (with_dB) gemm_bf16_ref(1, 0, Out, r, N, scale, dy, Out, t, r, 1.0f, dB, LQA_F32, r);
    gemm_bf16_ref(0, 0, N, r, Out, scale, dy, Out, B, r, 0.0f, dt, LQA_BF16, r);
    gemm_bf16_ref(1, 0, r, In, N, 1.0f, dt, r, x, In, 1.0f, dA, LQA_F32, In);
    if (with_dx) gemm_bf16_ref(0, 0, N, In, r, 1.0f, dt, r, A, In, 1.0f, dx, LQA_F32, In);
    lora_bf16_backward_cuda(with_dx ? d_dx : NULL, d_dA, with_dB ? d_dB : NULL, d_dy, d_x, d_t, d_A, d_B, N, In, Out,
                            r, scale, d_scratch);
    expect_dev_rel("lora_bf16 dB", d_dB, dB, nb, F32_REL);
    expect_dev_rel("lora_bf16 dA", d_dA, dA, na, LORA_REL);
    expect_dev_rel("lora_bf16 dx", d_dx, dx, nx, LORA_REL);

    lqa_cuda_free(d_x), lqa_cuda_free(d_A), lqa_cuda_free(d_B), lqa_cuda_free(d_dy), lqa_cuda_free(d_t);
    lqa_cuda_free(d_scratch), lqa_cuda_free(d_y), lqa_cuda_free(d_dx), lqa_cuda_free(d_dA), lqa_cuda_free(d_dB);
    free(x), free(A), free(B), free(dy), free(y), free(dx), free(dA), free(dB), free(t), free(dt);
}
#endif

/* Device conversions equal the host's bit for bit: random values of every magnitude (normals,
 * subnormals, overflow to inf), exact ties at both parities, signed zeros, infinities, NaN. */
static void test_conversions(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    enum { n = 4096 };
    float *f = lqa_malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) {
        uint32_t u = (uint32_t)lqa_rng_below(&cuda_rng, 1ull << 32);
        if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u; /* an exact tie: half way between two bf16 */
        memcpy(&f[i], &u, sizeof u);
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MAX /* rounds up to inf */, 1e-40f};
    memcpy(f, special, sizeof special);
    lqa_bf16 *want = lqa_malloc(sizeof(lqa_bf16) * n), *got = lqa_malloc(sizeof(lqa_bf16) * n);
    lqa_bf16_from_floats(want, f, n);
    assert_true(isinf(lqa_bf16_to_float(want[5])));
    float *d_f = dev_upload(f, n);
    lqa_bf16 *d_h = dev_zeros_like_bytes(sizeof(lqa_bf16) * n);
    bf16_from_f32_cuda(d_h, d_f, n);
    lqa_cuda_to_host(got, d_h, sizeof(lqa_bf16) * n);
    for (int i = 0; i < n; i++)
        if (got[i] != want[i] && !(isnan(f[i]) && isnan(lqa_bf16_to_float(got[i])))) /* NaN: any quiet NaN */
            fail_msg("bf16_from_f32_cuda(%.9g): device 0x%04x, host 0x%04x", f[i], got[i], want[i]);
    float *wide = lqa_malloc(sizeof(float) * n);
    bf16_to_f32_cuda(d_f, d_h, n);
    lqa_bf16_to_floats(wide, want, n);
    float *back = dev_download(d_f, n);
    for (int i = 0; i < n; i++)
        if (memcmp(&back[i], &wide[i], sizeof(float)) != 0 && !isnan(wide[i])) fail_msg("bf16_to_f32_cuda differs at %d", i);
    lqa_cuda_free(d_f), lqa_cuda_free(d_h);
    free(f), free(want), free(got), free(wide), free(back);
#endif
}

static void test_gemm(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) {
        gemm_case(ta, tb, LQA_F32);
        gemm_case(ta, tb, LQA_BF16);
    });
}

static void test_matmul(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(matmul_case(LQA_F32, 0, 1, 1); matmul_case(LQA_F32, 1, 1, 0); matmul_case(LQA_BF16, 0, 0, 1);
              matmul_case(LQA_BF16, 1, 1, 1));
}

static void test_lora(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(lora_case(LQA_F32, 1, 1); lora_case(LQA_F32, 0, 1); lora_case(LQA_BF16, 1, 0));
}

/* the chunked cross-entropy's logits: a chunk of rows against the whole vocabulary, fp32 out */
static void test_logits(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    int rows = rand_between(1, CUDA_TEST_MAX(64)), D = rand_between(1, CUDA_TEST_MAX(256)), V = rand_between(100, CUDA_TEST_MAX(2000));
    lqa_bf16 *x = host_randn_bf16((size_t)rows * D, 1, NULL), *W = host_randn_bf16((size_t)V * D, 0.05f, NULL);
    float *logits = host_randn((size_t)rows * V, 1), *d_logits = dev_upload(logits, (size_t)rows * V);
    lqa_bf16 *d_x = dev_upload_bf16(x, (size_t)rows * D), *d_W = dev_upload_bf16(W, (size_t)V * D);
    gemm_bf16_ref(0, 1, rows, V, D, 1.0f, x, D, W, D, 0.0f, logits, LQA_F32, V);
    crossentropy_logits_bf16_cuda(d_logits, d_x, d_W, rows, D, V);
    expect_dev_rel("crossentropy logits (bf16 in, fp32 out)", d_logits, logits, (size_t)rows * V, F32_REL);
    lqa_cuda_free(d_logits), lqa_cuda_free(d_x), lqa_cuda_free(d_W);
    free(x), free(W), free(logits);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_lora),
        cmocka_unit_test(test_logits),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
