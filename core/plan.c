/*
 * Where every tensor of a fused graph lives, decided once before any
 * primitive exists: views (split pieces, concat inputs written in place,
 * residuals accumulated in place), the layout of each buffer, lifetimes,
 * and offsets in one shared arena.
 */
#include "core/plan.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static int root_of(struct mms_place *pl, int t, int *abs_off)
{
    int off = 0;
    while (pl[t].parent >= 0) {
        off += pl[t].off;
        t = pl[t].parent;
    }
    *abs_off = off;
    return t;
}

static int is_writer(const struct mms_node *n)
{
    return n->op == MMS_OP_CONV || n->op == MMS_OP_POOL || n->op == MMS_OP_UPSAMPLE ||
           n->op == MMS_OP_ADD || n->op == MMS_OP_ACT || n->op == MMS_OP_COPY;
}

/* Last live position reading t (directly or as a sum post-op), or -1. */
static int last_read(struct mms_graph *g, int t)
{
    int last = -1;
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == t)
                last = i;
        if (n->op == MMS_OP_CONV)
            for (int j = 0; j < n->u.conv.npost; j++)
                if (n->u.conv.post[j].kind == MMS_POSTOP_SUM && n->u.conv.post[j].tensor == t)
                    last = i;
    }
    return last;
}

/* Every tensor stored in root r that overlaps channels [off, off + c) is
 * dead after position i, so that region can be taken over. */
static int region_dead_after(struct mms_place *pl, struct mms_graph *g, int r, int off,
                             int c, int i)
{
    for (int t = 0; t < mms_graph_ntensors(g); t++) {
        int to;
        if (root_of(pl, t, &to) != r)
            continue;
        int tc = mms_graph_shape(g, t)->c;
        if (to < off + c && off < to + tc && last_read(g, t) > i)
            return 0;
    }
    return 1;
}

/* Lets conv i accumulate onto residual b where b already lies: either the
 * output becomes an alias of b, or b's whole buffer moves into the output's
 * place (when the output is a concat slice). */
static void alias_residual(struct mms_place *pl, struct mms_graph *g, int i, int b, int in,
                           int out, const unsigned char *q)
{
    const struct mms_node *n = mms_graph_node(g, i);
    int o = n->out, ob, oo;
    if (q && q[o] != q[b])
        return;
    int rb = root_of(pl, b, &ob), ro = root_of(pl, o, &oo);
    int c = mms_graph_shape(g, o)->c, io;
    if (rb == root_of(pl, in, &io) || rb == root_of(pl, out, &io) || b == n->in[0] || rb == ro ||
        !region_dead_after(pl, g, rb, ob, c, i))
        return;
    if (pl[o].parent < 0 && o != out) {
        pl[o].parent = b;
        pl[o].off = 0;
        return;
    }
    if (q && q[o])
        return;
    const struct mms_node *rp = mms_graph_node(g, mms_graph_shape(g, rb)->producer);
    if (ob == 0 && mms_graph_shape(g, rb)->c == c && is_writer(rp)) {
        pl[rb].parent = o;
        pl[rb].off = 0;
    }
}

/* An int8 concat input that the upsampling kernel can write in place: it
 * writes any pixel stride, and a scale is the only other thing a slice
 * imposes. The executor gives the convolution before the upsampling the
 * concat's scale (its requantisation takes any scale at no cost), so it
 * must have no other reader and no residual to keep a scale for. */
static int q_upsample_in_place(struct mms_graph *g, int t, int in, int out)
{
    const struct mms_node *up = mms_graph_node(g, mms_graph_shape(g, t)->producer);
    if (t == in || t == out || up->op != MMS_OP_UPSAMPLE || mms_graph_uses(g, t) != 1)
        return 0;
    int c = up->in[0];
    const struct mms_node *conv = mms_graph_node(g, mms_graph_shape(g, c)->producer);
    if (c == in || conv->op != MMS_OP_CONV || mms_graph_uses(g, c) != 1)
        return 0;
    for (int j = 0; j < conv->u.conv.npost; j++)
        if (conv->u.conv.post[j].kind == MMS_POSTOP_SUM)
            return 0;
    return 1;
}

static void place_q_concat(struct mms_place *pl, struct mms_graph *g, const struct mms_node *n,
                           int in, int out, const unsigned char *q)
{
    int off = 0;
    for (int j = 0; j < n->nin; j++) {
        int t = n->in[j], dup = 0;
        for (int k = 0; k < j; k++)
            dup |= n->in[k] == t;
        if (q[t] == q[n->out] && pl[t].parent < 0 && !dup && q_upsample_in_place(g, t, in, out)) {
            pl[t].parent = n->out;
            pl[t].off = off;
        }
        off += mms_graph_shape(g, t)->c;
    }
}

static void place_views(struct mms_place *pl, struct mms_graph *g, int in, int out,
                        const unsigned char *q)
{
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        struct mms_node *n = mms_graph_node(g, i);
        if (n->dead)
            continue;
        if (q && (q[n->out] || (n->nin && q[n->in[0]])) &&
            (n->op == MMS_OP_SLICE || n->op == MMS_OP_CONCAT)) {
            /* nhwc channel ranges are strided: copied by the executor, but
             * for what the upsampling kernel writes in place */
            if (n->op == MMS_OP_CONCAT && q[n->out])
                place_q_concat(pl, g, n, in, out, q);
            continue;
        }
        if (n->op == MMS_OP_SLICE) {
            pl[n->out].parent = n->in[0];
            pl[n->out].off = n->u.slice.off;
        } else if (n->op == MMS_OP_CONCAT) {
            int off = 0;
            for (int j = 0; j < n->nin; j++) {
                int t = n->in[j];
                const struct mms_node *p = mms_graph_node(g, mms_graph_shape(g, t)->producer);
                int dup = 0;
                for (int k = 0; k < j; k++)
                    dup |= n->in[k] == t;
                /* A tensor can live in one place only; the others get copied. */
                if (t != in && t != out && is_writer(p) && pl[t].parent < 0 && !dup &&
                    !(q && q[t])) {
                    pl[t].parent = n->out;
                    pl[t].off = off;
                }
                off += mms_graph_shape(g, t)->c;
            }
        }
    }
    /* A residual read for the last time by a conv's sum post-op can hold
     * the conv's output in place: no copy before accumulating. */
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        struct mms_node *n = mms_graph_node(g, i);
        if (n->dead || n->op != MMS_OP_CONV)
            continue;
        for (int j = 0; j < n->u.conv.npost; j++)
            if (n->u.conv.post[j].kind == MMS_POSTOP_SUM)
                alias_residual(pl, g, i, n->u.conv.post[j].tensor, in, out, q);
    }
}

static void choose_layouts(struct mms_place *pl, struct mms_graph *g, int in, int out,
                           int pref_block, const unsigned char *q)
{
    int nt = mms_graph_ntensors(g);
    for (int t = 0; t < nt; t++) {
        pl[t].root = root_of(pl, t, &pl[t].abs_off);
        pl[pl[t].root].block = pref_block;
    }
    for (int t = 0; t < nt; t++) {
        int b = pref_block, r = pl[t].root;
        if (q && q[r]) {
            pl[r].block = 0;
            continue;
        }
        if (mms_graph_shape(g, t)->c % b || pl[t].abs_off % b || r == pl[in].root ||
            r == pl[out].root)
            pl[r].block = 1;
    }
    for (int t = 0; t < nt; t++)
        pl[t].block = pl[pl[t].root].block;
}

/* Node i reads or writes the region r: its life spans i. */
static void span_touch(struct mms_place *r, int i)
{
    r->last = r->last > i ? r->last : i;
    r->first = r->first < i ? r->first : i;
}

static void live_ranges(struct mms_place *pl, struct mms_graph *g)
{
    int nt = mms_graph_ntensors(g);
    for (int t = 0; t < nt; t++) {
        pl[t].first = INT32_MAX;
        pl[t].last = -1;
    }
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        if (n->dead)
            continue;
        span_touch(&pl[pl[n->out].root], i);
        /* Every input, however many a concat has: one left out would look
         * dead here and its memory be handed on while it is still read. */
        for (int j = 0; j < n->nin; j++)
            span_touch(&pl[pl[n->in[j]].root], i);
        if (n->op == MMS_OP_CONV)
            for (int j = 0; j < n->u.conv.npost; j++)
                if (n->u.conv.post[j].kind == MMS_POSTOP_SUM)
                    span_touch(&pl[pl[n->u.conv.post[j].tensor].root], i);
    }
}

static int cmp_size_desc(const void *a, const void *b, void *ctx)
{
    const struct mms_place *pl = ctx;
    size_t x = pl[*(const int *)a].bytes, y = pl[*(const int *)b].bytes;
    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

/* Greedy: largest buffers first, each at the lowest offset that does not
 * collide with a placed buffer alive at the same time. The network's input
 * and output get buffers of their own, so their addresses can be handed out. */
static int plan_arena(struct mms_place *pl, struct mms_graph *g, int in, int out,
                      const unsigned char *q, size_t *arena_bytes)
{
    int nt = mms_graph_ntensors(g), nroots = 0;
    int *roots = malloc(nt * sizeof(int));
    if (!roots)
        return -ENOMEM;
    for (int t = 0; t < nt; t++) {
        if (pl[t].root != t || pl[t].last < 0)
            continue;
        const struct mms_tensor_shape *s = mms_graph_shape(g, t);
        int b = pl[t].block ? pl[t].block : 1, c = (s->c + b - 1) / b * b;
        size_t elem = pl[t].block ? sizeof(float) : mms_lowp_size(q ? q[t] : 0);
        pl[t].bytes = ((size_t)c * s->h * s->w * elem + MMS_PLAN_ALIGN - 1) /
                      MMS_PLAN_ALIGN * MMS_PLAN_ALIGN;
        pl[t].private_buf = t == pl[in].root || t == pl[out].root;
        if (!pl[t].private_buf)
            roots[nroots++] = t;
    }
    qsort_r(roots, nroots, sizeof(int), cmp_size_desc, pl);
    size_t total = 0;
    for (int i = 0; i < nroots; i++) {
        struct mms_place *a = &pl[roots[i]];
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                const struct mms_place *b = &pl[roots[j]];
                int overlap_t = a->first <= b->last && b->first <= a->last;
                int overlap_m = off < b->arena_off + b->bytes && b->arena_off < off + a->bytes;
                if (overlap_t && overlap_m) {
                    off = b->arena_off + b->bytes;
                    moved = 1;
                }
            }
        }
        a->arena_off = off;
        total = total > off + a->bytes ? total : off + a->bytes;
    }
    free(roots);
    *arena_bytes = total;
    return 0;
}

int mms_plan_build(struct mms_graph *g, int in, int out, int pref_block,
                   const unsigned char *lowp, struct mms_place **out_pl, size_t *arena_bytes)
{
    int nt = mms_graph_ntensors(g);
    struct mms_place *pl = calloc(nt, sizeof(*pl));
    if (!pl)
        return -ENOMEM;
    for (int t = 0; t < nt; t++)
        pl[t].parent = -1;
    place_views(pl, g, in, out, lowp);
    choose_layouts(pl, g, in, out, pref_block, lowp);
    live_ranges(pl, g);
    int rc = plan_arena(pl, g, in, out, lowp, arena_bytes);
    if (rc) {
        free(pl);
        return rc;
    }
    *out_pl = pl;
    return 0;
}
