/* test_prose_util.h: random prose fixtures for the ingest tests (test_ingest_cli,
 * test_ingest_threads): words with an occasional multi-byte character, sentences, and Markdown
 * files with headings. Deterministic from the caller's rng. Header-only: the test binaries link
 * only testutil.c. */
#ifndef LQA_TEST_PROSE_UTIL_H
#define LQA_TEST_PROSE_UTIL_H

#include "common/buf.h"
#include "common/rng.h"
#include "tests/testutil.h"

static inline void rand_word(lqa_rng *r, lqa_buf *b, int cap) {
    int n = 3 + (int)lqa_rng_below(r, 7);
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + lqa_rng_below(r, 26));
        lqa_buf_putc(b, i == 0 && cap ? (char)(c - 32) : c);
    }
    if (lqa_rng_below(r, 12) == 0) lqa_buf_puts(b, "\xc3\xa9\xe2\x82\xac"); /* é€: multi-byte */
}

static inline void rand_sentence(lqa_rng *r, lqa_buf *b) {
    int n = 6 + (int)lqa_rng_below(r, 10);
    for (int i = 0; i < n; i++) {
        if (i) lqa_buf_putc(b, ' ');
        rand_word(r, b, i == 0);
    }
    lqa_buf_puts(b, ". ");
}

/* Markdown with headings (first heading holds `marker`, a word to search for). */
static inline void write_markdown(lqa_rng *r, const char *path, const char *marker, int sections) {
    lqa_buf b = {0};
    lqa_buf_printf(&b, "# Manual %s\n\n", marker);
    for (int s = 0; s < sections; s++) {
        lqa_buf_printf(&b, "## Part %d ", s + 1);
        rand_word(r, &b, 1);
        lqa_buf_puts(&b, "\n\n");
        for (int p = 0; p < 4; p++) {
            for (int k = 0; k < 4; k++) rand_sentence(r, &b);
            lqa_buf_puts(&b, "\n\n");
        }
    }
    lqa_test_write(path, b.data, b.len);
    lqa_buf_free(&b);
}

#endif
