#include "real_frame.h"

#include <stdio.h>

#include "core/prepost.h"
#include "harness.h"
#include "io/image.h"

int mms_test_run_real_frame(const char *rel, struct mms_net *const *nets, int n,
                            struct mms_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/../shared/data/%s", mms_test_srcdir(), rel);
    struct mms_image rgb = {0};
    int ret = mms_image_read(path, MMS_IMAGE_RGB24, &rgb, err);
    if (ret < 0)
        goto fail;
    for (int i = 0; i < n; i++) {
        const struct mms_net_info *ni = mms_net_info(nets[i]);
        mms_pre_rgb24(rgb.data, rgb.w, rgb.h, rgb.stride, mms_net_input(nets[i]), ni->in_h,
                      ni->in_w, ni->mean, ni->std);
        if ((ret = mms_net_run(nets[i], err)) < 0)
            goto fail;
    }
fail:
    mms_image_free(&rgb);
    return ret;
}
