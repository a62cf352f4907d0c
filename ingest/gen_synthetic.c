/* gen_synthetic.c: passkey and needle insertion (kind "synthetic"). The document text is
 * copied, a passkey paragraph and a "magic number" needle paragraph are inserted at seeded
 * depths on paragraph boundaries, and the pairs point at the inserted text in the COPY, which
 * the store keeps as its own document row flagged synthetic, so every span stays verifiable. */
#include "ingest/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NEEDLE_WORDS[] = {"harbour", "lantern", "orchard", "compass", "granite", "meadow",
                                           "velvet", "thistle", "beacon", "falcon", "cobalt", "juniper"};

/* A paragraph boundary at or after depth * len (start of the next paragraph), else the end. */
static size_t boundary_at(const char *t, size_t len, double depth) {
    size_t at = (size_t)(depth * (double)len);
    const char *p = at < len ? memmem(t + at, len - at, "\n\n", 2) : NULL;
    return p ? (size_t)(p - t) + 2 : len;
}

/* A number of `digits` digits that does not occur in text. */
static unsigned long fresh_number(lqa_rng *r, const char *t, size_t len, int digits) {
    unsigned long lo = 1;
    for (int i = 1; i < digits; i++) lo *= 10;
    for (;;) {
        unsigned long v = lo + (unsigned long)lqa_rng_below(r, 9 * lo);
        char s[24];
        int n = snprintf(s, sizeof s, "%lu", v);
        if (!memmem(t, len, s, (size_t)n)) return v;
    }
}

int lqa_gen_synthetic(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_synth *out) {
    memset(out, 0, sizeof *out);
    const char *t = doc->text.data;
    size_t len = doc->text.len;
    if (len < 2000) return -1;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_SYNTHETIC);
    unsigned long key = fresh_number(&r, t, len, 5), magic = fresh_number(&r, t, len, 7);
    const char *word = NEEDLE_WORDS[lqa_rng_below(&r, sizeof NEEDLE_WORDS / sizeof NEEDLE_WORDS[0])];
    char para[2][256];
    snprintf(para[0], sizeof para[0], "The pass key is %lu. Remember it. %lu is the pass key.\n\n", key, key);
    snprintf(para[1], sizeof para[1], "The special magic number for %s is %lu.\n\n", word, magic);
    size_t at[2] = {boundary_at(t, len, lqa_rng_uniform(&r)), boundary_at(t, len, lqa_rng_uniform(&r))};
    int first = at[1] < at[0]; /* insert in text order so offsets stay simple */
    lqa_buf b = {0};
    lqa_span span[2];
    size_t pos = 0;
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? first : !first;
        lqa_buf_append(&b, t + pos, at[i] - pos);
        out->inserted[k].start = b.len;
        if (at[i] == len && len > 0 && t[len - 1] != '\n') lqa_buf_puts(&b, "\n\n");
        pos = at[i];
        span[i].start = b.len;
        lqa_buf_puts(&b, para[i]);
        span[i].end = b.len - 2;
        out->inserted[k].end = b.len;
    }
    out->n_inserted = 2;
    lqa_buf_append(&b, t + pos, len - pos);
    out->len = b.len;
    out->text = lqa_buf_steal(&b);
    char num[24];
    snprintf(num, sizeof num, "%lu", key);
    lqa_gen_emit(&out->qas, doc, out->text, out->len,
                 lqa_strdup("There is a pass key hidden in the document. What is the pass key?"), lqa_strdup(num),
                 span[0], "synthetic", "synthetic:passkey");
    snprintf(num, sizeof num, "%lu", magic);
    char q[160];
    snprintf(q, sizeof q, "What is the special magic number for %s mentioned in the document?", word);
    lqa_gen_emit(&out->qas, doc, out->text, out->len, lqa_strdup(q), lqa_strdup(num), span[1], "synthetic",
                 "synthetic:needle");
    return 0;
}
