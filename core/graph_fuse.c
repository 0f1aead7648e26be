#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/exec.h"

/* The live conv producing tensor t whose only reader is node `user`, or -1. */
static int sole_conv_producer(struct mms_graph *g, int t)
{
    int p = mms_graph_shape(g, t)->producer;
    struct mms_node *n = mms_graph_node(g, p);
    if (n->dead || n->op != MMS_OP_CONV || n->out != t || mms_graph_uses(g, t) != 1)
        return -1;
    return p;
}

/* Moves conv node `ci` into the slot of its only consumer `ui`, taking over
 * the consumer's output. Running the conv at the consumer's position is
 * safe (its inputs already exist there) and needed: a residual being summed
 * may only be computed after the conv's original position. */
static void absorb(struct mms_graph *g, int ci, int ui)
{
    struct mms_node *c = mms_graph_node(g, ci), *u = mms_graph_node(g, ui);
    struct mms_node moved = *c;
    moved.out = u->out;
    free(u->in);
    free((char *)u->name);
    *u = moved;
    memset(c, 0, sizeof(*c));
    c->dead = 1;
    c->out = -1;
    ((struct mms_tensor_shape *)mms_graph_shape(g, u->out))->producer = ui;
}

static void fold_bn(struct mms_node *conv, const struct mms_bn *bn)
{
    struct mms_conv *c = &conv->u.conv;
    size_t per = (size_t)c->ic / c->groups * c->kh * c->kw;
    for (int o = 0; o < c->oc; o++) {
        for (size_t i = 0; i < per; i++)
            c->w[o * per + i] *= bn->scale[o];
        c->b[o] = c->b[o] * bn->scale[o] + bn->shift[o];
    }
}

/* A batch-norm with nothing to fold into is a per-channel affine map: a
 * depthwise 1x1 convolution with the scale as weights and the shift as bias. */
static void bn_to_depthwise(struct mms_graph *g, struct mms_node *n)
{
    int ch = mms_graph_shape(g, n->out)->c;
    struct mms_bn bn = n->u.bn;
    n->op = MMS_OP_CONV;
    n->u.conv = (struct mms_conv){.oc = ch, .ic = ch, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                                  .groups = ch, .has_bias = 1, .w = bn.scale, .b = bn.shift};
}

static int push_post(struct mms_node *conv, struct mms_postop op)
{
    struct mms_conv *c = &conv->u.conv;
    if (c->npost == MMS_MAX_POSTOPS)
        return 0;
    if (op.kind == MMS_POSTOP_SUM)
        for (int i = 0; i < c->npost; i++)
            if (c->post[i].kind == MMS_POSTOP_SUM)
                return 0; /* oneDNN takes one sum per primitive */
    c->post[c->npost++] = op;
    return 1;
}

static void fuse_node(struct mms_graph *g, int i)
{
    struct mms_node *n = mms_graph_node(g, i);
    if (n->dead)
        return;
    if (n->op == MMS_OP_BN) {
        int ci = sole_conv_producer(g, n->in[0]);
        struct mms_node *c = ci >= 0 ? mms_graph_node(g, ci) : NULL;
        if (c && c->u.conv.npost == 0) {
            fold_bn(c, &n->u.bn);
            free(n->u.bn.scale);
            free(n->u.bn.shift);
            absorb(g, ci, i);
        } else {
            bn_to_depthwise(g, n);
        }
    } else if (n->op == MMS_OP_ACT) {
        int ci = sole_conv_producer(g, n->in[0]);
        struct mms_postop op = {.kind = MMS_POSTOP_ACT, .act = n->u.act.act,
                                .alpha = n->u.act.alpha};
        if (ci >= 0 && push_post(mms_graph_node(g, ci), op))
            absorb(g, ci, i);
    } else if (n->op == MMS_OP_ADD) {
        for (int k = 0; k < 2; k++) {
            int ci = sole_conv_producer(g, n->in[k]);
            int other = n->in[1 - k];
            struct mms_postop op = {.kind = MMS_POSTOP_SUM, .tensor = other};
            /* (Accumulating onto its own input is fine here: exec then
             * copies the input into the output before the conv runs.) */
            if (ci < 0)
                continue;
            if (push_post(mms_graph_node(g, ci), op)) {
                absorb(g, ci, i);
                break;
            }
        }
    }
}

/* Weight decay leaves trained networks with channels whose weights are
 * 1e-30 and smaller: their outputs, multiplied again downstream, fall
 * into the denormal range, where x86 arithmetic takes microcode assists
 * (the shipped mms-rt's fp32 network took twice as long for it). Below 1e-20 a
 * weight's product with any activation these networks carry is under one
 * ulp of the sums it joins, so zero is the same network. */
#define MMS_TINY_WEIGHT 1e-20f

static void flush_tiny(struct mms_node *n)
{
    struct mms_conv *c = &n->u.conv;
    size_t nw = (size_t)c->oc * (c->ic / c->groups) * c->kh * c->kw;
    for (size_t i = 0; i < nw; i++)
        if (fabsf(c->w[i]) < MMS_TINY_WEIGHT)
            c->w[i] = 0.f;
    for (int o = 0; o < c->oc; o++) /* b is allocated, and folding fills it, bias or not */
        if (fabsf(c->b[o]) < MMS_TINY_WEIGHT)
            c->b[o] = 0.f;
}

int mms_graph_fuse(struct mms_graph *g, struct mms_err *err)
{
    int rc = mms_graph_error(g, err);
    if (rc)
        return rc;
    /* In order: a conv -> bn -> add -> relu chain collapses step by step,
     * each fusion leaving the conv where the next consumer finds it. */
    for (int i = 0; i < mms_graph_nnodes(g); i++)
        fuse_node(g, i);
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        struct mms_node *n = mms_graph_node(g, i);
        if (!n->dead && n->op == MMS_OP_CONV)
            flush_tiny(n);
    }
    return 0;
}
