/* walk.h: the safe walker of input trees: what `lqa-ingest add PATH...` takes from a directory
 * (symbolic links kept inside the named root unless --follow-symlinks, every directory entered
 * once, only regular files, names in byte order), with the --include/--exclude globs and the
 * default excludes. The bytes of an input are read through ingest/input.h. */
#ifndef LQA_WALK_H
#define LQA_WALK_H

#include "ingest/input.h"

/* Walks a PATH argument: a file is one input; a directory is walked recursively in byte order of
 * names, hidden entries skipped, and is safe on hostile trees:
 *  - symbolic links are followed only while they stay inside the named root (its real path),
 *    unless follow_symlinks; a link leaving the tree is skipped with a warning;
 *  - only regular files are inputs: a FIFO, socket or device met in a tree is skipped (with a
 *    warning) without being opened, and one named as PATH is a failed input;
 *  - every directory is entered once (device + inode), so `..` links and link cycles cost one
 *    visit each, never an exponential walk;
 *  - an empty directory is no failure;
 *  - what is checked is what is used: a directory is listed through a descriptor opened without
 *    following a link (unless the walk followed one) and checked to be the directory found, its
 *    entries looked up in it (fstatat), and each file is handed on with its pin (device, inode),
 *    which every later open checks (ingest/input.h), so a name swapped for a link, a FIFO or
 *    another file between the walk and the read is refused, never followed.
 * Files met in a tree (not a PATH named by the user) are filtered: an --exclude glob skips a
 * file or a whole directory; with --include globs a file must match one; by default what is not
 * a document is skipped (stylesheets, scripts, images, fonts, media, archives, search indexes,
 * Sphinx _sources/_static, changelogs, and text twins like page.txt.gz or page.md of a
 * page.html beside it): a file matching an --include is taken even then. A glob without '/'
 * matches the entry's name, one with '/' the path below the root (fnmatch, '*' crosses '/'). */

typedef struct lqa_walk_opts {
    int follow_symlinks;
    int join;                     /* a directory holding index.html (or index.*.html) is one input */
    int no_default_excludes;
    const char *const *include;
    int n_include;
    const char *const *exclude;
    int n_exclude;
} lqa_walk_opts;

typedef struct lqa_walk_fns {
    /* An input: a file, or (join) a manual directory with its index page. top is the name of the
     * first directory below the root it lies in, NULL for the root itself and its own files. pin:
     * what a file (for a manual, its index page) must still be when it is opened
     * (lqa_parse_opts.pin; the parser checks it, so a name swapped after the walk is refused). */
    void (*input)(void *ctx, const char *path, const char *top, const char *index, double bytes,
                  const lqa_input_pin *pin);
    /* A PATH or directory that cannot be read, once per path; reason is the whole message. */
    void (*failed)(void *ctx, const char *reason);
    /* Something skipped that the user may want to know about (a link leaving the tree, a FIFO). */
    void (*warn)(void *ctx, const char *msg);
} lqa_walk_fns;

typedef struct lqa_walk_counts {
    long excluded;      /* files skipped by --include/--exclude */
    long not_documents; /* files skipped by the default excludes (twins included) */
    long links_out;     /* symbolic links leaving the tree, not followed */
    long not_regular;   /* FIFOs, sockets, devices, broken links met in a tree */
    long revisits;      /* directories reached again (.. links, cycles), not walked again */
} lqa_walk_counts;

typedef struct lqa_walker lqa_walker;
/* One walker for all PATHs of a run: a directory reached from two PATHs is walked once. */
lqa_walker *lqa_walker_new(const lqa_walk_opts *opts, const lqa_walk_fns *fns, void *ctx);
void lqa_walker_run(lqa_walker *w, const char *path);
const lqa_walk_counts *lqa_walker_counts(const lqa_walker *w);
void lqa_walker_free(lqa_walker *w);
/* The default exclusion of a file name (its name only, no directory): the reason, or NULL when
 * it may be a document. */
const char *lqa_walk_default_exclude(const char *name);
/* The glob match used by --include/--exclude: rel is the path below the root, name its last
 * component. */
int lqa_walk_glob_match(const char *glob, const char *rel, const char *name);

#endif
