/* The encoder outputs share: which settings make two encodings differ,
 * what it refuses, and the keyframes it is asked for. Real x264. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/log.h>

#include "harness.h"
#include "io/encoder.h"

#define W 160
#define H 96

static struct mms_enc_settings base(void)
{
    return (struct mms_enc_settings){
        .codec = AV_CODEC_ID_H264, .pix_fmt = AV_PIX_FMT_YUV420P, .width = W, .height = H,
        .time_base = {1, 25}, .frame_rate = {25, 1}, .gop = 25, .low_latency = 1, .crf = 23,
        .max_rate = 500000, .bit_rate = 500000};
}

static AVFrame *frame(int w, int h)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        av_frame_free(&f);
    return f;
}

/* The encoder of base(), or NULL after a failed check. */
static struct mms_encoder *open_base(void)
{
    struct mms_enc_settings s = base();
    struct mms_encoder *e = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_encoder_open(&s, "enc", &e, &err) == 0, "%s", err.msg);
    return e;
}

/* Sends frames pts 0..n-1, a picture that moves; keyflags[i] says which
 * packets came out as keyframes. Returns the packets received. */
static int encode_n(struct mms_encoder *e, int n, int *keyflags, int64_t *pts)
{
    AVFrame *f = frame(W, H);
    AVPacket *pkt = av_packet_alloc();
    struct mms_err err = {{0}};
    int got = 0;
    for (int i = 0; f && i <= n; i++) {
        if (i < n) {
            CHECK(av_frame_make_writable(f) == 0);
            for (int p = 0; p < 3; p++)
                memset(f->data[p], (i * 7 + p * 50) & 0xff, f->linesize[p] * (p ? H / 2 : H));
            f->pts = i;
            CHECK_MSG(mms_encoder_send(e, f, &err) == 0, "%s", err.msg);
        } else {
            CHECK(mms_encoder_send(e, NULL, &err) == 0);
        }
        while (mms_encoder_receive(e, pkt, &err) == 0) {
            if (got < n) {
                keyflags[got] = !!(pkt->flags & AV_PKT_FLAG_KEY);
                pts[got] = pkt->pts;
            }
            CHECK(pkt->duration == 1);
            got++;
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&f);
    return got;
}

static void equal_settings_share(void)
{
    struct mms_enc_settings a = base(), b = base();
    CHECK(mms_enc_settings_equal(&a, &b));
    /* Only where the headers go differs: the shared encoder puts them
     * where every muxer finds them. */
    b.global_header = 1;
    CHECK(mms_enc_settings_equal(&a, &b));
}

static void any_other_setting_does_not(void)
{
    struct mms_enc_settings a = base(), b;
    b = base(), b.width = W * 2;
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.max_rate = 0;
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.low_latency = 0;
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.gop = 50;
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.time_base = (AVRational){1, 90000};
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.frame_rate = (AVRational){30, 1};
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), b.crf = 30;
    CHECK(!mms_enc_settings_equal(&a, &b));
    b = base(), strcpy(b.preset, "ultrafast");
    CHECK(!mms_enc_settings_equal(&a, &b));
}

static void a_packet_per_frame_in_order(void)
{
    struct mms_encoder *e = open_base();
    if (!e)
        return;
    int key[60];
    int64_t pts[60];
    CHECK(encode_n(e, 60, key, pts) == 60);
    /* x264 may add a keyframe at a scene cut, never leave a longer GOP. */
    int last_key = -1;
    for (int i = 0; i < 60; i++) {
        CHECK_MSG(pts[i] == i, "packet %d: pts %lld", i, (long long)pts[i]);
        if (key[i])
            last_key = i;
        CHECK_MSG(last_key >= 0 && i - last_key < 25, "packet %d: last keyframe %d", i, last_key);
    }
    CHECK(mms_encoder_frames(e) == 60);
    mms_encoder_free(e);
}

static void a_keyframe_comes_where_asked(void)
{
    struct mms_encoder *e = open_base();
    if (!e)
        return;
    mms_encoder_key_at(e, 30);
    mms_encoder_key_at(e, 10); /* the earlier wins */
    int key[20];
    int64_t pts[20];
    CHECK(encode_n(e, 20, key, pts) == 20);
    for (int i = 0; i < 20; i++)
        CHECK_MSG(key[i] == (i == 0 || i == 10), "packet %d key %d", i, key[i]);
    mms_encoder_free(e);
}

static void the_next_frame_leaves_a_time_in_place(void)
{
    struct mms_encoder *e = open_base();
    if (!e)
        return;
    mms_encoder_key_at(e, 12);
    mms_encoder_key_at(e, INT64_MIN);
    int key[20];
    int64_t pts[20];
    CHECK(encode_n(e, 20, key, pts) == 20);
    CHECK_MSG(key[0] && key[12], "keyframes at 0 and 12: %d %d", key[0], key[12]);
    for (int i = 1; i < 20; i++)
        CHECK_MSG(key[i] == (i == 12), "packet %d key %d", i, key[i]);
    mms_encoder_free(e);
}

/* The settings x264 writes into its first packet, as text: what it was
 * opened with. NULL after a failed check. */
static char *x264_settings(const struct mms_enc_settings *s)
{
    struct mms_encoder *e = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_encoder_open(s, "enc", &e, &err) == 0, "%s", err.msg);
    AVFrame *f = frame(W, H);
    AVPacket *pkt = av_packet_alloc();
    char *text = NULL;
    for (int i = 0; e && f && i <= 2 && !text; i++) {
        if (i < 2 && av_frame_make_writable(f) == 0) {
            memset(f->data[0], 40 * i, f->linesize[0] * H);
            f->pts = i;
        }
        CHECK(mms_encoder_send(e, i < 2 ? f : NULL, &err) == 0);
        while (!text && mms_encoder_receive(e, pkt, &err) == 0) {
            const char *at = memmem(pkt->data, pkt->size, "options: ", 9);
            if (at)
                text = strndup(at, pkt->size - (at - (const char *)pkt->data));
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&f);
    mms_encoder_free(e);
    CHECK_MSG(text, "no x264 settings in the stream");
    return text;
}

/* The preset asked for is the one x264 runs (its motion search depth
 * tells: subme=0 ultrafast, 1 superfast, 2 veryfast); none asked: the
 * encoding's own, superfast in low latency, veryfast offline. */
static void the_preset_is_the_one_asked(void)
{
    static const struct {
        int low_latency;
        const char *preset, *want;
    } cases[] = {{1, "", "subme=1 "}, {0, "", "subme=2 "}, {0, "ultrafast", "subme=0 "},
                 {0, "faster", "subme=4 "}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mms_enc_settings s = base();
        s.low_latency = cases[i].low_latency;
        s.max_rate = s.low_latency ? s.max_rate : 0;
        strcpy(s.preset, cases[i].preset);
        char *text = x264_settings(&s);
        CHECK_MSG(text && strstr(text, cases[i].want), "'%s' low latency %d: want %s in %.80s",
                  cases[i].preset, cases[i].low_latency, cases[i].want, text ? text : "");
        free(text);
    }
}

/* x264 refuses a preset it does not have: the open fails and says so. */
static void an_unknown_preset_is_refused(void)
{
    struct mms_enc_settings s = base();
    strcpy(s.preset, "slowest");
    struct mms_encoder *e = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_encoder_open(&s, "enc", &e, &err) < 0 && !e);
    CHECK_MSG(strstr(err.msg, "enc: cannot open the libx264 encoder"), "%s", err.msg);
}

static void odd_sizes_are_refused(void)
{
    struct mms_enc_settings s = base();
    struct mms_encoder *e = NULL;
    struct mms_err err = {{0}};
    s.width = 161;
    CHECK(mms_encoder_open(&s, "odd", &e, &err) == AVERROR(EINVAL) && !e);
    CHECK_MSG(strstr(err.msg, "odd: ") == err.msg && strstr(err.msg, "161x96"), "%s", err.msg);
}

static void frames_that_do_not_fit_are_refused(void)
{
    struct mms_encoder *e = open_base();
    struct mms_err err = {{0}};
    AVFrame *f = frame(W, H);
    if (!e || !f)
        return;
    f->pts = 5;
    CHECK(mms_encoder_send(e, f, &err) == 0);
    CHECK(mms_encoder_send(e, f, &err) == AVERROR(EINVAL)); /* time stands still */
    f->pts = 4;
    CHECK(mms_encoder_send(e, f, &err) == AVERROR(EINVAL)); /* and goes back */
    CHECK_MSG(strstr(err.msg, "not after"), "%s", err.msg);
    AVFrame *small = frame(W / 2, H / 2);
    CHECK(small);
    if (!small)
        return;
    small->pts = 6;
    CHECK(mms_encoder_send(e, small, &err) == AVERROR(EINVAL));
    f->pts = 6; /* the encoder goes on */
    CHECK(mms_encoder_send(e, f, &err) == 0);
    CHECK(mms_encoder_frames(e) == 2);
    av_frame_free(&small);
    av_frame_free(&f);
    mms_encoder_free(e);
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

MMS_TESTS(T(equal_settings_share), T(any_other_setting_does_not), T(a_packet_per_frame_in_order),
          T(the_preset_is_the_one_asked), T(an_unknown_preset_is_refused),
          T(a_keyframe_comes_where_asked), T(the_next_frame_leaves_a_time_in_place),
          T(odd_sizes_are_refused), T(frames_that_do_not_fit_are_refused))
