/* ompenv.c: see ompenv.h. */
#include "common/ompenv.h"

#include <stdlib.h>
#include <unistd.h>

void lqa_prefer_passive_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: go on with libgomp's default */
}
