/* main.c: lqa-build, store -> tokenizer and token shards. Subcommands: tokenizer, shards,
 * verify, inspect, stats; `lqa-build COMMAND --help` describes each. Exit status: 0 ok,
 * 1 error (bad input, corrupt shards), 2 usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/json.h"
#include "common/log.h"
#include "dataset/build.h"
#include "dataset/shards.h"
#include "dataset/tokenizer.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

static const char *const USAGE =
    "usage: lqa-build COMMAND [options]\n"
    "\n"
    "Turns a LongQA store into a sentencepiece tokenizer and zstd token shards for lqa-sft.\n"
    "\n"
    "commands:\n"
    "  tokenizer --db DB --vocab-size N -o T.model   train a LLaMA-style BPE tokenizer\n"
    "  shards    --db DB --tokenizer T --kind sft|lm --max-len N [--split S] [--pack] -o DIR\n"
    "  verify    DIR [--tokenizer T [--db DB]]        check every checksum and record\n"
    "  inspect   DIR [--record I] [--tokenizer T]     shard headers, or one record as text\n"
    "  stats     DIR [--json]                         the manifest's figures\n"
    "\n"
    "`lqa-build COMMAND --help` describes each command. Formats: docs/FORMATS.md.\n";

static const char *const USAGE_TOKENIZER =
    "usage: lqa-build tokenizer --db DB --vocab-size N -o T.model [--split S|all] [--seed N] [--threads N]\n"
    "                           [--keep-text FILE]\n"
    "\n"
    "Trains a sentencepiece BPE model with LLaMA's settings (byte_fallback, split_digits,\n"
    "add_dummy_prefix, whitespace kept, identity normalisation, unk=0 bos=1 eos=2, no pad id)\n"
    "on the store's document text, one paragraph per line (paragraphs over 4192 bytes are cut\n"
    "at a space). The same store and seed give a byte-identical model. Default split: all.\n"
    "--keep-text FILE keeps that training text (one paragraph per line, e.g. for spm_encode).\n";

static const char *const USAGE_SHARDS =
    "usage: lqa-build shards --db DB --tokenizer T --kind sft|lm --max-len N -o DIR\n"
    "                        [--split train|valid|test|all] [--kinds K1,K2] [--pack] [--threads N]\n"
    "                        [--zstd-level L] [--shard-records N]\n"
    "\n"
    "sft: one QA pair per record: BOS [INST]{instruction}[/INST] then {answer}</s>, the\n"
    "     instruction holding the document and the question (LongAlpaca's way); loss on the\n"
    "     answer and its EOS only. Long documents are cut around the evidence span and the\n"
    "     anchor (the passage the question quotes), kept together; records that cannot fit\n"
    "     (anchor and evidence too far apart for N) are dropped and counted. --pack puts\n"
    "     several records in one sequence of at most N tokens, with segment ids.\n"
    "lm:  the split's documents, EOS after each, packed into blocks of exactly N tokens,\n"
    "     loss on every token (the partial last block is left out and counted). A block\n"
    "     is one attention span: a document cut at a block's end continues in the next.\n"
    "     --pack keeps documents whole and apart instead: each in a segment of its own\n"
    "     (it attends only to itself), several to a sequence of at most N tokens; one\n"
    "     longer than N is cut into N-token pieces. For documents that only make sense\n"
    "     whole, e.g. a passkey prompt whose question must see its key.\n"
    "Default split: train. Tokenization uses all cores (--threads); the output is\n"
    "byte-identical for any thread count. DIR is written under a temporary name and renamed.\n";

static const char *const USAGE_VERIFY =
    "usage: lqa-build verify DIR [--tokenizer T [--db DB]]\n"
    "\n"
    "Opens every shard of DIR, checks headers, footers, seek indexes and every record's\n"
    "checksum, decodes every record (and with --tokenizer, checks the tokenizer hash and\n"
    "decodes every record to text). With --db as well, checks every sft example against its\n"
    "QA pair in the store: the decoded text follows the template, the loss-masked span decodes\n"
    "to the answer, the context is a piece of the document that holds the evidence span.\n"
    "Exit 0 when all is well, 1 with one line per problem.\n";

static const char *const USAGE_INSPECT =
    "usage: lqa-build inspect DIR [--record I] [--tokenizer T]\n"
    "\n"
    "Without --record: each shard's header. With --record I: record I decoded to text, the\n"
    "loss-masked part (the targets) between <<< and >>>, then its segments (qa id, doc id).\n"
    "The tokenizer defaults to the one named in manifest.json (its hash must match).\n";

static const char *const USAGE_STATS =
    "usage: lqa-build stats DIR [--json]\n"
    "\n"
    "Prints the manifest's figures: records, tokens, loss tokens, truncated and dropped counts,\n"
    "the length histogram and the settings the shards were built with.\n";

static int want_help(int argc, char **argv, const char *usage) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 1;
        }
    return 0;
}

static int usage_error(const char *usage, const char *msg) {
    lqa_eprintf("lqa-build: %s", msg);
    fprintf(stderr, "\n%s", usage);
    return EXIT_USAGE;
}

/* getopt refused an argument: named escaped (opterr is 0, getopt would print it raw). */
static int bad_option(const char *usage, int argc, char **argv) {
    char msg[1024];
    snprintf(msg, sizeof msg, "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
    return usage_error(usage, msg);
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int cmd_tokenizer(int argc, char **argv) {
    if (want_help(argc, argv, USAGE_TOKENIZER)) return EXIT_OK;
    static const struct option opts[] = {{"db", 1, 0, 'd'},   {"vocab-size", 1, 0, 'v'}, {"split", 1, 0, 's'},
                                         {"seed", 1, 0, 'S'}, {"threads", 1, 0, 't'},    {"out", 1, 0, 'o'},
                                         {"keep-text", 1, 0, 'K'}, {0, 0, 0, 0}};
    const char *db = NULL, *out = NULL, *split = "all", *keep_text = NULL;
    long long vocab = 0, seed = 0, threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'o': out = optarg; break;
        case 's': split = optarg; break;
        case 'K': keep_text = optarg; break;
        case 'v':
            if (parse_long(optarg, 300, 1 << 24, &vocab)) return usage_error(USAGE_TOKENIZER, "--vocab-size: expected 300..16777216");
            break;
        case 'S':
            if (parse_long(optarg, 0, (1LL << 62), &seed)) return usage_error(USAGE_TOKENIZER, "--seed: expected a non-negative integer");
            break;
        case 't':
            if (parse_long(optarg, 0, 1024, &threads)) return usage_error(USAGE_TOKENIZER, "--threads: expected 0..1024");
            break;
        default: return bad_option(USAGE_TOKENIZER, argc, argv);
        }
    }
    if (!db || !out || !vocab) return usage_error(USAGE_TOKENIZER, "--db, --vocab-size and -o are required");
    lqa_err err;
    if (lqa_build_tokenizer(db, split, (int)vocab, (uint64_t)seed, (int)threads, out, keep_text, &err) != 0) {
        lqa_eprintf("lqa-build tokenizer: %s", err.msg);
        return EXIT_ERR;
    }
    lqa_tokenizer *t = lqa_tok_load(out, &err);
    if (!t) {
        lqa_eprintf("lqa-build tokenizer: %s", err.msg);
        return EXIT_ERR;
    }
    log_info("%s: %d pieces, sha256 %s", out, lqa_tok_vocab_size(t), lqa_tok_sha256(t));
    lqa_tok_free(t);
    return EXIT_OK;
}

static int cmd_shards(int argc, char **argv) {
    if (want_help(argc, argv, USAGE_SHARDS)) return EXIT_OK;
    static const struct option opts[] = {
        {"db", 1, 0, 'd'},      {"tokenizer", 1, 0, 'T'}, {"kind", 1, 0, 'k'},       {"max-len", 1, 0, 'm'},
        {"split", 1, 0, 's'},   {"kinds", 1, 0, 'K'},     {"pack", 0, 0, 'p'},       {"threads", 1, 0, 't'},
        {"zstd-level", 1, 0, 'z'}, {"shard-records", 1, 0, 'r'}, {"out", 1, 0, 'o'}, {0, 0, 0, 0}};
    lqa_build_opts o = {.split = "train", .zstd_level = 3, .shard_records = 10000};
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.db = optarg; break;
        case 'T': o.tokenizer = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 's': o.split = optarg; break;
        case 'K': o.kinds = optarg; break;
        case 'p': o.pack = 1; break;
        case 'k':
            if (!strcmp(optarg, "sft")) o.kind = LQA_KIND_SFT;
            else if (!strcmp(optarg, "lm")) o.kind = LQA_KIND_LM;
            else return usage_error(USAGE_SHARDS, "--kind: expected sft or lm");
            break;
        case 'm':
            if (parse_long(optarg, 16, 1 << 24, &v)) return usage_error(USAGE_SHARDS, "--max-len: expected 16..16777216");
            o.max_len = (int)v;
            break;
        case 't':
            if (parse_long(optarg, 0, 1024, &v)) return usage_error(USAGE_SHARDS, "--threads: expected 0..1024");
            o.threads = (int)v;
            break;
        case 'z':
            if (parse_long(optarg, 1, 19, &v)) return usage_error(USAGE_SHARDS, "--zstd-level: expected 1..19");
            o.zstd_level = (int)v;
            break;
        case 'r':
            if (parse_long(optarg, 1, 1LL << 32, &v)) return usage_error(USAGE_SHARDS, "--shard-records: expected >= 1");
            o.shard_records = (uint64_t)v;
            break;
        default: return bad_option(USAGE_SHARDS, argc, argv);
        }
    }
    if (!o.db || !o.tokenizer || !o.out_dir || !o.kind || !o.max_len)
        return usage_error(USAGE_SHARDS, "--db, --tokenizer, --kind, --max-len and -o are required");
    if (strcmp(o.split, "train") && strcmp(o.split, "valid") && strcmp(o.split, "test") && strcmp(o.split, "all"))
        return usage_error(USAGE_SHARDS, "--split: expected train, valid, test or all");
    lqa_err err;
    if (lqa_build_shards(&o, &err) != 0) {
        lqa_eprintf("lqa-build shards: %s", err.msg);
        return EXIT_ERR;
    }
    return EXIT_OK;
}

/* DIR plus --tokenizer / --record / --json, shared by verify, inspect and stats. */
typedef struct dir_args {
    const char *dir, *tokenizer, *db;
    long long record;
    int json;
} dir_args;

static int parse_dir_args(int argc, char **argv, const char *usage, dir_args *a) {
    static const struct option opts[] = {
        {"tokenizer", 1, 0, 'T'}, {"record", 1, 0, 'r'}, {"json", 0, 0, 'j'}, {"db", 1, 0, 'd'}, {0, 0, 0, 0}};
    *a = (dir_args){NULL, NULL, NULL, -1, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'T': a->tokenizer = optarg; break;
        case 'j': a->json = 1; break;
        case 'd': a->db = optarg; break;
        case 'r':
            if (parse_long(optarg, 0, 1LL << 62, &a->record)) return usage_error(usage, "--record: expected an index >= 0");
            break;
        default: return bad_option(usage, argc, argv);
        }
    }
    if (optind != argc - 1) return usage_error(usage, "expected exactly one shard directory");
    a->dir = argv[optind];
    return EXIT_OK;
}

static int cmd_verify(int argc, char **argv) {
    if (want_help(argc, argv, USAGE_VERIFY)) return EXIT_OK;
    dir_args a;
    int rc = parse_dir_args(argc, argv, USAGE_VERIFY, &a);
    if (rc) return rc;
    lqa_err err;
    long problems = lqa_verify_dir(a.dir, a.tokenizer, a.db, &err);
    if (problems < 0) {
        lqa_eprintf("lqa-build verify: %s", err.msg);
        return EXIT_ERR;
    }
    if (problems > 0) {
        lqa_eprintf("lqa-build verify: %s: %ld problem(s)", a.dir, problems);
        return EXIT_ERR;
    }
    lqa_oprintf("%s: ok", a.dir);
    return EXIT_OK;
}

static void print_headers(lqa_shards *d) {
    for (int i = 0; i < lqa_shards_n_files(d); i++) {
        uint64_t first;
        const lqa_shard_info *in = lqa_shard_get_info(lqa_shards_file(d, i, &first));
        printf("shard %d: version %u, kind %s, %u-byte tokens, vocab %u, template %u, %spacked, records %llu "
               "(from %llu), tokens %llu, tokenizer %s\n", i, in->version, lqa_shard_kind_name(in->kind),
               in->dtype_bytes, in->vocab_size, in->template_id, in->flags & LQA_SHARD_PACKED ? "" : "not ",
               (unsigned long long)in->record_count, (unsigned long long)first,
               (unsigned long long)in->total_tokens, in->tokenizer_hex);
    }
}

/* Prints the record's text, each run of loss-masked tokens between <<< and >>>. */
static int print_record(const lqa_tokenizer *t, const lqa_record *r, lqa_err *err) {
    printf("record %llu: %u tokens, %u segment(s)\n", (unsigned long long)r->index, r->n_tokens, r->n_segments);
    for (uint32_t s = 0; s < r->n_segments; s++)
        printf("  segment %u: qa %lld, doc %lld, tokens [%u, %u)\n", s, (long long)r->segments[s].qa_id,
               (long long)r->segments[s].doc_id, r->segments[s].start, r->segments[s].start + r->segments[s].len);
    for (uint32_t a = 0; a < r->n_tokens;) {
        uint32_t b = a;
        while (b < r->n_tokens && r->loss_mask[b] == r->loss_mask[a]) b++;
        char *text;
        if (lqa_tok_decode(t, r->tokens + a, b - a, &text, err) != 0) return -1;
        printf(r->loss_mask[a] ? "<<<%s>>>" : "%s", text);
        free(text);
        a = b;
    }
    printf("\n");
    return 0;
}

static int cmd_inspect(int argc, char **argv) {
    if (want_help(argc, argv, USAGE_INSPECT)) return EXIT_OK;
    dir_args a;
    int rc = parse_dir_args(argc, argv, USAGE_INSPECT, &a);
    if (rc) return rc;
    lqa_err err;
    lqa_shards *d = lqa_shards_open(a.dir, NULL, &err);
    if (!d) {
        lqa_eprintf("lqa-build inspect: %s", err.msg);
        return EXIT_ERR;
    }
    if (a.record < 0) {
        print_headers(d);
        lqa_shards_close(d);
        return EXIT_OK;
    }
    const char *tpath = a.tokenizer ? a.tokenizer
                                    : lqa_json_str(json_object_get(lqa_shards_manifest(d), "tokenizer"), "path", "");
    lqa_tokenizer *t = lqa_tok_load(tpath, &err);
    lqa_record r = {0};
    rc = EXIT_ERR;
    if (!t) {
        lqa_eprintf("lqa-build inspect: %s (give --tokenizer)", err.msg);
    } else if (strcmp(lqa_tok_sha256(t), lqa_shards_get_info(d)->tokenizer_hex) != 0) {
        lqa_eprintf("lqa-build inspect: %s: tokenizer sha256 %s, the shards were built with %s", tpath,
                lqa_tok_sha256(t), lqa_shards_get_info(d)->tokenizer_hex);
    } else if (lqa_shards_read(d, (uint64_t)a.record, &r, &err) != 0 || print_record(t, &r, &err) != 0) {
        lqa_eprintf("lqa-build inspect: %s", err.msg);
    } else {
        rc = EXIT_OK;
    }
    lqa_record_free(&r);
    lqa_tok_free(t);
    lqa_shards_close(d);
    return rc;
}

static int cmd_stats(int argc, char **argv) {
    if (want_help(argc, argv, USAGE_STATS)) return EXIT_OK;
    dir_args a;
    int rc = parse_dir_args(argc, argv, USAGE_STATS, &a);
    if (rc) return rc;
    lqa_err err;
    lqa_shards *d = lqa_shards_open(a.dir, NULL, &err);
    if (!d) {
        lqa_eprintf("lqa-build stats: %s", err.msg);
        return EXIT_ERR;
    }
    const json_t *m = lqa_shards_manifest(d);
    if (a.json) {
        char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        mallocCheck(s);
        printf("%s\n", s);
        free(s);
    } else {
        printf("kind %s%s, template %s, dtype %s, %d shard(s)\n", lqa_json_str(m, "kind", "?"),
               json_is_true(json_object_get(m, "packed")) ? " (packed)" : "", lqa_json_str(m, "template", "?"),
               lqa_json_str(m, "dtype", "?"), lqa_shards_n_files(d));
        printf("records %lld, tokens %lld, loss tokens %lld\n", lqa_json_int(m, "records", 0),
               lqa_json_int(m, "tokens", 0), lqa_json_int(m, "loss_tokens", 0));
        const json_t *src = json_object_get(m, "source");
        printf("from %lld QA pairs over %lld documents; truncated %lld, dropped %lld, dropped tail tokens %lld\n",
               lqa_json_int(src, "qa_pairs", 0), lqa_json_int(src, "documents", 0), lqa_json_int(m, "truncated", 0),
               lqa_json_int(m, "dropped", 0), lqa_json_int(m, "dropped_tail_tokens", 0));
        const json_t *anc = json_object_get(m, "anchors"), *why = json_object_get(m, "dropped_reasons");
        if (anc)
            printf("anchors: %lld records quote a place, %lld keep it and the evidence in the window; dropped as too far"
                   " apart for --max-len: %lld\n",
                   lqa_json_int(anc, "records_with_anchor", 0), lqa_json_int(anc, "records_keeping_anchor_and_evidence", 0),
                   lqa_json_int(why, "anchor_and_evidence_too_far", 0));
        printf("length histogram (tokens: records):\n");
        size_t i;
        json_t *bin;
        json_array_foreach(json_object_get(m, "length_histogram"), i, bin)
            printf("  %8lld-%-8lld %lld\n", lqa_json_int(bin, "min", 0), lqa_json_int(bin, "max", 0),
                   lqa_json_int(bin, "count", 0));
        const json_t *tok = json_object_get(m, "tokenizer");
        lqa_oprintf("tokenizer %s (sha256 %s, vocab %lld)", lqa_json_str(tok, "path", "?"), lqa_json_str(tok, "sha256", "?"),
                    lqa_json_int(tok, "vocab_size", 0));
        const json_t *set = json_object_get(m, "settings");
        lqa_oprintf("settings: db %s, split %s, max_len %lld, zstd level %lld", lqa_json_str(set, "db", "?"),
                    lqa_json_str(set, "split", "?"), lqa_json_int(set, "max_len", 0), lqa_json_int(set, "zstd_level", 0));
    }
    lqa_shards_close(d);
    return EXIT_OK;
}

int main(int argc, char **argv) {
    opterr = 0; /* getopt would print a refused option raw: bad_option names it, escaped */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "tokenizer")) return cmd_tokenizer(argc - 1, argv + 1);
    if (!strcmp(cmd, "shards")) return cmd_shards(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats")) return cmd_stats(argc - 1, argv + 1);
    lqa_eprintf("lqa-build: unknown command '%s', expected tokenizer, shards, verify, inspect or stats", cmd);
    fprintf(stderr, "\n%s", USAGE);
    return EXIT_USAGE;
}
