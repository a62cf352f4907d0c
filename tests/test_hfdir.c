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
#include "tests/test_train_util.h"
#include "model/adapter.h"
#include "model/hfdir.h"
#include "model/presets.h"

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
    c.rope_hf5 = (int)lqa_rng_below(r, 2);
    if (lqa_rng_below(r, 3) == 0) { /* LLaMA-3.x RoPE, with position interpolation on top at times */
        c.rope_llama3 = 1;
        c.rope_factor = (float)(2 + lqa_rng_below(r, 30));
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = (float)(2 + lqa_rng_below(r, 4));
        c.rope_orig_max_pos = 64 << lqa_rng_below(r, 8);
    }
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
    assert_int_equal(a->rope_llama3, b->rope_llama3);
    assert_true(a->rope_factor == b->rope_factor);
    assert_true(a->rope_low_freq_factor == b->rope_low_freq_factor);
    assert_true(a->rope_high_freq_factor == b->rope_high_freq_factor);
    assert_int_equal(a->rope_orig_max_pos, b->rope_orig_max_pos);
    assert_int_equal(a->rope_hf5, b->rope_hf5);
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
    c.rope_llama3 = c.rope_hf5 = 0;
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

/* Writes DIR/config.json from a JSON text. */
static void write_config_text(const char *dir, const char *text) {
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(dir, &err), 0);
    char *p = lqa_path_join(dir, "config.json");
    lqa_test_write(p, text, strlen(text));
    free(p);
}

#define SHAPE "\"vocab_size\": 100, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"intermediate_size\": 40, " \
              "\"num_attention_heads\": 4"

/* transformers 5.x writes RoPE under rope_parameters; 4.x as rope_theta + rope_scaling. Both
 * read the same, a model written back keeps its form, and what we do not implement is refused
 * with the key named; typed values of the wrong type are errors, not defaults. */
static void test_config_forms_and_strict_values(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "forms");
    lqa_err err;
    lqa_config a, b;
    double theta = 1e4 * (1 + (double)(g_seed % 100)), factor = 1.5 + (double)(g_seed % 7);
    char text[1024];
    snprintf(text, sizeof text, "{" SHAPE ", \"rope_theta\": %g, \"rope_scaling\": {\"type\": \"linear\", \"factor\": %g}}",
             theta, factor);
    write_config_text(dir, text);
    assert_int_equal(lqa_hf_read_config(dir, &a, &err), 0);
    snprintf(text, sizeof text, "{" SHAPE ", \"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": %g, "
             "\"rope_theta\": %g}}", factor, theta);
    write_config_text(dir, text);
    assert_int_equal(lqa_hf_read_config(dir, &b, &err), 0);
    assert_true(a.rope_theta == (float)theta && b.rope_theta == (float)theta);
    assert_true(a.rope_scale == (float)factor && b.rope_scale == (float)factor);
    assert_int_equal(a.rope_hf5, 0);
    assert_int_equal(b.rope_hf5, 1);
    /* written back in the base's form */
    json_t *ja = lqa_hf_config_json(&a, LQA_ST_F32), *jb = lqa_hf_config_json(&b, LQA_ST_F32);
    assert_true(lqa_json_num(ja, "rope_theta", 0) == theta);
    assert_null(json_object_get(ja, "rope_parameters"));
    json_t *rp = json_object_get(jb, "rope_parameters");
    assert_null(json_object_get(jb, "rope_theta"));
    assert_string_equal(lqa_json_str(rp, "rope_type", ""), "linear");
    assert_true(lqa_json_num(rp, "rope_theta", 0) == theta && lqa_json_num(rp, "factor", 0) == factor);
    json_decref(ja);
    json_decref(jb);
    /* llama3 in both forms (LLaMA-3.1's values) */
    write_config_text(dir, "{" SHAPE ", \"rope_theta\": 500000.0, \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": "
                      "1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}");
    assert_int_equal(lqa_hf_read_config(dir, &a, &err), 0);
    write_config_text(dir, "{" SHAPE ", \"rope_parameters\": {\"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": "
                      "1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}");
    assert_int_equal(lqa_hf_read_config(dir, &b, &err), 0);
    assert_true(a.rope_llama3 && b.rope_llama3 && a.rope_factor == 8.0f && b.rope_orig_max_pos == 8192);
    assert_true(a.rope_high_freq_factor == 4.0f && b.rope_low_freq_factor == 1.0f && a.rope_scale == 1.0f);
    assert_true(a.rope_theta == 500000.0f && b.rope_theta == 500000.0f);
    /* refusals, each naming the key */
    static const char *const bad[][2] = {
        {"\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"rope_theta\": 10000.0}", "rope_parameters.rope_type"},
        {"\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling.rope_type"},
        {"\"rope_scaling\": {\"type\": \"longrope\", \"factor\": 2.0}", "longrope"},
        {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}", "low_freq_factor"},
        {"\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}", "rope_parameters"},
        {"\"rope_theta\": \"abc\"", "rope_theta"},
        {"\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": \"abc\"}", "rope_parameters.rope_theta"},
        {"\"tie_word_embeddings\": \"yes\"", "tie_word_embeddings"},
        {"\"rms_norm_eps\": \"1e-5\"", "rms_norm_eps"},
        {"\"bos_token_id\": \"1\"", "bos_token_id"},
        {"\"hidden_act\": 5", "hidden_act"},
        {"\"rope_scaling\": {\"type\": \"linear\", \"factor\": \"2\"}", "rope_scaling.factor"},
        {"\"head_dim\": 16", "head_dim"},
        {"\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1e4, \"partial_rotary_factor\": 0.5}",
         "partial_rotary_factor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{" SHAPE ", %s}", bad[i][0]);
        write_config_text(dir, text);
        lqa_err e = {{0}};
        assert_int_equal(lqa_hf_read_config(dir, &a, &e), -1);
        if (!strstr(e.msg, bad[i][1]) || !strstr(e.msg, "config.json")) fail_msg("'%s' lacks '%s'", e.msg, bad[i][1]);
    }
    free(dir);
}

/* The mean loss of the model in dir on a fixed random batch; its logits too when asked (the
 * caller frees them). */
static float dir_loss(const char *dir, uint64_t seed, float **logits, size_t *n_logits) {
    lqa_model m;
    lqa_err err;
    if (lqa_hf_load(dir, &m, &err)) fail_msg("%s", err.msg);
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    int B = 2, T = 24;
    int32_t tok[48];
    uint8_t mask[48];
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)lqa_rng_below(&r, (uint64_t)m.cfg.vocab_size), mask[i] = i % T != 0;
    lqa_batch b = {B, T, tok, mask, NULL};
    lqa_step_opts o = {LQA_ATTN_FULL, 0.25f, LQA_TRAIN_LORA_PLUS, 0, 1, 0};
    float loss = lqa_model_step(&m, &b, &o, NULL);
    if (logits) *logits = lqa_model_logits(&m, &b, &o);
    if (n_logits) *n_logits = (size_t)B * T * m.cfg.vocab_size;
    lqa_model_free(&m);
    return loss;
}

/* Largest |a - b| over the largest |a|. */
static double rel_max_diff(const float *a, const float *b, size_t n) {
    double big = 0, d = 0;
    for (size_t i = 0; i < n; i++) big = fmax(big, fabs(a[i])), d = fmax(d, fabs((double)a[i] - b[i]));
    return big > 0 ? d / big : d;
}

/* A 5.x-style config with theta 5e5 and a linear factor gives exactly the loss of the same model
 * with the 4.x-style config, and not the loss of theta 10000 without scaling (the old misread). */
static void test_same_loss_4x_and_5x_configs(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 5);
    lqa_model m;
    random_model(&m, &r);
    m.cfg.rope_llama3 = m.cfg.rope_hf5 = 0;
    m.cfg.rope_theta = 500000.0f;
    float factor = (float)(2 + lqa_rng_below(&r, 4));
    m.cfg.rope_scale = factor;
    for (int i = 0; i < m.n_tensors; i++) /* a larger embedding and q/k so that the angles matter */
        if (strstr(m.tensors[i].name, "embed") || strstr(m.tensors[i].name, "q_proj") ||
            strstr(m.tensors[i].name, "k_proj"))
            for (size_t k = 0; k < m.tensors[i].numel; k++) m.params[m.tensors[i].offset + k] *= 40.0f;
    char *d4 = lqa_path_join(lqa_test_tmpdir(), "cfg4x"), *d5 = lqa_path_join(lqa_test_tmpdir(), "cfg5x"),
         *d0 = lqa_path_join(lqa_test_tmpdir(), "cfg_default");
    lqa_err err;
    assert_int_equal(lqa_hf_save(d4, &m, NULL, &err), 0);
    m.cfg.rope_hf5 = 1;
    assert_int_equal(lqa_hf_save(d5, &m, NULL, &err), 0);
    m.cfg.rope_hf5 = 0, m.cfg.rope_theta = 10000.0f, m.cfg.rope_scale = 1.0f;
    assert_int_equal(lqa_hf_save(d0, &m, NULL, &err), 0);
    json_t *j5 = load_json(d5, "config.json");
    assert_non_null(json_object_get(j5, "rope_parameters"));
    assert_null(json_object_get(j5, "rope_theta"));
    assert_null(json_object_get(j5, "rope_scaling"));
    json_decref(j5);
    uint64_t seed = lqa_rng_u64(&r);
    float *g4, *g5, *g0;
    size_t n;
    float l4 = dir_loss(d4, seed, &g4, &n), l5 = dir_loss(d5, seed, &g5, &n), l0 = dir_loss(d0, seed, &g0, &n);
    assert_true(l4 == l5);
    assert_memory_equal(g4, g5, sizeof(float) * n);
    /* a random model's loss sits near log V whatever the angles (its change can be under 1e-6
     * relative), so the misread is shown on the logits */
    double d = rel_max_diff(g4, g0, n);
    printf("# theta 5e5 scaled vs theta 10000: loss %.9g vs %.9g, logits differ by %.3g of their largest\n", l4, l0,
           d);
    /* The same config computes bit-identical logits (checked above), so any difference well over
     * float rounding shows the settings were applied; how large it is depends on the random model
     * (0.00035 to 0.05 seen), so the bound is not tied to one draw. */
    if (!(d > 1e-5)) fail_msg("the rope settings did not change the logits: %.3g", d);
    lqa_model back;
    assert_int_equal(lqa_hf_load(d5, &back, &err), 0);
    assert_true(back.cfg.rope_theta == 500000.0f);
    assert_true(back.cfg.rope_scale == factor);
    lqa_model_free(&back);
    free(g4), free(g5), free(g0);
    lqa_model_free(&m);
    free(d4), free(d5), free(d0);
}

/* rope_inv_freq's llama3 bands against transformers' _compute_llama3_parameters definition. */
static void test_llama3_inv_freq(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 6);
    for (int trial = 0; trial < 20; trial++) {
        int hd = 2 * (8 + (int)lqa_rng_below(&r, 60));
        rope_spec rs = {lqa_rng_below(&r, 2) ? 500000.0f : 10000.0f, 1.0f, 1, (float)(2 + lqa_rng_below(&r, 31)),
                        1.0f + (float)lqa_rng_below(&r, 2), 4.0f + (float)lqa_rng_below(&r, 4),
                        256 << lqa_rng_below(&r, 6)};
        double got[512], plain[512];
        rope_inv_freq(got, hd, &rs);
        rope_spec def = {rs.theta, 1.0f, 0, 0, 0, 0, 0};
        rope_inv_freq(plain, hd, &def);
        int bands[3] = {0};
        for (int i = 0; i < hd / 2; i++) {
            double f = pow(rs.theta, -2.0 * i / hd), wavelen = 2 * M_PI / f;
            double lo_w = rs.original_max_pos / rs.low_freq_factor, hi_w = rs.original_max_pos / rs.high_freq_factor;
            double want;
            if (wavelen < hi_w) want = f, bands[0]++;
            else if (wavelen > lo_w) want = f / rs.factor, bands[2]++;
            else {
                double sm = (rs.original_max_pos / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
                want = (1 - sm) * f / rs.factor + sm * f, bands[1]++;
                assert_true(want <= f && want >= f / rs.factor);
            }
            assert_true(fabs(plain[i] - f) <= 1e-15 * f);
            if (fabs(got[i] - want) > 1e-12 * want) fail_msg("inv_freq[%d] %.17g, expected %.17g", i, got[i], want);
        }
        assert_true(bands[0] > 0 && bands[0] + bands[1] + bands[2] == hd / 2);
    }
    /* the table rotates by position / scale times those frequencies */
    rope_spec rs = {500000.0f, 3.0f, 1, 8.0f, 1.0f, 4.0f, 512};
    float c[8 * 16], sn[8 * 16];
    double f[16];
    rope_inv_freq(f, 32, &rs);
    rope_table_cpu(c, sn, 8, 32, 5, &rs);
    for (int t = 0; t < 8; t++)
        for (int i = 0; i < 16; i++) assert_true(fabsf(c[t * 16 + i] - (float)cos((5 + t) / 3.0 * f[i])) < 1e-6f);
}

/* Sizes that overflow or exceed the machine are refused before allocation; non-finite weights
 * are refused with the tensor's name. */
static void test_huge_and_nonfinite_refused(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "huge");
    lqa_err err = {{0}};
    lqa_model m;
    write_config_text(dir, "{\"vocab_size\": 1073741824, \"hidden_size\": 1073741824, \"num_hidden_layers\": 1073741824,"
                      " \"intermediate_size\": 1073741824, \"num_attention_heads\": 1048576}");
    assert_int_equal(lqa_hf_load(dir, &m, &err), -1);
    assert_non_null(strstr(err.msg, "overflows"));
    write_config_text(dir, "{\"vocab_size\": 1000000, \"hidden_size\": 65536, \"num_hidden_layers\": 64,"
                      " \"intermediate_size\": 200000, \"num_attention_heads\": 512}");
    assert_int_equal(lqa_hf_load(dir, &m, &err), -1);
    assert_non_null(strstr(err.msg, "GiB are available"));
    free(dir);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 7);
    random_model(&m, &r);
    int victim = (int)lqa_rng_below(&r, (uint64_t)m.n_tensors);
    m.params[m.tensors[victim].offset + lqa_rng_below(&r, m.tensors[victim].numel)] = lqa_rng_below(&r, 2) ? NAN : INFINITY;
    dir = lqa_path_join(lqa_test_tmpdir(), "nanmodel");
    assert_int_equal(lqa_hf_save(dir, &m, NULL, &err), 0);
    lqa_model back;
    assert_int_equal(lqa_hf_load(dir, &back, &err), -1);
    if (!strstr(err.msg, m.tensors[victim].name)) fail_msg("'%s' lacks %s", err.msg, m.tensors[victim].name);
    lqa_model_free(&m);
    free(dir);
}

/* The folder a model is saved to with a tokenizer is complete for transformers: a LLaMA
 * tokenizer_config.json (BOS added, EOS not), special_tokens_map.json, generation_config.json;
 * saved from a base folder (merge), the base's own files are carried over byte for byte. */
static void test_tokenizer_side_files(void **state) {
    const char *tmp = lqa_test_tmpdir();
    /* at least 302 pieces: 256 byte-fallback pieces, the control pieces and the fixture's characters */
    char *tok = lqa_strdup(fixture_tokenizer(tmp, "stok.model", g_seed, 320 + (int)(g_seed % 100)));
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 8);
    lqa_model m;
    random_model(&m, &r);
    m.cfg.bos_id = 1, m.cfg.eos_id = 2; /* lqa-build's tokenizers: <unk> 0, <s> 1, </s> 2 */
    char *d1 = lqa_path_join(tmp, "sidefiles");
    lqa_err err;
    lqa_hf_save_opts so = {LQA_ST_F32, 0, tok};
    assert_int_equal(lqa_hf_save(d1, &m, &so, &err), 0);
    json_t *tc = load_json(d1, "tokenizer_config.json"), *sm = load_json(d1, "special_tokens_map.json"),
           *gc = load_json(d1, "generation_config.json");
    assert_true(json_is_true(json_object_get(tc, "add_bos_token")));
    assert_true(json_is_false(json_object_get(tc, "add_eos_token")));
    assert_string_equal(lqa_json_str(tc, "bos_token", ""), "<s>");
    assert_string_equal(lqa_json_str(tc, "eos_token", ""), "</s>");
    assert_string_equal(lqa_json_str(tc, "tokenizer_class", ""), "LlamaTokenizer");
    assert_int_equal(lqa_json_int(tc, "model_max_length", 0), m.cfg.max_pos);
    assert_string_equal(lqa_json_str(sm, "unk_token", ""), "<unk>");
    assert_int_equal(lqa_json_int(gc, "bos_token_id", -5), m.cfg.bos_id);
    assert_int_equal(lqa_json_int(gc, "eos_token_id", -5), m.cfg.eos_id);
    json_decref(tc), json_decref(sm), json_decref(gc);
    /* a base with its own files (a tokenizer.json, an edited generation config): carried over */
    char text[64];
    snprintf(text, sizeof text, "{\"version\": \"1.0\", \"seed\": %llu}", (unsigned long long)g_seed);
    char *tj = lqa_path_join(d1, "tokenizer.json"), *gj = lqa_path_join(d1, "generation_config.json");
    lqa_test_write(tj, text, strlen(text));
    lqa_test_write(gj, text, strlen(text));
    char *btok = lqa_path_join(d1, "tokenizer.model"), *d2 = lqa_path_join(tmp, "sidefiles_merged");
    lqa_hf_save_opts so2 = {LQA_ST_BF16, 0, btok};
    assert_int_equal(lqa_hf_save(d2, &m, &so2, &err), 0);
    static const char *const files[] = {"tokenizer.json", "generation_config.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "tokenizer.model"};
    for (int i = 0; i < 5; i++) {
        char *a = lqa_path_join(d1, files[i]), *b = lqa_path_join(d2, files[i]);
        assert_same_file(a, b);
        free(a), free(b);
    }
    lqa_model_free(&m);
    free(tj), free(gj), free(btok), free(d1), free(d2), free(tok);
}

/* Writes a safetensors file of the named tensors with the given shapes and data. */
static void write_tensors(const char *path, int n, const char *const *names, const int64_t (*shapes)[2],
                          const int *ndims, float *const *data) {
    lqa_st_entry e[16];
    memset(e, 0, sizeof e);
    for (int i = 0; i < n; i++) {
        e[i].name = names[i];
        e[i].ndim = ndims[i];
        e[i].shape[0] = shapes[i][0];
        e[i].shape[1] = shapes[i][1];
        e[i].data = data[i];
    }
    lqa_err err;
    if (lqa_st_write(path, e, n, LQA_ST_F32, NULL, &err)) fail_msg("%s", err.msg);
}

/* Our lora+ adapter holds the embedding and norms as PEFT modules_to_save; an adapter made by
 * peft with modules_to_save (embed_tokens, norm) loads; LongLoRA's trainable_params names too. */
static void test_adapter_modules_to_save(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 9);
    lqa_model m;
    random_model(&m, &r);
    char *bdir = lqa_path_join(lqa_test_tmpdir(), "mts_base");
    lqa_err err;
    assert_int_equal(lqa_hf_save(bdir, &m, NULL, &err), 0);
    lqa_model_add_lora(&m, LQA_LORA_Q | LQA_LORA_V, 2, 4.0f, lqa_rng_u64(&r));
    for (size_t i = 0; i < m.n_lora; i++) m.lora[i] = lqa_rng_normal(&r);
    char *adir = lqa_path_join(lqa_test_tmpdir(), "mts_ours");
    assert_int_equal(lqa_adapter_save(adir, &m, LQA_TRAIN_LORA_PLUS, bdir, &err), 0);
    json_t *ac = load_json(adir, "adapter_config.json");
    json_t *mts = json_object_get(ac, "modules_to_save");
    assert_int_equal(json_array_size(mts), 4);
    assert_string_equal(json_string_value(json_array_get(mts, 0)), "embed_tokens");
    assert_string_equal(json_string_value(json_array_get(mts, 3)), "norm");
    assert_true(lqa_json_str(ac, "base_model_name_or_path", "")[0] == '/');
    assert_int_equal(json_is_true(json_object_get(ac, "ensure_weight_tying")), m.cfg.tie_embeddings);
    json_decref(ac);
    lqa_st_reader rd;
    char *ap = lqa_path_join(adir, "adapter_model.safetensors");
    assert_int_equal(lqa_st_open(&rd, ap, &err), 0);
    /* a tied head is written too, as PEFT's ensure_weight_tying reads it */
    int tied = m.cfg.tie_embeddings;
    assert_int_equal(rd.n_tensors, m.n_lora_tensors + 1 + 2 * m.cfg.n_layers + 1 + tied);
    assert_int_equal(lqa_st_find(&rd, "base_model.model.lm_head.weight") != NULL, tied);
    assert_non_null(lqa_st_find(&rd, "base_model.model.model.embed_tokens.weight"));
    assert_non_null(lqa_st_find(&rd, "base_model.model.model.norm.weight"));
    assert_non_null(lqa_st_find(&rd, "base_model.model.model.layers.0.input_layernorm.weight"));
    lqa_st_close(&rd);
    char *tp = lqa_path_join(adir, "trainable_params.safetensors");
    assert_false(lqa_path_exists(tp));
    /* a peft-made adapter: q,v LoRA plus modules_to_save embed_tokens and norm */
    char *pdir = lqa_path_join(lqa_test_tmpdir(), "mts_peft");
    assert_int_equal(lqa_mkdir_p(pdir, &err), 0);
    const char *cfg = "{\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\", \"r\": 2, \"lora_alpha\": 4, "
                      "\"target_modules\": [\"q_proj\", \"v_proj\"], \"modules_to_save\": [\"embed_tokens\", \"norm\"], "
                      "\"bias\": \"none\", \"base_model_name_or_path\": \"x\"}";
    char *pc = lqa_path_join(pdir, "adapter_config.json");
    lqa_test_write(pc, cfg, strlen(cfg));
    const lqa_tensor_info *emb, *norm;
    float *e0 = lqa_model_tensor(&m, "model.embed_tokens.weight", &emb), *n0 = lqa_model_tensor(&m, "model.norm.weight", &norm);
    float *ev = lqa_malloc(emb->numel * sizeof(float)), *nv = lqa_malloc(norm->numel * sizeof(float));
    for (size_t i = 0; i < emb->numel; i++) ev[i] = e0[i] + (float)lqa_rng_normal(&r);
    for (size_t i = 0; i < norm->numel; i++) nv[i] = n0[i] + (float)lqa_rng_normal(&r);
    const char *names[16];
    int64_t shapes[16][2];
    int ndims[16];
    float *data[16];
    int n = 0;
    for (int i = 0; i < m.n_lora_tensors; i++, n++) {
        names[n] = m.lora_tensors[i].name, ndims[n] = 2, data[n] = m.lora + m.lora_tensors[i].offset;
        shapes[n][0] = m.lora_tensors[i].shape[0], shapes[n][1] = m.lora_tensors[i].shape[1];
    }
    names[n] = "base_model.model.model.embed_tokens.weight", ndims[n] = 2, data[n] = ev;
    shapes[n][0] = emb->shape[0], shapes[n++][1] = emb->shape[1];
    names[n] = "base_model.model.model.norm.weight", ndims[n] = 1, data[n] = nv;
    shapes[n][0] = norm->shape[0], shapes[n++][1] = 0;
    char *pa = lqa_path_join(pdir, "adapter_model.safetensors");
    write_tensors(pa, n, names, shapes, ndims, data);
    lqa_model b;
    assert_int_equal(lqa_hf_load(bdir, &b, &err), 0);
    if (lqa_adapter_load(pdir, &b, &err)) fail_msg("%s", err.msg);
    assert_memory_equal(b.lora, m.lora, m.n_lora * sizeof(float));
    assert_memory_equal(lqa_model_tensor(&b, "model.embed_tokens.weight", NULL), ev, emb->numel * sizeof(float));
    assert_memory_equal(lqa_model_tensor(&b, "model.norm.weight", NULL), nv, norm->numel * sizeof(float));
    lqa_model_free(&b);
    /* LongLoRA's trainable_params names beside an adapter of LoRA alone */
    write_tensors(pa, m.n_lora_tensors, names, shapes, ndims, data);
    names[n - 1] = "base_model.model.model.norm.weight";
    write_tensors(tp, 1, &names[n - 1], &shapes[n - 1], &ndims[n - 1], &data[n - 1]);
    char *tp2 = lqa_path_join(pdir, "trainable_params.safetensors");
    write_tensors(tp2, 1, &names[n - 1], &shapes[n - 1], &ndims[n - 1], &data[n - 1]);
    assert_int_equal(lqa_hf_load(bdir, &b, &err), 0);
    if (lqa_adapter_load(pdir, &b, &err)) fail_msg("%s", err.msg);
    assert_memory_equal(lqa_model_tensor(&b, "model.norm.weight", NULL), nv, norm->numel * sizeof(float));
    lqa_model_free(&b);
    /* a modules_to_save tensor the base does not have is refused, naming it */
    names[n - 1] = "base_model.model.model.score.weight";
    write_tensors(pa, 1, &names[n - 1], &shapes[n - 1], &ndims[n - 1], &data[n - 1]);
    assert_int_equal(lqa_hf_load(bdir, &b, &err), 0);
    assert_int_equal(lqa_adapter_load(pdir, &b, &err), -1);
    assert_non_null(strstr(err.msg, "score.weight"));
    lqa_model_free(&b);
    lqa_model_free(&m);
    free(ev), free(nv), free(pa), free(pc), free(pdir), free(tp), free(tp2), free(ap), free(adir), free(bdir);
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
        cmocka_unit_test(test_config_forms_and_strict_values),
        cmocka_unit_test(test_same_loss_4x_and_5x_configs),
        cmocka_unit_test(test_llama3_inv_freq),
        cmocka_unit_test(test_huge_and_nonfinite_refused),
        cmocka_unit_test(test_tokenizer_side_files),
        cmocka_unit_test(test_adapter_modules_to_save),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
