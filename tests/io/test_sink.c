#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mathematics.h>

#include "harness.h"
#include "io/encoder.h"
#include "io/image.h"
#include "io/sink.h"
#include "io/source.h"
#include "io/synth.h"

#define W 320
#define H 180
#define MAX_FRAMES 400

static char *path_in_tmp(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", mms_test_tmpdir(), name);
    return p;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* The synthetic clip, frame by frame, into any sink. */
struct clip {
    struct mms_synth *synth;
    AVFrame *frame;
};

static int clip_open(struct clip *c, int w, int h)
{
    struct mms_err err;
    memset(c, 0, sizeof(*c));
    if (mms_synth_create(w, h, 11, 25, &c->synth, &err) < 0 || !(c->frame = av_frame_alloc()))
        return -1;
    c->frame->format = AV_PIX_FMT_YUV420P;
    c->frame->width = w;
    c->frame->height = h;
    return av_frame_get_buffer(c->frame, 0);
}

static void clip_close(struct clip *c)
{
    av_frame_free(&c->frame);
    mms_synth_free(c->synth);
}

static int clip_write(struct clip *c, struct mms_sink *sink, int i, int64_t pts,
                      struct mms_err *err)
{
    if (av_frame_make_writable(c->frame) < 0 || mms_synth_frame(c->synth, i, c->frame, NULL, 0))
        return mms_err_set(err, -ENOMEM, "cannot make frame %d", i);
    c->frame->pts = pts;
    return mms_sink_write(sink, c->frame, NULL, err);
}

static struct mms_sink_params params(AVRational tb)
{
    return (struct mms_sink_params){.width = W, .height = H, .time_base = tb,
                                    .frame_rate = {25, 1}};
}

/* Writes n frames with pts start + i * step (in tb) to url, closed. */
static int write_clip(const char *url, AVRational tb, int64_t start, int64_t step, int n)
{
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params(tb);
    int ret = clip_open(&c, W, H);
    if (ret >= 0)
        ret = mms_sink_open(NULL, url, &p, &sink, &err);
    for (int i = 0; ret >= 0 && i < n; i++)
        ret = clip_write(&c, sink, i, start + i * step, &err);
    int closed = mms_sink_close(sink, &err);
    CHECK_MSG(ret >= 0 && closed >= 0, "%s: %s", url, err.msg);
    clip_close(&c);
    return ret < 0 ? ret : closed;
}

struct readout {
    int n;
    double t[MAX_FRAMES]; /* seconds */
    struct mms_source_info info;
    int end;
};

static int read_back(const char *url, struct readout *r)
{
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    memset(r, 0, sizeof(*r));
    int ret = mms_source_open(url, NULL, &s, &err);
    CHECK_MSG(ret == 0, "%s", err.msg);
    if (ret < 0)
        return ret;
    r->info = *mms_source_info(s);
    AVFrame *f = av_frame_alloc();
    while ((ret = mms_source_read(s, f, &err)) == 0) {
        if (r->n < MAX_FRAMES)
            r->t[r->n] = f->pts * av_q2d(r->info.time_base);
        r->n++;
    }
    r->end = ret;
    av_frame_free(&f);
    mms_source_close(s);
    return 0;
}

/* ffprobe's view: frame count and rate, as "N R/D". */
static void probe(const char *path, char *out, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 -count_frames "
             "-show_entries stream=nb_read_frames,r_frame_rate,codec_name,pix_fmt "
             "-of default=nw=1 '%s'", path);
    FILE *f = popen(cmd, "r");
    size_t got = f ? fread(out, 1, len - 1, f) : 0;
    out[got] = 0;
    CHECK(f && pclose(f) == 0);
}

static void check_container(const char *name)
{
    static struct readout r;
    char *path = path_in_tmp(name);
    if (write_clip(path, (AVRational){1, 25}, 0, 1, 50) < 0)
        return;
    read_back(path, &r);
    CHECK_MSG(r.n == 50, "%s: %d frames", name, r.n);
    CHECK(r.end == AVERROR_EOF);
    CHECK(r.info.width == W && r.info.height == H);
    CHECK_MSG(av_cmp_q(r.info.frame_rate, (AVRational){25, 1}) == 0, "%s: rate %d/%d", name,
              r.info.frame_rate.num, r.info.frame_rate.den);
    for (int i = 0; i < r.n && i < 50; i++)
        CHECK_MSG(fabs(r.t[i] - i / 25.0) < 1e-3, "%s frame %d at %.4f s", name, i, r.t[i]);
    char out[512];
    probe(path, out, sizeof(out));
    CHECK_MSG(strstr(out, "nb_read_frames=50") && strstr(out, "r_frame_rate=25/1") &&
              strstr(out, "codec_name=h264") && strstr(out, "pix_fmt=yuv420p"),
              "%s: %s", name, out);
}

static void test_mp4(void)
{
    check_container("out.mp4");
}

static void test_mkv(void)
{
    check_container("out.mkv");
}

static void test_ts(void)
{
    check_container("out.ts");
}

/* The source's own timestamps survive: another time base, not from 0. */
static void test_timestamps(void)
{
    static struct readout r;
    const char *names[] = {"ts90k.mp4", "ts90k.mkv", "ts90k.ts"};
    for (int k = 0; k < 3; k++) {
        char *path = path_in_tmp(names[k]);
        if (write_clip(path, (AVRational){1, 90000}, 90000 * 3 + 1234, 3600, 30) < 0)
            continue;
        read_back(path, &r);
        CHECK_MSG(r.n == 30, "%s: %d frames", names[k], r.n);
        for (int i = 0; i < r.n && i < 30; i++) {
            double want = (90000 * 3 + 1234 + i * 3600) / 90000.0;
            CHECK_MSG(fabs(r.t[i] - want) < 1.5e-3, "%s frame %d at %.4f s, want %.4f",
                      names[k], i, r.t[i], want);
        }
    }
}

/* A recording killed mid-way (SIGKILL: no trailer, nothing flushed by
 * us) plays up to its last fragment: at most about 2 s lost. */
static void check_killed(const char *name)
{
    static struct readout r;
    char *path = path_in_tmp(name);
    pid_t pid = fork();
    if (pid == 0) {
        struct clip c;
        struct mms_sink *sink = NULL;
        struct mms_err err;
        struct mms_sink_params p = params((AVRational){1, 25});
        if (clip_open(&c, W, H) < 0 || mms_sink_open(NULL, path, &p, &sink, &err) < 0)
            _exit(1);
        for (int i = 0; i < 125; i++)
            if (clip_write(&c, sink, i, i, &err) < 0)
                _exit(1);
        raise(SIGKILL);
        _exit(1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "writer status %d", status);
    read_back(path, &r);
    CHECK_MSG(r.n >= 125 - 50 && r.n <= 125, "%s: %d of 125 frames readable", name, r.n);
    for (int i = 0; i < r.n && i < MAX_FRAMES; i++)
        CHECK_MSG(fabs(r.t[i] - i / 25.0) < 1e-3, "%s frame %d at %.4f s", name, i, r.t[i]);
    char out[512];
    probe(path, out, sizeof(out));
    CHECK_MSG(strstr(out, "codec_name=h264") != NULL, "%s: %s", name, out);
}

static void test_killed(void)
{
    check_killed("killed.mp4");
    check_killed("killed.mkv");
    check_killed("killed.ts");
}

/* Readable while still being written, by another process. */
static void test_partial(void)
{
    char *path = path_in_tmp("partial.mp4");
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    if (clip_open(&c, W, H) < 0 || mms_sink_open(NULL, path, &p, &sink, &err) < 0) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    for (int i = 0; i < 100; i++)
        CHECK(clip_write(&c, sink, i, i, &err) == 0);
    char out[512];
    probe(path, out, sizeof(out));
    char *n = strstr(out, "nb_read_frames=");
    int frames = n ? atoi(n + strlen("nb_read_frames=")) : 0;
    CHECK_MSG(frames >= 50 && frames <= 100, "%d frames readable before close: %s", frames,
              out);
done:
    CHECK(mms_sink_close(sink, &err) == 0);
    clip_close(&c);
}

static void test_find(void)
{
    CHECK(mms_sink_find("null") == &mms_sink_null);
    CHECK(mms_sink_find("out.mp4") == &mms_sink_file);
    CHECK(mms_sink_find("dir/OUT.MKV") == &mms_sink_file);
    CHECK(mms_sink_find("a.mov") == &mms_sink_file);
    CHECK(mms_sink_find("a.ts") == &mms_sink_file);
    CHECK(mms_sink_find("udp://127.0.0.1:1234") == &mms_sink_stream);
    CHECK(mms_sink_find("udp://239.0.0.1:1234/x.ts") == &mms_sink_stream);
    CHECK(mms_sink_find("srt://host:9000") == &mms_sink_stream);
    CHECK(mms_sink_find("rtmp://host/live/key") == &mms_sink_stream);
    CHECK(mms_sink_find("rtsp://host:8554/cam") == &mms_sink_stream);
    CHECK(mms_sink_find("tcp://127.0.0.1:9000") == &mms_sink_stream);
    CHECK(mms_sink_find("foo://x") == NULL);
    CHECK(mms_sink_find("http://host/x.mp4") == NULL);
    CHECK(mms_sink_find("out.avi") == NULL);
    CHECK(mms_sink_find("nullx") == NULL);
    CHECK(mms_sink_find("mp4") == NULL);

    struct mms_sink *s = (struct mms_sink *)1;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    CHECK(mms_sink_open(NULL, "foo://x", &p, &s, &err) == AVERROR(EINVAL) && !s);
    CHECK_MSG(strstr(err.msg, "foo://x") != NULL, "%s", err.msg);
}

static void test_null(void)
{
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    CHECK(clip_open(&c, W, H) == 0);
    CHECK(mms_sink_open(NULL, "null", &p, &sink, &err) == 0 && sink);
    CHECK(sink && sink->driver == &mms_sink_null);
    for (int i = 0; sink && i < 5; i++)
        CHECK(clip_write(&c, sink, i, i, &err) == 0);
    CHECK(mms_sink_close(sink, &err) == 0);
    CHECK(mms_sink_close(NULL, &err) == 0);
    clip_close(&c);
}

/* A file and null handle no control() request: each is -ENOTSUP, touches
 * no data, and the sink still writes afterwards. */
static void test_controls_not_supported(void)
{
    static const int requests[] = {MMS_SINK_CTRL_PAUSE, MMS_SINK_CTRL_RESUME,
                                   MMS_SINK_CTRL_REDRAW, MMS_SINK_CTRL_CHECK_EVENTS, 1000};
    const char *urls[] = {"null", path_in_tmp("controls.mkv")};
    for (int u = 0; u < 2; u++) {
        struct clip c;
        struct mms_sink *sink = NULL;
        struct mms_err err = {{0}};
        struct mms_sink_params p = params((AVRational){1, 25});
        CHECK(clip_open(&c, W, H) == 0);
        CHECK_MSG(mms_sink_open(NULL, urls[u], &p, &sink, &err) == 0, "%s", err.msg);
        for (size_t i = 0; sink && i < sizeof(requests) / sizeof(requests[0]); i++) {
            unsigned ev = 12345;
            CHECK_EQ(mms_sink_control(sink, requests[i], &ev, &err), -ENOTSUP);
            CHECK_EQ(ev, 12345);
        }
        CHECK(!sink || !sink->driver->realtime);
        for (int i = 0; sink && i < 3; i++)
            CHECK(clip_write(&c, sink, i, i, &err) == 0);
        CHECK(mms_sink_close(sink, &err) == 0);
        clip_close(&c);
    }
}

static void test_refusals(void)
{
    struct mms_sink *sink = (struct mms_sink *)1;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    const char *bad = "/nonexistent-dir/sub/out.mp4";
    CHECK(mms_sink_open(NULL, bad, &p, &sink, &err) == AVERROR(ENOENT) && !sink);
    CHECK_MSG(strstr(err.msg, bad) && strstr(err.msg, "No such file"), "%s", err.msg);

    struct mms_sink_params odd = p;
    odd.width = 321;
    CHECK(mms_sink_open(NULL, path_in_tmp("odd.mp4"), &odd, &sink, &err) ==
          AVERROR(EINVAL));
    CHECK_MSG(strstr(err.msg, "321x180") != NULL, "%s", err.msg);

    /* Connection refused: nobody listens on port 1. */
    double t0 = now();
    CHECK(mms_sink_open(NULL, "rtmp://127.0.0.1:1/live/x", &p, &sink, &err) < 0 && !sink);
    CHECK(now() - t0 < 10);

    /* Frames that do not fit and time that goes backwards are refused,
     * the sink goes on. */
    struct clip c;
    char *path = path_in_tmp("refuse.mkv");
    CHECK(clip_open(&c, W, H) == 0);
    CHECK_MSG(mms_sink_open(NULL, path, &p, &sink, &err) == 0, "%s", err.msg);
    if (sink) {
        CHECK(clip_write(&c, sink, 0, 5, &err) == 0);
        CHECK(clip_write(&c, sink, 1, 5, &err) == AVERROR(EINVAL));
        CHECK(clip_write(&c, sink, 1, 4, &err) == AVERROR(EINVAL));
        AVFrame *small = av_frame_alloc();
        small->format = AV_PIX_FMT_YUV420P;
        small->width = W / 2;
        small->height = H / 2;
        CHECK(av_frame_get_buffer(small, 0) == 0);
        small->pts = 6;
        CHECK(mms_sink_write(sink, small, NULL, &err) == AVERROR(EINVAL));
        av_frame_free(&small);
        CHECK(clip_write(&c, sink, 1, 6, &err) == 0);
        CHECK(mms_sink_close(sink, &err) == 0);
    }
    clip_close(&c);
}

/* A full disk: write() fails, later writes fail too, close frees. */
static void test_full_disk(void)
{
    char *path = path_in_tmp("full.ts");
    if (symlink("/dev/full", path) < 0) {
        CHECK_MSG(0, "symlink: %s", strerror(errno));
        return;
    }
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    CHECK(clip_open(&c, W, H) == 0);
    int ret = mms_sink_open(NULL, path, &p, &sink, &err);
    if (ret == 0) {
        for (int i = 0; i < 60 && ret >= 0; i++)
            ret = clip_write(&c, sink, i, i, &err);
        CHECK_MSG(ret < 0, "60 frames written to a full disk");
        CHECK(clip_write(&c, sink, 100, 100, &err) < 0);
        mms_sink_close(sink, &err);
    }
    CHECK_MSG(strstr(err.msg, "No space") != NULL, "%s", err.msg);
    clip_close(&c);
}

/* ---- writing through a descriptor (open_fd) ---- */

/* A new file's descriptor, its name then pointed elsewhere: a link to
 * `target` takes its place, as someone else who can write in the
 * directory could put one there. */
static int fd_then_link(const char *path, const char *target)
{
    FILE *f = fopen(target, "w");
    CHECK(f && fputs("keep", f) >= 0 && fclose(f) == 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK_MSG(fd >= 0, "%s: %s", path, strerror(errno));
    CHECK(unlink(path) == 0 && symlink(target, path) == 0);
    return fd;
}

static int kept(const char *path)
{
    char buf[16] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return !strcmp(buf, "keep");
}

/* Each container (Matroska seeks back to finish) goes into the file the
 * descriptor holds, whole and playable; the link now at its name, and the
 * file it points to, are never touched. */
static void test_fd_writes_through_the_descriptor(void)
{
    static const char *const names[] = {"fd.mp4", "fd.mkv", "fd.ts"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char target[64];
        snprintf(target, sizeof(target), "fd-target-%zu", i);
        const char *path = path_in_tmp(names[i]), *outside = path_in_tmp(target);
        int fd = fd_then_link(path, outside);
        int keep = dup(fd);
        struct clip c;
        struct mms_sink *sink = NULL;
        struct mms_err err = {{0}};
        struct mms_sink_params p = params((AVRational){1, 25});
        int ret = clip_open(&c, W, H);
        if (!ret)
            ret = mms_sink_open_fd(NULL, path, fd, &p, &sink, &err);
        CHECK_MSG(ret == 0 && sink && sink->driver == &mms_sink_file, "%s: %s", names[i],
                  err.msg);
        for (int k = 0; !ret && k < 30; k++)
            ret = clip_write(&c, sink, k, k, &err);
        CHECK_MSG(mms_sink_close(sink, &err) == 0 && !ret, "%s: %s", names[i], err.msg);
        CHECK_MSG(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "%s: the sink left fd open",
                  names[i]);
        CHECK_MSG(kept(outside), "%s: the file behind the link was written", names[i]);
        char via[64];
        snprintf(via, sizeof(via), "/proc/self/fd/%d", keep);
        static struct readout r;
        read_back(via, &r);
        CHECK_MSG(r.n == 30 && r.end == AVERROR_EOF, "%s: %d frames in the file", names[i],
                  r.n);
        close(keep);
        clip_close(&c);
    }
}

/* The sinks' fdatasync calls on one descriptor, counted: this binary's
 * definition comes before the C library's. */
static atomic_int sync_watch = -1, syncs;

int fdatasync(int fd)
{
    if (fd == atomic_load(&sync_watch))
        atomic_fetch_add(&syncs, 1);
    return (int)syscall(SYS_fdatasync, fd);
}

/* A recording on a descriptor reaches the disk about once a second, and
 * whole at its close: the kernel alone would hold up to 30 s of it, lost
 * to a power cut. */
static void test_fd_syncs_every_second_and_at_close(void)
{
    const char *path = path_in_tmp("synced.mp4");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    p.live = 1;
    CHECK(clip_open(&c, W, H) == 0);
    atomic_store(&syncs, 0);
    atomic_store(&sync_watch, fd);
    CHECK_MSG(mms_sink_open_fd(&mms_sink_file, path, fd, &p, &sink, &err) == 0, "%s", err.msg);
    double t0 = now();
    /* 2.6 s of wall time, a frame every 40 ms. */
    for (int i = 0; sink && i < 65; i++) {
        CHECK(clip_write(&c, sink, i, i, &err) == 0);
        usleep(40000);
    }
    int during = atomic_load(&syncs);
    double took = now() - t0;
    CHECK(mms_sink_close(sink, &err) == 0);
    int after = atomic_load(&syncs);
    atomic_store(&sync_watch, -1);
    clip_close(&c);
    CHECK_MSG(during >= 2 && during <= (int)took + 1, "%d syncs in %.1f s of writing", during,
              took);
    CHECK_MSG(after == during + 1, "%d syncs at the close", after - during);
}

/* A failed open leaves the descriptor to the caller, open and with
 * nothing written: a driver that writes no file, a name of no container,
 * no descriptor at all. */
static void test_fd_refusals_leave_the_descriptor(void)
{
    const char *path = path_in_tmp("refused-fd.bin");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    struct mms_sink *sink = (struct mms_sink *)1;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    CHECK_EQ(mms_sink_open_fd(&mms_sink_stream, "udp://127.0.0.1:9", fd, &p, &sink, &err),
             AVERROR(EINVAL));
    CHECK_MSG(!sink && strstr(err.msg, "open file"), "%s", err.msg);
    sink = (struct mms_sink *)1;
    CHECK_EQ(mms_sink_open_fd(&mms_sink_file, "out.avi", fd, &p, &sink, &err), AVERROR(EINVAL));
    CHECK_MSG(!sink && strstr(err.msg, "out.avi"), "%s", err.msg);
    sink = (struct mms_sink *)1;
    CHECK_EQ(mms_sink_open_fd(NULL, "none.mp4", -1, &p, &sink, &err), AVERROR(EBADF));
    CHECK(!sink);
    struct stat st;
    CHECK_MSG(fcntl(fd, F_GETFD) != -1, "a refused open closed the caller's descriptor");
    CHECK(fstat(fd, &st) == 0 && st.st_size == 0);
    close(fd);
}

/* A descriptor on a full disk: the write that fails says so, as a file
 * opened by name would. */
static void test_fd_full_disk(void)
{
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    CHECK(clip_open(&c, W, H) == 0);
    int ret = mms_sink_open_fd(NULL, "full.ts", fd, &p, &sink, &err);
    if (ret == 0) {
        for (int i = 0; i < 60 && ret >= 0; i++)
            ret = clip_write(&c, sink, i, i, &err);
        CHECK_MSG(ret < 0, "60 frames written to a full disk");
        mms_sink_close(sink, NULL);
    } else {
        close(fd);
    }
    CHECK_MSG(strstr(err.msg, "full.ts") && strstr(err.msg, "No space"), "%s", err.msg);
    clip_close(&c);
}

/* Whether some socket is bound to UDP `port` (a listener is ready). */
/* A line of a /proc/net table holds `want`. */
static int proc_net_has(const char *table, const char *want)
{
    FILE *f = fopen(table, "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, want) != NULL;
    if (f)
        fclose(f);
    return found;
}

static int udp_bound(int port)
{
    char want[16];
    snprintf(want, sizeof(want), ":%04X ", port);
    return proc_net_has("/proc/net/udp", want);
}

/* A TCP port in LISTEN (state 0A) on 127.0.0.1, read from /proc: a
 * connection to find out would be the one the listener takes. */
static int tcp_listening(int port)
{
    char want[32];
    snprintf(want, sizeof(want), ":%04X 00000000:0000 0A", port);
    return proc_net_has("/proc/net/tcp", want);
}

static int open_fds(void)
{
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

/* An rtsp:// output whose receiver dies: the write fails, and the close
 * that follows leaves no socket behind. mmsd opens the output again after
 * each failure, so one leaked socket a time ran it out of descriptors. */
static void test_rtsp_failed_session_leaves_no_socket(void)
{
    char url[64];
    int port = 20000 + (getpid() * 17 + 5) % 20000;
    snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/live", port);
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    p.live = 1;
    CHECK(clip_open(&c, W, H) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("ffmpeg", "ffmpeg", "-nostdin", "-v", "quiet", "-rtsp_flags", "listen", "-i", url,
               "-f", "null", "-", (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    for (int i = 0; i < 1000 && !tcp_listening(port); i++)
        usleep(10000);
    CHECK_MSG(tcp_listening(port), "ffmpeg does not listen on port %d", port);
    int before = open_fds();
    CHECK_MSG(mms_sink_open(NULL, url, &p, &sink, &err) == 0, "%s", err.msg);
    int rc = 0, i;
    for (i = 0; sink && i < 25 && !rc; i++) {
        rc = clip_write(&c, sink, i, i, &err);
        usleep(10000);
    }
    CHECK_MSG(rc == 0, "streaming to a live receiver: %s", err.msg);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (; sink && i < 1000 && !rc; i++) {
        rc = clip_write(&c, sink, i, i, &err);
        usleep(10000);
    }
    CHECK_MSG(rc < 0, "no write failed in %d frames after the receiver died", i);
    if (sink)
        mms_sink_close(sink, &err);
    clip_close(&c);
    CHECK_MSG(open_fds() == before, "descriptors open: %d before the output, %d after its close",
              before, open_fds());
}

/* An output's stream key and password stay out of its messages: the
 * rtmp key, a long userinfo (cut at the message's length it would no
 * longer look like one to a later redaction). */
static void test_url_secrets_are_not_in_messages(void)
{
    char urls[2][700], pw[401];
    memset(pw, 'P', 400);
    pw[400] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    /* Bound and never listened on: the connection is refused. */
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    snprintf(urls[0], sizeof(urls[0]), "rtmp://127.0.0.1:%d/live/KKKKKKKKKKKK",
             ntohs(a.sin_port));
    snprintf(urls[1], sizeof(urls[1]), "rtsp://operator:%s@127.0.0.1:%d/x", pw,
             ntohs(a.sin_port));
    for (int i = 0; i < 2; i++) {
        struct mms_sink *sink = NULL;
        struct mms_err err = {{0}};
        struct mms_sink_params p = params((AVRational){1, 25});
        p.live = 1;
        CHECK(mms_sink_open(NULL, urls[i], &p, &sink, &err) < 0);
        CHECK_MSG(err.msg[0] && !strstr(err.msg, "KKKKKKKK") && !strstr(err.msg, "PPPPPPPP"),
                  "a secret is shown: %s", err.msg);
        CHECK_MSG(strstr(err.msg, "127.0.0.1"), "the output is not named: %s", err.msg);
    }
    close(fd);
}

/* Streamed to UDP and caught by an ffmpeg started first. */
static void test_udp(void)
{
    char url[64];
    char *got = path_in_tmp("udp.ts");
    int port = 20000 + (getpid() * 13) % 20000;
    snprintf(url, sizeof(url), "udp://127.0.0.1:%d", port);
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    p.live = 1;
    CHECK(clip_open(&c, W, H) == 0);
    CHECK_MSG(mms_sink_open(NULL, url, &p, &sink, &err) == 0, "%s", err.msg);
    CHECK(sink && sink->driver == &mms_sink_stream);
    pid_t pid = fork();
    if (pid == 0) {
        char in[128];
        snprintf(in, sizeof(in), "%s?timeout=2500000", url);
        execlp("ffmpeg", "ffmpeg", "-nostdin", "-v", "quiet", "-y", "-i", in, "-c", "copy",
               got, (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    for (int i = 0; i < 1000 && !udp_bound(port); i++)
        usleep(10000);
    CHECK_MSG(udp_bound(port), "ffmpeg does not listen on port %d", port);
    for (int i = 0; sink && i < 50; i++) {
        CHECK(clip_write(&c, sink, i, i, &err) == 0);
        usleep(10000); /* a real stream is paced; a burst would overflow */
    }
    CHECK(mms_sink_close(sink, &err) == 0);
    clip_close(&c);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    /* ffmpeg ends with the read timeout, which it reports as an error. */
    char out[512];
    probe(got, out, sizeof(out));
    CHECK_MSG(strstr(out, "nb_read_frames=50") && strstr(out, "codec_name=h264"), "%s", out);
}

/* Reported, not enforced: encoding 720p to a file. */
static void test_speed(void)
{
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = {.width = 1280, .height = 720, .time_base = {1, 25},
                                .frame_rate = {25, 1}};
    char *path = path_in_tmp("speed.mp4");
    int n = 100;
    if (clip_open(&c, 1280, 720) < 0 || mms_sink_open(NULL, path, &p, &sink, &err) < 0) {
        CHECK_MSG(0, "%s", err.msg);
        clip_close(&c);
        return;
    }
    /* Frames made first, so only the encoder is timed: one second of
     * the clip, over and over. */
    AVFrame *frames[25];
    for (int i = 0; i < 25; i++) {
        frames[i] = av_frame_clone(c.frame);
        CHECK(av_frame_make_writable(frames[i]) == 0);
        mms_synth_frame(c.synth, i, frames[i], NULL, 0);
    }
    double t0 = now();
    for (int i = 0; i < n; i++) {
        frames[i % 25]->pts = i;
        CHECK(mms_sink_write(sink, frames[i % 25], NULL, &err) == 0);
    }
    CHECK(mms_sink_close(sink, &err) == 0);
    printf("encode 1280x720 to .mp4: %.0f frames/s\n", n / (now() - t0));
    for (int i = 0; i < 25; i++)
        av_frame_free(&frames[i]);
    clip_close(&c);
}

/* A receiver on 127.0.0.1 that reads nothing: a listening socket whose
 * connections are never even accepted (the kernel completes them), with a
 * receive window of a few kilobytes. */
static int deaf_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len) || listen(fd, 4)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static atomic_int give_up;

static int given_up(void *opaque)
{
    return atomic_load((atomic_int *)opaque);
}

struct watch {
    atomic_int writing; /* frame number in write + 1; 0: none */
    atomic_int stuck;   /* the frame whose write was given up on */
    atomic_int done;
    double at;          /* when it was */
};

/* Gives up on the write in progress once it has waited 300 ms. */
static void *watch_main(void *arg)
{
    struct watch *w = arg;
    int last = 0;
    double since = now();
    while (!atomic_load(&w->done) && !atomic_load(&give_up)) {
        int cur = atomic_load(&w->writing);
        if (cur != last || !cur) {
            last = cur;
            since = now();
        } else if (now() - since > 0.3) {
            w->at = now();
            atomic_store(&w->stuck, cur);
            atomic_store(&give_up, 1);
        }
        usleep(5000);
    }
    return NULL;
}

/* A tcp:// stream whose receiver reads nothing: writing blocks after about
 * a second of the stream at its rate cap (its socket buffer is bounded,
 * not the megabytes loopback would give), and the caller's interrupt ends
 * the blocked write at once, with a reason, long before the 5 s timeout. */
static void test_tcp_stalled_receiver(void)
{
    int port = 0, fd = deaf_listener(&port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    p.live = 1;
    p.interrupt = given_up;
    p.interrupt_opaque = &give_up;
    atomic_store(&give_up, 0);
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = W;
    f->height = H;
    CHECK(av_frame_get_buffer(f, 0) == 0);
    CHECK_MSG(mms_sink_open(NULL, url, &p, &sink, &err) == 0, "%s", err.msg);
    static struct watch w;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, watch_main, &w) == 0);
    int rc = 0, i;
    /* Noise does not compress: every frame is as big as the cap allows. */
    for (i = 0; sink && i < 2000 && !rc; i++) {
        CHECK(av_frame_make_writable(f) == 0);
        for (int pl = 0; pl < 3; pl++)
            for (int y = 0; y < (pl ? H / 2 : H); y++)
                for (int x = 0; x < (pl ? W / 2 : W); x++)
                    f->data[pl][y * f->linesize[pl] + x] = (uint8_t)rand();
        f->pts = i;
        atomic_store(&w.writing, i + 1);
        rc = mms_sink_write(sink, f, NULL, &err);
        atomic_store(&w.writing, 0);
    }
    double late = now() - w.at;
    atomic_store(&w.done, 1);
    pthread_join(t, NULL);
    printf("tcp stream to a deaf receiver: stuck at frame %d, returned %.3f s after the "
           "interrupt: %s\n", atomic_load(&w.stuck), late, err.msg);
    CHECK_MSG(rc < 0 && atomic_load(&w.stuck), "no write blocked in %d frames", i);
    CHECK_MSG(atomic_load(&w.stuck) < 250, "a write blocked only at frame %d (8 s of video)",
              atomic_load(&w.stuck));
    CHECK_MSG(late < 0.5, "the write went on %.3f s after the interrupt", late);
    CHECK_MSG(strstr(err.msg, url) && strstr(err.msg, "interrupted"), "%s", err.msg);
    double t0 = now();
    mms_sink_close(sink, &err);
    CHECK_MSG(now() - t0 < 0.5, "closing took %.3f s", now() - t0);
    av_frame_free(&f);
    close(fd);
}

/* Errors reach the checks through mms_err, as they reach the CLI's user;
 * FFmpeg's own complaints about the damage done on purpose are noise. */
__attribute__((constructor)) static void quiet(void)
{
    mms_image_quiet(1);
}

/* Only network outputs are opened again after a failure: a file opened
 * again would be truncated, a closed window stays closed. */
/* ---- outputs on a shared encoder ---- */

static struct mms_encoder *shared_encoder(const char *url, struct mms_sink_params *p)
{
    struct mms_enc_settings s;
    struct mms_encoder *e = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_sink_encoding(NULL, url, p, &s) == 1);
    s.global_header = 1; /* for the MP4 beside the TS */
    CHECK_MSG(mms_encoder_open(&s, "shared", &e, &err) == 0, "%s", err.msg);
    p->encoder = e;
    return e;
}

/* One encode, two muxers: both files play every frame. */
static void test_two_sinks_on_one_encoder(void)
{
    const char *urls[] = {path_in_tmp("shared.mp4"), path_in_tmp("shared.ts")};
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_encoder *e = shared_encoder(urls[0], &p);
    struct mms_sink *sinks[2] = {NULL, NULL};
    struct mms_err err = {{0}};
    struct clip c;
    AVPacket *pkt = av_packet_alloc();
    CHECK(clip_open(&c, W, H) == 0);
    for (int k = 0; e && k < 2; k++)
        CHECK_MSG(mms_sink_open(NULL, urls[k], &p, &sinks[k], &err) == 0, "%s", err.msg);
    for (int i = 0; e && sinks[0] && sinks[1] && i <= 50; i++) {
        if (i < 50) {
            CHECK(av_frame_make_writable(c.frame) == 0 &&
                  !mms_synth_frame(c.synth, i, c.frame, NULL, 0));
            c.frame->pts = i;
        }
        CHECK(mms_encoder_send(e, i < 50 ? c.frame : NULL, &err) == 0);
        while (mms_encoder_receive(e, pkt, &err) == 0)
            for (int k = 0; k < 2; k++)
                CHECK_MSG(mms_sink_write_packet(sinks[k], pkt, &err) == 0, "%s", err.msg);
    }
    for (int k = 0; k < 2; k++)
        CHECK_MSG(mms_sink_close(sinks[k], &err) == 0, "%s", err.msg);
    av_packet_free(&pkt);
    mms_encoder_free(e);
    clip_close(&c);
    for (int k = 0; k < 2; k++) {
        struct readout r;
        read_back(urls[k], &r);
        CHECK_MSG(r.n == 50 && r.end == AVERROR_EOF, "%s: %d frames", urls[k], r.n);
    }
}

static void test_shared_sink_takes_no_frames(void)
{
    const char *url = path_in_tmp("noframes.mkv");
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_encoder *e = shared_encoder(url, &p);
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct clip c;
    CHECK(clip_open(&c, W, H) == 0);
    CHECK_MSG(e && mms_sink_open(NULL, url, &p, &sink, &err) == 0, "%s", err.msg);
    if (sink)
        CHECK(clip_write(&c, sink, 0, 0, &err) == AVERROR(EINVAL));
    CHECK(mms_sink_close(sink, &err) == 0);
    mms_encoder_free(e);
    clip_close(&c);
}

static void test_own_encoder_sink_takes_no_packets(void)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    AVPacket *pkt = av_packet_alloc();
    CHECK_MSG(mms_sink_open(NULL, path_in_tmp("nopackets.mkv"), &p, &sink, &err) == 0, "%s",
              err.msg);
    if (sink)
        CHECK(mms_sink_write_packet(sink, pkt, &err) == AVERROR(EINVAL));
    CHECK(mms_sink_close(sink, &err) == 0);
    av_packet_free(&pkt);
}

/* A null output encodes nothing and cannot share an encoder. */
static void test_null_has_no_encoding(void)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_enc_settings s;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_sink_encoding(NULL, "null", &p, &s) == 0);
    struct mms_encoder *e = shared_encoder(path_in_tmp("x.mp4"), &p);
    CHECK(mms_sink_open(NULL, "null", &p, &sink, &err) == AVERROR(EINVAL) && !sink);
    mms_encoder_free(e);
}

/* Which outputs may share: live, a file and a stream of one size want the
 * same encoding; offline, a file wants a better one than a stream. */
static void test_live_file_and_stream_share(void)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_enc_settings f, st;
    p.live = 1;
    CHECK(mms_sink_encoding(NULL, "a.mkv", &p, &f) == 1);
    CHECK(mms_sink_encoding(NULL, "tcp://127.0.0.1:9", &p, &st) == 1);
    CHECK(mms_enc_settings_equal(&f, &st));
    CHECK(f.global_header && !st.global_header); /* Matroska wants headers, TS not */
}

static void test_offline_file_and_stream_do_not(void)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_enc_settings f, g, st;
    CHECK(mms_sink_encoding(NULL, "a.mkv", &p, &f) == 1);
    CHECK(mms_sink_encoding(NULL, "b.mp4", &p, &g) == 1);
    CHECK(mms_sink_encoding(NULL, "udp://127.0.0.1:9", &p, &st) == 1);
    CHECK(mms_enc_settings_equal(&f, &g));
    CHECK(!mms_enc_settings_equal(&f, &st));
    p.width = W * 2;
    CHECK(mms_sink_encoding(NULL, "b.mp4", &p, &g) == 1);
    CHECK(!mms_enc_settings_equal(&f, &g));
}

static void test_reopen_flags(void)
{
    CHECK(mms_sink_stream.reopen);
    CHECK(!mms_sink_file.reopen);
    CHECK(!mms_sink_null.reopen);
}

MMS_TESTS(T(test_mp4), T(test_mkv), T(test_ts), T(test_timestamps), T(test_killed),
          T(test_partial), T(test_find), T(test_null), T(test_controls_not_supported),
          T(test_refusals), T(test_full_disk), T(test_fd_writes_through_the_descriptor),
          T(test_fd_syncs_every_second_and_at_close), T(test_fd_refusals_leave_the_descriptor), T(test_fd_full_disk),
          T(test_udp), T(test_url_secrets_are_not_in_messages), T(test_rtsp_failed_session_leaves_no_socket), T(test_tcp_stalled_receiver), T(test_speed), T(test_reopen_flags),
          T(test_two_sinks_on_one_encoder), T(test_shared_sink_takes_no_frames),
          T(test_own_encoder_sink_takes_no_packets), T(test_null_has_no_encoding),
          T(test_live_file_and_stream_share), T(test_offline_file_and_stream_do_not))
