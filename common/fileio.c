/* fileio.c: whole-file reads, atomic writes, directories. */
#include "common/fileio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lqa_open_regular(const char *path, lqa_err *err) { return lqa_open_regular_ex(path, 0, NULL, err); }

int lqa_open_regular_ex(const char *path, int flags, struct stat *st_out, lqa_err *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags);
    if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW))
        return lqa_err_set(err, "%s: cannot open: a symbolic link, not followed (expected a regular file)", path);
    if (fd < 0) return lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lqa_err_set(err, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lqa_err_set(err, "%s: cannot open: not a regular file (%s)", path,
                           S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (st_out) *st_out = st;
    return fd;
}

int lqa_read_file(const char *path, char **out, size_t *out_len, lqa_err *err) {
    int fd = lqa_open_regular(path, err);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return lqa_err_set(err, "%s: cannot open: %s", path, strerror(e));
    }
    size_t cap = 1 << 16, len = 0;
    char *data = lqa_malloc(cap);
    size_t got;
    while ((got = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) data = lqa_realloc(data, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        return lqa_err_set(err, "%s: read error", path);
    }
    data[len] = '\0';
    *out = data;
    if (out_len) *out_len = len;
    return 0;
}

int lqa_atomic_open(lqa_atomic_file *af, const char *path, lqa_err *err) {
    size_t n = strlen(path) + 32;
    af->path = lqa_strdup(path);
    af->tmp_path = lqa_malloc(n);
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        int e = errno;
        free(af->path);
        free(af->tmp_path);
        af->path = af->tmp_path = NULL;
        return lqa_err_set(err, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

void lqa_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int lqa_atomic_commit(lqa_atomic_file *af, lqa_err *err) {
    int rc = 0;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) rc = lqa_err_set(err, "%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0) rc = lqa_err_set(err, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp_path, af->path) != 0) rc = lqa_err_set(err, "%s: rename failed: %s", af->path, strerror(errno));
    if (rc != 0) unlink(af->tmp_path);
    else {
        char *copy = lqa_strdup(af->path);
        lqa_fsync_dir(dirname(copy));
        free(copy);
    }
    free(af->path);
    free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return rc;
}

void lqa_atomic_abort(lqa_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    af->f = NULL;
    af->path = af->tmp_path = NULL;
}

int lqa_write_file_atomic(const char *path, const void *data, size_t n, lqa_err *err) {
    lqa_atomic_file af;
    if (lqa_atomic_open(&af, path, err)) return -1;
    if (n && fwrite(data, 1, n, af.f) != n) {
        lqa_atomic_abort(&af);
        return lqa_err_set(err, "%s: write failed: %s", path, strerror(errno));
    }
    return lqa_atomic_commit(&af, err);
}

int lqa_mkdir_p(const char *path, lqa_err *err) {
    char *p = lqa_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return lqa_err_set(err, "%s: cannot create directory: %s", path, strerror(e));
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) rc = lqa_err_set(err, "%s: cannot create directory: %s", path, strerror(errno));
    free(p);
    return rc;
}

int lqa_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int lqa_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lqa_dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)) != NULL) empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    return empty;
}

int lqa_same_path(const char *a, const char *b) {
    if (!strcmp(a, b)) return 1;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && !strcmp(ra, rb);
    free(ra);
    free(rb);
    return same;
}

char *lqa_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = lqa_malloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* ---- atomic directories ------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int lqa_rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The PID of a temporary name NAME.tmp-PID, NAME.tmp.PID or NAME.tmp-PID.old (NAME == base
 * when base is given); 0 when the name is not one. */
static long temp_pid(const char *name, const char *base) {
    const char *t = NULL;
    for (const char *p = strstr(name, ".tmp"); p; p = strstr(p + 1, ".tmp")) t = p;
    if (!t || t == name || (t[4] != '-' && t[4] != '.') || !isdigit((unsigned char)t[5])) return 0;
    if (base && (strlen(base) != (size_t)(t - name) || strncmp(name, base, strlen(base)) != 0)) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (*end != '\0' && strcmp(end, ".old") != 0) return 0;
    return pid > 0 ? pid : 0;
}

int lqa_clean_stale_temps(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = temp_pid(de->d_name, base);
        if (pid == 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue; /* still running: its own work */
        char *p = lqa_path_join(dir, de->d_name);
        if (lqa_rm_tree(p) == 0) removed++;
        free(p);
    }
    closedir(d);
    return removed;
}

static char *parent_of(const char *path) {
    char *copy = lqa_strdup(path), *p = lqa_strdup(dirname(copy));
    free(copy);
    return p;
}

int lqa_atomic_dir_begin(lqa_atomic_dir *d, const char *path, lqa_err *err) {
    d->path = d->tmp = NULL;
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return lqa_err_set(err, "%s: exists and is not a directory; refusing to replace it", path);
    char *parent = parent_of(path), *copy = lqa_strdup(path);
    int rc = lqa_mkdir_p(parent, err);
    if (!rc) lqa_clean_stale_temps(parent, basename(copy));
    free(parent);
    free(copy);
    if (rc) return -1;
    size_t n = strlen(path) + 32;
    d->path = lqa_strdup(path);
    d->tmp = lqa_malloc(n);
    snprintf(d->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    lqa_rm_tree(d->tmp); /* a leftover of an earlier process that had our PID */
    if (mkdir(d->tmp, 0777) != 0) {
        rc = lqa_err_set(err, "%s: cannot create directory: %s", d->tmp, strerror(errno));
        lqa_atomic_dir_abort(d);
    }
    return rc;
}

void lqa_atomic_dir_abort(lqa_atomic_dir *d) {
    if (d->tmp) lqa_rm_tree(d->tmp);
    free(d->path);
    free(d->tmp);
    d->path = d->tmp = NULL;
}

/* Puts tmp in place of an existing path: one atomic swap where the file system has it; else the
 * old folder is moved aside first (a short window without path, the old one kept as
 * path.tmp-PID.old until the new one is in). On return tmp names the old folder (or nothing). */
static int swap_into_place(const char *tmp, const char *path, lqa_err *err) {
#ifdef RENAME_EXCHANGE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return lqa_err_set(err, "%s: cannot put %s in place: %s", path, tmp, strerror(errno));
#endif
    size_t n = strlen(tmp) + 8;
    char *old = lqa_malloc(n);
    snprintf(old, n, "%s.old", tmp);
    int rc = 0;
    if (rename(path, old) != 0) rc = lqa_err_set(err, "%s: cannot move the old folder aside: %s", path, strerror(errno));
    else if (rename(tmp, path) != 0) {
        rc = lqa_err_set(err, "%s: cannot put %s in place: %s", path, tmp, strerror(errno));
        rename(old, path);
    } else if (rename(old, tmp) != 0) {
        lqa_rm_tree(old);
    }
    free(old);
    return rc;
}

int lqa_atomic_dir_commit(lqa_atomic_dir *d, lqa_err *err) {
    lqa_kill_point("dir-commit");
    lqa_fsync_dir(d->tmp);
    struct stat st;
    int rc = 0;
    if (lstat(d->path, &st) != 0) {
        if (rename(d->tmp, d->path) != 0) rc = lqa_err_set(err, "%s: cannot rename %s into place: %s", d->path,
                                                          d->tmp, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        rc = lqa_err_set(err, "%s: exists and is not a directory; refusing to replace it", d->path);
    } else {
        rc = swap_into_place(d->tmp, d->path, err);
        if (!rc) lqa_kill_point("dir-swapped"); /* the old folder now waits at tmp */
    }
    if (!rc) {
        char *parent = parent_of(d->path);
        lqa_fsync_dir(parent);
        free(parent);
    }
    lqa_atomic_dir_abort(d); /* removes the old folder now at tmp (or the failed new one) */
    return rc;
}

/* ---- crash tests -------------------------------------------------------------------------- */

void lqa_kill_point(const char *point) {
    const char *want = getenv("LQA_TEST_KILL_AT");
    if (!want) return;
    size_t n = strlen(point);
    if (strncmp(want, point, n) != 0 || (want[n] != '\0' && want[n] != ':')) return;
    static char last[64];
    static long count;
    if (strcmp(last, point) != 0) {
        snprintf(last, sizeof last, "%s", point);
        count = 0;
    }
    long nth = want[n] == ':' ? strtol(want + n + 1, NULL, 10) : 1;
    if (++count >= nth) _exit(137);
}

void lqa_meminfo(double *available, double *total) {
    double kb;
    char line[256];
    *available = *total = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) *available = kb * 1024.0;
        if (sscanf(line, "MemTotal: %lf kB", &kb) == 1) *total = kb * 1024.0;
    }
    if (f) fclose(f);
}

double lqa_mem_available_bytes(void) {
    double available, total;
    lqa_meminfo(&available, &total);
    return available;
}
