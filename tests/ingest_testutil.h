/* ingest_testutil.h: helpers shared by the ingest parser tests (test_ingest_*.c): parse a path
 * and keep every document the parser hands on (the sink takes ownership by moving the struct
 * out), collect warnings, read spans. Header-only: each test binary links only testutil.c. */
#ifndef LQA_INGEST_TESTUTIL_H
#define LQA_INGEST_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "ingest/parse.h"

typedef struct doc_list {
    lqa_doc *docs;
    int n;
    lqa_buf warnings; /* one warning per line */
} doc_list;

/* The sink moves the document out; the parser then frees an empty struct. */
static inline int collect_doc(lqa_doc *doc, void *ctx) {
    doc_list *l = ctx;
    l->docs = lqa_realloc(l->docs, (size_t)(l->n + 1) * sizeof *l->docs);
    l->docs[l->n++] = *doc;
    memset(doc, 0, sizeof *doc);
    return 0;
}

static inline void collect_warning(const char *msg, void *ctx) {
    doc_list *l = ctx;
    lqa_buf_puts(&l->warnings, msg);
    lqa_buf_putc(&l->warnings, '\n');
}

/* Parses path (format NULL = sniff) into out; returns lqa_parse_path's result. */
static inline int parse_collect(const char *path, const char *format, doc_list *out, lqa_err *err) {
    memset(out, 0, sizeof *out);
    lqa_buf_reserve(&out->warnings, 0);
    out->warnings.data[0] = '\0';
    lqa_parse_opts opts = {.format = format, .warn = collect_warning, .warn_ctx = out};
    err->msg[0] = '\0';
    return lqa_parse_path(path, &opts, collect_doc, out, err);
}

static inline void doc_list_free(doc_list *l) {
    for (int i = 0; i < l->n; i++) lqa_doc_free(&l->docs[i]);
    free(l->docs);
    lqa_buf_free(&l->warnings);
    memset(l, 0, sizeof *l);
}

/* A fresh copy of the document text at span (caller frees). */
static inline char *span_text(const lqa_doc *d, lqa_span s) {
    if (s.end < s.start || s.end > d->text.len) return lqa_strdup("<span out of range>");
    return lqa_strndup(d->text.data + s.start, s.end - s.start);
}

/* Index of the section titled title, -1 when none. */
static inline int find_section(const lqa_doc *d, const char *title) {
    for (int i = 0; i < d->n_sections; i++)
        if (strcmp(d->sections[i].title, title) == 0) return i;
    return -1;
}

static inline int find_passage(const lqa_doc *d, const char *label) {
    for (int i = 0; i < d->n_passages; i++)
        if (strcmp(d->passages[i].label, label) == 0) return i;
    return -1;
}

static inline int find_def(const lqa_doc *d, const char *term) {
    for (int i = 0; i < d->n_defs; i++)
        if (strcmp(d->defs[i].term, term) == 0) return i;
    return -1;
}

#endif
