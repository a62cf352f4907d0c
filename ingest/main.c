/* main.c: lqa-ingest, documents in, LongQA store out. Dispatches to the subcommands of cli.h. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/escape.h"
#include "ingest/cli.h"

static const char *const USAGE =
    "usage: lqa-ingest COMMAND [options]\n"
    "\n"
    "Builds and reads the LongQA store (SQLite): documents, sections, QA pairs.\n"
    "\n"
    "commands:\n"
    "  add     --db DB [--format auto|FMT] [--source NAME] [--seed N] [--split 0.9,0.05,0.05]\n"
    "          [--generators LIST] [--join] [--max-pairs-per-doc N] [--include GLOB] [--exclude GLOB]\n"
    "          [--no-default-excludes] [--follow-symlinks] PATH...\n"
    "          parse documents, generate QA pairs, add them to the store\n"
    "  stats   --db DB [--json]             counts by source, format, kind, split; length histogram\n"
    "  export  --db DB --format longalpaca|jsonl [--split S] -o FILE\n"
    "  search  --db DB [--limit N] QUERY      full-text search over sections (FTS5 syntax)\n"
    "\n"
    "`lqa-ingest COMMAND --help` describes each command. Docs: docs/INGEST.md, docs/STORE.md.\n";

int main(int argc, char **argv) {
    opterr = 0; /* getopt would print a refused option raw: each command names it, escaped */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? LQA_EXIT_USAGE : LQA_EXIT_OK;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "add")) return lqa_cmd_add(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats")) return lqa_cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return lqa_cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "search")) return lqa_cmd_search(argc - 1, argv + 1);
    lqa_eprintf("lqa-ingest: unknown command '%s', expected add, stats, export or search", cmd);
    fprintf(stderr, "\n%s", USAGE);
    return LQA_EXIT_USAGE;
}
