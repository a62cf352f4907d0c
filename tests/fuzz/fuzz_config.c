/* fuzz_config.c: libFuzzer target for a model folder's config.json (model/hfdir.c,
 * lqa_hf_parse_config, what lqa_hf_read_config calls on the file's bytes): the input is
 * config.json from memory (writing it to a file per input made the target ~100x slower); a
 * clean refusal or a config whose sizes are positive, never a crash. hfdir.c's loading and
 * saving need the model (model/model.c, the kernels, BLAS) and the tokenizer; config reading
 * never calls them, so the functions it names are stubs here that trap if reached. */
#include <stddef.h>
#include <stdint.h>

#include "dataset/tokenizer.h"
#include "model/hfdir.h"
#include "model/model.h"

void lqa_model_alloc(lqa_model *m, const lqa_config *cfg) { __builtin_trap(); }
void lqa_model_free(lqa_model *m) { __builtin_trap(); }
float *lqa_model_tensor(lqa_model *m, const char *name, const lqa_tensor_info **info) { __builtin_trap(); }
/* the tokenizer side files of a saved model folder: never reached by reading a config */
lqa_tokenizer *lqa_tok_load(const char *model_path, lqa_err *err) { __builtin_trap(); }
void lqa_tok_free(lqa_tokenizer *t) { __builtin_trap(); }
int lqa_tok_unk_id(const lqa_tokenizer *t) { __builtin_trap(); }
const char *lqa_tok_id_to_piece(const lqa_tokenizer *t, int id) { __builtin_trap(); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lqa_config cfg;
    lqa_err err;
    if (lqa_hf_parse_config("config.json", (const char *)data, size, &cfg, &err)) return 0;
    if (cfg.dim <= 0 || cfg.n_layers <= 0 || cfg.n_heads <= 0 || cfg.vocab_size <= 0) __builtin_trap();
    return 0;
}
