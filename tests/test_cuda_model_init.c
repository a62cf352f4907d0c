/* test_cuda_model_init.c: a random model built straight in device memory (lqa_model_alloc_on +
 * lqa_model_init_tiled, what `lqa-sft bench --preset` does so that a 7B model never has a host
 * copy) holds bit for bit the values the same init gives on the host, including a tensor longer
 * than the tile, and those values look like init_random's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kernels/backend.h"
#include "model/model.h"
#include "tests/test_cuda_util.h"

static void test_random_init_on_device_equals_host(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    lqa_err err;
    const lqa_backend *be = lqa_backend_cuda_open(0, &err);
    if (!be) fail_msg("%s", err.msg);
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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_init_on_device_equals_host)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
