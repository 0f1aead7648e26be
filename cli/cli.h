#ifndef MMS_CLI_H
#define MMS_CLI_H

/*
 * What the mms subcommands share. Each command is a table entry whose
 * run() gets argv with argv[0] = its name and returns the exit status;
 * the helpers below (cli/mms.c) keep their error lines and network setup
 * alike. Helpers that may end the command return -1 to go on, else the
 * exit status, having printed why.
 */

#include <limits.h>
#include <stddef.h>

#include "cli/args.h"
#include "core/net.h"
#include "io/image.h"
#include "pipeline/options.h"

struct cli_command {
    const struct args_cmd *spec;
    int (*run)(int argc, char **argv);
};

extern const struct cli_command cli_info, cli_segment, cli_eval, cli_bench, cli_run, cli_synth,
    cli_ctl, cli_calibrate;

#define CLI_GO_ON (-1)

/* Prints "mms CMD: <message>" on stderr; returns ARGS_EXIT_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cli_net {
    char model[PATH_MAX];
    const char *precision; /* its name, for reports */
    struct mms_net_opts opts;
    struct mms_net *net;
};

/* The network's settings from the pipeline options a command takes
 * (model, precision, threads, size; those it lacks are unset). `model`
 * (may be NULL) is a path the command took some other way, an operand;
 * without either the default model is located. */
int cli_net_options(const struct args *a, const struct mms_pipeline_opts *o, const char *model,
                    struct cli_net *cn);
int cli_net_open(const char *cmd, struct cli_net *cn);
void cli_net_close(struct cli_net *cn);

/* One RGB frame through the net: the mask, 0/255 at the frame's size, is
 * allocated into `mask`. Logits stay readable via mms_net_logits(). */
int cli_segment_frame(struct mms_net *net, const struct mms_image *rgb,
                      struct mms_image *mask, struct mms_err *err);

/* A JSON number printed with `decimals` places rather than json-c's 17
 * significant digits; null for a non-finite value, which JSON lacks. */
struct json_object;
struct json_object *cli_json_num(double v, int decimals);
/* A JSON string of a file name or other outside text: bytes that are not
 * UTF-8 become '?', or the whole output would not be JSON. */
struct json_object *cli_json_text(const char *s);

/* Prints `obj` pretty on stdout, then frees it. */
void cli_json_print(struct json_object *obj);

/* "dir/name.ext" -> "name"; -ENAMETOOLONG if it does not fit. */
int cli_stem(const char *path, char *buf, size_t len);
/* mkdir -p; 0 or a negative errno. */
int cli_mkdirs(const char *dir);

#endif
