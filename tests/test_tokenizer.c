/* test_tokenizer.c: the sentencepiece C shim: training (LLaMA settings, byte-identical for the
 * same text and seed), load, encode/decode round trips, special ids (no pad id), piece lookups,
 * offsets, and clean errors instead of exceptions. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/hash.h"
#include "dataset/tokenizer.h"
#include "tests/test_shards_util.h"

static const char *g_model;
static uint64_t g_seed;

static int setup(void **state) {
    g_seed = lqa_test_seed();
    g_model = lqa_strdup(fixture_tokenizer(lqa_test_tmpdir(), "tok.model", g_seed, 600));
    return 0;
}

static void test_special_ids_like_llama(void **state) {
    lqa_err err = {{0}};
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    assert_int_equal(lqa_tok_unk_id(t), 0);
    assert_int_equal(lqa_tok_bos_id(t), 1);
    assert_int_equal(lqa_tok_eos_id(t), 2);
    assert_int_equal(lqa_tok_pad_id(t), -1);
    assert_in_range(lqa_tok_vocab_size(t), 300, 600);
    assert_string_equal(lqa_tok_id_to_piece(t, 1), "<s>");
    assert_string_equal(lqa_tok_id_to_piece(t, 2), "</s>");
    assert_int_equal(lqa_tok_piece_to_id(t, "</s>"), 2);
    assert_int_equal(lqa_tok_piece_to_id(t, "<0x41>"), lqa_tok_piece_to_id(t, "<0x40>") + 1); /* byte pieces */
    assert_int_equal(lqa_tok_piece_to_id(t, "no-such-piece-here"), 0);
    assert_null(lqa_tok_id_to_piece(t, lqa_tok_vocab_size(t)));
    assert_null(lqa_tok_id_to_piece(t, -1));
    uint8_t digest[32];
    char hex[65];
    assert_int_equal(lqa_sha256_file(g_model, digest, &err), 0);
    lqa_hex(digest, 32, hex);
    assert_string_equal(lqa_tok_sha256(t), hex);
    lqa_tok_free(t);
}

static void test_round_trip_random_text(void **state) {
    lqa_err err = {{0}};
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 1);
    for (int i = 0; i < 50; i++) {
        char *text = fixture_doc(&r, 1 + (int)lqa_rng_below(&r, 3));
        int32_t *ids;
        size_t n;
        assert_int_equal(lqa_tok_encode(t, text, strlen(text), &ids, &n, &err), 0);
        assert_true(n > 0);
        char *back;
        assert_int_equal(lqa_tok_decode(t, ids, n, &back, &err), 0);
        assert_string_equal(back, text); /* identity normaliser, whitespace kept */
        /* offsets variant gives the same ids and spans that start inside the text, in order */
        int32_t *ids2;
        uint32_t *begins;
        size_t n2;
        assert_int_equal(lqa_tok_encode_offsets(t, text, strlen(text), &ids2, &begins, &n2, &err), 0);
        assert_int_equal(n2, n);
        assert_memory_equal(ids, ids2, n * sizeof *ids);
        for (size_t k = 1; k < n; k++) assert_true(begins[k] >= begins[k - 1]);
        assert_true(begins[n - 1] < strlen(text));
        free(ids), free(ids2), free(begins), free(back), free(text);
    }
    lqa_tok_free(t);
}

static void test_digits_split_and_bytes_fall_back(void **state) {
    lqa_err err = {{0}};
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 2);
    char text[64];
    unsigned num = 10000 + (unsigned)lqa_rng_below(&r, 90000);
    /* a CJK character never seen in training must come back through byte pieces, not unk */
    snprintf(text, sizeof text, "%u \xe6\xbc\xa2", num);
    int32_t *ids;
    size_t n;
    assert_int_equal(lqa_tok_encode(t, text, strlen(text), &ids, &n, &err), 0);
    int digits = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = lqa_tok_id_to_piece(t, ids[i]);
        assert_int_not_equal(ids[i], lqa_tok_unk_id(t));
        if (strncmp(p, "<0x", 3) == 0) {
            bytes++;
            continue;
        }
        size_t len = strlen(p), d = 0;
        for (size_t k = 0; k < len; k++) d += p[k] >= '0' && p[k] <= '9';
        assert_true(d <= 1); /* split_digits: never two digits in one piece */
        digits += (int)d;
    }
    assert_int_equal(digits, 5);
    assert_int_equal(bytes, 3);
    char *back;
    assert_int_equal(lqa_tok_decode(t, ids, n, &back, &err), 0);
    assert_string_equal(back, text);
    free(back), free(ids);
    lqa_tok_free(t);
}

static void test_training_is_byte_identical(void **state) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/again", lqa_test_tmpdir());
    lqa_mkdir_p(dir, NULL);
    const char *again = fixture_tokenizer_threads(dir, "tok.model", g_seed, 600, 2); /* another thread count */
    char *a, *b;
    size_t na, nb;
    lqa_err err = {{0}};
    assert_int_equal(lqa_read_file(g_model, &a, &na, &err), 0);
    assert_int_equal(lqa_read_file(again, &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a), free(b);
}

static void test_errors_not_exceptions(void **state) {
    lqa_err err = {{0}};
    char path[600];
    snprintf(path, sizeof path, "%s/garbage.model", lqa_test_tmpdir());
    lqa_test_write(path, "this is not a protobuf", 22);
    assert_null(lqa_tok_load(path, &err));
    assert_non_null(strstr(err.msg, "garbage.model"));
    snprintf(path, sizeof path, "%s/missing.model", lqa_test_tmpdir());
    assert_null(lqa_tok_load(path, &err));
    assert_non_null(strstr(err.msg, "missing.model"));
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    int32_t bad[2] = {5, lqa_tok_vocab_size(t) + 7};
    char *text;
    assert_int_equal(lqa_tok_decode(t, bad, 2, &text, &err), -1);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    lqa_tok_free(t);
    snprintf(path, sizeof path, "%s/none.txt", lqa_test_tmpdir());
    char out[600];
    snprintf(out, sizeof out, "%s/none.model", lqa_test_tmpdir());
    assert_int_equal(lqa_tok_train(path, out, 500, 1, 1, &err), -1);
    assert_false(lqa_path_exists(out));
}

static void test_long_texts_encode_as_one_string(void **state) {
    lqa_err err = {{0}};
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    assert_true(lqa_tok_fast_path(t)); /* our models allow the segmented encoder */
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 3);
    static const char *breaks[] = {"\n", "\n\n", "\n ", " \n", "\n\n\n  ", "\r\n", "\n\t"};
    for (int k = 0; k < 6; k++) {
        lqa_buf b = {0};
        size_t target = 9000 + lqa_rng_below(&r, 40000);
        while (b.len < target) {
            fixture_words(&b, &r, 1 + (int)lqa_rng_below(&r, 200));
            lqa_buf_puts(&b, breaks[lqa_rng_below(&r, 7)]);
        }
        int32_t *fast, *whole, *with_off;
        uint32_t *begins;
        size_t nf, nw, no;
        assert_int_equal(lqa_tok_encode(t, b.data, b.len, &fast, &nf, &err), 0);
        assert_int_equal(lqa_tok_encode_whole(t, b.data, b.len, &whole, &nw, &err), 0);
        assert_int_equal(lqa_tok_encode_offsets(t, b.data, b.len, &with_off, &begins, &no, &err), 0);
        assert_int_equal(nf, nw);
        assert_memory_equal(fast, whole, nw * sizeof *fast);
        assert_int_equal(no, nw);
        assert_memory_equal(with_off, whole, nw * sizeof *fast);
        for (size_t i = 1; i < no; i++) assert_true(begins[i] >= begins[i - 1] && begins[i] < b.len);
        /* cut into parts at random places (lqa_tok_part_end), encoded apart, joined */
        lqa_buf joined = {0}, joined_off = {0};
        for (size_t start = 0; start < b.len;) {
            size_t end = lqa_tok_part_end(t, b.data, b.len, start + 1 + lqa_rng_below(&r, 12000));
            assert_true(end > start && end <= b.len);
            int32_t *part;
            uint32_t *pbeg;
            size_t np;
            assert_int_equal(lqa_tok_encode_part(t, b.data + start, end - start, start > 0, &part, &pbeg, &np, &err), 0);
            lqa_buf_append(&joined, part, np * sizeof *part);
            for (size_t i = 0; i < np; i++) {
                uint32_t abs_off = (uint32_t)start + pbeg[i];
                lqa_buf_append(&joined_off, &abs_off, sizeof abs_off);
            }
            free(part), free(pbeg);
            start = end;
        }
        assert_int_equal(joined.len, nw * sizeof *whole);
        assert_memory_equal(joined.data, whole, joined.len);
        assert_memory_equal(joined_off.data, begins, joined_off.len);
        lqa_buf_free(&joined), lqa_buf_free(&joined_off);
        char *back;
        assert_int_equal(lqa_tok_decode(t, fast, nf, &back, &err), 0);
        assert_string_equal(back, b.data);
        free(fast), free(whole), free(with_off), free(begins), free(back);
        lqa_buf_free(&b);
    }
    lqa_tok_free(t);
}

/* Predictions are decoded as one sequence: the byte-fallback pieces of characters the
 * vocabulary lacks join into UTF-8, and a generation that stops inside a character loses that
 * character instead of gaining U+FFFD; every cut of the ids decodes to a prefix of the text. */
static void test_decode_joins_byte_pieces(void **state) {
    lqa_err err = {{0}};
    lqa_tokenizer *t = lqa_tok_load(g_model, &err);
    assert_non_null(t);
    lqa_rng r;
    lqa_rng_seed(&r, g_seed + 7);
    static const char *const rare[] = {"\xe6\xbc\xa2", "\xf0\x9f\x99\x82", "\xc3\xaf", "\xe2\x80\x94", "\xd0\x96"};
    char text[256] = "";
    for (int i = 0; i < 8; i++) {
        strcat(text, i ? " x" : "x");
        strcat(text, rare[lqa_rng_below(&r, 5)]);
    }
    int32_t *ids;
    size_t n;
    assert_int_equal(lqa_tok_encode(t, text, strlen(text), &ids, &n, &err), 0);
    for (size_t cut = 1; cut <= n; cut++) {
        char *back;
        assert_int_equal(lqa_tok_decode(t, ids, cut, &back, &err), 0);
        if (strstr(back, "\xef\xbf\xbd")) fail_msg("U+FFFD decoding %zu of %zu ids: '%s'", cut, n, back);
        if (strncmp(text, back, strlen(back))) fail_msg("'%s' is not a prefix of '%s'", back, text);
        if (cut == n) assert_string_equal(back, text);
        free(back);
    }
    free(ids);
    lqa_tok_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_ids_like_llama),
        cmocka_unit_test(test_round_trip_random_text),
        cmocka_unit_test(test_digits_split_and_bytes_fall_back),
        cmocka_unit_test(test_decode_joins_byte_pieces),
        cmocka_unit_test(test_long_texts_encode_as_one_string),
        cmocka_unit_test(test_training_is_byte_identical),
        cmocka_unit_test(test_errors_not_exceptions),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
