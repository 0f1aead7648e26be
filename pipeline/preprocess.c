#include "pipeline/preprocess.h"

#include "core/prepost.h"
#include "io/av_common.h"

int mms_preprocess_frame(struct mms_preprocess *pp, const AVFrame *f, float *dst, int dh,
                         int dw, const float mean[3], const float std[3], struct mms_err *err)
{
    struct mms_yuv yuv;
    if (!mms_av_frame_yuv(f, &yuv)) {
        mms_pre_yuv(&yuv, dst, dh, dw, mean, std);
        return 0;
    }
    int rc = mms_image_from_frame(f, MMS_IMAGE_RGB24, &pp->rgb, err);
    if (rc < 0)
        return rc;
    mms_pre_rgb24(pp->rgb.data, pp->rgb.w, pp->rgb.h, pp->rgb.stride, dst, dh, dw, mean, std);
    return 0;
}

void mms_preprocess_free(struct mms_preprocess *pp)
{
    mms_image_free(&pp->rgb);
}
