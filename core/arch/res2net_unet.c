/*
 * The paper's network: Res2Net-v1b encoder (stem, layers 1-3) and the
 * six-block U-Net decoder of the official preUnet. Node names are the
 * official state_dict prefixes, so a checkpoint converted with
 * safetensors.torch.save_file() loads unchanged; tensors the network does
 * not run (resnet.layer4.*, resnet.fc.*, num_batches_tracked) are ignored.
 */
#include <errno.h>
#include <stdio.h>

#include "core/arch/arch.h"

struct r2n {
    int layers[3];
    int base_width, scale;
    int dec[4];
    float slope;
};

static const int paper_layers[3] = {3, 4, 23};
static const int paper_dec[4] = {1024, 512, 256, 64};

/* conv -> bn [-> relu] */
static int cbr(struct mms_graph *g, int x, const char *conv, const char *bn, int oc,
               int k, int s, int p, int relu)
{
    x = mms_graph_conv(g, x, conv, oc, k, s, p, 0);
    x = mms_graph_bn(g, x, bn);
    return relu ? mms_graph_act(g, x, MMS_ACT_RELU, 0) : x;
}

static int bottle2neck(struct mms_graph *g, const struct r2n *a, int x, const char *pfx,
                       int inplanes, int planes, int stride, int stage)
{
    char n1[128], n2[128];
    int width = planes * a->base_width / 64;
    int nums = a->scale == 1 ? 1 : a->scale - 1;
    int pieces[16];

    snprintf(n1, sizeof(n1), "%s.conv1", pfx);
    snprintf(n2, sizeof(n2), "%s.bn1", pfx);
    int out = cbr(g, x, n1, n2, width * a->scale, 1, 1, 0, 1);
    int sp = -1;
    for (int i = 0; i < nums; i++) {
        mms_graph_name(g, "%s.split%d", pfx, i);
        int piece = mms_graph_slice(g, out, i * width, width);
        sp = (i == 0 || stage) ? piece : mms_graph_add(g, sp, piece);
        snprintf(n1, sizeof(n1), "%s.convs.%d", pfx, i);
        snprintf(n2, sizeof(n2), "%s.bns.%d", pfx, i);
        sp = cbr(g, sp, n1, n2, width, 3, stride, 1, 1);
        pieces[i] = sp;
    }
    int npieces = nums;
    if (a->scale != 1) {
        mms_graph_name(g, "%s.split%d", pfx, nums);
        int last = mms_graph_slice(g, out, nums * width, width);
        if (stage) {
            mms_graph_name(g, "%s.pool", pfx);
            last = mms_graph_pool(g, last, MMS_POOL_AVG, 3, stride, 1, 0, 1);
        }
        pieces[npieces++] = last;
    }
    mms_graph_name(g, "%s.cat", pfx);
    out = npieces > 1 ? mms_graph_concat(g, pieces, npieces) : pieces[0];
    snprintf(n1, sizeof(n1), "%s.conv3", pfx);
    snprintf(n2, sizeof(n2), "%s.bn3", pfx);
    out = cbr(g, out, n1, n2, planes * 4, 1, 1, 0, 0);

    int residual = x;
    if (stride != 1 || inplanes != planes * 4) {
        mms_graph_name(g, "%s.downsample.0", pfx);
        if (stride != 1)
            residual = mms_graph_pool(g, x, MMS_POOL_AVG, stride, stride, 0, 1, 0);
        snprintf(n1, sizeof(n1), "%s.downsample.1", pfx);
        snprintf(n2, sizeof(n2), "%s.downsample.2", pfx);
        residual = cbr(g, residual, n1, n2, planes * 4, 1, 1, 0, 0);
    }
    mms_graph_name(g, "%s.add", pfx);
    out = mms_graph_add(g, out, residual);
    return mms_graph_act(g, out, MMS_ACT_RELU, 0);
}

static int layer(struct mms_graph *g, const struct r2n *a, int x, int idx, int *inplanes,
                 int planes, int blocks, int stride)
{
    char pfx[64];
    for (int b = 0; b < blocks; b++) {
        snprintf(pfx, sizeof(pfx), "resnet.layer%d.%d", idx, b);
        x = bottle2neck(g, a, x, pfx, *inplanes, planes, b ? 1 : stride, b == 0);
        *inplanes = planes * 4;
    }
    return x;
}

static int conv_block(struct mms_graph *g, int x, const char *pfx, int mid, int out,
                      float slope)
{
    char n1[64], n2[64];
    for (int i = 1; i <= 2; i++) {
        snprintf(n1, sizeof(n1), "%s.conv%d", pfx, i);
        snprintf(n2, sizeof(n2), "%s.bn%d", pfx, i);
        x = mms_graph_conv(g, x, n1, i == 1 ? mid : out, 3, 1, 1, 1);
        x = mms_graph_bn(g, x, n2);
        x = mms_graph_act(g, x, MMS_ACT_LEAKY, slope);
    }
    return x;
}

static int build_net(struct mms_graph *g, const struct r2n *a, int in)
{
    int x = cbr(g, in, "resnet.conv1.0", "resnet.conv1.1", 32, 3, 2, 1, 1);
    x = cbr(g, x, "resnet.conv1.3", "resnet.conv1.4", 32, 3, 1, 1, 1);
    x = cbr(g, x, "resnet.conv1.6", "resnet.bn1", 64, 3, 1, 1, 1);
    mms_graph_name(g, "resnet.maxpool");
    int xk = mms_graph_pool(g, x, MMS_POOL_MAX, 3, 2, 1, 0, 0);
    int inplanes = 64;
    int x1 = layer(g, a, xk, 1, &inplanes, 64, a->layers[0], 1);
    int x2 = layer(g, a, x1, 2, &inplanes, 128, a->layers[1], 2);
    int x3 = layer(g, a, x2, 3, &inplanes, 256, a->layers[2], 2);

    const int *d = a->dec;
    int skips[3] = {x2, x1, x};
    int y = x3;
    for (int lvl = 0; lvl < 3; lvl++) {
        char pfx[32];
        mms_graph_name(g, "up%d", lvl + 1);
        y = mms_graph_upsample2(g, y);
        snprintf(pfx, sizeof(pfx), "conv_up_%d", 2 * lvl + 1);
        y = conv_block(g, y, pfx, d[lvl], d[lvl + 1], a->slope);
        mms_graph_name(g, "cat%d", lvl + 1);
        y = mms_graph_concat(g, (int[]){skips[lvl], y}, 2);
        snprintf(pfx, sizeof(pfx), "conv_up_%d", 2 * lvl + 2);
        y = conv_block(g, y, pfx, d[lvl + 1], d[lvl + 1], a->slope);
    }
    mms_graph_name(g, "up4");
    y = mms_graph_upsample2(g, y);
    return mms_graph_conv(g, y, "final", 1, 1, 1, 0, 1);
}

static int build_res2net_unet(struct mms_graph *g, const struct mms_model *m, int in)
{
    struct r2n a;
    if (mms_arch_ints(g, m, "mms.layers", paper_layers, 3, a.layers, 3, 1, 64) != 3)
        return mms_graph_fail(g, -EINVAL, "metadata mms.layers: expected three block counts"),
               -1;
    a.base_width = mms_arch_int(g, m, "mms.base_width", 26, 1, 256);
    a.scale = mms_arch_int(g, m, "mms.scale", 4, 1, 16);
    if (mms_arch_ints(g, m, "mms.decoder", paper_dec, 4, a.dec, 4, 1, 4096) != 4)
        return mms_graph_fail(g, -EINVAL, "metadata mms.decoder: expected four widths"), -1;
    a.slope = mms_arch_float(g, m, "mms.leaky_slope", 0.01f, 0.f, 1.f);
    if (64 * a.base_width / 64 < 1)
        return mms_graph_fail(g, -EINVAL, "metadata mms.base_width too small"), -1;
    return build_net(g, &a, in);
}

static int build_paper(struct mms_graph *g, const struct mms_model *m, int in)
{
    (void)m; /* the card refuses architecture keys for the fixed configuration */
    struct r2n a = {{3, 4, 23}, 26, 4, {1024, 512, 256, 64}, 0.01f};
    return build_net(g, &a, in);
}

static const char *const r2n_keys[] = {"mms.layers", "mms.base_width", "mms.scale",
                                       "mms.decoder", "mms.leaky_slope", NULL};
static const char *const no_keys[] = {NULL};

const struct mms_arch mms_arch_res2net_unet = {
    .name = "res2net-unet",
    .description = "Res2Net-v1b U-Net of the MMS paper, parameterised",
    .keys = r2n_keys,
    .input_multiple = 16,
    .build = build_res2net_unet,
};

const struct mms_arch mms_arch_mms_res2net101 = {
    .name = "mms-res2net101",
    .description = "the MMS paper's network: Res2Net-101-v1b 26w_4s encoder, U-Net decoder",
    .keys = no_keys,
    .input_multiple = 16,
    .build = build_paper,
};
