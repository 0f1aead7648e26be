/*
 * int8: calibration (observing every tensor of an fp32 run), the model
 * file that carries it, how a precision is chosen, and the int8 network
 * against fp32 on a real frame.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/exec.h"
#include "core/model.h"
#include "core/model_write.h"
#include "core/net.h"
#include "harness.h"
#include "real_frame.h"
#include "speed_variant.h"

static const char *shipped(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    return path;
}

static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof(path[k]), "%s/%s", mms_test_tmpdir(), name);
    return path[k];
}

/* The shipped model rewritten: its calibration replaced by `absmax` (n
 * values; n < 0: none) and int8.check set to `check` (NULL: kept). */
static const char *variant(const char *name, const float *absmax, int n, const char *check)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    const char *out = tmp(name);
    const char *meta[] = {MMS_INT8_CHECK, check, NULL};
    int rc = mms_model_open(shipped(), &m, &err);
    rc = rc ? rc
            : mms_model_write_with(m, out, MMS_INT8_TENSOR, absmax, n, check ? meta : NULL,
                                   &err);
    mms_model_close(m);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return out;
}

static int open_net(const char *path, enum mms_precision p, int h, int w, struct mms_net **n,
                    struct mms_err *err)
{
    struct mms_net_opts o = {.precision = p, .threads = 1, .in_h = h, .in_w = w};
    return mms_net_open(path, &o, n, err);
}

static void fill_input(struct mms_net *n)
{
    const struct mms_net_info *ni = mms_net_info(n);
    float *x = mms_net_input(n);
    uint32_t r = 12345;
    for (size_t i = 0; i < (size_t)3 * ni->in_h * ni->in_w; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / (float)(1u << 24) * 4.f - 2.f;
    }
}

struct obs {
    float *absmax;
    int n, calls, bad;
};

static void record(void *ctx, int t, const float *v, size_t n)
{
    struct obs *o = ctx;
    o->calls++;
    if (t < 0 || t >= o->n) {
        o->bad++;
        return;
    }
    for (size_t i = 0; i < n; i++)
        o->absmax[t] = fmaxf(o->absmax[t], fabsf(v[i]));
}

static void observing_sees_every_tensor_once(void)
{
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    if (open_net(shipped(), MMS_PREC_FP32, 64, 128, &n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    fill_input(n);
    struct obs o = {calloc(mms_net_tensors(n), sizeof(float)), mms_net_tensors(n), 0, 0};
    CHECK(mms_net_observe(n, record, &o, &err) == 0);
    CHECK_EQ(o.bad, 0);
    CHECK(o.calls > 20 && o.calls <= o.n);
    CHECK_MSG(fabsf(o.absmax[0] - 2.f) < 0.01f, "input tensor max %g", o.absmax[0]);
    int positive = 0;
    for (int t = 0; t < o.n; t++)
        positive += o.absmax[t] > 0 && isfinite(o.absmax[t]);
    CHECK(positive > 20);
    free(o.absmax);
    mms_net_close(n);
}

static void an_int8_net_cannot_be_observed(void)
{
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    if (open_net(shipped(), MMS_PREC_INT8, 64, 128, &n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    struct obs o = {0};
    CHECK(mms_net_observe(n, record, &o, &err) == -EINVAL);
    CHECK_EQ(o.calls, 0);
    mms_net_close(n);
}

static void int8_without_calibration_is_refused(void)
{
    const char *plain = variant("plain.safetensors", NULL, -1, NULL);
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    CHECK(open_net(plain, MMS_PREC_INT8, 64, 128, &n, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "no int8 calibration"), "%s", err.msg);
    CHECK(n == NULL);
}

/* What auto runs when int8 is out: bf16 where the CPU has it. */
static const char *without_int8(void)
{
    struct mms_cpu cpu;
    mms_cpu_probe(&cpu);
    return cpu.bf16 ? "bf16" : "fp32";
}

static const char *chosen(const char *path, enum mms_precision p, char *why, size_t len)
{
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    if (open_net(path, p, 64, 128, &n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return "";
    }
    const char *used = mms_net_info(n)->precision;
    snprintf(why, len, "%s", mms_net_info(n)->precision_why);
    mms_net_close(n);
    return used;
}

static void auto_takes_a_calibration_that_passed(void)
{
    char why[256];
    CHECK_STR_EQ(chosen(shipped(), MMS_PREC_AUTO, why, sizeof(why)), "int8");
}

static void auto_leaves_a_failed_calibration(void)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_model_open(shipped(), &m, &err) == 0);
    const struct mms_tensor *t = m ? mms_model_find(m, MMS_INT8_TENSOR) : NULL;
    CHECK(t != NULL);
    if (t) {
        const char *failed = variant("failed.safetensors", t->data, (int)t->numel,
                                     "failed: int8 vs fp32 masks, mean Dice 0.5");
        char why[256];
        CHECK_STR_EQ(chosen(failed, MMS_PREC_AUTO, why, sizeof(why)), without_int8());
        CHECK_MSG(strstr(why, "failed"), "%s", why);
        /* asked for outright, it still runs, and says so */
        CHECK_STR_EQ(chosen(failed, MMS_PREC_INT8, why, sizeof(why)), "int8");
        CHECK_MSG(strstr(why, "failed"), "%s", why);
    }
    mms_model_close(m);
}

static void auto_leaves_int8_where_it_was_slower(void)
{
    struct mms_cpu cpu;
    char speed[64], why[256];
    mms_cpu_probe(&cpu);
    snprintf(speed, sizeof(speed), "%s:0.90", cpu.isa);
    const char *slow = mms_test_with_speed("slow.safetensors", speed);
    CHECK_STR_EQ(chosen(slow, MMS_PREC_AUTO, why, sizeof(why)), without_int8());
    CHECK_MSG(strstr(why, "0.90x"), "%s", why);
    snprintf(speed, sizeof(speed), "%s:1.60", cpu.isa);
    const char *fast = mms_test_with_speed("fast.safetensors", speed);
    CHECK_STR_EQ(chosen(fast, MMS_PREC_AUTO, why, sizeof(why)), "int8");
}

static void a_speed_from_another_isa_says_nothing(void)
{
    char why[256];
    CHECK_STR_EQ(chosen(mms_test_with_speed("other-isa.safetensors", "some_future_isa:0.50"),
                        MMS_PREC_AUTO, why, sizeof(why)),
                 "int8");
}

static void a_calibration_of_another_network_is_refused(void)
{
    float few[5] = {1, 1, 1, 1, 1};
    const char *other = variant("other.safetensors", few, 5, "passed: test");
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    CHECK(open_net(other, MMS_PREC_INT8, 64, 128, &n, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "covers 5 tensors"), "%s", err.msg);
}

static void an_empty_calibration_is_refused(void)
{
    const char *empty = variant("empty.safetensors", NULL, 0, "passed: test");
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    CHECK(open_net(empty, MMS_PREC_INT8, 64, 128, &n, &err) == -EINVAL);
    CHECK_MSG(strstr(err.msg, "1-D F32"), "%s", err.msg);
}

/* The shipped calibration with one range replaced by `bad`. */
static void check_range_refused(const char *name, float bad)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_model_open(shipped(), &m, &err) == 0);
    const struct mms_tensor *t = m ? mms_model_find(m, MMS_INT8_TENSOR) : NULL;
    if (t) {
        float *v = malloc(t->nbytes);
        memcpy(v, t->data, t->nbytes);
        v[t->numel / 2] = bad;
        const char *path = variant(name, v, (int)t->numel, "passed: test");
        struct mms_net *n = NULL;
        CHECK(open_net(path, MMS_PREC_INT8, 64, 128, &n, &err) == -EINVAL);
        CHECK_MSG(strstr(err.msg, "not a range"), "%s", err.msg);
        char why[256];
        CHECK_STR_EQ(chosen(path, MMS_PREC_AUTO, why, sizeof(why)), without_int8());
        free(v);
    }
    mms_model_close(m);
}

static void a_calibration_with_nan_is_refused(void) { check_range_refused("nan-cal.safetensors", NAN); }

/* Its scales would overflow to infinity and every logit come out NaN. */
static void a_calibration_too_small_to_scale_is_refused(void)
{
    check_range_refused("tiny-cal.safetensors", 1e-40f);
    check_range_refused("small-cal.safetensors", 1e-30f);
}

/* A speed that is no positive number was never measured: int8 is taken on
 * trust, as with no speed at all, and auto does not flip. */
static void a_speed_that_is_not_a_number_says_nothing(void)
{
    static const char *const bad[] = {"nan", "inf", "-2.00", "0"};
    struct mms_cpu cpu;
    char speed[64], name[64], why[256];
    mms_cpu_probe(&cpu);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        snprintf(speed, sizeof(speed), "%s:%s", cpu.isa, bad[i]);
        snprintf(name, sizeof(name), "speed-bad-%zu.safetensors", i);
        const char *path = mms_test_with_speed(name, speed);
        CHECK_MSG(!strcmp(chosen(path, MMS_PREC_AUTO, why, sizeof(why)), "int8"), "%s: %s",
                  bad[i], why);
        struct mms_net *n = NULL;
        struct mms_err err = {{0}};
        struct mms_net_opts o = {.precision = MMS_PREC_AUTO, .threads = 1, .in_h = 64,
                                 .in_w = 128, .tta = MMS_TTA_AUTO};
        CHECK(path && mms_net_open(path, &o, &n, &err) == 0);
        if (n)
            CHECK_MSG(!mms_net_info(n)->flip && strstr(mms_net_info(n)->tta_why, "not measured"),
                      "%s: %s", bad[i], mms_net_info(n)->tta_why);
        mms_net_close(n);
    }
}

/* A validation frame of Cholec80 at the model's own size: the int8 mask
 * is the fp32 mask but for edge pixels. */
static void int8_agrees_with_fp32_on_a_real_frame(void)
{
    struct mms_err err = {{0}};
    struct mms_net *f = NULL, *q = NULL;
    if (open_net(shipped(), MMS_PREC_FP32, 0, 0, &f, &err) ||
        open_net(shipped(), MMS_PREC_INT8, 0, 0, &q, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    struct mms_net *nets[2] = {f, q};
    if (mms_test_run_real_frame("labeled/cholec80-v01/image/video01_000017.png", nets, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    const struct mms_net_info *ni = mms_net_info(f);
    size_t len = (size_t)ni->out_h * ni->out_w;
    const float *lf = mms_net_logits(f), *lq = mms_net_logits(q);
    double d = mms_test_mask_dice(lf, lq, len);
    CHECK_MSG(d >= 0.97, "int8 vs fp32 mask Dice %.4f", d);
    double maxdiff = 0;
    for (size_t i = 0; i < len; i++)
        maxdiff = fmax(maxdiff, fabs(lf[i] - lq[i]));
    CHECK_MSG(maxdiff > 0, "int8 logits equal fp32's bit for bit: is int8 running at all?");
done:
    mms_net_close(f);
    mms_net_close(q);
}

static void int8_upsampling_rounds_like_float(void)
{
    enum { C = 5, H = 3, W = 4 };
    int8_t s[H * W * C], so[4 * H * W * C];
    uint8_t u[H * W * C], uo[4 * H * W * C];
    float f[H * W * C], fo[4 * H * W * C];
    for (int i = 0; i < H * W * C; i++) {
        s[i] = (int8_t)((i * 37) % 255 - 127);
        u[i] = (uint8_t)((i * 53) % 256);
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < H * W * C; i++)
            f[i] = k ? u[i] : s[i];
        mms_kernel_upsample2(f, fo, 1, C, H, W); /* nhwc: one block of all channels */
        if (k)
            mms_kernel_upsample2_u8(u, uo, C, H, W, C);
        else
            mms_kernel_upsample2_s8(s, so, C, H, W, C);
        int bad = 0;
        for (int i = 0; i < 4 * H * W * C; i++)
            bad += fabsf((k ? uo[i] : so[i]) - fo[i]) > 0.6f;
        /* positions in 1/2048ths, then rounding: within rounding and a hair */
        CHECK_MSG(bad == 0, "%s: %d values off by more than rounding", k ? "u8" : "s8", bad);
    }
}

/* The vector kernels give the portable ones' integers bit for bit, for
 * channel counts with and without a tail and sizes down to one pixel. On
 * a CPU without AVX2 both runs are portable. */
static void int8_upsampling_vector_equals_scalar(void)
{
    static const int shapes[][3] = {{96, 18, 32}, {35, 5, 7}, {8, 1, 1}, {3, 2, 9}, {256, 9, 16}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int c = shapes[k][0], h = shapes[k][1], w = shapes[k][2];
        size_t n = (size_t)c * h * w;
        uint8_t *u = malloc(n), *uv = malloc(4 * n), *us = malloc(4 * n);
        int8_t *s = malloc(n), *sv = malloc(4 * n), *ss = malloc(4 * n);
        uint32_t r = (uint32_t)k + 1;
        for (size_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            u[i] = (uint8_t)(r >> 24);
            s[i] = (int8_t)(r >> 16);
        }
        mms_kernel_upsample2_u8(u, uv, c, h, w, c);
        mms_kernel_upsample2_s8(s, sv, c, h, w, c);
        mms_cpu_use_simd(0);
        mms_kernel_upsample2_u8(u, us, c, h, w, c);
        mms_kernel_upsample2_s8(s, ss, c, h, w, c);
        mms_cpu_use_simd(1);
        CHECK_MSG(!memcmp(uv, us, 4 * n), "u8 %dx%dx%d", c, h, w);
        CHECK_MSG(!memcmp(sv, ss, 4 * n), "s8 %dx%dx%d", c, h, w);
        free(u), free(uv), free(us), free(s), free(sv), free(ss);
    }
}

/* Into a slice of a wider nhwc buffer: the slice gets what a dense
 * output gets, and the channels around it stay as they were. */
static void int8_upsampling_writes_only_its_slice(void)
{
    enum { C = 11, H = 5, W = 7, TOTAL = 27, OFF = 9 };
    uint8_t src[H * W * C], dense[4 * H * W * C], wide[4 * H * W * TOTAL];
    for (int i = 0; i < H * W * C; i++)
        src[i] = (uint8_t)(i * 97 + 13);
    memset(wide, 0xA5, sizeof(wide));
    mms_kernel_upsample2_u8(src, dense, C, H, W, C);
    mms_kernel_upsample2_u8(src, wide + OFF, C, H, W, TOTAL);
    int in_slice = 0, around = 0;
    for (int p = 0; p < 4 * H * W; p++)
        for (int c = 0; c < TOTAL; c++) {
            uint8_t v = wide[p * TOTAL + c];
            if (c >= OFF && c < OFF + C)
                in_slice += v != dense[p * C + c - OFF];
            else
                around += v != 0xA5;
        }
    CHECK_MSG(in_slice == 0, "%d values of the slice differ from a dense output", in_slice);
    CHECK_MSG(around == 0, "%d values outside the slice were written", around);
}

/* How many steps the int8 net spends on node `name`. */
static int steps_of(struct mms_net *n, const char *name)
{
    int k = 0;
    for (int i = 0; i < mms_net_layers(n); i++) {
        struct mms_net_layer l;
        mms_net_layer(n, i, &l);
        k += !strcmp(l.name, name);
    }
    return k;
}

/* The decoder's upsamplings of a plain convolution's output go straight
 * into their concat slice: the concat copies in the skip alone. The first
 * one upsamples an encoder block's output, a residual sum, and is copied. */
static void int8_upsampling_lands_in_its_concat(void)
{
    struct mms_net *q = NULL;
    struct mms_err err = {{0}};
    if (open_net(shipped(), MMS_PREC_INT8, 0, 0, &q, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    CHECK_MSG(steps_of(q, "cat4") == 1, "cat4: %d steps", steps_of(q, "cat4"));
    CHECK_MSG(steps_of(q, "cat1") == 2, "cat1: %d steps", steps_of(q, "cat1"));
    mms_net_close(q);
}

/* mms-rt's head (one channel, fp32 logits) reads an int8 tensor: it runs
 * as one int8 convolution writing fp32, and its logits are fp32's to a few
 * per cent (a mask test alone would miss a wrong output scale: the sign of
 * a logit survives any scale). */
static void int8_head_writes_fp32_logits_itself(void)
{
    struct mms_err err = {{0}};
    struct mms_net *f = NULL, *q = NULL;
    if (open_net(shipped(), MMS_PREC_FP32, 0, 0, &f, &err) ||
        open_net(shipped(), MMS_PREC_INT8, 0, 0, &q, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    CHECK_MSG(steps_of(q, "final") == 1, "the head took %d steps", steps_of(q, "final"));
    struct mms_net *nets[2] = {f, q};
    if (mms_test_run_real_frame("labeled/endovis15/image/op3_img05.jpg", nets, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    const struct mms_net_info *ni = mms_net_info(f);
    double diff = 0, mag = 0;
    for (size_t i = 0; i < (size_t)ni->out_h * ni->out_w; i++) {
        diff += fabs(mms_net_logits(q)[i] - mms_net_logits(f)[i]);
        mag += fabs(mms_net_logits(f)[i]);
    }
    CHECK_MSG(diff < 0.1 * mag && mag > 0, "int8 logits off fp32's by %.1f %% of their size",
              100 * diff / mag);
done:
    mms_net_close(f);
    mms_net_close(q);
}

static void written_model_keeps_tensors_and_metadata(void)
{
    float extra[3] = {1.5f, -2.f, 3.f};
    struct mms_model *a = NULL, *b = NULL;
    struct mms_err err = {{0}};
    const char *out = variant("kept.safetensors", extra, 3, "passed: kept");
    CHECK(mms_model_open(shipped(), &a, &err) == 0);
    CHECK(mms_model_open(out, &b, &err) == 0);
    if (!a || !b)
        goto done;
    int same = 1;
    for (size_t i = 0; i < mms_model_count(a); i++) {
        const struct mms_tensor *t = mms_model_at(a, i);
        if (!strcmp(t->name, MMS_INT8_TENSOR))
            continue;
        const struct mms_tensor *u = mms_model_find(b, t->name);
        same &= u && u->nbytes == t->nbytes && !memcmp(u->data, t->data, t->nbytes);
    }
    CHECK(same);
    const struct mms_tensor *x = mms_model_find(b, MMS_INT8_TENSOR);
    CHECK(x && x->numel == 3 && !memcmp(x->data, extra, sizeof(extra)));
    CHECK_STR_EQ(mms_model_meta(b, MMS_INT8_CHECK), "passed: kept");
    CHECK_STR_EQ(mms_model_meta(b, "mms.arch"), mms_model_meta(a, "mms.arch"));
done:
    mms_model_close(a);
    mms_model_close(b);
}

static void failed_write_leaves_nothing(void)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    float v = 1;
    CHECK(mms_model_open(shipped(), &m, &err) == 0);
    const char *out = tmp("no-such-dir/x.safetensors");
    CHECK(mms_model_write_with(m, out, "x", &v, 1, NULL, &err) < 0);
    CHECK(access(out, F_OK) != 0);
    CHECK(err.msg[0] != 0);
    mms_model_close(m);
}

MMS_TESTS(T(observing_sees_every_tensor_once), T(an_int8_net_cannot_be_observed),
          T(int8_without_calibration_is_refused), T(auto_takes_a_calibration_that_passed),
          T(auto_leaves_a_failed_calibration),
          T(auto_leaves_int8_where_it_was_slower),
          T(a_speed_from_another_isa_says_nothing), T(a_calibration_of_another_network_is_refused),
          T(an_empty_calibration_is_refused), T(a_calibration_with_nan_is_refused), T(a_calibration_too_small_to_scale_is_refused),
          T(a_speed_that_is_not_a_number_says_nothing), T(int8_agrees_with_fp32_on_a_real_frame),
          T(int8_upsampling_rounds_like_float), T(int8_upsampling_vector_equals_scalar),
          T(int8_upsampling_writes_only_its_slice), T(int8_upsampling_lands_in_its_concat),
          T(int8_head_writes_fp32_logits_itself),
          T(written_model_keeps_tensors_and_metadata), T(failed_write_leaves_nothing))
