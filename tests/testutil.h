/* testutil.h: what every test binary shares. Tests use cmocka; include this after the cmocka
 * prerequisites (stdarg.h, stddef.h, stdint.h, setjmp.h) or just include this alone. */
#ifndef LQA_TESTUTIL_H
#define LQA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka must come after the headers above */
#include <cmocka.h>

#include "common/buf.h"

/* Path of a built tool ("lqa-ingest"), from $LQA_BUILD (set by tests/run.sh) or ./build. */
const char *lqa_test_tool(const char *name);
/* A fresh empty directory under $TMPDIR, removed by lqa_test_cleanup() at exit. */
const char *lqa_test_tmpdir(void);
/* Runs a shell command; stdout+stderr into out (if not NULL). Returns the exit status. */
int lqa_test_run(lqa_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a file (creating parents). */
void lqa_test_write(const char *path, const void *data, size_t n);
/* Directory of the repository's tests/fixtures. */
const char *lqa_test_fixtures(void);
/* A seed for "fresh random inputs": $LQA_TEST_SEED if set, else time-based; printed once so a
 * failure can be reproduced. */
uint64_t lqa_test_seed(void);
/* Runs the built tool once per case, a printf format whose %s becomes a quoted argument holding
 * a newline then "error: forged<random>": each run must fail (exit non-zero), show the value
 * escaped ("\\nerror: forged...") and print no line that begins with the forged text. */
void lqa_test_cli_not_forged(const char *tool, const char *const *cases, size_t n_cases);

#endif
