/* hfdir.c: HF LLaMA model directories: config.json <-> lqa_config, parameters by HF tensor name
 * through common/safetensors, tokenizer.model. See hfdir.h. */
#include "model/hfdir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "dataset/tokenizer.h"
#include "kernels/bf16.h"

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

/* Refuses shapes whose parameters cannot be counted in size_t or need more memory than the
 * machine has, before anything is allocated for them. */
static int check_param_bytes(const char *path, const lqa_config *c, int host_fp32, lqa_err *err) {
    size_t D = (size_t)c->dim, hd = D / (size_t)c->n_heads, F = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t q, kv, t1, t2, t3, layer, n, bytes;
    int ovf = __builtin_mul_overflow((size_t)c->n_heads, hd, &q) | __builtin_mul_overflow((size_t)c->n_kv_heads, hd, &kv);
    ovf |= __builtin_mul_overflow(q + 2 * kv + q, D, &t1) | __builtin_mul_overflow(3 * F, D, &t2);
    ovf |= __builtin_add_overflow(t1, t2, &layer) | __builtin_add_overflow(layer, 2 * D, &layer);
    ovf |= __builtin_mul_overflow(layer, (size_t)c->n_layers, &n) | __builtin_mul_overflow(V, D, &t3);
    ovf |= __builtin_add_overflow(n, t3 * (c->tie_embeddings ? 1 : 2) + D, &n);
    ovf |= __builtin_mul_overflow(n, sizeof(float), &bytes);
    if (ovf)
        return lqa_err_set(err, "%s: the parameter count of hidden_size %d, intermediate_size %d, num_hidden_layers "
                           "%d, vocab_size %d overflows", path, c->dim, c->hidden_dim, c->n_layers, c->vocab_size);
    double avail = host_fp32 ? lqa_mem_available_bytes() : 0;
    if (avail > 0 && (double)bytes > avail)
        return lqa_err_set(err, "%s: the model's parameters need %.1f GiB (hidden_size %d, intermediate_size %d, "
                           "num_hidden_layers %d, vocab_size %d) but %.1f GiB are available", path,
                           (double)bytes / 1073741824.0, c->dim, c->hidden_dim, c->n_layers, c->vocab_size,
                           avail / 1073741824.0);
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

static int check_shape(const char *where, const lqa_tensor_info *ti, const lqa_st_tensor *t, lqa_err *err) {
    if (shapes_equal(ti, t)) return 0;
    char have[96], want[96];
    format_shape(have, sizeof have, t->ndim, t->shape);
    format_shape(want, sizeof want, ti->ndim, ti->shape);
    return lqa_err_set(err, "%s: tensor %s has shape %s, expected %s", where, ti->name, have, want);
}

/* Refuses non-finite values: x holds elements first.. of tensor ti. */
static int check_finite(const char *where, const lqa_tensor_info *ti, const float *x, size_t n, size_t first,
                        lqa_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lqa_err_set(err, "%s: tensor %s holds %s at element %zu; refusing a model with non-finite weights",
                               where, ti->name, isnan(x[i]) ? "NaN" : "Inf", first + i);
    return 0;
}

/* Copies tensor t (any dtype) into dst after checking it has ti's shape. */
static int load_tensor(const char *where, const lqa_tensor_info *ti, const lqa_st_tensor *t, float *dst,
                       lqa_err *err) {
    if (check_shape(where, ti, t, err)) return -1;
    lqa_st_to_f32(t, dst);
    return check_finite(where, ti, dst, ti->numel, 0, err);
}

/* ---- parameters in the bf16 layout --------------------------------------------------------- */

/* The bf16 load converts through host staging of this many elements (16 MiB fp32 + 8 MiB bf16),
 * whatever the tensor's size. */
enum { BF16_STAGE_ELEMS = 1 << 22 };

/* Elements first..first+n of t (F32, F16 or BF16 at any alignment) as fp32 into out. */
static void st_range_f32(const lqa_st_tensor *t, size_t first, size_t n, float *out) {
    const unsigned char *p = (const unsigned char *)t->data;
    if (t->dtype == LQA_ST_F32) {
        memcpy(out, p + 4 * first, 4 * n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * (first + i), 2);
        out[i] = t->dtype == LQA_ST_F16 ? lqa_f16_to_f32(h) : lqa_bf16_to_f32(h);
    }
}

/* Tensor t into the bf16 layout: fp32 into params_lp (host), or rounded to bf16 and uploaded
 * into params16 stage by stage. */
static int load_tensor_bf16(const char *where, lqa_model *m, int i, const lqa_st_tensor *t, float *f32,
                            lqa_bf16 *b16, lqa_err *err) {
    const lqa_tensor_info *ti = &m->tensors[i];
    if (check_shape(where, ti, t, err)) return -1;
    for (size_t first = 0; first < ti->numel; first += BF16_STAGE_ELEMS) {
        size_t n = ti->numel - first < BF16_STAGE_ELEMS ? ti->numel - first : BF16_STAGE_ELEMS;
        if (ti->lp_offset != LQA_NOT_LORA_PLUS) {
            float *dst = m->params_lp + ti->lp_offset + first;
            st_range_f32(t, first, n, dst);
            if (check_finite(where, ti, dst, n, first, err)) return -1;
            continue;
        }
        st_range_f32(t, first, n, f32);
        if (check_finite(where, ti, f32, n, first, err)) return -1;
        lqa_bf16_from_floats(b16, f32, n);
        m->be16->to_device((char *)m->params16 + 2 * (ti->b16_offset + first), b16, 2 * n);
    }
    return 0;
}

/* The model of dir: fp32 in host memory (be16 NULL), or the bf16 layout with its frozen weights
 * on be16 (after lqa_model_bf16_check for train). */
static int hf_load(const char *dir, lqa_model *m, const lqa_backend *be16, lqa_train_set train, lqa_err *err) {
    lqa_config cfg;
    memset(m, 0, sizeof *m);
    if (lqa_hf_read_config(dir, &cfg, err) || (be16 && lqa_model_bf16_check(be16, &cfg, train, err))) return -1;
    char *cpath = lqa_path_join(dir, "config.json");
    int big = check_param_bytes(cpath, &cfg, !be16, err); /* bf16: the device's memory is the trainer's check */
    free(cpath);
    if (big) return -1;
    lqa_st_reader r;
    if (lqa_st_open_dir(&r, dir, err)) return -1;
    float *f32 = NULL;
    lqa_bf16 *b16 = NULL;
    if (be16) {
        lqa_model_alloc_bf16(m, &cfg, be16);
        f32 = lqa_malloc(sizeof(float) * BF16_STAGE_ELEMS);
        b16 = lqa_malloc(sizeof(lqa_bf16) * BF16_STAGE_ELEMS);
    } else {
        lqa_model_alloc(m, &cfg);
    }
    int rc = 0;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const lqa_tensor_info *ti = &m->tensors[i];
        const lqa_st_tensor *t = lqa_st_find(&r, ti->name);
        if (!t) rc = lqa_err_set(err, "%s: tensor %s is missing from the model's safetensors", dir, ti->name);
        else if (be16) rc = load_tensor_bf16(dir, m, i, t, f32, b16, err);
        else rc = load_tensor(dir, ti, t, m->params + ti->offset, err);
    }
    for (int i = 0; i < r.n_tensors && !rc; i++) {
        int known = 0;
        for (int k = 0; k < m->n_tensors && !known; k++) known = !strcmp(m->tensors[k].name, r.tensors[i].name);
        if (!known) log_debug("%s: ignoring tensor %s", dir, r.tensors[i].name);
    }
    free(f32);
    free(b16);
    lqa_st_close(&r);
    if (rc) lqa_model_free(m);
    return rc;
}

int lqa_hf_load(const char *dir, lqa_model *m, lqa_err *err) {
    return hf_load(dir, m, NULL, LQA_TRAIN_LORA, err);
}

int lqa_hf_load_bf16(const char *dir, lqa_model *m, const lqa_backend *be, lqa_train_set train, lqa_err *err) {
    return hf_load(dir, m, be, train, err);
}

int lqa_hf_check_kv_cache(const char *dir, const lqa_model *m, const lqa_backend *be, long long ctx, lqa_err *err) {
    const lqa_config *c = &m->cfg;
    size_t kvdim = (size_t)c->n_kv_heads * (size_t)(c->dim / c->n_heads), per_pos, bytes;
    size_t value = m->params16 ? 2 : sizeof(float);
    int ovf = ctx < 0 || __builtin_mul_overflow(kvdim, 2 * value * (size_t)c->n_layers, &per_pos) ||
              __builtin_mul_overflow(per_pos, (size_t)ctx, &bytes);
    size_t free_b = 0, total_b = 0;
    if (!be->host_memory) be->mem_info(&free_b, &total_b);
    double avail = be->host_memory ? lqa_mem_available_bytes() : (double)free_b;
    if (ovf || (avail > 0 && (double)bytes > avail))
        return lqa_err_set(err, "%s: a context of %lld tokens needs a %s%.1f GiB key/value cache (num_hidden_layers %d, "
                           "%zu key/value dims, %zu B each) but %.1f GiB are available%s; give a shorter --ctx", dir,
                           ctx, ovf ? "size_t-overflowing " : "", ovf ? 0.0 : (double)bytes / 1073741824.0,
                           c->n_layers, kvdim, value, avail / 1073741824.0, be->host_memory ? "" : " on the device");
    return 0;
}

int lqa_hf_copy_file(const char *src, const char *dst, lqa_err *err) {
    char *data;
    size_t n;
    if (lqa_read_file(src, &data, &n, err)) return -1;
    int rc = lqa_write_file_atomic(dst, data, n, err);
    free(data);
    return rc;
}

/* The tokenizer files a LLaMA folder carries besides tokenizer.model, taken from the
 * tokenizer's own folder when it has them (a base model's, on merge and full training). */
static const char *const TOKENIZER_SIDE_FILES[] = {"tokenizer_config.json", "tokenizer.json",
                                                   "special_tokens_map.json", "generation_config.json"};

/* A piece of the tokenizer by id, or dflt when the id is out of its range. */
static const char *piece_or(const lqa_tokenizer *t, int id, const char *dflt) {
    const char *p = t && id >= 0 ? lqa_tok_id_to_piece(t, id) : NULL;
    return p ? p : dflt;
}

/* tokenizer_config.json as transformers' LlamaTokenizer reads it: BOS added, EOS not (our
 * records start with BOS), no pad token, sentencepiece's own spacing (legacy false). */
static json_t *tokenizer_config_json(const lqa_config *c, const lqa_tokenizer *t) {
    json_t *j = json_pack("{s:b, s:b, s:s, s:s, s:s, s:n, s:b, s:b, s:i, s:s, s:{}, s:s}", "add_bos_token", 1,
                          "add_eos_token", 0, "bos_token", piece_or(t, c->bos_id, "<s>"), "eos_token",
                          piece_or(t, c->eos_id, "</s>"), "unk_token", piece_or(t, t ? lqa_tok_unk_id(t) : 0, "<unk>"),
                          "pad_token", "clean_up_tokenization_spaces", 0, "legacy", 0, "model_max_length", c->max_pos,
                          "padding_side", "right", "sp_model_kwargs", "tokenizer_class", "LlamaTokenizer");
    mallocCheck(j);
    return j;
}

static json_t *special_tokens_map_json(const lqa_config *c, const lqa_tokenizer *t) {
    json_t *j = json_pack("{s:s, s:s, s:s}", "bos_token", piece_or(t, c->bos_id, "<s>"), "eos_token",
                          piece_or(t, c->eos_id, "</s>"), "unk_token", piece_or(t, t ? lqa_tok_unk_id(t) : 0, "<unk>"));
    mallocCheck(j);
    return j;
}

static json_t *generation_config_json(const lqa_config *c) {
    json_t *j = json_pack("{s:i, s:i}", "bos_token_id", c->bos_id, "eos_token_id", c->eos_id);
    mallocCheck(j);
    return j;
}

static int write_json_in(const char *dir, const char *name, json_t *j, lqa_err *err) {
    char *path = lqa_path_join(dir, name);
    int rc = lqa_json_write_file(path, j, err);
    free(path);
    json_decref(j);
    return rc;
}

int lqa_hf_carry_side_files(const char *src_dir, const char *dir, lqa_err *err) {
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        char *src = lqa_path_join(src_dir, TOKENIZER_SIDE_FILES[i]), *dst = lqa_path_join(dir, TOKENIZER_SIDE_FILES[i]);
        if (lqa_path_exists(src) && strcmp(src, dst)) rc = lqa_hf_copy_file(src, dst, err);
        free(src);
        free(dst);
    }
    return rc;
}

/* Copies the side files src_dir has into dir; writes ours for the three we can make and src_dir
 * lacks (tokenizer.json is only ever carried over). */
static int write_tokenizer_side_files(const char *dir, const char *src_dir, const lqa_config *c,
                                      const char *tokenizer_path, lqa_err *err) {
    int rc = lqa_hf_carry_side_files(src_dir, dir, err), have[4];
    for (int i = 0; i < 4; i++) {
        char *src = lqa_path_join(src_dir, TOKENIZER_SIDE_FILES[i]);
        have[i] = lqa_path_exists(src);
        free(src);
    }
    if (rc || (have[0] && have[2] && have[3])) return rc;
    lqa_tokenizer *t = lqa_tok_load(tokenizer_path, NULL); /* for the pieces' names; defaults without it */
    if (!have[0]) rc = write_json_in(dir, "tokenizer_config.json", tokenizer_config_json(c, t), err);
    if (!rc && !have[2]) rc = write_json_in(dir, "special_tokens_map.json", special_tokens_map_json(c, t), err);
    if (!rc && !have[3]) rc = write_json_in(dir, "generation_config.json", generation_config_json(c), err);
    lqa_tok_free(t);
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
        char *src_dir = lqa_strdup(o->tokenizer_path);
        char *slash = strrchr(src_dir, '/');
        if (slash) *slash = '\0';
        if (!rc) rc = write_tokenizer_side_files(dir, slash ? src_dir : ".", &m->cfg, o->tokenizer_path, err);
        free(src_dir);
    } else if (!rc) {
        log_warn("%s: written without a tokenizer (the source has no tokenizer.model): copy the base model's "
                 "tokenizer files in before loading it with transformers or lqa-eval", dir);
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
