/* hash.h: SHA-256 (nettle) for identities that must match other tools (tokenizer files,
 * shard contents), XXH64 (xxhash) for fast content checksums and deterministic seeding. */
#ifndef LQA_HASH_H
#define LQA_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

#define LQA_SHA256_SIZE 32

void lqa_sha256(const void *data, size_t n, uint8_t out[LQA_SHA256_SIZE]);
/* SHA-256 of a file's bytes; -1 with err set when it cannot be read. */
int lqa_sha256_file(const char *path, uint8_t out[LQA_SHA256_SIZE], lqa_err *err);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void lqa_hex(const uint8_t *bytes, size_t n, char *out);

uint64_t lqa_xxh64(const void *data, size_t n, uint64_t seed);

#endif
