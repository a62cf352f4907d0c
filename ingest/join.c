/* join.c: multi-page HTML manuals as one long document (--join), or one per chapter
 * (--join-by chapter: each entry of the index's table of contents with the pages below it). lqa_manual_reading_order
 * follows the table of contents from the index page depth-first (each page's own TOC links
 * after it, first visit wins) and appends the pages no TOC links to, by name;
 * lqa_parse_joined parses the pages in that order into ONE document, keeping every page's
 * headings as sections. */
#include "ingest/xml_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/hash.h"

#define MAX_PAGE_BYTES ((size_t)256 << 20)
#define MAX_PAGES 100000

/* ---- reading order --------------------------------------------------------------------------- */

/* A list of paths with a hash index, so "already visited?" stays O(1) for manuals of
 * thousands of pages. The index is only kept for lists that are searched (the order). */
typedef struct page_list {
    char **paths; /* real paths */
    int n, cap;
    int *slots;   /* open addressing over paths, -1 = empty; NULL when unindexed */
    int n_slots;
} page_list;

static unsigned path_hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void index_rebuild(page_list *l) {
    l->n_slots = l->n_slots ? 2 * l->n_slots : 256;
    free(l->slots);
    l->slots = lqa_malloc((size_t)l->n_slots * sizeof *l->slots);
    for (int i = 0; i < l->n_slots; i++) l->slots[i] = -1;
    for (int i = 0; i < l->n; i++) {
        unsigned h = path_hash(l->paths[i]) % (unsigned)l->n_slots;
        while (l->slots[h] >= 0) h = (h + 1) % (unsigned)l->n_slots;
        l->slots[h] = i;
    }
}

/* Index of path in l, or -1. */
static int list_find(const page_list *l, const char *path) {
    if (!l->slots) {
        for (int i = 0; i < l->n; i++)
            if (strcmp(l->paths[i], path) == 0) return i;
        return -1;
    }
    unsigned h = path_hash(path) % (unsigned)l->n_slots;
    for (; l->slots[h] >= 0; h = (h + 1) % (unsigned)l->n_slots)
        if (strcmp(l->paths[l->slots[h]], path) == 0) return l->slots[h];
    return -1;
}

static int list_has(const page_list *l, const char *path) { return list_find(l, path) >= 0; }

static void list_add(page_list *l, const char *path) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->paths = lqa_realloc(l->paths, (size_t)l->cap * sizeof *l->paths);
    }
    l->paths[l->n++] = lqa_strdup(path);
    if (!l->slots) return;
    if (2 * l->n > l->n_slots) {
        index_rebuild(l);
        return;
    }
    unsigned h = path_hash(path) % (unsigned)l->n_slots;
    while (l->slots[h] >= 0) h = (h + 1) % (unsigned)l->n_slots;
    l->slots[h] = l->n - 1;
}

static void list_free(page_list *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->slots);
    memset(l, 0, sizeof *l);
}

static int is_html_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm") || !strcasecmp(dot, ".xhtml"));
}

/* Resolved link targets of one manual: a TOC links the same pages again and again (each
 * section of a page by its #fragment), and realpath costs a system call per path component. */
typedef struct link_cache {
    page_list keys; /* page_dir/relative path, as joined */
    char **reals;   /* parallel to keys: the real path, or NULL when it does not qualify */
} link_cache;

static void cache_free(link_cache *lc) {
    for (int i = 0; i < lc->keys.n; i++) free(lc->reals[i]);
    free(lc->reals);
    list_free(&lc->keys);
}

/* The real path of joined when it is a file inside root, or NULL. in_real_dir: joined is a
 * real directory + one name, so when that name is a regular file (not a symlink) joined is
 * already real: one lstat instead of realpath's readlink per path component. */
static char *real_inside(const char *joined, const char *root, int in_real_dir) {
    struct stat st;
    int file = in_real_dir && lstat(joined, &st) == 0 && S_ISREG(st.st_mode);
    char *real = file ? lqa_strdup(joined) : realpath(joined, NULL);
    if (!real) return NULL;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || (real[rl] != '/' && real[rl] != '\0') || (!file && lqa_is_dir(real))) {
        free(real);
        return NULL;
    }
    return real;
}

static char *cached_real(link_cache *lc, const char *joined, const char *root, int in_real_dir) {
    int i = list_find(&lc->keys, joined);
    if (i < 0) {
        char *real = real_inside(joined, root, in_real_dir);
        int cap = lc->keys.cap;
        list_add(&lc->keys, joined);
        if (lc->keys.cap != cap) lc->reals = lqa_realloc(lc->reals, (size_t)lc->keys.cap * sizeof *lc->reals);
        i = lc->keys.n - 1;
        lc->reals[i] = real;
    }
    return lc->reals[i] ? lqa_strdup(lc->reals[i]) : NULL;
}

/* A link target as a real path inside root, or NULL (external, not HTML, missing, outside). */
static char *resolve_link(const char *page_dir, const char *root, const char *href, link_cache *lc) {
    if (!href || !*href || href[0] == '#' || strchr(href, ':')) return NULL; /* http:, mailto:, ... */
    size_t n = strcspn(href, "#?");
    if (n == 0) return NULL;
    char rel[PATH_MAX];
    if (n >= sizeof rel) return NULL;
    /* %XX escapes in file names */
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof rel; i++) {
        if (href[i] == '%' && i + 2 < n && strchr("0123456789abcdefABCDEF", href[i + 1]) &&
            strchr("0123456789abcdefABCDEF", href[i + 2])) {
            char hex[3] = {href[i + 1], href[i + 2], 0};
            rel[k++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            rel[k++] = href[i];
        }
    }
    rel[k] = '\0';
    if (!is_html_name(rel)) return NULL;
    char *joined = rel[0] == '/' ? lqa_strdup(rel) : lqa_path_join(page_dir, rel);
    /* pages are real paths, so page_dir is a real directory */
    char *real = cached_real(lc, joined, root, rel[0] != '/' && !strchr(rel, '/'));
    free(joined);
    return real;
}

static int inside_class(const xmlNode *n, const char *cls, const xmlNode *stop) {
    for (const xmlNode *p = n; p && p != stop && p->type == XML_ELEMENT_NODE; p = p->parent)
        if (xn_has_class(p, cls)) return 1;
    return 0;
}

static int has_toc(const xmlNode *n) {
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (xn_has_class(c, "toc") || xn_has_class(c, "toctree-wrapper") || has_toc(c)) return 1;
    }
    return 0;
}

/* Links of a page in document order: inside its TOC elements when it has any, else (for the
 * index page only) every link outside navigation chrome. */
static void collect_links(const xmlNode *n, int toc_only, const xmlNode *root, const xml_walk *rules,
                          page_list *hrefs) {
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        /* the walker skips TOC lists as text; here they are what we follow */
        int toc_elem = xn_has_class(c, "toc") || xn_has_class(c, "toctree-wrapper");
        if (!toc_elem && xw_skipped(rules, c)) continue;
        if (xn_is(c, "a")) {
            const char *href = xn_attr(c, "href");
            int ok = !toc_only || inside_class(c, "toc", root) || inside_class(c, "toctree-wrapper", root);
            if (href && ok) list_add(hrefs, href);
        }
        collect_links(c, toc_only, root, rules, hrefs);
    }
}

/* A cheap byte test before looking for a TOC element: the class token "toc" (quoted, or
 * beside a space inside quotes) or Sphinx's "toctree" must occur; most pages of a manual have
 * no TOC of their own. One scan for "toc" with its neighbours checked, not one per mark. */
static int may_hold_toc(const char *data, size_t len) {
    for (const char *p = data, *end = data + len; (p = memmem(p, (size_t)(end - p), "toc", 3)) != NULL; p++) {
        char pre = p > data ? p[-1] : '\0', post = p + 3 < end ? p[3] : '\0';
        if ((pre == '"' || pre == ' ') && (post == '"' || post == ' ')) return 1;
        if (pre == '\'' && post == '\'') return 1;
        if ((size_t)(end - p) >= 7 && memcmp(p + 3, "tree", 4) == 0) return 1;
    }
    return 0;
}

/* Links a page's tree contributes to the reading order (see collect_links). */
static void tree_links(xmlDoc *doc, int may_toc, int is_index, page_list *hrefs) {
    xmlNode *root = xmlDocGetRootElement(doc);
    xml_walk rules = {.html = 1};
    int toc = may_toc && has_toc(root);
    if (toc || is_index) collect_links(root, toc, root, &rules, hrefs);
}

/* ONE document from many pages, built page by page in reading order; with
 * opts->join_by_chapter, one per chapter (cut where the chapter of the next page changes). */
typedef struct joined {
    const lqa_parse_opts *opts;
    lqa_doc doc;
    xml_walk w;
    int parsed;    /* pages in doc */
    int chapter;   /* the chapter doc holds (join_by_chapter) */
    int emitted;   /* documents handed to the sink */
    const char *format; /* "html", or "mallard" for a help directory */
    lqa_doc_sink sink;
    void *ctx;
    lqa_err first; /* the first page that failed */
} joined;

static void joined_init(joined *j, const char *first_path, const lqa_parse_opts *opts);

/* Hands the document built so far to the sink (when it has text) and starts the next one. */
static void joined_cut(joined *j, const char *next_path) {
    j->w.path = j->doc.path;
    xw_finish(&j->w);
    if (j->parsed > 0 && j->doc.text.len > 0) {
        j->sink(&j->doc, j->ctx);
        j->emitted++;
    }
    lqa_doc_free(&j->doc);
    int html = strcmp(j->format, "mallard") != 0;
    lqa_doc_init(&j->doc, next_path, j->format);
    xw_init(&j->w, &j->doc, next_path, j->opts, html ? lqa_html_element : NULL);
    j->w.html = html;
    j->parsed = 0;
}

/* Before a page of chapter `chapter` (-1: pages no TOC links to) is walked. Short chapters
 * (a preface's sections) are kept together until the document holds MIN_CHAPTER_TEXT bytes. */
#define MIN_CHAPTER_TEXT 16000
static void joined_chapter(joined *j, int chapter, const char *path) {
    if (!j || !j->opts || !j->opts->join_by_chapter || !j->sink) return;
    if (chapter != j->chapter && j->parsed > 0 && j->doc.text.len >= MIN_CHAPTER_TEXT) joined_cut(j, path);
    j->chapter = chapter;
}

static void joined_walk_page(joined *j, const char *path, xmlDoc *x) {
    j->w.path = path;
    lqa_db_para(&j->w.b);
    lqa_html_walk_page(&j->w, x, j->parsed == 0);
    j->parsed++;
}

/* One bad page does not lose the manual: it is skipped with a warning. */
static void joined_skip(joined *j, const lqa_err *perr, int nth) {
    if (!j->first.msg[0]) j->first = *perr;
    lqa_parse_warn(j->opts, "%s (page %d of the joined manual, skipped)", perr->msg, nth);
}

static void joined_init(joined *j, const char *first_path, const lqa_parse_opts *opts) {
    memset(j, 0, sizeof *j);
    j->format = "html";
    j->opts = opts;
    lqa_doc_init(&j->doc, first_path, "html");
    xw_init(&j->w, &j->doc, first_path, opts, lqa_html_element);
    j->w.html = 1;
}

static void joined_read_page(joined *j, const char *path, int nth) {
    char *data;
    size_t len;
    lqa_err perr;
    xmlDoc *x = NULL;
    if (lqa_input_read_all(path, MAX_PAGE_BYTES, &data, &len, &perr) == 0) {
        x = lqa_html_read(path, data, len, j->opts, &perr);
        free(data);
    }
    if (!x) {
        joined_skip(j, &perr, nth);
        return;
    }
    joined_walk_page(j, path, x);
    xmlFreeDoc(x);
}

static int joined_finish(joined *j, const char *first_path, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    j->w.path = j->emitted ? j->doc.path : first_path;
    xw_finish(&j->w);
    if (j->parsed == 0 || j->doc.text.len == 0) {
        lqa_doc_free(&j->doc);
        if (j->emitted) return 0; /* the last chapter was empty */
        return lqa_err_set(err, "%s", j->first.msg[0] ? j->first.msg : "--join: no text in any page");
    }
    sink(&j->doc, ctx);
    lqa_doc_free(&j->doc);
    return 0;
}

/* The reading order's pages, in order (those without a TOC are parsed only once here). With
 * j (lqa_parse_manual) every page is parsed, once: for its TOC links and its text. */
static int page_links(const char *path, page_list *hrefs, int is_index, int chapter, joined *j, size_t *text_added,
                      lqa_err *err) {
    char *data;
    size_t len;
    if (lqa_input_read_all(path, MAX_PAGE_BYTES, &data, &len, err) < 0) return -1;
    joined_chapter(j, chapter, path);
    int may_toc = is_index || may_hold_toc(data, len);
    if (!j && !may_toc) { /* no TOC element can be there: skip the parse */
        free(data);
        return 0;
    }
    xmlDoc *doc = lqa_html_read(path, data, len, j ? j->opts : NULL, err);
    free(data);
    if (!doc) return -1;
    tree_links(doc, may_toc, is_index, hrefs);
    size_t before = j ? j->doc.text.len : 0;
    if (j) joined_walk_page(j, path, doc);
    *text_added = j ? j->doc.text.len - before : 0;
    xmlFreeDoc(doc);
    return 0;
}

static char *dir_of(const char *path) {
    char *d = lqa_strdup(path);
    char *slash = strrchr(d, '/');
    if (slash) *slash = '\0';
    else strcpy(d, ".");
    return d;
}

/* Depth-first over TOC links with an explicit stack (manuals can be thousands of pages). Each
 * page's chapter: 0 for the index, a new one for each page the index links to, inherited by
 * every page reached below it; a "part" page (linked from the index, little text of its own,
 * a TOC of several entries: PostgreSQL's "Part II. The SQL Language") gives each of its
 * entries a chapter of its own instead. */
#define PART_MAX_TEXT 2000
static int follow_toc(const char *index_real, const char *root, page_list *order, joined *j, lqa_err *err) {
    page_list stack = {0};
    int *chapters = NULL, *depths = NULL, chap_cap = 0, next_chapter = 0; /* per stack entry */
    link_cache lc = {0};
    index_rebuild(&lc.keys);
    list_add(&stack, index_real);
    chapters = lqa_malloc((size_t)(chap_cap = 64) * sizeof *chapters);
    depths = lqa_malloc((size_t)chap_cap * sizeof *depths);
    chapters[0] = depths[0] = 0;
    int rc = 0;
    while (stack.n > 0 && order->n < MAX_PAGES) {
        char *page = stack.paths[--stack.n];
        int chapter = chapters[stack.n], depth = depths[stack.n];
        if (list_has(order, page)) {
            free(page);
            continue;
        }
        list_add(order, page);
        page_list hrefs = {0};
        lqa_err perr;
        int is_index = order->n == 1;
        size_t own_text = 0;
        if (page_links(page, &hrefs, is_index, chapter, j, &own_text, &perr) < 0) {
            if (order->n == 1) rc = lqa_err_set(err, "%s", perr.msg); /* the index itself must parse */
            else if (j) joined_skip(j, &perr, order->n);
            free(page);
            list_free(&hrefs);
            if (rc) break;
            continue;
        }
        char *dir = dir_of(page);
        int part = depth == 1 && own_text < PART_MAX_TEXT && hrefs.n >= 2;
        int base = next_chapter;
        if (is_index || part) next_chapter += hrefs.n;
        /* push in reverse so the first link is visited first */
        for (int i = hrefs.n - 1; i >= 0; i--) {
            char *target = resolve_link(dir, root, hrefs.paths[i], &lc);
            if (target && !list_has(order, target)) {
                list_add(&stack, target);
                if (stack.n > chap_cap) {
                    chap_cap *= 2;
                    chapters = lqa_realloc(chapters, (size_t)chap_cap * sizeof *chapters);
                    depths = lqa_realloc(depths, (size_t)chap_cap * sizeof *depths);
                }
                chapters[stack.n - 1] = is_index || part ? base + i + 1 : chapter;
                depths[stack.n - 1] = depth + 1;
            }
            free(target);
        }
        free(dir);
        free(page);
        list_free(&hrefs);
    }
    free(chapters);
    free(depths);
    list_free(&stack);
    cache_free(&lc);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Landing and index pages that are no part of the reading (a language chooser, the term index,
 * search pages) are not appended. */
static int is_auxiliary(const char *name) {
    static const char *const prefixes[] = {"index", "genindex", "search", "bookindex", "py-modindex", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (!strncasecmp(name, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

static void append_unlinked(const char *root, page_list *order) {
    DIR *d = opendir(root);
    if (!d) return;
    page_list names = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && is_html_name(e->d_name) && !is_auxiliary(e->d_name)) list_add(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.paths, (size_t)names.n, sizeof *names.paths, cmp_str);
    for (int i = 0; i < names.n && order->n < MAX_PAGES; i++) {
        char *joined = lqa_path_join(root, names.paths[i]);
        /* root is a real path, so a visited page is found as it is, without realpath (the
         * order holds only real paths: a symlink's name is never in it) */
        if (list_has(order, joined)) {
            free(joined);
            continue;
        }
        char *real = real_inside(joined, root, 1); /* a link out of the manual is no page of it */
        if (real && !list_has(order, real)) list_add(order, real);
        free(real);
        free(joined);
    }
    list_free(&names);
}

/* The reading order (see lqa_manual_reading_order) from the index's real path; with j, each
 * page of it is parsed once and walked into j as it is reached. */
static int reading_order(const char *index_real, page_list *order, joined *j, lqa_err *err) {
    char *root = dir_of(index_real);
    index_rebuild(order); /* the visited set */
    int rc = follow_toc(index_real, root, order, j, err);
    int linked = order->n;
    if (rc == 0) append_unlinked(root, order);
    for (int i = linked; j && i < order->n; i++) {
        joined_chapter(j, -1, order->paths[i]); /* pages no TOC links to: a document of their own */
        joined_read_page(j, order->paths[i], i + 1);
    }
    free(root);
    return rc;
}

int lqa_manual_reading_order(const char *index_path, char ***paths, int *n_paths, lqa_err *err) {
    *paths = NULL;
    *n_paths = 0;
    char *index_real = realpath(index_path, NULL);
    if (!index_real) return lqa_err_set(err, "%s: cannot open: %s", index_path, strerror(errno));
    page_list order = {0};
    int rc = reading_order(index_real, &order, NULL, err);
    free(index_real);
    if (rc < 0) {
        list_free(&order);
        return -1;
    }
    *paths = order.paths;
    *n_paths = order.n;
    free(order.slots);
    return 0;
}

/* ---- one document from many pages -------------------------------------------------------------- */

int lqa_parse_joined(const char *const *paths, int n_paths, const lqa_parse_opts *opts, lqa_doc_sink sink,
                     void *ctx, lqa_err *err) {
    if (n_paths <= 0) return lqa_err_set(err, "--join: no pages given, expected the pages of one manual");
    joined j;
    joined_init(&j, paths[0], opts);
    for (int i = 0; i < n_paths; i++) joined_read_page(&j, paths[i], i + 1);
    return joined_finish(&j, paths[0], sink, ctx, err);
}

/* ---- Mallard help: the pages of a directory, guide by guide ------------------------------------- */

typedef struct mal_page {
    char *path, *id, *guide; /* guide: the id of the guide it belongs to ("" = the index) */
    int is_guide;
    xmlDoc *x;
} mal_page;

static int is_page_name(const char *name) {
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".page");
}

/* The first guide link of a page (info/link type="guide" xref="id#section" -> "id"). */
static char *guide_link(const xmlNode *root) {
    const xmlNode *info = xn_child(root, "info");
    for (const xmlNode *l = info ? info->children : NULL; l; l = l->next) {
        const char *type = xn_attr(l, "type"), *xref = xn_attr(l, "xref");
        if (xn_is(l, "link") && type && !strcmp(type, "guide") && xref && *xref && *xref != '#') {
            size_t n = strcspn(xref, "#");
            return lqa_strndup(xref, n);
        }
    }
    return lqa_strdup("");
}

static int page_by_id(const mal_page *p, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (p[i].id && !strcmp(p[i].id, id)) return i;
    return -1;
}

/* Reads every *.page of the directory (sorted by name); pages that do not parse are warned
 * about and left out. */
static int mallard_pages(const char *dir, const lqa_parse_opts *opts, mal_page **out, lqa_err *err) {
    DIR *d = opendir(dir);
    if (!d) return lqa_err_set(err, "%s: cannot list directory: %s", dir, strerror(errno));
    page_list names = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && is_page_name(e->d_name)) list_add(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.paths, (size_t)names.n, sizeof *names.paths, cmp_str);
    mal_page *p = lqa_calloc((size_t)names.n + 1, sizeof *p);
    int n = 0;
    for (int i = 0; i < names.n; i++) {
        char *path = lqa_path_join(dir, names.paths[i]), *data;
        size_t len;
        lqa_err perr;
        xmlDoc *x = NULL;
        if (lqa_input_read_all(path, MAX_PAGE_BYTES, &data, &len, &perr) == 0) {
            x = lqa_xml_read(path, data, len, opts, &perr);
            free(data);
        }
        xmlNode *root = x ? xmlDocGetRootElement(x) : NULL;
        if (!root || !xn_is(root, "page")) {
            if (x) xmlFreeDoc(x);
            else lqa_parse_warn(opts, "%s (skipped in the joined guide)", perr.msg);
            free(path);
            continue;
        }
        const char *id = xn_attr(root, "id"), *type = xn_attr(root, "type");
        size_t nn = strlen(names.paths[i]) - 5;
        p[n] = (mal_page){path, id ? lqa_strdup(id) : lqa_strndup(names.paths[i], nn), guide_link(root),
                          type && !strcmp(type, "guide"), x};
        n++;
    }
    list_free(&names);
    *out = p;
    return n;
}

/* A Mallard help directory as one document (the index, then each guide followed by its topics),
 * or with join_by_chapter one per guide. A page belongs to the first guide it links to, a guide
 * to itself, a page linking to none to the index. */
static int parse_mallard_dir(const char *index_real, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                             lqa_err *err) {
    char *dir = dir_of(index_real);
    mal_page *p = NULL;
    int n = mallard_pages(dir, opts, &p, err);
    free(dir);
    if (n < 0) return -1;
    int index = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].path, index_real) || !strcmp(p[i].id, "index")) index = index < 0 ? i : index;
    /* the group of each page: the index of its guide page (-1: the index group) */
    int *group = lqa_malloc(((size_t)n + 1) * sizeof *group);
    for (int i = 0; i < n; i++) {
        int g = p[i].is_guide && i != index ? i : page_by_id(p, n, p[i].guide);
        group[i] = i == index || g < 0 || g == index || (!p[g].is_guide && g != i) ? -1 : g;
    }
    joined j;
    joined_init(&j, index_real, opts);
    j.sink = sink, j.ctx = ctx;
    j.format = "mallard";
    free(j.doc.format);
    j.doc.format = lqa_strdup("mallard");
    j.w.html = 0;
    /* reading order: the index group (index first), then each guide's group in name order */
    for (int g = -1; g < n; g++) {
        if (g >= 0 && group[g] != g) continue;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++) {
                /* the group's head first (the index or the guide), then its other pages */
                int head = g < 0 ? i == index : i == g;
                if (group[i] != g || head != (pass == 0) || (g < 0 && pass == 0 && i != index)) continue;
                joined_chapter(&j, g + 1, p[i].path);
                j.w.path = p[i].path;
                lqa_db_para(&j.w.b);
                j.w.level = head ? 0 : 1; /* a guide's topics nest under it */
                lqa_mallard_walk(&j.w, xmlDocGetRootElement(p[i].x));
                j.w.level = 0;
                j.parsed++;
            }
    }
    int rc = joined_finish(&j, index_real, sink, ctx, err);
    for (int i = 0; i < n; i++) {
        xmlFreeDoc(p[i].x);
        free(p[i].path), free(p[i].id), free(p[i].guide);
    }
    free(p);
    free(group);
    return rc;
}

int lqa_parse_manual(const char *index_path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx,
                     lqa_err *err) {
    char *index_real = realpath(index_path, NULL);
    if (!index_real) return lqa_err_set(err, "%s: cannot open: %s", index_path, strerror(errno));
    if (is_page_name(index_real)) {
        int rc = parse_mallard_dir(index_real, opts, sink, ctx, err);
        free(index_real);
        return rc;
    }
    joined j;
    joined_init(&j, index_real, opts);
    j.sink = sink, j.ctx = ctx;
    page_list order = {0};
    int rc = reading_order(index_real, &order, &j, err);
    if (rc == 0) rc = joined_finish(&j, index_real, sink, ctx, err);
    else {
        lqa_db_finish(&j.w.b); /* frees the builder's state */
        lqa_doc_free(&j.doc);
    }
    list_free(&order);
    free(index_real);
    return rc;
}
