/* Each output on its own writer, end to end: a TCP receiver that accepts
 * and stops reading (a frozen display) beside a file and a recording, from
 * a live 25 fps source. The stalled stream is reported down and drops its
 * own frames; the file and the recording keep (nearly) every frame with no
 * hole; once the receiver reads again the stream is up and flowing. And
 * offline, every file output still gets every frame. Real sockets on
 * 127.0.0.1, real encodes, ffprobe on what was written. */
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "harness.h"
#include "fixture.h"
#include "tcp_peer.h"

/* Long enough for the stream to stall (the receiver's window is a few
 * kilobytes), fail on the network timeout (5 s) and be reopened into a
 * second stall. */
#define STALL_SECONDS 20
#define FPS 25

/* Under ThreadSanitizer the per-pixel stages are instrumented (upscaling
 * the mask and drawing it on a 720p frame take ~0.5 s each on two loaded
 * cores), so the pipeline composes two or three frames a second instead of
 * 25 and the rest are dropped before any output sees them. There the file,
 * the recording and the recovered stream are held to what the compose
 * stage handed on, and a hole may be as long as a few composed frames,
 * still well under the 5 s network timeout a stalled stream used to cost. */
#ifdef __SANITIZE_THREAD__
#define SLOW_BUILD 1
#define MAX_GAP 2.5
#else
#define SLOW_BUILD 0
#define MAX_GAP 0.5
#endif

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", mms_test_tmpdir(), name);
    return p;
}

/* The fixture's pipeline with n outputs and a recording (record_dir: NULL
 * for none), started. */
static struct mms_pipeline *create(const char *input, const char *mode,
                                   const char *const *outputs, int n, const char *record_dir)
{
    const char *set[2 * 8 + 3] = {"record_dir", record_dir};
    int k = 2;
    for (int i = 0; i < n && i < 8; i++) {
        set[k++] = "output";
        set[k++] = outputs[i];
    }
    return fixture_start(fixture_create(input, mode, set));
}

/* What a video file holds, by ffprobe: its frames and the largest step
 * between consecutive timestamps. */
struct probe {
    int frames;
    double max_gap;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct probe probe(const char *path)
{
    struct probe r = {0, 0};
    char cmd[1200], line[128];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 -show_entries "
             "packet=pts_time -of csv=p=0 '%s'", path);
    FILE *f = popen(cmd, "r");
    static double t[100000];
    while (f && fgets(line, sizeof(line), f))
        if (r.frames < 100000 && line[0] != '\n')
            t[r.frames++] = strtod(line, NULL);
    CHECK_MSG(f && pclose(f) == 0, "ffprobe %s", path);
    qsort(t, r.frames, sizeof(t[0]), cmp_double);
    for (int i = 1; i < r.frames; i++)
        r.max_gap = fmax(r.max_gap, t[i] - t[i - 1]);
    return r;
}

/* The one segment the recorder wrote in `dir`. */
static const char *recording_in(const char *dir)
{
    static char path[1024];
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".mp4")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            n++;
        }
    if (d)
        closedir(d);
    CHECK_MSG(n == 1, "%d recordings in %s", n, dir);
    return n ? path : NULL;
}

static struct mms_writer_status output(struct mms_pipeline *p, int i)
{
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    return c.outputs[i];
}

/* A file beside the stream: >= 95 % of the source's frames (of those
 * composed under TSan), no hole over MAX_GAP. */
static void check_whole(const char *what, const char *path, int64_t decoded)
{
    if (!path)
        return;
    struct probe r = probe(path);
    printf("     %s: %d of %lld frames, largest step %.3f s\n", what, r.frames,
           (long long)decoded, r.max_gap);
    CHECK_MSG(r.frames >= 0.95 * decoded, "%s holds %d of %lld frames", what, r.frames,
              (long long)decoded);
    CHECK_MSG(r.max_gap <= MAX_GAP, "%s has a hole of %.3f s", what, r.max_gap);
}

/* Phase 1: the receiver takes nothing for STALL_SECONDS; 1 when the stream
 * was seen down. */
static int watch_stall(struct mms_pipeline *p)
{
    int down = 0;
    for (int i = 0; i < STALL_SECONDS * 10; i++) {
        struct mms_pipeline_counters c;
        mms_pipeline_counters(p, &c);
        if (c.sinks_down > 0 && c.outputs[0].state != MMS_WRITER_UP) {
            if (!down) {
                char why[512];
                mms_pipeline_output_error(p, why, sizeof(why));
                printf("     down after %.1f s: %s\n", i / 10.0, why);
                CHECK_MSG(strstr(why, "tcp://127.0.0.1"), "the reason names the stream: %s",
                          why);
            }
            down = 1;
        }
        /* The file and the recording never are. */
        CHECK_MSG(c.outputs[1].state == MMS_WRITER_UP && c.outputs[2].state == MMS_WRITER_UP,
                  "at %.1f s: file %d, recording %d", i / 10.0, c.outputs[1].state,
                  c.outputs[2].state);
        fixture_sleep_ms(100);
    }
    return down;
}

/* Phase 2: the receiver reads again; 1 when the stream came back up and
 * frames flow through it for two seconds. */
static int watch_recovery(struct mms_pipeline *p, struct tcp_peer *peer)
{
    double t0 = mms_now_ms();
    tcp_peer_read(peer, 1);
    while (mms_now_ms() - t0 < 20000 && output(p, 0).state != MMS_WRITER_UP)
        fixture_sleep_ms(100);
    printf("     up %.1f s after the receiver read again\n", (mms_now_ms() - t0) / 1000);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    int64_t written = c.outputs[0].written, composed = c.written;
    int64_t bytes = tcp_peer_bytes(peer);
    fixture_sleep_ms(2000);
    mms_pipeline_counters(p, &c);
    int64_t more = c.outputs[0].written - written, got = tcp_peer_bytes(peer) - bytes;
    composed = c.written - composed;
    /* Under TSan: half of what was composed meanwhile, and at least one. */
    int64_t want = SLOW_BUILD ? (composed / 2 > 1 ? composed / 2 : 1) : FPS;
    printf("     then %lld frames (of %lld composed), %lld bytes in 2 s\n", (long long)more,
           (long long)composed, (long long)got);
    CHECK_MSG(c.sinks_down == 0 && c.outputs[0].state == MMS_WRITER_UP, "%d down, stream %d",
              c.sinks_down, c.outputs[0].state);
    CHECK_MSG(more >= want && got > 10000, "%lld frames, %lld bytes in 2 s", (long long)more,
              (long long)got);
    return c.sinks_down == 0 && more >= want;
}

static void stalled_stream_spares_the_file_and_recording(void)
{
    struct tcp_peer *peer = NULL;
    CHECK(tcp_peer_start(4096, NULL, &peer) == 0);
    if (!peer)
        return;
    const char *url = tcp_peer_url(peer);
    const char *file = tmp_path("beside.mkv"), *rec = tmp_path("rec");
    const char *outputs[] = {url, file};
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=1280x720:rate=25", "live", outputs, 2, rec);
    if (!p) {
        tcp_peer_stop(peer);
        return;
    }
    /* Live, the stream, the file and the recording want one encoding: the
     * stall below is that of a stream sharing the recording's encoder. */
    struct mms_pipeline_counters c0;
    mms_pipeline_counters(p, &c0);
    CHECK_MSG(c0.encoders == 1, "%d encoders for three outputs of one encoding", c0.encoders);
    CHECK_MSG(watch_stall(p), "the stalled stream was never reported down");
    struct mms_writer_status st = output(p, 0);
    CHECK_MSG(st.dropped > 0 && st.stalls + st.errors > 0,
              "the stream dropped %lld frames, %lld stalls, %lld errors", (long long)st.dropped,
              (long long)st.stalls, (long long)st.errors);
    watch_recovery(p, peer);
    mms_pipeline_stop(p);
    struct mms_err err = {{0}};
    mms_pipeline_wait(p, NULL, &err);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    printf("     %lld decoded, %lld written; stream: %lld written, %lld dropped, %lld stalls, "
           "%lld errors, %lld reopens; file dropped %lld, recording dropped %lld\n",
           (long long)c.decoded, (long long)c.written, (long long)c.outputs[0].written,
           (long long)c.outputs[0].dropped, (long long)c.outputs[0].stalls,
           (long long)c.outputs[0].errors, (long long)c.outputs[0].reopens,
           (long long)c.outputs[1].dropped, (long long)c.outputs[2].dropped);
    mms_pipeline_destroy(p);
    tcp_peer_stop(peer);
    int64_t expect = SLOW_BUILD ? c.written : c.decoded;
    check_whole("file", file, expect);
    check_whole("recording", recording_in(rec), expect);
}

static int64_t recording_written(struct mms_pipeline *p)
{
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    return c.noutputs ? c.outputs[c.noutputs - 1].written : -1;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* A recording stopped through the API writes nothing, and its output
 * says so: its "written" count stands still (it went on counting every
 * frame offered) until the recording starts again. */
static void a_stopped_recording_counts_nothing_written(void)
{
    const char *rec = tmp_path("stopped-count");
    struct mms_pipeline *p = create("lavfi:testsrc2=size=320x240:rate=25", "live", NULL, 0, rec);
    if (!p)
        return;
    struct mms_err err = {{0}};
    int up = 0;
    for (int i = 0; i < 300 && !up; i++, sleep_ms(20))
        up = recording_written(p) >= 25;
    CHECK_MSG(up, "the recording wrote %lld frames", (long long)recording_written(p));
    CHECK_MSG(mms_pipeline_record(p, 0, &err) == 0, "%s", err.msg);
    sleep_ms(500); /* frames already on their way */
    int64_t stopped = recording_written(p);
    sleep_ms(1500);
    CHECK_MSG(recording_written(p) == stopped, "stopped: written went from %lld to %lld",
              (long long)stopped, (long long)recording_written(p));
    CHECK_MSG(mms_pipeline_record(p, 1, &err) == 0, "%s", err.msg);
    int again = 0;
    for (int i = 0; i < 300 && !again; i++, sleep_ms(20))
        again = recording_written(p) >= stopped + 10;
    CHECK_MSG(again, "started again: written %lld, %lld when stopped",
              (long long)recording_written(p), (long long)stopped);
    mms_pipeline_stop(p);
    mms_pipeline_wait(p, NULL, &err);
    mms_pipeline_destroy(p);
}

/* A port on 127.0.0.1 nobody listens on: bound, then closed. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    CHECK(port > 0);
    return port;
}

/* Streams whose receivers are not there when the pipeline starts (a
 * display still booting, a media server down): the pipeline starts all
 * the same, records from the first frame, and reports each stream down
 * with why, retrying it (the reason is renewed by each failed attempt). */
static void streams_down_at_start_spare_the_recording(void)
{
    char rtmp[64], tcp[64];
    snprintf(rtmp, sizeof(rtmp), "rtmp://127.0.0.1:%d/live/or1", closed_port());
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", closed_port());
    const char *rec = tmp_path("down-at-start"), *outputs[] = {rtmp, tcp};
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=320x240:rate=25", "live", outputs, 2, rec);
    if (!p)
        return;
    double first[2] = {0, 0};
    for (int i = 0; i < 30 && (!first[0] || !first[1]); i++) {
        fixture_sleep_ms(100);
        for (int k = 0; k < 2; k++)
            if (!first[k] && output(p, k).state == MMS_WRITER_FAILED)
                first[k] = output(p, k).reason_ms;
    }
    fixture_sleep_ms(2500); /* the retries 1 and 2 s after the first failure */
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    struct mms_record_status st;
    mms_pipeline_record_status(p, &st);
    for (int k = 0; k < 2; k++) {
        const struct mms_writer_status *o = &c.outputs[k];
        CHECK_MSG(o->state == MMS_WRITER_FAILED && o->errors == 1 && o->written == 0 &&
                      strstr(o->reason, "127.0.0.1"),
                  "%s: state %d, %lld errors, %lld written, reason '%s'", outputs[k], o->state,
                  (long long)o->errors, (long long)o->written, o->reason);
        CHECK_MSG(first[k] > 0 && o->reason_ms > first[k] + 500,
                  "%s: not retried (first failure at %.0f, latest at %.0f)", outputs[k],
                  first[k], o->reason_ms);
    }
    CHECK_MSG(c.sinks_down == 2 && c.outputs[2].state == MMS_WRITER_UP, "%d down", c.sinks_down);
    CHECK_MSG(st.recording && st.segments == 1 && !st.errors && st.frames > 50,
              "recording %d, %lld segments, %lld frames: %s", st.recording,
              (long long)st.segments, (long long)st.frames, st.error);
    mms_pipeline_stop(p);
    /* Still down at the end: the run says which, as for any output lost. */
    struct mms_err err = {{0}};
    CHECK_MSG(mms_pipeline_wait(p, NULL, &err) < 0 && strstr(err.msg, "refused"), "%s",
              err.msg);
    mms_pipeline_counters(p, &c);
    mms_pipeline_destroy(p);
    check_whole("recording", recording_in(rec), SLOW_BUILD ? c.written : c.decoded);
}

/* Offline, nothing is dropped: every frame of the input reaches every file
 * output, however the encoders keep up. */
static void offline_writes_every_frame_to_every_file(void)
{
    const char *a = tmp_path("every.mp4"), *b = tmp_path("every.mkv");
    const char *outputs[] = {a, b};
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=640x360:rate=25:duration=4", "offline", outputs, 2, NULL);
    if (!p)
        return;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_pipeline_wait(p, NULL, &err) == 0, "%s", err.msg);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    CHECK_MSG(c.decoded == 100 && c.written == 100, "%lld decoded, %lld written",
              (long long)c.decoded, (long long)c.written);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(c.outputs[i].written == 100 && c.outputs[i].dropped == 0,
                  "output %d: %lld written, %lld dropped", i, (long long)c.outputs[i].written,
                  (long long)c.outputs[i].dropped);
    mms_pipeline_destroy(p);
    CHECK_MSG(probe(a).frames == 100, "%s has %d frames", a, probe(a).frames);
    CHECK_MSG(probe(b).frames == 100, "%s has %d frames", b, probe(b).frames);
}

/* A short run to its end: the encoders it ran, and what each output wrote. */
static int encoders_of_run(const char *mode, const char *const *outputs, int n,
                           const char *record_dir, int64_t *written)
{
    struct mms_pipeline *p =
        create("lavfi:testsrc2=size=320x180:rate=25:duration=2", mode, outputs, n, record_dir);
    if (!p)
        return -1;
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    int encoders = c.encoders;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_pipeline_wait(p, NULL, &err) == 0, "%s", err.msg);
    mms_pipeline_counters(p, &c);
    for (int i = 0; written && i < c.noutputs; i++)
        written[i] = c.outputs[i].written;
    mms_pipeline_destroy(p);
    return encoders;
}

/* Two files and the recording at one encoding: one encoder, and every one
 * of them decodes every frame. */
static void same_settings_run_one_encoder(void)
{
    const char *a = tmp_path("one-a.mp4"), *b = tmp_path("one-b.mkv"), *rec = tmp_path("one-rec");
    const char *outputs[] = {a, b};
    int64_t written[4] = {0};
    int n = encoders_of_run("offline", outputs, 2, rec, written);
    CHECK_MSG(n == 1, "%d encoders", n);
    CHECK_MSG(written[0] == 50 && written[1] == 50 && written[2] == 50,
              "written %lld %lld %lld", (long long)written[0], (long long)written[1],
              (long long)written[2]);
    CHECK_MSG(probe(a).frames == 50, "%s: %d frames", a, probe(a).frames);
    CHECK_MSG(probe(b).frames == 50, "%s: %d frames", b, probe(b).frames);
    const char *r = recording_in(rec);
    CHECK_MSG(r && probe(r).frames == 50, "recording: %d frames", r ? probe(r).frames : -1);
}

/* Offline, a stream is encoded for its receiver and a file for its size:
 * two encoders. */
static void different_settings_run_two_encoders(void)
{
    const char *a = tmp_path("two-a.mp4");
    const char *outputs[] = {a, "udp://127.0.0.1:9"};
    int n = encoders_of_run("offline", outputs, 2, NULL, NULL);
    CHECK_MSG(n == 2, "%d encoders", n);
    CHECK_MSG(probe(a).frames == 50, "%s: %d frames", a, probe(a).frames);
}

/* Whether the file at `path` holds `needle` (x264 writes its settings
 * into the stream as text). */
static int file_holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    static char buf[4 << 20];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    return n && memmem(buf, n, needle, strlen(needle)) != NULL;
}

/* The encoder-preset option reaches x264 (its preset shows as the motion
 * search depth it writes: subme=0 for ultrafast, 2 for veryfast). */
static void the_encoder_preset_reaches_the_file(void)
{
    const char *fast = tmp_path("preset-ultrafast.mp4"), *dflt = tmp_path("preset-default.mp4");
    const char *runs[][2] = {{fast, "ultrafast"}, {dflt, NULL}};
    for (int i = 0; i < 2; i++) {
        struct mms_pipeline *p = fixture_start(fixture_create(
            "lavfi:testsrc2=size=320x180:rate=25:duration=1", "offline",
            (const char *const[]){"output", runs[i][0], "encoder_preset", runs[i][1], NULL}));
        struct mms_err err = {{0}};
        CHECK_MSG(p && mms_pipeline_wait(p, NULL, &err) == 0, "%s", err.msg);
        mms_pipeline_destroy(p);
    }
    CHECK_MSG(file_holds(fast, "subme=0 ") && !file_holds(fast, "subme=2 "), "%s", fast);
    CHECK_MSG(file_holds(dflt, "subme=2 ") && !file_holds(dflt, "subme=0 "), "%s", dflt);
}

/* An output that encodes nothing runs no encoder. */
static void null_output_runs_no_encoder(void)
{
    const char *outputs[] = {"null"};
    int n = encoders_of_run("offline", outputs, 1, NULL, NULL);
    CHECK_MSG(n == 0, "%d encoders", n);
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

MMS_TESTS(T(stalled_stream_spares_the_file_and_recording), T(a_stopped_recording_counts_nothing_written),
          T(streams_down_at_start_spare_the_recording),
          T(offline_writes_every_frame_to_every_file), T(same_settings_run_one_encoder),
          T(different_settings_run_two_encoders), T(null_output_runs_no_encoder),
          T(the_encoder_preset_reaches_the_file))
