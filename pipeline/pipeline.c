#include "pipeline/pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/imgutils.h>
#include <libavutil/mathematics.h>

#include "core/backoff.h"
#include "core/cpu.h"
#include "core/locate.h"
#include "core/net.h"
#include "core/prepost.h"
#include "core/smooth.h"
#include "io/sink.h"
#include "io/source.h"
#include "overlay/compose.h"
#include "overlay/text.h"
#include "pipeline/queue.h"
#include "pipeline/reopen.h"
#include "pipeline/testing.h"
#include "pipeline/thread.h"
#include "pipeline/writer.h"

#include "pipeline/internal.h"

/* ------------------------------------------------------------ masks */

static struct mask *mask_get(struct mms_pipeline *p)
{
    struct mask *m = NULL;
    pthread_mutex_lock(&p->mask_lock);
    for (int i = 0; i < NMASKS && !m; i++)
        if (!atomic_load(&p->masks[i].refs))
            m = &p->masks[i];
    if (m)
        atomic_store(&m->refs, 1);
    pthread_mutex_unlock(&p->mask_lock);
    return m;
}

static struct mask *mask_ref(struct mask *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

static void mask_unref(struct mask *m)
{
    if (m)
        atomic_fetch_sub(&m->refs, 1);
}

/* The latest mask, referenced for the caller. */
static struct mask *latest_mask(struct mms_pipeline *p)
{
    pthread_mutex_lock(&p->mask_lock);
    struct mask *m = mask_ref(p->latest);
    pthread_mutex_unlock(&p->mask_lock);
    return m;
}

static void publish_mask(struct mms_pipeline *p, struct mask *m)
{
    pthread_mutex_lock(&p->mask_lock);
    struct mask *old = p->latest;
    p->latest = mask_ref(m);
    pthread_mutex_unlock(&p->mask_lock);
    mask_unref(old);
}

/* ------------------------------------------------------------ decode */

static void recycle_item(struct mms_pipeline *p, struct item *it)
{
    av_frame_unref(it->frame);
    mask_unref(it->mask);
    it->mask = NULL;
    mms_queue_push(p->free_items, it);
}

static int to_input(struct mms_pipeline *p, const AVFrame *f, struct job *j)
{
    const struct mms_net_info *ni = mms_net_info(p->net);
    struct mms_err err;
    return mms_preprocess_frame(&p->pre, f, j->input, ni->in_h, ni->in_w, ni->mean, ni->std,
                                &err);
}

/* The source's interrupt callback: a stop ends any wait on the network,
 * an open during a reconnect included, without touching the source from
 * another thread. */
static int stopping(void *opaque)
{
    struct mms_pipeline *p = opaque;
    return atomic_load_explicit(&p->stop, memory_order_relaxed);
}

/* Live mode plays a file or a lavfi graph at its own rate, as a camera
 * would deliver it, rather than as fast as it decodes (only to drop most
 * of it); the source leaves devices and streams to their sender's pace. */
static struct mms_source_opts source_opts(struct mms_pipeline *p)
{
    return (struct mms_source_opts){(const char *const *)p->o.input_options,
                                    p->o.ninput_options, 0, p->o.mode == MMS_MODE_LIVE,
                                    stopping, p};
}

/* Live inputs come back after a failure: reopen with backoff until stopped.
 * A camera unplugged for a moment is back within a second; a sender gone
 * for good costs an attempt every 8 s. */
#define RECONNECT_MIN_MS 500
#define RECONNECT_MAX_MS 8000
static int reconnect(struct mms_pipeline *p)
{
    if (p->src)
        p->decode_errors_before += mms_source_decode_errors(p->src);
    mms_source_close(p->src);
    p->src = NULL;
    atomic_store(&p->signal, 0);
    pipe_emit(p, MMS_EVENT_SIGNAL_LOST, NULL, 0);
    struct mms_backoff backoff;
    mms_backoff_init(&backoff, RECONNECT_MIN_MS, RECONNECT_MAX_MS);
    while (!atomic_load(&p->stop)) {
        uint64_t wait_ms = mms_backoff_next(&backoff);
        /* Sleep in short steps so a stop request is honoured quickly. */
        for (uint64_t slept = 0; slept < wait_ms && !atomic_load(&p->stop); slept += 100)
            nanosleep(&(struct timespec){0, 100000000L}, NULL);
        if (atomic_load(&p->stop))
            break;
        struct mms_source_opts so = source_opts(p);
        struct mms_err err;
        if (!mms_source_open(p->o.input, &so, &p->src, &err)) {
            int64_t n = atomic_fetch_add(&p->reconnects, 1) + 1;
            atomic_fetch_add(&p->gen, 1);
            atomic_store(&p->signal, 1);
            pipe_emit(p, MMS_EVENT_SIGNAL_BACK, NULL, n);
            return 0;
        }
    }
    return -ECANCELED;
}

/* Reads the next usable frame into it; 1 at the end of the input. */
static int read_frame(struct mms_pipeline *p, struct item *it)
{
    for (;;) {
        if (atomic_load(&p->stop))
            return 1;
        struct mms_err err;
        double t0 = mms_now_ms();
        int rc = p->src ? mms_source_read(p->src, it->frame, &err) : AVERROR(EIO);
        if (p->src)
            atomic_store(&p->decode_errors,
                         p->decode_errors_before + mms_source_decode_errors(p->src));
        if (!rc && (it->frame->width != p->info.width || it->frame->height != p->info.height)) {
            /* The outputs were opened at the first connection's size. */
            av_frame_unref(it->frame);
            rc = AVERROR(EINVAL);
        }
        if (!rc) {
            memset(it->ms, 0, sizeof(it->ms));
            it->t_start = t0;
            it->ms[MMS_STAGE_DECODE] = mms_now_ms() - t0;
            it->tb = mms_source_info(p->src)->time_base;
            it->gen = atomic_load(&p->gen);
            return 0;
        }
        if (!p->live || !mms_source_info(p->src)->live)
            return 1; /* a file ends (or breaks off) here */
        /* A stop interrupts the read it is waiting in: that is no loss of
         * signal, and must not say so. */
        if (atomic_load(&p->stop))
            return 1;
        if (reconnect(p))
            return 1;
    }
}

/* Offline, every stage but the network steps back (pipeline/thread.h). */
static void thread_setup(const struct mms_pipeline *p, const char *name, int step_back)
{
    mms_thread_setup(name, step_back && !p->live);
}

static void *decode_main(void *arg)
{
    struct mms_pipeline *p = arg;
    thread_setup(p, "mms-decode", 1);
    for (int64_t seq = 0;; seq++) {
        void *v;
        if (mms_queue_pop(p->free_items, &v, -1))
            break;
        struct item *it = v;
        if (read_frame(p, it)) {
            mms_queue_push(p->free_items, it);
            break;
        }
        atomic_fetch_add(&p->decoded, 1);
        int infer = seq % atomic_load(&p->settings.every) == 0;
        struct job *j = &it->job;
        if (p->live && infer) {
            j = NULL;
            if (!mms_queue_pop(p->free_jobs, &v, 0))
                j = v;
        }
        if (j) {
            j->skip = !infer;
            j->pts = it->frame->pts;
            j->gen = it->gen;
            double t = mms_now_ms();
            if (infer && to_input(p, it->frame, j))
                j->skip = 1;
            j->pre_ms = mms_now_ms() - t;
        }
        if (!p->live) {
            if (p->nworkers && !j->skip) {
                it->net_state = NET_PENDING;
                if (mms_queue_push(p->to_net, it))
                    it->net_state = NET_FAILED; /* closed: nobody would run it */
            }
            mms_queue_push(p->to_infer, it);
            continue;
        }
        void *dropped;
        if (j && infer && !mms_queue_push_latest(p->to_infer, j, &dropped) && dropped) {
            mms_queue_push(p->free_jobs, dropped);
            atomic_fetch_add(&p->dropped, 1);
        }
        if (!mms_queue_push_latest(p->to_compose, it, &dropped) && dropped) {
            recycle_item(p, dropped);
            atomic_fetch_add(&p->skipped, 1);
        }
    }
    if (p->to_net)
        mms_queue_close(p->to_net);
    mms_queue_close(p->to_infer);
    if (p->live)
        mms_queue_close(p->to_compose);
    return NULL;
}

/* ------------------------------------------------------------ infer */

/* The logits to threshold: this frame's, or smoothed over the past ones of
 * the same connection (a reconnect may show another scene). Called in
 * frame order. */
static const float *smoothed(struct mms_pipeline *p, const struct job *j, const float *logits)
{
    const struct mms_net_info *ni = mms_net_info(p->net);
    if (j->gen != p->smooth_gen) {
        mms_smooth_reset(p->smooth);
        p->smooth_gen = j->gen;
    }
    mms_smooth_set_alpha(p->smooth, atomic_load(&p->settings.smooth));
    return mms_smooth_apply(p->smooth, logits, j->input, ni->in_h, ni->in_w);
}

/* A failed inference leaves the frame with the last good mask; it is
 * counted, and the reason kept for whoever reports it. */
static void inference_failed(struct mms_pipeline *p, const char *why)
{
    pthread_mutex_lock(&p->err_lock);
    snprintf(p->infer_err, sizeof(p->infer_err), "%s", why);
    pthread_mutex_unlock(&p->err_lock);
    atomic_fetch_add(&p->inference_errors, 1);
    /* Once per burst: a network failing on every frame must not flood
     * whoever listens. */
    if (!atomic_exchange(&p->inference_failing, 1))
        pipe_emit(p, MMS_EVENT_INFERENCE_FAILED, why, 0);
}

static int run_net(struct mms_pipeline *p, struct mms_net *net, struct mms_err *err)
{
    int n = atomic_load(&p->inject_failures);
    if (n > 0 && atomic_compare_exchange_strong(&p->inject_failures, &n, n - 1))
        return mms_err_set(err, -EIO, "inference failed (injected by a test)");
    return mms_net_run(net, err);
}

/* One job through `net`: its logits are left in the network. */
static int run_job(struct mms_pipeline *p, struct mms_net *net, const struct job *j, double *ms)
{
    const struct mms_net_info *ni = mms_net_info(net);
    struct mms_err err;
    double t0 = mms_now_ms();
    memcpy(mms_net_input(net), j->input, (size_t)3 * ni->in_h * ni->in_w * sizeof(float));
    double t1 = mms_now_ms();
    if (run_net(p, net, &err)) {
        inference_failed(p, err.msg);
        return -1;
    }
    ms[MMS_STAGE_PREPROCESS] = j->pre_ms + (t1 - t0);
    ms[MMS_STAGE_INFER] = mms_now_ms() - t1;
    return 0;
}

/* A job's logits to its mask at the frame size, in frame order. */
static struct mask *to_mask(struct mms_pipeline *p, const struct job *j, const float *logits,
                            double *ms)
{
    const struct mms_net_info *ni = mms_net_info(p->net);
    double t0 = mms_now_ms();
    struct mask *m = mask_get(p);
    if (!m) {
        inference_failed(p, "no mask buffer free");
        return NULL;
    }
    mms_post_mask(smoothed(p, j, logits), ni->out_h, ni->out_w, m->data, p->info.width,
                  p->info.height, p->info.width, ni->threshold);
    mms_mask_stats(m->data, p->info.width, p->info.height, p->info.width, &m->stats);
    m->pts = j->pts;
    m->gen = j->gen;
    m->infer_ms = ms[MMS_STAGE_INFER];
    ms[MMS_STAGE_POSTPROCESS] = mms_now_ms() - t0;
    atomic_fetch_add(&p->inferred, 1);
    if (atomic_exchange(&p->inference_failing, 0))
        pipe_emit(p, MMS_EVENT_INFERENCE_BACK, NULL, atomic_load(&p->inference_errors));
    return m;
}

static struct mask *segment(struct mms_pipeline *p, struct job *j, double *ms)
{
    return run_job(p, p->net, j, ms) ? NULL : to_mask(p, j, mms_net_logits(p->net), ms);
}

static void net_finished(struct mms_pipeline *p, struct item *it, enum net_state st)
{
    pthread_mutex_lock(&p->net_lock);
    it->net_state = st;
    pthread_cond_broadcast(&p->net_done);
    pthread_mutex_unlock(&p->net_lock);
}

/* Offline, one of several networks: frames in whatever order they come
 * free, each left with its logits. */
static void *net_worker_main(void *arg)
{
    struct net_worker *w = arg;
    struct mms_pipeline *p = w->p;
    thread_setup(p, "mms-infer", 0);
    const struct mms_net_info *ni = mms_net_info(w->net);
    void *v;
    while (!mms_queue_pop(p->to_net, &v, -1)) {
        struct item *it = v;
        int rc = run_job(p, w->net, &it->job, it->ms);
        if (!rc)
            memcpy(it->logits, mms_net_logits(w->net),
                   (size_t)ni->out_h * ni->out_w * sizeof(float));
        net_finished(p, it, rc ? NET_FAILED : NET_DONE);
    }
    return NULL;
}

/* The next frame in order, once its worker is done with it. */
static struct mask *collect(struct mms_pipeline *p, struct item *it)
{
    pthread_mutex_lock(&p->net_lock);
    while (it->net_state == NET_PENDING)
        pthread_cond_wait(&p->net_done, &p->net_lock);
    enum net_state st = it->net_state;
    pthread_mutex_unlock(&p->net_lock);
    return st == NET_DONE ? to_mask(p, &it->job, it->logits, it->ms) : NULL;
}

/* Runs the network, or with workers (offline) puts their results in frame
 * order and makes the masks. */
static void *infer_main(void *arg)
{
    struct mms_pipeline *p = arg;
    if (p->nworkers)
        thread_setup(p, "mms-post", 1);
    else
        thread_setup(p, "mms-infer", 0);
    struct mask *last = NULL;
    void *v;
    while (!mms_queue_pop(p->to_infer, &v, -1)) {
        if (p->live) {
            struct job *j = v;
            double ms[MMS_STAGE_COUNT];
            struct mask *m = segment(p, j, ms);
            mms_queue_push(p->free_jobs, j);
            if (m) {
                for (int s = MMS_STAGE_PREPROCESS; s <= MMS_STAGE_POSTPROCESS; s++)
                    mms_stats_add(&p->stats, s, ms[s]);
                publish_mask(p, m);
                mask_unref(m);
            }
            continue;
        }
        struct item *it = v;
        it->made = 0;
        if (!it->job.skip) {
            struct mask *m = p->nworkers ? collect(p, it) : segment(p, &it->job, it->ms);
            it->made = m != NULL;
            if (m) {
                mask_unref(last);
                last = m;
            }
        }
        it->mask = mask_ref(last);
        mms_queue_push(p->to_compose, it);
    }
    mask_unref(last);
    if (!p->live)
        mms_queue_close(p->to_compose);
    return NULL;
}

/* ------------------------------------------------------------ compose */

static double ticks_ms(int64_t d, AVRational tb)
{
    return (double)d * tb.num * 1000.0 / tb.den;
}

static void write_meta(struct mms_pipeline *p, const struct item *it, int64_t pts,
                       const struct mask *m, double age)
{
    if (!p->meta)
        return;
    fprintf(p->meta, "{\"pts\":%lld,\"time\":%.6f,", (long long)pts,
            ticks_ms(pts, p->info.time_base) / 1000.0);
    if (m) {
        fprintf(p->meta, "\"mask_pts\":%lld,\"mask_age_ms\":", (long long)m->pts);
        if (age >= 0)
            fprintf(p->meta, "%.3f", age);
        else
            fprintf(p->meta, "null");
        const struct mms_mask_stats *st = &m->stats;
        fprintf(p->meta, ",\"tool_fraction\":%.6f,\"bbox\":", st->fraction);
        if (st->x0 >= 0)
            fprintf(p->meta, "[%d,%d,%d,%d]", st->x0, st->y0, st->x1, st->y1);
        else
            fprintf(p->meta, "null");
    } else {
        fprintf(p->meta, "\"mask_pts\":null,\"mask_age_ms\":null,\"tool_fraction\":null,"
                         "\"bbox\":null");
    }
    fprintf(p->meta, ",\"ms\":{");
    for (int s = 0; s <= MMS_STAGE_TOTAL; s++)
        fprintf(p->meta, "%s\"%s\":%.3f", s ? "," : "", mms_stage_name(s), it->ms[s]);
    fprintf(p->meta, "}}\n");
}

/* Compose only draws: each output gets a reference on its own writer
 * (one paused keeps its frozen frame itself). */
static void hand_off(struct mms_pipeline *p, const AVFrame *f, const struct mms_frame_meta *meta)
{
    for (int i = 0; i < p->nencoders; i++)
        mms_writer_send(p->encoders[i], f, meta);
    for (int i = 0; i < p->nwriters; i++)
        if (!p->member[i])
            mms_writer_send(p->writers[i], f, meta);
    if (PIPE_HOOK(p, frame))
        p->hooks.frame(p->hooks.opaque, f, meta);
}

struct clock {
    double start_wall;
    int64_t first_pts;
    int64_t last_out, pts_shift;
    int last_gen;
    int have;
    int resync;      /* live: placeholders went out, re-anchor the next frame */
    double last_frame_ms, next_placeholder_ms;
    double fps_t0;
    int64_t fps_n;
};

/* Offline with an output that shows frames as they come: frames leave at
 * the source's rate. */
static void pace(struct mms_pipeline *p, struct clock *c, int64_t pts, AVRational tb)
{
    if (p->live || !p->paced)
        return;
    double due = c->start_wall + ticks_ms(pts - c->first_pts, tb);
    double now = mms_now_ms();
    if (due > now && due - now < 10000) {
        double d = due - now;
        nanosleep(&(struct timespec){(time_t)(d / 1000), (long)(fmod(d, 1000) * 1e6)}, NULL);
    }
}

static int64_t frame_ticks(const struct mms_pipeline *p)
{
    AVRational fr = p->info.frame_rate.num ? p->info.frame_rate : (AVRational){25, 1};
    int64_t d = av_rescale_q(1, av_inv_q(fr), p->info.time_base);
    return d > 0 ? d : 1;
}

/* Output timestamps: offline, the source's own; live, a continuous
 * timeline across reconnections. */
static int64_t out_pts(struct mms_pipeline *p, struct clock *c, int64_t pts, AVRational tb,
                       int gen)
{
    int64_t t = av_rescale_q(pts, tb, p->info.time_base);
    if (!p->live)
        return t;
    int64_t o = t + c->pts_shift, gap = av_rescale_q(10, (AVRational){1, 1}, p->info.time_base);
    /* A new connection, a gap filled with NO SIGNAL, or a jump in the
     * source's clock: continue the output timeline one frame later. */
    if (c->have && (gen != c->last_gen || c->resync || o <= c->last_out || o > c->last_out + gap)) {
        c->pts_shift = c->last_out + frame_ticks(p) - t;
        o = t + c->pts_shift;
    }
    c->resync = 0;
    if (c->have && o <= c->last_out)
        o = c->last_out + 1;
    c->last_gen = gen;
    return o;
}

static void count_written(struct mms_pipeline *p, struct clock *c)
{
    atomic_fetch_add(&p->written, 1);
    double now = mms_now_ms();
    c->fps_n++;
    if (now - c->fps_t0 >= 1000) {
        pthread_mutex_lock(&p->fps_lock);
        p->fps = c->fps_n * 1000.0 / (now - c->fps_t0);
        pthread_mutex_unlock(&p->fps_lock);
        c->fps_t0 = now;
        c->fps_n = 0;
    }
}

static void emit_no_signal(struct mms_pipeline *p, struct clock *c)
{
    c->last_out = c->have ? c->last_out + frame_ticks(p) : 0;
    c->have = 1;
    p->no_signal->pts = c->last_out;
    c->resync = 1;
    struct mms_frame_meta meta = {.no_signal = 1, .mask_age_ms = -1};
    hand_off(p, p->no_signal, &meta);
    count_written(p, c);
}

static void compose_one(struct mms_pipeline *p, struct clock *c, struct item *it)
{
    struct mask *m = p->live ? latest_mask(p) : mask_ref(it->mask);
    struct mms_style st = {atomic_load(&p->settings.style), atomic_load(&p->settings.alpha),
                           atomic_load(&p->settings.color)};
    double t0 = mms_now_ms();
    if (m)
        mms_compose(it->frame, m->data, p->info.width, &st);
    double t1 = mms_now_ms();
    it->ms[MMS_STAGE_COMPOSE] = t1 - t0;
    double age = m && m->gen == it->gen ? ticks_ms(it->frame->pts - m->pts, it->tb) : -1;
    if (!c->have) {
        c->start_wall = t1;
        c->first_pts = it->frame->pts;
    }
    pace(p, c, it->frame->pts, it->tb);
    int64_t pts = out_pts(p, c, it->frame->pts, it->tb, it->gen);
    it->frame->pts = pts;
    c->last_out = pts;
    c->have = 1;
    pthread_mutex_lock(&p->fps_lock);
    double fps = p->fps;
    pthread_mutex_unlock(&p->fps_lock);
    struct mms_frame_meta meta = {fps, m ? m->infer_ms : 0, age, 0};
    t1 = mms_now_ms();
    hand_off(p, it->frame, &meta);
    double t2 = mms_now_ms();
    it->ms[MMS_STAGE_OUTPUT] = t2 - t1;
    it->ms[MMS_STAGE_TOTAL] = t2 - it->t_start;
    /* Live, the infer thread records its own stages (not every frame is
     * inferred); offline, a frame that reused a mask, skipped or after a
     * failed run, has none to record (a failure's zeros would pull the
     * percentiles down). */
    for (int s = 0; s <= MMS_STAGE_TOTAL; s++) {
        int net_stage = s >= MMS_STAGE_PREPROCESS && s <= MMS_STAGE_POSTPROCESS;
        if (!net_stage || (!p->live && it->made))
            mms_stats_add(&p->stats, s, it->ms[s]);
    }
    if (age >= 0)
        mms_stats_add(&p->stats, MMS_STAGE_MASK_AGE, age);
    write_meta(p, it, pts, m, age);
    mask_unref(m);
    count_written(p, c);
}

/* Whether an output that is up has taken the pause, or is about to be
 * asked: offline, the frames wait for it. */
static int pause_taken(struct mms_pipeline *p)
{
    for (int i = 0; i < p->nwriters; i++) {
        struct mms_writer_status st;
        mms_writer_status(p->writers[i], &st);
        if ((st.paused || st.controls_pending) && st.state != MMS_WRITER_FAILED &&
            st.state != MMS_WRITER_CLOSED)
            return 1;
    }
    return 0;
}

/* Offline, a pause stops the frames where they are until resumed or
 * stopped, while an output shows it; one that failed, or none that takes
 * a pause, cannot keep a file from being finished. */
static void wait_resumed(struct mms_pipeline *p)
{
    while (atomic_load(&p->paused) && !atomic_load(&p->stop) && pause_taken(p))
        nanosleep(&(struct timespec){0, 30000000L}, NULL);
}

/* While the source is silent the sinks still get frames at the nominal
 * rate: NO SIGNAL placeholders, paced by the wall clock. */
static void fill_silence(struct mms_pipeline *p, struct clock *c, double frame_ms)
{
    double now = mms_now_ms();
    if (c->next_placeholder_ms < c->last_frame_ms + 500)
        c->next_placeholder_ms = c->last_frame_ms + 500;
    while (now >= c->next_placeholder_ms && !atomic_load(&p->stop)) {
        emit_no_signal(p, c);
        c->next_placeholder_ms += frame_ms;
    }
}

/* The encoders and every output, together: an encoder flushes into its
 * members before they end. */
static void drain_writers(struct mms_pipeline *p, double grace_ms)
{
    struct mms_writer *all[2 * MMS_PIPELINE_MAX_OUTPUTS];
    int n = 0;
    for (int i = 0; i < p->nencoders; i++)
        all[n++] = p->encoders[i];
    for (int i = 0; i < p->nwriters; i++)
        all[n++] = p->writers[i];
    mms_writers_drain(all, n, grace_ms);
}

static void *compose_main(void *arg)
{
    struct mms_pipeline *p = arg;
    thread_setup(p, "mms-compose", 1);
    struct clock c = {.fps_t0 = mms_now_ms(), .last_frame_ms = mms_now_ms()};
    double frame_ms = ticks_ms(frame_ticks(p), p->info.time_base);
    for (;;) {
        void *v;
        int rc = mms_queue_pop(p->to_compose, &v, p->live ? (int)(frame_ms / 2) + 1 : -1);
        if (rc == -EPIPE)
            break;
        if (rc == -ETIMEDOUT) {
            /* A source can go quiet without failing (UDP has no hang-up):
             * half a second without a frame is a lost signal for the viewer. */
            if (mms_now_ms() - c.last_frame_ms > 500 || !atomic_load(&p->signal))
                fill_silence(p, &c, frame_ms);
            continue;
        }
        struct item *it = v;
        c.last_frame_ms = mms_now_ms();
        compose_one(p, &c, it);
        recycle_item(p, it);
        if (!p->live) {
            /* The pause moves the pacing clock with it: frames resume at
             * the source's rate, not all at once to catch up. */
            double t = mms_now_ms();
            wait_resumed(p);
            c.start_wall += mms_now_ms() - t;
        }
    }
    /* Every output written out (the recording finalised by its writer) before
     * `finished` is announced. */
    drain_writers(p, DRAIN_GRACE_MS);
    atomic_store(&p->finished, 1);
    if (PIPE_HOOK(p, finished))
        p->hooks.finished(p->hooks.opaque);
    return NULL;
}

/* ------------------------------------------------------------ setup */

/* The model file and the engine's options that o asks for. */
static int net_params(const struct mms_pipeline_opts *o, char *model, size_t len,
                      struct mms_net_opts *no, struct mms_err *err)
{
    *no = (struct mms_net_opts){.threads = o->threads, .in_h = o->net_h, .in_w = o->net_w,
                                .tta = o->tta};
    int rc = mms_precision_parse(o->precision ? o->precision : "auto", &no->precision);
    if (rc)
        return mms_err_set(err, rc, "precision '%s': unknown (fp32, bf16, int8 or auto)",
                           o->precision);
    if (o->model)
        snprintf(model, len, "%s", o->model);
    else if ((rc = mms_locate_default_model(model, len)))
        return mms_err_set(err, rc, "%s", model);
    return 0;
}

/* How many networks run side by side: offline, one per inference thread
 * (up to MAX_NETS, sharing the threads out); live, one, so that each
 * frame's mask comes as soon as it can. */
static int net_count(const struct mms_pipeline *p, int threads)
{
    if (p->live)
        return 1;
    if (threads <= 0) {
        struct mms_cpu cpu;
        mms_cpu_probe(&cpu);
        threads = cpu.cores;
    }
    return threads < 2 ? 1 : threads < MAX_NETS ? threads : MAX_NETS;
}

static int open_nets(struct mms_pipeline *p, struct mms_err *err)
{
    char model[4096];
    struct mms_net_opts no;
    int rc = net_params(&p->o, model, sizeof(model), &no, err);
    if (rc)
        return rc;
    int n = net_count(p, no.threads);
    if (n == 1)
        return mms_net_open(model, &no, &p->net, err);
    no.threads = (no.threads > 0 ? no.threads : n) / n;
    for (int i = 0; i < n; i++) {
        p->workers[i].p = p;
        if ((rc = mms_net_open(model, &no, &p->workers[i].net, err)))
            return rc;
        p->nworkers = i + 1;
    }
    p->net = p->workers[0].net;
    return 0;
}

int mms_pipeline_check_model(const struct mms_pipeline_opts *o, struct mms_err *err)
{
    char model[4096];
    struct mms_net_opts no;
    int rc = net_params(o, model, sizeof(model), &no, err);
    return rc ? rc : mms_net_check(model, &no, err);
}

/* A brightness change of a tenth of the range is motion: above the
 * shimmer of compressed video, below an instrument crossing tissue. */
#define SMOOTH_MOTION 0.1f

static int open_smooth(struct mms_pipeline *p, struct mms_err *err)
{
    const struct mms_net_info *ni = mms_net_info(p->net);
    int rc = mms_smooth_create(&p->smooth, ni->out_h, ni->out_w, p->o.smooth, SMOOTH_MOTION,
                               ni->mean, ni->std);
    return rc ? mms_err_set(err, rc, "smooth %g: cannot set up (0..0.95)", p->o.smooth) : 0;
}

static int alloc_buffers(struct mms_pipeline *p)
{
    const struct mms_net_info *ni = mms_net_info(p->net);
    size_t in = (size_t)ni->in_w * ni->in_h * 3 * sizeof(float), mask = (size_t)p->info.width * p->info.height;
    int rc = mms_queue_create(NITEMS, &p->free_items);
    rc = rc ? rc : mms_queue_create(NJOBS, &p->free_jobs);
    rc = rc ? rc : mms_queue_create(p->live ? 1 : QUEUE_CAP, &p->to_infer);
    rc = rc ? rc : mms_queue_create(QUEUE_CAP, &p->to_compose);
    rc = rc || !p->nworkers ? rc : mms_queue_create(QUEUE_CAP, &p->to_net);
    if (rc)
        return rc;
    size_t logits = (size_t)ni->out_h * ni->out_w * sizeof(float);
    for (int i = 0; i < NITEMS && p->nworkers; i++)
        if (!(p->items[i].logits = malloc(logits)))
            return -ENOMEM;
    for (int i = 0; i < NITEMS; i++) {
        struct item *it = &p->items[i];
        if (!(it->frame = av_frame_alloc()) || !(it->job.input = malloc(in)))
            return -ENOMEM;
        it->job.item = it;
        mms_queue_push(p->free_items, it);
    }
    for (int i = 0; i < NJOBS; i++) {
        if (!(p->jobs[i].input = malloc(in)))
            return -ENOMEM;
        mms_queue_push(p->free_jobs, &p->jobs[i]);
    }
    for (int i = 0; i < NMASKS; i++)
        if (!(p->masks[i].data = calloc(1, mask)))
            return -ENOMEM;
    if (!(p->no_signal = av_frame_alloc()))
        return -ENOMEM;
    p->no_signal->format = AV_PIX_FMT_YUV420P;
    p->no_signal->width = p->info.width;
    p->no_signal->height = p->info.height;
    if (av_frame_get_buffer(p->no_signal, 0) < 0)
        return -ENOMEM;
    mms_fill_frame(p->no_signal, 0x303030);
    /* A tenth of the picture's height, centred: the same card at any size. */
    int px = mms_text_px(p->info.height, 10), tw, th;
    mms_text_extent(px, "NO SIGNAL", &tw, &th);
    mms_draw_text(p->no_signal, (p->info.width - tw) / 2, (p->info.height - th) / 2, px,
                  "NO SIGNAL", 0xffffff);
    return 0;
}

int mms_pipeline_create(const struct mms_pipeline_opts *o, struct mms_pipeline **out,
                        struct mms_err *err)
{
    int rc;
    struct mms_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return mms_err_set(err, -ENOMEM, "out of memory");
    mms_stats_init(&p->stats);
    pthread_mutex_init(&p->pause_lock, NULL);
    pthread_mutex_init(&p->mask_lock, NULL);
    pthread_mutex_init(&p->fps_lock, NULL);
    pthread_mutex_init(&p->err_lock, NULL);
    pthread_mutex_init(&p->net_lock, NULL);
    pthread_cond_init(&p->net_done, NULL);
    if ((rc = mms_options_copy(&p->o, o))) {
        mms_err_set(err, rc, "out of memory");
        goto fail;
    }
    if (!p->o.input) {
        rc = mms_err_set(err, -EINVAL, "no input");
        goto fail;
    }
    mms_opt_apply(mms_pipeline_options, &p->o, &p->settings, NULL); /* atomic stores: cannot fail */
    /* The model is checked before the source is opened (a network wait);
     * how many networks to run depends on the source. */
    if ((rc = mms_pipeline_check_model(&p->o, err)))
        goto fail;
    struct mms_source_opts so = source_opts(p);
    if ((rc = mms_source_open(p->o.input, &so, &p->src, err)))
        goto fail;
    p->info = *mms_source_info(p->src);
    p->live = o->mode == MMS_MODE_LIVE || (o->mode == MMS_MODE_AUTO && p->info.live);
    if ((rc = open_nets(p, err)) || (rc = open_smooth(p, err)))
        goto fail;
    atomic_store(&p->signal, 1);
    if ((rc = alloc_buffers(p))) {
        mms_err_set(err, rc, "out of memory");
        goto fail;
    }
    /* Appended to: mmsd makes a pipeline again (a retried start, a reload,
     * a restart) and must not lose what the last one wrote. `mms run`
     * empties the file itself. */
    if (p->o.meta && !(p->meta = fopen(p->o.meta, "a"))) {
        rc = mms_err_set(err, -errno, "%s: %s", p->o.meta, strerror(errno));
        goto fail;
    }
    if ((rc = pipe_open_outputs(p, err)))
        goto fail;
    *out = p;
    return 0;
fail:
    mms_pipeline_destroy(p);
    return rc;
}

int mms_pipeline_start(struct mms_pipeline *p, struct mms_err *err)
{
    int rc = 0;
    for (; !rc && p->writers_started < p->nwriters; p->writers_started++)
        if ((rc = mms_writer_start(p->writers[p->writers_started])))
            break;
    for (; !rc && p->encoders_started < p->nencoders; p->encoders_started++)
        if ((rc = mms_writer_start(p->encoders[p->encoders_started])))
            break;
    void *(*mains[3])(void *) = {decode_main, infer_main, compose_main};
    for (int i = 0; i < 3 + p->nworkers && !rc; i++) {
        if (atomic_load(&p->inject_thread) == i + 1)
            rc = -EAGAIN;
        else
            rc = -pthread_create(&p->threads[i], NULL, i < 3 ? mains[i] : net_worker_main,
                                 i < 3 ? (void *)p : &p->workers[i - 3]);
        if (rc)
            break;
        p->started = i + 1;
    }
    if (!rc)
        return 0;
    /* No compose thread to end the writers: threads already running wind
     * down through the closed queues. A failed call calls nothing back. */
    atomic_store(&p->hooks_off, 1);
    mms_pipeline_stop(p);
    mms_queue_close(p->free_items);
    mms_queue_close(p->to_infer);
    mms_queue_close(p->to_compose);
    if (p->to_net) {
        mms_queue_close(p->to_net);
        void *v;
        /* no worker started: nobody else would finish these */
        while (p->started <= 3 && !mms_queue_pop(p->to_net, &v, 0))
            net_finished(p, v, NET_FAILED);
    }
    for (int k = 0; k < p->started; k++)
        pthread_join(p->threads[k], NULL);
    p->started = 0;
    drain_writers(p, 0);
    return mms_err_set(err, rc, "cannot start a thread: %s", strerror(-rc));
}

/* Only a flag: the source's interrupt callback reads it (a network wait,
 * an open during a reconnect), every thread checks it. */
void mms_pipeline_stop(struct mms_pipeline *p)
{
    atomic_store(&p->stop, 1);
}

int mms_pipeline_wait(struct mms_pipeline *p, int *damaged, struct mms_err *err)
{
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    p->started = 0;
    int rc = 0;
    char down[512] = "";
    /* Encoders first: each flushes into its outputs before they finish. */
    for (int i = 0; i < p->nencoders; i++)
        mms_writer_close(p->encoders[i], NULL);
    for (int i = 0; i < p->nwriters; i++) {
        struct mms_err e;
        if (mms_writer_close(p->writers[i], &e) && !rc)
            rc = mms_err_set(err, -EIO, "%s", e.msg);
        struct mms_writer_status st;
        mms_writer_status(p->writers[i], &st);
        if (st.state == MMS_WRITER_FAILED && !down[0])
            snprintf(down, sizeof(down), "%s", st.reason);
    }
    if (p->meta) {
        /* A write that failed mid-run leaves only the stream's error flag:
         * fclose succeeds if the last writes did. */
        int lost = ferror(p->meta);
        if (fclose(p->meta) && !rc)
            rc = mms_err_set(err, -EIO, "%s: %s", p->o.meta, strerror(errno));
        else if (lost && !rc)
            rc = mms_err_set(err, -EIO, "%s: some lines could not be written", p->o.meta);
    }
    p->meta = NULL;
    /* Its failures are in its status, not the run's: the recording is a
     * side output that never fails the pipeline. */
    mms_recorder_close(p->rec);
    /* An output that failed and came back lost some frames, not the run;
     * one still closed at the end did. */
    if (!rc && down[0])
        rc = mms_err_set(err, -EIO, "%s", down);
    if (damaged)
        *damaged = atomic_load(&p->decode_errors) > 0;
    return rc;
}

void mms_pipeline_destroy(struct mms_pipeline *p)
{
    if (!p)
        return;
    if (p->started) {
        mms_pipeline_stop(p);
        mms_pipeline_wait(p, NULL, NULL);
    }
    /* The outputs first: they read their encoder until they are closed. */
    for (int i = 0; i < p->nwriters; i++)
        mms_writer_free(p->writers[i]);
    for (int i = 0; i < p->nencoders; i++)
        mms_writer_free(p->encoders[i]);
    if (p->meta)
        fclose(p->meta);
    mms_recorder_free(p->rec);
    mms_source_close(p->src);
    if (!p->nworkers)
        mms_net_close(p->net);
    for (int i = 0; i < p->nworkers; i++)
        mms_net_close(p->workers[i].net);
    mms_smooth_free(&p->smooth);
    for (int i = 0; i < NITEMS; i++) {
        av_frame_free(&p->items[i].frame);
        free(p->items[i].job.input);
        free(p->items[i].logits);
    }
    for (int i = 0; i < NJOBS; i++)
        free(p->jobs[i].input);
    for (int i = 0; i < NMASKS; i++)
        free(p->masks[i].data);
    av_frame_free(&p->no_signal);
    mms_queue_destroy(p->free_items);
    mms_queue_destroy(p->free_jobs);
    mms_queue_destroy(p->to_infer);
    mms_queue_destroy(p->to_compose);
    mms_queue_destroy(p->to_net);
    mms_preprocess_free(&p->pre);
    mms_options_free(&p->o);
    mms_stats_destroy(&p->stats);
    pthread_mutex_destroy(&p->mask_lock);
    pthread_mutex_destroy(&p->fps_lock);
    pthread_mutex_destroy(&p->err_lock);
    pthread_mutex_destroy(&p->pause_lock);
    pthread_mutex_destroy(&p->net_lock);
    pthread_cond_destroy(&p->net_done);
    free(p);
}

/* The reason of an output down now, else the latest one. */
void mms_pipeline_output_error(struct mms_pipeline *p, char *buf, size_t len)
{
    int best_down = 0;
    double best_ms = -1;
    snprintf(buf, len, "%s", "");
    for (int i = 0; i < p->nwriters; i++) {
        struct mms_writer_status st;
        mms_writer_status(p->writers[i], &st);
        int down = st.state == MMS_WRITER_STALLED || st.state == MMS_WRITER_FAILED;
        if (!st.reason[0] || down < best_down || (down == best_down && st.reason_ms <= best_ms))
            continue;
        best_down = down;
        best_ms = st.reason_ms;
        snprintf(buf, len, "%s", st.reason);
    }
}

void mms_pipeline_inference_error(struct mms_pipeline *p, char *buf, size_t len)
{
    pthread_mutex_lock(&p->err_lock);
    snprintf(buf, len, "%s", p->infer_err);
    pthread_mutex_unlock(&p->err_lock);
}

void mms_pipeline_inject_inference_failures(struct mms_pipeline *p, int n)
{
    atomic_store(&p->inject_failures, n);
}

void mms_pipeline_inject_thread_failure(struct mms_pipeline *p, int index)
{
    atomic_store(&p->inject_thread, index + 1);
}

static void output_counters(struct mms_pipeline *p, struct mms_pipeline_counters *c)
{
    c->encoders = p->nencoders;
    c->noutputs = p->nwriters;
    for (int i = 0; i < p->nwriters; i++) {
        struct mms_writer_status *st = &c->outputs[i];
        mms_writer_status(p->writers[i], st);
        c->sink_errors += st->errors;
        c->sink_reopens += st->reopens;
        c->sink_stalls += st->stalls;
        c->sinks_down += st->state == MMS_WRITER_STALLED || st->state == MMS_WRITER_FAILED;
    }
}

void mms_pipeline_counters(struct mms_pipeline *p, struct mms_pipeline_counters *c)
{
    memset(c, 0, sizeof(*c));
    c->decoded = atomic_load(&p->decoded);
    c->inferred = atomic_load(&p->inferred);
    c->dropped = atomic_load(&p->dropped);
    c->skipped = atomic_load(&p->skipped);
    c->written = atomic_load(&p->written);
    c->decode_errors = atomic_load(&p->decode_errors);
    c->reconnects = atomic_load(&p->reconnects);
    c->inference_errors = atomic_load(&p->inference_errors);
    c->inference_failing = atomic_load(&p->inference_failing);
    c->precision = mms_net_info(p->net)->precision;
    c->precision_why = mms_net_info(p->net)->precision_why;
    c->flip = mms_net_info(p->net)->flip;
    c->tta_why = mms_net_info(p->net)->tta_why;
    output_counters(p, c);
    c->signal = atomic_load(&p->signal);
    c->live = p->live;
    c->finished = atomic_load(&p->finished);
    c->paused = atomic_load(&p->paused);
    c->width = p->info.width;
    c->height = p->info.height;
    c->frame_rate = p->info.frame_rate.num ? av_q2d(p->info.frame_rate) : 0;
    if (p->info.duration_us > 0 && c->frame_rate > 0)
        c->frames_expected = (int64_t)(p->info.duration_us / 1e6 * c->frame_rate + 0.5);
    pthread_mutex_lock(&p->fps_lock);
    c->fps = p->fps;
    pthread_mutex_unlock(&p->fps_lock);
}

struct mms_stats *mms_pipeline_stats(struct mms_pipeline *p)
{
    return &p->stats;
}

int mms_pipeline_set(struct mms_pipeline *p, const char *name, const char *value,
                     struct mms_err *err)
{
    return mms_opt_change(mms_pipeline_options, &p->o, name, value, &p->settings, err);
}

int mms_pipeline_update(struct mms_pipeline *p, const struct mms_pipeline_opts *o,
                        struct mms_err *err)
{
    return mms_opt_update(mms_pipeline_options, &p->o, o, &p->settings, err);
}

int mms_pipeline_pause(struct mms_pipeline *p, int on)
{
    pipe_set_paused(p, !!on);
    return 0;
}

int mms_pipeline_set_name(struct mms_pipeline *p, const char *name)
{
    if (p->started)
        return -EBUSY;
    /* Checked even without a recorder, so a bad name shows before a
     * record_dir is ever configured. */
    if (!mms_record_name_valid(name))
        return -EINVAL;
    return p->rec ? mms_recorder_set_name(p->rec, name, NULL) : 0;
}

int mms_pipeline_set_window_close(struct mms_pipeline *p, enum mms_window_close how)
{
    if (how != MMS_WINDOW_CLOSE_STOPS && how != MMS_WINDOW_CLOSE_ALONE)
        return -EINVAL;
    if (p->started)
        return -EBUSY;
    p->window_close = how;
    return 0;
}

void mms_pipeline_set_hooks(struct mms_pipeline *p, const struct mms_pipeline_hooks *h)
{
    if (p->started)
        return;
    if (h)
        p->hooks = *h;
    else
        memset(&p->hooks, 0, sizeof(p->hooks));
}

int mms_pipeline_record(struct mms_pipeline *p, int on, struct mms_err *err)
{
    if (!p->rec)
        return mms_err_set(err, -ENOTSUP, "this pipeline has no record_dir: it cannot record");
    int rc = mms_recorder_request(p->rec, on);
    if (rc == -EIO) {
        struct mms_record_status st;
        mms_recorder_status(p->rec, &st);
        return mms_err_set(err, rc, "the recording cannot start again: %s", st.error);
    }
    if (rc)
        return mms_err_set(err, -EPIPE, "the pipeline has finished: its recording has ended");
    return 0;
}

void mms_pipeline_record_status(struct mms_pipeline *p, struct mms_record_status *st)
{
    if (p->rec)
        mms_recorder_status(p->rec, st);
    else
        memset(st, 0, sizeof(*st));
}
