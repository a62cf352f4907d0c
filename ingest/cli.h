/* cli.h: the lqa-ingest subcommands (ingest/main.c dispatches): add (ingest/add.c), stats and
 * search (ingest/stats.c), export (ingest/export.c). Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef LQA_INGEST_CLI_H
#define LQA_INGEST_CLI_H

/* Exit statuses: 0 ok, 1 fatal, 2 usage error, 3 some inputs failed (the others were added). */
enum { LQA_EXIT_OK = 0, LQA_EXIT_FATAL = 1, LQA_EXIT_USAGE = 2, LQA_EXIT_INPUTS = 3 };

int lqa_cmd_add(int argc, char **argv);
int lqa_cmd_stats(int argc, char **argv);
int lqa_cmd_search(int argc, char **argv);
int lqa_cmd_export(int argc, char **argv);

#endif
