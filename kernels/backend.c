/* kernels/backend.c: the CPU backend table (host memory, the *_cpu ops) and the --device parser
 * (see backend.h). */
#include "kernels/backend.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/lora.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

static void *cpu_alloc(size_t bytes) { return bytes ? lqa_malloc(bytes) : NULL; }
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}
static void cpu_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}
static void cpu_sync(void) {}

/* MemAvailable / MemTotal of /proc/meminfo (0 when unreadable). */
static void cpu_mem_info(size_t *free_bytes, size_t *total_bytes) {
    double avail, total;
    lqa_meminfo(&avail, &total);
    *free_bytes = (size_t)avail;
    *total_bytes = (size_t)total;
}

static size_t cpu_attention_scratch(const attn_params *p) { return attention_scratch_floats(p, omp_get_max_threads()); }

static const lqa_backend CPU = {
    .name = "cpu",
    .device = 0,
    .host_memory = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .mem_info = cpu_mem_info,
    .matmul_forward = matmul_forward_cpu,
    .matmul_backward = matmul_backward_cpu,
    .lora_forward = lora_forward_cpu,
    .lora_backward = lora_backward_cpu,
    .rmsnorm_forward = rmsnorm_forward_cpu,
    .rmsnorm_backward = rmsnorm_backward_cpu,
    .rope_forward = rope_forward_cpu,
    .rope_backward = rope_backward_cpu,
    .swiglu_forward = swiglu_forward_cpu,
    .swiglu_backward = swiglu_backward_cpu,
    .embedding_forward = embedding_forward_cpu,
    .embedding_backward = embedding_backward_cpu,
    .attention_forward = attention_forward_cpu,
    .attention_backward = attention_backward_cpu,
    .attention_scratch_floats = cpu_attention_scratch,
    .crossentropy_fused_rows = crossentropy_fused_rows_cpu,
    .crossentropy_mean_add = crossentropy_mean_add_cpu,
    .adamw_update = adamw_update_cpu,
    .sumsq_add = sumsq_add_cpu,
};

const lqa_backend *lqa_backend_cpu(void) { return &CPU; }

const lqa_backend *lqa_backend_open(const char *device, lqa_err *err) {
    if (!strcmp(device, "cpu")) return &CPU;
    int dev = 0;
    if (strncmp(device, "cuda", 4) != 0) goto bad;
    if (device[4] == ':') {
        char *end;
        long n = strtol(device + 5, &end, 10);
        if (end == device + 5 || *end || n < 0 || n > 1024) goto bad;
        dev = (int)n;
    } else if (device[4]) {
        goto bad;
    }
#ifdef LQA_CUDA
    return lqa_backend_cuda_open(dev, err);
#else
    (void)dev;
    lqa_err_set(err, "--device %s: this build has no CUDA (nvcc was not found when it was built); use --device cpu",
                device);
    return NULL;
#endif
bad:
    lqa_err_set(err, "--device '%s': expected cpu, cuda or cuda:N (N a device index)", device);
    return NULL;
}

int lqa_backend_dtype(const char *device, const char *dtype, int *bf16, lqa_err *err) {
    int cuda = device && strncmp(device, "cuda", 4) == 0;
    if (!dtype) {
        *bf16 = cuda;
        return 0;
    }
    if (!strcmp(dtype, "fp32")) *bf16 = 0;
    else if (!strcmp(dtype, "bf16")) *bf16 = 1;
    else return lqa_err_set(err, "--dtype '%s': expected fp32 or bf16", dtype);
    if (*bf16 && !cuda)
        return lqa_err_set(err, "--dtype bf16 needs --device cuda (the %s has no bf16 kernels); use --dtype fp32 "
                                "there", device ? device : "cpu");
    return 0;
}
