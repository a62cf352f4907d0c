/* xml_walk.c: the tree walker shared by the XML-family formats: node helpers, generic rules
 * (skipped elements, block vs inline, preformatted text, entity references) and the common
 * structures (sections, tables, definitions, abstract) written through the document builder. */
#include "ingest/xml_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- node helpers ---------------------------------------------------------------------------- */

int xn_is(const xmlNode *n, const char *name) {
    return n && n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, name) == 0;
}

int xn_is_any(const xmlNode *n, const char *const *names) {
    if (!n || n->type != XML_ELEMENT_NODE || !n->name) return 0;
    for (int i = 0; names[i]; i++)
        if (strcmp((const char *)n->name, names[i]) == 0) return 1;
    return 0;
}

const char *xn_attr(const xmlNode *n, const char *name) {
    if (!n || n->type != XML_ELEMENT_NODE) return NULL;
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (a->name && strcmp((const char *)a->name, name) == 0) {
            const xmlNode *v = a->children;
            if (v && v->type == XML_TEXT_NODE && !v->next) return (const char *)v->content;
            return ""; /* empty, or split by entity references: present but not plain text */
        }
    }
    return NULL;
}

int xn_has_class(const xmlNode *n, const char *token) {
    const char *cls = xn_attr(n, "class");
    if (!cls) return 0;
    size_t k = strlen(token);
    for (const char *p = cls; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if ((size_t)(p - s) == k && strncmp(s, token, k) == 0) return 1;
    }
    return 0;
}

xmlNode *xn_child(const xmlNode *n, const char *name) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (xn_is(c, name)) return c;
    return NULL;
}


/* ---- generic rules --------------------------------------------------------------------------- */

static const char *const always_skipped[] = {"script", "style", "noscript", "template", "iframe", "object",
                                             "button", "select", "textarea", NULL};
static const char *const html_skipped[] = {"head", "nav", "footer", NULL};
/* Navigation chrome of DocBook-XSL, Sphinx, texinfo and common themes, and permalink anchors. */
static const char *const chrome_classes[] = {"navheader", "navfooter", "sphinxsidebar", "related", "nav-panel",
                                             "headerlink", "toc", "list-of-tables", "list-of-figures",
                                             "list-of-examples", "breadcrumbs", "navigation", "menu", "footer",
                                             "header", "skip-link", "sidebar-nav", NULL};

static const char *const block_names[] = {
    "p", "para", "simpara", "formalpara", "div", "section", "sec", "article", "aside", "li", "listitem", "item",
    "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "programlisting", "screen", "literallayout", "synopsis",
    "address", "figure", "fig", "caption", "table-wrap", "note", "tip", "warning", "important", "caution",
    "sidebar", "example", "informalexample", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "tr", "title", "header",
    "main", "body", "center", "list", "list-item", "def-list", "disp-quote", "boxed-text", "lg", "l", "figDesc",
    "head", "steps", "terms", "tree", "table", "thead", "tbody", "tfoot", "row", "itemizedlist", "orderedlist",
    "variablelist", "segmentedlist", "simplelist", "member", "step", "procedure", "question", "answer",
    "bridgehead", "epigraph", "attribution", "subtitle", "label", "disp-formula", "statement", "desc",
    "code-block", NULL};

/* Element names and class tokens looked up once per element: a small hash table of flags,
 * built on first use (a linear scan of the lists above cost a fifth of HTML parsing time). */
enum {
    NF_SKIP = 1, NF_SKIP_HTML = 2, NF_CHROME = 4, NF_BLOCK = 8, NF_PRE = 16, NF_ROW = 32, NF_CELL = 64,
};
#define NAME_SLOTS 1024
static struct { const char *key; unsigned flags; } name_table[NAME_SLOTS];
static pthread_once_t name_once = PTHREAD_ONCE_INIT;

static unsigned name_hash(const char *s, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void name_add(const char *const *list, unsigned flag) {
    for (int i = 0; list[i]; i++) {
        unsigned h = name_hash(list[i], strlen(list[i])) % NAME_SLOTS;
        while (name_table[h].key && strcmp(name_table[h].key, list[i]) != 0) h = (h + 1) % NAME_SLOTS;
        name_table[h].key = list[i];
        name_table[h].flags |= flag;
    }
}

static const char *const pre_names[] = {"pre", "programlisting", "screen", "literallayout", "synopsis", NULL};
static const char *const row_names[] = {"tr", "row", NULL};
static const char *const cell_names[] = {"td", "th", "entry", "cell", "entrytbl", NULL};

static void name_init(void) {
    name_add(always_skipped, NF_SKIP);
    name_add(html_skipped, NF_SKIP_HTML);
    name_add(chrome_classes, NF_CHROME);
    name_add(block_names, NF_BLOCK);
    name_add(pre_names, NF_PRE);
    name_add(row_names, NF_ROW);
    name_add(cell_names, NF_CELL);
}

static unsigned flags_of(const char *s, size_t n) {
    pthread_once(&name_once, name_init);
    unsigned h = name_hash(s, n) % NAME_SLOTS;
    while (name_table[h].key) {
        if (strncmp(name_table[h].key, s, n) == 0 && name_table[h].key[n] == '\0') return name_table[h].flags;
        h = (h + 1) % NAME_SLOTS;
    }
    return 0;
}

static unsigned elem_flags(const xmlNode *n) {
    if (!n || n->type != XML_ELEMENT_NODE || !n->name) return 0;
    return flags_of((const char *)n->name, strlen((const char *)n->name));
}

static int is_chrome(const xmlNode *n) {
    const char *cls = xn_attr(n, "class");
    if (!cls) return 0;
    for (const char *p = cls; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *t = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (p > t && (flags_of(t, (size_t)(p - t)) & NF_CHROME)) return 1;
    }
    return 0;
}

int xw_skipped(const xml_walk *w, const xmlNode *n) {
    unsigned f = elem_flags(n);
    if (f & NF_SKIP) return 1;
    if (w && w->html && ((f & NF_SKIP_HTML) || is_chrome(n))) return 1;
    return 0;
}

int xw_is_block(const xmlNode *n) { return (elem_flags(n) & NF_BLOCK) != 0; }

/* ---- text of a subtree (titles, table cells) -------------------------------------------------- */

/* The text of a simple internal entity (no markup, no further references, short), or NULL:
 * the only entity text we ever use, so nothing is expanded recursively or loaded. */
static const xmlEntity *simple_entity(const xmlNode *ref) {
    xmlEntity *ent = ref->doc ? xmlGetDocEntity(ref->doc, ref->name) : NULL;
    if (ent && ent->etype == XML_INTERNAL_GENERAL_ENTITY && ent->content &&
        !strpbrk((const char *)ent->content, "&<") && ent->length < 4096)
        return ent;
    return NULL;
}

const char *xn_seq_separator(const xmlNode *n) {
    if (xn_is(n, "keyseq")) { /* Mallard: join="...", type="sequence" (keys one after another) or a combo */
        const char *join = xn_attr(n, "join"), *type = xn_attr(n, "type");
        return join ? join : type && !strcmp(type, "sequence") ? " " : "+";
    }
    if (xn_is(n, "keycombo")) { /* DocBook: action="seq" or a combination */
        const char *action = xn_attr(n, "action");
        return action && !strcmp(action, "seq") ? " " : "+";
    }
    if (xn_is(n, "guiseq") || xn_is(n, "menuchoice")) return " \xe2\x96\xb8 "; /* File ▸ Open */
    return NULL;
}

static int blank_text(const xmlNode *c) {
    if (c->type != XML_TEXT_NODE || !c->content) return 1;
    for (const xmlChar *p = c->content; *p; p++)
        if (!strchr(" \t\r\n", *p)) return 0;
    return 1;
}

static void text_rec(const xmlNode *n, lqa_buf *out, int html) {
    const char *sep = xn_seq_separator(n);
    if (sep) { /* the items of a key combination or menu path, with their separator */
        int first = 1;
        for (const xmlNode *c = n->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE && blank_text(c)) continue;
            if (!first) lqa_buf_puts(out, sep);
            if (c->type == XML_ELEMENT_NODE) text_rec(c, out, html);
            else lqa_buf_puts(out, (const char *)c->content);
            first = 0;
        }
        return;
    }
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content) lqa_buf_puts(out, (const char *)c->content);
        } else if (c->type == XML_ENTITY_REF_NODE) {
            const xmlEntity *ent = simple_entity(c);
            if (ent) lqa_buf_append(out, ent->content, (size_t)ent->length);
        } else if (c->type == XML_ELEMENT_NODE) {
            if ((elem_flags(c) & NF_SKIP) || (html && is_chrome(c)) || xn_is(c, "indexterm") ||
                xn_is(c, "footnote") || xn_is(c, "fn"))
                continue;
            int block = xw_is_block(c) || xn_is(c, "br") || xn_is(c, "td") || xn_is(c, "th") || xn_is(c, "entry");
            if (block) lqa_buf_putc(out, ' ');
            text_rec(c, out, html);
            if (block) lqa_buf_putc(out, ' ');
        }
    }
}

void xn_text(const xmlNode *n, lqa_buf *out) {
    if (!n) return;
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (n->content) lqa_buf_puts(out, (const char *)n->content);
        return;
    }
    text_rec(n, out, 1); /* chrome classes only occur in HTML, whichever parser built it */
}

/* ---- walking --------------------------------------------------------------------------------- */

void xw_init(xml_walk *w, lqa_doc *doc, const char *path, const lqa_parse_opts *opts, xml_elem_fn element) {
    memset(w, 0, sizeof *w);
    w->doc = doc;
    w->path = path;
    w->opts = opts;
    w->element = element;
    lqa_db_init(&w->b, doc);
}

/* Preformatted text keeps its lines (each line cleaned on its own). */
/* Preformatted text keeps its line breaks and indentation (trailing blanks of a line dropped). */
static void pre_text(xml_walk *w, const char *s) {
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (nl)
            while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
        lqa_db_verbatim(&w->b, s, n);
        if (!nl) break;
        lqa_db_line(&w->b);
        s = nl + 1;
    }
}

/* An entity reference left unexpanded (we never substitute entities): the text of a simple
 * internal entity (no markup, no further references) is written, anything else is dropped. */
static void entity_ref(xml_walk *w, xmlNode *n) {
    const xmlEntity *simple = simple_entity(n);
    if (simple) {
        lqa_db_text(&w->b, (const char *)simple->content, (size_t)simple->length);
        return;
    }
    xmlEntity *ent = n->doc ? xmlGetDocEntity(n->doc, n->name) : NULL;
    if (w->entity_refs_dropped++ == 0)
        lqa_parse_warn(w->opts, "%s:%ld: entity reference &%s; not expanded (%s entity; external and nested entities are "
                              "never loaded)",
                     w->path, xmlGetLineNo(n->parent ? n->parent : n), (const char *)n->name,
                     !ent ? "undeclared" : ent->etype == XML_INTERNAL_GENERAL_ENTITY ? "nested" : "external");
}

void xw_node(xml_walk *w, xmlNode *n) {
    switch (n->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        if (!n->content) return;
        if (w->in_pre) pre_text(w, (const char *)n->content);
        else lqa_db_text(&w->b, (const char *)n->content, strlen((const char *)n->content));
        return;
    case XML_ENTITY_REF_NODE:
        entity_ref(w, n);
        return;
    case XML_ELEMENT_NODE:
        break;
    default:
        return; /* comments, processing instructions, DTD nodes */
    }
    if (xw_skipped(w, n)) return;
    if (w->element && w->element(w, n)) return;
    if (xn_is(n, "br")) {
        lqa_db_line(&w->b);
        return;
    }
    const char *sep = xn_seq_separator(n);
    if (sep) { /* Ctrl+P, not CtrlP; File ▸ Open */
        int first = 1;
        for (xmlNode *c = n->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE && blank_text(c)) continue;
            if (!first) lqa_db_puts(&w->b, sep);
            xw_node(w, c);
            first = 0;
        }
        return;
    }
    if (elem_flags(n) & NF_PRE) {
        lqa_db_para(&w->b);
        w->in_pre++;
        xw_children(w, n);
        w->in_pre--;
        lqa_db_para(&w->b);
        return;
    }
    int block = xw_is_block(n);
    if (block) lqa_db_para(&w->b);
    else if (xn_is(n, "td") || xn_is(n, "th") || xn_is(n, "entry") || xn_is(n, "cell")) lqa_db_space(&w->b);
    xw_children(w, n);
    if (block) lqa_db_para(&w->b);
}

void xw_children(xml_walk *w, xmlNode *n) {
    for (xmlNode *c = n->children; c; c = c->next) xw_node(w, c);
}

void xw_block(xml_walk *w, xmlNode *n) {
    lqa_db_para(&w->b);
    xw_children(w, n);
    lqa_db_para(&w->b);
}

/* ---- sections -------------------------------------------------------------------------------- */

int xw_section_from(xml_walk *w, int level, const xmlNode *title_node, const char *label) {
    lqa_buf t = {0};
    if (label && label[0]) {
        lqa_buf_puts(&t, label);
        lqa_buf_putc(&t, ' ');
    }
    xn_text(title_node, &t);
    int idx = lqa_db_section(&w->b, level, t.data ? t.data : "", t.len);
    lqa_buf_free(&t);
    return idx;
}

void xw_sectioned_at(xml_walk *w, xmlNode *n, const xmlNode *title_node, const char *label, int level) {
    int saved = w->level;
    int opened = title_node ? xw_section_from(w, level, title_node, label) >= 0 : 0;
    if (opened) w->level = level;
    lqa_db_para(&w->b);
    for (xmlNode *c = n->children; c; c = c->next)
        if (c != title_node) xw_node(w, c);
    if (opened) lqa_db_close_sections(&w->b, level);
    lqa_db_para(&w->b);
    w->level = saved;
}

void xw_sectioned(xml_walk *w, xmlNode *n, const xmlNode *title_node, const char *label) {
    xw_sectioned_at(w, n, title_node, label, w->level + 1);
}

/* ---- tables ---------------------------------------------------------------------------------- */

static int attr_int(const xmlNode *n, const char *name, int dflt) {
    const char *v = xn_attr(n, name);
    if (!v || !isdigit((unsigned char)*v)) return dflt;
    long x = strtol(v, NULL, 10);
    return x < 0 ? dflt : x > 100000 ? 100000 : (int)x;
}

/* Trailing number of a CALS column name ("c3", "col3" -> 3), or -1. */
static int colname_number(const char *s) {
    if (!s) return -1;
    size_t n = strlen(s), i = n;
    while (i > 0 && isdigit((unsigned char)s[i - 1])) i--;
    return i < n && n - i < 6 ? atoi(s + i) : -1;
}

static void cell_spans(const xmlNode *c, int *colspan, int *rowspan) {
    *colspan = attr_int(c, "colspan", 0);
    if (!*colspan) *colspan = attr_int(c, "cols", 1);         /* TEI */
    *rowspan = attr_int(c, "rowspan", 0);
    if (!*rowspan) *rowspan = attr_int(c, "rows", 1);         /* TEI */
    if (xn_attr(c, "morerows")) *rowspan = 1 + attr_int(c, "morerows", 0); /* CALS */
    int a = colname_number(xn_attr(c, "namest")), b = colname_number(xn_attr(c, "nameend"));
    if (a > 0 && b >= a) *colspan = b - a + 1;
}

static void table_row(xml_walk *w, xmlNode *row) {
    lqa_db_table_row(&w->b);
    lqa_buf text = {0};
    for (xmlNode *c = row->children; c; c = c->next) {
        if (!(elem_flags(c) & NF_CELL)) continue;
        int colspan, rowspan;
        cell_spans(c, &colspan, &rowspan);
        lqa_buf_clear(&text);
        xn_text(c, &text);
        lqa_db_table_cell(&w->b, text.data ? text.data : "", text.len, colspan, rowspan);
    }
    lqa_buf_free(&text);
}

static void table_rows(xml_walk *w, xmlNode *n, const xmlNode *caption) {
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || c == caption) continue;
        if (elem_flags(c) & NF_ROW) table_row(w, c);
        else if (xn_is(c, "thead") || xn_is(c, "tbody") || xn_is(c, "tfoot") || xn_is(c, "tgroup"))
            table_rows(w, c, caption);
    }
}

/* A header row: a thead (HTML, CALS, Mallard), a first row of th cells only (HTML) or a first
 * row with role="label" (TEI). */
static const xmlNode *first_row(const xmlNode *n, const xmlNode *caption, int *thead) {
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || c == caption) continue;
        if (xn_is(c, "thead")) *thead = 1;
        if (elem_flags(c) & NF_ROW) return c;
        if (xn_is(c, "thead") || xn_is(c, "tbody") || xn_is(c, "tgroup")) {
            const xmlNode *r = first_row(c, caption, thead);
            if (r || *thead) return r;
        }
    }
    return NULL;
}

static int has_header(const xmlNode *table, const xmlNode *caption) {
    int thead = 0, cells = 0, th = 0;
    const xmlNode *row = first_row(table, caption, &thead);
    if (thead) return 1;
    if (!row) return 0;
    const char *role = xn_attr(row, "role");
    if (role && !strcmp(role, "label")) return 1;
    for (const xmlNode *c = row->children; c; c = c->next)
        if (elem_flags(c) & NF_CELL) cells++, th += xn_is(c, "th");
    return cells > 0 && th == cells;
}

void xw_table(xml_walk *w, xmlNode *table, const xmlNode *caption_node) {
    if (w->in_table) { /* a table inside a recorded table's cell is part of that cell's text */
        xw_block(w, table);
        return;
    }
    lqa_buf cap = {0};
    if (caption_node) xn_text(caption_node, &cap);
    lqa_db_table_begin(&w->b, cap.data, cap.len);
    lqa_buf_free(&cap);
    if (!has_header(table, caption_node)) lqa_db_table_no_header(&w->b);
    w->in_table++;
    table_rows(w, table, caption_node);
    w->in_table--;
    lqa_db_table_end(&w->b);
}

/* ---- definitions and abstract ----------------------------------------------------------------- */

void xw_definition(xml_walk *w, xmlNode **terms, int n_terms, xmlNode *def) {
    lqa_db_para(&w->b);
    size_t ts = lqa_db_start(&w->b);
    for (int i = 0; i < n_terms; i++) {
        if (i > 0) lqa_db_puts(&w->b, ", ");
        xw_children(w, terms[i]);
    }
    lqa_span tsp = lqa_db_span_from(&w->b, ts);
    ts = tsp.start;
    size_t te = tsp.end;
    lqa_db_line(&w->b);
    size_t ds = lqa_db_start(&w->b);
    for (xmlNode *c = def ? def->children : NULL; c; c = c->next) {
        int is_term = 0;
        for (int i = 0; i < n_terms; i++) is_term |= c == terms[i];
        if (!is_term) xw_node(w, c);
    }
    lqa_span def_span = lqa_db_span_from(&w->b, ds);
    /* a term is one line (a term holding blocks is no key a question can quote) */
    int one_line = te > ts && !memchr(w->doc->text.data + ts, '\n', te - ts);
    if (one_line && def_span.end > def_span.start) {
        /* the term is the text as written, so term == text at term_span */
        char *term = lqa_strndup(w->doc->text.data + ts, te - ts);
        lqa_db_definition(&w->b, term, te - ts, (lqa_span){ts, te}, def_span);
        free(term);
    }
    lqa_db_para(&w->b);
}

void xw_abstract(xml_walk *w, xmlNode *n) {
    lqa_db_para(&w->b);
    size_t s = lqa_db_start(&w->b);
    w->in_abstract++;
    for (xmlNode *c = n->children; c; c = c->next)
        if (!xn_is(c, "title") && !xn_is(c, "label")) xw_node(w, c);
    w->in_abstract--;
    lqa_db_abstract(&w->b, lqa_db_span_from(&w->b, s));
    lqa_db_para(&w->b);
}

/* ---- finishing ------------------------------------------------------------------------------- */

void xw_finish(xml_walk *w) {
    lqa_db_finish(&w->b);
    lqa_db_number_passages(&w->b);
    if (!w->doc->title) {
        const char *base = strrchr(w->path, '/');
        w->doc->title = lqa_strdup(base ? base + 1 : w->path);
    }
    if (w->entity_refs_dropped > 1)
        lqa_parse_warn(w->opts, "%s: %ld entity references not expanded in all", w->path, w->entity_refs_dropped);
}
