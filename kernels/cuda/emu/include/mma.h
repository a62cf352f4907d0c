/* kernels/cuda/emu/include/mma.h: the emulator's nvcuda::wmma for bf16 16x16x16 tiles with fp32
 * accumulators (see ../emu.h): fragment, fill_fragment, load_matrix_sync, store_matrix_sync and
 * mma_sync, with the semantics of the real warp-collective operations:
 *  - every lane of the warp must call them with the same pointer and ldm (checked), else the
 *    emulator aborts (a divergent call deadlocks, as on hardware);
 *  - the pointer must be 256-bit aligned and ldm a multiple of 16 bytes (checked);
 *  - a fragment's elements are spread over the 32 lanes (8 each) in an order the kernel cannot
 *    rely on: here a scrambled one, unlike any real layout, so code that assumes which element a
 *    lane holds gives wrong results; only uniform element-wise work on x[] is portable;
 *  - store_matrix_sync writes after a warp barrier and returns without a second one, so a lane
 *    that reads what other lanes stored without a __syncwarp first reads stale memory;
 *  - mma_sync gathers the warp's fragments, so each lane's result needs every lane's inputs.
 * Products of two bf16 values are exact in fp32; the sums are fp32, in k order. */
#ifndef LQA_CUDA_EMU_MMA_H
#define LQA_CUDA_EMU_MMA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <type_traits>

#include "cuda_bf16.h"
#include "kernels/cuda/emu/emu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the emulator has the 16x16x16 shape only");
    enum { num_elements = 8 };
    T x[num_elements];
};

/* ---- emulator internals ---- */

struct emu_wmma_warp {
    float a[256], b[256], c[256];
    const void *ptr[32];
    unsigned ldm[32];
};
inline emu_wmma_warp emu_wmma_stage[32];

[[noreturn]] inline void emu_wmma_die(const char *what) {
    fprintf(stderr, "cuda emulator: wmma: %s (block %u,%u thread %u)\n", what, emu_blockIdx.x, emu_blockIdx.y,
            emu_threadIdx.x);
    abort();
}
inline int emu_wmma_tid(void) {
    if ((emu_blockDim.x * emu_blockDim.y * emu_blockDim.z) % 32 != 0) emu_wmma_die("block size not a multiple of 32");
    return (int)(emu_threadIdx.x + emu_blockDim.x * (emu_threadIdx.y + emu_blockDim.y * emu_threadIdx.z));
}
inline void emu_wmma_barrier(void) { (void)emu_shfl_float(0.0f, 0); }
/* Element e of lane l's fragment is element emu_wmma_pos(l, e) = row * 16 + col of the tile. */
inline int emu_wmma_pos(int lane, int e) { return ((lane * 8 + e) * 101 + 37) & 255; }

/* Every lane posts (ptr, ldm); after the barrier each checks the others'. */
inline void emu_wmma_uniform(const void *ptr, unsigned ldm, size_t elem_bytes) {
    int t = emu_wmma_tid(), w = t / 32, lane = t % 32;
    if ((uintptr_t)ptr % 32 != 0) emu_wmma_die("pointer not 256-bit aligned");
    if ((ldm * elem_bytes) % 16 != 0) emu_wmma_die("ldm not a multiple of 16 bytes");
    emu_wmma_stage[w].ptr[lane] = ptr;
    emu_wmma_stage[w].ldm[lane] = ldm;
    emu_wmma_barrier();
    for (int l = 0; l < 32; l++)
        if (emu_wmma_stage[w].ptr[l] != ptr || emu_wmma_stage[w].ldm[l] != ldm)
            emu_wmma_die("lanes of a warp passed different pointers or ldm");
    emu_wmma_barrier(); /* nobody posts again before everyone has checked */
}
inline float emu_wmma_get(float v) { return v; }
inline float emu_wmma_get(__nv_bfloat16 v) { return __bfloat162float(v); }
inline void emu_wmma_set(float *d, float v) { *d = v; }
inline void emu_wmma_set(__nv_bfloat16 *d, float v) { *d = __float2bfloat16_rn(v); }
template <typename L>
inline size_t emu_wmma_offset(int pos, unsigned ldm) {
    int r = pos / 16, c = pos % 16;
    return std::is_same<L, row_major>::value ? (size_t)r * ldm + c : (size_t)c * ldm + r;
}

/* ---- the API ---- */

template <typename Use, typename T, typename L, typename V>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, const V &v) {
    for (int e = 0; e < 8; e++) emu_wmma_set(&f.x[e], emu_wmma_get(v));
}

template <typename Use, typename T, typename L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load takes a layout_t");
    emu_wmma_uniform(p, ldm, sizeof(T));
    int lane = emu_wmma_tid() % 32;
    for (int e = 0; e < 8; e++) f.x[e] = p[emu_wmma_offset<L>(emu_wmma_pos(lane, e), ldm)];
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l) {
    emu_wmma_uniform(p, ldm, sizeof(float));
    int lane = emu_wmma_tid() % 32;
    for (int e = 0; e < 8; e++) {
        int pos = emu_wmma_pos(lane, e);
        f.x[e] = p[l == mem_row_major ? emu_wmma_offset<row_major>(pos, ldm) : emu_wmma_offset<col_major>(pos, ldm)];
    }
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
    emu_wmma_uniform(p, ldm, sizeof(float));
    int lane = emu_wmma_tid() % 32;
    for (int e = 0; e < 8; e++) {
        int pos = emu_wmma_pos(lane, e);
        p[l == mem_row_major ? emu_wmma_offset<row_major>(pos, ldm) : emu_wmma_offset<col_major>(pos, ldm)] = f.x[e];
    }
}

/* d = a b + c, fp32 accumulation. d may be c. */
template <typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    int t = emu_wmma_tid(), lane = t % 32;
    emu_wmma_warp &s = emu_wmma_stage[t / 32];
    for (int e = 0; e < 8; e++) {
        int pos = emu_wmma_pos(lane, e);
        s.a[pos] = __bfloat162float(a.x[e]);
        s.b[pos] = __bfloat162float(b.x[e]);
        s.c[pos] = c.x[e];
    }
    emu_wmma_barrier();
    for (int e = 0; e < 8; e++) {
        int pos = emu_wmma_pos(lane, e), r = pos / 16, col = pos % 16;
        float acc = s.c[pos];
        for (int k = 0; k < 16; k++) acc += s.a[r * 16 + k] * s.b[k * 16 + col];
        d.x[e] = acc;
    }
    emu_wmma_barrier(); /* the stage is reused by the next call */
}

} // namespace wmma
} // namespace nvcuda

#endif
