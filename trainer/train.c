/* train.c: the `lqa-sft train` loop: model and data loading with their checks (tokenizer hash,
 * S2-Attn ctx, memory estimate), micro-batches with gradient accumulation, AdamW, metrics,
 * progress, atomic checkpoints and exact resume, and the final adapter or model. See train.h. */
#include "trainer/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/safetensors.h"
#include "dataset/shards.h"
#include "trainer/adapter.h"
#include "trainer/ckpt.h"
#include "trainer/dist.h"
#include "trainer/hfdir.h"
#include "trainer/plan.h"
#include "trainer/presets.h"

/* ---- options ------------------------------------------------------------------------------- */

void lqa_train_opts_default(lqa_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->train = LQA_TRAIN_LORA_PLUS;
    o->attn = LQA_ATTN_S2;
    o->group_ratio = 0.25f;
    o->lora_rank = 8;
    o->lora_alpha = 16;
    o->lora_targets = LQA_LORA_Q | LQA_LORA_K | LQA_LORA_V | LQA_LORA_O;
    o->lr = 2e-5f;
    o->warmup = 20;
    o->steps = 1000;
    o->micro_batch = 1;
    o->grad_accum = 8;
    o->schedule = LQA_SCHED_CONSTANT;
    o->seed = 42;
    o->threads = 0;
    o->save_every = 100;
    o->log_every = 10;
    o->keep_checkpoints = 2;
    o->checkpointing = 1;
    o->max_grad_norm = 1.0f;
    o->weight_decay = 0.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->adam_eps = 1e-8f;
}

static const char *const TRAIN_SET_NAMES[] = {"lora+", "lora", "full"};

const char *lqa_train_set_name(lqa_train_set t) {
    return (unsigned)t < 3 ? TRAIN_SET_NAMES[t] : "?";
}

int lqa_train_set_parse(const char *s, lqa_train_set *t) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, TRAIN_SET_NAMES[i])) {
            *t = (lqa_train_set)i;
            return 0;
        }
    return -1;
}

/* ---- model -------------------------------------------------------------------------------- */

float lqa_apply_position_interpolation(lqa_config *cfg, int ctx) {
    if (ctx > cfg->max_pos) {
        cfg->rope_scale *= (float)ctx / (float)cfg->max_pos;
        cfg->max_pos = ctx;
    }
    return cfg->rope_scale;
}

int lqa_load_for_training(const char *model_dir, const char *adapter_dir, int ctx, lqa_train_set train,
                          int lora_targets, int lora_rank, float lora_alpha, uint64_t seed, lqa_model *m,
                          lqa_err *err) {
    if (lqa_hf_load(model_dir, m, err)) return -1;
    int rc = 0;
    if (adapter_dir) {
        /* the adapter's own interpolation first; a longer ctx then extends from there */
        rc = lqa_adapter_load(adapter_dir, m, err);
        if (!rc && train == LQA_TRAIN_FULL) lqa_model_merge_lora(m); /* full training starts from the merge */
    } else if (train != LQA_TRAIN_FULL) {
        lqa_model_add_lora(m, lora_targets, lora_rank, lora_alpha, seed);
    }
    if (!rc && ctx > 0) lqa_apply_position_interpolation(&m->cfg, ctx);
    if (rc) lqa_model_free(m);
    return rc;
}

void lqa_for_each_trainable(lqa_model *m, lqa_train_set train, const lqa_grads *g, lqa_trainable_fn fn, void *ctx) {
    for (int i = 0; i < m->n_tensors; i++) {
        const lqa_tensor_info *ti = &m->tensors[i];
        if (train == LQA_TRAIN_LORA || (train == LQA_TRAIN_LORA_PLUS && !lqa_is_lora_plus_tensor(ti->name))) continue;
        fn(ctx, ti, m->params ? m->params + ti->offset : NULL, lqa_grads_tensor(g, m, i), 0);
    }
    if (train == LQA_TRAIN_FULL) return;
    for (int i = 0; i < m->n_lora_tensors; i++) {
        const lqa_tensor_info *ti = &m->lora_tensors[i];
        fn(ctx, ti, m->lora ? m->lora + ti->offset : NULL, g && g->d_lora ? g->d_lora + ti->offset : NULL, 1);
    }
}

/* n zeroed floats of be's memory (NULL when n is 0). On the host calloc: the pages of a gradient
 * no step writes (lora+'s frozen base tensors) are never touched, so they cost no RSS. */
static float *zeroed(const lqa_backend *be, size_t n) {
    if (be->host_memory) return n ? lqa_calloc(n, sizeof(float)) : NULL;
    float *p = be->alloc(n * sizeof(float));
    be->zero(p, n * sizeof(float));
    return p;
}

void lqa_grads_alloc(lqa_grads *g, const lqa_model *m, lqa_train_set train) {
    const lqa_backend *be = lqa_model_backend(m);
    g->d_params = train != LQA_TRAIN_LORA ? zeroed(be, lqa_grads_params_floats(m, train)) : NULL;
    g->compact = train == LQA_TRAIN_LORA_PLUS;
    g->d_lora = train != LQA_TRAIN_FULL && m->n_lora ? zeroed(be, m->n_lora) : NULL;
}

void lqa_grads_free(lqa_grads *g, const lqa_backend *be) {
    be->free(g->d_params);
    be->free(g->d_lora);
    g->d_params = g->d_lora = NULL;
}

/* ---- memory estimate ---------------------------------------------------------------------- */

typedef struct mem_estimate {
    double params, lora, grads, optim, activations, total;
} mem_estimate;

static double gib(double bytes) {
    return bytes / (1024.0 * 1024 * 1024);
}

/* From the planner `lqa-sft plan` prints (trainer/plan.h: exact for the fp32 run). */
static mem_estimate estimate_memory(const lqa_config *cfg, const lqa_train_opts *o, const lqa_step_opts *so,
                                    const lqa_backend *be) {
    lqa_plan_opts po = {o->dtype_bf16 ? LQA_PLAN_BF16_RUN : LQA_PLAN_FP32, o->train, o->lora_targets, o->lora_rank, o->lora_alpha, o->micro_batch,
                        o->ctx, *so, lqa_dist_size(o->dist)};
    lqa_plan p;
    lqa_err err;
    lqaCheck(!lqa_plan_training(cfg, &po, be, &p, &err), "%s", err.msg);
    mem_estimate e = {(double)p.weights + (double)p.trainables, 0, (double)p.gradients, (double)p.optimizer,
                      (double)(p.checkpoints + p.workspace + p.runtime), (double)p.total};
    return e;
}

/* The budget is what the backend reports free: the device's (cudaMemGetInfo) on CUDA, the
 * machine's MemAvailable on the CPU. --max-memory overrides either. */
static int check_memory(const mem_estimate *e, const lqa_train_opts *o, const lqa_backend *be, lqa_err *err) {
    size_t free_bytes = 0, total_bytes = 0;
    be->mem_info(&free_bytes, &total_bytes);
    double avail = o->max_memory_gb > 0 ? o->max_memory_gb * 1024.0 * 1024 * 1024 : (double)free_bytes;
    const char *where = be->host_memory ? "" : " of device memory";
    log_info("memory estimate %.2f GiB%s (params %.2f, lora %.3f, grads %.2f, optimizer %.2f, activations %.2f); "
             "%.1f GiB available", gib(e->total), where, gib(e->params), gib(e->lora), gib(e->grads), gib(e->optim),
             gib(e->activations), gib(avail));
    if (avail <= 0 || e->total <= avail) return 0;
    return lqa_err_set(err, "training needs about %.2f GiB%s (params %.2f, grads %.2f, optimizer %.2f, activations "
                       "%.2f) but %.2f GiB are available%s; try %s--micro-batch 1, a smaller --ctx, or --train lora",
                       gib(e->total), where, gib(e->params), gib(e->grads), gib(e->optim), gib(e->activations),
                       gib(avail), o->max_memory_gb > 0 ? " (--max-memory)" : be->host_memory ? "" : " on the device",
                       o->checkpointing ? "" : "--checkpointing on, ");
}

/* ---- batches ------------------------------------------------------------------------------ */

typedef struct batch_buf {
    int B, T;
    int32_t *tokens, *seg;
    uint8_t *mask;
    long real_tokens;       /* non-padding tokens of the last fill */
} batch_buf;

static void batch_alloc(batch_buf *bb, int B, int T) {
    bb->B = B;
    bb->T = T;
    bb->tokens = lqa_malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    bb->seg = lqa_malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    bb->mask = lqa_malloc((size_t)B * (size_t)T);
}

static void batch_free(batch_buf *bb) {
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

/* ---- run state ---------------------------------------------------------------------------- */

/* One --data directory: its shards and its own shuffled iterator (own epochs, cycling). */
typedef struct data_source {
    char *dir;
    lqa_shards *data;
    lqa_iter it;
    double weight;          /* resolved relative weight */
    long rows;              /* rows drawn from it in the current optimizer step */
} data_source;

typedef struct run {
    const lqa_train_opts *o;
    const lqa_backend *be;  /* --device: where the model, gradients, moments and workspace live */
    lqa_model m;
    lqa_grads g;
    lqa_optim opt;
    lqa_workspace *ws;      /* the step workspace, planned once */
    double *scalars;        /* backend: the step's [loss sum, gradient sum of squares] */
    data_source *src;       /* the --data directories, in order */
    int n_src;
    double *cum;            /* cumulative mixing weights */
    lqa_rng mix_rng;        /* picks each row's source; never drawn from with one source */
    lqa_rng rng;
    long step;              /* optimizer steps done */
    double elapsed_before;  /* seconds of earlier sessions (resume) */
    char *ckpt_dir;
    char tokenizer_path[4096];
} run;

int lqa_mix_pick(lqa_rng *rng, const double *cum, int n) {
    if (n <= 1) return 0;
    double u = lqa_rng_uniform(rng) * cum[n - 1];
    for (int i = 0; i < n - 1; i++)
        if (u < cum[i]) return i;
    return n - 1;
}

/* Fills every row of a micro-batch, each from the source the mixing RNG picks. */
static int fill_batch(run *r, lqa_record *rec, batch_buf *bb, int *warned, lqa_err *err) {
    bb->real_tokens = 0;
    for (int b = 0; b < bb->B; b++) {
        data_source *s = &r->src[lqa_mix_pick(&r->mix_rng, r->cum, r->n_src)];
        s->rows++;
        if (fill_row(&s->it, rec, bb, b, r->o->pack, r->m.cfg.vocab_size, warned, err))
            return r->n_src > 1 ? lqa_err_prefix(err, "%s", s->dir) : -1;
    }
    return 0;
}

static void add_group(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora) {
    lqa_optim *opt = ctx;
    /* no decay on norms, as HF Trainer excludes them */
    int decay = strstr(ti->name, "norm.weight") == NULL;
    lqa_optim_add(opt, ti->name, param, grad, ti->numel, decay);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static void u64_hex(uint64_t x, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)x);
}

static uint64_t hex_u64(const char *s) {
    return s ? strtoull(s, NULL, 16) : 0;
}

/* A data position as JSON (u64 fields in hex: JSON numbers lose bits above 2^53). */
static json_t *iter_pos_json(const lqa_iter *it) {
    lqa_iter_pos p = lqa_iter_tell(it);
    char seed[17], epoch[17], dstep[17];
    u64_hex(p.seed, seed);
    u64_hex(p.epoch, epoch);
    u64_hex(p.step, dstep);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i}", "seed", seed, "epoch", epoch, "step", dstep, "rank", p.rank,
                          "world", p.world);
    mallocCheck(j);
    return j;
}

static lqa_iter_pos iter_pos_from_json(const json_t *d) {
    lqa_iter_pos p = {hex_u64(lqa_json_str(d, "seed", NULL)), hex_u64(lqa_json_str(d, "epoch", NULL)),
                      hex_u64(lqa_json_str(d, "step", NULL)), (int)lqa_json_int(d, "rank", 0),
                      (int)lqa_json_int(d, "world", 1)};
    return p;
}

static json_t *rng_json(const lqa_rng *rng) {
    char h[4][17];
    for (int i = 0; i < 4; i++) u64_hex(rng->s[i], h[i]);
    json_t *j = json_pack("[s,s,s,s]", h[0], h[1], h[2], h[3]);
    mallocCheck(j);
    return j;
}

static int rng_from_json(const json_t *a, lqa_rng *rng) {
    if (!json_is_array(a) || json_array_size(a) != 4) return -1;
    for (int i = 0; i < 4; i++) rng->s[i] = hex_u64(json_string_value(json_array_get(a, (size_t)i)));
    return 0;
}

/* state.json: "data" is the first source's position (the single-source layout); with several
 * sources, "sources" holds every source's position and "mix_rng" the mixing RNG. */
static json_t *state_json(const run *r) {
    json_t *j = json_pack("{s:I, s:I, s:o, s:o, s:f}", "step", (json_int_t)r->step, "optim_t", (json_int_t)r->opt.t,
                          "data", iter_pos_json(&r->src[0].it), "rng", rng_json(&r->rng), "elapsed", r->elapsed_before);
    mallocCheck(j);
    if (r->n_src > 1) {
        json_t *a = json_array();
        mallocCheck(a);
        for (int i = 0; i < r->n_src; i++) {
            json_t *p = iter_pos_json(&r->src[i].it);
            json_object_set_new(p, "dir", json_string(r->src[i].dir));
            json_array_append_new(a, p);
        }
        json_object_set_new(j, "sources", a);
        json_object_set_new(j, "mix_rng", rng_json(&r->mix_rng));
    }
    return j;
}

/* Restores every source's position and the mixing RNG from a state.json. */
static int load_data_state(run *r, const json_t *j, const char *path, lqa_err *err) {
    lqa_iter_pos p0 = iter_pos_from_json(json_object_get(j, "data"));
    if (r->n_src == 1) {
        if (json_object_get(j, "sources"))
            return lqa_err_set(err, "%s: the run mixed several --data dirs, this command gives one", path);
        return lqa_iter_seek(&r->src[0].it, &p0, err);
    }
    const json_t *a = json_object_get(j, "sources");
    if (!json_is_array(a) || (int)json_array_size(a) != r->n_src || rng_from_json(json_object_get(j, "mix_rng"), &r->mix_rng))
        return lqa_err_set(err, "%s: \"sources\" (%d expected) or \"mix_rng\" missing; the run was started with "
                           "other --data", path, r->n_src);
    for (int i = 0; i < r->n_src; i++) {
        const json_t *e = json_array_get(a, (size_t)i);
        const char *dir = lqa_json_str(e, "dir", "");
        if (!lqa_same_path(dir, r->src[i].dir))
            return lqa_err_set(err, "%s: source %d was %s, this command gives %s", path, i + 1, dir, r->src[i].dir);
        lqa_iter_pos p = iter_pos_from_json(e);
        if (lqa_iter_seek(&r->src[i].it, &p, err)) return lqa_err_prefix(err, "%s", r->src[i].dir);
    }
    return 0;
}

static int write_state_tensors(const char *path, lqa_optim *opt, lqa_err *err) {
    lqa_optim_to_host(opt); /* a device run's state comes down to the same file */
    int n = opt->n_groups;
    lqa_st_entry *e = lqa_calloc((size_t)(3 * n), sizeof *e);
    char **names = lqa_calloc((size_t)(2 * n), sizeof(char *));
    for (int i = 0; i < n; i++) {
        const lqa_optim_group *g = &opt->groups[i];
        size_t len = strlen(g->name) + 8;
        names[2 * i] = lqa_malloc(len);
        names[2 * i + 1] = lqa_malloc(len);
        snprintf(names[2 * i], len, "adam_m/%s", g->name);
        snprintf(names[2 * i + 1], len, "adam_v/%s", g->name);
        lqa_st_entry parts[3] = {{g->name, 1, {(int64_t)g->n}, g->h_param},
                                 {names[2 * i], 1, {(int64_t)g->n}, g->h_m},
                                 {names[2 * i + 1], 1, {(int64_t)g->n}, g->h_v}};
        memcpy(&e[3 * i], parts, sizeof parts);
    }
    int rc = lqa_st_write(path, e, 3 * n, LQA_ST_F32, NULL, err);
    for (int i = 0; i < 2 * n; i++) free(names[i]);
    free(names);
    free(e);
    return rc;
}

/* Removes a checkpoint directory. */
static void remove_checkpoint(const char *dir) {
    lqa_rm_tree(dir);
}

/* Keeps the newest keep checkpoints (0: all); always removes what killed saves left: temporary
 * folders of dead processes (step-N.tmp-PID, latest.tmp.PID) and the older step-N.tmp form. */
static void prune_checkpoints(const char *ckpt_dir, long newest, long every, int keep) {
    int stale = lqa_clean_stale_temps(ckpt_dir, NULL);
    DIR *d = opendir(ckpt_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long s;
        char tail[8];
        int n = sscanf(de->d_name, "step-%ld%7s", &s, tail);
        if (n == 2 && !strcmp(tail, ".tmp")) {
            char *p = lqa_path_join(ckpt_dir, de->d_name);
            if (lqa_rm_tree(p) == 0) stale++;
            free(p);
        }
        if (n != 1 || keep <= 0) continue;
        if (s <= newest - (long)keep * every) {
            char *p = lqa_path_join(ckpt_dir, de->d_name);
            remove_checkpoint(p);
            free(p);
        }
    }
    closedir(d);
    if (stale) log_info("%s: removed %d temporary folder(s) of interrupted saves", ckpt_dir, stale);
}

/* A checkpoint is built in step-N.tmp-PID and put in place whole (lqa_atomic_dir); state.json
 * records state.safetensors' size and digest and is sealed with its own checksum. Then `latest`
 * is replaced atomically; a run killed before that resumes from the newest complete folder. */
static int save_checkpoint(run *r, double elapsed, lqa_err *err) {
    char name[64];
    snprintf(name, sizeof name, "step-%08ld", r->step);
    char *final = lqa_path_join(r->ckpt_dir, name);
    lqa_atomic_dir ad;
    int rc = lqa_atomic_dir_begin(&ad, final, err);
    char *p = rc ? NULL : lqa_path_join(ad.tmp, "state.safetensors");
    if (!rc) rc = write_state_tensors(p, &r->opt, err);
    lqa_kill_point("checkpoint");
    uint64_t st_bytes = 0, st_xxh = 0;
    if (!rc) rc = lqa_ckpt_digest_file(p, &st_bytes, &st_xxh, err);
    free(p);
    if (!rc) {
        double saved = r->elapsed_before;
        r->elapsed_before = elapsed;
        json_t *j = state_json(r);
        r->elapsed_before = saved;
        lqa_ckpt_seal(j, st_bytes, st_xxh);
        p = lqa_path_join(ad.tmp, "state.json");
        rc = lqa_json_write_file(p, j, err);
        free(p);
        json_decref(j);
    }
    if (!rc) rc = lqa_atomic_dir_commit(&ad, err);
    else if (ad.tmp) lqa_atomic_dir_abort(&ad);
    if (!rc) {
        lqa_kill_point("latest");
        p = lqa_path_join(r->ckpt_dir, "latest");
        rc = lqa_write_file_atomic(p, name, strlen(name), err);
        free(p);
    }
    if (!rc) prune_checkpoints(r->ckpt_dir, r->step, r->o->save_every, r->o->keep_checkpoints);
    free(final);
    return rc;
}

static int load_state_tensors(const char *path, lqa_optim *opt, lqa_err *err) {
    lqa_st_reader rd;
    if (lqa_st_open(&rd, path, err)) return -1;
    int rc = 0;
    char name[160];
    lqa_optim_to_host(opt); /* host copies to read into (a device run uploads them below) */
    for (int i = 0; i < opt->n_groups && !rc; i++) {
        lqa_optim_group *g = &opt->groups[i];
        float *dst[3] = {g->h_param, g->h_m, g->h_v};
        const char *prefix[3] = {"", "adam_m/", "adam_v/"};
        for (int k = 0; k < 3 && !rc; k++) {
            snprintf(name, sizeof name, "%s%s", prefix[k], g->name);
            const lqa_st_tensor *t = lqa_st_find(&rd, name);
            if (!t || t->numel != g->n || t->dtype != LQA_ST_F32)
                rc = lqa_err_set(err, "%s: tensor %s is missing or has the wrong size (a checkpoint of another run?)",
                                 path, name);
            else lqa_st_to_f32(t, dst[k]);
        }
    }
    lqa_st_close(&rd);
    if (!rc) lqa_optim_to_device(opt);
    return rc;
}

/* The checkpoint to resume from: the one `latest` names, which must be a complete step-N folder
 * inside checkpoints/; without `latest` (a run killed between a checkpoint and its switch), the
 * newest complete one. Caller frees. */
static char *resume_checkpoint_name(const char *ckpt_dir, lqa_err *err) {
    char *latest = lqa_path_join(ckpt_dir, "latest"), *name = NULL;
    struct stat st;
    if (lstat(latest, &st) != 0) {
        name = lqa_ckpt_newest(ckpt_dir);
        if (name) log_warn("%s is missing (a run killed while switching it); resuming from the newest complete "
                           "checkpoint, %s", latest, name);
        else lqa_err_set(err, "--resume: %s has no complete checkpoint", ckpt_dir);
        free(latest);
        return name;
    }
    size_t n = 0;
    if (lqa_read_file(latest, &name, &n, err)) {
        free(latest);
        return NULL;
    }
    while (n && (name[n - 1] == '\n' || name[n - 1] == ' ')) name[--n] = '\0';
    long step;
    int rc = 0;
    if (lqa_ckpt_name_step(name, &step) || strlen(name) != n)
        rc = lqa_err_set(err, "%s: holds \"%.60s\", expected the name of a checkpoint folder (step-NNNNNNNN) "
                         "inside %s", latest, name, ckpt_dir);
    else if (!lqa_ckpt_is_complete(ckpt_dir, name))
        rc = lqa_err_set(err, "%s names %s, which is not a complete checkpoint folder (state.json and "
                         "state.safetensors)", latest, name);
    free(latest);
    if (rc) {
        free(name);
        return NULL;
    }
    return name;
}

static int load_checkpoint(run *r, lqa_err *err) {
    char *name = resume_checkpoint_name(r->ckpt_dir, err);
    if (!name) return -1;
    char *dir = lqa_path_join(r->ckpt_dir, name);
    free(name);
    char *sp = lqa_path_join(dir, "state.json"), *tp = lqa_path_join(dir, "state.safetensors");
    json_t *j = lqa_json_load_file(sp, err);
    int rc = j ? 0 : -1;
    uint64_t want_bytes = 0, want_xxh = 0, bytes, xxh;
    if (!rc) rc = lqa_ckpt_check_state(j, sp, r->o->steps, &want_bytes, &want_xxh, err);
    if (!rc) rc = lqa_ckpt_digest_file(tp, &bytes, &xxh, err);
    if (!rc && (bytes != want_bytes || xxh != want_xxh))
        rc = lqa_err_set(err, "%s: %llu bytes with XXH64 %016llx, state.json recorded %llu bytes with %016llx: the "
                         "file was damaged after it was written", tp, (unsigned long long)bytes,
                         (unsigned long long)xxh, (unsigned long long)want_bytes, (unsigned long long)want_xxh);
    if (!rc) rc = load_state_tensors(tp, &r->opt, err);
    if (!rc) {
        r->step = (long)lqa_json_int(j, "step", -1);
        r->opt.t = (long)lqa_json_int(j, "optim_t", -1);
        r->elapsed_before = lqa_json_num(j, "elapsed", 0);
        if (r->step < 0 || r->opt.t < 0 || rng_from_json(json_object_get(j, "rng"), &r->rng))
            rc = lqa_err_set(err, "%s: \"step\", \"optim_t\" or \"rng\" missing", sp);
        else rc = load_data_state(r, j, sp, err);
    }
    if (!rc) log_info("resuming from %s (step %ld)", dir, r->step);
    if (j) json_decref(j);
    free(sp);
    free(tp);
    free(dir);
    return rc;
}

/* ---- metrics.jsonl ------------------------------------------------------------------------ */

/* Keeps the lines of steps <= last_step (a resumed run rewrites what came after). */
static int truncate_metrics(const char *path, long last_step, lqa_err *err) {
    if (!lqa_path_exists(path)) return 0;
    char *text;
    size_t n;
    if (lqa_read_file(path, &text, &n, err)) return -1;
    lqa_buf keep = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        long s = j ? (long)lqa_json_int(j, "step", -1) : -1;
        if (j) json_decref(j);
        if (s >= 1 && s <= last_step) {
            lqa_buf_puts(&keep, line);
            lqa_buf_putc(&keep, '\n');
        }
    }
    int rc = lqa_write_file_atomic(path, keep.data ? keep.data : "", keep.len, err);
    lqa_buf_free(&keep);
    free(text);
    return rc;
}

/* ---- config.json of the run --------------------------------------------------------------- */

static json_t *options_json(const lqa_train_opts *o) {
    char targets[64];
    lqa_lora_targets_format(o->lora_targets, targets, sizeof targets);
    json_t *j = json_pack("{s:s, s:s, s:s?, s:i, s:s, s:s, s:f, s:i, s:f, s:s, s:f, s:I, s:I, s:i, s:i, s:s, s:I,"
                          " s:s, s:i, s:I, s:I, s:i, s:b, s:f, s:f, s:f, s:f, s:f, s:b}",
                          "model", o->model_dir, "data", o->data_dir, "adapter", o->adapter_dir, "ctx", o->ctx,
                          "train", lqa_train_set_name(o->train), "attn", o->attn == LQA_ATTN_S2 ? "s2" : "full",
                          "group_ratio", (double)o->group_ratio, "lora_rank", o->lora_rank, "lora_alpha",
                          (double)o->lora_alpha, "lora_targets", targets, "lr", (double)o->lr, "warmup",
                          (json_int_t)o->warmup, "steps", (json_int_t)o->steps, "micro_batch", o->micro_batch,
                          "grad_accum", o->grad_accum, "schedule",
                          o->schedule == LQA_SCHED_COSINE ? "cosine" : "constant", "seed", (json_int_t)o->seed,
                          "device", o->device ? o->device : "cpu", "threads", o->threads, "save_every",
                          (json_int_t)o->save_every, "log_every", (json_int_t)o->log_every, "keep_checkpoints",
                          o->keep_checkpoints, "checkpointing", o->checkpointing, "max_grad_norm",
                          (double)o->max_grad_norm, "weight_decay", (double)o->weight_decay, "beta1",
                          (double)o->beta1, "beta2", (double)o->beta2, "adam_eps", (double)o->adam_eps, "pack",
                          o->pack);
    mallocCheck(j);
    if (o->full_attn_last) /* absent when 0: runs from before the flag resume as they were */
        json_object_set_new(j, "full_attn_last", json_integer((json_int_t)o->full_attn_last));
    if (o->data_weights) json_object_set_new(j, "data_weights", json_string(o->data_weights));
    return j;
}

/* data_info of config.json: the first source's kind and tokenizer, totals, and every source's
 * directory, resolved weight and counts. */
static json_t *data_info_json(const run *r) {
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

static uint64_t total_records(const run *r) {
    uint64_t n = 0;
    for (int i = 0; i < r->n_src; i++) n += lqa_shards_count(r->src[i].data);
    return n;
}

static json_t *run_config_json(const run *r, const lqa_step_opts *so, const mem_estimate *me, int group) {
    const lqa_train_opts *o = r->o;
    json_t *j = json_object();
    json_object_set_new(j, "options", options_json(o));
    json_object_set_new(j, "model_config", lqa_hf_config_json(&r->m.cfg, LQA_ST_F32));
    int ranks = lqa_dist_size(o->dist); /* [dist] */
    json_t *derived = json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:f, s:i}", "ranks", ranks, "global_batch",
                                o->micro_batch * o->grad_accum * ranks, "tokens_per_step",
                                o->micro_batch * o->grad_accum * ranks * o->ctx,
                                "trainable_params", (json_int_t)lqa_optim_numel(&r->opt), "base_params",
                                (json_int_t)r->m.n_params, "lora_params", (json_int_t)r->m.n_lora, "records",
                                (json_int_t)total_records(r), "rope_scale", (double)r->m.cfg.rope_scale,
                                "s2_group_size", group);
    json_t *mem = json_pack("{s:f, s:f, s:f, s:f, s:f}", "params_gib", gib(me->params), "grads_gib", gib(me->grads),
                            "optimizer_gib", gib(me->optim), "activations_gib", gib(me->activations), "total_gib",
                            gib(me->total));
    json_t *data = data_info_json(r);
    lqaCheck(derived && mem && data, "out of memory");
    json_object_set_new(j, "derived", derived);
    json_object_set_new(j, "memory_estimate", mem);
    json_object_set_new(j, "data_info", data);
    json_object_set_new(j, "threads_used", json_integer(so->threads));
    return j;
}

/* Comma lists of directories naming the same directories in the same order. */
static int same_dir_list(const char *a, const char *b) {
    if (!a || !b) return 0;
    char *ca = lqa_strdup(a), *cb = lqa_strdup(b), *sa = NULL, *sb = NULL;
    char *x = strtok_r(ca, ",", &sa), *y = strtok_r(cb, ",", &sb);
    while (x && y && lqa_same_path(x, y)) x = strtok_r(NULL, ",", &sa), y = strtok_r(NULL, ",", &sb);
    int same = !x && !y;
    free(ca);
    free(cb);
    return same;
}

/* [dist] The data position is global, so a run may resume on another rank count as long as
 * grad-accum x ranks (the micro-batches of a step) is the same. */
static int check_resume_global_batch(const json_t *old, const char *path, const lqa_train_opts *o, lqa_err *err) {
    long ga = (long)lqa_json_int(json_object_get(old, "options"), "grad_accum", 0);
    long ranks = (long)lqa_json_int(json_object_get(old, "derived"), "ranks", 1);
    long now = (long)o->grad_accum * lqa_dist_size(o->dist);
    if (ga * ranks == now) return 0;
    return lqa_err_set(err, "%s: the run was started with grad_accum %ld on %ld rank(s), %ld micro-batches per step; "
                       "this command gives grad_accum %d on %d rank(s); resume with grad-accum x ranks = %ld",
                       path, ga, ranks, ga * ranks, o->grad_accum, lqa_dist_size(o->dist), ga * ranks);
}

/* A resumed run must use the settings that shape its state and data stream. */
static int check_resume_settings(const char *path, const lqa_train_opts *o, lqa_err *err) {
    json_t *old = lqa_json_load_file(path, err);
    if (!old) return lqa_err_prefix(err, "--resume");
    json_t *now = options_json(o), *was = json_object_get(old, "options");
    static const char *const keys[] = {"ctx", "train", "attn", "group_ratio", "lora_rank", "lora_alpha", "lora_targets",
                                       "micro_batch", "seed", "data", "data_weights", "pack",
                                       "full_attn_last"};
    int rc = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !rc; i++) {
        json_t *a = json_object_get(was, keys[i]), *b = json_object_get(now, keys[i]);
        if (!strcmp(keys[i], "data") && same_dir_list(json_string_value(a), json_string_value(b))) continue;
        if (a != b && !(a && b && json_equal(a, b))) { /* absent on both sides counts as equal */
            char *sa = a ? json_dumps(a, JSON_ENCODE_ANY) : lqa_strdup("none");
            char *sb = b ? json_dumps(b, JSON_ENCODE_ANY) : lqa_strdup("none");
            rc = lqa_err_set(err, "%s: the run was started with %s %s, this command gives %s; resume with the same "
                             "settings", path, keys[i], sa, sb);
            free(sa);
            free(sb);
        }
    }
    if (!rc) rc = check_resume_global_batch(old, path, o, err); /* [dist] */
    json_decref(now);
    json_decref(old);
    return rc;
}

/* ---- setup -------------------------------------------------------------------------------- */

static int validate_opts(const lqa_train_opts *o, lqa_err *err) {
    if (!o->model_dir || !o->data_dir || !o->out_dir) return lqa_err_set(err, "--model, --data and --out are required");
    if (o->ctx <= 1) return lqa_err_set(err, "--ctx %d: expected a context length of at least 2 tokens", o->ctx);
    if (o->steps <= 0 || o->micro_batch <= 0 || o->grad_accum <= 0 || o->warmup < 0)
        return lqa_err_set(err, "--steps, --micro-batch and --grad-accum must be positive, --warmup >= 0");
    if (!(o->lr > 0)) return lqa_err_set(err, "--lr %g: expected a positive learning rate", (double)o->lr);
    if (o->lora_rank <= 0 || !(o->lora_alpha > 0)) return lqa_err_set(err, "--lora-rank and --lora-alpha must be positive");
    if (o->save_every <= 0 || o->log_every <= 0) return lqa_err_set(err, "--save-every and --log-every must be positive");
    if (o->full_attn_last && o->attn != LQA_ATTN_S2)
        return lqa_err_set(err, "--full-attn-last %ld: only with --attn s2 (every step is full attention already)",
                           o->full_attn_last);
    if (o->full_attn_last > o->steps)
        return lqa_err_set(err, "--full-attn-last %ld: more than --steps %ld", o->full_attn_last, o->steps);
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
static int resolve_weights(run *r, lqa_err *err) {
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
static int open_source(run *r, data_source *s, const char *tok_hex, lqa_err *err) {
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

static int open_data(run *r, lqa_err *err) {
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

static int prepare_out_dir(run *r, lqa_err *err) {
    r->ckpt_dir = lqa_path_join(r->o->out_dir, "checkpoints");
    char *latest = lqa_path_join(r->ckpt_dir, "latest"), *newest = lqa_ckpt_newest(r->ckpt_dir);
    struct stat st;
    int has_run = lstat(latest, &st) == 0 || newest != NULL;
    free(latest);
    free(newest);
    if (has_run && !r->o->resume)
        return lqa_err_set(err, "%s already holds a run (checkpoints/latest); pass --resume to continue it or choose "
                           "another --out", r->o->out_dir);
    if (!has_run && r->o->resume)
        return lqa_err_set(err, "--resume: %s has no checkpoint (checkpoints/latest)", r->o->out_dir);
    /* what a killed run left beside its files (config.json.tmp.PID, metrics.jsonl.tmp.PID, ...) */
    static const char *const files[] = {"config.json", "metrics.jsonl", "final"};
    for (int i = 0; i < 3; i++) lqa_clean_stale_temps(r->o->out_dir, files[i]);
    if (lqa_mkdir_p(r->ckpt_dir, err)) return -1;
    lqa_clean_stale_temps(r->ckpt_dir, NULL); /* also when no save follows (a resume at the last step) */
    return 0;
}

/* ---- the final artefact -------------------------------------------------------------------- */

/* final/ appears whole or not at all (lqa_atomic_dir; lqa_hf_save is atomic itself): an adapter
 * never exists without the lqa_training.json that carries the run's position interpolation. */
static int save_final(run *r, lqa_err *err) {
    lqa_model_to_backend(&r->m, lqa_backend_cpu()); /* the files are written from the host */
    char *dir = lqa_path_join(r->o->out_dir, "final");
    int rc;
    if (r->o->train == LQA_TRAIN_FULL) {
        lqa_hf_save_opts so = {LQA_ST_F32, 0, r->tokenizer_path};
        rc = lqa_hf_save(dir, &r->m, &so, err);
    } else {
        lqa_atomic_dir ad;
        rc = lqa_atomic_dir_begin(&ad, dir, err);
        if (!rc) rc = lqa_adapter_save(ad.tmp, &r->m, r->o->train, r->o->model_dir, err);
        lqa_kill_point("final");
        if (!rc) {
            /* what merge and adapter loading need for the extended model */
            json_t *j = json_pack("{s:i, s:f, s:i, s:s}", "ctx", r->o->ctx, "rope_scale", (double)r->m.cfg.rope_scale,
                                  "max_position_embeddings", r->m.cfg.max_pos, "train", lqa_train_set_name(r->o->train));
            char *p = lqa_path_join(ad.tmp, "lqa_training.json");
            rc = lqa_json_write_file(p, j, err);
            free(p);
            json_decref(j);
        }
        if (!rc) rc = lqa_atomic_dir_commit(&ad, err);
        else if (ad.tmp) lqa_atomic_dir_abort(&ad);
    }
    if (!rc) log_info("wrote %s", dir);
    free(dir);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* One metrics line; with several sources it ends with "rows_per_source" (this step's rows). */
static void write_metrics_line(FILE *f, const run *r, lqa_attn_mode attn, double loss, float lr, double gnorm,
                               long tokens, double tps, double elapsed, const char *extra) {
    fprintf(f, "{\"step\": %ld, \"attn\": \"%s\", \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %ld, "
               "\"tokens_per_s\": %.1f, \"elapsed\": %.3f", r->step, attn == LQA_ATTN_S2 ? "s2" : "full", loss,
            (double)lr, gnorm, tokens, tps, elapsed);
    if (r->n_src > 1) {
        fputs(", \"rows_per_source\": [", f);
        for (int i = 0; i < r->n_src; i++) fprintf(f, "%s%ld", i ? ", " : "", r->src[i].rows);
        fputc(']', f);
    }
    fputs(extra, f); /* [dist] */
    fputs("}\n", f);
    lqaCheck(fflush(f) == 0, "metrics.jsonl: write failed");
}

/* The step options of 0-based step `step`: S2-Attn until the last --full-attn-last steps. S2 alone
 * never shows the model a distance past its group; at small scale, full attention at evaluation
 * then fails past the group (docs/DEMO.md), and a short full-attention tail fixes that. */
static lqa_step_opts step_attention(const lqa_train_opts *o, const lqa_step_opts *so, long step) {
    lqa_step_opts s = *so;
    if (s.attn == LQA_ATTN_S2 && step >= o->steps - o->full_attn_last) {
        if (step == o->steps - o->full_attn_last) log_info("step %ld: full attention from here on", step + 1);
        s.attn = LQA_ATTN_FULL;
    }
    return s;
}

/* [dist] After the step's micro-batches: one all-reduce of every trained tensor's gradient (the
 * optimizer's groups packed in their order, so the sum over ranks is the single process's sum
 * over all micro-batches), then every rank's loss sum, tokens, data-loading and reduce seconds.
 * loss and tokens become the global sums; times gets each rank's data and reduce seconds. */
static int dist_reduce_step(run *r, double *loss, long *tokens, double data_s, double *times, lqa_err *err) {
    lqa_dist *d = r->o->dist;
    int P = lqa_dist_size(d), n = r->opt.n_groups;
    if (P == 1) {
        times[0] = data_s;
        times[1] = 0;
        return 0;
    }
    float **bufs = lqa_malloc(sizeof(float *) * (size_t)n);
    size_t *ns = lqa_malloc(sizeof(size_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        bufs[i] = (float *)r->opt.groups[i].grad;
        ns[i] = r->opt.groups[i].n;
    }
    /* the gradients live where the backend computes: NCCL reduces device buffers */
    int rc = lqa_dist_allreduce_tensors(d, bufs, ns, n, r->be->host_memory ? LQA_DIST_HOST : LQA_DIST_DEVICE, err);
    free(bufs);
    free(ns);
    if (rc) return -1;
    double mine[4] = {*loss, (double)*tokens, data_s, d->reduce_s};
    double *all = lqa_malloc(sizeof(double) * 4 * (size_t)P);
    lqa_dist_allgather(d, mine, 4, all);
    *loss = 0;
    *tokens = 0;
    for (int k = 0; k < P; k++) {
        *loss += all[4 * k];
        *tokens += (long)all[4 * k + 1];
        times[2 * k] = all[4 * k + 2];
        times[2 * k + 1] = all[4 * k + 3];
    }
    free(all);
    return 0;
}

/* [dist] With several ranks: the metrics line's "ranks", "data_s" and "reduce_s" (one per rank). */
static void dist_times_json(const run *r, const double *times, char *out, size_t outsz) {
    int P = lqa_dist_size(r->o->dist);
    out[0] = '\0';
    if (P == 1) return;
    lqa_buf b = {0};
    char num[48];
    snprintf(num, sizeof num, ", \"ranks\": %d", P);
    lqa_buf_puts(&b, num);
    for (int w = 0; w < 2; w++) {
        lqa_buf_puts(&b, w ? "], \"reduce_s\": [" : ", \"data_s\": [");
        for (int k = 0; k < P; k++) {
            snprintf(num, sizeof num, "%s%.4f", k ? ", " : "", times[2 * k + w]);
            lqa_buf_puts(&b, num);
        }
    }
    lqa_buf_putc(&b, ']');
    snprintf(out, outsz, "%s", b.data);
    lqa_buf_free(&b);
}

/* [dist] The log's line of each rank's data-loading and reduce seconds. */
static void log_rank_times(long step, const double *times, int ranks) {
    lqa_buf b = {0};
    char num[64];
    for (int k = 0; k < ranks; k++) {
        snprintf(num, sizeof num, "%s%d: %.3f/%.3f", k ? ", " : "", k, times[2 * k], times[2 * k + 1]);
        lqa_buf_puts(&b, num);
    }
    log_info("step %ld, seconds of data loading/all-reduce by rank: %s", step, b.data);
    lqa_buf_free(&b);
}

static int train_loop(run *r, const lqa_step_opts *so, lqa_err *err) {
    const lqa_train_opts *o = r->o;
    lqa_dist *d = o->dist; /* [dist] */
    int ranks = lqa_dist_size(d), me = lqa_dist_rank(d), root = lqa_dist_is_root(d);
    double *times = lqa_calloc(2 * (size_t)ranks, sizeof(double));
    char *times_json = lqa_malloc(64 + 40 * (size_t)ranks);
    batch_buf bb;
    batch_alloc(&bb, o->micro_batch, o->ctx);
    lqa_record rec;
    memset(&rec, 0, sizeof rec);
    char *mpath = lqa_path_join(o->out_dir, "metrics.jsonl");
    int rc = root ? truncate_metrics(mpath, r->step, err) : 0; /* [dist] rank 0 writes */
    FILE *mf = rc || !root ? NULL : fopenCheck(mpath, "a");
    lqa_progress prog;
    lqa_progress_start(&prog, "train", (double)o->steps, "step");
    double t0 = lqa_now();
    long start_step = r->step;
    int warned = 0;
    while (!rc && r->step < o->steps) {
        double ts = lqa_now();
        lqa_step_opts step_so = step_attention(o, so, r->step);
        lqa_optim_zero_grads(&r->opt);
        r->be->zero(r->scalars, 2 * sizeof(double));
        for (int i = 0; i < r->n_src; i++) r->src[i].rows = 0;
        double data_s = 0;
        long tokens = 0;
        /* [dist] the micro-batch order is global: every rank reads all grad_accum x ranks of them,
         * rank `me` computes me, me + ranks, ... (so a seed gives the same examples per step
         * whatever the rank count, and the data position in a checkpoint is the same on all) */
        for (int a = 0; a < o->grad_accum * ranks && !rc; a++) {
            double td = lqa_now();
            rc = fill_batch(r, &rec, &bb, &warned, err);
            data_s += lqa_now() - td;
            if (rc || a % ranks != me) continue;
            lqa_batch b = {bb.B, bb.T, bb.tokens, bb.mask, bb.seg};
            lqa_model_step_ws(&r->m, r->ws, &b, &step_so, &r->g, &r->scalars[0]);
            tokens += bb.real_tokens;
        }
        /* [dist] every rank OK and at this step, then the gradients summed over ranks */
        double loss_sum = 0;
        rc = lqa_dist_agree(d, rc, r->step, err);
        if (!rc && ranks > 1) r->be->to_host(&loss_sum, r->scalars, sizeof loss_sum);
        if (!rc) rc = dist_reduce_step(r, &loss_sum, &tokens, data_s, times, err);
        if (rc) break;
        /* the step's loss and gradient norm come to the host together, once per step (with
         * several ranks the loss sum went to the host for the gather above) */
        double host[2];
        lqa_optim_grad_sumsq(&r->opt, &r->scalars[1]);
        r->be->to_host(host, r->scalars, sizeof host);
        if (ranks == 1) loss_sum = host[0];
        double loss = loss_sum / (o->grad_accum * ranks);
        /* micro-batch gradients are means: average them, then clip the average */
        float avg = 1.0f / (float)(o->grad_accum * ranks);
        double gnorm = sqrt(host[1]) * avg;
        float lr = lqa_lr_at(r->step, o->steps, o->lr, o->warmup, o->schedule);
        lqa_optim_step(&r->opt, lr, avg * lqa_clip_scale(gnorm, o->max_grad_norm));
        r->step++;
        double now = lqa_now(), elapsed = r->elapsed_before + (now - t0);
        double tps = (double)tokens / (now - ts);
        dist_times_json(r, times, times_json, 64 + 40 * (size_t)ranks); /* [dist] */
        if (mf) write_metrics_line(mf, r, step_so.attn, loss, lr, gnorm, tokens, tps, elapsed, times_json);
        if (!isfinite(loss)) rc = lqa_err_set(err, "step %ld: the loss is %g; lower --lr or check the data", r->step, loss);
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", loss, tps);
        lqa_progress_set_extra(&prog, extra);
        lqa_progress_update(&prog, (double)r->step);
        if (r->step % o->log_every == 0 || r->step == o->steps) {
            double per = (now - t0) / (double)(r->step - start_step);
            log_info("step %ld/%ld loss %.4f lr %.3g grad_norm %.3f %.0f tok/s ETA %.0fs", r->step, o->steps, loss,
                     (double)lr, gnorm, tps, per * (double)(o->steps - r->step));
            if (ranks > 1) log_rank_times(r->step, times, ranks);
        }
        if (!rc && (r->step % o->save_every == 0 || r->step == o->steps)) {
            /* [dist] a checkpoint is complete only when every rank is at this step; rank 0 writes
             * it, and every rank learns whether that worked */
            rc = lqa_dist_agree(d, rc, r->step, err);
            if (!rc && root) rc = save_checkpoint(r, elapsed, err);
            rc = lqa_dist_agree(d, rc, r->step, err);
        }
    }
    lqa_progress_finish(&prog);
    if (mf) fcloseCheck(mf);
    free(mpath);
    lqa_record_free(&rec);
    batch_free(&bb);
    free(times);
    free(times_json);
    return rc;
}

static void run_free(run *r) {
    if (r->opt.groups) lqa_optim_free(&r->opt);
    lqa_workspace_free(r->ws);
    if (r->be) r->be->free(r->scalars);
    if (r->be) lqa_grads_free(&r->g, r->be);
    for (int i = 0; i < r->n_src; i++) {
        if (r->src[i].it.d) lqa_iter_free(&r->src[i].it);
        if (r->src[i].data) lqa_shards_close(r->src[i].data);
        free(r->src[i].dir);
    }
    free(r->src);
    free(r->cum);
    if (r->m.params) lqa_model_free(&r->m);
    free(r->ckpt_dir);
}

static int setup_and_run(run *r, lqa_err *err) {
    const lqa_train_opts *o = r->o;
    if (o->threads > 0) omp_set_num_threads(o->threads);
    lqa_step_opts so = {o->attn, o->group_ratio, o->train, o->checkpointing,
                        o->threads > 0 ? o->threads : omp_get_max_threads()};
    const char *device = o->device ? o->device : "cpu";
    char local[32];
    /* [dist] --device cuda with several ranks: this rank's local GPU, and NCCL over the ranks */
    if (!strcmp(device, "cuda") && lqa_dist_size(o->dist) > 1) {
        if (lqa_dist_use_gpu(o->dist, err)) return -1;
        snprintf(local, sizeof local, "cuda:%d", o->dist->gpu);
        device = local;
    }
    r->be = lqa_backend_open(device, err);
    if (!r->be) return -1;
    lqa_config cfg;
    if (lqa_hf_read_config(o->model_dir, &cfg, err)) return -1;
    lqa_apply_position_interpolation(&cfg, o->ctx);
    mem_estimate me = estimate_memory(&cfg, o, &so, r->be);
    if (check_memory(&me, o, r->be, err) || prepare_out_dir(r, err)) return -1;
    if (lqa_load_for_training(o->model_dir, o->adapter_dir, o->ctx, o->train, o->lora_targets, o->lora_rank,
                              o->lora_alpha, o->seed, &r->m, err))
        return -1;
    if (r->m.cfg.rope_scale != 1.0f)
        log_info("position interpolation: ctx %d, rope scale %g", o->ctx, (double)r->m.cfg.rope_scale);
    if (lqa_model_check_opts(&r->m, o->ctx, &so, err)) return -1;
    if (open_data(r, err)) return -1;
    lqa_model_to_backend(&r->m, r->be); /* from here on the host holds no copy of the model */
    if (o->dtype_bf16 && lqa_model_use_bf16(&r->m, o->train, err)) return -1;
    lqa_grads_alloc(&r->g, &r->m, o->train);
    lqa_adamw_cfg ac = {o->beta1, o->beta2, o->adam_eps, o->weight_decay};
    lqa_optim_init_on(&r->opt, &ac, r->be);
    lqa_for_each_trainable(&r->m, o->train, &r->g, add_group, &r->opt);
    lqa_rng_seed(&r->rng, o->seed ^ 0x7472616e);
    char *cpath = lqa_path_join(o->out_dir, "config.json");
    int rc = o->resume ? check_resume_settings(cpath, o, err) : 0;
    if (!rc && o->resume) rc = load_checkpoint(r, err);
    int group = o->attn == LQA_ATTN_S2 ? (int)lroundf((float)o->ctx * o->group_ratio) : 0;
    rc = lqa_dist_agree(o->dist, rc, r->step, err); /* [dist] every rank set up, at the same step */
    if (!rc && lqa_dist_is_root(o->dist)) {
        json_t *j = run_config_json(r, &so, &me, group);
        rc = lqa_json_write_file(cpath, j, err);
        json_decref(j);
    }
    rc = lqa_dist_agree(o->dist, rc, r->step, err); /* [dist] */
    free(cpath);
    if (!rc) log_info("training %s, %zu trainable parameters, %ld steps of %d tokens", lqa_train_set_name(o->train),
                      lqa_optim_numel(&r->opt), o->steps, o->micro_batch * o->grad_accum * o->ctx * lqa_dist_size(o->dist));
    if (!rc) {
        r->ws = lqa_workspace_new(&r->m, o->micro_batch, o->ctx, &so, 1);
        r->scalars = r->be->alloc(2 * sizeof(double));
        rc = train_loop(r, &so, err);
    }
    if (!rc && lqa_dist_is_root(o->dist)) rc = save_final(r, err); /* [dist] rank 0 writes */
    return rc;
}

int lqa_train_run(const lqa_train_opts *o, lqa_err *err) {
    if (lqa_dist_agree(o->dist, validate_opts(o, err), 0, err)) return -1; /* [dist] */
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    int rc = setup_and_run(&r, err);
    /* [dist] how the run ended, known to every rank: a rank that stopped early meets the others
     * here or at their next agreement (dist.h) */
    rc = lqa_dist_agree(o->dist, rc, rc ? -1 : r.step, err);
    run_free(&r);
    return rc;
}
