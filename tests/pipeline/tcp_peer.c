#include "tcp_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

struct tcp_peer {
    int listener, port, rcvbuf;
    char url[32];
    const char *serve;
    int conns[MAX_CONNS];
    int nconns;
    pthread_t thread;
    atomic_int stop, reading, accepted, serves;
    atomic_llong bytes;
};

/* The whole file down `fd`, then the end of the stream. */
static void serve_file(const char *path, int fd)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        for (size_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w <= 0)
                goto done;
            off += (size_t)w;
        }
    }
done:
    if (f)
        fclose(f);
    close(fd);
}

static void take_connection(struct tcp_peer *p)
{
    int fd = accept(p->listener, NULL, NULL);
    if (fd < 0)
        return;
    if (p->serve && atomic_load(&p->accepted) < atomic_load(&p->serves)) {
        atomic_fetch_add(&p->accepted, 1);
        serve_file(p->serve, fd);
        return;
    }
    atomic_fetch_add(&p->accepted, 1);
    if (p->nconns == MAX_CONNS) {
        close(fd);
        return;
    }
    p->conns[p->nconns++] = fd;
}

/* Reads what arrived when reading; a connection the other end reset or
 * closed goes either way, or poll would report it for ever. */
static void service_connections(struct tcp_peer *p, const struct pollfd *pfd, int reading)
{
    char buf[65536];
    for (int i = p->nconns - 1; i >= 0; i--) {
        short ev = pfd[i + 1].revents;
        ssize_t n = 1; /* nothing read: the connection stays */
        if (reading && (ev & (POLLIN | POLLHUP | POLLERR))) {
            n = recv(p->conns[i], buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0)
                atomic_fetch_add(&p->bytes, n);
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
            (!reading && (ev & (POLLHUP | POLLERR)))) {
            close(p->conns[i]);
            p->conns[i] = p->conns[--p->nconns];
        }
    }
}

static void *peer_main(void *arg)
{
    struct tcp_peer *p = arg;
    struct pollfd pfd[MAX_CONNS + 1];
    while (!atomic_load(&p->stop)) {
        int reading = atomic_load(&p->reading);
        pfd[0] = (struct pollfd){p->listener, POLLIN, 0};
        for (int i = 0; i < p->nconns; i++)
            pfd[i + 1] = (struct pollfd){p->conns[i], reading ? POLLIN : 0, 0};
        if (poll(pfd, (nfds_t)p->nconns + 1, 20) <= 0)
            continue;
        service_connections(p, pfd, reading);
        if (pfd[0].revents & POLLIN)
            take_connection(p);
    }
    for (int i = 0; i < p->nconns; i++)
        close(p->conns[i]);
    return NULL;
}

int tcp_peer_start(int rcvbuf, const char *serve, struct tcp_peer **out)
{
    struct tcp_peer *p = calloc(1, sizeof(*p));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int one = 1;
    *out = NULL;
    if (!p)
        return -ENOMEM;
    p->serve = serve;
    atomic_store(&p->serves, 1);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Set on the listener, so accepted sockets start with it: the window
     * they advertise stays that small. */
    if (p->listener < 0 ||
        setsockopt(p->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        (rcvbuf && setsockopt(p->listener, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))) ||
        bind(p->listener, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(p->listener, (struct sockaddr *)&a, &len) || listen(p->listener, 16) ||
        pthread_create(&p->thread, NULL, peer_main, p)) {
        if (p->listener >= 0)
            close(p->listener);
        free(p);
        return -errno;
    }
    p->port = ntohs(a.sin_port);
    snprintf(p->url, sizeof(p->url), "tcp://127.0.0.1:%d", p->port);
    *out = p;
    return 0;
}

void tcp_peer_serve(struct tcp_peer *p, int n)
{
    atomic_store(&p->serves, n);
}

const char *tcp_peer_url(const struct tcp_peer *p)
{
    return p->url;
}

void tcp_peer_read(struct tcp_peer *p, int on)
{
    atomic_store(&p->reading, on);
}

int64_t tcp_peer_bytes(struct tcp_peer *p)
{
    return atomic_load(&p->bytes);
}

int tcp_peer_accepted(struct tcp_peer *p)
{
    return atomic_load(&p->accepted);
}

void tcp_peer_stop(struct tcp_peer *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    close(p->listener);
    free(p);
}
