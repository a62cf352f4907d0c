/* test_hostile_files.c: hostile and damaged inputs below the tools (issue 16): safetensors headers with
 * overlapping or overflowing entries, shard manifests that contradict their shards, a shard
 * directory read under a small open-file limit, a full disk while writing a shard, atomic folders
 * and the temporary folders of killed processes, a missing file named as missing, NaN through
 * lqa_expf. */
#include "tests/testutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json.h"
#include "common/safetensors.h"
#include "kernels/fastmath.h"
#include "tests/test_train_util.h"

static uint64_t g_seed;

static int setup(void **state) {
    g_seed = lqa_test_seed();
    return 0;
}

/* ---- safetensors ---- */

/* Bytes of a safetensors file: 8-byte length, header, n_data random bytes. */
static uint8_t *st_bytes(const char *header, size_t n_data, size_t *n) {
    size_t h = strlen(header);
    *n = 8 + h + n_data;
    uint8_t *b = lqa_malloc(*n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    for (size_t i = 0; i < n_data; i++) b[8 + h + i] = (uint8_t)lqa_rng_below(&r, 256);
    return b;
}

static void st_expect(const char *header, size_t n_data, const char *needle) {
    size_t n;
    uint8_t *b = st_bytes(header, n_data, &n);
    lqa_st_reader r;
    lqa_err err;
    int rc = lqa_st_open_mem(&r, b, n, "x.safetensors", &err);
    if (!needle) {
        if (rc) fail_msg("%s: %s", header, err.msg);
        lqa_st_close(&r);
    } else {
        if (rc == 0) fail_msg("accepted: %s", header);
        if (!strstr(err.msg, needle) || !strstr(err.msg, "x.safetensors")) fail_msg("%s: %s", header, err.msg);
    }
    free(b);
}

static void test_safetensors_headers(void **state) {
    /* well-formed: two tensors side by side */
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}", 16, NULL);
    /* b read from a's bytes */
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 16, "overlap");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "overlap");
    /* 2^40 x 2^40: the element count overflows size_t; and a count whose byte size overflows */
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,0]}}", 16,
              "overflows");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,16777216],\"data_offsets\":[0,0]}}", 16,
              "overflows");
    /* outside the data, bytes that disagree with shape x dtype */
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", 16, "outside");
    st_expect("{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "expected 6");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16, "outside");
    /* a missing file is named as missing, as is a missing JSON file */
    lqa_st_reader r;
    lqa_err err;
    char *p = lqa_path_join(lqa_test_tmpdir(), "nope.safetensors");
    assert_int_equal(lqa_st_open(&r, p, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open: No such file or directory"));
    free(p);
    p = lqa_path_join(lqa_test_tmpdir(), "nope.json");
    assert_null(lqa_json_load_file(p, &err));
    assert_non_null(strstr(err.msg, "nope.json: cannot open: No such file or directory"));
    free(p);
}

/* ---- shard manifests ---- */

static char *g_mdir;

static char *make_shards(const char *name, int n_shards) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), name);
    uint8_t sha[32];
    for (int i = 0; i < 32; i++) sha[i] = (uint8_t)(g_seed >> (i % 8)) + (uint8_t)i;
    fixture_shards(dir, sha, 300, 3, 10, g_seed);
    /* more shards: copies of the first under new names, listed in the manifest */
    json_t *m = load_json(dir, "manifest.json");
    json_t *list = json_object_get(m, "shards");
    json_t *first = json_deep_copy(json_array_get(list, 0));
    char *src = lqa_path_join(dir, "shard-00000.lqas");
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_read_file(src, &data, &n, &err), 0);
    for (int i = 1; i < n_shards; i++) {
        char fname[64];
        snprintf(fname, sizeof fname, "shard-%05d.lqas", i);
        char *dst = lqa_path_join(dir, fname);
        FILE *f = fopen(dst, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
        free(dst);
        json_t *e = json_deep_copy(first);
        json_object_set_new(e, "file", json_string(fname));
        json_array_append_new(list, e);
    }
    json_object_set_new(m, "records", json_integer(3 * n_shards));
    json_object_set_new(m, "tokens", json_integer(30 * n_shards));
    char *mp = lqa_path_join(dir, "manifest.json");
    assert_int_equal(lqa_json_write_file(mp, m, &err), 0);
    free(mp);
    free(data);
    free(src);
    json_decref(first);
    json_decref(m);
    return dir;
}

/* Opens dir after edit(manifest) and expects an error holding needle (NULL: success). */
static void manifest_expect(const char *dir, void (*edit)(json_t *), const char *needle) {
    json_t *m = load_json(dir, "manifest.json");
    char *mp = lqa_path_join(dir, "manifest.json"), *copy = lqa_path_join(g_mdir, "manifest.json");
    lqa_buf out = {0};
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -a %s %s", g_mdir, dir, g_mdir);
    run_expect(0, &out, cmd);
    lqa_buf_free(&out);
    if (edit) edit(m);
    lqa_err err;
    assert_int_equal(lqa_json_write_file(copy, m, &err), 0);
    lqa_shards *d = lqa_shards_open(g_mdir, NULL, &err);
    if (!needle) {
        if (!d) fail_msg("%s", err.msg);
        lqa_shards_close(d);
    } else {
        if (d) fail_msg("accepted a manifest that should give '%s'", needle);
        if (!strstr(err.msg, needle)) fail_msg("wanted '%s': %s", needle, err.msg);
    }
    json_decref(m);
    free(mp);
    free(copy);
}

static void list_twice(json_t *m) {
    json_t *l = json_object_get(m, "shards");
    json_array_set(l, 1, json_array_get(l, 0));
}
static void empty_list(json_t *m) {
    json_object_set_new(m, "shards", json_array());
    json_object_set_new(m, "records", json_integer(0));
    json_object_set_new(m, "tokens", json_integer(0));
}
static void other_kind(json_t *m) { json_object_set_new(m, "kind", json_string("sft")); }
static void other_dtype(json_t *m) { json_object_set_new(m, "dtype", json_string("uint32")); }
static void other_vocab(json_t *m) { json_object_set_new(json_object_get(m, "tokenizer"), "vocab_size", json_integer(32000)); }
static void other_packed(json_t *m) { json_object_set_new(m, "packed", json_true()); }
static void other_tokens(json_t *m) { json_object_set_new(m, "tokens", json_integer(7)); }

static void test_manifest_contradictions(void **state) {
    char *dir = make_shards("mshards", 3);
    g_mdir = lqa_path_join(lqa_test_tmpdir(), "medit");
    manifest_expect(dir, NULL, NULL);
    manifest_expect(dir, list_twice, "both list");
    manifest_expect(dir, empty_list, "not listed");
    manifest_expect(dir, other_kind, "kind");
    manifest_expect(dir, other_dtype, "dtype");
    manifest_expect(dir, other_vocab, "vocab_size");
    manifest_expect(dir, other_packed, "packed");
    manifest_expect(dir, other_tokens, "tokens");
    free(g_mdir);
    free(dir);
}

/* A FIFO named like a shard is refused at once (open() on it would block forever). */
static void test_fifo_shard_is_refused(void **state) {
    char *dir = make_shards("fifo", 2);
    char *p = lqa_path_join(dir, "shard-00001.lqas");
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0600), 0);
    lqa_err err;
    assert_null(lqa_shards_open(dir, NULL, &err));
    assert_non_null(strstr(err.msg, "shard-00001.lqas: cannot open: not a regular file (a FIFO)"));
    free(p);
    free(dir);
}

/* A directory of more shards than the open-file limit reads in full (one shard open at a time). */
static void test_many_shards_under_fd_limit(void **state) {
    enum { N = 80, LIMIT = 32 };
    char *dir = make_shards("many", N);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {LIMIT, LIMIT};
        if (setrlimit(RLIMIT_NOFILE, &rl)) _exit(3);
        lqa_err err;
        lqa_shards *d = lqa_shards_open(dir, NULL, &err);
        if (!d) {
            fprintf(stderr, "%s\n", err.msg);
            _exit(1);
        }
        lqa_record rec = {0};
        for (uint64_t i = 0; i < lqa_shards_count(d); i++)
            if (lqa_shards_read(d, (i * 37) % lqa_shards_count(d), &rec, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                _exit(2);
            }
        uint64_t count = lqa_shards_count(d);
        lqa_record_free(&rec);
        lqa_shards_close(d);
        _exit(count == 3 * N ? 0 : 4);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    free(dir);
}

/* A full disk (RLIMIT_FSIZE: writes fail with EFBIG) while writing a shard: an error naming the
 * file, and no temporary file left. */
static void test_shard_write_error_cleans_up(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "full");
    lqa_err err;
    assert_int_equal(lqa_mkdir_p(dir, &err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(3);
        char *path = lqa_path_join(dir, "shard-00000.lqas");
        lqa_shard_info info = {0};
        info.kind = LQA_KIND_LM;
        info.vocab_size = 60000;
        lqa_shard_writer *w = lqa_shard_writer_open(path, &info, 1, &err);
        if (!w) _exit(4);
        lqa_rng r;
        lqa_rng_seed(&r, g_seed);
        int32_t tok[512];
        uint8_t mask[512];
        int rc = 0;
        for (int i = 0; i < 64 && !rc; i++) {
            for (int t = 0; t < 512; t++) tok[t] = (int32_t)lqa_rng_below(&r, 60000), mask[t] = 1;
            rc = lqa_shard_writer_add(w, tok, mask, 512, NULL, 0, &err);
        }
        if (rc) lqa_shard_writer_abort(w);
        else rc = lqa_shard_writer_close(w, &err);
        if (rc == 0) _exit(5);
        fprintf(stderr, "%s\n", err.msg);
        _exit(strstr(err.msg, "shard-00000.lqas") && strstr(err.msg, "write failed") ? 0 : 6);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(lqa_dir_is_empty(dir));
    free(dir);
}

/* ---- atomic folders ---- */

static void write_in(const char *dir, const char *name, const char *text) {
    char *p = lqa_path_join(dir, name);
    lqa_err err;
    if (lqa_write_file_atomic(p, text, strlen(text), &err)) fail_msg("%s", err.msg);
    free(p);
}

static void test_atomic_dir_replaces_and_cleans(void **state) {
    const char *tmp = lqa_test_tmpdir();
    char *out = lqa_path_join(tmp, "adir");
    lqa_err err;
    /* a temporary folder of a finished (dead) process, and one of a running process (ours: the
     * parent, alive) */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[512], live[512];
    snprintf(stale, sizeof stale, "%s.tmp-%ld", out, (long)dead);
    snprintf(live, sizeof live, "%s.tmp-%ld", out, (long)getppid());
    assert_int_equal(lqa_mkdir_p(stale, &err), 0);
    write_in(stale, "half-written", "x");
    assert_int_equal(lqa_mkdir_p(live, &err), 0);
    lqa_atomic_dir ad;
    assert_int_equal(lqa_atomic_dir_begin(&ad, out, &err), 0);
    assert_false(lqa_path_exists(stale));
    assert_true(lqa_path_exists(live));
    write_in(ad.tmp, "a", "first");
    assert_false(lqa_path_exists(out)); /* nothing visible before the commit */
    assert_int_equal(lqa_atomic_dir_commit(&ad, &err), 0);
    /* replacing: the new folder's files only, the old one gone, no temporary left */
    assert_int_equal(lqa_atomic_dir_begin(&ad, out, &err), 0);
    write_in(ad.tmp, "b", "second");
    char *a = lqa_path_join(out, "a"), *b = lqa_path_join(out, "b");
    assert_true(lqa_path_exists(a)); /* the old one stays whole until the swap */
    assert_int_equal(lqa_atomic_dir_commit(&ad, &err), 0);
    assert_false(lqa_path_exists(a));
    assert_true(lqa_path_exists(b));
    char our[512];
    snprintf(our, sizeof our, "%s.tmp-%ld", out, (long)getpid());
    assert_false(lqa_path_exists(our));
    /* a file in the way is never replaced */
    char *file = lqa_path_join(tmp, "afile");
    write_in(tmp, "afile", "keep");
    assert_int_equal(lqa_atomic_dir_begin(&ad, file, &err), -1);
    assert_non_null(strstr(err.msg, "not a directory"));
    lqa_rm_tree(live);
    free(file);
    free(a);
    free(b);
    free(out);
}

/* ---- kernels ---- */

static void test_expf_nan_and_range(void **state) {
    /* volatile: values known only at run time, as NaN weights are (no constant folding hides
     * the undefined conversion and shift from UBSan) */
    volatile float nan_v = NAN, neg_inf = -INFINITY;
    assert_true(isnan(lqa_expf(nan_v)));
    assert_true(isnan(lqa_expf(-nan_v)));
    assert_true(lqa_expf(neg_inf) == 0.0f);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    for (int i = 0; i < 10000; i++) {
        float x = (float)(lqa_rng_uniform(&r) * 170.0 - 85.0);
        float want = expf(x), got = lqa_expf(x);
        if (fabsf(got - want) > 3e-7f * want) fail_msg("lqa_expf(%g) = %g, expf %g", (double)x, (double)got, (double)want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_safetensors_headers, setup),
        cmocka_unit_test_setup(test_manifest_contradictions, setup),
        cmocka_unit_test_setup(test_fifo_shard_is_refused, setup),
        cmocka_unit_test_setup(test_many_shards_under_fd_limit, setup),
        cmocka_unit_test_setup(test_shard_write_error_cleans_up, setup),
        cmocka_unit_test_setup(test_atomic_dir_replaces_and_cleans, setup),
        cmocka_unit_test_setup(test_expf_nan_and_range, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
