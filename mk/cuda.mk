# cuda.mk: targets of the CUDA part (kernels/cuda/, docs/CUDA.md). The Makefile compiles
# kernels/cuda/*.cu into liblqa.a whenever nvcc is found; these add:
#   make cuda-tests        build every tests/test_cuda_* binary
#   make test-cuda         build and run them (they skip, with the reason, without a GPU)
#   make bench-gpu         CUDA ops vs CPU in the same run; records bench/RESULTS.md when a GPU exists
#   make gpu-check         scripts/gpu_check.sh: the one command for a lent GPU machine
CUDA_TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_cuda_*.c))
CUDA_BENCH_ARGS ?=

$(BUILD)/bench/lqa-cuda-bench: bench/cuda_bench.c $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/liblqa.a $(LDFLAGS) $(LDLIBS) -o $@

.PHONY: cuda-tests test-cuda bench-gpu gpu-check
cuda-tests: $(CUDA_TEST_BIN)
test-cuda: cuda-tests
	@BUILD=$(BUILD) tests/run.sh $(CUDA_TEST_BIN)
bench-gpu: $(BUILD)/bench/lqa-cuda-bench
	@BUILD=$(BUILD) CUDA_BENCH_ARGS="$(CUDA_BENCH_ARGS)" bench/gpu.sh
gpu-check:
	@CUDA_ARCH=$(CUDA_ARCH) scripts/gpu_check.sh
