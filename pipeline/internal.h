#ifndef MMS_PIPELINE_INTERNAL_H
#define MMS_PIPELINE_INTERNAL_H

/*
 * What the pipeline's two files share: pipeline.c holds the stages (decode,
 * infer, compose) and the pipeline's life; outputs.c opens the outputs, the
 * encoders they share and the recording, sets each writer's policy (the
 * live/offline choice of what an output keeps), and turns what the writers
 * and the recorder report into pipeline events. Nothing outside pipeline/
 * includes this.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>


#include "core/mask.h"
#include "core/net.h"
#include "core/smooth.h"
#include "io/source.h"
#include "pipeline/pipeline.h"
#include "pipeline/preprocess.h"
#include "pipeline/queue.h"
#include "pipeline/writer.h"

#define NITEMS 8      /* frames in flight: queues + one per thread + spare */
#define QUEUE_CAP 3
#define NJOBS 3       /* live: one filling, one in the mailbox, one inferring */
#define NMASKS (NITEMS + 4)
/* Offline, up to this many networks run side by side on alternate frames. */
#define MAX_NETS 4
/* At the end, how long a network output may take to send what it holds
 * before it is cut off: a receiver that stopped reading must not hold up a
 * stop. */
#define DRAIN_GRACE_MS 1000

/* A mask at the frame size, shared by every frame that shows it. */
struct mask {
    uint8_t *data;
    atomic_int refs;
    int64_t pts;     /* of the frame it was computed on */
    int gen;         /* source connection it belongs to */
    double infer_ms;
    struct mms_mask_stats stats; /* --meta's tool_fraction and bbox */
};

/* What an output's or encoder's writer tells the owner through. */
struct out_ref {
    struct mms_pipeline *p;
    int index, encoder;
    char name[256];
};

/* The network's view of one frame. */
struct job {
    float *input;    /* the network's input, 3 x net_h x net_w */
    int64_t pts;
    int gen;
    int skip;        /* offline --every: reuse the previous mask */
    double pre_ms;
    struct item *item; /* offline: the frame it belongs to */
};

/* Offline with several networks: where a frame's inference stands. */
enum net_state { NET_PENDING, NET_DONE, NET_FAILED };

struct item {
    AVFrame *frame;
    struct job job;
    float *logits;   /* several networks: this frame's, as its network left them */
    enum net_state net_state; /* under net_lock */
    struct mask *mask;
    int made;        /* offline: mask is this frame's own, not one reused */
    AVRational tb;
    int gen;
    double t_start;
    double ms[MMS_STAGE_COUNT];
};

/* An offline network worker's own network. */
struct net_worker {
    struct mms_pipeline *p;
    struct mms_net *net;
};

struct mms_pipeline {
    struct mms_pipeline_opts o;
    struct mms_net *net; /* the network, or the first worker's */
    /* Offline on several cores, one single-threaded network per core
     * (up to MAX_NETS), each on frames of its own: no barrier waits
     * for a thread that decoding or encoding preempted. Results go on
     * in frame order. nworkers 0: the one network on the infer thread. */
    struct net_worker workers[MAX_NETS];
    int nworkers;
    struct mms_queue *to_net;
    pthread_mutex_t net_lock;
    pthread_cond_t net_done;
    struct mms_source *src;
    struct mms_source_info info; /* of the first connection: the output format */
    /* Every output on its own writer: the sinks, the window, the recording. */
    struct mms_writer *writers[MMS_PIPELINE_MAX_OUTPUTS];
    atomic_int writer_abort[MMS_PIPELINE_MAX_OUTPUTS]; /* read by a sink's interrupt */
    int nwriters;
    int paced; /* an output shows frames as they come: offline, keep the source's rate */
    int writers_started;
    /* One writer per distinct encoding; the outputs that use it are its
     * members and take its packets, not frames. */
    struct mms_writer *encoders[MMS_PIPELINE_MAX_OUTPUTS];
    int nencoders, encoders_started;
    struct out_ref out_refs[MMS_PIPELINE_MAX_OUTPUTS], enc_refs[MMS_PIPELINE_MAX_OUTPUTS];
    int member[MMS_PIPELINE_MAX_OUTPUTS]; /* writers[i] takes an encoder's packets */
    int live;
    struct mms_stats stats;

    struct item items[NITEMS];
    struct job jobs[NJOBS];
    struct mask masks[NMASKS];
    pthread_mutex_t mask_lock;
    struct mask *latest;          /* live: the newest mask */
    struct mms_queue *free_items, *free_jobs, *to_infer, *to_compose;
    struct mms_preprocess pre; /* the decode thread's */

    pthread_t threads[3 + MAX_NETS];
    int started;
    atomic_int stop, paused, signal, gen;
    struct mms_pipeline_live settings; /* the runtime options, as the threads read them */
    pthread_mutex_t pause_lock; /* a pause and its requests to the outputs, in order */
    struct mms_smooth *smooth; /* the infer thread's alone */
    int smooth_gen;            /* the source connection it has seen */
    atomic_llong decoded, inferred, dropped, skipped, written, reconnects;
    atomic_llong inference_errors;
    atomic_int inference_failing; /* the latest inference failed */
    atomic_int inject_failures;   /* testing.h */
    atomic_int inject_thread;     /* testing.h: the thread start fails to make, + 1 */
    /* A start failed: no hook fires from then on, though threads it had
     * made wind down through the compose thread's end. */
    atomic_int hooks_off;
    atomic_int finished;
    double fps;
    pthread_mutex_t fps_lock;
    FILE *meta;
    pthread_mutex_t err_lock;
    char infer_err[512]; /* the last inference failure, under err_lock */
    int thread_rc;
    AVFrame *no_signal;
    struct mms_recorder *rec; /* NULL without record_dir */
    struct mms_pipeline_hooks hooks;
    int window_close; /* enum mms_window_close; fixed once started */
    /* The source's count is the decode thread's plain variable and starts
     * again with each connection: this copy is what other threads read. */
    atomic_llong decode_errors;
    int64_t decode_errors_before; /* decode thread: of closed connections */
};

/* outputs.c */

/* Calls the event hook, if any, from the calling thread. */
/* Whether the hook `fn` (a member of p->hooks) may be called now. */
#define PIPE_HOOK(p, fn) ((p)->hooks.fn && !atomic_load(&(p)->hooks_off))

void pipe_emit(struct mms_pipeline *p, enum mms_pipeline_event_type type, const char *reason,
               int64_t count);
/* on: 1 pause, 0 resume, -1 toggle. */
void pipe_set_paused(struct mms_pipeline *p, int on);
/* Every output, the window and the recording, each on its writer, and the
 * encoders they share; none started. */
int pipe_open_outputs(struct mms_pipeline *p, struct mms_err *err);

#endif
