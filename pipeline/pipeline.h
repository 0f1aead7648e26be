#ifndef MMS_PIPELINE_H
#define MMS_PIPELINE_H

/*
 * One video source through the network to any number of sinks:
 *
 *   decode thread    source -> YUV420P frame -> RGB at the network size
 *   infer thread     normalise -> network -> mask at the frame size
 *   compose thread   draw the mask -> every sink (files, streams, window)
 *
 * Offline (files, by default): bounded queues, every frame segmented and
 * written in order, none dropped. Live (devices and network inputs):
 * decoding never waits; inference takes the latest frame from a one-slot
 * mailbox, while every decoded frame is composed with the most recent mask
 * and written, so the display keeps the source's rate. A live source that
 * fails is reopened with backoff (0.5 s doubling to 8 s) while the sinks get
 * NO SIGNAL frames.
 *
 * Every frame carries its per-stage times and the time of the frame its
 * mask came from (mask age).
 */

#include <stdint.h>

#include "core/error.h"
#include "pipeline/options.h"
#include "pipeline/stats.h"

struct mms_pipeline;

struct mms_pipeline_counters {
    int64_t decoded, inferred, dropped, written;
    int64_t decode_errors, reconnects, sink_errors;
    int signal;     /* the source is delivering frames */
    int live;       /* running in live mode */
    int finished;   /* all threads are done */
    double fps;     /* frames written per second, recent */
    int64_t frames_expected; /* from the source's duration, 0 if unknown */
    int width, height;
    double frame_rate;
};

/* Opens the model, the source and the sinks; starts nothing. On failure
 * nothing is left open and err says which part failed. */
int mms_pipeline_create(const struct mms_pipeline_opts *o, struct mms_pipeline **out,
                        struct mms_err *err);
int mms_pipeline_start(struct mms_pipeline *p, struct mms_err *err);

/* Asks the threads to finish: decoding stops, what is queued is written,
 * sinks are finalised by mms_pipeline_wait(). Only sets flags, so it may
 * be called from a signal handler. */
void mms_pipeline_stop(struct mms_pipeline *p);

/* Joins the threads and finalises the sinks. Returns 0, or a negative
 * errno with err set when the run failed; *damaged is set when the input
 * had decode errors (the outputs are still complete and playable). */
int mms_pipeline_wait(struct mms_pipeline *p, int *damaged, struct mms_err *err);
void mms_pipeline_destroy(struct mms_pipeline *p);

void mms_pipeline_counters(struct mms_pipeline *p, struct mms_pipeline_counters *c);
struct mms_stats *mms_pipeline_stats(struct mms_pipeline *p);

/* Changes a runtime option (style, alpha, color, every) while running. */
int mms_pipeline_set(struct mms_pipeline *p, const char *name, const char *value,
                     struct mms_err *err);

#endif
