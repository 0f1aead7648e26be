#ifndef MMS_OPTIONS_H
#define MMS_OPTIONS_H

/*
 * One declarative table of pipeline options, like Redis's config table or
 * FFmpeg's AVOption: name, type, default, range, whether it may change
 * while running, and help. The table drives `mms run`'s command line, the
 * daemon's config file, validation and the control API, so a setting is
 * spelled, checked and documented the same way everywhere.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

enum mms_mode { MMS_MODE_AUTO, MMS_MODE_LIVE, MMS_MODE_OFFLINE };

#define MMS_MAX_OUTPUTS 8
#define MMS_MAX_INPUT_OPTIONS 16

/* Every setting of one pipeline. Strings are owned (mms_options_free). */
struct mms_pipeline_opts {
    char *input;
    char *input_options[MMS_MAX_INPUT_OPTIONS];
    int ninput_options;
    char *outputs[MMS_MAX_OUTPUTS];
    int noutputs;
    int window;
    char *model;      /* NULL: the shipped default */
    char *precision;
    int threads;
    int net_h, net_w; /* 0: the model card's size */
    int style;        /* enum mms_style_kind */
    float alpha;
    uint32_t color;
    int every;
    int mode;         /* enum mms_mode */
    char *meta;       /* per-frame JSON lines, or NULL */
    char *record_dir; /* continuous recording (pipeline/record.h), or NULL */
    int segment_seconds;
    char *record_format; /* "mp4" or "mkv" */
};

enum mms_opt_type {
    MMS_OPT_STRING,
    MMS_OPT_STRINGS, /* repeatable: each setting appends */
    MMS_OPT_BOOL,
    MMS_OPT_INT,
    MMS_OPT_FLOAT,
    MMS_OPT_COLOR,   /* RRGGBB */
    MMS_OPT_STYLE,   /* fill|outline|mask|off */
    MMS_OPT_MODE,    /* auto|live|offline */
    MMS_OPT_SIZE,    /* HxW, 0x0 = default */
};

struct mms_option {
    const char *name;
    enum mms_opt_type type;
    size_t offset;        /* into struct mms_pipeline_opts */
    size_t count_offset;  /* MMS_OPT_STRINGS: the int counter */
    int max_count;        /* MMS_OPT_STRINGS */
    const char *def;      /* default, in the option's own syntax; NULL: unset */
    double min, max;      /* INT and FLOAT */
    int runtime;          /* may change while the pipeline runs */
    const char *arg;      /* metavariable for help */
    const char *help;
};

extern const struct mms_option mms_pipeline_options[];

const struct mms_option *mms_option_find(const char *name);

/* Fills defaults; every pipeline starts from here. */
int mms_options_defaults(struct mms_pipeline_opts *o);
void mms_options_free(struct mms_pipeline_opts *o);

/* Parses and validates `value` for option `name` and stores it. -ENOENT
 * for an unknown name, -EINVAL for a bad value, -E2BIG when a repeatable
 * option is full; the message names the option and the value. */
int mms_option_set(struct mms_pipeline_opts *o, const char *name, const char *value,
                   struct mms_err *err);

/* The current value in the option's own syntax ("fill", "00ff66", "0.45");
 * repeatable options print comma-separated. */
void mms_option_format(const struct mms_pipeline_opts *o, const struct mms_option *opt,
                       char *buf, size_t len);

/* The option list for --help. */
void mms_options_help(FILE *f, const char *prefix);

#endif
