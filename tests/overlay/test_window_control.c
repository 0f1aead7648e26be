/* The window's control() (io/sink.h), really under Xvfb (tests/xvfb_run.sh
 * runs it with SDL's software renderer): what is on screen is read back
 * from the window itself. Paused, it keeps showing the frozen frame while
 * frames are written; resumed, it shows them again; a redraw repaints the
 * last frame over whatever was drawn on top; keys and the close button
 * come back as events, once each; requests it does not know are -ENOTSUP. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>
#include <libavutil/frame.h>

#include "harness.h"
#include "overlay/compose.h"
#include "overlay/window.h"

#define W 320
#define H 180

enum colour { OTHER, RED, BLUE, BLACK, GREEN };

static AVFrame *solid(uint32_t rgb)
{
    AVFrame *f = av_frame_alloc();
    CHECK(f);
    if (!f)
        return NULL;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = W;
    f->height = H;
    CHECK(av_frame_get_buffer(f, 0) == 0);
    mms_fill_frame(f, rgb);
    return f;
}

static struct mms_sink *open_window(void)
{
    struct mms_sink_params p = {.width = W, .height = H, .time_base = {1, 25},
                                .frame_rate = {25, 1}, .title = "control test"};
    struct mms_sink *s = NULL;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_sink_open(&mms_sink_window, "window", &p, &s, &err) == 0, "%s", err.msg);
    return s;
}

/* The colour at the middle of the window, as presented. */
static enum colour shown(void)
{
    SDL_Window *win = NULL;
    for (Uint32 id = 1; id < 64 && !win; id++)
        win = SDL_GetWindowFromID(id);
    SDL_Renderer *ren = win ? SDL_GetRenderer(win) : NULL;
    CHECK(ren);
    if (!ren)
        return OTHER;
    int ow = 0, oh = 0;
    SDL_GetRendererOutputSize(ren, &ow, &oh);
    SDL_Rect px = {ow / 2, oh / 2, 1, 1};
    uint8_t rgb[4] = {0};
    CHECK_MSG(SDL_RenderReadPixels(ren, &px, SDL_PIXELFORMAT_RGB24, rgb, 3) == 0, "%s",
              SDL_GetError());
    int r = rgb[0], g = rgb[1], b = rgb[2];
    if (r > 180 && g < 80 && b < 80)
        return RED;
    if (b > 180 && r < 80 && g < 80)
        return BLUE;
    if (g > 180 && r < 80 && b < 80)
        return GREEN;
    if (r < 20 && g < 20 && b < 20)
        return BLACK;
    return OTHER;
}

static int write_frame(struct mms_sink *s, AVFrame *f, int64_t pts)
{
    struct mms_err err = {{0}};
    struct mms_frame_meta m = {.fps = 25};
    f->pts = pts;
    int rc = mms_sink_write(s, f, &m, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

static int control(struct mms_sink *s, int request, void *data)
{
    struct mms_err err = {{0}};
    return mms_sink_control(s, request, data, &err);
}

static unsigned events(struct mms_sink *s)
{
    unsigned ev = ~0u;
    CHECK_EQ(control(s, MMS_SINK_CTRL_CHECK_EVENTS, &ev), 0);
    return ev;
}

static void push_key(SDL_Keycode key, int repeat)
{
    SDL_Event e = {0};
    e.type = SDL_KEYDOWN;
    e.key.state = SDL_PRESSED;
    e.key.repeat = (Uint8)repeat;
    e.key.keysym.sym = key;
    CHECK(SDL_PushEvent(&e) == 1);
}

static void frames_are_shown(void)
{
    struct mms_sink *s = open_window();
    AVFrame *red = solid(0xff0000), *blue = solid(0x0000ff);
    if (s && red && blue) {
        write_frame(s, red, 0);
        CHECK_EQ(shown(), RED);
        write_frame(s, blue, 1);
        CHECK_EQ(shown(), BLUE);
    }
    av_frame_free(&red);
    av_frame_free(&blue);
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void pause_keeps_the_frozen_frame_while_frames_come(void)
{
    struct mms_sink *s = open_window();
    AVFrame *red = solid(0xff0000), *blue = solid(0x0000ff);
    if (s && red && blue) {
        write_frame(s, red, 0);
        CHECK_EQ(control(s, MMS_SINK_CTRL_PAUSE, NULL), 0);
        for (int i = 1; i <= 5; i++)
            CHECK_EQ(write_frame(s, blue, i), 0);
        CHECK_EQ(shown(), RED);
        /* A second pause changes nothing. */
        CHECK_EQ(control(s, MMS_SINK_CTRL_PAUSE, NULL), 0);
        write_frame(s, blue, 6);
        CHECK_EQ(shown(), RED);
    }
    av_frame_free(&red);
    av_frame_free(&blue);
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void resume_shows_new_frames(void)
{
    struct mms_sink *s = open_window();
    AVFrame *red = solid(0xff0000), *blue = solid(0x0000ff);
    if (s && red && blue) {
        write_frame(s, red, 0);
        CHECK_EQ(control(s, MMS_SINK_CTRL_PAUSE, NULL), 0);
        write_frame(s, blue, 1);
        CHECK_EQ(control(s, MMS_SINK_CTRL_RESUME, NULL), 0);
        /* Still the frozen frame until the next one comes. */
        CHECK_EQ(shown(), RED);
        write_frame(s, blue, 2);
        CHECK_EQ(shown(), BLUE);
        /* A resume while not paused changes nothing. */
        CHECK_EQ(control(s, MMS_SINK_CTRL_RESUME, NULL), 0);
        write_frame(s, red, 3);
        CHECK_EQ(shown(), RED);
    }
    av_frame_free(&red);
    av_frame_free(&blue);
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

/* Something else drew over the window (here the test, on its renderer):
 * a redraw puts the last frame back. */
static void redraw_repaints_the_last_frame(void)
{
    struct mms_sink *s = open_window();
    AVFrame *red = solid(0xff0000);
    if (s && red) {
        write_frame(s, red, 0);
        SDL_Window *win = NULL;
        for (Uint32 id = 1; id < 64 && !win; id++)
            win = SDL_GetWindowFromID(id);
        SDL_Renderer *ren = win ? SDL_GetRenderer(win) : NULL;
        CHECK(ren);
        if (ren) {
            SDL_SetRenderDrawColor(ren, 0, 255, 0, 255);
            SDL_RenderClear(ren);
            SDL_RenderPresent(ren);
            CHECK_EQ(shown(), GREEN);
        }
        CHECK_EQ(control(s, MMS_SINK_CTRL_REDRAW, NULL), 0);
        CHECK_EQ(shown(), RED);
    }
    av_frame_free(&red);
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void redraw_before_any_frame_is_black(void)
{
    struct mms_sink *s = open_window();
    if (s) {
        CHECK_EQ(control(s, MMS_SINK_CTRL_REDRAW, NULL), 0);
        CHECK_EQ(shown(), BLACK);
    }
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void keys_come_back_as_events_once(void)
{
    struct mms_sink *s = open_window();
    if (s) {
        CHECK_EQ(events(s), 0);
        push_key(SDLK_SPACE, 0);
        CHECK_EQ(events(s), MMS_SINK_EVENT_PAUSE);
        CHECK_EQ(events(s), 0);
        push_key(SDLK_o, 0);
        CHECK_EQ(events(s), MMS_SINK_EVENT_NEXT_STYLE);
        push_key(SDLK_q, 0);
        CHECK_EQ(events(s), MMS_SINK_EVENT_CLOSED);
        push_key(SDLK_ESCAPE, 0);
        CHECK_EQ(events(s), MMS_SINK_EVENT_CLOSED);
    }
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

/* A held key repeats, and two presses between checks cancel out: neither
 * flickers the pause. An unbound key is nothing. */
static void repeats_and_double_presses_are_no_pause(void)
{
    struct mms_sink *s = open_window();
    if (s) {
        push_key(SDLK_SPACE, 1);
        push_key(SDLK_o, 1);
        push_key(SDLK_x, 0);
        CHECK_EQ(events(s), 0);
        push_key(SDLK_SPACE, 0);
        push_key(SDLK_SPACE, 0);
        CHECK_EQ(events(s), 0);
    }
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void closing_the_window_is_an_event(void)
{
    struct mms_sink *s = open_window();
    if (s) {
        SDL_Event e = {.type = SDL_QUIT};
        CHECK(SDL_PushEvent(&e) == 1);
        CHECK_EQ(events(s), MMS_SINK_EVENT_CLOSED);
        CHECK_EQ(events(s), 0);
    }
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

static void unknown_requests_are_not_supported(void)
{
    struct mms_sink *s = open_window();
    AVFrame *red = solid(0xff0000);
    if (s && red) {
        write_frame(s, red, 0);
        unsigned ev = 0;
        CHECK_EQ(control(s, -1, NULL), -ENOTSUP);
        CHECK_EQ(control(s, 1000, &ev), -ENOTSUP);
        /* Nothing changed: not paused, still drawing. */
        CHECK_EQ(shown(), RED);
        struct mms_err err = {{0}};
        CHECK_EQ(mms_sink_control(s, MMS_SINK_CTRL_CHECK_EVENTS, NULL, &err), -EINVAL);
        CHECK(err.msg[0] != 0);
    }
    av_frame_free(&red);
    CHECK_EQ(mms_sink_close(s, NULL), 0);
}

MMS_TESTS(T(frames_are_shown), T(pause_keeps_the_frozen_frame_while_frames_come),
          T(resume_shows_new_frames), T(redraw_repaints_the_last_frame),
          T(redraw_before_any_frame_is_black), T(keys_come_back_as_events_once),
          T(repeats_and_double_presses_are_no_pause), T(closing_the_window_is_an_event),
          T(unknown_requests_are_not_supported))
