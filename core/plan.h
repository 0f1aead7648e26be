#ifndef MMS_PLAN_H
#define MMS_PLAN_H

/*
 * Memory planning for the executor (core/exec.c).
 *
 * N=1 lets every "channel-outer" layout (nchw, nChw8c, nChw16c) hold a
 * channel range as one contiguous run, so a split piece or a concat input
 * is a view: a root buffer plus a channel offset. A buffer takes the
 * preferred blocked layout when every tensor and offset in it is a multiple
 * of the block, else nchw. Roots whose lifetimes do not overlap share
 * memory in one arena.
 */

#include <stddef.h>

#include "core/graph.h"

#define MMS_PLAN_ALIGN 64

struct mms_place {
    int parent;      /* view parent tensor, or -1 */
    int off;         /* channel offset in the parent */
    int root;        /* the tensor whose buffer holds this one */
    int abs_off;     /* channel offset in the root */
    int first, last; /* roots: live range in node positions (last -1: unused) */
    int block;       /* layout: 1 (nchw), 8 or 16 channels innermost; 0: nhwc (lowp) */
    size_t bytes;    /* roots: buffer size */
    size_t arena_off;
    int private_buf; /* roots: the network input or output, outside the arena */
    float *base;     /* roots: filled in by the executor */
};

/* A tensor's type when it is not f32 in a channel-outer layout: then it is
 * nhwc, and its elements are this small. */
enum mms_lowp { MMS_LOWP_NONE, MMS_LOWP_S8, MMS_LOWP_U8, MMS_LOWP_BF16 };

static inline size_t mms_lowp_size(int lowp)
{
    return lowp == MMS_LOWP_BF16 ? 2 : 1;
}

/* One entry per graph tensor, owned by the caller (free()). lowp: NULL
 * (all f32), or one enum mms_lowp per tensor: a tensor that is not NONE is
 * s8, u8 or bf16 in nhwc, a layout in which a
 * channel range is strided, so it is never a view nor viewed into. The
 * exceptions: a residual accumulated in place (same shape and type), and
 * the upsampling of a convolution's output written into its slice of a
 * concatenation of the same type (the kernel writes strided). */
int mms_plan_build(struct mms_graph *g, int in, int out, int pref_block,
                   const unsigned char *lowp, struct mms_place **pl, size_t *arena_bytes);

#endif
