#ifndef MMS_CLI_HTTP_CLIENT_H
#define MMS_CLI_HTTP_CLIENT_H

/*
 * A minimal blocking HTTP/1.1 client, enough for `mms ctl` to talk to
 * mmsd: plain TCP (no TLS), one request per connection, one deadline over
 * the whole exchange. Functions return 0 or a negative errno and say why
 * in err.
 *
 * Errors that mean the daemon could not be reached or did not answer
 * (refused, unresolvable, timed out) are told apart from a broken answer:
 * -EPROTO for a response that is not HTTP or is cut short, -EFBIG for a
 * body over the limit.
 */

#include <stddef.h>

struct mms_err;

struct mms_httpc_url {
    char host[256];      /* for getaddrinfo: a name, IPv4, or IPv6 without brackets */
    char port[6];        /* "8089"; 80 when the URL names none */
    char authority[272]; /* the Host header: "host:port", "[::1]:port" */
    char prefix[1024];   /* a path the API sits under ("" or "/mmsd"), no trailing '/' */
};

/* Parses "http://HOST[:PORT][/PREFIX]" where HOST is a name, an IPv4
 * address or "[IPv6]". https:// is refused with -EPROTONOSUPPORT, other
 * malformed URLs with -EINVAL. */
int mms_httpc_parse_url(const char *url, struct mms_httpc_url *u, struct mms_err *err);

struct mms_httpc_request {
    const char *method; /* "GET", "POST", "PATCH", ... */
    const char *path;   /* "/api/v1/pipelines", already percent-encoded; after the prefix */
    const char *token;  /* sent as "Authorization: Bearer TOKEN"; NULL for none */
    const char *body;   /* NULL for none */
    size_t body_len;
    const char *content_type; /* of the body; NULL: application/json */
    /* Covers connecting, sending and receiving; name resolution is left
     * to the system resolver's own timeouts. 0: 10 s. */
    unsigned timeout_ms;
    size_t max_body; /* a longer response body is -EFBIG; 0: 16 MiB */
};

struct mms_httpc_response {
    int status;       /* 200, 404, ... */
    char reason[64];  /* "Not Found", control characters dropped */
    char *body;       /* malloc'd and NUL-terminated; may hold NULs of its own */
    size_t body_len;
};

/* Sends one request and reads the whole response, whatever its status.
 * Bodies framed by Content-Length, chunked, or by the server closing are
 * all read. On failure res holds nothing to free. */
int mms_httpc_fetch(const struct mms_httpc_url *u, const struct mms_httpc_request *req,
                    struct mms_httpc_response *res, struct mms_err *err);

void mms_httpc_response_free(struct mms_httpc_response *res);

#endif
