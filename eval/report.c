/* report.c: the evaluation report (report.h). Sections: runs and summary, QA by kind and by
 * length, passkey heatmaps, perplexity against context length, settings of every run. Every
 * table goes to both documents through the doc_* helpers; charts go inline into the HTML and
 * to .svg files the markdown links. */
#include "eval/report.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "common/json.h"
#include "eval/svg.h"

typedef struct run {
    const char *path;
    json_t *j;
    char name[128];
} run;

/* A table is gathered whole before it is written, so that each column's alignment can follow
 * its cells: numbers (and "-") right-aligned, text left-aligned. */
enum { MAX_COLS = 80 };
typedef struct table {
    int n_cols, n_rows, cap;   /* rows include the header (row 0) */
    char **cells;
    char align[MAX_COLS];      /* 'l' / 'r' per column; 0: decided from the cells */
} table;

typedef struct doc {
    lqa_buf md, html;
    const char *dir;
    lqa_err *err;
    int failed;
    table t;
} doc;

/* ---- the two documents side by side ---- */

static void md_cell(lqa_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '|') lqa_buf_puts(b, "\\|");
        else if (*s == '\n') lqa_buf_putc(b, ' ');
        else lqa_buf_putc(b, *s);
    }
}

/* Escapes a table cell's text; a long cell may break after '/' ',' '_' '=' (paths, lists),
 * never inside a word or a number (the CSS has no overflow-wrap:anywhere). */
static void html_cell(lqa_buf *b, const char *s) {
    int long_cell = strlen(s) > 40;
    for (; *s; s++) {
        char one[2] = {*s, 0};
        lqa_xml_escape(b, one);
        if (long_cell && strchr("/,_=", *s) && s[1]) lqa_buf_puts(b, "<wbr>");
    }
}

static void doc_heading(doc *d, int level, const char *title) {
    lqa_buf_printf(&d->md, "\n%.*s %s\n\n", level, "######", title);
    lqa_buf_printf(&d->html, "<h%d>", level);
    lqa_xml_escape(&d->html, title);
    lqa_buf_printf(&d->html, "</h%d>\n", level);
}

static void doc_para(doc *d, const char *text) {
    lqa_buf_printf(&d->md, "%s\n\n", text);
    lqa_buf_puts(&d->html, "<p>");
    lqa_xml_escape(&d->html, text);
    lqa_buf_puts(&d->html, "</p>\n");
}

/* A figure as the report prints it: "-", or a decimal number, optionally with a sign or a
 * trailing '%'. */
static int is_numeric(const char *s) {
    if (!strcmp(s, "-")) return 1;
    char *end;
    if (!*s || isspace((unsigned char)*s)) return 0;
    strtod(s, &end);
    if (end == s) return 0;
    if (*end == '%') end++;
    return *end == '\0';
}

static void doc_row(doc *d, const char *const *cells, int n, int header) {
    (void)header;
    table *t = &d->t;
    if (t->n_rows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cells = lqa_realloc(t->cells, sizeof(char *) * (size_t)t->cap * (size_t)t->n_cols);
    }
    for (int i = 0; i < t->n_cols; i++) t->cells[(size_t)t->n_rows * t->n_cols + i] = lqa_strdup(i < n ? cells[i] : "");
    t->n_rows++;
}

/* align: one 'l' or 'r' per column, or NULL to decide each column from its cells. */
static void doc_table_begin(doc *d, const char *const *headers, int n, const char *align) {
    memset(&d->t, 0, sizeof d->t);
    d->t.n_cols = n < MAX_COLS ? n : MAX_COLS;
    for (int i = 0; align && i < d->t.n_cols && align[i]; i++) d->t.align[i] = align[i];
    doc_row(d, headers, n, 1);
}

static void doc_table_end(doc *d) {
    table *t = &d->t;
    for (int c = 0; c < t->n_cols; c++) {
        if (t->align[c]) continue;
        int numeric = t->n_rows > 1;
        for (int r = 1; r < t->n_rows && numeric; r++) numeric = is_numeric(t->cells[(size_t)r * t->n_cols + c]);
        t->align[c] = numeric ? 'r' : 'l';
    }
    lqa_buf_puts(&d->html, "<div class=\"tw\"><table>\n");
    for (int r = 0; r < t->n_rows; r++) {
        lqa_buf_puts(&d->md, "|");
        lqa_buf_puts(&d->html, "<tr>");
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = t->cells[(size_t)r * t->n_cols + c];
            lqa_buf_putc(&d->md, ' ');
            md_cell(&d->md, s);
            lqa_buf_puts(&d->md, " |");
            /* a single short token (a run name, a bucket) stays whole: browsers break after '-' */
            int one_token = strlen(s) <= 32 && !strpbrk(s, " \t\n"), short_head = !r && strlen(s) <= 8;
            lqa_buf_printf(&d->html, "<%s%s>", r ? "td" : "th",
                           t->align[c] == 'r' ? (short_head ? " class=\"num nw\"" : " class=\"num\"")
                           : one_token && r ? " class=\"nw\"" : "");
            html_cell(&d->html, s);
            lqa_buf_puts(&d->html, r ? "</td>" : "</th>");
            free(t->cells[(size_t)r * t->n_cols + c]);
        }
        lqa_buf_puts(&d->md, "\n");
        lqa_buf_puts(&d->html, "</tr>\n");
        if (r == 0) {
            lqa_buf_puts(&d->md, "|");
            for (int c = 0; c < t->n_cols; c++) lqa_buf_puts(&d->md, t->align[c] == 'r' ? " ---: |" : " --- |");
            lqa_buf_puts(&d->md, "\n");
        }
    }
    lqa_buf_puts(&d->md, "\n");
    lqa_buf_puts(&d->html, "</table></div>\n");
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* Inline SVG into the HTML; the same SVG to DIR/file for the markdown. */
static void doc_chart(doc *d, const char *file, const char *alt, lqa_buf *svg) {
    lqa_buf_printf(&d->html, "<figure>\n%s</figure>\n", svg->data);
    char *path = lqa_path_join(d->dir, file);
    if (lqa_write_file_atomic(path, svg->data, svg->len, d->err)) d->failed = 1;
    free(path);
    lqa_buf_printf(&d->md, "![%s](%s)\n\n", alt, file);
    lqa_buf_free(svg);
}

/* The report's formats, one per measure: shares (EM, F1, contained, passkey) as percentages
 * with one decimal, perplexity with three, counts and lengths as integers. */
#define FMT_PCT "%.1f"
#define FMT_PPL "%.3f"
#define FMT_INT "%.0f"

static const char *fmt_num(char *buf, size_t n, const json_t *v, const char *fmt, double scale) {
    if (!json_is_number(v)) return "-";
    snprintf(buf, n, fmt, json_number_value(v) * scale);
    return buf;
}

/* The shortest decimal that reads back to the same double (1.34930509, not 1.3493050900000001),
 * without an exponent for whole numbers below 1e15 (10000, not 1e+04). */
static void fmt_shortest(char *buf, size_t n, double v) {
    int int_digits = fabs(v) >= 1 && fabs(v) < 1e15 ? (int)floor(log10(fabs(v))) + 1 : 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec > int_digits ? prec : int_digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Length of the longest prefix of s, at most max bytes, that ends on a UTF-8 character boundary. */
static size_t utf8_prefix(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return k;
}

/* s cut to at most max bytes at a word boundary, with an ellipsis when cut (into out). */
static const char *clip_words(char *out, size_t cap, const char *s, size_t max) {
    size_t len = strlen(s);
    if (max + 4 > cap) max = cap - 4;
    if (len <= max) {
        memcpy(out, s, len + 1);
        return out;
    }
    size_t k = utf8_prefix(s, len, max), space = k;
    while (space > 0 && !isspace((unsigned char)s[space])) space--;
    if (space > max / 2) k = space;   /* a word boundary not too far back; else a character one */
    while (k > 0 && (isspace((unsigned char)s[k - 1]) || strchr(",;:", s[k - 1]))) k--;
    memcpy(out, s, k);
    memcpy(out + k, "\xE2\x80\xA6", 4);   /* U+2026 and the NUL */
    return out;
}

static json_t *task(const run *r, const char *name) {
    json_t *t = json_object_get(json_object_get(r->j, "tasks"), name);
    return t && !json_object_get(t, "error") ? t : NULL;
}

/* ---- inputs ---- */

static int load_runs(const char *const *inputs, int n, run *runs, lqa_err *err) {
    for (int i = 0; i < n; i++) {
        runs[i].path = inputs[i];
        if (!(runs[i].j = lqa_json_load_file(inputs[i], err))) return -1;
        const char *schema = lqa_json_str(runs[i].j, "schema", "");
        if (strcmp(schema, "lqa-eval-results/1") != 0 || !json_is_object(json_object_get(runs[i].j, "tasks")))
            return lqa_err_set(err, "%s: schema \"%s\": expected an lqa-eval results file (schema lqa-eval-results/1 "
                               "with a tasks object)", inputs[i], schema);
        const char *name = lqa_json_str(json_object_get(runs[i].j, "model"), "name", "run");
        snprintf(runs[i].name, sizeof runs[i].name, "%s", name);
        for (int k = 0; k < i; k++)   /* two runs of one name stay apart in legends */
            if (strcmp(runs[k].name, runs[i].name) == 0) snprintf(runs[i].name, sizeof runs[i].name, "%s #%d", name, i + 1);
    }
    return 0;
}

/* Sorted union of the integer "length" fields of every run's task array. */
static int union_lengths(const run *runs, int n, const char *task_name, const char *array, int *out, int max) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        json_t *t = task(&runs[i], task_name), *p;
        size_t idx;
        json_array_foreach(json_object_get(t, array), idx, p) {
            int len = (int)lqa_json_int(p, "length", 0), seen = 0;
            for (int j = 0; j < k; j++) seen |= out[j] == len;
            if (!seen && k < max) out[k++] = len;
        }
    }
    for (int a = 1; a < k; a++)
        for (int b = a; b > 0 && out[b] < out[b - 1]; b--) {
            int t = out[b];
            out[b] = out[b - 1];
            out[b - 1] = t;
        }
    return k;
}

static double ppl_at(const run *r, int length) {
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(task(r, "ppl"), "points"), i, p) if (lqa_json_int(p, "length", 0) == length)
        return lqa_json_num(p, "ppl", NAN);
    return NAN;
}

/* ---- sections ---- */

/* Share of passkey trials answered right at one prompt length, over all depths. */
static double passkey_at(const run *r, int length) {
    long correct = 0, trials = 0;
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(task(r, "passkey"), "cells"), i, c) if (lqa_json_int(c, "length", 0) == length) {
        correct += lqa_json_int(c, "correct", 0);
        trials += lqa_json_int(c, "trials", 0);
    }
    return trials ? (double)correct / trials : NAN;
}

/* One summary cell: "-" where the run has no figure. */
static const char *fmt_or_dash(char *buf, size_t n, double v, const char *fmt, double scale) {
    if (isnan(v)) return "-";
    snprintf(buf, n, fmt, v * scale);
    return buf;
}

static void section_summary(doc *d, const run *runs, int n) {
    enum { FIXED = 8, MAXL = 32 };
    int pk_lens[MAXL], n_pk = union_lengths(runs, n, "passkey", "cells", pk_lens, MAXL);
    int ppl_lens[MAXL], n_ppl = union_lengths(runs, n, "ppl", "points", ppl_lens, MAXL);
    const char *h[FIXED + 2 * MAXL];
    char hbuf[2 * MAXL][32];
    int nh = 0;
    const char *fixed[FIXED] = {"run", "ctx", "window", "QA n", "QA EM %", "QA F1 %", "answer contained %", "passkey %"};
    for (int i = 0; i < FIXED; i++) h[nh++] = fixed[i];
    for (int i = 0; i < n_pk; i++) h[nh] = hbuf[nh - FIXED], snprintf(hbuf[nh - FIXED], 32, "passkey @%d", pk_lens[i]), nh++;
    for (int i = 0; i < n_ppl; i++) h[nh] = hbuf[nh - FIXED], snprintf(hbuf[nh - FIXED], 32, "ppl @%d", ppl_lens[i]), nh++;
    doc_heading(d, 2, "Summary");
    doc_para(d, "window: the positions a model was trained or interpolated for; a length beyond it was run with "
                "--extrapolate.");
    doc_table_begin(d, h, nh, NULL);
    for (int r = 0; r < n; r++) {
        char c[FIXED + 2 * MAXL][32];
        const char *cells[FIXED + 2 * MAXL];
        json_t *qa = task(&runs[r], "qa"), *pk = task(&runs[r], "passkey");
        json_t *model = json_object_get(runs[r].j, "model");
        cells[0] = runs[r].name;
        cells[1] = fmt_num(c[1], 32, json_object_get(json_object_get(runs[r].j, "settings"), "ctx"), FMT_INT, 1);
        cells[2] = fmt_num(c[2], 32, json_object_get(json_object_get(model, "config"), "max_position_embeddings"),
                           FMT_INT, 1);
        cells[3] = fmt_num(c[3], 32, json_object_get(qa, "n"), FMT_INT, 1);
        cells[4] = fmt_num(c[4], 32, json_object_get(qa, "em"), FMT_PCT, 100);
        cells[5] = fmt_num(c[5], 32, json_object_get(qa, "f1"), FMT_PCT, 100);
        cells[6] = fmt_num(c[6], 32, json_object_get(qa, "contained"), FMT_PCT, 100);
        cells[7] = fmt_num(c[7], 32, json_object_get(pk, "accuracy"), FMT_PCT, 100);
        int k = FIXED;
        for (int i = 0; i < n_pk; i++, k++) cells[k] = fmt_or_dash(c[k], 32, passkey_at(&runs[r], pk_lens[i]), FMT_PCT, 100);
        for (int i = 0; i < n_ppl; i++, k++) cells[k] = fmt_or_dash(c[k], 32, ppl_at(&runs[r], ppl_lens[i]), FMT_PPL, 1);
        doc_row(d, cells, nh, 0);
    }
    doc_table_end(d);
    for (int r = 0; r < n; r++) {   /* a task that failed says so here, not by a silent gap */
        const char *key;
        json_t *t;
        json_object_foreach(json_object_get(runs[r].j, "tasks"), key, t) if (json_object_get(t, "error")) {
            lqa_buf m = {0};
            lqa_buf_printf(&m, "%s: task %s failed: %s", runs[r].name, key, lqa_json_str(t, "error", "?"));
            doc_para(d, m.data);
            lqa_buf_free(&m);
        }
    }
}

/* Bucket order: "<=N" by N, then ">N". */
static int bucket_cmp(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int gx = x[0] == '>', gy = y[0] == '>';
    if (gx != gy) return gx - gy;
    long nx = strtol(x + (gx ? 1 : 2), NULL, 10), ny = strtol(y + (gy ? 1 : 2), NULL, 10);
    return (nx > ny) - (nx < ny);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* QA scores grouped by `group` ("by_kind" or "by_length"): a table and an F1 bar chart. */
static void qa_groups(doc *d, const run *runs, int n, const char *group, const char *title, const char *file) {
    const char *keys[256];
    int nk = 0;
    for (int r = 0; r < n; r++) {
        const char *key;
        json_t *g;
        json_object_foreach(json_object_get(task(&runs[r], "qa"), group), key, g) {
            int seen = 0;
            for (int i = 0; i < nk; i++) seen |= strcmp(keys[i], key) == 0;
            if (!seen && nk < 256) keys[nk++] = key;
        }
    }
    if (nk == 0) return;
    qsort(keys, (size_t)nk, sizeof keys[0], strcmp(group, "by_length") == 0 ? bucket_cmp : str_cmp);
    doc_heading(d, 3, title);
    const char *h[] = {strcmp(group, "by_length") == 0 ? "prompt tokens" : "kind", "run", "n", "EM %", "F1 %",
                       "contained %"};
    doc_table_begin(d, h, 6, NULL);
    double *f1 = lqa_malloc(sizeof(double) * (size_t)(n * nk));
    const char *names[64];
    for (int r = 0; r < n; r++) names[r] = runs[r].name;
    for (int k = 0; k < nk; k++)
        for (int r = 0; r < n; r++) {
            json_t *g = json_object_get(json_object_get(task(&runs[r], "qa"), group), keys[k]);
            f1[r * nk + k] = g ? 100 * lqa_json_num(g, "f1", NAN) : NAN;
            if (!g) continue;
            char c[4][32];
            const char *cells[] = {keys[k], runs[r].name, fmt_num(c[0], 32, json_object_get(g, "n"), FMT_INT, 1),
                                   fmt_num(c[1], 32, json_object_get(g, "em"), FMT_PCT, 100),
                                   fmt_num(c[2], 32, json_object_get(g, "f1"), FMT_PCT, 100),
                                   fmt_num(c[3], 32, json_object_get(g, "contained"), FMT_PCT, 100)};
            doc_row(d, cells, 6, 0);
        }
    doc_table_end(d);
    lqa_buf svg = {0};
    lqa_svg_bar_chart(&svg, title, "token F1 %", keys, nk, names, n, f1, 100.0);
    doc_chart(d, file, title, &svg);
    int any_above_zero = 0;
    for (int i = 0; i < n * nk; i++) any_above_zero |= f1[i] > 0;
    if (!any_above_zero)   /* an empty-looking chart says why */
        doc_para(d, "Every bar is at 0: no run's answers shared a token with the gold answers in any group (the sample "
                    "answers below show what the models wrote).");
    free(f1);
}

/* A few answers next to the gold ones: what the scores mean in practice. */
static void qa_examples(doc *d, const run *runs, int n) {
    doc_heading(d, 3, "Sample answers");
    const char *h[] = {"run", "kind", "question", "gold answer", "model answer", "F1 %"};
    doc_table_begin(d, h, 6, "lllllr");
    for (int r = 0; r < n; r++) {
        json_t *items = json_object_get(task(&runs[r], "qa"), "items"), *it;
        size_t i;
        json_array_foreach(items, i, it) {
            if (i == 5) break;
            char q[200], a[160], p[160], f1[16];
            const char *cells[] = {runs[r].name, lqa_json_str(it, "kind", "?"),
                                   clip_words(q, sizeof q, lqa_json_str(it, "question", ""), 160),
                                   clip_words(a, sizeof a, lqa_json_str(it, "answer", ""), 120),
                                   clip_words(p, sizeof p, lqa_json_str(it, "prediction", ""), 120),
                                   fmt_num(f1, sizeof f1, json_object_get(it, "f1"), FMT_PCT, 100)};
            doc_row(d, cells, 6, 0);
        }
    }
    doc_table_end(d);
}

static void section_qa(doc *d, const run *runs, int n) {
    int any = 0;
    for (int r = 0; r < n; r++) any |= task(&runs[r], "qa") != NULL;
    if (!any) return;
    doc_heading(d, 2, "Long-context QA");
    doc_para(d, "Greedy answers to the store's QA pairs, scored after SQuAD normalisation (lower case, no punctuation, "
                "no articles): exact match, token F1, and whether the gold answer is contained in the answer. Length "
                "buckets are the prompt's size before any cut to the evaluation context.");
    long items = 0;
    for (int r = 0; r < n; r++) items += lqa_json_int(task(&runs[r], "qa"), "n", 0);
    if (items == 0) {
        doc_para(d, "No QA pair was evaluated (the store has no pairs in the evaluated split, or --limit was 0), so "
                    "there are no QA charts.");
        return;
    }
    qa_groups(d, runs, n, "by_kind", "QA accuracy by kind", "qa_by_kind.svg");
    qa_groups(d, runs, n, "by_length", "QA accuracy by prompt length", "qa_by_length.svg");
    qa_examples(d, runs, n);
}

static void passkey_run(doc *d, const run *r, int idx) {
    json_t *pk = task(r, "passkey"), *set = json_object_get(pk, "settings");
    json_t *lj = json_object_get(set, "lengths"), *dj = json_object_get(set, "depths");
    int nl = (int)json_array_size(lj), nd = (int)json_array_size(dj);
    if (nl == 0 || nd == 0 || nl > 64 || nd > 64) return;
    char lab_l[64][16], lab_d[64][16];
    const char *ll[64], *dl[64];
    for (int i = 0; i < nl; i++) snprintf(lab_l[i], 16, "%lld", (long long)json_integer_value(json_array_get(lj, i))), ll[i] = lab_l[i];
    for (int i = 0; i < nd; i++) snprintf(lab_d[i], 16, "%g", json_number_value(json_array_get(dj, i))), dl[i] = lab_d[i];
    double *v = lqa_malloc(sizeof(double) * (size_t)(nl * nd));
    for (int i = 0; i < nl * nd; i++) v[i] = NAN;
    json_t *cell;
    size_t ci;
    json_array_foreach(json_object_get(pk, "cells"), ci, cell) {
        for (int li = 0; li < nl; li++)
            for (int di = 0; di < nd; di++)
                if (lqa_json_int(cell, "length", -1) == json_integer_value(json_array_get(lj, li)) &&
                    fabs(lqa_json_num(cell, "depth", -1) - json_number_value(json_array_get(dj, di))) < 1e-9)
                    v[di * nl + li] = lqa_json_num(cell, "accuracy", NAN);
    }
    char title[200];
    snprintf(title, sizeof title, "Passkey retrieval: %s (%lld trials per cell, %s filler)", r->name,
             (long long)lqa_json_int(set, "trials", 0), lqa_json_str(set, "filler", "?"));
    doc_heading(d, 3, r->name);
    lqa_buf svg = {0};
    lqa_svg_heatmap(&svg, title, "key depth", "prompt length (tokens)", dl, nd, ll, nl, v);
    char file[64];
    snprintf(file, sizeof file, "passkey_%d.svg", idx + 1);
    doc_chart(d, file, title, &svg);
    /* the same grid as a table for the markdown reader */
    const char *h[65];
    h[0] = "depth \\ length: % retrieved";
    for (int i = 0; i < nl; i++) h[i + 1] = ll[i];
    doc_table_begin(d, h, nl + 1, NULL);
    for (int di = 0; di < nd; di++) {
        char c[65][16];
        const char *cells[65];
        cells[0] = dl[di];
        for (int li = 0; li < nl; li++) {
            double x = v[di * nl + li];
            if (isnan(x)) cells[li + 1] = "-";
            else cells[li + 1] = (snprintf(c[li], 16, FMT_PCT, 100 * x), c[li]);
        }
        doc_row(d, cells, nl + 1, 0);
    }
    doc_table_end(d);
    free(v);
}

static void section_passkey(doc *d, const run *runs, int n) {
    int any = 0;
    for (int r = 0; r < n; r++) any |= task(&runs[r], "passkey") != NULL;
    if (!any) return;
    doc_heading(d, 2, "Passkey retrieval");
    doc_para(d, "A random key hidden at a relative depth in filler text (LongLoRA's protocol); a cell is the share of "
                "trials whose first generated digits equal the key.");
    for (int r = 0; r < n; r++)
        if (task(&runs[r], "passkey")) passkey_run(d, &runs[r], r);
}

static void section_ppl(doc *d, const run *runs, int n) {
    int lens[64], nl = union_lengths(runs, n, "ppl", "points", lens, 64);
    if (nl == 0) return;
    doc_heading(d, 2, "Perplexity against context length");
    doc_para(d, "Held-out documents scored with sliding windows of each length (stride in the settings); lower is "
                "better. A model that uses its longer context keeps falling as the window grows.");
    lqa_svg_series series[64];
    double xs[64][64], ys[64][64];
    int ns = 0;
    for (int r = 0; r < n && ns < 64; r++) {
        if (!task(&runs[r], "ppl")) continue;
        for (int i = 0; i < nl; i++) xs[ns][i] = lens[i], ys[ns][i] = ppl_at(&runs[r], lens[i]);
        series[ns] = (lqa_svg_series){runs[r].name, nl, xs[ns], ys[ns]};
        ns++;
    }
    lqa_buf svg = {0};
    lqa_svg_line_chart(&svg, "Perplexity against context length", "context length (tokens, log scale)", "perplexity",
                       series, ns, 1);
    doc_chart(d, "ppl.svg", "Perplexity against context length", &svg);
}

/* A JSON value as a settings cell: strings as they are, numbers in their shortest exact form,
 * arrays joined by ", ". */
static void format_value(lqa_buf *b, const json_t *v) {
    char num[40];
    if (json_is_string(v)) lqa_buf_puts(b, json_string_value(v));
    else if (json_is_integer(v)) lqa_buf_printf(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) fmt_shortest(num, sizeof num, json_real_value(v)), lqa_buf_puts(b, num);
    else if (json_is_boolean(v)) lqa_buf_puts(b, json_is_true(v) ? "true" : "false");
    else if (json_is_null(v)) lqa_buf_puts(b, "null");
    else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (i) lqa_buf_puts(b, ", ");
            format_value(b, e);
        }
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        lqa_buf_puts(b, s ? s : "?");
        free(s);
    }
}

/* Flattens a JSON object to "key: value" rows (objects one level down per dot). */
static void settings_rows(doc *d, const char *prefix, json_t *obj) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char k[160];
        snprintf(k, sizeof k, "%s%s", prefix, key);
        if (json_is_object(v)) {
            char p[170];
            snprintf(p, sizeof p, "%s.", k);
            settings_rows(d, p, v);
            continue;
        }
        lqa_buf val = {0};
        format_value(&val, v);
        const char *cells[] = {k, val.data ? val.data : ""};
        doc_row(d, cells, 2, 0);
        lqa_buf_free(&val);
    }
}

static void section_settings(doc *d, const run *runs, int n) {
    doc_heading(d, 2, "Settings of every run");
    for (int r = 0; r < n; r++) {
        doc_heading(d, 3, runs[r].name);
        const char *h[] = {"setting", "value"};
        doc_table_begin(d, h, 2, "ll");
        const char *cells[] = {"results file", runs[r].path};
        doc_row(d, cells, 2, 0);
        const char *top[] = {"created", "host"};
        for (int i = 0; i < 2; i++) {
            const char *c2[] = {top[i], lqa_json_str(runs[r].j, top[i], "?")};
            doc_row(d, c2, 2, 0);
        }
        settings_rows(d, "model.", json_object_get(runs[r].j, "model"));
        settings_rows(d, "", json_object_get(runs[r].j, "settings"));
        const char *key;
        json_t *t;
        json_object_foreach(json_object_get(runs[r].j, "tasks"), key, t) {
            char p[64];
            snprintf(p, sizeof p, "%s.", key);
            settings_rows(d, p, json_object_get(t, "settings"));
        }
        settings_rows(d, "timing.", json_object_get(runs[r].j, "timing"));
        doc_table_end(d);
    }
}

static const char *CSS =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    ".tw{overflow-x:auto;margin:0.5em 0 1.5em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}"
    "th{background:#f0f0f0}.num{text-align:right;font-variant-numeric:tabular-nums}td.num,.nw{white-space:nowrap}"
    "td{max-width:420px;overflow-wrap:normal;word-break:normal;hyphens:none}"
    "figure{margin:1em 0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}";

/* The notes table: tab-separated rows, the first of each table its header; "# text" lines are
 * paragraphs (and end the table before them). */
static int section_notes(doc *d, const char *path, lqa_err *err) {
    char *text;
    if (lqa_read_file(path, &text, NULL, err)) return -1;
    doc_heading(d, 2, "How these figures were made");
    int in_table = 0, n_cols = 0, line_no = 0, rc = 0;
    for (char *line = text, *next; line && *line && rc == 0; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (!strncmp(line, "# ", 2)) {
            if (in_table) doc_table_end(d), in_table = 0;
            doc_para(d, line + 2);
            continue;
        }
        const char *cells[16];
        int n = 0;
        for (char *c = line; c && n < 16; n++) {
            cells[n] = c;
            c = strchr(c, '\t');
            if (c) *c++ = '\0';
        }
        if (!in_table) {
            doc_table_begin(d, cells, n, NULL);
            in_table = 1;
            n_cols = n;
        } else if (n != n_cols) {
            rc = lqa_err_set(err, "%s:%d: a row of %d cells, expected %d (tab-separated, like its header)", path,
                             line_no, n, n_cols);
        } else {
            doc_row(d, cells, n, 0);
        }
    }
    if (in_table) doc_table_end(d);
    free(text);
    return rc;
}

int lqa_eval_report(const char *const *inputs, int n_inputs, const char *notes_tsv, const char *out_dir, lqa_err *err) {
    if (n_inputs > 64) return lqa_err_set(err, "%d results files: expected at most 64", n_inputs);
    run runs[64] = {{0}};
    int rc = -1;
    doc d = {.dir = out_dir, .err = err}, notes = {.dir = out_dir, .err = err};
    /* the notes are rendered first so that a bad notes file leaves no directory behind */
    if (load_runs(inputs, n_inputs, runs, err) || (notes_tsv && section_notes(&notes, notes_tsv, err)) ||
        lqa_mkdir_p(out_dir, err))
        goto out;
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    lqa_buf_printf(&d.html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                            "<title>LongQA evaluation report</title><style>%s</style></head><body>\n", CSS);
    lqa_buf_puts(&d.md, "# LongQA evaluation report\n");
    lqa_buf_puts(&d.html, "<h1>LongQA evaluation report</h1>\n");
    lqa_buf m = {0};
    lqa_buf_printf(&m, "Generated %s from %d results file%s.", when, n_inputs, n_inputs == 1 ? "" : "s");
    doc_para(&d, m.data);
    lqa_buf_free(&m);
    section_summary(&d, runs, n_inputs);
    section_qa(&d, runs, n_inputs);
    section_passkey(&d, runs, n_inputs);
    section_ppl(&d, runs, n_inputs);
    section_settings(&d, runs, n_inputs);
    if (notes.md.len) lqa_buf_append(&d.md, notes.md.data, notes.md.len);
    if (notes.html.len) lqa_buf_append(&d.html, notes.html.data, notes.html.len);
    lqa_buf_puts(&d.html, "</body></html>\n");
    if (d.failed) goto out;
    char *md_path = lqa_path_join(out_dir, "report.md"), *html_path = lqa_path_join(out_dir, "report.html");
    rc = lqa_write_file_atomic(md_path, d.md.data, d.md.len, err) ||
                 lqa_write_file_atomic(html_path, d.html.data, d.html.len, err) ? -1 : 0;
    free(md_path);
    free(html_path);
out:
    for (int i = 0; i < n_inputs; i++) json_decref(runs[i].j);
    lqa_buf_free(&d.md);
    lqa_buf_free(&d.html);
    lqa_buf_free(&notes.md);
    lqa_buf_free(&notes.html);
    return rc;
}
