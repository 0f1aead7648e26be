/* "null": takes every frame and keeps none, so a benchmark measures
 * decoding and inference without an encoder's share of the CPU. */
#include <string.h>

#include "io/sink.h"

static int null_probe(const char *url)
{
    return !strcmp(url, "null") ? 100 : 0;
}

static int null_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                     struct mms_err *err)
{
    (void)s, (void)url, (void)p, (void)err;
    return 0;
}

static int null_write(struct mms_sink *s, const AVFrame *frame,
                      const struct mms_frame_meta *m, struct mms_err *err)
{
    (void)s, (void)frame, (void)m, (void)err;
    return 0;
}

static int null_close(struct mms_sink *s, struct mms_err *err)
{
    (void)s, (void)err;
    return 0;
}

const struct mms_sink_driver mms_sink_null = {
    .name = "null",
    .probe = null_probe,
    .priv_size = 0,
    .open = null_open,
    .write = null_write,
    .close = null_close,
};
