/* xml_jats.c: JATS / NLM articles (PubMed Central): article-title as the title, abstract,
 * body sec/title (with their label, "2.1") as sections, table-wrap tables with their label
 * and caption, def-list definitions; the reference list and front matter besides the title
 * and abstract are skipped. */
#include "ingest/xml_internal.h"

#include <string.h>

static const char *const dropped[] = {"ref-list", "journal-meta", "fn-group", "fn", "tex-math", "math",
                                      "graphic", "inline-graphic", "media", "alternatives", "permissions",
                                      "contrib-group", "aff", "history", "pub-date", "article-categories",
                                      "kwd-group", "funding-group", "author-notes", "counts", "custom-meta-group",
                                      "object-id", "ref", "sub-article", "response", "processing-meta", NULL};

static void label_text(const xmlNode *n, char *out, size_t cap) {
    out[0] = '\0';
    xmlNode *label = xn_child(n, "label");
    if (!label) return;
    lqa_buf t = {0};
    xn_text(label, &t);
    lqa_buf c = {0};
    lqa_db_clean(t.data, t.len, &c);
    snprintf(out, cap, "%s", c.data ? c.data : "");
    lqa_buf_free(&t);
    lqa_buf_free(&c);
}

static void article_meta(xml_walk *w, xmlNode *meta) {
    xmlNode *tg = xn_child(meta, "title-group");
    xmlNode *title = tg ? xn_child(tg, "article-title") : NULL;
    if (title) {
        lqa_buf t = {0};
        xn_text(title, &t);
        lqa_db_title(&w->b, t.data, t.len);
        lqa_buf_free(&t);
    }
    for (xmlNode *c = meta->children; c; c = c->next) {
        if (!xn_is(c, "abstract") && !xn_is(c, "trans-abstract")) continue;
        const char *type = xn_attr(c, "abstract-type");
        if (type && (!strcmp(type, "graphical") || !strcmp(type, "toc"))) continue;
        xw_abstract(w, c);
    }
}

/* table-wrap: "Table 2" label and caption title/p as the caption, the table inside. */
static void table_wrap(xml_walk *w, xmlNode *tw) {
    xmlNode *table = xn_child(tw, "table");
    if (!table) { /* a table given only as an image: keep the caption text */
        xw_block(w, tw);
        return;
    }
    xmlNode *caption = xn_child(tw, "caption");
    /* the caption as one synthetic node is awkward in libxml2: use label + caption text */
    lqa_buf cap = {0};
    xmlNode *label = xn_child(tw, "label");
    if (label) xn_text(label, &cap), lqa_buf_puts(&cap, ". ");
    if (caption) xn_text(caption, &cap);
    xmlNode *tmp = xmlNewDocText(tw->doc, (const xmlChar *)(cap.data ? cap.data : ""));
    mallocCheck(tmp);
    xw_table(w, table, tmp);
    xmlFreeNode(tmp);
    lqa_buf_free(&cap);
    xmlNode *foot = xn_child(tw, "table-wrap-foot");
    if (foot) xw_block(w, foot);
}

static int jats_element(xml_walk *w, xmlNode *n) {
    if (xn_is_any(n, dropped)) return 1;
    if (xn_is(n, "front")) {
        xmlNode *meta = xn_child(n, "article-meta");
        if (meta) article_meta(w, meta);
        return 1;
    }
    if ((xn_is(n, "sec") || xn_is(n, "app") || xn_is(n, "ack")) && !w->in_abstract && !w->in_table) {
        char label[64];
        label_text(n, label, sizeof label);
        xmlNode *title = xn_child(n, "title");
        int saved = w->level, level = w->level + 1;
        int opened = title ? xw_section_from(w, level, title, label) >= 0 : 0;
        if (opened) w->level = level;
        lqa_db_para(&w->b);
        for (xmlNode *c = n->children; c; c = c->next)
            if (c != title && !xn_is(c, "label")) xw_node(w, c);
        if (opened) lqa_db_close_sections(&w->b, level);
        lqa_db_para(&w->b);
        w->level = saved;
        return 1;
    }
    if (xn_is(n, "table-wrap")) {
        table_wrap(w, n);
        return 1;
    }
    if (xn_is(n, "table")) {
        xw_table(w, n, NULL);
        return 1;
    }
    if (xn_is(n, "def-item")) {
        xmlNode *terms[8];
        int k = 0;
        xmlNode *def = NULL;
        for (xmlNode *c = n->children; c; c = c->next) {
            if (xn_is(c, "term") && k < 8) terms[k++] = c;
            else if (xn_is(c, "def") && !def) def = c;
        }
        if (def) xw_definition(w, terms, k, def);
        else xw_block(w, n);
        return 1;
    }
    return 0;
}

void lqa_jats_walk(xml_walk *w, xmlNode *root) {
    w->element = jats_element;
    /* front first (title, abstract), then body, back, floats in document order */
    for (xmlNode *c = root->children; c; c = c->next) xw_node(w, c);
}
