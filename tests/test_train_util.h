/* test_train_util.h: fixtures of the trainer tests (test_train, test_hfdir, test_sft_cli): a
 * small tokenizer, a model made by the real `lqa-sft init`, and shard directories written with
 * the real shard writer (records of a repeated random motif, so a tiny model can learn them). */
#ifndef LQA_TEST_TRAIN_UTIL_H
#define LQA_TEST_TRAIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/rng.h"
#include "dataset/shards.h"
#include "tests/test_shards_util.h"

/* Runs a command, failing the test (with its output) when the exit status differs from want. */
static inline void run_expect(int want, lqa_buf *out, const char *cmd) {
    lqa_buf local = {0};
    lqa_buf *o = out ? out : &local;
    lqa_buf_clear(o);
    int rc = lqa_test_run(o, "%s", cmd);
    if (rc != want) {
        fprintf(stderr, "command: %s\nexit %d (wanted %d), output:\n%s\n", cmd, rc, want, o->data ? o->data : "");
        fail();
    }
    lqa_buf_free(&local);
}

/* Two files have the same bytes. */
static inline void assert_same_file(const char *a, const char *b) {
    char *da, *db;
    size_t na, nb;
    lqa_err err;
    assert_int_equal(lqa_read_file(a, &da, &na, &err), 0);
    assert_int_equal(lqa_read_file(b, &db, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
}

/* `lqa-sft init` into dir/name with extra flags; returns the path (caller frees). */
static inline char *fixture_model(const char *dir, const char *name, const char *tok, const char *flags) {
    char *path = lqa_path_join(dir, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s init --tokenizer %s -o %s %s", lqa_test_tool("lqa-sft"), tok, path, flags);
    run_expect(0, NULL, cmd);
    return path;
}

/* Writes n_records records of n_tokens each (a random motif of 4..8 tokens repeated) into dir
 * (created) with manifest.json, for the tokenizer whose sha256 is sha (32 bytes). kind LM: every
 * token after the first is a target; kind SFT: only the second half (an "answer"). */
static inline void fixture_shards_kind(const char *dir, const uint8_t sha[32], int vocab, int n_records, int n_tokens,
                                       uint64_t seed, lqa_shard_kind kind) {
    lqa_err err = {{0}};
    if (lqa_mkdir_p(dir, &err)) fail_msg("%s", err.msg);
    lqa_shard_info info;
    memset(&info, 0, sizeof info);
    info.kind = kind;
    info.vocab_size = (uint32_t)vocab;
    info.template_id = LQA_TEMPLATE_NONE;
    memcpy(info.tokenizer_sha256, sha, 32);
    char *path = lqa_path_join(dir, "shard-00000.lqas");
    lqa_shard_writer *w = lqa_shard_writer_open(path, &info, 3, &err);
    if (!w) fail_msg("%s", err.msg);
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    int32_t *tok = lqa_malloc(sizeof(int32_t) * (size_t)n_tokens);
    uint8_t *mask = lqa_malloc((size_t)n_tokens);
    long total = 0;
    for (int i = 0; i < n_records; i++) {
        int32_t motif[8];
        int len = 4 + (int)lqa_rng_below(&r, 5);
        for (int k = 0; k < len; k++) motif[k] = 3 + (int32_t)lqa_rng_below(&r, (uint64_t)(vocab - 3));
        for (int t = 0; t < n_tokens; t++) {
            tok[t] = motif[t % len];
            mask[t] = kind == LQA_KIND_SFT ? t >= n_tokens / 2 : t > 0;
        }
        lqa_segment seg = {-1, i, 0, (uint32_t)n_tokens};
        if (lqa_shard_writer_add(w, tok, mask, (uint32_t)n_tokens, &seg, 1, &err)) fail_msg("%s", err.msg);
        total += n_tokens;
    }
    if (lqa_shard_writer_close(w, &err)) fail_msg("%s", err.msg);
    char hex[65];
    lqa_hex(sha, 32, hex);
    json_t *m = json_pack("{s:s, s:i, s:s, s:{s:s}, s:[{s:s, s:i, s:I}], s:i, s:I}", "format", "lqa-shards", "version",
                          (int)LQA_SHARD_VERSION, "kind", lqa_shard_kind_name(kind), "tokenizer", "sha256", hex, "shards", "file",
                          "shard-00000.lqas", "records", n_records, "tokens", (json_int_t)total, "records", n_records,
                          "tokens", (json_int_t)total);
    char *mpath = lqa_path_join(dir, "manifest.json");
    if (lqa_json_write_file(mpath, m, &err)) fail_msg("%s", err.msg);
    json_decref(m);
    free(mpath);
    free(path);
    free(tok);
    free(mask);
}

static inline void fixture_shards(const char *dir, const uint8_t sha[32], int vocab, int n_records, int n_tokens,
                                  uint64_t seed) {
    fixture_shards_kind(dir, sha, vocab, n_records, n_tokens, seed, LQA_KIND_LM);
}

/* SHA-256 of a file (fails the test when unreadable). */
static inline void fixture_sha(const char *path, uint8_t sha[32]) {
    lqa_err err = {{0}};
    if (lqa_sha256_file(path, sha, &err)) fail_msg("%s", err.msg);
}

/* The trainer tests' starting point in dir: a tokenizer of vocab pieces (*tok), a tiny model
 * initialised at init_ctx positions (*model; trained longer, it is position-interpolated) and the
 * tokenizer's sha256 for shard manifests. */
static inline void fixture_tiny_model(const char *dir, uint64_t seed, int vocab, int init_ctx, char **tok,
                                      char **model, uint8_t sha[32]) {
    *tok = lqa_strdup(fixture_tokenizer(dir, "tok.model", seed, vocab));
    char flags[128];
    snprintf(flags, sizeof flags, "--preset tiny --ctx %d --seed %llu", init_ctx, (unsigned long long)seed);
    *model = fixture_model(dir, "model", *tok, flags);
    fixture_sha(*tok, sha);
}

/* metrics.jsonl as an array of objects. */
/* DIR/NAME parsed as JSON; fails the test when it is missing or invalid. */
static inline json_t *load_json(const char *dir, const char *name) {
    char *p = lqa_path_join(dir, name);
    lqa_err err;
    json_t *j = lqa_json_load_file(p, &err);
    if (!j) fail_msg("%s", err.msg);
    free(p);
    return j;
}

static inline json_t *fixture_metrics(const char *run_dir) {
    char *p = lqa_path_join(run_dir, "metrics.jsonl");
    char *text;
    size_t n;
    lqa_err err;
    if (lqa_read_file(p, &text, &n, &err)) fail_msg("%s", err.msg);
    json_t *a = json_array();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j) fail_msg("metrics.jsonl: bad line '%s'", line);
        json_array_append_new(a, j);
    }
    free(text);
    free(p);
    return a;
}

#endif
