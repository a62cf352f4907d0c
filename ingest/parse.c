/* parse.c: the dispatcher of ingest/parse.h. lqa_parse_path reads the first bytes of a file
 * through the decompression layer, refuses empty and binary files, sniffs the format from
 * content (EPUB by its zip "mimetype" entry, the XML family through lqa_xml_sniff, QA sets by
 * their JSON keys, Markdown vs plain text) unless opts->format forces one, and calls the
 * format's parser. Text formats are checked for invalid UTF-8 here: a warning names the first
 * bad line and the builder writes U+FFFD in place of the bad bytes. */
#include "ingest/parse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/input.h"
#include "ingest/qaset.h"
#include "ingest/text.h"
#include "ingest/xml.h"

const char *const lqa_formats[] = {"auto",     "html",      "docbook", "jats",  "tei",       "mallard",
                                   "mediawiki", "epub",      "text",    "markdown", "alpaca", "longbench",
                                   "squad",    "qasper",    NULL};

#define SNIFF_BYTES (64 * 1024)
/* A text or XML document is read whole; larger inputs belong to the streamed formats. */
#define MAX_WHOLE_DOC ((size_t)1 << 30)

/* ---- sniffing -------------------------------------------------------------------------------- */

static const lqa_input_pin *pin_of(const lqa_parse_opts *opts) { return opts ? opts->pin : NULL; }

/* Reads up to cap decompressed bytes from the start of path. */
static int read_head(const char *path, const lqa_input_pin *pin, char *head, size_t cap, size_t *n, const char **codec,
                     lqa_err *err) {
    lqa_input *in = lqa_input_open_pinned(path, pin, err);
    if (!in) return -1;
    *n = 0;
    while (*n < cap) {
        long got = lqa_input_read(in, head + *n, cap - *n, err);
        if (got < 0) {
            lqa_input_close(in);
            return -1;
        }
        if (got == 0) break;
        *n += (size_t)got;
    }
    *codec = lqa_input_codec(in); /* a static string */
    lqa_input_close(in);
    return 0;
}

static long line_of(const char *s, size_t pos) {
    long line = 1;
    for (size_t i = 0; i < pos; i++) line += s[i] == '\n';
    return line;
}

/* An EPUB's first zip entry is "mimetype", stored, holding "application/epub+zip". The local
 * header may carry an extra field (libarchive writes one): its length is at offset 28. */
static int is_epub(const char *head, size_t n) {
    static const char name[] = "mimetype", mt[] = "application/epub+zip";
    if (n < 30 + sizeof name - 1 || memcmp(head, "PK\x03\x04", 4) != 0 || memcmp(head + 30, name, sizeof name - 1) != 0)
        return 0;
    size_t extra = (size_t)(unsigned char)head[28] | (size_t)(unsigned char)head[29] << 8;
    size_t at = 30 + (sizeof name - 1) + extra;
    return n >= at + sizeof mt - 1 && memcmp(head + at, mt, sizeof mt - 1) == 0;
}

/* Binary data: a NUL byte, or many control characters that text never holds. */
static int check_text_bytes(const char *path, const char *s, size_t n, lqa_err *err) {
    if (n >= 2 && ((unsigned char)s[0] == 0xff && (unsigned char)s[1] == 0xfe))
        return lqa_err_set(err, "%s:1: UTF-16 text (byte-order mark FF FE), expected UTF-8: convert it first "
                                "(iconv -f UTF-16 -t UTF-8)", path);
    if (n >= 2 && ((unsigned char)s[0] == 0xfe && (unsigned char)s[1] == 0xff))
        return lqa_err_set(err, "%s:1: UTF-16 text (byte-order mark FE FF), expected UTF-8: convert it first "
                                "(iconv -f UTF-16 -t UTF-8)", path);
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return lqa_err_set(err, "%s:%ld: binary data (a NUL byte at byte %zu), expected a text document "
                                "(text, Markdown, XML/HTML, JSON)",
                           path, line_of(s, (size_t)(nul - s)), (size_t)(nul - s));
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        ctrl += (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b) || c == 0x7f;
    }
    if (n > 0 && ctrl * 20 > n)
        return lqa_err_set(err, "%s:1: binary data (%zu control bytes in the first %zu), expected a text document",
                           path, ctrl, n);
    return 0;
}

/* JSON opens with '[' then a value or ']', or '{' then a key or '}'; "[Usenet] text" and
 * "{braces} in prose" are text. */
static int looks_like_json(const char *s, size_t n) {
    size_t i = 1;
    while (i < n && strchr(" \t\r\n", s[i])) i++;
    if (i == n) return 1;
    if (s[0] == '{') return s[i] == '"' || s[i] == '}';
    return strchr("{[\"-0123456789tfn]", s[i]) != NULL;
}

static const char *sniff_format(const char *path, const lqa_input_pin *pin, const char *head, size_t n, lqa_err *err) {
    if (is_epub(head, n) || (n >= 4 && !memcmp(head, "PK\x03\x04", 4) && lqa_input_is_epub_container_pinned(path, pin)))
        return "epub"; /* a zip with mimetype first, or any zip holding META-INF/container.xml */
    if (check_text_bytes(path, head, n, err) < 0) return NULL;
    size_t i = 0;
    if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0) i = 3;
    while (i < n && strchr(" \t\r\n\f\v", head[i])) i++;
    if (i == n) {
        lqa_err_set(err, "%s:%ld: only whitespace, expected a document", path, line_of(head, n));
        return NULL;
    }
    if (head[i] == '<') {
        const char *fmt = lqa_xml_sniff(head, n);
        if (!fmt)
            lqa_err_set(err, "%s:%ld: markup of an unknown kind, expected XHTML/HTML, DocBook, JATS, TEI, Mallard or "
                             "a MediaWiki dump (or force a format with --format)",
                        path, line_of(head, i));
        return fmt;
    }
    if ((head[i] == '[' || head[i] == '{') && looks_like_json(head + i, n - i)) {
        const char *fmt = lqa_qaset_sniff(head, n);
        if (!fmt)
            lqa_err_set(err, "%s:%ld: JSON that is not a known QA set, expected an Alpaca/LongAlpaca array "
                             "(instruction, output), LongBench JSONL (context, input, answers), SQuAD v2 (data, "
                             "paragraphs) or Qasper (full_text, qas)",
                        path, line_of(head, i));
        return fmt;
    }
    return lqa_text_sniff(head, n);
}

static int known_format(const char *fmt) {
    for (int i = 0; lqa_formats[i]; i++)
        if (strcmp(lqa_formats[i], fmt) == 0) return 1;
    return 0;
}

/* ---- invalid UTF-8 --------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static int utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int len;
    unsigned min;
    unsigned cp;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* Warns once per file: the first bad line and how many lines hold bad bytes. */
static void warn_invalid_utf8(const char *path, const char *s, size_t n, const lqa_parse_opts *opts) {
    long line = 1, first_line = 0, bad_lines = 0, last_bad = 0;
    size_t first_byte = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            line++;
            i++;
            continue;
        }
        int len = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (len > 0) {
            i += (size_t)len;
            continue;
        }
        if (!first_line) first_line = line, first_byte = i;
        if (last_bad != line) bad_lines++, last_bad = line;
        i++;
    }
    if (!first_line) return;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s:%ld: invalid UTF-8 (byte 0x%02x at byte %zu; %ld line%s affected), replaced with "
                              "U+FFFD",
             path, first_line, (unsigned char)s[first_byte], first_byte, bad_lines, bad_lines == 1 ? "" : "s");
    if (opts && opts->warn) opts->warn(msg, opts->warn_ctx);
}

/* ---- dispatch --------------------------------------------------------------------------------- */

static int parse_text_family(const char *path, const char *fmt, const lqa_parse_opts *opts, lqa_doc_sink sink,
                             void *ctx, lqa_err *err) {
    char *data;
    size_t len;
    if (lqa_input_read_all_pinned(path, pin_of(opts), MAX_WHOLE_DOC, &data, &len, err) < 0) return -1;
    int rc = check_text_bytes(path, data, len, err);
    if (rc == 0) {
        warn_invalid_utf8(path, data, len, opts);
        rc = lqa_text_parse(path, data, len, fmt, opts, sink, ctx, err);
    }
    free(data);
    return rc;
}

static int parse_xml_family(const char *path, const char *fmt, const lqa_parse_opts *opts, lqa_doc_sink sink,
                            void *ctx, lqa_err *err) {
    char *data;
    size_t len;
    if (lqa_input_read_all_pinned(path, pin_of(opts), MAX_WHOLE_DOC, &data, &len, err) < 0) return -1;
    int rc = lqa_xml_parse_buffer(path, data, len, fmt, opts, sink, ctx, err);
    free(data);
    return rc;
}

static int parse_mediawiki(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                           lqa_err *err) {
    lqa_input *in = lqa_input_open_pinned(path, pin_of(opts), err);
    if (!in) return -1;
    int rc = lqa_xml_parse_mediawiki(path, in, opts, sink, ctx, err);
    lqa_input_close(in);
    return rc;
}

static int dispatch(const char *path, const char *fmt, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                    lqa_err *err) {
    if (!strcmp(fmt, "text") || !strcmp(fmt, "markdown")) return parse_text_family(path, fmt, opts, sink, ctx, err);
    if (!strcmp(fmt, "mediawiki")) return parse_mediawiki(path, opts, sink, ctx, err);
    if (!strcmp(fmt, "epub")) return lqa_xml_parse_epub(path, opts, sink, ctx, err);
    if (!strcmp(fmt, "alpaca") || !strcmp(fmt, "longbench") || !strcmp(fmt, "squad") || !strcmp(fmt, "qasper"))
        return lqa_qaset_parse(path, fmt, opts, sink, ctx, err);
    return parse_xml_family(path, fmt, opts, sink, ctx, err);
}

int lqa_parse_path(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return lqa_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return lqa_err_set(err, "%s: is a directory, expected a file", path);
    const char *forced = opts && opts->format && strcmp(opts->format, "auto") != 0 ? opts->format : NULL;
    if (forced && !known_format(forced))
        return lqa_err_set(err, "%s: unknown format '%s', expected one of auto, html, docbook, jats, tei, mallard, "
                                "mediawiki, epub, text, markdown, alpaca, longbench, squad, qasper",
                           path, forced);
    char *head = lqa_malloc(SNIFF_BYTES + 1);
    size_t n = 0;
    const char *codec = "none";
    int rc = read_head(path, pin_of(opts), head, SNIFF_BYTES, &n, &codec, err);
    if (rc == 0 && n == 0)
        rc = lqa_err_set(err, "%s:1: empty file%s, expected a document", path,
                         strcmp(codec, "none") ? " (after decompression)" : "");
    const char *fmt = forced;
    if (rc == 0 && !fmt) {
        fmt = sniff_format(path, pin_of(opts), head, n, err);
        if (!fmt) rc = -1;
    }
    free(head);
    if (rc < 0) return -1;
    return dispatch(path, fmt, opts, sink, ctx, err);
}

void lqa_parse_warn(const lqa_parse_opts *opts, const char *fmt, ...) {
    if (!opts || !opts->warn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    opts->warn(msg, opts->warn_ctx);
}
