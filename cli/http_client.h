#ifndef MMS_CLI_HTTP_CLIENT_H
#define MMS_CLI_HTTP_CLIENT_H

/*
 * The HTTP client `mms ctl` talks to mmsd with, on libcurl: plain http://
 * only, one deadline over each whole exchange, no proxy, no redirect
 * followed, the token sent only as a header and never written anywhere.
 * Functions return 0 or a negative errno and say why, in one line, in err.
 *
 * Errors that mean the daemon could not be reached or did not answer
 * (refused, unresolvable, timed out) are told apart from a broken answer:
 * -EPROTO for a response that is not HTTP or is cut short, -EFBIG for a
 * body over 16 MiB.
 */

#include <stddef.h>

struct mms_err;
struct mms_httpc;

/* url is "http://HOST[:PORT][/PREFIX]", the API under PREFIX; https:// is
 * refused with -EPROTONOSUPPORT, other malformed URLs (a user, a query)
 * with -EINVAL. token: sent as "Authorization: Bearer TOKEN", NULL for
 * none. timeout_ms covers resolving, connecting, sending and receiving;
 * 0 means 10 s. */
int mms_httpc_open(struct mms_httpc **out, const char *url, const char *token,
                   unsigned timeout_ms, struct mms_err *err);

void mms_httpc_close(struct mms_httpc *c);

struct mms_httpc_response {
    int status;      /* 200, 404, ... */
    char reason[64]; /* "Not Found", control characters dropped */
    char *body;      /* malloc'd and NUL-terminated; may hold NULs of its own */
    size_t body_len;
};

/* Sends one request and reads the whole response, whatever its status.
 * path is after the prefix and already percent-encoded ("/api/v1/..."),
 * sent as is (no dot segments removed). body, a JSON text, is NULL for
 * none; method is "GET", "POST", "PATCH", ... On failure res holds
 * nothing to free. */
int mms_httpc_fetch(struct mms_httpc *c, const char *method, const char *path, const char *body,
                    struct mms_httpc_response *res, struct mms_err *err);

void mms_httpc_response_free(struct mms_httpc_response *res);

#endif
