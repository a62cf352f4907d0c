/* pipe.c: the ordered pipeline of ingest/pipe.h. Units are handed to workers in order from a
 * shared counter; each unit in flight owns a slot of a ring (unit u in slot u % window), with
 * a FIFO of its events. The calling thread drains the slot of the lowest unfinished unit (the
 * head) and moves on when that unit is done and drained. One mutex guards it all: events are
 * whole documents, so locking is rare next to the work done between two locks. */
#include "ingest/pipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/check.h"

/* A unit that is not the head stops emitting past this much queued in all slots; the head's
 * own queue holds at most this many events (or one of any size), so a streamed input keeps a
 * few documents in memory, not the whole file. */
#define PIPE_BUDGET_BYTES ((size_t)64 << 20)
#define PIPE_MAX_EVENTS 16
/* Units in flight per worker. A large unit at the head (a 2.2 MB manual chapter) holds the
 * writer until it is done; the other workers keep preparing the units after it only while
 * they fit in the window. With 2 per worker they stopped three units later and a core idled
 * (a schedule of the default corpus's measured per-unit costs on 2 cores: 0.363 s with 2 per
 * worker, 0.334 s with 4, 0.316 s with 8, 0.312 s with 32; all the work / 2 = 0.296 s).
 * Memory is bounded by the byte budget, not by this: only the workers' units are being
 * parsed, the others wait with their documents queued. */
#define PIPE_UNITS_PER_WORKER 8

typedef struct pipe_ev {
    struct pipe_ev *next;
    void *event;
    size_t bytes;
} pipe_ev;

typedef struct lqa_pipe lqa_pipe;

struct lqa_pipe_out {
    lqa_pipe *p;
    int unit;           /* the unit that holds the slot; -1 before the first */
    pipe_ev *first, *last;
    int n;              /* events queued */
    size_t bytes;       /* their bytes */
    int done;           /* the unit's work returned */
};

struct lqa_pipe {
    pthread_mutex_t mu;
    pthread_cond_t ready; /* the consumer waits: an event or a unit's end */
    pthread_cond_t room;  /* workers wait: the window or the budget moved */
    const lqa_pipe_ops *ops;
    void *ctx;
    int n_units, window, threaded;
    int next;             /* the next unit to hand out */
    int head;             /* the unit being consumed */
    size_t bytes;         /* queued in all slots */
    lqa_pipe_out *slots;
};

typedef struct worker_arg {
    lqa_pipe *p;
    int index;
} worker_arg;

void lqa_pipe_emit(lqa_pipe_out *o, void *event, size_t bytes) {
    lqa_pipe *p = o->p;
    if (!p->threaded) {
        p->ops->consume(p->ctx, o->unit, event);
        return;
    }
    pipe_ev *e = lqa_malloc(sizeof *e);
    *e = (pipe_ev){NULL, event, bytes};
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* the head may always queue one event, so it never waits on units behind it */
        if (o->unit == p->head ? o->n == 0 || (o->n < PIPE_MAX_EVENTS && o->bytes < PIPE_BUDGET_BYTES)
                               : o->n < PIPE_MAX_EVENTS && p->bytes < PIPE_BUDGET_BYTES)
            break;
        pthread_cond_wait(&p->room, &p->mu);
    }
    if (o->last) o->last->next = e;
    else o->first = e;
    o->last = e;
    o->n++;
    o->bytes += bytes;
    p->bytes += bytes;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *argp) {
    worker_arg *a = argp;
    lqa_pipe *p = a->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->next < p->n_units && p->next >= p->head + p->window) pthread_cond_wait(&p->room, &p->mu);
        if (p->next >= p->n_units) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int u = p->next++;
        /* unit u - window, the slot's last holder, is consumed: u < head + window */
        lqa_pipe_out *o = &p->slots[u % p->window];
        *o = (lqa_pipe_out){.p = p, .unit = u};
        pthread_mutex_unlock(&p->mu);
        p->ops->work(p->ctx, a->index, u, o);
        pthread_mutex_lock(&p->mu);
        o->done = 1;
        pthread_cond_signal(&p->ready);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Consumes unit u's events as they come, until it is done and drained. */
static void consume_unit(lqa_pipe *p, int u) {
    lqa_pipe_out *o = &p->slots[u % p->window];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* the slot may still hold unit u - window (done, empty) until a worker claims u */
        while (o->unit != u || (!o->first && !o->done)) pthread_cond_wait(&p->ready, &p->mu);
        pipe_ev *e = o->first;
        if (!e) break;
        o->first = e->next;
        if (!o->first) o->last = NULL;
        o->n--;
        o->bytes -= e->bytes;
        p->bytes -= e->bytes;
        pthread_cond_broadcast(&p->room);
        pthread_mutex_unlock(&p->mu);
        p->ops->consume(p->ctx, u, e->event);
        free(e);
        pthread_mutex_lock(&p->mu);
    }
    p->head = u + 1;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
}

void lqa_pipe_run(int n_units, int workers, const lqa_pipe_ops *ops, void *ctx) {
    lqa_pipe p = {.ops = ops, .ctx = ctx, .n_units = n_units};
    if (workers <= 1 || n_units == 0) {
        for (int u = 0; u < n_units; u++) {
            lqa_pipe_out o = {.p = &p, .unit = u};
            ops->work(ctx, 0, u, &o);
        }
        return;
    }
    /* one input (a dump) still gets a worker: it parses while this thread writes */
    p.threaded = 1;
    if (workers > n_units) workers = n_units;
    p.window = PIPE_UNITS_PER_WORKER * workers;
    p.slots = lqa_calloc((size_t)p.window, sizeof *p.slots);
    for (int i = 0; i < p.window; i++) p.slots[i] = (lqa_pipe_out){.p = &p, .unit = -1};
    lqaCheck(pthread_mutex_init(&p.mu, NULL) == 0, "pthread_mutex_init failed");
    lqaCheck(pthread_cond_init(&p.ready, NULL) == 0 && pthread_cond_init(&p.room, NULL) == 0,
             "pthread_cond_init failed");
    pthread_t *tids = lqa_malloc((size_t)workers * sizeof *tids);
    worker_arg *args = lqa_malloc((size_t)workers * sizeof *args);
    for (int i = 0; i < workers; i++) {
        args[i] = (worker_arg){&p, i};
        lqaCheck(pthread_create(&tids[i], NULL, worker_main, &args[i]) == 0, "cannot start worker thread %d", i);
    }
    for (int u = 0; u < n_units; u++) consume_unit(&p, u);
    for (int i = 0; i < workers; i++) pthread_join(tids[i], NULL);
    pthread_cond_destroy(&p.ready);
    pthread_cond_destroy(&p.room);
    pthread_mutex_destroy(&p.mu);
    free(tids);
    free(args);
    free(p.slots);
}

int lqa_pipe_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}
