/* dist.h: data-parallel ranks for `lqa-sft train`, on existing engines: MPI (Open MPI from
 * Debian) launches the ranks (mpirun, srun) and reduces host buffers; NCCL, bootstrapped over
 * MPI (the unique id broadcast from rank 0), reduces device buffers.
 *
 * Built with MPI when the Makefile finds mpicc (mk/mpi.mk defines LQA_MPI for dist.c only), with
 * NCCL when nvcc and nccl.h are there too (LQA_NCCL). Without MPI every call here is the
 * single-process case (rank 0 of 1), and lqa_dist_init warns when the environment says the
 * process was started as one of several ranks.
 *
 * The protocol train.c follows, so that a failure on one rank never leaves the others waiting
 * in a collective that will not complete:
 *  - every step starts with lqa_dist_agree (all ranks OK and at the same step), then one
 *    all-reduce of the packed gradients, then one small gather of per-rank statistics;
 *  - a rank that fails anywhere else passes its error to the next lqa_dist_agree on its way out
 *    (lqa_train_run calls it last), which the other ranks meet at their next agreement;
 *  - errors that cannot take that path (a fatal check, a signal) end the process, and the
 *    launcher (mpirun, srun) then ends every rank: Open MPI's default, kept as it is.
 * The host all-reduce sums in rank order 0, 1, ..., N-1 for every element, whatever the message
 * size or network, so a run is reproducible bit for bit for a given N. */
#ifndef LQA_TRAINER_DIST_H
#define LQA_TRAINER_DIST_H

#include <stddef.h>

#include "common/check.h"

/* Where a buffer given to the all-reduce lives. */
typedef enum { LQA_DIST_HOST = 0, LQA_DIST_DEVICE = 1 } lqa_dist_mem;

typedef struct lqa_dist {
    int rank, size;          /* this process's rank in the job, and the number of ranks */
    int local_rank, local_size; /* among the ranks on this node (picks the GPU) */
    int mpi;                 /* MPI was initialised by lqa_dist_init */
    int gpu;                 /* the CUDA device of this rank after lqa_dist_use_gpu, else -1 */
    void *nccl;              /* ncclComm_t after lqa_dist_use_gpu */
    float *bucket;           /* host: the packed tensors of lqa_dist_allreduce_tensors */
    size_t bucket_n;
    float *dev_bucket;       /* device: the same on the GPU */
    size_t dev_bucket_n;
    float *scratch;          /* host: what the other ranks send of this rank's chunk */
    size_t scratch_n;
    double reduce_s;         /* seconds the last all-reduce took (waiting included) */
    int failed;              /* an error was agreed: later agreements return -1 at once */
    int quiet_error;         /* this rank's error was printed by another rank */
} lqa_dist;

/* "MPI (Open MPI v4.1.4)" / "MPI + NCCL 2.28.9" / "none (built without mpicc)". */
const char *lqa_dist_engine(void);
int lqa_dist_built_with_mpi(void);
int lqa_dist_built_with_nccl(void);

/* The rank count a launcher asked for, from its environment (OMPI_COMM_WORLD_SIZE, PMIX/PMI_SIZE,
 * SLURM_STEP_NUM_TASKS / SLURM_NTASKS under srun); 1 when none is set. */
int lqa_dist_launcher_size(void);

/* Joins the job: MPI_Init when built with MPI and started by a launcher, else rank 0 of 1 (with a
 * warning when a launcher asked for more ranks than one). Under MPI it also installs a SIGTERM
 * handler that says why the rank stops, since the launcher sends SIGTERM to every rank when one
 * fails. */
int lqa_dist_init(lqa_dist *d, lqa_err *err);

/* Leaves the job: MPI_Finalize when every rank knows how the run ended (rc == 0, or an error
 * passed through lqa_dist_agree); otherwise MPI_Abort, so the launcher ends the other ranks
 * rather than letting them wait. Frees the buffers. */
void lqa_dist_end(lqa_dist *d, int rc);

/* A NULL d is the single process. */
static inline int lqa_dist_rank(const lqa_dist *d) { return d ? d->rank : 0; }
static inline int lqa_dist_size(const lqa_dist *d) { return d ? d->size : 1; }
static inline int lqa_dist_is_root(const lqa_dist *d) { return lqa_dist_rank(d) == 0; }

/* --device cuda: selects this rank's GPU (local rank modulo the devices on the node) and creates
 * the NCCL communicator (ncclCommInitRank, unique id broadcast over MPI; with one rank a
 * communicator of 1, which the GPU check uses). -1 with err set on every rank when one has no GPU,
 * or with several ranks when the build has no NCCL; one rank without NCCL: 0, nothing to do. */
int lqa_dist_use_gpu(lqa_dist *d, lqa_err *err);

/* Sums n floats of buf over all ranks, in place; every rank ends with the same values. HOST:
 * MPI, in fixed rank order (see above); DEVICE: ncclAllReduce on the default stream, waited for
 * (needs lqa_dist_use_gpu). A no-op for one rank (but for a device buffer once NCCL is set up).
 * Sets d->reduce_s. */
int lqa_dist_allreduce_sum(lqa_dist *d, float *buf, size_t n, lqa_dist_mem mem, lqa_err *err);

/* The same over count tensors at once (one bucket, one all-reduce): packed in the given order
 * into a buffer on the same side, reduced, unpacked. */
int lqa_dist_allreduce_tensors(lqa_dist *d, float *const *bufs, const size_t *ns, int count, lqa_dist_mem mem,
                               lqa_err *err);

/* Every rank's n doubles: all[r * n + i] is rank r's mine[i]. */
void lqa_dist_allgather(lqa_dist *d, const double *mine, int n, double *all);

/* Collective: 0 when every rank passes rc == 0 and the same step. Otherwise -1 on every rank:
 * a rank that failed keeps its own message; the others get "rank K of N stopped: ..." with the
 * first failing rank's message, and quiet_error set (rank K prints it; a failing rank whose
 * message is the same as rank K's is quiet too). After an agreed failure it returns -1 at once. */
int lqa_dist_agree(lqa_dist *d, int rc, long step, lqa_err *err);

#endif
