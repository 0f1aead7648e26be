#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mathematics.h>

#include "harness.h"
#include "io/image.h"
#include "io/sink.h"
#include "io/source.h"
#include "io/synth.h"

#define MAX_FRAMES 400

static char *path_in_tmp(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", mms_test_tmpdir(), name);
    return p;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "command failed: %s", cmd);
    return rc;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* A clip made by the ffmpeg CLI: `args` go between the input and the
 * output file. */
static const char *make_clip(const char *name, const char *src, const char *args)
{
    char *p = path_in_tmp(name);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -f lavfi -i %s %s '%s'", src, args,
             p);
    return sh(cmd) ? NULL : p;
}

/* What ffprobe says the frames' timestamps are. */
static int probe_pts(const char *path, int64_t *pts, int max)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 -show_entries "
             "frame=best_effort_timestamp -of default=nw=1:nk=1 '%s'", path);
    FILE *f = popen(cmd, "r");
    int n = 0;
    char line[128];
    while (f && fgets(line, sizeof(line), f))
        if (n < max && line[0] != '\n')
            pts[n++] = strtoll(line, NULL, 10);
    CHECK(f && pclose(f) == 0);
    return n;
}

struct readout {
    int n;
    int64_t pts[MAX_FRAMES];
    int end; /* the return value that stopped reading */
    int64_t errors;
    int monotonic, writable, wrong_format;
    struct mms_source_info info;
    char msg[512];
};

static int read_all(const char *url, const struct mms_source_opts *o, struct readout *r)
{
    memset(r, 0, sizeof(*r));
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    int ret = mms_source_open(url, o, &s, &err);
    if (ret < 0) {
        snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
        CHECK(s == NULL);
        return ret;
    }
    r->info = *mms_source_info(s);
    AVFrame *f = av_frame_alloc();
    r->monotonic = r->writable = 1;
    while ((ret = mms_source_read(s, f, &err)) == 0) {
        if (r->n < MAX_FRAMES)
            r->pts[r->n] = f->pts;
        if (r->n && f->pts <= r->pts[r->n < MAX_FRAMES ? r->n - 1 : MAX_FRAMES - 1])
            r->monotonic = 0;
        r->writable &= av_frame_is_writable(f);
        r->wrong_format += f->format != AV_PIX_FMT_YUV420P || f->width != r->info.width ||
                           f->height != r->info.height;
        r->n++;
    }
    r->end = ret;
    snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
    /* The end stays the end. */
    if (ret == AVERROR_EOF)
        CHECK(mms_source_read(s, f, &err) == AVERROR_EOF);
    r->errors = mms_source_decode_errors(s);
    av_frame_free(&f);
    mms_source_close(s);
    return 0;
}

static void test_file(void)
{
    /* B-frames, so decode order differs from display order. */
    const char *clip = make_clip("clip.mp4", "testsrc=size=320x240:rate=25",
                                 "-frames:v 50 -c:v libx264 -bf 2 -pix_fmt yuv420p");
    if (!clip)
        return;
    static struct readout r;
    int64_t want[MAX_FRAMES];
    int nwant = probe_pts(clip, want, MAX_FRAMES);
    CHECK(nwant == 50);
    CHECK_MSG(read_all(clip, NULL, &r) == 0, "%s", r.msg);
    CHECK_MSG(r.n == 50, "%d frames", r.n);
    CHECK(r.end == AVERROR_EOF);
    CHECK(r.errors == 0);
    CHECK(r.monotonic && r.writable && !r.wrong_format);
    CHECK(r.info.width == 320 && r.info.height == 240);
    CHECK(r.info.frame_rate.num == 25 && r.info.frame_rate.den == 1);
    CHECK(!r.info.live);
    CHECK(!strcmp(r.info.codec, "h264"));
    CHECK(strstr(r.info.format, "mp4") != NULL);
    /* 50 frames at 25 fps: what mms run's progress and time left use. */
    CHECK_MSG(llabs(r.info.duration_us - 2000000) <= 40000, "duration %lld us",
              (long long)r.info.duration_us);
    for (int i = 0; i < r.n && i < nwant; i++)
        CHECK_MSG(r.pts[i] == want[i], "frame %d: pts %lld, ffprobe %lld", i,
                  (long long)r.pts[i], (long long)want[i]);
}

/* The pixels are what ffmpeg decodes, and ours to draw on. */
static void test_pixels(void)
{
    const char *clip = make_clip("pix.mkv", "testsrc=size=96x64:rate=10",
                                 "-frames:v 3 -c:v libx264 -pix_fmt yuv420p");
    char *raw = path_in_tmp("pix.yuv");
    char cmd[2048];
    if (!clip)
        return;
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -i '%s' -f rawvideo '%s'", clip,
             raw);
    if (sh(cmd))
        return;
    static uint8_t want[96 * 64 * 3 / 2];
    FILE *f = fopen(raw, "rb");
    CHECK(f && fread(want, 1, sizeof(want), f) == sizeof(want));
    if (f)
        fclose(f);
    struct mms_source *s = NULL;
    struct mms_err err;
    AVFrame *fr = av_frame_alloc();
    CHECK_MSG(mms_source_open(clip, NULL, &s, &err) == 0, "%s", err.msg);
    if (s && mms_source_read(s, fr, &err) == 0) {
        long diff = 0;
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 96; x++)
                diff += fr->data[0][y * fr->linesize[0] + x] != want[y * 96 + x];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 48; x++) {
                diff += fr->data[1][y * fr->linesize[1] + x] != want[96 * 64 + y * 48 + x];
                diff += fr->data[2][y * fr->linesize[2] + x] !=
                        want[96 * 64 * 5 / 4 + y * 48 + x];
            }
        CHECK_MSG(diff == 0, "%ld samples differ from ffmpeg's decoding", diff);
        memset(fr->data[0], 0, fr->linesize[0] * 64); /* must be allowed */
        /* The next frame is a different buffer, decoded unharmed. */
        AVFrame *next = av_frame_alloc();
        CHECK(mms_source_read(s, next, &err) == 0);
        CHECK(next->data[0] != fr->data[0]);
        av_frame_free(&next);
    }
    av_frame_free(&fr);
    mms_source_close(s);
}

/* Not YUV420P: converted; full-range 4:2:0 (MJPEG): made limited. */
static void test_formats(void)
{
    static struct readout r;
    const char *rgb = make_clip("rgb.mkv", "testsrc=size=160x120:rate=25",
                                "-frames:v 10 -c:v ffv1 -pix_fmt bgr0");
    if (rgb) {
        CHECK_MSG(read_all(rgb, NULL, &r) == 0, "%s", r.msg);
        CHECK(r.n == 10 && !r.wrong_format && r.writable && r.monotonic);
        CHECK(r.info.width == 160 && r.info.height == 120);
    }
    const char *mjpeg = make_clip("j.avi", "testsrc=size=160x120:rate=25",
                                  "-frames:v 10 -c:v mjpeg -pix_fmt yuvj420p");
    if (mjpeg) {
        CHECK_MSG(read_all(mjpeg, NULL, &r) == 0, "%s", r.msg);
        CHECK(r.n == 10 && !r.wrong_format && r.monotonic);
    }
}

/* The first frame's luma and chroma at its centre, and its range. */
static int centre(const char *url, int yuv[3], int *range)
{
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    AVFrame *f = av_frame_alloc();
    int ret = mms_source_open(url, NULL, &s, &err);
    if (!ret)
        ret = mms_source_read(s, f, &err);
    CHECK_MSG(ret == 0, "%s: %s", url, err.msg);
    if (!ret) {
        int x = f->width / 2, y = f->height / 2;
        yuv[0] = f->data[0][y * f->linesize[0] + x];
        yuv[1] = f->data[1][y / 2 * f->linesize[1] + x / 2];
        yuv[2] = f->data[2][y / 2 * f->linesize[2] + x / 2];
        *range = f->color_range;
        CHECK(f->format == AV_PIX_FMT_YUV420P);
    }
    av_frame_free(&f);
    mms_source_close(s);
    return ret;
}

/* Full-range frames (a J format, or the flag on an ordinary one) leave
 * in limited range: the encoders would record their levels as limited. */
static void test_full_range_becomes_limited(void)
{
    static const struct {
        const char *url;
        int y, range_in;
    } cases[] = {
        {"lavfi:color=c=white:s=64x48:r=10:d=0.3,scale=out_range=full,format=yuvj420p", 235, 1},
        {"lavfi:color=c=black:s=64x48:r=10:d=0.3,scale=out_range=full,format=yuvj420p", 16, 1},
        {"lavfi:color=c=white:s=64x48:r=10:d=0.3,scale=out_range=full,format=yuvj422p", 235, 1},
        {"lavfi:color=c=white:s=64x48:r=10:d=0.3,format=yuv420p", 235, 0},
        {"lavfi:color=c=black:s=64x48:r=10:d=0.3,format=yuv420p", 16, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int yuv[3] = {0}, range = -1;
        if (centre(cases[i].url, yuv, &range))
            continue;
        CHECK_MSG(abs(yuv[0] - cases[i].y) <= 1 && abs(yuv[1] - 128) <= 1 &&
                      abs(yuv[2] - 128) <= 1,
                  "%s: Y %d U %d V %d, want Y %d", cases[i].url, yuv[0], yuv[1], yuv[2],
                  cases[i].y);
        CHECK_MSG(range != AVCOL_RANGE_JPEG, "%s: still flagged full range", cases[i].url);
    }
    /* An IP camera's full-range H.264: yuv420p with the range in its VUI. */
    static const char *const colour[] = {"white", "black"};
    for (int k = 0; k < 2; k++) {
        char src[128], name[32];
        int yuv[3] = {0}, range = -1;
        snprintf(src, sizeof(src), "color=c=%s:s=64x48:r=10", colour[k]);
        snprintf(name, sizeof(name), "full-%s.mkv", colour[k]);
        const char *clip = make_clip(name, src,
                                     "-frames:v 3 -vf scale=out_range=full -pix_fmt yuv420p "
                                     "-color_range pc -c:v libx264 -qp 0");
        CHECK(clip != NULL);
        if (!clip || centre(clip, yuv, &range))
            continue;
        CHECK_MSG(abs(yuv[0] - (k ? 16 : 235)) <= 1 && range != AVCOL_RANGE_JPEG,
                  "%s: Y %d range %d", name, yuv[0], range);
    }
}

static void test_lavfi(void)
{
    static struct readout r;
    CHECK_MSG(read_all("lavfi:testsrc=size=128x96:rate=10:duration=2", NULL, &r) == 0, "%s",
              r.msg);
    CHECK(r.n == 20 && r.end == AVERROR_EOF);
    CHECK(r.info.width == 128 && r.info.height == 96);
    CHECK(!r.info.live);
    CHECK(!strcmp(r.info.format, "lavfi"));
    CHECK(r.monotonic && !r.wrong_format);
    CHECK(av_cmp_q(r.info.frame_rate, (AVRational){10, 1}) == 0);
}

static void test_options(void)
{
    static struct readout r;
    const char *clip = make_clip("opt.ts", "testsrc=size=64x48:rate=25",
                                 "-frames:v 5 -c:v libx264");
    if (!clip)
        return;
    const char *good[] = {"probesize=1000000", "analyzeduration=1000000"};
    struct mms_source_opts o = {good, 2, 0, 0, NULL, NULL};
    CHECK_MSG(read_all(clip, &o, &r) == 0 && r.n == 5, "%s", r.msg);
    const char *forced[] = {"f=mpegts"};
    o = (struct mms_source_opts){forced, 1, 0, 0, NULL, NULL};
    CHECK_MSG(read_all(clip, &o, &r) == 0 && r.n == 5, "%s", r.msg);
    const char *typo[] = {"probesize=1000000", "no_such_option=1"};
    o = (struct mms_source_opts){typo, 2, 0, 0, NULL, NULL};
    CHECK(read_all(clip, &o, &r) == AVERROR(EINVAL));
    CHECK_MSG(strstr(r.msg, "no_such_option") != NULL, "%s", r.msg);
}

/* An option without '=' may be a secret typed with ':' for it: the error,
 * which reaches the log and /healthz, names its place and never its text. */
static void test_option_without_equals_is_not_shown(void)
{
    static struct readout r;
    const char *clip = make_clip("opt-noeq.ts", "testsrc=size=64x48:rate=25",
                                 "-frames:v 2 -c:v libx264");
    if (!clip)
        return;
    const char *bad[] = {"probesize=1000000", "passphrase:Sup3rSecret1"};
    struct mms_source_opts o = {bad, 2, 0, 0, NULL, NULL};
    CHECK(read_all(clip, &o, &r) == AVERROR(EINVAL));
    CHECK_MSG(strstr(r.msg, "input option 2 of 2 is not KEY=VALUE"), "%s", r.msg);
    CHECK_MSG(!strstr(r.msg, "Sup3rSecret1"), "the option is shown: %s", r.msg);
}

/* An unknown option whose name may hold a secret is named by its place:
 * one typed with ':' for '=' whose base64 value ends in '=', and a secret
 * word the input does not take. */
static void test_unknown_secret_option_is_not_shown(void)
{
    static struct readout r;
    const char *clip = make_clip("opt-secret.ts", "testsrc=size=64x48:rate=25",
                                 "-frames:v 2 -c:v libx264");
    if (!clip)
        return;
    const char *typo[] = {"probesize=1000000", "passphrase:c2VjcmV0IQ=="};
    struct mms_source_opts o = {typo, 2, 0, 0, NULL, NULL};
    CHECK(read_all(clip, &o, &r) == AVERROR(EINVAL));
    CHECK_MSG(strstr(r.msg, "input option 2 of 2 is not known"), "%s", r.msg);
    CHECK_MSG(!strstr(r.msg, "c2VjcmV0IQ"), "the secret is shown: %s", r.msg);
    const char *word[] = {"passphrase=Sup3rSecret1"};
    struct mms_source_opts w = {word, 1, 0, 0, NULL, NULL};
    CHECK(read_all(clip, &w, &r) == AVERROR(EINVAL));
    CHECK_MSG(strstr(r.msg, "input option 1 of 1 is not known") && !strstr(r.msg, "passphrase"),
              "%s", r.msg);
    const char *plain[] = {"no_such_option=1"};
    struct mms_source_opts p = {plain, 1, 0, 0, NULL, NULL};
    CHECK(read_all(clip, &p, &r) == AVERROR(EINVAL));
    CHECK_MSG(strstr(r.msg, "input option 'no_such_option' is not known"), "%s", r.msg);
}

/* A URL's password never reaches a message, however long: cut at the
 * message's length it would no longer look like one to a later redaction. */
static void test_url_password_is_not_in_messages(void)
{
    static struct readout r;
    char url[600], secret[301];
    memset(secret, 'S', 300);
    secret[300] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    /* A port bound and never listened on: the connection is refused. */
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    snprintf(url, sizeof(url), "rtsp://operator:%s@127.0.0.1:%d/cam", secret, port);
    CHECK(read_all(url, NULL, &r) < 0);
    CHECK_MSG(r.msg[0] && !strstr(r.msg, "SSSSSSSS"), "the password is shown: %s", r.msg);
    close(fd);
}

static void test_missing(void)
{
    static struct readout r;
    char *p = path_in_tmp("does-not-exist.mp4");
    CHECK(read_all(p, NULL, &r) == AVERROR(ENOENT));
    CHECK_MSG(strstr(r.msg, p) != NULL, "%s", r.msg);
}

static void write_random(const char *path, size_t n, uint32_t seed)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    for (size_t i = 0; f && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        fputc(seed >> 24, f);
    }
    if (f)
        fclose(f);
}

static void test_corrupt(void)
{
    static struct readout r;
    char *p = path_in_tmp("random.mp4");
    write_random(p, 100000, 7);
    int ret = read_all(p, NULL, &r);
    /* Random bytes may happen to probe as some format; then they must
     * still end cleanly. */
    if (ret == 0)
        CHECK(r.end == AVERROR_EOF);
    else
        CHECK_MSG(strstr(r.msg, p) != NULL, "%s", r.msg);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A cut file plays up to the cut. */
static void check_truncated(const char *clip, const char *cut_name, int frames)
{
    static struct readout r;
    char *cut = path_in_tmp(cut_name);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "head -c %ld '%s' > '%s'", file_size(clip) / 2, clip, cut);
    if (sh(cmd))
        return;
    CHECK_MSG(read_all(cut, NULL, &r) == 0, "%s", r.msg);
    CHECK_MSG(r.n >= frames / 4 && r.n < frames, "%s: %d of %d frames", cut_name, r.n,
              frames);
    CHECK(r.end == AVERROR_EOF);
    CHECK(r.monotonic);
}

static void test_truncated(void)
{
    const char *ts = make_clip("whole.ts", "testsrc=size=160x120:rate=25",
                               "-frames:v 100 -c:v libx264 -g 25");
    if (ts)
        check_truncated(ts, "cut.ts", 100);
    const char *mp4 = make_clip("whole.mp4", "testsrc=size=160x120:rate=25",
                                "-frames:v 100 -c:v libx264 -g 25 "
                                "-movflags frag_keyframe+empty_moov+default_base_moof");
    if (mp4)
        check_truncated(mp4, "cut.mp4", 100);
}

/* A Matroska file cut short of the Segment size it declares (a copy or a
 * download that stopped): it plays up to the cut, and the cut counts as a
 * decode error, as a cut MP4's failing read does. The whole file counts
 * none. */
static void test_truncated_mkv_is_damaged(void)
{
    static struct readout r;
    const char *mkv = make_clip("whole.mkv", "testsrc=size=160x120:rate=25",
                                "-frames:v 100 -c:v libx264 -g 25");
    if (!mkv)
        return;
    CHECK_MSG(read_all(mkv, NULL, &r) == 0, "%s", r.msg);
    CHECK_MSG(r.n == 100 && r.errors == 0, "whole: %d frames, %lld errors", r.n,
              (long long)r.errors);
    check_truncated(mkv, "cut.mkv", 100);
    CHECK_MSG(read_all(path_in_tmp("cut.mkv"), NULL, &r) == 0, "%s", r.msg);
    CHECK_MSG(r.errors == 1, "cut: %lld decode errors", (long long)r.errors);
}

/* A Matroska stream written to a pipe has a Segment of unknown size: it
 * ends where it ends, with no error counted. */
static void test_mkv_of_unknown_size_is_whole(void)
{
    static struct readout r;
    char *mkv = path_in_tmp("piped.mkv"), cmd[1024];
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -f lavfi -i "
             "testsrc=size=160x120:rate=25 -frames:v 60 -c:v libx264 -g 25 -f matroska - "
             "> '%s'", mkv);
    if (sh(cmd))
        return;
    CHECK_MSG(read_all(mkv, NULL, &r) == 0, "%s", r.msg);
    CHECK_MSG(r.n == 60 && r.errors == 0 && r.end == AVERROR_EOF, "%d frames, %lld errors",
              r.n, (long long)r.errors);
}

/* Garbage in the middle: errors are counted, the rest still plays. */
static void test_damaged(void)
{
    static struct readout r;
    const char *ts = make_clip("damaged.ts", "testsrc=size=160x120:rate=25",
                               "-frames:v 100 -c:v libx264 -g 25");
    if (!ts)
        return;
    long size = file_size(ts);
    FILE *f = fopen(ts, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    uint32_t seed = 3;
    for (long at = size / 5; at < size; at += size / 5) {
        fseek(f, at, SEEK_SET);
        for (int i = 0; i < 3000; i++) {
            seed = seed * 1664525u + 1013904223u;
            fputc(seed >> 24, f);
        }
    }
    fclose(f);
    CHECK_MSG(read_all(ts, NULL, &r) == 0, "%s", r.msg);
    CHECK(r.end == AVERROR_EOF);
    CHECK_MSG(r.n > 50, "%d frames", r.n);
    CHECK_MSG(r.errors > 0, "no decode errors counted");
    CHECK(r.monotonic && !r.wrong_format);
}

static int test_port(int k)
{
    return 20000 + (getpid() * 7 + k * 101) % 20000;
}

/* Nothing sends: open gives up after the timeout. */
static void test_udp_timeout(void)
{
    char url[64];
    snprintf(url, sizeof(url), "udp://127.0.0.1:%d", test_port(0));
    struct mms_source_opts o = {NULL, 0, 800000, 0, NULL, NULL};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    double t0 = now();
    int ret = mms_source_open(url, &o, &s, &err);
    double took = now() - t0;
    CHECK(ret < 0 && !s);
    CHECK_MSG(ret == AVERROR(ETIMEDOUT), "%d: %s", ret, err.msg);
    CHECK_MSG(took > 0.5 && took < 4, "took %.2f s", took);
    CHECK_MSG(strstr(err.msg, url) != NULL, "%s", err.msg);
}

struct sender {
    char url[64];
    atomic_int stop;
    int frames;
    int ret;
};

/* Streams the synthetic clip at about 50 frames a second until told. */
static void *send_udp(void *arg)
{
    struct sender *snd = arg;
    struct mms_err err;
    struct mms_synth *syn = NULL;
    struct mms_sink *sink = NULL;
    AVFrame *f = av_frame_alloc();
    const struct mms_sink_params p = {.width = 160, .height = 96, .time_base = {1, 25},
                                      .frame_rate = {25, 1}, .live = 1};
    snd->ret = -1;
    if (!f || mms_synth_create(160, 96, 5, 25, &syn, &err) < 0 ||
        mms_sink_open(NULL, snd->url, &p, &sink, &err) < 0)
        goto done;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = 160;
    f->height = 96;
    if (av_frame_get_buffer(f, 0) < 0)
        goto done;
    for (int i = 0; !atomic_load(&snd->stop) && i < 1500; i++) {
        if (av_frame_make_writable(f) < 0 || mms_synth_frame(syn, i, f, NULL, 0) < 0)
            goto done;
        f->pts = i;
        if (mms_sink_write(sink, f, NULL, &err) < 0)
            goto done;
        snd->frames = i + 1;
        usleep(20000);
    }
    snd->ret = 0;
done:
    mms_sink_close(sink, &err);
    mms_synth_free(syn);
    av_frame_free(&f);
    return NULL;
}

struct interrupter {
    struct mms_source *s;
    double at;
};

static void *interrupt_later(void *arg)
{
    struct interrupter *in = arg;
    usleep(300000);
    in->at = now();
    mms_source_interrupt(in->s);
    return NULL;
}

/* A live stream that stops: a blocked read returns when interrupted,
 * long before its timeout. */
static void test_udp_interrupt(void)
{
    static struct sender snd;
    snprintf(snd.url, sizeof(snd.url), "udp://127.0.0.1:%d", test_port(1));
    atomic_init(&snd.stop, 0);
    pthread_t sender;
    CHECK(pthread_create(&sender, NULL, send_udp, &snd) == 0);
    struct mms_source_opts o = {NULL, 0, 20000000, 0, NULL, NULL};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    int ret = mms_source_open(snd.url, &o, &s, &err);
    CHECK_MSG(ret == 0, "%s", err.msg);
    AVFrame *f = av_frame_alloc();
    int got = 0;
    if (s) {
        CHECK(mms_source_info(s)->live);
        CHECK(mms_source_info(s)->width == 160 && mms_source_info(s)->height == 96);
        while (got < 10 && mms_source_read(s, f, &err) == 0)
            got++;
        CHECK_MSG(got == 10, "%d frames: %s", got, err.msg);
    }
    atomic_store(&snd.stop, 1);
    pthread_join(sender, NULL);
    CHECK(snd.ret == 0);
    if (s) {
        struct interrupter in = {s, 0};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, interrupt_later, &in) == 0);
        while ((ret = mms_source_read(s, f, &err)) == 0)
            got++;
        /* in.at is read after the join, which orders it after the
         * interrupter's write; the source's flag is a relaxed atomic that
         * publishes nothing else. */
        double done = now();
        pthread_join(t, NULL);
        double late = done - in.at;
        CHECK_MSG(ret == AVERROR_EXIT, "%d: %s", ret, err.msg);
        CHECK_MSG(late < 1.5, "returned %.2f s after the interrupt", late);
        /* And stays interrupted. */
        CHECK(mms_source_read(s, f, &err) == AVERROR_EXIT);
    }
    av_frame_free(&f);
    mms_source_close(s);
}

/* A peer that answers and then says nothing: a listening socket whose
 * connections the kernel completes and nobody ever writes to. */
static int silent_listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len) || listen(fd, 4)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* The caller's interrupt callback: true from `at` on. */
static int past(void *opaque)
{
    return now() >= *(const double *)opaque;
}

/* An open waiting on a silent peer ends when the caller's callback says
 * so (a stop during a reconnect), not at the timeout; nothing else needs
 * to hold the source, which does not exist yet. */
static void test_open_interrupted_by_callback(void)
{
    int port = 0, fd = silent_listener(&port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    double at = now() + 0.3;
    struct mms_source_opts o = {NULL, 0, 5000000, 0, past, &at};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    int ret = mms_source_open(url, &o, &s, &err);
    double late = now() - at;
    CHECK(ret < 0 && !s);
    CHECK_MSG(ret == AVERROR_EXIT && strstr(err.msg, "interrupted"), "%d: %s", ret, err.msg);
    CHECK_MSG(late < 0.5, "the open went on %.2f s after the callback said stop", late);
    close(fd);
}

/* ------------------------------------------------------------ realtime */

/* Reads `url` to its end, timing each frame against its timestamp, both
 * counted from the first frame. */
struct timing {
    int n, end, live;
    double took, earliest; /* the most any frame came before its time, s */
};

struct guard {
    struct mms_source *s;
    atomic_int done;
};

/* A wait that would outlast any check here (an hour's gap slept through)
 * is cut short, so the test fails instead of hanging. */
static void *guard_main(void *arg)
{
    struct guard *g = arg;
    for (int i = 0; i < 300 && !atomic_load(&g->done); i++)
        usleep(50000);
    mms_source_interrupt(g->s);
    return NULL;
}

static void read_timed(const char *url, int realtime, struct timing *t)
{
    memset(t, 0, sizeof(*t));
    struct mms_source_opts o = {NULL, 0, 0, realtime, NULL, NULL};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_source_open(url, &o, &s, &err) == 0, "%s", err.msg);
    if (!s)
        return;
    const struct mms_source_info *info = mms_source_info(s);
    t->live = info->live;
    struct guard g = {s, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, guard_main, &g) == 0);
    AVFrame *f = av_frame_alloc();
    double t0 = 0;
    int64_t pts0 = 0;
    while ((t->end = mms_source_read(s, f, &err)) == 0) {
        double at = now();
        if (!t->n++) {
            t0 = at;
            pts0 = f->pts;
        }
        double due = (f->pts - pts0) * av_q2d(info->time_base);
        if (due - (at - t0) > t->earliest)
            t->earliest = due - (at - t0);
        t->took = at - t0;
    }
    atomic_store(&g.done, 1);
    pthread_join(th, NULL);
    av_frame_free(&f);
    mms_source_close(s);
}

/* 2 s of 25 fps video, realtime: about 2 s, no frame before its time;
 * without realtime, as fast as it decodes. */
static void check_paced(const char *url, int frames)
{
    struct timing t;
    read_timed(url, 1, &t);
    CHECK_MSG(t.n == frames && t.end == AVERROR_EOF && !t.live, "%s: %d frames, end %d", url,
              t.n, t.end);
    CHECK_MSG(t.took >= 1.6 && t.took < 10, "%s realtime: %d frames in %.2f s", url, t.n,
              t.took);
    CHECK_MSG(t.earliest < 0.005, "%s realtime: a frame came %.3f s early", url, t.earliest);
    read_timed(url, 0, &t);
    CHECK_MSG(t.n == frames && t.took < 1.0, "%s as fast as it goes: %d frames in %.2f s", url,
              t.n, t.took);
}

static void test_realtime_file(void)
{
    const char *clip = make_clip("rt.mp4", "testsrc2=size=320x240:rate=25",
                                 "-frames:v 50 -c:v libx264 -bf 2 -pix_fmt yuv420p");
    if (clip)
        check_paced(clip, 50);
}

static void test_realtime_lavfi(void)
{
    check_paced("lavfi:testsrc2=size=320x240:rate=25:duration=2", 50);
}

/* A source whose clock goes back (the same clip twice, as a looping
 * source or a concatenation would) keeps its pace through the wrap; one
 * that jumps an hour ahead does not wait the hour. */
static void test_realtime_clock_jumps(void)
{
    const char *one = make_clip("loop1.ts", "testsrc2=size=160x120:rate=25",
                                "-frames:v 25 -c:v mpeg2video -g 5");
    const char *jump = make_clip("jump.mkv", "testsrc2=size=160x120:rate=25",
                                 "-frames:v 50 -vf setpts='PTS+gte(N\\,25)*3600/TB' "
                                 "-c:v ffv1");
    char *twice = path_in_tmp("loop2.ts"), cmd[2048];
    snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", one, one, twice);
    if (!one || !jump || sh(cmd))
        return;
    struct timing t;
    read_timed(twice, 1, &t);
    CHECK_MSG(t.n >= 45 && t.took >= 1.5 && t.took < 10, "looped: %d frames in %.2f s", t.n,
              t.took);
    read_timed(jump, 1, &t);
    CHECK_MSG(t.n == 50 && t.took >= 1.5 && t.took < 10, "jump: %d frames in %.2f s", t.n,
              t.took);
}

struct listener {
    char url[96];
    pid_t pid;
};

/* ffmpeg serving 4 s of video on a tcp:// socket as fast as it encodes. */
static void *serve_tcp(void *arg)
{
    struct listener *l = arg;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "exec ffmpeg -nostdin -v error -f lavfi -i "
             "testsrc2=size=160x120:rate=25 -frames:v 100 -c:v mpeg2video -f mpegts "
             "'%s?listen=1'", l->url);
    CHECK(system(cmd) == 0);
    return NULL;
}

/* A network stream is paced by its sender: realtime never delays it. Here
 * the sender is faster than real time, and so is reading. */
static void test_realtime_leaves_streams_alone(void)
{
    static struct listener l;
    snprintf(l.url, sizeof(l.url), "tcp://127.0.0.1:%d", test_port(2));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, serve_tcp, &l) == 0);
    struct mms_source_opts o = {NULL, 0, 5000000, 1, NULL, NULL};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    for (int i = 0; i < 100 && !s; i++)
        if (mms_source_open(l.url, &o, &s, &err) < 0)
            usleep(100000); /* ffmpeg is not listening yet */
    CHECK_MSG(s && mms_source_info(s)->live, "%s: %s", l.url, err.msg);
    AVFrame *f = av_frame_alloc();
    int n = 0;
    double t0 = now();
    while (s && mms_source_read(s, f, &err) == 0)
        n++;
    double took = now() - t0;
    CHECK_MSG(n >= 90 && took < 2.5, "4 s of stream: %d frames in %.2f s", n, took);
    av_frame_free(&f);
    mms_source_close(s);
    pthread_join(th, NULL);
}

/* A realtime wait ends with an interrupt, not with the frame's time. */
static void test_realtime_interrupt(void)
{
    const char *clip = make_clip("slow.mkv", "testsrc2=size=160x120:rate=2",
                                 "-frames:v 10 -c:v ffv1");
    struct mms_source_opts o = {NULL, 0, 0, 1, NULL, NULL};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    if (!clip || mms_source_open(clip, &o, &s, &err) < 0) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    AVFrame *f = av_frame_alloc();
    CHECK(mms_source_read(s, f, &err) == 0);
    struct interrupter in = {s, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, interrupt_later, &in) == 0);
    int ret = mms_source_read(s, f, &err); /* due 0.5 s after the first */
    double done = now(); /* in.at after the join, as in test_udp_interrupt */
    pthread_join(t, NULL);
    double late = done - in.at;
    CHECK_MSG(late < 0.15, "the wait went on %.3f s after the interrupt (ret %d)", late, ret);
    CHECK(mms_source_read(s, f, &err) == AVERROR_EXIT);
    av_frame_free(&f);
    mms_source_close(s);
}

/* Errors reach the checks through mms_err, as they reach the CLI's user;
 * FFmpeg's own complaints about the damage done on purpose are noise. */
__attribute__((constructor)) static void quiet(void)
{
    mms_image_quiet(1);
}

MMS_TESTS(T(test_file), T(test_pixels), T(test_formats), T(test_lavfi), T(test_full_range_becomes_limited), T(test_options),
          T(test_option_without_equals_is_not_shown), T(test_unknown_secret_option_is_not_shown), T(test_url_password_is_not_in_messages), T(test_missing), T(test_corrupt),
          T(test_truncated),
          T(test_truncated_mkv_is_damaged), T(test_mkv_of_unknown_size_is_whole), T(test_damaged),
          T(test_udp_timeout), T(test_udp_interrupt), T(test_open_interrupted_by_callback),
          T(test_realtime_file),
          T(test_realtime_lavfi), T(test_realtime_clock_jumps),
          T(test_realtime_leaves_streams_alone), T(test_realtime_interrupt))
