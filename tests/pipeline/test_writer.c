/* One output behind its own thread (pipeline/writer.h): how each mode keeps
 * frames, what a stall and a failure look like from outside, and that the
 * end waits for files but cuts off a network output that stopped taking
 * data. The sink is a driver of this file whose writes wait on a gate the
 * test opens and closes, so every case is decided by the test, not by
 * timing; the pipeline tests (test_outputs.c) do the same with real
 * sockets and encoders. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>

#include "harness.h"
#include "io/encoder.h"
#include "io/sink.h"
#include "pipeline/record.h"
#include "pipeline/stats.h"
#include "pipeline/writer.h"

#define W 32
#define H 32
#define MAX_SEEN 256

/* What the gated sink saw; one at a time, shared with the test. */
static struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;           /* writes go through */
    int fail_next;      /* the next write fails */
    int entered;        /* writes begun */
    int64_t seen[MAX_SEEN];
    int nseen;
    int interrupted;    /* a write gave up on the interrupt */
    int closed;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 0, 0, {0}, 0, 0, 0};

struct gated {
    int (*interrupt)(void *opaque);
    void *interrupt_opaque;
};

static void gate_reset(int open)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = open;
    gate.fail_next = gate.entered = gate.nseen = gate.interrupted = gate.closed = 0;
    pthread_mutex_unlock(&gate.lock);
}

static void gate_set(int open)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = open;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

static int gate_entered(void)
{
    pthread_mutex_lock(&gate.lock);
    int n = gate.entered;
    pthread_mutex_unlock(&gate.lock);
    return n;
}

static int gated_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                      struct mms_err *err)
{
    (void)url;
    (void)err;
    struct gated *g = s->priv;
    g->interrupt = p->interrupt;
    g->interrupt_opaque = p->interrupt_opaque;
    return 0;
}

/* Waits at the gate as a blocked socket would, polling the interrupt as
 * FFmpeg does. */
static int gated_write(struct mms_sink *s, const AVFrame *f, const struct mms_frame_meta *m,
                       struct mms_err *err)
{
    struct gated *g = s->priv;
    (void)m;
    pthread_mutex_lock(&gate.lock);
    gate.entered++;
    while (!gate.open) {
        if (g->interrupt && g->interrupt(g->interrupt_opaque)) {
            gate.interrupted++;
            pthread_mutex_unlock(&gate.lock);
            return mms_err_set(err, AVERROR_EXIT, "gated: interrupted");
        }
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 10000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gate.cond, &gate.lock, &t);
    }
    int fail = gate.fail_next;
    gate.fail_next = 0;
    if (!fail && gate.nseen < MAX_SEEN)
        gate.seen[gate.nseen++] = f->pts;
    pthread_mutex_unlock(&gate.lock);
    return fail ? mms_err_set(err, AVERROR(EPIPE), "gated: the peer went away") : 0;
}

static int gated_close(struct mms_sink *s, struct mms_err *err)
{
    (void)s;
    (void)err;
    pthread_mutex_lock(&gate.lock);
    gate.closed++;
    pthread_mutex_unlock(&gate.lock);
    return 0;
}

static const struct mms_sink_driver gated_driver = {
    .name = "gated",
    .priv_size = sizeof(struct gated),
    .open = gated_open,
    .write = gated_write,
    .close = gated_close,
};

static int flag_set(void *opaque)
{
    return atomic_load((atomic_int *)opaque);
}

/* What the pipeline's stop flag is to a writer. */
static atomic_int stop_flag;

static struct mms_writer *make(enum mms_writer_mode mode, int capacity, atomic_int *abort)
{
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25},
                                .frame_rate = {25, 1}, .live = 1,
                                .interrupt = abort ? flag_set : NULL,
                                .interrupt_opaque = abort};
    struct mms_sink *s = NULL;
    struct mms_writer *w = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_sink_open(&gated_driver, "gated", &p, &s, &err) == 0, "%s", err.msg);
    struct mms_writer_opts o = {.name = "gated", .mode = mode, .capacity = capacity,
                                .abort = abort, .stop = &stop_flag};
    CHECK(mms_writer_create_sink(s, NULL, &o, &w) == 0 && w);
    CHECK(mms_writer_start(w) == 0);
    return w;
}

static AVFrame *frame(void)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = W;
    f->height = H;
    CHECK(av_frame_get_buffer(f, 0) == 0);
    return f;
}

static void send_pts(struct mms_writer *w, AVFrame *f, int64_t pts)
{
    f->pts = pts;
    mms_writer_send(w, f, NULL);
}

static struct mms_writer_status status(struct mms_writer *w)
{
    struct mms_writer_status st;
    mms_writer_status(w, &st);
    return st;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Waits up to ms for the sink to have begun n writes. */
static int wait_entered(int n, int ms)
{
    for (int i = 0; i < ms / 5 && gate_entered() < n; i++)
        sleep_ms(5);
    return gate_entered() >= n;
}

/* A mailbox of one: while a write is stuck, only the newest of the frames
 * sent after it is still written; the ones it replaced count as dropped. */
static void latest_keeps_only_the_newest(void)
{
    gate_reset(0);
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_LATEST, 8, NULL);
    send_pts(w, f, 0);
    CHECK(wait_entered(1, 2000));
    for (int i = 1; i <= 5; i++)
        send_pts(w, f, i);
    gate_set(1);
    mms_writers_drain(&w, 1, 1000);
    struct mms_writer_status st = status(w);
    CHECK_MSG(gate.nseen == 2 && gate.seen[0] == 0 && gate.seen[1] == 5, "%d written, last %lld",
              gate.nseen, (long long)(gate.nseen ? gate.seen[gate.nseen - 1] : -1));
    CHECK_MSG(st.written == 2 && st.dropped == 4, "written %lld dropped %lld",
              (long long)st.written, (long long)st.dropped);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* A bounded queue of every frame: what fits is written in order, what
 * found it full is dropped and counted, and the sender never waits. */
static void drop_keeps_a_backlog_in_order(void)
{
    gate_reset(0);
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_DROP, 4, NULL);
    send_pts(w, f, 0);
    CHECK(wait_entered(1, 2000));
    double t0 = mms_now_ms();
    for (int i = 1; i <= 10; i++)
        send_pts(w, f, i);
    CHECK_MSG(mms_now_ms() - t0 < 500, "sending waited %.0f ms", mms_now_ms() - t0);
    gate_set(1);
    mms_writers_drain(&w, 1, 1000);
    struct mms_writer_status st = status(w);
    CHECK_MSG(gate.nseen == 5, "%d written", gate.nseen);
    for (int i = 0; i < gate.nseen && i < 5; i++)
        CHECK_MSG(gate.seen[i] == i, "frame %d has pts %lld", i, (long long)gate.seen[i]);
    CHECK_MSG(st.written == 5 && st.dropped == 6, "written %lld dropped %lld",
              (long long)st.written, (long long)st.dropped);
    mms_writer_free(w);
    av_frame_free(&f);
}

struct sender {
    struct mms_writer *w;
    AVFrame *f;
    atomic_int sent;
};

static void *send_20(void *arg)
{
    struct sender *s = arg;
    for (int i = 0; i < 20; i++) {
        send_pts(s->w, s->f, i);
        atomic_store(&s->sent, i + 1);
    }
    return NULL;
}

/* Offline: the sender waits for room, and every frame arrives in order. */
static void block_waits_and_loses_nothing(void)
{
    gate_reset(0);
    struct sender s = {make(MMS_WRITER_BLOCK, 3, NULL), frame(), 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_20, &s) == 0);
    sleep_ms(300);
    int sent = atomic_load(&s.sent);
    /* One being written, three queued, one in the sender's hands. */
    CHECK_MSG(sent >= 3 && sent <= 5, "%d sent while the sink was stuck", sent);
    gate_set(1);
    pthread_join(t, NULL);
    mms_writers_drain(&s.w, 1, 1000);
    struct mms_writer_status st = status(s.w);
    CHECK_MSG(gate.nseen == 20 && st.written == 20 && st.dropped == 0,
              "%d seen, %lld written, %lld dropped", gate.nseen, (long long)st.written,
              (long long)st.dropped);
    for (int i = 0; i < gate.nseen; i++)
        CHECK_MSG(gate.seen[i] == i, "frame %d has pts %lld", i, (long long)gate.seen[i]);
    mms_writer_free(s.w);
    av_frame_free(&s.f);
}

/* Offline, but stopping: a sender waits no longer on a stuck output. */
static void block_gives_up_when_stopping(void)
{
    gate_reset(0);
    atomic_store(&stop_flag, 0);
    struct sender s = {make(MMS_WRITER_BLOCK, 2, NULL), frame(), 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, send_20, &s) == 0);
    sleep_ms(300);
    CHECK_MSG(atomic_load(&s.sent) < 20, "the sender did not wait");
    double t0 = mms_now_ms();
    atomic_store(&stop_flag, 1);
    pthread_join(t, NULL);
    double took = mms_now_ms() - t0;
    CHECK_MSG(took < 1000, "the sender went on waiting %.0f ms after the stop", took);
    gate_set(1);
    mms_writers_drain(&s.w, 1, 1000);
    struct mms_writer_status st = status(s.w);
    CHECK_MSG(st.written + st.dropped == 20 && st.dropped > 0, "%lld written, %lld dropped",
              (long long)st.written, (long long)st.dropped);
    atomic_store(&stop_flag, 0);
    mms_writer_free(s.w);
    av_frame_free(&s.f);
}

/* A write stuck for over the stall time is reported down, and up again
 * once it returns. */
static void a_stuck_write_is_a_stall_until_it_returns(void)
{
    gate_reset(0);
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_LATEST, 1, NULL);
    send_pts(w, f, 0);
    CHECK(wait_entered(1, 2000));
    sleep_ms((int)(MMS_WRITER_STALL_MS / 2));
    struct mms_writer_status st = status(w);
    CHECK_MSG(st.state == MMS_WRITER_UP && st.stalls == 0, "state %d after half the stall time",
              st.state);
    sleep_ms((int)(MMS_WRITER_STALL_MS / 2) + 200);
    st = status(w);
    CHECK_MSG(st.state == MMS_WRITER_STALLED && st.stalls == 1, "state %d, %lld stalls", st.state,
              (long long)st.stalls);
    CHECK_MSG(strstr(st.reason, "gated") && strstr(st.reason, "no frame"), "reason: %s",
              st.reason);
    gate_set(1);
    for (int i = 0; i < 100 && status(w).state != MMS_WRITER_UP; i++)
        sleep_ms(10);
    st = status(w);
    CHECK_MSG(st.state == MMS_WRITER_UP && st.stalls == 1 && st.written == 1,
              "after the write returned: state %d, %lld stalls, %lld written", st.state,
              (long long)st.stalls, (long long)st.written);
    send_pts(w, f, 1);
    mms_writers_drain(&w, 1, 1000);
    CHECK(status(w).written == 2);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* A failed write closes the sink: the output is down for good (no reopen
 * given) and drops what comes after. */
static void a_failed_write_closes_the_output(void)
{
    gate_reset(1);
    gate.fail_next = 1;
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_BLOCK, 4, NULL);
    for (int i = 0; i < 3; i++)
        send_pts(w, f, i);
    mms_writers_drain(&w, 1, 1000);
    struct mms_writer_status st = status(w);
    CHECK_MSG(st.state == MMS_WRITER_FAILED && st.errors == 1 && st.written == 0 &&
                  st.dropped == 3,
              "state %d, %lld errors, %lld written, %lld dropped", st.state,
              (long long)st.errors, (long long)st.written, (long long)st.dropped);
    CHECK_MSG(strstr(st.reason, "the peer went away"), "reason: %s", st.reason);
    CHECK(gate.closed == 1);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* The end waits for an output that takes its frames, but one still stuck
 * at the deadline is interrupted: draining returns about then. */
static void drain_cuts_off_a_stuck_output(void)
{
    gate_reset(0);
    static atomic_int abort_flag;
    atomic_store(&abort_flag, 0);
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_LATEST, 1, &abort_flag);
    send_pts(w, f, 0);
    CHECK(wait_entered(1, 2000));
    double t0 = mms_now_ms();
    mms_writers_drain(&w, 1, 300);
    double took = mms_now_ms() - t0;
    CHECK_MSG(took >= 250 && took < 1000, "drained in %.0f ms with a 300 ms grace", took);
    CHECK(gate.interrupted == 1 && atomic_load(&abort_flag));
    CHECK(status(w).state == MMS_WRITER_FAILED);
    mms_writer_free(w);
    av_frame_free(&f);
}

static void *open_gate_later(void *arg)
{
    sleep_ms(*(int *)arg);
    gate_set(1);
    return NULL;
}

/* Without an abort flag (a file) the end waits as long as writing takes:
 * nothing queued is lost, however short the grace. */
static void drain_waits_for_a_file(void)
{
    gate_reset(0);
    AVFrame *f = frame();
    struct mms_writer *w = make(MMS_WRITER_DROP, 4, NULL);
    send_pts(w, f, 0);
    send_pts(w, f, 1);
    CHECK(wait_entered(1, 2000));
    static int later = 600;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, open_gate_later, &later) == 0);
    double t0 = mms_now_ms();
    mms_writers_drain(&w, 1, 100);
    double took = mms_now_ms() - t0;
    pthread_join(t, NULL);
    struct mms_writer_status st = status(w);
    CHECK_MSG(took >= 500, "drained in %.0f ms, before the write returned", took);
    CHECK_MSG(st.state == MMS_WRITER_UP && st.written == 2 && gate.interrupted == 0,
              "state %d, %lld written", st.state, (long long)st.written);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* ------------------------------------------------------------ first open */

/* A network sink whose peer is not there yet: its open is refused
 * `refuse` times (-1: always), each after `open_ms`; it counts what it
 * writes. Opened by a mms_reopen, as the pipeline opens streams. */
static struct late {
    pthread_mutex_t lock;
    int refuse, open_ms, opens, refused, written;
} late = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0};

static void late_reset(int refuse, int open_ms)
{
    pthread_mutex_lock(&late.lock);
    late.refuse = refuse;
    late.open_ms = open_ms;
    late.opens = late.refused = late.written = 0;
    pthread_mutex_unlock(&late.lock);
}

static int late_read(const int *v)
{
    pthread_mutex_lock(&late.lock);
    int n = *v;
    pthread_mutex_unlock(&late.lock);
    return n;
}

static int late_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                     struct mms_err *err)
{
    (void)s;
    (void)p;
    sleep_ms(late_read(&late.open_ms));
    pthread_mutex_lock(&late.lock);
    late.opens++;
    int refuse = late.refuse != 0;
    if (refuse) {
        late.refused++;
        if (late.refuse > 0)
            late.refuse--;
    }
    pthread_mutex_unlock(&late.lock);
    return refuse ? mms_err_set(err, AVERROR(ECONNREFUSED), "%s: Connection refused", url) : 0;
}

static int late_write(struct mms_sink *s, const AVFrame *f, const struct mms_frame_meta *m,
                      struct mms_err *err)
{
    (void)s;
    (void)f;
    (void)m;
    (void)err;
    pthread_mutex_lock(&late.lock);
    late.written++;
    pthread_mutex_unlock(&late.lock);
    return 0;
}

static const struct mms_sink_driver late_driver = {
    .name = "late",
    .reopen = 1,
    .open = late_open,
    .write = late_write,
};

/* A writer whose sink is not open yet: its reopen opens it, started. */
static struct mms_writer *make_unopened(enum mms_writer_mode mode)
{
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25},
                                .frame_rate = {25, 1}, .live = 1};
    struct mms_reopen *r = NULL;
    struct mms_writer *w = NULL;
    struct mms_writer_opts o = {.name = "late://display", .mode = mode, .capacity = 4,
                                .stop = &stop_flag};
    CHECK(mms_reopen_create(&late_driver, "late://display", &p, &r) == 0);
    CHECK(mms_writer_create_sink(NULL, r, &o, &w) == 0 && w);
    CHECK(mms_writer_start(w) == 0);
    return w;
}

/* Sends a frame every 20 ms until `until(w)` or ms have passed; 1 if it held. */
static int send_until(struct mms_writer *w, AVFrame *f, int (*until)(struct mms_writer *),
                      int ms)
{
    static int64_t pts;
    for (int i = 0; i < ms / 20; i++) {
        if (until(w))
            return 1;
        send_pts(w, f, pts++);
        sleep_ms(20);
    }
    return until(w);
}

static int is_up_and_writing(struct mms_writer *w)
{
    struct mms_writer_status st = status(w);
    return st.state == MMS_WRITER_UP && st.written > 0;
}

static int is_failed(struct mms_writer *w)
{
    return status(w).state == MMS_WRITER_FAILED;
}

/* No writer without a sink or what opens one. */
static void a_writer_needs_a_sink_or_a_reopen(void)
{
    struct mms_writer *w = (struct mms_writer *)1;
    struct mms_writer_opts o = {.name = "none", .mode = MMS_WRITER_LATEST, .capacity = 1};
    CHECK_EQ(mms_writer_create_sink(NULL, NULL, &o, &w), -EINVAL);
}

/* A receiver that is there: the first open is tried at once, not a
 * backoff later, and frames flow with no failure counted. */
static void an_unopened_sink_is_opened_at_once(void)
{
    late_reset(0, 0);
    AVFrame *f = frame();
    double t0 = mms_now_ms();
    struct mms_writer *w = make_unopened(MMS_WRITER_LATEST);
    CHECK_MSG(send_until(w, f, is_up_and_writing, 2000), "never took frames");
    double took = mms_now_ms() - t0;
    struct mms_writer_status st = status(w);
    CHECK_MSG(took < 800, "first frame written %.0f ms after the start", took);
    CHECK_MSG(st.errors == 0 && st.reopens == 0 && !st.reason[0] && late_read(&late.opens) == 1,
              "%lld errors, %lld reopens, %d opens, reason '%s'", (long long)st.errors,
              (long long)st.reopens, late_read(&late.opens), st.reason);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* A receiver not there at the start: the output is down with the reason,
 * drops its frames, and is retried with backoff until it opens (the
 * third attempt, about 1 s and 2 s after the first). */
static void a_sink_down_at_start_is_down_then_retried(void)
{
    late_reset(2, 0);
    AVFrame *f = frame();
    struct mms_writer *w = make_unopened(MMS_WRITER_LATEST);
    CHECK_MSG(send_until(w, f, is_failed, 1000), "never reported down");
    struct mms_writer_status st = status(w);
    CHECK_MSG(st.errors == 1 && strstr(st.reason, "late://display") &&
                  strstr(st.reason, "refused") && st.written == 0,
              "%lld errors, %lld written, reason '%s'", (long long)st.errors,
              (long long)st.written, st.reason);
    double t0 = mms_now_ms();
    CHECK_MSG(send_until(w, f, is_up_and_writing, 6000), "never opened");
    double took = mms_now_ms() - t0;
    st = status(w);
    CHECK_MSG(took > 2000 && took < 5000, "up %.0f ms after it was seen down", took);
    CHECK_MSG(late_read(&late.opens) == 3 && st.reopens == 1 && st.errors == 1 && st.dropped > 0,
              "%d opens, %lld reopens, %lld errors, %lld dropped", late_read(&late.opens),
              (long long)st.reopens, (long long)st.errors, (long long)st.dropped);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* Offline (BLOCK), a sink still opening for the first time is a slow
 * output: the frames wait for it and none is lost. */
static void block_waits_for_the_first_open(void)
{
    late_reset(0, 300);
    AVFrame *f = frame();
    struct mms_writer *w = make_unopened(MMS_WRITER_BLOCK);
    for (int i = 0; i < 10; i++)
        send_pts(w, f, i);
    mms_writers_drain(&w, 1, 1000);
    struct mms_writer_status st = status(w);
    CHECK_MSG(st.written == 10 && st.dropped == 0 && late_read(&late.written) == 10,
              "%lld written, %lld dropped", (long long)st.written, (long long)st.dropped);
    mms_writer_free(w);
    av_frame_free(&f);
}

/* ... but once that first open has failed, the output is down and offline
 * frames go on without it: none waits on the retries. */
static void block_does_not_wait_once_the_first_open_failed(void)
{
    late_reset(-1, 100);
    AVFrame *f = frame();
    struct mms_writer *w = make_unopened(MMS_WRITER_BLOCK);
    double t0 = mms_now_ms();
    for (int i = 0; i < 20; i++)
        send_pts(w, f, i);
    mms_writers_drain(&w, 1, 1000);
    double took = mms_now_ms() - t0;
    struct mms_writer_status st = status(w);
    CHECK_MSG(took < 900, "20 frames took %.0f ms", took);
    CHECK_MSG(st.state == MMS_WRITER_FAILED && st.written == 0 && st.dropped == 20 &&
                  late_read(&late.opens) == 1,
              "state %d, %lld written, %lld dropped, %d opens", st.state, (long long)st.written,
              (long long)st.dropped, late_read(&late.opens));
    mms_writer_free(w);
    av_frame_free(&f);
}

/* ------------------------------------------------------------ control */

/* A sink that takes control(): what it was asked, events to report once,
 * and a request to fail. */
static struct ctl {
    pthread_mutex_t lock;
    int asked[4];      /* per MMS_SINK_CTRL_* */
    unsigned events;   /* reported at the next check */
    int fail_request;  /* this request fails with -EIO; -1: none */
    int closed;
    unsigned got;      /* what on_events passed on */
    int calls;
    unsigned act;      /* what on_events has the writer act on */
} ctl = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, -1, 0, 0, 0, 0};

static int ctl_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                    struct mms_err *err)
{
    (void)s, (void)url, (void)p, (void)err;
    return 0;
}

static int ctl_write(struct mms_sink *s, const AVFrame *f, const struct mms_frame_meta *m,
                     struct mms_err *err)
{
    (void)s, (void)f, (void)m, (void)err;
    return 0;
}

static int ctl_control(struct mms_sink *s, int request, void *data, struct mms_err *err)
{
    (void)s;
    pthread_mutex_lock(&ctl.lock);
    int fail = request == ctl.fail_request;
    if (request >= 0 && request < 4)
        ctl.asked[request]++;
    if (request == MMS_SINK_CTRL_CHECK_EVENTS) {
        *(unsigned *)data = ctl.events;
        ctl.events = 0;
    }
    pthread_mutex_unlock(&ctl.lock);
    return fail ? mms_err_set(err, -EIO, "ctl: the display went away") : 0;
}

static int ctl_close(struct mms_sink *s, struct mms_err *err)
{
    (void)s, (void)err;
    pthread_mutex_lock(&ctl.lock);
    ctl.closed++;
    pthread_mutex_unlock(&ctl.lock);
    return 0;
}

static const struct mms_sink_driver ctl_driver = {
    .name = "ctl",
    .open = ctl_open,
    .write = ctl_write,
    .control = ctl_control,
    .close = ctl_close,
};

static unsigned ctl_events(void *opaque, unsigned ev)
{
    (void)opaque;
    pthread_mutex_lock(&ctl.lock);
    ctl.got |= ev;
    ctl.calls++;
    unsigned act = ev & ctl.act;
    pthread_mutex_unlock(&ctl.lock);
    return act;
}

static int ctl_read(const int *field)
{
    pthread_mutex_lock(&ctl.lock);
    int v = *field;
    pthread_mutex_unlock(&ctl.lock);
    return v;
}

/* A LATEST writer on `drv` (events passed to ctl_events), started. */
static struct mms_writer *make_ctl(const struct mms_sink_driver *drv)
{
    pthread_mutex_lock(&ctl.lock);
    memset(ctl.asked, 0, sizeof(ctl.asked));
    ctl.events = ctl.got = 0;
    ctl.fail_request = -1;
    ctl.closed = ctl.calls = 0;
    ctl.act = 0;
    pthread_mutex_unlock(&ctl.lock);
    gate_reset(1);
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25},
                                .frame_rate = {25, 1}, .live = 1};
    struct mms_sink *s = NULL;
    struct mms_writer *w = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_sink_open(drv, drv->name, &p, &s, &err) == 0, "%s", err.msg);
    struct mms_writer_opts o = {.name = drv->name, .mode = MMS_WRITER_LATEST, .capacity = 1,
                                .stop = &stop_flag, .on_events = ctl_events};
    CHECK(mms_writer_create_sink(s, NULL, &o, &w) == 0 && w);
    CHECK(mms_writer_start(w) == 0);
    return w;
}

/* With no frame coming, a pause still reaches the sink, and the status
 * says it took it; a resume undoes it. */
static void a_pause_reaches_the_sink_without_frames(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_PAUSE), 0);
    for (int i = 0; i < 100 && !status(w).paused; i++)
        sleep_ms(10);
    CHECK_EQ(ctl_read(&ctl.asked[MMS_SINK_CTRL_PAUSE]), 1);
    struct mms_writer_status st = status(w);
    CHECK_EQ(st.paused, 1);
    CHECK_EQ(st.controls_pending, 0);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_RESUME), 0);
    for (int i = 0; i < 100 && status(w).paused; i++)
        sleep_ms(10);
    CHECK_EQ(ctl_read(&ctl.asked[MMS_SINK_CTRL_RESUME]), 1);
    CHECK_EQ(status(w).paused, 0);
    CHECK_EQ(status(w).errors, 0);
    mms_writer_free(w);
}

/* A pause then a resume before the writer looks: only the resume goes. */
static void a_resume_replaces_a_pause_not_yet_given(void)
{
    struct mms_writer *w = NULL;
    struct mms_writer_opts o = {.name = "ctl", .mode = MMS_WRITER_LATEST, .capacity = 1,
                                .stop = &stop_flag};
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25}};
    struct mms_sink *s = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_sink_open(&ctl_driver, "ctl", &p, &s, &err) == 0);
    CHECK(mms_writer_create_sink(s, NULL, &o, &w) == 0);
    pthread_mutex_lock(&ctl.lock);
    memset(ctl.asked, 0, sizeof(ctl.asked));
    pthread_mutex_unlock(&ctl.lock);
    /* Not started: both requests wait for the thread. */
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_PAUSE), 0);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_RESUME), 0);
    CHECK_EQ(status(w).controls_pending, 1);
    CHECK(mms_writer_start(w) == 0);
    for (int i = 0; i < 100 && status(w).controls_pending; i++)
        sleep_ms(10);
    CHECK_EQ(ctl_read(&ctl.asked[MMS_SINK_CTRL_PAUSE]), 0);
    CHECK_EQ(ctl_read(&ctl.asked[MMS_SINK_CTRL_RESUME]), 1);
    CHECK_EQ(status(w).paused, 0);
    mms_writer_free(w);
}

/* Only pause, resume and redraw are requests a writer passes on. */
static void other_requests_are_refused(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_CHECK_EVENTS), -EINVAL);
    CHECK_EQ(mms_writer_control(w, -1), -EINVAL);
    CHECK_EQ(mms_writer_control(w, 99), -EINVAL);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_REDRAW), 0);
    for (int i = 0; i < 100 && !ctl_read(&ctl.asked[MMS_SINK_CTRL_REDRAW]); i++)
        sleep_ms(10);
    CHECK_EQ(ctl_read(&ctl.asked[MMS_SINK_CTRL_REDRAW]), 1);
    CHECK_EQ(status(w).paused, 0);
    mms_writer_free(w);
}

/* A sink without control() is asked and says -ENOTSUP: not paused, and
 * not an error. */
static void a_sink_without_control_is_not_paused(void)
{
    struct mms_writer *w = make_ctl(&gated_driver);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_PAUSE), 0);
    for (int i = 0; i < 100 && status(w).controls_pending; i++)
        sleep_ms(10);
    struct mms_writer_status st = status(w);
    CHECK_EQ(st.controls_pending, 0);
    CHECK_EQ(st.paused, 0);
    CHECK_EQ(st.errors, 0);
    CHECK_EQ(st.state, MMS_WRITER_UP);
    AVFrame *f = frame();
    send_pts(w, f, 1);
    for (int i = 0; i < 100 && status(w).written < 1; i++)
        sleep_ms(10);
    CHECK_EQ(status(w).written, 1);
    av_frame_free(&f);
    mms_writer_free(w);
}

/* A control that fails is a failure like a write's: counted, the sink
 * closed, the reason kept. */
static void a_failed_control_closes_the_output(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    pthread_mutex_lock(&ctl.lock);
    ctl.fail_request = MMS_SINK_CTRL_PAUSE;
    pthread_mutex_unlock(&ctl.lock);
    CHECK_EQ(mms_writer_control(w, MMS_SINK_CTRL_PAUSE), 0);
    for (int i = 0; i < 100 && status(w).state == MMS_WRITER_UP; i++)
        sleep_ms(10);
    struct mms_writer_status st = status(w);
    CHECK_EQ(st.state, MMS_WRITER_FAILED);
    CHECK_EQ(st.errors, 1);
    CHECK_EQ(st.paused, 0);
    CHECK_MSG(strstr(st.reason, "display went away") != NULL, "%s", st.reason);
    CHECK_EQ(ctl_read(&ctl.closed), 1);
    mms_writer_free(w);
    CHECK_EQ(ctl_read(&ctl.closed), 1); /* not closed twice */
}

/* The sink's events reach on_events once each, frames or not. */
static void events_are_passed_on_once(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    pthread_mutex_lock(&ctl.lock);
    ctl.events = MMS_SINK_EVENT_PAUSE | MMS_SINK_EVENT_CLOSED;
    pthread_mutex_unlock(&ctl.lock);
    for (int i = 0; i < 100 && !ctl_read(&ctl.calls); i++)
        sleep_ms(10);
    sleep_ms(100); /* a few more checks: nothing new */
    CHECK_EQ(ctl_read(&ctl.calls), 1);
    pthread_mutex_lock(&ctl.lock);
    unsigned got = ctl.got;
    pthread_mutex_unlock(&ctl.lock);
    CHECK_EQ(got, MMS_SINK_EVENT_PAUSE | MMS_SINK_EVENT_CLOSED);
    CHECK(ctl_read(&ctl.asked[MMS_SINK_CTRL_CHECK_EVENTS]) > 2);
    mms_writer_free(w);
}

/* Frames to `w` until its state is `want` or 2 s pass, then n more, one
 * every 10 ms; its status then. */
static struct mms_writer_status send_until_state(struct mms_writer *w,
                                                 enum mms_writer_state want, int n)
{
    AVFrame *f = frame();
    int pts = 0;
    for (int i = 0; i < 200 && status(w).state != want; i++) {
        send_pts(w, f, pts++);
        sleep_ms(10);
    }
    for (int i = 0; i < n; i++) {
        send_pts(w, f, pts++);
        sleep_ms(10);
    }
    av_frame_free(&f);
    return status(w);
}

/* The owner asks for the output its user closed to be closed: it is, for
 * good, without a failure, and the frames sent to it are dropped. */
static void an_output_its_user_closed_is_closed_when_asked(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    pthread_mutex_lock(&ctl.lock);
    ctl.act = MMS_SINK_EVENT_CLOSED;
    ctl.events = MMS_SINK_EVENT_CLOSED;
    pthread_mutex_unlock(&ctl.lock);
    struct mms_writer_status st = send_until_state(w, MMS_WRITER_CLOSED, 10);
    CHECK_EQ(st.state, MMS_WRITER_CLOSED);
    CHECK_MSG(strstr(st.reason, "ctl: closed by its user") != NULL, "%s", st.reason);
    CHECK_EQ(st.errors, 0);
    CHECK_EQ(ctl_read(&ctl.closed), 1);
    CHECK(st.dropped >= 10);
    int64_t written = st.written;
    st = send_until_state(w, MMS_WRITER_CLOSED, 5);
    CHECK_EQ(st.written, written);
    mms_writer_free(w);
    CHECK_EQ(ctl_read(&ctl.closed), 1); /* not closed twice */
}

/* Told of the same event, an owner that does not ask keeps the output:
 * open, up, and taking frames. */
static void an_output_its_user_closed_stays_open_unless_asked(void)
{
    struct mms_writer *w = make_ctl(&ctl_driver);
    pthread_mutex_lock(&ctl.lock);
    ctl.events = MMS_SINK_EVENT_CLOSED;
    pthread_mutex_unlock(&ctl.lock);
    for (int i = 0; i < 100 && !ctl_read(&ctl.calls); i++)
        sleep_ms(10);
    CHECK_EQ(ctl_read(&ctl.calls), 1);
    struct mms_writer_status st = send_until_state(w, MMS_WRITER_UP, 10);
    CHECK_EQ(st.state, MMS_WRITER_UP);
    CHECK(st.written >= 5);
    CHECK_EQ(ctl_read(&ctl.closed), 0);
    mms_writer_free(w);
    CHECK_EQ(ctl_read(&ctl.closed), 1);
}

/* A sink without control() reports no events, and that is no error. */
static void a_sink_without_control_reports_no_events(void)
{
    struct mms_writer *w = make_ctl(&gated_driver);
    AVFrame *f = frame();
    for (int i = 0; i < 3; i++) {
        send_pts(w, f, i);
        sleep_ms(60);
    }
    CHECK_EQ(ctl_read(&ctl.calls), 0);
    CHECK_EQ(status(w).errors, 0);
    CHECK_EQ(status(w).written, 3);
    av_frame_free(&f);
    mms_writer_free(w);
}

/* ------------------------------------------------------------ a failed shared encoder */

/* An encoder shared by one member: the recording in `dir`, or the file
 * `url`. Live, so each frame sent is a packet out at once. */
struct enc_pair {
    struct mms_writer *enc, *member;
    struct mms_recorder *rec;
};

static int enc_pair_open(struct enc_pair *ep, const char *dir, const char *url)
{
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25},
                                .frame_rate = {25, 1}, .live = 1};
    struct mms_enc_settings s;
    struct mms_encoder *e = NULL;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    memset(ep, 0, sizeof(*ep));
    CHECK(mms_sink_encoding(NULL, "x.mp4", &p, &s) == 1);
    s.global_header = 1;
    CHECK_MSG(mms_encoder_open(&s, "encoder 1", &e, &err) == 0, "%s", err.msg);
    if (!e)
        return -1;
    p.encoder = e;
    struct mms_writer_opts o = {.name = "encoder 1", .mode = MMS_WRITER_DROP, .capacity = 8,
                                .stop = &stop_flag};
    CHECK(mms_writer_create_encoder(e, &o, &ep->enc) == 0);
    o.name = dir ? "recording" : url;
    if (dir) {
        CHECK_MSG(mms_recorder_create(dir, "ef", 60, "mp4", &p, &ep->rec, &err) == 0, "%s",
                  err.msg);
        CHECK(ep->rec && mms_writer_create_recorder(ep->rec, &o, &ep->member) == 0);
    } else {
        CHECK_MSG(mms_sink_open(NULL, url, &p, &sink, &err) == 0, "%s", err.msg);
        CHECK(sink && mms_writer_create_sink(sink, NULL, &o, &ep->member) == 0);
    }
    if (!ep->member)
        return -1;
    CHECK(mms_writer_add_member(ep->enc, ep->member) == 0);
    CHECK(mms_writer_start(ep->member) == 0 && mms_writer_start(ep->enc) == 0);
    return 0;
}

/* As the pipeline ends them: the encoder first (its thread hands the
 * members their end), then the member; freed member first. */
static void enc_pair_close(struct enc_pair *ep)
{
    mms_writer_close(ep->enc, NULL);
    mms_writer_close(ep->member, NULL);
    mms_writer_free(ep->member);
    mms_writer_free(ep->enc);
    mms_recorder_free(ep->rec);
}

/* n frames a picture each, then, when `bad`, one of a size the encoder
 * refuses: its failure for good, as an encode error would be. */
static void feed_encoder(struct enc_pair *ep, int n, int bad)
{
    AVFrame *f = frame();
    for (int i = 0; i < n; i++) {
        CHECK(av_frame_make_writable(f) == 0);
        for (int y = 0; y < H; y++)
            memset(f->data[0] + y * f->linesize[0], (i * 8 + y * 4) & 0xff, W);
        for (int k = 1; k < 3; k++)
            for (int y = 0; y < H / 2; y++)
                memset(f->data[k] + y * f->linesize[k], 128, W / 2);
        send_pts(ep->enc, f, i);
        sleep_ms(5);
    }
    av_frame_free(&f);
    if (!bad)
        return;
    AVFrame *small = av_frame_alloc();
    small->format = AV_PIX_FMT_YUV420P;
    small->width = small->height = 16;
    CHECK(av_frame_get_buffer(small, 0) == 0);
    for (int k = 0; k < 3; k++)
        memset(small->data[k], 128, small->linesize[k] * (k ? 8 : 16));
    send_pts(ep->enc, small, n);
    av_frame_free(&small);
}

/* Video packets in a file; -1 when it cannot be read as a whole. */
static int packets_in(const char *path)
{
    AVFormatContext *fc = NULL;
    if (avformat_open_input(&fc, path, NULL, NULL) < 0)
        return -1;
    int n = avformat_find_stream_info(fc, NULL) < 0 ? -1 : 0;
    AVPacket *pkt = av_packet_alloc();
    while (n >= 0 && av_read_frame(fc, pkt) >= 0) {
        n++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fc);
    return n;
}

/* The one file in dir, into path; 0 when there is not exactly one. */
static int only_file(const char *dir, char *path, size_t len)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && n++ == 0)
            snprintf(path, len, "%s/%s", dir, e->d_name);
    if (d)
        closedir(d);
    return n == 1;
}

static struct mms_record_status rec_status(struct enc_pair *ep)
{
    struct mms_record_status st;
    mms_recorder_status(ep->rec, &st);
    return st;
}

/* The recording's encoder fails: the recording says so at once (not
 * "recording" while nothing more is written), is not retried for
 * packets that will never come, refuses a start, and what it wrote is
 * a finished segment of every frame before the failure. */
static void a_failed_encoder_ends_its_recording(void)
{
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/enc-fail-rec", mms_test_tmpdir());
    struct enc_pair ep;
    if (enc_pair_open(&ep, dir, NULL))
        return;
    feed_encoder(&ep, 10, 1);
    struct mms_record_status st = rec_status(&ep);
    for (int i = 0; i < 300 && !st.error[0]; i++, st = rec_status(&ep))
        sleep_ms(10);
    CHECK_MSG(strstr(st.error, "its encoder failed: encoder 1") != NULL, "error '%s'", st.error);
    CHECK_EQ(st.recording, 0);
    CHECK_EQ(st.retrying, 0);
    CHECK_EQ(st.frames, 10);
    CHECK_EQ(st.segments, 1);
    CHECK_EQ(st.file[0], 0);
    CHECK_EQ(mms_recorder_request(ep.rec, 1), -EIO);
    CHECK_EQ(mms_recorder_request(ep.rec, 0), 0);
    CHECK_EQ(rec_status(&ep).recording, 0);
    /* Finalised before the end, not by it. */
    CHECK(only_file(dir, path, sizeof(path)));
    CHECK_MSG(packets_in(path) == 10, "%s: %d packets", path, packets_in(path));
    enc_pair_close(&ep);
}

/* A file on a failed encoder is finished there and then, and reads as
 * complete while the pipeline goes on; the output is down with the
 * encoder's reason. */
static void a_failed_encoder_finishes_its_file(void)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/enc-fail.mp4", mms_test_tmpdir());
    struct enc_pair ep;
    if (enc_pair_open(&ep, NULL, url))
        return;
    feed_encoder(&ep, 10, 1);
    struct mms_writer_status st = status(ep.member);
    for (int i = 0; i < 300 && !strstr(st.reason, "its encoder failed"); i++, st = status(ep.member))
        sleep_ms(10);
    CHECK_MSG(strstr(st.reason, "its encoder failed: encoder 1") != NULL, "reason '%s'",
              st.reason);
    CHECK_EQ(st.state, MMS_WRITER_FAILED);
    CHECK_EQ(st.written, 10);
    CHECK_MSG(packets_in(url) == 10, "%s: %d packets", url, packets_in(url));
    enc_pair_close(&ep);
}

/* The same pair without the failure: recording on, no error, and its
 * segment completed only by the end. */
static void a_working_encoder_keeps_its_recording(void)
{
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/enc-ok-rec", mms_test_tmpdir());
    struct enc_pair ep;
    if (enc_pair_open(&ep, dir, NULL))
        return;
    feed_encoder(&ep, 10, 0);
    struct mms_record_status st = rec_status(&ep);
    for (int i = 0; i < 300 && st.frames < 10; i++, st = rec_status(&ep))
        sleep_ms(10);
    sleep_ms(300); /* past the members' poll: a failure would be taken in by now */
    st = rec_status(&ep);
    CHECK_EQ(st.frames, 10);
    CHECK_EQ(st.recording, 1);
    CHECK_MSG(!st.error[0], "error '%s'", st.error);
    CHECK(st.file[0] != 0);
    CHECK_EQ(mms_recorder_request(ep.rec, 1), 0);
    enc_pair_close(&ep);
    CHECK(only_file(dir, path, sizeof(path)));
    CHECK_EQ(packets_in(path), 10);
}

MMS_TESTS(T(latest_keeps_only_the_newest), T(drop_keeps_a_backlog_in_order),
          T(block_waits_and_loses_nothing), T(block_gives_up_when_stopping),
          T(a_stuck_write_is_a_stall_until_it_returns),
          T(a_failed_write_closes_the_output), T(drain_cuts_off_a_stuck_output),
          T(drain_waits_for_a_file), T(a_writer_needs_a_sink_or_a_reopen),
          T(an_unopened_sink_is_opened_at_once), T(a_sink_down_at_start_is_down_then_retried),
          T(block_waits_for_the_first_open), T(block_does_not_wait_once_the_first_open_failed),
          T(a_pause_reaches_the_sink_without_frames),
          T(a_resume_replaces_a_pause_not_yet_given), T(other_requests_are_refused),
          T(a_sink_without_control_is_not_paused), T(a_failed_control_closes_the_output),
          T(events_are_passed_on_once), T(a_sink_without_control_reports_no_events),
          T(an_output_its_user_closed_is_closed_when_asked),
          T(an_output_its_user_closed_stays_open_unless_asked),
          T(a_failed_encoder_ends_its_recording), T(a_failed_encoder_finishes_its_file),
          T(a_working_encoder_keeps_its_recording))
