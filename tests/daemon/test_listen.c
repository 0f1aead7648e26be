/* Listen addresses: the one parser behind mmsd's `listen` option and its
 * HTTP server, and the two agreeing on what they take. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/error.h"
#include "daemon/http.h"
#include "daemon/listen.h"
#include "daemon/options.h"
#include "harness.h"

static int port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

/* Refused with -EINVAL, a message naming it, and *ss zeroed even where an
 * earlier call had filled it. */
static void refused(const char *const *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        struct mms_err err = {{0}};
        CHECK_EQ(mmsd_listen_parse("127.0.0.1:80", &ss, NULL), 0);
        if (!CHECK_EQ(mmsd_listen_parse(bad[i], &ss, &err), -EINVAL))
            fprintf(stderr, "  taken: \"%s\"\n", bad[i]);
        CHECK_EQ(ss.ss_family, 0);
        CHECK_MSG(strstr(err.msg, bad[i]) && strstr(err.msg, "port 0..65535"), "%s", err.msg);
    }
}
#define REFUSED(...)                                                        \
    do {                                                                    \
        static const char *const bad_[] = {__VA_ARGS__};                    \
        refused(bad_, sizeof(bad_) / sizeof(bad_[0]));                      \
    } while (0)

static void ipv4_with_port(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ(mmsd_listen_parse("192.168.1.2:8089", &ss, NULL), 0);
    CHECK_EQ(ss.ss_family, AF_INET);
    CHECK_EQ(port_of(&ss), 8089);
    CHECK_EQ(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0xc0a80102);
}

static void ipv6_in_brackets(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ(mmsd_listen_parse("[2001:db8::7]:443", &ss, NULL), 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
    CHECK_EQ(port_of(&ss), 443);
    struct in6_addr want;
    inet_pton(AF_INET6, "2001:db8::7", &want);
    CHECK(!memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &want, sizeof(want)));
}

static void port_range_ends(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ(mmsd_listen_parse("127.0.0.1:1", &ss, NULL), 0);
    CHECK_EQ(port_of(&ss), 1);
    CHECK_EQ(mmsd_listen_parse("[::1]:65535", &ss, NULL), 0);
    CHECK_EQ(port_of(&ss), 65535);
    CHECK_EQ(mmsd_listen_parse("127.0.0.1:00080", &ss, NULL), 0); /* five digits */
    CHECK_EQ(port_of(&ss), 80);
}

/* Port 0: any free port, chosen when the server binds. */
static void port_zero_is_taken(void)
{
    struct sockaddr_storage ss;
    CHECK_EQ(mmsd_listen_parse("127.0.0.1:0", &ss, NULL), 0);
    CHECK_EQ(ss.ss_family, AF_INET);
    CHECK_EQ(port_of(&ss), 0);
    CHECK_EQ(mmsd_listen_parse("[::1]:0", &ss, NULL), 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
}

static void missing_port_refused(void)
{
    REFUSED("127.0.0.1", "127.0.0.1:", "[::1]", "[::1]:", "10.0.0.1");
}

static void port_above_65535_refused(void)
{
    REFUSED("127.0.0.1:65536", "127.0.0.1:99999", "[::1]:70000", "127.0.0.1:000080");
}

static void sign_or_blank_in_port_refused(void)
{
    REFUSED("127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:0x50");
}

static void trailing_garbage_refused(void)
{
    REFUSED("127.0.0.1:80x", "127.0.0.1:80 ", "127.0.0.1:80:90", "[::1]:80]", "[::1]:80/");
}

static void empty_host_refused(void)
{
    REFUSED(":8089", "[]:8089", "");
}

/* Names would need the resolver; short, octal and hex IPv4 forms read
 * differently to different tools. */
static void non_numeric_host_refused(void)
{
    REFUSED("localhost:8089", "nonsense", "1.2.3:80", "1.2.3.4.5:80", "0x7f.0.0.1:80",
            " 127.0.0.1:80", "127.0.0.1 :80");
}

static void ipv6_without_brackets_refused(void)
{
    REFUSED("::1:8089", "[::1]8089", "[::1", "::1", "[127.0.0.1]:80", "[fe80::1%lo]:80");
}

static void loopback_addresses(void)
{
    static const char *const loop[] = {"127.0.0.1:80", "127.1.2.3:1", "[::1]:80"};
    static const char *const other[] = {"0.0.0.0:80", "[::]:80", "192.168.1.2:80",
                                        "128.0.0.1:80", "[::ffff:127.0.0.1]:80"};
    struct sockaddr_storage ss;
    for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
        CHECK_EQ(mmsd_listen_parse(loop[i], &ss, NULL), 0);
        CHECK_MSG(mmsd_listen_is_loopback(&ss), "%s", loop[i]);
    }
    /* A v4-mapped address counts as remote: the token is then required,
     * which errs on the safe side. */
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        CHECK_EQ(mmsd_listen_parse(other[i], &ss, NULL), 0);
        CHECK_MSG(!mmsd_listen_is_loopback(&ss), "%s", other[i]);
    }
    memset(&ss, 0, sizeof(ss));
    CHECK(!mmsd_listen_is_loopback(&ss));
}

static void format_round_trips(void)
{
    static const char *const addrs[] = {"127.0.0.1:8089", "0.0.0.0:0", "[::1]:65535",
                                        "[2001:db8::7]:443"};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct sockaddr_storage ss;
        char buf[64];
        CHECK_EQ(mmsd_listen_parse(addrs[i], &ss, NULL), 0);
        CHECK_EQ(mmsd_listen_format(&ss, buf, sizeof(buf)), 0);
        CHECK_STR_EQ(buf, addrs[i]);
    }
}

static void format_refuses_short_buffer_and_other_families(void)
{
    struct sockaddr_storage ss;
    char buf[14] = "junk";
    CHECK_EQ(mmsd_listen_parse("127.0.0.1:8089", &ss, NULL), 0);
    CHECK_EQ(mmsd_listen_format(&ss, buf, sizeof(buf)), -ENOSPC); /* needs 15 */
    CHECK_STR_EQ(buf, "");
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    CHECK_EQ(mmsd_listen_format(&ss, buf, sizeof(buf)), -EAFNOSUPPORT);
    CHECK_STR_EQ(buf, "");
}

static int never(void *opaque, const struct mmsd_http_request *req,
                 struct mmsd_http_response *res)
{
    (void)opaque, (void)req, (void)res;
    return -EIO;
}

/* The disagreement this parser ended: what the config's `listen` takes,
 * the HTTP server binds, and what one refuses so does the other. */
static void config_and_server_agree(void)
{
    static const char *const addrs[] = {"127.0.0.1:0", "127.0.0.1:99999", "::1:80",
                                        "localhost:80", "127.0.0.1", "[]:0"};
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct mmsd_options o;
        struct mms_err err;
        struct mmsd_http *h = NULL;
        CHECK_EQ(mmsd_options_defaults(&o), 0);
        int conf = mmsd_option_set(&o, "listen", addrs[i], &err);
        mmsd_options_free(&o);
        struct mmsd_http_opts ho = {.listen = addrs[i], .handler = never};
        int srv = mmsd_http_create(&loop, &ho, &h, &err);
        if (!CHECK_EQ(conf, srv))
            fprintf(stderr, "  for \"%s\"\n", addrs[i]);
        if (srv)
            continue;
        char want[64];
        snprintf(want, sizeof(want), "127.0.0.1:%d", mmsd_http_port(h));
        CHECK(mmsd_http_port(h) > 0); /* the kernel's choice, not 0 */
        CHECK_STR_EQ(mmsd_http_address(h), want);
        CHECK_EQ(mmsd_http_close(h, NULL, NULL), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK_EQ(uv_loop_close(&loop), 0);
}

MMS_TESTS(T(ipv4_with_port), T(ipv6_in_brackets), T(port_range_ends), T(port_zero_is_taken),
          T(missing_port_refused), T(port_above_65535_refused), T(sign_or_blank_in_port_refused),
          T(trailing_garbage_refused), T(empty_host_refused), T(non_numeric_host_refused),
          T(ipv6_without_brackets_refused), T(loopback_addresses), T(format_round_trips),
          T(format_refuses_short_buffer_and_other_families), T(config_and_server_agree))
