/*
 * Test-time flip (MMS_TTA_FLIP): a run is the mean of the frame's logits
 * and its mirror's, mirrored back, and nothing else changes; MMS_TTA_AUTO
 * flips only where int8 was measured at least twice as fast as fp32 on
 * this ISA. Run on the shipped model at a small input, so each test takes
 * milliseconds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/net.h"
#include "harness.h"
#include "speed_variant.h"

#define H 64
#define W 96
#define IN (3 * H * W)
#define OUT (H * W)

static const char *shipped(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    return path;
}

static struct mms_net *open_file(const char *path, enum mms_tta tta, enum mms_precision p)
{
    struct mms_net_opts o = {.precision = p, .threads = 1, .in_h = H, .in_w = W, .tta = tta};
    struct mms_err err = {{0}};
    struct mms_net *n = NULL;
    if (mms_net_open(path, &o, &n, &err))
        fprintf(stderr, "open: %s\n", err.msg);
    return n;
}

static struct mms_net *open_net(int flip, enum mms_precision p)
{
    return open_file(shipped(), flip ? MMS_TTA_FLIP : MMS_TTA_OFF, p);
}

/* A frame with no left-right symmetry: a ramp across, noise on top. */
static void fill(float *in)
{
    for (int k = 0; k < IN; k++)
        in[k] = (float)(k % W) / W * 2.f - 1.f + (float)((k * 2654435761u) % 997) / 997.f;
}

static void mirror(float *p, int planes)
{
    for (int r = 0; r < planes * H; r++)
        for (int a = 0, b = W - 1; a < b; a++, b--) {
            float t = p[r * W + a];
            p[r * W + a] = p[r * W + b];
            p[r * W + b] = t;
        }
}

/* in -> the net's logits, copied out. */
static int run(struct mms_net *n, const float *in, float *out)
{
    struct mms_err err = {{0}};
    memcpy(mms_net_input(n), in, IN * sizeof(float));
    int rc = mms_net_run(n, &err);
    if (rc)
        fprintf(stderr, "run: %s\n", err.msg);
    else
        memcpy(out, mms_net_logits(n), OUT * sizeof(float));
    return rc;
}

static float max_diff(const float *a, const float *b)
{
    float m = 0;
    for (int i = 0; i < OUT; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

/* The definition, from two plain runs, to the bit. */
static void flip_is_the_mean_of_the_frame_and_its_mirror(void)
{
    struct mms_net *plain = open_net(0, MMS_PREC_FP32), *flip = open_net(1, MMS_PREC_FP32);
    float *in = malloc(IN * sizeof(float)), *a = malloc(OUT * sizeof(float)),
          *b = malloc(OUT * sizeof(float)), *got = malloc(OUT * sizeof(float));
    CHECK(plain && flip && in && a && b && got);
    if (!plain || !flip || !in || !a || !b || !got)
        goto done;
    fill(in);
    CHECK_EQ(run(plain, in, a), 0);
    mirror(in, 3);
    CHECK_EQ(run(plain, in, b), 0);
    mirror(in, 3);
    mirror(b, 1);
    for (int i = 0; i < OUT; i++)
        a[i] = (a[i] + b[i]) * 0.5f;
    CHECK_EQ(run(flip, in, got), 0);
    CHECK(memcmp(a, got, OUT * sizeof(float)) == 0);
done:
    free(in), free(a), free(b), free(got);
    mms_net_close(plain);
    mms_net_close(flip);
}

/* Mirroring the frame mirrors the flipped mask exactly; a plain run does
 * not (which is why the plain net fails this test). */
static void check_equivariance(int flip, enum mms_precision p, int expect_exact)
{
    struct mms_net *n = open_net(flip, p);
    float *in = malloc(IN * sizeof(float)), *a = malloc(OUT * sizeof(float)),
          *b = malloc(OUT * sizeof(float));
    CHECK(n && in && a && b);
    if (!n || !in || !a || !b)
        goto done;
    fill(in);
    CHECK_EQ(run(n, in, a), 0);
    mirror(in, 3);
    CHECK_EQ(run(n, in, b), 0);
    mirror(b, 1);
    if (expect_exact)
        CHECK_MSG(max_diff(a, b) == 0.f, "off by %g", max_diff(a, b));
    else
        CHECK_MSG(max_diff(a, b) > 1e-3f, "a plain run is mirror-symmetric (%g)", max_diff(a, b));
done:
    free(in), free(a), free(b);
    mms_net_close(n);
}

static void flip_is_mirror_equivariant(void) { check_equivariance(1, MMS_PREC_FP32, 1); }
static void flip_is_mirror_equivariant_in_int8(void) { check_equivariance(1, MMS_PREC_INT8, 1); }
static void plain_run_is_not_mirror_equivariant(void) { check_equivariance(0, MMS_PREC_FP32, 0); }

/* Callers (the pipeline's smoothing, a second run) may read the input
 * after a run: the flip's mirroring of it is undone. */
static void flip_leaves_the_input_as_written(void)
{
    struct mms_net *n = open_net(1, MMS_PREC_FP32);
    float *in = malloc(IN * sizeof(float)), *out = malloc(OUT * sizeof(float));
    CHECK(n && in && out);
    if (!n || !in || !out)
        goto done;
    fill(in);
    CHECK_EQ(run(n, in, out), 0);
    CHECK(memcmp(mms_net_input(n), in, IN * sizeof(float)) == 0);
done:
    free(in), free(out);
    mms_net_close(n);
}

/* Two flipped runs of one frame give one answer: the mean buffer holds
 * nothing over from the run before. */
static void flip_is_deterministic_across_frames(void)
{
    struct mms_net *n = open_net(1, MMS_PREC_FP32);
    float *in = malloc(IN * sizeof(float)), *a = malloc(OUT * sizeof(float)),
          *b = malloc(OUT * sizeof(float)), *other = malloc(IN * sizeof(float));
    CHECK(n && in && a && b && other);
    if (!n || !in || !a || !b || !other)
        goto done;
    fill(in);
    for (int k = 0; k < IN; k++)
        other[k] = -in[k];
    CHECK_EQ(run(n, in, a), 0);
    CHECK_EQ(run(n, other, b), 0);
    CHECK(max_diff(a, b) > 1e-3f);
    CHECK_EQ(run(n, in, b), 0);
    CHECK(memcmp(a, b, OUT * sizeof(float)) == 0);
done:
    free(in), free(a), free(b), free(other);
    mms_net_close(n);
}

static void info_says_whether_it_flips(void)
{
    struct mms_net *plain = open_net(0, MMS_PREC_FP32), *flip = open_net(1, MMS_PREC_FP32);
    CHECK(plain && flip);
    if (plain && flip) {
        CHECK_EQ(mms_net_info(plain)->flip, 0);
        CHECK_EQ(mms_net_info(flip)->flip, 1);
        /* One pass's cost: the flip's second run is the caller's to count. */
        CHECK_EQ(mms_net_info(flip)->macs, mms_net_info(plain)->macs);
    }
    mms_net_close(plain);
    mms_net_close(flip);
}

/* Flip changes nothing about what is refused. */
static void flip_does_not_open_a_bad_size(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    struct mms_net_opts o = {.in_h = 65, .in_w = W, .tta = MMS_TTA_FLIP};
    struct mms_err err = {{0}};
    struct mms_net *n = (struct mms_net *)0x1;
    CHECK(mms_net_open(path, &o, &n, &err) < 0);
    CHECK(n == (struct mms_net *)0x1);
    CHECK(strstr(err.msg, "multiples") != NULL);
}

static void flip_does_not_open_a_missing_file(void)
{
    struct mms_net_opts o = {.tta = MMS_TTA_FLIP};
    struct mms_err err = {{0}};
    struct mms_net *n = (struct mms_net *)0x1;
    CHECK(mms_net_open("/nonexistent/model.safetensors", &o, &n, &err) < 0);
    CHECK(n == (struct mms_net *)0x1);
    CHECK(err.msg[0] != 0);
}

/* The logits read are those of the last run, whatever the tta became
 * since: a change applies to the next run only. */
static void logits_are_the_last_runs_after_a_tta_change(void)
{
    struct mms_net *n = open_net(1, MMS_PREC_FP32);
    float *in = malloc(IN * sizeof(float)), *a = malloc(OUT * sizeof(float)),
          *b = malloc(OUT * sizeof(float));
    struct mms_err err = {{0}};
    CHECK(n && in && a && b);
    if (!n || !in || !a || !b)
        goto done;
    fill(in);
    CHECK_EQ(run(n, in, a), 0); /* flipped */
    CHECK(mms_net_set_tta(n, MMS_TTA_OFF, &err) == 0);
    CHECK_MSG(memcmp(mms_net_logits(n), a, OUT * sizeof(float)) == 0,
              "flip -> off: the logits changed with no run (by %g)", max_diff(mms_net_logits(n), a));
    CHECK_EQ(run(n, in, b), 0); /* plain */
    CHECK(max_diff(a, b) > 1e-3f);
    CHECK(mms_net_set_tta(n, MMS_TTA_FLIP, &err) == 0);
    CHECK_MSG(memcmp(mms_net_logits(n), b, OUT * sizeof(float)) == 0,
              "off -> flip: the logits changed with no run (by %g)", max_diff(mms_net_logits(n), b));
    CHECK_EQ(run(n, in, b), 0);
    CHECK_MSG(memcmp(a, b, OUT * sizeof(float)) == 0, "flip again: off by %g", max_diff(a, b));
done:
    free(in), free(a), free(b);
    mms_net_close(n);
}

/* ---------------------------------------------------------------- auto */

/* The shipped model with int8.speed "ISA:RATIO"; isa NULL is this CPU's. */
static const char *with_speed(const char *isa, const char *ratio)
{
    static int k;
    char name[32], speed[96];
    struct mms_cpu cpu;
    mms_cpu_probe(&cpu);
    snprintf(speed, sizeof(speed), "%s:%s", isa ? isa : cpu.isa, ratio);
    snprintf(name, sizeof(name), "speed-%d.safetensors", k++);
    return mms_test_with_speed(name, speed);
}

/* auto's choice on that file in that precision, and why. */
static void expect_auto(const char *path, enum mms_precision p, int flip, const char *word)
{
    struct mms_net *n = path ? open_file(path, MMS_TTA_AUTO, p) : NULL;
    CHECK(n != NULL);
    if (!n)
        return;
    CHECK_MSG(mms_net_info(n)->flip == flip, "flip %d: %s", mms_net_info(n)->flip,
              mms_net_info(n)->tta_why);
    CHECK_MSG(strstr(mms_net_info(n)->tta_why, word) != NULL, "'%s' lacks '%s'",
              mms_net_info(n)->tta_why, word);
    mms_net_close(n);
}

static void auto_flips_where_int8_is_measured_3x_as_fast(void)
{
    expect_auto(with_speed(NULL, "3.00"), MMS_PREC_AUTO, 1, "3.00x");
}

static void auto_flips_at_exactly_twice(void)
{
    expect_auto(with_speed(NULL, "2.00"), MMS_PREC_INT8, 1, "2.00x");
}

static void auto_stays_off_where_int8_is_under_twice(void)
{
    /* 1.60x still makes auto precision int8; two runs would not pay. */
    expect_auto(with_speed(NULL, "1.60"), MMS_PREC_AUTO, 0, "1.60x");
}

static void auto_stays_off_on_another_isa(void)
{
    expect_auto(with_speed("some_future_isa", "3.00"), MMS_PREC_AUTO, 0, "not measured");
}

static void auto_stays_off_in_fp32(void)
{
    expect_auto(with_speed(NULL, "3.00"), MMS_PREC_FP32, 0, "fp32");
}

static void an_unknown_tta_is_refused(void)
{
    struct mms_net_opts o = {.tta = (enum mms_tta)7};
    struct mms_err err = {{0}};
    struct mms_net *n = (struct mms_net *)0x1;
    CHECK(mms_net_open(shipped(), &o, &n, &err) == -EINVAL);
    CHECK(n == (struct mms_net *)0x1);
    CHECK_MSG(strstr(err.msg, "tta") != NULL, "%s", err.msg);
}

MMS_TESTS(T(flip_is_the_mean_of_the_frame_and_its_mirror), T(flip_is_mirror_equivariant),
          T(flip_is_mirror_equivariant_in_int8), T(plain_run_is_not_mirror_equivariant),
          T(flip_leaves_the_input_as_written), T(flip_is_deterministic_across_frames),
          T(info_says_whether_it_flips), T(flip_does_not_open_a_bad_size),
          T(flip_does_not_open_a_missing_file), T(logits_are_the_last_runs_after_a_tta_change),
          T(auto_flips_where_int8_is_measured_3x_as_fast),
          T(auto_flips_at_exactly_twice), T(auto_stays_off_where_int8_is_under_twice),
          T(auto_stays_off_on_another_isa), T(auto_stays_off_in_fp32),
          T(an_unknown_tta_is_refused))
