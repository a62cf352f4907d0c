/* hfdir.c: HF LLaMA model directories: config.json <-> lqa_config, parameters by HF tensor name
 * through common/safetensors, tokenizer.model. See hfdir.h. */
#include "trainer/hfdir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"

/* ---- config.json --------------------------------------------------------------------------- */

/* A positive integer under key; -1 with err naming the file and key otherwise. */
static int get_pos_int(const char *path, json_t *j, const char *key, int *out, lqa_err *err) {
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 30))
        return lqa_err_set(err, "%s: \"%s\" is %s, expected a positive integer", path, key,
                           v ? "not a positive integer" : "missing");
    *out = (int)json_integer_value(v);
    return 0;
}

/* bos/eos may be an integer, a list (first entry is used) or null (-1). */
static int token_id(json_t *j, const char *key, int dflt) {
    json_t *v = json_object_get(j, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (json_is_integer(v)) return (int)json_integer_value(v);
    return v && json_is_null(v) ? -1 : dflt;
}

static int parse_rope_scaling(const char *path, json_t *rs, lqa_config *cfg, lqa_err *err) {
    cfg->rope_scale = 1.0f;
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return lqa_err_set(err, "%s: \"rope_scaling\" is not an object or null", path);
    const char *type = lqa_json_str(rs, "type", lqa_json_str(rs, "rope_type", NULL));
    if (!type || strcmp(type, "linear"))
        return lqa_err_set(err, "%s: rope_scaling type '%s' is not supported, expected \"linear\"", path,
                           type ? type : "(none)");
    double f = lqa_json_num(rs, "factor", -1);
    if (!(f >= 1.0) || f > 1e6)
        return lqa_err_set(err, "%s: rope_scaling.factor is %g, expected a number >= 1", path, f);
    cfg->rope_scale = (float)f;
    return 0;
}

static int config_from_json(const char *path, json_t *j, lqa_config *cfg, lqa_err *err) {
    memset(cfg, 0, sizeof *cfg);
    const char *mt = lqa_json_str(j, "model_type", "llama");
    if (strcmp(mt, "llama") && strcmp(mt, "mistral"))
        return lqa_err_set(err, "%s: model_type '%s', expected \"llama\"", path, mt);
    if (get_pos_int(path, j, "vocab_size", &cfg->vocab_size, err) ||
        get_pos_int(path, j, "hidden_size", &cfg->dim, err) ||
        get_pos_int(path, j, "num_hidden_layers", &cfg->n_layers, err) ||
        get_pos_int(path, j, "num_attention_heads", &cfg->n_heads, err) ||
        get_pos_int(path, j, "intermediate_size", &cfg->hidden_dim, err))
        return -1;
    cfg->n_kv_heads = cfg->n_heads;
    json_t *kv = json_object_get(j, "num_key_value_heads");
    if (kv && !json_is_null(kv) && get_pos_int(path, j, "num_key_value_heads", &cfg->n_kv_heads, err)) return -1;
    cfg->max_pos = 2048;
    if (json_object_get(j, "max_position_embeddings") &&
        get_pos_int(path, j, "max_position_embeddings", &cfg->max_pos, err))
        return -1;
    if (cfg->dim % cfg->n_heads)
        return lqa_err_set(err, "%s: hidden_size %d is not divisible by num_attention_heads %d", path, cfg->dim,
                           cfg->n_heads);
    if ((cfg->dim / cfg->n_heads) % 2)
        return lqa_err_set(err, "%s: head dim %d (hidden_size / num_attention_heads) is odd, RoPE needs it even", path,
                           cfg->dim / cfg->n_heads);
    if (cfg->n_heads % cfg->n_kv_heads)
        return lqa_err_set(err, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                           cfg->n_heads, cfg->n_kv_heads);
    const char *act = lqa_json_str(j, "hidden_act", "silu");
    if (strcmp(act, "silu")) return lqa_err_set(err, "%s: hidden_act '%s', expected \"silu\"", path, act);
    cfg->rope_theta = (float)lqa_json_num(j, "rope_theta", 10000.0);
    cfg->rms_eps = (float)lqa_json_num(j, "rms_norm_eps", 1e-6);
    if (!(cfg->rope_theta > 0) || !(cfg->rms_eps > 0))
        return lqa_err_set(err, "%s: rope_theta and rms_norm_eps must be positive numbers", path);
    json_t *tie = json_object_get(j, "tie_word_embeddings");
    cfg->tie_embeddings = tie ? json_is_true(tie) : 0;
    cfg->bos_id = token_id(j, "bos_token_id", 1);
    cfg->eos_id = token_id(j, "eos_token_id", 2);
    return parse_rope_scaling(path, json_object_get(j, "rope_scaling"), cfg, err);
}

int lqa_hf_read_config(const char *dir, lqa_config *cfg, lqa_err *err) {
    char *path = lqa_path_join(dir, "config.json");
    json_t *j = lqa_json_load_file(path, err);
    int rc = -1;
    if (!j) lqa_err_prefix(err, "model directory %s", dir);
    else if (!json_is_object(j)) lqa_err_set(err, "%s: not a JSON object", path);
    else rc = config_from_json(path, j, cfg, err);
    if (j) json_decref(j);
    free(path);
    return rc;
}

/* A float as the shortest decimal that reads back to the same float (1e-05, not 9.99999974e-06). */
static json_t *json_float(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static const char *torch_dtype_name(lqa_st_dtype d) {
    return d == LQA_ST_BF16 ? "bfloat16" : d == LQA_ST_F16 ? "float16" : "float32";
}

json_t *lqa_hf_config_json(const lqa_config *c, lqa_st_dtype dtype) {
    json_t *rs = json_null();
    if (c->rope_scale != 1.0f) rs = json_pack("{s:s, s:o}", "type", "linear", "factor", json_float(c->rope_scale));
    json_t *j = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:f, s:o, s:o, s:o, s:b, s:i, s:i,"
                          " s:b, s:b, s:s, s:b}",
                          "architectures", "LlamaForCausalLM", "model_type", "llama", "vocab_size", c->vocab_size,
                          "hidden_size", c->dim, "intermediate_size", c->hidden_dim, "num_hidden_layers", c->n_layers,
                          "num_attention_heads", c->n_heads, "num_key_value_heads", c->n_kv_heads, "hidden_act",
                          "silu", "max_position_embeddings", c->max_pos, "initializer_range", 0.02, "rms_norm_eps",
                          json_float(c->rms_eps), "rope_theta", json_float(c->rope_theta), "rope_scaling", rs,
                          "tie_word_embeddings", c->tie_embeddings, "bos_token_id", c->bos_id, "eos_token_id",
                          c->eos_id, "attention_bias", 0, "mlp_bias", 0, "torch_dtype", torch_dtype_name(dtype),
                          "use_cache", 1);
    mallocCheck(j);
    return j;
}

int lqa_hf_write_config(const char *dir, const lqa_config *cfg, lqa_st_dtype dtype, lqa_err *err) {
    json_t *j = lqa_hf_config_json(cfg, dtype);
    char *path = lqa_path_join(dir, "config.json");
    int rc = lqa_json_write_file(path, j, err);
    free(path);
    json_decref(j);
    return rc;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && o < n; d++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static int shapes_equal(const lqa_tensor_info *ti, const lqa_st_tensor *t) {
    if (ti->ndim != t->ndim) return 0;
    for (int d = 0; d < ti->ndim; d++)
        if (ti->shape[d] != t->shape[d]) return 0;
    return 1;
}

/* Copies tensor t (any dtype) into dst after checking it has ti's shape. */
static int load_tensor(const char *where, const lqa_tensor_info *ti, const lqa_st_tensor *t, float *dst,
                       lqa_err *err) {
    if (!shapes_equal(ti, t)) {
        char have[96], want[96];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ti->ndim, ti->shape);
        return lqa_err_set(err, "%s: tensor %s has shape %s, expected %s", where, ti->name, have, want);
    }
    lqa_st_to_f32(t, dst);
    return 0;
}

int lqa_hf_load(const char *dir, lqa_model *m, lqa_err *err) {
    lqa_config cfg;
    memset(m, 0, sizeof *m);
    if (lqa_hf_read_config(dir, &cfg, err)) return -1;
    lqa_st_reader r;
    if (lqa_st_open_dir(&r, dir, err)) return -1;
    lqa_model_alloc(m, &cfg);
    int rc = 0;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const lqa_tensor_info *ti = &m->tensors[i];
        const lqa_st_tensor *t = lqa_st_find(&r, ti->name);
        if (!t) rc = lqa_err_set(err, "%s: tensor %s is missing from the model's safetensors", dir, ti->name);
        else rc = load_tensor(dir, ti, t, m->params + ti->offset, err);
    }
    for (int i = 0; i < r.n_tensors && !rc; i++) {
        const lqa_tensor_info *ti;
        if (!lqa_model_tensor(m, r.tensors[i].name, &ti)) log_debug("%s: ignoring tensor %s", dir, r.tensors[i].name);
    }
    lqa_st_close(&r);
    if (rc) lqa_model_free(m);
    return rc;
}

int lqa_hf_copy_file(const char *src, const char *dst, lqa_err *err) {
    char *data;
    size_t n;
    if (lqa_read_file(src, &data, &n, err)) return -1;
    int rc = lqa_write_file_atomic(dst, data, n, err);
    free(data);
    return rc;
}

/* The model folder appears whole (lqa_atomic_dir): built in DIR.tmp-PID, then swapped in. */
int lqa_hf_save(const char *out_dir, const lqa_model *m, const lqa_hf_save_opts *o, lqa_err *err) {
    lqa_hf_save_opts dflt = {LQA_ST_F32, 0, NULL};
    if (!o) o = &dflt;
    char *cfg = lqa_path_join(out_dir, "config.json");
    int foreign = lqa_is_dir(out_dir) && !lqa_path_exists(cfg) && !lqa_dir_is_empty(out_dir);
    free(cfg);
    if (foreign)
        return lqa_err_set(err, "%s: exists, is not empty and holds no config.json; refusing to replace it with a "
                           "model folder", out_dir);
    lqa_atomic_dir ad;
    if (lqa_atomic_dir_begin(&ad, out_dir, err)) return -1;
    const char *dir = ad.tmp;
    lqa_st_entry *e = lqa_calloc((size_t)m->n_tensors, sizeof *e);
    for (int i = 0; i < m->n_tensors; i++) {
        const lqa_tensor_info *ti = &m->tensors[i];
        e[i].name = ti->name;
        e[i].ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) e[i].shape[d] = ti->shape[d];
        e[i].data = m->params + ti->offset;
    }
    int rc = lqa_st_write_dir(dir, "model", e, m->n_tensors, o->dtype, o->max_shard_bytes, err);
    free(e);
    if (!rc) rc = lqa_hf_write_config(dir, &m->cfg, o->dtype, err);
    if (!rc && o->tokenizer_path) {
        char *dst = lqa_path_join(dir, "tokenizer.model");
        /* copying a directory's tokenizer onto itself would be a no-op at best */
        if (strcmp(o->tokenizer_path, dst)) rc = lqa_hf_copy_file(o->tokenizer_path, dst, err);
        free(dst);
    }
    if (!rc) rc = lqa_atomic_dir_commit(&ad, err);
    else lqa_atomic_dir_abort(&ad);
    return rc;
}

char *lqa_hf_tokenizer_path(const char *dir, lqa_err *err) {
    char *p = lqa_path_join(dir, "tokenizer.model");
    if (lqa_path_exists(p)) return p;
    lqa_err_set(err, "%s: no tokenizer.model in the model directory", dir);
    free(p);
    return NULL;
}
