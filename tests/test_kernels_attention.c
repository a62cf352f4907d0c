/* test_kernels_attention.c: the tiled flash attention against a naive double-precision
 * attention under an EXPLICITLY built mask (the design's S2 segments written out as lists),
 * for several lengths, group ratios, GQA layouts, tile sizes, packed segments and padding;
 * finite-difference gradients in each mode; Tq < Tk (KV-cache) queries; the perturbation test
 * (no output depends on a later position); and the tile skipping of S2-Attn. */
#include "tests/testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/attention.h"
#include "kernels/common.h"
#include "tests/test_fd_util.h"

static lqa_rng rng;

static int setup(void **state) {
    lqa_rng_seed(&rng, lqa_test_seed());
    return 0;
}

/* The design's S2 segments as explicit lists: plain heads [0,G),[G,2G),...; shifted heads
 * [0,G/2),[G/2,3G/2),...,[T-G/2,T). seg_of[p] = index of the segment holding p. */
static void s2_segments(int *seg_of, int T, int G, int shifted) {
    int start = 0, idx = 0;
    while (start < T) {
        int len = shifted && start == 0 ? G / 2 : G;
        int end = start + len < T ? start + len : T;
        for (int p = start; p < end; p++) seg_of[p] = idx;
        start = end;
        idx++;
    }
}

/* mask[((b*H + h)*Tq + i)*Tk + j] built from the definitions, independently of the kernel. */
static uint8_t *explicit_mask(const attn_params *p) {
    int T = p->Tk, off = p->Tk - p->Tq;
    uint8_t *mask = calloc((size_t)p->B * p->H * p->Tq * p->Tk, 1);
    int *plain = calloc(T, sizeof(int)), *shifted = calloc(T, sizeof(int));
    if (p->group) {
        s2_segments(plain, T, p->group, 0);
        s2_segments(shifted, T, p->group, 1);
    }
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            const int *grp = h < p->H / 2 ? plain : shifted;
            for (int i = 0; i < p->Tq; i++)
                for (int j = 0; j < p->Tk; j++) {
                    int pos = off + i, ok = j <= pos;
                    if (p->group && grp[pos] != grp[j]) ok = 0;
                    if (p->segment_ids) {
                        const int32_t *sg = p->segment_ids + (size_t)b * p->Tk;
                        if (sg[pos] < 0 || sg[pos] != sg[j]) ok = 0;
                    }
                    mask[(((size_t)b * p->H + h) * p->Tq + i) * p->Tk + j] = (uint8_t)ok;
                }
        }
    free(plain);
    free(shifted);
    return mask;
}

/* Naive softmax attention in double under the mask; out rows with no visible key are 0. */
static void naive_attention(double *out, double *lse, const float *q, const float *k, const float *v,
                            const attn_params *p, const uint8_t *mask) {
    int hd = p->hd, R = p->H / p->KV;
    double *s = calloc(p->Tk, sizeof(double));
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->Tq; i++) {
                const uint8_t *mrow = mask + (((size_t)b * p->H + h) * p->Tq + i) * p->Tk;
                const float *qi = q + (((size_t)b * p->Tq + i) * p->H + h) * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < p->Tk; j++) {
                    if (!mrow[j]) continue;
                    const float *kj = k + (((size_t)b * p->Tk + j) * p->KV + h / R) * hd;
                    double d = 0;
                    for (int x = 0; x < hd; x++) d += (double)qi[x] * kj[x];
                    s[j] = d / sqrt(hd);
                    mx = fmax(mx, s[j]);
                }
                double *oi = out + (((size_t)b * p->Tq + i) * p->H + h) * hd;
                memset(oi, 0, sizeof(double) * hd);
                lse[((size_t)b * p->H + h) * p->Tq + i] = INFINITY;
                if (mx == -INFINITY) continue;
                for (int j = 0; j < p->Tk; j++) {
                    if (!mrow[j]) continue;
                    double w = exp(s[j] - mx);
                    sum += w;
                    const float *vj = v + (((size_t)b * p->Tk + j) * p->KV + h / R) * hd;
                    for (int x = 0; x < hd; x++) oi[x] += w * vj[x];
                }
                for (int x = 0; x < hd; x++) oi[x] /= sum;
                lse[((size_t)b * p->H + h) * p->Tq + i] = mx + log(sum);
            }
    free(s);
}

/* Packed records: random segment lengths with increasing ids, a padded tail (id -1). */
static int32_t *random_segments(int B, int T) {
    int32_t *seg = malloc(sizeof(int32_t) * B * T);
    for (int b = 0; b < B; b++) {
        int pad = (int)lqa_rng_below(&rng, T / 4 + 1), id = 0, left = 0;
        for (int t = 0; t < T; t++) {
            if (t >= T - pad) {
                seg[b * T + t] = -1;
                continue;
            }
            if (left == 0) left = 1 + (int)lqa_rng_below(&rng, T / 2 + 1), id++;
            seg[b * T + t] = id;
            left--;
        }
    }
    return seg;
}

typedef struct {
    attn_params p;
    float *q, *k, *v, *out, *lse, *scratch;
    int32_t *seg;
} attn_case;

static int pick(const int *xs, int n) { return xs[lqa_rng_below(&rng, n)]; }

/* A random valid case. mode: 0 full causal, 1 S2, 2 full + segments, 3 S2 + segments. */
static void make_case(attn_case *c, int mode) {
    static const int KVs[] = {1, 2, 4}, Rs[] = {1, 2, 3}, hds[] = {2, 4, 8, 16}, tiles[] = {1, 3, 4, 8, 16, 64};
    static const int ratio_den[] = {2, 4, 8};
    memset(c, 0, sizeof *c);
    attn_params *p = &c->p;
    p->B = 1 + (int)lqa_rng_below(&rng, 2);
    p->KV = pick(KVs, 3);
    p->H = p->KV * pick(Rs, 3);
    if (p->H == 1 && (mode & 1)) p->H = 2;
    if (p->H % p->KV) p->KV = 1;
    p->hd = pick(hds, 4);
    if (mode & 1) {
        int den = pick(ratio_den, 3), G = 2 * (1 + (int)lqa_rng_below(&rng, 6));
        p->group = G;
        p->Tq = p->Tk = G * den; /* T * (1/den) = G */
    } else {
        p->Tk = 1 + (int)lqa_rng_below(&rng, 70);
        p->Tq = p->Tk;
    }
    p->tile_q = pick(tiles, 6);
    p->tile_k = pick(tiles, 6);
    if (mode & 2) c->seg = random_segments(p->B, p->Tk), p->segment_ids = c->seg;
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    c->q = fd_randn(&rng, nq, 1);
    c->k = fd_randn(&rng, nk, 1);
    c->v = fd_randn(&rng, nk, 1);
    c->out = fd_zeros(nq);
    c->lse = fd_zeros((size_t)p->B * p->H * p->Tq);
    c->scratch = fd_zeros(attention_scratch_floats(p, omp_get_max_threads()));
    char msg[256];
    assert_int_equal(attention_check(p, msg, sizeof msg), 0);
}

static void free_case(attn_case *c) { fd_free_all(c->q, c->k, c->v, c->out, c->lse, c->scratch, c->seg, NULL); }

static void compare_with_naive(attn_case *c, const char *what) {
    attn_params *p = &c->p;
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nl = (size_t)p->B * p->H * p->Tq;
    uint8_t *mask = explicit_mask(p);
    /* the kernel's own rule agrees with the explicit construction everywhere */
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < p->Tq; i++)
                for (int j = 0; j < p->Tk; j++)
                    assert_int_equal(attention_visible(p, b, h, i, j),
                                     mask[(((size_t)b * p->H + h) * p->Tq + i) * p->Tk + j]);
    double *ro = calloc(nq, sizeof(double)), *rl = calloc(nl, sizeof(double));
    naive_attention(ro, rl, c->q, c->k, c->v, p, mask);
    attention_forward_cpu(c->out, c->lse, c->q, c->k, c->v, p, c->scratch);
    for (size_t i = 0; i < nq; i++)
        if (fabs(c->out[i] - ro[i]) > 1e-4 * (1 + fabs(ro[i])))
            fail_msg("%s: out[%zu] = %g, naive %g (T=%d H=%d KV=%d hd=%d G=%d tiles %dx%d)", what, i, c->out[i], ro[i],
                     p->Tk, p->H, p->KV, p->hd, p->group, p->tile_q, p->tile_k);
    for (size_t i = 0; i < nl; i++) {
        if (isinf(rl[i])) {
            assert_true(isinf(c->lse[i]) && c->lse[i] > 0);
            continue;
        }
        assert_float_equal(c->lse[i], rl[i], 1e-4 * (1 + fabs(rl[i])));
    }
    free(ro);
    free(rl);
    free(mask);
}

static void test_tiled_equals_naive_all_modes(void **state) {
    const char *names[] = {"full", "s2", "full+segments", "s2+segments"};
    for (int mode = 0; mode < 4; mode++)
        for (int rep = 0; rep < 6; rep++) {
            attn_case c;
            make_case(&c, mode);
            compare_with_naive(&c, names[mode]);
            free_case(&c);
        }
}

/* Tq < Tk: queries are the last Tq positions (KV-cache); equal to the last rows of the full run. */
static void test_kv_cache_queries(void **state) {
    for (int rep = 0; rep < 4; rep++) {
        attn_case c;
        make_case(&c, rep % 2 ? 2 : 0);
        attn_params *p = &c.p;
        int Tq = 1 + (int)lqa_rng_below(&rng, p->Tk);
        attention_forward_cpu(c.out, c.lse, c.q, c.k, c.v, p, c.scratch);
        attn_params pq = *p;
        pq.Tq = Tq;
        size_t row = (size_t)p->H * p->hd;
        float *qs = fd_zeros((size_t)p->B * Tq * row), *os = fd_zeros((size_t)p->B * Tq * row);
        float *ls = fd_zeros((size_t)p->B * p->H * Tq);
        for (int b = 0; b < p->B; b++)
            memcpy(qs + (size_t)b * Tq * row, c.q + ((size_t)b * p->Tq + p->Tq - Tq) * row, sizeof(float) * Tq * row);
        attention_forward_cpu(os, ls, qs, c.k, c.v, &pq, c.scratch);
        for (int b = 0; b < p->B; b++)
            for (size_t x = 0; x < (size_t)Tq * row; x++)
                assert_float_equal(os[(size_t)b * Tq * row + x], c.out[((size_t)b * p->Tq + p->Tq - Tq) * row + x],
                                   1e-5);
        /* and the naive reference with the offset mask */
        float *saved_q = c.q, *saved_o = c.out, *saved_l = c.lse;
        c.q = qs, c.out = os, c.lse = ls, c.p = pq;
        compare_with_naive(&c, "kv-cache");
        c.q = saved_q, c.out = saved_o, c.lse = saved_l, c.p = *p;
        fd_free_all(qs, os, ls, NULL);
        free_case(&c);
    }
}

/* ---- gradients ---- */
typedef struct {
    attn_case *c;
    float *R;
} attn_fd;
static double attn_loss(void *ctx) {
    attn_fd *f = ctx;
    attn_case *c = f->c;
    attention_forward_cpu(c->out, c->lse, c->q, c->k, c->v, &c->p, c->scratch);
    return fd_dot(c->out, f->R, (size_t)c->p.B * c->p.Tq * c->p.H * c->p.hd);
}

static void check_attention_grads(int mode, const char *name) {
    attn_case c;
    make_case(&c, mode);
    attn_params *p = &c.p;
    size_t nq = (size_t)p->B * p->Tq * p->H * p->hd, nk = (size_t)p->B * p->Tk * p->KV * p->hd;
    attn_fd f = {&c, fd_randn(&rng, nq, 1)};
    attn_loss(&f);
    float *dq = fd_zeros(nq), *dk = fd_zeros(nk), *dv = fd_zeros(nk);
    attention_backward_cpu(dq, dk, dv, f.R, c.out, c.lse, c.q, c.k, c.v, p, c.scratch);
    char what[64];
    snprintf(what, sizeof what, "attention %s dq", name);
    fd_check(what, c.q, dq, nq, attn_loss, &f, &rng, 24);
    snprintf(what, sizeof what, "attention %s dk", name);
    fd_check(what, c.k, dk, nk, attn_loss, &f, &rng, 24);
    snprintf(what, sizeof what, "attention %s dv", name);
    fd_check(what, c.v, dv, nk, attn_loss, &f, &rng, 24);
    /* padding queries and keys get no gradient */
    if (c.seg)
        for (int b = 0; b < p->B; b++)
            for (int t = 0; t < p->Tk; t++)
                if (c.seg[b * p->Tk + t] < 0)
                    for (int x = 0; x < p->KV * p->hd; x++) {
                        assert_true(dk[((size_t)b * p->Tk + t) * p->KV * p->hd + x] == 0.0f);
                        assert_true(dv[((size_t)b * p->Tk + t) * p->KV * p->hd + x] == 0.0f);
                    }
    fd_free_all(f.R, dq, dk, dv, NULL);
    free_case(&c);
}

static void test_grad_full(void **state) { for (int i = 0; i < 3; i++) check_attention_grads(0, "full"); }
static void test_grad_s2(void **state) { for (int i = 0; i < 3; i++) check_attention_grads(1, "s2"); }
static void test_grad_segments(void **state) {
    for (int i = 0; i < 3; i++) {
        check_attention_grads(2, "full+segments");
        check_attention_grads(3, "s2+segments");
    }
}

/* GQA explicitly: H = 4, KV = 2 and KV = 1, S2 on. */
static void test_grad_gqa(void **state) {
    for (int kv = 1; kv <= 2; kv++) {
        attn_case c;
        memset(&c, 0, sizeof c);
        c.p = (attn_params){.B = 1, .Tq = 16, .Tk = 16, .H = 4, .KV = kv, .hd = 4, .group = 8, .tile_q = 4, .tile_k = 8};
        size_t nq = 16 * 4 * 4, nk = 16 * (size_t)kv * 4;
        c.q = fd_randn(&rng, nq, 1), c.k = fd_randn(&rng, nk, 1), c.v = fd_randn(&rng, nk, 1);
        c.out = fd_zeros(nq), c.lse = fd_zeros(64);
        c.scratch = fd_zeros(attention_scratch_floats(&c.p, omp_get_max_threads()));
        compare_with_naive(&c, "gqa");
        attn_fd f = {&c, fd_randn(&rng, nq, 1)};
        attn_loss(&f);
        float *dq = fd_zeros(nq), *dk = fd_zeros(nk), *dv = fd_zeros(nk);
        attention_backward_cpu(dq, dk, dv, f.R, c.out, c.lse, c.q, c.k, c.v, &c.p, c.scratch);
        fd_check("gqa dq", c.q, dq, nq, attn_loss, &f, &rng, 32);
        fd_check("gqa dk", c.k, dk, nk, attn_loss, &f, &rng, 32);
        fd_check("gqa dv", c.v, dv, nk, attn_loss, &f, &rng, 32);
        fd_free_all(f.R, dq, dk, dv, NULL);
        free_case(&c);
    }
}

/* Changing q, k, v at position t changes no output before t (bitwise), in both modes. */
static void test_no_future_dependence(void **state) {
    for (int mode = 0; mode < 4; mode++) {
        attn_case c;
        make_case(&c, mode);
        attn_params *p = &c.p;
        size_t qrow = (size_t)p->H * p->hd, krow = (size_t)p->KV * p->hd, nq = (size_t)p->B * p->Tq * qrow;
        attention_forward_cpu(c.out, c.lse, c.q, c.k, c.v, p, c.scratch);
        float *before = fd_copy(c.out, nq);
        int t = (int)lqa_rng_below(&rng, p->Tk);
        for (int b = 0; b < p->B; b++) {
            for (size_t x = 0; x < krow; x++) {
                c.k[((size_t)b * p->Tk + t) * krow + x] += 3.0f;
                c.v[((size_t)b * p->Tk + t) * krow + x] -= 2.0f;
            }
            for (size_t x = 0; x < qrow; x++) c.q[((size_t)b * p->Tq + t) * qrow + x] *= -1.5f;
        }
        attention_forward_cpu(c.out, c.lse, c.q, c.k, c.v, p, c.scratch);
        for (int b = 0; b < p->B; b++)
            assert_memory_equal(c.out + (size_t)b * p->Tq * qrow, before + (size_t)b * p->Tq * qrow,
                                sizeof(float) * t * qrow);
        free(before);
        free_case(&c);
    }
}

/* S2 at ratio 1/4 with tiles that divide G visits about a quarter of causal attention's tiles
 * (plus the half-group edges of the shifted heads); the backward is deterministic. */
static void test_s2_skips_tiles_and_is_deterministic(void **state) {
    int tile = 8 << lqa_rng_below(&rng, 2), T = 32 * tile;
    attn_params full = {.B = 1, .Tq = T, .Tk = T, .H = 2, .KV = 1, .hd = 8, .tile_q = tile, .tile_k = tile};
    attn_params s2 = full;
    s2.group = T / 4;
    size_t total, vf = attention_count_tiles(&full, &total), vs = attention_count_tiles(&s2, NULL);
    size_t nt = (size_t)T / tile, causal = nt * (nt + 1) / 2 * 2; /* lower triangle, 2 heads */
    assert_int_equal(vf, causal);
    assert_int_equal(total, nt * nt * 2);
    /* G = 8 tiles: plain head: 4 groups, each a causal triangle of g tiles; shifted head: two
     * half groups (g/2 tiles) and 3 whole groups; tile edges fall on group edges */
    size_t g = nt / 4, plain = 4 * g * (g + 1) / 2, shifted = 2 * (g / 2) * (g / 2 + 1) / 2 + 3 * g * (g + 1) / 2;
    assert_int_equal(vs, plain + shifted);
    assert_true((double)vs / vf < 0.35);
    /* deterministic backward */
    size_t nq = (size_t)T * 2 * 8, nk = (size_t)T * 8;
    float *q = fd_randn(&rng, nq, 1), *k = fd_randn(&rng, nk, 1), *v = fd_randn(&rng, nk, 1), *R = fd_randn(&rng, nq, 1);
    float *out = fd_zeros(nq), *lse = fd_zeros((size_t)2 * T), *scratch = fd_zeros(attention_scratch_floats(&s2, omp_get_max_threads()));
    attention_forward_cpu(out, lse, q, k, v, &s2, scratch);
    float *g1[3], *g2[3];
    for (int i = 0; i < 3; i++) g1[i] = fd_zeros(i ? nk : nq), g2[i] = fd_zeros(i ? nk : nq);
    attention_backward_cpu(g1[0], g1[1], g1[2], R, out, lse, q, k, v, &s2, scratch);
    attention_backward_cpu(g2[0], g2[1], g2[2], R, out, lse, q, k, v, &s2, scratch);
    for (int i = 0; i < 3; i++) assert_memory_equal(g1[i], g2[i], sizeof(float) * (i ? nk : nq));
    for (int i = 0; i < 3; i++) fd_free_all(g1[i], g2[i], NULL);
    fd_free_all(q, k, v, R, out, lse, scratch, NULL);
}

/* Sizes large enough for the threaded paths (per-thread scratch): equal to the naive reference
 * forward, and forward and backward bitwise the same on 1 and 2 threads. */
static void test_threaded_paths(void **state) {
    for (int mode = 0; mode < 4; mode++) {
        attn_case c;
        memset(&c, 0, sizeof c);
        int T = 256 + 64 * (int)lqa_rng_below(&rng, 3);
        c.p = (attn_params){.B = 1 + (int)lqa_rng_below(&rng, 2), .Tq = T, .Tk = T, .H = 4, .KV = 2, .hd = 16,
                            .group = (mode & 1) ? T / 4 : 0};
        if (mode & 2) c.seg = random_segments(c.p.B, T), c.p.segment_ids = c.seg;
        size_t nq = (size_t)c.p.B * T * 4 * 16, nk = (size_t)c.p.B * T * 2 * 16, nl = (size_t)c.p.B * 4 * T;
        c.q = fd_randn(&rng, nq, 1), c.k = fd_randn(&rng, nk, 1), c.v = fd_randn(&rng, nk, 1);
        c.out = fd_zeros(nq), c.lse = fd_zeros(nl);
        c.scratch = fd_zeros(attention_scratch_floats(&c.p, 2));
        float *R = fd_randn(&rng, nq, 1), *res[2][5];
        for (int th = 1; th <= 2; th++) {
            kernels_set_threads(th);
            float *o = fd_zeros(nq), *l = fd_zeros(nl), *dq = fd_zeros(nq), *dk = fd_zeros(nk), *dv = fd_zeros(nk);
            attention_forward_cpu(o, l, c.q, c.k, c.v, &c.p, c.scratch);
            attention_backward_cpu(dq, dk, dv, R, o, l, c.q, c.k, c.v, &c.p, c.scratch);
            res[th - 1][0] = o, res[th - 1][1] = l, res[th - 1][2] = dq, res[th - 1][3] = dk, res[th - 1][4] = dv;
        }
        kernels_set_threads(0);
        size_t sizes[5] = {nq, nl, nq, nk, nk};
        for (int i = 0; i < 5; i++) assert_memory_equal(res[0][i], res[1][i], sizeof(float) * sizes[i]);
        float *ro = fd_zeros(nq), *rl = fd_zeros(nl);
        attention_forward_ref(ro, rl, c.q, c.k, c.v, &c.p);
        for (size_t i = 0; i < nq; i++) assert_float_equal(res[1][0][i], ro[i], 1e-4 * (1 + fabs(ro[i])));
        for (int th = 0; th < 2; th++)
            for (int i = 0; i < 5; i++) free(res[th][i]);
        fd_free_all(R, ro, rl, NULL);
        free_case(&c);
    }
}

static void test_check_rejects_bad_shapes(void **state) {
    char msg[256];
    attn_params p = {.B = 1, .Tq = 30, .Tk = 30, .H = 4, .KV = 2, .hd = 8, .group = 7};
    assert_int_equal(attention_check(&p, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "even"));
    p.group = 0, p.KV = 3;
    assert_int_equal(attention_check(&p, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "divide"));
    p.KV = 2, p.Tq = 31;
    assert_int_equal(attention_check(&p, msg, sizeof msg), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tiled_equals_naive_all_modes, setup),
        cmocka_unit_test_setup(test_kv_cache_queries, setup),
        cmocka_unit_test_setup(test_grad_full, setup),
        cmocka_unit_test_setup(test_grad_s2, setup),
        cmocka_unit_test_setup(test_grad_segments, setup),
        cmocka_unit_test_setup(test_grad_gqa, setup),
        cmocka_unit_test_setup(test_no_future_dependence, setup),
        cmocka_unit_test_setup(test_s2_skips_tiles_and_is_deterministic, setup),
        cmocka_unit_test_setup(test_threaded_paths, setup),
        cmocka_unit_test_setup(test_check_rejects_bad_shapes, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
