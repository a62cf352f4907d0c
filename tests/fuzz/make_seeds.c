/* make_seeds.c: writes a few valid shards (both token widths, packed or not) as the fuzz
 * target's starting corpus: usage make_seeds DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "dataset/shards.h"

static void write_seed(const char *dir, int k, uint32_t vocab, uint32_t flags, lqa_rng *r) {
    char path[1024];
    snprintf(path, sizeof path, "%s/seed-%d.lqas", dir, k);
    lqa_shard_info in = {0};
    in.kind = (uint32_t)(1 + k % 2);
    in.vocab_size = vocab;
    in.flags = flags;
    lqa_err err;
    lqa_shard_writer *w = lqa_shard_writer_open(path, &in, 1, &err);
    if (!w) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    for (int i = 0; i < 1 + k; i++) {
        int32_t tok[40];
        uint8_t mask[40];
        uint32_t n = 1 + (uint32_t)lqa_rng_below(r, 40);
        for (uint32_t t = 0; t < n; t++) tok[t] = (int32_t)lqa_rng_below(r, vocab), mask[t] = t > n / 2;
        lqa_segment seg[2] = {{1, 2, 0, n / 2}, {3, 4, n / 2, n - n / 2}};
        if (lqa_shard_writer_add(w, tok, mask, n, seg, 2, &err) != 0) exit(1);
    }
    if (lqa_shard_writer_close(w, &err) != 0) exit(1);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    lqa_rng r;
    lqa_rng_seed(&r, 1);
    write_seed(argv[1], 0, 300, 0, &r);
    write_seed(argv[1], 1, 32000, LQA_SHARD_PACKED, &r);
    write_seed(argv[1], 2, 100000, 0, &r);
    write_seed(argv[1], 3, 500, LQA_SHARD_PACKED, &r);
    return 0;
}
