/* gen_text.c: generators that read running text: continuation (quoted sentence -> the
 * sentence after it) and multi-hop (the heading of the section after the one holding a quoted
 * passage; the heading under which a defined term is first mentioned). */
#include "ingest/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *quote_question(const char *pre, const char *text, lqa_span s, const char *post) {
    lqa_buf b = {0};
    lqa_buf_puts(&b, pre);
    lqa_buf_append(&b, text + s.start, s.end - s.start);
    lqa_buf_puts(&b, post);
    return lqa_buf_steal(&b);
}

static int once(const lqa_doc *doc, lqa_span s) {
    return lqa_gen_count(doc->text.data, doc->text.len, doc->text.data + s.start, s.end - s.start, 2) == 1;
}

void lqa_gen_continuation(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    const char *t = doc->text.data;
    size_t n = doc->text.len;
    if (n < 200) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_CONTINUATION);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_CONTINUATION);
    size_t last_end = 0; /* no two pairs from the same sentence */
    for (int attempt = 0; attempt < 20 * cap && made < cap; attempt++) {
        size_t at = lqa_rng_below(&r, n);
        lqa_span a, b;
        if (lqa_gen_sentence_at(t, 0, n, at, 30, 300, &a) != 0) continue;
        if (lqa_gen_next_sentence(t, n, a, 20, 300, &b) != 0 || a.end == last_end || !once(doc, a)) continue;
        char *q = quote_question("In the document, which sentence comes directly after \"", t, a, "\"?");
        lqa_span ev = {a.start, b.end};
        if (lqa_gen_emit_at(out, doc, t, n, q, lqa_strndup(t + b.start, b.end - b.start), ev, a, "continuation",
                            "continuation:next-sentence")) {
            made++;
            last_end = a.end;
        }
    }
}

static int section_at(const lqa_doc *doc, size_t pos) { return lqa_gen_section_at(doc, pos); }
static int title_unique(const lqa_doc *doc, int i) { return lqa_gen_title_unique(doc, i); }

/* Heading of the next section (document order) after the one whose own text holds a quote. */
static int next_section_pair(const lqa_doc *doc, int i, lqa_rng *r, lqa_gen_list *out) {
    lqa_span head, next_head, s;
    if (lqa_gen_heading_span(doc, i, &head) != 0 || lqa_gen_heading_span(doc, i + 1, &next_head) != 0) return 0;
    if (!title_unique(doc, i + 1)) return 0;
    size_t from = head.end, to = lqa_gen_section_body_end(doc, i);
    if (to <= from + 40) return 0;
    size_t at = from + lqa_rng_below(r, to - from);
    if (lqa_gen_sentence_at(doc->text.data, from, to, at, 40, 240, &s) != 0 &&
        lqa_gen_sentence_at(doc->text.data, from, to, from, 40, 240, &s) != 0)
        return 0;
    if (!once(doc, s) || lqa_gen_label_reveals(doc, s.start, doc->sections[i].title)) return 0;
    char *q = quote_question("What is the heading of the section that comes right after the section containing \"",
                             doc->text.data, s, "\"?");
    return lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, q, lqa_strdup(doc->sections[i + 1].title),
                           next_head, s, "multihop", "multihop:next-section");
}

/* The heading under which a defined term first occurs (outside any heading line). */
static int first_mention_pair(const lqa_doc *doc, int d, lqa_gen_list *out) {
    const char *term = doc->defs[d].term;
    size_t tn = strlen(term);
    if (tn < 4 || tn > 80) return 0;
    const char *hit = memmem(doc->text.data, doc->text.len, term, tn);
    if (!hit) return 0;
    size_t pos = (size_t)(hit - doc->text.data);
    int sec = section_at(doc, pos);
    lqa_span head;
    if (sec < 0 || lqa_gen_heading_span(doc, sec, &head) != 0 || pos < head.end || !title_unique(doc, sec)) return 0;
    lqa_buf q = {0};
    lqa_buf_printf(&q, "Under which section heading is \"%s\" first mentioned in the document?", term);
    return lqa_gen_emit_at(out, doc, doc->text.data, doc->text.len, lqa_buf_steal(&q),
                           lqa_strdup(doc->sections[sec].title), head, (lqa_span){pos, pos + tn}, "multihop",
                           "multihop:first-mention");
}

void lqa_gen_multihop(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out) {
    if (doc->n_sections < 3) return;
    lqa_rng r;
    lqa_gen_rng(&r, doc, o, LQA_GEN_MULTIHOP);
    int made = 0, cap = lqa_gen_cap_kind(doc, o, LQA_GEN_MULTIHOP);
    for (int attempt = 0; attempt < 4 * cap && made < cap; attempt++) {
        int i = (int)lqa_rng_below(&r, (uint64_t)doc->n_sections - 1);
        int dup = 0; /* one question per section */
        for (int k = out->n - made; k < out->n && !dup; k++)
            dup = strcmp(out->items[k].answer, doc->sections[i + 1].title) == 0;
        if (!dup) made += next_section_pair(doc, i, &r, out);
    }
    if (doc->n_defs == 0) return;
    /* defined terms in a seeded order, each asked at most once */
    uint32_t *ord = lqa_malloc((size_t)doc->n_defs * sizeof *ord);
    for (int d = 0; d < doc->n_defs; d++) ord[d] = (uint32_t)d;
    lqa_rng_shuffle_u32(&r, ord, (uint64_t)doc->n_defs);
    int mention_cap = made / 2 + 1;
    for (int k = 0; k < doc->n_defs && k < 64 && mention_cap > 0; k++) {
        int d = (int)ord[k], dup = 0;
        for (int j = 0; j < doc->n_defs && !dup; j++) dup = j != d && strcmp(doc->defs[j].term, doc->defs[d].term) == 0;
        if (!dup) mention_cap -= first_mention_pair(doc, d, out);
    }
    free(ord);
}
