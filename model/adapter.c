/* adapter.c: PEFT-compatible LoRA adapter directories (adapter_config.json,
 * adapter_model.safetensors, trainable_params.safetensors): save, load with shape checks, and
 * the --lora-targets list. See adapter.h. */
#include "model/adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/safetensors.h"

/* In adapter_model.safetensors' metadata: lqa_training.json belongs with this adapter. */
#define LQA_TRAINING_RECORD_KEY "lqa_training_record"

static const char *const SHORT_NAMES[] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const PEFT_NAMES[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
#define N_TARGETS 7

/* The prefix LongLoRA's trainable_params.bin carries (the PeftModel's own names). */
#define PEFT_PREFIX_S "base_model.model."
static const char PEFT_PREFIX[] = PEFT_PREFIX_S;

int lqa_lora_targets_parse(const char *s, int *targets, lqa_err *err) {
    *targets = 0;
    char *copy = lqa_strdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < N_TARGETS; i++)
            if (!strcmp(tok, SHORT_NAMES[i]) || !strcmp(tok, PEFT_NAMES[i])) found = i;
        if (found < 0) rc = lqa_err_set(err, "LoRA target '%s' is unknown, expected some of q,k,v,o,gate,up,down", tok);
        else *targets |= 1 << found;
    }
    if (!rc && !*targets) rc = lqa_err_set(err, "LoRA targets '%s' name no module, expected e.g. q,k,v,o", s);
    free(copy);
    return rc;
}

void lqa_lora_targets_format(int targets, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_TARGETS && o < n; i++)
        if (targets & (1 << i)) o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? "," : "", SHORT_NAMES[i]);
}

/* ---- adapter_config.json ------------------------------------------------------------------- */

/* PEFT's modules_to_save for lora+: the module names whose whole weights the adapter carries
 * (PEFT matches each against the end of a module's name: "norm" is the final model.norm). */
static const char *const LORA_PLUS_MODULES[] = {"embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"};

static json_t *adapter_config_json(const lqa_model *m, lqa_train_set train, const char *base_model) {
    json_t *mts = json_null();
    if (train == LQA_TRAIN_LORA_PLUS) {
        mts = json_array();
        for (int i = 0; i < 4; i++) json_array_append_new(mts, json_string(LORA_PLUS_MODULES[i]));
    }
    json_t *targets = json_array();
    for (int i = 0; i < N_TARGETS; i++)
        if (m->lora_targets & (1 << i)) json_array_append_new(targets, json_string(PEFT_NAMES[i]));
    /* the keys PEFT's LoraConfig writes, so PeftModel.from_pretrained reads it unchanged */
    json_t *j = json_pack("{s:{}, s:n, s:s, s:s, s:b, s:b, s:b, s:n, s:n, s:f, s:f, s:o, s:s, s:i, s:{}, s:n,"
                          " s:o, s:s, s:b, s:b}",
                          "alpha_pattern", "auto_mapping", "base_model_name_or_path", base_model ? base_model : "",
                          "bias", "none", "fan_in_fan_out", 0, "inference_mode", 1, "init_lora_weights", 1,
                          "layers_pattern", "layers_to_transform", "lora_alpha", (double)m->lora_alpha,
                          "lora_dropout", 0.0, "modules_to_save", mts, "peft_type", "LORA", "r", m->lora_rank,
                          "rank_pattern", "revision", "target_modules", targets, "task_type", "CAUSAL_LM",
                          "use_dora", 0, "use_rslora", 0);
    mallocCheck(j);
    /* a tied head shares the embedding: PEFT keeps them tied only when asked (peft >= 0.18) */
    if (train == LQA_TRAIN_LORA_PLUS && m->cfg.tie_embeddings) json_object_set_new(j, "ensure_weight_tying", json_true());
    return j;
}

static int targets_from_json(const char *path, json_t *tm, int *targets, lqa_err *err) {
    *targets = 0;
    if (!json_is_array(tm) || json_array_size(tm) == 0)
        return lqa_err_set(err, "%s: \"target_modules\" is not a non-empty list of module names", path);
    size_t i;
    json_t *v;
    json_array_foreach(tm, i, v) {
        int t;
        if (!json_is_string(v) || lqa_lora_targets_parse(json_string_value(v), &t, err))
            return lqa_err_set(err, "%s: target_modules[%zu] is not one of q_proj,k_proj,v_proj,o_proj,gate_proj,"
                               "up_proj,down_proj", path, i);
        *targets |= t;
    }
    return 0;
}

static int parse_adapter_config(const char *path, json_t *j, lqa_adapter_config *c, lqa_err *err) {
    const char *pt = lqa_json_str(j, "peft_type", NULL);
    if (!pt || strcmp(pt, "LORA")) return lqa_err_set(err, "%s: peft_type is %s, expected \"LORA\"", path, pt ? pt : "missing");
    long long r = lqa_json_int(j, "r", -1);
    if (r <= 0 || r > 65536) return lqa_err_set(err, "%s: \"r\" is missing or not a positive integer", path);
    c->rank = (int)r;
    c->alpha = (float)lqa_json_num(j, "lora_alpha", -1);
    if (!(c->alpha > 0)) return lqa_err_set(err, "%s: \"lora_alpha\" is missing or not positive", path);
    const char *bias = lqa_json_str(j, "bias", "none");
    if (strcmp(bias, "none")) return lqa_err_set(err, "%s: bias is '%s', expected \"none\"", path, bias);
    if (json_is_true(json_object_get(j, "use_dora")) || json_is_true(json_object_get(j, "use_rslora")))
        return lqa_err_set(err, "%s: DoRA / rsLoRA adapters are not supported, expected plain LoRA", path);
    snprintf(c->base_model, sizeof c->base_model, "%s", lqa_json_str(j, "base_model_name_or_path", ""));
    return targets_from_json(path, json_object_get(j, "target_modules"), &c->targets, err);
}

int lqa_adapter_read_config(const char *dir, lqa_adapter_config *c, lqa_err *err) {
    memset(c, 0, sizeof *c);
    char *path = lqa_path_join(dir, "adapter_config.json");
    int rc = -1;
    if (!lqa_path_exists(path)) {
        lqa_err_set(err, "%s: no adapter_config.json (is this an adapter directory such as RUN/final?)", dir);
    } else {
        json_t *j = lqa_json_load_file(path, err);
        if (j) {
            rc = json_is_object(j) ? parse_adapter_config(path, j, c, err) : lqa_err_set(err, "%s: not an object", path);
            json_decref(j);
        }
    }
    free(path);
    return rc;
}

/* ---- save ---------------------------------------------------------------------------------- */

static void fill_entry(lqa_st_entry *e, const lqa_tensor_info *ti, const float *data) {
    e->name = ti->name;
    e->ndim = ti->ndim;
    for (int d = 0; d < ti->ndim; d++) e->shape[d] = ti->shape[d];
    e->data = data;
}

/* Base tensor t, fp32 (params, or params_lp in the bf16 layout: embedding and norms). */
static void fill_base_entry(lqa_st_entry *e, const lqa_model *m, int t) {
    fill_entry(e, &m->tensors[t], lqa_model_base_f32(m, t));
}

/* The base tensors that lora+ trains besides LoRA: the embedding and every RMSNorm weight. */
int lqa_is_lora_plus_tensor(const char *name) {
    return !strcmp(name, "model.embed_tokens.weight") || strstr(name, "norm.weight") != NULL;
}

/* The adapter's own name of a base tensor it carries whole (PEFT's modules_to_save key). */
static void peft_name(char *buf, size_t n, const char *hf_name) {
    snprintf(buf, n, "%s%s", PEFT_PREFIX, hf_name);
}

int lqa_adapter_save(const char *dir, const lqa_model *m, lqa_train_set train, const char *base_model,
                     lqa_err *err) {
    if (!m->lora) return lqa_err_set(err, "%s: the model has no LoRA adapter to save", dir);
    if (lqa_mkdir_p(dir, err)) return -1;
    int n = m->n_lora_tensors;
    lqa_st_entry *e = lqa_calloc((size_t)(m->n_lora_tensors + m->n_tensors), sizeof *e);
    char (*names)[160] = lqa_calloc((size_t)m->n_tensors, sizeof *names);
    for (int i = 0; i < m->n_lora_tensors; i++)
        fill_entry(&e[i], &m->lora_tensors[i], m->lora + m->lora_tensors[i].offset);
    /* lora+: the trained embedding and norms go into the adapter as PEFT saves modules_to_save,
     * so PeftModel.from_pretrained(base, dir) alone is the whole trained model */
    for (int i = 0; train == LQA_TRAIN_LORA_PLUS && i < m->n_tensors; i++)
        if (lqa_is_lora_plus_tensor(m->tensors[i].name)) {
            fill_base_entry(&e[n], m, i);
            peft_name(names[i], sizeof names[i], m->tensors[i].name);
            e[n++].name = names[i];
        }
    /* tied: PEFT's ensure_weight_tying wraps the head too and reads its (shared) weight */
    const lqa_tensor_info *emb = NULL;
    if (train == LQA_TRAIN_LORA_PLUS && m->cfg.tie_embeddings &&
        lqa_model_tensor((lqa_model *)m, "model.embed_tokens.weight", &emb)) {
        fill_base_entry(&e[n], m, 0);
        e[n++].name = PEFT_PREFIX_S "lm_head.weight";
    }
    char *path = lqa_path_join(dir, "adapter_model.safetensors");
    /* says that lqa_training.json belongs to this adapter (apply_training_record); other tools
     * read only "format" from the metadata */
    json_t *meta = json_pack("{s:s, s:s}", "format", "pt", LQA_TRAINING_RECORD_KEY, "lqa_training.json");
    mallocCheck(meta);
    int rc = lqa_st_write(path, e, n, LQA_ST_F32, meta, err);
    json_decref(meta);
    free(path);
    free(names);
    free(e);
    /* an older run's side file would be read on load and override the adapter's tensors */
    path = lqa_path_join(dir, "trainable_params.safetensors");
    if (!rc && lqa_path_exists(path) && remove(path))
        rc = lqa_err_set(err, "%s: cannot remove the stale trainable_params.safetensors", dir);
    free(path);
    if (!rc) {
        /* absolute, so AutoPeftModelForCausalLM finds the base from anywhere */
        char *abs = base_model ? realpath(base_model, NULL) : NULL;
        json_t *j = adapter_config_json(m, train, abs ? abs : base_model);
        free(abs);
        path = lqa_path_join(dir, "adapter_config.json");
        rc = lqa_json_write_file(path, j, err);
        free(path);
        json_decref(j);
    }
    return rc;
}

/* ---- load ---------------------------------------------------------------------------------- */

static int check_shape(const char *path, const lqa_tensor_info *ti, const lqa_st_tensor *t, lqa_err *err) {
    int same = ti->ndim == t->ndim;
    for (int d = 0; same && d < ti->ndim; d++) same = ti->shape[d] == t->shape[d];
    if (same) return 0;
    return lqa_err_set(err, "%s: tensor %s has shape [%lld, %lld], the base model expects [%lld, %lld] "
                       "(an adapter for another base model?)", path, t->name, (long long)t->shape[0],
                       (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)ti->shape[0],
                       (long long)(ti->ndim > 1 ? ti->shape[1] : 1));
}

/* Converts t into dst after the shape check; non-finite values are refused with the name. */
static int load_checked(const char *path, const lqa_tensor_info *ti, const lqa_st_tensor *t, float *dst,
                        lqa_err *err) {
    if (check_shape(path, ti, t, err)) return -1;
    lqa_st_to_f32(t, dst);
    for (size_t i = 0; i < ti->numel; i++)
        if (!isfinite(dst[i]))
            return lqa_err_set(err, "%s: tensor %s holds %s at element %zu; refusing non-finite weights", path,
                               t->name, isnan(dst[i]) ? "NaN" : "Inf", i);
    return 0;
}

/* A base parameter the adapter carries whole (PEFT modules_to_save, LongLoRA's trainable
 * params): its name with or without the PeftModel prefix; NULL when it names none. */
static float *base_param(lqa_model *m, const char *name, const lqa_tensor_info **ti) {
    if (!strncmp(name, PEFT_PREFIX, sizeof PEFT_PREFIX - 1)) name += sizeof PEFT_PREFIX - 1;
    if (strstr(name, ".lora_")) return NULL;
    float *dst = lqa_model_tensor(m, name, ti);
    return dst && *ti >= m->tensors && *ti < m->tensors + m->n_tensors ? dst : NULL;
}

/* Tensor t of path into the base parameter it names; otherwise an error saying it is `what`. */
static int load_base_tensor(const char *path, lqa_model *m, const lqa_st_tensor *t, const char *what, lqa_err *err) {
    const lqa_tensor_info *ti;
    float *dst = base_param(m, t->name, &ti);
    if (!dst) return lqa_err_set(err, "%s: tensor %s is %s", path, t->name, what);
    return load_checked(path, ti, t, dst, err);
}

/* adapter_model.safetensors: LoRA A and B under PEFT's names, and the modules_to_save weights
 * (base_model.model.model.embed_tokens.weight, ...) that replace the base's. */
static int load_adapter_tensors(const char *path, lqa_model *m, int *has_record, lqa_err *err) {
    lqa_st_reader r;
    if (lqa_st_open(&r, path, err)) return -1;
    *has_record = json_object_get(r.metadata, LQA_TRAINING_RECORD_KEY) != NULL;
    int rc = 0;
    for (int i = 0; i < r.n_tensors && !rc; i++) {
        const lqa_st_tensor *t = &r.tensors[i];
        const lqa_tensor_info *ti;
        if (strstr(t->name, ".lora_")) {
            if (!lqa_model_tensor(m, t->name, &ti))
                rc = lqa_err_set(err, "%s: LoRA tensor %s is not among the adapter_config's target_modules of this "
                                 "base model (num_hidden_layers %d; an adapter for another base model?)", path, t->name,
                                 m->cfg.n_layers);
            continue;
        }
        if (m->cfg.tie_embeddings && !strcmp(t->name, PEFT_PREFIX_S "lm_head.weight") && !base_param(m, t->name, &ti))
            continue; /* the tied head is the embedding, which the adapter carries too */
        rc = load_base_tensor(path, m, t,
                              "neither a LoRA weight nor a parameter of the base model (a modules_to_save "
                              "weight is named base_model.model.<HF name>)", err);
    }
    for (int i = 0; i < m->n_lora_tensors && !rc; i++) {
        const lqa_tensor_info *ti = &m->lora_tensors[i];
        const lqa_st_tensor *t = lqa_st_find(&r, ti->name);
        if (!t) rc = lqa_err_set(err, "%s: tensor %s is missing", path, ti->name);
        else rc = load_checked(path, ti, t, m->lora + ti->offset, err);
    }
    lqa_st_close(&r);
    return rc;
}

/* trainable_params.safetensors (older lqa runs; LongLoRA's names are accepted too). */
static int load_trainable_params(const char *path, lqa_model *m, lqa_err *err) {
    lqa_st_reader r;
    if (lqa_st_open(&r, path, err)) return -1;
    int rc = 0;
    for (int i = 0; i < r.n_tensors && !rc; i++)
        rc = load_base_tensor(path, m, &r.tensors[i], "not a parameter of the base model", err);
    lqa_st_close(&r);
    return rc;
}

/* lqa_training.json (written by lqa-sft train next to the adapter): the position interpolation
 * the adapter was trained with, so the adapted model runs at the trained context. */
static int apply_training_record(const char *dir, int required, lqa_config *cfg, lqa_err *err) {
    char *p = lqa_path_join(dir, "lqa_training.json");
    int rc = 0;
    if (required && !lqa_path_exists(p))
        rc = lqa_err_set(err, "%s: missing: this adapter was written by lqa-sft train, which records the run's "
                         "position interpolation (rope scale, max_position_embeddings) there; without it the model "
                         "would run at the base context. Copy the whole final/ folder of the run", p);
    if (lqa_path_exists(p)) {
        json_t *j = lqa_json_load_file(p, err);
        if (!j) {
            rc = -1;
        } else {
            double scale = lqa_json_num(j, "rope_scale", 1.0);
            long long max_pos = lqa_json_int(j, "max_position_embeddings", cfg->max_pos);
            if (!(scale >= 1.0 && scale <= 1e6) || max_pos < 2 || max_pos > (1 << 30))
                rc = lqa_err_set(err, "%s: rope_scale %g or max_position_embeddings %lld invalid", p, scale, max_pos);
            else if ((float)scale > cfg->rope_scale) {
                cfg->rope_scale = (float)scale;
                cfg->max_pos = (int)max_pos;
            }
            json_decref(j);
        }
    }
    free(p);
    return rc;
}

int lqa_adapter_load(const char *dir, lqa_model *m, lqa_err *err) {
    lqa_adapter_config c;
    if (lqa_adapter_read_config(dir, &c, err)) return -1;
    if (m->lora) return lqa_err_set(err, "%s: the model already has a LoRA adapter", dir);
    char *path = lqa_path_join(dir, "adapter_model.safetensors");
    int rc, has_record = 0;
    if (!lqa_path_exists(path)) {
        rc = lqa_err_set(err, "%s: adapter_model.safetensors is missing", dir);
    } else {
        lqa_model_add_lora(m, c.targets, c.rank, c.alpha, 0);
        rc = load_adapter_tensors(path, m, &has_record, err);
    }
    free(path);
    path = lqa_path_join(dir, "trainable_params.safetensors");
    if (!rc && lqa_path_exists(path)) rc = load_trainable_params(path, m, err);
    free(path);
    if (!rc) rc = apply_training_record(dir, has_record, &m->cfg, err);
    return rc;
}
