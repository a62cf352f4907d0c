/* xml_epub.c: EPUB (work in progress). */
#include "ingest/xml_internal.h"

int lqa_xml_parse_epub(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    return lqa_err_set(err, "%s: EPUB is not supported yet", path);
}
