#ifndef MMS_EXEC_H
#define MMS_EXEC_H

/*
 * Compiles a fused graph into oneDNN primitives and runs it.
 *
 * Where tensors live is core/plan's decision (views, layouts, one arena).
 * Weights are created with format "any" and reordered once here; a
 * convolution whose planned layouts would only get a reference kernel gets
 * its preferred layouts and reorders around it instead. mms_exec_run()
 * allocates nothing.
 */

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/graph.h"

struct mms_exec;

struct mms_exec_opts {
    int threads; /* 0: OpenMP's default */
    /* int8: every graph tensor's calibrated max |x| (mms_exec_run_observed
     * on fp32 runs); NULL: fp32. */
    const float *absmax;
    int nabsmax;
    /* bf16 (without absmax): convolutions in bf16 with fp32 accumulation,
     * activations stored bf16 nhwc, the logits fp32. Needs a CPU with
     * native bf16 (the caller checks: elsewhere oneDNN has no kernels). */
    int bf16;
};

/* Takes ownership of nothing: the graph must outlive only this call
 * (weights are copied into oneDNN's layouts). */
int mms_exec_create(struct mms_graph *g, int in, int out, const struct mms_exec_opts *o,
                    struct mms_exec **pe, struct mms_err *err);
void mms_exec_destroy(struct mms_exec *e);

float *mms_exec_input(struct mms_exec *e);        /* C x H x W, planar */
const float *mms_exec_output(const struct mms_exec *e); /* C x H x W, planar */
int mms_exec_run(struct mms_exec *e, struct mms_err *err);

/* Like mms_exec_run(), adding each step's wall time to step_ms[i]
 * (mms_exec_steps() entries): where the time goes, for `mms bench --profile`. */
int mms_exec_run_profiled(struct mms_exec *e, double *step_ms, struct mms_err *err);

/* Calibration: runs the (fp32) network, calling fn with each graph
 * tensor once it is complete: its buffer, n floats, in whatever layout it
 * has (a view's root buffer: the values are a superset). */
typedef void (*mms_exec_observer)(void *ctx, int tensor, const float *data, size_t n);
int mms_exec_run_observed(struct mms_exec *e, mms_exec_observer fn, void *ctx,
                          struct mms_err *err);
int mms_exec_tensors(const struct mms_exec *e);

int mms_exec_steps(const struct mms_exec *e);

struct mms_exec_step {
    const char *name; /* the graph node's */
    const char *impl; /* oneDNN's implementation, or the engine's kernel */
    const char *op;   /* conv, pool, upsample, concat, add, act, copy, reorder */
    int c, h, w;      /* the node's output */
    int64_t macs;     /* convolutions: multiply-accumulates per run */
};
void mms_exec_step_info(const struct mms_exec *e, int i, struct mms_exec_step *info);
const char *mms_exec_step_name(const struct mms_exec *e, int i, const char **impl);
size_t mms_exec_arena_bytes(const struct mms_exec *e);
/* One line per step: kind, node name, oneDNN implementation. */
void mms_exec_dump(const struct mms_exec *e, FILE *f);

/* core/graph_fuse.c: folds batch-norm into convolutions (a lone one becomes
 * a depthwise 1x1 convolution) and turns activations and residual adds
 * that follow a convolution into its post-ops. */
int mms_graph_fuse(struct mms_graph *g, struct mms_err *err);

/* core/kernels.c: bilinear x2, align_corners=True, on a channel-outer
 * layout with `block` channels innermost (1 = nchw). */
void mms_kernel_upsample2(const float *src, float *dst, int cblocks, int block, int h,
                          int w);
/* The same on s8 nhwc (c channels innermost), rounded to nearest. Output
 * pixels lie ostride channels apart: c, or a concatenation's channel
 * count when the output is written straight into its slice of one. */
void mms_kernel_upsample2_s8(const int8_t *src, int8_t *dst, int c, int h, int w, int ostride);
void mms_kernel_upsample2_u8(const uint8_t *src, uint8_t *dst, int c, int h, int w,
                             int ostride);
/* The same on bf16 nhwc: the fp32 kernel's blend, rounded to nearest even. */
void mms_kernel_upsample2_bf16(const uint16_t *src, uint16_t *dst, int c, int h, int w,
                               int ostride);

#endif
