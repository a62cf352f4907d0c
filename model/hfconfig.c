/* hfconfig.c: a HF LLaMA config.json <-> lqa_config, strict about every typed value. See
 * hfconfig.h. Apart from hfdir.c so that reading a config needs no model, kernels or tokenizer
 * (tests/fuzz/fuzz_config.c links it alone). */
#include "model/hfconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"

/* A positive integer under key; -1 with err naming the file and key otherwise. */
static int get_pos_int(const char *path, json_t *j, const char *key, int *out, lqa_err *err) {
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 30))
        return lqa_err_set(err, "%s: \"%s\" is %s, expected a positive integer", path, key,
                           v ? "not a positive integer" : "missing");
    *out = (int)json_integer_value(v);
    return 0;
}

/* Optional typed values: absent or null gives dflt; any other type is an error naming the key
 * (a config that says "rope_theta": "abc" must not run with a silent default). */
static int get_num(const char *path, const char *where, json_t *j, const char *key, double dflt, double *out,
                   lqa_err *err) {
    json_t *v = json_object_get(j, key);
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return lqa_err_set(err, "%s: \"%s%s\" is not a number", path, where, key);
    *out = json_number_value(v);
    return 0;
}

static int get_str(const char *path, json_t *j, const char *key, const char *dflt, const char **out, lqa_err *err) {
    json_t *v = json_object_get(j, key);
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return lqa_err_set(err, "%s: \"%s\" is not a string", path, key);
    *out = json_string_value(v);
    return 0;
}

static int get_bool(const char *path, json_t *j, const char *key, int dflt, int *out, lqa_err *err) {
    json_t *v = json_object_get(j, key);
    *out = dflt;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return lqa_err_set(err, "%s: \"%s\" is not true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

/* bos/eos may be an integer, a list (first entry is used) or null (-1). */
static int token_id(const char *path, json_t *j, const char *key, int dflt, int *out, lqa_err *err) {
    json_t *v = json_object_get(j, key);
    *out = dflt;
    if (!v) return 0;
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    if (json_is_null(v)) *out = -1;
    else if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < (1 << 30))
        *out = (int)json_integer_value(v);
    else return lqa_err_set(err, "%s: \"%s\" is not a token id, a list of them or null", path, key);
    return 0;
}

/* One RoPE settings object: 4.x "rope_scaling" or 5.x "rope_parameters" (which also holds
 * rope_theta). Types lqa does not implement are refused, naming the key. */
static int parse_rope_object(const char *path, const char *key, json_t *rs, lqa_config *cfg, lqa_err *err) {
    char where[64];
    snprintf(where, sizeof where, "%s.", key);
    if (!json_is_object(rs)) return lqa_err_set(err, "%s: \"%s\" is not an object or null", path, key);
    json_t *tv = json_object_get(rs, "rope_type");
    if (!tv) tv = json_object_get(rs, "type");
    if (tv && !json_is_string(tv)) return lqa_err_set(err, "%s: \"%srope_type\" is not a string", path, where);
    const char *type = tv ? json_string_value(tv) : "default";
    double prf;
    if (get_num(path, where, rs, "partial_rotary_factor", 1.0, &prf, err)) return -1;
    if (prf != 1.0)
        return lqa_err_set(err, "%s: \"%spartial_rotary_factor\" is %g; lqa rotates whole heads (1.0)", path, where, prf);
    if (!strcmp(type, "default")) return 0;
    int linear = !strcmp(type, "linear"), llama3 = !strcmp(type, "llama3");
    if (!linear && !llama3)
        return lqa_err_set(err, "%s: \"%srope_type\" is \"%s\"; lqa implements \"default\", \"linear\" and \"llama3\"",
                           path, where, type);
    double f;
    if (get_num(path, where, rs, "factor", -1, &f, err)) return -1;
    if (!(f >= 1.0) || f > 1e6) return lqa_err_set(err, "%s: \"%sfactor\" is %g, expected a number >= 1", path, where, f);
    if (linear) {
        cfg->rope_scale = (float)f;
        return 0;
    }
    double lo, hi, orig, pi;
    if (get_num(path, where, rs, "low_freq_factor", -1, &lo, err) ||
        get_num(path, where, rs, "high_freq_factor", -1, &hi, err) ||
        get_num(path, where, rs, "original_max_position_embeddings", -1, &orig, err) ||
        get_num(path, where, rs, "lqa_position_interpolation", 1.0, &pi, err))
        return -1;
    if (!(lo > 0) || !(hi > lo))
        return lqa_err_set(err, "%s: \"%slow_freq_factor\" %g and \"high_freq_factor\" %g: expected 0 < low < high",
                           path, where, lo, hi);
    if (!(orig >= 1) || orig > (1 << 30) || orig != floor(orig))
        return lqa_err_set(err, "%s: \"%soriginal_max_position_embeddings\" is missing or not a positive integer",
                           path, where);
    if (!(pi >= 1.0) || pi > 1e6)
        return lqa_err_set(err, "%s: \"%slqa_position_interpolation\" is %g, expected >= 1", path, where, pi);
    cfg->rope_llama3 = 1;
    cfg->rope_factor = (float)f;
    cfg->rope_low_freq_factor = (float)lo;
    cfg->rope_high_freq_factor = (float)hi;
    cfg->rope_orig_max_pos = (int)orig;
    cfg->rope_scale = (float)pi;
    return 0;
}

/* rope_theta and scaling from either form: transformers 5.x "rope_parameters" {rope_type,
 * rope_theta, factor, ...} or 4.x top-level "rope_theta" with "rope_scaling". */
static int parse_rope(const char *path, json_t *j, lqa_config *cfg, lqa_err *err) {
    cfg->rope_scale = 1.0f;
    double theta;
    if (get_num(path, "", j, "rope_theta", 10000.0, &theta, err)) return -1;
    json_t *rp = json_object_get(j, "rope_parameters");
    if (rp && !json_is_null(rp)) {
        if (json_is_object(rp) && !json_object_get(rp, "rope_type") && !json_object_get(rp, "rope_theta"))
            return lqa_err_set(err, "%s: \"rope_parameters\" has no rope_type (per-layer-type RoPE is not supported)",
                               path);
        cfg->rope_hf5 = 1;
        if (get_num(path, "rope_parameters.", rp, "rope_theta", theta, &theta, err) ||
            parse_rope_object(path, "rope_parameters", rp, cfg, err))
            return -1;
    } else {
        json_t *rs = json_object_get(j, "rope_scaling");
        if (rs && !json_is_null(rs) && parse_rope_object(path, "rope_scaling", rs, cfg, err)) return -1;
    }
    if (!(theta > 1.0) || theta > 1e12)
        return lqa_err_set(err, "%s: rope_theta is %g, expected a number > 1", path, theta);
    cfg->rope_theta = (float)theta;
    return 0;
}

static int config_from_json(const char *path, json_t *j, lqa_config *cfg, lqa_err *err) {
    memset(cfg, 0, sizeof *cfg);
    const char *mt, *act;
    if (get_str(path, j, "model_type", "llama", &mt, err) || get_str(path, j, "hidden_act", "silu", &act, err))
        return -1;
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
    json_t *hdv = json_object_get(j, "head_dim");
    if (hdv && !json_is_null(hdv) && (!json_is_integer(hdv) || json_integer_value(hdv) != cfg->dim / cfg->n_heads))
        return lqa_err_set(err, "%s: \"head_dim\" is not hidden_size / num_attention_heads (%d); lqa needs them equal",
                           path, cfg->dim / cfg->n_heads);
    if (cfg->dim / cfg->n_heads > ROPE_MAX_HEAD_DIM)
        return lqa_err_set(err, "%s: head dim %d is over %d", path, cfg->dim / cfg->n_heads, ROPE_MAX_HEAD_DIM);
    if (strcmp(act, "silu")) return lqa_err_set(err, "%s: hidden_act '%s', expected \"silu\"", path, act);
    double eps;
    if (get_num(path, "", j, "rms_norm_eps", 1e-6, &eps, err)) return -1;
    if (!(eps > 0) || eps > 1)
        return lqa_err_set(err, "%s: rms_norm_eps is %g, expected a small positive number", path, eps);
    cfg->rms_eps = (float)eps;
    if (get_bool(path, j, "tie_word_embeddings", 0, &cfg->tie_embeddings, err) ||
        token_id(path, j, "bos_token_id", 1, &cfg->bos_id, err) || token_id(path, j, "eos_token_id", 2, &cfg->eos_id, err))
        return -1;
    return parse_rope(path, j, cfg, err);
}

int lqa_hf_parse_config(const char *path, const char *text, size_t n, lqa_config *cfg, lqa_err *err) {
    json_t *j = lqa_json_load_buffer(text, n, path, err);
    int rc = -1;
    if (j && !json_is_object(j)) lqa_err_set(err, "%s: not a JSON object", path);
    else if (j) rc = config_from_json(path, j, cfg, err);
    if (j) json_decref(j);
    return rc;
}

int lqa_hf_read_config(const char *dir, lqa_config *cfg, lqa_err *err) {
    char *path = lqa_path_join(dir, "config.json"), *text = NULL;
    size_t n;
    int rc = lqa_read_file(path, &text, &n, err);
    if (rc) lqa_err_prefix(err, "model directory %s", dir);
    else rc = lqa_hf_parse_config(path, text, n, cfg, err);
    free(text);
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

/* The RoPE settings object: rope_type plus its parameters (and, for 5.x, rope_theta). A linear
 * factor on top of llama3 has no transformers rope_type: it is kept under
 * "lqa_position_interpolation", which lqa reads and transformers ignores (with a warning here). */
static json_t *rope_object(const lqa_config *c, int with_theta) {
    json_t *o = json_object();
    mallocCheck(o);
    int linear = c->rope_scale != 1.0f;
    const char *type = c->rope_llama3 ? "llama3" : linear ? "linear" : "default";
    json_object_set_new(o, "rope_type", json_string(type));
    if (!with_theta) json_object_set_new(o, "type", json_string(type)); /* what 4.x before 4.42 reads */
    if (with_theta) json_object_set_new(o, "rope_theta", json_float(c->rope_theta));
    if (c->rope_llama3) {
        json_object_set_new(o, "factor", json_float(c->rope_factor));
        json_object_set_new(o, "low_freq_factor", json_float(c->rope_low_freq_factor));
        json_object_set_new(o, "high_freq_factor", json_float(c->rope_high_freq_factor));
        json_object_set_new(o, "original_max_position_embeddings", json_integer(c->rope_orig_max_pos));
        if (linear) {
            json_object_set_new(o, "lqa_position_interpolation", json_float(c->rope_scale));
            log_warn("config.json: position interpolation x%g on top of llama3 RoPE has no transformers rope_type; "
                     "lqa reads it from rope_scaling.lqa_position_interpolation, transformers ignores it",
                     (double)c->rope_scale);
        }
    } else if (linear) {
        json_object_set_new(o, "factor", json_float(c->rope_scale));
    }
    return o;
}

json_t *lqa_hf_config_json(const lqa_config *c, lqa_st_dtype dtype) {
    json_t *j = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:f, s:o, s:b, s:i, s:i,"
                          " s:b, s:b, s:s, s:b}",
                          "architectures", "LlamaForCausalLM", "model_type", "llama", "vocab_size", c->vocab_size,
                          "hidden_size", c->dim, "intermediate_size", c->hidden_dim, "num_hidden_layers", c->n_layers,
                          "num_attention_heads", c->n_heads, "num_key_value_heads", c->n_kv_heads, "hidden_act",
                          "silu", "max_position_embeddings", c->max_pos, "initializer_range", 0.02, "rms_norm_eps",
                          json_float(c->rms_eps), "tie_word_embeddings", c->tie_embeddings, "bos_token_id", c->bos_id,
                          "eos_token_id", c->eos_id, "attention_bias", 0, "mlp_bias", 0,
                          c->rope_hf5 ? "dtype" : "torch_dtype", torch_dtype_name(dtype), "use_cache", 1);
    mallocCheck(j);
    /* the form the base model came in: 5.x rope_parameters, or 4.x rope_theta + rope_scaling
     * (which 5.x also reads) */
    if (c->rope_hf5) {
        json_object_set_new(j, "rope_parameters", rope_object(c, 1));
    } else {
        json_object_set_new(j, "rope_theta", json_float(c->rope_theta));
        int plain = !c->rope_llama3 && c->rope_scale == 1.0f;
        json_object_set_new(j, "rope_scaling", plain ? json_null() : rope_object(c, 0));
    }
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
