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
 */

#include <stdint.h>

#include <libavcodec/packet.h>
#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "core/error.h"
#include "io/encoder.h"

/* What the window reports back to the pipeline. */
enum mms_ui_event {
    MMS_UI_QUIT,         /* q, Esc, window closed */
    MMS_UI_PAUSE,        /* space: toggles */
    MMS_UI_NEXT_STYLE,   /* o: cycles the overlay style */
};

struct mms_sink_params {
    int width, height;
    AVRational time_base;  /* of the pts given to write() */
    AVRational frame_rate; /* nominal; {0,1} when unknown (25 is assumed) */
    int live;              /* low-latency encoding, no B-frames */
    const char *title;     /* window title */
    void (*ui_event)(void *opaque, enum mms_ui_event ev);
    void *ui_opaque;
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
    int (*open)(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                struct mms_err *err);
    int (*write)(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                 struct mms_err *err);
    /* Opened on params->encoder: one of its packets (borrowed), in its
     * time base. NULL: the driver cannot share an encoder. */
    int (*write_packet)(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err);
    int (*close)(struct mms_sink *s, struct mms_err *err);
};

struct mms_sink {
    const struct mms_sink_driver *driver;
    void *priv; /* driver->priv_size zeroed bytes */
    char *url;
};

extern const struct mms_sink_driver mms_sink_file;   /* .mp4 (fragmented), .mkv, .ts */
extern const struct mms_sink_driver mms_sink_stream; /* udp:// tcp:// srt:// rtmp:// rtsp:// */
extern const struct mms_sink_driver mms_sink_null;   /* "null" */

/* The driver for a URL among file, stream and null; NULL if none takes it. */
const struct mms_sink_driver *mms_sink_find(const char *url);

/* Opens `url` with `driver` (NULL: mms_sink_find). */
int mms_sink_open(const struct mms_sink_driver *driver, const char *url,
                  const struct mms_sink_params *p, struct mms_sink **out,
                  struct mms_err *err);
int mms_sink_write(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                   struct mms_err *err);
int mms_sink_write_packet(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err);
/* The encoding `url` would get from `driver` (NULL: mms_sink_find) with
 * `p`: 1 with *s set, 0 when it does not encode. */
int mms_sink_encoding(const struct mms_sink_driver *driver, const char *url,
                      const struct mms_sink_params *p, struct mms_enc_settings *s);
/* Finalises (trailer, flush) and frees the sink; NULL is fine. */
int mms_sink_close(struct mms_sink *s, struct mms_err *err);

#endif
