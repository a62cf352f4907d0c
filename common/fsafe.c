/* fsafe.c: see fsafe.h. */
#include "common/fsafe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *lqa_file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

int lqa_open_regular(const char *path, struct stat *st_out, lqa_err *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lqa_err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lqa_err_set(err, "%s: is %s, expected a regular file", path, lqa_file_kind(st.st_mode));
    }
    /* a regular file never blocks, but clear the flag so reads behave as usual */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return lqa_err_set(err, "%s: fcntl: %s", path, strerror(e));
    }
    if (st_out) *st_out = st;
    return fd;
}

FILE *lqa_fopen_regular(const char *path, lqa_err *err) {
    int fd = lqa_open_regular(path, NULL, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}
