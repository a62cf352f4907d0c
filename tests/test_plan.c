/* test_plan.c: the memory planner (trainer/plan.h) and `lqa-sft plan`: on random model shapes the
 * fp32 plan is the run's own layout and workspace (kinds add up to the total, lora+'s gradients
 * are the embedding and norms counted from the tensor names, the workspace is the planner's);
 * the bf16 plan keeps bf16 layer inputs, is linear in ctx and refuses the CPU; LLaMA-2-7B LoRA+
 * S2 at 100k plans under 80 GB (issue 14's goal). The emulated run's allocation is compared with
 * the plan byte for byte in test_train_emu. */
#include "tests/testutil.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/rng.h"
#include "model/adapter.h"
#include "trainer/plan.h"
#include "model/presets.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

static lqa_config random_config(void) {
    int kv = 1 + (int)lqa_rng_below(&rng, 3), heads = kv * (1 + (int)lqa_rng_below(&rng, 3));
    lqa_config c = {.vocab_size = 50 + (int)lqa_rng_below(&rng, 300), .dim = heads * 2 * (2 + (int)lqa_rng_below(&rng, 8)),
                    .n_layers = 1 + (int)lqa_rng_below(&rng, 4), .n_heads = heads, .n_kv_heads = kv,
                    .hidden_dim = 8 + (int)lqa_rng_below(&rng, 60), .max_pos = 512, .rope_theta = 10000.0f,
                    .rope_scale = 1.0f, .rms_eps = 1e-5f, .tie_embeddings = (int)lqa_rng_below(&rng, 2)};
    return c;
}

static lqa_plan_opts random_opts(lqa_train_set train, lqa_plan_dtype dtype) {
    lqa_plan_opts o = {dtype, train, LQA_LORA_Q | LQA_LORA_V | (int)lqa_rng_below(&rng, 2) * LQA_LORA_UP,
                       1 + (int)lqa_rng_below(&rng, 8), 16.0f, 1 + (int)lqa_rng_below(&rng, 2),
                       8 * (2 + (int)lqa_rng_below(&rng, 30)), {0}, 1};
    o.step = (lqa_step_opts){(lqa_attn_mode)lqa_rng_below(&rng, 2), 0.25f, train, (int)lqa_rng_below(&rng, 2), 1, 0};
    return o;
}

static void test_fp32_plan_is_the_runs_layout(void **state) {
    for (int k = 0; k < 30; k++) {
        lqa_config c = random_config();
        lqa_train_set train = (lqa_train_set)(k % 3);
        lqa_plan_opts o = random_opts(train, LQA_PLAN_FP32);
        const lqa_backend *be = lqa_plan_backend(k % 2 ? "cuda" : "cpu");
        lqa_plan p;
        lqa_err err;
        assert_int_equal(lqa_plan_training(&c, &o, be, &p, &err), 0);
        assert_true(p.allocated);
        assert_true(p.total == p.weights + p.trainables + p.gradients + p.optimizer + p.checkpoints + p.workspace +
                                   p.runtime);
        lqa_model m;
        lqa_model_shape(&m, &c);
        if (train != LQA_TRAIN_FULL) lqa_model_shape_lora(&m, o.lora_targets, o.lora_rank, o.lora_alpha);
        size_t lp = 0;
        for (int t = 0; t < m.n_tensors; t++)
            if (lqa_is_lora_plus_tensor(m.tensors[t].name)) lp += m.tensors[t].numel;
        size_t lora = train == LQA_TRAIN_FULL ? 0 : m.n_lora;
        size_t trained = (train == LQA_TRAIN_FULL ? m.n_params : train == LQA_TRAIN_LORA_PLUS ? lp : 0) + lora;
        assert_true(p.n_trained == trained);
        assert_true(p.gradients == 4 * trained);
        assert_true(p.optimizer == 8 * trained);
        assert_true(p.weights + p.trainables == 4 * (m.n_params + m.n_lora));
        size_t ckpt = 0, ws = lqa_workspace_bytes_split(&m, be, o.micro_batch, o.ctx, &o.step, 1, &ckpt);
        assert_true(p.checkpoints == ckpt && p.workspace + ckpt == ws);
        assert_true(ckpt >= 4 * (size_t)(c.n_layers + 1) * o.micro_batch * o.ctx * c.dim);
        lqa_model_free(&m);
    }
}

static void test_bf16_plan(void **state) {
    for (int k = 0; k < 20; k++) {
        lqa_config c = random_config();
        lqa_plan_opts o = random_opts((lqa_train_set)(k % 3), LQA_PLAN_BF16);
        o.step.checkpointing = 1;
        lqa_plan p, p32;
        lqa_err err;
        assert_int_equal(lqa_plan_training(&c, &o, lqa_backend_cpu(), &p, &err), -1); /* a CUDA layout */
        assert_non_null(strstr(err.msg, "--device cuda"));
        const lqa_backend *be = lqa_plan_backend("cuda");
        assert_int_equal(lqa_plan_training(&c, &o, be, &p, &err), 0);
        assert_false(p.allocated);
        assert_true(p.checkpoints == 2 * (size_t)(c.n_layers + 1) * o.micro_batch * o.ctx * c.dim);
        lqa_plan_opts o32 = o;
        o32.dtype = LQA_PLAN_FP32;
        assert_int_equal(lqa_plan_training(&c, &o32, be, &p32, &err), 0);
        assert_true(p.trainables == p32.trainables && p.gradients == p32.gradients && p.optimizer == p32.optimizer);
        assert_true(p.weights < p32.weights + p32.trainables);
        assert_true(p.checkpoints < p32.checkpoints);
    }
    /* linear in ctx once the chunks (MLP rows, loss rows) are full */
    lqa_config c = lqa_preset_find("tinyllama-1.1b")->cfg;
    lqa_plan_opts o = random_opts(LQA_TRAIN_LORA_PLUS, LQA_PLAN_BF16);
    o.micro_batch = 1;
    o.step.checkpointing = 1;
    size_t tot[3];
    for (int i = 0; i < 3; i++) {
        lqa_plan p;
        lqa_err err;
        o.ctx = 16384 * (i + 1);
        assert_int_equal(lqa_plan_training(&c, &o, lqa_plan_backend("cuda"), &p, &err), 0);
        tot[i] = p.total;
    }
    assert_true(tot[2] - tot[1] == tot[1] - tot[0]);
}

/* Today's --dtype bf16 run (BF16_RUN, exact: test_train_emu compares it with the emulated run's
 * peak) keeps as checkpoints only the L + 1 layer inputs, in bf16 (no saved attention output or
 * lse: its recompute reruns the attention), with or without checkpointing. */
static void test_bf16_run_checkpoints(void **state) {
    for (int k = 0; k < 20; k++) {
        lqa_config c = random_config();
        lqa_plan_opts o = random_opts((lqa_train_set)(k % 2 ? LQA_TRAIN_LORA : LQA_TRAIN_LORA_PLUS), LQA_PLAN_BF16_RUN);
        const lqa_backend *be = lqa_plan_backend("cuda");
        lqa_plan p, p32;
        lqa_err err;
        assert_int_equal(lqa_plan_training(&c, &o, be, &p, &err), 0);
        assert_true(p.allocated);
        size_t N = (size_t)o.micro_batch * o.ctx, L = c.n_layers, D = c.dim;
        size_t al = 256, up = al - 1;
        size_t want = (2 * (L + 1) * N * D + up) / al * al; /* the planner's 256-byte alignment */
        if (p.checkpoints != want)
            fail_msg("case %d (L %zu, N %zu, D %zu, ckpt %d): checkpoints %zu, expected %zu", k, L, N, D,
                     o.step.checkpointing, p.checkpoints, want);
        lqa_plan_opts o32 = o;
        o32.dtype = LQA_PLAN_FP32;
        assert_int_equal(lqa_plan_training(&c, &o32, be, &p32, &err), 0);
        assert_true(p.checkpoints < p32.checkpoints);
        assert_true(p.trainables == p32.trainables && p.gradients == p32.gradients && p.optimizer == p32.optimizer);
    }
}

/* Issue 14's goal: LLaMA-2-7B, LoRA+, S2, ctx 100000 under 80 GB in bf16 (and not in fp32). */
static void test_llama2_7b_100k(void **state) {
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s plan --preset llama2-7b --ctx 100000 --device cuda --dtype bf16 --train "
                                        "lora+ --attn s2 --json",
                                  lqa_test_tool("lqa-sft")),
                     0);
    json_t *j = json_loads(out.data, 0, NULL);
    assert_non_null(j);
    double total = (double)lqa_json_int(j, "total", -1);
    print_message("# llama2-7b lora+ s2 100k bf16: %.3f GB\n", total / 1e9);
    assert_true(total > 40e9 && total < 80e9);
    assert_true(json_is_false(json_object_get(j, "allocated_by_run")));
    /* today's run's weights (the bf16 layout of model.h): every frozen GEMM weight in bf16, the
     * trained embedding and norms counted as trainables, no fp32 copy of anything frozen */
    const lqa_preset *pr = lqa_preset_find("llama2-7b");
    lqa_model shape;
    lqa_model_shape(&shape, &pr->cfg);
    size_t run_weights = (size_t)lqa_json_int(j, "bf16_run_weights", -1);
    double run_total = (double)lqa_json_int(j, "bf16_run_total", -1);
    print_message("# today's run: weights %.3f GB (bf16 of %zu frozen values), total %.3f GB\n", run_weights / 1e9,
                  shape.n_params16, run_total / 1e9);
    assert_true(run_total > total && run_total < 80e9);
    assert_true(run_weights == 2 * shape.n_params16);
    assert_true(shape.n_params16 + shape.n_lora_plus == shape.n_params);
    lqa_model_free(&shape);
    json_decref(j);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s plan --preset llama2-7b --ctx 100000 --device cuda --dtype fp32 --json",
                                  lqa_test_tool("lqa-sft")),
                     0);
    j = json_loads(out.data, 0, NULL);
    assert_non_null(j);
    assert_true((double)lqa_json_int(j, "total", -1) > 80e9);
    json_decref(j);
    /* the text form says plainly that no run allocates the bf16 layout yet; bf16 on the CPU is refused */
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s plan --preset tiny --ctx 64 --device cuda --dtype bf16",
                                  lqa_test_tool("lqa-sft")),
                     0);
    assert_non_null(strstr(out.data, "not allocated by any run yet"));
    lqa_buf_clear(&out);
    assert_int_not_equal(lqa_test_run(&out, "%s plan --preset tiny --ctx 64 --dtype bf16 2>&1",
                                      lqa_test_tool("lqa-sft")),
                         0);
    assert_non_null(strstr(out.data, "--device cuda"));
    assert_int_not_equal(lqa_test_run(&out, "%s plan --preset tiny --ctx 66 --attn s2 2>&1", lqa_test_tool("lqa-sft")),
                         0); /* the run's own S2 check */
    lqa_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fp32_plan_is_the_runs_layout, setup),
        cmocka_unit_test_setup(test_bf16_plan, setup),
        cmocka_unit_test_setup(test_bf16_run_checkpoints, setup),
        cmocka_unit_test_setup(test_llama2_7b_100k, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
