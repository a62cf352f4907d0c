/* qa.c: long-context question answering over the store's QA pairs of one split. Each pair is
 * rendered with the SFT template, its document cut to the evaluation context around the
 * evidence (never the question), answered greedily, and scored by exact match, token F1 and
 * "answer contained" after SQuAD normalisation; broken down by kind and by document length.
 *
 * The prompt is rendered as lqa-build renders SFT records (dataset/build.h: the same wording,
 * the same evidence window lqa_build_window, the same text-level encoding); lqa-build's render
 * function is private, so the few lines that call them are repeated here (docs/EVAL.md). */
#include "eval/tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/progress.h"
#include "dataset/build.h"
#include "eval/metrics.h"

int lqa_qa_prompt(const lqa_eval_ctx *e, const char *doc, size_t doc_len, size_t ev_start, size_t ev_end,
                  const char *question, int max_prompt, int32_t **ids, int *n_ids, int *doc_tokens, int *full_tokens,
                  int *truncated, lqa_err *err) {
    int32_t *dt = NULL, *src = NULL;
    uint32_t *begins = NULL;
    size_t n_doc = 0, n_src, n_fixed;
    int rc = -1;
    if (lqa_build_encode_prompt(e->tok, "", 0, 0, question, &src, &n_fixed, err) ||
        lqa_tok_encode_offsets(e->tok, doc, doc_len, &dt, &begins, &n_doc, err))
        goto out;
    free(src);
    src = NULL;
    if (1 + n_fixed > (size_t)max_prompt) {
        lqa_err_set(err, "question of %zu prompt tokens: expected a prompt within %d tokens", n_fixed, max_prompt);
        goto out;
    }
    *doc_tokens = (int)n_doc;
    *full_tokens = (int)(1 + n_fixed + n_doc);   /* approximately: the parts merge a little when joined */
    /* evidence bytes -> tokens [ea, eb), as lqa-build computes them */
    size_t ea = 0, eb = 0;
    if (ev_end > ev_start && ev_end <= doc_len) {
        ea = lqa_build_first_token_at(begins, n_doc, ev_start + 1);
        ea = ea > 0 ? ea - 1 : 0;
        eb = lqa_build_first_token_at(begins, n_doc, ev_end);
    }
    size_t budget = (size_t)max_prompt - 1 - n_fixed;
    if (n_doc > budget) budget = budget > 16 ? budget - 8 : budget;   /* cut edges re-tokenize a little longer */
    for (int attempt = 0; attempt < 16; attempt++) {
        /* evidence longer than the budget: keep its start (lqa-build drops such pairs from training) */
        size_t eb_fit = eb - ea > budget ? ea + budget : eb, wa, wb;
        lqa_build_window(n_doc, ea, eb_fit, budget, &wa, &wb);
        size_t a = wa < n_doc && wa > 0 ? begins[wa] : (wa == 0 ? 0 : doc_len), b = wb < n_doc ? begins[wb] : doc_len;
        if (lqa_build_encode_prompt(e->tok, doc, a, b, question, &src, &n_src, err)) goto out;
        /* the whole document encoded: its exact count replaces the estimate, fitting or not (the
         * estimate can fit where the joined prompt does not, and the cut must then count as one) */
        if (a == 0 && b == doc_len) *full_tokens = (int)(1 + n_src);
        if (1 + n_src <= (size_t)max_prompt) {
            int32_t *p = lqa_malloc(sizeof(int32_t) * (1 + n_src));
            p[0] = e->bos_id;
            memcpy(p + 1, src, sizeof(int32_t) * n_src);
            *ids = p;
            *n_ids = (int)(1 + n_src);
            *truncated = a > 0 || b < doc_len;
            rc = 0;
            goto out;
        }
        free(src);
        src = NULL;
        size_t over = 1 + n_src - (size_t)max_prompt + 4;   /* shrink by the overshoot and try again */
        if (over >= budget) break;
        budget -= over;
    }
    lqa_err_set(err, "document could not be cut to fit a prompt of %d tokens", max_prompt);
out:
    free(src);
    free(dt);
    free(begins);
    return rc;
}

typedef struct qa_item {
    int64_t id, doc_id;
    char *kind, *question, *answer;
    size_t ev_start, ev_end, anchor_start, anchor_end;
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
                                 lqa_strdup(qa->answer), qa->ev_start, qa->ev_end, qa->anchor_start, qa->anchor_end};
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
    /* the window keeps what lqa-build's keeps: the evidence with the passage the question quotes */
    size_t ks = 0, ke = 0;
    lqa_build_kept_span(q->ev_start, q->ev_end, q->anchor_start, q->anchor_end, doc->text_len, &ks, &ke);
    if (lqa_qa_prompt(e, doc->text, doc->text_len, ks, ke, q->question, e->ctx - e->max_new_tokens,
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
