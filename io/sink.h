#ifndef MMS_SINK_H
#define MMS_SINK_H

/*
 * Where annotated frames go. Each kind of output is a driver, a const
 * table like mpv's vo_driver: a recorded file, a network stream, nothing
 * (benchmarks), the SDL2 window (overlay/window.c). A new output is one
 * file and one table entry.
 *
 * Frames given to write() are YUV420P at the size given to open(), with
 * pts in params->time_base; the sink does not keep them after returning.
 * A driver that encodes (file, stream) says with what settings
 * (encoding()); opened on an encoder shared with other outputs
 * (params->encoder), it takes that encoder's packets (write_packet())
 * instead of frames and only muxes them.
 * After a failed open(), neither write() nor close() is called; close()
 * always releases everything open() took, even after a failed write().
 *
 * Whatever else a sink does is asked through control(), as mpv asks its
 * vo_driver: pause, redraw, and the events its user caused (a window
 * closed, a key pressed). The caller forwards each request to every sink
 * and reacts to the events, whatever the sink; a sink that does not
 * handle a request says -ENOTSUP. control() runs on the thread that
 * writes, between writes, whether or not frames are coming.
 */

#include <stdatomic.h>
#include <stdint.h>

#include <libavcodec/packet.h>
#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "core/error.h"
#include "io/encoder.h"

/* Requests to control(), with what `data` is for each. */
enum mms_sink_ctrl {
    /* Keep showing the frame shown now: frames written meanwhile are
     * taken and not shown. Again while paused: nothing changes. NULL. */
    MMS_SINK_CTRL_PAUSE,
    /* Show each frame written again. Not paused: nothing changes. NULL. */
    MMS_SINK_CTRL_RESUME,
    /* Show the frame shown last again (after something drew over it), or
     * black before the first. NULL. */
    MMS_SINK_CTRL_REDRAW,
    /* unsigned *: set to the MMS_SINK_EVENT_* bits of what happened since
     * the last check, 0 for nothing; each event is reported once. */
    MMS_SINK_CTRL_CHECK_EVENTS,
};

/* What a sink's user did, from MMS_SINK_CTRL_CHECK_EVENTS. */
enum mms_sink_event {
    MMS_SINK_EVENT_CLOSED = 1 << 0,     /* closed by the user: q, Esc, the close button */
    MMS_SINK_EVENT_PAUSE = 1 << 1,      /* pause toggled (space); twice is no change */
    MMS_SINK_EVENT_NEXT_STYLE = 1 << 2, /* the next overlay style asked for (o) */
};

struct mms_sink_params {
    int width, height;
    AVRational time_base;  /* of the pts given to write() */
    AVRational frame_rate; /* nominal; {0,1} when unknown (25 is assumed) */
    int live;              /* low-latency encoding, no B-frames */
    const char *preset;    /* x264's, for an offline encoding; NULL: veryfast */
    const char *title;     /* window title */
    /* Polled while a network output waits on its peer (opening, writing,
     * finishing): nonzero gives up at once, as the network timeout would.
     * Any thread may set what it reads; files never wait on it. NULL:
     * only the timeout ends a wait. */
    int (*interrupt)(void *opaque);
    void *interrupt_opaque;
    /* Shared by this output and others with the same encoding: the sink
     * muxes its packets (write_packet) and never encodes. NULL: the sink
     * encodes the frames given to write() itself. Must outlive the sink. */
    struct mms_encoder *encoder;
    /* A file opened on a caller's descriptor (open_fd): kept, by the
     * thread that writes, at how far its writes reach, which is the size
     * of a new file (bytes written again after a seek back count once).
     * Another thread may read it where asking the file system could hang
     * (a dead NFS mount). NULL, or a sink opened by URL: not counted. */
    atomic_llong *written;
};

/* Per-frame numbers a sink may show (the window's HUD). */
struct mms_frame_meta {
    double fps;          /* frames written per second, recent */
    double infer_ms;     /* network time of the mask shown */
    double mask_age_ms;  /* this frame's time minus its mask's frame time */
    int no_signal;       /* the source is down: this is a placeholder frame */
};

struct mms_sink;

struct mms_sink_driver {
    const char *name;
    /* How well the driver takes `url`: 0 not at all, higher wins. NULL:
     * never chosen by URL (the window is asked for by name). */
    int (*probe)(const char *url);
    /* The encoding `url` would get with `p`: 1 with *s set, 0 for a driver
     * that does not encode (NULL: none does). Equal settings may share one
     * encoder. */
    int (*encoding)(const char *url, const struct mms_sink_params *p,
                    struct mms_enc_settings *s);
    size_t priv_size;
    /* After a failed write the pipeline opens it again, with backoff: a
     * network peer comes back, while a file opened again would be
     * truncated. */
    int reopen;
    /* Shows each frame as it comes (a screen): it is given the latest
     * frame, never a backlog, and offline the frames are paced to the
     * source's rate so that they can be watched. */
    int realtime;
    int (*open)(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                struct mms_err *err);
    /* Like open(), but writes through `fd`, a file the caller created and
     * opened for writing, and never opens a path: whatever is put under
     * the file's name afterwards (a symlink to a file elsewhere) is never
     * followed. `url` names it in messages and picks the container by its
     * extension. On success the sink owns fd (close() closes it); on
     * failure the caller still does. NULL: the driver opens only by URL. */
    int (*open_fd)(struct mms_sink *s, const char *url, int fd, const struct mms_sink_params *p,
                   struct mms_err *err);
    int (*write)(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                 struct mms_err *err);
    /* Opened on params->encoder: one of its packets (borrowed), in its
     * time base. NULL: the driver cannot share an encoder. */
    int (*write_packet)(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err);
    /* One request (enum mms_sink_ctrl) with its data: 0, -ENOTSUP for a
     * request it does not handle, or another negative errno with err set,
     * which is a failure like a failed write. NULL: it handles none. */
    int (*control)(struct mms_sink *s, int request, void *data, struct mms_err *err);
    int (*close)(struct mms_sink *s, struct mms_err *err);
};

struct mms_sink {
    const struct mms_sink_driver *driver;
    void *priv; /* driver->priv_size zeroed bytes */
    char *url;  /* for messages: secrets hidden (core/redact.h) */
};

extern const struct mms_sink_driver mms_sink_file;   /* .mp4 (fragmented), .mkv, .ts; open_fd */
extern const struct mms_sink_driver mms_sink_stream; /* udp:// tcp:// srt:// rtmp:// rtsp:// */
extern const struct mms_sink_driver mms_sink_null;   /* "null" */

/* The driver for a URL among file, stream and null; NULL if none takes it. */
const struct mms_sink_driver *mms_sink_find(const char *url);

/* Opens `url` with `driver` (NULL: mms_sink_find). */
int mms_sink_open(const struct mms_sink_driver *driver, const char *url,
                  const struct mms_sink_params *p, struct mms_sink **out,
                  struct mms_err *err);
/* Opens `driver` on the file behind `fd` (driver->open_fd: the sink owns
 * fd on success only). AVERROR(EINVAL) for a driver that cannot. */
int mms_sink_open_fd(const struct mms_sink_driver *driver, const char *url, int fd,
                     const struct mms_sink_params *p, struct mms_sink **out,
                     struct mms_err *err);
int mms_sink_write(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                   struct mms_err *err);
int mms_sink_write_packet(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err);
/* driver->control, or -ENOTSUP for a driver without one. */
int mms_sink_control(struct mms_sink *s, int request, void *data, struct mms_err *err);
/* The encoding `url` would get from `driver` (NULL: mms_sink_find) with
 * `p`: 1 with *s set, 0 when it does not encode. */
int mms_sink_encoding(const struct mms_sink_driver *driver, const char *url,
                      const struct mms_sink_params *p, struct mms_enc_settings *s);
/* Finalises (trailer, flush) and frees the sink; NULL is fine. */
int mms_sink_close(struct mms_sink *s, struct mms_err *err);

#endif
