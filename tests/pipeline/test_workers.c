/* Offline on several cores, the pipeline runs one single-threaded network
 * per inference thread, each on frames of its own (pipeline/internal.h).
 * What comes out must not tell: the same masks, in the same order, as one
 * network gives, smoothing included; live keeps one network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "harness.h"
#include "fixture.h"

#define INPUT "lavfi:testsrc2=size=160x120:rate=25:duration=2"

/* Runs INPUT to `null` with --meta and returns the meta file's path. */
static const char *run_meta(const char *name, const char *mode, const char *threads,
                            const char *smooth)
{
    static char path[4][512];
    static int k;
    char *meta = path[k++ % 4];
    snprintf(meta, sizeof(path[0]), "%s/%s.jsonl", mms_test_tmpdir(), name);
    struct mms_pipeline *p = fixture_create(
        INPUT, mode,
        /* tta off: a flipped mask of the fixture's clip hardly changes
         * from frame to frame, and the comparison needs changes. */
        (const char *const[]){"output", "null", "meta", meta, "threads", threads, "smooth",
                              smooth, "tta", "off", NULL});
    struct mms_err err = {{0}};
    int rc = p ? mms_pipeline_start(p, &err) : -1;
    rc = rc ? rc : mms_pipeline_wait(p, NULL, &err);
    CHECK_MSG(rc == 0, "%s: %s", name, err.msg);
    mms_pipeline_destroy(p);
    return meta;
}

/* Each frame's line without its stage times: what the frame and its mask
 * are, not how long they took. */
static int read_lines(const char *path, char lines[][256], int max)
{
    FILE *f = fopen(path, "r");
    char buf[2048];
    int n = 0;
    while (f && n < max && fgets(buf, sizeof(buf), f)) {
        char *ms = strstr(buf, ",\"ms\":");
        if (ms)
            *ms = 0;
        snprintf(lines[n++], 256, "%.255s", buf);
    }
    if (f)
        fclose(f);
    return n;
}

static void same_frames(const char *one, const char *several)
{
    static char a[64][256], b[64][256];
    int na = read_lines(one, a, 64), nb = read_lines(several, b, 64);
    CHECK_MSG(na == 50 && nb == 50, "%d and %d frames, 50 each expected", na, nb);
    int differ = 0, distinct = 0;
    for (int i = 0; i < na && i < nb; i++) {
        if (strcmp(a[i], b[i]) && !differ++)
            fprintf(stderr, "frame %d:\n  one:     %s\n  several: %s\n", i, a[i], b[i]);
        distinct += i && strcmp(strstr(a[i], "tool_fraction"), strstr(a[i - 1], "tool_fraction"));
    }
    CHECK_MSG(differ == 0, "%d of %d frames differ", differ, na);
    /* the comparison means something only if the masks change */
    CHECK_MSG(distinct > 10, "only %d mask changes in %d frames", distinct, na);
}

static void two_networks_give_one_networks_masks_in_order(void)
{
    same_frames(run_meta("one", "offline", "1", "0"), run_meta("two", "offline", "2", "0"));
}

/* Smoothing runs in frame order whatever network finished first. */
static void two_networks_smooth_in_frame_order(void)
{
    same_frames(run_meta("one-smooth", "offline", "1", "0.6"),
                run_meta("two-smooth", "offline", "2", "0.6"));
}

struct network_threads {
    int infer, post;
};

static void count_network_threads(void *ctx)
{
    struct network_threads *n = ctx;
    n->infer = fixture_thread_nices("mms-infer", NULL, 0);
    n->post = fixture_thread_nices("mms-post", NULL, 0);
}

static void network_threads(const char *mode, const char *threads, int *infer, int *post)
{
    struct network_threads n = {-1, -1};
    fixture_while_running(
        fixture_create("lavfi:testsrc2=size=160x120:rate=25:duration=60", mode,
                       (const char *const[]){"output", "null", "threads", threads, NULL}),
        count_network_threads, &n);
    *infer = n.infer;
    *post = n.post;
}

static void offline_runs_a_network_per_thread(void)
{
    int infer, post;
    network_threads("offline", "2", &infer, &post);
    CHECK_MSG(infer == 2 && post == 1, "offline, 2 threads: %d mms-infer, %d mms-post", infer,
              post);
}

static void offline_one_thread_runs_one_network(void)
{
    int infer, post;
    network_threads("offline", "1", &infer, &post);
    CHECK_MSG(infer == 1 && post == 0, "offline, 1 thread: %d mms-infer, %d mms-post", infer,
              post);
}

/* Live, each mask must come as soon as it can: one network, on every
 * thread (OpenMP's take the infer thread's name), takes the latest frame. */
static void live_runs_one_network(void)
{
    int infer, post;
    network_threads("live", "2", &infer, &post);
    CHECK_MSG(infer >= 1 && post == 0, "live, 2 threads: %d mms-infer, %d mms-post", infer,
              post);
}

__attribute__((constructor)) static void quiet(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

MMS_TESTS(T(two_networks_give_one_networks_masks_in_order),
          T(two_networks_smooth_in_frame_order), T(offline_runs_a_network_per_thread),
          T(offline_one_thread_runs_one_network), T(live_runs_one_network))
