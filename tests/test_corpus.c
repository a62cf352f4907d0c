/* test_corpus.c: the default corpus (build/corpus, laid out by scripts/corpus.sh from Debian
 * packages) ingested with lqa-ingest add --join: EVERY QA pair is walked and its evidence span
 * checked to hold its answer, and the bars of issue 2 are asserted: >= 3,000 pairs, >= 3
 * formats, >= 5 non-synthetic kinds, non-synthetic pairs a majority, median document length of
 * the pairs >= 8,000 tokens (4 chars/token) and >= 500 pairs over 32,000 tokens; and those of
 * issue 15: every generated non-synthetic pair has an anchor inside its document, >= 40 % of the
 * non-synthetic pairs in documents over 16k tokens have their evidence over 8k tokens (bytes/4)
 * from their anchor, no exact duplicate pair, and >= a quarter of the test split's pairs come
 * from documents over 16k tokens. Skipped, with the reason, when the corpus packages are not
 * installed. */
#include "tests/testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/progress.h"
#include "store/store.h"

typedef struct walk {
    lqa_store *s;
    int64_t doc_id;
    lqa_store_doc doc;
    long pairs, spans, bad;
} walk;

static int check_pair(const lqa_store_qa *q, void *ctx) {
    walk *w = ctx;
    w->pairs++;
    if (q->ev_end == 0) return 0; /* abstractive (imported) pair: nothing to verify */
    if (q->doc_id != w->doc_id) {
        if (w->doc_id) lqa_store_doc_free(&w->doc);
        lqa_err err;
        if (lqa_store_get_doc(w->s, q->doc_id, &w->doc, &err) != 0) fail_msg("%s", err.msg);
        w->doc_id = q->doc_id;
    }
    w->spans++;
    if (q->anchor_end > q->doc_len || q->anchor_start > q->anchor_end) w->bad++;
    int ok = q->ev_start < q->ev_end && q->ev_end <= w->doc.text_len && q->doc_len == w->doc.text_len &&
             memmem(w->doc.text + q->ev_start, q->ev_end - q->ev_start, q->answer, strlen(q->answer));
    if (!ok && w->bad++ < 5)
        printf("# pair %lld (%s): answer \"%.80s\" not at [%zu, %zu) of document %lld\n", (long long)q->id, q->kind,
               q->answer, q->ev_start, q->ev_end, (long long)q->doc_id);
    return 0;
}

static long long one(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Median of n_chars/4 over non-synthetic pairs, by SQL (ORDER BY with OFFSET). */
static double median_tokens(sqlite3 *db) {
    long long n = one(db, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0");
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT d.n_chars FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0 "
             "ORDER BY d.n_chars LIMIT 1 OFFSET %lld", n / 2);
    return (double)one(db, sql) / 4.0;
}

static void test_corpus_bars(void **state) {
    const char *corpus = "build/corpus";
    {   /* a no-op when build/corpus is complete and of the current layout */
        lqa_buf out = {0};
        if (lqa_test_run(&out, "scripts/corpus.sh %s", corpus) != 0) {
            printf("# skipped: scripts/corpus.sh could not lay out the corpus (packages missing?): %s",
                   out.data ? out.data : "");
            lqa_buf_free(&out);
            skip();
        }
        lqa_buf_free(&out);
    }
    char *db = lqa_path_join(lqa_test_tmpdir(), "corpus.db");
    lqa_buf out = {0};
    double t0 = lqa_now();
    int rc = lqa_test_run(&out, "%s add --join --db %s %s", lqa_test_tool("lqa-ingest"), db, corpus);
    printf("# ingest took %.1f s, exit %d\n", lqa_now() - t0, rc);
    /* the summary (and any failure) goes to the log */
    for (char *line = strtok(out.data, "\n"); line; line = strtok(NULL, "\n"))
        if (!strstr(line, "warning:")) printf("# %s\n", line);
    lqa_buf_free(&out);
    assert_int_equal(rc, 0);
    lqa_err err;
    walk w = {.s = lqa_store_open(db, 0, &err)};
    assert_non_null(w.s);
    assert_int_equal(lqa_store_each_qa(w.s, NULL, NULL, check_pair, &w, &err), 0);
    if (w.doc_id) lqa_store_doc_free(&w.doc);
    printf("# walked %ld pairs, %ld spans checked, %ld bad\n", w.pairs, w.spans, w.bad);
    assert_int_equal(w.bad, 0);
    sqlite3 *h = lqa_store_db(w.s);
    long long total = one(h, "SELECT count(*) FROM qa");
    long long synthetic = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic != 0");
    long long formats = one(h, "SELECT count(DISTINCT d.format) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0");
    long long kinds = one(h, "SELECT count(DISTINCT kind) FROM qa WHERE kind != 'synthetic'");
    long long over32k = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id "
                               "WHERE d.synthetic = 0 AND d.n_chars > 128000");
    double median = median_tokens(h);
    printf("# pairs %lld (synthetic %lld), formats %lld, kinds %lld, median %.0f tokens, over 32k: %lld\n", total,
           synthetic, formats, kinds, median, over32k);
    assert_int_equal(w.pairs, total);
    assert_true(total >= 3000);
    assert_true(formats >= 3);
    assert_true(kinds >= 5);
    assert_true(2 * synthetic < total);
    assert_true(median >= 8000);
    assert_true(over32k >= 500);
    /* issue 15: long-range questions, anchors, no duplicates, long documents in test */
    long long unanchored = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0"
                                  " AND q.generator != 'import' AND q.anchor_end = 0");
    long long in_long = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0"
                               " AND d.n_chars >= 65536");
    long long far = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.synthetic = 0"
                           " AND d.n_chars >= 65536 AND q.anchor_end > 0 AND q.ev_end > 0"
                           " AND max(q.anchor_start, q.ev_start) - min(q.anchor_end, q.ev_end) > 32768");
    long long dups = one(h, "SELECT count(*) - count(DISTINCT doc_id || char(1) || question || char(1) || answer) FROM qa");
    long long test_pairs = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.split = 'test'");
    long long test_long = one(h, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.split = 'test'"
                                 " AND d.n_chars >= 65536");
    printf("# unanchored %lld; in documents over 16k tokens %lld, far %lld; duplicates %lld; test %lld pairs, %lld long\n",
           unanchored, in_long, far, dups, test_pairs, test_long);
    assert_int_equal(unanchored, 0);
    assert_true(10 * far >= 4 * in_long);
    assert_int_equal(dups, 0);
    assert_true(test_pairs > 0 && 4 * test_long >= test_pairs);
    lqa_store_close(w.s);
    free(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_corpus_bars)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
