/*
 * libmms: include/mms/mms.h over the engine in core/. Only what the header
 * marks MMS_API leaves the shared library (lib/mms.map); everything here
 * is the engine's own calls, so a frame takes the same steps as in
 * `mms segment` and mmsd (core/prepost.h).
 */
#include "mms/mms.h"

#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/locate.h"
#include "core/mask.h"
#include "core/net.h"
#include "core/prepost.h"
#include "core/version.h"
#include "core/yuv.h"
#include "overlay/compose.h"

/* As io/image.c allows for stills: 16384 a side keeps every w * h * 3 in
 * an int and a frame's rows addressable with int strides. */
#define MAX_SIDE MMS_FRAME_MAX_SIDE

struct mms_engine {
    struct mms_net *net;
    struct mms_info info;
    int ran;     /* the logits hold a frame */
    int threads; /* OpenMP threads the engine runs with */
};

/* The caller's OpenMP thread count is its own. oneDNN takes the count from
 * the calling thread, so the engine sets it for the calls that run it and
 * gives the caller's back: an engine opened with 1 thread must not make
 * the caller's own parallel code, or a later engine asking for all cores,
 * run on one. */
static int omp_take(int threads)
{
    int saved = omp_get_max_threads();
    if (threads > 0 && threads != saved)
        omp_set_num_threads(threads);
    return saved;
}

static void omp_give(int saved)
{
    if (omp_get_max_threads() != saved)
        omp_set_num_threads(saved);
}

/* The public error is the engine's one line, copied: the engine keeps its
 * own struct so that the public one can stay fixed while it changes. */
static int from_engine(struct mms_error *err, const struct mms_err *e, int code)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg), "%s", e->msg[0] ? e->msg : strerror(-code));
    return code;
}

static int failf(struct mms_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct mms_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

MMS_API const char *mms_version(void) { return MMS_VERSION; }

static int net_precision(int p, enum mms_precision *out)
{
    switch (p) {
    case MMS_PRECISION_AUTO: *out = MMS_PREC_AUTO; return 0;
    case MMS_PRECISION_FP32: *out = MMS_PREC_FP32; return 0;
    case MMS_PRECISION_INT8: *out = MMS_PREC_INT8; return 0;
    case MMS_PRECISION_BF16: *out = MMS_PREC_BF16; return 0;
    }
    return -EINVAL;
}

MMS_API int mms_open(const char *path, const struct mms_options *opts, struct mms_engine **out,
                     struct mms_error *err)
{
    struct mms_options o = opts ? *opts : (struct mms_options){0};
    /* mms_options has no tta field until the next ABI: the library takes
     * the default every mms command and mmsd take, so that one frame still
     * gives one mask everywhere. */
    struct mms_net_opts no = {
        .threads = o.threads, .in_h = o.height, .in_w = o.width, .tta = MMS_TTA_AUTO};
    struct mms_err e = {{0}};
    char located[PATH_MAX];
    struct mms_engine *m = NULL;
    int ret;

    if (!out)
        return failf(err, -EINVAL, "mms_open: out is NULL");
    *out = NULL;
    if (net_precision(o.precision, &no.precision) < 0)
        return failf(err, -EINVAL, "unknown precision %d (MMS_PRECISION_AUTO, FP32, INT8, BF16)",
                     o.precision);
    /* oneDNN's OpenMP runtime reserves a stack frame per thread: a count in
     * the tens of thousands crashed the caller inside mms_open. */
    if (o.threads < 0 || o.threads > MMS_MAX_THREADS)
        return failf(err, -EINVAL, "threads %d: 0 (all cores) to %d", o.threads,
                     MMS_MAX_THREADS);
    /* The engine treats one zero side as "the card's" for that side only;
     * half a size is more likely a caller's slip than a wish. */
    if (o.height < 0 || o.width < 0 || (!o.height != !o.width))
        return failf(err, -EINVAL, "input size %dx%d: both positive, or both 0 for the model's",
                     o.height, o.width);
    if (!path) {
        /* locate writes the places it tried into the buffer on failure. */
        if ((ret = mms_locate_default_model(located, sizeof(located))) < 0)
            return failf(err, ret, "%s", located);
        path = located;
    }
    if (!(m = calloc(1, sizeof(*m)))) {
        ret = failf(err, -ENOMEM, "out of memory");
        goto fail;
    }
    int saved = omp_get_max_threads();
    ret = mms_net_open(path, &no, &m->net, &e);
    m->threads = omp_get_max_threads(); /* the count it compiled for */
    omp_give(saved);
    if (ret < 0) {
        from_engine(err, &e, ret);
        goto fail;
    }
    const struct mms_net_info *ni = mms_net_info(m->net);
    m->info = (struct mms_info){
        .path = ni->path,
        .arch = ni->arch,
        .in_height = ni->in_h,
        .in_width = ni->in_w,
        .out_height = ni->out_h,
        .out_width = ni->out_w,
        .precision = !strcmp(ni->precision, "int8")   ? MMS_PRECISION_INT8
                     : !strcmp(ni->precision, "bf16") ? MMS_PRECISION_BF16
                                                      : MMS_PRECISION_FP32,
        .precision_why = ni->precision_why,
        .threshold = ni->threshold,
        .flip = ni->flip,
        .flip_why = ni->tta_why,
    };
    *out = m;
    return 0;
fail:
    mms_close(m);
    return ret;
}

MMS_API void mms_close(struct mms_engine *e)
{
    if (!e)
        return;
    mms_net_close(e->net);
    free(e);
}

MMS_API const struct mms_info *mms_info(const struct mms_engine *e) { return e ? &e->info : NULL; }

MMS_API int mms_set_flip(struct mms_engine *e, int flip, struct mms_error *err)
{
    static const enum mms_tta tta[] = {
        [MMS_FLIP_AUTO] = MMS_TTA_AUTO, [MMS_FLIP_OFF] = MMS_TTA_OFF, [MMS_FLIP_ON] = MMS_TTA_FLIP};
    if (!e)
        return failf(err, -EINVAL, "mms_set_flip: no engine");
    if (flip < 0 || flip >= (int)(sizeof(tta) / sizeof(tta[0])))
        return failf(err, -EINVAL, "unknown flip %d (MMS_FLIP_AUTO, OFF, ON)", flip);
    struct mms_err me = {{0}};
    int saved = omp_take(e->threads);
    int ret = mms_net_set_tta(e->net, tta[flip], &me);
    omp_give(saved);
    if (ret < 0)
        return from_engine(err, &me, ret);
    e->info.flip = mms_net_info(e->net)->flip;
    return 0;
}

static int check_plane(const struct mms_frame *f, int i, int row_bytes, struct mms_error *err)
{
    if (!f->data[i])
        return failf(err, -EINVAL, "frame: plane %d is NULL", i);
    if (f->stride[i] < row_bytes)
        return failf(err, -EINVAL, "frame: plane %d stride %d is less than a row (%d bytes)", i,
                     f->stride[i], row_bytes);
    return 0;
}

/* Everything the engine would otherwise read out of bounds or misread,
 * refused with what is wrong. */
static int check_frame(const struct mms_frame *f, struct mms_error *err)
{
    if (!f)
        return failf(err, -EINVAL, "frame is NULL");
    if (f->width < 1 || f->height < 1 || f->width > MAX_SIDE || f->height > MAX_SIDE)
        return failf(err, -EINVAL, "frame size %dx%d: width and height must be 1..%d", f->width,
                     f->height, MAX_SIDE);
    int cw = (f->width + 1) / 2, ret;
    switch (f->format) {
    case MMS_FRAME_RGB24:
        return check_plane(f, 0, 3 * f->width, err);
    case MMS_FRAME_YUV420P:
    case MMS_FRAME_YUV422P:
        if ((ret = check_plane(f, 0, f->width, err)) < 0 ||
            (ret = check_plane(f, 1, cw, err)) < 0 || (ret = check_plane(f, 2, cw, err)) < 0)
            return ret;
        break;
    case MMS_FRAME_YUV444P:
        if ((ret = check_plane(f, 0, f->width, err)) < 0 ||
            (ret = check_plane(f, 1, f->width, err)) < 0 ||
            (ret = check_plane(f, 2, f->width, err)) < 0)
            return ret;
        break;
    case MMS_FRAME_NV12:
        if ((ret = check_plane(f, 0, f->width, err)) < 0 ||
            (ret = check_plane(f, 1, 2 * cw, err)) < 0)
            return ret;
        break;
    default:
        return failf(err, -EINVAL, "frame: unknown format %d", f->format);
    }
    if (f->colorspace < MMS_COLOR_BT601 || f->colorspace > MMS_COLOR_FCC)
        return failf(err, -EINVAL, "frame: unknown colorspace %d", f->colorspace);
    if (f->full_range != 0 && f->full_range != 1)
        return failf(err, -EINVAL, "frame: full_range %d is neither 0 nor 1", f->full_range);
    if (f->chroma_loc != MMS_CHROMA_LEFT && f->chroma_loc != MMS_CHROMA_CENTER)
        return failf(err, -EINVAL, "frame: unknown chroma location %d", f->chroma_loc);
    return 0;
}

static void to_yuv(const struct mms_frame *f, struct mms_yuv *y)
{
    static const enum mms_yuv_layout layouts[] = {
        [MMS_FRAME_YUV420P] = MMS_YUV_420P,
        [MMS_FRAME_NV12] = MMS_YUV_NV12,
        [MMS_FRAME_YUV422P] = MMS_YUV_422P,
        [MMS_FRAME_YUV444P] = MMS_YUV_444P,
    };
    static const enum mms_yuv_matrix matrices[] = {
        [MMS_COLOR_BT601] = MMS_YUV_BT601,         [MMS_COLOR_BT709] = MMS_YUV_BT709,
        [MMS_COLOR_BT2020] = MMS_YUV_BT2020,       [MMS_COLOR_SMPTE240M] = MMS_YUV_SMPTE240M,
        [MMS_COLOR_FCC] = MMS_YUV_FCC,
    };
    *y = (struct mms_yuv){
        .plane = {f->data[0], f->data[1], f->data[2]},
        .stride = {f->stride[0], f->stride[1], f->stride[2]},
        .w = f->width,
        .h = f->height,
        .layout = layouts[f->format],
        .matrix = matrices[f->colorspace],
        .full_range = f->full_range,
        /* Horizontal: LEFT co-sited (0), CENTER midway (1); vertically
         * both are midway between rows (core/yuv.h, half luma pixels). */
        .site_x = f->chroma_loc == MMS_CHROMA_CENTER,
        .site_y = 1,
    };
}

static int run_frame(struct mms_engine *e, const struct mms_frame *f, struct mms_error *err);

MMS_API int mms_run(struct mms_engine *e, const struct mms_frame *f, struct mms_error *err)
{
    if (!e)
        return failf(err, -EINVAL, "engine is NULL");
    int saved = omp_take(e->threads);
    int ret = run_frame(e, f, err);
    omp_give(saved);
    return ret;
}

static int run_frame(struct mms_engine *e, const struct mms_frame *f, struct mms_error *err)
{
    struct mms_err me = {{0}};
    int ret;
    if ((ret = check_frame(f, err)) < 0)
        return ret;
    const struct mms_net_info *ni = mms_net_info(e->net);
    float *in = mms_net_input(e->net);
    if (f->format == MMS_FRAME_RGB24) {
        mms_pre_rgb24(f->data[0], f->width, f->height, f->stride[0], in, ni->in_h, ni->in_w,
                      ni->mean, ni->std);
    } else {
        struct mms_yuv y;
        to_yuv(f, &y);
        mms_pre_yuv(&y, in, ni->in_h, ni->in_w, ni->mean, ni->std);
    }
    /* A failed run may have left the output half written. */
    e->ran = 0;
    if ((ret = mms_net_run(e->net, &me)) < 0)
        return from_engine(err, &me, ret);
    e->ran = 1;
    return 0;
}

MMS_API const float *mms_logits(const struct mms_engine *e)
{
    return e && e->ran ? mms_net_logits(e->net) : NULL;
}

MMS_API int mms_mask(const struct mms_engine *e, uint8_t *mask, int width, int height, int stride,
                     struct mms_error *err)
{
    if (!e)
        return failf(err, -EINVAL, "engine is NULL");
    if (!e->ran)
        return failf(err, -EINVAL, "mask: no frame has been run");
    if (!mask)
        return failf(err, -EINVAL, "mask: buffer is NULL");
    if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE)
        return failf(err, -EINVAL, "mask size %dx%d: width and height must be 1..%d", width,
                     height, MAX_SIDE);
    if (stride < width)
        return failf(err, -EINVAL, "mask stride %d is less than its width %d", stride, width);
    const struct mms_net_info *ni = mms_net_info(e->net);
    int saved = omp_take(e->threads);
    mms_post_mask(mms_net_logits(e->net), ni->out_h, ni->out_w, mask, width, height, stride,
                  ni->threshold);
    omp_give(saved);
    return 0;
}

/* "frame I: " before the message, whose end gives way if it must. */
static void prefix_frame(struct mms_error *err, int i)
{
    if (!err)
        return;
    char p[32];
    size_t k = (size_t)snprintf(p, sizeof(p), "frame %d: ", i);
    size_t n = strnlen(err->msg, sizeof(err->msg) - 1);
    if (n + k > sizeof(err->msg) - 1)
        n = sizeof(err->msg) - 1 - k;
    memmove(err->msg + k, err->msg, n);
    memcpy(err->msg, p, k);
    err->msg[n + k] = '\0';
}

MMS_API int mms_run_batch(struct mms_engine *e, const struct mms_frame *frames, int n,
                          float *logits, uint8_t *const *masks, struct mms_error *err)
{
    if (!e)
        return failf(err, -EINVAL, "engine is NULL");
    if (n < 0 || (n > 0 && !frames))
        return failf(err, -EINVAL, "batch: %d frames at %p", n, (const void *)frames);
    size_t plane = (size_t)e->info.out_height * (size_t)e->info.out_width;
    for (int i = 0; i < n; i++) {
        const struct mms_frame *f = &frames[i];
        int ret = mms_run(e, f, err);
        if (ret >= 0 && masks)
            ret = mms_mask(e, masks[i], f->width, f->height, f->width, err);
        if (ret < 0) {
            prefix_frame(err, i);
            return ret;
        }
        if (logits)
            memcpy(logits + (size_t)i * plane, mms_net_logits(e->net), plane * sizeof(float));
    }
    return 0;
}

MMS_API int mms_draw_mask(const struct mms_frame *f, const uint8_t *mask, int stride,
                          const struct mms_draw_style *style, struct mms_error *err)
{
    static const enum mms_style_kind kinds[] = {
        [MMS_DRAW_FILL] = MMS_STYLE_FILL,
        [MMS_DRAW_OUTLINE] = MMS_STYLE_OUTLINE,
        [MMS_DRAW_MASK] = MMS_STYLE_MASK,
        [MMS_DRAW_OFF] = MMS_STYLE_OFF,
    };
    int ret;
    if ((ret = check_frame(f, err)) < 0)
        return ret;
    if (f->format != MMS_FRAME_YUV420P)
        return failf(err, -EINVAL, "draw: frame format %d, only MMS_FRAME_YUV420P is drawn on",
                     f->format);
    if (!mask)
        return failf(err, -EINVAL, "draw: mask is NULL");
    if (stride < f->width)
        return failf(err, -EINVAL, "draw: mask stride %d is less than the width %d", stride,
                     f->width);
    if (!style)
        return failf(err, -EINVAL, "draw: style is NULL");
    if (style->style < MMS_DRAW_FILL || style->style > MMS_DRAW_OFF)
        return failf(err, -EINVAL, "draw: unknown style %d", style->style);
    /* Written so that NaN is refused too. */
    if (!(style->alpha >= 0 && style->alpha <= 1))
        return failf(err, -EINVAL, "draw: alpha %g is not in 0..1", (double)style->alpha);
    if (style->color > 0xffffff)
        return failf(err, -EINVAL, "draw: colour 0x%x is not 0xRRGGBB", (unsigned)style->color);
    /* An AVFrame on the stack, with only what mms_compose() reads: it calls
     * no libavutil function on it, so the struct's size (not part of
     * FFmpeg's ABI) is this build's own, and nothing is allocated. */
    AVFrame av;
    memset(&av, 0, sizeof(av));
    av.format = AV_PIX_FMT_YUV420P;
    av.width = f->width;
    av.height = f->height;
    av.color_range = f->full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    for (int i = 0; i < 3; i++) {
        /* The caller's pixels, documented as written. */
        av.data[i] = (uint8_t *)(uintptr_t)f->data[i];
        av.linesize[i] = f->stride[i];
    }
    struct mms_style st = {kinds[style->style], style->alpha, style->color};
    mms_compose(&av, mask, stride, &st);
    return 0;
}

MMS_API int mms_mask_measure(const uint8_t *mask, int width, int height, int stride,
                             struct mms_mask_info *info, struct mms_error *err)
{
    if (!mask || !info)
        return failf(err, -EINVAL, "measure: %s is NULL", !mask ? "mask" : "info");
    if (width <= 0 || height <= 0)
        return failf(err, -EINVAL, "measure: size %dx%d", width, height);
    if (stride < width)
        return failf(err, -EINVAL, "measure: mask stride %d is less than the width %d", stride,
                     width);
    struct mms_mask_stats st;
    mms_mask_stats(mask, width, height, stride, &st);
    *info = (struct mms_mask_info){st.count, st.fraction, st.x0, st.y0, st.x1, st.y1};
    return 0;
}
