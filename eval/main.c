/* main.c: lqa-eval, the evaluation tool.
 *   lqa-eval run --model MODEL_DIR [--adapter DIR] [--db DB --split test] [--tasks qa,passkey,ppl] ... -o RESULTS.json
 *   lqa-eval report RESULTS.json... -o REPORT_DIR
 * `run` loads the model (and an adapter, kept unmerged), runs the tasks and writes results.json
 * atomically; `report` turns one or more results files into report.md and report.html. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/escape.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "eval/infer.h"
#include "eval/report.h"
#include "eval/tasks.h"
#include "model/adapter.h"
#include "model/hfdir.h"

#define MAX_LIST 64

static void usage(FILE *f) {
    fputs("usage:\n"
          "  lqa-eval run --model MODEL_DIR [--adapter DIR] [--db DB --split test] [--tasks qa,passkey,ppl]\n"
          "               [--lengths 1024,2048,...] [--depths 0,0.25,0.5,0.75,1] [--trials N]\n"
          "               [--filler paper|store] [--stride 256] [--max-new-tokens N] [--limit N]\n"
          "               [--ppl-tokens N] [--threads N] [--device cpu|cuda|cuda:N] [--dtype fp32|bf16] [--ctx N]\n"
          "               [--seed N] [--name LABEL] -o RESULTS.json\n"
          "  lqa-eval report RESULTS.json... [--notes NOTES.tsv] -o REPORT_DIR\n"
          "  lqa-eval bench --model MODEL_DIR [--lengths 2048,8192] [--decode 64] [--threads N] [--device D]\n"
          "                 [--dtype fp32|bf16]\n"
          "\n"
          "run options:\n"
          "  --model DIR          Hugging Face LLaMA directory (config.json, *.safetensors, tokenizer.model)\n"
          "  --adapter DIR        PEFT adapter (RUN/final), applied without merging\n"
          "  --db DB --split S    store and split for qa, ppl and --filler store (default split: test)\n"
          "  --tasks LIST         qa,passkey,ppl (default: all three with --db, else passkey)\n"
          "  --lengths LIST       passkey prompt / ppl window lengths in tokens (default 1024,2048,... up to --ctx)\n"
          "  --depths LIST        passkey key depths, 0 = start of the filler, 1 = end (default 0,0.25,0.5,0.75,1)\n"
          "  --trials N           passkey prompts per (length, depth) cell (default 5)\n"
          "  --filler paper|store passkey filler: the paper's sentences (default) or store documents\n"
          "  --stride N           ppl sliding-window stride (default 256)\n"
          "  --max-new-tokens N   qa answer length limit (default 32)\n"
          "  --limit N            at most N qa pairs and N ppl documents (default: all)\n"
          "  --ppl-tokens N       ppl scores at most the first N tokens of each document (default: all;\n"
          "                       the test split holds long documents on purpose)\n"
          "  --threads N          CPU threads (default: all)\n"
          "  --device D           cpu (default), cuda or cuda:N: where the model runs (prefill and decode)\n"
          "  --dtype fp32|bf16    bf16 (the default on cuda): the frozen linear weights in bf16 only, loaded\n"
          "                       straight from the shards, a bf16 KV cache (half the memory) and attention\n"
          "                       on tensor cores; embedding, norms and the adapter fp32 (docs/EVAL.md).\n"
          "                       fp32 (the default on the CPU, which has no bf16) for checks. bf16 needs a\n"
          "                       head dim that is a multiple of 16 up to 128\n"
          "  --ctx N              evaluation context (default: the model's max_position_embeddings, which\n"
          "                       carries rope_scaling for an interpolated model); longer is an error\n"
          "                       unless --extrapolate\n"
          "  --extrapolate        allow --ctx beyond max_position_embeddings: positions past the model's\n"
          "                       window, as a user running it on longer inputs would (the report marks it)\n"
          "  --seed N             passkey keys and filler offsets (default 1234)\n"
          "  --name LABEL         the run's name in reports (default: adapter or model directory name)\n"
          "report: writes REPORT_DIR/report.md and REPORT_DIR/report.html (self-contained, inline SVG)\n"
          "  --notes FILE         a tab-separated table (first line the header, \"# text\" lines are\n"
          "                       paragraphs) shown as \"How these figures were made\" (the demo's stage times)\n"
          "bench: prefill and decode speed on random tokens (wall and CPU time), one JSON line per length;\n"
          "       --device and --dtype as for run\n",
          f);
}

/* Parses "a,b,c" into ints (>0) or doubles; -1 with a message naming the option. */
static int parse_ints(const char *opt, const char *s, int *out, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || (*end && *end != ',') || *n == MAX_LIST) {
            lqa_eprintf("lqa-eval: %s \"%s\": expected a comma list of positive integers", opt, s);
            return -1;
        }
        out[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

static int parse_depths(const char *s, double *out, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || v > 1 || (*end && *end != ',') || *n == MAX_LIST) {
            lqa_eprintf("lqa-eval: --depths \"%s\": expected a comma list of numbers in [0, 1]", s);
            return -1;
        }
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

static int parse_int(const char *opt, const char *s, int min, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < min || v > 1 << 30) {
        lqa_eprintf("lqa-eval: %s \"%s\": expected an integer >= %d", opt, s, min);
        return -1;
    }
    *out = (int)v;
    return 0;
}

typedef struct run_opts {
    const char *model, *adapter, *db, *split, *tasks, *out, *name, *filler, *device;
    const char *dtype; /* --dtype as given (NULL: the device's default) */
    int bf16;          /* the dtype the run uses (lqa_backend_dtype) */
    int lengths[MAX_LIST], n_lengths;
    double depths[MAX_LIST];
    int n_depths, trials, stride, max_new, limit, threads, ctx, extrapolate, ppl_tokens;
    unsigned long long seed;
} run_opts;

static int parse_run(int argc, char **argv, run_opts *o) {
    static const struct option longopts[] = {
        {"model", 1, 0, 'm'}, {"adapter", 1, 0, 'a'}, {"db", 1, 0, 'd'}, {"split", 1, 0, 's'},
        {"tasks", 1, 0, 't'}, {"lengths", 1, 0, 'L'}, {"depths", 1, 0, 'D'}, {"trials", 1, 0, 'T'},
        {"filler", 1, 0, 'f'}, {"stride", 1, 0, 'S'}, {"max-new-tokens", 1, 0, 'n'}, {"limit", 1, 0, 'l'},
        {"threads", 1, 0, 'j'}, {"ctx", 1, 0, 'c'}, {"seed", 1, 0, 'r'}, {"name", 1, 0, 'N'},
        {"extrapolate", 0, 0, 'X'}, {"device", 1, 0, 'g'}, {"ppl-tokens", 1, 0, 'P'}, {"dtype", 1, 0, 'y'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *o = (run_opts){.split = "test", .filler = "paper", .trials = 5, .stride = 256, .max_new = 32, .seed = 1234,
                    .device = "cpu"};
    o->n_depths = 5;
    for (int i = 0; i < 5; i++) o->depths[i] = i * 0.25;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'a': o->adapter = optarg; break;
        case 'd': o->db = optarg; break;
        case 's': o->split = optarg; break;
        case 't': o->tasks = optarg; break;
        case 'L': bad = parse_ints("--lengths", optarg, o->lengths, &o->n_lengths); break;
        case 'D': bad = parse_depths(optarg, o->depths, &o->n_depths); break;
        case 'T': bad = parse_int("--trials", optarg, 1, &o->trials); break;
        case 'f': o->filler = optarg; break;
        case 'S': bad = parse_int("--stride", optarg, 1, &o->stride); break;
        case 'n': bad = parse_int("--max-new-tokens", optarg, 1, &o->max_new); break;
        case 'l': bad = parse_int("--limit", optarg, 0, &o->limit); break;
        case 'P': bad = parse_int("--ppl-tokens", optarg, 0, &o->ppl_tokens); break;
        case 'j': bad = parse_int("--threads", optarg, 0, &o->threads); break;
        case 'c': bad = parse_int("--ctx", optarg, 2, &o->ctx); break;
        case 'r': o->seed = strtoull(optarg, NULL, 10); break;
        case 'N': o->name = optarg; break;
        case 'X': o->extrapolate = 1; break;
        case 'g': o->device = optarg; break;
        case 'y': o->dtype = optarg; break;
        case 'o': o->out = optarg; break;
        case 'h': usage(stdout); exit(0);
        default:
            lqa_eprintf("lqa-eval run: unknown option or missing value \"%s\"", lqa_bad_option(argc, argv));
            usage(stderr);
            return -1;
        }
        if (bad) return -1;
    }
    if (optind < argc) {
        lqa_eprintf("lqa-eval run: unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    if (!o->model || !o->out) {
        fprintf(stderr, "lqa-eval run: expected --model MODEL_DIR and -o RESULTS.json\n");
        return -1;
    }
    if (strcmp(o->filler, "paper") && strcmp(o->filler, "store")) {
        lqa_eprintf("lqa-eval run: --filler \"%s\": expected paper or store", o->filler);
        return -1;
    }
    lqa_err err;
    if (lqa_backend_dtype(o->device, o->dtype, &o->bf16, &err)) {
        lqa_eprintf("lqa-eval run: %s", err.msg);
        return -1;
    }
    if (!o->tasks) o->tasks = o->db ? "qa,passkey,ppl" : "passkey";
    return 0;
}

/* 1 when `name` is in the comma list. */
static int has_task(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int check_tasks(const char *list) {
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!((len == 2 && !strncmp(p, "qa", 2)) || (len == 7 && !strncmp(p, "passkey", 7)) ||
              (len == 3 && !strncmp(p, "ppl", 3)))) {
            lqa_eprintf("lqa-eval run: --tasks: unknown task \"%.*s\"; expected qa, passkey or ppl", (int)len, p);
            return -1;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static const char *base_name(const char *path) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    const char *slash = strrchr(buf, '/');
    /* RUN/final -> RUN: the run directory names the experiment */
    if (slash && strcmp(slash + 1, "final") == 0 && slash != buf) {
        buf[slash - buf] = '\0';
        slash = strrchr(buf, '/');
    }
    return slash ? slash + 1 : buf;
}

/* window: the positions the model was trained or interpolated for (m->cfg.max_pos may have been
 * raised by --extrapolate) */
static json_t *model_json(const run_opts *o, const lqa_model *m, const lqa_tokenizer *tok, int window) {
    const lqa_config *c = &m->cfg;
    json_t *j = json_pack("{s:s, s:s?, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b}, s:I, s:I, s:s}",
                          "dir", o->model, "adapter", o->adapter, "tokenizer_sha256", lqa_tok_sha256(tok), "config",
                          "vocab_size", c->vocab_size, "dim", c->dim, "n_layers", c->n_layers, "n_heads", c->n_heads,
                          "n_kv_heads", c->n_kv_heads, "hidden_dim", c->hidden_dim, "max_position_embeddings",
                          window, "rope_theta", c->rope_theta, "rope_scale", c->rope_scale, "tie_embeddings",
                          c->tie_embeddings, "params", (json_int_t)m->n_params, "lora_params", (json_int_t)m->n_lora,
                          "name", o->name ? o->name : base_name(o->adapter ? o->adapter : o->model));
    if (m->lora) json_object_set_new(j, "lora", json_pack("{s:i, s:f, s:i}", "rank", m->lora_rank, "alpha",
                                                          m->lora_alpha, "targets", m->lora_targets));
    return j;
}

static json_t *settings_json(const run_opts *o) {
    json_t *lengths = json_array(), *depths = json_array();
    for (int i = 0; i < o->n_lengths; i++) json_array_append_new(lengths, json_integer(o->lengths[i]));
    for (int i = 0; i < o->n_depths; i++) json_array_append_new(depths, json_real(o->depths[i]));
    return json_pack("{s:s, s:s?, s:s, s:o, s:o, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:I, s:s, s:s}", "tasks",
                     o->tasks, "db", o->db, "split", o->split, "lengths", lengths, "depths", depths, "trials",
                     o->trials, "filler", o->filler, "stride", o->stride, "max_new_tokens", o->max_new, "limit",
                     o->limit, "ppl_tokens", o->ppl_tokens, "threads", o->threads, "ctx", o->ctx, "extrapolate",
                     o->extrapolate, "seed", (json_int_t)o->seed, "device", o->device, "dtype",
                     o->bf16 ? "bf16" : "fp32");
}

/* Default lengths: 1024, 2048, ... up to ctx, and ctx itself. */
static void default_lengths(run_opts *o) {
    o->n_lengths = 0;
    for (int l = 1024; l < o->ctx && o->n_lengths < MAX_LIST - 1; l *= 2) o->lengths[o->n_lengths++] = l;
    o->lengths[o->n_lengths++] = o->ctx;
}

/* The model of dir on be: fp32, or with bf16 the bf16 layout (model.h), its frozen weights
 * straight from the memory-mapped shards to the device, never a whole fp32 copy. LoRA stays fp32
 * and unmerged, as in training: the base counts as frozen (LQA_TRAIN_LORA). Attention and the
 * frozen linears then run on tensor cores, prefill and KV-cache decode alike. */
static int load_model(const char *dir, const lqa_backend *be, int bf16, lqa_model *m, lqa_err *err) {
    return bf16 ? lqa_hf_load_bf16(dir, m, be, LQA_TRAIN_LORA, err) : lqa_hf_load(dir, m, err);
}

static int run_tasks(const run_opts *o, lqa_eval_ctx *e, json_t *tasks) {
    int failed = 0;
    lqa_err err;
    const char *names[] = {"qa", "passkey", "ppl"};
    for (int t = 0; t < 3; t++) {
        if (!has_task(o->tasks, names[t])) continue;
        log_info("task %s", names[t]);
        json_t *res = NULL;
        int rc;
        if (t == 0) {
            rc = lqa_task_qa(e, o->lengths, o->n_lengths, &res, &err);
        } else if (t == 1) {
            lqa_passkey_opts po = {o->lengths, o->n_lengths, o->depths, o->n_depths, o->trials,
                                   strcmp(o->filler, "store") == 0, 50000};
            rc = lqa_task_passkey(e, &po, &res, &err);
        } else {
            rc = lqa_task_ppl(e, o->lengths, o->n_lengths, o->stride, &res, &err);
        }
        if (rc) {
            /* one task's failure does not lose the others' results */
            lqa_eprintf("lqa-eval: %s", err.msg);
            json_object_set_new(tasks, names[t], json_pack("{s:s}", "error", err.msg));
            failed = 1;
        } else {
            json_object_set_new(tasks, names[t], res);
        }
    }
    return failed;
}

static int cmd_run(int argc, char **argv) {
    run_opts o;
    if (parse_run(argc, argv, &o) || check_tasks(o.tasks)) return 2;
    lqa_err err;
    lqa_model m = {0};
    lqa_tokenizer *tok = NULL;
    lqa_store *store = NULL;
    lqa_infer *inf = NULL;
    int rc = 1;
    char *tok_path = NULL;
    const lqa_backend *be = lqa_backend_open(o.device, &err);
    if (!be) goto fail;
    if (load_model(o.model, be, o.bf16, &m, &err)) goto fail;
    if (o.adapter && lqa_adapter_load(o.adapter, &m, &err)) goto fail;
    if (!(tok_path = lqa_hf_tokenizer_path(o.model, &err)) || !(tok = lqa_tok_load(tok_path, &err))) goto fail;
    if (lqa_tok_vocab_size(tok) > m.cfg.vocab_size) {
        lqa_err_set(&err, "%s: tokenizer has %d pieces, expected at most the model's vocab_size %d", tok_path,
                    lqa_tok_vocab_size(tok), m.cfg.vocab_size);
        goto fail;
    }
    if (o.ctx == 0) o.ctx = m.cfg.max_pos;
    int window = m.cfg.max_pos;
    if (o.ctx > window && !o.extrapolate) {
        lqa_err_set(&err, "--ctx %d is longer than the model supports (%s: max_position_embeddings %d; "
                    "--extrapolate to run past it)", o.ctx, o.model, window);
        goto fail;
    }
    if (o.ctx > window) {
        log_warn("--extrapolate: evaluating to %d tokens, past %s's window of %d positions", o.ctx, o.model, window);
        m.cfg.max_pos = o.ctx;
    }
    if (o.n_lengths == 0) default_lengths(&o);
    if (o.db && !(store = lqa_store_open(o.db, 0, &err))) goto fail;
    lqa_model_to_backend(&m, be); /* prefill and decode run where the model is */
    if (lqa_hf_check_kv_cache(o.model, &m, be, o.ctx, &err)) goto fail;
    if (!(inf = lqa_infer_new(&m, o.ctx, o.threads, &err))) goto fail;
    lqa_eval_ctx e = {inf, tok, m.cfg.vocab_size, lqa_tok_bos_id(tok), lqa_tok_eos_id(tok), o.ctx, store, o.split,
                      o.max_new, o.limit, o.seed, o.ppl_tokens};
    json_t *tasks = json_object();
    double t0 = lqa_now();
    int failed = run_tasks(&o, &e, tasks);
    double pf_s, dc_s;
    long pf_tok, dc_tok;
    lqa_infer_timing(inf, &pf_s, &pf_tok, &dc_s, &dc_tok);
    char host[128] = "?", when[32];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_t *results = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:{s:f, s:I, s:f, s:I, s:f}}", "schema",
                                "lqa-eval-results/1", "created", when, "host", host, "model", model_json(&o, &m, tok, window),
                                "settings", settings_json(&o), "tasks", tasks, "timing", "wall_s", lqa_now() - t0,
                                "prefill_tokens", (json_int_t)pf_tok, "prefill_s", pf_s, "decode_tokens",
                                (json_int_t)dc_tok, "decode_s", dc_s);
    int wrc = lqa_json_write_file(o.out, results, &err);
    json_decref(results);
    if (wrc) goto fail;
    log_info("wrote %s", o.out);
    rc = failed;
    goto done;
fail:
    lqa_eprintf("lqa-eval: %s", err.msg);
done:
    lqa_infer_free(inf);
    if (store) lqa_store_close(store);
    if (tok) lqa_tok_free(tok);
    free(tok_path);
    if (m.tensors) lqa_model_free(&m);
    return rc;
}

static int cmd_report(int argc, char **argv) {
    const char *out = NULL, *notes = NULL;
    const char *inputs[MAX_LIST];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--notes") && i + 1 < argc) notes = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else if (argv[i][0] == '-') { lqa_eprintf("lqa-eval report: unknown option \"%s\"", argv[i]); return 2; }
        else if (n < MAX_LIST) inputs[n++] = argv[i];
    }
    if (!out || n == 0) {
        fprintf(stderr, "lqa-eval report: expected RESULTS.json... -o REPORT_DIR\n");
        return 2;
    }
    lqa_err err;
    if (lqa_eval_report(inputs, n, notes, out, &err)) {
        lqa_eprintf("lqa-eval: %s", err.msg);
        return 1;
    }
    log_info("wrote %s/report.md and %s/report.html", out, out);
    return 0;
}

/* CPU seconds of the whole process (all threads): on a shared machine this, not the wall
 * clock, says what the work costs. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* lqa-eval bench: prefill and decode speed of a model at given context lengths, on random
 * tokens (no tokenizer or store needed). One JSON line per length on stdout. */
static int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *lengths_s = "2048,8192", *device = "cpu", *dtype = NULL;
    int threads = 0, decode = 64, lengths[MAX_LIST], n_lengths, bf16;
    for (int i = 1; i < argc; i++) {
        int last = i + 1 >= argc;
        if (!strcmp(argv[i], "--model") && !last) model = argv[++i];
        else if (!strcmp(argv[i], "--lengths") && !last) lengths_s = argv[++i];
        else if (!strcmp(argv[i], "--threads") && !last) { if (parse_int("--threads", argv[++i], 0, &threads)) return 2; }
        else if (!strcmp(argv[i], "--decode") && !last) { if (parse_int("--decode", argv[++i], 1, &decode)) return 2; }
        else if (!strcmp(argv[i], "--device") && !last) device = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && !last) dtype = argv[++i];
        else { lqa_eprintf("lqa-eval bench: unexpected \"%s\"; expected --model DIR [--lengths L,...] [--decode N] [--threads N] [--device D] [--dtype fp32|bf16]", argv[i]); return 2; }
    }
    if (!model || parse_ints("--lengths", lengths_s, lengths, &n_lengths)) {
        fprintf(stderr, "lqa-eval bench: expected --model MODEL_DIR\n");
        return 2;
    }
    lqa_err err;
    if (lqa_backend_dtype(device, dtype, &bf16, &err)) {
        lqa_eprintf("lqa-eval bench: %s", err.msg);
        return 2;
    }
    lqa_model m = {0};
    const lqa_backend *be = lqa_backend_open(device, &err);
    if (!be || load_model(model, be, bf16, &m, &err)) {
        lqa_eprintf("lqa-eval: %s", err.msg);
        if (m.params || m.params16) lqa_model_free(&m);
        return 1;
    }
    lqa_model_to_backend(&m, be);
    int rc = 0;
    lqa_rng rng;
    lqa_rng_seed(&rng, 1);
    for (int li = 0; li < n_lengths && rc == 0; li++) {
        int L = lengths[li];
        lqa_infer *inf = lqa_hf_check_kv_cache(model, &m, be, (long long)L + decode, &err) ? NULL
                         : lqa_infer_new(&m, L + decode, threads, &err);
        if (!inf) { rc = 1; break; }
        int32_t *tok = lqa_malloc(sizeof(int32_t) * (size_t)(L + decode));
        for (int i = 0; i < L + decode; i++) tok[i] = (int32_t)lqa_rng_below(&rng, (uint64_t)m.cfg.vocab_size);
        float *logits = lqa_malloc(sizeof(float) * (size_t)m.cfg.vocab_size);
        double c0 = cpu_seconds();
        rc = lqa_infer_feed(inf, tok, L, NULL, logits, &err);
        double c1 = cpu_seconds();
        for (int i = 0; i < decode && rc == 0; i++) rc = lqa_infer_feed(inf, tok + L + i, 1, NULL, logits, &err);
        double c2 = cpu_seconds();
        double pf_s, dc_s;
        long pf_tok, dc_tok;
        lqa_infer_timing(inf, &pf_s, &pf_tok, &dc_s, &dc_tok);
        if (rc == 0)
            printf("{\"context\": %d, \"prefill_tokens\": %ld, \"prefill_s\": %.3f, \"prefill_tok_s\": %.1f, "
                   "\"decode_tokens\": %ld, \"decode_s\": %.3f, \"decode_tok_s\": %.2f, \"decode_ms_per_token\": %.3f, "
                   "\"prefill_cpu_s\": %.3f, \"decode_cpu_ms_per_token\": %.3f, \"device\": \"%s\", \"dtype\": \"%s\"}\n",
                   L, pf_tok, pf_s, pf_tok / pf_s, dc_tok, dc_s, dc_tok / dc_s, 1000 * dc_s / dc_tok, c1 - c0,
                   1000 * (c2 - c1) / decode, device, bf16 ? "bf16" : "fp32");
        fflush(stdout);
        free(tok);
        free(logits);
        lqa_infer_free(inf);
    }
    if (rc) lqa_eprintf("lqa-eval: %s", err.msg);
    lqa_model_free(&m);
    return rc;
}

int main(int argc, char **argv) {
    opterr = 0; /* getopt would print a refused option raw: parse_run names it, escaped */
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report")) return cmd_report(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1);
    lqa_eprintf("lqa-eval: unknown command \"%s\"; expected run or report", argv[1]);
    usage(stderr);
    return 2;
}
