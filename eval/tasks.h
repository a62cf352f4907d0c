/* tasks.h: the evaluation tasks of lqa-eval (qa, passkey, ppl). Each task runs on one model
 * session and returns its part of results.json (schema in docs/EVAL.md): its settings, its
 * scores, and the per-item detail the report needs. */
#ifndef LQA_EVAL_TASKS_H
#define LQA_EVAL_TASKS_H

#include <jansson.h>
#include <stdint.h>

#include "common/check.h"
#include "common/rng.h"
#include "dataset/tokenizer.h"
#include "eval/infer.h"
#include "store/store.h"

/* What every task shares: the model session (its cache holds up to ctx tokens), tokenizer,
 * store (NULL when none was given) and the user's settings. */
typedef struct lqa_eval_ctx {
    lqa_infer *inf;
    const lqa_tokenizer *tok;
    int vocab_size, bos_id, eos_id;
    int ctx;                 /* evaluation context in tokens (<= the model's max_pos) */
    lqa_store *store;        /* NULL: no store */
    const char *split;       /* store split for qa / ppl / store filler */
    int max_new_tokens;      /* qa answers */
    int limit;               /* qa pairs / ppl documents at most (0: all) */
    uint64_t seed;
    int ppl_tokens;          /* ppl scores each document's first N tokens at most (0: whole) */
} lqa_eval_ctx;

/* ---- passkey (LongLoRA's protocol) ---- */
#define LQA_PASSKEY_INTRO "There is an important info hidden inside a lot of irrelevant text. Find it and " \
    "memorize them. I will quiz you about the important information there."
#define LQA_PASSKEY_FILLER " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
#define LQA_PASSKEY_LINE " The pass key is %s. Remember it. %s is the pass key."
#define LQA_PASSKEY_QUESTION " What is the pass key? The pass key is"

typedef struct lqa_passkey_opts {
    const int *lengths;      /* prompt lengths in tokens */
    int n_lengths;
    const double *depths;    /* relative depth of the key line in the filler, 0..1 */
    int n_depths;
    int trials;              /* per (length, depth) cell */
    int store_filler;        /* 0: the paper's sentences; 1: text of the store's documents */
    int max_key;             /* keys are uniform in [1, max_key]: 50000 as the paper */
} lqa_passkey_opts;

/* Token ids of one passkey prompt of at most `length` tokens (BOS, intro, filler with the key
 * line at relative depth `depth` on a filler boundary, question). filler: the token stream to
 * repeat (paper: one filler unit; store: a long stream, taken from a random offset). The key
 * line must fit: -1 with err otherwise. *key_pos receives the key line's first token index. */
int lqa_passkey_prompt(const lqa_eval_ctx *e, const int32_t *filler, size_t n_filler, int repeat_units,
                       int length, double depth, const char *key, lqa_rng *rng, int32_t **ids, int *n_ids,
                       int *key_pos, lqa_err *err);
/* First run of digits in text (at most n-1 of them) into out; 0 when found, -1 when none. */
int lqa_passkey_extract(const char *text, char *out, size_t n);
int lqa_task_passkey(lqa_eval_ctx *e, const lqa_passkey_opts *o, json_t **out, lqa_err *err);

/* ---- ppl ---- */
/* Sliding-window NLL of one token sequence, as HF's perplexity guide and LongLoRA's eval do:
 * windows of `window` tokens moved by `stride`; each window scores only the tokens that the
 * previous one did not (so every token after the first is scored exactly once, with as much
 * context as the window allows). Adds to *nll (nats) and *count (tokens scored). */
int lqa_ppl_sliding(lqa_infer *inf, const int32_t *tokens, int n, int window, int stride, double *nll, long *count,
                    lqa_err *err);
int lqa_task_ppl(lqa_eval_ctx *e, const int *lengths, int n_lengths, int stride, json_t **out, lqa_err *err);

/* ---- qa ---- */
/* The SFT prompt of one QA pair (BOS + "[INST]" instruction "[/INST]"), its document cut to
 * fit max_prompt tokens around the evidence span (the question is never cut). *doc_tokens: the
 * whole document's tokens; *full_tokens: the prompt's length had nothing been cut; *truncated
 * is set when the document did not fit. -1 with err when even the question alone does not fit. */
int lqa_qa_prompt(const lqa_eval_ctx *e, const char *doc, size_t doc_len, size_t ev_start, size_t ev_end,
                  const char *question, int max_prompt, int32_t **ids, int *n_ids, int *doc_tokens, int *full_tokens,
                  int *truncated, lqa_err *err);
int lqa_task_qa(lqa_eval_ctx *e, const int *lengths, int n_lengths, json_t **out, lqa_err *err);

#endif
