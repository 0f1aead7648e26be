/* mms: the command-line front end. Dispatches to cli/cmd_*.c and holds
 * what those commands share. */
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

static const struct cli_command *const commands[] = {
    &cli_info, &cli_segment, &cli_eval, &cli_bench, NULL,
};

/* ---- shared by the commands ---- */

int cli_fail(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mms %s: %s\n", cmd, msg);
    return ARGS_EXIT_FAIL;
}

static bool has_option(const struct args_cmd *cmd, const char *name)
{
    for (const struct args_opt *o = cmd->opts; o->name; o++)
        if (!strcmp(o->name, name))
            return true;
    return false;
}

static int net_precision(const struct args *a, struct cli_net *cn)
{
    cn->precision = "fp32";
    if (!has_option(a->cmd, "precision") || !args_get(a, "precision"))
        return CLI_GO_ON;
    const char *p = args_get(a, "precision");
    int ret = mms_precision_parse(p, &cn->opts.precision);
    if (ret == -ENOTSUP)
        return cli_fail(a->cmd->name, "precision %s is not supported by this build", p);
    if (ret < 0)
        return args_usage_error(a->cmd, "unknown precision '%s' (known: fp32)", p);
    cn->precision = p;
    return CLI_GO_ON;
}

int cli_net_options(const struct args *a, const char *model, struct cli_net *cn)
{
    memset(cn, 0, sizeof(*cn));
    if (has_option(a->cmd, "threads") &&
        args_int(a, "threads", 0, 0, 256, &cn->opts.threads) < 0)
        return ARGS_EXIT_USAGE;
    int ret = net_precision(a, cn);
    if (ret != CLI_GO_ON)
        return ret;
    if (!model && has_option(a->cmd, "model"))
        model = args_get(a, "model");
    if (model) {
        if ((size_t)snprintf(cn->model, sizeof(cn->model), "%s", model) >= sizeof(cn->model))
            return cli_fail(a->cmd->name, "%s: %s", model, strerror(ENAMETOOLONG));
    } else if (mms_locate_default_model(cn->model, sizeof(cn->model)) < 0) {
        return cli_fail(a->cmd->name, "%s", cn->model);
    }
    return CLI_GO_ON;
}

int cli_net_open(const char *cmd, struct cli_net *cn)
{
    struct mms_err err = {{0}};
    int ret = mms_net_open(cn->model, &cn->opts, &cn->net, &err);
    if (ret < 0)
        return cli_fail(cmd, "%s", err.msg[0] ? err.msg : strerror(-ret));
    return CLI_GO_ON;
}

void cli_net_close(struct cli_net *cn)
{
    mms_net_close(cn->net);
    cn->net = NULL;
}

int cli_segment_frame(struct mms_net *net, const struct mms_image *rgb,
                      struct mms_image *mask, struct mms_err *err)
{
    const struct mms_net_info *ni = mms_net_info(net);
    mms_pre_rgb24(rgb->data, rgb->w, rgb->h, rgb->stride, mms_net_input(net), ni->in_h,
                  ni->in_w, ni->mean, ni->std);
    int ret = mms_net_run(net, err);
    if (ret < 0)
        return ret;
    if ((ret = mms_image_alloc(mask, rgb->w, rgb->h, MMS_IMAGE_GRAY8)) < 0)
        return mms_err_set(err, ret, "out of memory");
    mms_post_mask(mms_net_logits(net), ni->out_h, ni->out_w, mask->data, mask->w, mask->h,
                  mask->stride, ni->threshold);
    return 0;
}

struct json_object *cli_json_num(double v, int decimals)
{
    if (!isfinite(v))
        return NULL; /* json-c writes a NULL member as null */
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    return json_object_new_double_s(v, buf);
}

void cli_json_print(struct json_object *obj)
{
    puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(obj);
}

int cli_stem(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n + 1 > len)
        return -ENAMETOOLONG;
    memcpy(buf, base, n);
    buf[n] = '\0';
    return 0;
}

static int mkdir_one(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int cli_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int ret = mkdir_one(buf);
        *p = '/';
        if (ret < 0)
            return ret;
    }
    int ret = mkdir_one(buf);
    if (ret < 0)
        return ret;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- dispatch ---- */

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
        printf("mms %s\n", MMS_VERSION);
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
        args_print_help(c->spec);
        return ARGS_EXIT_OK;
    }
    const struct cli_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "mms: unknown %s '%s' (see 'mms --help')\n",
                name[0] == '-' ? "option" : "command", name);
        return ARGS_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
