/* test_hfdir.c: HF model directories and PEFT adapters: config.json round trips (GQA, tied
 * embeddings, rope_scaling), models saved as F32/F16/BF16 and sharded load back as the dtype
 * rounds, `lqa-sft init` takes the vocabulary from the tokenizer, and clear errors for bad
 * configs, missing or misshapen tensors, missing adapter files and adapters of another base. */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/safetensors.h"
#include "tests/test_train_fixture.h"
#include "trainer/adapter.h"
#include "trainer/hfdir.h"
#include "trainer/presets.h"

static uint64_t g_seed;

/* A random small valid config. */
static lqa_config random_config(lqa_rng *r) {
    lqa_config c;
    memset(&c, 0, sizeof c);
    int kv = 1 + (int)lqa_rng_below(r, 2), groups = 1 + (int)lqa_rng_below(r, 2);
    c.n_kv_heads = kv;
    c.n_heads = kv * groups;
    c.dim = c.n_heads * 2 * (2 + (int)lqa_rng_below(r, 4));
    c.n_layers = 1 + (int)lqa_rng_below(r, 3);
    c.hidden_dim = 8 + (int)lqa_rng_below(r, 40);
    c.vocab_size = 40 + (int)lqa_rng_below(r, 100);
    c.max_pos = 16 << lqa_rng_below(r, 6);
    c.rope_theta = lqa_rng_below(r, 2) ? 10000.0f : 500000.0f;
    c.rope_scale = lqa_rng_below(r, 2) ? 1.0f : (float)(2 + lqa_rng_below(r, 6));
    c.rms_eps = lqa_rng_below(r, 2) ? 1e-5f : 1e-6f;
    c.tie_embeddings = (int)lqa_rng_below(r, 2);
    c.bos_id = 1;
    c.eos_id = 2 + (int)lqa_rng_below(r, 5);
    return c;
}

static void assert_config_equal(const lqa_config *a, const lqa_config *b) {
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->dim, b->dim);
    assert_int_equal(a->n_layers, b->n_layers);
    assert_int_equal(a->n_heads, b->n_heads);
    assert_int_equal(a->n_kv_heads, b->n_kv_heads);
    assert_int_equal(a->hidden_dim, b->hidden_dim);
    assert_int_equal(a->max_pos, b->max_pos);
    assert_true(a->rope_theta == b->rope_theta);
    assert_true(a->rope_scale == b->rope_scale);
    assert_true(a->rms_eps == b->rms_eps);
    assert_int_equal(a->tie_embeddings, b->tie_embeddings);
    assert_int_equal(a->bos_id, b->bos_id);
    assert_int_equal(a->eos_id, b->eos_id);
}

static void test_config_round_trip(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "cfg");
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(dir, &err), 0);
    for (int i = 0; i < 20; i++) {
        lqa_config c = random_config(&r), back;
        assert_int_equal(lqa_hf_write_config(dir, &c, LQA_ST_BF16, &err), 0);
        assert_int_equal(lqa_hf_read_config(dir, &back, &err), 0);
        assert_config_equal(&c, &back);
    }
    /* what transformers reads: rope_scaling as {"type": "linear", "factor": F} or null */
    lqa_config c = random_config(&r);
    c.rope_scale = 4;
    json_t *j = lqa_hf_config_json(&c, LQA_ST_F32);
    json_t *rs = json_object_get(j, "rope_scaling");
    assert_string_equal(lqa_json_str(rs, "type", ""), "linear");
    assert_true(lqa_json_num(rs, "factor", 0) == 4.0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "architectures"), 0)), "LlamaForCausalLM");
    json_decref(j);
    c.rope_scale = 1;
    j = lqa_hf_config_json(&c, LQA_ST_F32);
    assert_true(json_is_null(json_object_get(j, "rope_scaling")));
    json_decref(j);
    free(dir);
}

/* Writes config.json from text and expects lqa_hf_read_config to fail naming `needle`. */
static void expect_config_error(const char *dir, const char *text, const char *needle) {
    char *p = lqa_path_join(dir, "config.json");
    lqa_test_write(p, text, strlen(text));
    lqa_config c;
    lqa_err err = {{0}};
    assert_int_equal(lqa_hf_read_config(dir, &c, &err), -1);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "config.json")) fail_msg("'%s' lacks '%s'", err.msg, needle);
    free(p);
}

static void test_config_errors(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "badcfg");
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(dir, &err), 0);
    const char *base = "\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"intermediate_size\": 40";
    char text[512];
    snprintf(text, sizeof text, "{%s}", base);
    expect_config_error(dir, text, "num_attention_heads");
    snprintf(text, sizeof text, "{%s, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}", base);
    expect_config_error(dir, text, "num_key_value_heads 3");
    snprintf(text, sizeof text, "{%s, \"num_attention_heads\": 4, \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}",
             base);
    expect_config_error(dir, text, "dynamic");
    snprintf(text, sizeof text, "{%s, \"num_attention_heads\": 5}", base);
    expect_config_error(dir, text, "divisible");
    expect_config_error(dir, "{\"hidden_size\": ", "invalid JSON");
    /* a valid one, with llama-3 style eos list and the newer rope_type key */
    snprintf(text, sizeof text, "{%s, \"num_attention_heads\": 4, \"eos_token_id\": [7, 9], "
             "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}}", base);
    char *p = lqa_path_join(dir, "config.json");
    lqa_test_write(p, text, strlen(text));
    lqa_config c;
    assert_int_equal(lqa_hf_read_config(dir, &c, &err), 0);
    assert_int_equal(c.eos_id, 7);
    assert_int_equal(c.n_kv_heads, 4);
    assert_true(c.rope_scale == 8.0f);
    free(p);
    free(dir);
}

static void random_model(lqa_model *m, lqa_rng *r) {
    lqa_config c = random_config(r);
    lqa_model_alloc(m, &c);
    lqa_model_init_random(m, lqa_rng_u64(r));
}

static void test_save_load_each_dtype_and_sharded(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 1);
    lqa_err err;
    for (int trial = 0; trial < 6; trial++) {
        lqa_model m, back;
        random_model(&m, &r);
        lqa_st_dtype dt = (lqa_st_dtype)(trial % 3);
        /* odd trials: shards small enough that every few tensors start a new file */
        size_t shard = trial % 2 ? 2048 : 0;
        char name[32];
        snprintf(name, sizeof name, "model%d", trial);
        char *dir = lqa_path_join(lqa_test_tmpdir(), name);
        lqa_hf_save_opts so = {dt, shard, NULL};
        assert_int_equal(lqa_hf_save(dir, &m, &so, &err), 0);
        char *index = lqa_path_join(dir, "model.safetensors.index.json");
        /* HF writes an index only when the weights span more than one file */
        size_t elem = dt == LQA_ST_F32 ? 4 : 2;
        assert_int_equal(lqa_path_exists(index), shard != 0 && m.n_params * elem > shard);
        assert_int_equal(lqa_hf_load(dir, &back, &err), 0);
        assert_config_equal(&m.cfg, &back.cfg);
        assert_int_equal(back.n_params, m.n_params);
        for (size_t i = 0; i < m.n_params; i++) {
            float want = dt == LQA_ST_F32 ? m.params[i]
                       : dt == LQA_ST_F16 ? lqa_f16_to_f32(lqa_f32_to_f16(m.params[i]))
                                          : lqa_bf16_to_f32(lqa_f32_to_bf16(m.params[i]));
            if (want != back.params[i]) fail_msg("param %zu: %g vs %g (dtype %d)", i, want, back.params[i], dt);
        }
        lqa_model_free(&m);
        lqa_model_free(&back);
        free(index);
        free(dir);
    }
}

static void test_missing_and_misshapen_tensors(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 2);
    lqa_model m, back;
    random_model(&m, &r);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "broken");
    lqa_err err;
    assert_int_equal(lqa_hf_save(dir, &m, NULL, &err), 0);
    /* drop one tensor: rewrite the weights without it */
    int drop = 1 + (int)lqa_rng_below(&r, (uint64_t)(m.n_tensors - 1));
    lqa_st_entry *e = lqa_calloc((size_t)m.n_tensors, sizeof *e);
    int n = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        if (i == drop) continue;
        e[n].name = m.tensors[i].name;
        e[n].ndim = m.tensors[i].ndim;
        for (int d = 0; d < e[n].ndim; d++) e[n].shape[d] = m.tensors[i].shape[d];
        e[n++].data = m.params + m.tensors[i].offset;
    }
    char *w = lqa_path_join(dir, "model.safetensors");
    assert_int_equal(lqa_st_write(w, e, n, LQA_ST_F32, NULL, &err), 0);
    assert_int_equal(lqa_hf_load(dir, &back, &err), -1);
    assert_non_null(strstr(err.msg, m.tensors[drop].name));
    assert_non_null(strstr(err.msg, "missing"));
    /* the same tensor with a transposed shape */
    e[n] = e[0];
    e[n].name = m.tensors[drop].name;
    e[n].ndim = 2;
    e[n].shape[0] = m.tensors[drop].ndim == 2 ? m.tensors[drop].shape[1] : 1;
    e[n].shape[1] = m.tensors[drop].shape[0];
    e[n].data = m.params + m.tensors[drop].offset;
    if (e[n].shape[0] == e[n].shape[1]) e[n].shape[0]++;
    float *big = lqa_calloc((size_t)(e[n].shape[0] * e[n].shape[1]), sizeof(float));
    e[n].data = big;
    assert_int_equal(lqa_st_write(w, e, n + 1, LQA_ST_F32, NULL, &err), 0);
    assert_int_equal(lqa_hf_load(dir, &back, &err), -1);
    assert_non_null(strstr(err.msg, "shape"));
    free(big);
    free(w);
    free(e);
    free(dir);
    lqa_model_free(&m);
}

static void test_adapter_round_trip_and_mismatch(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 3);
    lqa_model m, base2, other;
    random_model(&m, &r);
    char *bdir = lqa_path_join(lqa_test_tmpdir(), "abase");
    lqa_err err;
    assert_int_equal(lqa_hf_save(bdir, &m, NULL, &err), 0);
    int targets = 1 + (int)lqa_rng_below(&r, 127);
    int rank = 1 + (int)lqa_rng_below(&r, 4);
    lqa_model_add_lora(&m, targets, rank, 2.0f * rank, lqa_rng_u64(&r));
    for (size_t i = 0; i < m.n_lora; i++) m.lora[i] = lqa_rng_normal(&r);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.5f; /* only embedding/norms are saved */
    char *adir = lqa_path_join(lqa_test_tmpdir(), "adapter");
    assert_int_equal(lqa_adapter_save(adir, &m, LQA_TRAIN_LORA_PLUS, bdir, &err), 0);
    /* the adapter says lqa_training.json belongs with it (lqa-sft train writes both, final/ whole):
     * without the record the load is refused, so a merge never loses the run's rope scaling */
    assert_int_equal(lqa_hf_load(bdir, &base2, &err), 0);
    assert_int_equal(lqa_adapter_load(adir, &base2, &err), -1);
    assert_non_null(strstr(err.msg, "lqa_training.json"));
    lqa_model_free(&base2);
    char *rec = lqa_path_join(adir, "lqa_training.json");
    char rec_text[128];
    snprintf(rec_text, sizeof rec_text, "{\"rope_scale\": 1, \"max_position_embeddings\": %d}", m.cfg.max_pos);
    assert_int_equal(lqa_write_file_atomic(rec, rec_text, strlen(rec_text), &err), 0);
    free(rec);
    lqa_adapter_config ac;
    assert_int_equal(lqa_adapter_read_config(adir, &ac, &err), 0);
    assert_int_equal(ac.rank, rank);
    assert_int_equal(ac.targets, targets);
    assert_string_equal(ac.base_model, bdir);
    assert_int_equal(lqa_hf_load(bdir, &base2, &err), 0);
    assert_int_equal(lqa_adapter_load(adir, &base2, &err), 0);
    assert_int_equal(base2.n_lora, m.n_lora);
    assert_memory_equal(base2.lora, m.lora, m.n_lora * sizeof(float));
    for (int i = 0; i < m.n_tensors; i++) {
        const lqa_tensor_info *ti = &m.tensors[i];
        int trained = lqa_is_lora_plus_tensor(ti->name);
        /* tied models share embed_tokens with the head; untied heads stay the base's */
        float want = trained ? m.params[ti->offset] : m.params[ti->offset] - 0.5f;
        assert_true(fabsf(base2.params[ti->offset] - want) < 1e-6f);
    }
    /* an adapter for another base model (other shapes) is refused, naming a tensor */
    lqa_rng r2;
    lqa_rng_seed(&r2, g_seed + 99);
    do {
        random_model(&other, &r2);
        if (other.cfg.dim != m.cfg.dim || other.cfg.n_layers < m.cfg.n_layers) break;
        lqa_model_free(&other);
    } while (1);
    int rc = lqa_adapter_load(adir, &other, &err);
    assert_int_equal(rc, -1);
    assert_true(strstr(err.msg, "another base model") || strstr(err.msg, "shape"));
    lqa_model_free(&other);
    /* a missing file */
    char *p = lqa_path_join(adir, "adapter_model.safetensors");
    assert_int_equal(unlink(p), 0);
    lqa_model_free(&base2);
    assert_int_equal(lqa_hf_load(bdir, &base2, &err), 0);
    assert_int_equal(lqa_adapter_load(adir, &base2, &err), -1);
    assert_non_null(strstr(err.msg, "adapter_model.safetensors"));
    lqa_model_free(&base2);
    assert_int_equal(lqa_hf_load(bdir, &base2, &err), 0);
    assert_int_equal(lqa_adapter_load(bdir, &base2, &err), -1);
    assert_non_null(strstr(err.msg, "adapter_config.json"));
    lqa_model_free(&base2);
    free(p);
    lqa_model_free(&m);
    free(adir);
    free(bdir);
}

static void test_targets_parse(void **state) {
    int t;
    lqa_err err;
    assert_int_equal(lqa_lora_targets_parse("q,k,v,o", &t, &err), 0);
    assert_int_equal(t, LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O);
    assert_int_equal(lqa_lora_targets_parse("gate_proj,down", &t, &err), 0);
    assert_int_equal(t, LQA_LORA_GATE | LQA_LORA_DOWN);
    char buf[64];
    lqa_lora_targets_format(LQA_LORA_UP | LQA_LORA_Q, buf, sizeof buf);
    assert_string_equal(buf, "q,up");
    assert_int_equal(lqa_lora_targets_parse("q,x", &t, &err), -1);
    assert_non_null(strstr(err.msg, "'x'"));
}

static void test_init_takes_vocab_from_tokenizer(void **state) {
    const char *dir = lqa_test_tmpdir();
    int vocab = 400 + (int)(g_seed % 200);
    const char *tok = fixture_tokenizer(dir, "itok.model", g_seed, vocab);
    char *tokc = lqa_strdup(tok);
    char *mdir = fixture_model(dir, "imodel", tokc, "--preset tiny --ctx 128 --dtype bf16 --shard-size 1");
    lqa_tokenizer *t;
    lqa_err err;
    assert_non_null(t = lqa_tok_load(tokc, &err));
    lqa_model m;
    assert_int_equal(lqa_hf_load(mdir, &m, &err), 0);
    assert_int_equal(m.cfg.vocab_size, lqa_tok_vocab_size(t));
    assert_int_equal(m.cfg.eos_id, lqa_tok_eos_id(t));
    assert_int_equal(m.cfg.max_pos, 128);
    const lqa_preset *p = lqa_preset_find("tiny");
    assert_int_equal(m.cfg.dim, p->cfg.dim);
    assert_int_equal(m.cfg.n_kv_heads, p->cfg.n_kv_heads);
    assert_int_equal(m.n_params, lqa_config_n_params(&m.cfg));
    /* init is random, not zeros, and norms are one */
    const lqa_tensor_info *ti;
    float *emb = lqa_model_tensor(&m, "model.embed_tokens.weight", &ti);
    double sq = 0;
    for (size_t i = 0; i < ti->numel; i++) sq += emb[i] * emb[i];
    assert_true(fabs(sqrt(sq / ti->numel) - 0.02) < 0.002);
    float *norm = lqa_model_tensor(&m, "model.norm.weight", &ti);
    assert_true(norm[0] == 1.0f);
    uint8_t a[32], b[32];
    char *copied = lqa_path_join(mdir, "tokenizer.model");
    fixture_sha(copied, a);
    fixture_sha(tokc, b);
    assert_memory_equal(a, b, 32);
    lqa_model_free(&m);
    lqa_tok_free(t);
    free(copied);
    free(mdir);
    free(tokc);
}

static int setup(void **state) {
    g_seed = lqa_test_seed();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_save_load_each_dtype_and_sharded),
        cmocka_unit_test(test_missing_and_misshapen_tensors),
        cmocka_unit_test(test_adapter_round_trip_and_mismatch),
        cmocka_unit_test(test_targets_parse),
        cmocka_unit_test(test_init_takes_vocab_from_tokenizer),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
