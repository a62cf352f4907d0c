/* xml.h: the XML/HTML family through libxml2, parsed safely (no network, no external entities,
 * no XInclude, no entity expansion; huge nodes and deep nesting refused): XHTML and HTML
 * (recovering parser), DocBook 4/5, JATS, TEI, Mallard, MediaWiki export dumps (streamed with
 * xmlTextReader, constant memory) and EPUB (zip container, OPF spine order). */
#ifndef LQA_XML_H
#define LQA_XML_H

#include "ingest/input.h"
#include "ingest/parse.h"

/* Sniffs an XML-family format from the first bytes of content: returns "html", "docbook",
 * "jats", "tei", "mallard", "mediawiki", or NULL when it is not one of them. */
const char *lqa_xml_sniff(const char *head, size_t n);

/* Parses an in-memory document of the given format (html, docbook, jats, tei, mallard). */
int lqa_xml_parse_buffer(const char *path, const char *data, size_t len, const char *format,
                         const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err);
/* Streams a MediaWiki dump, one document per page (main namespace, redirects skipped). */
int lqa_xml_parse_mediawiki(const char *path, lqa_input *in, const lqa_parse_opts *opts, lqa_doc_sink sink,
                            void *ctx, lqa_err *err);
/* An EPUB file: one document in spine order. */
int lqa_xml_parse_epub(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err);

#endif
