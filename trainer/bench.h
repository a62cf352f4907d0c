/* bench.h: `lqa-sft bench`: the trainer's own step (forward + backward + AdamW on a persistent
 * workspace) timed on random tokens, on a model folder or on a random model of a preset's shape
 * built straight in the backend's memory (no folder, no host copy), with one JSON line on stdout:
 * tokens/s, the step's FLOPs as executed and GFLOP/s, model FLOPs per token and MFU, peak RSS and
 * device memory, the memory plan. Before it allocates anything it checks the memory plan
 * (trainer/plan.h) against the backend's free memory. */
#ifndef LQA_TRAINER_BENCH_H
#define LQA_TRAINER_BENCH_H

#include "common/check.h"
#include "trainer/options.h"

/* lqa_bench_run's result when the plan does not fit (its JSON line says so). */
enum { LQA_BENCH_DOES_NOT_FIT = 1 };

/* Runs the bench of o: o->model_dir or o->preset (one of them), ctx, steps, micro_batch, device,
 * dtype, the step and LoRA flags, sgemm_n, peak_tflops. 0: measured, its JSON line printed;
 * LQA_BENCH_DOES_NOT_FIT: the plan exceeds the free memory: a JSON line with "fits": false and
 * "error" printed, nothing allocated; -1 with err set on a user error. */
int lqa_bench_run(const lqa_train_opts *o, lqa_err *err);

#endif
