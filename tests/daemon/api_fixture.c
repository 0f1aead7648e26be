#include "api_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/events.h"
#include "daemon/preview.h"
#include "harness.h"

struct mmsd_pipe *fixture_add_pipe(struct fixture *f, const char *name, enum mmsd_pipe_state s)
{
    struct mmsd_pipe *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return NULL;
    pp->d = &f->d;
    pp->conf.name = strdup(name);
    mms_options_defaults(&pp->conf.o);
    mms_option_set(&pp->conf.o, "input", "udp://127.0.0.1:5000", NULL);
    pp->rt = pp->conf.o;
    pp->state = s;
    pp->signal = 1;
    snprintf(pp->model, sizeof(pp->model), "/models/test.safetensors");
    struct mmsd_pipe **link = &f->d.pipes;
    while (*link)
        link = &(*link)->next;
    *link = pp;
    return pp;
}

/* A pipeline the test set (pp->p) has an event queue, as mmsd's do: a
 * view drains it. Nothing is pushed, since the pipeline is not started. */
static void no_event(void *arg, const struct mms_pipeline_event *ev)
{
    (void)arg;
    (void)ev;
}

static void events_closed(void *arg) { (void)arg; }

static void on_wake(uv_async_t *a)
{
    struct fixture *f = a->data;
    uv_close((uv_handle_t *)&f->wake, NULL);
    if (f->d.http)
        mmsd_http_close(f->d.http, NULL, NULL);
    for (struct mmsd_pipe *pp = f->d.pipes; pp; pp = pp->next) {
        if (pp->preview)
            mmsd_preview_close(pp->preview, NULL, NULL);
        if (pp->events)
            mmsd_events_close(pp->events, events_closed, NULL);
    }
}

static void *loop_main(void *arg)
{
    struct fixture *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

int fixture_start(struct fixture *f)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&f->loop);
    f->d.loop = &f->loop;
    f->d.ready = 1;
    f->d.scratch = malloc(sizeof(float) * MMS_STATS_RING);
    for (struct mmsd_pipe *pp = f->d.pipes; pp && f->previews; pp = pp->next) {
        struct mms_err e = {{0}};
        CHECK_MSG(mmsd_preview_create(&f->loop, &pp->preview, &e) == 0, "%s", e.msg);
    }
    for (struct mmsd_pipe *pp = f->d.pipes; pp; pp = pp->next) {
        struct mms_err e = {{0}};
        if (pp->p)
            CHECK_MSG(mmsd_events_create(&f->loop, no_event, pp, &pp->events, &e) == 0, "%s",
                      e.msg);
    }
    struct mmsd_http_opts o;
    mmsd_api_http_opts(&f->d, &o); /* as mmsd serves it */
    o.listen = "127.0.0.1:0";
    struct mms_err err = {{0}};
    int rc = mmsd_http_create(&f->loop, &o, &f->d.http, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return rc;
    f->port = mmsd_http_port(f->d.http);
    uv_async_init(&f->loop, &f->wake, on_wake);
    f->wake.data = f;
    return -pthread_create(&f->thread, NULL, loop_main, f);
}

void fixture_stop(struct fixture *f)
{
    uv_async_send(&f->wake);
    pthread_join(f->thread, NULL);
    CHECK(uv_loop_close(&f->loop) == 0);
    struct mmsd_pipe *next;
    for (struct mmsd_pipe *pp = f->d.pipes; pp; pp = next) {
        next = pp->next;
        if (pp->p)
            mms_pipeline_destroy(pp->p);
        free(pp->conf.name);
        mms_options_free(&pp->conf.o);
        free(pp);
    }
    free(f->d.scratch);
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t n);

int fixture_open_stream(struct fixture *f, const char *path, int *fd)
{
    char req[512], head[4096];
    size_t got = 0;
    int status = -1;
    *fd = connect_local(f->port);
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path,
                     f->port);
    if (*fd < 0 || send_all(*fd, req, (size_t)n))
        goto fail;
    while (got < sizeof(head) - 1) {
        ssize_t r = recv(*fd, head + got, 1, 0);
        if (r <= 0)
            goto fail;
        head[++got] = 0;
        if (got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4))
            break;
    }
    head[got] = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) == 1)
        return status;
fail:
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    return -1;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int fixture_request_raw(struct fixture *f, const char *method, const char *path,
                        const char *headers, const char *body, size_t blen, char **out,
                        size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char head[2048], host[64] = "";
    headers = headers ? headers : "";
    if (!strcasestr(headers, "Host:"))
        snprintf(host, sizeof(host), "Host: 127.0.0.1:%d\r\n", f->port);
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\n%sConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
                     method, path, host, blen, headers);
    char *buf = NULL;
    size_t cap = 0, got = 0;
    if (!send_all(fd, head, (size_t)n) && !send_all(fd, body ? body : "", blen)) {
        for (;;) {
            if (got + 4096 + 1 > cap && !(buf = realloc(buf, cap = cap * 2 + 8192)))
                break;
            ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    close(fd);
    int status = -1;
    char *sep = buf ? (buf[got] = 0, strstr(buf, "\r\n\r\n")) : NULL;
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        free(buf);
        return -1;
    }
    snprintf(f->head, sizeof(f->head), "%.*s", (int)(sep + 4 - buf), buf);
    *len = got - (size_t)(sep + 4 - buf);
    memmove(buf, sep + 4, *len + 1);
    *out = buf;
    return status;
}

int fixture_request(struct fixture *f, const char *method, const char *path, const char *body,
                    char **out, size_t *len)
{
    return fixture_request_raw(f, method, path,
                               body ? "Content-Type: application/json\r\n" : NULL, body,
                               body ? strlen(body) : 0, out, len);
}
