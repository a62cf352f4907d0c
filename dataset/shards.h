/* shards.h: the token shard format (docs/FORMATS.md) and the reader the trainer uses.
 *
 * A shard directory holds manifest.json and shard-NNNNN.lqas files. A shard file is
 *   header (128 bytes: magic, version, kind, token dtype, vocab size, template id, flags,
 *           record and token counts, tokenizer SHA-256, header checksum)
 *   one zstd frame per record (record i is read by decoding one frame)
 *   seek index (40 bytes per record: offset, sizes, token count, xxh64 of the record bytes and
 *              of its zstd frame, so any changed byte is caught, even one zstd would ignore)
 *   footer (64 bytes: magic, index offset, counts, index checksum, header checksum, own checksum)
 * Every read is validated: bad input gives -1 and an lqa_err naming the file, the place and what
 * was expected; nothing in a shard can make the reader crash or allocate without bound.
 *
 * Records carry token ids, a loss mask (1 = the token is a target, the HF labels convention of
 * model/model.h) and a segment table (provenance: qa id, doc id, token span). In packed shards
 * (LQA_SHARD_PACKED) segments are attention boundaries: segment_ids[t] = segment index, and -1
 * for tokens outside any segment. Otherwise every token has segment id 0. */
#ifndef LQA_SHARDS_H
#define LQA_SHARDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

#define LQA_SHARD_MAGIC "LQASHRD1"
#define LQA_SHARD_FOOTER_MAGIC "LQAFOOT1"
#define LQA_SHARD_VERSION 1u
#define LQA_SHARD_HEADER_SIZE 128u
#define LQA_SHARD_FOOTER_SIZE 64u
#define LQA_SHARD_INDEX_ENTRY 40u
#define LQA_SHARD_MAX_TOKENS (1u << 24) /* per record (16M tokens); a bound for validation */

typedef enum { LQA_KIND_SFT = 1, LQA_KIND_LM = 2 } lqa_shard_kind;
enum { LQA_TEMPLATE_NONE = 0, LQA_TEMPLATE_LLAMA2_INST = 1 };
enum { LQA_SHARD_PACKED = 1 };

typedef struct lqa_shard_info {
    uint32_t version, kind, dtype_bytes, vocab_size, template_id, flags;
    uint64_t record_count, total_tokens;
    uint8_t tokenizer_sha256[32];
    char tokenizer_hex[65];
} lqa_shard_info;

typedef struct lqa_segment {
    int64_t qa_id, doc_id; /* -1 when not applicable */
    uint32_t start, len;   /* token span inside the record */
} lqa_segment;

/* A decoded record. Zero-initialise, pass to the read calls as often as wanted (buffers are
 * reused), release with lqa_record_free. */
typedef struct lqa_record {
    uint64_t index; /* global record index in its directory (or shard) */
    uint32_t n_tokens, n_segments;
    int32_t *tokens;
    uint8_t *loss_mask;
    int32_t *segment_ids;
    lqa_segment *segments;
    size_t cap_tokens, cap_segments;
    void *raw; /* decompression buffer */
    size_t cap_raw;
} lqa_record;
void lqa_record_free(lqa_record *r);

/* Copies a record into one row of an lqa_batch (model/model.h) of T tokens. Positions past
 * the record are padding: token pad_token (any valid id: LLaMA has no pad id), loss mask 0,
 * segment id -1, so the trainer masks padding by segment and mask, never by a pad id. A record
 * longer than T is cut to T. Returns the number of record tokens placed. */
uint32_t lqa_record_to_row(const lqa_record *r, uint32_t T, int32_t pad_token, int32_t *tokens, uint8_t *loss_mask,
                           int32_t *segment_ids);

const char *lqa_shard_kind_name(uint32_t kind); /* "sft", "lm" or "?" */

/* ---- writer ---- */
typedef struct lqa_shard_writer lqa_shard_writer;
/* info: kind, vocab_size, template_id, flags, tokenizer_sha256 are used; dtype is chosen from
 * the vocabulary (uint16 when it fits). Writes to a temporary name. */
lqa_shard_writer *lqa_shard_writer_open(const char *path, const lqa_shard_info *info, int zstd_level,
                                        lqa_err *err);
int lqa_shard_writer_add(lqa_shard_writer *w, const int32_t *tokens, const uint8_t *loss_mask, uint32_t n_tokens,
                         const lqa_segment *segs, uint32_t n_segs, lqa_err *err);
uint64_t lqa_shard_writer_records(const lqa_shard_writer *w);
uint64_t lqa_shard_writer_bytes(const lqa_shard_writer *w);
/* Writes index, footer and final header, then fsyncs and renames onto path. Frees w. */
int lqa_shard_writer_close(lqa_shard_writer *w, lqa_err *err);
void lqa_shard_writer_abort(lqa_shard_writer *w); /* removes the temporary file, frees w */

/* ---- one shard file ---- */
typedef struct lqa_shard lqa_shard;
/* Validates header, footer and the whole seek index (not the records). */
lqa_shard *lqa_shard_open(const char *path, lqa_err *err);
/* Same over bytes in memory (kept by the caller while the shard lives); for the fuzz target. */
lqa_shard *lqa_shard_open_mem(const void *data, size_t n, const char *name, lqa_err *err);
const lqa_shard_info *lqa_shard_get_info(const lqa_shard *s);
/* Decodes record i (one zstd frame) and checks its checksum and contents. */
int lqa_shard_read(lqa_shard *s, uint64_t i, lqa_record *rec, lqa_err *err);
void lqa_shard_close(lqa_shard *s);
/* Closes the file descriptor of an opened shard; the next read reopens it (and refuses a file
 * that was replaced meanwhile). A directory keeps one shard open at a time, so a directory of
 * any number of shards works under a small open-file limit. */
void lqa_shard_release_fd(lqa_shard *s);

/* ---- a shard directory ---- */
typedef struct lqa_shards lqa_shards;
/* Opens DIR/manifest.json and every shard it lists. tokenizer_sha256 (hex, may be NULL) must
 * equal the tokenizer the shards were built with, else a clear refusal. The manifest must agree
 * with the shards: each file listed once, every *.lqas file of DIR listed, and "kind", "dtype",
 * "packed", "template", tokenizer "vocab_size", "records" and "tokens" (where present) equal to
 * what the shard headers say. */
lqa_shards *lqa_shards_open(const char *dir, const char *tokenizer_sha256, lqa_err *err);
/* The same with manifest.json's n bytes given in memory (read by lqa_shards_open; a fuzzer's
 * input); the shards are still DIR's files. */
lqa_shards *lqa_shards_open_manifest(const char *dir, const char *manifest, size_t n, const char *tokenizer_sha256,
                                     lqa_err *err);
uint64_t lqa_shards_count(const lqa_shards *d);
const lqa_shard_info *lqa_shards_get_info(const lqa_shards *d); /* totals over all shards */
const json_t *lqa_shards_manifest(const lqa_shards *d);
int lqa_shards_n_files(const lqa_shards *d);
lqa_shard *lqa_shards_file(lqa_shards *d, int i, uint64_t *first_record);
int lqa_shards_read(lqa_shards *d, uint64_t i, lqa_record *rec, lqa_err *err);
void lqa_shards_close(lqa_shards *d);

/* ---- deterministic shuffled iteration across data-parallel ranks ----
 * Epoch e visits a permutation of all records drawn from (seed, e); rank r of R takes positions
 * r, r+R, r+2R, ... of it, and every rank gets floor(N/R) records per epoch (the remainder is
 * left out that epoch, as torch's DistributedSampler(drop_last=True) does). After the last
 * record of an epoch the next epoch starts. The position (epoch, step) is all a checkpoint needs
 * to resume the exact same stream. */
typedef struct lqa_iter_pos {
    uint64_t seed, epoch, step; /* step: records this rank has taken in this epoch */
    int rank, world;
} lqa_iter_pos;

typedef struct lqa_iter {
    lqa_shards *d;
    lqa_iter_pos pos;
    uint64_t n, per_rank;
    uint32_t *perm;   /* this epoch's permutation */
    uint64_t perm_epoch;
} lqa_iter;

int lqa_iter_init(lqa_iter *it, lqa_shards *d, uint64_t seed, int rank, int world, lqa_err *err);
/* The next record of this rank's stream. */
int lqa_iter_next(lqa_iter *it, lqa_record *rec, lqa_err *err);
lqa_iter_pos lqa_iter_tell(const lqa_iter *it);
/* Restores a position saved by lqa_iter_tell; refuses one from another seed or world size. */
int lqa_iter_seek(lqa_iter *it, const lqa_iter_pos *pos, lqa_err *err);
void lqa_iter_free(lqa_iter *it);

#endif
