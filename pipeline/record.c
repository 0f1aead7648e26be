#include "pipeline/record.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/mathematics.h>

#include "core/backoff.h"
#include "pipeline/stats.h"

#define DEFAULT_FPS 25
/* A record directory the recorder makes itself: owner and group, as
 * systemd's StateDirectory= makes /var/lib/mmsd. */
#define DIR_MODE 0750
/* Suffixes tried when a segment's name is taken: more would mean a
 * directory full of files from one second, which is a bug, not a clash. */
#define MAX_SUFFIX 1000
/* After a failure, recording is tried again this long after it, then
 * twice as long after each further one, up to the most; recording for as
 * long as the most without a failure starts the series again. */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

struct mms_recorder {
    char *dir;
    const char *ext;
    struct mms_sink_params params;
    int64_t seg_ticks;   /* segment length in params.time_base */
    int64_t frame_dur;   /* for frames without pts */

    /* The writer thread's own. */
    struct mms_sink *sink;
    int make_dir;        /* a start was asked for: make the directory first */
    AVFrame *ref;        /* the caller's frame with the segment's pts */
    AVPacket *pkt;       /* the same for a packet */
    int64_t first_pts;   /* of the open segment */
    int64_t last_pts;    /* AV_NOPTS_VALUE before the first frame */
    char path[1024];     /* of the open segment */
    mms_record_event_fn event;
    void *event_opaque;
    struct mms_backoff backoff; /* between automatic retries; min 0: none */
    uint64_t retry_max_ms;
    double good_since_ms; /* recording without a failure since; 0: not recording */

    /* Requests: stored, then counted, so the writer that sees a new count
     * reads a value at least that new. */
    atomic_int want;
    atomic_uint seq;
    atomic_int closed;
    atomic_int ended;    /* mms_recorder_end: nothing will feed it again */
    atomic_llong frames;
    /* The open segment's bytes, kept by its sink as they are written:
     * the status never asks the file system, which a hung disk (NFS)
     * would hang, and with it the thread asking. */
    atomic_llong seg_bytes;

    pthread_mutex_t lock; /* what the status shows, and the name */
    char name[MMS_RECORD_NAME_MAX + 1];
    int on;              /* in effect: written by the writer only */
    unsigned seen;       /* the request count `on` reflects */
    int64_t segments, errors, bytes_done;
    double retry_ms;     /* when the next automatic attempt is due; 0: none */
    char file[1024];
    char error[256];
};

int mms_record_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!n || n > MMS_RECORD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        if (!ok)
            return 0;
    }
    return 1;
}

/* The reason comes last in a message ("PATH: cannot write: No space left
 * on device"): a message too long for the status loses its start. */
static void keep_tail(char *dst, size_t len, const char *msg)
{
    size_t n = strlen(msg);
    if (n < len) {
        memcpy(dst, msg, n + 1);
        return;
    }
    memcpy(dst, "...", 3);
    memcpy(dst + 3, msg + n - (len - 4), len - 3);
}

static void emit(struct mms_recorder *r, enum mms_record_event ev, const char *reason)
{
    if (r->event)
        r->event(r->event_opaque, ev, r->path, reason);
}

/* Records a failure and turns recording off until the retry the backoff
 * says (none when retries are off, or when the failure was that of a stop
 * finishing its segment: a stop for privacy must not be undone by a retry
 * once the disk has room again); what was written stays. */
static void fail(struct mms_recorder *r, const char *msg)
{
    if (r->sink) {
        /* After a failed write the sink skips the trailer: the fragments
         * already on disk are what stays playable. */
        mms_sink_close(r->sink, NULL);
        r->sink = NULL;
    }
    uint64_t wait = mms_backoff_next(&r->backoff);
    r->good_since_ms = 0;
    pthread_mutex_lock(&r->lock);
    r->bytes_done += atomic_exchange(&r->seg_bytes, 0);
    r->errors++;
    r->on = 0;
    r->retry_ms = wait && atomic_load(&r->want) ? mms_now_ms() + (double)wait : 0;
    r->file[0] = 0;
    keep_tail(r->error, sizeof(r->error), msg);
    pthread_mutex_unlock(&r->lock);
    emit(r, MMS_RECORD_FAILED, msg);
    r->path[0] = 0;
}

static int finish_segment(struct mms_recorder *r)
{
    struct mms_err err;
    int rc = mms_sink_close(r->sink, &err);
    r->sink = NULL;
    if (rc < 0) {
        fail(r, err.msg);
        return rc;
    }
    pthread_mutex_lock(&r->lock);
    r->bytes_done += atomic_exchange(&r->seg_bytes, 0);
    r->file[0] = 0;
    pthread_mutex_unlock(&r->lock);
    emit(r, MMS_RECORD_CLOSED, "");
    r->path[0] = 0;
    return 0;
}

/* Claims a free name and returns the new file's descriptor, which the
 * segment is written through: O_EXCL, so a file that exists, ours or
 * anyone's, is never opened for writing, and no later open by name, so a
 * link swapped in under the name (by whoever else can write to the
 * directory) is never followed. O_NOFOLLOW says so even to a reader who
 * forgets that O_EXCL already refuses links. */
static int claim_path(struct mms_recorder *r, int *fd_out, struct mms_err *err)
{
    char name[MMS_RECORD_NAME_MAX + 1], stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    pthread_mutex_lock(&r->lock);
    memcpy(name, r->name, sizeof(name));
    pthread_mutex_unlock(&r->lock);
    for (int n = 1; n <= MAX_SUFFIX; n++) {
        char suffix[16] = "";
        /* '_' sorts after the '.' of the name without one, and four
         * digits keep 2..1000 in order: `ls` lists segments as recorded. */
        if (n > 1)
            snprintf(suffix, sizeof(suffix), "_%04d", n);
        int w = snprintf(r->path, sizeof(r->path), "%s/%s-%s%s%s", r->dir, name, stamp, suffix,
                         r->ext);
        if (w < 0 || (size_t)w >= sizeof(r->path)) {
            r->path[0] = 0;
            return mms_err_set(err, -ENAMETOOLONG, "%s: the recording path is too long",
                               r->dir);
        }
        int fd = open(r->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *fd_out = fd;
            return 0;
        }
        if (errno != EEXIST) {
            int e = errno;
            mms_err_set(err, -e, "%s: cannot create: %s", r->path, strerror(e));
            r->path[0] = 0;
            return -e;
        }
    }
    r->path[0] = 0;
    return mms_err_set(err, -EEXIST, "%s: %d files named %s-%s already", r->dir, MAX_SUFFIX,
                       name, stamp);
}

/* A segment that never opened: empty or a header at most, nothing to
 * play. Removed only while its name is still our file, not whatever was
 * put there since. */
static void discard(const char *path, int fd)
{
    struct stat mine, now;
    if (!fstat(fd, &mine) && !lstat(path, &now) && mine.st_dev == now.st_dev &&
        mine.st_ino == now.st_ino)
        unlink(path);
    close(fd);
}

/* mkdir -p: the missing parts of `dir`, each DIR_MODE, the last exactly
 * that whatever the umask. */
static int make_dirs(const char *dir, struct mms_err *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(path))
        return mms_err_set(err, -ENAMETOOLONG, "record directory %s: name too long", dir);
    memcpy(path, dir, n + 1);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = 0;
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i])
            continue;
        if (path[i - 1] == '/')
            continue; /* "a//b" */
        char c = path[i];
        path[i] = 0;
        int made = !mkdir(path, DIR_MODE);
        if (!made && errno != EEXIST) {
            int e = errno;
            if (!c)
                return mms_err_set(err, -e, "record directory %s: cannot create it: %s", dir,
                                   strerror(e));
            return mms_err_set(err, -e, "record directory %s: cannot create %s: %s", dir, path,
                               strerror(e));
        }
        if (made && !c && chmod(path, DIR_MODE)) {
            int e = errno;
            return mms_err_set(err, -e, "record directory %s: %s", dir, strerror(e));
        }
        path[i] = c;
    }
    return 0;
}

/* Makes the directory if it is missing, then checks it can take files. */
static int prepare_dir(const char *dir, struct mms_err *err)
{
    struct stat st;
    int rc;
    if (stat(dir, &st) && errno == ENOENT && (rc = make_dirs(dir, err)))
        return rc;
    if (stat(dir, &st))
        return mms_err_set(err, -errno, "record directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return mms_err_set(err, -ENOTDIR, "record directory %s: not a directory", dir);
    if (access(dir, W_OK | X_OK))
        return mms_err_set(err, -errno, "record directory %s: not writable: %s", dir,
                           strerror(errno));
    return 0;
}

static int open_segment(struct mms_recorder *r, int64_t pts)
{
    struct mms_err err;
    int rc = 0;
    /* Only on a start: a directory that vanishes while recording (a disk
     * unmounted) fails the next segment rather than being made again on
     * whatever lies beneath. */
    if (r->make_dir && (rc = prepare_dir(r->dir, &err)) < 0) {
        fail(r, err.msg);
        return rc;
    }
    r->make_dir = 0;
    int fd = -1;
    rc = claim_path(r, &fd, &err);
    if (!rc && (rc = mms_sink_open_fd(&mms_sink_file, r->path, fd, &r->params, &r->sink,
                                      &err)) < 0)
        discard(r->path, fd);
    if (rc < 0) {
        /* Discarded: what its header wrote is not there. */
        atomic_store(&r->seg_bytes, 0);
        r->path[0] = 0;
        fail(r, err.msg);
        return rc;
    }
    r->first_pts = pts;
    if (!r->good_since_ms)
        r->good_since_ms = mms_now_ms();
    pthread_mutex_lock(&r->lock);
    r->segments++;
    r->error[0] = 0;
    snprintf(r->file, sizeof(r->file), "%s", r->path);
    pthread_mutex_unlock(&r->lock);
    emit(r, MMS_RECORD_OPENED, "");
    return 0;
}

/* Takes in a start or stop asked for since the last frame; either ends
 * the wait for an automatic retry, and a start begins a new series. */
static void apply_request(struct mms_recorder *r)
{
    unsigned s = atomic_load(&r->seq);
    if (s == r->seen)
        return;
    int want = atomic_load(&r->want);
    pthread_mutex_lock(&r->lock);
    r->seen = s;
    r->on = want;
    r->retry_ms = 0;
    pthread_mutex_unlock(&r->lock);
    if (!want && r->sink)
        finish_segment(r);
    if (want && !r->sink) {
        r->make_dir = 1;
        mms_backoff_reset(&r->backoff);
    }
}

/* Off after a failure: on again once its retry is due. A failure while
 * the directory was being made leaves make_dir set, so the retry makes it
 * too; one later on (a disk unmounted) does not, as a start would not. */
static int retry_due(struct mms_recorder *r)
{
    if (r->on)
        return 1;
    double now = mms_now_ms();
    pthread_mutex_lock(&r->lock);
    int due = r->retry_ms > 0 && now >= r->retry_ms;
    if (due) {
        r->on = 1;
        r->retry_ms = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return due;
}

/* A written frame: as long as the longest wait without a failure means
 * the trouble is over, and the next one starts from the shortest. */
static void count_good(struct mms_recorder *r)
{
    if (r->good_since_ms && mms_now_ms() - r->good_since_ms >= (double)r->retry_max_ms) {
        mms_backoff_reset(&r->backoff);
        r->good_since_ms = mms_now_ms();
    }
    atomic_fetch_add(&r->frames, 1);
}

int mms_recorder_write(struct mms_recorder *r, const AVFrame *f, const struct mms_frame_meta *m)
{
    if (atomic_load(&r->closed) || atomic_load(&r->ended))
        return 0;
    apply_request(r);
    if (!retry_due(r))
        return 0;
    int64_t pts = f->pts;
    if (pts == AV_NOPTS_VALUE)
        pts = r->last_pts == AV_NOPTS_VALUE ? 0 : r->last_pts + r->frame_dur;
    /* A clock that goes back would stop the muxer: a new file starts its
     * own timeline instead. */
    if (r->sink && (pts - r->first_pts >= r->seg_ticks || pts <= r->last_pts) &&
        finish_segment(r) < 0)
        return 0;
    if (!r->sink && open_segment(r, pts) < 0)
        return 0;
    struct mms_err err;
    int rc = av_frame_ref(r->ref, f);
    if (rc < 0) {
        fail(r, "out of memory");
        return 0;
    }
    r->ref->pts = pts - r->first_pts;
    rc = mms_sink_write(r->sink, r->ref, m, &err);
    av_frame_unref(r->ref);
    if (rc < 0) {
        fail(r, err.msg);
        return 0;
    }
    r->last_pts = pts;
    count_good(r);
    return 1;
}

/* A shared encoder's packet (params.encoder): segments start on keyframes,
 * which the encoder is asked for, at each segment's end and whenever one
 * is needed to start. */
int mms_recorder_write_packet(struct mms_recorder *r, const AVPacket *pkt)
{
    if (atomic_load(&r->closed) || atomic_load(&r->ended))
        return 0;
    apply_request(r);
    if (!retry_due(r))
        return 0;
    struct mms_encoder *enc = r->params.encoder;
    int key = pkt->flags & AV_PKT_FLAG_KEY;
    if (r->sink && key && pkt->pts - r->first_pts >= r->seg_ticks && finish_segment(r) < 0)
        return 0;
    if (!r->sink) {
        if (!key) {
            /* Nothing before a keyframe could be decoded. */
            mms_encoder_key_at(enc, INT64_MIN);
            return 0;
        }
        if (open_segment(r, pkt->pts) < 0)
            return 0;
        mms_encoder_key_at(enc, pkt->pts + r->seg_ticks);
    }
    struct mms_err err;
    int rc = av_packet_ref(r->pkt, pkt);
    if (rc < 0) {
        fail(r, "out of memory");
        return 0;
    }
    r->pkt->pts -= r->first_pts;
    if (r->pkt->dts != AV_NOPTS_VALUE)
        r->pkt->dts -= r->first_pts;
    rc = mms_sink_write_packet(r->sink, r->pkt, &err);
    av_packet_unref(r->pkt);
    if (rc < 0) {
        fail(r, err.msg);
        return 0;
    }
    r->last_pts = pkt->pts;
    count_good(r);
    return 1;
}

int mms_recorder_request(struct mms_recorder *r, int on)
{
    pthread_mutex_lock(&r->lock);
    int closed = atomic_load(&r->closed);
    /* Ended, it is off for good: a stop changes nothing, a start cannot be. */
    int refused = closed ? -EPIPE : on && atomic_load(&r->ended) ? -EIO : 0;
    if (!refused && !atomic_load(&r->ended)) {
        atomic_store(&r->want, !!on);
        atomic_fetch_add(&r->seq, 1);
    }
    pthread_mutex_unlock(&r->lock);
    return refused;
}

void mms_recorder_end(struct mms_recorder *r, const char *reason)
{
    if (atomic_load(&r->closed) || atomic_load(&r->ended))
        return;
    /* A close that fails is reported by fail(); the end's reason follows. */
    if (r->sink)
        finish_segment(r);
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->ended, 1);
    r->on = 0;
    r->retry_ms = 0;
    r->errors++;
    r->file[0] = 0;
    keep_tail(r->error, sizeof(r->error), reason);
    pthread_mutex_unlock(&r->lock);
    emit(r, MMS_RECORD_FAILED, reason);
}

void mms_recorder_status(struct mms_recorder *r, struct mms_record_status *st)
{
    memset(st, 0, sizeof(*st));
    st->enabled = 1;
    pthread_mutex_lock(&r->lock);
    if (!atomic_load(&r->closed) && !atomic_load(&r->ended))
        st->recording = atomic_load(&r->seq) != r->seen ? atomic_load(&r->want) : r->on;
    st->segments = r->segments;
    st->errors = r->errors;
    /* A start or stop asked for and not yet taken in ends the wait. */
    if (!atomic_load(&r->closed) && atomic_load(&r->seq) == r->seen && r->retry_ms > 0) {
        double left = r->retry_ms - mms_now_ms();
        st->retrying = 1;
        st->retry_in_ms = left > 0 ? (int64_t)(left + 0.5) : 0;
    }
    /* Under the lock: a segment's bytes move to bytes_done under it. */
    st->bytes = r->bytes_done + atomic_load(&r->seg_bytes);
    snprintf(st->file, sizeof(st->file), "%s", r->file);
    snprintf(st->error, sizeof(st->error), "%s", r->error);
    pthread_mutex_unlock(&r->lock);
    st->frames = atomic_load(&r->frames);
}

int mms_recorder_set_name(struct mms_recorder *r, const char *name, struct mms_err *err)
{
    if (!mms_record_name_valid(name))
        return mms_err_set(err, -EINVAL, "recording name '%s': use 1 to %d letters, digits, "
                           "'-', '_' or '.'", name ? name : "", MMS_RECORD_NAME_MAX);
    pthread_mutex_lock(&r->lock);
    snprintf(r->name, sizeof(r->name), "%s", name);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int mms_recorder_create(const char *dir, const char *name, int segment_seconds,
                        const char *format, const struct mms_sink_params *p,
                        struct mms_recorder **out, struct mms_err *err)
{
    int rc;
    *out = NULL;
    const char *ext = !format ? NULL : !strcmp(format, "mp4") ? ".mp4"
                                     : !strcmp(format, "mkv") ? ".mkv" : NULL;
    if (!ext)
        return mms_err_set(err, -EINVAL, "record format '%s': expected mp4 or mkv",
                           format ? format : "");
    if (segment_seconds < 1)
        return mms_err_set(err, -EINVAL, "segment length %d s: must be at least 1",
                           segment_seconds);
    if (p->width < 1 || p->height < 1 || p->time_base.num < 1 || p->time_base.den < 1)
        return mms_err_set(err, -EINVAL, "recording: bad frame size %dx%d or time base %d/%d",
                           p->width, p->height, p->time_base.num, p->time_base.den);
    if (!dir || !*dir)
        return mms_err_set(err, -EINVAL, "no record directory");
    /* Segment lengths are counted in the frames' time base. */
    if (p->encoder && av_cmp_q(mms_encoder_time_base(p->encoder), p->time_base))
        return mms_err_set(err, -EINVAL, "recording: the encoder's time base is not the "
                           "frames'");
    struct mms_recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return mms_err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    if ((rc = mms_recorder_set_name(r, name ? name : "mms", err)))
        goto fail;
    if (!(r->dir = strdup(dir)) || !(r->ref = av_frame_alloc()) ||
        !(r->pkt = av_packet_alloc())) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    r->ext = ext;
    r->params = *p;
    r->params.written = &r->seg_bytes;
    /* The window's callbacks mean nothing to a file, which is finished
     * whatever happens. */
    r->params.title = NULL;
    r->params.interrupt = NULL;
    r->params.interrupt_opaque = NULL;
    r->seg_ticks = av_rescale_q(segment_seconds, (AVRational){1, 1}, p->time_base);
    AVRational fr = p->frame_rate.num > 0 && p->frame_rate.den > 0 ? p->frame_rate
                                                                  : (AVRational){DEFAULT_FPS, 1};
    r->frame_dur = av_rescale_q(1, av_inv_q(fr), p->time_base);
    if (r->frame_dur < 1)
        r->frame_dur = 1;
    r->last_pts = AV_NOPTS_VALUE;
    r->on = 1;
    atomic_store(&r->want, 1);
    mms_recorder_set_retry(r, RETRY_MIN_MS, RETRY_MAX_MS);
    /* Now, so that a directory that cannot be had shows in the status at
     * once; it stops the recording alone, like a full disk, and its retry
     * tries to make it again. */
    struct mms_err derr;
    if (prepare_dir(dir, &derr) < 0) {
        r->make_dir = 1;
        fail(r, derr.msg);
    }
    *out = r;
    return 0;
fail:
    mms_recorder_free(r);
    return rc;
}

void mms_recorder_set_retry(struct mms_recorder *r, unsigned min_ms, unsigned max_ms)
{
    if (max_ms < min_ms)
        max_ms = min_ms;
    /* min_ms 0 leaves the backoff zeroed: its waits are 0, no retry. */
    mms_backoff_init(&r->backoff, min_ms, max_ms);
    r->retry_max_ms = max_ms;
    pthread_mutex_lock(&r->lock);
    if (!min_ms)
        r->retry_ms = 0;
    pthread_mutex_unlock(&r->lock);
}

void mms_recorder_set_events(struct mms_recorder *r, mms_record_event_fn fn, void *opaque)
{
    r->event = fn;
    r->event_opaque = opaque;
}

void mms_recorder_close(struct mms_recorder *r)
{
    if (!r || atomic_load(&r->closed))
        return;
    if (r->sink)
        finish_segment(r);
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->closed, 1);
    r->on = 0;
    r->retry_ms = 0;
    pthread_mutex_unlock(&r->lock);
}

void mms_recorder_free(struct mms_recorder *r)
{
    if (!r)
        return;
    mms_recorder_close(r);
    av_frame_free(&r->ref);
    av_packet_free(&r->pkt);
    free(r->dir);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
