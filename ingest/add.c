/* add.c: `lqa-ingest add`: walks the inputs (lqa_walker, ingest/walk.h: directories recursively,
 * sorted, links kept inside the tree, filtered), parses each through lqa_parse_path (or
 * lqa_parse_manual for a --join manual), runs the QA generators and
 * stores the documents with their sections and pairs in batched transactions (a batch holds
 * whole documents), so an interrupted run leaves whole documents only and a re-run completes
 * it (the content hash is unique).
 *
 * With --threads N the inputs go through the ordered pipeline of ingest/pipe.h: N workers
 * parse, hash, run the generators and compress the texts (everything that does not touch
 * SQLite); this thread stores what they made strictly in input order, and prints their
 * warnings and errors in that order too. Duplicate checks, ids, splits and the summary are
 * therefore those of the single-threaded run (--threads 1, where everything happens here). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/fileio.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/progress.h"
#include "ingest/cli.h"
#include "ingest/gen.h"
#include "ingest/parse.h"
#include "ingest/pipe.h"
#include "ingest/walk.h"
#include "store/store.h"

static const char *const ADD_USAGE =
    "usage: lqa-ingest add --db DB [options] PATH...\n"
    "\n"
    "Parses documents (files, or directories walked recursively in name order), generates QA pairs\n"
    "and adds both to the store DB (created when missing). Documents already in the store (same\n"
    "normalised text) are skipped, so re-running adds nothing and completes an interrupted run.\n"
    "\n"
    "options:\n"
    "  --db DB                 the store (SQLite file)\n"
    "  --format auto|FMT       force the input format (html, docbook, jats, tei, mallard, mediawiki,\n"
    "                          epub, text, markdown, alpaca, longbench, squad, qasper); default auto\n"
    "  --source NAME           source name recorded for every document (default: the first directory\n"
    "                          below each PATH, or PATH's own name)\n"
    "  --seed N                seed of the splits and the generators (default 1)\n"
    "  --split T,V,E           train,valid,test fractions per document (default 0.9,0.05,0.05); a\n"
    "                          document over ~16k tokens goes to test twice as often (from train)\n"
    "  --generators LIST       comma list of section, table, definition, reference, continuation,\n"
    "                          multihop, summary, synthetic, imported, order, xref, term, count,\n"
    "                          join, or all (default all)\n"
    "  --join                  a directory holding index.html (or index.*.html) is a multi-page manual:\n"
    "                          ingest it as ONE document in the reading order of its table of contents\n"
    "                          (a Mallard help directory holding index.page: its pages, guide by guide)\n"
    "  --join-by manual|chapter  with --join: one document per manual (default), or per chapter (each\n"
    "                          entry of the index's table of contents with the pages below it; each\n"
    "                          Mallard guide with its topics): for manuals too large for one context\n"
    "  --max-pairs-per-doc N   at most N generated pairs per document (default 200; imported pairs\n"
    "                          are not capped)\n"
    "  --max-per-kind N        at most N pairs per generator per document (default 25)\n"
    "  --threads N             parse and prepare inputs on N threads (default: the online CPUs); the\n"
    "                          store is written in input order, the same whatever N\n"
    "  --include GLOB          in directories, take only files matching GLOB (repeatable; a GLOB\n"
    "                          without '/' matches the file name, one with '/' the path below PATH)\n"
    "  --exclude GLOB          in directories, skip files and folders matching GLOB (repeatable; wins\n"
    "                          over --include)\n"
    "  --no-default-excludes   also take what is skipped by default in directories: stylesheets,\n"
    "                          scripts, images, fonts, media, archives, PDFs, search indexes and pages,\n"
    "                          changelogs, Sphinx _sources/_static, text twins (page.txt.gz, page.md,\n"
    "                          page.json of a page.html beside it); a file matching --include is taken\n"
    "  --follow-symlinks       follow symbolic links that leave the PATH's tree (by default they are\n"
    "                          skipped with a warning); FIFOs, sockets and devices are never read\n"
    "  -q, --quiet             no summary, only errors\n"
    "\n"
    "Files named as PATH are always read. Exit status: 0 all inputs added, 3 some inputs failed\n"
    "(each reported once as \"error: FILE:LINE: ...\"), 2 usage, 1 the store cannot be opened.\n";

/* One unit of work: a file, or a manual directory (join: index is its index page). */
typedef struct input_item {
    char *path, *source, *index;
    double bytes;
    lqa_input_pin pin; /* a file: what the walk found (ingest/input.h) */
    int pinned;
} input_item;

typedef struct kind_count {
    char *kind;
    long n;
} kind_count;

typedef struct add_worker add_worker;

typedef struct add_ctx {
    const char *db_path;
    lqa_store *store;
    lqa_gen_opts gen;
    double split[3];
    int max_pairs;
    const char *source_override;
    int64_t source_id;
    const char *source_name; /* the source of source_id */
    const char *cur_path;
    const char *walk_root_name; /* the name of the PATH being walked */
    int cur_unit;        /* the input whose events are being stored; -1 before the first */
    lqa_parse_opts po;   /* the workers' template (warn set per worker) */
    int threads;
    add_worker *workers;
    lqa_progress *prog;
    double done_bytes;
    long added, dups, empty, failed, synthetic_docs, warnings;
    kind_count *kinds;
    int n_kinds;
    input_item *items;
    int n_items, cap_items;
    int in_batch;        /* a transaction is open */
    size_t batch_bytes;  /* document text inserted in it */
    double batch_t0;     /* when it began */
    lqa_walk_counts walk; /* what the input walk skipped */
} add_ctx;

/* A batch commits after this much text or this long, whichever comes first: each commit
 * flushes an FTS5 segment, writes the WAL and may checkpoint, which cost ~17 % of the CPU
 * when every document committed alone; the time cap bounds how long the write lock is held
 * (other writers wait up to the 10 s busy timeout) and how much a kill -9 loses. Not more
 * text than 4 MB: the last commit (and the checkpoint it triggers) runs after all the other
 * work, on this thread alone, and grows with the batch; with 32 MB the default corpus's
 * XHTML (7 MB of text) was one batch whose commit took ~65 ms at the end, with 4 MB ~28 ms,
 * for the same CPU time in all (also on a 30 MB MediaWiki dump: 37 MB of text, ~10 commits). */
#define BATCH_MAX_BYTES ((size_t)4 << 20)
#define BATCH_MAX_SECS 2.0

static void count_kind(add_ctx *c, const char *kind) {
    for (int i = 0; i < c->n_kinds; i++)
        if (!strcmp(c->kinds[i].kind, kind)) {
            c->kinds[i].n++;
            return;
        }
    c->kinds = lqa_realloc(c->kinds, (size_t)(c->n_kinds + 1) * sizeof *c->kinds);
    c->kinds[c->n_kinds++] = (kind_count){lqa_strdup(kind), 1};
}

/* ---- input walk (ingest/walk.h: lqa_walker) ---- */

static void push_item(add_ctx *c, const char *path, const char *source, const char *index, double bytes,
                      const lqa_input_pin *pin) {
    if (c->n_items == c->cap_items)
        c->items = lqa_realloc(c->items, (size_t)(c->cap_items = c->cap_items ? 2 * c->cap_items : 64) * sizeof *c->items);
    c->items[c->n_items++] = (input_item){lqa_strdup(path), lqa_strdup(source), index ? lqa_strdup(index) : NULL, bytes,
                                          pin ? *pin : (lqa_input_pin){0}, pin != NULL};
}

/* The default source is the first directory below the PATH argument, else the PATH's name. */
static void on_input(void *ctx, const char *path, const char *top, const char *index, double bytes,
                     const lqa_input_pin *pin) {
    add_ctx *c = ctx;
    push_item(c, path, top ? top : c->walk_root_name, index, bytes, pin);
}

/* A failed input is reported once, here, as it is met (and counted in the summary). */
static void on_walk_failed(void *ctx, const char *reason) {
    add_ctx *c = ctx;
    c->failed++;
    log_error("%s", reason);
}

static void on_walk_warn(void *ctx, const char *msg) {
    add_ctx *c = ctx;
    c->warnings++;
    log_warn("%s", msg);
}

/* ---- the pair cap ---- */

/* Keeps at most max generated pairs, taking the generators' runs in turn (round robin) so no
 * generator crowds out the others; the generators append their pairs in runs, one run per
 * generator. Imported pairs (generator "import") are all kept and not counted. */
static void cap_pairs(lqa_gen_list *l, int max) {
    int generated = 0;
    for (int i = 0; i < l->n; i++) generated += strcmp(l->items[i].generator, "import") != 0;
    if (generated <= max) return;
    /* runs [run_start[r], run_end[r]) of consecutive pairs of one generator */
    int *run_start = lqa_malloc((size_t)l->n * sizeof *run_start), *run_end = lqa_malloc((size_t)l->n * sizeof *run_end);
    int n_runs = 0;
    char *taken = lqa_calloc((size_t)l->n, 1);
    for (int i = 0; i < l->n; i++) {
        if (!strcmp(l->items[i].generator, "import")) {
            taken[i] = 1;
            continue;
        }
        if (n_runs == 0 || run_end[n_runs - 1] != i ||
            strcmp(l->items[i].generator, l->items[run_start[n_runs - 1]].generator))
            run_start[n_runs++] = i;
        run_end[n_runs - 1] = i + 1;
    }
    int kept = 0;
    for (int round = 0; kept < max; round++) {
        int took = 0;
        for (int r = 0; r < n_runs && kept < max; r++)
            if (run_start[r] + round < run_end[r]) {
                taken[run_start[r] + round] = 1;
                kept++;
                took = 1;
            }
        if (!took) break;
    }
    int w = 0;
    for (int i = 0; i < l->n; i++) {
        if (taken[i]) {
            l->items[w++] = l->items[i];
            continue;
        }
        free(l->items[i].question);
        free(l->items[i].answer);
        free(l->items[i].answers_json);
        free(l->items[i].generator);
    }
    l->n = w;
    free(taken);
    free(run_start);
    free(run_end);
}

/* ---- preparing one document (worker threads) ---- */

/* What a unit hands to the writer, in order. */
typedef enum { EV_WARN, EV_EMPTY, EV_DUP, EV_DOC, EV_END } ev_kind;

typedef struct add_event {
    ev_kind kind;
    char *msg;              /* EV_WARN, EV_EMPTY: the warning; EV_END: the error (NULL: none) */
    int rc;                 /* EV_END: the parser's result */
    /* EV_DOC: the document (moved out of the parser), its hash, split, pairs and packed text */
    lqa_doc doc;
    char hex[65];
    const char *split;
    lqa_gen_list pairs;
    lqa_store_packed packed;
    int has_syn;            /* a synthetic copy with pairs was made */
    lqa_gen_synth syn;
    char syn_hex[65];
} add_event;

/* One worker's own state: nothing here is shared between threads. */
struct add_worker {
    add_ctx *c;
    lqa_store_packer *packer;
    lqa_store *reader;      /* read-only connection for the duplicate pre-check (threaded runs) */
    int reader_tried;
    lqa_pipe_out *out;      /* the unit being worked on */
    const input_item *it;
    lqa_parse_opts po;      /* c->po with warn_ctx = this worker */
};

static void hash_hex(const char *text, size_t n, char out[65]) {
    uint8_t h[LQA_SHA256_SIZE];
    lqa_sha256(text, n, h);
    lqa_hex(h, LQA_SHA256_SIZE, out);
}

static void emit(add_worker *w, add_event *ev, size_t bytes) { lqa_pipe_emit(w->out, ev, bytes + sizeof *ev); }

static void emit_msg(add_worker *w, ev_kind kind, char *msg) {
    add_event *ev = lqa_calloc(1, sizeof *ev);
    ev->kind = kind;
    ev->msg = msg;
    emit(w, ev, strlen(msg));
}

/* Already stored? Saves the generators' work on a re-run. A hit is certain (the writer would
 * find the same row); a miss is checked again by the writer, which also sees the documents
 * of this run not yet committed. Single-threaded runs ask the store itself. */
static int stored_before(add_worker *w, const char *hex) {
    add_ctx *c = w->c;
    if (c->threads <= 1) return lqa_store_find_hash(c->store, hex) != 0;
    if (!w->reader_tried) {
        lqa_err err;
        w->reader_tried = 1;
        w->reader = lqa_store_open(c->db_path, 0, &err); /* NULL: no pre-check, the writer checks */
    }
    return w->reader && lqa_store_find_hash(w->reader, hex) != 0;
}

/* The answers column of each pair, built here rather than on the writer's thread. */
static void fill_answers(lqa_gen_list *l) {
    for (int i = 0; i < l->n; i++)
        if (!l->items[i].answers_json) l->items[i].answers_json = lqa_store_answers_json(l->items[i].answer);
}

/* The parser's sink on a worker: everything about a document that does not touch the store. */
static int prepare_doc(lqa_doc *doc, void *ctx) {
    add_worker *w = ctx;
    add_ctx *c = w->c;
    if (doc->text.len == 0) {
        lqa_buf m = {0};
        lqa_buf_printf(&m, "%s: document \"%s\" has no text, skipped", doc->path ? doc->path : w->it->path,
                       doc->title ? doc->title : "");
        emit_msg(w, EV_EMPTY, lqa_buf_steal(&m));
        return 0;
    }
    add_event *ev = lqa_calloc(1, sizeof *ev);
    hash_hex(doc->text.data, doc->text.len, ev->hex);
    if (stored_before(w, ev->hex)) {
        ev->kind = EV_DUP;
        emit(w, ev, 0);
        return 0;
    }
    ev->kind = EV_DOC;
    ev->doc = *doc; /* the parser frees what is left in doc: nothing */
    memset(doc, 0, sizeof *doc);
    const lqa_doc *d = &ev->doc;
    ev->split = lqa_store_split_for_len(ev->hex, c->gen.seed, c->split, d->text.len);
    lqa_gen_run(d, &c->gen, &ev->pairs);
    cap_pairs(&ev->pairs, c->max_pairs);
    fill_answers(&ev->pairs);
    if (!w->packer) w->packer = lqa_store_packer_new();
    lqa_store_pack(w->packer, d->text.data, d->text.len, &ev->packed);
    size_t bytes = d->text.len + ev->packed.zn;
    if ((c->gen.mask & LQA_GEN_SYNTHETIC) && d->n_qas == 0 && lqa_gen_synthetic(d, &c->gen, &ev->syn) == 0) {
        if (ev->syn.qas.n > 0) {
            ev->has_syn = 1;
            hash_hex(ev->syn.text, ev->syn.len, ev->syn_hex);
            fill_answers(&ev->syn.qas);
            bytes += ev->syn.len;
        } else {
            lqa_gen_synth_free(&ev->syn);
        }
    }
    emit(w, ev, bytes);
    return 0;
}

static void on_warning(const char *msg, void *ctx) { emit_msg(ctx, EV_WARN, lqa_strdup(msg)); }

/* A unit of work: one input, parsed on worker `worker`; its events end with EV_END. */
static void work_unit(void *ctx, int worker, int unit, lqa_pipe_out *out) {
    add_ctx *c = ctx;
    add_worker *w = &c->workers[worker];
    w->out = out;
    w->it = &c->items[unit];
    w->po.pin = w->it->pinned ? &w->it->pin : NULL; /* the parser's opens check it is still the walk's file */
    lqa_err err = {{0}};
    int rc = w->it->index ? lqa_parse_manual(w->it->index, &w->po, prepare_doc, w, &err)
                          : lqa_parse_path(w->it->path, &w->po, prepare_doc, w, &err);
    add_event *ev = lqa_calloc(1, sizeof *ev);
    ev->kind = EV_END;
    ev->rc = rc;
    if (rc != 0) ev->msg = lqa_strdup(err.msg[0] ? err.msg : w->it->path);
    emit(w, ev, 0);
}

/* ---- storing (this thread only) ---- */

static void store_pairs(add_ctx *c, int64_t doc_id, size_t doc_len, const lqa_gen_list *l) {
    for (int i = 0; i < l->n; i++) {
        const lqa_gen_qa *g = &l->items[i];
        lqa_store_qa_in q = {.doc_id = doc_id, .question = g->question, .answer = g->answer,
                             .answers_json = g->answers_json, .kind = g->kind, .generator = g->generator,
                             .ev_start = g->evidence.start, .ev_end = g->evidence.end, .doc_len = doc_len,
                             .seed = c->gen.seed, .anchor_start = g->anchor.start, .anchor_end = g->anchor.end};
        if (lqa_store_add_qa(c->store, &q)) count_kind(c, g->kind);
    }
}

static void store_sections(add_ctx *c, int64_t doc_id, const lqa_doc *doc) {
    for (int i = 0; i < doc->n_sections; i++) {
        const lqa_section *s = &doc->sections[i];
        if (s->span.start > s->span.end || s->span.end > doc->text.len) continue;
        size_t body_end = lqa_gen_section_body_end(doc, i);
        lqa_store_add_section(c->store, doc_id, i, s->parent, s->level, s->title, s->span.start, s->span.end,
                              doc->text.data + s->span.start, body_end - s->span.start);
    }
}

static void store_synthetic(add_ctx *c, add_event *ev, int64_t parent) {
    const lqa_doc *doc = &ev->doc;
    const lqa_gen_synth *syn = &ev->syn;
    if (lqa_store_find_hash(c->store, ev->syn_hex)) return;
    lqa_buf title = {0};
    lqa_buf_printf(&title, "%s [synthetic]", doc->title ? doc->title : "");
    lqa_store_doc_in d = {.source_id = c->source_id, .hash_hex = ev->syn_hex, .title = title.data,
                          .format = doc->format, .path = doc->path, .split = ev->split, .text = syn->text,
                          .text_len = syn->len, .synthetic = 1, .parent_id = parent};
    int64_t id = lqa_store_add_copy(c->store, &d, syn->inserted, syn->n_inserted);
    store_pairs(c, id, syn->len, &syn->qas);
    c->synthetic_docs++;
    lqa_buf_free(&title);
}

static void batch_begin(add_ctx *c) {
    if (c->in_batch) return;
    lqa_store_begin(c->store);
    c->in_batch = 1;
    c->batch_bytes = 0;
    c->batch_t0 = lqa_now();
}

static void batch_commit(add_ctx *c) {
    if (!c->in_batch) return;
    lqa_store_commit(c->store);
    c->in_batch = 0;
}

/* Commits once the batch is big or old enough (called between documents only). */
static void batch_maybe_commit(add_ctx *c, size_t added_bytes) {
    c->batch_bytes += added_bytes;
    if (c->batch_bytes >= BATCH_MAX_BYTES || lqa_now() - c->batch_t0 >= BATCH_MAX_SECS) batch_commit(c);
}

static void store_doc(add_ctx *c, add_event *ev) {
    const lqa_doc *doc = &ev->doc;
    if (lqa_store_find_hash(c->store, ev->hex)) { /* stored earlier in this run */
        c->dups++;
        return;
    }
    batch_begin(c);
    lqa_store_doc_in d = {.source_id = c->source_id, .hash_hex = ev->hex, .title = doc->title, .format = doc->format,
                          .path = doc->path && *doc->path ? doc->path : c->cur_path, .split = ev->split,
                          .text = doc->text.data, .text_len = doc->text.len};
    int64_t id = lqa_store_add_packed(c->store, &d, &ev->packed);
    store_sections(c, id, doc);
    store_pairs(c, id, doc->text.len, &ev->pairs);
    if (ev->has_syn) store_synthetic(c, ev, id);
    c->added++;
    batch_maybe_commit(c, doc->text.len);
}

/* The first event of an input: its source row (looked up once per run of one source). */
static void begin_unit(add_ctx *c, int unit) {
    const input_item *it = &c->items[unit];
    c->cur_unit = unit;
    c->cur_path = it->path;
    const char *source = c->source_override ? c->source_override : it->source;
    if (!c->source_name || strcmp(c->source_name, source)) {
        c->source_id = lqa_store_source(c->store, source);
        c->source_name = source;
    }
}

static void free_event(add_event *ev) {
    free(ev->msg);
    lqa_doc_free(&ev->doc);
    lqa_gen_list_free(&ev->pairs);
    lqa_store_packed_free(&ev->packed);
    if (ev->has_syn) lqa_gen_synth_free(&ev->syn);
    free(ev);
}

static void consume_event(void *ctx, int unit, void *event) {
    add_ctx *c = ctx;
    add_event *ev = event;
    if (unit != c->cur_unit) begin_unit(c, unit);
    switch (ev->kind) {
    case EV_WARN:
        c->warnings++;
        log_warn("%s", ev->msg);
        break;
    case EV_EMPTY:
        c->empty++;
        log_warn("%s", ev->msg);
        break;
    case EV_DUP: c->dups++; break;
    case EV_DOC: store_doc(c, ev); break;
    case EV_END:
        if (ev->rc != 0) { /* reported once, here; the summary counts it */
            c->failed++;
            log_error("%s", ev->msg);
        }
        c->done_bytes += c->items[unit].bytes;
        lqa_progress_update(c->prog, c->done_bytes / 1e6);
        break;
    }
    free_event(ev);
}

/* ---- options and summary ---- */

static int parse_split(const char *s, double f[3], lqa_err *err) {
    char *end;
    for (int i = 0; i < 3; i++) {
        f[i] = strtod(s, &end);
        if (end == s || f[i] < 0 || (i < 2 && *end != ',') || (i == 2 && *end != '\0'))
            return lqa_err_set(err, "--split '%s': expected three non-negative fractions like 0.9,0.05,0.05", s);
        s = end + 1;
    }
    if (f[0] + f[1] + f[2] <= 0) return lqa_err_set(err, "--split: fractions sum to 0, expected a positive sum");
    return 0;
}

static void print_summary(const add_ctx *c, double secs) {
    printf("added %ld document%s (+%ld synthetic copies), skipped %ld duplicate%s, %ld empty; %ld input%s failed,"
           " %ld warning%s (%.1f s)\n",
           c->added, c->added == 1 ? "" : "s", c->synthetic_docs, c->dups, c->dups == 1 ? "" : "s", c->empty,
           c->failed, c->failed == 1 ? "" : "s", c->warnings, c->warnings == 1 ? "" : "s", secs);
    const lqa_walk_counts *w = &c->walk;
    if (w->not_documents || w->excluded || w->links_out || w->not_regular)
        printf("skipped in the input trees: %ld not documents (default excludes), %ld by --include/--exclude, "
               "%ld symbolic links leaving the tree, %ld not regular files\n",
               w->not_documents, w->excluded, w->links_out, w->not_regular);
    long total = 0;
    for (int i = 0; i < c->n_kinds; i++) total += c->kinds[i].n;
    printf("QA pairs added: %ld", total);
    for (int i = 0; i < c->n_kinds; i++) printf("%s %s %ld", i ? "," : " (", c->kinds[i].kind, c->kinds[i].n);
    printf("%s\n", c->n_kinds ? ")" : "");
}

static int usage_error(const char *msg) {
    lqa_eprintf("lqa-ingest add: %s", msg);
    fprintf(stderr, "\n%s", ADD_USAGE);
    return LQA_EXIT_USAGE;
}

int lqa_cmd_add(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},        {"format", required_argument, 0, 'f'},
        {"source", required_argument, 0, 's'},    {"seed", required_argument, 0, 'S'},
        {"split", required_argument, 0, 'p'},     {"generators", required_argument, 0, 'g'},
        {"join", no_argument, 0, 'j'},            {"max-pairs-per-doc", required_argument, 0, 'm'},
        {"max-per-kind", required_argument, 0, 'k'}, {"quiet", no_argument, 0, 'q'},
        {"threads", required_argument, 0, 't'},   {"help", no_argument, 0, 'h'},
        {"join-by", required_argument, 0, 'J'},
        {"include", required_argument, 0, 'I'},   {"exclude", required_argument, 0, 'X'},
        {"no-default-excludes", no_argument, 0, 'N'}, {"follow-symlinks", no_argument, 0, 'L'},
        {0, 0, 0, 0}};
    const char *include[argc], *exclude[argc]; /* the globs, at most one per argument */
    lqa_walk_opts wo = {.include = include, .exclude = exclude};
    add_ctx c = {.split = {0.9, 0.05, 0.05}, .max_pairs = 200, .gen = {.seed = 1, .mask = LQA_GEN_ALL, .max_per_kind = 25},
                 .cur_unit = -1, .threads = lqa_pipe_default_threads()};
    const char *db = NULL, *format = NULL;
    int join = 0, quiet = 0, opt, by_chapter = 0;
    lqa_err err = {{0}};
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:f:s:S:p:g:jJ:m:k:t:qh", opts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'd': db = optarg; break;
        case 'f': format = optarg; break;
        case 's': c.source_override = optarg; break;
        case 'S':
            c.gen.seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end) return usage_error("--seed: expected a non-negative integer");
            break;
        case 'p':
            if (parse_split(optarg, c.split, &err)) return usage_error(err.msg);
            break;
        case 'g':
            if (lqa_gen_parse_list(optarg, &c.gen.mask, &err)) return usage_error(err.msg);
            break;
        case 'j': join = 1; break;
        case 'J':
            if (!strcmp(optarg, "chapter") || !strcmp(optarg, "guide")) by_chapter = 1;
            else if (!strcmp(optarg, "manual")) by_chapter = 0;
            else return usage_error("--join-by: expected manual or chapter");
            join = 1;
            break;
        case 'm':
            c.max_pairs = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || c.max_pairs < 0) return usage_error("--max-pairs-per-doc: expected an integer >= 0");
            break;
        case 'k':
            c.gen.max_per_kind = (int)strtol(optarg, &end, 10);
            if (!*optarg || *end || c.gen.max_per_kind < 1) return usage_error("--max-per-kind: expected an integer >= 1");
            break;
        case 't': {
            long n = strtol(optarg, &end, 10);
            if (!*optarg || *end || n < 1 || n > 256) return usage_error("--threads: expected an integer from 1 to 256");
            c.threads = (int)n;
            break;
        }
        case 'I': include[wo.n_include++] = optarg; break;
        case 'X': exclude[wo.n_exclude++] = optarg; break;
        case 'N': wo.no_default_excludes = 1; break;
        case 'L': wo.follow_symlinks = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(ADD_USAGE, stdout); return LQA_EXIT_OK;
        default: {
            char msg[1024];
            snprintf(msg, sizeof msg, "unknown option or missing value '%s'", lqa_bad_option(argc, argv));
            return usage_error(msg);
        }
        }
    }
    if (!db) return usage_error("--db DB is required");
    if (optind >= argc) return usage_error("no PATH given");
    if (format && strcmp(format, "auto")) {
        int known = 0;
        for (int i = 0; lqa_formats[i] && !known; i++) known = !strcmp(lqa_formats[i], format);
        if (!known) return usage_error("--format: unknown format (see the list in --help)");
    }
    c.store = lqa_store_open(db, 1, &err);
    if (!c.store) {
        fprintf(stderr, "lqa-ingest add: %s\n", err.msg);
        return LQA_EXIT_FATAL;
    }
    wo.join = join;
    static const lqa_walk_fns walk_fns = {on_input, on_walk_failed, on_walk_warn};
    lqa_walker *walker = lqa_walker_new(&wo, &walk_fns, &c);
    for (int i = optind; i < argc; i++) {
        /* the PATH's own name (trailing slashes would leave an empty one) */
        char *copy = lqa_strdup(argv[i]);
        size_t n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
        char *base = strrchr(copy, '/');
        c.walk_root_name = base && base[1] ? base + 1 : copy;
        lqa_walker_run(walker, argv[i]);
        free(copy);
    }
    c.walk = *lqa_walker_counts(walker);
    lqa_walker_free(walker);
    double total = 0, t0 = lqa_now();
    double *sizes = lqa_malloc(((size_t)c.n_items + 1) * sizeof *sizes);
    for (int i = 0; i < c.n_items; i++) total += sizes[i] = c.items[i].bytes;
    c.db_path = db;
    c.po = (lqa_parse_opts){.format = format, .max_text_node = 16u << 20, .max_depth = 256, .warn = on_warning,
                            .join_by_chapter = by_chapter, .follow_symlinks = wo.follow_symlinks};
    c.workers = lqa_calloc((size_t)c.threads, sizeof *c.workers);
    for (int i = 0; i < c.threads; i++) {
        c.workers[i] = (add_worker){.c = &c, .po = c.po};
        c.workers[i].po.warn_ctx = &c.workers[i];
    }
    (void)lqa_log_get_level(); /* read LQA_LOG before any thread starts */
    lqa_progress prog;
    lqa_progress_start(&prog, "ingest", total / 1e6, "MB");
    c.prog = &prog;
    static const lqa_pipe_ops ops = {work_unit, consume_event};
    lqa_pipe_run(c.n_items, sizes, c.threads, &ops, &c);
    free(sizes);
    batch_commit(&c);
    lqa_progress_finish(&prog);
    for (int i = 0; i < c.threads; i++) {
        lqa_store_packer_free(c.workers[i].packer);
        lqa_store_close(c.workers[i].reader);
    }
    free(c.workers);
    if (!quiet) print_summary(&c, lqa_now() - t0);
    lqa_store_close(c.store);
    int status = c.failed ? LQA_EXIT_INPUTS : LQA_EXIT_OK;
    for (int i = 0; i < c.n_items; i++) {
        free(c.items[i].path);
        free(c.items[i].source);
        free(c.items[i].index);
    }
    free(c.items);
    for (int i = 0; i < c.n_kinds; i++) free(c.kinds[i].kind);
    free(c.kinds);
    return status;
}
