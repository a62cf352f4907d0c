/* test_ingest_walk.c: hostile input trees (issue 16) and the walker's filters (issue 15.5), on
 * real files in the test's tmpdir: a symbolic link to a folder outside the root (its secret must
 * reach no document), a FIFO as PATH and inside a tree (nothing blocks), `..` links (each
 * directory walked once), a newline in a file name (no forged "error:" line), an empty
 * directory (no failure), the default excludes, --include/--exclude, compressed twins, an
 * EPUB whose first entry is not "mimetype" (found by its container), the escaping of every
 * printed message (common/escape.h), and the walk-then-open race: walked files and --join
 * manual pages swapped after their check are refused. */
#include "tests/testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/escape.h"
#include "common/fileio.h"
#include "common/rng.h"
#include "ingest/input.h"
#include "ingest/walk.h"
#include "ingest/parse.h"
#include "store/store.h"
#include "tests/test_sql_util.h"

static lqa_rng g_rng;

/* A plain text document of random words: unique per call (a random tag in its first line). */
static char *random_doc(size_t *len) {
    lqa_buf b = {0};
    lqa_buf_printf(&b, "Document %016llx.\n\n", (unsigned long long)lqa_rng_u64(&g_rng));
    for (int p = 0; p < 4; p++) {
        int words = 20 + (int)lqa_rng_below(&g_rng, 30);
        for (int w = 0; w < words; w++) {
            int wl = 2 + (int)lqa_rng_below(&g_rng, 8);
            for (int i = 0; i < wl; i++) lqa_buf_putc(&b, (char)('a' + lqa_rng_below(&g_rng, 26)));
            lqa_buf_puts(&b, w + 1 == words ? ".\n\n" : lqa_rng_below(&g_rng, 9) == 0 ? ". " : " ");
        }
    }
    *len = b.len;
    return lqa_buf_steal(&b);
}

static void write_doc(const char *path) {
    size_t n;
    char *t = random_doc(&n);
    lqa_test_write(path, t, n);
    free(t);
}

static char *tmp(const char *fmt, const char *a) {
    char name[512];
    snprintf(name, sizeof name, fmt, a);
    return lqa_path_join(lqa_test_tmpdir(), name);
}

static char *ingest_cmd(const char *db, const char *extra, const char *path) {
    lqa_buf b = {0};
    lqa_buf_printf(&b, "timeout 60 %s add --threads 2 --db '%s' %s '%s'", lqa_test_tool("lqa-ingest"), db, extra, path);
    return lqa_buf_steal(&b);
}

/* ---- the walker's inputs, collected ---- */

typedef struct walked {
    lqa_buf inputs; /* one path per line, relative to the root */
    lqa_buf failed, warned;
    const char *root;
    int n;
} walked;

static void on_input(void *ctx, const char *path, const char *top, const char *index, double bytes,
                     const lqa_input_pin *pin) {
    walked *w = ctx;
    size_t rl = strlen(w->root);
    lqa_buf_printf(&w->inputs, "%s\n", strncmp(path, w->root, rl) == 0 ? path + rl + (path[rl] == '/') : path);
    w->n++;
}
static void on_failed(void *ctx, const char *msg) { lqa_buf_printf(&((walked *)ctx)->failed, "%s\n", msg); }
static void on_warn(void *ctx, const char *msg) { lqa_buf_printf(&((walked *)ctx)->warned, "%s\n", msg); }

static void walk_collect(const char *root, const lqa_walk_opts *o, walked *w, lqa_walk_counts *counts) {
    memset(w, 0, sizeof *w);
    w->root = root;
    lqa_buf_puts(&w->inputs, "\n"); /* every entry is then found as "\nNAME\n" */
    lqa_buf_puts(&w->failed, "");
    lqa_buf_puts(&w->warned, "");
    static const lqa_walk_fns fns = {on_input, on_failed, on_warn};
    lqa_walker *k = lqa_walker_new(o, &fns, w);
    lqa_walker_run(k, root);
    if (counts) *counts = *lqa_walker_counts(k);
    lqa_walker_free(k);
}

static int has_input(const walked *w, const char *rel) {
    char needle[600];
    snprintf(needle, sizeof needle, "\n%s\n", rel);
    return strstr(w->inputs.data, needle) != NULL;
}

static void walked_free(walked *w) {
    lqa_buf_free(&w->inputs);
    lqa_buf_free(&w->failed);
    lqa_buf_free(&w->warned);
}

/* ---- tests ---- */

/* A link to a folder outside the root (as the report's link to /etc) is not followed: its
 * secret reaches no document; --follow-symlinks follows it. A link inside the tree is followed.
 * Also through --join: a manual page linking out of its folder is no page of it. */
static void test_symlink_out_of_tree(void **state) {
    char *outside = tmp("%s", "outside"), *root = tmp("%s", "tree"), *p;
    char secret[64];
    snprintf(secret, sizeof secret, "Secret%016llx", (unsigned long long)lqa_rng_u64(&g_rng));
    p = lqa_path_join(outside, "passwd.txt");
    lqa_buf b = {0};
    lqa_buf_printf(&b, "The %s sits here. It must never be ingested from a tree that links to it.\n", secret);
    lqa_test_write(p, b.data, b.len);
    free(p);
    p = lqa_path_join(root, "docs/a.txt");
    write_doc(p);
    free(p);
    char *link = lqa_path_join(root, "docs/etc"), *inlink = lqa_path_join(root, "alias");
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(symlink("docs", inlink), 0); /* inside the tree: followed (a.txt met twice, walked once) */
    /* a joined manual whose unlinked-page listing holds a link to the outside file */
    char *man = lqa_path_join(root, "manual"), *idx = lqa_path_join(man, "index.html");
    const char *page = "<html><head><title>Manual</title></head><body><h1>Manual</h1><p>Index page text of the "
                       "manual, long enough to be a page. Another sentence follows here.</p></body></html>";
    lqa_test_write(idx, page, strlen(page));
    char *outfile = lqa_path_join(outside, "passwd.txt"), *manlink = lqa_path_join(man, "zz.html");
    assert_int_equal(symlink(outfile, manlink), 0);
    /* and a manual whose index page is a link to a page outside, in a folder with the secret */
    lqa_buf_clear(&b);
    lqa_buf_printf(&b, "<html><head><title>Out</title></head><body><h1>Out</h1><p>The %s again, in a page. "
                       "<a href=\"passwd.html\">more</a></p></body></html>", secret);
    char *outpage = lqa_path_join(outside, "index.html"), *man2 = lqa_path_join(root, "manual2/index.html");
    lqa_test_write(outpage, b.data, b.len);
    lqa_test_write(man2, page, strlen(page)); /* makes the folder; then replaced by the link */
    assert_int_equal(unlink(man2), 0);
    assert_int_equal(symlink(outpage, man2), 0);

    char *db = tmp("%s", "sym.db");
    lqa_buf out = {0};
    char *cmd = ingest_cmd(db, "--join", root);
    int rc = lqa_test_run(&out, "%s", cmd);
    printf("# %s", out.data);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "leaves the input tree, not followed"));
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sections_fts WHERE sections_fts MATCH '%s'", secret);
    assert_int_equal(test_sql_int(db, sql), 0);
    lqa_err err;
    lqa_store *s = lqa_store_open(db, 0, &err);
    assert_non_null(s);
    /* the secret's words are in no document text either (the FTS index only holds sections) */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(lqa_store_db(s), "SELECT id FROM documents", -1, &st, NULL), SQLITE_OK);
    int docs = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        lqa_store_doc d;
        assert_int_equal(lqa_store_get_doc(s, sqlite3_column_int64(st, 0), &d, &err), 0);
        assert_null(strstr(d.text, secret));
        lqa_store_doc_free(&d);
        docs++;
    }
    sqlite3_finalize(st);
    lqa_store_close(s);
    assert_int_equal(docs >= 2, 1); /* a.txt and the manual */
    /* asked for, the link is followed */
    char *db2 = tmp("%s", "sym-follow.db");
    free(cmd);
    cmd = ingest_cmd(db2, "--follow-symlinks", root);
    lqa_buf_clear(&out);
    rc = lqa_test_run(&out, "%s", cmd);
    assert_int_equal(rc, 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM documents WHERE path LIKE '%%/etc/passwd.txt'");
    assert_int_equal(test_sql_int(db2, sql), 1);
    lqa_buf_free(&out), lqa_buf_free(&b);
    free(cmd), free(db), free(db2), free(outside), free(root), free(link), free(inlink), free(man), free(idx);
    free(outfile), free(manlink), free(outpage), free(man2);
}

/* A FIFO named as PATH is a failed input, one met in a tree is skipped: neither blocks (no
 * writer ever opens them; `timeout` would end a blocked run with 124). */
static void test_fifo_never_blocks(void **state) {
    char *root = tmp("%s", "fifo-tree"), *a = lqa_path_join(root, "a.txt"), *f = lqa_path_join(root, "b.txt");
    write_doc(a);
    assert_int_equal(mkfifo(f, 0600), 0);
    char *db = tmp("%s", "fifo.db");
    lqa_buf out = {0};
    char *cmd = ingest_cmd(db, "", f);
    int rc = lqa_test_run(&out, "%s", cmd);
    printf("# %s", out.data);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out.data, "is a FIFO, expected a regular file"));
    free(cmd);
    cmd = ingest_cmd(db, "", root);
    lqa_buf_clear(&out);
    rc = lqa_test_run(&out, "%s", cmd);
    printf("# %s", out.data);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "a FIFO, skipped"));
    assert_non_null(strstr(out.data, "added 1 document"));
    lqa_buf_free(&out);
    free(cmd), free(db), free(root), free(a), free(f);
}

/* `..` links (three, as in the report, at several depths) and a cycle: each directory is walked
 * once, each file is one input, whatever the links; with --follow-symlinks too. */
static void test_dotdot_links_walk_once(void **state) {
    char *root = tmp("%s", "dotdot");
    int depth = 3 + (int)lqa_rng_below(&g_rng, 3), files = 0;
    lqa_buf dir = {0};
    lqa_buf_puts(&dir, root);
    for (int d = 0; d < depth; d++) {
        lqa_buf_printf(&dir, "/d%d", d);
        int k = 1 + (int)lqa_rng_below(&g_rng, 3);
        for (int i = 0; i < k; i++) {
            char name[32];
            snprintf(name, sizeof name, "f%d.txt", i);
            char *p = lqa_path_join(dir.data, name);
            write_doc(p);
            free(p);
            files++;
        }
        char *up = lqa_path_join(dir.data, "up");
        assert_int_equal(symlink("..", up), 0);
        free(up);
    }
    char *cyc = lqa_path_join(dir.data, "back-to-root");
    assert_int_equal(symlink(root, cyc), 0);
    for (int follow = 0; follow < 2; follow++) {
        lqa_walk_opts o = {.follow_symlinks = follow};
        walked w;
        lqa_walk_counts c;
        walk_collect(root, &o, &w, &c);
        assert_int_equal(w.n, files);
        assert_true(c.revisits >= depth); /* each `up` and the cycle reached a known directory */
        assert_string_equal(w.failed.data, "");
        walked_free(&w);
    }
    free(cyc), free(root);
    lqa_buf_free(&dir);
}

/* A newline in a file name cannot forge a line: the name is printed escaped, and no output line
 * begins with the forged text. Also escape.h itself, on random bytes. */
static void test_newline_in_name_escaped(void **state) {
    char *root = tmp("%s", "names");
    char forged[64];
    snprintf(forged, sizeof forged, "error: forged%04x.txt", (unsigned)lqa_rng_below(&g_rng, 65536));
    char name[128];
    snprintf(name, sizeof name, "bad\n%s", forged);
    char *p = lqa_path_join(root, name);
    lqa_test_write(p, "\x01\x02\x03 binary, not text\0", 22);
    char *db = tmp("%s", "names.db");
    lqa_buf out = {0};
    char *cmd = ingest_cmd(db, "", root);
    int rc = lqa_test_run(&out, "%s", cmd);
    printf("# %s", out.data);
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out.data, "bad\\nerror: forged"));
    char line_start[80];
    snprintf(line_start, sizeof line_start, "\n%s", forged);
    assert_null(strstr(out.data, line_start));
    assert_false(strncmp(out.data, forged, strlen(forged)) == 0);
    /* a source is named after a directory: `stats` prints its name escaped too */
    char dir[160];
    snprintf(dir, sizeof dir, "src\n%s/doc.txt", forged);
    char *doc = lqa_path_join(root, dir);
    write_doc(doc);
    lqa_buf_clear(&out);
    free(cmd);
    cmd = ingest_cmd(db, "", root);
    assert_int_equal(lqa_test_run(&out, "%s", cmd), 3); /* the binary file still fails */
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s stats --db '%s'", lqa_test_tool("lqa-ingest"), db), 0);
    assert_non_null(strstr(out.data, "src\\nerror: forged"));
    assert_null(strstr(out.data, line_start));
    free(doc);
    /* escape.h: random bytes come out as one printable line, and escaping twice changes nothing */
    for (int round = 0; round < 200; round++) {
        char in[64], esc[512], again[512];
        size_t n = 1 + lqa_rng_below(&g_rng, sizeof in);
        for (size_t i = 0; i < n; i++) in[i] = (char)(1 + lqa_rng_below(&g_rng, 255));
        size_t m = lqa_escape(in, n, esc, sizeof esc);
        assert_int_equal(strlen(esc), m);
        for (size_t i = 0; i < m; i++) assert_true((unsigned char)esc[i] >= 0x20 && esc[i] != 0x7f);
        assert_true(lqa_escape_clean(esc));
        lqa_escape(esc, m, again, sizeof again);
        assert_string_equal(esc, again);
    }
    char small[8];
    lqa_escape("ab\ncd\x1b", 6, small, sizeof small); /* an escape is never cut in half */
    assert_string_equal(small, "ab\\ncd");
    /* valid UTF-8 is kept, a C1 control (U+009B, a terminal CSI) is not */
    char u[64];
    lqa_escape("na\xc3\xafve \xc2\x9b", 9, u, sizeof u);
    assert_string_equal(u, "na\xc3\xafve \\xc2\\x9b");
    lqa_err err;
    lqa_err_set(&err, "%s: cannot open", name);
    assert_null(strchr(err.msg, '\n'));
    lqa_buf_free(&out);
    free(cmd), free(db), free(root), free(p);
}

/* An empty directory anywhere in a tree is no failed input (exit 0), and a tree of nothing
 * but empty directories adds nothing and fails nothing. */
static void test_empty_directory_is_no_failure(void **state) {
    char *root = tmp("%s", "empties"), *a = lqa_path_join(root, "sub/a.txt"), *e1 = lqa_path_join(root, "empty");
    char *e2 = lqa_path_join(root, "sub/deeper/empty2"), *only = tmp("%s", "only-empty");
    write_doc(a);
    assert_int_equal(lqa_mkdir_p(e1, NULL), 0);
    assert_int_equal(lqa_mkdir_p(e2, NULL), 0);
    assert_int_equal(lqa_mkdir_p(only, NULL), 0);
    char *db = tmp("%s", "empties.db");
    lqa_buf out = {0};
    char *cmd = ingest_cmd(db, "", root);
    int rc = lqa_test_run(&out, "%s", cmd);
    printf("# %s", out.data);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "added 1 document"));
    assert_non_null(strstr(out.data, "0 inputs failed"));
    free(cmd);
    cmd = ingest_cmd(db, "", only);
    lqa_buf_clear(&out);
    assert_int_equal(lqa_test_run(&out, "%s", cmd), 0);
    assert_non_null(strstr(out.data, "0 inputs failed"));
    lqa_buf_free(&out);
    free(cmd), free(db), free(root), free(a), free(e1), free(e2), free(only);
}

/* The default excludes skip what is not a document (each kind of file, also compressed and in
 * upper case), Sphinx's _sources and _static, changelogs and compressed twins of a page;
 * a compressed text with no page beside it is kept; --include takes back an excluded kind,
 * --exclude wins over it; --no-default-excludes takes everything. */
static void test_include_exclude_defaults(void **state) {
    char *root = tmp("%s", "real-tree");
    static const char *const skipped[] = {
        "style.css", "_static/basic.css", "script.js", "jquery.min.js.gz", "searchindex.js", "search_index.json",
        "logo.PNG", "photo.jpeg", "icon.svg", "font.woff2", "manual.pdf", "objects.inv", "_sources/page.rst.txt",
        "changelog.Debian.gz", "ChangeLog", "page.txt.gz", "page.text.gz", "api/fs.md.gz", "api/fs.json.gz",
        "genindex.html", "search.html", "api/fs.md", "api/fs.json", "lqa.db", "lqa.db-wal", NULL};
    static const char *const kept[] = {"page.html", "readme.txt", "jargon.txt.gz", "api/fs.html", "notes.md",
                                       "qa.json", "guide/intro.xhtml", NULL};
    for (int i = 0; skipped[i]; i++) {
        char *p = lqa_path_join(root, skipped[i]);
        write_doc(p);
        free(p);
    }
    for (int i = 0; kept[i]; i++) {
        char *p = lqa_path_join(root, kept[i]);
        write_doc(p);
        free(p);
    }
    walked w;
    lqa_walk_counts c;
    walk_collect(root, NULL, &w, &c);
    for (int i = 0; kept[i]; i++)
        if (!has_input(&w, kept[i])) fail_msg("%s was skipped; inputs:%s", kept[i], w.inputs.data);
    for (int i = 0; skipped[i]; i++)
        if (has_input(&w, skipped[i])) fail_msg("%s was taken; inputs:%s", skipped[i], w.inputs.data);
    int n_kept = 0, n_skipped = 0;
    while (kept[n_kept]) n_kept++;
    while (skipped[n_skipped]) n_skipped++;
    assert_int_equal(w.n, n_kept);
    assert_int_equal(c.not_documents, n_skipped - 2); /* the files in _static/ and _sources/ are never listed */
    walked_free(&w);
    /* a random kind taken back by --include, one kept kind dropped by --exclude */
    const char *back = skipped[lqa_rng_below(&g_rng, 12)]; /* a kind skipped by its name alone */
    const char *slash = strrchr(back, '/');
    const char *base = slash ? slash + 1 : back;
    const char *incl[] = {base}, *excl[] = {"*.md", "guide/*"};
    lqa_walk_opts o = {.include = incl, .n_include = 1, .exclude = excl, .n_exclude = 2};
    walk_collect(root, &o, &w, &c);
    if (strncmp(back, "_s", 2) != 0) assert_true(has_input(&w, back));
    assert_false(has_input(&w, "notes.md"));
    assert_false(has_input(&w, "guide/intro.xhtml"));
    assert_false(has_input(&w, "page.html")); /* with --include, a file must match one */
    walked_free(&w);
    lqa_walk_opts all = {.no_default_excludes = 1};
    walk_collect(root, &all, &w, &c);
    assert_int_equal(w.n, n_kept + n_skipped);
    walked_free(&w);
    free(root);
}

static void zip_add(struct archive *a, const char *name, const char *data) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)strlen(data));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t)strlen(data));
    archive_entry_free(e);
}

static int keep_title(lqa_doc *d, void *ctx) {
    snprintf(ctx, 64, "%s", d->title ? d->title : "");
    return 0;
}

/* An EPUB whose "mimetype" entry comes last (compressed, as careless tools write it), or is
 * missing, is found by its META-INF/container.xml; a zip without one is still refused. */
static void test_epub_found_by_container(void **state) {
    for (int variant = 0; variant < 3; variant++) {
        char title[32], name[64];
        snprintf(title, sizeof title, "Book%08x", (unsigned)lqa_rng_below(&g_rng, 1u << 31));
        snprintf(name, sizeof name, "book%d.epub", variant);
        char *path = lqa_path_join(lqa_test_tmpdir(), name);
        struct archive *a = archive_write_new();
        archive_write_set_format_zip(a);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        if (variant < 2)
            zip_add(a, "META-INF/container.xml",
                    "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:"
                    "container\"><rootfiles><rootfile full-path=\"c.opf\" media-type=\"application/oebps-package+xml\"/>"
                    "</rootfiles></container>");
        lqa_buf opf = {0};
        lqa_buf_printf(&opf, "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
                             "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>%s</dc:title></metadata>"
                             "<manifest><item id=\"p\" href=\"p.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
                             "<spine><itemref idref=\"p\"/></spine></package>", title);
        zip_add(a, "c.opf", opf.data);
        zip_add(a, "p.xhtml", "<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>p</title>"
                              "</head><body><h1>One</h1><p>A page of the book, with a sentence. And another.</p></body></html>");
        if (variant != 1) zip_add(a, "mimetype", "application/epub+zip"); /* last, deflated */
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        lqa_buf_free(&opf);
        assert_int_equal(lqa_input_is_epub_container(path), variant < 2);
        char got[64] = "";
        lqa_err err;
        lqa_parse_opts o = {0};
        int rc = lqa_parse_path(path, &o, keep_title, got, &err);
        if (variant < 2) {
            if (rc != 0) fail_msg("variant %d: %s", variant, err.msg);
            assert_string_equal(got, title);
        } else {
            assert_int_equal(rc, -1); /* a zip that is no EPUB: binary data */
        }
        free(path);
    }
}

/* ---- the walk-then-open race ---- */

typedef struct pinned_inputs {
    char *path[16];
    lqa_input_pin pin[16];
    int n;
} pinned_inputs;

static void on_pinned_input(void *ctx, const char *path, const char *top, const char *index, double bytes,
                            const lqa_input_pin *pin) {
    pinned_inputs *p = ctx;
    assert_non_null(pin);
    assert_true(p->n < 16);
    p->path[p->n] = lqa_strdup(path);
    p->pin[p->n++] = *pin;
}
static void on_pinned_failed(void *ctx, const char *msg) { fail_msg("walk failed: %s", msg); }

/* The walked path ending in name, and its pin. */
static const char *pinned_path(const pinned_inputs *p, const char *name, const lqa_input_pin **pin) {
    size_t n = strlen(name);
    for (int i = 0; i < p->n; i++) {
        size_t l = strlen(p->path[i]);
        if (l > n && p->path[i][l - n - 1] == '/' && !strcmp(p->path[i] + l - n, name)) {
            *pin = &p->pin[i];
            return p->path[i];
        }
    }
    fail_msg("%s was not walked", name);
    return NULL;
}

static int keep_text(lqa_doc *d, void *ctx) {
    lqa_buf_append(ctx, d->text.data, d->text.len);
    return 0;
}

/* Parses the walked input ending in name as add does (the walk's pin checked at every open);
 * returns the parser's result, the documents' text in text. */
static int parse_pinned(const pinned_inputs *p, const char *name, lqa_buf *text, lqa_err *err) {
    const lqa_input_pin *pin;
    const char *path = pinned_path(p, name, &pin);
    lqa_buf_clear(text);
    lqa_buf_puts(text, "");
    lqa_parse_opts o = {.pin = pin};
    int rc = lqa_parse_path(path, &o, keep_text, text, err);
    printf("# %s: %s\n", name, rc ? err->msg : "parsed");
    return rc;
}

static void assert_refused(const pinned_inputs *p, const char *name, const char *why, const char *secret) {
    lqa_buf text = {0};
    lqa_err err;
    assert_int_equal(parse_pinned(p, name, &text, &err), -1);
    assert_non_null(strstr(err.msg, name)); /* names the file */
    assert_non_null(strstr(err.msg, why));
    assert_null(strstr(text.data, secret));
    lqa_buf_free(&text);
}

static void replace_with_link(const char *root, const char *name, const char *target) {
    char *p = lqa_path_join(root, name);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

/* A name the walk found to be a regular file inside the tree is swapped before it is opened, as
 * a racing writer would: for a link to a secret outside (as to /etc/shadow), a FIFO, another
 * file renamed over it; its folder swapped for a link to a folder outside; an in-tree link
 * retargeted outside. Each open is refused naming the file, nothing blocks, the secret reaches
 * no document; the files left alone still parse with their pins. */
static void test_swap_after_walk_refused(void **state) {
    char *outside = tmp("%s", "swap-outside"), *root = tmp("%s", "swap-tree");
    char secret[64];
    snprintf(secret, sizeof secret, "Secret%016llx", (unsigned long long)lqa_rng_u64(&g_rng));
    lqa_buf b = {0};
    lqa_buf_printf(&b, "The %s sits outside the tree. It must never be read through a swapped name.\n", secret);
    char *secret_file = lqa_path_join(outside, "shadow.txt"), *outside_sub = lqa_path_join(outside, "sub");
    lqa_test_write(secret_file, b.data, b.len);
    char *outside_d = lqa_path_join(outside_sub, "d.txt");
    lqa_test_write(outside_d, b.data, b.len);
    static const char *const names[] = {"a.txt", "b.txt", "c.txt", "e.txt", "f.txt", "sub/d.txt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *p = lqa_path_join(root, names[i]);
        write_doc(p);
        free(p);
    }
    char *link = lqa_path_join(root, "link.txt"), *fresh = lqa_path_join(root, ".fresh");
    assert_int_equal(symlink("e.txt", link), 0); /* inside the tree: followed, pinned to e.txt */

    pinned_inputs in = {0};
    static const lqa_walk_fns fns = {on_pinned_input, on_pinned_failed, NULL};
    lqa_walker *k = lqa_walker_new(NULL, &fns, &in);
    lqa_walker_run(k, root);
    lqa_walker_free(k);
    assert_int_equal(in.n, 7);

    lqa_buf text = {0};
    lqa_err err;
    for (int i = 0; i < in.n; i++) { /* before any swap, every input parses with its pin */
        const char *slash = strrchr(in.path[i], '/');
        if (parse_pinned(&in, slash + 1, &text, &err) != 0) fail_msg("%s", err.msg);
    }

    replace_with_link(root, "a.txt", secret_file);
    char *fifo = lqa_path_join(root, "b.txt");
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_doc(fresh); /* a new file renamed over c.txt: another inode */
    char *c = lqa_path_join(root, "c.txt");
    assert_int_equal(rename(fresh, c), 0);
    char *sub = lqa_path_join(root, "sub"), *sub_away = lqa_path_join(root, ".sub-away");
    assert_int_equal(rename(sub, sub_away), 0);
    assert_int_equal(symlink(outside_sub, sub), 0);
    replace_with_link(root, "link.txt", secret_file);

    assert_refused(&in, "a.txt", "symbolic link, not followed", secret);
    assert_refused(&in, "b.txt", "a FIFO", secret);
    assert_refused(&in, "c.txt", "not the file the input walk found", secret);
    assert_refused(&in, "sub/d.txt", "not the file the input walk found", secret);
    assert_refused(&in, "link.txt", "not the file the input walk found", secret);
    /* the lower-level reads check the pin too */
    const lqa_input_pin *pin;
    const char *a = pinned_path(&in, "a.txt", &pin);
    char *data;
    size_t len;
    assert_int_equal(lqa_input_read_all_pinned(a, pin, 1 << 20, &data, &len, &err), -1);
    assert_null(lqa_input_open_pinned(a, pin, &err));
    /* untouched inputs still parse */
    assert_int_equal(parse_pinned(&in, "e.txt", &text, &err), 0);
    assert_true(text.len > 0);
    assert_int_equal(parse_pinned(&in, "f.txt", &text, &err), 0);

    for (int i = 0; i < in.n; i++) free(in.path[i]);
    lqa_buf_free(&b), lqa_buf_free(&text);
    free(outside), free(root), free(secret_file), free(outside_sub), free(outside_d), free(link), free(fresh);
    free(fifo), free(c), free(sub), free(sub_away);
}

/* ---- the same race in a --join manual ---- */

/* A page of random words (a unique tag first), of at least min_bytes of text, linking to links. */
static void write_page(const char *path, const char *title, size_t min_bytes, const char *links) {
    lqa_buf b = {0};
    lqa_buf_printf(&b, "<html><head><title>%s</title></head><body><h1>%s</h1>%s", title, title, links);
    while (b.len < min_bytes) {
        size_t n;
        char *t = random_doc(&n);
        lqa_buf_printf(&b, "<p>%s</p>\n", t);
        free(t);
    }
    lqa_buf_puts(&b, "</body></html>\n");
    lqa_test_write(path, b.data, b.len);
    lqa_buf_free(&b);
}

typedef struct manual_run {
    const char *root, *secret_page, *secret;
    int docs;
    lqa_buf text, warned;
} manual_run;

/* Swaps the manual's chapter pages when the first document (the index's chapter) is handed
 * over: the TOC was read and every chapter checked, chapter 1 read, chapters 2 to 4 not yet. */
static int swap_on_first_doc(lqa_doc *d, void *ctx) {
    manual_run *r = ctx;
    lqa_buf_append(&r->text, d->text.data, d->text.len);
    if (r->docs++ > 0) return 0;
    replace_with_link(r->root, "ch2.html", r->secret_page);
    char *fifo = lqa_path_join(r->root, "ch3.html"), *fresh = lqa_path_join(r->root, ".fresh.html");
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_page(fresh, "Fresh", 100, ""); /* another file renamed over ch4.html */
    char *ch4 = lqa_path_join(r->root, "ch4.html");
    assert_int_equal(rename(fresh, ch4), 0);
    free(fifo), free(fresh), free(ch4);
    return 0;
}

static void on_manual_warn(const char *msg, void *ctx) {
    manual_run *r = ctx;
    printf("# warning: %s\n", msg);
    lqa_buf_printf(&r->warned, "%s\n", msg);
}

/* A --join manual's chapter pages are checked when the index's table of contents links them and
 * read later: swapped in between (through the API, at the first document handed over) for a link
 * to a secret page outside the manual, a FIFO, another file, each read is refused naming the
 * page (the manual keeps the rest), nothing blocks, the secret reaches no document. The index
 * page itself is pinned by the walk: swapped for a link outside after the walk, the manual is
 * refused. */
static void test_join_swap_after_check_refused(void **state) {
    char *outside = tmp("%s", "join-outside"), *root = tmp("%s", "join-tree");
    char *man = lqa_path_join(root, "manual");
    manual_run r = {.root = man};
    char secret[64];
    snprintf(secret, sizeof secret, "Secret%016llx", (unsigned long long)lqa_rng_u64(&g_rng));
    r.secret = secret;
    lqa_buf b = {0};
    lqa_buf_printf(&b, "<html><head><title>Shadow</title></head><body><h1>Shadow</h1><p>The %s sits outside "
                       "the manual. It must never be read through a swapped page.</p></body></html>\n", secret);
    char *secret_page = lqa_path_join(outside, "shadow.html"), *secret_index = lqa_path_join(outside, "index.html");
    lqa_test_write(secret_page, b.data, b.len);
    lqa_test_write(secret_index, b.data, b.len);
    r.secret_page = secret_page;
    static const char *const toc = "<div class=\"toc\"><ul><li><a href=\"ch1.html\">One</a></li><li><a href=\"ch2.html\">"
                                   "Two</a></li><li><a href=\"ch3.html\">Three</a></li><li><a href=\"ch4.html\">Four"
                                   "</a></li></ul></div>";
    char *idx = lqa_path_join(man, "index.html");
    write_page(idx, "Manual", 20000, toc); /* over MIN_CHAPTER_TEXT: chapter 1 starts a document */
    for (int i = 1; i <= 4; i++) {
        char name[32], title[32];
        snprintf(name, sizeof name, "ch%d.html", i);
        snprintf(title, sizeof title, "Chapter %d", i);
        char *p = lqa_path_join(man, name);
        write_page(p, title, 2000, "");
        free(p);
    }

    pinned_inputs in = {0};
    static const lqa_walk_fns fns = {on_pinned_input, on_pinned_failed, NULL};
    lqa_walk_opts wo = {.join = 1};
    lqa_walker *k = lqa_walker_new(&wo, &fns, &in);
    lqa_walker_run(k, root);
    lqa_walker_free(k);
    assert_int_equal(in.n, 1); /* the manual, pinned by its index page */

    lqa_parse_opts o = {.pin = &in.pin[0], .join_by_chapter = 1, .warn = on_manual_warn, .warn_ctx = &r};
    lqa_buf_puts(&r.text, "");
    lqa_buf_puts(&r.warned, "");
    lqa_err err;
    int rc = lqa_parse_manual(idx, &o, swap_on_first_doc, &r, &err);
    if (rc != 0) fail_msg("%s", err.msg);
    assert_true(r.docs >= 2);
    assert_null(strstr(r.text.data, secret));
    assert_non_null(strstr(r.text.data, "Chapter 1"));
    assert_null(strstr(r.text.data, "Fresh"));
    static const char *const refusals[][2] = {{"ch2.html", "symbolic link, not followed"},
                                              {"ch3.html", "a FIFO"},
                                              {"ch4.html", "not the file the input walk found"}};
    for (int i = 0; i < 3; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "%s: cannot open", refusals[i][0]);
        const char *w = strstr(r.warned.data, needle);
        if (!w) fail_msg("no refusal of %s", refusals[i][0]);
        const char *eol = strchr(w, '\n');
        char *hit = strstr(w, refusals[i][1]);
        assert_true(hit && hit < eol);
    }

    /* the index swapped after the walk for a link to an index outside */
    replace_with_link(man, "index.html", secret_index);
    lqa_buf_clear(&r.text);
    lqa_buf_puts(&r.text, "");
    r.docs = 1; /* no more swaps */
    assert_int_equal(lqa_parse_manual(idx, &o, swap_on_first_doc, &r, &err), -1);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "not the file the input walk found"));
    assert_null(strstr(r.text.data, secret));

    for (int i = 0; i < in.n; i++) free(in.path[i]);
    lqa_buf_free(&b), lqa_buf_free(&r.text), lqa_buf_free(&r.warned);
    free(outside), free(root), free(man), free(secret_page), free(secret_index), free(idx);
}

int main(void) {
    lqa_rng_seed(&g_rng, lqa_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symlink_out_of_tree),
        cmocka_unit_test(test_fifo_never_blocks),
        cmocka_unit_test(test_dotdot_links_walk_once),
        cmocka_unit_test(test_newline_in_name_escaped),
        cmocka_unit_test(test_empty_directory_is_no_failure),
        cmocka_unit_test(test_include_exclude_defaults),
        cmocka_unit_test(test_epub_found_by_container),
        cmocka_unit_test(test_swap_after_walk_refused),
        cmocka_unit_test(test_join_swap_after_check_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
