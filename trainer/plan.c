/* plan.c: the memory plan of a training run (plan.h) and `lqa-sft plan`. */
#include "trainer/plan.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "kernels/common.h"
#include "kernels/crossentropy_bf16.h"
#include "kernels/matmul_bf16.h"
#include "model/adapter.h"
#include "model/hfdir.h"
#include "model/presets.h"
#include "trainer/train.h"

/* What the CUDA backend allocates for itself during training: the sum-of-squares partials
 * (kernels/cuda/adamw.cu, SUMSQ_MAX_BLOCKS doubles, on the first optimizer step) and, for bf16,
 * cuBLASLt's workspace (kernels/cuda/matmul_bf16.cu, LT_WORKSPACE). The trainer's two scalars
 * (loss and gradient sum of squares) are one allocation of 2 doubles on either backend. */
enum { CUDA_SUMSQ_BYTES = 256 * 8, CUDA_LT_WORKSPACE_BYTES = 32 << 20, TRAINER_SCALARS_BYTES = 2 * 8 };

static size_t cuda_attention_scratch_none(const attn_params *p) {
    (void)p;
    return 0; /* as kernels/cuda/backend.cu: attention_forward_cuda / backward_cuda take no scratch */
}

/* As attention_bf16_io_scratch_bytes (kernels/cuda/linear_bf16.cu, CUDA builds only): bf16 q,
 * out and dout [B, Tq, H, hd], k and v [B, Tk, KV, hd]. test_train_emu keeps the two equal. */
static size_t cuda_attention_bf16_scratch(const attn_params *p) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    return 2 * (3 * nq + 2 * nk);
}

const lqa_backend *lqa_plan_backend(const char *device) {
    static lqa_backend cuda_sizing;
    if (!device || !strcmp(device, "cpu")) return lqa_backend_cpu();
    if (strcmp(device, "cuda") && strncmp(device, "cuda:", 5)) return NULL;
    cuda_sizing = *lqa_backend_cpu();
    cuda_sizing.name = "cuda";
    cuda_sizing.host_memory = 0;
    cuda_sizing.attention_scratch_floats = cuda_attention_scratch_none;
    cuda_sizing.attention_bf16_scratch_bytes = cuda_attention_bf16_scratch;
    return &cuda_sizing;
}

/* Elements that train in base tensors (embedding and norms for lora+, all for full). */
static size_t trained_base(const lqa_model *m, lqa_train_set train) {
    size_t n = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (train == LQA_TRAIN_FULL || (train == LQA_TRAIN_LORA_PLUS && lqa_is_lora_plus_tensor(m->tensors[t].name)))
            n += m->tensors[t].numel;
    return n;
}

/* fp32, and today's --dtype bf16 run: exactly what the run allocates (train.c's setup). m is a
 * shape (nothing allocated); for BF16_RUN its params16 is marked so the planner sizes the bf16
 * checkpoints and staging, as the run's bf16 layout does. The run's bf16 layout (model.h): frozen GEMM
 * weights bf16 (params16), embedding and norms fp32 (params_lp; lora+ trains them, lora keeps them
 * frozen), LoRA fp32, the per-layer checkpoints bf16. */
static void plan_fp32(lqa_model *m, const lqa_plan_opts *o, const lqa_backend *be, lqa_plan *p) {
    int bf16_run = o->dtype == LQA_PLAN_BF16_RUN;
    static char marker;
    if (bf16_run) m->params16 = &marker;
    size_t base_trained = trained_base(m, o->train), lora = o->train == LQA_TRAIN_FULL ? 0 : m->n_lora;
    p->n_trained = base_trained + lora;
    p->weights = 4 * (m->n_params - base_trained) + 4 * (m->n_lora - lora);
    p->trainables = 4 * (base_trained + lora);
    p->gradients = 4 * (lqa_grads_params_floats(m, o->train) + lora);
    if (o->ranks > 1) p->gradients += 4 * p->n_trained; /* the all-reduce's packed buffer */
    p->optimizer = 8 * p->n_trained;
    size_t ws = lqa_workspace_bytes_split(m, be, o->micro_batch, o->ctx, &o->step, 1, &p->checkpoints);
    p->workspace = ws - p->checkpoints;
    p->runtime = TRAINER_SCALARS_BYTES + (be->host_memory ? 0 : CUDA_SUMSQ_BYTES);
    if (bf16_run) {
        p->weights = 2 * m->n_params16 + 4 * (m->n_lora_plus - base_trained) + 4 * (m->n_lora - lora);
        p->runtime += CUDA_LT_WORKSPACE_BYTES;
        m->params16 = NULL;
    }
    p->allocated = 1;
}

/* bf16: the design's layout (docs/CUDA.md "Memory plan"). Frozen GEMM weights bf16 (2 B), frozen
 * norms fp32; what trains has fp32 masters, gradients and moments, plus a bf16 copy when a GEMM
 * reads it (a tied lm_head; LoRA's small A and B are rounded per call, into the workspace); the
 * checkpoints are the layer inputs in bf16; the workspace is one layer's recompute and backward
 * (the MLP in row chunks), bf16 where values are only read by a GEMM or attention, fp32 where
 * values are summed. */
static void plan_bf16(const lqa_model *m, const lqa_plan_opts *o, lqa_plan *p) {
    const lqa_config *c = &m->cfg;
    size_t N = (size_t)o->micro_batch * o->ctx, T = (size_t)o->ctx, D = c->dim, hd = D / c->n_heads,
           Hq = (size_t)c->n_heads * hd, Hkv = (size_t)c->n_kv_heads * hd, F = c->hidden_dim, H = c->n_heads,
           L = c->n_layers, V = c->vocab_size;
    size_t lora = o->train == LQA_TRAIN_FULL ? 0 : m->n_lora;
    p->n_trained = trained_base(m, o->train) + lora;
    p->weights = 0; /* LoRA's A and B: rounded to bf16 per call, into the workspace (below) */
    for (int t = 0; t < m->n_tensors; t++) {
        const lqa_tensor_info *ti = &m->tensors[t];
        int trained = o->train == LQA_TRAIN_FULL ||
                      (o->train == LQA_TRAIN_LORA_PLUS && lqa_is_lora_plus_tensor(ti->name));
        int gemm = ti->ndim == 2 && (t != 0 || c->tie_embeddings); /* the embedding alone is a lookup */
        if (gemm) p->weights += 2 * ti->numel;
        else if (!trained) p->weights += (ti->ndim == 1 ? 4 : 2) * ti->numel;
    }
    p->trainables = 4 * p->n_trained;
    p->gradients = 4 * p->n_trained * (o->ranks > 1 ? 2 : 1);
    p->optimizer = 8 * p->n_trained;
    size_t r = m->n_lora ? (size_t)m->lora_rank : 0, n_targets = 0;
    size_t io = F > D ? (F > Hq ? F : Hq) : (D > Hq ? D : Hq); /* every linear's In and Out at most */
    for (int i = 0; i < 7; i++) n_targets += m->n_lora && (m->lora_targets >> i & 1);
    /* one layer's forward values, live from its recompute through its backward */
    size_t layer = 2 * N * D + 4 * N + 2 * N * (Hq + 2 * Hkv) + 2 * N * Hq + 4 * N * H + 4 * N * D + 4 * N +
                   2 * N * D + 2 * N * r * n_targets;
    size_t chunk = o->step.mlp_rows > 0 ? (size_t)o->step.mlp_rows : LQA_MLP_ROWS, rows = N < chunk ? N : chunk;
    size_t mlp = rows * F * (3 * 2 + 4 + 2 * 2); /* g, u, h bf16; dh fp32; dg, du bf16 */
    size_t backward = 4 * N * D + 2 * N * D     /* dx (fp32, also the forward's layer output) + bf16 copy */
                      + 4 * N * D               /* dxn */
                      + 6 * N * Hq              /* datt fp32 + bf16 */
                      + 6 * N * (Hq + 2 * Hkv)  /* dq, dk, dv fp32 (attention's outputs) + bf16 */
                      + lora_bf16_scratch_bytes(N, io, io, r); /* LoRA: bf16 A, B, dt */
    int ce_rows = (1 << 22) / (int)V < 16 ? 16 : (1 << 22) / (int)V > 1024 ? 1024 : (1 << 22) / (int)V;
    if ((size_t)ce_rows > N) ce_rows = (int)N;
    size_t head = 2 * N * D + 4 * N + 4 * N * D + crossentropy_bf16_scratch_bytes(ce_rows, (int)D, (int)V);
    size_t batch = 4 * 4 * N + 4 * T * hd + 8; /* tokens, segments, targets, rows; RoPE cos/sin; loss */
    p->checkpoints = 2 * (L + 1) * N * D;
    if (!o->step.checkpointing) p->checkpoints += (L - 1) * layer; /* every layer keeps its values */
    p->workspace = layer + mlp + backward + head + batch;
    p->runtime = TRAINER_SCALARS_BYTES + CUDA_SUMSQ_BYTES + CUDA_LT_WORKSPACE_BYTES;
    p->allocated = 0;
}

int lqa_plan_training(const lqa_config *cfg, const lqa_plan_opts *o, const lqa_backend *be, lqa_plan *p,
                      lqa_err *err) {
    memset(p, 0, sizeof *p);
    if (o->dtype != LQA_PLAN_FP32 && be->host_memory)
        return lqa_err_set(err, "--dtype bf16 is the CUDA layout: plan it with --device cuda");
    if (o->dtype == LQA_PLAN_BF16_RUN && o->train == LQA_TRAIN_FULL)
        return lqa_err_set(err, "--dtype bf16 with --train full: the run refuses it (not yet)");
    lqa_model shape; /* the model's layout alone: nothing allocated */
    lqa_model_shape(&shape, cfg);
    if (o->train != LQA_TRAIN_FULL) lqa_model_shape_lora(&shape, o->lora_targets, o->lora_rank, o->lora_alpha);
    p->n_params = shape.n_params;
    if (o->dtype == LQA_PLAN_BF16) plan_bf16(&shape, o, p);
    else plan_fp32(&shape, o, be, p);
    p->total = p->weights + p->trainables + p->gradients + p->optimizer + p->checkpoints + p->workspace + p->runtime;
    lqa_model_free(&shape);
    return 0;
}

/* ---- lqa-sft plan ---------------------------------------------------------------------------- */

static void plan_help(void) {
    printf("usage: lqa-sft plan --model DIR|--preset NAME --ctx N [--device cpu|cuda] [--dtype fp32|bf16]\n"
           "                    [--train lora+|lora|full] [--attn s2|full] [--micro-batch N] [--json]\n"
           "Prints the memory a training run needs, by kind, without a GPU. fp32 is exactly what the run\n"
           "allocates; bf16 is the design's layout (and bf16_run_total what today's --dtype bf16 allocates).\n"
           "  --group-ratio R, --lora-rank N, --lora-alpha A, --lora-targets LIST, --checkpointing on|off,\n"
           "  --mlp-rows N, --threads N (CPU attention scratch), --ranks N (data-parallel ranks) as for train\n");
}

enum { P_MODEL = 256, P_PRESET, P_CTX, P_DEVICE, P_DTYPE, P_TRAIN, P_ATTN, P_MB, P_JSON, P_GROUP, P_RANK,
       P_ALPHA, P_TARGETS, P_CKPT, P_THREADS, P_RANKS, P_MLP_ROWS, P_HELP };

/* arg is the user's: the line is printed escaped (common/escape.h). */
static int plan_usage(const char *fmt, const char *arg) {
    char msg[2048];
    snprintf(msg, sizeof msg, fmt, arg);
    lqa_eprintf("lqa-sft plan: %s (lqa-sft plan --help)", msg);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static double gb(size_t b) { return (double)b / 1e9; }
static double gib(size_t b) { return (double)b / (1024.0 * 1024 * 1024); }

static void print_plan(const lqa_plan *p, const char *what, int json, const lqa_plan *run) {
    size_t run_total = run ? run->total : 0;
    const char *kinds[] = {"weights", "trainables", "gradients", "optimizer", "checkpoints", "workspace", "runtime",
                           "total"};
    size_t vals[] = {p->weights, p->trainables, p->gradients, p->optimizer, p->checkpoints, p->workspace, p->runtime,
                     p->total};
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "plan", json_string(what));
        json_object_set_new(j, "allocated_by_run", json_boolean(p->allocated));
        json_object_set_new(j, "base_params", json_integer((json_int_t)p->n_params));
        json_object_set_new(j, "trained_params", json_integer((json_int_t)p->n_trained));
        for (int i = 0; i < 8; i++) json_object_set_new(j, kinds[i], json_integer((json_int_t)vals[i]));
        if (run) {
            json_object_set_new(j, "bf16_run_total", json_integer((json_int_t)run_total));
            json_object_set_new(j, "bf16_run_weights", json_integer((json_int_t)run->weights));
            size_t rvals[] = {run->weights, run->trainables, run->gradients, run->optimizer, run->checkpoints,
                              run->workspace, run->runtime, run->total};
            json_t *r = json_object();
            for (int i = 0; i < 8; i++) json_object_set_new(r, kinds[i], json_integer((json_int_t)rvals[i]));
            json_object_set_new(j, "bf16_run", r);
        }
        char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
        free(text);
        json_decref(j);
        return;
    }
    printf("memory plan: %s\n", what);
    printf("  base params %zu, trained params %zu\n", p->n_params, p->n_trained);
    for (int i = 0; i < 8; i++)
        printf("  %-12s %16zu bytes  %9.3f GB  %9.3f GiB\n", kinds[i], vals[i], gb(vals[i]), gib(vals[i]));
    if (run)
        printf("  (bf16: the design's layout, not allocated by any run yet as a whole. Today's `train --dtype\n"
               "   bf16` allocates exactly %zu bytes, %.3f GB (by kind: --json's bf16_run): weights %.3f GB,\n"
               "   checkpoints %.3f GB, workspace %.3f GB (its transient activations are fp32))\n",
               run_total, gb(run_total), gb(run->weights), gb(run->checkpoints), gb(run->workspace));
}

int lqa_plan_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", 1, 0, P_MODEL},   {"preset", 1, 0, P_PRESET},        {"ctx", 1, 0, P_CTX},
        {"device", 1, 0, P_DEVICE}, {"dtype", 1, 0, P_DTYPE},          {"train", 1, 0, P_TRAIN},
        {"attn", 1, 0, P_ATTN},     {"micro-batch", 1, 0, P_MB},       {"json", 0, 0, P_JSON},
        {"group-ratio", 1, 0, P_GROUP}, {"lora-rank", 1, 0, P_RANK},   {"lora-alpha", 1, 0, P_ALPHA},
        {"lora-targets", 1, 0, P_TARGETS}, {"checkpointing", 1, 0, P_CKPT}, {"threads", 1, 0, P_THREADS},
        {"ranks", 1, 0, P_RANKS},   {"mlp-rows", 1, 0, P_MLP_ROWS},    {"help", 0, 0, P_HELP},
        {0, 0, 0, 0}};
    lqa_train_opts d;
    lqa_train_opts_default(&d);
    const char *model = NULL, *preset = NULL, *device = "cpu";
    lqa_plan_opts o = {LQA_PLAN_FP32, d.train, d.lora_targets, d.lora_rank, d.lora_alpha, 1, 0,
                       {d.attn, d.group_ratio, d.train, d.checkpointing, 0, d.mlp_rows}, 1};
    int json = 0, c;
    lqa_err err;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case P_HELP: plan_help(); return 0;
        case P_MODEL: model = optarg; break;
        case P_PRESET: preset = optarg; break;
        case P_CTX:
            if (parse_int(optarg, 2, 1 << 24, &o.ctx)) return plan_usage("--ctx '%s': expected a length >= 2", optarg);
            break;
        case P_DEVICE: device = optarg; break;
        case P_DTYPE:
            if (!strcmp(optarg, "fp32") || !strcmp(optarg, "f32")) o.dtype = LQA_PLAN_FP32;
            else if (!strcmp(optarg, "bf16")) o.dtype = LQA_PLAN_BF16;
            else return plan_usage("--dtype '%s': expected fp32 or bf16", optarg);
            break;
        case P_TRAIN:
            if (lqa_train_set_parse(optarg, &o.train)) return plan_usage("--train '%s': expected lora+, lora or full", optarg);
            break;
        case P_ATTN:
            if (!strcmp(optarg, "s2")) o.step.attn = LQA_ATTN_S2;
            else if (!strcmp(optarg, "full")) o.step.attn = LQA_ATTN_FULL;
            else return plan_usage("--attn '%s': expected s2 or full", optarg);
            break;
        case P_MB:
            if (parse_int(optarg, 1, 1 << 20, &o.micro_batch)) return plan_usage("--micro-batch '%s': expected a count", optarg);
            break;
        case P_JSON: json = 1; break;
        case P_GROUP:
            o.step.group_ratio = strtof(optarg, &end);
            if (!*optarg || *end || !(o.step.group_ratio > 0 && o.step.group_ratio <= 1))
                return plan_usage("--group-ratio '%s': expected a number in (0, 1]", optarg);
            break;
        case P_RANK:
            if (parse_int(optarg, 1, 4096, &o.lora_rank)) return plan_usage("--lora-rank '%s': expected 1..4096", optarg);
            break;
        case P_ALPHA:
            o.lora_alpha = strtof(optarg, &end);
            if (!*optarg || *end || !(o.lora_alpha > 0)) return plan_usage("--lora-alpha '%s': expected > 0", optarg);
            break;
        case P_TARGETS:
            if (lqa_lora_targets_parse(optarg, &o.lora_targets, &err)) return plan_usage("--lora-targets: %s", err.msg);
            break;
        case P_CKPT:
            if (!strcmp(optarg, "on")) o.step.checkpointing = 1;
            else if (!strcmp(optarg, "off")) o.step.checkpointing = 0;
            else return plan_usage("--checkpointing '%s': expected on or off", optarg);
            break;
        case P_THREADS:
            if (parse_int(optarg, 1, 4096, &o.step.threads)) return plan_usage("--threads '%s': expected a count", optarg);
            break;
        case P_RANKS:
            if (parse_int(optarg, 1, 1 << 20, &o.ranks)) return plan_usage("--ranks '%s': expected a count", optarg);
            break;
        case P_MLP_ROWS:
            if (parse_int(optarg, 1, 1 << 24, &o.step.mlp_rows))
                return plan_usage("--mlp-rows '%s': expected a count", optarg);
            break;
        default: return plan_usage("unknown option or missing value '%s'", lqa_bad_option(argc, argv));
        }
    }
    if (!o.ctx || !model == !preset) return plan_usage("%s", "--ctx and one of --model or --preset are required");
    o.step.train = o.train;
    if (o.step.threads > 0) kernels_set_threads(o.step.threads); /* the CPU attention scratch is per thread */
    const lqa_backend *be = lqa_plan_backend(device);
    if (!be) return plan_usage("--device '%s': expected cpu, cuda or cuda:N", device);
    lqa_config cfg;
    if (preset) {
        const lqa_preset *pr = lqa_preset_find(preset);
        if (!pr) return plan_usage("unknown preset '%s'", preset);
        cfg = pr->cfg;
    } else if (lqa_hf_read_config(model, &cfg, &err)) {
        fprintf(stderr, "lqa-sft plan: %s\n", err.msg);
        return 1;
    }
    lqa_model shape; /* the same S2 check the run makes */
    lqa_model_shape(&shape, &cfg);
    int bad = lqa_model_check_opts(&shape, o.ctx, &o.step, &err);
    lqa_model_free(&shape);
    lqa_plan p;
    if (bad || lqa_plan_training(&cfg, &o, be, &p, &err)) {
        fprintf(stderr, "lqa-sft plan: %s\n", err.msg);
        return 1;
    }
    char what[512];
    snprintf(what, sizeof what, "%s, ctx %d x micro-batch %d, %s, %s attention, %s on %s, checkpointing %s",
             preset ? preset : model, o.ctx, o.micro_batch, lqa_train_set_name(o.train),
             o.step.attn == LQA_ATTN_S2 ? "S2" : "full", o.dtype == LQA_PLAN_BF16 ? "bf16" : "fp32", be->name,
             o.step.checkpointing ? "on" : "off");
    lqa_plan rp;
    int have_run = 0;
    if (o.dtype == LQA_PLAN_BF16) { /* and what today's --dtype bf16 run allocates */
        lqa_plan_opts ro = o;
        ro.dtype = LQA_PLAN_BF16_RUN;
        have_run = lqa_plan_training(&cfg, &ro, be, &rp, &err) == 0;
    }
    print_plan(&p, what, json, have_run ? &rp : NULL);
    return 0;
}
