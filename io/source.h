#ifndef MMS_SOURCE_H
#define MMS_SOURCE_H

/*
 * A video source: anything libavformat opens (a file, /dev/videoN through
 * v4l2, rtsp://, srt://, udp://, rtmp://, "lavfi:GRAPH"), demuxed and
 * decoded to YUV420P frames the caller may draw on.
 *
 * Frames come from the source's own buffer pool, never the decoder's
 * reference frames, so composing in place cannot corrupt later decoding;
 * in steady state reading allocates nothing. Packets that fail to decode
 * are counted and skipped: a damaged file still plays to its end. A file
 * that ends early counts too: a cut MP4 fails to read, and a Matroska file
 * shorter than the Segment size in its header counts one error at its end.
 */

#include <stdint.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "core/error.h"

struct mms_source_opts {
    /* "key=value" options for the demuxer or device (video_size=1280x720,
     * rtsp_transport=tcp, ...), as ffmpeg's -option value before -i. */
    const char *const *options;
    int noptions;
    /* A network read that blocks longer than this fails (default 5 s). */
    int64_t timeout_us;
    /* Frames no earlier than their timestamps say, on the wall clock from
     * the first frame (ffmpeg's -re): a file or a lavfi graph plays at its
     * own rate, as a camera would deliver it. A jump in the timestamps
     * (more than a second ahead of or behind the clock) starts the clock
     * again there. Devices and network streams are paced by their sender
     * and never wait here. */
    int realtime;
    /* Polled while the source waits (opening, reading, a realtime wait):
     * nonzero ends the wait with AVERROR_EXIT and stays in effect, as
     * mms_source_interrupt() does. FFmpeg's AVIOInterruptCB: called on the
     * thread that opens or reads, so it should only read state that others
     * set, such as a stop flag. NULL: none. */
    int (*interrupt)(void *opaque);
    void *interrupt_opaque;
};

struct mms_source_info {
    int width, height;
    AVRational time_base;  /* of frame->pts */
    AVRational frame_rate; /* nominal; {0,1} when unknown */
    int live;              /* a device or network stream, not a file */
    const char *format;    /* demuxer name */
    const char *codec;     /* decoder name */
    int64_t duration_us;   /* 0 when unknown (live) */
};

struct mms_source;

/* Opens and probes the input (blocking, up to the timeout for a network
 * input). The first video stream is used. */
int mms_source_open(const char *url, const struct mms_source_opts *o,
                    struct mms_source **out, struct mms_err *err);

/* The next frame, YUV420P at the source size, pts in info.time_base
 * (AV_NOPTS_VALUE replaced by a running estimate). `frame` is unreffed
 * first. Returns 0, AVERROR_EOF at the end of the input, or another
 * negative AVERROR when the input fails (a dropped network stream). With
 * opts.realtime it may wait for the frame's time (mms_source_interrupt
 * ends the wait). */
int mms_source_read(struct mms_source *s, AVFrame *frame, struct mms_err *err);

const struct mms_source_info *mms_source_info(const struct mms_source *s);
/* Packets or frames that failed to decode so far. */
int64_t mms_source_decode_errors(const struct mms_source *s);

/* Thread-safe, but only while no other thread may close `s`: makes a
 * blocked read return AVERROR_EXIT soon. An owner that closes and reopens
 * its source on another thread uses opts.interrupt instead. */
void mms_source_interrupt(struct mms_source *s);

void mms_source_close(struct mms_source *s);

#endif
