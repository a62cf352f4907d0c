/* test_ingest_cli.c: lqa-ingest end to end: a directory of good and bad inputs (empty, binary,
 * truncated gzip, malformed XML, an XXE file pointing at a secret local file, billion laughs,
 * deep nesting, invalid UTF-8, a JSON array cut in the middle): the run goes on, exits 3, names
 * the failed files, and the secret never reaches the store; re-running adds nothing; kill -9
 * mid-run leaves a valid store that a re-run completes to the same contents as a clean run;
 * stats --json, export (jsonl character offsets, longalpaca) and search agree with the store. */
#include "tests/testutil.h"

#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/progress.h"
#include "common/rng.h"
#include "store/store.h"
#include "tests/test_prose_util.h"
#include "tests/test_sql_util.h"

/* A KJV-style book: "Book C:V text" lines (the text parser's verse mode). */
static void write_verse_book(lqa_rng *r, const char *path, const char *book, int chapters) {
    lqa_buf b = {0};
    for (int c = 1; c <= chapters; c++)
        for (int v = 1; v <= 25; v++) {
            lqa_buf_printf(&b, "%s %d:%d ", book, c, v);
            int n = 1 + (int)lqa_rng_below(r, 3);
            for (int k = 0; k < n; k++) rand_sentence(r, &b);
            b.data[--b.len] = '\0';
            lqa_buf_putc(&b, '\n');
        }
    lqa_test_write(path, b.data, b.len);
    lqa_buf_free(&b);
}

typedef struct secret_scan {
    const char *secret;
    int docs, leaks;
} secret_scan;

static int scan_doc(const lqa_store_doc *d, void *ctx) {
    secret_scan *s = ctx;
    s->docs++;
    s->leaks += memmem(d->text, d->text_len, s->secret, strlen(s->secret)) != NULL;
    return 0;
}

static const char *g_dir; /* inputs of the bad-input test, shared by the tests that follow */
static char g_db[600], g_secret[64];

static void make_bad_inputs(lqa_rng *r, const char *dir, const char *secret_path) {
    char p[700];
    snprintf(p, sizeof p, "%s/good/a-book.txt", dir);
    write_verse_book(r, p, "Alphabook", 10);
    snprintf(p, sizeof p, "%s/good/b-manual.md", dir);
    write_markdown(r, p, "zqxmarker", 14);
    snprintf(p, sizeof p, "%s/good/c-book.txt", dir);
    write_verse_book(r, p, "Betabook", 8);
    snprintf(p, sizeof p, "%s/bad/empty.txt", dir);
    lqa_test_write(p, "", 0);
    unsigned char bin[4096];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)lqa_rng_below(r, 256);
    bin[0] = 0;
    snprintf(p, sizeof p, "%s/bad/binary.dat", dir);
    lqa_test_write(p, bin, sizeof bin);
    snprintf(p, sizeof p, "%s/bad/truncated.txt.gz", dir);
    char src[700];
    snprintf(src, sizeof src, "%s/good/a-book.txt", dir);
    assert_int_equal(lqa_test_run(NULL, "gzip -c '%s' | head -c 3000 > '%s'", src, p), 0);
    snprintf(p, sizeof p, "%s/bad/malformed.xml", dir);
    const char *mal = "<?xml version=\"1.0\"?>\n<article><title>Broken</title>\n<para>unclosed <b>tags</para>\n";
    lqa_test_write(p, mal, strlen(mal));
    lqa_buf x = {0};
    lqa_buf_printf(&x, "<?xml version=\"1.0\"?>\n<!DOCTYPE html [<!ENTITY xxe SYSTEM \"file://%s\">]>\n"
                       "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>XXE</title></head><body>\n"
                       "<h1>Leak</h1><p>Here it comes: &xxe; and more text to make a paragraph.</p></body></html>\n",
                   secret_path);
    snprintf(p, sizeof p, "%s/bad/xxe.xhtml", dir);
    lqa_test_write(p, x.data, x.len);
    lqa_buf_clear(&x);
    lqa_buf_puts(&x, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    lqa_buf_puts(&x, "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
    for (int i = 2; i <= 9; i++)
        lqa_buf_printf(&x, "<!ENTITY lol%d \"&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;&lol%d;\">", i,
                       i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    lqa_buf_puts(&x, "]>\n<article><title>Laughs</title><para>&lol9;</para></article>\n");
    snprintf(p, sizeof p, "%s/bad/laughs.xml", dir);
    lqa_test_write(p, x.data, x.len);
    lqa_buf_clear(&x);
    lqa_buf_puts(&x, "<html><body>");
    for (int i = 0; i < 5000; i++) lqa_buf_puts(&x, "<div>");
    lqa_buf_puts(&x, "deep</body></html>");
    snprintf(p, sizeof p, "%s/bad/deep.html", dir);
    lqa_test_write(p, x.data, x.len);
    lqa_buf_clear(&x);
    lqa_buf_puts(&x, "[{\"instruction\": \"What is up?\", \"output\": \"The sky.\"},\n {\"instruction\": \"Cut");
    snprintf(p, sizeof p, "%s/bad/cut.json", dir);
    lqa_test_write(p, x.data, x.len);
    lqa_buf_free(&x);
    const char *bad_utf8 = "Invalid \xff\xfe bytes in an otherwise plain text file. It has two sentences.\n";
    snprintf(p, sizeof p, "%s/bad/invalid-utf8.txt", dir);
    lqa_test_write(p, bad_utf8, strlen(bad_utf8));
}

static void test_bad_inputs_run_goes_on(void **state) {
    lqa_rng r;
    uint64_t seed = lqa_test_seed();
    lqa_rng_seed(&r, seed);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "inputs");
    g_dir = dir;
    snprintf(g_secret, sizeof g_secret, "SECRET%016llx", (unsigned long long)lqa_rng_u64(&r));
    char *secret_path = lqa_path_join(lqa_test_tmpdir(), "secret.txt");
    lqa_test_write(secret_path, g_secret, strlen(g_secret));
    make_bad_inputs(&r, dir, secret_path);
    snprintf(g_db, sizeof g_db, "%s/cli.db", lqa_test_tmpdir());
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s add --db %s --seed %llu %s", lqa_test_tool("lqa-ingest"), g_db,
                          (unsigned long long)(seed % 1000), dir);
    printf("# %s", out.data ? out.data : "");
    assert_int_equal(rc, 3);
    /* each failed input reported once (an error line as it is met; the summary counts them) */
    assert_non_null(strstr(out.data, "inputs failed"));
    const char *t = strstr(out.data, "truncated.txt.gz"), *j = strstr(out.data, "cut.json");
    assert_non_null(t);
    assert_non_null(j);
    assert_null(strstr(t + 1, "truncated.txt.gz"));
    assert_null(strstr(j + 1, "cut.json"));
    assert_non_null(strstr(out.data, "QA pairs added:"));
    /* the three good documents are in */
    assert_true(test_sql_int(g_db, "SELECT count(*) FROM documents WHERE synthetic = 0 AND path LIKE '%/good/%'") == 3);
    assert_true(test_sql_int(g_db, "SELECT count(*) FROM qa") > 12);
    /* the secret reached nothing: document texts, sections, FTS, QA pairs */
    lqa_err err;
    lqa_store *s = lqa_store_open(g_db, 0, &err);
    assert_non_null(s);
    secret_scan scan = {g_secret, 0, 0};
    assert_int_equal(lqa_store_each_doc(s, NULL, scan_doc, &scan, &err), 0);
    assert_true(scan.docs >= 3);
    assert_int_equal(scan.leaks, 0);
    lqa_store_close(s);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM qa WHERE instr(question || answer, '%s')", g_secret);
    assert_int_equal(test_sql_int(g_db, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sections_fts WHERE sections_fts MATCH '%s'", g_secret);
    assert_int_equal(test_sql_int(g_db, sql), 0);
    /* every stored extractive pair holds its answer at its span */
    lqa_buf_free(&out);
    free(secret_path);
}

static void test_rerun_adds_nothing(void **state) {
    long long docs = test_sql_int(g_db, "SELECT count(*) FROM documents"), qa = test_sql_int(g_db, "SELECT count(*) FROM qa");
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s add --db %s %s/good", lqa_test_tool("lqa-ingest"), g_db, g_dir);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "added 0 documents"));
    assert_non_null(strstr(out.data, "skipped 3 duplicates"));
    assert_int_equal(test_sql_int(g_db, "SELECT count(*) FROM documents"), docs);
    assert_int_equal(test_sql_int(g_db, "SELECT count(*) FROM qa"), qa);
    lqa_buf_free(&out);
}

/* Byte offset of character offset c in UTF-8 text s. */
static size_t byte_of_char(const char *s, size_t len, size_t c) {
    size_t b = 0;
    for (size_t k = 0; b < len; b++) {
        if (((unsigned char)s[b] & 0xC0) != 0x80) {
            if (k == c) return b;
            k++;
        }
    }
    return b;
}

static void test_export_and_stats(void **state) {
    char *jsonl = lqa_path_join(lqa_test_tmpdir(), "out.jsonl"), *la = lqa_path_join(lqa_test_tmpdir(), "la.json");
    const char *tool = lqa_test_tool("lqa-ingest");
    assert_int_equal(lqa_test_run(NULL, "%s export --db %s --format jsonl -o %s", tool, g_db, jsonl), 0);
    FILE *f = fopen(jsonl, "r");
    assert_non_null(f);
    json_error_t je;
    long n = 0, multibyte = 0, anchored = 0;
    json_t *line;
    while ((line = json_loadf(f, JSON_DISABLE_EOF_CHECK, &je)) != NULL) {
        n++;
        const char *ctx = json_string_value(json_object_get(line, "context"));
        const char *ans = json_string_value(json_object_get(line, "answer"));
        assert_non_null(ctx);
        assert_non_null(ans);
        json_t *es = json_object_get(line, "evidence_start"), *ee = json_object_get(line, "evidence_end");
        if (json_is_integer(es)) {
            size_t len = strlen(ctx);
            size_t bs = byte_of_char(ctx, len, (size_t)json_integer_value(es));
            size_t be = byte_of_char(ctx, len, (size_t)json_integer_value(ee));
            assert_true(bs < be && be <= len);
            assert_non_null(memmem(ctx + bs, be - bs, ans, strlen(ans)));
            multibyte += bs != (size_t)json_integer_value(es); /* offsets really are characters */
        }
        /* the anchor, in characters too: what a quoting question quotes */
        json_t *as = json_object_get(line, "anchor_start"), *ae = json_object_get(line, "anchor_end");
        assert_true(json_is_integer(as) == json_is_integer(ae));
        if (json_is_integer(as)) {
            size_t len = strlen(ctx);
            size_t bs = byte_of_char(ctx, len, (size_t)json_integer_value(as));
            size_t be = byte_of_char(ctx, len, (size_t)json_integer_value(ae));
            assert_true(bs < be && be <= len);
            const char *gen = json_string_value(json_object_get(line, "generator"));
            if (!strcmp(gen, "section:heading") || !strcmp(gen, "continuation:next-sentence") ||
                !strcmp(gen, "multihop:next-section") || !strcmp(gen, "order:first")) {
                char *quote = strndup(ctx + bs, be - bs);
                assert_non_null(strstr(json_string_value(json_object_get(line, "question")), quote));
                free(quote);
                anchored++;
            }
        }
        assert_non_null(json_object_get(line, "kind"));
        assert_non_null(json_object_get(line, "split"));
        json_decref(line);
        int c = fgetc(f); /* the newline */
        if (c == EOF) break;
    }
    fclose(f);
    long long qa = test_sql_int(g_db, "SELECT count(*) FROM qa");
    assert_int_equal(n, qa);
    assert_true(multibyte > 0);
    assert_true(anchored > 0);
    assert_int_equal(lqa_test_run(NULL, "%s export --db %s --format longalpaca -o %s", tool, g_db, la), 0);
    json_t *arr = json_load_file(la, 0, &je);
    assert_non_null(arr);
    assert_int_equal((long long)json_array_size(arr), qa);
    const char *ins = json_string_value(json_object_get(json_array_get(arr, 0), "instruction"));
    assert_non_null(ins);
    assert_non_null(json_string_value(json_object_get(json_array_get(arr, 0), "output")));
    json_decref(arr);
    /* --split selects documents of that split only */
    assert_int_equal(lqa_test_run(NULL, "%s export --db %s --format jsonl --split train -o %s", tool, g_db, jsonl), 0);
    lqa_buf cnt = {0};
    lqa_test_run(&cnt, "wc -l < %s", jsonl);
    assert_int_equal(atoll(cnt.data), test_sql_int(g_db, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id "
                                                     "WHERE d.split = 'train'"));
    /* "-o -" streams to stdout; an unwritable path fails cleanly and leaves nothing */
    lqa_buf_clear(&cnt);
    assert_int_equal(lqa_test_run(&cnt, "%s export --db %s --format jsonl --split train -o - 2>/dev/null | wc -l", tool, g_db), 0);
    assert_int_equal(atoll(cnt.data), test_sql_int(g_db, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id "
                                                     "WHERE d.split = 'train'"));
    lqa_buf_clear(&cnt);
    assert_int_equal(lqa_test_run(&cnt, "%s export --db %s --format jsonl -o %s/no/such/dir/x.jsonl", tool, g_db,
                                  lqa_test_tmpdir()), 1);
    assert_non_null(strstr(cnt.data, "no/such/dir"));
    lqa_buf_free(&cnt);
    /* stats --json agrees with the tables */
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s stats --db %s --json 2>/dev/null", tool, g_db), 0);
    json_t *st = json_loads(out.data, 0, &je);
    assert_non_null(st);
    assert_int_equal(json_integer_value(json_object_get(st, "qa")) + json_integer_value(json_object_get(st, "qa_synthetic")), qa);
    json_t *by_kind = json_object_get(st, "by_kind"), *v;
    const char *k;
    long long sum = 0;
    json_object_foreach(by_kind, k, v)
        sum += json_integer_value(json_object_get(v, "qa")) + json_integer_value(json_object_get(v, "qa_synthetic"));
    assert_int_equal(sum, qa);
    /* synthetic pairs are counted apart: the "synthetic" kind has no non-synthetic pairs */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(by_kind, "synthetic"), "qa")), 0);
    assert_true(json_integer_value(json_object_get(json_object_get(by_kind, "synthetic"), "qa_synthetic")) > 0);
    long long hist = 0;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(st, "lengths"), "histogram"), i, v)
        hist += json_integer_value(json_object_get(v, "qa")) + json_integer_value(json_object_get(v, "synthetic"));
    assert_int_equal(hist, qa);
    /* pairs per split by length bucket add up to the pairs of each split */
    const char *sk;
    json_t *sv;
    json_object_foreach(json_object_get(st, "by_split_length"), sk, sv) {
        long long in_split = 0;
        json_object_foreach(sv, k, v)
            in_split += json_integer_value(json_object_get(v, "qa")) + json_integer_value(json_object_get(v, "synthetic"));
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM qa q JOIN documents d ON d.id = q.doc_id WHERE d.split = '%s'", sk);
        assert_int_equal(in_split, test_sql_int(g_db, sql));
    }
    assert_int_equal(json_integer_value(json_object_get(st, "duplicates")), 0);
    json_decref(st);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s stats --db %s", tool, g_db), 0);
    assert_non_null(strstr(out.data, "by source"));
    assert_non_null(strstr(out.data, ">128k"));
    /* search finds the heading marker */
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s search --db %s zqxmarker", tool, g_db), 0);
    assert_non_null(strstr(out.data, "zqxmarker"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s search --db %s '\"unbalanced'", tool, g_db), 2);
    lqa_buf_free(&out);
    free(jsonl);
    free(la);
}

/* --generators restricts the kinds; --max-pairs-per-doc caps each document's generated pairs. */
static void test_generators_and_cap(void **state) {
    char db[600];
    snprintf(db, sizeof db, "%s/cap.db", lqa_test_tmpdir());
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s add --db %s --generators section,continuation --max-pairs-per-doc 3 %s/good",
                                  lqa_test_tool("lqa-ingest"), db, g_dir), 0);
    assert_int_equal(test_sql_int(db, "SELECT count(*) FROM qa WHERE kind NOT IN ('section', 'continuation')"), 0);
    assert_int_equal(test_sql_int(db, "SELECT count(*) FROM documents WHERE synthetic != 0"), 0);
    assert_true(test_sql_int(db, "SELECT count(*) FROM qa") > 0);
    assert_int_equal(test_sql_int(db, "SELECT count(*) FROM (SELECT doc_id FROM qa GROUP BY doc_id HAVING count(*) > 3)"), 0);
    /* both kinds survive the cap (round robin), where both were made */
    assert_int_equal(test_sql_int(db, "SELECT count(DISTINCT kind) FROM qa"), 2);
    lqa_buf_free(&out);
}

static void test_help_and_usage(void **state) {
    const char *tool = lqa_test_tool("lqa-ingest");
    const char *cmds[] = {"add", "stats", "export", "search"};
    for (int i = 0; i < 4; i++) {
        lqa_buf out = {0};
        assert_int_equal(lqa_test_run(&out, "%s %s --help", tool, cmds[i]), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: lqa-ingest %s", cmds[i]);
        assert_non_null(strstr(out.data, want));
        lqa_buf_free(&out);
    }
    lqa_buf out = {0};
    assert_int_equal(lqa_test_run(&out, "%s --help", tool), 0);
    assert_non_null(strstr(out.data, "export"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s add --db x.db --generators section,bogus y", tool), 2);
    assert_non_null(strstr(out.data, "bogus"));
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s stats --db %s/none.db", tool, lqa_test_tmpdir()), 1);
    /* a store from a newer lqa-ingest is refused with both versions named */
    char newer[600];
    snprintf(newer, sizeof newer, "%s/newer.db", lqa_test_tmpdir());
    sqlite3 *h;
    assert_int_equal(sqlite3_open(newer, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE documents(id); PRAGMA user_version = 7;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s add --db %s %s/good", tool, newer, g_dir), 1);
    char expected[80];
    snprintf(expected, sizeof expected, "schema version 7, this lqa-ingest reads %d", LQA_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(out.data, expected));
    lqa_buf_free(&out);
}

/* Fingerprint of a store's contents: documents by hash and QA pairs, order-free. */
static char *fingerprint(const char *db) {
    char *a = test_sql_text(db, "SELECT count(*) || ':' || group_concat(h) FROM (SELECT hash || split AS h FROM documents ORDER BY 1)");
    char *b = test_sql_text(db, "SELECT count(*) || ':' || sum(length(question) + length(answer) + ev_start + ev_end) FROM qa");
    char *c = test_sql_text(db, "SELECT count(*) FROM sections");
    lqa_buf out = {0};
    lqa_buf_printf(&out, "%s|%s|%s", a, b, c);
    free(a);
    free(b);
    free(c);
    return lqa_buf_steal(&out);
}

static void test_kill9_then_rerun_completes(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 7);
    char *dir = lqa_path_join(lqa_test_tmpdir(), "many");
    for (int i = 0; i < 40; i++) {
        char p[700], book[32];
        snprintf(p, sizeof p, "%s/book%02d.txt", dir, i);
        snprintf(book, sizeof book, "Book%c%c", 'A' + i / 26, 'a' + i % 26);
        write_verse_book(&r, p, book, 12);
    }
    const char *tool = lqa_test_tool("lqa-ingest");
    char clean[600], killed[600];
    snprintf(clean, sizeof clean, "%s/clean.db", lqa_test_tmpdir());
    snprintf(killed, sizeof killed, "%s/killed.db", lqa_test_tmpdir());
    double t0 = lqa_now();
    assert_int_equal(lqa_test_run(NULL, "%s add -q --db %s %s", tool, clean, dir), 0);
    double secs = lqa_now() - t0;
    int killed_mid_run = 0;
    for (int round = 0; round < 3 && !killed_mid_run; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            execl(tool, "lqa-ingest", "add", "-q", "--db", killed, dir, (char *)NULL);
            _exit(127);
        }
        usleep((useconds_t)(1e6 * secs * (0.2 + 0.5 * lqa_rng_uniform(&r))));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        killed_mid_run = WIFSIGNALED(st);
    }
    printf("# clean run %.2f s; killed mid-run: %s\n", secs, killed_mid_run ? "yes" : "no (finished first)");
    char *ic = test_sql_text(killed, "PRAGMA integrity_check");
    assert_string_equal(ic, "ok");
    free(ic);
    /* whole documents only: every document that is there has its pairs */
    assert_int_equal(test_sql_int(killed, "SELECT count(*) FROM documents d WHERE synthetic = 0 AND NOT EXISTS "
                                     "(SELECT 1 FROM qa WHERE doc_id = d.id)"), 0);
    assert_int_equal(lqa_test_run(NULL, "%s add -q --db %s %s", tool, killed, dir), 0);
    char *fa = fingerprint(clean), *fb = fingerprint(killed);
    assert_string_equal(fa, fb);
    free(fa);
    free(fb);
    free(dir);
}

/* A value holding a newline cannot forge an "error:" line: getopt's refusals, bad values, unknown
 * commands and queries print what the user gave escaped. */
static void test_newline_in_argument_escaped(void **state) {
    static const char *const cases[] = {
        "add --db d.db --%s",
        "add --db d.db --split %s .",
        "export --db d.db --%s",
        "stats --%s",
        "search --db d.db --%s",
        "%s",
    };
    lqa_test_cli_not_forged("lqa-ingest", cases, sizeof cases / sizeof *cases);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs_run_goes_on), cmocka_unit_test(test_rerun_adds_nothing),
        cmocka_unit_test(test_export_and_stats),       cmocka_unit_test(test_generators_and_cap),
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_newline_in_argument_escaped),
        cmocka_unit_test(test_kill9_then_rerun_completes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
