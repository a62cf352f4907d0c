/* adapter.h: the PEFT-compatible adapter directory that `lqa-sft train` writes to RUN/final/:
 *   adapter_config.json          as PEFT writes it (peft_type LORA, r, lora_alpha, target_modules,
 *                                lora_dropout 0, bias none, task_type CAUSAL_LM, the absolute
 *                                base_model_name_or_path, and for lora+ modules_to_save
 *                                ["embed_tokens", "input_layernorm", "post_attention_layernorm", "norm"])
 *   adapter_model.safetensors    LoRA A and B under PEFT's names
 *                                (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight)
 *                                and, for lora+, the trained embedding and norms as PEFT saves
 *                                modules_to_save (base_model.model.model.embed_tokens.weight, ...),
 *                                so PeftModel.from_pretrained(base, dir) alone is the trained model
 *   lqa_training.json            (lqa-sft's own) ctx, rope_scale and max_position_embeddings the
 *                                adapter was trained with; loading applies them to the model's
 *                                config (when they extend it), so base + adapter runs as trained.
 * Loading also reads trainable_params.safetensors (older lqa runs: HF names; LongLoRA's
 * "base_model.model."-prefixed names) and peft-made adapters with modules_to_save. It checks that
 * the adapter fits the base model (names, shapes, finite values) with a clear error. */
#ifndef LQA_ADAPTER_H
#define LQA_ADAPTER_H

#include "common/check.h"
#include "model/model.h"

typedef struct lqa_adapter_config {
    int rank;
    float alpha;
    int targets;                  /* LQA_LORA_* bits */
    char base_model[1024];        /* base_model_name_or_path */
} lqa_adapter_config;

/* Parses DIR/adapter_config.json. */
int lqa_adapter_read_config(const char *dir, lqa_adapter_config *c, lqa_err *err);

/* Writes the adapter of m into dir (created). With train == LQA_TRAIN_LORA_PLUS the embedding and
 * every norm also go into adapter_model.safetensors as modules_to_save. base_model is recorded
 * in the config as an absolute path. */
int lqa_adapter_save(const char *dir, const lqa_model *m, lqa_train_set train, const char *base_model,
                     lqa_err *err);

/* Adds the adapter in dir to m (a loaded base model without LoRA): LoRA with the adapter's rank,
 * alpha and targets, its A and B, and the whole base tensors it carries (modules_to_save,
 * trainable_params.safetensors; they replace the base's), and the position interpolation of lqa_training.json when present.
 * Errors for a missing file, a tensor missing or of the wrong shape (an
 * adapter made for another base model). */
int lqa_adapter_load(const char *dir, lqa_model *m, lqa_err *err);

/* The base tensors lora+ trains besides LoRA: model.embed_tokens.weight and every *norm.weight. */
int lqa_is_lora_plus_tensor(const char *name);

/* "q,k,v,o" <-> LQA_LORA_* bits; also accepts PEFT module names (q_proj, gate_proj, ...). */
int lqa_lora_targets_parse(const char *s, int *targets, lqa_err *err);
/* Comma list of short names ("q,k,v,o") into buf. */
void lqa_lora_targets_format(int targets, char *buf, size_t n);

#endif
