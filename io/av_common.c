#include "io/av_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libavformat/avio.h>
#include <libavutil/error.h>
#include <libavutil/pixfmt.h>
#include <libavutil/time.h>

const char *mms_av_reason(int ret, char *buf, size_t len)
{
    if (av_strerror(ret, buf, len) < 0)
        snprintf(buf, len, "error %d", ret);
    return buf;
}

int mms_av_has_prefix(const char *s, const char *prefix)
{
    return !strncasecmp(s, prefix, strlen(prefix));
}

int mms_av_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcasecmp(s + n - m, suffix);
}

int mms_av_is_network(const char *url)
{
    const char *proto = avio_find_protocol_name(url);
    if (proto)
        return strcmp(proto, "file") && strcmp(proto, "pipe");
    const char *colon = strstr(url, "://");
    return colon && colon != url;
}

int mms_av_set_rw_timeout(AVDictionary **opts, int64_t timeout_us)
{
    if (av_dict_get(*opts, "rw_timeout", NULL, 0))
        return 0;
    return av_dict_set_int(opts, "rw_timeout", timeout_us, 0) < 0 ? AVERROR(ENOMEM) : 0;
}

void mms_av_wait_init(struct mms_av_wait *w, int64_t timeout_us,
                      int (*interrupt)(void *opaque), void *opaque)
{
    w->interrupt = interrupt;
    w->opaque = opaque;
    atomic_init(&w->stopped, 0);
    w->timeout_us = timeout_us > 0 ? timeout_us : MMS_AV_NET_TIMEOUT_US;
    w->deadline = 0;
}

int mms_av_wait_stopped(struct mms_av_wait *w)
{
    if (atomic_load_explicit(&w->stopped, memory_order_relaxed))
        return 1;
    if (w->interrupt && w->interrupt(w->opaque)) {
        atomic_store(&w->stopped, 1);
        return 1;
    }
    return 0;
}

int mms_av_wait_cb(void *opaque)
{
    struct mms_av_wait *w = opaque;
    return mms_av_wait_stopped(w) || (w->deadline && av_gettime_relative() > w->deadline);
}

void mms_av_wait_stop(struct mms_av_wait *w)
{
    atomic_store(&w->stopped, 1);
}

void mms_av_wait_arm(struct mms_av_wait *w)
{
    w->deadline = av_gettime_relative() + w->timeout_us;
}

void mms_av_wait_disarm(struct mms_av_wait *w)
{
    w->deadline = 0;
}

int mms_av_wait_error(struct mms_av_wait *w, int ret, const char *what, const char *idle,
                      struct mms_err *err)
{
    char why[128];
    if (mms_av_wait_stopped(w))
        return mms_err_set(err, AVERROR_EXIT, "%s: interrupted", what);
    if (ret == AVERROR_EXIT || ret == AVERROR(ETIMEDOUT))
        return mms_err_set(err, AVERROR(ETIMEDOUT), "%s: %s for %.1f s", what, idle,
                           w->timeout_us / 1e6);
    return mms_err_set(err, ret, "%s: %s", what, mms_av_reason(ret, why, sizeof(why)));
}

static int yuv_layout(enum AVPixelFormat f, enum mms_yuv_layout *l, int *full)
{
    *full = 0;
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = 1; /* fall through */
    case AV_PIX_FMT_YUV420P: *l = MMS_YUV_420P; return 0;
    case AV_PIX_FMT_YUVJ422P: *full = 1; /* fall through */
    case AV_PIX_FMT_YUV422P: *l = MMS_YUV_422P; return 0;
    case AV_PIX_FMT_YUVJ444P: *full = 1; /* fall through */
    case AV_PIX_FMT_YUV444P: *l = MMS_YUV_444P; return 0;
    case AV_PIX_FMT_NV12: *l = MMS_YUV_NV12; return 0;
    default: return -ENOTSUP;
    }
}

static enum mms_yuv_matrix yuv_matrix(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709: return MMS_YUV_BT709;
    case AVCOL_SPC_FCC: return MMS_YUV_FCC;
    case AVCOL_SPC_SMPTE240M: return MMS_YUV_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return MMS_YUV_BT2020;
    default: return MMS_YUV_BT601;
    }
}

int mms_av_frame_yuv(const AVFrame *f, struct mms_yuv *y)
{
    int full;
    if (f->width < 1 || f->height < 1 || yuv_layout(f->format, &y->layout, &full))
        return -ENOTSUP;
    for (int i = 0; i < 3; i++) {
        y->plane[i] = f->data[i];
        y->stride[i] = f->linesize[i];
    }
    y->w = f->width;
    y->h = f->height;
    y->matrix = yuv_matrix(f->colorspace);
    y->full_range = full || f->color_range == AVCOL_RANGE_JPEG;
    /* Unspecified: JPEG's centred chroma for full range (JPEG), else what
     * MPEG-2 and later default to (left). */
    switch (f->chroma_location) {
    case AVCHROMA_LOC_CENTER: y->site_x = 1; y->site_y = 1; break;
    case AVCHROMA_LOC_TOPLEFT: y->site_x = 0; y->site_y = 0; break;
    case AVCHROMA_LOC_TOP: y->site_x = 1; y->site_y = 0; break;
    case AVCHROMA_LOC_LEFT: y->site_x = 0; y->site_y = 1; break;
    default: y->site_x = y->full_range; y->site_y = 1; break;
    }
    return 0;
}
