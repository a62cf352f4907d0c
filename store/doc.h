/* doc.h: a parsed document, the contract between the format parsers (which build it) and the
 * QA generators and the store (which read it).
 *
 * Every offset is a byte offset into doc->text (normalised UTF-8, NFC, paragraphs separated by
 * "\n\n", headings on their own line). A span [start, end) always lies on UTF-8 boundaries. The
 * structural items below (tables, definitions, numbered passages, abstract) are what the QA
 * generators turn into questions; parsers fill what their format carries. */
#ifndef LQA_DOC_H
#define LQA_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct lqa_span {
    size_t start, end;
} lqa_span;

typedef struct lqa_section {
    int level;       /* 1 = chapter/top heading, 2 = section, ... */
    int parent;      /* index of the enclosing section, -1 at top */
    char *title;     /* heading text */
    lqa_span span;   /* from the heading line to the start of the next section at level <= this */
} lqa_section;

typedef struct lqa_table {
    char *caption;   /* may be NULL */
    int n_rows, n_cols;  /* rows include the header row 0 */
    char **cells;        /* n_rows * n_cols strings (empty string when missing) */
    lqa_span *cell_spans;/* where each cell's text lies in doc->text ({0,0} when not found) */
    int section;         /* enclosing section index, -1 if none */
    int no_header;       /* 1: row 0 is data, not column names (no row/column questions) */
} lqa_table;

typedef struct lqa_definition {
    char *term;
    lqa_span term_span, def_span;  /* the definition text span */
    int section;
} lqa_definition;

/* A passage with its own label: a verse ("Genesis 1:3"), a numbered section ("4.2.1") or rule. */
typedef struct lqa_passage {
    char *label;
    lqa_span span;
} lqa_passage;

/* A QA pair that came with the input (imported QA sets). */
typedef struct lqa_qa_in {
    char *question;
    char **answers;   /* first is the main answer */
    int n_answers;
    lqa_span evidence;/* {0,0} when unknown (abstractive answers) */
    char *kind;       /* e.g. "squad", "longbench:narrativeqa", "longalpaca" */
} lqa_qa_in;

typedef struct lqa_doc {
    char *title;
    char *format;     /* "html", "docbook", "jats", "tei", "mallard", "mediawiki", "epub", "text",
                         "markdown", "alpaca", "longbench", "squad", "qasper" */
    char *path;       /* input path (for errors and provenance) */
    lqa_buf text;
    lqa_section *sections;     int n_sections;
    lqa_table *tables;         int n_tables;
    lqa_definition *defs;      int n_defs;
    lqa_passage *passages;     int n_passages;
    lqa_span abstract;         /* {0,0} when the format has none */
    lqa_qa_in *qas;            int n_qas;
} lqa_doc;

void lqa_doc_init(lqa_doc *d, const char *path, const char *format);
void lqa_doc_free(lqa_doc *d);

#endif
