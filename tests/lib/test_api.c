/*
 * include/mms/mms.h through libmms.so, held to the engine's own calls
 * (core/net.h, core/prepost.h, core/yuv.h): the same logits and mask for
 * an RGB frame, every Y'CbCr layout equal to its RGB conversion,
 * precisions and their reasons, the input size, batches, measuring a
 * mask; and every refusal, with its errno and a message that names the
 * problem.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/net.h"
#include "core/prepost.h"
#include "core/version.h"
#include "core/yuv.h"
#include <omp.h>
#include <pthread.h>

#include "harness.h"
#include "mms/mms.h"

#define W 203 /* odd sizes: chroma rounds up, resizes are not exact halves */
#define H 117

static char model[4096];

static const char *model_path(void)
{
    snprintf(model, sizeof(model), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    return model;
}

/* A picture with structure everywhere, so that a misread plane shows. */
static void fill_rgb(uint8_t *rgb, int w, int h, int stride, int seed)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + (size_t)y * stride + 3 * x;
            p[0] = (uint8_t)(x * 255 / w + seed);
            p[1] = (uint8_t)(y * 255 / h);
            p[2] = (uint8_t)((x * y + seed * 7) % 251);
        }
}

static void fill_plane(uint8_t *p, int w, int h, int stride, int mul, int add)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            p[(size_t)y * stride + x] = (uint8_t)(16 + (x * mul + y * 3 + add) % 224);
}

static struct mms_engine *open_ok(const struct mms_options *o)
{
    struct mms_engine *e = NULL;
    struct mms_error err = {{0}};
    int ret = mms_open(model_path(), o, &e, &err);
    CHECK_MSG(ret == 0 && e, "mms_open: %d %s", ret, err.msg);
    return ret == 0 ? e : NULL;
}

/* ret is code and the message contains `text`. */
static void check_refused(int ret, int code, const struct mms_error *err, const char *text)
{
    CHECK_EQ(ret, code);
    CHECK_MSG(strstr(err->msg, text) != NULL, "'%s' not in '%s'", text, err->msg);
}

static void test_version(void)
{
    CHECK_STR_EQ(mms_version(), MMS_VERSION);
    CHECK_EQ(MMS_ABI_VERSION, 0);
}

/* The library's logits and mask for an RGB frame are the engine's. */
static void test_rgb_same_as_engine(void)
{
    const struct mms_options o = {.precision = MMS_PRECISION_FP32};
    struct mms_engine *e = open_ok(&o);
    struct mms_net *n = NULL;
    struct mms_err ne = {{0}};
    struct mms_net_opts no = {.precision = MMS_PREC_FP32};
    CHECK_MSG(mms_net_open(model_path(), &no, &n, &ne) == 0, "%s", ne.msg);
    if (!e || !n)
        goto done;
    const struct mms_info *i = mms_info(e);
    const struct mms_net_info *ni = mms_net_info(n);
    CHECK_EQ(i->in_height, ni->in_h);
    CHECK_EQ(i->in_width, ni->in_w);
    CHECK_EQ(i->out_height, ni->out_h);
    CHECK_EQ(i->out_width, ni->out_w);
    CHECK_STR_EQ(i->arch, "mms-rt");
    CHECK_STR_EQ(i->path, model_path());
    CHECK(i->threshold == ni->threshold);
    CHECK_EQ(i->precision, MMS_PRECISION_FP32);
    CHECK_STR_EQ(i->precision_why, "asked for");

    int stride = 3 * W + 5; /* padded rows */
    uint8_t *rgb = calloc((size_t)stride * H, 1), *mask = malloc((size_t)W * H),
            *ref = malloc((size_t)W * H);
    fill_rgb(rgb, W, H, stride, 0);
    struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = W, .height = H, .data = {rgb},
                          .stride = {stride}};
    struct mms_error err = {{0}};
    CHECK_EQ(mms_run(e, &f, &err), 0);
    CHECK_EQ(mms_mask(e, mask, W, H, W, &err), 0);

    mms_pre_rgb24(rgb, W, H, stride, mms_net_input(n), ni->in_h, ni->in_w, ni->mean, ni->std);
    CHECK_EQ(mms_net_run(n, &ne), 0);
    size_t plane = (size_t)ni->out_h * ni->out_w;
    CHECK(mms_logits(e) && !memcmp(mms_logits(e), mms_net_logits(n), plane * sizeof(float)));
    mms_post_mask(mms_net_logits(n), ni->out_h, ni->out_w, ref, W, H, W, ni->threshold);
    CHECK(!memcmp(mask, ref, (size_t)W * H));
    int other = 0;
    for (size_t k = 0; k < (size_t)W * H; k++)
        other += mask[k] != 0 && mask[k] != 255;
    CHECK_EQ(other, 0);

    /* A mask at another size and stride is the same resize. */
    size_t big_n = (size_t)(2 * W + 3) * 2 * H;
    uint8_t *big = malloc(big_n), *big_ref = malloc(big_n);
    memset(big, 7, big_n);
    memset(big_ref, 7, big_n);
    CHECK_EQ(mms_mask(e, big, 2 * W, 2 * H, 2 * W + 3, &err), 0);
    mms_post_mask(mms_net_logits(n), ni->out_h, ni->out_w, big_ref, 2 * W, 2 * H, 2 * W + 3,
                  ni->threshold);
    CHECK(!memcmp(big, big_ref, big_n)); /* the padding untouched too */
    free(big);
    free(big_ref);
    free(rgb);
    free(mask);
    free(ref);
done:
    mms_net_close(n);
    mms_close(e);
}

/* The library's flip is the engine's flip, to the bit; OFF is the plain
 * run again. */
static void check_flip_run(struct mms_engine *e, enum mms_tta tta)
{
    struct mms_net *n = NULL;
    struct mms_err ne = {{0}};
    struct mms_net_opts no = {.precision = MMS_PREC_FP32, .tta = tta};
    CHECK_MSG(mms_net_open(model_path(), &no, &n, &ne) == 0, "%s", ne.msg);
    uint8_t *rgb = calloc((size_t)3 * W * H, 1);
    if (!n || !rgb)
        goto done;
    const struct mms_net_info *ni = mms_net_info(n);
    fill_rgb(rgb, W, H, 3 * W, 1);
    struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = W, .height = H, .data = {rgb},
                          .stride = {3 * W}};
    struct mms_error err = {{0}};
    CHECK_EQ(mms_run(e, &f, &err), 0);
    mms_pre_rgb24(rgb, W, H, 3 * W, mms_net_input(n), ni->in_h, ni->in_w, ni->mean, ni->std);
    CHECK_EQ(mms_net_run(n, &ne), 0);
    size_t plane = (size_t)ni->out_h * ni->out_w;
    CHECK(mms_logits(e) && !memcmp(mms_logits(e), mms_net_logits(n), plane * sizeof(float)));
done:
    free(rgb);
    mms_net_close(n);
}

static void test_flip_same_as_engine(void)
{
    const struct mms_options o = {.precision = MMS_PRECISION_FP32};
    struct mms_engine *e = open_ok(&o);
    struct mms_error err = {{0}};
    if (!e)
        return;
    /* auto never flips fp32 */
    CHECK_EQ(mms_info(e)->flip, 0);
    CHECK_MSG(!strncmp(mms_info(e)->flip_why, "auto:", 5), "%s", mms_info(e)->flip_why);
    CHECK_EQ(mms_set_flip(e, MMS_FLIP_ON, &err), 0);
    CHECK_EQ(mms_info(e)->flip, 1);
    CHECK_STR_EQ(mms_info(e)->flip_why, "asked for");
    check_flip_run(e, MMS_TTA_FLIP);
    CHECK_EQ(mms_set_flip(e, MMS_FLIP_OFF, &err), 0);
    CHECK_EQ(mms_info(e)->flip, 0);
    check_flip_run(e, MMS_TTA_OFF);
    mms_close(e);
}

static void test_set_flip_refused(void)
{
    struct mms_engine *e = open_ok(NULL);
    struct mms_error err = {{0}};
    if (!e)
        return;
    int before = mms_info(e)->flip;
    check_refused(mms_set_flip(e, 3, &err), -EINVAL, &err, "unknown flip 3");
    check_refused(mms_set_flip(e, -1, &err), -EINVAL, &err, "unknown flip -1");
    CHECK_EQ(mms_info(e)->flip, before);
    check_refused(mms_set_flip(NULL, MMS_FLIP_ON, &err), -EINVAL, &err, "no engine");
    CHECK_EQ(mms_set_flip(e, MMS_FLIP_AUTO, NULL), 0); /* err may be NULL */
    mms_close(e);
}

/* Each Y'CbCr layout gives the logits of its own RGB conversion
 * (core/yuv.h), whatever its matrix, range and siting. */
static void test_yuv_layouts(void)
{
    struct mms_engine *e = open_ok(&(struct mms_options){.precision = MMS_PRECISION_FP32});
    if (!e)
        return;
    const struct mms_info *i = mms_info(e);
    size_t plane = (size_t)i->out_height * i->out_width;
    float *want = malloc(plane * sizeof(float));
    static const struct {
        int format, cs, full, loc;
        enum mms_yuv_layout layout;
        enum mms_yuv_matrix matrix;
        int sub_x, sub_y;
    } cases[] = {
        {MMS_FRAME_YUV420P, MMS_COLOR_BT709, 0, MMS_CHROMA_LEFT, MMS_YUV_420P, MMS_YUV_BT709, 1, 1},
        {MMS_FRAME_YUV420P, MMS_COLOR_BT601, 1, MMS_CHROMA_CENTER, MMS_YUV_420P, MMS_YUV_BT601, 1, 1},
        {MMS_FRAME_NV12, MMS_COLOR_BT2020, 0, MMS_CHROMA_LEFT, MMS_YUV_NV12, MMS_YUV_BT2020, 1, 1},
        {MMS_FRAME_YUV422P, MMS_COLOR_SMPTE240M, 0, MMS_CHROMA_LEFT, MMS_YUV_422P, MMS_YUV_SMPTE240M, 1, 0},
        {MMS_FRAME_YUV444P, MMS_COLOR_FCC, 1, MMS_CHROMA_LEFT, MMS_YUV_444P, MMS_YUV_FCC, 0, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int cw = cases[c].sub_x ? (W + 1) / 2 : W, ch = cases[c].sub_y ? (H + 1) / 2 : H;
        int nv12 = cases[c].format == MMS_FRAME_NV12;
        int ys = W + 9, cs = (nv12 ? 2 * cw : cw) + 4;
        uint8_t *y = malloc((size_t)ys * H), *u = malloc((size_t)cs * ch),
                *v = malloc((size_t)cs * ch), *rgb = malloc((size_t)3 * W * H);
        fill_plane(y, W, H, ys, 5, 0);
        fill_plane(u, nv12 ? 2 * cw : cw, ch, cs, 11, 40);
        fill_plane(v, cw, ch, cs, 7, 90);
        struct mms_frame f = {.format = cases[c].format, .width = W, .height = H,
                              .data = {y, u, nv12 ? NULL : v}, .stride = {ys, cs, nv12 ? 0 : cs},
                              .colorspace = cases[c].cs, .full_range = cases[c].full,
                              .chroma_loc = cases[c].loc};
        struct mms_yuv yuv = {.plane = {y, u, nv12 ? NULL : v}, .stride = {ys, cs, cs},
                              .w = W, .h = H, .layout = cases[c].layout,
                              .matrix = cases[c].matrix, .full_range = cases[c].full,
                              .site_x = cases[c].loc == MMS_CHROMA_CENTER, .site_y = 1};
        mms_yuv_to_rgb24(&yuv, rgb, 3 * W);
        struct mms_frame fr = {.format = MMS_FRAME_RGB24, .width = W, .height = H,
                               .data = {rgb}, .stride = {3 * W}};
        struct mms_error err = {{0}};
        CHECK_MSG(mms_run(e, &fr, &err) == 0, "case %zu rgb: %s", c, err.msg);
        memcpy(want, mms_logits(e), plane * sizeof(float));
        CHECK_MSG(mms_run(e, &f, &err) == 0, "case %zu: %s", c, err.msg);
        float worst = 0;
        for (size_t k = 0; k < plane; k++)
            worst = fmaxf(worst, fabsf(mms_logits(e)[k] - want[k]));
        /* core/prepost.h: the one-pass conversion equals convert-then-resize;
         * only float summation order may differ. */
        CHECK_MSG(worst < 1e-4f, "case %zu: logits differ by %g from the RGB conversion's", c,
                  worst);
        free(y);
        free(u);
        free(v);
        free(rgb);
    }
    free(want);
    mms_close(e);
}

static void test_precisions(void)
{
    struct mms_engine *e = open_ok(&(struct mms_options){.precision = MMS_PRECISION_INT8});
    if (e) {
        /* The shipped model carries a calibration that passed. */
        CHECK_EQ(mms_info(e)->precision, MMS_PRECISION_INT8);
        mms_close(e);
    }
    if ((e = open_ok(&(struct mms_options){.precision = MMS_PRECISION_BF16}))) {
        /* bf16 where the CPU has it, else fp32 saying why */
        struct mms_cpu cpu;
        mms_cpu_probe(&cpu);
        CHECK_EQ(mms_info(e)->precision, cpu.bf16 ? MMS_PRECISION_BF16 : MMS_PRECISION_FP32);
        CHECK_MSG(cpu.bf16 || strstr(mms_info(e)->precision_why, "no native bf16") != NULL,
                  "%s", mms_info(e)->precision_why);
        mms_close(e);
    }
    if ((e = open_ok(NULL))) { /* AUTO */
        CHECK_MSG(!strncmp(mms_info(e)->precision_why, "auto", 4), "%s",
                  mms_info(e)->precision_why);
        mms_close(e);
    }
}

static void test_input_size(void)
{
    struct mms_engine *e =
        open_ok(&(struct mms_options){.precision = MMS_PRECISION_FP32, .height = 160, .width = 224});
    if (!e)
        return;
    CHECK_EQ(mms_info(e)->in_height, 160);
    CHECK_EQ(mms_info(e)->in_width, 224);
    CHECK_EQ(mms_info(e)->out_height, 160);
    CHECK_EQ(mms_info(e)->out_width, 224);
    mms_close(e);
}

/* Three frames of three sizes in one call: each the same as alone. */
static void test_batch(void)
{
    struct mms_engine *e = open_ok(&(struct mms_options){.precision = MMS_PRECISION_FP32});
    if (!e)
        return;
    const struct mms_info *i = mms_info(e);
    size_t plane = (size_t)i->out_height * i->out_width;
    static const int sizes[3][2] = {{64, 48}, {W, H}, {512, 288}};
    uint8_t *rgb[3], *masks[3], *one = malloc(512 * 288);
    struct mms_frame f[3];
    float *logits = malloc(3 * plane * sizeof(float));
    for (int k = 0; k < 3; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        rgb[k] = malloc((size_t)3 * w * h);
        masks[k] = malloc((size_t)w * h);
        fill_rgb(rgb[k], w, h, 3 * w, 30 * k);
        f[k] = (struct mms_frame){.format = MMS_FRAME_RGB24, .width = w, .height = h,
                                  .data = {rgb[k]}, .stride = {3 * w}};
    }
    struct mms_error err = {{0}};
    CHECK_EQ(mms_run_batch(e, f, 3, logits, masks, &err), 0);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(mms_run(e, &f[k], &err), 0);
        CHECK_EQ(mms_mask(e, one, f[k].width, f[k].height, f[k].width, &err), 0);
        CHECK_MSG(!memcmp(logits + k * plane, mms_logits(e), plane * sizeof(float)),
                  "frame %d's logits", k);
        CHECK_MSG(!memcmp(masks[k], one, (size_t)f[k].width * f[k].height), "frame %d's mask", k);
    }
    /* Logits only, masks only, nothing: all fine. */
    CHECK_EQ(mms_run_batch(e, f, 3, logits, NULL, &err), 0);
    CHECK_EQ(mms_run_batch(e, f, 3, NULL, masks, &err), 0);
    CHECK_EQ(mms_run_batch(e, f, 0, NULL, NULL, &err), 0);

    /* A bad frame in the middle: refused, named by its index. */
    f[1].width = 0;
    check_refused(mms_run_batch(e, f, 3, logits, masks, &err), -EINVAL, &err, "frame 1: frame size 0x");
    check_refused(mms_run_batch(e, f, -1, NULL, NULL, &err), -EINVAL, &err, "-1 frames");
    check_refused(mms_run_batch(e, NULL, 2, NULL, NULL, &err), -EINVAL, &err, "2 frames");
    check_refused(mms_run_batch(NULL, f, 1, NULL, NULL, &err), -EINVAL, &err, "engine is NULL");
    for (int k = 0; k < 3; k++) {
        free(rgb[k]);
        free(masks[k]);
    }
    free(one);
    free(logits);
    mms_close(e);
}

/* The default model (path NULL) is the shipped one, found as mms finds it. */
static void test_default_model(void)
{
    struct mms_engine *e = NULL;
    struct mms_error err = {{0}};
    unsetenv("MMS_MODEL");
    CHECK_MSG(mms_open(NULL, NULL, &e, &err) == 0, "%s", err.msg);
    if (e)
        CHECK(strstr(mms_info(e)->path, "mms-rt.safetensors") != NULL);
    mms_close(e);
    e = NULL;
    char gone[4200];
    snprintf(gone, sizeof(gone), "%s/gone.safetensors", mms_test_tmpdir());
    setenv("MMS_MODEL", gone, 1);
    check_refused(mms_open(NULL, NULL, &e, &err), -ENOENT, &err, gone);
    CHECK(e == NULL);
    unsetenv("MMS_MODEL");
}

static void write_prefix(const char *path, long n)
{
    FILE *in = fopen(model_path(), "rb"), *out = fopen(path, "wb");
    CHECK(in && out);
    for (long k = 0; in && out && k < n; k++) {
        int c = fgetc(in);
        if (c == EOF)
            break;
        fputc(c, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static void test_open_refused(void)
{
    struct mms_engine *e = (struct mms_engine *)&e; /* must be reset to NULL */
    struct mms_error err = {{0}};
    char path[4200];
    const char *dir = mms_test_tmpdir();

    snprintf(path, sizeof(path), "%s/missing.safetensors", dir);
    check_refused(mms_open(path, NULL, &e, &err), -ENOENT, &err, path);
    CHECK(e == NULL);
    static const long cuts[] = {0, 7, 1000, 200000};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        snprintf(path, sizeof(path), "%s/cut%ld.safetensors", dir, cuts[k]);
        write_prefix(path, cuts[k]);
        check_refused(mms_open(path, NULL, &e, &err), -EINVAL, &err, path);
        CHECK(e == NULL);
    }
    /* err NULL is allowed: the code alone. */
    CHECK_EQ(mms_open(path, NULL, &e, NULL), -EINVAL);
    check_refused(mms_open(model_path(), NULL, NULL, &err), -EINVAL, &err, "out is NULL");
    check_refused(mms_open(model_path(), &(struct mms_options){.precision = 9}, &e, &err),
                  -EINVAL, &err, "unknown precision 9");
    check_refused(mms_open(model_path(), &(struct mms_options){.threads = -2}, &e, &err),
                  -EINVAL, &err, "threads -2");
    /* 100000 crashed the caller inside OpenMP's parallel region. */
    check_refused(mms_open(model_path(), &(struct mms_options){.threads = 100000}, &e, &err),
                  -EINVAL, &err, "threads 100000");
    check_refused(mms_open(model_path(),
                           &(struct mms_options){.threads = MMS_MAX_THREADS + 1}, &e, &err),
                  -EINVAL, &err, "0 (all cores) to 256");
    check_refused(mms_open(model_path(), &(struct mms_options){.height = 160}, &e, &err),
                  -EINVAL, &err, "input size 160x0");
    check_refused(mms_open(model_path(), &(struct mms_options){.height = -32, .width = 32}, &e,
                           &err),
                  -EINVAL, &err, "input size -32x32");
    /* Not a multiple of the network's stride: the engine's own refusal. */
    check_refused(mms_open(model_path(), &(struct mms_options){.height = 100, .width = 100}, &e,
                           &err),
                  -EINVAL, &err, "multiples of 32");
    CHECK(e == NULL);
}

static void test_run_refused(void)
{
    struct mms_engine *e = open_ok(&(struct mms_options){.precision = MMS_PRECISION_FP32});
    if (!e)
        return;
    struct mms_error err = {{0}};
    uint8_t mask[16], px[3 * W * H];
    memset(px, 100, sizeof(px));
    /* Nothing has run yet. */
    CHECK(mms_logits(e) == NULL);
    check_refused(mms_mask(e, mask, 4, 4, 4, &err), -EINVAL, &err, "no frame has been run");

    const struct mms_frame good = {.format = MMS_FRAME_RGB24, .width = W, .height = H,
                                   .data = {px, px, px}, .stride = {3 * W, W, W}};
    struct mms_frame f;
#define REFUSED(change, text)                                                  \
    do {                                                                       \
        f = good;                                                              \
        change;                                                                \
        check_refused(mms_run(e, &f, &err), -EINVAL, &err, text);              \
    } while (0)
    REFUSED(f.width = 0, "frame size 0x117");
    REFUSED(f.height = -5, "frame size 203x-5");
    REFUSED(f.width = 16385, "frame size 16385x117");
    REFUSED(f.format = 0, "unknown format 0");
    REFUSED(f.format = 42, "unknown format 42");
    REFUSED(f.data[0] = NULL, "plane 0 is NULL");
    REFUSED(f.stride[0] = 3 * W - 1, "plane 0 stride 608 is less than a row (609 bytes)");
    REFUSED(f.stride[0] = -3 * W, "plane 0 stride");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.stride[0] = W - 1), "plane 0 stride 202");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.stride[1] = 101), "plane 1 stride 101 is less than a row (102");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.data[2] = NULL), "plane 2 is NULL");
    REFUSED((f.format = MMS_FRAME_NV12, f.stride[1] = 203), "plane 1 stride 203 is less than a row (204");
    REFUSED((f.format = MMS_FRAME_YUV444P, f.stride[2] = 102), "plane 2 stride 102");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.colorspace = 5), "unknown colorspace 5");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.full_range = 2), "full_range 2");
    REFUSED((f.format = MMS_FRAME_YUV420P, f.chroma_loc = -1), "unknown chroma location -1");
    check_refused(mms_run(e, NULL, &err), -EINVAL, &err, "frame is NULL");
    check_refused(mms_run(NULL, &good, &err), -EINVAL, &err, "engine is NULL");
    /* Refused frames left nothing to read. */
    CHECK(mms_logits(e) == NULL);

    /* A good run, then a refused frame: the good run's logits stay. */
    CHECK_EQ(mms_run(e, &good, &err), 0);
    const float *l = mms_logits(e);
    CHECK(l != NULL);
    REFUSED(f.width = 0, "frame size");
    CHECK(mms_logits(e) == l);
    CHECK_EQ(mms_mask(e, mask, 4, 4, 4, NULL), 0);
    check_refused(mms_mask(e, mask, 0, 4, 4, &err), -EINVAL, &err, "mask size 0x4");
    check_refused(mms_mask(e, mask, 4, 20000, 4, &err), -EINVAL, &err, "mask size 4x20000");
    check_refused(mms_mask(e, mask, 4, 4, 3, &err), -EINVAL, &err, "mask stride 3");
    check_refused(mms_mask(e, NULL, 4, 4, 4, &err), -EINVAL, &err, "buffer is NULL");
    check_refused(mms_mask(NULL, mask, 4, 4, 4, &err), -EINVAL, &err, "engine is NULL");
    CHECK(mms_logits(NULL) == NULL);
    CHECK(mms_info(NULL) == NULL);
    mms_close(e);
    mms_close(NULL);
}

/* mms_mask_measure(): needs no engine; the core's numbers (tests/core/test_mask.c
 * holds the cases) through the public struct. */
static void test_mask_measure(void)
{
    enum { MW = 5, MH = 4, MS = 8 };
    uint8_t m[MS * MH];
    memset(m, 255, sizeof(m)); /* the padding past MW too: not tool */
    for (int y = 0; y < MH; y++)
        memset(m + y * MS, 0, MW);
    m[1 * MS + 3] = 255;
    m[2 * MS + 1] = 7;
    struct mms_mask_info info;
    CHECK_EQ(mms_mask_measure(m, MW, MH, MS, &info, NULL), 0);
    CHECK_EQ(info.count, 2);
    CHECK(info.fraction == 2.0 / (MW * MH));
    CHECK(info.x0 == 1 && info.y0 == 1 && info.x1 == 3 && info.y1 == 2);
}

static void test_mask_measure_empty(void)
{
    uint8_t m[6] = {0};
    struct mms_mask_info info;
    CHECK_EQ(mms_mask_measure(m, 3, 2, 3, &info, NULL), 0);
    CHECK_EQ(info.count, 0);
    CHECK(info.fraction == 0);
    CHECK(info.x0 == -1 && info.y0 == -1 && info.x1 == -1 && info.y1 == -1);
}

/* A refusal leaves the caller's struct as it was. */
static void check_measure_refused(const uint8_t *m, int w, int h, int stride,
                                  struct mms_mask_info *info)
{
    struct mms_mask_info before = {.count = 42, .x0 = 42};
    if (info)
        *info = before;
    struct mms_error err = {0};
    CHECK_EQ(mms_mask_measure(m, w, h, stride, info, &err), -EINVAL);
    CHECK(!strncmp(err.msg, "measure: ", 9));
    if (info)
        CHECK(info->count == 42 && info->x0 == 42);
}

static void test_mask_measure_refuses_null(void)
{
    uint8_t m[4] = {0};
    struct mms_mask_info info;
    check_measure_refused(NULL, 2, 2, 2, &info);
    check_measure_refused(m, 2, 2, 2, NULL);
}

static void test_mask_measure_refuses_bad_size(void)
{
    uint8_t m[4] = {0};
    struct mms_mask_info info;
    check_measure_refused(m, 0, 2, 2, &info);
    check_measure_refused(m, 2, 0, 2, &info);
    check_measure_refused(m, -2, 2, 2, &info);
    check_measure_refused(m, 2, -2, 2, &info);
}

static void test_mask_measure_refuses_short_stride(void)
{
    uint8_t m[4] = {0};
    struct mms_mask_info info;
    check_measure_refused(m, 2, 2, 1, &info);
    check_measure_refused(m, 2, 2, -2, &info);
}

/* The caller's OpenMP thread count is its own: opening, running, masking
 * and flipping with an engine of one thread leave it as it was, in the
 * opening thread and in another. */
static struct mms_engine *omp_engine;
static int omp_before_run, omp_after_run;

static void *run_in_thread(void *arg)
{
    (void)arg;
    omp_before_run = omp_get_max_threads();
    static uint8_t rgb[64 * 64 * 3];
    struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = 64, .height = 64,
                          .data = {rgb}, .stride = {64 * 3}};
    struct mms_error err;
    CHECK_EQ(mms_run(omp_engine, &f, &err), 0);
    omp_after_run = omp_get_max_threads();
    return NULL;
}

static void test_openmp_threads_are_the_callers(void)
{
    omp_set_num_threads(3);
    struct mms_options o = {.threads = 1};
    struct mms_error err;
    CHECK_EQ(mms_open(model_path(), &o, &omp_engine, &err), 0);
    CHECK_EQ(omp_get_max_threads(), 3);
    if (!omp_engine)
        return;
    static uint8_t rgb[32 * 32 * 3], mask[32 * 32];
    struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = 32, .height = 32,
                          .data = {rgb}, .stride = {32 * 3}};
    CHECK_EQ(mms_run(omp_engine, &f, &err), 0);
    CHECK_EQ(mms_mask(omp_engine, mask, 32, 32, 32, &err), 0);
    CHECK_EQ(mms_set_flip(omp_engine, MMS_FLIP_ON, &err), 0);
    CHECK_EQ(omp_get_max_threads(), 3);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_in_thread, NULL) == 0);
    pthread_join(t, NULL);
    /* A new thread starts from the process's default, and keeps it. */
    CHECK_EQ(omp_after_run, omp_before_run);
    mms_close(omp_engine);
    omp_engine = NULL;
}

MMS_TESTS(T(test_version), T(test_rgb_same_as_engine), T(test_flip_same_as_engine),
          T(test_set_flip_refused), T(test_yuv_layouts), T(test_precisions),
          T(test_input_size), T(test_batch), T(test_default_model), T(test_open_refused),
          T(test_run_refused), T(test_mask_measure), T(test_mask_measure_empty),
          T(test_mask_measure_refuses_null), T(test_mask_measure_refuses_bad_size),
          T(test_mask_measure_refuses_short_stride), T(test_openmp_threads_are_the_callers))
