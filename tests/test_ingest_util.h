/* test_ingest_util.h: helpers the ingest parser tests share (test_ingest_*.c; static,
 * header-only, each test binary links only testutil.c): collecting parsed documents (the sink
 * takes each over by moving the struct out) and warnings, parsing a path or an XML buffer or
 * fixture, span text and lookups by title/term/label, and the invariants every parsed document
 * must satisfy (spans inside the text on UTF-8 boundaries, cell text at each cell span, titles
 * at section starts, valid UTF-8 text). */
#ifndef TEST_INGEST_UTIL_H
#define TEST_INGEST_UTIL_H

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "ingest/docbuild.h"
#include "ingest/parse.h"
#include "ingest/xml.h"

typedef struct xt_docs {
    lqa_doc *docs;
    int n, cap;
    lqa_buf warnings; /* every warning, one per line */
    long n_warnings;
    int stop_after;   /* when > 0, the sink asks the parser to stop after this many docs */
} xt_docs;

/* Takes the document over (the parser frees what is left in *doc: nothing). */
static inline int xt_sink(lqa_doc *doc, void *ctx) {
    xt_docs *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->docs = lqa_realloc(c->docs, (size_t)c->cap * sizeof *c->docs);
    }
    c->docs[c->n++] = *doc;
    memset(doc, 0, sizeof *doc);
    return c->stop_after > 0 && c->n >= c->stop_after;
}

static inline void xt_warn(const char *msg, void *ctx) {
    xt_docs *c = ctx;
    lqa_buf_puts(&c->warnings, msg);
    lqa_buf_putc(&c->warnings, '\n');
    c->n_warnings++;
}

static inline void xt_docs_free(xt_docs *c) {
    for (int i = 0; i < c->n; i++) lqa_doc_free(&c->docs[i]);
    free(c->docs);
    lqa_buf_free(&c->warnings);
    memset(c, 0, sizeof *c);
}

static inline lqa_parse_opts xt_opts(xt_docs *c) {
    lqa_parse_opts o = {0};
    o.warn = xt_warn;
    o.warn_ctx = c;
    return o;
}

/* Parses path (format NULL = sniff) into out; returns lqa_parse_path's result. */
static inline int xt_parse_path(const char *path, const char *format, xt_docs *out, lqa_err *err) {
    memset(out, 0, sizeof *out);
    lqa_buf_reserve(&out->warnings, 0);
    out->warnings.data[0] = '\0';
    lqa_parse_opts opts = xt_opts(out);
    opts.format = format;
    err->msg[0] = '\0';
    return lqa_parse_path(path, &opts, xt_sink, out, err);
}

/* A fresh copy of the document text at span (caller frees). */
static inline char *xt_span_text(const lqa_doc *d, lqa_span s) {
    if (s.end < s.start || s.end > d->text.len) return lqa_strdup("<span out of range>");
    return lqa_strndup(d->text.data + s.start, s.end - s.start);
}

static lqa_err xt_last_err __attribute__((unused));

static inline int xt_parse_buffer(const char *path, const char *data, size_t len, const char *fmt, xt_docs *c) {
    lqa_parse_opts o = xt_opts(c);
    return lqa_xml_parse_buffer(path, data, len, fmt, &o, xt_sink, c, &xt_last_err);
}

static inline int xt_parse_fixture(const char *name, const char *fmt, xt_docs *c) {
    char *dir = lqa_path_join(lqa_test_fixtures(), "xml"), *path = lqa_path_join(dir, name);
    char *data;
    size_t len;
    assert_int_equal(lqa_read_file(path, &data, &len, NULL), 0);
    if (!fmt) fmt = lqa_xml_sniff(data, len);
    assert_non_null(fmt);
    int rc = xt_parse_buffer(path, data, len, fmt, c);
    if (rc) print_message("parse error: %s\n", xt_last_err.msg);
    free(data), free(dir), free(path);
    return rc;
}

static inline int xt_span_is(const lqa_doc *d, lqa_span s, const char *want) {
    size_t n = strlen(want);
    return s.end >= s.start && s.end - s.start == n && s.end <= d->text.len &&
           memcmp(d->text.data + s.start, want, n) == 0;
}

static inline int xt_span_starts(const lqa_doc *d, lqa_span s, const char *want) {
    size_t n = strlen(want);
    return s.end - s.start >= n && memcmp(d->text.data + s.start, want, n) == 0;
}

static inline int xt_section(const lqa_doc *d, const char *title) {
    for (int i = 0; i < d->n_sections; i++)
        if (strcmp(d->sections[i].title, title) == 0) return i;
    return -1;
}

static inline int xt_def(const lqa_doc *d, const char *term) {
    for (int i = 0; i < d->n_defs; i++)
        if (strcmp(d->defs[i].term, term) == 0) return i;
    return -1;
}

static inline int xt_passage(const lqa_doc *d, const char *label) {
    for (int i = 0; i < d->n_passages; i++)
        if (strcmp(d->passages[i].label, label) == 0) return i;
    return -1;
}

static inline const char *xt_cell(const lqa_table *t, int r, int c) {
    assert_true(r < t->n_rows && c < t->n_cols);
    return t->cells[r * t->n_cols + c];
}

static inline int xt_boundary(const lqa_doc *d, size_t off) {
    return off == d->text.len || ((unsigned char)d->text.data[off] & 0xC0) != 0x80;
}

static inline void xt_check_span(const lqa_doc *d, lqa_span s) {
    assert_true(s.start <= s.end);
    assert_true(s.end <= d->text.len);
    assert_true(xt_boundary(d, s.start) && xt_boundary(d, s.end));
}

/* What every parsed document must satisfy. */
static inline void xt_check_invariants(const lqa_doc *d) {
    assert_non_null(d->text.data);
    assert_int_equal(strlen(d->text.data), d->text.len);
    assert_int_equal(lqa_utf8_repair(d->text.data, d->text.len, NULL, NULL), 0);
    assert_null(strstr(d->text.data, "\n\n\n"));
    assert_non_null(d->title);
    for (int i = 0; i < d->n_sections; i++) {
        const lqa_section *s = &d->sections[i];
        xt_check_span(d, s->span);
        assert_true(xt_span_starts(d, s->span, s->title));
        assert_true(s->parent < i);
        if (s->parent >= 0) assert_true(d->sections[s->parent].level < s->level);
    }
    for (int t = 0; t < d->n_tables; t++) {
        const lqa_table *tb = &d->tables[t];
        for (int i = 0; i < tb->n_rows * tb->n_cols; i++) {
            xt_check_span(d, tb->cell_spans[i]);
            if (tb->cells[i][0]) assert_true(xt_span_is(d, tb->cell_spans[i], tb->cells[i]));
            else assert_true(tb->cell_spans[i].end == tb->cell_spans[i].start); /* located nowhere */
        }
    }
    for (int i = 0; i < d->n_defs; i++) {
        xt_check_span(d, d->defs[i].term_span);
        xt_check_span(d, d->defs[i].def_span);
        assert_true(xt_span_is(d, d->defs[i].term_span, d->defs[i].term));
        assert_true(d->defs[i].def_span.end > d->defs[i].def_span.start);
    }
    for (int i = 0; i < d->n_passages; i++) {
        xt_check_span(d, d->passages[i].span);
        assert_true(d->passages[i].span.end > d->passages[i].span.start);
    }
    xt_check_span(d, d->abstract);
}

#endif
