/* ingest_parse_bench.c: parses each input path through lqa_parse_path (no store) and prints one
 * line per file: format, documents, QA pairs, text bytes, seconds, input MB/s and the process's
 * peak RSS. Used by bench/ingest_qaset_stream.sh to measure the streamed importers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "ingest/parse.h"

typedef struct counts {
    long docs, qas;
    size_t text_bytes;
    char format[32];
} counts;

static int count_doc(lqa_doc *doc, void *ctx) {
    counts *c = ctx;
    c->docs++;
    c->qas += doc->n_qas;
    c->text_bytes += doc->text.len;
    snprintf(c->format, sizeof c->format, "%s", doc->format);
    return 0;
}

static void print_warning(const char *msg, void *ctx) { fprintf(stderr, "warning: %s\n", msg); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        counts c = {0};
        lqa_parse_opts opts = {.warn = print_warning};
        lqa_err err;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = lqa_parse_path(argv[i], &opts, count_doc, &c, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (rc != 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            failed = 1;
        }
        printf("%s format=%s docs=%ld qas=%ld text_mb=%.1f input_mb=%.1f secs=%.2f mb_per_s=%.1f peak_rss_mb=%.1f\n",
               argv[i], c.format, c.docs, c.qas, (double)c.text_bytes / 1048576.0, (double)st.st_size / 1048576.0,
               secs, (double)st.st_size / 1048576.0 / secs, (double)ru.ru_maxrss / 1024.0);
    }
    return failed;
}
