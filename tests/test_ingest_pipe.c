/* test_ingest_pipe.c: the ordered pipeline under lqa-ingest add (ingest/pipe.h). Whatever the worker
 * count, the unit sizes and the timing, every unit runs once and the consumer gets every event
 * in unit order, and within a unit in emit order; events that overflow the byte budget wait
 * but never deadlock, also when large units run ahead of the head; given sizes, a large unit
 * far down the order starts among the first, and without sizes units start in order. */
#include "tests/testutil.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rng.h"
#include "ingest/pipe.h"

#define MAX_UNITS 64

typedef struct ev {
    int unit, seq;
} ev;

typedef struct run {
    int n_units;
    int n_events[MAX_UNITS];   /* what each unit emits */
    size_t ev_bytes[MAX_UNITS]; /* the size each of its events declares */
    atomic_int works[MAX_UNITS];
    atomic_int start_rank[MAX_UNITS];
    atomic_int started;
    int next_unit, next_seq, consumed, out_of_order;
} run;

static void nap(int unit) {
    struct timespec t = {0, 100000L + (long)(unit % 4) * 300000L};
    nanosleep(&t, NULL);
}

static void work(void *ctx, int worker, int unit, lqa_pipe_out *out) {
    run *r = ctx;
    atomic_fetch_add(&r->works[unit], 1);
    atomic_store(&r->start_rank[unit], atomic_fetch_add(&r->started, 1));
    for (int i = 0; i < r->n_events[unit]; i++) {
        nap(unit + i); /* uneven timing, so units finish out of order */
        ev *e = lqa_malloc(sizeof *e);
        *e = (ev){unit, i};
        lqa_pipe_emit(out, e, r->ev_bytes[unit]);
    }
}

static void consume(void *ctx, int unit, void *event) {
    run *r = ctx;
    ev *e = event;
    /* units in order; a unit that emits nothing is skipped */
    if (e->unit != unit || e->unit < r->next_unit || (e->unit == r->next_unit && e->seq != r->next_seq) ||
        (e->unit > r->next_unit && e->seq != 0))
        r->out_of_order++;
    r->next_unit = e->unit;
    r->next_seq = e->seq + 1;
    r->consumed++;
    free(e);
}

static const lqa_pipe_ops OPS = {work, consume};

static void init_run(run *r, lqa_rng *g, int n_units, size_t max_bytes) {
    memset(r, 0, sizeof *r);
    r->n_units = n_units;
    for (int u = 0; u < n_units; u++) {
        r->n_events[u] = (int)lqa_rng_below(g, 6);
        r->ev_bytes[u] = (size_t)lqa_rng_below(g, max_bytes);
    }
}

static int total_events(const run *r) {
    int n = 0;
    for (int u = 0; u < r->n_units; u++) n += r->n_events[u];
    return n;
}

/* Random sizes and events of up to 40 MB each (the budget is 64 MB): order kept, nothing lost
 * or run twice, for 1 to 4 workers, with and without sizes. */
static void test_order_kept_under_budget(void **state) {
    lqa_rng g;
    lqa_rng_seed(&g, lqa_test_seed());
    static run r;
    for (int workers = 1; workers <= 4; workers++)
        for (int with_sizes = 0; with_sizes <= 1; with_sizes++) {
            init_run(&r, &g, MAX_UNITS, (size_t)40 << 20);
            double sizes[MAX_UNITS];
            for (int u = 0; u < MAX_UNITS; u++) sizes[u] = (double)lqa_rng_below(&g, 1000) * (u % 7 == 3 ? 100 : 1);
            lqa_pipe_run(r.n_units, with_sizes ? sizes : NULL, workers, &OPS, &r);
            for (int u = 0; u < r.n_units; u++) assert_int_equal(atomic_load(&r.works[u]), 1);
            assert_int_equal(r.consumed, total_events(&r));
            assert_int_equal(r.out_of_order, 0);
        }
}

/* 40 units that take ~1-2 ms each (2 events, uneven naps), all of size 1000 but unit 30. */
static void init_slow_run(run *r, lqa_rng *g) {
    init_run(r, g, 40, 1000);
    for (int u = 0; u < 40; u++) r->n_events[u] = 2;
}

/* With sizes, a unit 100 times larger than the rest, 30 units down the order, starts on the
 * second worker while the first (which keeps to the order) is still at the first units; without
 * sizes the two workers start the units in order (two starting at once may swap ranks). */
static void test_large_unit_starts_early(void **state) {
    lqa_rng g;
    lqa_rng_seed(&g, lqa_test_seed() + 1);
    static run r;
    double sizes[40];
    for (int u = 0; u < 40; u++) sizes[u] = u == 30 ? 100000 : 1000;
    init_slow_run(&r, &g);
    lqa_pipe_run(r.n_units, sizes, 2, &OPS, &r);
    assert_true(atomic_load(&r.start_rank[30]) < atomic_load(&r.start_rank[10]));
    assert_int_equal(r.out_of_order, 0);
    init_slow_run(&r, &g);
    lqa_pipe_run(r.n_units, NULL, 2, &OPS, &r);
    for (int u = 0; u < 40; u++) assert_true(abs(atomic_load(&r.start_rank[u]) - u) <= 1);
    assert_int_equal(r.out_of_order, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_kept_under_budget),
        cmocka_unit_test(test_large_unit_starts_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
