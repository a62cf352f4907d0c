/* text.h: the plain-text and Markdown/reST parser (ingest/text.c): headings from `#`, setext and
 * reST underlines, numbered and outdented headings; KJV-style verse lines ("Ge1:1 text",
 * "Genesis 1:1 text") as labelled passages; ":term: definition" and "term\n    definition"
 * entries as definitions; Markdown pipe tables as tables. */
#ifndef LQA_TEXT_H
#define LQA_TEXT_H

#include <stddef.h>

#include "ingest/parse.h"

/* "markdown" when the head shows Markdown/reST structure (ATX headings, setext/reST underlines,
 * fences, pipe tables), else "text". */
const char *lqa_text_sniff(const char *head, size_t n);

/* Parses an in-memory text (any bytes: invalid UTF-8 becomes U+FFFD through the document
 * builder) of format "text" or "markdown" into one document. */
int lqa_text_parse(const char *path, const char *data, size_t len, const char *format, const lqa_parse_opts *opts,
                   lqa_doc_sink sink, void *ctx, lqa_err *err);

#endif
