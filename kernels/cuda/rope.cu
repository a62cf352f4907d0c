/* kernels/cuda/rope.cu: rotary embedding (HF rotate_half convention): the angle table, and the
 * in-place rotation forward (+angle) and backward (-angle), one thread per rotated pair (the
 * twins of rope.c; the inverse frequencies come from rope_inv_freq, as on the CPU, and the angles
 * are computed in double like the CPU's, then rounded to float). */
#include "kernels/cuda/internal.cuh"

enum { ROPE_THREADS = 256 };

/* rope_inv_freq's values for the table being built (hd/2 <= ROPE_MAX_HEAD_DIM/2 entries). */
__constant__ double c_inv_freq[ROPE_MAX_HEAD_DIM / 2];

__global__ void rope_table_kernel(float *cos_t, float *sin_t, int T, int hd, int pos0, double scale) {
    int half = hd / 2;
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * half) return;
    int t = (int)(idx / half), i = (int)(idx % half);
    double pos = (double)(pos0 + t) / scale; /* HF linear scaling: position / factor */
    double a = pos * c_inv_freq[i];
    cos_t[idx] = (float)cos(a);
    sin_t[idx] = (float)sin(a);
}

/* Pair (x_i, x_{i+half}) of one head of one row: x_i' = x_i c - x_{i+half} s,
 * x_{i+half}' = x_{i+half} c + x_i s with s = sign * sin. */
__global__ void rope_apply_kernel(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads,
                                  int hd, float sign) {
    int half = hd / 2;
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t pairs_per_row = (size_t)n_heads * half;
    if (idx >= (size_t)B * T * pairs_per_row) return;
    size_t row = idx / pairs_per_row; /* b * T + t */
    int rem = (int)(idx % pairs_per_row), h = rem / half, i = rem % half;
    int t = (int)(row % T);
    float c = cos_t[(size_t)t * half + i], s = sign * sin_t[(size_t)t * half + i];
    float *v = x + row * (size_t)n_heads * hd + (size_t)h * hd;
    float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
}

extern "C" void rope_table_cuda(float *cos_t, float *sin_t, int T, int hd, int pos0, const rope_spec *r) {
    size_t n = (size_t)T * (hd / 2);
    if (n == 0) return;
    lqaCheck(hd <= ROPE_MAX_HEAD_DIM, "rope_table_cuda: head dim %d is over %d", hd, ROPE_MAX_HEAD_DIM);
    double inv_freq[ROPE_MAX_HEAD_DIM / 2];
    rope_inv_freq(inv_freq, hd, r);
    cudaCheck(cudaMemcpyToSymbol(c_inv_freq, inv_freq, sizeof(double) * (size_t)(hd / 2)));
    double scale = r->scale > 0 ? r->scale : 1.0;
    rope_table_kernel<<<lqa_blocks_for(n, ROPE_THREADS), ROPE_THREADS>>>(cos_t, sin_t, T, hd, pos0, scale);
    cudaCheckLaunch();
}

static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd,
                       float sign) {
    size_t n = (size_t)B * T * n_heads * (hd / 2);
    if (n == 0) return;
    rope_apply_kernel<<<lqa_blocks_for(n, ROPE_THREADS), ROPE_THREADS>>>(x, cos_t, sin_t, B, T, n_heads, hd, sign);
    cudaCheckLaunch();
}

extern "C" void rope_forward_cuda(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads,
                                  int hd) {
    rope_apply(x, cos_t, sin_t, B, T, n_heads, hd, 1.0f);
}

/* The rotation is orthogonal: its transpose is the rotation by the negative angle. */
extern "C" void rope_backward_cuda(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads,
                                   int hd) {
    rope_apply(dx, cos_t, sin_t, B, T, n_heads, hd, -1.0f);
}
