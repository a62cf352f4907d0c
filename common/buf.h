/* buf.h: a growable byte buffer (strings, binary records). Always NUL-terminated. */
#ifndef LQA_BUF_H
#define LQA_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/check.h"

typedef struct lqa_buf {
    char *data;
    size_t len, cap;
} lqa_buf;

void lqa_buf_reserve(lqa_buf *b, size_t extra);
void lqa_buf_append(lqa_buf *b, const void *data, size_t n);
void lqa_buf_puts(lqa_buf *b, const char *s);
void lqa_buf_putc(lqa_buf *b, char c);
void lqa_buf_printf(lqa_buf *b, const char *fmt, ...) LQA_PRINTF(2, 3);
void lqa_buf_vprintf(lqa_buf *b, const char *fmt, va_list ap); /* ap is used up */
void lqa_buf_clear(lqa_buf *b);
void lqa_buf_free(lqa_buf *b);
/* Hands the data to the caller (who frees it) and leaves b empty. */
char *lqa_buf_steal(lqa_buf *b);

#endif
