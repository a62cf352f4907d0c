/* kernels/cuda/device.h: the small device-memory API of the CUDA backend, a plain C header so C
 * files (the trainer, tests, benchmarks) can move data to and from the GPU without CUDA headers.
 * Implemented in kernels/cuda/device.cu; only linked when the build has nvcc (LQA_CUDA defined),
 * so callers guard their use with #ifdef LQA_CUDA.
 *
 * Every call that must not fail exits through cudaCheck (file:line and the CUDA error string).
 * All work runs on the default stream: the _cuda ops are asynchronous with respect to the host,
 * copies to the host (lqa_cuda_to_host) and lqa_cuda_sync wait for them.
 */
#ifndef LQA_KERNELS_CUDA_DEVICE_H
#define LQA_KERNELS_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices. 0 when there is none, with the reason in why (whysz bytes, may be
 * NULL), e.g. "cudaGetDeviceCount: no CUDA-capable device is detected". Never exits. */
int lqa_cuda_device_count(char *why, size_t whysz);
/* 1 when a device is usable, else 0 with the reason as above. */
int lqa_cuda_has_gpu(char *why, size_t whysz);
/* One line describing device 0 ("NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB") into buf. */
void lqa_cuda_describe(char *buf, size_t bufsz);

/* Device memory. lqa_cuda_alloc(0) returns NULL; lqa_cuda_free(NULL) does nothing. */
void *lqa_cuda_alloc(size_t bytes);
void lqa_cuda_free(void *dev);
/* alloc + copy from host. */
void *lqa_cuda_upload(const void *host, size_t bytes);
void lqa_cuda_to_device(void *dev, const void *host, size_t bytes);
/* Waits for the queued work, then copies. */
void lqa_cuda_to_host(void *host, const void *dev, size_t bytes);
void lqa_cuda_copy(void *dev_dst, const void *dev_src, size_t bytes);
void lqa_cuda_zero(void *dev, size_t bytes);
/* Waits for all queued work; a kernel fault surfaces here as a fatal error. */
void lqa_cuda_sync(void);

#ifdef __cplusplus
}
#endif

#endif
