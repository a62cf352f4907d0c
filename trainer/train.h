/* train.h: the training loop of `lqa-sft train` and the pieces `grad` and `merge` share.
 *
 * Run directory (opts.out_dir):
 *   config.json          every resolved setting (options, the model config after position
 *                        interpolation, data, derived sizes, memory estimate)
 *   metrics.jsonl        one JSON object per optimizer step: step, loss, lr, grad_norm,
 *                        tokens, tokens_per_s, elapsed (+ rows_per_source when mixing)
 *   checkpoints/step-NNNNNNNN/   state.safetensors (trained tensors, AdamW moments under
 *                        "adam_m/NAME" and "adam_v/NAME") and state.json (step, optimizer step,
 *                        data position, elapsed; with several --data dirs also
 *                        every source's position and the mixing RNG); written to a temp dir, then renamed;
 *                        checkpoints/latest names the newest
 *   final/               lora/lora+: the PEFT adapter (model/adapter.h) + lqa_training.json;
 *                        full: a full HF model directory
 * --resume continues from checkpoints/latest exactly: the same later losses bit for bit on CPU
 * with the same thread count. */
#ifndef LQA_TRAIN_H
#define LQA_TRAIN_H

#include <stdint.h>

#include "common/check.h"
#include "common/rng.h"
#include "model/model.h"
#include "trainer/optim.h"
#include "trainer/options.h"

/* Runs training; -1 with err set on a user error (bad options, data, model, resume state). */
int lqa_train_run(const lqa_train_opts *o, lqa_err *err);

/* Data mixing: the source of the next micro-batch row. cum holds the n sources' cumulative
 * weights (cum[n-1] > 0). With n == 1 returns 0 and never touches rng, so a single --data dir
 * gives the stream it gave before mixing existed; else draws one uniform u from rng and returns
 * the first i with u * cum[n-1] < cum[i] (a zero-weight source is never picked). */
int lqa_mix_pick(lqa_rng *rng, const double *cum, int n);

/* Position interpolation: when ctx > cfg->max_pos, rope_scale *= ctx / max_pos and max_pos =
 * ctx (the HF config of the extended model). Returns the new scale. */
float lqa_apply_position_interpolation(lqa_config *cfg, int ctx);

/* Loads o->model_dir, then the adapter in o->adapter_dir if given, else fresh LoRA for the lora
 * sets (o->lora_targets, lora_rank, lora_alpha, seeded by o->seed), then applies position
 * interpolation for o->ctx (0: none). */
int lqa_load_for_training(const lqa_train_opts *o, lqa_model *m, lqa_err *err);
/* The same; with o->dtype_bf16 and a backend be, in the bf16 layout (lqa_hf_load_bf16: frozen
 * weights bf16 in be's memory, after lqa_model_bf16_check), the rest on the host as before. */
int lqa_load_for_training_on(const lqa_train_opts *o, const lqa_backend *be, lqa_model *m, lqa_err *err);

/* Calls fn for each tensor that `train` trains: base tensors (HF names) then LoRA (PEFT names). */
typedef void (*lqa_trainable_fn)(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora);
void lqa_for_each_trainable(lqa_model *m, lqa_train_set train, const lqa_grads *g, lqa_trainable_fn fn, void *ctx);

/* Allocates gradient buffers for the set (d_params for full and lora+, d_lora for lora sets); for
 * lora+ d_params is compact: the embedding and norms only (model.h lqa_grads). */
void lqa_grads_alloc(lqa_grads *g, const lqa_model *m, lqa_train_set train);
/* Frees them (be: the backend they were allocated on: lqa_model_backend at allocation). */
void lqa_grads_free(lqa_grads *g, const lqa_backend *be);

#endif
