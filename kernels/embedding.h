/* kernels/embedding.h: token embedding lookup x[n] = wte[tokens[n]], and its backward (scatter-add
 * into the rows of the tokens seen, in a fixed order so the sum is deterministic).
 *   tokens [N] (each in [0, V)), wte [V, D], x [N, D]
 */
#ifndef LQA_KERNELS_EMBEDDING_H
#define LQA_KERNELS_EMBEDDING_H

#include "kernels/common.h"

void embedding_forward_cpu(float *x, const int32_t *tokens, const float *wte, int N, int D);
/* dwte[tokens[n]] += dx[n]. */
void embedding_backward_cpu(float *dwte, const float *dx, const int32_t *tokens, int N, int D);

#ifdef LQA_CUDA
void embedding_forward_cuda(float *x, const int32_t *tokens, const float *wte, int N, int D);
void embedding_backward_cuda(float *dwte, const float *dx, const int32_t *tokens, int N, int D);
#endif

#endif
