/* test_cuda_util.h: what the tests/test_cuda_*.c binaries share (header only, static): the skip
 * rule, random host arrays, host <-> device moves and the CUDA-vs-CPU comparison.
 *
 * Skip rule: every CUDA test starts with CUDA_TEST_REQUIRE(). Built without nvcc (SAN=1 builds,
 * machines without the toolkit) it prints "# skip: built without CUDA" and skips; built with CUDA
 * but with no usable device it prints "# skip: no CUDA device (cudaGetDeviceCount: ...)" and
 * skips. Test bodies that call CUDA code sit inside CUDA_ONLY(...) or #ifdef LQA_CUDA, so these
 * files compile either way. */
#ifndef LQA_TEST_CUDA_UTIL_H
#define LQA_TEST_CUDA_UTIL_H

#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/rng.h"
#ifdef LQA_CUDA
#include "kernels/backend.h"
#include "kernels/cuda/device.h"
#define CUDA_ONLY(...) __VA_ARGS__
#else
#define CUDA_ONLY(...)
#endif

/* Upper bounds of random sizes. Under the CPU emulator (make cuda-emu-check, which defines
 * LQA_CUDA_EMU) every thread is a coroutine and a run is ~1000x slower than on a GPU, so the
 * bounds shrink there; the kernels still see several tiles per block in every dimension. */
#ifdef LQA_CUDA_EMU
#define CUDA_TEST_MAX(n) ((n) / 4 > 2 ? (n) / 4 : 2)
#else
#define CUDA_TEST_MAX(n) (n)
#endif

/* NULL when CUDA tests can run here, else why not (computed once). */
static inline const char *cuda_test_skip_reason(void) {
#ifdef LQA_CUDA
    static int checked;
    static char reason[300];
    if (!checked) {
        char why[256] = "";
        checked = 1;
        if (!lqa_cuda_has_gpu(why, sizeof why)) snprintf(reason, sizeof reason, "no CUDA device (%s)", why);
    }
    return reason[0] ? reason : NULL;
#else
    return "built without CUDA";
#endif
}

#define CUDA_TEST_REQUIRE() do { \
        const char *why_ = cuda_test_skip_reason(); \
        if (why_) { printf("# skip: %s\n", why_); fflush(stdout); skip(); } \
    } while (0)

static lqa_rng cuda_rng;

/* cmocka group setup: seeds the shared generator from lqa_test_seed(). */
static inline int cuda_test_setup(void **state) {
    (void)state;
    lqa_rng_seed(&cuda_rng, lqa_test_seed());
    return 0;
}

static inline int rand_between(int lo, int hi) { return lo + (int)lqa_rng_below(&cuda_rng, (uint64_t)(hi - lo + 1)); }

static inline float *host_randn(size_t n, float std) {
    float *x = lqa_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = std * lqa_rng_normal(&cuda_rng);
    return x;
}

static inline float *host_copy(const float *a, size_t n) {
    float *x = lqa_malloc(sizeof(float) * (n ? n : 1));
    memcpy(x, a, sizeof(float) * n);
    return x;
}

/* Worst element of |got - want| against atol + rtol |want|; fails the test naming it. Two
 * infinities of the same sign (lse of a padding row) count as equal. */
static inline void expect_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol) {
    size_t worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i]) && got[i] == want[i]) continue;
        double err = fabs((double)got[i] - want[i]), lim = atol + rtol * fabs((double)want[i]);
        if (isnan(got[i]) || isnan(want[i]) || err - lim > worst_excess) {
            worst = i;
            worst_excess = isnan(got[i]) || isnan(want[i]) ? INFINITY : err - lim;
        }
    }
    if (worst_excess > 0)
        fail_msg("%s: element %zu of %zu: cuda %.9g, cpu %.9g (allowed %.3g + %.3g*|cpu|)", what, worst, n,
                 got[worst], want[worst], atol, rtol);
}

/* Largest finite |a[i]|: the scale against which a sum's rounding error is judged. */
static inline double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(a[i]) && fabs((double)a[i]) > m) m = fabs((double)a[i]);
    return m;
}

static inline void expect_equal_bits(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: element %zu of %zu differs: cuda %.9g, cpu %.9g (expected bitwise equal)", what, i, n,
                     got[i], want[i]);
}

#ifdef LQA_CUDA
/* The CUDA backend table on device 0 (kernels/backend.h); the test fails with the runtime's
 * reason when it cannot be opened. */
static inline const lqa_backend *cuda_test_backend(void) {
    lqa_err err = {0};
    const lqa_backend *be = lqa_backend_cuda_open(0, &err);
    if (!be) fail_msg("lqa_backend_cuda_open: %s", err.msg);
    return be;
}
static inline float *dev_upload(const float *host, size_t n) { return lqa_cuda_upload(host, sizeof(float) * n); }
static inline int32_t *dev_upload_i32(const int32_t *host, size_t n) { return lqa_cuda_upload(host, sizeof(int32_t) * n); }
/* A new host array with the n floats of dev. */
static inline float *dev_download(const float *dev, size_t n) {
    float *x = lqa_malloc(sizeof(float) * (n ? n : 1));
    lqa_cuda_to_host(x, dev, sizeof(float) * n);
    return x;
}
/* Downloads dev and compares it with the CPU's want. */
static inline void expect_dev_close(const char *what, const float *dev, const float *want, size_t n, double atol,
                             double rtol) {
    float *got = dev_download(dev, n);
    expect_close(what, got, want, n, atol, rtol);
    free(got);
}
/* As expect_dev_close with the error allowed relative to the largest |want| (for sums such as
 * GEMMs, whose rounding error scales with the result's magnitude, not each element's). */
static inline void expect_dev_rel(const char *what, const float *dev, const float *want, size_t n, double rel) {
    expect_dev_close(what, dev, want, n, rel * (max_abs(want, n) + 1e-30), 0.0);
}
#endif

#endif
