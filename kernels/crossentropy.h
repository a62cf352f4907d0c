/* kernels/crossentropy.h: next-token cross-entropy, and the fused "lm_head + loss" that works on
 * a chunk of rows at a time, so full-vocabulary logits for the whole sequence never exist.
 *
 * targets[n] is the token row n must predict, or < 0 when row n is not a target (no loss, no
 * gradient). The model maps the HF convention (loss_mask[b][t] = 1: token t predicted from
 * position t-1) to targets[b*T + t-1] = tokens[b*T + t].
 */
#ifndef LQA_KERNELS_CROSSENTROPY_H
#define LQA_KERNELS_CROSSENTROPY_H

#include "kernels/common.h"

/* losses[n] = logsumexp(logits[n]) - logits[n][targets[n]] (0 where targets[n] < 0). */
void crossentropy_forward_cpu(float *losses, const float *logits, const int32_t *targets, int N, int V);
/* In place on logits: dlogits[n] = grad_scale * (softmax(logits[n]) - onehot(targets[n])), rows
 * with targets[n] < 0 become 0. (In place because the chunked path never keeps logits.) */
void crossentropy_backward_cpu(float *logits, const int32_t *targets, int N, int V, float grad_scale);

/* Fused, chunked: for each chunk of `chunk` rows: logits = x W^T; loss; dlogits (scaled by
 * grad_scale); dx += dlogits W; dW += dlogits^T x (dx, dW may be NULL: then forward only, but
 * the loss is still computed). Rows with no target are skipped entirely (no GEMM work).
 *   x [N, D], W [V, D], scratch: crossentropy_scratch_floats(chunk, D, V) floats.
 * Returns the SUM of the losses of the target rows (the caller divides by the target count). */
double crossentropy_fused_cpu(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                              int N, int D, int V, float grad_scale, int chunk, float *scratch);
size_t crossentropy_scratch_floats(int chunk, int D, int V);

/* The model's form of the fused loss: the caller lists the target rows (rows[0..n_rows), in
 * increasing order, in the same memory as the other arrays), and the losses are ADDED to
 * *loss_sum (one double, same memory) in row order: nothing comes back to the host, so a GPU
 * step never waits for its loss. Same results as crossentropy_fused_cpu. */
void crossentropy_fused_rows_cpu(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                                 const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                 float *scratch, double *loss_sum);
/* *acc += (float)(*loss_sum / count) (the batch's mean loss, rounded to float as the model
 * reports it); nothing when count is 0. */
void crossentropy_mean_add_cpu(double *acc, const double *loss_sum, long count);

#ifdef LQA_CUDA
void crossentropy_forward_cuda(float *losses, const float *logits, const int32_t *targets, int N, int V);
void crossentropy_backward_cuda(float *logits, const int32_t *targets, int N, int V, float grad_scale);
double crossentropy_fused_cuda(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                               int N, int D, int V, float grad_scale, int chunk, float *scratch);
void crossentropy_fused_rows_cuda(float *dx, float *dW, const float *x, const float *W, const int32_t *targets,
                                  const int32_t *rows, int n_rows, int D, int V, float grad_scale, int chunk,
                                  float *scratch, double *loss_sum);
void crossentropy_mean_add_cuda(double *acc, const double *loss_sum, long count);
#endif

#endif
