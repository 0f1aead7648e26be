/*
 * A program as a libmms user writes it: built by tests/lib/test_pkgconfig.sh
 * from the installed <mms/mms.h> and `pkg-config --cflags --libs mms` only,
 * nothing of the source tree.
 *
 *   mms_client [-m MODEL|-] [-p auto|fp32|int8|bf16] [-t THREADS]
 *              [-s WxH] [-y WxH] INPUT MASK.pgm [LOGITS.f32]
 *
 * INPUT is a binary PPM (P6), or with -y WxH raw full-range 4:2:0 Y'CbCr
 * planes as a JPEG decoder gives them (BT.601, centred chroma). -m -: the
 * shipped model (path NULL). -s WxH declares another frame size than the
 * input's, to see the library refuse it. Writes the mask (PGM, the
 * frame's size) and optionally the logits (float32, native order); also
 * runs the frame as a batch of two and checks that it gives the same.
 *
 * A failure prints "mms_client: MESSAGE (ERRNO)" with the library's
 * negative errno and exits 1.
 */
#define _POSIX_C_SOURCE 200809L /* getopt, with -std=c11 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mms/mms.h>

static int die(int code, const char *msg)
{
    fprintf(stderr, "mms_client: %s (%d)\n", msg, code);
    exit(1);
}

static int parse_size(const char *s, int *w, int *h)
{
    return sscanf(s, "%dx%d", w, h) == 2 ? 0 : -EINVAL;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
        !(buf = malloc(n ? (size_t)n : 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    } else {
        *len = (size_t)n;
    }
    if (f)
        fclose(f);
    return buf;
}

/* P6, maxval 255, one comment-free header as ffmpeg writes it. */
static const unsigned char *ppm_pixels(const unsigned char *buf, size_t len, int *w, int *h)
{
    int max, off = 0;
    if (len < 2 || memcmp(buf, "P6", 2) ||
        sscanf((const char *)buf, "P6 %d %d %d%n", w, h, &max, &off) != 3 || max != 255 ||
        *w < 1 || *h < 1 || (size_t)off + 1 + (size_t)*w * *h * 3 > len)
        return NULL;
    return buf + off + 1;
}

static void write_file(const char *path, const char *head, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(head, f) < 0 || fwrite(data, 1, n, f) != n || fclose(f))
        die(-EIO, path);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *declared = NULL, *yuv = NULL;
    struct mms_options o = {0};
    int c;
    while ((c = getopt(argc, argv, "m:p:t:s:y:")) != -1) {
        switch (c) {
        case 'm': model = strcmp(optarg, "-") ? optarg : NULL; break;
        case 'p':
            o.precision = !strcmp(optarg, "fp32")   ? MMS_PRECISION_FP32
                          : !strcmp(optarg, "int8") ? MMS_PRECISION_INT8
                          : !strcmp(optarg, "bf16") ? MMS_PRECISION_BF16
                                                    : MMS_PRECISION_AUTO;
            break;
        case 't': o.threads = atoi(optarg); break;
        case 's': declared = optarg; break;
        case 'y': yuv = optarg; break;
        default: return 2;
        }
    }
    if (argc - optind < 2 || argc - optind > 3) {
        fprintf(stderr, "usage: mms_client [-m MODEL|-] [-p P] [-t N] [-s WxH] [-y WxH] INPUT "
                        "MASK.pgm [LOGITS.f32]\n");
        return 2;
    }
    const char *input = argv[optind], *mask_path = argv[optind + 1];
    const char *logits_path = argc - optind == 3 ? argv[optind + 2] : NULL;

    size_t len = 0;
    unsigned char *buf = read_file(input, &len);
    if (!buf)
        die(-errno, input);
    struct mms_frame f = {0};
    if (yuv) {
        int w, h;
        if (parse_size(yuv, &w, &h) < 0 || w < 1 || h < 1)
            die(-EINVAL, "-y: WxH");
        size_t cw = (size_t)(w + 1) / 2, ch = (size_t)(h + 1) / 2, luma = (size_t)w * h;
        if (len != luma + 2 * cw * ch)
            die(-EINVAL, "input is not WxH 4:2:0");
        f = (struct mms_frame){.format = MMS_FRAME_YUV420P, .width = w, .height = h,
                               .data = {buf, buf + luma, buf + luma + cw * ch},
                               .stride = {w, (int)cw, (int)cw},
                               .colorspace = MMS_COLOR_BT601, .full_range = 1,
                               .chroma_loc = MMS_CHROMA_CENTER};
    } else {
        int w, h;
        const unsigned char *px = ppm_pixels(buf, len, &w, &h);
        if (!px)
            die(-EINVAL, "input is not a P6 PPM");
        f = (struct mms_frame){.format = MMS_FRAME_RGB24, .width = w, .height = h,
                               .data = {px}, .stride = {3 * w}};
    }
    if (declared && parse_size(declared, &f.width, &f.height) < 0)
        die(-EINVAL, "-s: WxH");

    struct mms_engine *e = NULL;
    struct mms_error err = {{0}};
    int ret = mms_open(model, &o, &e, &err);
    if (ret < 0)
        die(ret, err.msg);
    const struct mms_info *info = mms_info(e);
    printf("libmms %s (abi %d)\n", mms_version(), MMS_ABI_VERSION);
    printf("model %s (%s), input %dx%d, logits %dx%d\n", info->path, info->arch,
           info->in_width, info->in_height, info->out_width, info->out_height);
    printf("precision %s: %s\n",
           info->precision == MMS_PRECISION_INT8   ? "int8"
           : info->precision == MMS_PRECISION_BF16 ? "bf16"
                                                   : "fp32",
           info->precision_why);

    /* The library judges the frame (a -s size included) before anything
     * is sized from it. */
    if ((ret = mms_run(e, &f, &err)) < 0)
        die(ret, err.msg);
    size_t plane = (size_t)info->out_width * info->out_height, pix = (size_t)f.width * f.height;
    unsigned char *mask = malloc(pix), *mask2 = malloc(2 * pix);
    float *logits = malloc(plane * sizeof(float)), *logits2 = malloc(2 * plane * sizeof(float));
    if (!mask || !mask2 || !logits || !logits2)
        die(-ENOMEM, "out of memory");
    if ((ret = mms_mask(e, mask, f.width, f.height, f.width, &err)) < 0)
        die(ret, err.msg);
    memcpy(logits, mms_logits(e), plane * sizeof(float));

    struct mms_frame two[2] = {f, f};
    uint8_t *masks[2] = {mask2, mask2 + pix};
    if ((ret = mms_run_batch(e, two, 2, logits2, masks, &err)) < 0)
        die(ret, err.msg);
    for (int i = 0; i < 2; i++)
        if (memcmp(masks[i], mask, pix) || memcmp(logits2 + i * plane, logits, plane * 4))
            die(-EPROTO, "a batch gave another result than a run");

    char head[64];
    snprintf(head, sizeof(head), "P5\n%d %d\n255\n", f.width, f.height);
    write_file(mask_path, head, mask, pix);
    if (logits_path)
        write_file(logits_path, "", logits, plane * sizeof(float));
    printf("%s -> %s\n", input, mask_path);

    mms_close(e);
    free(mask);
    free(mask2);
    free(logits);
    free(logits2);
    free(buf);
    return 0;
}
