/* docbuild.h: the document builder every input parser uses to produce an lqa_doc.
 *
 * The builder owns the text layout rules of doc.h so that all formats agree:
 *  - appended text is cleaned: invalid UTF-8 becomes U+FFFD, control characters are dropped,
 *    runs of whitespace (including NBSP) collapse to one space, and each chunk is put in
 *    Unicode NFC (utf8proc);
 *  - separators are lazy: lqa_db_para() asks for a paragraph break ("\n\n") and lqa_db_line()
 *    for a line break ("\n"); they are written only when more text follows, so the text never
 *    ends with or holds runs of blank lines;
 *  - headings sit on their own line; sections open and close by level and get their spans and
 *    parents set; tables render one line per row ("cell | cell | cell") with each cell's exact
 *    span; definitions, labelled passages and the abstract record spans of text written
 *    between a lqa_db_start() and a lqa_db_end().
 * All offsets are byte offsets into the final doc->text.
 *
 * Typical use:
 *     lqa_doc doc; lqa_doc_init(&doc, path, "html");
 *     lqa_docbuild b; lqa_db_init(&b, &doc);
 *     lqa_db_section(&b, 1, "Intro", 5);
 *     lqa_db_text(&b, "Some text", 9); lqa_db_para(&b);
 *     lqa_db_finish(&b);   (closes sections, frees the builder; doc stays)
 */
#ifndef LQA_DOCBUILD_H
#define LQA_DOCBUILD_H

#include <stddef.h>

#include "common/buf.h"
#include "store/doc.h"

#define LQA_DB_MAX_LEVELS 32

typedef struct lqa_db_table lqa_db_table; /* a table being recorded (private) */

typedef struct lqa_docbuild {
    lqa_doc *doc;
    int pending_space;  /* whitespace seen since the last written character */
    int pending_break;  /* newlines wanted before the next text: 0, 1 or 2 */
    int open[LQA_DB_MAX_LEVELS]; /* stack of open section indices (levels increase upward) */
    int n_open;
    int cap_sections, cap_tables, cap_defs, cap_passages;
    lqa_buf scratch;    /* cleaning buffer */
    lqa_db_table *table;
} lqa_docbuild;

void lqa_db_init(lqa_docbuild *b, lqa_doc *doc);
/* Closes every open section (and a table left open), trims the text, frees the builder's
 * own memory. The doc is complete afterwards. */
void lqa_db_finish(lqa_docbuild *b);

/* ---- text ---------------------------------------------------------------------------------- */
/* Appends inline text (any bytes: cleaned as described above). */
void lqa_db_text(lqa_docbuild *b, const char *s, size_t n);
void lqa_db_puts(lqa_docbuild *b, const char *s);
/* Preformatted text (code, <pre>, fenced blocks) within one line: spaces kept as they are (the
 * indentation and alignment of code), tabs expanded to 8-column stops; no '\n' in s (the
 * caller breaks lines with lqa_db_line). */
void lqa_db_verbatim(lqa_docbuild *b, const char *s, size_t n);
/* Inline whitespace (e.g. between two inline elements the source separates). */
void lqa_db_space(lqa_docbuild *b);
/* Requests a paragraph break / a line break before the next text. */
void lqa_db_para(lqa_docbuild *b);
void lqa_db_line(lqa_docbuild *b);

/* Cleans s into out exactly as lqa_db_text would write it on its own line (trimmed, spaces
 * collapsed, NFC, U+FFFD for invalid bytes). Returns out->data. */
const char *lqa_db_clean(const char *s, size_t n, lqa_buf *out);

/* Counts invalid UTF-8 sequences in s; when there are any and out is not NULL, out receives a
 * copy with each replaced by U+FFFD, and *first_bad the byte offset of the first. */
size_t lqa_utf8_repair(const char *s, size_t n, lqa_buf *out, size_t *first_bad);

/* Span capture: lqa_db_start() writes any pending separator and returns the offset where the
 * next text will begin; lqa_db_end() returns the offset just after the last text written. */
size_t lqa_db_start(lqa_docbuild *b);
size_t lqa_db_end(const lqa_docbuild *b);
/* The span of the text written since start (from lqa_db_start), leading separators that
 * block elements inside it wrote skipped: {first text byte, lqa_db_end()}. */
lqa_span lqa_db_span_from(const lqa_docbuild *b, size_t start);

/* ---- structure ------------------------------------------------------------------------------ */
/* Opens a section at level (1 = top): closes open sections at level >= this one, writes the
 * heading on its own line and a paragraph break after it. Returns the section index. An empty
 * title (after cleaning) opens no section and returns -1. */
int lqa_db_section(lqa_docbuild *b, int level, const char *title, size_t n);
/* Closes open sections at level >= level (1 closes all). */
void lqa_db_close_sections(lqa_docbuild *b, int level);
/* Index of the innermost open section, -1 when none. */
int lqa_db_current_section(const lqa_docbuild *b);
/* Level of the innermost open section, 0 when none. */
int lqa_db_current_level(const lqa_docbuild *b);

/* Tables: begin, then rows of cells, then end (which renders the table as its own block:
 * the caption line if any, then one line per row). Cells are cleaned; colspan repeats a cell
 * across columns (rendered once per row), rowspan carries it down into the next rows. */
void lqa_db_table_begin(lqa_docbuild *b, const char *caption, size_t caption_len);
/* Sets the caption of the open table when it has none yet (formats that give it later). */
void lqa_db_table_caption(lqa_docbuild *b, const char *caption, size_t n);
/* The open table's first row is data, not column names (HTML without th or thead, CALS without
 * thead): no row/column questions are asked about it. Tables have a header row by default. */
void lqa_db_table_no_header(lqa_docbuild *b);
void lqa_db_table_row(lqa_docbuild *b);
void lqa_db_table_cell(lqa_docbuild *b, const char *text, size_t n, int colspan, int rowspan);
/* Renders and records the table; a table with no non-empty cell records nothing. Returns the
 * table index or -1. */
int lqa_db_table_end(lqa_docbuild *b);

/* Records a definition: term (cleaned) with its span and the definition's span (from
 * lqa_db_start/lqa_db_end). Empty term or definition spans record nothing; returns index or -1. */
int lqa_db_definition(lqa_docbuild *b, const char *term, size_t term_len, lqa_span term_span, lqa_span def_span);
/* Records a labelled passage; an empty span records nothing. Returns index or -1. */
int lqa_db_passage(lqa_docbuild *b, const char *label, lqa_span span);
/* Sets the abstract span (the first non-empty one wins). */
void lqa_db_abstract(lqa_docbuild *b, lqa_span span);
/* Sets the title if none is set yet (cleaned). */
void lqa_db_title(lqa_docbuild *b, const char *title, size_t n);

/* Numbered headings ("9.4. String Functions", "Chapter 3. Tuning", "A.2 Limits") yield the
 * label ("9.4", "Chapter 3", "A.2") in label (size cap); returns 0 when the heading is not
 * numbered. */
int lqa_db_heading_label(const char *title, char *label, size_t cap);
/* For every section whose title is numbered, records a labelled passage whose span is the
 * section's first paragraph (nothing when the section starts straight with a subsection).
 * Call once, after lqa_db_finish (the builder struct stays readable after finish). */
void lqa_db_number_passages(lqa_docbuild *b);

#endif
