/* ompenv.h: the OpenMP environment the tools want before any parallel region runs. */
#ifndef LQA_OMPENV_H
#define LQA_OMPENV_H

/* libgomp reads OMP_WAIT_POLICY once, when it loads, and by default lets idle threads spin;
 * beside OpenBLAS's own GEMM threads that spinning takes the cores the GEMMs need (3x slower
 * training steps measured on 2 loaded cores, bench/RESULTS.md "Train"). Unless the user set a
 * policy, this re-executes the program (/proc/self/exe, same argv) once with PASSIVE; call it
 * first thing in main. Returns only when no restart happened (policy set, or exec failed). */
void lqa_prefer_passive_openmp(char **argv);

#endif
