/* Prometheus text exposition (version 0.0.4): every name starts with
 * mmsd_, every per-pipeline series has pipeline="NAME". Latencies are
 * histograms in seconds, the Prometheus base unit. Names are checked at
 * load time to be [A-Za-z0-9_-], so labels need no escaping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/version.h"
#include "daemon/internal.h"
#include "daemon/preview.h"

struct family {
    const char *name, *type, *help;
};

static void head(struct mmsd_http_response *res, const struct family *f)
{
    mmsd_http_res_printf(res, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                         f->type);
}

typedef double (*getter)(const struct mmsd_pipe_view *v);

static void per_pipe(struct mmsd_http_response *res, const struct family *f,
                     const struct mmsd_pipe_view *views, int n, getter get)
{
    head(res, f);
    for (int i = 0; i < n; i++)
        mmsd_http_res_printf(res, "%s{pipeline=\"%s\"} %.17g\n", f->name,
                             views[i].pipe->conf.name, get(&views[i]));
}

static double g_reconnects(const struct mmsd_pipe_view *v) { return (double)v->c.reconnects; }
static double g_decode_errors(const struct mmsd_pipe_view *v) { return (double)v->c.decode_errors; }
static double g_output_errors(const struct mmsd_pipe_view *v) { return (double)v->c.sink_errors; }
static double g_output_reopens(const struct mmsd_pipe_view *v) { return (double)v->c.sink_reopens; }
static double g_outputs_down(const struct mmsd_pipe_view *v) { return v->c.sinks_down; }
static double g_output_stalls(const struct mmsd_pipe_view *v) { return (double)v->c.sink_stalls; }
static double g_encoders(const struct mmsd_pipe_view *v) { return v->c.encoders; }
static double g_inference_errors(const struct mmsd_pipe_view *v)
{
    return (double)v->c.inference_errors;
}
static double g_fps(const struct mmsd_pipe_view *v) { return v->c.fps; }
static double g_source_fps(const struct mmsd_pipe_view *v) { return v->c.frame_rate; }
static double g_live(const struct mmsd_pipe_view *v) { return v->have && v->c.live; }
static double g_signal(const struct mmsd_pipe_view *v) { return v->have && v->c.signal; }
static double g_up(const struct mmsd_pipe_view *v) { return v->healthy; }
static double g_recording(const struct mmsd_pipe_view *v) { return v->rec.recording; }
static double g_rec_segments(const struct mmsd_pipe_view *v) { return (double)v->rec.segments; }
static double g_rec_errors(const struct mmsd_pipe_view *v) { return (double)v->rec.errors; }
static double g_rec_bytes(const struct mmsd_pipe_view *v) { return (double)v->rec.bytes; }
static double g_rec_failed(const struct mmsd_pipe_view *v) { return v->rec.error[0] != 0; }
static double g_rec_retrying(const struct mmsd_pipe_view *v) { return v->rec.retrying; }
static double g_viewers(const struct mmsd_pipe_view *v)
{
    return v->pipe->preview ? mmsd_preview_viewers(v->pipe->preview) : 0;
}

static void frames(struct mmsd_http_response *res, const struct mmsd_pipe_view *views, int n)
{
    static const struct family f = {"mmsd_frames_total", "counter",
                                    "Frames per pipeline stage: decoded from the source, "
                                    "inferred by the network, dropped (live, not inferred), "
                                    "skipped (live, replaced before it was composed: never "
                                    "shown or written), written to the outputs."};
    head(res, &f);
    for (int i = 0; i < n; i++) {
        const struct mms_pipeline_counters *c = &views[i].c;
        const char *const stages[] = {"decoded", "inferred", "dropped", "skipped", "written"};
        const int64_t v[] = {c->decoded, c->inferred, c->dropped, c->skipped, c->written};
        for (int s = 0; s < 5; s++)
            mmsd_http_res_printf(res, "%s{pipeline=\"%s\",stage=\"%s\"} %lld\n", f.name,
                                 views[i].pipe->conf.name, stages[s], (long long)v[s]);
    }
}

/* A label value as the exposition format wants it: an output is a URL,
 * which may hold any character. */
static void label_value(char *dst, size_t len, const char *s)
{
    size_t n = 0;
    for (; *s && n + 3 < len; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n')
            dst[n++] = '\\';
        dst[n++] = *s == '\n' ? 'n' : *s;
    }
    dst[n] = 0;
}

/* What each output took and dropped (the recording and the window
 * included): which one lost frames, not just that one did. */
static void output_frames(struct mmsd_http_response *res, const struct mmsd_pipe_view *views,
                          int n)
{
    static const struct family f = {"mmsd_output_frames_total", "counter",
                                    "Frames per output: written, or dropped (replaced by a "
                                    "newer one, a full backlog, or the output was down)."};
    head(res, &f);
    for (int i = 0; i < n; i++) {
        for (int k = 0; views[i].have && k < views[i].c.noutputs; k++) {
            const struct mms_writer_status *st = &views[i].c.outputs[k];
            char name[600];
            label_value(name, sizeof(name), st->name);
            mmsd_http_res_printf(res, "%s{pipeline=\"%s\",output=\"%s\",result=\"written\"} %lld\n"
                                 "%s{pipeline=\"%s\",output=\"%s\",result=\"dropped\"} %lld\n",
                                 f.name, views[i].pipe->conf.name, name, (long long)st->written,
                                 f.name, views[i].pipe->conf.name, name, (long long)st->dropped);
        }
    }
}

static void histogram_series(struct mmsd_http_response *res, const char *name, const char *pipe,
                             const char *stage, const struct mms_stage_summary *s)
{
    char labels[160];
    if (stage)
        snprintf(labels, sizeof(labels), "pipeline=\"%s\",stage=\"%s\"", pipe, stage);
    else
        snprintf(labels, sizeof(labels), "pipeline=\"%s\"", pipe);
    int64_t cum = 0;
    for (int b = 0; b < MMS_STATS_BUCKETS; b++) {
        cum += s->buckets[b];
        if (b < MMS_STATS_BUCKETS - 1)
            mmsd_http_res_printf(res, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels,
                                 mms_stats_bounds[b] / 1000.0, (long long)cum);
        else
            mmsd_http_res_printf(res, "%s_bucket{%s,le=\"+Inf\"} %lld\n", name, labels,
                                 (long long)cum);
    }
    mmsd_http_res_printf(res, "%s_sum{%s} %.9g\n%s_count{%s} %lld\n", name, labels,
                         s->sum / 1000.0, name, labels, (long long)s->count);
}

static void latencies(struct mmsd_http_response *res, const struct mmsd_pipe_view *views, int n)
{
    static const struct family lat = {"mmsd_stage_latency_seconds", "histogram",
                                      "Time per frame in each pipeline stage; total is "
                                      "decode start to output end."};
    static const struct family age = {"mmsd_mask_age_seconds", "histogram",
                                      "How much older the mask shown is than the frame it is "
                                      "drawn on (live pipelines skip frames)."};
    head(res, &lat);
    for (int i = 0; i < n; i++)
        for (int s = 0; s < MMS_STAGE_MASK_AGE && views[i].have; s++)
            histogram_series(res, lat.name, views[i].pipe->conf.name, mms_stage_name(s),
                             &views[i].lat[s]);
    head(res, &age);
    for (int i = 0; i < n; i++)
        if (views[i].have)
            histogram_series(res, age.name, views[i].pipe->conf.name, NULL,
                             &views[i].lat[MMS_STAGE_MASK_AGE]);
}

static void states(struct mmsd_http_response *res, const struct mmsd_pipe_view *views, int n)
{
    static const struct family f = {"mmsd_pipeline_state", "gauge",
                                    "1 for the state each pipeline is in."};
    head(res, &f);
    for (int i = 0; i < n; i++)
        for (int s = MMSD_PIPE_STARTING; s <= MMSD_PIPE_STOPPING; s++)
            mmsd_http_res_printf(res, "%s{pipeline=\"%s\",state=\"%s\"} %d\n", f.name,
                                 views[i].pipe->conf.name, mmsd_pipe_state_name(s),
                                 views[i].pipe->state == (enum mmsd_pipe_state)s);
}

int mmsd_metrics_write(struct mmsd *d, struct mmsd_http_response *res)
{
    static const struct family fams[] = {
        {"mmsd_pipeline_up", "gauge", "1 while frames flow and nothing failed (/healthz)."},
        {"mmsd_source_signal", "gauge", "1 while the source delivers frames."},
        {"mmsd_fps", "gauge", "Frames written per second, recent."},
        {"mmsd_source_fps", "gauge", "The source's nominal frame rate (0 while unknown or not "
                                     "open): what mmsd_fps of a live pipeline should reach."},
        {"mmsd_pipeline_live", "gauge", "1 when the pipeline runs in live mode (paced by its "
                                        "source; frames skip inference rather than queue)."},
        {"mmsd_reconnects_total", "counter", "Times the live source was reopened."},
        {"mmsd_decode_errors_total", "counter", "Packets or frames that failed to decode."},
        {"mmsd_output_errors_total", "counter", "Outputs closed after a failed write."},
        {"mmsd_output_reopens_total", "counter", "Network outputs opened again after a failure."},
        {"mmsd_outputs_down", "gauge", "Outputs down now: stalled, or closed (network ones are "
                                       "being reopened)."},
        {"mmsd_output_stalls_total", "counter", "Times an output took no frame for a second."},
        {"mmsd_encoders", "gauge", "Encoders running: one per distinct encoding, shared by "
                                   "the outputs that want it."},
        {"mmsd_inference_errors_total", "counter", "Inferences that failed (the frames kept "
                                                   "the last good mask)."},
        {"mmsd_recording", "gauge", "1 while recording."},
        {"mmsd_recording_failed", "gauge", "1 when the last recording attempt failed."},
        {"mmsd_recording_retrying", "gauge", "1 while a failed recording waits to be tried "
                                             "again by itself."},
        {"mmsd_recording_segments_total", "counter", "Recording segments opened."},
        {"mmsd_recording_errors_total", "counter", "Recording failures (full disk, ...)."},
        {"mmsd_recording_bytes", "gauge", "Bytes recorded so far."},
        {"mmsd_preview_viewers", "gauge", "Browsers watching the MJPEG preview."},
    };
    static const getter gets[] = {g_up,         g_signal,       g_fps,
                                  g_source_fps, g_live,         g_reconnects,
                                  g_decode_errors, g_output_errors, g_output_reopens,
                                  g_outputs_down, g_output_stalls, g_encoders,
                                  g_inference_errors,
                                  g_recording, g_rec_failed, g_rec_retrying,
                                  g_rec_segments, g_rec_errors, g_rec_bytes,    g_viewers};
    _Static_assert(sizeof(fams) / sizeof(fams[0]) == sizeof(gets) / sizeof(gets[0]),
                   "a getter per family");
    int n = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        n++;
    struct mmsd_pipe_view *views = n ? calloc(n, sizeof(*views)) : NULL;
    if (n && !views)
        return -ENOMEM;
    int i = 0;
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        mmsd_pipe_view(d, pp, 1, &views[i++]);
    mmsd_http_res_content_type(res, "text/plain; version=0.0.4; charset=utf-8");
    mmsd_http_res_printf(res,
                         "# HELP mmsd_build_info mmsd's version.\n# TYPE mmsd_build_info gauge\n"
                         "mmsd_build_info{version=\"%s\"} 1\n"
                         "# HELP mmsd_ready 1 once the model has run its warm-up inference.\n"
                         "# TYPE mmsd_ready gauge\nmmsd_ready %d\n"
                         "# HELP mmsd_uptime_seconds Seconds since mmsd started.\n"
                         "# TYPE mmsd_uptime_seconds gauge\nmmsd_uptime_seconds %.3f\n"
                         "# HELP mmsd_state_failed 1 when a recording stopped through the API "
                         "might not stay stopped across a restart of mmsd: the last save of "
                         "the stops failed, or they could not be read at start.\n"
                         "# TYPE mmsd_state_failed gauge\nmmsd_state_failed %d\n",
                         MMS_VERSION, d->ready, (mms_now_ms() - d->started_ms) / 1000.0,
                         mmsd_state_error(d) != NULL);
    states(res, views, n);
    frames(res, views, n);
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++)
        per_pipe(res, &fams[f], views, n, gets[f]);
    output_frames(res, views, n);
    latencies(res, views, n);
    free(views);
    return 0;
}
