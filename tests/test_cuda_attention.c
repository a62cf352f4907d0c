/* test_cuda_attention.c: the CUDA flash attention against the CPU tiled attention (itself
 * checked against a naive reference and finite differences in test_kernels_attention.c) on
 * fresh random inputs, in every mask mode: plain causal, packed segment ids with padding, S2-Attn
 * groups, S2 with segments, Tq < Tk (KV-cache queries), GQA layouts, and head dims that are not a
 * multiple of 32 or need more than 48 KiB of shared memory. Compares out, lse and the
 * accumulated dq, dk, dv; the backward must also be bitwise repeatable (no atomics). */
#include "tests/test_cuda_util.h"

#include "kernels/attention.h"

enum { MODE_CAUSAL, MODE_SEGMENTS, MODE_S2, MODE_S2_SEGMENTS, MODE_KV_CACHE, MODE_COUNT };

#ifdef LQA_CUDA
static const char *mode_names[MODE_COUNT] = {"causal", "segments", "s2", "s2+segments", "kv-cache"};

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

static const int head_dims[] = {8, 16, 40, 64, 96, 128, 200};

/* Random shapes for a mode; T a multiple of the group for S2 modes. */
static attn_params random_params(int mode) {
    static const int kv_layouts[][2] = {{1, 1}, {2, 2}, {2, 1}, {4, 2}, {4, 1}, {6, 3}, {8, 2}};
    int lay = rand_between(0, (int)(sizeof kv_layouts / sizeof kv_layouts[0]) - 1);
    attn_params p = {0};
    p.B = rand_between(1, 2);
    p.H = kv_layouts[lay][0];
    p.KV = kv_layouts[lay][1];
    p.hd = head_dims[rand_between(0, (int)(sizeof head_dims / sizeof head_dims[0]) - 1)];
    p.Tk = rand_between(1, CUDA_TEST_MAX(150));
    p.Tq = p.Tk;
    if (mode == MODE_S2 || mode == MODE_S2_SEGMENTS) {
        p.group = 2 * rand_between(1, CUDA_TEST_MAX(24));
        p.Tk = p.Tq = p.group * rand_between(1, 6);
    }
    if (mode == MODE_KV_CACHE) p.Tq = rand_between(1, p.Tk);
    return p;
}

static void attention_case(int mode, int hd_override) {
    attn_params p = random_params(mode);
    if (hd_override) p.hd = hd_override;
    int32_t *seg = NULL, *d_seg = NULL;
    if (mode == MODE_SEGMENTS || mode == MODE_S2_SEGMENTS || (mode == MODE_KV_CACHE && lqa_rng_uniform(&cuda_rng) < 0.5)) {
        seg = random_segments(p.B, p.Tk);
        d_seg = dev_upload_i32(seg, (size_t)p.B * p.Tk);
    }
    p.segment_ids = seg; /* host copy for the CPU reference */
    char msg[256];
    assert_int_equal(attention_check(&p, msg, sizeof msg), 0);
    print_message("# %s: B=%d Tq=%d Tk=%d H=%d KV=%d hd=%d group=%d segments=%s\n", mode_names[mode], p.B, p.Tq,
                  p.Tk, p.H, p.KV, p.hd, p.group, seg ? "yes" : "no");

    size_t nq = (size_t)p.B * p.Tq * p.H * p.hd, nk = (size_t)p.B * p.Tk * p.KV * p.hd, nl = (size_t)p.B * p.H * p.Tq;
    float *q = host_randn(nq, 1), *k = host_randn(nk, 1), *v = host_randn(nk, 1), *dout = host_randn(nq, 1);
    float *out = host_randn(nq, 1), *lse = host_randn(nl, 1);
    float *dq = host_randn(nq, 1), *dk = host_randn(nk, 1), *dv = host_randn(nk, 1);
    float *d_q = dev_upload(q, nq), *d_k = dev_upload(k, nk), *d_v = dev_upload(v, nk), *d_dout = dev_upload(dout, nq);
    float *d_out = dev_upload(out, nq), *d_lse = dev_upload(lse, nl);
    float *d_dq = dev_upload(dq, nq), *d_dk = dev_upload(dk, nk), *d_dv = dev_upload(dv, nk);
    float *scratch = lqa_malloc(sizeof(float) * attention_scratch_floats(&p, kernels_get_threads()));

    attention_forward_cpu(out, lse, q, k, v, &p, scratch);
    p.segment_ids = d_seg; /* the CUDA twins read segment ids from the device */
    attention_forward_cuda(d_out, d_lse, d_q, d_k, d_v, &p, NULL);
    expect_dev_close("attention out", d_out, out, nq, 2e-5, 1e-4);
    expect_dev_close("attention lse", d_lse, lse, nl, 2e-5, 1e-5);

    /* the backward uses the CPU's out and lse on both sides, so it is checked on its own */
    lqa_cuda_to_device(d_out, out, sizeof(float) * nq);
    lqa_cuda_to_device(d_lse, lse, sizeof(float) * nl);
    float *dq0 = host_copy(dq, nq), *dk0 = host_copy(dk, nk), *dv0 = host_copy(dv, nk);
    p.segment_ids = seg;
    attention_backward_cpu(dq, dk, dv, dout, out, lse, q, k, v, &p, scratch);
    p.segment_ids = d_seg;
    attention_backward_cuda(d_dq, d_dk, d_dv, d_dout, d_out, d_lse, d_q, d_k, d_v, &p, NULL);
    expect_dev_close("attention dq", d_dq, dq, nq, 1e-4, 1e-3);
    expect_dev_close("attention dk", d_dk, dk, nk, 1e-4, 1e-3);
    expect_dev_close("attention dv", d_dv, dv, nk, 1e-4, 1e-3);

    /* repeatable: a second backward from the same start gives the same bits */
    float *first_dq = dev_download(d_dq, nq), *first_dk = dev_download(d_dk, nk), *first_dv = dev_download(d_dv, nk);
    lqa_cuda_to_device(d_dq, dq0, sizeof(float) * nq);
    lqa_cuda_to_device(d_dk, dk0, sizeof(float) * nk);
    lqa_cuda_to_device(d_dv, dv0, sizeof(float) * nk);
    attention_backward_cuda(d_dq, d_dk, d_dv, d_dout, d_out, d_lse, d_q, d_k, d_v, &p, NULL);
    float *again = dev_download(d_dq, nq);
    expect_equal_bits("attention dq, second run", again, first_dq, nq);
    free(again);
    again = dev_download(d_dk, nk);
    expect_equal_bits("attention dk, second run", again, first_dk, nk);
    free(again);
    again = dev_download(d_dv, nk);
    expect_equal_bits("attention dv, second run", again, first_dv, nk);
    free(again);

    lqa_cuda_free(d_q), lqa_cuda_free(d_k), lqa_cuda_free(d_v), lqa_cuda_free(d_dout), lqa_cuda_free(d_out);
    lqa_cuda_free(d_lse), lqa_cuda_free(d_dq), lqa_cuda_free(d_dk), lqa_cuda_free(d_dv), lqa_cuda_free(d_seg);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv), free(scratch);
    free(dq0), free(dk0), free(dv0), free(first_dq), free(first_dk), free(first_dv), free(seg);
}
#endif

static void test_causal(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) attention_case(MODE_CAUSAL, 0));
}

static void test_segments(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) attention_case(MODE_SEGMENTS, 0));
}

static void test_s2(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) attention_case(MODE_S2, 0));
}

static void test_s2_segments(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) attention_case(MODE_S2_SEGMENTS, 0));
}

static void test_kv_cache_queries(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (int rep = 0; rep < 4; rep++) attention_case(MODE_KV_CACHE, 0));
}

/* every head dim of the list once, the largest ones needing the shared-memory opt-in */
static void test_head_dims(void **state) {
    CUDA_TEST_REQUIRE();
    CUDA_ONLY(for (size_t i = 0; i < sizeof head_dims / sizeof head_dims[0]; i++)
                  attention_case(rand_between(0, MODE_COUNT - 1), head_dims[i]);
              attention_case(MODE_S2, 256));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_causal),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_s2),
        cmocka_unit_test(test_s2_segments),
        cmocka_unit_test(test_kv_cache_queries),
        cmocka_unit_test(test_head_dims),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
