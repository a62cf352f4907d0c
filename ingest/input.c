/* input.c: the decompression layer of ingest/input.h. A file is read through one of five codecs
 * chosen from its first bytes (gzip 1f 8b, bzip2 "BZh", xz FD '7zXZ' 00, zstd 28 B5 2F FD, else
 * none), using zlib, libbz2, liblzma and libzstd directly so that an error can name the byte
 * offset in the compressed file where the data went wrong. Concatenated streams (multi-member
 * gzip, pbzip2 output, several zstd frames, xz --concatenated) decode as one. A stream that ends
 * before its end marker is an error ("truncated"), never a silent short read. Only regular
 * files are opened (lqa_open_regular, common/fileio.h: a FIFO is refused, never waited on).
 *
 * Then the input tree walker (lqa_walk*, see input.h): symlinks kept inside the named root,
 * directories visited once by device and inode, non-regular files skipped unopened, and the
 * --include/--exclude globs and default excludes. */
#include "ingest/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <bzlib.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <lzma.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/fileio.h"

enum codec { CODEC_NONE, CODEC_GZIP, CODEC_BZIP2, CODEC_XZ, CODEC_ZSTD };
static const char *const codec_names[] = {"none", "gzip", "bzip2", "xz", "zstd"};

#define INPUT_CHUNK (64 * 1024)
#define XZ_MEMLIMIT ((uint64_t)256 << 20)

struct lqa_input {
    FILE *f;
    char *path;
    enum codec codec;
    unsigned char raw[INPUT_CHUNK]; /* compressed bytes read from the file */
    size_t raw_len, raw_pos;        /* valid bytes in raw, bytes of raw the decoder consumed */
    size_t file_pos;                /* bytes read from the file so far */
    int file_eof;
    int stream_done;  /* the current compressed stream reached its end marker */
    int finished;     /* no more output will come */
    int failed;       /* an error was reported: every later read fails too */
    z_stream gz;
    bz_stream bz;
    lzma_stream xz;
    ZSTD_DStream *zs;
    size_t zs_last;   /* last ZSTD_decompressStream result: 0 means a frame ended cleanly */
};

/* ---- raw file access ------------------------------------------------------------------------- */

/* Compressed bytes consumed by the decoder so far (the offset reported in errors). */
static size_t consumed_pos(const lqa_input *in) {
    return in->file_pos - (in->raw_len - in->raw_pos);
}

/* Refills raw when the decoder consumed all of it. Returns -1 on an I/O error. */
static int refill(lqa_input *in, lqa_err *err) {
    if (in->raw_pos < in->raw_len || in->file_eof) return 0;
    size_t got = fread(in->raw, 1, sizeof in->raw, in->f);
    if (got < sizeof in->raw) {
        if (ferror(in->f)) return lqa_err_set(err, "%s: read error at byte %zu: %s", in->path, in->file_pos,
                                              strerror(errno));
        in->file_eof = 1;
    }
    in->raw_len = got;
    in->raw_pos = 0;
    in->file_pos += got;
    return 0;
}

static enum codec sniff_codec(const unsigned char *p, size_t n) {
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return CODEC_GZIP;
    if (n >= 4 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9') return CODEC_BZIP2;
    if (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0) return CODEC_XZ;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) return CODEC_ZSTD;
    return CODEC_NONE;
}

/* ---- decoder setup ----------------------------------------------------------------------------- */

static void start_gzip(lqa_input *in) {
    memset(&in->gz, 0, sizeof in->gz);
    /* 16 + MAX_WBITS: gzip wrapper only, with its CRC and length checked */
    lqaCheck(inflateInit2(&in->gz, 16 + MAX_WBITS) == Z_OK, "zlib inflateInit2 failed");
}

static void start_bzip2(lqa_input *in) {
    memset(&in->bz, 0, sizeof in->bz);
    lqaCheck(BZ2_bzDecompressInit(&in->bz, 0, 0) == BZ_OK, "BZ2_bzDecompressInit failed");
}

static void start_decoder(lqa_input *in) {
    switch (in->codec) {
    case CODEC_GZIP: start_gzip(in); break;
    case CODEC_BZIP2: start_bzip2(in); break;
    case CODEC_XZ: {
        lzma_stream init = LZMA_STREAM_INIT;
        in->xz = init;
        /* a hostile header could ask for a 1.5 GiB dictionary: cap the decoder's memory (xz -9
         * needs 65 MiB; zstd already refuses windows over 128 MiB by default) */
        lqaCheck(lzma_stream_decoder(&in->xz, XZ_MEMLIMIT, LZMA_CONCATENATED) == LZMA_OK,
                 "lzma_stream_decoder failed");
        break;
    }
    case CODEC_ZSTD:
        in->zs = ZSTD_createDStream();
        mallocCheck(in->zs);
        zstdCheck(ZSTD_initDStream(in->zs));
        in->zs_last = 0;
        break;
    case CODEC_NONE: break;
    }
}

static void end_decoder(lqa_input *in) {
    switch (in->codec) {
    case CODEC_GZIP: inflateEnd(&in->gz); break;
    case CODEC_BZIP2: BZ2_bzDecompressEnd(&in->bz); break;
    case CODEC_XZ: lzma_end(&in->xz); break;
    case CODEC_ZSTD: ZSTD_freeDStream(in->zs); in->zs = NULL; break;
    case CODEC_NONE: break;
    }
}

lqa_input *lqa_input_open(const char *path, lqa_err *err) {
    int fd = lqa_open_regular(path, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    lqa_input *in = lqa_calloc(1, sizeof *in);
    in->f = f;
    in->path = lqa_strdup(path);
    if (refill(in, err) < 0) {
        lqa_input_close(in);
        return NULL;
    }
    in->codec = sniff_codec(in->raw, in->raw_len);
    start_decoder(in);
    return in;
}

const char *lqa_input_codec(const lqa_input *in) { return codec_names[in->codec]; }

size_t lqa_input_compressed_pos(const lqa_input *in) { return consumed_pos(in); }

void lqa_input_close(lqa_input *in) {
    if (!in) return;
    end_decoder(in);
    if (in->f) fclose(in->f);
    free(in->path);
    free(in);
}

/* ---- end of a stream ----------------------------------------------------------------------- */

/* Called when a compressed stream ended: another stream of the same codec may follow
 * (concatenated members); trailing zero bytes (tape/tar padding) are accepted; anything else
 * after the end marker is an error. Returns -1 on error. */
static int after_stream_end(lqa_input *in, const unsigned char *magic, size_t magic_len, lqa_err *err) {
    for (;;) {
        if (refill(in, err) < 0) return -1;
        if (in->raw_pos == in->raw_len) {
            in->finished = 1;
            return 0;
        }
        unsigned char c = in->raw[in->raw_pos];
        if (c != 0) break;
        in->raw_pos++;
    }
    /* a next member must begin with the codec's magic; compare what is buffered (a magic split
     * across a refill boundary is checked byte by byte by the decoder itself) */
    size_t avail = in->raw_len - in->raw_pos;
    size_t cmp = avail < magic_len ? avail : magic_len;
    if (memcmp(in->raw + in->raw_pos, magic, cmp) != 0)
        return lqa_err_set(err, "%s: unexpected data after the end of the %s stream at byte %zu, expected "
                                "another %s stream or the end of the file",
                           in->path, codec_names[in->codec], consumed_pos(in), codec_names[in->codec]);
    in->stream_done = 0;
    end_decoder(in);
    start_decoder(in);
    return 0;
}

static int truncated(lqa_input *in, lqa_err *err) {
    return lqa_err_set(err, "%s: truncated %s data at byte %zu: the file ends before the end of the compressed "
                            "stream",
                       in->path, codec_names[in->codec], consumed_pos(in));
}

static int corrupt(lqa_input *in, const char *what, lqa_err *err) {
    return lqa_err_set(err, "%s: corrupt %s data at byte %zu: %s", in->path, codec_names[in->codec],
                       consumed_pos(in), what);
}

/* ---- one decode step per codec: fills out, returns bytes produced or -1 ------------------------- */

static long step_none(lqa_input *in, unsigned char *out, size_t n) {
    size_t avail = in->raw_len - in->raw_pos;
    size_t take = avail < n ? avail : n;
    memcpy(out, in->raw + in->raw_pos, take);
    in->raw_pos += take;
    if (take == 0 && in->file_eof) in->finished = 1;
    return (long)take;
}

static long step_gzip(lqa_input *in, unsigned char *out, size_t n, lqa_err *err) {
    size_t avail = in->raw_len - in->raw_pos;
    in->gz.next_in = in->raw + in->raw_pos;
    in->gz.avail_in = (uInt)avail;
    in->gz.next_out = out;
    in->gz.avail_out = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    int rc = inflate(&in->gz, Z_NO_FLUSH);
    in->raw_pos += avail - in->gz.avail_in;
    long produced = (long)((unsigned char *)in->gz.next_out - out);
    if (rc == Z_STREAM_END) in->stream_done = 1;
    else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) return corrupt(in, in->gz.msg ? in->gz.msg : "bad data", err);
    else if (rc == Z_MEM_ERROR) lqa_fatal("zlib: out of memory");
    /* at the end of the file with nothing more to flush, the stream was cut short */
    else if (produced == 0 && avail == 0 && in->file_eof) return truncated(in, err);
    return produced;
}

static long step_bzip2(lqa_input *in, unsigned char *out, size_t n, lqa_err *err) {
    size_t avail = in->raw_len - in->raw_pos;
    in->bz.next_in = (char *)in->raw + in->raw_pos;
    in->bz.avail_in = (unsigned)avail;
    in->bz.next_out = (char *)out;
    in->bz.avail_out = (unsigned)(n > UINT32_MAX ? UINT32_MAX : n);
    int rc = BZ2_bzDecompress(&in->bz);
    in->raw_pos += avail - in->bz.avail_in;
    long produced = (long)((unsigned char *)in->bz.next_out - out);
    if (rc == BZ_STREAM_END) in->stream_done = 1;
    else if (rc == BZ_DATA_ERROR || rc == BZ_DATA_ERROR_MAGIC) return corrupt(in, "bad block data or CRC", err);
    else if (rc == BZ_MEM_ERROR) lqa_fatal("bzip2: out of memory");
    else lqaCheck(rc == BZ_OK, "BZ2_bzDecompress returned %d", rc);
    if (rc == BZ_OK && produced == 0 && avail == 0 && in->file_eof) return truncated(in, err);
    return produced;
}

static long step_xz(lqa_input *in, unsigned char *out, size_t n, lqa_err *err) {
    size_t avail = in->raw_len - in->raw_pos;
    in->xz.next_in = in->raw + in->raw_pos;
    in->xz.avail_in = avail;
    in->xz.next_out = out;
    in->xz.avail_out = n;
    /* LZMA_FINISH at the end of the file lets a concatenated decoder report a clean end */
    lzma_ret rc = lzma_code(&in->xz, (avail == 0 && in->file_eof) ? LZMA_FINISH : LZMA_RUN);
    in->raw_pos += avail - in->xz.avail_in;
    long produced = (long)(n - in->xz.avail_out);
    switch (rc) {
    case LZMA_OK: break;
    case LZMA_STREAM_END: in->finished = 1; break; /* LZMA_CONCATENATED handles members and padding */
    case LZMA_BUF_ERROR: if (produced == 0) return truncated(in, err); break;
    case LZMA_MEM_ERROR: lqa_fatal("xz: out of memory");
    case LZMA_MEMLIMIT_ERROR: return corrupt(in, "the stream needs more than 256 MiB of memory to decode, refusing", err);
    case LZMA_FORMAT_ERROR: return corrupt(in, "not an xz stream after a previous one", err);
    case LZMA_OPTIONS_ERROR: return corrupt(in, "unsupported xz options", err);
    case LZMA_DATA_ERROR: return corrupt(in, "bad compressed data", err);
    default: return corrupt(in, "xz decoder error", err);
    }
    if (rc == LZMA_OK && avail == 0 && in->file_eof && produced == 0) return truncated(in, err);
    return produced;
}

static long step_zstd(lqa_input *in, unsigned char *out, size_t n, lqa_err *err) {
    size_t avail = in->raw_len - in->raw_pos;
    ZSTD_inBuffer ib = {in->raw + in->raw_pos, avail, 0};
    ZSTD_outBuffer ob = {out, n, 0};
    size_t rc = ZSTD_decompressStream(in->zs, &ob, &ib);
    in->raw_pos += ib.pos;
    if (ZSTD_isError(rc)) return corrupt(in, ZSTD_getErrorName(rc), err);
    if (ob.pos == 0 && avail == 0 && in->file_eof) {
        /* nothing left to flush: a clean end only when the previous call finished a frame (this
         * call, fed nothing, only asks for the next frame's header) */
        if (in->zs_last != 0) return truncated(in, err);
        in->finished = 1;
        return 0;
    }
    in->zs_last = rc; /* 0: a frame ended and was fully flushed; zstd chains frames itself */
    return (long)ob.pos;
}

/* ---- public reads ---------------------------------------------------------------------------- */

long lqa_input_read(lqa_input *in, void *buf, size_t n, lqa_err *err) {
    if (in->failed) return lqa_err_set(err, "%s: read after an earlier error", in->path);
    while (!in->finished && n > 0) {
        if (refill(in, err) < 0) goto fail;
        if (in->stream_done) {
            static const unsigned char gz_magic[] = {0x1f, 0x8b}, bz_magic[] = {'B', 'Z', 'h'};
            int rc = in->codec == CODEC_GZIP ? after_stream_end(in, gz_magic, 2, err)
                                             : after_stream_end(in, bz_magic, 3, err);
            if (rc < 0) goto fail;
            continue;
        }
        long got;
        switch (in->codec) {
        case CODEC_GZIP: got = step_gzip(in, buf, n, err); break;
        case CODEC_BZIP2: got = step_bzip2(in, buf, n, err); break;
        case CODEC_XZ: got = step_xz(in, buf, n, err); break;
        case CODEC_ZSTD: got = step_zstd(in, buf, n, err); break;
        default: got = step_none(in, buf, n); break;
        }
        if (got < 0) goto fail;
        if (got > 0) return got;
    }
    return 0;
fail:
    in->failed = 1;
    return -1;
}

/* An uncompressed regular file read whole with one read into a buffer of its size: most
 * inputs are plain (every page of a manual), and the stream path copies each byte twice more
 * through 64 KiB buffers. Returns 1 when done, 0 when the stream path must read it (it cannot
 * be opened, is no regular file, is over max_bytes, is compressed, changed size while read);
 * the stream path then reports any error. */
static int read_plain(const char *path, size_t max_bytes, char **data, size_t *len) {
    struct stat st;
    int fd = lqa_open_regular(path, NULL);
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return 0;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = lqa_malloc(n + 1);
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    char extra;
    int more = got == n && read(fd, &extra, 1) > 0; /* grew since fstat */
    close(fd);
    if (got != n || more || sniff_codec((const unsigned char *)buf, n) != CODEC_NONE) {
        free(buf);
        return 0;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 1;
}

int lqa_input_read_all(const char *path, size_t max_bytes, char **data, size_t *len, lqa_err *err) {
    *data = NULL;
    *len = 0;
    if (read_plain(path, max_bytes, data, len)) return 0;
    lqa_input *in = lqa_input_open(path, err);
    if (!in) return -1;
    lqa_buf b = {0};
    int rc = 0;
    for (;;) {
        lqa_buf_reserve(&b, INPUT_CHUNK);
        long got = lqa_input_read(in, b.data + b.len, b.cap - b.len - 1, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0) break;
        b.len += (size_t)got;
        b.data[b.len] = '\0';
        if (b.len > max_bytes) {
            rc = lqa_err_set(err, "%s: more than %zu bytes of %s data, refusing (the limit for a document read "
                                  "whole)",
                             path, max_bytes, in->codec == CODEC_NONE ? "input" : "decompressed");
            break;
        }
    }
    lqa_input_close(in);
    if (rc < 0) {
        lqa_buf_free(&b);
        return -1;
    }
    if (!b.data) lqa_buf_reserve(&b, 1);
    b.data[b.len] = '\0';
    *len = b.len;
    *data = lqa_buf_steal(&b);
    return 0;
}

/* ---- EPUB by its container ------------------------------------------------------------------- */

#define EPUB_SNIFF_ENTRIES 10000

int lqa_input_is_epub_container(const char *path) {
    int fd = lqa_open_regular(path, NULL);
    if (fd < 0) return 0;
    struct archive *a = archive_read_new();
    mallocCheck(a);
    archive_read_support_format_zip(a);
    int found = 0;
    if (archive_read_open_fd(a, fd, 64 * 1024) == ARCHIVE_OK) {
        struct archive_entry *e;
        /* headers only: the entries' data is skipped, not decompressed */
        for (int i = 0; i < EPUB_SNIFF_ENTRIES && !found && archive_read_next_header(a, &e) == ARCHIVE_OK; i++) {
            const char *name = archive_entry_pathname(e);
            found = name && strcmp(name, "META-INF/container.xml") == 0;
        }
    }
    archive_read_free(a);
    close(fd);
    return found;
}

/* ---- the input tree walker ------------------------------------------------------------------ */

/* Directories entered, by (device, inode): open addressing, grown at half full. */
typedef struct dir_set {
    uint64_t *keys; /* pairs dev, ino; (0, 0) is an empty slot */
    size_t cap, n;
} dir_set;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Adds (dev, ino); returns 0 when it was there already. */
static int dir_set_add(dir_set *s, uint64_t dev, uint64_t ino) {
    if (dev == 0 && ino == 0) ino = 1; /* never the empty key */
    if (2 * (s->n + 1) > s->cap) {
        dir_set old = *s;
        s->cap = old.cap ? 2 * old.cap : 64;
        s->keys = lqa_calloc(2 * s->cap, sizeof *s->keys);
        s->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[2 * i] || old.keys[2 * i + 1]) dir_set_add(s, old.keys[2 * i], old.keys[2 * i + 1]);
        free(old.keys);
    }
    size_t i = (size_t)(mix64(dev * 0x9e3779b97f4a7c15ull ^ ino) & (s->cap - 1));
    for (;; i = (i + 1) & (s->cap - 1)) {
        uint64_t *k = s->keys + 2 * i;
        if (k[0] == dev && k[1] == ino) return 0;
        if (!k[0] && !k[1]) {
            k[0] = dev;
            k[1] = ino;
            s->n++;
            return 1;
        }
    }
}

struct lqa_walker {
    lqa_walk_opts o;
    lqa_walk_fns fns;
    void *ctx;
    lqa_walk_counts counts;
    dir_set seen;
    /* the PATH being walked */
    char *root_real; /* its real path: links must stay below it */
    size_t root_len; /* length of the PATH as given: the path below it starts after it */
};

#define WALK_MAX_DEPTH 64

lqa_walker *lqa_walker_new(const lqa_walk_opts *opts, const lqa_walk_fns *fns, void *ctx) {
    lqa_walker *w = lqa_calloc(1, sizeof *w);
    if (opts) w->o = *opts;
    w->fns = *fns;
    w->ctx = ctx;
    return w;
}

const lqa_walk_counts *lqa_walker_counts(const lqa_walker *w) { return &w->counts; }

void lqa_walker_free(lqa_walker *w) {
    if (!w) return;
    free(w->seen.keys);
    free(w->root_real);
    free(w);
}

static void walk_failed(lqa_walker *w, const char *fmt, const char *path, const char *what) {
    char msg[PATH_MAX + 512];
    snprintf(msg, sizeof msg, fmt, path, what);
    w->fns.failed(w->ctx, msg);
}

static void walk_warn(lqa_walker *w, const char *fmt, const char *path, const char *what) {
    char msg[2 * PATH_MAX + 512];
    snprintf(msg, sizeof msg, fmt, path, what);
    if (w->fns.warn) w->fns.warn(w->ctx, msg);
}

/* What a stat mode is, in words. */
static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

/* ---- names ---- */

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entry names of dir (hidden ones skipped): 0, or -1 (errno set) when it cannot be read.
 * An empty directory gives n = 0 and names = NULL. */
static int list_dir(const char *dir, char ***names_out, int *n) {
    *n = 0;
    *names_out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL) break;
        if (e->d_name[0] == '.') continue;
        if (*n == cap) names = lqa_realloc(names, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *names);
        names[(*n)++] = lqa_strdup(e->d_name);
    }
    int e_read = errno; /* readdir's: 0 at the end of the directory */
    closedir(d);
    if (*n > 1) qsort(names, (size_t)*n, sizeof *names, name_cmp); /* never qsort(NULL, 0) */
    *names_out = names;
    errno = e_read;
    return e_read ? -1 : 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int has_name(char *const *names, int n, const char *name) {
    return bsearch(&name, names, (size_t)n, sizeof *names, name_cmp) != NULL;
}

/* index.en.html, else index.html, else the first index.*.html, else index.page (Mallard), of a
 * manual directory (names sorted); NULL if none. index.en.html first: a bare index.html is often
 * a language chooser (debian-reference). */
static char *manual_index(const char *dir, char *const *names, int n) {
    if (has_name(names, n, "index.en.html")) return lqa_path_join(dir, "index.en.html");
    if (has_name(names, n, "index.html")) return lqa_path_join(dir, "index.html");
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (!strncmp(names[i], "index.", 6) && len > 11 && !strcmp(names[i] + len - 5, ".html"))
            return lqa_path_join(dir, names[i]);
    }
    if (has_name(names, n, "index.page")) return lqa_path_join(dir, "index.page"); /* a Mallard help directory */
    return NULL;
}

/* ---- filters ---- */

static int ends_with_ci(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* Length of name without a compression suffix (.gz .bz2 .xz .zst). */
static size_t strip_codec(const char *name, size_t n) {
    static const char *const codecs[] = {".gz", ".bz2", ".xz", ".zst", NULL};
    for (int i = 0; codecs[i]; i++)
        if (ends_with_ci(name, n, codecs[i]) && n > strlen(codecs[i])) return n - strlen(codecs[i]);
    return n;
}

const char *lqa_walk_default_exclude(const char *name) {
    static const struct {
        const char *why;
        const char *exts;
    } groups[] = {
        {"a stylesheet", ".css .less .scss .sass "},
        {"a script", ".js .mjs .cjs .map .jsonp "},
        {"an image", ".png .jpg .jpeg .gif .svg .svgz .ico .webp .bmp .tif .tiff .xcf .eps "},
        {"a font", ".woff .woff2 .ttf .otf .eot .pfb .afm "},
        {"media", ".mp3 .mp4 .ogg .ogv .oga .wav .webm .avi .mov .flac "},
        {"an archive or binary", ".zip .tar .tgz .jar .deb .rpm .whl .so .a .o .pyc .class .exe .dll .bin .db "
                                 ".sqlite .pdf .ps .dvi .inv .buildinfo "},
    };
    size_t full = strlen(name), n = strip_codec(name, full);
    const char *dot = NULL;
    for (size_t i = n; i > 0; i--)
        if (name[i - 1] == '.') {
            dot = name + i - 1;
            break;
        }
    if (dot && dot != name) {
        char ext[24];
        size_t el = (size_t)(name + n - dot);
        if (el + 2 < sizeof ext) {
            for (size_t i = 0; i < el; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
            ext[el] = ' ';
            ext[el + 1] = '\0';
            for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
                if (strstr(groups[g].exts, ext)) return groups[g].why;
        }
    }
    /* a store's own journal files, when it is written inside the tree it reads */
    if (ends_with_ci(name, full, ".db-wal") || ends_with_ci(name, full, ".db-shm") || ends_with_ci(name, full, ".db-journal"))
        return "a database journal";
    /* search indexes (Sphinx searchindex.js is caught above; MkDocs and others write JSON) and
     * the search and general-index pages, which hold no text of their own */
    static const char *const index_prefixes[] = {"searchindex.", "search_index.", "search-index.", NULL};
    for (int i = 0; index_prefixes[i]; i++)
        if (!strncasecmp(name, index_prefixes[i], strlen(index_prefixes[i]))) return "a search index";
    if (!strcasecmp(name, "search.html") || !strcasecmp(name, "genindex.html") || !strncasecmp(name, "genindex-", 9))
        return "a search or index page";
    if (!strncasecmp(name, "changelog", 9) || !strncasecmp(name, "NEWS.Debian", 11) || !strcmp(name, "CHANGES") ||
        !strncmp(name, "CHANGES.", 8))
        return "a changelog";
    return NULL;
}

/* Directories that hold no documents of their own: Sphinx's copies of the sources and its
 * static files, caches. */
static const char *default_exclude_dir(const char *name) {
    static const char *const dirs[] = {"_sources", "_static", "_images", "__pycache__", "node_modules", NULL};
    for (int i = 0; dirs[i]; i++)
        if (!strcmp(name, dirs[i])) return "no documents (build output)";
    return NULL;
}

/* page.txt.gz (or .text, .md, .markdown, .json; compressed or not) beside page.html: the
 * same page again, as a second document (Debian's doc packages ship HTML with text twins;
 * Node's API docs ship each page as .html, .md and .json). The page is kept. */
static int is_twin(const char *name, char *const *names, int n_names) {
    static const char *const stems[] = {".txt", ".text", ".md", ".markdown", ".json", NULL};
    static const char *const pages[] = {".html", ".htm", ".xhtml", NULL};
    size_t n = strip_codec(name, strlen(name));
    for (int i = 0; stems[i]; i++) {
        if (!ends_with_ci(name, n, stems[i])) continue;
        size_t base = n - strlen(stems[i]);
        char sib[NAME_MAX + 16];
        if (base == 0 || base + 8 > sizeof sib) return 0;
        for (int p = 0; pages[p]; p++) {
            memcpy(sib, name, base);
            strcpy(sib + base, pages[p]);
            if (has_name(names, n_names, sib)) return 1;
        }
    }
    return 0;
}

int lqa_walk_glob_match(const char *glob, const char *rel, const char *name) {
    return fnmatch(glob, strchr(glob, '/') ? rel : name, 0) == 0;
}

static int any_glob(const char *const *globs, int n, const char *rel, const char *name) {
    for (int i = 0; i < n; i++)
        if (lqa_walk_glob_match(globs[i], rel, name)) return 1;
    return 0;
}

/* Whether a file met in a tree is taken. */
static int take_file(lqa_walker *w, const char *rel, const char *name, char *const *names, int n_names) {
    if (any_glob(w->o.exclude, w->o.n_exclude, rel, name)) {
        w->counts.excluded++;
        return 0;
    }
    if (any_glob(w->o.include, w->o.n_include, rel, name)) return 1;
    if (w->o.n_include > 0) {
        w->counts.excluded++;
        return 0;
    }
    if (!w->o.no_default_excludes && (lqa_walk_default_exclude(name) || is_twin(name, names, n_names))) {
        w->counts.not_documents++;
        return 0;
    }
    return 1;
}

/* ---- links ---- */

/* Whether real (a real path) is the root or below it. */
static int inside_root(const lqa_walker *w, const char *real) {
    size_t n = strlen(w->root_real);
    if (n == 1) return 1; /* the root is "/" */
    return strncmp(real, w->root_real, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

/* An entry that lstat found to be a symbolic link: its target's stat when it is to be
 * followed, else 0 after a warning. */
static int follow_link(lqa_walker *w, const char *path, struct stat *st) {
    if (stat(path, st) != 0) {
        w->counts.not_regular++;
        walk_warn(w, "%s: broken symbolic link (%s), skipped", path, strerror(errno));
        return 0;
    }
    if (w->o.follow_symlinks) return 1;
    char *real = realpath(path, NULL);
    int in = real && inside_root(w, real);
    if (!in) {
        w->counts.links_out++;
        walk_warn(w, "%s: symbolic link to %s leaves the input tree, not followed (--follow-symlinks follows it)",
                  path, real ? real : "?");
    }
    free(real);
    return in;
}

/* A manual's index page must be a regular file, or a link that may be followed: the manual is
 * read from the folder of the index's real path. */
static int index_ok(lqa_walker *w, const char *index) {
    struct stat st;
    if (lstat(index, &st) != 0) return 0;
    if (S_ISLNK(st.st_mode)) { /* checked quietly: the folder's walk warns about the link */
        if (stat(index, &st) != 0) return 0;
        if (!w->o.follow_symlinks) {
            char *real = realpath(index, NULL);
            int in = real && inside_root(w, real);
            free(real);
            if (!in) return 0;
        }
    }
    return S_ISREG(st.st_mode);
}

/* ---- the walk ---- */

static void walk_dir(lqa_walker *w, const char *path, const struct stat *st, const char *top, int depth);

/* One entry of a directory (or the PATH itself at depth 0, where nothing is filtered). */
static void walk_entry(lqa_walker *w, const char *path, const char *name, const char *top, int depth,
                       char *const *sibs, int n_sibs) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        walk_failed(w, "%s: cannot read: %s", path, strerror(errno));
        return;
    }
    if (S_ISLNK(st.st_mode) && !(depth == 0 ? stat(path, &st) == 0 : follow_link(w, path, &st))) {
        if (depth == 0) walk_failed(w, "%s: cannot read: %s", path, strerror(errno));
        return;
    }
    const char *rel = depth == 0 ? name : path + w->root_len;
    if (depth > 0 && *rel == '/') rel++;
    if (S_ISDIR(st.st_mode)) {
        if (depth > 0 && any_glob(w->o.exclude, w->o.n_exclude, rel, name)) return;
        if (depth > 0 && !w->o.no_default_excludes && default_exclude_dir(name)) return;
        walk_dir(w, path, &st, depth == 1 ? name : top, depth);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        if (depth == 0) {
            walk_failed(w, "%s: is %s, expected a regular file or a directory", path, file_kind(st.st_mode));
        } else {
            w->counts.not_regular++;
            walk_warn(w, "%s: %s, skipped (only regular files are read)", path, file_kind(st.st_mode));
        }
        return;
    }
    if (depth > 0 && !take_file(w, rel, name, sibs, n_sibs)) return;
    w->fns.input(w->ctx, path, depth >= 2 ? top : NULL, NULL, (double)st.st_size);
}

static double dir_bytes(const char *dir, char *const *names, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        char *p = lqa_path_join(dir, names[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) total += (double)st.st_size;
        free(p);
    }
    return total;
}

static void walk_dir(lqa_walker *w, const char *path, const struct stat *st, const char *top, int depth) {
    if (!dir_set_add(&w->seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino)) {
        w->counts.revisits++;
        return;
    }
    if (depth > WALK_MAX_DEPTH) {
        walk_failed(w, "%s: directories nested more than %s deep, expected a shallower tree", path, "64");
        return;
    }
    char **names;
    int n;
    if (list_dir(path, &names, &n) != 0) {
        walk_failed(w, "%s: cannot list directory: %s", path, strerror(errno));
        free_names(names, n);
        return;
    }
    char *index = w->o.join ? manual_index(path, names, n) : NULL;
    if (index && !index_ok(w, index)) { /* an index linking out of the tree: walk the folder instead */
        free(index);
        index = NULL;
    }
    if (index) {
        w->fns.input(w->ctx, path, depth >= 1 ? top : NULL, index, dir_bytes(path, names, n));
        free(index);
        free_names(names, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        char *child = lqa_path_join(path, names[i]);
        walk_entry(w, child, names[i], top, depth + 1, names, n);
        free(child);
    }
    free_names(names, n);
}

void lqa_walker_run(lqa_walker *w, const char *path) {
    /* trailing slashes would leave an empty name */
    char *copy = lqa_strdup(path);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    free(w->root_real);
    w->root_real = realpath(copy, NULL);
    if (!w->root_real) w->root_real = lqa_strdup(copy);
    w->root_len = n;
    const char *base = strrchr(copy, '/');
    walk_entry(w, copy, base && base[1] ? base + 1 : copy, NULL, 0, NULL, 0);
    free(copy);
}
