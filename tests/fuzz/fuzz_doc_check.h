/* fuzz_doc_check.h: what every parser's fuzz target checks of a document handed to its sink
 * (header-only, for the libFuzzer targets in tests/fuzz/): the text has no NUL, every recorded
 * span (sections, passages, definitions, table cells, QA evidence) lies inside the text on
 * UTF-8 boundaries, and a located table cell holds exactly the cell text. A violation traps. */
#ifndef LQA_FUZZ_DOC_CHECK_H
#define LQA_FUZZ_DOC_CHECK_H

#include <string.h>

#include "store/doc.h"

static int fuzz_boundary(const lqa_doc *d, size_t off) {
    return off == d->text.len || ((unsigned char)d->text.data[off] & 0xc0) != 0x80;
}

static void fuzz_check_span(const lqa_doc *d, lqa_span s) {
    if (s.start > s.end || s.end > d->text.len || !fuzz_boundary(d, s.start) || !fuzz_boundary(d, s.end))
        __builtin_trap();
}

static int fuzz_check_doc(lqa_doc *d, void *ctx) {
    (void)ctx;
    if (!d->text.data) {
        if (d->text.len) __builtin_trap();
        return 0;
    }
    if (strlen(d->text.data) != d->text.len) __builtin_trap();
    for (int i = 0; i < d->n_sections; i++) fuzz_check_span(d, d->sections[i].span);
    for (int i = 0; i < d->n_passages; i++) fuzz_check_span(d, d->passages[i].span);
    for (int i = 0; i < d->n_defs; i++) {
        fuzz_check_span(d, d->defs[i].term_span);
        fuzz_check_span(d, d->defs[i].def_span);
    }
    for (int t = 0; t < d->n_tables; t++) {
        const lqa_table *tb = &d->tables[t];
        for (int c = 0; c < tb->n_rows * tb->n_cols; c++) {
            lqa_span s = tb->cell_spans[c];
            fuzz_check_span(d, s);
            if (s.end > s.start && (s.end - s.start != strlen(tb->cells[c]) ||
                                    memcmp(d->text.data + s.start, tb->cells[c], s.end - s.start) != 0))
                __builtin_trap();
        }
    }
    for (int i = 0; i < d->n_qas; i++)
        if (d->qas[i].evidence.end) fuzz_check_span(d, d->qas[i].evidence);
    return 0;
}

#endif
