/* A still image as `mms segment` and `mms eval` read it (io/image.h):
 * decoded to RGB and, when that works, to gray too. What decodes must have
 * a sane size and every pixel row inside the buffer (read to the end). */
#include <stdlib.h>

#include "common.h"
#include "io/image.h"

static volatile unsigned sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mms_image_quiet(1);
    return 0;
}

static int read_as(const char *path, enum mms_image_fmt fmt)
{
    struct mms_image img = {0};
    struct mms_err err = {{0}};
    int rc = mms_image_read(path, fmt, &img, &err);
    fuzz_check_err(rc, err.msg, "mms_image_read");
    if (!rc) {
        int bpp = fmt == MMS_IMAGE_RGB24 ? 3 : 1;
        if (img.w < 1 || img.h < 1 || img.w > 16384 || img.h > 16384 || !img.data ||
            img.stride < img.w * bpp)
            fuzz_fail("image %dx%d, stride %d", img.w, img.h, img.stride);
        unsigned sum = 0;
        for (int y = 0; y < img.h; y++)
            sum += img.data[(size_t)y * img.stride + (size_t)img.w * bpp - 1];
        sink = sum;
    }
    mms_image_free(&img);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (read_as(path, MMS_IMAGE_RGB24) == 0)
        read_as(path, MMS_IMAGE_GRAY8);
    return 0;
}
