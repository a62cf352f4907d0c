/* test_cuda_model_init.c: a random model built straight in device memory (lqa_model_alloc_on +
 * lqa_model_init_tiled, what `lqa-sft bench --preset` does so that a 7B model never has a host
 * copy) holds bit for bit the values the same init gives on the host, including a tensor longer
 * than the tile, and those values look like init_random's; made in the bf16 layout (bench --preset
 * --dtype bf16), the frozen tensors are those values rounded to bf16 and the rest are fp32. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kernels/backend.h"
#include "kernels/bf16.h"
#include "model/model.h"
#include "tests/test_cuda_util.h"

static void test_random_init_on_device_equals_host(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    const lqa_backend *be = cuda_test_backend();
    uint64_t seed = lqa_test_seed();
    /* a tied embedding of more than the 16M-float host slab, so it is filled in two slabs */
    lqa_config c = {.vocab_size = 32769 + (int)(seed % 3000), .dim = 512, .n_layers = 1, .n_heads = 8,
                    .n_kv_heads = 4, .hidden_dim = 64 + 2 * (int)(seed % 16), .max_pos = 64, .rope_theta = 10000,
                    .rope_scale = 1, .rms_eps = 1e-5f, .tie_embeddings = 1};
    lqa_model host, dev;
    lqa_model_alloc(&host, &c);
    lqa_model_init_tiled(&host, seed);
    lqa_model_add_lora(&host, LQA_LORA_Q | LQA_LORA_V, 4, 8, seed + 1);
    lqa_model_shape(&dev, &c);
    lqa_model_add_lora(&dev, LQA_LORA_Q | LQA_LORA_V, 4, 8, seed + 1);
    lqa_model_alloc_on(&dev, be);
    assert_ptr_equal(lqa_model_backend(&dev), be);
    lqa_model_init_tiled(&dev, seed);
    lqa_model_to_backend(&dev, lqa_backend_cpu());
    assert_true(host.n_params > (size_t)16 << 20 && host.n_params == dev.n_params);
    assert_memory_equal(host.params, dev.params, sizeof(float) * host.n_params);
    assert_memory_equal(host.lora, dev.lora, sizeof(float) * host.n_lora);
    /* normal(0, 0.02) over the embedding (past the tile's end too); norms 1; q and k differ */
    const lqa_tensor_info *emb = &host.tensors[0], *norm = &host.tensors[1], *q = &host.tensors[2],
                          *k = &host.tensors[3];
    double sq = 0, mean = 0;
    for (size_t i = 0; i < emb->numel; i++) sq += (double)host.params[i] * host.params[i], mean += host.params[i];
    assert_true(fabs(sqrt(sq / (double)emb->numel) - 0.02) < 0.001 && fabs(mean / (double)emb->numel) < 1e-4);
    for (size_t i = 0; i < norm->numel; i++) assert_true(host.params[norm->offset + i] == 1.0f);
    assert_true(memcmp(host.params + q->offset, host.params + k->offset, sizeof(float) * 64) != 0);
    lqa_model_free(&host);
    lqa_model_free(&dev);
#endif
}

/* The bf16 layout: no fp32 buffer at all; each frozen tensor equals the host's fp32 init rounded
 * to nearest even, the embedding and norms (fp32 in params_lp) equal it exactly. */
static void test_random_init_in_bf16_layout(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    lqa_err err;
    const lqa_backend *be = cuda_test_backend();
    uint64_t seed = lqa_test_seed();
    lqa_config c = {.vocab_size = 1000 + (int)(seed % 300), .dim = 64, .n_layers = 2, .n_heads = 4,
                    .n_kv_heads = 2, .hidden_dim = 96 + 2 * (int)(seed % 16), .max_pos = 64, .rope_theta = 10000,
                    .rope_scale = 1, .rms_eps = 1e-5f, .tie_embeddings = (int)(seed % 2)};
    lqa_model host, dev;
    lqa_model_alloc(&host, &c);
    lqa_model_init_tiled(&host, seed);
    assert_int_equal(lqa_model_bf16_check(be, &c, LQA_TRAIN_LORA_PLUS, &err), 0);
    lqa_model_alloc_bf16(&dev, &c, be);
    lqa_model_add_lora(&dev, LQA_LORA_Q | LQA_LORA_V, 4, 8, seed + 1);
    lqa_model_to_backend(&dev, be);
    lqa_model_init_tiled(&dev, seed);
    assert_null(dev.params);
    lqa_bf16 *got = malloc(2 * dev.n_params16), *want = malloc(2 * dev.n_params16);
    float *lp = malloc(sizeof(float) * dev.n_lora_plus);
    be->to_host(got, dev.params16, 2 * dev.n_params16);
    be->to_host(lp, dev.params_lp, sizeof(float) * dev.n_lora_plus);
    size_t n16 = 0, nlp = 0;
    for (int t = 0; t < host.n_tensors; t++) {
        const lqa_tensor_info *ti = &host.tensors[t];
        if (ti->lp_offset != LQA_NOT_LORA_PLUS) {
            assert_memory_equal(lp + ti->lp_offset, host.params + ti->offset, sizeof(float) * ti->numel);
            nlp += ti->numel;
        } else {
            lqa_bf16_from_floats(want + ti->b16_offset, host.params + ti->offset, ti->numel);
            n16 += ti->numel;
        }
    }
    assert_true(n16 == dev.n_params16 && nlp == dev.n_lora_plus && n16 > 0);
    assert_memory_equal(got, want, 2 * n16);
    free(got), free(want), free(lp);
    lqa_model_free(&host);
    lqa_model_free(&dev);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_init_on_device_equals_host),
                                       cmocka_unit_test(test_random_init_in_bf16_layout)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
