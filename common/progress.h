/* progress.h: progress of long work on stderr with rate and ETA: on a terminal a one-line bar
 * redrawn in place; when stderr is a file or pipe (logs, CI), a plain line every 30 s
 * (LQA_PROGRESS_INTERVAL seconds) and a closing line, so a log shows long steps alive without
 * carriage returns, and short work writes nothing. LQA_PROGRESS=0 silences both. */
#ifndef LQA_PROGRESS_H
#define LQA_PROGRESS_H

#include <stdint.h>

typedef struct lqa_progress {
    char label[64];
    char unit[16];      /* "docs", "tok", "MB", "step" */
    double total;       /* 0 when unknown: no ETA, no percentage */
    double done;
    double t_start;     /* seconds, monotonic */
    double t_last_draw;
    int enabled;        /* LQA_PROGRESS != 0 */
    int tty;            /* stderr is a terminal: the bar; otherwise lines at intervals */
    double interval;    /* seconds between lines when not a terminal */
    int lines;          /* lines drawn so far */
    char extra[96];     /* free text appended to the line, e.g. "loss 2.31" */
} lqa_progress;

void lqa_progress_start(lqa_progress *p, const char *label, double total, const char *unit);
void lqa_progress_update(lqa_progress *p, double done);   /* absolute count; redraws at most 10x/s
                                                             (a terminal) or every interval (a file) */
void lqa_progress_add(lqa_progress *p, double delta);
void lqa_progress_set_extra(lqa_progress *p, const char *extra);
void lqa_progress_finish(lqa_progress *p);                 /* final line, then newline */

/* Seconds from a monotonic clock; the project's one timer. */
double lqa_now(void);

#endif
