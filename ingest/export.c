/* export.c: `lqa-ingest export`: QA pairs with their whole document as context, as JSONL (one
 * object per pair, evidence as CHARACTER offsets into context, as Python indexes strings) or
 * as the LongAlpaca JSON array ({instruction, output}). Written to a temp file and renamed, so
 * a failed export never leaves a half file. Pairs are read in document order so each
 * document is decompressed and JSON-encoded once. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/escape.h"
#include "common/fileio.h"
#include "common/json.h"
#include "ingest/cli.h"
#include "store/store.h"

static const char *const EXPORT_USAGE =
    "usage: lqa-ingest export --db DB --format longalpaca|jsonl [--split S] [--kinds LIST] -o FILE\n"
    "\n"
    "  --format jsonl        one JSON object per QA pair: id, doc_id, kind, generator, split, question,\n"
    "                        answer, answers, context (the whole document text), evidence_start,\n"
    "                        evidence_end (character offsets into context; null when the pair has no\n"
    "                        span), anchor_start, anchor_end (where the text the question quotes or\n"
    "                        points at lies, character offsets; null when none), title, synthetic\n"
    "  --format longalpaca   the JSON array LongLoRA's scripts read: [{\"instruction\": document +\n"
    "                        question, \"output\": answer}, ...]\n"
    "  --split S             only documents of split S (train, valid, test)\n"
    "  --kinds LIST          only these kinds (comma list, e.g. section,table)\n"
    "  -o FILE               output file (a regular file is written to a temp file and renamed;\n"
    "                        '-' is stdout; a pipe or device is written in place)\n";

/* The document being exported, with its JSON-encoded text kept for all of its pairs. */
typedef struct cur_doc {
    int64_t id;
    lqa_store_doc doc;
    char *context_json;
    size_t char_pos, byte_pos; /* code points before byte_pos, for monotone offset conversion */
} cur_doc;

static char *json_str(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    lqaCheck(j != NULL, "stored text is not valid UTF-8");
    char *out = json_dumps(j, JSON_ENCODE_ANY);
    mallocCheck(out);
    json_decref(j);
    return out;
}

/* Character (code point) offset of byte offset b in the document text. */
static size_t char_offset(cur_doc *c, size_t b) {
    if (b < c->byte_pos) c->byte_pos = c->char_pos = 0;
    for (; c->byte_pos < b && c->byte_pos < c->doc.text_len; c->byte_pos++)
        c->char_pos += ((unsigned char)c->doc.text[c->byte_pos] & 0xC0) != 0x80;
    return c->char_pos;
}

static int load_doc(lqa_store *s, cur_doc *c, int64_t id, lqa_err *err) {
    if (c->id == id) return 0;
    if (c->id) lqa_store_doc_free(&c->doc);
    free(c->context_json);
    memset(c, 0, sizeof *c);
    if (lqa_store_get_doc(s, id, &c->doc, err) != 0) return -1;
    c->id = id;
    c->context_json = json_str(c->doc.text, c->doc.text_len);
    return 0;
}

/* What is exported is what the store promises: an evidence span inside the text holds the
 * answer (docs/STORE.md, "Extractive"); offsets edited in the store are refused, naming the pair. */
static int span_check(lqa_store *s, sqlite3_stmt *st, const cur_doc *c, lqa_err *err) {
    int64_t ev_s = sqlite3_column_int64(st, 7), ev_e = sqlite3_column_int64(st, 8);
    const char *answer = (const char *)sqlite3_column_text(st, 5);
    if (ev_e == 0) return 0;
    if (ev_s < 0 || ev_s > ev_e || (uint64_t)ev_e > c->doc.text_len || !answer ||
        !memmem(c->doc.text + ev_s, (size_t)(ev_e - ev_s), answer, strlen(answer)))
        return lqa_err_set(err, "%s: QA pair %lld: its evidence span [%lld, %lld) of document %lld does not hold its "
                                "answer (damaged or edited store; nothing exported)",
                           sqlite3_db_filename(lqa_store_db(s), "main"), (long long)sqlite3_column_int64(st, 0),
                           (long long)ev_s, (long long)ev_e, (long long)c->id);
    return 0;
}

static void write_jsonl(FILE *f, sqlite3_stmt *st, cur_doc *c, int synthetic) {
    size_t ev_s = (size_t)sqlite3_column_int64(st, 7), ev_e = (size_t)sqlite3_column_int64(st, 8);
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                          "doc_id", (json_int_t)c->id, "kind", sqlite3_column_text(st, 2), "generator",
                          sqlite3_column_text(st, 3), "split", c->doc.split, "title", c->doc.title, "question",
                          sqlite3_column_text(st, 4), "answer", sqlite3_column_text(st, 5), "synthetic", synthetic);
    lqaCheck(o != NULL, "QA pair %lld: text is not valid UTF-8", (long long)sqlite3_column_int64(st, 0));
    json_t *answers = json_loads((const char *)sqlite3_column_text(st, 6), 0, NULL);
    json_object_set_new(o, "answers", answers ? answers : json_array());
    /* character offsets, converted in ascending byte order (char_offset walks forward) */
    size_t at[4] = {ev_s, ev_e, (size_t)sqlite3_column_int64(st, 10), (size_t)sqlite3_column_int64(st, 11)};
    int has[4] = {ev_e > 0, ev_e > 0, at[3] > 0, at[3] > 0};
    static const char *const names[4] = {"evidence_start", "evidence_end", "anchor_start", "anchor_end"};
    json_t *val[4] = {0};
    for (int done = 0; done < 4; done++) {
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (!val[i] && (k < 0 || (has[i] && (!has[k] || at[i] < at[k])))) k = i;
        val[k] = has[k] ? json_integer((json_int_t)char_offset(c, at[k])) : json_null();
    }
    for (int i = 0; i < 4; i++) json_object_set_new(o, names[i], val[i]);
    char *head = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    mallocCheck(head);
    /* splice the shared context in before the closing brace: {...,"context":"..."} */
    size_t n = strlen(head);
    fwrite(head, 1, n - 1, f); /* errors surface through ferror() in out_close */
    fputs(",\"context\":", f);
    fwrite(c->context_json, 1, strlen(c->context_json), f);
    fputs("}\n", f);
    free(head);
    json_decref(o);
}

static void write_longalpaca(FILE *f, sqlite3_stmt *st, cur_doc *c, int first) {
    const char *question = (const char *)sqlite3_column_text(st, 4), *answer = (const char *)sqlite3_column_text(st, 5);
    lqa_buf ins = {0};
    lqa_buf_puts(&ins, "Below is a document. Memorize the document and answer my question after the document.\n"
                       "The document begins.\n");
    lqa_buf_append(&ins, c->doc.text, c->doc.text_len);
    lqa_buf_puts(&ins, "\nNow the document ends.\n");
    lqa_buf_puts(&ins, question);
    char *ins_json = json_str(ins.data, ins.len), *out_json = json_str(answer, strlen(answer));
    fprintf(f, "%s\n{\"instruction\": %s, \"output\": %s}", first ? "[" : ",", ins_json, out_json);
    free(ins_json);
    free(out_json);
    lqa_buf_free(&ins);
}

/* The output: a regular file is written to a temp file and renamed (never half-written);
 * "-" is stdout, and an existing non-regular path (a pipe, /dev/stdout, a device) is written
 * in place, since renaming over it would replace the device or pipe itself. */
typedef struct out_file {
    lqa_atomic_file af;
    FILE *f;
    int atomic;
} out_file;

static int out_open(out_file *o, const char *path, lqa_err *err) {
    memset(o, 0, sizeof *o);
    struct stat st;
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return 0;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) return lqa_err_set(err, "%s: is a directory, expected a file name", path);
        o->f = fopen(path, "w");
        return o->f ? 0 : lqa_err_set(err, "%s: cannot open for writing: %s", path, strerror(errno));
    }
    if (lqa_atomic_open(&o->af, path, err) != 0) return -1;
    o->f = o->af.f;
    o->atomic = 1;
    return 0;
}

/* Finishes the output: commit (status ok) or abort. Returns the final status. */
static int out_close(out_file *o, int status, const char *path, lqa_err *err) {
    if (status == LQA_EXIT_OK && (ferror(o->f) || fflush(o->f) != 0)) { /* a failed write (disk full) */
        lqa_err_set(err, "%s: write failed: %s", path, strerror(errno));
        status = LQA_EXIT_FATAL;
    }
    if (o->atomic) {
        if (status != LQA_EXIT_OK) lqa_atomic_abort(&o->af);
        else if (lqa_atomic_commit(&o->af, err) != 0) status = LQA_EXIT_FATAL;
    } else if (o->f != stdout && fclose(o->f) != 0 && status == LQA_EXIT_OK) {
        lqa_err_set(err, "%s: close failed: %s", path, strerror(errno));
        status = LQA_EXIT_FATAL;
    }
    return status;
}

static int kind_listed(const char *kind, const char *list) {
    size_t n = strlen(kind);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, kind, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

int lqa_cmd_export(int argc, char **argv) {
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},    {"format", required_argument, 0, 'f'},
                                         {"split", required_argument, 0, 's'}, {"kinds", required_argument, 0, 'k'},
                                         {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *db = NULL, *format = NULL, *split = NULL, *kinds = NULL, *outp = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:f:s:k:o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'f': format = optarg; break;
        case 's': split = optarg; break;
        case 'k': kinds = optarg; break;
        case 'o': outp = optarg; break;
        case 'h': fputs(EXPORT_USAGE, stdout); return LQA_EXIT_OK;
        default:
            lqa_eprintf("lqa-ingest export: unknown option or missing value '%s'", lqa_bad_option(argc, argv));
            fputs(EXPORT_USAGE, stderr);
            return LQA_EXIT_USAGE;
        }
    }
    int jsonl = format && !strcmp(format, "jsonl");
    if (!db || !outp || !format || (!jsonl && strcmp(format, "longalpaca")) || optind != argc) {
        fprintf(stderr, "lqa-ingest export: expected --db DB --format longalpaca|jsonl -o FILE\n\n%s", EXPORT_USAGE);
        return LQA_EXIT_USAGE;
    }
    if (split && strcmp(split, "train") && strcmp(split, "valid") && strcmp(split, "test")) {
        lqa_eprintf("lqa-ingest export: --split '%s': expected train, valid or test", split);
        return LQA_EXIT_USAGE;
    }
    lqa_err err = {{0}};
    lqa_store *s = lqa_store_open(db, 0, &err);
    if (!s) return fprintf(stderr, "lqa-ingest export: %s\n", err.msg), LQA_EXIT_FATAL;
    if (lqa_store_check_qa(s, &err) != 0) { /* a pair without its document, a span out of range */
        fprintf(stderr, "lqa-ingest export: %s\n", err.msg);
        lqa_store_close(s);
        return LQA_EXIT_FATAL;
    }
    sqlite3 *sdb = lqa_store_db(s);
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(sdb,
                                   "SELECT q.id, q.doc_id, q.kind, q.generator, q.question, q.answer, q.answers, "
                                   "q.ev_start, q.ev_end, d.synthetic, q.anchor_start, q.anchor_end FROM qa q "
                                   "JOIN documents d ON d.id = q.doc_id "
                                   "WHERE ?1 IS NULL OR d.split = ?1 ORDER BY q.doc_id, q.id",
                                   -1, &st, NULL),
                sdb);
    if (split) sqliteCheck(sqlite3_bind_text(st, 1, split, -1, SQLITE_TRANSIENT), sdb);
    out_file of;
    if (out_open(&of, outp, &err) != 0) {
        fprintf(stderr, "lqa-ingest export: %s\n", err.msg);
        sqlite3_finalize(st);
        lqa_store_close(s);
        return LQA_EXIT_FATAL;
    }
    cur_doc c = {0};
    long n = 0;
    int rc, status = LQA_EXIT_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (kinds && !kind_listed((const char *)sqlite3_column_text(st, 2), kinds)) continue;
        if (load_doc(s, &c, sqlite3_column_int64(st, 1), &err) != 0) {
            status = LQA_EXIT_FATAL;
            break;
        }
        if (span_check(s, st, &c, &err) != 0) {
            status = LQA_EXIT_FATAL;
            break;
        }
        if (jsonl) write_jsonl(of.f, st, &c, sqlite3_column_int(st, 9));
        else write_longalpaca(of.f, st, &c, n == 0);
        n++;
    }
    if (status == LQA_EXIT_OK) sqliteCheck(rc, sdb);
    if (!jsonl) fputs(n ? "\n]\n" : "[]\n", of.f);
    sqlite3_finalize(st);
    if (c.id) lqa_store_doc_free(&c.doc);
    free(c.context_json);
    status = out_close(&of, status, outp, &err);
    if (status != LQA_EXIT_OK) fprintf(stderr, "lqa-ingest export: %s\n", err.msg);
    else lqa_eprintf("exported %ld QA pairs to %s", n, outp);
    lqa_store_close(s);
    return status;
}
