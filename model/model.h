/* model.h: the LLaMA model as Hugging Face defines it (RMSNorm, RoPE with rope_theta, linear and
 * llama3 rope scaling, SwiGLU MLP, grouped-query attention, optional tied embeddings), its parameters in
 * one contiguous fp32 buffer, LoRA adapters, one forward+backward on a token batch (training)
 * and the KV-cache forward (inference), on the CPU or a CUDA device (kernels/backend.h).
 *
 * Parameter layout (lqa_model.params, in this order; shapes are [rows, cols] row-major, as the
 * HF tensors are, so y = x W^T):
 *   model.embed_tokens.weight                       [V, D]
 *   for l in 0..L-1:
 *     model.layers.l.input_layernorm.weight         [D]
 *     model.layers.l.self_attn.q_proj.weight        [H*hd, D]
 *     model.layers.l.self_attn.k_proj.weight        [KV*hd, D]
 *     model.layers.l.self_attn.v_proj.weight        [KV*hd, D]
 *     model.layers.l.self_attn.o_proj.weight        [D, H*hd]
 *     model.layers.l.post_attention_layernorm.weight [D]
 *     model.layers.l.mlp.gate_proj.weight           [F, D]
 *     model.layers.l.mlp.up_proj.weight             [F, D]
 *     model.layers.l.mlp.down_proj.weight           [D, F]
 *   model.norm.weight                               [D]
 *   lm_head.weight                                  [V, D]   (absent when tie_word_embeddings)
 * LoRA (lqa_model.lora, one contiguous buffer), for l, then each target in q,k,v,o,gate,up,down
 * order that is enabled:
 *   base_model.model.model.layers.l.self_attn.q_proj.lora_A.weight  [r, in]
 *   base_model.model.model.layers.l.self_attn.q_proj.lora_B.weight  [out, r]   (zero at init)
 *   (mlp targets: base_model.model.model.layers.l.mlp.gate_proj.lora_A.weight ...)
 * Effective weight: W + (alpha/r) * B A.
 */
#ifndef LQA_MODEL_H
#define LQA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "kernels/rope.h"
#include "kernels/backend.h"

typedef struct lqa_config {
    int vocab_size;      /* V */
    int dim;             /* D, hidden_size */
    int n_layers;        /* L, num_hidden_layers */
    int n_heads;         /* H, num_attention_heads */
    int n_kv_heads;      /* KV, num_key_value_heads (H % KV == 0) */
    int hidden_dim;      /* F, intermediate_size */
    int max_pos;         /* max_position_embeddings */
    float rope_theta;    /* 10000 for LLaMA-2 */
    float rope_scale;    /* linear rope_scaling factor; 1 = none. positions are divided by it */
    float rms_eps;       /* rms_norm_eps */
    int tie_embeddings;  /* tie_word_embeddings */
    int bos_id, eos_id;
    /* RoPE beyond theta and the linear factor (see kernels/rope.h): LLaMA-3.x frequency-
     * dependent scaling (rope_type "llama3"; rope_scale composes position interpolation on top),
     * and which config.json form it came from, so a model written back keeps its base's form. */
    int rope_llama3;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int rope_hf5;        /* 1: transformers 5.x "rope_parameters"; 0: 4.x rope_theta / rope_scaling */
} lqa_config;

/* The RoPE of a config as the kernels take it (rope_table_cpu / _cuda, rope_inv_freq). */
static inline rope_spec lqa_config_rope(const lqa_config *c) {
    rope_spec r = {c->rope_theta, c->rope_scale > 0 ? c->rope_scale : 1.0f, c->rope_llama3, c->rope_factor,
                   c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_orig_max_pos};
    return r;
}

enum { LQA_LORA_Q = 1, LQA_LORA_K = 2, LQA_LORA_V = 4, LQA_LORA_O = 8, LQA_LORA_GATE = 16, LQA_LORA_UP = 32,
       LQA_LORA_DOWN = 64 };
typedef enum { LQA_TRAIN_LORA_PLUS = 0, LQA_TRAIN_LORA = 1, LQA_TRAIN_FULL = 2 } lqa_train_set;
typedef enum { LQA_ATTN_FULL = 0, LQA_ATTN_S2 = 1 } lqa_attn_mode;

typedef struct lqa_tensor_info {
    char name[128];      /* HF / PEFT name */
    int ndim;
    int64_t shape[2];
    size_t offset;       /* in floats, into its buffer */
    size_t numel;
    size_t lp_offset;    /* base tensors: offset in lora+'s compact gradient buffer (embedding and
                            norms, in params order); LQA_NOT_LORA_PLUS when lora+ does not train it */
    size_t b16_offset;   /* base tensors: offset in elements into params16 (--dtype bf16), for every
                            tensor without an lp_offset (the linears, an untied lm_head);
                            LQA_NOT_BF16 for the others (fp32 in params_lp) */
} lqa_tensor_info;
#define LQA_NOT_LORA_PLUS ((size_t)-1)
#define LQA_NOT_BF16 ((size_t)-1)

typedef struct lqa_model {
    lqa_config cfg;
    const lqa_backend *be;          /* where params and lora live (NULL: the CPU's host memory) */
    float *params;                  /* base parameters, layout above (NULL in the bf16 layout) */
    /* --dtype bf16 (CUDA), the bf16 layout (params NULL): every frozen GEMM weight (b16_offset)
     * in bf16, the embedding and norms (lp_offset, lora+'s compact layout) in fp32 */
    void *params16;                 /* n_params16 bf16 values on be16; NULL: fp32 everywhere */
    float *params_lp;               /* n_lora_plus floats in the model's backend memory */
    const lqa_backend *be16;        /* whose memory holds params16 (it does not move) */
    size_t n_params;
    size_t n_params16;              /* elements of the tensors with a b16_offset */
    size_t n_lora_plus;             /* floats of the base tensors lora+ trains (embedding, norms) */
    lqa_tensor_info *tensors;       /* n_tensors entries describing params */
    int n_tensors;
    /* LoRA (NULL / 0 when none) */
    int lora_targets;               /* LQA_LORA_* bits */
    int lora_rank;
    float lora_alpha;
    float *lora;
    size_t n_lora;
    lqa_tensor_info *lora_tensors;
    int n_lora_tensors;
} lqa_model;

/* The one place the layout above is computed: builds the tensor table of cfg (names, shapes,
 * offsets, n_params; and lora+'s compact gradient layout, lp_offset and n_lora_plus) without
 * allocating anything (params NULL). */
void lqa_model_shape(lqa_model *m, const lqa_config *cfg);
/* The LoRA table (lora_tensors, n_lora) for targets and rank, without allocating (lora NULL). */
void lqa_model_shape_lora(lqa_model *m, int targets, int rank, float alpha);
/* Builds the tensor table and allocates params (uninitialised, host memory) for cfg. */
void lqa_model_alloc(lqa_model *m, const lqa_config *cfg);
/* Random init as HF LLaMA does (normal(0, 0.02) for linears and embedding, norms = 1). */
void lqa_model_init_random(lqa_model *m, uint64_t seed);
/* Random values for timing, in the memory of the model's backend: norms 1, and every matrix cut
 * from one tile (at most 16M floats) of normal(0, 0.02) values at an offset of its own, wrapping
 * around: init_random's statistics, but periodic. On a device it costs one 64 MB upload and device
 * copies (a 7B model in about a second, where init_random would take a minute on the host and
 * need a 27 GB host copy). Deterministic in seed; the same values on every backend. */
void lqa_model_init_tiled(lqa_model *m, uint64_t seed);
/* For a model built from its shape (lqa_model_shape, params not allocated; LoRA, if any, added
 * on the host): moves LoRA to be and allocates params there, uninitialised. With
 * lqa_model_init_tiled, a random model straight in device memory. */
void lqa_model_alloc_on(lqa_model *m, const lqa_backend *be);
/* Adds LoRA tensors (A ~ Kaiming-uniform as PEFT, B = 0). */
void lqa_model_add_lora(lqa_model *m, int targets, int rank, float alpha, uint64_t seed);
void lqa_model_free(lqa_model *m);
/* The backend whose memory holds params and lora (the CPU's unless moved). */
const lqa_backend *lqa_model_backend(const lqa_model *m);
/* Moves params (or params_lp) and lora into be's memory (the other copy is freed); params16 stays
 * where it is. Loading, saving, init, LoRA creation and merging work on the host: a trainer
 * loads, moves to the device, and moves back (or downloads what it writes) for files. */
void lqa_model_to_backend(lqa_model *m, const lqa_backend *be);

/* --dtype bf16: the bf16 layout above. The frozen GEMM weights are bf16 on the device and read by
 * tensor cores (the linears, the lm_head's chunked cross-entropy); the embedding gather and the
 * norms read fp32, and what trains (LoRA A/B; embedding and norms for lora+) has fp32 masters
 * (params_lp, lora). A tied lm_head is the fp32 embedding (the fp32 cross-entropy reads it).
 * 0 when be and train allow it: a backend with bf16 kernels (CUDA), a head dim the bf16
 * attention takes, frozen linears (lora, lora+); -1 with err set otherwise. */
int lqa_model_bf16_check(const lqa_backend *be, const lqa_config *cfg, lqa_train_set train, lqa_err *err);
/* The bf16 layout for cfg: the tensor table, params_lp zeroed in host memory, params16
 * (uninitialised) on be; params NULL. The loader (lqa_hf_load_bf16) fills both. */
void lqa_model_alloc_bf16(lqa_model *m, const lqa_config *cfg, const lqa_backend *be);
/* Converts an fp32 model (params in the memory of its backend, which has the bf16 kernels) to the
 * bf16 layout in that memory, and frees params (for models made in memory: random init,
 * tests, bench; files load with lqa_hf_load_bf16). lqa_model_bf16_check's errors; a model
 * already in the bf16 layout is checked only. */
int lqa_model_use_bf16(lqa_model *m, lqa_train_set train, lqa_err *err);
/* Base tensor t's fp32 values in the model's backend memory: params, or params_lp in the bf16
 * layout; NULL for a tensor held in bf16 only. */
float *lqa_model_base_f32(const lqa_model *m, int t);
/* Looks a tensor up by name in params (params_lp) or lora (host memory only); NULL when absent
 * (or, in the bf16 layout, held in bf16 only). */
float *lqa_model_tensor(lqa_model *m, const char *name, const lqa_tensor_info **info);

/* A batch of B sequences of T tokens. loss_mask[b*T+t] = 1: token t is a target predicted from
 * tokens < t (HF labels convention; t = 0 is never a target). segment_ids (may be NULL): tokens
 * attend only within their own segment (packed records); segment id < 0 marks padding. */
typedef struct lqa_batch {
    int B, T;
    const int32_t *tokens;
    const uint8_t *loss_mask;
    const int32_t *segment_ids;
} lqa_batch;

typedef struct lqa_step_opts {
    lqa_attn_mode attn;
    float group_ratio;     /* S2-Attn group size = T * group_ratio */
    lqa_train_set train;   /* which gradients are computed */
    int checkpointing;     /* recompute per layer in backward */
    int threads;
    int mlp_rows;          /* bf16 layout: rows per MLP pass (0: LQA_MLP_ROWS); fp32: the whole batch */
} lqa_step_opts;

/* With the bf16 layout the MLP runs over row chunks of this many rows by default: its F-wide
 * buffers (gate, up, their product and their gradients; six of N x 11008 fp32 at 7B) are a
 * layer's largest and every row is independent, so they are sized for a chunk, not the batch. */
enum { LQA_MLP_ROWS = 4096 };

/* Gradients of the trainable tensors. d_lora has lora's layout; d_params has params' layout, or
 * with compact (lora+) only the embedding and norms, at lp_offset: a 7B model's lora+ gradients
 * are 0.5 GB, not the 27 GB of every base parameter. Pointers are NULL for sets not trained. */
typedef struct lqa_grads {
    float *d_params;   /* n_params (compact: lqa_grads_params_floats) */
    float *d_lora;     /* n_lora */
    int compact;       /* 1: d_params holds only lora+'s tensors, at lqa_grad_offset (lqa_grads_alloc's
                          layout for lora+); 0: the params layout (tests that build lqa_grads by hand) */
} lqa_grads;

/* Floats of d_params that lqa_grads_alloc gives the set (0 for lora). */
size_t lqa_grads_params_floats(const lqa_model *m, lqa_train_set train);
/* The gradient of base tensor t (index into m->tensors) in g, or NULL when g has none for it. */
float *lqa_grads_tensor(const lqa_grads *g, const lqa_model *m, int t);

/* 0 when opts can run a batch of length T on m (S2-Attn needs G = T*group_ratio an even integer
 * dividing T; the message then names ctx values that work), else -1 with err set. */
int lqa_model_check_opts(const lqa_model *m, int T, const lqa_step_opts *o, lqa_err *err);
/* Bytes of activation + scratch memory lqa_model_step allocates for a B x T batch (the
 * trainer's memory estimate before allocating; exact, from the same planner; linear in T). The
 * per-thread attention scratch counts omp_get_max_threads() threads. Parameters, gradients and
 * optimizer state are not included. */
size_t lqa_model_step_bytes(const lqa_model *m, int B, int T, const lqa_step_opts *o);

/* The persistent step workspace: every activation and scratch buffer of a step, the batch's
 * tokens, segment ids and targets, in ONE allocation of the model's backend memory, planned once
 * for B x T (the exact planner) and reused by every micro-batch: no allocation inside a step.
 * backward: whether steps compute gradients. With S2-Attn it also fits full attention (a run
 * may end with --full-attn-last). */
typedef struct lqa_workspace lqa_workspace;
lqa_workspace *lqa_workspace_new(const lqa_model *m, int B, int T, const lqa_step_opts *o, int backward);
void lqa_workspace_free(lqa_workspace *ws);
/* Bytes lqa_workspace_new allocates on backend be (the trainer's estimate; exact). */
size_t lqa_workspace_bytes(const lqa_model *m, const lqa_backend *be, int B, int T, const lqa_step_opts *o,
                           int backward);
/* The same, and in *checkpoints (may be NULL) how many of those bytes are the per-layer
 * checkpoints: every layer's input, and with checkpointing its attention output and lse. */
size_t lqa_workspace_bytes_split(const lqa_model *m, const lqa_backend *be, int B, int T, const lqa_step_opts *o,
                                 int backward, size_t *checkpoints);
/* lqa_model_step on a workspace (batch at most its B x T): the batch arrays are host memory;
 * gradients are ADDED into g (backend memory, may be NULL); the batch's mean loss, rounded to
 * float, is ADDED to *loss_acc (one double in backend memory, may be NULL) on the backend:
 * nothing waits for the device. */
void lqa_model_step_ws(lqa_model *m, lqa_workspace *ws, const lqa_batch *b, const lqa_step_opts *o, lqa_grads *g,
                       double *loss_acc);

/* Forward and backward (a workspace of its own, created and freed); returns the mean loss over all targets of the batch and ADDS gradients
 * of that mean into g (so micro-batches accumulate; scale for an average over micro-batches). A
 * target across a segment boundary (seg[t-1] != seg[t]) or on padding (seg < 0) is not
 * counted. g may be NULL for forward only. Invalid opts (see lqa_model_check_opts) are fatal:
 * check them first. A batch with no target returns 0. o must not be NULL. */
float lqa_model_step(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o, lqa_grads *g);

/* Logits of every position (B*T*V floats, caller frees), with o's attention mode (o NULL: full
 * causal attention, all threads). For tests and evaluation. */
float *lqa_model_logits(lqa_model *m, const lqa_batch *b, const lqa_step_opts *o);

/* Inference with a KV cache, on the model's backend, through the same layer code as training:
 * attention's Tq < Tk form over the cached keys and RoPE at the tokens' true positions.
 * lqa_kv_new: a cache of max_len positions and a forward workspace for chunks of up to `chunk`
 * tokens (at most max_len); its keys and values are fp32, or bf16 for a model in the bf16
 * layout (made after lqa_model_use_bf16 / lqa_hf_load_bf16). lqa_model_forward_kv runs tokens[0..n) (n <= chunk) at positions
 * pos0.. (the cache must hold positions < pos0), appends their keys and values, and returns in
 * host memory: logits (may be NULL) of rows logits_from..n-1, [n - logits_from, V]; with
 * targets (host, n entries, < 0 for none) the sum of -log p(target) is ADDED to *nll. threads:
 * CPU threads (0: all). */
typedef struct lqa_kv lqa_kv;
lqa_kv *lqa_kv_new(const lqa_model *m, int max_len, int chunk, int threads);
void lqa_kv_free(lqa_kv *kv);
int lqa_kv_chunk(const lqa_kv *kv);
void lqa_model_forward_kv(lqa_model *m, lqa_kv *kv, const int32_t *tokens, int n, int pos0, int threads,
                          float *logits, int logits_from, const int32_t *targets, double *nll);

/* Folds LoRA into the base weights (W += alpha/r B A) and drops the adapter. */
void lqa_model_merge_lora(lqa_model *m);

#endif
