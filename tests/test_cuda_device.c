/* test_cuda_device.c: the device-memory API of kernels/cuda/device.h: random bytes survive an
 * upload/download round trip and a device-to-device copy at random offsets, zeroing zeroes only
 * the range asked, size 0 allocates nothing, the device description names an sm_ arch, and a
 * failing CUDA call (an allocation larger than any GPU) exits 1 through cudaCheck with the CUDA
 * error name and the file:line of the call (run in a child: this binary re-executed). */
#include "tests/test_cuda_util.h"

#include <unistd.h>

#define HUGE_ALLOC_ENV "LQA_CUDA_TEST_HUGE_ALLOC"

#ifdef LQA_CUDA
static unsigned char *random_bytes(size_t n) {
    unsigned char *b = lqa_malloc(n);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)lqa_rng_below(&cuda_rng, 256);
    return b;
}
#endif

static void test_round_trip_and_copy(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    size_t n = (size_t)rand_between(1, 1 << 20), off = (size_t)rand_between(0, (int)(n - 1)), len = n - off;
    unsigned char *host = random_bytes(n), *back = lqa_malloc(n);
    unsigned char *dev = lqa_cuda_upload(host, n), *dev2 = lqa_cuda_alloc(n);
    lqa_cuda_to_host(back, dev, n);
    assert_memory_equal(back, host, n);
    /* device-to-device copy of a tail, then a host write into the head of the copy */
    lqa_cuda_zero(dev2, n);
    lqa_cuda_copy(dev2 + off, dev + off, len);
    lqa_cuda_to_device(dev2, host, off);
    lqa_cuda_sync();
    memset(back, 0xA5, n);
    lqa_cuda_to_host(back, dev2, n);
    assert_memory_equal(back, host, n);
    lqa_cuda_free(dev), lqa_cuda_free(dev2);
    free(host), free(back);
#endif
}

static void test_zero_range(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    size_t n = (size_t)rand_between(2, 100000), a = (size_t)rand_between(0, (int)(n / 2)), len = (size_t)rand_between(1, (int)(n - a));
    unsigned char *host = random_bytes(n), *back = lqa_malloc(n);
    unsigned char *dev = lqa_cuda_upload(host, n);
    lqa_cuda_zero(dev + a, len);
    lqa_cuda_to_host(back, dev, n);
    memset(host + a, 0, len);
    assert_memory_equal(back, host, n);
    lqa_cuda_free(dev);
    free(host), free(back);
#endif
}

static void test_empty_and_describe(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    assert_null(lqa_cuda_alloc(0));
    lqa_cuda_free(NULL);
    char why[256] = "", desc[256] = "";
    assert_true(lqa_cuda_device_count(why, sizeof why) >= 1);
    lqa_cuda_describe(desc, sizeof desc);
    print_message("# device: %s\n", desc);
    assert_non_null(strstr(desc, ", sm_"));
#endif
}

static void test_failed_call_is_fatal_with_place(void **state) {
    CUDA_TEST_REQUIRE();
#ifdef LQA_CUDA
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, HUGE_ALLOC_ENV "=1 '%s'", self);
    const char *text = out.data ? out.data : "";
    print_message("# child (rc %d): %s", rc, text);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(text, "cudaErrorMemoryAllocation"));
    assert_non_null(strstr(text, "device.c")); /* kernels/cuda/device.cu:LINE (device.cc under the emulator) */
    lqa_buf_free(&out);
#endif
}

int main(void) {
#ifdef LQA_CUDA
    if (getenv(HUGE_ALLOC_ENV)) { /* the child of test_failed_call_is_fatal_with_place */
        lqa_cuda_alloc((size_t)1 << 50); /* 1 PiB: cudaCheck must exit(1) with the error */
        return 0;
    }
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_copy),
        cmocka_unit_test(test_zero_range),
        cmocka_unit_test(test_empty_and_describe),
        cmocka_unit_test(test_failed_call_is_fatal_with_place),
    };
    return cmocka_run_group_tests(tests, cuda_test_setup, NULL);
}
