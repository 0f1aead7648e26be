#include "core/exec.h"
#include "core/plan.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>


enum step_kind { STEP_PRIM, STEP_UPSAMPLE, STEP_UPSAMPLE_S8, STEP_UPSAMPLE_U8, STEP_UPSAMPLE_BF16 };

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
    /* STEP_UPSAMPLE* (ostride: int8 output pixels' stride, in channels) */
    const void *src;
    void *dst;
    int cblocks, block, h, w, ostride;
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
    int in_t, out_t;
    /* int8 or bf16 (NULL in fp32): which tensors are s8, u8 or bf16 nhwc
     * (enum mms_lowp), their scales (real value = scale x stored value; 1
     * in bf16), and each tensor's converted copy in the other type, made
     * once where a reader needs it. */
    int bf16;
    unsigned char *q;
    float *scale;
    void **cvt;
    dnnl_memory_desc_t *cvt_md;
    /* Calibration: after step mark_step[i] - 1, tensor mark_tensor[i] is
     * complete (mark_step 0: before the first step). */
    int *mark_step, *mark_tensor;
    int nmarks;
    const float **obs_ptr;
    size_t *obs_n;
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

/* q[t]: f32, s8, u8 (a tensor that cannot be negative: twice the
 * resolution) or bf16. */
enum { Q_F32 = MMS_LOWP_NONE, Q_S8 = MMS_LOWP_S8, Q_U8 = MMS_LOWP_U8, Q_BF16 = MMS_LOWP_BF16 };

static int is_q(const struct mms_exec *e, int t)
{
    return e->q && e->q[t];
}

static dnnl_data_type_t q_type(const struct mms_exec *e, int t)
{
    return e->q[t] == Q_U8 ? dnnl_u8 : e->q[t] == Q_BF16 ? dnnl_bf16 : dnnl_s8;
}

/* What a reader that wants the low precision gets: s8 in int8 mode. */
static dnnl_data_type_t low_type(const struct mms_exec *e)
{
    return e->bf16 ? dnnl_bf16 : dnnl_s8;
}

static size_t type_size(dnnl_data_type_t dt)
{
    return dt == dnnl_f32 ? 4 : dt == dnnl_bf16 ? 2 : 1;
}

static void tensor_md(const struct mms_exec *e, const struct mms_graph *g, int t,
                      dnnl_memory_desc_t *md)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    dnnl_dims_t dims = {1, s->c, s->h, s->w};
    if (is_q(e, t))
        dnnl_memory_desc_init_by_tag(md, 4, dims, q_type(e, t), dnnl_nhwc);
    else
        dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, block_tag(e->pl[t].block));
}

/* With N=1 and a channel-outer layout, channels [off, off + c) of a buffer
 * are one contiguous run starting off * H * W floats in; in nhwc they
 * start off elements in, and run strided. */
static float *tensor_ptr(const struct mms_exec *e, const struct mms_graph *g, int t)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    const struct mms_place *p = &e->pl[t];
    if (is_q(e, t))
        return (float *)((char *)e->pl[p->root].base + p->abs_off * mms_lowp_size(e->q[t]));
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

/* int8 scaling of a primitive: per output channel (n > 1) or one value,
 * and the sum post-op's scale. */
struct qattr {
    const float *oscale;
    int n;
    float sum;
};

static int make_attr_q(dnnl_primitive_attr_t *attr, const struct mms_conv *c,
                       const struct qattr *qa)
{
    dnnl_post_ops_t po = NULL;
    if (dnnl_primitive_attr_create(attr) != dnnl_success)
        return -ENOMEM;
    dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (qa && qa->oscale)
        dnnl_primitive_attr_set_output_scales(*attr, qa->n, qa->n > 1 ? 1 << 1 : 0, qa->oscale);
    if (!c || !c->npost)
        return 0;
    if (dnnl_post_ops_create(&po) != dnnl_success)
        return -ENOMEM;
    for (int i = 0; i < c->npost; i++) {
        const struct mms_postop *p = &c->post[i];
        if (p->kind == MMS_POSTOP_SUM)
            dnnl_post_ops_append_sum(po, qa ? qa->sum : 1.f);
        else
            dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu,
                                         p->act == MMS_ACT_LEAKY ? p->alpha : 0.f, 0.f);
    }
    dnnl_primitive_attr_set_post_ops(*attr, po);
    dnnl_post_ops_destroy(po);
    return 0;
}

static int make_attr(dnnl_primitive_attr_t *attr, const struct mms_conv *c)
{
    return make_attr_q(attr, c, NULL);
}

/* dst <- scale x src, any layouts and types (also a copy into a concat
 * slice); scale 1 is a plain copy. */
static int emit_reorder_scaled(struct mms_exec *e, const char *name,
                               const dnnl_memory_desc_t *smd, void *sp,
                               const dnnl_memory_desc_t *dmd, void *dp, float scale,
                               struct mms_err *err)
{
    int rc;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr;
    struct qattr qa = {&scale, 1, 1.f};
    if (make_attr_q(&attr, NULL, scale != 1.f ? &qa : NULL))
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

static int emit_reorder(struct mms_exec *e, const char *name, const dnnl_memory_desc_t *smd,
                        void *sp, const dnnl_memory_desc_t *dmd, void *dp, struct mms_err *err)
{
    return emit_reorder_scaled(e, name, smd, sp, dmd, dp, 1.f, err);
}

/* The scale that takes tensor t's stored values to real ones. */
static float real_scale(const struct mms_exec *e, int t)
{
    return is_q(e, t) ? e->scale[t] : 1.f;
}

/* Tensor t as a reader that wants s8 (want_q) or f32 sees it: in place
 * when it already is, else a copy converted once, at the first reader
 * (the copy is private, so later readers find it intact). */
static int tensor_as(struct mms_exec *e, struct mms_graph *g, const char *name, int t,
                     int want_q, dnnl_memory_desc_t *md, void **p, struct mms_err *err)
{
    if (!e->q || is_q(e, t) == want_q) {
        tensor_md(e, g, t, md);
        *p = tensor_ptr(e, g, t);
        return 0;
    }
    if (!e->cvt[t]) {
        const struct mms_tensor_shape *s = mms_graph_shape(g, t);
        dnnl_memory_desc_t smd, dmd;
        tensor_md(e, g, t, &smd);
        dnnl_memory_desc_init_by_tag(&dmd, 4, (dnnl_dims_t){1, s->c, s->h, s->w},
                                     want_q ? low_type(e) : dnnl_f32,
                                     want_q ? dnnl_nhwc : block_tag(e->pref_block));
        void *buf = own_buf(e, dnnl_memory_desc_get_size(&dmd));
        if (!buf)
            return mms_err_set(err, -ENOMEM, "out of memory");
        /* to s8: real / scale[t]; to f32: stored x scale[t]; 1 for bf16 */
        float sc = want_q ? 1.f / e->scale[t] : e->scale[t];
        int rc = emit_reorder_scaled(e, name, &smd, tensor_ptr(e, g, t), &dmd, buf, sc, err);
        if (rc)
            return rc;
        e->cvt[t] = buf;
        e->cvt_md[t] = dmd;
    }
    *md = e->cvt_md[t];
    *p = e->cvt[t];
    return 0;
}

/* How one convolution is quantised: s8 weights with a scale per output
 * channel (max |w| / 127), the bias in accumulator units, and output
 * scales that take the s32 accumulator to the destination's scale. */
struct conv_q {
    float *wscale; /* oc */
    float *oscale; /* oc */
    float *bias;   /* oc */
    int8_t *w;     /* quantised weights, oihw / goihw */
    float sum;     /* the sum post-op's scale */
};

static int conv_pd(struct mms_exec *e, const struct mms_node *n,
                   const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                   const struct conv_q *cq, dnnl_primitive_desc_t *pd)
{
    const struct mms_conv *c = &n->u.conv;
    dnnl_data_type_t wdt = cq ? dnnl_s8 : src->data_type == dnnl_bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t wmd, bmd;
    dnnl_dims_t wd5 = {c->groups, c->oc / c->groups, c->ic / c->groups, c->kh, c->kw};
    dnnl_dims_t wd4 = {c->oc, c->ic, c->kh, c->kw};
    if (c->groups > 1)
        dnnl_memory_desc_init_by_tag(&wmd, 5, wd5, wdt, dnnl_format_tag_any);
    else
        dnnl_memory_desc_init_by_tag(&wmd, 4, wd4, wdt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_a);
    dnnl_convolution_desc_t cd;
    dnnl_dims_t strides = {c->sh, c->sw}, pad = {c->ph, c->pw};
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                           dnnl_convolution_direct, src, &wmd, &bmd, dst,
                                           strides, pad, pad) != dnnl_success)
        return -EINVAL;
    dnnl_primitive_attr_t attr;
    struct qattr qa = {cq ? cq->oscale : NULL, c->oc, cq ? cq->sum : 1.f};
    if (make_attr_q(&attr, c, cq ? &qa : NULL))
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

/* Weights go to the layout and type the primitive asked for, once, at
 * load (for s8, the reorder also computes the compensation the kernel
 * needs; bf16 weights are rounded from the fp32 ones here). */
static dnnl_memory_t conv_weights(struct mms_exec *e, const struct mms_node *n,
                                  dnnl_primitive_desc_t pd, const struct conv_q *cq)
{
    const struct mms_conv *c = &n->u.conv;
    dnnl_data_type_t wdt = cq ? dnnl_s8 : dnnl_f32;
    dnnl_memory_desc_t umd;
    if (c->groups > 1)
        dnnl_memory_desc_init_by_tag(
            &umd, 5,
            (dnnl_dims_t){c->groups, c->oc / c->groups, c->ic / c->groups, c->kh, c->kw},
            wdt, dnnl_goihw);
    else
        dnnl_memory_desc_init_by_tag(&umd, 4, (dnnl_dims_t){c->oc, c->ic, c->kh, c->kw},
                                     wdt, dnnl_oihw);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *buf = own_buf(e, dnnl_memory_desc_get_size(wmd));
    dnnl_memory_t user = NULL, w = buf ? own_mem(e, wmd, buf) : NULL;
    if (!w || !(user = own_mem(e, &umd, cq ? (void *)cq->w : (void *)c->w)))
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

static void conv_q_free(struct conv_q *cq)
{
    free(cq->wscale);
    free(cq->oscale);
    free(cq->bias);
    free(cq->w);
}

static int conv_quantise(const struct mms_exec *e, const struct mms_node *n, float s_in,
                         struct conv_q *cq)
{
    const struct mms_conv *c = &n->u.conv;
    size_t per = (size_t)c->ic / c->groups * c->kh * c->kw;
    float s_out = real_scale(e, n->out);
    cq->wscale = malloc(c->oc * sizeof(float));
    cq->oscale = malloc(c->oc * sizeof(float));
    cq->bias = malloc(c->oc * sizeof(float));
    cq->w = malloc((size_t)c->oc * per);
    if (!cq->wscale || !cq->oscale || !cq->bias || !cq->w)
        return -ENOMEM;
    for (int o = 0; o < c->oc; o++) {
        const float *w = c->w + o * per;
        float m = 0;
        for (size_t i = 0; i < per; i++)
            m = fmaxf(m, fabsf(w[i]));
        float sw = m > 0 ? m / 127.f : 1.f;
        for (size_t i = 0; i < per; i++)
            cq->w[o * per + i] = (int8_t)lrintf(fminf(fmaxf(w[i] / sw, -127.f), 127.f));
        cq->wscale[o] = sw;
        cq->oscale[o] = s_in * sw / s_out;
        cq->bias[o] = c->b[o] / (s_in * sw);
    }
    return 0;
}

/* The residual a sum post-op adds must be in the destination, in its type
 * and scale; when the planner put the output on top of it, it already is. */
static int place_residual(struct mms_exec *e, struct mms_graph *g, const char *name, int sum,
                          const dnnl_memory_desc_t *dmd, void *dp, int out, float *sum_scale,
                          struct mms_err *err)
{
    dnnl_memory_desc_t bmd;
    tensor_md(e, g, sum, &bmd);
    void *bp = tensor_ptr(e, g, sum);
    float to_out = real_scale(e, sum) / real_scale(e, out);
    *sum_scale = 1.f;
    if (bp == dp && dnnl_memory_desc_equal(&bmd, dmd)) {
        *sum_scale = to_out;
        return 0;
    }
    return emit_reorder_scaled(e, name, &bmd, bp, dmd, dp, to_out, err);
}

/* A copy of one of a primitive descriptor's memory descriptors. oneDNN
 * may serve the descriptor from its primitive cache, made by another
 * pipeline compiling on another thread; the hand-over is ordered inside
 * libdnnl, where ThreadSanitizer cannot see it, so tests/tsan.supp names
 * this function, which reads nothing but oneDNN's memory. */
static __attribute__((noinline)) dnnl_memory_desc_t pd_md(const_dnnl_primitive_desc_t pd,
                                                          dnnl_query_t what)
{
    return *dnnl_primitive_desc_query_md(pd, what, 0);
}

static int emit_conv(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                     struct mms_err *err)
{
    const char *name = n->name;
    const struct mms_conv *c = &n->u.conv;
    dnnl_memory_desc_t smd, dmd, any_s, any_d;
    dnnl_primitive_desc_t pd = NULL;
    struct conv_q cqs = {0}, *cq = NULL;
    int rc, sum = -1, q = is_q(e, n->out);
    /* A one-channel head on an int8 input runs int8 and writes its fp32
     * logits itself: nothing to convert before it or after it. */
    int qhead = !q && is_q(e, n->in[0]) && c->oc == 1 && !c->npost;
    void *sp, *dp = tensor_ptr(e, g, n->out);
    if ((rc = tensor_as(e, g, name, n->in[0], q || qhead, &smd, &sp, err)))
        return rc;
    tensor_md(e, g, n->out, &dmd);
    if (qhead) /* one channel: nhwc is the same memory as the plain layout */
        dnnl_memory_desc_init_by_tag(&dmd, 4, dmd.dims, dnnl_f32, dnnl_nhwc);
    for (int i = 0; i < c->npost; i++)
        if (c->post[i].kind == MMS_POSTOP_SUM)
            sum = c->post[i].tensor;
    if ((q || qhead) && !e->bf16) {
        cq = &cqs;
        if (conv_quantise(e, n, e->scale[n->in[0]], cq))
            goto fail_oom;
        /* Known before the primitive exists: the sum scale is an attribute. */
        cq->sum = 1.f;
        if (sum >= 0 && tensor_ptr(e, g, sum) == dp)
            cq->sum = real_scale(e, sum) / real_scale(e, n->out);
    }

    int fallback = 0;
    /* int8 never falls back: its planned layouts are the kernels' own. */
    if (conv_pd(e, n, &smd, &dmd, cq, &pd) || (!cq && is_ref(pd))) {
        if (pd)
            dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        const struct mms_tensor_shape *si = mms_graph_shape(g, n->in[0]);
        const struct mms_tensor_shape *so = mms_graph_shape(g, n->out);
        dnnl_data_type_t st = q && !e->bf16 ? dnnl_s8 : smd.data_type;
        dnnl_data_type_t dt = q && !e->bf16 ? dnnl_s8 : dmd.data_type;
        dnnl_memory_desc_init_by_tag(&any_s, 4, (dnnl_dims_t){1, si->c, si->h, si->w}, st,
                                     dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&any_d, 4, (dnnl_dims_t){1, so->c, so->h, so->w}, dt,
                                     dnnl_format_tag_any);
        if (conv_pd(e, n, &any_s, &any_d, cq, &pd)) {
            rc = mms_err_set(err, -EINVAL, "%s: no oneDNN convolution for this shape", name);
            goto fail;
        }
        fallback = 1;
    }
    void *tsrc = sp, *tdst = dp;
    dnnl_memory_desc_t psrc_copy = pd_md(pd, dnnl_query_src_md);
    dnnl_memory_desc_t pdst_copy = pd_md(pd, dnnl_query_dst_md);
    dnnl_memory_t w = conv_weights(e, n, pd, cq);
    if (!w) {
        rc = mms_err_set(err, -ENOMEM, "%s: cannot prepare weights", name);
        goto fail;
    }
    if (fallback && !dnnl_memory_desc_equal(&psrc_copy, &smd)) {
        tsrc = own_buf(e, dnnl_memory_desc_get_size(&psrc_copy));
        if (!tsrc || (rc = emit_reorder(e, name, &smd, sp, &psrc_copy, tsrc, err)))
            goto fail_oom;
    }
    if (fallback && !dnnl_memory_desc_equal(&pdst_copy, &dmd)) {
        tdst = own_buf(e, dnnl_memory_desc_get_size(&pdst_copy));
        if (!tdst)
            goto fail_oom;
    }
    if (sum >= 0) {
        float sum_scale;
        if ((rc = place_residual(e, g, name, sum, &pdst_copy, tdst, n->out, &sum_scale, err)))
            goto fail;
        if (cq && q && sum_scale != cq->sum) {
            rc = mms_err_set(err, -EINVAL, "%s: residual placed unlike planned", name);
            goto fail;
        }
    }
    dnnl_memory_desc_t bias_md;
    dnnl_memory_desc_init_by_tag(&bias_md, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_a);
    dnnl_memory_t ms = own_mem(e, &psrc_copy, tsrc), md = own_mem(e, &pdst_copy, tdst);
    float *bias = own_buf(e, c->oc * sizeof(float));
    if (!bias)
        goto fail_oom;
    memcpy(bias, cq ? cq->bias : c->b, c->oc * sizeof(float));
    dnnl_memory_t mb = own_mem(e, &bias_md, bias);
    if (!ms || !md || !mb)
        goto fail_oom;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, w},
                              {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md}};
    rc = add_prim(e, name, pd, args, 4, err);
    pd = NULL;
    if (rc)
        goto fail;
    conv_q_free(&cqs);
    if (tdst != dp)
        return emit_reorder(e, name, &pdst_copy, tdst, &dmd, dp, err);
    return 0;
fail_oom:
    rc = mms_err_set(err, -ENOMEM, "%s: out of memory", name);
fail:
    conv_q_free(&cqs);
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
    void *sp;
    /* s8 pools keep their input's scale (choose_types) */
    int rc = tensor_as(e, g, n->name, n->in[0], is_q(e, n->out), &smd, &sp, err);
    if (rc)
        return rc;
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
    dnnl_memory_t m[] = {own_mem(e, &smd, sp), tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &pdsc, m, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, err);
}

static int emit_act(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                    struct mms_err *err)
{
    dnnl_memory_desc_t smd, dmd;
    void *sp;
    int rc = tensor_as(e, g, n->name, n->in[0], 0, &smd, &sp, err);
    if (rc)
        return rc;
    tensor_md(e, g, n->out, &dmd);
    if (!dnnl_memory_desc_equal(&smd, &dmd))
        return mms_err_set(err, -EINVAL, "%s: activation across layouts", n->name);
    dnnl_eltwise_desc_t d;
    if (dnnl_eltwise_forward_desc_init(&d, dnnl_forward_inference, dnnl_eltwise_relu, &smd,
                                       n->u.act.alpha, 0.f) != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: eltwise not supported", n->name);
    dnnl_memory_t m[] = {own_mem(e, &smd, sp), tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &d, m, (int[]){DNNL_ARG_SRC, DNNL_ARG_DST}, 2, err);
}

/* Input t of a node as the node's output is laid out: oneDNN's eltwise
 * and binary kernels want one layout throughout (else the reference
 * kernel runs, 100 times slower), and a converted copy comes in the
 * preferred block, not necessarily the output's. */
static int input_like(struct mms_exec *e, struct mms_graph *g, const char *name, int t,
                      const dnnl_memory_desc_t *d, dnnl_memory_desc_t *md, void **p,
                      struct mms_err *err)
{
    int rc = tensor_as(e, g, name, t, d->data_type != dnnl_f32, md, p, err);
    if (rc || dnnl_memory_desc_equal(md, d))
        return rc;
    void *tmp = own_buf(e, dnnl_memory_desc_get_size(d));
    if (!tmp)
        return mms_err_set(err, -ENOMEM, "out of memory");
    if ((rc = emit_reorder(e, name, md, *p, d, tmp, err)))
        return rc;
    *md = *d;
    *p = tmp;
    return 0;
}

static int emit_add(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                    struct mms_err *err)
{
    dnnl_memory_desc_t a, b, d;
    void *ap, *bp;
    tensor_md(e, g, n->out, &d);
    int rc = input_like(e, g, n->name, n->in[0], &d, &a, &ap, err);
    rc = rc ? rc : input_like(e, g, n->name, n->in[1], &d, &b, &bp, err);
    if (rc)
        return rc;
    dnnl_binary_desc_t bd;
    if (dnnl_binary_desc_init(&bd, dnnl_binary_add, &a, &b, &d) != dnnl_success)
        return mms_err_set(err, -EINVAL, "%s: binary add not supported", n->name);
    dnnl_memory_t m[] = {own_mem(e, &a, ap), own_mem(e, &b, bp), tensor_mem(e, g, n->out)};
    return emit_simple(e, n->name, &bd, m,
                       (int[]){DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST}, 3, err);
}

/* Copies t into place at tensor `dst` unless it already lives there. */
static int emit_copy_into(struct mms_exec *e, struct mms_graph *g, const char *name, int t,
                          int dst, struct mms_err *err)
{
    dnnl_memory_desc_t smd, dmd;
    void *sp;
    int rc = tensor_as(e, g, name, t, is_q(e, dst), &smd, &sp, err);
    if (rc)
        return rc;
    tensor_md(e, g, dst, &dmd);
    if (sp == tensor_ptr(e, g, dst) && dnnl_memory_desc_equal(&smd, &dmd))
        return 0;
    return emit_reorder(e, name, &smd, sp, &dmd, tensor_ptr(e, g, dst), err);
}

/* Channels [off, off + c) of an h x w tensor with `total` channels, in the
 * layout of `ref` (channel-outer: a contiguous run; nhwc: strided). */
static void slice_md(const struct mms_exec *e, int ref, int total, int c, int h, int w,
                     dnnl_memory_desc_t *md)
{
    if (is_q(e, ref))
        dnnl_memory_desc_init_by_strides(md, 4, (dnnl_dims_t){1, c, h, w}, q_type(e, ref),
                                         (dnnl_dims_t){(dnnl_dim_t)h * w * total, 1,
                                                       (dnnl_dim_t)w * total, total});
    else
        dnnl_memory_desc_init_by_tag(md, 4, (dnnl_dims_t){1, c, h, w}, dnnl_f32,
                                     block_tag(e->pl[ref].block));
}

/* Where channel `off` of tensor t starts. */
static void *channel_ptr(const struct mms_exec *e, struct mms_graph *g, int t, int off)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    if (is_q(e, t))
        return (char *)tensor_ptr(e, g, t) + off * mms_lowp_size(e->q[t]);
    return tensor_ptr(e, g, t) + (size_t)off * s->h * s->w;
}

static int emit_concat(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                       struct mms_err *err)
{
    int off = 0, total = mms_graph_shape(g, n->out)->c;
    for (int j = 0; j < n->nin; j++) {
        int t = n->in[j];
        const struct mms_tensor_shape *s = mms_graph_shape(g, t);
        if (e->pl[t].parent != n->out || e->pl[t].off != off) {
            /* The slice of the output this input fills, scaled from the
             * input's scale to the output's. */
            dnnl_memory_desc_t smd, dmd;
            tensor_md(e, g, t, &smd);
            slice_md(e, n->out, total, s->c, s->h, s->w, &dmd);
            int rc = emit_reorder_scaled(e, n->name, &smd, tensor_ptr(e, g, t), &dmd,
                                         channel_ptr(e, g, n->out, off),
                                         real_scale(e, t) / real_scale(e, n->out), err);
            if (rc)
                return rc;
        }
        off += s->c;
    }
    return 0;
}

/* A piece of an nhwc split is a copy: its channel ranges are strided. */
static int emit_slice_q(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                        struct mms_err *err)
{
    const struct mms_tensor_shape *s = mms_graph_shape(g, n->out);
    int total = mms_graph_shape(g, n->in[0])->c;
    dnnl_memory_desc_t smd, dmd;
    void *sp;
    int rc = tensor_as(e, g, n->name, n->in[0], 1, &smd, &sp, err);
    if (rc)
        return rc;
    dnnl_memory_desc_init_by_strides(&smd, 4, (dnnl_dims_t){1, s->c, s->h, s->w},
                                     smd.data_type,
                                     (dnnl_dims_t){(dnnl_dim_t)s->h * s->w * total, 1,
                                                   (dnnl_dim_t)s->w * total, total});
    tensor_md(e, g, n->out, &dmd);
    return emit_reorder_scaled(e, n->name, &smd,
                               (char *)sp + n->u.slice.off * type_size(smd.data_type), &dmd,
                               tensor_ptr(e, g, n->out), e->scale[n->in[0]] / e->scale[n->out],
                               err);
}

static int emit_upsample(struct mms_exec *e, struct mms_graph *g, const struct mms_node *n,
                         struct mms_err *err)
{
    int src = n->in[0], q = is_q(e, n->out);
    const struct mms_tensor_shape *si = mms_graph_shape(g, src);
    int block = q ? si->c : e->pl[n->out].block;
    dnnl_memory_desc_t smd, tmd;
    void *sp;
    int rc = tensor_as(e, g, n->name, src, q, &smd, &sp, err);
    if (rc)
        return rc;
    if (q)
        tmd = smd;
    else
        dnnl_memory_desc_init_by_tag(&tmd, 4, (dnnl_dims_t){1, si->c, si->h, si->w}, dnnl_f32,
                                     block_tag(block));
    if (!dnnl_memory_desc_equal(&smd, &tmd)) {
        /* The kernel works in one layout: bring the input to the output's. */
        float *tmp = own_buf(e, dnnl_memory_desc_get_size(&tmd));
        rc = tmp ? emit_reorder(e, n->name, &smd, sp, &tmd, tmp, err)
                 : mms_err_set(err, -ENOMEM, "out of memory");
        if (rc)
            return rc;
        sp = tmp;
    }
    static const struct {
        enum step_kind kind;
        const char *impl;
    } kernels[] = {
        [dnnl_f32] = {STEP_UPSAMPLE, "mms:upsample2_align_corners"},
        [dnnl_s8] = {STEP_UPSAMPLE_S8, "mms:upsample2_align_corners_s8"},
        [dnnl_u8] = {STEP_UPSAMPLE_U8, "mms:upsample2_align_corners_u8"},
        [dnnl_bf16] = {STEP_UPSAMPLE_BF16, "mms:upsample2_align_corners_bf16"},
    };
    dnnl_data_type_t dt = q ? smd.data_type : dnnl_f32;
    struct step *s = new_step(e, kernels[dt].kind, n->name);
    if (!s)
        return mms_err_set(err, -ENOMEM, "out of memory");
    s->impl = kernels[dt].impl;
    s->src = sp;
    s->dst = tensor_ptr(e, g, n->out);
    /* in place in a concatenation (core/plan.c), pixels lie its width apart */
    s->ostride = mms_graph_shape(g, e->pl[n->out].root)->c;
    /* nhwc is the blocked layout with one block of all channels */
    s->block = block;
    s->cblocks = q ? 1 : (si->c + block - 1) / block;
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
        return is_q(e, n->out) ? emit_slice_q(e, g, n, err) : 0;
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

/* A convolution whose output cannot be negative, or hardly: a ReLU, or a
 * leaky ReLU so gentle that its negative side lies within a step or two
 * of zero, ends it and no residual is added (the residual is added before
 * the activation and can be negative). Such outputs are u8. */
static int conv_nonnegative(const struct mms_conv *c)
{
    if (!c->npost)
        return 0;
    for (int i = 0; i < c->npost; i++)
        if (c->post[i].kind == MMS_POSTOP_SUM)
            return 0;
    const struct mms_postop *last = &c->post[c->npost - 1];
    return last->kind == MMS_POSTOP_ACT &&
           (last->act == MMS_ACT_RELU || (last->act == MMS_ACT_LEAKY && last->alpha <= 0.05f));
}

/* Which tensors are int8 in int8 mode: the outputs of convolutions, except
 * the first (it reads the image) and the heads (fewer than 8 channels:
 * the logits, fp32, though a one-channel head on an int8 input computes
 * in int8, emit_conv), and what pooling, upsampling, splitting and
 * concatenation make of int8 tensors alone. Activations and adds stand alone only where
 * fusion failed; they stay f32. A pass-through op keeps its input's type
 * and scale; every other tensor's scale is its calibrated range / 127
 * (s8) or / 255 (u8). */
/* Operations whose output has their input's type (and int8 scale). */
static int keeps_type(const struct mms_node *n)
{
    return n->op == MMS_OP_POOL || n->op == MMS_OP_UPSAMPLE || n->op == MMS_OP_COPY ||
           n->op == MMS_OP_SLICE;
}

static int alloc_types(struct mms_exec *e)
{
    int nt = e->ntensors;
    e->q = calloc(nt, 1);
    e->scale = calloc(nt, sizeof(float));
    e->cvt = calloc(nt, sizeof(void *));
    e->cvt_md = calloc(nt, sizeof(dnnl_memory_desc_t));
    return e->q && e->scale && e->cvt && e->cvt_md ? 0 : -ENOMEM;
}

static int choose_types(struct mms_exec *e, struct mms_graph *g, const float *absmax)
{
    int nt = e->ntensors;
    if (alloc_types(e))
        return -ENOMEM;
    for (int t = 0; t < nt; t++)
        e->scale[t] = absmax[t] > 0 && isfinite(absmax[t]) ? absmax[t] / 127.f : 1.f;
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        int o = n->out, q = 0;
        if (n->dead || o == e->out_t)
            continue;
        if (keeps_type(n)) {
            e->q[o] = e->q[n->in[0]];
            if (e->q[o])
                e->scale[o] = e->scale[n->in[0]];
            continue;
        }
        switch (n->op) {
        case MMS_OP_CONV:
            if (n->in[0] != e->in_t && n->u.conv.oc >= 8 && absmax[o] > 0)
                q = conv_nonnegative(&n->u.conv) ? Q_U8 : Q_S8;
            break;
        case MMS_OP_CONCAT:
            q = absmax[o] > 0 ? Q_U8 : Q_F32;
            for (int j = 0; j < n->nin && q; j++)
                q = !e->q[n->in[j]] ? Q_F32 : e->q[n->in[j]] == Q_S8 ? Q_S8 : q;
            break;
        default:
            break;
        }
        e->q[o] = (unsigned char)q;
        if (q == Q_U8)
            e->scale[o] = absmax[o] / 255.f;
    }
    return 0;
}

/* bf16: every convolution's output but the heads', and what pooling,
 * upsampling, splitting and concatenation make of bf16 tensors alone. The
 * first convolution reads the fp32 image converted once (3 channels). */
static int choose_types_bf16(struct mms_exec *e, struct mms_graph *g)
{
    if (alloc_types(e))
        return -ENOMEM;
    e->bf16 = 1;
    for (int t = 0; t < e->ntensors; t++)
        e->scale[t] = 1.f;
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        int o = n->out, q = Q_F32;
        if (n->dead || o == e->out_t)
            continue;
        if (keeps_type(n)) {
            q = e->q[n->in[0]];
        } else if (n->op == MMS_OP_CONV) { /* a head (under 8 channels) writes fp32 logits */
            q = n->u.conv.oc >= 8 ? Q_BF16 : Q_F32;
        } else if (n->op == MMS_OP_CONCAT || n->op == MMS_OP_ADD) {
            /* Res2Net's hierarchical sums too: bf16 binary kernels */
            q = Q_BF16;
            for (int j = 0; j < n->nin; j++)
                q = e->q[n->in[j]] == Q_BF16 ? q : Q_F32;
        }
        e->q[o] = (unsigned char)q;
    }
    return 0;
}

/* The planner put some int8 upsamplings in place in a concatenation
 * (core/plan.c): the convolution before each, the upsampling and the
 * concatenation take one scale, the widest of theirs, so that nothing
 * saturates. The concatenation's other inputs were rescaled into it anyway,
 * and the convolution now rounds once where the copy into the slice rounded
 * a second time. Pass-through tensors then take their inputs' scales again. */
static void share_concat_scales(struct mms_exec *e, struct mms_graph *g)
{
    for (int pass = 0; pass < 2; pass++)
        for (int t = 0; t < e->ntensors; t++) {
            int cat = e->pl[t].parent;
            if (!is_q(e, t) || cat < 0 || !is_q(e, cat) ||
                mms_graph_node(g, mms_graph_shape(g, t)->producer)->op != MMS_OP_UPSAMPLE)
                continue;
            int c = mms_graph_node(g, mms_graph_shape(g, t)->producer)->in[0];
            if (pass == 0)
                e->scale[cat] = fmaxf(e->scale[cat], e->scale[c]);
            else
                e->scale[c] = e->scale[t] = e->scale[cat];
        }
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        if (!n->dead && is_q(e, n->out) && keeps_type(n))
            e->scale[n->out] = e->scale[n->in[0]];
    }
}

/* Where tensor t's own channels lie in its root buffer (channel-outer
 * layouts hold them as one run), padding channels of a blocked layout
 * included (zeros): what calibration reads. */
static void observe_region(struct mms_exec *e, struct mms_graph *g, int t)
{
    const struct mms_place *p = &e->pl[t];
    const struct mms_tensor_shape *s = mms_graph_shape(g, t);
    e->obs_ptr[t] = NULL;
    e->obs_n[t] = 0;
    if (e->pl[p->root].last < 0 || !e->pl[p->root].base || !p->block)
        return;
    size_t c = ((size_t)s->c + p->block - 1) / p->block * p->block;
    e->obs_ptr[t] = tensor_ptr(e, g, t);
    e->obs_n[t] = c * s->h * s->w;
}

/* "All cores": what OpenMP gives a new thread (OMP_NUM_THREADS, else the
 * CPUs this process may run on), not the calling thread's count, which an
 * engine of one thread opened on it before (mmsd's pool threads make
 * pipelines one after another) would have left at 1. */
static int all_cores(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    char *end;
    long n = env ? strtol(env, &end, 10) : 0;
    if (env && end != env && n > 0 && n <= 4096)
        return (int)n;
    n = omp_get_num_procs();
    return n > 0 ? (int)n : 1;
}

int mms_exec_create(struct mms_graph *g, int in, int out, const struct mms_exec_opts *o,
                    struct mms_exec **pe, struct mms_err *err)
{
    const char *name = "exec";
    int rc;
    struct mms_exec *e = calloc(1, sizeof(*e));
    if (!e)
        return mms_err_set(err, -ENOMEM, "out of memory");
    e->threads = o && o->threads > 0 ? o->threads : all_cores();
    omp_set_num_threads(e->threads);
    DNNL_TRY(dnnl_engine_create(&e->engine, dnnl_cpu, 0), "engine creation");
    DNNL_TRY(dnnl_stream_create(&e->stream, e->engine, dnnl_stream_default_flags),
             "stream creation");
    e->ntensors = mms_graph_ntensors(g);
    e->pref_block = preferred_block(e);
    e->in_t = in;
    e->out_t = out;
    if (o && o->absmax) {
        if (o->nabsmax != e->ntensors) {
            rc = mms_err_set(err, -EINVAL,
                             "int8 calibration covers %d tensors, the network has %d "
                             "(calibrated for another network?)",
                             o->nabsmax, e->ntensors);
            goto fail;
        }
        if ((rc = choose_types(e, g, o->absmax))) {
            mms_err_set(err, rc, "out of memory");
            goto fail;
        }
    } else if (o && o->bf16 && (rc = choose_types_bf16(e, g))) {
        mms_err_set(err, rc, "out of memory");
        goto fail;
    }
    e->mark_step = malloc(sizeof(int) * (mms_graph_nnodes(g) + 1));
    e->mark_tensor = malloc(sizeof(int) * (mms_graph_nnodes(g) + 1));
    e->obs_ptr = calloc(e->ntensors, sizeof(*e->obs_ptr));
    e->obs_n = calloc(e->ntensors, sizeof(*e->obs_n));
    if (!e->mark_step || !e->mark_tensor || !e->obs_ptr || !e->obs_n ||
        (rc = mms_plan_build(g, in, out, e->pref_block, e->q, &e->pl, &e->arena_bytes)) ||
        (rc = alloc_buffers(e))) {
        mms_err_set(err, rc ? rc : -ENOMEM, "out of memory planning buffers");
        goto fail;
    }
    if (e->q && !e->bf16)
        share_concat_scales(e, g);
    for (int t = 0; t < e->ntensors; t++)
        observe_region(e, g, t);
    for (int i = 0; i < mms_graph_nnodes(g); i++) {
        const struct mms_node *n = mms_graph_node(g, i);
        int first = e->nsteps;
        if (n->dead)
            continue;
        if ((rc = emit_node(e, g, n, err)))
            goto fail;
        describe_steps(e, g, n, first);
        e->mark_step[e->nmarks] = e->nsteps;
        e->mark_tensor[e->nmarks++] = n->out;
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
    free(e->q);
    free(e->scale);
    free(e->cvt);
    free(e->cvt_md);
    free(e->mark_step);
    free(e->mark_tensor);
    free(e->obs_ptr);
    free(e->obs_n);
    free(e);
}

float *mms_exec_input(struct mms_exec *e) { return e->in; }
const float *mms_exec_output(const struct mms_exec *e) { return e->out; }
int mms_exec_steps(const struct mms_exec *e) { return e->nsteps; }
int mms_exec_tensors(const struct mms_exec *e) { return e->ntensors; }
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
        } else if (s->kind == STEP_UPSAMPLE_S8) {
            mms_kernel_upsample2_s8(s->src, s->dst, s->block, s->h, s->w, s->ostride);
        } else if (s->kind == STEP_UPSAMPLE_U8) {
            mms_kernel_upsample2_u8(s->src, s->dst, s->block, s->h, s->w, s->ostride);
        } else if (s->kind == STEP_UPSAMPLE_BF16) {
            mms_kernel_upsample2_bf16(s->src, s->dst, s->block, s->h, s->w, s->ostride);
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

static void observe(const struct mms_exec *e, int t, mms_exec_observer fn, void *ctx)
{
    if (e->obs_ptr[t])
        fn(ctx, t, e->obs_ptr[t], e->obs_n[t]);
}

int mms_exec_run_observed(struct mms_exec *e, mms_exec_observer fn, void *ctx,
                          struct mms_err *err)
{
    if (e->q)
        return mms_err_set(err, -EINVAL, "an int8 network cannot be observed");
    if (omp_get_max_threads() != e->threads)
        omp_set_num_threads(e->threads);
    observe(e, e->in_t, fn, ctx);
    int m = 0;
    for (int i = 0; i <= e->nsteps; i++) {
        dnnl_stream_wait(e->stream);
        for (; m < e->nmarks && e->mark_step[m] == i; m++)
            observe(e, e->mark_tensor[m], fn, ctx);
        if (i == e->nsteps)
            break;
        struct step *s = &e->steps[i];
        if (s->kind == STEP_UPSAMPLE) {
            mms_kernel_upsample2(s->src, s->dst, s->cblocks, s->block, s->h, s->w);
        } else {
            dnnl_status_t st = dnnl_primitive_execute(s->prim, e->stream, s->nargs, s->args);
            if (st != dnnl_success)
                return mms_err_set(err, -EIO, "%s: oneDNN execution failed (status %d)",
                                   s->name, (int)st);
        }
    }
    return 0;
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
