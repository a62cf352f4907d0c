/* xml.c: safe libxml2 parsing for the XML/HTML family (no network, no DTD loading, no entity
 * substitution, no XInclude, external entities refused by a loader that loads nothing; errors
 * captured per context, never printed by libxml2), the tree limits (depth, text node size),
 * format sniffing from content, and lqa_xml_parse_buffer, which runs a format's walker. */
#include "ingest/xml_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

/* ---- global setup -------------------------------------------------------------------------- */

/* Every external entity, external DTD subset or XInclude target goes through here: refuse. */
static xmlParserInputPtr refuse_external_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt) {
    (void)url, (void)id, (void)ctxt; /* libxml2 reports the failed load through the context */
    return NULL;
}

static void silent_structured(void *ctx, xmlErrorPtr e) {}
static void silent_generic(void *ctx, const char *msg, ...) {}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_setup(void) {
    xmlInitParser();
    xmlSetExternalEntityLoader(refuse_external_loader);
}

void lqa_xml_global_init(void) {
    pthread_once(&global_once, global_setup);
    /* libxml2's default error handlers are per thread: silence them here (the context's own
     * handler gets every parser error before these would). */
    xmlSetStructuredErrorFunc(NULL, silent_structured);
    xmlSetGenericErrorFunc(NULL, silent_generic);
}

size_t lqa_xml_max_text_node(const lqa_parse_opts *opts) {
    return opts && opts->max_text_node ? opts->max_text_node : LQA_XML_DEFAULT_MAX_TEXT_NODE;
}

int lqa_xml_max_depth(const lqa_parse_opts *opts) {
    return opts && opts->max_depth > 0 ? opts->max_depth : LQA_XML_DEFAULT_MAX_DEPTH;
}

/* ---- error capture ------------------------------------------------------------------------- */

typedef struct parse_state {
    const char *path;
    const lqa_parse_opts *opts;
    int html;            /* HTML: only fatal errors (memory, huge node) are errors */
    char error[700];     /* first fatal error, "" if none */
    int quiet;           /* count problems, report nothing (a trial parse) */
    int n_problems;
    int n_warnings;
    long suppressed;
} parse_state;

/* libxml2 messages end with a newline and may hold several lines: keep the first. */
static void copy_message(char *dst, size_t cap, const char *msg) {
    snprintf(dst, cap, "%s", msg ? msg : "unknown error");
    dst[strcspn(dst, "\r\n")] = '\0';
}

static void on_parse_error(void *user, xmlErrorPtr e) {
    xmlParserCtxtPtr ctxt = user;
    parse_state *st = ctxt ? ctxt->_private : NULL;
    if (!st || !e) return;
    if (st->quiet) {
        st->n_problems++;
        return;
    }
    char msg[600];
    copy_message(msg, sizeof msg, e->message);
    int fatal = e->level == XML_ERR_FATAL || e->code == XML_ERR_NO_MEMORY;
    if (st->html && e->code == XML_HTML_UNKNOWN_TAG) return; /* HTML5 elements libxml2 does not know */
    if (fatal) {
        if (!st->error[0]) snprintf(st->error, sizeof st->error, "%s:%d: %s", st->path, e->line, msg);
        return;
    }
    if (st->n_warnings >= LQA_XML_MAX_WARNINGS) {
        st->suppressed++;
        return;
    }
    st->n_warnings++;
    lqa_parse_warn(st->opts, "%s:%d: %s%s", st->path, e->line, st->html ? "HTML recovered: " : "", msg);
}

static void report_suppressed(const parse_state *st) {
    if (st->suppressed)
        lqa_parse_warn(st->opts, "%s: %ld more %s not shown", st->path, st->suppressed,
                     st->html ? "recovered HTML errors" : "warnings");
}

/* ---- limits -------------------------------------------------------------------------------- */

int lqa_xml_check_limits(const char *path, xmlNode *root, const lqa_parse_opts *opts, lqa_err *err) {
    size_t max_text = lqa_xml_max_text_node(opts);
    int max_depth = lqa_xml_max_depth(opts);
    int depth = 1;
    xmlNode *n = root;
    while (n) {
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content) {
            size_t len = strlen((const char *)n->content);
            if (len > max_text)
                return lqa_err_set(err, "%s:%ld: a text node of %zu bytes, expected at most %zu (refused)", path,
                                   xmlGetLineNo(n->parent ? n->parent : n), len, max_text);
        }
        if (n->type == XML_ELEMENT_NODE && n->children) {
            if (++depth > max_depth)
                return lqa_err_set(err, "%s:%ld: elements nested deeper than %d levels, expected at most %d (refused)",
                                   path, xmlGetLineNo(n), max_depth, max_depth);
            n = n->children;
            continue;
        }
        while (n && n != root && !n->next) {
            n = n->parent;
            depth--;
        }
        if (!n || n == root) break;
        n = n->next;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int check_size(const char *path, size_t len, lqa_err *err) {
    if (len > INT_MAX) return lqa_err_set(err, "%s: %zu bytes, expected at most %d for one XML document", path, len, INT_MAX);
    if (len == 0) return lqa_err_set(err, "%s:1: empty file, expected a document", path);
    return 0;
}

static xmlDoc *read_xml_checked(const char *path, const char *data, size_t len, const lqa_parse_opts *opts,
                                lqa_err *err);

/* A parser context (HTML when st->html) whose errors go to on_parse_error with st. */
static xmlParserCtxtPtr new_checked_ctxt(parse_state *st) {
    xmlParserCtxtPtr ctxt = st->html ? htmlNewParserCtxt() : xmlNewParserCtxt();
    mallocCheck(ctxt);
    ctxt->_private = st;
    ctxt->sax->serror = on_parse_error;
    ctxt->sax->initialized = XML_SAX2_MAGIC;
    return ctxt;
}

static void free_checked_ctxt(xmlParserCtxtPtr ctxt, const parse_state *st) {
    ctxt->_private = NULL;
    if (st->html) htmlFreeParserCtxt(ctxt);
    else xmlFreeParserCtxt(ctxt);
}

static xmlDoc *finish_read(xmlParserCtxtPtr ctxt, xmlDoc *doc, parse_state *st, int ok, lqa_err *err) {
    report_suppressed(st);
    if (!ok || !doc) {
        if (st->error[0]) lqa_err_set(err, "%s", st->error);
        else lqa_err_set(err, "%s: not well-formed %s, expected a parsable document", st->path, st->html ? "HTML" : "XML");
        if (doc) xmlFreeDoc(doc);
        doc = NULL;
    } else if (!xmlDocGetRootElement(doc)) {
        lqa_err_set(err, "%s:1: no root element, expected a document", st->path);
        xmlFreeDoc(doc);
        doc = NULL;
    } else if (lqa_xml_check_limits(st->path, xmlDocGetRootElement(doc), st->opts, err) < 0) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    free_checked_ctxt(ctxt, st);
    return doc;
}

/* Whether the m bytes at p begin with s, in any case (p need not be NUL-terminated). */
static int begins_nocase(const char *p, size_t m, const char *s) {
    size_t k = strlen(s);
    return m >= k && strncasecmp(p, s, k) == 0;
}

/* Whether the XML declaration names an encoding other than UTF-8 (then libxml2 converts). */
static int declares_other_encoding(const char *data, size_t len) {
    if (len < 5 || memcmp(data, "<?xml", 5) != 0) return 0;
    const char *end = memchr(data, '>', len < 512 ? len : 512);
    if (!end) return 0;
    const char *enc = memmem(data, (size_t)(end - data), "encoding", 8);
    if (!enc) return 0;
    const char *q = enc + 8;
    while (q < end && (*q == ' ' || *q == '=' || *q == '"' || *q == '\'')) q++;
    size_t m = (size_t)(end - q);
    return !(begins_nocase(q, m, "utf-8") || begins_nocase(q, m, "utf8"));
}

static long line_at(const char *s, size_t off) {
    long line = 1;
    for (size_t i = 0; i < off; i++) line += s[i] == '\n';
    return line;
}

xmlDoc *lqa_xml_read(const char *path, const char *data, size_t len, const lqa_parse_opts *opts, lqa_err *err) {
    lqa_xml_global_init();
    if (check_size(path, len, err) < 0) return NULL;
    /* invalid UTF-8 would make libxml2 give up on the whole file: repair it and say so */
    lqa_buf repaired = {0};
    size_t first_bad = 0, bad = declares_other_encoding(data, len) ? 0 : lqa_utf8_repair(data, len, &repaired, &first_bad);
    if (bad) {
        lqa_parse_warn(opts, "%s:%ld: invalid UTF-8 (%zu bad sequence%s, first at byte %zu), replaced with U+FFFD", path,
                     line_at(data, first_bad), bad, bad == 1 ? "" : "s", first_bad);
        data = repaired.data;
        len = repaired.len;
        if (len > INT_MAX) {
            lqa_buf_free(&repaired);
            lqa_err_set(err, "%s: too large after UTF-8 repair, expected at most %d bytes", path, INT_MAX);
            return NULL;
        }
    }
    xmlDoc *doc = read_xml_checked(path, data, len, opts, err);
    lqa_buf_free(&repaired);
    return doc;
}

static xmlDoc *read_xml_checked(const char *path, const char *data, size_t len, const lqa_parse_opts *opts, lqa_err *err) {
    parse_state st = {.path = path, .opts = opts};
    xmlParserCtxtPtr ctxt = new_checked_ctxt(&st);
    /* NONET: no network. NOENT, DTDLOAD, DTDATTR, XINCLUDE and HUGE are deliberately absent:
     * entities stay references, no external subset is read, libxml2's size limits apply. */
    int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, path, NULL, options);
    int ok = doc && ctxt->wellFormed && !st.error[0];
    return finish_read(ctxt, doc, &st, ok, err);
}

/* Whether an HTML page declares a charset other than UTF-8 (meta charset / http-equiv). */
static int html_other_charset(const char *data, size_t len) {
    size_t n = len < 4096 ? len : 4096;
    for (size_t i = 0; i + 8 < n; i++) {
        if ((data[i] | 0x20) != 'c' || !begins_nocase(data + i, n - i, "charset")) continue; /* a call per 'c' only */
        size_t j = i + 7;
        while (j < n && (data[j] == ' ' || data[j] == '=' || data[j] == '"' || data[j] == '\'')) j++;
        if (j >= n) return 0;
        return !(begins_nocase(data + j, n - j, "utf-8") || begins_nocase(data + j, n - j, "utf8"));
    }
    return 0;
}

static xmlDoc *read_html_checked(const char *path, const char *data, size_t len, const char *encoding,
                                 const lqa_parse_opts *opts, lqa_err *err);

/* XHTML that is well-formed XML parses 2-3x faster with the XML parser than with the
 * recovering HTML parser. A trial parse, silent: any problem at all (not well-formed, an
 * HTML entity the XML parser does not know, a limit) and the caller uses the HTML parser,
 * which then reports what it finds. */
static int looks_like_xhtml(const char *data, size_t len) {
    size_t n = len < 2048 ? len : 2048, i = 0;
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < n && strchr(" \t\r\n", data[i])) i++;
    return (n - i >= 5 && memcmp(data + i, "<?xml", 5) == 0) || memmem(data, n, "http://www.w3.org/1999/xhtml", 28);
}

static xmlDoc *try_xhtml_as_xml(const char *path, const char *data, size_t len, const lqa_parse_opts *opts) {
    if (!looks_like_xhtml(data, len)) return NULL;
    parse_state st = {.path = path, .opts = opts, .quiet = 1};
    xmlParserCtxtPtr ctxt = new_checked_ctxt(&st);
    /* COMPACT keeps short text inside its node (one allocation less per text node, ~3 % of
     * the ingest's instructions): safe because the walkers only read the tree */
    int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES | XML_PARSE_COMPACT;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, path, NULL, options);
    int ok = doc && ctxt->wellFormed && st.n_problems == 0 && xmlDocGetRootElement(doc) &&
             xn_is(xmlDocGetRootElement(doc), "html");
    free_checked_ctxt(ctxt, &st);
    if (ok && lqa_xml_check_limits(path, xmlDocGetRootElement(doc), opts, NULL) < 0) ok = 0;
    if (!ok && doc) xmlFreeDoc(doc);
    return ok ? doc : NULL;
}

xmlDoc *lqa_html_read(const char *path, const char *data, size_t len, const lqa_parse_opts *opts, lqa_err *err) {
    lqa_xml_global_init();
    if (check_size(path, len, err) < 0) return NULL;
    if (html_other_charset(data, len) || declares_other_encoding(data, len))
        return read_html_checked(path, data, len, NULL, opts, err);
    /* UTF-8 (declared or by default): repair bad bytes rather than let libxml2 fall back to
     * Latin-1 for the whole page */
    lqa_buf repaired = {0};
    size_t first_bad = 0, bad = lqa_utf8_repair(data, len, &repaired, &first_bad);
    if (bad) {
        lqa_parse_warn(opts, "%s:%ld: invalid UTF-8 (%zu bad sequence%s, first at byte %zu), replaced with U+FFFD", path,
                     line_at(data, first_bad), bad, bad == 1 ? "" : "s", first_bad);
        data = repaired.data;
        len = repaired.len;
    }
    xmlDoc *doc = len > INT_MAX ? NULL : try_xhtml_as_xml(path, data, len, opts);
    if (!doc && len <= INT_MAX) doc = read_html_checked(path, data, len, "UTF-8", opts, err);
    if (len > INT_MAX) lqa_err_set(err, "%s: too large after UTF-8 repair, expected at most %d bytes", path, INT_MAX);
    lqa_buf_free(&repaired);
    return doc;
}

static xmlDoc *read_html_checked(const char *path, const char *data, size_t len, const char *encoding,
                                 const lqa_parse_opts *opts, lqa_err *err) {
    parse_state st = {.path = path, .opts = opts, .html = 1};
    htmlParserCtxtPtr ctxt = new_checked_ctxt(&st);
    int options = HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING;
    xmlDoc *doc = htmlCtxtReadMemory(ctxt, data, (int)len, path, encoding, options);
    int ok = doc && !st.error[0];
    return finish_read(ctxt, doc, &st, ok, err);
}

/* ---- sniffing ------------------------------------------------------------------------------ */

/* Skips whitespace, the XML declaration, comments, processing instructions; copies the
 * DOCTYPE declaration text (if any) into doctype; returns the offset of the root's '<' or n. */
static size_t skip_prolog(const char *s, size_t n, char *doctype, size_t cap) {
    size_t i = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    doctype[0] = '\0';
    while (i < n) {
        while (i < n && strchr(" \t\r\n", s[i])) i++;
        if (i >= n || s[i] != '<') return n;
        const char *rest = s + i;
        size_t left = n - i;
        const char *end = NULL;
        if (left >= 4 && memcmp(rest, "<!--", 4) == 0) end = memmem(rest, left, "-->", 3), end = end ? end + 3 : NULL;
        else if (left >= 2 && rest[1] == '?') end = memmem(rest, left, "?>", 2), end = end ? end + 2 : NULL;
        else if (left >= 9 && strncasecmp(rest, "<!DOCTYPE", 9) == 0) {
            end = memchr(rest, '>', left); /* up to the first '>' is enough to name the type */
            size_t dl = end ? (size_t)(end - rest) : left;
            if (dl >= cap) dl = cap - 1;
            memcpy(doctype, rest, dl);
            doctype[dl] = '\0';
            const char *subset = memchr(rest, '[', dl); /* an internal subset: skip past "]>" */
            if (subset) {
                const char *close = memmem(subset, left - (size_t)(subset - rest), "]>", 2);
                end = close ? close + 1 : NULL;
            }
            end = end ? end + 1 : NULL;
        } else {
            return i;
        }
        if (!end) return n;
        i = (size_t)(end - s);
    }
    return n;
}

static int ci_contains(const char *hay, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(hay + i, needle, k) == 0) return 1;
    return 0;
}

const char *lqa_xml_sniff(const char *head, size_t n) {
    static const char *const docbook_roots[] = {"book", "chapter", "part", "set", "section", "sect1", "refentry",
                                                "appendix", "preface", "reference", "glossary", "article", NULL};
    static const char *const html_roots[] = {"html", "head", "body", "div", "p", "h1", "h2", "h3", "table", NULL};
    if (!head || n == 0) return NULL;
    char doctype[512];
    size_t i = skip_prolog(head, n, doctype, sizeof doctype);
    size_t dl = strlen(doctype);
    if (dl) {
        if (strncasecmp(doctype + 9, " html", 5) == 0) return "html";
        if (ci_contains(doctype, dl, "DocBook")) return "docbook";
        if (ci_contains(doctype, dl, "JATS") || ci_contains(doctype, dl, "NLM") ||
            ci_contains(doctype, dl, "journalpublishing") || ci_contains(doctype, dl, "archivearticle"))
            return "jats";
        if (strstr(doctype, "TEI")) return "tei"; /* case matters: "protein" is no TEI */
    }
    if (i >= n) return NULL;
    /* root element name (local part) and a window of its start tag */
    const char *p = head + i + 1;
    size_t left = n - i - 1, len = 0;
    while (len < left && !strchr(" \t\r\n/>", p[len])) len++;
    const char *colon = memchr(p, ':', len);
    if (colon) len -= (size_t)(colon + 1 - p), p = colon + 1;
    char root[64];
    if (len == 0 || len >= sizeof root) return NULL;
    memcpy(root, p, len);
    root[len] = '\0';
    size_t window = n - i < 4096 ? n - i : 4096;
    const char *tag_end = memchr(head + i, '>', window);
    size_t tag_len = tag_end ? (size_t)(tag_end - (head + i)) : window;
    if (!strcasecmp(root, "mediawiki")) return "mediawiki";
    if (!strcmp(root, "TEI") || !strcmp(root, "teiCorpus") || ci_contains(head + i, tag_len, "tei-c.org/ns"))
        return "tei";
    if (!strcmp(root, "page") && ci_contains(head + i, tag_len, "projectmallard.org")) return "mallard";
    if (ci_contains(head + i, tag_len, "docbook.org/ns/docbook")) return "docbook";
    if (!strcmp(root, "article")) {
        /* DocBook 4 and JATS share the root name: JATS carries <front>/<article-meta> */
        size_t w = n - i < 65536 ? n - i : 65536;
        if (ci_contains(head + i, tag_len, "dtd-version") || ci_contains(head + i, tag_len, "article-type") ||
            ci_contains(head + i, w, "<article-meta") || ci_contains(head + i, w, "<front>"))
            return "jats";
        return "docbook";
    }
    for (int k = 0; html_roots[k]; k++)
        if (!strcasecmp(root, html_roots[k])) return "html";
    for (int k = 0; docbook_roots[k]; k++)
        if (!strcmp(root, docbook_roots[k])) return "docbook";
    if (!strcmp(root, "page")) return "mallard";
    return NULL;
}

/* ---- one in-memory document ---------------------------------------------------------------- */

static int hand_over(lqa_doc *doc, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    if (doc->text.len == 0) {
        int rc = lqa_err_set(err, "%s: no text found in the document, expected some content", doc->path);
        lqa_doc_free(doc);
        return rc;
    }
    sink(doc, ctx);
    lqa_doc_free(doc);
    return 0;
}

int lqa_xml_parse_buffer(const char *path, const char *data, size_t len, const char *format,
                         const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    const char *nul = memchr(data, '\0', len);
    if (nul)
        return lqa_err_set(err, "%s:%ld: binary data (a NUL byte at byte %zu), expected XML or HTML text", path,
                           line_at(data, (size_t)(nul - data)), (size_t)(nul - data));
    if (!format || !strcmp(format, "auto")) format = lqa_xml_sniff(data, len);
    if (!format) return lqa_err_set(err, "%s:1: not a known XML/HTML format, expected XHTML/HTML, DocBook, JATS, TEI or Mallard", path);
    if (!strcmp(format, "xhtml")) format = "html";
    int html = !strcmp(format, "html");
    if (!html && strcmp(format, "docbook") && strcmp(format, "jats") && strcmp(format, "tei") && strcmp(format, "mallard"))
        return lqa_err_set(err, "%s: format '%s' is not an in-memory XML format, expected html, docbook, jats, tei or mallard",
                           path, format);
    xmlDoc *x = html ? lqa_html_read(path, data, len, opts, err) : lqa_xml_read(path, data, len, opts, err);
    if (!x) return -1;
    lqa_doc doc;
    lqa_doc_init(&doc, path, format);
    xml_walk w;
    xw_init(&w, &doc, path, opts, html ? lqa_html_element : NULL);
    xmlNode *root = xmlDocGetRootElement(x);
    if (html) {
        w.html = 1;
        lqa_html_walk_page(&w, x, 1);
    } else if (!strcmp(format, "docbook")) {
        lqa_docbook_walk(&w, root);
    } else if (!strcmp(format, "jats")) {
        lqa_jats_walk(&w, root);
    } else if (!strcmp(format, "tei")) {
        lqa_tei_walk(&w, root);
    } else {
        lqa_mallard_walk(&w, root);
    }
    xw_finish(&w);
    xmlFreeDoc(x);
    return hand_over(&doc, sink, ctx, err);
}
