/* ckpt.h: what makes a checkpoint trustworthy on --resume: folder names (step-NNNNNNNN inside
 * checkpoints/, never a path), completeness, a checksum of state.json over its own content and
 * of state.safetensors (size + XXH64), and the values of state.json checked before use. The
 * trainer (train.c) writes and reads checkpoints through these; tests/fuzz/fuzz_state.c fuzzes
 * lqa_ckpt_check_state. */
#ifndef LQA_TRAINER_CKPT_H
#define LQA_TRAINER_CKPT_H

#include <jansson.h>
#include <stdint.h>

#include "common/check.h"

/* A checkpoint folder's name: "step-" then 8 or more digits, nothing else. 0 and *step, or -1. */
int lqa_ckpt_name_step(const char *name, long *step);
/* ckpt_dir/name is a directory (not a link) holding state.json and state.safetensors. */
int lqa_ckpt_is_complete(const char *ckpt_dir, const char *name);
/* The name of the complete checkpoint with the highest step in ckpt_dir (caller frees), or NULL. */
char *lqa_ckpt_newest(const char *ckpt_dir);

/* Size and XXH64 of a file, streamed. */
int lqa_ckpt_digest_file(const char *path, uint64_t *bytes, uint64_t *xxh, lqa_err *err);
/* Records state.safetensors' size and digest in state ("files") and seals state with
 * "checksum": the XXH64 of its compact, key-sorted serialisation without that key. */
void lqa_ckpt_seal(json_t *state, uint64_t st_bytes, uint64_t st_xxh);
/* Checks a loaded state.json (path in messages): the checksum, then every value the trainer
 * reads: step in 1..max_step, optim_t in 0..step, elapsed finite and >= 0, RNG states of 4 x 16
 * hex digits and not all zero, data positions (16-hex seed/epoch/step, 0 <= rank < world), the
 * optional "sources" and "mix_rng", and the "files" record. On success *st_bytes and *st_xxh are
 * what state.safetensors must match. */
int lqa_ckpt_check_state(const json_t *state, const char *path, long max_step, uint64_t *st_bytes, uint64_t *st_xxh,
                         lqa_err *err);

#endif
