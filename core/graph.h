#ifndef MMS_GRAPH_H
#define MMS_GRAPH_H

/*
 * A small network IR: tensors of shape C x H x W (batch 1, float32) and
 * nodes in execution order, each writing one tensor. Architectures
 * (core/arch) build it from a model file; graph_fuse rewrites it
 * (batch-norm folding, post-ops); exec compiles it into oneDNN primitives.
 *
 * Builder calls are sticky on error: after the first failure every call
 * returns -1 and mms_graph_error() reports the first problem, so an
 * architecture reads as straight-line code with one check at the end.
 */

#include <stdint.h>

#include "core/error.h"
#include "core/model.h"

enum mms_op {
    MMS_OP_INPUT,
    MMS_OP_CONV,     /* weights OIHW, optional bias, fused post-ops */
    MMS_OP_BN,       /* inference batch-norm as per-channel scale + shift */
    MMS_OP_ACT,      /* relu / leaky relu */
    MMS_OP_POOL,     /* max / avg, PyTorch size and padding semantics */
    MMS_OP_UPSAMPLE, /* bilinear x2, align_corners=True */
    MMS_OP_CONCAT,   /* along channels */
    MMS_OP_ADD,      /* elementwise, same shape */
    MMS_OP_SLICE,    /* channels [off, off + C) of the input: one piece of a split */
    MMS_OP_COPY,     /* identity; exec inserts it where a view cannot alias */
};

enum mms_act { MMS_ACT_NONE, MMS_ACT_RELU, MMS_ACT_LEAKY };
enum mms_pool { MMS_POOL_MAX, MMS_POOL_AVG };

#define MMS_MAX_POSTOPS 3

enum mms_postop_kind { MMS_POSTOP_ACT, MMS_POSTOP_SUM };

struct mms_postop {
    enum mms_postop_kind kind;
    enum mms_act act; /* MMS_POSTOP_ACT */
    float alpha;      /* leaky slope */
    int tensor;       /* MMS_POSTOP_SUM: the tensor added to the conv output */
};

struct mms_conv {
    int oc, ic, kh, kw, sh, sw, ph, pw, groups;
    int has_bias; /* in the file (else b holds zeros) */
    float *w; /* owned, oc * ic/groups * kh * kw */
    float *b; /* owned, oc (zeros when the file has none) */
    int npost;
    struct mms_postop post[MMS_MAX_POSTOPS];
};

struct mms_bn {
    float *scale, *shift; /* owned: gamma / sqrt(var + eps), beta - mean * scale */
};

struct mms_poolp {
    enum mms_pool kind;
    int k, s, p, ceil_mode, count_include_pad;
};

struct mms_node {
    enum mms_op op;
    int out;      /* tensor id */
    int nin;
    int *in;      /* owned array of tensor ids */
    const char *name; /* owned; the PyTorch module path, for messages */
    int dead;     /* removed by a rewrite */
    union {
        struct mms_conv conv;
        struct mms_bn bn;
        struct { enum mms_act act; float alpha; } act;
        struct mms_poolp pool;
        struct { int off; } slice;
    } u;
};

struct mms_tensor_shape {
    int c, h, w;
    int producer; /* node index */
};

struct mms_graph;

struct mms_graph *mms_graph_new(const struct mms_model *m);
void mms_graph_free(struct mms_graph *g);

/* First builder error, or 0; the message goes to err. */
int mms_graph_error(const struct mms_graph *g, struct mms_err *err);
/* Reports a builder-level failure (a bad architecture parameter). */
int mms_graph_fail(struct mms_graph *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int mms_graph_input(struct mms_graph *g, int c, int h, int w);
/* Weights "<name>.weight" [oc, ic/groups, k, k], bias "<name>.bias" if has_bias. */
int mms_graph_conv(struct mms_graph *g, int x, const char *name, int oc, int k,
                   int stride, int pad, int has_bias);
/* "<name>.weight/.bias/.running_mean/.running_var", eps 1e-5. */
int mms_graph_bn(struct mms_graph *g, int x, const char *name);
int mms_graph_act(struct mms_graph *g, int x, enum mms_act act, float alpha);
int mms_graph_pool(struct mms_graph *g, int x, enum mms_pool kind, int k, int s,
                   int p, int ceil_mode, int count_include_pad);
int mms_graph_upsample2(struct mms_graph *g, int x);
int mms_graph_concat(struct mms_graph *g, const int *xs, int n);
int mms_graph_add(struct mms_graph *g, int a, int b);
int mms_graph_slice(struct mms_graph *g, int x, int off, int c);
int mms_graph_copy(struct mms_graph *g, int x);

/* printf-style node names: the builder sets the name used by later calls. */
void mms_graph_name(struct mms_graph *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int mms_graph_nnodes(const struct mms_graph *g);
struct mms_node *mms_graph_node(struct mms_graph *g, int i);
int mms_graph_ntensors(const struct mms_graph *g);
const struct mms_tensor_shape *mms_graph_shape(const struct mms_graph *g, int t);
/* Number of live nodes reading tensor t. */
int mms_graph_uses(const struct mms_graph *g, int t);

/* Cost of the graph as built (before fusion): learnable parameters as
 * PyTorch counts them (conv weights and biases, BN weight and bias) and
 * multiply-accumulates of convolutions for one frame. */
void mms_graph_cost(const struct mms_graph *g, int64_t *params, int64_t *macs);

#endif
