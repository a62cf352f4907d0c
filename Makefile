# LongQA build. `make` builds every tool into build/; `make test` runs the whole suite;
# `make test SAN=1` runs it under ASan+UBSan (objects in build/san/); `make demo` runs the
# end-to-end demo. Sources are found by directory, so a new file needs no Makefile change:
#   <dir>/main.c is the tool's entry point, every other <dir>/*.c goes into build/liblqa.a,
#   tests/test_*.c each become one test binary. Area-specific targets live in mk/*.mk.

SHELL := /bin/bash
PREFIX ?= /usr/local
SAN ?= 0
CC ?= gcc
CXX ?= g++
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCH ?= sm_90

# lqa-ingest allocates like a parser (libxml2's trees: many small blocks, freed page by page, on
# several threads); mimalloc in place of glibc's malloc made it 9-10 % faster, wall and CPU
# (bench/RESULTS.md). Not under the sanitizers, which bring their own allocator.
ifeq ($(SAN),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
NVCC :=
INGEST_MALLOC :=
else
BUILD := build
SANFLAGS :=
INGEST_MALLOC := -lmimalloc
endif

XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0 2>/dev/null || echo -I/usr/include/libxml2)
CPPFLAGS := -I. $(XML_CFLAGS) -D_GNU_SOURCE
CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -fopenmp -march=x86-64-v2 $(SANFLAGS)
CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -fopenmp $(SANFLAGS)
LDLIBS := -lsqlite3 -lzstd -lxml2 -lsentencepiece -lopenblas -ljansson -larchive -lz -lbz2 -llzma \
          -lxxhash -lutf8proc -lnettle -lstdc++ -lm -lpthread
LDFLAGS := -fopenmp $(SANFLAGS)

ifneq ($(NVCC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
CPPFLAGS += -DLQA_CUDA -I$(CUDA_HOME)/include
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart
LDLIBS += -lcublasLt
NVCCFLAGS := -O2 -g -std=c++17 -arch=$(CUDA_ARCH) -I. -Xcompiler -fopenmp,-Wall
CU_SRC := $(wildcard kernels/cuda/*.cu)
endif

AREAS := common store ingest dataset kernels model trainer eval
LIB_C := $(filter-out %/main.c,$(foreach d,$(AREAS),$(wildcard $(d)/*.c)))
LIB_CXX := $(foreach d,$(AREAS),$(wildcard $(d)/*.cc))
LIB_OBJ := $(LIB_C:%.c=$(BUILD)/obj/%.o) $(LIB_CXX:%.cc=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o)
TOOLS := lqa-ingest lqa-build lqa-sft lqa-eval
TOOL_BIN := $(TOOLS:%=$(BUILD)/%)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps test install clean demo ablation fuzz bench
.SECONDARY:
all: $(TOOL_BIN) $(TEST_BIN)

# Debian packages the project needs (build, test, corpus). A no-op when all are installed.
DEB_PKGS := build-essential pkg-config libsqlite3-dev sqlite3 libzstd-dev zstd libxml2-dev libxml2-utils \
            libsentencepiece-dev sentencepiece libopenblas-dev libjansson-dev libarchive-dev zlib1g-dev \
            libbz2-dev liblzma-dev bzip2 xz-utils libxxhash-dev libutf8proc-dev nettle-dev libcmocka-dev \
            libmimalloc-dev clang libclang-rt-14-dev zip debian-reference-en postgresql-doc-15 bible-kjv jargon-text nodejs-doc chromium
deps:
	@scripts/deps.sh $(DEB_PKGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) -I/usr/include $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/liblqa.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/lqa-ingest: $(BUILD)/obj/ingest/main.o $(BUILD)/liblqa.a
$(BUILD)/lqa-build: $(BUILD)/obj/dataset/main.o $(BUILD)/liblqa.a
$(BUILD)/lqa-sft: $(BUILD)/obj/trainer/main.o $(BUILD)/liblqa.a
$(BUILD)/lqa-eval: $(BUILD)/obj/eval/main.o $(BUILD)/liblqa.a
# mimalloc first among the libraries, so its malloc is the one every library's calls resolve to
$(BUILD)/lqa-ingest: LDLIBS := $(INGEST_MALLOC) $(LDLIBS)
$(TOOL_BIN):
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/obj/tests/testutil.o $(BUILD)/liblqa.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

# `make test` installs what is missing, builds, runs every test binary and prints one summary line;
# it also builds the tools and the CUDA op tests on the CPU emulator (mk/cuda.mk) and runs them,
# and builds the fuzz targets (mk/fuzz.mk) for a short replay (tests/fuzz/test_fuzz_smoke.sh).
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all cuda-emu cuda-emu-tests fuzz-build
	@BUILD=$(BUILD) SAN=$(SAN) tests/run.sh $(TEST_BIN) $(EMUT_TEST_BIN) tests/fuzz/test_fuzz_smoke.sh

# `make demo` (DEMO=full|quick): the whole LongLoRA story on the default corpus, resumable by
# stage (scripts/demo.sh, docs/DEMO.md); `make ablation` adds the paper's comparisons.
DEMO ?= full
demo: deps
	@$(MAKE) --no-print-directory corpus
	@scripts/demo.sh $(DEMO)

ablation: deps
	@$(MAKE) --no-print-directory corpus
	@scripts/demo.sh $(DEMO) ablation

install: $(TOOL_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TOOL_BIN) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build

-include mk/*.mk
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
