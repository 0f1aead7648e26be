/* A video file's first frames through the source (io/source.h): probing,
 * the decoder, the frame pool, the timestamps and the cut-Matroska check,
 * on the containers mmsd is given (MP4/MOV, Matroska/WebM, MPEG-TS, FLV,
 * raw H.264/HEVC, AVI). Up to 5 frames; decoders refuse pictures over
 * 1 Mpx (fuzz/av_limits.c). */
#include <libavutil/avutil.h>
#include <libavutil/log.h>
#include <string.h>

#include "common.h"
#include "io/source.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    av_log_set_level(AV_LOG_QUIET);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    /* No other file and no network, whatever the input names. */
    static const char *const options[] = {
        "protocol_whitelist=file",
        "format_whitelist=mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,flv,h264,hevc,avi",
    };
    struct mms_source_opts o = {.options = options, .noptions = 2, .timeout_us = 2000000};
    struct mms_source *s = NULL;
    struct mms_err err = {{0}};
    int rc = mms_source_open(path, &o, &s, &err);
    fuzz_check_err(rc, err.msg, "mms_source_open");
    if (rc)
        return 0;
    const struct mms_source_info *info = mms_source_info(s);
    if (info->width < 1 || info->height < 1 || !info->format || !info->codec ||
        info->time_base.num <= 0 || info->time_base.den <= 0)
        fuzz_fail("opened with %dx%d, format %s, codec %s, time base %d/%d", info->width,
                  info->height, info->format ? info->format : "(null)",
                  info->codec ? info->codec : "(null)", info->time_base.num,
                  info->time_base.den);
    AVFrame *f = av_frame_alloc();
    for (int i = 0; i < 5; i++) {
        memset(&err, 0, sizeof(err));
        rc = mms_source_read(s, f, &err);
        if (rc) {
            if (rc != AVERROR_EOF)
                fuzz_check_err(rc, err.msg, "mms_source_read");
            break;
        }
        if (f->width != info->width || f->height != info->height ||
            f->format != AV_PIX_FMT_YUV420P || f->pts == AV_NOPTS_VALUE)
            fuzz_fail("frame %d: %dx%d format %d pts %lld, source %dx%d", i, f->width,
                      f->height, f->format, (long long)f->pts, info->width, info->height);
        /* The last byte of each plane's last row, inside its buffer. */
        volatile uint8_t x = 0;
        x ^= f->data[0][(size_t)f->linesize[0] * (f->height - 1) + f->width - 1];
        x ^= f->data[1][(size_t)f->linesize[1] * ((f->height + 1) / 2 - 1) +
                        (f->width + 1) / 2 - 1];
        x ^= f->data[2][(size_t)f->linesize[2] * ((f->height + 1) / 2 - 1) +
                        (f->width + 1) / 2 - 1];
        (void)x;
    }
    av_frame_free(&f);
    mms_source_close(s);
    return 0;
}
