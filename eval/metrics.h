/* metrics.h: answer scoring as SQuAD v1.1's official evaluate script does it: normalise (lower
 * case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace), then exact
 * match, token F1 (bag-of-tokens overlap) and "answer contained" (the normalised gold answer is
 * a whole-token substring of the normalised prediction). */
#ifndef LQA_EVAL_METRICS_H
#define LQA_EVAL_METRICS_H

/* Normalised copy of s (caller frees). */
char *lqa_squad_normalize(const char *s);
/* 1 when the normalised strings are equal. */
int lqa_exact_match(const char *prediction, const char *gold);
/* Token F1 in [0, 1]; two empty answers score 1 (as SQuAD 2.0 does), one empty scores 0. */
double lqa_token_f1(const char *prediction, const char *gold);
/* 1 when the normalised gold appears in the normalised prediction on token boundaries. */
int lqa_answer_contained(const char *prediction, const char *gold);

#endif
