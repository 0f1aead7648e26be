/* mms synth: the synthetic endoscopy clip, written through the sinks like
 * any output of `mms run`, with its true masks if asked. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/parseutils.h>

#include "cli/cli.h"
#include "core/redact.h"
#include "io/sink.h"
#include "io/synth.h"

/* As given; the hooks check, parse() converts. */
struct synth_args {
    char *output, *masks, *size, *fps, *seed;
    int frames;
};

struct synth_opts {
    const char *out, *masks;
    int frames, width, height;
    AVRational rate;
    uint32_t seed;
};

static int video_size(const char *s, int *w, int *h)
{
    return av_parse_video_size(w, h, s) < 0 || *w % 2 || *h % 2 || *w < 32 || *h < 32 ||
                   *w > 8192 || *h > 8192
               ? -EINVAL
               : 0;
}

static int check_size(const struct mms_option *opt, const char *value, void *field,
                      struct mms_err *err)
{
    int w, h;
    (void)field;
    return video_size(value, &w, &h)
               ? mms_opt_invalid(err, opt, value, "not WxH with even sides in 32..8192")
               : 0;
}

static int frame_rate(const char *s, AVRational *rate)
{
    return av_parse_video_rate(rate, s) < 0 || av_q2d(*rate) < 1 || av_q2d(*rate) > 240
               ? -EINVAL
               : 0;
}

static int check_rate(const struct mms_option *opt, const char *value, void *field,
                      struct mms_err *err)
{
    AVRational r;
    (void)field;
    return frame_rate(value, &r) ? mms_opt_invalid(err, opt, value, "not a frame rate in 1..240")
                                 : 0;
}

static int seed_value(const char *s, uint32_t *seed)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || v > UINT32_MAX)
        return -EINVAL;
    *seed = (uint32_t)v;
    return 0;
}

static int check_seed(const struct mms_option *opt, const char *value, void *field,
                      struct mms_err *err)
{
    uint32_t seed;
    (void)field;
    return seed_value(value, &seed)
               ? mms_opt_invalid(err, opt, value, "not a number in 0..4294967295")
               : 0;
}

#define OFF(f) offsetof(struct synth_args, f)
static const struct mms_option opts[] = {
    {.name = "output", .type = MMS_OPT_STRING, .offset = OFF(output), .arg = "OUT",
     .help = "where the clip goes: FILE.mp4, .mkv, .ts, udp://..."},
    {.name = "frames", .type = MMS_OPT_INT, .offset = OFF(frames), .def = "250", .min = 1,
     .max = 1000000, .arg = "N", .help = "how many frames, 1..1000000"},
    {.name = "size", .type = MMS_OPT_STRING, .offset = OFF(size), .def = "1280x720",
     .parse = check_size, .arg = "WxH", .help = "frame size, even numbers, 32..8192"},
    {.name = "fps", .type = MMS_OPT_STRING, .offset = OFF(fps), .def = "25", .parse = check_rate,
     .arg = "F", .help = "frame rate: 25, 29.97, 30000/1001..."},
    {.name = "masks", .type = MMS_OPT_STRING, .offset = OFF(masks), .arg = "DIR",
     .help = "also write DIR/frame_NNNNN.png, each frame's true tool mask (0/255; DIR is "
             "created)"},
    {.name = "seed", .type = MMS_OPT_STRING, .offset = OFF(seed), .def = "1", .parse = check_seed,
     .arg = "S", .help = "picks the scene: tissue, tools and motion, 0..4294967295"},
    {.name = NULL},
};

static const struct args_alias aliases[] = {{"-o", "output", NULL}, {0}};

static const struct args_cmd spec = {
    .name = "synth",
    .usage = "-o OUT [--frames N] [--size WxH] [--fps F] [--masks DIR] [--seed S]",
    .summary = "write a synthetic endoscopy clip with known tool masks",
    .details = "Pink tissue with vessels, specular glints, a round scope view and one\n"
               "or two moving grey instruments, H.264 encoded. Frame N's mask is\n"
               "frame_N.png, counted from 0; timestamps are 0, 1, 2... in units of\n"
               "1/F s. The same seed and size give the same clip.",
    .opts = opts,
    .aliases = aliases,
    .min_operands = 0,
    .max_operands = 0,
};

/* The values passed their hooks: converting them again cannot fail. */
static int parse(const struct args *a, const struct synth_args *in, struct synth_opts *o)
{
    if (!in->output)
        return args_missing(a, "output");
    o->out = in->output;
    o->masks = in->masks;
    o->frames = in->frames;
    video_size(in->size, &o->width, &o->height);
    frame_rate(in->fps, &o->rate);
    seed_value(in->seed, &o->seed);
    if (!mms_sink_find(o->out)) {
        char shown[1024];
        mms_redact_url(o->out, shown, sizeof(shown));
        return args_usage_error(&spec, "cannot write '%s': give a .mp4, .mov, .mkv or .ts "
                                "file, or a udp://, tcp://, srt://, rtmp:// or rtsp:// URL", shown);
    }
    return CLI_GO_ON;
}

struct synth_run {
    struct mms_synth *synth;
    struct mms_sink *sink;
    AVFrame *frame;
    struct mms_image mask;
};

static int open_all(const struct synth_opts *o, struct synth_run *r, struct mms_err *err)
{
    int ret = mms_synth_create(o->width, o->height, o->seed, av_q2d(o->rate), &r->synth,
                               err);
    if (ret < 0)
        return ret;
    if (o->masks && (ret = cli_mkdirs(o->masks)) < 0)
        return mms_err_set(err, ret, "%s: %s", o->masks, strerror(-ret));
    if (o->masks && (ret = mms_image_alloc(&r->mask, o->width, o->height,
                                           MMS_IMAGE_GRAY8)) < 0)
        return mms_err_set(err, ret, "out of memory");
    if (!(r->frame = av_frame_alloc()))
        return mms_err_set(err, -ENOMEM, "out of memory");
    r->frame->format = AV_PIX_FMT_YUV420P;
    r->frame->width = o->width;
    r->frame->height = o->height;
    if (av_frame_get_buffer(r->frame, 0) < 0)
        return mms_err_set(err, -ENOMEM, "out of memory");
    const struct mms_sink_params p = {
        .width = o->width,
        .height = o->height,
        .time_base = av_inv_q(o->rate),
        .frame_rate = o->rate,
        .title = "mms synth",
    };
    return mms_sink_open(NULL, o->out, &p, &r->sink, err);
}

static int write_frame(const struct synth_opts *o, struct synth_run *r, int i,
                       struct mms_err *err)
{
    /* Only copies if the encoder still holds the last picture. */
    int ret = av_frame_make_writable(r->frame);
    if (ret < 0)
        return mms_err_set(err, -ENOMEM, "out of memory");
    uint8_t *mask = o->masks ? r->mask.data : NULL;
    if ((ret = mms_synth_frame(r->synth, i, r->frame, mask, r->mask.stride)) < 0)
        return mms_err_set(err, ret, "frame %d: %s", i, strerror(-ret));
    r->frame->pts = i;
    if ((ret = mms_sink_write(r->sink, r->frame, NULL, err)) < 0)
        return ret;
    if (!o->masks)
        return 0;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/frame_%05d.png", o->masks, i) >=
        sizeof(path))
        return mms_err_set(err, -ENAMETOOLONG, "%s: path too long", o->masks);
    return mms_image_write_png(path, &r->mask, err);
}

static int synthesize(const struct synth_opts *o)
{
    struct synth_run r = {0};
    struct mms_err err = {{0}};
    int ret = open_all(o, &r, &err);
    for (int i = 0; i < o->frames && ret >= 0; i++)
        ret = write_frame(o, &r, i, &err);
    struct mms_err close_err = {{0}};
    int closed = mms_sink_close(r.sink, &close_err);
    if (ret >= 0 && closed < 0) {
        ret = closed;
        err = close_err;
    }
    int tools = r.synth ? mms_synth_info(r.synth)->tools : 0;
    mms_image_free(&r.mask);
    av_frame_free(&r.frame);
    mms_synth_free(r.synth);
    if (ret < 0)
        return cli_fail(spec.name, "%s", err.msg);
    printf("%s: %d frames, %dx%d, %g fps, %d tool(s)%s%s\n", o->out, o->frames, o->width,
           o->height, av_q2d(o->rate), tools, o->masks ? ", masks in " : "",
           o->masks ? o->masks : "");
    return ARGS_EXIT_OK;
}

static int run(int argc, char **argv)
{
    struct synth_args in = {0};
    struct synth_opts o;
    struct args a;
    int ret = args_parse(&spec, &in, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    if ((ret = parse(&a, &in, &o)) == CLI_GO_ON)
        ret = synthesize(&o);
    args_free(&a);
    return ret;
}

const struct cli_command cli_synth = {&spec, run};
