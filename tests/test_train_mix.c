/* test_train_mix.c: data mixing in `lqa-sft train` (--data DIR,DIR --data-weights W,W): the
 * sampler's shares follow the weights, a mixed lm+sft run draws rows in those shares and records
 * its sources in config.json, a mixed run resumed from a mid-run checkpoint repeats the later
 * losses and the final adapter bit for bit, changed --data or weights are refused on resume, a
 * source built with another tokenizer is refused by name, and a single --data dir keeps the
 * single-source stream (no mixing RNG, no extra fields). */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_train_util.h"
#include "trainer/train.h"

static const char *g_dir;
static char *g_tok, *g_model, *g_lm, *g_sft;
static uint64_t g_seed;
enum { VOCAB = 512, CTX = 64, INIT_CTX = 32, LM_RECORDS = 9, SFT_RECORDS = 7 };

static int setup(void **state) {
    g_seed = lqa_test_seed();
    g_dir = lqa_test_tmpdir();
    uint8_t sha[32];
    fixture_tiny_model(g_dir, g_seed, VOCAB, INIT_CTX, &g_tok, &g_model, sha);
    g_lm = lqa_path_join(g_dir, "lm");
    g_sft = lqa_path_join(g_dir, "sft");
    fixture_shards_kind(g_lm, sha, VOCAB, LM_RECORDS, CTX, g_seed + 1, LQA_KIND_LM);
    /* shorter records than ctx: padded as in a single-source run */
    fixture_shards_kind(g_sft, sha, VOCAB, SFT_RECORDS, CTX / 2 + 8, g_seed + 2, LQA_KIND_SFT);
    return 0;
}

static int teardown(void **state) {
    free(g_tok);
    free(g_model);
    free(g_lm);
    free(g_sft);
    return 0;
}

/* lqa-sft train into g_dir/name with --data data plus extra flags; returns the run dir. */
static char *train(const char *name, const char *data, const char *extra, int want_rc, lqa_buf *out) {
    char *run = lqa_path_join(g_dir, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s --out %s --ctx %d --micro-batch 4 --grad-accum 2 --threads 1 "
             "--warmup 2 --lr 1e-2 --seed %llu %s",
             lqa_test_tool("lqa-sft"), g_model, data, run, CTX, (unsigned long long)g_seed, extra);
    run_expect(want_rc, out, cmd);
    return run;
}

static char *both_dirs(void) {
    size_t n = strlen(g_lm) + strlen(g_sft) + 2;
    char *s = lqa_malloc(n);
    snprintf(s, n, "%s,%s", g_lm, g_sft);
    return s;
}

/* Every line of a and b from step `from` on has the same loss, grad norm, lr and rows. */
static void assert_same_steps(json_t *a, json_t *b, int from) {
    assert_int_equal(json_array_size(a), json_array_size(b));
    for (size_t s = (size_t)from - 1; s < json_array_size(a); s++) {
        json_t *x = json_array_get(a, s), *y = json_array_get(b, s);
        assert_int_equal(lqa_json_int(x, "step", -1), (long)s + 1);
        static const char *const keys[] = {"loss", "grad_norm", "lr"};
        for (int k = 0; k < 3; k++) {
            double u = lqa_json_num(x, keys[k], NAN), v = lqa_json_num(y, keys[k], NAN);
            if (u != v) fail_msg("step %zu: %s %.9g vs %.9g", s + 1, keys[k], u, v);
        }
        json_t *ra = json_object_get(x, "rows_per_source"), *rb = json_object_get(y, "rows_per_source");
        assert_true((ra == NULL) == (rb == NULL));
        if (ra) assert_true(json_equal(ra, rb));
    }
}

/* The sampler: shares follow the weights; zero weights are never drawn; one source never draws. */
static void test_pick_follows_weights(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    double w0 = 1 + (double)lqa_rng_below(&r, 5), w1 = 1 + (double)lqa_rng_below(&r, 5);
    double cum[4] = {w0, w0, w0 + w1, w0 + w1}; /* sources 1 and 3 have weight 0 */
    long count[4] = {0};
    enum { DRAWS = 40000 };
    for (int i = 0; i < DRAWS; i++) count[lqa_mix_pick(&r, cum, 4)]++;
    assert_int_equal(count[1], 0);
    assert_int_equal(count[3], 0);
    double share = (double)count[0] / DRAWS, want = w0 / (w0 + w1);
    fprintf(stderr, "# weights %g:%g, share %.4f (want %.4f)\n", w0, w1, share, want);
    assert_true(fabs(share - want) < 0.015); /* > 6 standard deviations */
    /* 3:1, as the run below uses */
    double c31[2] = {3, 4};
    long n0 = 0;
    for (int i = 0; i < DRAWS; i++) n0 += lqa_mix_pick(&r, c31, 2) == 0;
    assert_true(fabs((double)n0 / DRAWS - 0.75) < 0.015);
    /* one source: always 0 and the RNG state is untouched */
    lqa_rng before = r;
    double one[1] = {w0};
    for (int i = 0; i < 100; i++) assert_int_equal(lqa_mix_pick(&r, one, 1), 0);
    assert_memory_equal(&before, &r, sizeof r);
}

/* A 3:1 lm+sft run: rows in those shares, sources recorded in config.json. */
static void test_mixed_run_shares_and_config(void **state) {
    char *data = both_dirs();
    enum { STEPS = 48, ROWS = STEPS * 4 * 2 };
    char flags[256];
    snprintf(flags, sizeof flags, "--steps %d --save-every 100 --data-weights 3,1", STEPS);
    char *run = train("mix31", data, flags, 0, NULL);
    json_t *m = fixture_metrics(run);
    assert_int_equal(json_array_size(m), STEPS);
    long rows[2] = {0, 0};
    for (int s = 0; s < STEPS; s++) {
        json_t *l = json_array_get(m, (size_t)s), *rp = json_object_get(l, "rows_per_source");
        assert_int_equal(json_array_size(rp), 2);
        long a = (long)json_integer_value(json_array_get(rp, 0)), b = (long)json_integer_value(json_array_get(rp, 1));
        assert_int_equal(a + b, 4 * 2);
        rows[0] += a;
        rows[1] += b;
        assert_true(isfinite(lqa_json_num(l, "loss", NAN)));
        /* lm rows are full, sft rows are shorter than ctx (padding is no token) */
        assert_int_equal(lqa_json_int(l, "tokens", -1), a * CTX + b * (CTX / 2 + 8));
    }
    double share = (double)rows[0] / ROWS;
    fprintf(stderr, "# 3:1 run: %ld lm rows, %ld sft rows (share %.3f)\n", rows[0], rows[1], share);
    assert_true(fabs(share - 0.75) < 0.11); /* 384 rows: sd 0.022, so 5 sd */
    assert_true(rows[1] > 0);
    json_decref(m);
    json_t *c = load_json(run, "config.json");
    json_t *opts = json_object_get(c, "options"), *di = json_object_get(c, "data_info");
    assert_string_equal(lqa_json_str(opts, "data", ""), data);
    assert_string_equal(lqa_json_str(opts, "data_weights", ""), "3,1");
    assert_string_equal(lqa_json_str(di, "kind", ""), "mixed");
    json_t *src = json_object_get(di, "sources");
    assert_int_equal(json_array_size(src), 2);
    json_t *s0 = json_array_get(src, 0), *s1 = json_array_get(src, 1);
    assert_string_equal(lqa_json_str(s0, "dir", ""), g_lm);
    assert_string_equal(lqa_json_str(s1, "dir", ""), g_sft);
    assert_string_equal(lqa_json_str(s0, "kind", ""), "lm");
    assert_string_equal(lqa_json_str(s1, "kind", ""), "sft");
    assert_true(lqa_json_num(s0, "weight", 0) == 3.0 && lqa_json_num(s1, "weight", 0) == 1.0);
    assert_int_equal(lqa_json_int(s0, "records", 0), LM_RECORDS);
    assert_int_equal(lqa_json_int(s1, "records", 0), SFT_RECORDS);
    assert_int_equal(lqa_json_int(s0, "total_tokens", 0), LM_RECORDS * CTX);
    assert_int_equal(lqa_json_int(s1, "total_tokens", 0), SFT_RECORDS * (CTX / 2 + 8));
    assert_int_equal(lqa_json_int(json_object_get(c, "derived"), "records", 0), LM_RECORDS + SFT_RECORDS);
    json_decref(c);
    free(run);
    /* default weights: each dir's token count */
    run = train("mixdefault", data, "--steps 1", 0, NULL);
    c = load_json(run, "config.json");
    src = json_object_get(json_object_get(c, "data_info"), "sources");
    assert_true(lqa_json_num(json_array_get(src, 0), "weight", 0) == (double)(LM_RECORDS * CTX));
    assert_true(lqa_json_num(json_array_get(src, 1), "weight", 0) == (double)(SFT_RECORDS * (CTX / 2 + 8)));
    assert_null(json_object_get(json_object_get(c, "options"), "data_weights"));
    json_decref(c);
    free(run);
    free(data);
}

/* A mixed run resumed from its mid-run checkpoint repeats the later steps and the adapter. */
static void test_mixed_resume_is_exact(void **state) {
    char *data = both_dirs();
    /* 3 steps x 8 rows cycle both sources' epochs (9 and 7 records) before the checkpoint */
    const char *common = "--steps 8 --save-every 3 --keep-checkpoints 0 --data-weights 2,1 --pack";
    char *a = train("mixstraight", data, common, 0, NULL);
    char *b = lqa_path_join(g_dir, "mixresumed");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", a, b);
    run_expect(0, NULL, cmd);
    char *latest = lqa_path_join(b, "checkpoints/latest");
    lqa_err err;
    assert_int_equal(lqa_write_file_atomic(latest, "step-00000003", 13, &err), 0);
    /* the checkpoint holds both sources' positions and the mixing RNG */
    char *ck = lqa_path_join(b, "checkpoints/step-00000003");
    json_t *st = load_json(ck, "state.json");
    assert_int_equal(json_array_size(json_object_get(st, "sources")), 2);
    assert_int_equal(json_array_size(json_object_get(st, "mix_rng")), 4);
    json_decref(st);
    char flags[512];
    snprintf(flags, sizeof flags, "%s --resume", common);
    char *again = train("mixresumed", data, flags, 0, NULL);
    json_t *ma = fixture_metrics(a), *mb = fixture_metrics(b);
    assert_int_equal(json_array_size(ma), 8);
    assert_same_steps(ma, mb, 1);
    json_decref(ma);
    json_decref(mb);
    char *fa = lqa_path_join(a, "final/adapter_model.safetensors"), *fb = lqa_path_join(b, "final/adapter_model.safetensors");
    assert_same_file(fa, fb);
    free(fa);
    free(fb);
    /* other weights, another list, or no weights: refused with the setting named */
    lqa_buf out = {0};
    assert_int_equal(lqa_write_file_atomic(latest, "step-00000003", 13, &err), 0);
    free(again);
    again = train("mixresumed", data, "--steps 8 --save-every 3 --data-weights 1,1 --pack --resume", 1, &out);
    assert_non_null(strstr(out.data, "data_weights"));
    free(again);
    again = train("mixresumed", data, "--steps 8 --save-every 3 --pack --resume", 1, &out);
    assert_non_null(strstr(out.data, "data_weights"));
    free(again);
    again = train("mixresumed", g_lm, "--steps 8 --save-every 3 --data-weights 2 --pack --resume", 1, &out);
    assert_non_null(strstr(out.data, "data"));
    assert_non_null(strstr(out.data, "resume with the same"));
    free(again);
    lqa_buf_free(&out);
    free(ck);
    free(latest);
    free(a);
    free(b);
    free(data);
}

/* A source built with another tokenizer or a larger vocabulary is refused, naming that
 * directory; so are bad weight lists and empty list items. */
static void test_bad_sources_refused(void **state) {
    uint8_t other[32];
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 9);
    for (int i = 0; i < 32; i++) other[i] = (uint8_t)lqa_rng_below(&r, 256);
    char *bad = lqa_path_join(g_dir, "othertok");
    fixture_shards_kind(bad, other, VOCAB, 4, CTX, g_seed + 3, LQA_KIND_LM);
    char data[4096];
    snprintf(data, sizeof data, "%s,%s", g_lm, bad);
    lqa_buf out = {0};
    char *run = train("mixbadtok", data, "--steps 2", 1, &out);
    assert_non_null(strstr(out.data, bad));
    assert_non_null(strstr(out.data, "tokenizer"));
    free(run);
    /* a source whose vocabulary is larger than the model's */
    uint8_t sha[32];
    fixture_sha(g_tok, sha);
    char *big = lqa_path_join(g_dir, "bigvocab");
    fixture_shards_kind(big, sha, 2 * VOCAB, 4, CTX, g_seed + 4, LQA_KIND_SFT);
    snprintf(data, sizeof data, "%s,%s", g_lm, big);
    run = train("mixbigvocab", data, "--steps 2", 1, &out);
    assert_non_null(strstr(out.data, big));
    assert_non_null(strstr(out.data, "vocabulary"));
    free(run);
    free(big);
    snprintf(data, sizeof data, "%s,%s", g_lm, g_sft);
    run = train("mixbadw1", data, "--steps 2 --data-weights 1", 1, &out);
    assert_non_null(strstr(out.data, "--data-weights"));
    free(run);
    run = train("mixbadw2", data, "--steps 2 --data-weights 1,x", 1, &out);
    assert_non_null(strstr(out.data, "'x'"));
    free(run);
    run = train("mixbadw3", data, "--steps 2 --data-weights 0,0", 1, &out);
    assert_non_null(strstr(out.data, "sum to 0"));
    free(run);
    snprintf(data, sizeof data, "%s,", g_lm);
    run = train("mixbadlist", data, "--steps 2", 1, &out);
    assert_non_null(strstr(out.data, "empty"));
    free(run);
    lqa_buf_free(&out);
    free(bad);
}

/* One --data dir: no mixing fields, no mixing draws; the same stream as the first source of a
 * mix that never picks the second (weights 1,0), bit for bit. */
static void test_single_source_unchanged(void **state) {
    char *one = train("single", g_lm, "--steps 5 --save-every 5", 0, NULL);
    char *data = both_dirs();
    char *mix = train("mix10", data, "--steps 5 --save-every 5 --data-weights 1,0", 0, NULL);
    json_t *m1 = fixture_metrics(one), *m2 = fixture_metrics(mix);
    assert_int_equal(json_array_size(m1), 5);
    assert_int_equal(json_array_size(m2), 5);
    for (size_t s = 0; s < 5; s++) {
        json_t *x = json_array_get(m1, s), *y = json_array_get(m2, s);
        assert_null(json_object_get(x, "rows_per_source"));
        assert_int_equal(json_integer_value(json_array_get(json_object_get(y, "rows_per_source"), 1)), 0);
        double u = lqa_json_num(x, "loss", NAN), v = lqa_json_num(y, "loss", NAN);
        if (u != v) fail_msg("step %zu: loss %.9g alone vs %.9g in a 1,0 mix", s + 1, u, v);
    }
    json_decref(m1);
    json_decref(m2);
    char *ck = lqa_path_join(one, "checkpoints/step-00000005");
    json_t *st = load_json(ck, "state.json");
    assert_null(json_object_get(st, "sources"));
    assert_null(json_object_get(st, "mix_rng"));
    assert_non_null(json_object_get(st, "data"));
    json_decref(st);
    json_t *c = load_json(one, "config.json");
    assert_string_equal(lqa_json_str(json_object_get(c, "options"), "data", ""), g_lm);
    assert_string_equal(lqa_json_str(json_object_get(c, "data_info"), "kind", ""), "lm");
    assert_int_equal(lqa_json_int(json_object_get(c, "data_info"), "total_tokens", 0), LM_RECORDS * CTX);
    json_decref(c);
    free(ck);
    free(one);
    free(mix);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_follows_weights),
        cmocka_unit_test(test_mixed_run_shares_and_config),
        cmocka_unit_test(test_mixed_resume_is_exact),
        cmocka_unit_test(test_bad_sources_refused),
        cmocka_unit_test(test_single_source_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
