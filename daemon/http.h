#ifndef MMSD_HTTP_H
#define MMSD_HTTP_H

/*
 * mmsd's HTTP/1.1 server: the control API and the MJPEG previews, on a
 * libuv loop. Everything happens on the loop's thread: the handler, the
 * response and stream calls, and every callback. Functions return 0 or a
 * negative errno.
 *
 * A request is answered by one handler call that fills the response before
 * it returns, or holds it to answer later (below). A response that outlives
 * the handler (a live preview) becomes a stream the application pushes
 * parts to later.
 *
 * Writing to a client that left raises SIGPIPE: the process must ignore it.
 */

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct mms_err;
struct mmsd_http;
struct mmsd_http_request;  /* valid during the handler call only */
struct mmsd_http_response; /* valid during the handler call only */
struct mmsd_http_stream;   /* valid until its close callback returns */

/* Returns 0 to send what was put in res, or a negative errno to answer 500
 * (a stream begun by this call is then ended). */
typedef int (*mmsd_http_handler)(void *opaque, const struct mmsd_http_request *req,
                                 struct mmsd_http_response *res);

/* The longest token a client can send: it must fit in a request's head. */
#define MMSD_HTTP_TOKEN_MAX 4096

struct mmsd_http_opts {
    const char *listen; /* "127.0.0.1:8089", "[::1]:8089": daemon/listen.h; port 0 = any free */
    mmsd_http_handler handler;
    void *opaque;
    /* When set, every request but those for open_paths (exact paths,
     * NULL-terminated) needs "Authorization: Bearer <token>", else 401. */
    const char *token;
    const char *const *open_paths;
    /* A browser sends requests for whatever page it shows: a page whose
     * name an attacker re-points at 127.0.0.1 (DNS rebinding), or a form
     * posted from another site. When check_host is set, a request whose
     * Host is not an IP address, localhost or a name in allowed_hosts
     * (separated by commas or blanks; case-insensitive, any port) gets
     * 421, and a POST, PUT, PATCH or DELETE with an Origin other than the
     * Host it was sent to gets 403. A request without Host passes: no
     * browser sends one. */
    int check_host;
    const char *allowed_hosts;
    /* When set, a request with a body must say Content-Type: body_type
     * (parameters aside), else 415: browsers send other sites' forms as
     * text/plain or form data, never as application/json. */
    const char *body_type;
    /* Limits; 0 takes the default in brackets. */
    size_t max_header_bytes;  /* [8 KiB] request line and headers, else 431 */
    size_t max_body_bytes;    /* [64 KiB] else 413 */
    unsigned header_timeout_ms; /* [5 s, at most read_timeout_ms] to receive the request
                                   line and headers, from the connection or the end of
                                   the previous answer */
    unsigned read_timeout_ms; /* [10 s] to receive a body once its headers are in, and
                                 for a stalled write to progress */
    /* [64] Beyond it, a new client takes the place of the connection that
     * has waited longest for a request to be let in (no request, part of
     * one, or one refused): held idle sockets cannot lock out a client
     * with the token. Only when every connection is busy with an admitted
     * request or a stream does a new client get 503. */
    unsigned max_connections;
    /* [max_connections - 8, at least 1] connections that may be streams at
     * once. Streams are never put out for a newcomer, so without this the
     * previews could take every connection and leave the API, /metrics
     * and /healthz nothing but 503. */
    unsigned max_streams;
    size_t stream_max_queued; /* [1 MiB] a stream's unsent bytes beyond which
                                 parts are dropped */
};

/* 0 when every name in an allowed_hosts list is a host name (letters,
 * digits, '-', '.', '_'; no port), else -EINVAL with err saying which. */
int mmsd_http_check_hosts(const char *list, struct mms_err *err);

/* Binds and listens; options are copied. */
int mmsd_http_create(uv_loop_t *loop, const struct mmsd_http_opts *o, struct mmsd_http **out,
                     struct mms_err *err);
/* The bound port (the chosen one when listen asked for port 0), and the
 * whole bound address in the listen syntax ("127.0.0.1:41234"). */
int mmsd_http_port(const struct mmsd_http *h);
const char *mmsd_http_address(const struct mmsd_http *h);
/* Stops listening and drops every connection (streams get their close
 * callback first); done(arg) runs once every handle is closed and h freed.
 * h must not be used after this call. */
int mmsd_http_close(struct mmsd_http *h, void (*done)(void *arg), void *arg);

/* The request. Strings are NUL-terminated. The path and query are as sent
 * (not percent-decoded); the query is "" when absent. */
const char *mmsd_http_req_method(const struct mmsd_http_request *req);
const char *mmsd_http_req_path(const struct mmsd_http_request *req);
const char *mmsd_http_req_query(const struct mmsd_http_request *req);
/* The first header of that name (case-insensitive), or NULL. */
const char *mmsd_http_req_header(const struct mmsd_http_request *req, const char *name);
/* The body, NUL-terminated for parsers that want a string ("" if none). */
const char *mmsd_http_req_body(const struct mmsd_http_request *req, size_t *len);
const struct sockaddr *mmsd_http_req_peer(const struct mmsd_http_request *req);
int mmsd_http_req_is_loopback(const struct mmsd_http_request *req);

/* The response: 200, text/plain and an empty body until told otherwise.
 * The server owns the framing headers (Content-Length, Connection,
 * Transfer-Encoding): setting them is -EINVAL, as is a CR or LF anywhere. */
int mmsd_http_res_status(struct mmsd_http_response *res, int status);
int mmsd_http_res_content_type(struct mmsd_http_response *res, const char *type);
/* Adds a header line; a second call with the same name adds another. */
int mmsd_http_res_header(struct mmsd_http_response *res, const char *name, const char *value);
int mmsd_http_res_append(struct mmsd_http_response *res, const void *data, size_t len);
int mmsd_http_res_printf(struct mmsd_http_response *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Turns the response into a stream that lasts until the client leaves, the
 * app ends it or the server closes: the head (status and headers set so
 * far, no Content-Length, "Connection: close") is sent now, parts follow
 * with mmsd_http_stream_write. on_close (may be NULL) runs once when the
 * stream is gone; it is the last use of *out. -EUSERS when max_streams
 * streams are open already: res is untouched, the app answers it. */
typedef void (*mmsd_http_stream_close_cb)(struct mmsd_http_stream *s, void *arg);
int mmsd_http_stream_begin(struct mmsd_http_response *res, const char *content_type,
                           mmsd_http_stream_close_cb on_close, void *arg,
                           struct mmsd_http_stream **out);
/* Queues one part (a copy), whole or not at all: -EAGAIN drops it when the
 * client is more than stream_max_queued bytes behind, -EPIPE once the
 * stream is ending. A part is always accepted while nothing is queued. */
int mmsd_http_stream_write(struct mmsd_http_stream *s, const void *data, size_t len);
int mmsd_http_stream_writev(struct mmsd_http_stream *s, const uv_buf_t *bufs, unsigned nbufs);
/* Bytes queued for this client and not yet written. */
size_t mmsd_http_stream_queued(const struct mmsd_http_stream *s);
/* Sends what is queued, then closes; on_close follows. */
void mmsd_http_stream_end(struct mmsd_http_stream *s);

/*
 * An answer that waits for work the handler started (a file being synced):
 * the handler calls mmsd_http_res_hold and returns 0; the app answers
 * later with mmsd_http_held_send, on the loop. What was put in res so far
 * is kept; later changes go to mmsd_http_held_response(hd), which takes
 * the mmsd_http_res_* calls but not mmsd_http_stream_begin. Requests
 * pipelined behind it wait. An answer not sent within read_timeout_ms
 * closes the connection. The client may leave and the server close
 * meanwhile: the app still calls mmsd_http_held_send, once, after the
 * handler has returned, and that frees hd. A handler that holds and then
 * returns an error gets its 500 now; its later send only frees hd.
 */
struct mmsd_http_held;
/* -EINVAL for a stream or a second hold, -EPIPE when the connection is
 * going, -ENOMEM. */
int mmsd_http_res_hold(struct mmsd_http_response *res, struct mmsd_http_held **out);
struct mmsd_http_response *mmsd_http_held_response(struct mmsd_http_held *hd);
/* 0 when queued; -EPIPE when the client is gone, or another negative
 * errno when the answer could not be queued (the connection is then
 * closed): hd is freed either way. -EINVAL during the handler call (hd is
 * not freed). Requests pipelined behind the answer are handled before it
 * returns: the handler may run inside this call. */
int mmsd_http_held_send(struct mmsd_http_held *hd);

#endif
