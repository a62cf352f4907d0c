/* kernels/matmul_bf16.h: the GEMMs of the bf16 CUDA path, on cuBLASLt with bf16 inputs and fp32
 * accumulation (kernels/cuda/matmul_bf16.cu). Same conventions as matmul.h / lora.h: row-major,
 * a linear weight W is [Out, In] so y = x W^T, backward outputs ACCUMULATE (+=), device pointers.
 * Inputs (activations, frozen weights, bf16 copies of the LoRA factors) are bf16; gradients are
 * fp32 (they accumulate over micro-batches and several paths); an output y is fp32 or bf16
 * (y_type), rounded to nearest even once, after the fp32 sum.
 *   x [N, In], W [Out, In], y [N, Out]; LoRA A [r, In], B [Out, r], t = x A^T [N, r]
 * The CPU reference is gemm_bf16_ref (kernels/bf16.h) on the same bf16 inputs.
 */
#ifndef LQA_KERNELS_MATMUL_BF16_H
#define LQA_KERNELS_MATMUL_BF16_H

#include "kernels/attention.h"
#include "kernels/bf16.h"

#ifdef LQA_CUDA
/* C = alpha op(A) op(B) + beta C, cblas_sgemm's row-major meaning of M, N, K, lda, ldb, ldc;
 * C fp32 or bf16 (c_type). */
void gemm_bf16_cuda(int transA, int transB, int M, int N, int K, float alpha, const lqa_bf16 *A, int lda,
                    const lqa_bf16 *B, int ldb, float beta, void *C, lqa_dtype c_type, int ldc);
/* y = x W^T (accumulate == 0) or y += x W^T. */
void matmul_bf16_forward_cuda(void *y, lqa_dtype y_type, const lqa_bf16 *x, const lqa_bf16 *W, int N, int In,
                              int Out, int accumulate);
/* dx += dy W (skipped when dx == NULL); dW += dy^T x (skipped when dW == NULL: frozen weights). */
void matmul_bf16_backward_cuda(float *dx, float *dW, const lqa_bf16 *dy, const lqa_bf16 *x, const lqa_bf16 *W,
                               int N, int In, int Out);
/* LoRA's two thin products: t = x A^T (bf16, saved for the backward); y += scale t B^T. */
void lora_bf16_forward_cuda(void *y, lqa_dtype y_type, lqa_bf16 *t, const lqa_bf16 *x, const lqa_bf16 *A,
                            const lqa_bf16 *B, int N, int In, int Out, int r, float scale);
/* dB += scale dy^T t (dB may be NULL); dt = scale dy B, rounded to bf16 into scratch (N * r
 * bf16); dA += dt^T x; dx += dt A (dx may be NULL). */
void lora_bf16_backward_cuda(float *dx, float *dA, float *dB, const lqa_bf16 *dy, const lqa_bf16 *x,
                             const lqa_bf16 *t, const lqa_bf16 *A, const lqa_bf16 *B, int N, int In, int Out, int r,
                             float scale, lqa_bf16 *scratch);
/* The half of that backward that reads dy: dB += scale dy^T t (dB may be NULL); dt = scale dy B,
 * rounded to bf16 (N * r). The rest is matmul_bf16_backward_cuda(dx, dA, dt, x, A, N, In, r). */
void lora_bf16_dt_cuda(float *dB, lqa_bf16 *dt, const lqa_bf16 *dy, const lqa_bf16 *t, const lqa_bf16 *B, int N,
                       int Out, int r, float scale);
/* The chunked cross-entropy's logits: logits [rows, V] = x [rows, D] W [V, D]^T in fp32 (the
 * loss and its softmax are fp32). Its backward GEMMs are matmul_bf16_backward_cuda on the
 * dlogits rounded to bf16 (bf16_from_f32_cuda). */
void crossentropy_logits_bf16_cuda(float *logits, const lqa_bf16 *x, const lqa_bf16 *W, int rows, int D, int V);
/* The model's frozen linears on bf16 weights with fp32 activations (kernels/backend.h): x (or dy)
 * rounded to bf16 into scratch, then y (=|+=) x W^T, or dx += dy W, with fp32 outputs. */
void linear_bf16_forward_cuda(float *y, const float *x, const void *W16, int N, int In, int Out, int accumulate,
                              void *scratch);
void linear_bf16_backward_cuda(float *dx, const float *dy, const void *W16, int N, int In, int Out, void *scratch);
void to_bf16_cuda(void *dst, const float *src, size_t n);
/* attention_{forward,backward}_bf16_cuda behind the fp32 attention's arguments (kernels/backend.h):
 * the fp32 inputs rounded to bf16 into scratch (attention_bf16_io_scratch_bytes), out widened. */
size_t attention_bf16_io_scratch_bytes(const attn_params *p);
void attention_bf16_io_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                    const attn_params *p, void *scratch);
void attention_bf16_io_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                     const float *lse, const float *q, const float *k, const float *v,
                                     const attn_params *p, void *scratch);
/* The forward with k and v already bf16 (a bf16 KV cache): only q rounded into scratch. */
void attention_bf16_io_cached_forward_cuda(float *out, float *lse, const float *q, const void *k16, const void *v16,
                                           const attn_params *p, void *scratch);
/* LoRA behind fp32 masters (kernels/backend.h's lora_bf16_*): A and B rounded to bf16 into
 * scratch on every call, then the products above; x16 / dy16 are the activations the frozen
 * linear already rounded, t16 the bf16 t the backward reads back. */
void lora_bf16_io_forward_cuda(float *y, void *t16, const void *x16, const float *A, const float *B, int N, int In,
                               int Out, int r, float scale, void *scratch);
void lora_bf16_io_backward_cuda(float *dx, float *dA, float *dB, const void *dy16, const float *x, void *x16,
                                const void *t16, const float *A, const float *B, int N, int In, int Out, int r,
                                float scale, void *scratch);
#endif

/* Bytes of lora_bf16_io_*'s scratch (any build; the planner sizes it): bf16 A [r, In] and B
 * [Out, r], each 256-byte aligned, and for the backward (N > 0) dt [N, r]. */
static inline size_t lora_bf16_scratch_bytes(size_t N, size_t In, size_t Out, size_t r) {
    return ((2 * r * In + 255) & ~(size_t)255) + ((2 * Out * r + 255) & ~(size_t)255) + 2 * N * r;
}

#endif
