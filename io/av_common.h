#ifndef MMS_AV_COMMON_H
#define MMS_AV_COMMON_H

/*
 * What every FFmpeg-backed file in io/ needs, in one copy: error strings,
 * URL tests, and the guard around calls that may wait on a network peer
 * (FFmpeg's AVIOInterruptCB with the caller's stop callback and a
 * deadline per call).
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libavutil/dict.h>
#include <libavutil/frame.h>

#include "core/error.h"
#include "core/yuv.h"

/* How long a network peer may keep a blocking call waiting, by default. */
#define MMS_AV_NET_TIMEOUT_US 5000000

/* av_strerror into buf, or "error N" for a code FFmpeg does not know. */
const char *mms_av_reason(int ret, char *buf, size_t len);

/* ASCII case-insensitive: URL schemes and file extensions. */
int mms_av_has_prefix(const char *s, const char *prefix);
int mms_av_has_suffix(const char *s, const char *suffix);

/* 1 when `url` reaches the network: a protocol other than file or pipe,
 * or a scheme FFmpeg's demuxers handle themselves (rtsp://). */
int mms_av_is_network(const char *url);

/* Sets rw_timeout, unless the caller's dictionary already has one: a read
 * or write that waits on a socket ends at the protocol level, below the
 * (de)muxer. 0 or AVERROR(ENOMEM). */
int mms_av_set_rw_timeout(AVDictionary **opts, int64_t timeout_us);

/* Describes a decoded frame for core/yuv.h: its planes, chroma layout,
 * matrix (BT.601 when unspecified) and range (the "J" formats are full
 * range). -ENOTSUP for a pixel format core/yuv.h has no layout for. */
int mms_av_frame_yuv(const AVFrame *f, struct mms_yuv *y);

/* The guard. FFmpeg calls mms_av_wait_cb on the thread in the blocking
 * call; `interrupt` may read state any thread sets (a stop flag), and its
 * answer is kept: once stopped, stopped for good. */
struct mms_av_wait {
    int (*interrupt)(void *opaque); /* NULL: only the deadline ends a wait */
    void *opaque;
    atomic_int stopped;
    int64_t timeout_us;
    int64_t deadline; /* of the call in progress; 0: none. The calling thread's. */
};

void mms_av_wait_init(struct mms_av_wait *w, int64_t timeout_us,
                      int (*interrupt)(void *opaque), void *opaque);
/* The AVIOInterruptCB callback; opaque is the struct mms_av_wait. */
int mms_av_wait_cb(void *opaque);
/* Nonzero once asked to stop (mms_av_wait_stop or the callback). */
int mms_av_wait_stopped(struct mms_av_wait *w);
/* Any thread. */
void mms_av_wait_stop(struct mms_av_wait *w);
/* Around each call that may block: the deadline is now + timeout. */
void mms_av_wait_arm(struct mms_av_wait *w);
void mms_av_wait_disarm(struct mms_av_wait *w);

/* After a call that failed with `ret`, perhaps cut short: why, in the
 * caller's terms ("WHAT: interrupted", "WHAT: IDLE for N s", "WHAT:
 * FFmpeg's reason"). `idle` says what a timeout means ("no data", "the
 * receiver took no data"). Returns the code given to err. */
int mms_av_wait_error(struct mms_av_wait *w, int ret, const char *what, const char *idle,
                      struct mms_err *err);

#endif
