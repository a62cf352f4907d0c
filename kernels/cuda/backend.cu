/* kernels/cuda/backend.cu: the CUDA backend table (device memory, the *_cuda ops of kernels/cuda)
 * and lqa_backend_cuda_open (see kernels/backend.h). */
#include <stdio.h>

#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/backend.h"
#include "kernels/crossentropy_bf16.h"
#include "kernels/matmul_bf16.h"
}

static void cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    cudaCheck(cudaMemGetInfo(free_bytes, total_bytes));
}

static size_t cuda_attention_scratch(const attn_params *p) {
    (void)p;
    return 0; /* attention_forward_cuda / backward_cuda take no scratch */
}

static void cuda_from_bf16(float *dst, const void *src, size_t n) {
    bf16_to_f32_cuda(dst, (const lqa_bf16 *)src, n);
}

static lqa_backend cuda_backend(int dev) {
    lqa_backend b = {};
    b.name = "cuda";
    b.device = dev;
    b.host_memory = 0;
    b.alloc = lqa_cuda_alloc;
    b.free = lqa_cuda_free;
    b.to_device = lqa_cuda_to_device;
    b.to_host = lqa_cuda_to_host;
    b.copy = lqa_cuda_copy;
    b.zero = lqa_cuda_zero;
    b.sync = lqa_cuda_sync;
    b.mem_info = cuda_mem_info;
    b.matmul_forward = matmul_forward_cuda;
    b.matmul_backward = matmul_backward_cuda;
    b.lora_forward = lora_forward_cuda;
    b.lora_backward = lora_backward_cuda;
    b.rmsnorm_forward = rmsnorm_forward_cuda;
    b.rmsnorm_backward = rmsnorm_backward_cuda;
    b.rope_forward = rope_forward_cuda;
    b.rope_backward = rope_backward_cuda;
    b.swiglu_forward = swiglu_forward_cuda;
    b.swiglu_backward = swiglu_backward_cuda;
    b.embedding_forward = embedding_forward_cuda;
    b.embedding_backward = embedding_backward_cuda;
    b.attention_forward = attention_forward_cuda;
    b.attention_backward = attention_backward_cuda;
    b.attention_scratch_floats = cuda_attention_scratch;
    b.crossentropy_fused_rows = crossentropy_fused_rows_cuda;
    b.crossentropy_mean_add = crossentropy_mean_add_cuda;
    b.adamw_update = adamw_update_cuda;
    b.sumsq_add = sumsq_add_cuda;
    b.to_bf16 = to_bf16_cuda;
    b.linear_bf16_forward = linear_bf16_forward_cuda;
    b.linear_bf16_backward = linear_bf16_backward_cuda;
    b.attention_bf16_scratch_bytes = attention_bf16_io_scratch_bytes;
    b.attention_bf16_forward = attention_bf16_io_forward_cuda;
    b.attention_bf16_backward = attention_bf16_io_backward_cuda;
    b.crossentropy_bf16_rows = crossentropy_fused_rows_bf16_cuda;
    b.from_bf16 = cuda_from_bf16;
    b.lora_bf16_forward = lora_bf16_io_forward_cuda;
    b.lora_bf16_backward = lora_bf16_io_backward_cuda;
    b.attention_bf16_cached_forward = attention_bf16_io_cached_forward_cuda;
    return b;
}

extern "C" const lqa_backend *lqa_backend_cuda_open(int dev, lqa_err *err) {
    static lqa_backend opened;
    static int is_open;
    char why[256];
    int n = lqa_cuda_device_count(why, sizeof why);
    if (n == 0) {
        lqa_err_set(err, "--device cuda: no usable CUDA device (%s); use --device cpu", why);
        return NULL;
    }
    if (dev >= n) {
        if (n == 1) lqa_err_set(err, "--device cuda:%d: this machine has 1 CUDA device, cuda:0", dev);
        else lqa_err_set(err, "--device cuda:%d: this machine has %d CUDA devices, cuda:0 to cuda:%d", dev, n, n - 1);
        return NULL;
    }
    if (is_open && opened.device != dev) {
        lqa_err_set(err, "--device cuda:%d: the process already uses cuda:%d", dev, opened.device);
        return NULL;
    }
    if (!is_open) {
        cudaCheck(cudaSetDevice(dev));
        opened = cuda_backend(dev);
        lqa_cuda_sumsq_prepare();
        is_open = 1;
    }
    return &opened;
}
