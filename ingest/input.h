/* input.h: a byte stream over a file that is transparently decompressed (.gz .bz2 .xz .zst,
 * recognised by magic bytes, not by name), for the streaming parsers (MediaWiki, JSON arrays);
 * only regular files are opened (a FIFO is refused without blocking). The walker that finds the
 * inputs in a directory tree is ingest/walk.h. */
#ifndef LQA_INPUT_H
#define LQA_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/check.h"

typedef struct lqa_input lqa_input;

/* What an input must be when it is opened: the file the walk found (ingest/walk.h). Between the
 * walk and the open a name can be swapped for a symbolic link (to /etc/shadow), a FIFO or another
 * file; the opener checks the descriptor it got, never the name again: opened with O_NOFOLLOW
 * (unless the walk reached the file through a link), O_NONBLOCK and O_CLOEXEC, then it must be a
 * regular file with the walk's device and inode, or it is refused naming the file. */
typedef struct lqa_input_pin {
    uint64_t dev, ino;
    int via_link; /* the walk followed a symbolic link to it (inside the tree, or --follow-symlinks) */
} lqa_input_pin;

/* Opens path for reading its bytes: a regular file (a FIFO is refused without blocking) and,
 * with a pin, the pinned one; pin NULL: any regular file (a PATH named by the user, links
 * followed). Returns the fd, or -1 with "PATH: cannot open: REASON" in err (err may be NULL). */
int lqa_input_open_fd(const char *path, const lqa_input_pin *pin, lqa_err *err);

/* The stream and whole-file reads below, with the pin checked at the open (NULL: none). */
lqa_input *lqa_input_open_pinned(const char *path, const lqa_input_pin *pin, lqa_err *err);
int lqa_input_read_all_pinned(const char *path, const lqa_input_pin *pin, size_t max_bytes, char **data, size_t *len,
                              lqa_err *err);

lqa_input *lqa_input_open(const char *path, lqa_err *err);
/* Reads up to n bytes; returns bytes read, 0 at end, -1 on error (err set: truncated or corrupt
 * compressed data names the file and the byte offset). */
long lqa_input_read(lqa_input *in, void *buf, size_t n, lqa_err *err);
/* Reads the whole (decompressed) input, refusing more than max_bytes. */
int lqa_input_read_all(const char *path, size_t max_bytes, char **data, size_t *len, lqa_err *err);
const char *lqa_input_codec(const lqa_input *in); /* "none", "gzip", "bzip2", "xz", "zstd" */
size_t lqa_input_compressed_pos(const lqa_input *in); /* bytes of the file consumed so far */
void lqa_input_close(lqa_input *in);

/* An EPUB recognised by its container: a zip archive holding META-INF/container.xml, whatever
 * the order of its entries (the spec puts "mimetype" first; many tools do not). */
int lqa_input_is_epub_container(const char *path);
int lqa_input_is_epub_container_pinned(const char *path, const lqa_input_pin *pin);

#endif
