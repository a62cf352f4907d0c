/* options.h: the options of `lqa-sft train` (and of grad and bench, which share the model and
 * step flags), each defined once in one table (options.c): its flag, value, default, range, help
 * line, config.json key and whether a resumed run must repeat it. The flag parser, the --help
 * text, config.json's "options" and the --resume check all read that table. */
#ifndef LQA_TRAINER_OPTIONS_H
#define LQA_TRAINER_OPTIONS_H

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "common/check.h"
#include "model/model.h"
#include "trainer/optim.h"

typedef struct lqa_train_opts {
    const char *model_dir, *out_dir;
    const char *data_dir;         /* one shard directory, or a comma list of them (data mixing) */
    const char *data_weights;     /* comma list of relative weights, one per directory; NULL: each
                                     directory's token count (like concatenating them) */
    const char *adapter_dir;      /* start from this adapter (may be NULL) */
    int ctx;
    lqa_train_set train;
    lqa_attn_mode attn;
    float group_ratio;
    long full_attn_last;          /* with attn S2: the last N steps train with full attention */
    int lora_rank;
    float lora_alpha;
    int lora_targets;
    float lr;
    long warmup, steps;
    int micro_batch, grad_accum;
    lqa_schedule schedule;
    uint64_t seed;
    int resume;
    const char *device;           /* --device: cpu, cuda or cuda:N */
    int threads;                  /* 0: OpenMP's */
    long save_every, log_every;
    int keep_checkpoints;
    int checkpointing;
    int mlp_rows;                 /* --mlp-rows: bf16's MLP row chunk (0: LQA_MLP_ROWS) */
    float max_grad_norm, weight_decay, beta1, beta2, adam_eps;
    double max_memory_gb;         /* 0: the machine's available memory */
    int pack;                     /* pack whole short records into each row (segment-masked) */
    struct lqa_dist *dist;        /* [dist] this process's rank in an mpirun/srun job (trainer/dist.h);
                                     NULL: one process */
    int dtype_bf16;               /* --dtype bf16: frozen linears in bf16 on tensor cores (CUDA;
                                     lqa_model_use_bf16); 0: fp32 */
    /* bench only (trainer/bench.h) */
    const char *preset;           /* --preset: a random model of this shape (model/presets.h) */
    int sgemm_n;                  /* --sgemm N: also time OpenBLAS sgemm (0: no) */
    double peak_tflops;           /* --peak-tflops: the device's dense peak, for MFU (0: none) */
} lqa_train_opts;

/* The commands an option belongs to. */
enum { LQA_CMD_TRAIN = 1, LQA_CMD_GRAD = 2, LQA_CMD_BENCH = 4 };

/* getopt_long's `val` of the first table option; option i has LQA_OPT_VAL0 + i. */
enum { LQA_OPT_VAL0 = 1000 };

/* The table's defaults (the paper's recipe). */
void lqa_train_opts_default(lqa_train_opts *o);

/* Writes cmd's options into out (at most LQA_OPT_MAX entries, no terminator); returns the count. */
enum { LQA_OPT_MAX = 64 };
int lqa_train_opts_longopts(unsigned cmd, struct option *out);
/* The getopt val of --flag (e.g. "out" for a -o alias), or -1. */
int lqa_train_opts_val(const char *flag);
/* Applies option val's value v; 1 when val is not a table option, -1 (err set) on a bad value. */
int lqa_train_opts_apply(lqa_train_opts *o, int val, const char *v, lqa_err *err);
/* One help line per option of cmd, with its default. */
void lqa_train_opts_help(FILE *f, unsigned cmd);

/* config.json's "options": every recorded option under its key. */
json_t *lqa_train_opts_json(const lqa_train_opts *o);
/* The settings no single flag can check (required ones, cross-option rules). */
int lqa_train_opts_validate(const lqa_train_opts *o, lqa_err *err);
/* A resumed run must repeat the options that shape its state and data stream: compares them
 * with the run's config.json at path ([dist] and grad-accum x ranks with the ranks it had). */
int lqa_train_opts_check_resume(const char *path, const lqa_train_opts *o, lqa_err *err);

const char *lqa_train_set_name(lqa_train_set t);
int lqa_train_set_parse(const char *s, lqa_train_set *t);

#endif
