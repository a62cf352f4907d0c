/* test_sql_util.h: one-value queries on a store file, for the tests that check what a tool run
 * wrote (test_ingest_cli, test_ingest_threads). Each opens the file read-only, so it sees only
 * committed rows. Header-only: the test binaries link only testutil.c. */
#ifndef LQA_TEST_SQL_UTIL_H
#define LQA_TEST_SQL_UTIL_H

#include <sqlite3.h>

#include "common/check.h"

/* The first column of the first row as an integer; -1 when the query fails or has no row. */
static inline long long test_sql_int(const char *db, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* The first column of the first row as text (caller frees); "" when there is none. */
static inline char *test_sql_text(const char *db, const char *sql) {
    sqlite3 *h;
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            v = lqa_strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v ? v : lqa_strdup("");
}

#endif
