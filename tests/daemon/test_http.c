/* The HTTP server: its loop runs in a thread, the test is a blocking client. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "daemon/http.h"
#include "harness.h"

/* ---- the server under test ---- */

#define MAX_TEST_STREAMS 64
#define MAX_TEST_HELD 8

struct srv {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t push;
    struct mmsd_http *h;
    pthread_t thread;
    int port;
    size_t part_len;
    unsigned push_ms;
    char *payload;
    struct mmsd_http_stream *streams[MAX_TEST_STREAMS];
    int nstreams;
    struct mmsd_http_held *held[MAX_TEST_HELD];
    int nheld;
    atomic_int hold_refusals_ok;
    atomic_int stop, quit, done, streams_closed, parts_sent, parts_dropped, inject_ok;
    atomic_size_t max_queued;
};

static void on_stream_close(struct mmsd_http_stream *st, void *arg)
{
    struct srv *s = arg;
    for (int i = 0; i < s->nstreams; i++)
        if (s->streams[i] == st)
            s->streams[i] = s->streams[--s->nstreams];
    CHECK(mmsd_http_stream_write(st, "x", 1) == -EPIPE);
    atomic_fetch_add(&s->streams_closed, 1);
}

static void push_one(struct srv *s, struct mmsd_http_stream *st)
{
    char head[128];
    int n = snprintf(head, sizeof(head),
                     "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n",
                     s->part_len);
    uv_buf_t bufs[3] = {{.base = head, .len = (size_t)n},
                        {.base = s->payload, .len = s->part_len},
                        {.base = "\r\n", .len = 2}};
    int rc = mmsd_http_stream_writev(st, bufs, 3);
    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE); /* -EPIPE: closing, not yet closed */
    if (rc != -EPIPE)
        atomic_fetch_add(rc == 0 ? &s->parts_sent : &s->parts_dropped, 1);
    size_t q = mmsd_http_stream_queued(st);
    if (q > atomic_load(&s->max_queued))
        atomic_store(&s->max_queued, q);
}

static void on_push(uv_timer_t *t)
{
    struct srv *s = t->data;
    for (int i = 0; i < s->nstreams; i++)
        push_one(s, s->streams[i]);
}

static int stream_handler(struct srv *s, const struct mmsd_http_request *req,
                          struct mmsd_http_response *res)
{
    struct mmsd_http_stream *st;
    if (s->nstreams == MAX_TEST_STREAMS)
        return -ENOSPC;
    mmsd_http_res_header(res, "Cache-Control", "no-cache");
    int rc = mmsd_http_stream_begin(res, "multipart/x-mixed-replace; boundary=frame",
                                    on_stream_close, s, &st);
    if (rc == -EUSERS) /* as mmsd's API answers it */
        return mmsd_http_res_status(res, 503);
    if (rc < 0)
        return rc;
    if (!strcmp(mmsd_http_req_path(req), "/stream-once")) {
        push_one(s, st);
        mmsd_http_stream_end(st);
        CHECK(mmsd_http_stream_write(st, "x", 1) == -EPIPE);
        return 0;
    }
    s->streams[s->nstreams++] = st;
    if (!uv_is_active((uv_handle_t *)&s->push))
        uv_timer_start(&s->push, on_push, s->push_ms, s->push_ms);
    return 0;
}

static int info_handler(const struct mmsd_http_request *req, struct mmsd_http_response *res)
{
    const char *x = mmsd_http_req_header(req, "x-TEST");
    return mmsd_http_res_printf(res, "%s|%s|%s|%s|loopback=%d", mmsd_http_req_method(req),
                                mmsd_http_req_path(req), mmsd_http_req_query(req),
                                x ? x : "(none)", mmsd_http_req_is_loopback(req));
}

static int inject_handler(struct srv *s, struct mmsd_http_response *res)
{
    int ok = mmsd_http_res_header(res, "X-Evil", "a\r\nSet-Cookie: b") == -EINVAL &&
             mmsd_http_res_header(res, "Content-Length", "3") == -EINVAL &&
             mmsd_http_res_header(res, "Bad Name", "v") == -EINVAL &&
             mmsd_http_res_status(res, 99) == -EINVAL &&
             mmsd_http_res_header(res, "X-Good", "yes") == 0;
    atomic_store(&s->inject_ok, ok);
    return mmsd_http_res_status(res, 204);
}

/* Holds the answer: 202, a header and a body line now, "released" later. */
static int hold_handler(struct srv *s, const char *path, struct mmsd_http_response *res)
{
    struct mmsd_http_held *hd;
    if (s->nheld == MAX_TEST_HELD)
        return -ENOSPC;
    mmsd_http_res_status(res, 202);
    mmsd_http_res_header(res, "X-Held", "yes");
    mmsd_http_res_printf(res, "held|");
    int rc = mmsd_http_res_hold(res, &hd);
    if (rc < 0)
        return rc;
    s->held[s->nheld++] = hd;
    if (!strcmp(path, "/hold-refusals")) {
        struct mmsd_http_held *again;
        struct mmsd_http_stream *st;
        atomic_store(&s->hold_refusals_ok,
                     mmsd_http_res_hold(res, &again) == -EINVAL &&
                         mmsd_http_stream_begin(res, "text/plain", NULL, NULL, &st) == -EINVAL &&
                         mmsd_http_held_send(hd) == -EINVAL);
    }
    return !strcmp(path, "/hold-fail") ? -EIO : 0;
}

/* Answers every held request; its own answer: "sent N gone M". */
static int release_handler(struct srv *s, struct mmsd_http_response *res)
{
    int sent = 0, gone = 0;
    for (int i = 0; i < s->nheld; i++) {
        mmsd_http_res_printf(mmsd_http_held_response(s->held[i]), "released");
        int rc = mmsd_http_held_send(s->held[i]);
        CHECK(rc == 0 || rc == -EPIPE);
        rc == 0 ? sent++ : gone++;
    }
    s->nheld = 0;
    return mmsd_http_res_printf(res, "sent %d gone %d", sent, gone);
}

static void on_done(void *arg);

static int handler(void *opaque, const struct mmsd_http_request *req,
                   struct mmsd_http_response *res)
{
    struct srv *s = opaque;
    const char *path = mmsd_http_req_path(req);
    if (!strcmp(path, "/hello") || !strcmp(path, "/healthz"))
        return mmsd_http_res_append(res, "hello world", 11);
    if (!strcmp(path, "/echo")) {
        size_t n;
        const char *body = mmsd_http_req_body(req, &n);
        mmsd_http_res_content_type(res, "application/octet-stream");
        return mmsd_http_res_append(res, body, n);
    }
    if (!strcmp(path, "/big")) {
        for (int i = 0; i < 10000; i++)
            mmsd_http_res_printf(res, "%09d\n", i);
        return 0;
    }
    if (!strcmp(path, "/info"))
        return info_handler(req, res);
    if (!strcmp(path, "/fail"))
        return -EIO;
    if (!strcmp(path, "/inject"))
        return inject_handler(s, res);
    if (!strcmp(path, "/quit")) { /* the server goes away under this very request */
        atomic_store(&s->quit, 1);
        CHECK(mmsd_http_close(s->h, on_done, s) == 0);
        CHECK(mmsd_http_close(s->h, on_done, s) == -EALREADY);
        return mmsd_http_res_append(res, "bye", 3);
    }
    if (!strncmp(path, "/stream", 7))
        return stream_handler(s, req, res);
    if (!strncmp(path, "/hold", 5))
        return hold_handler(s, path, res);
    if (!strcmp(path, "/release"))
        return release_handler(s, res);
    mmsd_http_res_status(res, 404);
    mmsd_http_res_content_type(res, "application/json");
    return mmsd_http_res_printf(res, "{\"error\":\"no such path\"}");
}

static void on_done(void *arg)
{
    struct srv *s = arg;
    /* Every connection is freed by now: a held answer only frees itself. */
    for (int i = 0; i < s->nheld; i++)
        CHECK(mmsd_http_held_send(s->held[i]) == -EPIPE);
    s->nheld = 0;
    atomic_fetch_add(&s->done, 1);
}

static void on_wake(uv_async_t *a)
{
    struct srv *s = a->data;
    if (!atomic_load(&s->stop))
        return;
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->push, NULL);
    if (!atomic_load(&s->quit))
        CHECK(mmsd_http_close(s->h, on_done, s) == 0);
}

static void *loop_main(void *arg)
{
    struct srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int srv_start(struct srv *s, struct mmsd_http_opts o)
{
    signal(SIGPIPE, SIG_IGN);
    s->push_ms = s->push_ms ? s->push_ms : 20;
    s->part_len = s->part_len ? s->part_len : 1000;
    s->payload = malloc(s->part_len);
    memset(s->payload, 0xab, s->part_len);
    uv_loop_init(&s->loop);
    o.listen = o.listen ? o.listen : "127.0.0.1:0";
    o.handler = handler;
    o.opaque = s;
    struct mms_err err = {{0}};
    int rc = mmsd_http_create(&s->loop, &o, &s->h, &err);
    if (rc < 0) {
        CHECK(err.msg[0]);
        CHECK(uv_loop_close(&s->loop) == 0); /* a failed create leaves nothing behind */
        free(s->payload);
        return rc;
    }
    s->port = mmsd_http_port(s->h);
    CHECK(s->port > 0);
    uv_async_init(&s->loop, &s->wake, on_wake);
    uv_timer_init(&s->loop, &s->push);
    s->wake.data = s->push.data = s;
    pthread_create(&s->thread, NULL, loop_main, s);
    return 0;
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, 1);
    uv_async_send(&s->wake);
    pthread_join(s->thread, NULL);
    CHECK(atomic_load(&s->done) == 1);
    CHECK(uv_loop_close(&s->loop) == 0);
    free(s->payload);
}

/* ---- a blocking client ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

struct cli {
    int fd;
    char *buf;
    size_t len, cap;
};

static int cli_open_ex(struct cli *c, int family, int port, int rcvbuf)
{
    *c = (struct cli){.fd = socket(family, SOCK_STREAM, 0)};
    if (c->fd < 0)
        return -1;
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    return connect(c->fd, (struct sockaddr *)&ss, len);
}

static int cli_open(struct cli *c, int port)
{
    return cli_open_ex(c, AF_INET, port, 0);
}

static void cli_close(struct cli *c)
{
    close(c->fd);
    free(c->buf);
}

static void cli_send(struct cli *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close first; the reply says why */
        p += n;
        len -= (size_t)n;
    }
}

static void cli_sends(struct cli *c, const char *s)
{
    cli_send(c, s, strlen(s));
}

/* >0 bytes appended, 0 on EOF, -1 on error, -2 on timeout. */
static int cli_fill(struct cli *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) == 0)
        return -2;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap + 1);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    if (c->buf)
        c->buf[c->len] = '\0';
    return n > 0 ? (int)n : n == 0 ? 0 : -1;
}

/* Milliseconds until the server closed, or -1 if it did not in max_ms. */
static double cli_wait_closed(struct cli *c, int max_ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < max_ms) {
        int n = cli_fill(c, 50);
        if (n == 0 || n == -1)
            return now_ms() - t0;
        if (c->len > (1u << 20))
            c->len = 0;
    }
    return -1;
}

struct resp {
    int status;
    char head[16384];
    char *body;
    size_t body_len;
};

static size_t find_head_end(const struct cli *c)
{
    for (size_t i = 0; i + 3 < c->len; i++)
        if (!memcmp(c->buf + i, "\r\n\r\n", 4))
            return i + 4;
    return 0;
}

/* Reads one response; head_only for the answer to a HEAD. */
static int cli_response_ex(struct cli *c, struct resp *r, bool head_only)
{
    size_t hl;
    *r = (struct resp){0};
    while (!(hl = find_head_end(c)))
        if (cli_fill(c, 5000) <= 0)
            return -1;
    size_t keep = hl < sizeof(r->head) ? hl : sizeof(r->head) - 1;
    memcpy(r->head, c->buf, keep);
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    size_t blen = cl && !head_only ? strtoul(cl + 17, NULL, 10) : 0;
    while (c->len < hl + blen)
        if (cli_fill(c, 5000) <= 0)
            return -1;
    r->body = malloc(blen + 1);
    memcpy(r->body, c->buf + hl, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
    c->len -= hl + blen;
    return 0;
}

static int cli_response(struct cli *c, struct resp *r)
{
    return cli_response_ex(c, r, false);
}

static bool has(const struct resp *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* One request on a fresh connection; returns the status or -1. */
static int request(int port, const char *raw, struct resp *r)
{
    struct cli c;
    int status = -1;
    if (cli_open(&c, port) == 0) {
        cli_sends(&c, raw);
        if (cli_response(&c, r) == 0)
            status = r->status;
    }
    cli_close(&c);
    return status;
}

static int status_of(int port, const char *raw)
{
    struct resp r;
    int status = request(port, raw, &r);
    free(r.body);
    return status;
}

/* A handler for servers no request reaches. */
static int never(void *o, const struct mmsd_http_request *q, struct mmsd_http_response *r)
{
    (void)o, (void)q, (void)r;
    return 0;
}

/* ---- tests ---- */

static void get_200_with_body(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 200);
    CHECK(r.body_len == 11 && !strcmp(r.body, "hello world"));
    CHECK(has(&r, "\r\nContent-Type: text/plain"));
    CHECK(has(&r, "\r\nContent-Length: 11\r\n"));
    free(r.body);
    srv_stop(&s);
}

static void handler_404_and_500(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port, "GET /nope HTTP/1.1\r\n\r\n", &r) == 404);
    CHECK(!strcmp(r.body, "{\"error\":\"no such path\"}"));
    CHECK(has(&r, "Content-Type: application/json"));
    free(r.body);
    CHECK(status_of(s.port, "GET /fail HTTP/1.1\r\n\r\n") == 500);
    CHECK(request(s.port, "GET /inject HTTP/1.1\r\n\r\n", &r) == 204);
    CHECK(has(&r, "\r\nX-Good: yes\r\n") && !has(&r, "X-Evil") && !has(&r, "Content-Length"));
    CHECK(atomic_load(&s.inject_ok) == 1);
    free(r.body);
    srv_stop(&s);
}

static void request_fields(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port,
                  "GET /info?a=1&b=%20#frag HTTP/1.1\r\nHost: x\r\nX-Test:   Hello  \r\n\r\n",
                  &r) == 200);
    CHECK_MSG(!strcmp(r.body, "GET|/info|a=1&b=%20|Hello|loopback=1"), "%s", r.body);
    free(r.body);
    CHECK(request(s.port, "DELETE http://example/info HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK_MSG(!strcmp(r.body, "DELETE|/info||(none)|loopback=1"), "%s", r.body);
    free(r.body);
    srv_stop(&s);
}

static void post_body_echoed(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port,
                  "POST /echo HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\":\"bcd\"}\r\n",
                  &r) == 200);
    CHECK(r.body_len == 13 && !memcmp(r.body, "{\"a\":\"bcd\"}\r\n", 13));
    free(r.body);
    CHECK(request(s.port,
                  "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                  &r) == 200);
    CHECK(!strcmp(r.body, "hello world"));
    free(r.body);

    /* A body held back until the server says go on, as curl does. */
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 100);
    free(r.body);
    cli_sends(&c, "ping");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "ping"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

static void keep_alive_and_head(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !has(&r, "Connection: close"));
    free(r.body);
    cli_sends(&c, "HEAD /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response_ex(&c, &r, true) == 0 && r.status == 200);
    CHECK(has(&r, "\r\nContent-Length: 11\r\n"));
    free(r.body);
    cli_sends(&c, "GET /nope HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 404);
    free(r.body);
    cli_sends(&c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && has(&r, "\r\nConnection: close\r\n"));
    free(r.body);
    CHECK(cli_wait_closed(&c, 2000) >= 0);
    cli_close(&c);

    /* HTTP/1.0: closes unless asked to keep the connection. */
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && has(&r, "\r\nConnection: keep-alive\r\n"));
    free(r.body);
    cli_sends(&c, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(cli_wait_closed(&c, 2000) >= 0);
    cli_close(&c);
    srv_stop(&s);
}

static void pipelined_in_order(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.1\r\n\r\n"
                  "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                  "GET /nope HTTP/1.1\r\n\r\n"
                  "GET /info?last HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "hello world"));
    free(r.body);
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "abc"));
    free(r.body);
    CHECK(cli_response(&c, &r) == 0 && r.status == 404);
    free(r.body);
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && strstr(r.body, "|last|"));
    free(r.body);
    cli_close(&c);

    /* Many large answers at once: the server waits for us to read. */
    CHECK(cli_open(&c, s.port) == 0);
    for (int i = 0; i < 30; i++)
        cli_sends(&c, "GET /big HTTP/1.1\r\n\r\n");
    sleep_ms(200);
    for (int i = 0; i < 30; i++) {
        CHECK(cli_response(&c, &r) == 0 && r.status == 200 && r.body_len == 100000);
        free(r.body);
    }
    cli_close(&c);
    srv_stop(&s);
}

static void malformed_is_400(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    static const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET nopath HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "CONNECT example:443 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct cli c;
        struct resp r;
        CHECK(cli_open(&c, s.port) == 0);
        cli_sends(&c, bad[i]);
        CHECK_MSG(cli_response(&c, &r) == 0 && r.status == 400, "case %zu: %d", i, r.status);
        CHECK(has(&r, "\r\nConnection: close\r\n"));
        CHECK(cli_wait_closed(&c, 2000) >= 0);
        free(r.body);
        cli_close(&c);
    }
    int v = status_of(s.port, "GET / HTTP/2.0\r\n\r\n");
    CHECK_MSG(v == 505 || v == 400, "%d", v);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\n\r\n") == 200);
    srv_stop(&s);
}

static void header_too_large_is_431(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    char *req = malloc(40000);
    int n = sprintf(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 20000);
    strcpy(req + n + 20000, "\r\n\r\n");
    CHECK(status_of(s.port, req) == 431);
    n = sprintf(req, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++)
        n += sprintf(req + n, "X-H%d: v\r\n", i);
    strcpy(req + n, "\r\n");
    CHECK(status_of(s.port, req) == 431);
    n = sprintf(req, "GET /");
    memset(req + n, 'u', 9000);
    strcpy(req + n + 9000, " HTTP/1.1\r\n\r\n");
    CHECK(status_of(s.port, req) == 431);
    /* Just under the limit passes. */
    n = sprintf(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 7000);
    strcpy(req + n + 7000, "\r\n\r\n");
    CHECK(status_of(s.port, req) == 200);
    free(req);
    srv_stop(&s);
}

static void body_too_large_is_413(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    size_t big = 100000;
    char *req = malloc(big + 256);
    int n = sprintf(req, "POST /echo HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", big);
    memset(req + n, 'b', big);
    req[n + big] = '\0';
    CHECK(status_of(s.port, req) == 413);
    /* Chunked: no length up front, refused once the body crosses the limit. */
    n = sprintf(req, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        n += sprintf(req + n, "4000\r\n");
        memset(req + n, 'c', 0x4000);
        n += 0x4000;
        n += sprintf(req + n, "\r\n");
    }
    strcpy(req + n, "0\r\n\r\n");
    CHECK(status_of(s.port, req) == 413);
    /* Exactly the limit is fine. */
    n = sprintf(req, "POST /echo HTTP/1.1\r\nContent-Length: 65536\r\n\r\n");
    memset(req + n, 'd', 65536);
    req[n + 65536] = '\0';
    struct resp r;
    CHECK(request(s.port, req, &r) == 200 && r.body_len == 65536);
    free(r.body);
    free(req);
    srv_stop(&s);
}

static void slow_client_times_out(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.read_timeout_ms = 300}) < 0)
        return;
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    double t = cli_wait_closed(&c, 3000);
    CHECK_MSG(t >= 250 && t < 2000, "closed after %.0f ms", t);
    cli_close(&c);

    /* Trickling a byte at a time does not extend the deadline. */
    CHECK(cli_open(&c, s.port) == 0);
    double t0 = now_ms();
    cli_sends(&c, "GET /");
    for (int i = 0; i < 60; i++) {
        cli_sends(&c, "X");
        int n = cli_fill(&c, 50);
        if (n == 0 || n == -1)
            break;
    }
    t = now_ms() - t0;
    CHECK_MSG(t >= 250 && t < 1500, "trickler closed after %.0f ms", t);
    cli_close(&c);

    /* An idle keep-alive connection goes too. */
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200);
    free(r.body);
    t = cli_wait_closed(&c, 3000);
    CHECK_MSG(t >= 200 && t < 2000, "idle closed after %.0f ms", t);
    cli_close(&c);
    srv_stop(&s);
}

/* RFC 6750 2.3, for browsers' <img> and fetch of the status page. */
static void query_token(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.token = "s3/cr+t"}) < 0)
        return;
    CHECK(status_of(s.port, "GET /hello?access_token=s3/cr+t HTTP/1.1\r\n\r\n") == 200);
    CHECK(status_of(s.port, "GET /hello?x=1&access_token=s3%2Fcr%2bt HTTP/1.1\r\n\r\n") == 200);
    CHECK(status_of(s.port, "GET /hello?access_token=s3/cr+ HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello?access_token=s3/cr+tt HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello?access_token= HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello?access_token=s3/cr+t%2 HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello?token=s3/cr+t HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello?xaccess_token=s3/cr+t HTTP/1.1\r\n\r\n") == 401);
    /* A header, when given, is what counts. */
    CHECK(status_of(s.port, "GET /hello?access_token=s3/cr+t HTTP/1.1\r\n"
                            "Authorization: Bearer no\r\n\r\n") == 401);
    srv_stop(&s);
}

static void bearer_token(void)
{
    struct srv s = {0};
    const char *const open[] = {"/healthz", NULL};
    if (srv_start(&s, (struct mmsd_http_opts){.token = "s3cret", .open_paths = open}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port, "GET /hello HTTP/1.1\r\n\r\n", &r) == 401);
    CHECK(has(&r, "\r\nWWW-Authenticate: Bearer"));
    free(r.body);
    CHECK(request(s.port, "GET /hello HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n", &r) ==
          401);
    CHECK(has(&r, "\r\nWWW-Authenticate: Bearer") && has(&r, "invalid_token"));
    free(r.body);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nAuthorization: Bearer s3cretX\r\n\r\n") ==
          401);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nAuthorization: Basic czNjcmV0\r\n\r\n") ==
          401);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n") ==
          200);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nauthorization: bearer s3cret\r\n\r\n") ==
          200);
    CHECK(status_of(s.port, "GET /healthz HTTP/1.1\r\n\r\n") == 200);
    CHECK(status_of(s.port, "GET /healthz?verbose HTTP/1.1\r\n\r\n") == 200);
    CHECK(status_of(s.port, "GET /healthz/x HTTP/1.1\r\n\r\n") == 401);
    CHECK(status_of(s.port, "GET /stream HTTP/1.1\r\n\r\n") == 401);

    /* A refused request with a body leaves the connection usable. */
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    CHECK(cli_response(&c, &r) == 0 && r.status == 401);
    free(r.body);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n"
                  "Content-Length: 2\r\n\r\nhi");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "hi"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

/* Every slot busy with a stream (streams allowed them all): nobody is put
 * out, the newcomer gets 503. */
static void max_connections_503(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.max_connections = 2, .max_streams = 2}) < 0)
        return;
    struct cli a, b, c;
    struct resp r;
    CHECK(cli_open(&a, s.port) == 0);
    CHECK(cli_open(&b, s.port) == 0);
    cli_sends(&a, "GET /stream HTTP/1.1\r\n\r\n");
    cli_sends(&b, "GET /stream HTTP/1.1\r\n\r\n");
    CHECK(cli_fill(&a, 3000) > 0 && cli_fill(&b, 3000) > 0);
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 503);
    CHECK(has(&r, "\r\nConnection: close\r\n") && has(&r, "\r\nRetry-After:"));
    free(r.body);
    CHECK(cli_wait_closed(&c, 3000) >= 0);
    cli_close(&c);
    cli_close(&a);
    /* The freed slot is taken by the next client. */
    int status = -1;
    for (int i = 0; i < 40 && status != 200; i++) {
        sleep_ms(25);
        status = status_of(s.port, "GET /hello HTTP/1.1\r\n\r\n");
    }
    CHECK(status == 200);
    cli_close(&b);
    srv_stop(&s);
}

/* ---- held sockets and the client with the token (issue 14, finding 5) ---- */

#define HELD 64 /* the default max_connections */
static const char authed_req[] = "GET /hello HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n";

/* HELD sockets from 127.0.0.1, each sending `first` (may be ""); then
 * rounds requests with the token: how many got 200. */
static int authed_ok_while_held(const char *first, int rounds)
{
    struct srv s = {0};
    static struct cli held[HELD];
    if (srv_start(&s, (struct mmsd_http_opts){.token = "s3cret"}) < 0)
        return -1;
    for (int i = 0; i < HELD; i++) {
        CHECK(cli_open(&held[i], s.port) == 0);
        cli_sends(&held[i], first);
    }
    sleep_ms(300); /* accepted and read by now */
    int ok = 0;
    for (int i = 0; i < rounds; i++)
        ok += status_of(s.port, authed_req) == 200;
    for (int i = 0; i < HELD; i++)
        cli_close(&held[i]);
    srv_stop(&s);
    return ok;
}

static void idle_sockets_do_not_lock_out_the_token(void)
{
    int ok = authed_ok_while_held("", 20);
    CHECK_MSG(ok == 20, "%d of 20 requests with the token got 200", ok);
}

static void half_sent_requests_do_not_lock_out_the_token(void)
{
    int ok = authed_ok_while_held("GET /hello HTTP/1.1\r\nX-Slow: ", 20);
    CHECK_MSG(ok == 20, "%d of 20 requests with the token got 200", ok);
}

/* A socket whose requests were refused (401) holds no slot either. */
static void refused_clients_do_not_lock_out_the_token(void)
{
    int ok = authed_ok_while_held("GET /hello HTTP/1.1\r\n\r\n", 20);
    CHECK_MSG(ok == 20, "%d of 20 requests with the token got 200", ok);
}

/* Nor one whose refusal is being sent and lingered on (HTTP/1.0, no
 * keep-alive), or whose request could not be parsed. */
static void lingering_refusals_do_not_lock_out_the_token(void)
{
    int ok = authed_ok_while_held("GET /hello HTTP/1.0\r\n\r\n", 20);
    CHECK_MSG(ok == 20, "%d of 20 requests with the token got 200", ok);
    ok = authed_ok_while_held("GARBAGE\r\n\r\n", 20);
    CHECK_MSG(ok == 20, "%d of 20 requests with the token got 200", ok);
}

/* A client that got through keeps its connection while its answer is
 * sent and lingered on: only the never-admitted are put out. */
static void a_lingering_answer_to_the_token_is_kept(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.max_connections = 1, .token = "s3cret"}) < 0)
        return;
    struct cli a;
    CHECK(cli_open(&a, s.port) == 0);
    cli_sends(&a, "GET /hello HTTP/1.0\r\nAuthorization: Bearer s3cret\r\n\r\n");
    sleep_ms(100); /* answered; the server lingers on its FIN */
    CHECK(status_of(s.port, authed_req) == 503);
    cli_close(&a);
    srv_stop(&s);
}

/* The newcomer takes the place of the connection waiting longest; the
 * others stay usable. */
static void the_longest_waiting_goes_first(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.max_connections = 2}) < 0)
        return;
    struct cli a, b;
    struct resp r;
    CHECK(cli_open(&a, s.port) == 0);
    sleep_ms(50);
    CHECK(cli_open(&b, s.port) == 0);
    sleep_ms(50);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\n\r\n") == 200);
    CHECK(cli_wait_closed(&a, 2000) >= 0);
    cli_sends(&b, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&b, &r) == 0 && r.status == 200);
    free(r.body);
    cli_close(&a);
    cli_close(&b);
    srv_stop(&s);
}

/* A request let in (its headers, with the token, are in) is never put
 * out for a newcomer, even while its body is still coming. */
static void admitted_requests_are_kept(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.max_connections = 1, .token = "s3cret"}) < 0)
        return;
    struct cli a;
    struct resp r;
    CHECK(cli_open(&a, s.port) == 0);
    cli_sends(&a, "POST /echo HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n"
                  "Content-Length: 4\r\n\r\npi");
    sleep_ms(100);
    CHECK(status_of(s.port, authed_req) == 503);
    cli_sends(&a, "ng");
    CHECK(cli_response(&a, &r) == 0 && r.status == 200 && !strcmp(r.body, "ping"));
    free(r.body);
    cli_close(&a);
    srv_stop(&s);
}

/* ---- streams leave connections to requests ---- */

#define STREAM_SHARE (HELD - 8) /* the default max_streams */

/* n clients asking for a stream; status[i]: the answer's, or -1. */
static void open_streams(int port, struct cli *c, int *status, int n)
{
    for (int i = 0; i < n; i++) {
        struct resp r = {0};
        status[i] = -1;
        if (cli_open(&c[i], port) == 0) {
            cli_sends(&c[i], "GET /stream HTTP/1.1\r\n\r\n");
            if (cli_response(&c[i], &r) == 0)
                status[i] = r.status;
        }
        free(r.body);
    }
}

static int count_status(const int *status, int n, int want)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += status[i] == want;
    return k;
}

/* As many stream clients as connections: /healthz still answers. */
static void streams_leave_room_for_requests(void)
{
    struct srv s = {.push_ms = 60000};
    static struct cli c[HELD];
    int status[HELD];
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    open_streams(s.port, c, status, HELD);
    int ok = status_of(s.port, "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK_MSG(ok == 200, "/healthz: %d with %d streams open", ok, count_status(status, HELD, 200));
    for (int i = 0; i < HELD; i++)
        cli_close(&c[i]);
    srv_stop(&s);
}

/* The streams' share is full: the next stream gets 503. */
static void a_stream_beyond_the_share_is_refused(void)
{
    struct srv s = {.push_ms = 60000};
    static struct cli c[STREAM_SHARE + 1];
    int status[STREAM_SHARE + 1];
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    open_streams(s.port, c, status, STREAM_SHARE + 1);
    CHECK_EQ(count_status(status, STREAM_SHARE, 200), STREAM_SHARE);
    CHECK_EQ(status[STREAM_SHARE], 503);
    for (int i = 0; i < STREAM_SHARE + 1; i++)
        cli_close(&c[i]);
    srv_stop(&s);
}

/* A stream that ends gives its place to the next one. */
static void an_ended_stream_frees_its_place(void)
{
    struct srv s = {.push_ms = 60000};
    struct cli c[3], d;
    int status[3], again = -1;
    if (srv_start(&s, (struct mmsd_http_opts){.max_streams = 2}) < 0)
        return;
    open_streams(s.port, c, status, 3);
    CHECK(status[0] == 200 && status[1] == 200 && status[2] == 503);
    cli_close(&c[0]);
    for (int i = 0; i < 40 && again != 200; i++) {
        sleep_ms(25);
        open_streams(s.port, &d, &again, 1);
        cli_close(&d);
    }
    CHECK_EQ(again, 200);
    cli_close(&c[1]);
    cli_close(&c[2]);
    srv_stop(&s);
}

/* Silent connections go after the header timeout, a body has the read
 * timeout. */
static void header_timeout(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.header_timeout_ms = 300,
                                              .read_timeout_ms = 5000}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    double t = cli_wait_closed(&c, 3000);
    CHECK_MSG(t >= 250 && t < 2000, "silent: closed after %.0f ms", t);
    cli_close(&c);
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\n");
    sleep_ms(800);
    cli_sends(&c, "ping");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "ping"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

/* As mmsd runs it: a connection that says nothing is gone in about 5 s,
 * half the read timeout. */
static void default_header_timeout_is_5s(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    double t = cli_wait_closed(&c, 9000);
    CHECK_MSG(t >= 4800 && t < 6500, "closed after %.0f ms", t);
    cli_close(&c);
    srv_stop(&s);
}

/* ---- tokens of any length (finding 7) ---- */

static char *make_token(size_t n)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = chars[(i * 7 + i / 62) % 62];
    t[n] = '\0';
    return t;
}

/* GET /hello with `len` characters of token in the header or the query. */
static int with_token(int port, const char *tok, size_t len, bool query)
{
    char *req = malloc(len + 128);
    if (query)
        sprintf(req, "GET /hello?access_token=%.*s HTTP/1.1\r\n\r\n", (int)len, tok);
    else
        sprintf(req, "GET /hello HTTP/1.1\r\nAuthorization: Bearer %.*s\r\n\r\n", (int)len, tok);
    int status = status_of(port, req);
    free(req);
    return status;
}

/* All of a long token counts, in the header and in the query; the first
 * 511 characters (where it used to be cut) do not pass. */
static void long_token_counts_whole(void)
{
    struct srv s = {0};
    char *tok = make_token(3000);
    if (srv_start(&s, (struct mmsd_http_opts){.token = tok}) < 0) {
        free(tok);
        return;
    }
    for (int q = 0; q < 2; q++) {
        CHECK_MSG(with_token(s.port, tok, 3000, q) == 200, "whole token, query %d", q);
        CHECK_MSG(with_token(s.port, tok, 511, q) == 401, "511 characters, query %d", q);
        CHECK_MSG(with_token(s.port, tok, 2999, q) == 401, "all but one, query %d", q);
    }
    free(tok);
    srv_stop(&s);
}

/* The longest token a request can carry is taken; one more character is
 * refused at start, with a message that does not show it. */
static void token_length_limit(void)
{
    char *tok = make_token(MMSD_HTTP_TOKEN_MAX + 1);
    struct srv s = {0};
    tok[MMSD_HTTP_TOKEN_MAX] = '\0';
    if (srv_start(&s, (struct mmsd_http_opts){.token = tok}) == 0) {
        CHECK(with_token(s.port, tok, MMSD_HTTP_TOKEN_MAX, false) == 200);
        CHECK(with_token(s.port, tok, MMSD_HTTP_TOKEN_MAX, true) == 200);
        srv_stop(&s);
    } else {
        CHECK_MSG(0, "a token of %d characters is refused", MMSD_HTTP_TOKEN_MAX);
    }
    tok[MMSD_HTTP_TOKEN_MAX] = 'x';
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mmsd_http *h = NULL;
    struct mms_err err = {{0}};
    CHECK(mmsd_http_create(&loop,
                           &(struct mmsd_http_opts){.listen = "127.0.0.1:0", .handler = never,
                                                    .token = tok},
                           &h, &err) == -EINVAL);
    CHECK(strstr(err.msg, "longer than 4096") && !strstr(err.msg, tok + 4000));
    CHECK(uv_loop_close(&loop) == 0);
    free(tok);
}

/* ---- browsers (finding 2): Host, Origin, Content-Type ---- */

static int host_status(int port, const char *host)
{
    char req[512];
    snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    return status_of(port, req);
}

static const struct mmsd_http_opts browser_opts = {
    .check_host = 1, .allowed_hosts = "mmsd.example, or2.example", .body_type = "application/json"};

static void foreign_host_is_421(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    static const char *const bad[] = {"attacker-rebind.example", "attacker.example:8089",
                                      "localhost.attacker.example", "mmsd.example.attacker",
                                      "127.0.0.1.nip.io", "127.0.0.1:x", "[::1", "[::1]x",
                                      "mmsd.example:", "0x7f.1", ""};
    struct resp r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK_MSG(host_status(s.port, bad[i]) == 421, "'%s'", bad[i]);
    CHECK(request(s.port, "GET /hello HTTP/1.1\r\nHost: evil.example\r\n\r\n", &r) == 421);
    CHECK(!strstr(r.body, "hello"));
    free(r.body);
    srv_stop(&s);
}

/* Addresses (no page can have one for a name), localhost and the
 * configured names, with or without a port; and no Host at all. */
static void own_host_passes(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    char self[64];
    snprintf(self, sizeof(self), "127.0.0.1:%d", s.port);
    const char *const good[] = {self, "127.0.0.1", "localhost", "LocalHost:1", "[::1]:8089",
                                "[::1]", "192.168.1.10:8089", "mmsd.example", "MMSD.example:80",
                                "or2.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        CHECK_MSG(host_status(s.port, good[i]) == 200, "'%s'", good[i]);
    CHECK(status_of(s.port, "GET /hello HTTP/1.0\r\n\r\n") == 200);
    srv_stop(&s);
}

/* Without check_host the server takes any Host (test clients, proxies). */
static void host_check_is_opt_in(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    CHECK(host_status(s.port, "attacker-rebind.example") == 200);
    srv_stop(&s);
}

/* A foreign Host says nothing else, not even that a token is missing. */
static void foreign_host_comes_before_the_token(void)
{
    struct mmsd_http_opts o = browser_opts;
    o.token = "s3cret";
    struct srv s = {0};
    if (srv_start(&s, o) < 0)
        return;
    CHECK(host_status(s.port, "evil.example") == 421);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nHost: evil.example\r\n"
                            "Authorization: Bearer s3cret\r\n\r\n") == 421);
    CHECK(host_status(s.port, "localhost") == 401);
    srv_stop(&s);
}

/* A refused request whose client waits to send its body (Expect:
 * 100-continue) hears the refusal at once, not after its own timeout;
 * and a foreign Host hears 421 whatever size it announces. */
static void a_refusal_does_not_wait_for_the_body(void)
{
    struct mmsd_http_opts o = browser_opts;
    o.token = "s3cret";
    struct srv s = {0};
    if (srv_start(&s, o) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                  "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n");
    /* Within cli_response's 5 s; before, only once the body had come. */
    CHECK(cli_response(&c, &r) == 0 && r.status == 401);
    free(r.body);
    cli_close(&c);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nHost: evil.example\r\n"
                            "Content-Length: 100000000\r\n\r\n") == 421);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                            "Bearer s3cret\r\nContent-Type: application/json\r\n"
                            "Content-Length: 100000000\r\n\r\n") == 413);
    /* The body's type comes after its size: 413, not 415. */
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                            "Bearer s3cret\r\nContent-Length: 100000000\r\n\r\n") == 413);
    srv_stop(&s);
}

static int origin_status(int port, const char *method, const char *host, const char *origin)
{
    char req[512];
    snprintf(req, sizeof(req),
             "%s /echo HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: application/json\r\n"
             "Content-Length: 2\r\n\r\n{}",
             method, host, origin);
    return status_of(port, req);
}

static void cross_origin_change_is_403(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    char self[64], other_port[64], local[64];
    snprintf(self, sizeof(self), "127.0.0.1:%d", s.port);
    snprintf(other_port, sizeof(other_port), "http://127.0.0.1:%d", s.port + 1);
    snprintf(local, sizeof(local), "http://localhost:%d", s.port);
    const char *const origins[] = {"http://evil.example", "null", other_port, local,
                                   "http://127.0.0.1", "ftp://127.0.0.1", "127.0.0.1"};
    for (size_t i = 0; i < sizeof(origins) / sizeof(*origins); i++)
        CHECK_MSG(origin_status(s.port, "POST", self, origins[i]) == 403, "'%s'", origins[i]);
    static const char *const methods[] = {"PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < 3; i++)
        CHECK_MSG(origin_status(s.port, methods[i], self, "http://evil.example") == 403, "%s",
                  methods[i]);
    srv_stop(&s);
}

/* The page mmsd served, over http or a TLS proxy; tools without Origin;
 * reads, which another site's page cannot see the answer to. */
static void same_origin_change_passes(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    char self[64], origin[80], tls[80];
    snprintf(self, sizeof(self), "127.0.0.1:%d", s.port);
    snprintf(origin, sizeof(origin), "http://%s", self);
    snprintf(tls, sizeof(tls), "HTTPS://%s", self);
    CHECK(origin_status(s.port, "POST", self, origin) == 200);
    CHECK(origin_status(s.port, "POST", self, tls) == 200);
    CHECK(origin_status(s.port, "POST", "MMSD.example", "http://mmsd.example") == 200);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}") == 200);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\nOrigin: http://evil.example\r\n\r\n") ==
          200);
    srv_stop(&s);
}

static int typed_status(int port, const char *type_line)
{
    char req[512];
    snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\n%sContent-Length: 2\r\n\r\n{}",
             type_line);
    return status_of(port, req);
}

static void other_body_types_are_415(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    static const char *const bad[] = {"Content-Type: text/plain\r\n",
                                      "Content-Type: application/x-www-form-urlencoded\r\n",
                                      "Content-Type: application/jsonx\r\n",
                                      "Content-Type: json\r\n", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK_MSG(typed_status(s.port, bad[i]) == 415, "'%s'", bad[i]);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nContent-Type: text/plain\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") == 415);
    /* Refused, the connection still serves the next request. */
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
    CHECK(cli_response(&c, &r) == 0 && r.status == 415);
    free(r.body);
    cli_sends(&c, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200);
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

static void json_bodies_pass(void)
{
    struct srv s = {0};
    if (srv_start(&s, browser_opts) < 0)
        return;
    CHECK(typed_status(s.port, "Content-Type: application/json\r\n") == 200);
    CHECK(typed_status(s.port, "Content-Type: Application/JSON; charset=utf-8\r\n") == 200);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 200);
    CHECK(status_of(s.port, "POST /echo HTTP/1.1\r\n\r\n") == 200);
    srv_stop(&s);
}

static void allowed_hosts_are_checked(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const char *const bad[] = {"or1.example:8089", "*.example", "or1/x", "a b@c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct mmsd_http *h = NULL;
        struct mms_err err = {{0}};
        CHECK_MSG(mmsd_http_create(&loop,
                                   &(struct mmsd_http_opts){.listen = "127.0.0.1:0",
                                                            .handler = never,
                                                            .allowed_hosts = bad[i]},
                                   &h, &err) == -EINVAL, "'%s'", bad[i]);
        CHECK(strstr(err.msg, "allowed host"));
    }
    CHECK(mmsd_http_check_hosts("or1.example, OR2,or_3.lan  x-4", NULL) == 0);
    CHECK(mmsd_http_check_hosts("", NULL) == 0 && mmsd_http_check_hosts(NULL, NULL) == 0);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Counts whole multipart parts after the response head. */
static int count_parts(const struct cli *c, size_t part_len)
{
    const char *p = c->buf ? strstr(c->buf, "\r\n\r\n") : NULL;
    int n = 0;
    if (!p)
        return 0;
    p += 4;
    for (;;) {
        const char *hdr_end = strstr(p, "\r\n\r\n");
        if (strncmp(p, "--frame\r\n", 9) || !hdr_end ||
            (size_t)(c->buf + c->len - (hdr_end + 4)) < part_len + 2)
            return n;
        const char *cl = strcasestr(p, "Content-Length: ");
        if (!cl || strtoul(cl + 16, NULL, 10) != part_len)
            return -1;
        p = hdr_end + 4 + part_len;
        if (memcmp(p, "\r\n", 2))
            return -1;
        p += 2;
        n++;
    }
}

static void streaming_parts(void)
{
    struct srv s = {.part_len = 1000};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /stream HTTP/1.1\r\n\r\n");
    double t0 = now_ms();
    while (count_parts(&c, 1000) < 3 && now_ms() - t0 < 5000)
        if (cli_fill(&c, 1000) == 0)
            break;
    CHECK_MSG(count_parts(&c, 1000) >= 3, "%d parts", count_parts(&c, 1000));
    CHECK(strstr(c.buf, "HTTP/1.1 200 OK\r\n") == c.buf);
    CHECK(strcasestr(c.buf, "\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"));
    CHECK(strcasestr(c.buf, "\r\nCache-Control: no-cache\r\n"));
    CHECK(!strcasestr(c.buf, "Content-Length: 1000\r\nConnection"));
    cli_close(&c);
    t0 = now_ms();
    while (atomic_load(&s.streams_closed) < 1 && now_ms() - t0 < 3000)
        sleep_ms(10);
    CHECK(atomic_load(&s.streams_closed) == 1); /* the app hears the client left */

    /* The app ends a stream: the queued part still arrives, then EOF. */
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /stream-once HTTP/1.1\r\n\r\n");
    CHECK(cli_wait_closed(&c, 3000) >= 0);
    CHECK(count_parts(&c, 1000) == 1);
    cli_close(&c);

    /* HEAD gets the head of a stream and nothing else. */
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "HEAD /stream HTTP/1.1\r\n\r\n");
    CHECK(cli_wait_closed(&c, 3000) >= 0);
    CHECK(c.len && strstr(c.buf, "\r\n\r\n") == c.buf + c.len - 4);
    cli_close(&c);

    /* Closing the server ends the streams still open. */
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /stream HTTP/1.1\r\n\r\n");
    CHECK(cli_fill(&c, 3000) > 0);
    srv_stop(&s);
    CHECK(atomic_load(&s.streams_closed) == 4);
    cli_close(&c);
}

static void slow_stream_client_drops_parts(void)
{
    struct srv s = {.part_len = 64 << 10, .push_ms = 1};
    size_t limit = 256 << 10;
    if (srv_start(&s, (struct mmsd_http_opts){.stream_max_queued = limit,
                                              .read_timeout_ms = 3000}) < 0)
        return;
    struct cli c;
    CHECK(cli_open_ex(&c, AF_INET, s.port, 4096) == 0);
    cli_sends(&c, "GET /stream HTTP/1.1\r\n\r\n");
    /* Never reads. The kernel's buffers take a few MB first, then we drop. */
    double t0 = now_ms();
    while (atomic_load(&s.parts_dropped) < 20 && now_ms() - t0 < 8000)
        sleep_ms(10);
    int sent = atomic_load(&s.parts_sent), dropped = atomic_load(&s.parts_dropped);
    size_t maxq = atomic_load(&s.max_queued);
    printf("slow stream client: %d parts sent, %d dropped, at most %zu bytes queued\n", sent,
           dropped, maxq);
    CHECK_MSG(dropped >= 20 && sent > 0, "sent %d dropped %d", sent, dropped);
    CHECK_MSG(maxq <= limit + s.part_len + 128, "queued up to %zu", maxq);
    /* Writes made no progress for read_timeout_ms: the server gives up. */
    t0 = now_ms();
    while (atomic_load(&s.streams_closed) < 1 && now_ms() - t0 < 8000)
        sleep_ms(10);
    CHECK(atomic_load(&s.streams_closed) == 1);
    cli_close(&c);
    srv_stop(&s);
}

static void ipv6_loopback(void)
{
    struct srv s = {0};
    int rc = srv_start(&s, (struct mmsd_http_opts){.listen = "[::1]:0"});
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        printf("skip ipv6_loopback: ::1 cannot be bound (%s)\n", strerror(-rc));
        return;
    }
    CHECK(rc == 0);
    if (rc < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open_ex(&c, AF_INET6, s.port, 0) == 0);
    cli_sends(&c, "GET /info HTTP/1.1\r\n\r\n");
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && strstr(r.body, "loopback=1"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

static void listen_errors(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const char *bad[] = {"", "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                                "127.0.0.1:8x", "localhost:80", "::1:80", "[::1", "[::1]",
                                "[::1]80", "[127.0.0.1]:80", "1.2.3:80", ":80"};
    struct mmsd_http *h = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct mms_err err = {{0}};
        struct mmsd_http_opts o = {.listen = bad[i], .handler = never};
        CHECK_MSG(mmsd_http_create(&loop, &o, &h, &err) == -EINVAL, "'%s'", bad[i]);
        CHECK(err.msg[0]);
    }
    struct mms_err err = {{0}};
    CHECK(mmsd_http_create(&loop, &(struct mmsd_http_opts){.listen = "127.0.0.1:0"}, &h, &err) ==
          -EINVAL);
    CHECK(mmsd_http_create(&loop,
                           &(struct mmsd_http_opts){.listen = "127.0.0.1:0", .handler = never,
                                                    .token = ""},
                           &h, &err) == -EINVAL);
    CHECK(mmsd_http_create(&loop,
                           &(struct mmsd_http_opts){.listen = "127.0.0.1:0", .handler = never,
                                                    .token = "abc\n"},
                           &h, &err) == -EINVAL);

    /* A port in use is refused at once, with a message. */
    struct mmsd_http *a, *b;
    CHECK(mmsd_http_create(&loop, &(struct mmsd_http_opts){.listen = "127.0.0.1:0", .handler = never},
                           &a, &err) == 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", mmsd_http_port(a));
    CHECK(mmsd_http_create(&loop, &(struct mmsd_http_opts){.listen = addr, .handler = never}, &b,
                           &err) == -EADDRINUSE);
    CHECK(strstr(err.msg, addr));
    CHECK(mmsd_http_close(a, NULL, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

static void close_from_handler(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli idle, c;
    CHECK(cli_open(&idle, s.port) == 0);
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /quit HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    CHECK(cli_wait_closed(&c, 3000) >= 0);
    CHECK(cli_wait_closed(&idle, 3000) >= 0);
    double t0 = now_ms();
    while (!atomic_load(&s.done) && now_ms() - t0 < 3000)
        sleep_ms(10);
    CHECK(atomic_load(&s.done) == 1);
    cli_close(&c);
    cli_close(&idle);
    srv_stop(&s);
}

/* ---- held answers ---- */

static bool silent_for(struct cli *c, int ms)
{
    return cli_fill(c, ms) == -2;
}

static void a_held_answer_waits_for_the_app(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "POST /hold HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    CHECK(silent_for(&c, 300)); /* neither the held answer nor the one behind it */
    CHECK(request(s.port, "GET /release HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(!strcmp(r.body, "sent 1 gone 0"));
    free(r.body);
    CHECK(cli_response(&c, &r) == 0 && r.status == 202 && has(&r, "\r\nX-Held: yes\r\n"));
    CHECK(!strcmp(r.body, "held|released"));
    free(r.body);
    CHECK(cli_response(&c, &r) == 0 && r.status == 200 && !strcmp(r.body, "hello world"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

static void a_held_answer_to_a_head_has_no_body(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "HEAD /hold HTTP/1.1\r\n\r\n");
    CHECK(silent_for(&c, 200));
    CHECK(status_of(s.port, "GET /release HTTP/1.1\r\n\r\n") == 200);
    CHECK(cli_response_ex(&c, &r, true) == 0 && r.status == 202);
    CHECK(has(&r, "\r\nContent-Length: 13\r\n"));
    free(r.body);
    CHECK(silent_for(&c, 200)); /* no body follows the head */
    cli_close(&c);
    srv_stop(&s);
}

static void a_held_answer_to_a_client_that_left_harms_nothing(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hold HTTP/1.1\r\n\r\n");
    sleep_ms(100);
    cli_close(&c);
    sleep_ms(100);
    CHECK(request(s.port, "GET /release HTTP/1.1\r\n\r\n", &r) == 200);
    /* Reading waits with the answer, so the server may learn only by writing. */
    CHECK_MSG(!strcmp(r.body, "sent 0 gone 1") || !strcmp(r.body, "sent 1 gone 0"), "%s", r.body);
    free(r.body);
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\n\r\n") == 200);
    srv_stop(&s);
}

static void a_held_answer_past_the_timeout_closes(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.read_timeout_ms = 300}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hold HTTP/1.1\r\n\r\n");
    double waited = cli_wait_closed(&c, 3000);
    CHECK_MSG(waited >= 200 && c.len == 0, "closed after %.0f ms with %zu bytes", waited, c.len);
    cli_close(&c);
    CHECK(request(s.port, "GET /release HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(!strcmp(r.body, "sent 0 gone 1"));
    free(r.body);
    srv_stop(&s);
}

static void a_held_answer_then_an_error_is_500_now(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct resp r;
    CHECK(request(s.port, "GET /hold-fail HTTP/1.1\r\n\r\n", &r) == 500);
    free(r.body);
    CHECK(request(s.port, "GET /release HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(!strcmp(r.body, "sent 0 gone 1"));
    free(r.body);
    srv_stop(&s);
}

static void a_held_answer_refuses_a_second_hold_a_stream_and_an_early_send(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    struct resp r;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hold-refusals HTTP/1.1\r\n\r\n");
    CHECK(silent_for(&c, 200));
    CHECK(atomic_load(&s.hold_refusals_ok) == 1);
    CHECK(status_of(s.port, "GET /release HTTP/1.1\r\n\r\n") == 200);
    CHECK(cli_response(&c, &r) == 0 && r.status == 202 && !strcmp(r.body, "held|released"));
    free(r.body);
    cli_close(&c);
    srv_stop(&s);
}

static void a_held_answer_outlives_the_server(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){0}) < 0)
        return;
    struct cli c;
    CHECK(cli_open(&c, s.port) == 0);
    cli_sends(&c, "GET /hold HTTP/1.1\r\n\r\n");
    CHECK(silent_for(&c, 200));
    srv_stop(&s); /* on_done sends the held answer once the server is gone: -EPIPE */
    CHECK(cli_wait_closed(&c, 3000) >= 0 && c.len == 0);
    cli_close(&c);
}

/* Junk and mangled requests never take the server down. */
static void fuzz_survives(void)
{
    struct srv s = {0};
    if (srv_start(&s, (struct mmsd_http_opts){.read_timeout_ms = 500, .max_header_bytes = 512,
                                              .max_body_bytes = 64}) < 0)
        return;
    static const char tmpl[] = "POST /echo?a=b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                               "Transfer-Encoding: chunked\r\nX-A: b\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                               "GET /hello HTTP/1.1\r\n\r\n";
    static const char specials[] = "\r\n:; \t\0\x7f\xff/?%#0123456789abcdefHTTP";
    srand(12345);
    char buf[2048];
    for (int it = 0; it < 300; it++) {
        size_t len;
        if (it % 3 == 0) {
            len = 1 + (size_t)rand() % sizeof(buf);
            for (size_t i = 0; i < len; i++)
                buf[i] = (char)rand();
        } else {
            len = sizeof(tmpl) - 1;
            memcpy(buf, tmpl, len);
            for (int k = 1 + rand() % 6; k > 0; k--)
                buf[(size_t)rand() % len] = specials[(size_t)rand() % (sizeof(specials) - 1)];
            len = 1 + (size_t)rand() % len;
        }
        struct cli c;
        CHECK(cli_open(&c, s.port) == 0);
        cli_send(&c, buf, len);
        shutdown(c.fd, SHUT_WR);
        CHECK_MSG(cli_wait_closed(&c, 3000) >= 0, "iteration %d", it);
        cli_close(&c);
    }
    CHECK(status_of(s.port, "GET /hello HTTP/1.1\r\n\r\n") == 200);
    srv_stop(&s);
}

MMS_TESTS(T(get_200_with_body), T(handler_404_and_500), T(request_fields), T(post_body_echoed),
          T(keep_alive_and_head), T(pipelined_in_order), T(malformed_is_400),
          T(header_too_large_is_431), T(body_too_large_is_413), T(slow_client_times_out),
          T(bearer_token), T(query_token), T(max_connections_503),
          T(idle_sockets_do_not_lock_out_the_token),
          T(half_sent_requests_do_not_lock_out_the_token),
          T(refused_clients_do_not_lock_out_the_token),
          T(lingering_refusals_do_not_lock_out_the_token),
          T(a_lingering_answer_to_the_token_is_kept), T(a_refusal_does_not_wait_for_the_body), T(the_longest_waiting_goes_first),
          T(admitted_requests_are_kept), T(streams_leave_room_for_requests),
          T(a_stream_beyond_the_share_is_refused), T(an_ended_stream_frees_its_place),
          T(header_timeout), T(default_header_timeout_is_5s),
          T(long_token_counts_whole), T(token_length_limit), T(foreign_host_is_421),
          T(own_host_passes), T(host_check_is_opt_in), T(foreign_host_comes_before_the_token),
          T(cross_origin_change_is_403), T(same_origin_change_passes),
          T(other_body_types_are_415), T(json_bodies_pass), T(allowed_hosts_are_checked),
          T(streaming_parts),
          T(slow_stream_client_drops_parts), T(ipv6_loopback), T(listen_errors), T(close_from_handler),
          T(a_held_answer_waits_for_the_app), T(a_held_answer_to_a_head_has_no_body),
          T(a_held_answer_to_a_client_that_left_harms_nothing),
          T(a_held_answer_past_the_timeout_closes), T(a_held_answer_then_an_error_is_500_now),
          T(a_held_answer_refuses_a_second_hold_a_stream_and_an_early_send),
          T(a_held_answer_outlives_the_server), T(fuzz_survives))
