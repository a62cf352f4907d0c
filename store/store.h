/* store.h: the LongQA store (SQLite, WAL), schema in docs/STORE.md. Writers are lqa-ingest;
 * readers are lqa-build and lqa-eval, through the read API at the end of this file. */
#ifndef LQA_STORE_H
#define LQA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "store/doc.h"

typedef struct lqa_store lqa_store;

/* Opens (creating when create != 0) a store; checks the schema version, migrates an older one
 * or refuses with a clear message. */
lqa_store *lqa_store_open(const char *path, int create, lqa_err *err);
void lqa_store_close(lqa_store *s);
struct sqlite3 *lqa_store_db(lqa_store *s);

/* ---- read API (lqa-build, lqa-eval) ----
 * Each call prepares its own statements, so the read functions may be called from several
 * threads on one store (SQLite's default serialized mode); the write API is single-threaded. */

typedef struct lqa_store_doc {
    int64_t id;
    char *title, *format, *source, *split;  /* split: "train", "valid" or "test" */
    char *text;                             /* decompressed normalised text */
    size_t text_len;
    int synthetic;                          /* 1: a copy holding inserted passkey/needle text */
} lqa_store_doc;

typedef struct lqa_store_qa {
    int64_t id, doc_id;
    char *kind, *generator, *split, *question, *answer;
    size_t ev_start, ev_end;   /* byte offsets into the document text; ev_end == 0: no span */
    size_t doc_len;            /* document length in bytes */
    size_t anchor_start, anchor_end; /* what the question quotes or points at; anchor_end == 0: none */
} lqa_store_qa;

/* Iterates documents of a split (NULL = all) in id order. Each callback's doc is freed after it
 * returns. Return non-zero from the callback to stop. Synthetic copies (documents that only
 * carry the spans of synthetic passkey/needle pairs) are NOT visited: they would put needles
 * into tokenizer, LM and haystack text; lqa_store_get_doc still loads them by id. */
typedef int (*lqa_store_doc_fn)(const lqa_store_doc *doc, void *ctx);
int lqa_store_each_doc(lqa_store *s, const char *split, lqa_store_doc_fn fn, void *ctx, lqa_err *err);
/* Loads one document by id (caller frees with lqa_store_doc_free). */
int lqa_store_get_doc(lqa_store *s, int64_t id, lqa_store_doc *out, lqa_err *err);
void lqa_store_doc_free(lqa_store_doc *d);

typedef int (*lqa_store_qa_fn)(const lqa_store_qa *qa, void *ctx);
/* Iterates QA pairs of a split (NULL = all) in id order; kinds = NULL or comma list to filter. */
int lqa_store_each_qa(lqa_store *s, const char *split, const char *kinds, lqa_store_qa_fn fn, void *ctx,
                      lqa_err *err);

/* Checks every QA row against its document before a reader trusts it: the document exists,
 * and the evidence span [ev_start, ev_end) is in order and inside the document's n_bytes.
 * 0, or -1 with err naming the store and the first bad pair's id. lqa_store_each_qa runs it
 * first; lqa-ingest export too. */
int lqa_store_check_qa(lqa_store *s, lqa_err *err);

/* 0 when query is valid FTS5 syntax (checked on an empty in-memory table, so a failure on the
 * store itself is the store's, not the query's); -1 with SQLite's reason. */
int lqa_store_fts_syntax(const char *query, lqa_err *err);

/* ---- write API (lqa-ingest) ---- */

/* Schema version this build reads and writes (PRAGMA user_version). */
#define LQA_STORE_SCHEMA_VERSION 5

/* The stored form of a document's text, made off the writer's thread (lqa-ingest add packs
 * texts on its worker threads): the zstd frame (level 1, with checksum) and the length in code
 * points. A packer holds one zstd context: one per thread. */
typedef struct lqa_store_packer lqa_store_packer;
typedef struct lqa_store_packed {
    void *z;
    size_t zn, n_chars;
} lqa_store_packed;
lqa_store_packer *lqa_store_packer_new(void);
void lqa_store_packer_free(lqa_store_packer *p);
void lqa_store_pack(lqa_store_packer *p, const char *text, size_t len, lqa_store_packed *out);
void lqa_store_packed_free(lqa_store_packed *pk);
/* The answers column for a single answer: ["answer"] (what lqa_store_add_qa stores when
 * answers_json is NULL), for callers that build it off the writer's thread. */
char *lqa_store_answers_json(const char *answer);

/* A document to insert: text is the normalised UTF-8 text, hash the hex SHA-256 of it. */
typedef struct lqa_store_doc_in {
    int64_t source_id;
    const char *hash_hex, *title, *format, *path, *split;
    const char *text;
    size_t text_len;
    int synthetic;        /* 1: a copy of parent_id with an inserted needle */
    int64_t parent_id;    /* 0 when none */
} lqa_store_doc_in;

/* A QA pair to insert; answers_json NULL means ["answer"]. ev_end == 0: no span. */
typedef struct lqa_store_qa_in {
    int64_t doc_id;
    const char *question, *answer, *answers_json, *kind, *generator;
    size_t ev_start, ev_end, doc_len;
    uint64_t seed;
    size_t anchor_start, anchor_end; /* anchor_end == 0: the question quotes no place */
} lqa_store_qa_in;

/* Transactions: each holds whole documents (lqa-ingest add batches several), so an
 * interrupted run leaves whole documents only. */
void lqa_store_begin(lqa_store *s);
void lqa_store_commit(lqa_store *s);
void lqa_store_rollback(lqa_store *s);

/* The id of source `name`, created when missing. */
int64_t lqa_store_source(lqa_store *s, const char *name);
/* The id of the document with this content hash, or 0. */
int64_t lqa_store_find_hash(lqa_store *s, const char *hash_hex);
int64_t lqa_store_add_doc(lqa_store *s, const lqa_store_doc_in *d);
/* lqa_store_add_doc with the text already packed (lqa_store_pack of d->text). */
int64_t lqa_store_add_packed(lqa_store *s, const lqa_store_doc_in *d, const lqa_store_packed *packed);
/* Adds a copy of document d->parent_id whose text is the parent's text with the spans
 * `inserted` of d->text inserted (in order, not overlapping): only the insertions are stored,
 * not a second compressed text; the read API rebuilds the copy. */
int64_t lqa_store_add_copy(lqa_store *s, const lqa_store_doc_in *d, const lqa_span *inserted, int n_inserted);
/* Adds one section row and its FTS5 entry (title + body). body must be the document's own text
 * from start, body_len bytes (the section's text up to its first subsection): the row keeps
 * body_end = start + body_len and the index reads the text back from the document. Returns
 * the row id. */
int64_t lqa_store_add_section(lqa_store *s, int64_t doc_id, int idx, int parent_idx, int level,
                              const char *title, size_t start, size_t end, const char *body, size_t body_len);
/* Returns the new row id, or 0 when the store already holds this (document, question, answer). */
int64_t lqa_store_add_qa(lqa_store *s, const lqa_store_qa_in *q);

/* Split of a document, deterministic from (seed, content hash): fractions train,valid,test. */
const char *lqa_store_split_for(const char *hash_hex, uint64_t seed, const double frac[3]);
/* The split of a document of text_len bytes: lqa_store_split_for, except that a long document
 * (LQA_STORE_LONG_TEST bytes, ~16k tokens, or more) goes to test with LQA_STORE_LONG_TEST_X
 * times the test fraction (at most half), taken from train: the test split holds long
 * documents on purpose, and stays per document and deterministic from (seed, hash). */
#define LQA_STORE_LONG_TEST 64000
#define LQA_STORE_LONG_TEST_X 2
const char *lqa_store_split_for_len(const char *hash_hex, uint64_t seed, const double frac[3], size_t text_len);

#endif
