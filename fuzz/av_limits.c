/* The fuzzer's own bound on a decoded picture: every decoder that mmsio
 * opens (linked with -Wl,--wrap=avcodec_open2) refuses a frame over
 * FUZZ_MAX_PIXELS before allocating it. Without it a 500-byte WebP that
 * says 12728x16059 takes 80 s to convert under ASan (6 s and 1.3 GB in a
 * release build of mms segment): a libFuzzer timeout on each such input,
 * which says nothing new about the parsers. The program's own limits
 * (io/image.c MAX_SIDE) are untouched. */
#include <libavcodec/avcodec.h>

#define FUZZ_MAX_PIXELS (1024 * 1024)

int __real_avcodec_open2(AVCodecContext *ctx, const AVCodec *codec, AVDictionary **options);
int __wrap_avcodec_open2(AVCodecContext *ctx, const AVCodec *codec, AVDictionary **options);

int __wrap_avcodec_open2(AVCodecContext *ctx, const AVCodec *codec, AVDictionary **options)
{
    if (ctx && (ctx->max_pixels <= 0 || ctx->max_pixels > FUZZ_MAX_PIXELS))
        ctx->max_pixels = FUZZ_MAX_PIXELS;
    return __real_avcodec_open2(ctx, codec, options);
}
