/* infer.c: KV-cache inference for lqa-eval on the model core (model/model.c): prefill in chunks
 * of up to CHUNK tokens and one-token decoding both run lqa_model_forward_kv, the training step's
 * layer code and ops, on the model's backend (CPU or CUDA: where lqa_model_to_backend put it).
 * Attention is the kernel's Tq < Tk form over the cached keys, so a decoded token costs
 * O(context) in attention and O(1) elsewhere. This file keeps no op of its own: the session
 * bookkeeping (length, timing, greedy decoding on the host's copy of the logits). */
#include "eval/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"

#define CHUNK 256

struct lqa_infer {
    lqa_model *m;
    lqa_kv *kv;
    int max_len, len, threads;
    int32_t *targets;                  /* host: a chunk's next-token targets (nll) */
    double prefill_s, decode_s;
    long prefill_tok, decode_tok;
};

lqa_infer *lqa_infer_new(const lqa_model *m, int max_len, int threads, lqa_err *err) {
    const lqa_config *c = &m->cfg;
    if (max_len <= 0) {
        lqa_err_set(err, "context length %d: expected a positive number of tokens", max_len);
        return NULL;
    }
    if (max_len > c->max_pos) {
        lqa_err_set(err, "context length %d is longer than the model supports (max_position_embeddings %d; "
                    "use a model trained or merged for a longer context)", max_len, c->max_pos);
        return NULL;
    }
    lqa_infer *s = lqa_calloc(1, sizeof *s);
    s->m = (lqa_model *)m; /* the forward only reads the model */
    s->max_len = max_len;
    s->threads = threads;
    s->kv = lqa_kv_new(m, max_len, CHUNK, threads);
    s->targets = lqa_malloc(sizeof(int32_t) * CHUNK);
    return s;
}

void lqa_infer_free(lqa_infer *s) {
    if (!s) return;
    lqa_kv_free(s->kv);
    free(s->targets);
    free(s);
}

void lqa_infer_reset(lqa_infer *s) { s->len = 0; }
int lqa_infer_len(const lqa_infer *s) { return s->len; }

void lqa_infer_timing(const lqa_infer *s, double *prefill_s, long *prefill_tok, double *decode_s, long *decode_tok) {
    *prefill_s = s->prefill_s;
    *prefill_tok = s->prefill_tok;
    *decode_s = s->decode_s;
    *decode_tok = s->decode_tok;
}

int lqa_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int check_tokens(const lqa_infer *s, const int32_t *tokens, int n, lqa_err *err) {
    if (s->len + n > s->max_len)
        return lqa_err_set(err, "sequence of %d tokens is longer than the evaluation context of %d tokens",
                           s->len + n, s->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->m->cfg.vocab_size)
            return lqa_err_set(err, "token %d at position %d is outside the vocabulary [0, %d)", tokens[i], i,
                               s->m->cfg.vocab_size);
    return 0;
}

int lqa_infer_feed(lqa_infer *s, const int32_t *tokens, int n, float *logits_all, float *logits_last, lqa_err *err) {
    if (check_tokens(s, tokens, n, err)) return -1;
    double t0 = lqa_now();
    size_t V = (size_t)s->m->cfg.vocab_size;
    for (int c0 = 0; c0 < n; c0 += CHUNK) {
        int nc = n - c0 < CHUNK ? n - c0 : CHUNK, last = c0 + nc == n;
        if (logits_all) {
            lqa_model_forward_kv(s->m, s->kv, tokens + c0, nc, s->len, s->threads, logits_all + (size_t)c0 * V, 0,
                                 NULL, NULL);
            if (logits_last && last) memcpy(logits_last, logits_all + (size_t)(n - 1) * V, V * sizeof(float));
        } else {
            lqa_model_forward_kv(s->m, s->kv, tokens + c0, nc, s->len, s->threads, last ? logits_last : NULL, nc - 1,
                                 NULL, NULL);
        }
        s->len += nc;
    }
    double dt = lqa_now() - t0;
    if (n == 1) {
        s->decode_s += dt;
        s->decode_tok += 1;
    } else {
        s->prefill_s += dt;
        s->prefill_tok += n;
    }
    return 0;
}

int lqa_infer_generate(lqa_infer *s, const int32_t *prompt, int n_prompt, int max_new, int eos_id, int32_t *out,
                       lqa_err *err) {
    size_t V = (size_t)s->m->cfg.vocab_size;
    float *logits = lqa_malloc(V * sizeof(float));
    lqa_infer_reset(s);
    int rc = lqa_infer_feed(s, prompt, n_prompt, NULL, logits, err), n_out = 0;
    while (rc == 0 && n_out < max_new) {
        int32_t next = lqa_argmax(logits, (int)V);
        out[n_out++] = next;
        if (next == eos_id || n_out == max_new) break;
        if (s->len >= s->max_len) break;   /* context full: stop as at the length limit */
        rc = lqa_infer_feed(s, &next, 1, NULL, logits, err);
    }
    free(logits);
    return rc == 0 ? n_out : -1;
}

int lqa_infer_nll(lqa_infer *s, const int32_t *tokens, int n, int from, double *nll, lqa_err *err) {
    lqa_infer_reset(s);
    if (check_tokens(s, tokens, n, err)) return -1;
    double t0 = lqa_now(), total = 0;
    if (from < 1) from = 1;   /* token 0 has no prefix to be predicted from */
    for (int c0 = 0; c0 < n - 1; c0 += CHUNK) {
        int nc = n - 1 - c0 < CHUNK ? n - 1 - c0 : CHUNK;   /* the last token predicts nothing */
        for (int i = 0; i < nc; i++) {
            int target = c0 + i + 1;
            s->targets[i] = target >= from ? tokens[target] : -1;
        }
        lqa_model_forward_kv(s->m, s->kv, tokens + c0, nc, s->len, s->threads, NULL, 0, s->targets, &total);
        s->len += nc;
    }
    s->prefill_s += lqa_now() - t0;
    s->prefill_tok += n - 1;
    *nll = total;
    return 0;
}
