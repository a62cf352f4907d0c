/* test_shards_util.h: fixtures shared by the dataset tests (test_tokenizer, test_shards,
 * test_build_cli): random English-like text from a seed, and a small tokenizer trained on it. */
#ifndef LQA_TEST_SHARDS_UTIL_H
#define LQA_TEST_SHARDS_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/rng.h"
#include "dataset/tokenizer.h"
#include "store/store.h"
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
static inline const char *fixture_tokenizer_threads(const char *dir, const char *name, uint64_t seed, int vocab,
                                                    int threads) {
    static char model[1024];
    char txt[1024];
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
    if (lqa_tok_train(txt, model, vocab, seed, threads, &err) != 0) {
        fprintf(stderr, "fixture tokenizer: %s\n", err.msg);
        exit(1);
    }
    return model;
}

/* Byte offset of the start of word w (0-based) in text, or the text length. */
static inline size_t fixture_word_start(const char *text, size_t len, int w) {
    size_t i = 0;
    for (int k = 0; k < w && i < len; k++) {
        while (i < len && text[i] != ' ' && text[i] != '\n') i++;
        while (i < len && (text[i] == ' ' || text[i] == '\n')) i++;
    }
    return i;
}

static inline const char *fixture_tokenizer(const char *dir, const char *name, uint64_t seed, int vocab) {
    return fixture_tokenizer_threads(dir, name, seed, vocab, 1);
}

/* A store at dir/name with n_docs random documents (paragraphs in [p_lo, p_hi], the first one
 * much longer) and qa_per_doc
 * extractive QA pairs each: the answer is a run of words copied from the document, the
 * evidence span the paragraph around it; about one pair in eight has no span. Every fourth
 * document is in the "valid" split. Returns the path (static buffer). */
static inline const char *fixture_store(const char *dir, const char *name, uint64_t seed, int n_docs, int p_lo,
                                        int p_hi, int qa_per_doc) {
    static char db[512];
    snprintf(db, sizeof db, "%s/%s", dir, name);
    lqa_err err = {{0}};
    lqa_store *s = lqa_store_open(db, 1, &err);
    if (!s) {
        fprintf(stderr, "fixture store: %s\n", err.msg);
        exit(1);
    }
    lqa_rng r;
    lqa_rng_seed(&r, seed);
    int64_t src = lqa_store_source(s, "fixture");
    for (int d = 0; d < n_docs; d++) {
        /* the first document is a long one (~100 KB), so tokenization cuts it into parts */
        int paras = d == 0 ? 350 : p_lo + (int)lqa_rng_below(&r, (uint64_t)(p_hi - p_lo + 1));
        char *text = fixture_doc(&r, paras);
        size_t len = strlen(text);
        uint8_t h[32];
        char hex[65];
        lqa_sha256(text, len, h);
        lqa_hex(h, 32, hex);
        lqa_store_begin(s);
        lqa_store_doc_in in = {src, hex, "doc", "txt", "doc.txt", d % 4 == 3 ? "valid" : "train", text, len, 0, 0};
        int64_t id = lqa_store_add_doc(s, &in);
        for (int q = 0; q < qa_per_doc; q++) {
            size_t a = fixture_word_start(text, len, (int)lqa_rng_below(&r, 400));
            if (a >= len) a = 0;
            size_t b = fixture_word_start(text + a, len - a, 2 + (int)lqa_rng_below(&r, 6)) + a;
            while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n')) b--;
            if (b <= a) { /* ran off the end: quote the first words instead */
                a = 0;
                b = fixture_word_start(text, len, 3);
                while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n')) b--;
            }
            char *answer = lqa_strndup(text + a, b - a);
            size_t ea = a, eb = b; /* evidence: the paragraph holding the answer */
            while (ea > 0 && !(text[ea - 1] == '\n')) ea--;
            while (eb < len && text[eb] != '\n') eb++;
            int no_span = lqa_rng_below(&r, 8) == 0;
            char question[160];
            snprintf(question, sizeof question, "Which words of paragraph %u are quoted here, number %u?",
                     (unsigned)lqa_rng_below(&r, 100), (unsigned)q);
            lqa_store_qa_in qa = {id, question, answer, NULL, "extractive", "fixture",
                                  no_span ? 0 : ea, no_span ? 0 : eb, len, seed, 0, 0};
            lqa_store_add_qa(s, &qa);
            free(answer);
        }
        lqa_store_commit(s);
        free(text);
    }
    lqa_store_close(s);
    return db;
}

#endif
