/* log.c: leveled logging to stderr; one line per call (control bytes escaped, common/escape.h), written with a single fprintf so lines
 * from OpenMP threads do not interleave. */
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

#include "common/escape.h"

static int g_level = -1;

static int level_from_env(void) {
    const char *s = getenv("LQA_LOG");
    if (!s) return LQA_LOG_INFO;
    if (!strcmp(s, "error")) return LQA_LOG_ERROR;
    if (!strcmp(s, "warn")) return LQA_LOG_WARN;
    if (!strcmp(s, "debug")) return LQA_LOG_DEBUG;
    return LQA_LOG_INFO;
}

void lqa_log_set_level(lqa_log_level level) { g_level = (int)level; }

lqa_log_level lqa_log_get_level(void) {
    if (g_level < 0) g_level = level_from_env();
    return (lqa_log_level)g_level;
}

void lqa_log(lqa_log_level level, const char *fmt, ...) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    if ((int)level > (int)lqa_log_get_level()) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lqa_escape_inplace(line, sizeof line); /* one line per call, whatever a file name holds */
    if (level == LQA_LOG_INFO) fprintf(stderr, "%s\n", line);
    else fprintf(stderr, "%s: %s\n", names[level], line);
}
