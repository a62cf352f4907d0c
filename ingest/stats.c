/* stats.c: `lqa-ingest stats` (counts by source, format, kind and split, the context-length
 * histogram of QA pairs, medians; synthetic pairs counted apart) and `lqa-ingest search`
 * (FTS5 over sections). Stats are gathered once into JSON; the text view renders that JSON,
 * so --json and the table always agree. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/escape.h"
#include "ingest/cli.h"
#include "store/store.h"

static const char *const STATS_USAGE =
    "usage: lqa-ingest stats --db DB [--json]\n"
    "\n"
    "Counts of documents and QA pairs by source, format, kind and split; the context-length\n"
    "histogram of QA pairs (tokens estimated at 4 characters per token); the median document length\n"
    "of QA pairs; pairs per split by length bucket; the anchor-to-evidence distance per kind; exact\n"
    "duplicates. Synthetic pairs (passkey/needle insertions) are counted apart.\n"
    "  --json   the same figures as one JSON object on stdout\n";

static const char *const SEARCH_USAGE =
    "usage: lqa-ingest search --db DB [--limit N] QUERY\n"
    "\n"
    "Full-text search (SQLite FTS5 query syntax: words, \"phrases\", AND/OR/NOT, prefix*) over the\n"
    "titles and text of every section; prints document, section and a snippet per hit, best first.\n"
    "  --limit N   at most N hits (default 20)\n";

/* Histogram buckets in estimated tokens (chars / 4). */
static const struct {
    const char *name;
    double upto;
} BUCKETS[] = {{"<2k", 2048},     {"2-4k", 4096},     {"4-8k", 8192},     {"8-16k", 16384},
               {"16-32k", 32768}, {"32-64k", 65536},  {"64-128k", 131072}, {">128k", 1e300}};
#define N_BUCKETS (int)(sizeof BUCKETS / sizeof BUCKETS[0])

static sqlite3_stmt *prep(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(db, sql, -1, &st, NULL), db);
    return st;
}

/* {"name": {"documents": n, "qa": n, "qa_synthetic": n}, ...} from a query returning (name, docs,
 * qa, qa_synthetic): synthetic pairs are always counted apart. */
static json_t *grouped(sqlite3 *db, const char *sql) {
    json_t *o = json_object();
    sqlite3_stmt *st = prep(db, sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        json_object_set_new(o, name ? name : "",
                            json_pack("{s:I, s:I, s:I}", "documents", (json_int_t)sqlite3_column_int64(st, 1), "qa",
                                      (json_int_t)sqlite3_column_int64(st, 2), "qa_synthetic",
                                      (json_int_t)sqlite3_column_int64(st, 3)));
    }
    sqliteCheck(rc, db);
    sqlite3_finalize(st);
    return o;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_tokens(int64_t *v, size_t n) {
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_i64);
    double m = n % 2 ? (double)v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + (double)v[n / 2]);
    return m / 4.0;
}

/* Context-length figures of QA pairs: histogram, medians, pairs over 32k tokens. */
static json_t *lengths(sqlite3 *db) {
    sqlite3_stmt *st = prep(db, "SELECT d.n_chars, d.synthetic FROM qa q JOIN documents d ON d.id = q.doc_id");
    int64_t *len[2] = {NULL, NULL};
    size_t n[2] = {0, 0}, cap[2] = {0, 0};
    long hist[2][N_BUCKETS] = {{0}};
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t chars = sqlite3_column_int64(st, 0);
        int syn = sqlite3_column_int(st, 1) != 0;
        if (n[syn] == cap[syn]) len[syn] = lqa_realloc(len[syn], (cap[syn] = cap[syn] ? 2 * cap[syn] : 1024) * sizeof(int64_t));
        len[syn][n[syn]++] = chars;
        int b = 0;
        while (b < N_BUCKETS - 1 && (double)chars / 4.0 >= BUCKETS[b].upto) b++;
        hist[syn][b]++;
    }
    sqliteCheck(rc, db);
    sqlite3_finalize(st);
    json_t *h = json_array();
    for (int b = 0; b < N_BUCKETS; b++)
        json_array_append_new(h, json_pack("{s:s, s:I, s:I}", "bucket", BUCKETS[b].name, "qa", (json_int_t)hist[0][b],
                                           "synthetic", (json_int_t)hist[1][b]));
    long over32k = hist[0][N_BUCKETS - 1] + hist[0][N_BUCKETS - 2] + hist[0][N_BUCKETS - 3];
    /* all pairs together for the overall median */
    int64_t *all = lqa_malloc((n[0] + n[1] + 1) * sizeof *all);
    if (n[0]) memcpy(all, len[0], n[0] * sizeof *all);
    if (n[1]) memcpy(all + n[0], len[1], n[1] * sizeof *all);
    json_t *o = json_pack("{s:o, s:f, s:f, s:f, s:I}", "histogram", h, "median_tokens", median_tokens(len[0], n[0]),
                          "median_tokens_synthetic", median_tokens(len[1], n[1]), "median_tokens_all",
                          median_tokens(all, n[0] + n[1]), "qa_over_32k_tokens", (json_int_t)over32k);
    free(all);
    free(len[0]);
    free(len[1]);
    return o;
}

static int bucket_of(double tokens) {
    int b = 0;
    while (b < N_BUCKETS - 1 && tokens >= BUCKETS[b].upto) b++;
    return b;
}

/* Pairs per split by context-length bucket: {"test": {"<2k": {"qa": n, "synthetic": n}, ...}}. */
static json_t *split_lengths(sqlite3 *db) {
    static const char *const splits[] = {"train", "valid", "test"};
    long h[3][N_BUCKETS][2] = {{{0}}};
    sqlite3_stmt *st = prep(db, "SELECT d.split, d.n_chars, d.synthetic FROM qa q JOIN documents d ON d.id = q.doc_id");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sp = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; i < 3; i++)
            if (sp && !strcmp(sp, splits[i]))
                h[i][bucket_of((double)sqlite3_column_int64(st, 1) / 4.0)][sqlite3_column_int(st, 2) != 0]++;
    }
    sqliteCheck(rc, db);
    sqlite3_finalize(st);
    json_t *o = json_object();
    for (int i = 0; i < 3; i++) {
        json_t *row = json_object();
        for (int b = 0; b < N_BUCKETS; b++)
            json_object_set_new(row, BUCKETS[b].name,
                                json_pack("{s:I, s:I}", "qa", (json_int_t)h[i][b][0], "synthetic", (json_int_t)h[i][b][1]));
        json_object_set_new(o, splits[i], row);
    }
    return o;
}

/* Anchor-to-evidence distance (bytes between the spans / 4 ~ tokens) of non-synthetic pairs, per
 * kind: how many have both spans, their median, and how many lie over 8k tokens apart, overall
 * and in documents over 16k tokens. */
#define DIST_SQL                                                                                   \
    "CASE WHEN q.anchor_end = 0 OR q.ev_end = 0 THEN NULL"                                         \
    " ELSE max(0, max(q.anchor_start, q.ev_start) - min(q.anchor_end, q.ev_end)) END"
static json_t *distances(sqlite3 *db) {
    json_t *o = json_object();
    sqlite3_stmt *st = prep(db, "SELECT q.kind, " DIST_SQL ", d.n_chars >= 65536 FROM qa q JOIN documents d"
                                " ON d.id = q.doc_id WHERE d.synthetic = 0 ORDER BY q.kind, 2");
    /* rows come sorted by kind, then distance (NULLs first): medians from the sorted run */
    int rc;
    char kind[128] = "";
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    long pairs = 0, far = 0, long_pairs = 0, long_far = 0, all_long = 0, all_long_far = 0;
    for (;;) {
        rc = sqlite3_step(st);
        const char *k = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (kind[0] && (!k || strcmp(k, kind))) {
            json_object_set_new(o, kind, json_pack("{s:I, s:I, s:f, s:I, s:I, s:I}", "qa", (json_int_t)pairs,
                                                   "with_anchor", (json_int_t)n, "median_tokens",
                                                   n ? (double)v[n / 2] / 4.0 : 0.0, "over_8k_tokens", (json_int_t)far,
                                                   "qa_in_docs_over_16k", (json_int_t)long_pairs,
                                                   "over_8k_in_docs_over_16k", (json_int_t)long_far));
            n = 0, pairs = far = long_pairs = long_far = 0;
        }
        if (!k) break;
        snprintf(kind, sizeof kind, "%s", k);
        int is_long = sqlite3_column_int(st, 2) != 0, has = sqlite3_column_type(st, 1) != SQLITE_NULL;
        int64_t dist = sqlite3_column_int64(st, 1);
        int is_far = has && dist > 4 * 8192;
        pairs++, long_pairs += is_long, far += is_far, long_far += is_long && is_far;
        all_long += is_long, all_long_far += is_long && is_far;
        if (has) {
            if (n == cap) v = lqa_realloc(v, (cap = cap ? 2 * cap : 256) * sizeof *v);
            v[n++] = dist;
        }
    }
    if (rc != SQLITE_DONE) sqliteCheck(rc, db);
    sqlite3_finalize(st);
    free(v);
    return json_pack("{s:o, s:I, s:I}", "by_kind", o, "qa_in_docs_over_16k", (json_int_t)all_long,
                     "over_8k_in_docs_over_16k", (json_int_t)all_long_far);
}

static json_int_t scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = prep(db, sql);
    int rc = sqlite3_step(st);
    sqliteCheck(rc, db);
    json_int_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static json_t *gather(sqlite3 *db) {
    json_t *o = json_object();
    json_object_set_new(o, "documents", json_integer(scalar(db, "SELECT count(*) FROM documents WHERE synthetic = 0")));
    json_object_set_new(o, "synthetic_documents", json_integer(scalar(db, "SELECT count(*) FROM documents WHERE synthetic != 0")));
    json_object_set_new(o, "text_chars", json_integer(scalar(db, "SELECT coalesce(sum(n_chars), 0) FROM documents WHERE synthetic = 0")));
    json_object_set_new(o, "sections", json_integer(scalar(db, "SELECT count(*) FROM sections")));
    json_object_set_new(o, "qa", json_integer(scalar(db, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0")));
    json_object_set_new(o, "qa_synthetic", json_integer(scalar(db, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic != 0")));
    const char *by =
        "SELECT %s, count(DISTINCT d.id) FILTER (WHERE d.synthetic = 0), count(q.id) FILTER (WHERE d.synthetic = 0),"
        " count(q.id) FILTER (WHERE d.synthetic != 0) FROM documents d "
        "%s LEFT JOIN qa q ON q.doc_id = d.id GROUP BY 1 ORDER BY 1";
    char sql[512];
    snprintf(sql, sizeof sql, by, "s.name", "JOIN sources s ON s.id = d.source_id");
    json_object_set_new(o, "by_source", grouped(db, sql));
    snprintf(sql, sizeof sql, by, "d.format", "");
    json_object_set_new(o, "by_format", grouped(db, sql));
    snprintf(sql, sizeof sql, by, "d.split", "");
    json_object_set_new(o, "by_split", grouped(db, sql));
    json_object_set_new(o, "by_kind", grouped(db, "SELECT q.kind, count(DISTINCT q.doc_id), count(*) FILTER (WHERE d.synthetic = 0), "
                                                 "count(*) FILTER (WHERE d.synthetic != 0) FROM qa q JOIN documents d "
                                                 "ON d.id = q.doc_id GROUP BY 1 ORDER BY 1"));
    json_object_set_new(o, "by_generator", grouped(db, "SELECT q.generator, count(DISTINCT q.doc_id), count(*) FILTER (WHERE d.synthetic = 0), "
                                                      "count(*) FILTER (WHERE d.synthetic != 0) FROM qa q JOIN documents d "
                                                      "ON d.id = q.doc_id GROUP BY 1 ORDER BY 1"));
    json_object_set_new(o, "lengths", lengths(db));
    json_object_set_new(o, "by_split_length", split_lengths(db));
    json_object_set_new(o, "distance", distances(db));
    json_object_set_new(o, "duplicates", json_integer(scalar(db, "SELECT count(*) - count(DISTINCT doc_id || char(1) || question"
                                                                 " || char(1) || answer) FROM qa")));
    return o;
}

static void print_group(const json_t *o, const char *title) {
    printf("\n%-32s %10s %10s %10s\n", title, "documents", "qa", "synthetic");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        char name[256]; /* a source is named after a directory: its name may hold a newline */
        lqa_escape(k, strlen(k), name, sizeof name);
        printf("  %-30s %10lld %10lld %10lld\n", name, (long long)lqa_json_int(v, "documents", 0),
               (long long)lqa_json_int(v, "qa", 0), (long long)lqa_json_int(v, "qa_synthetic", 0));
    }
}

static void print_text(const json_t *o) {
    printf("documents %lld (+%lld synthetic copies), %.1f M characters, %lld sections\n",
           (long long)lqa_json_int(o, "documents", 0), (long long)lqa_json_int(o, "synthetic_documents", 0),
           (double)lqa_json_int(o, "text_chars", 0) / 1e6, (long long)lqa_json_int(o, "sections", 0));
    printf("QA pairs %lld (+%lld synthetic)\n", (long long)lqa_json_int(o, "qa", 0),
           (long long)lqa_json_int(o, "qa_synthetic", 0));
    print_group(json_object_get(o, "by_source"), "by source");
    print_group(json_object_get(o, "by_format"), "by format");
    print_group(json_object_get(o, "by_split"), "by split");
    print_group(json_object_get(o, "by_kind"), "by kind (documents: with pairs)");
    const json_t *l = json_object_get(o, "lengths");
    printf("\ncontext length of QA pairs (tokens ~ chars/4)\n  %-10s %10s %10s\n", "bucket", "qa", "synthetic");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(l, "histogram"), i, b)
        printf("  %-10s %10lld %10lld\n", lqa_json_str(b, "bucket", "?"), (long long)lqa_json_int(b, "qa", 0),
               (long long)lqa_json_int(b, "synthetic", 0));
    printf("median document length of QA pairs: %.0f tokens (synthetic %.0f, all %.0f); pairs over 32k tokens: %lld\n",
           lqa_json_num(l, "median_tokens", 0), lqa_json_num(l, "median_tokens_synthetic", 0),
           lqa_json_num(l, "median_tokens_all", 0), (long long)lqa_json_int(l, "qa_over_32k_tokens", 0));
    printf("\nQA pairs per split by context length (tokens ~ chars/4; synthetic in brackets)\n  %-6s", "split");
    for (int b = 0; b < N_BUCKETS; b++) printf(" %12s", BUCKETS[b].name);
    const char *sk;
    json_t *sv;
    json_object_foreach(json_object_get(o, "by_split_length"), sk, sv) {
        printf("\n  %-6s", sk);
        for (int b = 0; b < N_BUCKETS; b++) {
            const json_t *c = json_object_get(sv, BUCKETS[b].name);
            char cell[40];
            snprintf(cell, sizeof cell, "%lld [%lld]", (long long)lqa_json_int(c, "qa", 0), (long long)lqa_json_int(c, "synthetic", 0));
            printf(" %12s", cell);
        }
    }
    const json_t *d = json_object_get(o, "distance");
    printf("\n\nanchor-to-evidence distance, non-synthetic pairs (tokens ~ bytes/4)\n  %-14s %8s %8s %8s %8s %12s %12s\n", "kind",
           "qa", "anchored", "median", ">8k", "in docs>16k", ">8k there");
    json_object_foreach(json_object_get(d, "by_kind"), sk, sv)
        printf("  %-14s %8lld %8lld %8.0f %8lld %12lld %12lld\n", sk, (long long)lqa_json_int(sv, "qa", 0),
               (long long)lqa_json_int(sv, "with_anchor", 0), lqa_json_num(sv, "median_tokens", 0),
               (long long)lqa_json_int(sv, "over_8k_tokens", 0), (long long)lqa_json_int(sv, "qa_in_docs_over_16k", 0),
               (long long)lqa_json_int(sv, "over_8k_in_docs_over_16k", 0));
    long ld = (long)lqa_json_int(d, "qa_in_docs_over_16k", 0), lf = (long)lqa_json_int(d, "over_8k_in_docs_over_16k", 0);
    printf("pairs in documents over 16k tokens with evidence over 8k tokens from the anchor: %ld of %ld (%.1f %%)\n", lf,
           ld, ld ? 100.0 * lf / ld : 0.0);
    printf("exact duplicate (document, question, answer) pairs: %lld\n", (long long)lqa_json_int(o, "duplicates", 0));
}

static lqa_store *open_store(const char *cmd, const char *db) {
    lqa_err err = {{0}};
    lqa_store *s = lqa_store_open(db, 0, &err);
    if (!s) lqa_eprintf("lqa-ingest %s: %s", cmd, err.msg);
    return s;
}

int lqa_cmd_stats(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int as_json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        if (opt == 'd') db = optarg;
        else if (opt == 'j') as_json = 1;
        else if (opt == 'h') return fputs(STATS_USAGE, stdout), LQA_EXIT_OK;
        else return lqa_eprintf("lqa-ingest stats: unknown option or missing value '%s'", lqa_bad_option(argc, argv)),
                    fputs(STATS_USAGE, stderr), LQA_EXIT_USAGE;
    }
    if (!db || optind != argc) return fprintf(stderr, "lqa-ingest stats: --db DB is required, no other arguments\n\n%s", STATS_USAGE), LQA_EXIT_USAGE;
    lqa_store *s = open_store("stats", db);
    if (!s) return LQA_EXIT_FATAL;
    json_t *o = gather(lqa_store_db(s));
    if (as_json) {
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        mallocCheck(text);
        printf("%s\n", text);
        free(text);
    } else {
        print_text(o);
    }
    json_decref(o);
    lqa_store_close(s);
    return LQA_EXIT_OK;
}

int lqa_cmd_search(int argc, char **argv) {
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"limit", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *db = NULL;
    int limit = 20, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:n:h", opts, NULL)) != -1) {
        if (opt == 'd') db = optarg;
        else if (opt == 'n') limit = atoi(optarg);
        else if (opt == 'h') return fputs(SEARCH_USAGE, stdout), LQA_EXIT_OK;
        else return lqa_eprintf("lqa-ingest search: unknown option or missing value '%s'", lqa_bad_option(argc, argv)),
                    fputs(SEARCH_USAGE, stderr), LQA_EXIT_USAGE;
    }
    if (!db || optind != argc - 1 || limit < 1)
        return fprintf(stderr, "lqa-ingest search: expected --db DB and one QUERY\n\n%s", SEARCH_USAGE), LQA_EXIT_USAGE;
    lqa_err qerr;
    if (lqa_store_fts_syntax(argv[optind], &qerr) != 0) /* the user's error, told apart from the store's */
        return lqa_eprintf("lqa-ingest search: query '%s': %s; expected FTS5 syntax (words, \"phrase\", AND, OR, "
                           "NOT)", argv[optind], qerr.msg), LQA_EXIT_USAGE;
    lqa_store *s = open_store("search", db);
    if (!s) return LQA_EXIT_FATAL;
    sqlite3 *sdb = lqa_store_db(s);
    sqlite3_stmt *st = prep(sdb,
                            "SELECT d.id, d.title, s.title, snippet(sections_fts, 1, '[', ']', '...', 16) "
                            "FROM sections_fts JOIN sections s ON s.id = sections_fts.rowid "
                            "JOIN documents d ON d.id = s.doc_id WHERE sections_fts MATCH ? AND d.synthetic = 0 "
                            "ORDER BY rank LIMIT ?");
    sqliteCheck(sqlite3_bind_text(st, 1, argv[optind], -1, SQLITE_TRANSIENT), sdb);
    sqliteCheck(sqlite3_bind_int(st, 2, limit), sdb);
    int rc, hits = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        hits++;
        /* one line per snippet: the section text's line breaks become spaces */
        char *snip = lqa_strdup((const char *)sqlite3_column_text(st, 3));
        for (char *p = snip; *p; p++)
            if (*p == '\n') *p = ' ';
        char title[1024], sec[1024]; /* titles may come from file names */
        const char *t = (const char *)sqlite3_column_text(st, 1), *h = (const char *)sqlite3_column_text(st, 2);
        lqa_escape(t ? t : "", t ? strlen(t) : 0, title, sizeof title);
        lqa_escape(h ? h : "", h ? strlen(h) : 0, sec, sizeof sec);
        printf("doc %lld \"%s\" > %s\n    %s\n", (long long)sqlite3_column_int64(st, 0), title, sec, snip);
        free(snip);
    }
    int status = LQA_EXIT_OK;
    if (rc != SQLITE_DONE) { /* the query is valid: the store's index or text is damaged */
        lqa_eprintf("lqa-ingest search: %s: the search failed: %s (SQLite error %d; the store's full-text index "
                    "or text is damaged: check it with sqlite3 %s 'PRAGMA integrity_check', or re-ingest)",
                db, sqlite3_errmsg(sdb), sqlite3_extended_errcode(sdb), db);
        status = LQA_EXIT_FATAL;
    } else if (!hits) {
        lqa_oprintf("no sections match '%s'", argv[optind]);
    }
    sqlite3_finalize(st);
    lqa_store_close(s);
    return status;
}
