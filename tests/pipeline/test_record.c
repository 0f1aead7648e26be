/* Continuous recording: the recorder on its own with frames made here
 * (rotation, names, start/stop, failures), then inside a pipeline (segments
 * of a real run, bad directories, the control calls and the hooks). Files
 * are checked with ffprobe, the reference reader. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "fixture.h"
#include "harness.h"
#include "io/encoder.h"
#include "io/sink.h"
#include "io/synth.h"
#include "pipeline/options.h"
#include "pipeline/pipeline.h"
#include "pipeline/record.h"

#define W 320
#define H 240
#define MAX_FILES 80

/* ------------------------------------------------------------ helpers */

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", mms_test_tmpdir(), name);
    return p;
}

/* A fresh, empty directory under the test's temporary directory. */
static const char *new_dir(const char *name)
{
    const char *d = tmp_path(name);
    CHECK_MSG(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
    return d;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* The synthetic endoscopy clip: realistic enough that the encoder's output
 * has a realistic size. */
struct clip {
    struct mms_synth *synth;
    AVFrame *frame;
    int next;
};

static int clip_open(struct clip *c)
{
    struct mms_err err;
    memset(c, 0, sizeof(*c));
    if (mms_synth_create(W, H, 7, 25, &c->synth, &err) < 0 || !(c->frame = av_frame_alloc()))
        return -1;
    c->frame->format = AV_PIX_FMT_YUV420P;
    c->frame->width = W;
    c->frame->height = H;
    return av_frame_get_buffer(c->frame, 0) < 0 ? -1 : 0;
}

static void clip_close(struct clip *c)
{
    av_frame_free(&c->frame);
    mms_synth_free(c->synth);
}

/* Writes n frames with pts pts0 + i * step. */
static void feed(struct mms_recorder *r, struct clip *c, int n, int64_t pts0, int64_t step)
{
    for (int i = 0; i < n; i++) {
        if (av_frame_make_writable(c->frame) < 0 ||
            mms_synth_frame(c->synth, c->next++, c->frame, NULL, 0)) {
            CHECK(!"cannot make a frame");
            return;
        }
        c->frame->pts = pts0 + i * step;
        mms_recorder_write(r, c->frame, NULL);
    }
}

static struct mms_sink_params params(AVRational tb)
{
    return (struct mms_sink_params){.width = W, .height = H, .time_base = tb,
                                    .frame_rate = {25, 1}};
}

static struct mms_recorder *recorder(const char *dir, const char *name, int seconds,
                                     const char *format, AVRational tb)
{
    struct mms_recorder *r = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params(tb);
    int rc = mms_recorder_create(dir, name, seconds, format, &p, &r, &err);
    CHECK_MSG(rc == 0 && r, "%s", err.msg);
    return r;
}

/* NAME-YYYYmmddTHHMMSSZ[-N].EXT; *stamp and *n for ordering. */
static int parse_name(const char *file, const char *name, const char *ext, char *stamp, int *n)
{
    size_t k = strlen(name);
    if (strncmp(file, name, k) || file[k] != '-')
        return 0;
    const char *s = file + k + 1;
    for (int i = 0; i < 16; i++) {
        int digit = s[i] >= '0' && s[i] <= '9';
        if ((i == 8 && s[i] != 'T') || (i == 15 && s[i] != 'Z') || (i != 8 && i != 15 && !digit))
            return 0;
    }
    memcpy(stamp, s, 16);
    stamp[16] = 0;
    s += 16;
    *n = 1;
    if (*s == '_') {
        char *end;
        long v = strtol(s + 1, &end, 10);
        if (end != s + 5 || v < 2)
            return 0;
        *n = (int)v;
        s = end;
    }
    return !strcmp(s, ext);
}

struct listing {
    int n;
    char name[MAX_FILES][256];
    char path[MAX_FILES][768];
};

static const char *sort_prefix, *sort_ext;

/* Opening order: by time stamp, then suffix (none before -2). */
static int by_segment(const void *a, const void *b)
{
    char sa[17], sb[17];
    int na, nb;
    parse_name(a, sort_prefix, sort_ext, sa, &na);
    parse_name(b, sort_prefix, sort_ext, sb, &nb);
    int c = strcmp(sa, sb);
    return c ? c : na - nb;
}

/* The directory's files, each checked against the naming pattern. */
static void list_segments(const char *dir, const char *name, const char *ext, struct listing *l)
{
    memset(l, 0, sizeof(*l));
    DIR *d = opendir(dir);
    CHECK_MSG(d, "%s: %s", dir, strerror(errno));
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char stamp[17];
        int n;
        CHECK_MSG(parse_name(e->d_name, name, ext, stamp, &n), "unexpected file %s/%s", dir,
                  e->d_name);
        if (l->n < MAX_FILES)
            snprintf(l->name[l->n++], sizeof(l->name[0]), "%s", e->d_name);
    }
    closedir(d);
    sort_prefix = name;
    sort_ext = ext;
    qsort(l->name, l->n, sizeof(l->name[0]), by_segment);
    for (int i = 0; i < l->n; i++)
        snprintf(l->path[i], sizeof(l->path[0]), "%s/%s", dir, l->name[i]);
}

static int run_line(const char *cmd, char *out, size_t len)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t got = fread(out, 1, len - 1, f);
    out[got] = 0;
    return pclose(f);
}

/* Frames ffprobe decodes, or -1 when it cannot read the file. */
static int probe_frames(const char *path)
{
    char cmd[2048], out[256];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 -count_frames "
             "-show_entries stream=nb_read_frames -of csv=p=0 '%s' 2>/dev/null", path);
    if (run_line(cmd, out, sizeof(out)) != 0)
        return -1;
    char *end;
    long n = strtol(out, &end, 10);
    return end == out ? -1 : (int)n;
}

/* The first frame's time in seconds, or NAN. */
static double probe_first_time(const char *path)
{
    char cmd[2048], out[256];
    snprintf(cmd, sizeof(cmd), "ffprobe -v error -select_streams v:0 -read_intervals %%+#1 "
             "-show_entries frame=pts_time -of csv=p=0 '%s' 2>/dev/null", path);
    if (run_line(cmd, out, sizeof(out)) != 0)
        return NAN;
    char *end;
    double t = strtod(out, &end);
    return end == out ? NAN : t;
}

static int64_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

/* Each file plays from 0 and has the frames wanted. */
static void check_segments(const struct listing *l, const int *want, int n)
{
    CHECK_MSG(l->n == n, "%d files, want %d", l->n, n);
    for (int i = 0; i < l->n && i < n; i++) {
        int got = probe_frames(l->path[i]);
        CHECK_MSG(got == want[i], "%s: %d frames, want %d", l->name[i], got, want[i]);
        double t = probe_first_time(l->path[i]);
        CHECK_MSG(fabs(t) < 0.05, "%s starts at %f s", l->name[i], t);
    }
}

/* ------------------------------------------------------------ the recorder alone */

/* 5 s at 25 fps in 2 s segments: 50 + 50 + 25 frames, each file from 0,
 * though the input's clock starts at 1.37 s in a 90 kHz time base. */
static void recorder_rotates_on_output_time(void)
{
    const char *dir = new_dir("rotate");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "or1", 2, "mp4", (AVRational){1, 90000});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 125, 123456, 3600);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK(st.enabled && st.recording && st.segments == 3 && st.frames == 125 && !st.errors);
    CHECK_MSG(strstr(st.file, dir) == st.file, "open segment '%s'", st.file);
    mms_recorder_close(r);
    mms_recorder_status(r, &st);
    CHECK(!st.recording && !st.file[0] && !st.error[0]);
    struct listing l;
    list_segments(dir, "or1", ".mp4", &l);
    check_segments(&l, (const int[]){50, 50, 25}, 3);
    /* Three segments in well under a second of wall time: suffixed names,
     * which a plain listing must put in the order they were recorded. */
    for (int i = 1; i < l.n; i++)
        CHECK_MSG(strcmp(l.name[i - 1], l.name[i]) < 0, "ls lists %s before %s", l.name[i],
                  l.name[i - 1]);
    int64_t total = 0;
    for (int i = 0; i < l.n; i++)
        total += size_of(l.path[i]);
    CHECK_MSG(st.bytes == total, "status says %lld bytes, the files have %lld",
              (long long)st.bytes, (long long)total);
    mms_recorder_free(r);
    clip_close(&c);
}

static void recorder_writes_mkv(void)
{
    const char *dir = new_dir("mkv");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 1, "mkv", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 60, 0, 1);
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mkv", &l);
    check_segments(&l, (const int[]){25, 25, 10}, 3);
    clip_close(&c);
}

/* ------------------------------------------------------------ bytes counted */

/* What the status says the recording wrote. */
static int64_t status_bytes(struct mms_recorder *r)
{
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    return st.bytes;
}

/* The size of the file behind fd, wherever its name went. */
static int64_t fd_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) ? -1 : (int64_t)st.st_size;
}

/* A recorder of one long segment in `format`, its first frame written:
 * fd reads the open segment, *path is its name. */
static struct mms_recorder *counted(const char *dir, const char *format, struct clip *c,
                                    int *fd, char *path, size_t len)
{
    *fd = -1;
    struct mms_recorder *r = recorder(dir, "mms", 600, format, (AVRational){1, 25});
    if (!r)
        return NULL;
    if (clip_open(c)) {
        mms_recorder_free(r);
        return NULL;
    }
    feed(r, c, 1, 0, 1);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    snprintf(path, len, "%s", st.file);
    *fd = open(st.file, O_RDONLY | O_CLOEXEC);
    CHECK_MSG(*fd >= 0, "%s: %s", st.file, strerror(errno));
    return r;
}

/* Frames pts0.. one at a time; after each, the status says what the file
 * behind fd holds, never less than before. Returns the last count. */
static int64_t feed_counting(struct mms_recorder *r, struct clip *c, int n, int64_t pts0, int fd,
                             int64_t prev)
{
    for (int i = 0; i < n; i++) {
        feed(r, c, 1, pts0 + i, 1);
        int64_t b = status_bytes(r);
        int same = CHECK_EQ(b, fd_size(fd));
        CHECK_MSG(b >= prev, "frame %lld: %lld bytes after %lld", (long long)(pts0 + i),
                  (long long)b, (long long)prev);
        if (!same || b < prev)
            return b; /* one report, not one a frame */
        prev = b;
    }
    return prev;
}

/* The status counts what the segment's sink writes, as it writes it: what
 * the file holds after every frame, growing, and its size once finalised.
 * Counted, not asked of the file system (which a hung NFS mount would
 * hang): the segment moved away mid-way (an archiver) changes nothing. */
static void counts_bytes_as_written(const char *dir, const char *format)
{
    struct clip c;
    char path[1024];
    int fd;
    struct mms_recorder *r = counted(dir, format, &c, &fd, path, sizeof(path));
    if (!r)
        return;
    int64_t first = status_bytes(r);
    int64_t b = feed_counting(r, &c, 40, 1, fd, first);
    CHECK(rename(path, tmp_path(strcmp(format, "mkv") ? "moved.mp4" : "moved.mkv")) == 0);
    b = feed_counting(r, &c, 40, 41, fd, b);
    CHECK_MSG(b > first, "the count never grew past %lld", (long long)first);
    mms_recorder_close(r);
    CHECK_EQ(status_bytes(r), fd_size(fd));
    mms_recorder_free(r);
    close(fd);
    clip_close(&c);
}

static void recorder_counts_bytes_as_written(void)
{
    counts_bytes_as_written(new_dir("bytes-mp4"), "mp4");
}

/* Matroska goes back at the end to fill in sizes and cues: bytes written
 * again count once, and the total is the file's size. */
static void recorder_counts_rewritten_matroska_bytes_once(void)
{
    counts_bytes_as_written(new_dir("bytes-mkv"), "mkv");
}

/* A file someone puts under the open segment's name is not the
 * recording's: its bytes are not counted. */
static void recorder_does_not_count_a_file_put_in_its_place(void)
{
    const char *dir = new_dir("bytes-planted");
    struct clip c;
    char path[1024];
    int fd;
    struct mms_recorder *r = counted(dir, "mp4", &c, &fd, path, sizeof(path));
    if (!r)
        return;
    int64_t b = feed_counting(r, &c, 20, 1, fd, 0);
    CHECK(rename(path, tmp_path("planted-away.mp4")) == 0);
    FILE *f = fopen(path, "wx");
    CHECK(f && fseek(f, (1 << 20) - 1, SEEK_SET) == 0 && fputc(0, f) == 0);
    if (f)
        fclose(f);
    feed_counting(r, &c, 20, 21, fd, b);
    mms_recorder_close(r);
    CHECK_EQ(status_bytes(r), fd_size(fd));
    CHECK_EQ(size_of(path), 1 << 20);
    mms_recorder_free(r);
    close(fd);
    clip_close(&c);
}

/* A segment deleted while it is written (a cleanup job) still counts
 * what was written to it, up to its end. */
static void recorder_counts_a_deleted_segment_as_written(void)
{
    const char *dir = new_dir("bytes-deleted");
    struct clip c;
    char path[1024];
    int fd;
    struct mms_recorder *r = counted(dir, "mp4", &c, &fd, path, sizeof(path));
    if (!r)
        return;
    int64_t b = feed_counting(r, &c, 20, 1, fd, 0);
    CHECK(unlink(path) == 0);
    feed_counting(r, &c, 40, 21, fd, b);
    mms_recorder_close(r);
    CHECK_EQ(status_bytes(r), fd_size(fd));
    CHECK(status_bytes(r) > b);
    mms_recorder_free(r);
    close(fd);
    clip_close(&c);
}

/* Files with the names a segment would take, for the seconds around now. */
static void plant(const char *dir, const char *name, int suffix, time_t from, int seconds)
{
    for (int s = 0; s < seconds; s++) {
        time_t t = from + s;
        struct tm tm;
        char stamp[32], path[768], sfx[16] = "";
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
        if (suffix > 1)
            snprintf(sfx, sizeof(sfx), "_%04d", suffix);
        snprintf(path, sizeof(path), "%s/%s-%s%s.mp4", dir, name, stamp, sfx);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("keep", f) >= 0 && fclose(f) == 0);
    }
}

static int all_planted_kept(const char *dir, const char *skip)
{
    struct listing l;
    list_segments(dir, "or1", ".mp4", &l);
    int kept = 0;
    for (int i = 0; i < l.n; i++) {
        if (!strcmp(l.path[i], skip))
            continue;
        char buf[16] = "";
        FILE *f = fopen(l.path[i], "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        CHECK_MSG(!strcmp(buf, "keep"), "%s was overwritten", l.name[i]);
        kept += !strcmp(buf, "keep");
    }
    return kept;
}

/* The name and its -2 are taken for every second the test may run in:
 * the segment becomes -3 and nothing planted is touched. */
static void recorder_never_overwrites(void)
{
    const char *dir = new_dir("collide");
    time_t now = time(NULL);
    plant(dir, "or1", 1, now - 1, 30);
    plant(dir, "or1", 2, now - 1, 30);
    struct clip c;
    struct mms_recorder *r = recorder(dir, "or1", 10, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 10, 0, 1);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    size_t n = strlen(st.file);
    CHECK_MSG(n > 9 && !strcmp(st.file + n - 9, "_0003.mp4"), "segment '%s'", st.file);
    char file[1024];
    snprintf(file, sizeof(file), "%s", st.file);
    mms_recorder_free(r);
    CHECK(all_planted_kept(dir, file) == 60);
    CHECK_MSG(probe_frames(file) == 10, "%s", file);
    clip_close(&c);
}

/* A file outside the record directory that a planted link points at. */
static const char *outside_file(const char *name)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("keep", f) >= 0 && fclose(f) == 0);
    return path;
}

static int still_kept(const char *path)
{
    char buf[16] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return !strcmp(buf, "keep");
}

/* Links to `target` at every name the next segment may take (each second
 * around now, suffixes up to 3): the recorder skips them all, writes its
 * segment beside them, and the file they point at stays as it was. */
static void recorder_skips_links_planted_at_segment_names(void)
{
    const char *dir = new_dir("planted"), *target = outside_file("planted-target.mp4");
    time_t now = time(NULL);
    for (int s = -1; s < 30; s++)
        for (int n = 1; n <= 3; n++) {
            time_t t = now + s;
            struct tm tm;
            char stamp[32], link[768], sfx[16] = "";
            strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
            if (n > 1)
                snprintf(sfx, sizeof(sfx), "_%04d", n);
            snprintf(link, sizeof(link), "%s/mms-%s%s.mp4", dir, stamp, sfx);
            CHECK(symlink(target, link) == 0);
        }
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 10, 0, 1);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    size_t n = strlen(st.file);
    CHECK_MSG(!st.errors && n > 9 && !strcmp(st.file + n - 9, "_0004.mp4"), "segment '%s', '%s'",
              st.file, st.error);
    char file[1024];
    snprintf(file, sizeof(file), "%s", st.file);
    mms_recorder_free(r);
    struct stat sb;
    CHECK_MSG(!lstat(file, &sb) && S_ISREG(sb.st_mode), "%s is not a plain file", file);
    CHECK_MSG(probe_frames(file) == 10, "%s", file);
    CHECK_MSG(still_kept(target), "%s, outside the directory, was written", target);
    clip_close(&c);
}

/* Replaces each segment file the moment it is made with a link to a file
 * outside the directory, as someone else who may write in the directory
 * could: between the recorder making the file and writing it. */
struct swapper {
    const char *dir, *target;
    int fd; /* inotify */
    atomic_int stop, swapped;
};

static void swap_created(struct swapper *sw, const char *name)
{
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 4, ".mp4"))
        return;
    char path[768], tmp[800];
    snprintf(path, sizeof(path), "%s/%s", sw->dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.swap", sw->dir);
    unlink(tmp);
    if (!symlink(sw->target, tmp) && !rename(tmp, path))
        atomic_fetch_add(&sw->swapped, 1);
}

static void *swapper_main(void *arg)
{
    struct swapper *sw = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&sw->stop)) {
        struct pollfd pfd = {sw->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t len = read(sw->fd, buf, sizeof(buf));
        for (ssize_t at = 0; at < len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + at);
            if (ev->len && (ev->mask & IN_CREATE))
                swap_created(sw, ev->name);
            at += (ssize_t)sizeof(*ev) + ev->len;
        }
    }
    return NULL;
}

/* Ten segments, each swapped for a link as soon as it appears: every
 * frame still goes into the file the recorder made (gone from the
 * directory now), none through the link, and the file outside is left
 * as it was. */
static void recorder_never_writes_through_a_swapped_in_link(void)
{
    const char *dir = new_dir("swapped"), *target = outside_file("swapped-target.mp4");
    struct swapper sw = {.dir = dir, .target = target, .fd = inotify_init1(IN_CLOEXEC)};
    CHECK(sw.fd >= 0 && inotify_add_watch(sw.fd, dir, IN_CREATE) >= 0);
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    pthread_t th;
    if (!r || clip_open(&c) || pthread_create(&th, NULL, swapper_main, &sw)) {
        CHECK(!"cannot start");
        return;
    }
    for (int i = 0; i < 10; i++) {
        CHECK(mms_recorder_request(r, 1) == 0);
        feed(r, &c, 5, i * 10, 1);
        CHECK(mms_recorder_request(r, 0) == 0);
        feed(r, &c, 1, i * 10 + 5, 1); /* the stop finalises the segment */
    }
    for (int i = 0; i < 40 && atomic_load(&sw.swapped) < 10; i++)
        sleep_ms(50);
    atomic_store(&sw.stop, 1);
    pthread_join(th, NULL);
    close(sw.fd);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    mms_recorder_free(r);
    printf("     %d of 10 segments swapped for a link\n", atomic_load(&sw.swapped));
    CHECK_MSG(atomic_load(&sw.swapped) >= 5, "only %d segments were swapped",
              atomic_load(&sw.swapped));
    CHECK_MSG(st.segments == 10 && st.frames == 50 && !st.errors,
              "segments %lld frames %lld errors %lld: %s", (long long)st.segments,
              (long long)st.frames, (long long)st.errors, st.error);
    CHECK_MSG(still_kept(target), "%s, outside the directory, was written (%lld bytes)",
              target, (long long)size_of(target));
    clip_close(&c);
}

/* Stop closes the segment there and then, finalised and playable; frames
 * while stopped go nowhere. */
static void recorder_stop_finalises_segment(void)
{
    const char *dir = new_dir("stop");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 30, 0, 1);
    CHECK(mms_recorder_request(r, 0) == 0);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK_MSG(!st.recording, "a stop asked for shows at once");
    feed(r, &c, 20, 30, 1);
    mms_recorder_status(r, &st);
    CHECK(!st.recording && !st.file[0] && st.segments == 1 && st.frames == 30 && !st.errors);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){30}, 1);
    mms_recorder_free(r);
    clip_close(&c);
}

/* Start after a stop opens a new file at the next frame, from 0 again. */
static void recorder_start_opens_new_segment(void)
{
    const char *dir = new_dir("restart");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 20, 0, 1);
    mms_recorder_request(r, 0);
    feed(r, &c, 10, 20, 1);
    CHECK(mms_recorder_request(r, 1) == 0);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK(st.recording && !st.file[0] && st.segments == 1);
    feed(r, &c, 15, 30, 1);
    mms_recorder_status(r, &st);
    CHECK(st.recording && st.file[0] && st.segments == 2 && st.frames == 35);
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){20, 15}, 2);
    clip_close(&c);
}

/* ------------------------------------------------------------ on a shared encoder */

/* A live encoding (nothing held back, so a packet per frame sent) that the
 * recorder shares; the recorder is fed its packets. */
struct shared {
    struct mms_encoder *enc;
    struct mms_recorder *r;
    AVPacket *pkt;
};

static int shared_open(struct shared *sh, const char *dir, int seconds, AVRational tb)
{
    struct mms_err err = {{0}};
    struct mms_sink_params p = params(tb);
    struct mms_enc_settings s;
    memset(sh, 0, sizeof(*sh));
    p.live = 1;
    CHECK(mms_sink_encoding(&mms_sink_file, "x.mp4", &p, &s) == 1);
    CHECK_MSG(mms_encoder_open(&s, "shared", &sh->enc, &err) == 0, "%s", err.msg);
    p.encoder = sh->enc;
    if (sh->enc)
        CHECK_MSG(mms_recorder_create(dir, "sh", seconds, "mp4", &p, &sh->r, &err) == 0, "%s",
                  err.msg);
    sh->pkt = av_packet_alloc();
    return sh->enc && sh->r && sh->pkt ? 0 : -1;
}

static void shared_close(struct shared *sh)
{
    mms_recorder_free(sh->r);
    mms_encoder_free(sh->enc);
    av_packet_free(&sh->pkt);
}

/* n frames pts pts0 + i * step through the encoder into the recorder. */
static void feed_shared(struct shared *sh, struct clip *c, int n, int64_t pts0, int64_t step)
{
    struct mms_err err = {{0}};
    for (int i = 0; i < n; i++) {
        if (av_frame_make_writable(c->frame) < 0 ||
            mms_synth_frame(c->synth, c->next++, c->frame, NULL, 0)) {
            CHECK(!"cannot make a frame");
            return;
        }
        c->frame->pts = pts0 + i * step;
        CHECK_MSG(mms_encoder_send(sh->enc, c->frame, &err) == 0, "%s", err.msg);
        while (mms_encoder_receive(sh->enc, sh->pkt, &err) == 0)
            mms_recorder_write_packet(sh->r, sh->pkt);
    }
}

/* The recorder counted n segments of these lengths, and once closed its
 * files hold them. Closes sh; the status from before the close. */
static struct mms_record_status shared_check(struct shared *sh, const char *dir,
                                             const int *lengths, int n)
{
    int frames = 0;
    for (int i = 0; i < n; i++)
        frames += lengths[i];
    struct mms_record_status st;
    mms_recorder_status(sh->r, &st);
    CHECK_MSG(st.segments == n && st.frames == frames, "%lld segments, %lld frames",
              (long long)st.segments, (long long)st.frames);
    mms_recorder_close(sh->r);
    struct listing l;
    list_segments(dir, "sh", ".mp4", &l);
    check_segments(&l, lengths, n);
    shared_close(sh);
    return st;
}

/* The encoder is asked for a keyframe at each segment's end: 2 s segments
 * of exactly 50 + 50 + 25 frames, each from 0 and decodable. */
static void shared_encoder_segments_end_on_time(void)
{
    const char *dir = new_dir("shared-rotate");
    struct shared sh;
    struct clip c;
    if (shared_open(&sh, dir, 2, (AVRational){1, 90000}) || clip_open(&c))
        return;
    feed_shared(&sh, &c, 125, 123456, 3600);
    CHECK_EQ(shared_check(&sh, dir, (const int[]){50, 50, 25}, 3).errors, 0);
    clip_close(&c);
}

/* Started again mid-GOP, the recording cannot begin on the packet at hand:
 * it asks for a keyframe, which the very next frame is. */
static void shared_encoder_start_waits_one_frame_for_a_keyframe(void)
{
    const char *dir = new_dir("shared-restart");
    struct shared sh;
    struct clip c;
    if (shared_open(&sh, dir, 60, (AVRational){1, 25}) || clip_open(&c))
        return;
    feed_shared(&sh, &c, 20, 0, 1);
    mms_recorder_request(sh.r, 0);
    feed_shared(&sh, &c, 10, 20, 1);
    mms_recorder_request(sh.r, 1);
    feed_shared(&sh, &c, 15, 30, 1); /* frame 30 is no keyframe: 31 is made one */
    shared_check(&sh, dir, (const int[]){20, 14}, 2);
    clip_close(&c);
}

/* The encoder's time base is the one segment lengths are counted in. */
static void shared_encoder_of_another_time_base_is_refused(void)
{
    struct shared sh;
    struct mms_err err = {{0}};
    struct mms_recorder *r = NULL;
    if (shared_open(&sh, new_dir("shared-tb"), 2, (AVRational){1, 90000}))
        return;
    struct mms_sink_params p = params((AVRational){1, 25});
    p.encoder = sh.enc;
    CHECK(mms_recorder_create(new_dir("shared-tb2"), "sh", 2, "mp4", &p, &r, &err) == -EINVAL);
    CHECK(!r);
    CHECK_MSG(strstr(err.msg, "time base"), "%s", err.msg);
    shared_close(&sh);
}

/* Ended (its encoder failed), the recorder writes nothing more, starts
 * no retry, refuses a start, and keeps the segment it had whole. */
static void an_ended_recorder_takes_no_packet_and_no_start(void)
{
    const char *dir = new_dir("shared-ended");
    struct shared sh;
    struct clip c;
    if (shared_open(&sh, dir, 60, (AVRational){1, 25}) || clip_open(&c))
        return;
    feed_shared(&sh, &c, 20, 0, 1);
    mms_recorder_end(sh.r, "encoder gone");
    feed_shared(&sh, &c, 10, 20, 1);
    struct mms_record_status st;
    mms_recorder_status(sh.r, &st);
    CHECK_EQ(st.recording, 0);
    CHECK_EQ(st.retrying, 0);
    CHECK_EQ(st.errors, 1);
    CHECK_STR_EQ(st.error, "encoder gone");
    CHECK_EQ(mms_recorder_request(sh.r, 1), -EIO);
    CHECK_EQ(mms_recorder_request(sh.r, 0), 0);
    feed_shared(&sh, &c, 10, 30, 1);
    shared_check(&sh, dir, (const int[]){20}, 1);
    clip_close(&c);
}

/* A recorder closed at the pipeline's end has nothing left to end: no
 * error appears, and a request still says it is closed. */
static void a_closed_recorder_is_not_ended(void)
{
    const char *dir = new_dir("shared-closed-end");
    struct shared sh;
    struct clip c;
    if (shared_open(&sh, dir, 60, (AVRational){1, 25}) || clip_open(&c))
        return;
    feed_shared(&sh, &c, 5, 0, 1);
    mms_recorder_close(sh.r);
    mms_recorder_end(sh.r, "encoder gone");
    struct mms_record_status st;
    mms_recorder_status(sh.r, &st);
    CHECK_EQ(st.errors, 0);
    CHECK_STR_EQ(st.error, "");
    CHECK_EQ(mms_recorder_request(sh.r, 1), -EPIPE);
    shared_close(&sh);
    clip_close(&c);
}

struct toggler {
    struct mms_recorder *r;
    atomic_int done, requests;
};

static void *toggle_main(void *arg)
{
    struct toggler *t = arg;
    for (int i = 0; !atomic_load(&t->done) && i < 16; i++) {
        mms_recorder_request(t->r, i % 2 == 0 ? 0 : 1);
        atomic_fetch_add(&t->requests, 1);
        sleep_ms(7);
    }
    mms_recorder_request(t->r, 1);
    return NULL;
}

/* Requests from another thread while frames are written: every file is
 * whole, and together they hold every frame the status counted. */
static void recorder_requests_from_another_thread(void)
{
    const char *dir = new_dir("threads");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    struct toggler t = {.r = r};
    pthread_t th;
    feed(r, &c, 5, 0, 1); /* a first segment whatever the timing */
    CHECK(pthread_create(&th, NULL, toggle_main, &t) == 0);
    for (int i = 5; i < 300 && atomic_load(&t.requests) < 16; i++)
        feed(r, &c, 1, i, 1);
    atomic_store(&t.done, 1);
    pthread_join(th, NULL);
    feed(r, &c, 1, 1000, 1); /* the final start: at least this frame */
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK(st.recording && st.segments >= 2 && !st.errors);
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    CHECK_MSG(l.n == st.segments, "%d files, %lld segments", l.n, (long long)st.segments);
    int64_t sum = 0;
    for (int i = 0; i < l.n; i++) {
        int n = probe_frames(l.path[i]);
        CHECK_MSG(n > 0, "%s: %d frames", l.name[i], n);
        sum += n;
    }
    CHECK_MSG(sum == st.frames, "files hold %lld frames, status %lld", (long long)sum,
              (long long)st.frames);
    clip_close(&c);
}

/* With automatic retries off: the directory vanishes while recording (a
 * disk unmounted): the next segment fails, the failure is kept and
 * counted, recording goes off and later frames are dropped quietly, and
 * nothing makes the directory again behind the user's back; a start does,
 * records again and clears the message but not the count. */
static void recorder_failure_stops_then_start_retries(void)
{
    const char *dir = new_dir("vanish"), *gone = tmp_path("vanish-gone");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 1, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    mms_recorder_set_retry(r, 0, 0);
    feed(r, &c, 10, 0, 1);
    CHECK(rename(dir, gone) == 0);
    feed(r, &c, 30, 10, 1); /* the second segment opens at frame 25 */
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK_MSG(!st.recording && st.errors == 1 && st.segments == 1 && st.frames == 25,
              "recording %d errors %lld segments %lld frames %lld", st.recording,
              (long long)st.errors, (long long)st.segments, (long long)st.frames);
    CHECK_MSG(strstr(st.error, dir) && strstr(st.error, strerror(ENOENT)), "error '%s'",
              st.error);
    CHECK(!st.file[0] && !st.retrying);
    struct stat sb;
    CHECK_MSG(stat(dir, &sb) && errno == ENOENT, "%s was made again without a start", dir);
    feed(r, &c, 10, 40, 1);
    mms_recorder_status(r, &st);
    CHECK_MSG(st.errors == 1 && st.segments == 1 && st.frames == 25,
              "no retry without a start");
    CHECK(mms_recorder_request(r, 1) == 0);
    feed(r, &c, 10, 50, 1);
    mms_recorder_status(r, &st);
    CHECK(st.recording && st.errors == 1 && st.segments == 2 && st.frames == 35);
    CHECK_MSG(!st.error[0], "error '%s' not cleared", st.error);
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){10}, 1);
    list_segments(gone, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){25}, 1);
    clip_close(&c);
}

/* A missing record directory is made, parents too, the last one 0750
 * whatever the umask (as systemd's StateDirectory=), and recorded into. */
static void recorder_makes_missing_dir(void)
{
    const char *top = tmp_path("made"), *dir = tmp_path("made/a/b");
    struct clip c;
    mode_t old = umask(077);
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    umask(old);
    if (!r || clip_open(&c))
        return;
    struct stat sb;
    CHECK_MSG(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s: %s", dir, strerror(errno));
    CHECK_MSG((sb.st_mode & 07777) == 0750, "%s: mode %o", dir, (unsigned)(sb.st_mode & 07777));
    CHECK(stat(top, &sb) == 0 && S_ISDIR(sb.st_mode));
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK_MSG(st.recording && !st.errors && !st.error[0], "error '%s'", st.error);
    feed(r, &c, 10, 0, 1);
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){10}, 1);
    clip_close(&c);
}

/* A directory that cannot be made (a plain file in the way) does not fail
 * the recorder: it starts failed, with the reason, records nothing, and
 * (automatic retries off) once the way is clear a start makes the
 * directory and records. */
static void recorder_unmakeable_dir_fails_then_start_makes_it(void)
{
    const char *plain = tmp_path("in-the-way"), *dir = tmp_path("in-the-way/rec");
    FILE *f = fopen(plain, "w");
    CHECK(f && fclose(f) == 0);
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK_MSG(st.retrying && st.retry_in_ms > 500 && st.retry_in_ms <= 1000,
              "retrying %d in %lld ms", st.retrying, (long long)st.retry_in_ms);
    mms_recorder_set_retry(r, 0, 0);
    mms_recorder_status(r, &st);
    CHECK(st.enabled && !st.recording && st.errors == 1 && !st.segments && !st.file[0]);
    CHECK(!st.retrying);
    CHECK_MSG(strstr(st.error, dir) && strstr(st.error, strerror(ENOTDIR)), "error '%s'",
              st.error);
    feed(r, &c, 10, 0, 1);
    CHECK(unlink(plain) == 0);
    feed(r, &c, 10, 10, 1);
    mms_recorder_status(r, &st);
    CHECK_MSG(!st.recording && st.errors == 1 && !st.segments && !st.frames,
              "recorded without a start: %lld frames", (long long)st.frames);
    CHECK(mms_recorder_request(r, 1) == 0);
    feed(r, &c, 10, 20, 1);
    mms_recorder_status(r, &st);
    CHECK_MSG(st.recording && st.errors == 1 && st.segments == 1 && st.frames == 10 &&
                  !st.error[0],
              "after a start: recording %d segments %lld frames %lld error '%s'", st.recording,
              (long long)st.segments, (long long)st.frames, st.error);
    mms_recorder_free(r);
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 07777) == 0750);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){10}, 1);
    clip_close(&c);
}

/* The record directory is itself a plain file: failed from the start,
 * and the file is left alone. */
static void recorder_dir_that_is_a_file_fails(void)
{
    const char *plain = tmp_path("plain-rec");
    FILE *f = fopen(plain, "w");
    CHECK(f && fputs("keep", f) >= 0 && fclose(f) == 0);
    struct clip c;
    struct mms_recorder *r = recorder(plain, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    mms_recorder_set_retry(r, 0, 0); /* the two failures counted: create's and the start's */
    CHECK(mms_recorder_request(r, 1) == 0);
    feed(r, &c, 5, 0, 1);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK_MSG(!st.recording && st.errors == 2 && !st.frames && strstr(st.error, plain) &&
                  strstr(st.error, "not a directory"),
              "errors %lld error '%s'", (long long)st.errors, st.error);
    mms_recorder_free(r);
    CHECK(size_of(plain) == 4);
    clip_close(&c);
}

struct full_report {
    struct mms_record_status failed, after;
    int wrote;
};

/* In a child, under a 200 KB file size limit with SIGXFSZ ignored, as on a
 * full disk: the write that crosses the limit fails with EFBIG. */
/* Runs child(dir, fd) in a process of its own (a file size limit or a
 * mount namespace must not reach the tests after it) and reads back the
 * report it writes to fd, n bytes. 1 when the whole report came. */
static int child_report(void (*child)(const char *, int), const char *dir, void *rep, size_t n)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(dir, fds[1]);
    }
    close(fds[1]);
    memset(rep, 0, n);
    ssize_t got = read(fds[0], rep, n);
    close(fds[0]);
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    return got == (ssize_t)n;
}

static void full_disk_child(const char *dir, int fd)
{
    struct full_report rep;
    memset(&rep, 0, sizeof(rep));
    struct clip c;
    struct mms_recorder *r = NULL;
    struct mms_sink_params p = params((AVRational){1, 25});
    struct mms_err err;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {200 * 1024, 200 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) || clip_open(&c) ||
        mms_recorder_create(dir, "mms", 600, "mp4", &p, &r, &err))
        _exit(2);
    mms_recorder_set_retry(r, 0, 0); /* what one failure leaves */
    for (int i = 0; i < 3000; i++) {
        feed(r, &c, 1, i, 1);
        mms_recorder_status(r, &rep.failed);
        rep.wrote = i + 1;
        if (rep.failed.errors)
            break;
    }
    /* Later writes return normally and do nothing. */
    feed(r, &c, 50, 5000, 1);
    mms_recorder_status(r, &rep.after);
    mms_recorder_free(r);
    clip_close(&c);
    _exit(write(fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 3);
}

static void recorder_full_disk_keeps_what_was_written(void)
{
    const char *dir = new_dir("full");
    struct full_report rep;
    if (!child_report(full_disk_child, dir, &rep, sizeof(rep)))
        return;
    const struct mms_record_status *f = &rep.failed;
    CHECK_MSG(f->errors == 1 && !f->recording && f->segments == 1 && !f->file[0],
              "errors %lld recording %d segments %lld after %d frames", (long long)f->errors,
              f->recording, (long long)f->segments, rep.wrote);
    CHECK_MSG(strstr(f->error, "File too large") || strstr(f->error, "space"), "error '%s'",
              f->error);
    CHECK(f->frames > 0 && f->frames < rep.wrote);
    CHECK(rep.after.errors == 1 && rep.after.frames == f->frames && rep.after.segments == 1);
    CHECK(!strcmp(rep.after.error, f->error) && !rep.after.recording);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    CHECK(l.n == 1);
    if (l.n == 1) {
        int n = probe_frames(l.path[0]);
        CHECK_MSG(n >= 25 && n <= f->frames, "%s: %d frames of %lld written", l.name[0], n,
                  (long long)f->frames);
        CHECK(size_of(l.path[0]) <= 200 * 1024);
    }
}

/* ------------------------------------------------------------ retries */

static struct mms_record_status rec_status(struct mms_recorder *r)
{
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    return st;
}

/* A frame every 20 ms (a live source), pts going on from *pts, until
 * done(status) or ms have passed; 1 if done. */
static int feed_until(struct mms_recorder *r, struct clip *c, int64_t *pts, int ms,
                      int (*done)(const struct mms_record_status *, int64_t), int64_t arg)
{
    for (int i = 0; i < ms / 20; i++) {
        struct mms_record_status st = rec_status(r);
        if (done && done(&st, arg))
            return 1;
        feed(r, c, 1, (*pts)++, 1);
        sleep_ms(20);
    }
    struct mms_record_status st = rec_status(r);
    return done && done(&st, arg);
}

static int has_errors(const struct mms_record_status *st, int64_t n)
{
    return st->errors >= n;
}

static int has_segments(const struct mms_record_status *st, int64_t n)
{
    return st->segments >= n && st->recording;
}

/* The directory vanishes while recording (a disk unmounted): the next
 * segment fails and is tried again by itself, 100, 200, 400, 400 ms after
 * each failure (a 100..400 ms backoff), never making the directory on
 * whatever lies beneath; once the directory is back, the next retry
 * records into a new segment there and the error is cleared. */
static void recorder_retries_a_vanished_directory_without_making_it(void)
{
    const char *dir = new_dir("retry-vanish"), *gone = tmp_path("retry-vanish-gone");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 1, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    mms_recorder_set_retry(r, 100, 400);
    feed(r, &c, 10, 0, 1);
    CHECK(rename(dir, gone) == 0);
    feed(r, &c, 20, 10, 1); /* the second segment fails at frame 25 */
    struct mms_record_status st = rec_status(r);
    CHECK_MSG(!st.recording && st.errors == 1 && st.retrying && st.retry_in_ms <= 100 &&
                  strstr(st.error, strerror(ENOENT)),
              "errors %lld, retrying %d in %lld ms: '%s'", (long long)st.errors, st.retrying,
              (long long)st.retry_in_ms, st.error);
    feed(r, &c, 3, 30, 1);
    CHECK_MSG(rec_status(r).errors == 1, "tried again before its time");
    static const int64_t waits[] = {200, 400, 400};
    int64_t pts = 33;
    for (int k = 0; k < 3; k++) {
        CHECK_MSG(feed_until(r, &c, &pts, 2000, has_errors, 2 + k), "retry %d never came", k + 1);
        st = rec_status(r);
        CHECK_MSG(st.retrying && st.retry_in_ms > waits[k] - 60 && st.retry_in_ms <= waits[k],
                  "after failure %d: retrying %d in %lld ms, want %lld", k + 2, st.retrying,
                  (long long)st.retry_in_ms, (long long)waits[k]);
    }
    struct stat sb;
    CHECK_MSG(stat(dir, &sb) && errno == ENOENT, "a retry made %s again", dir);
    CHECK(rename(gone, dir) == 0);
    CHECK_MSG(feed_until(r, &c, &pts, 2000, has_segments, 2), "never recorded again");
    feed(r, &c, 5, pts, 1);
    st = rec_status(r);
    CHECK_MSG(st.recording && !st.retrying && st.segments == 2 && st.errors == 4 && !st.error[0],
              "recording %d retrying %d segments %lld errors %lld '%s'", st.recording,
              st.retrying, (long long)st.segments, (long long)st.errors, st.error);
    int64_t frames = st.frames;
    mms_recorder_free(r);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    CHECK_MSG(l.n == 2 && probe_frames(l.path[0]) == 25 &&
                  probe_frames(l.path[1]) == frames - 25,
              "%d files; %lld frames recorded", l.n, (long long)frames);
    clip_close(&c);
}

/* A stop while a retry is pending ends the retries: nothing is tried
 * again, however long frames come. */
static void recorder_stop_ends_the_retries(void)
{
    const char *dir = new_dir("retry-stop"), *gone = tmp_path("retry-stop-gone");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 1, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    mms_recorder_set_retry(r, 50, 50);
    feed(r, &c, 30, 0, 1);
    CHECK(rename(dir, gone) == 0);
    feed(r, &c, 25, 30, 1);
    CHECK(rec_status(r).retrying && rec_status(r).errors == 1);
    CHECK(mms_recorder_request(r, 0) == 0);
    CHECK_MSG(!rec_status(r).retrying && !rec_status(r).recording, "still retrying");
    int64_t pts = 55;
    feed_until(r, &c, &pts, 400, NULL, 0);
    struct mms_record_status st = rec_status(r);
    CHECK_MSG(st.errors == 1 && !st.retrying && !st.recording && st.segments == 2,
              "errors %lld retrying %d recording %d", (long long)st.errors, st.retrying,
              st.recording);
    mms_recorder_free(r);
    clip_close(&c);
}

struct resume_report {
    int tmpfs; /* 1: a full tmpfs; 0: a file size limit of 0 */
    struct mms_record_status full, later, resumed;
    int files, frames[4];
};

/* A full disk: a real tmpfs filled up where one can be mounted (root, in
 * a mount namespace of this child's own), else every write failing with
 * EFBIG under a file size limit of 0. 1 when the disk is full. */
static int fill_disk(const char *dir, int tmpfs)
{
    if (!tmpfs) {
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = 0;
        return !setrlimit(RLIMIT_FSIZE, &rl);
    }
    char filler[768];
    snprintf(filler, sizeof(filler), "%s/.filler", dir);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    static char block[65536];
    while (fd >= 0 && write(fd, block, sizeof(block)) > 0)
        ;
    int full = fd >= 0 && errno == ENOSPC;
    if (fd >= 0)
        close(fd);
    return full;
}

static int free_disk(const char *dir, int tmpfs)
{
    if (!tmpfs) {
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = rl.rlim_max;
        return !setrlimit(RLIMIT_FSIZE, &rl);
    }
    char filler[768];
    snprintf(filler, sizeof(filler), "%s/.filler", dir);
    return !unlink(filler);
}

static int mount_small_tmpfs(const char *dir)
{
    return !unshare(CLONE_NEWNS) && !mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) &&
           !mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0755");
}

static void resume_child(const char *dir, int fd)
{
    struct resume_report rep;
    memset(&rep, 0, sizeof(rep));
    struct clip c;
    signal(SIGXFSZ, SIG_IGN);
    rep.tmpfs = mount_small_tmpfs(dir);
    struct mms_recorder *r = recorder(dir, "mms", 600, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        _exit(2);
    mms_recorder_set_retry(r, 200, 800);
    int64_t pts = 60;
    feed(r, &c, 60, 0, 1); /* a fragment or two on disk, whatever the encoder holds */
    if (!fill_disk(dir, rep.tmpfs))
        _exit(3);
    feed_until(r, &c, &pts, 10000, has_errors, 1);
    rep.full = rec_status(r);
    feed_until(r, &c, &pts, 1200, NULL, 0); /* retries at 200 and 600 ms: still full */
    rep.later = rec_status(r);
    if (!free_disk(dir, rep.tmpfs))
        _exit(4);
    feed_until(r, &c, &pts, 3000, has_segments, 2);
    feed(r, &c, 10, pts, 1);
    rep.resumed = rec_status(r);
    mms_recorder_free(r);
    clip_close(&c);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    rep.files = l.n;
    for (int i = 0; i < l.n && i < 4; i++)
        rep.frames[i] = probe_frames(l.path[i]);
    _exit(write(fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 5);
}

struct stop_report {
    struct mms_record_status failed, later;
    int files;
};

static void stop_child(const char *dir, int fd)
{
    struct stop_report rep;
    memset(&rep, 0, sizeof(rep));
    struct clip c;
    signal(SIGXFSZ, SIG_IGN);
    struct mms_recorder *r = recorder(dir, "mms", 600, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        _exit(2);
    mms_recorder_set_retry(r, 100, 100);
    int64_t pts = 60;
    feed(r, &c, 60, 0, 1);
    if (!fill_disk(dir, 0) || mms_recorder_request(r, 0))
        _exit(3);
    feed_until(r, &c, &pts, 2000, has_errors, 1); /* the stop's close fails */
    rep.failed = rec_status(r);
    if (!free_disk(dir, 0))
        _exit(4);
    feed_until(r, &c, &pts, 1500, has_segments, 2); /* ten retry delays */
    rep.later = rec_status(r);
    mms_recorder_free(r);
    clip_close(&c);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    rep.files = l.n;
    _exit(write(fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep) ? 0 : 5);
}

/* A stop whose last segment cannot be finished (the disk full at that
 * moment) is still a stop: the failure is reported, and no retry starts
 * the recording again once there is room, as it did. */
static void recorder_stop_with_a_failed_close_stays_stopped(void)
{
    const char *dir = new_dir("stop-fail");
    struct stop_report rep;
    if (!child_report(stop_child, dir, &rep, sizeof(rep)))
        return;
    const struct mms_record_status *f = &rep.failed, *l = &rep.later;
    CHECK_MSG(f->errors == 1 && !f->recording && !f->retrying && strstr(f->error, "File too large"),
              "the stop's failed close: errors %lld recording %d retrying %d '%s'",
              (long long)f->errors, f->recording, f->retrying, f->error);
    CHECK_MSG(!l->recording && !l->retrying && l->segments == 1 && rep.files == 1,
              "room again: recording %d retrying %d segments %lld, %d files", l->recording,
              l->retrying, (long long)l->segments, rep.files);
}

/* A recording that fails on a full disk is tried again by itself, keeps
 * failing while the disk is full (saying it retries), and once there is
 * room resumes into a new segment, the error cleared. */
static void recorder_resumes_when_a_full_disk_has_room(void)
{
    const char *dir = new_dir("resume");
    struct resume_report rep;
    if (!child_report(resume_child, dir, &rep, sizeof(rep)))
        return;
    printf("     %s; %lld failures while full; %d files: %d + %d frames\n",
           rep.tmpfs ? "a full tmpfs" : "a file size limit (no tmpfs could be mounted)",
           (long long)rep.later.errors, rep.files, rep.frames[0], rep.frames[1]);
    const struct mms_record_status *f = &rep.full, *l = &rep.later, *res = &rep.resumed;
    CHECK_MSG(f->errors == 1 && !f->recording && f->retrying && f->segments == 1 &&
                  (strstr(f->error, "No space") || strstr(f->error, "File too large")),
              "full: errors %lld recording %d retrying %d: '%s'", (long long)f->errors,
              f->recording, f->retrying, f->error);
    CHECK_MSG(l->errors >= 2 && l->retrying && l->segments == 1 && l->frames == f->frames,
              "still full: errors %lld retrying %d segments %lld", (long long)l->errors,
              l->retrying, (long long)l->segments);
    CHECK_MSG(res->recording && !res->retrying && res->segments == 2 && !res->error[0] &&
                  res->errors == l->errors && res->frames >= f->frames + 10,
              "room again: recording %d retrying %d segments %lld errors %lld '%s'",
              res->recording, res->retrying, (long long)res->segments, (long long)res->errors,
              res->error);
    CHECK_MSG(rep.files == 2 && rep.frames[0] >= 25 && rep.frames[1] >= 10, "%d files: %d, %d",
              rep.files, rep.frames[0], rep.frames[1]);
}

static void recorder_refuses_bad_settings(void)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    const char *dir = new_dir("settings");
    static const struct {
        const char *dir, *name, *format, *want;
        int seconds;
    } bad[] = {
        {"", "mms", "mp4", "record directory", 60},
        {NULL, "mms", "avi", "avi", 60},
        {NULL, "mms", "MP4", "MP4", 60},
        {NULL, "mms", "", "expected mp4 or mkv", 60},
        {NULL, "mms", "mp4", "at least 1", 0},
        {NULL, "a/b", "mp4", "a/b", 60},
        {NULL, "", "mp4", "recording name", 60},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *d = bad[i].dir ? bad[i].dir : dir;
        struct mms_recorder *r = (struct mms_recorder *)&p;
        struct mms_err err = {{0}};
        int rc = mms_recorder_create(d, bad[i].name, bad[i].seconds, bad[i].format, &p, &r,
                                     &err);
        CHECK_MSG(rc < 0 && !r, "case %zu accepted", i);
        CHECK_MSG(strstr(err.msg, bad[i].want), "case %zu: '%s' lacks '%s'", i, err.msg,
                  bad[i].want);
        if (!rc)
            mms_recorder_free(r);
    }
    struct mms_recorder *r = NULL;
    struct mms_err err;
    struct mms_sink_params odd = params((AVRational){0, 1});
    CHECK(mms_recorder_create(dir, "mms", 60, "mp4", &odd, &r, &err) == -EINVAL && !r);
}

/* 0 when a read-only directory, and one that would have to be made in
 * it, fail the recording (not the recorder) with the reason. */
static int read_only_fails_recording(const char *ro)
{
    struct mms_sink_params p = params((AVRational){1, 25});
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/sub", ro);
    const char *dirs[2] = {ro, sub}, *why[2] = {"not writable", strerror(EACCES)};
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        struct mms_recorder *r = NULL;
        struct mms_err err = {{0}};
        struct mms_record_status st = {0};
        int rc = mms_recorder_create(dirs[i], "mms", 60, "mp4", &p, &r, &err);
        CHECK_MSG(rc == 0 && r, "%s: rc %d: %s", dirs[i], rc, err.msg);
        if (r)
            mms_recorder_status(r, &st);
        CHECK_MSG(!st.recording && st.errors == 1 && strstr(st.error, dirs[i]) &&
                      strstr(st.error, why[i]),
                  "%s: error '%s'", dirs[i], st.error);
        bad |= !r || st.recording || !strstr(st.error, why[i]);
        mms_recorder_free(r);
    }
    return bad;
}

/* As root, permissions stop no write: the check runs as nobody in a child.
 * The directory sits in /tmp itself, since nobody cannot enter the test's
 * own 0700 directory. */
static void recorder_read_only_dir_fails_recording(void)
{
    char ro[] = "/tmp/mms-rec-ro-XXXXXX";
    CHECK(mkdtemp(ro) && chmod(ro, 0555) == 0);
    if (geteuid() != 0) {
        read_only_fails_recording(ro);
    } else {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(setgid(65534) || setuid(65534) ? 2 : read_only_fails_recording(ro));
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as nobody: status %d",
                  status);
    }
    CHECK(rmdir(ro) == 0);
}

/* After close: no more frames, no more starts, the status still reads. */
static void recorder_closed_refuses_requests(void)
{
    const char *dir = new_dir("closed");
    struct clip c;
    struct mms_recorder *r = recorder(dir, "mms", 60, "mp4", (AVRational){1, 25});
    if (!r || clip_open(&c))
        return;
    feed(r, &c, 5, 0, 1);
    mms_recorder_close(r);
    mms_recorder_close(r);
    CHECK(mms_recorder_request(r, 1) == -EPIPE);
    feed(r, &c, 5, 5, 1);
    struct mms_record_status st;
    mms_recorder_status(r, &st);
    CHECK(st.enabled && !st.recording && st.segments == 1 && st.frames == 5 && !st.file[0]);
    struct mms_err err;
    CHECK(mms_recorder_set_name(r, "../x", &err) == -EINVAL && strstr(err.msg, "../x"));
    mms_recorder_free(r);
    clip_close(&c);
}

/* ------------------------------------------------------------ options */

static void record_format_option(void)
{
    struct mms_pipeline_opts o;
    struct mms_err err;
    CHECK(mms_options_defaults(&o) == 0);
    CHECK(o.record_format && !strcmp(o.record_format, "mp4"));
    const struct mms_option *opt = mms_option_find("record-format");
    CHECK(opt && opt->type == MMS_OPT_STRING && !opt->runtime);
    CHECK(mms_option_set(&o, "record-format", "mkv", &err) == 0);
    char buf[64];
    mms_option_format(&o, opt, buf, sizeof(buf));
    CHECK(!strcmp(buf, "mkv"));
    static const char *const bad[] = {"avi", "MP4", "mp4 ", "", "ts"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_MSG(mms_option_set(&o, "record-format", bad[i], &err) == -EINVAL, "'%s'", bad[i]);
        CHECK(strstr(err.msg, "record-format"));
    }
    CHECK(!strcmp(o.record_format, "mkv"));
    mms_options_free(&o);
}

/* ------------------------------------------------------------ in a pipeline */

/* Options for a quick run: the fixture's small model. */
static void quick_opts(struct mms_pipeline_opts *o, const char *input, const char *mode)
{
    struct mms_err err = {{0}};
    CHECK_MSG(fixture_options(o, input, mode, NULL, &err) == 0, "%s", err.msg);
}

static struct mms_pipeline *create(const struct mms_pipeline_opts *o)
{
    struct mms_pipeline *p = NULL;
    struct mms_err err = {{0}};
    int rc = mms_pipeline_create(o, &p, &err);
    CHECK_MSG(rc == 0 && p, "%s", err.msg);
    return p;
}

static void run_to_end(struct mms_pipeline *p)
{
    struct mms_err err = {{0}};
    int damaged = -1;
    CHECK_MSG(mms_pipeline_start(p, &err) == 0, "%s", err.msg);
    CHECK_MSG(mms_pipeline_wait(p, &damaged, &err) == 0, "%s", err.msg);
    CHECK(damaged == 0);
}

/* A 5 s, 25 fps run with 2 s segments: three files named after the
 * pipeline, 125 frames in all, each file from 0. */
static void pipeline_records_segments(void)
{
    const char *dir = new_dir("pipe-rotate");
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=5", "offline");
    CHECK(mms_option_set(&o, "record-dir", dir, NULL) == 0);
    CHECK(mms_option_set(&o, "segment-seconds", "2", NULL) == 0);
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    CHECK(mms_pipeline_set_name(p, "or1") == 0);
    run_to_end(p);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    CHECK_MSG(c.written == 125, "%lld written", (long long)c.written);
    struct mms_record_status st;
    mms_pipeline_record_status(p, &st);
    CHECK(st.enabled && !st.recording && st.segments == 3 && st.frames == 125 && !st.errors);
    CHECK(!st.file[0] && st.bytes > 0);
    struct mms_err err;
    CHECK(mms_pipeline_record(p, 1, &err) == -EPIPE);
    mms_pipeline_destroy(p);
    struct listing l;
    list_segments(dir, "or1", ".mp4", &l);
    check_segments(&l, (const int[]){50, 50, 25}, 3);
}

static void pipeline_records_mkv(void)
{
    const char *dir = new_dir("pipe-mkv");
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=2", "offline");
    CHECK(mms_option_set(&o, "record-dir", dir, NULL) == 0);
    CHECK(mms_option_set(&o, "segment-seconds", "1", NULL) == 0);
    CHECK(mms_option_set(&o, "record-format", "mkv", NULL) == 0);
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    run_to_end(p);
    mms_pipeline_destroy(p);
    struct listing l;
    list_segments(dir, "mms", ".mkv", &l);
    check_segments(&l, (const int[]){25, 25}, 2);
}

/* A record_dir that does not exist yet is made and recorded into. */
static void pipeline_makes_missing_record_dir(void)
{
    const char *dir = tmp_path("pipe-made/state/rec");
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=1", "offline");
    CHECK(mms_option_set(&o, "record-dir", dir, NULL) == 0);
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    run_to_end(p);
    struct mms_record_status st;
    mms_pipeline_record_status(p, &st);
    CHECK_MSG(st.segments == 1 && st.frames == 25 && !st.errors, "error '%s'", st.error);
    mms_pipeline_destroy(p);
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 07777) == 0750);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    check_segments(&l, (const int[]){25}, 1);
}

/* A record_dir that cannot be made or used (a plain file in the way, or
 * the directory itself a file) stops the recording alone: the pipeline
 * starts and writes every frame to its outputs, and the recording's
 * status names the directory and the reason. */
static void pipeline_runs_without_unusable_record_dir(void)
{
    const char *file = tmp_path("not-a-dir");
    FILE *f = fopen(file, "w");
    CHECK(f && fclose(f) == 0);
    const char *dirs[2] = {tmp_path("not-a-dir/rec"), file};
    const char *outs[2] = {tmp_path("norec-0.mkv"), tmp_path("norec-1.mkv")};
    for (int i = 0; i < 2; i++) {
        struct mms_pipeline_opts o;
        quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=1", "offline");
        CHECK(mms_option_set(&o, "record-dir", dirs[i], NULL) == 0);
        CHECK(mms_option_set(&o, "output", outs[i], NULL) == 0);
        struct mms_pipeline *p = create(&o);
        mms_options_free(&o);
        if (!p)
            continue;
        struct mms_record_status st;
        mms_pipeline_record_status(p, &st);
        CHECK_MSG(st.enabled && !st.recording && st.errors == 1 && st.retrying &&
                      strstr(st.error, dirs[i]),
                  "%s: error '%s'", dirs[i], st.error);
        run_to_end(p);
        struct mms_pipeline_counters c;
        mms_pipeline_counters(p, &c);
        CHECK_MSG(c.written == 25 && !c.sink_errors, "%lld written",
                  (long long)c.written);
        mms_pipeline_record_status(p, &st);
        /* A slow run may have seen a retry, which fails the same way. */
        CHECK(!st.segments && !st.frames && st.errors >= 1 && !st.retrying);
        mms_pipeline_destroy(p);
        CHECK_MSG(probe_frames(outs[i]) == 25, "%s: %d frames", outs[i],
                  probe_frames(outs[i]));
    }
}

static void pipeline_without_record_dir_cannot_record(void)
{
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=1", "offline");
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    struct mms_err err = {{0}};
    CHECK(mms_pipeline_record(p, 1, &err) == -ENOTSUP && strstr(err.msg, "record_dir"));
    CHECK(mms_pipeline_record(p, 0, &err) == -ENOTSUP);
    struct mms_record_status st;
    memset(&st, 0xff, sizeof(st));
    mms_pipeline_record_status(p, &st);
    CHECK(!st.enabled && !st.recording && !st.segments && !st.frames && !st.file[0]);
    CHECK(mms_pipeline_set_name(p, "a/b") == -EINVAL);
    CHECK(mms_pipeline_set_name(p, "") == -EINVAL);
    CHECK(mms_pipeline_set_name(p, "or-1.b_2") == 0);
    mms_pipeline_destroy(p);
}

struct hook_counts {
    atomic_llong frames, bad, finished, frames_at_finish;
};

static void on_frame(void *opaque, const AVFrame *f, const struct mms_frame_meta *m)
{
    struct hook_counts *h = opaque;
    atomic_fetch_add(&h->frames, 1);
    if (!f || f->width != 320 || f->height != 240 || !m)
        atomic_fetch_add(&h->bad, 1);
}

static void on_finished(void *opaque)
{
    struct hook_counts *h = opaque;
    atomic_store(&h->frames_at_finish, atomic_load(&h->frames));
    atomic_fetch_add(&h->finished, 1);
}

/* The frame hook sees each written frame once; finished comes once, last. */
static void pipeline_hooks_see_every_frame(void)
{
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=2", "offline");
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    struct hook_counts h = {0};
    mms_pipeline_set_hooks(p, &(struct mms_pipeline_hooks){
                                  .frame = on_frame, .finished = on_finished, .opaque = &h});
    run_to_end(p);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    CHECK_MSG(c.written == 50 && atomic_load(&h.frames) == c.written,
              "hook saw %lld frames, %lld written", (long long)atomic_load(&h.frames),
              (long long)c.written);
    CHECK(atomic_load(&h.finished) == 1 && atomic_load(&h.frames_at_finish) == c.written);
    CHECK(!atomic_load(&h.bad));
    CHECK(c.finished && c.decode_errors == 0);
    mms_pipeline_destroy(p);
}

/* Started, the pipeline's name and hooks are fixed. */
static void pipeline_name_fixed_once_started(void)
{
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25:duration=1", "offline");
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    struct mms_err err;
    struct hook_counts h = {0};
    CHECK(mms_pipeline_start(p, &err) == 0);
    CHECK(mms_pipeline_set_name(p, "late") == -EBUSY);
    mms_pipeline_set_hooks(p, &(struct mms_pipeline_hooks){
                                  .frame = on_frame, .finished = on_finished, .opaque = &h});
    CHECK(mms_pipeline_wait(p, NULL, &err) == 0);
    CHECK(!atomic_load(&h.frames) && !atomic_load(&h.finished));
    mms_pipeline_destroy(p);
}

/* A clip as MPEG-TS whose middle packets carry garbage after intact
 * headers: the demuxer goes on, the decoder fails on those pictures. */
static const char *damaged_clip(void)
{
    const char *path = tmp_path("damaged.ts");
    struct clip c;
    struct mms_sink *sink = NULL;
    struct mms_err err = {{0}};
    struct mms_sink_params p = params((AVRational){1, 25});
    int rc = clip_open(&c);
    if (!rc)
        rc = mms_sink_open(NULL, path, &p, &sink, &err);
    for (int i = 0; !rc && i < 100; i++) {
        rc = av_frame_make_writable(c.frame) < 0 || mms_synth_frame(c.synth, i, c.frame, NULL, 0);
        c.frame->pts = i;
        if (!rc)
            rc = mms_sink_write(sink, c.frame, NULL, &err);
    }
    CHECK_MSG(!rc && mms_sink_close(sink, &err) == 0, "%s", err.msg);
    clip_close(&c);
    FILE *f = fopen(path, "r+b");
    int64_t size = size_of(path);
    CHECK(f && size > 188 * 100);
    if (!f)
        return path;
    uint32_t x = 12345;
    for (int64_t off = size / 188 * 2 / 5 * 188; off < size * 3 / 5; off += 188) {
        uint8_t pkt[188];
        fseek(f, off, SEEK_SET);
        if (fread(pkt, 1, sizeof(pkt), f) != sizeof(pkt))
            break;
        /* Only the middle of a PES: its header (and so the packet's
         * timing) stays whole, the picture data does not. */
        int start = 4 + ((pkt[3] & 0x20) ? 1 + pkt[4] : 0);
        if (pkt[0] != 0x47 || (pkt[1] & 0x40) || start >= 188)
            continue;
        for (int i = start; i < 188; i++)
            pkt[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
        fseek(f, off, SEEK_SET);
        fwrite(pkt, 1, sizeof(pkt), f);
    }
    CHECK(fclose(f) == 0);
    return path;
}

/* Decode errors show in the counters while the run is on, and the run is
 * reported damaged; a clean run counts none. */
static void pipeline_counts_decode_errors(void)
{
    const char *inputs[2] = {damaged_clip(), "lavfi:testsrc2=size=320x240:rate=25:duration=1"};
    for (int k = 0; k < 2; k++) {
        struct mms_pipeline_opts o;
        quick_opts(&o, inputs[k], "offline");
        struct mms_pipeline *p = create(&o);
        mms_options_free(&o);
        if (!p)
            continue;
        struct mms_err err;
        int damaged = -1, level = av_log_get_level();
        av_log_set_level(AV_LOG_QUIET); /* the decoder's complaints, expected */
        CHECK(mms_pipeline_start(p, &err) == 0);
        CHECK(mms_pipeline_wait(p, &damaged, &err) == 0);
        av_log_set_level(level);
        struct mms_pipeline_counters c;
        mms_pipeline_counters(p, &c);
        if (k == 0)
            CHECK_MSG(c.decode_errors > 0 && damaged == 1 && c.written > 0,
                      "damaged input: %lld decode errors, damaged %d, %lld written",
                      (long long)c.decode_errors, damaged, (long long)c.written);
        else
            CHECK(c.decode_errors == 0 && damaged == 0 && c.written == 25);
        mms_pipeline_destroy(p);
    }
}

/* Waits up to 15 s for cond on the recording's status. */
#define WAIT_FOR(p, st, cond)                                                 \
    do {                                                                      \
        for (int w_ = 0; w_ < 1500; w_++) {                                   \
            mms_pipeline_record_status(p, &st);                               \
            if (cond)                                                         \
                break;                                                        \
            sleep_ms(10);                                                     \
        }                                                                     \
        CHECK_MSG(cond, "timed out waiting for %s", #cond);                   \
    } while (0)

struct controller {
    struct mms_pipeline *p;
    int rc_off, rc_on;
    int64_t frames_stopped, frames_restarted;
};

/* The daemon's side: another thread that stops and restarts recording. */
static void *control_main(void *arg)
{
    struct controller *ctl = arg;
    struct mms_record_status st;
    struct mms_err err;
    WAIT_FOR(ctl->p, st, st.frames >= 10);
    ctl->rc_off = mms_pipeline_record(ctl->p, 0, &err);
    WAIT_FOR(ctl->p, st, !st.recording && !st.file[0]);
    ctl->frames_stopped = st.frames;
    sleep_ms(200); /* frames flow on, unrecorded */
    ctl->rc_on = mms_pipeline_record(ctl->p, 1, &err);
    WAIT_FOR(ctl->p, st, st.segments == 2 && st.frames >= ctl->frames_stopped + 10);
    ctl->frames_restarted = st.frames;
    mms_pipeline_stop(ctl->p);
    return NULL;
}

/* Live, paced at 25 fps: stop and start from another thread give two
 * whole files, and frames written while stopped are in neither. */
static void pipeline_record_stop_start_live(void)
{
    const char *dir = new_dir("pipe-live");
    struct mms_pipeline_opts o;
    quick_opts(&o, "lavfi:testsrc2=size=320x240:rate=25,realtime", "live");
    CHECK(mms_option_set(&o, "record-dir", dir, NULL) == 0);
    struct mms_pipeline *p = create(&o);
    mms_options_free(&o);
    if (!p)
        return;
    struct mms_err err;
    struct controller ctl = {.p = p, .rc_off = 1, .rc_on = 1};
    pthread_t th;
    CHECK(mms_pipeline_start(p, &err) == 0);
    CHECK(pthread_create(&th, NULL, control_main, &ctl) == 0);
    pthread_join(th, NULL);
    CHECK(mms_pipeline_wait(p, NULL, &err) == 0);
    CHECK(ctl.rc_off == 0 && ctl.rc_on == 0);
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    struct mms_record_status st;
    mms_pipeline_record_status(p, &st);
    CHECK(st.segments == 2 && !st.errors && !st.recording);
    CHECK_MSG(st.frames < c.written, "recorded %lld of %lld", (long long)st.frames,
              (long long)c.written);
    mms_pipeline_destroy(p);
    struct listing l;
    list_segments(dir, "mms", ".mp4", &l);
    CHECK(l.n == 2);
    int64_t sum = 0;
    for (int i = 0; i < l.n; i++) {
        int n = probe_frames(l.path[i]);
        CHECK_MSG(n > 0, "%s: %d frames", l.name[i], n);
        CHECK(fabs(probe_first_time(l.path[i])) < 0.05);
        sum += n;
    }
    CHECK(l.n < 1 || probe_frames(l.path[0]) == ctl.frames_stopped);
    CHECK_MSG(sum == st.frames, "files %lld frames, status %lld", (long long)sum,
              (long long)st.frames);
}

MMS_TESTS(T(recorder_rotates_on_output_time), T(recorder_writes_mkv),
          T(recorder_counts_bytes_as_written), T(recorder_counts_rewritten_matroska_bytes_once),
          T(recorder_does_not_count_a_file_put_in_its_place),
          T(recorder_counts_a_deleted_segment_as_written),
          T(shared_encoder_segments_end_on_time),
          T(shared_encoder_start_waits_one_frame_for_a_keyframe),
          T(shared_encoder_of_another_time_base_is_refused),
          T(an_ended_recorder_takes_no_packet_and_no_start), T(a_closed_recorder_is_not_ended),
          T(recorder_never_overwrites), T(recorder_skips_links_planted_at_segment_names),
          T(recorder_never_writes_through_a_swapped_in_link),
          T(recorder_stop_finalises_segment),
          T(recorder_start_opens_new_segment), T(recorder_requests_from_another_thread),
          T(recorder_failure_stops_then_start_retries), T(recorder_makes_missing_dir),
          T(recorder_unmakeable_dir_fails_then_start_makes_it),
          T(recorder_dir_that_is_a_file_fails),
          T(recorder_full_disk_keeps_what_was_written),
          T(recorder_retries_a_vanished_directory_without_making_it),
          T(recorder_stop_ends_the_retries), T(recorder_stop_with_a_failed_close_stays_stopped), T(recorder_resumes_when_a_full_disk_has_room),
          T(recorder_refuses_bad_settings),
          T(recorder_read_only_dir_fails_recording),
          T(recorder_closed_refuses_requests), T(record_format_option),
          T(pipeline_records_segments), T(pipeline_records_mkv),
          T(pipeline_makes_missing_record_dir), T(pipeline_runs_without_unusable_record_dir),
          T(pipeline_without_record_dir_cannot_record),
          T(pipeline_hooks_see_every_frame), T(pipeline_name_fixed_once_started),
          T(pipeline_counts_decode_errors),
          T(pipeline_record_stop_start_live))
