/* fileio.h: whole-file reads, atomic writes (temp file + fsync + rename, so a reader never
 * sees a half-written file), and directory helpers. */
#ifndef LQA_FILEIO_H
#define LQA_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "common/check.h"

/* Reads a whole file into a NUL-terminated buffer; -1 with err set on failure. */
int lqa_read_file(const char *path, char **out, size_t *out_len, lqa_err *err);

/* Atomic write: open PATH.tmp.PID, write, then lqa_atomic_commit fsyncs and renames onto PATH.
 * lqa_atomic_abort removes the temp file (on error paths). */
typedef struct lqa_atomic_file {
    FILE *f;
    char *path, *tmp_path;
} lqa_atomic_file;
int lqa_atomic_open(lqa_atomic_file *af, const char *path, lqa_err *err);
int lqa_atomic_commit(lqa_atomic_file *af, lqa_err *err);
void lqa_atomic_abort(lqa_atomic_file *af);
/* One-shot atomic write of a buffer. */
int lqa_write_file_atomic(const char *path, const void *data, size_t n, lqa_err *err);

int lqa_mkdir_p(const char *path, lqa_err *err);
int lqa_path_exists(const char *path);
int lqa_is_dir(const char *path);
/* dir + "/" + name, freshly allocated. */
char *lqa_path_join(const char *dir, const char *name);
/* fsync a directory so a rename inside it is durable. */
void lqa_fsync_dir(const char *dir);
/* MemAvailable of /proc/meminfo in bytes; 0 when unknown. */
double lqa_mem_available_bytes(void);

#endif
