#ifndef MMS_ENCODER_H
#define MMS_ENCODER_H

/*
 * One H.264 encoder, apart from any muxer, so that outputs wanting the same
 * encoding can share it: the pipeline encodes each frame once per distinct
 * mms_enc_settings and hands the packets to every output's own muxer
 * (FFmpeg's fftools do the same: encode and mux are separate tasks).
 *
 * Frames are YUV420P at the settings' size, pts in its time base, strictly
 * increasing. Packets come out in the same time base, one per frame, in
 * order (no B-frames: decode order is display order), each with its
 * duration, keyframes flagged.
 */

#include <stddef.h>
#include <stdint.h>

#include <libavcodec/codec_id.h>
#include <libavcodec/codec_par.h>
#include <libavcodec/packet.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
#include <libavutil/rational.h>

#include "core/error.h"

/* Everything that makes two encodings differ: outputs whose settings are
 * equal (mms_enc_settings_equal) take the same packets. */
struct mms_enc_settings {
    enum AVCodecID codec;       /* AV_CODEC_ID_H264 */
    enum AVPixelFormat pix_fmt; /* AV_PIX_FMT_YUV420P */
    int width, height;
    AVRational time_base;       /* of the frames' pts, and of the packets' */
    AVRational frame_rate;      /* nominal */
    int gop;                    /* frames from one keyframe to the next, at most */
    /* One thread, no lookahead, a fast preset: nothing held back.
     * Otherwise a better preset and a second thread. */
    int low_latency;
    int crf;                    /* quality, for encoders that have it */
    /* x264's preset; "": superfast in low latency, else veryfast. */
    char preset[16];
    int64_t max_rate;           /* bit/s cap (with a second of buffer); 0: none */
    int64_t bit_rate;           /* for encoders without a quality mode */
    /* The muxer wants SPS/PPS in extradata (MP4, Matroska, FLV, RTSP), not
     * only in the stream. Not part of the key: an encoder shared by several
     * outputs sets it when any of them wants it (MPEG-TS takes both). */
    int global_header;
};

int mms_enc_settings_equal(const struct mms_enc_settings *a, const struct mms_enc_settings *b);

/* "1280x720 25 fps live capped 2765 kbit/s": for logs and messages. */
void mms_enc_settings_describe(const struct mms_enc_settings *s, char *buf, size_t len);

struct mms_encoder;

/* `name` prefixes its error messages (an output's URL, "encoder 1"). */
int mms_encoder_open(const struct mms_enc_settings *s, const char *name,
                     struct mms_encoder **out, struct mms_err *err);

/* Encodes `f` (borrowed; its picture type is ignored, its pts missing:
 * one frame after the last), or flushes with NULL. A frame of the wrong
 * size or format, or whose pts is not after the last one, is refused
 * with AVERROR(EINVAL) and the encoder goes on. Any other failure is the
 * encoder's for good. */
int mms_encoder_send(struct mms_encoder *e, const AVFrame *f, struct mms_err *err);

/* The next packet into `pkt` (unreffed first): 0, AVERROR(EAGAIN) when
 * none is ready until the next send, AVERROR_EOF once flushed. */
int mms_encoder_receive(struct mms_encoder *e, AVPacket *pkt, struct mms_err *err);

/* What a muxer's stream needs; fixed once open, so any thread may read. */
const AVCodecParameters *mms_encoder_params(const struct mms_encoder *e);
AVRational mms_encoder_time_base(const struct mms_encoder *e);
const struct mms_enc_settings *mms_encoder_settings(const struct mms_encoder *e);

/* Any thread: the first frame sent with pts >= `pts` becomes a keyframe;
 * of several times asked for, the earliest. INT64_MIN asks for the next
 * frame, and leaves a time asked for in place. A recording asks for its
 * segment ends; an output joining late (a stream reopened, a recording
 * started) for its first picture. */
void mms_encoder_key_at(struct mms_encoder *e, int64_t pts);

/* Frames sent so far: how many times this encoder did the work. */
int64_t mms_encoder_frames(const struct mms_encoder *e);

void mms_encoder_free(struct mms_encoder *e);

#endif
