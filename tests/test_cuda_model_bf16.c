/* test_cuda_model_bf16.c: the model's bf16 layout on the CUDA backend (model.h, --dtype bf16):
 * lqa_hf_load_bf16 from F32, F16 and BF16 safetensors gives bitwise the bf16 rounding of the
 * fp32 loader's tensors (and of the saved model's for F32 and BF16), the fp32 embedding and norms
 * exactly, and puts nothing else on the device (the backend's allocated bytes are the bf16
 * weights, then with LoRA on the device what `plan` counts for the run's weights and
 * trainables); the step's bf16 head (chunked cross-entropy on the bf16 lm_head) stays within a
 * bound derived from bf16's rounding of the fp32 head's loss; the logits and the KV forward's
 * NLL of a bf16 model agree. */
#include "tests/test_cuda_util.h"

#include "common/fileio.h"
#include "kernels/backend.h"
#include "kernels/bf16.h"
#include "model/hfdir.h"
#include "trainer/plan.h"

#ifdef LQA_CUDA
/* A random small config the bf16 attention takes (head dim 16 or 32), untied unless tied. */
static lqa_config small_config(int layers, int tied) {
    lqa_config c = {0};
    c.vocab_size = rand_between(40, 160);
    c.n_heads = 2;
    c.n_kv_heads = rand_between(1, 2);
    c.dim = c.n_heads * 16 * rand_between(1, 2);
    c.n_layers = layers;
    c.hidden_dim = rand_between(20, 90);
    c.max_pos = 256;
    c.rope_theta = 10000.0f;
    c.rope_scale = 1.0f;
    c.rms_eps = 1e-5f;
    c.tie_embeddings = tied;
    c.bos_id = 1;
    c.eos_id = 2;
    return c;
}

static void random_model(lqa_model *m, const lqa_config *c) {
    lqa_model_alloc(m, c);
    lqa_model_init_random(m, lqa_rng_u64(&cuda_rng));
    for (int t = 0; t < m->n_tensors; t++) /* norms not all 1: their copy is checked too */
        if (m->tensors[t].ndim == 1)
            for (size_t i = 0; i < m->tensors[t].numel; i++)
                m->params[m->tensors[t].offset + i] = 0.5f + (float)lqa_rng_uniform(&cuda_rng);
}

static size_t device_used(const lqa_backend *be) {
    size_t free_b, total_b;
    be->mem_info(&free_b, &total_b);
    return total_b - free_b;
}

/* mb (bf16 layout, params_lp on the host) against want (fp32, host): params16 bitwise the
 * rounding of want's tensors, params_lp equal (lp_rounded: equal to their rounding, for a model
 * saved in BF16 compared with the fp32 one it was saved from). */
static void expect_layout_of(const lqa_model *mb, const lqa_model *want, int lp_rounded, const char *what) {
    lqa_bf16 *w16 = lqa_malloc(2 * mb->n_params16 + 2);
    mb->be16->to_host(w16, mb->params16, 2 * mb->n_params16);
    size_t bad = 0;
    for (int t = 0; t < want->n_tensors; t++) {
        const lqa_tensor_info *ti = &want->tensors[t];
        const float *src = want->params + ti->offset;
        for (size_t i = 0; i < ti->numel; i++) {
            if (ti->b16_offset == LQA_NOT_BF16) {
                float v = lp_rounded ? lqa_bf16_round(src[i]) : src[i];
                if (memcmp(&mb->params_lp[ti->lp_offset + i], &v, 4)) bad++;
            } else if (w16[ti->b16_offset + i] != lqa_bf16_from_float(src[i])) {
                if (bad++ < 3)
                    print_message("# %s: %s[%zu] holds bf16 0x%04x, the rounding of %.9g is 0x%04x\n", what, ti->name,
                                  i, w16[ti->b16_offset + i], (double)src[i], lqa_bf16_from_float(src[i]));
            }
        }
    }
    free(w16);
    if (bad) fail_msg("%s: %zu values differ from the rounded fp32 tensors", what, bad);
}
#endif

static void test_loader(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    lqa_err err;
    const lqa_backend *be = cuda_test_backend();
    lqa_config c = small_config(2, (int)lqa_rng_below(&cuda_rng, 2));
    lqa_model orig;
    random_model(&orig, &c);
    const lqa_st_dtype dtypes[] = {LQA_ST_F32, LQA_ST_F16, LQA_ST_BF16};
    for (int k = 0; k < 3; k++) {
        char *dir = lqa_path_join(lqa_test_tmpdir(), lqa_st_dtype_name(dtypes[k]));
        lqa_hf_save_opts so = {dtypes[k], 0, NULL};
        assert_int_equal(lqa_hf_save(dir, &orig, &so, &err), 0);
        lqa_model mf, mb;
        assert_int_equal(lqa_hf_load(dir, &mf, &err), 0); /* the fp32 loader: the file's values */
        size_t before = device_used(be);
        if (lqa_hf_load_bf16(dir, &mb, be, LQA_TRAIN_LORA_PLUS, &err)) fail_msg("%s", err.msg);
        /* on the device: the bf16 weights and nothing else (no fp32 copy of a frozen tensor) */
        assert_int_equal(device_used(be) - before, 2 * mb.n_params16);
        assert_null(mb.params);
        assert_true(mb.n_params16 + mb.n_lora_plus == mb.n_params);
        expect_layout_of(&mb, &mf, 0, dir);
        /* and of the model saved (F16's own rounding comes first, so not for F16) */
        if (dtypes[k] != LQA_ST_F16) expect_layout_of(&mb, &orig, dtypes[k] == LQA_ST_BF16, dir);
        /* with LoRA, moved to the device: what plan counts as the lora+ run's weights + trainables */
        int targets = LQA_LORA_Q | LQA_LORA_V | LQA_LORA_DOWN;
        lqa_model_add_lora(&mb, targets, 4, 8.0f, 7);
        lqa_model_to_backend(&mb, be);
        lqa_plan_opts po = {LQA_PLAN_BF16_RUN, LQA_TRAIN_LORA_PLUS, targets, 4, 8.0f, 1, 32,
                            {LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA_PLUS, 1, 1, 0}, 1};
        lqa_plan p;
        assert_int_equal(lqa_plan_training(&c, &po, lqa_plan_backend("cuda"), &p, &err), 0);
        print_message("# %s: device holds %zu bytes of weights and trainables, plan %zu (fp32 would be %zu)\n",
                      lqa_st_dtype_name(dtypes[k]), device_used(be) - before, p.weights + p.trainables,
                      4 * (mb.n_params + mb.n_lora));
        assert_int_equal(device_used(be) - before, p.weights + p.trainables);
        assert_int_equal(lqa_model_use_bf16(&mb, LQA_TRAIN_LORA_PLUS, &err), 0); /* already bf16: a check */
        assert_int_equal(device_used(be) - before, p.weights + p.trainables);
        lqa_model_free(&mb);
        assert_int_equal(device_used(be), before);
        lqa_model_free(&mf);
        free(dir);
    }
    /* full training is refused, the fp32 tensors of an unknown name are not found */
    assert_int_equal(lqa_model_bf16_check(be, &c, LQA_TRAIN_FULL, &err), -1);
    assert_non_null(strstr(err.msg, "not yet"));
    assert_int_equal(lqa_model_bf16_check(lqa_backend_cpu(), &c, LQA_TRAIN_LORA, &err), -1);
    lqa_model_free(&orig);
#endif
}

#ifdef LQA_CUDA
/* A batch of B x T random tokens, every position after the first a target. */
typedef struct batch {
    lqa_batch b;
    int32_t *tok;
    uint8_t *mask;
} batch;

static batch random_batch(int B, int T, int V) {
    batch x;
    size_t n = (size_t)B * T;
    x.tok = lqa_malloc(sizeof(int32_t) * n);
    x.mask = lqa_malloc(n);
    for (size_t i = 0; i < n; i++) x.tok[i] = rand_between(0, V - 1), x.mask[i] = i % T != 0;
    x.b = (lqa_batch){B, T, x.tok, x.mask, NULL};
    return x;
}

/* The bound on |mean loss(bf16 head) - mean loss(fp32 head)| for a model with no layers, where
 * the head's input is xf = rmsnorm(embedding[token]) (fp32 on both sides, computed here in
 * double). A logit z_j = sum_i x_i w_ji: rounding x and w to bf16 moves each product by at most
 * (2u + u^2)|x_i w_ji| (u = 2^-8), and the two fp32 sums differ by at most 2 D 2^-24 sum|x w|,
 * so |dz_j| <= e_n = (2u + u^2 + 2 D 2^-24) max_j sum_i |x_i w_ji|; the loss lse(z) - z_t is
 * 1-Lipschitz in max-norm for each term, so a row's loss moves by at most 2 e_n; the mean by
 * the mean of 2 e_n (plus fp32 rounding of the loss itself, 1e-6 relative). */
static double head_bound(const lqa_model *m, const batch *x) {
    const lqa_config *c = &m->cfg;
    int D = c->dim, V = c->vocab_size, T = x->b.T;
    const float *emb = m->params, *g = m->params + m->tensors[1].offset, *W = m->params + m->tensors[2].offset;
    double u = LQA_BF16_U, rel = 2 * u + u * u + 2.0 * D * ldexp(1.0, -24), sum = 0;
    long count = 0;
    double *xf = lqa_malloc(sizeof(double) * (size_t)D);
    for (int n = 0; n < x->b.B * T; n++) {
        if (n % T == T - 1) continue; /* the last position predicts nothing */
        const float *e = emb + (size_t)x->tok[n] * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)e[i] * e[i];
        double r = 1.0 / sqrt(ss / D + c->rms_eps);
        for (int i = 0; i < D; i++) xf[i] = e[i] * r * g[i];
        double worst = 0;
        for (int j = 0; j < V; j++) {
            double a = 0;
            for (int i = 0; i < D; i++) a += fabs(xf[i] * W[(size_t)j * D + i]);
            worst = fmax(worst, a);
        }
        sum += 2 * rel * worst * 1.001; /* 1.001: the device's xf differs from this one in fp32 rounding */
        count++;
    }
    free(xf);
    return sum / count;
}
#endif

static void test_step_head(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    lqa_err err;
    const lqa_backend *be = cuda_test_backend();
    for (int rep = 0; rep < 2; rep++) {
        /* no layers: the step is the embedding, the final norm and the head, so the bf16 head is
         * the only difference between the two runs */
        lqa_config c = small_config(0, 0);
        lqa_model m32, m16;
        random_model(&m32, &c);
        lqa_model_alloc(&m16, &c);
        memcpy(m16.params, m32.params, sizeof(float) * m32.n_params);
        batch x = random_batch(rand_between(1, 2), rand_between(3, 40), c.vocab_size);
        double bound = head_bound(&m32, &x) + 1e-6 * log(c.vocab_size);
        lqa_model_to_backend(&m32, be);
        lqa_model_to_backend(&m16, be);
        assert_int_equal(lqa_model_use_bf16(&m16, LQA_TRAIN_LORA_PLUS, &err), 0);
        assert_null(m16.params);
        lqa_step_opts o = {LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA_PLUS, 1, 1, 0};
        float l32 = lqa_model_step(&m32, &x.b, &o, NULL), l16 = lqa_model_step(&m16, &x.b, &o, NULL);
        print_message("# V=%d D=%d %dx%d: loss fp32 head %.7f, bf16 head %.7f, |diff| %.2e, bound %.2e\n",
                      c.vocab_size, c.dim, x.b.B, x.b.T, l32, l16, fabs(l32 - l16), bound);
        assert_true(fabs((double)l32 - l16) <= bound);
        /* the bf16 head did run: its logits differ (the two losses can agree to the last bit by
         * chance: seed 18773831189 gave |diff| 0 where 1e-5..1e-4 is usual) */
        float *g32 = lqa_model_logits(&m32, &x.b, &o), *g16 = lqa_model_logits(&m16, &x.b, &o);
        assert_true(memcmp(g32, g16, sizeof(float) * (size_t)x.b.B * x.b.T * c.vocab_size) != 0);
        free(g32), free(g16);
        lqa_model_free(&m32);
        lqa_model_free(&m16);
        free(x.tok), free(x.mask);
    }
#endif
}

/* The KV forward of a bf16 model against the whole-sequence logits: prefill in chunks of a random
 * size, then one token at a time, so later chunks read keys and values earlier ones rounded into
 * the bf16 cache (the rounding the whole sequence's bf16 attention applies to the same values).
 * Its NLL is the bf16 head's loss. The cache itself holds 2 B per key and value: the device
 * memory lqa_kv_new takes is the two caches at 2 B, the logits and the chunk's workspace. */
static void test_logits_and_kv(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    lqa_err err;
    const lqa_backend *be = cuda_test_backend();
    lqa_config c = small_config(1, 0);
    lqa_model m;
    random_model(&m, &c);
    lqa_model_to_backend(&m, be);
    assert_int_equal(lqa_model_use_bf16(&m, LQA_TRAIN_LORA, &err), 0);
    int T = rand_between(8, 24), V = c.vocab_size, chunk = rand_between(2, T / 2), prefill = T - 3;
    batch x = random_batch(1, T, V);
    float *logits = lqa_model_logits(&m, &x.b, NULL);
    size_t before = device_used(be);
    lqa_kv *kv = lqa_kv_new(&m, T, chunk, 1);
    lqa_step_opts o = {.attn = LQA_ATTN_FULL};
    size_t kvd = (size_t)c.n_kv_heads * (c.dim / c.n_heads), cache = 2 * 2 * (size_t)c.n_layers * T * kvd;
    size_t rest = sizeof(float) * (size_t)chunk * V + lqa_workspace_bytes(&m, be, 1, chunk, &o, 0);
    size_t took = device_used(be) - before;
    print_message("# KV cache of %d positions: %zu bytes (2 B per value), logits and workspace %zu; took %zu\n", T,
                  cache, rest, took);
    assert_true(took >= cache + rest && took <= cache + rest + 4 * 256); /* 256-byte allocation granules */
    float *kv_logits = lqa_malloc(sizeof(float) * (size_t)T * V);
    int32_t *targets = lqa_malloc(sizeof(int32_t) * (size_t)T);
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? x.tok[t + 1] : -1;
    double nll = 0, want = 0;
    for (int pos = 0; pos < T;) {
        int n = pos < prefill ? (prefill - pos < chunk ? prefill - pos : chunk) : 1;
        lqa_model_forward_kv(&m, kv, x.tok + pos, n, pos, 1, kv_logits + (size_t)pos * V, 0, targets + pos, &nll);
        pos += n;
    }
    for (int t = 0; t + 1 < T; t++) {
        const float *z = logits + (size_t)t * V;
        double mx = z[0], s = 0;
        for (int j = 1; j < V; j++) mx = fmax(mx, z[j]);
        for (int j = 0; j < V; j++) s += exp(z[j] - mx);
        want += mx + log(s) - z[targets[t]];
    }
    print_message("# T=%d V=%d chunks of %d: KV NLL %.7f, from the logits %.7f\n", T, V, chunk, nll, want);
    expect_close("KV logits", kv_logits, logits, (size_t)T * V, 1e-5 * max_abs(logits, (size_t)T * V), 1e-4);
    assert_true(fabs(nll - want) <= 1e-4 * fabs(want) + 1e-5);
    lqa_kv_free(kv);
    free(kv_logits), free(targets), free(logits), free(x.tok), free(x.mask);
    lqa_model_free(&m);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader),
        cmocka_unit_test(test_step_head),
        cmocka_unit_test(test_logits_and_kv),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
