/* test_ingest_input.c: the input layer (ingest/input.c: .gz .bz2 .xz .zst by magic bytes,
 * concatenated streams, truncated/corrupt data errors with byte offsets) and the dispatcher
 * (ingest/parse.c: content sniffing, forced formats, empty/binary files, invalid UTF-8). The
 * compressed files are made with the command-line tools in the test's tmpdir. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "ingest/input.h"
#include "ingest/xml.h"
#include "tests/test_ingest_util.h"

static const char *const tools[][3] = {
    /* codec, command (compresses $f into $f.ext, keeping $f), extension */
    {"gzip", "gzip -kf", "gz"},
    {"bzip2", "bzip2 -kf", "bz2"},
    {"xz", "xz -kf", "xz"},
    {"zstd", "zstd -qkf", "zst"},
};
#define N_TOOLS 4

/* Random text of about n bytes: words, some multi-byte UTF-8, line and paragraph breaks. */
static char *random_text(lqa_rng *r, size_t n, size_t *len_out) {
    static const char *const extra[] = {"é", "漢字", "ß", "Ωmega", "naïve"};
    lqa_buf b = {0};
    while (b.len < n) {
        int wl = 1 + (int)lqa_rng_below(r, 9);
        if (lqa_rng_below(r, 20) == 0) lqa_buf_puts(&b, extra[lqa_rng_below(r, 5)]);
        for (int i = 0; i < wl; i++) lqa_buf_putc(&b, (char)('a' + lqa_rng_below(r, 26)));
        uint64_t sep = lqa_rng_below(r, 30);
        lqa_buf_puts(&b, sep == 0 ? "\n\n" : sep < 3 ? "\n" : " ");
    }
    *len_out = b.len;
    return lqa_buf_steal(&b);
}

static char *tmp_path(const char *name) { return lqa_path_join(lqa_test_tmpdir(), name); }

static char *compress_with(int tool, const char *path) {
    lqa_buf out = {0};
    int rc = lqa_test_run(&out, "%s '%s'", tools[tool][1], path);
    if (rc != 0) fail_msg("%s failed: %s", tools[tool][1], out.data ? out.data : "");
    lqa_buf_free(&out);
    char *c = lqa_malloc(strlen(path) + 8);
    sprintf(c, "%s.%s", path, tools[tool][2]);
    return c;
}

static size_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fclose(f);
    return n;
}

static void truncate_copy(const char *src, const char *dst, size_t keep) {
    char *data;
    size_t len;
    lqa_err err;
    assert_int_equal(lqa_read_file(src, &data, &len, &err), 0);
    assert_true(keep < len);
    lqa_test_write(dst, data, keep);
    free(data);
}

static void test_codecs_roundtrip(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    size_t len;
    char *text = random_text(&r, 200000 + lqa_rng_below(&r, 100000), &len);
    char *path = tmp_path("round.txt");
    lqa_test_write(path, text, len);
    for (int t = 0; t < N_TOOLS; t++) {
        char *c = compress_with(t, path);
        lqa_err err;
        lqa_input *in = lqa_input_open(c, &err);
        assert_non_null(in);
        assert_string_equal(lqa_input_codec(in), tools[t][0]);
        lqa_input_close(in);
        char *data;
        size_t n;
        if (lqa_input_read_all(c, (size_t)1 << 30, &data, &n, &err) != 0) fail_msg("%s: %s", c, err.msg);
        assert_int_equal(n, len);
        assert_memory_equal(data, text, len);
        free(data);
        free(c);
    }
    lqa_input *in = lqa_input_open(path, NULL);
    assert_string_equal(lqa_input_codec(in), "none");
    lqa_input_close(in);
    free(path);
    free(text);
}

/* Several members/frames one after the other decode as one stream. */
static void test_concatenated_streams(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 1);
    size_t la, lb;
    char *a = random_text(&r, 5000 + lqa_rng_below(&r, 50000), &la);
    char *b = random_text(&r, 5000 + lqa_rng_below(&r, 50000), &lb);
    char *pa = tmp_path("part-a.txt"), *pb = tmp_path("part-b.txt"), *cat = tmp_path("both");
    lqa_test_write(pa, a, la);
    lqa_test_write(pb, b, lb);
    for (int t = 0; t < N_TOOLS; t++) {
        char *ca = compress_with(t, pa), *cb = compress_with(t, pb);
        assert_int_equal(lqa_test_run(NULL, "cat '%s' '%s' > '%s'", ca, cb, cat), 0);
        char *data;
        size_t n;
        lqa_err err;
        if (lqa_input_read_all(cat, (size_t)1 << 30, &data, &n, &err) != 0) fail_msg("%s: %s", tools[t][0], err.msg);
        assert_int_equal(n, la + lb);
        assert_memory_equal(data, a, la);
        assert_memory_equal(data + la, b, lb);
        free(data);
        free(ca);
        free(cb);
    }
    free(pa), free(pb), free(cat), free(a), free(b);
}

/* A compressed file cut short is an error naming the file, the codec and a byte offset inside
 * the file, never a silent short read. */
static void test_truncated_streams(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 2);
    size_t len;
    char *text = random_text(&r, 100000 + lqa_rng_below(&r, 100000), &len);
    char *path = tmp_path("trunc.txt"), *cut = tmp_path("cut.bin");
    lqa_test_write(path, text, len);
    for (int t = 0; t < N_TOOLS; t++) {
        char *c = compress_with(t, path);
        size_t size = file_size(c);
        size_t keep = size / 4 + lqa_rng_below(&r, size / 2);
        truncate_copy(c, cut, keep);
        char *data = NULL;
        size_t n;
        lqa_err err;
        assert_int_equal(lqa_input_read_all(cut, (size_t)1 << 30, &data, &n, &err), -1);
        assert_null(data);
        char want[64];
        snprintf(want, sizeof want, "truncated %s data at byte ", tools[t][0]);
        if (!strstr(err.msg, want) || !strstr(err.msg, cut)) fail_msg("%s: unexpected error: %s", tools[t][0], err.msg);
        size_t at = strtoull(strstr(err.msg, want) + strlen(want), NULL, 10);
        assert_true(at <= keep);
        free(c);
    }
    free(path), free(cut), free(text);
}

static void test_corrupt_and_trailing_gzip(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 3);
    size_t len;
    char *text = random_text(&r, 50000 + lqa_rng_below(&r, 50000), &len);
    char *path = tmp_path("corrupt.txt"), *bad = tmp_path("bad.gz");
    lqa_test_write(path, text, len);
    char *c = compress_with(0, path);
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_read_file(c, &data, &n, &err), 0);
    /* flip one byte of the deflate data (after the 10-byte header, before the 8-byte trailer) */
    size_t at = 20 + lqa_rng_below(&r, n - 40);
    data[at] ^= (char)(1 + lqa_rng_below(&r, 255));
    lqa_test_write(bad, data, n);
    char *out;
    size_t outn;
    assert_int_equal(lqa_input_read_all(bad, (size_t)1 << 30, &out, &outn, &err), -1);
    if (!strstr(err.msg, bad) || !strstr(err.msg, "gzip data at byte")) fail_msg("unexpected error: %s", err.msg);
    /* good stream followed by garbage */
    free(data);
    assert_int_equal(lqa_read_file(c, &data, &n, &err), 0);
    lqa_buf g = {0};
    lqa_buf_append(&g, data, n);
    lqa_buf_puts(&g, "this is not gzip");
    lqa_test_write(bad, g.data, g.len);
    assert_int_equal(lqa_input_read_all(bad, (size_t)1 << 30, &out, &outn, &err), -1);
    assert_non_null(strstr(err.msg, "unexpected data after the end of the gzip stream"));
    /* trailing zero padding (tar, tape) is accepted */
    lqa_buf_clear(&g);
    lqa_buf_append(&g, data, n);
    lqa_buf_append(&g, "\0\0\0\0\0\0\0\0", 8);
    lqa_test_write(bad, g.data, g.len);
    assert_int_equal(lqa_input_read_all(bad, (size_t)1 << 30, &out, &outn, &err), 0);
    assert_int_equal(outn, len);
    free(out);
    lqa_buf_free(&g);
    free(data), free(c), free(path), free(bad), free(text);
}

static void test_read_all_limit(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 4);
    size_t len;
    char *text = random_text(&r, 300000, &len);
    char *path = tmp_path("limit.txt");
    lqa_test_write(path, text, len);
    char *c = compress_with(3, path);
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_input_read_all(c, len / 3, &data, &n, &err), -1);
    assert_non_null(strstr(err.msg, "refusing"));
    assert_int_equal(lqa_input_read_all(c, len, &data, &n, &err), 0);
    assert_int_equal(n, len);
    free(data), free(c), free(path), free(text);
}

/* Plain files are read whole in one go: the same bytes, the same limit and errors as the
 * stream path (a file over the limit, an empty file, a missing file, a FIFO). */
static void test_read_all_plain(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 5);
    size_t len;
    char *text = random_text(&r, 100000 + lqa_rng_below(&r, 100000), &len);
    char *path = tmp_path("plain.txt"), *empty = tmp_path("empty.txt"), *fifo = tmp_path("fifo.txt");
    lqa_test_write(path, text, len);
    lqa_test_write(empty, "", 0);
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_input_read_all(path, len, &data, &n, &err), 0);
    assert_int_equal(n, len);
    assert_memory_equal(data, text, len);
    assert_int_equal(data[n], '\0');
    free(data);
    assert_int_equal(lqa_input_read_all(path, len - 1, &data, &n, &err), -1);
    assert_non_null(strstr(err.msg, "refusing"));
    assert_int_equal(lqa_input_read_all(empty, len, &data, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_string_equal(data, "");
    free(data);
    char *missing = tmp_path("missing.txt");
    assert_int_equal(lqa_input_read_all(missing, len, &data, &n, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open"));
    /* a FIFO is no regular file: refused at once, never waited on (no writer here: an open()
     * without O_NONBLOCK would block this test forever) */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(lqa_input_read_all(fifo, len, &data, &n, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file (a FIFO)"));
    assert_null(lqa_input_open(fifo, &err));
    assert_non_null(strstr(err.msg, "a FIFO"));
    free(text), free(path), free(empty), free(fifo), free(missing);
}

/* An xz header asking for a 1 GiB dictionary is refused before the decoder allocates it. */
static void test_xz_memory_limit(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 7);
    size_t len;
    char *text = random_text(&r, 1000 + lqa_rng_below(&r, 10000), &len);
    char *path = tmp_path("dict.txt"), *xz = tmp_path("dict.txt.xz");
    lqa_test_write(path, text, len);
    assert_int_equal(lqa_test_run(NULL, "xz --lzma2=dict=1GiB -c '%s' > '%s'", path, xz), 0);
    char *data;
    size_t n;
    lqa_err err;
    assert_int_equal(lqa_input_read_all(xz, (size_t)1 << 30, &data, &n, &err), -1);
    assert_non_null(strstr(err.msg, "needs more than 256 MiB of memory"));
    assert_non_null(strstr(err.msg, xz));
    free(text), free(path), free(xz);
}

/* ---- dispatcher ---------------------------------------------------------------------------- */

static char *fixture(const char *rel) { return lqa_path_join(lqa_test_fixtures(), rel); }

/* Every text and QA-set fixture is recognised from its content alone. */
static void test_sniff_fixtures(void **state) {
    static const char *const cases[][2] = {
        {"text/guide.md", "markdown"},       {"text/manual.rst", "markdown"}, {"text/rules.txt", "text"},
        {"text/kjv-sample.txt", "text"},     {"text/glossary.txt", "text"},   {"qaset/alpaca.json", "alpaca"},
        {"qaset/longbench.jsonl", "longbench"}, {"qaset/squad.json", "squad"}, {"qaset/qasper.json", "qasper"},
        {"qaset/qasper-hf.jsonl", "qasper"},   {"qaset/squad-hf.jsonl", "squad"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* copy under a neutral name: the sniffing must not look at the file name */
        char *src = fixture(cases[i][0]), *dst = tmp_path("noname");
        assert_int_equal(lqa_test_run(NULL, "cp '%s' '%s'", src, dst), 0);
        xt_docs l;
        lqa_err err;
        if (xt_parse_path(dst, NULL, &l, &err) != 0) fail_msg("%s: %s", cases[i][0], err.msg);
        assert_true(l.n >= 1);
        if (strcmp(l.docs[0].format, cases[i][1]) != 0)
            fail_msg("%s sniffed as %s, expected %s", cases[i][0], l.docs[0].format, cases[i][1]);
        xt_docs_free(&l);
        free(src), free(dst);
    }
    /* the XML family goes to lqa_xml_sniff; an EPUB is told by its zip mimetype entry */
    static const char html[] = "<!DOCTYPE html>\n<html><head><title>t</title></head><body><p>x</p></body></html>";
    assert_string_equal(lqa_xml_sniff(html, sizeof html - 1), "html");
}

/* A compressed copy parses to the same document as the original. */
static void test_compressed_parse_same(void **state) {
    static const char *const files[] = {"text/guide.md", "qaset/alpaca.json", "qaset/squad.json"};
    for (size_t f = 0; f < 3; f++) {
        char *src = fixture(files[f]), *copy = tmp_path("same-input");
        assert_int_equal(lqa_test_run(NULL, "cp '%s' '%s'", src, copy), 0);
        xt_docs ref;
        lqa_err err;
        assert_int_equal(xt_parse_path(copy, NULL, &ref, &err), 0);
        for (int t = 0; t < N_TOOLS; t++) {
            char *c = compress_with(t, copy);
            xt_docs l;
            if (xt_parse_path(c, NULL, &l, &err) != 0) fail_msg("%s.%s: %s", files[f], tools[t][2], err.msg);
            assert_int_equal(l.n, ref.n);
            for (int d = 0; d < l.n; d++) {
                assert_string_equal(l.docs[d].format, ref.docs[d].format);
                assert_string_equal(l.docs[d].text.data, ref.docs[d].text.data);
                assert_int_equal(l.docs[d].n_sections, ref.docs[d].n_sections);
                assert_int_equal(l.docs[d].n_qas, ref.docs[d].n_qas);
            }
            xt_docs_free(&l);
            free(c);
        }
        xt_docs_free(&ref);
        free(src), free(copy);
    }
}

static void test_empty_binary_directory(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 5);
    char *empty = tmp_path("empty.txt"), *bin = tmp_path("blob.dat"), *ws = tmp_path("blank.txt");
    lqa_test_write(empty, "", 0);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(empty, NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, empty));
    assert_non_null(strstr(err.msg, "empty file"));
    assert_int_equal(l.n, 0);
    xt_docs_free(&l);
    /* an empty file compressed is still empty */
    char *gz = compress_with(0, empty);
    assert_int_equal(xt_parse_path(gz, NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, "empty file (after decompression)"));
    xt_docs_free(&l);
    /* binary: random bytes with a NUL somewhere after some text lines */
    size_t n = 1000 + lqa_rng_below(&r, 5000);
    char *blob = lqa_malloc(n);
    for (size_t i = 0; i < n; i++) blob[i] = (char)(' ' + lqa_rng_below(&r, 90));
    blob[10] = '\n';
    size_t nul = 20 + lqa_rng_below(&r, n - 20);
    blob[nul] = '\0';
    lqa_test_write(bin, blob, n);
    assert_int_equal(xt_parse_path(bin, NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, "binary data"));
    char want[64];
    snprintf(want, sizeof want, "%s:2:", bin); /* the NUL is after the first newline */
    assert_non_null(strstr(err.msg, want));
    assert_int_equal(l.n, 0);
    xt_docs_free(&l);
    /* forcing a text format does not let binary through either */
    assert_int_equal(xt_parse_path(bin, "text", &l, &err), -1);
    assert_non_null(strstr(err.msg, "binary data"));
    xt_docs_free(&l);
    lqa_test_write(ws, " \n\n\t \n", 6);
    assert_int_equal(xt_parse_path(ws, NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, "only whitespace"));
    xt_docs_free(&l);
    assert_int_equal(xt_parse_path(lqa_test_tmpdir(), NULL, &l, &err), -1);
    assert_non_null(strstr(err.msg, "is a directory"));
    xt_docs_free(&l);
    free(blob), free(empty), free(bin), free(ws), free(gz);
}

static void test_forced_and_unknown_format(void **state) {
    char *md = fixture("text/guide.md");
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(md, "text", &l, &err), 0);
    assert_string_equal(l.docs[0].format, "text");
    /* as plain text, '#' lines are not headings */
    assert_int_equal(xt_section(&l.docs[0], "Mooring"), -1);
    xt_docs_free(&l);
    assert_int_equal(xt_parse_path(md, "auto", &l, &err), 0);
    assert_string_equal(l.docs[0].format, "markdown");
    assert_true(xt_section(&l.docs[0], "Mooring") >= 0);
    xt_docs_free(&l);
    assert_int_equal(xt_parse_path(md, "pdf", &l, &err), -1);
    assert_non_null(strstr(err.msg, "unknown format 'pdf'"));
    xt_docs_free(&l);
    int auto_listed = 0, text_listed = 0;
    for (int i = 0; lqa_formats[i]; i++) {
        auto_listed |= !strcmp(lqa_formats[i], "auto");
        text_listed |= !strcmp(lqa_formats[i], "text");
    }
    assert_true(auto_listed && text_listed);
    free(md);
}

/* Invalid UTF-8 on a random line: a warning naming that line, U+FFFD in the text. */
static void test_invalid_utf8_warns(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed() + 6);
    int lines = 5 + (int)lqa_rng_below(&r, 40), bad = 1 + (int)lqa_rng_below(&r, (uint64_t)lines);
    lqa_buf b = {0};
    for (int i = 1; i <= lines; i++) {
        lqa_buf_printf(&b, "line %d says %llu", i, (unsigned long long)lqa_rng_below(&r, 1000000));
        if (i == bad) lqa_buf_puts(&b, " broken \xc3\x28 byte");
        lqa_buf_puts(&b, i % 4 == 0 ? "\n\n" : "\n");
    }
    char *path = tmp_path("bad-utf8.txt");
    lqa_test_write(path, b.data, b.len);
    xt_docs l;
    lqa_err err;
    assert_int_equal(xt_parse_path(path, NULL, &l, &err), 0);
    /* the line number counts physical lines: paragraph breaks add an empty line */
    long physical = 1;
    for (size_t i = 0; i < b.len; i++) {
        if (b.data[i] == '\n') physical++;
        if (b.data[i] == (char)0xc3) break;
    }
    char want[600];
    snprintf(want, sizeof want, "%s:%ld: invalid UTF-8", path, physical);
    if (!strstr(l.warnings.data, want)) fail_msg("expected '%s' in warnings: %s", want, l.warnings.data);
    assert_non_null(strstr(l.docs[0].text.data, "broken \xef\xbf\xbd( byte"));
    xt_docs_free(&l);
    lqa_buf_free(&b);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codecs_roundtrip),
        cmocka_unit_test(test_concatenated_streams),
        cmocka_unit_test(test_truncated_streams),
        cmocka_unit_test(test_corrupt_and_trailing_gzip),
        cmocka_unit_test(test_read_all_limit),
        cmocka_unit_test(test_read_all_plain),
        cmocka_unit_test(test_xz_memory_limit),
        cmocka_unit_test(test_sniff_fixtures),
        cmocka_unit_test(test_compressed_parse_same),
        cmocka_unit_test(test_empty_binary_directory),
        cmocka_unit_test(test_forced_and_unknown_format),
        cmocka_unit_test(test_invalid_utf8_warns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
