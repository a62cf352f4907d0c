/* xml_mediawiki.c: MediaWiki export dumps, streamed (work in progress). */
#include "ingest/xml_internal.h"

int lqa_xml_parse_mediawiki(const char *path, lqa_input *in, const lqa_parse_opts *opts, lqa_doc_sink sink,
                            void *ctx, lqa_err *err) {
    return lqa_err_set(err, "%s: MediaWiki dumps are not supported yet", path);
}
