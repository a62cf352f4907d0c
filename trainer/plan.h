/* plan.h: the memory plan of a training run, by kind, from the model's config and the run's
 * options alone (nothing allocated, no GPU needed): what `lqa-sft plan` prints and what
 * `lqa-sft train` checks against the free memory before it allocates.
 *
 * fp32 (what the CPU and CUDA runs allocate today) is exact: the same layout code and workspace
 * planner the run uses (lqa_model_shape*, lqa_grads_params_floats, lqa_workspace_bytes_split),
 * so the total equals the device bytes an emulated --device cuda run holds at its peak
 * (test_train_emu asserts it). bf16 is the design's layout (docs/CUDA.md "Memory plan"): the
 * bf16 run does not exist yet, so nothing allocates it; p->allocated says which one a plan is. */
#ifndef LQA_PLAN_H
#define LQA_PLAN_H

#include <stddef.h>

#include "model/model.h"

/* FP32: the fp32 run (exact). BF16: the design's bf16 layout (no run allocates it yet).
 * BF16_RUN: what `lqa-sft train --dtype bf16` allocates today (exact): the bf16 layout of
 * model.h (frozen GEMM weights bf16 only), the layer inputs as bf16 checkpoints (no saved
 * attention), the MLP in row chunks, the recomputed layer's activations fp32, bf16 staging for
 * the GEMM and attention inputs, and cuBLASLt's workspace. */
typedef enum { LQA_PLAN_FP32 = 0, LQA_PLAN_BF16 = 1, LQA_PLAN_BF16_RUN = 2 } lqa_plan_dtype;

typedef struct lqa_plan_opts {
    lqa_plan_dtype dtype;
    lqa_train_set train;
    int lora_targets, lora_rank;
    float lora_alpha;
    int micro_batch, ctx;
    lqa_step_opts step;   /* attention, group ratio, checkpointing, threads */
    int ranks;            /* data-parallel ranks (> 1: the all-reduce's packed gradient buffer) */
} lqa_plan_opts;

/* Bytes by kind. weights: what does not train (and, in bf16, the bf16 copies GEMMs read);
 * trainables: fp32 values of what trains (LoRA, and the embedding and norms for lora+);
 * gradients, optimizer (AdamW's two moments); checkpoints: what the step keeps per layer across
 * the forward; workspace: the rest of the step's buffers; runtime: the trainer's loss and norm
 * scalars and the backend's own buffers. */
typedef struct lqa_plan {
    size_t weights, trainables, gradients, optimizer, checkpoints, workspace, runtime, total;
    size_t n_params, n_trained;   /* base parameters; parameters AdamW updates */
    int allocated;                /* 1: the run allocates exactly this; 0: design only (bf16) */
} lqa_plan;

/* The plan of training cfg with o on be (its attention scratch counts; lqa_plan_backend gives one
 * without opening a device). bf16 needs a CUDA backend: -1 with err set otherwise. */
int lqa_plan_training(const lqa_config *cfg, const lqa_plan_opts *o, const lqa_backend *be, lqa_plan *p,
                      lqa_err *err);

/* A table that sizes like the backend `device` names (cpu, cuda, cuda:N) without opening it:
 * enough for the planner (attention_scratch_floats, host_memory, name); NULL when unknown. */
const lqa_backend *lqa_plan_backend(const char *device);

/* `lqa-sft plan ...` (argv[0] is the program): prints the plan; returns the exit status. */
int lqa_plan_main(int argc, char **argv);

#endif
