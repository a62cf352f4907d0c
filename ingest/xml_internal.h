/* xml_internal.h: what the XML-family parsers (ingest/xml*.c, ingest/join.c) share: safe
 * libxml2 parsing with captured errors, and the tree walker that turns elements into text,
 * sections, tables, definitions and the abstract through the document builder. Private to
 * ingest/; the public entry points are in xml.h and parse.h. */
#ifndef LQA_XML_INTERNAL_H
#define LQA_XML_INTERNAL_H

#include <libxml/tree.h>

#include "ingest/docbuild.h"
#include "ingest/xml.h"

#define LQA_XML_DEFAULT_MAX_TEXT_NODE ((size_t)16 << 20)
#define LQA_XML_DEFAULT_MAX_DEPTH 256
#define LQA_XML_MAX_WARNINGS 5 /* per file; the rest are counted in one summary line */

/* Effective limits (opts may be NULL or leave them 0). */
size_t lqa_xml_max_text_node(const lqa_parse_opts *opts);
int lqa_xml_max_depth(const lqa_parse_opts *opts);


/* Once per process: refuse every external entity / DTD load, silence libxml2's global error
 * output (errors are captured per parser context instead). */
void lqa_xml_global_init(void);

/* Parses XML safely (no network, no DTD loading, no entity substitution, no XInclude). On a
 * fatal error returns NULL with err = "PATH:LINE: libxml2's message". Non-fatal problems go
 * to opts->warn as "PATH:LINE: ...". Then checks the limits (depth, text node size). */
xmlDoc *lqa_xml_read(const char *path, const char *data, size_t len, const lqa_parse_opts *opts, lqa_err *err);
/* The same for HTML with the recovering parser: parse errors become warnings. */
xmlDoc *lqa_html_read(const char *path, const char *data, size_t len, const lqa_parse_opts *opts, lqa_err *err);
/* Refuses a tree deeper than max_depth or with a text node larger than max_text_node
 * (iterative, so any depth is safe to check). */
int lqa_xml_check_limits(const char *path, xmlNode *root, const lqa_parse_opts *opts, lqa_err *err);

/* ---- node helpers ------------------------------------------------------------------------- */
/* Local-name test (namespace prefixes ignored; HTML names are already lower case). */
int xn_is(const xmlNode *n, const char *name);
int xn_is_any(const xmlNode *n, const char *const *names);
/* Attribute value without allocating (NULL when absent or not plain text). */
const char *xn_attr(const xmlNode *n, const char *name);
/* The separator between the items of a key combination or menu path (keyseq, keycombo, guiseq,
 * menuchoice): "+", " " for a key sequence, a join="" attribute, " ▸ " for menus; NULL for
 * any other element. */
const char *xn_seq_separator(const xmlNode *n);
/* Whether the class attribute holds this token. */
int xn_has_class(const xmlNode *n, const char *token);
/* First element child with this local name (NULL if none). */
xmlNode *xn_child(const xmlNode *n, const char *name);
/* Appends the text of n and its descendants (elements the walker would skip excluded; block
 * elements separated by a space). */
void xn_text(const xmlNode *n, lqa_buf *out);

/* ---- the walker ---------------------------------------------------------------------------- */
typedef struct xml_walk xml_walk;
/* A format's element handler: returns 1 when it handled n (and its subtree), 0 to let the
 * generic rules apply (skip set, block or inline, recurse). */
typedef int (*xml_elem_fn)(xml_walk *w, xmlNode *n);

struct xml_walk {
    lqa_docbuild b;
    lqa_doc *doc;
    const char *path;
    const lqa_parse_opts *opts;
    xml_elem_fn element;
    int html;        /* HTML class-based skipping (navigation chrome) */
    int in_pre;      /* keep line breaks of text */
    int in_table;    /* inside a recorded table: nested tables are flattened */
    int level;       /* current sectioning depth for formats with nested sections */
    int in_abstract; /* inside the abstract: sectioning elements are plain blocks there */
    long entity_refs_dropped;
};

void xw_init(xml_walk *w, lqa_doc *doc, const char *path, const lqa_parse_opts *opts, xml_elem_fn element);
/* Walks n (text or element) / all children of n. */
void xw_node(xml_walk *w, xmlNode *n);
void xw_children(xml_walk *w, xmlNode *n);
/* Whether the generic rules skip this element (script, style, nav chrome, ...). */
int xw_skipped(const xml_walk *w, const xmlNode *n);
/* Block-level element (paragraph breaks around it). */
int xw_is_block(const xmlNode *n);

/* Opens a section from a title node's text (with an optional label prefix such as "1.2"). */
int xw_section_from(xml_walk *w, int level, const xmlNode *title_node, const char *label);
/* Walks a sectioning element: opens the section at w->level+1 titled by title_node (with
 * the label before it, may be NULL), walks the other children, closes the section. */
void xw_sectioned(xml_walk *w, xmlNode *n, const xmlNode *title_node, const char *label);
/* The same at an explicit level (TEI numbers like "2.1" give the level). */
void xw_sectioned_at(xml_walk *w, xmlNode *n, const xmlNode *title_node, const char *label, int level);
/* Records a table: rows are tr/row elements, cells td/th/entry/cell (colspan/rowspan,
 * TEI cols/rows, CALS morerows and namest/nameend). Caption from caption_node (may be NULL). */
void xw_table(xml_walk *w, xmlNode *table, const xmlNode *caption_node);
/* Records a definition: the term nodes' text on its own line, then the definition body (the
 * children of def that are not among the terms). */
void xw_definition(xml_walk *w, xmlNode **terms, int n_terms, xmlNode *def);
/* Walks n as the abstract (its own paragraph(s)); the first abstract wins. */
void xw_abstract(xml_walk *w, xmlNode *n);
/* Walks children of n, treating each as a block (list of paragraphs). */
void xw_block(xml_walk *w, xmlNode *n);

/* Finishes the walk: closes sections, records numbered-heading passages, sets a title
 * fallback (the file name). */
void xw_finish(xml_walk *w);

/* ---- format walkers (each fills the doc from a parsed tree) -------------------------------- */
/* HTML/XHTML page into an existing walker (used by join and EPUB as well). */
void lqa_html_walk_page(xml_walk *w, xmlDoc *doc, int with_head);
int lqa_html_element(xml_walk *w, xmlNode *n);
void lqa_docbook_walk(xml_walk *w, xmlNode *root);
void lqa_jats_walk(xml_walk *w, xmlNode *root);
void lqa_tei_walk(xml_walk *w, xmlNode *root);
void lqa_mallard_walk(xml_walk *w, xmlNode *root);

#endif
