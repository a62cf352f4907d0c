/* main.c: the lqa-sft tool: init (a random model in the HF layout from a preset), train (the
 * LongLoRA loop, trainer/train.h), merge (adapter folded into a full model directory) and grad
 * (one forward/backward on a JSON batch, gradients to safetensors). `lqa-sft CMD --help`. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ompenv.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/safetensors.h"
#include "dataset/tokenizer.h"
#include "kernels/common.h"
#include "model/adapter.h"
#include "trainer/dist.h"
#include "model/hfdir.h"
#include "trainer/bench.h"
#include "trainer/plan.h"
#include "model/presets.h"
#include "trainer/train.h"

enum { EXIT_USAGE = 2 };

/* arg is the user's (a path, an option value): the line is printed escaped (common/escape.h). */
static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    char msg[2048];
    snprintf(msg, sizeof msg, fmt, arg);
    lqa_eprintf("lqa-sft %s: %s", cmd, msg);
    fprintf(stderr, "(see lqa-sft %s --help)\n", cmd);
    return EXIT_USAGE;
}

static int fail(const lqa_err *err) {
    lqa_eprintf("lqa-sft: error: %s", err->msg);
    return 1;
}

/* ---- numbers and enums from option values ------------------------------------------------ */

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_dtype(const char *s, lqa_st_dtype *d) {
    if (!strcmp(s, "f32") || !strcmp(s, "float32")) *d = LQA_ST_F32;
    else if (!strcmp(s, "f16") || !strcmp(s, "float16")) *d = LQA_ST_F16;
    else if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) *d = LQA_ST_BF16;
    else return -1;
    return 0;
}

/* ---- the training options (trainer/options.h) plus a command's own ------------------------- */

enum { O_MODEL = 256, O_CTX, O_ADAPTER, O_BATCH, O_PRESET, O_TOK, O_SEED, O_DTYPE, O_SHARD, O_HELP };

/* The table's options of cmd, then extra (ending with its zero entry), into out. */
static void training_longopts(unsigned cmd, const struct option *extra, struct option *out) {
    int n = lqa_train_opts_longopts(cmd, out);
    do out[n++] = *extra;
    while ((extra++)->name);
}

/* ---- init ---------------------------------------------------------------------------------- */

static void init_help(void) {
    printf("usage: lqa-sft init --preset NAME --tokenizer TOKENIZER.model [--ctx N] -o MODEL_DIR\n"
           "Writes a randomly initialised LLaMA model in the Hugging Face layout (config.json,\n"
           "model.safetensors, tokenizer.model, tokenizer_config.json, special_tokens_map.json,\n"
           "generation_config.json). The vocabulary size and bos/eos come from the tokenizer.\n"
           "  --preset NAME          model shape (below)\n"
           "  --tokenizer PATH       sentencepiece model (copied in as tokenizer.model)\n"
           "  --ctx N                max_position_embeddings (default: the preset's)\n"
           "  --seed N               initialisation seed (default 0)\n"
           "  --dtype f32|bf16|f16   storage dtype (default f32)\n"
           "  --shard-size MB        split weights into shards of at most MB megabytes (+ index)\n"
           "  --tie                  tie the lm_head to the embedding\n"
           "presets:\n");
    for (int i = 0; i < lqa_preset_count(); i++) printf("  %-16s %s\n", lqa_preset_at(i)->name, lqa_preset_at(i)->about);
}

static int cmd_init(int argc, char **argv) {
    static const struct option opts[] = {{"preset", 1, 0, O_PRESET}, {"tokenizer", 1, 0, O_TOK}, {"ctx", 1, 0, O_CTX},
                                         {"seed", 1, 0, O_SEED},     {"dtype", 1, 0, O_DTYPE},   {"shard-size", 1, 0, O_SHARD},
                                         {"tie", 0, 0, 't'},         {"help", 0, 0, O_HELP},     {0, 0, 0, 0}};
    const char *preset = NULL, *tok = NULL, *out = NULL;
    long ctx = 0, shard_mb = 0;
    unsigned long long seed = 0;
    int tie = 0, c;
    lqa_st_dtype dtype = LQA_ST_F32;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case O_PRESET: preset = optarg; break;
        case O_TOK: tok = optarg; break;
        case 'o': out = optarg; break;
        case 't': tie = 1; break;
        case O_CTX:
            if (parse_long(optarg, 2, 1 << 24, &ctx)) return usage_error("init", "--ctx '%s': expected a length", optarg);
            break;
        case O_SEED: seed = strtoull(optarg, NULL, 10); break;
        case O_DTYPE:
            if (parse_dtype(optarg, &dtype)) return usage_error("init", "--dtype '%s': expected f32, bf16 or f16", optarg);
            break;
        case O_SHARD:
            if (parse_long(optarg, 1, 1L << 30, &shard_mb)) return usage_error("init", "--shard-size '%s': expected MB", optarg);
            break;
        case O_HELP: init_help(); return 0;
        default: return usage_error("init", "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
        }
    }
    if (!preset || !tok || !out) return usage_error("init", "%s", "--preset, --tokenizer and -o are required");
    const lqa_preset *p = lqa_preset_find(preset);
    if (!p) return usage_error("init", "unknown preset '%s'", preset);
    lqa_err err;
    lqa_tokenizer *t = lqa_tok_load(tok, &err);
    if (!t) return fail(&err);
    lqa_config cfg = p->cfg;
    cfg.vocab_size = lqa_tok_vocab_size(t);
    cfg.bos_id = lqa_tok_bos_id(t);
    cfg.eos_id = lqa_tok_eos_id(t);
    cfg.tie_embeddings = tie;
    if (ctx) cfg.max_pos = (int)ctx;
    lqa_tok_free(t);
    lqa_model m;
    lqa_model_alloc(&m, &cfg);
    lqa_model_init_random(&m, seed);
    lqa_hf_save_opts so = {dtype, (size_t)shard_mb << 20, tok};
    int rc = lqa_hf_save(out, &m, &so, &err);
    if (!rc) log_info("wrote %s: preset %s, %zu parameters, vocab %d, max_position_embeddings %d", out, preset,
                      m.n_params, cfg.vocab_size, cfg.max_pos);
    lqa_model_free(&m);
    return rc ? fail(&err) : 0;
}

/* --dtype: as given, else the device's default (kernels/backend.h, the rule lqa-eval follows):
 * bf16 on cuda, fp32 on the CPU; --train full stays fp32 by default (its bf16 weights would need
 * refreshing after every step: not built). bf16 on the CPU is refused. */
static int resolve_dtype(lqa_train_opts *o, int given, lqa_err *err) {
    const char *device = o->device ? o->device : "cpu";
    if (lqa_backend_dtype(device, given ? (o->dtype_bf16 ? "bf16" : "fp32") : NULL, &o->dtype_bf16, err)) return -1;
    if (!given && o->dtype_bf16 && o->train == LQA_TRAIN_FULL) {
        o->dtype_bf16 = 0;
        log_info("--train full on %s: fp32 (bf16 full training is not built yet)", device);
    }
    return 0;
}

/* ---- train --------------------------------------------------------------------------------- */

static void train_help(void) {
    printf("usage: lqa-sft train --model MODEL_DIR --data SHARDS_DIR[,DIR...] --out RUN_DIR --ctx N [options]\n"
           "Fine-tunes with LongLoRA (S2-Attn, LoRA+, position interpolation). RUN_DIR gets config.json,\n"
           "metrics.jsonl, checkpoints/ and final/ (a PEFT adapter, or a full model for --train full).\n");
    lqa_train_opts_help(stdout, LQA_CMD_TRAIN);
}

static int cmd_train(int argc, char **argv) {
    static const struct option extra[] = {{"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    struct option opts[LQA_OPT_MAX + 2];
    training_longopts(LQA_CMD_TRAIN, extra, opts);
    lqa_train_opts o;
    lqa_train_opts_default(&o);
    lqa_err err;
    int c, dtype_given = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == O_HELP) {
            train_help();
            return 0;
        }
        if (c == 'o') c = lqa_train_opts_val("out");
        dtype_given |= c == lqa_train_opts_val("dtype");
        int r = c == '?' ? 1 : lqa_train_opts_apply(&o, c, optarg, &err);
        if (r > 0) return usage_error("train", "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
        if (r < 0) return usage_error("train", "%s", err.msg);
    }
    if (resolve_dtype(&o, dtype_given, &err)) return usage_error("train", "%s", err.msg);
    if (!o.model_dir || !o.data_dir || !o.out_dir || !o.ctx)
        return usage_error("train", "%s", "--model, --data, --out and --ctx are required");
    /* [dist] one rank of an mpirun/srun job, or the only process (trainer/dist.h) */
    lqa_dist dist;
    int rc = lqa_dist_init(&dist, &err);
    if (!rc) {
        o.dist = &dist;
        rc = lqa_train_run(&o, &err);
    }
    if (rc && !dist.quiet_error) {
        if (dist.size > 1) fprintf(stderr, "lqa-sft rank %d/%d: error: %s\n", dist.rank, dist.size, err.msg);
        else fail(&err);
    }
    lqa_dist_end(&dist, rc);
    return rc ? 1 : 0;
}

/* ---- merge --------------------------------------------------------------------------------- */

static void merge_help(void) {
    printf("usage: lqa-sft merge --model MODEL_DIR --adapter RUN_DIR/final [--ctx N] -o MODEL_DIR\n"
           "       lqa-sft merge --model MODEL_DIR --ctx N -o MODEL_DIR\n"
           "Folds the adapter (W += alpha/r B A) and its trainable_params (embedding, norms) into the base\n"
           "model and writes a full model directory. Its config.json carries rope_scaling and the\n"
           "max_position_embeddings the adapter was trained for (from the adapter's lqa_training.json).\n"
           "  --ctx N                override the trained context length; without --adapter, writes the\n"
           "                         base model position-interpolated to N and otherwise unchanged\n"
           "                         (LongLoRA's untrained baseline)\n"
           "  --dtype f32|bf16|f16   storage dtype (default f32)\n"
           "  --shard-size MB        shard the weights (+ model.safetensors.index.json)\n");
}

static int cmd_merge(int argc, char **argv) {
    static const struct option opts[] = {{"model", 1, 0, O_MODEL}, {"adapter", 1, 0, O_ADAPTER}, {"ctx", 1, 0, O_CTX},
                                         {"dtype", 1, 0, O_DTYPE}, {"shard-size", 1, 0, O_SHARD}, {"help", 0, 0, O_HELP},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *adapter = NULL, *out = NULL;
    long ctx = 0, shard_mb = 0;
    lqa_st_dtype dtype = LQA_ST_F32;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case 'o': out = optarg; break;
        case O_CTX:
            if (parse_long(optarg, 2, 1 << 24, &ctx)) return usage_error("merge", "--ctx '%s': expected a length", optarg);
            break;
        case O_DTYPE:
            if (parse_dtype(optarg, &dtype)) return usage_error("merge", "--dtype '%s': expected f32, bf16 or f16", optarg);
            break;
        case O_SHARD:
            if (parse_long(optarg, 1, 1L << 30, &shard_mb)) return usage_error("merge", "--shard-size '%s': expected MB", optarg);
            break;
        case O_HELP: merge_help(); return 0;
        default: return usage_error("merge", "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
        }
    }
    if (!model || !out || (!adapter && !ctx))
        return usage_error("merge", "%s", "--model, -o and --adapter (or --ctx alone) are required");
    lqa_err err;
    lqa_model m;
    if (lqa_hf_load(model, &m, &err)) return fail(&err);
    int rc = adapter ? lqa_adapter_load(adapter, &m, &err) : 0;
    if (!rc && ctx) lqa_apply_position_interpolation(&m.cfg, (int)ctx);
    if (!rc) {
        lqa_model_merge_lora(&m);
        char *tok = lqa_hf_tokenizer_path(model, NULL);
        lqa_hf_save_opts so = {dtype, (size_t)shard_mb << 20, tok};
        rc = lqa_hf_save(out, &m, &so, &err);
        if (!rc && !tok) rc = lqa_hf_carry_side_files(model, out, &err); /* e.g. tokenizer.json alone */
        free(tok);
    }
    if (!rc) log_info("wrote %s (max_position_embeddings %d, rope scale %g)", out, m.cfg.max_pos, (double)m.cfg.rope_scale);
    lqa_model_free(&m);
    return rc ? fail(&err) : 0;
}

/* ---- grad ---------------------------------------------------------------------------------- */

static void grad_help(void) {
    printf("usage: lqa-sft grad --model MODEL_DIR [--adapter DIR] --batch BATCH.json -o GRADS.safetensors [flags]\n"
           "One forward and backward on BATCH.json ({\"tokens\": [[...]], \"loss_mask\": [[...]]}, optional\n"
           "\"segment_ids\"); loss_mask[b][t] = 1 marks token t as a target predicted from the tokens before\n"
           "it. Writes `loss` (mean over all targets) and the gradient of every trainable tensor under its\n"
           "own name (HF names for base tensors, PEFT names for LoRA). Training flags:\n");
    lqa_train_opts_help(stdout, LQA_CMD_GRAD);
}

typedef struct json_batch {
    int B, T;
    int32_t *tokens, *seg;
    uint8_t *mask;
} json_batch;

/* Reads key (B rows of T integers in [lo, hi]) into out; the first row fixes T. */
static int read_rows(const char *path, json_t *j, const char *key, json_batch *jb, long lo, long hi, int32_t *out,
                     uint8_t *out8, lqa_err *err) {
    json_t *rows = json_object_get(j, key);
    if (!json_is_array(rows) || (int)json_array_size(rows) != jb->B)
        return lqa_err_set(err, "%s: \"%s\" is not a list of %d rows", path, key, jb->B);
    for (int b = 0; b < jb->B; b++) {
        json_t *row = json_array_get(rows, (size_t)b);
        if (!json_is_array(row) || (int)json_array_size(row) != jb->T)
            return lqa_err_set(err, "%s: %s[%d] is not a list of %d integers (every row as long as tokens[0])", path,
                               key, b, jb->T);
        for (int t = 0; t < jb->T; t++) {
            json_t *v = json_array_get(row, (size_t)t);
            long x = json_is_integer(v) ? (long)json_integer_value(v) : lo - 1;
            if (x < lo || x > hi)
                return lqa_err_set(err, "%s: %s[%d][%d] is not an integer in [%ld, %ld]", path, key, b, t, lo, hi);
            if (out) out[(size_t)b * jb->T + t] = (int32_t)x;
            else out8[(size_t)b * jb->T + t] = (uint8_t)x;
        }
    }
    return 0;
}

static int load_json_batch(const char *path, int vocab, json_batch *jb, lqa_err *err) {
    memset(jb, 0, sizeof *jb);
    json_t *j = lqa_json_load_file(path, err);
    if (!j) return -1;
    json_t *tok = json_object_get(j, "tokens");
    int rc = 0;
    if (!json_is_array(tok) || json_array_size(tok) == 0 || !json_is_array(json_array_get(tok, 0)) ||
        json_array_size(json_array_get(tok, 0)) < 2)
        rc = lqa_err_set(err, "%s: \"tokens\" is not a non-empty list of rows of at least 2 token ids", path);
    if (!rc) {
        jb->B = (int)json_array_size(tok);
        jb->T = (int)json_array_size(json_array_get(tok, 0));
        size_t n = (size_t)jb->B * jb->T;
        jb->tokens = lqa_malloc(n * sizeof(int32_t));
        jb->mask = lqa_malloc(n);
        rc = read_rows(path, j, "tokens", jb, 0, vocab - 1, jb->tokens, NULL, err);
        if (!rc) rc = read_rows(path, j, "loss_mask", jb, 0, 1, NULL, jb->mask, err);
        if (!rc && json_object_get(j, "segment_ids")) {
            jb->seg = lqa_malloc(n * sizeof(int32_t));
            rc = read_rows(path, j, "segment_ids", jb, -1, 1L << 30, jb->seg, NULL, err);
        }
    }
    json_decref(j);
    return rc;
}

typedef struct grad_out {
    lqa_st_entry *e;
    int n;
} grad_out;

static void collect_grad(void *ctx, const lqa_tensor_info *ti, float *param, float *grad, int is_lora) {
    grad_out *g = ctx;
    lqa_st_entry *e = &g->e[g->n++];
    e->name = ti->name;
    e->ndim = ti->ndim;
    for (int d = 0; d < ti->ndim; d++) e->shape[d] = ti->shape[d];
    e->data = grad;
}

static int cmd_grad(int argc, char **argv) {
    static const struct option extra[] = {{"batch", 1, 0, O_BATCH}, {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    struct option opts[LQA_OPT_MAX + 3];
    training_longopts(LQA_CMD_GRAD, extra, opts);
    lqa_train_opts o;
    lqa_train_opts_default(&o);
    const char *batch_path = NULL, *out = NULL;
    lqa_err err;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == O_HELP) {
            grad_help();
            return 0;
        }
        if (c == 'o') out = optarg;
        else if (c == O_BATCH) batch_path = optarg;
        else {
            int r = c == '?' ? 1 : lqa_train_opts_apply(&o, c, optarg, &err);
            if (r > 0) return usage_error("grad", "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
            if (r < 0) return usage_error("grad", "%s", err.msg);
        }
    }
    if (!o.model_dir || !batch_path || !out) return usage_error("grad", "%s", "--model, --batch and -o are required");
    if (o.dtype_bf16) return usage_error("grad", "%s", "--dtype bf16: grad runs fp32 on the CPU (use train or bench)");
    if (o.threads > 0) omp_set_num_threads(o.threads);
    lqa_model m;
    if (lqa_load_for_training(&o, &m, &err)) return fail(&err);
    json_batch jb;
    int rc = load_json_batch(batch_path, m.cfg.vocab_size, &jb, &err);
    lqa_step_opts so = {o.attn, o.group_ratio, o.train, o.checkpointing, o.threads > 0 ? o.threads : omp_get_max_threads(), o.mlp_rows};
    if (!rc) rc = lqa_model_check_opts(&m, jb.T, &so, &err);
    if (!rc) {
        lqa_grads g;
        lqa_grads_alloc(&g, &m, o.train);
        lqa_batch b = {jb.B, jb.T, jb.tokens, jb.mask, jb.seg};
        float loss = lqa_model_step(&m, &b, &so, &g);
        grad_out go = {lqa_calloc((size_t)(m.n_tensors + m.n_lora_tensors + 1), sizeof(lqa_st_entry)), 0};
        go.e[go.n++] = (lqa_st_entry){"loss", 1, {1}, &loss};
        lqa_for_each_trainable(&m, o.train, &g, collect_grad, &go);
        rc = lqa_st_write(out, go.e, go.n, LQA_ST_F32, NULL, &err);
        if (!rc) log_info("loss %.6f; wrote %d gradients to %s", (double)loss, go.n - 1, out);
        free(go.e);
        lqa_grads_free(&g, lqa_model_backend(&m));
    }
    free(jb.tokens);
    free(jb.mask);
    free(jb.seg);
    lqa_model_free(&m);
    return rc ? fail(&err) : 0;
}


/* ---- bench: time training steps (forward+backward+AdamW) on random tokens (trainer/bench.h) -- */

static void bench_help(void) {
    printf("usage: lqa-sft bench --model MODEL_DIR|--preset NAME --ctx N [--steps 3] [--micro-batch 1] [flags]\n"
           "Times training steps (forward + backward + AdamW) on random tokens and prints one JSON line:\n"
           "tokens/s, the step's matmul + attention FLOPs (as executed, recompute included), GFLOP/s,\n"
           "model FLOPs per token (6N + attention; MFU with --peak-tflops), peak RSS, device memory\n"
           "(peak_device_mib: what the run took) and the memory plan. --preset NAME: random weights of\n"
           "the preset's shape generated in the device's memory (no model folder). When the plan does\n"
           "not fit the free memory it allocates nothing, prints {..., \"fits\": false, \"error\": ...}\n"
           "and exits 3. Flags:\n");
    lqa_train_opts_help(stdout, LQA_CMD_BENCH);
}

static int cmd_bench(int argc, char **argv) {
    static const struct option extra[] = {{"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    struct option opts[LQA_OPT_MAX + 2];
    training_longopts(LQA_CMD_BENCH, extra, opts);
    lqa_train_opts o;
    lqa_train_opts_default(&o);
    o.steps = 3;
    lqa_err err;
    int c, dtype_given = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == O_HELP) {
            bench_help();
            return 0;
        }
        dtype_given |= c == lqa_train_opts_val("dtype");
        int r = c == '?' ? 1 : lqa_train_opts_apply(&o, c, optarg, &err);
        if (r > 0) return usage_error("bench", "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
        if (r < 0) return usage_error("bench", "%s", err.msg);
    }
    if (resolve_dtype(&o, dtype_given, &err)) return usage_error("bench", "%s", err.msg);
    if (!o.model_dir == !o.preset || !o.ctx)
        return usage_error("bench", "%s", "--ctx and one of --model or --preset are required");
    if (o.preset && o.adapter_dir) return usage_error("bench", "%s", "--adapter goes with --model, not --preset");
    int rc = lqa_bench_run(&o, &err);
    if (rc < 0) return fail(&err);
    return rc == LQA_BENCH_DOES_NOT_FIT ? 3 : 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static void main_help(void) {
    printf("usage: lqa-sft COMMAND [options]   (lqa-sft COMMAND --help for each)\n"
           "  init   write a random model in the HF layout from a preset\n"
           "  train  LongLoRA fine-tuning into a run directory\n"
           "  merge  fold an adapter into a full model directory\n"
           "  grad   one forward/backward on a JSON batch, gradients to safetensors\n"
           "  bench  time training steps on random tokens (tokens/s, GFLOP/s, MFU, peak memory)\n"
           "  plan   the memory a training run needs, by kind (fp32 exact; bf16 the design), no GPU needed\n");
}

int main(int argc, char **argv) {
    lqa_prefer_passive_openmp(argv);
    opterr = 0; /* getopt would print a refused option raw: usage_error names it, escaped */
    if (argc < 2) {
        main_help();
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        main_help();
        return 0;
    }
    argv[1] = argv[0];
    if (!strcmp(cmd, "init")) return cmd_init(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge")) return cmd_merge(argc - 1, argv + 1);
    if (!strcmp(cmd, "grad")) return cmd_grad(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return lqa_plan_main(argc - 1, argv + 1);
    lqa_eprintf("lqa-sft: unknown command '%s'", cmd);
    main_help();
    return EXIT_USAGE;
}
