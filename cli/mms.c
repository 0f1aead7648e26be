/* mms: the command-line front end; dispatches to cli/cmd_*.c. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/locate.h"
#include "core/prepost.h"
#include "core/version.h"
#include "mms/mms.h"


static const struct cli_command *const commands[] = {
    &cli_run, &cli_info, &cli_segment, &cli_eval, &cli_bench, &cli_calibrate, &cli_synth,
    &cli_ctl, NULL,
};

static void print_help(FILE *f)
{
    fprintf(f, "Usage: mms COMMAND [OPTIONS] [ARGS]\n"
               "       mms --version\n\n"
               "Segments surgical tools in video frames with a neural network on the CPU.\n\n"
               "Commands:\n");
    for (const struct cli_command *const *c = commands; *c; c++)
        fprintf(f, "  %-10s %s\n", (*c)->spec->name, (*c)->spec->summary);
    fprintf(f, "\nRun 'mms COMMAND --help' for a command's options.\n");
}

static const struct cli_command *find_command(const char *name)
{
    for (const struct cli_command *const *c = commands; *c; c++)
        if (!strcmp((*c)->spec->name, name))
            return *c;
    return NULL;
}

int main(int argc, char **argv)
{
    /* Errors reach the user as one line each, through mms_err. */
    mms_image_quiet(1);
    if (argc < 2) {
        print_help(stderr);
        return ARGS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_help(stdout);
        return ARGS_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("mms %s (libmms %s)\n", MMS_VERSION, mms_version());
        return ARGS_EXIT_OK;
    }
    if (!strcmp(name, "help") && argc == 2) {
        print_help(stdout);
        return ARGS_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        const struct cli_command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, "mms: unknown command '%s' (see 'mms --help')\n", argv[2]);
            return ARGS_EXIT_USAGE;
        }
        /* Each command prints its own help, from its option table. */
        char *help_argv[] = {argv[2], "--help", NULL};
        return c->run(2, help_argv);
    }
    const struct cli_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "mms: unknown %s '%s' (see 'mms --help')\n",
                name[0] == '-' ? "option" : "command", name);
        return ARGS_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
