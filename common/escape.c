/* escape.c: see escape.h. */
#include "common/escape.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (2..4 for a multi-byte one), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0], cp, min;
    size_t len;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0; /* C1 controls (CSI is U+009B) */
    return len;
}

/* Bytes of in[i..] kept as they are: a printable ASCII byte or a whole valid UTF-8 sequence;
 * 0 when the byte at i must be escaped. */
static size_t kept(const unsigned char *in, size_t n, size_t i) {
    unsigned c = in[i];
    if (c >= 0x20 && c < 0x7f) return 1;
    if (c < 0x80) return 0;
    return utf8_len(in + i, n - i);
}

size_t lqa_escape(const char *in_, size_t n, char *out, size_t cap) {
    const unsigned char *in = (const unsigned char *)in_;
    size_t o = 0;
    if (cap == 0) return 0;
    for (size_t i = 0; i < n;) {
        size_t k = kept(in, n, i);
        char esc[5];
        const char *piece;
        size_t len;
        if (k) {
            piece = (const char *)in + i;
            len = k;
        } else {
            unsigned c = in[i];
            if (c == '\n') piece = "\\n";
            else if (c == '\r') piece = "\\r";
            else if (c == '\t') piece = "\\t";
            else {
                snprintf(esc, sizeof esc, "\\x%02x", c);
                piece = esc;
            }
            len = strlen(piece);
            k = 1;
        }
        if (o + len >= cap) break;
        memcpy(out + o, piece, len);
        o += len;
        i += k;
    }
    out[o] = '\0';
    return o;
}

int lqa_escape_clean(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = kept((const unsigned char *)s, n, i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

void lqa_escape_inplace(char *s, size_t cap) {
    if (lqa_escape_clean(s)) return; /* the common case: nothing to copy */
    char tmp[4096];
    size_t n = strlen(s);
    if (cap > sizeof tmp) cap = sizeof tmp;
    lqa_escape(s, n, tmp, cap);
    memcpy(s, tmp, strlen(tmp) + 1);
}

static void print_line(FILE *f, const char *fmt, va_list ap) {
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    lqa_escape_inplace(line, sizeof line);
    fprintf(f, "%s\n", line);
}

void lqa_eprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line(stderr, fmt, ap);
    va_end(ap);
}

void lqa_oprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_line(stdout, fmt, ap);
    va_end(ap);
}

const char *lqa_bad_option(int argc, char *const argv[]) {
    static char short_opt[3];
    const char *arg = optind >= 1 && optind <= argc ? argv[optind - 1] : "";
    /* a short option (maybe inside a cluster like -xq, where optind has not moved on): optopt */
    if (optopt > ' ' && optopt < 127 && strncmp(arg, "--", 2) != 0) {
        snprintf(short_opt, sizeof short_opt, "-%c", optopt);
        return short_opt;
    }
    return arg;
}
