/* xml_mallard.c: Mallard help pages (GNOME/yelp): page title, info/desc as the abstract,
 * nested sections, terms/item/title definitions, tables; links, credits and revisions in
 * info are skipped; of a conditional if:choose only one branch is kept (if:else, else the
 * first if:when), so alternative texts for other platforms do not both appear. */
#include "ingest/xml_internal.h"

#include <string.h>

static const char *const dropped[] = {"links", "media", "comment", "credit", "revision", "license", NULL};

static int mallard_element(xml_walk *w, xmlNode *n);

/* An element of Mallard's conditional namespace (if:choose, if:when, if:else). */
static int is_conditional(const xmlNode *n) {
    return n->ns && n->ns->href && strstr((const char *)n->ns->href, "projectmallard.org/if/");
}

/* page or section: title (section), info/desc (page: the abstract), then the body. */
static void sectioned(xml_walk *w, xmlNode *n, int is_page) {
    xmlNode *title = xn_child(n, "title");
    xmlNode *info = xn_child(n, "info");
    int saved = w->level, level = w->level + 1;
    int opened = title ? xw_section_from(w, level, title, NULL) >= 0 : 0;
    if (opened) w->level = level;
    if (is_page && info) {
        xmlNode *desc = xn_child(info, "desc");
        if (desc) xw_abstract(w, desc);
    }
    lqa_db_para(&w->b);
    for (xmlNode *c = n->children; c; c = c->next)
        if (c != title && c != info) xw_node(w, c);
    if (opened) lqa_db_close_sections(&w->b, level);
    lqa_db_para(&w->b);
    w->level = saved;
}

static int mallard_element(xml_walk *w, xmlNode *n) {
    if (xn_is_any(n, dropped) || xn_is(n, "info")) return 1;
    if (xn_is(n, "section") && !w->in_table) {
        sectioned(w, n, 0);
        return 1;
    }
    if (xn_is(n, "terms")) {
        lqa_db_para(&w->b);
        for (xmlNode *c = n->children; c; c = c->next) {
            if (!xn_is(c, "item")) {
                xw_node(w, c);
                continue;
            }
            xmlNode *terms[8];
            int k = 0;
            for (xmlNode *t = c->children; t; t = t->next)
                if (xn_is(t, "title") && k < 8) terms[k++] = t;
            if (k) xw_definition(w, terms, k, c);
            else xw_block(w, c);
        }
        lqa_db_para(&w->b);
        return 1;
    }
    if (xn_is(n, "table")) {
        xw_table(w, n, xn_child(n, "title"));
        return 1;
    }
    if (xn_is(n, "choose") && is_conditional(n)) { /* one branch: if:else, else the first if:when */
        xmlNode *branch = NULL;
        for (xmlNode *c = n->children; c; c = c->next)
            if (xn_is(c, "else") || (!branch && xn_is(c, "when"))) branch = c;
        if (branch) xw_children(w, branch);
        return 1;
    }
    if ((xn_is(n, "code") || xn_is(n, "screen")) && !(n->parent && xn_is(n->parent, "p"))) {
        lqa_db_para(&w->b);
        w->in_pre++;
        xw_children(w, n);
        w->in_pre--;
        lqa_db_para(&w->b);
        return 1;
    }
    return 0;
}

void lqa_mallard_walk(xml_walk *w, xmlNode *root) {
    w->element = mallard_element;
    if (xn_is(root, "page")) {
        xmlNode *title = xn_child(root, "title");
        if (!title) {
            xmlNode *info = xn_child(root, "info");
            title = info ? xn_child(info, "title") : NULL;
        }
        if (title) {
            lqa_buf t = {0};
            xn_text(title, &t);
            lqa_db_title(&w->b, t.data, t.len);
            lqa_buf_free(&t);
        }
        sectioned(w, root, 1);
        return;
    }
    xw_node(w, root);
}
