#include "pipeline/options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/card.h"
#include "core/net.h"
#include "overlay/compose.h"

#define OFF(f) offsetof(struct mms_pipeline_opts, f)

const struct mms_option mms_pipeline_options[] = {
    {"input", MMS_OPT_STRING, OFF(input), 0, 0, NULL, 0, 0, 0, "URL",
     "video source: file, /dev/videoN, rtsp:// srt:// udp:// rtmp://, lavfi:GRAPH"},
    {"input-option", MMS_OPT_STRINGS, OFF(input_options), OFF(ninput_options),
     MMS_MAX_INPUT_OPTIONS, NULL, 0, 0, 0, "K=V",
     "demuxer/device option, e.g. video_size=1280x720 (repeatable)"},
    {"output", MMS_OPT_STRINGS, OFF(outputs), OFF(noutputs), MMS_MAX_OUTPUTS, NULL, 0, 0, 0,
     "URL", "file (.mp4 .mkv .ts), stream (udp:// srt:// rtmp:// rtsp://) or null (repeatable)"},
    {"window", MMS_OPT_BOOL, OFF(window), 0, 0, "no", 0, 0, 0, NULL,
     "show the annotated video in a window"},
    {"model", MMS_OPT_STRING, OFF(model), 0, 0, NULL, 0, 0, 0, "FILE",
     "model file (default: $MMS_MODEL, else the shipped mms-rt)"},
    {"precision", MMS_OPT_STRING, OFF(precision), 0, 0, "fp32", 0, 0, 0, "P",
     "arithmetic precision: fp32"},
    {"threads", MMS_OPT_INT, OFF(threads), 0, 0, "0", 0, 256, 0, "N",
     "inference threads; 0 = all cores"},
    {"size", MMS_OPT_SIZE, OFF(net_h), 0, 0, "0x0", 0, 0, 0, "HxW",
     "network input size (default: the model's)"},
    {"style", MMS_OPT_STYLE, OFF(style), 0, 0, "fill", 0, 0, 1, "S",
     "overlay: fill, outline, mask or off"},
    {"alpha", MMS_OPT_FLOAT, OFF(alpha), 0, 0, "0.45", 0, 1, 1, "A", "fill opacity, 0..1"},
    {"color", MMS_OPT_COLOR, OFF(color), 0, 0, "00ff66", 0, 0, 1, "RRGGBB", "overlay colour"},
    {"every", MMS_OPT_INT, OFF(every), 0, 0, "1", 1, 1000, 1, "N",
     "run the network on every Nth frame only"},
    {"mode", MMS_OPT_MODE, OFF(mode), 0, 0, "auto", 0, 0, 0, "M",
     "live (latest frame wins) or offline (every frame, in order); auto: live for "
     "devices and network inputs"},
    {"meta", MMS_OPT_STRING, OFF(meta), 0, 0, NULL, 0, 0, 0, "FILE",
     "write one JSON line per frame (pts, mask pts, tool fraction, box, stage ms)"},
    {"record-dir", MMS_OPT_STRING, OFF(record_dir), 0, 0, NULL, 0, 0, 0, "DIR",
     "mmsd: record continuously into DIR, one file per segment"},
    {"segment-seconds", MMS_OPT_INT, OFF(segment_seconds), 0, 0, "600", 1, 86400, 0, "N",
     "mmsd: length of one recording segment, seconds"},
    {"record-format", MMS_OPT_STRING, OFF(record_format), 0, 0, "mp4", 0, 0, 0, "F",
     "recording container: mp4 (fragmented) or mkv"},
    {NULL, 0, 0, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const char *const mode_names[] = {"auto", "live", "offline"};

/* String options limited to a few words. They stay MMS_OPT_STRING, so
 * copying, freeing, printing and the config file need nothing new. */
static const char *const record_formats[] = {"mp4", "mkv", NULL};
static const struct {
    const char *name;
    const char *const *words;
    const char *expected;
} choices[] = {
    {"record-format", record_formats, "expected mp4 or mkv"},
};

const struct mms_option *mms_option_find(const char *name)
{
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++)
        if (!strcmp(opt->name, name))
            return opt;
    return NULL;
}

#define FIELD(o, opt, type) ((type *)((char *)(o) + (opt)->offset))

static int bad(struct mms_err *err, const struct mms_option *opt, const char *value,
               const char *why)
{
    return mms_err_set(err, -EINVAL, "%s=\"%s\": %s", opt->name, value, why);
}

static int set_string(char **dst, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static int parse_number(const struct mms_option *opt, const char *value, double *out,
                        struct mms_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v))
        return bad(err, opt, value, "not a number");
    if (v < opt->min || v > opt->max) {
        char why[96];
        snprintf(why, sizeof(why), "out of range %g..%g", opt->min, opt->max);
        return bad(err, opt, value, why);
    }
    if (opt->type == MMS_OPT_INT && v != floor(v))
        return bad(err, opt, value, "not an integer");
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no",
                                                                                 "false", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, yes[i]))
            return *out = 1, 0;
        if (!strcmp(s, no[i]))
            return *out = 0, 0;
    }
    return -EINVAL;
}

static int check_choice(const struct mms_option *opt, const char *value, struct mms_err *err)
{
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
        if (strcmp(opt->name, choices[i].name))
            continue;
        for (const char *const *w = choices[i].words; *w; w++)
            if (!strcmp(value, *w))
                return 0;
        return bad(err, opt, value, choices[i].expected);
    }
    return 0;
}

static int set_strings(struct mms_pipeline_opts *o, const struct mms_option *opt,
                       const char *value, struct mms_err *err)
{
    char **list = FIELD(o, opt, char *);
    int *n = (int *)((char *)o + opt->count_offset);
    if (*n >= opt->max_count)
        return mms_err_set(err, -E2BIG, "%s: at most %d", opt->name, opt->max_count);
    if (!*value)
        return bad(err, opt, value, "empty");
    list[*n] = strdup(value);
    if (!list[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

int mms_option_set(struct mms_pipeline_opts *o, const char *name, const char *value,
                   struct mms_err *err)
{
    const struct mms_option *opt = mms_option_find(name);
    double num;
    int rc;
    if (!opt)
        return mms_err_set(err, -ENOENT, "unknown option '%s'", name);
    switch (opt->type) {
    case MMS_OPT_STRING:
        if (!*value)
            return bad(err, opt, value, "empty");
        if ((rc = check_choice(opt, value, err)))
            return rc;
        return set_string(FIELD(o, opt, char *), value);
    case MMS_OPT_STRINGS:
        return set_strings(o, opt, value, err);
    case MMS_OPT_BOOL:
        if (parse_bool(value, FIELD(o, opt, int)))
            return bad(err, opt, value, "expected yes or no");
        return 0;
    case MMS_OPT_INT:
        if ((rc = parse_number(opt, value, &num, err)))
            return rc;
        *FIELD(o, opt, int) = (int)num;
        return 0;
    case MMS_OPT_FLOAT:
        if ((rc = parse_number(opt, value, &num, err)))
            return rc;
        *FIELD(o, opt, float) = (float)num;
        return 0;
    case MMS_OPT_COLOR:
        if (mms_color_parse(value, FIELD(o, opt, uint32_t)))
            return bad(err, opt, value, "expected RRGGBB");
        return 0;
    case MMS_OPT_STYLE: {
        enum mms_style_kind k;
        if (mms_style_parse(value, &k))
            return bad(err, opt, value, "expected fill, outline, mask or off");
        *FIELD(o, opt, int) = (int)k;
        return 0;
    }
    case MMS_OPT_MODE:
        for (int i = 0; i < 3; i++)
            if (!strcmp(value, mode_names[i]))
                return *FIELD(o, opt, int) = i, 0;
        return bad(err, opt, value, "expected auto, live or offline");
    case MMS_OPT_SIZE: {
        int h = 0, w = 0;
        if (strcmp(value, "0x0") && mms_card_parse_size(value, &h, &w))
            return bad(err, opt, value, "expected HxW");
        FIELD(o, opt, int)[0] = h;
        FIELD(o, opt, int)[1] = w;
        return 0;
    }
    }
    return -EINVAL;
}

int mms_options_defaults(struct mms_pipeline_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++) {
        if (!opt->def)
            continue;
        int rc = mms_option_set(o, opt->name, opt->def, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

void mms_options_free(struct mms_pipeline_opts *o)
{
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++) {
        if (opt->type == MMS_OPT_STRING) {
            free(*FIELD(o, opt, char *));
            *FIELD(o, opt, char *) = NULL;
        } else if (opt->type == MMS_OPT_STRINGS) {
            int *n = (int *)((char *)o + opt->count_offset);
            for (int i = 0; i < *n; i++)
                free(FIELD(o, opt, char *)[i]);
            *n = 0;
        }
    }
}

void mms_option_format(const struct mms_pipeline_opts *o, const struct mms_option *opt,
                       char *buf, size_t len)
{
    const void *p = (const char *)o + opt->offset;
    buf[0] = 0;
    switch (opt->type) {
    case MMS_OPT_STRING:
        snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "");
        break;
    case MMS_OPT_STRINGS: {
        int n = *(const int *)((const char *)o + opt->count_offset);
        for (int i = 0; i < n; i++) {
            size_t used = strlen(buf);
            snprintf(buf + used, len - used, "%s%s", i ? "," : "", ((char *const *)p)[i]);
        }
        break;
    }
    case MMS_OPT_BOOL:
        snprintf(buf, len, "%s", *(const int *)p ? "yes" : "no");
        break;
    case MMS_OPT_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case MMS_OPT_FLOAT:
        snprintf(buf, len, "%g", *(const float *)p);
        break;
    case MMS_OPT_COLOR:
        snprintf(buf, len, "%06x", (unsigned)*(const uint32_t *)p);
        break;
    case MMS_OPT_STYLE:
        snprintf(buf, len, "%s", mms_style_name(*(const int *)p));
        break;
    case MMS_OPT_MODE:
        snprintf(buf, len, "%s", mode_names[*(const int *)p]);
        break;
    case MMS_OPT_SIZE:
        snprintf(buf, len, "%dx%d", ((const int *)p)[0], ((const int *)p)[1]);
        break;
    }
}

void mms_options_help(FILE *f, const char *prefix)
{
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++) {
        char left[48];
        snprintf(left, sizeof(left), "%s%s%s%s", prefix, opt->name, opt->arg ? " " : "",
                 opt->arg ? opt->arg : "");
        fprintf(f, "  %-26s %s", left, opt->help);
        if (opt->def && opt->type != MMS_OPT_BOOL)
            fprintf(f, " [%s]", opt->def);
        fprintf(f, "%s\n", opt->runtime ? " (changeable while running)" : "");
    }
}
