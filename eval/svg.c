/* svg.c: inline SVG charts for the report (see svg.h). Plain geometry: a plot area inside fixed
 * margins, axis ticks at "nice" values, a legend under the title. */
#include "eval/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void lqa_xml_escape(lqa_buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': lqa_buf_puts(b, "&amp;"); break;
        case '<': lqa_buf_puts(b, "&lt;"); break;
        case '>': lqa_buf_puts(b, "&gt;"); break;
        case '"': lqa_buf_puts(b, "&quot;"); break;
        case '\'': lqa_buf_puts(b, "&#39;"); break;
        default: lqa_buf_putc(b, *s);
        }
    }
}

const char *lqa_svg_color(int i) {
    static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                    "#7f7f7f", "#bcbd22", "#17becf"};
    return palette[i % 10];
}

enum { W = 640, H = 360, ML = 64, MR = 20, MT = 56, MB = 52 };

static void text(lqa_buf *b, double x, double y, const char *anchor, int size, const char *weight, const char *s) {
    lqa_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" font-weight=\"%s\">", x, y,
                   anchor, size, weight);
    lqa_xml_escape(b, s);
    lqa_buf_puts(b, "</text>\n");
}

static void open_svg(lqa_buf *b, int w, int h, const char *title) {
    lqa_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "font-family=\"sans-serif\" role=\"img\">\n<title>", w, h, w, h);
    lqa_xml_escape(b, title);
    lqa_buf_printf(b, "</title>\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", w, h);
    text(b, w / 2.0, 20, "middle", 15, "bold", title);
}

/* Legend: a row of coloured swatches with names under the title. */
static void legend(lqa_buf *b, const char *const *names, int n, int w) {
    double x = ML;
    for (int i = 0; i < n; i++) {
        lqa_buf_printf(b, "<rect x=\"%.1f\" y=\"30\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, lqa_svg_color(i));
        text(b, x + 16, 40, "start", 12, "normal", names[i]);
        x += 28 + 7.0 * (double)strlen(names[i]);
        if (x > w - 80) x = ML;   /* long legends wrap onto the same line start; rare */
    }
}

/* Nice tick step for a range: 1, 2 or 5 times a power of ten, about 5 ticks. */
static double nice_step(double range) {
    if (range <= 0) return 1;
    double raw = range / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void y_axis(lqa_buf *b, double lo, double hi, double step, const char *label, int plot_w) {
    for (double v = ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
        double y = MT + (H - MT - MB) * (1 - (v - lo) / (hi - lo));
        lqa_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y, ML + plot_w, y);
        char t[32];
        snprintf(t, sizeof t, "%g", fabs(v) < step * 1e-9 ? 0.0 : v);
        text(b, ML - 6, y + 4, "end", 11, "normal", t);
    }
    lqa_buf_printf(b, "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 %.1f)\">",
                   (MT + H - MB) / 2.0, (MT + H - MB) / 2.0);
    lqa_xml_escape(b, label);
    lqa_buf_puts(b, "</text>\n");
    lqa_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, MT, ML, H - MB);
    lqa_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", ML, H - MB, ML + plot_w, H - MB);
}

void lqa_svg_line_chart(lqa_buf *b, const char *title, const char *x_label, const char *y_label,
                        const lqa_svg_series *series, int n_series, int log_x) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            if (isnan(series[s].y[i])) continue;
            double x = log_x ? log2(series[s].x[i]) : series[s].x[i];
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, series[s].y[i]), yhi = fmax(yhi, series[s].y[i]);
        }
    open_svg(b, W, H, title);
    const char *names[16] = {0};
    for (int s = 0; s < n_series && s < 16; s++) names[s] = series[s].name;
    legend(b, names, n_series < 16 ? n_series : 16, W);
    if (!isfinite(xlo)) {
        text(b, W / 2.0, H / 2.0, "middle", 13, "normal", "no data");
        lqa_buf_puts(b, "</svg>\n");
        return;
    }
    if (xhi == xlo) xlo -= 1, xhi += 1;
    double pad = (yhi - ylo) * 0.08 + 1e-9 + (yhi == ylo ? fabs(yhi) * 0.1 + 0.5 : 0);
    double step = nice_step(yhi - ylo + 2 * pad);
    ylo = floor((ylo - pad) / step) * step, yhi = ceil((yhi + pad) / step) * step;
    if (ylo < 0 && yhi > 0 && ylo > -step) ylo = 0;
    int pw = W - ML - MR, ph = H - MT - MB;
    y_axis(b, ylo, yhi, step, y_label, pw);
    /* x ticks at the data's x values, each once */
    double drawn[256];
    int n_drawn = 0;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            int seen = 0;
            for (int k = 0; k < n_drawn; k++) seen |= drawn[k] == series[s].x[i];
            if (seen || n_drawn == 256) continue;
            drawn[n_drawn++] = series[s].x[i];
            double xv = log_x ? log2(series[s].x[i]) : series[s].x[i];
            double x = ML + pw * (xv - xlo) / (xhi - xlo);
            char t[32];
            snprintf(t, sizeof t, "%g", series[s].x[i]);
            lqa_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>\n", x, H - MB, x,
                           H - MB + 4);
            text(b, x, H - MB + 17, "middle", 11, "normal", t);
        }
    text(b, ML + pw / 2.0, H - 10, "middle", 12, "normal", x_label);
    for (int s = 0; s < n_series; s++) {
        lqa_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", lqa_svg_color(s));
        for (int i = 0; i < series[s].n; i++) {
            if (isnan(series[s].y[i])) continue;
            double xv = log_x ? log2(series[s].x[i]) : series[s].x[i];
            lqa_buf_printf(b, "%.1f,%.1f ", ML + pw * (xv - xlo) / (xhi - xlo),
                           MT + ph * (1 - (series[s].y[i] - ylo) / (yhi - ylo)));
        }
        lqa_buf_puts(b, "\"/>\n");
        for (int i = 0; i < series[s].n; i++) {
            if (isnan(series[s].y[i])) continue;
            double xv = log_x ? log2(series[s].x[i]) : series[s].x[i];
            lqa_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", ML + pw * (xv - xlo) / (xhi - xlo),
                           MT + ph * (1 - (series[s].y[i] - ylo) / (yhi - ylo)), lqa_svg_color(s));
            lqa_xml_escape(b, series[s].name);
            lqa_buf_printf(b, ": %.3f at %g</title></circle>\n", series[s].y[i], series[s].x[i]);
        }
    }
    lqa_buf_puts(b, "</svg>\n");
}

void lqa_svg_bar_chart(lqa_buf *b, const char *title, const char *y_label, const char *const *categories, int n_cat,
                       const char *const *series_names, int n_series, const double *values, double y_max) {
    open_svg(b, W, H, title);
    legend(b, series_names, n_series, W);
    int pw = W - ML - MR, ph = H - MT - MB;
    y_axis(b, 0, y_max, nice_step(y_max), y_label, pw);
    if (n_cat == 0 || n_series == 0) {
        text(b, W / 2.0, H / 2.0, "middle", 13, "normal", "no data");
        lqa_buf_puts(b, "</svg>\n");
        return;
    }
    int finite = 0, positive = 0;
    for (int i = 0; i < n_cat * n_series; i++) finite += !isnan(values[i]), positive += values[i] > 0;
    if (finite == 0 || positive == 0) /* a chart with no bar to see says why */
        text(b, ML + pw / 2.0, MT + ph / 2.0, "middle", 13, "normal",
             finite ? "every value is 0" : "no values: nothing was scored");
    double group_w = (double)pw / n_cat, bar_w = group_w * 0.8 / n_series;
    for (int c = 0; c < n_cat; c++) {
        double gx = ML + c * group_w + group_w * 0.1;
        for (int s = 0; s < n_series; s++) {
            double v = values[s * n_cat + c];
            if (isnan(v)) continue;
            double h = fmax(ph * fmin(fmax(v, 0), y_max) / y_max, 1.5); /* a 0 shows as a line, unlike a gap */
            lqa_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
                           gx + s * bar_w, MT + ph - h, bar_w * 0.92, h, lqa_svg_color(s));
            lqa_xml_escape(b, series_names[s]);
            lqa_buf_puts(b, " / ");
            lqa_xml_escape(b, categories[c]);
            lqa_buf_printf(b, ": %.1f</title></rect>\n", v);
        }
        text(b, ML + (c + 0.5) * group_w, H - MB + 17, "middle", 11, "normal", categories[c]);
    }
    lqa_buf_puts(b, "</svg>\n");
}

/* Light grey (0) to dark green (1). */
static void heat_color(double v, char *out, size_t n) {
    v = fmin(fmax(v, 0), 1);
    /* light grey at 0 so an all-wrong cell still reads as a cell on the white page */
    int r = (int)(238 - v * (238 - 26)), g = (int)(240 - v * (240 - 152)), bl = (int)(238 - v * (238 - 80));
    snprintf(out, n, "#%02x%02x%02x", r, g, bl);
}

void lqa_svg_heatmap(lqa_buf *b, const char *title, const char *row_title, const char *col_title,
                     const char *const *row_labels, int n_rows, const char *const *col_labels, int n_cols,
                     const double *values) {
    int cell_w = n_cols > 8 ? 56 : 72, cell_h = 30, left = 80, top = 64;
    int w = left + n_cols * cell_w + 20, h = top + n_rows * cell_h + 16;
    int title_w = 40 + (int)(7.5 * (double)strlen(title));   /* bold 15px: about 7.5px a character */
    if (w < title_w) w = title_w;
    open_svg(b, w, h, title);
    text(b, left + n_cols * cell_w / 2.0, 44, "middle", 12, "normal", col_title);
    for (int c = 0; c < n_cols; c++) text(b, left + (c + 0.5) * cell_w, top - 6, "middle", 11, "normal", col_labels[c]);
    for (int r = 0; r < n_rows; r++) {
        text(b, left - 8, top + (r + 0.5) * cell_h + 4, "end", 11, "normal", row_labels[r]);
        for (int c = 0; c < n_cols; c++) {
            double v = values[r * n_cols + c];
            char fill[8] = "#eeeeee", label[16] = "-";
            if (!isnan(v)) {
                heat_color(v, fill, sizeof fill);
                snprintf(label, sizeof label, "%.1f%%", 100 * v);
            }
            lqa_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"white\"/>\n",
                           left + c * cell_w, top + r * cell_h, cell_w, cell_h, fill);
            lqa_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" fill=\"%s\">%s</text>\n",
                           left + (c + 0.5) * cell_w, top + (r + 0.5) * cell_h + 4, !isnan(v) && v > 0.6 ? "white" : "#222",
                           label);
        }
    }
    lqa_buf_printf(b, "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 %.1f)\">",
                   top + n_rows * cell_h / 2.0, top + n_rows * cell_h / 2.0);
    lqa_xml_escape(b, row_title);
    lqa_buf_puts(b, "</text>\n");
    lqa_buf_puts(b, "</svg>\n");
}
