#ifndef MMS_PIPELINE_H
#define MMS_PIPELINE_H

/*
 * One video source through the network to any number of sinks:
 *
 *   decode thread    source -> YUV420P frame -> RGB at the network size
 *   infer thread     normalise -> network -> mask at the frame size
 *   compose thread   draw the mask -> a reference to every encoder's and
 *                    frame output's writer
 *   writer threads   one per encoding (encode once, packets to its outputs)
 *                    and one per output (file, stream, window, recording)
 *
 * Offline (files, by default): bounded queues, every frame segmented and
 * written in order, none dropped. Live (devices and network inputs):
 * decoding never waits; inference takes the latest frame from a one-slot
 * mailbox, while every decoded frame is composed with the most recent mask
 * and written, so the display keeps the source's rate. A file or a lavfi
 * graph in live mode is read at its own frame rate (ffmpeg's -re), as a
 * camera would deliver it; offline, it goes as fast as it can. A live
 * source that fails is reopened with backoff (0.5 s doubling to 8 s) while
 * the sinks get NO SIGNAL frames.
 *
 * Offline on several inference threads, decoding hands frames to one
 * single-threaded network per thread (up to 4, threads "mms-infer") and
 * the infer thread, as "mms-post", makes their masks in frame order: the
 * same masks as
 * one network would give, without one network's threads waiting at a
 * barrier for a thread that decoding or encoding preempted. Live keeps one
 * network on all the threads: a frame's mask comes sooner.
 *
 * Every frame carries its per-stage times and the time of the frame its
 * mask came from (mask age).
 *
 * Each output writes on its own thread (pipeline/writer.h), so a slow or
 * stalled one delays only itself. Live, streams and the window show the
 * latest frame; files and the recording keep every frame up to a backlog
 * of about 2 s and then drop (counted per output). Offline, every output
 * but the window gets every frame and the slowest sets the pace. An
 * output in one write for over a second is reported down (stalled) until
 * it takes frames again; a failed network output is reopened with backoff,
 * and a network output is first opened the same way, on a thread of its
 * own once the pipeline starts, so that a receiver not there yet is an
 * output down, never a pipeline that cannot start or a late recording.
 * Outputs that want the same encoding (io/encoder.h; all of them live,
 * offline the files and the recording) share one encoder: each frame is
 * encoded once per encoding and the packets go to each output's writer,
 * which only muxes.
 *
 * With record_dir set, every frame composed is also recorded into segment
 * files there (pipeline/record.h), making the directory when it is
 * missing; a recording that fails, or whose directory cannot be made,
 * stops alone and the rest of the pipeline goes on.
 *
 * A stop never waits on the network: the source's interrupt callback reads
 * the stop flag (an open during a reconnect included), and a network
 * output still busy a second after the last frame is cut off.
 */

#include <stdint.h>

#include "core/error.h"
#include "io/sink.h"
#include "pipeline/options.h"
#include "pipeline/record.h"
#include "pipeline/stats.h"
#include "pipeline/writer.h"

/* The outputs, the window and the recording. */
#define MMS_PIPELINE_MAX_OUTPUTS (MMS_MAX_OUTPUTS + 2)

struct mms_pipeline;

struct mms_pipeline_counters {
    int64_t decoded, inferred, dropped, written;
    /* Live: decoded frames replaced by the next one before they were composed
     * (compose or a frame hook behind): never shown, written or recorded. */
    int64_t skipped;
    int64_t decode_errors, reconnects;
    int64_t inference_errors; /* failed inferences: their frames show an older mask */
    int inference_failing;    /* the latest inference failed */
    int64_t sink_errors;  /* failed writes: the output was closed */
    int64_t sink_reopens; /* network outputs opened again after one */
    int64_t sink_stalls;  /* times an output was found stalled */
    int sinks_down;       /* outputs down now: stalled, or closed after a failure
                             (network ones are being reopened); not a window its user
                             closed (MMS_WINDOW_CLOSE_ALONE) */
    int encoders;         /* encoders running: one per distinct encoding, shared by the
                             outputs (and the recording) that want it */
    int noutputs;         /* each output, the window and the recording, in that order */
    struct mms_writer_status outputs[MMS_PIPELINE_MAX_OUTPUTS];
    int signal;     /* the source is delivering frames */
    int live;       /* running in live mode */
    int finished;   /* all threads are done */
    int paused;     /* paused (mms_pipeline_pause, or a key in the window) */
    double fps;     /* frames written per second, recent */
    int64_t frames_expected; /* from the source's duration, 0 if unknown */
    int width, height;
    double frame_rate;
    const char *precision;   /* what the network runs in: "fp32" or "int8" */
    const char *precision_why; /* how that was chosen; both live as long as p */
    int flip;                /* test-time flip: two network runs a frame */
    const char *tta_why;     /* how that was chosen; lives as long as p */
};

/* Opens the model, the source and the file outputs (network outputs open
 * once started); starts nothing. On failure nothing is left open and err
 * says which part failed. */
int mms_pipeline_create(const struct mms_pipeline_opts *o, struct mms_pipeline **out,
                        struct mms_err *err);
int mms_pipeline_start(struct mms_pipeline *p, struct mms_err *err);

/* Whether mms_pipeline_create would refuse o's model (the file, its card,
 * the size and precision asked for), with the same message; milliseconds,
 * nothing is compiled or opened but the file (core/net.h, mms_net_check). */
int mms_pipeline_check_model(const struct mms_pipeline_opts *o, struct mms_err *err);

/* Asks the threads to finish: decoding stops (a network wait or a
 * reconnect is cut short), what is queued is written, sinks are finalised
 * by mms_pipeline_wait(). Only sets a flag, so it may be called from a
 * signal handler or any thread. */
void mms_pipeline_stop(struct mms_pipeline *p);

/* Joins the threads and finalises the sinks. Returns 0, or a negative
 * errno with err set when the run failed; *damaged is set when the input
 * had decode errors (the outputs are still complete and playable). */
int mms_pipeline_wait(struct mms_pipeline *p, int *damaged, struct mms_err *err);
void mms_pipeline_destroy(struct mms_pipeline *p);

void mms_pipeline_counters(struct mms_pipeline *p, struct mms_pipeline_counters *c);
struct mms_stats *mms_pipeline_stats(struct mms_pipeline *p);
/* Any thread: why an output is down (failed, stalled, or reopening it
 * failed), else why one last was; "" if none ever was. */
void mms_pipeline_output_error(struct mms_pipeline *p, char *buf, size_t len);
/* Any thread: why the last failed inference failed; "" if none did. */
void mms_pipeline_inference_error(struct mms_pipeline *p, char *buf, size_t len);

/* Changes a runtime option (pipeline/options.h: style, alpha, color,
 * every, smooth) while running, through the option table's apply hooks.
 * -ENOENT unknown, -EPERM not a runtime option, -EINVAL a bad value. One
 * thread at a time (the caller's loop); the pipeline's threads see the
 * value with their next frame. */
int mms_pipeline_set(struct mms_pipeline *p, const char *name, const char *value,
                     struct mms_err *err);

/* Takes every runtime option of o that differs from the pipeline's, as
 * mms_pipeline_set would one by one: what a pipeline restarted after a
 * failure needs to keep the settings changed while it ran. */
int mms_pipeline_update(struct mms_pipeline *p, const struct mms_pipeline_opts *o,
                        struct mms_err *err);

/* Pauses (on) or resumes the outputs that take it, from any thread: the
 * request goes to every output's control() (io/sink.h), and those that
 * show frames (the window) keep showing the frame of the moment while
 * the rest go on. Offline, the frames also wait while such an output is
 * paused, so none is skipped unseen. The window's space key does the same
 * as a toggle. Always 0. */
int mms_pipeline_pause(struct mms_pipeline *p, int on);

/* What closing the window (q, Esc, its close button) does. */
enum mms_window_close {
    MMS_WINDOW_CLOSE_STOPS, /* the run ends, as `mms run` wants: the default */
    MMS_WINDOW_CLOSE_ALONE, /* only the window closes, for good (its output says
                               MMS_WRITER_CLOSED); the recording and the other outputs go
                               on, as a daemon wants */
};

/* Before mms_pipeline_start: 0, -EINVAL for another value, -EBUSY once
 * started. */
int mms_pipeline_set_window_close(struct mms_pipeline *p, enum mms_window_close how);

/* Before mms_pipeline_start: the name used in recording file names (default
 * "mms"). -EINVAL unless mms_record_name_valid(name); -EBUSY once started. */
int mms_pipeline_set_name(struct mms_pipeline *p, const char *name);

/* What happened, as it happens (mms_pipeline_hooks.event). */
enum mms_pipeline_event_type {
    MMS_EVENT_SIGNAL_LOST,      /* the live source failed; it is being reopened */
    MMS_EVENT_SIGNAL_BACK,      /* it is open again; count: reconnects so far */
    MMS_EVENT_OUTPUT_DOWN,      /* an output stalled or failed (reason; closed) */
    MMS_EVENT_OUTPUT_UP,        /* it takes frames again */
    MMS_EVENT_SEGMENT_OPENED,   /* the recording opened `file` */
    MMS_EVENT_SEGMENT_CLOSED,   /* ... and finalised it */
    MMS_EVENT_RECORDING_FAILED, /* recording stopped (reason; file, "" if none was open) */
    MMS_EVENT_INFERENCE_FAILED, /* the first failure of a burst (reason) */
    MMS_EVENT_INFERENCE_BACK,   /* the first success after; count: failures in all */
    MMS_EVENT_OUTPUT_CLOSED,    /* its user closed the window, which closed alone
                                   (MMS_WINDOW_CLOSE_ALONE): for good, no failure (reason) */
};

struct mms_pipeline_event {
    enum mms_pipeline_event_type type;
    /* OUTPUT_*: the output's index in mms_pipeline_counters.outputs, or,
     * with encoder set, the index of a shared encoder: its outputs are as
     * down as it is. */
    int output, encoder;
    int closed;         /* OUTPUT_DOWN: it failed and was closed (a network one is
                           being reopened); 0: it stalled */
    const char *name;   /* OUTPUT_*: the output's name; else "" */
    const char *reason; /* why, for the failures and OUTPUT_DOWN; else "" */
    const char *file;   /* SEGMENT_*, RECORDING_FAILED; else "" */
    int64_t count;
};

const char *mms_pipeline_event_name(enum mms_pipeline_event_type t);

struct mms_pipeline_hooks {
    /* Compose thread, after the frame is handed to the outputs, for every
     * frame written (NO SIGNAL placeholders too). Must return quickly; the
     * frame is only borrowed. */
    void (*frame)(void *opaque, const AVFrame *f, const struct mms_frame_meta *m);
    /* Once, from a pipeline thread, after the outputs have written the last
     * frame (end of input, failure or stop); the recording is finalised by
     * then. */
    void (*finished)(void *opaque);
    /* From the thread where it happened (decode, infer, an output's writer,
     * the recording's, or one reading mms_pipeline_counters when that is
     * what notices a stall), before `finished`; one output's or the
     * recording's events come in order. ev and its strings are only
     * borrowed. Must not block nor call back into the pipeline: hand it
     * on to a thread of your own. */
    void (*event)(void *opaque, const struct mms_pipeline_event *ev);
    void *opaque;
};
/* Before mms_pipeline_start only; NULL removes them. Once a start has
 * failed none fires again (threads it had made may have delivered frames
 * or events before it found the failure). */
void mms_pipeline_set_hooks(struct mms_pipeline *p, const struct mms_pipeline_hooks *h);

/* Turns continuous recording on or off (applied at the next frame). -ENOTSUP
 * (with err set) when the pipeline has no record_dir, -EPIPE once its
 * recording has ended with the run. Any thread. */
int mms_pipeline_record(struct mms_pipeline *p, int on, struct mms_err *err);
/* Any thread; enabled=0 when there is no record_dir. */
void mms_pipeline_record_status(struct mms_pipeline *p, struct mms_record_status *st);

#endif
