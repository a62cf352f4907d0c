/* json.c: jansson helpers. */
#include "common/json.h"

#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"

json_t *lqa_json_load_file(const char *path, lqa_err *err) {
    char *text; /* read first, so a missing file says so instead of "invalid JSON" */
    size_t n;
    if (lqa_read_file(path, &text, &n, err)) return NULL;
    json_t *j = lqa_json_load_buffer(text, n, path, err);
    free(text);
    return j;
}

json_t *lqa_json_load_buffer(const char *text, size_t n, const char *what, lqa_err *err) {
    json_error_t je;
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) lqa_err_set(err, "%s:%d:%d: invalid JSON: %s", what, je.line, je.column, je.text);
    return j;
}

json_t *lqa_json_load_string(const char *text, const char *what, lqa_err *err) {
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j) lqa_err_set(err, "%s:%d:%d: invalid JSON: %s", what, je.line, je.column, je.text);
    return j;
}

int lqa_json_write_file(const char *path, const json_t *obj, lqa_err *err) {
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!text) return lqa_err_set(err, "%s: cannot serialise JSON", path);
    size_t n = strlen(text);
    text = lqa_realloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = '\0';
    int rc = lqa_write_file_atomic(path, text, n + 1, err);
    free(text);
    return rc;
}

const char *lqa_json_str(const json_t *obj, const char *key, const char *dflt) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

long long lqa_json_int(const json_t *obj, const char *key, long long dflt) {
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

double lqa_json_num(const json_t *obj, const char *key, double dflt) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}
