#include "pipeline/writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/redact.h"
#include "io/tsan.h"
#include "pipeline/queue.h"
#include "pipeline/stats.h"
#include "pipeline/thread.h"

/* While a network output is down, how often its reopen is looked at when
 * no frame comes to look at it; and how often a sender waiting for room
 * looks whether it should still wait. */
#define REOPEN_POLL_MS 100
#define STOP_POLL_MS 100
/* How often a sink that reports events is asked for them when no frame
 * comes (a paused pipeline): a key press answered within a frame. */
#define EVENT_POLL_MS 30
/* How often a sink being opened for the first time is looked at by a
 * writer that waits for it. */
#define FIRST_OPEN_POLL_MS 10

/* A frame handed on, with what the window shows beside it; or a packet
 * of a shared encoder, and whether packets were lost just before it. */
struct slot {
    AVFrame *frame;
    struct mms_frame_meta meta;
    AVPacket *pkt;  /* what a member's slots carry instead of a frame */
    int after_gap;
};

struct mms_writer {
    char name[256];
    enum mms_writer_mode mode;
    atomic_int *abort, *stop;
    void (*event)(void *opaque, enum mms_writer_state state, const char *reason);
    void *event_opaque;
    const char *thread_name; /* static */
    int step_back;

    /* What it writes: a sink (with its reopen), the recorder, or an
     * encoder whose packets go to its members. */
    struct mms_sink *sink;    /* the writer thread's; NULL while closed */
    struct mms_reopen *reopen;
    struct mms_recorder *rec; /* borrowed */
    struct mms_encoder *enc;  /* owned */
    struct mms_writer **members;
    int nmembers;
    AVPacket *out;            /* the encoder's packet being handed on */
    int enc_failed;           /* the writer thread's */
    /* Set once enc_failed and the reason are, after the last packet was
     * handed on: what its members look at. */
    atomic_int enc_dead;

    /* A member: the encoder's writer that feeds it packets. */
    struct mms_writer *upstream;
    int gap;      /* the sender's: the last packet was dropped */
    int wait_key; /* the writer thread's: packets are lost, resume at a keyframe */
    unsigned (*on_events)(void *opaque, unsigned events);
    void *opaque;
    int takes_events; /* the writer thread's: the sink has not said -ENOTSUP */
    int user_closed;  /* the writer thread's: closed by its user, never reopened */
    int upstream_gone; /* the writer thread's: its encoder's failure was taken in */

    struct slot *slots;
    int nslots;
    struct mms_queue *queue;  /* slots to write */
    struct mms_queue *free;   /* slots to fill */

    pthread_t thread;
    int started, joined;

    pthread_mutex_t lock;     /* everything below */
    pthread_cond_t ended_cond;
    int ended;                /* the thread has written its last frame */
    enum mms_writer_state state;
    double busy_since;        /* when the write in progress began; 0: none */
    int64_t written, dropped, errors, reopens, stalls;
    unsigned controls; /* bit (1 << MMS_SINK_CTRL_*): requests to give the sink */
    int paused;
    char reason[512];
    double reason_ms;
};

static void set_reason(struct mms_writer *w, const char *msg)
{
    snprintf(w->reason, sizeof(w->reason), "%s", msg);
    w->reason_ms = mms_now_ms();
}

/* Under the lock, so the owner hears the changes in the order they were
 * made. The reason is set first. */
static void set_state(struct mms_writer *w, enum mms_writer_state s)
{
    if (w->state == s)
        return;
    w->state = s;
    if (w->event)
        w->event(w->event_opaque, s, s == MMS_WRITER_UP ? "" : w->reason);
}

/* Under the lock: a write that has gone on too long is a stall, found by
 * whoever looks first (the sender, or a status request). */
static void notice_stall(struct mms_writer *w, double now)
{
    if (w->state != MMS_WRITER_UP || !w->busy_since || now - w->busy_since < MMS_WRITER_STALL_MS)
        return;
    w->stalls++;
    char msg[256];
    snprintf(msg, sizeof(msg), "%.200s: has taken no frame for %.1f s; its frames are dropped",
             w->name, (now - w->busy_since) / 1000);
    set_reason(w, msg);
    set_state(w, MMS_WRITER_STALLED);
}

static int stopping(const struct mms_writer *w)
{
    return w->stop && atomic_load(w->stop);
}

static void count_dropped(struct mms_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->dropped++;
    pthread_mutex_unlock(&w->lock);
}

/* ------------------------------------------------------------ the thread */

/* While the sink is closed: takes a reopened one when an attempt succeeds. */
static void poll_reopen(struct mms_writer *w)
{
    if (w->sink || !w->reopen || w->user_closed)
        return;
    struct mms_sink *s = NULL;
    int rc = mms_reopen_poll(w->reopen, mms_now_ms(), &s);
    pthread_mutex_lock(&w->lock);
    if (rc > 0) {
        w->sink = s;
        w->reopens += w->state != MMS_WRITER_UP; /* not a first open that worked */
        set_state(w, MMS_WRITER_UP);
        /* A new receiver can start only on a keyframe: ask for one now
         * rather than leave it a second without a picture. */
        if (w->upstream) {
            w->wait_key = 1;
            mms_encoder_key_at(w->upstream->enc, INT64_MIN);
        }
    } else if (rc < 0) {
        set_reason(w, mms_reopen_error(w->reopen));
        /* The first open failed: down from now on, as after a failed write. */
        if (w->state == MMS_WRITER_UP) {
            w->errors++;
            set_state(w, MMS_WRITER_FAILED);
        }
    }
    pthread_mutex_unlock(&w->lock);
}

/* Offline every output gets every frame: one still connecting for the
 * first time is a slow output, waited for like any other, not one that is
 * down. Once that attempt has failed it is down, and waits for nobody. */
static void await_first_open(struct mms_writer *w)
{
    if (w->mode != MMS_WRITER_BLOCK || !w->reopen)
        return;
    while (!w->sink && !mms_reopen_attempts(w->reopen) && !stopping(w)) {
        nanosleep(&(struct timespec){0, FIRST_OPEN_POLL_MS * 1000000L}, NULL);
        poll_reopen(w);
    }
}

static void begin_write(struct mms_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->busy_since = mms_now_ms();
    pthread_mutex_unlock(&w->lock);
}

/* A failed write or control: counted, the sink closed, and a network one
 * armed to be opened again. */
static void sink_failed(struct mms_writer *w, const struct mms_err *err)
{
    pthread_mutex_lock(&w->lock);
    w->errors++;
    w->paused = 0;
    set_reason(w, err->msg);
    set_state(w, MMS_WRITER_FAILED);
    pthread_mutex_unlock(&w->lock);
    mms_sink_close(w->sink, NULL);
    w->sink = NULL;
    if (w->reopen)
        mms_reopen_arm(w->reopen, mms_now_ms());
}

/* rc: of the write. */
static void end_write(struct mms_writer *w, int rc, const struct mms_err *err)
{
    pthread_mutex_lock(&w->lock);
    w->busy_since = 0;
    if (!rc) {
        w->written++;
        if (w->state == MMS_WRITER_STALLED)
            set_state(w, MMS_WRITER_UP);
    } else {
        w->dropped++;
    }
    pthread_mutex_unlock(&w->lock);
    if (rc)
        sink_failed(w, err);
}

/* The recorder's write: counted as written only when the frame went into
 * a segment. Stopped, failed or waiting for a retry, it is neither written
 * nor dropped (the recorder's status says which), and the output is not
 * stalled either. */
static void recorded(struct mms_writer *w, int wrote)
{
    if (wrote) {
        end_write(w, 0, NULL);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->busy_since = 0;
    pthread_mutex_unlock(&w->lock);
}

/* The requests asked for since the last time, to the sink; a closed sink
 * has nothing to pause or draw, so they are let go. */
static void give_controls(struct mms_writer *w)
{
    static const int order[] = {MMS_SINK_CTRL_RESUME, MMS_SINK_CTRL_PAUSE,
                                MMS_SINK_CTRL_REDRAW};
    pthread_mutex_lock(&w->lock);
    unsigned todo = w->controls;
    w->controls = 0;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && w->sink; i++) {
        if (!(todo & 1u << order[i]))
            continue;
        struct mms_err err = {{0}};
        int rc = mms_sink_control(w->sink, order[i], NULL, &err);
        if (rc == -ENOTSUP)
            continue;
        if (rc < 0) {
            sink_failed(w, &err);
            return;
        }
        pthread_mutex_lock(&w->lock);
        if (order[i] != MMS_SINK_CTRL_REDRAW)
            w->paused = order[i] == MMS_SINK_CTRL_PAUSE;
        pthread_mutex_unlock(&w->lock);
    }
}

/* Its user closed it and the owner goes on without it: no failure, and
 * not to be opened again. */
static void close_for_user(struct mms_writer *w)
{
    char msg[320];
    snprintf(msg, sizeof(msg), "%.200s: closed by its user", w->name);
    pthread_mutex_lock(&w->lock);
    w->paused = 0;
    set_reason(w, msg);
    set_state(w, MMS_WRITER_CLOSED);
    pthread_mutex_unlock(&w->lock);
    mms_sink_close(w->sink, NULL);
    w->sink = NULL;
    w->user_closed = 1;
}

/* What the sink's user did, passed on; a sink that reports none is not
 * asked again. */
static void check_events(struct mms_writer *w)
{
    if (!w->sink || !w->takes_events)
        return;
    struct mms_err err = {{0}};
    unsigned ev = 0;
    int rc = mms_sink_control(w->sink, MMS_SINK_CTRL_CHECK_EVENTS, &ev, &err);
    if (rc == -ENOTSUP)
        w->takes_events = 0;
    else if (rc < 0)
        sink_failed(w, &err);
    else if (ev && (w->on_events(w->opaque, ev) & MMS_SINK_EVENT_CLOSED))
        close_for_user(w);
}

/* A member: muxes one packet, or drops it until a keyframe once packets
 * were lost (a decoder could show nothing right in between). */
static void write_packet_slot(struct mms_writer *w, const struct slot *s)
{
    struct mms_err err = {{0}};
    if (s->after_gap)
        w->wait_key = 1;
    if (w->wait_key && !(s->pkt->flags & AV_PKT_FLAG_KEY)) {
        count_dropped(w);
        return;
    }
    if (w->rec) {
        w->wait_key = 0;
        begin_write(w);
        recorded(w, mms_recorder_write_packet(w->rec, s->pkt));
        return;
    }
    await_first_open(w);
    if (!w->sink) {
        w->wait_key = 1;
        count_dropped(w);
        return;
    }
    w->wait_key = 0;
    begin_write(w);
    int rc = mms_sink_write_packet(w->sink, s->pkt, &err);
    end_write(w, rc, &err);
}

static void send_packet(struct mms_writer *w, const AVPacket *pkt);

/* Every packet the encoder has ready, to every member. */
static int fan_out(struct mms_writer *w, struct mms_err *err)
{
    for (;;) {
        int rc = mms_encoder_receive(w->enc, w->out, err);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return rc;
        for (int i = 0; i < w->nmembers; i++)
            send_packet(w->members[i], w->out);
        av_packet_unref(w->out);
    }
}

/* An encoder: one encode for every member. Only the encode is timed: a
 * member that makes the hand-off wait (offline, BLOCK) is the one stalled,
 * not the encoder and every other output on it. A failed encoder stays
 * failed: its members get nothing more, and end (take_upstream_failure). */
static void encode_slot(struct mms_writer *w, const struct slot *s)
{
    struct mms_err err = {{0}};
    if (w->enc_failed) {
        count_dropped(w);
        return;
    }
    begin_write(w);
    int rc = mms_encoder_send(w->enc, s->frame, &err);
    end_write(w, rc, &err);
    if (!rc && (rc = fan_out(w, &err))) {
        pthread_mutex_lock(&w->lock);
        w->errors++;
        set_reason(w, err.msg);
        set_state(w, MMS_WRITER_FAILED);
        pthread_mutex_unlock(&w->lock);
    }
    w->enc_failed = rc != 0;
    if (rc)
        atomic_store(&w->enc_dead, 1);
}

/* A member whose encoder failed for good: no packet comes again. What it
 * has written is finalised now, not at the pipeline's end, and its status
 * says so: a recording that merely stopped growing would still read
 * "recording". A network output is not reopened for nothing. Taken in
 * once the packets sent before the failure are written. */
static void take_upstream_failure(struct mms_writer *w)
{
    if (!w->upstream || w->upstream_gone || !atomic_load(&w->upstream->enc_dead))
        return;
    w->upstream_gone = 1;
    char msg[sizeof(w->reason)];
    pthread_mutex_lock(&w->upstream->lock);
    snprintf(msg, sizeof(msg), "its encoder failed: %.480s", w->upstream->reason);
    pthread_mutex_unlock(&w->upstream->lock);
    if (w->rec) {
        mms_recorder_end(w->rec, msg);
        return;
    }
    if (w->sink) {
        struct mms_err err = {{0}};
        mms_sink_close(w->sink, &err);
        w->sink = NULL;
    }
    w->user_closed = 1;
    pthread_mutex_lock(&w->lock);
    w->paused = 0;
    set_reason(w, msg);
    set_state(w, MMS_WRITER_FAILED);
    pthread_mutex_unlock(&w->lock);
}

/* The end of an encoder's frames: what it still holds goes to the
 * members, whose queues then end too. */
static void finish_encoder(struct mms_writer *w)
{
    struct mms_err err = {{0}};
    if (!w->enc_failed && !mms_encoder_send(w->enc, NULL, &err))
        fan_out(w, &err);
    for (int i = 0; i < w->nmembers; i++)
        mms_queue_close(w->members[i]->queue);
}

static void write_slot(struct mms_writer *w, const struct slot *s)
{
    struct mms_err err = {{0}};
    if (w->upstream) {
        write_packet_slot(w, s);
        return;
    }
    if (w->enc) {
        encode_slot(w, s);
        return;
    }
    if (w->rec) {
        begin_write(w);
        recorded(w, mms_recorder_write(w->rec, s->frame, &s->meta));
        return;
    }
    await_first_open(w);
    if (!w->sink) {
        count_dropped(w);
        return;
    }
    begin_write(w);
    int rc = mms_sink_write(w->sink, s->frame, &s->meta, &err);
    end_write(w, rc, &err);
}

static void *writer_main(void *arg)
{
    struct mms_writer *w = arg;
    mms_thread_setup(w->thread_name, w->step_back);
    poll_reopen(w); /* a sink not open yet: its first attempt, now */
    for (;;) {
        void *v;
        /* Never without a timeout: requests must reach the sink, and its
         * events be read, while no frame comes. */
        int rc = mms_queue_pop(w->queue, &v, w->takes_events ? EVENT_POLL_MS : REOPEN_POLL_MS);
        if (rc == -EPIPE)
            break;
        if (rc)
            take_upstream_failure(w); /* nothing queued: all it had is written */
        poll_reopen(w);
        give_controls(w);
        if (!rc) {
            struct slot *s = v;
            write_slot(w, s);
            mms_tsan_frame_release(s->frame); /* see io/tsan.h */
            av_frame_unref(s->frame);
            av_packet_unref(s->pkt);
            mms_queue_push(w->free, s);
        }
        check_events(w);
    }
    if (w->enc)
        finish_encoder(w);
    take_upstream_failure(w);
    /* Finalised here, so the recording is complete once the writer is
     * drained. */
    if (w->rec)
        mms_recorder_close(w->rec);
    pthread_mutex_lock(&w->lock);
    w->ended = 1;
    pthread_cond_broadcast(&w->ended_cond);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ------------------------------------------------------------ setup */

static int create(const struct mms_writer_opts *o, struct mms_writer **out)
{
    *out = NULL;
    struct mms_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    /* The name is shown (status, events, messages): a URL's secrets are not. */
    mms_redact_url(o->name ? o->name : "output", w->name, sizeof(w->name));
    w->mode = o->mode;
    w->abort = o->abort;
    w->stop = o->stop;
    w->event = o->event;
    w->event_opaque = o->event_opaque;
    w->on_events = o->on_events;
    w->opaque = o->opaque;
    w->thread_name = o->thread_name ? o->thread_name : "mms-write";
    w->step_back = o->step_back;
    w->takes_events = o->on_events != NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ended_cond, NULL);
    int cap = o->mode == MMS_WRITER_LATEST || o->capacity < 1 ? 1 : o->capacity;
    /* The queue's, one being written and one being filled: the sender
     * always finds a free slot. */
    w->nslots = cap + 2;
    int rc = mms_queue_create(cap, &w->queue);
    rc = rc ? rc : mms_queue_create(w->nslots, &w->free);
    if (!rc && !(w->slots = calloc(w->nslots, sizeof(*w->slots))))
        rc = -ENOMEM;
    for (int i = 0; !rc && i < w->nslots; i++) {
        if (!(w->slots[i].frame = av_frame_alloc()) || !(w->slots[i].pkt = av_packet_alloc()))
            rc = -ENOMEM;
        else
            mms_queue_push(w->free, &w->slots[i]);
    }
    if (rc) {
        mms_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int mms_writer_create_sink(struct mms_sink *s, struct mms_reopen *r,
                           const struct mms_writer_opts *o, struct mms_writer **out)
{
    if (!s && !r)
        return -EINVAL;
    int rc = create(o, out);
    if (rc)
        return rc;
    (*out)->sink = s;
    (*out)->reopen = r;
    if (!s)
        mms_reopen_start(r, mms_now_ms());
    return 0;
}

int mms_writer_create_recorder(struct mms_recorder *rec, const struct mms_writer_opts *o,
                               struct mms_writer **out)
{
    int rc = create(o, out);
    if (!rc) {
        (*out)->rec = rec;
        (*out)->takes_events = 0; /* no sink to ask: no need to poll */
    }
    return rc;
}

int mms_writer_create_encoder(struct mms_encoder *enc, const struct mms_writer_opts *o,
                              struct mms_writer **out)
{
    int rc = create(o, out);
    if (rc)
        return rc;
    if (!((*out)->out = av_packet_alloc())) {
        mms_writer_free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    (*out)->enc = enc;
    return 0;
}

int mms_writer_add_member(struct mms_writer *w, struct mms_writer *member)
{
    struct mms_writer **m = realloc(w->members, (w->nmembers + 1) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    w->members = m;
    w->members[w->nmembers++] = member;
    member->upstream = w;
    return 0;
}

struct mms_encoder *mms_writer_encoder(struct mms_writer *w)
{
    return w->enc;
}

int mms_writer_start(struct mms_writer *w)
{
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc)
        return -rc;
    w->started = 1;
    return 0;
}

/* ------------------------------------------------------------ sending */

/* BLOCK: waits for room, but not once the pipeline is stopping. */
static int push_waiting(struct mms_writer *w, struct slot *s)
{
    int rc;
    do
        rc = mms_queue_push_timed(w->queue, s, stopping(w) ? 0 : STOP_POLL_MS);
    while (rc == -ETIMEDOUT && !stopping(w));
    return rc;
}

void mms_writer_send(struct mms_writer *w, const AVFrame *f, const struct mms_frame_meta *m)
{
    pthread_mutex_lock(&w->lock);
    notice_stall(w, mms_now_ms());
    pthread_mutex_unlock(&w->lock);
    void *v;
    if (mms_queue_pop(w->free, &v, 0)) {
        count_dropped(w); /* cannot happen: see nslots */
        return;
    }
    struct slot *s = v;
    if (av_frame_ref(s->frame, f) < 0) {
        mms_queue_push(w->free, s);
        count_dropped(w);
        return;
    }
    static const struct mms_frame_meta none;
    s->meta = m ? *m : none;
    void *old = NULL;
    int rc;
    if (w->mode == MMS_WRITER_LATEST)
        rc = mms_queue_push_latest(w->queue, s, &old);
    else if (w->mode == MMS_WRITER_DROP)
        rc = mms_queue_try_push(w->queue, s);
    else
        rc = push_waiting(w, s);
    if (rc)
        old = s; /* full (DROP, or BLOCK when stopping), or finished */
    if (old) {
        struct slot *o = old;
        av_frame_unref(o->frame);
        mms_queue_push(w->free, o);
        count_dropped(w);
    }
}

int mms_writer_control(struct mms_writer *w, int request)
{
    if (request != MMS_SINK_CTRL_PAUSE && request != MMS_SINK_CTRL_RESUME &&
        request != MMS_SINK_CTRL_REDRAW)
        return -EINVAL;
    pthread_mutex_lock(&w->lock);
    if (request == MMS_SINK_CTRL_PAUSE)
        w->controls &= ~(1u << MMS_SINK_CTRL_RESUME);
    else if (request == MMS_SINK_CTRL_RESUME)
        w->controls &= ~(1u << MMS_SINK_CTRL_PAUSE);
    w->controls |= 1u << request;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* The encoder's thread, to a member. A packet that finds no room is lost,
 * and so are the member's next ones up to a keyframe (the member's thread
 * sees the gap). LATEST means nothing for packets: they all count. */
static void send_packet(struct mms_writer *w, const AVPacket *pkt)
{
    pthread_mutex_lock(&w->lock);
    notice_stall(w, mms_now_ms());
    pthread_mutex_unlock(&w->lock);
    void *v;
    if (mms_queue_pop(w->free, &v, 0)) {
        w->gap = 1;
        count_dropped(w);
        return;
    }
    struct slot *s = v;
    int rc = av_packet_ref(s->pkt, pkt);
    if (!rc) {
        s->after_gap = w->gap;
        rc = w->mode == MMS_WRITER_BLOCK ? push_waiting(w, s) : mms_queue_try_push(w->queue, s);
    }
    w->gap = rc != 0;
    if (rc) {
        av_packet_unref(s->pkt);
        mms_queue_push(w->free, s);
        count_dropped(w);
    }
}

/* A member is as down as its encoder, and loses what the encoder lost. */
static void merge_upstream(struct mms_writer *up, struct mms_writer_status *st)
{
    pthread_mutex_lock(&up->lock);
    notice_stall(up, mms_now_ms());
    st->dropped += up->dropped;
    if (st->state == MMS_WRITER_UP && up->state != MMS_WRITER_UP) {
        st->state = up->state;
        snprintf(st->reason, sizeof(st->reason), "%s", up->reason);
        st->reason_ms = up->reason_ms;
    }
    pthread_mutex_unlock(&up->lock);
}

void mms_writer_status(struct mms_writer *w, struct mms_writer_status *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&w->lock);
    notice_stall(w, mms_now_ms());
    snprintf(st->name, sizeof(st->name), "%s", w->name);
    st->state = w->state;
    st->written = w->written;
    st->dropped = w->dropped;
    st->errors = w->errors;
    st->reopens = w->reopens;
    st->stalls = w->stalls;
    st->paused = w->paused;
    st->controls_pending = w->controls != 0;
    snprintf(st->reason, sizeof(st->reason), "%s", w->reason);
    st->reason_ms = w->reason_ms;
    pthread_mutex_unlock(&w->lock);
    if (w->upstream)
        merge_upstream(w->upstream, st);
}

/* ------------------------------------------------------------ ending */

/* 0 once the thread has ended, -ETIMEDOUT at deadline_ms. */
static int wait_ended(struct mms_writer *w, double deadline_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double wait = deadline_ms - mms_now_ms();
    if (wait < 0)
        wait = 0;
    until.tv_sec += (time_t)(wait / 1000);
    until.tv_nsec += (long)((wait - (time_t)(wait / 1000) * 1000.0) * 1e6);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (!w->ended && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->ended_cond, &w->lock, &until);
    int ended = w->ended;
    pthread_mutex_unlock(&w->lock);
    return ended ? 0 : -ETIMEDOUT;
}

static void join(struct mms_writer *w)
{
    if (w->started && !w->joined) {
        mms_queue_close(w->queue);
        pthread_join(w->thread, NULL);
        w->joined = 1;
    }
}

/* A member's queue is closed by its encoder, once that has flushed into it. */
void mms_writers_drain(struct mms_writer *const *ws, int n, double grace_ms)
{
    for (int i = 0; i < n; i++)
        if (ws[i] && !ws[i]->upstream)
            mms_queue_close(ws[i]->queue);
    double deadline = mms_now_ms() + grace_ms;
    for (int i = 0; i < n; i++) {
        struct mms_writer *w = ws[i];
        if (w && w->started && w->abort && wait_ended(w, deadline))
            atomic_store(w->abort, 1);
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (ws[i] && (ws[i]->upstream != NULL) == pass)
                join(ws[i]); /* encoders (and the rest) before their members */
}

int mms_writer_close(struct mms_writer *w, struct mms_err *err)
{
    join(w);
    int rc = mms_sink_close(w->sink, err);
    w->sink = NULL;
    /* An attempt to reopen still connecting is not worth waiting for. */
    if (w->abort)
        atomic_store(w->abort, 1);
    mms_reopen_free(w->reopen);
    w->reopen = NULL;
    return rc;
}

void mms_writer_free(struct mms_writer *w)
{
    if (!w)
        return;
    mms_writer_close(w, NULL);
    for (int i = 0; w->slots && i < w->nslots; i++) {
        av_frame_free(&w->slots[i].frame);
        av_packet_free(&w->slots[i].pkt);
    }
    mms_encoder_free(w->enc);
    free(w->members);
    av_packet_free(&w->out);
    free(w->slots);
    mms_queue_destroy(w->queue);
    mms_queue_destroy(w->free);
    pthread_cond_destroy(&w->ended_cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
