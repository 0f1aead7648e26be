#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/frame.h>

#include "common.h"
#include "daemon/internal.h"
#include "daemon/log.h"
#include "daemon/preview.h"

static uv_loop_t loop;
static struct mmsd d;
static char state_dir[64];
static struct mmsd_http *servers[2];
static int ports[2];

static struct mmsd_pipe *add_pipe(const char *name, enum mmsd_pipe_state s, const char *input)
{
    struct mmsd_pipe *pp = calloc(1, sizeof(*pp));
    if (!pp)
        fuzz_fail("out of memory");
    pp->d = &d;
    pp->conf.name = strdup(name);
    mms_options_defaults(&pp->conf.o);
    mms_option_set(&pp->conf.o, "input", input, NULL);
    pp->rt = pp->conf.o;
    pp->state = s;
    pp->signal = 1;
    snprintf(pp->model, sizeof(pp->model), "/models/test.safetensors");
    struct mmsd_pipe **link = &d.pipes;
    while (*link)
        link = &(*link)->next;
    *link = pp;
    return pp;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A preview with one encoded frame, so that the .jpg and .mjpeg routes
 * answer with pictures. */
static void preview_with_frame(struct mmsd_pipe *pp)
{
    struct mms_err err = {{0}};
    if (mmsd_preview_create(&loop, &pp->preview, &err))
        fuzz_fail("mmsd_preview_create: %s", err.msg);
    AVFrame *f = av_frame_alloc();
    if (!f)
        fuzz_fail("out of memory");
    f->format = AV_PIX_FMT_YUV420P;
    f->width = 64;
    f->height = 48;
    if (av_frame_get_buffer(f, 0) < 0)
        fuzz_fail("out of memory");
    for (int p = 0; p < 3; p++)
        memset(f->data[p], p ? 128 : 80, (size_t)f->linesize[p] * (p ? 24 : 48));
    mmsd_preview_frame(pp->preview, f);
    av_frame_free(&f);
    double until = now_s() + 30;
    while (mmsd_preview_encoded(pp->preview) < 1 && now_s() < until) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    if (mmsd_preview_encoded(pp->preview) < 1)
        fuzz_fail("the preview encoded no frame in 30 s");
    for (int i = 0; i < 100; i++) { /* its async hands the JPEG to the loop */
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(100);
    }
}

/* A real state directory, so that a recording change is answered only once
 * its file is written: the held answers of daemon/http.h, as mmsd runs
 * them. In memory where there is /dev/shm: a write syncs. */
static void state_saved(void *opaque, int rc, const char *msg)
{
    (void)rc, (void)msg;
    mmsd_api_saves_settled(opaque);
}

static void state_remove(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_FILE, state_dir);
    unlink(path);
    rmdir(state_dir);
}

static void state_init(void)
{
    snprintf(state_dir, sizeof(state_dir), "%s/mms-fuzz-state-XXXXXX",
             access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
    if (!mkdtemp(state_dir))
        fuzz_fail("mkdtemp %s: %s", state_dir, strerror(errno));
    atexit(state_remove);
    if (mmsd_state_writer_init(&d.state, &loop, state_dir, state_saved, &d))
        fuzz_fail("out of memory");
    uv_timer_init(&loop, &d.saving_timer);
    d.saving_timer.data = &d;
    d.saving_tail = &d.saving;
}

static void start(int which)
{
    struct mmsd_http_opts o;
    mmsd_api_http_opts(&d, &o); /* as mmsd serves it */
    o.listen = "127.0.0.1:0";
    if (which == FUZZ_TOKEN) {
        o.token = FUZZ_TOKEN_VALUE;
        o.allowed_hosts = FUZZ_ALLOWED_HOSTS;
    }
    struct mms_err err = {{0}};
    if (mmsd_http_create(&loop, &o, &servers[which], &err))
        fuzz_fail("mmsd_http_create: %s", err.msg);
    ports[which] = mmsd_http_port(servers[which]);
}

void fuzz_http_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    mmsd_log_set_level(MMSD_LOG_ERR);
    uv_loop_init(&loop);
    d.loop = &loop;
    d.ready = 1;
    d.scratch = malloc(sizeof(float) * MMS_STATS_RING);
    mmsd_options_defaults(&d.cfg.d);
    state_init();
    struct mmsd_pipe *cam = add_pipe("cam", MMSD_PIPE_RUNNING, "rtsp://admin:pw@10.0.0.1/s");
    mms_option_set(&cam->conf.o, "record_dir", "/nonexistent/mms-fuzz", NULL);
    cam->rt = cam->conf.o;
    preview_with_frame(cam);
    struct mmsd_pipe *lab = add_pipe("lab", MMSD_PIPE_CONNECTING, "udp://127.0.0.1:5000");
    snprintf(lab->error, sizeof(lab->error), "udp://127.0.0.1:5000: Connection refused");
    lab->signal = 0;
    add_pipe("x.y-z_9", MMSD_PIPE_FAILED, "/var/lib/mmsd/clip.mp4");
    start(FUZZ_OPEN);
    start(FUZZ_TOKEN);
}

void fuzz_http_reset(void)
{
    for (struct mmsd_pipe *pp = d.pipes; pp; pp = pp->next)
        pp->rt = pp->conf.o;
}

char *fuzz_http_exchange(int server, const void *req, size_t len, size_t *out_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[server])};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The kernel completes a loopback connect from the backlog, without
     * the loop; non-blocking, since libFuzzer's SIGALRM (-timeout) would
     * interrupt a blocking one. */
    if (fd < 0 || (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS))
        fuzz_fail("connect: %s", strerror(errno));
    struct pollfd w = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    while (poll(&w, 1, 10000) < 0 && errno == EINTR)
        ;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr)
        fuzz_fail("connect: %s", strerror(soerr));
    size_t sent = 0, got = 0, cap = 4096;
    char *buf = malloc(cap);
    int shut = 0;
    double until = now_s() + 10;
    for (;;) {
        if (!shut && sent < len) {
            ssize_t n = send(fd, (const char *)req + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (errno != EAGAIN && errno != EINTR)
                shut = 1; /* the server closed on us: read what it said */
        }
        if (!shut && sent == len) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        if (got + 2048 > cap && !(buf = realloc(buf, cap *= 2)))
            fuzz_fail("out of memory");
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        /* Nothing yet: sleep until the client socket or the loop has news. */
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN},
                                {.fd = uv_backend_fd(&loop), .events = POLLIN}};
        int wait = uv_backend_timeout(&loop);
        poll(pfd, 2, !shut ? 0 : wait < 0 || wait > 20 ? 20 : wait);
        if (now_s() > until)
            fuzz_fail("the server kept the connection 10 s after the client's FIN "
                      "(sent %zu of %zu bytes, got %zu)", sent, len, got);
    }
    close(fd);
    for (int i = 0; i < 4; i++) /* the connection's close callbacks */
        uv_run(&loop, UV_RUN_NOWAIT);
    buf[got] = 0;
    *out_len = got;
    return buf;
}
