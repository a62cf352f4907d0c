/* test_build_kill.c: lqa-build killed or short of disk (issue 16): a build killed before its
 * folder is swapped in leaves the previous shard folder whole, one killed right after leaves the
 * new one whole, and the next build removes what either left (DIR.tmp-PID); a full disk
 * (RLIMIT_FSIZE through `ulimit -f`, SIGXFSZ ignored so writes fail with EFBIG) gives an error
 * naming the file and leaves no temporary file, for shards and for the tokenizer. */
#include "tests/testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "dataset/shards.h"
#include "tests/test_shards_util.h"

static char g_db[512], g_tok[512], g_dir[512];
static const char *g_tool;

static int setup(void **state) {
    const char *tmp = lqa_test_tmpdir();
    g_tool = lqa_test_tool("lqa-build");
    snprintf(g_db, sizeof g_db, "%s", fixture_store(tmp, "fx.db", lqa_test_seed(), 12, 3, 40, 4));
    snprintf(g_tok, sizeof g_tok, "%s/tok.model", tmp);
    snprintf(g_dir, sizeof g_dir, "%s", tmp);
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s tokenizer --db %s --vocab-size 800 --seed 7 -o %s", g_tool, g_db, g_tok);
    if (rc != 0) fprintf(stderr, "tokenizer training failed: %s\n", out.data);
    lqa_buf_free(&out);
    return rc;
}

static int build(const char *env, const char *out_name, const char *extra, lqa_buf *log) {
    char *out = lqa_path_join(g_dir, out_name);
    int rc = lqa_test_run(log, "%s %s shards --db %s --tokenizer %s --kind sft --max-len 512 -o %s %s", env, g_tool,
                          g_db, g_tok, out, extra);
    free(out);
    return rc;
}

/* Names in g_dir starting with prefix. */
static int count_prefixed(const char *prefix) {
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static char *manifest_text(const char *name) {
    char *dir = lqa_path_join(g_dir, name), *p = lqa_path_join(dir, "manifest.json"), *text;
    size_t n;
    lqa_err err;
    lqa_shards *d = lqa_shards_open(dir, NULL, &err);
    if (!d) fail_msg("%s", err.msg);
    lqa_shards_close(d);
    assert_int_equal(lqa_read_file(p, &text, &n, &err), 0);
    free(p);
    free(dir);
    return text;
}

static void test_killed_builds_leave_a_whole_folder(void **state) {
    lqa_buf log = {0};
    assert_int_equal(build("", "out", "", &log), 0);
    char *first = manifest_text("out");
    /* a build with other settings, killed before its folder goes in: the old one stays whole */
    assert_int_equal(build("LQA_TEST_KILL_AT=dir-commit", "out", "--pack", &log), 137);
    char *after = manifest_text("out");
    assert_string_equal(first, after);
    free(after);
    assert_int_equal(count_prefixed("out.tmp-"), 1);
    /* killed right after the swap: the new folder is whole, the old one waits at out.tmp-PID */
    assert_int_equal(build("LQA_TEST_KILL_AT=dir-swapped", "out", "--pack", &log), 137);
    after = manifest_text("out");
    assert_non_null(strstr(after, "\"pack\": true"));
    free(after);
    assert_true(count_prefixed("out.tmp-") >= 1);
    /* the next build removes both leftovers and gives the first build's bytes again */
    assert_int_equal(build("", "out", "", &log), 0);
    assert_int_equal(count_prefixed("out.tmp-"), 0);
    after = manifest_text("out");
    assert_string_equal(first, after);
    free(after);
    free(first);
    lqa_buf_free(&log);
}

static void test_full_disk_names_the_file_and_cleans_up(void **state) {
    lqa_buf log = {0};
    /* a store whose shards and tokenizer text outgrow the limit (128 blocks of 512 bytes under
     * sh: 64 KiB), which still lets SQLite use its 32 KiB -shm file */
    char *big = lqa_strdup(fixture_store(g_dir, "big.db", lqa_test_seed() + 1, 120, 3, 40, 4));
    char *out = lqa_path_join(g_dir, "full");
    int rc = lqa_test_run(&log, "trap '' XFSZ; ulimit -f 128; %s shards --db %s --tokenizer %s --kind lm --max-len 512 "
                          "--zstd-level 1 -o %s", g_tool, big, g_tok, out);
    free(out);
    assert_int_equal(rc, 1);
    if (!strstr(log.data, "write failed") || !strstr(log.data, "full.tmp-"))
        fail_msg("no file named in: %s", log.data);
    assert_int_equal(count_prefixed("full"), 0);
    /* tokenizer: its training text is removed and named */
    char *tok = lqa_path_join(g_dir, "tok-full.model");
    rc = lqa_test_run(&log, "trap '' XFSZ; ulimit -f 128; %s tokenizer --db %s --vocab-size 800 -o %s", g_tool, big,
                      tok);
    assert_int_equal(rc, 1);
    if (!strstr(log.data, "tok-full.model") || !strstr(log.data, "write failed")) fail_msg("%s", log.data);
    assert_int_equal(count_prefixed("tok-full"), 0);
    free(tok);
    free(big);
    lqa_buf_free(&log);
}

/* lqa-build verify refuses a manifest that lists a shard twice or hides shard files. */
static void test_verify_refuses_contradicting_manifest(void **state) {
    lqa_buf log = {0};
    assert_int_equal(build("", "vm", "--shard-records 10", &log), 0);
    char *dir = lqa_path_join(g_dir, "vm"), *mp = lqa_path_join(dir, "manifest.json");
    lqa_err err;
    json_t *m = lqa_json_load_file(mp, &err);
    assert_non_null(m);
    json_t *list = json_object_get(m, "shards");
    assert_true(json_array_size(list) >= 2);
    json_t *copy = json_deep_copy(m);
    json_array_set(json_object_get(copy, "shards"), 1, json_array_get(list, 0));
    assert_int_equal(lqa_json_write_file(mp, copy, &err), 0);
    json_decref(copy);
    assert_int_equal(lqa_test_run(&log, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(log.data, "both list"));
    copy = json_deep_copy(m);
    json_object_set_new(copy, "shards", json_array());
    json_object_set_new(copy, "records", json_integer(0));
    json_object_set_new(copy, "tokens", json_integer(0));
    assert_int_equal(lqa_json_write_file(mp, copy, &err), 0);
    json_decref(copy);
    assert_int_equal(lqa_test_run(&log, "%s verify %s", g_tool, dir), 1);
    assert_non_null(strstr(log.data, "not listed"));
    assert_int_equal(lqa_json_write_file(mp, m, &err), 0);
    assert_int_equal(lqa_test_run(&log, "%s verify %s", g_tool, dir), 0);
    json_decref(m);
    free(mp);
    free(dir);
    lqa_buf_free(&log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_builds_leave_a_whole_folder),
        cmocka_unit_test(test_full_disk_names_the_file_and_cleans_up),
        cmocka_unit_test(test_verify_refuses_contradicting_manifest),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
