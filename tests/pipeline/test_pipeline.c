/* The pipeline's own promises (pipeline/pipeline.h): a stop never waits on
 * the network, whether the source is reconnecting to a peer that answers
 * and then says nothing or an output has stopped taking data; and a failed
 * inference is counted and explained, never swallowed. Real sources,
 * encoders and sockets on 127.0.0.1; under ASan these also show that the
 * source is not freed under a thread that reads it. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "harness.h"
#include "fixture.h"
#include "pipeline/testing.h"
#include "tcp_peer.h"

static struct mms_pipeline *create(const char *input, const char *mode, const char *output)
{
    return fixture_create(input, mode, (const char *const[]){"output", output, NULL});
}

/* The source ends, and the reconnect finds a peer that accepts and never
 * sends: opening it would wait out the 5 s network timeout. A stop then
 * returns at once. */
static void stop_during_a_reconnect_returns_at_once(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(0, fixture_ts_clip(), &peer) == 0);
    if (!peer)
        return;
    const char *url = tcp_peer_url(peer);
    struct mms_pipeline *p = create(url, "live", "null");
    struct mms_err err = {{0}};
    if (p && mms_pipeline_start(p, &err) == 0) {
        for (int i = 0; i < 200 && tcp_peer_accepted(peer) < 2; i++)
            fixture_sleep_ms(50);
        CHECK_MSG(tcp_peer_accepted(peer) >= 2, "no reconnect: %d connections",
                  tcp_peer_accepted(peer));
        fixture_sleep_ms(300); /* well into the open */
        struct mms_pipeline_counters c;
        mms_pipeline_counters(p, &c);
        CHECK_MSG(!c.signal && c.reconnects == 0 && c.decoded > 0,
                  "signal %d, %lld reconnects, %lld decoded", c.signal,
                  (long long)c.reconnects, (long long)c.decoded);
        double t0 = mms_now_ms();
        mms_pipeline_stop(p);
        int rc = mms_pipeline_wait(p, NULL, &err);
        double took = mms_now_ms() - t0;
        printf("     stopped %.0f ms after the stop\n", took);
        CHECK_MSG(took < 1000, "the stop took %.0f ms", took);
        CHECK_MSG(rc == 0, "%s", err.msg);
    }
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
}

/* A stream whose receiver stopped reading holds up a stop by about the
 * drain grace (a second), not the network timeout. */
static void stop_with_a_stalled_output_returns_soon(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(4096, NULL, &peer) == 0);
    if (!peer)
        return;
    const char *url = tcp_peer_url(peer);
    struct mms_pipeline *p = create("lavfi:testsrc2=size=640x360:rate=25", "live", url);
    struct mms_err err = {{0}};
    if (p && mms_pipeline_start(p, &err) == 0) {
        struct mms_pipeline_counters c;
        for (int i = 0; i < 150; i++) {
            mms_pipeline_counters(p, &c);
            if (c.outputs[0].state == MMS_WRITER_STALLED)
                break;
            fixture_sleep_ms(100);
        }
        CHECK_MSG(c.outputs[0].state == MMS_WRITER_STALLED, "the stream is %d, not stalled",
                  c.outputs[0].state);
        double t0 = mms_now_ms();
        mms_pipeline_stop(p);
        int rc = mms_pipeline_wait(p, NULL, &err);
        double took = mms_now_ms() - t0;
        printf("     stopped %.0f ms after the stop: %s\n", took, rc ? err.msg : "ok");
        CHECK_MSG(took < 2000, "the stop took %.0f ms", took);
        /* It did not get what it was sent: the run says so, naming it. */
        CHECK_MSG(rc < 0 && strstr(err.msg, url), "rc %d: %s", rc, err.msg);
    }
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
}

static void run_to_end(struct mms_pipeline *p, struct mms_pipeline_counters *c)
{
    struct mms_err err = {{0}};
    int rc = mms_pipeline_start(p, &err);
    rc = rc ? rc : mms_pipeline_wait(p, NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    mms_pipeline_counters(p, c);
}

/* Failed inferences are counted and explained; their frames are still
 * written (with the last good mask), and the next success clears the
 * failing state. */
static void failed_inferences_are_counted(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null");
    if (!p)
        return;
    mms_pipeline_inject_inference_failures(p, 5);
    struct mms_pipeline_counters c;
    run_to_end(p, &c);
    char why[512];
    mms_pipeline_inference_error(p, why, sizeof(why));
    CHECK_MSG(c.inference_errors == 5 && c.inferred == 20 && c.written == 25,
              "%lld errors, %lld inferred, %lld written", (long long)c.inference_errors,
              (long long)c.inferred, (long long)c.written);
    CHECK_MSG(!c.inference_failing, "still failing after later successes");
    CHECK_MSG(strstr(why, "inference failed"), "reason: '%s'", why);
    mms_pipeline_destroy(p);
}

/* An inference that keeps failing shows as failing, and nothing else is
 * lost: every frame is written. */
static void inference_failing_to_the_end_shows(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null");
    if (!p)
        return;
    mms_pipeline_inject_inference_failures(p, 1000);
    struct mms_pipeline_counters c;
    run_to_end(p, &c);
    CHECK_MSG(c.inference_errors == 25 && c.inferred == 0 && c.written == 25 &&
                  c.inference_failing,
              "%lld errors, %lld inferred, %lld written, failing %d",
              (long long)c.inference_errors, (long long)c.inferred, (long long)c.written,
              c.inference_failing);
    mms_pipeline_destroy(p);
}

/* Nothing injected, nothing counted: the counter is not noise. */
static void no_failure_counts_nothing(void)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline", "null");
    if (!p)
        return;
    struct mms_pipeline_counters c;
    run_to_end(p, &c);
    char why[512];
    mms_pipeline_inference_error(p, why, sizeof(why));
    CHECK_MSG(c.inference_errors == 0 && !c.inference_failing && c.inferred == 25 && !why[0],
              "%lld errors, failing %d, %lld inferred, '%s'", (long long)c.inference_errors,
              c.inference_failing, (long long)c.inferred, why);
    mms_pipeline_destroy(p);
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

/* A copy of the shipped model cut in half, in the test's directory. */
static const char *truncated_model(void)
{
    static char path[600];
    char src[512];
    snprintf(src, sizeof(src), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    snprintf(path, sizeof(path), "%s/cut.safetensors", mms_test_tmpdir());
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    CHECK(in && out);
    if (in && out) {
        fseek(in, 0, SEEK_END);
        long half = ftell(in) / 2;
        fseek(in, 0, SEEK_SET);
        for (long i = 0; i < half; i++)
            fputc(fgetc(in), out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return path;
}

/* mms_pipeline_check_model refuses the model that mms_pipeline_create
 * would, with its message, and passes the one it opens (what mmsd
 * checks before a reload replaces a running pipeline). */
static void model_check_says_what_create_would(void)
{
    const char *input = "lavfi:testsrc2=size=64x48:rate=25";
    const char *const good[] = {"output", "null", NULL};
    const char *const cut[] = {"output", "null", "model", truncated_model(), NULL};
    const char *const size[] = {"output", "null", "size", "100x100", NULL};
    const char *const *sets[] = {good, cut, size};
    const char *why[] = {NULL, "truncated", "multiples of 32"};
    for (int i = 0; i < 3; i++) {
        struct mms_pipeline_opts o;
        struct mms_err err = {{0}}, check = {{0}};
        struct mms_pipeline *p = NULL;
        CHECK_EQ(fixture_options(&o, input, "offline", sets[i], &err), 0);
        int rc = mms_pipeline_create(&o, &p, &err);
        CHECK_EQ(mms_pipeline_check_model(&o, &check), rc);
        if (why[i]) {
            CHECK_MSG(rc < 0 && strstr(check.msg, why[i]), "%s: rc %d '%s'", why[i], rc,
                      check.msg);
            CHECK_STR_EQ(check.msg, err.msg);
        } else {
            CHECK_MSG(rc == 0 && !check.msg[0], "rc %d '%s'", rc, check.msg);
        }
        mms_pipeline_destroy(p);
        mms_options_free(&o);
    }
}

/* The nice value of the thread called `name`, or -100 when there is none. */
static int thread_nice(const char *name)
{
    int nice = -100;
    fixture_thread_nices(name, &nice, 1);
    return nice;
}

struct stage_nices {
    int decode, infer, compose;
};

static void probe_stage_nices(void *ctx)
{
    struct stage_nices *n = ctx;
    n->decode = thread_nice("mms-decode");
    n->infer = thread_nice("mms-infer");
    n->compose = thread_nice("mms-compose");
}

/* The pipeline's threads as `mode` runs them, a moment after the start. */
static void pipeline_nices(const char *mode, int *decode, int *infer, int *compose)
{
    struct stage_nices n = {-100, -100, -100};
    fixture_while_running(create("lavfi:testsrc2=size=160x120:rate=25:duration=60", mode, "null"),
                          probe_stage_nices, &n);
    *decode = n.decode;
    *infer = n.infer;
    *compose = n.compose;
}

/* Offline, decoding and composing step back behind the network, whose
 * threads would otherwise wait at a barrier for a preempted one. */
static void offline_decode_and_compose_step_back(void)
{
    int base = getpriority(PRIO_PROCESS, 0), d, i, c;
    int want = base + 15 < 19 ? base + 15 : 19;
    pipeline_nices("offline", &d, &i, &c);
    CHECK_MSG(d == want && c == want && i == base,
              "nice: decode %d, compose %d, infer %d; process %d", d, c, i, base);
}

/* Live, every stage keeps the process's priority: the source is read at
 * its own rate even when the network falls behind. */
static void live_threads_keep_the_process_priority(void)
{
    int base = getpriority(PRIO_PROCESS, 0), d, i, c;
    pipeline_nices("live", &d, &i, &c);
    CHECK_MSG(d == base && c == base && i == base,
              "nice: decode %d, compose %d, infer %d; process %d", d, c, i, base);
}

/* The encoding threads of a recording to a file as `mode` runs them: the
 * writer's and the encoder's own workers (x264's); returns how many. */
static int encoding_nices(const char *mode, int *nices, int max)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/encode-%s.mp4", mms_test_tmpdir(), mode);
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=320x240:rate=25:duration=60", mode, path);
    struct mms_err err = {{0}};
    int n = 0;
    if (p && mms_pipeline_start(p, &err) == 0) {
        fixture_sleep_ms(300);
        n = fixture_thread_nices("mms-encode", nices, max);
        mms_pipeline_stop(p);
        mms_pipeline_wait(p, NULL, &err);
    }
    CHECK_MSG(p && !err.msg[0], "%s", err.msg);
    mms_pipeline_destroy(p);
    unlink(path);
    return n;
}

/* Offline, the encoder steps back too, its workers with it: x264 starts
 * them when it opens, and they take the opener's priority. */
static void offline_encoding_steps_back(void)
{
    int base = getpriority(PRIO_PROCESS, 0), nices[32];
    int want = base + 15 < 19 ? base + 15 : 19;
    int n = encoding_nices("offline", nices, 32);
    CHECK_MSG(n >= 2, "%d encoding threads: the writer and x264's workers expected", n);
    for (int i = 0; i < n && i < 32; i++)
        CHECK_MSG(nices[i] == want, "encoding thread %d of %d: nice %d, want %d", i + 1, n,
                  nices[i], want);
}

/* Live, a recording is encoded at the process's priority, as the rest. */
static void live_encoding_keeps_the_process_priority(void)
{
    int base = getpriority(PRIO_PROCESS, 0), nices[32];
    int n = encoding_nices("live", nices, 32);
    CHECK_MSG(n >= 1, "no encoding thread");
    for (int i = 0; i < n && i < 32; i++)
        CHECK_MSG(nices[i] == base, "encoding thread %d of %d: nice %d, process %d", i + 1, n,
                  nices[i], base);
}

static int lines_in(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    while (f && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

/* A pipeline made again on the same meta file (mmsd: a retried start, a
 * reload, a restart) adds to it: what the last one wrote stays. */
static void meta_is_appended_to(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/again.jsonl", mms_test_tmpdir());
    for (int run = 1; run <= 2; run++) {
        struct mms_pipeline *p = fixture_create(
            "lavfi:testsrc2=size=160x120:rate=25:duration=1", "offline",
            (const char *const[]){"output", "null", "meta", path, NULL});
        if (!p)
            return;
        struct mms_pipeline_counters c;
        run_to_end(p, &c);
        mms_pipeline_destroy(p);
        CHECK_MSG(lines_in(path) == 25 * run, "run %d: %d lines", run, lines_in(path));
    }
}

static atomic_int finished_calls;

static void count_finished(void *opaque)
{
    (void)opaque;
    atomic_fetch_add(&finished_calls, 1);
}

/* Start fails at `index`; returns whether `finished` was heard after. */
static int finished_after_failed_start(int index)
{
    struct mms_pipeline *p = fixture_create("lavfi:testsrc2=size=160x120:rate=25:duration=1",
                                            "offline",
                                            (const char *const[]){"output", "null", "threads",
                                                                  "2", NULL});
    if (!p)
        return -1;
    atomic_store(&finished_calls, 0);
    mms_pipeline_set_hooks(p, &(struct mms_pipeline_hooks){.finished = count_finished});
    if (index >= 0)
        mms_pipeline_inject_thread_failure(p, index);
    struct mms_err err = {{0}};
    int rc = mms_pipeline_start(p, &err);
    if (index >= 0)
        CHECK_MSG(rc == -EAGAIN && strstr(err.msg, "cannot start a thread"), "rc %d: %s", rc,
                  err.msg);
    else
        CHECK_MSG(rc == 0 && mms_pipeline_wait(p, NULL, &err) == 0, "%s", err.msg);
    mms_pipeline_destroy(p);
    return atomic_load(&finished_calls);
}

/* A worker that cannot be made after the compose thread was: the start
 * fails, and `finished` is not called back for a run that never was. */
static void a_failed_start_calls_nothing_back(void)
{
    int n = finished_after_failed_start(4); /* the second inference worker */
    CHECK_MSG(n == 0, "finished heard %d times after a failed start", n);
    n = finished_after_failed_start(0); /* no thread at all */
    CHECK_MSG(n == 0, "finished heard %d times after a failed start", n);
}

/* The same pipeline started: `finished` once. */
static void a_started_run_calls_finished_once(void)
{
    int n = finished_after_failed_start(-1);
    CHECK_MSG(n == 1, "finished heard %d times", n);
}

MMS_TESTS(T(stop_during_a_reconnect_returns_at_once), T(stop_with_a_stalled_output_returns_soon),
          T(failed_inferences_are_counted), T(inference_failing_to_the_end_shows),
          T(no_failure_counts_nothing), T(model_check_says_what_create_would),
          T(offline_decode_and_compose_step_back), T(live_threads_keep_the_process_priority),
          T(offline_encoding_steps_back), T(live_encoding_keeps_the_process_priority),
          T(a_failed_start_calls_nothing_back), T(a_started_run_calls_finished_once),
          T(meta_is_appended_to))
