#ifndef MMS_OPTIONS_H
#define MMS_OPTIONS_H

/*
 * One declarative table of pipeline options (core/option.h: name, type,
 * default, range, whether it may change while running, help). The table
 * drives `mms run`'s command line, the daemon's config file, validation
 * and the control API, so a setting is spelled, checked and documented
 * the same way everywhere. The functions below are core/option.h's bound
 * to this table and struct.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/net.h"
#include "core/option.h"

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
    int tta;          /* enum mms_tta (core/net.h) */
    int style;        /* enum mms_style_kind */
    float alpha;
    uint32_t color;
    int every;
    float smooth;     /* temporal smoothing of the probability, 0 = off */
    int mode;         /* enum mms_mode */
    char *meta;       /* per-frame JSON lines, or NULL */
    char *record_dir; /* continuous recording (pipeline/record.h), or NULL */
    int segment_seconds;
    char *record_format; /* "mp4" or "mkv" */
    char *encoder_preset; /* x264's, for offline encodings */
};

/* The runtime options as a running pipeline's threads read them, each on
 * its own atomic, without a lock. The table's apply hooks write them
 * (mms_opt_change, mms_opt_update, mms_opt_apply with this as the target),
 * so the pipeline names no option to change one. */
struct mms_pipeline_live {
    atomic_int style, every;
    _Atomic float alpha, smooth;
    atomic_uint color;
};

extern const struct mms_option mms_pipeline_options[];

/* '-' and '_' compare equal: record-dir is record_dir. */
const struct mms_option *mms_option_find(const char *name);

/* Fills defaults; every pipeline starts from here. */
int mms_options_defaults(struct mms_pipeline_opts *o);
void mms_options_free(struct mms_pipeline_opts *o);

/* mms_opt_set: 0, -ENOENT for an unknown name, -EINVAL for a bad value,
 * -E2BIG when a repeatable option is full; the message names the option
 * and the value. */
int mms_option_set(struct mms_pipeline_opts *o, const char *name, const char *value,
                   struct mms_err *err);

/* The current value in the option's own syntax ("fill", "00ff66", "0.45");
 * repeatable options print comma-separated. */
void mms_option_format(const struct mms_pipeline_opts *o, const struct mms_option *opt,
                       char *buf, size_t len);

/* Deep: dst (holding values, or zeroed) gets its own strings. 0 or
 * -ENOMEM, and dst is still safe to free. */
int mms_options_copy(struct mms_pipeline_opts *dst, const struct mms_pipeline_opts *src);

/* 1 when every option is the same in a and b. */
int mms_options_equal(const struct mms_pipeline_opts *a, const struct mms_pipeline_opts *b);

/* The option list for --help. */
void mms_options_help(FILE *f, const char *prefix);

#endif
