/* fsafe.h: opening files that come from users without trusting what the name points at.
 * A FIFO named like an input blocks open() forever, a device can be read without end, a
 * directory is no document: lqa_open_regular opens with O_NONBLOCK (so a FIFO without a writer
 * cannot block), checks with fstat that it is a regular file, then restores blocking reads.
 * Every reader of user files (ingest inputs, shards, checkpoints, model files) can use it. */
#ifndef LQA_FSAFE_H
#define LQA_FSAFE_H

#include <stdio.h>
#include <sys/stat.h>

#include "common/check.h"

/* What a stat mode is, in words ("a FIFO", "a directory", "a socket", ...). */
const char *lqa_file_kind(mode_t mode);
/* A read-only descriptor (O_CLOEXEC) on path when it is a regular file; -1 with err set
 * ("PATH: cannot open: ..." or "PATH: is a FIFO, expected a regular file"). st gets its fstat
 * when not NULL. */
int lqa_open_regular(const char *path, struct stat *st, lqa_err *err);
/* The same as a stdio stream ("rb"). */
FILE *lqa_fopen_regular(const char *path, lqa_err *err);

#endif
