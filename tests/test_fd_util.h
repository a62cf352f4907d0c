/* test_fd_util.h: finite-difference helpers shared by the kernel and model tests (header
 * only, static inline). fd_check compares an analytic gradient with central differences of a
 * scalar loss at random coordinates. */
#ifndef LQA_TEST_FD_UTIL_H
#define LQA_TEST_FD_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

typedef double (*fd_loss_fn)(void *ctx);

static inline float *fd_zeros(size_t n) {
    float *x = calloc(n ? n : 1, sizeof(float));
    if (!x) abort();
    return x;
}
static inline float *fd_randn(lqa_rng *r, size_t n, float std) {
    float *x = fd_zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = std * lqa_rng_normal(r);
    return x;
}
static inline float *fd_copy(const float *a, size_t n) {
    float *x = fd_zeros(n);
    memcpy(x, a, sizeof(float) * n);
    return x;
}
static inline void fd_sub(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] -= b[i];
}
static inline double fd_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}
static inline void fd_free_all(void *first, ...) {
    va_list ap;
    va_start(ap, first);
    for (void *p = first; p; p = va_arg(ap, void *)) free(p);
    va_end(ap);
}

/* Central difference of loss along coordinate i of x, step eps (the step actually taken in
 * float is used as the divisor). */
static inline double fd_central(float *x, size_t i, float eps, fd_loss_fn loss, void *ctx) {
    float save = x[i];
    float up = save + eps, down = save - eps;
    x[i] = up;
    double lp = loss(ctx);
    x[i] = down;
    double lm = loss(ctx);
    x[i] = save;
    return (lp - lm) / ((double)up - (double)down);
}
/* Richardson extrapolation of two central differences: truncation error O(eps^4) instead of
 * O(eps^2), so strongly curved losses (a whole model) can be checked tightly. */
static inline double fd_numeric(float *x, size_t i, float eps, fd_loss_fn loss, void *ctx) {
    double d1 = fd_central(x, i, eps, loss, ctx), d2 = fd_central(x, i, eps / 2, loss, ctx);
    return (4.0 * d2 - d1) / 3.0;
}

/* Checks `samples` random coordinates (all when n <= samples); fails the test (cmocka) with the
 * worst coordinate. Tolerance: relative 4e-3 plus an absolute floor atol. */
static inline void fd_check_tol(const char *what, float *x, const float *grad, size_t n, fd_loss_fn loss, void *ctx,
                                lqa_rng *r, int samples, float eps, double atol) {
    int bad = 0;
    for (int s = 0; s < samples && (size_t)s < (n > (size_t)samples ? (size_t)samples : n); s++) {
        size_t i = n > (size_t)samples ? lqa_rng_below(r, n) : (size_t)s;
        double num = fd_numeric(x, i, eps, loss, ctx), ana = grad[i];
        double err = fabs(num - ana), lim = 4e-3 * fmax(fabs(num), fabs(ana)) + atol;
        if (err > lim) {
            fprintf(stderr, "# %s[%zu]: analytic %.6g numeric %.6g (err %.3g > %.3g)\n", what, i, ana, num, err, lim);
            bad++;
        }
    }
    if (bad) fail_msg("%s: %d coordinates disagree with finite differences", what, bad);
}

static inline void fd_check(const char *what, float *x, const float *grad, size_t n, fd_loss_fn loss, void *ctx,
                            lqa_rng *r, int samples) {
    fd_check_tol(what, x, grad, n, loss, ctx, r, samples, 1e-2f, 1e-3);
}

#endif
