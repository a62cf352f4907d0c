/* verify.c: `lqa-build verify`: every shard, every checksum, every record decoded; with a
 * tokenizer, every record decoded back to text; with the store too, every sft record checked
 * against its QA pair (the round trip: template text, masked span = answer, evidence kept). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/escape.h"
#include "dataset/build.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"
#include "store/store.h"

typedef struct qa_ref {
    int64_t id, doc_id;
    char *question, *answer;
    size_t ev_start, ev_end;
} qa_ref;

typedef struct qa_refs {
    qa_ref *q;
    size_t n, cap;
} qa_refs;

static int keep_qa(const lqa_store_qa *qa, void *ctx) {
    qa_refs *r = ctx;
    if (r->n == r->cap) r->q = lqa_realloc(r->q, (r->cap = r->cap ? 2 * r->cap : 1024) * sizeof *r->q);
    r->q[r->n++] = (qa_ref){qa->id, qa->doc_id, lqa_strdup(qa->question), lqa_strdup(qa->answer), qa->ev_start,
                            qa->ev_end};
    return 0;
}

static const qa_ref *find_qa(const qa_refs *r, int64_t id) { /* QA pairs come in id order */
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->q[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->n && r->q[lo].id == id ? &r->q[lo] : NULL;
}

typedef struct round_trip {
    lqa_tokenizer *tok;
    lqa_store *st;
    qa_refs refs;
    lqa_store_doc doc; /* the last document loaded */
    int have_doc;
} round_trip;

/* Checks one sft example (tokens [0, n) of a record) against its QA pair; returns 0 or -1. */
static int check_example(round_trip *rt, const int32_t *tok, const uint8_t *mask, uint32_t n, int64_t qa_id,
                         lqa_err *err) {
    const qa_ref *q = find_qa(&rt->refs, qa_id);
    if (!q) return lqa_err_set(err, "qa %lld is not in the store", (long long)qa_id);
    uint32_t first = 0;
    while (first < n && !mask[first]) first++;
    for (uint32_t k = first; k < n; k++)
        if (!mask[k]) return lqa_err_set(err, "qa %lld: loss mask has a hole at token %u", (long long)qa_id, k);
    if (n < 3 || tok[0] != lqa_tok_bos_id(rt->tok) || tok[n - 1] != lqa_tok_eos_id(rt->tok) || first < 2 || first >= n)
        return lqa_err_set(err, "qa %lld: expected BOS ... EOS with the answer masked at the end", (long long)qa_id);
    char *answer = NULL, *all = NULL;
    int rc = -1;
    if (lqa_tok_decode(rt->tok, tok + first, n - 1 - first, &answer, err) != 0 ||
        lqa_tok_decode(rt->tok, tok + 1, n - 2, &all, err) != 0)
        goto out;
    if (strcmp(answer, q->answer) != 0) {
        lqa_err_set(err, "qa %lld: masked span decodes to \"%.60s\", the answer is \"%.60s\"", (long long)qa_id, answer,
                    q->answer);
        goto out;
    }
    const char *head = "[INST]" LQA_PROMPT_HEAD;
    lqa_buf tail = {0};
    lqa_buf_printf(&tail, "%s%s[/INST] %s", LQA_PROMPT_MID, q->question, q->answer);
    size_t n_all = strlen(all), n_head = strlen(head);
    int shape = n_all >= n_head + tail.len && memcmp(all, head, n_head) == 0 &&
                strcmp(all + n_all - tail.len, tail.data) == 0;
    lqa_buf_free(&tail);
    if (!shape) {
        lqa_err_set(err, "qa %lld: decoded text does not follow the template", (long long)qa_id);
        goto out;
    }
    if (!rt->have_doc || rt->doc.id != q->doc_id) {
        if (rt->have_doc) lqa_store_doc_free(&rt->doc);
        rt->have_doc = lqa_store_get_doc(rt->st, q->doc_id, &rt->doc, err) == 0;
        if (!rt->have_doc) goto out;
    }
    size_t w_len = n_all - n_head - (strlen(LQA_PROMPT_MID) + strlen(q->question) + 8 + strlen(q->answer));
    all[n_head + w_len] = '\0';
    const char *at = strstr(rt->doc.text, all + n_head);
    size_t wa = at ? (size_t)(at - rt->doc.text) : 0;
    if (!at) lqa_err_set(err, "qa %lld: the context is not a piece of document %lld", (long long)qa_id, (long long)q->doc_id);
    else if (q->ev_end > q->ev_start && (wa > q->ev_start || wa + w_len < q->ev_end))
        lqa_err_set(err, "qa %lld: the context [%zu, %zu) lost part of the evidence [%zu, %zu)", (long long)qa_id, wa,
                    wa + w_len, q->ev_start, q->ev_end);
    else rc = 0;
out:
    free(answer);
    free(all);
    return rc;
}

static long check_round_trip(lqa_shards *d, const char *dir, const char *db, lqa_tokenizer *tok, lqa_err *err) {
    round_trip rt = {.tok = tok};
    if (!(rt.st = lqa_store_open(db, 0, err))) return -1;
    long problems = 0;
    if (lqa_store_each_qa(rt.st, NULL, NULL, keep_qa, &rt.refs, err) != 0) problems = -1;
    lqa_record rec = {0};
    for (uint64_t i = 0; problems >= 0 && i < lqa_shards_count(d); i++) {
        lqa_err e;
        if (lqa_shards_read(d, i, &rec, &e) != 0) continue; /* counted by the checksum pass */
        for (uint32_t s = 0; s < rec.n_segments; s++) {
            const lqa_segment *g = &rec.segments[s];
            if (check_example(&rt, rec.tokens + g->start, rec.loss_mask + g->start, g->len, g->qa_id, &e) != 0) {
                lqa_eprintf("verify: %s: record %llu: %s", dir, (unsigned long long)i, e.msg);
                problems++;
            }
        }
    }
    lqa_record_free(&rec);
    for (size_t i = 0; i < rt.refs.n; i++) free(rt.refs.q[i].question), free(rt.refs.q[i].answer);
    free(rt.refs.q);
    if (rt.have_doc) lqa_store_doc_free(&rt.doc);
    lqa_store_close(rt.st);
    return problems;
}

long lqa_verify_dir(const char *dir, const char *tokenizer, const char *db, lqa_err *err) {
    lqa_tokenizer *tok = NULL;
    if (db && !tokenizer) return lqa_err_set(err, "checking against the store (--db) needs --tokenizer");
    if (tokenizer && !(tok = lqa_tok_load(tokenizer, err))) return -1;
    lqa_shards *d = lqa_shards_open(dir, tok ? lqa_tok_sha256(tok) : NULL, err);
    if (!d) {
        lqa_tok_free(tok);
        return -1;
    }
    long problems = 0;
    lqa_record rec = {0};
    for (uint64_t i = 0; i < lqa_shards_count(d); i++) {
        lqa_err e;
        if (lqa_shards_read(d, i, &rec, &e) != 0) {
            lqa_eprintf("verify: %s", e.msg);
            problems++;
            continue;
        }
        char *text = NULL;
        if (tok && lqa_tok_decode(tok, rec.tokens, rec.n_tokens, &text, &e) != 0) {
            lqa_eprintf("verify: %s: record %llu: %s", dir, (unsigned long long)i, e.msg);
            problems++;
        }
        free(text);
    }
    lqa_record_free(&rec);
    if (db && lqa_shards_get_info(d)->kind == LQA_KIND_SFT) {
        long rt = check_round_trip(d, dir, db, tok, err);
        problems = rt < 0 ? -1 : problems + rt;
    }
    lqa_shards_close(d);
    lqa_tok_free(tok);
    return problems;
}
