/* test_train_options.c: the training options' table (trainer/options.h): the getopt entries parse
 * into the struct, bad values are refused naming the flag, config.json's "options" carries what
 * was set, and the --resume check refuses a changed option that shapes the run's state (and only
 * those), comparing --data as paths. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/rng.h"
#include "trainer/options.h"

static lqa_rng g_rng;

static void set(lqa_train_opts *o, const char *flag, const char *v) {
    lqa_err err;
    int val = lqa_train_opts_val(flag);
    assert_true(val >= 0);
    if (lqa_train_opts_apply(o, val, v, &err)) fail_msg("--%s %s: %s", flag, v, err.msg);
}

static void base(lqa_train_opts *o, const char *dir) {
    lqa_train_opts_default(o);
    o->model_dir = "model";
    o->out_dir = dir;
    o->data_dir = dir;
    o->ctx = 64;
}

/* Writes a config.json holding o's options; returns its path (caller frees). */
static char *write_config(const lqa_train_opts *o) {
    json_t *j = json_object();
    json_object_set_new(j, "options", lqa_train_opts_json(o));
    char *p = lqa_path_join(lqa_test_tmpdir(), "config.json");
    lqa_err err;
    assert_int_equal(lqa_json_write_file(p, j, &err), 0);
    json_decref(j);
    return p;
}

static void test_flags_parse_and_record(void **state) {
    lqa_train_opts o;
    base(&o, lqa_test_tmpdir());
    char v[32];
    int rank = 1 + (int)lqa_rng_below(&g_rng, 512);
    snprintf(v, sizeof v, "%d", rank);
    set(&o, "lora-rank", v);
    set(&o, "attn", "full");
    set(&o, "checkpointing", "off");
    set(&o, "lora-targets", "q,v");
    assert_int_equal(o.lora_rank, rank);
    assert_int_equal(o.attn, LQA_ATTN_FULL);
    assert_int_equal(o.checkpointing, 0);
    json_t *j = lqa_train_opts_json(&o);
    assert_int_equal(lqa_json_int(j, "lora_rank", -1), rank);
    assert_string_equal(lqa_json_str(j, "attn", ""), "full");
    assert_string_equal(lqa_json_str(j, "lora_targets", ""), "q,v");
    assert_true(json_is_false(json_object_get(j, "checkpointing")));
    assert_null(json_object_get(j, "full_attn_last")); /* 0: absent, as runs before the flag wrote */
    json_decref(j);
    lqa_err err;
    static const char *const bad[][2] = {{"ctx", "1"}, {"group-ratio", "0"}, {"lr", "-1"}, {"beta2", "1"},
                                         {"attn", "sparse"}, {"device", "gpu"}, {"checkpointing", "maybe"},
                                         {"seed", "-3"}, {"lora-targets", "q,zz"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = lqa_train_opts_apply(&o, lqa_train_opts_val(bad[i][0]), bad[i][1], &err);
        if (r != -1) fail_msg("--%s %s accepted", bad[i][0], bad[i][1]);
        if (!strstr(err.msg, bad[i][0])) fail_msg("--%s %s: the error does not name the flag: %s", bad[i][0], bad[i][1], err.msg);
    }
    assert_int_equal(lqa_train_opts_apply(&o, 5, "x", &err), 1); /* not a table option */
}

static void test_resume_check(void **state) {
    const char *dir = lqa_test_tmpdir();
    lqa_train_opts was;
    base(&was, dir);
    char *cfg = write_config(&was);
    lqa_err err;
    char v[32], dotted[4096];
    /* the same run, --data spelled another way, and options that do not shape the state changed */
    lqa_train_opts o = was;
    snprintf(dotted, sizeof dotted, "%s/.", dir);
    o.data_dir = dotted;
    snprintf(v, sizeof v, "%g", 1e-5 * (1 + (double)lqa_rng_below(&g_rng, 100)));
    set(&o, "lr", v);
    set(&o, "log-every", "3");
    if (lqa_train_opts_check_resume(cfg, &o, &err)) fail_msg("refused: %s", err.msg);
    /* each option that shapes the state, changed alone, is refused by its key */
    static const char *const change[][3] = {{"lora-rank", "lora_rank", "16"}, {"ctx", "ctx", "128"},
                                            {"seed", "seed", NULL}, {"train", "train", "full"},
                                            {"micro-batch", "micro_batch", "2"}, {"group-ratio", "group_ratio", "0.5"}};
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        o = was;
        snprintf(v, sizeof v, "%llu", (unsigned long long)(43 + lqa_rng_below(&g_rng, 1000)));
        set(&o, change[i][0], change[i][2] ? change[i][2] : v);
        if (lqa_train_opts_check_resume(cfg, &o, &err) == 0) fail_msg("--%s changed, resume accepted", change[i][0]);
        if (!strstr(err.msg, change[i][1])) fail_msg("--%s: the error does not name %s: %s", change[i][0], change[i][1], err.msg);
    }
    o = was;
    set(&o, "pack", "");
    assert_int_not_equal(lqa_train_opts_check_resume(cfg, &o, &err), 0);
    free(cfg);
}

int main(void) {
    lqa_rng_seed(&g_rng, lqa_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_parse_and_record),
        cmocka_unit_test(test_resume_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
