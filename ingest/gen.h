/* gen.h: the QA generators. Each turns the structure of a parsed document (lqa_doc) into
 * question-answer pairs whose answers are extractive (the text at the evidence span contains
 * the answer: checked by lqa_gen_emit before a pair is kept) and whose questions are
 * unambiguous within the document (a quoted passage occurs exactly once; a table key is unique
 * in its column). Everything is deterministic from (seed, document text). */
#ifndef LQA_GEN_H
#define LQA_GEN_H

#include <stdint.h>

#include "common/check.h"
#include "common/rng.h"
#include "store/doc.h"

/* Generator kinds; also the names accepted by --generators and stored in qa.kind. */
enum {
    LQA_GEN_SECTION = 1 << 0,      /* quoted passage -> heading of its section */
    LQA_GEN_TABLE = 1 << 1,        /* row key + column header -> cell */
    LQA_GEN_DEFINITION = 1 << 2,   /* term -> definition */
    LQA_GEN_REFERENCE = 1 << 3,    /* label ("Genesis 1:3", "4.2.1") -> passage */
    LQA_GEN_CONTINUATION = 1 << 4, /* quoted sentence -> following sentence */
    LQA_GEN_MULTIHOP = 1 << 5,     /* heading of the section after the one containing X */
    LQA_GEN_SUMMARY = 1 << 6,      /* abstract / description */
    LQA_GEN_SYNTHETIC = 1 << 7,    /* passkey and needle inserted into a copy of the document */
    LQA_GEN_IMPORTED = 1 << 8,     /* QA pairs that came with the input (QA sets) */
    /* long-range kinds (gen_far.c): the evidence lies far from what the question quotes */
    LQA_GEN_ORDER = 1 << 9,        /* which of two distant quoted passages comes first */
    LQA_GEN_XREF = 1 << 10,        /* "see Section 5.6" in a quoted passage -> that section's title */
    LQA_GEN_TERM = 1 << 11,        /* a term where it is used -> its definition, far away */
    LQA_GEN_COUNT = 1 << 12,       /* the last of the sections that mention a phrase */
    LQA_GEN_JOIN = 1 << 13,        /* a passage naming a table row -> a cell of that row */
    LQA_GEN_ALL = (1 << 14) - 1,
};

typedef struct lqa_gen_qa {
    char *question, *answer;
    char *answers_json; /* NULL: just [answer] */
    lqa_span evidence;  /* {0,0}: no span (abstractive imported answers) */
    lqa_span anchor;    /* what the question quotes or points at; {0,0}: nothing in the text */
    const char *kind;   /* static string, or the imported pair's kind (lives as long as the doc) */
    char *generator;
} lqa_gen_qa;

typedef struct lqa_gen_list {
    lqa_gen_qa *items;
    int n, cap;
} lqa_gen_list;

typedef struct lqa_gen_opts {
    uint64_t seed;
    unsigned mask;       /* LQA_GEN_* bits */
    int max_per_kind;    /* cap per generator per document (scaled down for short documents) */
} lqa_gen_opts;

/* Parses "section,table,..." or "all" into a mask; -1 with err naming the unknown name. */
int lqa_gen_parse_list(const char *list, unsigned *mask, lqa_err *err);
const char *lqa_gen_kind_name(unsigned bit);

/* Runs every enabled generator except synthetic on doc, appending to out. */
void lqa_gen_run(const lqa_doc *doc, const lqa_gen_opts *opts, lqa_gen_list *out);

/* The synthetic generator: a copy of doc's text with a passkey and a needle inserted at
 * seeded depths, and the pairs that ask for them (spans into the copy). Returns 0 when made,
 * -1 when the document is too short to carry one. */
typedef struct lqa_gen_synth {
    char *text;
    size_t len;
    lqa_span inserted[2]; /* the bytes of text that are not doc's, in text order: the copy is
                           * doc's text with these inserted (so the store keeps only these) */
    int n_inserted;
    lqa_gen_list qas;
} lqa_gen_synth;
int lqa_gen_synthetic(const lqa_doc *doc, const lqa_gen_opts *opts, lqa_gen_synth *out);
void lqa_gen_synth_free(lqa_gen_synth *s);

void lqa_gen_list_free(lqa_gen_list *l);

/* ---- helpers shared by the generators (gen.c) ---- */

/* Keeps the pair when the text at evidence contains answer (and question/answer are valid,
 * non-empty UTF-8); takes ownership of question and answer either way. Returns 1 if kept. */
int lqa_gen_emit(lqa_gen_list *out, const lqa_doc *doc, const char *text, size_t text_len, char *question,
                 char *answer, lqa_span evidence, const char *kind, const char *generator);
/* lqa_gen_emit for a pair whose question quotes or points at the text at `anchor`; a pair
 * whose (question, answer) the list already holds is not kept either. */
int lqa_gen_emit_at(lqa_gen_list *out, const lqa_doc *doc, const char *text, size_t text_len, char *question,
                    char *answer, lqa_span evidence, lqa_span anchor, const char *kind, const char *generator);
/* Bytes between the two spans (0 when they touch or overlap): how far the evidence lies from
 * what the question quotes. */
size_t lqa_gen_distance(lqa_span anchor, lqa_span evidence);
/* How far apart the long-range generators try to place anchor and evidence in this document:
 * 36,000 bytes (over 8k tokens at ~4 bytes a token) when the document allows, else a third
 * of it. */
size_t lqa_gen_far(const lqa_doc *doc);
/* Documents at least this long (bytes, ~16k tokens) get long-range questions first. */
#define LQA_GEN_LONG_DOC 64000
/* 1 for the kinds whose evidence sits next to the anchor by construction. */
int lqa_gen_kind_is_local(unsigned kind_bit);
/* The innermost section whose span holds pos, or -1. */
int lqa_gen_section_at(const lqa_doc *doc, size_t pos);
/* A passage label beside pos (verse "Genesis 44:18") starts with title: it names the section. */
int lqa_gen_label_reveals(const lqa_doc *doc, size_t pos, const char *title);
/* Section i's title occurs for no other section. */
int lqa_gen_title_unique(const lqa_doc *doc, int i);
/* Occurrences of needle in text, counting at most `limit`. */
int lqa_gen_count(const char *text, size_t text_len, const char *needle, size_t n, int limit);
/* A sentence inside [from, to) of text: the first one that starts at or after `at`, lies within
 * one paragraph and is between min and max bytes. Returns 0 and the span, or -1. */
int lqa_gen_sentence_at(const char *text, size_t from, size_t to, size_t at, size_t min, size_t max, lqa_span *out);
/* Where the sentence that follows `s` in the same paragraph lies; -1 if none. */
int lqa_gen_next_sentence(const char *text, size_t to, lqa_span s, size_t min, size_t max, lqa_span *out);
/* Trimmed copy of text[span] with runs of whitespace collapsed to one space. */
char *lqa_gen_clean(const char *text, lqa_span span);
/* Copy of at most max bytes of text[span], cut at a sentence or word end on a UTF-8 boundary. */
char *lqa_gen_prefix(const char *text, lqa_span span, size_t max);
/* The seeded RNG of one generator on one document. */
void lqa_gen_rng(lqa_rng *r, const lqa_doc *doc, const lqa_gen_opts *opts, unsigned kind_bit);
/* How many pairs a generator may make on this document (shorter documents carry fewer). */
int lqa_gen_cap(const lqa_doc *doc, const lqa_gen_opts *opts);
/* lqa_gen_cap for one kind: in long documents (LQA_GEN_LONG_DOC) the local kinds get half. */
int lqa_gen_cap_kind(const lqa_doc *doc, const lqa_gen_opts *opts, unsigned kind_bit);
/* Where the heading line of section i lies (title located at the section start), or -1. */
int lqa_gen_heading_span(const lqa_doc *doc, int i, lqa_span *out);
/* End of section i's own text (before its first subsection). */
size_t lqa_gen_section_body_end(const lqa_doc *doc, int i);

/* The generators (gen_*.c). */
void lqa_gen_section(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_table(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_definition(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_reference(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_continuation(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_multihop(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_summary(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_imported(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_order(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_xref(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_term(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_mentions(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);
void lqa_gen_join(const lqa_doc *doc, const lqa_gen_opts *o, lqa_gen_list *out);

#endif
