/* qa.c: long-context question answering over the store's QA pairs of one split. Each pair is
 * rendered with the SFT template, its document cut to the evaluation context around the
 * evidence (never the question), answered greedily, and scored by exact match, token F1 and
 * "answer contained" after SQuAD normalisation; broken down by kind and by document length.
 *
 * The instruction is LongAlpaca's wording for a document and a question (what lqa-build renders
 * for SFT shards); eval keeps its own copy of the render+truncate step, see docs/EVAL.md. */
#include "eval/tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/progress.h"
#include "eval/metrics.h"

#define QA_HEAD "[INST]Below is a document. Memorize the document and answer my question after the document.\n" \
    "The document begins.\n"
#define QA_MID "\nNow the document ends.\n"
#define QA_TAIL "[/INST]"

static int encode(const lqa_eval_ctx *e, const char *text, size_t len, int32_t **ids, int *n, lqa_err *err) {
    size_t count;
    if (lqa_tok_encode(e->tok, text, len, ids, &count, err)) return -1;
    *n = (int)count;
    return 0;
}

/* Token window [*lo, *hi) of `budget` tokens inside [0, n) that holds the evidence tokens
 * [ts, te) (or as much of it, from its start, as fits), centred on it. */
static void evidence_window(int n, int ts, int te, int budget, int *lo, int *hi) {
    int slack = budget - (te - ts);
    int start = slack > 0 ? ts - slack / 2 : ts;
    if (start < 0) start = 0;
    int end = start + budget;
    if (end > n) {
        end = n;
        start = n - budget > 0 ? n - budget : 0;
    }
    *lo = start;
    *hi = end;
}

int lqa_qa_prompt(const lqa_eval_ctx *e, const char *doc, size_t doc_len, size_t ev_start, size_t ev_end,
                  const char *question, int max_prompt, int32_t **ids, int *n_ids, int *doc_tokens, int *full_tokens,
                  int *truncated, lqa_err *err) {
    int32_t *head = NULL, *tail = NULL, *dt = NULL;
    uint32_t *begins = NULL;
    int n_head, n_tail, rc = -1;
    size_t n_doc = 0;
    lqa_buf tail_text = {0};
    lqa_buf_printf(&tail_text, "%s%s%s", QA_MID, question, QA_TAIL);
    if (encode(e, QA_HEAD, strlen(QA_HEAD), &head, &n_head, err) ||
        encode(e, tail_text.data, tail_text.len, &tail, &n_tail, err) ||
        lqa_tok_encode_offsets(e->tok, doc, doc_len, &dt, &begins, &n_doc, err))
        goto out;
    int budget = max_prompt - 1 - n_head - n_tail;
    if (budget < 0) {
        lqa_err_set(err, "question of %d tokens: expected a prompt within %d tokens", n_tail, max_prompt);
        goto out;
    }
    /* evidence char span -> token span [ts, te) */
    int ts = 0, te = 0;
    if (ev_end > ev_start) {
        while (ts + 1 < (int)n_doc && begins[ts + 1] <= ev_start) ts++;
        te = ts;
        while (te < (int)n_doc && begins[te] < ev_end) te++;
    }
    int lo = 0, hi = (int)n_doc;
    if ((int)n_doc > budget) evidence_window((int)n_doc, ts, te, budget, &lo, &hi);
    *truncated = hi - lo < (int)n_doc;
    *doc_tokens = (int)n_doc;
    *full_tokens = 1 + n_head + (int)n_doc + n_tail;
    int32_t *p = lqa_malloc(sizeof(int32_t) * (size_t)(1 + n_head + (hi - lo) + n_tail));
    int k = 0;
    p[k++] = e->bos_id;
    memcpy(p + k, head, sizeof(int32_t) * n_head);
    k += n_head;
    memcpy(p + k, dt + lo, sizeof(int32_t) * (size_t)(hi - lo));
    k += hi - lo;
    memcpy(p + k, tail, sizeof(int32_t) * n_tail);
    k += n_tail;
    *ids = p;
    *n_ids = k;
    rc = 0;
out:
    free(head);
    free(tail);
    free(dt);
    free(begins);
    lqa_buf_free(&tail_text);
    return rc;
}

typedef struct qa_item {
    int64_t id, doc_id;
    char *kind, *question, *answer;
    size_t ev_start, ev_end;
} qa_item;

typedef struct qa_list {
    qa_item *items;
    int n, cap, limit;
} qa_list;

static int collect_qa(const lqa_store_qa *qa, void *ctx) {
    qa_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = lqa_realloc(l->items, sizeof(qa_item) * (size_t)l->cap);
    }
    l->items[l->n++] = (qa_item){qa->id, qa->doc_id, lqa_strdup(qa->kind ? qa->kind : "?"), lqa_strdup(qa->question),
                                 lqa_strdup(qa->answer), qa->ev_start, qa->ev_end};
    return l->limit > 0 && l->n >= l->limit;
}

/* Running sums for one group (all, a kind, a length bucket). */
static void add_score(json_t *groups, const char *key, int em, double f1, int contained) {
    json_t *g = json_object_get(groups, key);
    if (!g) {
        g = json_pack("{s:i, s:f, s:f, s:f}", "n", 0, "em", 0.0, "f1", 0.0, "contained", 0.0);
        json_object_set_new(groups, key, g);
    }
    json_object_set_new(g, "n", json_integer(json_integer_value(json_object_get(g, "n")) + 1));
    json_object_set_new(g, "em", json_real(json_real_value(json_object_get(g, "em")) + em));
    json_object_set_new(g, "f1", json_real(json_real_value(json_object_get(g, "f1")) + f1));
    json_object_set_new(g, "contained", json_real(json_real_value(json_object_get(g, "contained")) + contained));
}

/* Turns the sums of every group into means. */
static void finish_groups(json_t *groups) {
    const char *key;
    json_t *g;
    json_object_foreach(groups, key, g) {
        double n = (double)json_integer_value(json_object_get(g, "n"));
        const char *fields[] = {"em", "f1", "contained"};
        for (int i = 0; i < 3; i++)
            json_object_set_new(g, fields[i], json_real(json_real_value(json_object_get(g, fields[i])) / n));
    }
}

/* "<=L" for the first length L that holds the whole prompt, else ">Lmax". */
static void length_bucket(const int *lengths, int n_lengths, int ctx, int full_tokens, char *out, size_t n) {
    int best = -1, largest = ctx;
    for (int i = 0; i < n_lengths; i++) {
        if (lengths[i] >= full_tokens && (best < 0 || lengths[i] < best)) best = lengths[i];
        if (lengths[i] > largest) largest = lengths[i];
    }
    if (best < 0 && full_tokens <= ctx) best = ctx;
    if (best > 0) snprintf(out, n, "<=%d", best);
    else snprintf(out, n, ">%d", largest);
}

static int answer_one(lqa_eval_ctx *e, const qa_item *q, const lqa_store_doc *doc, const int *lengths, int n_lengths,
                      json_t *items, json_t *by_kind, json_t *by_length, json_t *all, lqa_err *err) {
    int32_t *prompt, *gen = lqa_malloc(sizeof(int32_t) * (size_t)(e->max_new_tokens > 0 ? e->max_new_tokens : 1));
    int n_prompt, doc_tokens, full_tokens, truncated, rc = -1;
    char *text = NULL;
    if (lqa_qa_prompt(e, doc->text, doc->text_len, q->ev_start, q->ev_end, q->question, e->ctx - e->max_new_tokens,
                      &prompt, &n_prompt, &doc_tokens, &full_tokens, &truncated, err))
        goto out;
    int n_gen = lqa_infer_generate(e->inf, prompt, n_prompt, e->max_new_tokens, e->eos_id, gen, err);
    free(prompt);
    if (n_gen < 0) goto out;
    if (n_gen > 0 && gen[n_gen - 1] == e->eos_id) n_gen--;
    if (lqa_tok_decode(e->tok, gen, (size_t)n_gen, &text, err)) goto out;
    int em = lqa_exact_match(text, q->answer), contained = lqa_answer_contained(text, q->answer);
    double f1 = lqa_token_f1(text, q->answer);
    char bucket[32];
    length_bucket(lengths, n_lengths, e->ctx, full_tokens, bucket, sizeof bucket);
    add_score(all, "all", em, f1, contained);
    add_score(by_kind, q->kind, em, f1, contained);
    add_score(by_length, bucket, em, f1, contained);
    json_array_append_new(items, json_pack("{s:I, s:I, s:s, s:i, s:i, s:i, s:b, s:s, s:s, s:s, s:b, s:f, s:b}", "id",
                                           (json_int_t)q->id, "doc_id", (json_int_t)q->doc_id, "kind", q->kind,
                                           "doc_tokens", doc_tokens, "full_tokens", full_tokens, "prompt_tokens", n_prompt, "truncated", truncated,
                                           "question", q->question, "answer", q->answer, "prediction", text, "em", em,
                                           "f1", f1, "contained", contained));
    rc = 0;
out:
    free(gen);
    free(text);
    return rc;
}

int lqa_task_qa(lqa_eval_ctx *e, const int *lengths, int n_lengths, json_t **out, lqa_err *err) {
    if (!e->store) return lqa_err_set(err, "qa: expected --db DB (QA pairs come from the store)");
    qa_list l = {.limit = e->limit};
    if (lqa_store_each_qa(e->store, e->split, NULL, collect_qa, &l, err)) return lqa_err_prefix(err, "qa");
    if (l.n == 0) return lqa_err_set(err, "qa: split \"%s\" has no QA pairs; expected at least one", e->split);
    json_t *items = json_array(), *by_kind = json_object(), *by_length = json_object(), *all = json_object();
    lqa_store_doc doc = {0};
    int have_doc = 0, rc = 0;
    lqa_progress prog;
    lqa_progress_start(&prog, "qa", l.n, "q");
    for (int i = 0; i < l.n && rc == 0; i++) {
        if (!have_doc || doc.id != l.items[i].doc_id) {   /* pairs of one document come together */
            if (have_doc) lqa_store_doc_free(&doc);
            have_doc = lqa_store_get_doc(e->store, l.items[i].doc_id, &doc, err) == 0;
            if (!have_doc) {
                rc = -1;
                break;
            }
        }
        rc = answer_one(e, &l.items[i], &doc, lengths, n_lengths, items, by_kind, by_length, all, err);
        lqa_progress_add(&prog, 1);
    }
    lqa_progress_finish(&prog);
    if (have_doc) lqa_store_doc_free(&doc);
    for (int i = 0; i < l.n; i++) {
        free(l.items[i].kind);
        free(l.items[i].question);
        free(l.items[i].answer);
    }
    free(l.items);
    if (rc) {
        json_decref(items);
        json_decref(by_kind);
        json_decref(by_length);
        json_decref(all);
        return lqa_err_prefix(err, "qa");
    }
    finish_groups(by_kind);
    finish_groups(by_length);
    finish_groups(all);
    json_t *a = json_object_get(all, "all");
    *out = json_pack("{s:{s:s, s:i, s:i, s:s}, s:O, s:O, s:O, s:O, s:o, s:o, s:o}", "settings", "split", e->split,
                     "max_new_tokens", e->max_new_tokens, "limit", e->limit, "template", "llama2-inst", "n",
                     json_object_get(a, "n"), "em", json_object_get(a, "em"), "f1", json_object_get(a, "f1"),
                     "contained", json_object_get(a, "contained"), "by_kind", by_kind, "by_length", by_length,
                     "items", items);
    json_decref(all);
    return 0;
}
