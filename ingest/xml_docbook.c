/* xml_docbook.c: DocBook 4 and 5 (namespaced or not): book/article title, nested sectioning
 * elements (chapter, appendix, section, sect1-sect5, refentry, glossary...) as sections,
 * CALS and HTML tables, variablelist and glossary entries as definitions, abstract. */
#include "ingest/xml_internal.h"

#include <string.h>

static const char *const sectioning[] = {"chapter", "appendix", "preface", "part", "section", "sect1", "sect2",
                                         "sect3", "sect4", "sect5", "simplesect", "refentry", "refsect1",
                                         "refsect2", "refsect3", "refsection", "glossary", "glossdiv",
                                         "bibliography", "colophon", "dedication", "article", "reference",
                                         "partintro", "acknowledgements", "topic", NULL};
static const char *const info_names[] = {"info", "bookinfo", "articleinfo", "chapterinfo", "sectioninfo",
                                         "sect1info", "sect2info", "sect3info", "prefaceinfo", "appendixinfo",
                                         "partinfo", "refentryinfo", "refmeta", "glossaryinfo", NULL};
static const char *const dropped[] = {"indexterm", "remark", "anchor", "co", "index", "toc", "lot", "footnote",
                                      "footnoteref", "refnamediv", "titleabbrev", "mediaobject", "inlinemediaobject",
                                      "imageobject", "bibliography", "setindex", NULL};

static xmlNode *info_of(xmlNode *n) {
    for (xmlNode *c = n->children; c; c = c->next)
        if (xn_is_any(c, info_names)) return c;
    return NULL;
}

/* The element's title: a direct <title>, else one in its info element (DocBook 5 / 4.x), else
 * a refentry's refentrytitle / refname. */
static xmlNode *title_of(xmlNode *n) {
    xmlNode *t = xn_child(n, "title");
    if (t) return t;
    xmlNode *info = info_of(n);
    if (info && (t = xn_child(info, "title"))) return t;
    if (xn_is(n, "refentry")) {
        xmlNode *meta = xn_child(n, "refmeta");
        if (meta && (t = xn_child(meta, "refentrytitle"))) return t;
        xmlNode *nd = xn_child(n, "refnamediv");
        if (nd && (t = xn_child(nd, "refname"))) return t;
    }
    return NULL;
}

/* Info elements contribute only their abstract. */
static void walk_info(xml_walk *w, xmlNode *info) {
    for (xmlNode *c = info->children; c; c = c->next)
        if (xn_is(c, "abstract")) xw_abstract(w, c);
}

static void varlistentry(xml_walk *w, xmlNode *e) {
    xmlNode *terms[16];
    int n = 0;
    xmlNode *def = NULL;
    for (xmlNode *c = e->children; c; c = c->next) {
        if ((xn_is(c, "term") || xn_is(c, "glossterm")) && n < 16) terms[n++] = c;
        else if (xn_is(c, "listitem") || xn_is(c, "glossdef")) def = def ? def : c;
    }
    if (def) xw_definition(w, terms, n, def);
    else xw_block(w, e);
}

static int docbook_element(xml_walk *w, xmlNode *n) {
    if (xn_is_any(n, dropped)) return 1;
    if (xn_is_any(n, info_names)) {
        walk_info(w, n);
        return 1;
    }
    if (xn_is_any(n, sectioning) && !w->in_abstract && !w->in_table) {
        xw_sectioned(w, n, xn_child(n, "title"), NULL); /* titles inside info: see below */
        return 1;
    }
    if (xn_is(n, "abstract")) {
        xw_abstract(w, n);
        return 1;
    }
    if (xn_is(n, "table") || xn_is(n, "informaltable")) {
        xmlNode *cap = xn_child(n, "title");
        if (!cap) cap = xn_child(n, "caption");
        xw_table(w, n, cap);
        return 1;
    }
    if (xn_is(n, "varlistentry") || xn_is(n, "glossentry")) {
        varlistentry(w, n);
        return 1;
    }
    return 0;
}

/* Sections titled from their info element need the title node passed explicitly. */
static int docbook_element_outer(xml_walk *w, xmlNode *n) {
    if (xn_is_any(n, sectioning) && !w->in_abstract && !w->in_table) {
        xmlNode *title = title_of(n);
        if (title && title->parent != n) {
            int saved = w->level;
            int level = w->level + 1;
            int opened = xw_section_from(w, level, title, NULL) >= 0;
            if (opened) w->level = level;
            xw_block(w, n); /* info elements are walked for their abstract only */
            if (opened) lqa_db_close_sections(&w->b, level);
            w->level = saved;
            return 1;
        }
    }
    return docbook_element(w, n);
}

void lqa_docbook_walk(xml_walk *w, xmlNode *root) {
    w->element = docbook_element_outer;
    /* a book, set or article is the document: its title is the doc title, its parts and
     * chapters are the top-level sections */
    if (xn_is(root, "book") || xn_is(root, "set") || xn_is(root, "article")) {
        xmlNode *title = title_of(root);
        if (title) {
            lqa_buf t = {0};
            xn_text(title, &t);
            lqa_db_title(&w->b, t.data, t.len);
            lqa_buf_free(&t);
        }
        for (xmlNode *c = root->children; c; c = c->next)
            if (c != title) xw_node(w, c);
        return;
    }
    xw_node(w, root);
}
