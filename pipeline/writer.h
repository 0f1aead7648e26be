#ifndef MMS_WRITER_H
#define MMS_WRITER_H

/*
 * One output behind its own queue and thread, so that the slowest output
 * only ever delays itself: the compose thread hands each frame on by
 * reference (mms_writer_send) and goes back to drawing. A writer writes
 * either a sink (a file, a stream, the window) or the recorder.
 *
 * Outputs with the same encoding share one encoder (io/encoder.h), which
 * is a writer too: it takes the frames, encodes each once and hands a
 * reference to every packet to each of its members, the writers of those
 * outputs, which only mux. A member keeps its own queue, thread, counters
 * and mode, so a stalled stream still drops only its own packets while the
 * recording beside it on the same encoder goes on. A member that lost
 * packets (its queue was full, it was closed) resumes at the next
 * keyframe; one reopened asks the encoder for a keyframe at once. A member
 * shows its encoder's drops in its own, and its encoder's trouble as its
 * own state.
 *
 * How a writer keeps the frames it has not written yet is its mode:
 *   LATEST  live outputs (streams, the window): a mailbox of one; a new
 *           frame replaces the unsent one, which counts as dropped.
 *   DROP    files and the recording in live mode: a bounded queue of every
 *           frame; a frame that finds it full is dropped and counted.
 *   BLOCK   offline: a bounded queue whose sender waits for room, so every
 *           frame reaches the output (back-pressure, nothing dropped).
 *
 * An output that has spent MMS_WRITER_STALL_MS in one write is stalled: it
 * is reported down (mms_writer_status) and drops only its own frames until
 * that write returns. A write that fails closes the sink: a network sink,
 * given a mms_reopen, is opened again (off the writer thread, with
 * backoff) and is up again once it is; any other stays closed. A network
 * sink may also be first opened that way, so that a receiver not there
 * yet is an output down, not a pipeline that cannot start. The
 * recorder never fails here: its own status says why it stopped.
 *
 * Requests to the sink (io/sink.h control(): pause, resume, redraw) are
 * handed to the writer thread, which gives them to the sink before its
 * next write, or within a poll period when no frame comes. A sink that
 * says -ENOTSUP simply does not do it; any other failure is counted and
 * closes the sink, as a failed write does. After each write, and on each
 * poll, the writer thread asks the sink for its events (a window closed,
 * a key pressed) and passes them on; the owner may have it close the sink
 * its user closed, for good.
 */

#include <stdatomic.h>
#include <stdint.h>

#include <libavutil/frame.h>

#include "core/error.h"
#include "io/encoder.h"
#include "io/sink.h"
#include "pipeline/record.h"
#include "pipeline/reopen.h"

/* A write this long means the output has stopped taking frames (a
 * receiver that no longer reads, a hung disk): well above any encode, well
 * below the 5 s a network peer is given before the write fails. */
#define MMS_WRITER_STALL_MS 1000.0

enum mms_writer_mode { MMS_WRITER_LATEST, MMS_WRITER_DROP, MMS_WRITER_BLOCK };

enum mms_writer_state {
    MMS_WRITER_UP,
    MMS_WRITER_STALLED, /* in one write for over MMS_WRITER_STALL_MS */
    MMS_WRITER_FAILED,  /* closed after a failed write (a network one is being reopened) */
    MMS_WRITER_CLOSED,  /* closed for good by its user (the window), as on_events asked:
                           no failure, but it takes no frame again */
};

struct mms_writer_opts {
    const char *name;  /* in messages and counters: the URL, "window", "recording" */
    enum mms_writer_mode mode;
    int capacity;      /* frames it may hold; LATEST holds 1 whatever this says */
    /* Set by mms_writers_drain() when the writer is still busy at its
     * deadline; the sink's interrupt callback reads it. NULL: the writer is
     * always waited for (files, the window, the recorder). */
    atomic_int *abort;
    /* While set, a BLOCK send waits no longer for room and the frame is
     * dropped: a stopping pipeline does not wait on a stalled output.
     * NULL: it always waits. */
    atomic_int *stop;
    /* Each change of state, with its reason ("" when up), called under the
     * writer's lock so that they come in order: from the writer thread, or
     * from a sender or status reader that noticed a stall. Must not block
     * nor call into the writer. NULL: none. */
    void (*event)(void *opaque, enum mms_writer_state state, const char *reason);
    void *event_opaque;
    /* Writer thread: the MMS_SINK_EVENT_* bits its sink reported. Returns
     * those the writer acts on itself: MMS_SINK_EVENT_CLOSED closes the
     * sink for good (state CLOSED; what it is sent from then on is
     * dropped), for an owner that goes on without the output its user
     * closed. NULL: the sink is never asked for events. */
    unsigned (*on_events)(void *opaque, unsigned events);
    void *opaque;
    /* The writer thread's name ("mms-write" when NULL) and whether it
     * steps back behind the network (pipeline/thread.h). */
    const char *thread_name;
    int step_back;
};

struct mms_writer_status {
    char name[256];
    enum mms_writer_state state;
    int64_t written;   /* frames the output took */
    int64_t dropped;   /* frames it did not: replaced, queue full, or it was closed */
    int64_t errors;    /* failed writes (each closed the sink), and a failed first open */
    int64_t reopens;   /* network sinks opened again after one */
    int64_t stalls;    /* times it was found stalled */
    int paused;        /* its sink took MMS_SINK_CTRL_PAUSE and shows a frozen frame */
    int controls_pending; /* requests not yet given to the sink */
    char reason[512];  /* why it is or last was down; "" if it never was */
    double reason_ms;  /* when that reason was set (mms_now_ms); 0 if never */
};

struct mms_writer;

/* A writer for sink `s` (and `r`, to reopen it after a failure; NULL for
 * none): on success the writer owns both. Starts no thread yet. With `s`
 * NULL, `r` opens the sink, its first attempt as soon as the writer runs:
 * the output is up until that attempt fails, then down and retried as
 * after a failed write; frames that come before it is open are dropped,
 * except in BLOCK mode, which waits for the first attempt to end.
 * -EINVAL when both are NULL. */
int mms_writer_create_sink(struct mms_sink *s, struct mms_reopen *r,
                           const struct mms_writer_opts *o, struct mms_writer **out);
/* A writer for `rec`, which stays the caller's; the writer thread
 * finalises it (mms_recorder_close) when it ends. */
int mms_writer_create_recorder(struct mms_recorder *rec, const struct mms_writer_opts *o,
                               struct mms_writer **out);

/* A writer that encodes with `enc` (then its own, freed with it) for its
 * members. Frames go to this writer (mms_writer_send), never to the
 * members. At the end the encoder is flushed into the members, whose
 * queues then end. An encoder that fails fails for good; each member,
 * once it has written what came before, finalises its output and ends:
 * a sink is closed, down with the encoder's reason and not reopened; a
 * recorder ends (mms_recorder_end), so its status says why. */
int mms_writer_create_encoder(struct mms_encoder *enc, const struct mms_writer_opts *o,
                              struct mms_writer **out);
/* Before either starts: `member`, made with mms_writer_create_sink on a
 * sink opened on the encoder, or mms_writer_create_recorder on a recorder
 * made with it, takes the encoder's packets. The encoder's writer is
 * closed (mms_writer_close) before its members, whose queues its thread
 * ends; a member is freed before its encoder's writer. Its mode says what a packet that finds no room
 * does: BLOCK waits, any other drops it. 0 or -ENOMEM. */
int mms_writer_add_member(struct mms_writer *encoder, struct mms_writer *member);
/* The encoder of a writer made with mms_writer_create_encoder. */
struct mms_encoder *mms_writer_encoder(struct mms_writer *w);

/* Starts the writer thread: 0 or a negative errno. */
int mms_writer_start(struct mms_writer *w);

/* One sending thread: hands `f` on as a reference (the caller must not
 * draw on it afterwards) with a copy of `m`. BLOCK waits for room; the
 * others never wait. Also notices a stall. */
void mms_writer_send(struct mms_writer *w, const AVFrame *f, const struct mms_frame_meta *m);

/* Any thread: asks for MMS_SINK_CTRL_PAUSE, _RESUME or _REDRAW (a pause
 * replaces a resume not yet given, and the other way round); 0, or -EINVAL
 * for another request. */
int mms_writer_control(struct mms_writer *w, int request);

/* Any thread. */
void mms_writer_status(struct mms_writer *w, struct mms_writer_status *st);

/* After the last send: every writer writes what it holds and its thread
 * ends. Those still busy after grace_ms are aborted (their `abort` set, so
 * a network sink gives up at once); the others are waited for as long as
 * they take. Returns once every thread is joined. Encoders and their
 * members may be given together, in any order. */
void mms_writers_drain(struct mms_writer *const *ws, int n, double grace_ms);

/* Joins the thread if still running (draining first), then finalises and
 * closes the sink (an aborted one gives up at once) and lets go of an
 * attempt to reopen it. The status stays readable. Returns 0 or the sink's
 * close error (err set). Calling it again does nothing. */
int mms_writer_close(struct mms_writer *w, struct mms_err *err);

/* Closes if needed and frees; NULL is fine. */
void mms_writer_free(struct mms_writer *w);

#endif
