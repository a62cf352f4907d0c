/* test_cuda_bf16_util.h: what the bf16 CUDA tests (tests/test_cuda_*_bf16.c) share on top of
 * test_cuda_util.h (header only, static): random bf16 host arrays with their exact fp32 values,
 * uploads and downloads of bf16 device arrays. The CPU references run in fp32 on the widened
 * values, so both sides start from the same numbers and only the device's own roundings differ. */
#ifndef LQA_TEST_CUDA_BF16_UTIL_H
#define LQA_TEST_CUDA_BF16_UTIL_H

#include "tests/test_cuda_util.h"

#include "kernels/bf16.h"

/* n random normal values (std) rounded to bf16; *widened (if not NULL) gets them as floats. */
static inline lqa_bf16 *host_randn_bf16(size_t n, float std, float **widened) {
    float *f = host_randn(n, std);
    lqa_bf16 *h = lqa_malloc(sizeof(lqa_bf16) * (n ? n : 1));
    lqa_bf16_from_floats(h, f, n);
    if (widened) {
        lqa_bf16_to_floats(f, h, n);
        *widened = f;
    } else {
        free(f);
    }
    return h;
}

#ifdef LQA_CUDA
static inline lqa_bf16 *dev_upload_bf16(const lqa_bf16 *host, size_t n) {
    return lqa_cuda_upload(host, sizeof(lqa_bf16) * n);
}
/* A new host float array with the n bf16 values of dev, widened. */
static inline float *dev_download_bf16(const lqa_bf16 *dev, size_t n) {
    lqa_bf16 *h = lqa_malloc(sizeof(lqa_bf16) * (n ? n : 1));
    lqa_cuda_to_host(h, dev, sizeof(lqa_bf16) * n);
    float *f = lqa_malloc(sizeof(float) * (n ? n : 1));
    lqa_bf16_to_floats(f, h, n);
    free(h);
    return f;
}
#endif

#endif
