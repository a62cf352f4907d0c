/* hfconfig.h: a Hugging Face LLaMA config.json <-> lqa_config: hidden_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size,
 * max_position_embeddings, RoPE in transformers 5.x form (rope_parameters {rope_type,
 * rope_theta, factor, ...}) or 4.x form (rope_theta + rope_scaling), types default, linear and
 * llama3, rms_norm_eps, tie_word_embeddings, vocab_size, bos/eos ids; every typed value strict.
 * Model directories as a whole (weights, tokenizer) are model/hfdir.h. */
#ifndef LQA_HFCONFIG_H
#define LQA_HFCONFIG_H

#include <jansson.h>

#include "common/check.h"
#include "common/safetensors.h"
#include "model/model.h"

/* Parses DIR/config.json; errors name the file and the key that is missing, of the wrong type
 * or not implemented (a RoPE type other than default / linear / llama3). */
int lqa_hf_read_config(const char *dir, lqa_config *cfg, lqa_err *err);
/* The same from config.json's n bytes in memory; path names it in errors. */
int lqa_hf_parse_config(const char *path, const char *text, size_t n, lqa_config *cfg, lqa_err *err);
/* config.json as transformers writes it for LlamaForCausalLM (new reference), RoPE in the form
 * the config was read in (cfg->rope_hf5), 4.x's for a new model. */
json_t *lqa_hf_config_json(const lqa_config *cfg, lqa_st_dtype dtype);
int lqa_hf_write_config(const char *dir, const lqa_config *cfg, lqa_st_dtype dtype, lqa_err *err);

#endif
