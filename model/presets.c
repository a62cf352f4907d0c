/* presets.c: the model shapes `lqa-sft init --preset` knows (see presets.h). */
#include "model/presets.h"

#include <string.h>

/* vocab, dim, layers, heads, kv heads, ffn, max_pos, rope_theta, rope_scale, rms_eps, tied, bos, eos,
 * then the llama3 RoPE fields and the config form (none, 4.x) */
static const lqa_preset PRESETS[] = {
    {"tiny", "tests: dim 64, 2 layers, 4 heads (2 kv), ffn 172",
     {32000, 64, 2, 4, 2, 172, 512, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"small", "quick runs: dim 128, 4 layers, 4 heads, ffn 344",
     {32000, 128, 4, 4, 4, 344, 1024, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"demo", "the demo: dim 256, 4 layers, 8 heads, ffn 688; trains in minutes on 2 cores at ctx 256-2048",
     {32000, 256, 4, 8, 8, 688, 2048, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"demo-gqa", "the demo with grouped-query attention (8 heads, 2 kv)",
     {32000, 256, 4, 8, 2, 688, 2048, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"tinyllama-1.1b", "TinyLlama-1.1B's shape: dim 2048, 22 layers, 32 heads (4 kv), ffn 5632",
     {32000, 2048, 22, 32, 4, 5632, 2048, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"llama2-7b", "LLaMA-2-7B's shape (benchmarks): dim 4096, 32 layers, 32 heads, ffn 11008",
     {32000, 4096, 32, 32, 32, 11008, 4096, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
    {"llama2-7b-gqa", "LLaMA-2-7B's shape with 8 kv heads",
     {32000, 4096, 32, 32, 8, 11008, 4096, 10000.0f, 1.0f, 1e-5f, 0, 1, 2, 0, 0, 0, 0, 0, 0}},
};

int lqa_preset_count(void) {
    return (int)(sizeof PRESETS / sizeof PRESETS[0]);
}

const lqa_preset *lqa_preset_at(int i) {
    return i >= 0 && i < lqa_preset_count() ? &PRESETS[i] : NULL;
}

const lqa_preset *lqa_preset_find(const char *name) {
    for (int i = 0; i < lqa_preset_count(); i++)
        if (!strcmp(PRESETS[i].name, name)) return &PRESETS[i];
    return NULL;
}

size_t lqa_config_n_params(const lqa_config *c) {
    size_t D = (size_t)c->dim, hd = D / (size_t)c->n_heads, F = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t q = (size_t)c->n_heads * hd, kv = (size_t)c->n_kv_heads * hd;
    size_t layer = D + q * D + 2 * kv * D + D * q + D + 3 * F * D;
    return V * D + (size_t)c->n_layers * layer + D + (c->tie_embeddings ? 0 : V * D);
}
