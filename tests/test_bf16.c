/* test_bf16.c: the host bf16 helpers of kernels/bf16.h, the CPU side of the bf16 CUDA path:
 * rounding against an independent reference (the two neighbouring bf16 values found by
 * truncation, the nearer chosen in double, ties to the even one) on random floats of every
 * magnitude, exact ties, specials; and gemm_bf16_ref against a naive double GEMM on the widened
 * values for every transpose pair and both output types. */
#include "tests/testutil.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/rng.h"
#include "kernels/bf16.h"

static lqa_rng rng;

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Nearest bf16 of a finite f, ties to even, from the two candidates around it. */
static float ref_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    float lo = from_bits(u & 0xffff0000u), hi = from_bits((u & 0xffff0000u) + 0x10000u); /* away from 0 */
    /* past the largest bf16 the upper neighbour is 2^128 (IEEE overflow rounds to inf from there) */
    double hi_val = isinf(hi) ? copysign(ldexp(1.0, 128), f) : hi;
    double dlo = fabs((double)f - lo), dhi = fabs((double)f - hi_val);
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return ((u >> 16) & 1u) ? hi : lo; /* tie: the even mantissa */
}

static void test_rounding(void **state) {
    (void)state;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)lqa_rng_below(&rng, 1ull << 32);
        if (i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact tie */
        float f = from_bits(u);
        if (!isfinite(f)) continue;
        float got = lqa_bf16_round(f), want = ref_round(f);
        if (memcmp(&got, &want, sizeof got) != 0 && !(isinf(want) && isinf(got)))
            fail_msg("round(%a) = %a, expected %a", f, got, want);
    }
    assert_true(isinf(lqa_bf16_round(FLT_MAX)) && lqa_bf16_round(FLT_MAX) > 0);
    assert_true(isnan(lqa_bf16_round(NAN)));
    assert_true(isinf(lqa_bf16_round(-INFINITY)) && lqa_bf16_round(-INFINITY) < 0);
    assert_true(signbit(lqa_bf16_round(-0.0f)) && lqa_bf16_round(-0.0f) == 0.0f);
    assert_true(lqa_bf16_round(1.0f + 1.0f / 256) == 1.0f);                 /* tie to even (down) */
    assert_true(lqa_bf16_round(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256);    /* tie to even (up) */
}

static void test_gemm_ref(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ct = 0; ct < 2; ct++) {
                int M = 1 + (int)lqa_rng_below(&rng, 40), N = 1 + (int)lqa_rng_below(&rng, 40);
                int K = 1 + (int)lqa_rng_below(&rng, 60);
                int lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                lqa_bf16 *A = lqa_malloc(2 * na), *B = lqa_malloc(2 * nb), *C16 = lqa_malloc(2 * nc);
                float *C = lqa_malloc(4 * nc), *C0 = lqa_malloc(4 * nc);
                for (size_t i = 0; i < na; i++) A[i] = lqa_bf16_from_float((float)lqa_rng_normal(&rng));
                for (size_t i = 0; i < nb; i++) B[i] = lqa_bf16_from_float((float)lqa_rng_normal(&rng));
                for (size_t i = 0; i < nc; i++) C0[i] = lqa_bf16_round((float)lqa_rng_normal(&rng));
                memcpy(C, C0, 4 * nc);
                lqa_bf16_from_floats(C16, C0, nc);
                float alpha = 1.5f, beta = -0.5f;
                if (ct) gemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C16, LQA_BF16, ldc);
                else gemm_bf16_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, LQA_F32, ldc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int l = 0; l < K; l++)
                            s += (double)lqa_bf16_to_float(ta ? A[(size_t)l * lda + i] : A[(size_t)i * lda + l]) *
                                 lqa_bf16_to_float(tb ? B[(size_t)j * ldb + l] : B[(size_t)l * ldb + j]);
                        double want = alpha * s + beta * C0[(size_t)i * ldc + j];
                        double got = ct ? lqa_bf16_to_float(C16[(size_t)i * ldc + j]) : C[(size_t)i * ldc + j];
                        /* fp32 sum: ~K 2^-24 sum|ab|; bf16 out: one more rounding, 2^-8 relative */
                        double tol = 1e-5 * (K + 1) * 4 + (ct ? LQA_BF16_U * fabs(want) : 0);
                        if (fabs(got - want) > tol)
                            fail_msg("gemm_bf16_ref %d%d %s (%d,%d): %g, expected %g", ta, tb, ct ? "bf16" : "f32", i, j,
                                     got, want);
                    }
                free(A), free(B), free(C16), free(C), free(C0);
            }
}

static int setup(void **state) {
    (void)state;
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_gemm_ref),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
