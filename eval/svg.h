/* svg.h: the three charts of the evaluation report, drawn as inline SVG text (no scripts, no
 * fonts or files fetched): a line chart (perplexity against context length, one line per run),
 * grouped bars (QA scores by kind or length bucket, one bar per run) and a heatmap (passkey
 * accuracy by depth and length). All text passes through lqa_xml_escape. */
#ifndef LQA_EVAL_SVG_H
#define LQA_EVAL_SVG_H

#include "common/buf.h"

/* Appends s with & < > " ' escaped. */
void lqa_xml_escape(lqa_buf *b, const char *s);
/* The run colour for series i (a fixed palette that stays distinct in greyscale print). */
const char *lqa_svg_color(int i);

typedef struct lqa_svg_series {
    const char *name;
    int n;
    const double *x, *y;   /* n points; NaN y = missing */
} lqa_svg_series;

/* Line chart; log2 x axis when log_x (context lengths). */
void lqa_svg_line_chart(lqa_buf *b, const char *title, const char *x_label, const char *y_label,
                        const lqa_svg_series *series, int n_series, int log_x);

/* Grouped bars: values[s * n_cat + c] in [0, y_max] (NaN = missing), one group per category; a 0
 * is drawn as a thin line, and a chart whose values are all 0 or missing says so. */
void lqa_svg_bar_chart(lqa_buf *b, const char *title, const char *y_label, const char *const *categories, int n_cat,
                       const char *const *series_names, int n_series, const double *values, double y_max);

/* Heatmap: values[r * n_cols + c] in [0, 1] (NaN = not run), grey-to-green, value printed. */
void lqa_svg_heatmap(lqa_buf *b, const char *title, const char *row_title, const char *col_title,
                     const char *const *row_labels, int n_rows, const char *const *col_labels, int n_cols,
                     const double *values);

#endif
