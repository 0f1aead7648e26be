/*
 * What mms run and mmsd feed the network is what mms segment and mms eval
 * feed it: a frame of the Cholec80 clip (H.264, BT.709, limited range)
 * through the pipeline's pre-processing, and the same frame saved as a
 * still and read back, give the same logits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/frame.h>

#include "core/net.h"
#include "core/prepost.h"
#include "harness.h"
#include "io/image.h"
#include "io/source.h"
#include "pipeline/preprocess.h"

#define FRAME_INDEX 5

static AVFrame *clip_frame(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/../shared/data/video/cholec80_video01_10s.mp4",
             mms_test_srcdir());
    if (access(path, R_OK)) {
        /* The data is part of the project's environment; CI has it. */
        CHECK_MSG(0, "%s: missing", path);
        return NULL;
    }
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    AVFrame *f = av_frame_alloc();
    int rc = mms_source_open(path, &(struct mms_source_opts){0}, &s, &err);
    for (int i = 0; !rc && i <= FRAME_INDEX; i++)
        rc = mms_source_read(s, f, &err);
    mms_source_close(s);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        av_frame_free(&f);
    return f;
}

static struct mms_net *open_net(void)
{
    char model[1024];
    snprintf(model, sizeof(model), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    struct mms_net_opts o = {.threads = 1};
    CHECK_MSG(!mms_net_open(model, &o, &n, &err), "%s", err.msg);
    return n;
}

static size_t input_len(const struct mms_net *n)
{
    const struct mms_net_info *ni = mms_net_info(n);
    return (size_t)3 * ni->in_h * ni->in_w;
}

static int video_input(struct mms_net *n, const AVFrame *f, float *dst)
{
    const struct mms_net_info *ni = mms_net_info(n);
    struct mms_preprocess pp = {0};
    struct mms_err err = {{0}};
    int rc = mms_preprocess_frame(&pp, f, dst, ni->in_h, ni->in_w, ni->mean, ni->std, &err);
    mms_preprocess_free(&pp);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

/* The frame as `mms segment` would read it from a PNG. */
static int still_input(struct mms_net *n, const AVFrame *f, float *dst)
{
    const struct mms_net_info *ni = mms_net_info(n);
    struct mms_image img = {0}, back = {0};
    struct mms_err err = {{0}};
    char png[1024];
    snprintf(png, sizeof(png), "%s/frame.png", mms_test_tmpdir());
    int rc = mms_image_from_frame(f, MMS_IMAGE_RGB24, &img, &err);
    rc = rc ? rc : mms_image_write_png(png, &img, &err);
    rc = rc ? rc : mms_image_read(png, MMS_IMAGE_RGB24, &back, &err);
    if (!rc)
        mms_pre_rgb24(back.data, back.w, back.h, back.stride, dst, ni->in_h, ni->in_w,
                      ni->mean, ni->std);
    mms_image_free(&img);
    mms_image_free(&back);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

static float *logits(struct mms_net *n, const float *input)
{
    const struct mms_net_info *ni = mms_net_info(n);
    struct mms_err err = {{0}};
    memcpy(mms_net_input(n), input, input_len(n) * sizeof(float));
    if (mms_net_run(n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return NULL;
    }
    size_t len = (size_t)ni->out_h * ni->out_w;
    float *out = malloc(len * sizeof(float));
    memcpy(out, mms_net_logits(n), len * sizeof(float));
    return out;
}

/* The largest |a - b| relative to the largest |b|. */
static double max_rel_diff(const float *a, const float *b, size_t len)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < len; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

static void video_and_still_give_the_same_logits(void)
{
    AVFrame *f = clip_frame();
    struct mms_net *n = f ? open_net() : NULL;
    if (!n)
        goto done;
    CHECK_EQ(f->colorspace, AVCOL_SPC_BT709); /* what makes this frame a test of the matrix */
    size_t len = input_len(n);
    float *a = malloc(len * sizeof(float)), *b = malloc(len * sizeof(float));
    float *la = NULL, *lb = NULL;
    if (!video_input(n, f, a) && !still_input(n, f, b) && (la = logits(n, a)) &&
        (lb = logits(n, b))) {
        const struct mms_net_info *ni = mms_net_info(n);
        double d = max_rel_diff(la, lb, (size_t)ni->out_h * ni->out_w);
        CHECK_MSG(d <= 1e-3, "logits differ by %g of their range", d);
    }
    free(a);
    free(b);
    free(la);
    free(lb);
done:
    mms_net_close(n);
    av_frame_free(&f);
}

/* The same pixels read with another matrix or range are another input:
 * the tags are honoured, not assumed. */
static void input_differs(AVFrame *f, void (*retag)(AVFrame *), double at_least)
{
    struct mms_net *n = f ? open_net() : NULL;
    if (!n)
        return;
    size_t len = input_len(n);
    float *a = malloc(len * sizeof(float)), *b = malloc(len * sizeof(float));
    if (!video_input(n, f, a)) {
        retag(f);
        if (!video_input(n, f, b)) {
            double d = 0;
            for (size_t i = 0; i < len; i++)
                d += fabs((double)a[i] - b[i]);
            CHECK_MSG(d / len >= at_least, "mean difference %g", d / len);
        }
    }
    free(a);
    free(b);
    mms_net_close(n);
}

static void as_bt601(AVFrame *f) { f->colorspace = AVCOL_SPC_BT470BG; }
static void as_full_range(AVFrame *f) { f->color_range = AVCOL_RANGE_JPEG; }

static void the_matrix_is_honoured(void)
{
    AVFrame *f = clip_frame();
    input_differs(f, as_bt601, 0.01);
    av_frame_free(&f);
}

static void the_range_is_honoured(void)
{
    AVFrame *f = clip_frame();
    input_differs(f, as_full_range, 0.05);
    av_frame_free(&f);
}

/* A frame in a format without a one-pass path (RGB24 from a raw source)
 * is converted at its size first: the same input as the YUV frame it was
 * made from. */
static void rgb_frames_take_the_same_path(void)
{
    AVFrame *f = clip_frame(), *rgb = av_frame_alloc();
    struct mms_net *n = f ? open_net() : NULL;
    struct mms_image img = {0};
    struct mms_err err = {{0}};
    if (!n)
        goto done;
    size_t len = input_len(n);
    float *a = malloc(len * sizeof(float)), *b = malloc(len * sizeof(float));
    CHECK(!mms_image_from_frame(f, MMS_IMAGE_RGB24, &img, &err));
    rgb->format = AV_PIX_FMT_RGB24;
    rgb->width = img.w;
    rgb->height = img.h;
    rgb->data[0] = img.data;
    rgb->linesize[0] = img.stride;
    if (!video_input(n, f, a) && !video_input(n, rgb, b))
        CHECK(!memcmp(a, b, len * sizeof(float)));
    free(a);
    free(b);
done:
    mms_image_free(&img);
    av_frame_free(&rgb);
    mms_net_close(n);
    av_frame_free(&f);
}

static void unconvertible_frame_is_an_error(void)
{
    AVFrame *f = av_frame_alloc();
    float out[3 * 4 * 4];
    struct mms_preprocess pp = {0};
    struct mms_err err = {{0}};
    static const float mean[3] = {0}, std[3] = {1, 1, 1};
    f->format = AV_PIX_FMT_NONE;
    f->width = 4;
    f->height = 4;
    CHECK(mms_preprocess_frame(&pp, f, out, 4, 4, mean, std, &err) < 0);
    CHECK(err.msg[0] != 0);
    mms_preprocess_free(&pp);
    av_frame_free(&f);
}

MMS_TESTS(T(video_and_still_give_the_same_logits), T(the_matrix_is_honoured),
          T(the_range_is_honoured), T(rgb_frames_take_the_same_path),
          T(unconvertible_frame_is_an_error))
