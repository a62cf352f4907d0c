/* kernels/common.c: the thread count shared by the CPU ops (OpenMP regions and OpenBLAS). */
#include "kernels/common.h"

#include <omp.h>
#include <stdlib.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS (cblas.h declares it too) */

static int kernels_threads = 0;

void kernels_set_threads(int n) {
    if (n <= 0) { /* all cores, unless OMP_NUM_THREADS says otherwise */
        const char *env = getenv("OMP_NUM_THREADS");
        n = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs();
    }
    kernels_threads = n;
    omp_set_num_threads(n);
    /* gemm_cpu splits GEMMs across the OpenMP threads itself; OpenBLAS stays single-threaded so
     * that its threads never spin against OpenMP's on the same cores */
    openblas_set_num_threads(1);
}

int kernels_get_threads(void) {
    if (kernels_threads <= 0) kernels_set_threads(0);
    return kernels_threads;
}
