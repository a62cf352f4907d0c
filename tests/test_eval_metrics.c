/* test_eval_metrics.c: SQuAD normalisation, exact match, token F1 and "answer contained" on a
 * table of cases worked out by hand from SQuAD v1.1's evaluate script, plus random decorations
 * (case, punctuation, articles, whitespace) that must not change the normalised form. */
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "eval/metrics.h"

static const struct { const char *in, *norm; } norm_cases[] = {
    {"The Eiffel Tower", "eiffel tower"},
    {"  an  apple,\ta pear\nand THE end. ", "apple pear and end"},
    {"U.S.A.", "usa"},
    {"rock-'n'-roll!", "rocknroll"},
    {"theatre anthem", "theatre anthem"},   /* articles only as whole words */
    {"A", ""},
    {"", ""},
    {"$1,000.50", "100050"},
    {"(the) [a] {an}", ""},
    {"Zoë's café", "zoës café"},           /* non-ASCII kept, ASCII apostrophe dropped */
    {"a.b", "ab"},
    {"x  -  y", "x y"},
};

static void test_normalize_table(void **state) {
    for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        char *n = lqa_squad_normalize(norm_cases[i].in);
        if (strcmp(n, norm_cases[i].norm) != 0)
            fail_msg("normalize(\"%s\") = \"%s\", expected \"%s\"", norm_cases[i].in, n, norm_cases[i].norm);
        free(n);
    }
}

static const struct { const char *pred, *gold; int em; double f1; int contained; } score_cases[] = {
    {"the Eiffel Tower", "Eiffel tower.", 1, 1.0, 1},
    {"Paris", "London", 0, 0.0, 0},
    {"in Paris, France", "Paris", 0, 2.0 * (1.0 / 3) * 1.0 / (1.0 / 3 + 1.0), 1},
    {"Paris", "Paris France", 0, 2.0 * 1.0 * 0.5 / 1.5, 0},
    {"new new york", "new york", 0, 2.0 * (2.0 / 3) * 1.0 / (2.0 / 3 + 1.0), 1},   /* multiset overlap */
    {"york new", "new york", 0, 1.0, 0},                                           /* bag of words, order-free */
    {"Parisian", "Paris", 0, 0.0, 0},                                              /* token boundary */
    {"1,234", "1234", 1, 1.0, 1},
    {"the", "a", 1, 1.0, 0},   /* both normalise to empty: equal, F1 1, nothing to contain */
    {"answer", "", 0, 0.0, 0},
};

static void test_scores_table(void **state) {
    for (size_t i = 0; i < sizeof score_cases / sizeof score_cases[0]; i++) {
        const char *p = score_cases[i].pred, *g = score_cases[i].gold;
        if (lqa_exact_match(p, g) != score_cases[i].em) fail_msg("EM(\"%s\", \"%s\")", p, g);
        double f1 = lqa_token_f1(p, g);
        if (fabs(f1 - score_cases[i].f1) > 1e-9)
            fail_msg("F1(\"%s\", \"%s\") = %f, expected %f", p, g, f1, score_cases[i].f1);
        if (lqa_answer_contained(p, g) != score_cases[i].contained) fail_msg("contained(\"%s\", \"%s\")", p, g);
    }
}

/* Decorating a random answer with case changes, punctuation, articles and whitespace keeps EM
 * and F1 at 1; dropping one of its words lowers F1 to exactly 2(n-1)/(2n-1). */
static void test_random_decorations(void **state) {
    lqa_rng r;
    lqa_rng_seed(&r, lqa_test_seed());
    static const char *junk[] = {" ", "  ", "\t", ", ", ". ", " the ", " a ", " an ", "!", "\"", " (", ") "};
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + (int)lqa_rng_below(&r, 6);
        lqa_buf gold = {0}, dec = {0}, drop = {0};
        int dropped = (int)lqa_rng_below(&r, (uint64_t)n);
        for (int w = 0; w < n; w++) {
            char word[12];
            int len = 2 + (int)lqa_rng_below(&r, 8);
            for (int c = 0; c < len; c++) word[c] = (char)('b' + lqa_rng_below(&r, 24));   /* never "a" alone */
            word[len] = '\0';
            lqa_buf_printf(&gold, "%s%s", w ? " " : "", word);
            if (w != dropped) lqa_buf_printf(&drop, "%s ", word);
            lqa_buf_puts(&dec, junk[lqa_rng_below(&r, 12)]);
            for (int c = 0; c < len; c++) lqa_buf_putc(&dec, lqa_rng_below(&r, 2) ? (char)(word[c] - 32) : word[c]);
            lqa_buf_puts(&dec, junk[lqa_rng_below(&r, 12)]);
            lqa_buf_putc(&dec, ' ');   /* punctuation alone would glue two words together */
        }
        assert_true(lqa_exact_match(dec.data, gold.data));
        assert_true(fabs(lqa_token_f1(dec.data, gold.data) - 1.0) < 1e-12);
        assert_true(lqa_answer_contained(dec.data, gold.data));
        double want = n == 1 ? 0.0 : 2.0 * (n - 1) / (2.0 * n - 1);
        assert_true(fabs(lqa_token_f1(drop.data ? drop.data : "", gold.data) - want) < 1e-9);
        lqa_buf_free(&gold);
        lqa_buf_free(&dec);
        lqa_buf_free(&drop);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_scores_table),
        cmocka_unit_test(test_random_decorations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
