#include "io/encoder.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/pixdesc.h>

#include "io/av_common.h"

/* No keyframe asked for. */
#define NO_KEY INT64_MAX

struct mms_encoder {
    struct mms_enc_settings s;
    char name[256];
    AVCodecContext *enc;
    AVCodecParameters *par;
    AVFrame *ref; /* the caller's frame with the fields we set */
    int64_t frame_dur; /* in s.time_base */
    int64_t last_pts;
    atomic_llong key_due; /* the earliest pts asked to be a keyframe */
    atomic_int key_next;  /* the next frame asked to be one */
    atomic_llong frames;
};

int mms_enc_settings_equal(const struct mms_enc_settings *a, const struct mms_enc_settings *b)
{
    return a->codec == b->codec && a->pix_fmt == b->pix_fmt && a->width == b->width &&
           a->height == b->height && !av_cmp_q(a->time_base, b->time_base) &&
           !av_cmp_q(a->frame_rate, b->frame_rate) && a->gop == b->gop &&
           a->low_latency == b->low_latency && a->crf == b->crf &&
           !strcmp(a->preset, b->preset) &&
           a->max_rate == b->max_rate && a->bit_rate == b->bit_rate;
}

static const char *preset_of(const struct mms_enc_settings *s)
{
    /* Low latency spends as little CPU as it can and holds no frame
     * back; offline can afford a better preset for its size. */
    return s->preset[0] ? s->preset : s->low_latency ? "superfast" : "veryfast";
}

void mms_enc_settings_describe(const struct mms_enc_settings *s, char *buf, size_t len)
{
    char cap[64] = "";
    if (s->max_rate)
        snprintf(cap, sizeof(cap), " capped %" PRId64 " kbit/s", s->max_rate / 1000);
    snprintf(buf, len, "%s %dx%d %s %.3g fps, keyframe every %d, %s, %s, crf %d%s",
             avcodec_get_name(s->codec), s->width, s->height,
             av_get_pix_fmt_name(s->pix_fmt) ? av_get_pix_fmt_name(s->pix_fmt) : "?",
             av_q2d(s->frame_rate), s->gop, s->low_latency ? "low latency" : "offline",
             preset_of(s), s->crf, cap);
}

static const AVCodec *find_codec(enum AVCodecID id)
{
    /* x264 where there is one: better pictures per bit than the others. */
    const AVCodec *c = id == AV_CODEC_ID_H264 ? avcodec_find_encoder_by_name("libx264") : NULL;
    return c ? c : avcodec_find_encoder(id);
}

static int codec_options(const AVCodec *codec, const struct mms_enc_settings *s,
                         AVDictionary **opts)
{
    int ret = 0;
    if (!strcmp(codec->name, "libx264")) {
        ret |= av_dict_set(opts, "preset", preset_of(s), 0);
        ret |= av_dict_set_int(opts, "crf", s->crf, 0);
        if (s->low_latency)
            ret |= av_dict_set(opts, "tune", "zerolatency", 0);
        /* A requested keyframe is an IDR, where a late viewer or a new
         * segment can start decoding. */
        ret |= av_dict_set(opts, "forced-idr", "1", 0);
    }
    return ret < 0 ? AVERROR(ENOMEM) : 0;
}

static int configure(struct mms_encoder *e, const AVCodec *codec, struct mms_err *err)
{
    const struct mms_enc_settings *s = &e->s;
    AVCodecContext *enc = e->enc;
    enc->width = s->width;
    enc->height = s->height;
    enc->pix_fmt = s->pix_fmt;
    enc->time_base = s->time_base;
    enc->framerate = s->frame_rate;
    enc->gop_size = s->gop;
    /* B-frames would make decode order differ from display order, and the
     * muxers would shift every timestamp to keep the first dts >= 0: the
     * recording must keep the source's timestamps exactly. */
    enc->max_b_frames = 0;
    /* The cores belong to inference. Offline takes a second thread so the
     * encoder never becomes the slow stage; low latency keeps one, as
     * sliced threads would only split the same work. */
    enc->thread_count = s->low_latency ? 1 : 2;
    if (strcmp(codec->name, "libx264"))
        enc->bit_rate = s->bit_rate;
    else if (s->max_rate)
        enc->rc_max_rate = enc->rc_buffer_size = (int)FFMIN(s->max_rate, INT_MAX);
    /* x264's statistics at close would be printed at the program's info
     * level; failures reach the caller through mms_err anyway. */
    enc->log_level_offset = AV_LOG_VERBOSE - AV_LOG_INFO;
    if (s->global_header)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    char why[128];
    int ret = codec_options(codec, s, &opts);
    if (ret >= 0)
        ret = avcodec_open2(enc, codec, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return mms_err_set(err, ret, "%s: cannot open the %s encoder: %s", e->name, codec->name,
                           mms_av_reason(ret, why, sizeof(why)));
    if ((ret = avcodec_parameters_from_context(e->par, enc)) < 0)
        return mms_err_set(err, ret, "out of memory");
    return 0;
}

int mms_encoder_open(const struct mms_enc_settings *s, const char *name,
                     struct mms_encoder **out, struct mms_err *err)
{
    *out = NULL;
    int ret;
    const AVCodec *codec = find_codec(s->codec);
    if (!codec)
        return mms_err_set(err, AVERROR(ENOTSUP), "%s: this FFmpeg has no %s encoder", name,
                           avcodec_get_name(s->codec));
    if (s->width < 2 || s->height < 2 || s->width % 2 || s->height % 2)
        return mms_err_set(err, AVERROR(EINVAL), "%s: H.264 in 4:2:0 needs an even width "
                           "and height, not %dx%d", name, s->width, s->height);
    if (s->time_base.num < 1 || s->time_base.den < 1 || s->frame_rate.num < 1 ||
        s->frame_rate.den < 1 || s->gop < 1)
        return mms_err_set(err, AVERROR(EINVAL), "%s: bad time base %d/%d, frame rate %d/%d "
                           "or keyframe interval %d", name, s->time_base.num, s->time_base.den,
                           s->frame_rate.num, s->frame_rate.den, s->gop);
    struct mms_encoder *e = calloc(1, sizeof(*e));
    if (!e)
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    e->s = *s;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->last_pts = AV_NOPTS_VALUE;
    atomic_init(&e->key_due, NO_KEY);
    atomic_init(&e->key_next, 0);
    atomic_init(&e->frames, 0);
    e->frame_dur = FFMAX(1, av_rescale_q(1, av_inv_q(s->frame_rate), s->time_base));
    if (!(e->enc = avcodec_alloc_context3(codec)) || !(e->par = avcodec_parameters_alloc()) ||
        !(e->ref = av_frame_alloc())) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    if ((ret = configure(e, codec, err)) < 0)
        goto fail;
    *out = e;
    return 0;
fail:
    mms_encoder_free(e);
    return ret;
}

static int check_frame(struct mms_encoder *e, const AVFrame *f, int64_t *pts,
                       struct mms_err *err)
{
    if (f->format != e->s.pix_fmt || f->width != e->s.width || f->height != e->s.height)
        return mms_err_set(err, AVERROR(EINVAL), "%s: frame is %dx%d %s, the output "
                           "%dx%d %s", e->name, f->width, f->height,
                           av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format)
                                                          : "?",
                           e->s.width, e->s.height, av_get_pix_fmt_name(e->s.pix_fmt));
    *pts = f->pts;
    if (*pts == AV_NOPTS_VALUE)
        *pts = e->last_pts == AV_NOPTS_VALUE ? 0 : e->last_pts + e->frame_dur;
    else if (e->last_pts != AV_NOPTS_VALUE && *pts <= e->last_pts)
        return mms_err_set(err, AVERROR(EINVAL), "%s: frame pts %" PRId64 " is not after "
                           "the last one (%" PRId64 ")", e->name, *pts, e->last_pts);
    return 0;
}

/* Takes the keyframe requests that this pts satisfies. "The next frame"
 * is kept apart from a time, so that one cannot take the place of the
 * other (a stream reopened must not cancel a segment's end). */
static int key_due(struct mms_encoder *e, int64_t pts)
{
    int next = atomic_exchange(&e->key_next, 0);
    long long due = atomic_load(&e->key_due);
    while (pts >= due)
        if (atomic_compare_exchange_weak(&e->key_due, &due, NO_KEY))
            return 1;
    return next;
}

int mms_encoder_send(struct mms_encoder *e, const AVFrame *f, struct mms_err *err)
{
    char why[128];
    int ret;
    if (!f) {
        ret = avcodec_send_frame(e->enc, NULL);
        return ret < 0 && ret != AVERROR_EOF
                   ? mms_err_set(err, ret, "%s: encoding failed: %s", e->name,
                                 mms_av_reason(ret, why, sizeof(why)))
                   : 0;
    }
    int64_t pts = AV_NOPTS_VALUE;
    if ((ret = check_frame(e, f, &pts, err)) < 0)
        return ret;
    /* A decoder's picture type would force the encoder's (x264 obeys it)
     * and break the GOP; the caller's frame is const, so a reference
     * carries ours. */
    if ((ret = av_frame_ref(e->ref, f)) < 0)
        return mms_err_set(err, ret, "out of memory");
    e->ref->pts = pts;
    e->ref->pict_type = key_due(e, pts) ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    ret = avcodec_send_frame(e->enc, e->ref);
    av_frame_unref(e->ref);
    if (ret < 0)
        return mms_err_set(err, ret, "%s: encoding failed: %s", e->name,
                           mms_av_reason(ret, why, sizeof(why)));
    e->last_pts = pts;
    atomic_fetch_add(&e->frames, 1);
    return 0;
}

int mms_encoder_receive(struct mms_encoder *e, AVPacket *pkt, struct mms_err *err)
{
    char why[128];
    av_packet_unref(pkt);
    int ret = avcodec_receive_packet(e->enc, pkt);
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
        return ret;
    if (ret < 0)
        return mms_err_set(err, ret, "%s: encoding failed: %s", e->name,
                           mms_av_reason(ret, why, sizeof(why)));
    /* The muxers need it for the last frame's duration. */
    if (!pkt->duration)
        pkt->duration = e->frame_dur;
    pkt->time_base = e->s.time_base;
    return 0;
}

const AVCodecParameters *mms_encoder_params(const struct mms_encoder *e)
{
    return e->par;
}

AVRational mms_encoder_time_base(const struct mms_encoder *e)
{
    return e->s.time_base;
}

const struct mms_enc_settings *mms_encoder_settings(const struct mms_encoder *e)
{
    return &e->s;
}

void mms_encoder_key_at(struct mms_encoder *e, int64_t pts)
{
    if (pts == INT64_MIN) {
        atomic_store(&e->key_next, 1);
        return;
    }
    long long due = atomic_load(&e->key_due);
    while (pts < due && !atomic_compare_exchange_weak(&e->key_due, &due, pts))
        ;
}

int64_t mms_encoder_frames(const struct mms_encoder *e)
{
    return atomic_load(&((struct mms_encoder *)e)->frames);
}

void mms_encoder_free(struct mms_encoder *e)
{
    if (!e)
        return;
    avcodec_free_context(&e->enc);
    avcodec_parameters_free(&e->par);
    av_frame_free(&e->ref);
    free(e);
}
