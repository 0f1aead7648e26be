/*
 * The network IR, its fusion passes and the executor on small hand-made
 * graphs whose answers can be worked out by hand.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/exec.h"
#include "core/graph.h"
#include "core/model.h"
#include "harness.h"

/* A safetensors file of F32 tensors, each filled with `fill` + index * step. */
struct spec {
    const char *name;
    int ndim;
    int64_t shape[4];
    float fill, step;
};

static struct mms_model *make_model(const struct spec *s, int n)
{
    char hdr[8192] = "{";
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        char shape[64] = "";
        for (int d = 0; d < s[i].ndim; d++) {
            numel *= s[i].shape[d];
            snprintf(shape + strlen(shape), sizeof(shape) - strlen(shape), "%s%lld",
                     d ? "," : "", (long long)s[i].shape[d]);
        }
        snprintf(hdr + strlen(hdr), sizeof(hdr) - strlen(hdr),
                 "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                 i ? "," : "", s[i].name, shape, off, off + numel * 4);
        off += numel * 4;
    }
    strcat(hdr, "}");
    while (strlen(hdr) % 8)
        strcat(hdr, " ");
    char path[512];
    snprintf(path, sizeof(path), "%s/graph-%p.safetensors", mms_test_tmpdir(), (void *)s);
    FILE *f = fopen(path, "wb");
    uint64_t hl = strlen(hdr);
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < s[i].ndim; d++)
            numel *= s[i].shape[d];
        for (int64_t k = 0; k < numel; k++) {
            float v = s[i].fill + k * s[i].step;
            fwrite(&v, 4, 1, f);
        }
    }
    fclose(f);
    struct mms_model *m = NULL;
    struct mms_err err;
    if (mms_model_open(path, &m, &err)) {
        fprintf(stderr, "make_model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

#define BN(pfx, c)                                                                      \
    {pfx ".weight", 1, {c}, 2.f, 0.f}, {pfx ".bias", 1, {c}, 0.5f, 0.f},               \
        {pfx ".running_mean", 1, {c}, 1.f, 0.f}, {pfx ".running_var", 1, {c}, 3.99999f, 0.f}

static const struct spec conv_bn[] = {
    {"c.weight", 4, {4, 4, 3, 3}, 0.01f, 0.001f},
    {"c.bias", 1, {4}, 0.1f, 0.f},
    BN("bn", 4),
};

static int live(struct mms_graph *g, enum mms_op op)
{
    int n = 0;
    for (int i = 0; i < mms_graph_nnodes(g); i++)
        n += !mms_graph_node(g, i)->dead && mms_graph_node(g, i)->op == op;
    return n;
}

static struct mms_node *only(struct mms_graph *g, enum mms_op op)
{
    for (int i = 0; i < mms_graph_nnodes(g); i++)
        if (!mms_graph_node(g, i)->dead && mms_graph_node(g, i)->op == op)
            return mms_graph_node(g, i);
    return NULL;
}

static void conv_bn_relu_fuse_into_one_conv(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int x = mms_graph_input(g, 4, 8, 8);
    x = mms_graph_conv(g, x, "c", 4, 3, 1, 1, 1);
    x = mms_graph_bn(g, x, "bn");
    x = mms_graph_act(g, x, MMS_ACT_LEAKY, 0.1f);
    struct mms_err err;
    CHECK(mms_graph_fuse(g, &err) == 0);
    CHECK(live(g, MMS_OP_BN) == 0 && live(g, MMS_OP_ACT) == 0 && live(g, MMS_OP_CONV) == 1);
    struct mms_node *c = only(g, MMS_OP_CONV);
    CHECK(c && c->out == x);
    if (c) {
        /* scale = 2 / sqrt(4) = 1 minus eps; shift = 0.5 - 1 * scale */
        CHECK(fabsf(c->u.conv.w[1] - 0.011f) < 1e-6f);
        CHECK(fabsf(c->u.conv.b[0] - (0.1f * 1.f + 0.5f - 1.f)) < 1e-5f);
        CHECK(c->u.conv.npost == 1 && c->u.conv.post[0].act == MMS_ACT_LEAKY);
        CHECK(fabsf(c->u.conv.post[0].alpha - 0.1f) < 1e-7f);
    }
    mms_graph_free(g);
    mms_model_close(m);
}

/* c.weight[0] = -1e-24 (then about 0.001, 0.002, ...), c.bias = -1e-30 */
static const struct spec conv_tiny[] = {
    {"c.weight", 4, {4, 4, 3, 3}, -1e-24f, 1e-3f},
    {"c.bias", 1, {4}, -1e-30f, 0.f},
};

static const struct spec conv_small[] = {
    {"c.weight", 4, {4, 4, 3, 3}, 1e-19f, 0.f},
    {"c.bias", 1, {4}, -1e-19f, 0.f},
};

static struct mms_node *fused_conv(const struct spec *s, struct mms_model **m,
                                   struct mms_graph **g)
{
    struct mms_err err;
    *m = make_model(s, 2);
    *g = mms_graph_new(*m);
    mms_graph_conv(*g, mms_graph_input(*g, 4, 8, 8), "c", 4, 3, 1, 1, 1);
    CHECK(mms_graph_fuse(*g, &err) == 0);
    return only(*g, MMS_OP_CONV);
}

static void tiny_weights_become_zero(void)
{
    struct mms_model *m;
    struct mms_graph *g;
    struct mms_node *c = fused_conv(conv_tiny, &m, &g);
    CHECK(c != NULL);
    if (c) {
        CHECK_MSG(c->u.conv.w[0] == 0.f, "w[0] = %g", c->u.conv.w[0]);
        CHECK(fabsf(c->u.conv.w[1] - 0.001f) < 1e-7f);
        CHECK_MSG(c->u.conv.b[3] == 0.f, "b[3] = %g", c->u.conv.b[3]);
    }
    mms_graph_free(g);
    mms_model_close(m);
}

static void small_weights_above_the_cut_are_kept(void)
{
    struct mms_model *m;
    struct mms_graph *g;
    struct mms_node *c = fused_conv(conv_small, &m, &g);
    CHECK(c != NULL);
    if (c) {
        CHECK_MSG(c->u.conv.w[5] == 1e-19f, "w[5] = %g", c->u.conv.w[5]);
        CHECK_MSG(c->u.conv.b[0] == -1e-19f, "b[0] = %g", c->u.conv.b[0]);
    }
    mms_graph_free(g);
    mms_model_close(m);
}

static void residual_add_becomes_sum_postop(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 4, 8, 8);
    int y = mms_graph_bn(g, mms_graph_conv(g, in, "c", 4, 3, 1, 1, 1), "bn");
    y = mms_graph_act(g, mms_graph_add(g, y, in), MMS_ACT_RELU, 0);
    struct mms_err err;
    CHECK(mms_graph_fuse(g, &err) == 0);
    struct mms_node *c = only(g, MMS_OP_CONV);
    CHECK(live(g, MMS_OP_ADD) == 0 && c && c->out == y);
    if (c) {
        CHECK(c->u.conv.npost == 2);
        CHECK(c->u.conv.post[0].kind == MMS_POSTOP_SUM && c->u.conv.post[0].tensor == in);
        CHECK(c->u.conv.post[1].kind == MMS_POSTOP_ACT);
    }
    mms_graph_free(g);
    mms_model_close(m);
}

static void shared_conv_output_keeps_activation(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 4, 8, 8);
    int y = mms_graph_conv(g, in, "c", 4, 3, 1, 1, 1);
    int a = mms_graph_act(g, y, MMS_ACT_RELU, 0);
    mms_graph_concat(g, (int[]){y, a}, 2);
    struct mms_err err;
    CHECK(mms_graph_fuse(g, &err) == 0);
    CHECK(live(g, MMS_OP_ACT) == 1); /* y is read twice: relu cannot be folded in */
    mms_graph_free(g);
    mms_model_close(m);
}

static void lone_batchnorm_becomes_depthwise_conv(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 4, 8, 8);
    mms_graph_bn(g, in, "bn");
    struct mms_err err;
    CHECK(mms_graph_fuse(g, &err) == 0);
    struct mms_node *c = only(g, MMS_OP_CONV);
    CHECK(c && c->u.conv.groups == 4 && c->u.conv.kh == 1);
    mms_graph_free(g);
    mms_model_close(m);
}

static void pooling_sizes_follow_pytorch(void)
{
    struct mms_graph *g = mms_graph_new(NULL);
    int in = mms_graph_input(g, 2, 5, 7);
    int floor_ = mms_graph_pool(g, in, MMS_POOL_AVG, 2, 2, 0, 0, 0);
    int ceil_ = mms_graph_pool(g, in, MMS_POOL_AVG, 2, 2, 0, 1, 0);
    int max3 = mms_graph_pool(g, in, MMS_POOL_MAX, 3, 2, 1, 0, 0);
    CHECK(mms_graph_shape(g, floor_)->h == 2 && mms_graph_shape(g, floor_)->w == 3);
    CHECK(mms_graph_shape(g, ceil_)->h == 3 && mms_graph_shape(g, ceil_)->w == 4);
    CHECK(mms_graph_shape(g, max3)->h == 3 && mms_graph_shape(g, max3)->w == 4);
    mms_graph_free(g);
}

static void concat_of_mismatched_sizes_fails(void)
{
    struct mms_graph *g = mms_graph_new(NULL);
    int a = mms_graph_input(g, 2, 4, 4), b = mms_graph_input(g, 2, 4, 6);
    CHECK(mms_graph_concat(g, (int[]){a, b}, 2) == -1);
    struct mms_err err;
    CHECK(mms_graph_error(g, &err) == -EINVAL && strstr(err.msg, "concatenate"));
    mms_graph_free(g);
}

static void slice_out_of_range_fails(void)
{
    struct mms_graph *g = mms_graph_new(NULL);
    int a = mms_graph_input(g, 4, 4, 4);
    CHECK(mms_graph_slice(g, a, 2, 3) == -1);
    CHECK(mms_graph_error(g, NULL) == -EINVAL);
    mms_graph_free(g);
}

static void errors_are_sticky(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 4, 8, 8);
    CHECK(mms_graph_conv(g, in, "nope", 4, 3, 1, 1, 1) == -1);
    CHECK(mms_graph_conv(g, in, "c", 4, 3, 1, 1, 1) == -1); /* valid, but after a failure */
    struct mms_err err;
    CHECK(mms_graph_error(g, &err) == -ENOENT && strstr(err.msg, "'nope.weight'"));
    CHECK(mms_graph_fuse(g, &err) == -ENOENT);
    mms_graph_free(g);
    mms_model_close(m);
}

static void cost_counts_macs_and_parameters(void)
{
    struct mms_model *m = make_model(conv_bn, 6);
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 4, 8, 8);
    mms_graph_bn(g, mms_graph_conv(g, in, "c", 4, 3, 2, 1, 1), "bn");
    int64_t params, macs;
    mms_graph_cost(g, &params, &macs);
    CHECK(macs == 4LL * 4 * 4 * 4 * 9);      /* 4x4 output, 4 out, 4 in, 3x3 */
    CHECK(params == 4 * 4 * 9 + 4 + 2 * 4); /* weights, bias, BN weight+bias */
    mms_graph_free(g);
    mms_model_close(m);
}

/* Runs: slice a 32-channel input in two, swap the halves, upsample, pick
 * one channel with a 1x1 conv. Checks layout, views and the kernel. */
static const struct spec pick[] = {{"p.weight", 4, {1, 32, 1, 1}, 0.f, 0.f}};

static void exec_views_and_upsample(int block)
{
    char env[8];
    snprintf(env, sizeof(env), "%d", block);
    setenv("MMS_EXEC_BLOCK", env, 1);
    struct mms_model *m = make_model(pick, 1);
    /* p.weight selects channel 3 of the swapped tensor = input channel 19 */
    float *w = (float *)mms_model_find(m, "p.weight")->data;
    (void)w; /* the mapping is read-only: select via the graph copy below */
    struct mms_graph *g = mms_graph_new(m);
    int in = mms_graph_input(g, 32, 2, 2);
    int lo = mms_graph_slice(g, in, 0, 16), hi = mms_graph_slice(g, in, 16, 16);
    int sw = mms_graph_concat(g, (int[]){hi, lo}, 2);
    int up = mms_graph_upsample2(g, sw);
    int out = mms_graph_conv(g, up, "p", 1, 1, 1, 0, 0);
    mms_graph_node(g, mms_graph_shape(g, out)->producer)->u.conv.w[3] = 1.f;
    struct mms_err err;
    struct mms_exec *e = NULL;
    CHECK(mms_graph_fuse(g, &err) == 0);
    int rc = mms_exec_create(g, in, out, &(struct mms_exec_opts){.threads = 1}, &e, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) {
        float *x = mms_exec_input(e);
        for (int c = 0; c < 32; c++)
            for (int k = 0; k < 4; k++)
                x[c * 4 + k] = c == 19 ? (float)k : 100.f;
        CHECK(mms_exec_run(e, &err) == 0);
        /* align_corners 2x2 -> 4x4 of [[0,1],[2,3]]: row 0 is 0, 1/3, 2/3, 1 */
        const float *y = mms_exec_output(e);
        static const float want[16] = {0, 1 / 3.f, 2 / 3.f, 1, 2 / 3.f, 1, 4 / 3.f, 5 / 3.f,
                                       4 / 3.f, 5 / 3.f, 2, 7 / 3.f, 2, 7 / 3.f, 8 / 3.f, 3};
        for (int k = 0; k < 16; k++)
            CHECK_MSG(fabsf(y[k] - want[k]) < 1e-5f, "block %d px %d: %g != %g", block, k,
                      y[k], want[k]);
    }
    mms_exec_destroy(e);
    mms_graph_free(g);
    mms_model_close(m);
    unsetenv("MMS_EXEC_BLOCK");
}

static void exec_views_blocked16(void) { exec_views_and_upsample(16); }
static void exec_views_blocked8(void) { exec_views_and_upsample(8); }
static void exec_views_nchw(void) { exec_views_and_upsample(1); }

/* int8: an upsampling written into its concat slice takes the concat's
 * scale. Its branch is 100x quieter than the skip beside it; read at the
 * skip's scale without its own, it would come out 100x too loud. The
 * output convolution keeps the upsampled channels only. */
static const struct spec quiet_and_loud[] = {{"s.weight", 4, {8, 8, 1, 1}, 0.f, 0.f},
                                             {"a.weight", 4, {8, 8, 1, 1}, 0.f, 0.f},
                                             {"b.weight", 4, {8, 8, 1, 1}, 0.f, 0.f},
                                             {"c.weight", 4, {8, 16, 1, 1}, 0.f, 0.f}};

static void set_diagonal(struct mms_graph *g, int t, float v)
{
    struct mms_conv *c = &mms_graph_node(g, mms_graph_shape(g, t)->producer)->u.conv;
    for (int o = 0; o < c->oc; o++)
        c->w[o * c->ic + o] = v;
}

static void record_absmax(void *ctx, int t, const float *v, size_t n)
{
    float *absmax = ctx;
    for (size_t i = 0; i < n; i++)
        absmax[t] = fmaxf(absmax[t], fabsf(v[i]));
}

static int build_quiet_and_loud(struct mms_model *m, struct mms_graph **pg, int *in, int *out)
{
    struct mms_graph *g = *pg = mms_graph_new(m);
    struct mms_err err;
    *in = mms_graph_input(g, 8, 8, 8);
    mms_graph_name(g, "s");
    int s = mms_graph_conv(g, *in, "s", 8, 1, 1, 0, 0);
    mms_graph_name(g, "a");
    int p = mms_graph_pool(g, s, MMS_POOL_AVG, 2, 2, 0, 0, 0);
    int a = mms_graph_conv(g, p, "a", 8, 1, 1, 0, 0);
    mms_graph_name(g, "up");
    int up = mms_graph_upsample2(g, mms_graph_act(g, a, MMS_ACT_RELU, 0));
    mms_graph_name(g, "b");
    int b = mms_graph_conv(g, s, "b", 8, 1, 1, 0, 0);
    mms_graph_name(g, "cat");
    int cat = mms_graph_concat(g, (int[]){up, mms_graph_act(g, b, MMS_ACT_RELU, 0)}, 2);
    mms_graph_name(g, "c");
    *out = mms_graph_conv(g, cat, "c", 8, 1, 1, 0, 0);
    set_diagonal(g, s, 1.f);
    set_diagonal(g, a, 0.01f);
    set_diagonal(g, b, 1.f);
    set_diagonal(g, *out, 1.f);
    return mms_graph_fuse(g, &err);
}

static void fill_quiet_and_loud(struct mms_exec *e)
{
    float *x = mms_exec_input(e);
    for (int i = 0; i < 8 * 8 * 8; i++)
        x[i] = 1.f + (float)(i * 7 % 5) * 0.25f;
}

static void int8_upsampling_in_place_keeps_its_scale(void)
{
    struct mms_model *m = make_model(quiet_and_loud, 4);
    struct mms_graph *g = NULL;
    struct mms_exec *f = NULL, *q = NULL;
    struct mms_err err;
    int in, out, rc;
    float *absmax = NULL, want[8 * 8 * 8];
    CHECK(build_quiet_and_loud(m, &g, &in, &out) == 0);
    rc = mms_exec_create(g, in, out, &(struct mms_exec_opts){.threads = 1}, &f, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        goto done;
    absmax = calloc(mms_exec_tensors(f), sizeof(float));
    fill_quiet_and_loud(f);
    CHECK(mms_exec_run_observed(f, record_absmax, absmax, &err) == 0);
    memcpy(want, mms_exec_output(f), sizeof(want));
    struct mms_exec_opts o = {.threads = 1, .absmax = absmax, .nabsmax = mms_exec_tensors(f)};
    rc = mms_exec_create(g, in, out, &o, &q, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        goto done;
    int cat_steps = 0;
    for (int i = 0; i < mms_exec_steps(q); i++) {
        struct mms_exec_step st;
        mms_exec_step_info(q, i, &st);
        cat_steps += !strcmp(st.name, "cat");
    }
    CHECK_MSG(cat_steps == 1, "the concat took %d steps: the upsampling is not in place",
              cat_steps);
    fill_quiet_and_loud(q);
    CHECK(mms_exec_run(q, &err) == 0);
    /* the concat's step is 2/255 (its range is the skip's, up to 2) */
    float worst = 0;
    for (int i = 0; i < 8 * 8 * 8; i++)
        worst = fmaxf(worst, fabsf(mms_exec_output(q)[i] - want[i]));
    CHECK_MSG(worst < 2.f / 255, "int8 off fp32 by up to %g (values 0.01-0.02)", worst);
    CHECK_MSG(want[0] > 0.009f && want[0] < 0.021f, "fp32 output %g", want[0]);
done:
    free(absmax);
    mms_exec_destroy(f);
    mms_exec_destroy(q);
    mms_graph_free(g);
    mms_model_close(m);
}

MMS_TESTS(T(conv_bn_relu_fuse_into_one_conv), T(tiny_weights_become_zero),
          T(small_weights_above_the_cut_are_kept), T(residual_add_becomes_sum_postop),
          T(shared_conv_output_keeps_activation), T(lone_batchnorm_becomes_depthwise_conv),
          T(pooling_sizes_follow_pytorch), T(concat_of_mismatched_sizes_fails),
          T(slice_out_of_range_fails), T(errors_are_sticky),
          T(cost_counts_macs_and_parameters), T(exec_views_blocked16), T(exec_views_blocked8),
          T(exec_views_nchw),
          T(int8_upsampling_in_place_keeps_its_scale))
