/* test_eval_passkey.c: passkey prompts (length, depth, key line, question; paper and stream
 * filler), key extraction, and the bar that matters: a tiny model trained here for a few seconds
 * to retrieve keys scores well above chance, and the same model untrained scores near zero,
 * through the same lqa_task_passkey harness lqa-eval runs. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/progress.h"
#include "common/rng.h"
#include "eval/tasks.h"

static lqa_tokenizer *g_tok;

/* A small sentencepiece model trained on the passkey protocol's own sentences. */
static int setup(void **state) {
    const char *dir = lqa_test_tmpdir();
    char *txt = lqa_path_join(dir, "corpus.txt"), *model = lqa_path_join(dir, "tok.model");
    lqa_buf b = {0};
    lqa_rng r;
    lqa_rng_seed(&r, 7);
    for (int i = 0; i < 300; i++) {
        int key = 1 + (int)lqa_rng_below(&r, 50000);
        lqa_buf_printf(&b, "%s\n%s\n" LQA_PASSKEY_LINE "\n%s\n", LQA_PASSKEY_INTRO, LQA_PASSKEY_FILLER, "0", "0",
                       LQA_PASSKEY_QUESTION);
        lqa_buf_printf(&b, "%d %d. The key %d is here.\n", key, key / 7, key % 977);
    }
    lqa_test_write(txt, b.data, b.len);
    lqa_err err;
    if (lqa_tok_train(txt, model, 600, 1, 1, &err)) fail_msg("tokenizer: %s", err.msg);
    g_tok = lqa_tok_load(model, &err);
    assert_non_null(g_tok);
    lqa_buf_free(&b);
    free(txt);
    free(model);
    return 0;
}

static int teardown(void **state) {
    lqa_tok_free(g_tok);
    return 0;
}

static lqa_eval_ctx ctx_for(lqa_infer *inf, int ctx) {
    return (lqa_eval_ctx){inf, g_tok, lqa_tok_vocab_size(g_tok), lqa_tok_bos_id(g_tok), lqa_tok_eos_id(g_tok), ctx, NULL,
                          "test", 32, 0, 1, 0};
}

static char *decode(const int32_t *ids, int n) {
    char *text;
    lqa_err err;
    if (lqa_tok_decode(g_tok, ids, (size_t)n, &text, &err)) fail_msg("%s", err.msg);
    return text;
}

static void test_prompt_layout(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    lqa_eval_ctx e = ctx_for(NULL, 4096);
    int32_t *unit;
    size_t n_unit;
    lqa_err err;
    assert_int_equal(lqa_tok_encode(g_tok, LQA_PASSKEY_FILLER + 1, strlen(LQA_PASSKEY_FILLER + 1), &unit, &n_unit, &err), 0);
    for (int trial = 0; trial < 20; trial++) {
        int length = 200 + (int)lqa_rng_below(&r, 3000);
        char key[16];
        snprintf(key, sizeof key, "%d", 1 + (int)lqa_rng_below(&r, 50000));
        int prev_pos = -1;
        for (int d = 0; d <= 4; d++) {
            int32_t *ids;
            int n, pos;
            assert_int_equal(lqa_passkey_prompt(&e, unit, n_unit, 1, length, d * 0.25, key, &r, &ids, &n, &pos, &err), 0);
            assert_true(n <= length);
            assert_true(n > length - (int)n_unit);   /* filled up to the last whole filler unit */
            assert_int_equal(ids[0], e.bos_id);
            assert_true(pos > prev_pos);             /* deeper key, later position */
            prev_pos = pos;
            char *text = decode(ids, n), *key_text = decode(ids + pos, 20);
            char line[128];
            snprintf(line, sizeof line, "The pass key is %s. Remember it. %s is the pass key.", key, key);
            assert_non_null(strstr(text, line));
            assert_true(strncmp(text, LQA_PASSKEY_INTRO, 40) == 0);
            assert_non_null(strstr(key_text, "The pass key is"));
            size_t tl = strlen(text), ql = strlen(LQA_PASSKEY_QUESTION) - 1;   /* question without its leading space */
            assert_string_equal(text + tl - ql, LQA_PASSKEY_QUESTION + 1);
            /* joined pieces tokenize as the whole text does (no doubled word-boundary marks) */
            int32_t *whole;
            size_t n_whole;
            assert_int_equal(lqa_tok_encode(g_tok, text, tl, &whole, &n_whole, &err), 0);
            assert_int_equal((int)n_whole, n - 1);
            assert_memory_equal(whole, ids + 1, sizeof(int32_t) * n_whole);
            free(whole);
            free(text);
            free(key_text);
            free(ids);
        }
    }
    /* a stream filler is sliced at a random offset, with the key at the depth asked for */
    int32_t *stream = lqa_malloc(sizeof(int32_t) * 1000);
    for (int i = 0; i < 1000; i++) stream[i] = unit[i % n_unit];
    int32_t *ids;
    int n, pos;
    assert_int_equal(lqa_passkey_prompt(&e, stream, 1000, 0, 700, 0.5, "123", &r, &ids, &n, &pos, &err), 0);
    assert_true(n == 700);
    free(ids);
    /* too short for the fixed parts: a clear error */
    assert_int_equal(lqa_passkey_prompt(&e, unit, n_unit, 1, 20, 0.5, "123", &r, &ids, &n, &pos, &err), -1);
    assert_non_null(strstr(err.msg, "expected at least"));
    free(stream);
    free(unit);
}

static void test_extract(void **state) {
    char out[16];
    assert_int_equal(lqa_passkey_extract(" 42817. Remember", out, sizeof out), 0);
    assert_string_equal(out, "42817");
    assert_int_equal(lqa_passkey_extract("is 7", out, sizeof out), 0);
    assert_string_equal(out, "7");
    assert_int_equal(lqa_passkey_extract("no digits here.", out, sizeof out), -1);
    assert_int_equal(lqa_passkey_extract("123456789012345678901", out, sizeof out), 0);
    assert_int_equal(strlen(out), sizeof out - 1);
}

/* ---- a model trained to retrieve keys ---- */

enum { MAX_KEY = 99, TRAIN_LEN = 112 };

/* One training sequence: a passkey prompt followed by "KEY." with loss on the answer only. */
static int training_example(lqa_eval_ctx *e, const int32_t *unit, size_t n_unit, lqa_rng *r, int32_t *tok,
                            uint8_t *mask) {
    char key[16], answer[24];
    snprintf(key, sizeof key, "%d", 1 + (int)lqa_rng_below(r, MAX_KEY));   /* as lqa_task_passkey draws them */
    snprintf(answer, sizeof answer, "%s.", key);   /* encodes as the key does after "is" in the key line */
    int32_t *p, *a;
    int n, pos;
    size_t na;
    lqa_err err;
    int length = TRAIN_LEN - 8 - (int)lqa_rng_below(r, 40);
    if (lqa_passkey_prompt(e, unit, n_unit, 1, length, lqa_rng_uniform(r), key, r, &p, &n, &pos, &err) ||
        lqa_tok_encode(g_tok, answer, strlen(answer), &a, &na, &err))
        fail_msg("%s", err.msg);
    memcpy(tok, p, sizeof(int32_t) * (size_t)n);
    memcpy(tok + n, a, sizeof(int32_t) * na);
    int total = n + (int)na;
    for (int t = 0; t < TRAIN_LEN; t++) mask[t] = t >= n && t < total;
    /* the key's second mention in the key line ("Remember it. KEY is") is a copy too: more signal
     * for the same circuit, so training converges in fewer steps */
    int runs = 0, prev_digit = 0;
    for (int t = pos; t < n && runs <= 2; t++) {
        const char *piece = lqa_tok_id_to_piece(g_tok, tok[t]);
        int digit = piece && piece[0] >= '0' && piece[0] <= '9' && piece[1] == '\0';
        runs += digit && !prev_digit;
        if (digit && runs == 2) mask[t] = 1;
        prev_digit = digit;
    }
    for (int t = total; t < TRAIN_LEN; t++) tok[t] = e->eos_id;   /* padding after: causal, never seen */
    free(p);
    free(a);
    return total;
}

static void adam(float *w, const float *g, float *m, float *v, size_t n, int step, float lr) {
    float b1 = 0.9f, b2 = 0.98f, c1 = 1 - powf(b1, (float)step), c2 = 1 - powf(b2, (float)step);
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + 1e-8f);
    }
}

static double passkey_accuracy(lqa_model *m, uint64_t seed) {
    lqa_err err;
    lqa_infer *inf = lqa_infer_new(m, TRAIN_LEN, 1, &err);
    assert_non_null(inf);
    lqa_eval_ctx e = ctx_for(inf, TRAIN_LEN);
    e.seed = seed;
    int lengths[] = {TRAIN_LEN - 40, TRAIN_LEN - 20};   /* inside the trained lengths (64..104) */
    double depths[] = {0, 0.5, 1};
    lqa_passkey_opts o = {lengths, 2, depths, 3, 8, 0, MAX_KEY};
    json_t *res;
    if (lqa_task_passkey(&e, &o, &res, &err)) fail_msg("%s", err.msg);
    assert_int_equal(json_array_size(json_object_get(res, "cells")), 6);
    assert_int_equal(json_integer_value(json_object_get(res, "prompts")), 48);
    double acc = json_real_value(json_object_get(res, "accuracy"));
    json_decref(res);
    lqa_infer_free(inf);
    return acc;
}

static void test_trained_model_finds_keys_untrained_does_not(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    lqa_config c = {.vocab_size = lqa_tok_vocab_size(g_tok), .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                    .hidden_dim = 128, .max_pos = TRAIN_LEN, .rope_theta = 10000, .rope_scale = 1, .rms_eps = 1e-5f,
                    .tie_embeddings = 0, .bos_id = lqa_tok_bos_id(g_tok), .eos_id = lqa_tok_eos_id(g_tok)};
    lqa_model m;
    lqa_model_alloc(&m, &c);
    lqa_model_init_random(&m, lqa_rng_u64(&r));
    double untrained = passkey_accuracy(&m, seed ^ 1);

    lqa_eval_ctx e = ctx_for(NULL, TRAIN_LEN);
    int32_t *unit;
    size_t n_unit;
    lqa_err err;
    assert_int_equal(lqa_tok_encode(g_tok, LQA_PASSKEY_FILLER + 1, strlen(LQA_PASSKEY_FILLER + 1), &unit, &n_unit, &err), 0);
    enum { B = 16 };
    int32_t *tok = lqa_malloc(sizeof(int32_t) * B * TRAIN_LEN);
    uint8_t *mask = lqa_malloc(B * TRAIN_LEN);
    float *g = lqa_calloc(m.n_params, sizeof(float)), *mo = lqa_calloc(m.n_params, sizeof(float)),
          *vo = lqa_calloc(m.n_params, sizeof(float));
    lqa_step_opts so = {.attn = LQA_ATTN_FULL, .train = LQA_TRAIN_FULL, .threads = 1};
    double t0 = lqa_now();
    float loss = 0;
    double ema = 0;
    int step;
    for (step = 1; step <= 1000; step++) {   /* 180-510 steps seen over 16 seeds: the copy circuit forms suddenly */
        for (int b = 0; b < B; b++) training_example(&e, unit, n_unit, &r, tok + b * TRAIN_LEN, mask + b * TRAIN_LEN);
        lqa_batch batch = {B, TRAIN_LEN, tok, mask, NULL};
        memset(g, 0, m.n_params * sizeof(float));
        lqa_grads grads = {g, NULL, 0};
        loss = lqa_model_step(&m, &batch, &so, &grads);
        adam(m.params, g, mo, vo, m.n_params, step, step < 30 ? 3e-3f * step / 30 : 3e-3f);
        if (step % 50 == 0) print_message("# step %d loss %.3f (%.1fs)\n", step, loss, lqa_now() - t0);
        /* stop once the smoothed loss is low: one lucky batch is not a model that generalises */
        ema = step == 1 ? loss : 0.9 * ema + 0.1 * loss;
        if (ema < 0.01) break;
    }
    double trained = passkey_accuracy(&m, seed ^ 2);
    print_message("# passkey accuracy: untrained %.3f, trained %.3f after %d steps (loss %.3f, %.1fs); chance %.3f\n",
                  untrained, trained, step, loss, lqa_now() - t0, 1.0 / MAX_KEY);
    assert_true(untrained <= 0.1);
    assert_true(trained >= 0.6);
    free(tok);
    free(mask);
    free(g);
    free(mo);
    free(vo);
    free(unit);
    lqa_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_layout),
        cmocka_unit_test(test_extract),
        cmocka_unit_test(test_trained_model_finds_keys_untrained_does_not),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
