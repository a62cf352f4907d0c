/* pipe.c: the ordered pipeline of ingest/pipe.h. Units are handed to workers from a window of
 * the units after the one being consumed; each unit in flight owns a slot of a ring (unit u in
 * slot u % window), with a FIFO of its events. The calling thread drains the slot of the lowest
 * unfinished unit (the head) and moves on when that unit is done and drained. One mutex guards
 * it all: events are whole documents, so locking is rare next to the work done between two
 * locks. */
#include "ingest/pipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/check.h"

/* A unit that is not the head stops emitting past this much queued in all slots; the head's
 * own queue holds at most this many events (or one of any size), so a streamed input keeps a
 * few documents in memory, not the whole file. */
#define PIPE_BUDGET_BYTES ((size_t)64 << 20)
#define PIPE_MAX_EVENTS 16
/* Units in flight per worker: how far ahead of the writer the workers may run. A large unit
 * (the 2.2 MB "SQL Commands" chapter) costs the writer ~40 ms on its own; with 8 per worker
 * both workers had filled the window and idled for that long. Memory is bounded by the byte
 * budget, not by this: only the workers' units are being parsed, the others wait with their
 * documents queued. */
#define PIPE_UNITS_PER_WORKER 64
/* ...but no wider than this: a worker looks through the window for its next unit */
#define PIPE_MAX_WINDOW 1024
/* The writer spends about half as long on an input byte as a worker does (35 % against 65 %
 * of the CPU time on the default corpus), so it reaches unit u about when the workers could
 * have prepared half of the bytes before u: see latest_start. */
#define PIPE_WRITER_SHARE 0.5
/* Workers run this much nicer than the consumer. The consumer (one thread writing SQLite) is
 * what the run waits on, and with more threads than cores it got only its share of a core:
 * on 2 cores the default corpus's XHTML took 0.36 s (median of 9) at equal priority, 0.34 s
 * with the workers at +10. */
#define PIPE_WORKER_NICE 10

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
    int next;             /* the lowest unit not taken by a worker */
    char *taken;          /* per unit: a worker took it */
    double *latest_start; /* per unit, when sizes are known: see pick_unit */
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

/* The unit a worker takes next (mutex held), or -1 when none of the window is left. Worker 0
 * takes the lowest unit not taken, so the head is always being worked on (a unit ahead of the
 * head may wait for the byte budget; the head never does). The others take the unit of the
 * window that must start soonest for the writer not to wait on it: a big chapter a few units
 * ahead goes before the small pages in front of it (without sizes: in order). */
static int pick_unit(lqa_pipe *p, int worker) {
    while (p->next < p->n_units && p->taken[p->next]) p->next++;
    int end = p->head + p->window < p->n_units ? p->head + p->window : p->n_units;
    if (p->next >= end) return -1;
    int best = p->next;
    if (worker > 0 && p->latest_start)
        for (int u = p->next + 1; u < end; u++)
            if (!p->taken[u] && p->latest_start[u] < p->latest_start[best]) best = u;
    p->taken[best] = 1;
    return best;
}

static void *worker_main(void *argp) {
    worker_arg *a = argp;
    lqa_pipe *p = a->p;
    /* best effort: a thread that cannot lower its priority still works, only less well spread */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PIPE_WORKER_NICE);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int u;
        while ((u = pick_unit(p, a->index)) < 0 && p->next < p->n_units) pthread_cond_wait(&p->room, &p->mu);
        if (u < 0) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
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

/* When unit u must start for its worker to finish it as the writer gets there: the writer
 * arrives after about PIPE_WRITER_SHARE of the bytes before u, and the worker needs its own. */
static double *latest_start(int n_units, const double *sizes) {
    double *ls = lqa_malloc((size_t)n_units * sizeof *ls), before = 0;
    for (int u = 0; u < n_units; u++) {
        ls[u] = PIPE_WRITER_SHARE * before - sizes[u];
        before += sizes[u];
    }
    return ls;
}

void lqa_pipe_run(int n_units, const double *sizes, int workers, const lqa_pipe_ops *ops, void *ctx) {
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
    p.window = PIPE_UNITS_PER_WORKER * workers < PIPE_MAX_WINDOW ? PIPE_UNITS_PER_WORKER * workers : PIPE_MAX_WINDOW;
    p.slots = lqa_calloc((size_t)p.window, sizeof *p.slots);
    p.taken = lqa_calloc((size_t)n_units, 1);
    p.latest_start = sizes ? latest_start(n_units, sizes) : NULL;
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
    free(p.taken);
    free(p.latest_start);
}

int lqa_pipe_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}
