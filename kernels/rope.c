/* kernels/rope.c: rotary embedding (HF rotate_half convention), forward and backward in place. */
#include "kernels/rope.h"

#include <math.h>

void rope_table_cpu(float *cos_t, float *sin_t, int T, int hd, int pos0, float theta, float scale) {
    int half = hd / 2;
    for (int t = 0; t < T; t++) {
        /* HF: inv_freq = 1 / theta^(2i/hd); t_scaled = position / factor (linear scaling) */
        double pos = (double)(pos0 + t) / scale;
        for (int i = 0; i < half; i++) {
            double inv_freq = 1.0 / pow((double)theta, (2.0 * i) / hd);
            double a = pos * inv_freq;
            cos_t[(size_t)t * half + i] = (float)cos(a);
            sin_t[(size_t)t * half + i] = (float)sin(a);
        }
    }
}

/* Rotates pairs (x_i, x_{i+half}) by +angle (sign = 1) or -angle (sign = -1):
 * x_i' = x_i c - x_{i+half} s, x_{i+half}' = x_{i+half} c + x_i s. */
static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd,
                       float sign) {
    int half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static) if (LQA_PAR((size_t)B * T * n_heads * hd))
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
            float *row = x + ((size_t)b * T + t) * (size_t)n_heads * hd;
            for (int h = 0; h < n_heads; h++) {
                float *v = row + (size_t)h * hd;
                for (int i = 0; i < half; i++) {
                    float a = v[i], bb = v[i + half], si = sign * s[i];
                    v[i] = a * c[i] - bb * si;
                    v[i + half] = bb * c[i] + a * si;
                }
            }
        }
    }
}

void rope_forward_cpu(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd) {
    rope_apply(x, cos_t, sin_t, B, T, n_heads, hd, 1.0f);
}

/* The rotation is orthogonal: its transpose is the rotation by the negative angle. */
void rope_backward_cpu(float *dx, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd) {
    rope_apply(dx, cos_t, sin_t, B, T, n_heads, hd, -1.0f);
}
