/* The file and stream sinks: a muxer each, fed by an H.264 encoder of its
 * own or by packets of one the pipeline shares between outputs with the
 * same settings (io/encoder.h). The two drivers differ only in which URLs
 * they take and how the encoder and muxer are tuned, so both are tables
 * over the same functions. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/time.h>

#include "io/av_common.h"
#include "io/encoder.h"
#include "io/sink.h"

#define DEFAULT_FPS 25
/* Bits per pixel per frame for encoders without a quality mode, and the
 * cap on low-latency encodings, where a keyframe burst must not overflow a
 * receiver. */
#define STREAM_BPP 0.12
#define CRF 23
/* The least socket send buffer a tcp:// stream gets (the kernel doubles
 * what it is asked for). */
#define MIN_SEND_BUFFER 65536
/* The buffer of a muxer writing to a caller's descriptor: FFmpeg's own
 * for files. */
#define FD_IO_BUFFER 32768
/* The kernel holds written data for up to 30 s (dirty_expire_centisecs)
 * before it reaches the disk: a power cut, a kernel panic or a pulled
 * USB disk would lose that much of a recording, not the second a
 * fragment holds. */
#define FD_SYNC_EVERY_US 1000000

/* FFmpeg 7 (libavformat 61) made the buffer a write callback gets const. */
#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define FD_WRITE_BUF const uint8_t
#else
#define FD_WRITE_BUF uint8_t
#endif

struct av_sink {
    AVFormatContext *oc;
    AVStream *st;
    AVPacket *pkt;
    struct mms_encoder *enc; /* ours, or the shared one packets come from */
    int shared;              /* enc is not ours: write_packet only */
    int network;
    /* The caller's file (open_fd), written through oc->pb, our own
     * AVIOContext; -1 when FFmpeg opened the URL. Ours once open. */
    int fd;
    /* Ours: where the next write lands, and the furthest any reached,
     * which the caller's counter (mms_sink_params.written) is told. */
    int64_t pos, end;
    int64_t synced_us; /* when the file was last synced to the disk */
    atomic_llong *written;
    /* Network outputs: the caller's interrupt and a deadline per call. */
    struct mms_av_wait wait;
    int header_done;
    int failed; /* the first write error: later writes repeat it */
    int64_t bytes_per_s; /* the encoding's rate at its cap */
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

/* ---- the encoding an output wants ---- */

static AVRational nominal_rate(const struct mms_sink_params *p)
{
    return p->frame_rate.num > 0 && p->frame_rate.den > 0 ? p->frame_rate
                                                         : (AVRational){DEFAULT_FPS, 1};
}

static int needs_global_header(const char *muxer)
{
    const AVOutputFormat *f = av_guess_format(muxer, NULL, NULL);
    return f && (f->flags & AVFMT_GLOBALHEADER);
}

/* Every low-latency output (streams, and in live mode files and the
 * recording too) gets the same encoding, capped for receivers, so that a
 * live pipeline's outputs of one size can share one encoder; offline files
 * get a better preset without a cap. */
static void settings_for(const struct mms_sink_params *p, const struct target *t,
                         struct mms_enc_settings *s)
{
    AVRational fr = nominal_rate(p);
    double bits = STREAM_BPP * p->width * p->height * av_q2d(fr);
    *s = (struct mms_enc_settings){
        .codec = AV_CODEC_ID_H264,
        .pix_fmt = AV_PIX_FMT_YUV420P,
        .width = p->width,
        .height = p->height,
        .time_base = p->time_base,
        .frame_rate = fr,
        /* A keyframe a second starts a fragment a second: what a killed
         * recording loses, and how long a late viewer waits for a picture. */
        .gop = FFMAX(1, (int)lrint(av_q2d(fr))),
        .low_latency = t->low_latency,
        .crf = CRF,
        .max_rate = t->low_latency ? (int64_t)bits : 0,
        .bit_rate = (int64_t)bits,
        .global_header = needs_global_header(t->muxer),
    };
    if (!t->low_latency && p->preset)
        av_strlcpy(s->preset, p->preset, sizeof(s->preset));
}

static int file_target(const char *url, const struct mms_sink_params *p, struct target *t)
{
    const char *muxer = file_muxer(url);
    *t = (struct target){muxer, p->live, 0};
    return muxer != NULL;
}

static int stream_target(const char *url, const struct mms_sink_params *p, struct target *t)
{
    (void)p;
    const char *muxer = stream_muxer(url);
    *t = (struct target){muxer, 1, 1};
    return muxer != NULL;
}

static int file_encoding(const char *url, const struct mms_sink_params *p,
                         struct mms_enc_settings *s)
{
    struct target t;
    if (!file_target(url, p, &t))
        return 0;
    settings_for(p, &t, s);
    return 1;
}

static int stream_encoding(const char *url, const struct mms_sink_params *p,
                           struct mms_enc_settings *s)
{
    struct target t;
    if (!stream_target(url, p, &t))
        return 0;
    settings_for(p, &t, s);
    return 1;
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

/* idle: what a timeout means at this step. */
static int step_error(struct av_sink *a, int ret, const char *url, const char *what,
                      const char *idle, struct mms_err *err)
{
    char where[1200];
    snprintf(where, sizeof(where), "%s: %s", url, what);
    return mms_av_wait_error(&a->wait, ret, where, idle, err);
}

static int io_error(struct av_sink *a, int ret, const char *url, const char *what,
                    struct mms_err *err)
{
    return step_error(a, ret, url, what, "the receiver took no data", err);
}

/* Ours, or the shared one when it suits this output. */
static int take_encoder(struct av_sink *a, const char *url, const struct mms_sink_params *p,
                        const struct mms_enc_settings *want, struct mms_err *err)
{
    if (!p->encoder)
        return mms_encoder_open(want, url, &a->enc, err);
    const struct mms_enc_settings *have = mms_encoder_settings(p->encoder);
    if (have->width != want->width || have->height != want->height)
        return mms_err_set(err, AVERROR(EINVAL), "%s: the shared encoder is %dx%d, the output "
                           "%dx%d", url, have->width, have->height, want->width, want->height);
    if (want->global_header && !have->global_header)
        return mms_err_set(err, AVERROR(EINVAL), "%s: the shared encoder puts no headers "
                           "where this container needs them", url);
    a->enc = p->encoder;
    a->shared = 1;
    return 0;
}

static int add_stream(struct av_sink *a, const char *url, struct mms_err *err)
{
    if (!(a->st = avformat_new_stream(a->oc, NULL)))
        return mms_err_set(err, AVERROR(ENOMEM), "out of memory");
    int ret = avcodec_parameters_copy(a->st->codecpar, mms_encoder_params(a->enc));
    if (ret < 0)
        return mms_err_set(err, ret, "%s: out of memory", url);
    a->st->time_base = mms_encoder_time_base(a->enc); /* a hint: muxers pick their own */
    a->st->avg_frame_rate = mms_encoder_settings(a->enc)->frame_rate;
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

/* ---- writing through a caller's descriptor ---- */

/* What was written, to the disk. A file that cannot be synced (a pipe,
 * /dev/full, some FUSE mounts) says EINVAL and is left as it is; an I/O
 * error means data already written was lost, and fails the write. */
static int sync_fd(int fd)
{
    if (!fdatasync(fd) || errno == EINVAL || errno == EROFS)
        return 0;
    return AVERROR(errno);
}

static int fd_write(void *opaque, FD_WRITE_BUF *buf, int size)
{
    struct av_sink *a = opaque;
    int done = 0;
    while (done < size) {
        ssize_t n = write(a->fd, buf + done, (size_t)(size - done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return AVERROR(errno);
        if (n == 0)
            return AVERROR(EIO); /* a regular file never takes nothing */
        done += (int)n;
        /* Each piece as it lands: a write that fails halfway leaves the
         * first pieces in the file. */
        a->pos += n;
        if (a->pos > a->end) {
            a->end = a->pos;
            if (a->written)
                atomic_store(a->written, a->end);
        }
    }
    int64_t now = av_gettime_relative();
    if (now - a->synced_us >= FD_SYNC_EVERY_US) {
        a->synced_us = now;
        int ret = sync_fd(a->fd);
        if (ret < 0)
            return ret;
    }
    return size;
}

/* Matroska goes back to fill in sizes, cues and the duration. */
static int64_t fd_seek(void *opaque, int64_t offset, int whence)
{
    struct av_sink *a = opaque;
    if (whence & AVSEEK_SIZE) {
        struct stat st;
        return fstat(a->fd, &st) ? AVERROR(errno) : (int64_t)st.st_size;
    }
    off_t at = lseek(a->fd, (off_t)offset, whence & ~AVSEEK_FORCE);
    if (at < 0)
        return AVERROR(errno);
    a->pos = at;
    return at;
}

static int open_fd_io(struct av_sink *a, const char *url, struct mms_err *err)
{
    uint8_t *buf = av_malloc(FD_IO_BUFFER);
    AVIOContext *pb = buf ? avio_alloc_context(buf, FD_IO_BUFFER, 1, a, NULL, fd_write, fd_seek)
                          : NULL;
    if (!pb) {
        av_free(buf);
        return mms_err_set(err, AVERROR(ENOMEM), "%s: out of memory", url);
    }
    a->oc->pb = pb;
    a->oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    a->synced_us = av_gettime_relative();
    return 0;
}

/* Our AVIOContext and its buffer (which FFmpeg may have replaced),
 * flushed first when asked to; the descriptor stays open. */
static int close_fd_io(struct av_sink *a, int flush)
{
    AVIOContext *pb = a->oc->pb;
    int ret = 0;
    if (!pb)
        return 0;
    if (flush) {
        avio_flush(pb);
        ret = pb->error;
    }
    av_freep(&pb->buffer);
    avio_context_free(&a->oc->pb);
    return ret;
}

static int uses_fd(const struct av_sink *a)
{
    return a->oc && (a->oc->flags & AVFMT_FLAG_CUSTOM_IO);
}

/* ---- opening, continued ---- */

/* url is opened; shown, its secrets hidden, is what messages say. */
static int open_output(struct av_sink *a, const char *url, const char *shown,
                       const struct target *t, struct mms_err *err)
{
    AVDictionary *opts = NULL;
    int ret = 0;
    if (a->fd >= 0) {
        if ((ret = open_fd_io(a, shown, err)) < 0)
            return ret;
    } else if (!(a->oc->oformat->flags & AVFMT_NOFILE)) {
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
                                FFMAX(a->bytes_per_s, MIN_SEND_BUFFER), 0);
        }
        arm(a);
        ret = avio_open2(&a->oc->pb, url, AVIO_FLAG_WRITE, &a->oc->interrupt_callback,
                         &opts);
        disarm(a);
        av_dict_free(&opts);
        if (ret < 0)
            return step_error(a, ret, shown, "cannot open for writing",
                              "no answer from the receiver", err);
    }
    if ((ret = muxer_options(t, &opts)) >= 0) {
        arm(a);
        ret = avformat_write_header(a->oc, &opts);
        disarm(a);
    }
    av_dict_free(&opts);
    if (ret < 0)
        return io_error(a, ret, shown, "cannot start the output", err);
    a->header_done = 1;
    return 0;
}

/* Releases everything but a caller's descriptor: av_close() closes that
 * once the sink owns it, and after a failed open it stays the caller's. */
static void teardown(struct av_sink *a)
{
    if (uses_fd(a))
        close_fd_io(a, 0);
    else if (a->oc && !(a->oc->oformat->flags & AVFMT_NOFILE))
        avio_closep(&a->oc->pb);
    avformat_free_context(a->oc);
    a->oc = NULL;
    if (!a->shared)
        mms_encoder_free(a->enc);
    a->enc = NULL;
    av_packet_free(&a->pkt);
}

/* fd: the caller's file to write through, or -1 to open url. */
static int av_open(struct mms_sink *s, const char *url, int fd, const struct mms_sink_params *p,
                   const struct target *t, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    a->fd = fd;
    a->written = fd >= 0 ? p->written : NULL;
    if (p->time_base.num < 1 || p->time_base.den < 1)
        return mms_err_set(err, AVERROR(EINVAL), "%s: bad time base %d/%d", s->url,
                           p->time_base.num, p->time_base.den);
    a->network = t->network;
    /* A file is finished whatever happens: its trailer makes it playable. */
    mms_av_wait_init(&a->wait, MMS_AV_NET_TIMEOUT_US, t->network ? p->interrupt : NULL,
                     p->interrupt_opaque);
    struct mms_enc_settings want;
    settings_for(p, t, &want);
    a->bytes_per_s = want.bit_rate / 8;
    int ret = avformat_alloc_output_context2(&a->oc, NULL, t->muxer, url);
    if (ret < 0 || !a->oc) {
        ret = mms_err_set(err, AVERROR(ENOTSUP), "%s: this FFmpeg has no %s muxer", s->url,
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
    if (!(a->pkt = av_packet_alloc())) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    if ((ret = take_encoder(a, s->url, p, &want, err)) < 0)
        goto fail;
    if ((ret = add_stream(a, s->url, err)) < 0)
        goto fail;
    if ((ret = open_output(a, url, s->url, t, err)) < 0)
        goto fail;
    return 0;
fail:
    teardown(a);
    a->fd = -1; /* still the caller's */
    return ret;
}

static int file_open_on(struct mms_sink *s, const char *url, int fd,
                        const struct mms_sink_params *p, struct mms_err *err)
{
    struct target t;
    if (!file_target(url, p, &t))
        return mms_err_set(err, AVERROR(EINVAL), "%s: not a .mp4, .mov, .mkv or .ts file",
                           url);
    return av_open(s, url, fd, p, &t, err);
}

static int file_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                     struct mms_err *err)
{
    return file_open_on(s, url, -1, p, err);
}

static int file_open_fd(struct mms_sink *s, const char *url, int fd,
                        const struct mms_sink_params *p, struct mms_err *err)
{
    return file_open_on(s, url, fd, p, err);
}

static int stream_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                       struct mms_err *err)
{
    struct target t;
    if (!stream_target(url, p, &t))
        return mms_err_set(err, AVERROR(EINVAL), "%s: not a udp, srt, rtmp or rtsp URL",
                           url);
    return av_open(s, url, -1, p, &t, err);
}

/* ---- writing ---- */

static int failed_error(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    char why[128];
    return mms_err_set(err, a->failed, "%s: output failed: %s", s->url,
                       mms_av_reason(a->failed, why, sizeof(why)));
}

/* Into the muxer: a->pkt, in the encoder's time base; unreffed after. */
static int mux(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    av_packet_rescale_ts(a->pkt, mms_encoder_time_base(a->enc), a->st->time_base);
    a->pkt->time_base = a->st->time_base;
    a->pkt->stream_index = a->st->index;
    arm(a);
    int ret = av_write_frame(a->oc, a->pkt);
    disarm(a);
    av_packet_unref(a->pkt);
    if (ret < 0)
        return a->failed = io_error(a, ret, s->url, "cannot write", err);
    return 0;
}

/* Moves every packet our encoder has ready into the muxer. */
static int drain(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    for (;;) {
        int ret = mms_encoder_receive(a->enc, a->pkt, err);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return a->failed = ret;
        if ((ret = mux(s, err)) < 0)
            return ret;
    }
}

static int av_write(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                    struct mms_err *err)
{
    (void)m;
    struct av_sink *a = s->priv;
    if (a->failed)
        return failed_error(s, err);
    if (a->shared)
        return mms_err_set(err, AVERROR(EINVAL), "%s: takes a shared encoder's packets, "
                           "not frames", s->url);
    int ret = mms_encoder_send(a->enc, frame, err);
    /* A frame refused (its size, its time) leaves the output as it was. */
    if (ret == AVERROR(EINVAL))
        return ret;
    if (ret < 0)
        return a->failed = ret;
    return drain(s, err);
}

static int av_write_packet(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    if (a->failed)
        return failed_error(s, err);
    if (!a->shared)
        return mms_err_set(err, AVERROR(EINVAL), "%s: encodes frames itself, takes no "
                           "packets", s->url);
    int ret = av_packet_ref(a->pkt, pkt);
    if (ret < 0)
        return mms_err_set(err, ret, "out of memory");
    return mux(s, err);
}

static int av_close(struct mms_sink *s, struct mms_err *err)
{
    struct av_sink *a = s->priv;
    int ret = 0;
    /* After a failed write the peer or disk is gone: finishing would only
     * fail again, or wait out the network timeout once more. A shared
     * encoder is flushed by its owner, into every output. */
    if (a->header_done && !a->failed) {
        if (!a->shared && (ret = mms_encoder_send(a->enc, NULL, err)) >= 0)
            ret = drain(s, err);
        arm(a);
        int tr = av_write_trailer(a->oc);
        disarm(a);
        if (tr < 0 && ret >= 0)
            ret = io_error(a, tr, s->url, "cannot finish the output", err);
    } else if (a->header_done && (a->oc->oformat->flags & AVFMT_NOFILE)) {
        /* A muxer with its own connection (rtsp) frees it, and its
         * sockets, only in its trailer; stopped first, the trailer sends
         * nothing and cannot wait. Without this each failed session left
         * a socket open, until the process ran out of descriptors. */
        mms_av_wait_stop(&a->wait);
        av_write_trailer(a->oc);
    }
    int cl = 0;
    if (uses_fd(a)) {
        cl = close_fd_io(a, !a->failed);
        /* The segment's end, trailer included, on the disk before it is
         * called finished. */
        if (!a->failed && !cl)
            cl = sync_fd(a->fd);
        /* Where a delayed write error shows (NFS, a full quota). */
        if (close(a->fd) && !cl)
            cl = AVERROR(errno);
        a->fd = -1;
    } else if (a->oc && !(a->oc->oformat->flags & AVFMT_NOFILE)) {
        cl = avio_closep(&a->oc->pb);
    }
    if (cl < 0 && ret >= 0 && !a->failed)
        ret = io_error(a, cl, s->url, "cannot finish the output", err);
    teardown(a);
    return ret;
}

const struct mms_sink_driver mms_sink_file = {
    .name = "file",
    .probe = file_probe,
    .encoding = file_encoding,
    .priv_size = sizeof(struct av_sink),
    .open = file_open,
    .open_fd = file_open_fd,
    .write = av_write,
    .write_packet = av_write_packet,
    .close = av_close,
};

const struct mms_sink_driver mms_sink_stream = {
    .name = "stream",
    .probe = stream_probe,
    .encoding = stream_encoding,
    .reopen = 1,
    .priv_size = sizeof(struct av_sink),
    .open = stream_open,
    .write = av_write,
    .write_packet = av_write_packet,
    .close = av_close,
};
