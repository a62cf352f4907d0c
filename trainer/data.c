/* data.c: the training data of a run: the --data sources (each its own shuffled iterator),
 * their mixing weights, and micro-batches filled from them (cut or packed rows, segment ids,
 * loss mask). See run.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/log.h"
#include "model/hfdir.h"
#include "trainer/run.h"

void train_batch_alloc(batch_buf *bb, int B, int T) {
    bb->B = B;
    bb->T = T;
    bb->tokens = lqa_malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    bb->seg = lqa_malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    bb->mask = lqa_malloc((size_t)B * (size_t)T);
}

void train_batch_free(batch_buf *bb) {
    free(bb->tokens);
    free(bb->seg);
    free(bb->mask);
}

/* Copies n tokens of rec into a row at offset `at`. The record's segment ids (0 for unpacked
 * records) are shifted by seg_base so records packed into one row never see each other; the
 * record's first token is never a target (it would be predicted from the previous record).
 * Returns the number of segment ids the record used, or -1 with err set. */
static int place_record(const lqa_record *rec, int n, int at, int seg_base, int vocab, int32_t *tok, int32_t *seg,
                        uint8_t *mask, lqa_err *err) {
    int used = 1;
    for (int t = 0; t < n; t++) {
        if (rec->tokens[t] < 0 || rec->tokens[t] >= vocab)
            return lqa_err_set(err, "record %llu: token %d at %d is outside the model's vocabulary of %d",
                               (unsigned long long)rec->index, rec->tokens[t], t, vocab);
        int32_t id = rec->segment_ids ? rec->segment_ids[t] : 0;
        tok[at + t] = rec->tokens[t];
        mask[at + t] = t > 0 && rec->loss_mask[t];
        seg[at + t] = id < 0 ? -1 : seg_base + id;
        if (id + 1 > used) used = id + 1;
    }
    return used;
}

/* Fills row b: one record cut to T tokens (with a warning the first time), or with pack as many
 * whole records as fit (a record that does not fit is put back: the iterator seeks to before it,
 * so a checkpoint's data position stays exact). The rest is padding: segment id -1, attends
 * nothing, is no target. */
static int fill_row(lqa_iter *it, lqa_record *rec, batch_buf *bb, int b, int pack, int vocab, int *warned,
                    lqa_err *err) {
    int T = bb->T, used = 0, seg_base = 0;
    int32_t *tok = bb->tokens + (size_t)b * T, *seg = bb->seg + (size_t)b * T;
    uint8_t *mask = bb->mask + (size_t)b * T;
    while (used < T) {
        lqa_iter_pos before = lqa_iter_tell(it);
        if (lqa_iter_next(it, rec, err)) return -1;
        int n = (int)rec->n_tokens;
        if (used > 0 && used + n > T) {
            if (lqa_iter_seek(it, &before, err)) return -1;
            break;
        }
        if (n > T) {
            if (!(*warned)++)
                log_warn("record %llu has %d tokens, more than --ctx %d: cut at the right (build shards with "
                         "--max-len <= ctx to keep every answer)", (unsigned long long)rec->index, n, T);
            n = T;
        }
        int k = place_record(rec, n, used, seg_base, vocab, tok, seg, mask, err);
        if (k < 0) return -1;
        seg_base += k;
        used += n;
        if (!pack) break;
    }
    for (int t = used; t < T; t++) {
        tok[t] = 0;
        mask[t] = 0;
        seg[t] = -1;
    }
    bb->real_tokens += used;
    return 0;
}

int lqa_mix_pick(lqa_rng *rng, const double *cum, int n) {
    if (n <= 1) return 0;
    double u = lqa_rng_uniform(rng) * cum[n - 1];
    for (int i = 0; i < n - 1; i++)
        if (u < cum[i]) return i;
    return n - 1;
}

int train_fill_batch(train_run *r, lqa_record *rec, batch_buf *bb, int *warned, lqa_err *err) {
    bb->real_tokens = 0;
    for (int b = 0; b < bb->B; b++) {
        data_source *s = &r->src[lqa_mix_pick(&r->mix_rng, r->cum, r->n_src)];
        s->rows++;
        if (fill_row(&s->it, rec, bb, b, r->o->pack, r->m.cfg.vocab_size, warned, err))
            return r->n_src > 1 ? lqa_err_prefix(err, "%s", s->dir) : -1;
    }
    return 0;
}

/* Splits a comma list into its non-empty items (caller frees the array and items). */
static int split_list(const char *list, const char *flag, char ***items, int *n, lqa_err *err) {
    *items = NULL;
    *n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) {
            for (int i = 0; i < *n; i++) free((*items)[i]);
            free(*items);
            *items = NULL;
            *n = 0;
            return lqa_err_set(err, "%s '%s': an empty item; expected a comma list without empty entries", flag, list);
        }
        *items = lqa_realloc(*items, sizeof(char *) * (size_t)(*n + 1));
        (*items)[(*n)++] = lqa_strndup(p, len);
        if (!end) return 0;
        p = end + 1;
    }
}

/* Resolves each source's weight: --data-weights, else its token count; then the cumulative table. */
static int resolve_weights(train_run *r, lqa_err *err) {
    const char *w = r->o->data_weights;
    if (w) {
        char **items;
        int n;
        if (split_list(w, "--data-weights", &items, &n, err)) return -1;
        int rc = n == r->n_src ? 0
                               : lqa_err_set(err, "--data-weights '%s': %d weights for %d --data dirs; give one per dir",
                                             w, n, r->n_src);
        for (int i = 0; i < n && !rc; i++) {
            char *end;
            double x = strtod(items[i], &end);
            if (*end || !(x >= 0) || !isfinite(x))
                rc = lqa_err_set(err, "--data-weights '%s': item %d '%s' is not a weight; expected a number >= 0", w,
                                 i + 1, items[i]);
            else r->src[i].weight = x;
        }
        for (int i = 0; i < n; i++) free(items[i]);
        free(items);
        if (rc) return -1;
    } else {
        for (int i = 0; i < r->n_src; i++) r->src[i].weight = (double)lqa_shards_get_info(r->src[i].data)->total_tokens;
    }
    r->cum = lqa_malloc(sizeof(double) * (size_t)r->n_src);
    double sum = 0;
    for (int i = 0; i < r->n_src; i++) r->cum[i] = sum += r->src[i].weight;
    if (!(sum > 0)) return lqa_err_set(err, "--data-weights: the weights sum to 0; give at least one positive weight");
    return 0;
}

/* Opens one source: the model's tokenizer hash and vocabulary must fit, and it must hold at
 * least a micro-batch of records. */
static int open_source(train_run *r, data_source *s, const char *tok_hex, lqa_err *err) {
    s->data = lqa_shards_open(s->dir, tok_hex, err);
    if (!s->data) return -1;
    const lqa_shard_info *si = lqa_shards_get_info(s->data);
    if ((int)si->vocab_size > r->m.cfg.vocab_size)
        return lqa_err_set(err, "%s: shards use a vocabulary of %u, the model has %d", s->dir, si->vocab_size,
                           r->m.cfg.vocab_size);
    if (lqa_shards_count(s->data) < (uint64_t)r->o->micro_batch)
        return lqa_err_set(err, "%s: %llu records, fewer than --micro-batch %d", s->dir,
                           (unsigned long long)lqa_shards_count(s->data), r->o->micro_batch);
    return lqa_iter_init(&s->it, s->data, r->o->seed, 0, 1, err);
}

int train_open_data(train_run *r, lqa_err *err) {
    lqa_err terr;
    char *tok = lqa_hf_tokenizer_path(r->o->model_dir, &terr);
    if (!tok) return lqa_err_set(err, "%s; it is needed to check that %s was tokenized with the model's tokenizer",
                                 terr.msg, r->o->data_dir);
    snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", tok);
    uint8_t sha[32];
    char hex[65];
    int rc = lqa_sha256_file(tok, sha, err);
    free(tok);
    if (rc) return -1;
    lqa_hex(sha, 32, hex);
    char **dirs;
    int n;
    if (split_list(r->o->data_dir, "--data", &dirs, &n, err)) return -1;
    r->src = lqa_calloc((size_t)n, sizeof *r->src);
    r->n_src = n;
    for (int i = 0; i < n; i++) r->src[i].dir = dirs[i];
    free(dirs);
    for (int i = 0; i < n; i++)
        if (open_source(r, &r->src[i], hex, err)) return -1;
    /* its own stream, seeded apart from the iterators' and the LoRA init's */
    lqa_rng_seed(&r->mix_rng, r->o->seed ^ 0x6d6978696e67ULL);
    if (resolve_weights(r, err)) return -1;
    for (int i = 0; r->n_src > 1 && i < r->n_src; i++)
        log_info("data source %d: %s (%s, %llu records), weight %g = %.1f%% of rows", i + 1, r->src[i].dir,
                 lqa_shard_kind_name(lqa_shards_get_info(r->src[i].data)->kind),
                 (unsigned long long)lqa_shards_count(r->src[i].data), r->src[i].weight,
                 100.0 * r->src[i].weight / r->cum[r->n_src - 1]);
    return 0;
}

/* data_info of config.json: the first source's kind and tokenizer, totals, and every source's
 * directory, resolved weight and counts. */
json_t *train_data_info_json(const train_run *r) {
    const lqa_shard_info *si = lqa_shards_get_info(r->src[0].data);
    const char *kind = lqa_shard_kind_name(si->kind);
    json_int_t total = 0;
    json_t *list = json_array();
    mallocCheck(list);
    for (int i = 0; i < r->n_src; i++) {
        const lqa_shard_info *s = lqa_shards_get_info(r->src[i].data);
        if (s->kind != si->kind) kind = "mixed";
        total += (json_int_t)s->total_tokens;
        json_t *e = json_pack("{s:s, s:s, s:f, s:I, s:I}", "dir", r->src[i].dir, "kind", lqa_shard_kind_name(s->kind),
                              "weight", r->src[i].weight, "records", (json_int_t)lqa_shards_count(r->src[i].data),
                              "total_tokens", (json_int_t)s->total_tokens);
        mallocCheck(e);
        json_array_append_new(list, e);
    }
    json_t *data = json_pack("{s:s, s:s, s:I, s:o}", "kind", kind, "tokenizer_sha256", si->tokenizer_hex,
                             "total_tokens", total, "sources", list);
    mallocCheck(data);
    return data;
}

uint64_t train_total_records(const train_run *r) {
    uint64_t n = 0;
    for (int i = 0; i < r->n_src; i++) n += lqa_shards_count(r->src[i].data);
    return n;
}

void train_data_free(train_run *r) {
    for (int i = 0; i < r->n_src; i++) {
        if (r->src[i].it.d) lqa_iter_free(&r->src[i].it);
        if (r->src[i].data) lqa_shards_close(r->src[i].data);
        free(r->src[i].dir);
    }
    free(r->src);
    free(r->cum);
}
