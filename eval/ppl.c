/* ppl.c: perplexity of held-out documents at each context length, by sliding windows with a
 * stride (256 by default, as LongLoRA's evaluation). One number per length over all documents:
 * exp(total NLL / tokens scored), so a user sees whether a longer context lowers the loss. */
#include "eval/tasks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/progress.h"

int lqa_ppl_sliding(lqa_infer *inf, const int32_t *tokens, int n, int window, int stride, double *nll, long *count,
                    lqa_err *err) {
    if (window < 2 || stride < 1) return lqa_err_set(err, "ppl: window %d / stride %d: expected >= 2 / >= 1", window, stride);
    int prev_end = 0;
    for (int begin = 0; prev_end < n; begin += stride) {
        /* a window's first token has no context inside it: start at most one token before the
         * first unscored one, so that stride == window still scores every token once */
        if (prev_end > 0 && begin > prev_end - 1) begin = prev_end - 1;
        int end = begin + window < n ? begin + window : n;
        /* score tokens prev_end..end-1 (token 0 of the document is never a target) */
        int from = prev_end - begin;
        double w_nll;
        if (end - begin >= 2 && lqa_infer_nll(inf, tokens + begin, end - begin, from, &w_nll, err)) return -1;
        if (end - begin >= 2) {
            *nll += w_nll;
            *count += end - begin - (from < 1 ? 1 : from);
        }
        prev_end = end;
    }
    return 0;
}

typedef struct ppl_docs {
    const lqa_eval_ctx *e;
    int32_t **toks;
    int *lens;
    int n, cap;
    lqa_err *err;
    int failed;
} ppl_docs;

static int collect_doc(const lqa_store_doc *d, void *ctx) {
    ppl_docs *p = ctx;
    int32_t *ids;
    size_t n;
    if (lqa_tok_encode(p->e->tok, d->text, d->text_len, &ids, &n, p->err)) {
        p->failed = 1;
        return 1;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->toks = lqa_realloc(p->toks, sizeof(int32_t *) * (size_t)p->cap);
        p->lens = lqa_realloc(p->lens, sizeof(int) * (size_t)p->cap);
    }
    /* BOS first, as in training; the BOS itself is not scored */
    if (p->e->ppl_tokens > 0 && n + 1 > (size_t)p->e->ppl_tokens) n = (size_t)p->e->ppl_tokens - 1;
    int32_t *seq = lqa_malloc(sizeof(int32_t) * (n + 1));
    seq[0] = p->e->bos_id;
    memcpy(seq + 1, ids, sizeof(int32_t) * n);
    free(ids);
    p->toks[p->n] = seq;
    p->lens[p->n++] = (int)n + 1;
    return p->e->limit > 0 && p->n >= p->e->limit;
}

int lqa_task_ppl(lqa_eval_ctx *e, const int *lengths, int n_lengths, int stride, json_t **out, lqa_err *err) {
    if (!e->store) return lqa_err_set(err, "ppl: expected --db DB (held-out documents come from the store)");
    for (int i = 0; i < n_lengths; i++)
        if (lengths[i] > e->ctx)
            return lqa_err_set(err, "--lengths: %d is longer than the evaluation context of %d tokens (--ctx)",
                               lengths[i], e->ctx);
    ppl_docs docs = {.e = e, .err = err};
    if (lqa_store_each_doc(e->store, e->split, collect_doc, &docs, err) || docs.failed) return lqa_err_prefix(err, "ppl");
    if (docs.n == 0) return lqa_err_set(err, "ppl: split \"%s\" has no documents; expected at least one", e->split);
    long total_tokens = 0;
    for (int d = 0; d < docs.n; d++) total_tokens += docs.lens[d];
    json_t *points = json_array();
    lqa_progress prog;
    lqa_progress_start(&prog, "ppl", (double)total_tokens * n_lengths, "tok");
    int rc = 0;
    for (int li = 0; li < n_lengths && rc == 0; li++) {
        double nll = 0;
        long count = 0;
        for (int d = 0; d < docs.n && rc == 0; d++) {
            rc = lqa_ppl_sliding(e->inf, docs.toks[d], docs.lens[d], lengths[li], stride, &nll, &count, err);
            lqa_progress_add(&prog, docs.lens[d]);
        }
        if (rc == 0)
            json_array_append_new(points, json_pack("{s:i, s:I, s:f, s:f}", "length", lengths[li], "tokens",
                                                    (json_int_t)count, "nll", count ? nll / count : 0.0, "ppl",
                                                    count ? exp(nll / count) : 0.0));
    }
    lqa_progress_finish(&prog);
    for (int d = 0; d < docs.n; d++) free(docs.toks[d]);
    free(docs.toks);
    free(docs.lens);
    if (rc) {
        json_decref(points);
        return lqa_err_prefix(err, "ppl");
    }
    *out = json_pack("{s:{s:s, s:i, s:i, s:i}, s:i, s:I, s:o}", "settings", "split", e->split, "stride", stride,
                     "limit", e->limit, "ppl_tokens", e->ppl_tokens, "documents", docs.n, "document_tokens", (json_int_t)total_tokens, "points", points);
    return 0;
}
