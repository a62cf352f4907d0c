/* metrics.c: SQuAD-style normalisation, exact match, token F1 and "answer contained". Bytes
 * >= 0x80 (UTF-8 letters) are kept as they are: SQuAD's string.punctuation is ASCII only. */
#include "eval/metrics.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

static int is_article(const char *w, size_t n) {
    return (n == 1 && w[0] == 'a') || (n == 2 && memcmp(w, "an", 2) == 0) || (n == 3 && memcmp(w, "the", 3) == 0);
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *lqa_squad_normalize(const char *s) {
    size_t n = strlen(s);
    /* pass 1: lower case, drop punctuation (SQuAD removes it without inserting a space) */
    char *t = lqa_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 && ispunct(c)) continue;
        t[k++] = (char)(c < 0x80 ? tolower(c) : c);
    }
    t[k] = '\0';
    /* pass 2: split on whitespace, drop articles, join with one space */
    char *out = lqa_malloc(k + 1);
    size_t o = 0, i = 0;
    while (i < k) {
        while (i < k && is_space((unsigned char)t[i])) i++;
        size_t start = i;
        while (i < k && !is_space((unsigned char)t[i])) i++;
        size_t len = i - start;
        if (len == 0 || is_article(t + start, len)) continue;
        if (o) out[o++] = ' ';
        memcpy(out + o, t + start, len);
        o += len;
    }
    out[o] = '\0';
    free(t);
    return out;
}

int lqa_exact_match(const char *prediction, const char *gold) {
    char *p = lqa_squad_normalize(prediction), *g = lqa_squad_normalize(gold);
    int em = strcmp(p, g) == 0;
    free(p);
    free(g);
    return em;
}

/* Splits a normalised string (single spaces) into token pointers, in place. */
static char **split_tokens(char *s, int *n_out) {
    int cap = 1;
    for (char *c = s; *c; c++) cap += *c == ' ';
    char **tok = lqa_malloc(sizeof(char *) * (size_t)cap);
    int n = 0;
    for (char *c = s; *c;) {
        tok[n++] = c;
        char *sp = strchr(c, ' ');
        if (!sp) break;
        *sp = '\0';
        c = sp + 1;
    }
    *n_out = n;
    return tok;
}

double lqa_token_f1(const char *prediction, const char *gold) {
    char *p = lqa_squad_normalize(prediction), *g = lqa_squad_normalize(gold);
    int np, ng;
    char **pt = split_tokens(p, &np), **gt = split_tokens(g, &ng);
    double f1;
    if (np == 0 || ng == 0) {
        f1 = (np == 0 && ng == 0) ? 1.0 : 0.0;
    } else {
        /* multiset intersection: each gold token can be matched once (Counter & Counter) */
        char *used = lqa_calloc((size_t)ng, 1);
        int common = 0;
        for (int i = 0; i < np; i++)
            for (int j = 0; j < ng; j++)
                if (!used[j] && strcmp(pt[i], gt[j]) == 0) {
                    used[j] = 1;
                    common++;
                    break;
                }
        free(used);
        if (common == 0) {
            f1 = 0.0;
        } else {
            double prec = (double)common / np, rec = (double)common / ng;
            f1 = 2 * prec * rec / (prec + rec);
        }
    }
    free(pt);
    free(gt);
    free(p);
    free(g);
    return f1;
}

int lqa_answer_contained(const char *prediction, const char *gold) {
    char *p = lqa_squad_normalize(prediction), *g = lqa_squad_normalize(gold);
    size_t gl = strlen(g);
    int found = 0;
    if (gl > 0) {
        for (const char *hit = strstr(p, g); hit && !found; hit = strstr(hit + 1, g)) {
            int left_ok = hit == p || hit[-1] == ' ';
            int right_ok = hit[gl] == '\0' || hit[gl] == ' ';
            found = left_ok && right_ok;
        }
    }
    free(p);
    free(g);
    return found;
}
