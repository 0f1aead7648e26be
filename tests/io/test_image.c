#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/image.h"

static char *path_in_tmp(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", mms_test_tmpdir(), name);
    return p;
}

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "command failed: %s", cmd);
    return rc;
}

/* A picture made by the ffmpeg CLI, in the given pixel format and codec. */
static const char *make_picture(const char *name, const char *pix_fmt)
{
    char *p = path_in_tmp(name);
    char args[256];
    snprintf(args, sizeof(args), "-pix_fmt %s", pix_fmt);
    if (sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48 -frames:v 1 "
           "%s '%s'", args, p))
        return NULL;
    return p;
}

/* The raw pixels a decoder under comparison wrote, zeros if it wrote none. */
static uint8_t *read_back(const char *raw, size_t size)
{
    uint8_t *buf = calloc(1, size);
    FILE *f = fopen(raw, "rb");
    if (f) {
        CHECK(fread(buf, 1, size, f) == size);
        fclose(f);
    }
    return buf;
}

/* What ffmpeg itself decodes the file to, as packed pixels, with the
 * scaler flags the reader uses (ffmpeg's default fast path rounds chroma
 * differently). */
static uint8_t *ffmpeg_decode(const char *path, const char *pix_fmt, size_t size)
{
    char *raw = path_in_tmp("decoded.raw");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -y -i '%s' -sws_flags bicubic+accurate_rnd "
             "-f rawvideo -pix_fmt %s '%s'", path,
             pix_fmt, raw);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    return read_back(raw, size);
}

/* What libjpeg (through PIL, as the training code reads images) decodes
 * a JPEG to: its "fancy upsampling" is the bilinear, centred chroma that
 * core/yuv.h specifies. */
static uint8_t *libjpeg_decode(const char *path, size_t size)
{
    char *raw = path_in_tmp("libjpeg.raw");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c 'import sys; from PIL import Image; "
             "open(sys.argv[2], \"wb\").write(Image.open(sys.argv[1]).convert(\"RGB\").tobytes())'"
             " '%s' '%s'", path, raw);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    return read_back(raw, size);
}

static double mean_abs_diff(const struct mms_image *img, const uint8_t *packed)
{
    int bpp = img->fmt == MMS_IMAGE_RGB24 ? 3 : 1;
    double sum = 0;
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w * bpp; x++)
            sum += abs(img->data[y * img->stride + x] - packed[(y * img->w) * bpp + x]);
    return sum / ((double)img->w * img->h * bpp);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void mask_round_trip(void)
{
    struct mms_image m, back;
    CHECK(mms_image_alloc(&m, 37, 23, MMS_IMAGE_GRAY8) == 0);
    CHECK(m.stride >= 37);
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < m.w; x++)
            m.data[y * m.stride + x] = (x * 7 + y * 3) % 5 ? 0 : 255;
    struct mms_err err = {{0}};
    const char *p = path_in_tmp("mask.png");
    CHECK_MSG(mms_image_write_png(p, &m, &err) == 0, "%s", err.msg);
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_GRAY8, &back, &err) == 0, "%s", err.msg);
    CHECK(back.w == 37 && back.h == 23 && back.fmt == MMS_IMAGE_GRAY8);
    int bad = 0;
    for (int y = 0; y < m.h && back.data; y++)
        bad += memcmp(m.data + y * m.stride, back.data + y * back.stride, m.w) != 0;
    CHECK_MSG(bad == 0, "%d rows differ", bad);
    mms_image_free(&back);

    /* The same gray file read as RGB repeats each value exactly. */
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_RGB24, &back, &err) == 0, "%s", err.msg);
    bad = 0;
    for (int y = 0; y < m.h && back.data; y++)
        for (int x = 0; x < m.w; x++)
            for (int c = 0; c < 3; c++)
                bad += back.data[y * back.stride + 3 * x + c] != m.data[y * m.stride + x];
    CHECK_MSG(bad == 0, "%d gray->rgb values differ", bad);
    mms_image_free(&back);
    mms_image_free(&m);
    mms_image_free(&m); /* freeing twice is harmless: the struct was zeroed */
}

static void rgb_round_trip(void)
{
    struct mms_image m, back;
    CHECK(mms_image_alloc(&m, 19, 5, MMS_IMAGE_RGB24) == 0);
    for (int y = 0; y < m.h; y++)
        for (int x = 0; x < 3 * m.w; x++)
            m.data[y * m.stride + x] = (uint8_t)(x * 13 + y * 101);
    struct mms_err err = {{0}};
    const char *p = path_in_tmp("rgb.png");
    CHECK_MSG(mms_image_write_png(p, &m, &err) == 0, "%s", err.msg);
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_RGB24, &back, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (int y = 0; y < m.h && back.data; y++)
        bad += memcmp(m.data + y * m.stride, back.data + y * back.stride, 3 * m.w) != 0;
    CHECK_MSG(bad == 0, "%d rows differ", bad);
    mms_image_free(&back);
    mms_image_free(&m);
}

/* Lossless formats must come out exactly as ffmpeg decodes them. */
static void reads_png_pixel_formats(void)
{
    static const struct {
        const char *name, *pix_fmt;
    } cases[] = {
        {"t-rgb24.png", "rgb24"}, {"t-rgba.png", "rgba"},    {"t-gray.png", "gray"},
        {"t-pal8.png", "pal8"},   {"t-rgb48.png", "rgb48be"}, {"t-ya8.png", "ya8"},
        {"t-gray16.png", "gray16be"}, {"t-bgr.bmp", "bgr24"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = make_picture(cases[i].name, cases[i].pix_fmt);
        if (!p)
            continue;
        struct mms_image img;
        struct mms_err err = {{0}};
        int ret = mms_image_read(p, MMS_IMAGE_RGB24, &img, &err);
        CHECK_MSG(ret == 0, "%s: %s", cases[i].name, err.msg);
        if (ret)
            continue;
        CHECK(img.w == 64 && img.h == 48 && img.fmt == MMS_IMAGE_RGB24);
        uint8_t *want = ffmpeg_decode(p, "rgb24", 64 * 48 * 3);
        double d = mean_abs_diff(&img, want);
        /* 16-bit sources may round differently from ffmpeg's own path. */
        CHECK_MSG(d <= (strstr(cases[i].pix_fmt, "16") || strstr(cases[i].pix_fmt, "48")
                            ? 0.51 : 0.0),
                  "%s: mean difference %g", cases[i].name, d);
        free(want);
        mms_image_free(&img);
    }
}

static void reads_jpeg(void)
{
    const char *p = make_picture("t.jpg", "yuvj420p");
    if (!p)
        return;
    struct mms_image img;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_RGB24, &img, &err) == 0, "%s", err.msg);
    if (!img.data)
        return;
    CHECK(img.w == 64 && img.h == 48);
    uint8_t *want = libjpeg_decode(p, 64 * 48 * 3);
    double d = mean_abs_diff(&img, want);
    /* The IDCTs differ by a level here and there; a range, matrix or
     * chroma-siting mistake would be far larger. */
    CHECK_MSG(d < 1.0, "mean difference %g", d);
    free(want);
    mms_image_free(&img);

    CHECK_MSG(mms_image_read(p, MMS_IMAGE_GRAY8, &img, &err) == 0, "%s", err.msg);
    if (img.data) {
        want = ffmpeg_decode(p, "gray", 64 * 48);
        d = mean_abs_diff(&img, want);
        CHECK_MSG(d < 1.0, "gray mean difference %g", d);
        free(want);
    }
    mms_image_free(&img);
}

/* A mask saved as black/white RGB still reads as exact 0/255. */
static void rgb_mask_reads_as_0_255(void)
{
    char *p = path_in_tmp("bw.png");
    if (sh("ffmpeg -nostdin -v error -y -f lavfi -i color=white:size=16x8 -f lavfi "
           "-i color=black:size=8x8 -filter_complex overlay -frames:v 1 -pix_fmt %s '%s'",
           "rgb24", p))
        return;
    struct mms_image img;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_GRAY8, &img, &err) == 0, "%s", err.msg);
    int bad = 0;
    for (int y = 0; y < img.h; y++)
        for (int x = 0; x < img.w; x++)
            bad += img.data[y * img.stride + x] != (x < 8 ? 0 : 255);
    CHECK_MSG(bad == 0, "%d pixels not exactly 0/255", bad);
    mms_image_free(&img);
}

static void missing_file(void)
{
    struct mms_image img = {.w = 5};
    struct mms_err err = {{0}};
    const char *p = path_in_tmp("does-not-exist.png");
    CHECK(mms_image_read(p, MMS_IMAGE_RGB24, &img, &err) == -ENOENT);
    CHECK_MSG(strstr(err.msg, "does-not-exist.png") &&
              strstr(err.msg, "No such file or directory"), "%s", err.msg);
    CHECK(img.data == NULL && img.w == 0);

    CHECK(mms_image_read(mms_test_tmpdir(), MMS_IMAGE_RGB24, &img, &err) == -EISDIR);
    CHECK(img.data == NULL);
}

static void expect_bad(const char *path, const char *what)
{
    struct mms_image img;
    struct mms_err err = {{0}};
    int ret = mms_image_read(path, MMS_IMAGE_RGB24, &img, &err);
    CHECK_MSG(ret == -EINVAL, "%s: got %d (%s)", what, ret, err.msg);
    CHECK_MSG(strstr(err.msg, path) != NULL, "%s: message '%s'", what, err.msg);
    CHECK(img.data == NULL);
    mms_image_free(&img);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void corrupt_files_fail_cleanly(void)
{
    uint8_t junk[4096];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof(junk); i++) {
        s = s * 1103515245u + 12345u;
        junk[i] = (uint8_t)(s >> 16);
    }
    char *p = path_in_tmp("junk.png");
    write_file(p, junk, sizeof(junk));
    expect_bad(p, "random bytes");

    p = path_in_tmp("empty.png");
    write_file(p, "", 0);
    expect_bad(p, "empty file");

    /* Random bytes behind a real signature reach the decoders. */
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(junk, png_sig, 8);
    p = path_in_tmp("junk-sig.png");
    write_file(p, junk, sizeof(junk));
    expect_bad(p, "PNG signature + junk");
    junk[0] = 0xff, junk[1] = 0xd8, junk[2] = 0xff;
    p = path_in_tmp("junk-sig.jpg");
    write_file(p, junk, sizeof(junk));
    expect_bad(p, "JPEG marker + junk");

    static const char *const whole[] = {"t-rgb24.png", "t.jpg"};
    for (int k = 0; k < 2; k++) {
        const char *src = k ? make_picture(whole[k], "yuvj420p")
                            : make_picture(whole[k], "rgb24");
        size_t n = 0;
        uint8_t *buf = src ? slurp(src, &n) : NULL;
        CHECK(buf && n > 200);
        if (!buf)
            continue;
        char name[64];
        snprintf(name, sizeof(name), "half-%s", whole[k]);
        p = path_in_tmp(name);
        write_file(p, buf, n / 2);
        expect_bad(p, name);
        free(buf);
    }
}

/* Kept by the fuzzer (fuzz/regress/image): 494 bytes whose header says
 * 12728x16059. Refused from the header, not after a 1.3 GB decode. */
static void huge_picture_refused(void)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/fuzz/regress/image/webp-12728x16059", mms_test_srcdir());
    struct mms_image img = {.w = 5};
    struct mms_err err = {{0}};
    int ret = mms_image_read(p, MMS_IMAGE_RGB24, &img, &err);
    CHECK_MSG(ret == -EINVAL, "got %d (%s)", ret, err.msg);
    CHECK_MSG(strstr(err.msg, "webp-12728x16059") && strstr(err.msg, "64 Mpx"), "%s", err.msg);
    CHECK(img.data == NULL);
}

/* The bound is on pixels, not sides: a long thin picture still reads. */
static void long_thin_picture_reads(void)
{
    char *p = path_in_tmp("thin.png");
    if (sh("ffmpeg -nostdin -v error -y -f lavfi -i color=c=red:size=%sx2 -frames:v 1 '%s'",
           "16000", p))
        return;
    struct mms_image img;
    struct mms_err err = {{0}};
    CHECK_MSG(mms_image_read(p, MMS_IMAGE_RGB24, &img, &err) == 0, "%s", err.msg);
    CHECK(img.w == 16000 && img.h == 2);
    mms_image_free(&img);
}

static void write_errors(void)
{
    struct mms_image m;
    CHECK(mms_image_alloc(&m, 4, 4, MMS_IMAGE_GRAY8) == 0);
    struct mms_err err = {{0}};
    const char *p = path_in_tmp("no/such/dir/x.png");
    CHECK(mms_image_write_png(p, &m, &err) == -ENOENT);
    CHECK_MSG(strstr(err.msg, "x.png") != NULL, "%s", err.msg);
    mms_image_free(&m);
    CHECK(mms_image_write_png(path_in_tmp("y.png"), &m, &err) == -EINVAL);
    CHECK(mms_image_alloc(&m, 0, 4, MMS_IMAGE_GRAY8) == -EINVAL);
}

static void setup(void)
{
    /* The corrupt-file cases would make FFmpeg complain on stderr. */
    mms_image_quiet(1);
}

MMS_TESTS(T(setup), T(mask_round_trip), T(rgb_round_trip), T(reads_png_pixel_formats),
          T(reads_jpeg), T(rgb_mask_reads_as_0_255), T(missing_file),
          T(corrupt_files_fail_cleanly), T(huge_picture_refused), T(long_thin_picture_reads),
          T(write_errors))
