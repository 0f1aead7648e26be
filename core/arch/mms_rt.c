/*
 * mms-rt, the real-time network (models/mmsnet.py: MMSRT): a ResNet-D
 * style encoder of basic residual blocks at strides 2..32, a U-Net decoder
 * of conv3x3+BN+LeakyReLU blocks over skip concatenations, bilinear
 * align_corners upsampling and one logit channel. Channel counts are
 * multiples of 16 so every tensor, and every concatenation offset, fits
 * oneDNN's 16-channel blocked layout.
 */
#include <errno.h>
#include <stdio.h>

#include "core/arch/arch.h"

#define RT_STAGES 4

struct rt {
    int widths[RT_STAGES + 1];
    int blocks[RT_STAGES];
    int dec[RT_STAGES];
    float slope;
};

static const int def_widths[] = {16, 32, 64, 128, 256};
static const int def_blocks[] = {1, 1, 2, 1};
static const int def_dec[] = {96, 48, 32, 16};

static int cbr(struct mms_graph *g, int x, const char *pfx, int conv, int bn, int oc,
               int s, int relu)
{
    char n1[96], n2[96];
    snprintf(n1, sizeof(n1), "%s.%d", pfx, conv);
    snprintf(n2, sizeof(n2), "%s.%d", pfx, bn);
    x = mms_graph_conv(g, x, n1, oc, 3, s, 1, 0);
    x = mms_graph_bn(g, x, n2);
    return relu ? mms_graph_act(g, x, MMS_ACT_RELU, 0) : x;
}

static int basic_block(struct mms_graph *g, int x, const char *pfx, int cin, int cout,
                       int stride)
{
    char n1[96], n2[96];
    snprintf(n1, sizeof(n1), "%s.conv1", pfx);
    snprintf(n2, sizeof(n2), "%s.bn1", pfx);
    int y = mms_graph_conv(g, x, n1, cout, 3, stride, 1, 0);
    y = mms_graph_act(g, mms_graph_bn(g, y, n2), MMS_ACT_RELU, 0);
    snprintf(n1, sizeof(n1), "%s.conv2", pfx);
    snprintf(n2, sizeof(n2), "%s.bn2", pfx);
    y = mms_graph_bn(g, mms_graph_conv(g, y, n1, cout, 3, 1, 1, 0), n2);
    int r = x;
    if (stride != 1 || cin != cout) {
        mms_graph_name(g, "%s.down.0", pfx);
        if (stride != 1)
            r = mms_graph_pool(g, r, MMS_POOL_AVG, stride, stride, 0, 1, 0);
        snprintf(n1, sizeof(n1), "%s.down.1", pfx);
        snprintf(n2, sizeof(n2), "%s.down.2", pfx);
        r = mms_graph_bn(g, mms_graph_conv(g, r, n1, cout, 1, 1, 0, 0), n2);
    }
    mms_graph_name(g, "%s.add", pfx);
    return mms_graph_act(g, mms_graph_add(g, y, r), MMS_ACT_RELU, 0);
}

static int conv_block(struct mms_graph *g, int x, const char *pfx, int out, float slope)
{
    char n1[64], n2[64];
    for (int i = 1; i <= 2; i++) {
        snprintf(n1, sizeof(n1), "%s.conv%d", pfx, i);
        snprintf(n2, sizeof(n2), "%s.bn%d", pfx, i);
        x = mms_graph_conv(g, x, n1, out, 3, 1, 1, 1);
        x = mms_graph_act(g, mms_graph_bn(g, x, n2), MMS_ACT_LEAKY, slope);
    }
    return x;
}

static int build_rt(struct mms_graph *g, const struct rt *a, int in)
{
    int x = cbr(g, in, "stem", 0, 1, a->widths[0], 2, 1);
    x = cbr(g, x, "stem", 3, 4, a->widths[0], 1, 1);
    int skips[RT_STAGES + 1];
    skips[0] = x;
    mms_graph_name(g, "pool");
    x = mms_graph_pool(g, x, MMS_POOL_MAX, 3, 2, 1, 0, 0);
    int cin = a->widths[0];
    for (int s = 0; s < RT_STAGES; s++) {
        for (int b = 0; b < a->blocks[s]; b++) {
            char pfx[48];
            snprintf(pfx, sizeof(pfx), "layers.%d.%d", s, b);
            x = basic_block(g, x, pfx, cin, a->widths[s + 1], (s > 0 && b == 0) ? 2 : 1);
            cin = a->widths[s + 1];
        }
        skips[s + 1] = x;
    }
    int y = x;
    for (int d = 0; d < RT_STAGES; d++) {
        char pfx[32];
        mms_graph_name(g, "up%d", d + 1);
        y = mms_graph_upsample2(g, y);
        mms_graph_name(g, "cat%d", d + 1);
        y = mms_graph_concat(g, (int[]){skips[RT_STAGES - 1 - d], y}, 2);
        snprintf(pfx, sizeof(pfx), "dec.%d", d);
        y = conv_block(g, y, pfx, a->dec[d], a->slope);
    }
    y = mms_graph_conv(g, y, "final", 1, 1, 1, 0, 1);
    mms_graph_name(g, "up_final");
    return mms_graph_upsample2(g, y);
}

static int check16(struct mms_graph *g, const char *key, const int *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i] % 16)
            return mms_graph_fail(g, -EINVAL, "metadata %s: %d is not a multiple of 16", key,
                                  v[i]);
    return 0;
}

static int build(struct mms_graph *g, const struct mms_model *m, int in)
{
    struct rt a;
    if (mms_arch_ints(g, m, "mms.widths", def_widths, 5, a.widths, 5, 16, 2048) != 5 ||
        mms_arch_ints(g, m, "mms.blocks", def_blocks, 4, a.blocks, 4, 1, 16) != 4 ||
        mms_arch_ints(g, m, "mms.decoder", def_dec, 4, a.dec, 4, 16, 2048) != 4)
        return mms_graph_fail(g, -EINVAL,
                              "mms-rt needs 5 widths, 4 block counts and 4 decoder widths"),
               -1;
    a.slope = mms_arch_float(g, m, "mms.leaky_slope", 0.01f, 0.f, 1.f);
    if (check16(g, "mms.widths", a.widths, 5) || check16(g, "mms.decoder", a.dec, 4))
        return -1;
    return build_rt(g, &a, in);
}

static const char *const keys[] = {"mms.widths", "mms.blocks", "mms.decoder",
                                   "mms.leaky_slope", NULL};

const struct mms_arch mms_arch_mms_rt = {
    .name = "mms-rt",
    .description = "real-time MMS U-Net (residual encoder, strides 2-32)",
    .keys = keys,
    .input_multiple = 32,
    .build = build,
};
