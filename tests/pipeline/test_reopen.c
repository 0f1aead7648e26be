/* Reopening a network output: a real tcp:// MPEG-TS sink against a real
 * listening socket on 127.0.0.1 that is absent, then present. Time is
 * given to mms_reopen_poll(), so the backoff is checked without sleeping
 * through it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "harness.h"
#include "io/sink.h"
#include "pipeline/reopen.h"

#define W 64
#define H 64

static const struct mms_sink_params params = {
    .width = W, .height = H, .time_base = {1, 25}, .frame_rate = {25, 1}, .live = 1,
    .title = "test"};

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* A port nobody listens on (bound, then closed), or a listener on it. */
static int tcp_socket(int *port, int listening)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len) || (listening && listen(fd, 4))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    if (!listening) {
        close(fd);
        return 0;
    }
    return fd;
}

static struct mms_reopen *make(int port)
{
    char url[64];
    struct mms_reopen *r = NULL;
    av_log_set_level(AV_LOG_QUIET);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    CHECK(mms_reopen_create(&mms_sink_stream, url, &params, &r) == 0 && r);
    return r;
}

/* Polls at the fixed time `now` until an attempt has finished: 1 when it
 * opened the sink, 0 when it failed, -1 when none did within `ms`. */
static int settle_within(struct mms_reopen *r, double now, struct mms_sink **s, int ms)
{
    int before = mms_reopen_attempts(r);
    for (int i = 0; i < ms / 10; i++) {
        int rc = mms_reopen_poll(r, now, s);
        if (rc)
            return rc > 0 ? 1 : 0;
        CHECK(mms_reopen_attempts(r) == before);
        sleep_ms(10);
    }
    return -1;
}

static int settle(struct mms_reopen *r, double now, struct mms_sink **s)
{
    return settle_within(r, now, s, 7000);
}

static AVFrame *grey_frame(int64_t pts)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = W;
    f->height = H;
    if (av_frame_get_buffer(f, 0) < 0)
        return f;
    for (int p = 0; p < 3; p++)
        memset(f->data[p], 128, (size_t)f->linesize[p] * (p ? H / 2 : H));
    f->pts = pts;
    return f;
}

static void test_nothing_before_the_first_second(void)
{
    int port = 0;
    CHECK(tcp_socket(&port, 0) == 0);
    struct mms_reopen *r = make(port);
    struct mms_sink *s = (struct mms_sink *)1;
    mms_reopen_arm(r, 10000);
    CHECK(mms_reopen_poll(r, 10999, &s) == 0 && !s);
    sleep_ms(50);
    CHECK(mms_reopen_poll(r, 10999, &s) == 0 && !s);
    CHECK_MSG(mms_reopen_attempts(r) == 0 && !*mms_reopen_error(r), "an attempt ran early: %s",
              mms_reopen_error(r));
    CHECK(settle(r, 11000, &s) == 0 && mms_reopen_attempts(r) == 1);
    mms_reopen_free(r);
}

/* Never opened yet: the first attempt is due at once, and after it fails
 * the next comes a second later, as after a failed write. */
static void test_first_open_is_due_at_once(void)
{
    int port = 0;
    CHECK(tcp_socket(&port, 0) == 0);
    struct mms_reopen *r = make(port);
    struct mms_sink *s = NULL;
    mms_reopen_start(r, 10000);
    CHECK_MSG(settle(r, 10000, &s) == 0 && !s && mms_reopen_attempts(r) == 1,
              "no attempt at once: %d attempts", mms_reopen_attempts(r));
    CHECK_MSG(strstr(mms_reopen_error(r), "127.0.0.1"), "error: %s", mms_reopen_error(r));
    CHECK(mms_reopen_backoff_ms(r) == 1000);
    CHECK(settle_within(r, 10999, &s, 200) == -1 && mms_reopen_attempts(r) == 1);
    CHECK(settle(r, 11000, &s) == 0 && mms_reopen_attempts(r) == 2);
    mms_reopen_free(r);
}

/* A peer that is there: the first attempt opens it at once. */
static void test_first_open_to_a_listener(void)
{
    int port = 0, fd = tcp_socket(&port, 1);
    CHECK(fd >= 0);
    struct mms_reopen *r = make(port);
    struct mms_sink *s = NULL;
    mms_reopen_start(r, 0);
    CHECK(settle(r, 0, &s) == 1 && s && mms_reopen_attempts(r) == 1);
    CHECK(!*mms_reopen_error(r));
    mms_sink_close(s, NULL);
    mms_reopen_free(r);
    close(fd);
}

static void test_refused_attempts_back_off_to_30s(void)
{
    int port = 0;
    CHECK(tcp_socket(&port, 0) == 0);
    struct mms_reopen *r = make(port);
    struct mms_sink *s = NULL;
    double now = 0, expect[] = {2000, 4000, 8000, 16000, 30000, 30000};
    mms_reopen_arm(r, now);
    now += 1000;
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(settle(r, now, &s) == 0 && !s, "attempt %d did not fail", i);
        CHECK_MSG(strstr(mms_reopen_error(r), "127.0.0.1"), "error: %s", mms_reopen_error(r));
        CHECK_MSG(mms_reopen_backoff_ms(r) == expect[i], "backoff %g, expected %g",
                  mms_reopen_backoff_ms(r), expect[i]);
        /* Not due yet: no new attempt, the error stays. */
        CHECK(settle_within(r, now + mms_reopen_backoff_ms(r) - 1, &s, 200) == -1);
        CHECK(*mms_reopen_error(r) && mms_reopen_attempts(r) == i + 1);
        now += mms_reopen_backoff_ms(r);
    }
    mms_reopen_free(r);
}

/* An output that failed at 0 and whose first attempt, at 1 s, was
 * refused: the next is due at 3 s. */
static struct mms_reopen *refused_once(int *port)
{
    CHECK(tcp_socket(port, 0) == 0);
    struct mms_reopen *r = make(*port);
    struct mms_sink *s = NULL;
    mms_reopen_arm(r, 0);
    CHECK(settle(r, 1000, &s) == 0 && !s);
    return r;
}

static void test_listener_back_gets_a_working_sink(void)
{
    int port = 0;
    struct mms_reopen *r = refused_once(&port);
    struct mms_sink *s = NULL;
    int lfd = tcp_socket(&port, 1);
    CHECK_MSG(lfd >= 0, "cannot listen on port %d again: %s", port, strerror(errno));
    CHECK_MSG(settle(r, 3000, &s) == 1 && s, "no sink once the listener is up: %s",
              mms_reopen_error(r));
    struct pollfd pl = {lfd, POLLIN, 0};
    int cfd = poll(&pl, 1, 5000) == 1 ? accept(lfd, NULL, NULL) : -1;
    CHECK(cfd >= 0);
    struct mms_err err;
    for (int i = 0; s && i < 25; i++) {
        AVFrame *f = grey_frame(i);
        CHECK_MSG(mms_sink_write(s, f, NULL, &err) == 0, "%s", err.msg);
        av_frame_free(&f);
    }
    CHECK(mms_sink_close(s, &err) == 0);
    unsigned char buf[188];
    size_t got = 0;
    struct pollfd pc = {cfd, POLLIN, 0};
    while (cfd >= 0 && got < sizeof(buf) && poll(&pc, 1, 5000) == 1) {
        ssize_t n = read(cfd, buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK_MSG(got == sizeof(buf) && buf[0] == 0x47, "no MPEG-TS packet came: %zu bytes", got);
    /* Armed again after the success, it waits a second again. */
    mms_reopen_arm(r, 5000);
    CHECK(mms_reopen_backoff_ms(r) == 1000);
    if (cfd >= 0)
        close(cfd);
    close(lfd);
    mms_reopen_free(r);
}

/* A listener that never accepts keeps the attempt in flight; free() must
 * wait for it and release what it opened (ASan checks the rest). */
static void test_free_during_an_attempt(void)
{
    int port = 0;
    int lfd = tcp_socket(&port, 1);
    CHECK(lfd >= 0);
    struct mms_reopen *r = make(port);
    struct mms_sink *s = NULL;
    mms_reopen_arm(r, 0);
    /* Usually still connecting; if it was already done, the sink is ours. */
    if (mms_reopen_poll(r, 1000, &s) > 0)
        mms_sink_close(s, NULL);
    mms_reopen_free(r);
    close(lfd);
}

static void test_arm_while_waiting_keeps_the_schedule(void)
{
    int port = 0;
    struct mms_reopen *r = refused_once(&port);
    mms_reopen_arm(r, 1500); /* ignored: it is already waiting, backoff 2 s */
    CHECK(mms_reopen_backoff_ms(r) == 2000);
    mms_reopen_free(r);
}

MMS_TESTS(T(test_first_open_is_due_at_once), T(test_first_open_to_a_listener),
          T(test_nothing_before_the_first_second),
          T(test_refused_attempts_back_off_to_30s), T(test_listener_back_gets_a_working_sink),
          T(test_free_during_an_attempt), T(test_arm_while_waiting_keeps_the_schedule))
