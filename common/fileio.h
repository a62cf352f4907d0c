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
/* A directory with no entries besides . and .. */
int lqa_dir_is_empty(const char *path);
/* dir + "/" + name, freshly allocated. */
char *lqa_path_join(const char *dir, const char *name);
/* fsync a directory so a rename inside it is durable. */
void lqa_fsync_dir(const char *dir);
/* MemAvailable and MemTotal of /proc/meminfo in bytes; 0 when unknown. */
void lqa_meminfo(double *available, double *total);
/* MemAvailable of /proc/meminfo in bytes; 0 when unknown. */
double lqa_mem_available_bytes(void);

/* Two spellings of one path (relative or absolute, links resolved) name the same thing. */
int lqa_same_path(const char *a, const char *b);

/* Opens path read-only for reading its bytes: refuses anything but a regular file (a FIFO would
 * block open() forever, a directory or device is never data), without blocking. Returns the fd,
 * or -1 with "PATH: cannot open: REASON" in err. */
int lqa_open_regular(const char *path, lqa_err *err);
/* The same with extra open flags (O_NOFOLLOW: a symbolic link is refused, by name) and the
 * descriptor's stat in st_out (may be NULL): what was opened, not what the name was before. */
struct stat;
int lqa_open_regular_ex(const char *path, int flags, struct stat *st_out, lqa_err *err);

/* Atomic directory: every writer of a folder (checkpoints, final/, shard and model directories)
 * builds it in PATH.tmp-PID and lqa_atomic_dir_commit puts it in place: renamed when PATH is
 * absent, else swapped with the old PATH in one step (renameat2 RENAME_EXCHANGE), then the old
 * one removed, so at every instant PATH is either the complete old folder or the complete new
 * one. lqa_atomic_dir_begin first removes the temporary folders of PATH that killed runs left
 * (PATH.tmp-PID whose process is gone). PATH must be absent or a directory. */
typedef struct lqa_atomic_dir {
    char *path, *tmp; /* tmp: where the caller writes */
} lqa_atomic_dir;
int lqa_atomic_dir_begin(lqa_atomic_dir *d, const char *path, lqa_err *err);
int lqa_atomic_dir_commit(lqa_atomic_dir *d, lqa_err *err);
void lqa_atomic_dir_abort(lqa_atomic_dir *d);

/* Removes what killed processes left in dir: entries named NAME.tmp-PID or NAME.tmp.PID (and
 * NAME.tmp-PID.old) whose PID no longer runs, files or whole folders. With base, only NAME ==
 * base. Returns how many were removed. */
int lqa_clean_stale_temps(const char *dir, const char *base);
/* Removes a file or a folder with everything in it (symbolic links are removed, never
 * followed). 0, or -1 with errno set. */
int lqa_rm_tree(const char *path);

/* Crash tests: when the environment holds LQA_TEST_KILL_AT=POINT (or POINT:N, the Nth time),
 * the process ends at once with _exit(137), as kill -9 would, when it reaches lqa_kill_point(POINT).
 * Writers call it between their steps (tests/test_train_kill.c); unset, it costs one getenv. */
void lqa_kill_point(const char *point);

#endif
