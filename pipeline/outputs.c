#include "pipeline/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/redact.h"
#include "io/encoder.h"
#include "io/sink.h"
#include "overlay/compose.h"
#include "overlay/window.h" /* the sink the `window` option opens */
#include "pipeline/record.h"
#include "pipeline/thread.h"

/* Live files and the recording hold this much video while they catch up
 * (a slow disk, an encoder behind for a moment) before dropping frames;
 * offline they only need enough to keep the encoder busy. */
#define BACKLOG_SECONDS 2
#define BACKLOG_MIN 8
#define BACKLOG_MAX 120
#define OFFLINE_BACKLOG 4
/* Live, packets a stream keeps while its receiver catches up; past that it
 * drops to the next keyframe, as it would show the latest frame. */
#define STREAM_BACKLOG 8
/* ------------------------------------------------------------ events */

static const char *const event_names[] = {
    "signal-lost",      "signal-back",      "output-down",
    "output-up",        "segment-opened",   "segment-closed",
    "recording-failed", "inference-failed", "inference-back",
    "output-closed",
};

const char *mms_pipeline_event_name(enum mms_pipeline_event_type t)
{
    return (unsigned)t < sizeof(event_names) / sizeof(event_names[0]) ? event_names[t] : "?";
}

void pipe_emit(struct mms_pipeline *p, enum mms_pipeline_event_type type, const char *reason,
               int64_t count)
{
    struct mms_pipeline_event ev = {.type = type, .name = "", .reason = reason ? reason : "",
                                    .file = "", .count = count};
    if (PIPE_HOOK(p, event))
        p->hooks.event(p->hooks.opaque, &ev);
}

static void output_event(void *opaque, enum mms_writer_state state, const char *reason)
{
    struct out_ref *r = opaque;
    struct mms_pipeline *p = r->p;
    struct mms_pipeline_event ev = {
        .type = state == MMS_WRITER_UP       ? MMS_EVENT_OUTPUT_UP
                : state == MMS_WRITER_CLOSED ? MMS_EVENT_OUTPUT_CLOSED
                                             : MMS_EVENT_OUTPUT_DOWN,
        .output = r->index,
        .encoder = r->encoder,
        .closed = state == MMS_WRITER_FAILED,
        .name = r->name,
        .reason = reason,
        .file = "",
    };
    if (PIPE_HOOK(p, event))
        p->hooks.event(p->hooks.opaque, &ev);
}

static void record_event(void *opaque, enum mms_record_event e, const char *file,
                         const char *reason)
{
    struct mms_pipeline *p = opaque;
    static const enum mms_pipeline_event_type types[] = {
        MMS_EVENT_SEGMENT_OPENED, MMS_EVENT_SEGMENT_CLOSED, MMS_EVENT_RECORDING_FAILED};
    struct mms_pipeline_event ev = {.type = types[e], .name = "recording", .reason = reason,
                                    .file = file};
    if (PIPE_HOOK(p, event))
        p->hooks.event(p->hooks.opaque, &ev);
}

/* ------------------------------------------------------------ pause */

/* Every output is asked; those that
 * show frames keep their own frozen frame. Under the lock, so that the
 * requests reach each writer in the order the pause changed. */
void pipe_set_paused(struct mms_pipeline *p, int on)
{
    pthread_mutex_lock(&p->pause_lock);
    if (on < 0)
        on = !atomic_load(&p->paused);
    atomic_store(&p->paused, on);
    for (int i = 0; i < p->nwriters; i++)
        mms_writer_control(p->writers[i], on ? MMS_SINK_CTRL_PAUSE : MMS_SINK_CTRL_RESUME);
    pthread_mutex_unlock(&p->pause_lock);
}

/* What an output's user did, whichever output it was (a writer thread).
 * A window closed alone is closed by its writer (the events returned); a
 * pause it held goes with it. */
static unsigned on_events(void *opaque, unsigned ev)
{
    struct mms_pipeline *p = opaque;
    unsigned act = 0;
    if (ev & MMS_SINK_EVENT_PAUSE)
        pipe_set_paused(p, -1);
    if (ev & MMS_SINK_EVENT_NEXT_STYLE)
        atomic_store(&p->settings.style,
                     (atomic_load(&p->settings.style) + 1) % MMS_STYLE_COUNT);
    if ((ev & MMS_SINK_EVENT_CLOSED) && p->window_close == MMS_WINDOW_CLOSE_STOPS)
        mms_pipeline_stop(p);
    if ((ev & MMS_SINK_EVENT_CLOSED) && p->window_close == MMS_WINDOW_CLOSE_ALONE) {
        act |= MMS_SINK_EVENT_CLOSED;
        if (atomic_load(&p->paused))
            pipe_set_paused(p, 0);
    }
    return act;
}

/* ------------------------------------------------------------ writers */

/* A network output's interrupt: its writer sets the flag when the output
 * is still busy as the pipeline ends. */
static int writer_aborted(void *opaque)
{
    return atomic_load_explicit((atomic_int *)opaque, memory_order_relaxed);
}

static struct mms_sink_params sink_params(struct mms_pipeline *p, atomic_int *abort,
                                          struct mms_encoder *enc)
{
    return (struct mms_sink_params){
        .width = p->info.width,
        .height = p->info.height,
        .time_base = p->info.time_base,
        .frame_rate = p->info.frame_rate,
        .live = p->live,
        .preset = p->o.encoder_preset,
        .title = "mmsd",
        .interrupt = abort ? writer_aborted : NULL,
        .interrupt_opaque = abort,
        .encoder = enc,
    };
}

enum output_kind { OUT_FILE, OUT_STREAM, OUT_DISPLAY, OUT_RECORDING };

static struct out_ref *out_ref(struct mms_pipeline *p, int index, int encoder, const char *name)
{
    struct out_ref *r = encoder ? &p->enc_refs[index] : &p->out_refs[index];
    *r = (struct out_ref){p, index, encoder, ""};
    mms_redact_url(name, r->name, sizeof(r->name)); /* events show it */
    return r;
}

static int backlog(const struct mms_pipeline *p)
{
    double fps = p->info.frame_rate.num ? av_q2d(p->info.frame_rate) : 25;
    int n = (int)(fps * BACKLOG_SECONDS + 0.5);
    return n < BACKLOG_MIN ? BACKLOG_MIN : n > BACKLOG_MAX ? BACKLOG_MAX : n;
}

/* The live/offline policy for outputs, in one place. Offline, every output
 * but a display (a sink that shows frames as they come, the window) gets
 * every frame, the pipeline going at the pace of the slowest. Live,
 * streams and displays show the latest frame, while files
 * and the recording keep every frame up to a backlog and then drop. An
 * output on a shared encoder takes packets, which cannot be replaced by a
 * newer one: a live stream keeps a few and then drops to a keyframe. */
static struct mms_writer_opts writer_opts(struct mms_pipeline *p, enum output_kind kind,
                                          const char *name, int packets)
{
    struct mms_writer_opts o = {.name = name, .mode = MMS_WRITER_LATEST, .capacity = 1,
                                .stop = &p->stop, .event = output_event,
                                .event_opaque = out_ref(p, p->nwriters, 0, name),
                                .on_events = on_events, .opaque = p,
                                .step_back = !p->live};
    if (kind == OUT_STREAM)
        o.abort = &p->writer_abort[p->nwriters];
    if (kind == OUT_DISPLAY)
        return o;
    if (!p->live) {
        o.mode = MMS_WRITER_BLOCK;
        o.capacity = OFFLINE_BACKLOG;
    } else if (kind != OUT_STREAM) {
        o.mode = MMS_WRITER_DROP;
        o.capacity = backlog(p);
    } else if (packets) {
        o.mode = MMS_WRITER_DROP;
        o.capacity = STREAM_BACKLOG;
    }
    return o;
}

/* ------------------------------------------------------------ encoders */

/* The encoding writers and the workers their encoders start. */
#define ENCODE_THREAD "mms-encode"

/* The outputs that want one encoding, found before anything is opened. */
struct enc_plan {
    struct mms_enc_settings s[MMS_PIPELINE_MAX_OUTPUTS];
    int keeps_every; /* bit g: encoding g feeds a file or the recording */
    int n;
};

/* Which encoding `url` joins (-1: none, it takes frames); a muxer that
 * wants headers out of band gets them from the encoding it shares. */
static int plan_encoding(struct mms_pipeline *p, struct enc_plan *plan,
                         const struct mms_sink_driver *d, const char *url, enum output_kind kind)
{
    struct mms_sink_params sp = sink_params(p, NULL, NULL);
    struct mms_enc_settings s;
    if (!mms_sink_encoding(d, url, &sp, &s))
        return -1;
    int g = 0;
    while (g < plan->n && !mms_enc_settings_equal(&plan->s[g], &s))
        g++;
    if (g == plan->n)
        plan->s[plan->n++] = s;
    plan->s[g].global_header |= s.global_header;
    if (kind != OUT_STREAM)
        plan->keeps_every |= 1 << g;
    return g;
}

struct enc_open {
    const struct mms_enc_settings *s;
    const char *name;
    struct mms_encoder **enc;
    struct mms_err *err;
    int ran;
};

static int enc_open(void *arg)
{
    struct enc_open *a = arg;
    a->ran = 1;
    return mms_encoder_open(a->s, a->name, a->enc, a->err);
}

/* Opened on a thread of its own, set up as the encoding writer will be,
 * because x264 starts its workers in the open and they inherit the
 * opener's priority: opened on the main thread, offline, they took the
 * cores from the network as decoding and composing did. */
static int open_encoder(struct mms_pipeline *p, const struct mms_enc_settings *s,
                        const char *name, struct mms_encoder **enc, struct mms_err *err)
{
    struct enc_open a = {s, name, enc, err, 0};
    int rc = mms_thread_run(ENCODE_THREAD, !p->live, enc_open, &a);
    if (rc && !a.ran)
        mms_err_set(err, rc, "%s: cannot start a thread to open the encoder", name);
    return rc;
}

/* Live, an encoder keeps every frame while a file or the recording needs
 * them, else (streams only) the latest; offline, every frame. */
static int open_encoders(struct mms_pipeline *p, const struct enc_plan *plan,
                         struct mms_err *err)
{
    for (int g = 0; g < plan->n; g++) {
        char name[64];
        snprintf(name, sizeof(name), "encoder %d", g + 1);
        struct mms_encoder *enc = NULL;
        int rc = open_encoder(p, &plan->s[g], name, &enc, err);
        if (rc)
            return rc;
        struct mms_writer_opts o = {.name = name, .mode = MMS_WRITER_LATEST, .capacity = 1,
                                    .stop = &p->stop, .event = output_event,
                                    .event_opaque = out_ref(p, g, 1, name),
                                    .thread_name = ENCODE_THREAD, .step_back = !p->live};
        if (!p->live) {
            o.mode = MMS_WRITER_BLOCK;
            o.capacity = OFFLINE_BACKLOG;
        } else if (plan->keeps_every & (1 << g)) {
            o.mode = MMS_WRITER_DROP;
            o.capacity = backlog(p);
        }
        if ((rc = mms_writer_create_encoder(enc, &o, &p->encoders[g]))) {
            mms_encoder_free(enc);
            return mms_err_set(err, rc, "out of memory");
        }
        p->nencoders++;
    }
    return 0;
}

/* writers[p->nwriters] is a new output: on encoder `g`, it is a member. */
static int add_writer(struct mms_pipeline *p, int g, struct mms_err *err)
{
    if (g >= 0) {
        int rc = mms_writer_add_member(p->encoders[g], p->writers[p->nwriters]);
        if (rc) {
            mms_writer_free(p->writers[p->nwriters]);
            p->writers[p->nwriters] = NULL;
            return mms_err_set(err, rc, "out of memory");
        }
        p->member[p->nwriters] = 1;
    }
    p->nwriters++;
    return 0;
}

/* ------------------------------------------------------------ outputs */

static enum output_kind kind_of(const struct mms_sink_driver *d)
{
    return d && d->realtime ? OUT_DISPLAY : d && d->reopen ? OUT_STREAM : OUT_FILE;
}

/* Opens `url` (with `drv`, or the driver its name asks for) on a writer of
 * its own, on encoder `g` (-1: none). A network output is opened by what
 * reopens it after a failure, on a thread of its own from the writer's
 * start: a receiver not there yet (a display still booting, a server
 * down) is an output down and retried, while the recording and the other
 * outputs go on. */
static int open_output(struct mms_pipeline *p, const struct mms_sink_driver *drv,
                       const char *url, int g, struct mms_err *err)
{
    if (!drv)
        drv = mms_sink_find(url);
    enum output_kind kind = kind_of(drv);
    struct mms_writer_opts wo = writer_opts(p, kind, url, g >= 0);
    struct mms_sink_params sp =
        sink_params(p, wo.abort, g >= 0 ? mms_writer_encoder(p->encoders[g]) : NULL);
    struct mms_sink *s = NULL;
    struct mms_reopen *r = NULL;
    int rc;
    if (!(drv && drv->reopen) && (rc = mms_sink_open(drv, url, &sp, &s, err)))
        return rc;
    if (drv && drv->reopen && (rc = mms_reopen_create(drv, url, &sp, &r)))
        goto fail;
    if ((rc = mms_writer_create_sink(s, r, &wo, &p->writers[p->nwriters])))
        goto fail;
    if (kind == OUT_DISPLAY)
        p->paced = 1;
    return add_writer(p, g, err);
fail:
    mms_reopen_free(r);
    mms_sink_close(s, NULL);
    return mms_err_set(err, rc, "out of memory");
}

/* A directory that cannot be made or written stops the recording alone
 * (its status says why): the overlay and the outputs must not depend on
 * the recorder. Bad settings still fail here. */
static int open_recorder(struct mms_pipeline *p, int g, struct mms_err *err)
{
    struct mms_sink_params sp =
        sink_params(p, NULL, g >= 0 ? mms_writer_encoder(p->encoders[g]) : NULL);
    int rc = mms_recorder_create(p->o.record_dir, NULL, p->o.segment_seconds,
                                 p->o.record_format ? p->o.record_format : "mp4", &sp, &p->rec,
                                 err);
    if (rc)
        return rc;
    struct mms_writer_opts wo = writer_opts(p, OUT_RECORDING, "recording", g >= 0);
    mms_recorder_set_events(p->rec, record_event, p);
    if ((rc = mms_writer_create_recorder(p->rec, &wo, &p->writers[p->nwriters])))
        return mms_err_set(err, rc, "out of memory");
    return add_writer(p, g, err);
}

/* The encoding a segment of the recording gets, as a file of its format. */
static const char *record_probe_name(const struct mms_pipeline *p)
{
    return p->o.record_format && !strcmp(p->o.record_format, "mkv") ? "recording.mkv"
                                                                     : "recording.mp4";
}

/* Outputs with equal encodings share one encoder: planned first, so that
 * each encoder opens knowing every muxer it feeds. Then each output, the
 * window and the recording, in that order. */
int pipe_open_outputs(struct mms_pipeline *p, struct mms_err *err)
{
    struct enc_plan plan = {0};
    int group[MMS_PIPELINE_MAX_OUTPUTS];
    for (int i = 0; i < p->o.noutputs; i++) {
        const struct mms_sink_driver *d = mms_sink_find(p->o.outputs[i]);
        group[i] = plan_encoding(p, &plan, d, p->o.outputs[i], kind_of(d));
    }
    int rec_group = p->o.record_dir ? plan_encoding(p, &plan, &mms_sink_file,
                                                    record_probe_name(p), OUT_RECORDING)
                                    : -1;
    int rc = open_encoders(p, &plan, err);
    for (int i = 0; !rc && i < p->o.noutputs; i++)
        rc = open_output(p, NULL, p->o.outputs[i], group[i], err);
    if (!rc && p->o.window)
        rc = open_output(p, &mms_sink_window, "window", -1, err);
    if (!rc && p->o.record_dir)
        rc = open_recorder(p, rec_group, err);
    return rc;
}
