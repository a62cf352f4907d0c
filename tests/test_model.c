/* test_model.c: the whole tiny LLaMA of model/model.c: finite-difference gradients for each
 * trainable set (lora+, lora, full) and attention mode (full, S2, with packed segments), frozen
 * tensors untouched, LoRA with B = 0 equal to the base model, merge equal to base + adapter,
 * checkpointing on = off bitwise, determinism, no dependence on later tokens, packed records
 * independent, and the step's memory growing linearly with T. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/model.h"
#include "trainer/train.h"
#include "tests/test_fd_util.h"

static lqa_rng rng;
static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

static lqa_config tiny_config(int tie) {
    lqa_config c = {.vocab_size = 23 + (int)lqa_rng_below(&rng, 10), .dim = 16, .n_layers = 2, .n_heads = 4,
                    .n_kv_heads = 2, .hidden_dim = 24, .max_pos = 64, .rope_theta = 10000.0f,
                    .rope_scale = 1.0f + (float)lqa_rng_below(&rng, 3), .rms_eps = 1e-5f, .tie_embeddings = tie};
    return c;
}

/* A model with O(1) signal everywhere: weights std 0.3 (the HF init's 0.02 makes every gradient
 * tiny), norms around 1, LoRA B random so that A gets gradient. */
static void make_model(lqa_model *m, int tie, int lora_targets) {
    lqa_config c = tiny_config(tie);
    lqa_model_alloc(m, &c);
    lqa_model_init_random(m, lqa_rng_u64(&rng));
    for (int t = 0; t < m->n_tensors; t++) {
        lqa_tensor_info *ti = &m->tensors[t];
        float *x = m->params + ti->offset;
        for (size_t i = 0; i < ti->numel; i++) x[i] = ti->ndim == 1 ? 1.0f + 0.2f * lqa_rng_normal(&rng) : 15.0f * x[i];
    }
    if (lora_targets) {
        lqa_model_add_lora(m, lora_targets, 2 + (int)lqa_rng_below(&rng, 3), 8.0f, lqa_rng_u64(&rng));
        for (size_t i = 0; i < m->n_lora; i++)
            if (m->lora[i] == 0.0f) m->lora[i] = 0.1f * lqa_rng_normal(&rng);
    }
}

typedef struct {
    int B, T;
    int32_t *tokens, *seg;
    uint8_t *mask;
    lqa_batch batch;
} test_batch;

static void make_batch(test_batch *tb, int B, int T, int V, int packed) {
    tb->B = B, tb->T = T;
    tb->tokens = malloc(sizeof(int32_t) * B * T);
    tb->mask = malloc((size_t)B * T);
    tb->seg = NULL;
    for (int i = 0; i < B * T; i++) {
        tb->tokens[i] = (int32_t)lqa_rng_below(&rng, V);
        tb->mask[i] = (i % T) > 0 && lqa_rng_below(&rng, 4) != 0;
    }
    if (packed) {
        tb->seg = malloc(sizeof(int32_t) * B * T);
        for (int b = 0; b < B; b++) {
            int cut = 2 + (int)lqa_rng_below(&rng, T / 2), pad = (int)lqa_rng_below(&rng, 4);
            for (int t = 0; t < T; t++) tb->seg[b * T + t] = t >= T - pad ? -1 : t < cut ? 0 : 1;
        }
    }
    tb->batch = (lqa_batch){.B = B, .T = T, .tokens = tb->tokens, .loss_mask = tb->mask, .segment_ids = tb->seg};
}
static void free_batch(test_batch *tb) { fd_free_all(tb->tokens, tb->mask, tb->seg, NULL); }

static lqa_step_opts opts(lqa_attn_mode attn, lqa_train_set train, int ckpt) {
    return (lqa_step_opts){.attn = attn, .group_ratio = 0.25f, .train = train, .checkpointing = ckpt, .threads = 0};
}

typedef struct {
    lqa_model *m;
    const lqa_batch *b;
    lqa_step_opts o;
} model_fd;
static double model_loss(void *ctx) {
    model_fd *f = ctx;
    return lqa_model_step(f->m, f->b, &f->o, NULL);
}

static int is_norm_or_embed(const lqa_tensor_info *ti) {
    return ti->ndim == 1 || strcmp(ti->name, "model.embed_tokens.weight") == 0;
}

static void fd_whole_model(lqa_train_set train, lqa_attn_mode attn, int packed) {
    int tie = (int)lqa_rng_below(&rng, 2);
    lqa_model m;
    make_model(&m, tie, train == LQA_TRAIN_FULL ? 0 : (int)(1 + lqa_rng_below(&rng, 127)));
    test_batch tb;
    make_batch(&tb, 2, 16, m.cfg.vocab_size, packed);
    model_fd f = {&m, &tb.batch, opts(attn, train, (int)lqa_rng_below(&rng, 2))};
    lqa_grads g = {fd_zeros(m.n_params), m.n_lora ? fd_zeros(m.n_lora) : NULL, 0};
    float loss = lqa_model_step(&m, &tb.batch, &f.o, &g);
    assert_true(isfinite(loss) && loss > 0);
    char what[200];
    for (int t = 0; t < m.n_tensors; t++) {
        const lqa_tensor_info *ti = &m.tensors[t];
        int trained = train == LQA_TRAIN_FULL || (train == LQA_TRAIN_LORA_PLUS && is_norm_or_embed(ti));
        if (!tie && train == LQA_TRAIN_LORA_PLUS && strcmp(ti->name, "lm_head.weight") == 0) trained = 0;
        if (!trained) { /* frozen: its gradient is never written */
            for (size_t i = 0; i < ti->numel; i++) assert_true(g.d_params[ti->offset + i] == 0.0f);
            continue;
        }
        snprintf(what, sizeof what, "%s (train %d attn %d packed %d tie %d)", ti->name, train, attn, packed, tie);
        fd_check_tol(what, m.params + ti->offset, g.d_params + ti->offset, ti->numel, model_loss, &f, &rng, 3, 1e-2f,
                     3e-4);
    }
    for (int t = 0; t < m.n_lora_tensors; t++) {
        const lqa_tensor_info *ti = &m.lora_tensors[t];
        snprintf(what, sizeof what, "%s (train %d attn %d packed %d)", ti->name, train, attn, packed);
        fd_check_tol(what, m.lora + ti->offset, g.d_lora + ti->offset, ti->numel, model_loss, &f, &rng, 3, 1e-2f, 3e-4);
    }
    fd_free_all(g.d_params, g.d_lora, NULL);
    free_batch(&tb);
    lqa_model_free(&m);
}

static void test_fd_lora_plus(void **state) {
    fd_whole_model(LQA_TRAIN_LORA_PLUS, LQA_ATTN_FULL, 0);
    fd_whole_model(LQA_TRAIN_LORA_PLUS, LQA_ATTN_S2, 0);
    fd_whole_model(LQA_TRAIN_LORA_PLUS, LQA_ATTN_S2, 1);
}
static void test_fd_lora(void **state) {
    fd_whole_model(LQA_TRAIN_LORA, LQA_ATTN_FULL, 1);
    fd_whole_model(LQA_TRAIN_LORA, LQA_ATTN_S2, 0);
}
static void test_fd_full(void **state) {
    fd_whole_model(LQA_TRAIN_FULL, LQA_ATTN_FULL, 0);
    fd_whole_model(LQA_TRAIN_FULL, LQA_ATTN_S2, 1);
}

/* The loss is the mean over targets: with uniform logits it is log V. */
static void test_loss_definition(void **state) {
    lqa_model m;
    make_model(&m, 0, 0);
    memset(m.params + m.tensors[m.n_tensors - 1].offset, 0, sizeof(float) * m.tensors[m.n_tensors - 1].numel);
    test_batch tb;
    make_batch(&tb, 2, 16, m.cfg.vocab_size, 0);
    lqa_step_opts o = opts(LQA_ATTN_FULL, LQA_TRAIN_FULL, 0);
    assert_float_equal(lqa_model_step(&m, &tb.batch, &o, NULL), log(m.cfg.vocab_size), 1e-5);
    memset(tb.mask, 0, 32); /* no target: 0, no gradient */
    float *d = fd_zeros(m.n_params);
    lqa_grads g = {d, NULL, 0};
    assert_true(lqa_model_step(&m, &tb.batch, &o, &g) == 0.0f);
    for (size_t i = 0; i < m.n_params; i++) assert_true(d[i] == 0.0f);
    free(d);
    free_batch(&tb);
    lqa_model_free(&m);
}

static void test_lora_b_zero_equals_base(void **state) {
    lqa_model m;
    make_model(&m, (int)lqa_rng_below(&rng, 2), 0);
    test_batch tb;
    make_batch(&tb, 2, 16, m.cfg.vocab_size, 0);
    float *base = lqa_model_logits(&m, &tb.batch, NULL);
    lqa_model_add_lora(&m, 127, 4, 16.0f, lqa_rng_u64(&rng));
    /* A is Kaiming-uniform (bound 1/sqrt(in)) and not zero, B is zero */
    const lqa_tensor_info *ti;
    float *A = lqa_model_tensor(&m, "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", &ti);
    assert_non_null(A);
    float bound = 1.0f / sqrtf((float)ti->shape[1]), amax = 0;
    for (size_t i = 0; i < ti->numel; i++) amax = fmaxf(amax, fabsf(A[i]));
    assert_true(amax > 0.5f * bound && amax <= bound);
    float *B = lqa_model_tensor(&m, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", &ti);
    for (size_t i = 0; i < ti->numel; i++) assert_true(B[i] == 0.0f);
    float *with = lqa_model_logits(&m, &tb.batch, NULL);
    size_t n = (size_t)tb.B * tb.T * m.cfg.vocab_size;
    for (size_t i = 0; i < n; i++) assert_float_equal(with[i], base[i], 1e-6 * (1 + fabs(base[i])));
    fd_free_all(base, with, NULL);
    free_batch(&tb);
    lqa_model_free(&m);
}

static void test_merge_equals_adapter(void **state) {
    lqa_model m;
    make_model(&m, (int)lqa_rng_below(&rng, 2), (int)(1 + lqa_rng_below(&rng, 127)));
    test_batch tb;
    make_batch(&tb, 2, 16, m.cfg.vocab_size, 0);
    float *with = lqa_model_logits(&m, &tb.batch, NULL);
    float *before = fd_copy(m.params, m.n_params);
    lqa_model_merge_lora(&m);
    assert_null(m.lora);
    assert_int_equal(m.n_lora_tensors, 0);
    int changed = 0;
    for (size_t i = 0; i < m.n_params; i++) changed += m.params[i] != before[i];
    assert_true(changed > 0);
    float *merged = lqa_model_logits(&m, &tb.batch, NULL);
    size_t n = (size_t)tb.B * tb.T * m.cfg.vocab_size;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(merged[i] - with[i])), scale = fmax(scale, fabs(with[i]));
    assert_true(worst <= 1e-5 * (1 + scale) * 10);
    fd_free_all(with, before, merged, NULL);
    free_batch(&tb);
    lqa_model_free(&m);
}

static void grads_for(lqa_model *m, const lqa_batch *b, lqa_step_opts o, float *loss, lqa_grads *g) {
    *g = (lqa_grads){0}; /* the full layout (compact 0), whatever the caller's stack held */
    g->d_params = fd_zeros(m->n_params);
    g->d_lora = m->n_lora ? fd_zeros(m->n_lora) : NULL;
    *loss = lqa_model_step(m, b, &o, g);
}

/* Checkpointing recomputes the same ops in the same order: bitwise the same gradients; and the
 * same step twice is bitwise the same (determinism at a fixed thread count). */
static void test_checkpointing_and_determinism(void **state) {
    for (int attn = 0; attn < 2; attn++) {
        lqa_model m;
        make_model(&m, 0, LQA_LORA_Q | LQA_LORA_V | LQA_LORA_DOWN);
        test_batch tb;
        make_batch(&tb, 2, 32, m.cfg.vocab_size, attn);
        float l0, l1, l2;
        lqa_grads g0, g1, g2;
        grads_for(&m, &tb.batch, opts(attn, LQA_TRAIN_LORA_PLUS, 0), &l0, &g0);
        grads_for(&m, &tb.batch, opts(attn, LQA_TRAIN_LORA_PLUS, 1), &l1, &g1);
        grads_for(&m, &tb.batch, opts(attn, LQA_TRAIN_LORA_PLUS, 1), &l2, &g2);
        assert_true(l0 == l1 && l1 == l2);
        assert_memory_equal(g0.d_params, g1.d_params, sizeof(float) * m.n_params);
        assert_memory_equal(g0.d_lora, g1.d_lora, sizeof(float) * m.n_lora);
        assert_memory_equal(g1.d_params, g2.d_params, sizeof(float) * m.n_params);
        assert_memory_equal(g1.d_lora, g2.d_lora, sizeof(float) * m.n_lora);
        /* gradients accumulate across calls (micro-batches) */
        lqa_step_opts o = opts(attn, LQA_TRAIN_LORA_PLUS, 1);
        lqa_model_step(&m, &tb.batch, &o, &g2);
        for (size_t i = 0; i < m.n_lora; i++) assert_float_equal(g2.d_lora[i], 2 * g1.d_lora[i], 1e-6 + 1e-6 * fabs(g1.d_lora[i]));
        fd_free_all(g0.d_params, g0.d_lora, g1.d_params, g1.d_lora, g2.d_params, g2.d_lora, NULL);
        free_batch(&tb);
        lqa_model_free(&m);
    }
}

/* Changing token t changes no logit before t, in full and S2 mode; in a packed batch, changing
 * a token of record 1 changes nothing in record 0, and changing padding changes nothing. */
static void test_no_future_and_packed_independence(void **state) {
    lqa_model m;
    make_model(&m, 1, 0);
    int V = m.cfg.vocab_size, T = 32;
    for (int attn = 0; attn < 2; attn++) {
        test_batch tb;
        make_batch(&tb, 1, T, V, 0);
        lqa_step_opts o = opts(attn, LQA_TRAIN_FULL, 0);
        float *a = lqa_model_logits(&m, &tb.batch, &o);
        int t = 1 + (int)lqa_rng_below(&rng, T - 1);
        tb.tokens[t] = (tb.tokens[t] + 1 + (int32_t)lqa_rng_below(&rng, V - 1)) % V;
        float *b = lqa_model_logits(&m, &tb.batch, &o);
        assert_memory_equal(a, b, sizeof(float) * t * V);
        int differs = 0;
        for (int i = t * V; i < T * V; i++) differs += a[i] != b[i];
        assert_true(differs > 0);
        fd_free_all(a, b, NULL);
        free_batch(&tb);
    }
    test_batch tb;
    make_batch(&tb, 1, T, V, 1);
    int cut = 0;
    while (tb.seg[cut] == 0) cut++;
    lqa_step_opts o = opts(LQA_ATTN_FULL, LQA_TRAIN_FULL, 0);
    float *a = lqa_model_logits(&m, &tb.batch, &o);
    tb.tokens[T - 1] = (tb.tokens[T - 1] + 1) % V; /* padding or record 1 */
    tb.tokens[cut] = (tb.tokens[cut] + 1) % V;     /* first token of record 1 */
    float *b = lqa_model_logits(&m, &tb.batch, &o);
    assert_memory_equal(a, b, sizeof(float) * cut * V);
    fd_free_all(a, b, NULL);
    free_batch(&tb);
    lqa_model_free(&m);
}

/* Padding (segment id < 0) is neither attended nor a target, and no target crosses records:
 * with every loss_mask bit set, changing padding tokens leaves the loss and gradients bitwise
 * the same, while changing a real token changes them. */
static void test_padding_carries_no_loss(void **state) {
    lqa_model m;
    make_model(&m, 0, LQA_LORA_Q | LQA_LORA_V);
    int V = m.cfg.vocab_size, T = 32, pad = 2 + (int)lqa_rng_below(&rng, 6);
    test_batch tb;
    make_batch(&tb, 1, T, V, 1);
    for (int t = 0; t < T; t++) {
        tb.mask[t] = t > 0;
        if (t >= T - pad) tb.seg[t] = -1;
    }
    for (int attn = 0; attn < 2; attn++) {
        lqa_step_opts o = opts(attn, LQA_TRAIN_LORA_PLUS, 1);
        float l0, l1, l2;
        lqa_grads g0, g1, g2;
        grads_for(&m, &tb.batch, o, &l0, &g0);
        for (int t = T - pad; t < T; t++) tb.tokens[t] = (tb.tokens[t] + 1 + (int32_t)lqa_rng_below(&rng, V - 1)) % V;
        grads_for(&m, &tb.batch, o, &l1, &g1);
        assert_true(l0 == l1);
        assert_memory_equal(g0.d_lora, g1.d_lora, sizeof(float) * m.n_lora);
        /* the embedding rows of the changed padding tokens get no gradient from them: all
         * gradients equal, so nothing flowed through padding */
        assert_memory_equal(g0.d_params, g1.d_params, sizeof(float) * m.n_params);
        tb.tokens[1] = (tb.tokens[1] + 1) % V; /* a real token */
        grads_for(&m, &tb.batch, o, &l2, &g2);
        assert_true(l2 != l1);
        fd_free_all(g0.d_params, g0.d_lora, g1.d_params, g1.d_lora, g2.d_params, g2.d_lora, NULL);
    }
    free_batch(&tb);
    lqa_model_free(&m);
}

static void test_check_opts_names_working_ctx(void **state) {
    lqa_model m;
    make_model(&m, 0, 0);
    lqa_err err;
    lqa_step_opts o = opts(LQA_ATTN_S2, LQA_TRAIN_LORA_PLUS, 1);
    int ok = 8 * (16 + (int)lqa_rng_below(&rng, 500));
    assert_int_equal(lqa_model_check_opts(&m, ok, &o, &err), 0);
    assert_int_equal(lqa_model_check_opts(&m, ok + 3, &o, &err), -1);
    char want[64];
    snprintf(want, sizeof want, "%d or %d", ok, ok + 8);
    assert_non_null(strstr(err.msg, want));
    o.attn = LQA_ATTN_FULL;
    assert_int_equal(lqa_model_check_opts(&m, ok + 3, &o, &err), 0);
    lqa_model_free(&m);
}

/* The bytes a step allocates grow linearly with T (no T x T buffer, chunked loss): the extra
 * bytes per doubling double, for every mode; the only constant part is the loss chunk
 * (chunk x V logits) and the per-thread attention tiles. */
static void test_step_memory_linear_in_T(void **state) {
    lqa_config c = {.vocab_size = 32000, .dim = 256, .n_layers = 4, .n_heads = 8, .n_kv_heads = 4,
                    .hidden_dim = 688, .max_pos = 2048, .rope_theta = 10000, .rope_scale = 1, .rms_eps = 1e-5f};
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O, 8, 16, 1);
    for (int mode = 0; mode < 4; mode++) {
        lqa_step_opts o = opts(mode & 1, LQA_TRAIN_LORA_PLUS, mode >> 1);
        size_t bytes[5];
        for (int i = 0; i < 5; i++) {
            int T = 256 << i;
            bytes[i] = lqa_model_step_bytes(&m, 1, T, &o);
            print_message("# step bytes attn=%s ckpt=%d T=%d: %zu", mode & 1 ? "s2" : "full", mode >> 1, T, bytes[i]);
            if (i > 0) print_message(" (x%.3f)", (double)bytes[i] / bytes[i - 1]);
            print_message("\n");
        }
        for (int i = 2; i < 5; i++) {
            double growth = (double)(bytes[i] - bytes[i - 1]) / (double)(bytes[i - 1] - bytes[i - 2]);
            assert_true(growth > 1.95 && growth < 2.05);
        }
        assert_true((double)bytes[4] / bytes[3] > 1.75); /* at 4k the constant part is small */
    }
    lqa_model_free(&m);
}

/* lora+'s compact gradient buffer (lqa_grads_alloc) holds exactly the embedding and the norms,
 * and each of them is bit for bit the gradient the params-layout buffer gets; tied and untied,
 * S2 and full attention, with and without checkpointing. */
static void test_lora_plus_compact_grads(void **state) {
    for (int k = 0; k < 4; k++) {
        int tie = k & 1;
        lqa_model m;
        make_model(&m, tie, LQA_LORA_Q | LQA_LORA_V | LQA_LORA_DOWN);
        test_batch tb;
        make_batch(&tb, 2, 16, m.cfg.vocab_size, k >> 1);
        lqa_step_opts o = opts(k >> 1 ? LQA_ATTN_S2 : LQA_ATTN_FULL, LQA_TRAIN_LORA_PLUS, (int)lqa_rng_below(&rng, 2));
        lqa_grads wide = {fd_zeros(m.n_params), fd_zeros(m.n_lora), 0}, compact;
        lqa_grads_alloc(&compact, &m, LQA_TRAIN_LORA_PLUS);
        assert_true(compact.compact);
        size_t want = 0;
        for (int t = 0; t < m.n_tensors; t++)
            if (is_norm_or_embed(&m.tensors[t])) want += m.tensors[t].numel;
        assert_int_equal(lqa_grads_params_floats(&m, LQA_TRAIN_LORA_PLUS), want);
        assert_true(want < m.n_params / 2);
        float l1 = lqa_model_step(&m, &tb.batch, &o, &wide), l2 = lqa_model_step(&m, &tb.batch, &o, &compact);
        assert_memory_equal(&l1, &l2, sizeof l1);
        size_t seen = 0;
        for (int t = 0; t < m.n_tensors; t++) {
            const lqa_tensor_info *ti = &m.tensors[t];
            float *g = lqa_grads_tensor(&compact, &m, t);
            if (!is_norm_or_embed(ti)) {
                assert_null(g);
                continue;
            }
            assert_non_null(g);
            double norm = 0;
            for (size_t i = 0; i < ti->numel; i++) norm += fabs(g[i]);
            assert_true(norm > 0);
            assert_memory_equal(g, wide.d_params + ti->offset, sizeof(float) * ti->numel);
            seen += ti->numel;
        }
        assert_int_equal(seen, want);
        assert_memory_equal(compact.d_lora, wide.d_lora, sizeof(float) * m.n_lora);
        lqa_grads_free(&compact, lqa_backend_cpu());
        fd_free_all(wide.d_params, wide.d_lora, NULL);
        free_batch(&tb);
        lqa_model_free(&m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fd_lora_plus, setup),
        cmocka_unit_test_setup(test_fd_lora, setup),
        cmocka_unit_test_setup(test_fd_full, setup),
        cmocka_unit_test_setup(test_loss_definition, setup),
        cmocka_unit_test_setup(test_lora_b_zero_equals_base, setup),
        cmocka_unit_test_setup(test_merge_equals_adapter, setup),
        cmocka_unit_test_setup(test_checkpointing_and_determinism, setup),
        cmocka_unit_test_setup(test_no_future_and_packed_independence, setup),
        cmocka_unit_test_setup(test_padding_carries_no_loss, setup),
        cmocka_unit_test_setup(test_check_opts_names_working_ctx, setup),
        cmocka_unit_test_setup(test_step_memory_linear_in_T, setup),
        cmocka_unit_test_setup(test_lora_plus_compact_grads, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
