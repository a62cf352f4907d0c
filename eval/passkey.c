/* passkey.c: LongLoRA's passkey retrieval. A random key (1..50000 by default) is hidden at a
 * relative depth in filler text, the model is asked for it, and the first run of digits it
 * generates must equal the key. Filler is the paper's five sentences repeated, or (--filler
 * store) real text from the store's documents, so that a model cannot spot the key merely
 * because it is the only sentence that differs. */
#include "eval/tasks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/progress.h"

/* Encodes one piece of the prompt. Pieces are joined as token ids, and sentencepiece (LLaMA's
 * add_dummy_prefix) already starts every encoding with the word-boundary mark, so a piece's own
 * leading space is dropped: "x." + " The" encodes as the whole text "x. The" would. */
static int encode(const lqa_eval_ctx *e, const char *text, int32_t **ids, int *n, lqa_err *err) {
    size_t count;
    if (*text == ' ') text++;
    if (lqa_tok_encode(e->tok, text, strlen(text), ids, &count, err)) return -1;
    *n = (int)count;
    return 0;
}

int lqa_passkey_prompt(const lqa_eval_ctx *e, const int32_t *filler, size_t n_filler, int repeat_units,
                       int length, double depth, const char *key, lqa_rng *rng, int32_t **ids, int *n_ids,
                       int *key_pos, lqa_err *err) {
    char line[256];
    snprintf(line, sizeof line, LQA_PASSKEY_LINE, key, key);
    int32_t *intro = NULL, *kl = NULL, *q = NULL;
    int n_intro, n_kl, n_q, rc = -1;
    if (encode(e, LQA_PASSKEY_INTRO, &intro, &n_intro, err) || encode(e, line, &kl, &n_kl, err) ||
        encode(e, LQA_PASSKEY_QUESTION, &q, &n_q, err))
        goto out;
    int fixed = 1 + n_intro + n_kl + n_q, room = length - fixed;
    if (room < 0 || n_filler == 0) {
        lqa_err_set(err, "prompt length %d: expected at least %d tokens (intro, key line and question)", length, fixed);
        goto out;
    }
    /* paper filler: whole units only; store filler: any contiguous slice of the stream */
    int n_fill = repeat_units ? room / (int)n_filler * (int)n_filler : room;
    int before = repeat_units ? (int)(depth * (n_fill / (int)n_filler) + 0.5) * (int)n_filler
                              : (int)(depth * n_fill + 0.5);
    size_t start = repeat_units ? 0 : (size_t)lqa_rng_below(rng, n_filler);
    int32_t *p = lqa_malloc(sizeof(int32_t) * (size_t)(fixed + n_fill));
    int k = 0;
    p[k++] = e->bos_id;
    memcpy(p + k, intro, sizeof(int32_t) * n_intro);
    k += n_intro;
    for (int i = 0; i < n_fill; i++) {
        if (i == before) {
            *key_pos = k;
            memcpy(p + k, kl, sizeof(int32_t) * n_kl);
            k += n_kl;
        }
        p[k++] = filler[(start + (size_t)i) % n_filler];
    }
    if (before >= n_fill) {
        *key_pos = k;
        memcpy(p + k, kl, sizeof(int32_t) * n_kl);
        k += n_kl;
    }
    memcpy(p + k, q, sizeof(int32_t) * n_q);
    k += n_q;
    *ids = p;
    *n_ids = k;
    rc = 0;
out:
    free(intro);
    free(kl);
    free(q);
    return rc;
}

int lqa_passkey_extract(const char *text, char *out, size_t n) {
    const char *s = text;
    while (*s && !isdigit((unsigned char)*s)) s++;
    if (!*s) return -1;
    size_t k = 0;
    while (isdigit((unsigned char)s[k]) && k + 1 < n) {
        out[k] = s[k];
        k++;
    }
    out[k] = '\0';
    return 0;
}

/* Collects a filler token stream from the store's documents (of the split, else any). */
typedef struct filler_acc {
    lqa_buf text;
    size_t want_bytes;
} filler_acc;

static int add_doc_text(const lqa_store_doc *d, void *ctx) {
    filler_acc *a = ctx;
    lqa_buf_append(&a->text, d->text, d->text_len);
    lqa_buf_puts(&a->text, "\n\n");
    return a->text.len >= a->want_bytes;
}

static int store_filler(lqa_eval_ctx *e, int max_len, int32_t **ids, int *n, lqa_err *err) {
    if (!e->store) return lqa_err_set(err, "--filler store: expected --db DB (no store given)");
    filler_acc a = {{0}, (size_t)max_len * 8};   /* ~4 bytes a token, twice over for random offsets */
    if (lqa_store_each_doc(e->store, e->split, add_doc_text, &a, err)) goto fail;
    if (a.text.len == 0 && lqa_store_each_doc(e->store, NULL, add_doc_text, &a, err)) goto fail;
    if (a.text.len == 0) {
        lqa_err_set(err, "--filler store: the store has no documents to take filler text from");
        goto fail;
    }
    int rc = encode(e, a.text.data, ids, n, err);
    lqa_buf_free(&a.text);
    return rc;
fail:
    lqa_buf_free(&a.text);
    return -1;
}

/* Runs one trial; *correct = 1 when the first digits generated equal the key. */
static int run_trial(lqa_eval_ctx *e, const lqa_passkey_opts *o, const int32_t *filler, int n_filler, int length,
                     double depth, lqa_rng *rng, int *correct, char *answer, size_t answer_n, lqa_err *err) {
    char key[16];
    snprintf(key, sizeof key, "%d", 1 + (int)lqa_rng_below(rng, (uint64_t)o->max_key));
    int32_t *prompt, gen[16];
    int n_prompt, key_pos;
    if (lqa_passkey_prompt(e, filler, (size_t)n_filler, !o->store_filler, length, depth, key, rng, &prompt, &n_prompt,
                           &key_pos, err))
        return -1;
    int max_new = (int)strlen(key) + 4;   /* the digits (split_digits: one token each) and a little more */
    int n_gen = lqa_infer_generate(e->inf, prompt, n_prompt, max_new, e->eos_id, gen, err);
    free(prompt);
    if (n_gen < 0) return -1;
    if (n_gen > 0 && gen[n_gen - 1] == e->eos_id) n_gen--;
    char *text = NULL;
    if (lqa_tok_decode(e->tok, gen, (size_t)n_gen, &text, err)) return -1;
    char got[16] = "";
    *correct = lqa_passkey_extract(text, got, sizeof got) == 0 && strcmp(got, key) == 0;
    snprintf(answer, answer_n, "key %s, generated \"%.40s\"", key, text);
    free(text);
    return 0;
}

int lqa_task_passkey(lqa_eval_ctx *e, const lqa_passkey_opts *o, json_t **out, lqa_err *err) {
    int max_len = 0;
    for (int i = 0; i < o->n_lengths; i++) {
        if (o->lengths[i] > e->ctx)
            return lqa_err_set(err, "--lengths: %d is longer than the evaluation context of %d tokens (--ctx)",
                               o->lengths[i], e->ctx);
        max_len = o->lengths[i] > max_len ? o->lengths[i] : max_len;
    }
    int32_t *filler = NULL;
    int n_filler = 0;
    if (o->store_filler ? store_filler(e, max_len, &filler, &n_filler, err)
                        : encode(e, LQA_PASSKEY_FILLER, &filler, &n_filler, err))
        return -1;
    json_t *cells = json_array();
    lqa_progress prog;
    lqa_progress_start(&prog, "passkey", (double)o->n_lengths * o->n_depths * o->trials, "prompt");
    long total_correct = 0, total = 0;
    int rc = 0;
    for (int li = 0; li < o->n_lengths && rc == 0; li++) {
        for (int di = 0; di < o->n_depths && rc == 0; di++) {
            /* each cell has its own stream: adding lengths or depths leaves other cells unchanged */
            lqa_rng rng;
            lqa_rng_seed(&rng, e->seed ^ ((uint64_t)o->lengths[li] << 20) ^ (uint64_t)(o->depths[di] * 1e6));
            int correct = 0;
            char sample[128] = "";
            for (int t = 0; t < o->trials && rc == 0; t++) {
                int ok;
                char answer[128];
                rc = run_trial(e, o, filler, n_filler, o->lengths[li], o->depths[di], &rng, &ok, answer,
                               sizeof answer, err);
                if (rc == 0) correct += ok;
                if (rc == 0 && t == 0) snprintf(sample, sizeof sample, "%s", answer);
                lqa_progress_add(&prog, 1);
            }
            total_correct += correct;
            total += o->trials;
            json_array_append_new(cells, json_pack("{s:i, s:f, s:i, s:i, s:f, s:s}", "length", o->lengths[li],
                                                   "depth", o->depths[di], "trials", o->trials, "correct", correct,
                                                   "accuracy", (double)correct / o->trials, "sample", sample));
        }
    }
    lqa_progress_finish(&prog);
    free(filler);
    if (rc) {
        json_decref(cells);
        return lqa_err_prefix(err, "passkey");
    }
    json_t *lengths = json_array(), *depths = json_array();
    for (int i = 0; i < o->n_lengths; i++) json_array_append_new(lengths, json_integer(o->lengths[i]));
    for (int i = 0; i < o->n_depths; i++) json_array_append_new(depths, json_real(o->depths[i]));
    *out = json_pack("{s:{s:s, s:i, s:i, s:o, s:o}, s:f, s:i, s:o}", "settings", "filler",
                     o->store_filler ? "store" : "paper", "trials", o->trials, "max_key", o->max_key, "lengths",
                     lengths, "depths", depths, "accuracy", total ? (double)total_correct / total : 0.0, "prompts",
                     (int)total, "cells", cells);
    return 0;
}
