#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void args_print_help(const struct args_cmd *cmd)
{
    printf("Usage: mms %s %s\n\n%s\n\nOptions:\n", cmd->name, cmd->usage, cmd->summary);
    const struct args_opt *o;
    for (o = cmd->opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        printf("  %-20s %s\n", left, o->help);
    }
    printf("  %-20s %s\n", "-h, --help", "show this help and exit");
    if (cmd->details)
        printf("\n%s\n", cmd->details);
}

static int find(const struct args_cmd *cmd, const char *name, size_t len)
{
    for (int i = 0; cmd->opts[i].name; i++)
        if (strlen(cmd->opts[i].name) == len && !strncmp(cmd->opts[i].name, name, len))
            return i;
    return -1;
}

/* One "--name[=value]" word, taking the next word as the value when the
 * option wants one. Returns how many words it used, or -1 on error. */
static int parse_option(struct args *a, int argc, char **argv, int i)
{
    const struct args_cmd *cmd = a->cmd;
    const char *name = argv[i] + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int k = find(cmd, name, len);
    if (k < 0) {
        args_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        return -1;
    }
    const struct args_opt *o = &cmd->opts[k];
    if (!o->arg) {
        if (eq) {
            args_usage_error(cmd, "--%s takes no value", o->name);
            return -1;
        }
        a->val[k] = "";
        return 1;
    }
    if (eq) {
        a->val[k] = eq + 1;
        return 1;
    }
    if (i + 1 >= argc) {
        args_usage_error(cmd, "--%s needs a value (%s)", o->name, o->arg);
        return -1;
    }
    a->val[k] = argv[i + 1];
    return 2;
}

int args_parse(const struct args_cmd *cmd, int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    a->operands = argv + 1;
    int nopts = 0;
    while (cmd->opts[nopts].name)
        nopts++;
    if (nopts > ARGS_MAX_OPTS)
        abort(); /* the table outgrew struct args */

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
            args_print_help(cmd);
            return ARGS_EXIT_OK;
        } else if (w[1] != '-') {
            return args_usage_error(cmd, "unknown option '%s'", w);
        } else {
            int used = parse_option(a, argc, argv, i);
            if (used < 0)
                return ARGS_EXIT_USAGE;
            i += used;
        }
    }
    if (a->noperands < cmd->min_operands)
        return args_usage_error(cmd, "%s arguments; usage: mms %s %s",
                                a->noperands ? "too few" : "missing", cmd->name,
                                cmd->usage);
    if (cmd->max_operands >= 0 && a->noperands > cmd->max_operands)
        return args_usage_error(cmd, "unexpected argument '%s'",
                                a->operands[cmd->max_operands]);
    return -1;
}

const char *args_get(const struct args *a, const char *name)
{
    int k = find(a->cmd, name, strlen(name));
    if (k < 0)
        abort(); /* asked for an option the table does not have */
    return a->val[k];
}

bool args_flag(const struct args *a, const char *name)
{
    return args_get(a, name) != NULL;
}

const char *args_need(const struct args *a, const char *name)
{
    const char *v = args_get(a, name);
    if (!v) {
        int k = find(a->cmd, name, strlen(name));
        args_usage_error(a->cmd, "missing --%s %s", name, a->cmd->opts[k].arg);
    }
    return v;
}

int args_int(const struct args *a, const char *name, int def, int lo, int hi, int *out)
{
    const char *s = args_get(a, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        args_usage_error(a->cmd, "--%s: '%s' is not a number in %d..%d", name, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}
