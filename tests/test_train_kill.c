/* test_train_kill.c: training killed at the injected points (LQA_TEST_KILL_AT: inside a checkpoint
 * save, at the `latest` switch, inside final/) and then resumed (or restarted, when no checkpoint
 * was complete) gives the uninterrupted run's bytes and leaves no stray file; corrupted
 * checkpoints (flipped bytes, a `latest` that leaves checkpoints/, values out of range) are
 * refused; a data folder spelled relative or absolute resumes; an adapter folder without its
 * lqa_training.json is refused by merge and eval (with it, merge writes the run's context). */
#include "tests/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_train_util.h"
#include "trainer/ckpt.h"

static const char *g_dir;
static char *g_tok, *g_model, *g_data, *g_straight;
static uint64_t g_seed;
enum { VOCAB = 512, CTX = 32, STEPS = 6 };

/* lqa-sft train into g_dir/name; env is put before the command (LQA_TEST_KILL_AT=...). */
static char *train(const char *env, const char *name, const char *extra, int want_rc, lqa_buf *out) {
    char *run = lqa_path_join(g_dir, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s %s train --model %s --data %s --out %s --ctx %d --micro-batch 2 --grad-accum 1 --threads 1 "
             "--warmup 2 --lr 1e-2 --steps %d --save-every 2 --keep-checkpoints 2 --seed %llu %s",
             env, lqa_test_tool("lqa-sft"), g_model, g_data, run, CTX, STEPS, (unsigned long long)g_seed, extra);
    run_expect(want_rc, out, cmd);
    return run;
}

static int setup(void **state) {
    g_seed = lqa_test_seed();
    g_dir = lqa_test_tmpdir();
    uint8_t sha[32];
    fixture_tiny_model(g_dir, g_seed, VOCAB, CTX / 2, &g_tok, &g_model, sha);
    g_data = lqa_path_join(g_dir, "data");
    fixture_shards(g_data, sha, VOCAB, 8, CTX, g_seed + 1);
    g_straight = train("", "straight", "", 0, NULL);
    return 0;
}

static int teardown(void **state) {
    free(g_tok);
    free(g_model);
    free(g_data);
    free(g_straight);
    return 0;
}

/* Every path under dir (relative, sorted, one per line) into out. */
static void list_tree(const char *dir, const char *rel, lqa_buf *out) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 256)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names[n++] = lqa_strdup(de->d_name);
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            if (strcmp(names[k], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[k];
                names[k] = t;
            }
    for (int i = 0; i < n; i++) {
        char *p = lqa_path_join(dir, names[i]);
        char r[1024];
        snprintf(r, sizeof r, "%s%s", rel, names[i]);
        lqa_buf_printf(out, "%s\n", r);
        if (lqa_is_dir(p)) {
            strcat(r, "/");
            list_tree(p, r, out);
        }
        free(p);
        free(names[i]);
    }
}

static void assert_same_tree(const char *a, const char *b) {
    lqa_buf la = {0}, lb = {0};
    list_tree(a, "", &la);
    list_tree(b, "", &lb);
    if (strcmp(la.data, lb.data) != 0) fail_msg("files differ:\n%s---\n%s", la.data, lb.data);
    lqa_buf_free(&la);
    lqa_buf_free(&lb);
}

static void assert_same_in(const char *a, const char *b, const char *name) {
    char *pa = lqa_path_join(a, name), *pb = lqa_path_join(b, name);
    assert_same_file(pa, pb);
    free(pa);
    free(pb);
}

/* Losses of every step are the uninterrupted run's. */
static void assert_same_losses(const char *a, const char *b) {
    json_t *ma = fixture_metrics(a), *mb = fixture_metrics(b);
    assert_int_equal(json_array_size(ma), STEPS);
    assert_int_equal(json_array_size(mb), STEPS);
    for (int s = 0; s < STEPS; s++) {
        double x = lqa_json_num(json_array_get(ma, (size_t)s), "loss", -1);
        double y = lqa_json_num(json_array_get(mb, (size_t)s), "loss", -2);
        if (x != y) fail_msg("step %d: loss %.9g vs %.9g", s + 1, x, y);
    }
    json_decref(ma);
    json_decref(mb);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = lqa_path_join(dir, name);
    lqa_err err;
    if (lqa_write_file_atomic(p, text, strlen(text), &err)) fail_msg("%s", err.msg);
    free(p);
}

/* Kill at point, then resume (or restart when the kill came before any complete checkpoint). */
static void kill_and_recover(const char *point, const char *name, int restart) {
    char env[128];
    snprintf(env, sizeof env, "LQA_TEST_KILL_AT=%s", point);
    lqa_buf out = {0};
    char *run = train(env, name, "", 137, &out);
    char *final = lqa_path_join(run, "final");
    assert_false(lqa_path_exists(final)); /* final/ is whole or absent */
    free(final);
    /* what a kill inside the run's atomic file writes leaves (FILE.tmp.PID of a dead process) */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[64];
    snprintf(stale, sizeof stale, "metrics.jsonl.tmp.%ld", (long)dead);
    write_text(run, stale, "{\"step\": 1");
    char *ck = lqa_path_join(run, "checkpoints");
    snprintf(stale, sizeof stale, "latest.tmp.%ld", (long)dead);
    if (lqa_is_dir(ck)) write_text(ck, stale, "step-0000");
    free(ck);
    free(train("", name, restart ? "" : "--resume", 0, &out));
    assert_same_in(g_straight, run, "final/adapter_model.safetensors");
    assert_same_in(g_straight, run, "final/lqa_training.json");
    assert_same_in(g_straight, run, "checkpoints/step-00000006/state.safetensors");
    assert_same_losses(g_straight, run);
    assert_same_tree(g_straight, run);
    lqa_buf_free(&out);
    free(run);
}

static void test_killed_during_first_checkpoint(void **state) {
    kill_and_recover("checkpoint:1", "k-ckpt1", 1);
}

static void test_killed_during_later_checkpoint(void **state) {
    kill_and_recover("checkpoint:2", "k-ckpt2", 0);
}

static void test_killed_at_first_latest_switch(void **state) {
    /* step-2 is complete, latest not yet written: --resume finds step-2 */
    kill_and_recover("latest:1", "k-latest1", 0);
}

static void test_killed_at_later_latest_switch(void **state) {
    kill_and_recover("latest:3", "k-latest3", 0);
}

static void test_killed_during_final(void **state) {
    kill_and_recover("final", "k-final", 0);
}

static void test_killed_while_putting_a_folder_in_place(void **state) {
    kill_and_recover("dir-commit:2", "k-commit2", 0);
}

/* --train full: final/ is a whole model folder (lqa_hf_save, atomic itself); killed just before
 * it is swapped in (the 4th folder commit after the checkpoints of steps 2, 4, 6), the resumed
 * run writes the uninterrupted one's model bytes. */
static void test_full_training_killed_before_final_model(void **state) {
    lqa_buf out = {0};
    char *a = train("", "full-straight", "--train full", 0, &out);
    char *b = train("LQA_TEST_KILL_AT=dir-commit:4", "full-killed", "--train full", 137, &out);
    char *final = lqa_path_join(b, "final");
    assert_false(lqa_path_exists(final));
    free(final);
    free(train("", "full-killed", "--train full --resume", 0, &out));
    assert_same_in(a, b, "final/model.safetensors");
    assert_same_in(a, b, "final/config.json");
    assert_same_tree(a, b);
    lqa_buf_free(&out);
    free(a);
    free(b);
}

/* A copy of the straight run to damage. */
static char *copy_run(const char *name) {
    char *dst = lqa_path_join(g_dir, name);
    lqa_buf out = {0};
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -a %s %s", dst, g_straight, dst);
    run_expect(0, &out, cmd);
    lqa_buf_free(&out);
    return dst;
}

static void test_flipped_byte_in_state_is_refused(void **state) {
    char *run = copy_run("c-flip");
    char *p = lqa_path_join(run, "checkpoints/step-00000006/state.safetensors");
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_read_file(p, &data, &n, &err), 0);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    size_t at = n / 2 + lqa_rng_below(&r, n / 2); /* inside the tensor data */
    data[at] ^= (char)(1 + lqa_rng_below(&r, 255));
    assert_int_equal(lqa_write_file_atomic(p, data, n, &err), 0);
    free(data);
    lqa_buf out = {0};
    free(train("", "c-flip", "--resume", 1, &out));
    assert_non_null(strstr(out.data, "state.safetensors"));
    assert_non_null(strstr(out.data, "damaged"));
    free(p);
    lqa_buf_free(&out);
    free(run);
}

static void test_latest_outside_checkpoints_is_refused(void **state) {
    char *run = copy_run("c-latest");
    char *ck = lqa_path_join(run, "checkpoints");
    lqa_buf out = {0};
    static const char *const bad[] = {"../../../../etc", "step-00000004/../../..", "/etc", "step-99999999", ""};
    for (int i = 0; i < 5; i++) {
        write_text(ck, "latest", bad[i]);
        free(train("", "c-latest", "--resume", 1, &out));
        assert_non_null(strstr(out.data, "latest"));
        assert_null(strstr(out.data, "resuming from"));
    }
    free(ck);
    lqa_buf_free(&out);
    free(run);
}

/* state.json values out of range are refused even with a valid checksum (re-sealed here);
 * a changed value without re-sealing fails the checksum. */
static void test_state_values_are_validated(void **state) {
    char *run = copy_run("c-state");
    char *sp = lqa_path_join(run, "checkpoints/step-00000006/state.json");
    lqa_err err;
    json_t *good = lqa_json_load_file(sp, &err);
    assert_non_null(good);
    uint64_t bytes, xxh;
    assert_int_equal(lqa_ckpt_check_state(good, sp, STEPS, &bytes, &xxh, &err), 0);
    struct {
        const char *key, *json, *want;
    } cases[] = {{"step", "1e15", "step"},          {"step", "1000000000000000", "beyond --steps"},
                 {"step", "-3", "step"},            {"step", "7", "beyond --steps"},
                 {"optim_t", "99", "optim_t"},      {"elapsed", "-1", "elapsed"},
                 {"rng", "[\"0000000000000000\",\"0000000000000000\",\"0000000000000000\",\"0000000000000000\"]", "rng"},
                 {"rng", "[\"zz\",\"1\",\"2\",\"3\"]", "rng"}, {"data", "{\"seed\":\"1\"}", "data"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_deep_copy(good), *files = json_incref(json_object_get(j, "files"));
        json_object_set_new(j, cases[i].key, json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
        const json_t *st = json_object_get(files, "state.safetensors");
        uint64_t h = strtoull(lqa_json_str(st, "xxh64", "0"), NULL, 16);
        lqa_ckpt_seal(j, (uint64_t)lqa_json_int(st, "bytes", 0), h);
        json_decref(files);
        assert_int_equal(lqa_ckpt_check_state(j, sp, STEPS, &bytes, &xxh, &err), -1);
        if (!strstr(err.msg, cases[i].want)) fail_msg("%s=%s: %s", cases[i].key, cases[i].json, err.msg);
        /* through the tool: the sealed bad file is refused, naming the file */
        assert_int_equal(lqa_json_write_file(sp, j, &err), 0);
        lqa_buf out = {0};
        free(train("", "c-state", "--resume", 1, &out));
        assert_non_null(strstr(out.data, "state.json"));
        lqa_buf_free(&out);
        json_decref(j);
    }
    /* a state.json written before "rng" was dropped (a generator nothing drew from) still loads */
    json_t *old = json_deep_copy(good), *files = json_incref(json_object_get(old, "files"));
    assert_null(json_object_get(good, "rng"));
    json_object_set_new(old, "rng", json_loads("[\"0123456789abcdef\",\"fedcba9876543210\",\"0000000000000001\",\"00000000000000ff\"]", 0, NULL));
    const json_t *ost = json_object_get(files, "state.safetensors");
    lqa_ckpt_seal(old, (uint64_t)lqa_json_int(ost, "bytes", 0), strtoull(lqa_json_str(ost, "xxh64", "0"), NULL, 16));
    json_decref(files);
    if (lqa_ckpt_check_state(old, sp, STEPS, &bytes, &xxh, &err)) fail_msg("old state.json refused: %s", err.msg);
    json_decref(old);
    /* a value changed without re-sealing */
    json_t *j = json_deep_copy(good);
    json_object_set_new(j, "elapsed", json_real(12.5));
    assert_int_equal(lqa_ckpt_check_state(j, sp, STEPS, &bytes, &xxh, &err), -1);
    assert_non_null(strstr(err.msg, "checksum"));
    json_decref(j);
    json_decref(good);
    free(sp);
    free(run);
}

/* --resume with the data folder spelled relative when the run was started with it absolute. */
static void test_resume_with_relative_data_path(void **state) {
    lqa_buf out = {0};
    char *run = train("LQA_TEST_KILL_AT=checkpoint:2", "rel", "", 137, &out);
    char cmd[4096], *tool = realpath(lqa_test_tool("lqa-sft"), NULL);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train --model %s --data ./data/ --out %s --ctx %d --micro-batch 2 --grad-accum 1 "
             "--threads 1 --warmup 2 --lr 1e-2 --steps %d --save-every 2 --keep-checkpoints 2 --seed %llu --resume",
             g_dir, tool, g_model, run, CTX, STEPS, (unsigned long long)g_seed);
    run_expect(0, &out, cmd);
    free(tool);
    assert_same_in(g_straight, run, "final/adapter_model.safetensors");
    lqa_buf_free(&out);
    free(run);
}

/* merge and eval refuse an lqa-sft adapter without its lqa_training.json (it carries the rope
 * scaling: without it merge wrote a model at the base context). */
static void test_adapter_without_training_record_is_refused(void **state) {
    char *run = copy_run("c-record");
    char *rec = lqa_path_join(run, "final/lqa_training.json");
    assert_int_equal(unlink(rec), 0);
    lqa_buf out = {0};
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s/final -o %s/merged", lqa_test_tool("lqa-sft"), g_model,
             run, g_dir);
    run_expect(1, &out, cmd);
    assert_non_null(strstr(out.data, "lqa_training.json"));
    char *merged = lqa_path_join(g_dir, "merged");
    assert_false(lqa_path_exists(merged));
    /* eval with the adapter: the same refusal, and no results written */
    snprintf(cmd, sizeof cmd, "%s run --model %s --adapter %s/final --tasks passkey --lengths 32 --depths 0.5 "
             "--trials 1 --threads 1 -o %s/r.json", lqa_test_tool("lqa-eval"), g_model, run, g_dir);
    run_expect(1, &out, cmd);
    assert_non_null(strstr(out.data, "lqa_training.json"));
    char *results = lqa_path_join(g_dir, "r.json");
    assert_false(lqa_path_exists(results));
    free(results);
    /* with the record, merge writes the run's context */
    snprintf(cmd, sizeof cmd, "cp %s/final/lqa_training.json %s", g_straight, rec);
    run_expect(0, &out, cmd);
    snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s/final -o %s", lqa_test_tool("lqa-sft"), g_model, run,
             merged);
    run_expect(0, &out, cmd);
    json_t *cfg = load_json(merged, "config.json");
    assert_int_equal(lqa_json_int(cfg, "max_position_embeddings", 0), CTX);
    json_decref(cfg);
    free(merged);
    free(rec);
    lqa_buf_free(&out);
    free(run);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_during_first_checkpoint),
        cmocka_unit_test(test_killed_during_later_checkpoint),
        cmocka_unit_test(test_killed_at_first_latest_switch),
        cmocka_unit_test(test_killed_at_later_latest_switch),
        cmocka_unit_test(test_killed_during_final),
        cmocka_unit_test(test_killed_while_putting_a_folder_in_place),
        cmocka_unit_test(test_full_training_killed_before_final_model),
        cmocka_unit_test(test_flipped_byte_in_state_is_refused),
        cmocka_unit_test(test_latest_outside_checkpoints_is_refused),
        cmocka_unit_test(test_state_values_are_validated),
        cmocka_unit_test(test_resume_with_relative_data_path),
        cmocka_unit_test(test_adapter_without_training_record_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
