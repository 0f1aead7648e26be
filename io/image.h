#ifndef MMS_IMAGE_H
#define MMS_IMAGE_H

/*
 * Still images through FFmpeg: PNG, JPEG, BMP, TIFF and WebP files in any
 * pixel format the decoder produces (gray, palette, RGBA, 16-bit, YUV...)
 * are read converted to one of two packed 8-bit layouts; PNG is written.
 *
 * The format is found from the file's first bytes, not its name, so a
 * name with '%' in it or the wrong extension still reads.
 */

#include <stdint.h>

#include "core/error.h"

enum mms_image_fmt {
    MMS_IMAGE_RGB24, /* packed R, G, B */
    MMS_IMAGE_GRAY8, /* one byte per pixel; colour input becomes luma */
};

/* Pixels are owned by the struct: free with mms_image_free(). */
struct mms_image {
    int w, h;
    int stride; /* bytes per row */
    enum mms_image_fmt fmt;
    uint8_t *data;
};

/* Allocates a zeroed w x h image; -EINVAL for a size outside 1..16384. */
int mms_image_alloc(struct mms_image *img, int w, int h, enum mms_image_fmt fmt);
/* Frees the pixels and zeroes the struct; safe on a zeroed struct. */
void mms_image_free(struct mms_image *img);

/* Reads `path` into a freshly allocated image in `fmt`. Fails with
 * -ENOENT (and the other open errors), -EINVAL for a file that is not a
 * supported image or does not decode, with "path: reason" in err. */
int mms_image_read(const char *path, enum mms_image_fmt fmt, struct mms_image *img,
                   struct mms_err *err);

/* Converts a decoded frame (any pixel format, its colorspace and range
 * honoured; Y'CbCr as core/yuv.h says) into `img`, reusing its pixels
 * when it already has the frame's size and `fmt`, else reallocating. */
struct AVFrame;
int mms_image_from_frame(const struct AVFrame *frame, enum mms_image_fmt fmt,
                         struct mms_image *img, struct mms_err *err);

/* Writes `img` as an 8-bit PNG (gray or RGB, as img->fmt). */
int mms_image_write_png(const char *path, const struct mms_image *img,
                        struct mms_err *err);

/* FFmpeg logs decoder complaints to stderr by itself; programs that report
 * errors through mms_err turn that off. */
void mms_image_quiet(int quiet);

#endif
