/* hfdir.h: the Hugging Face LLaMA model directory: config.json (model/hfconfig.h), the
 * parameters by their HF tensor names from model.safetensors or a sharded set with
 * model.safetensors.index.json (F32/F16/BF16; non-finite values refused by name), tokenizer.model
 * and the tokenizer side files (tokenizer_config.json, special_tokens_map.json,
 * generation_config.json, tokenizer.json). Real LLaMA checkpoints load unchanged; trainer and
 * eval both load through it. */
#ifndef LQA_HFDIR_H
#define LQA_HFDIR_H

#include <jansson.h>

#include "common/check.h"
#include "common/safetensors.h"
#include "model/hfconfig.h"
#include "model/model.h"

/* Loads config and every base parameter into m (allocated here with lqa_model_alloc; the caller
 * frees with lqa_model_free). A shape whose parameters overflow or exceed the machine's memory
 * is refused before allocating. Missing tensors, wrong shapes or non-finite values are errors
 * naming the tensor;
 * extra tensors (e.g. rotary_emb.inv_freq) are ignored; lm_head is ignored when tied. */
int lqa_hf_load(const char *dir, lqa_model *m, lqa_err *err);
/* The same into the bf16 layout (model.h, --dtype bf16) on backend be, for a run that trains
 * `train` (lqa_model_bf16_check's refusals first): the safetensors shards are memory-mapped and
 * read tensor by tensor, the embedding and norms into params_lp (fp32, host), every other tensor
 * converted (F32/F16/BF16 -> bf16, round to nearest even) through a bounded host staging buffer
 * into params16 in be's memory: no fp32 copy of the model anywhere. */
int lqa_hf_load_bf16(const char *dir, lqa_model *m, const lqa_backend *be, lqa_train_set train, lqa_err *err);

typedef struct lqa_hf_save_opts {
    lqa_st_dtype dtype;          /* storage dtype (default F32) */
    size_t max_shard_bytes;      /* 0: one model.safetensors */
    const char *tokenizer_path;  /* copied in as tokenizer.model when not NULL */
} lqa_hf_save_opts;

/* Writes config.json, the base parameters (not LoRA) and tokenizer.model into dir (created),
 * with tokenizer_config.json, special_tokens_map.json and generation_config.json: those of the
 * tokenizer's own folder when it has them (with its tokenizer.json), else LLaMA's, made here. */
int lqa_hf_save(const char *dir, const lqa_model *m, const lqa_hf_save_opts *o, lqa_err *err);

/* Refuses a key/value cache of ctx positions for m (what eval allocates: 4 B per value, 2 B in
 * the bf16 layout) whose size overflows or exceeds the free memory of be (the machine's, or the
 * device's after the model's weights), naming dir and the context; 0 when it fits. */
int lqa_hf_check_kv_cache(const char *dir, const lqa_model *m, const lqa_backend *be, long long ctx, lqa_err *err);

/* DIR/tokenizer.model (freshly allocated path); NULL with err set when absent. */
char *lqa_hf_tokenizer_path(const char *dir, lqa_err *err);
/* Copies those of tokenizer_config.json, tokenizer.json, special_tokens_map.json and
 * generation_config.json that src_dir has into dir (merge of a base without tokenizer.model). */
int lqa_hf_carry_side_files(const char *src_dir, const char *dir, lqa_err *err);
/* Copies a file (atomically) to dst. */
int lqa_hf_copy_file(const char *src, const char *dst, lqa_err *err);

#endif
