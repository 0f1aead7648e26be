#ifndef MMS_NET_H
#define MMS_NET_H

/*
 * The whole engine behind three calls: open a model file, run it on the
 * input tensor, close it. The input is planar float RGB, normalised with
 * the card's mean/std (see core/prepost.h); the output is the network's
 * logits, 1 x out_h x out_w, row-major.
 *
 * Buffers are planned once in mms_net_open(); mms_net_run() allocates
 * nothing. One net is used by one thread at a time.
 */

#include <stddef.h>
#include <stdint.h>

#include "core/card.h"
#include "core/error.h"

/* What a net computes in. AUTO: int8 when the model file carries an int8
 * calibration that passed its accuracy check (unless it was measured no
 * faster than fp32 on this CPU's ISA), else fp32. BF16 is not
 * implemented yet: asking for it runs fp32 and says why. */
enum mms_precision { MMS_PREC_FP32, MMS_PREC_BF16, MMS_PREC_INT8, MMS_PREC_AUTO };

/* The tensor and card keys `mms calibrate` adds to a model file. */
#define MMS_INT8_TENSOR "int8.absmax"
#define MMS_INT8_CHECK "int8.check" /* "passed: ..." or "failed: ..." */
#define MMS_INT8_SPEED "int8.speed" /* "ISA:RATIO": int8 was RATIO x as fast as fp32 there */

/* Test-time augmentation. FLIP: mms_net_run() also runs the left-right
 * mirror of the input and averages the two logit maps (the second
 * mirrored back). An average of two views masks better than either, the
 * thin tools most; it costs a second run of the network. AUTO: flip only
 * where it is cheap, i.e. the net runs int8 and the file's int8.speed,
 * measured on this CPU's ISA, says int8 is at least MMS_TTA_AUTO_RATIO x
 * as fast as fp32, so that two int8 runs cost no more than one fp32 run;
 * else off. OFF is 0, so a zeroed mms_net_opts never flips. */
enum mms_tta { MMS_TTA_OFF, MMS_TTA_FLIP, MMS_TTA_AUTO };
#define MMS_TTA_AUTO_RATIO 2.0

struct mms_net_opts {
    enum mms_precision precision;
    int threads;     /* 0: the library's default (all cores) */
    int in_h, in_w;  /* 0: the size in the model card */
    enum mms_tta tta;
};

struct mms_net_info {
    const char *path;
    const char *arch;
    int in_h, in_w;   /* the size the net was compiled for */
    int card_h, card_w; /* the size in the model card */
    int out_h, out_w;
    int64_t params;
    int64_t macs;     /* per frame at in_h x in_w */
    int tensors;      /* in the file */
    int primitives;   /* oneDNN primitives + engine kernels per frame */
    float mean[3], std[3];
    float threshold;
    const char *precision;  /* what it runs in: "fp32" or "int8" */
    char precision_why[192]; /* how that was chosen */
    int int8_calibrated;    /* the file carries a calibration that passed */
    int flip;               /* two runs per frame (MMS_TTA_FLIP, asked or chosen) */
    char tta_why[160];      /* how that was chosen */
};

struct mms_net;

/* Parses a precision name (fp32, bf16, int8, auto); -EINVAL for an
 * unknown one. */
int mms_precision_parse(const char *s, enum mms_precision *p);

int mms_net_open(const char *path, const struct mms_net_opts *opts,
                 struct mms_net **out, struct mms_err *err);
void mms_net_close(struct mms_net *n);
/* What mms_net_open() would refuse in the file and the options, with the
 * same message, without compiling: the file and its card, the graph the
 * architecture builds on its weights at that size, the precision. Only
 * oneDNN's part is left out, so it takes milliseconds (mmsd vets a
 * reloaded model with it before it stops the pipeline running). */
int mms_net_check(const char *path, const struct mms_net_opts *opts, struct mms_err *err);

const struct mms_net_info *mms_net_info(const struct mms_net *n);
/* Changes the tta of an open net, for the next run: OFF, FLIP or AUTO (as
 * chosen at open). 0, or -EINVAL for an unknown one, and nothing changes. */
int mms_net_set_tta(struct mms_net *n, enum mms_tta tta, struct mms_err *err);
/* 3 x in_h x in_w floats, owned by the net, written by the caller; a run
 * leaves them as they were written, flip or not. */
float *mms_net_input(struct mms_net *n);
int mms_net_run(struct mms_net *n, struct mms_err *err);
/* out_h x out_w floats, valid until the next run. */
const float *mms_net_logits(const struct mms_net *n);

/* Calibration (fp32 nets only): runs the net on its input once (no flip), calling fn with
 * every tensor of the compiled graph once it is complete (tensor index,
 * its values, count); mms_net_tensors() of them. */
int mms_net_tensors(const struct mms_net *n);
int mms_net_observe(struct mms_net *n, void (*fn)(void *ctx, int t, const float *v, size_t n),
                    void *ctx, struct mms_err *err);

/* Where the time goes (`mms bench --layers`): the steps one run executes,
 * and a run that adds each step's wall time to ms[i] (mms_net_layers()
 * entries), waiting for each step to finish; one pass, even with flip. */
struct mms_net_layer {
    const char *name, *impl, *op;
    int c, h, w;
    int64_t macs;
};
int mms_net_layers(const struct mms_net *n);
void mms_net_layer(const struct mms_net *n, int i, struct mms_net_layer *l);
int mms_net_run_profiled(struct mms_net *n, double *ms, struct mms_err *err);

#endif
