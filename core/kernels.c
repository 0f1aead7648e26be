#include "core/exec.h"

#include <math.h>
#include <stddef.h>

/*
 * Bilinear x2 with align_corners=True: output pixel o samples the input at
 * o * (in - 1) / (out - 1). oneDNN's resampling only has half-pixel centres,
 * so this one runs here. Each output row blends two input rows; the inner
 * loop over `block` channels is contiguous and vectorises.
 */
void mms_kernel_upsample2(const float *src, float *dst, int cblocks, int block, int h,
                          int w)
{
    const int oh = 2 * h, ow = 2 * w;
    const float ry = oh > 1 ? (float)(h - 1) / (oh - 1) : 0.f;
    const float rx = ow > 1 ? (float)(w - 1) / (ow - 1) : 0.f;

#pragma omp parallel for collapse(2) schedule(static)
    for (int cb = 0; cb < cblocks; cb++) {
        for (int oy = 0; oy < oh; oy++) {
            float fy = oy * ry;
            int y0 = (int)fy;
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            float wy = fy - y0;
            const float *r0 = src + ((size_t)cb * h + y0) * w * block;
            const float *r1 = src + ((size_t)cb * h + y1) * w * block;
            float *o = dst + ((size_t)cb * oh + oy) * ow * block;
            for (int ox = 0; ox < ow; ox++) {
                float fx = ox * rx;
                int x0 = (int)fx;
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                float wx = fx - x0;
                const float *a = r0 + (size_t)x0 * block, *b = r0 + (size_t)x1 * block;
                const float *c = r1 + (size_t)x0 * block, *d = r1 + (size_t)x1 * block;
                float *out = o + (size_t)ox * block;
                for (int l = 0; l < block; l++) {
                    float top = a[l] + (b[l] - a[l]) * wx;
                    float bot = c[l] + (d[l] - c[l]) * wx;
                    out[l] = top + (bot - top) * wy;
                }
            }
        }
    }
}

/* The int8 versions in fixed point: positions rounded to 1/2048 of a
 * pixel, the four-tap blend in 1/2^22 (255 x 2^22 fits an int), rounded
 * half up (floor of x + 0.5). A blend of values within the type's range
 * stays within it. */
#define UP_BITS 11
#define UP_ONE (1 << UP_BITS)
#define UPSAMPLE_INT(NAME, T)                                                                  \
    void NAME(const T *src, T *dst, int c, int h, int w)                                       \
    {                                                                                          \
        const int oh = 2 * h, ow = 2 * w;                                                      \
        const long dy = oh > 1 ? oh - 1 : 1, dx = ow > 1 ? ow - 1 : 1;                         \
        _Pragma("omp parallel for schedule(static)")                                          \
        for (int oy = 0; oy < oh; oy++) {                                                      \
            long ny = ((long)oy * (h - 1) * UP_ONE * 2 + dy) / (2 * dy);                       \
            int y0 = (int)(ny >> UP_BITS), wy = (int)(ny & (UP_ONE - 1));                      \
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1;                                              \
            const T *r0 = src + (size_t)y0 * w * c, *r1 = src + (size_t)y1 * w * c;            \
            T *o = dst + (size_t)oy * ow * c;                                                  \
            for (int ox = 0; ox < ow; ox++) {                                                  \
                long nx = ((long)ox * (w - 1) * UP_ONE * 2 + dx) / (2 * dx);                   \
                int x0 = (int)(nx >> UP_BITS), wx = (int)(nx & (UP_ONE - 1));                  \
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1;                                          \
                const T *a = r0 + (size_t)x0 * c, *b = r0 + (size_t)x1 * c;                    \
                const T *cc = r1 + (size_t)x0 * c, *d = r1 + (size_t)x1 * c;                   \
                T *out = o + (size_t)ox * c;                                                   \
                int w00 = (UP_ONE - wx) * (UP_ONE - wy), w01 = wx * (UP_ONE - wy);             \
                int w10 = (UP_ONE - wx) * wy, w11 = wx * wy;                                   \
                for (int l = 0; l < c; l++) {                                                  \
                    int v = a[l] * w00 + b[l] * w01 + cc[l] * w10 + d[l] * w11 +               \
                            (1 << (2 * UP_BITS - 1));                                          \
                    out[l] = (T)(v >> (2 * UP_BITS));                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

UPSAMPLE_INT(mms_kernel_upsample2_s8, int8_t)
UPSAMPLE_INT(mms_kernel_upsample2_u8, uint8_t)
