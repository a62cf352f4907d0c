/* escape.h: names and messages made safe to print on one line. A file name may hold any byte
 * but '/' and NUL: a newline in it could forge an "error:" line in a log, an escape sequence
 * could drive the terminal. Every message the tools print goes through lqa_escape (lqa_err_set,
 * lqa_err_prefix, lqa_log and lqa_fatal call it), so such bytes come out as visible escapes:
 * \n \r \t, and \xNN for other control bytes (C0, DEL, C1 as UTF-8) and for bytes that are not
 * valid UTF-8. Printable text, UTF-8 included, is kept as it is; a backslash is kept too, so
 * escaping is idempotent (an escaped message escaped again is unchanged). */
#ifndef LQA_ESCAPE_H
#define LQA_ESCAPE_H

#include <stddef.h>

/* Writes the escaped form of in[0, n) into out (cap bytes, NUL-terminated; an escape is never
 * cut in half: the output stops before one that does not fit). Returns the output length. */
size_t lqa_escape(const char *in, size_t n, char *out, size_t cap);
/* Escapes the NUL-terminated string s in place (s has cap bytes of room). */
void lqa_escape_inplace(char *s, size_t cap);
/* Nonzero when s needs no escaping. */
int lqa_escape_clean(const char *s);
/* Prints one line to stderr: the formatted message, escaped, then a newline (for messages that
 * name files outside lqa_err and lqa_log). */
void lqa_eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same on stdout (a report line that names the user's file or query). */
void lqa_oprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The argument getopt refused (an unknown option, or one missing its value): "--name...", or
 * "-c" for a short option. getopt's own message would print it raw, so the tools set opterr = 0
 * and name it in their own message, which they print escaped. */
const char *lqa_bad_option(int argc, char *const argv[]);

#endif
