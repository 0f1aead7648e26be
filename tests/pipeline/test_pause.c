/* Pause through the pipeline (pipeline/pipeline.h), with a real window
 * under Xvfb (tests/xvfb_run.sh) beside a null output: a pause reaches
 * every output's control(), the window takes it (its status says paused)
 * and null says -ENOTSUP, which is no error; live, frames still reach both
 * while paused. The window's space key and close button act on the
 * pipeline through its events: closing it stops the pipeline, or, set to
 * close alone (as mmsd is), closes the window only while the recording
 * and null go on. Offline, the frames wait while the window is paused,
 * and nothing holds a file when no output takes the pause. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <SDL.h>

#include "harness.h"
#include "fixture.h"

/* Outputs in order: null, then the window. */
#define NUL 0
#define WIN 1

static struct mms_pipeline *start(const char *mode, int window, int seconds)
{
    char input[128];
    snprintf(input, sizeof(input), "lavfi:testsrc2=size=160x96:rate=25:duration=%d", seconds);
    return fixture_start(fixture_create(
        input, mode, (const char *const[]){"output", "null", "window", window ? "yes" : "no", NULL}));
}

static struct mms_pipeline_counters counters(struct mms_pipeline *p)
{
    struct mms_pipeline_counters c;
    mms_pipeline_counters(p, &c);
    return c;
}

/* Up to ms for output i's paused to be `want`. */
static int wait_paused(struct mms_pipeline *p, int i, int want, int ms)
{
    for (int t = 0; t < ms && counters(p).outputs[i].paused != want; t += 10)
        fixture_sleep_ms(10);
    return counters(p).outputs[i].paused == want;
}

static int wait_finished(struct mms_pipeline *p, int ms)
{
    for (int t = 0; t < ms && !counters(p).finished; t += 10)
        fixture_sleep_ms(10);
    return counters(p).finished;
}

static int wait_written(struct mms_pipeline *p, int64_t n, int ms)
{
    for (int t = 0; t < ms && counters(p).written < n; t += 10)
        fixture_sleep_ms(10);
    return counters(p).written >= n;
}

static void finish(struct mms_pipeline *p)
{
    if (!p)
        return;
    mms_pipeline_stop(p);
    struct mms_err err = {{0}};
    CHECK_MSG(mms_pipeline_wait(p, NULL, &err) == 0, "%s", err.msg);
    mms_pipeline_destroy(p);
}

static void push(SDL_Event e)
{
    CHECK(SDL_PushEvent(&e) == 1);
}

static void space(void)
{
    SDL_Event e = {0};
    e.type = SDL_KEYDOWN;
    e.key.state = SDL_PRESSED;
    e.key.keysym.sym = SDLK_SPACE;
    push(e);
}

/* A run with the window, paused once n frames are out and the window
 * says it is; NULL if it did not start. */
static struct mms_pipeline *start_paused(const char *mode, int seconds, int n)
{
    struct mms_pipeline *p = start(mode, 1, seconds);
    if (!p)
        return NULL;
    CHECK(wait_written(p, n, 5000));
    CHECK_EQ(mms_pipeline_pause(p, 1), 0);
    CHECK(wait_paused(p, WIN, 1, 2000));
    return p;
}

/* Live: the window takes the pause, null does not and is not failed by
 * it, and frames keep reaching both; a resume undoes it. */
static void live_pause_goes_to_every_output(void)
{
    struct mms_pipeline *p = start_paused("live", 30, 5);
    if (!p)
        return;
    /* null is asked on its own thread, maybe a little later. */
    for (int t = 0; t < 2000 && counters(p).outputs[NUL].controls_pending; t += 10)
        fixture_sleep_ms(10);
    struct mms_pipeline_counters a = counters(p);
    CHECK_EQ(a.paused, 1);
    CHECK_EQ(a.outputs[NUL].paused, 0);
    CHECK_EQ(a.outputs[NUL].controls_pending, 0);
    fixture_sleep_ms(400);
    struct mms_pipeline_counters b = counters(p);
    CHECK_MSG(b.outputs[WIN].written > a.outputs[WIN].written,
              "the paused window took no frames: %lld then %lld",
              (long long)a.outputs[WIN].written, (long long)b.outputs[WIN].written);
    CHECK(b.outputs[NUL].written > a.outputs[NUL].written);
    CHECK_EQ(b.sink_errors, 0);
    CHECK_EQ(b.sinks_down, 0);
    CHECK_EQ(mms_pipeline_pause(p, 0), 0);
    CHECK(wait_paused(p, WIN, 0, 2000));
    CHECK_EQ(counters(p).paused, 0);
    finish(p);
}

/* Without a window nothing takes the pause: no output says paused. */
static void no_output_takes_a_pause_without_a_window(void)
{
    struct mms_pipeline *p = start("live", 0, 30);
    if (!p)
        return;
    CHECK(wait_written(p, 5, 5000));
    CHECK_EQ(mms_pipeline_pause(p, 1), 0);
    fixture_sleep_ms(300);
    struct mms_pipeline_counters c = counters(p);
    CHECK_EQ(c.paused, 1);
    CHECK_EQ(c.noutputs, 1);
    CHECK_EQ(c.outputs[NUL].paused, 0);
    CHECK_EQ(c.outputs[NUL].controls_pending, 0);
    CHECK_EQ(c.sink_errors, 0);
    finish(p);
}

/* The window's space key pauses the pipeline, and again resumes it. */
static void the_space_key_toggles_the_pause(void)
{
    struct mms_pipeline *p = start("live", 1, 30);
    if (!p)
        return;
    CHECK(wait_written(p, 5, 5000));
    space();
    CHECK(wait_paused(p, WIN, 1, 2000));
    CHECK_EQ(counters(p).paused, 1);
    space();
    CHECK(wait_paused(p, WIN, 0, 2000));
    CHECK_EQ(counters(p).paused, 0);
    finish(p);
}

/* Closing the window stops the pipeline, whatever sink it was. */
static void closing_the_window_stops_the_pipeline(void)
{
    struct mms_pipeline *p = start("live", 1, 30);
    if (!p)
        return;
    CHECK(wait_written(p, 5, 5000));
    push((SDL_Event){.type = SDL_QUIT});
    CHECK_MSG(wait_finished(p, 3000), "still running after the window was closed");
    finish(p);
}

/* A run with the window and a recording, set to close the window alone. */
static struct mms_pipeline *start_alone(const char *mode, int seconds, const char *dir)
{
    char input[128];
    snprintf(input, sizeof(input), "lavfi:testsrc2=size=160x96:rate=25:duration=%d", seconds);
    CHECK_MSG(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    struct mms_pipeline *p = fixture_create(
        input, mode,
        (const char *const[]){"output", "null", "window", "yes", "record-dir", dir, NULL});
    if (p)
        CHECK_EQ(mms_pipeline_set_window_close(p, MMS_WINDOW_CLOSE_ALONE), 0);
    return fixture_start(p);
}

static int wait_closed(struct mms_pipeline *p, int ms)
{
    for (int t = 0; t < ms && counters(p).outputs[WIN].state != MMS_WRITER_CLOSED; t += 10)
        fixture_sleep_ms(10);
    return counters(p).outputs[WIN].state == MMS_WRITER_CLOSED;
}

/* Set to close alone, closing the window closes the window: it says so
 * (closed, not down) and takes no frame, while the pipeline, null and the
 * recording go on, and the run ends well. */
static void closing_the_window_alone_leaves_the_rest_running(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/alone-live", mms_test_tmpdir());
    struct mms_pipeline *p = start_alone("live", 30, dir);
    if (!p)
        return;
    CHECK(wait_written(p, 5, 5000));
    push((SDL_Event){.type = SDL_QUIT});
    CHECK_MSG(wait_closed(p, 3000), "the window is %d", counters(p).outputs[WIN].state);
    struct mms_pipeline_counters a = counters(p);
    struct mms_record_status ra;
    mms_pipeline_record_status(p, &ra);
    CHECK(wait_written(p, a.written + 25, 5000));
    struct mms_pipeline_counters b = counters(p);
    struct mms_record_status rb;
    mms_pipeline_record_status(p, &rb);
    CHECK_EQ(b.finished, 0);
    CHECK_MSG(strstr(b.outputs[WIN].reason, "window: closed by its user") != NULL, "%s",
              b.outputs[WIN].reason);
    CHECK_EQ(b.outputs[WIN].written, a.outputs[WIN].written);
    CHECK(b.outputs[NUL].written > a.outputs[NUL].written);
    CHECK(rb.recording && rb.frames > ra.frames);
    CHECK_EQ(b.sinks_down, 0);
    CHECK_EQ(b.sink_errors, 0);
    finish(p);
}

/* Offline and paused, a window closed alone lets the frames go on: the
 * run goes to the end and records every frame. */
static void closing_the_window_alone_ends_an_offline_pause(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/alone-offline", mms_test_tmpdir());
    struct mms_pipeline *p = start_alone("offline", 4, dir);
    if (!p)
        return;
    CHECK(wait_written(p, 3, 5000));
    CHECK_EQ(mms_pipeline_pause(p, 1), 0);
    CHECK(wait_paused(p, WIN, 1, 2000));
    push((SDL_Event){.type = SDL_QUIT});
    CHECK_MSG(wait_finished(p, 20000), "not finished after the window was closed: %lld written",
              (long long)counters(p).written);
    struct mms_pipeline_counters c = counters(p);
    CHECK_EQ(c.written, 100);
    CHECK_EQ(c.outputs[NUL].written, 100);
    CHECK_EQ(c.outputs[WIN].state, MMS_WRITER_CLOSED);
    CHECK_EQ(c.paused, 0);
    struct mms_record_status st;
    mms_pipeline_record_status(p, &st);
    CHECK_EQ(st.frames, 100);
    finish(p);
}

/* How the window closes is chosen before the start, from the two ways. */
static void the_window_close_is_set_before_the_start(void)
{
    struct mms_pipeline *p = fixture_create("lavfi:testsrc2=size=160x96:rate=25:duration=30",
                                            "live", (const char *const[]){"output", "null", NULL});
    if (!p)
        return;
    CHECK_EQ(mms_pipeline_set_window_close(p, (enum mms_window_close)2), -EINVAL);
    p = fixture_start(p);
    if (!p)
        return;
    CHECK_EQ(mms_pipeline_set_window_close(p, MMS_WINDOW_CLOSE_ALONE), -EBUSY);
    finish(p);
}

/* Offline, the frames wait while the window is paused, and go on to the
 * end once resumed. */
static void offline_pause_holds_the_frames(void)
{
    struct mms_pipeline *p = start_paused("offline", 4, 3);
    if (!p)
        return;
    fixture_sleep_ms(200); /* the frame in hand goes out */
    int64_t before = counters(p).written;
    fixture_sleep_ms(600);
    CHECK_EQ(counters(p).written, before);
    CHECK_EQ(counters(p).finished, 0);
    CHECK_EQ(mms_pipeline_pause(p, 0), 0);
    CHECK_MSG(wait_finished(p, 20000), "not finished after the resume: %lld written",
              (long long)counters(p).written);
    CHECK_EQ(counters(p).written, 100);
    finish(p);
}

/* Offline, the window's frames leave at the source's rate, and a pause
 * moves that clock: after 1.5 s paused, the first 0.4 s after the resume
 * take about 10 frames, not the 37 a clock that went on would send at
 * once to catch up. */
static void offline_pause_keeps_the_rate_after_the_resume(void)
{
    struct mms_pipeline *p = start_paused("offline", 4, 3);
    if (!p)
        return;
    fixture_sleep_ms(1500);
    int64_t before = counters(p).written;
    CHECK_EQ(mms_pipeline_pause(p, 0), 0);
    fixture_sleep_ms(400);
    int64_t after = counters(p).written;
    CHECK_MSG(after - before <= 20, "%lld frames in the 0.4 s after the resume",
              (long long)(after - before));
    CHECK_MSG(wait_finished(p, 20000), "not finished: %lld written",
              (long long)counters(p).written);
    CHECK_EQ(counters(p).written, 100);
    finish(p);
}

/* Offline with no output that takes a pause, a pause holds nothing: the
 * file is finished. */
static void offline_pause_without_a_window_holds_nothing(void)
{
    struct mms_pipeline *p = start("offline", 0, 4);
    if (!p)
        return;
    CHECK_EQ(mms_pipeline_pause(p, 1), 0);
    CHECK_MSG(wait_finished(p, 20000), "held by a pause no output took: %lld written",
              (long long)counters(p).written);
    CHECK_EQ(counters(p).written, 100);
    finish(p);
}

/* Offline and paused, closing the window still ends the run. */
static void closing_the_window_ends_an_offline_pause(void)
{
    struct mms_pipeline *p = start_paused("offline", 4, 3);
    if (!p)
        return;
    push((SDL_Event){.type = SDL_QUIT});
    CHECK_MSG(wait_finished(p, 3000), "still held after the window was closed");
    CHECK(counters(p).written < 100);
    finish(p);
}

MMS_TESTS(T(live_pause_goes_to_every_output), T(no_output_takes_a_pause_without_a_window),
          T(the_space_key_toggles_the_pause), T(closing_the_window_stops_the_pipeline),
          T(offline_pause_holds_the_frames), T(offline_pause_without_a_window_holds_nothing),
          T(offline_pause_keeps_the_rate_after_the_resume),
          T(closing_the_window_ends_an_offline_pause),
          T(closing_the_window_alone_leaves_the_rest_running),
          T(closing_the_window_alone_ends_an_offline_pause),
          T(the_window_close_is_set_before_the_start))
