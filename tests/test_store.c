/* test_store.c: the store: schema creation, version check (migrate an old store, refuse a newer
 * or foreign one), the FTS5 index reading section text out of the compressed documents,
 * write/read round trip through the read API, synthetic copies stored as
 * their insertions, deterministic splits, a text packed off the writer's thread stored as if
 * the store had packed it. */
#include "tests/testutil.h"

#include <sqlite3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/rng.h"
#include "store/store.h"

static char *tmp_path(const char *name) {
    static int n;
    char *p = lqa_malloc(600);
    snprintf(p, 600, "%s/%d-%s", lqa_test_tmpdir(), n++, name);
    return p;
}

/* A new store at a fresh temporary path (*path: the caller frees it). */
static lqa_store *open_new(const char *name, char **path) {
    lqa_err err;
    *path = tmp_path(name);
    lqa_store *s = lqa_store_open(*path, 1, &err);
    assert_non_null(s);
    return s;
}

/* Random lowercase words with a few multi-byte characters, never empty. */
static char *random_text(lqa_rng *r, size_t min_len) {
    lqa_buf b = {0};
    while (b.len < min_len) {
        int w = 2 + (int)lqa_rng_below(r, 8);
        for (int i = 0; i < w; i++) lqa_buf_putc(&b, (char)('a' + lqa_rng_below(r, 26)));
        if (lqa_rng_below(r, 10) == 0) lqa_buf_puts(&b, "\xc3\xa9");
        lqa_buf_putc(&b, ' ');
    }
    return lqa_buf_steal(&b);
}

typedef struct qa_walk {
    lqa_store *s;
    int n;
} qa_walk;
static int check_qa(const lqa_store_qa *q, void *c);
static int count_docs(const lqa_store_doc *d, void *c);

static void text_hash(const char *text, char hex[65]) {
    uint8_t h[32];
    lqa_sha256(text, strlen(text), h);
    lqa_hex(h, 32, hex);
}

static int64_t add_doc(lqa_store *s, const char *text, const char *split) {
    char hex[65];
    text_hash(text, hex);
    lqa_store_doc_in d = {.source_id = lqa_store_source(s, "unit"), .hash_hex = hex, .title = "T",
                          .format = "text", .path = "x.txt", .split = split, .text = text,
                          .text_len = strlen(text)};
    return lqa_store_add_doc(s, &d);
}

static void test_create_and_reopen(void **state) {
    char *path = tmp_path("a.db");
    lqa_err err;
    assert_null(lqa_store_open(path, 0, &err)); /* missing and create == 0 */
    lqa_store *s = lqa_store_open(path, 1, &err);
    assert_non_null(s);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), LQA_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    lqa_store_close(s);
    s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    lqa_store_close(s);
    free(path);
}

static void test_roundtrip_read_api(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    char *path;
    lqa_store *s = open_new("b.db", &path);
    lqa_err err;
    enum { N = 5 };
    char *texts[N];
    int64_t ids[N];
    const char *splits[] = {"train", "valid", "test", "train", "train"};
    lqa_store_begin(s);
    for (int i = 0; i < N; i++) {
        texts[i] = random_text(&r, 100 + lqa_rng_below(&r, 5000));
        ids[i] = add_doc(s, texts[i], splits[i]);
        size_t a = lqa_rng_below(&r, 50), b = a + 1 + lqa_rng_below(&r, 40);
        /* a span on character boundaries: answers are valid UTF-8 */
        while (a > 0 && ((unsigned char)texts[i][a] & 0xC0) == 0x80) a--;
        while (((unsigned char)texts[i][b] & 0xC0) == 0x80) b++;
        char *ans = lqa_strndup(texts[i] + a, b - a);
        lqa_store_qa_in q = {.doc_id = ids[i], .question = "q?", .answer = ans, .kind = i % 2 ? "section" : "table",
                             .generator = "unit", .ev_start = a, .ev_end = b, .doc_len = strlen(texts[i]), .seed = 7};
        lqa_store_add_qa(s, &q);
        free(ans);
    }
    lqa_store_commit(s);
    for (int i = 0; i < N; i++) {
        lqa_store_doc d;
        assert_int_equal(lqa_store_get_doc(s, ids[i], &d, &err), 0);
        assert_int_equal(d.text_len, strlen(texts[i]));
        assert_memory_equal(d.text, texts[i], d.text_len);
        assert_string_equal(d.split, splits[i]);
        assert_string_equal(d.source, "unit");
        lqa_store_doc_free(&d);
        char hex[65];
        uint8_t h[32];
        lqa_sha256(texts[i], strlen(texts[i]), h);
        lqa_hex(h, 32, hex);
        assert_int_equal(lqa_store_find_hash(s, hex), ids[i]);
    }
    assert_int_not_equal(lqa_store_get_doc(s, 9999, &(lqa_store_doc){0}, &err), 0);
    /* each_qa: spans point at the answer in the stored text */
    qa_walk ctx = {s, 0};
    assert_int_equal(lqa_store_each_qa(s, NULL, "section", check_qa, &ctx, &err), 0);
    assert_int_equal(ctx.n, N / 2);
    ctx.n = 0;
    assert_int_equal(lqa_store_each_qa(s, "train", NULL, check_qa, &ctx, &err), 0);
    assert_int_equal(ctx.n, 3);
    int nd = 0;
    assert_int_equal(lqa_store_each_doc(s, "valid", count_docs, &nd, &err), 0);
    assert_int_equal(nd, 1);
    nd = 0;
    assert_int_equal(lqa_store_each_doc(s, NULL, count_docs, &nd, &err), 0);
    assert_int_equal(nd, N);
    lqa_store_close(s);
    for (int i = 0; i < N; i++) free(texts[i]);
    free(path);
}

static int check_qa(const lqa_store_qa *q, void *c) {
    qa_walk *ctx = c;
    lqa_store_doc d;
    lqa_err err;
    assert_int_equal(lqa_store_get_doc(ctx->s, q->doc_id, &d, &err), 0);
    assert_true(q->ev_end <= d.text_len && q->ev_start < q->ev_end);
    assert_int_equal(q->doc_len, d.text_len);
    assert_memory_equal(d.text + q->ev_start, q->answer, strlen(q->answer));
    lqa_store_doc_free(&d);
    ctx->n++;
    return 0;
}

static int count_docs(const lqa_store_doc *d, void *c) {
    (*(int *)c)++;
    return 0;
}

/* A version-1 store (before qa.seed and documents.synthetic) is migrated in place, data kept. */
static void test_migrates_v1(void **state) {
    char *path = tmp_path("v1.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE documents(id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL, hash TEXT NOT NULL UNIQUE,"
        " title TEXT, format TEXT NOT NULL, path TEXT, n_bytes INTEGER NOT NULL, n_chars INTEGER NOT NULL,"
        " split TEXT NOT NULL, text BLOB NOT NULL);"
        "CREATE TABLE sections(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, idx INTEGER NOT NULL,"
        " parent INTEGER NOT NULL, level INTEGER NOT NULL, title TEXT NOT NULL, start INTEGER NOT NULL,"
        " end INTEGER NOT NULL);"
        "CREATE TABLE qa(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, question TEXT NOT NULL,"
        " answer TEXT NOT NULL, answers TEXT NOT NULL, ev_start INTEGER NOT NULL, ev_end INTEGER NOT NULL,"
        " kind TEXT NOT NULL, generator TEXT NOT NULL, doc_len INTEGER NOT NULL);"
        "CREATE VIRTUAL TABLE sections_fts USING fts5(title, body);"
        "INSERT INTO sources VALUES(1, 'old');"
        "INSERT INTO qa VALUES(1, 1, 'q', 'a', '[\"a\"]', 0, 1, 'section', 'g', 10);"
        "PRAGMA user_version = 1;";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    lqa_err err;
    lqa_store *s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s),
                                        "SELECT seed, (SELECT count(*) FROM sources),"
                                        " (SELECT count(inserts) FROM documents) FROM qa",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    assert_int_equal(sqlite3_column_int(st, 2), 0); /* v1 -> v2 -> v3 -> v4 in one go */
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), LQA_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    lqa_store_close(s);
    s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    lqa_store_close(s);
    free(path);
}

/* Runs sql on the store at path through the store API (so lqa_section_text is there). */
static void store_exec(const char *path, const char *sql) {
    lqa_err err;
    lqa_store *s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    char *msg = NULL;
    int rc = sqlite3_exec(lqa_store_db(s), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
    lqa_store_close(s);
}

/* Gives a current store version 3's shape: no sections.body_end, and an FTS5 table that keeps
 * its own copy of each section's text (the same text the view gives). */
/* Gives a current store version 4's shape: no anchors, duplicates allowed (qa_doc index). */
#define TO_V4                                                                                 \
    "DROP INDEX qa_unique; CREATE INDEX qa_doc ON qa(doc_id);"                                \
    "ALTER TABLE qa DROP COLUMN anchor_start; ALTER TABLE qa DROP COLUMN anchor_end;"
static void downgrade_to_v4(const char *path) { store_exec(path, TO_V4 "PRAGMA user_version = 4;"); }

/* (one call: the store API would migrate a version 4 store back to 5 on open) */
static void downgrade_to_v3(const char *path) {
    store_exec(path, TO_V4 "CREATE TABLE old_fts AS SELECT id, title, body FROM sections_text;"
                     "DROP TABLE sections_fts; DROP VIEW sections_text;"
                     "ALTER TABLE sections DROP COLUMN body_end;"
                     "CREATE VIRTUAL TABLE sections_fts USING fts5(title, body);"
                     "INSERT INTO sections_fts(rowid, title, body) SELECT id, title, body FROM old_fts;"
                     "DROP TABLE old_fts; PRAGMA user_version = 3;");
}

/* Every FTS5 row (rowid, title, body) and every section's body_end, as one string. */
static char *dump_fts(lqa_store *s) {
    lqa_buf b = {0};
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s),
                                        "SELECT f.rowid, f.title, f.body, s.body_end FROM sections_fts f"
                                        " JOIN sections s ON s.id = f.rowid ORDER BY f.rowid", -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        lqa_buf_printf(&b, "%lld|%s|%s|%lld\n", (long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1),
                       sqlite3_column_text(st, 2), (long long)sqlite3_column_int64(st, 3));
    sqlite3_finalize(st);
    return lqa_buf_steal(&b);
}

/* Adds a document of three random paragraphs as a chapter [0, len) holding two sections; the
 * chapter's own text (its FTS5 body) ends where its first section starts. Returns the text. */
static char *add_doc_with_sections(lqa_store *s, lqa_rng *r, const char *marker) {
    char *p0 = random_text(r, 300), *p1 = random_text(r, 400), *p2 = random_text(r, 500);
    lqa_buf t = {0};
    lqa_buf_printf(&t, "%s\n\n", p0);
    size_t a = t.len;
    lqa_buf_printf(&t, "%s %s\n\n", marker, p1);
    size_t b = t.len;
    lqa_buf_printf(&t, "%s\n", p2);
    int64_t id = add_doc(s, t.data, "train");
    lqa_store_add_section(s, id, 0, -1, 1, "Chapter", 0, t.len, t.data, a);
    lqa_store_add_section(s, id, 1, 0, 2, "Marked", a, b, t.data + a, b - a);
    lqa_store_add_section(s, id, 2, 0, 2, "Last", b, t.len, t.data + b, t.len - b);
    free(p0);
    free(p1);
    free(p2);
    return lqa_buf_steal(&t);
}

/* The FTS5 body of a section is its own text, cut out of the compressed document: a search
 * finds the section and its snippet shows the text. */
static void test_fts_reads_sections_from_documents(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    char *path;
    lqa_store *s = open_new("fts.db", &path);
    lqa_store_begin(s);
    char *t1 = add_doc_with_sections(s, &r, "zyxmarker");
    char *t2 = add_doc_with_sections(s, &r, "qwvmarker");
    lqa_store_commit(s);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s),
                                        "SELECT s.doc_id, s.title, f.body, snippet(sections_fts, 1, '[', ']', '', 4)"
                                        " FROM sections_fts f JOIN sections s ON s.id = f.rowid"
                                        " WHERE sections_fts MATCH 'qwvmarker'", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 2);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "Marked");
    const char *body = (const char *)sqlite3_column_text(st, 2), *from = strstr(t2, "qwvmarker");
    assert_int_equal(strncmp(body, from, strlen(body)), 0);
    assert_int_equal(from[strlen(body) - 1], '\n'); /* up to the next section, not beyond */
    assert_non_null(strstr((const char *)sqlite3_column_text(st, 3), "[qwvmarker]"));
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    /* the chapter's own text is its first paragraph only */
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "SELECT body FROM sections_fts WHERE rowid = 1", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal((size_t)sqlite3_column_bytes(st, 0), (size_t)(strstr(t1, "zyxmarker") - t1));
    sqlite3_finalize(st);
    lqa_store_close(s);
    free(t1);
    free(t2);
    free(path);
}

/* A version-3 store (FTS5 holding its own copy of the text) is migrated: body_end computed,
 * the index rebuilt from the documents, every row and search the same as in a new store. */
static void test_migrates_v3_fts(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    char *path;
    lqa_store *s = open_new("v3.db", &path);
    lqa_store_begin(s);
    char *t1 = add_doc_with_sections(s, &r, "zyxmarker"), *t2 = add_doc_with_sections(s, &r, "qwvmarker");
    lqa_store_commit(s);
    char *before = dump_fts(s);
    lqa_store_close(s);
    downgrade_to_v3(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "SELECT body_end FROM sections", NULL, NULL, NULL), SQLITE_ERROR);
    sqlite3_close(db);
    lqa_err err;
    s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    char *after = dump_fts(s);
    assert_string_equal(after, before);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s),
                                        "SELECT rowid FROM sections_fts WHERE sections_fts MATCH 'zyxmarker'", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 2);
    sqlite3_finalize(st);
    lqa_store_close(s);
    free(before);
    free(after);
    free(t1);
    free(t2);
    free(path);
}

/* A synthetic copy of PARENT stored as its full text (lqa_store_add_doc), as version 2 did. */
static int64_t add_full_copy(lqa_store *s, int64_t parent, const char *copy, const char *split) {
    uint8_t h[32];
    char hex[65];
    lqa_sha256(copy, strlen(copy), h);
    lqa_hex(h, 32, hex);
    lqa_store_doc_in d = {.source_id = lqa_store_source(s, "unit"), .hash_hex = hex, .title = "T [synthetic]",
                          .format = "text", .split = split, .text = copy, .text_len = strlen(copy),
                          .synthetic = 1, .parent_id = parent};
    return lqa_store_add_doc(s, &d);
}

/* A version-2 store (synthetic copies as full texts) is migrated: its copies still read, and
 * new copies are stored as insertions beside them. */
static void test_migrates_v2_copies_still_read(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    char *path;
    lqa_store *s = open_new("v2.db", &path);
    lqa_err err;
    char *orig = random_text(&r, 2000), *copy = random_text(&r, 2100);
    lqa_store_begin(s);
    int64_t parent = add_doc(s, orig, "train");
    int64_t old_copy = add_full_copy(s, parent, copy, "train"); /* the full text, as version 2 stored it */
    lqa_store_commit(s);
    lqa_store_close(s);
    /* back to version 2: no inserts column */
    downgrade_to_v3(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE documents DROP COLUMN inserts; PRAGMA user_version = 2;", NULL,
                                  NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    lqa_store_doc got;
    assert_int_equal(lqa_store_get_doc(s, old_copy, &got, &err), 0);
    assert_int_equal(got.text_len, strlen(copy));
    assert_memory_equal(got.text, copy, got.text_len);
    lqa_store_doc_free(&got);
    lqa_store_close(s);
    free(orig);
    free(copy);
    free(path);
}

/* Runs sql on the file at path with plain SQLite (no migration on open). */
static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

static int64_t count_rows(lqa_store *s, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Anchors round-trip; an exact duplicate (document, question, answer) is never stored twice,
 * while the same question with another answer, or in another document, is. */
static void test_anchor_and_no_duplicates(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 5);
    char *path;
    lqa_store *s = open_new("dup.db", &path);
    char *t1 = random_text(&r, 3000), *t2 = random_text(&r, 3000);
    lqa_store_begin(s);
    int64_t d1 = add_doc(s, t1, "train"), d2 = add_doc(s, t2, "train");
    size_t as = 1 + lqa_rng_below(&r, 1000), ae = as + 1 + lqa_rng_below(&r, 100);
    char *ans = lqa_strndup(t1, 1);
    lqa_store_qa_in q = {.doc_id = d1, .question = "q?", .answer = ans, .kind = "order", .generator = "unit",
                         .ev_start = 0, .ev_end = 1, .doc_len = strlen(t1), .anchor_start = as, .anchor_end = ae};
    assert_true(lqa_store_add_qa(s, &q) > 0);
    assert_int_equal(lqa_store_add_qa(s, &q), 0); /* the same pair again: not stored */
    q.doc_id = d2;
    assert_true(lqa_store_add_qa(s, &q) > 0); /* another document */
    q.doc_id = d1;
    q.answer = "zz-other";
    q.ev_end = 0;
    assert_true(lqa_store_add_qa(s, &q) > 0); /* another answer */
    lqa_store_commit(s);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM qa"), 3);
    int64_t got_as = count_rows(s, "SELECT anchor_start FROM qa ORDER BY id LIMIT 1");
    int64_t got_ae = count_rows(s, "SELECT anchor_end FROM qa ORDER BY id LIMIT 1");
    assert_int_equal(got_as, (int64_t)as);
    assert_int_equal(got_ae, (int64_t)ae);
    lqa_store_close(s);
    free(ans), free(t1), free(t2), free(path);
}

/* A version-4 store (no anchors, duplicates possible) migrates: duplicates removed (the first
 * kept), anchors 0 (none), version 5, and the unique rule holds from then on. */
static void test_migrates_v4_anchors_and_duplicates(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 6);
    char *path;
    lqa_store *s = open_new("v4.db", &path);
    char *t = random_text(&r, 2000);
    lqa_store_begin(s);
    int64_t d = add_doc(s, t, "train");
    lqa_store_commit(s);
    lqa_store_close(s);
    downgrade_to_v4(path);
    int dups = 2 + (int)lqa_rng_below(&r, 6);
    char sql[512];
    for (int i = 0; i < dups; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO qa(doc_id, question, answer, answers, ev_start, ev_end, kind, generator,"
                                  " doc_len) VALUES(%lld, 'same?', 'a', '[\"a\"]', 0, 0, 'table', 'g', 5)", (long long)d);
        raw_exec(path, sql);
    }
    snprintf(sql, sizeof sql, "INSERT INTO qa(doc_id, question, answer, answers, ev_start, ev_end, kind, generator,"
                              " doc_len) VALUES(%lld, 'other?', 'a', '[\"a\"]', 0, 0, 'table', 'g', 5)", (long long)d);
    raw_exec(path, sql);
    lqa_err err;
    s = lqa_store_open(path, 0, &err);
    assert_non_null(s);
    assert_int_equal(count_rows(s, "PRAGMA user_version"), LQA_STORE_SCHEMA_VERSION);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM qa"), 2);
    assert_int_equal(count_rows(s, "SELECT min(id) FROM qa WHERE question = 'same?'"), 1);
    assert_int_equal(count_rows(s, "SELECT count(*) FROM qa WHERE anchor_start != 0 OR anchor_end != 0"), 0);
    lqa_store_qa_in q = {.doc_id = d, .question = "same?", .answer = "a", .kind = "table", .generator = "g", .doc_len = 5};
    assert_int_equal(lqa_store_add_qa(s, &q), 0);
    lqa_store_close(s);
    free(t), free(path);
}

/* Long documents go to test more often, on purpose; the rule stays per document and
 * deterministic, and short documents keep the plain fractions. */
static void test_split_long_documents_favour_test(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 7);
    const double frac[3] = {0.9, 0.05, 0.05};
    uint64_t seed = lqa_rng_u64(&r);
    int n = 20000, long_test = 0, short_test = 0;
    for (int i = 0; i < n; i++) {
        char hex[65];
        snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)lqa_rng_u64(&r), (unsigned long long)i);
        const char *a = lqa_store_split_for_len(hex, seed, frac, LQA_STORE_LONG_TEST);
        assert_string_equal(a, lqa_store_split_for_len(hex, seed, frac, LQA_STORE_LONG_TEST + 5));
        assert_string_equal(lqa_store_split_for_len(hex, seed, frac, LQA_STORE_LONG_TEST - 1),
                            lqa_store_split_for(hex, seed, frac));
        long_test += !strcmp(a, "test");
        short_test += !strcmp(lqa_store_split_for_len(hex, seed, frac, 100), "test");
    }
    /* 0.05 for short ones, LQA_STORE_LONG_TEST_X times that for long ones (binomial, 6 sigma) */
    double ps = 0.05, pl = 0.05 * LQA_STORE_LONG_TEST_X;
    assert_true(fabs(short_test / (double)n - ps) < 6 * sqrt(ps * (1 - ps) / n));
    assert_true(fabs(long_test / (double)n - pl) < 6 * sqrt(pl * (1 - pl) / n));
}

/* The text of orig with the strings ins[0..n) inserted at the byte offsets at[0..n)
 * (ascending); spans receives where each landed in the copy. */
static char *insert_into(const char *orig, const size_t *at, const char *const *ins, int n, lqa_span *spans) {
    lqa_buf b = {0};
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        lqa_buf_append(&b, orig + pos, at[i] - pos);
        spans[i].start = b.len;
        lqa_buf_puts(&b, ins[i]);
        spans[i].end = b.len;
        pos = at[i];
    }
    lqa_buf_puts(&b, orig + pos);
    return lqa_buf_steal(&b);
}

/* A copy stored as insertions reads back as the whole copy, at the start, the middle and the
 * end of the parent's text; damaged insertions are an error naming the document. */
static void test_copy_stored_as_insertions(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    char *path;
    lqa_store *s = open_new("copy.db", &path);
    lqa_err err;
    char *orig = random_text(&r, 3000);
    size_t len = strlen(orig);
    size_t at[3] = {0, (size_t)lqa_rng_below(&r, len), len};
    if (at[1] == 0) at[1] = 1;
    while ((orig[at[1]] & 0xC0) == 0x80) at[1]++; /* on a character boundary */
    const char *ins[3] = {"First \xc3\xa9 inserted.\n\n", "The pass key is 12345.\n\n", "\n\nLast \"one\"."};
    lqa_span spans[3];
    char *copy = insert_into(orig, at, ins, 3, spans);
    lqa_store_begin(s);
    int64_t parent = add_doc(s, orig, "test");
    uint8_t h[32];
    char hex[65];
    lqa_sha256(copy, strlen(copy), h);
    lqa_hex(h, 32, hex);
    lqa_store_doc_in d = {.source_id = lqa_store_source(s, "unit"), .hash_hex = hex, .title = "T [synthetic]",
                          .format = "text", .split = "test", .text = copy, .text_len = strlen(copy),
                          .synthetic = 1, .parent_id = parent};
    int64_t id = lqa_store_add_copy(s, &d, spans, 3);
    lqa_store_commit(s);
    lqa_store_doc got;
    assert_int_equal(lqa_store_get_doc(s, id, &got, &err), 0);
    assert_int_equal(got.synthetic, 1);
    assert_int_equal(got.text_len, strlen(copy));
    assert_memory_equal(got.text, copy, got.text_len);
    assert_int_equal(got.text[got.text_len], '\0');
    lqa_store_doc_free(&got);
    /* only the insertions are kept: an empty text blob */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "SELECT length(text), n_bytes, n_chars FROM documents WHERE id = ?",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    assert_int_equal(sqlite3_column_int64(st, 1), (int64_t)strlen(copy));
    size_t chars = 0;
    for (const char *p = copy; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
    assert_int_equal(sqlite3_column_int64(st, 2), (int64_t)chars);
    sqlite3_finalize(st);
    /* an offset past the parent's end, or insertions that do not add up to n_bytes */
    const char *bad[] = {"[[999999,\"x\"]]", "[[0,\"short\"]]", "not json", "[[0]]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char sql[200];
        snprintf(sql, sizeof sql, "UPDATE documents SET inserts = '%s' WHERE id = %lld", bad[i], (long long)id);
        assert_int_equal(sqlite3_exec(lqa_store_db(s), sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(lqa_store_get_doc(s, id, &got, &err), -1);
        assert_non_null(strstr(err.msg, "insertions"));
    }
    lqa_store_close(s);
    free(orig);
    free(copy);
    free(path);
}

static void test_refuses_newer_and_foreign(void **state) {
    char *path = tmp_path("v9.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a); PRAGMA user_version = 9;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    lqa_err err;
    assert_null(lqa_store_open(path, 1, &err));
    assert_non_null(strstr(err.msg, "schema version 9"));
    char reads[32];
    snprintf(reads, sizeof reads, "reads %d", LQA_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(err.msg, reads));
    char *foreign = tmp_path("foreign.db");
    assert_int_equal(sqlite3_open(foreign, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE users(name);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(lqa_store_open(foreign, 1, &err));
    assert_non_null(strstr(err.msg, "schema version 0"));
    char *junk = tmp_path("junk.db");
    lqa_test_write(junk, "this is not sqlite at all, just some text padding it out ......", 64);
    assert_null(lqa_store_open(junk, 1, &err));
    assert_non_null(strstr(err.msg, junk));
    free(path);
    free(foreign);
    free(junk);
}

/* Synthetic copies are loaded by id but never visited by each_doc (no needles in LM text). */
static void test_synthetic_docs_hidden_from_each_doc(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    char *path;
    lqa_store *s = open_new("syn.db", &path);
    lqa_err err;
    char *orig = random_text(&r, 3000), *copy = random_text(&r, 3100);
    lqa_store_begin(s);
    int64_t parent = add_doc(s, orig, "test");
    int64_t syn = add_full_copy(s, parent, copy, "test");
    lqa_store_commit(s);
    int nd = 0;
    assert_int_equal(lqa_store_each_doc(s, NULL, count_docs, &nd, &err), 0);
    assert_int_equal(nd, 1);
    nd = 0;
    assert_int_equal(lqa_store_each_doc(s, "test", count_docs, &nd, &err), 0);
    assert_int_equal(nd, 1);
    lqa_store_doc got;
    assert_int_equal(lqa_store_get_doc(s, syn, &got, &err), 0);
    assert_int_equal(got.synthetic, 1);
    assert_memory_equal(got.text, copy, got.text_len);
    lqa_store_doc_free(&got);
    assert_int_equal(lqa_store_get_doc(s, parent, &got, &err), 0);
    assert_int_equal(got.synthetic, 0);
    lqa_store_doc_free(&got);
    lqa_store_close(s);
    free(orig);
    free(copy);
    free(path);
}

/* A damaged text blob is a recoverable error naming the document, not a crash. */
static void test_corrupt_text_is_an_error(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    char *path;
    lqa_store *s = open_new("corrupt.db", &path);
    lqa_err err;
    char *text = random_text(&r, 500 + lqa_rng_below(&r, 500));
    lqa_store_begin(s);
    int64_t id = add_doc(s, text, "train");
    lqa_store_commit(s);
    /* keep the frame header, garble the rest */
    assert_int_equal(sqlite3_exec(lqa_store_db(s), "UPDATE documents SET text = substr(text, 1, 8) || randomblob(40)",
                                  NULL, NULL, NULL), SQLITE_OK);
    lqa_store_doc d;
    assert_int_equal(lqa_store_get_doc(s, id, &d, &err), -1);
    assert_non_null(strstr(err.msg, "document"));
    int nd = 0;
    assert_int_equal(lqa_store_each_doc(s, NULL, count_docs, &nd, &err), -1);
    assert_int_equal(nd, 0);
    lqa_store_close(s);
    free(text);
    free(path);
}

static void test_split_deterministic_and_proportional(void **state) {
    uint64_t seed = lqa_test_seed();
    double frac[3] = {0.8, 0.1, 0.1};
    int counts[3] = {0};
    for (int i = 0; i < 20000; i++) {
        char hex[65];
        uint8_t h[32];
        lqa_sha256(&i, sizeof i, h);
        lqa_hex(h, 32, hex);
        const char *a = lqa_store_split_for(hex, seed, frac);
        assert_string_equal(a, lqa_store_split_for(hex, seed, frac));
        counts[a[0] == 't' && a[1] == 'r' ? 0 : a[0] == 'v' ? 1 : 2]++;
    }
    assert_in_range(counts[0], 15500, 16500);
    assert_in_range(counts[1], 1700, 2300);
    assert_in_range(counts[2], 1700, 2300);
}

/* lqa_store_add_packed (lqa-ingest's workers pack texts) writes the row lqa_store_add_doc
 * writes: same blob, same length in code points, same text read back. */
static void test_packed_same_as_add_doc(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    char *text = random_text(&r, 5000), *pa = tmp_path("plain.db"), *pb = tmp_path("packed.db");
    lqa_err err;
    lqa_store *a = lqa_store_open(pa, 1, &err), *b = lqa_store_open(pb, 1, &err);
    assert_non_null(a);
    assert_non_null(b);
    int64_t ia = add_doc(a, text, "train");
    lqa_store_packer *pk = lqa_store_packer_new();
    lqa_store_packed packed = {0};
    lqa_store_pack(pk, text, strlen(text), &packed);
    char hex[65];
    text_hash(text, hex);
    lqa_store_doc_in d = {.source_id = lqa_store_source(b, "unit"), .hash_hex = hex, .title = "T", .format = "text",
                          .path = "x.txt", .split = "train", .text = text, .text_len = strlen(text)};
    int64_t ib = lqa_store_add_packed(b, &d, &packed);
    const char *sql = "SELECT text, n_chars, n_bytes FROM documents WHERE id = ?";
    sqlite3_stmt *sa, *sb;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(a), sql, -1, &sa, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(b), sql, -1, &sb, NULL), SQLITE_OK);
    sqlite3_bind_int64(sa, 1, ia);
    sqlite3_bind_int64(sb, 1, ib);
    assert_int_equal(sqlite3_step(sa), SQLITE_ROW);
    assert_int_equal(sqlite3_step(sb), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(sa, 0), sqlite3_column_bytes(sb, 0));
    assert_memory_equal(sqlite3_column_blob(sa, 0), sqlite3_column_blob(sb, 0), (size_t)sqlite3_column_bytes(sa, 0));
    assert_int_equal(sqlite3_column_int64(sa, 1), sqlite3_column_int64(sb, 1));
    assert_int_equal(sqlite3_column_int64(sb, 1), (int64_t)packed.n_chars);
    assert_int_equal(sqlite3_column_int64(sa, 2), sqlite3_column_int64(sb, 2));
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    lqa_store_doc got;
    assert_int_equal(lqa_store_get_doc(b, ib, &got, &err), 0);
    assert_string_equal(got.text, text);
    lqa_store_doc_free(&got);
    lqa_store_packed_free(&packed);
    lqa_store_packer_free(pk);
    lqa_store_close(a);
    lqa_store_close(b);
    free(text);
    free(pa);
    free(pb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_reopen),
        cmocka_unit_test(test_roundtrip_read_api),
        cmocka_unit_test(test_migrates_v1),
        cmocka_unit_test(test_migrates_v2_copies_still_read),
        cmocka_unit_test(test_fts_reads_sections_from_documents),
        cmocka_unit_test(test_migrates_v3_fts),
        cmocka_unit_test(test_copy_stored_as_insertions),
        cmocka_unit_test(test_refuses_newer_and_foreign),
        cmocka_unit_test(test_split_deterministic_and_proportional),
        cmocka_unit_test(test_synthetic_docs_hidden_from_each_doc),
        cmocka_unit_test(test_corrupt_text_is_an_error),
        cmocka_unit_test(test_packed_same_as_add_doc),
        cmocka_unit_test(test_anchor_and_no_duplicates),
        cmocka_unit_test(test_migrates_v4_anchors_and_duplicates),
        cmocka_unit_test(test_split_long_documents_favour_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
