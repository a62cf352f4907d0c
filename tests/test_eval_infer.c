/* test_eval_infer.c: KV-cache inference. Greedy decoding with the cache gives the tokens that a
 * full recompute at each step gives; feeding a sequence in pieces gives the logits of feeding it
 * at once; an unmerged LoRA adapter gives the logits of the merged weights; the NLL sums the
 * log-softmax of the logits; a context longer than the model supports is refused. Random tiny
 * models (GQA, linear RoPE scaling, tied or untied embeddings) from lqa_test_seed(). */
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "eval/infer.h"
#include "eval/tasks.h"

static void random_config(lqa_rng *r, lqa_config *c) {
    memset(c, 0, sizeof *c);
    int kv_choices[] = {1, 2, 4};
    c->n_heads = 4;
    c->n_kv_heads = kv_choices[lqa_rng_below(r, 3)];
    c->dim = 4 * (4 + 2 * (int)lqa_rng_below(r, 3));   /* head dim 4, 6 or 8 */
    c->vocab_size = 20 + (int)lqa_rng_below(r, 40);
    c->n_layers = 1 + (int)lqa_rng_below(r, 2);
    c->hidden_dim = 2 * c->dim + 4;
    c->max_pos = 512;
    c->rope_theta = 10000.0f;
    c->rope_scale = lqa_rng_below(r, 2) ? 1.0f : 2.0f;
    c->rms_eps = 1e-5f;
    c->tie_embeddings = (int)lqa_rng_below(r, 2);
    c->bos_id = 1;
    c->eos_id = 2;
}

/* Weights with std 0.3 so that logits are well separated (no argmax ties from rounding). */
static void random_model(lqa_rng *r, const lqa_config *c, lqa_model *m) {
    lqa_model_alloc(m, c);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.3f * lqa_rng_normal(r);
}

static void random_lora(lqa_rng *r, lqa_model *m, int targets, int rank) {
    lqa_model_shape_lora(m, targets, rank, 2.0f * rank);
    m->lora = lqa_malloc(m->n_lora * sizeof(float));
    for (size_t i = 0; i < m->n_lora; i++) m->lora[i] = 0.3f * lqa_rng_normal(r);   /* B != 0: adapter matters */
}

static void free_model(lqa_model *m) {
    lqa_model_free(m);
}

static int32_t *random_tokens(lqa_rng *r, int n, int V) {
    int32_t *t = lqa_malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) t[i] = (int32_t)lqa_rng_below(r, (uint64_t)V);
    return t;
}

/* Greedy with the cache == argmax of a fresh full forward over prompt + generated so far. */
static void test_kv_cache_greedy_matches_recompute(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    for (int trial = 0; trial < 4; trial++) {
        lqa_config c;
        random_config(&r, &c);
        lqa_model m;
        random_model(&r, &c, &m);
        if (trial % 2) random_lora(&r, &m, LQA_LORA_Q | LQA_LORA_V | LQA_LORA_O, 2);
        int n_prompt = 3 + (int)lqa_rng_below(&r, 300), max_new = 24;   /* > 256 crosses a prefill chunk */
        int32_t *seq = random_tokens(&r, n_prompt + max_new, c.vocab_size);
        lqa_err err;
        lqa_infer *s = lqa_infer_new(&m, n_prompt + max_new, 1, &err);
        assert_non_null(s);
        int32_t gen[24];
        int n_gen = lqa_infer_generate(s, seq, n_prompt, max_new, -1, gen, &err);
        assert_int_equal(n_gen, max_new);
        float *logits = lqa_malloc(sizeof(float) * (size_t)c.vocab_size);
        for (int i = 0; i < max_new; i++) {
            lqa_infer_reset(s);
            assert_int_equal(lqa_infer_feed(s, seq, n_prompt + i, NULL, logits, &err), 0);
            int want = lqa_argmax(logits, c.vocab_size);
            assert_int_equal(gen[i], want);
            seq[n_prompt + i] = want;
        }
        free(logits);
        free(seq);
        lqa_infer_free(s);
        free_model(&m);
    }
}

/* Logits of a sequence fed in random pieces equal those of one prefill (to float rounding). */
static void test_feed_in_pieces_matches_prefill(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    lqa_config c;
    random_config(&r, &c);
    lqa_model m;
    random_model(&r, &c, &m);
    int n = 40 + (int)lqa_rng_below(&r, 400), V = c.vocab_size;
    int32_t *tok = random_tokens(&r, n, V);
    float *all = lqa_malloc(sizeof(float) * (size_t)n * V), *piece = lqa_malloc(sizeof(float) * (size_t)n * V);
    lqa_err err;
    lqa_infer *s = lqa_infer_new(&m, n, 2, &err);
    assert_int_equal(lqa_infer_feed(s, tok, n, all, NULL, &err), 0);
    lqa_infer_reset(s);
    for (int at = 0; at < n;) {
        int k = 1 + (int)lqa_rng_below(&r, 50);
        if (k > n - at) k = n - at;
        assert_int_equal(lqa_infer_feed(s, tok + at, k, piece + (size_t)at * V, NULL, &err), 0);
        at += k;
    }
    assert_int_equal(lqa_infer_len(s), n);
    double maxdiff = 0, maxabs = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        maxdiff = fmax(maxdiff, fabs(all[i] - piece[i]));
        maxabs = fmax(maxabs, fabs(all[i]));
    }
    assert_true(maxabs > 0.1);
    assert_true(maxdiff < 1e-4 * (1 + maxabs));
    /* NLL = sum of -log softmax(logits)[next token], from the stored logits */
    double want = 0, got;
    int from = 1 + (int)lqa_rng_below(&r, (uint64_t)n / 2);
    for (int t = from; t < n; t++) {
        const float *row = all + (size_t)(t - 1) * V;
        double mx = row[0], sum = 0;
        for (int j = 1; j < V; j++) mx = fmax(mx, row[j]);
        for (int j = 0; j < V; j++) sum += exp(row[j] - mx);
        want += log(sum) + mx - row[tok[t]];
    }
    assert_int_equal(lqa_infer_nll(s, tok, n, from, &got, &err), 0);
    assert_true(fabs(got - want) < 1e-4 * (1 + fabs(want)));
    free(all);
    free(piece);
    free(tok);
    lqa_infer_free(s);
    free_model(&m);
}

/* Folds W += (alpha/r) B A into a copy of the base for every adapted target (reference merge). */
static void merge_reference(const lqa_model *m, float *merged) {
    const lqa_config *c = &m->cfg;
    size_t D = c->dim, F = c->hidden_dim, V = c->vocab_size, hd = c->dim / c->n_heads;
    size_t q = hd * c->n_heads, kv = hd * c->n_kv_heads;
    size_t in[7] = {D, D, D, q, D, D, F}, out[7] = {q, kv, kv, D, F, F, D};
    size_t off = V * D, loff = 0, r = m->lora_rank;
    float scale = m->lora_alpha / m->lora_rank;
    memcpy(merged, m->params, m->n_params * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        size_t w_off[7];
        off += D;
        for (int t = 0; t < 4; t++) { w_off[t] = off; off += in[t] * out[t]; }
        off += D;
        for (int t = 4; t < 7; t++) { w_off[t] = off; off += in[t] * out[t]; }
        for (int t = 0; t < 7; t++) {
            if (!(m->lora_targets & (1 << t))) continue;
            const float *A = m->lora + loff, *B = A + r * in[t];
            loff += r * (in[t] + out[t]);
            for (size_t o = 0; o < out[t]; o++)
                for (size_t i = 0; i < in[t]; i++) {
                    double acc = 0;
                    for (size_t k = 0; k < r; k++) acc += (double)B[o * r + k] * A[k * in[t] + i];
                    merged[w_off[t] + o * in[t] + i] += scale * (float)acc;
                }
        }
    }
}

static void test_unmerged_lora_matches_merged_weights(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    lqa_config c;
    random_config(&r, &c);
    lqa_model m;
    random_model(&r, &c, &m);
    random_lora(&r, &m, (int)(1 + lqa_rng_below(&r, 127)), 1 + (int)lqa_rng_below(&r, 4));
    lqa_model merged = m;
    merged.params = lqa_malloc(m.n_params * sizeof(float));
    merge_reference(&m, merged.params);
    merged.lora = NULL;
    merged.n_lora = 0;
    merged.lora_targets = 0;
    merged.lora_rank = 0;
    int n = 30, V = c.vocab_size;
    int32_t *tok = random_tokens(&r, n, V);
    float *a = lqa_malloc(sizeof(float) * (size_t)n * V), *b = lqa_malloc(sizeof(float) * (size_t)n * V),
          *base = lqa_malloc(sizeof(float) * (size_t)n * V);
    lqa_err err;
    lqa_infer *sa = lqa_infer_new(&m, n, 1, &err), *sb = lqa_infer_new(&merged, n, 1, &err);
    assert_int_equal(lqa_infer_feed(sa, tok, n, a, NULL, &err), 0);
    assert_int_equal(lqa_infer_feed(sb, tok, n, b, NULL, &err), 0);
    lqa_model plain = m;
    plain.lora = NULL;
    plain.n_lora = 0;
    lqa_infer *sp = lqa_infer_new(&plain, n, 1, &err);
    assert_int_equal(lqa_infer_feed(sp, tok, n, base, NULL, &err), 0);
    double maxdiff = 0, adapter_effect = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        maxdiff = fmax(maxdiff, fabs(a[i] - b[i]));
        adapter_effect = fmax(adapter_effect, fabs(a[i] - base[i]));
    }
    assert_true(adapter_effect > 1e-2);   /* the adapter changes the output ... */
    assert_true(maxdiff < 1e-3);          /* ... exactly as merging it would */
    lqa_infer_free(sa);
    lqa_infer_free(sb);
    lqa_infer_free(sp);
    free(a);
    free(b);
    free(base);
    free(tok);
    free(merged.params);
    free_model(&m);
}

static void test_context_too_long_is_refused(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    lqa_config c;
    random_config(&r, &c);
    lqa_model m;
    random_model(&r, &c, &m);
    lqa_err err;
    assert_null(lqa_infer_new(&m, c.max_pos + 1 + (int)lqa_rng_below(&r, 1000), 1, &err));
    assert_non_null(strstr(err.msg, "longer than the model supports"));
    lqa_infer *s = lqa_infer_new(&m, 16, 1, &err);
    int32_t *tok = random_tokens(&r, 17, c.vocab_size);
    assert_int_equal(lqa_infer_feed(s, tok, 17, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "longer than the evaluation context"));
    tok[3] = c.vocab_size;
    assert_int_equal(lqa_infer_feed(s, tok, 5, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    free(tok);
    lqa_infer_free(s);
    free_model(&m);
}

/* The trainer's whole-sequence forward (lqa_model_logits) gives the same logits as the inference
 * path's chunked KV-cache forward (same layer code, attention's Tq < Tk form over the cache),
 * with an unmerged adapter, and the perplexity the inference path reports is exp of the
 * training loss on the same tokens. */
static void test_matches_trainer_forward_and_loss(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    lqa_config c;
    random_config(&r, &c);
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_init_random(&m, lqa_rng_u64(&r));
    for (size_t i = 0; i < m.n_params; i++) m.params[i] *= 10.0f;   /* std 0.2: sharp, non-trivial logits */
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O, 4, 8.0f, lqa_rng_u64(&r));
    for (size_t i = 0; i < m.n_lora; i++) m.lora[i] = 0.2f * lqa_rng_normal(&r);
    int n = 20 + (int)lqa_rng_below(&r, 200), V = c.vocab_size;
    int32_t *tok = random_tokens(&r, n, V);
    uint8_t *mask = lqa_malloc((size_t)n);
    for (int t = 0; t < n; t++) mask[t] = t > 0;
    lqa_batch b = {1, n, tok, mask, NULL};
    lqa_step_opts o = {.attn = LQA_ATTN_FULL, .train = LQA_TRAIN_LORA_PLUS, .threads = 1};
    float *want = lqa_model_logits(&m, &b, &o);
    float *got = lqa_malloc(sizeof(float) * (size_t)n * V);
    lqa_err err;
    lqa_infer *s = lqa_infer_new(&m, n, 1, &err);
    assert_non_null(s);
    assert_int_equal(lqa_infer_feed(s, tok, n, got, NULL, &err), 0);
    double maxdiff = 0, maxabs = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        maxdiff = fmax(maxdiff, fabs(want[i] - got[i]));
        maxabs = fmax(maxabs, fabs(want[i]));
    }
    assert_true(maxabs > 0.5);
    if (maxdiff > 1e-3 * (1 + maxabs)) fail_msg("logits differ from the trainer's by %g (max |logit| %g)", maxdiff, maxabs);
    float loss = lqa_model_step(&m, &b, &o, NULL);
    double nll;
    assert_int_equal(lqa_infer_nll(s, tok, n, 1, &nll, &err), 0);
    double ppl = exp(nll / (n - 1)), want_ppl = exp((double)loss);
    if (fabs(ppl - want_ppl) > 1e-4 * want_ppl) fail_msg("ppl %.6f, exp(training loss) %.6f", ppl, want_ppl);
    /* the sliding-window path with one window covering the sequence is the same number */
    double snll = 0;
    long count = 0;
    assert_int_equal(lqa_ppl_sliding(s, tok, n, n, 1 + (int)lqa_rng_below(&r, 300), &snll, &count, &err), 0);
    assert_int_equal(count, n - 1);
    assert_true(fabs(snll - nll) < 1e-6 * (1 + nll));
    free(want);
    free(got);
    free(tok);
    free(mask);
    lqa_infer_free(s);
    lqa_model_free(&m);
}

/* Sliding windows score every token but the first exactly once, each with at most `window`
 * tokens of context: the sum equals the per-window NLLs computed by hand. */
static void test_sliding_windows_score_each_token_once(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 5);
    lqa_config c;
    random_config(&r, &c);
    lqa_model m;
    random_model(&r, &c, &m);
    int n = 50 + (int)lqa_rng_below(&r, 150), window = 8 + (int)lqa_rng_below(&r, 40);
    int stride = 1 + (int)lqa_rng_below(&r, (uint64_t)window);
    int32_t *tok = random_tokens(&r, n, c.vocab_size);
    lqa_err err;
    lqa_infer *s = lqa_infer_new(&m, n, 1, &err);
    double nll = 0;
    long count = 0;
    assert_int_equal(lqa_ppl_sliding(s, tok, n, window, stride, &nll, &count, &err), 0);
    assert_int_equal(count, n - 1);
    /* by hand: token t is scored in the first window [b, b+window) whose end passed it */
    double want = 0;
    float *logits = lqa_malloc(sizeof(float) * (size_t)window * c.vocab_size);
    int prev_end = 0;
    for (int b = 0; prev_end < n; b += stride) {
        if (prev_end > 0 && b > prev_end - 1) b = prev_end - 1; /* token b has no context in its window */
        int e = b + window < n ? b + window : n;
        lqa_infer_reset(s);
        assert_int_equal(lqa_infer_feed(s, tok + b, e - b, logits, NULL, &err), 0);
        for (int t = prev_end > 1 ? prev_end : 1; t < e; t++) {
            const float *row = logits + (size_t)(t - b - 1) * c.vocab_size;
            double mx = row[0], sum = 0;
            for (int j = 1; j < c.vocab_size; j++) mx = fmax(mx, row[j]);
            for (int j = 0; j < c.vocab_size; j++) sum += exp(row[j] - mx);
            want += log(sum) + mx - row[tok[t]];
        }
        prev_end = e;
    }
    assert_true(fabs(nll - want) < 1e-4 * (1 + want));
    free(logits);
    free(tok);
    lqa_infer_free(s);
    free_model(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_cache_greedy_matches_recompute),
        cmocka_unit_test(test_feed_in_pieces_matches_prefill),
        cmocka_unit_test(test_unmerged_lora_matches_merged_weights),
        cmocka_unit_test(test_context_too_long_is_refused),
        cmocka_unit_test(test_matches_trainer_forward_and_loss),
        cmocka_unit_test(test_sliding_windows_score_each_token_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
