/* The HTTP client for `mms ctl`: libcurl does the protocol; this file
 * picks the options that keep it to plain HTTP against one daemon and
 * turns its errors into ctl's. */
#include "cli/http_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/error.h"

#define DEFAULT_TIMEOUT_MS 10000u
#define MAX_BODY ((size_t)16 << 20)

/* Sets options in a row, keeping the first failure in rc. */
#define SET(opt, val) (rc = rc != CURLE_OK ? rc : curl_easy_setopt(h, opt, val))

struct mms_httpc {
    CURL *curl;
    char *base; /* "http://host:port/prefix", no trailing '/' */
    struct curl_slist *headers, *body_headers;
    unsigned timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- the URL ---- */

/* Fails when the URL has `part`: what ctl asks for must not hide in a
 * query, and credentials belong in the token, not the URL. */
static int refuse_part(CURLU *u, CURLUPart part, const char *what, struct mms_err *err)
{
    char *s = NULL;
    CURLUcode uc = curl_url_get(u, part, &s, 0);
    curl_free(s);
    return uc == CURLUE_OK ? mms_err_set(err, -EINVAL, "the URL may hold no %s", what) : 0;
}

static int get_part(CURLU *u, CURLUPart part, unsigned flags, char **s, struct mms_err *err)
{
    CURLUcode uc = curl_url_get(u, part, s, flags);
    if (uc == CURLUE_OUT_OF_MEMORY)
        return mms_err_set(err, -ENOMEM, "out of memory");
    if (uc)
        return mms_err_set(err, -EINVAL, "%s", curl_url_strerror(uc));
    return 0;
}

/* Checks url and writes "http://host:port/prefix" to *base. */
static int parse_url(const char *url, char **base, struct mms_err *err)
{
    char *host = NULL, *port = NULL, *path = NULL;
    int ret;
    if (!strncasecmp(url, "https://", 8))
        return mms_err_set(err, -EPROTONOSUPPORT,
                           "https is not supported: mmsd serves plain HTTP; use http:// "
                           "(and a TLS tunnel to reach a remote daemon)");
    if (strncasecmp(url, "http://", 7))
        return mms_err_set(err, -EINVAL, "not an http:// URL");
    CURLU *u = curl_url();
    if (!u)
        return mms_err_set(err, -ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc) {
        ret = mms_err_set(err, uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL, "%s",
                          curl_url_strerror(uc));
        goto fail;
    }
    if ((ret = refuse_part(u, CURLUPART_USER, "user name", err)) < 0 ||
        (ret = refuse_part(u, CURLUPART_PASSWORD, "password", err)) < 0 ||
        (ret = refuse_part(u, CURLUPART_QUERY, "query ('?')", err)) < 0 ||
        (ret = refuse_part(u, CURLUPART_FRAGMENT, "fragment ('#')", err)) < 0)
        goto fail;
    if ((ret = get_part(u, CURLUPART_HOST, 0, &host, err)) < 0 ||
        (ret = get_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, &port, err)) < 0 ||
        (ret = get_part(u, CURLUPART_PATH, 0, &path, err)) < 0)
        goto fail;
    /* libcurl takes port 0 (pick one) and an empty host in some spellings;
     * neither can name a daemon. */
    if (!*host || !strcmp(port, "0")) {
        ret = mms_err_set(err, -EINVAL, !*host ? "no host" : "bad port; expected 1..65535");
        goto fail;
    }
    size_t plen = strlen(path);
    while (plen && path[plen - 1] == '/')
        plen--;
    size_t n = strlen(host) + strlen(port) + plen + sizeof("http://:");
    if (!(*base = malloc(n))) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(*base, n, "http://%s:%s%.*s", host, port, (int)plen, path);
    ret = 0;
fail:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return ret;
}

/* ---- the handle ---- */

static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

static int build_headers(struct mms_httpc *c, const char *token)
{
    /* "Expect:" drops curl's 100-continue wait before a large body. */
    static const char *const common[] = {"Accept: application/json, text/plain", "Expect:"};
    for (size_t i = 0; i < sizeof(common) / sizeof(*common); i++)
        if (add_header(&c->headers, common[i]) < 0 || add_header(&c->body_headers, common[i]) < 0)
            return -ENOMEM;
    if (add_header(&c->body_headers, "Content-Type: application/json") < 0)
        return -ENOMEM;
    if (!token)
        return 0;
    size_t n = strlen("Authorization: Bearer ") + strlen(token) + 1;
    char *auth = malloc(n);
    if (!auth)
        return -ENOMEM;
    snprintf(auth, n, "Authorization: Bearer %s", token);
    int ret = add_header(&c->headers, auth);
    if (ret == 0)
        ret = add_header(&c->body_headers, auth);
    /* The list holds its own copies; this one need not linger in the heap. */
    memset(auth, 0, n);
    free(auth);
    return ret;
}

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Options every request shares. The defaults that matter are set anyway
 * so that no libcurl build or environment changes them: never verbose
 * (the token is in a header), no proxy from $http_proxy (it would see the
 * token), no .netrc, no redirects, HTTP/1.1 over plain TCP only. */
static CURLcode set_common(struct mms_httpc *c)
{
    CURL *h = c->curl;
    CURLcode rc = CURLE_OK;
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_VERBOSE, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* Names are percent-encoded by the caller; a pipeline called ".."
     * must reach the daemon as such, not turn into the parent route. */
    SET(CURLOPT_PATH_AS_IS, 1L);
    SET(CURLOPT_USERAGENT, "mms-ctl");
    SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY);
    return rc;
}

int mms_httpc_open(struct mms_httpc **out, const char *url, const char *token,
                   unsigned timeout_ms, struct mms_err *err)
{
    int ret;
    *out = NULL;
    if (token && (!*token || !header_safe(token)))
        return mms_err_set(err, -EINVAL, "the token holds spaces or control characters");
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return mms_err_set(err, -ENOMEM, "cannot initialise libcurl");
    struct mms_httpc *c = calloc(1, sizeof(*c));
    if (!c) {
        curl_global_cleanup();
        return mms_err_set(err, -ENOMEM, "out of memory");
    }
    c->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    if ((ret = parse_url(url, &c->base, err)) < 0)
        goto fail;
    if (!(c->curl = curl_easy_init()) || build_headers(c, token) < 0) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (set_common(c) != CURLE_OK) {
        ret = mms_err_set(err, -ENOSYS, "libcurl lacks an option mms ctl needs (7.85 or later)");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    mms_httpc_close(c);
    return ret;
}

void mms_httpc_close(struct mms_httpc *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->body_headers);
    free(c->base);
    free(c);
    curl_global_cleanup();
}

/* ---- receiving ---- */

struct recv {
    struct mms_httpc_response *res;
    size_t cap;
    bool too_big, oom;
};

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
    struct recv *r = opaque;
    struct mms_httpc_response *res = r->res;
    n *= size;
    /* A body without a Content-Length escapes CURLOPT_MAXFILESIZE. */
    if (n > MAX_BODY - res->body_len) {
        r->too_big = true;
        return 0;
    }
    if (res->body_len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < res->body_len + n + 1)
            cap *= 2;
        char *b = realloc(res->body, cap);
        if (!b) {
            r->oom = true;
            return 0;
        }
        res->body = b;
        r->cap = cap;
    }
    memcpy(res->body + res->body_len, data, n);
    res->body_len += n;
    return n;
}

/* Keeps the reason phrase of the last status line (interim 1xx answers
 * come first); libcurl reports only the code. */
static size_t on_header(char *line, size_t size, size_t n, void *opaque)
{
    struct mms_httpc_response *res = ((struct recv *)opaque)->res;
    n *= size;
    if (n < 5 || memcmp(line, "HTTP/", 5))
        return n;
    const char *p = memchr(line, ' ', n), *end = line + n;
    p = p ? memchr(p + 1, ' ', (size_t)(end - p - 1)) : NULL;
    size_t r = 0;
    for (p = p ? p + 1 : end; p < end && r + 1 < sizeof(res->reason); p++)
        if ((unsigned char)*p >= 0x20 && *p != 0x7f)
            res->reason[r++] = *p;
    res->reason[r] = '\0';
    return n;
}

/* ---- errors ---- */

/* curl's own message, on one line. */
static const char *curl_msg(struct mms_httpc *c, CURLcode rc)
{
    if (!c->errbuf[0])
        return curl_easy_strerror(rc);
    for (char *s = c->errbuf; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
    return c->errbuf;
}

static int os_errno(struct mms_httpc *c)
{
    long e = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &e);
    return (int)e;
}

static int timed_out(struct mms_httpc *c, struct mms_err *err)
{
    curl_off_t connected = 0;
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    return mms_err_set(err, -ETIMEDOUT, "timed out after %g s %s", c->timeout_ms / 1000.0,
                       !connected ? "connecting"
                       : status   ? "reading the response"
                                  : "waiting for the response");
}

static int bad(struct mms_err *err, const char *what)
{
    return mms_err_set(err, -EPROTO, "bad response from the server: %s", what);
}

static int fail_with(struct mms_httpc *c, CURLcode rc, const struct recv *r, struct mms_err *err)
{
    int e = os_errno(c);
    curl_off_t length = -1;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return timed_out(c, err);
    case CURLE_COULDNT_RESOLVE_HOST: return mms_err_set(err, -EHOSTUNREACH, "%s", curl_msg(c, rc));
    case CURLE_COULDNT_CONNECT:
        return e ? mms_err_set(err, -e, "%s", strerror(e))
                 : mms_err_set(err, -ECONNREFUSED, "%s", curl_msg(c, rc));
    case CURLE_GOT_NOTHING:
        return mms_err_set(err, -EPROTO, "the server closed the connection without answering");
    case CURLE_UNSUPPORTED_PROTOCOL: return bad(err, "not HTTP");
    case CURLE_FILESIZE_EXCEEDED:
        return mms_err_set(err, -EFBIG, "response over the %zu MiB limit", MAX_BODY >> 20);
    case CURLE_OUT_OF_MEMORY: return mms_err_set(err, -ENOMEM, "out of memory");
    case CURLE_PARTIAL_FILE:
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        return bad(err, length >= 0 ? "body shorter than its Content-Length" : "cut short");
    case CURLE_WRITE_ERROR:
        if (r->too_big)
            return mms_err_set(err, -EFBIG, "response over the %zu MiB limit", MAX_BODY >> 20);
        return mms_err_set(err, -ENOMEM, "out of memory");
    case CURLE_SEND_ERROR:
        return mms_err_set(err, e ? -e : -EIO, "sending the request: %s",
                           e ? strerror(e) : curl_msg(c, rc));
    case CURLE_RECV_ERROR:
        if (e)
            return mms_err_set(err, -e, "reading the response: %s", strerror(e));
        return bad(err, curl_msg(c, rc));
    default: return bad(err, curl_msg(c, rc));
    }
}

/* ---- the request ---- */

static CURLcode set_request(struct mms_httpc *c, const char *url, const char *method,
                            const char *body, struct recv *r)
{
    CURL *h = c->curl;
    CURLcode rc = CURLE_OK;
    SET(CURLOPT_URL, url);
    SET(CURLOPT_HTTPHEADER, body ? c->body_headers : c->headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    if (body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        SET(CURLOPT_POSTFIELDS, body);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    /* NULL gives back the method POSTFIELDS or HTTPGET imply. */
    bool plain = !strcmp(method, body ? "POST" : "GET");
    SET(CURLOPT_CUSTOMREQUEST, plain ? NULL : method);
    return rc;
}

int mms_httpc_fetch(struct mms_httpc *c, const char *method, const char *path, const char *body,
                    struct mms_httpc_response *res, struct mms_err *err)
{
    struct recv r = {.res = res};
    char *url = NULL;
    int ret;
    memset(res, 0, sizeof(*res));
    if (!*method || !header_safe(method) || path[0] != '/' || !header_safe(path))
        return mms_err_set(err, -EINVAL, "bad method or path");
    size_t n = strlen(c->base) + strlen(path) + 1;
    if (!(url = malloc(n)))
        return mms_err_set(err, -ENOMEM, "out of memory");
    snprintf(url, n, "%s%s", c->base, path);
    c->errbuf[0] = '\0';
    CURLcode rc = set_request(c, url, method, body, &r);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        ret = fail_with(c, rc, &r, err);
        goto fail;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    /* An empty body still comes back as a string. */
    if (!res->body && !(res->body = malloc(1))) {
        ret = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    res->body[res->body_len] = '\0';
    res->status = (int)status;
    free(url);
    return 0;
fail:
    free(url);
    mms_httpc_response_free(res);
    return ret;
}

void mms_httpc_response_free(struct mms_httpc_response *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
