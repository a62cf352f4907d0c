/* test_ingest_threads.c: lqa-ingest add --threads N writes the same store as --threads 1.
 * One input set holds many small documents, duplicates (within the run and, on a re-run,
 * against the store), inputs that fail (binary, malformed XML, a cut JSON array), inputs that
 * warn (invalid UTF-8, recovered HTML), multi-document inputs (a MediaWiki dump, QA sets) and
 * two --join manuals with bad pages inside them. Runs with 1, 2 and 4 threads must agree byte for byte on the printed
 * summary, the warnings and errors (and their order), the exit status, every table's rows
 * (ids, hashes, splits, compressed texts, sections, FTS5 rows, pairs) and the jsonl export;
 * a re-run with each thread count adds nothing and says so the same way. A single streamed
 * input (a MediaWiki dump, parsed on a worker beside the writer) gives the same store too. */
#include "tests/testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "store/store.h"
#include "tests/test_prose_util.h"
#include "tests/test_sql_util.h"

static char g_inputs[600];

/* A manual of several pages (--join makes one document): index.html with a TOC, chapters
 * in TOC order (ch2 before ch1), a page linked from a chapter's own TOC, bad pages inside it
 * (an empty page: skipped with a warning naming its place in the reading order; invalid
 * UTF-8; a link to a missing page) and a page no TOC links to (appended by name). */
static void write_manual(lqa_rng *r, const char *dir, const char *name) {
    char p[800];
    lqa_buf idx = {0};
    lqa_buf_printf(&idx, "<html><head><title>%s</title></head><body><h1>The %s</h1><div class=\"toc\"><ul>"
                         "<li><a href=\"ch2.html\">Two</a></li><li><a href=\"empty.html\">Empty</a></li>"
                         "<li><a href=\"missing.html\">Gone</a></li><li><a href=\"ch1.html#s1\">One</a></li>"
                         "</ul></div></body></html>", name, name);
    snprintf(p, sizeof p, "%s/index.html", dir);
    lqa_test_write(p, idx.data, idx.len);
    lqa_buf_free(&idx);
    snprintf(p, sizeof p, "%s/empty.html", dir);
    lqa_test_write(p, "", 0);
    const char *sub = "<html><head><title>Notes</title></head><body><h3>Notes \xff\xfe bytes</h3>"
                      "<p>Invalid bytes in a page of the manual. <i>Unclosed</p></body></html>";
    snprintf(p, sizeof p, "%s/notes.html", dir);
    lqa_test_write(p, sub, strlen(sub));
    const char *loose = "<html><head><title>Loose</title></head><body><h2>Loose page</h2><p>No table of "
                        "contents links here, <b>so it comes last.</p></body></html>";
    snprintf(p, sizeof p, "%s/zz-loose.html", dir);
    lqa_test_write(p, loose, strlen(loose));
    for (int c = 1; c <= 2; c++) {
        lqa_buf b = {0};
        lqa_buf_printf(&b, "<html><head><title>Chapter %d</title></head><body><h2>Chapter %d</h2>", c, c);
        if (c == 2) lqa_buf_puts(&b, "<div class=\"toc\"><a href=\"notes.html\">Notes</a></div>");
        for (int s = 0; s < 4; s++) {
            lqa_buf_printf(&b, "<h3>Section %d.%d</h3><p>", c, s + 1);
            for (int k = 0; k < 5; k++) rand_sentence(r, &b);
            lqa_buf_puts(&b, "</p><table><tr><th>Name</th><th>Value</th></tr>");
            for (int row = 0; row < 3; row++) lqa_buf_printf(&b, "<tr><td>key%d_%d_%d</td><td>v%d</td></tr>", c, s, row, row);
            lqa_buf_puts(&b, "</table>");
        }
        lqa_buf_puts(&b, "<p>Unclosed <b>bold</p></body></html>"); /* recovered HTML: a warning */
        snprintf(p, sizeof p, "%s/ch%d.html", dir, c);
        lqa_test_write(p, b.data, b.len);
        lqa_buf_free(&b);
    }
}

static int group_setup(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    snprintf(g_inputs, sizeof g_inputs, "%s/inputs", lqa_test_tmpdir());
    char p[700];
    for (int i = 0; i < 24; i++) {
        snprintf(p, sizeof p, "%s/a/doc%02d.md", g_inputs, i);
        char marker[32];
        snprintf(marker, sizeof marker, "%llx", (unsigned long long)lqa_rng_u64(&r));
        write_markdown(&r, p, marker, 2 + i % 5);
    }
    /* duplicates within the run: the same text under other names, in another source too */
    const char *fx = lqa_test_fixtures();
    if (lqa_test_run(NULL, "cp %s/a/doc03.md %s/a/doc03-copy.md && mkdir -p %s/b %s/bad %s/manual && "
                           "cp %s/a/doc07.md %s/b/zz-dup.md && cp %s/xml/mediawiki.xml %s/xml/docbook5.xml "
                           "%s/xml/sphinx.html %s/text/kjv-sample.txt %s/qaset/alpaca.json %s/qaset/squad.json %s/b/ "
                           "&& mkdir -p %s/manual2",
                     g_inputs, g_inputs, g_inputs, g_inputs, g_inputs, g_inputs, g_inputs, fx, fx, fx, fx, fx, fx,
                     g_inputs, g_inputs) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/manual", g_inputs);
    write_manual(&r, p, "Guide");
    snprintf(p, sizeof p, "%s/manual2", g_inputs);
    write_manual(&r, p, "Handbook");
    unsigned char bin[2048];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)lqa_rng_below(&r, 256);
    bin[0] = 0;
    snprintf(p, sizeof p, "%s/bad/binary.dat", g_inputs);
    lqa_test_write(p, bin, sizeof bin);
    const char *mal = "<?xml version=\"1.0\"?>\n<article><title>Broken</title>\n<para>unclosed <b>tags</para>\n";
    snprintf(p, sizeof p, "%s/bad/malformed.xml", g_inputs);
    lqa_test_write(p, mal, strlen(mal));
    const char *cut = "[{\"instruction\": \"What is up?\", \"output\": \"The sky.\"},\n {\"instruction\": \"Cut";
    snprintf(p, sizeof p, "%s/bad/cut.json", g_inputs);
    lqa_test_write(p, cut, strlen(cut));
    const char *bad_utf8 = "Invalid \xff\xfe bytes in an otherwise plain text file. It has two sentences.\n";
    snprintf(p, sizeof p, "%s/bad/invalid-utf8.txt", g_inputs);
    lqa_test_write(p, bad_utf8, strlen(bad_utf8));
    snprintf(p, sizeof p, "%s/bad/empty.txt", g_inputs);
    lqa_test_write(p, "", 0);
    return 0;
}

/* Every row of every table, in id order, as one byte string (FTS5 by its rows: its segments
 * depend on where the batches committed, which is timing, not content). */
static void dump_store(const char *db, lqa_buf *out) {
    static const char *const queries[] = {
        "SELECT * FROM sources ORDER BY id",
        "SELECT * FROM documents ORDER BY id",
        "SELECT * FROM sections ORDER BY id",
        "SELECT rowid, title, body FROM sections_fts ORDER BY rowid",
        "SELECT rowid FROM sections_fts WHERE sections_fts MATCH 'section OR chapter OR bee' ORDER BY rank, rowid",
        "SELECT * FROM qa ORDER BY id",
        "PRAGMA user_version",
    };
    lqa_err err;
    lqa_store *store = lqa_store_open(db, 0, &err); /* registers lqa_section_text, the FTS5 body */
    assert_non_null(store);
    sqlite3 *h = lqa_store_db(store);
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(h, queries[q], -1, &st, NULL), SQLITE_OK);
        lqa_buf_printf(out, "== %s\n", queries[q]);
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const void *v = sqlite3_column_blob(st, c);
                int n = sqlite3_column_bytes(st, c);
                lqa_buf_printf(out, "%d:%d:", sqlite3_column_type(st, c), n);
                if (v) lqa_buf_append(out, v, (size_t)n);
                lqa_buf_putc(out, '|');
            }
            lqa_buf_putc(out, '\n');
        }
        sqlite3_finalize(st);
    }
    lqa_store_close(store);
}

/* The run's stdout without its timing ("(0.3 s)"), which is the one thing allowed to differ. */
static void strip_timing(lqa_buf *b) {
    char *t = strstr(b->data ? b->data : "", " warnings (");
    if (!t) t = strstr(b->data ? b->data : "", " warning (");
    if (!t) return;
    char *open = strchr(t, '('), *close = strchr(open, ')');
    memmove(open, close + 1, strlen(close + 1) + 1);
    b->len = strlen(b->data);
}

typedef struct run_out {
    int rc;
    lqa_buf out, err, store, jsonl;
} run_out;

static void run_add_path(const char *name, int threads, const char *db, const char *inputs, run_out *r) {
    char so[700], se[700], js[700];
    snprintf(so, sizeof so, "%s/%s.out", lqa_test_tmpdir(), name);
    snprintf(se, sizeof se, "%s/%s.err", lqa_test_tmpdir(), name);
    snprintf(js, sizeof js, "%s/%s.jsonl", lqa_test_tmpdir(), name);
    const char *tool = lqa_test_tool("lqa-ingest");
    /* braces: lqa_test_run appends 2>&1, which must not undo the 2> of the command */
    r->rc = lqa_test_run(NULL, "{ %s add --join --threads %d --seed 5 --db %s %s >%s 2>%s; }", tool, threads, db,
                         inputs, so, se);
    size_t n;
    char *d;
    assert_int_equal(lqa_read_file(so, &d, &n, NULL), 0);
    lqa_buf_append(&r->out, d, n);
    free(d);
    assert_int_equal(lqa_read_file(se, &d, &n, NULL), 0);
    lqa_buf_append(&r->err, d, n);
    free(d);
    strip_timing(&r->out);
    dump_store(db, &r->store);
    assert_int_equal(lqa_test_run(NULL, "%s export --db %s --format jsonl -o %s", tool, db, js), 0);
    assert_int_equal(lqa_read_file(js, &d, &n, NULL), 0);
    lqa_buf_append(&r->jsonl, d, n);
    free(d);
}

static void run_add(const char *name, int threads, const char *db, run_out *r) {
    run_add_path(name, threads, db, g_inputs, r);
}

static void run_free(run_out *r) {
    lqa_buf_free(&r->out);
    lqa_buf_free(&r->err);
    lqa_buf_free(&r->store);
    lqa_buf_free(&r->jsonl);
}

static void assert_same(const char *what, const lqa_buf *a, const lqa_buf *b, int threads) {
    if (a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0)) return;
    size_t i = 0;
    while (i < a->len && i < b->len && a->data[i] == b->data[i]) i++;
    size_t from = i > 80 ? i - 80 : 0;
    print_error("%s differs with --threads %d at byte %zu (lengths %zu, %zu):\n1: %.200s\n%d: %.200s\n", what,
                threads, i, a->len, b->len, a->data + from, threads, b->data + from);
    fail();
}

static void test_threads_same_store(void **state) {
    int counts[] = {1, 2, 4};
    run_out runs[3] = {0}, reruns[3] = {0};
    for (int k = 0; k < 3; k++) {
        char db[700], name[32];
        snprintf(db, sizeof db, "%s/t%d.db", lqa_test_tmpdir(), counts[k]);
        snprintf(name, sizeof name, "t%d", counts[k]);
        run_add(name, counts[k], db, &runs[k]);
        snprintf(name, sizeof name, "t%d-again", counts[k]);
        run_add(name, counts[k], db, &reruns[k]);
    }
    printf("# --threads 1:\n%s%s", runs[0].out.data, runs[0].err.data);
    /* what the fixture set is for: failures, duplicates, warnings, a joined manual */
    assert_int_equal(runs[0].rc, 3);
    /* a failed input is reported once, as an error line on stderr (the summary counts them) */
    assert_non_null(strstr(runs[0].err.data, "error: ") && strstr(runs[0].err.data, "binary.dat"));
    assert_non_null(strstr(runs[0].err.data, "malformed.xml"));
    assert_non_null(strstr(runs[0].err.data, "cut.json"));
    assert_null(strstr(runs[0].out.data, "binary.dat"));
    assert_non_null(strstr(runs[0].out.data, "skipped 2 duplicates"));
    assert_non_null(strstr(runs[0].err.data, "invalid UTF-8"));
    assert_non_null(strstr(runs[0].err.data, "HTML recovered"));
    assert_non_null(memmem(runs[0].store.data, runs[0].store.len, "Section 2.4", 11)); /* the dump holds NULs */
    char db1[700];
    snprintf(db1, sizeof db1, "%s/t1.db", lqa_test_tmpdir());
    assert_int_equal(test_sql_int(db1, "SELECT count(*) FROM documents WHERE synthetic = 0 AND path LIKE '%/manual%'"), 2);
    /* each manual's bad pages: the empty one skipped (4th in its reading order: index, ch2,
     * the notes ch2's own TOC links, then it), the notes' invalid bytes, in input order */
    const char *skip1 = strstr(runs[0].err.data, "manual/empty.html:1: empty file");
    const char *skip2 = strstr(runs[0].err.data, "manual2/empty.html:1: empty file");
    assert_non_null(skip1);
    assert_non_null(skip2);
    assert_true(skip1 < skip2);
    assert_non_null(strstr(skip1, "(page 4 of the joined manual, skipped)"));
    assert_non_null(strstr(runs[0].err.data, "manual/notes.html:1: invalid UTF-8"));
    assert_true(test_sql_int(db1, "SELECT count(*) FROM sections WHERE title = 'Loose page'") == 2);
    assert_non_null(strstr(reruns[0].out.data, "added 0 documents"));
    assert_true(runs[0].jsonl.len > 1000);
    for (int k = 1; k < 3; k++) {
        assert_int_equal(runs[k].rc, runs[0].rc);
        assert_same("stdout", &runs[0].out, &runs[k].out, counts[k]);
        assert_same("stderr", &runs[0].err, &runs[k].err, counts[k]);
        assert_same("store", &runs[0].store, &runs[k].store, counts[k]);
        assert_same("export", &runs[0].jsonl, &runs[k].jsonl, counts[k]);
        assert_int_equal(reruns[k].rc, reruns[0].rc);
        assert_same("re-run stdout", &reruns[0].out, &reruns[k].out, counts[k]);
        assert_same("re-run stderr", &reruns[0].err, &reruns[k].err, counts[k]);
        assert_same("re-run store", &reruns[0].store, &reruns[k].store, counts[k]);
    }
    assert_same("store after a re-run", &runs[0].store, &reruns[0].store, 1);
    for (int k = 0; k < 3; k++) {
        run_free(&runs[k]);
        run_free(&reruns[k]);
    }
}

/* One streamed input (a MediaWiki dump: many documents) gets a worker of its own beside the
 * writer, and still gives the single-threaded store. */
static void test_threads_one_stream(void **state) {
    char dump[700], db1[700], db4[700];
    snprintf(dump, sizeof dump, "%s/b/mediawiki.xml", g_inputs);
    snprintf(db1, sizeof db1, "%s/mw1.db", lqa_test_tmpdir());
    snprintf(db4, sizeof db4, "%s/mw4.db", lqa_test_tmpdir());
    run_out a = {0}, b = {0};
    run_add_path("mw1", 1, db1, dump, &a);
    run_add_path("mw4", 4, db4, dump, &b);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_true(test_sql_int(db1, "SELECT count(*) FROM documents WHERE synthetic = 0") >= 2);
    assert_same("stdout", &a.out, &b.out, 4);
    assert_same("stderr", &a.err, &b.err, 4);
    assert_same("store", &a.store, &b.store, 4);
    assert_same("export", &a.jsonl, &b.jsonl, 4);
    run_free(&a);
    run_free(&b);
}

/* --threads is checked like every option; more threads than inputs is fine. */
static void test_threads_option(void **state) {
    const char *tool = lqa_test_tool("lqa-ingest");
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s add --db %s/x.db --threads 0 %s", tool, lqa_test_tmpdir(), g_inputs), 2);
    assert_non_null(strstr(out.data, "--threads"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s add --db %s/x.db --threads 2x %s", tool, lqa_test_tmpdir(), g_inputs), 2);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s add --help", tool), 0);
    assert_non_null(strstr(out.data, "--threads N"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s add --db %s/one.db --threads 8 %s/a/doc01.md", tool, lqa_test_tmpdir(),
                                  g_inputs), 0);
    assert_non_null(strstr(out.data, "added 1 document"));
    lqa_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_same_store),
        cmocka_unit_test(test_threads_one_stream),
        cmocka_unit_test(test_threads_option),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
