/* progress.h: a one-line progress bar on stderr with rate and ETA. Silent when stderr is not a
 * terminal (logs, pipes, CI), so long work shows progress to people and nothing to files. */
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
    int enabled;        /* stderr is a terminal and LQA_PROGRESS != 0 */
    char extra[96];     /* free text appended to the line, e.g. "loss 2.31" */
} lqa_progress;

void lqa_progress_start(lqa_progress *p, const char *label, double total, const char *unit);
void lqa_progress_update(lqa_progress *p, double done);   /* absolute count; redraws at most 10x/s */
void lqa_progress_add(lqa_progress *p, double delta);
void lqa_progress_set_extra(lqa_progress *p, const char *extra);
void lqa_progress_finish(lqa_progress *p);                 /* final line, then newline */

/* Seconds from a monotonic clock; the project's one timer. */
double lqa_now(void);

#endif
