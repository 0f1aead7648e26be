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
#include "io/sink.h"
#include "io/synth.h"

static const struct args_opt opts[] = {
    {"output", "OUT", "where the clip goes (also -o): FILE.mp4, .mkv, .ts, udp://..."},
    {"frames", "N", "how many frames, 1..1000000 (default 250)"},
    {"size", "WxH", "frame size, even numbers, 32..8192 (default 1280x720)"},
    {"fps", "F", "frame rate: 25, 29.97, 30000/1001... (default 25)"},
    {"masks", "DIR", "also write DIR/frame_NNNNN.png, each frame's true tool mask "
                     "(0/255; DIR is created)"},
    {"seed", "S", "picks the scene: tissue, tools and motion, 0..4294967295 (default 1)"},
    {0},
};

static const struct args_cmd spec = {
    .name = "synth",
    .usage = "-o OUT [--frames N] [--size WxH] [--fps F] [--masks DIR] [--seed S]",
    .summary = "write a synthetic endoscopy clip with known tool masks",
    .details = "Pink tissue with vessels, specular glints, a round scope view and one\n"
               "or two moving grey instruments, H.264 encoded. Frame N's mask is\n"
               "frame_N.png, counted from 0; timestamps are 0, 1, 2... in units of\n"
               "1/F s. The same seed and size give the same clip.",
    .opts = opts,
    .min_operands = 0,
    .max_operands = 0,
};

struct synth_opts {
    const char *out, *masks;
    int frames, width, height;
    AVRational rate;
    uint32_t seed;
};

/* The option table has long names only; -o, as every video tool spells
 * it, becomes --output before parsing. */
static void short_output(int argc, char **argv)
{
    static char output[] = "--output";
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "-o"))
            argv[i] = output;
}

static int parse_size(const char *s, struct synth_opts *o)
{
    if (!s) {
        o->width = 1280;
        o->height = 720;
        return 0;
    }
    if (av_parse_video_size(&o->width, &o->height, s) < 0 || o->width % 2 ||
        o->height % 2 || o->width < 32 || o->height < 32 || o->width > 8192 ||
        o->height > 8192)
        return args_usage_error(&spec, "--size: '%s' is not WxH with even sides in 32..8192",
                                s);
    return 0;
}

static int parse_rate(const char *s, struct synth_opts *o)
{
    o->rate = (AVRational){25, 1};
    if (s && (av_parse_video_rate(&o->rate, s) < 0 || av_q2d(o->rate) < 1 ||
              av_q2d(o->rate) > 240))
        return args_usage_error(&spec, "--fps: '%s' is not a frame rate in 1..240", s);
    return 0;
}

static int parse_seed(const char *s, struct synth_opts *o)
{
    o->seed = 1;
    if (!s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || v > UINT32_MAX)
        return args_usage_error(&spec, "--seed: '%s' is not a number in 0..4294967295", s);
    o->seed = (uint32_t)v;
    return 0;
}

static int parse(int argc, char **argv, struct synth_opts *o)
{
    struct args a;
    short_output(argc, argv);
    int ret = args_parse(&spec, argc, argv, &a);
    if (ret != CLI_GO_ON)
        return ret;
    if (!(o->out = args_need(&a, "output")))
        return ARGS_EXIT_USAGE;
    o->masks = args_get(&a, "masks");
    if (args_int(&a, "frames", 250, 1, 1000000, &o->frames) < 0 ||
        parse_size(args_get(&a, "size"), o) || parse_rate(args_get(&a, "fps"), o) ||
        parse_seed(args_get(&a, "seed"), o))
        return ARGS_EXIT_USAGE;
    if (!mms_sink_find(o->out))
        return args_usage_error(&spec, "cannot write '%s': give a .mp4, .mov, .mkv or .ts "
                                "file, or a udp://, tcp://, srt://, rtmp:// or rtsp:// URL", o->out);
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

static int run(int argc, char **argv)
{
    struct synth_opts o;
    int ret = parse(argc, argv, &o);
    if (ret != CLI_GO_ON)
        return ret;
    struct synth_run r = {0};
    struct mms_err err = {{0}};
    if ((ret = open_all(&o, &r, &err)) >= 0)
        for (int i = 0; i < o.frames && ret >= 0; i++)
            ret = write_frame(&o, &r, i, &err);
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
    printf("%s: %d frames, %dx%d, %g fps, %d tool(s)%s%s\n", o.out, o.frames, o.width,
           o.height, av_q2d(o.rate), tools,
           o.masks ? ", masks in " : "", o.masks ? o.masks : "");
    return ARGS_EXIT_OK;
}

const struct cli_command cli_synth = {&spec, run};
