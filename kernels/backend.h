/* kernels/backend.h: the table the model core calls every op and every buffer operation through,
 * so one layer code runs on the CPU or on a CUDA device, chosen at run time.
 *
 * A backend owns a kind of memory: host memory for "cpu", device memory for "cuda". Every pointer
 * handed to an op or a memory call of a backend is that backend's memory (the CPU table's ops are
 * the *_cpu functions of kernels/<op>.h, the CUDA table's the *_cuda twins: same signatures). The
 * host reaches a backend's memory only through to_device / to_host. Work is queued in order;
 * to_host and sync wait for it. The CUDA table exists only in builds with LQA_CUDA
 * (kernels/cuda/backend.cu). */
#ifndef LQA_KERNELS_BACKEND_H
#define LQA_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"

typedef struct lqa_backend {
    const char *name;   /* "cpu", "cuda" */
    int device;         /* the CUDA device index; 0 on the CPU */
    int host_memory;    /* 1: the backend's memory is host memory (pointers are interchangeable) */

    /* memory: alloc(0) returns NULL, free(NULL) does nothing; alloc never fails (fatal) */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);
    /* bytes free and in total for this backend's memory (CPU: MemAvailable and MemTotal) */
    void (*mem_info)(size_t *free_bytes, size_t *total_bytes);

    /* ops (kernels/<op>.h) */
    void (*matmul_forward)(float *y, const float *x, const float *W, int N, int In, int Out, int accumulate);
    void (*matmul_backward)(float *dx, float *dW, const float *dy, const float *x, const float *W, int N, int In,
                            int Out);
    void (*lora_forward)(float *y, float *t, const float *x, const float *A, const float *B, int N, int In, int Out,
                         int r, float scale);
    void (*lora_backward)(float *dx, float *dA, float *dB, const float *dy, const float *x, const float *t,
                          const float *A, const float *B, int N, int In, int Out, int r, float scale, float *scratch);
    void (*rmsnorm_forward)(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
    void (*rmsnorm_backward)(float *dx, float *dw, const float *dy, const float *x, const float *w,
                             const float *rstd, int N, int D);
    void (*rope_forward)(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
    void (*rope_backward)(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
    void (*swiglu_forward)(float *h, const float *g, const float *u, size_t n);
    void (*swiglu_backward)(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
    void (*embedding_forward)(float *x, const int32_t *tokens, const float *wte, int N, int D);
    void (*embedding_backward)(float *dwte, const float *dx, const int32_t *tokens, int N, int D);
    void (*attention_forward)(float *out, float *lse, const float *q, const float *k, const float *v,
                              const attn_params *p, float *scratch);
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v,
                               const attn_params *p, float *scratch);
    /* floats of attention scratch for p (CPU: per thread, all threads; CUDA: none) */
    size_t (*attention_scratch_floats)(const attn_params *p);
    void (*crossentropy_fused_rows)(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                                    const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                    float *scratch, double *loss_sum);
    void (*crossentropy_mean_add)(double *acc, const double *loss_sum, long count);

    /* optimizer (kernels/adamw.h); clipping is AdamW's grad_scale, so gradients stay as summed */
    void (*adamw_update)(float *p, float *m, float *v, const float *g, size_t n, const adamw_args *a);
    void (*sumsq_add)(double *acc, const float *x, size_t n);

    /* bf16 weights (CUDA only; NULL on the CPU): frozen linear weights stored bf16 (2 B each) and
     * multiplied on tensor cores (kernels/matmul_bf16.h); the fp32 activation (forward x,
     * backward dy) is rounded to bf16 into scratch (N * In, N * Out bf16) first; fp32 sums. */
    void (*to_bf16)(void *dst, const float *src, size_t n);
    void (*linear_bf16_forward)(float *y, const float *x, const void *W16, int N, int In, int Out, int accumulate,
                                void *scratch);
    void (*linear_bf16_backward)(float *dx, const float *dy, const void *W16, int N, int In, int Out, void *scratch);
    /* attention on tensor cores (kernels/attention_bf16.h) behind attention_forward/backward's fp32
     * signature: q, k, v (out, dout) rounded to bf16 into scratch, out widened back to fp32 */
    size_t (*attention_bf16_scratch_bytes)(const attn_params *p);
    void (*attention_bf16_forward)(float *out, float *lse, const float *q, const float *k, const float *v,
                                   const attn_params *p, void *scratch);
    void (*attention_bf16_backward)(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                    const float *lse, const float *q, const float *k, const float *v,
                                    const attn_params *p, void *scratch);
    /* the fused lm_head + cross-entropy of crossentropy_fused_rows on a frozen bf16 W16 [V, D]
     * (kernels/crossentropy_bf16.h): x rounded to bf16, logits, loss and dlogits fp32, dx += ;
     * scratch: crossentropy_bf16_scratch_bytes(chunk, D, V) bytes */
    void (*crossentropy_bf16_rows)(float *dx, const float *x, const void *W16, const int32_t *targets,
                                   const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                   void *scratch, double *loss_sum);
    /* to_bf16's widening counterpart (exact): dst[i] = the bf16 src[i] as fp32 (CUDA only; the
     * CPU reference is lqa_bf16_to_floats, kernels/bf16.h) */
    void (*from_bf16)(float *dst, const void *src, size_t n);
    /* LoRA on tensor cores (kernels/matmul_bf16.h): bf16 products, fp32 sums and outputs; A and
     * B are the fp32 masters, rounded to bf16 into scratch (lora_bf16_scratch_bytes) per call.
     * Called right after linear_bf16_forward/backward of the same linear: x16 (forward) and dy16
     * (backward) are the bf16 activation those left in their scratch. t16 is x A^T in bf16 (N * r),
     * written by the forward for the backward. The backward rounds x into x16 for dA after its
     * last read of dy16 (the two may be one buffer); dx, dA and dB may be NULL (LoRA frozen:
     * dA and dB NULL, x not rounded). A backend with linear_bf16_* has these too. */
    void (*lora_bf16_forward)(float *y, void *t16, const void *x16, const float *A, const float *B, int N, int In,
                              int Out, int r, float scale, void *scratch);
    void (*lora_bf16_backward)(float *dx, float *dA, float *dB, const void *dy16, const float *x, void *x16,
                               const void *t16, const float *A, const float *B, int N, int In, int Out, int r,
                               float scale, void *scratch);
    /* attention_bf16_forward over keys and values kept in bf16 (lqa-eval's bf16 KV cache): k16,
     * v16 [B, Tk, KV, hd] bf16 as they are; q rounded into scratch, out widened to fp32. scratch:
     * attention_bf16_scratch_bytes of any p with the same B, Tq, H and hd */
    void (*attention_bf16_cached_forward)(float *out, float *lse, const float *q, const void *k16, const void *v16,
                                          const attn_params *p, void *scratch);
} lqa_backend;

/* The CPU backend (always there). */
const lqa_backend *lqa_backend_cpu(void);

/* The backend a --device value names: "cpu", "cuda" (device 0) or "cuda:N" (selects device N).
 * NULL with err set when the value is not one of those, the build has no CUDA, or the device is
 * not there (the message gives the reason the CUDA runtime gives). */
const lqa_backend *lqa_backend_open(const char *device, lqa_err *err);

/* --dtype of the tools that run the model (lqa-sft train and bench, lqa-eval run and bench), one
 * rule for all: "bf16" (frozen linears and attention on tensor cores, lqa_model_use_bf16) or
 * "fp32"; dtype NULL: the device's default, bf16 on "cuda"/"cuda:N", fp32 on the CPU. bf16 on the
 * CPU (no bf16 kernels) is an error. Sets *bf16 to 1 or 0; -1 with err set. */
int lqa_backend_dtype(const char *device, const char *dtype, int *bf16, lqa_err *err);

#ifdef LQA_CUDA
/* The CUDA backend on device dev (cudaSetDevice); NULL with err set when unusable. */
const lqa_backend *lqa_backend_cuda_open(int dev, lqa_err *err);
#endif

#endif
