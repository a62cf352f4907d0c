# mpi.mk: data parallelism for lqa-sft train (trainer/dist.c, docs/TRAINING.md "Several GPUs and
# nodes"). With mpicc on the PATH, dist.c is compiled with LQA_MPI and Open MPI's flags (from
# mpicc --showme), and every binary links libmpi; with nvcc and NCCL's header too, LQA_NCCL and
# -lnccl. Without mpicc lqa-sft is single-process and says so when a launcher starts it.
#   make bench-dist        CPU scaling 1 vs 2 ranks and the LLaMA-2-7B communication volume
DEB_PKGS += libopenmpi-dev openmpi-bin

MPICC ?= $(shell command -v mpicc 2>/dev/null)
DIST_FLAGS :=
ifneq ($(MPICC),)
DIST_FLAGS += -DLQA_MPI $(shell $(MPICC) --showme:compile)
LDLIBS += $(shell $(MPICC) --showme:link)
ifneq ($(NVCC),)
ifneq ($(wildcard $(CUDA_HOME)/include/nccl.h),)
DIST_FLAGS += -DLQA_NCCL
LDLIBS += -lnccl
endif
endif
endif

# only dist.c sees MPI's and NCCL's headers; it is rebuilt when they come or go (make deps)
$(BUILD)/obj/trainer/dist.o: CPPFLAGS += $(DIST_FLAGS)
$(BUILD)/obj/trainer/dist.o: $(BUILD)/dist.flags
$(BUILD)/dist.flags: dist-flags-force
	@mkdir -p $(dir $@)
	@echo '$(DIST_FLAGS)' | cmp -s - $@ || echo '$(DIST_FLAGS)' >$@
.PHONY: dist-flags-force bench-dist
dist-flags-force:

bench-dist: $(BUILD)/lqa-sft
	@BUILD=$(BUILD) bench/dist.sh
