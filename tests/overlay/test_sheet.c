/* The evaluation contact sheet: layout, error colours, refusals. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/image.h"
#include "overlay/sheet.h"

/* A w x h grey frame; prediction on the left half, truth on the top half:
 * top-left is found, bottom-left false, top-right missed, bottom-right
 * background. */
static void quadrants(int w, int h, struct mms_image *rgb, struct mms_image *pred,
                      struct mms_image *gt)
{
    mms_image_alloc(rgb, w, h, MMS_IMAGE_RGB24);
    mms_image_alloc(pred, w, h, MMS_IMAGE_GRAY8);
    mms_image_alloc(gt, w, h, MMS_IMAGE_GRAY8);
    for (int y = 0; y < h; y++) {
        memset(rgb->data + (size_t)y * rgb->stride, 100, (size_t)w * 3);
        for (int x = 0; x < w; x++) {
            pred->data[(size_t)y * pred->stride + x] = x < w / 2 ? 255 : 0;
            gt->data[(size_t)y * gt->stride + x] = y < h / 2 ? 255 : 0;
        }
    }
}

static void free3(struct mms_image *a, struct mms_image *b, struct mms_image *c)
{
    mms_image_free(a);
    mms_image_free(b);
    mms_image_free(c);
}

static uint32_t px(const struct mms_image *img, int x, int y)
{
    const uint8_t *d = img->data + (size_t)y * img->stride + (size_t)x * 3;
    return (uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2];
}

/* The dominant channels of a blend of grey 100 with colour k. */
static int tinted(uint32_t got, uint32_t k)
{
    for (int sh = 0; sh <= 16; sh += 8) {
        int g = (got >> sh) & 0xff, c = (k >> sh) & 0xff;
        if (c > 150 && g <= 150)
            return 0;
        if (c < 50 && g >= 100)
            return 0;
    }
    return 1;
}

static void test_error_map_colours_each_class(void)
{
    struct mms_image rgb = {0}, pred = {0}, gt = {0}, out = {0};
    struct mms_sheet *s = NULL;
    struct mms_err err = {{0}};
    quadrants(256, 128, &rgb, &pred, &gt);
    CHECK(mms_sheet_create(&s, 64, 3) == 0);
    CHECK(mms_sheet_add(s, &rgb, &pred, &gt, "quad  dice 0.500", &err) == 0);
    CHECK_MSG(mms_sheet_render(s, &out, &err) == 0, "%s", err.msg);
    /* one pair: width 2 tiles + gaps; tile 64x32 under a legend and caption */
    CHECK(out.w == 4 + 2 * 64 + 4 + 4);
    int x0 = 4 + 64 + 4, y0 = out.h - 4 - 32; /* the error tile */
    CHECK(px(&out, 4 + 10, y0 + 10) == 0x646464u); /* the frame tile is the frame */
    CHECK(tinted(px(&out, x0 + 10, y0 + 5), MMS_SHEET_TP));
    CHECK(tinted(px(&out, x0 + 10, y0 + 25), MMS_SHEET_FP));
    CHECK(tinted(px(&out, x0 + 50, y0 + 5), MMS_SHEET_FN));
    CHECK(px(&out, x0 + 50, y0 + 25) == 0x646464u);
    mms_image_free(&out);
    mms_sheet_free(&s);
    CHECK(s == NULL);
    free3(&rgb, &pred, &gt);
}

static void test_rows_wrap_after_per_row(void)
{
    struct mms_image rgb = {0}, pred = {0}, gt = {0}, one = {0}, four = {0};
    struct mms_sheet *s = NULL;
    struct mms_err err = {{0}};
    quadrants(100, 50, &rgb, &pred, &gt);
    CHECK(mms_sheet_create(&s, 40, 3) == 0);
    CHECK(mms_sheet_add(s, &rgb, &pred, &gt, "a", &err) == 0);
    CHECK(mms_sheet_render(s, &one, &err) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(mms_sheet_add(s, &rgb, &pred, &gt, "b", &err) == 0);
    CHECK(mms_sheet_render(s, &four, &err) == 0);
    CHECK(four.w == 4 + 3 * (2 * 40 + 4 + 4)); /* three pairs across */
    CHECK(four.h > one.h && four.h < 2 * one.h); /* a second row, no second legend */
    mms_image_free(&one);
    mms_image_free(&four);
    mms_sheet_free(&s);
    free3(&rgb, &pred, &gt);
}

static void test_writes_a_png_that_reads_back(void)
{
    struct mms_image rgb = {0}, pred = {0}, gt = {0}, back = {0};
    struct mms_sheet *s = NULL;
    struct mms_err err = {{0}};
    char path[512];
    snprintf(path, sizeof(path), "%s/sheet.png", mms_test_tmpdir());
    quadrants(64, 48, &rgb, &pred, &gt);
    CHECK(mms_sheet_create(&s, 64, 2) == 0);
    CHECK(mms_sheet_add(s, &rgb, &pred, &gt, "x", &err) == 0);
    CHECK_MSG(mms_sheet_write_png(s, path, &err) == 0, "%s", err.msg);
    CHECK_MSG(mms_image_read(path, MMS_IMAGE_RGB24, &back, &err) == 0, "%s", err.msg);
    CHECK(back.w == 4 + 2 * 64 + 4 + 4);
    mms_image_free(&back);
    mms_sheet_free(&s);
    free3(&rgb, &pred, &gt);
}

static void test_refuses_bad_sizes(void)
{
    struct mms_sheet *s = (struct mms_sheet *)1;
    CHECK(mms_sheet_create(&s, 16, 3) == -EINVAL && s == NULL);
    CHECK(mms_sheet_create(&s, 64, 0) == -EINVAL);
    CHECK(mms_sheet_create(&s, 64, 17) == -EINVAL);
    CHECK(mms_sheet_create(&s, 4096, 1) == -EINVAL);
}

static void test_refuses_masks_of_another_size(void)
{
    struct mms_image rgb = {0}, pred = {0}, gt = {0}, small = {0};
    struct mms_sheet *s = NULL;
    struct mms_err err = {{0}};
    quadrants(64, 48, &rgb, &pred, &gt);
    mms_image_alloc(&small, 32, 48, MMS_IMAGE_GRAY8);
    CHECK(mms_sheet_create(&s, 64, 2) == 0);
    CHECK(mms_sheet_add(s, &rgb, &small, &gt, "x", &err) == -EINVAL);
    CHECK(strstr(err.msg, "32x48") != NULL);
    CHECK(mms_sheet_add(s, &rgb, &pred, &small, "x", &err) == -EINVAL);
    CHECK(mms_sheet_add(s, &pred, &pred, &gt, "x", &err) == -EINVAL); /* gray "frame" */
    mms_image_free(&small);
    mms_sheet_free(&s);
    free3(&rgb, &pred, &gt);
}

static void test_empty_sheet_is_refused(void)
{
    struct mms_sheet *s = NULL;
    struct mms_image out = {0};
    struct mms_err err = {{0}};
    CHECK(mms_sheet_create(&s, 64, 2) == 0);
    CHECK(mms_sheet_render(s, &out, &err) == -EINVAL);
    CHECK(out.data == NULL);
    mms_sheet_free(&s);
}

static void test_unwritable_path_fails(void)
{
    struct mms_image rgb = {0}, pred = {0}, gt = {0};
    struct mms_sheet *s = NULL;
    struct mms_err err = {{0}};
    quadrants(64, 48, &rgb, &pred, &gt);
    CHECK(mms_sheet_create(&s, 64, 2) == 0);
    CHECK(mms_sheet_add(s, &rgb, &pred, &gt, "x", &err) == 0);
    CHECK(mms_sheet_write_png(s, "/nonexistent-dir/sheet.png", &err) < 0);
    CHECK(err.msg[0] != '\0');
    mms_sheet_free(&s);
    free3(&rgb, &pred, &gt);
}

MMS_TESTS(T(test_error_map_colours_each_class), T(test_rows_wrap_after_per_row),
          T(test_writes_a_png_that_reads_back), T(test_refuses_bad_sizes),
          T(test_refuses_masks_of_another_size), T(test_empty_sheet_is_refused),
          T(test_unwritable_path_fails))
