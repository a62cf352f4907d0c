/* xml_parse_bench.c: parses inputs with the ingest parsers only (no store, no QA generation)
 * and reports documents, text bytes, structure counts and input MB/s. Used by
 * bench/mediawiki.sh (peak RSS of a streamed dump) and for parser throughput.
 *
 *   lqa-xml-bench [--join] PATH...     (--join: PATH is a manual's index page) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ingest/parse.h"

typedef struct totals {
    long docs, sections, tables, defs, passages;
    size_t text;
} totals;

static int count(lqa_doc *d, void *ctx) {
    totals *t = ctx;
    t->docs++;
    t->sections += d->n_sections;
    t->tables += d->n_tables;
    t->defs += d->n_defs;
    t->passages += d->n_passages;
    t->text += d->text.len;
    return 0;
}

static void warn(const char *msg, void *ctx) {
    long *n = ctx;
    if ((*n)++ < 5) fprintf(stderr, "warning: %s\n", msg);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int join = 0, failed = 0;
    long warnings = 0;
    totals t = {0};
    double input = 0, t0 = now();
    lqa_parse_opts o = {0};
    o.warn = warn;
    o.warn_ctx = &warnings;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--join")) {
            join = 1;
            continue;
        }
        lqa_err err;
        int rc;
        if (join) {
            char **paths;
            int n;
            rc = lqa_manual_reading_order(argv[i], &paths, &n, &err);
            if (rc == 0) {
                for (int k = 0; k < n; k++) {
                    struct stat st;
                    if (stat(paths[k], &st) == 0) input += st.st_size;
                }
                rc = lqa_parse_joined((const char *const *)paths, n, &o, count, &t, &err);
                for (int k = 0; k < n; k++) free(paths[k]);
                free(paths);
            }
        } else {
            struct stat st;
            if (stat(argv[i], &st) == 0) input += st.st_size;
            rc = lqa_parse_path(argv[i], &o, count, &t, &err);
        }
        if (rc) {
            fprintf(stderr, "error: %s\n", err.msg);
            failed++;
        }
    }
    double secs = now() - t0;
    printf("inputs_mb=%.1f docs=%ld text_mb=%.1f sections=%ld tables=%ld defs=%ld passages=%ld warnings=%ld "
           "failed=%d seconds=%.2f mb_per_s=%.1f\n",
           input / 1048576, t.docs, t.text / 1048576.0, t.sections, t.tables, t.defs, t.passages, warnings, failed,
           secs, secs > 0 ? input / 1048576 / secs : 0);
    return failed ? 1 : 0;
}
