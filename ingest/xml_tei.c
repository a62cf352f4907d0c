/* xml_tei.c: TEI, as GROBID writes it for papers: teiHeader title and abstract, body
 * div/head (head@n "2.1" gives the label and the level) as sections, tables in
 * figure[@type=table] (head + figDesc as caption); the bibliography is skipped. */
#include "ingest/xml_internal.h"

#include <string.h>

static const char *const dropped[] = {"listBibl", "note", "facsimile", "graphic", "formula-label", "pb", NULL};

static void tei_header(xml_walk *w, xmlNode *h) {
    xmlNode *fd = xn_child(h, "fileDesc");
    xmlNode *ts = fd ? xn_child(fd, "titleStmt") : NULL;
    xmlNode *title = ts ? xn_child(ts, "title") : NULL;
    if (title) {
        lqa_buf t = {0};
        xn_text(title, &t);
        lqa_db_title(&w->b, t.data, t.len);
        lqa_buf_free(&t);
    }
    xmlNode *pd = xn_child(h, "profileDesc");
    for (xmlNode *c = pd ? pd->children : NULL; c; c = c->next)
        if (xn_is(c, "abstract")) xw_abstract(w, c);
}

/* Level from a section number "2.1.3" (components + 1 - 1), 0 when there is none. */
static int level_of_number(const char *n) {
    if (!n || !*n) return 0;
    int level = 1;
    for (const char *p = n; *p; p++)
        if (*p == '.' && p[1] && p[1] != '.') level++;
    return level;
}

static void tei_div(xml_walk *w, xmlNode *div) {
    const char *type = xn_attr(div, "type");
    if (type && (!strcmp(type, "references") || !strcmp(type, "bibliography"))) return;
    xmlNode *head = xn_child(div, "head");
    const char *num = head ? xn_attr(head, "n") : NULL;
    int level = level_of_number(num);
    if (!level) level = w->level + 1;
    char label[64];
    snprintf(label, sizeof label, "%s", num ? num : "");
    size_t ll = strlen(label);
    if (ll && label[ll - 1] == '.') label[ll - 1] = '\0'; /* "2." -> label "2" */
    xw_sectioned_at(w, div, head, label, level);
}

static void tei_table_figure(xml_walk *w, xmlNode *fig) {
    xmlNode *table = xn_child(fig, "table");
    if (!table) {
        xw_block(w, fig);
        return;
    }
    lqa_buf cap = {0};
    xmlNode *head = xn_child(fig, "head"), *desc = xn_child(fig, "figDesc");
    if (head) xn_text(head, &cap);
    while (cap.len && (cap.data[cap.len - 1] == ' ' || cap.data[cap.len - 1] == ':')) cap.data[--cap.len] = '\0';
    if (head && desc) lqa_buf_puts(&cap, ": ");
    if (desc) xn_text(desc, &cap);
    xmlNode *tmp = xmlNewDocText(fig->doc, (const xmlChar *)(cap.data ? cap.data : ""));
    mallocCheck(tmp);
    xw_table(w, table, tmp);
    xmlFreeNode(tmp);
    lqa_buf_free(&cap);
}

static int tei_element(xml_walk *w, xmlNode *n) {
    if (xn_is_any(n, dropped)) return 1;
    if (xn_is(n, "teiHeader")) {
        tei_header(w, n);
        return 1;
    }
    if (xn_is(n, "div") && !w->in_abstract && !w->in_table) {
        tei_div(w, n);
        return 1;
    }
    if (xn_is(n, "figure")) {
        const char *type = xn_attr(n, "type");
        if (type && !strcmp(type, "table")) tei_table_figure(w, n);
        else xw_block(w, n);
        return 1;
    }
    if (xn_is(n, "table")) {
        xw_table(w, n, xn_child(n, "head"));
        return 1;
    }
    return 0;
}

void lqa_tei_walk(xml_walk *w, xmlNode *root) {
    w->element = tei_element;
    xw_children(w, root);
}
