/* qaset.c: importers of existing QA sets (see qaset.h and docs/INGEST-QASETS.md). Each record
 * becomes a document built with the document builder (so its text follows doc.h's layout) that
 * carries the record's QA pairs in doc->qas. Extractive answers get an evidence span located in
 * the built text (so "the text at the span contains the answer" holds by construction);
 * abstractive answers carry {0,0}.
 *
 * Alpaca arrays are streamed: a small scanner finds each element's bytes (tracking strings,
 * escapes and nesting), and only that element is handed to jansson, so memory is bounded by one
 * element however long the array (LongAlpaca-12k: one 500 MB array of ~40 KB elements). */
#include "ingest/qaset.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "ingest/docbuild.h"
#include "ingest/input.h"

#define READ_CHUNK (256 * 1024)

/* Per-file counters reported as one warning at the end, and whether the sink asked to stop. */
typedef struct import_stats {
    long records, docs, qas, unanswerable, not_found, malformed;
    int stopped;
} import_stats;

/* JSON whitespace (strchr(" \t\r\n", c) would also match a NUL byte). */
static int json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* ---- sniffing --------------------------------------------------------------------------------- */

static int has_key(const char *head, size_t n, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    return memmem(head, n, pat, strlen(pat)) != NULL;
}

const char *lqa_qaset_sniff(const char *head, size_t n) {
    size_t i = 0;
    if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0) i = 3;
    while (i < n && json_space(head[i])) i++;
    if (i == n || (head[i] != '[' && head[i] != '{')) return NULL;
    if (head[i] == '[') return has_key(head, n, "instruction") && has_key(head, n, "output") ? "alpaca" : NULL;
    /* an object: Qasper (papers keyed by id), SQuAD ({"version", "data": [{"paragraphs"}]}), or
     * one line of JSONL (LongBench; Alpaca records one per line) */
    if (has_key(head, n, "full_text") && has_key(head, n, "qas")) return "qasper";
    if (has_key(head, n, "paragraphs") && has_key(head, n, "data")) return "squad";
    if (has_key(head, n, "context") && has_key(head, n, "question") && has_key(head, n, "answer_start"))
        return "squad"; /* the Hugging Face export: one question per line */
    if (has_key(head, n, "context") && has_key(head, n, "input")) return "longbench";
    if (has_key(head, n, "instruction") && has_key(head, n, "output")) return "alpaca";
    return NULL;
}

/* ---- small helpers ----------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t jstr_len(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_length(v) : 0;
}

static lqa_qa_in *add_qa(lqa_doc *doc, const char *question, const char *kind) {
    doc->qas = lqa_realloc(doc->qas, (size_t)(doc->n_qas + 1) * sizeof *doc->qas);
    lqa_qa_in *q = &doc->qas[doc->n_qas++];
    memset(q, 0, sizeof *q);
    q->question = lqa_strdup(question);
    q->kind = lqa_strdup(kind);
    return q;
}

static void add_answer(lqa_qa_in *q, const char *answer) {
    for (int i = 0; i < q->n_answers; i++)
        if (strcmp(q->answers[i], answer) == 0) return;
    q->answers = lqa_realloc(q->answers, (size_t)(q->n_answers + 1) * sizeof *q->answers);
    q->answers[q->n_answers++] = lqa_strdup(answer);
}

/* Appends free text: blank lines separate paragraphs; single newlines are inner whitespace. */
static void append_paragraphs(lqa_docbuild *b, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        /* a paragraph ends at a line that holds only whitespace */
        for (;;) {
            const char *nl = memchr(s + j, '\n', n - j);
            if (!nl) {
                j = n;
                break;
            }
            size_t k = (size_t)(nl - s) + 1;
            while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
            if (k < n && s[k] == '\n') {
                j = (size_t)(nl - s);
                break;
            }
            j = k;
            if (j >= n) break;
        }
        lqa_db_text(b, s + i, j - i);
        lqa_db_para(b);
        i = j;
        while (i < n && json_space(s[i])) i++;
    }
}

/* First line of s, cleaned, up to ~100 bytes (on a UTF-8 boundary): a title for untitled records. */
static void title_from_text(lqa_docbuild *b, const char *s, size_t n) {
    while (n > 0 && json_space(*s)) s++, n--;
    const char *nl = memchr(s, '\n', n);
    size_t len = nl ? (size_t)(nl - s) : n;
    if (len > 100) {
        len = 100;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80) len--;
    }
    if (len > 0) lqa_db_title(b, s, len);
}

/* Where the cleaned answer occurs in doc->text within [from, to), the occurrence nearest to
 * `near`; returns 0 and sets *span, or -1 when it does not occur. */
static int locate(const lqa_doc *doc, const char *answer, size_t from, size_t to, size_t near, lqa_span *span,
                  lqa_buf *scratch) {
    lqa_buf_clear(scratch);
    lqa_db_clean(answer, strlen(answer), scratch);
    size_t alen = scratch->len;
    if (alen == 0 || to > doc->text.len || from >= to) return -1;
    const char *t = doc->text.data;
    size_t best = (size_t)-1, best_dist = (size_t)-1;
    for (const char *p = t + from; p + alen <= t + to;) {
        p = memmem(p, (size_t)(t + to - p), scratch->data, alen);
        if (!p) break;
        size_t pos = (size_t)(p - t);
        size_t dist = pos > near ? pos - near : near - pos;
        if (dist < best_dist) best = pos, best_dist = dist;
        if (pos > near) break; /* later ones are farther */
        p++;
    }
    if (best == (size_t)-1) return -1;
    span->start = best;
    span->end = best + alen;
    return 0;
}

/* Hands a finished document to the sink (which may take it) and frees it. Once the sink asked
 * to stop, later documents (a LongBench or SQuAD article still pending) are dropped. */
static int hand_on(lqa_doc *doc, lqa_doc_sink sink, void *ctx, import_stats *st) {
    if (!st->stopped) {
        st->docs++;
        st->qas += doc->n_qas;
        st->stopped = sink(doc, ctx) != 0;
    }
    lqa_doc_free(doc);
    return st->stopped;
}

static void report(const char *path, const char *fmt, const lqa_parse_opts *opts, const import_stats *st) {
    if (st->unanswerable || st->not_found || st->malformed)
        lqa_parse_warn(opts, "%s: %s: %ld records -> %ld documents, %ld QA pairs; skipped %ld unanswerable, %ld malformed "
                    "records; %ld extractive answers not found in their context",
              path, fmt, st->records, st->docs, st->qas, st->unanswerable, st->malformed, st->not_found);
}

/* ---- streaming a JSON array ----------------------------------------------------------------------- */

enum scan_state { BEFORE_ARRAY, BEFORE_ELEM, IN_ELEM, AFTER_ELEM, AFTER_ARRAY };

typedef struct array_scan {
    enum scan_state state;
    lqa_buf elem;        /* bytes of the element being scanned (completed across chunks) */
    size_t elem_seen;    /* bytes of the current element seen so far */
    int depth, in_string, escape;
    long line, elem_line, n_elems;
    int after_comma;
} array_scan;

static int scan_syntax_error(const char *path, const array_scan *sc, char c, const char *expected, lqa_err *err) {
    return lqa_err_set(err, "%s:%ld: found '%c' after %ld complete array elements, expected %s", path, sc->line, c,
                       sc->n_elems, expected);
}

/* Steps the element scanner over one byte: 0 = inside the element, 1 = the element ends with
 * this byte (a string or container closed), 2 = this byte ends a scalar and is not part of it. */
static int scan_elem_step(array_scan *sc, char c) {
    if (sc->in_string) {
        sc->elem_seen++;
        if (sc->escape) sc->escape = 0;
        else if (c == '\\') sc->escape = 1;
        else if (c == '"') {
            sc->in_string = 0;
            if (sc->depth == 0) return 1;
        }
        return 0;
    }
    if (sc->depth == 0 && sc->elem_seen > 0 && (c == ',' || c == ']' || json_space(c))) return 2;
    sc->elem_seen++;
    if (c == '"') sc->in_string = 1;
    else if (c == '{' || c == '[') sc->depth++;
    else if (c == '}' || c == ']') {
        if (--sc->depth == 0) return 1;
    }
    return 0;
}

static int emit_elem(const char *path, array_scan *sc, lqa_json_element_fn fn, void *ctx, lqa_err *err) {
    sc->n_elems++;
    sc->state = AFTER_ELEM;
    int rc = fn(sc->elem.data, sc->elem.len, sc->elem_line, ctx, err);
    lqa_buf_clear(&sc->elem);
    return rc;
}

/* Appends the element bytes p[from, to) (copied in runs, not byte by byte: the scanner's hot path). */
static int keep_elem_bytes(const char *path, array_scan *sc, const char *p, size_t from, size_t to, lqa_err *err) {
    lqa_buf_append(&sc->elem, p + from, to - from);
    if (sc->elem.len > LQA_QASET_MAX_ELEMENT)
        return lqa_err_set(err, "%s:%ld: array element larger than %zu bytes, refusing", path, sc->elem_line,
                           LQA_QASET_MAX_ELEMENT);
    return 0;
}

/* Scans one chunk; returns 0 to go on, 1 when fn asked to stop, -1 on error. */
static int scan_chunk(const char *path, array_scan *sc, const char *p, size_t n, lqa_json_element_fn fn, void *ctx,
                      lqa_err *err) {
    size_t run = 0; /* where the current element's bytes begin in this chunk */
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (sc->state == IN_ELEM) {
            int r = scan_elem_step(sc, c);
            if (r == 0) {
                if (c == '\n') sc->line++;
                continue;
            }
            if (keep_elem_bytes(path, sc, p, run, r == 1 ? i + 1 : i, err) < 0) return -1;
            int rc = emit_elem(path, sc, fn, ctx, err);
            if (rc != 0) return rc;
            if (r == 1) continue;
            /* r == 2: c is the delimiter after a scalar; scan it in AFTER_ELEM below */
        }
        if (c == '\n') sc->line++;
        if (json_space(c)) continue;
        switch (sc->state) {
        case BEFORE_ARRAY:
            if (c != '[') return scan_syntax_error(path, sc, c, "'[' (a JSON array of records)", err);
            sc->state = BEFORE_ELEM;
            break;
        case BEFORE_ELEM:
            if (c == ']' && !sc->after_comma) {
                sc->state = AFTER_ARRAY;
                break;
            }
            if (c == ']' || c == ',') return scan_syntax_error(path, sc, c, "an array element", err);
            sc->state = IN_ELEM;
            sc->elem_line = sc->line;
            sc->depth = sc->in_string = sc->escape = 0;
            sc->elem_seen = 0;
            run = i;
            scan_elem_step(sc, c); /* an opening byte never ends an element */
            break;
        case AFTER_ELEM:
            if (c == ',') sc->state = BEFORE_ELEM, sc->after_comma = 1;
            else if (c == ']') sc->state = AFTER_ARRAY;
            else return scan_syntax_error(path, sc, c, "',' or ']' after an array element", err);
            break;
        case AFTER_ARRAY:
            return scan_syntax_error(path, sc, c, "the end of the file after the array's closing ']'", err);
        case IN_ELEM: break;
        }
    }
    if (sc->state == IN_ELEM && keep_elem_bytes(path, sc, p, run, n, err) < 0) return -1;
    return 0;
}

static int scan_at_eof(const char *path, const array_scan *sc, lqa_err *err) {
    switch (sc->state) {
    case AFTER_ARRAY: return 0;
    case BEFORE_ARRAY: return lqa_err_set(err, "%s:%ld: no JSON array found, expected '['", path, sc->line);
    case IN_ELEM:
        if (sc->depth == 0 && !sc->in_string && sc->elem_seen > 0) break; /* a trailing scalar */
        return lqa_err_set(err, "%s:%ld: JSON array cut in the middle: element %ld, which starts at line %ld, is "
                                "incomplete (%ld complete element%s kept), expected the rest of the element and "
                                "the closing ']'",
                           path, sc->line, sc->n_elems + 1, sc->elem_line, sc->n_elems,
                           sc->n_elems == 1 ? " was" : "s were");
    default: break;
    }
    return lqa_err_set(err, "%s:%ld: JSON array cut in the middle: the file ends after %ld complete elements, "
                            "expected ',' and more elements or the closing ']'",
                       path, sc->line, sc->n_elems);
}

int lqa_json_array_stream(const char *path, const lqa_input_pin *pin, lqa_json_element_fn fn, void *ctx,
                          lqa_err *err) {
    lqa_input *in = lqa_input_open_pinned(path, pin, err);
    if (!in) return -1;
    array_scan sc = {.state = BEFORE_ARRAY, .line = 1};
    char *chunk = lqa_malloc(READ_CHUNK);
    int rc = 0, first = 1;
    for (;;) {
        long got = lqa_input_read(in, chunk, READ_CHUNK, err);
        if (got < 0) {
            rc = lqa_err_prefix(err, "after %ld complete array elements: ", sc.n_elems);
            break;
        }
        if (got == 0) {
            rc = scan_at_eof(path, &sc, err);
            break;
        }
        size_t skip = first && got >= 3 && memcmp(chunk, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        first = 0;
        rc = scan_chunk(path, &sc, chunk + skip, (size_t)got - skip, fn, ctx, err);
        if (rc != 0) break;
    }
    if (rc == 1) rc = 0;
    free(chunk);
    lqa_buf_free(&sc.elem);
    lqa_input_close(in);
    return rc;
}

/* ---- streaming JSON lines ------------------------------------------------------------------------- */

/* Calls fn with each non-blank line (without its newline). A last line without a newline is
 * still a line; fn's parse error then names it. */
static int jsonl_stream(const char *path, const lqa_input_pin *pin, lqa_json_element_fn fn, void *ctx, lqa_err *err) {
    lqa_input *in = lqa_input_open_pinned(path, pin, err);
    if (!in) return -1;
    char *chunk = lqa_malloc(READ_CHUNK);
    lqa_buf line = {0};
    long lineno = 1;
    int rc = 0;
    for (;;) {
        long got = lqa_input_read(in, chunk, READ_CHUNK, err);
        if (got < 0) {
            rc = lqa_err_prefix(err, "at line %ld: ", lineno);
            break;
        }
        const char *p = chunk, *end = chunk + got;
        while (rc == 0 && p < end) {
            const char *nl = got ? memchr(p, '\n', (size_t)(end - p)) : NULL;
            lqa_buf_append(&line, p, nl ? (size_t)(nl - p) : (size_t)(end - p));
            if (line.len > LQA_QASET_MAX_ELEMENT)
                rc = lqa_err_set(err, "%s:%ld: line longer than %zu bytes, refusing", path, lineno,
                                 LQA_QASET_MAX_ELEMENT);
            if (!nl) break;
            p = nl + 1;
            if (rc == 0 && strspn(line.data, " \t\r") < line.len) rc = fn(line.data, line.len, lineno, ctx, err);
            lqa_buf_clear(&line);
            lineno++;
        }
        if (rc != 0) break;
        if (got == 0) {
            if (strspn(line.data ? line.data : "", " \t\r") < line.len) rc = fn(line.data, line.len, lineno, ctx, err);
            break;
        }
    }
    if (rc == 1) rc = 0;
    free(chunk);
    lqa_buf_free(&line);
    lqa_input_close(in);
    return rc;
}

/* Parses one element with jansson; errors name the file line (element line + inner line - 1). */
static json_t *parse_element(const char *path, const char *json, size_t len, long line, lqa_err *err) {
    json_error_t je;
    json_t *j = json_loadb(json, len, 0, &je);
    if (!j) lqa_err_set(err, "%s:%ld: invalid JSON: %s", path, line + je.line - 1, je.text);
    return j;
}

/* ---- Alpaca / LongAlpaca ---------------------------------------------------------------------------- */

typedef struct record_ctx {
    const char *path;
    const lqa_parse_opts *opts;
    const lqa_input_pin *pin; /* opts->pin */
    lqa_doc_sink sink;
    void *sink_ctx;
    import_stats st;
    lqa_buf scratch;
    /* LongBench: the document being filled while consecutive lines share its context */
    lqa_doc pending;
    int has_pending;
    uint64_t pending_hash;
    size_t pending_ctx_len;
    /* SQuAD as JSON lines: the article being gathered (official layout) */
    json_t *article;
} record_ctx;

/* LongAlpaca instructions embed the document: "... The paper begins. \n<text>\n Now the paper
 * ends. \n<question>" (also "material", "book"). Finds the three parts; returns 0 when the
 * markers are absent. */
static int split_longalpaca(const char *s, size_t n, size_t *ctx_start, size_t *ctx_end, size_t *q_start) {
    static const char *const nouns[] = {"paper", "material", "book", "document", "article", NULL};
    for (int k = 0; nouns[k]; k++) {
        char begin[64], end[64];
        snprintf(begin, sizeof begin, "The %s begins.", nouns[k]);
        snprintf(end, sizeof end, "Now the %s ends.", nouns[k]);
        const char *b = memmem(s, n < 2000 ? n : 2000, begin, strlen(begin));
        if (!b) continue;
        const char *e = NULL;
        for (const char *p = b; (p = memmem(p, (size_t)(s + n - p), end, strlen(end))); p++) e = p;
        if (!e) continue;
        *ctx_start = (size_t)(b - s) + strlen(begin);
        *ctx_end = (size_t)(e - s);
        *q_start = *ctx_end + strlen(end);
        return 1;
    }
    return 0;
}

static int alpaca_record(const char *json, size_t len, long line, void *vctx, lqa_err *err) {
    record_ctx *rc = vctx;
    rc->st.records++;
    json_t *o = parse_element(rc->path, json, len, line, err);
    if (!o) return -1;
    const char *instr = jstr(o, "instruction"), *input = jstr(o, "input"), *output = jstr(o, "output");
    if (!json_is_object(o) || !instr || !output) {
        lqa_parse_warn(rc->opts, "%s:%ld: record without string fields \"instruction\" and \"output\", skipped", rc->path, line);
        rc->st.malformed++;
        json_decref(o);
        return 0;
    }
    size_t ilen = jstr_len(o, "instruction"), inlen = jstr_len(o, "input");
    lqa_doc doc;
    lqa_doc_init(&doc, rc->path, "alpaca");
    lqa_docbuild b;
    lqa_db_init(&b, &doc);
    size_t cs, ce, qs;
    const char *kind = "alpaca";
    lqa_buf question = {0};
    if (split_longalpaca(instr, ilen, &cs, &ce, &qs)) {
        kind = "longalpaca";
        title_from_text(&b, instr + cs, ce - cs);
        append_paragraphs(&b, instr + cs, ce - cs);
        lqa_db_clean(instr + qs, ilen - qs, &question);
        if (inlen) lqa_buf_printf(&question, "%s%s", question.len ? " " : "", input);
    } else if (inlen) {
        title_from_text(&b, input, inlen);
        append_paragraphs(&b, input, inlen);
        lqa_db_clean(instr, ilen, &question);
    } else {
        title_from_text(&b, instr, ilen);
        append_paragraphs(&b, instr, ilen);
        lqa_db_clean(instr, ilen, &question);
    }
    lqa_db_finish(&b);
    int ret = 0;
    if (doc.text.len == 0 || question.len == 0) {
        lqa_parse_warn(rc->opts, "%s:%ld: record with an empty context or question, skipped", rc->path, line);
        rc->st.malformed++;
        lqa_doc_free(&doc);
    } else {
        lqa_qa_in *q = add_qa(&doc, question.data, kind);
        add_answer(q, output);
        ret = hand_on(&doc, rc->sink, rc->sink_ctx, &rc->st);
    }
    lqa_buf_free(&question);
    json_decref(o);
    return ret ? 1 : 0;
}

static int parse_alpaca(const char *path, const char *first, record_ctx *rc, lqa_err *err) {
    /* LongAlpaca and Alpaca ship as one array; some copies are JSON lines */
    if (*first == '[') return lqa_json_array_stream(path, rc->pin, alpaca_record, rc, err);
    return jsonl_stream(path, rc->pin, alpaca_record, rc, err);
}

/* ---- LongBench JSONL ------------------------------------------------------------------------------- */

/* LongBench tasks with an empty "input" carry their instruction in the benchmark's prompt. */
static const char *longbench_default_question(const char *dataset) {
    static const struct { const char *name, *question; } table[] = {
        {"gov_report", "Write a one-page summary of the report."},
        {"multi_news", "Write a one-page summary of all the news."},
        {"vcsum", "Write a one-page summary of the meeting."},
        {"qmsum", "Write a summary of the meeting transcript."},
        {"passage_count", "How many unique paragraphs are there after removing duplicates?"},
        {"lcc", "Complete the next line of code."},
        {NULL, NULL}};
    for (int i = 0; dataset && table[i].name; i++)
        if (strncmp(dataset, table[i].name, strlen(table[i].name)) == 0) return table[i].question;
    return "Complete the task on the text.";
}

static int flush_pending(record_ctx *rc) {
    if (!rc->has_pending) return 0;
    rc->has_pending = 0;
    return hand_on(&rc->pending, rc->sink, rc->sink_ctx, &rc->st);
}

static void start_longbench_doc(record_ctx *rc, const char *context, size_t clen, const char *dataset,
                                const char *id) {
    lqa_doc_init(&rc->pending, rc->path, "longbench");
    lqa_docbuild b;
    lqa_db_init(&b, &rc->pending);
    char title[256];
    snprintf(title, sizeof title, "LongBench %s %s", dataset ? dataset : "", id ? id : "");
    lqa_db_title(&b, title, strlen(title));
    append_paragraphs(&b, context, clen);
    lqa_db_finish(&b);
    rc->has_pending = 1;
    rc->pending_hash = lqa_xxh64(context, clen, 0);
    rc->pending_ctx_len = clen;
}

/* The main answer of an extractive pair becomes the document's own text at the span, so the
 * answer and its evidence agree byte for byte (the source's spacing may differ). */
static void answer_from_span(const lqa_doc *doc, lqa_qa_in *q) {
    free(q->answers[0]);
    q->answers[0] = lqa_strndup(doc->text.data + q->evidence.start, q->evidence.end - q->evidence.start);
}

/* Locates the first answer that occurs in the text (answers shorter than 4 bytes, such as
 * multiple-choice letters, would match anywhere: no span for them). */
static void locate_any(const lqa_doc *doc, lqa_qa_in *q, record_ctx *rc) {
    for (int i = 0; i < q->n_answers; i++) {
        if (strlen(q->answers[i]) < 4) continue;
        if (locate(doc, q->answers[i], 0, doc->text.len, 0, &q->evidence, &rc->scratch) == 0) {
            if (i > 0) { /* the answer with a span becomes the main one */
                char *t = q->answers[0];
                q->answers[0] = q->answers[i];
                q->answers[i] = t;
            }
            answer_from_span(doc, q);
            return;
        }
    }
}

static int longbench_record(const char *json, size_t len, long line, void *vctx, lqa_err *err) {
    record_ctx *rc = vctx;
    rc->st.records++;
    json_t *o = parse_element(rc->path, json, len, line, err);
    if (!o) return -1;
    const char *context = jstr(o, "context"), *input = jstr(o, "input"), *dataset = jstr(o, "dataset");
    const json_t *answers = json_object_get(o, "answers");
    if (!json_is_object(o) || !context || !json_is_array(answers) || json_array_size(answers) == 0) {
        lqa_parse_warn(rc->opts, "%s:%ld: record without \"context\" and a non-empty \"answers\" array, skipped", rc->path,
              line);
        rc->st.malformed++;
        json_decref(o);
        return 0;
    }
    size_t clen = jstr_len(o, "context");
    int ret = 0;
    /* consecutive records over the same context (several questions on one document) share it */
    if (rc->has_pending && (rc->pending_ctx_len != clen || rc->pending_hash != lqa_xxh64(context, clen, 0)))
        ret = flush_pending(rc);
    if (!rc->has_pending) start_longbench_doc(rc, context, clen, dataset, jstr(o, "_id"));
    char kind[128];
    snprintf(kind, sizeof kind, "longbench:%s", dataset ? dataset : "unknown");
    lqa_buf question = {0};
    if (input && *input) lqa_db_clean(input, jstr_len(o, "input"), &question);
    else lqa_buf_puts(&question, longbench_default_question(dataset));
    lqa_qa_in *q = add_qa(&rc->pending, question.data, kind);
    lqa_buf_free(&question);
    size_t i;
    json_t *a;
    json_array_foreach(answers, i, a) if (json_is_string(a) && json_string_length(a)) add_answer(q, json_string_value(a));
    if (q->n_answers == 0) add_answer(q, "");
    locate_any(&rc->pending, q, rc);
    json_decref(o);
    return ret ? 1 : 0;
}

/* ---- SQuAD v2 ---------------------------------------------------------------------------------------- */

/* Byte length of the first `chars` code points of s (SQuAD offsets count code points). */
static size_t utf8_prefix_bytes(const char *s, size_t len, long long chars) {
    size_t i = 0;
    for (long long c = 0; c < chars && i < len; c++) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80) i++;
    }
    return i;
}

static void squad_qas(record_ctx *rc, lqa_doc *doc, const json_t *qas, const char *context, size_t clen,
                      lqa_span para) {
    size_t i;
    json_t *qa;
    json_array_foreach(qas, i, qa) {
        rc->st.records++;
        const char *question = jstr(qa, "question");
        const json_t *answers = json_object_get(qa, "answers");
        if (json_is_true(json_object_get(qa, "is_impossible")) || !json_is_array(answers) ||
            json_array_size(answers) == 0 || !question) {
            rc->st.unanswerable += question != NULL;
            rc->st.malformed += question == NULL;
            continue;
        }
        const json_t *first = json_array_get(answers, 0);
        const char *text = jstr(first, "text");
        long long start = json_integer_value(json_object_get(first, "answer_start"));
        if (!text || start < 0) {
            rc->st.malformed++;
            continue;
        }
        /* estimate where answer_start lands in the cleaned paragraph, then take the nearest match */
        lqa_buf_clear(&rc->scratch);
        lqa_db_clean(context, utf8_prefix_bytes(context, clen, start), &rc->scratch);
        size_t near = para.start + rc->scratch.len;
        lqa_span span;
        if (locate(doc, text, para.start, para.end, near, &span, &rc->scratch) < 0) {
            rc->st.not_found++;
            continue;
        }
        lqa_qa_in *q = add_qa(doc, question, "squad");
        q->evidence = span;
        /* the main answer is the located text as it stands in the document */
        char *main = lqa_strndup(doc->text.data + span.start, span.end - span.start);
        add_answer(q, main);
        free(main);
        size_t k;
        json_t *a;
        json_array_foreach(answers, k, a) if (jstr(a, "text")) add_answer(q, jstr(a, "text"));
    }
}

static int squad_article(record_ctx *rc, const json_t *article) {
    const json_t *paras = json_object_get(article, "paragraphs");
    if (!json_is_array(paras)) {
        rc->st.malformed++;
        return 0;
    }
    lqa_doc doc;
    lqa_doc_init(&doc, rc->path, "squad");
    lqa_docbuild b;
    lqa_db_init(&b, &doc);
    const char *title = jstr(article, "title");
    if (title) {
        char *t = lqa_strdup(title); /* SQuAD titles are Wikipedia page names: "Super_Bowl_50" */
        for (char *p = t; *p; p++)
            if (*p == '_') *p = ' ';
        lqa_db_title(&b, t, strlen(t));
        lqa_db_section(&b, 1, t, strlen(t));
        free(t);
    }
    /* spans are located after the text is complete: the builder may move the text buffer */
    size_t n = json_array_size(paras);
    lqa_span *spans = lqa_calloc(n ? n : 1, sizeof *spans);
    for (size_t i = 0; i < n; i++) {
        const char *ctx = jstr(json_array_get(paras, i), "context");
        if (!ctx) continue;
        spans[i].start = lqa_db_start(&b);
        lqa_db_text(&b, ctx, strlen(ctx));
        spans[i].end = lqa_db_end(&b);
        lqa_db_para(&b);
    }
    lqa_db_finish(&b);
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(paras, i);
        const char *ctx = jstr(p, "context");
        if (ctx) squad_qas(rc, &doc, json_object_get(p, "qas"), ctx, jstr_len(p, "context"), spans[i]);
    }
    free(spans);
    if (doc.text.len == 0) {
        lqa_doc_free(&doc);
        return 0;
    }
    return hand_on(&doc, rc->sink, rc->sink_ctx, &rc->st);
}

static int parse_squad(const json_t *root, record_ctx *rc, lqa_err *err) {
    const json_t *data = json_object_get(root, "data");
    if (!json_is_array(data))
        return lqa_err_set(err, "%s:1: no \"data\" array, expected SQuAD JSON {\"version\", \"data\": [articles]}",
                           rc->path);
    size_t i;
    json_t *article;
    json_array_foreach(data, i, article) if (squad_article(rc, article)) break;
    return 0;
}

/* The Hugging Face export of SQuAD is one question per line: {"id", "title", "context",
 * "question", "answers": {"text": [...], "answer_start": [...]}}. Consecutive lines of one title
 * are gathered into the official article layout (consecutive equal contexts into one paragraph)
 * and imported like the official file: one document per article. */
static int is_squad_flat(const json_t *o) {
    return json_is_object(o) && jstr(o, "context") && jstr(o, "question") && json_object_get(o, "answers");
}

static int flush_squad_article(record_ctx *rc) {
    if (!rc->article) return 0;
    int ret = squad_article(rc, rc->article);
    json_decref(rc->article);
    rc->article = NULL;
    return ret;
}

static json_t *squad_flat_qa(const json_t *rec) {
    const json_t *ans = json_object_get(rec, "answers");
    const json_t *texts = json_object_get(ans, "text"), *starts = json_object_get(ans, "answer_start");
    json_t *answers = json_array();
    for (size_t i = 0; i < json_array_size(texts) && i < json_array_size(starts); i++)
        json_array_append_new(answers, json_pack("{s:O, s:O}", "text", json_array_get(texts, i), "answer_start",
                                                 json_array_get(starts, i)));
    return json_pack("{s:s, s:o, s:b}", "question", jstr(rec, "question"), "answers", answers, "is_impossible",
                     json_array_size(answers) == 0);
}

static int squad_flat_line(const char *json, size_t len, long line, void *vctx, lqa_err *err) {
    record_ctx *rc = vctx;
    json_t *o = parse_element(rc->path, json, len, line, err);
    if (!o) return -1;
    int ret = 0;
    if (!is_squad_flat(o)) {
        lqa_parse_warn(rc->opts, "%s:%ld: line without \"context\", \"question\" and \"answers\", skipped", rc->path, line);
        rc->st.malformed++;
        json_decref(o);
        return 0;
    }
    const char *title = jstr(o, "title") ? jstr(o, "title") : "";
    if (rc->article && strcmp(json_string_value(json_object_get(rc->article, "title")), title) != 0)
        ret = flush_squad_article(rc);
    if (!rc->article) rc->article = json_pack("{s:s, s:[]}", "title", title, "paragraphs");
    json_t *paras = json_object_get(rc->article, "paragraphs");
    json_t *last = json_array_get(paras, json_array_size(paras) - 1);
    if (!last || strcmp(jstr(last, "context"), jstr(o, "context")) != 0) {
        last = json_pack("{s:s, s:[]}", "context", jstr(o, "context"), "qas");
        json_array_append_new(paras, last);
    }
    json_array_append_new(json_object_get(last, "qas"), squad_flat_qa(o));
    json_decref(o);
    return ret ? 1 : 0;
}

/* ---- Qasper ------------------------------------------------------------------------------------------- */

/* Section names nest with " ::: " ("Experiments ::: Datasets"): level = parts, title = last. */
static void qasper_section(lqa_docbuild *b, const char *name) {
    int level = 1;
    const char *last = name;
    for (const char *p = name; (p = strstr(p, ":::")); p += 3) level++, last = p + 3;
    while (*last == ' ') last++;
    if (level > LQA_DB_MAX_LEVELS - 1) level = LQA_DB_MAX_LEVELS - 1;
    lqa_db_section(b, level, last, strlen(last));
}

/* Where an extractive answer lies: inside an evidence paragraph if possible, else anywhere. */
static int qasper_locate(record_ctx *rc, const lqa_doc *doc, const char *answer, const json_t *evidence,
                         lqa_span *span) {
    size_t i;
    json_t *ev;
    json_array_foreach(evidence, i, ev) {
        if (!json_is_string(ev)) continue;
        lqa_span para;
        if (locate(doc, json_string_value(ev), 0, doc->text.len, 0, &para, &rc->scratch) == 0 &&
            locate(doc, answer, para.start, para.end, para.start, span, &rc->scratch) == 0)
            return 0;
    }
    return locate(doc, answer, 0, doc->text.len, 0, span, &rc->scratch);
}

/* One question with its annotations (the inner "answer" objects, in annotator order). */
static void qasper_qa(record_ctx *rc, lqa_doc *doc, const char *question, const json_t *annotations) {
    rc->st.records++;
    const json_t *ans = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(annotations, i, a) {
        if (json_is_object(a) && !json_is_true(json_object_get(a, "unanswerable"))) {
            ans = a;
            break;
        }
    }
    if (!question) {
        rc->st.malformed++;
        return;
    }
    if (!ans) {
        rc->st.unanswerable++;
        return;
    }
    const json_t *spans = json_object_get(ans, "extractive_spans"), *yes_no = json_object_get(ans, "yes_no");
    const char *free_form = jstr(ans, "free_form_answer");
    if (json_is_array(spans) && json_array_size(spans) > 0) {
        lqa_qa_in *q = add_qa(doc, question, "qasper:extractive");
        json_array_foreach(spans, i, a) if (json_is_string(a)) add_answer(q, json_string_value(a));
        if (q->n_answers == 0) add_answer(q, "");
        if (qasper_locate(rc, doc, q->answers[0], json_object_get(ans, "evidence"), &q->evidence)) rc->st.not_found++;
        else answer_from_span(doc, q);
    } else if (json_is_boolean(yes_no)) {
        add_answer(add_qa(doc, question, "qasper:yes_no"), json_is_true(yes_no) ? "Yes" : "No");
    } else if (free_form && *free_form) {
        add_answer(add_qa(doc, question, "qasper:free_form"), free_form);
    } else {
        rc->st.malformed++;
    }
}

/* Two layouts exist: the release JSON (full_text = [{section_name, paragraphs}], qas =
 * [{question, answers: [{answer: {...}}]}]) and the Hugging Face one, column-wise (full_text =
 * {section_name: [...], paragraphs: [[...]]}, qas = {question: [...], answers: [{answer: [...]}]}).
 * These accessors read section i / question i from either. */
static size_t qasper_count(const json_t *x, const char *column) {
    return json_is_array(x) ? json_array_size(x) : json_array_size(json_object_get(x, column));
}

static const char *qasper_section_name(const json_t *full_text, size_t i) {
    if (json_is_array(full_text)) return jstr(json_array_get(full_text, i), "section_name");
    const json_t *v = json_array_get(json_object_get(full_text, "section_name"), i);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *qasper_paragraphs(const json_t *full_text, size_t i) {
    if (json_is_array(full_text)) return json_object_get(json_array_get(full_text, i), "paragraphs");
    return json_array_get(json_object_get(full_text, "paragraphs"), i);
}

/* The annotations of question i as an array of inner answer objects (a new reference). */
static json_t *qasper_annotations(const json_t *qas, size_t i, const char **question) {
    json_t *out = json_array();
    if (json_is_array(qas)) {
        const json_t *qa = json_array_get(qas, i);
        *question = jstr(qa, "question");
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(qa, "answers"), k, a) json_array_append(out, json_object_get(a, "answer"));
        return out;
    }
    const json_t *qv = json_array_get(json_object_get(qas, "question"), i);
    *question = json_is_string(qv) ? json_string_value(qv) : NULL;
    const json_t *inner = json_object_get(json_array_get(json_object_get(qas, "answers"), i), "answer");
    if (json_is_array(inner)) json_array_extend(out, (json_t *)inner);
    return out;
}

static void qasper_body(lqa_docbuild *b, const json_t *paper) {
    const char *abstract = jstr(paper, "abstract");
    if (abstract && *abstract) {
        lqa_db_section(b, 1, "Abstract", 8);
        lqa_span sp = {lqa_db_start(b), 0};
        lqa_db_text(b, abstract, strlen(abstract));
        sp.end = lqa_db_end(b);
        lqa_db_abstract(b, sp);
        lqa_db_para(b);
    }
    const json_t *full_text = json_object_get(paper, "full_text");
    size_t n = qasper_count(full_text, "section_name");
    for (size_t i = 0; i < n; i++) {
        const char *name = qasper_section_name(full_text, i);
        if (name && *name) qasper_section(b, name);
        size_t k;
        json_t *p;
        json_array_foreach(qasper_paragraphs(full_text, i), k, p) if (json_is_string(p)) {
            lqa_db_text(b, json_string_value(p), json_string_length(p));
            lqa_db_para(b);
        }
    }
}

static int qasper_paper(record_ctx *rc, const char *id, const json_t *paper) {
    lqa_doc doc;
    lqa_doc_init(&doc, rc->path, "qasper");
    lqa_docbuild b;
    lqa_db_init(&b, &doc);
    const char *title = jstr(paper, "title");
    if (!title) title = id ? id : "";
    lqa_db_title(&b, title, strlen(title));
    qasper_body(&b, paper);
    lqa_db_finish(&b);
    const json_t *qas = json_object_get(paper, "qas");
    size_t n = qasper_count(qas, "question");
    for (size_t i = 0; i < n; i++) {
        const char *question;
        json_t *annotations = qasper_annotations(qas, i, &question);
        qasper_qa(rc, &doc, question, annotations);
        json_decref(annotations);
    }
    if (doc.text.len == 0) {
        rc->st.malformed++;
        lqa_doc_free(&doc);
        return 0;
    }
    return hand_on(&doc, rc->sink, rc->sink_ctx, &rc->st);
}

/* A paper object itself (one JSON line of the Hugging Face export) has "full_text". */
static int is_qasper_paper(const json_t *o) { return json_is_object(o) && json_object_get(o, "full_text"); }

static int parse_qasper(const json_t *root, record_ctx *rc, lqa_err *err) {
    if (is_qasper_paper(root)) { /* a single paper */
        qasper_paper(rc, jstr(root, "id"), root);
        return 0;
    }
    if (!json_is_object(root))
        return lqa_err_set(err, "%s:1: expected a Qasper JSON object of papers keyed by id", rc->path);
    const char *id;
    json_t *paper;
    json_object_foreach((json_t *)root, id, paper) {
        if (!json_is_object(paper)) {
            rc->st.malformed++;
            continue;
        }
        if (qasper_paper(rc, id, paper)) break;
    }
    return 0;
}

/* One line of a Qasper JSON-lines file: one paper. */
static int qasper_line(const char *json, size_t len, long line, void *vctx, lqa_err *err) {
    record_ctx *rc = vctx;
    json_t *o = parse_element(rc->path, json, len, line, err);
    if (!o) return -1;
    int ret = 0;
    if (!is_qasper_paper(o)) {
        lqa_parse_warn(rc->opts, "%s:%ld: line without \"full_text\", skipped", rc->path, line);
        rc->st.malformed++;
    } else {
        ret = qasper_paper(rc, jstr(o, "id"), o);
    }
    json_decref(o);
    return ret ? 1 : 0;
}

/* ---- entry ------------------------------------------------------------------------------------------ */

static int only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!json_space(s[i])) return 0;
    return 1;
}

/* SQuAD and Qasper files are read whole (SQuAD v2 train: 40 MB); a Qasper file whose first
 * value is one paper followed by more is JSON lines (the Hugging Face export) and is streamed. */
static int parse_whole(const char *path, const char *format, record_ctx *rc, lqa_err *err) {
    char *data;
    size_t len;
    if (lqa_input_read_all_pinned(path, rc->pin, LQA_QASET_MAX_FILE, &data, &len, err) < 0) return -1;
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    size_t end = root ? (size_t)je.position : 0;
    int rest = root && end < len && !only_space(data + end, len - end);
    long end_line = 1;
    for (size_t i = 0; rest && i < end; i++) end_line += data[i] == '\n';
    free(data);
    if (!root) return lqa_err_set(err, "%s:%d: invalid JSON: %s", path, je.line, je.text);
    if (!strcmp(format, "qasper") && is_qasper_paper(root) && rest) {
        json_decref(root);
        return jsonl_stream(path, rc->pin, qasper_line, rc, err);
    }
    if (!strcmp(format, "squad") && is_squad_flat(root)) {
        json_decref(root);
        int ret = jsonl_stream(path, rc->pin, squad_flat_line, rc, err);
        flush_squad_article(rc); /* the articles completed before an error are kept */
        return ret;
    }
    if (rest) {
        json_decref(root);
        return lqa_err_set(err, "%s:%ld: more data after the JSON value that ends here, expected the end of the file",
                           path, end_line);
    }
    int ret = !strcmp(format, "squad") ? parse_squad(root, rc, err) : parse_qasper(root, rc, err);
    json_decref(root);
    return ret;
}

/* First non-blank byte of the (decompressed) file: '[' for an array, '{' for lines/objects. */
static int first_byte(const char *path, const lqa_input_pin *pin, char *out, lqa_err *err) {
    lqa_input *in = lqa_input_open_pinned(path, pin, err);
    if (!in) return -1;
    char buf[4096];
    long got;
    *out = 0;
    while (!*out && (got = lqa_input_read(in, buf, sizeof buf, err)) > 0)
        for (long i = 0; i < got && !*out; i++)
            if (!json_space(buf[i]) && !((unsigned char)buf[i] >= 0xbb)) *out = buf[i]; /* BOM (non-ASCII) bytes skipped: only [ or { matters */
    lqa_input_close(in);
    return got < 0 ? -1 : 0;
}

int lqa_qaset_parse(const char *path, const char *format, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                    lqa_err *err) {
    record_ctx rc = {.path = path, .opts = opts, .pin = opts ? opts->pin : NULL, .sink = sink, .sink_ctx = ctx};
    int ret;
    if (!strcmp(format, "alpaca")) {
        char first;
        ret = first_byte(path, rc.pin, &first, err);
        if (ret == 0) ret = parse_alpaca(path, &first, &rc, err);
    } else if (!strcmp(format, "longbench")) {
        ret = jsonl_stream(path, rc.pin, longbench_record, &rc, err);
        /* the last document is complete even when a later line failed */
        flush_pending(&rc);
    } else if (!strcmp(format, "squad") || !strcmp(format, "qasper")) {
        ret = parse_whole(path, format, &rc, err);
    } else {
        ret = lqa_err_set(err, "%s: %s is not a QA-set format", path, format);
    }
    if (rc.has_pending) lqa_doc_free(&rc.pending);
    json_decref(rc.article);
    report(path, format, opts, &rc.st);
    lqa_buf_free(&rc.scratch);
    return ret;
}
