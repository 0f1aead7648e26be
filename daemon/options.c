#include "daemon/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct mmsd_options, f)

static const char *const level_names[] = {"err", "warning", "notice", "info", "debug", NULL};

/* Only a check: the option keeps the address as written, which is what
 * --print-config shows, and mmsd parses it again to bind. */
static int check_listen(const struct mms_option *opt, const char *value, void *field,
                        struct mms_err *err)
{
    struct sockaddr_storage ss;
    (void)opt, (void)field;
    return mmsd_listen_parse(value, &ss, err);
}

const struct mms_option mmsd_option_table[] = {
    {.name = "listen", .type = MMS_OPT_STRING, .offset = OFF(listen), .def = "127.0.0.1:8089",
     .parse = check_listen, .arg = "HOST:PORT",
     .help = "HTTP API address, IPv4:PORT or [IPv6]:PORT; off loopback it needs token_file"},
    {.name = "model", .type = MMS_OPT_STRING, .offset = OFF(model), .runtime = 1, .arg = "FILE",
     .help = "model for pipelines that set none (default: $MMS_MODEL, else the shipped mms-rt)"},
    {.name = "threads", .type = MMS_OPT_INT, .offset = OFF(threads), .def = "0", .max = 256,
     .runtime = 1, .arg = "N",
     .help = "inference threads for pipelines that set none; 0 = all cores"},
    {.name = "log_level", .type = MMS_OPT_ENUM, .offset = OFF(log_level), .def = "info",
     .min = MMSD_LOG_ERR, .names = level_names, .runtime = 1, .arg = "L",
     .help = "least important message logged: err, warning, notice, info or debug"},
    {.name = "token_file", .type = MMS_OPT_STRING, .offset = OFF(token_file),
     .arg = "FILE",
     .help = "file holding the bearer token the HTTP API requires (all but /healthz)"},
    {.name = NULL},
};

int mmsd_option_name_eq(const char *a, const char *b)
{
    return mms_opt_name_eq(a, b);
}

const struct mms_option *mmsd_option_find(const char *name)
{
    return mms_opt_find(mmsd_option_table, name);
}

int mmsd_option_set(struct mmsd_options *o, const char *name, const char *value,
                    struct mms_err *err)
{
    return mms_opt_set(mmsd_option_table, o, name, value, err);
}

void mmsd_option_format(const struct mmsd_options *o, const struct mms_option *opt, char *buf,
                        size_t len)
{
    mms_opt_format(opt, o, buf, len);
}

int mmsd_options_defaults(struct mmsd_options *o)
{
    memset(o, 0, sizeof(*o));
    return mms_opt_defaults(mmsd_option_table, o);
}

void mmsd_options_free(struct mmsd_options *o)
{
    mms_opt_free(mmsd_option_table, o);
}

const char *mmsd_log_level_name(int level)
{
    if (level < MMSD_LOG_ERR || level > MMSD_LOG_DEBUG)
        return "?";
    return level_names[level - MMSD_LOG_ERR];
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
