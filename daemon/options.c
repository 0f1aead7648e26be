#include "daemon/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct mmsd_options, f)

const struct mmsd_option mmsd_option_table[] = {
    {"listen", MMSD_OPT_LISTEN, OFF(listen), "127.0.0.1:8089", 0, 0, 0, "HOST:PORT",
     "HTTP API address, IPv4:PORT or [IPv6]:PORT; off loopback it needs token_file"},
    {"model", MMSD_OPT_STRING, OFF(model), NULL, 0, 0, 1, "FILE",
     "model for pipelines that set none (default: $MMS_MODEL, else the shipped mms-rt)"},
    {"threads", MMSD_OPT_INT, OFF(threads), "0", 0, 256, 1, "N",
     "inference threads for pipelines that set none; 0 = all cores"},
    {"log_level", MMSD_OPT_LOG_LEVEL, OFF(log_level), "info", 0, 0, 1, "L",
     "least important message logged: err, warning, notice, info or debug"},
    {"token_file", MMSD_OPT_STRING, OFF(token_file), NULL, 0, 0, 1, "FILE",
     "file holding the bearer token the HTTP API requires (all but /healthz)"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char *const level_names[] = {"err", "warning", "notice", "info", "debug"};

#define FIELD(o, opt, type) ((type *)((char *)(o) + (opt)->offset))

static int sep(char c)
{
    return c == '-' ? '_' : c;
}

int mmsd_option_name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (sep(*a) != sep(*b))
            return 0;
    return *a == *b;
}

const struct mmsd_option *mmsd_option_find(const char *name)
{
    for (const struct mmsd_option *opt = mmsd_option_table; opt->name; opt++)
        if (mmsd_option_name_eq(opt->name, name))
            return opt;
    return NULL;
}

const char *mmsd_log_level_name(int level)
{
    if (level < MMSD_LOG_ERR || level > MMSD_LOG_DEBUG)
        return "?";
    return level_names[level - MMSD_LOG_ERR];
}

static int bad(struct mms_err *err, const struct mmsd_option *opt, const char *value,
               const char *why)
{
    return mms_err_set(err, -EINVAL, "%s=\"%s\": %s", opt->name, value, why);
}

static int parse_port(const char *s, in_port_t *port)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -EINVAL;
    *port = htons((uint16_t)v);
    return 0;
}

/* Numeric addresses only: a daemon that must be up before the resolver is
 * should not depend on it, and "localhost" may well resolve to ::1. */
int mmsd_listen_parse(const char *s, struct sockaddr_storage *ss, struct mms_err *err)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            goto fail;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1 || parse_port(close + 2, &a->sin6_port))
            goto fail;
        return 0;
    }
    colon = strchr(s, ':');
    if (!colon || strchr(colon + 1, ':') || (size_t)(colon - s) >= sizeof(host))
        goto fail;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || parse_port(colon + 1, &a->sin_port))
        goto fail;
    return 0;
fail:
    memset(ss, 0, sizeof(*ss));
    return mms_err_set(err, -EINVAL,
                       "listen=\"%s\": expected IPv4:PORT or [IPv6]:PORT, port 1..65535", s);
}

int mmsd_listen_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static int set_string(char **dst, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static int set_int(const struct mmsd_option *opt, int *dst, const char *value, struct mms_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v))
        return bad(err, opt, value, "not a number");
    if (v < opt->min || v > opt->max) {
        char why[96];
        snprintf(why, sizeof(why), "out of range %g..%g", opt->min, opt->max);
        return bad(err, opt, value, why);
    }
    if (v != floor(v))
        return bad(err, opt, value, "not an integer");
    *dst = (int)v;
    return 0;
}

int mmsd_option_set(struct mmsd_options *o, const char *name, const char *value,
                    struct mms_err *err)
{
    const struct mmsd_option *opt = mmsd_option_find(name);
    struct sockaddr_storage ss;
    if (!opt)
        return mms_err_set(err, -ENOENT, "unknown option '%s'", name);
    if (!*value)
        return bad(err, opt, value, "empty");
    switch (opt->type) {
    case MMSD_OPT_STRING:
        return set_string(FIELD(o, opt, char *), value);
    case MMSD_OPT_INT:
        return set_int(opt, FIELD(o, opt, int), value, err);
    case MMSD_OPT_LISTEN: {
        int rc = mmsd_listen_parse(value, &ss, err);
        return rc ? rc : set_string(FIELD(o, opt, char *), value);
    }
    case MMSD_OPT_LOG_LEVEL:
        for (int i = 0; i < 5; i++)
            if (!strcmp(value, level_names[i]))
                return *FIELD(o, opt, int) = MMSD_LOG_ERR + i, 0;
        return bad(err, opt, value, "expected err, warning, notice, info or debug");
    }
    return -EINVAL;
}

int mmsd_options_defaults(struct mmsd_options *o)
{
    memset(o, 0, sizeof(*o));
    for (const struct mmsd_option *opt = mmsd_option_table; opt->name; opt++) {
        if (!opt->def)
            continue;
        int rc = mmsd_option_set(o, opt->name, opt->def, NULL);
        if (rc) {
            mmsd_options_free(o);
            return rc;
        }
    }
    return 0;
}

void mmsd_options_free(struct mmsd_options *o)
{
    for (const struct mmsd_option *opt = mmsd_option_table; opt->name; opt++) {
        if (opt->type == MMSD_OPT_STRING || opt->type == MMSD_OPT_LISTEN) {
            free(*FIELD(o, opt, char *));
            *FIELD(o, opt, char *) = NULL;
        }
    }
}

void mmsd_option_format(const struct mmsd_options *o, const struct mmsd_option *opt, char *buf,
                        size_t len)
{
    const void *p = (const char *)o + opt->offset;
    switch (opt->type) {
    case MMSD_OPT_STRING:
    case MMSD_OPT_LISTEN:
        snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "");
        break;
    case MMSD_OPT_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case MMSD_OPT_LOG_LEVEL:
        snprintf(buf, len, "%s", mmsd_log_level_name(*(const int *)p));
        break;
    }
}
