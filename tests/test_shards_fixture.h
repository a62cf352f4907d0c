/* test_shards_fixture.h: fixtures shared by the dataset tests (test_tokenizer, test_shards,
 * test_build_cli): random English-like text from a seed, and a small tokenizer trained on it. */
#ifndef LQA_TEST_SHARDS_FIXTURE_H
#define LQA_TEST_SHARDS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/rng.h"
#include "dataset/tokenizer.h"
#include "tests/testutil.h"

/* Appends n_words random words (syllables, digits, punctuation, some non-ASCII) to b. */
static inline void fixture_words(lqa_buf *b, lqa_rng *r, int n_words) {
    static const char *syl[] = {"ka", "lo", "mir", "ten", "sa", "qu", "ber", "on", "ith", "ra", "ve", "du",
                                "an", "el", "stro", "ni", "é", "ß", "ph", "or"};
    static const char *punct[] = {".", ",", ";", "?", "!", ":"};
    for (int w = 0; w < n_words; w++) {
        if (w) lqa_buf_putc(b, ' ');
        if (lqa_rng_below(r, 12) == 0) {
            lqa_buf_printf(b, "%u", (unsigned)lqa_rng_below(r, 100000));
        } else {
            int n = 1 + (int)lqa_rng_below(r, 3);
            for (int s = 0; s < n; s++) lqa_buf_puts(b, syl[lqa_rng_below(r, sizeof syl / sizeof *syl)]);
        }
        if (lqa_rng_below(r, 8) == 0) lqa_buf_puts(b, punct[lqa_rng_below(r, 6)]);
    }
}

/* A document of n_paras paragraphs separated by blank lines. */
static inline char *fixture_doc(lqa_rng *r, int n_paras) {
    lqa_buf b = {0};
    for (int p = 0; p < n_paras; p++) {
        if (p) lqa_buf_puts(&b, "\n\n");
        fixture_words(&b, r, 20 + (int)lqa_rng_below(r, 60));
    }
    return lqa_buf_steal(&b);
}

/* Trains a small tokenizer on random text into dir/name; returns its path (static buffer). */
static inline const char *fixture_tokenizer(const char *dir, const char *name, uint64_t seed, int vocab) {
    static char model[512];
    char txt[512];
    snprintf(txt, sizeof txt, "%s/%s.txt", dir, name);
    snprintf(model, sizeof model, "%s/%s", dir, name);
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    lqa_buf b = {0};
    for (int line = 0; line < 2000; line++) {
        fixture_words(&b, &r, 5 + (int)lqa_rng_below(&r, 30));
        lqa_buf_putc(&b, '\n');
    }
    lqa_buf_puts(&b, "[INST] [/INST] Below is a document. Memorize the document and answer my question.\n");
    lqa_test_write(txt, b.data, b.len);
    lqa_buf_free(&b);
    lqa_err err = {{0}};
    if (lqa_tok_train(txt, model, vocab, seed, 1, &err) != 0) {
        fprintf(stderr, "fixture tokenizer: %s\n", err.msg);
        exit(1);
    }
    return model;
}

#endif
