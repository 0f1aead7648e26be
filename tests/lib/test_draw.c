/*
 * mms_draw_mask() through libmms.so against overlay/compose.c's
 * mms_compose() linked statically (what mmsd draws with): the same bytes
 * on the same frame for every style, range, odd sizes and padded strides;
 * and every refusal, with -EINVAL and a message naming the problem, the
 * frame left untouched.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>

#include "harness.h"
#include "mms/mms.h"
#include "overlay/compose.h"

/* A picture with structure everywhere and a mask with edges in every
 * direction (a disc and a bar to the border), so outline and chroma
 * weighting both have work to do. */
static void fill(uint8_t *p, int w, int h, int stride, int mul, int add)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            p[(size_t)y * stride + x] = (uint8_t)(16 + (x * mul + y * 3 + add) % 224);
}

static void make_mask(uint8_t *m, int w, int h, int stride)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx = x - w / 3, dy = y - h / 2, r = h / 4;
            int disc = dx * dx + dy * dy < r * r;
            int bar = y > h / 5 && y < h / 5 + 7 && x > w / 2;
            m[(size_t)y * stride + x] = disc || bar ? 255 : 0;
        }
}

struct pic {
    int w, h, stride[3];
    uint8_t *plane[3];
};

static void pic_init(struct pic *p, int w, int h, int pad)
{
    p->w = w, p->h = h;
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    p->stride[0] = w + pad;
    p->stride[1] = p->stride[2] = cw + pad;
    p->plane[0] = malloc((size_t)p->stride[0] * h);
    p->plane[1] = malloc((size_t)p->stride[1] * ch);
    p->plane[2] = malloc((size_t)p->stride[2] * ch);
    fill(p->plane[0], p->stride[0], h, p->stride[0], 5, 0);
    fill(p->plane[1], p->stride[1], ch, p->stride[1], 7, 40);
    fill(p->plane[2], p->stride[2], ch, p->stride[2], 11, 90);
}

static void pic_free(struct pic *p)
{
    for (int i = 0; i < 3; i++)
        free(p->plane[i]);
}

static int pic_equal(const struct pic *a, const struct pic *b)
{
    int ch = (a->h + 1) / 2;
    return !memcmp(a->plane[0], b->plane[0], (size_t)a->stride[0] * a->h) &&
           !memcmp(a->plane[1], b->plane[1], (size_t)a->stride[1] * ch) &&
           !memcmp(a->plane[2], b->plane[2], (size_t)a->stride[2] * ch);
}

static struct mms_frame as_frame(const struct pic *p, int full_range)
{
    struct mms_frame f = {.format = MMS_FRAME_YUV420P, .width = p->w, .height = p->h,
                          .full_range = full_range};
    for (int i = 0; i < 3; i++) {
        f.data[i] = p->plane[i];
        f.stride[i] = p->stride[i];
    }
    return f;
}

/* The drawing as mmsd does it: mms_compose on an AVFrame of the planes. */
static void reference(struct pic *p, int full_range, const uint8_t *mask, int stride,
                      const struct mms_style *st)
{
    AVFrame *f = av_frame_alloc();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = p->w;
    f->height = p->h;
    f->color_range = full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
    for (int i = 0; i < 3; i++) {
        f->data[i] = p->plane[i];
        f->linesize[i] = p->stride[i];
    }
    mms_compose(f, mask, stride, st);
    av_frame_free(&f);
}

static void test_same_bytes(void)
{
    static const struct {
        int w, h, pad, mpad;
    } sizes[] = {{64, 48, 0, 0}, {203, 117, 13, 5}, {1, 1, 0, 0}, {640, 360, 32, 0},
                 {1201, 3, 1, 3}};
    static const struct {
        int draw;
        enum mms_style_kind kind;
        float alpha;
        uint32_t rgb;
    } styles[] = {
        {MMS_DRAW_FILL, MMS_STYLE_FILL, 0.45f, 0x00ff66},
        {MMS_DRAW_FILL, MMS_STYLE_FILL, 1.0f, 0xff0000},
        {MMS_DRAW_FILL, MMS_STYLE_FILL, 0.0f, 0x123456},
        {MMS_DRAW_OUTLINE, MMS_STYLE_OUTLINE, 0.45f, 0x3366ff},
        {MMS_DRAW_MASK, MMS_STYLE_MASK, 0.45f, 0x00ff66},
        {MMS_DRAW_OFF, MMS_STYLE_OFF, 0.45f, 0x00ff66},
    };
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s].w, h = sizes[s].h, ms = w + sizes[s].mpad;
        uint8_t *mask = malloc((size_t)ms * h);
        make_mask(mask, w, h, ms);
        for (size_t k = 0; k < sizeof(styles) / sizeof(styles[0]); k++) {
            for (int full = 0; full <= 1; full++) {
                struct pic a, b, orig;
                pic_init(&a, w, h, sizes[s].pad);
                pic_init(&b, w, h, sizes[s].pad);
                pic_init(&orig, w, h, sizes[s].pad);
                struct mms_style st = {styles[k].kind, styles[k].alpha, styles[k].rgb};
                reference(&a, full, mask, ms, &st);
                struct mms_frame f = as_frame(&b, full);
                struct mms_draw_style ds = {styles[k].draw, styles[k].alpha, styles[k].rgb};
                struct mms_error err = {{0}};
                int ret = mms_draw_mask(&f, mask, ms, &ds, &err);
                CHECK_MSG(ret == 0, "%dx%d style %d: %d %s", w, h, styles[k].draw, ret, err.msg);
                CHECK_MSG(pic_equal(&a, &b), "%dx%d style %d full %d: not mms_compose's bytes", w,
                          h, styles[k].draw, full);
                /* The comparison would pass for a drawing that did nothing
                 * on both sides. Mask paints every pixel; fill and outline
                 * change the frame unless alpha is 0 or there is no tool
                 * (the 1x1 frame's one pixel is outside the disc); off
                 * never does. */
                int draws = styles[k].draw == MMS_DRAW_MASK ||
                            (styles[k].draw != MMS_DRAW_OFF && styles[k].alpha > 0 && w > 1);
                CHECK_MSG(pic_equal(&b, &orig) == !draws, "%dx%d style %d: drew %s", w, h,
                          styles[k].draw, draws ? "nothing" : "something");
                pic_free(&a);
                pic_free(&b);
                pic_free(&orig);
            }
        }
        free(mask);
    }
}

/* ret is -EINVAL, the message contains `text` and the frame is as it was. */
static void refused(const struct mms_frame *f, const uint8_t *mask, int stride,
                    const struct mms_draw_style *st, const char *text, const struct pic *p,
                    const struct pic *orig)
{
    struct mms_error err = {{0}};
    int ret = mms_draw_mask(f, mask, stride, st, &err);
    CHECK_MSG(ret == -EINVAL, "'%s': returned %d (%s)", text, ret, err.msg);
    CHECK_MSG(strstr(err.msg, text), "'%s' not in '%s'", text, err.msg);
    CHECK_MSG(pic_equal(p, orig), "'%s': a refused draw changed the frame", text);
    /* err NULL: still refused, nothing written anywhere. */
    CHECK_EQ(mms_draw_mask(f, mask, stride, st, NULL), -EINVAL);
}

static void test_refusals(void)
{
    struct pic p, orig;
    pic_init(&p, 32, 16, 0);
    pic_init(&orig, 32, 16, 0);
    uint8_t mask[32 * 16];
    memset(mask, 255, sizeof(mask));
    const struct mms_draw_style ok = {MMS_DRAW_FILL, 0.5f, 0xff0000};
    struct mms_frame f = as_frame(&p, 0), g;
    struct mms_draw_style st;

    refused(NULL, mask, 32, &ok, "frame is NULL", &p, &orig);
    refused(&f, NULL, 32, &ok, "mask is NULL", &p, &orig);
    refused(&f, mask, 31, &ok, "stride 31", &p, &orig);
    refused(&f, mask, 0, &ok, "stride 0", &p, &orig);
    refused(&f, mask, 32, NULL, "style is NULL", &p, &orig);
    st = ok, st.style = 4;
    refused(&f, mask, 32, &st, "unknown style 4", &p, &orig);
    st = ok, st.style = -1;
    refused(&f, mask, 32, &st, "unknown style -1", &p, &orig);
    st = ok, st.alpha = 1.5f;
    refused(&f, mask, 32, &st, "alpha 1.5", &p, &orig);
    st = ok, st.alpha = -0.1f;
    refused(&f, mask, 32, &st, "alpha -0.1", &p, &orig);
    st = ok, st.alpha = NAN;
    refused(&f, mask, 32, &st, "alpha nan", &p, &orig);
    st = ok, st.color = 0x1000000;
    refused(&f, mask, 32, &st, "0x1000000", &p, &orig);
    g = f, g.format = MMS_FRAME_NV12, g.stride[1] = 32; /* a well-formed NV12 frame */
    refused(&g, mask, 32, &ok, "only MMS_FRAME_YUV420P", &p, &orig);
    g = f, g.format = MMS_FRAME_RGB24, g.stride[0] = 96;
    refused(&g, mask, 32, &ok, "only MMS_FRAME_YUV420P", &p, &orig);
    g = f, g.format = 99;
    refused(&g, mask, 32, &ok, "unknown format 99", &p, &orig);
    g = f, g.width = 0;
    refused(&g, mask, 32, &ok, "frame size 0x16", &p, &orig);
    g = f, g.height = 20000;
    refused(&g, mask, 32, &ok, "frame size 32x20000", &p, &orig);
    g = f, g.data[2] = NULL;
    refused(&g, mask, 32, &ok, "plane 2 is NULL", &p, &orig);
    g = f, g.stride[1] = 15;
    refused(&g, mask, 32, &ok, "plane 1 stride 15", &p, &orig);
    g = f, g.full_range = 2;
    refused(&g, mask, 32, &ok, "full_range 2", &p, &orig);

    /* And the same frame and mask with the good style are drawn. */
    struct mms_error err = {{0}};
    CHECK_EQ(mms_draw_mask(&f, mask, 32, &ok, &err), 0);
    CHECK(!pic_equal(&p, &orig));
    pic_free(&p);
    pic_free(&orig);
}

MMS_TESTS(T(test_same_bytes), T(test_refusals))
