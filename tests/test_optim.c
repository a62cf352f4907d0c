/* test_optim.c: AdamW against a double-precision transcription of torch.optim.AdamW, decay only
 * on decay groups, convergence on a quadratic, global-norm clipping, the lr schedule, and
 * thread-count independence. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "trainer/optim.h"

static void fill_normal(lqa_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * lqa_rng_normal(r);
}

static void test_adamw_matches_reference(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    enum { N = 300, STEPS = 25 };
    float p[N], g[N];
    double rp[N], rm[N] = {0}, rv[N] = {0};
    fill_normal(&r, p, N, 1.0f);
    for (int i = 0; i < N; i++) rp[i] = p[i];
    lqa_adamw_cfg cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    lqa_optim o;
    lqa_optim_init(&o, &cfg);
    lqa_optim_add(&o, "w", p, g, N, 1);
    for (int t = 1; t <= STEPS; t++) {
        fill_normal(&r, g, N, 0.5f);
        float lr = 1e-2f * (float)(1 + lqa_rng_below(&r, 3)), scale = 0.5f + (float)lqa_rng_uniform(&r);
        lqa_optim_step(&o, lr, scale);
        for (int i = 0; i < N; i++) {
            double gi = (double)g[i] * scale;
            rp[i] *= 1.0 - lr * cfg.weight_decay;
            rm[i] = cfg.beta1 * rm[i] + (1 - cfg.beta1) * gi;
            rv[i] = cfg.beta2 * rv[i] + (1 - cfg.beta2) * gi * gi;
            double mh = rm[i] / (1 - pow(cfg.beta1, t)), vh = rv[i] / (1 - pow(cfg.beta2, t));
            rp[i] -= lr * mh / (sqrt(vh) + cfg.eps);
        }
    }
    for (int i = 0; i < N; i++) assert_true(fabs(p[i] - rp[i]) < 1e-5 * (1 + fabs(rp[i])));
    assert_int_equal(o.t, STEPS);
    lqa_optim_free(&o);
}

static void test_decay_only_on_decay_groups(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    enum { N = 64 };
    float a[N], b[N], a0[N], b0[N], zero[N] = {0};
    fill_normal(&r, a, N, 1);
    fill_normal(&r, b, N, 1);
    memcpy(a0, a, sizeof a);
    memcpy(b0, b, sizeof b);
    lqa_adamw_cfg cfg = {0.9f, 0.999f, 1e-8f, 0.5f};
    lqa_optim o;
    lqa_optim_init(&o, &cfg);
    lqa_optim_add(&o, "linear", a, zero, N, 1);
    lqa_optim_add(&o, "norm", b, zero, N, 0);
    float lr = 0.1f;
    for (int t = 0; t < 3; t++) lqa_optim_step(&o, lr, 1.0f);
    for (int i = 0; i < N; i++) {
        float want = a0[i] * (1 - lr * cfg.weight_decay) * (1 - lr * cfg.weight_decay) * (1 - lr * cfg.weight_decay);
        assert_true(fabsf(a[i] - want) <= 1e-6f * (1 + fabsf(want)));
        assert_memory_equal(&b[i], &b0[i], 4);
    }
    lqa_optim_free(&o);
}

static void test_converges_on_quadratic(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    enum { N = 50 };
    float x[N], g[N], c[N], a[N];
    fill_normal(&r, x, N, 3);
    fill_normal(&r, c, N, 1);
    for (int i = 0; i < N; i++) a[i] = 0.5f + (float)lqa_rng_uniform(&r) * 4;
    lqa_adamw_cfg cfg = {0.9f, 0.999f, 1e-8f, 0};
    lqa_optim o;
    lqa_optim_init(&o, &cfg);
    lqa_optim_add(&o, "x", x, g, N, 1);
    double start = 0, end = 0;
    for (int i = 0; i < N; i++) start += a[i] * (x[i] - c[i]) * (x[i] - c[i]);
    for (int t = 0; t < 2000; t++) {
        for (int i = 0; i < N; i++) g[i] = 2 * a[i] * (x[i] - c[i]);
        lqa_optim_step(&o, lqa_lr_at(t, 2000, 0.05f, 20, LQA_SCHED_COSINE), 1.0f);
    }
    for (int i = 0; i < N; i++) end += a[i] * (x[i] - c[i]) * (x[i] - c[i]);
    assert_true(end < 1e-4 * start);
    lqa_optim_free(&o);
}

static void test_grad_norm_and_clip(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    enum { N1 = 100, N2 = 37 };
    float p1[N1], g1[N1], p2[N2], g2[N2];
    fill_normal(&r, g1, N1, 2);
    fill_normal(&r, g2, N2, 3);
    lqa_adamw_cfg cfg = {0.9f, 0.999f, 1e-8f, 0};
    lqa_optim o;
    lqa_optim_init(&o, &cfg);
    lqa_optim_add(&o, "a", p1, g1, N1, 1);
    lqa_optim_add(&o, "b", p2, g2, N2, 1);
    double sq = 0;
    for (int i = 0; i < N1; i++) sq += (double)g1[i] * g1[i];
    for (int i = 0; i < N2; i++) sq += (double)g2[i] * g2[i];
    double norm = lqa_optim_grad_norm(&o);
    assert_true(fabs(norm - sqrt(sq)) < 1e-9 * sqrt(sq));
    float max_norm = (float)(norm * (0.1 + 0.5 * lqa_rng_uniform(&r)));
    float s = lqa_clip_scale(norm, max_norm);
    assert_true(fabs(norm * s - max_norm) < 1e-4 * max_norm);
    assert_true(lqa_clip_scale(norm, (float)norm * 2) == 1.0f);
    assert_true(lqa_clip_scale(norm, 0) == 1.0f);
    assert_int_equal(lqa_optim_numel(&o), N1 + N2);
    lqa_optim_free(&o);
}

static void test_schedule(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    long warmup = 1 + (long)lqa_rng_below(&r, 30), total = warmup + 10 + (long)lqa_rng_below(&r, 200);
    float lr = (float)(1e-5 + lqa_rng_uniform(&r) * 1e-3);
    for (long t = 0; t < warmup; t++) {
        assert_true(fabsf(lqa_lr_at(t, total, lr, warmup, LQA_SCHED_CONSTANT) - lr * (t + 1) / warmup) < 1e-6f * lr);
        assert_true(lqa_lr_at(t, total, lr, warmup, LQA_SCHED_COSINE) == lqa_lr_at(t, total, lr, warmup, LQA_SCHED_CONSTANT));
    }
    float prev = lr;
    for (long t = warmup; t <= total; t++) {
        assert_true(lqa_lr_at(t, total, lr, warmup, LQA_SCHED_CONSTANT) == lr);
        float c = lqa_lr_at(t, total, lr, warmup, LQA_SCHED_COSINE);
        assert_true(c <= prev + 1e-9f);
        prev = c;
    }
    assert_true(fabsf(lqa_lr_at(warmup, total, lr, warmup, LQA_SCHED_COSINE) - lr) < 1e-6f * lr);
    assert_true(lqa_lr_at(total, total, lr, warmup, LQA_SCHED_COSINE) < 1e-6f * lr);
    long mid = warmup + (total - warmup) / 2;
    if ((total - warmup) % 2 == 0) assert_true(fabsf(lqa_lr_at(mid, total, lr, warmup, LQA_SCHED_COSINE) - lr / 2) < 1e-5f * lr);
}

static void run_steps(float *p, size_t n, uint64_t seed, int threads) {
    omp_set_num_threads(threads);
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    float *g = lqa_malloc(n * sizeof(float));
    lqa_adamw_cfg cfg = {0.9f, 0.999f, 1e-8f, 0.01f};
    lqa_optim o;
    lqa_optim_init(&o, &cfg);
    lqa_optim_add(&o, "big", p, g, n, 1);
    for (int t = 0; t < 4; t++) {
        fill_normal(&r, g, n, 1);
        lqa_optim_step(&o, 1e-3f, 0.7f);
    }
    lqa_optim_free(&o);
    free(g);
}

static void test_thread_count_independent(void **state) {
    uint64_t seed = lqa_test_seed() + 5;
    size_t n = 200000;
    float *a = lqa_malloc(n * sizeof(float)), *b = lqa_malloc(n * sizeof(float));
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    fill_normal(&r, a, n, 1);
    memcpy(b, a, n * sizeof(float));
    run_steps(a, n, seed, 1);
    run_steps(b, n, seed, 2);
    assert_memory_equal(a, b, n * sizeof(float));
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_reference),
        cmocka_unit_test(test_decay_only_on_decay_groups),
        cmocka_unit_test(test_converges_on_quadratic),
        cmocka_unit_test(test_grad_norm_and_clip),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_thread_count_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
