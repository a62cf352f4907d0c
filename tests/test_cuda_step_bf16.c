/* test_cuda_step_bf16.c: a whole --dtype bf16 training step on the CUDA backend (model/step.c with
 * the per-layer checkpoints in bf16, docs/CUDA.md "Memory plan") on random tiny models with LoRA on
 * every target, lora+ gradients, S2 or full attention, packed or not, the MLP in one pass or in
 * row chunks: the checkpointed step's loss and gradients are bitwise the non-checkpointed step's
 * (the recompute reads the same bf16 layer inputs and reruns the same deterministic kernels), and
 * both follow the fp32 CPU step (unchunked) within a bound derived from bf16's precision; the
 * backend's from_bf16 widens exactly as the CPU reference (lqa_bf16_to_floats). */
#include "tests/test_cuda_bf16_util.h"

#include "model/adapter.h"
#include "model/model.h"
#include "model/step_mem.h"


/* from_bf16 against lqa_bf16_to_floats on random bit patterns (every exponent, NaN and inf
 * included): bitwise equal, since widening is exact. */
static void test_from_bf16(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    const lqa_backend *be = cuda_test_backend();
    size_t n = (size_t)rand_between(1, 5000);
    lqa_bf16 *h = lqa_malloc(sizeof(lqa_bf16) * n);
    for (size_t i = 0; i < n; i++) h[i] = (lqa_bf16)lqa_rng_below(&cuda_rng, 1 << 16);
    float *want = lqa_malloc(sizeof(float) * n), *got;
    lqa_bf16_to_floats(want, h, n);
    lqa_bf16 *d16 = dev_upload_bf16(h, n);
    float *d32 = lqa_cuda_alloc(sizeof(float) * n);
    be->from_bf16(d32, d16, n);
    got = dev_download(d32, n);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)))
            fail_msg("from_bf16(0x%04x) = %.9g (0x%08x bits), CPU reference %.9g", h[i], got[i], *(uint32_t *)&got[i],
                     want[i]);
    lqa_cuda_free(d16), lqa_cuda_free(d32);
    free(h), free(want), free(got);
#endif
}

#ifdef LQA_CUDA
/* A random tiny model: head dim 16 or 32 (the bf16 attention's multiples of 16), GQA or not,
 * hidden and vocab sizes no multiple of a tile. */
static lqa_config random_config(void) {
    int kv = rand_between(1, 2), heads = kv * rand_between(1, 2), hd = 16 * rand_between(1, 2);
    lqa_config c = {.vocab_size = rand_between(60, 200), .dim = heads * hd, .n_layers = rand_between(2, 3),
                    .n_heads = heads, .n_kv_heads = kv, .hidden_dim = rand_between(20, 90), .max_pos = 256,
                    .rope_theta = 10000.0f, .rope_scale = 1.0f, .rms_eps = 1e-5f,
                    .tie_embeddings = rand_between(0, 1)};
    return c;
}

/* One step's loss and gradients (params layout, then LoRA), downloaded. */
typedef struct step_out {
    float loss;
    float *d_params, *d_lora;
} step_out;

static step_out run_step(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o) {
    const lqa_backend *be = lqa_model_backend(m);
    lqa_grads g = {be->alloc(sizeof(float) * m->n_params), be->alloc(sizeof(float) * m->n_lora), 0};
    be->zero(g.d_params, sizeof(float) * m->n_params);
    be->zero(g.d_lora, sizeof(float) * m->n_lora);
    step_out r = {lqa_model_step(m, b, o, &g), lqa_malloc(sizeof(float) * m->n_params),
                  lqa_malloc(sizeof(float) * m->n_lora)};
    be->to_host(r.d_params, g.d_params, sizeof(float) * m->n_params);
    be->to_host(r.d_lora, g.d_lora, sizeof(float) * m->n_lora);
    be->free(g.d_params);
    be->free(g.d_lora);
    return r;
}

static void step_out_free(step_out *r) {
    free(r->d_params);
    free(r->d_lora);
}

/* ||got - want|| / ||want|| over n values (0 when want is all zeros and got equals it). */
static double rel_l2(const float *got, const float *want, size_t n) {
    double d = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        w += (double)want[i] * want[i];
    }
    return w > 0 ? sqrt(d / w) : sqrt(d);
}

/* The bound of the bf16 step's gradients against the fp32 CPU step's, relative in the 2-norm per
 * tensor. bf16 rounds to nearest with unit roundoff u = 2^-8 (kernels/bf16.h); every rounding
 * perturbs a value by at most u relative, independently in sign, so k roundings along a path
 * move a result by about sqrt(k) u (rms) and at most k u. A layer's forward rounds its input
 * (the checkpoint), the GEMM inputs xn1, att, xn2, h, attention's q, k, v and its output: 8; its
 * backward rounds the GEMMs' dy (dh, dg, du, d(x2), dq, dk, dv) and attention's dout and out: 9;
 * so k = 17 per layer, and the gradients of the first layer's tensors see every layer's: k = 17 L.
 * Gradients are sums over N rows of products of such values, which keep the relative error of
 * their terms (no cancellation bound is claimed: this random model keeps gradients away from
 * cancelling sums). Bound: k u, the worst case with no averaging; measured 0.009 to 0.022 for
 * L 2 and 3 (bounds 0.133, 0.199), near the rms estimate sqrt(k) u. It catches a step that is
 * not bf16-faithful (a dropped term, a wrong scale); a wrong checkpoint is caught by the bitwise
 * comparison above (a layer's input read off by one layer in the recompute, or the forward
 * reading its unrounded fp32 output: checked by hand) and by
 * test_checkpoints_round_to_nearest (a truncated checkpoint, checked by hand: the other
 * roundings hide it here). */
static double grad_bound(const lqa_config *c) {
    return 17.0 * c->n_layers * LQA_BF16_U;
}

static void one_case(int k) {
    const lqa_backend *be = cuda_test_backend();
    lqa_config cfg = random_config();
    int B = rand_between(1, 2), T = 8 * rand_between(3, 6), N = B * T;
    uint64_t seed = lqa_rng_u64(&cuda_rng);
    lqa_model cpu, dev;
    lqa_model_alloc(&cpu, &cfg);
    lqa_model_init_random(&cpu, seed);
    lqa_model_add_lora(&cpu, 127, rand_between(2, 6), 16.0f, seed + 1);
    for (size_t i = 0; i < cpu.n_lora; i++) cpu.lora[i] = 0.05f * (float)lqa_rng_normal(&cuda_rng); /* B != 0 */
    lqa_model_alloc(&dev, &cfg);
    memcpy(dev.params, cpu.params, sizeof(float) * cpu.n_params);
    lqa_model_add_lora(&dev, 127, cpu.lora_rank, 16.0f, seed + 1);
    memcpy(dev.lora, cpu.lora, sizeof(float) * cpu.n_lora);
    lqa_model_to_backend(&dev, be);
    lqa_err err;
    if (lqa_model_use_bf16(&dev, LQA_TRAIN_LORA_PLUS, &err)) fail_msg("%s", err.msg);

    int32_t *tokens = lqa_malloc(sizeof(int32_t) * N), *seg = lqa_malloc(sizeof(int32_t) * N);
    uint8_t *mask = lqa_malloc((size_t)N);
    int packed = k % 2, cut = rand_between(4, T - 4);
    for (int i = 0; i < N; i++) {
        tokens[i] = rand_between(0, cfg.vocab_size - 1);
        mask[i] = i % T != 0 && lqa_rng_uniform(&cuda_rng) < 0.9;
        seg[i] = i % T < cut ? 0 : 1;
    }
    lqa_batch b = {B, T, tokens, mask, packed ? seg : NULL};
    /* cases 2 and up: the MLP in row chunks of a size that divides nothing in particular */
    int mlp_rows = k >= 2 ? rand_between(3, N - 1) : 0;
    lqa_step_opts o = {k % 4 < 2 ? LQA_ATTN_S2 : LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA_PLUS, 1, 1, mlp_rows};

    step_out want = run_step(&cpu, &b, &o);
    step_out ck = run_step(&dev, &b, &o);
    o.checkpointing = 0;
    step_out all = run_step(&dev, &b, &o);

    /* same rounding points: bitwise equal (deterministic kernels on the same bf16 values) */
    if (memcmp(&ck.loss, &all.loss, sizeof(float)))
        fail_msg("case %d: checkpointed loss %.9g, without checkpointing %.9g", k, ck.loss, all.loss);
    expect_equal_bits("d_params (checkpointed vs not)", ck.d_params, all.d_params, cpu.n_params);
    expect_equal_bits("d_lora (checkpointed vs not)", ck.d_lora, all.d_lora, cpu.n_lora);

    double bound = grad_bound(&cfg), worst = 0, loss_rel = fabs(ck.loss - want.loss) / fabs(want.loss);
    const char *worst_name = "";
    /* the loss: a mean of log-softmaxes, each a few roundings of its row (k = 17 L as above) */
    if (loss_rel > bound) fail_msg("case %d: bf16 loss %.9g, fp32 CPU %.9g", k, ck.loss, want.loss);
    for (int t = 0; t < cpu.n_tensors + cpu.n_lora_tensors; t++) {
        int lora = t >= cpu.n_tensors;
        const lqa_tensor_info *ti = lora ? &cpu.lora_tensors[t - cpu.n_tensors] : &cpu.tensors[t];
        if (!lora && !lqa_is_lora_plus_tensor(ti->name)) continue; /* frozen: no gradient */
        const float *g = (lora ? ck.d_lora : ck.d_params) + ti->offset, *w = (lora ? want.d_lora : want.d_params) + ti->offset;
        double e = rel_l2(g, w, ti->numel);
        if (max_abs(w, ti->numel) == 0) fail_msg("case %d: %s has no gradient", k, ti->name);
        if (e > worst) worst = e, worst_name = ti->name;
        if (e > bound) fail_msg("case %d: %s: bf16 gradient off the fp32 CPU one by %.3g relative (bound %.3g)", k,
                                ti->name, e, bound);
    }
    printf("# case %d (L %d, D %d, H %d/%d, F %d, V %d, %d x %d, %s%s, MLP rows %d): loss %.3g rel, worst gradient "
           "%s %.3g rel (bound %.3g)\n",
           k, cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.hidden_dim, cfg.vocab_size, B, T,
           o.attn == LQA_ATTN_S2 ? "s2" : "full", packed ? ", packed" : "", mlp_rows ? mlp_rows : N, loss_rel,
           worst_name, worst, bound);
    step_out_free(&want), step_out_free(&ck), step_out_free(&all);
    free(tokens), free(seg), free(mask);
    lqa_model_free(&cpu);
    lqa_model_free(&dev);
}
#endif

/* The checkpoints round to nearest even: with the attention's and the MLP's output projections
 * zero (no LoRA), a layer passes its input through unchanged, so after the device's bf16 forward
 * every one of the L + 1 checkpoints in the workspace (xs16) is bitwise the embedding rows of the
 * batch rounded to nearest even on the host (lqa_bf16_from_floats). Exact, so no tolerance: a
 * truncating to_bf16 differs wherever the dropped half-word is above 0x8000 (checked by hand), and a checkpoint
 * written from anything but the layer's output differs from the embedding. */
static void test_checkpoints_round_to_nearest(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    for (int k = 0; k < 3; k++) {
        lqa_config cfg = random_config();
        int B = rand_between(1, 2), T = 8 * rand_between(3, 6), N = B * T, D = cfg.dim;
        lqa_model dev;
        lqa_model_alloc(&dev, &cfg);
        lqa_model_init_random(&dev, lqa_rng_u64(&cuda_rng));
        for (int t = 0; t < dev.n_tensors; t++)
            if (strstr(dev.tensors[t].name, "o_proj") || strstr(dev.tensors[t].name, "down_proj"))
                memset(dev.params + dev.tensors[t].offset, 0, sizeof(float) * dev.tensors[t].numel);
        float *emb = lqa_malloc(sizeof(float) * cfg.vocab_size * D);
        memcpy(emb, dev.params, sizeof(float) * cfg.vocab_size * D); /* the embedding, tensor 0 */
        lqa_model_to_backend(&dev, cuda_test_backend());
        lqa_err err;
        if (lqa_model_use_bf16(&dev, LQA_TRAIN_LORA, &err)) fail_msg("%s", err.msg);
        int32_t *tokens = lqa_malloc(sizeof(int32_t) * N);
        for (int i = 0; i < N; i++) tokens[i] = rand_between(0, cfg.vocab_size - 1);
        lqa_batch b = {B, T, tokens, NULL, NULL};
        lqa_step_opts o = {LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA, 1, 1, 0};
        lqa_workspace *ws = lqa_workspace_new(&dev, B, T, &o, 0);
        lqa_model_step_ws(&dev, ws, &b, &o, NULL, NULL);
        lqa_bf16 *want = lqa_malloc(sizeof(lqa_bf16) * N * D), *got = lqa_malloc(sizeof(lqa_bf16) * N * D);
        for (int i = 0; i < N; i++) lqa_bf16_from_floats(want + (size_t)i * D, emb + (size_t)tokens[i] * D, D);
        assert_non_null(ws->s.xs16);
        for (int l = 0; l <= cfg.n_layers; l++) {
            lqa_cuda_to_host(got, (const lqa_bf16 *)ws->s.xs16 + (size_t)l * N * D, sizeof(lqa_bf16) * N * D);
            for (size_t i = 0; i < (size_t)N * D; i++)
                if (got[i] != want[i])
                    fail_msg("case %d: checkpoint %d element %zu: 0x%04x, the embedding rounded to nearest is 0x%04x",
                             k, l, i, got[i], want[i]);
        }
        lqa_workspace_free(ws);
        free(want), free(got), free(tokens), free(emb);
        lqa_model_free(&dev);
    }
#endif
}

static void test_checkpointed_step(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    for (int k = 0; k < 6; k++) one_case(k);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_from_bf16, cuda_test_setup),
        cmocka_unit_test_setup(test_checkpoints_round_to_nearest, cuda_test_setup),
        cmocka_unit_test_setup(test_checkpointed_step, cuda_test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
