/* `mms ctl` on whatever a daemon answers: the real command (cli/cmd_ctl.c)
 * and its libcurl client (cli/http_client.c) against a server thread on
 * 127.0.0.1 that answers every request with the input.
 *
 * First byte: bits 0-2 the command (status, status NAME, record NAME
 * start, set NAME KEY=VALUE, health, metrics), bit 3 --json, bit 4 raw:
 * the rest is the whole answer, status line and head included; without
 * it the second byte picks a status and the rest is a JSON body sent with
 * its Content-Length. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common.h"

static int listen_fd, port;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static const uint8_t *answer; /* the server's copy: set before each command */
static size_t answer_len;
static unsigned long accepted, done;

/* The request's head and its Content-Length body; 0 when it came whole. */
static int read_request(int fd)
{
    char buf[16384];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n < 0 && errno == EINTR) /* libFuzzer's SIGALRM */
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t want = (size_t)(end + 4 - buf);
        for (char *p = buf; p < end; p++)
            if (*p == '\n' && !strncasecmp(p + 1, "Content-Length:", 15))
                want += strtoul(p + 16, NULL, 10);
        if (got >= want)
            return 0;
    }
    return -1;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&lock);
        accepted++;
        const uint8_t *a = answer;
        size_t n = answer_len;
        pthread_mutex_unlock(&lock);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (!read_request(fd)) {
            for (size_t off = 0; off < n;) {
                ssize_t w = send(fd, a + off, n - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            shutdown(fd, SHUT_WR);
            char sink[4096];
            ssize_t r;
            while ((r = recv(fd, sink, sizeof(sink), 0)) > 0 || (r < 0 && errno == EINTR))
                ; /* until the client closes */
        }
        close(fd);
        pthread_mutex_lock(&lock);
        done++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    unsetenv("MMSD_URL");
    unsetenv("MMSD_TOKEN");
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if ((listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) || listen(listen_fd, 16) ||
        getsockname(listen_fd, (struct sockaddr *)&a, &len))
        fuzz_fail("listen on 127.0.0.1: %s", strerror(errno));
    port = ntohs(a.sin_port);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, NULL))
        fuzz_fail("pthread_create failed");
    pthread_detach(t);
    return 0;
}

static const int statuses[] = {200, 200, 201, 204, 400, 404, 409, 503, 500, 302};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int cmd = data[0] & 7, json = data[0] & 8, raw = data[0] & 16;
    uint8_t *buf = NULL;
    size_t n;
    if (raw) {
        n = size - 1;
        buf = malloc(n ? n : 1);
        memcpy(buf, data + 1, n);
    } else {
        int status = statuses[data[1] % (sizeof(statuses) / sizeof(*statuses))];
        char head[200];
        int h = snprintf(head, sizeof(head),
                         "HTTP/1.1 %d Whatever\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         status, size - 2);
        n = (size_t)h + size - 2;
        buf = malloc(n);
        memcpy(buf, head, (size_t)h);
        memcpy(buf + h, data + 2, size - 2);
    }
    pthread_mutex_lock(&lock);
    answer = buf;
    answer_len = n;
    pthread_mutex_unlock(&lock);

    char url[64], a0[] = "ctl", a1[] = "--url", a3[] = "--timeout", a4[] = "5",
                  a5[] = "--json", status[] = "status", record[] = "record", set[] = "set",
                  health[] = "health", metrics[] = "metrics", name[] = "cam", start[] = "start",
                  kv[] = "alpha=0.5";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    char *argv[12] = {a0, a1, url, a3, a4};
    int argc = 5;
    if (json)
        argv[argc++] = a5;
    switch (cmd) {
    case 0: argv[argc++] = status; break;
    case 1: argv[argc++] = status; argv[argc++] = name; break;
    case 2: argv[argc++] = record; argv[argc++] = name; argv[argc++] = start; break;
    case 3: argv[argc++] = set; argv[argc++] = name; argv[argc++] = kv; break;
    case 4: argv[argc++] = health; break;
    default: argv[argc++] = metrics; break;
    }
    int rc = cli_ctl.run(argc, argv);
    if (rc < 0 || rc > 3)
        fuzz_fail("mms ctl exited %d", rc);

    /* The server is done with the answer before it is freed. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&lock);
    while (done < accepted)
        if (pthread_cond_timedwait(&cond, &lock, &until) == ETIMEDOUT)
            fuzz_fail("the answering thread is stuck");
    answer = NULL;
    pthread_mutex_unlock(&lock);
    free(buf);
    return 0;
}
