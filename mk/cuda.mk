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

# launch syntax and dynamic shared memory rewritten for the emulator (see kernels/cuda/emu/emu.h).
# The rewrite needs one rule of every kernel, checked first: its dynamic shared memory is declared
# exactly `extern __shared__ float smem[];` (docs/CUDA.md, "Without a GPU: the emulator check").
$(EMU_DIR)/%.cc: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	@bad=$$(grep -n 'extern[[:space:]]*__shared__' $< | grep -v 'extern __shared__ float smem\[\];'); \
	 if [ -n "$$bad" ]; then echo "$<: dynamic shared memory must be declared as 'extern __shared__ float smem[];'" \
	 "(the emulator's build rewrites that one line; cast smem to the type you need):" >&2; echo "$$bad" >&2; exit 1; fi
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

# ---- the tools on the emulator (no GPU needed) -----------------------------------------------
#   make cuda-emu     ->  $(BUILD)/cuda-emu/lqa-sft and $(BUILD)/cuda-emu/lqa-eval
# The tools with kernels/cuda/*.cu compiled as host C++ against kernels/cuda/emu (-O2, no
# sanitizers, so a tiny model trains in seconds), so `--device cuda` runs the real kernel code
# on the CPU. The C objects are the build's own (nothing in them depends on LQA_CUDA but
# kernels/backend.c, compiled again here with it); `make test` runs these tools against the CPU
# (tests/test_train_emu.c) and the CUDA op tests linked the same way ($(BUILD)/cuda-emu/tests).
EMUT := $(BUILD)/cuda-emu
EMUT_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wno-unknown-pragmas -I. -Ikernels/cuda/emu/include \
                 -include kernels/cuda/emu/emu.h -DLQA_CUDA -fopenmp
EMUT_KERNELS := $(patsubst kernels/cuda/%.cu,$(EMUT)/kobj/%.o,$(wildcard kernels/cuda/*.cu)) $(EMUT)/kobj/emu_runtime.o
EMUT_C_OBJ := $(filter-out $(BUILD)/obj/kernels/backend.o $(BUILD)/obj/trainer/dist.o,$(LIB_C:%.c=$(BUILD)/obj/%.o) \
                $(LIB_CXX:%.cc=$(BUILD)/obj/%.o))
EMUT_TEST_BIN := $(patsubst tests/%.c,$(EMUT)/tests/%,$(wildcard tests/test_cuda_*.c))

$(EMUT)/kobj/%.o: $(EMU_DIR)/%.cc $(EMU_HEADERS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMUT_CXXFLAGS) -c $< -o $@
$(EMUT)/kobj/emu_runtime.o: kernels/cuda/emu/emu.cc $(EMU_HEADERS)
	@mkdir -p $(dir $@)
	$(CXX) $(EMUT_CXXFLAGS) -c $< -o $@
$(EMUT)/kobj/backend_c.o: kernels/backend.c $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DLQA_CUDA -DLQA_CUDA_EMU $(CFLAGS) -c $< -o $@
# dist.c again without NCCL (mk/mpi.mk): the emulator has no NCCL, and device buffers there are
# host memory, so MPI alone reduces them
$(EMUT)/kobj/dist_c.o: trainer/dist.c trainer/dist.h $(BUILD)/dist.flags
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -DLQA_NCCL,$(DIST_FLAGS)) $(CFLAGS) -c $< -o $@
$(EMUT)/liblqa-emu.a: $(EMUT_C_OBJ) $(EMUT)/kobj/backend_c.o $(EMUT)/kobj/dist_c.o $(EMUT_KERNELS)
	@rm -f $@
	ar rcs $@ $^
$(EMUT)/lqa-sft: $(BUILD)/obj/trainer/main.o $(EMUT)/liblqa-emu.a
	$(CC) $(LDFLAGS) $^ $(filter-out -lcublas -lcudart -lnccl,$(LDLIBS)) -o $@
$(EMUT)/lqa-eval: $(BUILD)/obj/eval/main.o $(EMUT)/liblqa-emu.a
	$(CC) $(LDFLAGS) $^ $(filter-out -lcublas -lcudart -lnccl,$(LDLIBS)) -o $@
$(EMUT)/tests/%.o: tests/%.c tests/test_cuda_util.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DLQA_CUDA -DLQA_CUDA_EMU $(CFLAGS) -c $< -o $@
$(EMUT)/tests/%: $(EMUT)/tests/%.o $(BUILD)/obj/tests/testutil.o $(EMUT)/liblqa-emu.a
	$(CC) $(LDFLAGS) $^ $(filter-out -lcublas -lcudart -lnccl,$(LDLIBS)) -lcmocka -o $@

.PHONY: cuda-emu cuda-emu-tests
cuda-emu: $(EMUT)/lqa-sft $(EMUT)/lqa-eval
cuda-emu-tests: $(EMUT_TEST_BIN)
