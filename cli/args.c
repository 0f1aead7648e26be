#include "cli/args.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/options.h"

int args_usage_error(const struct args_cmd *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mms %s: %s (see 'mms %s --help')\n", cmd->name, msg, cmd->name);
    return ARGS_EXIT_USAGE;
}

static void print_help(const struct args *a)
{
    const struct args_cmd *cmd = a->cmd;
    printf("Usage: mms %s %s\n\n%s\n\nOptions:\n", cmd->name, cmd->usage, cmd->summary);
    mms_opt_help(a->table, stdout, "--");
    for (const struct args_alias *al = cmd->aliases; al && al->word; al++)
        printf("  %-26s same as --%s%s%s\n", al->word, al->name, al->value ? " " : "",
               al->value ? al->value : "");
    printf("  %-26s %s\n", "-h, --help", "show this help and exit");
    if (cmd->details)
        printf("\n%s\n", cmd->details);
}

static int named(const char *const *names, const char *name)
{
    for (; names && *names; names++)
        if (!strcmp(*names, name))
            return 1;
    return 0;
}

static void add(struct args *a, int *n, const struct mms_option *opt, size_t shift)
{
    if (*n == ARGS_MAX_OPTS)
        abort(); /* the command outgrew struct args */
    a->table[*n] = *opt;
    a->table[*n].offset += shift;
    a->table[*n].count_offset += shift;
    (*n)++;
}

/* The pipeline's entries are copied whole, help and all, and moved to
 * where the command keeps its struct mms_pipeline_opts. */
static void build_table(struct args *a)
{
    const struct args_cmd *cmd = a->cmd;
    int n = 0, wanted = 0;
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++)
        if (cmd->pipeline_all || named(cmd->pipeline, opt->name))
            add(a, &n, opt, cmd->pipeline_offset);
    while (cmd->pipeline && cmd->pipeline[wanted])
        wanted++;
    if (!cmd->pipeline_all && n != wanted)
        abort(); /* a name the pipeline table does not have */
    for (const struct mms_option *opt = cmd->opts; opt && opt->name; opt++)
        add(a, &n, opt, 0);
    memset(&a->table[n], 0, sizeof(a->table[n]));
}

static const struct args_alias *find_alias(const struct args_cmd *cmd, const char *word)
{
    for (const struct args_alias *al = cmd->aliases; al && al->word; al++)
        if (!strcmp(al->word, word))
            return al;
    return NULL;
}

/* One option word, with the next as its value when it needs one. Returns
 * how many words it used, or -1 after a usage error. */
static int parse_option(struct args *a, int argc, char **argv, int i)
{
    const struct args_cmd *cmd = a->cmd;
    const struct args_alias *al = find_alias(cmd, argv[i]);
    const char *value = al ? al->value : NULL;
    char name[64];
    if (al) {
        snprintf(name, sizeof(name), "%s", al->name);
    } else if (argv[i][1] != '-') {
        return args_usage_error(cmd, "unknown option '%s'", argv[i]), -1;
    } else {
        const char *eq = strchr(argv[i] + 2, '=');
        size_t len = eq ? (size_t)(eq - argv[i] - 2) : strlen(argv[i] + 2);
        snprintf(name, sizeof(name), "%.*s", (int)len, argv[i] + 2);
        value = eq ? eq + 1 : NULL;
    }
    const struct mms_option *opt = mms_opt_find(a->table, name);
    if (!opt)
        return args_usage_error(cmd, "unknown option '%s%s'", al ? "" : "--",
                                al ? argv[i] : name), -1;
    int used = 1;
    if (opt->type == MMS_OPT_BOOL) {
        if (value && !al)
            return args_usage_error(cmd, "--%s takes no value", opt->name), -1;
        value = value ? value : "yes";
    } else if (!value) {
        if (i + 1 >= argc)
            return args_usage_error(cmd, "%s needs a value (%s)", argv[i], opt->arg), -1;
        value = argv[i + 1];
        used = 2;
    }
    struct mms_err err = {{0}};
    if (mms_opt_set(a->table, a->obj, opt->name, value, &err))
        return args_usage_error(cmd, "--%s", err.msg), -1; /* the message starts with the name */
    return used;
}

static int parse_words(struct args *a, int argc, char **argv)
{
    const struct args_cmd *cmd = a->cmd;
    int only_operands = 0;
    for (int i = 1; i < argc;) {
        char *w = argv[i];
        if (only_operands || w[0] != '-' || !strcmp(w, "-")) {
            /* Never overtakes i, so moving operands forward is safe. */
            a->operands[a->noperands++] = w;
            i++;
        } else if (!strcmp(w, "--")) {
            only_operands = 1;
            i++;
        } else if (!strcmp(w, "-h") || !strcmp(w, "--help")) {
            print_help(a);
            return ARGS_EXIT_OK;
        } else {
            int used = parse_option(a, argc, argv, i);
            if (used < 0)
                return ARGS_EXIT_USAGE;
            i += used;
        }
    }
    if (a->noperands < cmd->min_operands)
        return args_usage_error(cmd, "%s arguments; usage: mms %s %s",
                                a->noperands ? "too few" : "missing", cmd->name, cmd->usage);
    if (cmd->max_operands >= 0 && a->noperands > cmd->max_operands)
        return args_usage_error(cmd, "unexpected argument '%s'", a->operands[cmd->max_operands]);
    return -1;
}

int args_parse(const struct args_cmd *cmd, void *obj, int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->obj = obj;
    a->operands = argv + 1;
    build_table(a);
    if (mms_opt_defaults(a->table, obj)) {
        fprintf(stderr, "mms %s: out of memory\n", cmd->name);
        return ARGS_EXIT_FAIL;
    }
    int ret = parse_words(a, argc, argv);
    if (ret != -1)
        args_free(a);
    return ret;
}

void args_free(struct args *a)
{
    if (a->obj)
        mms_opt_free(a->table, a->obj);
}

int args_missing(const struct args *a, const char *name)
{
    const struct mms_option *opt = mms_opt_find(a->table, name);
    if (!opt)
        abort(); /* asked for an option the table does not have */
    return args_usage_error(a->cmd, "missing --%s %s", opt->name, opt->arg ? opt->arg : "");
}
