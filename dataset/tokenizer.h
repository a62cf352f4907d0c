/* tokenizer.h: C API over sentencepiece (implemented in tokenizer.cc, the project's one C++
 * file). No C++ exception ever crosses into C: every call that can fail returns -1 with err set.
 * A real LLaMA-2 tokenizer.model loads unchanged. LLaMA has no pad id: pad_id is -1 then, and
 * the trainer masks padding itself (see docs/FORMATS.md). */
#ifndef LQA_TOKENIZER_H
#define LQA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lqa_tokenizer lqa_tokenizer;

lqa_tokenizer *lqa_tok_load(const char *model_path, lqa_err *err);
void lqa_tok_free(lqa_tokenizer *t);

int lqa_tok_vocab_size(const lqa_tokenizer *t);
int lqa_tok_bos_id(const lqa_tokenizer *t);
int lqa_tok_eos_id(const lqa_tokenizer *t);
int lqa_tok_unk_id(const lqa_tokenizer *t);
int lqa_tok_pad_id(const lqa_tokenizer *t); /* -1 when the model has none (LLaMA) */
/* SHA-256 of the .model file's bytes, lower-case hex (65 bytes with NUL). */
const char *lqa_tok_sha256(const lqa_tokenizer *t);

/* Encodes UTF-8 text (no BOS/EOS added). *ids is allocated (caller frees). Thread-safe: one
 * tokenizer may encode from many threads at once. */
int lqa_tok_encode(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                   lqa_err *err);
/* The plain sentencepiece call on the whole string. lqa_tok_encode gives the same ids faster
 * on long texts (it encodes newline-started segments separately when the model allows it:
 * lqa_tok_fast_path() != 0; see tokenizer.cc); this one is kept to check that. */
int lqa_tok_encode_whole(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                         lqa_err *err);
int lqa_tok_fast_path(const lqa_tokenizer *t);

/* Parts of one long text, for encoding a single text on several threads. lqa_tok_part_end
 * gives the first place >= at_least where a new part may begin (a newline), or len (always len
 * without the fast path). lqa_tok_encode_part encodes text[0, len) as the text's first part
 * (continuation = 0, the same as lqa_tok_encode) or as a later part beginning at such a place
 * (continuation = 1); concatenating the parts' ids gives lqa_tok_encode of the whole text.
 * begins (may be NULL): byte offsets relative to the part's start. */
size_t lqa_tok_part_end(const lqa_tokenizer *t, const char *text, size_t len, size_t at_least);
int lqa_tok_encode_part(const lqa_tokenizer *t, const char *text, size_t len, int continuation, int32_t **ids,
                        uint32_t **begins, size_t *n_ids, lqa_err *err);
/* Same as lqa_tok_encode, plus the byte offset into text where each token's span begins (non-decreasing);
 * *begins is allocated like *ids. Used to cut documents at token boundaries. */
int lqa_tok_encode_offsets(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids, uint32_t **begins,
                           size_t *n_ids, lqa_err *err);
/* Decodes ids to UTF-8 text (caller frees *text). Ids outside the vocabulary are an error. */
int lqa_tok_decode(const lqa_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, lqa_err *err);
/* (The ids are decoded as one sequence: byte-fallback pieces join into their UTF-8 characters,
 * and a character cut short at the end, as a generation stopped mid-character, is dropped.) */
/* Piece string of an id (valid while t lives); NULL when out of range. */
const char *lqa_tok_id_to_piece(const lqa_tokenizer *t, int id);
int lqa_tok_piece_to_id(const lqa_tokenizer *t, const char *piece); /* unk id when unknown */

/* sentencepiece skips training sentences longer than this many bytes (LLaMA's setting);
 * lqa-build splits longer paragraphs before feeding them. */
#define LQA_TOK_MAX_SENTENCE 4192

/* Trains a LLaMA-style BPE model (byte_fallback, split_digits, add_dummy_prefix, whitespace
 * kept, identity normalisation, unk 0 / bos 1 / eos 2 / no pad) from a text file with one
 * sentence (paragraph) per line; writes the .model atomically to out_model. Neither path is
 * recorded in the model, so the same text and seed give byte-identical files. The vocabulary
 * may come out smaller than vocab_size when the text is too small for it. */
int lqa_tok_train(const char *input_txt, const char *out_model, int vocab_size, uint64_t seed, int threads,
                  lqa_err *err);

#ifdef __cplusplus
}
#endif

#endif
