/* Temporal smoothing: off is exact, flicker is damped, motion resets. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/smooth.h"
#include "harness.h"

#define H 8
#define W 16

static const float MEAN[3] = {0.5f, 0.5f, 0.5f}, STD[3] = {0.25f, 0.25f, 0.25f};

/* A uniform input of brightness g (0-1), normalised as the net sees it. */
static void frame(float *in, int ih, int iw, float g)
{
    for (int i = 0; i < 3 * ih * iw; i++)
        in[i] = (g - 0.5f) / 0.25f;
}

static void fill(float *z, float v)
{
    for (int i = 0; i < H * W; i++)
        z[i] = v;
}

static void test_alpha_zero_passes_logits_through(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.0f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    fill(z, 1.5f);
    CHECK(mms_smooth_apply(s, z, in, H, W) == z);
    fill(z, -1.5f);
    CHECK(mms_smooth_apply(s, z, in, H, W) == z);
    mms_smooth_free(&s);
    CHECK(s == NULL);
}

static void test_first_frame_is_unchanged(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.8f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    fill(z, 2.0f);
    const float *o = mms_smooth_apply(s, z, in, H, W);
    CHECK(memcmp(o, z, sizeof(z)) == 0);
    mms_smooth_free(&s);
}

/* A still picture whose logit flips sign every other frame (a specular
 * highlight the net sees as tool one frame in two): unsmoothed the mask
 * flips every frame; smoothed, after the first frame it holds steady. */
static void test_still_picture_damps_flicker(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.8f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    int flips = 0, prev = -1;
    for (int t = 0; t < 20; t++) {
        fill(z, t % 2 ? 0.5f : -3.0f); /* tool at 62 %, then background at 95 % */
        int tool = mms_smooth_apply(s, z, in, H, W)[0] > 0.0f;
        flips += t > 0 && tool != prev;
        prev = tool;
    }
    CHECK_MSG(flips == 0, "%d flips", flips);
    mms_smooth_free(&s);
}

static void test_moving_pixels_take_the_new_probability(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.9f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    fill(z, -4.0f);
    for (int t = 0; t < 5; t++)
        mms_smooth_apply(s, z, in, H, W);
    /* a tool enters the left column: that column brightens by 0.3 */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            in[c * H * W + y * W] = (0.7f - 0.5f) / 0.25f;
    fill(z, 3.0f);
    const float *o = mms_smooth_apply(s, z, in, H, W);
    CHECK(fabsf(o[0] - 3.0f) < 1e-5f); /* moved: the new logit as it is */
    CHECK(o[1] < 0.0f);                /* still: held back by the past */
    mms_smooth_free(&s);
}

static void test_cut_restarts_every_pixel(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.9f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.2f);
    fill(z, -4.0f);
    for (int t = 0; t < 5; t++)
        mms_smooth_apply(s, z, in, H, W);
    frame(in, H, W, 0.8f); /* the whole picture changed */
    fill(z, 3.0f);
    const float *o = mms_smooth_apply(s, z, in, H, W);
    CHECK(memcmp(o, z, sizeof(z)) == 0);
    mms_smooth_free(&s);
}

static void test_reset_forgets_the_past(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.9f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    fill(z, -4.0f);
    mms_smooth_apply(s, z, in, H, W);
    mms_smooth_reset(s);
    fill(z, 3.0f);
    CHECK(memcmp(mms_smooth_apply(s, z, in, H, W), z, sizeof(z)) == 0);
    mms_smooth_free(&s);
}

/* A broken frame's NaN logits must not outlive a fresh start: the frame
 * after it blends with the fresh frame, not with the NaN before it. */
static void test_fresh_start_forgets_a_nan(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.9f, 0.1f, MEAN, STD) == 0);
    frame(in, H, W, 0.4f);
    fill(z, NAN);
    mms_smooth_apply(s, z, in, H, W);
    mms_smooth_reset(s);
    fill(z, 3.0f);
    mms_smooth_apply(s, z, in, H, W);
    const float *o = mms_smooth_apply(s, z, in, H, W);
    CHECK_MSG(fabsf(o[0] - 3.0f) < 1e-3f, "still frame after a fresh start: logit %g, 3 expected",
              o[0]);
    mms_smooth_free(&s);
}

/* The logit grid may be smaller than the input: motion is sampled from it. */
static void test_input_larger_than_grid(void)
{
    struct mms_smooth *s;
    static float in[3 * 2 * H * 2 * W];
    float z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.9f, 0.1f, MEAN, STD) == 0);
    frame(in, 2 * H, 2 * W, 0.4f);
    fill(z, -4.0f);
    mms_smooth_apply(s, z, in, 2 * H, 2 * W);
    fill(z, 3.0f);
    CHECK(mms_smooth_apply(s, z, in, 2 * H, 2 * W)[0] < 0.0f);
    mms_smooth_free(&s);
}

static void test_refuses_bad_parameters(void)
{
    struct mms_smooth *s = (struct mms_smooth *)1;
    const float zero[3] = {0.25f, 0.0f, 0.25f};
    CHECK(mms_smooth_create(&s, H, W, 1.0f, 0.1f, MEAN, STD) == -EINVAL && s == NULL);
    CHECK(mms_smooth_create(&s, H, W, -0.1f, 0.1f, MEAN, STD) == -EINVAL);
    CHECK(mms_smooth_create(&s, H, W, NAN, 0.1f, MEAN, STD) == -EINVAL);
    CHECK(mms_smooth_create(&s, H, W, 0.5f, 0.0f, MEAN, STD) == -EINVAL);
    CHECK(mms_smooth_create(&s, H, W, 0.5f, 1.5f, MEAN, STD) == -EINVAL);
    CHECK(mms_smooth_create(&s, 0, W, 0.5f, 0.1f, MEAN, STD) == -EINVAL);
    CHECK(mms_smooth_create(&s, H, W, 0.5f, 0.1f, MEAN, zero) == -EINVAL);
}

static void test_set_alpha_ignores_out_of_range(void)
{
    struct mms_smooth *s;
    float in[3 * H * W], z[H * W];
    CHECK(mms_smooth_create(&s, H, W, 0.0f, 0.1f, MEAN, STD) == 0);
    mms_smooth_set_alpha(s, 1.0f); /* ignored: stays off */
    frame(in, H, W, 0.4f);
    CHECK(mms_smooth_apply(s, z, in, H, W) == z);
    mms_smooth_set_alpha(s, 0.5f);
    fill(z, 1.0f);
    CHECK(mms_smooth_apply(s, z, in, H, W) != z);
    mms_smooth_free(&s);
}

MMS_TESTS(T(test_alpha_zero_passes_logits_through), T(test_first_frame_is_unchanged),
          T(test_still_picture_damps_flicker), T(test_moving_pixels_take_the_new_probability),
          T(test_cut_restarts_every_pixel), T(test_reset_forgets_the_past),
          T(test_fresh_start_forgets_a_nan),
          T(test_input_larger_than_grid), T(test_refuses_bad_parameters),
          T(test_set_alpha_ignores_out_of_range))
