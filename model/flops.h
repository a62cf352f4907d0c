/* flops.h: the FLOPs of a training step of the model (model.h), the two ways they are counted:
 * as executed (forward, per-layer recompute with checkpointing, backward, LoRA included), which
 * `lqa-sft bench` divides by the step time for GFLOP/s, and the model FLOPs per token of the
 * usual MFU convention (PaLM's: 6 N plus causal attention, recompute not counted), which it
 * divides by a device's peak for MFU. bench/gpu_vs_torch.py counts the PyTorch side's MFU with
 * the same formula (mfu_flops_per_token). */
#ifndef LQA_MODEL_FLOPS_H
#define LQA_MODEL_FLOPS_H

#include "model/model.h"

typedef struct lqa_step_flops {
    double total, attention;
} lqa_step_flops;

/* FLOPs one training step of B x T tokens with so executes (forward, recompute, backward; LoRA
 * included, elementwise ops not). */
lqa_step_flops lqa_count_step_flops(const lqa_model *m, int B, int T, const lqa_step_opts *so);

/* Model FLOPs per trained token at context T: 6 x (the parameters of every linear and the
 * lm_head) + 6 L (H hd) T_seen, T_seen = T for full causal attention, T x group_ratio for S2. */
double lqa_model_flops_per_token(const lqa_config *c, int T, const lqa_step_opts *so);

#endif
