/* bench.c: `lqa-sft bench` (see bench.h), and the references it measures beside the step: peak
 * RSS and OpenBLAS sgemm's GFLOP/s on the same threads. */
#include "trainer/bench.h"

#include <cblas.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/progress.h"
#include "common/rng.h"
#include "kernels/common.h"
#include "model/flops.h"
#include "model/hfdir.h"
#include "model/presets.h"
#include "trainer/plan.h"
#include "trainer/train.h"

static double mib(double bytes) {
    return bytes / (1024.0 * 1024);
}

/* The process's peak resident set, MiB. */
static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Best-of-3 GFLOP/s of C[M,N] = A[M,K] B[N,K]^T by OpenBLAS itself on the training threads (the
 * kernels keep OpenBLAS single-threaded and split GEMMs over OpenMP, so the reference gets its
 * own thread count for the measurement and is put back afterwards). */
static double sgemm_gflops(int M, int N, int K) {
    openblas_set_num_threads(kernels_get_threads());
    float *a = lqa_malloc(sizeof(float) * (size_t)M * K), *b = lqa_malloc(sizeof(float) * (size_t)K * N),
          *c = lqa_malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t = lqa_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        t = lqa_now() - t;
        if (rep > 0 && t < best) best = t;
    }
    openblas_set_num_threads(1);
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best / 1e9;
}

/* The shape the bench runs: the preset's or the folder's, position-interpolated to ctx. */
static int bench_config(const lqa_train_opts *o, lqa_config *cfg, lqa_err *err) {
    if (o->preset) {
        const lqa_preset *p = lqa_preset_find(o->preset);
        if (!p) return lqa_err_set(err, "--preset '%s': no such preset (lqa-sft init --help lists them)", o->preset);
        *cfg = p->cfg;
    } else if (lqa_hf_read_config(o->model_dir, cfg, err)) {
        return -1;
    }
    lqa_apply_position_interpolation(cfg, o->ctx);
    return 0;
}

/* The model on be: a preset's random weights made in be's memory (lqa_model_init_tiled: one
 * 64 MB upload, the rest device copies; the host never holds the model; with bf16 made in the
 * bf16 layout, so the device never holds fp32 frozen weights either), or the folder loaded
 * and moved (with --dtype bf16 loaded straight into the device bf16 layout). */
static int bench_model(const lqa_train_opts *o, const lqa_config *cfg, const lqa_backend *be, lqa_model *m,
                       lqa_err *err) {
    if (o->preset && o->dtype_bf16) { /* straight into the bf16 layout: no fp32 copy of the frozen weights */
        if (lqa_model_bf16_check(be, cfg, o->train, err)) return -1;
        lqa_model_alloc_bf16(m, cfg, be);
        lqa_model_add_lora(m, o->lora_targets, o->lora_rank, o->lora_alpha, o->seed);
        lqa_model_to_backend(m, be);
        lqa_model_init_tiled(m, o->seed);
    } else if (o->preset) {
        lqa_model_shape(m, cfg);
        if (o->train != LQA_TRAIN_FULL) lqa_model_add_lora(m, o->lora_targets, o->lora_rank, o->lora_alpha, o->seed);
        lqa_model_alloc_on(m, be);
        lqa_model_init_tiled(m, o->seed);
    } else {
        if (lqa_load_for_training_on(o, be, m, err)) return -1;
        lqa_model_to_backend(m, be);
    }
    if (o->dtype_bf16 && lqa_model_use_bf16(m, o->train, err)) {
        lqa_model_free(m);
        return -1;
    }
    return 0;
}

/* What every JSON line of the bench starts with: the configuration and its model FLOPs per token. */
static json_t *bench_json_head(const lqa_train_opts *o, const lqa_config *cfg, const lqa_step_opts *so) {
    json_t *j = json_pack("{s:s, s:i, s:i, s:s, s:s, s:i, s:b, s:s, s:s}", "model", o->preset ? o->preset : o->model_dir,
                          "ctx", o->ctx, "micro_batch", o->micro_batch, "attn", so->attn == LQA_ATTN_S2 ? "s2" : "full",
                          "train", lqa_train_set_name(o->train), "threads", so->threads, "checkpointing",
                          so->checkpointing, "device", o->device ? o->device : "cpu", "dtype",
                          o->dtype_bf16 ? "bf16" : "fp32");
    mallocCheck(j);
    json_object_set_new(j, "model_gflop_per_token", json_real(lqa_model_flops_per_token(cfg, o->ctx, so) / 1e9));
    return j;
}

static void print_json(json_t *j) {
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    mallocCheck(text);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(j);
}

/* The plan's total against the free memory: LQA_BENCH_DOES_NOT_FIT (its line printed) when it
 * is over, as `lqa-sft train` refuses to start. */
static int check_fit(const lqa_train_opts *o, const lqa_config *cfg, const lqa_step_opts *so, const lqa_backend *be,
                     size_t *plan_total, lqa_err *err) {
    if (o->dtype_bf16 && be->host_memory)
        return lqa_err_set(err, "--dtype bf16: the %s backend has no bf16 kernels; use --device cuda", be->name);
    lqa_plan_opts po = {o->dtype_bf16 ? LQA_PLAN_BF16_RUN : LQA_PLAN_FP32, o->train, o->lora_targets, o->lora_rank,
                        o->lora_alpha, o->micro_batch, o->ctx, *so, 1};
    lqa_plan p;
    if (lqa_plan_training(cfg, &po, be, &p, err)) return -1;
    *plan_total = p.total;
    size_t free_bytes = 0, total_bytes = 0;
    be->mem_info(&free_bytes, &total_bytes);
    if (p.total <= free_bytes) return 0;
    json_t *j = bench_json_head(o, cfg, so);
    char msg[256];
    snprintf(msg, sizeof msg, "does not fit: the memory plan needs %.2f GiB (lqa-sft plan), %.2f GiB are free on %s",
             mib((double)p.total) / 1024, mib((double)free_bytes) / 1024, be->name);
    json_object_set_new(j, "fits", json_false());
    json_object_set_new(j, "plan_mib", json_real(mib((double)p.total)));
    json_object_set_new(j, "free_mib", json_real(mib((double)free_bytes)));
    json_object_set_new(j, "error", json_string(msg));
    print_json(j);
    fprintf(stderr, "lqa-sft bench: %s\n", msg);
    return LQA_BENCH_DOES_NOT_FIT;
}

static void add_group(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora) {
    lqa_optim_add(ctx, ti->name, param, grad, ti->numel, strstr(ti->name, "norm.weight") == NULL);
}

/* Device memory in use (the backend's total - free), bytes; 0 on the host. */
static double device_used(const lqa_backend *be) {
    size_t free_bytes = 0, total_bytes = 0;
    if (be->host_memory) return 0;
    be->mem_info(&free_bytes, &total_bytes);
    return (double)(total_bytes - free_bytes);
}

typedef struct bench_times {
    double mean, best, loss;
    double device_used; /* device memory in use after the steps, all their buffers still held */
} bench_times;

/* o->steps timed steps after one warm-up (the first touch of every buffer). */
static bench_times time_steps(lqa_model *m, const lqa_train_opts *o, const lqa_step_opts *so) {
    const lqa_backend *be = lqa_model_backend(m);
    int B = o->micro_batch, T = o->ctx;
    size_t n = (size_t)B * T;
    int32_t *tok = lqa_malloc(n * sizeof(int32_t));
    uint8_t *mask = lqa_malloc(n);
    lqa_rng rng;
    lqa_rng_seed(&rng, o->seed);
    for (size_t i = 0; i < n; i++) {
        tok[i] = (int32_t)lqa_rng_below(&rng, (uint64_t)m->cfg.vocab_size);
        mask[i] = i % (size_t)T != 0;
    }
    lqa_grads g;
    lqa_grads_alloc(&g, m, o->train);
    lqa_adamw_cfg ac = {o->beta1, o->beta2, o->adam_eps, o->weight_decay};
    lqa_optim opt;
    lqa_optim_init_on(&opt, &ac, be);
    lqa_for_each_trainable(m, o->train, &g, add_group, &opt);
    lqa_batch b = {B, T, tok, mask, NULL};
    /* the trainer's own step: a workspace planned once, loss read back once per step; its two
     * scalars (loss, gradient norm) as the trainer allocates them, so the plan is what is held */
    lqa_workspace *ws = lqa_workspace_new(m, B, T, so, 1);
    double *scalars = be->alloc(2 * sizeof(double));
    bench_times r = {0, 1e30, 0, 0};
    for (long s = 0; s <= o->steps; s++) {
        double t = lqa_now();
        lqa_optim_zero_grads(&opt);
        be->zero(scalars, sizeof(double));
        lqa_model_step_ws(m, ws, &b, so, &g, scalars);
        lqa_optim_step(&opt, o->lr, 1.0f);
        be->to_host(&r.loss, scalars, sizeof r.loss); /* waits for the step */
        t = lqa_now() - t;
        if (s == 0) continue;
        r.mean += t / (double)o->steps;
        if (t < r.best) r.best = t;
    }
    r.device_used = device_used(be); /* nothing is allocated or freed inside the steps */
    lqa_workspace_free(ws);
    be->free(scalars);
    lqa_optim_free(&opt);
    lqa_grads_free(&g, be);
    free(tok);
    free(mask);
    return r;
}

int lqa_bench_run(const lqa_train_opts *o, lqa_err *err) {
    if (o->threads > 0) omp_set_num_threads(o->threads);
    lqa_step_opts so = {o->attn, o->group_ratio, o->train, o->checkpointing,
                        o->threads > 0 ? o->threads : omp_get_max_threads(), o->mlp_rows};
    const lqa_backend *be = lqa_backend_open(o->device ? o->device : "cpu", err);
    if (!be) return -1;
    lqa_config cfg;
    if (bench_config(o, &cfg, err)) return -1;
    lqa_model m;
    lqa_model_shape(&m, &cfg); /* the S2 check first: the plan needs a valid group */
    int rc = lqa_model_check_opts(&m, o->ctx, &so, err);
    lqa_model_free(&m);
    size_t plan_total = 0;
    if (!rc) rc = check_fit(o, &cfg, &so, be, &plan_total, err);
    if (rc) return rc;
    double used0 = device_used(be);
    if (bench_model(o, &cfg, be, &m, err)) return -1;
    bench_times t = time_steps(&m, o, &so);
    int B = o->micro_batch, T = o->ctx;
    double n = (double)B * T, tps = n / t.mean;
    lqa_step_flops f = lqa_count_step_flops(&m, B, T, &so);
    double model_flops = lqa_model_flops_per_token(&m.cfg, T, &so);
    json_t *j = bench_json_head(o, &m.cfg, &so);
    json_t *k = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "step_s_mean", t.mean, "step_s_best",
                          t.best, "tokens_per_s", tps, "gflop_per_step", f.total / 1e9, "attn_gflop_per_step",
                          f.attention / 1e9, "gflops", f.total / t.mean / 1e9, "peak_rss_mib", peak_rss_mib(), "plan_mib", mib((double)plan_total),
                          "loss", t.loss, "params_m", (double)m.n_params / 1e6);
    mallocCheck(k);
    json_object_update(j, k);
    json_decref(k);
    if (o->peak_tflops > 0) json_object_set_new(j, "mfu", json_real(model_flops * tps / (o->peak_tflops * 1e12)));
    if (!be->host_memory) {
        /* the run's own: what it took since the start (not the CUDA context), and all in use */
        json_object_set_new(j, "peak_device_mib", json_real(mib(t.device_used - used0)));
        json_object_set_new(j, "device_mem_used_mib", json_real(mib(t.device_used)));
    }
    if (o->sgemm_n) {
        json_object_set_new(j, "sgemm_square_n", json_integer(o->sgemm_n));
        json_object_set_new(j, "sgemm_square_gflops", json_real(sgemm_gflops(o->sgemm_n, o->sgemm_n, o->sgemm_n)));
        json_object_set_new(j, "sgemm_layer_gflops", json_real(sgemm_gflops((int)n, m.cfg.hidden_dim, m.cfg.dim)));
    }
    print_json(j);
    lqa_model_free(&m);
    return 0;
}
