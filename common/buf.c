/* buf.c: growable byte buffer. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lqa_buf_reserve(lqa_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    b->data = lqa_realloc(b->data, cap);
    b->cap = cap;
}

void lqa_buf_append(lqa_buf *b, const void *data, size_t n) {
    lqa_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void lqa_buf_puts(lqa_buf *b, const char *s) { lqa_buf_append(b, s, strlen(s)); }

void lqa_buf_putc(lqa_buf *b, char c) { lqa_buf_append(b, &c, 1); }

void lqa_buf_vprintf(lqa_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    lqaCheck(n >= 0, "bad format");
    lqa_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void lqa_buf_printf(lqa_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lqa_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void lqa_buf_clear(lqa_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void lqa_buf_free(lqa_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *lqa_buf_steal(lqa_buf *b) {
    if (!b->data) lqa_buf_reserve(b, 0), b->data[0] = '\0';
    char *d = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
