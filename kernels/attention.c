/* kernels/attention.c: tiled causal attention with an online softmax (FlashAttention-2), GQA,
 * segment ids and S2-Attn groups; forward, backward and a naive reference. See attention.h for
 * the layout and the mask rules. No Tq x Tk matrix exists: each thread works on one
 * tile_q x tile_k block of scores at a time.
 *
 * Forward: parallel over (batch, head, query tile); each work item walks its key tiles in order,
 * so results do not depend on the thread count.
 * Backward: parallel over (batch, kv head); a work item owns dK and dV of its kv head and dQ of
 * the H/KV query heads that read it, so no two threads write the same gradient and sums keep a
 * fixed order.
 */
#include "kernels/attention.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/check.h"
#include "kernels/fastmath.h"

enum { TILE_DEFAULT = 64 };
typedef enum { TILE_EMPTY = 0, TILE_PARTIAL = 1, TILE_FULL = 2 } tile_kind;

static int tile_q_of(const attn_params *p) { return p->tile_q > 0 ? p->tile_q : TILE_DEFAULT; }
static int tile_k_of(const attn_params *p) { return p->tile_k > 0 ? p->tile_k : TILE_DEFAULT; }
static int min_int(int a, int b) { return a < b ? a : b; }

int attention_check(const attn_params *p, char *msg, size_t msgsz) {
    if (p->B <= 0 || p->Tq <= 0 || p->Tk <= 0 || p->H <= 0 || p->KV <= 0 || p->hd <= 0)
        return snprintf(msg, msgsz, "attention sizes must be positive (B=%d Tq=%d Tk=%d H=%d KV=%d hd=%d)", p->B,
                        p->Tq, p->Tk, p->H, p->KV, p->hd), -1;
    if (p->H % p->KV != 0)
        return snprintf(msg, msgsz, "n_kv_heads=%d must divide n_heads=%d", p->KV, p->H), -1;
    if (p->Tq > p->Tk) return snprintf(msg, msgsz, "Tq=%d queries exceed Tk=%d keys", p->Tq, p->Tk), -1;
    if (p->group > 0) {
        if (p->Tq != p->Tk)
            return snprintf(msg, msgsz, "S2-Attn is for training: needs Tq == Tk (got %d, %d)", p->Tq, p->Tk), -1;
        if (p->group % 2 != 0 || p->Tk % p->group != 0)
            return snprintf(msg, msgsz, "S2-Attn group size %d must be even and divide T=%d", p->group, p->Tk), -1;
    }
    return 0;
}

/* ---- the mask ------------------------------------------------------------------------------ */

/* S2-Attn group index of position pos for head h (shifted heads move by half a group). */
static inline int s2_index(const attn_params *p, int h, int pos) {
    return h < p->H / 2 ? pos / p->group : (pos + p->group / 2) / p->group;
}
/* First position of the S2 group holding pos for head h. */
static inline int s2_start(const attn_params *p, int h, int pos) {
    int g = s2_index(p, h, pos);
    if (h < p->H / 2) return g * p->group;
    return g == 0 ? 0 : g * p->group - p->group / 2;
}

int attention_visible(const attn_params *p, int b, int h, int i, int j) {
    int pos = p->Tk - p->Tq + i;
    if (j > pos) return 0;
    if (p->group > 0 && s2_index(p, h, pos) != s2_index(p, h, j)) return 0;
    if (p->segment_ids) {
        const int32_t *seg = p->segment_ids + (size_t)b * p->Tk;
        if (seg[pos] < 0 || seg[j] != seg[pos]) return 0;
    }
    return 1;
}

/* Range of valid (>= 0) segment ids in seg[a, e); returns the count of valid ones. */
static int seg_range(const int32_t *seg, int a, int e, int32_t *lo, int32_t *hi) {
    int n = 0;
    for (int x = a; x < e; x++) {
        if (seg[x] < 0) continue;
        if (n == 0 || seg[x] < *lo) *lo = seg[x];
        if (n == 0 || seg[x] > *hi) *hi = seg[x];
        n++;
    }
    return n;
}

/* Classifies the block of queries [i0,i1) x keys [j0,j1) of head h: EMPTY blocks are skipped,
 * FULL blocks need no per-element mask, PARTIAL ones do. */
static tile_kind classify(const attn_params *p, int b, int h, int i0, int i1, int j0, int j1) {
    int off = p->Tk - p->Tq, pos0 = off + i0, pos1 = off + i1 - 1;
    if (j0 > pos1) return TILE_EMPTY;
    int full = j1 - 1 <= pos0;
    if (p->group > 0) {
        if (j1 - 1 < s2_start(p, h, pos0)) return TILE_EMPTY;
        if (s2_start(p, h, pos1) > j0) full = 0;
    }
    if (p->segment_ids) {
        const int32_t *seg = p->segment_ids + (size_t)b * p->Tk;
        int32_t qlo = 0, qhi = 0, klo = 0, khi = 0;
        int nq = seg_range(seg, pos0, pos1 + 1, &qlo, &qhi), nk = seg_range(seg, j0, j1, &klo, &khi);
        if (nq == 0 || nk == 0 || qhi < klo || khi < qlo) return TILE_EMPTY;
        if (nq != i1 - i0 || nk != j1 - j0 || qlo != qhi || klo != khi || qlo != klo) full = 0;
    }
    return full ? TILE_FULL : TILE_PARTIAL;
}

/* ---- tile arithmetic ------------------------------------------------------------------------ */
/* Each block is a few small GEMMs (single-threaded OpenBLAS inside the parallel loop: the
 * threads split the blocks) and vectorised row loops for the mask and the softmax. */

static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

/* Sets the masked scores of a block to -inf: the rule of attention_visible, written as the
 * visible key interval [lo, pos] of each row (causal, S2 segment start) plus a segment-id
 * comparison, so the loops vectorise instead of testing every pair through a call. */
static void mask_block(float *S, const attn_params *p, int b, int h, int i0, int nr, int j0, int nc) {
    const int32_t *seg = p->segment_ids ? p->segment_ids + (size_t)b * p->Tk : NULL;
    for (int r = 0; r < nr; r++) {
        float *Sr = S + (size_t)r * nc;
        int pos = p->Tk - p->Tq + i0 + r;
        int lo = p->group > 0 ? s2_start(p, h, pos) : 0;
        int c_lo = lo - j0 < 0 ? 0 : min_int(lo - j0, nc), c_hi = pos - j0 + 1 < 0 ? 0 : min_int(pos - j0 + 1, nc);
        if (c_hi < c_lo) c_hi = c_lo;
        for (int c = 0; c < c_lo; c++) Sr[c] = -INFINITY;
        for (int c = c_hi; c < nc; c++) Sr[c] = -INFINITY;
        if (!seg) continue;
        int32_t sp = seg[pos];
        const int32_t *sk = seg + j0;
        for (int c = 0; c < nc; c++)
            if (sp < 0 || sk[c] != sp) Sr[c] = -INFINITY;
    }
}

/* S[r][c] = scale * q_r . k_c over the block; masked entries -inf when kind is PARTIAL. */
static void block_scores(float *S, const attn_params *p, int b, int h, const float *q, const float *k, int i0,
                         int nr, int j0, int nc, tile_kind kind, float scale) {
    int hd = p->hd, kvh = h / (p->H / p->KV);
    int qstride = p->H * hd, kstride = p->KV * hd;
    const float *qb = q + ((size_t)b * p->Tq + i0) * qstride + (size_t)h * hd;
    const float *kb = k + ((size_t)b * p->Tk + j0) * kstride + (size_t)kvh * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nc, hd, scale, qb, qstride, kb, kstride, 0.0f, S, nc);
    if (kind == TILE_PARTIAL) mask_block(S, p, b, h, i0, nr, j0, nc);
}

/* ---- forward ------------------------------------------------------------------------------- */

size_t attention_scratch_floats(const attn_params *p, int threads) {
    size_t tq = tile_q_of(p), tk = tile_k_of(p);
    size_t fwd = tq * tk + 3 * tq + tq * p->hd;
    size_t bwd = 2 * tq * tk + p->Tq;
    return (fwd > bwd ? fwd : bwd) * (size_t)(threads > 0 ? threads : 1);
}

/* Online softmax update of one block's rows: S becomes P = exp(S - m_new); corr[r] is the
 * factor the row's running sums shrink by. Rows with nothing visible yet keep P = 0.
 * LQA_SIMD_CLONES: an AVX2 build of the exp loops, chosen at load time where the CPU has it. */
LQA_SIMD_CLONES static void softmax_update(float *S, float *m, float *l, float *corr, int nr, int nc) {
    for (int r = 0; r < nr; r++) {
        float *Sr = S + (size_t)r * nc, mx = m[r];
#pragma omp simd reduction(max : mx)
        for (int c = 0; c < nc; c++) mx = Sr[c] > mx ? Sr[c] : mx;
        if (mx == -INFINITY) { /* nothing visible yet in this row */
            memset(Sr, 0, sizeof(float) * nc);
            corr[r] = 1.0f;
            continue;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < nc; c++) {
            Sr[c] = lqa_expf(Sr[c] - mx);
            sum += Sr[c];
        }
        corr[r] = lqa_expf(m[r] - mx);
        l[r] = l[r] * corr[r] + sum;
        m[r] = mx;
    }
}

/* One (batch, head, query tile): the online softmax over its key tiles. */
static void forward_item(float *out, float *lse, const float *q, const float *k, const float *v,
                         const attn_params *p, int b, int h, int i0, float *ws) {
    int tq = tile_q_of(p), tk = tile_k_of(p), hd = p->hd, nr = min_int(tq, p->Tq - i0);
    int kvh = h / (p->H / p->KV);
    int ostride = p->H * hd, kstride = p->KV * hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *S = ws, *m = S + (size_t)tq * tk, *l = m + tq, *corr = l + tq, *acc = corr + tq;
    for (int r = 0; r < nr; r++) m[r] = -INFINITY, l[r] = 0.0f;
    memset(acc, 0, sizeof(float) * (size_t)nr * hd);
    for (int j0 = 0; j0 < p->Tk; j0 += tk) {
        int nc = min_int(tk, p->Tk - j0);
        tile_kind kind = classify(p, b, h, i0, i0 + nr, j0, j0 + nc);
        if (kind == TILE_EMPTY) continue;
        block_scores(S, p, b, h, q, k, i0, nr, j0, nc, kind, scale);
        softmax_update(S, m, l, corr, nr, nc);
        for (int r = 0; r < nr; r++)
            if (corr[r] != 1.0f)
                for (int d = 0; d < hd; d++) acc[(size_t)r * hd + d] *= corr[r];
        /* acc += P V */
        const float *vb = v + ((size_t)b * p->Tk + j0) * kstride + (size_t)kvh * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nc, 1.0f, S, nc, vb, kstride, 1.0f, acc, hd);
    }
    for (int r = 0; r < nr; r++) {
        float *orow = out + ((size_t)b * p->Tq + i0 + r) * ostride + (size_t)h * hd;
        float *lrow = lse + ((size_t)b * p->H + h) * p->Tq + i0 + r;
        if (l[r] == 0.0f) { /* padding query or nothing visible: no output, P = 0 in backward */
            memset(orow, 0, sizeof(float) * hd);
            *lrow = INFINITY;
            continue;
        }
        float inv = 1.0f / l[r];
        for (int d = 0; d < hd; d++) orow[d] = acc[(size_t)r * hd + d] * inv;
        *lrow = m[r] + logf(l[r]);
    }
}

/* Rough element count of the score work, to keep tiny calls off the thread pool. */
static size_t attn_work(const attn_params *p) { return (size_t)p->B * p->H * p->Tq * p->Tk / 2 * p->hd / 16; }

static void check_or_die(const attn_params *p) {
    char msg[256];
    if (attention_check(p, msg, sizeof msg) != 0) lqa_fatal("attention: %s", msg);
}

void attention_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v,
                           const attn_params *p, float *scratch) {
    check_or_die(p);
    (void)kernels_get_threads(); /* OpenBLAS single-threaded inside the parallel loop */
    int tq = tile_q_of(p), nqt = (p->Tq + tq - 1) / tq;
    size_t per_thread = attention_scratch_floats(p, 1);
    int items = p->B * p->H * nqt;
#pragma omp parallel for schedule(static) if (LQA_PAR(attn_work(p)))
    for (int it = 0; it < items; it++) {
        int b = it / (p->H * nqt), h = (it / nqt) % p->H, qt = it % nqt;
        forward_item(out, lse, q, k, v, p, b, h, qt * tq, scratch + per_thread * omp_get_thread_num());
    }
}

/* ---- backward ------------------------------------------------------------------------------ */

/* P = exp(S - lse) row by row (masked: 0; padding rows: lse = +inf). */
LQA_SIMD_CLONES static void block_probs(float *P, const float *lrow, int nr, int nc) {
    for (int r = 0; r < nr; r++) {
        float *Pr = P + (size_t)r * nc, lr = lrow[r];
#pragma omp simd
        for (int c = 0; c < nc; c++) Pr[c] = lqa_expf(Pr[c] - lr);
    }
}

/* One query block x key block of head h: accumulates dV, dK of the key rows and dQ of the query
 * rows. P = exp(S - lse); dP = dO V^T; dS = P (dP - D); dQ += scale dS K; dK += scale dS^T Q. */
static void backward_block(float *dq, float *dk, float *dv, const float *dout, const float *lse,
                           const float *q, const float *k, const float *v, const float *Drow,
                           const attn_params *p, int b, int h, int i0, int nr, int j0, int nc, tile_kind kind,
                           float *P, float *dS) {
    int hd = p->hd, kvh = h / (p->H / p->KV);
    int qstride = p->H * hd, kstride = p->KV * hd;
    float scale = 1.0f / sqrtf((float)hd);
    block_scores(P, p, b, h, q, k, i0, nr, j0, nc, kind, scale);
    const float *lrow = lse + ((size_t)b * p->H + h) * p->Tq + i0;
    size_t qoff = ((size_t)b * p->Tq + i0) * qstride + (size_t)h * hd;
    size_t koff = ((size_t)b * p->Tk + j0) * kstride + (size_t)kvh * hd;
    block_probs(P, lrow, nr, nc);
    /* dV += P^T dO ; dP = dO V^T */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, hd, nr, 1.0f, P, nc, dout + qoff, qstride, 1.0f,
                dv + koff, kstride);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nc, hd, 1.0f, dout + qoff, qstride, v + koff, kstride,
                0.0f, dS, nc);
    for (int r = 0; r < nr; r++) {
        float *Pr = P + (size_t)r * nc, *dSr = dS + (size_t)r * nc, Dr = Drow[i0 + r];
#pragma omp simd
        for (int c = 0; c < nc; c++) dSr[c] = Pr[c] * (dSr[c] - Dr);
    }
    /* dQ += scale dS K ; dK += scale dS^T Q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nc, scale, dS, nc, k + koff, kstride, 1.0f,
                dq + qoff, qstride);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, hd, nr, scale, dS, nc, q + qoff, qstride, 1.0f,
                dk + koff, kstride);
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                            const float *q, const float *k, const float *v, const attn_params *p, float *scratch) {
    check_or_die(p);
    (void)kernels_get_threads();
    int tq = tile_q_of(p), tk = tile_k_of(p), R = p->H / p->KV;
    size_t per_thread = attention_scratch_floats(p, 1), qstride = (size_t)p->H * p->hd;
    int items = p->B * p->KV;
#pragma omp parallel for schedule(static) if (LQA_PAR(attn_work(p)))
    for (int it = 0; it < items; it++) {
        int b = it / p->KV, kvh = it % p->KV;
        float *ws = scratch + per_thread * omp_get_thread_num();
        float *P = ws, *dS = P + (size_t)tq * tk, *Drow = dS + (size_t)tq * tk;
        for (int h = kvh * R; h < (kvh + 1) * R; h++) {
            for (int i = 0; i < p->Tq; i++) { /* D_i = dO_i . O_i */
                size_t o = ((size_t)b * p->Tq + i) * qstride + (size_t)h * p->hd;
                Drow[i] = dot(dout + o, out + o, p->hd);
            }
            for (int j0 = 0; j0 < p->Tk; j0 += tk) {
                int nc = min_int(tk, p->Tk - j0);
                for (int i0 = 0; i0 < p->Tq; i0 += tq) {
                    int nr = min_int(tq, p->Tq - i0);
                    tile_kind kind = classify(p, b, h, i0, i0 + nr, j0, j0 + nc);
                    if (kind == TILE_EMPTY) continue;
                    backward_block(dq, dk, dv, dout, lse, q, k, v, Drow, p, b, h, i0, nr, j0, nc, kind, P, dS);
                }
            }
        }
    }
}

size_t attention_count_tiles(const attn_params *p, size_t *total) {
    int tq = tile_q_of(p), tk = tile_k_of(p);
    size_t visited = 0, all = 0;
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i0 = 0; i0 < p->Tq; i0 += tq)
                for (int j0 = 0; j0 < p->Tk; j0 += tk) {
                    all++;
                    visited += classify(p, b, h, i0, min_int(i0 + tq, p->Tq), j0, min_int(j0 + tk, p->Tk)) != TILE_EMPTY;
                }
    if (total) *total = all;
    return visited;
}

/* ---- naive reference ------------------------------------------------------------------------ */

void attention_forward_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                           const attn_params *p) {
    check_or_die(p);
    int hd = p->hd;
    size_t qstride = (size_t)p->H * hd, kstride = (size_t)p->KV * hd;
    double *row = lqa_malloc(sizeof(double) * p->Tk);
    double *acc = lqa_malloc(sizeof(double) * hd);
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->Tq; i++) {
                int kvh = h / (p->H / p->KV);
                const float *qi = q + ((size_t)b * p->Tq + i) * qstride + (size_t)h * hd;
                double mx = -INFINITY;
                for (int j = 0; j < p->Tk; j++) {
                    row[j] = -INFINITY;
                    if (!attention_visible(p, b, h, i, j)) continue;
                    const float *kj = k + ((size_t)b * p->Tk + j) * kstride + (size_t)kvh * hd;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += (double)qi[d] * kj[d];
                    row[j] = s / sqrt((double)hd);
                    if (row[j] > mx) mx = row[j];
                }
                float *oi = out + ((size_t)b * p->Tq + i) * qstride + (size_t)h * hd;
                float *li = lse + ((size_t)b * p->H + h) * p->Tq + i;
                if (mx == -INFINITY) {
                    memset(oi, 0, sizeof(float) * hd);
                    *li = INFINITY;
                    continue;
                }
                double sum = 0;
                memset(acc, 0, sizeof(double) * hd);
                for (int j = 0; j < p->Tk; j++) {
                    if (row[j] == -INFINITY) continue;
                    double w = exp(row[j] - mx);
                    sum += w;
                    const float *vj = v + ((size_t)b * p->Tk + j) * kstride + (size_t)kvh * hd;
                    for (int d = 0; d < hd; d++) acc[d] += w * vj[d];
                }
                for (int d = 0; d < hd; d++) oi[d] = (float)(acc[d] / sum);
                *li = (float)(mx + log(sum));
            }
    free(row);
    free(acc);
}
