# fuzz.mk: `make fuzz` runs the libFuzzer targets briefly (FUZZ_SECONDS each, default 30).
# Built with clang -fsanitize=fuzzer,address,undefined into $(BUILD)/fuzz, apart from the
# regular objects. Other areas add their targets as prerequisites of `fuzz`.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_OUT := $(BUILD)/fuzz
FUZZ_SHARD_SRC := dataset/shards.c common/hash.c common/check.c common/fileio.c common/rng.c
FUZZ_SHARD_LIBS := -lzstd -lxxhash -lnettle -lsqlite3 -lm

$(FUZZ_OUT)/fuzz_shard: tests/fuzz/fuzz_shard.c $(FUZZ_SHARD_SRC) dataset/shards.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -I. -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
	    -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_shard.c $(FUZZ_SHARD_SRC) $(FUZZ_SHARD_LIBS) -o $@

$(FUZZ_OUT)/make_seeds: tests/fuzz/make_seeds.c $(FUZZ_SHARD_SRC) dataset/shards.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -I. tests/fuzz/make_seeds.c $(FUZZ_SHARD_SRC) $(FUZZ_SHARD_LIBS) -o $@

.PHONY: fuzz-shard
fuzz-shard: $(FUZZ_OUT)/fuzz_shard $(FUZZ_OUT)/make_seeds
	@mkdir -p $(FUZZ_OUT)/shard-corpus
	$(FUZZ_OUT)/make_seeds $(FUZZ_OUT)/shard-corpus
	$(FUZZ_OUT)/fuzz_shard -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=1024 \
	    -print_final_stats=1 $(FUZZ_OUT)/shard-corpus

fuzz: fuzz-shard
