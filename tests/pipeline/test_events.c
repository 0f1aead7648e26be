/* The pipeline says what happens as it happens (mms_pipeline_hooks.event):
 * a live source that ends is lost and comes back, a receiver that stops
 * reading takes an output down and reading again brings it up, the
 * recording opens and closes its segments, inference fails once per
 * burst. Each in order, each once, none after `finished`; and a run where
 * nothing goes wrong says nothing. Real sockets on 127.0.0.1, real
 * encodes. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "harness.h"
#include "fixture.h"
#include "pipeline/testing.h"
#include "tcp_peer.h"

#define MAX_EVENTS 64

struct seen {
    enum mms_pipeline_event_type type;
    int output, encoder, closed;
    int64_t count;
    char name[256], reason[512], file[1024];
};

/* What the hook heard, copied: the event is only borrowed. */
struct log {
    pthread_mutex_t lock;
    struct seen ev[MAX_EVENTS];
    int n, finished, after_finished;
};

static struct log the_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_event(void *opaque, const struct mms_pipeline_event *ev)
{
    struct log *l = opaque;
    pthread_mutex_lock(&l->lock);
    l->after_finished += l->finished;
    if (l->n < MAX_EVENTS) {
        struct seen *s = &l->ev[l->n++];
        s->type = ev->type;
        s->output = ev->output;
        s->encoder = ev->encoder;
        s->closed = ev->closed;
        s->count = ev->count;
        snprintf(s->name, sizeof(s->name), "%s", ev->name);
        snprintf(s->reason, sizeof(s->reason), "%s", ev->reason);
        snprintf(s->file, sizeof(s->file), "%s", ev->file);
    }
    pthread_mutex_unlock(&l->lock);
}

static void on_finished(void *opaque)
{
    struct log *l = opaque;
    pthread_mutex_lock(&l->lock);
    l->finished = 1;
    pthread_mutex_unlock(&l->lock);
}

static void log_reset(void)
{
    pthread_mutex_lock(&the_log.lock);
    the_log.n = the_log.finished = the_log.after_finished = 0;
    pthread_mutex_unlock(&the_log.lock);
}

/* The events of types [first, last], in order, into out (at most max). */
static int events(enum mms_pipeline_event_type first, enum mms_pipeline_event_type last,
                  struct seen *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&the_log.lock);
    for (int i = 0; i < the_log.n; i++)
        if (the_log.ev[i].type >= first && the_log.ev[i].type <= last && n < max)
            out[n++] = the_log.ev[i];
    pthread_mutex_unlock(&the_log.lock);
    return n;
}

static int count_of(enum mms_pipeline_event_type t)
{
    struct seen s[MAX_EVENTS];
    return events(t, t, s, MAX_EVENTS);
}

/* Until `t` has been heard n times, at most `ms`; 1 if it was. */
static int wait_for(enum mms_pipeline_event_type t, int n, int ms)
{
    for (int i = 0; i < ms / 50 && count_of(t) < n; i++)
        fixture_sleep_ms(50);
    return count_of(t) >= n;
}

/* The fixture's pipeline; hooks on the log. record_dir: NULL for none. */
static struct mms_pipeline *create(const char *input, const char *mode, const char *output,
                                   const char *record_dir)
{
    struct mms_pipeline *p = fixture_create(
        input, mode, (const char *const[]){"output", output, "record_dir", record_dir, NULL});
    log_reset();
    struct mms_pipeline_hooks h = {.finished = on_finished, .event = on_event, .opaque = &the_log};
    if (p)
        mms_pipeline_set_hooks(p, &h);
    return p;
}

static int start(struct mms_pipeline *p)
{
    struct mms_err err = {{0}};
    int rc = mms_pipeline_start(p, &err);
    CHECK_MSG(rc == 0, "start: %s", err.msg);
    return rc;
}

/* Stops (or lets it end), waits, and checks nothing came after `finished`. */
static void finish(struct mms_pipeline *p, int stop)
{
    if (stop)
        mms_pipeline_stop(p);
    mms_pipeline_wait(p, NULL, NULL);
    pthread_mutex_lock(&the_log.lock);
    CHECK_MSG(the_log.finished, "finished was not called");
    CHECK_EQ(the_log.after_finished, 0);
    pthread_mutex_unlock(&the_log.lock);
}

/* The peer sends the clip down two connections, then answers a third with
 * silence: the source is lost, back, and lost again, in that order. */
static void a_source_that_ends_is_lost_and_back(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(0, fixture_ts_clip(), &peer) == 0);
    if (!peer)
        return;
    tcp_peer_serve(peer, 2);
    const char *url = tcp_peer_url(peer);
    struct mms_pipeline *p = create(url, "live", "null", NULL);
    if (p && !start(p)) {
        CHECK_MSG(wait_for(MMS_EVENT_SIGNAL_LOST, 2, 20000), "%d lost, %d back",
                  count_of(MMS_EVENT_SIGNAL_LOST), count_of(MMS_EVENT_SIGNAL_BACK));
        finish(p, 1);
        struct seen s[MAX_EVENTS];
        int n = events(MMS_EVENT_SIGNAL_LOST, MMS_EVENT_SIGNAL_BACK, s, MAX_EVENTS);
        CHECK_EQ(n, 3);
        if (n == 3) {
            CHECK_EQ(s[0].type, MMS_EVENT_SIGNAL_LOST);
            CHECK_EQ(s[1].type, MMS_EVENT_SIGNAL_BACK);
            CHECK_EQ(s[1].count, 1); /* reconnects so far */
            CHECK_EQ(s[2].type, MMS_EVENT_SIGNAL_LOST);
        }
        CHECK_EQ(count_of(MMS_EVENT_OUTPUT_DOWN), 0);
    }
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
}

/* A file that ends is the end of the run, not a lost signal; and an
 * output that keeps up is never down: a run where nothing goes wrong
 * says nothing at all. */
static void a_quiet_run_says_nothing(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "live", "null", NULL);
    if (p && !start(p)) {
        finish(p, 0);
        pthread_mutex_lock(&the_log.lock);
        int n = the_log.n;
        pthread_mutex_unlock(&the_log.lock);
        CHECK_EQ(n, 0);
    }
    mms_pipeline_destroy(p);
}

/* A receiver that stops reading takes its output down (stalled, named,
 * with the reason); once it reads again the output is up: once each. */
static void a_stalled_output_goes_down_and_up(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(4096, NULL, &peer) == 0);
    if (!peer)
        return;
    const char *url = tcp_peer_url(peer);
    struct mms_pipeline *p = create("lavfi:testsrc2=size=640x360:rate=25", "live", url, NULL);
    if (p && !start(p)) {
        CHECK_MSG(wait_for(MMS_EVENT_OUTPUT_DOWN, 1, 15000), "never down");
        tcp_peer_read(peer, 1);
        CHECK_MSG(wait_for(MMS_EVENT_OUTPUT_UP, 1, 10000), "never up again");
        fixture_sleep_ms(500); /* nothing more follows while it reads */
        struct seen s[MAX_EVENTS];
        int n = events(MMS_EVENT_OUTPUT_DOWN, MMS_EVENT_OUTPUT_UP, s, MAX_EVENTS);
        CHECK_EQ(n, 2);
        if (n == 2) {
            CHECK_EQ(s[0].type, MMS_EVENT_OUTPUT_DOWN);
            CHECK_EQ(s[0].output, 0);
            CHECK_EQ(s[0].encoder, 0);
            CHECK_EQ(s[0].closed, 0);
            CHECK_STR_EQ(s[0].name, url);
            CHECK_MSG(strstr(s[0].reason, "no frame"), "reason '%s'", s[0].reason);
            CHECK_EQ(s[1].type, MMS_EVENT_OUTPUT_UP);
            CHECK_EQ(s[1].output, 0);
        }
        finish(p, 1);
    }
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
}

static const char *record_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", mms_test_tmpdir(), name);
    return path;
}

/* A short recording is one segment: opened, then closed at the end with
 * the same file, which is there. */
static void the_recording_opens_and_closes_a_segment(void)
{
    const char *dir = record_dir("rec-events");
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null", dir);
    if (p && !start(p)) {
        finish(p, 0);
        struct seen s[MAX_EVENTS];
        int n = events(MMS_EVENT_SEGMENT_OPENED, MMS_EVENT_RECORDING_FAILED, s, MAX_EVENTS);
        CHECK_EQ(n, 2);
        if (n == 2) {
            CHECK_EQ(s[0].type, MMS_EVENT_SEGMENT_OPENED);
            CHECK_EQ(s[1].type, MMS_EVENT_SEGMENT_CLOSED);
            CHECK_STR_EQ(s[1].file, s[0].file);
            CHECK_MSG(!strncmp(s[0].file, dir, strlen(dir)), "'%s' not in %s", s[0].file, dir);
            CHECK_MSG(access(s[0].file, R_OK) == 0, "%s is not there", s[0].file);
        }
    }
    mms_pipeline_destroy(p);
}

/* Recording turned off before the start opens no segment: no event. */
static void a_recording_turned_off_says_nothing(void)
{
    struct mms_pipeline *p = create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline",
                                    "null", record_dir("rec-off"));
    if (p) {
        CHECK(mms_pipeline_record(p, 0, NULL) == 0);
        if (!start(p)) {
            finish(p, 0);
            CHECK_EQ(count_of(MMS_EVENT_SEGMENT_OPENED), 0);
            CHECK_EQ(count_of(MMS_EVENT_SEGMENT_CLOSED), 0);
        }
    }
    mms_pipeline_destroy(p);
}

/* Five failures in a row are one burst: one event with the reason, and
 * one when inference works again, counting them. */
static void inference_fails_once_per_burst(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null", NULL);
    if (!p)
        return;
    mms_pipeline_inject_inference_failures(p, 5);
    if (!start(p)) {
        finish(p, 0);
        struct seen s[MAX_EVENTS];
        int n = events(MMS_EVENT_INFERENCE_FAILED, MMS_EVENT_INFERENCE_BACK, s, MAX_EVENTS);
        CHECK_EQ(n, 2);
        if (n == 2) {
            CHECK_EQ(s[0].type, MMS_EVENT_INFERENCE_FAILED);
            CHECK_MSG(strstr(s[0].reason, "inference failed"), "reason '%s'", s[0].reason);
            CHECK_EQ(s[1].type, MMS_EVENT_INFERENCE_BACK);
            CHECK_EQ(s[1].count, 5);
        }
    }
    mms_pipeline_destroy(p);
}

/* The frames whose inference failed add no infer time: their zeros
 * pulled the percentiles down. 25 frames, 5 failed: 20 samples. */
static void failed_inferences_are_not_timed(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null", NULL);
    if (!p)
        return;
    mms_pipeline_inject_inference_failures(p, 5);
    if (!start(p)) {
        finish(p, 0);
        struct mms_stage_summary sum;
        static float scratch[MMS_STATS_RING];
        mms_stats_summary(mms_pipeline_stats(p), MMS_STAGE_INFER, &sum, scratch);
        CHECK_MSG(sum.count == 20, "%lld infer samples for 20 inferred frames",
                  (long long)sum.count);
        mms_stats_summary(mms_pipeline_stats(p), MMS_STAGE_TOTAL, &sum, scratch);
        CHECK_MSG(sum.count == 25, "%lld total samples for 25 frames", (long long)sum.count);
    }
    mms_pipeline_destroy(p);
}

/* Failing to the end is one event, and no "back". */
static void inference_failing_to_the_end_is_one_event(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null", NULL);
    if (!p)
        return;
    mms_pipeline_inject_inference_failures(p, 1000);
    if (!start(p)) {
        finish(p, 0);
        CHECK_EQ(count_of(MMS_EVENT_INFERENCE_FAILED), 1);
        CHECK_EQ(count_of(MMS_EVENT_INFERENCE_BACK), 0);
    }
    mms_pipeline_destroy(p);
}

/* Every type has a name, and one that is not a type says so. */
static void events_have_names(void)
{
    CHECK_STR_EQ(mms_pipeline_event_name(MMS_EVENT_SIGNAL_LOST), "signal-lost");
    CHECK_STR_EQ(mms_pipeline_event_name(MMS_EVENT_INFERENCE_BACK), "inference-back");
    CHECK_STR_EQ(mms_pipeline_event_name((enum mms_pipeline_event_type)99), "?");
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

MMS_TESTS(T(a_source_that_ends_is_lost_and_back), T(a_quiet_run_says_nothing),
          T(a_stalled_output_goes_down_and_up), T(the_recording_opens_and_closes_a_segment),
          T(a_recording_turned_off_says_nothing), T(inference_fails_once_per_burst), T(failed_inferences_are_not_timed),
          T(inference_failing_to_the_end_is_one_event), T(events_have_names))
