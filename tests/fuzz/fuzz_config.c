/* fuzz_config.c: libFuzzer target for a model folder's config.json (model/hfconfig.c,
 * lqa_hf_parse_config, what lqa_hf_read_config calls on the file's bytes): the input is
 * config.json from memory (writing it to a file per input made the target ~100x slower); a
 * clean refusal or a config whose sizes are positive, never a crash. */
#include <stddef.h>
#include <stdint.h>

#include "model/hfconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lqa_config cfg;
    lqa_err err;
    if (lqa_hf_parse_config("config.json", (const char *)data, size, &cfg, &err)) return 0;
    if (cfg.dim <= 0 || cfg.n_layers <= 0 || cfg.n_heads <= 0 || cfg.vocab_size <= 0) __builtin_trap();
    return 0;
}
