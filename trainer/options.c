/* options.c: the table of training options (see options.h) and what reads it: defaults, the
 * getopt entries and their parser, the help lines, config.json's "options" and the --resume
 * check. A new option is one table row (and its field in lqa_train_opts). */
#include "trainer/options.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "model/adapter.h"
#include "trainer/dist.h"

typedef enum {
    K_STR,      /* const char * */
    K_PATHS,    /* const char *, a comma list of directories (compared as paths on --resume) */
    K_INT,      /* int in [lo, hi] */
    K_LONG,     /* long in [lo, hi] */
    K_U64,      /* uint64_t */
    K_FLOAT,    /* float in [lo, hi] (open ends per the flags) */
    K_DOUBLE,   /* double, likewise */
    K_SWITCH,   /* int: the flag alone sets 1 */
    K_ON_OFF,   /* int: on|off */
    K_ENUM,     /* an enum (int-sized): one of names[], by value */
    K_TARGETS,  /* int: LoRA target bits (adapter.h) */
    K_DEVICE,   /* const char *: cpu, cuda or cuda:N */
} opt_kind;

enum {
    F_RESUME = 1,    /* a resumed run must repeat it */
    F_OMIT_ZERO = 2, /* absent from config.json when 0 or unset (runs from before the option resume) */
    F_OPEN_LO = 4,   /* lo itself is outside the range */
    F_OPEN_HI = 8,
};

typedef struct opt_def {
    const char *flag, *arg; /* --flag ARG (arg NULL: a switch) */
    const char *key;        /* config.json key; NULL: not recorded */
    opt_kind kind;
    size_t off;
    const char *dflt;       /* the default, read like a flag value; NULL: zero */
    double lo, hi;
    const char *const *names;
    unsigned cmds, flags;
    const char *help;       /* lines after the first are indented under it */
} opt_def;

#define OFF(f) offsetof(lqa_train_opts, f)
#define ALL (LQA_CMD_TRAIN | LQA_CMD_GRAD | LQA_CMD_BENCH)
#define TR LQA_CMD_TRAIN
#define BIG (double)(1L << 40)

static const char *const TRAIN_SET_NAMES[] = {"lora+", "lora", "full", NULL};
static const char *const ATTN_NAMES[] = {"full", "s2", NULL};          /* by lqa_attn_mode */
static const char *const SCHED_NAMES[] = {"constant", "cosine", NULL}; /* by lqa_schedule */
static const char *const DTYPE_NAMES[] = {"fp32", "bf16", NULL};       /* by dtype_bf16 */

_Static_assert(sizeof(lqa_train_set) == sizeof(int) && sizeof(lqa_attn_mode) == sizeof(int) &&
                   sizeof(lqa_schedule) == sizeof(int),
               "K_ENUM stores an int");

static const opt_def OPTS[] = {
    {"model", "DIR", "model", K_STR, OFF(model_dir), NULL, 0, 0, NULL, ALL, 0, "the base model (HF layout)"},
    {"data", "DIR[,DIR...]", "data", K_PATHS, OFF(data_dir), NULL, 0, 0, NULL, TR, F_RESUME,
     "shard directories (lm and sft may be mixed); each row of a micro-batch\n"
     "comes from one of them, chosen by a seeded RNG with --data-weights"},
    {"data-weights", "W,...", "data_weights", K_STR, OFF(data_weights), NULL, 0, 0, NULL, TR, F_RESUME | F_OMIT_ZERO,
     "relative sampling weight per --data dir (default: each dir's token\n"
     "count, i.e. like concatenating them); 0 leaves a dir out"},
    {"out", "DIR", NULL, K_STR, OFF(out_dir), NULL, 0, 0, NULL, TR, 0, "the run directory (also -o)"},
    {"adapter", "DIR", "adapter", K_STR, OFF(adapter_dir), NULL, 0, 0, NULL, ALL, 0,
     "start from this PEFT adapter (A, B and trainable_params)"},
    {"ctx", "N", "ctx", K_INT, OFF(ctx), NULL, 2, 1 << 24, NULL, ALL, F_RESUME,
     "context length of a training sequence; above the model's\n"
     "max_position_embeddings, positions are interpolated (scale ctx/max)"},
    {"train", "lora+|lora|full", "train", K_ENUM, OFF(train), "lora+", 0, 0, TRAIN_SET_NAMES, ALL, F_RESUME,
     "what trains (lora+: LoRA + embedding + norms)"},
    {"attn", "s2|full", "attn", K_ENUM, OFF(attn), "s2", 0, 0, ATTN_NAMES, ALL, F_RESUME,
     "S2-Attn (shifted sparse) or full causal attention"},
    {"group-ratio", "R", "group_ratio", K_FLOAT, OFF(group_ratio), "0.25", 0, 1, NULL, ALL, F_RESUME | F_OPEN_LO,
     "S2-Attn group size = ctx * R"},
    {"full-attn-last", "N", "full_attn_last", K_LONG, OFF(full_attn_last), NULL, 0, BIG, NULL, TR,
     F_RESUME | F_OMIT_ZERO,
     "with --attn s2: train the last N steps with full attention, so\n"
     "that distances past the S2 group are learnt too (default 0)"},
    {"lora-rank", "N", "lora_rank", K_INT, OFF(lora_rank), "8", 1, 4096, NULL, ALL, F_RESUME, "LoRA rank r"},
    {"lora-alpha", "A", "lora_alpha", K_FLOAT, OFF(lora_alpha), "16", 0, HUGE_VAL, NULL, ALL, F_RESUME | F_OPEN_LO,
     "LoRA alpha; scale alpha/r"},
    {"lora-targets", "LIST", "lora_targets", K_TARGETS, OFF(lora_targets), "q,k,v,o", 0, 0, NULL, ALL, F_RESUME,
     "from q,k,v,o,gate,up,down"},
    {"lr", "X", "lr", K_FLOAT, OFF(lr), "2e-5", 0, HUGE_VAL, NULL, TR, F_OPEN_LO, "peak learning rate"},
    {"warmup", "N", "warmup", K_LONG, OFF(warmup), "20", 0, BIG, NULL, TR, 0, "linear warm-up steps"},
    {"steps", "N", "steps", K_LONG, OFF(steps), "1000", 1, BIG, NULL, TR | LQA_CMD_BENCH, 0, "optimizer steps"},
    {"schedule", "constant|cosine", "schedule", K_ENUM, OFF(schedule), "constant", 0, 0, SCHED_NAMES, TR, 0,
     "learning rate after warm-up"},
    {"micro-batch", "N", "micro_batch", K_INT, OFF(micro_batch), "1", 1, 1 << 20, NULL, TR | LQA_CMD_BENCH, F_RESUME,
     "sequences per forward/backward"},
    {"grad-accum", "N", "grad_accum", K_INT, OFF(grad_accum), "8", 1, 1 << 20, NULL, TR, 0,
     "micro-batches per optimizer step"},
    {"max-grad-norm", "X", "max_grad_norm", K_FLOAT, OFF(max_grad_norm), "1", -HUGE_VAL, HUGE_VAL, NULL, TR, 0,
     "clip the global gradient norm (0 = off)"},
    {"weight-decay", "X", "weight_decay", K_FLOAT, OFF(weight_decay), "0", 0, HUGE_VAL, NULL, TR, 0,
     "AdamW weight decay, not on norms"},
    {"beta1", "X", "beta1", K_FLOAT, OFF(beta1), "0.9", 0, 1, NULL, TR, F_OPEN_HI, "AdamW beta1"},
    {"beta2", "X", "beta2", K_FLOAT, OFF(beta2), "0.999", 0, 1, NULL, TR, F_OPEN_HI, "AdamW beta2"},
    {"adam-eps", "X", "adam_eps", K_FLOAT, OFF(adam_eps), "1e-8", 0, HUGE_VAL, NULL, TR, F_OPEN_LO, "AdamW epsilon"},
    {"seed", "N", "seed", K_U64, OFF(seed), "42", 0, 0, NULL, ALL, F_RESUME, "LoRA init and data order"},
    {"resume", NULL, NULL, K_SWITCH, OFF(resume), NULL, 0, 0, NULL, TR, 0,
     "continue the run directory from its latest checkpoint, exactly"},
    {"save-every", "N", "save_every", K_LONG, OFF(save_every), "100", 1, BIG, NULL, TR, 0,
     "checkpoint every N steps (also at the end)"},
    {"keep-checkpoints", "N", "keep_checkpoints", K_INT, OFF(keep_checkpoints), "2", 0, 1 << 20, NULL, TR, 0,
     "keep the newest N (0 keeps all)"},
    {"log-every", "N", "log_every", K_LONG, OFF(log_every), "10", 1, BIG, NULL, TR, 0, "log a line every N steps"},
    {"checkpointing", "on|off", "checkpointing", K_ON_OFF, OFF(checkpointing), "on", 0, 0, NULL, ALL, 0,
     "recompute each layer in the backward"},
    {"mlp-rows", "N", "mlp_rows", K_INT, OFF(mlp_rows), NULL, 1, 1 << 24, NULL, ALL, F_OMIT_ZERO,
     "bf16: rows per MLP pass (default 4096): fewer hold less memory, the\n"
     "values are the same"},
    {"max-memory", "GIB", NULL, K_DOUBLE, OFF(max_memory_gb), NULL, 0, HUGE_VAL, NULL, TR, F_OPEN_LO,
     "refuse to start above this estimate (default: available memory)"},
    {"pack", NULL, "pack", K_SWITCH, OFF(pack), NULL, 0, 0, NULL, TR, F_RESUME,
     "pack whole short records into each ctx row (attention and loss\n"
     "stay inside each record)"},
    {"device", "cpu|cuda|cuda:N", "device", K_DEVICE, OFF(device), "cpu", 0, 0, NULL, ALL, 0,
     "where the step runs; cuda:N picks GPU N"},
    {"threads", "N", "threads", K_INT, OFF(threads), NULL, 1, 4096, NULL, ALL, 0, "CPU threads (default: OpenMP's)"},
    {"dtype", "fp32|bf16", "dtype", K_ENUM, OFF(dtype_bf16), NULL, 0, 0, DTYPE_NAMES, ALL, F_OMIT_ZERO,
     "bf16 (CUDA, lora+/lora): frozen weights bf16 only, linears, LoRA,\n"
     "attention and loss on tensor cores, bf16 layer checkpoints (docs/CUDA.md).\n"
     "Default: bf16 on --device cuda (fp32 with --train full), fp32 on the\n"
     "CPU (as lqa-eval); like --device, a resumed run may change it"},
    {"preset", "NAME", NULL, K_STR, OFF(preset), NULL, 0, 0, NULL, LQA_CMD_BENCH, 0,
     "instead of --model: a random model of a preset's shape (lqa-sft init\n"
     "--help lists them), built in the device's memory, no folder on disk"},
    {"sgemm", "N", NULL, K_INT, OFF(sgemm_n), NULL, 16, 1 << 15, NULL, LQA_CMD_BENCH, 0,
     "also OpenBLAS sgemm's GFLOP/s for N x N x N and the largest layer GEMM"},
    {"peak-tflops", "X", NULL, K_DOUBLE, OFF(peak_tflops), NULL, 0, HUGE_VAL, NULL, LQA_CMD_BENCH, F_OPEN_LO,
     "the device's dense peak (bf16: H100/H200 SXM 989): adds \"mfu\""},
};
enum { N_OPTS = sizeof OPTS / sizeof OPTS[0] };
_Static_assert((int)N_OPTS <= (int)LQA_OPT_MAX, "raise LQA_OPT_MAX");

#define FIELD(o, d, type) ((type *)((char *)(o) + (d)->off))
#define CFIELD(o, d, type) ((const type *)((const char *)(o) + (d)->off))

static int name_index(const char *const *names, const char *v) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

/* "expected a number in (0, 1]" for a float's range. */
static void range_text(const opt_def *d, char *buf, size_t n) {
    if (d->lo == -HUGE_VAL && d->hi == HUGE_VAL) snprintf(buf, n, "a number");
    else if (d->hi == HUGE_VAL) snprintf(buf, n, "a number %s %g", d->flags & F_OPEN_LO ? ">" : ">=", d->lo);
    else snprintf(buf, n, "a number in %c%g, %g%c", d->flags & F_OPEN_LO ? '(' : '[', d->lo, d->hi,
                  d->flags & F_OPEN_HI ? ')' : ']');
}

static int in_range(const opt_def *d, double x) {
    if (!isfinite(x)) return 0;
    if (d->flags & F_OPEN_LO ? !(x > d->lo) : !(x >= d->lo)) return 0;
    return d->flags & F_OPEN_HI ? x < d->hi : x <= d->hi;
}

static int apply(lqa_train_opts *o, const opt_def *d, const char *v, lqa_err *err) {
    char *end;
    char what[96];
    switch (d->kind) {
    case K_STR:
    case K_PATHS: *FIELD(o, d, const char *) = v; return 0;
    case K_SWITCH: *FIELD(o, d, int) = 1; return 0;
    case K_INT:
    case K_LONG: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || x < (long)d->lo || x > (long)d->hi)
            return lqa_err_set(err, "--%s '%s': expected an integer in [%ld, %ld]", d->flag, v, (long)d->lo, (long)d->hi);
        if (d->kind == K_INT) *FIELD(o, d, int) = (int)x;
        else *FIELD(o, d, long) = x;
        return 0;
    }
    case K_U64: {
        uint64_t x = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-') return lqa_err_set(err, "--%s '%s': expected a non-negative integer", d->flag, v);
        *FIELD(o, d, uint64_t) = x;
        return 0;
    }
    case K_FLOAT:
    case K_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || !in_range(d, x)) {
            range_text(d, what, sizeof what);
            return lqa_err_set(err, "--%s '%s': expected %s", d->flag, v, what);
        }
        if (d->kind == K_FLOAT) *FIELD(o, d, float) = (float)x;
        else *FIELD(o, d, double) = x;
        return 0;
    }
    case K_ON_OFF: {
        int *p = FIELD(o, d, int);
        if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true")) *p = 1;
        else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) *p = 0;
        else return lqa_err_set(err, "--%s '%s': expected on or off", d->flag, v);
        return 0;
    }
    case K_ENUM: {
        int i = name_index(d->names, v);
        if (i < 0) return lqa_err_set(err, "--%s '%s': expected %s", d->flag, v, d->arg);
        *FIELD(o, d, int) = i;
        return 0;
    }
    case K_TARGETS:
        if (lqa_lora_targets_parse(v, FIELD(o, d, int), err)) return lqa_err_prefix(err, "--%s '%s'", d->flag, v);
        return 0;
    case K_DEVICE:
        if (strcmp(v, "cpu") && strcmp(v, "cuda") &&
            !(strncmp(v, "cuda:", 5) == 0 && v[5] && !v[5 + strspn(v + 5, "0123456789")]))
            return lqa_err_set(err, "--%s '%s': expected cpu, cuda or cuda:N (N a device index)", d->flag, v);
        *FIELD(o, d, const char *) = v;
        return 0;
    }
    return lqa_err_set(err, "--%s: unknown option kind", d->flag);
}

void lqa_train_opts_default(lqa_train_opts *o) {
    memset(o, 0, sizeof *o);
    lqa_err err;
    for (int i = 0; i < N_OPTS; i++)
        if (OPTS[i].dflt) lqaCheck(apply(o, &OPTS[i], OPTS[i].dflt, &err) == 0, "option table: %s", err.msg);
}

int lqa_train_opts_longopts(unsigned cmd, struct option *out) {
    int n = 0;
    for (int i = 0; i < N_OPTS; i++)
        if (OPTS[i].cmds & cmd)
            out[n++] = (struct option){OPTS[i].flag, OPTS[i].arg ? required_argument : no_argument, NULL, LQA_OPT_VAL0 + i};
    return n;
}

int lqa_train_opts_val(const char *flag) {
    for (int i = 0; i < N_OPTS; i++)
        if (!strcmp(OPTS[i].flag, flag)) return LQA_OPT_VAL0 + i;
    return -1;
}

int lqa_train_opts_apply(lqa_train_opts *o, int val, const char *v, lqa_err *err) {
    int i = val - LQA_OPT_VAL0;
    if (i < 0 || i >= N_OPTS) return 1;
    return apply(o, &OPTS[i], v, err) ? -1 : 0;
}

void lqa_train_opts_help(FILE *f, unsigned cmd) {
    for (int i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if (!(d->cmds & cmd)) continue;
        char head[64];
        snprintf(head, sizeof head, "--%s%s%s", d->flag, d->arg ? " " : "", d->arg ? d->arg : "");
        if (strlen(head) > 22) fprintf(f, "  %s\n  %-22s ", head, "");
        else fprintf(f, "  %-22s ", head);
        for (const char *p = d->help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n') fprintf(f, "  %-22s ", "");
        }
        if (d->dflt) fprintf(f, " (default %s)", d->dflt);
        fputc('\n', f);
    }
}

/* ---- config.json ----------------------------------------------------------------------------- */

static json_t *opt_json(const lqa_train_opts *o, const opt_def *d) {
    char buf[64];
    switch (d->kind) {
    case K_STR:
    case K_PATHS:
    case K_DEVICE: {
        const char *s = *CFIELD(o, d, const char *);
        return s ? json_string(s) : json_null();
    }
    case K_INT: return json_integer(*CFIELD(o, d, int));
    case K_LONG: return json_integer((json_int_t)*CFIELD(o, d, long));
    case K_U64: return json_integer((json_int_t)*CFIELD(o, d, uint64_t));
    case K_FLOAT: return json_real((double)*CFIELD(o, d, float));
    case K_DOUBLE: return json_real(*CFIELD(o, d, double));
    case K_SWITCH:
    case K_ON_OFF: return json_boolean(*CFIELD(o, d, int));
    case K_ENUM: return json_string(d->names[*CFIELD(o, d, int)]);
    case K_TARGETS:
        lqa_lora_targets_format(*CFIELD(o, d, int), buf, sizeof buf);
        return json_string(buf);
    }
    return json_null();
}

static int is_zero(const lqa_train_opts *o, const opt_def *d) {
    switch (d->kind) {
    case K_STR:
    case K_PATHS:
    case K_DEVICE: return *CFIELD(o, d, const char *) == NULL;
    case K_LONG: return *CFIELD(o, d, long) == 0;
    default: return *CFIELD(o, d, int) == 0;
    }
}

json_t *lqa_train_opts_json(const lqa_train_opts *o) {
    json_t *j = json_object();
    mallocCheck(j);
    for (int i = 0; i < N_OPTS; i++) {
        const opt_def *d = &OPTS[i];
        if (!d->key || ((d->flags & F_OMIT_ZERO) && is_zero(o, d))) continue;
        json_t *v = opt_json(o, d);
        mallocCheck(v);
        json_object_set_new(j, d->key, v);
    }
    return j;
}

/* ---- checks ---------------------------------------------------------------------------------- */

int lqa_train_opts_validate(const lqa_train_opts *o, lqa_err *err) {
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

int lqa_train_opts_check_resume(const char *path, const lqa_train_opts *o, lqa_err *err) {
    json_t *old = lqa_json_load_file(path, err);
    if (!old) return lqa_err_prefix(err, "--resume");
    json_t *now = lqa_train_opts_json(o), *was = json_object_get(old, "options");
    int rc = 0;
    for (int i = 0; i < N_OPTS && !rc; i++) {
        const opt_def *d = &OPTS[i];
        if (!(d->flags & F_RESUME)) continue;
        json_t *a = json_object_get(was, d->key), *b = json_object_get(now, d->key);
        if (d->kind == K_PATHS && same_dir_list(json_string_value(a), json_string_value(b))) continue;
        if (a != b && !(a && b && json_equal(a, b))) { /* absent on both sides counts as equal */
            char *sa = a ? json_dumps(a, JSON_ENCODE_ANY) : lqa_strdup("none");
            char *sb = b ? json_dumps(b, JSON_ENCODE_ANY) : lqa_strdup("none");
            rc = lqa_err_set(err, "%s: the run was started with %s %s, this command gives %s; resume with the same "
                             "settings", path, d->key, sa, sb);
            free(sa);
            free(sb);
        }
    }
    if (!rc) rc = check_resume_global_batch(old, path, o, err); /* [dist] */
    json_decref(now);
    json_decref(old);
    return rc;
}


/* ---- the training set's names ---------------------------------------------------------------- */

const char *lqa_train_set_name(lqa_train_set t) {
    return (unsigned)t < 3 ? TRAIN_SET_NAMES[t] : "?";
}

int lqa_train_set_parse(const char *s, lqa_train_set *t) {
    int i = name_index(TRAIN_SET_NAMES, s);
    if (i < 0) return -1;
    *t = (lqa_train_set)i;
    return 0;
}
