/*
 * window_demo [SECONDS [READY_FILE]]: shows a 320x180 grey picture with a
 * green (0x00ff66) rectangle filled at alpha 1 and the HUD, at 25 fps for
 * SECONDS (default 3), through the window sink driver alone. READY_FILE
 * is created once frames have been presented, so a test knows when to
 * take its screenshot. Exits 1 with the driver's message when no window
 * can be opened.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/frame.h>

#include "overlay/compose.h"
#include "overlay/window.h"

#define W 320
#define H 180
#define FPS 25

static int quit;

/* What the user did since the last frame, as a pipeline would ask. */
static int check_events(struct mms_sink *sink, struct mms_err *err)
{
    unsigned ev = 0;
    int rc = mms_sink_window.control(sink, MMS_SINK_CTRL_CHECK_EVENTS, &ev, err);
    if (ev & MMS_SINK_EVENT_CLOSED)
        quit = 1;
    if (ev)
        printf("events: %s%s%s\n", ev & MMS_SINK_EVENT_CLOSED ? " closed" : "",
               ev & MMS_SINK_EVENT_PAUSE ? " pause" : "",
               ev & MMS_SINK_EVENT_NEXT_STYLE ? " next-style" : "");
    return rc;
}

static int touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    return fclose(f) ? -errno : 0;
}

/* The picture every frame shows: grey, with the mask's rectangle filled. */
static AVFrame *make_picture(uint8_t *mask)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = W;
    f->height = H;
    if (av_frame_get_buffer(f, 0) < 0) {
        av_frame_free(&f);
        return NULL;
    }
    mms_fill_frame(f, 0x808080);
    for (int y = 44; y < 136; y++)
        memset(mask + y * W + 80, 255, 160);
    struct mms_style st = {MMS_STYLE_FILL, 1.0f, 0x00ff66};
    mms_compose(f, mask, W, &st);
    return f;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    const char *ready = argc > 2 ? argv[2] : NULL;
    static uint8_t mask[W * H];
    struct mms_err err = {{0}};
    int ret = 1;

    AVFrame *frame = make_picture(mask);
    /* The driver directly, not mms_sink_open(): this exercises the window
     * alone, as the pipeline's sink layer would call it. */
    struct mms_sink sink = {&mms_sink_window, calloc(1, mms_sink_window.priv_size), NULL};
    if (!frame || !sink.priv) {
        fprintf(stderr, "window_demo: out of memory\n");
        goto fail;
    }
    struct mms_sink_params p = {
        .width = W, .height = H, .time_base = {1, FPS}, .frame_rate = {FPS, 1},
        .title = "mms window demo",
    };
    if (mms_sink_window.open(&sink, NULL, &p, &err) < 0) {
        fprintf(stderr, "window_demo: %s\n", err.msg);
        goto fail;
    }
    int frames = (int)(seconds * FPS);
    for (int i = 0; i < frames && !quit; i++) {
        struct mms_frame_meta m = {.fps = FPS, .infer_ms = 19.6, .mask_age_ms = 40,
                                   .no_signal = 0};
        frame->pts = i;
        if (mms_sink_window.write(&sink, frame, &m, &err) < 0 ||
            check_events(&sink, &err) < 0) {
            fprintf(stderr, "window_demo: %s\n", err.msg);
            mms_sink_window.close(&sink, &err);
            goto fail;
        }
        if (i == 5 && ready && touch(ready) < 0) {
            fprintf(stderr, "window_demo: %s: %s\n", ready, strerror(errno));
            mms_sink_window.close(&sink, &err);
            goto fail;
        }
        nanosleep(&(struct timespec){0, 1000000000L / FPS}, NULL);
    }
    if (mms_sink_window.close(&sink, &err) < 0) {
        fprintf(stderr, "window_demo: %s\n", err.msg);
        goto fail;
    }
    ret = 0;
fail:
    free(sink.priv);
    av_frame_free(&frame);
    return ret;
}
