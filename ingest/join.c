/* join.c: multi-page HTML manuals as one long document (--join), or one per chapter
 * (--join-by chapter: each entry of the index's table of contents with the pages below it). lqa_manual_reading_order
 * follows the table of contents from the index page depth-first (each page's own TOC links
 * after it, first visit wins) and appends the pages no TOC links to, by name;
 * lqa_parse_joined parses the pages in that order into ONE document, keeping every page's
 * headings as sections. What is checked is what is read: each page is checked once (check_page:
 * a regular file inside the manual's folder) and pinned by device and inode, and its read opens
 * it through ingest/input.h with that pin, so a page swapped since for a link out of the folder,
 * a FIFO or another file is refused, never read. */
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
    lqa_input_pin *pins; /* parallel to paths: what each page was checked to be (check_page) */
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

/* Adds path with its pin (NULL: a name, no page). */
static void list_add_pin(page_list *l, const char *path, const lqa_input_pin *pin) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->paths = lqa_realloc(l->paths, (size_t)l->cap * sizeof *l->paths);
        l->pins = lqa_realloc(l->pins, (size_t)l->cap * sizeof *l->pins);
    }
    l->pins[l->n] = pin ? *pin : (lqa_input_pin){0};
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

static void list_add(page_list *l, const char *path) { list_add_pin(l, path, NULL); }

static void list_free(page_list *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    free(l->pins);
    free(l->slots);
    memset(l, 0, sizeof *l);
}

static int is_html_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".html") || !strcasecmp(dot, ".htm") || !strcasecmp(dot, ".xhtml"));
}

/* The manual being read: its folder (a real path), which its pages do not leave unless
 * follow_symlinks lets a page that is a symbolic link in it lead anywhere (--follow-symlinks). */
typedef struct manual {
    const char *root;
    int follow_symlinks;
} manual;

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int path_inside(const char *real, const char *root) {
    size_t rl = strlen(root);
    if (rl == 1) return real[0] == '/'; /* the root is "/" */
    return strncmp(real, root, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
}

static char *dir_of(const char *path) {
    char *d = lqa_strdup(path);
    char *slash = strrchr(d, '/');
    if (slash) *slash = '\0';
    else strcpy(d, ".");
    return d;
}

/* A link followed by policy: name is a symbolic link whose own folder is inside the root. */
static int followed_link(const manual *m, const char *name) {
    char *dir = dir_of(name), *real_dir = realpath(dir, NULL);
    int ok = real_dir && path_inside(real_dir, m->root);
    free(dir);
    free(real_dir);
    return ok;
}

/* Whether the file named `name` is a page of the manual, and what it is: a regular file whose
 * real path is inside the manual's folder (or, with follow_symlinks, a symbolic link in it to a
 * regular file anywhere). Looked up as the walker does (ingest/walk.c follow_link): the file
 * found by name must be the file at its real path, so a component swapped for a link between
 * the look-ups is refused. Returns the real path with pin set (the page is read by that path,
 * O_NOFOLLOW, and must still be that file), or NULL. */
static char *check_page(const char *name, const manual *m, lqa_input_pin *pin) {
    struct stat st, real_st;
    if (lstat(name, &st) != 0) return NULL;
    int link = S_ISLNK(st.st_mode);
    if ((link && stat(name, &st) != 0) || !S_ISREG(st.st_mode)) return NULL;
    char *real = realpath(name, NULL);
    if (!real || lstat(real, &real_st) != 0 || !same_file(&st, &real_st) ||
        !(path_inside(real, m->root) || (m->follow_symlinks && link && followed_link(m, name)))) {
        free(real);
        return NULL;
    }
    *pin = (lqa_input_pin){(uint64_t)st.st_dev, (uint64_t)st.st_ino, 0}; /* by its real path: no link */
    return real;
}

/* Checked link targets of one manual: a TOC links the same pages again and again (each
 * section of a page by its #fragment), and each check costs a realpath. */
typedef struct link_cache {
    page_list keys; /* page_dir/relative path, as joined */
    char **reals;   /* parallel to keys: the real path, or NULL when it is no page */
} link_cache;

static void cache_free(link_cache *lc) {
    for (int i = 0; i < lc->keys.n; i++) free(lc->reals[i]);
    free(lc->reals);
    list_free(&lc->keys);
}

static char *cached_page(link_cache *lc, const char *joined, const manual *m, lqa_input_pin *pin) {
    int i = list_find(&lc->keys, joined);
    if (i < 0) {
        lqa_input_pin p = {0};
        char *real = check_page(joined, m, &p);
        int cap = lc->keys.cap;
        list_add_pin(&lc->keys, joined, &p);
        if (lc->keys.cap != cap) lc->reals = lqa_realloc(lc->reals, (size_t)lc->keys.cap * sizeof *lc->reals);
        i = lc->keys.n - 1;
        lc->reals[i] = real;
    }
    *pin = lc->keys.pins[i];
    return lc->reals[i] ? lqa_strdup(lc->reals[i]) : NULL;
}

/* A link target as a checked page (its real path, pin set), or NULL (external, not HTML,
 * missing, outside, not a regular file). */
static char *resolve_link(const char *page_dir, const manual *m, const char *href, link_cache *lc,
                          lqa_input_pin *pin) {
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
    char *real = cached_page(lc, joined, m, pin);
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

/* pin: what the page was checked to be (NULL: a page named by the caller, any regular file). */
static void joined_read_page(joined *j, const char *path, const lqa_input_pin *pin, int nth) {
    char *data;
    size_t len;
    lqa_err perr;
    xmlDoc *x = NULL;
    if (lqa_input_read_all_pinned(path, pin, MAX_PAGE_BYTES, &data, &len, &perr) == 0) {
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
static int page_links(const char *path, const lqa_input_pin *pin, page_list *hrefs, int is_index, int chapter,
                      joined *j, size_t *text_added, lqa_err *err) {
    char *data;
    size_t len;
    if (lqa_input_read_all_pinned(path, pin, MAX_PAGE_BYTES, &data, &len, err) < 0) return -1;
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

/* Depth-first over TOC links with an explicit stack (manuals can be thousands of pages). Each
 * page's chapter: 0 for the index, a new one for each page the index links to, inherited by
 * every page reached below it; a "part" page (linked from the index, little text of its own,
 * a TOC of several entries: PostgreSQL's "Part II. The SQL Language") gives each of its
 * entries a chapter of its own instead. */
#define PART_MAX_TEXT 2000
static int follow_toc(const char *index_real, const lqa_input_pin *index_pin, const manual *m, page_list *order,
                      joined *j, lqa_err *err) {
    page_list stack = {0};
    int *chapters = NULL, *depths = NULL, chap_cap = 0, next_chapter = 0; /* per stack entry */
    link_cache lc = {0};
    index_rebuild(&lc.keys);
    list_add_pin(&stack, index_real, index_pin);
    chapters = lqa_malloc((size_t)(chap_cap = 64) * sizeof *chapters);
    depths = lqa_malloc((size_t)chap_cap * sizeof *depths);
    chapters[0] = depths[0] = 0;
    int rc = 0;
    while (stack.n > 0 && order->n < MAX_PAGES) {
        char *page = stack.paths[--stack.n];
        lqa_input_pin pin = stack.pins[stack.n];
        int chapter = chapters[stack.n], depth = depths[stack.n];
        if (list_has(order, page)) {
            free(page);
            continue;
        }
        list_add_pin(order, page, &pin);
        page_list hrefs = {0};
        lqa_err perr;
        int is_index = order->n == 1;
        size_t own_text = 0;
        /* the index: the caller's pin, or none (a PATH named by the user); a page: its check's */
        const lqa_input_pin *open_pin = is_index ? index_pin : &pin;
        if (page_links(page, open_pin, &hrefs, is_index, chapter, j, &own_text, &perr) < 0) {
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
            lqa_input_pin tpin;
            char *target = resolve_link(dir, m, hrefs.paths[i], &lc, &tpin);
            if (target && !list_has(order, target)) {
                list_add_pin(&stack, target, &tpin);
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

static void append_unlinked(const manual *m, page_list *order) {
    const char *root = m->root;
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
        lqa_input_pin pin;
        char *real = check_page(joined, m, &pin); /* a link out of the manual is no page of it */
        if (real && !list_has(order, real)) list_add_pin(order, real, &pin);
        free(real);
        free(joined);
    }
    list_free(&names);
}

/* The reading order (see lqa_manual_reading_order) from the index's real path; with j, each
 * page of it is parsed once and walked into j as it is reached. index_pin: what the index must
 * be (NULL: any regular file). */
static int reading_order(const char *index_real, const lqa_input_pin *index_pin, int follow_symlinks,
                         page_list *order, joined *j, lqa_err *err) {
    char *root = dir_of(index_real);
    manual m = {root, follow_symlinks};
    index_rebuild(order); /* the visited set */
    int rc = follow_toc(index_real, index_pin, &m, order, j, err);
    int linked = order->n;
    if (rc == 0) append_unlinked(&m, order);
    for (int i = linked; j && i < order->n; i++) {
        joined_chapter(j, -1, order->paths[i]); /* pages no TOC links to: a document of their own */
        joined_read_page(j, order->paths[i], &order->pins[i], i + 1);
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
    int rc = reading_order(index_real, NULL, 0, &order, NULL, err);
    free(index_real);
    if (rc < 0) {
        list_free(&order);
        return -1;
    }
    *paths = order.paths;
    *n_paths = order.n;
    free(order.slots);
    free(order.pins);
    return 0;
}

/* ---- one document from many pages -------------------------------------------------------------- */

int lqa_parse_joined(const char *const *paths, int n_paths, const lqa_parse_opts *opts, lqa_doc_sink sink,
                     void *ctx, lqa_err *err) {
    if (n_paths <= 0) return lqa_err_set(err, "--join: no pages given, expected the pages of one manual");
    joined j;
    joined_init(&j, paths[0], opts);
    for (int i = 0; i < n_paths; i++) joined_read_page(&j, paths[i], NULL, i + 1);
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

/* Reads every *.page of the manual's directory (sorted by name), each checked (check_page) and
 * read with its pin, the index with index_pin; pages that do not parse are warned about and
 * left out, names that are no page (a link out of the folder, a FIFO) skipped. */
static int mallard_pages(const manual *m, const char *index_real, const lqa_input_pin *index_pin,
                         const lqa_parse_opts *opts, mal_page **out, lqa_err *err) {
    const char *dir = m->root;
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
        lqa_input_pin pin;
        int is_index = !strcmp(path, index_real);
        char *real = is_index ? lqa_strdup(path) : check_page(path, m, &pin);
        if (!real) {
            free(path);
            continue;
        }
        if (lqa_input_read_all_pinned(real, is_index ? index_pin : &pin, MAX_PAGE_BYTES, &data, &len, &perr) == 0) {
            x = lqa_xml_read(path, data, len, opts, &perr);
            free(data);
        }
        free(real);
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
static int parse_mallard_dir(const char *index_real, const lqa_input_pin *index_pin, const lqa_parse_opts *opts,
                             lqa_doc_sink sink, void *ctx, lqa_err *err) {
    char *dir = dir_of(index_real);
    mal_page *p = NULL;
    manual m = {dir, opts && opts->follow_symlinks};
    int n = mallard_pages(&m, index_real, index_pin, opts, &p, err);
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
    /* the walk's pin of the index page: read by its real path, so no link is followed */
    lqa_input_pin pin = opts && opts->pin ? *opts->pin : (lqa_input_pin){0};
    pin.via_link = 0;
    const lqa_input_pin *index_pin = opts && opts->pin ? &pin : NULL;
    if (is_page_name(index_real)) {
        int rc = parse_mallard_dir(index_real, index_pin, opts, sink, ctx, err);
        free(index_real);
        return rc;
    }
    joined j;
    joined_init(&j, index_real, opts);
    j.sink = sink, j.ctx = ctx;
    page_list order = {0};
    int rc = reading_order(index_real, index_pin, opts && opts->follow_symlinks, &order, &j, err);
    if (rc == 0) rc = joined_finish(&j, index_real, sink, ctx, err);
    else {
        lqa_db_finish(&j.w.b); /* frees the builder's state */
        lqa_doc_free(&j.doc);
    }
    list_free(&order);
    free(index_real);
    return rc;
}
