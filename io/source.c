#include "io/source.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/time.h>
#include <libswscale/swscale.h>

#include "core/redact.h"
#include "io/av_common.h"
#include "io/tsan.h"

/* Plane rows start on this boundary: what SIMD code (swscale, the
 * overlay, the encoders) reads fastest. */
#define ROW_ALIGN 64
#define FALLBACK_FPS 25
/* Realtime: a frame due further ahead than this, or late by more, is a
 * jump in the timestamps (a cut, a wrapped clock, a stall upstream), not
 * the source's pace: the clock starts again there instead of sleeping
 * through the gap or rushing to catch up. */
#define PACE_JUMP_US 1000000
/* Realtime waits in steps this long, so an interrupt ends them soon. */
#define PACE_STEP_US 20000

struct mms_source {
    /* The URL as messages give it, its secrets hidden here: a message is
     * cut at its length, and a cut can fall inside user:password, where
     * a later redaction would no longer see it. */
    char shown[1100];
    AVFormatContext *fc;
    AVCodecContext *dec;
    int stream;
    AVPacket *pkt;
    AVFrame *decoded;
    AVBufferPool *pool;
    int linesize[4];
    size_t plane_offset[4];

    /* Made on the first frame that is not YUV420P at the source size. */
    struct SwsContext *sws;
    int sws_w, sws_h, sws_fmt, sws_full;

    /* The caller's interrupt, mms_source_interrupt() and a deadline per
     * blocking call. */
    struct mms_av_wait wait;

    int draining;   /* the demuxer ended: the decoder is being flushed */
    int pkt_queued; /* s->pkt still has to go to the decoder */
    int64_t decode_errors;
    int64_t last_pts; /* of the frame delivered last */
    int64_t frame_dur; /* in time_base units, from the frame rate */

    int realtime;      /* pace frames to their timestamps */
    int64_t clock_pts; /* the frame the clock started at; AV_NOPTS_VALUE: none yet */
    int64_t clock_us;  /* av_gettime_relative() when it was delivered */

    struct mms_source_info info;
};

static pthread_once_t devices_once = PTHREAD_ONCE_INIT;

static void register_devices(void)
{
    avdevice_register_all();
}

/* After a call that may have been cut short: why, in the caller's terms. */
static int blocked_error(struct mms_source *s, int ret, const char *what,
                         struct mms_err *err)
{
    return mms_av_wait_error(&s->wait, ret, what, "no data", err);
}

/* ---- opening ---- */

/* A malformed option is named by its place, never shown: its text may be
 * a secret typed with ':' for '=' ("passphrase:..."), and these messages
 * reach the log and /healthz. */
static int build_options(const struct mms_source_opts *o, AVDictionary **dict,
                         const char **forced_format, struct mms_err *err)
{
    for (int i = 0; o && i < o->noptions; i++) {
        const char *kv = o->options[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return mms_err_set(err, AVERROR(EINVAL),
                               "input option %d of %d is not KEY=VALUE (not shown: it may "
                               "hold a secret)", i + 1, o->noptions);
        /* "f=NAME" is ffmpeg's -f: a demuxer the name or probe would not pick. */
        if (eq - kv == 1 && kv[0] == 'f') {
            *forced_format = eq + 1;
            continue;
        }
        char key[128];
        if ((size_t)(eq - kv) >= sizeof(key))
            return mms_err_set(err, AVERROR(EINVAL), "input option %d of %d: name too long",
                               i + 1, o->noptions);
        memcpy(key, kv, eq - kv);
        key[eq - kv] = 0;
        int ret = av_dict_set(dict, key, eq + 1, 0);
        if (ret < 0)
            return mms_err_set(err, ret, "out of memory");
    }
    return 0;
}

/* Which demuxer a URL needs that probing would not find by itself. */
static const char *format_for(const char **url)
{
    if (mms_av_has_prefix(*url, "lavfi:")) {
        *url += strlen("lavfi:");
        return "lavfi";
    }
    if (mms_av_has_prefix(*url, "/dev/video"))
        return "v4l2";
    return NULL;
}

static int is_live(const AVFormatContext *fc, const char *url)
{
    const AVInputFormat *f = fc->iformat;
    /* A generated graph runs as fast as it is read, like a file. */
    if (!strcmp(f->name, "lavfi"))
        return 0;
    if (f->priv_class) {
        AVClassCategory c = f->priv_class->category;
        if (c == AV_CLASS_CATEGORY_DEVICE_VIDEO_INPUT || c == AV_CLASS_CATEGORY_DEVICE_INPUT)
            return 1;
    }
    return mms_av_is_network(url);
}

/* Options the user gave that no demuxer, device or protocol took are
 * typos, which silently ignored would look like a broken camera. */
static int check_unused(const struct mms_source_opts *o, const AVDictionary *left,
                        struct mms_err *err)
{
    for (int i = 0; o && i < o->noptions; i++) {
        const char *kv = o->options[i], *eq = strchr(kv, '=');
        char key[128];
        if (eq - kv == 1 && kv[0] == 'f')
            continue;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        if (!av_dict_get(left, key, NULL, 0))
            continue;
        /* What stands before the first '=' may be a secret typed with ':'
         * for '=' ("passphrase:c2Vj=="): only a plain name is shown. */
        if (strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                strlen(key) &&
            !mms_redact_secret_key(key, strlen(key)))
            return mms_err_set(err, AVERROR(EINVAL),
                               "input option '%s' is not known to this input", key);
        return mms_err_set(err, AVERROR(EINVAL),
                           "input option %d of %d is not known to this input (its name is "
                           "not shown: it may hold a secret)",
                           i + 1, o->noptions);
    }
    return 0;
}

static int open_input(struct mms_source *s, const char *url,
                      const struct mms_source_opts *o, struct mms_err *err)
{
    const char *name = url;
    const char *forced = NULL, *fmt_name = format_for(&url);
    AVDictionary *dict = NULL;
    const char *what = s->shown;
    int ret = build_options(o, &dict, &forced, err);
    if (ret < 0)
        goto fail;
    if (forced)
        fmt_name = forced;
    mms_redact_url(name, s->shown, sizeof(s->shown));
    const AVInputFormat *ifmt = NULL;
    if (fmt_name && !(ifmt = av_find_input_format(fmt_name))) {
        ret = mms_err_set(err, AVERROR(ENOTSUP), "%s: this FFmpeg has no '%s' input",
                          what, fmt_name);
        goto fail;
    }
    /* rw_timeout ends a read that waits on a socket at the protocol level,
     * below the demuxer; the guard's deadline covers the rest. */
    if (mms_av_is_network(url) &&
        (ret = mms_av_set_rw_timeout(&dict, s->wait.timeout_us)) < 0) {
        ret = mms_err_set(err, ret, "out of memory");
        goto fail;
    }
    if (!(s->fc = avformat_alloc_context())) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    s->fc->interrupt_callback = (AVIOInterruptCB){mms_av_wait_cb, &s->wait};
    mms_av_wait_arm(&s->wait);
    ret = avformat_open_input(&s->fc, url, ifmt, &dict);
    if (ret < 0) { /* s->fc was freed */
        ret = blocked_error(s, ret, what, err);
        goto fail;
    }
    if ((ret = check_unused(o, dict, err)) < 0) {
        mms_err_prefix(err, "%s: ", what);
        goto fail;
    }
    mms_av_wait_arm(&s->wait);
    if ((ret = avformat_find_stream_info(s->fc, NULL)) < 0) {
        ret = blocked_error(s, ret, what, err);
        goto fail;
    }
    mms_av_wait_disarm(&s->wait);
    s->info.live = is_live(s->fc, url);
    s->info.format = s->fc->iformat->name;
    av_dict_free(&dict);
    return 0;
fail:
    mms_av_wait_disarm(&s->wait);
    av_dict_free(&dict);
    return ret;
}

static int open_decoder(struct mms_source *s, const char *url, struct mms_err *err)
{
    char why[128];
    const AVCodec *codec = NULL;
    int ret = av_find_best_stream(s->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret < 0)
        return mms_err_set(err, ret == AVERROR_DECODER_NOT_FOUND ? AVERROR(ENOTSUP) : ret,
                           "%s: %s", url,
                           ret == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video"
                                                            : "no video stream");
    s->stream = ret;
    AVStream *st = s->fc->streams[s->stream];
    for (unsigned i = 0; i < s->fc->nb_streams; i++)
        if ((int)i != s->stream)
            s->fc->streams[i]->discard = AVDISCARD_ALL; /* not even demuxed */
    if (!(s->dec = avcodec_alloc_context3(codec)))
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    if ((ret = avcodec_parameters_to_context(s->dec, st->codecpar)) < 0)
        return mms_err_set(err, ret, "%s: %s", url, mms_av_reason(ret, why, sizeof(why)));
    s->dec->pkt_timebase = st->time_base;
    /* The cores belong to inference, and frame threads would also hold
     * back thread_count frames, latency a live view cannot afford. */
    s->dec->thread_count = 1;
    /* Damaged packets are counted and reported through the source; the
     * decoder's own complaints go one log level down (errors become
     * warnings), leaving the level itself to the program. */
    s->dec->log_level_offset = AV_LOG_WARNING - AV_LOG_ERROR;
    /* Twice 8K: a header that says more is damage, refused before the
     * decoder allocates frames for it. */
    s->dec->max_pixels = 64 << 20;
    if ((ret = avcodec_open2(s->dec, codec, NULL)) < 0)
        return mms_err_set(err, ret, "%s: cannot open the %s decoder: %s", url,
                           codec->name, mms_av_reason(ret, why, sizeof(why)));
    s->info.codec = codec->name;
    return 0;
}

static int set_geometry(struct mms_source *s, const char *url, struct mms_err *err)
{
    AVStream *st = s->fc->streams[s->stream];
    int w = st->codecpar->width, h = st->codecpar->height;
    if (w < 1 || h < 1 || av_image_check_size2(w, h, INT64_MAX, AV_PIX_FMT_YUV420P, 0, NULL) < 0)
        return mms_err_set(err, AVERROR(EINVAL), "%s: video of unknown or bad size %dx%d",
                           url, w, h);
    s->info.width = w;
    s->info.height = h;
    s->info.time_base = st->time_base;
    AVRational fr = av_guess_frame_rate(s->fc, st, NULL);
    s->info.frame_rate = fr.num > 0 && fr.den > 0 ? fr : (AVRational){0, 1};
    AVRational est = s->info.frame_rate.num ? s->info.frame_rate
                                            : (AVRational){FALLBACK_FPS, 1};
    s->frame_dur = av_rescale_q(1, av_inv_q(est), st->time_base);
    if (s->frame_dur < 1)
        s->frame_dur = 1;
    s->last_pts = AV_NOPTS_VALUE;
    /* The stream's own, else the container's; a live input has none. */
    int64_t d = st->duration > 0 ? av_rescale_q(st->duration, st->time_base, AV_TIME_BASE_Q)
                                 : s->fc->duration;
    s->info.duration_us = d > 0 && !s->info.live ? d : 0;

    /* One buffer holds all three planes, so a frame is one pool entry. */
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    s->linesize[0] = FFALIGN(w, ROW_ALIGN);
    s->linesize[1] = s->linesize[2] = FFALIGN(cw, ROW_ALIGN);
    s->plane_offset[0] = 0;
    s->plane_offset[1] = (size_t)s->linesize[0] * h;
    s->plane_offset[2] = s->plane_offset[1] + (size_t)s->linesize[1] * ch;
    size_t size = s->plane_offset[2] + (size_t)s->linesize[2] * ch + ROW_ALIGN;
    if (size > INT_MAX)
        return mms_err_set(err, AVERROR(EINVAL), "%s: frame too large", url);
    if (!(s->pool = av_buffer_pool_init(size, NULL)))
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    return 0;
}

int mms_source_open(const char *url, const struct mms_source_opts *o,
                    struct mms_source **out, struct mms_err *err)
{
    *out = NULL;
    pthread_once(&devices_once, register_devices);
    struct mms_source *s = av_mallocz(sizeof(*s));
    int ret;
    if (!s)
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    mms_av_wait_init(&s->wait, o ? o->timeout_us : 0, o ? o->interrupt : NULL,
                     o ? o->interrupt_opaque : NULL);
    if (!(s->pkt = av_packet_alloc()) || !(s->decoded = av_frame_alloc())) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    if ((ret = open_input(s, url, o, err)) < 0)
        goto fail;
    if ((ret = open_decoder(s, url, err)) < 0)
        goto fail;
    if ((ret = set_geometry(s, url, err)) < 0)
        goto fail;
    s->realtime = o && o->realtime && !s->info.live;
    s->clock_pts = AV_NOPTS_VALUE;
    *out = s;
    return 0;
fail:
    mms_source_close(s);
    return ret;
}

/* ---- a cut Matroska file ---- */

#define EBML_ID_HEADER 0x1A45DFA3u
#define MKV_ID_SEGMENT 0x18538067u

/* An EBML variable-length number of at most `max` bytes: an element ID
 * keeps its length marker, a size loses it. -1 for what is not one,
 * -2 for a size of all ones ("unknown"). */
static int64_t ebml_num(AVIOContext *pb, int max, int is_id)
{
    int first = avio_r8(pb);
    int len = 1;
    while (len <= max && !(first & (0x100 >> len)))
        len++;
    if (avio_feof(pb) || len > max)
        return -1;
    uint64_t v = is_id ? (unsigned)first : (unsigned)first & (0xFFu >> len);
    uint64_t ones = 0xFFu >> len;
    for (int i = 1; i < len; i++) {
        int b = avio_r8(pb);
        v = v << 8 | (unsigned)b;
        ones = ones << 8 | 0xFF;
    }
    if (avio_feof(pb))
        return -1;
    return !is_id && v == ones ? -2 : (int64_t)v;
}

/* Matroska files say how long their Segment is (FFmpeg's muxer and
 * mkvmerge fill it in as they finish), and the demuxer takes a file that
 * ends short of it for a plain end, where a cut MP4 fails. 1 when the file
 * is shorter than its Segment says. A Segment of unknown size (a stream
 * written to a pipe, a recording killed before its end) says nothing. */
static int matroska_cut(AVFormatContext *fc)
{
    AVIOContext *pb = fc->pb;
    if (!pb || !(pb->seekable & AVIO_SEEKABLE_NORMAL) || !strstr(fc->iformat->name, "matroska"))
        return 0;
    int64_t file = avio_size(pb);
    if (file <= 0 || avio_seek(pb, 0, SEEK_SET) < 0 || ebml_num(pb, 4, 1) != EBML_ID_HEADER)
        return 0;
    int64_t header = ebml_num(pb, 8, 0);
    if (header < 0 || avio_skip(pb, header) < 0 || ebml_num(pb, 4, 1) != MKV_ID_SEGMENT)
        return 0;
    int64_t size = ebml_num(pb, 8, 0);
    return size >= 0 && avio_tell(pb) + size > file;
}

/* ---- reading ---- */

/* The next packet of our stream into s->pkt; AVERROR_EOF at the end. */
static int read_packet(struct mms_source *s, struct mms_err *err)
{
    for (;;) {
        mms_av_wait_arm(&s->wait);
        int ret = av_read_frame(s->fc, s->pkt);
        mms_av_wait_disarm(&s->wait);
        if (ret >= 0) {
            if (s->pkt->stream_index == s->stream)
                return 0;
            av_packet_unref(s->pkt);
            continue;
        }
        if (ret == AVERROR(EAGAIN)) { /* a device with no frame ready yet */
            if (mms_av_wait_stopped(&s->wait))
                return blocked_error(s, AVERROR_EXIT, s->shown, err);
            av_usleep(2000);
            continue;
        }
        if (ret == AVERROR_EOF) {
            /* The demuxer is done with the file: reading its head again
             * disturbs nothing. */
            if (!s->info.live && matroska_cut(s->fc))
                s->decode_errors++;
            return ret;
        }
        if (s->info.live || mms_av_wait_stopped(&s->wait) || ret == AVERROR_EXIT)
            return blocked_error(s, ret, s->shown, err);
        /* A damaged file: what could be read is all there is. */
        s->decode_errors++;
        return AVERROR_EOF;
    }
}

/* Feeds the decoder one packet, or the flush at the end of the input. */
static int feed(struct mms_source *s, struct mms_err *err)
{
    if (!s->pkt_queued) {
        int ret = read_packet(s, err);
        if (ret == AVERROR_EOF) {
            s->draining = 1;
            avcodec_send_packet(s->dec, NULL);
            return 0;
        }
        if (ret < 0)
            return ret;
        s->pkt_queued = 1;
    }
    int ret = avcodec_send_packet(s->dec, s->pkt);
    if (ret == AVERROR(EAGAIN))
        return 0; /* frames to take out first; the packet waits */
    s->pkt_queued = 0;
    av_packet_unref(s->pkt);
    if (ret < 0 && ret != AVERROR_EOF)
        s->decode_errors++;
    return 0;
}

static int64_t frame_pts(struct mms_source *s, const AVFrame *f)
{
    int64_t pts = f->best_effort_timestamp;
    /* Missing or going backwards, a timestamp would stop the muxers
     * downstream; one frame after the last is the best guess. */
    if (s->last_pts == AV_NOPTS_VALUE && pts == AV_NOPTS_VALUE)
        pts = 0;
    else if (pts == AV_NOPTS_VALUE || pts <= s->last_pts)
        pts = s->last_pts + s->frame_dur;
    s->last_pts = pts;
    return pts;
}

/* Full range (JPEG's, and many IP cameras' and webcams'), by its flag or
 * by the deprecated J formats, which carry no flag of their own. */
static int is_full_range(const AVFrame *f)
{
    switch (f->format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P:
        return 1;
    default:
        return f->color_range == AVCOL_RANGE_JPEG;
    }
}

/* One plane from full range to limited: luma 0-255 to 16-235, chroma
 * around 128 to 16-240, rounded to nearest. */
static void plane_to_limited(uint8_t *dst, int dls, const uint8_t *src, int sls, int w, int h,
                             int chroma)
{
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (uint8_t)(chroma ? 128 + ((v - 128) * 224 + (v < 128 ? -127 : 127)) / 255
                                  : 16 + (v * 219 + 127) / 255);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            dst[(long)y * dls + x] = lut[src[(long)y * sls + x]];
}

/*
 * Every frame leaves in limited-range YUV420P. The encoders are told
 * nothing of a frame's range (x264 takes it from its context only), so a
 * full-range frame passed on was recorded and streamed with its levels
 * read as limited: blacks lifted to grey, whites clipped.
 */
static int convert(struct mms_source *s, const AVFrame *src, AVFrame *dst,
                   struct mms_err *err)
{
    enum AVPixelFormat fmt = src->format;
    int full = is_full_range(src), same = src->width == dst->width && src->height == dst->height;
    if ((fmt == AV_PIX_FMT_YUV420P || fmt == AV_PIX_FMT_YUVJ420P) && same) {
        for (int p = 0; p < 3; p++) {
            int w = p ? (dst->width + 1) >> 1 : dst->width, h = p ? (dst->height + 1) >> 1 : dst->height;
            if (full)
                plane_to_limited(dst->data[p], dst->linesize[p], src->data[p], src->linesize[p], w,
                                 h, p > 0);
            else
                av_image_copy_plane(dst->data[p], dst->linesize[p], src->data[p],
                                    src->linesize[p], w, h);
        }
        dst->color_range = full ? AVCOL_RANGE_MPEG : src->color_range;
        dst->chroma_location = src->chroma_location;
        return 0;
    }
    if (!s->sws || s->sws_w != src->width || s->sws_h != src->height ||
        s->sws_fmt != fmt || s->sws_full != full) {
        sws_freeContext(s->sws);
        s->sws = sws_getContext(src->width, src->height, fmt, dst->width, dst->height,
                                AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
        if (!s->sws)
            return mms_err_set(err, AVERROR(ENOTSUP), "%s: cannot convert %s frames",
                               s->shown, av_get_pix_fmt_name(fmt));
        /* swscale knows the range of the J formats alone. */
        int *inv, *tab, src_range, dst_range, bri, con, sat;
        if (sws_getColorspaceDetails(s->sws, &inv, &src_range, &tab, &dst_range, &bri, &con,
                                     &sat) >= 0)
            sws_setColorspaceDetails(s->sws, inv, full, tab, 0, bri, con, sat);
        s->sws_w = src->width;
        s->sws_h = src->height;
        s->sws_fmt = fmt;
        s->sws_full = full;
    }
    sws_scale(s->sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
              dst->data, dst->linesize);
    dst->color_range = AVCOL_RANGE_MPEG;
    dst->chroma_location = AVCHROMA_LOC_UNSPECIFIED; /* swscale's own siting */
    return 0;
}

/* Our own writable buffer with the decoded picture; only the fields a
 * consumer needs are copied, since side data would allocate per frame. */
static int deliver(struct mms_source *s, AVFrame *out, struct mms_err *err)
{
    const AVFrame *src = s->decoded;
    int ret;
    if (!(out->buf[0] = av_buffer_pool_get(s->pool))) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto done;
    }
    mms_tsan_buffer_acquire(out->buf[0]); /* see io/tsan.h */
    for (int i = 0; i < 3; i++) {
        out->data[i] = out->buf[0]->data + s->plane_offset[i];
        out->linesize[i] = s->linesize[i];
    }
    out->format = AV_PIX_FMT_YUV420P;
    out->width = s->info.width;
    out->height = s->info.height;
    if ((ret = convert(s, src, out, err)) < 0) {
        av_frame_unref(out);
        goto done;
    }
    out->pts = frame_pts(s, src);
    out->best_effort_timestamp = out->pts;
    out->sample_aspect_ratio = src->sample_aspect_ratio;
    out->colorspace = src->colorspace;
    out->color_primaries = src->color_primaries;
    out->color_trc = src->color_trc;
    out->flags = src->flags & AV_FRAME_FLAG_CORRUPT;
    /* Concealed damage still shows, but the run must say it was damaged. */
    if (src->decode_error_flags || (src->flags & AV_FRAME_FLAG_CORRUPT))
        s->decode_errors++;
done:
    av_frame_unref(s->decoded);
    return ret;
}

/* Realtime: waits until `pts` is due on the clock started by the first
 * frame. The pts are already monotonic (frame_pts), so a missing one
 * counts as a frame's duration and a backwards jump as none. */
static void pace(struct mms_source *s, int64_t pts)
{
    int64_t now = av_gettime_relative();
    int64_t due = s->clock_pts == AV_NOPTS_VALUE
                      ? now
                      : s->clock_us + av_rescale_q(pts - s->clock_pts, s->info.time_base,
                                                   AV_TIME_BASE_Q);
    if (s->clock_pts == AV_NOPTS_VALUE || due - now > PACE_JUMP_US ||
        now - due > PACE_JUMP_US) {
        s->clock_pts = pts;
        s->clock_us = now;
        return;
    }
    while (now < due && !mms_av_wait_stopped(&s->wait)) {
        av_usleep((unsigned)FFMIN(due - now, PACE_STEP_US));
        now = av_gettime_relative();
    }
}

int mms_source_read(struct mms_source *s, AVFrame *frame, struct mms_err *err)
{
    av_frame_unref(frame);
    if (mms_av_wait_stopped(&s->wait))
        return blocked_error(s, AVERROR_EXIT, s->shown, err);
    for (;;) {
        int ret = avcodec_receive_frame(s->dec, s->decoded);
        if (ret >= 0) {
            if ((ret = deliver(s, frame, err)) >= 0 && s->realtime)
                pace(s, frame->pts);
            return ret;
        }
        if (ret == AVERROR_EOF)
            return mms_err_set(err, AVERROR_EOF, "%s: end of input", s->shown);
        if (ret != AVERROR(EAGAIN))
            s->decode_errors++; /* that picture is lost; go on with the next packet */
        /* Flushed, a decoder that fails or wants input has nothing left;
         * asking again could spin forever. */
        if (s->draining)
            return mms_err_set(err, AVERROR_EOF, "%s: end of input", s->shown);
        if ((ret = feed(s, err)) < 0)
            return ret;
    }
}

const struct mms_source_info *mms_source_info(const struct mms_source *s)
{
    return &s->info;
}

int64_t mms_source_decode_errors(const struct mms_source *s)
{
    return s->decode_errors;
}

void mms_source_interrupt(struct mms_source *s)
{
    mms_av_wait_stop(&s->wait);
}

void mms_source_close(struct mms_source *s)
{
    if (!s)
        return;
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fc);
    sws_freeContext(s->sws);
    av_buffer_pool_uninit(&s->pool);
    av_frame_free(&s->decoded);
    av_packet_free(&s->pkt);
    av_free(s);
}
