#include "core/yuv.h"

#include <math.h>

/* Kr and Kb of each matrix (ITU-T H.273); Kg = 1 - Kr - Kb. */
static const double K[][2] = {
    [MMS_YUV_BT601] = {0.299, 0.114},
    [MMS_YUV_BT709] = {0.2126, 0.0722},
    [MMS_YUV_BT2020] = {0.2627, 0.0593},
    [MMS_YUV_SMPTE240M] = {0.212, 0.087},
    [MMS_YUV_FCC] = {0.30, 0.11},
};

static int32_t fix(double v)
{
    return (int32_t)lround(v * 65536.0);
}

void mms_yuv_lut_init(struct mms_yuv_lut *l, enum mms_yuv_matrix m, int full_range)
{
    if ((unsigned)m >= sizeof(K) / sizeof(K[0]))
        m = MMS_YUV_BT601;
    double kr = K[m][0], kb = K[m][1], kg = 1.0 - kr - kb;
    double ys = full_range ? 1.0 : 255.0 / 219.0, yo = full_range ? 0 : 16;
    double cs = full_range ? 1.0 : 255.0 / 224.0;
    for (int i = 0; i < 256; i++) {
        double y = (i - yo) * ys, c = (i - 128) * cs;
        l->y[i] = fix(y);
        l->rv[i] = fix(2.0 * (1.0 - kr) * c);
        l->bu[i] = fix(2.0 * (1.0 - kb) * c);
        l->gu[i] = fix(-2.0 * (1.0 - kb) * kb / kg * c);
        l->gv[i] = fix(-2.0 * (1.0 - kr) * kr / kg * c);
    }
}

void mms_yuv_to_rgb24(const struct mms_yuv *f, uint8_t *rgb, int stride)
{
    struct mms_yuv_lut l;
    mms_yuv_lut_init(&l, f->matrix, f->full_range);
    for (int y = 0; y < f->h; y++) {
        uint8_t *o = rgb + (long)y * stride;
        for (int x = 0; x < f->w; x++)
            mms_yuv_pixel(f, &l, x, y, o + 3 * x);
    }
}
