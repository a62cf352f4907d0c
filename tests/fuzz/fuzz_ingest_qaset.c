/* fuzz_ingest_qaset.c: libFuzzer target for the QA-set importers and the input layer: the bytes
 * are put in a memory file and read as every QA-set format (streamed Alpaca arrays, LongBench
 * lines, SQuAD, Qasper; compressed when the bytes begin with a codec's magic). Each must give
 * documents whose evidence spans lie in the text and hold the main answer, or a clean error;
 * never a crash or a leak. Built by mk/fuzz.mk. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ingest/qaset.h"

static int check_doc(lqa_doc *d, void *ctx) {
    for (int i = 0; i < d->n_qas; i++) {
        const lqa_qa_in *q = &d->qas[i];
        if (q->n_answers < 1 || !q->question || !q->kind) __builtin_trap();
        if (q->evidence.end == 0) continue;
        if (q->evidence.start > q->evidence.end || q->evidence.end > d->text.len) __builtin_trap();
        size_t n = q->evidence.end - q->evidence.start;
        if (strlen(q->answers[0]) != n || memcmp(d->text.data + q->evidence.start, q->answers[0], n) != 0)
            __builtin_trap();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-qaset", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static const char *const formats[] = {"alpaca", "longbench", "squad", "qasper"};
    lqa_parse_opts opts = {0};
    lqa_err err;
    for (int f = 0; f < 4; f++) lqa_qaset_parse(path, formats[f], &opts, check_doc, NULL, &err);
    close(fd);
    return 0;
}
