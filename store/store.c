/* store.c: the LongQA store on SQLite (WAL): schema creation, version check and migration,
 * the write API used by lqa-ingest and the read API used by lqa-build and lqa-eval.
 * The schema is documented in docs/STORE.md; keep the two in step. */
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/hash.h"
#include "common/json.h"

struct lqa_store_packer {
    ZSTD_CCtx *cctx; /* reused for every text */
};

struct lqa_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *ins_doc, *ins_sec, *ins_fts, *ins_qa, *find_hash;
    lqa_store_packer *packer; /* texts not packed by the caller */
    /* lqa_section_text's last document: FTS5 asks for one document's sections in a row */
    pthread_mutex_t text_mu;
    lqa_store_doc text_doc;
};

/* Version 1 lacked qa.seed and documents.synthetic/parent_id, version 2 documents.inserts,
 * version 3 sections.body_end and kept a second, uncompressed copy of every section's text in
 * the FTS5 table (the store's bigger half, and ~10 % of add's CPU time); version 4 is the
 * current one: FTS5 reads a section's text through the view sections_text, which cuts it out of
 * the compressed document with lqa_section_text() (registered on every connection the store
 * API opens). automerge 16: each document transaction writes one FTS5 segment; merging 16 at a
 * time instead of 4 cut the ingest's CPU time by ~20 % and keeps queries to a few segments a
 * level. */
#define SECTIONS_FTS_V4                                                                             \
    "CREATE VIEW sections_text AS SELECT id, title, lqa_section_text(doc_id, start, body_end) AS body" \
    " FROM sections;"                                                                               \
    "CREATE VIRTUAL TABLE sections_fts USING fts5(title, body, content='sections_text', content_rowid='id');" \
    "INSERT INTO sections_fts(sections_fts, rank) VALUES('automerge', 16);"

static const char *const SCHEMA_V5 =
    "CREATE TABLE sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE documents(id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES sources(id),"
    " hash TEXT NOT NULL UNIQUE, title TEXT, format TEXT NOT NULL, path TEXT,"
    " n_bytes INTEGER NOT NULL, n_chars INTEGER NOT NULL, split TEXT NOT NULL,"
    " text BLOB NOT NULL, synthetic INTEGER NOT NULL DEFAULT 0,"
    " parent_id INTEGER REFERENCES documents(id), inserts TEXT);"
    "CREATE TABLE sections(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id),"
    " idx INTEGER NOT NULL, parent INTEGER NOT NULL, level INTEGER NOT NULL, title TEXT NOT NULL,"
    " start INTEGER NOT NULL, end INTEGER NOT NULL, body_end INTEGER NOT NULL);"
    "CREATE TABLE qa(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id),"
    " question TEXT NOT NULL, answer TEXT NOT NULL, answers TEXT NOT NULL,"
    " ev_start INTEGER NOT NULL, ev_end INTEGER NOT NULL, kind TEXT NOT NULL, generator TEXT NOT NULL,"
    " doc_len INTEGER NOT NULL, seed INTEGER NOT NULL DEFAULT 0,"
    " anchor_start INTEGER NOT NULL DEFAULT 0, anchor_end INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX qa_unique ON qa(doc_id, question, answer);"
    "CREATE INDEX sections_doc ON sections(doc_id);"
    "CREATE INDEX documents_split ON documents(split);"
    SECTIONS_FTS_V4;

static const char *const MIGRATE_V1_TO_V2 =
    "ALTER TABLE qa ADD COLUMN seed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE documents ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE documents ADD COLUMN parent_id INTEGER REFERENCES documents(id);"
    "INSERT INTO sections_fts(sections_fts, rank) VALUES('automerge', 16);"
    "PRAGMA user_version = 2;";

/* Older synthetic copies keep their full text (inserts NULL), which the reader still takes. */
static const char *const MIGRATE_V2_TO_V3 =
    "ALTER TABLE documents ADD COLUMN inserts TEXT;"
    "PRAGMA user_version = 3;";

/* body_end as lqa_gen_section_body_end computes it: the start of the first later section that
 * starts after this one, if that is before the section's end; then the index is rebuilt from
 * the view, which holds the same text the old table did. */
static const char *const MIGRATE_V3_TO_V4 =
    "ALTER TABLE sections ADD COLUMN body_end INTEGER NOT NULL DEFAULT 0;"
    "UPDATE sections SET body_end = min(end, coalesce((SELECT c.start FROM sections c WHERE c.doc_id = sections.doc_id"
    " AND c.idx > sections.idx AND c.start > sections.start ORDER BY c.idx LIMIT 1), end));"
    "DROP TABLE sections_fts;"
    SECTIONS_FTS_V4
    "INSERT INTO sections_fts(sections_fts) VALUES('rebuild');"
    "PRAGMA user_version = 4;";

/* Version 5: each pair's anchor (the place its question quotes or points at; 0,0 = none, as
 * for the pairs of older versions) and no pair twice: the exact duplicates an older store
 * holds are removed (the first kept) before the unique index replaces qa(doc_id). */
static const char *const MIGRATE_V4_TO_V5 =
    "ALTER TABLE qa ADD COLUMN anchor_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE qa ADD COLUMN anchor_end INTEGER NOT NULL DEFAULT 0;"
    "DELETE FROM qa WHERE id NOT IN (SELECT min(id) FROM qa GROUP BY doc_id, question, answer);"
    "DROP INDEX IF EXISTS qa_doc;"
    "CREATE UNIQUE INDEX qa_unique ON qa(doc_id, question, answer);"
    "PRAGMA user_version = 5;";

static int user_version(sqlite3 *db) {
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), db);
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static int count_tables(sqlite3 *db) {
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL), db);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return n;
}

static void exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) lqa_fatal("sqlite: %s while running %.80s", msg ? msg : "?", sql);
}

/* Creates the schema in a fresh file, migrates an older one, refuses anything else. Creating and
 * migrating happen in one write transaction that looks again at the version once it holds the
 * lock: two `lqa-ingest add` creating the same new store both get here, and the second must find
 * the first one's schema rather than create it again ("table sources already exists"). */
static int check_schema(lqa_store *s, int create, lqa_err *err) {
    int v = user_version(s->db);
    if (v == LQA_STORE_SCHEMA_VERSION) return 0;
    if (v == 0 && count_tables(s->db) == 0 && !create)
        return lqa_err_set(err, "%s: not a LongQA store (empty database), expected one made by lqa-ingest add", s->path);
    if (v == 0 || (v >= 1 && v <= 4)) {
        exec(s->db, "BEGIN IMMEDIATE"); /* waits for another creator (busy timeout) */
        v = user_version(s->db);
        int tables = count_tables(s->db);
        if (v == 0 && tables == 0 && create) {
            exec(s->db, SCHEMA_V5);
            exec(s->db, "PRAGMA user_version = 5");
            v = LQA_STORE_SCHEMA_VERSION;
        } else if (v >= 1 && v <= 4) { /* one transaction: a store is migrated whole or not at all */
            if (v <= 1) exec(s->db, MIGRATE_V1_TO_V2);
            if (v <= 2) exec(s->db, MIGRATE_V2_TO_V3);
            if (v <= 3) exec(s->db, MIGRATE_V3_TO_V4);
            exec(s->db, MIGRATE_V4_TO_V5);
            v = LQA_STORE_SCHEMA_VERSION;
        }
        exec(s->db, v == LQA_STORE_SCHEMA_VERSION ? "COMMIT" : "ROLLBACK");
        if (v == LQA_STORE_SCHEMA_VERSION) return 0;
        if (v == 0 && tables == 0)
            return lqa_err_set(err, "%s: not a LongQA store (empty database), expected one made by lqa-ingest add",
                               s->path);
    }
    return lqa_err_set(err,
                       "%s: store has schema version %d, this lqa-ingest reads %d; %s", s->path, v,
                       LQA_STORE_SCHEMA_VERSION,
                       v > LQA_STORE_SCHEMA_VERSION ? "use a newer lqa-ingest or ingest into a new store"
                                                    : "it is not a LongQA store or is too old to migrate; re-ingest into a new store");
}

static sqlite3_stmt *prep(lqa_store *s, const char *sql) {
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), s->db);
    return st;
}

/* lqa_section_text(doc_id, start, end): bytes [start, end) of a document's text, the body
 * column of the view sections_text (FTS5's snippet(), highlight() and 'rebuild' read it). */
static void section_text_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    lqa_store *s = sqlite3_user_data(ctx);
    int64_t id = sqlite3_value_int64(argv[0]), start = sqlite3_value_int64(argv[1]), end = sqlite3_value_int64(argv[2]);
    lqa_err err;
    pthread_mutex_lock(&s->text_mu);
    if (!s->text_doc.text || s->text_doc.id != id) {
        lqa_store_doc_free(&s->text_doc);
        if (lqa_store_get_doc(s, id, &s->text_doc, &err) != 0) {
            sqlite3_result_error(ctx, err.msg, -1);
            pthread_mutex_unlock(&s->text_mu);
            return;
        }
    }
    if (start < 0 || end < start || (uint64_t)end > s->text_doc.text_len) {
        snprintf(err.msg, sizeof err.msg, "%s: section [%lld, %lld) of document %lld is outside its %zu bytes",
                 s->path, (long long)start, (long long)end, (long long)id, s->text_doc.text_len);
        sqlite3_result_error(ctx, err.msg, -1);
    } else {
        sqlite3_result_text(ctx, s->text_doc.text + start, (int)(end - start), SQLITE_TRANSIENT);
    }
    pthread_mutex_unlock(&s->text_mu);
}

lqa_store *lqa_store_open(const char *path, int create, lqa_err *err) {
    lqa_store *s = lqa_calloc(1, sizeof *s);
    s->path = lqa_strdup(path);
    lqaCheck(pthread_mutex_init(&s->text_mu, NULL) == 0, "pthread_mutex_init failed");
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        lqa_err_set(err, "%s: cannot open store: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        lqa_store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 10000);
    sqliteCheck(sqlite3_create_function_v2(s->db, "lqa_section_text", 3, SQLITE_UTF8 | SQLITE_INNOCUOUS, s,
                                           section_text_fn, NULL, NULL, NULL), s->db);
    /* A file that is not SQLite fails here, on the first read. Switching a new file to WAL
     * needs its exclusive lock: while another process creates the same store, SQLite answers
     * BUSY at once (a lock upgrade it will not wait for), so wait here, as long as the busy
     * timeout would. */
    char *msg = NULL;
    int rc;
    for (int tries = 0;; tries++) {
        rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", NULL,
                          NULL, &msg);
        if ((rc & 0xff) != SQLITE_BUSY || tries == 500) break;
        sqlite3_free(msg);
        msg = NULL;
        sqlite3_sleep(20);
    }
    if (rc != SQLITE_OK) {
        lqa_err_set(err, "%s: cannot open store: %s, expected a SQLite database", path, msg ? msg : "?");
        sqlite3_free(msg);
        lqa_store_close(s);
        return NULL;
    }
    if (check_schema(s, create, err) != 0) {
        lqa_store_close(s);
        return NULL;
    }
    return s;
}

void lqa_store_close(lqa_store *s) {
    if (!s) return;
    sqlite3_stmt *sts[] = {s->ins_doc, s->ins_sec, s->ins_fts, s->ins_qa, s->find_hash};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) sqlite3_finalize(sts[i]);
    if (s->db) sqlite3_close(s->db);
    lqa_store_packer_free(s->packer);
    lqa_store_doc_free(&s->text_doc);
    pthread_mutex_destroy(&s->text_mu);
    free(s->path);
    free(s);
}

struct sqlite3 *lqa_store_db(lqa_store *s) { return s->db; }

/* ---- write API ---- */

void lqa_store_begin(lqa_store *s) { exec(s->db, "BEGIN IMMEDIATE"); }
void lqa_store_commit(lqa_store *s) { exec(s->db, "COMMIT"); }
void lqa_store_rollback(lqa_store *s) { exec(s->db, "ROLLBACK"); }

int64_t lqa_store_source(lqa_store *s, const char *name) {
    sqlite3_stmt *st = prep(s, "INSERT INTO sources(name) VALUES(?) ON CONFLICT(name) DO NOTHING");
    sqliteCheck(sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_step(st), s->db);
    sqlite3_finalize(st);
    st = prep(s, "SELECT id FROM sources WHERE name = ?");
    sqliteCheck(sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT), s->db);
    lqaCheck(sqlite3_step(st) == SQLITE_ROW, "source %s vanished", name);
    int64_t id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

int64_t lqa_store_find_hash(lqa_store *s, const char *hash_hex) {
    if (!s->find_hash) s->find_hash = prep(s, "SELECT id FROM documents WHERE hash = ?");
    sqlite3_stmt *st = s->find_hash;
    sqliteCheck(sqlite3_bind_text(st, 1, hash_hex, -1, SQLITE_TRANSIENT), s->db);
    int rc = sqlite3_step(st);
    sqliteCheck(rc, s->db);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return id;
}

/* Code points in UTF-8 text: every byte that is not a continuation byte (10xxxxxx) starts one;
 * eight bytes at a time, as this runs over every stored text. */
static size_t utf8_chars(const char *t, size_t n) {
    size_t cont = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, t + i, 8);
        cont += (size_t)__builtin_popcountll(w & ~(w << 1) & 0x8080808080808080ull);
    }
    for (; i < n; i++) cont += ((unsigned char)t[i] & 0xC0) == 0x80;
    return n - cont;
}

/* The insertions of a synthetic copy as JSON [[offset in the parent, "text"], ...]. */
static char *inserts_json(const lqa_store_doc_in *d, const lqa_span *inserted, int n_inserted) {
    json_t *a = json_array();
    mallocCheck(a);
    size_t before = 0, prev_end = 0; /* inserted bytes so far; end of the previous span */
    for (int i = 0; i < n_inserted; i++) {
        lqa_span sp = inserted[i];
        lqaCheck(sp.start >= prev_end && sp.start <= sp.end && sp.end <= d->text_len,
                 "inserted span %d [%zu, %zu) out of order or outside the text", i, sp.start, sp.end);
        json_t *ins = json_pack("[Is#]", (json_int_t)(sp.start - before), d->text + sp.start, (int)(sp.end - sp.start));
        lqaCheck(ins != NULL, "inserted text is not valid UTF-8");
        json_array_append_new(a, ins);
        before += sp.end - sp.start;
        prev_end = sp.end;
    }
    char *js = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    mallocCheck(js);
    return js;
}

lqa_store_packer *lqa_store_packer_new(void) {
    lqa_store_packer *p = lqa_calloc(1, sizeof *p);
    p->cctx = ZSTD_createCCtx();
    lqaCheck(p->cctx != NULL, "out of memory");
    /* level 1 rather than 3: 8 % bigger texts, 31 % less of the time compression takes */
    zstdCheck(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_compressionLevel, 1));
    zstdCheck(ZSTD_CCtx_setParameter(p->cctx, ZSTD_c_checksumFlag, 1));
    return p;
}

void lqa_store_packer_free(lqa_store_packer *p) {
    if (!p) return;
    ZSTD_freeCCtx(p->cctx);
    free(p);
}

/* Level 3 with the frame checksum, so a damaged blob is detected on read. */
void lqa_store_pack(lqa_store_packer *p, const char *text, size_t len, lqa_store_packed *out) {
    size_t cap = ZSTD_compressBound(len);
    out->z = lqa_malloc(cap ? cap : 1);
    out->zn = zstdCheck(ZSTD_compress2(p->cctx, out->z, cap, text, len));
    out->n_chars = utf8_chars(text, len);
}

void lqa_store_packed_free(lqa_store_packed *pk) {
    free(pk->z);
    memset(pk, 0, sizeof *pk);
}

static int64_t add_doc(lqa_store *s, const lqa_store_doc_in *d, const lqa_store_packed *packed,
                       const lqa_span *inserted, int n_inserted) {
    if (!s->ins_doc)
        s->ins_doc = prep(s, "INSERT INTO documents(source_id, hash, title, format, path, n_bytes, n_chars, split,"
                             " text, synthetic, parent_id, inserts) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    /* a copy of a stored parent keeps only its insertions: compressing a second full text
     * cost ~6 % of the ingest */
    lqa_store_packed own = {0};
    const lqa_store_packed *pk = packed;
    if (!pk && !inserted) {
        if (!s->packer) s->packer = lqa_store_packer_new();
        lqa_store_pack(s->packer, d->text, d->text_len, &own);
        pk = &own;
    }
    size_t n_chars = pk ? pk->n_chars : utf8_chars(d->text, d->text_len);
    char *ins = inserted ? inserts_json(d, inserted, n_inserted) : NULL;
    sqlite3_stmt *st = s->ins_doc;
    sqliteCheck(sqlite3_bind_int64(st, 1, d->source_id), s->db);
    sqliteCheck(sqlite3_bind_text(st, 2, d->hash_hex, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 3, d->title ? d->title : "", -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 4, d->format, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 5, d->path ? d->path : "", -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 6, (int64_t)d->text_len), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 7, (int64_t)n_chars), s->db);
    sqliteCheck(sqlite3_bind_text(st, 8, d->split, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_blob(st, 9, pk && pk->z ? pk->z : "", pk ? (int)pk->zn : 0, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_int(st, 10, d->synthetic), s->db);
    if (d->parent_id) sqliteCheck(sqlite3_bind_int64(st, 11, d->parent_id), s->db);
    else sqliteCheck(sqlite3_bind_null(st, 11), s->db);
    if (ins) sqliteCheck(sqlite3_bind_text(st, 12, ins, -1, SQLITE_TRANSIENT), s->db);
    else sqliteCheck(sqlite3_bind_null(st, 12), s->db);
    sqliteCheck(sqlite3_step(st), s->db);
    sqlite3_reset(st);
    lqa_store_packed_free(&own);
    free(ins);
    return sqlite3_last_insert_rowid(s->db);
}

int64_t lqa_store_add_doc(lqa_store *s, const lqa_store_doc_in *d) { return add_doc(s, d, NULL, NULL, 0); }

int64_t lqa_store_add_packed(lqa_store *s, const lqa_store_doc_in *d, const lqa_store_packed *packed) {
    return add_doc(s, d, packed, NULL, 0);
}

int64_t lqa_store_add_copy(lqa_store *s, const lqa_store_doc_in *d, const lqa_span *inserted, int n_inserted) {
    lqaCheck(d->parent_id > 0 && n_inserted > 0, "a copy needs its parent and at least one insertion");
    return add_doc(s, d, NULL, inserted, n_inserted);
}

int64_t lqa_store_add_section(lqa_store *s, int64_t doc_id, int idx, int parent_idx, int level,
                              const char *title, size_t start, size_t end, const char *body, size_t body_len) {
    if (!s->ins_sec) {
        s->ins_sec = prep(s, "INSERT INTO sections(doc_id, idx, parent, level, title, start, end, body_end)"
                             " VALUES(?,?,?,?,?,?,?,?)");
        s->ins_fts = prep(s, "INSERT INTO sections_fts(rowid, title, body) VALUES(?,?,?)");
    }
    sqlite3_stmt *st = s->ins_sec;
    sqliteCheck(sqlite3_bind_int64(st, 1, doc_id), s->db);
    sqliteCheck(sqlite3_bind_int(st, 2, idx), s->db);
    sqliteCheck(sqlite3_bind_int(st, 3, parent_idx), s->db);
    sqliteCheck(sqlite3_bind_int(st, 4, level), s->db);
    sqliteCheck(sqlite3_bind_text(st, 5, title ? title : "", -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 6, (int64_t)start), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 7, (int64_t)end), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 8, (int64_t)(start + body_len)), s->db);
    sqliteCheck(sqlite3_step(st), s->db);
    sqlite3_reset(st);
    int64_t id = sqlite3_last_insert_rowid(s->db);
    st = s->ins_fts;
    sqliteCheck(sqlite3_bind_int64(st, 1, id), s->db);
    sqliteCheck(sqlite3_bind_text(st, 2, title ? title : "", -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 3, body, (int)body_len, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_step(st), s->db);
    sqlite3_reset(st);
    return id;
}

char *lqa_store_answers_json(const char *answer) {
    json_t *a = json_pack("[s]", answer);
    lqaCheck(a != NULL, "answer is not valid UTF-8");
    char *js = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    mallocCheck(js);
    return js;
}

int64_t lqa_store_add_qa(lqa_store *s, const lqa_store_qa_in *q) {
    if (!s->ins_qa)
        s->ins_qa = prep(s, "INSERT INTO qa(doc_id, question, answer, answers, ev_start, ev_end, kind, generator,"
                            " doc_len, seed, anchor_start, anchor_end) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"
                            " ON CONFLICT(doc_id, question, answer) DO NOTHING");
    sqlite3_stmt *st = s->ins_qa;
    char *answers = q->answers_json ? NULL : lqa_store_answers_json(q->answer);
    sqliteCheck(sqlite3_bind_int64(st, 1, q->doc_id), s->db);
    sqliteCheck(sqlite3_bind_text(st, 2, q->question, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 3, q->answer, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 4, answers ? answers : q->answers_json, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 5, (int64_t)q->ev_start), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 6, (int64_t)q->ev_end), s->db);
    sqliteCheck(sqlite3_bind_text(st, 7, q->kind, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_text(st, 8, q->generator, -1, SQLITE_TRANSIENT), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 9, (int64_t)q->doc_len), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 10, (int64_t)q->seed), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 11, (int64_t)q->anchor_start), s->db);
    sqliteCheck(sqlite3_bind_int64(st, 12, (int64_t)q->anchor_end), s->db);
    sqliteCheck(sqlite3_step(st), s->db);
    sqlite3_reset(st);
    free(answers);
    /* an exact duplicate of a stored (document, question, answer) is not stored again */
    return sqlite3_changes(s->db) > 0 ? sqlite3_last_insert_rowid(s->db) : 0;
}

const char *lqa_store_split_for(const char *hash_hex, uint64_t seed, const double frac[3]) {
    /* 53 bits of the hash give a uniform number in [0, 1) */
    double u = (double)(lqa_xxh64(hash_hex, strlen(hash_hex), seed) >> 11) / 9007199254740992.0;
    double total = frac[0] + frac[1] + frac[2];
    if (total <= 0) return "train";
    if (u < frac[0] / total) return "train";
    if (u < (frac[0] + frac[1]) / total) return "valid";
    return "test";
}

const char *lqa_store_split_for_len(const char *hash_hex, uint64_t seed, const double frac[3], size_t text_len) {
    if (text_len < LQA_STORE_LONG_TEST) return lqa_store_split_for(hash_hex, seed, frac);
    double total = frac[0] + frac[1] + frac[2];
    if (total <= 0 || frac[2] <= 0) return lqa_store_split_for(hash_hex, seed, frac);
    double test = frac[2] / total * LQA_STORE_LONG_TEST_X, valid = frac[1] / total;
    if (test > 0.5) test = 0.5;
    if (test < frac[2] / total) test = frac[2] / total; /* never less than asked */
    double f[3] = {1.0 - valid - test, valid, test};
    if (f[0] < 0) f[0] = 0;
    return lqa_store_split_for(hash_hex, seed, f);
}

/* ---- read API ---- */

static char *col_dup(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return lqa_strdup(t ? (const char *)t : "");
}

/* The text in column col, whose row says it has n_bytes bytes (checked before allocating: a
 * damaged frame header could ask for any size). */
static int decompress_text(sqlite3_stmt *st, int col, int64_t n_bytes, int64_t id, char **out, size_t *out_len,
                           lqa_err *err) {
    const void *z = sqlite3_column_blob(st, col);
    size_t zn = (size_t)sqlite3_column_bytes(st, col);
    unsigned long long n = ZSTD_getFrameContentSize(z, zn);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN)
        return lqa_err_set(err, "document %lld: stored text is not a zstd frame with a known size", (long long)id);
    if (n_bytes < 0 || n != (unsigned long long)n_bytes)
        return lqa_err_set(err, "document %lld: stored text holds %llu bytes, the row says %lld (corrupt store)",
                           (long long)id, n, (long long)n_bytes);
    char *t = lqa_malloc((size_t)n + 1);
    size_t got = ZSTD_decompress(t, (size_t)n, z, zn);
    if (ZSTD_isError(got) || got != n) {
        free(t);
        return lqa_err_set(err, "document %lld: stored text is corrupt (%s)", (long long)id,
                           ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame");
    }
    t[n] = '\0';
    *out = t;
    *out_len = (size_t)n;
    return 0;
}

#define DOC_SELECT                                                                                      \
    "SELECT d.id, d.title, d.format, s.name, d.split, d.text, d.synthetic, d.inserts, d.parent_id, d.n_bytes, d.hash " \
    "FROM documents d JOIN sources s ON s.id = d.source_id "

/* Applies a synthetic copy's insertions ([[offset in the parent, "text"], ...]) to the parent's
 * text; the result must be n_bytes long. */
static int apply_inserts(const char *parent, size_t parent_len, const char *js, size_t n_bytes, int64_t id,
                         char **out, size_t *out_len, lqa_err *err) {
    json_t *a = json_loads(js, 0, NULL);
    lqa_buf b = {0};
    size_t pos = 0;
    int ok = json_is_array(a);
    for (size_t i = 0; ok && i < json_array_size(a); i++) {
        json_int_t at;
        const char *t;
        size_t tn;
        ok = json_unpack(json_array_get(a, i), "[Is%]", &at, &t, &tn) == 0 && at >= 0 && (size_t)at >= pos &&
             (size_t)at <= parent_len;
        if (!ok) break;
        lqa_buf_append(&b, parent + pos, (size_t)at - pos);
        lqa_buf_append(&b, t, tn);
        pos = (size_t)at;
    }
    if (ok) lqa_buf_append(&b, parent + pos, parent_len - pos);
    json_decref(a);
    if (!ok || b.len != n_bytes) {
        lqa_buf_free(&b);
        return lqa_err_set(err, "document %lld: stored insertions do not rebuild its text (corrupt store)", (long long)id);
    }
    lqa_buf_reserve(&b, 1);
    b.data[b.len] = '\0';
    *out_len = b.len;
    *out = lqa_buf_steal(&b);
    return 0;
}

/* A synthetic copy stored as insertions: its parent's text with them applied. */
static int rebuild_copy(lqa_store *s, sqlite3_stmt *row, int64_t id, char **out, size_t *out_len, lqa_err *err) {
    int64_t parent_id = sqlite3_column_int64(row, 8);
    sqlite3_stmt *st = prep(s, "SELECT text, n_bytes FROM documents WHERE id = ?");
    sqliteCheck(sqlite3_bind_int64(st, 1, parent_id), s->db);
    int rc = sqlite3_step(st);
    sqliteCheck(rc, s->db);
    char *parent = NULL;
    size_t parent_len = 0;
    int ret = rc == SQLITE_ROW ? decompress_text(st, 0, sqlite3_column_int64(st, 1), parent_id, &parent, &parent_len, err)
                               : lqa_err_set(err, "document %lld: its parent %lld is not in the store", (long long)id,
                                             (long long)parent_id);
    sqlite3_finalize(st);
    if (ret == 0)
        ret = apply_inserts(parent, parent_len, (const char *)sqlite3_column_text(row, 7),
                            (size_t)sqlite3_column_int64(row, 9), id, out, out_len, err);
    free(parent);
    return ret;
}

/* The text read is the text stored: its length is n_bytes and its SHA-256 the hash column (the
 * zstd checksum only says the frame is intact; a text swapped for another's, or rows edited by
 * hand, pass it). */
static int verify_text(lqa_store *s, sqlite3_stmt *st, int64_t id, const char *text, size_t len, lqa_err *err) {
    int64_t n_bytes = sqlite3_column_int64(st, 9);
    if (n_bytes != (int64_t)len)
        return lqa_err_set(err, "%s: document %lld: its text has %zu bytes, the row says %lld (the store is damaged or "
                                "was edited; re-ingest)", s->path, (long long)id, len, (long long)n_bytes);
    const char *want = (const char *)sqlite3_column_text(st, 10);
    uint8_t h[LQA_SHA256_SIZE];
    char hex[2 * LQA_SHA256_SIZE + 1];
    lqa_sha256(text, len, h);
    lqa_hex(h, LQA_SHA256_SIZE, hex);
    if (!want || strcmp(hex, want) != 0)
        return lqa_err_set(err, "%s: document %lld: its text does not match its stored SHA-256 (the store is damaged "
                                "or was edited; re-ingest)", s->path, (long long)id);
    return 0;
}

static int row_to_doc(lqa_store *s, sqlite3_stmt *st, lqa_store_doc *d, lqa_err *err) {
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    int rc = sqlite3_column_type(st, 7) == SQLITE_NULL
                 ? decompress_text(st, 5, sqlite3_column_int64(st, 9), d->id, &d->text, &d->text_len, err)
                 : rebuild_copy(s, st, d->id, &d->text, &d->text_len, err);
    if (rc != 0) lqa_err_prefix(err, "%s", s->path);
    else rc = verify_text(s, st, d->id, d->text, d->text_len, err);
    if (rc != 0) {
        free(d->text);
        d->text = NULL;
        return -1;
    }
    d->title = col_dup(st, 1);
    d->format = col_dup(st, 2);
    d->source = col_dup(st, 3);
    d->split = col_dup(st, 4);
    d->synthetic = sqlite3_column_int(st, 6) != 0;
    return 0;
}

void lqa_store_doc_free(lqa_store_doc *d) {
    free(d->title);
    free(d->format);
    free(d->source);
    free(d->split);
    free(d->text);
    memset(d, 0, sizeof *d);
}

int lqa_store_each_doc(lqa_store *s, const char *split, lqa_store_doc_fn fn, void *ctx, lqa_err *err) {
    sqlite3_stmt *st = prep(s, split ? DOC_SELECT "WHERE d.synthetic = 0 AND d.split = ? ORDER BY d.id"
                                     : DOC_SELECT "WHERE d.synthetic = 0 ORDER BY d.id");
    if (split) sqliteCheck(sqlite3_bind_text(st, 1, split, -1, SQLITE_TRANSIENT), s->db);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        lqa_store_doc d;
        if (row_to_doc(s, st, &d, err) != 0) {
            ret = -1;
            break;
        }
        int stop = fn(&d, ctx);
        lqa_store_doc_free(&d);
        if (stop) break;
    }
    if (ret == 0) sqliteCheck(rc, s->db);
    sqlite3_finalize(st);
    return ret;
}

int lqa_store_get_doc(lqa_store *s, int64_t id, lqa_store_doc *out, lqa_err *err) {
    sqlite3_stmt *st = prep(s, DOC_SELECT "WHERE d.id = ?");
    sqliteCheck(sqlite3_bind_int64(st, 1, id), s->db);
    int rc = sqlite3_step(st);
    sqliteCheck(rc, s->db);
    int ret = rc == SQLITE_ROW ? row_to_doc(s, st, out, err)
                               : lqa_err_set(err, "%s: no document with id %lld", s->path, (long long)id);
    sqlite3_finalize(st);
    return ret;
}

/* True when kind is in the comma-separated list. */
static int kind_in(const char *kind, const char *list) {
    size_t n = strlen(kind);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, kind, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* A stored span [a, b) of a document of n bytes: 0 when it is empty (unrecorded) or in order
 * inside the document. */
static int span_bad(long long a, long long b, long long n) { return a < 0 || b < 0 || (b > 0 && (a > b || b > n)); }

int lqa_store_check_qa(lqa_store *s, lqa_err *err) {
    static const char *const bad_span = "(q.%s_start < 0 OR q.%s_end < 0 OR (q.%s_end > 0 AND (q.%s_start > q.%s_end"
                                        " OR q.%s_end > d.n_bytes)))";
    char ev[160], an[160], sql[640];
    snprintf(ev, sizeof ev, bad_span, "ev", "ev", "ev", "ev", "ev", "ev");
    snprintf(an, sizeof an, bad_span, "anchor", "anchor", "anchor", "anchor", "anchor", "anchor");
    snprintf(sql, sizeof sql, "SELECT q.id, q.doc_id, q.ev_start, q.ev_end, d.id, d.n_bytes, q.anchor_start,"
                              " q.anchor_end FROM qa q LEFT JOIN documents d ON d.id = q.doc_id"
                              " WHERE d.id IS NULL OR %s OR %s ORDER BY q.id LIMIT 1", ev, an);
    sqlite3_stmt *st = prep(s, sql);
    int rc = sqlite3_step(st), ret = 0;
    sqliteCheck(rc, s->db);
    if (rc == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0), doc = sqlite3_column_int64(st, 1);
        long long a = sqlite3_column_int64(st, 2), b = sqlite3_column_int64(st, 3), n = sqlite3_column_int64(st, 5);
        const char *which = "evidence";
        if (!span_bad(a, b, n)) {
            which = "anchor";
            a = sqlite3_column_int64(st, 6);
            b = sqlite3_column_int64(st, 7);
        }
        if (sqlite3_column_type(st, 4) == SQLITE_NULL)
            ret = lqa_err_set(err, "%s: QA pair %lld points at document %lld, which is not in the store (damaged or "
                                   "edited store; re-ingest)", s->path, id, doc);
        else
            ret = lqa_err_set(err, "%s: QA pair %lld: %s span [%lld, %lld) is %s, expected start <= end <= %lld "
                                   "(the bytes of document %lld; damaged or edited store)", s->path, id, which, a, b,
                              a > b ? "reversed" : "outside its document", n, doc);
    }
    sqlite3_finalize(st);
    return ret;
}

int lqa_store_fts_syntax(const char *query, lqa_err *err) {
    sqlite3 *db;
    sqliteCheck(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), NULL);
    exec(db, "CREATE VIRTUAL TABLE q USING fts5(title, body)");
    sqlite3_stmt *st;
    sqliteCheck(sqlite3_prepare_v2(db, "SELECT rowid FROM q WHERE q MATCH ?", -1, &st, NULL), db);
    sqliteCheck(sqlite3_bind_text(st, 1, query, -1, SQLITE_TRANSIENT), db);
    int rc = sqlite3_step(st), ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) ret = lqa_err_set(err, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ret;
}

int lqa_store_each_qa(lqa_store *s, const char *split, const char *kinds, lqa_store_qa_fn fn, void *ctx,
                      lqa_err *err) {
    const char *sql_all = "SELECT q.id, q.doc_id, q.kind, q.generator, d.split, q.question, q.answer, q.ev_start,"
                          " q.ev_end, q.doc_len, q.anchor_start, q.anchor_end FROM qa q JOIN documents d ON d.id = q.doc_id ";
    if (lqa_store_check_qa(s, err) != 0) return -1; /* no pair dropped or trusted unchecked */
    char sql[512];
    snprintf(sql, sizeof sql, "%s%s ORDER BY q.id", sql_all, split ? "WHERE d.split = ?" : "");
    sqlite3_stmt *st = prep(s, sql);
    if (split) sqliteCheck(sqlite3_bind_text(st, 1, split, -1, SQLITE_TRANSIENT), s->db);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 2);
        if (kinds && !kind_in(kind, kinds)) continue;
        lqa_store_qa q = {
            .id = sqlite3_column_int64(st, 0),
            .doc_id = sqlite3_column_int64(st, 1),
            .kind = (char *)kind,
            .generator = (char *)sqlite3_column_text(st, 3),
            .split = (char *)sqlite3_column_text(st, 4),
            .question = (char *)sqlite3_column_text(st, 5),
            .answer = (char *)sqlite3_column_text(st, 6),
            .ev_start = (size_t)sqlite3_column_int64(st, 7),
            .ev_end = (size_t)sqlite3_column_int64(st, 8),
            .doc_len = (size_t)sqlite3_column_int64(st, 9),
            .anchor_start = (size_t)sqlite3_column_int64(st, 10),
            .anchor_end = (size_t)sqlite3_column_int64(st, 11),
        };
        if (fn(&q, ctx)) break;
    }
    if (rc != SQLITE_ROW) sqliteCheck(rc, s->db);
    sqlite3_finalize(st);
    (void)err;
    return 0;
}
