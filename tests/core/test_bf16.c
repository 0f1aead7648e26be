/*
 * bf16: the upsampling kernel, how the precision is chosen, and the bf16
 * network against fp32 on a real frame. Where the CPU (or oneDNN, held
 * back with ONEDNN_MAX_CPU_ISA) has no native bf16, the same tests check
 * the fallback instead: ctest runs this file both ways (core_bf16 and
 * core_bf16_fallback), so on a bf16 machine both branches run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/exec.h"
#include "core/model.h"
#include "core/model_write.h"
#include "core/net.h"
#include "harness.h"
#include "real_frame.h"

static const char *shipped(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    return path;
}

static int has_bf16(void)
{
    struct mms_cpu cpu;
    mms_cpu_probe(&cpu);
    return cpu.bf16;
}

static float from_bf16(uint16_t v)
{
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* The bf16 value nearest f, ties to the even one: found by comparing the
 * two candidates around it, not by the kernel's bit trick. */
static uint16_t nearest_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dl = fabs((double)f - from_bf16(lo)), dh = fabs((double)f - from_bf16(hi));
    return dl < dh ? lo : dh < dl ? hi : (lo & 1) ? hi : lo;
}

static uint16_t pseudo_bf16(uint32_t *r)
{
    *r = *r * 1664525u + 1013904223u;
    float f = ((float)(*r >> 8) / (float)(1u << 24) - 0.5f) * 20.f;
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return (uint16_t)(u >> 16);
}

/* Each output is the fp32 kernel's value on the same inputs, rounded to
 * the nearest bf16: the two blend alike, the bf16 one rounds once. */
static void bf16_upsampling_rounds_the_float_blend(void)
{
    enum { C = 19, H = 5, W = 9 };
    static uint16_t s[H * W * C], o[4 * H * W * C];
    static float f[H * W * C], fo[4 * H * W * C];
    uint32_t r = 7;
    for (int i = 0; i < H * W * C; i++) {
        s[i] = pseudo_bf16(&r);
        f[i] = from_bf16(s[i]);
    }
    mms_kernel_upsample2_bf16(s, o, C, H, W, C);
    mms_kernel_upsample2(f, fo, 1, C, H, W);
    int bad = 0, inexact = 0;
    for (int i = 0; i < 4 * H * W * C; i++) {
        bad += o[i] != nearest_bf16(fo[i]);
        inexact += from_bf16(o[i]) != fo[i];
    }
    CHECK_MSG(bad == 0, "%d of %d values are not the nearest bf16 of the fp32 blend", bad,
              4 * H * W * C);
    CHECK_MSG(inexact > 0, "every blend was exact in bf16: the inputs test no rounding");
}

/* Written into a concatenation's slice, only the slice changes. */
static void bf16_upsampling_writes_only_its_slice(void)
{
    enum { C = 11, H = 4, W = 6, TOTAL = 30, OFF = 13 };
    static uint16_t src[H * W * C], dense[4 * H * W * C], wide[4 * H * W * TOTAL];
    uint32_t r = 99;
    for (int i = 0; i < H * W * C; i++)
        src[i] = pseudo_bf16(&r);
    for (int i = 0; i < 4 * H * W * TOTAL; i++)
        wide[i] = 0xA5A5;
    mms_kernel_upsample2_bf16(src, dense, C, H, W, C);
    mms_kernel_upsample2_bf16(src, wide + OFF, C, H, W, TOTAL);
    int in_slice = 0, around = 0;
    for (int p = 0; p < 4 * H * W; p++)
        for (int c = 0; c < TOTAL; c++) {
            uint16_t v = wide[p * TOTAL + c];
            if (c >= OFF && c < OFF + C)
                in_slice += v != dense[p * C + c - OFF];
            else
                around += v != 0xA5A5;
        }
    CHECK_MSG(in_slice == 0, "%d values of the slice differ from a dense output", in_slice);
    CHECK_MSG(around == 0, "%d values outside the slice were written", around);
}

/* The AVX2 path gives the portable path's values bit for bit, NaN and
 * infinities included, at every tail length. */
static void bf16_upsampling_vector_equals_scalar(void)
{
    static const int shapes[][3] = {{96, 18, 32}, {35, 5, 7}, {8, 1, 1}, {3, 2, 9}, {17, 9, 16}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int c = shapes[k][0], h = shapes[k][1], w = shapes[k][2];
        size_t n = (size_t)c * h * w;
        uint16_t *s = malloc(2 * n), *v = malloc(8 * n), *p = malloc(8 * n);
        uint32_t r = (uint32_t)k + 3;
        for (size_t i = 0; i < n; i++)
            s[i] = pseudo_bf16(&r);
        s[n / 2] = 0x7fc1;     /* a NaN */
        s[n / 3] = 0xff80;     /* -inf */
        s[n - 1] = 0x0001;     /* a subnormal */
        mms_kernel_upsample2_bf16(s, v, c, h, w, c);
        mms_cpu_use_simd(0);
        mms_kernel_upsample2_bf16(s, p, c, h, w, c);
        mms_cpu_use_simd(1);
        CHECK_MSG(!memcmp(v, p, 8 * n), "bf16 %dx%dx%d", c, h, w);
        free(s), free(v), free(p);
    }
}

static int open_net(enum mms_precision p, struct mms_net **n, struct mms_err *err)
{
    struct mms_net_opts o = {.precision = p, .threads = 1};
    return mms_net_open(shipped(), &o, n, err);
}

/* --precision bf16 runs bf16 where the CPU has it, and its convolutions
 * are oneDNN's bf16 kernels; elsewhere it runs fp32 and says why. */
static void bf16_runs_where_the_cpu_has_it(void)
{
    struct mms_net *n = NULL;
    struct mms_err err = {{0}};
    if (open_net(MMS_PREC_BF16, &n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    const struct mms_net_info *ni = mms_net_info(n);
    int convs = 0, bf16_convs = 0;
    for (int i = 0; i < mms_net_layers(n); i++) {
        struct mms_net_layer l;
        mms_net_layer(n, i, &l);
        if (strcmp(l.op, "conv"))
            continue;
        convs++;
        bf16_convs += l.impl && strstr(l.impl, "bf16") != NULL;
    }
    if (has_bf16()) {
        CHECK_STR_EQ(ni->precision, "bf16");
        CHECK_MSG(bf16_convs == convs && convs > 0, "%d of %d convolutions run bf16 kernels",
                  bf16_convs, convs);
    } else {
        CHECK_STR_EQ(ni->precision, "fp32");
        CHECK_MSG(strstr(ni->precision_why, "no native bf16"), "%s", ni->precision_why);
        CHECK_MSG(bf16_convs == 0, "%d convolutions run bf16 kernels on fp32", bf16_convs);
    }
    mms_net_close(n);
}

/* A file without int8 calibration: auto takes bf16 where the CPU has it. */
static void auto_without_calibration_takes_bf16_where_it_can(void)
{
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    char plain[512];
    snprintf(plain, sizeof(plain), "%s/plain.safetensors", mms_test_tmpdir());
    CHECK(mms_model_open(shipped(), &m, &err) == 0);
    CHECK_MSG(mms_model_write_with(m, plain, MMS_INT8_TENSOR, NULL, -1, NULL, &err) == 0, "%s",
              err.msg);
    mms_model_close(m);
    struct mms_net_opts o = {.precision = MMS_PREC_AUTO, .threads = 1, .in_h = 64, .in_w = 128};
    struct mms_net *n = NULL;
    if (mms_net_open(plain, &o, &n, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    const struct mms_net_info *ni = mms_net_info(n);
    CHECK_STR_EQ(ni->precision, has_bf16() ? "bf16" : "fp32");
    CHECK_MSG(strstr(ni->precision_why, "no int8 calibration"), "%s", ni->precision_why);
    mms_net_close(n);
}

/* A validation frame of EndoVis 2015: bf16's mask is fp32's but for edge
 * pixels, its logits are fp32's to a few per cent, and they are fp32
 * values, not bf16 ones widened (the head accumulates and writes fp32);
 * without bf16 they are fp32's exactly. */
static void bf16_agrees_with_fp32_on_a_real_frame(void)
{
    struct mms_err err = {{0}};
    struct mms_net *f = NULL, *b = NULL;
    if (open_net(MMS_PREC_FP32, &f, &err) || open_net(MMS_PREC_BF16, &b, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    struct mms_net *nets[2] = {f, b};
    if (mms_test_run_real_frame("labeled/endovis15/image/op3_img05.jpg", nets, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    const struct mms_net_info *ni = mms_net_info(f);
    size_t len = (size_t)ni->out_h * ni->out_w;
    const float *lf = mms_net_logits(f), *lb = mms_net_logits(b);
    double diff = 0, mag = 0, d = mms_test_mask_dice(lf, lb, len);
    size_t wide = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t u;
        memcpy(&u, &lb[i], sizeof(u));
        wide += (u & 0xffff) != 0;
        diff += fabs(lb[i] - lf[i]);
        mag += fabs(lf[i]);
    }
    if (has_bf16()) {
        CHECK_MSG(d >= 0.98, "bf16 vs fp32 mask Dice %.4f", d);
        CHECK_MSG(diff < 0.03 * mag && diff > 0,
                  "bf16 logits off fp32's by %.3f %% of their size (0: not bf16 at all?)",
                  100 * diff / mag);
        CHECK_MSG(wide > len / 2, "only %zu of %zu logits have more than bf16's bits", wide, len);
    } else {
        CHECK_MSG(diff == 0, "the fp32 fallback differs from fp32 (%.3g)", diff);
    }
done:
    mms_net_close(f);
    mms_net_close(b);
}

MMS_TESTS(T(bf16_upsampling_rounds_the_float_blend), T(bf16_upsampling_writes_only_its_slice),
          T(bf16_upsampling_vector_equals_scalar),
          T(bf16_runs_where_the_cpu_has_it), T(auto_without_calibration_takes_bf16_where_it_can),
          T(bf16_agrees_with_fp32_on_a_real_frame))
