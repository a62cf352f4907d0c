/* dist.c: data-parallel ranks over MPI, NCCL for device buffers (see dist.h). Compiled with
 * LQA_MPI and LQA_NCCL from mk/mpi.mk; without them only the single-process case remains. */
#include "trainer/dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/progress.h"

#ifdef LQA_MPI
#include <mpi.h>
#endif
#ifdef LQA_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

enum { AGREE_MSG = sizeof(((lqa_err *)0)->msg) };

/* ---- checks (the common/check.h family for MPI and NCCL: fatal, file:line, the library's words) */

#ifdef LQA_MPI
static void mpi_check_at(int rc, const char *what, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    lqa_fatal_at(file, line, "%s: %s", what, s);
}
#define mpiCheck(call) mpi_check_at((call), #call, __FILE__, __LINE__)
#endif

#ifdef LQA_NCCL
static void nccl_check_at(ncclResult_t rc, const char *what, const char *file, int line) {
    if (rc != ncclSuccess) lqa_fatal_at(file, line, "%s: NCCL %s", what, ncclGetErrorString(rc));
}
#define ncclCheck(call) nccl_check_at((call), #call, __FILE__, __LINE__)
static void cuda_check_at(cudaError_t rc, const char *what, const char *file, int line) {
    if (rc != cudaSuccess) lqa_fatal_at(file, line, "%s: CUDA %s", what, cudaGetErrorString(rc));
}
#define cudaCheck(call) cuda_check_at((call), #call, __FILE__, __LINE__)
#endif

/* ---- what was built, what the launcher asked for --------------------------------------------- */

int lqa_dist_built_with_mpi(void) {
#ifdef LQA_MPI
    return 1;
#else
    return 0;
#endif
}

int lqa_dist_built_with_nccl(void) {
#ifdef LQA_NCCL
    return 1;
#else
    return 0;
#endif
}

const char *lqa_dist_engine(void) {
#if defined(LQA_MPI)
    static char s[MPI_MAX_LIBRARY_VERSION_STRING + 32];
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (MPI_Get_library_version(v, &n) != MPI_SUCCESS) snprintf(v, sizeof v, "?");
    v[strcspn(v, ",\n")] = '\0'; /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
#if defined(LQA_NCCL)
    snprintf(s, sizeof s, "MPI (%s) + NCCL %d.%d.%d", v, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
#else
    snprintf(s, sizeof s, "MPI (%s)", v);
#endif
    return s;
#else
    return "none (built without mpicc)";
#endif
}

static int env_int(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

int lqa_dist_launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS",
                                       "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        int n = env_int(vars[i]);
        if (n > 0) return n;
    }
    return 1;
}

/* ---- joining and leaving ------------------------------------------------------------------- */

/* Only the allocation's SLURM_NTASKS says "several": a Slurm batch script itself, not a task of
 * srun (which sets SLURM_STEP_NUM_TASKS) nor of mpirun. */
static int batch_script_only(void) {
    return !getenv("SLURM_STEP_NUM_TASKS") && !getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") &&
           !getenv("PMIX_SIZE");
}


#ifdef LQA_MPI
static char g_term_msg[256];
static size_t g_term_len;

/* mpirun and srun send SIGTERM to every rank when one fails or the job is cancelled: say so
 * (write(2) only, async-signal-safe) rather than vanish without a word. */
static void on_sigterm(int sig) {
    ssize_t w = write(STDERR_FILENO, g_term_msg, g_term_len);
    (void)w;
    _exit(128 + sig);
}

static void install_sigterm(const lqa_dist *d) {
    snprintf(g_term_msg, sizeof g_term_msg,
             "lqa-sft rank %d/%d: stopped by SIGTERM from the launcher (it ends every rank when one fails or the "
             "job is cancelled; its own message names the rank)\n", d->rank, d->size);
    g_term_len = strlen(g_term_msg);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    lqaCheck(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction(SIGTERM) failed");
}

static int mpi_join(lqa_dist *d, int asked, lqa_err *err) {
    int provided = 0;
    mpiCheck(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    d->mpi = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
    MPI_Comm node;
    mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node));
    mpiCheck(MPI_Comm_rank(node, &d->local_rank));
    mpiCheck(MPI_Comm_size(node, &d->local_size));
    mpiCheck(MPI_Comm_free(&node));
    if (d->size == 1 && asked > 1)
        return lqa_err_set(err, "the launcher started %d tasks but MPI sees each as a job of 1 (every task would "
                           "train alone into the same --out); under srun give --mpi=pmix (srun --mpi=list shows what "
                           "the cluster offers), or launch with mpirun", asked);
    if (d->size > 1) install_sigterm(d);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    log_info("rank %d/%d (local %d/%d) pid %d on %s, %s", d->rank, d->size, d->local_rank, d->local_size,
             (int)getpid(), host, lqa_dist_engine());
    /* rank 0 speaks for the job; the others only warn and fail (LQA_LOG=info shows all) */
    if (d->rank != 0 && !getenv("LQA_LOG")) lqa_log_set_level(LQA_LOG_WARN);
    return 0;
}
#endif

int lqa_dist_init(lqa_dist *d, lqa_err *err) {
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    d->gpu = -1;
    int asked = lqa_dist_launcher_size();
    if (asked <= 1) return 0;
    if (batch_script_only()) {
        log_warn("SLURM_NTASKS=%d, but this process was not started by srun or mpirun: it trains alone, as one "
                 "process (launch with srun --mpi=pmix or mpirun for data parallelism)", asked);
        return 0;
    }
#ifdef LQA_MPI
    return mpi_join(d, asked, err);
#else
    log_warn("started as one of %d ranks, but this lqa-sft was built without MPI (no mpicc at build time): it "
             "trains alone, as one process; install libopenmpi-dev (make deps) and rebuild for data parallelism",
             asked);
    return 0;
#endif
}

void lqa_dist_end(lqa_dist *d, int rc) {
#ifdef LQA_NCCL
    if (d->nccl) ncclCheck(ncclCommDestroy((ncclComm_t)d->nccl));
    if (d->dev_bucket) cudaCheck(cudaFree(d->dev_bucket));
#endif
    free(d->bucket);
    free(d->scratch);
#ifdef LQA_MPI
    if (d->mpi) {
        if (rc && !d->failed && d->size > 1) {
            fprintf(stderr, "lqa-sft rank %d/%d: ending the job (MPI_Abort) so the other ranks do not wait\n",
                    d->rank, d->size);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        mpiCheck(MPI_Finalize());
    }
#endif
    d->bucket = d->scratch = d->dev_bucket = NULL;
    d->nccl = NULL;
    d->mpi = 0;
}

/* ---- GPUs ------------------------------------------------------------------------------------ */

int lqa_dist_use_gpu(lqa_dist *d, lqa_err *err) {
#ifdef LQA_NCCL
    int n = 0, rc = 0;
    cudaError_t ce = cudaGetDeviceCount(&n);
    if (ce != cudaSuccess || n == 0) {
        rc = lqa_err_set(err, "--device cuda: no GPU visible to rank %d (%s)", d->rank,
                         ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
    } else {
        d->gpu = d->local_rank % n;
        if (d->local_size > n)
            log_warn("rank %d: %d ranks on this node share %d GPUs (one rank per GPU is the intended layout)",
                     d->rank, d->local_size, n);
        cudaCheck(cudaSetDevice(d->gpu));
    }
    /* every rank has its GPU before NCCL's collective set-up */
    if (lqa_dist_agree(d, rc, -1, err)) return -1;
    if (!d->nccl) {
        /* with one rank too: a communicator of 1, so a one-GPU machine still checks the NCCL path */
        ncclUniqueId id;
        if (d->rank == 0) ncclCheck(ncclGetUniqueId(&id));
        if (d->size > 1) mpiCheck(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
        ncclComm_t comm;
        ncclCheck(ncclCommInitRank(&comm, d->size, id, d->rank));
        d->nccl = comm;
        log_info("NCCL %d.%d.%d: %d ranks, rank 0 on GPU %d", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, d->size, d->gpu);
    }
    return 0;
#else
    if (d->size <= 1) return 0; /* one process: the CUDA backend uses its default device */
    return lqa_err_set(err, "--device cuda with %d ranks needs NCCL: this lqa-sft was built without %s", d->size,
                       lqa_dist_built_with_mpi() ? "nvcc and NCCL's nccl.h" : "mpicc");
#endif
}

/* ---- all-reduce ------------------------------------------------------------------------------ */

#ifdef LQA_MPI
/* Floats per round of the host reduce: bounds the scratch buffer (64 MiB) and keeps MPI's int
 * counts far from overflow whatever the model. */
#define HOST_ROUND ((size_t)1 << 24)

/* Chunk k of m floats split over P ranks: [m*k/P, m*(k+1)/P). */
static int chunk_at(size_t m, int P, int k) {
    return (int)(m * (size_t)k / (size_t)P);
}

/* One round: rank k owns chunk k. Every rank sends each owner its copy of the owner's chunk
 * (MPI_Alltoallv), the owner adds the P copies in rank order 0..P-1, then every rank gathers the
 * summed chunks (MPI_Allgatherv). The same traffic as a ring all-reduce, 2 (P-1)/P of the
 * buffer per rank, and an order of additions that nothing but P decides. */
static void reduce_round(lqa_dist *d, float *x, size_t m, int *cnt, int *dsp, int *rcnt, int *rdsp) {
    int P = d->size, me = d->rank;
    for (int k = 0; k < P; k++) {
        dsp[k] = chunk_at(m, P, k);
        cnt[k] = chunk_at(m, P, k + 1) - dsp[k];
    }
    int mine = cnt[me];
    for (int k = 0; k < P; k++) {
        rcnt[k] = mine;
        rdsp[k] = k * mine;
    }
    mpiCheck(MPI_Alltoallv(x, cnt, dsp, MPI_FLOAT, d->scratch, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD));
    float *acc = x + dsp[me];
    memcpy(acc, d->scratch, sizeof(float) * (size_t)mine);
    for (int k = 1; k < P; k++) {
        const float *part = d->scratch + (size_t)k * (size_t)mine;
        for (int i = 0; i < mine; i++) acc[i] += part[i];
    }
    mpiCheck(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD));
}

static void reduce_host(lqa_dist *d, float *buf, size_t n) {
    size_t round = n < HOST_ROUND ? n : HOST_ROUND;
    size_t need = round / (size_t)d->size + 1;
    need *= (size_t)d->size;
    if (d->scratch_n < need) {
        free(d->scratch);
        d->scratch = lqa_malloc(sizeof(float) * need);
        d->scratch_n = need;
    }
    int *ints = lqa_malloc(sizeof(int) * 4 * (size_t)d->size);
    for (size_t off = 0; off < n; off += HOST_ROUND) {
        size_t m = n - off < HOST_ROUND ? n - off : HOST_ROUND;
        reduce_round(d, buf + off, m, ints, ints + d->size, ints + 2 * d->size, ints + 3 * d->size);
    }
    free(ints);
}
#endif

/* One rank has nothing to reduce; a device buffer still goes through NCCL when a communicator
 * exists (the GPU check on a one-GPU machine), the training loop never calls with one rank. */
static int nothing_to_do(const lqa_dist *d, lqa_dist_mem mem) {
    return d->size <= 1 && !(mem == LQA_DIST_DEVICE && d->nccl);
}

int lqa_dist_allreduce_sum(lqa_dist *d, float *buf, size_t n, lqa_dist_mem mem, lqa_err *err) {
    d->reduce_s = 0;
    if (nothing_to_do(d, mem) || n == 0) return 0;
    double t0 = lqa_now();
    if (mem == LQA_DIST_DEVICE) {
#ifdef LQA_NCCL
        if (!d->nccl) return lqa_err_set(err, "all-reduce of a device buffer before lqa_dist_use_gpu");
        ncclCheck(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, (ncclComm_t)d->nccl, 0));
        cudaCheck(cudaStreamSynchronize(0));
#else
        return lqa_err_set(err, "all-reduce of a device buffer: this lqa-sft was built without NCCL");
#endif
    } else if (d->size > 1) {
#ifdef LQA_MPI
        reduce_host(d, buf, n);
#endif
    }
    d->reduce_s = lqa_now() - t0;
    return 0;
}

#ifdef LQA_NCCL
static void dev_copy(float *dst, const float *src, size_t n) {
    cudaCheck(cudaMemcpyAsync(dst, src, sizeof(float) * n, cudaMemcpyDeviceToDevice, 0));
}
#endif

int lqa_dist_allreduce_tensors(lqa_dist *d, float *const *bufs, const size_t *ns, int count, lqa_dist_mem mem,
                               lqa_err *err) {
    if (nothing_to_do(d, mem)) {
        d->reduce_s = 0;
        return 0;
    }
    if (count == 1) return lqa_dist_allreduce_sum(d, bufs[0], ns[0], mem, err);
    size_t total = 0;
    for (int i = 0; i < count; i++) total += ns[i];
    double t0 = lqa_now();
    float *bucket;
    void (*copy)(float *, const float *, size_t) = NULL;
    if (mem == LQA_DIST_DEVICE) {
#ifdef LQA_NCCL
        if (d->dev_bucket_n < total) {
            if (d->dev_bucket) cudaCheck(cudaFree(d->dev_bucket));
            cudaCheck(cudaMalloc((void **)&d->dev_bucket, sizeof(float) * total));
            d->dev_bucket_n = total;
        }
        bucket = d->dev_bucket;
        copy = dev_copy;
#else
        return lqa_err_set(err, "all-reduce of device buffers: this lqa-sft was built without NCCL");
#endif
    } else {
        if (d->bucket_n < total) {
            free(d->bucket);
            d->bucket = lqa_malloc(sizeof(float) * total);
            d->bucket_n = total;
        }
        bucket = d->bucket;
    }
    size_t off = 0;
    for (int i = 0; i < count; off += ns[i++]) {
        if (copy) copy(bucket + off, bufs[i], ns[i]);
        else memcpy(bucket + off, bufs[i], sizeof(float) * ns[i]);
    }
    if (lqa_dist_allreduce_sum(d, bucket, total, mem, err)) return -1;
    off = 0;
    for (int i = 0; i < count; off += ns[i++]) {
        if (copy) copy(bufs[i], bucket + off, ns[i]);
        else memcpy(bufs[i], bucket + off, sizeof(float) * ns[i]);
    }
    d->reduce_s = lqa_now() - t0; /* packing included: it is part of what the step pays */
    return 0;
}

/* ---- small collectives ------------------------------------------------------------------------ */

void lqa_dist_allgather(lqa_dist *d, const double *mine, int n, double *all) {
    if (d->size <= 1) {
        memcpy(all, mine, sizeof(double) * (size_t)n);
        return;
    }
#ifdef LQA_MPI
    mpiCheck(MPI_Allgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD));
#endif
}

int lqa_dist_agree(lqa_dist *d, int rc, long step, lqa_err *err) {
    if (!d || d->size <= 1) return rc ? -1 : 0;
    if (d->failed) return -1;
#ifdef LQA_MPI
    int P = d->size;
    long mine[2] = {rc ? 1 : 0, step};
    long *all = lqa_malloc(sizeof(long) * 2 * (size_t)P);
    mpiCheck(MPI_Allgather(mine, 2, MPI_LONG, all, 2, MPI_LONG, MPI_COMM_WORLD));
    int bad = -1, off_step = -1;
    for (int k = 0; k < P; k++) {
        if (all[2 * k] && bad < 0) bad = k;
        if (all[2 * k + 1] != all[1] && off_step < 0) off_step = k;
    }
    if (bad < 0 && off_step < 0) {
        free(all);
        return 0;
    }
    d->failed = 1;
    if (bad < 0) {
        /* the same on every rank: rank 0 says it */
        lqa_err_set(err, "the ranks disagree on the step (rank 0 at %ld, rank %d at %ld); stopping", all[1], off_step,
                    all[2 * off_step + 1]);
        d->quiet_error = d->rank != 0;
        free(all);
        return -1;
    }
    /* everyone learns the first failing rank's message; identical messages are printed once */
    char *msgs = lqa_malloc((size_t)AGREE_MSG * (size_t)P);
    char out[AGREE_MSG];
    memset(out, 0, sizeof out);
    if (rc) snprintf(out, sizeof out, "%s", err->msg);
    mpiCheck(MPI_Allgather(out, AGREE_MSG, MPI_CHAR, msgs, AGREE_MSG, MPI_CHAR, MPI_COMM_WORLD));
    const char *first = msgs + (size_t)bad * AGREE_MSG;
    if (rc) {
        d->quiet_error = d->rank != bad && strcmp(out, first) == 0;
    } else {
        lqa_err_set(err, "rank %d of %d stopped: %s", bad, P, first);
        d->quiet_error = 1;
    }
    free(msgs);
    free(all);
    return -1;
#else
    return rc ? -1 : 0;
#endif
}
