/* fuzz_ingest_text.c: libFuzzer target for the text/Markdown parser (ingest/text.c) and the
 * content sniffers: any bytes, parsed as plain text and as Markdown, must give a document whose
 * every recorded span lies inside its text on UTF-8 boundaries and holds what it names, or a
 * clean error; never a crash, a leak or an out-of-range span. Built by mk/fuzz.mk. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/qaset.h"
#include "ingest/text.h"

static int boundary(const lqa_doc *d, size_t off) {
    return off == d->text.len || ((unsigned char)d->text.data[off] & 0xc0) != 0x80;
}

static void check_span(const lqa_doc *d, lqa_span s) {
    if (s.start > s.end || s.end > d->text.len || !boundary(d, s.start) || !boundary(d, s.end)) __builtin_trap();
}

static int check_doc(lqa_doc *d, void *ctx) {
    if (strlen(d->text.data) != d->text.len) __builtin_trap(); /* no NUL inside the text */
    for (int i = 0; i < d->n_sections; i++) check_span(d, d->sections[i].span);
    for (int i = 0; i < d->n_passages; i++) check_span(d, d->passages[i].span);
    for (int i = 0; i < d->n_defs; i++) {
        check_span(d, d->defs[i].term_span);
        check_span(d, d->defs[i].def_span);
    }
    for (int t = 0; t < d->n_tables; t++) {
        const lqa_table *tb = &d->tables[t];
        for (int c = 0; c < tb->n_rows * tb->n_cols; c++) {
            lqa_span s = tb->cell_spans[c];
            check_span(d, s);
            /* a located cell holds exactly the cell text */
            if (s.end > s.start && (s.end - s.start != strlen(tb->cells[c]) ||
                                    memcmp(d->text.data + s.start, tb->cells[c], s.end - s.start) != 0))
                __builtin_trap();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    lqa_text_sniff(s, size);
    lqa_qaset_sniff(s, size);
    lqa_parse_opts opts = {0};
    lqa_err err;
    lqa_text_parse("fuzz.txt", s, size, "text", &opts, check_doc, NULL, &err);
    lqa_text_parse("fuzz.md", s, size, "markdown", &opts, check_doc, NULL, &err);
    return 0;
}
