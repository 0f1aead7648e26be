/* The file and stream sinks: one H.264 encoder and one muxer each. The two
 * drivers differ only in which URLs they take and how the encoder and
 * muxer are tuned, so both are tables over the same functions. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libavutil/time.h>

#include "io/av_common.h"
#include "io/sink.h"

#define DEFAULT_FPS 25
/* Bits per pixel per frame for encoders without a quality mode, and the
 * cap on streams, where a keyframe burst must not overflow a receiver. */
#define STREAM_BPP 0.12
/* The least socket send buffer a tcp:// stream gets (the kernel doubles
 * what it is asked for). */
#define MIN_SEND_BUFFER 65536

struct av_sink {
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVPacket *pkt;
    AVFrame *ref; /* a caller's frame with the hints the encoder must not see */
    int network;
    /* Network outputs: the caller's interrupt and a deadline per call. */
    struct mms_av_wait wait;
    int header_done;
    int failed; /* the first write error: later writes repeat it */
    int width, height;
    int64_t frame_dur; /* in params->time_base */
    int64_t max_bytes_per_s; /* the stream's rate at its cap */
    int64_t last_pts;
};

struct target {
    const char *muxer;
    int low_latency;
    int network;
};

/* ---- which URLs, which muxers ---- */

static const struct {
    const char *ext, *muxer;
} file_types[] = {
    {".mp4", "mp4"},
    {".mov", "mov"},
    {".mkv", "matroska"},
    {".ts", "mpegts"},
};

static const struct {
    const char *scheme, *muxer;
} stream_types[] = {
    {"udp://", "mpegts"},
    {"tcp://", "mpegts"},
    {"srt://", "mpegts"},
    {"rtmp://", "flv"},
    {"rtmps://", "flv"},
    {"rtsp://", "rtsp"},
    {"rtsps://", "rtsp"},
};

static const char *file_muxer(const char *url)
{
    const char *scheme = strstr(url, "://");
    if (scheme && !mms_av_has_prefix(url, "file://"))
        return NULL; /* some network URL that happens to end in .ts */
    for (size_t i = 0; i < sizeof(file_types) / sizeof(file_types[0]); i++)
        if (mms_av_has_suffix(url, file_types[i].ext))
            return file_types[i].muxer;
    return NULL;
}

static const char *stream_muxer(const char *url)
{
    for (size_t i = 0; i < sizeof(stream_types) / sizeof(stream_types[0]); i++)
        if (mms_av_has_prefix(url, stream_types[i].scheme))
            return stream_types[i].muxer;
    return NULL;
}

static int file_probe(const char *url)
{
    return file_muxer(url) ? 50 : 0;
}

static int stream_probe(const char *url)
{
    return stream_muxer(url) ? 100 : 0;
}

/* ---- opening ---- */

/* Around every call that may wait on a network peer; files never wait. */
static void arm(struct av_sink *a)
{
    if (a->network)
        mms_av_wait_arm(&a->wait);
}

static void disarm(struct av_sink *a)
{
    mms_av_wait_disarm(&a->wait);
}

static int io_error(struct av_sink *a, int ret, const char *url, const char *what,
                    struct mms_err *err)
{
    char where[1200];
    snprintf(where, sizeof(where), "%s: %s", url, what);
    return mms_av_wait_error(&a->wait, ret, where, "the receiver took no data", err);
}

static AVRational nominal_rate(const struct mms_sink_params *p)
{
    return p->frame_rate.num > 0 && p->frame_rate.den > 0 ? p->frame_rate
                                                         : (AVRational){DEFAULT_FPS, 1};
}

static int encoder_options(const AVCodecContext *enc, const struct target *t,
                           AVDictionary **opts)
{
    int ret = 0;
    if (!strcmp(enc->codec->name, "libx264")) {
        /* Streams spend as little CPU as they can and hold no frame back;
         * files can afford a better preset for their size. */
        ret |= av_dict_set(opts, "preset", t->low_latency ? "superfast" : "veryfast", 0);
        ret |= av_dict_set(opts, "crf", "23", 0);
        if (t->low_latency)
            ret |= av_dict_set(opts, "tune", "zerolatency", 0);
    }
    return ret < 0 ? AVERROR(ENOMEM) : 0;
}

static int open_encoder(struct av_sink *a, const char *url, const struct mms_sink_params *p,
                        const struct target *t, struct mms_err *err)
{
    char why[128];
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!codec)
        return mms_err_set(err, AVERROR(ENOTSUP), "%s: this FFmpeg has no H.264 encoder",
                           url);
    if (p->width % 2 || p->height % 2)
        return mms_err_set(err, AVERROR(EINVAL), "%s: H.264 in 4:2:0 needs an even width "
                           "and height, not %dx%d", url, p->width, p->height);
    if (!(a->enc = avcodec_alloc_context3(codec)))
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    AVCodecContext *enc = a->enc;
    AVRational fr = nominal_rate(p);
    enc->width = p->width;
    enc->height = p->height;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = p->time_base;
    enc->framerate = fr;
    /* A keyframe a second starts a fragment a second: what a killed
     * recording loses, and how long a late viewer waits for a picture. */
    enc->gop_size = FFMAX(1, (int)lrint(av_q2d(fr)));
    /* B-frames would make decode order differ from display order, and the
     * muxers would shift every timestamp to keep the first dts >= 0: the
     * recording must keep the source's timestamps exactly. */
    enc->max_b_frames = 0;
    /* The cores belong to inference. Files take a second thread so the
     * encoder never becomes the slow stage of an offline run; low-latency
     * outputs keep one, as sliced threads would only split the same work. */
    enc->thread_count = t->low_latency ? 1 : 2;
    double bits = STREAM_BPP * p->width * p->height * av_q2d(fr);
    a->max_bytes_per_s = (int64_t)(bits / 8);
    if (strcmp(codec->name, "libx264"))
        enc->bit_rate = (int64_t)bits;
    else if (t->network)
        enc->rc_max_rate = enc->rc_buffer_size = (int)FFMIN(bits, INT_MAX);
    /* x264's statistics at close would be printed at the program's info
     * level; failures reach the caller through mms_err anyway. */
    enc->log_level_offset = AV_LOG_VERBOSE - AV_LOG_INFO;
    if (a->oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    int ret = encoder_options(enc, t, &opts);
    if (ret >= 0)
        ret = avcodec_open2(enc, codec, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        return mms_err_set(err, ret, "%s: cannot open the %s encoder: %s", url, codec->name,
                           mms_av_reason(ret, why, sizeof(why)));
    a->frame_dur = FFMAX(1, av_rescale_q(1, av_inv_q(fr), p->time_base));
    return 0;
}

static int add_stream(struct av_sink *a, const char *url, const struct mms_sink_params *p,
                      struct mms_err *err)
{
    if (!(a->st = avformat_new_stream(a->oc, NULL)))
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    int ret = avcodec_parameters_from_context(a->st->codecpar, a->enc);
    if (ret < 0)
        return mms_err_set(err, ret, "%s: out of memory", url);
    a->st->time_base = a->enc->time_base; /* a hint: muxers pick their own */
    a->st->avg_frame_rate = nominal_rate(p);
    return 0;
}

static int muxer_options(const struct target *t, AVDictionary **opts)
{
    int ret = 0;
    if (!strcmp(t->muxer, "mp4") || !strcmp(t->muxer, "mov"))
        /* The index goes into each fragment rather than at the end, so a
         * killed process leaves a file that plays to its last fragment.
         * frag_discont puts the absolute time in the first fragment, which
         * with empty_moov is the only place a start other than 0 can go. */
        ret |= av_dict_set(opts, "movflags",
                           "frag_keyframe+empty_moov+default_base_moof+frag_discont", 0);
    else if (!strcmp(t->muxer, "matroska"))
        ret |= av_dict_set(opts, "cluster_time_limit", "1000", 0); /* ms */
    else if (!strcmp(t->muxer, "rtsp"))
        ret |= av_dict_set(opts, "rtsp_transport", "tcp", 0); /* through NAT, no loss */
    return ret < 0 ? AVERROR(ENOMEM) : 0;
}

static int open_output(struct av_sink *a, const char *url, const struct target *t,
                       struct mms_err *err)
{
    AVDictionary *opts = NULL;
    int ret = 0;
    if (!(a->oc->oformat->flags & AVFMT_NOFILE)) {
        if (t->network) {
            /* 7 TS packets: what fits in one Ethernet frame. */
            if (!strcmp(t->muxer, "mpegts") && mms_av_has_prefix(url, "udp://"))
                av_dict_set(&opts, "pkt_size", "1316", 0);
            mms_av_set_rw_timeout(&opts, MMS_AV_NET_TIMEOUT_US);
            /* About a second of the stream at its cap: left to autotuning,
             * loopback or a LAN buffers megabytes, tens of seconds of stale
             * video for a receiver that fell behind, before a write waits
             * and the output is seen to have stalled. */
            if (mms_av_has_prefix(url, "tcp://"))
                av_dict_set_int(&opts, "send_buffer_size",
                                FFMAX(a->max_bytes_per_s, MIN_SEND_BUFFER), 0);
        }
        arm(a);
        ret = avio_open2(&a->oc->pb, url, AVIO_FLAG_WRITE, &a->oc->interrupt_callback,
                         &opts);
        disarm(a);
        av_dict_free(&opts);
        if (ret < 0)
            return io_error(a, ret, url, "cannot open for writing", err);
    }
    if ((ret = muxer_options(t, &opts)) >= 0) {
        arm(a);
        ret = avformat_write_header(a->oc, &opts);
        disarm(a);
    }
    av_dict_free(&opts);
    if (ret < 0)
        return io_error(a, ret, url, "cannot start the output", err);
    a->header_done = 1;
    return 0;
}

static void teardown(struct av_sink *a)
{
    if (a->oc && !(a->oc->oformat->flags & AVFMT_NOFILE))
        avio_closep(&a->oc->pb);
    avformat_free_context(a->oc);
    a->oc = NULL;
    avcodec_free_context(&a->enc);
    av_packet_free(&a->pkt);
    av_frame_free(&a->ref);
}

static int av_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                   const struct target *t, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    if (p->time_base.num < 1 || p->time_base.den < 1)
        return mms_err_set(err, AVERROR(EINVAL), "%s: bad time base %d/%d", url,
                           p->time_base.num, p->time_base.den);
    a->network = t->network;
    /* A file is finished whatever happens: its trailer makes it playable. */
    mms_av_wait_init(&a->wait, MMS_AV_NET_TIMEOUT_US, t->network ? p->interrupt : NULL,
                     p->interrupt_opaque);
    a->width = p->width;
    a->height = p->height;
    a->last_pts = AV_NOPTS_VALUE;
    int ret = avformat_alloc_output_context2(&a->oc, NULL, t->muxer, url);
    if (ret < 0 || !a->oc) {
        ret = mms_err_set(err, AVERROR(ENOTSUP), "%s: this FFmpeg has no %s muxer", url,
                          t->muxer);
        goto fail;
    }
    a->oc->interrupt_callback = (AVIOInterruptCB){mms_av_wait_cb, &a->wait};
    /* Each packet reaches the OS when written: a crash loses only what
     * the muxer itself still holds (the open fragment or cluster). */
    a->oc->flush_packets = 1;
    /* No mux delay: the mpegts muxer would otherwise add it to every
     * timestamp, and a stream would be that much later. */
    a->oc->max_delay = 0;
    /* Timestamps pass through as they are; the default lets mp4 and mpegts
     * shift the first to 0, and the recording would lose the source's. */
    a->oc->avoid_negative_ts = AVFMT_AVOID_NEG_TS_MAKE_NON_NEGATIVE;
    if (!(a->pkt = av_packet_alloc()) || !(a->ref = av_frame_alloc())) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    if ((ret = open_encoder(a, url, p, t, err)) < 0)
        goto fail;
    if ((ret = add_stream(a, url, p, err)) < 0)
        goto fail;
    if ((ret = open_output(a, url, t, err)) < 0)
        goto fail;
    return 0;
fail:
    teardown(a);
    return ret;
}

static int file_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                     struct mms_err *err)
{
    const char *muxer = file_muxer(url);
    if (!muxer)
        return mms_err_set(err, AVERROR(EINVAL), "%s: not a .mp4, .mov, .mkv or .ts file",
                           url);
    struct target t = {muxer, p->live, 0};
    return av_open(s, url, p, &t, err);
}

static int stream_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                       struct mms_err *err)
{
    const char *muxer = stream_muxer(url);
    if (!muxer)
        return mms_err_set(err, AVERROR(EINVAL), "%s: not a udp, srt, rtmp or rtsp URL",
                           url);
    struct target t = {muxer, 1, 1};
    return av_open(s, url, p, &t, err);
}

/* ---- writing ---- */

/* Moves every packet the encoder has ready into the muxer. */
static int drain(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    for (;;) {
        int ret = avcodec_receive_packet(a->enc, a->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return a->failed = io_error(a, ret, s->url, "encoding failed", err);
        /* The muxers need it for the last frame's duration. */
        if (!a->pkt->duration)
            a->pkt->duration = a->frame_dur;
        av_packet_rescale_ts(a->pkt, a->enc->time_base, a->st->time_base);
        a->pkt->stream_index = a->st->index;
        arm(a);
        ret = av_write_frame(a->oc, a->pkt);
        disarm(a);
        av_packet_unref(a->pkt);
        if (ret < 0)
            return a->failed = io_error(a, ret, s->url, "cannot write", err);
    }
}

static int check_frame(struct mms_sink *s, const AVFrame *f, int64_t *pts,
                       struct mms_err *err)
{
    struct av_sink *a = s->priv;
    if (f->format != AV_PIX_FMT_YUV420P || f->width != a->width || f->height != a->height)
        return mms_err_set(err, AVERROR(EINVAL), "%s: frame is %dx%d %s, the output "
                           "%dx%d yuv420p", s->url, f->width, f->height,
                           av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format)
                                                          : "?",
                           a->width, a->height);
    *pts = f->pts;
    if (*pts == AV_NOPTS_VALUE)
        *pts = a->last_pts == AV_NOPTS_VALUE ? 0 : a->last_pts + a->frame_dur;
    else if (a->last_pts != AV_NOPTS_VALUE && *pts <= a->last_pts)
        return mms_err_set(err, AVERROR(EINVAL), "%s: frame pts %" PRId64 " is not after "
                           "the last one (%" PRId64 ")", s->url, *pts, a->last_pts);
    return 0;
}

static int av_write(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                    struct mms_err *err)
{
    (void)m;
    struct av_sink *a = s->priv;
    char why[128];
    int64_t pts = AV_NOPTS_VALUE;
    if (a->failed)
        return mms_err_set(err, a->failed, "%s: output failed: %s", s->url,
                           mms_av_reason(a->failed, why, sizeof(why)));
    int ret = check_frame(s, frame, &pts, err);
    if (ret < 0)
        return ret;
    /* A decoder's picture type would force the encoder's (x264 obeys
     * it) and break the one-second GOP; the caller's frame is const, so
     * a reference carries the cleared copy. */
    const AVFrame *in = frame;
    if (frame->pict_type != AV_PICTURE_TYPE_NONE || frame->pts != pts) {
        if ((ret = av_frame_ref(a->ref, frame)) < 0)
            return mms_err_set(err, ret, "out of memory");
        a->ref->pict_type = AV_PICTURE_TYPE_NONE;
        a->ref->pts = pts;
        in = a->ref;
    }
    ret = avcodec_send_frame(a->enc, in);
    av_frame_unref(a->ref);
    if (ret < 0)
        return a->failed = io_error(a, ret, s->url, "encoding failed", err);
    a->last_pts = pts;
    return drain(s, err);
}

static int av_close(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    int ret = 0;
    /* After a failed write the peer or disk is gone: finishing would only
     * fail again, or wait out the network timeout once more. */
    if (a->header_done && !a->failed) {
        ret = avcodec_send_frame(a->enc, NULL);
        if (ret >= 0)
            ret = drain(s, err);
        else
            ret = io_error(a, ret, s->url, "encoding failed", err);
        arm(a);
        int tr = av_write_trailer(a->oc);
        disarm(a);
        if (tr < 0 && ret >= 0)
            ret = io_error(a, tr, s->url, "cannot finish the output", err);
    }
    if (a->oc && !(a->oc->oformat->flags & AVFMT_NOFILE)) {
        int cl = avio_closep(&a->oc->pb);
        if (cl < 0 && ret >= 0 && !a->failed)
            ret = io_error(a, cl, s->url, "cannot finish the output", err);
    }
    teardown(a);
    return ret;
}

const struct mms_sink_driver mms_sink_file = {
    .name = "file",
    .probe = file_probe,
    .priv_size = sizeof(struct av_sink),
    .open = file_open,
    .write = av_write,
    .close = av_close,
};

const struct mms_sink_driver mms_sink_stream = {
    .name = "stream",
    .probe = stream_probe,
    .reopen = 1,
    .priv_size = sizeof(struct av_sink),
    .open = stream_open,
    .write = av_write,
    .close = av_close,
};
