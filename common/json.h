/* json.h: JSON through jansson. Helpers for the common cases: load a file with an error that
 * names file, line and column; typed getters with defaults; atomic pretty-printed writes. */
#ifndef LQA_JSON_H
#define LQA_JSON_H

#include <jansson.h>

#include "common/check.h"

json_t *lqa_json_load_file(const char *path, lqa_err *err);
json_t *lqa_json_load_string(const char *text, const char *what, lqa_err *err);
/* n bytes of JSON from memory (a file already read, a fuzzer's input); errors name what. */
json_t *lqa_json_load_buffer(const char *text, size_t n, const char *what, lqa_err *err);
/* Writes obj (indented, keys in insertion order) to path atomically. */
int lqa_json_write_file(const char *path, const json_t *obj, lqa_err *err);

const char *lqa_json_str(const json_t *obj, const char *key, const char *dflt);
long long lqa_json_int(const json_t *obj, const char *key, long long dflt);
double lqa_json_num(const json_t *obj, const char *key, double dflt);

#endif
