/* A blocking HTTP/1.1 client over POSIX sockets for `mms ctl`. The socket
 * is non-blocking underneath so that every wait, connect included, is
 * bounded by the one deadline. */
#include "cli/http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#define DEFAULT_TIMEOUT_MS 10000u
#define DEFAULT_MAX_BODY ((size_t)16 << 20)
#define MAX_HEAD ((size_t)64 << 10) /* status line and headers */
#define MAX_CHUNK_LINE 1024         /* a chunk-size line or a trailer */
#define READ_SIZE ((size_t)64 << 10)

/* ---- URL ---- */

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

int mms_httpc_parse_url(const char *url, struct mms_httpc_url *u, struct mms_err *err)
{
    memset(u, 0, sizeof(*u));
    if (!strncasecmp(url, "https://", 8))
        return mms_err_set(err, -EPROTONOSUPPORT,
                           "https is not supported: mmsd serves plain HTTP; use http:// "
                           "(and a TLS tunnel to reach a remote daemon)");
    if (strncasecmp(url, "http://", 7))
        return mms_err_set(err, -EINVAL, "not an http:// URL");

    const char *p = url + 7, *host = p, *host_end;
    bool bracketed = *p == '[';
    if (bracketed) {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return mms_err_set(err, -EINVAL, "'[' without ']'");
        p = host_end + 1;
    } else {
        while (host_char(*p))
            p++;
        host_end = p;
    }
    size_t hlen = (size_t)(host_end - host);
    if (!hlen)
        return mms_err_set(err, -EINVAL, "no host");
    if (hlen >= sizeof(u->host))
        return mms_err_set(err, -EINVAL, "host name too long");
    memcpy(u->host, host, hlen);
    if (bracketed) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, u->host, &a6) != 1)
            return mms_err_set(err, -EINVAL, "'%s' is not an IPv6 address", u->host);
    }

    if (*p == ':') {
        const char *port = ++p;
        unsigned long v = 0;
        while (isdigit((unsigned char)*p) && p - port < 5)
            v = v * 10 + (unsigned long)(*p++ - '0');
        if (p == port || isdigit((unsigned char)*p) || v < 1 || v > 65535)
            return mms_err_set(err, -EINVAL, "bad port; expected 1..65535");
        snprintf(u->port, sizeof(u->port), "%lu", v);
    } else {
        snprintf(u->port, sizeof(u->port), "80");
    }

    if (*p && *p != '/')
        return mms_err_set(err, -EINVAL, "unexpected '%c' after the host", *p);
    size_t plen = strlen(p);
    for (size_t i = 0; i < plen; i++)
        /* The prefix goes into the request line as is: nothing that would
         * end it or start a query. */
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '?' || p[i] == '#')
            return mms_err_set(err, -EINVAL, "the path may hold no spaces, '?' or '#'");
    while (plen && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(u->prefix))
        return mms_err_set(err, -EINVAL, "path too long");
    memcpy(u->prefix, p, plen);

    snprintf(u->authority, sizeof(u->authority), bracketed ? "[%s]:%s" : "%s:%s", u->host,
             u->port);
    return 0;
}

/* ---- the connection ---- */

struct conn {
    int fd;
    int64_t deadline; /* CLOCK_MONOTONIC, ms */
    char *buf;        /* bytes received and not yet handed out */
    size_t len, cap;
    bool eof;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events`; an error or hangup also counts as
 * ready, so the next socket call reports it. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_one(const struct addrinfo *ai, int64_t deadline, int *fdp)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int ret = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            ret = -errno;
            goto fail;
        }
        if ((ret = wait_fd(fd, POLLOUT, deadline)) < 0)
            goto fail;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            ret = -errno;
            goto fail;
        }
        if (soerr) {
            ret = -soerr;
            goto fail;
        }
    }
    *fdp = fd;
    return 0;
fail:
    close(fd);
    return ret;
}

static int timed_out(struct mms_err *err, unsigned timeout_ms, const char *what)
{
    return mms_err_set(err, -ETIMEDOUT, "timed out after %g s %s", timeout_ms / 1000.0, what);
}

/* Tries each address the host resolves to ("localhost" may give ::1 and
 * 127.0.0.1 while the daemon listens on one). */
static int open_conn(const struct mms_httpc_url *u, unsigned timeout_ms, struct conn *c,
                     struct mms_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai)
        return mms_err_set(err, -EHOSTUNREACH, "cannot resolve '%s': %s", u->host,
                           gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    int ret = -EHOSTUNREACH;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        ret = connect_one(ai, c->deadline, &c->fd);
        if (ret == 0 || ret == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (ret == -ETIMEDOUT)
        return timed_out(err, timeout_ms, "connecting");
    if (ret < 0)
        return mms_err_set(err, ret, "%s", strerror(-ret));
    return 0;
}

static int send_all(struct conn *c, const char *data, size_t len)
{
    while (len) {
        /* MSG_NOSIGNAL: a daemon that hangs up must not kill us with SIGPIPE. */
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ret = wait_fd(c->fd, POLLOUT, c->deadline);
            if (ret < 0)
                return ret;
        } else {
            return n < 0 ? -errno : -EIO;
        }
    }
    return 0;
}

/* Appends what the socket has, at most READ_SIZE bytes; sets eof when the
 * server has closed. One spare byte always remains for a NUL. */
static int fill(struct conn *c)
{
    if (c->cap - c->len < READ_SIZE + 1) {
        size_t cap = c->cap ? c->cap : READ_SIZE;
        while (cap - c->len < READ_SIZE + 1)
            cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b)
            return -ENOMEM;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, READ_SIZE, 0);
        if (n > 0) {
            c->len += (size_t)n;
            return 0;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int ret = wait_fd(c->fd, POLLIN, c->deadline);
        if (ret < 0)
            return ret;
    }
}

/* ---- the response ---- */

struct head {
    int status;
    char reason[64];
    bool chunked, has_length;
    uint64_t length;
    size_t end; /* where the body starts in conn.buf */
};

static int bad(struct mms_err *err, const char *what)
{
    return mms_err_set(err, -EPROTO, "bad response from the server: %s", what);
}

static int too_big(struct mms_err *err, size_t max_body)
{
    if (max_body % (1 << 20) == 0)
        return mms_err_set(err, -EFBIG, "response over the %zu MiB limit", max_body >> 20);
    return mms_err_set(err, -EFBIG, "response over the %zu-byte limit", max_body);
}

static bool token_is(const char *s, size_t n, const char *tok)
{
    return strlen(tok) == n && !strncasecmp(s, tok, n);
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

static int parse_header(struct head *h, const char *line, const char *eol, struct mms_err *err)
{
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (!colon || colon == line)
        return bad(err, "malformed header line");
    const char *name = line, *name_end = colon, *v = colon + 1, *v_end = eol;
    trim(&v, &v_end);
    if (token_is(name, (size_t)(name_end - name), "Content-Length")) {
        uint64_t n = 0;
        if (v == v_end || v_end - v > 18)
            return bad(err, "bad Content-Length");
        for (const char *q = v; q < v_end; q++) {
            if (!isdigit((unsigned char)*q))
                return bad(err, "bad Content-Length");
            n = n * 10 + (uint64_t)(*q - '0');
        }
        if (h->has_length && h->length != n)
            return bad(err, "conflicting Content-Length headers");
        h->has_length = true;
        h->length = n;
    } else if (token_is(name, (size_t)(name_end - name), "Transfer-Encoding")) {
        /* Only the last coding frames the body; anything but chunked there
         * (or a compression before it) is a body we cannot read. */
        const char *comma = v_end;
        while (comma > v && comma[-1] != ',')
            comma--;
        const char *last = comma, *last_end = v_end;
        trim(&last, &last_end);
        if (token_is(last, (size_t)(last_end - last), "chunked") && comma == v)
            h->chunked = true;
        else if (!token_is(v, (size_t)(v_end - v), "identity"))
            return bad(err, "unsupported Transfer-Encoding");
    }
    return 0;
}

/* Parses the status line and headers in buf[0..end). */
static int parse_head(const char *buf, size_t end, struct head *h, struct mms_err *err)
{
    memset(h, 0, sizeof(*h));
    h->end = end;
    const char *p = buf, *stop = buf + end - 2; /* the blank line's CRLF */
    const char *eol = memmem(p, (size_t)(stop - p) + 2, "\r\n", 2);
    if (eol - p < 12 || strncmp(p, "HTTP/1.", 7) || !isdigit((unsigned char)p[7]) ||
        p[8] != ' ' || !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11]) || (eol - p > 12 && p[12] != ' '))
        return bad(err, "no HTTP/1.x status line");
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (h->status < 100)
        return bad(err, "status below 100");
    size_t r = 0;
    for (const char *q = p + 13; q < eol && r + 1 < sizeof(h->reason); q++)
        if ((unsigned char)*q >= 0x20 && *q != 0x7f)
            h->reason[r++] = *q;
    for (p = eol + 2; p < stop; p = eol + 2) {
        eol = memmem(p, (size_t)(stop - p) + 2, "\r\n", 2);
        int ret = parse_header(h, p, eol, err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Reads until the blank line that ends the headers, skipping interim 1xx
 * responses. */
static int read_head(struct conn *c, struct head *h, struct mms_err *err)
{
    size_t scanned = 0;
    for (;;) {
        const char *end = NULL;
        if (c->len >= 4) {
            size_t from = scanned > 3 ? scanned - 3 : 0;
            end = memmem(c->buf + from, c->len - from, "\r\n\r\n", 4);
            scanned = c->len;
        }
        if (end) {
            size_t n = (size_t)(end - c->buf) + 4;
            if (n > MAX_HEAD)
                return bad(err, "headers over 64 KiB");
            int ret = parse_head(c->buf, n, h, err);
            if (ret < 0)
                return ret;
            if (h->status >= 200)
                return 0;
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            scanned = 0;
            continue;
        }
        if (c->len > MAX_HEAD)
            return bad(err, "headers over 64 KiB");
        if (c->eof)
            return c->len ? bad(err, "cut short in the headers")
                          : mms_err_set(err, -EPROTO, "the server closed the connection "
                                                      "without answering");
        int ret = fill(c);
        if (ret < 0)
            return ret;
    }
}

/* Decoding a chunked body in place: decoded bytes end at `out`, bytes not
 * yet parsed start at `pos` (out <= pos), so memory stays near the decoded
 * size however small the chunks. */
enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct chunked {
    int state;
    uint64_t left; /* of the current chunk */
    size_t out, pos;
};

static int chunk_size(const char *s, const char *eol, uint64_t *size)
{
    uint64_t n = 0;
    const char *q = s;
    for (; q < eol && isxdigit((unsigned char)*q); q++) {
        if (q - s >= 15)
            return -1;
        n = n * 16 + (uint64_t)(isdigit((unsigned char)*q) ? *q - '0'
                                                           : tolower((unsigned char)*q) - 'a' + 10);
    }
    if (q == s || (q < eol && *q != ';' && *q != ' ' && *q != '\t'))
        return -1;
    *size = n;
    return 0;
}

static int dechunk(struct conn *c, struct chunked *ck, size_t body_start, size_t max_body,
                   struct mms_err *err)
{
    while (ck->state != CH_DONE) {
        char *p = c->buf + ck->pos;
        size_t avail = c->len - ck->pos;
        if (ck->state == CH_DATA) {
            size_t n = avail < ck->left ? avail : (size_t)ck->left;
            memmove(c->buf + ck->out, p, n);
            ck->out += n;
            ck->pos += n;
            ck->left -= n;
            if (ck->left)
                break;
            ck->state = CH_DATA_END;
            continue;
        }
        if (ck->state == CH_DATA_END) {
            if (avail < 2)
                break;
            if (p[0] != '\r' || p[1] != '\n')
                return bad(err, "chunk not followed by CRLF");
            ck->pos += 2;
            ck->state = CH_SIZE;
            continue;
        }
        const char *eol = avail >= 2 ? memmem(p, avail, "\r\n", 2) : NULL;
        if (!eol) {
            if (avail > MAX_CHUNK_LINE)
                return bad(err, "chunk line too long");
            break;
        }
        ck->pos += (size_t)(eol - p) + 2;
        if (ck->state == CH_TRAILER) {
            if (eol == p)
                ck->state = CH_DONE;
            continue;
        }
        uint64_t size;
        if (chunk_size(p, eol, &size) < 0)
            return bad(err, "bad chunk size");
        if (size > max_body - (ck->out - body_start))
            return too_big(err, max_body);
        ck->left = size;
        ck->state = size ? CH_DATA : CH_TRAILER;
    }
    /* Drop what was parsed so the next read lands right after the body. */
    memmove(c->buf + ck->out, c->buf + ck->pos, c->len - ck->pos);
    c->len = ck->out + (c->len - ck->pos);
    ck->pos = ck->out;
    return ck->state == CH_DONE;
}

/* Reads the body after h and leaves it alone at the start of c->buf,
 * returning its length in *len. */
static int read_body(struct conn *c, const struct head *h, size_t max_body, size_t *len,
                     struct mms_err *err)
{
    int ret;
    if (h->status == 204 || h->status == 304) {
        *len = 0;
        return 0;
    }
    if (h->chunked) {
        struct chunked ck = {.state = CH_SIZE, .out = h->end, .pos = h->end};
        while ((ret = dechunk(c, &ck, h->end, max_body, err)) == 0) {
            if (c->eof)
                return bad(err, "cut short in a chunked body");
            if ((ret = fill(c)) < 0)
                return ret;
        }
        if (ret < 0)
            return ret;
        *len = ck.out - h->end;
    } else if (h->has_length) {
        if (h->length > max_body)
            return too_big(err, max_body);
        while (c->len - h->end < h->length) {
            if (c->eof)
                return bad(err, "body shorter than its Content-Length");
            if ((ret = fill(c)) < 0)
                return ret;
        }
        *len = (size_t)h->length;
    } else {
        /* No framing: the body is whatever comes before the server closes. */
        while (!c->eof) {
            if (c->len - h->end > max_body)
                return too_big(err, max_body);
            if ((ret = fill(c)) < 0)
                return ret;
        }
        if (c->len - h->end > max_body)
            return too_big(err, max_body);
        *len = c->len - h->end;
    }
    memmove(c->buf, c->buf + h->end, *len);
    return 0;
}

/* ---- the request ---- */

static bool header_safe(const char *s, bool allow_space)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == ' ' && !allow_space))
            return false;
    return true;
}

static int build_request(const struct mms_httpc_url *u, const struct mms_httpc_request *req,
                         char **out, size_t *out_len, struct mms_err *err)
{
    if (!req->method || !*req->method || !header_safe(req->method, false) || !req->path ||
        req->path[0] != '/' || !header_safe(req->path, false))
        return mms_err_set(err, -EINVAL, "bad method or path");
    if (req->token && (!*req->token || !header_safe(req->token, false)))
        return mms_err_set(err, -EINVAL, "the token holds spaces or control characters");
    const char *ctype = req->content_type ? req->content_type : "application/json";
    if (!header_safe(ctype, true))
        return mms_err_set(err, -EINVAL, "bad content type");
    /* A POST or PATCH without a body still says so, or some servers wait. */
    bool bodyless = !req->body && (!strcmp(req->method, "GET") ||
                                   !strcmp(req->method, "HEAD") ||
                                   !strcmp(req->method, "DELETE"));
    size_t body_len = req->body ? req->body_len : 0;
    char length[96] = "";
    if (!bodyless)
        snprintf(length, sizeof(length), "Content-Type: %s\r\nContent-Length: %zu\r\n",
                 req->body ? ctype : "application/json", body_len);
    const char *fmt = "%s %s%s HTTP/1.1\r\n"
                      "Host: %s\r\n"
                      "User-Agent: mms-ctl\r\n"
                      "Accept: application/json, text/plain\r\n"
                      "Connection: close\r\n"
                      "%s%s%s%s\r\n";
    const char *auth = req->token ? "Authorization: Bearer " : "";
    const char *tok = req->token ? req->token : "", *auth_end = req->token ? "\r\n" : "";
    int n = snprintf(NULL, 0, fmt, req->method, u->prefix, req->path, u->authority, auth, tok,
                     auth_end, length);
    if (n < 0)
        return mms_err_set(err, -EINVAL, "cannot format the request");
    /* One buffer for head and body: two small sends would meet Nagle and
     * delayed ACKs and stall for tens of ms. */
    char *buf = malloc((size_t)n + 1 + body_len);
    if (!buf)
        return mms_err_set(err, -ENOMEM, "out of memory");
    snprintf(buf, (size_t)n + 1, fmt, req->method, u->prefix, req->path, u->authority, auth,
             tok, auth_end, length);
    if (body_len)
        memcpy(buf + n, req->body, body_len);
    *out = buf;
    *out_len = (size_t)n + body_len;
    return 0;
}

int mms_httpc_fetch(const struct mms_httpc_url *u, const struct mms_httpc_request *req,
                    struct mms_httpc_response *res, struct mms_err *err)
{
    struct conn c = {.fd = -1};
    struct head h;
    char *out = NULL;
    size_t out_len = 0, len = 0;
    unsigned timeout_ms = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    size_t max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
    memset(res, 0, sizeof(*res));

    int ret = build_request(u, req, &out, &out_len, err);
    if (ret < 0)
        goto fail;
    c.deadline = now_ms() + timeout_ms;
    if ((ret = open_conn(u, timeout_ms, &c, err)) < 0)
        goto fail;
    int sent = send_all(&c, out, out_len);
    if (sent == -ETIMEDOUT) {
        ret = timed_out(err, timeout_ms, "sending the request");
        goto fail;
    }
    /* A server may answer (413, 401) and close before taking the whole
     * body: its answer is still worth reading. */
    if (sent < 0 && sent != -EPIPE && sent != -ECONNRESET) {
        ret = mms_err_set(err, sent, "sending the request: %s", strerror(-sent));
        goto fail;
    }
    ret = read_head(&c, &h, err);
    if (ret >= 0)
        ret = read_body(&c, &h, max_body, &len, err);
    if (ret < 0 && sent < 0) {
        ret = mms_err_set(err, sent, "sending the request: %s", strerror(-sent));
        goto fail;
    }
    if (ret == -ETIMEDOUT) {
        ret = timed_out(err, timeout_ms, "waiting for the response");
        goto fail;
    }
    if (ret == -ENOMEM) {
        ret = mms_err_set(err, ret, "out of memory");
        goto fail;
    }
    if (ret < 0) {
        /* fill()'s socket errors come back bare; parse errors set err. */
        if (ret != -EPROTO && ret != -EFBIG)
            ret = mms_err_set(err, ret, "reading the response: %s", strerror(-ret));
        goto fail;
    }
    c.buf[len] = '\0'; /* fill() always leaves room for it */
    res->status = h.status;
    memcpy(res->reason, h.reason, sizeof(res->reason));
    res->body = c.buf;
    res->body_len = len;
    c.buf = NULL;
    ret = 0;
fail:
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    free(out);
    return ret;
}

void mms_httpc_response_free(struct mms_httpc_response *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
