#include "overlay/compose.h"

#include <errno.h>
#include <string.h>

#include <libavutil/pixfmt.h>

#include "overlay/font.h"

/* Outline rows are worked in column chunks on the stack: the mask is not
 * copied or padded, and nothing is allocated per frame. Even, so a chunk
 * starts on a chroma sample. */
#define CHUNK 512
/* The outline is the tool's inner border: a tool pixel within this
 * Chebyshev distance of a background pixel (a 5x5 neighbourhood). */
#define OUTLINE_R 2

static const char *const style_names[MMS_STYLE_COUNT] = {
    [MMS_STYLE_FILL] = "fill",
    [MMS_STYLE_OUTLINE] = "outline",
    [MMS_STYLE_MASK] = "mask",
    [MMS_STYLE_OFF] = "off",
};

int mms_style_parse(const char *name, enum mms_style_kind *kind)
{
    if (!name)
        return -EINVAL;
    for (int i = 0; i < MMS_STYLE_COUNT; i++) {
        if (!strcmp(name, style_names[i])) {
            *kind = (enum mms_style_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *mms_style_name(enum mms_style_kind kind)
{
    return (unsigned)kind < MMS_STYLE_COUNT ? style_names[kind] : "unknown";
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* By hand rather than strtoul(), which would let through signs, spaces
 * and short or long numbers. */
int mms_color_parse(const char *s, uint32_t *rgb)
{
    if (!s)
        return -EINVAL;
    if (s[0] == '#')
        s++;
    else if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    uint32_t v = 0;
    for (int i = 0; i < 6; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -EINVAL;
        v = v << 4 | (uint32_t)d;
    }
    if (s[6])
        return -EINVAL;
    *rgb = v;
    return 0;
}

/* ---- colour ---- */

static uint8_t clamp_u8(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* BT.601 limited range, in 16.16 fixed point so every build and machine
 * gives the same bytes. */
void mms_rgb_to_ycbcr(uint32_t rgb, uint8_t ycc[3])
{
    int r = rgb >> 16 & 0xff, g = rgb >> 8 & 0xff, b = rgb & 0xff;
    /* The offsets go in before the shift so it never sees a negative. */
    const int y0 = 16 << 16 | 1 << 15, c0 = 128 << 16 | 1 << 15;
    ycc[0] = clamp_u8((y0 + 16829 * r + 33039 * g + 6416 * b) >> 16);
    ycc[1] = clamp_u8((c0 - 9714 * r - 19070 * g + 28784 * b) >> 16);
    ycc[2] = clamp_u8((c0 + 28784 * r - 24103 * g - 4681 * b) >> 16);
}

/* BT.601 full range, for frames marked JPEG range (MJPEG cameras, which the
 * source passes through as they are): limited-range values there would
 * come out washed out. */
static void rgb_to_ycbcr_full(uint32_t rgb, uint8_t ycc[3])
{
    int r = rgb >> 16 & 0xff, g = rgb >> 8 & 0xff, b = rgb & 0xff;
    const int half = 1 << 15, c0 = 128 << 16 | 1 << 15;
    ycc[0] = clamp_u8((half + 19595 * r + 38470 * g + 7471 * b) >> 16);
    ycc[1] = clamp_u8((c0 - 11059 * r - 21709 * g + 32768 * b) >> 16);
    ycc[2] = clamp_u8((c0 + 32768 * r - 27439 * g - 5329 * b) >> 16);
}

static int full_range(const AVFrame *f)
{
    return f->color_range == AVCOL_RANGE_JPEG;
}

static void frame_ycbcr(const AVFrame *f, uint32_t rgb, uint8_t ycc[3])
{
    if (full_range(f))
        rgb_to_ycbcr_full(rgb, ycc);
    else
        mms_rgb_to_ycbcr(rgb, ycc);
}

static int is_yuv420p(const AVFrame *f)
{
    return f && f->format == AV_PIX_FMT_YUV420P && f->width > 0 && f->height > 0 &&
           f->data[0] && f->data[1] && f->data[2];
}

/* ---- fill ---- */

/* dst = dst + (c - dst) * w / 256 where w is `a` on tool pixels and 0
 * elsewhere. The sum stays under 65536, so gcc works in 16-bit lanes;
 * w = 0 gives back dst exactly and w = 256 gives c exactly. */
static void blend_luma_row(uint8_t *restrict dst, const uint8_t *restrict m, int n, int c,
                           int a)
{
    for (int x = 0; x < n; x++) {
        uint16_t w = m[x] ? (uint16_t)a : 0;
        dst[x] = (uint8_t)((dst[x] * (256 - w) + c * w + 128) >> 8);
    }
}

/* Chroma row from two mask rows: each sample is weighted by how many of
 * its four luma pixels are tool. `pairs` whole 2x2 blocks. */
static void blend_chroma_row(uint8_t *restrict u, uint8_t *restrict v,
                             const uint8_t *restrict m0, const uint8_t *restrict m1, int pairs,
                             int cb, int cr, int a)
{
    for (int x = 0; x < pairs; x++) {
        int n = (m0[2 * x] != 0) + (m0[2 * x + 1] != 0) + (m1[2 * x] != 0) +
                (m1[2 * x + 1] != 0);
        uint16_t w = (uint16_t)((a * n + 2) >> 2);
        u[x] = (uint8_t)((u[x] * (256 - w) + cb * w + 128) >> 8);
        v[x] = (uint8_t)((v[x] * (256 - w) + cr * w + 128) >> 8);
    }
}

/* The last chroma column of an odd width covers one luma column: counted
 * twice, so the share of tool pixels is the same as for a full block. */
static void blend_chroma_last(uint8_t *u, uint8_t *v, uint8_t m0, uint8_t m1, int cb, int cr,
                              int a)
{
    int n = 2 * ((m0 != 0) + (m1 != 0));
    int w = (a * n + 2) >> 2;
    *u = (uint8_t)((*u * (256 - w) + cb * w + 128) >> 8);
    *v = (uint8_t)((*v * (256 - w) + cr * w + 128) >> 8);
}

static void compose_fill(AVFrame *f, const uint8_t *mask, int stride, const uint8_t ycc[3],
                         int a)
{
    int w = f->width, h = f->height;
    for (int y = 0; y < h; y++)
        blend_luma_row(f->data[0] + (ptrdiff_t)y * f->linesize[0],
                       mask + (ptrdiff_t)y * stride, w, ycc[0], a);
    for (int cy = 0; cy < (h + 1) / 2; cy++) {
        const uint8_t *m0 = mask + (ptrdiff_t)(2 * cy) * stride;
        /* An odd height's last chroma row sees one luma row, twice. */
        const uint8_t *m1 = 2 * cy + 1 < h ? m0 + stride : m0;
        uint8_t *u = f->data[1] + (ptrdiff_t)cy * f->linesize[1];
        uint8_t *v = f->data[2] + (ptrdiff_t)cy * f->linesize[2];
        blend_chroma_row(u, v, m0, m1, w / 2, ycc[1], ycc[2], a);
        if (w & 1)
            blend_chroma_last(u + w / 2, v + w / 2, m0[w - 1], m1[w - 1], ycc[1], ycc[2], a);
    }
}

/* ---- outline ---- */

/* The contour of mask row y over columns [x0, x1) into out[0 .. x1-x0):
 * 255 where the pixel is tool and some pixel of its 5x5 neighbourhood is
 * background. The neighbourhood is cut at the frame's edges rather than
 * padded with background, so a tool running off the picture gets no line
 * along the border: that edge is the camera's, not the tool's. */
static void contour_row(const uint8_t *mask, int stride, int w, int h, int y, int x0, int x1,
                        uint8_t *restrict out)
{
    /* Columns x0-R .. x1+R of the vertical min, those outside the frame
     * set to "tool" so they never make a contour. */
    uint8_t vmin[CHUNK + 2 * OUTLINE_R];
    int lo = x0 - OUTLINE_R, hi = x1 + OUTLINE_R;
    int a = lo < 0 ? 0 : lo, b = hi > w ? w : hi;
    int ya = y - OUTLINE_R < 0 ? 0 : y - OUTLINE_R;
    int yb = y + OUTLINE_R >= h ? h - 1 : y + OUTLINE_R;

    memset(vmin, 255, sizeof(vmin));
    uint8_t *restrict vm = vmin + (a - lo);
    memcpy(vm, mask + (ptrdiff_t)ya * stride + a, (size_t)(b - a));
    for (int r = ya + 1; r <= yb; r++) {
        const uint8_t *restrict row = mask + (ptrdiff_t)r * stride + a;
        for (int x = 0; x < b - a; x++)
            vm[x] = row[x] < vm[x] ? row[x] : vm[x];
    }

    const uint8_t *restrict self = mask + (ptrdiff_t)y * stride + x0;
    int n = x1 - x0;
    for (int x = 0; x < n; x++) {
        uint8_t m = vmin[x];
        for (int k = 1; k <= 2 * OUTLINE_R; k++)
            m = vmin[x + k] < m ? vmin[x + k] : m;
        out[x] = (self[x] && !m) ? 255 : 0;
    }
}

static void paint_luma(uint8_t *restrict dst, const uint8_t *restrict c, int n, uint8_t val)
{
    for (int x = 0; x < n; x++)
        dst[x] = c[x] ? val : dst[x];
}

static void compose_outline(AVFrame *f, const uint8_t *mask, int stride, const uint8_t ycc[3])
{
    int w = f->width, h = f->height;
    uint8_t c0[CHUNK], c1[CHUNK];
    for (int cy = 0; cy < (h + 1) / 2; cy++) {
        int y0 = 2 * cy, y1 = y0 + 1 < h ? y0 + 1 : -1;
        uint8_t *l0 = f->data[0] + (ptrdiff_t)y0 * f->linesize[0];
        uint8_t *l1 = y1 >= 0 ? l0 + f->linesize[0] : NULL;
        uint8_t *u = f->data[1] + (ptrdiff_t)cy * f->linesize[1];
        uint8_t *v = f->data[2] + (ptrdiff_t)cy * f->linesize[2];
        for (int x0 = 0; x0 < w; x0 += CHUNK) {
            int x1 = x0 + CHUNK < w ? x0 + CHUNK : w, n = x1 - x0;
            contour_row(mask, stride, w, h, y0, x0, x1, c0);
            paint_luma(l0 + x0, c0, n, ycc[0]);
            if (l1) {
                contour_row(mask, stride, w, h, y1, x0, x1, c1);
                paint_luma(l1 + x0, c1, n, ycc[0]);
            } else {
                memcpy(c1, c0, (size_t)n);
            }
            /* Opaque colour, so chroma is weighted by the contour's share
             * of each 2x2 block, exactly as a fill at alpha 1 would be. */
            blend_chroma_row(u + x0 / 2, v + x0 / 2, c0, c1, n / 2, ycc[1], ycc[2], 256);
            if (n & 1)
                blend_chroma_last(u + (x1 - 1) / 2, v + (x1 - 1) / 2, c0[n - 1], c1[n - 1],
                                  ycc[1], ycc[2], 256);
        }
    }
}

/* ---- mask ---- */

static void mask_row(uint8_t *restrict dst, const uint8_t *restrict m, int n, uint8_t on,
                     uint8_t off)
{
    for (int x = 0; x < n; x++)
        dst[x] = m[x] ? on : off;
}

static void compose_mask(AVFrame *f, const uint8_t *mask, int stride)
{
    int w = f->width, h = f->height;
    uint8_t on = full_range(f) ? 255 : 235, off = full_range(f) ? 0 : 16;
    for (int y = 0; y < h; y++)
        mask_row(f->data[0] + (ptrdiff_t)y * f->linesize[0], mask + (ptrdiff_t)y * stride, w, on,
                 off);
    for (int p = 1; p <= 2; p++)
        for (int y = 0; y < (h + 1) / 2; y++)
            memset(f->data[p] + (ptrdiff_t)y * f->linesize[p], 128, (size_t)(w + 1) / 2);
}

/* Frames of any other format are left as they are: sinks and the
 * pipeline only ever hand over YUV420P. */
void mms_compose(AVFrame *frame, const uint8_t *mask, int stride, const struct mms_style *st)
{
    if (!is_yuv420p(frame) || !mask || !st || stride < frame->width)
        return;
    uint8_t ycc[3];
    frame_ycbcr(frame, st->rgb, ycc);
    switch (st->kind) {
    case MMS_STYLE_FILL: {
        /* Written so NaN lands on 0: nothing drawn rather than garbage. */
        float al = st->alpha > 0 ? (st->alpha < 1 ? st->alpha : 1) : 0;
        int a = (int)(al * 256 + 0.5f);
        if (a)
            compose_fill(frame, mask, stride, ycc, a);
        break;
    }
    case MMS_STYLE_OUTLINE:
        compose_outline(frame, mask, stride, ycc);
        break;
    case MMS_STYLE_MASK:
        compose_mask(frame, mask, stride);
        break;
    case MMS_STYLE_OFF:
        break;
    }
}

void mms_fill_frame(AVFrame *frame, uint32_t rgb)
{
    if (!is_yuv420p(frame))
        return;
    uint8_t ycc[3];
    frame_ycbcr(frame, rgb, ycc);
    int w = frame->width, h = frame->height;
    for (int y = 0; y < h; y++)
        memset(frame->data[0] + (ptrdiff_t)y * frame->linesize[0], ycc[0], (size_t)w);
    for (int p = 1; p <= 2; p++)
        for (int y = 0; y < (h + 1) / 2; y++)
            memset(frame->data[p] + (ptrdiff_t)y * frame->linesize[p], ycc[p],
                   (size_t)(w + 1) / 2);
}
