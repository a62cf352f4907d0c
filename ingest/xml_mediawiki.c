/* xml_mediawiki.c: MediaWiki export dumps, streamed with libxml2's xmlTextReader over an
 * lqa_input (so .bz2/.gz dumps decompress on the fly) in constant memory: one document per
 * page of namespace 0, redirects skipped, the last revision's wikitext reduced to text
 * (== headings == as sections, [[link|label]] -> label, templates, <ref>s, comments, files,
 * categories removed, bold/italic quotes dropped, "; term : definition" lines as definitions,
 * simple wikitables as tables, nested ones removed). */
#include "ingest/xml_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/xmlreader.h>

/* ---- wikitext, pass 1: remove nested constructs ---------------------------------------------- */

static int starts_ci(const char *s, const char *end, const char *prefix) {
    size_t k = strlen(prefix);
    return (size_t)(end - s) >= k && strncasecmp(s, prefix, k) == 0;
}

/* Skips a balanced construct open..close (nesting counted) starting at s; returns the position
 * after it, or end when it never closes. */
static const char *skip_balanced(const char *s, const char *end, const char *open, const char *close) {
    size_t lo = strlen(open), lc = strlen(close);
    int depth = 0;
    while (s < end) {
        if ((size_t)(end - s) >= lo && memcmp(s, open, lo) == 0) {
            depth++;
            s += lo;
        } else if ((size_t)(end - s) >= lc && memcmp(s, close, lc) == 0) {
            s += lc;
            if (--depth == 0) return s;
        } else {
            s++;
        }
    }
    return end;
}

/* Tags whose content goes too: references, math, galleries and the like. */
static const char *const tags_with_content[] = {"ref", "math", "gallery", "timeline", "imagemap", "score",
                                                "references", "templatedata", "graph", "mapframe", NULL};

/* At '<': returns the position after a removed tag (and its content where that goes too), or
 * NULL when this '<' is not a tag. */
static const char *skip_tag(const char *s, const char *end) {
    if (starts_ci(s, end, "<!--")) {
        const char *e = memmem(s + 4, (size_t)(end - s - 4), "-->", 3);
        return e ? e + 3 : end;
    }
    const char *p = s + 1;
    int closing = p < end && *p == '/';
    if (closing) p++;
    const char *name = p;
    while (p < end && isalpha((unsigned char)*p)) p++;
    size_t nl = (size_t)(p - name);
    if (nl == 0 || nl > 20) return NULL;
    const char *gt = memchr(p, '>', (size_t)(end - p) < 2048 ? (size_t)(end - p) : 2048);
    if (!gt) return NULL;
    if (closing) return gt + 1;
    int self_closing = gt[-1] == '/';
    for (int i = 0; tags_with_content[i]; i++) {
        if (strlen(tags_with_content[i]) != nl || strncasecmp(name, tags_with_content[i], nl) != 0) continue;
        if (self_closing) return gt + 1;
        char close[32];
        snprintf(close, sizeof close, "</%.*s", (int)nl, name);
        for (const char *q = gt + 1; q < end; q++) {
            if (*q == '<' && starts_ci(q, end, close)) {
                const char *g = memchr(q, '>', (size_t)(end - q));
                return g ? g + 1 : end;
            }
        }
        return end;
    }
    return gt + 1; /* any other tag: dropped, its content kept */
}

/* [[File:...]], [[Category:...]] and interlanguage links vanish with their captions. */
static int is_dropped_link(const char *s, const char *end) {
    static const char *const prefixes[] = {"[[File:", "[[Image:", "[[Category:", "[[Media:", "[[:Category:", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (starts_ci(s, end, prefixes[i])) return 1;
    const char *p = s + 2; /* [[de:Foo]], [[zh-yue:Foo]] */
    while (p < end && (islower((unsigned char)*p) || *p == '-') && p - s < 14) p++;
    return p < end && *p == ':' && p - s >= 4;
}

static void strip_nested(const char *s, size_t n, lqa_buf *out) {
    const char *begin = s, *end = s + n;
    lqa_buf_reserve(out, n);
    while (s < end) {
        /* copy the run up to the next character that may start a construct */
        size_t run = strcspn(s, "{<[_");
        if (run > (size_t)(end - s)) run = (size_t)(end - s);
        if (run) {
            lqa_buf_append(out, s, run);
            s += run;
            continue;
        }
        int line_start = s == begin || s[-1] == '\n';
        const char *next = NULL;
        if (s[0] == '{' && s + 1 < end && s[1] == '{') next = skip_balanced(s, end, "{{", "}}");
        else if (line_start && s[0] == '{' && s + 1 < end && s[1] == '|') {
            /* a simple wikitable stays for the line pass to record; nested ones go */
            const char *close = skip_balanced(s, end, "{|", "|}");
            if (memmem(s + 2, (size_t)(close - s - 2), "{|", 2)) next = close;
        }
        else if (s[0] == '<') next = skip_tag(s, end);
        else if (s[0] == '[' && s + 1 < end && s[1] == '[' && is_dropped_link(s, end))
            next = skip_balanced(s, end, "[[", "]]");
        else if (s[0] == '_' && s + 1 < end && s[1] == '_') { /* __TOC__ and other magic words */
            const char *p = s + 2;
            while (p < end && isupper((unsigned char)*p)) p++;
            if (p + 1 < end && p > s + 2 && p[0] == '_' && p[1] == '_') next = p + 2;
        }
        if (next) {
            s = next;
            continue;
        }
        lqa_buf_putc(out, *s++);
    }
}

/* ---- wikitext, pass 2: lines and inline markup ----------------------------------------------- */

static const struct { const char *name, *text; } entities[] = {
    {"&nbsp;", " "}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&ndash;", "\xE2\x80\x93"},
    {"&mdash;", "\xE2\x80\x94"}, {"&minus;", "\xE2\x88\x92"}, {"&times;", "\xC3\x97"}, {"&thinsp;", " "},
    {NULL, NULL}};

/* Inline markup of one line into out: links to their labels, quotes and entities. */
static void inline_markup(const char *s, const char *end, lqa_buf *out) {
    while (s < end) {
        const char *special = s;
        while (special < end && *special != '[' && *special != '\'' && *special != '&') special++;
        if (special > s) {
            lqa_buf_append(out, s, (size_t)(special - s));
            s = special;
            continue;
        }
        if (s[0] == '[' && s + 1 < end && s[1] == '[') { /* [[target|label]] or [[target]] */
            const char *close = memmem(s + 2, (size_t)(end - s - 2), "]]", 2);
            if (close) {
                const char *bar = NULL;
                for (const char *p = s + 2; p < close; p++)
                    if (*p == '|') bar = p;
                const char *label = bar ? bar + 1 : s + 2;
                if (!bar && *label == ':') label++;
                inline_markup(label, close, out);
                s = close + 2;
                continue;
            }
        }
        if (s[0] == '[' && (starts_ci(s, end, "[http://") || starts_ci(s, end, "[https://") || starts_ci(s, end, "[//"))) {
            const char *close = memchr(s, ']', (size_t)(end - s));
            if (close) {
                const char *sp = memchr(s, ' ', (size_t)(close - s));
                if (sp) {
                    inline_markup(sp + 1, close, out);
                } else if (out->len && out->data[out->len - 1] == ' ' && close + 1 < end &&
                           strchr(".,;:)", close[1])) { /* "see [http://x]." -> "see." */
                    out->data[--out->len] = '\0';
                }
                s = close + 1;
                continue;
            }
        }
        if (s[0] == '\'' && s + 1 < end && s[1] == '\'') { /* '' italic, ''' bold, ''''' both */
            while (s < end && *s == '\'') s++;
            continue;
        }
        if (s[0] == '&') {
            int done = 0;
            for (int i = 0; entities[i].name; i++) {
                if (starts_ci(s, end, entities[i].name)) {
                    lqa_buf_puts(out, entities[i].text);
                    s += strlen(entities[i].name);
                    done = 1;
                    break;
                }
            }
            if (done) continue;
        }
        lqa_buf_putc(out, *s++);
    }
}

/* "== Title ==" -> level (1 for "=" and "=="), title in out; 0 when not a heading. */
static int heading_line(const char *s, const char *end, lqa_buf *out) {
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    int left = 0, right = 0;
    while (s + left < end && s[left] == '=') left++;
    while (end - right > s + left && end[-1 - right] == '=') right++;
    int n = left < right ? left : right;
    if (n == 0 || n > 6 || s + left >= end - right) return 0;
    inline_markup(s + n, end - n, out);
    return n <= 2 ? 1 : n - 1;
}

#define WIKI_MAX_CELLS 64

typedef struct wiki_state {
    lqa_docbuild *b;
    lqa_buf line;      /* current line after inline markup */
    int in_list;       /* the previous line was a list item */
    int in_table;
    int table_first_cell; /* no cell line yet in the open table: a '|' one means no header row */
    lqa_buf cells[WIKI_MAX_CELLS]; /* the row being read (raw wikitext of each cell) */
    int colspan[WIKI_MAX_CELLS], rowspan[WIKI_MAX_CELLS];
    int n_cells;
} wiki_state;

/* ---- wikitables: {| ... |-  ! header !! header  | cell || cell ... |} ------------------------- */

static int attr_number(const char *attrs, size_t n, const char *name) {
    const char *a = memmem(attrs, n, name, strlen(name));
    if (!a) return 1;
    a += strlen(name);
    while (a < attrs + n && (*a == '=' || *a == '"' || *a == '\'' || *a == ' ')) a++;
    int v = atoi(a);
    return v >= 1 && v <= 1000 ? v : 1;
}

/* One cell: optional 'attrs |' before its text (a '|' outside [[links]] with '=' before it). */
static void table_add_cell(wiki_state *st, const char *s, const char *e) {
    if (st->n_cells >= WIKI_MAX_CELLS) return;
    int depth = 0;
    const char *bar = NULL;
    for (const char *p = s; p < e && !bar; p++) {
        if (p + 1 < e && p[0] == '[' && p[1] == '[') depth++, p++;
        else if (p + 1 < e && p[0] == ']' && p[1] == ']') depth--, p++;
        else if (*p == '|' && depth <= 0) bar = p;
    }
    int k = st->n_cells++;
    st->colspan[k] = st->rowspan[k] = 1;
    if (bar && memchr(s, '=', (size_t)(bar - s))) {
        st->colspan[k] = attr_number(s, (size_t)(bar - s), "colspan");
        st->rowspan[k] = attr_number(s, (size_t)(bar - s), "rowspan");
        s = bar + 1;
    }
    lqa_buf_clear(&st->cells[k]);
    lqa_buf_append(&st->cells[k], s, (size_t)(e - s));
}

/* Splits "a || b || c" (or "!!" for headers) into cells. */
static void table_cells_line(wiki_state *st, const char *s, const char *e, int header) {
    const char *sep = header ? "!!" : "||";
    while (s < e) {
        const char *a = memmem(s, (size_t)(e - s), sep, 2);
        const char *b = header ? memmem(s, (size_t)(e - s), "||", 2) : NULL;
        if (b && (!a || b < a)) a = b;
        const char *cell_end = a ? a : e;
        table_add_cell(st, s, cell_end);
        s = a ? a + 2 : e;
    }
}

static void table_flush_row(wiki_state *st) {
    if (st->n_cells == 0) return;
    lqa_db_table_row(st->b);
    for (int k = 0; k < st->n_cells; k++) {
        lqa_buf_clear(&st->line);
        inline_markup(st->cells[k].data ? st->cells[k].data : "", (st->cells[k].data ? st->cells[k].data : "") + st->cells[k].len, &st->line);
        lqa_db_table_cell(st->b, st->line.data ? st->line.data : "", st->line.len, st->colspan[k], st->rowspan[k]);
    }
    st->n_cells = 0;
}

/* A line inside a wikitable; returns 0 when the table ended on it. */
static int table_line(wiki_state *st, const char *p, const char *le) {
    if (le - p >= 2 && p[0] == '|' && p[1] == '}') {
        table_flush_row(st);
        lqa_db_table_end(st->b);
        st->in_table = 0;
        return 0;
    }
    if (le - p >= 2 && p[0] == '|' && p[1] == '+') {
        lqa_buf_clear(&st->line);
        inline_markup(p + 2, le, &st->line);
        lqa_db_table_caption(st->b, st->line.data ? st->line.data : "", st->line.len);
    } else if (le - p >= 2 && p[0] == '|' && p[1] == '-') {
        table_flush_row(st);
    } else if (*p == '!' || *p == '|') {
        if (st->table_first_cell && *p == '|') lqa_db_table_no_header(st->b);
        st->table_first_cell = 0;
        table_cells_line(st, p + 1, le, *p == '!');
    } else if (st->n_cells > 0) { /* a cell's text going on over lines */
        lqa_buf_putc(&st->cells[st->n_cells - 1], ' ');
        lqa_buf_append(&st->cells[st->n_cells - 1], p, (size_t)(le - p));
    }
    return 1;
}

static void write_text(wiki_state *st, const char *s, size_t n) {
    lqa_buf_clear(&st->line);
    inline_markup(s, s + n, &st->line);
    lqa_db_text(st->b, st->line.data ? st->line.data : "", st->line.len);
}

/* "; term : definition" (or the definition on the next ":" line). */
static void definition_line(wiki_state *st, const char *s, const char *end, const char *next, const char *text_end) {
    const char *colon = NULL;
    for (const char *p = s; p + 2 < end; p++)
        if (p[0] == ' ' && p[1] == ':' && p[2] == ' ') { colon = p; break; }
    const char *def = colon ? colon + 3 : NULL, *def_end = end;
    if (!colon && next < text_end && *next == ':') { /* definition on the next line */
        def = next + 1;
        const char *nl = memchr(def, '\n', (size_t)(text_end - def));
        def_end = nl ? nl : text_end;
    }
    lqa_db_para(st->b);
    size_t ts = lqa_db_start(st->b);
    write_text(st, s, (size_t)((colon ? colon : end) - s));
    lqa_span term = lqa_db_span_from(st->b, ts);
    if (!def) return;
    lqa_db_line(st->b);
    size_t ds = lqa_db_start(st->b);
    write_text(st, def, (size_t)(def_end - def));
    lqa_span ds_span = lqa_db_span_from(st->b, ds);
    if (term.end > term.start) {
        char *t = lqa_strndup(st->b->doc->text.data + term.start, term.end - term.start);
        lqa_db_definition(st->b, t, term.end - term.start, term, ds_span);
        free(t);
    }
    lqa_db_para(st->b);
}

/* Writes the page's wikitext (already stripped of nested constructs) into the builder. */
static void wiki_lines(wiki_state *st, const char *text, size_t n) {
    const char *s = text, *end = text + n;
    lqa_buf title = {0};
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        const char *p = s;
        while (p < le && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        if (st->in_table) {
            table_line(st, p, le);
            s = next;
            continue;
        }
        if (le - p >= 2 && p[0] == '{' && p[1] == '|') {
            lqa_db_table_begin(st->b, NULL, 0);
            st->in_table = 1;
            st->table_first_cell = 1;
            st->n_cells = 0;
            st->in_list = 0;
            s = next;
            continue;
        }
        if (p == le) { /* blank line: paragraph break */
            lqa_db_para(st->b);
        } else if (*s == '=') {
            lqa_buf_clear(&title);
            int level = heading_line(s, le, &title);
            if (level) lqa_db_section(st->b, level, title.data, title.len);
            else write_text(st, s, (size_t)(le - s));
        } else if (*s == ';') {
            const char *t = s;
            while (t < le && (*t == ';' || *t == ' ')) t++;
            int def_next_line = !memmem(t, (size_t)(le - t), " : ", 3) && next < end && *next == ':';
            definition_line(st, t, le, next, end);
            if (def_next_line) { /* the ":" line was consumed as the definition */
                const char *nl2 = memchr(next, '\n', (size_t)(end - next));
                next = nl2 ? nl2 + 1 : end;
            }
        } else if (*s == '*' || *s == '#' || *s == ':') {
            const char *t = s;
            while (t < le && (*t == '*' || *t == '#' || *t == ':' || *t == ' ')) t++;
            if (!st->in_list) lqa_db_para(st->b);
            lqa_db_line(st->b);
            write_text(st, t, (size_t)(le - t));
            st->in_list = 1;
            s = next;
            continue;
        } else if (*s == '-' && le - s >= 4 && !strncmp(s, "----", 4)) {
            lqa_db_para(st->b); /* horizontal rule */
        } else {
            if (st->in_list) lqa_db_para(st->b);
            else lqa_db_space(st->b); /* lines of a paragraph join */
            write_text(st, s, (size_t)(le - s));
        }
        st->in_list = 0;
        s = next;
    }
    lqa_buf_free(&title);
}

/* ---- the dump reader ------------------------------------------------------------------------- */

typedef struct page {
    lqa_buf title, ns, text;
    int redirect, too_large;
} page;

typedef struct mw_reader {
    lqa_input *in;
    lqa_err read_err;
    int read_failed;
    const char *path;
    const lqa_parse_opts *opts;
    char error[700];
    int n_warnings;
} mw_reader;

static int io_read(void *ctx, char *buf, int len) {
    mw_reader *r = ctx;
    long got = lqa_input_read(r->in, buf, (size_t)len, &r->read_err);
    if (got < 0) r->read_failed = 1;
    return got < 0 ? -1 : (int)got;
}

static int io_close(void *ctx) { return 0; } /* the caller owns and closes the input */

static void on_reader_error(void *arg, xmlErrorPtr e) {
    mw_reader *r = arg;
    if (!e) return;
    char msg[600];
    snprintf(msg, sizeof msg, "%s", e->message ? e->message : "unknown error");
    msg[strcspn(msg, "\r\n")] = '\0';
    if (e->level == XML_ERR_FATAL) {
        if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s:%d: %s", r->path, e->line, msg);
    } else if (r->n_warnings++ < LQA_XML_MAX_WARNINGS) {
        lqa_parse_warn(r->opts, "%s:%d: %s", r->path, e->line, msg);
    }
}

/* Builds the page's document and hands it to the sink; returns the sink's answer. */
static int emit_page(page *pg, const char *path, const lqa_parse_opts *opts, lqa_buf *scratch, lqa_doc_sink sink,
                     void *ctx) {
    lqa_doc doc;
    lqa_doc_init(&doc, path, "mediawiki");
    lqa_docbuild b;
    lqa_db_init(&b, &doc);
    lqa_db_title(&b, pg->title.data, pg->title.len);
    lqa_buf_clear(scratch);
    strip_nested(pg->text.data ? pg->text.data : "", pg->text.len, scratch);
    wiki_state st = {.b = &b};
    wiki_lines(&st, scratch->data ? scratch->data : "", scratch->len);
    if (st.in_table) { /* a table never closed: keep what it had */
        table_flush_row(&st);
        lqa_db_table_end(&b);
    }
    lqa_buf_free(&st.line);
    for (int k = 0; k < WIKI_MAX_CELLS; k++) lqa_buf_free(&st.cells[k]);
    lqa_db_finish(&b);
    lqa_db_number_passages(&b);
    int stop = 0;
    if (doc.text.len > 0) stop = sink(&doc, ctx);
    lqa_doc_free(&doc);
    return stop;
}

static void page_reset(page *pg) {
    lqa_buf_clear(&pg->title);
    lqa_buf_clear(&pg->ns);
    lqa_buf_clear(&pg->text);
    pg->redirect = pg->too_large = 0;
}

/* A page's text buffer may grow to the largest page: give big ones back so memory stays flat. */
static void page_trim(page *pg) {
    if (pg->text.cap > ((size_t)8 << 20)) lqa_buf_free(&pg->text);
}

enum capture { CAP_NONE, CAP_TITLE, CAP_NS, CAP_TEXT };

int lqa_xml_parse_mediawiki(const char *path, lqa_input *in, const lqa_parse_opts *opts, lqa_doc_sink sink,
                            void *ctx, lqa_err *err) {
    lqa_xml_global_init();
    mw_reader r = {.in = in, .path = path, .opts = opts};
    /* no NOENT/DTDLOAD/XINCLUDE/HUGE here either: entities stay unexpanded, limits stay on */
    xmlTextReaderPtr reader = xmlReaderForIO(io_read, io_close, &r, path, NULL, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
    if (!reader) return lqa_err_set(err, "%s: cannot start the XML reader", path);
    xmlTextReaderSetStructuredErrorHandler(reader, on_reader_error, &r);
    size_t max_text = lqa_xml_max_text_node(opts);
    int max_depth = lqa_xml_max_depth(opts);
    page pg = {0};
    lqa_buf scratch = {0};
    enum capture cap = CAP_NONE;
    int in_page = 0, stop = 0, ret, saw_root = 0;
    long pages = 0, skipped_large = 0;
    while (!stop && (ret = xmlTextReaderRead(reader)) == 1) {
        int type = xmlTextReaderNodeType(reader);
        const char *name = (const char *)xmlTextReaderConstLocalName(reader);
        if (xmlTextReaderDepth(reader) > max_depth) {
            snprintf(r.error, sizeof r.error, "%s:%d: elements nested deeper than %d levels (refused)", path,
                     xmlTextReaderGetParserLineNumber(reader), max_depth);
            break;
        }
        if (type == XML_READER_TYPE_ELEMENT) {
            if (!saw_root) {
                saw_root = 1;
                if (strcmp(name, "mediawiki") != 0) {
                    snprintf(r.error, sizeof r.error, "%s:%d: root element <%s>, expected <mediawiki> (a MediaWiki export dump)",
                             path, xmlTextReaderGetParserLineNumber(reader), name);
                    break;
                }
            }
            int empty = xmlTextReaderIsEmptyElement(reader);
            if (!strcmp(name, "page")) {
                page_reset(&pg);
                in_page = 1;
            } else if (in_page && !strcmp(name, "redirect")) {
                pg.redirect = 1;
            } else if (in_page && !empty && !strcmp(name, "title")) {
                cap = CAP_TITLE;
            } else if (in_page && !empty && !strcmp(name, "ns")) {
                cap = CAP_NS;
            } else if (in_page && !strcmp(name, "text")) {
                lqa_buf_clear(&pg.text); /* the last revision's text wins */
                pg.too_large = 0;
                cap = empty ? CAP_NONE : CAP_TEXT;
            }
        } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
                   type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
            const char *v = (const char *)xmlTextReaderConstValue(reader);
            size_t n = v ? strlen(v) : 0;
            lqa_buf *dst = cap == CAP_TITLE ? &pg.title : cap == CAP_NS ? &pg.ns : cap == CAP_TEXT ? &pg.text : NULL;
            if (dst && !pg.too_large) {
                if (dst->len + n > max_text) pg.too_large = 1, lqa_buf_clear(dst);
                else lqa_buf_append(dst, v, n);
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (!strcmp(name, "title") || !strcmp(name, "ns") || !strcmp(name, "text")) {
                cap = CAP_NONE;
            } else if (!strcmp(name, "page") && in_page) {
                in_page = 0;
                int main_ns = pg.ns.len == 0 || atoi(pg.ns.data) == 0;
                if (main_ns && pg.title.len && (pg.ns.len == 0 || pg.ns.data[0] == '0') && !pg.redirect) {
                    if (pg.too_large) {
                        if (skipped_large++ < LQA_XML_MAX_WARNINGS)
                            lqa_parse_warn(opts, "%s:%d: page \"%s\" has more than %zu bytes of text, skipped", path,
                                         xmlTextReaderGetParserLineNumber(reader), pg.title.data, max_text);
                    } else {
                        stop = emit_page(&pg, path, opts, &scratch, sink, ctx);
                        pages++;
                    }
                }
                page_trim(&pg);
            }
        }
    }
    if (!stop && ret < 0 && !r.error[0]) snprintf(r.error, sizeof r.error, "%s: XML reader failed", path);
    xmlFreeTextReader(reader);
    lqa_buf_free(&pg.title), lqa_buf_free(&pg.ns), lqa_buf_free(&pg.text), lqa_buf_free(&scratch);
    if (r.read_failed) return lqa_err_set(err, "%s", r.read_err.msg);
    if (!stop && r.error[0]) return lqa_err_set(err, "%s", r.error);
    if (!stop && !saw_root) return lqa_err_set(err, "%s:1: no root element, expected a MediaWiki export dump", path);
    if (pages == 0 && !stop) lqa_parse_warn(opts, "%s: no article pages (namespace 0, not redirects) in the dump", path);
    return 0;
}
