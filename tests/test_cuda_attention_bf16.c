/* test_cuda_attention_bf16.c: the tensor-core flash attention (kernels/attention_bf16.h, bf16
 * q/k/v/out/dout, fp32 lse and gradients) against the fp32 CPU tiled attention (itself checked
 * against a naive reference and finite differences in test_kernels_attention.c) on the same
 * bf16 inputs widened, in every mask mode: causal, packed segment ids with padding, S2-Attn, S2
 * with segments, Tq < Tk (KV-cache queries, with and without segments); GQA layouts 1:1 to 4:1;
 * head dims 16 to 128 (64 and 128 in every mode); random lengths that are not multiples of the
 * 64-row tiles. Forward and backward; the backward also bitwise repeatable (no atomics), and a
 * bad head dim refused. */
#include "tests/test_cuda_bf16_util.h"

#include "kernels/attention_bf16.h"

/* Tolerances, with u = 2^-8 (bf16's unit roundoff). Both sides see the same bf16 q, k, v, dout.
 *  - out: the device rounds each probability P to bf16 before P V (relative error <= u each) and
 *    normalises by the fp32 sum of the unrounded P, so out moves by at most u * max|v|; then out
 *    itself is rounded to bf16 (u |out|). OUT_ATOL = 1.5 u max|v|, OUT_RTOL = 1.5 u (the 0.5 is
 *    room for the fp32 score and exp differences, ~1e-6).
 *  - lse: all fp32 (scores are exact products summed in fp32): LSE_ATOL 2e-4 (hd * 2^-24 *
 *    sum|q k| * scale for hd 128 and unit-normal inputs), LSE_RTOL 1e-5.
 *  - dq, dk, dv (fed the device's out and lse on both sides, so checked on their own): each term
 *    of their sums carries one bf16 rounding (P for dv, scale dS for dq and dk: <= u relative);
 *    over the random signs of these inputs the accumulated error stays within a few u of the
 *    largest gradient: allowance 3 u max|grad| (grad = what the call added). A mask or tile mistake moves
 *    whole rows by the gradient's own scale.
 * The worst error seen in each run, in units of the allowance, is printed (# worst ...). */
#define U LQA_BF16_U
#define OUT_K 1.5
#define LSE_ATOL 2e-4
#define LSE_RTOL 1e-5
#define GRAD_K 3.0
#define GRAD_RTOL 1e-6 /* the random start the gradient is added to: one fp32 addition */
/* fp32 floor: where a gradient cancels to ~0 (a query with one visible key has dS = 0 exactly),
 * what is left is the fp32 rounding of dP - D, about hd 2^-24 |dO||v| per term: 2e-5 here */
#define GRAD_FLOOR 2e-5

enum { MODE_CAUSAL, MODE_SEGMENTS, MODE_S2, MODE_S2_SEGMENTS, MODE_KV_CACHE, MODE_COUNT };

#ifdef LQA_CUDA
static const char *mode_names[MODE_COUNT] = {"causal", "segments", "s2", "s2+segments", "kv-cache"};
static double worst_seen[5]; /* out, lse, dq, dk, dv: largest err / allowance so far */

/* Packed records of random lengths, then (maybe) a padded tail marked -1. */
static int32_t *random_segments(int B, int T) {
    int32_t *seg = lqa_malloc(sizeof(int32_t) * (size_t)B * T);
    for (int b = 0; b < B; b++) {
        int pad = lqa_rng_uniform(&cuda_rng) < 0.5 ? rand_between(0, T / 4) : 0, id = 0, t = 0;
        while (t < T - pad) {
            int len = rand_between(1, T / 2 + 1);
            for (int e = 0; e < len && t < T - pad; e++) seg[(size_t)b * T + t++] = id;
            id++;
        }
        for (; t < T; t++) seg[(size_t)b * T + t] = -1;
    }
    return seg;
}

static const int head_dims[] = {16, 32, 48, 64, 80, 96, 128};

static attn_params random_params(int mode, int hd) {
    static const int kv_layouts[][2] = {{1, 1}, {2, 2}, {2, 1}, {4, 2}, {4, 1}, {6, 3}};
    int lay = rand_between(0, (int)(sizeof kv_layouts / sizeof kv_layouts[0]) - 1);
    attn_params p = {0};
    p.B = rand_between(1, 2);
    p.H = kv_layouts[lay][0];
    p.KV = kv_layouts[lay][1];
    p.hd = hd ? hd : head_dims[rand_between(0, (int)(sizeof head_dims / sizeof head_dims[0]) - 1)];
    p.Tk = p.Tq = rand_between(1, CUDA_TEST_MAX(300));
    if (mode == MODE_S2 || mode == MODE_S2_SEGMENTS) {
        p.group = 2 * rand_between(1, CUDA_TEST_MAX(48));
        p.Tk = p.Tq = p.group * rand_between(1, 6);
    }
    if (mode == MODE_KV_CACHE) p.Tq = rand_between(1, p.Tk);
    return p;
}

/* As expect_close, and records the worst err / allowance in *worst. */
static void expect_close_track(const char *what, const float *got, const float *want, size_t n, double atol,
                               double rtol, double *worst) {
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i]) && got[i] == want[i]) continue;
        double r = fabs((double)got[i] - want[i]) / (atol + rtol * fabs((double)want[i]));
        if (r > *worst || isnan(r)) *worst = isnan(r) ? INFINITY : r;
    }
    expect_close(what, got, want, n, atol, rtol);
}

static void run_case(attn_params p, int mode) {
    int32_t *seg = NULL, *d_seg = NULL;
    if (mode == MODE_SEGMENTS || mode == MODE_S2_SEGMENTS || (mode == MODE_KV_CACHE && lqa_rng_uniform(&cuda_rng) < 0.5)) {
        seg = random_segments(p.B, p.Tk);
        d_seg = dev_upload_i32(seg, (size_t)p.B * p.Tk);
    }
    char msg[256];
    p.segment_ids = seg; /* host copy for the CPU reference */
    assert_int_equal(attention_bf16_check(&p, msg, sizeof msg), 0);
    print_message("# %s: B=%d Tq=%d Tk=%d H=%d KV=%d hd=%d group=%d segments=%s\n", mode_names[mode], p.B, p.Tq,
                  p.Tk, p.H, p.KV, p.hd, p.group, seg ? "yes" : "no");

    size_t nq = (size_t)p.B * p.Tq * p.H * p.hd, nk = (size_t)p.B * p.Tk * p.KV * p.hd, nl = (size_t)p.B * p.H * p.Tq;
    float *q, *k, *v, *dout;
    lqa_bf16 *q16 = host_randn_bf16(nq, 1, &q), *k16 = host_randn_bf16(nk, 1, &k), *v16 = host_randn_bf16(nk, 1, &v);
    lqa_bf16 *dout16 = host_randn_bf16(nq, 1, &dout);
    float *out = host_randn(nq, 1), *lse = host_randn(nl, 1);
    float *dq = host_randn(nq, 1), *dk = host_randn(nk, 1), *dv = host_randn(nk, 1);
    lqa_bf16 *d_q = dev_upload_bf16(q16, nq), *d_k = dev_upload_bf16(k16, nk), *d_v = dev_upload_bf16(v16, nk);
    lqa_bf16 *d_dout = dev_upload_bf16(dout16, nq), *d_out = dev_upload_bf16(dout16, nq); /* garbage, overwritten */
    float *d_lse = dev_upload(lse, nl), *d_dq = dev_upload(dq, nq), *d_dk = dev_upload(dk, nk), *d_dv = dev_upload(dv, nk);
    float *scratch = lqa_malloc(sizeof(float) * attention_scratch_floats(&p, kernels_get_threads()));

    attention_forward_cpu(out, lse, q, k, v, &p, scratch);
    p.segment_ids = d_seg; /* the device kernels read segment ids from the device */
    attention_forward_bf16_cuda(d_out, d_lse, d_q, d_k, d_v, &p);
    float vmax = (float)max_abs(v, nk);
    float *got_out = dev_download_bf16(d_out, nq), *got_lse = dev_download(d_lse, nl);
    expect_close_track("attention bf16 out", got_out, out, nq, OUT_K * U * vmax, OUT_K * U, &worst_seen[0]);
    expect_close_track("attention bf16 lse", got_lse, lse, nl, LSE_ATOL, LSE_RTOL, &worst_seen[1]);

    /* the backward from the device's out and lse on both sides, so it is checked on its own */
    float *dq0 = host_copy(dq, nq), *dk0 = host_copy(dk, nk), *dv0 = host_copy(dv, nk);
    p.segment_ids = seg;
    attention_backward_cpu(dq, dk, dv, dout, got_out, got_lse, q, k, v, &p, scratch);
    p.segment_ids = d_seg;
    attention_backward_bf16_cuda(d_dq, d_dk, d_dv, d_dout, d_out, d_lse, d_q, d_k, d_v, &p);
    float *g_dq = dev_download(d_dq, nq), *g_dk = dev_download(d_dk, nk), *g_dv = dev_download(d_dv, nk);
    /* the allowance is relative to what the call added (want minus the random start) */
    float *gq = host_copy(dq, nq), *gk = host_copy(dk, nk), *gv = host_copy(dv, nk);
    for (size_t i = 0; i < nq; i++) gq[i] -= dq0[i];
    for (size_t i = 0; i < nk; i++) gk[i] -= dk0[i], gv[i] -= dv0[i];
    double sq = max_abs(gq, nq), sk = max_abs(gk, nk), sv = max_abs(gv, nk);
    free(gq), free(gk), free(gv);
    expect_close_track("attention bf16 dq", g_dq, dq, nq, GRAD_K * U * sq + GRAD_FLOOR, GRAD_RTOL, &worst_seen[2]);
    expect_close_track("attention bf16 dk", g_dk, dk, nk, GRAD_K * U * sk + GRAD_FLOOR, GRAD_RTOL, &worst_seen[3]);
    expect_close_track("attention bf16 dv", g_dv, dv, nk, GRAD_K * U * sv + GRAD_FLOOR, GRAD_RTOL, &worst_seen[4]);

    /* repeatable: a second backward from the same start gives the same bits */
    lqa_cuda_to_device(d_dq, dq0, sizeof(float) * nq);
    lqa_cuda_to_device(d_dk, dk0, sizeof(float) * nk);
    lqa_cuda_to_device(d_dv, dv0, sizeof(float) * nk);
    attention_backward_bf16_cuda(d_dq, d_dk, d_dv, d_dout, d_out, d_lse, d_q, d_k, d_v, &p);
    float *again = dev_download(d_dq, nq);
    expect_equal_bits("attention bf16 dq, second run", again, g_dq, nq);
    free(again);
    again = dev_download(d_dk, nk);
    expect_equal_bits("attention bf16 dk, second run", again, g_dk, nk);
    free(again);
    again = dev_download(d_dv, nk);
    expect_equal_bits("attention bf16 dv, second run", again, g_dv, nk);
    free(again);

    lqa_cuda_free(d_q), lqa_cuda_free(d_k), lqa_cuda_free(d_v), lqa_cuda_free(d_dout), lqa_cuda_free(d_out);
    lqa_cuda_free(d_lse), lqa_cuda_free(d_dq), lqa_cuda_free(d_dk), lqa_cuda_free(d_dv), lqa_cuda_free(d_seg);
    free(q16), free(k16), free(v16), free(dout16), free(q), free(k), free(v), free(dout), free(out), free(lse);
    free(dq), free(dk), free(dv), free(dq0), free(dk0), free(dv0), free(got_out), free(got_lse);
    free(g_dq), free(g_dk), free(g_dv), free(scratch), free(seg);
}

static void attention_case(int mode, int hd) { run_case(random_params(mode, hd), mode); }

static void report_worst(void) {
    print_message("# worst error / allowance so far: out %.2f lse %.2f dq %.2f dk %.2f dv %.2f\n", worst_seen[0],
                  worst_seen[1], worst_seen[2], worst_seen[3], worst_seen[4]);
}
#endif

#define MODE_TEST(name, mode) \
    static void name(void **state) { \
        CUDA_TEST_REQUIRE(); \
        CUDA_ONLY(for (int rep = 0; rep < 3; rep++) attention_case(mode, 0); report_worst()); \
    }
MODE_TEST(test_causal, MODE_CAUSAL)
MODE_TEST(test_segments, MODE_SEGMENTS)
MODE_TEST(test_s2, MODE_S2)
MODE_TEST(test_s2_segments, MODE_S2_SEGMENTS)
MODE_TEST(test_kv_cache_queries, MODE_KV_CACHE)

/* head dims 64 and 128 in every mode */
static void test_head_dims_64_128(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int mode = 0; mode < MODE_COUNT; mode++) {
        attention_case(mode, 64);
        attention_case(mode, 128);
    } report_worst());
}

/* Shapes with 64 x 64 tiles that are entirely visible (the kernels skip the per-element mask
 * there) next to partial and empty ones: causal, S2 with groups of 128 (tiles inside one group) and 96 (tiles across a group boundary,
 * plain and shifted heads),
 * KV-cache queries (70 of 201, and one token of 150 as in decoding); lengths not multiples of 64. Fixed shapes, random values. */
static void test_full_tiles(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    attn_params causal = {.B = 1, .Tq = 200, .Tk = 200, .H = 2, .KV = 1, .hd = 16};
    attn_params s2 = {.B = 1, .Tq = 384, .Tk = 384, .H = 2, .KV = 1, .hd = 16, .group = 128};
    attn_params s2_straddle = {.B = 1, .Tq = 288, .Tk = 288, .H = 2, .KV = 1, .hd = 16, .group = 96};
    attn_params decode = {.B = 1, .Tq = 70, .Tk = 201, .H = 2, .KV = 2, .hd = 32};
    attn_params one_token = {.B = 2, .Tq = 1, .Tk = 150, .H = 4, .KV = 1, .hd = 64}; /* a decode step, GQA 4:1 */
    run_case(causal, MODE_CAUSAL);
    run_case(s2, MODE_S2);
    run_case(s2_straddle, MODE_S2); /* query tiles across a group boundary: causally full, not S2-full */
    run_case(decode, MODE_KV_CACHE);
    run_case(one_token, MODE_KV_CACHE);
    report_worst();
#endif
}

/* head dims the WMMA tiles cannot take are refused with a message */
static void test_bad_head_dim(void **state) {
    attn_params p = {.B = 1, .Tq = 8, .Tk = 8, .H = 2, .KV = 1, .hd = 40};
    char msg[256] = "";
    assert_int_equal(attention_bf16_check(&p, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "multiples of 16"));
    p.hd = 144;
    assert_int_equal(attention_bf16_check(&p, msg, sizeof msg), -1);
    p.hd = 128;
    assert_int_equal(attention_bf16_check(&p, msg, sizeof msg), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_causal),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_s2),
        cmocka_unit_test(test_s2_segments),
        cmocka_unit_test(test_kv_cache_queries),
        cmocka_unit_test(test_head_dims_64_128),
        cmocka_unit_test(test_full_tiles),
        cmocka_unit_test(test_bad_head_dim),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
