#include "io/jpeg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavutil/buffer.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "io/av_common.h"

#define MAX_SIDE 16384
/* Row alignment of the converted frame: swscale's and the encoder's SIMD
 * paths like whole vectors. */
#define ROW_ALIGN 64
/* The MJPEG encoder's qscale range (qmin's default .. the codec's max). */
#define QSCALE_BEST 2
#define QSCALE_WORST 31

struct mms_jpeg {
    int max_w;
    int qscale;

    /* The conversion, for one input size and range. */
    struct SwsContext *sws;
    int in_w, in_h, in_full;

    /* The encoder and its frames, for one output size. */
    AVCodecContext *enc;
    AVBufferPool *pool;
    int out_w, out_h;
    size_t frame_bytes;
    AVFrame *frame;
    AVPacket *pkt;
    int64_t pts;
};

/* FFmpeg's own error tags are not errnos; callers only need "it failed". */
static int av_errno(int ret)
{
    return ret < 0 && ret > -4096 ? ret : -EIO;
}

/* libjpeg's quality curve (percent of the quality-50 table), scaled so
 * that 50 lands on qscale 16: the encoder's matrix times qscale/8 is then
 * about libjpeg's table at 50, and the same number means about the same
 * picture here as in other JPEG tools. */
static int quality_to_qscale(int quality)
{
    int percent = quality < 50 ? 5000 / quality : 200 - 2 * quality;
    int q = (percent * 16 + 50) / 100;
    return q < QSCALE_BEST ? QSCALE_BEST : q > QSCALE_WORST ? QSCALE_WORST : q;
}

/* Even sizes: 4:2:0 chroma covers pixel pairs, and an odd edge would be
 * half a chroma sample that decoders smear differently. */
static int even(int v)
{
    v &= ~1;
    return v < 2 ? 2 : v;
}

static void out_size(const struct mms_jpeg *j, int w, int h, int *ow, int *oh)
{
    if (j->max_w && w > j->max_w) {
        *ow = even(j->max_w);
        /* Nearest even height for the kept aspect. */
        *oh = even((int)(((int64_t)h * *ow + w) / (2 * (int64_t)w) * 2));
    } else {
        *ow = even(w);
        *oh = even(h);
    }
}

int mms_jpeg_create(int max_w, int quality, struct mms_jpeg **out, struct mms_err *err)
{
    *out = NULL;
    if (max_w < 0 || max_w == 1 || max_w > MAX_SIDE)
        return mms_err_set(err, -EINVAL, "jpeg: max width %d: must be 0 (no limit) or 2..%d",
                           max_w, MAX_SIDE);
    if (quality < 1 || quality > 100)
        return mms_err_set(err, -EINVAL, "jpeg: quality %d: must be 1..100", quality);
    struct mms_jpeg *j = calloc(1, sizeof(*j));
    if (!j)
        return mms_err_set(err, -ENOMEM, "jpeg: out of memory");
    j->max_w = max_w;
    j->qscale = quality_to_qscale(quality);
    j->in_full = -1;
    if (!(j->frame = av_frame_alloc()) || !(j->pkt = av_packet_alloc())) {
        mms_jpeg_free(j);
        return mms_err_set(err, -ENOMEM, "jpeg: out of memory");
    }
    *out = j;
    return 0;
}

static void close_encoder(struct mms_jpeg *j)
{
    av_frame_unref(j->frame);
    av_packet_unref(j->pkt);
    avcodec_free_context(&j->enc);
    /* Buffers the encoder still holds go back to the pool's allocator when
     * released; the pool itself can go now. */
    av_buffer_pool_uninit(&j->pool);
    j->out_w = j->out_h = 0;
}

static int open_encoder(struct mms_jpeg *j, int w, int h, struct mms_err *err)
{
    char buf[128];
    int ret;
    close_encoder(j);

    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return mms_err_set(err, -ENOSYS, "jpeg: this FFmpeg has no MJPEG encoder");
    if (!(j->enc = avcodec_alloc_context3(codec)))
        return mms_err_set(err, -ENOMEM, "jpeg: out of memory");
    AVCodecContext *c = j->enc;
    c->width = w;
    c->height = h;
    /* YUVJ420P is deprecated in swscale but still how the MJPEG encoder is
     * told to write plain JFIF without asking for unofficial compliance. */
    c->pix_fmt = AV_PIX_FMT_YUVJ420P;
    c->color_range = AVCOL_RANGE_JPEG;
    c->colorspace = AVCOL_SPC_BT470BG;
    c->time_base = (AVRational){1, 25};
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * j->qscale;
    /* Frame threads would hold packets back; each call must return its
     * own frame's JPEG. */
    c->thread_count = 1;
    if ((ret = avcodec_open2(c, codec, NULL)) < 0) {
        ret = mms_err_set(err, av_errno(ret), "jpeg: cannot open the MJPEG encoder at %dx%d: %s",
                          w, h, mms_av_reason(ret, buf, sizeof(buf)));
        goto fail;
    }

    /* The encoder may keep a reference to the frames it was given past
     * the call (mpegvideo holds the current picture), so each frame gets
     * a buffer of its own, from a pool so that none is allocated in
     * steady state. */
    ret = av_image_get_buffer_size(AV_PIX_FMT_YUV420P, w, h, ROW_ALIGN);
    if (ret < 0) {
        ret = mms_err_set(err, -EINVAL, "jpeg: bad size %dx%d", w, h);
        goto fail;
    }
    j->frame_bytes = (size_t)ret;
    if (!(j->pool = av_buffer_pool_init(ret, NULL))) {
        ret = mms_err_set(err, -ENOMEM, "jpeg: out of memory");
        goto fail;
    }
    j->out_w = w;
    j->out_h = h;
    j->pts = 0;
    return 0;

fail:
    close_encoder(j);
    return ret;
}

static int open_scaler(struct mms_jpeg *j, int w, int h, int full, struct mms_err *err)
{
    sws_freeContext(j->sws);
    j->in_w = j->in_h = 0;
    j->in_full = -1;
    if (!(j->sws = sws_alloc_context()))
        return mms_err_set(err, -ENOMEM, "jpeg: out of memory");
    /* Plain YUV420P on both sides with the ranges as options, set before
     * init: swscale then converts levels even at 1:1, where it would
     * otherwise take its copy shortcut, and does not warn about YUVJ. */
    int ret = 0;
    if ((ret = av_opt_set_int(j->sws, "srcw", w, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "srch", h, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "src_format", AV_PIX_FMT_YUV420P, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "src_range", full, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "dstw", j->out_w, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "dsth", j->out_h, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "dst_format", AV_PIX_FMT_YUV420P, 0)) < 0 ||
        (ret = av_opt_set_int(j->sws, "dst_range", 1, 0)) < 0 ||
        /* Area averaging: a 2-3x downscale with bilinear would alias the
         * overlay's thin outline into dashes. */
        (ret = av_opt_set_int(j->sws, "sws_flags", SWS_AREA | SWS_ACCURATE_RND, 0)) < 0 ||
        (ret = sws_init_context(j->sws, NULL, NULL)) < 0) {
        char buf[128];
        ret = mms_err_set(err, av_errno(ret), "jpeg: cannot convert %dx%d to %dx%d: %s", w, h,
                          j->out_w, j->out_h, mms_av_reason(ret, buf, sizeof(buf)));
        goto fail;
    }
    j->in_w = w;
    j->in_h = h;
    j->in_full = full;
    return 0;

fail:
    sws_freeContext(j->sws);
    j->sws = NULL;
    return ret;
}

/* j->frame: a pooled buffer, the converted picture, the encoder's format. */
static int convert(struct mms_jpeg *j, const AVFrame *f, struct mms_err *err)
{
    AVFrame *o = j->frame;
    av_frame_unref(o);
    AVBufferRef *buf = av_buffer_pool_get(j->pool);
    if (!buf)
        return mms_err_set(err, -ENOMEM, "jpeg: out of memory");
    int ret = av_image_fill_arrays(o->data, o->linesize, buf->data, AV_PIX_FMT_YUV420P,
                                   j->out_w, j->out_h, ROW_ALIGN);
    if (ret < 0 || (size_t)ret > j->frame_bytes) {
        av_buffer_unref(&buf);
        return mms_err_set(err, -EINVAL, "jpeg: bad size %dx%d", j->out_w, j->out_h);
    }
    o->buf[0] = buf;
    o->format = AV_PIX_FMT_YUVJ420P;
    o->width = j->out_w;
    o->height = j->out_h;
    o->color_range = AVCOL_RANGE_JPEG;
    o->colorspace = AVCOL_SPC_BT470BG;
    /* mpegvideo refuses a pts that does not increase. */
    o->pts = j->pts++;
    o->quality = j->enc->global_quality;
    o->pict_type = AV_PICTURE_TYPE_I;

    ret = sws_scale(j->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                    o->data, o->linesize);
    if (ret != j->out_h)
        return mms_err_set(err, -EINVAL, "jpeg: converting %dx%d to %dx%d failed", f->width,
                           f->height, j->out_w, j->out_h);
    return 0;
}

int mms_jpeg_encode(struct mms_jpeg *j, const AVFrame *f, const uint8_t **data, size_t *len,
                    struct mms_err *err)
{
    char buf[128];
    int ret;
    *data = NULL;
    *len = 0;
    /* The previous JPEG is the caller's until now. */
    av_packet_unref(j->pkt);

    if (!f)
        return mms_err_set(err, -EINVAL, "jpeg: no frame");
    if (f->format != AV_PIX_FMT_YUV420P) {
        const char *name = av_get_pix_fmt_name(f->format);
        return mms_err_set(err, -EINVAL, "jpeg: frame is %s, expected yuv420p",
                           name ? name : "of no known pixel format");
    }
    if (f->width <= 0 || f->height <= 0 || !f->data[0] || !f->data[1] || !f->data[2])
        return mms_err_set(err, -EINVAL, "jpeg: empty frame (%dx%d)", f->width, f->height);
    if (f->width > MAX_SIDE || f->height > MAX_SIDE)
        return mms_err_set(err, -EINVAL, "jpeg: frame %dx%d is larger than %d a side",
                           f->width, f->height, MAX_SIDE);

    int ow, oh;
    out_size(j, f->width, f->height, &ow, &oh);
    if (ow != j->out_w || oh != j->out_h || !j->enc) {
        if ((ret = open_encoder(j, ow, oh, err)) < 0)
            goto fail;
        /* The scaler writes the output size too. */
        sws_freeContext(j->sws);
        j->sws = NULL;
    }
    int full = f->color_range == AVCOL_RANGE_JPEG;
    if (!j->sws || f->width != j->in_w || f->height != j->in_h || full != j->in_full) {
        if ((ret = open_scaler(j, f->width, f->height, full, err)) < 0)
            goto fail;
    }
    if ((ret = convert(j, f, err)) < 0)
        goto fail;

    ret = avcodec_send_frame(j->enc, j->frame);
    /* The encoder holds its own reference now, if it wants one. */
    av_frame_unref(j->frame);
    if (ret < 0) {
        ret = mms_err_set(err, av_errno(ret), "jpeg: encoding %dx%d failed: %s", ow, oh,
                          mms_av_reason(ret, buf, sizeof(buf)));
        goto fail;
    }
    ret = avcodec_receive_packet(j->enc, j->pkt);
    if (ret < 0) {
        ret = mms_err_set(err, av_errno(ret), "jpeg: encoding %dx%d gave no picture: %s", ow,
                          oh, mms_av_reason(ret, buf, sizeof(buf)));
        goto fail;
    }
    *data = j->pkt->data;
    *len = (size_t)j->pkt->size;
    return 0;

fail:
    /* An encoder in an unknown state (a frame in, no packet out) would
     * return the wrong picture next time: start afresh. */
    close_encoder(j);
    return ret;
}

void mms_jpeg_free(struct mms_jpeg *j)
{
    if (!j)
        return;
    close_encoder(j);
    sws_freeContext(j->sws);
    av_frame_free(&j->frame);
    av_packet_free(&j->pkt);
    free(j);
}
