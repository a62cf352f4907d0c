/* build.c: lqa-build's work: the tokenizer's training text from the store, sft records (the
 * LongAlpaca template, contexts cut around the evidence), lm blocks, packing, shard files and
 * manifest.json. Tokenization runs on all cores (OpenMP) over batches of documents; results are
 * placed by index and written in a fixed order, so the bytes never depend on the thread count. */
#include "dataset/build.h"

#include <errno.h>
#include <ftw.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"
#include "store/store.h"

#define BATCH_BYTES (32u << 20) /* documents tokenized together between two writes */
#define BATCH_DOCS 512
#define HIST_BINS 32

static const char *split_arg(const char *split) { return split && strcmp(split, "all") != 0 ? split : NULL; }

/* ============================ tokenizer training ============================ */

typedef struct feed_ctx {
    FILE *f;
    uint64_t lines, bytes;
    int write_errno; /* the first write error (a full disk): reported with the file, which is removed */
} feed_ctx;

/* Writes one paragraph as lines of at most LQA_TOK_MAX_SENTENCE bytes, cut at a space (or a
 * UTF-8 boundary) so sentencepiece never skips it. */
static void feed_paragraph(feed_ctx *c, const char *p, size_t n) {
    while (n > 0) {
        size_t take = n;
        if (take > LQA_TOK_MAX_SENTENCE) {
            take = LQA_TOK_MAX_SENTENCE;
            size_t sp = take;
            while (sp > take / 2 && p[sp] != ' ') sp--;
            if (p[sp] == ' ') take = sp;
            else while (take > 1 && ((unsigned char)p[take] & 0xC0) == 0x80) take--;
        }
        if (!c->write_errno && (fwrite(p, 1, take, c->f) != take || fputc('\n', c->f) == EOF))
            c->write_errno = errno ? errno : EIO;
        c->lines++;
        c->bytes += take;
        p += take;
        n -= take;
        while (n > 0 && *p == ' ') p++, n--;
    }
}

static int feed_doc(const lqa_store_doc *doc, void *ctx) {
    const char *p = doc->text, *end = doc->text + doc->text_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (stop > p) feed_paragraph(ctx, p, (size_t)(stop - p));
        p = stop + 1;
    }
    return 0;
}

int lqa_build_tokenizer(const char *db, const char *split, int vocab_size, uint64_t seed, int threads,
                        const char *out_model, const char *keep_text, lqa_err *err) {
    lqa_store *s = lqa_store_open(db, 0, err);
    if (!s) return -1;
    char txt[4096];
    snprintf(txt, sizeof txt, "%s.train-text.%d", out_model, (int)getpid());
    feed_ctx c = {fopen(txt, "wb"), 0, 0, 0};
    if (!c.f) {
        lqa_store_close(s);
        return lqa_err_set(err, "%s: cannot create: %s", txt, strerror(errno));
    }
    int rc = lqa_store_each_doc(s, split_arg(split), feed_doc, &c, err);
    if (fclose(c.f) != 0 && !c.write_errno) c.write_errno = errno ? errno : EIO;
    lqa_store_close(s);
    if (rc == 0 && c.write_errno)
        rc = lqa_err_set(err, "%s: write failed (the tokenizer's training text): %s", txt, strerror(c.write_errno));
    if (rc == 0 && c.lines == 0) rc = lqa_err_set(err, "%s: no document text to train a tokenizer on", db);
    if (rc == 0) {
        log_info("training a %d-piece BPE tokenizer on %llu paragraphs (%.1f MB)", vocab_size,
                 (unsigned long long)c.lines, c.bytes / 1e6);
        rc = lqa_tok_train(txt, out_model, vocab_size, seed, threads > 0 ? threads : omp_get_max_threads(), err);
    }
    if (rc == 0 && keep_text && rename(txt, keep_text) != 0)
        rc = lqa_err_set(err, "%s: cannot keep the training text: %s", keep_text, strerror(errno));
    unlink(txt);
    return rc;
}

/* ============================ record buffers ============================ */

/* One finished record (sft example or lm block) before it goes to a shard. */
typedef struct rec_out {
    int32_t *tokens;
    uint8_t *mask;
    uint32_t n, n_segs;
    lqa_segment *segs;
    int anchored, anchor_kept; /* sft: the pair has an anchor; the window holds it and the evidence */
} rec_out;

static void rec_out_free(rec_out *r) {
    free(r->tokens);
    free(r->mask);
    free(r->segs);
    memset(r, 0, sizeof *r);
}

/* ============================ output directory ============================ */

typedef struct sink {
    const lqa_build_opts *o;
    const lqa_tokenizer *tok;
    char *tmp_dir;
    lqa_shard_writer *w;
    int shard_no;
    json_t *shards;
    uint64_t records, tokens, loss_tokens, shard_first_token;
    uint64_t hist[HIST_BINS];
    /* packing state (sft --pack) */
    rec_out pack;
    uint32_t pack_cap;
} sink;

static int sink_open_shard(sink *k, lqa_err *err) {
    char name[64];
    snprintf(name, sizeof name, "shard-%05d.lqas", k->shard_no);
    char *path = lqa_path_join(k->tmp_dir, name);
    lqa_shard_info info = {0};
    info.kind = (uint32_t)k->o->kind;
    info.vocab_size = (uint32_t)lqa_tok_vocab_size(k->tok);
    info.template_id = k->o->kind == LQA_KIND_SFT ? LQA_TEMPLATE_LLAMA2_INST : LQA_TEMPLATE_NONE;
    info.flags = k->o->pack ? LQA_SHARD_PACKED : 0;
    const char *hex = lqa_tok_sha256(k->tok);
    for (int i = 0; i < 32; i++) sscanf(hex + 2 * i, "%2hhx", &info.tokenizer_sha256[i]);
    k->w = lqa_shard_writer_open(path, &info, k->o->zstd_level, err);
    free(path);
    return k->w ? 0 : -1;
}

static int sink_close_shard(sink *k, lqa_err *err) {
    if (!k->w) return 0;
    char name[64];
    snprintf(name, sizeof name, "shard-%05d.lqas", k->shard_no++);
    uint64_t n = lqa_shard_writer_records(k->w);
    json_t *e = json_pack("{s:s, s:I, s:I}", "file", name, "records", (json_int_t)n, "tokens",
                          (json_int_t)(k->tokens - k->shard_first_token));
    k->shard_first_token = k->tokens;
    int rc = lqa_shard_writer_close(k->w, err);
    k->w = NULL;
    json_array_append_new(k->shards, e);
    return rc;
}

/* Sends a finished record to the current shard, starting a new shard when it is full. */
static int sink_write(sink *k, const rec_out *r, lqa_err *err) {
    if (!k->w && sink_open_shard(k, err) != 0) return -1;
    if (lqa_shard_writer_add(k->w, r->tokens, r->mask, r->n, r->segs, r->n_segs, err) != 0) return -1;
    k->records++;
    k->tokens += r->n;
    for (uint32_t t = 0; t < r->n; t++) k->loss_tokens += r->mask[t];
    int bin = 0;
    while (bin < HIST_BINS - 1 && (1u << (bin + 1)) <= r->n) bin++;
    k->hist[bin]++;
    if (lqa_shard_writer_records(k->w) >= k->o->shard_records) return sink_close_shard(k, err);
    return 0;
}

/* Appends r to a growing record (packing, lm blocks). */
static void rec_append(rec_out *dst, uint32_t *cap, const int32_t *tokens, const uint8_t *mask, uint32_t n,
                       int64_t qa_id, int64_t doc_id) {
    if (dst->n + n > *cap) {
        *cap = dst->n + n;
        dst->tokens = lqa_realloc(dst->tokens, *cap * sizeof(int32_t));
        dst->mask = lqa_realloc(dst->mask, *cap);
    }
    memcpy(dst->tokens + dst->n, tokens, n * sizeof(int32_t));
    memcpy(dst->mask + dst->n, mask, n);
    dst->segs = lqa_realloc(dst->segs, (dst->n_segs + 1) * sizeof(lqa_segment));
    dst->segs[dst->n_segs++] = (lqa_segment){qa_id, doc_id, dst->n, n};
    dst->n += n;
}

static int sink_flush_pack(sink *k, lqa_err *err) {
    if (k->pack.n == 0) return 0;
    int rc = sink_write(k, &k->pack, err);
    k->pack.n = k->pack.n_segs = 0;
    return rc;
}

/* Adds n tokens as one segment of the sequence being packed (at most max_len tokens, greedy:
 * a segment that does not fit starts the next sequence). */
static int sink_pack(sink *k, const int32_t *tokens, const uint8_t *mask, uint32_t n, int64_t qa_id, int64_t doc_id,
                     lqa_err *err) {
    if (k->pack.n + n > (uint32_t)k->o->max_len && sink_flush_pack(k, err) != 0) return -1;
    rec_append(&k->pack, &k->pack_cap, tokens, mask, n, qa_id, doc_id);
    return 0;
}

/* An sft record: written alone, or packed with its neighbours up to max_len tokens. */
static int sink_sft(sink *k, const rec_out *r, lqa_err *err) {
    if (!k->o->pack) return sink_write(k, r, err);
    return sink_pack(k, r->tokens, r->mask, r->n, r->segs[0].qa_id, r->segs[0].doc_id, err);
}


/* ============================ sft records ============================ */

typedef struct qa_item {
    int64_t id, doc_id;
    char *question, *answer;
    size_t ev_start, ev_end, doc_len;
    size_t anchor_start, anchor_end; /* anchor_end == 0: no anchor */
} qa_item;

typedef struct qa_list {
    qa_item *items;
    size_t n, cap;
} qa_list;

static int collect_qa(const lqa_store_qa *qa, void *ctx) {
    qa_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->items = lqa_realloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->n++] = (qa_item){qa->id, qa->doc_id, lqa_strdup(qa->question), lqa_strdup(qa->answer),
                                 qa->ev_start, qa->ev_end, qa->doc_len, qa->anchor_start, qa->anchor_end};
    return 0;
}

static int by_doc_then_id(const void *a, const void *b) {
    const qa_item *x = a, *y = b;
    if (x->doc_id != y->doc_id) return x->doc_id < y->doc_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void lqa_build_window(size_t n, size_t ea, size_t eb, size_t budget, size_t *wa, size_t *wb) {
    if (n <= budget) {
        *wa = 0, *wb = n;
        return;
    }
    size_t room = budget - (eb - ea), left = ea, right = n - eb;
    size_t take_l = left < room / 2 ? left : room / 2;
    size_t take_r = right < room - take_l ? right : room - take_l;
    take_l = left < room - take_r ? left : room - take_r; /* give back what the right side could not use */
    *wa = ea - take_l;
    *wb = eb + take_r;
}

/* A document tokenized once for all its QA pairs. */
typedef struct doc_tok {
    lqa_store_doc doc;
    int32_t *ids;
    uint32_t *begins;
    size_t n;
    int rc;
    lqa_err err;
} doc_tok;

enum { SFT_OK = 0, SFT_TRUNCATED = 1, SFT_DROP_QA_TOO_LONG = -1, SFT_DROP_EVIDENCE_TOO_LONG = -2,
       SFT_DROP_ERROR = -3, SFT_DROP_ANCHOR_TOO_FAR = -4 };

int lqa_build_kept_span(size_t ev_start, size_t ev_end, size_t anchor_start, size_t anchor_end, size_t doc_len,
                        size_t *ks, size_t *ke) {
    int has_span = ev_end > ev_start && ev_end <= doc_len;
    int has_anchor = anchor_end > anchor_start && anchor_end <= doc_len;
    if (!has_span && !has_anchor) return 0;
    *ks = has_span ? ev_start : anchor_start;
    *ke = has_span ? ev_end : anchor_end;
    if (has_anchor && anchor_start < *ks) *ks = anchor_start;
    if (has_anchor && anchor_end > *ke) *ke = anchor_end;
    return 1;
}

size_t lqa_build_first_token_at(const uint32_t *begins, size_t n, size_t off) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (begins[mid] < off) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int lqa_build_encode_prompt(const lqa_tokenizer *tok, const char *doc, size_t a, size_t b, const char *question,
                            int32_t **ids, size_t *n, lqa_err *err) {
    lqa_buf src = {0};
    lqa_buf_puts(&src, "[INST]" LQA_PROMPT_HEAD);
    lqa_buf_append(&src, doc + a, b - a);
    lqa_buf_puts(&src, LQA_PROMPT_MID);
    lqa_buf_puts(&src, question);
    lqa_buf_puts(&src, "[/INST]");
    int rc = lqa_tok_encode(tok, src.data, src.len, ids, n, err);
    lqa_buf_free(&src);
    return rc;
}

/* Renders one QA pair as BOS [INST]...[/INST] answer EOS within max_len tokens, cutting the
 * document around the evidence, and the anchor (what the question quotes) with it, when needed:
 * a window that held the evidence but not the quoted passage would teach answering without
 * reading it. A pair whose anchor and evidence do not fit together is dropped
 * (SFT_DROP_ANCHOR_TOO_FAR). Returns an SFT_* status. */
static int render_sft(const lqa_tokenizer *tok, const doc_tok *d, const qa_item *q, size_t max_len, rec_out *r,
                      lqa_err *err) {
    int32_t *ans = NULL, *src = NULL;
    size_t n_ans, n_src;
    if (lqa_tok_encode(tok, q->answer, strlen(q->answer), &ans, &n_ans, err) != 0) return SFT_DROP_ERROR;
    if (lqa_build_encode_prompt(tok, "", 0, 0, q->question, &src, &n_src, err) != 0) {
        free(ans);
        return SFT_DROP_ERROR;
    }
    free(src);
    size_t fixed = 2 + n_src + n_ans; /* BOS, EOS, prompt without document, answer */
    if (fixed >= max_len) {
        free(ans);
        return SFT_DROP_QA_TOO_LONG;
    }
    int has_span = q->ev_end > q->ev_start && q->ev_end <= d->doc.text_len;
    int has_anchor = q->anchor_end > q->anchor_start && q->anchor_end <= d->doc.text_len;
    size_t ea = 0, eb = 0, ev_tokens = 0, ks, ke;
    /* the bytes to keep: the evidence, the anchor, or both and what lies between */
    if (lqa_build_kept_span(q->ev_start, q->ev_end, q->anchor_start, q->anchor_end, d->doc.text_len, &ks, &ke)) {
        ea = lqa_build_first_token_at(d->begins, d->n, ks + 1);
        ea = ea > 0 ? ea - 1 : 0; /* the token that holds the first byte */
        eb = lqa_build_first_token_at(d->begins, d->n, ke);
        if (has_span)
            ev_tokens = lqa_build_first_token_at(d->begins, d->n, q->ev_end) -
                        lqa_build_first_token_at(d->begins, d->n, q->ev_start);
    }
    size_t budget = max_len - fixed;
    if (d->n > budget) budget = budget > 16 ? budget - 8 : budget; /* cut edges re-tokenize a little longer */
    for (int attempt = 0; attempt < 16; attempt++) {
        if (eb - ea > budget) break;
        size_t wa, wb;
        lqa_build_window(d->n, ea, eb, budget, &wa, &wb);
        size_t a = wa < d->n ? d->begins[wa] : d->doc.text_len, b = wb < d->n ? d->begins[wb] : d->doc.text_len;
        if (wa == 0) a = 0;
        if (lqa_build_encode_prompt(tok, d->doc.text, a, b, q->question, &src, &n_src, err) != 0) {
            free(ans);
            return SFT_DROP_ERROR;
        }
        size_t total = 2 + n_src + n_ans;
        if (total <= max_len) {
            r->n = (uint32_t)total;
            r->tokens = lqa_malloc(total * sizeof(int32_t));
            r->mask = lqa_calloc(total, 1);
            r->tokens[0] = lqa_tok_bos_id(tok);
            memcpy(r->tokens + 1, src, n_src * sizeof(int32_t));
            memcpy(r->tokens + 1 + n_src, ans, n_ans * sizeof(int32_t));
            r->tokens[total - 1] = lqa_tok_eos_id(tok);
            memset(r->mask + 1 + n_src, 1, n_ans + 1); /* the answer and its EOS are the targets */
            r->n_segs = 1;
            r->segs = lqa_malloc(sizeof *r->segs);
            r->segs[0] = (lqa_segment){q->id, q->doc_id, 0, (uint32_t)total};
            r->anchored = has_anchor;
            r->anchor_kept = has_anchor && a <= q->anchor_start && q->anchor_end <= b &&
                             (!has_span || (a <= q->ev_start && q->ev_end <= b));
            free(src);
            free(ans);
            return a > 0 || b < d->doc.text_len ? SFT_TRUNCATED : SFT_OK;
        }
        free(src);
        /* tokens merge differently at the cut edges: shrink by the overshoot and try again */
        size_t over = total - max_len + 4;
        if (over >= budget) break;
        budget -= over;
    }
    free(ans);
    /* the evidence alone would have fit: it is the anchor's distance that does not */
    return has_anchor && (!has_span || ev_tokens + 16 < budget) ? SFT_DROP_ANCHOR_TOO_FAR : SFT_DROP_EVIDENCE_TOO_LONG;
}

typedef struct build_stats {
    uint64_t qa_pairs, documents, truncated, dropped_qa_too_long, dropped_evidence_too_long, dropped_error,
        dropped_missing_doc, dropped_tail_tokens;
    uint64_t dropped_anchor_too_far, anchored, anchor_kept; /* sft: pairs with an anchor, kept in the window */
} build_stats;

#define PART_BYTES (64u << 10) /* long documents are cut into parts of about this size */

/* One piece of work for a thread: part of one document (whole documents when the model does not
 * allow cutting). */
typedef struct doc_part {
    size_t doc, start, len;
    int32_t *ids;
    uint32_t *begins;
    size_t n;
    int rc;
    lqa_err err;
} doc_part;

/* Joins the parts of each document back into doc->ids / doc->begins, in order. */
static void join_parts(doc_tok *docs, doc_part *parts, size_t n_parts, int with_offsets) {
    for (size_t p = 0; p < n_parts;) {
        doc_tok *d = &docs[parts[p].doc];
        size_t q = p, total = 0;
        for (; q < n_parts && parts[q].doc == parts[p].doc; q++) {
            total += parts[q].n;
            if (d->rc == 0 && parts[q].rc != 0) d->rc = -1, d->err = parts[q].err;
        }
        d->ids = lqa_malloc((total + 1) * sizeof *d->ids);
        d->begins = with_offsets ? lqa_malloc((total + 1) * sizeof *d->begins) : NULL;
        for (size_t k = p; k < q; k++) {
            memcpy(d->ids + d->n, parts[k].ids, parts[k].n * sizeof *d->ids);
            for (size_t i = 0; with_offsets && i < parts[k].n; i++)
                d->begins[d->n + i] = (uint32_t)parts[k].start + parts[k].begins[i];
            d->n += parts[k].n;
            free(parts[k].ids);
            free(parts[k].begins);
        }
        p = q;
    }
}

/* Tokenizes a batch of documents on all threads: documents are cut into parts at newlines
 * (lqa_tok_part_end), so one long book keeps every core busy; the joined ids are those of the
 * whole document whatever the cutting. Offsets (sft needs them to cut) cost extra time, so lm
 * asks for ids only. */
static void tokenize_docs(const lqa_tokenizer *tok, doc_tok *docs, size_t n_docs, int threads, int with_offsets) {
    doc_part *parts = NULL;
    size_t n_parts = 0, cap = 0;
    for (size_t i = 0; i < n_docs; i++) {
        if (docs[i].rc != 0) continue; /* the document could not be read */
        size_t start = 0, len = docs[i].doc.text_len;
        do {
            size_t end = lqa_tok_part_end(tok, docs[i].doc.text, len, start + PART_BYTES);
            if (n_parts == cap) parts = lqa_realloc(parts, (cap = cap ? 2 * cap : 64) * sizeof *parts);
            parts[n_parts++] = (doc_part){.doc = i, .start = start, .len = end - start};
            start = end;
        } while (start < len);
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t p = 0; p < n_parts; p++) {
        doc_part *x = &parts[p];
        x->rc = lqa_tok_encode_part(tok, docs[x->doc].doc.text + x->start, x->len, x->start > 0, &x->ids,
                                    with_offsets ? &x->begins : NULL, &x->n, &x->err);
    }
    join_parts(docs, parts, n_parts, with_offsets);
    free(parts);
}

static void doc_tok_free(doc_tok *d) {
    lqa_store_doc_free(&d->doc);
    free(d->ids);
    free(d->begins);
}

/* One batch of whole-document groups of QA pairs [q0, q1): load, tokenize, render, write. */
static int sft_batch(sink *k, lqa_store *st, qa_item *qa, size_t q0, size_t q1, build_stats *bs, lqa_progress *pg,
                     lqa_err *err) {
    size_t n_docs = 0;
    for (size_t i = q0; i < q1; i++) n_docs += i == q0 || qa[i].doc_id != qa[i - 1].doc_id;
    doc_tok *docs = lqa_calloc(n_docs, sizeof *docs);
    size_t *doc_of = lqa_malloc((q1 - q0) * sizeof *doc_of);
    int rc = 0;
    for (size_t i = q0, d = 0; i < q1; i++) {
        if (i > q0 && qa[i].doc_id != qa[i - 1].doc_id) d++;
        doc_of[i - q0] = d;
        if (i == q0 || qa[i].doc_id != qa[i - 1].doc_id) {
            if (lqa_store_get_doc(st, qa[i].doc_id, &docs[d].doc, &docs[d].err) != 0) docs[d].rc = -1;
            else bs->documents++;
        }
    }
    int threads = k->o->threads;
    tokenize_docs(k->tok, docs, n_docs, threads, 1);
    rec_out *out = lqa_calloc(q1 - q0, sizeof *out);
    int *status = lqa_calloc(q1 - q0, sizeof *status);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = q0; i < q1; i++) {
        doc_tok *d = &docs[doc_of[i - q0]];
        lqa_err e;
        status[i - q0] = d->rc != 0 ? SFT_DROP_ERROR : render_sft(k->tok, d, &qa[i], (size_t)k->o->max_len,
                                                                  &out[i - q0], &e);
    }
    for (size_t i = q0; i < q1 && rc == 0; i++) {
        int s = status[i - q0];
        if (s >= 0) rc = sink_sft(k, &out[i - q0], err);
        bs->truncated += s == SFT_TRUNCATED;
        bs->dropped_qa_too_long += s == SFT_DROP_QA_TOO_LONG;
        bs->dropped_evidence_too_long += s == SFT_DROP_EVIDENCE_TOO_LONG;
        bs->dropped_anchor_too_far += s == SFT_DROP_ANCHOR_TOO_FAR;
        if (s >= 0) bs->anchored += out[i - q0].anchored, bs->anchor_kept += out[i - q0].anchor_kept;
        if (s == SFT_DROP_ERROR) {
            doc_tok *d = &docs[doc_of[i - q0]];
            if (d->rc != 0) log_warn("qa %lld dropped: %s", (long long)qa[i].id, d->err.msg);
            bs->dropped_error++;
        }
    }
    for (size_t i = 0; i < q1 - q0; i++) rec_out_free(&out[i]);
    for (size_t d = 0; d < n_docs; d++) doc_tok_free(&docs[d]);
    lqa_progress_add(pg, (double)(q1 - q0));
    free(out), free(status), free(docs), free(doc_of);
    return rc;
}

static int build_sft(sink *k, lqa_store *st, build_stats *bs, lqa_err *err) {
    qa_list l = {0};
    if (lqa_store_each_qa(st, split_arg(k->o->split), k->o->kinds, collect_qa, &l, err) != 0) return -1;
    if (l.n > 1) qsort(l.items, l.n, sizeof *l.items, by_doc_then_id); /* a split with no pairs: items is NULL */
    bs->qa_pairs = l.n;
    lqa_progress pg;
    lqa_progress_start(&pg, "sft records", (double)l.n, "qa");
    int rc = 0;
    /* batches end at document boundaries (documents stay whole within a batch) and hold at most
     * BATCH_DOCS / 8 documents or about BATCH_BYTES of text, which bounds memory */
    for (size_t q0 = 0; q0 < l.n && rc == 0;) {
        size_t q1 = q0, docs = 0, bytes = 0;
        while (q1 < l.n && docs < BATCH_DOCS / 8 && bytes < BATCH_BYTES) {
            size_t e = q1;
            while (e < l.n && l.items[e].doc_id == l.items[q1].doc_id) e++;
            bytes += l.items[q1].doc_len;
            q1 = e;
            docs++;
        }
        rc = sft_batch(k, st, l.items, q0, q1, bs, &pg, err);
        q0 = q1;
    }
    if (rc == 0) rc = sink_flush_pack(k, err);
    lqa_progress_finish(&pg);
    for (size_t i = 0; i < l.n; i++) free(l.items[i].question), free(l.items[i].answer);
    free(l.items);
    return rc;
}

/* ============================ lm blocks ============================ */

typedef struct lm_ctx {
    sink *k;
    build_stats *bs;
    doc_tok *batch;
    size_t n, bytes;
    rec_out block;
    uint32_t block_cap;
    lqa_progress pg;
    int rc;
    lqa_err *err;
} lm_ctx;

/* --pack: the document (then EOS) whole in a segment of its own, several to a sequence of at
 * most max_len tokens, so no document is cut across sequences or sees another; one longer than
 * max_len is cut into max_len pieces, a sequence each. The first token of a segment is no
 * target (nothing before it in its segment). */
static int lm_pack_doc(lm_ctx *c, const int32_t *ids, uint8_t *mask, size_t n, int64_t doc_id) {
    uint32_t max_len = (uint32_t)c->k->o->max_len;
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += max_len) {
        uint32_t take = (uint32_t)(n - at < max_len ? n - at : max_len);
        mask[at] = 0;
        rc = sink_pack(c->k, ids + at, mask + at, take, -1, doc_id, c->err);
    }
    return rc;
}

/* Pours one document's tokens (then EOS) into fixed max_len blocks; full blocks are written.
 * With --pack, lm_pack_doc instead. */
static int lm_pour(lm_ctx *c, const doc_tok *d) {
    uint32_t max_len = (uint32_t)c->k->o->max_len;
    size_t n = d->n + 1;
    int32_t *ids = lqa_malloc(n * sizeof *ids);
    memcpy(ids, d->ids, d->n * sizeof *ids);
    ids[d->n] = lqa_tok_eos_id(c->k->tok);
    uint8_t *ones = lqa_malloc(n);
    memset(ones, 1, n);
    int rc = 0;
    if (c->k->o->pack) {
        rc = lm_pack_doc(c, ids, ones, n, d->doc.id);
        free(ids);
        free(ones);
        return rc;
    }
    for (size_t at = 0; at < n && rc == 0;) {
        uint32_t take = (uint32_t)(n - at < max_len - c->block.n ? n - at : max_len - c->block.n);
        rec_append(&c->block, &c->block_cap, ids + at, ones, take, -1, d->doc.id);
        at += take;
        if (c->block.n == max_len) {
            c->block.mask[0] = 0; /* the first token of a block has nothing to be predicted from */
            rc = sink_write(c->k, &c->block, c->err);
            c->block.n = c->block.n_segs = 0;
        }
    }
    free(ids);
    free(ones);
    return rc;
}

static int lm_flush(lm_ctx *c) {
    tokenize_docs(c->k->tok, c->batch, c->n, c->k->o->threads, 0);
    int rc = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (rc == 0 && c->batch[i].rc != 0) rc = lqa_err_set(c->err, "%s", c->batch[i].err.msg);
        if (rc == 0) rc = lm_pour(c, &c->batch[i]);
        lqa_progress_add(&c->pg, (double)c->batch[i].doc.text_len);
        free(c->batch[i].doc.text);
        free(c->batch[i].ids);
        free(c->batch[i].begins);
    }
    c->n = c->bytes = 0;
    return rc;
}

static int lm_collect(const lqa_store_doc *doc, void *ctx) {
    lm_ctx *c = ctx;
    doc_tok *d = &c->batch[c->n++];
    memset(d, 0, sizeof *d);
    d->doc.id = doc->id;
    d->doc.text = lqa_strndup(doc->text, doc->text_len);
    d->doc.text_len = doc->text_len;
    c->bytes += doc->text_len;
    c->bs->documents++;
    if (c->n == BATCH_DOCS || c->bytes >= BATCH_BYTES) c->rc = lm_flush(c);
    return c->rc;
}

static int build_lm(sink *k, lqa_store *st, build_stats *bs, lqa_err *err) {
    lm_ctx c = {.k = k, .bs = bs, .err = err};
    c.batch = lqa_calloc(BATCH_DOCS, sizeof *c.batch);
    lqa_progress_start(&c.pg, "lm blocks", 0, "B");
    int rc = lqa_store_each_doc(st, split_arg(k->o->split), lm_collect, &c, err);
    if (rc == 0 && c.rc == 0) rc = lm_flush(&c);
    if (c.rc != 0) rc = c.rc;
    if (rc == 0) rc = sink_flush_pack(k, err);
    lqa_progress_finish(&c.pg);
    bs->dropped_tail_tokens = c.block.n; /* the last, partial block */
    rec_out_free(&c.block);
    free(c.batch);
    return rc;
}

/* ============================ manifest and driver ============================ */

static json_t *histogram_json(const uint64_t hist[HIST_BINS]) {
    json_t *a = json_array();
    for (int b = 0; b < HIST_BINS; b++)
        if (hist[b])
            json_array_append_new(a, json_pack("{s:I, s:I, s:I}", "min", (json_int_t)(1ull << b), "max",
                                               (json_int_t)((2ull << b) - 1), "count", (json_int_t)hist[b]));
    return a;
}

static int write_manifest(sink *k, const build_stats *bs, lqa_err *err) {
    const lqa_build_opts *o = k->o;
    const lqa_tokenizer *t = k->tok;
    json_t *m = json_object();
    json_object_set_new(m, "format", json_string("lqa-shards"));
    json_object_set_new(m, "version", json_integer(LQA_SHARD_VERSION));
    json_object_set_new(m, "kind", json_string(lqa_shard_kind_name((uint32_t)o->kind)));
    json_object_set_new(m, "template", json_string(o->kind == LQA_KIND_SFT ? "llama2-inst" : "none"));
    json_object_set_new(m, "packed", json_boolean(o->pack));
    json_object_set_new(m, "dtype", json_string(lqa_tok_vocab_size(t) <= 65536 ? "uint16" : "uint32"));
    json_object_set_new(m, "tokenizer", json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "path", o->tokenizer,
                                                  "sha256", lqa_tok_sha256(t), "vocab_size", lqa_tok_vocab_size(t),
                                                  "bos_id", lqa_tok_bos_id(t), "eos_id", lqa_tok_eos_id(t), "unk_id",
                                                  lqa_tok_unk_id(t), "pad_id", lqa_tok_pad_id(t)));
    json_object_set_new(m, "settings", json_pack("{s:s, s:s, s:s?, s:i, s:b, s:i, s:I}", "db", o->db, "split",
                                                 o->split ? o->split : "train", "kinds", o->kinds, "max_len",
                                                 o->max_len, "pack", o->pack, "zstd_level", o->zstd_level,
                                                 "shard_records", (json_int_t)o->shard_records));
    json_object_set_new(m, "shards", json_incref(k->shards));
    json_object_set_new(m, "records", json_integer((json_int_t)k->records));
    json_object_set_new(m, "tokens", json_integer((json_int_t)k->tokens));
    json_object_set_new(m, "loss_tokens", json_integer((json_int_t)k->loss_tokens));
    json_object_set_new(m, "source", json_pack("{s:I, s:I}", "qa_pairs", (json_int_t)bs->qa_pairs, "documents",
                                               (json_int_t)bs->documents));
    json_object_set_new(m, "truncated", json_integer((json_int_t)bs->truncated));
    uint64_t dropped = bs->dropped_qa_too_long + bs->dropped_evidence_too_long + bs->dropped_error +
                       bs->dropped_anchor_too_far;
    json_object_set_new(m, "dropped", json_integer((json_int_t)dropped));
    json_object_set_new(m, "dropped_reasons",
                        json_pack("{s:I, s:I, s:I, s:I}", "question_and_answer_too_long",
                                  (json_int_t)bs->dropped_qa_too_long, "evidence_too_long",
                                  (json_int_t)bs->dropped_evidence_too_long, "anchor_and_evidence_too_far",
                                  (json_int_t)bs->dropped_anchor_too_far, "unreadable", (json_int_t)bs->dropped_error));
    if (o->kind == LQA_KIND_SFT) /* records whose pair quotes a place, and those whose window holds it and the evidence */
        json_object_set_new(m, "anchors", json_pack("{s:I, s:I}", "records_with_anchor", (json_int_t)bs->anchored,
                                                    "records_keeping_anchor_and_evidence", (json_int_t)bs->anchor_kept));
    json_object_set_new(m, "dropped_tail_tokens", json_integer((json_int_t)bs->dropped_tail_tokens));
    json_object_set_new(m, "length_histogram", histogram_json(k->hist));
    char *path = lqa_path_join(k->tmp_dir, "manifest.json");
    int rc = lqa_json_write_file(path, m, err);
    free(path);
    json_decref(m);
    return rc;
}

/* A directory we may replace: absent, empty, or an earlier shard directory. */
static int check_out_dir(const char *dir, lqa_err *err) {
    if (!lqa_path_exists(dir)) return 0;
    if (!lqa_is_dir(dir)) return lqa_err_set(err, "%s: exists and is not a directory", dir);
    char *m = lqa_path_join(dir, "manifest.json");
    int has = lqa_path_exists(m);
    free(m);
    if (has) return 0;
    int empty = rmdir(dir) == 0; /* only succeeds when empty */
    return empty ? 0 : lqa_err_set(err, "%s: exists and is not a shard directory (no manifest.json); refusing to "
                                   "replace it", dir);
}

int lqa_build_shards(const lqa_build_opts *opts, lqa_err *err) {
    lqa_build_opts resolved = *opts;
    if (resolved.threads <= 0) resolved.threads = omp_get_max_threads();
    if (resolved.shard_records == 0) resolved.shard_records = 10000;
    const lqa_build_opts *o = &resolved;
    if (o->max_len < 16) return lqa_err_set(err, "--max-len %d: expected at least 16 tokens", o->max_len);
    if (check_out_dir(o->out_dir, err) != 0) return -1;
    lqa_tokenizer *tok = lqa_tok_load(o->tokenizer, err);
    if (!tok) return -1;
    lqa_store *st = lqa_store_open(o->db, 0, err);
    if (!st) {
        lqa_tok_free(tok);
        return -1;
    }
    sink k = {.o = o, .tok = tok, .shards = json_array()};
    /* built in OUT.tmp-PID and swapped in whole (lqa_atomic_dir: there is always an OUT, the old
     * or the new; what killed builds left is removed first) */
    lqa_atomic_dir ad;
    build_stats bs = {0};
    int rc = lqa_atomic_dir_begin(&ad, o->out_dir, err);
    k.tmp_dir = ad.tmp;
    if (rc == 0) rc = o->kind == LQA_KIND_SFT ? build_sft(&k, st, &bs, err) : build_lm(&k, st, &bs, err);
    if (rc == 0) rc = sink_close_shard(&k, err);
    if (rc == 0) rc = write_manifest(&k, &bs, err);
    if (rc == 0) {
        rc = lqa_atomic_dir_commit(&ad, err);
        k.tmp_dir = NULL;
    }
    if (rc == 0)
        log_info("%s: %llu records, %llu tokens in %d shard(s); %llu truncated, %llu dropped", o->out_dir,
                 (unsigned long long)k.records, (unsigned long long)k.tokens, k.shard_no,
                 (unsigned long long)bs.truncated,
                 (unsigned long long)(bs.dropped_qa_too_long + bs.dropped_evidence_too_long + bs.dropped_error +
                                       bs.dropped_anchor_too_far));
    if (rc != 0) {
        if (k.w) lqa_shard_writer_abort(k.w);
        if (k.tmp_dir) lqa_atomic_dir_abort(&ad);
    }
    rec_out_free(&k.pack);
    json_decref(k.shards);
    lqa_store_close(st);
    lqa_tok_free(tok);
    return rc;
}
