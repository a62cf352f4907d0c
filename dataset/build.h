/* build.h: what lqa-build does, as library calls (the CLI in dataset/main.c parses options and
 * calls these): train a tokenizer on a store, build sft or lm shards, verify a directory. */
#ifndef LQA_BUILD_H
#define LQA_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

/* The LongAlpaca-style prompt: BOS "[INST]" instruction "[/INST]", then answer "</s>", with the
 * instruction = LQA_PROMPT_HEAD document LQA_PROMPT_MID question (docs/FORMATS.md). */
#define LQA_PROMPT_HEAD "Below is a document. Memorize the document and answer my question after the document.\n" \
                        "The document begins.\n"
#define LQA_PROMPT_MID "\nNow the document ends.\n"

typedef struct lqa_build_opts {
    const char *db, *tokenizer, *out_dir;
    const char *split;       /* "train" by default; "all" for every split */
    const char *kinds;       /* QA kinds to keep (comma list), NULL = all */
    int kind;                /* LQA_KIND_SFT or LQA_KIND_LM */
    int max_len;
    int pack;                /* sft: pack short records with segment ids; lm: whole documents, a segment each */
    int threads;             /* 0 = all cores */
    int zstd_level;
    uint64_t shard_records;  /* records per shard file */
} lqa_build_opts;

/* The document window kept for an sft record: the document has n tokens, the evidence is
 * tokens [ea, eb), at most budget tokens fit (budget >= eb - ea). Context is taken evenly from
 * both sides of the evidence, so the side with more context (the far side) is trimmed first. */
void lqa_build_window(size_t n, size_t ea, size_t eb, size_t budget, size_t *wa, size_t *wb);

/* The bytes [*ks, *ke) an sft record keeps in its window, and an evaluation prompt too: the
 * evidence and the anchor (what the question quotes) together, from the first byte of either to
 * the last; returns 0 when the pair has neither (the window then keeps the document's start). */
int lqa_build_kept_span(size_t ev_start, size_t ev_end, size_t anchor_start, size_t anchor_end, size_t doc_len,
                        size_t *ks, size_t *ke);

struct lqa_tokenizer;
/* Tokenizes the sft prompt "[INST]" HEAD doc[a, b) MID question "[/INST]" (no BOS): the one
 * rendering both lqa-build and lqa-eval use, so evaluation prompts tokenize as training ones. */
int lqa_build_encode_prompt(const struct lqa_tokenizer *tok, const char *doc, size_t a, size_t b,
                            const char *question, int32_t **ids, size_t *n, lqa_err *err);
/* Index of the first token whose byte offset (begins[], ascending) is >= off; n when none. */
size_t lqa_build_first_token_at(const uint32_t *begins, size_t n, size_t off);

/* Builds a shard directory (written as DIR.tmp-PID, renamed onto DIR at the end). */
int lqa_build_shards(const lqa_build_opts *o, lqa_err *err);

/* Trains the tokenizer on the store's documents (split NULL or "all" = all), paragraph per
 * line. keep_text (may be NULL) keeps that training text under this name (benchmarks). */
int lqa_build_tokenizer(const char *db, const char *split, int vocab_size, uint64_t seed, int threads,
                        const char *out_model, const char *keep_text, lqa_err *err);

/* Checks every shard, checksum and record of DIR; with tokenizer, its hash and every record
 * decoded to text; with db too (sft), every example against its QA pair: decoded text = the
 * template, masked span = the answer, the context a piece of the document holding the
 * evidence. Prints one line per problem to stderr. Returns the number of problems found
 * (0 = all good), -1 when the directory or store cannot be opened at all. */
long lqa_verify_dir(const char *dir, const char *tokenizer, const char *db, lqa_err *err);

#endif
