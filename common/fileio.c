/* fileio.c: whole-file reads, atomic writes, directories. */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lqa_read_file(const char *path, char **out, size_t *out_len, lqa_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
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

char *lqa_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = lqa_malloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

double lqa_mem_available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024.0;
}
