# bench_kernels.mk: the CPU kernels' micro-benchmark (bench/RESULTS.md, section "Kernels").
#   make bench-kernels [KBENCH_ARGS="--threads 2 --T 2048"]
KBENCH_ARGS ?=
$(BUILD)/bench/lqa-kernels-bench: bench/kernels_bench.c $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/liblqa.a $(LDFLAGS) $(LDLIBS) -o $@

.PHONY: bench-kernels
bench-kernels: $(BUILD)/bench/lqa-kernels-bench
	$(BUILD)/bench/lqa-kernels-bench $(KBENCH_ARGS)
