# bench_ingest.mk: the parser benchmark of the input layer and QA-set importers (bench/RESULTS.md,
# section "Ingest: input layer and QA-set import"). `make bench-ingest-qaset [QASET_MB=500]`.
QASET_MB ?= 500
$(BUILD)/bench/lqa-parse-bench: bench/ingest_parse_bench.c $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/liblqa.a $(LDFLAGS) $(LDLIBS) -o $@

.PHONY: bench-ingest-qaset
bench-ingest-qaset: $(BUILD)/bench/lqa-parse-bench
	bench/ingest_qaset_stream.sh $(BUILD) $(QASET_MB)
bench: bench-ingest-qaset
