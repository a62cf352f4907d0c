/* test_gpu_train_script.c: bench/gpu_train.sh, the part of scripts/gpu_check.sh that runs the
 * tools on a GPU, run here end to end against the emulated tools ($LQA_BUILD/cuda-emu, `make
 * cuda-emu`) on a tiny model, so the script a lent GPU machine runs once is known to work: its
 * data preparation, the CPU-vs-device loss comparison, the training run, both benchmarks and
 * the table it prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "tests/testutil.h"

static void test_script_runs_on_emulated_device(void **state) {
    const char *b = getenv("LQA_BUILD");
    char emu[512], out[600];
    snprintf(emu, sizeof emu, "%s/cuda-emu", b && *b ? b : "build");
    char *sft = lqa_path_join(emu, "lqa-sft"), *ev = lqa_path_join(emu, "lqa-eval");
    if (!lqa_path_exists(sft) || !lqa_path_exists(ev)) fail_msg("%s is missing: `make cuda-emu` builds it (make test does)", sft);
    snprintf(out, sizeof out, "%s/gpu_train", lqa_test_tmpdir());
    lqa_buf log = {0};
    int rc = lqa_test_run(&log,
                          "SFT=%s EVAL=%s BUILD=%s PRESET=tiny CTXS=128 TRAIN_CTX=256 STEPS=3 CMP_STEPS=2 "
                          "OUT_DIR=%s bench/gpu_train.sh",
                          sft, ev, b && *b ? b : "build", out);
    printf("%s", log.data ? log.data : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log.data, "- CPU vs cuda, 2 steps at ctx 256: ok: 2 steps"));
    assert_non_null(strstr(log.data, "- 3-step LongLoRA run at ctx 256: ok: loss "));
    assert_non_null(strstr(log.data, "| train | 128 | s2 | "));
    assert_non_null(strstr(log.data, "| train | 128 | full | "));
    assert_non_null(strstr(log.data, "| prefill / decode | 128 | full | "));
    assert_null(strstr(log.data, "failed"));
    lqa_buf_free(&log);
    free(sft);
    free(ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_script_runs_on_emulated_device)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
