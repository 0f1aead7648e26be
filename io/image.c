#include "io/image.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "io/av_common.h"

#define MAX_SIDE 16384
/* A decoder allocates what the header says before reading a pixel: a
 * 494-byte WebP that says 12728x16059 took 6 s and 1.3 GB to refuse.
 * 64 Mpx is twice an 8K frame; larger stills are not camera pictures. */
#define MAX_PIXELS (64L << 20)
/* Larger than any sane still image; stops a stray multi-GB file from
 * being read into memory before the decoder refuses it. */
#define MAX_FILE_BYTES (512L << 20)
/* Row padding: swscale's SIMD paths may write a little past the width. */
#define ROW_ALIGN 64

/* FFmpeg's own error tags are not errnos; they all mean a bad file here. */
static int av_errno(int ret)
{
    return ret < 0 && ret > -4096 ? ret : -EINVAL;
}

static int bytes_per_pixel(enum mms_image_fmt fmt)
{
    return fmt == MMS_IMAGE_RGB24 ? 3 : 1;
}

static enum AVPixelFormat av_fmt(enum mms_image_fmt fmt)
{
    return fmt == MMS_IMAGE_RGB24 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_GRAY8;
}

int mms_image_alloc(struct mms_image *img, int w, int h, enum mms_image_fmt fmt)
{
    memset(img, 0, sizeof(*img));
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return -EINVAL;
    int stride = (w * bytes_per_pixel(fmt) + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    size_t size = (size_t)stride * h;
    uint8_t *data = aligned_alloc(ROW_ALIGN, size);
    if (!data)
        return -ENOMEM;
    memset(data, 0, size);
    *img = (struct mms_image){w, h, stride, fmt, data};
    return 0;
}

void mms_image_free(struct mms_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof(*img));
}

void mms_image_quiet(int quiet)
{
    av_log_set_level(quiet ? AV_LOG_QUIET : AV_LOG_INFO);
}

/* ---- reading ---- */

static enum AVCodecID sniff(const uint8_t *p, size_t n)
{
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(p, png, 8))
        return AV_CODEC_ID_PNG;
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return AV_CODEC_ID_MJPEG;
    if (n >= 2 && p[0] == 'B' && p[1] == 'M')
        return AV_CODEC_ID_BMP;
    if (n >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4)))
        return AV_CODEC_ID_TIFF;
    if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
        return AV_CODEC_ID_WEBP;
    return AV_CODEC_ID_NONE;
}

/* The whole file as one packet, with the zeroed padding decoders need. */
static int read_file(const char *path, AVPacket *pkt, struct mms_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mms_err_set(err, -errno, "%s: %s", path, strerror(errno));
    int ret;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        ret = mms_err_set(err, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        ret = mms_err_set(err, -EISDIR, "%s: %s", path, strerror(EISDIR));
        goto fail;
    }
    if (st.st_size <= 0 || st.st_size > MAX_FILE_BYTES) {
        ret = mms_err_set(err, -EINVAL, "%s: not an image (%s)", path,
                       st.st_size <= 0 ? "empty file" : "file too large");
        goto fail;
    }
    ret = av_new_packet(pkt, (int)st.st_size);
    if (ret < 0) {
        ret = mms_err_set(err, -ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (fread(pkt->data, 1, pkt->size, f) != (size_t)pkt->size) {
        ret = mms_err_set(err, ferror(f) ? -EIO : -EINVAL, "%s: %s", path,
                       ferror(f) ? strerror(EIO) : "file shrank while reading");
        goto fail;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    return ret;
}

static int decode(const char *path, AVPacket *pkt, AVFrame *frame, struct mms_err *err)
{
    char why[128];
    enum AVCodecID id = sniff(pkt->data, pkt->size);
    if (id == AV_CODEC_ID_NONE)
        return mms_err_set(err, -EINVAL, "%s: not a PNG, JPEG, BMP, TIFF or WebP image",
                        path);
    const AVCodec *codec = avcodec_find_decoder(id);
    if (!codec)
        return mms_err_set(err, -ENOTSUP, "%s: this FFmpeg has no %s decoder", path,
                        avcodec_get_name(id));
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    if (!ctx)
        return mms_err_set(err, -ENOMEM, "%s: out of memory", path);
    ctx->thread_count = 1;
    /* A damaged file must fail, not decode to a half-grey picture. */
    ctx->err_recognition = AV_EF_EXPLODE;
    ctx->max_pixels = MAX_PIXELS;
    int ret = avcodec_open2(ctx, codec, NULL);
    if (ret >= 0)
        ret = avcodec_send_packet(ctx, pkt);
    if (ret >= 0)
        ret = avcodec_send_packet(ctx, NULL);
    if (ret >= 0)
        ret = avcodec_receive_frame(ctx, frame);
    avcodec_free_context(&ctx);
    if (ret == AVERROR_EOF || ret == AVERROR(EAGAIN))
        return mms_err_set(err, -EINVAL, "%s: no picture in the file", path);
    /* FFmpeg refuses an oversized header with a bare EINVAL and tells why
     * only in its log, so the limit is named with every EINVAL. */
    if (ret == AVERROR(EINVAL))
        return mms_err_set(err, -EINVAL, "%s: cannot decode: damaged, or over the %ld Mpx "
                           "a still may have", path, MAX_PIXELS >> 20);
    if (ret < 0)
        return mms_err_set(err, av_errno(ret), "%s: cannot decode: %s", path,
                        mms_av_reason(ret, why, sizeof(why)));
    if (frame->decode_error_flags || (frame->flags & AV_FRAME_FLAG_CORRUPT))
        return mms_err_set(err, -EINVAL, "%s: corrupt image data", path);
    if (frame->width < 1 || frame->height < 1 || frame->width > MAX_SIDE ||
        frame->height > MAX_SIDE)
        return mms_err_set(err, -EINVAL, "%s: unsupported size %dx%d", path,
                        frame->width, frame->height);
    return 0;
}

/* The deprecated full-range "J" formats carry their range in the name;
 * swscale wants the plain format and the range said separately. */
static enum AVPixelFormat unjpeg(enum AVPixelFormat f, int *full)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full = 1; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full = 1; return AV_PIX_FMT_YUV411P;
    default: return f;
    }
}

static int sws_colorspace(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601; /* what JPEG (JFIF) specifies */
    }
}

static int convert(const char *path, const AVFrame *frame, struct mms_image *img,
                   struct mms_err *err)
{
    int full = frame->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat src = unjpeg(frame->format, &full);
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(src);
    if (!desc)
        return mms_err_set(err, -EINVAL, "%s: unknown pixel format", path);
    int yuv = !(desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) &&
              desc->nb_components >= 3;
    /* No SWS_FULL_CHR_H_*: with them libswscale 6 ignores the range and
     * matrix set below and washes JPEG colours out. */
    struct SwsContext *sws =
        sws_getContext(frame->width, frame->height, src, img->w, img->h,
                       av_fmt(img->fmt), SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL,
                       NULL);
    if (!sws)
        return mms_err_set(err, -ENOTSUP, "%s: cannot convert pixel format %s", path,
                        desc->name);
    if (yuv) {
        const int *coefs = sws_getCoefficients(sws_colorspace(frame->colorspace));
        /* Gray output is full range, like the RGB it stands in for. */
        sws_setColorspaceDetails(sws, coefs, full, coefs, 1, 0, 1 << 16, 1 << 16);
    }
    uint8_t *dst[4] = {img->data};
    int dst_stride[4] = {img->stride};
    int ret = sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0,
                        frame->height, dst, dst_stride);
    sws_freeContext(sws);
    if (ret != img->h)
        return mms_err_set(err, -EINVAL, "%s: pixel conversion from %s failed", path,
                        desc->name);
    return 0;
}

static void copy_rows(const AVFrame *frame, struct mms_image *img)
{
    int row = img->w * bytes_per_pixel(img->fmt);
    for (int y = 0; y < img->h; y++)
        memcpy(img->data + (size_t)y * img->stride,
               frame->data[0] + (ptrdiff_t)y * frame->linesize[0], row);
}

static int from_frame(const char *path, const AVFrame *frame, struct mms_image *img,
                      struct mms_err *err)
{
    struct mms_yuv yuv;
    /* An exact copy where possible: a gray mask must read back bit for bit. */
    if (frame->format == av_fmt(img->fmt))
        copy_rows(frame, img);
    else if (img->fmt == MMS_IMAGE_RGB24 && !mms_av_frame_yuv(frame, &yuv))
        mms_yuv_to_rgb24(&yuv, img->data, img->stride); /* the one convention */
    else
        return convert(path, frame, img, err);
    return 0;
}

int mms_image_from_frame(const AVFrame *frame, enum mms_image_fmt fmt, struct mms_image *img,
                         struct mms_err *err)
{
    if (!img->data || img->w != frame->width || img->h != frame->height || img->fmt != fmt) {
        mms_image_free(img);
        int ret = mms_image_alloc(img, frame->width, frame->height, fmt);
        if (ret < 0)
            return mms_err_set(err, ret, "frame %dx%d: cannot hold it as an image",
                               frame->width, frame->height);
    }
    return from_frame("frame", frame, img, err);
}

int mms_image_read(const char *path, enum mms_image_fmt fmt, struct mms_image *img,
                   struct mms_err *err)
{
    memset(img, 0, sizeof(*img));
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int ret;
    if (!pkt || !frame) {
        ret = mms_err_set(err, -ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((ret = read_file(path, pkt, err)) < 0)
        goto fail;
    if ((ret = decode(path, pkt, frame, err)) < 0)
        goto fail;
    if ((ret = mms_image_alloc(img, frame->width, frame->height, fmt)) < 0) {
        mms_err_set(err, ret, "%s: out of memory", path);
        goto fail;
    }
    if ((ret = from_frame(path, frame, img, err)) < 0)
        goto fail;
    av_frame_free(&frame);
    av_packet_free(&pkt);
    return 0;
fail:
    mms_image_free(img);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    return ret;
}

/* ---- writing ---- */

static int encode_png(const struct mms_image *img, AVPacket *pkt)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec)
        return -ENOTSUP;
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    AVFrame *frame = av_frame_alloc();
    int ret = -ENOMEM;
    if (!ctx || !frame)
        goto done;
    ctx->width = img->w;
    ctx->height = img->h;
    ctx->pix_fmt = av_fmt(img->fmt);
    ctx->time_base = (AVRational){1, 1};
    frame->format = ctx->pix_fmt;
    frame->width = img->w;
    frame->height = img->h;
    if ((ret = avcodec_open2(ctx, codec, NULL)) < 0)
        goto done;
    if ((ret = av_frame_get_buffer(frame, 0)) < 0)
        goto done;
    av_image_copy_plane(frame->data[0], frame->linesize[0], img->data, img->stride,
                        img->w * bytes_per_pixel(img->fmt), img->h);
    if ((ret = avcodec_send_frame(ctx, frame)) < 0)
        goto done;
    if ((ret = avcodec_send_frame(ctx, NULL)) < 0)
        goto done;
    ret = avcodec_receive_packet(ctx, pkt);
done:
    av_frame_free(&frame);
    avcodec_free_context(&ctx);
    return ret;
}

int mms_image_write_png(const char *path, const struct mms_image *img,
                        struct mms_err *err)
{
    char why[128];
    if (!img->data || img->w < 1 || img->h < 1 || img->w > MAX_SIDE ||
        img->h > MAX_SIDE)
        return mms_err_set(err, -EINVAL, "%s: no image to write", path);
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return mms_err_set(err, -ENOMEM, "%s: out of memory", path);
    int ret = encode_png(img, pkt);
    if (ret < 0) {
        ret = mms_err_set(err, av_errno(ret), "%s: PNG encoding failed: %s", path,
                       mms_av_reason(ret, why, sizeof(why)));
        goto fail;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        ret = mms_err_set(err, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    size_t put = fwrite(pkt->data, 1, pkt->size, f);
    int write_errno = ferror(f) ? errno : 0;
    if (fclose(f) != 0 && !write_errno)
        write_errno = errno;
    if (put != (size_t)pkt->size || write_errno) {
        if (!write_errno)
            write_errno = EIO;
        ret = mms_err_set(err, -write_errno, "%s: %s", path, strerror(write_errno));
        remove(path); /* no half-written mask left to be mistaken for output */
        goto fail;
    }
    av_packet_free(&pkt);
    return 0;
fail:
    av_packet_free(&pkt);
    return ret;
}
