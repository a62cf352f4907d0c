/* fuzz_shard.c: libFuzzer target for the shard reader: any bytes given to lqa_shard_open_mem
 * and lqa_shard_read must give a clean error or valid records, never a crash, a leak or an
 * unbounded allocation. Built by mk/fuzz.mk with checksums relaxed
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) so inputs reach the parsers. */
#include <stddef.h>
#include <stdint.h>

#include "dataset/shards.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lqa_err err;
    lqa_shard *s = lqa_shard_open_mem(data, size, "fuzz.lqas", &err);
    if (!s) return 0;
    const lqa_shard_info *in = lqa_shard_get_info(s);
    lqa_record rec = {0};
    uint64_t n = in->record_count < 64 ? in->record_count : 64;
    for (uint64_t i = 0; i < n; i++) {
        if (lqa_shard_read(s, i, &rec, &err) != 0) continue;
        /* what the trainer relies on */
        for (uint32_t t = 0; t < rec.n_tokens; t++)
            if ((uint32_t)rec.tokens[t] >= in->vocab_size || rec.loss_mask[t] > 1) __builtin_trap();
    }
    lqa_record_free(&rec);
    lqa_shard_close(s);
    return 0;
}
