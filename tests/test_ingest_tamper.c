/* test_ingest_tamper.c: store reads that verify what they read (issue 16), on stores made with
 * the write API from random texts and then edited with SQL the way a damaged or hand-edited
 * file would be: evidence offsets reversed or out of range, a pair pointing at a missing
 * document, a span that no longer holds its answer, a document's text swapped for another's,
 * a damaged full-text index and damaged pages. Each is refused by the read API and by
 * `lqa-ingest export|search|stats`, naming the file and the pair or document. And two (or more)
 * processes creating the same new store at once both succeed. */
#include "tests/testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/rng.h"
#include "store/store.h"
#include "tests/test_sql_util.h"

static lqa_rng g_rng;

/* Random words of exactly n bytes (lowercase letters and spaces). */
static char *random_text(size_t n) {
    char *t = lqa_malloc(n + 1);
    for (size_t i = 0; i < n; i++) t[i] = lqa_rng_below(&g_rng, 7) == 0 ? ' ' : (char)('a' + lqa_rng_below(&g_rng, 26));
    t[0] = 'x';
    t[n] = '\0';
    return t;
}

typedef struct made {
    char db[600];
    int64_t doc[3], qa[3 * 4];
    size_t len;
    char word[16]; /* a word of document 0, for searches */
} made;

/* A store of three documents of the same length, each with one section (FTS row) and four
 * pairs whose answer is the text at a random span. */
static void make_store(made *m, const char *name) {
    snprintf(m->db, sizeof m->db, "%s/%s", lqa_test_tmpdir(), name);
    lqa_err err;
    lqa_store *s = lqa_store_open(m->db, 1, &err);
    assert_non_null(s);
    m->len = 3000 + lqa_rng_below(&g_rng, 3000);
    lqa_store_begin(s);
    int64_t src = lqa_store_source(s, "unit");
    for (int d = 0; d < 3; d++) {
        char *text = random_text(m->len);
        memcpy(text, "Heading\n\n", 9);
        uint8_t h[32];
        char hex[65];
        lqa_sha256(text, m->len, h);
        lqa_hex(h, 32, hex);
        lqa_store_doc_in in = {.source_id = src, .hash_hex = hex, .title = "T", .format = "text", .path = "x.txt",
                               .split = "train", .text = text, .text_len = m->len};
        m->doc[d] = lqa_store_add_doc(s, &in);
        lqa_store_add_section(s, m->doc[d], 0, -1, 1, "Heading", 0, m->len, text, m->len);
        if (d == 0) snprintf(m->word, sizeof m->word, "%.6s", text + 9 + lqa_rng_below(&g_rng, 100));
        for (int k = 0; k < 4; k++) {
            size_t a = 20 + lqa_rng_below(&g_rng, m->len - 60), b = a + 5 + lqa_rng_below(&g_rng, 30);
            char *ans = lqa_strndup(text + a, b - a);
            lqa_store_qa_in q = {.doc_id = m->doc[d], .question = "Q?", .answer = ans, .kind = "section",
                                 .generator = "section:heading", .ev_start = a, .ev_end = b, .doc_len = m->len};
            m->qa[d * 4 + k] = lqa_store_add_qa(s, &q);
            free(ans);
        }
        free(text);
    }
    lqa_store_commit(s);
    lqa_store_close(s);
    /* keep no WAL beside it: the tests edit the main file */
    assert_int_equal(lqa_test_run(NULL, "sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE)'", m->db), 0);
}

static void sql(const made *m, const char *q) {
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "sqlite3 '%s' \"PRAGMA foreign_keys=OFF; %s\"", m->db, q);
    if (rc != 0) fail_msg("sqlite3 %s: %s", q, out.data);
    lqa_buf_free(&out);
}

static int count_qa(const lqa_store_qa *q, void *ctx) {
    (*(int *)ctx)++;
    return 0;
}

/* lqa_store_each_qa and `lqa-ingest export` both refuse the store, naming what is wrong. */
static void expect_refused(const made *m, const char *what, int64_t id) {
    lqa_err err;
    lqa_store *s = lqa_store_open(m->db, 0, &err);
    assert_non_null(s);
    int n = 0;
    assert_int_equal(lqa_store_each_qa(s, NULL, NULL, count_qa, &n, &err), -1);
    char idstr[40];
    snprintf(idstr, sizeof idstr, "QA pair %lld", (long long)id);
    if (!strstr(err.msg, idstr) || !strstr(err.msg, what) || !strstr(err.msg, m->db))
        fail_msg("each_qa: expected \"%s\" and \"%s\" and the file, got: %s", idstr, what, err.msg);
    lqa_store_close(s);
    lqa_buf out = {0};
    char *o = lqa_path_join(lqa_test_tmpdir(), "export.jsonl");
    int rc = lqa_test_run(&out, "%s export --db '%s' --format jsonl -o '%s'", lqa_test_tool("lqa-ingest"), m->db, o);
    printf("# %s", out.data);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out.data, idstr));
    assert_false(lqa_path_exists(o)); /* nothing half-written */
    lqa_buf_free(&out);
    free(o);
}

static void test_clean_store_exports(void **state) {
    made m;
    make_store(&m, "clean.db");
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s export --db '%s' --format jsonl -o -", lqa_test_tool("lqa-ingest"), m.db);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "exported 12 QA pairs"));
    lqa_buf_free(&out);
}

static void test_reversed_and_out_of_range_spans(void **state) {
    made m;
    make_store(&m, "spans.db");
    int64_t bad = m.qa[lqa_rng_below(&g_rng, 12)];
    char q[200];
    snprintf(q, sizeof q, "UPDATE qa SET ev_start = ev_end + 3 WHERE id = %lld", (long long)bad);
    sql(&m, q);
    expect_refused(&m, "reversed", bad);
    snprintf(q, sizeof q, "UPDATE qa SET ev_start = ev_end - 3 WHERE id = %lld", (long long)bad); /* in order again */
    sql(&m, q);
    snprintf(q, sizeof q, "UPDATE qa SET ev_end = doc_len + %d WHERE id = %lld", 1 + (int)lqa_rng_below(&g_rng, 99),
             (long long)bad);
    sql(&m, q);
    expect_refused(&m, "outside its document", bad);
}

/* The anchor span is checked as the evidence span is. */
static void test_reversed_anchor_span(void **state) {
    made m;
    make_store(&m, "anchor.db");
    int64_t bad = m.qa[lqa_rng_below(&g_rng, 12)];
    char q[200];
    snprintf(q, sizeof q, "UPDATE qa SET anchor_start = %d, anchor_end = %d WHERE id = %lld",
             5 + (int)lqa_rng_below(&g_rng, 50), 2 + (int)lqa_rng_below(&g_rng, 3), (long long)bad);
    sql(&m, q);
    expect_refused(&m, "anchor span", bad);
}

static void test_pair_without_document(void **state) {
    made m;
    make_store(&m, "orphan.db");
    int64_t bad = m.qa[lqa_rng_below(&g_rng, 12)];
    char q[200];
    snprintf(q, sizeof q, "UPDATE qa SET doc_id = %lld WHERE id = %lld", (long long)(m.doc[2] + 10 + lqa_rng_below(&g_rng, 90)),
             (long long)bad);
    sql(&m, q);
    expect_refused(&m, "which is not in the store", bad);
}

/* A span in range that no longer holds its answer: export refuses it (the read API cannot tell
 * without the text; export has it). */
static void test_span_without_answer(void **state) {
    made m;
    make_store(&m, "moved.db");
    int64_t bad = m.qa[lqa_rng_below(&g_rng, 12)];
    char q[200];
    snprintf(q, sizeof q, "UPDATE qa SET answer = answer || 'QQ' WHERE id = %lld", (long long)bad);
    sql(&m, q);
    lqa_buf out = {0};
    char *o = lqa_path_join(lqa_test_tmpdir(), "moved.jsonl");
    int rc = lqa_test_run(&out, "%s export --db '%s' --format jsonl -o '%s'", lqa_test_tool("lqa-ingest"), m.db, o);
    printf("# %s", out.data);
    assert_int_equal(rc, 1);
    char idstr[40];
    snprintf(idstr, sizeof idstr, "QA pair %lld", (long long)bad);
    assert_non_null(strstr(out.data, idstr));
    assert_non_null(strstr(out.data, "does not hold its answer"));
    assert_false(lqa_path_exists(o));
    lqa_buf_free(&out);
    free(o);
}

/* Two documents of the same length swap their texts: each frame is intact (zstd's checksum
 * passes), but the stored SHA-256 no longer matches. */
static void test_swapped_text(void **state) {
    made m;
    make_store(&m, "swap.db");
    int a = (int)lqa_rng_below(&g_rng, 3), b = (a + 1 + (int)lqa_rng_below(&g_rng, 2)) % 3;
    char q[300];
    snprintf(q, sizeof q, "UPDATE documents SET text = (SELECT text FROM documents WHERE id = %lld) WHERE id = %lld",
             (long long)m.doc[b], (long long)m.doc[a]);
    sql(&m, q);
    lqa_err err;
    lqa_store *s = lqa_store_open(m.db, 0, &err);
    assert_non_null(s);
    lqa_store_doc d;
    assert_int_equal(lqa_store_get_doc(s, m.doc[a], &d, &err), -1);
    assert_non_null(strstr(err.msg, "does not match its stored SHA-256"));
    assert_non_null(strstr(err.msg, m.db));
    assert_int_equal(lqa_store_get_doc(s, m.doc[b], &d, &err), 0);
    lqa_store_doc_free(&d);
    lqa_store_close(s);
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s export --db '%s' --format longalpaca -o -", lqa_test_tool("lqa-ingest"), m.db);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out.data, "does not match its stored SHA-256"));
    lqa_buf_free(&out);
}

/* A damaged full-text index: a valid query is not called bad syntax, and the message names the
 * store; a malformed query is still the user's error (exit 2). Then damaged pages: every
 * command names the file. */
static void test_damaged_database(void **state) {
    made m;
    make_store(&m, "damaged.db");
    lqa_buf out = {0};
    const char *tool = lqa_test_tool("lqa-ingest");
    int rc = lqa_test_run(&out, "%s search --db '%s' '%s'", tool, m.db, m.word);
    assert_int_equal(rc, 0);
    sql(&m, "UPDATE sections_fts_data SET block = randomblob(length(block)) WHERE id > 10");
    lqa_buf_clear(&out);
    rc = lqa_test_run(&out, "%s search --db '%s' '%s'", tool, m.db, m.word);
    printf("# %s", out.data);
    assert_int_equal(rc, 1);
    assert_null(strstr(out.data, "expected FTS5 syntax"));
    assert_non_null(strstr(out.data, m.db));
    lqa_buf_clear(&out);
    rc = lqa_test_run(&out, "%s search --db '%s' 'AND AND \"'", tool, m.db);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out.data, "expected FTS5 syntax"));
    /* damaged pages: random bytes over every page after the first (the header stays valid) */
    long size = 0;
    FILE *f = fopen(m.db, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    for (long off = 4096 + 8; off + 64 < size; off += 4096) {
        unsigned char junk[64];
        for (int i = 0; i < 64; i++) junk[i] = (unsigned char)lqa_rng_below(&g_rng, 256);
        fseek(f, off, SEEK_SET);
        fwrite(junk, 1, sizeof junk, f);
    }
    fclose(f);
    const char *cmds[] = {"stats --db '%s'", "export --db '%s' --format jsonl -o -", "search --db '%s' word"};
    for (int i = 0; i < 3; i++) {
        char c[800];
        snprintf(c, sizeof c, cmds[i], m.db);
        lqa_buf_clear(&out);
        rc = lqa_test_run(&out, "%s %s", tool, c);
        printf("# %s: %d: %s", c, rc, out.data);
        assert_true(rc == 1 || rc == 3); /* an error, not a crash (134, 139) and not success */
        assert_non_null(strstr(out.data, m.db));
    }
    lqa_buf_free(&out);
}

/* Several processes create the same new store at the same moment (a pipe releases them
 * together): all succeed, the schema is made once, every source row they add is there. */
static void test_concurrent_creators(void **state) {
    enum { ROUNDS = 12, PROCS = 6 };
    for (int round = 0; round < ROUNDS; round++) {
        char db[600];
        snprintf(db, sizeof db, "%s/race%d-%llx.db", lqa_test_tmpdir(), round, (unsigned long long)lqa_rng_u64(&g_rng));
        int gate[2];
        assert_int_equal(pipe(gate), 0);
        pid_t pids[PROCS];
        fflush(NULL);
        for (int p = 0; p < PROCS; p++) {
            pids[p] = fork();
            assert_true(pids[p] >= 0);
            if (pids[p] == 0) {
                close(gate[1]);
                char c;
                if (read(gate[0], &c, 1) < 0) _exit(9); /* returns 0 when the parent closes the pipe */
                lqa_err err;
                lqa_store *s = lqa_store_open(db, 1, &err);
                if (!s) {
                    fprintf(stderr, "%s\n", err.msg);
                    _exit(2);
                }
                char name[32];
                snprintf(name, sizeof name, "creator%d", p);
                lqa_store_begin(s);
                lqa_store_source(s, name);
                lqa_store_commit(s);
                lqa_store_close(s);
                _exit(0);
            }
        }
        close(gate[0]);
        close(gate[1]); /* all go */
        for (int p = 0; p < PROCS; p++) {
            int st;
            assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("creator %d of round %d failed (status %d)", p, round, st);
        }
        assert_int_equal(test_sql_int(db, "SELECT count(*) FROM sources"), PROCS);
        assert_int_equal(test_sql_int(db, "PRAGMA user_version"), LQA_STORE_SCHEMA_VERSION);
    }
}

/* The report's case through the tool: `lqa-ingest add` run three times at once on a new
 * store, each with its own document: all exit 0 and all three documents are in. */
static void test_concurrent_adds_cli(void **state) {
    for (int round = 0; round < 3; round++) {
        char db[600];
        snprintf(db, sizeof db, "%s/cli-race%d.db", lqa_test_tmpdir(), round);
        lqa_buf cmd = {0};
        for (int p = 0; p < 3; p++) {
            char name[64];
            snprintf(name, sizeof name, "%s/race%d-%d.txt", lqa_test_tmpdir(), round, p);
            char *t = random_text(2000 + lqa_rng_below(&g_rng, 2000));
            lqa_test_write(name, t, strlen(t));
            free(t);
            lqa_buf_printf(&cmd, "(%s add -q --threads 1 --db '%s' '%s' || echo FAILED) & ", lqa_test_tool("lqa-ingest"),
                           db, name);
        }
        lqa_buf_puts(&cmd, "wait");
        lqa_buf out = {0};
        assert_int_equal(lqa_test_run(&out, "%s", cmd.data), 0);
        if (strstr(out.data ? out.data : "", "FAILED")) fail_msg("a concurrent add failed: %s", out.data);
        assert_int_equal(test_sql_int(db, "SELECT count(*) FROM documents WHERE synthetic = 0"), 3);
        lqa_buf_free(&out);
        lqa_buf_free(&cmd);
    }
}

/* `lqa-build shards --kind sft` over a selection with no pairs (here a kind no pair has) is an
 * empty result, not undefined behaviour: it sorted a NULL array (qsort(NULL, 0), which UBSan
 * aborts on; this test fails under `make test SAN=1` without the guard in dataset/build.c). */
static void test_sft_shards_without_pairs(void **state) {
    char words[200][10];
    for (int i = 0; i < 200; i++) {
        int n = 2 + (int)lqa_rng_below(&g_rng, 7);
        for (int k = 0; k < n; k++) words[i][k] = (char)('a' + lqa_rng_below(&g_rng, 26));
        words[i][n] = '\0';
    }
    lqa_buf paths = {0};
    for (int d = 0; d < 3; d++) {
        lqa_buf t = {0};
        for (int p = 0; p < 40; p++) {
            for (int w = 0; w < 50; w++) lqa_buf_printf(&t, "%s%s", w ? " " : "", words[lqa_rng_below(&g_rng, 200)]);
            lqa_buf_puts(&t, ".\n\n");
        }
        char name[64];
        snprintf(name, sizeof name, "sft%d.txt", d);
        char *p = lqa_path_join(lqa_test_tmpdir(), name);
        lqa_test_write(p, t.data, t.len);
        lqa_buf_printf(&paths, " '%s'", p);
        free(p);
        lqa_buf_free(&t);
    }
    const char *dir = lqa_test_tmpdir();
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s add -q --db %s/sft.db %s && %s tokenizer --db %s/sft.db --vocab-size 300 --seed 7 -o "
                                "%s/sft.model && %s shards --db %s/sft.db --tokenizer %s/sft.model --kind sft --max-len 512 "
                                "--kinds nosuchkind -o %s/sft-out",
                          lqa_test_tool("lqa-ingest"), dir, paths.data, lqa_test_tool("lqa-build"), dir, dir,
                          lqa_test_tool("lqa-build"), dir, dir, dir);
    printf("# %s", out.data);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "0 records"));
    lqa_buf_free(&out);
    lqa_buf_free(&paths);
}

int main(void) {
    lqa_rng_seed(&g_rng, lqa_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_store_exports),
        cmocka_unit_test(test_reversed_and_out_of_range_spans),
        cmocka_unit_test(test_reversed_anchor_span),
        cmocka_unit_test(test_pair_without_document),
        cmocka_unit_test(test_span_without_answer),
        cmocka_unit_test(test_swapped_text),
        cmocka_unit_test(test_damaged_database),
        cmocka_unit_test(test_concurrent_creators),
        cmocka_unit_test(test_concurrent_adds_cli),
        cmocka_unit_test(test_sft_shards_without_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
