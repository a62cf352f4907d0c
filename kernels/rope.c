/* kernels/rope.c: rotary embedding (HF rotate_half convention): the inverse frequencies of a RoPE
 * configuration (default and llama3), the angle table, forward and backward in place. */
#include "kernels/rope.h"

#include <math.h>
#include <stdlib.h>

#include "common/check.h"

void rope_inv_freq(double *inv_freq, int hd, const rope_spec *r) {
    const double two_pi = 6.283185307179586476925286766559;
    for (int i = 0; i < hd / 2; i++) {
        double f = 1.0 / pow((double)r->theta, (2.0 * i) / hd);
        if (r->llama3) {
            double orig = (double)r->original_max_pos, lo = r->low_freq_factor, hi = r->high_freq_factor;
            double wavelen = two_pi / f;
            if (wavelen > orig / lo) f /= r->factor;  /* low frequencies: interpolated */
            else if (wavelen >= orig / hi) {          /* the band between: a smooth blend */
                double s = (orig / wavelen - lo) / (hi - lo);
                f = (1.0 - s) * f / r->factor + s * f;
            } /* high frequencies: unchanged */
        }
        inv_freq[i] = f;
    }
}

void rope_table_cpu(float *cos_t, float *sin_t, int T, int hd, int pos0, const rope_spec *r) {
    int half = hd / 2;
    double *inv_freq = lqa_malloc(sizeof(double) * (size_t)(half + 1));
    rope_inv_freq(inv_freq, hd, r);
    double scale = r->scale > 0 ? r->scale : 1.0;
    for (int t = 0; t < T; t++) {
        double pos = (double)(pos0 + t) / scale; /* HF linear scaling: position / factor */
        for (int i = 0; i < half; i++) {
            double a = pos * inv_freq[i];
            cos_t[(size_t)t * half + i] = (float)cos(a);
            sin_t[(size_t)t * half + i] = (float)sin(a);
        }
    }
    free(inv_freq);
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
