/* kernels/crossentropy_bf16.h: the fused, chunked lm_head + cross-entropy of the bf16 CUDA path
 * (kernels/cuda/crossentropy_bf16.cu), the twin of crossentropy_fused_cpu/_cuda with bf16 x and
 * W: per chunk of target rows, gather x (bf16), logits = x W^T on cuBLASLt in fp32, the loss and
 * dlogits in fp32 (crossentropy_forward/backward_cuda), dlogits rounded to bf16 for the two
 * backward GEMMs, dW += dlogits^T x and dx += dlogits W in fp32 (either may be NULL: forward
 * only, the loss still computed). Rows with no target do no work; logits exist for one chunk only.
 *   x [N, D] bf16, W [V, D] bf16, targets [N] (device), dx [N, D] fp32, dW [V, D] fp32
 * Returns the SUM of the target rows' losses (summed on the host in double, in row order:
 * deterministic), like the fp32 versions. scratch: crossentropy_bf16_scratch_bytes() device bytes. */
#ifndef LQA_KERNELS_CROSSENTROPY_BF16_H
#define LQA_KERNELS_CROSSENTROPY_BF16_H

#include "kernels/bf16.h"

size_t crossentropy_bf16_scratch_bytes(int chunk, int D, int V);

#ifdef LQA_CUDA
double crossentropy_fused_bf16_cuda(float *dx, float *dW, const lqa_bf16 *x, const lqa_bf16 *W,
                                    const int32_t *targets, int N, int D, int V, float grad_scale, int chunk,
                                    void *scratch);
/* The model's form (kernels/backend.h crossentropy_bf16_rows; crossentropy_fused_rows' contract
 * with a frozen bf16 W): x fp32 [N, D], its target rows (rows[0..n_rows), device) rounded to bf16
 * per chunk; the losses ADDED to *loss_sum (device) in row order; dx (may be NULL) += . Nothing
 * waits for the device. */
void crossentropy_fused_rows_bf16_cuda(float *dx, const float *x, const void *W16, const int32_t *targets,
                                       const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                       void *scratch, double *loss_sum);
#endif

#endif
