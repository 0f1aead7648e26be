#ifndef MMS_YUV_H
#define MMS_YUV_H

/*
 * Y'CbCr -> RGB24 as mmsd defines it, for every path a frame can take
 * (video decode, JPEG stills), so that what `mms eval` measures is what
 * `mms run` shows:
 *
 *   - the matrix and range the frame says (BT.601 when it says nothing,
 *     as JPEG/JFIF specifies); limited range maps Y 16..235 and C 16..240
 *     to the full 0..255 / -128..127 scale;
 *   - subsampled chroma interpolated bilinearly at the position its siting
 *     gives (H.264's default: co-sited with the even luma columns, midway
 *     between rows; JPEG's: centred), rounded to an integer before the
 *     matrix, as libjpeg's "fancy upsampling" does for JPEG;
 *   - R, G, B rounded to the nearest integer and clamped to 0..255, as a
 *     still image would store them.
 *
 * core/prepost resizes and normalises after this conversion, so a frame
 * converted here and saved as a PNG gives the same network input as the
 * frame itself.
 */

#include <stdint.h>

enum mms_yuv_layout {
    MMS_YUV_420P, /* three planes, chroma halved both ways */
    MMS_YUV_422P, /* three planes, chroma halved horizontally */
    MMS_YUV_444P, /* three planes */
    MMS_YUV_NV12, /* Y plane, then interleaved Cb Cr at 4:2:0 */
};

enum mms_yuv_matrix {
    MMS_YUV_BT601,
    MMS_YUV_BT709,
    MMS_YUV_BT2020,
    MMS_YUV_SMPTE240M,
    MMS_YUV_FCC,
};

struct mms_yuv {
    const uint8_t *plane[3]; /* Y, Cb, Cr (NV12: Y, CbCr) */
    int stride[3];
    int w, h;
    enum mms_yuv_layout layout;
    enum mms_yuv_matrix matrix;
    int full_range;
    /* Where a chroma sample sits from the top-left luma pixel of its block,
     * in half luma pixels: 0 co-sited, 1 centred (JPEG: 1, 1; H.264: 0, 1). */
    int site_x, site_y;
};

/* Per-frame lookup tables, in 1/65536 units of the 0..255 scale. */
struct mms_yuv_lut {
    int32_t y[256], rv[256], gu[256], gv[256], bu[256];
};

void mms_yuv_lut_init(struct mms_yuv_lut *l, enum mms_yuv_matrix m, int full_range);

static inline uint8_t mms_yuv_clamp(int32_t v)
{
    v = (v + 32768) >> 16;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Chroma taps along one axis: samples j0 and j1 weighted (4 - f) and f
 * quarters. `sub`: the axis is halved; `site`: half-pixel offset. */
static inline void mms_yuv_taps(int x, int sub, int site, int n, int *j0, int *j1, int *f)
{
    if (!sub) {
        *j0 = *j1 = x;
        *f = 0;
        return;
    }
    int q = 2 * x - site; /* the sample position, in quarters of a chroma sample */
    int j = q >= 0 ? q >> 2 : -1;
    *f = q - 4 * j;
    *j0 = j < 0 ? 0 : j;
    *j1 = j + 1 < n ? j + 1 : n - 1;
}

static inline int mms_yuv_chroma(const uint8_t *p, int stride, int step, int x0, int x1,
                                 int fx, int y0, int y1, int fy)
{
    const uint8_t *r0 = p + (long)y0 * stride, *r1 = p + (long)y1 * stride;
    int a = r0[x0 * step] * (4 - fx) + r0[x1 * step] * fx;
    int b = r1[x0 * step] * (4 - fx) + r1[x1 * step] * fx;
    return (a * (4 - fy) + b * fy + 8) >> 4;
}

/* The RGB of pixel (x, y); no bounds checks on x, y. */
static inline void mms_yuv_pixel(const struct mms_yuv *f, const struct mms_yuv_lut *l, int x,
                                 int y, uint8_t rgb[3])
{
    int subx = f->layout != MMS_YUV_444P;
    int suby = f->layout == MMS_YUV_420P || f->layout == MMS_YUV_NV12;
    int x0, x1, fx, y0, y1, fy;
    mms_yuv_taps(x, subx, f->site_x, (f->w + subx) >> subx, &x0, &x1, &fx);
    mms_yuv_taps(y, suby, f->site_y, (f->h + suby) >> suby, &y0, &y1, &fy);
    int Y = f->plane[0][(long)y * f->stride[0] + x], U, V;
    if (f->layout == MMS_YUV_NV12) {
        U = mms_yuv_chroma(f->plane[1], f->stride[1], 2, x0, x1, fx, y0, y1, fy);
        V = mms_yuv_chroma(f->plane[1] + 1, f->stride[1], 2, x0, x1, fx, y0, y1, fy);
    } else {
        U = mms_yuv_chroma(f->plane[1], f->stride[1], 1, x0, x1, fx, y0, y1, fy);
        V = mms_yuv_chroma(f->plane[2], f->stride[2], 1, x0, x1, fx, y0, y1, fy);
    }
    int32_t ly = l->y[Y];
    rgb[0] = mms_yuv_clamp(ly + l->rv[V]);
    rgb[1] = mms_yuv_clamp(ly + l->gu[U] + l->gv[V]);
    rgb[2] = mms_yuv_clamp(ly + l->bu[U]);
}

/* The whole frame into packed RGB24 (f->w x f->h, `stride` bytes a row). */
void mms_yuv_to_rgb24(const struct mms_yuv *f, uint8_t *rgb, int stride);

#endif
