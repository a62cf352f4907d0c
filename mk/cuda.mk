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

# ---- the CPU emulator check (no GPU needed) --------------------------------------------------
#   make SAN=1 BUILD=build/cuda-emu cuda-emu-check
# compiles kernels/cuda/*.cu as host C++ against kernels/cuda/emu (threads as coroutines, real
# barriers and warp shuffles, host cublasSgemm with cuBLAS's argument checks), links the
# tests/test_cuda_* files compiled WITH LQA_CUDA against that and a CPU-only liblqa (SAN=1 has
# no nvcc), and runs them under ASan+UBSan. It checks the kernels' logic, not the GPU.
EMU_DIR := $(BUILD)/emu
EMU_KERNELS := $(patsubst kernels/cuda/%.cu,$(EMU_DIR)/%.o,$(wildcard kernels/cuda/*.cu))
EMU_HEADERS := $(wildcard kernels/cuda/*.h kernels/cuda/*.cuh kernels/cuda/emu/*.h kernels/cuda/emu/include/*.h)
EMU_CXXFLAGS := -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -Wall -Wno-unknown-pragmas \
                -I. -Ikernels/cuda/emu/include -include kernels/cuda/emu/emu.h -DLQA_CUDA -fopenmp
EMU_TEST_BIN := $(patsubst tests/%.c,$(EMU_DIR)/tests/%,$(wildcard tests/test_cuda_*.c))

# launch syntax and dynamic shared memory rewritten for the emulator (see kernels/cuda/emu/emu.h)
$(EMU_DIR)/%.cc: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	sed -e 's/extern __shared__ float smem\[\];/float *smem = (float *)emu_dyn_smem;/' \
	    -e 's/\([A-Za-z_][A-Za-z0-9_]*\)<<</emu_launcher(\1, /g' -e 's/>>>(/)(/g' $< >$@
$(EMU_DIR)/%.o: $(EMU_DIR)/%.cc $(EMU_HEADERS)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_DIR)/emu_runtime.o: kernels/cuda/emu/emu.cc $(EMU_HEADERS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_DIR)/tests/%.o: tests/%.c tests/test_cuda_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DLQA_CUDA -DLQA_CUDA_EMU $(CFLAGS) -c $< -o $@
$(EMU_DIR)/tests/%: $(EMU_DIR)/tests/%.o $(BUILD)/obj/tests/testutil.o $(EMU_KERNELS) $(EMU_DIR)/emu_runtime.o $(BUILD)/liblqa.a
	$(CC) $(LDFLAGS) -fsanitize=address,undefined $^ $(LDLIBS) -lcmocka -o $@

.PHONY: cuda-emu-check
cuda-emu-check: $(EMU_TEST_BIN)
	@if [ -n "$(NVCC)" ]; then echo "cuda-emu-check: run it with SAN=1 (a liblqa without the nvcc objects)"; exit 1; fi
	@BUILD=$(BUILD) SAN=1 tests/run.sh $(EMU_TEST_BIN)
