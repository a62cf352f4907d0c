/* kernels/cuda/linear_bf16.cu: the model's --dtype bf16 entry points (kernels/matmul_bf16.h, the
 * backend's *_bf16 members): frozen linears on bf16 weights (fp32 activations rounded to bf16
 * once, then the cuBLASLt bf16 GEMMs of matmul_bf16.cu with fp32 outputs), and the tensor-core
 * attention of attention_bf16.cu behind the fp32 attention's arguments. */
#include "kernels/cuda/internal.cuh"

extern "C" {
#include "kernels/attention_bf16.h"
#include "kernels/matmul_bf16.h"
}

extern "C" void to_bf16_cuda(void *dst, const float *src, size_t n) {
    bf16_from_f32_cuda((lqa_bf16 *)dst, src, n);
}

extern "C" void linear_bf16_forward_cuda(float *y, const float *x, const void *W16, int N, int In, int Out,
                                         int accumulate, void *scratch) {
    lqa_bf16 *x16 = (lqa_bf16 *)scratch;
    bf16_from_f32_cuda(x16, x, (size_t)N * In);
    matmul_bf16_forward_cuda(y, LQA_F32, x16, (const lqa_bf16 *)W16, N, In, Out, accumulate);
}

extern "C" void linear_bf16_backward_cuda(float *dx, const float *dy, const void *W16, int N, int In, int Out,
                                          void *scratch) {
    lqa_bf16 *dy16 = (lqa_bf16 *)scratch;
    bf16_from_f32_cuda(dy16, dy, (size_t)N * Out);
    matmul_bf16_backward_cuda(dx, NULL, dy16, NULL, (const lqa_bf16 *)W16, N, In, Out);
}

/* LoRA's scratch: bf16 A [r, In] and B [Out, r], rounded from the fp32 masters on every call
 * (r (In + Out) values, nothing beside the N-sized products; a per-step copy would save that
 * but needs a hook outside the layer's call), then dt [N, r] for the backward. */
typedef struct lora16 {
    lqa_bf16 *A, *B, *dt;
} lora16;

static lora16 lora_masters_to_bf16(const float *A, const float *B, int In, int Out, int r, void *scratch) {
    lora16 s;
    s.A = (lqa_bf16 *)scratch;
    s.B = (lqa_bf16 *)((char *)scratch + lora_bf16_scratch_bytes(0, (size_t)In, 0, (size_t)r));
    s.dt = (lqa_bf16 *)((char *)scratch + lora_bf16_scratch_bytes(0, (size_t)In, (size_t)Out, (size_t)r));
    bf16_from_f32_cuda(s.A, A, (size_t)r * In);
    bf16_from_f32_cuda(s.B, B, (size_t)Out * r);
    return s;
}

/* y += scale (x A^T) B^T, fp32 y: the second product's epilogue accumulates (alpha scale, beta
 * 1), so the LoRA output never takes a buffer or a pass of its own. */
extern "C" void lora_bf16_io_forward_cuda(float *y, void *t16, const void *x16, const float *A, const float *B, int N,
                                          int In, int Out, int r, float scale, void *scratch) {
    lora16 s = lora_masters_to_bf16(A, B, In, Out, r, scratch);
    lora_bf16_forward_cuda(y, LQA_F32, (lqa_bf16 *)t16, (const lqa_bf16 *)x16, s.A, s.B, N, In, Out, r, scale);
}

/* Everything that reads dy16 runs before x is rounded into x16, so the two may be one buffer. */
extern "C" void lora_bf16_io_backward_cuda(float *dx, float *dA, float *dB, const void *dy16, const float *x,
                                           void *x16, const void *t16, const float *A, const float *B, int N, int In,
                                           int Out, int r, float scale, void *scratch) {
    lora16 s = lora_masters_to_bf16(A, B, In, Out, r, scratch);
    lora_bf16_dt_cuda(dB, s.dt, (const lqa_bf16 *)dy16, (const lqa_bf16 *)t16, s.B, N, Out, r, scale);
    if (dA) bf16_from_f32_cuda((lqa_bf16 *)x16, x, (size_t)N * In);
    matmul_bf16_backward_cuda(dx, dA, s.dt, (const lqa_bf16 *)x16, s.A, N, In, r);
}

/* bf16 copies: q and out [B, Tq, H, hd], k and v [B, Tk, KV, hd], dout like q (backward). */
extern "C" size_t attention_bf16_io_scratch_bytes(const attn_params *p) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    return 2 * (3 * nq + 2 * nk);
}

typedef struct bf16_io {
    lqa_bf16 *q, *k, *v, *out, *dout;
} bf16_io;

static bf16_io carve_io(const attn_params *p, void *scratch) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    bf16_io io;
    io.q = (lqa_bf16 *)scratch;
    io.k = io.q + nq;
    io.v = io.k + nk;
    io.out = io.v + nk;
    io.dout = io.out + nq;
    return io;
}

/* The scratch carved, and q, k, v rounded into it. */
static bf16_io qkv_to_bf16(const float *q, const float *k, const float *v, const attn_params *p, void *scratch) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    bf16_io io = carve_io(p, scratch);
    bf16_from_f32_cuda(io.q, q, nq);
    bf16_from_f32_cuda(io.k, k, nk);
    bf16_from_f32_cuda(io.v, v, nk);
    return io;
}

extern "C" void attention_bf16_io_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                               const attn_params *p, void *scratch) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd;
    bf16_io io = qkv_to_bf16(q, k, v, p, scratch);
    attention_forward_bf16_cuda(io.out, lse, io.q, io.k, io.v, p);
    bf16_to_f32_cuda(out, io.out, nq);
}

/* scratch: q and out in bf16, 4 B per query value; attention_bf16_io_scratch_bytes of any p with
 * the same B, Tq, H and hd is larger. */
extern "C" void attention_bf16_io_cached_forward_cuda(float *out, float *lse, const float *q, const void *k16,
                                                      const void *v16, const attn_params *p, void *scratch) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd;
    lqa_bf16 *q16 = (lqa_bf16 *)scratch, *out16 = q16 + nq;
    bf16_from_f32_cuda(q16, q, nq);
    attention_forward_bf16_cuda(out16, lse, q16, (const lqa_bf16 *)k16, (const lqa_bf16 *)v16, p);
    bf16_to_f32_cuda(out, out16, nq);
}

extern "C" void attention_bf16_io_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                                const float *lse, const float *q, const float *k, const float *v,
                                                const attn_params *p, void *scratch) {
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd;
    bf16_io io = qkv_to_bf16(q, k, v, p, scratch);
    bf16_from_f32_cuda(io.out, out, nq); /* out is the forward's bf16 output widened: exact */
    bf16_from_f32_cuda(io.dout, dout, nq);
    attention_backward_bf16_cuda(dq, dk, dv, io.dout, io.out, lse, io.q, io.k, io.v, p);
}
