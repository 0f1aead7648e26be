/* Listen addresses: parse, format, loopback. */
#include "daemon/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

/* Longest numeric IPv6 text, with an IPv4 tail, plus the NUL. */
#define HOST_MAX INET6_ADDRSTRLEN

/* strtoul would take a sign, blanks and "0x"; a port is 1 to 5 digits. */
static int parse_port(const char *s, in_port_t *port)
{
    unsigned long v = 0;
    size_t n = strlen(s);
    if (n < 1 || n > 5)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = htons((uint16_t)v);
    return 0;
}

/* Copies [from, to) into host; one too long is refused (an empty one is
 * left to inet_pton, which refuses it). */
static int copy_host(char host[HOST_MAX], const char *from, const char *to)
{
    size_t n = (size_t)(to - from);
    if (n >= HOST_MAX)
        return -EINVAL;
    memcpy(host, from, n);
    host[n] = '\0';
    return 0;
}

static int parse_v6(const char *s, struct sockaddr_in6 *a)
{
    char host[HOST_MAX];
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':' || copy_host(host, s + 1, close))
        return -EINVAL;
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1 || parse_port(close + 2, &a->sin6_port))
        return -EINVAL;
    return 0;
}

static int parse_v4(const char *s, struct sockaddr_in *a)
{
    char host[HOST_MAX];
    const char *colon = strchr(s, ':');
    if (!colon || copy_host(host, s, colon))
        return -EINVAL;
    a->sin_family = AF_INET;
    /* inet_pton refuses "1.2.3", octal and hex, which inet_aton takes. */
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || parse_port(colon + 1, &a->sin_port))
        return -EINVAL;
    return 0;
}

int mmsd_listen_parse(const char *s, struct sockaddr_storage *ss, struct mms_err *err)
{
    memset(ss, 0, sizeof(*ss));
    int rc = s[0] == '[' ? parse_v6(s, (struct sockaddr_in6 *)ss)
                         : parse_v4(s, (struct sockaddr_in *)ss);
    if (!rc)
        return 0;
    memset(ss, 0, sizeof(*ss));
    return mms_err_set(err, -EINVAL,
                       "listen=\"%s\": expected IPv4:PORT or [IPv6]:PORT, numeric, "
                       "port 0..65535 (0: any free port)",
                       s);
}

int mmsd_listen_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

int mmsd_listen_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[HOST_MAX];
    int n;
    if (len)
        buf[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        n = snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        n = snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        return -EAFNOSUPPORT;
    }
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return -ENOSPC;
    }
    return 0;
}
