/* mms segment: still images in, tool masks (and optionally logits) out.
 * It runs through libmms's public API (include/mms/mms.h), so what the
 * library gives a frame is what `mms segment` writes for it. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mms/mms.h"

struct segment_opts {
    struct mms_pipeline_opts net; /* model, precision, threads */
    char *out, *raw;
};

#define OFF(f) offsetof(struct segment_opts, f)
static const char *const net_options[] = {"model", "precision", "threads", "tta", NULL};
static const struct mms_option opts[] = {
    {.name = "out", .type = MMS_OPT_STRING, .offset = OFF(out), .arg = "DIR",
     .help = "write DIR/<stem>.png: 0/255 mask at the image's size (DIR is created)"},
    {.name = "raw", .type = MMS_OPT_STRING, .offset = OFF(raw), .arg = "DIR",
     .help = "also write DIR/<stem>.f32: the logits, float32 little-endian, row-major, at the "
             "network output size"},
    {.name = NULL},
};

static const struct args_cmd spec = {
    .name = "segment",
    .usage = "[--model FILE] [--precision P] [--threads N] [--tta T] [--raw DIR] --out DIR\n"
             "            IMAGE...",
    .summary = "segment PNG/JPEG images into tool masks",
    .details = "Each IMAGE is resized to the network input, run, and its logits resized\n"
               "back and thresholded as the model card says (core/prepost.h).",
    .opts = opts,
    .pipeline = net_options,
    .pipeline_offset = OFF(net),
    .min_operands = 1,
    .max_operands = -1,
};

static int out_path(char *buf, size_t len, const char *dir, const char *image,
                    const char *ext)
{
    char stem[256];
    if (cli_stem(image, stem, sizeof(stem)) < 0 ||
        (size_t)snprintf(buf, len, "%s/%s%s", dir, stem, ext) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* Two inputs with one stem (a.png, b/a.jpg) would silently overwrite
 * each other's mask. */
static int check_stems(char **images, int n)
{
    char si[256], sj[256];
    for (int i = 0; i < n; i++) {
        if (cli_stem(images[i], si, sizeof(si)) < 0)
            return cli_fail(spec.name, "%s: %s", images[i], strerror(ENAMETOOLONG));
        for (int j = 0; j < i; j++) {
            cli_stem(images[j], sj, sizeof(sj));
            if (!strcmp(si, sj))
                return cli_fail(spec.name, "%s and %s would both be written as %s.png",
                                images[j], images[i], si);
        }
    }
    return CLI_GO_ON;
}

/* Byte by byte, so the file is little-endian whatever the host is. */
static int write_f32(const char *path, const float *v, size_t n, struct mms_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return mms_err_set(err, -errno, "%s: %s", path, strerror(errno));
    uint8_t buf[4096];
    size_t fill = 0;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            buf[fill++] = (uint8_t)(u >> (8 * b));
        if (fill == sizeof(buf) || i + 1 == n) {
            ok = fwrite(buf, 1, fill, f) == fill;
            fill = 0;
        }
    }
    int e = ok ? 0 : errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (e) {
        remove(path);
        return mms_err_set(err, -e, "%s: %s", path, strerror(e));
    }
    return 0;
}

static int segment_one(struct mms_engine *eng, const char *image, const char *out_dir,
                       const char *raw_dir, struct mms_err *err)
{
    struct mms_image rgb = {0}, mask = {0};
    struct mms_error e = {{0}};
    char path[PATH_MAX];
    int ret;
    if ((ret = mms_image_read(image, MMS_IMAGE_RGB24, &rgb, err)) < 0)
        goto fail;
    struct mms_frame f = {.format = MMS_FRAME_RGB24, .width = rgb.w, .height = rgb.h,
                          .data = {rgb.data}, .stride = {rgb.stride}};
    if ((ret = mms_image_alloc(&mask, rgb.w, rgb.h, MMS_IMAGE_GRAY8)) < 0) {
        mms_err_set(err, ret, "%s: out of memory", image);
        goto fail;
    }
    if ((ret = mms_run(eng, &f, &e)) < 0 ||
        (ret = mms_mask(eng, mask.data, mask.w, mask.h, mask.stride, &e)) < 0) {
        mms_err_set(err, ret, "%s: %s", image, e.msg);
        goto fail;
    }
    if ((ret = out_path(path, sizeof(path), out_dir, image, ".png")) < 0 ||
        (ret = mms_image_write_png(path, &mask, err)) < 0)
        goto fail;
    printf("%s -> %s\n", image, path);
    if (raw_dir) {
        const struct mms_info *mi = mms_info(eng);
        if ((ret = out_path(path, sizeof(path), raw_dir, image, ".f32")) < 0 ||
            (ret = write_f32(path, mms_logits(eng), (size_t)mi->out_height * mi->out_width,
                             err)) < 0)
            goto fail;
    }
fail:
    if (ret == -ENAMETOOLONG)
        mms_err_set(err, ret, "%s: output path too long", image);
    mms_image_free(&rgb);
    mms_image_free(&mask);
    return ret;
}

/* The command's options, checked and named as every command has them,
 * into the library's. */
static int engine_open(const struct cli_net *cn, struct mms_engine **eng)
{
    static const int precisions[] = {
        [MMS_PREC_FP32] = MMS_PRECISION_FP32, [MMS_PREC_BF16] = MMS_PRECISION_BF16,
        [MMS_PREC_INT8] = MMS_PRECISION_INT8, [MMS_PREC_AUTO] = MMS_PRECISION_AUTO};
    struct mms_options o = {.precision = precisions[cn->opts.precision],
                            .threads = cn->opts.threads};
    static const int flips[] = {
        [MMS_TTA_OFF] = MMS_FLIP_OFF, [MMS_TTA_FLIP] = MMS_FLIP_ON, [MMS_TTA_AUTO] = MMS_FLIP_AUTO};
    struct mms_error e = {{0}};
    int ret = mms_open(cn->model, &o, eng, &e);
    if (ret >= 0 && (ret = mms_set_flip(*eng, flips[cn->opts.tta], &e)) < 0) {
        mms_close(*eng);
        *eng = NULL;
    }
    return ret < 0 ? cli_fail(spec.name, "%s", e.msg[0] ? e.msg : strerror(-ret)) : CLI_GO_ON;
}

static int make_dir(const char *dir)
{
    int ret = cli_mkdirs(dir);
    return ret < 0 ? cli_fail(spec.name, "%s: %s", dir, strerror(-ret)) : CLI_GO_ON;
}

static int segment_all(const struct args *a, const struct segment_opts *o)
{
    struct cli_net cn;
    struct mms_engine *eng = NULL;
    int ret;
    if (!o->out)
        return args_missing(a, "out");
    if ((ret = cli_net_options(a, &o->net, NULL, &cn)) != CLI_GO_ON ||
        (ret = check_stems(a->operands, a->noperands)) != CLI_GO_ON ||
        (ret = make_dir(o->out)) != CLI_GO_ON ||
        (o->raw && (ret = make_dir(o->raw)) != CLI_GO_ON) ||
        (ret = engine_open(&cn, &eng)) != CLI_GO_ON)
        return ret;
    ret = ARGS_EXIT_OK;
    for (int i = 0; i < a->noperands; i++) {
        struct mms_err err = {{0}};
        if (segment_one(eng, a->operands[i], o->out, o->raw, &err) < 0) {
            ret = cli_fail(spec.name, "%s", err.msg);
            break;
        }
    }
    mms_close(eng);
    return ret;
}

static int run(int argc, char **argv)
{
    struct segment_opts o = {0};
    struct args a;
    int ret = args_parse(&spec, &o, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    ret = segment_all(&a, &o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_segment = {&spec, run};
