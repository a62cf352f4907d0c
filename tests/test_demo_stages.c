/* test_demo_stages.c: scripts/demo.sh's stage records (with LQA_DEMO_STUB=1 every stage is a
 * no-op): a re-run in the same mode skips every finished stage; the full demo after the quick
 * one redoes each stage whose settings differ and every stage after it, keeps the mode-free
 * ingest, and says why; the records name the mode and settings. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/fileio.h"

static void demo(const char *dir, const char *args, lqa_buf *out) {
    lqa_buf_clear(out);
    int rc = lqa_test_run(out, "DEMO_DIR=%s LQA_DEMO_STUB=1 THREADS=1 scripts/demo.sh %s", dir, args);
    if (rc) fail_msg("demo.sh %s: exit %d: %s", args, rc, out->data);
}

/* The line of out that announces stage `name` (its description starts with it). */
static const char *stage_line(const lqa_buf *out, const char *desc) {
    const char *p = strstr(out->data, desc);
    if (!p) fail_msg("no stage '%s' in:\n%s", desc, out->data);
    return p;
}

static int skipped(const lqa_buf *out, const char *desc) {
    const char *p = stage_line(out, desc), *eol = strchr(p, '\n');
    const char *s = strstr(p, "skipped");
    return s && (!eol || s < eol);
}

static void test_stages_follow_their_settings(void **state) {
    char *dir = lqa_path_join(lqa_test_tmpdir(), "demo");
    lqa_buf out = {0};
    static const char *const stages[] = {"ingest the default corpus", "tokenizer and shards", "base model at ctx",
                                         "LongLoRA to ctx", "evaluate base+PI"};
    demo(dir, "quick", &out);
    for (int i = 0; i < 5; i++) assert_false(skipped(&out, stages[i]));
    demo(dir, "quick", &out);
    for (int i = 0; i < 5; i++) if (!skipped(&out, stages[i])) fail_msg("'%s' not skipped:\n%s", stages[i], out.data);
    /* the full demo: the ingest is kept, every later stage redone, and the x8 stage added */
    demo(dir, "full", &out);
    assert_true(skipped(&out, stages[0]));
    for (int i = 1; i < 5; i++) if (skipped(&out, stages[i])) fail_msg("'%s' skipped after quick:\n%s", stages[i], out.data);
    assert_non_null(strstr(out.data, "tokenizer and shards (redone: made by mode quick)"));
    assert_non_null(strstr(out.data, "(redone: an earlier stage was redone)"));
    assert_non_null(strstr(out.data, "LongLoRA on to ctx 2048"));
    char *rec = lqa_path_join(dir, ".done/base"), *text;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_read_file(rec, &text, &n, &err), 0);
    assert_non_null(strstr(text, "mode full;"));
    assert_non_null(strstr(text, "base steps 2000"));
    free(text);
    /* and the ablation on top of the full demo: the finished stages stay, the new ones run */
    demo(dir, "full ablation", &out);
    for (int i = 0; i < 5; i++) assert_true(skipped(&out, stages[i]));
    assert_false(skipped(&out, "ablation: plain LoRA"));
    free(rec), free(dir);
    lqa_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stages_follow_their_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
