/* test_sft_cli.c: the lqa-sft command line: --help for every command names the design's
 * options, usage errors exit 2 with a message, bad BATCH.json and missing adapters exit 1 with
 * the file and place, and no output file is left behind after a failure. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test_train_util.h"
#include "model/hfdir.h"

static char *g_model;
static const char *g_dir;

static int setup(void **state) {
    g_dir = lqa_test_tmpdir();
    const char *tok = fixture_tokenizer(g_dir, "tok.model", lqa_test_seed(), 400);
    g_model = fixture_model(g_dir, "model", tok, "--preset tiny");
    return 0;
}

static int teardown(void **state) {
    free(g_model);
    return 0;
}

static void expect(int rc, const char *needle, const char *fmt, const char *arg) {
    char args[2048], cmd[4096];
    snprintf(args, sizeof args, fmt, arg);
    snprintf(cmd, sizeof cmd, "%s %s", lqa_test_tool("lqa-sft"), args);
    lqa_buf out = {0};
    run_expect(rc, &out, cmd);
    if (needle && !strstr(out.data ? out.data : "", needle)) fail_msg("'%s': output lacks '%s':\n%s", cmd, needle, out.data);
    lqa_buf_free(&out);
}

static void test_help_names_the_contract_options(void **state) {
    static const char *const train_opts[] = {"--model", "--data", "--out", "--ctx", "--train", "--attn", "--group-ratio",
                                             "--lora-rank", "--lora-alpha", "--lora-targets", "--lr", "--warmup",
                                             "--steps", "--micro-batch", "--grad-accum", "--schedule", "--seed",
                                             "--resume", "--device", "--threads", "--save-every", "--max-grad-norm"};
    lqa_buf out = {0};
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s train --help", lqa_test_tool("lqa-sft"));
    run_expect(0, &out, cmd);
    for (size_t i = 0; i < sizeof train_opts / sizeof *train_opts; i++)
        if (!strstr(out.data, train_opts[i])) fail_msg("train --help lacks %s", train_opts[i]);
    expect(0, "--preset", "init --help%s", "");
    expect(0, "llama2-7b", "init --help%s", "");
    expect(0, "--adapter", "merge --help%s", "");
    expect(0, "--batch", "grad --help%s", "");
    expect(0, "grad", "--help%s", "");
    lqa_buf_free(&out);
}

static void test_usage_errors(void **state) {
    expect(2, "unknown command", "frobnicate%s", "");
    expect(2, "required", "train --model %s", g_model);
    expect(2, "--train", "train --model x --data y --out z --ctx 8 --train qlora%s", "");
    expect(2, "--attn", "train --model x --data y --out z --ctx 8 --attn sparse%s", "");
    expect(2, "--lora-targets", "train --model x --data y --out z --ctx 8 --lora-targets q,zz%s", "");
    expect(2, "zz", "train --model x --data y --out z --ctx 8 --lora-targets q,zz%s", "");
    expect(2, "--ctx", "train --model x --data y --out z --ctx abc%s", "");
    expect(2, "preset", "init --preset huge --tokenizer t -o %s/m", g_dir);
    expect(2, NULL, "merge --model %s", g_model);
}

/* A value holding a newline cannot forge an "error:" line: usage errors, getopt's refusals and
 * unknown names and commands print what the user gave escaped. */
static void test_newline_in_argument_escaped(void **state) {
    static const char *const cases[] = {
        "init --preset %s --tokenizer t -o m",
        "init --preset tiny --ctx %s --tokenizer t -o m",
        "train --model x --data y --out z --ctx 8 --train %s",
        "train --model x --data y --out z --ctx 8 --%s",
        "merge --model x --dtype %s -o y",
        "plan --ctx 8 --preset %s",
        "plan --ctx 8 --preset tiny --device %s",
        "%s",
    };
    lqa_test_cli_not_forged("lqa-sft", cases, sizeof cases / sizeof *cases);
}

static void write_text(const char *name, const char *text) {
    char *p = lqa_path_join(g_dir, name);
    lqa_test_write(p, text, strlen(text));
    free(p);
}

static void test_bad_batch_json(void **state) {
    char out_path[1024], args[2048];
    snprintf(out_path, sizeof out_path, "%s/g.safetensors", g_dir);
    write_text("ragged.json", "{\"tokens\": [[1,2,3,4],[1,2,3]], \"loss_mask\": [[0,1,1,1],[0,1,1]]}");
    snprintf(args, sizeof args, "grad --model %s --attn full --batch %s/ragged.json -o %s", g_model, g_dir, out_path);
    expect(1, "tokens[1]", "%s", args);
    write_text("range.json", "{\"tokens\": [[1,2,99999,4]], \"loss_mask\": [[0,1,1,1]]}");
    snprintf(args, sizeof args, "grad --model %s --attn full --batch %s/range.json -o %s", g_model, g_dir, out_path);
    expect(1, "tokens[0][2]", "%s", args);
    write_text("mask.json", "{\"tokens\": [[1,2,3,4]], \"loss_mask\": [[0,1,2,1]]}");
    snprintf(args, sizeof args, "grad --model %s --attn full --batch %s/mask.json -o %s", g_model, g_dir, out_path);
    expect(1, "loss_mask[0][2]", "%s", args);
    write_text("syntax.json", "{\"tokens\": [[1,2,3,4]],\n \"loss_mask\": [[0,1,1,1]");
    snprintf(args, sizeof args, "grad --model %s --attn full --batch %s/syntax.json -o %s", g_model, g_dir, out_path);
    expect(1, "syntax.json:", "%s", args);
    /* a batch S2-Attn cannot split says which lengths work */
    write_text("odd.json", "{\"tokens\": [[1,2,3,4,5,6,7,8,9,10]], \"loss_mask\": [[0,1,1,1,1,1,1,1,1,1]]}");
    snprintf(args, sizeof args, "grad --model %s --batch %s/odd.json -o %s", g_model, g_dir, out_path);
    expect(1, "ctx values that work", "%s", args);
    assert_false(lqa_path_exists(out_path));
}

static void test_missing_adapter_and_model(void **state) {
    char args[2048];
    snprintf(args, sizeof args, "merge --model %s --adapter %s/nowhere -o %s/merged", g_model, g_dir, g_dir);
    expect(1, "adapter_config.json", "%s", args);
    snprintf(args, sizeof args, "merge --model %s/nomodel --adapter %s -o %s/merged", g_dir, g_dir, g_dir);
    expect(1, "config.json", "%s", args);
    char merged[1024];
    snprintf(merged, sizeof merged, "%s/merged", g_dir);
    assert_false(lqa_path_exists(merged));
}

/* Runs lqa-sft bench on the tiny model and returns its JSON line. */
static json_t *bench(const char *attn) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s bench --model %s --ctx 64 --steps 1 --threads 1 --attn %s", lqa_test_tool("lqa-sft"),
             g_model, attn);
    lqa_buf out = {0};
    if (lqa_test_run(&out, "%s 2>/dev/null", cmd) != 0) fail_msg("%s failed: %s", cmd, out.data);
    json_t *j = json_loads(out.data, 0, NULL);
    if (!j) fail_msg("%s: not one JSON line: %s", cmd, out.data);
    lqa_buf_free(&out);
    return j;
}

static void test_bench_counts_attention_flops(void **state) {
    json_t *s2 = bench("s2"), *full = bench("full");
    /* tiny: 2 layers, 4 heads of 16; checkpointing: forward twice + backward 2.5x the forward */
    double pairs_full = 4 * (64.0 * 65 / 2);
    double pairs_s2 = 2 * (4 * (16.0 * 17 / 2)) + 2 * (3 * (16.0 * 17 / 2) + 2 * (8.0 * 9 / 2));
    double per_pair = 2 * 4 * 16 * 4.5 / 1e9;
    /* (printed with 6 significant digits) */
    assert_true(fabs(lqa_json_num(full, "attn_gflop_per_step", 0) / (pairs_full * per_pair) - 1) < 1e-5);
    assert_true(fabs(lqa_json_num(s2, "attn_gflop_per_step", 0) / (pairs_s2 * per_pair) - 1) < 1e-5);
    /* everything else is the same work */
    double rest_s2 = lqa_json_num(s2, "gflop_per_step", 0) - lqa_json_num(s2, "attn_gflop_per_step", 0);
    double rest_full = lqa_json_num(full, "gflop_per_step", 0) - lqa_json_num(full, "attn_gflop_per_step", 0);
    assert_true(rest_s2 > 0 && fabs(rest_s2 / rest_full - 1) < 1e-4);
    assert_true(lqa_json_num(s2, "tokens_per_s", 0) > 0 && lqa_json_num(s2, "peak_rss_mib", 0) > 0);
    assert_true(lqa_json_num(s2, "loss", 0) > 1.0);
    json_decref(s2);
    json_decref(full);
}

/* merge --ctx without an adapter: the base model position-interpolated, weights unchanged. */
static void test_merge_ctx_only_interpolates(void **state) {
    lqa_model base, pi;
    lqa_err err;
    assert_int_equal(lqa_hf_load(g_model, &base, &err), 0);
    int factor = 2 + (int)(lqa_test_seed() % 3), ctx = factor * base.cfg.max_pos;
    char args[2048], dir[1024];
    snprintf(dir, sizeof dir, "%s/base-pi", g_dir);
    snprintf(args, sizeof args, "merge --model %s --ctx %d -o %s", g_model, ctx, dir);
    expect(0, NULL, "%s", args);
    assert_int_equal(lqa_hf_load(dir, &pi, &err), 0);
    assert_int_equal(pi.cfg.max_pos, ctx);
    assert_true(fabsf(pi.cfg.rope_scale - (float)factor * base.cfg.rope_scale) < 1e-6f);
    assert_int_equal(pi.n_params, base.n_params);
    assert_memory_equal(pi.params, base.params, base.n_params * sizeof(float));
    lqa_model_free(&base);
    lqa_model_free(&pi);
    /* neither an adapter nor a context: nothing to merge */
    snprintf(args, sizeof args, "merge --model %s -o %s/none", g_model, g_dir);
    expect(2, "--ctx", "%s", args);
}

/* merge writes a complete folder: the base's tokenizer side files carried over byte for byte
 * (with tokenizer.json, which lqa never makes), and, from a base without tokenizer.model, the
 * side files it has plus a warning saying the folder has no tokenizer. */
static void test_merge_carries_tokenizer_files(void **state) {
    char base[1024], out[1024], args[4096];
    snprintf(base, sizeof base, "%s/tokbase", g_dir);
    snprintf(out, sizeof out, "%s/tokmerged", g_dir);
    snprintf(args, sizeof args, "cp -r %s %s", g_model, base);
    assert_int_equal(system(args), 0);
    char text[80];
    int n = snprintf(text, sizeof text, "{\"version\": \"1.0\", \"seed\": %llu}", (unsigned long long)lqa_test_seed());
    char *tj = lqa_path_join(base, "tokenizer.json");
    lqa_test_write(tj, text, (size_t)n);
    snprintf(args, sizeof args, "merge --model %s --ctx 2048 -o %s", base, out);
    expect(0, NULL, "%s", args);
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json", "tokenizer.model"};
    for (int i = 0; i < 5; i++) {
        char *a = lqa_path_join(base, files[i]), *b = lqa_path_join(out, files[i]);
        assert_same_file(a, b);
        free(a), free(b);
    }
    char *tm = lqa_path_join(base, "tokenizer.model");
    assert_int_equal(unlink(tm), 0);
    snprintf(out, sizeof out, "%s/tokmerged2", g_dir);
    snprintf(args, sizeof args, "merge --model %s --ctx 2048 -o %s", base, out);
    expect(0, "without a tokenizer", "%s", args);
    char *b = lqa_path_join(out, "tokenizer.json");
    assert_same_file(tj, b);
    free(b), free(tj), free(tm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_names_the_contract_options),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_newline_in_argument_escaped),
        cmocka_unit_test(test_bad_batch_json),
        cmocka_unit_test(test_missing_adapter_and_model),
        cmocka_unit_test(test_merge_ctx_only_interpolates),
        cmocka_unit_test(test_merge_carries_tokenizer_files),
        cmocka_unit_test(test_bench_counts_attention_flops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
