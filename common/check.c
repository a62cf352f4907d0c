/* check.c: fatal-error helpers behind the xxxCheck macros, and lqa_err. */
#include "common/check.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/escape.h"

void lqa_fatal_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    char msg[2048];
    fflush(stdout);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lqa_escape_inplace(msg, sizeof msg); /* a path in it may hold a newline */
    fprintf(stderr, "lqa: fatal: %s (at %s:%d)\n", msg, file, line);
    exit(1);
}

void *lqa_malloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) lqa_fatal_at(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *lqa_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) lqa_fatal_at(file, line, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *lqa_realloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) lqa_fatal_at(file, line, "out of memory reallocating to %zu bytes", n);
    return q;
}

char *lqa_strdup_at(const char *s, const char *file, int line) {
    return lqa_strndup_at(s, strlen(s), file, line);
}

char *lqa_strndup_at(const char *s, size_t n, const char *file, int line) {
    char *p = lqa_malloc_at(n + 1, file, line);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

FILE *lqa_fopen_at(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) lqa_fatal_at(file, line, "cannot open %s (mode %s): %s", path, mode, strerror(errno));
    return f;
}

void lqa_fread_at(void *buf, size_t size, size_t n, FILE *f, const char *file, int line) {
    size_t got = fread(buf, size, n, f);
    if (got != n) {
        lqa_fatal_at(file, line, "short read: %zu of %zu items (%s)", got, n,
                     feof(f) ? "end of file" : strerror(errno));
    }
}

void lqa_fwrite_at(const void *buf, size_t size, size_t n, FILE *f, const char *file, int line) {
    if (fwrite(buf, size, n, f) != n) lqa_fatal_at(file, line, "write failed: %s", strerror(errno));
}

void lqa_fclose_at(FILE *f, const char *file, int line) {
    if (fclose(f) != 0) lqa_fatal_at(file, line, "close failed: %s", strerror(errno));
}

/* Names the database file: "database disk image is malformed" alone does not say which. */
void lqa_sqlite_fail(int rc, struct sqlite3 *db, const char *file, int line) {
    const char *path = db ? sqlite3_db_filename(db, "main") : NULL;
    int corrupt = (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
    lqa_fatal_at(file, line, "%s%sSQLite error %d: %s%s", path && *path ? path : "", path && *path ? ": " : "", rc,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                 corrupt ? " (the database file is damaged: restore it or rebuild it from its inputs)" : "");
}

size_t lqa_zstd_check(size_t ret, const char *file, int line) {
    if (ZSTD_isError(ret)) lqa_fatal_at(file, line, "zstd error: %s", ZSTD_getErrorName(ret));
    return ret;
}

int lqa_err_set(lqa_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    lqa_escape_inplace(err->msg, sizeof err->msg); /* one printable line, whatever a name holds */
    return -1;
}

int lqa_err_prefix(lqa_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%.500s: %.500s", prefix, old);
    lqa_escape_inplace(err->msg, sizeof err->msg);
    return -1;
}
