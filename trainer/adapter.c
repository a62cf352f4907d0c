/* adapter.c: PEFT-compatible LoRA adapter directories (adapter_config.json,
 * adapter_model.safetensors, trainable_params.safetensors): save, load with shape checks, and
 * the --lora-targets list. See adapter.h. */
#include "trainer/adapter.h"

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
static const char PEFT_PREFIX[] = "base_model.model.";

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

static json_t *adapter_config_json(const lqa_model *m, const char *base_model) {
    json_t *targets = json_array();
    for (int i = 0; i < N_TARGETS; i++)
        if (m->lora_targets & (1 << i)) json_array_append_new(targets, json_string(PEFT_NAMES[i]));
    /* the keys PEFT's LoraConfig writes, so PeftModel.from_pretrained reads it unchanged */
    json_t *j = json_pack("{s:{}, s:n, s:s, s:s, s:b, s:b, s:b, s:n, s:n, s:f, s:f, s:n, s:s, s:i, s:{}, s:n,"
                          " s:o, s:s, s:b, s:b}",
                          "alpha_pattern", "auto_mapping", "base_model_name_or_path", base_model ? base_model : "",
                          "bias", "none", "fan_in_fan_out", 0, "inference_mode", 1, "init_lora_weights", 1,
                          "layers_pattern", "layers_to_transform", "lora_alpha", (double)m->lora_alpha,
                          "lora_dropout", 0.0, "modules_to_save", "peft_type", "LORA", "r", m->lora_rank,
                          "rank_pattern", "revision", "target_modules", targets, "task_type", "CAUSAL_LM",
                          "use_dora", 0, "use_rslora", 0);
    mallocCheck(j);
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

static void fill_entry(lqa_st_entry *e, const lqa_tensor_info *ti, const float *buf) {
    e->name = ti->name;
    e->ndim = ti->ndim;
    for (int d = 0; d < ti->ndim; d++) e->shape[d] = ti->shape[d];
    e->data = buf + ti->offset;
}

/* The base tensors that lora+ trains besides LoRA: the embedding and every RMSNorm weight. */
int lqa_is_lora_plus_tensor(const char *name) {
    return !strcmp(name, "model.embed_tokens.weight") || strstr(name, "norm.weight") != NULL;
}

int lqa_adapter_save(const char *dir, const lqa_model *m, lqa_train_set train, const char *base_model,
                     lqa_err *err) {
    if (!m->lora) return lqa_err_set(err, "%s: the model has no LoRA adapter to save", dir);
    if (lqa_mkdir_p(dir, err)) return -1;
    lqa_st_entry *e = lqa_calloc((size_t)(m->n_lora_tensors + m->n_tensors), sizeof *e);
    for (int i = 0; i < m->n_lora_tensors; i++) fill_entry(&e[i], &m->lora_tensors[i], m->lora);
    char *path = lqa_path_join(dir, "adapter_model.safetensors");
    /* says that lqa_training.json belongs to this adapter (apply_training_record); other tools
     * read only "format" from the metadata */
    json_t *meta = json_pack("{s:s, s:s}", "format", "pt", LQA_TRAINING_RECORD_KEY, "lqa_training.json");
    mallocCheck(meta);
    int rc = lqa_st_write(path, e, m->n_lora_tensors, LQA_ST_F32, meta, err);
    json_decref(meta);
    free(path);
    if (!rc && train == LQA_TRAIN_LORA_PLUS) {
        int n = 0;
        for (int i = 0; i < m->n_tensors; i++)
            if (lqa_is_lora_plus_tensor(m->tensors[i].name)) fill_entry(&e[n++], &m->tensors[i], m->params);
        path = lqa_path_join(dir, "trainable_params.safetensors");
        rc = lqa_st_write(path, e, n, LQA_ST_F32, NULL, err);
        free(path);
    }
    free(e);
    if (!rc) {
        json_t *j = adapter_config_json(m, base_model);
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

static int load_lora_tensors(const char *path, lqa_model *m, int *has_record, lqa_err *err) {
    lqa_st_reader r;
    if (lqa_st_open(&r, path, err)) return -1;
    *has_record = json_object_get(r.metadata, LQA_TRAINING_RECORD_KEY) != NULL;
    int rc = 0;
    for (int i = 0; i < r.n_tensors && !rc; i++) {
        const lqa_tensor_info *ti;
        if (!lqa_model_tensor(m, r.tensors[i].name, &ti) || !strstr(r.tensors[i].name, ".lora_"))
            rc = lqa_err_set(err, "%s: tensor %s has no place in the base model with this adapter_config "
                             "(an adapter for another base model?)", path, r.tensors[i].name);
    }
    for (int i = 0; i < m->n_lora_tensors && !rc; i++) {
        const lqa_tensor_info *ti = &m->lora_tensors[i];
        const lqa_st_tensor *t = lqa_st_find(&r, ti->name);
        if (!t) rc = lqa_err_set(err, "%s: tensor %s is missing", path, ti->name);
        else if (!(rc = check_shape(path, ti, t, err))) lqa_st_to_f32(t, m->lora + ti->offset);
    }
    lqa_st_close(&r);
    return rc;
}

static int load_trainable_params(const char *path, lqa_model *m, lqa_err *err) {
    lqa_st_reader r;
    if (lqa_st_open(&r, path, err)) return -1;
    int rc = 0;
    for (int i = 0; i < r.n_tensors && !rc; i++) {
        const lqa_st_tensor *t = &r.tensors[i];
        const char *name = t->name;
        if (!strncmp(name, PEFT_PREFIX, sizeof PEFT_PREFIX - 1)) name += sizeof PEFT_PREFIX - 1;
        const lqa_tensor_info *ti;
        float *dst = lqa_model_tensor(m, name, &ti);
        if (!dst || strstr(name, ".lora_"))
            rc = lqa_err_set(err, "%s: tensor %s is not a parameter of the base model", path, t->name);
        else if (!(rc = check_shape(path, ti, t, err))) lqa_st_to_f32(t, dst);
    }
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
        rc = load_lora_tensors(path, m, &has_record, err);
    }
    free(path);
    path = lqa_path_join(dir, "trainable_params.safetensors");
    if (!rc && lqa_path_exists(path)) rc = load_trainable_params(path, m, err);
    free(path);
    if (!rc) rc = apply_training_record(dir, has_record, &m->cfg, err);
    return rc;
}
