#ifndef MMS_CLI_ARGS_H
#define MMS_CLI_ARGS_H

/*
 * Command-line options for the mms subcommands. Each command describes
 * its options once, in a table; parsing, --help text and usage errors all
 * come from it, so they cannot disagree.
 *
 * GNU style: options and operands mix freely, "--name value" and
 * "--name=value" both work, "--" ends the options, -h means --help.
 * Usage errors print one line, "mms CMD: ...", and the command exits 2.
 */

#include <stdbool.h>

/* Exit statuses shared by every command. */
enum { ARGS_EXIT_OK = 0, ARGS_EXIT_FAIL = 1, ARGS_EXIT_USAGE = 2 };

struct args_opt {
    const char *name; /* long name without "--" */
    const char *arg;  /* metavariable ("N", "DIR"); NULL for a flag */
    const char *help;
};

struct args_cmd {
    const char *name;     /* "segment" */
    const char *usage;    /* what follows "mms segment " in the usage line */
    const char *summary;  /* one line, also listed by `mms --help` */
    const char *details;  /* more help text after the options, or NULL */
    const struct args_opt *opts; /* ends with {0}; --help is implied */
    int min_operands, max_operands; /* max -1: unbounded */
};

#define ARGS_MAX_OPTS 16

struct args {
    const struct args_cmd *cmd;
    const char *val[ARGS_MAX_OPTS]; /* per table entry: NULL if absent, "" for a flag */
    char **operands;                /* the non-option words, in order */
    int noperands;
};

/* Parses argv[1..argc-1] (argv[0] is the command name). Operands are
 * gathered at the front of argv's own array, so nothing is allocated.
 * Returns -1 to go on, else the status to exit with: 0 after printing
 * --help, 2 after a usage error. */
int args_parse(const struct args_cmd *cmd, int argc, char **argv, struct args *a);

/* The value of option `name`, NULL when it was not given. A name missing
 * from the table is a programming error and aborts. */
const char *args_get(const struct args *a, const char *name);
bool args_flag(const struct args *a, const char *name);

/* Converts option `name` (def when absent) to an int in lo..hi; on a bad
 * value prints the usage error and returns -1. */
int args_int(const struct args *a, const char *name, int def, int lo, int hi, int *out);

/* A required option; prints "missing --name" and returns NULL. */
const char *args_need(const struct args *a, const char *name);

/* Prints "mms CMD: <message> (see 'mms CMD --help')" on stderr and
 * returns ARGS_EXIT_USAGE. */
int args_usage_error(const struct args_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void args_print_help(const struct args_cmd *cmd);

#endif
