#ifndef MMS_CLI_ARGS_H
#define MMS_CLI_ARGS_H

/*
 * The mms subcommands' command line: the argv syntax of the option engine
 * (core/option.h), as daemon/config.c is its INI syntax. Each command
 * describes its options in a struct mms_option table over a struct of its
 * own; the engine parses and checks every value and prints the help, so
 * they cannot disagree. Options that are pipeline options (model,
 * threads, style, ...) are not declared again: a command names them and
 * they come from the pipeline table (pipeline/options.c), spelling, range,
 * default and help included.
 *
 * GNU style: options and operands mix freely, "--name value" and
 * "--name=value" both work, a flag (MMS_OPT_BOOL) takes no value, "--"
 * ends the options, -h means --help. Usage errors print one line,
 * "mms CMD: ... (see 'mms CMD --help')", and the command exits 2.
 */

#include <stddef.h>

#include "core/option.h"

/* Exit statuses shared by every command. */
enum { ARGS_EXIT_OK = 0, ARGS_EXIT_FAIL = 1, ARGS_EXIT_USAGE = 2 };

/* Another spelling of an option: "-o" for --output (the value follows, as
 * it would the option), "--live" for --mode live. */
struct args_alias {
    const char *word;
    const char *name;  /* the option's, in the command's table */
    const char *value; /* NULL: the next word */
};

struct args_cmd {
    const char *name;    /* "segment" */
    const char *usage;   /* what follows "mms segment " in the usage line */
    const char *summary; /* one line, also listed by `mms --help` */
    const char *details; /* more help text after the options, or NULL */
    const struct mms_option *opts; /* the command's own, over its struct; NULL: none */
    /* Pipeline options the command takes too: these names (NULL-ended), or
     * every one with pipeline_all. They are stored in the struct
     * mms_pipeline_opts at pipeline_offset of the command's struct, and
     * come first in --help. */
    const char *const *pipeline;
    int pipeline_all;
    size_t pipeline_offset;
    const struct args_alias *aliases; /* ends with {0}; NULL: none */
    int min_operands, max_operands;   /* max -1: unbounded */
};

#define ARGS_MAX_OPTS 32

struct args {
    const struct args_cmd *cmd;
    /* The command's table as the engine sees it: the pipeline options it
     * names, moved to pipeline_offset, then its own. */
    struct mms_option table[ARGS_MAX_OPTS + 1];
    void *obj;
    char **operands; /* the non-option words, in order */
    int noperands;
};

/* Sets obj (zeroed by the caller) to the table's defaults, then to
 * argv[1..argc-1] (argv[0] is the command name). Operands are gathered at
 * the front of argv's own array. Returns -1 to go on (release obj with
 * args_free), else the status to exit with and obj is already released:
 * 0 after printing --help, 2 after a usage error. */
int args_parse(const struct args_cmd *cmd, void *obj, int argc, char **argv, struct args *a);

/* Frees the strings args_parse stored in obj. */
void args_free(struct args *a);

/* A required option left unset: prints "missing --NAME ARG" as a usage
 * error and returns ARGS_EXIT_USAGE. */
int args_missing(const struct args *a, const char *name);

/* Prints "mms CMD: <message> (see 'mms CMD --help')" on stderr and
 * returns ARGS_EXIT_USAGE. */
int args_usage_error(const struct args_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
