/* check.h: the one error-check macro family of LongQA.
 *
 * Two kinds of failure exist in the project:
 *  - fatal: allocation, a library call that must not fail (SQLite on an open store, zstd on our
 *    own buffers, CUDA, cuBLAS), a write to a file we created. The xxxCheck macros below print
 *    file:line and what failed, then exit(1). Modelled on llm.c's mallocCheck/cudaCheck.
 *  - recoverable: bad user input (a malformed document, a corrupt shard). Functions that read
 *    user input return int (0 = ok, -1 = error) and fill an lqa_err with file, place and what
 *    was expected, so a caller can report it and go on with the next input.
 */
#ifndef LQA_CHECK_H
#define LQA_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define LQA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LQA_NORETURN __attribute__((noreturn))
#else
#define LQA_PRINTF(a, b)
#define LQA_NORETURN
#endif

/* ---- fatal errors ------------------------------------------------------------------------ */

LQA_NORETURN void lqa_fatal_at(const char *file, int line, const char *fmt, ...) LQA_PRINTF(3, 4);
#define lqa_fatal(...) lqa_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

/* Aborts with a message when cond is false. */
#define lqaCheck(cond, ...) do { if (!(cond)) lqa_fatal_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Allocation: every malloc in the project goes through these (they never return NULL). */
void *lqa_malloc_at(size_t n, const char *file, int line);
void *lqa_calloc_at(size_t count, size_t size, const char *file, int line);
void *lqa_realloc_at(void *p, size_t n, const char *file, int line);
char *lqa_strdup_at(const char *s, const char *file, int line);
char *lqa_strndup_at(const char *s, size_t n, const char *file, int line);
#define lqa_malloc(n) lqa_malloc_at((n), __FILE__, __LINE__)
#define lqa_calloc(c, s) lqa_calloc_at((c), (s), __FILE__, __LINE__)
#define lqa_realloc(p, n) lqa_realloc_at((p), (n), __FILE__, __LINE__)
#define lqa_strdup(s) lqa_strdup_at((s), __FILE__, __LINE__)
#define lqa_strndup(s, n) lqa_strndup_at((s), (n), __FILE__, __LINE__)
#define mallocCheck(p) lqaCheck((p) != NULL, "out of memory")

/* stdio on files we own: fopen/fread/fwrite/fclose that exit with the path and errno text. */
FILE *lqa_fopen_at(const char *path, const char *mode, const char *file, int line);
void lqa_fread_at(void *buf, size_t size, size_t n, FILE *f, const char *file, int line);
void lqa_fwrite_at(const void *buf, size_t size, size_t n, FILE *f, const char *file, int line);
void lqa_fclose_at(FILE *f, const char *file, int line);
#define fopenCheck(path, mode) lqa_fopen_at((path), (mode), __FILE__, __LINE__)
#define freadCheck(buf, size, n, f) lqa_fread_at((buf), (size), (n), (f), __FILE__, __LINE__)
#define fwriteCheck(buf, size, n, f) lqa_fwrite_at((buf), (size), (n), (f), __FILE__, __LINE__)
#define fcloseCheck(f) lqa_fclose_at((f), __FILE__, __LINE__)

/* SQLite: rc must be SQLITE_OK, SQLITE_ROW or SQLITE_DONE; db may be NULL. */
#define sqliteCheck(rc, db) do { int rc_ = (rc); \
    if (rc_ != 0 && rc_ != 100 && rc_ != 101) lqa_sqlite_fail(rc_, (db), __FILE__, __LINE__); } while (0)
struct sqlite3;
LQA_NORETURN void lqa_sqlite_fail(int rc, struct sqlite3 *db, const char *file, int line);

/* zstd: the size_t result of any ZSTD_ call. */
#define zstdCheck(ret) lqa_zstd_check((ret), __FILE__, __LINE__)
size_t lqa_zstd_check(size_t ret, const char *file, int line);

/* cudaCheck / cublasCheck live in kernels/cuda/cuda_check.h (only CUDA files include them). */

/* ---- recoverable errors ------------------------------------------------------------------- */

/* Carries one message: "FILE:LINE: what was found, what was expected". */
typedef struct lqa_err {
    char msg[1024];
} lqa_err;

/* Sets err (if not NULL) and returns -1, so `return lqa_err_set(err, ...)` reads naturally. */
int lqa_err_set(lqa_err *err, const char *fmt, ...) LQA_PRINTF(2, 3);
/* Prefixes an existing message with context ("while reading X: ..."). Returns -1. */
int lqa_err_prefix(lqa_err *err, const char *fmt, ...) LQA_PRINTF(2, 3);

#endif
