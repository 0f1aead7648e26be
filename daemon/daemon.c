#include "daemon/daemon.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/locate.h"
#include "core/net.h"
#include "core/redact.h"
#include "daemon/events.h"
#include "daemon/internal.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/preview.h"
#include "overlay/text.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000
/* How often the systemd STATUS= line is looked at (pipelines come and go). */
#define STATS_MS 1000
/* Health: frames must have been written this recently. Live pipelines
 * write NO SIGNAL frames while their source is down, so silence longer
 * than STALL_MS means a stuck thread, and the watchdog is withheld. */
#define IDLE_MS 3000
#define STALL_MS 30000

static const char *const state_names[] = {"starting", "connecting", "running", "no-signal",
                                          "finished", "failed",     "stopping"};

const char *mmsd_pipe_state_name(enum mmsd_pipe_state s)
{
    return state_names[s];
}

struct mmsd_pipe *mmsd_find_pipe(struct mmsd *d, const char *name)
{
    /* A pipeline being replaced by a reload keeps its name until it is
     * gone; the running one wins. */
    struct mmsd_pipe *found = NULL;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        if (!strcmp(pp->conf.name, name) && (!found || found->stop_requested))
            found = pp;
    return found;
}

static void set_state(struct mmsd_pipe *pp, enum mmsd_pipe_state s)
{
    if (pp->state != s)
        mmsd_debug("pipeline %s: %s -> %s", pp->conf.name, state_names[pp->state],
                   state_names[s]);
    pp->state = s;
}

/* ------------------------------------------------------------ events */

static void status_line(struct mmsd *d);

/* A new pipeline starts with a clean slate. */
static void events_reset(struct mmsd_pipe *pp)
{
    pp->signal = 1;
    pp->inference_failing = 0;
    pp->infer_err[0] = pp->rec_error[0] = 0;
    memset(pp->down, 0, sizeof(pp->down));
}

static int output_key(const struct mms_pipeline_event *ev)
{
    int key = ev->encoder ? MMS_PIPELINE_MAX_OUTPUTS + ev->output : ev->output;
    return key >= 0 && key < MMSD_OUTPUT_KEYS ? key : -1;
}

/* Why the output that went down last is down; NULL when none is. */
static const char *latest_down(const struct mmsd_pipe *pp)
{
    int best = -1;
    for (int k = 0; k < MMSD_OUTPUT_KEYS; k++)
        if (pp->down[k] && (best < 0 || pp->down_ms[k] >= pp->down_ms[best]))
            best = k;
    return best < 0 ? NULL : pp->down_why[best];
}

/* Events were lost (the queue was full): what holds now, from the pipeline. */
static void resync(struct mmsd_pipe *pp)
{
    if (!pp->p)
        return;
    struct mms_pipeline_counters c;
    struct mms_record_status rec;
    mms_pipeline_counters(pp->p, &c);
    mms_pipeline_record_status(pp->p, &rec);
    pp->signal = c.signal;
    pp->inference_failing = c.inference_failing;
    mms_pipeline_inference_error(pp->p, pp->infer_err, sizeof(pp->infer_err));
    snprintf(pp->rec_error, sizeof(pp->rec_error), "%s", rec.error);
    /* A member shows its encoder's trouble as its own. */
    memset(pp->down, 0, sizeof(pp->down));
    for (int i = 0; i < c.noutputs && i < MMSD_OUTPUT_KEYS; i++) {
        pp->down[i] = c.outputs[i].state == MMS_WRITER_FAILED  ? 2
                     : c.outputs[i].state == MMS_WRITER_STALLED ? 1
                                                                : 0;
        snprintf(pp->down_why[i], sizeof(pp->down_why[i]), "%s", c.outputs[i].reason);
        pp->down_ms[i] = c.outputs[i].reason_ms;
    }
    if (pp->state == MMSD_PIPE_RUNNING || pp->state == MMSD_PIPE_NO_SIGNAL)
        set_state(pp, pp->signal ? MMSD_PIPE_RUNNING : MMSD_PIPE_NO_SIGNAL);
}

static void output_event(struct mmsd_pipe *pp, const struct mms_pipeline_event *ev)
{
    int k = output_key(ev);
    if (k < 0)
        return;
    if (ev->type == MMS_EVENT_OUTPUT_DOWN) {
        pp->down[k] = ev->closed ? 2 : 1;
        pp->down_ms[k] = mms_now_ms();
        snprintf(pp->down_why[k], sizeof(pp->down_why[k]), "%s", ev->reason);
        if (ev->closed)
            mmsd_err("pipeline %s: an output failed: %s", pp->conf.name, ev->reason);
        else
            mmsd_warn("pipeline %s: an output stalled: %s", pp->conf.name, ev->reason);
        return;
    }
    if (!pp->down[k])
        return;
    if (pp->down[k] == 2)
        mmsd_notice("pipeline %s: an output is open again: %s", pp->conf.name, ev->name);
    else
        mmsd_notice("pipeline %s: %s takes frames again", pp->conf.name, ev->name);
    pp->down[k] = 0;
    if (!latest_down(pp))
        mmsd_notice("pipeline %s: every output takes frames again", pp->conf.name);
}

/* Loop thread: what a pipeline thread said happened. NULL: some events
 * were lost. */
static void handle_event(void *arg, const struct mms_pipeline_event *ev)
{
    struct mmsd_pipe *pp = arg;
    const char *name = pp->conf.name;
    int running = pp->state == MMSD_PIPE_RUNNING || pp->state == MMSD_PIPE_NO_SIGNAL;
    if (!ev) {
        mmsd_warn("pipeline %s: events were lost; reading its state instead", name);
        resync(pp);
        return;
    }
    mmsd_debug("pipeline %s: event %s", name, mms_pipeline_event_name(ev->type));
    switch (ev->type) {
    case MMS_EVENT_SIGNAL_LOST:
        pp->signal = 0;
        mmsd_warn("pipeline %s: no signal from %s; reconnecting", name, pp->conf.o.input);
        if (running)
            set_state(pp, MMSD_PIPE_NO_SIGNAL);
        break;
    case MMS_EVENT_SIGNAL_BACK:
        pp->signal = 1;
        mmsd_notice("pipeline %s: signal is back (%lld reconnects so far)", name,
                    (long long)ev->count);
        if (running)
            set_state(pp, MMSD_PIPE_RUNNING);
        break;
    case MMS_EVENT_OUTPUT_DOWN:
    case MMS_EVENT_OUTPUT_UP:
        output_event(pp, ev);
        break;
    case MMS_EVENT_OUTPUT_CLOSED:
        mmsd_notice("pipeline %s: %s; it goes on without it", name, ev->reason);
        break;
    case MMS_EVENT_SEGMENT_OPENED:
        pp->rec_error[0] = 0;
        mmsd_info("pipeline %s: recording to %s", name, ev->file);
        break;
    case MMS_EVENT_SEGMENT_CLOSED:
        mmsd_info("pipeline %s: recorded %s", name, ev->file);
        break;
    case MMS_EVENT_RECORDING_FAILED:
        snprintf(pp->rec_error, sizeof(pp->rec_error), "%s", ev->reason);
        mmsd_err("pipeline %s: recording failed: %s", name, ev->reason);
        break;
    case MMS_EVENT_INFERENCE_FAILED:
        pp->inference_failing = 1;
        snprintf(pp->infer_err, sizeof(pp->infer_err), "%s", ev->reason);
        mmsd_err("pipeline %s: inference failed (frames keep the last good mask): %s", name,
                 ev->reason);
        break;
    case MMS_EVENT_INFERENCE_BACK:
        pp->inference_failing = 0;
        mmsd_notice("pipeline %s: inference works again (%lld failures in all)", name,
                    (long long)ev->count);
        break;
    }
    if (pp->d->ready && !pp->d->stopping)
        status_line(pp->d);
}

/* ------------------------------------------------------------ pipes */

static void pipe_start(struct mmsd_pipe *pp);
static void pipe_stop(struct mmsd_pipe *pp);
static void pipe_release(struct mmsd_pipe *pp);
static void maybe_finish_shutdown(struct mmsd *d);

static void on_frame(void *opaque, const AVFrame *f, const struct mms_frame_meta *m)
{
    struct mmsd_pipe *pp = opaque;
    (void)m;
    atomic_store(&pp->last_frame_ms, (long long)mms_now_ms());
    if (pp->preview)
        mmsd_preview_frame(pp->preview, f);
}

static void on_finished(void *opaque)
{
    struct mmsd_pipe *pp = opaque;
    uv_async_send(&pp->finished);
}

/* A pipeline thread: on to the loop (handle_event). */
static void on_event(void *opaque, const struct mms_pipeline_event *ev)
{
    struct mmsd_pipe *pp = opaque;
    mmsd_events_push(pp->events, ev);
}

static void create_work(uv_work_t *w)
{
    struct mmsd_pipe *pp = w->data;
    struct mms_pipeline *p = NULL;
    pp->work_p = NULL;
    int rc = mms_pipeline_create(&pp->conf.o, &p, &pp->work_err);
    if (!rc) {
        struct mms_pipeline_hooks h = {
            .frame = on_frame, .finished = on_finished, .event = on_event, .opaque = pp};
        mms_pipeline_set_hooks(p, &h);
        /* A window closed at the console must not end the recording and
         * the streams until the next reload. */
        mms_pipeline_set_window_close(p, MMS_WINDOW_CLOSE_ALONE);
        rc = mms_pipeline_set_name(p, pp->conf.name);
        if (rc)
            mms_err_set(&pp->work_err, rc, "out of memory");
        /* Before the first frame, or a stopped recording (privacy) would
         * open a segment before the loop could stop it again. */
        if (!rc && pp->work_record_off && pp->conf.o.record_dir)
            rc = mms_pipeline_record(p, 0, &pp->work_err);
        if (!rc)
            rc = mms_pipeline_start(p, &pp->work_err);
        if (rc)
            mms_pipeline_destroy(p);
    }
    pp->work_rc = rc;
    pp->work_p = rc ? NULL : p;
}

/* The runtime settings as the config file gives them. */
static void rt_from_conf(struct mmsd_pipe *pp)
{
    pp->rt.style = pp->conf.o.style;
    pp->rt.alpha = pp->conf.o.alpha;
    pp->rt.color = pp->conf.o.color;
    pp->rt.every = pp->conf.o.every;
    pp->rt.smooth = pp->conf.o.smooth;
}

/* Settings changed through the API outlive a restart of the pipeline. */
static void apply_runtime(struct mmsd_pipe *pp)
{
    mms_pipeline_update(pp->p, &pp->rt, NULL);
}

/* The file's runtime settings replace those in force (a PATCH's too, as a
 * reload that restarts the pipeline would), and c becomes its conf. */
static void take_runtime(struct mmsd_pipe *pp, struct mmsd_pipeline_conf *c)
{
    free(c->name);
    c->name = NULL;
    struct mms_pipeline_opts old = pp->conf.o;
    pp->conf.o = c->o;
    memset(c, 0, sizeof(*c));
    mms_options_free(&old);
    rt_from_conf(pp);
    if (pp->p)
        apply_runtime(pp);
}


/* A start or stop given through the API while the pipeline was being made
 * came after the copy its start took. */
static void record_as_asked(struct mmsd_pipe *pp)
{
    struct mms_err err;
    if (pp->record_off == pp->work_record_off || !pp->conf.o.record_dir)
        return;
    if (mms_pipeline_record(pp->p, !pp->record_off, &err))
        mmsd_err("pipeline %s: recording %s: %s", pp->conf.name,
                 pp->record_off ? "stop" : "start", err.msg);
}

static void on_retry(uv_timer_t *t)
{
    pipe_start(t->data);
}

static void create_done(uv_work_t *w, int status)
{
    struct mmsd_pipe *pp = w->data;
    (void)status;
    pp->busy = 0;
    if (!pp->work_rc) {
        pp->p = pp->work_p;
        pp->waited = 0;
        pp->attempts = 0;
        mms_backoff_reset(&pp->backoff);
        pp->error[0] = 0;
        atomic_store(&pp->last_frame_ms, (long long)mms_now_ms());
        apply_runtime(pp);
        record_as_asked(pp);
        if (pp->stop_requested) {
            pipe_stop(pp);
            return;
        }
        struct mms_pipeline_counters c;
        mms_pipeline_counters(pp->p, &c);
        set_state(pp, MMSD_PIPE_RUNNING);
        mmsd_notice("pipeline %s: running: %s, %dx%d at %.2f fps, %s, model %s", pp->conf.name,
                    pp->conf.o.input, c.width, c.height, c.frame_rate,
                    c.live ? "live" : "offline", pp->model);
        /* What happened while it started, then what holds now: a record
         * directory that could not be made is only in the status. */
        mmsd_events_drain(pp->events);
        resync(pp);
        if (pp->rec_error[0])
            mmsd_err("pipeline %s: recording failed: %s", pp->conf.name, pp->rec_error);
        return;
    }
    if (pp->stop_requested) {
        pipe_release(pp);
        return;
    }
    /* Sources come and go (a camera switched on later, a stream not yet
     * sent): keep trying, but log a repeated failure only once. */
    if (pp->attempts == 0 || strcmp(pp->error, pp->work_err.msg))
        mmsd_warn("pipeline %s: cannot start: %s; retrying (every %d s at most)", pp->conf.name,
                  pp->work_err.msg, RETRY_MAX_MS / 1000);
    snprintf(pp->error, sizeof(pp->error), "%s", pp->work_err.msg);
    pp->attempts++;
    set_state(pp, MMSD_PIPE_CONNECTING);
    uv_timer_start(&pp->retry, on_retry, mms_backoff_next(&pp->backoff), 0);
}

static void pipe_start(struct mmsd_pipe *pp)
{
    if (pp->stop_requested || pp->busy)
        return;
    events_reset(pp);
    pp->busy = 1;
    pp->work.data = pp;
    /* The work thread reads this copy: a stop given through the API while
     * the pipeline is made changes record_off, and create_done applies it. */
    pp->work_record_off = pp->record_off;
    set_state(pp, pp->attempts ? MMSD_PIPE_CONNECTING : MMSD_PIPE_STARTING);
    int rc = uv_queue_work(pp->d->loop, &pp->work, create_work, create_done);
    if (rc) {
        pp->busy = 0;
        snprintf(pp->error, sizeof(pp->error), "cannot queue work: %s", uv_strerror(rc));
        set_state(pp, MMSD_PIPE_FAILED);
    }
}

static void wait_work(uv_work_t *w)
{
    struct mmsd_pipe *pp = w->data;
    pp->work_damaged = 0;
    pp->work_rc = mms_pipeline_wait(pp->work_p, &pp->work_damaged, &pp->work_err);
}

static void destroy_pipeline(struct mmsd_pipe *pp)
{
    struct mms_pipeline *p = pp->p;
    pp->p = NULL;
    mms_pipeline_destroy(p);
}

static void wait_done(uv_work_t *w, int status)
{
    struct mmsd_pipe *pp = w->data;
    (void)status;
    pp->busy = 0;
    pp->waited = 1;
    struct mms_pipeline_counters c;
    mms_pipeline_counters(pp->p, &c);
    if (pp->work_rc) {
        snprintf(pp->error, sizeof(pp->error), "%s", pp->work_err.msg);
        mmsd_err("pipeline %s: failed: %s", pp->conf.name, pp->error);
        set_state(pp, pp->stop_requested ? MMSD_PIPE_STOPPING : MMSD_PIPE_FAILED);
    } else {
        mmsd_notice("pipeline %s: %s: %lld frames written%s", pp->conf.name,
                    pp->stop_requested ? "stopped" : "finished", (long long)c.written,
                    pp->work_damaged ? "; the input had damaged frames" : "");
        if (!pp->stop_requested)
            set_state(pp, MMSD_PIPE_FINISHED);
    }
    if (pp->stop_requested) {
        destroy_pipeline(pp);
        pipe_release(pp);
    }
}

/* Joins the pipeline's threads and finalises its outputs, off the loop. */
static void pipe_wait(struct mmsd_pipe *pp)
{
    pp->busy = 1;
    pp->work.data = pp;
    pp->work_p = pp->p;
    int rc = uv_queue_work(pp->d->loop, &pp->work, wait_work, wait_done);
    if (rc) {
        /* Cannot happen with a valid loop; finishing inline beats leaking. */
        pp->busy = 0;
        wait_work(&pp->work);
        wait_done(&pp->work, 0);
    }
}

static void on_finished_async(uv_async_t *a)
{
    struct mmsd_pipe *pp = a->data;
    if (pp->p && !pp->busy && !pp->waited)
        pipe_wait(pp);
}

static void pipe_stop(struct mmsd_pipe *pp)
{
    pp->stop_requested = 1;
    set_state(pp, MMSD_PIPE_STOPPING);
    uv_timer_stop(&pp->retry);
    if (pp->busy)
        return; /* its completion comes back here */
    if (pp->p && !pp->waited) {
        mms_pipeline_stop(pp->p);
        pipe_wait(pp);
        return;
    }
    if (pp->p)
        destroy_pipeline(pp);
    pipe_release(pp);
}

static struct mmsd_pipe *pipe_new(struct mmsd *d, struct mmsd_pipeline_conf *conf);

static void pipe_free(struct mmsd_pipe *pp)
{
    struct mmsd *d = pp->d;
    struct mmsd_pipe **link = &d->pipes;
    while (*link && *link != pp)
        link = &(*link)->next;
    struct mmsd_pipe *replacement = NULL;
    if (pp->pending && !d->stopping)
        replacement = pipe_new(d, pp->pending);
    if (pp->pending)
        free(pp->pending); /* its contents moved into the replacement, or freed below */
    if (replacement) {
        replacement->record_off = pp->record_off;
        replacement->next = pp->next;
        *link = replacement;
    } else if (*link) {
        *link = pp->next;
    }
    free(pp->conf.name);
    mms_options_free(&pp->conf.o);
    free(pp);
    if (replacement && d->ready)
        pipe_start(replacement);
    maybe_finish_shutdown(d);
}

static void handle_closed(uv_handle_t *h)
{
    struct mmsd_pipe *pp = h->data;
    if (--pp->open_handles == 0)
        pipe_free(pp);
}

/* The preview's and the event queue's. */
static void preview_closed(void *arg)
{
    struct mmsd_pipe *pp = arg;
    if (--pp->open_handles == 0)
        pipe_free(pp);
}

static void pipe_release(struct mmsd_pipe *pp)
{
    if (pp->pending && pp->d->stopping) {
        free(pp->pending->name);
        mms_options_free(&pp->pending->o);
        free(pp->pending);
        pp->pending = NULL;
    }
    pp->open_handles = pp->preview ? 4 : 3;
    uv_close((uv_handle_t *)&pp->retry, handle_closed);
    uv_close((uv_handle_t *)&pp->finished, handle_closed);
    mmsd_events_close(pp->events, preview_closed, pp);
    if (pp->preview)
        mmsd_preview_close(pp->preview, preview_closed, pp);
}

/* Takes the conf's contents (the struct itself is the caller's). */
static struct mmsd_pipe *pipe_new(struct mmsd *d, struct mmsd_pipeline_conf *conf)
{
    struct mms_err err;
    struct mmsd_pipe *pp = calloc(1, sizeof(*pp));
    if (!pp || mmsd_events_create(d->loop, handle_event, pp, &pp->events, &err)) {
        mmsd_err("pipeline %s: %s", conf->name, pp ? err.msg : "out of memory");
        free(pp);
        free(conf->name);
        mms_options_free(&conf->o);
        memset(conf, 0, sizeof(*conf)); /* taken: the caller's free must not free it again */
        return NULL;
    }
    pp->d = d;
    pp->conf = *conf;
    memset(conf, 0, sizeof(*conf));
    rt_from_conf(pp);
    mms_backoff_init(&pp->backoff, RETRY_MIN_MS, RETRY_MAX_MS);
    if (pp->conf.o.model)
        snprintf(pp->model, sizeof(pp->model), "%s", pp->conf.o.model);
    else if (mms_locate_default_model(pp->model, sizeof(pp->model)))
        snprintf(pp->model, sizeof(pp->model), "(none found)");
    uv_timer_init(d->loop, &pp->retry);
    uv_async_init(d->loop, &pp->finished, on_finished_async);
    pp->retry.data = pp;
    pp->finished.data = pp;
    /* Without a preview the pipeline still runs; only the browser misses it. */
    if (mmsd_preview_create(d->loop, &pp->preview, &err))
        mmsd_err("pipeline %s: no preview: %s", pp->conf.name, err.msg);
    return pp;
}

static void pipe_append(struct mmsd *d, struct mmsd_pipe *pp)
{
    struct mmsd_pipe **link = &d->pipes;
    while (*link)
        link = &(*link)->next;
    *link = pp;
}

/* ------------------------------------------------------------ views */

/* Errors repeat the URLs of sources and outputs, passwords and stream keys
 * included, and /healthz is open to all (core/redact.h). */
static void add_reason(struct mmsd_pipe_view *v, const char *fmt, const char *arg)
{
    char raw[sizeof(v->reasons[0]) * 2];
    if (v->nreasons == MMSD_MAX_REASONS)
        return;
    snprintf(raw, sizeof(raw), fmt, arg);
    mms_redact_text(raw, v->reasons[v->nreasons++], sizeof(v->reasons[0]));
}

static void redact_in_place(char *s, size_t size)
{
    char tmp[1024];
    mms_redact_text(s, tmp, sizeof(tmp) < size ? sizeof(tmp) : size);
    memcpy(s, tmp, strlen(tmp) + 1);
}

/* What the pipeline says of its outputs, as the API, metrics and page may
 * show it. */
static void view_redact(struct mmsd_pipe_view *v)
{
    redact_in_place(v->rec.error, sizeof(v->rec.error));
    redact_in_place(v->out_err, sizeof(v->out_err));
    redact_in_place(v->infer_err, sizeof(v->infer_err));
    for (int i = 0; i < v->c.noutputs && i < MMS_PIPELINE_MAX_OUTPUTS; i++) {
        redact_in_place(v->c.outputs[i].name, sizeof(v->c.outputs[i].name));
        redact_in_place(v->c.outputs[i].reason, sizeof(v->c.outputs[i].reason));
    }
}

/* Why the recording failed, and when it is tried again by itself. */
static void rec_reason(struct mmsd_pipe_view *v, const char *why)
{
    char line[400];
    long s = (long)((v->rec.retry_in_ms + 999) / 1000);
    if (!v->rec.retrying)
        snprintf(line, sizeof(line), "%s", why);
    else if (s > 0)
        snprintf(line, sizeof(line), "%s; retrying in %ld s", why, s);
    else
        snprintf(line, sizeof(line), "%s; retrying now", why);
    add_reason(v, "recording failed: %s", line);
}

void mmsd_pipe_view(struct mmsd *d, struct mmsd_pipe *pp, int latency, struct mmsd_pipe_view *v)
{
    memset(v, 0, sizeof(*v));
    v->pipe = pp;
    v->state = state_names[pp->state];
    if (pp->p) {
        v->have = 1;
        mms_pipeline_counters(pp->p, &v->c);
        mms_pipeline_record_status(pp->p, &v->rec);
        mms_pipeline_output_error(pp->p, v->out_err, sizeof(v->out_err));
        mms_pipeline_inference_error(pp->p, v->infer_err, sizeof(v->infer_err));
        for (int s = 0; s < MMS_STAGE_COUNT && latency; s++)
            mms_stats_summary(mms_pipeline_stats(pp->p), s, &v->lat[s], d->scratch);
        view_redact(v);
        /* Reading the counters may have been what noticed a stall: its
         * event is queued now, and this answer should know it. */
        mmsd_events_drain(pp->events);
    }
    switch (pp->state) {
    case MMSD_PIPE_STARTING:
        add_reason(v, "starting%s", "");
        break;
    case MMSD_PIPE_CONNECTING:
        add_reason(v, "cannot start: %s", pp->error);
        break;
    case MMSD_PIPE_FAILED:
        add_reason(v, "failed: %s", pp->error);
        break;
    case MMSD_PIPE_FINISHED:
        add_reason(v, "finished: the input ended%s", "");
        break;
    case MMSD_PIPE_STOPPING:
        add_reason(v, "stopping%s", "");
        break;
    case MMSD_PIPE_RUNNING:
    case MMSD_PIPE_NO_SIGNAL:
        if (!pp->signal)
            add_reason(v, "no signal: the source is lost, reconnecting%s", "");
        else if (mms_now_ms() - atomic_load(&pp->last_frame_ms) > IDLE_MS)
            add_reason(v, "no frames written for over %s s", "3");
        break;
    }
    if (v->have && pp->rec_error[0])
        rec_reason(v, pp->rec_error);
    const char *down = latest_down(pp);
    if (v->have && down)
        add_reason(v, "an output is down: %s", down);
    if (v->have && pp->inference_failing)
        add_reason(v, "inference is failing: %s", pp->infer_err);
    v->healthy = v->nreasons == 0;
}

/* Validated all first, so a request with one bad value changes nothing. */
int mmsd_pipe_set(struct mmsd_pipe *pp, const char *const *keys, const char *const *values,
                  int n, struct mms_err *err)
{
    struct mms_pipeline_opts tmp = pp->rt;
    const struct mms_option *opts[16];
    if (n > 16)
        return mms_err_set(err, -E2BIG, "at most 16 settings at once");
    for (int i = 0; i < n; i++) {
        const struct mms_option *opt = opts[i] = mms_option_find(keys[i]);
        if (!opt)
            return mms_err_set(err, -ENOENT, "unknown setting '%s'", keys[i]);
        if (!opt->runtime)
            return mms_err_set(err, -EPERM,
                               "'%s' cannot change while running (edit the config file and "
                               "reload)", keys[i]);
        int rc = mms_option_set(&tmp, opt->name, values[i], err);
        if (rc)
            return rc;
    }
    pp->rt = tmp;
    if (pp->p)
        for (int i = 0; i < n; i++)
            mms_pipeline_set(pp->p, opts[i]->name, values[i], NULL);
    for (int i = 0; i < n; i++)
        mmsd_info("pipeline %s: %s set to %s", pp->conf.name, keys[i], values[i]);
    return 0;
}

/* ------------------------------------------------------------ state */

static void state_saved(void *opaque, int rc, const char *msg)
{
    struct mmsd *d = opaque;
    if (rc) {
        mmsd_err("cannot save the recording stops: %s; a restart of mmsd would forget them",
                 msg);
    } else {
        if (d->state_unread[0])
            mmsd_notice("the recording stops are saved again: the file is readable");
        d->state_unread[0] = '\0';
        mmsd_debug("recording stops saved in %s/" MMSD_STATE_FILE, d->state.dir);
    }
    mmsd_api_saves_settled(d);
}

/* The stops in force, to disk, off the loop: the pipelines' and those kept
 * for names not configured now. A pipeline on its way out for good
 * (removed by a reload) has left its stop in d->kept; one being replaced
 * passes it on; at shutdown every stop stays. */
static void save_stops(struct mmsd *d)
{
    struct mmsd_state_names s = {0};
    if (!d->state.dir)
        return;
    int rc = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp && rc != -ENOMEM; pp = pp->next)
        if (pp->record_off && !(pp->stop_requested && !pp->pending && !d->stopping))
            rc = mmsd_state_names_add(&s, pp->conf.name);
    for (int i = 0; i < d->kept.n && rc != -ENOMEM; i++)
        rc = mmsd_state_names_add(&s, d->kept.name[i]);
    if (rc == -ENOMEM) {
        mmsd_state_names_free(&s);
        state_saved(d, -ENOMEM, "out of memory");
        return;
    }
    mmsd_state_writer_save(&d->state, &s);
}

const char *mmsd_state_error(const struct mmsd *d)
{
    if (d->state_unread[0])
        return d->state_unread;
    return d->state.error[0] ? d->state.error : NULL;
}

/* The file exists but cannot be read: which recordings were stopped is
 * unknown, so every one starts stopped. A recording that should not have
 * been made (consent withdrawn) cannot be undone; one not made is seen at
 * once (/healthz is 503 until the file is right again) and started through
 * the API. A line that is not a name is only skipped: the file was read,
 * and the names that are there hold. */
static void stops_unreadable(struct mmsd *d, const char *why)
{
    snprintf(d->state_unread, sizeof(d->state_unread),
             "cannot read the recording stops (%.500s): every recording started stopped; "
             "start those that may record through the API", why);
    mmsd_err("%s", d->state_unread);
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        pp->record_off = 1;
}

/* A pipeline removed by a reload leaves its stop to its name. */
static void keep_stop(struct mmsd *d, const struct mmsd_pipe *pp)
{
    if (pp->record_off && mmsd_state_names_add(&d->kept, pp->conf.name) == -ENOMEM)
        mmsd_err("pipeline %s: out of memory: its recording stop is forgotten", pp->conf.name);
}

/* A pipeline added by a reload is held to the stops as one configured at
 * start would be: stopped if the stops could not be read, or if a
 * recording of its name was stopped and has not been started since. */
static void stops_for_added(struct mmsd *d, struct mmsd_pipe *pp)
{
    int kept = mmsd_state_names_has(&d->kept, pp->conf.name);
    if (!kept && !d->state_unread[0])
        return;
    pp->record_off = 1;
    mmsd_state_names_remove(&d->kept, pp->conf.name);
    mmsd_notice("pipeline %s: its recording stays stopped, %s", pp->conf.name,
                kept ? "as it was stopped through the API" : "as the stops could not be read");
}

/* Another mmsd on the same state_dir is refused: it would write its own
 * stops over this one's, and a recording stopped here would start again at
 * this one's next restart. 0, or -EBUSY. */
static int lock_stops(struct mmsd *d, const char *dir)
{
    struct mms_err err;
    long holder;
    int rc = mmsd_state_lock(dir, &d->state_lock, &holder, &err);
    if (rc == -EBUSY) {
        mmsd_err("cannot start: state_dir: %s; give each mmsd its own state_dir", err.msg);
        return rc;
    }
    /* No directory, or a read-only one: the warning below says so. */
    if (rc && !access(dir, W_OK))
        mmsd_warn("state_dir: %s; a second mmsd given it would not be refused", err.msg);
    return 0;
}

/* Before any pipeline starts, so a stopped recording opens no segment; and
 * before the loop runs, so nothing is kept waiting on the disk. 0, or
 * -EBUSY: another mmsd has the state_dir. */
static int load_stops(struct mmsd *d)
{
    char dir[PATH_MAX];
    struct mmsd_state_names s = {0};
    struct mms_err err;
    int bad, first, rc = mmsd_state_dir(d->cfg.d.state_dir, dir, sizeof(dir));
    if (rc == -ENOENT) {
        mmsd_info("recording stops through the API last until mmsd restarts: no state_dir");
        return 0;
    }
    if (rc) {
        mmsd_err("state_dir: %s; recording stops through the API last until mmsd restarts",
                 strerror(-rc));
        return 0;
    }
    if ((rc = lock_stops(d, dir)))
        return rc;
    if ((rc = mmsd_state_read(dir, &s, &bad, &first, &err)))
        stops_unreadable(d, err.msg);
    if (bad)
        mmsd_warn("%s/" MMSD_STATE_FILE ": %d line%s that %s not a pipeline name skipped "
                  "(the first is line %d)", dir, bad, bad == 1 ? "" : "s",
                  bad == 1 ? "is" : "are", first);
    for (struct mmsd_pipe *pp = d->pipes; pp && !rc; pp = pp->next) {
        if (!mmsd_state_names_has(&s, pp->conf.name))
            continue;
        pp->record_off = 1;
        mmsd_state_names_remove(&s, pp->conf.name);
        mmsd_notice("pipeline %s: its recording stays stopped, as it was stopped through the "
                    "API", pp->conf.name);
    }
    /* The rest wait for their pipelines to come back. */
    d->kept = s;
    int unwritable = access(dir, W_OK) ? errno : 0;
    if (unwritable)
        mmsd_warn("state_dir %s: %s: recording stops cannot be saved", dir, strerror(unwritable));
    if (mmsd_state_writer_init(&d->state, d->loop, dir, state_saved, d))
        mmsd_err("cannot keep the recording stops: out of memory");
    /* Said from the start, not only after a stop fails to be saved: an
     * unmounted disk also means that stops saved on it were not read. */
    else if (unwritable)
        snprintf(d->state.error, sizeof(d->state.error),
                 "%.400s/" MMSD_STATE_FILE ": %s: the recording stops cannot be read or saved",
                 dir, strerror(unwritable));
    return 0;
}

int mmsd_pipe_record(struct mmsd_pipe *pp, int on, struct mms_err *err)
{
    /* Not running (starting, reconnecting, failed, finished): no less a
     * stop, which the next start obeys; the camera coming back must not
     * restart a recording stopped for privacy. */
    int rc = 1;
    if (mmsd_pipe_running(pp)) {
        rc = mms_pipeline_record(pp->p, on, err);
        /* -EPIPE: its recording ended with the run, which is stopping or
         * has finished; the next start obeys. */
        if (rc < 0 && rc != -EPIPE)
            return rc;
        rc = rc == -EPIPE;
    }
    pp->record_off = !on;
    save_stops(pp->d);
    return rc;
}

int mmsd_pipe_running(const struct mmsd_pipe *pp)
{
    return pp->p && !pp->waited;
}

/* ------------------------------------------------------------ timers */

static void status_line(struct mmsd *d)
{
    char line[400];
    int n = 0, len = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        n++;
    len = snprintf(line, sizeof(line), "STATUS=%d pipeline%s", n, n == 1 ? "" : "s");
    for (struct mmsd_pipe *pp = d->pipes; pp && len < (int)sizeof(line) - 1; pp = pp->next)
        len += snprintf(line + len, sizeof(line) - len, "%s %s %s", pp == d->pipes ? ":" : ",",
                        pp->conf.name, state_names[pp->state]);
    /* Only changes: systemd shows the latest, and a datagram a second adds nothing. */
    if (strcmp(line, d->last_status)) {
        mmsd_notify("%s", line);
        snprintf(d->last_status, sizeof(d->last_status), "%s", line);
    }
}

static void on_stats(uv_timer_t *t)
{
    struct mmsd *d = t->data;
    if (d->ready && !d->stopping)
        status_line(d);
}

static void on_watchdog(uv_timer_t *t)
{
    struct mmsd *d = t->data;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next) {
        if (pp->p && !pp->waited && !pp->busy &&
            mms_now_ms() - atomic_load(&pp->last_frame_ms) > STALL_MS) {
            mmsd_err("pipeline %s: no frame for %d s; withholding the watchdog", pp->conf.name,
                     STALL_MS / 1000);
            return;
        }
    }
    mmsd_notify("WATCHDOG=1");
}

/* ------------------------------------------------------------ warm-up */

static int warm_one(const char *model, int threads, const char *precision,
                    struct mms_err *err)
{
    struct mms_net *net;
    struct mms_net_opts no = {.threads = threads};
    if (!precision)
        precision = "auto";
    if (mms_precision_parse(precision, &no.precision))
        return mms_err_set(err, -EINVAL, "precision %s: unknown", precision);
    mmsd_notify("STATUS=loading model %s", model);
    int rc = mms_net_open(model, &no, &net, err);
    if (rc)
        return rc;
    mmsd_notify("STATUS=warm-up inference");
    rc = mms_net_run(net, err);
    mms_net_close(net);
    return rc;
}

/* Every distinct model runs once before READY=1: a truncated or foreign
 * model file fails the start, not the first frame hours later. */
static void warm_work(uv_work_t *w)
{
    struct mmsd *d = w->data;
    const char *done[64];
    int ndone = 0, rc = 0;
    char def[1024];
    if (!d->pipes) {
        const char *m = d->cfg.d.model;
        if (!m && (rc = mms_locate_default_model(def, sizeof(def))))
            mms_err_set(&d->warm_err, rc, "%s", def);
        if (!rc)
            rc = warm_one(m ? m : def, d->cfg.d.threads, NULL, &d->warm_err);
    }
    for (struct mmsd_pipe *pp = d->pipes; pp && !rc; pp = pp->next) {
        int seen = 0;
        for (int i = 0; i < ndone; i++)
            seen |= !strcmp(done[i], pp->model);
        if (seen)
            continue;
        if (!pp->conf.o.model && mms_locate_default_model(def, sizeof(def))) {
            rc = mms_err_set(&d->warm_err, -ENOENT, "pipeline %s: %s", pp->conf.name, def);
            break;
        }
        rc = warm_one(pp->model, pp->conf.o.threads, pp->conf.o.precision, &d->warm_err);
        if (ndone < 64)
            done[ndone++] = pp->model;
    }
    d->warm_rc = rc;
}

static void shutdown_daemon(struct mmsd *d);

static void warm_done(uv_work_t *w, int status)
{
    struct mmsd *d = w->data;
    (void)status;
    d->warming = 0;
    if (d->warm_rc) {
        mmsd_err("cannot start: model: %s", d->warm_err.msg);
        d->exit_code = 1;
    }
    /* A stop that came during the warm-up left the pipelines to now. */
    if (d->warm_rc || d->stopping) {
        shutdown_daemon(d);
        return;
    }
    d->ready = 1;
    int n = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next, n++)
        pipe_start(pp);
    /* The bound address: with port 0 in listen, the port the kernel chose. */
    mmsd_notice("ready: %d pipeline%s, API on http://%s", n, n == 1 ? "" : "s",
                d->http ? mmsd_http_address(d->http) : d->cfg.d.listen);
    mmsd_notify("READY=1");
    status_line(d);
}

/* ------------------------------------------------------------ lifecycle */

static void http_closed(void *arg)
{
    struct mmsd *d = arg;
    d->http = NULL;
}

static void maybe_finish_shutdown(struct mmsd *d)
{
    if (!d->stopping || d->pipes || d->warming || d->closed)
        return;
    d->closed = 1;
    mmsd_api_answer_saving(d);
    if (d->http)
        mmsd_http_close(d->http, http_closed, d);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->stats_timer, NULL);
    uv_close((uv_handle_t *)&d->watchdog_timer, NULL);
    uv_close((uv_handle_t *)&d->saving_timer, NULL);
    mmsd_notice("stopped");
}

/* Called again (a second signal, the warm-up's end) it goes on from where
 * it is. The warm-up reads the pipelines on a worker thread, so while it
 * runs they are left alone, to be stopped when it is done. */
static void shutdown_daemon(struct mmsd *d)
{
    if (!d->stopping) {
        d->stopping = 1;
        mmsd_notify("STOPPING=1");
        mmsd_notice("stopping: finalising every recording");
    }
    struct mmsd_pipe *next;
    for (struct mmsd_pipe *pp = d->warming ? NULL : d->pipes; pp; pp = next) {
        next = pp->next; /* pipe_stop may free pp */
        if (!pp->stop_requested)
            pipe_stop(pp);
    }
    maybe_finish_shutdown(d);
}

static struct mmsd_pipeline_conf *conf_take(struct mmsd_pipeline_conf *c)
{
    struct mmsd_pipeline_conf *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    *m = *c;
    memset(c, 0, sizeof(*c));
    return m;
}

static void conf_drop(struct mmsd_pipeline_conf *c)
{
    if (!c)
        return;
    free(c->name);
    mms_options_free(&c->o);
    free(c);
}

#define SWAP(a, b)                                                                             \
    do {                                                                                       \
        char *tmp_ = (a);                                                                      \
        (a) = (b);                                                                             \
        (b) = tmp_;                                                                            \
    } while (0)

static void reload_daemon_options(struct mmsd *d, struct mmsd_config *nc)
{
    /* The font too: pipelines draw their NO SIGNAL card when they start. */
    static const char *const restart_only[] = {"listen", "token_file", "allowed_hosts", "font",
                                               "state_dir"};
    for (size_t i = 0; i < sizeof(restart_only) / sizeof(*restart_only); i++) {
        const struct mms_option *opt = mmsd_option_find(restart_only[i]);
        char a[512];
        if (mms_opt_equal_one(opt, &d->cfg.d, &nc->d))
            continue;
        mmsd_option_format(&d->cfg.d, opt, a, sizeof(a)); /* for the message alone */
        mmsd_warn("reload: %s changes only with a restart; still %s", opt->name,
                  a[0] ? a : "unset");
    }
    mmsd_log_set_level(nc->d.log_level);
    /* The new section comes in force, but for what needs a restart; the
     * old one leaves with nc. */
    struct mmsd_options old = d->cfg.d;
    d->cfg.d = nc->d;
    nc->d = old;
    SWAP(d->cfg.d.listen, nc->d.listen);
    SWAP(d->cfg.d.token_file, nc->d.token_file);
    SWAP(d->cfg.d.allowed_hosts, nc->d.allowed_hosts);
    SWAP(d->cfg.d.font, nc->d.font);
    SWAP(d->cfg.d.state_dir, nc->d.state_dir);
}

/* A pipeline as a reload found it, copied: the loop goes on changing it. */
struct reload_seen {
    struct mmsd_pipeline_conf conf;
    struct mmsd_pipeline_conf pending; /* its replacement's, when stopping for one */
    int stopping;
};

/* A reload's file and models are read on the threadpool: a model on a
 * hung network mount must not stall the API and the previews. */
struct reload_job {
    uv_work_t work;
    struct mmsd *d;
    struct reload_seen *running; /* the pipelines when the reload began */
    int nrunning;
    struct mmsd_config nc;
    int rc;
    struct mms_err err;
    /* Per section of nc: whether its model was checked, and the answer. */
    char *checked;
    int *model_rc;
    struct mms_err *model_err;
};

/* Only a running pipeline whose section changes more than its runtime
 * settings is restarted, so only its model is read: a model on a hung
 * mount holds no reload of other pipelines. One stopping for a
 * replacement is compared with the replacement, which may be running by
 * the time the reload is applied. */
static int reload_needs_check(const struct reload_job *j, const struct mmsd_pipeline_conf *c)
{
    for (int i = 0; i < j->nrunning; i++) {
        const struct reload_seen *r = &j->running[i];
        if (strcmp(r->conf.name, c->name))
            continue;
        if (r->stopping)
            return r->pending.name && !mmsd_pipeline_conf_same_but_runtime(&r->pending, c);
        return !mmsd_pipeline_conf_same_but_runtime(&r->conf, c);
    }
    return 0;
}

static void reload_work(uv_work_t *w)
{
    struct reload_job *j = w->data;
    if ((j->rc = mmsd_config_load(&j->nc, j->d->config_path, &j->err)))
        return;
    int n = j->nc.npipelines;
    j->checked = calloc((size_t)n + 1, sizeof(*j->checked));
    j->model_rc = calloc((size_t)n + 1, sizeof(*j->model_rc));
    j->model_err = calloc((size_t)n + 1, sizeof(*j->model_err));
    if (!j->checked || !j->model_rc || !j->model_err) {
        j->rc = mms_err_set(&j->err, -ENOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct mmsd_pipeline_conf *c = &j->nc.pipelines[i];
        if ((j->checked[i] = (char)reload_needs_check(j, c)))
            j->model_rc[i] = mms_pipeline_check_model(&c->o, &j->model_err[i]);
    }
}

static void reload_job_free(struct reload_job *j)
{
    for (int i = 0; i < j->nrunning; i++) {
        struct reload_seen *r = &j->running[i];
        free(r->conf.name);
        mms_options_free(&r->conf.o);
        free(r->pending.name);
        mms_options_free(&r->pending.o);
    }
    free(j->running);
    mmsd_config_free(&j->nc);
    free(j->checked);
    free(j->model_rc);
    free(j->model_err);
    free(j);
}

static void reload_done(uv_work_t *w, int status);

static int copy_conf(struct mmsd_pipeline_conf *dst, const struct mmsd_pipeline_conf *src)
{
    return !(dst->name = strdup(src->name)) || mms_options_copy(&dst->o, &src->o);
}

/* What the worker compares the file with: the pipelines' sections now. */
static int reload_snapshot(struct mmsd *d, struct reload_job *j)
{
    int n = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        n++;
    if (!(j->running = calloc((size_t)n + 1, sizeof(*j->running))))
        return UV_ENOMEM;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next) {
        /* Counted first: reload_job_free takes the part made. */
        struct reload_seen *r = &j->running[j->nrunning++];
        r->stopping = pp->stop_requested;
        if (copy_conf(&r->conf, &pp->conf) || (pp->pending && copy_conf(&r->pending, pp->pending)))
            return UV_ENOMEM;
    }
    return 0;
}

/* SIGHUP: pipelines added, removed or changed; the unchanged ones are not
 * touched (their recordings and previews go on). One reload at a time: a
 * SIGHUP during one reads the file again once it is done. */
static void reload(struct mmsd *d)
{
    if (d->stopping)
        return;
    if (!d->ready) {
        mmsd_warn("reload: ignored while starting");
        return;
    }
    if (d->reloading) {
        d->reload_again = 1;
        mmsd_notice("reload: one is being read; the file is read again after it");
        return;
    }
    struct reload_job *j = calloc(1, sizeof(*j));
    if (!j) {
        mmsd_err("reload: out of memory; the running config stays");
        return;
    }
    j->d = d;
    j->work.data = j;
    int rc = reload_snapshot(d, j);
    if (rc || (rc = uv_queue_work(d->loop, &j->work, reload_work, reload_done))) {
        mmsd_err("reload: cannot start: %s; the running config stays", uv_strerror(rc));
        reload_job_free(j);
        return;
    }
    d->reloading = 1;
}

/* The worker's answer; checked here, on the loop, only when the pipeline
 * changed after the reload began (a replacement started meanwhile). */
static int model_refused(const struct reload_job *j, int i, struct mms_err *err)
{
    if (!j->checked[i])
        return mms_pipeline_check_model(&j->nc.pipelines[i].o, err);
    *err = j->model_err[i];
    return j->model_rc[i];
}

/* The reload read and checked off the loop, applied on it. */
static void reload_apply(struct mmsd *d, struct reload_job *j)
{
    struct mms_err err;
    struct mmsd_config nc = j->nc;
    memset(&j->nc, 0, sizeof(j->nc)); /* nc is freed here */
    reload_daemon_options(d, &nc);
    int added = 0, removed = 0, changed = 0, refused = 0;
    struct mmsd_pipe *next;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = next) {
        next = pp->next;
        struct mmsd_pipeline_conf *c = NULL;
        int ci = -1;
        for (int i = 0; i < nc.npipelines; i++)
            if (nc.pipelines[i].name && !strcmp(nc.pipelines[i].name, pp->conf.name))
                c = &nc.pipelines[(ci = i)];
        if (pp->stop_requested) {
            /* Already going: what the file now says replaces it, and a
             * section gone from the file takes its replacement with it. */
            if (c) {
                conf_drop(pp->pending);
                pp->pending = conf_take(c);
                /* The replacement takes its stop (pipe_free). */
                if (pp->pending)
                    mmsd_state_names_remove(&d->kept, pp->conf.name);
            } else if (pp->pending) {
                mmsd_notice("pipeline %s: removed by reload", pp->conf.name);
                removed++;
                keep_stop(d, pp);
                conf_drop(pp->pending);
                pp->pending = NULL;
            }
            continue;
        }
        if (!c) {
            mmsd_notice("pipeline %s: removed by reload", pp->conf.name);
            removed++;
            keep_stop(d, pp);
            pipe_stop(pp);
        } else if (mmsd_pipeline_conf_same(c, &pp->conf)) {
            free(c->name);
            mms_options_free(&c->o);
            memset(c, 0, sizeof(*c));
        } else if (mmsd_pipeline_conf_same_but_runtime(c, &pp->conf)) {
            /* Only settings a running pipeline takes: applied without a
             * restart, so the recording goes on in its segment. */
            mmsd_notice("pipeline %s: settings changed by reload; applied without a restart",
                        pp->conf.name);
            changed++;
            take_runtime(pp, c);
        } else if (model_refused(j, ci, &err)) {
            /* Restarted, it could not start again: a camera left
             * unrecorded for a typo or a half-copied file. */
            mmsd_err("reload: pipeline %s: cannot load its model: %s; it keeps running as it "
                     "was", pp->conf.name, err.msg);
            refused++;
            free(c->name);
            mms_options_free(&c->o);
            memset(c, 0, sizeof(*c));
        } else {
            mmsd_notice("pipeline %s: changed by reload; restarting it", pp->conf.name);
            changed++;
            pp->pending = conf_take(c);
            pipe_stop(pp);
        }
    }
    for (int i = 0; i < nc.npipelines; i++) {
        if (!nc.pipelines[i].name)
            continue;
        struct mmsd_pipe *pp = pipe_new(d, &nc.pipelines[i]);
        if (!pp)
            continue;
        mmsd_notice("pipeline %s: added by reload", pp->conf.name);
        added++;
        stops_for_added(d, pp);
        pipe_append(d, pp);
        pipe_start(pp);
    }
    mmsd_config_free(&nc);
    /* A removed pipeline's stop is kept for its name (d->kept), an added
     * one may have taken one; one that is changed is kept by its
     * replacement. */
    if (removed || added)
        save_stops(d);
    mmsd_notice("reloaded %s: %d added, %d removed, %d changed, %d refused", d->config_path,
                added, removed, changed, refused);
}

static void reload_done(uv_work_t *w, int status)
{
    struct reload_job *j = w->data;
    struct mmsd *d = j->d;
    d->reloading = 0;
    if (status == 0 && !d->stopping) {
        if (j->rc)
            mmsd_err("reload: %s; the running config stays", j->err.msg);
        else
            reload_apply(d, j);
    }
    reload_job_free(j);
    if (d->reload_again && !d->stopping) {
        d->reload_again = 0;
        reload(d);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct mmsd *d = s->data;
    if (signum == SIGHUP) {
        reload(d);
        return;
    }
    if (d->stopping)
        mmsd_notice("still stopping: finalising recordings");
    shutdown_daemon(d);
}

/* The whole file, less the line end: a token is never cut short. */
static int read_token(const char *path, char **out, struct mms_err *err)
{
    char *buf = NULL;
    FILE *f = fopen(path, "r");
    int rc = 0;
    if (!f)
        return mms_err_set(err, -errno, "token_file %s: %s", path, strerror(errno));
    /* Room for the longest token, its line end and some blanks. */
    const size_t size = MMSD_HTTP_TOKEN_MAX + 64;
    if (!(buf = malloc(size + 1))) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    size_t n = fread(buf, 1, size, f);
    if (ferror(f)) {
        rc = mms_err_set(err, -EIO, "token_file %s: cannot read it", path);
        goto fail;
    }
    int whole = n < size;
    while (n && strchr("\r\n \t", buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (!n)
        rc = mms_err_set(err, -EINVAL, "token_file %s: empty", path);
    else if (!whole || n > MMSD_HTTP_TOKEN_MAX)
        rc = mms_err_set(err, -EINVAL, "token_file %s: the token is longer than %d characters",
                         path, MMSD_HTTP_TOKEN_MAX);
    else if (strlen(buf) != n || strcspn(buf, " \t\r\n") != n)
        rc = mms_err_set(err, -EINVAL,
                         "token_file %s: the token has a blank, a line break or a NUL inside",
                         path);
    if (rc)
        goto fail;
    fclose(f);
    *out = buf;
    return 0;
fail:
    fclose(f);
    free(buf);
    return rc;
}

/* The address, and the token it needs: what start_http refuses, without
 * binding (*token stays NULL without token_file). */
static int check_access(const struct mmsd_config *cfg, char **token, struct mms_err *err)
{
    struct sockaddr_storage ss;
    int rc = mmsd_listen_parse(cfg->d.listen, &ss, err);
    if (rc)
        return rc;
    if (cfg->d.token_file && (rc = read_token(cfg->d.token_file, token, err)))
        return rc;
    if (!mmsd_listen_is_loopback(&ss) && !*token)
        return mms_err_set(err, -EACCES,
                           "listen %s is not a loopback address: set token_file, so that "
                           "nobody else on the network can control the pipelines",
                           cfg->d.listen);
    return 0;
}

static int start_http(struct mmsd *d, struct mms_err *err)
{
    int rc = check_access(&d->cfg, &d->token, err);
    if (rc)
        return rc;
    struct mmsd_http_opts ho;
    mmsd_api_http_opts(d, &ho);
    return mmsd_http_create(d->loop, &ho, &d->http, err);
}

static int start_loop_handles(struct mmsd *d)
{
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    int rc = uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    rc = rc ? rc : uv_signal_start(&d->sig_int, on_signal, SIGINT);
    rc = rc ? rc : uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    uv_timer_init(d->loop, &d->stats_timer);
    uv_timer_init(d->loop, &d->watchdog_timer);
    uv_timer_init(d->loop, &d->saving_timer);
    d->stats_timer.data = d->watchdog_timer.data = d->saving_timer.data = d;
    d->saving_tail = &d->saving;
    rc = rc ? rc : uv_timer_start(&d->stats_timer, on_stats, STATS_MS, STATS_MS);
    uint64_t wd = mmsd_notify_watchdog_usec();
    if (!rc && wd) {
        uint64_t ms = wd / 2000 ? wd / 2000 : 1;
        rc = uv_timer_start(&d->watchdog_timer, on_watchdog, ms, ms);
        mmsd_info("watchdog: every %llu ms", (unsigned long long)ms);
    }
    return rc;
}

int mmsd_daemon_check(const struct mmsd_config *cfg, struct mms_err *err)
{
    char *token = NULL;
    int rc = check_access(cfg, &token, err);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    for (int i = 0; !rc && i < cfg->npipelines; i++) {
        const struct mmsd_pipeline_conf *c = &cfg->pipelines[i];
        struct mms_err e;
        rc = mms_pipeline_check_model(&c->o, &e);
        if (rc)
            mms_err_set(err, rc, "pipeline %s: model: %s", c->name, e.msg);
    }
    return rc;
}

/* libuv's threadpool (4 threads unless UV_THREADPOOL_SIZE says) carries
 * each pipeline's start and end, the state file and a reload's reading:
 * a start stuck opening a camera holds a thread, and four of them would
 * hold a reload and every save behind them. Read by libuv once, at its
 * first work; a reload that adds pipelines finds room in the spare. */
static void size_threadpool(int npipelines)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", npipelines < 6 ? 16 : npipelines > 500 ? 1024 : 4 + 2 * npipelines);
    setenv("UV_THREADPOOL_SIZE", n, 0); /* the user's own value wins */
}

int mmsd_daemon_run(struct mmsd_config *cfg)
{
    struct mmsd d = {.state_lock = -1};
    struct mms_err err;
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc) {
        mmsd_err("cannot start: %s", uv_strerror(rc));
        mmsd_config_free(cfg);
        return 1;
    }
    d.loop = &loop;
    d.cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    d.started_ms = mms_now_ms();
    mmsd_log_set_level(d.cfg.d.log_level);
    mmsd_log_capture_ffmpeg();
    /* Before any pipeline draws, so a font that does not load is said once,
     * here, at start-up; text then goes on in the bitmap font. */
    if (mms_text_set_font(d.cfg.d.font, &err))
        mmsd_warn("%s; text on video is drawn with the built-in 8x8 font", err.msg);
    d.config_path = d.cfg.path;
    d.scratch = malloc(sizeof(float) * MMS_STATS_RING);
    if (!d.scratch) {
        mmsd_err("cannot start: out of memory");
        d.exit_code = 1;
        goto out;
    }
    size_threadpool(d.cfg.npipelines);
    mmsd_notify("STATUS=starting");
    for (int i = 0; i < d.cfg.npipelines; i++) {
        struct mmsd_pipe *pp = pipe_new(&d, &d.cfg.pipelines[i]);
        if (pp)
            pipe_append(&d, pp);
    }
    if ((rc = start_loop_handles(&d))) {
        mmsd_err("cannot start: %s", uv_strerror(rc));
        d.exit_code = 1;
        shutdown_daemon(&d);
    } else if (load_stops(&d)) {
        d.exit_code = 1;
        shutdown_daemon(&d);
    } else if ((rc = start_http(&d, &err))) {
        mmsd_err("cannot start: %s", err.msg);
        d.exit_code = 1;
        shutdown_daemon(&d);
    } else {
        mmsd_notice("mmsd starting: %s, %d pipeline%s", d.config_path, d.cfg.npipelines,
                    d.cfg.npipelines == 1 ? "" : "s");
        d.warming = 1;
        d.warm_work.data = &d;
        if ((rc = uv_queue_work(&loop, &d.warm_work, warm_work, warm_done))) {
            d.warming = 0;
            mmsd_err("cannot start: %s", uv_strerror(rc));
            d.exit_code = 1;
            shutdown_daemon(&d);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
out:
    /* The loop ran until every write was done; this only catches a write
     * that could not be queued. */
    mmsd_state_writer_close(&d.state);
    mmsd_state_names_free(&d.kept);
    if (d.state_lock >= 0)
        close(d.state_lock);
    uv_loop_close(&loop);
    free(d.scratch);
    free(d.token);
    mmsd_config_free(&d.cfg);
    return d.exit_code;
}
