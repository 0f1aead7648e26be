/* A pipeline's browser preview (daemon/preview.c) through mmsd's handler:
 * no snapshot before a frame, a frame in and a JPEG out that decodes, the
 * encode on the preview's own thread (mmsd_preview_frame only hands the
 * frame on), a limit on viewers, and one on all previews together that
 * leaves connections to the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/frame.h>

#include "api_fixture.h"
#include "daemon/preview.h"
#include "harness.h"
#include "io/image.h"
#include "overlay/compose.h"
#include "pipeline/stats.h"

#define MAX_VIEWERS 16 /* daemon/preview.c */

static struct fixture fx;

static void start(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.previews = 1;
    fixture_add_pipe(&fx, "cam1", MMSD_PIPE_RUNNING);
    CHECK(fixture_start(&fx) == 0);
}

static struct mmsd_preview *preview(void)
{
    return fx.d.pipes->preview;
}

static AVFrame *grey_frame(void)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = 320;
    f->height = 240;
    CHECK(av_frame_get_buffer(f, 0) == 0);
    mms_fill_frame(f, 0x808080);
    return f;
}

static int wait_encoded(int64_t n)
{
    for (int i = 0; i < 100 && mmsd_preview_encoded(preview()) < n; i++)
        nanosleep(&(struct timespec){0, 50000000L}, NULL);
    return mmsd_preview_encoded(preview()) >= n;
}

static int snapshot(char **body, size_t *len)
{
    return fixture_request(&fx, "GET", "/preview/cam1.jpg", NULL, body, len);
}

/* Before any frame there is nothing to show: 503, saying why. */
static void no_snapshot_before_a_frame(void)
{
    start();
    char *body;
    size_t len;
    CHECK_EQ(snapshot(&body, &len), 503);
    CHECK_MSG(body && strstr(body, "no frame from 'cam1' yet"), "%s", body ? body : "");
    free(body);
    fixture_stop(&fx);
}

/* A frame in, a JPEG out: the snapshot decodes at the frame's size. */
static void a_frame_makes_a_snapshot_that_decodes(void)
{
    start();
    AVFrame *f = grey_frame();
    mmsd_preview_frame(preview(), f);
    av_frame_free(&f); /* the preview holds its own reference */
    CHECK(wait_encoded(1));
    char *body;
    size_t len;
    CHECK_EQ(snapshot(&body, &len), 200);
    CHECK_MSG(body && len > 2 && (uint8_t)body[0] == 0xff && (uint8_t)body[1] == 0xd8,
              "not a JPEG (%zu bytes)", len);
    char path[512];
    snprintf(path, sizeof(path), "%s/snapshot.jpg", mms_test_tmpdir());
    FILE *out = fopen(path, "wb");
    if (out && body) {
        fwrite(body, 1, len, out);
        fclose(out);
    }
    struct mms_image img = {0};
    struct mms_err err = {{0}};
    CHECK_MSG(mms_image_read(path, MMS_IMAGE_RGB24, &img, &err) == 0, "%s", err.msg);
    CHECK_EQ(img.w, 320);
    CHECK_EQ(img.h, 240);
    if (img.data)
        CHECK_MSG(abs(img.data[0] - 0x80) < 8, "pixel %d", img.data[0]);
    mms_image_free(&img);
    free(body);
    fixture_stop(&fx);
}

/* The caller's thread never encodes: with the encoder held, a frame
 * handed on is not encoded and there is no snapshot; released, it is. */
static void frame_hands_on_without_encoding(void)
{
    start();
    mmsd_preview_hold(preview(), 1);
    AVFrame *f = grey_frame();
    mmsd_preview_frame(preview(), f);
    av_frame_free(&f);
    CHECK_EQ(mmsd_preview_encoded(preview()), 0);
    char *body;
    size_t len;
    CHECK_EQ(snapshot(&body, &len), 503);
    free(body);
    mmsd_preview_hold(preview(), 0);
    CHECK(wait_encoded(1));
    CHECK_EQ(snapshot(&body, &len), 200);
    free(body);
    fixture_stop(&fx);
}

/* Up to MAX_VIEWERS streams; one more is turned away with 503. */
static void too_many_viewers_are_refused(void)
{
    start();
    int fds[MAX_VIEWERS];
    for (int i = 0; i < MAX_VIEWERS; i++)
        CHECK_EQ(fixture_open_stream(&fx, "/preview/cam1.mjpeg", &fds[i]), 200);
    char *body;
    size_t len;
    CHECK_EQ(fixture_request(&fx, "GET", "/preview/cam1.mjpeg", NULL, &body, &len), 503);
    CHECK_MSG(body && strstr(body, "too many viewers"), "%s", body ? body : "");
    free(body);
    for (int i = 0; i < MAX_VIEWERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    fixture_stop(&fx);
}

/* ---- streams leave connections to the API ---- */

#define PIPES 4 /* their viewers together: as many as mmsd's 64 connections */
#define STREAM_SHARE 56 /* daemon/http.c: 8 of the 64 are kept for requests */

static void start_pipes(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.previews = 1;
    fx.d.ready = 1;
    for (int i = 0; i < PIPES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "cam%d", i + 1);
        fixture_add_pipe(&fx, name, MMSD_PIPE_RUNNING);
    }
    CHECK(fixture_start(&fx) == 0);
}

/* Every pipeline's maximum of viewers; how many streams were let in. */
static int open_every_viewer(int *fds)
{
    int ok = 0;
    for (int i = 0; i < PIPES * MAX_VIEWERS; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/preview/cam%d.mjpeg", i / MAX_VIEWERS + 1);
        ok += fixture_open_stream(&fx, path, &fds[i]) == 200;
    }
    return ok;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Status pages open in enough browsers: /healthz and /metrics still answer. */
static void previews_leave_room_for_the_api(void)
{
    int fds[PIPES * MAX_VIEWERS];
    start_pipes();
    open_every_viewer(fds);
    for (struct mmsd_pipe *pp = fx.d.pipes; pp; pp = pp->next)
        atomic_store(&pp->last_frame_ms, (long long)mms_now_ms()); /* healthy */
    char *body;
    size_t len;
    CHECK_EQ(fixture_request(&fx, "GET", "/healthz", NULL, &body, &len), 200);
    free(body);
    CHECK_EQ(fixture_request(&fx, "GET", "/metrics", NULL, &body, &len), 200);
    free(body);
    close_all(fds, PIPES * MAX_VIEWERS);
    fixture_stop(&fx);
}

/* Beyond the streams' share a viewer gets 503, saying why. */
static void previews_beyond_the_stream_share_are_refused(void)
{
    int fds[PIPES * MAX_VIEWERS];
    start_pipes();
    CHECK_EQ(open_every_viewer(fds), STREAM_SHARE);
    char *body;
    size_t len;
    CHECK_EQ(fixture_request(&fx, "GET", "/preview/cam4.mjpeg", NULL, &body, &len), 503);
    CHECK_MSG(body && strstr(body, "too many preview streams"), "%s", body ? body : "");
    free(body);
    close_all(fds, PIPES * MAX_VIEWERS);
    fixture_stop(&fx);
}

/* Not a preview name: 404. */
static void unknown_previews_are_404(void)
{
    start();
    char *body;
    size_t len;
    CHECK_EQ(fixture_request(&fx, "GET", "/preview/nope.jpg", NULL, &body, &len), 404);
    free(body);
    CHECK_EQ(fixture_request(&fx, "GET", "/preview/cam1.png", NULL, &body, &len), 404);
    free(body);
    fixture_stop(&fx);
}

MMS_TESTS(T(no_snapshot_before_a_frame), T(a_frame_makes_a_snapshot_that_decodes),
          T(frame_hands_on_without_encoding), T(too_many_viewers_are_refused),
          T(unknown_previews_are_404), T(previews_leave_room_for_the_api),
          T(previews_beyond_the_stream_share_are_refused))
