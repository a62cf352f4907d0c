/* store.h: the LongQA store (SQLite, WAL), schema in docs/STORE.md. Writers are lqa-ingest;
 * readers are lqa-build and lqa-eval, through the read API at the end of this file. */
#ifndef LQA_STORE_H
#define LQA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

typedef struct lqa_store lqa_store;

/* Opens (creating when create != 0) a store; checks the schema version, migrates an older one
 * or refuses with a clear message. */
lqa_store *lqa_store_open(const char *path, int create, lqa_err *err);
void lqa_store_close(lqa_store *s);
struct sqlite3 *lqa_store_db(lqa_store *s);

/* ---- read API (lqa-build, lqa-eval) ---- */

typedef struct lqa_store_doc {
    int64_t id;
    char *title, *format, *source, *split;  /* split: "train", "valid" or "test" */
    char *text;                             /* decompressed normalised text */
    size_t text_len;
} lqa_store_doc;

typedef struct lqa_store_qa {
    int64_t id, doc_id;
    char *kind, *generator, *split, *question, *answer;
    size_t ev_start, ev_end;   /* byte offsets into the document text; ev_end == 0: no span */
    size_t doc_len;            /* document length in bytes */
} lqa_store_qa;

/* Iterates documents of a split (NULL = all) in id order. Each callback's doc is freed after it
 * returns. Return non-zero from the callback to stop. */
typedef int (*lqa_store_doc_fn)(const lqa_store_doc *doc, void *ctx);
int lqa_store_each_doc(lqa_store *s, const char *split, lqa_store_doc_fn fn, void *ctx, lqa_err *err);
/* Loads one document by id (caller frees with lqa_store_doc_free). */
int lqa_store_get_doc(lqa_store *s, int64_t id, lqa_store_doc *out, lqa_err *err);
void lqa_store_doc_free(lqa_store_doc *d);

typedef int (*lqa_store_qa_fn)(const lqa_store_qa *qa, void *ctx);
/* Iterates QA pairs of a split (NULL = all) in id order; kinds = NULL or comma list to filter. */
int lqa_store_each_qa(lqa_store *s, const char *split, const char *kinds, lqa_store_qa_fn fn, void *ctx,
                      lqa_err *err);

#endif
