/* progress.c: progress on stderr: a bar on a terminal, a line at intervals in a file (see progress.h). */
#include "common/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double lqa_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int progress_wanted(void) {
    const char *s = getenv("LQA_PROGRESS");
    return !(s && !strcmp(s, "0"));
}

/* Seconds between the plain lines written when stderr is a file or a pipe (LQA_PROGRESS_INTERVAL,
 * default 30): a log then shows that a long step is alive and how far it is, without the bar's
 * carriage returns. */
static double line_interval(void) {
    const char *s = getenv("LQA_PROGRESS_INTERVAL");
    double v = s ? atof(s) : 0;
    return v > 0 ? v : 30.0;
}

void lqa_progress_start(lqa_progress *p, const char *label, double total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->t_start = lqa_now();
    p->t_last_draw = p->t_start;
    p->enabled = progress_wanted();
    p->tty = isatty(STDERR_FILENO);
    p->interval = line_interval();
}

static void format_duration(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(lqa_progress *p, int final) {
    double now = lqa_now(), elapsed = now - p->t_start;
    double rate = elapsed > 0 ? p->done / elapsed : 0;
    char eta[32], el[32];
    format_duration(el, sizeof el, elapsed);
    if (p->total > 0 && rate > 0 && !final) format_duration(eta, sizeof eta, (p->total - p->done) / rate);
    else snprintf(eta, sizeof eta, "%s", final ? "done" : "--:--");
    /* on a terminal one line redrawn in place; in a file one line each time */
    const char *lead = p->tty ? "\r" : "", *tail = p->tty ? "\x1b[K" : "\n";
    if (p->total > 0) {
        int width = 24, filled = (int)(width * (p->done / p->total));
        if (filled > width) filled = width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "%s%s [%s] %3.0f%% %.0f/%.0f %s  %.1f %s/s  %s  ETA %s %s%s", lead, p->label, bar,
                100.0 * p->done / p->total, p->done, p->total, p->unit, rate, p->unit, el, eta, p->extra, tail);
    } else {
        fprintf(stderr, "%s%s %.0f %s  %.1f %s/s  %s %s%s", lead, p->label, p->done, p->unit, rate, p->unit, el,
                p->extra, tail);
    }
    if (final && p->tty) fputc('\n', stderr);
    fflush(stderr);
    p->t_last_draw = now;
    p->lines++;
}

void lqa_progress_update(lqa_progress *p, double done) {
    p->done = done;
    if (p->enabled && lqa_now() - p->t_last_draw >= (p->tty ? 0.1 : p->interval)) draw(p, 0);
}

void lqa_progress_add(lqa_progress *p, double delta) { lqa_progress_update(p, p->done + delta); }

void lqa_progress_set_extra(lqa_progress *p, const char *extra) {
    snprintf(p->extra, sizeof p->extra, "%s", extra);
}

void lqa_progress_finish(lqa_progress *p) {
    /* in a file, the closing line only for work that logged progress lines (short work stays quiet) */
    if (p->enabled && (p->tty || p->lines > 0)) draw(p, 1);
}
