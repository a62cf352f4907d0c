/* train.c: the `lqa-sft train` loop: model loading with its checks (S2-Attn ctx, memory
 * estimate), micro-batches with gradient accumulation, AdamW, metrics, progress, config.json,
 * and the final adapter or model. The data sources and micro-batches are data.c's, the
 * checkpoints ckpt_run.c's (run.h holds the state they share). See train.h. */
#include "trainer/train.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/safetensors.h"
#include "model/adapter.h"
#include "trainer/dist.h"
#include "model/hfdir.h"
#include "trainer/plan.h"
#include "model/presets.h"
#include "trainer/run.h"

/* ---- model -------------------------------------------------------------------------------- */

float lqa_apply_position_interpolation(lqa_config *cfg, int ctx) {
    if (ctx > cfg->max_pos) {
        cfg->rope_scale *= (float)ctx / (float)cfg->max_pos;
        cfg->max_pos = ctx;
    }
    return cfg->rope_scale;
}

int lqa_load_for_training(const lqa_train_opts *o, lqa_model *m, lqa_err *err) {
    return lqa_load_for_training_on(o, NULL, m, err);
}

int lqa_load_for_training_on(const lqa_train_opts *o, const lqa_backend *be, lqa_model *m, lqa_err *err) {
    int bf16 = o->dtype_bf16 && be; /* the bf16 layout, straight into be's memory */
    if (bf16 ? lqa_hf_load_bf16(o->model_dir, m, be, o->train, err) : lqa_hf_load(o->model_dir, m, err)) return -1;
    int rc = 0;
    if (o->adapter_dir) {
        /* the adapter's own interpolation first; a longer ctx then extends from there */
        rc = lqa_adapter_load(o->adapter_dir, m, err);
        if (!rc && o->train == LQA_TRAIN_FULL) lqa_model_merge_lora(m); /* full training starts from the merge */
    } else if (o->train != LQA_TRAIN_FULL) {
        lqa_model_add_lora(m, o->lora_targets, o->lora_rank, o->lora_alpha, o->seed);
    }
    if (!rc && o->ctx > 0) lqa_apply_position_interpolation(&m->cfg, o->ctx);
    if (rc) lqa_model_free(m);
    return rc;
}

void lqa_for_each_trainable(lqa_model *m, lqa_train_set train, const lqa_grads *g, lqa_trainable_fn fn, void *ctx) {
    for (int i = 0; i < m->n_tensors; i++) {
        const lqa_tensor_info *ti = &m->tensors[i];
        if (train == LQA_TRAIN_LORA || (train == LQA_TRAIN_LORA_PLUS && !lqa_is_lora_plus_tensor(ti->name))) continue;
        fn(ctx, ti, m->params || m->params_lp ? lqa_model_base_f32(m, i) : NULL, lqa_grads_tensor(g, m, i), 0);
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

static void add_group(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora) {
    lqa_optim *opt = ctx;
    /* no decay on norms, as HF Trainer excludes them */
    int decay = strstr(ti->name, "norm.weight") == NULL;
    lqa_optim_add(opt, ti->name, param, grad, ti->numel, decay);
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

static json_t *run_config_json(const train_run *r, const lqa_step_opts *so, const mem_estimate *me, int group) {
    const lqa_train_opts *o = r->o;
    json_t *j = json_object();
    json_object_set_new(j, "options", lqa_train_opts_json(o));
    json_object_set_new(j, "model_config", lqa_hf_config_json(&r->m.cfg, LQA_ST_F32));
    int ranks = lqa_dist_size(o->dist); /* [dist] */
    json_t *derived = json_pack("{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:f, s:i}", "ranks", ranks, "global_batch",
                                o->micro_batch * o->grad_accum * ranks, "tokens_per_step",
                                o->micro_batch * o->grad_accum * ranks * o->ctx,
                                "trainable_params", (json_int_t)lqa_optim_numel(&r->opt), "base_params",
                                (json_int_t)r->m.n_params, "lora_params", (json_int_t)r->m.n_lora, "records",
                                (json_int_t)train_total_records(r), "rope_scale", (double)r->m.cfg.rope_scale,
                                "s2_group_size", group);
    json_t *mem = json_pack("{s:f, s:f, s:f, s:f, s:f}", "params_gib", gib(me->params), "grads_gib", gib(me->grads),
                            "optimizer_gib", gib(me->optim), "activations_gib", gib(me->activations), "total_gib",
                            gib(me->total));
    json_t *data = train_data_info_json(r);
    lqaCheck(derived && mem && data, "out of memory");
    json_object_set_new(j, "derived", derived);
    json_object_set_new(j, "memory_estimate", mem);
    json_object_set_new(j, "data_info", data);
    json_object_set_new(j, "threads_used", json_integer(so->threads));
    return j;
}

/* ---- setup -------------------------------------------------------------------------------- */

/* ---- the final artefact -------------------------------------------------------------------- */

/* final/ appears whole or not at all (lqa_atomic_dir; lqa_hf_save is atomic itself): an adapter
 * never exists without the lqa_training.json that carries the run's position interpolation. */
static int save_final(train_run *r, lqa_err *err) {
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
static void write_metrics_line(FILE *f, const train_run *r, lqa_attn_mode attn, double loss, float lr, double gnorm,
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
static int dist_reduce_step(train_run *r, double *loss, long *tokens, double data_s, double *times, lqa_err *err) {
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
static void dist_times_json(const train_run *r, const double *times, char *out, size_t outsz) {
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

static int train_loop(train_run *r, const lqa_step_opts *so, lqa_err *err) {
    const lqa_train_opts *o = r->o;
    lqa_dist *d = o->dist; /* [dist] */
    int ranks = lqa_dist_size(d), me = lqa_dist_rank(d), root = lqa_dist_is_root(d);
    double *times = lqa_calloc(2 * (size_t)ranks, sizeof(double));
    char *times_json = lqa_malloc(64 + 40 * (size_t)ranks);
    batch_buf bb;
    train_batch_alloc(&bb, o->micro_batch, o->ctx);
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
            rc = train_fill_batch(r, &rec, &bb, &warned, err);
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
            if (!rc && root) rc = train_ckpt_save(r, elapsed, err);
            rc = lqa_dist_agree(d, rc, r->step, err);
        }
    }
    lqa_progress_finish(&prog);
    if (mf) fcloseCheck(mf);
    free(mpath);
    lqa_record_free(&rec);
    train_batch_free(&bb);
    free(times);
    free(times_json);
    return rc;
}

static void run_free(train_run *r) {
    if (r->opt.groups) lqa_optim_free(&r->opt);
    lqa_workspace_free(r->ws);
    if (r->be) r->be->free(r->scalars);
    if (r->be) lqa_grads_free(&r->g, r->be);
    train_data_free(r);
    if (r->m.tensors) lqa_model_free(&r->m);
    free(r->ckpt_dir);
}

static int setup_and_run(train_run *r, lqa_err *err) {
    const lqa_train_opts *o = r->o;
    if (o->threads > 0) omp_set_num_threads(o->threads);
    lqa_step_opts so = {o->attn, o->group_ratio, o->train, o->checkpointing,
                        o->threads > 0 ? o->threads : omp_get_max_threads(), o->mlp_rows};
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
    if (check_memory(&me, o, r->be, err) || train_prepare_out_dir(r, err)) return -1;
    if (lqa_load_for_training_on(o, r->be, &r->m, err)) return -1;
    if (r->m.cfg.rope_scale != 1.0f)
        log_info("position interpolation: ctx %d, rope scale %g", o->ctx, (double)r->m.cfg.rope_scale);
    if (lqa_model_check_opts(&r->m, o->ctx, &so, err)) return -1;
    if (train_open_data(r, err)) return -1;
    lqa_model_to_backend(&r->m, r->be); /* from here on the host holds no copy of the model */
    if (o->dtype_bf16 && lqa_model_use_bf16(&r->m, o->train, err)) return -1;
    lqa_grads_alloc(&r->g, &r->m, o->train);
    lqa_adamw_cfg ac = {o->beta1, o->beta2, o->adam_eps, o->weight_decay};
    lqa_optim_init_on(&r->opt, &ac, r->be);
    lqa_for_each_trainable(&r->m, o->train, &r->g, add_group, &r->opt);
    char *cpath = lqa_path_join(o->out_dir, "config.json");
    int rc = o->resume ? lqa_train_opts_check_resume(cpath, o, err) : 0;
    if (!rc && o->resume) rc = train_ckpt_load(r, err);
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
    if (lqa_dist_agree(o->dist, lqa_train_opts_validate(o, err), 0, err)) return -1; /* [dist] */
    train_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    int rc = setup_and_run(&r, err);
    /* [dist] how the run ended, known to every rank: a rank that stopped early meets the others
     * here or at their next agreement (dist.h) */
    rc = lqa_dist_agree(o->dist, rc, rc ? -1 : r.step, err);
    run_free(&r);
    return rc;
}
