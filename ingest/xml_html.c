/* xml_html.c: HTML and XHTML pages (plain, Sphinx, texinfo and DocBook-XSL output): title and
 * meta description from the head, h1-h6 as sections, tables (with DocBook-XSL's "Table N.M"
 * titles as captions), dl/dt/dd definitions, preformatted blocks; navigation chrome skipped
 * by the walker's generic rules. */
#include "ingest/xml_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* DocBook-XSL wraps a formal table as <div class="table"><p class="title"><b>Table 9.1. ...
 * </b></p><div class="table-contents"><table>...</table></div></div>. */
static xmlNode *find_table(xmlNode *n, int depth) {
    for (xmlNode *c = n->children; c && depth < 4; c = c->next) {
        if (xn_is(c, "table")) return c;
        if (c->type == XML_ELEMENT_NODE) {
            xmlNode *t = find_table(c, depth + 1);
            if (t) return t;
        }
    }
    return NULL;
}

static int docbook_xsl_table(xml_walk *w, xmlNode *n) {
    xmlNode *table = find_table(n, 0);
    if (!table) return 0;
    xmlNode *title = NULL;
    for (xmlNode *c = n->children; c; c = c->next)
        if (xn_is(c, "p") && xn_has_class(c, "title")) title = c;
    xw_table(w, table, title ? title : xn_child(table, "caption"));
    /* other content of the wrapper (footnotes of the table) */
    for (xmlNode *c = n->children; c; c = c->next)
        if (c != title && !(c->type == XML_ELEMENT_NODE && find_table(c, 0)) && c != table) xw_node(w, c);
    return 1;
}

/* dl: consecutive dt's name the dd that follows them. */
static void definition_list(xml_walk *w, xmlNode *dl) {
    xmlNode *terms[16];
    int n_terms = 0;
    for (xmlNode *c = dl->children; c; c = c->next) {
        if (xn_is(c, "dt")) {
            if (n_terms < 16) terms[n_terms++] = c;
        } else if (xn_is(c, "dd")) {
            xw_definition(w, terms, n_terms, c);
            n_terms = 0;
        } else if (xn_is(c, "div")) { /* HTML5 allows dt/dd grouped in div */
            definition_list(w, c);
        } else {
            xw_node(w, c);
        }
    }
    for (int i = 0; i < n_terms; i++) xw_block(w, terms[i]); /* terms with no definition */
}

/* DocBook-XSL titles all chunks' headings h1/h2 whatever their depth; the level is in the
 * class of the division around the heading's div.titlepage. */
static const struct { const char *cls; int level; } xsl_levels[] = {
    {"set", 1}, {"book", 1}, {"part", 2}, {"chapter", 3}, {"appendix", 3}, {"preface", 3}, {"reference", 3},
    {"article", 3}, {"glossary", 3}, {"bibliography", 3}, {"index", 3}, {"sect1", 4}, {"refentry", 4},
    {"sect2", 5}, {"refsect1", 5}, {"sect3", 6}, {"refsect2", 6}, {"sect4", 7}, {"sect5", 8}, {NULL, 0}};

static int xsl_class_level(const xmlNode *div) {
    for (int i = 0; xsl_levels[i].cls; i++)
        if (xn_has_class(div, xsl_levels[i].cls)) return xsl_levels[i].level;
    return 0;
}

static int is_xsl_section(const xmlNode *div) {
    return xn_is(div, "div") && (xn_has_class(div, "section") || xn_has_class(div, "simplesect"));
}

static int docbook_xsl_level(const xmlNode *h) {
    const xmlNode *p = h->parent;
    for (int up = 0; p && up < 5 && !(xn_is(p, "div") && xn_has_class(p, "titlepage")); up++) p = p->parent;
    if (!p || !xn_is(p, "div") || !xn_has_class(p, "titlepage")) return 0;
    const xmlNode *division = p->parent;
    if (!division || !xn_is(division, "div")) return 0;
    if (!is_xsl_section(division)) return xsl_class_level(division);
    /* "section" divisions nest: the container's level + the depth of sections */
    int depth = 0;
    for (const xmlNode *q = division; q && q->type == XML_ELEMENT_NODE; q = q->parent) {
        if (is_xsl_section(q)) depth++;
        else if (xn_is(q, "div") && xsl_class_level(q)) return xsl_class_level(q) + depth;
    }
    return 3 + depth;
}

static int in_admonition(const xmlNode *h) {
    static const char *const kinds[] = {"note", "tip", "warning", "caution", "important", "sidebar", "admonition",
                                        NULL};
    for (const xmlNode *p = h->parent; p && p->type == XML_ELEMENT_NODE; p = p->parent)
        for (int i = 0; kinds[i]; i++)
            if (xn_has_class(p, kinds[i])) return 1;
    return 0;
}

int lqa_html_element(xml_walk *w, xmlNode *n) {
    const char *name = (const char *)n->name;
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && name[2] == '\0') {
        if (w->in_table || in_admonition(n)) return 0; /* a note's title is no section */
        int level = docbook_xsl_level(n);
        if (level && !xn_has_class(n, "title")) return 0; /* author, subtitle lines of a title page */
        xw_section_from(w, level ? level : name[1] - '0', n, NULL);
        return 1;
    }
    if (xn_is(n, "table")) {
        xw_table(w, n, xn_child(n, "caption"));
        return 1;
    }
    if (xn_is(n, "div") && (xn_has_class(n, "table") || xn_has_class(n, "informaltable")) && !w->in_table)
        return docbook_xsl_table(w, n);
    if (xn_is(n, "dl")) {
        lqa_db_para(&w->b);
        definition_list(w, n);
        lqa_db_para(&w->b);
        return 1;
    }
    if (xn_is(n, "img") || xn_is(n, "svg") || xn_is(n, "math") || xn_is(n, "form")) return 1;
    return 0;
}

/* texinfo repeats the page title as the description: that is no abstract. */
static int same_as_title(xml_walk *w, const char *content) {
    if (!w->doc->title) return 0;
    lqa_buf c = {0};
    lqa_db_clean(content, strlen(content), &c);
    int same = strcmp(c.data, w->doc->title) == 0;
    lqa_buf_free(&c);
    return same;
}

/* The head: title, and the meta description written as the first paragraph and recorded as
 * the abstract. */
static void page_head(xml_walk *w, xmlNode *head) {
    lqa_buf t = {0};
    for (xmlNode *c = head ? head->children : NULL; c; c = c->next) {
        if (xn_is(c, "title") && !w->doc->title) {
            lqa_buf_clear(&t);
            xn_text(c, &t);
            lqa_db_title(&w->b, t.data, t.len);
        } else if (xn_is(c, "meta")) {
            const char *name = xn_attr(c, "name");
            const char *content = xn_attr(c, "content");
            if (name && content && (!strcasecmp(name, "description") || !strcasecmp(name, "dc.description")) &&
                !same_as_title(w, content)) {
                lqa_db_para(&w->b);
                size_t s = lqa_db_start(&w->b);
                lqa_db_puts(&w->b, content);
                lqa_db_abstract(&w->b, (lqa_span){s, lqa_db_end(&w->b)});
                lqa_db_para(&w->b);
            }
        }
    }
    lqa_buf_free(&t);
}

void lqa_html_walk_page(xml_walk *w, xmlDoc *doc, int with_head) {
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root) return;
    xmlNode *html = xn_is(root, "html") ? root : NULL;
    xmlNode *head = html ? xn_child(html, "head") : NULL;
    xmlNode *body = html ? xn_child(html, "body") : NULL;
    if (with_head) page_head(w, head);
    w->html = 1;
    if (body) xw_children(w, body);
    else xw_node(w, root); /* a fragment: the walker skips head by rule */
    lqa_db_para(&w->b);
}
