/* join.c: multi-page HTML manuals as one document (work in progress). */
#include "ingest/xml_internal.h"

int lqa_parse_joined(const char *const *paths, int n_paths, const lqa_parse_opts *opts, lqa_doc_sink sink,
                     void *ctx, lqa_err *err) {
    return lqa_err_set(err, "--join is not supported yet");
}

int lqa_manual_reading_order(const char *index_path, char ***paths, int *n_paths, lqa_err *err) {
    return lqa_err_set(err, "%s: --join is not supported yet", index_path);
}
