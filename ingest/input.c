/* input.c: the decompression layer of ingest/input.h. A file is read through one of five codecs
 * chosen from its first bytes (gzip 1f 8b, bzip2 "BZh", xz FD '7zXZ' 00, zstd 28 B5 2F FD, else
 * none), using zlib, libbz2, liblzma and libzstd directly so that an error can name the byte
 * offset in the compressed file where the data went wrong. Concatenated streams (multi-member
 * gzip, pbzip2 output, several zstd frames, xz --concatenated) decode as one. A stream that ends
 * before its end marker is an error ("truncated"), never a silent short read. Only regular
 * files are opened (lqa_input_open_fd: a FIFO is refused, never waited on; a walked input must
 * still be the file the walk found).
 * The walker of input trees is ingest/walk.c. */
#include "ingest/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
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

int lqa_input_open_fd(const char *path, const lqa_input_pin *pin, lqa_err *err) {
    if (!pin) return lqa_open_regular(path, err);
    struct stat st;
    int fd = lqa_open_regular_ex(path, pin->via_link ? 0 : O_NOFOLLOW, &st, err);
    if (fd < 0) return -1;
    if ((uint64_t)st.st_dev != pin->dev || (uint64_t)st.st_ino != pin->ino) {
        close(fd);
        return lqa_err_set(err, "%s: cannot open: not the file the input walk found (replaced since), refusing", path);
    }
    return fd;
}

lqa_input *lqa_input_open(const char *path, lqa_err *err) { return lqa_input_open_pinned(path, NULL, err); }

lqa_input *lqa_input_open_pinned(const char *path, const lqa_input_pin *pin, lqa_err *err) {
    int fd = lqa_input_open_fd(path, pin, err);
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
static int read_plain(const char *path, const lqa_input_pin *pin, size_t max_bytes, char **data, size_t *len) {
    struct stat st;
    int fd = lqa_input_open_fd(path, pin, NULL);
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
    return lqa_input_read_all_pinned(path, NULL, max_bytes, data, len, err);
}

int lqa_input_read_all_pinned(const char *path, const lqa_input_pin *pin, size_t max_bytes, char **data, size_t *len,
                              lqa_err *err) {
    *data = NULL;
    *len = 0;
    if (read_plain(path, pin, max_bytes, data, len)) return 0;
    lqa_input *in = lqa_input_open_pinned(path, pin, err);
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

int lqa_input_is_epub_container(const char *path) { return lqa_input_is_epub_container_pinned(path, NULL); }

int lqa_input_is_epub_container_pinned(const char *path, const lqa_input_pin *pin) {
    int fd = lqa_input_open_fd(path, pin, NULL);
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
