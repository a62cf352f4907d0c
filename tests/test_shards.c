/* test_shards.c: the shard file format and reader: random records round trip (both token
 * widths, packed segments), every corruption caught with a clear message (flipped bytes in each
 * part, truncation, wrong magic, a header lying about counts, tokenizer mismatch), and the
 * iterator: deterministic order per (seed, epoch), ranks disjoint, exact resume. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/rng.h"
#include "dataset/build.h"
#include "dataset/shards.h"

typedef struct gen_rec {
    int32_t *tokens;
    uint8_t *mask;
    uint32_t n, n_segs;
    lqa_segment segs[4];
} gen_rec;

static uint64_t g_seed;

static int setup(void **state) {
    g_seed = lqa_test_seed();
    return 0;
}

static void gen(lqa_rng *r, gen_rec *g, uint32_t vocab) {
    g->n = 1 + (uint32_t)lqa_rng_below(r, 300);
    g->tokens = malloc(g->n * sizeof(int32_t));
    g->mask = malloc(g->n);
    for (uint32_t t = 0; t < g->n; t++) {
        g->tokens[t] = (int32_t)lqa_rng_below(r, vocab);
        g->mask[t] = (uint8_t)lqa_rng_below(r, 2);
    }
    g->n_segs = 1 + (uint32_t)lqa_rng_below(r, g->n < 4 ? g->n : 4);
    uint32_t at = 0;
    for (uint32_t s = 0; s < g->n_segs; s++) { /* ordered spans with gaps allowed */
        uint32_t len = (g->n - at) / (g->n_segs - s);
        g->segs[s] = (lqa_segment){(int64_t)lqa_rng_below(r, 1000), (int64_t)lqa_rng_below(r, 1000), at, len};
        at += len;
    }
}

static void gen_free(gen_rec *g, int n) {
    for (int i = 0; i < n; i++) free(g[i].tokens), free(g[i].mask);
}

static lqa_shard_info base_info(uint32_t vocab, uint32_t flags, uint8_t sha_byte) {
    lqa_shard_info in = {0};
    in.kind = LQA_KIND_SFT;
    in.vocab_size = vocab;
    in.template_id = LQA_TEMPLATE_LLAMA2_INST;
    in.flags = flags;
    memset(in.tokenizer_sha256, sha_byte, 32);
    return in;
}

static void write_shard(const char *path, const lqa_shard_info *in, gen_rec *g, int n) {
    lqa_err err;
    lqa_shard_writer *w = lqa_shard_writer_open(path, in, 3, &err);
    assert_non_null(w);
    for (int i = 0; i < n; i++)
        assert_int_equal(lqa_shard_writer_add(w, g[i].tokens, g[i].mask, g[i].n, g[i].segs, g[i].n_segs, &err), 0);
    assert_int_equal(lqa_shard_writer_close(w, &err), 0);
}

static void check_record(const lqa_record *r, const gen_rec *g, int packed) {
    assert_int_equal(r->n_tokens, g->n);
    assert_memory_equal(r->tokens, g->tokens, g->n * sizeof(int32_t));
    assert_memory_equal(r->loss_mask, g->mask, g->n);
    assert_int_equal(r->n_segments, g->n_segs);
    for (uint32_t s = 0; s < g->n_segs; s++) {
        assert_int_equal(r->segments[s].qa_id, g->segs[s].qa_id);
        assert_int_equal(r->segments[s].start, g->segs[s].start);
    }
    for (uint32_t t = 0; t < g->n; t++) {
        int32_t want = packed ? -1 : 0;
        for (uint32_t s = 0; packed && s < g->n_segs; s++)
            if (t >= g->segs[s].start && t < g->segs[s].start + g->segs[s].len) want = (int32_t)s;
        assert_int_equal(r->segment_ids[t], want);
    }
}

static void test_round_trip_both_widths(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed);
    uint32_t vocabs[2] = {1000 + (uint32_t)lqa_rng_below(&r, 60000), 70000 + (uint32_t)lqa_rng_below(&r, 100000)};
    for (int v = 0; v < 2; v++) {
        for (int packed = 0; packed < 2; packed++) {
            int n = 20 + (int)lqa_rng_below(&r, 40);
            gen_rec g[60];
            for (int i = 0; i < n; i++) gen(&r, &g[i], vocabs[v]);
            char path[600];
            snprintf(path, sizeof path, "%s/rt-%d-%d.lqas", lqa_test_tmpdir(), v, packed);
            lqa_shard_info in = base_info(vocabs[v], packed ? LQA_SHARD_PACKED : 0, 0xab);
            write_shard(path, &in, g, n);
            lqa_err err;
            lqa_shard *s = lqa_shard_open(path, &err);
            assert_non_null(s);
            const lqa_shard_info *got = lqa_shard_get_info(s);
            assert_int_equal(got->record_count, n);
            assert_int_equal(got->dtype_bytes, vocabs[v] <= 65536 ? 2 : 4);
            assert_int_equal(got->vocab_size, vocabs[v]);
            lqa_record rec = {0};
            for (int k = 0; k < 3 * n; k++) { /* random access, each record from its own frame */
                int i = (int)lqa_rng_below(&r, (uint64_t)n);
                assert_int_equal(lqa_shard_read(s, (uint64_t)i, &rec, &err), 0);
                check_record(&rec, &g[i], packed);
            }
            assert_int_equal(lqa_shard_read(s, (uint64_t)n, &rec, &err), -1);
            lqa_record_free(&rec);
            lqa_shard_close(s);
            gen_free(g, n);
        }
    }
}

static void test_writer_rejects_bad_tokens(void **state) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.lqas", lqa_test_tmpdir());
    lqa_shard_info in = base_info(500, 0, 1);
    lqa_err err;
    lqa_shard_writer *w = lqa_shard_writer_open(path, &in, 1, &err);
    int32_t toks[3] = {1, 500, 2};
    uint8_t mask[3] = {0};
    assert_int_equal(lqa_shard_writer_add(w, toks, mask, 3, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    lqa_shard_writer_abort(w);
    assert_false(lqa_path_exists(path));
}

/* Writes a fresh shard and returns its bytes, to be damaged by a test. */
static char *shard_bytes(const char *path, lqa_rng *r, int n, size_t *len) {
    gen_rec g[40];
    for (int i = 0; i < n; i++) gen(r, &g[i], 3000);
    lqa_shard_info in = base_info(3000, 0, 7);
    write_shard(path, &in, g, n);
    gen_free(g, n);
    char *data;
    lqa_err err;
    assert_int_equal(lqa_read_file(path, &data, len, &err), 0);
    return data;
}

/* Opens the damaged bytes and reads every record: some step must fail, with `want` in the
 * message. Returns 1 when the open itself failed. */
static int expect_caught(const char *path, const char *data, size_t len, const char *want) {
    lqa_test_write(path, data, len);
    lqa_err err = {{0}};
    lqa_shard *s = lqa_shard_open(path, &err);
    int failed_open = s == NULL, failed = failed_open;
    if (s) {
        lqa_record rec = {0};
        for (uint64_t i = 0; i < lqa_shard_get_info(s)->record_count && !failed; i++)
            failed = lqa_shard_read(s, i, &rec, &err) != 0;
        lqa_record_free(&rec);
        lqa_shard_close(s);
    }
    if (!failed || (want && !strstr(err.msg, want))) fail_msg("damage not caught as \"%s\": %s", want, err.msg);
    assert_non_null(strstr(err.msg, path)); /* the message names the file */
    return failed_open;
}

static void test_corruption_caught(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 1);
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/good.lqas", lqa_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.lqas", lqa_test_tmpdir());
    size_t len;
    int n = 10 + (int)lqa_rng_below(&r, 20);
    char *good = shard_bytes(path, &r, n, &len);
    char *d = malloc(len);
    /* a flipped bit anywhere in the file, 200 random places */
    for (int k = 0; k < 200; k++) {
        memcpy(d, good, len);
        size_t at = lqa_rng_below(&r, len);
        d[at] ^= (char)(1u << lqa_rng_below(&r, 8));
        /* bytes 80..119 of the header are reserved padding, covered by the header checksum */
        expect_caught(bad, d, len, NULL);
    }
    /* truncated anywhere */
    for (int k = 0; k < 20; k++) assert_true(expect_caught(bad, good, lqa_rng_below(&r, len), NULL));
    /* wrong magic */
    memcpy(d, good, len);
    memcpy(d, "GGUF\0\0\0\0", 8);
    assert_true(expect_caught(bad, d, len, "wrong magic"));
    /* a header that lies about the record count, with a valid header checksum */
    memcpy(d, good, len);
    uint64_t lie = (uint64_t)n + 1 + lqa_rng_below(&r, 100);
    memcpy(d + 32, &lie, 8);
    uint64_t x = lqa_xxh64(d, 120, 0);
    memcpy(d + 120, &x, 8);
    assert_true(expect_caught(bad, d, len, "header says"));
    free(d);
    free(good);
}

/* A directory with one shard and a manifest naming tokenizer hash sha. */
static void make_dir(const char *dir, lqa_rng *r, int n, gen_rec *g, uint8_t sha_byte) {
    lqa_mkdir_p(dir, NULL);
    for (int i = 0; i < n; i++) gen(r, &g[i], 900);
    char *path = lqa_path_join(dir, "shard-00000.lqas");
    lqa_shard_info in = base_info(900, 0, sha_byte);
    write_shard(path, &in, g, n);
    free(path);
    uint64_t tokens = 0;
    for (int i = 0; i < n; i++) tokens += g[i].n;
    uint8_t sha[32];
    char hex[65];
    memset(sha, sha_byte, 32);
    lqa_hex(sha, 32, hex);
    json_t *m = json_pack("{s:s, s:i, s:{s:s}, s:[{s:s, s:I, s:I}], s:I}", "format", "lqa-shards", "version", 1,
                          "tokenizer", "sha256", hex, "shards", "file", "shard-00000.lqas", "records", (json_int_t)n,
                          "tokens", (json_int_t)tokens, "records", (json_int_t)n);
    char *mp = lqa_path_join(dir, "manifest.json");
    lqa_err err;
    assert_int_equal(lqa_json_write_file(mp, m, &err), 0);
    free(mp);
    json_decref(m);
}

static void test_tokenizer_mismatch_refused(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 2);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/dir-mismatch", lqa_test_tmpdir());
    gen_rec g[8];
    make_dir(dir, &r, 8, g, 0x11);
    gen_free(g, 8);
    lqa_err err;
    char good[65], other[65];
    memset(good, '1', 64), good[64] = 0;
    memset(other, '2', 64), other[64] = 0;
    lqa_shards *d = lqa_shards_open(dir, good, &err);
    assert_non_null(d);
    lqa_shards_close(d);
    assert_null(lqa_shards_open(dir, other, &err));
    assert_non_null(strstr(err.msg, "tokenizer"));
    assert_non_null(strstr(err.msg, other));
}

static void test_iterator_shuffles_splits_and_resumes(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 3);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/dir-iter", lqa_test_tmpdir());
    int n = 30 + (int)lqa_rng_below(&r, 30);
    gen_rec g[60];
    make_dir(dir, &r, n, g, 0x22);
    lqa_err err;
    lqa_shards *d = lqa_shards_open(dir, NULL, &err);
    assert_non_null(d);
    uint64_t seed = lqa_rng_u64(&r);
    int world = 1 + (int)lqa_rng_below(&r, 4);
    int per_rank = n / world;
    lqa_record rec = {0};
    /* epoch 0 over all ranks: disjoint, each record at most once; records match what was written */
    int *seen = calloc((size_t)n, sizeof *seen);
    uint64_t *order0 = malloc((size_t)n * sizeof *order0);
    for (int rank = 0; rank < world; rank++) {
        lqa_iter it;
        assert_int_equal(lqa_iter_init(&it, d, seed, rank, world, &err), 0);
        for (int k = 0; k < per_rank; k++) {
            assert_int_equal(lqa_iter_next(&it, &rec, &err), 0);
            check_record(&rec, &g[rec.index], 0);
            seen[rec.index]++;
            if (rank == 0) order0[k] = rec.index;
        }
        lqa_iter_free(&it);
    }
    int total = 0;
    for (int i = 0; i < n; i++) assert_true(seen[i] <= 1), total += seen[i];
    assert_int_equal(total, per_rank * world);
    /* rank 0 again: same stream; then its epoch 1 differs from epoch 0; resume mid-epoch 1 */
    lqa_iter a, b;
    assert_int_equal(lqa_iter_init(&a, d, seed, 0, world, &err), 0);
    int same = 1, differs = 0;
    for (int k = 0; k < per_rank; k++) {
        assert_int_equal(lqa_iter_next(&a, &rec, &err), 0);
        same &= rec.index == order0[k];
    }
    assert_true(same);
    int cut = (int)lqa_rng_below(&r, (uint64_t)per_rank);
    for (int k = 0; k < cut; k++) {
        assert_int_equal(lqa_iter_next(&a, &rec, &err), 0);
        differs |= rec.index != order0[k];
    }
    lqa_iter_pos pos = lqa_iter_tell(&a);
    assert_int_equal(pos.epoch, cut ? 1 : 0);
    assert_int_equal(lqa_iter_init(&b, d, seed, 0, world, &err), 0);
    assert_int_equal(lqa_iter_seek(&b, &pos, &err), 0);
    for (int k = 0; k < 2 * per_rank; k++) {
        uint64_t ia, ib;
        assert_int_equal(lqa_iter_next(&a, &rec, &err), 0);
        ia = rec.index;
        assert_int_equal(lqa_iter_next(&b, &rec, &err), 0);
        ib = rec.index;
        assert_int_equal(ia, ib);
    }
    if (per_rank >= 8 && cut >= 8) assert_true(differs); /* a reshuffle, not the same order again */
    lqa_iter_pos other = pos;
    other.seed ^= 1;
    assert_int_equal(lqa_iter_seek(&b, &other, &err), -1);
    assert_non_null(strstr(err.msg, "seed"));
    lqa_iter_free(&a);
    lqa_iter_free(&b);
    lqa_record_free(&rec);
    lqa_shards_close(d);
    gen_free(g, n);
    free(seen);
    free(order0);
}

static void test_window_keeps_evidence_trims_far_side(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 4);
    for (int k = 0; k < 10000; k++) {
        size_t n = 1 + lqa_rng_below(&r, 5000);
        size_t ea = lqa_rng_below(&r, n), eb = ea + lqa_rng_below(&r, n - ea + 1);
        size_t budget = (eb - ea) + lqa_rng_below(&r, n + 10);
        size_t wa, wb;
        lqa_build_window(n, ea, eb, budget, &wa, &wb);
        assert_true(wa <= ea && wb >= eb && wb <= n);
        size_t want = budget < n ? budget : n;
        assert_int_equal(wb - wa, want); /* the whole budget is used */
        size_t left = ea - wa, right = wb - eb;
        /* a side is shorter than the other only when it ran out of document */
        if (left + 1 < right) assert_int_equal(wa, 0);
        if (right + 1 < left) assert_int_equal(wb, n);
    }
}

static void test_record_to_row_pads_by_mask_and_segment(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 5);
    gen_rec g;
    gen(&r, &g, 2000);
    lqa_record rec = {0};
    rec.n_tokens = g.n;
    rec.tokens = g.tokens;
    rec.loss_mask = g.mask;
    rec.segment_ids = malloc(g.n * sizeof(int32_t));
    for (uint32_t t = 0; t < g.n; t++) rec.segment_ids[t] = (int32_t)lqa_rng_below(&r, 3);
    uint32_t T = 1 + (uint32_t)lqa_rng_below(&r, 2 * g.n);
    int32_t *tok = malloc(T * sizeof *tok), *seg = malloc(T * sizeof *seg);
    uint8_t *mask = malloc(T);
    int32_t pad = 2 + (int32_t)lqa_rng_below(&r, 100);
    uint32_t kept = lqa_record_to_row(&rec, T, pad, tok, mask, seg);
    assert_int_equal(kept, g.n < T ? g.n : T);
    for (uint32_t t = 0; t < T; t++) {
        if (t < kept) {
            assert_int_equal(tok[t], g.tokens[t]);
            assert_int_equal(mask[t], g.mask[t]);
            assert_int_equal(seg[t], rec.segment_ids[t]);
        } else {
            assert_int_equal(tok[t], pad);
            assert_int_equal(mask[t], 0);
            assert_int_equal(seg[t], -1);
        }
    }
    free(rec.segment_ids), free(tok), free(seg), free(mask);
    gen_free(&g, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_both_widths),
        cmocka_unit_test(test_writer_rejects_bad_tokens),
        cmocka_unit_test(test_corruption_caught),
        cmocka_unit_test(test_tokenizer_mismatch_refused),
        cmocka_unit_test(test_iterator_shuffles_splits_and_resumes),
        cmocka_unit_test(test_window_keeps_evidence_trims_far_side),
        cmocka_unit_test(test_record_to_row_pads_by_mask_and_segment),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
