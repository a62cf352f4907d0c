/* parse.h: from an input path to parsed documents. The dispatcher reads the file through the
 * decompression layer (.gz .bz2 .xz .zst, by magic bytes), sniffs the format from content (or
 * takes --format), and calls the format's parser, which hands each document to the sink. One
 * file may yield many documents (a MediaWiki dump, a QA set, an EPUB when not joined). */
#ifndef LQA_PARSE_H
#define LQA_PARSE_H

#include "common/check.h"
#include "ingest/input.h"
#include "store/doc.h"

/* Called once per parsed document. The parser frees doc after the sink returns.
 * Return 0 to go on, non-zero to stop parsing this input. */
typedef int (*lqa_doc_sink)(lqa_doc *doc, void *ctx);

/* A per-input warning (recoverable oddity: recovered HTML error, skipped record). */
typedef void (*lqa_warn_fn)(const char *msg, void *ctx);

typedef struct lqa_parse_opts {
    const char *format;      /* NULL or "auto" = sniff */
    size_t max_text_node;    /* refuse a single text node larger than this (default 16 MiB) */
    int max_depth;           /* refuse nesting deeper than this (default 256) */
    lqa_warn_fn warn;        /* may be NULL */
    void *warn_ctx;
    int join_by_chapter;     /* lqa_parse_manual: one document per chapter (each entry of the index
                                page's table of contents with the pages below it; a Mallard guide
                                with its topics) instead of one for the whole manual */
    const lqa_input_pin *pin; /* the file the input walk found (ingest/input.h): every open of
                                 the input checks it is still that file; NULL: none; for a
                                 manual, the index page's) */
    int follow_symlinks;     /* lqa_parse_manual: a page may be a symbolic link leading out of the
                                manual's folder (--follow-symlinks); else such a page is no page of it */
} lqa_parse_opts;

/* Parses one file. Returns 0, or -1 with err = "FILE:LINE: what was wrong, what was expected".
 * Documents handed to the sink before an error stay handed (the caller decides what to keep). */
int lqa_parse_path(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err);

/* Formats a warning and sends it to opts->warn (nothing when opts or its warn is NULL). */
void lqa_parse_warn(const lqa_parse_opts *opts, const char *fmt, ...) LQA_PRINTF(2, 3);

/* Parses several HTML/XHTML pages of one manual as ONE document in the given reading order
 * (the --join mode); paths in order. */
int lqa_parse_joined(const char *const *paths, int n_paths, const lqa_parse_opts *opts, lqa_doc_sink sink,
                     void *ctx, lqa_err *err);

/* Reading order of a multi-page HTML manual: follows the table of contents of index_path
 * (links in document order, first visit wins) and returns the paths (caller frees each and the
 * array). Pages not linked from the TOC are appended in name order. */
int lqa_manual_reading_order(const char *index_path, char ***paths, int *n_paths, lqa_err *err);

/* lqa_manual_reading_order + lqa_parse_joined in one pass: each page is parsed once, for its
 * TOC links and its text, as the reading order reaches it (the same document, warnings and
 * errors as the two calls). */
int lqa_parse_manual(const char *index_path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                     lqa_err *err);

/* Format names accepted by --format. */
extern const char *const lqa_formats[];

#endif
