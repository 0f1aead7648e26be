#ifndef MMS_JPEG_H
#define MMS_JPEG_H

/*
 * Frames to JPEG for mmsd's MJPEG browser preview: libavcodec's MJPEG
 * encoder fed full-range (JFIF) 4:2:0, converted by libswscale from the
 * pipeline's limited-range BT.601 YUV420P. Browsers decode every JPEG as
 * full range, so sending the video's own levels would show grey blacks
 * and dull whites.
 *
 * One encoder per preview stream; not thread-safe. The output size is the
 * frame's, scaled down to max_w and rounded down to even; the encoder is
 * reopened only when that size changes. Pixel buffers come from a pool,
 * so steady-state encoding allocates nothing beyond libavcodec's packet.
 */

#include <stddef.h>
#include <stdint.h>

#include <libavutil/frame.h>

#include "core/error.h"

struct mms_jpeg;

/* max_w: frames wider than this are scaled down (aspect kept, even sizes);
 * 0 = never, else 2..16384.
 * quality: 1 (worst) .. 100 (best), mapped to the MJPEG encoder's qscale
 * on libjpeg's curve, so 75 means about what it means to other JPEG tools;
 * the encoder's coarsest step is reached at 26, so 1..26 encode alike.
 * -EINVAL for values out of range, -ENOMEM. */
int mms_jpeg_create(int max_w, int quality, struct mms_jpeg **out, struct mms_err *err);

/* Encodes one YUV420P frame (any size up to 16384 a side; the size may
 * change between calls; color_range JPEG is honoured, anything else is
 * taken as limited range). *data is one complete JPEG (FF D8 .. FF D9)
 * and stays valid until the next call or mms_jpeg_free. -EINVAL for a
 * frame of another pixel format or of zero size. */
int mms_jpeg_encode(struct mms_jpeg *j, const AVFrame *f, const uint8_t **data, size_t *len,
                    struct mms_err *err);

/* NULL is fine. */
void mms_jpeg_free(struct mms_jpeg *j);

#endif
