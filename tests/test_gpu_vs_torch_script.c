/* test_gpu_vs_torch_script.c: bench/gpu_vs_torch.sh (lqa-sft vs transformers + PEFT, issue 14)
 * run here up to the point where it needs a GPU: against the emulated lqa-sft ($LQA_BUILD/cuda-emu,
 * `make cuda-emu`) with a stand-in nvidia-smi, at the tiny preset and ctx 64, with Python absent
 * (the torch side skipped with its reason) or replaced by a stand-in that prints the torch side's
 * JSON lines. Checks the Markdown table: the lqa rows measured, llama2-7b and a huge probe context
 * recorded as "does not fit", the longest-context lines, the lqa / torch ratio; and that lqa-sft
 * and the torch side count the same model FLOPs for MFU. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/json.h"
#include "tests/testutil.h"

static char g_sft[600], g_bin[600];

static int setup(void **state) {
    const char *b = getenv("LQA_BUILD");
    snprintf(g_sft, sizeof g_sft, "%s/cuda-emu/lqa-sft", b && *b ? b : "build");
    if (!lqa_path_exists(g_sft)) fail_msg("%s is missing: `make cuda-emu` builds it (make test does)", g_sft);
    /* a GPU as far as the script can tell: nvidia-smi names one */
    snprintf(g_bin, sizeof g_bin, "%s/vs_torch_bin", lqa_test_tmpdir());
    lqa_buf log = {0};
    if (lqa_test_run(&log, "mkdir -p %s", g_bin)) fail_msg("mkdir %s: %s", g_bin, log.data);
    lqa_buf_free(&log);
    char path[700];
    snprintf(path, sizeof path, "%s/nvidia-smi", g_bin);
    const char *smi = "#!/bin/sh\necho 'CPU emulator'\n";
    lqa_test_write(path, smi, strlen(smi));
    if (lqa_test_run(&log, "chmod +x %s", path)) fail_msg("chmod %s", path);
    lqa_buf_free(&log);
    return 0;
}

/* Runs the script with env (assignments) and returns its table (caller frees); the log is printed. */
static char *run_script(const char *env, const char *name) {
    char out[700];
    snprintf(out, sizeof out, "%s/%s.md", lqa_test_tmpdir(), name);
    lqa_buf log = {0};
    int rc = lqa_test_run(&log, "PATH=%s:$PATH SFT=%s MODELS=tiny,llama2-7b CTXS=64 STEPS=1 %s bench/gpu_vs_torch.sh --out %s",
                          g_bin, g_sft, env, out);
    printf("%s", log.data ? log.data : "");
    assert_int_equal(rc, 0);
    lqa_buf_free(&log);
    lqa_err err;
    size_t n;
    char *table = NULL;
    if (lqa_read_file(out, &table, &n, &err)) fail_msg("no table: %s", err.msg);
    return table;
}

/* The table row starting with prefix ("| tiny | 64 | full | lqa | "): its remaining cells. */
static const char *row(const char *table, const char *prefix) {
    const char *r = strstr(table, prefix);
    if (!r) fail_msg("no row '%s' in the table:\n%s", prefix, table);
    return r + strlen(prefix);
}

/* A measured lqa row: tokens/s, step s, peak GiB, MFU all numbers; returns tokens/s. */
static double measured(const char *table, const char *prefix) {
    double tps, step, gib, mfu;
    if (sscanf(row(table, prefix), "%lf | %lf | %lf | %lf%% |", &tps, &step, &gib, &mfu) != 4)
        fail_msg("row '%s' is not measured:\n%s", prefix, table);
    assert_true(tps > 0 && step > 0 && gib > 0 && mfu > 0);
    assert_true(fabs(tps * step - 64) < 0.05 * 64 + 1); /* tokens/s is ctx / step time */
    return tps;
}

static void test_lqa_side_measured_without_python(void **state) {
    double peak = 0.2 + (double)(lqa_test_seed() % 1000) / 1000;
    char env[256];
    snprintf(env, sizeof env, "PYTHON=/nonexistent/python3 PEAK_TFLOPS=%.3f ATTNS=s2 PROBE_CTXS=64,8388608", peak);
    char *t = run_script(env, "no_python");
    assert_non_null(strstr(t, "torch side not measured: /nonexistent/python3 not found"));
    assert_null(strstr(t, "lqa side not measured"));
    char bf[64];
    snprintf(bf, sizeof bf, "bf16 peak (%.3f TFLOP/s)", peak);
    assert_non_null(strstr(t, bf));
    measured(t, "| tiny | 64 | s2 | lqa | ");
    assert_non_null(strstr(row(t, "| llama2-7b | 64 | s2 | lqa | "), "does not fit: the memory plan needs"));
    assert_non_null(strstr(t, "- lqa tiny: 64 fits; 8388608 (does not fit: "));
    /* the probe stops at the first size that does not fit */
    assert_non_null(strstr(t, "- lqa llama2-7b: nothing tried fits; 64 (does not fit: "));
    assert_null(strstr(t, "| torch | "));
    assert_null(strstr(t, "| full | ")); /* ATTNS=s2 */
    free(t);
}

static void test_torch_rows_and_ratio(void **state) {
    /* the torch side as bench/gpu_vs_torch.py prints it (json.dumps: ", " and ": ") */
    double tps = 5 + (double)(lqa_test_seed() % 2000) / 100;
    char py[1024], script[2048];
    snprintf(py, sizeof py, "%s/fake_python", lqa_test_tmpdir());
    snprintf(script, sizeof script,
             "#!/bin/sh\n[ \"$1\" = -c ] && exit 0\n"
             "echo '{\"side\": \"torch\", \"model\": \"'$3'\", \"ctx\": 64, \"attn\": \"full\", \"gpu\": \"CPU emulator\", "
             "\"ok\": true, \"tokens_per_s\": %.2f, \"step_s\": %.3f, \"peak_gib\": 0.5, \"mfu\": null}'\n"
             "echo '{\"side\": \"torch\", \"model\": \"'$3'\", \"ctx\": 64, \"attn\": \"s2\", \"ok\": false, "
             "\"error\": \"skipped: time budget\"}'\n"
             "echo '{\"side\": \"torch\", \"model\": \"'$3'\", \"ctx\": 8388608, \"attn\": \"s2\", \"probe\": true, "
             "\"ok\": false, \"error\": \"out of memory\"}'\n",
             tps, 64 / tps);
    lqa_test_write(py, script, strlen(script));
    lqa_buf log = {0};
    assert_int_equal(lqa_test_run(&log, "chmod +x %s", py), 0);
    lqa_buf_free(&log);
    char env[1200];
    snprintf(env, sizeof env, "PYTHON=%s ATTNS=full PROBE_CTXS=8388608", py);
    char *t = run_script(env, "fake_python");
    assert_null(strstr(t, "not measured"));
    double torch_tps, step, gib;
    assert_int_equal(sscanf(row(t, "| tiny | 64 | full | torch | "), "%lf | %lf | %lf | - |", &torch_tps, &step, &gib), 3);
    assert_true(fabs(torch_tps - tps) <= 0.5 && gib == 0.5);
    assert_non_null(strstr(row(t, "| tiny | 64 | s2 | torch | "), "skipped: time budget"));
    /* no peak known for "CPU emulator": no MFU on either side */
    const char *lqa = row(t, "| tiny | 64 | full | lqa | ");
    double lqa_tps, ratio;
    assert_int_equal(sscanf(lqa, "%lf | %lf | %lf | - | %lfx |", &lqa_tps, &step, &gib, &ratio), 4);
    assert_true(lqa_tps > 0 && fabs(lqa_tps * step - 64) < 0.05 * 64 + 1 && gib > 0);
    assert_true(fabs(ratio - lqa_tps / tps) <= 0.5 / tps + 0.006);
    assert_non_null(strstr(t, "- torch tiny: nothing tried fits; 8388608 (out of memory) does not"));
    assert_non_null(strstr(t, "- torch llama2-7b: nothing tried fits; 8388608 (out of memory) does not"));
    free(t);
}

/* lqa-sft's model FLOPs per token (model/flops.c) and the torch side's (gpu_vs_torch.py) agree;
 * the lqa figure comes from a context that does not fit (nothing allocated, exit 3). */
static void test_both_sides_count_the_same_flops(void **state) {
    lqa_buf out = {0};
    if (lqa_test_run(&out, "command -v python3") != 0) {
        lqa_buf_free(&out);
        skip(); /* the torch side's script needs Python; the rest of the check does not */
    }
    lqa_buf_free(&out);
    int ctx = 8 * (8192 + (int)(lqa_test_seed() % 8192));
    const char *attn[] = {"full", "s2"};
    for (int i = 0; i < 2; i++) {
        int rc = lqa_test_run(&out, "%s bench --device cuda --dtype bf16 --preset tinyllama-1.1b --ctx %d --attn %s "
                              "2>/dev/null", g_sft, ctx, attn[i]);
        assert_int_equal(rc, 3);
        json_t *j = json_loads(out.data, JSON_DISABLE_EOF_CHECK, NULL); /* the stderr line follows */
        if (!j) fail_msg("not a JSON line: %s", out.data);
        assert_true(json_is_false(json_object_get(j, "fits")));
        double lqa = lqa_json_num(j, "model_gflop_per_token", 0);
        json_decref(j);
        lqa_buf_free(&out);
        assert_int_equal(lqa_test_run(&out, "python3 bench/gpu_vs_torch.py --dry-run --model tinyllama-1.1b --ctx %d "
                                      "--attn %s", ctx, attn[i]), 0);
        const char *p = strstr(out.data, "timed steps; ");
        double torch = 0;
        if (!p || sscanf(p, "timed steps; %lf GFLOP/token", &torch) != 1) fail_msg("python dry run: %s", out.data);
        lqa_buf_free(&out);
        printf("ctx %d %s: lqa %.4f, torch %.2f GFLOP/token\n", ctx, attn[i], lqa, torch);
        assert_true(lqa > 1 && fabs(lqa - torch) < 0.006); /* python prints two decimals */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lqa_side_measured_without_python),
                                       cmocka_unit_test(test_torch_rows_and_ratio),
                                       cmocka_unit_test(test_both_sides_count_the_same_flops)};
    return cmocka_run_group_tests(tests, setup, NULL);
}
