#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "harness.h"
#include "io/jpeg.h"
#include "io/synth.h"
#include "overlay/compose.h"

#define LEFT 0xf04020u  /* orange */
#define RIGHT 0x1060e0u /* blue */
/* Per channel, averaged over a block away from edges: JPEG at a good
 * quality plus two range conversions and BT.601 rounding. A level error
 * (limited range sent as full) is 16-20 at these colours. */
#define TOL 8

/* A JPEG decoded as a browser would: full-range BT.601 to RGB. */
struct rgb {
    int w, h;
    int stride;
    uint8_t *px; /* packed RGB */
    int y_min, y_max; /* the JPEG's own luma, before RGB */
};

static AVFrame *yuv_frame(int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        av_frame_free(&f);
    return f;
}

/* Left half one colour, right half another (the split on an even column
 * so no chroma sample straddles it). */
static AVFrame *two_colour(int w, int h, uint32_t left, uint32_t right)
{
    AVFrame *f = yuv_frame(w, h);
    if (!f)
        return NULL;
    mms_fill_frame(f, left);
    int half = w / 2 & ~1;
    AVFrame view = *f;
    view.width = w - half;
    view.data[0] += half;
    view.data[1] += half / 2;
    view.data[2] += half / 2;
    mms_fill_frame(&view, right);
    return f;
}

static int decode(const uint8_t *data, size_t len, struct rgb *out)
{
    memset(out, 0, sizeof(*out));
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *dec = codec ? avcodec_alloc_context3(codec) : NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    struct SwsContext *sws = NULL;
    int ret = -ENOMEM;
    if (!dec || !pkt || !f || av_new_packet(pkt, (int)len) < 0)
        goto fail;
    memcpy(pkt->data, data, len);
    if ((ret = avcodec_open2(dec, codec, NULL)) < 0 || (ret = avcodec_send_packet(dec, pkt)) < 0 ||
        (ret = avcodec_receive_frame(dec, f)) < 0)
        goto fail;
    ret = -EINVAL;
    CHECK_MSG(f->format == AV_PIX_FMT_YUVJ420P, "decoded as %d", f->format);
    if (f->format != AV_PIX_FMT_YUVJ420P)
        goto fail;
    out->y_min = 255;
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++) {
            int v = f->data[0][y * f->linesize[0] + x];
            out->y_min = v < out->y_min ? v : out->y_min;
            out->y_max = v > out->y_max ? v : out->y_max;
        }
    /* YUV420P with src_range 1 rather than YUVJ420P: the same, without
     * swscale's warning about the J formats. */
    if (!(sws = sws_alloc_context()) || av_opt_set_int(sws, "srcw", f->width, 0) < 0 ||
        av_opt_set_int(sws, "srch", f->height, 0) < 0 ||
        av_opt_set_int(sws, "src_format", AV_PIX_FMT_YUV420P, 0) < 0 ||
        av_opt_set_int(sws, "src_range", 1, 0) < 0 ||
        av_opt_set_int(sws, "dstw", f->width, 0) < 0 ||
        av_opt_set_int(sws, "dsth", f->height, 0) < 0 ||
        av_opt_set_int(sws, "dst_format", AV_PIX_FMT_RGB24, 0) < 0 ||
        av_opt_set_int(sws, "sws_flags", SWS_POINT | SWS_ACCURATE_RND, 0) < 0 ||
        sws_init_context(sws, NULL, NULL) < 0)
        goto fail;
    out->w = f->width;
    out->h = f->height;
    /* Rows padded: swscale's RGB writers may store a few bytes past. */
    out->stride = out->w * 3 + 64;
    if (!(out->px = calloc((size_t)out->stride, (size_t)out->h)))
        goto fail;
    uint8_t *dst[4] = {out->px};
    int dst_ls[4] = {out->stride};
    sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_ls);
    ret = 0;
fail:
    sws_freeContext(sws);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return ret;
}

/* The mean colour of a (2r+1)^2 block centred on (cx, cy) vs rgb. */
static int colour_near(const struct rgb *img, int cx, int cy, int r, uint32_t rgb, int tol)
{
    long sum[3] = {0};
    int n = 0;
    for (int y = cy - r; y <= cy + r; y++)
        for (int x = cx - r; x <= cx + r; x++, n++)
            for (int c = 0; c < 3; c++)
                sum[c] += img->px[(size_t)y * img->stride + x * 3 + c];
    int ok = 1;
    for (int c = 0; c < 3; c++) {
        int want = (int)(rgb >> (16 - 8 * c) & 0xff);
        int got = (int)((sum[c] + n / 2) / n);
        if (abs(got - want) > tol) {
            fprintf(stderr, "  at %d,%d channel %d: %d, expected %d +- %d\n", cx, cy, c, got,
                    want, tol);
            ok = 0;
        }
    }
    return ok;
}

static int is_jpeg(const uint8_t *d, size_t n)
{
    return d && n > 4 && d[0] == 0xff && d[1] == 0xd8 && d[n - 2] == 0xff && d[n - 1] == 0xd9;
}

/* Encodes f, decodes it back; 0 and img filled when all went well. */
static int round_trip(struct mms_jpeg *j, const AVFrame *f, struct rgb *img, size_t *len)
{
    const uint8_t *data = NULL;
    size_t n = 0;
    struct mms_err err = {{0}};
    memset(img, 0, sizeof(*img));
    int ret = mms_jpeg_encode(j, f, &data, &n, &err);
    CHECK_MSG(ret == 0, "%dx%d: %s", f->width, f->height, err.msg);
    if (ret < 0)
        return ret;
    CHECK_MSG(is_jpeg(data, n), "%zu bytes, not FF D8 .. FF D9", n);
    if (len)
        *len = n;
    ret = decode(data, n, img);
    CHECK_MSG(ret == 0, "decoding failed: %d", ret);
    return ret;
}

static void test_colours(void)
{
    struct mms_jpeg *j = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_jpeg_create(0, 90, &j, &err) == 0, "%s", err.msg);
    AVFrame *f = two_colour(320, 240, LEFT, RIGHT);
    struct rgb img = {0};
    if (j && f && round_trip(j, f, &img, NULL) == 0) {
        CHECK_MSG(img.w == 320 && img.h == 240, "%dx%d", img.w, img.h);
        CHECK(colour_near(&img, 80, 120, 8, LEFT, TOL));
        CHECK(colour_near(&img, 240, 120, 8, RIGHT, TOL));
        CHECK(colour_near(&img, 8, 8, 4, LEFT, TOL));
        CHECK(colour_near(&img, 311, 231, 4, RIGHT, TOL));
    }
    free(img.px);
    av_frame_free(&f);
    mms_jpeg_free(j);
}

/* Black and white must reach 0 and 255 in the JPEG: a browser shows its
 * levels as they are. */
static void test_levels(void)
{
    struct mms_jpeg *j = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_jpeg_create(0, 90, &j, &err) == 0, "%s", err.msg);
    AVFrame *f = two_colour(64, 48, 0x000000, 0xffffff);
    struct rgb img = {0};
    if (j && f && round_trip(j, f, &img, NULL) == 0) {
        CHECK_MSG(img.y_min <= 3 && img.y_max >= 252, "luma %d..%d, expected 0..255",
                  img.y_min, img.y_max);
        CHECK(colour_near(&img, 12, 24, 4, 0x000000, 4));
        CHECK(colour_near(&img, 52, 24, 4, 0xffffff, 4));
    }
    free(img.px);

    /* A full-range frame (what the source passes through from an MJPEG
     * camera) keeps its levels: luma 200 stays 200, not 214. */
    if (j && f && av_frame_make_writable(f) == 0) {
        for (int y = 0; y < f->height; y++)
            memset(f->data[0] + y * f->linesize[0], 200, (size_t)f->width);
        for (int p = 1; p <= 2; p++)
            for (int y = 0; y < f->height / 2; y++)
                memset(f->data[p] + y * f->linesize[p], 128, (size_t)f->width / 2);
        f->color_range = AVCOL_RANGE_JPEG;
        if (round_trip(j, f, &img, NULL) == 0)
            CHECK_MSG(img.y_min >= 198 && img.y_max <= 202, "luma %d..%d, expected 200",
                      img.y_min, img.y_max);
        free(img.px);
        /* And back to limited: 200 is 214 in full range. */
        f->color_range = AVCOL_RANGE_MPEG;
        if (round_trip(j, f, &img, NULL) == 0)
            CHECK_MSG(img.y_min >= 212 && img.y_max <= 216, "luma %d..%d, expected 214",
                      img.y_min, img.y_max);
        free(img.px);
    }
    av_frame_free(&f);
    mms_jpeg_free(j);
}

struct scale_case {
    int max_w, w, h, want_w, want_h;
};

static void test_scaling(void)
{
    static const struct scale_case cases[] = {
        {640, 1280, 720, 640, 360},
        {640, 1279, 719, 640, 360},
        {639, 1280, 720, 638, 358},  /* 638 x 358.9: the nearest even below */
        {640, 640, 480, 640, 480},   /* at the limit: untouched */
        {640, 320, 240, 320, 240},   /* narrower: never scaled up */
        {0, 1001, 501, 1000, 500},   /* odd sizes give even */
        {0, 3, 1, 2, 2},
        {2, 100, 10, 2, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct scale_case *c = &cases[i];
        struct mms_jpeg *j = NULL;
        struct mms_err err = {{0}};
        CHECK_MSG(mms_jpeg_create(c->max_w, 90, &j, &err) == 0, "%s", err.msg);
        AVFrame *f = two_colour(c->w, c->h, LEFT, RIGHT);
        struct rgb img = {0};
        if (j && f && round_trip(j, f, &img, NULL) == 0) {
            CHECK_MSG(img.w == c->want_w && img.h == c->want_h,
                      "%dx%d max %d: %dx%d, expected %dx%d", c->w, c->h, c->max_w, img.w,
                      img.h, c->want_w, c->want_h);
            /* The colours survive the scaling. */
            if (img.w >= 64 && img.h >= 32) {
                CHECK(colour_near(&img, img.w / 4, img.h / 2, 4, LEFT, TOL));
                CHECK(colour_near(&img, img.w * 3 / 4, img.h / 2, 4, RIGHT, TOL));
            }
        }
        free(img.px);
        av_frame_free(&f);
        mms_jpeg_free(j);
    }
}

/* One encoder through size changes and back, many frames at each size
 * (the pool and the encoder's held references recycle). */
static void test_size_change(void)
{
    static const int sizes[][2] = {{320, 240}, {160, 120}, {1280, 720}, {320, 240}, {322, 242}};
    struct mms_jpeg *j = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_jpeg_create(640, 80, &j, &err) == 0, "%s", err.msg);
    for (size_t i = 0; j && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int w = sizes[i][0], h = sizes[i][1];
        AVFrame *f = two_colour(w, h, LEFT, RIGHT);
        int ow = w > 640 ? 640 : w, oh = w > 640 ? h * 640 / w : h;
        for (int k = 0; f && k < 20; k++) {
            struct rgb img = {0};
            if (round_trip(j, f, &img, NULL) == 0)
                CHECK_MSG(img.w == ow && img.h == oh, "frame %d of %dx%d: %dx%d", k, w, h,
                          img.w, img.h);
            free(img.px);
        }
        av_frame_free(&f);
    }
    mms_jpeg_free(j);
}

/* Same input, same bytes: nothing of one frame leaks into the next. */
static void test_repeatable(void)
{
    struct mms_jpeg *j = NULL;
    struct mms_err err = {{0}};
    struct mms_synth *s = NULL;
    AVFrame *a = yuv_frame(320, 240), *b = yuv_frame(320, 240);
    CHECK(mms_jpeg_create(0, 75, &j, &err) == 0);
    CHECK(mms_synth_create(320, 240, 3, 25, &s, &err) == 0);
    if (!j || !s || !a || !b || mms_synth_frame(s, 0, a, NULL, 0) < 0 ||
        mms_synth_frame(s, 30, b, NULL, 0) < 0) {
        CHECK(!"setup");
        goto done;
    }
    const uint8_t *data;
    size_t n1 = 0, n2 = 0;
    uint8_t *first = NULL;
    if (mms_jpeg_encode(j, a, &data, &n1, &err) == 0 && (first = malloc(n1)))
        memcpy(first, data, n1);
    CHECK(first);
    CHECK(mms_jpeg_encode(j, b, &data, &n2, &err) == 0);
    CHECK(mms_jpeg_encode(j, a, &data, &n2, &err) == 0);
    CHECK_MSG(first && n1 == n2 && !memcmp(first, data, n1), "%zu vs %zu bytes", n1, n2);
    free(first);
done:
    av_frame_free(&a);
    av_frame_free(&b);
    mms_synth_free(s);
    mms_jpeg_free(j);
}

static size_t encoded_size(const AVFrame *f, int quality)
{
    struct mms_jpeg *j = NULL;
    struct mms_err err = {{0}};
    const uint8_t *data = NULL;
    size_t n = 0;
    if (mms_jpeg_create(0, quality, &j, &err) == 0 && mms_jpeg_encode(j, f, &data, &n, &err) == 0)
        CHECK(is_jpeg(data, n));
    else
        CHECK_MSG(0, "quality %d: %s", quality, err.msg);
    mms_jpeg_free(j);
    return n;
}

static void test_quality(void)
{
    struct mms_synth *s = NULL;
    struct mms_err err = {{0}};
    AVFrame *f = yuv_frame(640, 360);
    if (mms_synth_create(640, 360, 5, 25, &s, &err) < 0 || !f ||
        mms_synth_frame(s, 10, f, NULL, 0) < 0) {
        CHECK_MSG(0, "setup: %s", err.msg);
        goto done;
    }
    size_t q10 = encoded_size(f, 10), q50 = encoded_size(f, 50), q90 = encoded_size(f, 90),
           q100 = encoded_size(f, 100);
    printf("  640x360 synth: q10 %zu, q50 %zu, q90 %zu, q100 %zu bytes\n", q10, q50, q90, q100);
    CHECK_MSG(q10 && q10 < q50 && q50 < q90 && q90 < q100, "%zu %zu %zu %zu", q10, q50, q90,
              q100);
    /* Coarse is coarse: a preview at 10 is a small fraction of one at 90. */
    CHECK_MSG(q10 * 3 < q90, "q10 %zu, q90 %zu", q10, q90);
done:
    av_frame_free(&f);
    mms_synth_free(s);
}

static void test_invalid(void)
{
    /* Not NULL, so that a failed create is seen to clear it. */
    struct mms_jpeg *j = (struct mms_jpeg *)&j;
    struct mms_err err = {{0}};
    static const int bad_quality[] = {0, 101, -1};
    for (size_t i = 0; i < 3; i++) {
        err.msg[0] = 0;
        CHECK(mms_jpeg_create(0, bad_quality[i], &j, &err) == -EINVAL);
        CHECK(j == NULL && strstr(err.msg, "quality"));
    }
    static const int bad_max_w[] = {-1, -640, 1, 16385};
    for (size_t i = 0; i < 4; i++) {
        err.msg[0] = 0;
        CHECK(mms_jpeg_create(bad_max_w[i], 80, &j, &err) == -EINVAL);
        CHECK(j == NULL && strstr(err.msg, "width"));
    }
    CHECK(mms_jpeg_create(0, 1, &j, &err) == 0);
    mms_jpeg_free(j);
    CHECK(mms_jpeg_create(16384, 100, &j, &err) == 0);
    mms_jpeg_free(j);
    mms_jpeg_free(NULL);

    CHECK(mms_jpeg_create(0, 80, &j, &err) == 0);
    if (!j)
        return;
    const uint8_t *data = (const uint8_t *)"x";
    size_t n = 1;

    AVFrame *rgb = av_frame_alloc();
    rgb->format = AV_PIX_FMT_RGB24;
    rgb->width = 64;
    rgb->height = 48;
    CHECK(av_frame_get_buffer(rgb, 0) == 0);
    CHECK(mms_jpeg_encode(j, rgb, &data, &n, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "rgb24") && strstr(err.msg, "yuv420p"), "%s", err.msg);
    CHECK(data == NULL && n == 0);

    AVFrame *f = yuv_frame(64, 48);
    f->format = AV_PIX_FMT_YUVJ420P;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    f->format = AV_PIX_FMT_YUV422P;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    f->format = AV_PIX_FMT_NONE;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    f->format = AV_PIX_FMT_YUV420P;

    f->width = 0;
    err.msg[0] = 0;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "empty"), "%s", err.msg);
    f->width = 64;
    f->height = 0;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    f->height = -48;
    CHECK(mms_jpeg_encode(j, f, &data, &n, &err) == -EINVAL);
    f->height = 48;

    AVFrame *empty = av_frame_alloc();
    empty->format = AV_PIX_FMT_YUV420P;
    CHECK(mms_jpeg_encode(j, empty, &data, &n, &err) == -EINVAL);
    empty->width = 64;
    empty->height = 48; /* a size but no pixels */
    CHECK(mms_jpeg_encode(j, empty, &data, &n, &err) == -EINVAL);
    CHECK(mms_jpeg_encode(j, NULL, &data, &n, &err) == -EINVAL);
    CHECK(data == NULL && n == 0);

    /* The encoder is still good after every refusal. */
    mms_fill_frame(f, LEFT);
    CHECK_MSG(mms_jpeg_encode(j, f, &data, &n, &err) == 0, "%s", err.msg);
    CHECK(is_jpeg(data, n));

    av_frame_free(&empty);
    av_frame_free(&f);
    av_frame_free(&rgb);
    mms_jpeg_free(j);
}

MMS_TESTS(T(test_colours), T(test_levels), T(test_scaling), T(test_size_change),
          T(test_repeatable), T(test_quality), T(test_invalid))
