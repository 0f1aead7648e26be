#ifndef MMS_RECORD_H
#define MMS_RECORD_H

/*
 * Continuous recording of a pipeline's annotated video into a directory,
 * as consecutive segment files DIR/NAME-YYYYmmddTHHMMSSZ.mp4 (UTC, when
 * the segment opened; "-2", "-3", ... before the extension when that name
 * is taken; an existing file is never overwritten). A segment is written
 * through the descriptor that created its file (io/sink.h open_fd), never
 * reopened by name: a link someone puts in its place leads nowhere. Each
 * segment is a file
 * sink of its own (io/sink.h), with timestamps from 0 so it plays on its
 * own, starting on a keyframe: fed frames, each segment has a fresh
 * encoder; fed the packets of an encoder shared with other outputs
 * (p->encoder), the recorder asks that encoder for a keyframe at each
 * segment's end and starts the next segment there. Fragmented MP4 (or
 * Matroska clusters) of a second each: a killed recording loses at most
 * a second or two.
 *
 * Frames come from one thread (the recording's writer, pipeline/writer.h);
 * start, stop and status from any thread. A failure (disk full, file too large, the
 * directory gone or impossible to make) never reaches the writer: the
 * segment is finalised as far as it goes, the error is kept for the
 * status, and recording turns off, so the rest of the pipeline goes on.
 * It is tried again by itself (a new segment), 1 s after the failure and
 * then 2, 4, ... up to 30 s after each further one; 30 s of recording
 * without a failure start the series again. A start asked for tries at
 * once, a stop ends the retries. Only a start, or the retry
 * of a start that could not make it, makes a missing directory: one that
 * vanishes while recording (an unmounted disk) is not made again on
 * whatever lies beneath.
 */

#include <stdint.h>

#include <libavcodec/packet.h>
#include <libavutil/frame.h>

#include "core/error.h"
#include "io/sink.h"

struct mms_record_status {
    int enabled;        /* a record directory is configured */
    int recording;      /* on: a segment is open or opens with the next frame */
    int64_t segments;   /* segments opened so far */
    int64_t errors;     /* failures so far */
    int64_t frames;     /* frames written, all segments */
    int64_t bytes;      /* bytes of the finished and the open segments, as written (the
                           files' sizes; never read from the file system) */
    int retrying;       /* off after a failure, to be tried again by itself */
    int64_t retry_in_ms; /* retrying: the next attempt is due in this long (0: with the next
                            frame) */
    char file[1024];    /* the open segment, "" if none */
    char error[256];    /* the last failure, "" if none or cleared by a successful restart */
};

#define MMS_RECORD_NAME_MAX 64

/* 1 when `name` may start recording file names: 1 to MMS_RECORD_NAME_MAX
 * letters, digits, '-', '_' or '.' (what mmsd allows in a pipeline name). */
int mms_record_name_valid(const char *name);

struct mms_recorder;

/* Checks the settings and makes `dir` when it is missing (parents too, as
 * mkdir -p; mode 0750); opens no file yet (the first frame does).
 * `format` is "mp4" or "mkv"; `name` (letters, digits, '-', '_', '.';
 * NULL: "mms") starts every file name; frames will have p's size and pts
 * in p->time_base. With p->encoder (which must outlive the recorder), it
 * takes that encoder's packets (mms_recorder_write_packet) instead. Recording is on, unless the directory cannot be made
 * or written: then the recorder starts as after a failure (the reason in
 * the status, recording off, retrying), and its retry or a start makes
 * the directory again. */
int mms_recorder_create(const char *dir, const char *name, int segment_seconds,
                        const char *format, const struct mms_sink_params *p,
                        struct mms_recorder **out, struct mms_err *err);

/* Before the first write: the wait before an automatic retry after a
 * failure, doubling up to max_ms (default 1000, 30000); min_ms 0: no
 * automatic retry, only a start tries again. */
void mms_recorder_set_retry(struct mms_recorder *r, unsigned min_ms, unsigned max_ms);

/* Renames the files of segments opened from now on; -EINVAL (err set) for
 * a name that could not be a file name. */
int mms_recorder_set_name(struct mms_recorder *r, const char *name, struct mms_err *err);

enum mms_record_event {
    MMS_RECORD_OPENED, /* a segment: file */
    MMS_RECORD_CLOSED, /* it is finalised: file */
    MMS_RECORD_FAILED, /* recording stopped: reason, file ("" if none was open) */
};
typedef void (*mms_record_event_fn)(void *opaque, enum mms_record_event ev, const char *file,
                                    const char *reason);

/* Before the first write: fn hears of each segment and failure as it
 * happens, on the thread that writes (or closes) the recorder; the strings
 * are borrowed. A failure found by mms_recorder_create is only in the
 * status. NULL: none. */
void mms_recorder_set_events(struct mms_recorder *r, mms_record_event_fn fn, void *opaque);

/* The writer thread only. Opens, rotates or closes segments as needed and
 * writes `f` (borrowed; pts in the time base given at creation). 1 when
 * it went into a segment; 0 when it did not: recording off, waiting for
 * a retry, or a failure, which the status says. */
int mms_recorder_write(struct mms_recorder *r, const AVFrame *f, const struct mms_frame_meta *m);

/* The same, for a recorder made on an encoder: one of its packets
 * (borrowed). A segment opens on a keyframe (one is asked for when
 * needed; packets before it are not recorded) and ends at the first
 * keyframe at or after its length. */
int mms_recorder_write_packet(struct mms_recorder *r, const AVPacket *pkt);

/* Any thread: turns recording on or off from the next frame on (off
 * closes and finalises the open segment; on after a failure tries again).
 * -EPIPE once the recorder is closed; a start -EIO once it has ended
 * (mms_recorder_end). */
int mms_recorder_request(struct mms_recorder *r, int on);

/* The writer thread only: what feeds the recorder (its shared encoder)
 * has failed for good. The open segment is finalised at once, `reason`
 * becomes the status's error, and recording is off with no retry; from
 * now on a start is refused with -EIO and a stop does nothing. */
void mms_recorder_end(struct mms_recorder *r, const char *reason);

/* Any thread. */
void mms_recorder_status(struct mms_recorder *r, struct mms_record_status *st);

/* After the last write (the writer thread or, once it is joined, any):
 * finalises the open segment and ends recording for good. The status stays
 * readable until mms_recorder_free. Calling it again does nothing. */
void mms_recorder_close(struct mms_recorder *r);

/* Closes if needed and frees; NULL is fine. */
void mms_recorder_free(struct mms_recorder *r);

#endif
