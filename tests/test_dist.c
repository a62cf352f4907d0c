/* test_dist.c: data-parallel `lqa-sft train` under `mpirun --oversubscribe` on CPU, on a tiny
 * model with two mixed, packed data sources: 2 ranks give the losses (1e-6 relative) and the
 * adapter (1e-5 of each tensor's largest value) of one process with twice the grad-accum; a 2-rank
 * run resumed from its checkpoint on 1 rank matches the uninterrupted run to the same tolerance,
 * and on 2 ranks repeats it bit for bit; an error on rank 0 alone (a checkpoint it cannot write)
 * ends the job with its message once; a rank killed with SIGKILL ends the job, non-zero, within
 * seconds, and the latest checkpoint still resumes. The host all-reduce (trainer/dist.c) is run
 * by this binary itself as an MPI job (`test_dist --worker SEED [--device]`): the sums equal
 * the rank-ordered float sums bit for bit, on sizes that do not split evenly and on one larger
 * than a reduce round; with --device (scripts/gpu_check.sh, one rank per GPU) through NCCL.
 * Skips, saying why, only where mpirun is absent. */
#include "tests/testutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/progress.h"
#include "common/safetensors.h"
#include "tests/test_train_util.h"
#include "trainer/dist.h"
#ifdef LQA_CUDA
#include "kernels/cuda/device.h"
#endif

static const char *g_dir;
static char *g_tok, *g_model, *g_data, *g_start, *g_mpirun;
static uint64_t g_seed;
enum { VOCAB = 512, CTX = 64, INIT_CTX = 32, GA = 2, STEPS = 6, SAVE = 3 };
#define LR 1e-3

/* ---- the worker: this binary as one rank of an MPI job ---------------------------------------- */

/* Rank `rank`'s element i of an n-float buffer: a hash of (seed, n, rank, i), so any rank can
 * recompute any other's values; magnitudes 1e-3..1e3, so the order of additions shows. */
static float value_of(uint64_t seed, size_t n, int rank, size_t i) {
    static const double scale[8] = {1e-3, 1e-2, 1e-1, 1, 1e1, 1e2, 1e3, 1};
    uint64_t z = seed ^ (n * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)rank << 56) ^ (i * 0xbf58476d1ce4e5b9ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    double u = (double)(z >> 11) * 0x1.0p-53;
    return (float)((u * 2 - 1) * scale[z & 7]);
}

static void fill_rank(float *x, uint64_t seed, size_t n, int rank) {
    for (size_t i = 0; i < n; i++) x[i] = value_of(seed, n, rank, i);
}

/* What the reduce must give: rank 0's value, plus rank 1's, ..., in float, in that order. */
static void rank_ordered_sum(float *want, uint64_t seed, size_t n, int P) {
    fill_rank(want, seed, n, 0);
    for (int k = 1; k < P; k++)
        for (size_t i = 0; i < n; i++) want[i] += value_of(seed, n, k, i);
}

static int worker_fail(const lqa_dist *d, const char *what, size_t n) {
    fprintf(stderr, "worker rank %d/%d: %s (n %zu)\n", d->rank, d->size, what, n);
    return 1;
}

static int worker_host(lqa_dist *d, uint64_t seed, size_t n) {
    float *x = lqa_malloc(sizeof(float) * (n + 1)), *want = lqa_malloc(sizeof(float) * (n + 1));
    fill_rank(x, seed, n, d->rank);
    rank_ordered_sum(want, seed, n, d->size);
    lqa_err err;
    int bad = lqa_dist_allreduce_sum(d, x, n, LQA_DIST_HOST, &err) ? worker_fail(d, err.msg, n) : 0;
    if (!bad && memcmp(x, want, sizeof(float) * n) != 0) bad = worker_fail(d, "host sum differs from the rank-ordered sum", n);
    /* the same buffer as three separate tensors: one bucket, the same sums */
    size_t cut[4] = {0, n / 3, n / 3 + n / 5, n};
    float *parts[3];
    size_t ns[3];
    for (int t = 0; t < 3; t++) {
        ns[t] = cut[t + 1] - cut[t];
        parts[t] = lqa_malloc(sizeof(float) * (ns[t] + 1));
        for (size_t i = 0; i < ns[t]; i++) parts[t][i] = value_of(seed, n, d->rank, cut[t] + i);
    }
    if (!bad && lqa_dist_allreduce_tensors(d, parts, ns, 3, LQA_DIST_HOST, &err)) bad = worker_fail(d, err.msg, n);
    for (int t = 0; t < 3 && !bad; t++)
        if (memcmp(parts[t], want + cut[t], sizeof(float) * ns[t]) != 0) bad = worker_fail(d, "bucketed sum differs", n);
    for (int t = 0; t < 3; t++) free(parts[t]);
#ifdef LQA_CUDA
    if (!bad && d->nccl) {
        /* NCCL adds in its own order: the float sum to within rounding of the sum of magnitudes */
        fill_rank(x, seed, n, d->rank);
        void *dev = lqa_cuda_upload(x, sizeof(float) * n);
        if (lqa_dist_allreduce_sum(d, dev, n, LQA_DIST_DEVICE, &err)) bad = worker_fail(d, err.msg, n);
        lqa_cuda_to_host(x, dev, sizeof(float) * n);
        lqa_cuda_free(dev);
        /* and as three device tensors through the device bucket */
        void *dparts[3];
        float *y = lqa_malloc(sizeof(float) * (n + 1));
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < ns[t]; i++) y[cut[t] + i] = value_of(seed, n, d->rank, cut[t] + i);
            dparts[t] = lqa_cuda_upload(y + cut[t], sizeof(float) * (ns[t] + 1));
        }
        if (!bad && lqa_dist_allreduce_tensors(d, (float *const *)dparts, ns, 3, LQA_DIST_DEVICE, &err))
            bad = worker_fail(d, err.msg, n);
        for (int t = 0; t < 3; t++) {
            lqa_cuda_to_host(y + cut[t], dparts[t], sizeof(float) * ns[t]);
            lqa_cuda_free(dparts[t]);
        }
        for (size_t i = 0; i < n && !bad; i++) {
            double mag = 0;
            for (int k = 0; k < d->size; k++) mag += fabs(value_of(seed, n, k, i));
            if (fabs((double)x[i] - (double)want[i]) > 1e-6 * mag) bad = worker_fail(d, "NCCL sum is off", n);
            if (fabs((double)y[i] - (double)want[i]) > 1e-6 * mag) bad = worker_fail(d, "NCCL bucketed sum is off", n);
        }
        free(y);
    }
#endif
    free(x);
    free(want);
    return bad;
}

/* lqa_dist_agree: a failure on the last rank reaches every rank, with its message once. */
static int worker_agree(lqa_dist *d) {
    lqa_err err = {{0}};
    int last = d->rank == d->size - 1, bad = 0;
    int rc = last ? lqa_err_set(&err, "worker failure on the last rank") : 0;
    if (lqa_dist_agree(d, rc, 7, &err) != -1) bad = worker_fail(d, "agree did not fail", 0);
    if (!last && (!strstr(err.msg, "worker failure on the last rank") || !d->quiet_error))
        bad = worker_fail(d, "the other ranks did not get the failing rank's message", 0);
    if (last && d->quiet_error) bad = worker_fail(d, "the failing rank was told to stay quiet", 0);
    d->failed = d->quiet_error = 0; /* go on testing with the same job */
    if (lqa_dist_agree(d, 0, d->rank, &err) != -1 || !strstr(err.msg, "disagree"))
        bad = worker_fail(d, "ranks at different steps were not refused", 0);
    d->failed = d->quiet_error = 0;
    if (lqa_dist_agree(d, 0, 9, &err) != 0) bad = worker_fail(d, "agreement refused", 0);
    double mine[2] = {d->rank, 2.5 * d->rank}, all[64];
    lqa_dist_allgather(d, mine, 2, all);
    for (int k = 0; k < d->size && k < 32; k++)
        if (all[2 * k] != k || all[2 * k + 1] != 2.5 * k) bad = worker_fail(d, "allgather", 0);
    return bad;
}

static int worker(int argc, char **argv) {
    uint64_t seed = strtoull(argv[2], NULL, 10);
    int device = argc > 3 && !strcmp(argv[3], "--device");
    lqa_dist d;
    lqa_err err;
    if (lqa_dist_init(&d, &err)) {
        fprintf(stderr, "worker: %s\n", err.msg);
        return 1;
    }
    int bad = 0;
    if (device && lqa_dist_use_gpu(&d, &err)) bad = worker_fail(&d, err.msg, 0);
    size_t sizes[] = {1, 2, 7, 1000, 65537, ((size_t)1 << 24) + 5};
    int n_sizes = d.size == 2 ? 6 : 5; /* the size past one reduce round with 2 ranks only (memory) */
    for (int i = 0; i < n_sizes && !bad; i++) bad = worker_host(&d, seed, sizes[i]);
    if (!bad && d.size > 1) bad = worker_agree(&d);
    if (!bad && d.rank == 0)
        printf("worker: %d ranks, %s%s: all-reduce sums in rank order, agreement, gather ok\n", d.size,
               lqa_dist_engine(), d.nccl ? ", NCCL device reduce checked" : "");
    lqa_dist_end(&d, bad);
    return bad;
}

/* ---- the tests ------------------------------------------------------------------------------- */

static int setup(void **state) {
    g_seed = lqa_test_seed();
    g_dir = lqa_test_tmpdir();
    uint8_t sha[32];
    fixture_tiny_model(g_dir, g_seed, VOCAB, INIT_CTX, &g_tok, &g_model, sha);
    char *lm = lqa_path_join(g_dir, "lm"), *sft = lqa_path_join(g_dir, "sft");
    fixture_shards_kind(lm, sha, VOCAB, 11, CTX, g_seed + 1, LQA_KIND_LM);
    /* shorter than ctx: --pack puts several into a row and puts back the one that does not fit */
    fixture_shards_kind(sft, sha, VOCAB, 13, CTX / 3 + 1, g_seed + 2, LQA_KIND_SFT);
    size_t n = strlen(lm) + strlen(sft) + 2;
    g_data = lqa_malloc(n);
    snprintf(g_data, n, "%s,%s", lm, sft);
    free(lm);
    free(sft);
    /* the runs start from a trained adapter: with LoRA B at zero, B's largest value would be a
     * few steps of lr, the scale of Adam's own rounding noise (see assert_close_runs) */
    char cmd[4096];
    char *warm = lqa_path_join(g_dir, "warm");
    snprintf(cmd, sizeof cmd, "%s train --model %s --data %s --out %s --ctx %d --micro-batch 2 --grad-accum 2 --threads 1 "
             "--warmup 1 --lr 1e-2 --steps 4 --pack --seed %llu", lqa_test_tool("lqa-sft"), g_model, g_data, warm, CTX,
             (unsigned long long)g_seed + 5);
    run_expect(0, NULL, cmd);
    g_start = lqa_path_join(warm, "final");
    free(warm);
    lqa_buf out = {0};
    if (lqa_test_run(&out, "command -v mpirun") == 0) {
        /* Open MPI refuses root without both variables; they change nothing for other users.
         * Under ASan (make test SAN=1) Open MPI's own allocations at MPI_Init outlive
         * MPI_Finalize: full stacks (slow unwind, components kept loaded) let LeakSanitizer
         * tell them apart (tests/fixtures/lsan_mpi.supp); without ASan these do nothing. */
        const char *asan = getenv("ASAN_OPTIONS");
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                 "ASAN_OPTIONS='%s%sfast_unwind_on_malloc=0' LSAN_OPTIONS='suppressions=%s/lsan_mpi.supp' "
                 "OMPI_MCA_mca_base_component_disable_dlclose=1 mpirun --oversubscribe --bind-to none",
                 asan ? asan : "", asan && *asan ? ":" : "", lqa_test_fixtures());
        g_mpirun = lqa_strdup(cmd);
    }
    lqa_buf_free(&out);
    return 0;
}

static int teardown(void **state) {
    free(g_tok);
    free(g_model);
    free(g_data);
    free(g_start);
    free(g_mpirun);
    return 0;
}

/* mpirun must be there (else the test skips with the reason), and lqa-sft must use it. */
static void need_mpirun(void) {
    if (!g_mpirun) {
        printf("skipped: mpirun not found (make deps installs openmpi-bin and libopenmpi-dev)\n");
        skip();
    }
    if (!lqa_dist_built_with_mpi()) fail_msg("mpirun is here but lqa-sft was built without mpicc: make deps, then rebuild");
}

/* The train command for `ranks` ranks (0: no launcher) with grad-accum ga, into g_dir/name. */
static char *train_cmd(char *cmd, size_t cmdsz, const char *name, int ranks, int ga, const char *extra) {
    char *run = lqa_path_join(g_dir, name);
    char launcher[512] = "";
    if (ranks > 0) snprintf(launcher, sizeof launcher, "%s -np %d ", g_mpirun, ranks);
    snprintf(cmd, cmdsz,
             "%s%s train --model %s --data %s --out %s --ctx %d --micro-batch 2 --grad-accum %d --threads 1 "
             "--warmup 2 --lr %g --pack --log-every 1 --seed %llu --adapter %s %s",
             launcher, lqa_test_tool("lqa-sft"), g_model, g_data, run, CTX, ga, LR, (unsigned long long)g_seed, g_start, extra);
    return run;
}

static char *train(const char *name, int ranks, int ga, const char *extra, int want_rc, lqa_buf *out) {
    char cmd[8192];
    char *run = train_cmd(cmd, sizeof cmd, name, ranks, ga, extra);
    run_expect(want_rc, out, cmd);
    return run;
}

/* Steps from..to of two metrics files: losses and grad norms within rel (0: identical). */
static void assert_close_steps(const char *run_a, const char *run_b, int from, int to, double rel) {
    json_t *a = fixture_metrics(run_a), *b = fixture_metrics(run_b);
    assert_int_equal(json_array_size(a), to);
    assert_int_equal(json_array_size(b), to);
    for (int s = from; s <= to; s++) {
        json_t *x = json_array_get(a, (size_t)s - 1), *y = json_array_get(b, (size_t)s - 1);
        assert_int_equal(lqa_json_int(x, "step", -1), s);
        assert_int_equal(lqa_json_int(y, "step", -1), s);
        /* the same examples: tokens and the rows each source gave */
        assert_int_equal(lqa_json_int(x, "tokens", -1), lqa_json_int(y, "tokens", -2));
        assert_true(json_equal(json_object_get(x, "rows_per_source"), json_object_get(y, "rows_per_source")));
        static const char *const keys[] = {"loss", "grad_norm"};
        for (int k = 0; k < 2; k++) {
            double u = lqa_json_num(x, keys[k], NAN), v = lqa_json_num(y, keys[k], NAN);
            if (!(fabs(u - v) <= rel * fabs(u)))
                fail_msg("step %d: %s %.9g (%s) vs %.9g (%s), more than %g relative apart", s, keys[k], u, run_a, v,
                         run_b, rel);
        }
    }
    json_decref(a);
    json_decref(b);
}

/* Every tensor of final/FILE in both runs: |a - b| <= tol * max |a| (0: identical bytes), but for
 * up to `outliers` (a fraction) of each tensor's elements, which must be within `bound`. */
static void assert_close_tensors(const char *run_a, const char *run_b, const char *file, double tol, double outliers,
                                 double bound) {
    char name[64];
    snprintf(name, sizeof name, "final/%s", file);
    char *pa = lqa_path_join(run_a, name), *pb = lqa_path_join(run_b, name);
    if (tol == 0) {
        assert_same_file(pa, pb);
    } else {
        lqa_st_reader ra, rb;
        lqa_err err;
        if (lqa_st_open(&ra, pa, &err) || lqa_st_open(&rb, pb, &err)) fail_msg("%s", err.msg);
        assert_int_equal(ra.n_tensors, rb.n_tensors);
        for (int i = 0; i < ra.n_tensors; i++) {
            const lqa_st_tensor *ta = &ra.tensors[i], *tb = lqa_st_find(&rb, ta->name);
            assert_non_null(tb);
            assert_int_equal(ta->numel, tb->numel);
            float *x = lqa_malloc(sizeof(float) * ta->numel), *y = lqa_malloc(sizeof(float) * ta->numel);
            lqa_st_to_f32(ta, x);
            lqa_st_to_f32(tb, y);
            double big = 0, diff = 0;
            size_t over = 0;
            for (size_t k = 0; k < ta->numel; k++) big = fmax(big, fabs(x[k]));
            assert_true(big > 0);
            for (size_t k = 0; k < ta->numel; k++) {
                double dk = fabs((double)x[k] - y[k]);
                diff = fmax(diff, dk);
                over += dk > tol * big;
            }
            /* the outlier allowance is for lora+'s embedding and norms, never the LoRA tensors */
            int lora = strstr(ta->name, ".lora_") != NULL;
            if ((double)over > (lora ? 0 : outliers) * (double)ta->numel || diff > fmax(tol * big, lora ? 0 : bound))
                fail_msg("%s %s: %zu of %zu elements differ by more than %g x max %g (largest difference %g)", file,
                         ta->name, over, ta->numel, tol, big, diff);
            free(x);
            free(y);
        }
        lqa_st_close(&ra);
        lqa_st_close(&rb);
    }
    free(pa);
    free(pb);
}

/* Steps from.. of two runs within rel, the LoRA tensors within tol of each tensor's largest value
 * (0: identical bytes), lora+'s embedding and norms the same but for a few elements. Why those:
 * N ranks add the micro-batch gradients in another order than one process (partial sums per
 * rank), a rounding-level change; Adam divides by sqrt(v) + eps, so where an embedding row's
 * gradient nearly cancels (|g| ~ eps) or m changes sign, that change moves the element by a
 * visible part of lr (measured: 1 element of 33k at 6e-5 of the tensor's largest value, seeds
 * 15-28). Those must stay under 1 in 1000 elements and within lr per step. */
static void assert_close_runs(const char *a, const char *b, int from, double rel, double tol) {
    assert_close_steps(a, b, from, STEPS, rel);
    /* the adapter holds LoRA A/B and, as PEFT modules_to_save, the embedding and norms */
    assert_close_tensors(a, b, "adapter_model.safetensors", tol, tol > 0 ? 1e-3 : 0, tol > 0 ? LR * STEPS : 0);
}

static void test_launcher_size_from_env(void **state) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS",
                                       "SLURM_NTASKS"};
    char *saved[5];
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? lqa_strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    assert_int_equal(lqa_dist_launcher_size(), 1);
    for (int i = 0; i < 5; i++) {
        int n = 2 + (int)(g_seed % 50) + i;
        char v[16];
        snprintf(v, sizeof v, "%d", n);
        setenv(vars[i], v, 1);
        assert_int_equal(lqa_dist_launcher_size(), n);
        unsetenv(vars[i]);
    }
    /* a Slurm batch script (SLURM_NTASKS alone, no srun step): one process, no MPI */
    setenv("SLURM_NTASKS", "4", 1);
    lqa_dist d;
    lqa_err err;
    assert_int_equal(lqa_dist_init(&d, &err), 0);
    assert_int_equal(d.size, 1);
    assert_int_equal(d.mpi, 0);
    lqa_dist_end(&d, 0);
    unsetenv("SLURM_NTASKS");
    for (int i = 0; i < 5; i++)
        if (saved[i]) {
            setenv(vars[i], saved[i], 1);
            free(saved[i]);
        }
    /* a NULL dist is the single process */
    assert_int_equal(lqa_dist_size(NULL), 1);
    assert_int_equal(lqa_dist_rank(NULL), 0);
    assert_int_equal(lqa_dist_agree(NULL, 0, 3, &err), 0);
    assert_int_equal(lqa_dist_agree(NULL, -1, 3, &err), -1);
}

static void test_allreduce_in_rank_order(void **state) {
    need_mpirun();
    lqa_buf out = {0};
    char cmd[4096];
    for (int np = 2; np <= 3; np++) {
        snprintf(cmd, sizeof cmd, "%s -np %d %s --worker %llu", g_mpirun, np, lqa_test_tool("tests/test_dist"),
                 (unsigned long long)g_seed);
        run_expect(0, &out, cmd);
        assert_non_null(strstr(out.data, "all-reduce sums in rank order"));
    }
    lqa_buf_free(&out);
}

/* The uninterrupted 2-rank run (made once, shared by the tests below). */
static char *g_two;

static const char *two_rank_run(void) {
    if (!g_two) {
        char extra[128];
        snprintf(extra, sizeof extra, "--steps %d --save-every %d --keep-checkpoints 0", STEPS, SAVE);
        lqa_buf out = {0};
        g_two = train("two", 2, GA, extra, 0, &out);
        lqa_buf_free(&out);
    }
    return g_two;
}

static void test_two_ranks_match_one_process(void **state) {
    need_mpirun();
    char extra[128];
    snprintf(extra, sizeof extra, "--steps %d --save-every %d", STEPS, SAVE);
    lqa_buf out = {0};
    char *one = train("one", 0, 2 * GA, extra, 0, &out);
    const char *two = two_rank_run();
    assert_close_runs(one, two, 1, 1e-6, 1e-5);
    /* the global batch and each rank's times are recorded */
    json_t *cfg = load_json(two, "config.json"), *derived = json_object_get(cfg, "derived");
    assert_int_equal(lqa_json_int(derived, "ranks", -1), 2);
    assert_int_equal(lqa_json_int(derived, "global_batch", -1), 2 * GA * 2);
    json_decref(cfg);
    json_t *m = fixture_metrics(two), *line = json_array_get(m, 0);
    assert_int_equal(lqa_json_int(line, "ranks", -1), 2);
    assert_int_equal(json_array_size(json_object_get(line, "data_s")), 2);
    assert_int_equal(json_array_size(json_object_get(line, "reduce_s")), 2);
    assert_non_null(json_object_get(line, "rows_per_source"));
    json_decref(m);
    /* one process's metrics stay as they were */
    m = fixture_metrics(one);
    assert_null(json_object_get(json_array_get(m, 0), "ranks"));
    json_decref(m);
    free(one);
    lqa_buf_free(&out);
}

/* A copy of the 2-rank run rolled back to its mid-run checkpoint (as if killed after it). */
static char *rolled_back_copy(const char *name) {
    char *dst = lqa_path_join(g_dir, name);
    lqa_buf out = {0};
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm -rf %s/final", dst, two_rank_run(), dst, dst);
    run_expect(0, &out, cmd);
    char *latest = lqa_path_join(dst, "checkpoints/latest");
    char ck[32];
    snprintf(ck, sizeof ck, "step-%08d", SAVE);
    lqa_err err;
    assert_int_equal(lqa_write_file_atomic(latest, ck, strlen(ck), &err), 0);
    free(latest);
    lqa_buf_free(&out);
    return dst;
}

static void test_resume_on_other_rank_counts(void **state) {
    need_mpirun();
    const char *two = two_rank_run();
    char extra[128];
    snprintf(extra, sizeof extra, "--steps %d --save-every %d --resume", STEPS, SAVE);
    lqa_buf out = {0};
    /* on one rank: grad-accum x ranks must stay 2 x GA; else refused, saying so */
    char *r1 = rolled_back_copy("resume1");
    free(train("resume1", 0, GA, extra, 1, &out));
    assert_non_null(strstr(out.data, "grad_accum"));
    free(train("resume1", 0, 2 * GA, extra, 0, &out));
    assert_non_null(strstr(out.data, "resuming from"));
    assert_close_runs(two, r1, SAVE + 1, 1e-6, 1e-5);
    /* on two ranks: the same sums in the same order, so the same bits; a refusal on every rank
     * is said once, by rank 0, and the job exits 1 */
    char *r2 = rolled_back_copy("resume2");
    free(train("resume2", 2, 2 * GA, extra, 1, &out));
    const char *first = strstr(out.data, "micro-batches per step");
    assert_non_null(first);
    assert_null(strstr(first + 1, "micro-batches per step"));
    assert_non_null(strstr(out.data, "rank 0/2: error"));
    free(train("resume2", 2, GA, extra, 0, &out));
    assert_close_runs(two, r2, SAVE + 1, 0, 0);
    free(r1);
    free(r2);
    lqa_buf_free(&out);
}

static double now_s(void);

/* An error on rank 0 alone (its checkpoint cannot be written: the temp file's place is taken by
 * a directory) reaches rank 1 at the agreement after the write: the job ends, exit 1, with rank
 * 0's message once, rather than rank 1 waiting for a step that never comes. */
static void test_one_rank_error_stops_all(void **state) {
    need_mpirun();
    char *run = lqa_path_join(g_dir, "oneerr");
    /* a file where rank 0's step-2 checkpoint folder must go: the atomic folder write refuses it */
    char *blocker = lqa_path_join(run, "checkpoints/step-00000002");
    lqa_test_write(blocker, "not a folder", 12);
    char cmd[8192];
    free(train_cmd(cmd, sizeof cmd, "oneerr", 2, GA, "--steps 4 --save-every 2"));
    char timed[8300];
    snprintf(timed, sizeof timed, "timeout 120 %s", cmd);
    lqa_buf out = {0};
    double t0 = now_s();
    run_expect(1, &out, timed);
    printf("rank 0's write failed: the job ended after %.1f s\n", now_s() - t0);
    const char *first = strstr(out.data, "rank 0/2: error");
    assert_non_null(first);
    const char *again = strstr(strstr(first, "error:") + 1, "error:");
    if (again) fail_msg("a second error message: %.200s", again);
    assert_non_null(strstr(first, "step-00000002"));
    lqa_buf_free(&out);
    free(blocker);
    free(run);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The pid the rank's banner gives ("rank R/N (local ...) pid P on ..."), or 0. */
static pid_t rank_pid(const char *log, int rank) {
    char key[32];
    snprintf(key, sizeof key, "rank %d/2 (local", rank);
    const char *p = log ? strstr(log, key) : NULL;
    p = p ? strstr(p, " pid ") : NULL;
    return p ? (pid_t)atol(p + 5) : 0;
}

static char *read_text(const char *path) {
    char *text = NULL;
    size_t n;
    lqa_err err;
    return lqa_read_file(path, &text, &n, &err) ? NULL : text;
}

static void test_killed_rank_ends_job(void **state) {
    need_mpirun();
    char cmd[8192], *log = lqa_path_join(g_dir, "killed.log");
    char *run = train_cmd(cmd, sizeof cmd, "killed", 2, GA, "--steps 100000 --save-every 1 --keep-checkpoints 2");
    char shell[8400];
    snprintf(shell, sizeof shell, "exec %s >%s 2>&1", cmd, log);
    pid_t job = fork();
    assert_true(job >= 0);
    if (job == 0) {
        setpgid(0, 0); /* its own group: the test can end all of it if something goes wrong */
        execl("/bin/sh", "sh", "-c", shell, (char *)NULL);
        _exit(127);
    }
    setpgid(job, job);
    /* wait for rank 1's pid and a few checkpoints */
    char *latest = lqa_path_join(run, "checkpoints/latest");
    pid_t victim = 0;
    int status = 0;
    for (double t0 = now_s(); now_s() - t0 < 120;) {
        char *text = read_text(log), *ck = read_text(latest);
        victim = rank_pid(text, 1);
        int step = ck ? atoi(ck + 5) : 0;
        free(text);
        free(ck);
        if (victim > 0 && step >= 3) break;
        if (waitpid(job, &status, WNOHANG) == job) fail_msg("the job ended before the kill: %s", read_text(log));
        usleep(20000);
    }
    if (victim <= 0) {
        kill(-job, SIGKILL);
        fail_msg("no checkpoint or no rank 1 pid after 120 s: %s", read_text(log));
    }
    double t_kill = now_s();
    assert_int_equal(kill(victim, SIGKILL), 0);
    pid_t got = 0;
    while (now_s() - t_kill < 60 && (got = waitpid(job, &status, WNOHANG)) == 0) usleep(20000);
    double took = now_s() - t_kill;
    if (got != job) {
        kill(-job, SIGKILL);
        waitpid(job, &status, 0);
        fail_msg("the job still ran 60 s after rank 1 was killed");
    }
    char *text = read_text(log);
    printf("rank 1 killed: the job ended %.2f s later with status %d\n", took,
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (took > 15) fail_msg("the job took %.1f s to end after the kill", took);
    assert_true(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
    assert_non_null(strstr(text, "signal 9")); /* mpirun names the rank and the signal */
    /* the latest checkpoint is complete: one process resumes from it and finishes */
    char *ck = read_text(latest);
    assert_non_null(ck);
    int step = atoi(ck + 5);
    assert_null(strstr(ck, "tmp"));
    char extra[160];
    snprintf(extra, sizeof extra, "--steps %d --save-every 1 --keep-checkpoints 2 --resume", step + 1);
    lqa_buf out = {0};
    free(train("killed", 0, 2 * GA, extra, 0, &out));
    assert_non_null(strstr(out.data, "resuming from"));
    json_t *m = fixture_metrics(run);
    assert_int_equal(json_array_size(m), step + 1);
    json_decref(m);
    lqa_buf_free(&out);
    free(ck);
    free(text);
    free(latest);
    free(run);
    free(log);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--worker")) return worker(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_launcher_size_from_env),
        cmocka_unit_test(test_allreduce_in_rank_order),
        cmocka_unit_test(test_two_ranks_match_one_process),
        cmocka_unit_test(test_resume_on_other_rank_counts),
        cmocka_unit_test(test_one_rank_error_stops_all),
        cmocka_unit_test(test_killed_rank_ends_job),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    free(g_two);
    return rc;
}
