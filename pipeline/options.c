#include "pipeline/options.h"

#include <errno.h>
#include <string.h>

#include "overlay/compose.h"

#define OFF(f) offsetof(struct mms_pipeline_opts, f)

/* The same words as mms_style_name(); tests/core/test_option.c holds them to it. */
static const char *const style_names[MMS_STYLE_COUNT + 1] = {
    [MMS_STYLE_FILL] = "fill", [MMS_STYLE_OUTLINE] = "outline", [MMS_STYLE_MASK] = "mask",
    [MMS_STYLE_OFF] = "off"};
static const char *const mode_names[] = {
    [MMS_MODE_AUTO] = "auto", [MMS_MODE_LIVE] = "live", [MMS_MODE_OFFLINE] = "offline", NULL};
static const char *const tta_names[] = {
    [MMS_TTA_OFF] = "off", [MMS_TTA_FLIP] = "flip", [MMS_TTA_AUTO] = "auto", NULL};
static const char *const record_formats[] = {"mp4", "mkv", NULL};
/* x264's presets from the fastest to the one where a 720p frame costs
 * about what the network does on two cores; slower ones would set the pace. */
static const char *const encoder_presets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                              "fast", "medium", NULL};

/* overlay/ owns the colour's spellings (RRGGBB, #RRGGBB, 0xRRGGBB). */
static int parse_color(const struct mms_option *opt, const char *value, void *field,
                       struct mms_err *err)
{
    return mms_color_parse(value, field) ? mms_opt_invalid(err, opt, value, "expected RRGGBB")
                                         : 0;
}

/* Checked when the option is given, not when the source opens: a refusal
 * never shows the text, which may be a secret typed with ':' for '='
 * ("passphrase:..."), and would reach the log and /healthz. */
static int parse_input_option(const struct mms_option *opt, const char *value, void *field,
                              struct mms_err *err)
{
    const char *eq = strchr(value, '=');
    (void)field;
    if (!eq || eq == value)
        return mms_err_set(err, -EINVAL, "%s: not KEY=VALUE (the value is not shown: it may "
                                         "hold a secret)", opt->name);
    return 0;
}

#define LIVE(target) ((struct mms_pipeline_live *)(target))
#define OPTS(obj) ((const struct mms_pipeline_opts *)(obj))

/* The runtime options' apply hooks: each one atomic store. */
#define APPLY(field)                                                                         \
    static int apply_##field(const struct mms_option *opt, const void *obj, void *target,   \
                             struct mms_err *err)                                            \
    {                                                                                        \
        (void)opt, (void)err;                                                                \
        atomic_store(&LIVE(target)->field, OPTS(obj)->field);                                \
        return 0;                                                                            \
    }
APPLY(style)
APPLY(alpha)
APPLY(color)
APPLY(smooth)

/* A struct filled by hand rather than from the defaults may hold 0, and
 * the infer thread divides by it. */
static int apply_every(const struct mms_option *opt, const void *obj, void *target,
                       struct mms_err *err)
{
    (void)opt, (void)err;
    atomic_store(&LIVE(target)->every, OPTS(obj)->every > 0 ? OPTS(obj)->every : 1);
    return 0;
}

const struct mms_option mms_pipeline_options[] = {
    {.name = "input", .type = MMS_OPT_STRING, .offset = OFF(input), .arg = "URL",
     .help = "video source: file, /dev/videoN, rtsp:// srt:// udp:// rtmp://, lavfi:GRAPH"},
    {.name = "input-option", .type = MMS_OPT_STRINGS, .offset = OFF(input_options),
     .count_offset = OFF(ninput_options), .max_count = MMS_MAX_INPUT_OPTIONS,
     .parse = parse_input_option, .arg = "K=V",
     .help = "demuxer/device option, e.g. video_size=1280x720 (repeatable)"},
    {.name = "output", .type = MMS_OPT_STRINGS, .offset = OFF(outputs),
     .count_offset = OFF(noutputs), .max_count = MMS_MAX_OUTPUTS, .arg = "URL",
     .help = "file (.mp4 .mkv .ts), stream (udp:// tcp:// srt:// rtmp:// rtsp://, opened "
             "and reopened after a failure in the background) or null (repeatable)"},
    {.name = "window", .type = MMS_OPT_BOOL, .offset = OFF(window), .def = "no",
     .help = "show the annotated video in a window"},
    {.name = "model", .type = MMS_OPT_STRING, .offset = OFF(model), .arg = "FILE",
     .help = "model file (default: $MMS_MODEL, else the shipped mms-rt)"},
    {.name = "precision", .type = MMS_OPT_STRING, .offset = OFF(precision), .def = "auto",
     .arg = "P", .names = (const char *const[]){"fp32", "bf16", "int8", "auto", NULL},
     .help = "fp32, bf16 (on avx512_bf16/AMX CPUs, else fp32), int8 (a model from mms "
             "calibrate) or auto (int8 if its calibration passed, else bf16, else fp32)"},
    {.name = "threads", .type = MMS_OPT_INT, .offset = OFF(threads), .def = "0", .max = 256,
     .arg = "N",
     .help = "inference threads; 0 = all cores (offline: one single-threaded network per "
             "thread, on alternate frames, up to 4)"},
    {.name = "size", .type = MMS_OPT_SIZE, .offset = OFF(net_h), .def = "0x0", .arg = "HxW",
     .help = "network input size (default: the model's)"},
    {.name = "tta", .type = MMS_OPT_ENUM, .offset = OFF(tta), .def = "auto", .names = tta_names,
     .arg = "T",
     .help = "test-time augmentation: off, flip (average with the mirrored frame: better "
             "masks, twice the network time) or auto (flip where int8 runs 2x fp32's speed)"},
    {.name = "style", .type = MMS_OPT_ENUM, .offset = OFF(style), .def = "fill",
     .names = style_names, .runtime = 1, .apply = apply_style, .arg = "S",
     .help = "overlay: fill, outline, mask or off"},
    {.name = "alpha", .type = MMS_OPT_FLOAT, .offset = OFF(alpha), .def = "0.45", .max = 1,
     .runtime = 1, .apply = apply_alpha, .arg = "A", .help = "fill opacity, 0..1"},
    {.name = "color", .type = MMS_OPT_COLOR, .offset = OFF(color), .def = "00ff66",
     .parse = parse_color, .runtime = 1, .apply = apply_color, .arg = "RRGGBB",
     .help = "overlay colour"},
    {.name = "every", .type = MMS_OPT_INT, .offset = OFF(every), .def = "1", .min = 1,
     .max = 1000, .runtime = 1, .apply = apply_every, .arg = "N",
     .help = "run the network on every Nth frame only"},
    {.name = "smooth", .type = MMS_OPT_FLOAT, .offset = OFF(smooth), .def = "0", .max = 0.95,
     .runtime = 1, .apply = apply_smooth, .arg = "A",
     .help = "temporal smoothing: weight of the past in the tool probability, 0..0.95 "
             "(0 = off); reset where the picture moves"},
    {.name = "mode", .type = MMS_OPT_ENUM, .offset = OFF(mode), .def = "auto",
     .names = mode_names, .arg = "M",
     .help = "live (latest frame wins; files and lavfi graphs play at their own rate) or "
             "offline (every frame, in order, as fast as possible); auto: live for devices and "
             "network inputs"},
    {.name = "meta", .type = MMS_OPT_STRING, .offset = OFF(meta), .arg = "FILE",
     .help = "write one JSON line per frame (pts, mask pts, tool fraction, box, stage ms)"},
    {.name = "record-dir", .type = MMS_OPT_STRING, .offset = OFF(record_dir), .arg = "DIR",
     .help = "record continuously into DIR (made, mode 0750, when missing), one file "
             "per segment; a failure is retried by itself"},
    {.name = "segment-seconds", .type = MMS_OPT_INT, .offset = OFF(segment_seconds),
     .def = "600", .min = 1, .max = 86400, .arg = "N",
     .help = "length of one recording segment, seconds"},
    {.name = "record-format", .type = MMS_OPT_STRING, .offset = OFF(record_format),
     .def = "mp4", .names = record_formats, .arg = "F",
     .help = "recording container: mp4 (fragmented) or mkv"},
    {.name = "encoder-preset", .type = MMS_OPT_STRING, .offset = OFF(encoder_preset),
     .def = "veryfast", .names = encoder_presets, .arg = "P",
     .help = "x264 preset of offline encodings (live ones are superfast): ultrafast, "
             "superfast, veryfast, faster, fast or medium; a faster one leaves the network "
             "more CPU for a bigger file"},
    {.name = NULL},
};

const struct mms_option *mms_option_find(const char *name)
{
    return mms_opt_find(mms_pipeline_options, name);
}

int mms_option_set(struct mms_pipeline_opts *o, const char *name, const char *value,
                   struct mms_err *err)
{
    return mms_opt_set(mms_pipeline_options, o, name, value, err);
}

void mms_option_format(const struct mms_pipeline_opts *o, const struct mms_option *opt,
                       char *buf, size_t len)
{
    mms_opt_format(opt, o, buf, len);
}

int mms_options_defaults(struct mms_pipeline_opts *o)
{
    memset(o, 0, sizeof(*o));
    return mms_opt_defaults(mms_pipeline_options, o);
}

void mms_options_free(struct mms_pipeline_opts *o)
{
    mms_opt_free(mms_pipeline_options, o);
}

int mms_options_copy(struct mms_pipeline_opts *dst, const struct mms_pipeline_opts *src)
{
    return mms_opt_copy(mms_pipeline_options, dst, src);
}

int mms_options_equal(const struct mms_pipeline_opts *a, const struct mms_pipeline_opts *b)
{
    return mms_opt_equal(mms_pipeline_options, a, b);
}

void mms_options_help(FILE *f, const char *prefix)
{
    mms_opt_help(mms_pipeline_options, f, prefix);
}
