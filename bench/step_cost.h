/* step_cost.h: the cost model and reference measurements of `lqa-sft bench` (trainer/main.c):
 * the FLOPs one training step executes, the process's peak RSS and OpenBLAS sgemm's GFLOP/s. */
#ifndef LQA_BENCH_STEP_COST_H
#define LQA_BENCH_STEP_COST_H

#include "model/model.h"

typedef struct lqa_step_flops {
    double total, attention;
} lqa_step_flops;

/* FLOPs of one training step of B x T tokens with so (forward, recompute, backward; LoRA
 * included, elementwise ops not). */
lqa_step_flops lqa_count_step_flops(const lqa_model *m, int B, int T, const lqa_step_opts *so);
/* The process's peak resident set, MiB. */
double lqa_peak_rss_mib(void);
/* Best-of-3 GFLOP/s of an M x N x K sgemm by OpenBLAS on the kernels' thread count. */
double lqa_sgemm_gflops(int M, int N, int K);

#endif
