#include "daemon/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.h"
#include "daemon/listen.h"

#define DEF_MAX_HEADER (8u << 10)
#define DEF_MAX_BODY (64u << 10)
#define DEF_TIMEOUT_MS 10000u
#define DEF_HEADER_TIMEOUT_MS 5000u
#define DEF_MAX_CONNS 64u
/* Connections that streams, never put out for a newcomer, cannot take:
 * /metrics, /healthz and the API still answer when previews fill the rest. */
#define STREAM_RESERVE 8u
#define DEF_STREAM_QUEUED (1u << 20)
#define READ_BUF (16u << 10)
/* Pipelined requests wait while this much of their answers is unsent, so
 * a client that sends but never reads cannot make us buffer without end. */
#define PIPELINE_HIGH_WATER (64u << 10)
/* After a final answer we read and drop what the client still sends, so
 * that closing does not reset the connection before it read the answer. */
#define LINGER_MS 2000u
#define LINGER_BYTES (1u << 20)
#define BACKLOG 128
#define NO_QUERY SIZE_MAX

struct buf {
    char *p;
    size_t len, cap;
};

struct header {
    size_t name, value; /* offsets into the request's head */
};

enum auth { AUTH_OK, AUTH_MISSING, AUTH_BAD };

struct mmsd_http_request {
    struct buf head; /* URL, then header names and values, NUL-separated */
    struct header *hdrs;
    size_t nhdrs, hdrs_cap;
    size_t url_len, path, query;
    size_t wire; /* head bytes counted against max_header_bytes */
    struct buf body;
    const char *method;
    const struct sockaddr *peer;
    enum { P_URL, P_FIELD, P_VALUE } part;
    int error; /* the status to answer when a parser callback refused */
    int deny;  /* the status to answer in place of the handler (401, 403, 415, 421) */
    enum auth auth;
    bool keep_alive, is_head, http10;
};

struct mmsd_http_response {
    struct conn *c;
    int status;
    char *ctype;
    struct buf hdrs; /* "Name: value\r\n" lines from the app */
    struct buf body;
    struct mmsd_http_held *held; /* the handler held the answer */
    bool oom, streaming;
};

struct mmsd_http_held {
    struct conn *c; /* NULL once the connection is gone */
    struct mmsd_http_response res;
    bool armed; /* the handler has returned: the answer may be sent */
    bool keep, is_head, http10;
};

struct mmsd_http_stream {
    struct conn *c;
    mmsd_http_stream_close_cb on_close;
    void *arg;
};

/* S_READ: parsing requests, the timer is the deadline for the next one.
 * S_WAIT: answers pile up; reading stops until they are written.
 * S_HOLD: the app answers later; reading stops, the timer is its deadline.
 * S_STREAM: a stream; input is dropped, the timer watches write progress.
 * S_LINGER: the last answer is out or going; then shutdown, drop input. */
enum state { S_READ, S_WAIT, S_HOLD, S_STREAM, S_LINGER };

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct mmsd_http *h;
    struct conn *prev, *next;
    http_parser parser;
    struct mmsd_http_request req;
    struct mmsd_http_stream stream;
    struct mmsd_http_held *held; /* in S_HOLD */
    struct sockaddr_storage peer;
    enum state state;
    int open_handles;
    uint64_t since; /* uv_now when it began to wait for its request */
    bool admitted;  /* the request in progress passed every check */
    bool trusted;   /* a request on it has passed every check */
    bool closing, reading, reject, eof, shut, has_stream;
    size_t queued; /* bytes handed to uv_write whose callback has not run */
    size_t dropped_bytes;
    size_t roff, rlen; /* unparsed input in rbuf */
    char rbuf[READ_BUF];
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;
    char data[];
};

struct mmsd_http {
    uv_loop_t *loop;
    uv_tcp_t listener;
    http_parser_settings settings;
    struct conn *conns;
    unsigned nconns; /* allocated, closing ones included */
    unsigned nactive, nreject;
    unsigned nstreams; /* active connections that are streams */
    struct sockaddr_storage bound; /* getsockname(): with port 0, the kernel's pick */
    char address[64];              /* bound, as mmsd_listen_format writes it */
    bool closing, listener_open;
    void (*done)(void *);
    void *done_arg;
    mmsd_http_handler handler;
    void *opaque;
    char *token;
    size_t token_len;
    char **open_paths;
    bool check_host;
    char *allowed_hosts;
    char *body_type;
    size_t max_header, max_body, stream_max;
    unsigned header_ms, timeout_ms, max_conns, max_streams;
};

static void conn_parse(struct conn *c);
static void conn_close(struct conn *c);
static void timer_start(struct conn *c, unsigned ms);

/* ---- buffers ---- */

/* Keeps one spare byte so that text can always be NUL-terminated. */
static int buf_reserve(struct buf *b, size_t more)
{
    if (more >= SIZE_MAX / 2 - b->len)
        return -EOVERFLOW;
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(struct buf *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

static int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    *b = (struct buf){0};
}

/* ---- the request, as the parser's callbacks build it ---- */

static void req_reset(struct mmsd_http_request *r)
{
    r->head.len = 0;
    r->nhdrs = 0;
    r->url_len = r->path = r->wire = 0;
    r->query = NO_QUERY;
    buf_free(&r->body); /* bodies are rare; an idle connection keeps none */
    r->method = NULL;
    r->part = P_URL;
    r->error = r->deny = 0;
    r->auth = AUTH_OK;
    r->keep_alive = r->is_head = r->http10 = false;
}

static void req_free(struct mmsd_http_request *r)
{
    buf_free(&r->head);
    buf_free(&r->body);
    free(r->hdrs);
}

static int refuse(struct mmsd_http_request *r, int status)
{
    if (!r->error)
        r->error = status;
    return -1;
}

static int req_text(struct conn *c, const char *at, size_t len)
{
    struct mmsd_http_request *r = &c->req;
    r->wire += len;
    if (r->wire > c->h->max_header)
        return refuse(r, 431);
    return buf_put(&r->head, at, len) < 0 ? refuse(r, 500) : 0;
}

/* Ends the URL or a header value: the parser hands text in pieces. */
static int req_end_part(struct mmsd_http_request *r)
{
    if (r->part == P_URL)
        r->url_len = r->head.len;
    if (r->part == P_VALUE) {
        size_t start = r->hdrs[r->nhdrs - 1].value;
        while (r->head.len > start &&
               (r->head.p[r->head.len - 1] == ' ' || r->head.p[r->head.len - 1] == '\t'))
            r->head.len--;
    }
    return buf_put(&r->head, "", 1) < 0 ? refuse(r, 500) : 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    req_reset(&c->req);
    c->req.wire = 16; /* method and version, roughly */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return req_text(p->data, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct mmsd_http_request *r = &c->req;
    if (r->part != P_FIELD) {
        if (req_end_part(r) < 0)
            return -1;
        r->wire += 4; /* ": " and CRLF */
        if (r->nhdrs == r->hdrs_cap) {
            size_t cap = r->hdrs_cap ? 2 * r->hdrs_cap : 16;
            struct header *n = realloc(r->hdrs, cap * sizeof(*n));
            if (!n)
                return refuse(r, 500);
            r->hdrs = n;
            r->hdrs_cap = cap;
        }
        r->hdrs[r->nhdrs++] = (struct header){r->head.len, r->head.len};
        r->part = P_FIELD;
    }
    return req_text(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct mmsd_http_request *r = &c->req;
    if (r->part != P_VALUE) {
        if (buf_put(&r->head, "", 1) < 0)
            return refuse(r, 500);
        r->hdrs[r->nhdrs - 1].value = r->head.len;
        r->part = P_VALUE;
    }
    return req_text(c, at, len);
}

/* Cuts path and query out of the URL in place. */
static int req_split_url(http_parser *p, struct mmsd_http_request *r)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (r->url_len > UINT16_MAX) /* the URL parser counts in 16 bits */
        return refuse(r, 414);
    if (http_parser_parse_url(r->head.p, r->url_len, p->method == HTTP_CONNECT, &u) ||
        !(u.field_set & (1u << UF_PATH)) || r->head.p[u.field_data[UF_PATH].off] != '/')
        return refuse(r, 400);
    r->path = u.field_data[UF_PATH].off;
    r->head.p[r->path + u.field_data[UF_PATH].len] = '\0';
    if (u.field_set & (1u << UF_QUERY)) {
        r->query = u.field_data[UF_QUERY].off;
        r->head.p[r->query + u.field_data[UF_QUERY].len] = '\0';
    }
    return 0;
}

/* Equal in time that depends only on the secret's length. */
static bool token_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
    volatile unsigned char diff = glen != slen;
    for (size_t i = 0; i < slen; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= g ^ (unsigned char)secret[i];
    }
    return diff == 0;
}

/* The percent-decoded value [v, v + n) against the secret, in time that
 * depends only on the lengths. */
static bool decoded_equal(const char *v, size_t n, const char *secret, size_t slen)
{
    volatile unsigned char diff = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++, len++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '%' && i + 2 < n && isxdigit((unsigned char)v[i + 1]) &&
            isxdigit((unsigned char)v[i + 2])) {
            char hex[3] = {v[i + 1], v[i + 2], 0};
            ch = (unsigned char)strtol(hex, NULL, 16);
            i += 2;
        }
        diff |= len < slen ? ch ^ (unsigned char)secret[len] : 1;
    }
    return diff == 0 && len == slen;
}

/* RFC 6750 2.3: access_token=TOKEN in the query, for what a browser fetches
 * by itself (an <img> of a preview) where no header can be added. Tokens
 * are [A-Za-z0-9+/=._~-]; '+' and '/' may come percent-encoded. */
static enum auth query_token(const struct mmsd_http *h, const char *q)
{
    static const char key[] = "access_token=";
    const size_t klen = sizeof(key) - 1;
    for (const char *p = q; *p;) {
        size_t n = strcspn(p, "&");
        if (n > klen && !strncmp(p, key, klen))
            return decoded_equal(p + klen, n - klen, h->token, h->token_len) ? AUTH_OK
                                                                             : AUTH_BAD;
        p += n + (p[n] == '&');
    }
    return AUTH_MISSING;
}

static enum auth req_auth(const struct mmsd_http *h, const struct mmsd_http_request *r)
{
    if (!h->token)
        return AUTH_OK;
    const char *path = mmsd_http_req_path(r);
    for (char **op = h->open_paths; *op; op++)
        if (!strcmp(*op, path))
            return AUTH_OK;
    const char *v = mmsd_http_req_header(r, "Authorization");
    if (!v)
        return query_token(h, mmsd_http_req_query(r));
    if (strncasecmp(v, "Bearer ", 7))
        return AUTH_BAD;
    for (v += 7; *v == ' '; v++)
        ;
    return token_equal(v, strlen(v), h->token, h->token_len) ? AUTH_OK : AUTH_BAD;
}

/* ---- what browsers may not do (mmsd_http_opts.check_host) ---- */

static bool is_ip_literal(const char *host, size_t n)
{
    char buf[64];
    unsigned char addr[sizeof(struct in6_addr)];
    bool v6 = n > 2 && host[0] == '[' && host[n - 1] == ']';
    if (v6) {
        host++;
        n -= 2;
    }
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) == 1;
}

/* The host of "name", "name:port", "[v6]" or "[v6]:port" in *n; NULL when
 * malformed. */
static const char *host_part(const char *v, size_t len, size_t *n)
{
    const char *end = v + len, *colon;
    if (*v == '[') {
        const char *rb = memchr(v, ']', len);
        if (!rb)
            return NULL;
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return NULL;
    } else {
        colon = memchr(v, ':', len);
    }
    *n = colon ? (size_t)(colon - v) : len;
    size_t digits = colon ? (size_t)(end - colon - 1) : 0;
    if (!*n || (colon && (!digits || digits > 5 || strspn(colon + 1, "0123456789") < digits)))
        return NULL;
    return v;
}

/* One of the names separated by commas or blanks in list. */
static bool in_list(const char *list, const char *name, size_t n)
{
    for (const char *p = list; p && *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == n && len && !strncasecmp(p, name, n))
            return true;
        p += len;
    }
    return false;
}

/* Host as sent, "name[:port]": no name an attacker's page can have. */
static bool host_allowed(const struct mmsd_http *h, const char *v, size_t len)
{
    size_t n;
    const char *host = host_part(v, len, &n);
    return host && (is_ip_literal(host, n) || (n == 9 && !strncasecmp(host, "localhost", 9)) ||
                    in_list(h->allowed_hosts, host, n));
}

/* A state change must come from the page mmsd served: the Origin is the
 * Host it was sent to ("null", from a sandbox or a file, is no origin). */
static bool origin_allowed(const char *origin, const char *host)
{
    const char *auth = strstr(origin, "://");
    if (!host || !auth)
        return false;
    size_t slen = (size_t)(auth - origin);
    bool web = (slen == 4 && !strncasecmp(origin, "http", 4)) ||
               (slen == 5 && !strncasecmp(origin, "https", 5));
    return web && !strcasecmp(auth + 3, host);
}

static bool unsafe_method(enum http_method m)
{
    return m == HTTP_POST || m == HTTP_PUT || m == HTTP_PATCH || m == HTTP_DELETE;
}

static bool body_type_ok(const char *want, const char *got)
{
    if (!got)
        return false;
    size_t n = strcspn(got, "; \t");
    return n == strlen(want) && !strncasecmp(got, want, n);
}

/* The status that answers in place of the handler, 0 for none: a foreign
 * Host first (nothing is said to it), then the token, then what only a
 * client with the token may hear of. */
static int req_deny(const struct mmsd_http *h, const http_parser *p,
                    const struct mmsd_http_request *r)
{
    const char *host = mmsd_http_req_header(r, "Host");
    const char *origin = mmsd_http_req_header(r, "Origin");
    const char *type = mmsd_http_req_header(r, "Content-Type");
    bool body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
    if (h->check_host && host && !host_allowed(h, host, strlen(host)))
        return 421;
    if (r->auth != AUTH_OK)
        return 401;
    if (h->check_host && origin && unsafe_method(p->method) && !origin_allowed(origin, host))
        return 403;
    if (h->body_type && body && !body_type_ok(h->body_type, type))
        return 415;
    return 0;
}

static int conn_send(struct conn *c, const uv_buf_t *bufs, unsigned n);

/* curl and others hold a body back until told to go on. */
static bool expects_continue(const struct conn *c, const http_parser *p)
{
    const char *e = mmsd_http_req_header(&c->req, "Expect");
    bool body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
    return e && !strcasecmp(e, "100-continue") && body && !c->req.http10;
}

static void req_continue(struct conn *c, const http_parser *p)
{
    if (!expects_continue(c, p) || c->req.deny)
        return;
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
    conn_send(c, &b, 1); /* on failure the client sends the body after its own wait */
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct mmsd_http_request *r = &c->req;
    if (req_end_part(r) < 0 || req_split_url(p, r) < 0)
        return -1;
    if (p->http_major != 1)
        return refuse(r, 505);
    r->method = http_method_str(p->method);
    r->is_head = p->method == HTTP_HEAD;
    r->http10 = p->http_minor == 0;
    r->auth = req_auth(c->h, r);
    r->deny = req_deny(c->h, p, r);
    /* A refusal goes first: a foreign Host hears nothing of the size, and
     * a client waiting to send its body hears now, not after a timeout
     * (RFC 9110 10.1.1: a final status in place of 100). */
    if (r->deny && expects_continue(c, p))
        return refuse(r, r->deny);
    /* Who is asking comes before what is sent: a body's type after its size. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->h->max_body)
        return refuse(r, r->deny && r->deny != 415 ? r->deny : 413);
    if ((p->flags & F_CONTENTLENGTH) && buf_reserve(&r->body, p->content_length) < 0)
        return refuse(r, 500);
    c->admitted = !r->deny;
    c->trusted |= c->admitted;
    /* The head came in time; a body has the read timeout. */
    if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length))
        timer_start(c, c->h->timeout_ms);
    req_continue(c, p);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct mmsd_http_request *r = &c->req;
    if (len > c->h->max_body - r->body.len)
        return refuse(r, 413);
    return buf_put(&r->body, at, len) < 0 ? refuse(r, 500) : 0;
}

/* Pauses so that each request is answered outside the parser, in order. */
static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->req.keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

/* ---- request accessors ---- */

const char *mmsd_http_req_method(const struct mmsd_http_request *req)
{
    return req->method;
}

const char *mmsd_http_req_path(const struct mmsd_http_request *req)
{
    return req->head.p + req->path;
}

const char *mmsd_http_req_query(const struct mmsd_http_request *req)
{
    return req->query == NO_QUERY ? "" : req->head.p + req->query;
}

const char *mmsd_http_req_header(const struct mmsd_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (!strcasecmp(req->head.p + req->hdrs[i].name, name))
            return req->head.p + req->hdrs[i].value;
    return NULL;
}

const char *mmsd_http_req_body(const struct mmsd_http_request *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.p ? req->body.p : "";
}

const struct sockaddr *mmsd_http_req_peer(const struct mmsd_http_request *req)
{
    return req->peer;
}

int mmsd_http_req_is_loopback(const struct mmsd_http_request *req)
{
    const struct sockaddr *sa = req->peer;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
        return a->s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(a);
}

/* ---- response ---- */

static bool is_tchar(unsigned char ch)
{
    return ch > 32 && ch < 127 && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    return !strpbrk(s, "\r\n");
}

int mmsd_http_res_status(struct mmsd_http_response *res, int status)
{
    if (status < 200 || status > 599 || res->streaming)
        return -EINVAL;
    res->status = status;
    return 0;
}

int mmsd_http_res_content_type(struct mmsd_http_response *res, const char *type)
{
    if (!type || !header_value_ok(type) || res->streaming)
        return -EINVAL;
    char *copy = strdup(type);
    if (!copy) {
        res->oom = true;
        return -ENOMEM;
    }
    free(res->ctype);
    res->ctype = copy;
    return 0;
}

int mmsd_http_res_header(struct mmsd_http_response *res, const char *name, const char *value)
{
    if (!name || !value || !header_name_ok(name) || !header_value_ok(value) || res->streaming)
        return -EINVAL;
    if (!strcasecmp(name, "Content-Type"))
        return mmsd_http_res_content_type(res, value);
    if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Connection") ||
        !strcasecmp(name, "Transfer-Encoding"))
        return -EINVAL;
    int rc = buf_printf(&res->hdrs, "%s: %s\r\n", name, value);
    res->oom |= rc < 0;
    return rc;
}

int mmsd_http_res_append(struct mmsd_http_response *res, const void *data, size_t len)
{
    if (res->streaming || (len && !data))
        return -EINVAL;
    int rc = buf_put(&res->body, data, len);
    res->oom |= rc < 0;
    return rc;
}

int mmsd_http_res_printf(struct mmsd_http_response *res, const char *fmt, ...)
{
    if (res->streaming)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(&res->body, fmt, ap);
    va_end(ap);
    res->oom |= rc < 0;
    return rc;
}

static void res_free(struct mmsd_http_response *res)
{
    free(res->ctype);
    buf_free(&res->hdrs);
    buf_free(&res->body);
}

static const char *reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return strcmp(s, "<unknown>") ? s : "Status";
}

/* An answer the server makes itself, as JSON like the rest of the API. */
static void res_error(struct mmsd_http_response *res, int status, enum auth auth)
{
    res_free(res);
    *res = (struct mmsd_http_response){.c = res->c, .status = status};
    mmsd_http_res_content_type(res, "application/json");
    mmsd_http_res_printf(res, "{\"error\":\"%s\"}\n",
                         status == 421   ? "this server does not answer to that Host name"
                         : status == 403 ? "a request from another site's page may not change "
                                           "anything"
                         : status == 415 ? "the body's Content-Type is not the one expected"
                                         : reason(status));
    if (status == 401)
        mmsd_http_res_header(res, "WWW-Authenticate",
                             auth == AUTH_BAD ? "Bearer realm=\"mmsd\", error=\"invalid_token\""
                                              : "Bearer realm=\"mmsd\"");
    if (status == 503)
        mmsd_http_res_header(res, "Retry-After", "1");
}

static int res_head(struct buf *head, const struct mmsd_http_response *res, bool has_body,
                    size_t body_len, const char *connection)
{
    int rc = buf_printf(head, "HTTP/1.1 %d %s\r\n", res->status, reason(res->status));
    if (!rc && has_body)
        rc = buf_printf(head, "Content-Type: %s\r\n",
                        res->ctype ? res->ctype : "text/plain; charset=utf-8");
    if (!rc && body_len != SIZE_MAX)
        rc = buf_printf(head, "Content-Length: %zu\r\n", body_len);
    if (!rc && connection)
        rc = buf_printf(head, "Connection: %s\r\n", connection);
    if (!rc)
        rc = buf_put(head, res->hdrs.p, res->hdrs.len);
    if (!rc)
        rc = buf_put(head, "\r\n", 2);
    return rc;
}

/* http10 and is_head are the request's: a held answer outlives it. */
static int res_send(struct conn *c, struct mmsd_http_response *res, bool keep, bool http10,
                    bool is_head)
{
    if (res->oom)
        res_error(res, 500, AUTH_OK);
    bool has_body = res->status != 204 && res->status != 304;
    const char *connection = !keep ? "close" : http10 ? "keep-alive" : NULL;
    struct buf head = {0};
    int rc = res_head(&head, res, has_body, has_body ? res->body.len : SIZE_MAX, connection);
    if (rc < 0)
        goto fail;
    uv_buf_t bufs[2] = {uv_buf_init(head.p, (unsigned)head.len),
                        uv_buf_init(res->body.p, (unsigned)res->body.len)};
    bufs[1].len = res->body.len; /* uv_buf_init narrows to unsigned */
    rc = conn_send(c, bufs, has_body && !is_head ? 2 : 1);
fail:
    buf_free(&head);
    return rc;
}

/* ---- connections ---- */

static void on_write(uv_write_t *req, int status);

/* Copies into one buffer that lives until libuv is done with it. */
static int conn_send(struct conn *c, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len > SIZE_MAX / 2 - total)
            return -EOVERFLOW;
        total += bufs[i].len;
    }
    if (c->closing || c->shut)
        return -EPIPE;
    if (!total)
        return 0;
    struct wreq *w = malloc(sizeof(*w) + total);
    if (!w)
        return -ENOMEM;
    char *p = w->data;
    for (unsigned i = 0; i < n; i++) {
        if (bufs[i].len)
            memcpy(p, bufs[i].base, bufs[i].len);
        p += bufs[i].len;
    }
    w->c = c;
    w->len = total;
    uv_buf_t b = {.base = w->data, .len = total};
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    c->queued += total;
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

static void timer_start(struct conn *c, unsigned ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    (void)hint;
    /* Reading only runs once everything in rbuf was parsed. */
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void conn_read_update(struct conn *c)
{
    if (c->closing)
        return;
    bool want = !c->eof && (c->state == S_STREAM || c->state == S_LINGER ||
                            (c->state == S_READ && c->roff >= c->rlen));
    if (want == c->reading)
        return;
    if (!want) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        return;
    }
    c->roff = c->rlen = 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->eof) {
        conn_close(c);
        return;
    }
    c->shut = true;
    timer_start(c, c->h->timeout_ms < LINGER_MS ? c->h->timeout_ms : LINGER_MS);
}

/* The last answer is queued: send it, then FIN, then wait for the client's. */
static void conn_finish(struct conn *c)
{
    if (c->closing || c->state == S_LINGER)
        return;
    c->state = S_LINGER;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    timer_start(c, c->h->timeout_ms);
    conn_read_update(c);
}

static void conn_enter_read(struct conn *c)
{
    c->state = S_READ;
    c->since = uv_now(c->h->loop);
    c->admitted = false;
    timer_start(c, c->h->header_ms);
    conn_read_update(c);
}

/* Answers a request that cannot be read further, and closes. */
static void conn_refuse(struct conn *c, int status)
{
    struct mmsd_http_response res = {.c = c};
    res_error(&res, status, c->req.auth);
    if (res_send(c, &res, false, c->req.http10, c->req.is_head) < 0)
        conn_close(c);
    else
        conn_finish(c);
    res_free(&res);
}

static int call_handler(struct conn *c, struct mmsd_http_response *res)
{
    if (c->req.deny) {
        res_error(res, c->req.deny, c->req.auth);
        return 0;
    }
    int rc = c->h->handler(c->h->opaque, &c->req, res);
    if (rc < 0 && res->held) {
        res->held->c = NULL; /* the app's send only frees it */
        res->held->armed = true;
        res->held = NULL;
    }
    if (rc < 0 && !res->streaming)
        res_error(res, 500, AUTH_OK);
    return rc;
}

/* The answer is queued: the next request, or the end. */
static void conn_answered(struct conn *c, bool keep)
{
    if (!keep) {
        conn_finish(c);
    } else if (c->queued > PIPELINE_HIGH_WATER) {
        c->state = S_WAIT;
        timer_start(c, c->h->timeout_ms);
    } else {
        conn_enter_read(c);
    }
}

/* The handler's response becomes the held answer's; reading waits for it. */
static void conn_hold(struct conn *c, struct mmsd_http_response *res, bool keep)
{
    struct mmsd_http_held *hd = res->held;
    hd->res = *res;
    hd->res.held = NULL;
    hd->res.c = NULL; /* the connection may go first: held_send is given it by hd */
    *res = (struct mmsd_http_response){.c = c};
    hd->armed = true;
    hd->keep = keep;
    hd->is_head = c->req.is_head;
    hd->http10 = c->req.http10;
    c->held = hd;
    c->state = S_HOLD;
    timer_start(c, c->h->timeout_ms);
}

static void conn_dispatch(struct conn *c)
{
    struct mmsd_http_response res = {.c = c, .status = 200};
    bool keep = c->req.keep_alive && !c->parser.upgrade && !c->h->closing;
    uv_timer_stop(&c->timer);
    int rc = call_handler(c, &res);
    if (c->closing) {
        if (res.held) { /* the handler closed it: the app's send only frees hd */
            res.held->c = NULL;
            res.held->armed = true;
        }
        goto out;
    }
    if (res.streaming) {
        if (rc < 0 || c->req.is_head) /* a HEAD gets the stream's head only */
            conn_finish(c);
        goto out;
    }
    if (res.held) {
        conn_hold(c, &res, keep);
        goto out;
    }
    if (res_send(c, &res, keep, c->req.http10, c->req.is_head) < 0) {
        conn_close(c);
        goto out;
    }
    conn_answered(c, keep);
out:
    res_free(&res);
    req_reset(&c->req);
}

static int parse_error_status(enum http_errno e)
{
    return e == HPE_HEADER_OVERFLOW ? 431 : 400;
}

static void conn_parse(struct conn *c)
{
    while (!c->closing && c->state == S_READ && c->roff < c->rlen) {
        size_t n = http_parser_execute(&c->parser, &c->h->settings, c->rbuf + c->roff,
                                       c->rlen - c->roff);
        c->roff += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
        } else if (e != HPE_OK || n == 0) {
            conn_refuse(c, c->req.error ? c->req.error : parse_error_status(e));
        }
    }
    if (c->state != S_READ && c->state != S_WAIT && c->state != S_HOLD)
        c->roff = c->rlen; /* nothing more is answered on this connection */
    conn_read_update(c);
}

static void conn_eof(struct conn *c, ssize_t n)
{
    c->reading = false;
    if (n != UV_EOF || c->state == S_STREAM || c->queued == 0 || c->shut) {
        conn_close(c);
        return;
    }
    /* The client stopped sending but may still read what we owe it. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->eof = true;
    conn_finish(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    (void)buf;
    if (c->closing || n == 0)
        return;
    if (n < 0) {
        conn_eof(c, n);
        return;
    }
    if (c->state == S_READ) {
        c->roff = 0;
        c->rlen = (size_t)n;
        conn_parse(c);
    } else if (c->state == S_LINGER) {
        c->dropped_bytes += (size_t)n;
        if (c->dropped_bytes > LINGER_BYTES)
            conn_close(c);
    }
}

static void conn_progress(struct conn *c)
{
    switch (c->state) {
    case S_WAIT:
        if (c->queued == 0) {
            conn_enter_read(c);
            conn_parse(c); /* the pipelined requests still in rbuf */
        } else {
            timer_start(c, c->h->timeout_ms);
        }
        break;
    case S_STREAM:
        if (c->queued)
            timer_start(c, c->h->timeout_ms);
        else
            uv_timer_stop(&c->timer);
        break;
    case S_LINGER:
        if (!c->shut)
            timer_start(c, c->h->timeout_ms);
        break;
    case S_READ:
    case S_HOLD: /* the timer is the app's deadline */
        break;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    c->queued -= w->len;
    free(w);
    if (c->closing)
        return;
    if (status < 0)
        conn_close(c);
    else
        conn_progress(c);
}

static void server_maybe_done(struct mmsd_http *h);

static void on_conn_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    if (--c->open_handles)
        return;
    struct mmsd_http *h = c->h;
    if (c->has_stream && c->stream.on_close)
        c->stream.on_close(&c->stream, c->stream.arg);
    req_free(&c->req);
    free(c);
    h->nconns--;
    server_maybe_done(h);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->held) {
        c->held->c = NULL;
        c->held = NULL;
    }
    struct mmsd_http *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->reject)
        h->nreject--;
    else
        h->nactive--;
    if (c->has_stream)
        h->nstreams--;
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static struct conn *conn_new(struct mmsd_http *h)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    c->reject = h->nactive >= h->max_conns;
    if (c->reject)
        h->nreject++;
    else
        h->nactive++;
    c->req.peer = (const struct sockaddr *)&c->peer;
    c->req.query = NO_QUERY;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return c;
}

/* Whether a newcomer may take c's place: c waits for a request to be let
 * in (it sent none, part of one, or one that was refused), or it is
 * being answered or closed having never had a request let in (refusals
 * lingering, or piled up unread). Streams, admitted requests and the
 * answers of a client that got through are never taken. */
static bool replaceable(const struct conn *c)
{
    if (c->closing || c->reject)
        return false;
    if (c->state == S_READ)
        return !c->admitted;
    return (c->state == S_LINGER || c->state == S_WAIT) && !c->trusted;
}

/* Of those, the one that has waited longest. */
static struct conn *oldest_waiting(struct mmsd_http *h)
{
    struct conn *old = NULL;
    for (struct conn *c = h->conns; c; c = c->next)
        if (replaceable(c) && (!old || c->since < old->since))
            old = c;
    return old;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mmsd_http *h = server->data;
    if (status < 0 || h->closing)
        return;
    /* Held idle sockets must not lock out a client with the token: the
     * newcomer may be that client, the longest waiting are not. */
    struct conn *old = h->nactive >= h->max_conns ? oldest_waiting(h) : NULL;
    if (old)
        conn_close(old);
    /* Without memory the client stays in the backlog; nothing better to do. */
    struct conn *c = conn_new(h);
    if (!c)
        return;
    int len = sizeof(c->peer);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) < 0 ||
        (c->reject && h->nreject > h->max_conns)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->reject)
        conn_refuse(c, 503);
    else
        conn_enter_read(c);
}

/* ---- streams ---- */

int mmsd_http_stream_begin(struct mmsd_http_response *res, const char *content_type,
                           mmsd_http_stream_close_cb on_close, void *arg,
                           struct mmsd_http_stream **out)
{
    struct conn *c = res->c;
    if (!out || res->streaming || res->oom || res->held)
        return -EINVAL;
    if (!c || c->closing || c->state != S_READ)
        return -EPIPE;
    if (c->h->nstreams >= c->h->max_streams)
        return -EUSERS;
    int rc = mmsd_http_res_content_type(res, content_type);
    if (rc < 0)
        return rc;
    struct buf head = {0};
    rc = res_head(&head, res, true, SIZE_MAX, "close");
    if (rc < 0)
        goto fail;
    uv_buf_t b = uv_buf_init(head.p, (unsigned)head.len);
    rc = conn_send(c, &b, 1);
    if (rc < 0)
        goto fail;
    /* Left to autotuning, the kernel would hold megabytes (seconds of
     * video) before our queue sees any backpressure. */
    int sndbuf = c->h->stream_max < INT32_MAX / 2 ? (int)c->h->stream_max : INT32_MAX / 2;
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &sndbuf);
    res->streaming = true;
    c->stream = (struct mmsd_http_stream){c, on_close, arg};
    c->has_stream = true;
    c->h->nstreams++;
    if (!c->req.is_head) {
        c->state = S_STREAM;
        timer_start(c, c->h->timeout_ms);
    }
    *out = &c->stream;
fail:
    buf_free(&head);
    return rc;
}

int mmsd_http_stream_writev(struct mmsd_http_stream *s, const uv_buf_t *bufs, unsigned nbufs)
{
    struct conn *c = s->c;
    if (c->closing || c->state != S_STREAM)
        return -EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (c->queued && (total > c->h->stream_max || c->queued > c->h->stream_max - total))
        return -EAGAIN;
    int rc = conn_send(c, bufs, nbufs);
    if (rc == 0 && !uv_is_active((uv_handle_t *)&c->timer))
        timer_start(c, c->h->timeout_ms);
    return rc;
}

int mmsd_http_stream_write(struct mmsd_http_stream *s, const void *data, size_t len)
{
    uv_buf_t b = {.base = (char *)data, .len = len};
    return mmsd_http_stream_writev(s, &b, 1);
}

size_t mmsd_http_stream_queued(const struct mmsd_http_stream *s)
{
    return s->c->queued;
}

void mmsd_http_stream_end(struct mmsd_http_stream *s)
{
    conn_finish(s->c);
}

/* ---- server ---- */

/* Binds with plain calls so that a failure leaves no libuv handle behind. */
static int bind_socket(const struct sockaddr_storage *ss, int *fd_out,
                       struct sockaddr_storage *bound)
{
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int one = 1, rc = 0;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    socklen_t blen = sizeof(*bound);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)bound, &blen) < 0) {
        rc = -errno;
        goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

/* A token with blanks could never match: the header's are trimmed. */
static bool token_ok(const char *t)
{
    if (!*t || strlen(t) > MMSD_HTTP_TOKEN_MAX)
        return false;
    for (; *t; t++)
        if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 127)
            return false;
    return true;
}

int mmsd_http_check_hosts(const char *list, struct mms_err *err)
{
    for (const char *p = list; p && *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        size_t ok = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._");
        if (ok < n)
            return mms_err_set(err, -EINVAL,
                               "allowed host '%.*s': a host name (letters, digits, '-', '.', "
                               "'_'), without a port",
                               (int)(n > 200 ? 200 : n), p);
        p += n;
    }
    return 0;
}

static void server_free(struct mmsd_http *h)
{
    if (h->open_paths)
        for (char **p = h->open_paths; *p; p++)
            free(*p);
    free(h->open_paths);
    free(h->token);
    free(h->allowed_hosts);
    free(h->body_type);
    free(h);
}

static int copy_auth(struct mmsd_http *h, const struct mmsd_http_opts *o)
{
    size_t n = 0;
    while (o->open_paths && o->open_paths[n])
        n++;
    h->open_paths = calloc(n + 1, sizeof(char *));
    if (!h->open_paths)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(h->open_paths[i] = strdup(o->open_paths[i])))
            return -ENOMEM;
    if (o->token && !(h->token = strdup(o->token)))
        return -ENOMEM;
    h->token_len = o->token ? strlen(o->token) : 0;
    h->check_host = o->check_host;
    if (o->allowed_hosts && !(h->allowed_hosts = strdup(o->allowed_hosts)))
        return -ENOMEM;
    if (o->body_type && !(h->body_type = strdup(o->body_type)))
        return -ENOMEM;
    return 0;
}

static void copy_limits(struct mmsd_http *h, const struct mmsd_http_opts *o)
{
    h->max_header = o->max_header_bytes ? o->max_header_bytes : DEF_MAX_HEADER;
    h->max_body = o->max_body_bytes ? o->max_body_bytes : DEF_MAX_BODY;
    h->timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : DEF_TIMEOUT_MS;
    h->header_ms = o->header_timeout_ms ? o->header_timeout_ms : DEF_HEADER_TIMEOUT_MS;
    if (h->header_ms > h->timeout_ms)
        h->header_ms = h->timeout_ms;
    h->max_conns = o->max_connections ? o->max_connections : DEF_MAX_CONNS;
    h->max_streams = o->max_streams;
    if (!h->max_streams)
        h->max_streams = h->max_conns > STREAM_RESERVE ? h->max_conns - STREAM_RESERVE : 1;
    h->stream_max = o->stream_max_queued ? o->stream_max_queued : DEF_STREAM_QUEUED;
}

static void settings_init(http_parser_settings *s)
{
    http_parser_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}

static void on_listener_closed(uv_handle_t *hd)
{
    struct mmsd_http *h = hd->data;
    h->listener_open = false;
    server_maybe_done(h);
}

static void server_maybe_done(struct mmsd_http *h)
{
    if (!h->closing || h->listener_open || h->nconns)
        return;
    void (*done)(void *) = h->done;
    void *arg = h->done_arg;
    server_free(h);
    if (done)
        done(arg);
}

/* After uv_tcp_init the handle must be closed through the loop; failing
 * there is practically impossible once the socket is bound. */
static int server_start(struct mmsd_http *h, int fd, struct mms_err *err)
{
    uv_tcp_init(h->loop, &h->listener);
    h->listener.data = h;
    h->listener_open = true;
    int rc = uv_tcp_open(&h->listener, fd);
    if (rc < 0)
        close(fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, BACKLOG, on_connection);
    if (rc < 0) {
        h->closing = true;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
        return mms_err_set(err, rc, "listen: %s", uv_strerror(rc));
    }
    return 0;
}

int mmsd_http_create(uv_loop_t *loop, const struct mmsd_http_opts *o, struct mmsd_http **out,
                     struct mms_err *err)
{
    struct sockaddr_storage ss;
    int rc, fd = -1;
    if (!loop || !o || !out || !o->listen || !o->handler)
        return mms_err_set(err, -EINVAL, "http: listen address and handler are required");
    if (o->token && !token_ok(o->token))
        return mms_err_set(err, -EINVAL,
                           "http: the token is empty, longer than %d characters, or has spaces "
                           "or control characters", MMSD_HTTP_TOKEN_MAX);
    if ((rc = mmsd_http_check_hosts(o->allowed_hosts, err)) < 0)
        return rc;
    if ((rc = mmsd_listen_parse(o->listen, &ss, err)) < 0)
        return rc;
    struct mmsd_http *h = calloc(1, sizeof(*h));
    if (!h)
        return mms_err_set(err, -ENOMEM, "http: out of memory");
    h->loop = loop;
    h->handler = o->handler;
    h->opaque = o->opaque;
    copy_limits(h, o);
    settings_init(&h->settings);
    if ((rc = copy_auth(h, o)) < 0) {
        mms_err_set(err, rc, "http: out of memory");
        goto fail;
    }
    if ((rc = bind_socket(&ss, &fd, &h->bound)) < 0) {
        mms_err_set(err, rc, "listen %s: %s", o->listen, strerror(-rc));
        goto fail;
    }
    mmsd_listen_format(&h->bound, h->address, sizeof(h->address));
    if ((rc = server_start(h, fd, err)) < 0)
        return rc; /* h is freed by the loop */
    *out = h;
    return 0;
fail:
    server_free(h);
    return rc;
}

int mmsd_http_port(const struct mmsd_http *h)
{
    const struct sockaddr_storage *b = &h->bound;
    return ntohs(b->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)b)->sin6_port
                                          : ((const struct sockaddr_in *)b)->sin_port);
}

const char *mmsd_http_address(const struct mmsd_http *h)
{
    return h->address;
}

int mmsd_http_close(struct mmsd_http *h, void (*done)(void *arg), void *arg)
{
    if (!h)
        return -EINVAL;
    if (h->closing)
        return -EALREADY;
    h->closing = true;
    h->done = done;
    h->done_arg = arg;
    uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    while (h->conns)
        conn_close(h->conns);
    return 0;
}

/* ---- held answers ---- */

int mmsd_http_res_hold(struct mmsd_http_response *res, struct mmsd_http_held **out)
{
    if (!out || res->streaming || res->held)
        return -EINVAL;
    struct conn *c = res->c;
    if (!c || c->closing || c->state != S_READ)
        return -EPIPE;
    struct mmsd_http_held *hd = calloc(1, sizeof(*hd));
    if (!hd)
        return -ENOMEM;
    hd->c = c;
    res->held = hd;
    *out = hd;
    return 0;
}

struct mmsd_http_response *mmsd_http_held_response(struct mmsd_http_held *hd)
{
    return &hd->res;
}

int mmsd_http_held_send(struct mmsd_http_held *hd)
{
    if (!hd->armed)
        return -EINVAL;
    struct conn *c = hd->c;
    int rc = -EPIPE;
    if (c) {
        c->held = NULL;
        uv_timer_stop(&c->timer);
        bool keep = hd->keep && !c->h->closing;
        rc = res_send(c, &hd->res, keep, hd->http10, hd->is_head);
        if (rc < 0) {
            conn_close(c);
        } else {
            conn_answered(c, keep);
            conn_parse(c); /* the pipelined requests still in rbuf */
        }
    }
    res_free(&hd->res);
    free(hd);
    return rc;
}
