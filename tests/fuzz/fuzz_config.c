/* fuzz_config.c: libFuzzer target for a model folder's config.json (model/hfdir.c,
 * lqa_hf_read_config): the input is written as config.json and read back; a clean refusal or a
 * config whose sizes are positive, never a crash. hfdir.c's loading and saving need the model
 * (model/model.c, the kernels, BLAS); config reading never calls them, so the three model
 * functions it names are stubs here that trap if reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/fileio.h"
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

static char g_dir[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz-config-%ld", (long)getpid());
    lqa_err err;
    if (lqa_mkdir_p(g_dir, &err)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    lqa_config cfg;
    lqa_err err;
    if (lqa_hf_read_config(g_dir, &cfg, &err)) return 0;
    if (cfg.dim <= 0 || cfg.n_layers <= 0 || cfg.n_heads <= 0 || cfg.vocab_size <= 0) __builtin_trap();
    return 0;
}
