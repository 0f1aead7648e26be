#include "core/graph.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mms_graph {
    const struct mms_model *model;
    struct mms_node *nodes;
    int nnodes, cap_nodes;
    struct mms_tensor_shape *shapes;
    int ntensors, cap_tensors;
    char name[160];
    int err;
    char errmsg[sizeof(((struct mms_err *)0)->msg)];
};

struct mms_graph *mms_graph_new(const struct mms_model *m)
{
    struct mms_graph *g = calloc(1, sizeof(*g));
    if (g)
        g->model = m;
    return g;
}

static void node_free(struct mms_node *n)
{
    free(n->in);
    free((char *)n->name);
    if (n->op == MMS_OP_CONV) {
        free(n->u.conv.w);
        free(n->u.conv.b);
    } else if (n->op == MMS_OP_BN) {
        free(n->u.bn.scale);
        free(n->u.bn.shift);
    }
}

void mms_graph_free(struct mms_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nnodes; i++)
        node_free(&g->nodes[i]);
    free(g->nodes);
    free(g->shapes);
    free(g);
}

int mms_graph_fail(struct mms_graph *g, int code, const char *fmt, ...)
{
    if (g->err)
        return g->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->errmsg, sizeof(g->errmsg), fmt, ap);
    va_end(ap);
    g->err = code;
    return code;
}

int mms_graph_error(const struct mms_graph *g, struct mms_err *err)
{
    if (g->err && err)
        snprintf(err->msg, sizeof(err->msg), "%s", g->errmsg);
    return g->err;
}

void mms_graph_name(struct mms_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->name, sizeof(g->name), fmt, ap);
    va_end(ap);
}

int mms_graph_nnodes(const struct mms_graph *g) { return g->nnodes; }
struct mms_node *mms_graph_node(struct mms_graph *g, int i) { return &g->nodes[i]; }
int mms_graph_ntensors(const struct mms_graph *g) { return g->ntensors; }

const struct mms_tensor_shape *mms_graph_shape(const struct mms_graph *g, int t)
{
    return &g->shapes[t];
}

int mms_graph_uses(const struct mms_graph *g, int t)
{
    int uses = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const struct mms_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int j = 0; j < n->nin; j++)
            uses += n->in[j] == t;
        if (n->op == MMS_OP_CONV)
            for (int j = 0; j < n->u.conv.npost; j++)
                uses += n->u.conv.post[j].kind == MMS_POSTOP_SUM && n->u.conv.post[j].tensor == t;
    }
    return uses;
}

static int valid_tensor(struct mms_graph *g, int t)
{
    if (g->err)
        return 0;
    if (t < 0 || t >= g->ntensors) {
        mms_graph_fail(g, -EINVAL, "%s: invalid input tensor", g->name);
        return 0;
    }
    return 1;
}

/* Appends a node writing a new tensor of shape c x h x w; the inputs are
 * copied. Returns the node or NULL (graph failed). */
static struct mms_node *add_node(struct mms_graph *g, enum mms_op op,
                                 const int *in, int nin, int c, int h, int w)
{
    if (g->err)
        return NULL;
    if (c <= 0 || h <= 0 || w <= 0) {
        mms_graph_fail(g, -EINVAL, "%s: empty output (%dx%dx%d): input too small",
                       g->name, c, h, w);
        return NULL;
    }
    if (g->nnodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        void *p = realloc(g->nodes, cap * sizeof(*g->nodes));
        if (!p)
            goto oom;
        g->nodes = p;
        g->cap_nodes = cap;
    }
    if (g->ntensors == g->cap_tensors) {
        int cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
        void *p = realloc(g->shapes, cap * sizeof(*g->shapes));
        if (!p)
            goto oom;
        g->shapes = p;
        g->cap_tensors = cap;
    }
    struct mms_node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->name = strdup(g->name);
    n->in = nin ? malloc(nin * sizeof(int)) : NULL;
    if (!n->name || (nin && !n->in)) {
        node_free(n);
        goto oom;
    }
    if (nin)
        memcpy(n->in, in, nin * sizeof(int));
    n->nin = nin;
    n->out = g->ntensors;
    g->shapes[g->ntensors++] = (struct mms_tensor_shape){c, h, w, g->nnodes};
    g->nnodes++;
    return n;
oom:
    mms_graph_fail(g, -ENOMEM, "out of memory building the graph");
    return NULL;
}

int mms_graph_input(struct mms_graph *g, int c, int h, int w)
{
    struct mms_node *n = add_node(g, MMS_OP_INPUT, NULL, 0, c, h, w);
    return n ? n->out : -1;
}

/* Looks up an F32 tensor of exactly the expected shape. */
static const float *weights(struct mms_graph *g, const char *name,
                            const int64_t *shape, int ndim)
{
    if (g->err)
        return NULL;
    const struct mms_tensor *t = mms_model_find(g->model, name);
    if (!t) {
        mms_graph_fail(g, -ENOENT, "missing tensor '%s'", name);
        return NULL;
    }
    if (t->dtype != MMS_DTYPE_F32) {
        mms_graph_fail(g, -EINVAL, "tensor '%s' has dtype %s, expected F32", name,
                       t->dtype_name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char got[96] = "", want[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld",
                     i ? "," : "", (long long)shape[i]);
        mms_graph_fail(g, -EINVAL, "tensor '%s' has shape [%s], expected [%s]", name, got,
                       want);
        return NULL;
    }
    const float *d = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (!isfinite(d[i])) {
            mms_graph_fail(g, -EINVAL, "tensor '%s' holds a NaN or infinite value", name);
            return NULL;
        }
    }
    return d;
}

static float *dup_floats(struct mms_graph *g, const float *src, size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        mms_graph_fail(g, -ENOMEM, "out of memory copying weights");
        return NULL;
    }
    if (src)
        memcpy(p, src, n * sizeof(float));
    else
        memset(p, 0, n * sizeof(float));
    return p;
}

static int conv_out(int in, int k, int s, int p)
{
    return (in + 2 * p - k) / s + 1;
}

int mms_graph_conv(struct mms_graph *g, int x, const char *name, int oc, int k,
                   int stride, int pad, int has_bias)
{
    if (!valid_tensor(g, x))
        return -1;
    const struct mms_tensor_shape s = g->shapes[x];
    char key[256];
    snprintf(key, sizeof(key), "%s.weight", name);
    const float *w = weights(g, key, (int64_t[]){oc, s.c, k, k}, 4);
    const float *b = NULL;
    if (has_bias) {
        snprintf(key, sizeof(key), "%s.bias", name);
        b = weights(g, key, (int64_t[]){oc}, 1);
    }
    if (!w || (has_bias && !b))
        return -1;
    mms_graph_name(g, "%s", name);
    struct mms_node *n = add_node(g, MMS_OP_CONV, &x, 1, oc, conv_out(s.h, k, stride, pad),
                                  conv_out(s.w, k, stride, pad));
    if (!n)
        return -1;
    struct mms_conv *c = &n->u.conv;
    *c = (struct mms_conv){.oc = oc, .ic = s.c, .kh = k, .kw = k, .sh = stride,
                           .sw = stride, .ph = pad, .pw = pad, .groups = 1,
                           .has_bias = has_bias};
    c->w = dup_floats(g, w, (size_t)oc * s.c * k * k);
    c->b = dup_floats(g, b, oc);
    return g->err ? -1 : n->out;
}

int mms_graph_bn(struct mms_graph *g, int x, const char *name)
{
    if (!valid_tensor(g, x))
        return -1;
    int64_t c = g->shapes[x].c;
    const float *p[4];
    static const char *const part[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        char key[256];
        snprintf(key, sizeof(key), "%s.%s", name, part[i]);
        p[i] = weights(g, key, &c, 1);
    }
    if (g->err)
        return -1;
    for (int i = 0; i < c; i++)
        if (p[3][i] < 0)
            return mms_graph_fail(g, -EINVAL, "tensor '%s.running_var' is negative", name),
                   -1;
    mms_graph_name(g, "%s", name);
    const struct mms_tensor_shape s = g->shapes[x];
    struct mms_node *n = add_node(g, MMS_OP_BN, &x, 1, s.c, s.h, s.w);
    if (!n)
        return -1;
    n->u.bn.scale = dup_floats(g, NULL, c);
    n->u.bn.shift = dup_floats(g, NULL, c);
    if (g->err)
        return -1;
    for (int i = 0; i < c; i++) {
        /* PyTorch's BatchNorm2d default eps; folded in double to keep the
         * folded weights as close as possible to the unfused arithmetic. */
        double sc = p[0][i] / sqrt((double)p[3][i] + 1e-5);
        n->u.bn.scale[i] = (float)sc;
        n->u.bn.shift[i] = (float)(p[1][i] - p[2][i] * sc);
    }
    return n->out;
}

int mms_graph_act(struct mms_graph *g, int x, enum mms_act act, float alpha)
{
    if (!valid_tensor(g, x))
        return -1;
    const struct mms_tensor_shape s = g->shapes[x];
    struct mms_node *n = add_node(g, MMS_OP_ACT, &x, 1, s.c, s.h, s.w);
    if (!n)
        return -1;
    n->u.act.act = act;
    n->u.act.alpha = act == MMS_ACT_LEAKY ? alpha : 0.f;
    return n->out;
}

/* PyTorch's pooling output size, ceil_mode included: the last window must
 * start inside the input or the left padding. */
static int pool_out(int in, int k, int s, int p, int ceil_mode)
{
    int num = in + 2 * p - k;
    int o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

int mms_graph_pool(struct mms_graph *g, int x, enum mms_pool kind, int k, int s,
                   int p, int ceil_mode, int count_include_pad)
{
    if (!valid_tensor(g, x))
        return -1;
    if (k < 1 || s < 1 || p < 0 || 2 * p > k)
        return mms_graph_fail(g, -EINVAL, "%s: bad pooling k=%d s=%d p=%d", g->name, k, s, p),
               -1;
    const struct mms_tensor_shape sh = g->shapes[x];
    struct mms_node *n = add_node(g, MMS_OP_POOL, &x, 1, sh.c,
                                  pool_out(sh.h, k, s, p, ceil_mode),
                                  pool_out(sh.w, k, s, p, ceil_mode));
    if (!n)
        return -1;
    n->u.pool = (struct mms_poolp){kind, k, s, p, ceil_mode, count_include_pad};
    return n->out;
}

int mms_graph_upsample2(struct mms_graph *g, int x)
{
    if (!valid_tensor(g, x))
        return -1;
    const struct mms_tensor_shape s = g->shapes[x];
    struct mms_node *n = add_node(g, MMS_OP_UPSAMPLE, &x, 1, s.c, 2 * s.h, 2 * s.w);
    return n ? n->out : -1;
}

int mms_graph_concat(struct mms_graph *g, const int *xs, int nx)
{
    int c = 0;
    for (int i = 0; i < nx; i++) {
        if (!valid_tensor(g, xs[i]))
            return -1;
        const struct mms_tensor_shape *s = &g->shapes[xs[i]];
        if (s->h != g->shapes[xs[0]].h || s->w != g->shapes[xs[0]].w)
            return mms_graph_fail(g, -EINVAL,
                                  "%s: cannot concatenate %dx%d with %dx%d (input size must be a "
                                  "multiple of the network's stride)",
                                  g->name, s->h, s->w, g->shapes[xs[0]].h,
                                  g->shapes[xs[0]].w),
                   -1;
        c += s->c;
    }
    if (nx < 1)
        return mms_graph_fail(g, -EINVAL, "%s: empty concat", g->name), -1;
    const struct mms_tensor_shape s = g->shapes[xs[0]];
    struct mms_node *n = add_node(g, MMS_OP_CONCAT, xs, nx, c, s.h, s.w);
    return n ? n->out : -1;
}

int mms_graph_add(struct mms_graph *g, int a, int b)
{
    if (!valid_tensor(g, a) || !valid_tensor(g, b))
        return -1;
    const struct mms_tensor_shape sa = g->shapes[a], sb = g->shapes[b];
    if (sa.c != sb.c || sa.h != sb.h || sa.w != sb.w)
        return mms_graph_fail(g, -EINVAL, "%s: adding %dx%dx%d to %dx%dx%d", g->name, sa.c,
                              sa.h, sa.w, sb.c, sb.h, sb.w),
               -1;
    struct mms_node *n = add_node(g, MMS_OP_ADD, (int[]){a, b}, 2, sa.c, sa.h, sa.w);
    return n ? n->out : -1;
}

int mms_graph_slice(struct mms_graph *g, int x, int off, int c)
{
    if (!valid_tensor(g, x))
        return -1;
    const struct mms_tensor_shape s = g->shapes[x];
    if (off < 0 || c < 1 || off + c > s.c)
        return mms_graph_fail(g, -EINVAL, "%s: channels [%d,%d) outside 0..%d", g->name, off,
                              off + c, s.c),
               -1;
    struct mms_node *n = add_node(g, MMS_OP_SLICE, &x, 1, c, s.h, s.w);
    if (!n)
        return -1;
    n->u.slice.off = off;
    return n->out;
}

int mms_graph_copy(struct mms_graph *g, int x)
{
    if (!valid_tensor(g, x))
        return -1;
    const struct mms_tensor_shape s = g->shapes[x];
    struct mms_node *n = add_node(g, MMS_OP_COPY, &x, 1, s.c, s.h, s.w);
    return n ? n->out : -1;
}

void mms_graph_cost(const struct mms_graph *g, int64_t *params, int64_t *macs)
{
    int64_t p = 0, m = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const struct mms_node *n = &g->nodes[i];
        if (n->op == MMS_OP_CONV) {
            const struct mms_conv *c = &n->u.conv;
            int64_t per_out = (int64_t)c->ic / c->groups * c->kh * c->kw;
            const struct mms_tensor_shape *s = &g->shapes[n->out];
            p += c->oc * per_out + (c->has_bias ? c->oc : 0);
            m += (int64_t)s->c * s->h * s->w * per_out;
        } else if (n->op == MMS_OP_BN) {
            p += 2 * (int64_t)g->shapes[n->out].c;
        }
    }
    *params = p;
    *macs = m;
}
