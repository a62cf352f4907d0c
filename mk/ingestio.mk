# ingestio.mk: the parser benchmark of the input layer and QA-set importers (bench/RESULTS.md,
# section "Ingest: input layer and QA-set import"). `make bench-ingest-qaset [QASET_MB=500]`.
QASET_MB ?= 500
$(BUILD)/bench/lqa-parse-bench: bench/ingest_parse_bench.c $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/liblqa.a $(LDFLAGS) $(LDLIBS) -o $@

.PHONY: bench-ingest-qaset
bench-ingest-qaset: $(BUILD)/bench/lqa-parse-bench
	bench/ingest_qaset_stream.sh $(BUILD) $(QASET_MB)
bench: bench-ingest-qaset

# libFuzzer targets for the text parser and the QA-set importers (`make fuzz`, FUZZ_SECONDS each).
FUZZ_INGEST_SRC := ingest/text.c ingest/qaset.c ingest/input.c ingest/docbuild.c ingest/doc.c common/check.c \
                   common/buf.c common/hash.c common/escape.c common/fileio.c
FUZZ_INGEST_LIBS := -larchive -ljansson -lutf8proc -lxxhash -lnettle -lz -lbz2 -llzma -lzstd -lsqlite3 -lm
FUZZ_INGEST_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined
$(BUILD)/fuzz/fuzz_ingest_%: tests/fuzz/fuzz_ingest_%.c $(FUZZ_INGEST_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_INGEST_FLAGS) $< $(FUZZ_INGEST_SRC) $(FUZZ_INGEST_LIBS) -o $@

.PHONY: fuzz-ingest
fuzz-ingest: $(BUILD)/fuzz/fuzz_ingest_text $(BUILD)/fuzz/fuzz_ingest_qaset
	@mkdir -p $(BUILD)/fuzz/ingest-text-corpus $(BUILD)/fuzz/ingest-qaset-corpus
	cp tests/fixtures/text/* $(BUILD)/fuzz/ingest-text-corpus/
	cp tests/fixtures/qaset/* $(BUILD)/fuzz/ingest-qaset-corpus/
	for c in gzip bzip2 xz zstd; do $$c -c tests/fixtures/qaset/alpaca.json > $(BUILD)/fuzz/ingest-qaset-corpus/alpaca.$$c; done
	$(BUILD)/fuzz/fuzz_ingest_text -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	    -print_final_stats=1 $(BUILD)/fuzz/ingest-text-corpus
	$(BUILD)/fuzz/fuzz_ingest_qaset -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	    -print_final_stats=1 $(BUILD)/fuzz/ingest-qaset-corpus
fuzz: fuzz-ingest
