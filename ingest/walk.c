/* walk.c: the input tree walker of ingest/walk.h: symlinks kept inside the named root,
 * directories visited once by device and inode and listed through checked descriptors,
 * non-regular files skipped unopened, each input pinned for the opener, names in byte order, and
 * the --include/--exclude globs and default excludes. */
#include "ingest/walk.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

/* Directories entered, by (device, inode): open addressing, grown at half full. */
typedef struct dir_set {
    uint64_t *keys; /* pairs dev, ino; (0, 0) is an empty slot */
    size_t cap, n;
} dir_set;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Adds (dev, ino); returns 0 when it was there already. */
static int dir_set_add(dir_set *s, uint64_t dev, uint64_t ino) {
    if (dev == 0 && ino == 0) ino = 1; /* never the empty key */
    if (2 * (s->n + 1) > s->cap) {
        dir_set old = *s;
        s->cap = old.cap ? 2 * old.cap : 64;
        s->keys = lqa_calloc(2 * s->cap, sizeof *s->keys);
        s->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[2 * i] || old.keys[2 * i + 1]) dir_set_add(s, old.keys[2 * i], old.keys[2 * i + 1]);
        free(old.keys);
    }
    size_t i = (size_t)(mix64(dev * 0x9e3779b97f4a7c15ull ^ ino) & (s->cap - 1));
    for (;; i = (i + 1) & (s->cap - 1)) {
        uint64_t *k = s->keys + 2 * i;
        if (k[0] == dev && k[1] == ino) return 0;
        if (!k[0] && !k[1]) {
            k[0] = dev;
            k[1] = ino;
            s->n++;
            return 1;
        }
    }
}

struct lqa_walker {
    lqa_walk_opts o;
    lqa_walk_fns fns;
    void *ctx;
    lqa_walk_counts counts;
    dir_set seen;
    /* the PATH being walked */
    char *root_real; /* its real path: links must stay below it */
    size_t root_len; /* length of the PATH as given: the path below it starts after it */
};

#define WALK_MAX_DEPTH 64

lqa_walker *lqa_walker_new(const lqa_walk_opts *opts, const lqa_walk_fns *fns, void *ctx) {
    lqa_walker *w = lqa_calloc(1, sizeof *w);
    if (opts) w->o = *opts;
    w->fns = *fns;
    w->ctx = ctx;
    return w;
}

const lqa_walk_counts *lqa_walker_counts(const lqa_walker *w) { return &w->counts; }

void lqa_walker_free(lqa_walker *w) {
    if (!w) return;
    free(w->seen.keys);
    free(w->root_real);
    free(w);
}

static void walk_failed(lqa_walker *w, const char *fmt, const char *path, const char *what) {
    char msg[PATH_MAX + 512];
    snprintf(msg, sizeof msg, fmt, path, what);
    w->fns.failed(w->ctx, msg);
}

static void walk_warn(lqa_walker *w, const char *fmt, const char *path, const char *what) {
    char msg[2 * PATH_MAX + 512];
    snprintf(msg, sizeof msg, fmt, path, what);
    if (w->fns.warn) w->fns.warn(w->ctx, msg);
}

/* What a stat mode is, in words. */
static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return "not a regular file";
}

/* ---- names ---- */

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entry names of the open directory dir_fd (hidden ones skipped): 0, or -1 (errno set)
 * when it cannot be read. An empty directory gives n = 0 and names = NULL. */
static int list_dir(int dir_fd, char ***names_out, int *n) {
    *n = 0;
    *names_out = NULL;
    int fd = dup(dir_fd); /* closedir closes it; dir_fd stays open for the entries' fstatat */
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    for (;;) {
        errno = 0;
        if ((e = readdir(d)) == NULL) break;
        if (e->d_name[0] == '.') continue;
        if (*n == cap) names = lqa_realloc(names, (size_t)(cap = cap ? 2 * cap : 32) * sizeof *names);
        names[(*n)++] = lqa_strdup(e->d_name);
    }
    int e_read = errno; /* readdir's: 0 at the end of the directory */
    closedir(d);
    if (*n > 1) qsort(names, (size_t)*n, sizeof *names, name_cmp); /* never qsort(NULL, 0) */
    *names_out = names;
    errno = e_read;
    return e_read ? -1 : 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int has_name(char *const *names, int n, const char *name) {
    return bsearch(&name, names, (size_t)n, sizeof *names, name_cmp) != NULL;
}

/* index.en.html, else index.html, else the first index.*.html, else index.page (Mallard), of a
 * manual directory (names sorted); NULL if none. index.en.html first: a bare index.html is often
 * a language chooser (debian-reference). */
static char *manual_index(const char *dir, char *const *names, int n) {
    if (has_name(names, n, "index.en.html")) return lqa_path_join(dir, "index.en.html");
    if (has_name(names, n, "index.html")) return lqa_path_join(dir, "index.html");
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (!strncmp(names[i], "index.", 6) && len > 11 && !strcmp(names[i] + len - 5, ".html"))
            return lqa_path_join(dir, names[i]);
    }
    if (has_name(names, n, "index.page")) return lqa_path_join(dir, "index.page"); /* a Mallard help directory */
    return NULL;
}

/* ---- filters ---- */

static int ends_with_ci(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* Length of name without a compression suffix (.gz .bz2 .xz .zst). */
static size_t strip_codec(const char *name, size_t n) {
    static const char *const codecs[] = {".gz", ".bz2", ".xz", ".zst", NULL};
    for (int i = 0; codecs[i]; i++)
        if (ends_with_ci(name, n, codecs[i]) && n > strlen(codecs[i])) return n - strlen(codecs[i]);
    return n;
}

const char *lqa_walk_default_exclude(const char *name) {
    static const struct {
        const char *why;
        const char *exts;
    } groups[] = {
        {"a stylesheet", ".css .less .scss .sass "},
        {"a script", ".js .mjs .cjs .map .jsonp "},
        {"an image", ".png .jpg .jpeg .gif .svg .svgz .ico .webp .bmp .tif .tiff .xcf .eps "},
        {"a font", ".woff .woff2 .ttf .otf .eot .pfb .afm "},
        {"media", ".mp3 .mp4 .ogg .ogv .oga .wav .webm .avi .mov .flac "},
        {"an archive or binary", ".zip .tar .tgz .jar .deb .rpm .whl .so .a .o .pyc .class .exe .dll .bin .db "
                                 ".sqlite .pdf .ps .dvi .inv .buildinfo "},
    };
    size_t full = strlen(name), n = strip_codec(name, full);
    const char *dot = NULL;
    for (size_t i = n; i > 0; i--)
        if (name[i - 1] == '.') {
            dot = name + i - 1;
            break;
        }
    if (dot && dot != name) {
        char ext[24];
        size_t el = (size_t)(name + n - dot);
        if (el + 2 < sizeof ext) {
            for (size_t i = 0; i < el; i++) ext[i] = (char)tolower((unsigned char)dot[i]);
            ext[el] = ' ';
            ext[el + 1] = '\0';
            for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
                if (strstr(groups[g].exts, ext)) return groups[g].why;
        }
    }
    /* a store's own journal files, when it is written inside the tree it reads */
    if (ends_with_ci(name, full, ".db-wal") || ends_with_ci(name, full, ".db-shm") || ends_with_ci(name, full, ".db-journal"))
        return "a database journal";
    /* search indexes (Sphinx searchindex.js is caught above; MkDocs and others write JSON) and
     * the search and general-index pages, which hold no text of their own */
    static const char *const index_prefixes[] = {"searchindex.", "search_index.", "search-index.", NULL};
    for (int i = 0; index_prefixes[i]; i++)
        if (!strncasecmp(name, index_prefixes[i], strlen(index_prefixes[i]))) return "a search index";
    if (!strcasecmp(name, "search.html") || !strcasecmp(name, "genindex.html") || !strncasecmp(name, "genindex-", 9))
        return "a search or index page";
    if (!strncasecmp(name, "changelog", 9) || !strncasecmp(name, "NEWS.Debian", 11) || !strcmp(name, "CHANGES") ||
        !strncmp(name, "CHANGES.", 8))
        return "a changelog";
    return NULL;
}

/* Directories that hold no documents of their own: Sphinx's copies of the sources and its
 * static files, caches. */
static const char *default_exclude_dir(const char *name) {
    static const char *const dirs[] = {"_sources", "_static", "_images", "__pycache__", "node_modules", NULL};
    for (int i = 0; dirs[i]; i++)
        if (!strcmp(name, dirs[i])) return "no documents (build output)";
    return NULL;
}

/* page.txt.gz (or .text, .md, .markdown, .json; compressed or not) beside page.html: the
 * same page again, as a second document (Debian's doc packages ship HTML with text twins;
 * Node's API docs ship each page as .html, .md and .json). The page is kept. */
static int is_twin(const char *name, char *const *names, int n_names) {
    static const char *const stems[] = {".txt", ".text", ".md", ".markdown", ".json", NULL};
    static const char *const pages[] = {".html", ".htm", ".xhtml", NULL};
    size_t n = strip_codec(name, strlen(name));
    for (int i = 0; stems[i]; i++) {
        if (!ends_with_ci(name, n, stems[i])) continue;
        size_t base = n - strlen(stems[i]);
        char sib[NAME_MAX + 16];
        if (base == 0 || base + 8 > sizeof sib) return 0;
        for (int p = 0; pages[p]; p++) {
            memcpy(sib, name, base);
            strcpy(sib + base, pages[p]);
            if (has_name(names, n_names, sib)) return 1;
        }
    }
    return 0;
}

int lqa_walk_glob_match(const char *glob, const char *rel, const char *name) {
    return fnmatch(glob, strchr(glob, '/') ? rel : name, 0) == 0;
}

static int any_glob(const char *const *globs, int n, const char *rel, const char *name) {
    for (int i = 0; i < n; i++)
        if (lqa_walk_glob_match(globs[i], rel, name)) return 1;
    return 0;
}

/* Whether a file met in a tree is taken. */
static int take_file(lqa_walker *w, const char *rel, const char *name, char *const *names, int n_names) {
    if (any_glob(w->o.exclude, w->o.n_exclude, rel, name)) {
        w->counts.excluded++;
        return 0;
    }
    if (any_glob(w->o.include, w->o.n_include, rel, name)) return 1;
    if (w->o.n_include > 0) {
        w->counts.excluded++;
        return 0;
    }
    if (!w->o.no_default_excludes && (lqa_walk_default_exclude(name) || is_twin(name, names, n_names))) {
        w->counts.not_documents++;
        return 0;
    }
    return 1;
}

/* ---- links ---- */

/* Whether real (a real path) is the root or below it. */
static int inside_root(const lqa_walker *w, const char *real) {
    size_t n = strlen(w->root_real);
    if (n == 1) return 1; /* the root is "/" */
    return strncmp(real, w->root_real, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* An entry that lstat found to be a symbolic link: its target's stat when it is to be
 * followed, else 0 after a warning. The target's stat must be the stat of its real path: a
 * link retargeted between the two looks up is not followed (its identity is what the opener
 * checks later, so it must be the file found inside the tree). */
static int follow_link(lqa_walker *w, const char *path, struct stat *st) {
    if (stat(path, st) != 0) {
        w->counts.not_regular++;
        walk_warn(w, "%s: broken symbolic link (%s), skipped", path, strerror(errno));
        return 0;
    }
    if (w->o.follow_symlinks) return 1;
    char *real = realpath(path, NULL);
    struct stat real_st;
    int in = real && inside_root(w, real) && stat(real, &real_st) == 0 && same_file(st, &real_st);
    if (!in) {
        w->counts.links_out++;
        walk_warn(w, "%s: symbolic link to %s leaves the input tree, not followed (--follow-symlinks follows it)",
                  path, real ? real : "?");
    }
    free(real);
    return in;
}

/* A manual's index page must be a regular file, or a link that may be followed: the manual is
 * read from the folder of the index's real path. pin: the index page found, which the manual's
 * parser checks when it opens it (its other pages it checks itself, ingest/join.c). */
static int index_ok(lqa_walker *w, const char *index, lqa_input_pin *pin) {
    struct stat st;
    if (lstat(index, &st) != 0) return 0;
    int link = S_ISLNK(st.st_mode);
    if (link) { /* checked quietly: the folder's walk warns about the link */
        if (stat(index, &st) != 0) return 0;
        if (!w->o.follow_symlinks) {
            char *real = realpath(index, NULL);
            struct stat real_st;
            int in = real && inside_root(w, real) && stat(real, &real_st) == 0 && same_file(&st, &real_st);
            free(real);
            if (!in) return 0;
        }
    }
    *pin = (lqa_input_pin){(uint64_t)st.st_dev, (uint64_t)st.st_ino, link || w->o.follow_symlinks};
    return S_ISREG(st.st_mode);
}

/* ---- the walk ---- */

static void walk_dir(lqa_walker *w, const char *path, const struct stat *st, int via_link, const char *top, int depth);

/* One entry of the directory open as dir_fd (or the PATH itself at depth 0, dir_fd AT_FDCWD,
 * where nothing is filtered). The entry is looked up in the directory the walk opened and
 * checked, not by its path again: a parent swapped for a link meanwhile cannot redirect it. */
static void walk_entry(lqa_walker *w, int dir_fd, const char *path, const char *name, const char *top, int depth,
                       char *const *sibs, int n_sibs) {
    struct stat st;
    if (fstatat(dir_fd, depth == 0 ? path : name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        walk_failed(w, "%s: cannot read: %s", path, strerror(errno));
        return;
    }
    int via_link = S_ISLNK(st.st_mode) || w->o.follow_symlinks;
    if (S_ISLNK(st.st_mode) && !(depth == 0 ? stat(path, &st) == 0 : follow_link(w, path, &st))) {
        if (depth == 0) walk_failed(w, "%s: cannot read: %s", path, strerror(errno));
        return;
    }
    const char *rel = depth == 0 ? name : path + w->root_len;
    if (depth > 0 && *rel == '/') rel++;
    if (S_ISDIR(st.st_mode)) {
        if (depth > 0 && any_glob(w->o.exclude, w->o.n_exclude, rel, name)) return;
        if (depth > 0 && !w->o.no_default_excludes && default_exclude_dir(name)) return;
        walk_dir(w, path, &st, via_link, depth == 1 ? name : top, depth);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        if (depth == 0) {
            walk_failed(w, "%s: is %s, expected a regular file or a directory", path, file_kind(st.st_mode));
        } else {
            w->counts.not_regular++;
            walk_warn(w, "%s: %s, skipped (only regular files are read)", path, file_kind(st.st_mode));
        }
        return;
    }
    if (depth > 0 && !take_file(w, rel, name, sibs, n_sibs)) return;
    lqa_input_pin pin = {(uint64_t)st.st_dev, (uint64_t)st.st_ino, via_link};
    w->fns.input(w->ctx, path, depth >= 2 ? top : NULL, NULL, (double)st.st_size, &pin);
}

static double dir_bytes(const char *dir, char *const *names, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        char *p = lqa_path_join(dir, names[i]);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) total += (double)st.st_size;
        free(p);
    }
    return total;
}

/* Opens the directory the walk found at path (st): not a link unless the walk followed one, and
 * the same directory by device and inode, so what is listed is what was checked. */
static int open_dir(lqa_walker *w, const char *path, const struct stat *st, int via_link) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (via_link ? 0 : O_NOFOLLOW));
    struct stat now;
    if (fd >= 0 && (fstat(fd, &now) != 0 || !same_file(&now, st))) {
        close(fd);
        walk_failed(w, "%s: %s", path, "replaced during the walk, not listed");
        return -1;
    }
    if (fd < 0) walk_failed(w, "%s: cannot list directory: %s", path, strerror(errno));
    return fd;
}

static void walk_dir(lqa_walker *w, const char *path, const struct stat *st, int via_link, const char *top, int depth) {
    if (!dir_set_add(&w->seen, (uint64_t)st->st_dev, (uint64_t)st->st_ino)) {
        w->counts.revisits++;
        return;
    }
    if (depth > WALK_MAX_DEPTH) {
        walk_failed(w, "%s: directories nested more than %s deep, expected a shallower tree", path, "64");
        return;
    }
    int dir_fd = open_dir(w, path, st, via_link);
    if (dir_fd < 0) return;
    char **names;
    int n;
    if (list_dir(dir_fd, &names, &n) != 0) {
        walk_failed(w, "%s: cannot list directory: %s", path, strerror(errno));
        free_names(names, n);
        close(dir_fd);
        return;
    }
    char *index = w->o.join ? manual_index(path, names, n) : NULL;
    lqa_input_pin index_pin;
    if (index && !index_ok(w, index, &index_pin)) { /* an index linking out of the tree: walk the folder instead */
        free(index);
        index = NULL;
    }
    if (index) {
        w->fns.input(w->ctx, path, depth >= 1 ? top : NULL, index, dir_bytes(path, names, n), &index_pin);
        free(index);
        free_names(names, n);
        close(dir_fd);
        return;
    }
    for (int i = 0; i < n; i++) {
        char *child = lqa_path_join(path, names[i]);
        walk_entry(w, dir_fd, child, names[i], top, depth + 1, names, n);
        free(child);
    }
    free_names(names, n);
    close(dir_fd);
}

void lqa_walker_run(lqa_walker *w, const char *path) {
    /* trailing slashes would leave an empty name */
    char *copy = lqa_strdup(path);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    free(w->root_real);
    w->root_real = realpath(copy, NULL);
    if (!w->root_real) w->root_real = lqa_strdup(copy);
    w->root_len = n;
    const char *base = strrchr(copy, '/');
    walk_entry(w, AT_FDCWD, copy, base && base[1] ? base + 1 : copy, NULL, 0, NULL, 0);
    free(copy);
}
