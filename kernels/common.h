/* kernels/common.h: conventions every op in kernels/ follows, and the thread setting they share.
 *
 * - Each op has op_forward_cpu / op_backward_cpu taking plain float pointers and sizes; the
 *   CUDA twins op_forward_cuda / op_backward_cuda (declared under LQA_CUDA, implemented in
 *   kernels/cuda/<op>.cu) take the same arguments as device pointers.
 * - Ops never allocate: scratch is passed in (its size from op_scratch_floats where one exists).
 * - Every _backward ACCUMULATES (+=) into its gradient outputs (so a caller zeroes them once and
 *   several paths can add into the same gradient), unless its header says "in place".
 * - Row-major everywhere; a "linear" weight W is [out, in] as in HF, so y = x W^T.
 * - CPU ops use OpenMP with static schedules and fixed reduction orders: results are bitwise
 *   identical run to run for a fixed thread count.
 */
#ifndef LQA_KERNELS_COMMON_H
#define LQA_KERNELS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* OpenMP `if` clause for an op of n elements: small ops run on the calling thread, since a
 * parallel region costs more than it saves there (and much more on a loaded machine). Each
 * element is computed by one thread in a fixed order either way, so results do not change. */
#define LQA_PAR_MIN 32768
#define LQA_PAR(n) ((size_t)(n) >= LQA_PAR_MIN)

/* Sets the thread count of the OpenMP regions (n <= 0: all cores) and makes OpenBLAS single-
 * threaded: gemm_cpu (matmul.h) splits each GEMM across the OpenMP threads, so the process has
 * one thread pool. Code that wants a multi-threaded GEMM calls gemm_cpu, not cblas_sgemm. */
void kernels_set_threads(int n);
int kernels_get_threads(void);

#endif
