/* presets.h: named model shapes for `lqa-sft init --preset NAME`, from a test-sized "tiny" to
 * LLaMA-2-7B's shape (for benchmarks). The vocabulary size and bos/eos ids come from the
 * tokenizer at init time; --ctx sets max_position_embeddings. */
#ifndef LQA_PRESETS_H
#define LQA_PRESETS_H

#include "model/model.h"

typedef struct lqa_preset {
    const char *name;
    const char *about;      /* one line for --help */
    lqa_config cfg;         /* vocab_size is a placeholder (the tokenizer's wins) */
} lqa_preset;

const lqa_preset *lqa_preset_find(const char *name);
int lqa_preset_count(void);
const lqa_preset *lqa_preset_at(int i);
/* Base parameters of cfg (embedding, layers, final norm, untied lm_head). */
size_t lqa_config_n_params(const lqa_config *cfg);

#endif
