#ifndef MMS_PREPROCESS_H
#define MMS_PREPROCESS_H

/*
 * A decoded frame to the network's input, by the convention of
 * core/prepost.h and core/yuv.h whatever the frame's format: the same
 * input `mms segment` and `mms eval` compute from the frame saved as a
 * still. Y'CbCr frames take one pass (mms_pre_yuv); any other format is
 * converted to RGB24 at its own size first (io/image), then resized.
 */

#include <libavutil/frame.h>

#include "core/error.h"
#include "io/image.h"

struct mms_preprocess {
    struct mms_image rgb; /* the other formats' RGB24, reused frame to frame */
};

/* dst: 3 x dh x dw planar floats, normalised with mean / std. */
int mms_preprocess_frame(struct mms_preprocess *pp, const AVFrame *f, float *dst, int dh,
                         int dw, const float mean[3], const float std[3], struct mms_err *err);
void mms_preprocess_free(struct mms_preprocess *pp);

#endif
