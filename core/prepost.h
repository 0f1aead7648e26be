#ifndef MMS_PREPOST_H
#define MMS_PREPOST_H

/*
 * The one convention for getting frames in and masks out, shared by the C
 * engine and the PyTorch reference (models/mmsnet.py: preprocess/postprocess):
 *
 *   pre:  packed RGB24 -> bilinear resize to the network input (half-pixel
 *         centres, i.e. align_corners=False, no antialiasing: PyTorch's
 *         F.interpolate(mode="bilinear")) -> x/255 -> (x - mean) / std ->
 *         planar float (3 x H x W). A frame already at the input size is
 *         not resampled.
 *   post: logits (h x w) -> bilinear resize to the frame size with the same
 *         convention -> mask = sigmoid(logit) > threshold, written 0/255.
 *         Comparing the logit with log(t / (1 - t)) is the same test
 *         without an exp per pixel.
 */

#include <stdint.h>

#include "core/yuv.h"

void mms_pre_rgb24(const uint8_t *rgb, int w, int h, int stride, float *dst,
                   int dh, int dw, const float mean[3], const float std[3]);

/* The same from a Y'CbCr frame in one pass: each source pixel the resize
 * reads is converted as core/yuv.h says, so the result equals
 * mms_yuv_to_rgb24() followed by mms_pre_rgb24(). */
void mms_pre_yuv(const struct mms_yuv *f, float *dst, int dh, int dw, const float mean[3],
                 const float std[3]);

void mms_post_mask(const float *logits, int lh, int lw, uint8_t *mask, int w,
                   int h, int stride, float threshold);

/* Bilinear resize of one float plane, the convention above. */
void mms_resize_plane(const float *src, int sh, int sw, float *dst, int dh, int dw);

#endif
