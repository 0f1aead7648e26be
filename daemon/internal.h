#ifndef MMSD_INTERNAL_H
#define MMSD_INTERNAL_H

/*
 * What the daemon's rooms share: the event loop's state (daemon.c), read by
 * the API (api.c), the metrics (metrics.c) and the status page (page.c).
 * Everything here lives on the loop thread; the pipelines' own threads only
 * reach it through uv_async handles (their events through daemon/events.h)
 * and last_frame_ms.
 */

#include <stdatomic.h>

#include <uv.h>

#include "core/backoff.h"
#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/state.h"
#include "pipeline/pipeline.h"

struct mmsd_events;
struct mmsd_preview;
struct mmsd_saving_answer;

/* The outputs, then the shared encoders (mms_pipeline_event.encoder). */
#define MMSD_OUTPUT_KEYS (2 * MMS_PIPELINE_MAX_OUTPUTS)

enum mmsd_pipe_state {
    MMSD_PIPE_STARTING,   /* opening model, source and sinks for the first time */
    MMSD_PIPE_CONNECTING, /* the last attempt failed; retrying with backoff */
    MMSD_PIPE_RUNNING,
    MMSD_PIPE_NO_SIGNAL,  /* running, the live source is down: NO SIGNAL frames */
    MMSD_PIPE_FINISHED,   /* a file input ended; the outputs are complete */
    MMSD_PIPE_FAILED,     /* ended with an error */
    MMSD_PIPE_STOPPING,
};

struct mmsd;

/* One [pipeline NAME] section and the pipeline running it. */
struct mmsd_pipe {
    struct mmsd *d;
    struct mmsd_pipe *next;
    struct mmsd_pipeline_conf conf;     /* as the file says */
    struct mmsd_pipeline_conf *pending; /* reload: the conf that replaces this one */
    struct mms_pipeline_opts rt;        /* runtime settings (style, alpha, color, every) */
    int record_off;                     /* the recording was stopped through the API: it
                                           stays off when the pipeline is made again, and
                                           across restarts of mmsd (daemon/state.h) */
    char model[1024];                   /* the model file actually used */
    struct mms_pipeline *p;             /* NULL while starting, retrying or stopping */
    enum mmsd_pipe_state state;
    char error[512];                    /* why it is not running, "" if it is */
    int attempts;
    int busy;                           /* a uv_work request is in flight */
    int waited;                         /* mms_pipeline_wait has run */
    int stop_requested;
    int open_handles;
    uv_work_t work;
    struct mms_pipeline *work_p;
    int work_rc, work_damaged;
    int work_record_off;                /* record_off as the start being made took it */
    struct mms_err work_err;
    uv_timer_t retry;
    struct mms_backoff backoff;         /* between start attempts */
    uv_async_t finished;
    struct mmsd_preview *preview;
    struct mmsd_events *events;         /* the pipeline's, from its threads */
    atomic_llong last_frame_ms;         /* compose thread: the last frame written */
    /* What the events said: the health and the logs come from these. */
    int signal;
    int inference_failing;
    char infer_err[512];
    char rec_error[256];                /* the recording failed; "" once a segment opens */
    int down[MMSD_OUTPUT_KEYS];         /* an output (or shared encoder) is down: 1 stalled,
                                           2 failed and closed */
    char down_why[MMSD_OUTPUT_KEYS][512];
    double down_ms[MMSD_OUTPUT_KEYS];
};

struct mmsd {
    uv_loop_t *loop;
    struct mmsd_config cfg;  /* the [mmsd] section in force; its pipelines are moved out */
    char *config_path;
    struct mmsd_pipe *pipes; /* in file order */
    struct mmsd_http *http;
    char *token;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t stats_timer, watchdog_timer;
    uv_work_t warm_work;
    int warm_rc;
    struct mms_err warm_err;
    int warming, ready, stopping, closed, exit_code;
    int reloading, reload_again; /* a SIGHUP's file is being read; another came */
    double started_ms;
    char last_status[400]; /* the last STATUS= sent */
    float *scratch; /* MMS_STATS_RING floats for percentile snapshots */
    struct mmsd_state_writer state; /* saves the recording stops; dir NULL: not kept */
    /* The stops could not be read at start, so every recording started
     * stopped: why, for /healthz; "" once a save has put the file right. */
    char state_unread[700];
    int state_lock; /* fd holding STATE_DIR/lock, or -1 */
    /* Stopped recordings of pipelines not configured now (in the file at
     * start, or removed by a reload): a pipeline of the name added by a
     * reload starts stopped, as it would after a restart. Saved with the
     * others. */
    struct mmsd_state_names kept;
    /* Recording answers waiting for their stops to reach the disk (api.c),
     * oldest first, and the deadline of the oldest. */
    struct mmsd_saving_answer *saving, **saving_tail;
    uv_timer_t saving_timer;
};

const char *mmsd_pipe_state_name(enum mmsd_pipe_state s);
struct mmsd_pipe *mmsd_find_pipe(struct mmsd *d, const char *name);

/* A consistent picture of one pipeline for the API, metrics and page. */
#define MMSD_MAX_REASONS 4
struct mmsd_pipe_view {
    struct mmsd_pipe *pipe;
    const char *state;
    int healthy;
    char reasons[MMSD_MAX_REASONS][600];
    int nreasons;
    int have;                          /* a pipeline exists: the numbers below are valid */
    struct mms_pipeline_counters c;
    struct mms_record_status rec;
    char out_err[512];                 /* why an output is down, or last was */
    char infer_err[512];               /* the last inference failure */
    struct mms_stage_summary lat[MMS_STAGE_COUNT];
};
/* latency: also the stage percentiles (sorts each stage's recent samples;
 * /healthz and the recording answer need none of it). */
void mmsd_pipe_view(struct mmsd *d, struct mmsd_pipe *pipe, int latency,
                    struct mmsd_pipe_view *v);

/* Runtime settings change from the API: validated all first, then applied. */
int mmsd_pipe_set(struct mmsd_pipe *pipe, const char *const *keys, const char *const *values,
                  int n, struct mms_err *err);

/* Recording on or off from the API: now if the pipeline runs, and
 * remembered for the pipelines made in its place (a start still being
 * made or retried, a reload that changes its section), so it holds
 * whatever the pipeline's state. 0 when applied now, 1 when kept for the
 * next start (not running, or its recording has ended with the run), or
 * mms_pipeline_record's refusal. */
int mmsd_pipe_record(struct mmsd_pipe *pipe, int on, struct mms_err *err);
/* A pipeline is made and its threads not yet joined. */
int mmsd_pipe_running(const struct mmsd_pipe *pipe);

/* Why a recording stop may not outlive a restart of mmsd (the stops could
 * not be read at start, or the last save failed); NULL when nothing is
 * wrong, or when nothing is kept (no state_dir). */
const char *mmsd_state_error(const struct mmsd *d);

/* The state writer finished a write: the recording answers it settles
 * go out (api.c). */
void mmsd_api_saves_settled(struct mmsd *d);
/* At shutdown, before the server closes: the answers still waiting go
 * out with what is known. */
void mmsd_api_answer_saving(struct mmsd *d);

/* The HTTP handler (api.c). */
int mmsd_api_handle(void *opaque, const struct mmsd_http_request *req,
                    struct mmsd_http_response *res);
/* The server's options for the API: the handler, the token, what is open
 * without it and what browsers may not do. */
void mmsd_api_http_opts(struct mmsd *d, struct mmsd_http_opts *o);

/* Prometheus text exposition (metrics.c). */
int mmsd_metrics_write(struct mmsd *d, struct mmsd_http_response *res);

/* The status page (page.c). */
int mmsd_page_write(struct mmsd *d, struct mmsd_http_response *res);

#endif
