/* ingest_parse_bench.c: parses each input path through lqa_parse_path (no store) and prints one
 * line per file: format, documents, QA pairs, text bytes, wall and CPU seconds, input MB/s and
 * the process's peak RSS. With --jansson-whole FILE it instead loads the file with one
 * json_load_file call (what a non-streaming importer does): the reference for time and memory. * Used by bench/ingest_qaset_stream.sh to measure the streamed importers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

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

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int jansson_whole(const char *path) {
    struct timespec t0, t1;
    double c0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!root) {
        fprintf(stderr, "error: %s:%d: %s\n", path, je.line, je.text);
        return 1;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, cpu = cpu_seconds() - c0;
    struct stat st;
    stat(path, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)st.st_size / 1048576.0;
    printf("%s jansson_whole elements=%zu input_mb=%.1f secs=%.2f mb_per_s=%.1f cpu_secs=%.2f mb_per_cpu_s=%.1f "
           "peak_rss_mb=%.1f\n",
           path, json_array_size(root), mb, secs, mb / secs, cpu, mb / cpu, (double)ru.ru_maxrss / 1024.0);
    json_decref(root);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--jansson-whole")) return jansson_whole(argv[2]);
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
        struct rusage r0;
        getrusage(RUSAGE_SELF, &r0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = lqa_parse_path(argv[i], &opts, count_doc, &c, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = (double)(ru.ru_utime.tv_sec - r0.ru_utime.tv_sec + ru.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                     (double)(ru.ru_utime.tv_usec - r0.ru_utime.tv_usec + ru.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
        if (rc != 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            failed = 1;
        }
        printf("%s format=%s docs=%ld qas=%ld text_mb=%.1f input_mb=%.1f secs=%.2f mb_per_s=%.1f cpu_secs=%.2f mb_per_cpu_s=%.1f "
               "peak_rss_mb=%.1f\n",
               argv[i], c.format, c.docs, c.qas, (double)c.text_bytes / 1048576.0, (double)st.st_size / 1048576.0,
               secs, (double)st.st_size / 1048576.0 / secs, cpu, (double)st.st_size / 1048576.0 / cpu,
               (double)ru.ru_maxrss / 1024.0);
    }
    return failed;
}
