/* xml_epub.c: EPUB 2/3 books through libarchive: META-INF/container.xml names the OPF
 * package file, whose manifest and spine give the XHTML pages in reading order; the pages
 * become ONE document (each page's headings kept as sections), titled from the OPF's
 * dc:title. Container and OPF are parsed with the same safe XML settings as everything else;
 * the archive's uncompressed size is capped (zip bombs). */
#include "ingest/xml_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#define EPUB_MAX_ENTRY ((size_t)64 << 20)
#define EPUB_MAX_TOTAL ((size_t)512 << 20)
#define EPUB_MAX_ENTRIES 20000

typedef struct epub_entry {
    char *name;
    char *data;
    size_t len;
} epub_entry;

typedef struct epub {
    epub_entry *e;
    int n, cap;
} epub;

static void epub_free(epub *b) {
    for (int i = 0; i < b->n; i++) free(b->e[i].name), free(b->e[i].data);
    free(b->e);
}

static const epub_entry *epub_find(const epub *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->e[i].name, name) == 0) return &b->e[i];
    return NULL;
}

/* Reads every file entry into memory (EPUBs are small; the caps refuse bombs). */
static int epub_load(const char *path, const lqa_input_pin *pin, epub *b, lqa_err *err) {
    int fd = lqa_input_open_fd(path, pin, err);
    if (fd < 0) return -1;
    struct archive *a = archive_read_new();
    mallocCheck(a);
    archive_read_support_format_zip(a);
    if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
        int rc = lqa_err_set(err, "%s: not a readable zip archive (%s), expected an EPUB", path, archive_error_string(a));
        archive_read_free(a);
        close(fd);
        return rc;
    }
    struct archive_entry *entry;
    size_t total = 0;
    int rc = 0, r;
    while ((r = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
        if (archive_entry_filetype(entry) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(entry);
        if (!name) continue;
        if (b->n >= EPUB_MAX_ENTRIES) {
            rc = lqa_err_set(err, "%s: more than %d entries, expected an EPUB", path, EPUB_MAX_ENTRIES);
            break;
        }
        lqa_buf data = {0};
        char chunk[65536];
        la_ssize_t got;
        while ((got = archive_read_data(a, chunk, sizeof chunk)) > 0) {
            if (data.len + (size_t)got > EPUB_MAX_ENTRY || total + (size_t)got > EPUB_MAX_TOTAL) {
                rc = lqa_err_set(err, "%s: entry %s expands beyond the limit (%zu MiB per entry, %zu MiB in all), refused",
                                 path, name, EPUB_MAX_ENTRY >> 20, EPUB_MAX_TOTAL >> 20);
                break;
            }
            lqa_buf_append(&data, chunk, (size_t)got);
            total += (size_t)got;
        }
        if (rc == 0 && got < 0)
            rc = lqa_err_set(err, "%s: entry %s is corrupt (%s)", path, name, archive_error_string(a));
        if (rc < 0) {
            lqa_buf_free(&data);
            break;
        }
        if (b->n == b->cap) {
            b->cap = b->cap ? 2 * b->cap : 32;
            b->e = lqa_realloc(b->e, (size_t)b->cap * sizeof *b->e);
        }
        b->e[b->n].name = lqa_strdup(name);
        b->e[b->n].len = data.len;
        b->e[b->n].data = lqa_buf_steal(&data);
        b->n++;
    }
    if (rc == 0 && r != ARCHIVE_EOF)
        rc = lqa_err_set(err, "%s: corrupt zip archive (%s), expected an EPUB", path, archive_error_string(a));
    archive_read_free(a);
    close(fd);
    return rc;
}

/* Resolves href (relative to the OPF's directory, %XX-decoded, without #fragment). */
static char *resolve_href(const char *opf_dir, const char *href) {
    lqa_buf out = {0};
    if (opf_dir[0]) {
        lqa_buf_puts(&out, opf_dir);
        lqa_buf_putc(&out, '/');
    }
    for (const char *p = href; *p && *p != '#'; p++) {
        if (p[0] == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end == '\0') {
                lqa_buf_putc(&out, (char)v);
                p += 2;
                continue;
            }
        }
        lqa_buf_putc(&out, *p);
    }
    /* fold "dir/../" segments */
    char *s = lqa_buf_steal(&out);
    char *dd;
    while ((dd = strstr(s, "/../")) != NULL) {
        char *prev = dd;
        while (prev > s && prev[-1] != '/') prev--;
        memmove(prev, dd + 4, strlen(dd + 4) + 1);
    }
    return s;
}

static xmlNode *find_desc(xmlNode *n, const char *name) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if (xn_is(c, name)) return c;
        xmlNode *d = find_desc(c, name);
        if (d) return d;
    }
    return NULL;
}

/* The spine's hrefs in order, from the OPF. */
static int read_opf(const char *path, const epub_entry *opf, const char *opf_dir, const lqa_parse_opts *opts,
                    char ***pages, int *n_pages, char **title, lqa_err *err) {
    xmlDoc *x = lqa_xml_read(path, opf->data, opf->len, opts, err);
    if (!x) return lqa_err_prefix(err, "in %s: ", opf->name);
    xmlNode *root = xmlDocGetRootElement(x);
    xmlNode *meta = xn_child(root, "metadata"), *manifest = xn_child(root, "manifest"), *spine = xn_child(root, "spine");
    xmlNode *t = find_desc(meta, "title");
    if (t) {
        lqa_buf b = {0};
        xn_text(t, &b);
        *title = lqa_buf_steal(&b);
    }
    int cap = 0;
    *pages = NULL;
    *n_pages = 0;
    for (xmlNode *ref = spine ? spine->children : NULL; ref; ref = ref->next) {
        const char *idref = xn_attr(ref, "idref");
        if (!xn_is(ref, "itemref") || !idref) continue;
        for (xmlNode *item = manifest ? manifest->children : NULL; item; item = item->next) {
            const char *id = xn_attr(item, "id"), *href = xn_attr(item, "href");
            if (!xn_is(item, "item") || !id || !href || strcmp(id, idref) != 0) continue;
            if (*n_pages == cap) {
                cap = cap ? 2 * cap : 32;
                *pages = lqa_realloc(*pages, (size_t)cap * sizeof **pages);
            }
            (*pages)[(*n_pages)++] = resolve_href(opf_dir, href);
            break;
        }
    }
    xmlFreeDoc(x);
    if (*n_pages == 0) return lqa_err_set(err, "%s: %s has no spine pages, expected <spine><itemref idref=...>", path, opf->name);
    return 0;
}

static int rootfile_path(const char *path, const epub *b, const lqa_parse_opts *opts, char **opf_path, lqa_err *err) {
    const epub_entry *c = epub_find(b, "META-INF/container.xml");
    if (!c) return lqa_err_set(err, "%s: no META-INF/container.xml, expected an EPUB", path);
    xmlDoc *x = lqa_xml_read(path, c->data, c->len, opts, err);
    if (!x) return lqa_err_prefix(err, "in META-INF/container.xml: ");
    xmlNode *rf = find_desc(xmlDocGetRootElement(x), "rootfile");
    const char *fp = rf ? xn_attr(rf, "full-path") : NULL;
    if (fp) *opf_path = lqa_strdup(fp);
    xmlFreeDoc(x);
    if (!fp) return lqa_err_set(err, "%s: META-INF/container.xml names no rootfile full-path, expected the OPF", path);
    return 0;
}

int lqa_xml_parse_epub(const char *path, const lqa_parse_opts *opts, lqa_doc_sink sink, void *ctx, lqa_err *err) {
    lqa_xml_global_init();
    epub b = {0};
    char *opf_path = NULL, *title = NULL, **pages = NULL;
    int n_pages = 0, rc = epub_load(path, opts ? opts->pin : NULL, &b, err);
    if (rc == 0) rc = rootfile_path(path, &b, opts, &opf_path, err);
    const epub_entry *opf = NULL;
    if (rc == 0 && !(opf = epub_find(&b, opf_path)))
        rc = lqa_err_set(err, "%s: the package file %s named by container.xml is missing", path, opf_path);
    if (rc == 0) {
        char *dir = lqa_strdup(opf_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else dir[0] = '\0';
        rc = read_opf(path, opf, dir, opts, &pages, &n_pages, &title, err);
        free(dir);
    }
    if (rc == 0) {
        lqa_doc doc;
        lqa_doc_init(&doc, path, "epub");
        xml_walk w;
        xw_init(&w, &doc, path, opts, lqa_html_element);
        w.html = 1;
        if (title) lqa_db_title(&w.b, title, strlen(title));
        for (int i = 0; i < n_pages; i++) {
            const epub_entry *pg = epub_find(&b, pages[i]);
            lqa_err perr;
            char where[1024];
            snprintf(where, sizeof where, "%s!%s", path, pages[i]);
            xmlDoc *x = pg ? lqa_html_read(where, pg->data, pg->len, opts, &perr) : NULL;
            if (!x) {
                lqa_parse_warn(opts, "%s: %s (page skipped)", where, pg ? perr.msg : "missing from the archive");
                continue;
            }
            lqa_db_para(&w.b);
            lqa_html_walk_page(&w, x, 0);
            xmlFreeDoc(x);
        }
        xw_finish(&w);
        if (doc.text.len == 0) rc = lqa_err_set(err, "%s: no text in any spine page, expected XHTML content", path);
        else sink(&doc, ctx);
        lqa_doc_free(&doc);
    }
    for (int i = 0; i < n_pages; i++) free(pages[i]);
    free(pages);
    free(title);
    free(opf_path);
    epub_free(&b);
    return rc;
}
