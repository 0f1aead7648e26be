#include "core/exec.h"
#include "core/plan.h"

#include <errno.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>


enum step_kind { STEP_PRIM, STEP_UPSAMPLE };

struct step {
    enum step_kind kind;
    const char *name;     /* node name, owned by the exec */
    const char *impl;     /* oneDNN implementation, owned by oneDNN's pd */
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd;
    int nargs;
    dnnl_exec_arg_t args[8];
    /* the graph node it computes (or moves data for) */
    const char *op;
    int oc, oh, ow;     /* its output */
    int64_t macs;       /* the convolution's multiply-accumulates; 0 otherwise */
    /* STEP_UPSAMPLE */
    const float *src;
    float *dst;
    int cblocks, block, h, w;
};

struct mms_exec {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    struct step *steps;
    int nsteps, cap_steps;
    /* Every oneDNN memory object and owned buffer, destroyed together. */
    dnnl_memory_t *mems;
    int nmems, cap_mems;
    void **bufs;
    int nbufs, cap_bufs;
    float *arena;
    size_t arena_bytes;
    void *scratch;
    size_t scratch_bytes;
    float *in, *out;
    struct mms_place *pl;
    int ntensors;
    int pref_block;
};

#define DNNL_TRY(call, what)                                                     \
    do {                                                                         \
        dnnl_status_t st_ = (call);                                              \
        if (st_ != dnnl_success) {                                               \
            rc = mms_err_set(err, -EINVAL, "%s: oneDNN %s failed (status %d)",   \
                             name, what, (int)st_);                              \
            goto fail;                                                           \
        }                                                                        \
    } while (0)

static int grow(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return 0;
    int c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

static void *own_buf(struct mms_exec *e, size_t bytes)
{
    if (grow((void **)&e->bufs, &e->cap_bufs, e->nbufs, sizeof(void *)))
        return NULL;
    void *p = aligned_alloc(MMS_PLAN_ALIGN, (bytes + MMS_PLAN_ALIGN - 1) / MMS_PLAN_ALIGN * MMS_PLAN_ALIGN);
    if (p) {
        memset(p, 0, bytes);
        e->bufs[e->nbufs++] = p;
    }
    return p;
}

static dnnl_memory_t own_mem(struct mms_exec *e, const dnnl_memory_desc_t *md, void *data)
{
    dnnl_memory_t m;
    if (grow((void **)&e->mems, &e->cap_mems, e->nmems, sizeof(m)))
        return NULL;
    if (dnnl_memory_create(&m, md, e->engine, data) != dnnl_success)
        return NULL;
    e->mems[e->nmems++] = m;
    return m;
}

static struct step *new_step(struct mms_exec *e, enum step_kind kind, const char *name)
{
    if (grow((void **)&e->steps, &e->cap_steps, e->nsteps, sizeof(struct step)))
        return NULL;
    struct step *s = &e->steps[e->nsteps];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->name = strdup(name ? name : "");
    if (!s->name)
        return NULL;
    e->nsteps++;
    return s;
}

static dnnl_format_tag_t block_tag(int block)
{
    return block == 16 ? dnnl_nChw16c : block == 8 ? dnnl_nChw8c : dnnl_nchw;
}

static void tensor_md(const struct mms_exec *e, const struct mms_graph *g, int t,
                      dnnl_memory_desc_t *md)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    dnnl_dims_t dims = {1, s->c, s->h, s->w};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, block_tag(e->pl[t].block));
}

/* With N=1 and a channel-outer layout, channels [off, off + c) of a buffer
 * are one contiguous run starting off * H * W floats in. */
static float *tensor_ptr(const struct mms_exec *e, const struct mms_graph *g, int t)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    const struct mms_place *p = &e->pl[t];
    return e->pl[p->root].base + (size_t)p->abs_off * s->h * s->w;
}

static dnnl_memory_t tensor_mem(struct mms_exec *e, const struct mms_graph *g, int t)
{
    dnnl_memory_desc_t md;
    tensor_md(e, g, t, &md);
    return own_mem(e, &md, tensor_ptr(e, g, t));
}

/* ------------------------------------------------------------ primitives */

static int add_prim(struct mms_exec *e, const char *name, dnnl_primitive_desc_t pd,
                    const dnnl_exec_arg_t *args, int nargs, struct mms_err *err)
{
    int rc;
    struct step *s = new_step(e, STEP_PRIM, name);
    if (!s) {
        dnnl_primitive_desc_destroy(pd);
        return mms_err_set(err, -ENOMEM, "out of memory");
    }
    s->pd = pd;
    DNNL_TRY(dnnl_primitive_create(&s->prim, pd), "primitive creation");
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    s->impl = impl;
    memcpy(s->args, args, nargs * sizeof(*args));
    s->nargs = nargs;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sb = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sb) {
        /* The shared scratchpad is bound after every step exists. */
        s->args[s->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, NULL};
        e->scratch_bytes = e->scratch_bytes > sb ? e->scratch_bytes : sb;
    }
    return 0;
fail:
    return rc;
}

static int make_attr(dnnl_primitive_attr_t *attr, const struct mms_conv *c)
{
    dnnl_post_ops_t po = NULL;
    if (dnnl_primitive_attr_create(attr) != dnnl_success)
        return -ENOMEM;
    dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (!c || !c->npost)
        return 0;
    if (dnnl_post_ops_create(&po) != dnnl_success)
        return -ENOMEM;
    for (int i = 0; i < c->npost; i++) {
        const struct mms_postop *p = &c->post[i];
        if (p->kind == MMS_POSTOP_SUM)
            dnnl_post_ops_append_sum(po, 1.f);
        else
            dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu,
                                         p->act == MMS_ACT_LEAKY ? p->alpha : 0.f, 0.f);
    }
    dnnl_primitive_attr_set_post_ops(*attr, po);
    dnnl_post_ops_destroy(po);
    return 0;
}

/* dst <- src, any layouts (also a copy into a concat slice). */
static int emit_reorder(struct mms_exec *e, const char *name, const dnnl_memory_desc_t *smd,
                        void *sp, const dnnl_memory_desc_t *dmd, void *dp, struct mms_err *err)
{
    int rc;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    if (make_attr(&attr, NULL))
        return mms_err_set(err, -ENOMEM, "out of memory");
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, smd, e->engine, dmd,
                                                          e->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: oneDNN reorder unavailable (status %d)", name,
                           (int)st);
    dnnl_memory_t s = own_mem(e, smd, sp), d = own_mem(e, dmd, dp);
    if (!s || !d) {
        dnnl_primitive_desc_destroy(pd);
        return mms_err_set(err, -ENOMEM, "out of memory");
    }
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, s}, {DNNL_ARG_TO, d}};
    rc = add_prim(e, name, pd, args, 2, err);
    return rc;
}

static int conv_pd(struct mms_exec *e, const struct mms_node *n,
                   const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                   dnnl_primitive_desc_t *pd)
{
    const struct mms_conv *c = &n->u.conv;
    dnnl_memory_desc_t wmd, bmd;
    dnnl_dims_t wd5 = {c->groups, c->oc / c->groups, c->ic / c->groups, c->kh, c->kw};
    dnnl_dims_t wd4 = {c->oc, c->ic, c->kh, c->kw};
    if (c->groups > 1)
        dnnl_memory_desc_init_by_tag(&wmd, 5, wd5, dnnl_f32, dnnl_format_tag_any);
    else
        dnnl_memory_desc_init_by_tag(&wmd, 4, wd4, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_a);
    dnnl_convolution_desc_t cd;
    dnnl_dims_t strides = {c->sh, c->sw}, pad = {c->ph, c->pw};
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                           dnnl_convolution_direct, src, &wmd, &bmd, dst,
                                           strides, pad, pad) != dnnl_success)
        return -EINVAL;
    dnnl_primitive_attr_t attr;
    if (make_attr(&attr, c))
        return -ENOMEM;
    dnnl_status_t st = dnnl_primitive_desc_create(pd, &cd, attr, e->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return st == dnnl_success ? 0 : -EINVAL;
}

static int is_ref(dnnl_primitive_desc_t pd)
{
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return !strncmp(impl, "ref", 3);
}

/* Weights go to the layout the primitive asked for, once, at load. */
static dnnl_memory_t conv_weights(struct mms_exec *e, const struct mms_node *n,
                                  dnnl_primitive_desc_t pd)
{
    const struct mms_conv *c = &n->u.conv;
    dnnl_memory_desc_t umd;
    if (c->groups > 1)
        dnnl_memory_desc_init_by_tag(
            &umd, 5,
            (dnnl_dims_t){c->groups, c->oc / c->groups, c->ic / c->groups, c->kh, c->kw},
            dnnl_f32, dnnl_goihw);
    else
        dnnl_memory_desc_init_by_tag(&umd, 4, (dnnl_dims_t){c->oc, c->ic, c->kh, c->kw},
                                     dnnl_f32, dnnl_oihw);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *buf = own_buf(e, dnnl_memory_desc_get_size(wmd));
    dnnl_memory_t user = NULL, w = buf ? own_mem(e, wmd, buf) : NULL;
    if (!w || !(user = own_mem(e, &umd, c->w)))
        return NULL;
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    if (dnnl_reorder_primitive_desc_create(&rpd, &umd, e->engine, wmd, e->engine, NULL))
        return NULL;
    dnnl_status_t st = dnnl_primitive_create(&r, rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (st != dnnl_success)
        return NULL;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, w}};
    st = dnnl_primitive_execute(r, e->stream, 2, args);
    dnnl_stream_wait(e->stream);
    dnnl_primitive_destroy(r);
    return st == dnnl_success ? w : NULL;
}

static int emit_conv(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                     struct mms_err *err)
{
    const char *name = n->name;
    const struct mms_conv *c = &n->u.conv;
    dnnl_memory_desc_t smd, dmd, any_s, any_d;
    dnnl_primitive_desc_t pd = NULL;
    int rc, sum = -1;
    tensor_md(e, g, n->in[0], &smd);
    tensor_md(e, g, n->out, &dmd);
    for (int i = 0; i < c->npost; i++)
        if (c->post[i].kind == MMS_POSTOP_SUM)
            sum = c->post[i].tensor;

    int fallback = 0;
    if (conv_pd(e, n, &smd, &dmd, &pd) || is_ref(pd)) {
        if (pd)
            dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        const struct mms_tensor_shape *si = mms_graph_shape(g, n->in[0]);
        const struct mms_tensor_shape *so = mms_graph_shape(g, n->out);
        dnnl_memory_desc_init_by_tag(&any_s, 4, (dnnl_dims_t){1, si->c, si->h, si->w},
                                     dnnl_f32, dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&any_d, 4, (dnnl_dims_t){1, so->c, so->h, so->w},
                                     dnnl_f32, dnnl_format_tag_any);
        if (conv_pd(e, n, &any_s, &any_d, &pd))
            return mms_err_set(err, -EINVAL, "%s: no oneDNN convolution for this shape", name);
        fallback = 1;
    }
    const dnnl_memory_desc_t *psrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    void *sp = tensor_ptr(e, g, n->in[0]), *dp = tensor_ptr(e, g, n->out);
    void *tsrc = sp, *tdst = dp;
    dnnl_memory_desc_t psrc_copy = *psrc, pdst_copy = *pdst;
    dnnl_memory_t w = conv_weights(e, n, pd);
    if (!w) {
        rc = mms_err_set(err, -ENOMEM, "%s: cannot prepare weights", name);
        goto fail;
    }
    if (fallback && !dnnl_memory_desc_equal(psrc, &smd)) {
        tsrc = own_buf(e, dnnl_memory_desc_get_size(psrc));
        if (!tsrc || (rc = emit_reorder(e, name, &smd, sp, &psrc_copy, tsrc, err)))
            goto fail_oom;
    }
    if (fallback && !dnnl_memory_desc_equal(pdst, &dmd)) {
        tdst = own_buf(e, dnnl_memory_desc_get_size(pdst));
        if (!tdst)
            goto fail_oom;
    }
    if (sum >= 0) {
        dnnl_memory_desc_t bmd;
        tensor_md(e, g, sum, &bmd);
        void *bp = tensor_ptr(e, g, sum);
        if (bp != tdst || !dnnl_memory_desc_equal(&bmd, &pdst_copy))
            if ((rc = emit_reorder(e, name, &bmd, bp, &pdst_copy, tdst, err)))
                goto fail;
    }
    dnnl_memory_desc_t bias_md;
    dnnl_memory_desc_init_by_tag(&bias_md, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_a);
    dnnl_memory_t ms = own_mem(e, &psrc_copy, tsrc), md = own_mem(e, &pdst_copy, tdst);
    float *bias = own_buf(e, c->oc * sizeof(float));
    if (!bias)
        goto fail_oom;
    memcpy(bias, c->b, c->oc * sizeof(float));
    dnnl_memory_t mb = own_mem(e, &bias_md, bias);
    if (!ms || !md || !mb)
        goto fail_oom;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, w},
                              {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md}};
    rc = add_prim(e, name, pd, args, 4, err);
    pd = NULL;
    if (rc)
        goto fail;
    if (tdst != dp)
        return emit_reorder(e, name, &pdst_copy, tdst, &dmd, dp, err);
    return 0;
fail_oom:
    rc = mms_err_set(err, -ENOMEM, "%s: out of memory", name);
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* Emits src -> dst through a oneDNN op descriptor built on the two mds. */
static int emit_simple(struct mms_exec *e, const char *name, const void *opdesc,
                       dnnl_memory_t *mems, const int *argids, int nmem, struct mms_err *err)
{
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    if (make_attr(&attr, NULL))
        return mms_err_set(err, -ENOMEM, "out of memory");
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, opdesc, attr, e->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: no oneDNN primitive (status %d)", name, (int)st);
    dnnl_exec_arg_t args[4];
    for (int i = 0; i < nmem; i++) {
        if (!mems[i]) {
            dnnl_primitive_desc_destroy(pd);
            return mms_err_set(err, -ENOMEM, "out of memory");
        }
        args[i] = (dnnl_exec_arg_t){argids[i], mems[i]};
    }
    return add_prim(e, name, pd, args, nmem, err);
}

static int emit_pool(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                     struct mms_err *err)
{
    const struct mms_poolp *p = &n->u.pool;
    const struct mms_tensor_shape *si = mms_graph_shape(g, n->in[0]);
    const struct mms_tensor_shape *so = mms_graph_shape(g, n->out);
    dnnl_memory_desc_t smd, dmd;
    tensor_md(e, g, n->in[0], &smd);
    tensor_md(e, g, n->out, &dmd);
    /* PyTorch sizes the output (ceil_mode); oneDNN wants the right padding
     * that yields that size. */
    dnnl_dims_t k = {p->k, p->k}, s = {p->s, p->s}, dil = {0, 0}, pl = {p->p, p->p};
    dnnl_dims_t pr = {(so->h - 1) * p->s + p->k - si->h - p->p,
                      (so->w - 1) * p->s + p->k - si->w - p->p};
    dnnl_alg_kind_t alg = p->kind == MMS_POOL_MAX ? dnnl_pooling_max
                          : p->count_include_pad ? dnnl_pooling_avg_include_padding
                                                 : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t pdsc;
    if (dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &smd, &dmd, s, k,
                                          dil, pl, pr) != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: pooling not supported by oneDNN", n->name);
    dnnl_memory_t m[] = {tensor_mem(e, g, n->in[0]), tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &pdsc, m, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, err);
}

static int emit_act(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                    struct mms_err *err)
{
    dnnl_memory_desc_t smd, dmd;
    tensor_md(e, g, n->in[0], &smd);
    tensor_md(e, g, n->out, &dmd);
    if (!dnnl_memory_desc_equal(&smd, &dmd))
        return mms_err_set(err, -EINVAL, "%s: activation across layouts", n->name);
    dnnl_eltwise_desc_t d;
    if (dnnl_eltwise_forward_desc_init(&d, dnnl_forward_inference, dnnl_eltwise_relu, &smd,
                                       n->u.act.alpha, 0.f) != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: eltwise not supported", n->name);
    dnnl_memory_t m[] = {tensor_mem(e, g, n->in[0]), tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &d, m, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, err);
}

static int emit_add(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                    struct mms_err *err)
{
    dnnl_memory_desc_t a, b, d;
    tensor_md(e, g, n->in[0], &a);
    tensor_md(e, g, n->in[1], &b);
    tensor_md(e, g, n->out, &d);
    dnnl_binary_desc_t bd;
    if (dnnl_binary_desc_init(&bd, dnnl_binary_add, &a, &b, &d) != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: binary add not supported", n->name);
    dnnl_memory_t m[] = {tensor_mem(e, g, n->in[0]), tensor_mem(e, g, n->in[1]),
                         tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &bd, m,
                       (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}, 3, err);
}

/* Copies t into place at tensor `dst` unless it already lives there. */
static int emit_copy_into(struct mms_exec *e, struct mms_graph *g, const char *name, int t,
                          int dst, struct mms_err *err)
{
    if (tensor_ptr(e, g, t) == tensor_ptr(e, g, dst) && e->pl[t].block == e->pl[dst].block)
        return 0;
    dnnl_memory_desc_t smd, dmd;
    tensor_md(e, g, t, &smd);
    tensor_md(e, g, dst, &dmd);
    return emit_reorder(e, name, &smd, tensor_ptr(e, g, t), &dmd, tensor_ptr(e, g, dst), err);
}

static int emit_concat(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                       struct mms_err *err)
{
    int off = 0;
    for (int j = 0; j < n->nin; j++) {
        int t = n->in[j];
        const struct mms_tensor_shape *s = mms_graph_shape(g, t);
        if (e->pl[t].parent != n->out || e->pl[t].off != off) {
            /* The slice of the output this input fills: same layout as the
             * output, `off` channels in. */
            dnnl_memory_desc_t smd, dmd;
            tensor_md(e, g, t, &smd);
            dnnl_memory_desc_init_by_tag(&dmd, 4, (dnnl_dims_t){1, s->c, s->h, s->w},
                                         dnnl_f32, block_tag(e->pl[n->out].block));
            float *dp = tensor_ptr(e, g, n->out) + (size_t)off * s->h * s->w;
            int rc = emit_reorder(e, n->name, &smd, tensor_ptr(e, g, t), &dmd, dp, err);
            if (rc)
                return rc;
        }
        off += s->c;
    }
    return 0;
}

static int emit_upsample(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                         struct mms_err *err)
{
    int src = n->in[0];
    const struct mms_tensor_shape *si = mms_graph_shape(g, src);
    int block = e->pl[n->out].block;
    const float *sp = tensor_ptr(e, g, src);
    if (e->pl[src].block != block) {
        /* The kernel works in one layout: bring the input to the output's. */
        dnnl_memory_desc_t smd, tmd;
        tensor_md(e, g, src, &smd);
        dnnl_memory_desc_init_by_tag(&tmd, 4, (dnnl_dims_t){1, si->c, si->h, si->w}, dnnl_f32,
                                     block_tag(block));
        float *tmp = own_buf(e, dnnl_memory_desc_get_size(&tmd));
        int rc = tmp ? emit_reorder(e, n->name, &smd, (void *)sp, &tmd, tmp, err)
                     : mms_err_set(err, -ENOMEM, "out of memory");
        if (rc)
            return rc;
        sp = tmp;
    }
    struct step *s = new_step(e, STEP_UPSAMPLE, n->name);
    if (!s)
        return mms_err_set(err, -ENOMEM, "out of memory");
    s->impl = "mms:upsample2_align_corners";
    s->src = sp;
    s->dst = tensor_ptr(e, g, n->out);
    s->block = block;
    s->cblocks = (si->c + block - 1) / block;
    s->h = si->h;
    s->w = si->w;
    return 0;
}

static int emit_node(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                     struct mms_err *err)
{
    switch (n->op) {
    case MMS_OP_CONV:
        return emit_conv(e, g, n, err);
    case MMS_OP_POOL:
        return emit_pool(e, g, n, err);
    case MMS_OP_UPSAMPLE:
        return emit_upsample(e, g, n, err);
    case MMS_OP_CONCAT:
        return emit_concat(e, g, n, err);
    case MMS_OP_ADD:
        return emit_add(e, g, n, err);
    case MMS_OP_ACT:
        return emit_act(e, g, n, err);
    case MMS_OP_COPY:
        return emit_copy_into(e, g, n->name, n->in[0], n->out, err);
    case MMS_OP_SLICE:
    case MMS_OP_INPUT:
        return 0;
    case MMS_OP_BN:
        break; /* graph_fuse turned every one into a convolution */
    }
    return mms_err_set(err, -EINVAL, "%s: operation %d cannot be compiled", n->name, n->op);
}

/* The widest channel block this CPU has optimised convolutions for. oneDNN
 * itself may prefer nhwc ("any" picks brgconv on AVX-512), but a channel
 * slice of nhwc is strided and sends every kernel to the reference path,
 * while a slice of a blocked layout is contiguous and free. */
static int preferred_block(struct mms_exec *e)
{
    static const int blocks[] = {16, 8};
    const char *force = getenv("MMS_EXEC_BLOCK"); /* tests pin each layout */
    if (force)
        return atoi(force) == 16 ? 16 : atoi(force) == 8 ? 8 : 1;
    for (int i = 0; i < 2; i++) {
        dnnl_memory_desc_t act, w;
        dnnl_dims_t d = {1, 64, 32, 32};
        dnnl_memory_desc_init_by_tag(&act, 4, d, dnnl_f32, block_tag(blocks[i]));
        dnnl_memory_desc_init_by_tag(&w, 4, (dnnl_dims_t){64, 64, 3, 3}, dnnl_f32,
                                     dnnl_format_tag_any);
        dnnl_convolution_desc_t cd;
        dnnl_primitive_desc_t pd;
        if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                               dnnl_convolution_direct, &act, &w, NULL, &act,
                                               (dnnl_dims_t){1, 1}, (dnnl_dims_t){1, 1},
                                               (dnnl_dims_t){1, 1}) != dnnl_success ||
            dnnl_primitive_desc_create(&pd, &cd, NULL, e->engine, NULL) != dnnl_success)
            continue;
        int ok = !is_ref(pd);
        dnnl_primitive_desc_destroy(pd);
        if (ok)
            return blocks[i];
    }
    return 1;
}

static const char *op_name(const struct mms_node *n)
{
    static const char *const names[] = {
        [MMS_OP_INPUT] = "input", [MMS_OP_CONV] = "conv", [MMS_OP_BN] = "bn",
        [MMS_OP_ACT] = "act", [MMS_OP_POOL] = "pool", [MMS_OP_UPSAMPLE] = "upsample",
        [MMS_OP_CONCAT] = "concat", [MMS_OP_ADD] = "add", [MMS_OP_SLICE] = "slice",
        [MMS_OP_COPY] = "copy",
    };
    return (unsigned)n->op < sizeof(names) / sizeof(names[0]) ? names[n->op] : "?";
}

/* What `mms bench --layers` reports of the steps node n became: a
 * reorder around a convolution is named "reorder", the convolution
 * itself carries the node's cost. */
static void describe_steps(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                           int first)
{
    const struct mms_tensor_shape *sh = mms_graph_shape(g, n->out);
    for (int i = first; i < e->nsteps; i++) {
        struct step *s = &e->steps[i];
        dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
        if (s->pd)
            dnnl_primitive_desc_query(s->pd, dnnl_query_primitive_kind, 0, &kind);
        s->op = kind == dnnl_reorder ? "reorder" : op_name(n);
        s->oc = sh->c;
        s->oh = sh->h;
        s->ow = sh->w;
        if (n->op == MMS_OP_CONV && kind == dnnl_convolution) {
            const struct mms_conv *c = &n->u.conv;
            s->macs = (int64_t)sh->c * sh->h * sh->w * (c->ic / c->groups) * c->kh * c->kw;
        }
    }
}

static int alloc_buffers(struct mms_exec *e)
{
    e->arena = e->arena_bytes ? own_buf(e, e->arena_bytes) : NULL;
    if (e->arena_bytes && !e->arena)
        return -ENOMEM;
    for (int t = 0; t < e->ntensors; t++) {
        struct mms_place *p = &e->pl[t];
        if (p->root != t || p->last < 0)
            continue;
        p->base = p->private_buf ? own_buf(e, p->bytes)
                                 : (float *)((char *)e->arena + p->arena_off);
        if (!p->base)
            return -ENOMEM;
    }
    return 0;
}

int mms_exec_create(struct mms_graph *g, int in, int out, const struct mms_exec_opts *o,
                    struct mms_exec **pe, struct mms_err *err)
{
    const char *name = "exec";
    int rc;
    struct mms_exec *e = calloc(1, sizeof(*e));
    if (!e)
        return mms_err_set(err, -ENOMEM, "out of memory");
    e->threads = o && o->threads > 0 ? o->threads : omp_get_max_threads();
    omp_set_num_threads(e->threads);
    DNNL_TRY(dnnl_engine_create(&e->engine, dnnl_cpu, 0), "engine creation");
    DNNL_TRY(dnnl_stream_create(&e->stream, e->engine, dnnl_stream_default_flags),
             "stream creation");
    e->ntensors = mms_graph_ntensors(g);
    e->pref_block = preferred_block(e);
    if ((rc = mms_plan_build(g, in, out, e->pref_block, &e->pl, &e->arena_bytes)) ||
        (rc = alloc_buffers(e))) {
        mms_err_set(err, rc, "out of memory planning buffers");
        goto fail;
    }
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        int first = e->nsteps;
        if (!n->dead && (rc = emit_node(e, g, n, err)))
            goto fail;
        describe_steps(e, g, n, first);
    }
    if (e->scratch_bytes) {
        dnnl_memory_desc_t smd;
        dnnl_memory_desc_init_by_tag(&smd, 1, (dnnl_dims_t){(dnnl_dim_t)e->scratch_bytes},
                                     dnnl_u8, dnnl_a);
        void *buf = own_buf(e, e->scratch_bytes);
        dnnl_memory_t m = buf ? own_mem(e, &smd, buf) : NULL;
        if (!m) {
            rc = mms_err_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < e->nsteps; i++)
            for (int j = 0; j < e->steps[i].nargs; j++)
                if (e->steps[i].args[j].arg == DNNL_ARG_SCRATCHPAD)
                    e->steps[i].args[j].memory = m;
    }
    e->in = tensor_ptr(e, g, in);
    e->out = tensor_ptr(e, g, out);
    *pe = e;
    return 0;
fail:
    mms_exec_destroy(e);
    return rc;
}

void mms_exec_destroy(struct mms_exec *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nsteps; i++) {
        if (e->steps[i].prim)
            dnnl_primitive_destroy(e->steps[i].prim);
        if (e->steps[i].pd)
            dnnl_primitive_desc_destroy(e->steps[i].pd);
        free((char *)e->steps[i].name);
    }
    for (int i = 0; i < e->nmems; i++)
        dnnl_memory_destroy(e->mems[i]);
    for (int i = 0; i < e->nbufs; i++)
        free(e->bufs[i]);
    if (e->stream)
        dnnl_stream_destroy(e->stream);
    if (e->engine)
        dnnl_engine_destroy(e->engine);
    free(e->steps);
    free(e->mems);
    free(e->bufs);
    free(e->pl);
    free(e);
}

float *mms_exec_input(struct mms_exec *e) { return e->in; }
const float *mms_exec_output(const struct mms_exec *e) { return e->out; }
int mms_exec_steps(const struct mms_exec *e) { return e->nsteps; }
size_t mms_exec_arena_bytes(const struct mms_exec *e) { return e->arena_bytes; }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int mms_exec_run_profiled(struct mms_exec *e, double *step_ms, struct mms_err *err)
{
    /* OpenMP's thread count is per calling thread; the pipeline may call
     * from a thread other than the one that compiled. */
    if (omp_get_max_threads() != e->threads)
        omp_set_num_threads(e->threads);
    for (int i = 0; i < e->nsteps; i++) {
        struct step *s = &e->steps[i];
        double t0 = step_ms ? now_ms() : 0;
        if (s->kind == STEP_UPSAMPLE) {
            mms_kernel_upsample2(s->src, s->dst, s->cblocks, s->block, s->h, s->w);
        } else {
            dnnl_status_t st = dnnl_primitive_execute(s->prim, e->stream, s->nargs, s->args);
            if (st != dnnl_success)
                return mms_err_set(err, -EIO, "%s: oneDNN execution failed (status %d)",
                                   s->name, (int)st);
        }
        if (step_ms) {
            dnnl_stream_wait(e->stream);
            step_ms[i] += now_ms() - t0;
        }
    }
    dnnl_stream_wait(e->stream);
    return 0;
}

int mms_exec_run(struct mms_exec *e, struct mms_err *err)
{
    return mms_exec_run_profiled(e, NULL, err);
}

const char *mms_exec_step_name(const struct mms_exec *e, int i, const char **impl)
{
    if (impl)
        *impl = e->steps[i].impl ? e->steps[i].impl : "";
    return e->steps[i].name;
}

void mms_exec_step_info(const struct mms_exec *e, int i, struct mms_exec_step *info)
{
    const struct step *s = &e->steps[i];
    *info = (struct mms_exec_step){
        .name = s->name, .impl = s->impl ? s->impl : "", .op = s->op ? s->op : "",
        .c = s->oc, .h = s->oh, .w = s->ow, .macs = s->macs,
    };
}

void mms_exec_dump(const struct mms_exec *e, FILE *f)
{
    for (int i = 0; i < e->nsteps; i++)
        fprintf(f, "%4d %-40s %s\n", i, e->steps[i].name,
                e->steps[i].impl ? e->steps[i].impl : "");
    fprintf(f, "arena %.1f MiB, scratchpad %.1f KiB, block %d\n",
            e->arena_bytes / 1048576.0, e->scratch_bytes / 1024.0, e->pref_block);
}
