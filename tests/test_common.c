/* test_common.c: common/ helpers: buffers, RNG determinism, hashes, atomic files, JSON. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/progress.h"
#include "common/rng.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static void test_buf_printf_grows(void **state) {
    lqa_buf b = {0};
    for (int i = 0; i < 1000; i++) lqa_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
    assert_non_null(strstr(b.data, "999,"));
    lqa_buf_free(&b);
}

static void test_rng_deterministic_and_uniform(void **state) {
    uint64_t seed = lqa_test_seed();
    lqa_rng a, b;
    lqa_rng_seed(&a, seed);
    lqa_rng_seed(&b, seed);
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t x = lqa_rng_below(&a, 10);
        assert_int_equal(x, lqa_rng_below(&b, 10));
        counts[x]++;
    }
    for (int i = 0; i < 10; i++) assert_in_range(counts[i], 9000, 11000);
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double z = lqa_rng_normal(&a);
        sum += z;
        sq += z * z;
    }
    assert_true(fabs(sum / 100000) < 0.02);
    assert_true(fabs(sq / 100000 - 1.0) < 0.03);
}

static void test_sha256_known_vector(void **state) {
    uint8_t d[32];
    char hex[65];
    lqa_sha256("abc", 3, d);
    lqa_hex(d, 32, hex);
    /* FIPS 180-2 test vector */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_atomic_write_and_json(void **state) {
    const char *dir = lqa_test_tmpdir();
    char *path = lqa_path_join(dir, "sub/dir/x.json");
    char *parent = lqa_path_join(dir, "sub/dir");
    assert_int_equal(lqa_mkdir_p(parent, NULL), 0);
    json_t *o = json_pack("{s:i, s:s}", "n", 42, "s", "hello");
    assert_int_equal(lqa_json_write_file(path, o, NULL), 0);
    json_decref(o);
    lqa_err err;
    json_t *back = lqa_json_load_file(path, &err);
    assert_non_null(back);
    assert_int_equal(lqa_json_int(back, "n", 0), 42);
    assert_string_equal(lqa_json_str(back, "s", ""), "hello");
    json_decref(back);
    lqa_test_write(path, "{\"a\":\n 1,,}", 11);
    assert_null(lqa_json_load_file(path, &err));
    assert_non_null(strstr(err.msg, "x.json:2:"));
    free(path);
    free(parent);
}

/* Runs a progress of n updates, sleep_ms apart, with stderr sent to a file; returns the file's text. */
static char *progress_to_file(const char *name, int n, int sleep_ms) {
    char *path = lqa_path_join(lqa_test_tmpdir(), name);
    fflush(stderr);
    int saved = dup(STDERR_FILENO), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    setenv("LQA_PROGRESS", "1", 1);
    setenv("LQA_PROGRESS_INTERVAL", "0.05", 1);
    lqa_progress p;
    lqa_progress_start(&p, "crunching", n, "items");
    for (int i = 1; i <= n; i++) {
        struct timespec ts = {0, (long)sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
        lqa_progress_update(&p, i);
    }
    lqa_progress_finish(&p);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    setenv("LQA_PROGRESS", "0", 1);
    char *text;
    size_t len;
    lqa_err err;
    assert_int_equal(lqa_read_file(path, &text, &len, &err), 0);
    free(path);
    return text;
}

/* With stderr in a file, long work logs plain progress lines at the interval (no carriage
 * returns, no terminal escapes) and a closing line; short work writes nothing. */
static void test_progress_lines_when_not_a_terminal(void **state) {
    int n = 6 + (int)(lqa_test_seed() % 5);
    char *text = progress_to_file("progress.log", n, 30);
    int lines = 0;
    for (const char *c = text; *c; c++) lines += *c == '\n';
    if (lines < 3 || lines > n + 1) fail_msg("%d lines for %d updates: %s", lines, n, text);
    assert_null(strchr(text, '\r'));
    assert_null(strchr(text, '\x1b'));
    assert_non_null(strstr(text, "crunching ["));
    assert_non_null(strstr(text, "ETA done"));
    free(text);
    text = progress_to_file("progress-short.log", n, 0);
    assert_string_equal(text, "");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_printf_grows),
        cmocka_unit_test(test_rng_deterministic_and_uniform),
        cmocka_unit_test(test_sha256_known_vector),
        cmocka_unit_test(test_atomic_write_and_json),
        cmocka_unit_test(test_progress_lines_when_not_a_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
