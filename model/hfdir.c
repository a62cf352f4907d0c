/* hfdir.c: HF LLaMA model directories: parameters by HF tensor name through common/safetensors,
 * tokenizer.model and its side files; config.json is model/hfconfig.c. See hfdir.h. */
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

/* ---- parameters ---------------------------------------------------------------------------- */

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
