# kernels.mk: compile flags of the CPU kernels (kernels/*.c).
# The CPU kernels' hot loops (softmax tiles, cross-entropy, SiLU) need the loop vectoriser at
# its full cost model and float comparisons that may be if-converted: -O3 -fno-trapping-math
# (no -ffast-math: the order of float operations, hence the results, stays as written).
$(BUILD)/obj/kernels/%.o: CFLAGS += -O3 -fno-trapping-math
