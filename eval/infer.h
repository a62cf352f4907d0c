/* infer.h: inference for lqa-eval: a LLaMA model (model/model.h layout) plus an optional LoRA
 * adapter applied WITHOUT merging (y = x W^T + (alpha/r) (x A^T) B^T), full causal attention,
 * and a KV cache so that each decoded token costs time linear in the context (one query row
 * against the cached keys) instead of recomputing the whole prefix.
 *
 * A session owns one KV cache of up to max_len positions. lqa_infer_feed appends tokens
 * (prefill in chunks, or one token while decoding) and returns their logits; lqa_infer_generate
 * is prefill followed by greedy decoding that stops at EOS or after max_new tokens. */
#ifndef LQA_EVAL_INFER_H
#define LQA_EVAL_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "model/model.h"

typedef struct lqa_infer lqa_infer;

/* Checks that max_len fits the model's context (cfg.max_pos, already interpolated by the
 * loader) and allocates the cache; NULL with err set when it does not. threads <= 0: all. */
lqa_infer *lqa_infer_new(const lqa_model *m, int max_len, int threads, lqa_err *err);
void lqa_infer_free(lqa_infer *s);
/* Empties the cache (a new sequence starts at position 0). */
void lqa_infer_reset(lqa_infer *s);
/* Number of positions in the cache. */
int lqa_infer_len(const lqa_infer *s);

/* Appends n tokens at positions len..len+n-1. logits_all (n*V floats) receives every token's
 * logits, logits_last (V floats) the last one's; either may be NULL. -1 with err set when the
 * cache would overflow or a token id is out of range. */
int lqa_infer_feed(lqa_infer *s, const int32_t *tokens, int n, float *logits_all, float *logits_last, lqa_err *err);

/* Resets, feeds the prompt, then greedily decodes up to max_new tokens, stopping after EOS
 * (eos_id < 0: never); out (max_new ids) receives them, EOS included. Returns the count or -1. */
int lqa_infer_generate(lqa_infer *s, const int32_t *prompt, int n_prompt, int max_new, int eos_id, int32_t *out,
                       lqa_err *err);

/* Sum of -log p(tokens[t] | tokens[<t]) over t in [from, n) (natural log) for one sequence fed
 * from an empty cache, in float64. Used by ppl (sliding windows) and by the tests. */
int lqa_infer_nll(lqa_infer *s, const int32_t *tokens, int n, int from, double *nll, lqa_err *err);

/* Index of the largest value (first on ties). */
int lqa_argmax(const float *x, int n);

/* Seconds spent in prefill / decode since creation, and tokens processed in each (bench). */
void lqa_infer_timing(const lqa_infer *s, double *prefill_s, long *prefill_tok, double *decode_s, long *decode_tok);

#endif
