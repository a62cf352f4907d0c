/* kernels/common.c: the thread count shared by the CPU ops (OpenMP regions and OpenBLAS). */
#include "kernels/common.h"

#include <omp.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS (cblas.h declares it too) */

static int kernels_threads = 0;

void kernels_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    kernels_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int kernels_get_threads(void) {
    if (kernels_threads <= 0) kernels_set_threads(0);
    return kernels_threads;
}
