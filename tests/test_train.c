/* test_train.c: `lqa-sft train` end to end on a tiny model made by `lqa-sft init` and shards
 * written by the real shard writer: the loss falls well below its start, the run directory
 * holds what the design says, a run resumed from a mid-run checkpoint gives the same later
 * losses bit for bit, merge gives a model whose logits equal base+adapter's, grad writes the
 * loss and gradients lqa_model_step computes, and bad setups fail with clear errors. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/safetensors.h"
#include "tests/test_train_util.h"
#include "model/adapter.h"
#include "model/hfdir.h"
#include "trainer/train.h"

static const char *g_dir;
static char *g_tok, *g_model, *g_data;
static uint64_t g_seed;
enum { VOCAB = 512, CTX = 64, INIT_CTX = 32 };

static int setup(void **state) {
    g_seed = lqa_test_seed();
    g_dir = lqa_test_tmpdir();
    /* max_position_embeddings 32, trained at 64: position interpolation by 2 */
    uint8_t sha[32];
    fixture_tiny_model(g_dir, g_seed, VOCAB, INIT_CTX, &g_tok, &g_model, sha);
    g_data = lqa_path_join(g_dir, "data");
    fixture_shards(g_data, sha, VOCAB, 8, CTX, g_seed + 1);
    return 0;
}

static int teardown(void **state) {
    free(g_tok);
    free(g_model);
    free(g_data);
    return 0;
}

/* Runs lqa-sft train into g_dir/name with the common flags plus extra; returns the run dir. */
static char *train(const char *name, const char *extra, int want_rc, lqa_buf *out) {
    char *run = lqa_path_join(g_dir, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s train --model %s --data %s --out %s --ctx %d --micro-batch 2 --grad-accum 1 --threads 1 "
             "--warmup 2 --lr 1e-2 --seed %llu %s",
             lqa_test_tool("lqa-sft"), g_model, g_data, run, CTX, (unsigned long long)g_seed, extra);
    run_expect(want_rc, out, cmd);
    return run;
}

static int exists_in(const char *dir, const char *name) {
    char *p = lqa_path_join(dir, name);
    int e = lqa_path_exists(p);
    free(p);
    return e;
}

/* Mean loss of the first and the last three steps of a run's metrics (and checks each line). */
static void loss_ends(const char *run, int steps, int tokens, double *first, double *last) {
    json_t *m = fixture_metrics(run);
    assert_int_equal(json_array_size(m), steps);
    *first = lqa_json_num(json_array_get(m, 0), "loss", -1);
    *last = 0;
    for (int i = 0; i < steps; i++) {
        json_t *l = json_array_get(m, (size_t)i);
        assert_int_equal(lqa_json_int(l, "step", -1), i + 1);
        assert_true(lqa_json_num(l, "grad_norm", -1) >= 0);
        assert_true(lqa_json_num(l, "tokens_per_s", -1) > 0);
        assert_true(lqa_json_num(l, "lr", -1) > 0);
        assert_true(lqa_json_num(l, "elapsed", -1) >= 0);
        assert_int_equal(lqa_json_int(l, "tokens", -1), tokens);
        if (i >= steps - 3) *last += lqa_json_num(l, "loss", 0) / 3;
    }
    json_decref(m);
}

static void test_tiny_model_overfits(void **state) {
    char *run = train("overfit", "--train full --micro-batch 4 --lr 3e-3 --steps 40 --save-every 20", 0, NULL);
    double first, last;
    loss_ends(run, 40, 4 * CTX, &first, &last);
    fprintf(stderr, "# full: loss %.4f -> %.4f\n", first, last);
    assert_true(first > 4.0);
    assert_true(last < 0.3 * first);
    /* final/ of a full run is a model directory with the extended context */
    char *fin = lqa_path_join(run, "final");
    lqa_model m;
    lqa_err err;
    assert_int_equal(lqa_hf_load(fin, &m, &err), 0);
    assert_int_equal(m.cfg.max_pos, CTX);
    assert_true(fabsf(m.cfg.rope_scale - (float)CTX / INIT_CTX) < 1e-6f);
    assert_true(exists_in(fin, "tokenizer.model"));
    lqa_model_free(&m);
    free(fin);
    free(run);
}

static void test_lora_plus_run_dir(void **state) {
    char *run = train("loraplus", "--steps 30 --save-every 10 --keep-checkpoints 2", 0, NULL);
    double first, last;
    loss_ends(run, 30, 2 * CTX, &first, &last);
    fprintf(stderr, "# lora+: loss %.4f -> %.4f\n", first, last);
    assert_true(last < first - 0.5);
    /* config.json: every resolved setting, and the interpolated model config */
    json_t *c = load_json(run, "config.json");
    json_t *opts = json_object_get(c, "options"), *mc = json_object_get(c, "model_config");
    assert_int_equal(lqa_json_int(opts, "ctx", 0), CTX);
    assert_string_equal(lqa_json_str(opts, "train", ""), "lora+");
    assert_string_equal(lqa_json_str(opts, "attn", ""), "s2");
    assert_int_equal(lqa_json_int(mc, "max_position_embeddings", 0), CTX);
    assert_true(fabs(lqa_json_num(json_object_get(mc, "rope_scaling"), "factor", 0) - (double)CTX / INIT_CTX) < 1e-6);
    assert_int_equal(lqa_json_int(json_object_get(c, "derived"), "s2_group_size", 0), CTX / 4);
    json_decref(c);
    /* checkpoints: the newest two kept, latest names the last */
    char *ck = lqa_path_join(run, "checkpoints");
    assert_true(exists_in(ck, "step-00000030/state.safetensors"));
    assert_true(exists_in(ck, "step-00000020/state.json"));
    assert_false(exists_in(ck, "step-00000010"));
    /* final/: a PEFT adapter */
    char *fin = lqa_path_join(run, "final");
    json_t *ac = load_json(fin, "adapter_config.json");
    assert_string_equal(lqa_json_str(ac, "peft_type", ""), "LORA");
    assert_string_equal(lqa_json_str(ac, "task_type", ""), "CAUSAL_LM");
    assert_string_equal(lqa_json_str(ac, "bias", ""), "none");
    assert_string_equal(lqa_json_str(ac, "base_model_name_or_path", ""), g_model);
    assert_int_equal(lqa_json_int(ac, "r", 0), 8);
    assert_true(lqa_json_num(ac, "lora_alpha", 0) == 16.0);
    assert_int_equal(json_array_size(json_object_get(ac, "target_modules")), 4);
    json_decref(ac);
    lqa_st_reader r;
    lqa_err err;
    char *p = lqa_path_join(fin, "adapter_model.safetensors");
    assert_int_equal(lqa_st_open(&r, p, &err), 0);
    /* LoRA (2 layers x 4 targets x A, B) and, as PEFT modules_to_save, embedding and norms */
    assert_int_equal(r.n_tensors, 2 * 4 * 2 + 1 + 2 * 2 + 1);
    assert_non_null(lqa_st_find(&r, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"));
    assert_non_null(lqa_st_find(&r, "base_model.model.model.embed_tokens.weight"));
    assert_non_null(lqa_st_find(&r, "base_model.model.model.layers.0.post_attention_layernorm.weight"));
    lqa_st_close(&r);
    free(p);
    free(fin);
    free(ck);
    free(run);
}

/* Losses, grad norms and lrs of steps from..to of two metrics files are identical. */
static void assert_same_steps(json_t *a, json_t *b, int from, int to) {
    for (int s = from; s <= to; s++) {
        json_t *x = json_array_get(a, (size_t)s - 1), *y = json_array_get(b, (size_t)s - 1);
        assert_int_equal(lqa_json_int(x, "step", -1), s);
        assert_int_equal(lqa_json_int(y, "step", -1), s);
        static const char *const keys[] = {"loss", "grad_norm", "lr"};
        for (int k = 0; k < 3; k++) {
            double u = lqa_json_num(x, keys[k], NAN), v = lqa_json_num(y, keys[k], NAN);
            if (u != v) fail_msg("step %d: %s %.9g vs %.9g after resume", s, keys[k], u, v);
        }
    }
}

/* The final adapters of two runs are the same bytes. */
static void assert_same_adapters(const char *run_a, const char *run_b) {
    char *fa = lqa_path_join(run_a, "final/adapter_model.safetensors");
    char *fb = lqa_path_join(run_b, "final/adapter_model.safetensors");
    assert_same_file(fa, fb);
    free(fa);
    free(fb);
}

static void test_resume_is_exact(void **state) {
    const char *common = "--save-every 4 --schedule cosine --warmup 3";
    char flags[256];
    snprintf(flags, sizeof flags, "%s --steps 10", common);
    char *a = train("straight", flags, 0, NULL);
    /* the same run stopped after its checkpoint at step 4 ... */
    snprintf(flags, sizeof flags, "%s --steps 10", common);
    char *b = lqa_path_join(g_dir, "resumed");
    {
        char *tmp = train("resumed", "--save-every 4 --schedule cosine --warmup 3 --steps 10 --keep-checkpoints 0", 0, NULL);
        free(tmp);
    }
    /* ... simulated by rolling the run back to checkpoint 4 (as if killed after it) */
    char *latest = lqa_path_join(b, "checkpoints/latest");
    lqa_err err;
    assert_int_equal(lqa_write_file_atomic(latest, "step-00000004", 13, &err), 0);
    free(latest);
    lqa_buf out = {0};
    char *again = train("resumed", flags, 1, &out);
    assert_non_null(strstr(out.data, "--resume"));
    free(again);
    snprintf(flags, sizeof flags, "%s --steps 10 --resume", common);
    again = train("resumed", flags, 0, &out);
    free(again);
    json_t *ma = fixture_metrics(a), *mb = fixture_metrics(b);
    assert_int_equal(json_array_size(ma), 10);
    assert_int_equal(json_array_size(mb), 10);
    assert_same_steps(ma, mb, 1, 10);
    json_decref(ma);
    json_decref(mb);
    assert_same_adapters(a, b);
    /* resuming with other settings is refused */
    snprintf(flags, sizeof flags, "%s --steps 12 --resume --lora-rank 4", common);
    again = train("resumed", flags, 1, &out);
    assert_non_null(strstr(out.data, "lora_rank"));
    free(again);
    lqa_buf_free(&out);
    free(a);
    free(b);
}

static void assert_attn(json_t *metrics, int from, int to, const char *attn) {
    for (int s = from; s <= to; s++) {
        const char *got = lqa_json_str(json_array_get(metrics, (size_t)s - 1), "attn", "");
        if (strcmp(got, attn)) fail_msg("step %d: attn '%s', expected '%s'", s, got, attn);
    }
}

/* --full-attn-last N: S2-Attn steps, then N full-attention steps, each the same as the plain
 * run of that attention would have taken from the same state. */
static void test_full_attn_tail(void **state) {
    char *s2 = train("tail-s2", "--steps 4 --attn s2", 0, NULL);
    char *full = train("tail-full", "--steps 4 --attn full", 0, NULL);
    char *all = train("tail-all", "--steps 4 --attn s2 --full-attn-last 4", 0, NULL);
    char *half = train("tail-half", "--steps 4 --attn s2 --full-attn-last 2", 0, NULL);
    json_t *ms2 = fixture_metrics(s2), *mfull = fixture_metrics(full), *mall = fixture_metrics(all),
           *mhalf = fixture_metrics(half);
    assert_same_steps(mall, mfull, 1, 4);
    assert_same_adapters(all, full);
    assert_attn(mall, 1, 4, "full");
    assert_same_steps(mhalf, ms2, 1, 2);
    assert_attn(mhalf, 1, 2, "s2");
    assert_attn(mhalf, 3, 4, "full");
    assert_attn(ms2, 1, 4, "s2");
    /* from the same parameters, step 3's loss under full attention is not S2's */
    double l_half = lqa_json_num(json_array_get(mhalf, 2), "loss", NAN);
    double l_s2 = lqa_json_num(json_array_get(ms2, 2), "loss", NAN);
    assert_true(isfinite(l_half) && isfinite(l_s2) && l_half != l_s2);
    json_decref(ms2);
    json_decref(mfull);
    json_decref(mall);
    json_decref(mhalf);
    lqa_buf out = {0};
    char *r = train("tail-e1", "--steps 4 --attn full --full-attn-last 2", 1, &out);
    assert_non_null(strstr(out.data, "only with --attn s2"));
    free(r);
    r = train("tail-e2", "--steps 4 --full-attn-last 5", 1, &out);
    assert_non_null(strstr(out.data, "more than --steps"));
    free(r);
    lqa_buf_free(&out);
    free(s2);
    free(full);
    free(all);
    free(half);
}

/* A random batch of B x T tokens with a random loss mask (token 0 never a target). */
static void random_batch(lqa_rng *r, int B, int T, int32_t *tok, uint8_t *mask) {
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)lqa_rng_below(r, VOCAB);
        mask[i] = (i % T) > 0 && lqa_rng_below(r, 3) != 0;
    }
}

static void test_merge_matches_base_plus_adapter(void **state) {
    char *run = train("formerge", "--steps 6 --lr 3e-2", 0, NULL);
    char *fin = lqa_path_join(run, "final"), *merged = lqa_path_join(g_dir, "merged");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s -o %s", lqa_test_tool("lqa-sft"), g_model,
             fin, merged);
    run_expect(0, NULL, cmd);
    lqa_err err;
    lqa_model mm, base;
    assert_int_equal(lqa_hf_load(merged, &mm, &err), 0);
    assert_int_equal(mm.cfg.max_pos, CTX);
    assert_true(fabsf(mm.cfg.rope_scale - (float)CTX / INIT_CTX) < 1e-6f);
    assert_true(exists_in(merged, "tokenizer.model"));
    assert_int_equal(lqa_hf_load(g_model, &base, &err), 0);
    assert_int_equal(lqa_adapter_load(fin, &base, &err), 0);
    /* the adapter brings the position interpolation it was trained with */
    assert_int_equal(base.cfg.max_pos, CTX);
    assert_true(base.cfg.rope_scale == mm.cfg.rope_scale);
    /* the trained adapter is not a no-op */
    float bmax = 0;
    for (int i = 0; i < base.n_lora_tensors; i++) {
        const lqa_tensor_info *ti = &base.lora_tensors[i];
        if (!strstr(ti->name, "lora_B")) continue;
        for (size_t k = 0; k < ti->numel; k++) bmax = fmaxf(bmax, fabsf(base.lora[ti->offset + k]));
    }
    assert_true(bmax > 1e-4f);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 7);
    enum { B = 2, T = 48 };
    int32_t tok[B * T];
    uint8_t mask[B * T];
    random_batch(&r, B, T, tok, mask);
    lqa_batch b = {B, T, tok, mask, NULL};
    lqa_step_opts so = {LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA_PLUS, 0, 1, 0};
    float *la = lqa_model_logits(&mm, &b, &so), *lb = lqa_model_logits(&base, &b, &so);
    double maxdiff = 0, maxabs = 0;
    for (size_t i = 0; i < (size_t)B * T * VOCAB; i++) {
        maxdiff = fmax(maxdiff, fabs(la[i] - lb[i]));
        maxabs = fmax(maxabs, fabs(lb[i]));
    }
    fprintf(stderr, "# merged vs base+adapter logits: max diff %.3g (max |logit| %.3g)\n", maxdiff, maxabs);
    assert_true(maxdiff <= 1e-5 * (1 + maxabs));
    free(la);
    free(lb);
    lqa_model_free(&mm);
    lqa_model_free(&base);
    free(fin);
    free(merged);
    free(run);
}

static void write_batch_json(const char *path, int B, int T, const int32_t *tok, const uint8_t *mask) {
    json_t *jt = json_array(), *jm = json_array();
    for (int b = 0; b < B; b++) {
        json_t *rt = json_array(), *rm = json_array();
        for (int t = 0; t < T; t++) {
            json_array_append_new(rt, json_integer(tok[b * T + t]));
            json_array_append_new(rm, json_integer(mask[b * T + t]));
        }
        json_array_append_new(jt, rt);
        json_array_append_new(jm, rm);
    }
    json_t *j = json_pack("{s:o, s:o}", "tokens", jt, "loss_mask", jm);
    lqa_err err;
    assert_int_equal(lqa_json_write_file(path, j, &err), 0);
    json_decref(j);
}

typedef struct grad_check {
    lqa_st_reader *r;
    int n;
} grad_check;

static void check_one_grad(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora) {
    grad_check *gc = ctx;
    const lqa_st_tensor *t = lqa_st_find(gc->r, ti->name);
    if (!t) fail_msg("gradient of %s missing", ti->name);
    assert_int_equal(t->numel, ti->numel);
    float *v = lqa_malloc(t->numel * sizeof(float));
    lqa_st_to_f32(t, v);
    double scale = 0;
    for (size_t k = 0; k < t->numel; k++) scale = fmax(scale, fabs(grad[k]));
    for (size_t k = 0; k < t->numel; k++)
        if (fabs(v[k] - grad[k]) > 1e-5 * (scale + 1e-6)) fail_msg("%s[%zu]: %g vs %g", ti->name, k, v[k], grad[k]);
    free(v);
    gc->n++;
}

/* grad's file against an in-process lqa_model_step on the same model, adapter and batch. */
static void check_grad_cli(const char *adapter, lqa_train_set set, const char *flags) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 11);
    enum { B = 2, T = 16 };
    int32_t tok[B * T];
    uint8_t mask[B * T];
    random_batch(&r, B, T, tok, mask);
    char *bp = lqa_path_join(g_dir, "batch.json"), *gp = lqa_path_join(g_dir, "grads.safetensors");
    write_batch_json(bp, B, T, tok, mask);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s grad --model %s %s%s --batch %s -o %s --threads 1 --seed %llu %s",
             lqa_test_tool("lqa-sft"), g_model, adapter ? "--adapter " : "", adapter ? adapter : "", bp, gp,
             (unsigned long long)g_seed, flags);
    run_expect(0, NULL, cmd);
    lqa_err err;
    lqa_model m;
    lqa_train_opts o; /* the defaults grad ran with (q,k,v,o, rank 8, alpha 16) */
    lqa_train_opts_default(&o);
    o.model_dir = g_model;
    o.adapter_dir = adapter;
    o.train = set;
    o.seed = g_seed;
    assert_int_equal(lqa_load_for_training(&o, &m, &err), 0);
    lqa_grads g;
    lqa_grads_alloc(&g, &m, set);
    lqa_batch b = {B, T, tok, mask, NULL};
    lqa_step_opts so = {LQA_ATTN_S2, 0.25f, set, 1, 1, 0};
    float loss = lqa_model_step(&m, &b, &so, &g);
    lqa_st_reader rd;
    assert_int_equal(lqa_st_open(&rd, gp, &err), 0);
    const lqa_st_tensor *lt = lqa_st_find(&rd, "loss");
    assert_non_null(lt);
    float file_loss;
    lqa_st_to_f32(lt, &file_loss);
    assert_true(fabsf(file_loss - loss) <= 1e-6f * fabsf(loss));
    grad_check gc = {&rd, 0};
    lqa_for_each_trainable(&m, set, &g, check_one_grad, &gc);
    assert_int_equal(rd.n_tensors, gc.n + 1); /* nothing else in the file */
    lqa_st_close(&rd);
    lqa_grads_free(&g, lqa_model_backend(&m));
    lqa_model_free(&m);
    free(bp);
    free(gp);
}

static void test_grad_matches_model_step(void **state) {
    check_grad_cli(NULL, LQA_TRAIN_LORA_PLUS, "");
    check_grad_cli(NULL, LQA_TRAIN_LORA, "--train lora");
    check_grad_cli(NULL, LQA_TRAIN_FULL, "--train full");
    char *run = train("forgrad", "--steps 3 --lr 3e-2", 0, NULL);
    char *fin = lqa_path_join(run, "final");
    check_grad_cli(fin, LQA_TRAIN_LORA_PLUS, "");
    free(fin);
    free(run);
}

/* --pack: rows hold as many whole records as fit (a record that does not fit waits for the next
 * row), and a packed run resumes exactly too. */
static void test_pack_fills_rows_and_resumes(void **state) {
    uint8_t sha[32];
    fixture_sha(g_tok, sha);
    char *short_data = lqa_path_join(g_dir, "shortdata");
    fixture_shards(short_data, sha, VOCAB, 13, 20, g_seed + 5);
    char flags[1024];
    snprintf(flags, sizeof flags, "--data %s --pack --steps 6 --save-every 3 --keep-checkpoints 0", short_data);
    char *a = train("packed", flags, 0, NULL);
    json_t *m = fixture_metrics(a);
    assert_int_equal(json_array_size(m), 6);
    /* 3 records of 20 tokens fit a 64-token row, the 4th goes to the next row */
    for (int i = 0; i < 6; i++) assert_int_equal(lqa_json_int(json_array_get(m, (size_t)i), "tokens", 0), 2 * 3 * 20);
    char *latest = lqa_path_join(a, "checkpoints/latest");
    lqa_err err;
    /* roll the same run back to its checkpoint at step 3 and resume: steps 4..6 must repeat */
    char *b = lqa_path_join(g_dir, "packed2");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", a, b);
    run_expect(0, NULL, cmd);
    char *latest_b = lqa_path_join(b, "checkpoints/latest");
    assert_int_equal(lqa_write_file_atomic(latest_b, "step-00000003", 13, &err), 0);
    snprintf(flags, sizeof flags, "--data %s --pack --steps 6 --save-every 3 --keep-checkpoints 0 --resume", short_data);
    char *again = train("packed2", flags, 0, NULL);
    json_t *mb = fixture_metrics(b);
    assert_int_equal(json_array_size(mb), 6);
    assert_same_steps(m, mb, 1, 6);
    json_decref(m);
    json_decref(mb);
    free(again);
    free(latest);
    free(latest_b);
    free(a);
    free(b);
    free(short_data);
}

static void test_clear_errors(void **state) {
    lqa_buf out = {0};
    /* data tokenized with another tokenizer */
    uint8_t other[32];
    for (int i = 0; i < 32; i++) other[i] = (uint8_t)(g_seed >> (i % 8)) ^ (uint8_t)i;
    char *bad = lqa_path_join(g_dir, "otherdata");
    fixture_shards(bad, other, VOCAB, 4, CTX, g_seed + 3);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/e1 --ctx %d --steps 2", lqa_test_tool("lqa-sft"),
             g_model, bad, g_dir, CTX);
    run_expect(1, &out, cmd);
    assert_non_null(strstr(out.data, "tokenizer"));
    free(bad);
    /* a ctx S2-Attn cannot split: the message says what would work */
    char *r = train("e2", "--steps 2", 0, NULL);
    free(r);
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/e3 --ctx 60 --steps 2", lqa_test_tool("lqa-sft"),
             g_model, g_data, g_dir);
    run_expect(1, &out, cmd);
    assert_non_null(strstr(out.data, "64"));
    /* not enough memory: refused before allocating */
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s/e4 --ctx %d --max-memory 0.0001",
             lqa_test_tool("lqa-sft"), g_model, g_data, g_dir, CTX);
    run_expect(1, &out, cmd);
    assert_non_null(strstr(out.data, "GiB"));
    /* an existing run is not overwritten */
    r = train("e2", "--steps 2", 1, &out);
    assert_non_null(strstr(out.data, "already holds a run"));
    free(r);
    lqa_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model_overfits),
        cmocka_unit_test(test_lora_plus_run_dir),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test(test_full_attn_tail),
        cmocka_unit_test(test_merge_matches_base_plus_adapter),
        cmocka_unit_test(test_grad_matches_model_step),
        cmocka_unit_test(test_pack_fills_rows_and_resumes),
        cmocka_unit_test(test_clear_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
