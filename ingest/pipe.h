/* pipe.h: an ordered pipeline for lqa-ingest add. Units of work 0..n-1 (an input file, a
 * --join manual) run on worker threads, several at once; what a unit emits (events: a parsed
 * and prepared document, a warning, the unit's end) reaches the calling thread strictly in unit
 * order, and within a unit in the order emitted. So the caller, which alone writes the store,
 * sees exactly the sequence a single-threaded run makes, whatever the thread count.
 *
 * Memory stays bounded: at most 64 x workers units (1024 at most) are in flight, and a unit
 * that runs ahead of the one being consumed waits once the queued events pass a byte budget (a
 * streamed input, a MediaWiki dump or a large JSON array, is one unit: its documents queue a
 * few at a time). */
#ifndef LQA_PIPE_H
#define LQA_PIPE_H

#include <stddef.h>

typedef struct lqa_pipe_out lqa_pipe_out;

typedef struct lqa_pipe_ops {
    /* Does unit `unit` on worker `worker` (0..workers-1; a worker runs one unit at a time),
     * handing its results to lqa_pipe_emit(out, ...). Runs on a worker thread. */
    void (*work)(void *ctx, int worker, int unit, lqa_pipe_out *out);
    /* Takes one event (and frees it). Runs on the thread that called lqa_pipe_run. */
    void (*consume)(void *ctx, int unit, void *event);
} lqa_pipe_ops;

/* Queues event (bytes: about how much memory it holds) for the consumer; may wait for room. */
void lqa_pipe_emit(lqa_pipe_out *out, void *event, size_t bytes);

/* Runs every unit through ops with `workers` threads (no more than there are units: a single
 * unit still runs on its own thread, beside the consumer) and returns when all events are
 * consumed. sizes (NULL: unknown) estimates each unit's work, e.g. its input bytes: a large
 * unit then starts early enough that the consumer does not wait for it; events are consumed
 * in unit order all the same. workers <= 1: no thread at all, each unit runs on the calling
 * thread and every event is consumed as it is emitted (the single-threaded run). */
void lqa_pipe_run(int n_units, const double *sizes, int workers, const lqa_pipe_ops *ops, void *ctx);

/* Online CPUs (at least 1): the default thread count. */
int lqa_pipe_default_threads(void);

#endif
