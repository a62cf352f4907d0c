/* log.h: leveled logging to stderr. Level from lqa_log_set_level or the LQA_LOG environment
 * variable (error, warn, info, debug); default info. */
#ifndef LQA_LOG_H
#define LQA_LOG_H

#include "common/check.h"

typedef enum { LQA_LOG_ERROR = 0, LQA_LOG_WARN = 1, LQA_LOG_INFO = 2, LQA_LOG_DEBUG = 3 } lqa_log_level;

void lqa_log_set_level(lqa_log_level level);
lqa_log_level lqa_log_get_level(void);
void lqa_log(lqa_log_level level, const char *fmt, ...) LQA_PRINTF(2, 3);

#define log_error(...) lqa_log(LQA_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) lqa_log(LQA_LOG_WARN, __VA_ARGS__)
#define log_info(...) lqa_log(LQA_LOG_INFO, __VA_ARGS__)
#define log_debug(...) lqa_log(LQA_LOG_DEBUG, __VA_ARGS__)

#endif
